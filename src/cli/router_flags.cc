#include "cli/router_flags.h"

#include <charconv>

#include "common/file_util.h"

namespace turnout::cli {

const std::vector<FlagSpec>& RouterRunFlags() {
  static const std::vector<FlagSpec> kFlags = {
      {"config", "FILE", "read every setting from a YAML file (see docs/router.md)"},
      {"listen", "ADDR", "address to serve traffic on, e.g. 0.0.0.0:8080", true},
      {"slot", "NAME=ADDR,...", "a slot and its instances, e.g. blue=127.0.0.1:9001", true},
      {"active", "SLOT", "the slot that receives traffic (default: the only slot)"},
      {"admin", "ADDR",
       "admin API address: unix:/path/admin.sock, or host:port with a token (default "
       "unix:$XDG_RUNTIME_DIR/turnout/admin.sock; empty disables it)"},
      {"admin-token", "TOKEN",
       "require this bearer token on the admin API (default $TURNOUT_ADMIN_TOKEN)"},
      {"admin-token-file", "FILE", "read the admin token from FILE (keeps it off command lines)"},
      {"admin-host", "NAME", "another Host name the TCP admin API answers to", true},
      {"workers", "N", "worker threads (default 0 = one per core)"},
      {"state-file", "FILE", "persist the routing policy here and restore it at start"},
      {"override-secret-file", "FILE",
       "keep the override secret here, mode 0600 (default: STATE_FILE.override-secret)"},
      {"health-path", "PATH", "path of the active health check (default /ready)"},
      {"no-health-checks", "", "route to every instance without checking it"},
      {"trusted-proxy", "CIDR", "keep X-Forwarded-* from this peer", true},
      {"access-log", "FILE",
       "write an access log line per request to FILE (rotated at 100 MiB, 5 kept), - = stdout"},
      {"access-log-format", "FORMAT", "json (default) or logfmt"},
      {"access-log-sample", "FRACTION",
       "log this fraction of 2xx/3xx answers, e.g. 0.1 (errors always; default 1)"},
      {"trace-generate", "", "add a W3C traceparent to requests without a valid one"},
  };
  return kFlags;
}

Result<std::string> ReadTokenFile(const std::string& path, std::string_view flag) {
  TURNOUT_ASSIGN_OR_RETURN(std::string token,
                           ReadFileToString(path, "token file of " + std::string(flag)));
  // A file written by `echo` ends with a newline that is not part of the token.
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.empty()) {
    return InvalidArgument(std::string(flag) + " " + path + " is empty; write the token into it");
  }
  return token;
}

Result<router::RouterConfig> RouterConfigFromArgs(const Args& args) {
  if (args.Has("config")) {
    for (const auto& f : RouterRunFlags()) {
      if (f.name != "config" && args.Has(f.name)) {
        return InvalidArgument("--" + f.name +
                               " cannot be combined with --config; put it in the file instead");
      }
    }
    return router::LoadRouterConfigFile(args.Get("config"));
  }
  router::RouterConfig c;
  c.listen = args.GetAll("listen");
  if (c.listen.empty()) {
    return InvalidArgument("--listen is required (e.g. --listen 0.0.0.0:8080), or use --config");
  }
  for (const std::string& s : args.GetAll("slot")) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgument("--slot " + s + ": expected NAME=HOST:PORT[,HOST:PORT...]");
    }
    router::SlotConfig slot;
    slot.name = s.substr(0, eq);
    std::string_view rest = std::string_view(s).substr(eq + 1);
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      if (!item.empty()) slot.instances.emplace_back(item);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    c.slots.push_back(std::move(slot));
  }
  if (c.slots.empty()) {
    return InvalidArgument("--slot is required (e.g. --slot blue=127.0.0.1:9001), or use --config");
  }
  c.policy.active = args.Get("active");
  if (c.policy.active.empty()) {
    if (c.slots.size() != 1) {
      return InvalidArgument("--active is required with several slots: which one gets traffic?");
    }
    c.policy.active = c.slots[0].name;
  }
  if (args.Has("admin")) c.admin = args.Get("admin");
  if (args.Has("admin-token-file")) {
    if (args.Has("admin-token")) {
      return InvalidArgument("--admin-token and --admin-token-file: give one of them");
    }
    TURNOUT_ASSIGN_OR_RETURN(std::string token,
                             ReadTokenFile(args.Get("admin-token-file"), "--admin-token-file"));
    c.admin_token = std::move(token);
  } else {
    c.admin_token = args.Get("admin-token", EnvOr("TURNOUT_ADMIN_TOKEN", ""));
  }
  c.admin_hosts = args.GetAll("admin-host");
  if (args.Has("workers")) {
    const std::string w = args.Get("workers");
    int n = -1;
    auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), n);
    if (ec != std::errc() || end != w.data() + w.size() || n < 0 || n > 256) {
      return InvalidArgument("--workers: expected 0..256 (0 = one per core), got '" + w + "'");
    }
    c.workers = n;
  }
  c.state_file = args.Get("state-file");
  c.override_secret_file = args.Get("override-secret-file");
  if (args.Has("health-path")) c.health.path = args.Get("health-path");
  if (args.Has("no-health-checks")) c.health.enabled = false;
  c.trusted_proxies = args.GetAll("trusted-proxy");
  if (args.Has("access-log")) {
    c.access_log.path = args.Get("access-log");
    if (c.access_log.path.empty()) {
      return InvalidArgument("--access-log: give a file, or - for stdout");
    }
  }
  for (const char* flag : {"access-log-format", "access-log-sample"}) {
    if (args.Has(flag) && !args.Has("access-log")) {
      return InvalidArgument(std::string("--") + flag + " needs --access-log FILE");
    }
  }
  if (args.Has("access-log-format")) {
    auto f = router::ParseAccessLogFormat(args.Get("access-log-format"));
    if (!f.ok()) return InvalidArgument("--access-log-format: " + f.status().message());
    c.access_log.format = *f;
  }
  if (args.Has("access-log-sample")) {
    auto f = router::ParseAccessLogSample(args.Get("access-log-sample"));
    if (!f.ok()) return InvalidArgument("--access-log-sample: " + f.status().message());
    c.access_log.sample = *f;
  }
  if (args.Has("trace-generate")) c.trace.generate = true;
  Status s = router::ValidateRouterConfig(c);
  if (!s.ok()) {
    // Name the flag rather than the YAML key the message starts with.
    std::string m = s.message();
    const std::pair<const char*, const char*> names[] = {
        {"admin.token", "--admin-token"},
        {"admin.address", "--admin"},
        {"listen", "--listen"},
        {"slots.", "--slot "},
        {"slots", "--slot"},
        {"policy.active", "--active"},
        {"policy", "--active"},
        {"workers", "--workers"},
        {"health.path", "--health-path"},
        {"trusted_proxies", "--trusted-proxy"},
    };
    for (const auto& [key, flag] : names) {
      if (m.rfind(key, 0) == 0) {
        m = flag + m.substr(std::string_view(key).size());
        break;
      }
    }
    return InvalidArgument(m);
  }
  return c;
}

}  // namespace turnout::cli
