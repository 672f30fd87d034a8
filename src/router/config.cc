#include "router/config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <charconv>
#include <cstdlib>
#include <set>

#include "common/file_util.h"
#include "common/text.h"
#include "http/parser.h"

namespace turnout::router {
namespace {

bool ParseUint(std::string_view text, uint64_t* out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

Status CheckAddress(std::string_view what, const std::string& text, bool allow_port_zero) {
  auto hp = ParseHostPort(text);
  if (!hp.ok()) return InvalidArgument(std::string(what) + ": " + hp.status().message());
  if (!allow_port_zero && hp->port == 0) {
    return InvalidArgument(std::string(what) + ": '" + text + "' needs a non-zero port");
  }
  return Status::Ok();
}

// An exact IP ("10.0.0.1", "::1") or a CIDR ("10.0.0.0/8", "fd00::/8").
Status CheckProxy(const std::string& text) {
  std::string_view ip = text;
  std::string_view prefix;
  if (auto slash = ip.find('/'); slash != std::string_view::npos) {
    prefix = ip.substr(slash + 1);
    ip = ip.substr(0, slash);
  }
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(std::string(ip), ec);
  if (ec) {
    return InvalidArgument("trusted_proxies: '" + text +
                           "' is not an IP address or CIDR (e.g. 10.0.0.0/8)");
  }
  if (text.find('/') != std::string::npos) {
    uint64_t bits = 0;
    const uint64_t max_bits = address.is_v4() ? 32 : 128;
    if (!ParseUint(prefix, &bits) || bits > max_bits) {
      return InvalidArgument("trusted_proxies: '" + text + "' has a bad prefix length (0.." +
                             std::to_string(max_bits) + ")");
    }
  }
  return Status::Ok();
}

Status CheckAdminAddress(const std::string& text) {
  if (text.starts_with(kUnixAddressPrefix)) {
    if (UnixSocketPathOf(text).empty()) {
      return InvalidArgument("admin.address: '" + text +
                             "' names no socket file; write unix:/path/to/admin.sock");
    }
    return Status::Ok();
  }
  return CheckAddress("admin.address", text, true);
}

Status Positive(std::string_view what, Millis value) {
  if (value.count() <= 0) {
    return InvalidArgument(std::string(what) + ": must be a positive duration, got " +
                           std::to_string(value.count()) + "ms");
  }
  return Status::Ok();
}

Status AtLeast(std::string_view what, int64_t value, int64_t min) {
  if (value < min) {
    return InvalidArgument(std::string(what) + ": must be at least " + std::to_string(min) +
                           ", got " + std::to_string(value));
  }
  return Status::Ok();
}

// ---- YAML reading -------------------------------------------------------------------------

// Reads typed values out of a yaml-cpp tree and reports "file:line: path: expected X, got Y".
class YamlReader {
 public:
  explicit YamlReader(std::string_view file) : file_(file) {}

  Status Error(const YAML::Node& node, std::string_view path, std::string_view expected) const {
    return InvalidArgument(Where(node) + std::string(path) + ": expected " + std::string(expected) +
                           ", got " + Describe(node));
  }
  Status Problem(const YAML::Node& node, std::string_view path, std::string_view what) const {
    return InvalidArgument(Where(node) + std::string(path) + ": " + std::string(what));
  }

  std::string Where(const YAML::Node& node) const {
    const YAML::Mark mark = node.Mark();
    if (mark.is_null()) return file_ + ": ";
    return file_ + ":" + std::to_string(mark.line + 1) + ": ";
  }

  static std::string Describe(const YAML::Node& node) {
    switch (node.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        return "nothing";
      case YAML::NodeType::Sequence:
        return "a list";
      case YAML::NodeType::Map:
        return "a mapping";
      case YAML::NodeType::Scalar:
        return "'" + node.Scalar() + "'";
    }
    return "something else";
  }

  // Every key of `map` must be in `allowed`, once.
  Status Keys(const YAML::Node& map, std::string_view path,
              std::initializer_list<std::string_view> allowed) const {
    if (!map.IsMap()) return Error(map, path, "a mapping");
    std::set<std::string> seen;
    for (const auto& kv : map) {
      const std::string key = kv.first.Scalar();
      const std::string full = path.empty() ? key : std::string(path) + "." + key;
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string list;
        for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        return InvalidArgument(Where(kv.first) + full + ": unknown key (known keys" +
                               (path.empty() ? "" : " of " + std::string(path)) + ": " + list +
                               ")");
      }
      if (!seen.insert(key).second) {
        return InvalidArgument(Where(kv.first) + full + ": key appears twice");
      }
    }
    return Status::Ok();
  }

  Result<std::string> String(const YAML::Node& node, std::string_view path) const {
    if (!node.IsScalar()) return Error(node, path, "a string");
    return node.Scalar();
  }

  Result<int64_t> Int(const YAML::Node& node, std::string_view path, int64_t min, int64_t max,
                      std::string_view expected) const {
    if (!node.IsScalar()) return Error(node, path, expected);
    std::string_view text = node.Scalar();
    bool negative = !text.empty() && text[0] == '-';
    if (negative) text.remove_prefix(1);
    uint64_t value = 0;
    if (!ParseUint(text, &value) || value > static_cast<uint64_t>(INT64_MAX)) {
      return Error(node, path, expected);
    }
    int64_t v = negative ? -static_cast<int64_t>(value) : static_cast<int64_t>(value);
    if (v < min || v > max) return Error(node, path, expected);
    return v;
  }

  Result<bool> Bool(const YAML::Node& node, std::string_view path) const {
    if (node.IsScalar() && (node.Scalar() == "true" || node.Scalar() == "false")) {
      return node.Scalar() == "true";
    }
    return Error(node, path, "true or false");
  }

  // "500ms", "2s", "1m", "1h".
  Result<Millis> Duration(const YAML::Node& node, std::string_view path) const {
    constexpr std::string_view kExpected = "a duration such as 500ms, 2s or 1m";
    if (!node.IsScalar()) return Error(node, path, kExpected);
    auto d = ParseDuration(node.Scalar());
    if (!d.ok()) return Error(node, path, kExpected);
    return d;
  }

  // A list of strings; `allow_single` also accepts one plain string.
  Result<std::vector<std::string>> Strings(const YAML::Node& node, std::string_view path,
                                           bool allow_single) const {
    std::vector<std::string> out;
    if (allow_single && node.IsScalar()) {
      out.push_back(node.Scalar());
      return out;
    }
    if (!node.IsSequence()) {
      return Error(node, path,
                   allow_single ? "a string or a list of strings" : "a list of strings");
    }
    for (size_t i = 0; i < node.size(); ++i) {
      const YAML::Node item = node[i];
      std::string item_path = std::string(path) + "[" + std::to_string(i) + "]";
      TURNOUT_ASSIGN_OR_RETURN(std::string s, String(item, item_path));
      out.push_back(std::move(s));
    }
    return out;
  }

 private:
  std::string file_;
};

Status ReadHealth(const YamlReader& r, const YAML::Node& n, HealthCheckConfig* h) {
  TURNOUT_RETURN_IF_ERROR(r.Keys(n, "health",
                                 {"enabled", "path", "interval", "timeout", "rise", "fall",
                                  "eject_after_connect_failures", "eject_for"}));
  for (const auto& kv : n) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    const std::string path = "health." + key;
    if (key == "enabled") {
      TURNOUT_ASSIGN_OR_RETURN(h->enabled, r.Bool(v, path));
    } else if (key == "path") {
      TURNOUT_ASSIGN_OR_RETURN(h->path, r.String(v, path));
      if (h->path.empty() || h->path[0] != '/') {
        return r.Error(v, path, "a path starting with '/'");
      }
    } else if (key == "interval") {
      TURNOUT_ASSIGN_OR_RETURN(h->interval, r.Duration(v, path));
    } else if (key == "timeout") {
      TURNOUT_ASSIGN_OR_RETURN(h->timeout, r.Duration(v, path));
    } else if (key == "eject_for") {
      TURNOUT_ASSIGN_OR_RETURN(h->eject_for, r.Duration(v, path));
    } else {
      TURNOUT_ASSIGN_OR_RETURN(int64_t count, r.Int(v, path, 1, 1000, "a positive integer"));
      if (key == "rise") h->rise = static_cast<int>(count);
      if (key == "fall") h->fall = static_cast<int>(count);
      if (key == "eject_after_connect_failures") {
        h->eject_after_connect_failures = static_cast<int>(count);
      }
    }
  }
  return Status::Ok();
}

Status ReadTimeouts(const YamlReader& r, const YAML::Node& n, TimeoutConfig* t) {
  const std::pair<std::string_view, Millis*> fields[] = {
      {"head", &t->head},
      {"client_idle", &t->client_idle},
      {"upstream_connect", &t->upstream_connect},
      {"upstream_response", &t->upstream_response},
      {"upstream_idle", &t->upstream_idle},
      {"body_idle", &t->body_idle},
      {"tunnel_idle", &t->tunnel_idle},
      {"tunnel_drain", &t->tunnel_drain},
  };
  TURNOUT_RETURN_IF_ERROR(r.Keys(n, "timeouts",
                                 {"head", "client_idle", "upstream_connect", "upstream_response",
                                  "upstream_idle", "body_idle", "tunnel_idle", "tunnel_drain"}));
  for (const auto& kv : n) {
    for (const auto& [name, target] : fields) {
      if (kv.first.Scalar() != name) continue;
      const std::string path = "timeouts." + std::string(name);
      TURNOUT_ASSIGN_OR_RETURN(*target, r.Duration(kv.second, path));
      if (target->count() <= 0) return r.Error(kv.second, path, "a positive duration");
    }
  }
  return Status::Ok();
}

Status ReadLimits(const YamlReader& r, const YAML::Node& n, LimitsConfig* l) {
  const std::pair<std::string_view, uint32_t*> fields[] = {
      {"max_connections", &l->max_connections},
      {"max_head_bytes", &l->max_head_bytes},
      {"max_target_bytes", &l->max_target_bytes},
      {"max_headers", &l->max_headers},
      {"max_idle_per_instance", &l->max_idle_per_instance},
  };
  TURNOUT_RETURN_IF_ERROR(r.Keys(n, "limits",
                                 {"max_connections", "max_head_bytes", "max_target_bytes",
                                  "max_headers", "max_idle_per_instance"}));
  for (const auto& kv : n) {
    for (const auto& [name, target] : fields) {
      if (kv.first.Scalar() != name) continue;
      TURNOUT_ASSIGN_OR_RETURN(int64_t v, r.Int(kv.second, "limits." + std::string(name), 0,
                                                UINT32_MAX, "a non-negative integer"));
      *target = static_cast<uint32_t>(v);
    }
  }
  return Status::Ok();
}

Status ReadPolicy(const YamlReader& r, const YAML::Node& n, RoutingPolicy* p,
                  std::string* secret_file) {
  TURNOUT_RETURN_IF_ERROR(r.Keys(n, "policy", {"active", "canary", "sticky", "override"}));
  for (const auto& kv : n) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    if (key == "active") {
      TURNOUT_ASSIGN_OR_RETURN(p->active, r.String(v, "policy.active"));
    } else if (key == "canary") {
      if (v.IsNull()) continue;
      TURNOUT_RETURN_IF_ERROR(r.Keys(v, "policy.canary", {"slot", "weight", "seed"}));
      CanaryPolicy c;
      if (!v["slot"]) return r.Problem(v, "policy.canary.slot", "missing (name the canary slot)");
      TURNOUT_ASSIGN_OR_RETURN(c.slot, r.String(v["slot"], "policy.canary.slot"));
      if (v["weight"]) {
        const YAML::Node w = v["weight"];
        if (!w.IsScalar()) return r.Error(w, "policy.canary.weight", "a percentage such as 25%");
        auto bp = ParseWeightPercent(w.Scalar());
        if (!bp.ok()) {
          return r.Error(w, "policy.canary.weight",
                         "a percentage 0..100 with at most two decimals, such as 25 or 0.5%");
        }
        c.weight_bp = *bp;
      }
      if (v["seed"]) {
        TURNOUT_ASSIGN_OR_RETURN(int64_t seed, r.Int(v["seed"], "policy.canary.seed", 0, INT64_MAX,
                                                     "a non-negative integer"));
        c.seed = static_cast<uint64_t>(seed);
      }
      p->canary = std::move(c);
    } else if (key == "sticky") {
      TURNOUT_RETURN_IF_ERROR(r.Keys(v, "policy.sticky", {"cookie", "header", "max_age"}));
      if (v["cookie"] && v["header"]) {
        return r.Problem(v, "policy.sticky", "give either cookie or header, not both");
      }
      if (v["cookie"]) {
        p->sticky.source = StickinessPolicy::Source::kCookie;
        TURNOUT_ASSIGN_OR_RETURN(p->sticky.name, r.String(v["cookie"], "policy.sticky.cookie"));
      }
      if (v["header"]) {
        p->sticky.source = StickinessPolicy::Source::kHeader;
        TURNOUT_ASSIGN_OR_RETURN(p->sticky.name, r.String(v["header"], "policy.sticky.header"));
      }
      if (v["max_age"]) {
        TURNOUT_ASSIGN_OR_RETURN(Millis age, r.Duration(v["max_age"], "policy.sticky.max_age"));
        p->sticky.cookie_max_age_seconds =
            static_cast<uint32_t>(std::min<int64_t>(age.count() / 1000, UINT32_MAX));
      }
    } else if (key == "override") {
      TURNOUT_RETURN_IF_ERROR(
          r.Keys(v, "policy.override", {"header", "secret", "secret_file", "on_bad_secret"}));
      if (v["header"]) {
        if (v["header"].IsNull()) {
          p->override_header.header.clear();
        } else {
          TURNOUT_ASSIGN_OR_RETURN(p->override_header.header,
                                   r.String(v["header"], "policy.override.header"));
        }
      }
      if (v["secret"]) {
        TURNOUT_ASSIGN_OR_RETURN(p->override_header.secret,
                                 r.String(v["secret"], "policy.override.secret"));
      }
      if (v["secret_file"]) {
        TURNOUT_ASSIGN_OR_RETURN(*secret_file,
                                 r.String(v["secret_file"], "policy.override.secret_file"));
      }
      if (v["on_bad_secret"]) {
        TURNOUT_ASSIGN_OR_RETURN(std::string b,
                                 r.String(v["on_bad_secret"], "policy.override.on_bad_secret"));
        if (b != "ignore" && b != "reject") {
          return r.Error(v["on_bad_secret"], "policy.override.on_bad_secret",
                         "'ignore' or 'reject'");
        }
        p->override_header.reject_bad_secret = b == "reject";
      }
    }
  }
  return Status::Ok();
}

Result<RouterConfig> ReadConfig(const YamlReader& r, const YAML::Node& root) {
  RouterConfig c;
  if (root.IsNull()) return r.Error(root, "(top level)", "a mapping of router settings");
  TURNOUT_RETURN_IF_ERROR(
      r.Keys(root, "",
             {"listen", "workers", "admin", "slots", "policy", "state_file", "trusted_proxies",
              "request_id_header", "health", "timeouts", "limits"}));
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    if (key == "listen") {
      TURNOUT_ASSIGN_OR_RETURN(c.listen, r.Strings(v, "listen", /*allow_single=*/true));
      for (size_t i = 0; i < c.listen.size(); ++i) {
        const YAML::Node at = v.IsSequence() ? v[i] : v;
        if (!ParseHostPort(c.listen[i]).ok()) {
          return r.Error(at, "listen", "host:port such as 0.0.0.0:8080 or [::]:8080");
        }
      }
    } else if (key == "workers") {
      TURNOUT_ASSIGN_OR_RETURN(
          int64_t w, r.Int(v, "workers", 0, 256, "a number of threads 0..256 (0 = one per core)"));
      c.workers = static_cast<int>(w);
    } else if (key == "admin") {
      TURNOUT_RETURN_IF_ERROR(r.Keys(v, "admin", {"address", "token", "hosts"}));
      if (v["address"]) {
        if (v["address"].IsNull()) {
          c.admin.clear();
        } else {
          TURNOUT_ASSIGN_OR_RETURN(c.admin, r.String(v["address"], "admin.address"));
          if (!c.admin.empty() && !CheckAdminAddress(c.admin).ok()) {
            return r.Error(v["address"], "admin.address",
                           "host:port such as 127.0.0.1:9901, or unix:/path/to/admin.sock");
          }
        }
      }
      if (v["token"]) {
        TURNOUT_ASSIGN_OR_RETURN(c.admin_token, r.String(v["token"], "admin.token"));
      }
      if (v["hosts"]) {
        TURNOUT_ASSIGN_OR_RETURN(c.admin_hosts,
                                 r.Strings(v["hosts"], "admin.hosts", /*allow_single=*/true));
      }
    } else if (key == "slots") {
      if (!v.IsMap() || v.size() == 0) {
        return r.Error(v, "slots",
                       "a mapping of slot name to instances, e.g. blue: [127.0.0.1:9001]");
      }
      std::set<std::string> seen;
      for (const auto& slot : v) {
        SlotConfig s;
        s.name = slot.first.Scalar();
        const std::string path = "slots." + s.name;
        if (!IsValidSlotName(s.name)) {
          return r.Error(slot.first, path, "a slot name of letters, digits, '.', '_' or '-'");
        }
        if (!seen.insert(s.name).second) return r.Problem(slot.first, path, "slot named twice");
        if (!slot.second.IsNull()) {
          TURNOUT_ASSIGN_OR_RETURN(s.instances, r.Strings(slot.second, path, true));
        }
        for (size_t i = 0; i < s.instances.size(); ++i) {
          const YAML::Node at = slot.second.IsSequence() ? slot.second[i] : slot.second;
          auto hp = ParseHostPort(s.instances[i]);
          if (!hp.ok() || hp->port == 0) {
            return r.Error(at, path, "host:port of an instance such as 127.0.0.1:9001");
          }
        }
        c.slots.push_back(std::move(s));
      }
    } else if (key == "policy") {
      TURNOUT_RETURN_IF_ERROR(ReadPolicy(r, v, &c.policy, &c.override_secret_file));
    } else if (key == "state_file") {
      TURNOUT_ASSIGN_OR_RETURN(c.state_file, r.String(v, "state_file"));
    } else if (key == "trusted_proxies") {
      TURNOUT_ASSIGN_OR_RETURN(c.trusted_proxies, r.Strings(v, "trusted_proxies", false));
      for (size_t i = 0; i < c.trusted_proxies.size(); ++i) {
        if (!CheckProxy(c.trusted_proxies[i]).ok()) {
          return r.Error(v[i], "trusted_proxies", "an IP address or CIDR such as 10.0.0.0/8");
        }
      }
    } else if (key == "request_id_header") {
      TURNOUT_ASSIGN_OR_RETURN(c.request_id_header, r.String(v, "request_id_header"));
    } else if (key == "health") {
      TURNOUT_RETURN_IF_ERROR(ReadHealth(r, v, &c.health));
    } else if (key == "timeouts") {
      TURNOUT_RETURN_IF_ERROR(ReadTimeouts(r, v, &c.timeouts));
    } else if (key == "limits") {
      TURNOUT_RETURN_IF_ERROR(ReadLimits(r, v, &c.limits));
    }
  }
  if (!root["slots"])
    return r.Problem(root, "slots", "missing; list the slots and their instances");
  if (!root["listen"]) return r.Problem(root, "listen", "missing; e.g. listen: 0.0.0.0:8080");
  if (c.policy.active.empty() && c.slots.size() == 1) c.policy.active = c.slots[0].name;
  // Cross-field checks carry the line of the section they concern.
  Status s = ValidateRouterConfig(c);
  if (!s.ok()) {
    YAML::Node at = root;
    const std::string& m = s.message();
    for (std::string_view section :
         {"policy", "admin", "slots", "listen", "health", "timeouts", "limits", "request_id_header",
          "trusted_proxies", "workers", "state_file"}) {
      if (m.rfind(std::string(section), 0) == 0 && root[std::string(section)]) {
        at = root[std::string(section)];
        // Point at the precise key when the message names it (policy.active, admin.token).
        std::string_view rest = std::string_view(m).substr(section.size());
        if (rest.size() > 1 && rest[0] == '.' && at.IsMap()) {
          std::string sub(rest.substr(1, rest.find_first_of(".: ") - 1));
          if (at[sub]) at = at[sub];
        }
        break;
      }
    }
    return InvalidArgument(r.Where(at) + m);
  }
  return c;
}

}  // namespace

std::string DefaultAdminAddress() {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  if (runtime != nullptr && runtime[0] == '/') {
    return std::string(kUnixAddressPrefix) + runtime + "/turnout/admin.sock";
  }
  if (::geteuid() == 0) return std::string(kUnixAddressPrefix) + "/run/turnout/admin.sock";
  return std::string(kUnixAddressPrefix) + "/tmp/turnout-" + std::to_string(::geteuid()) +
         "/admin.sock";
}

std::string_view UnixSocketPathOf(std::string_view address) {
  if (!address.starts_with(kUnixAddressPrefix)) return {};
  return address.substr(kUnixAddressPrefix.size());
}

Status ValidateRouterConfig(const RouterConfig& c) {
  if (c.listen.empty()) return InvalidArgument("listen: at least one address is needed");
  for (const auto& l : c.listen) TURNOUT_RETURN_IF_ERROR(CheckAddress("listen", l, true));
  if (c.workers < 0 || c.workers > 256) {
    return InvalidArgument("workers: must be within 0..256 (0 = one per core), got " +
                           std::to_string(c.workers));
  }
  if (!c.admin.empty()) {
    TURNOUT_RETURN_IF_ERROR(CheckAdminAddress(c.admin));
    // On loopback too: any local process and any web page the operator opens can reach it.
    if (c.admin_token.empty() && UnixSocketPathOf(c.admin).empty()) {
      return InvalidArgument(
          "admin.token: required because the admin API listens on TCP (" + c.admin +
          "); give a token (--admin-token, --admin-token-file FILE or $TURNOUT_ADMIN_TOKEN; "
          "admin.token in YAML) or listen on a Unix socket (unix:/path/to/admin.sock)");
    }
  }
  for (char ch : c.admin_token) {
    if (ch <= 0x20 || ch >= 0x7f) {
      return InvalidArgument("admin.token: only visible ASCII characters (no spaces)");
    }
  }
  if (c.slots.empty()) return InvalidArgument("slots: at least one slot is needed");
  std::vector<std::string> names;
  for (const auto& s : c.slots) {
    if (!IsValidSlotName(s.name)) {
      return InvalidArgument("slots: '" + s.name +
                             "' is not a valid slot name (1..64 of letters, digits, . _ -)");
    }
    if (std::find(names.begin(), names.end(), s.name) != names.end()) {
      return InvalidArgument("slots." + s.name + ": slot named twice");
    }
    names.push_back(s.name);
    std::set<std::string> seen;
    for (const auto& i : s.instances) {
      TURNOUT_RETURN_IF_ERROR(CheckAddress("slots." + s.name, i, false));
      if (!seen.insert(i).second) {
        return InvalidArgument("slots." + s.name + ": instance " + i + " listed twice");
      }
    }
  }
  TURNOUT_RETURN_IF_ERROR(ValidatePolicy(c.policy, names));
  for (const auto& p : c.trusted_proxies) TURNOUT_RETURN_IF_ERROR(CheckProxy(p));
  if (!c.request_id_header.empty() && !IsToken(c.request_id_header)) {
    return InvalidArgument("request_id_header: '" + c.request_id_header + "' is not a header name");
  }
  const HealthCheckConfig& h = c.health;
  if (h.path.empty() || h.path[0] != '/') {
    return InvalidArgument("health.path: must start with '/', got '" + h.path + "'");
  }
  TURNOUT_RETURN_IF_ERROR(Positive("health.interval", h.interval));
  TURNOUT_RETURN_IF_ERROR(Positive("health.timeout", h.timeout));
  TURNOUT_RETURN_IF_ERROR(Positive("health.eject_for", h.eject_for));
  TURNOUT_RETURN_IF_ERROR(AtLeast("health.rise", h.rise, 1));
  TURNOUT_RETURN_IF_ERROR(AtLeast("health.fall", h.fall, 1));
  TURNOUT_RETURN_IF_ERROR(
      AtLeast("health.eject_after_connect_failures", h.eject_after_connect_failures, 1));
  const TimeoutConfig& t = c.timeouts;
  for (const auto& [name, v] : {std::pair<const char*, Millis>{"timeouts.head", t.head},
                                {"timeouts.client_idle", t.client_idle},
                                {"timeouts.upstream_connect", t.upstream_connect},
                                {"timeouts.upstream_response", t.upstream_response},
                                {"timeouts.upstream_idle", t.upstream_idle},
                                {"timeouts.body_idle", t.body_idle},
                                {"timeouts.tunnel_idle", t.tunnel_idle},
                                {"timeouts.tunnel_drain", t.tunnel_drain}}) {
    TURNOUT_RETURN_IF_ERROR(Positive(name, v));
  }
  const LimitsConfig& l = c.limits;
  TURNOUT_RETURN_IF_ERROR(AtLeast("limits.max_head_bytes", l.max_head_bytes, 1024));
  TURNOUT_RETURN_IF_ERROR(AtLeast("limits.max_target_bytes", l.max_target_bytes, 16));
  TURNOUT_RETURN_IF_ERROR(AtLeast("limits.max_headers", l.max_headers, 1));
  if (l.max_headers > http::kMaxHeaders) {
    return InvalidArgument("limits.max_headers: at most " + std::to_string(http::kMaxHeaders) +
                           ", got " + std::to_string(l.max_headers));
  }
  if (l.max_target_bytes > l.max_head_bytes) {
    return InvalidArgument("limits.max_target_bytes: must not exceed limits.max_head_bytes (" +
                           std::to_string(l.max_head_bytes) + ")");
  }
  return Status::Ok();
}

Result<RouterConfig> ParseRouterConfigYaml(std::string_view yaml, std::string_view file_name) {
  YamlReader reader(file_name);
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    return ReadConfig(reader, root);
  } catch (const YAML::Exception& e) {
    // Syntax errors: yaml-cpp knows where.
    std::string where =
        std::string(file_name) + (e.mark.is_null() ? "" : ":" + std::to_string(e.mark.line + 1));
    return InvalidArgument(where + ": not valid YAML: " + e.msg);
  }
}

Result<RouterConfig> LoadRouterConfigFile(const std::string& path) {
  TURNOUT_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, "router config"));
  return ParseRouterConfigYaml(text, path);
}

std::string OverrideSecretFilePath(const RouterConfig& config) {
  if (!config.override_secret_file.empty()) return config.override_secret_file;
  if (!config.state_file.empty()) return config.state_file + ".override-secret";
  return {};
}

}  // namespace turnout::router
