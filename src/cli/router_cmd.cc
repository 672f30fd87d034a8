#include "cli/router_cmd.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli/args.h"
#include "cli/router_flags.h"
#include "cli/router_output.h"
#include "common/clock.h"
#include "common/file_util.h"
#include "router/admin_client.h"
#include "router/admin_json.h"
#include "router/admin_server.h"
#include "router/router.h"
#include "systemd/service_manager.h"

namespace turnout::cli {
namespace {

using nlohmann::json;
using router::AdminClient;
using router::Millis;

int UsageError(const std::string& message, const std::string& hint) {
  std::cerr << "turnout router: " << message << "\n" << hint;
  return kExitUsage;
}

int Failed(const Status& s) {
  std::cerr << "turnout router: " << s.message() << "\n";
  return kExitFailed;
}

// ---- Remote commands ---------------------------------------------------------------------

struct Remote {
  std::unique_ptr<AdminClient> client;
  bool json = false;
};

std::vector<FlagSpec> RemoteFlags(std::vector<FlagSpec> extra = {}) {
  std::vector<FlagSpec> flags = {
      {"admin", "ADDR",
       "the router's admin API, unix:/path or host:port (default $TURNOUT_ADMIN, else the "
       "router's default: unix:$XDG_RUNTIME_DIR/turnout/admin.sock)"},
      {"token", "TOKEN", "admin API token (default $TURNOUT_ADMIN_TOKEN)"},
      {"token-file", "FILE",
       "read the admin API token from FILE (turnoutd's router: <state_dir>/router-admin.token)"},
      {"json", "", "print the router's JSON instead of text"},
      {"request-timeout", "DURATION", "give up on the admin API after this (default 5s)"},
  };
  flags.insert(flags.end(), extra.begin(), extra.end());
  return flags;
}

Result<Remote> ConnectRemote(const Args& args) {
  Remote r;
  r.json = args.Has("json");
  Millis timeout(5000);
  if (args.Has("request-timeout")) {
    TURNOUT_ASSIGN_OR_RETURN(timeout, ParseDuration(args.Get("request-timeout")));
  }
  std::string token = args.Get("token", EnvOr("TURNOUT_ADMIN_TOKEN", ""));
  if (args.Has("token-file")) {
    if (args.Has("token")) return InvalidArgument("give --token or --token-file, not both");
    TURNOUT_ASSIGN_OR_RETURN(token, ReadTokenFile(args.Get("token-file"), "--token-file"));
  }
  auto client =
      AdminClient::Create(args.Get("admin", EnvOr("TURNOUT_ADMIN", router::DefaultAdminAddress())),
                          std::move(token), timeout);
  if (!client.ok()) return client.status();
  r.client = std::move(client).value();
  return r;
}

// A transport failure (3) or the router's refusal (1).
int ExchangeFailed(const Status& s) {
  std::cerr << "turnout router: " << s.message() << "\n";
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded
             ? kExitUnreachable
             : kExitFailed;
}

struct Timed {
  AdminClient::HttpReply reply;
  double ms = 0;
};

// One admin API call. On failure prints the reason and sets *exit_code.
std::optional<Timed> Call(Remote& remote, std::string_view method, std::string_view target,
                          std::string_view body, int* exit_code) {
  const auto start = SystemClock::Get().Now();
  auto reply = remote.client->Exchange(method, target, body);
  const auto elapsed = SystemClock::Get().Now() - start;
  if (!reply.ok()) {
    *exit_code = ExchangeFailed(reply.status());
    return std::nullopt;
  }
  if (reply->status < 200 || reply->status > 299) {
    json j = json::parse(reply->body, nullptr, false);
    std::string message =
        !j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_string()
            ? j["error"].get<std::string>()
            : reply->body;
    std::cerr << "turnout router: the router refused (HTTP " << reply->status << "): " << message
              << "\n";
    *exit_code = kExitFailed;
    return std::nullopt;
  }
  return Timed{std::move(reply).value(),
               std::chrono::duration<double, std::milli>(elapsed).count()};
}

std::string Elapsed(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), ms < 10 ? "%.1f ms" : "%.0f ms", ms);
  return buf;
}

struct Sub {
  const char* name;
  const char* usage;  // after "turnout router "
  const char* summary;
  std::vector<FlagSpec> flags;
  size_t positional;  // how many positional arguments
  int (*run)(Remote&, const Args&);
};

// Wraps `text` at 80 columns, each line starting with `indent`.
std::string Wrap(std::string_view text, std::string_view indent) {
  std::string out;
  std::string line(indent);
  while (!text.empty()) {
    size_t space = text.find(' ');
    std::string_view word = text.substr(0, space);
    if (line.size() > indent.size() && line.size() + 1 + word.size() > 80) {
      out += line + "\n";
      line = std::string(indent);
    }
    if (line.size() > indent.size()) line += ' ';
    line += word;
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
  }
  return out + line + "\n";
}

std::string SubHelp(const Sub& s) {
  return std::string("usage: turnout router ") + s.usage + "\n\n" + Wrap(s.summary, "") +
         "\nOptions:\n" + FlagsHelp(s.flags) +
         "\nExit codes: 0 ok, 1 the router refused or the operation failed, 2 usage error,\n"
         "3 router unreachable.\n";
}

// Parses the policy from a reply of PUT /v1/policy, /v1/switch, /v1/weight.
Result<std::pair<uint64_t, router::RoutingPolicy>> ReadPolicyReply(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("generation") ||
      !j["generation"].is_number_unsigned() || !j.contains("policy")) {
    return Internal("unexpected reply from the router: " + body.substr(0, 200));
  }
  TURNOUT_ASSIGN_OR_RETURN(router::RoutingPolicy p, router::ParsePolicyJson(j["policy"].dump()));
  return std::make_pair(j["generation"].get<uint64_t>(), std::move(p));
}

// Sends a policy change and prints the router's reply: as is with --json, else the line
// `describe` makes of the new policy.
using DescribeChange =
    std::function<std::string(const router::RoutingPolicy&, const std::string& suffix)>;
int ChangePolicy(Remote& remote, std::string_view target, const std::string& body,
                 const DescribeChange& describe) {
  int code = kExitOk;
  auto r = Call(remote, target == "/v1/policy" ? "PUT" : "POST", target, body, &code);
  if (!r) return code;
  if (remote.json) {
    std::cout << r->reply.body;
    return kExitOk;
  }
  auto parsed = ReadPolicyReply(r->reply.body);
  if (!parsed.ok()) return Failed(parsed.status());
  const std::string suffix =
      " (generation " + std::to_string(parsed->first) + ", " + Elapsed(r->ms) + ")";
  std::cout << describe(parsed->second, suffix) << "\n";
  return kExitOk;
}

int RunSwitch(Remote& remote, const Args& args) {
  const std::string slot = args.positional()[0];
  return ChangePolicy(remote, "/v1/switch", json{{"slot", slot}}.dump(),
                      [&](const router::RoutingPolicy& p, const std::string& suffix) {
                        return "switched: " + slot + " now receives " +
                               FormatPercent(TrafficShare(p, slot)) + " %" + suffix;
                      });
}

int RunWeight(Remote& remote, const Args& args) {
  const std::string slot = args.positional()[0];
  auto bp = router::ParseWeightPercent(args.positional()[1]);
  if (!bp.ok()) {
    return UsageError(bp.status().message(), "usage: turnout router weight SLOT PERCENT\n");
  }
  return ChangePolicy(
      remote, "/v1/weight", json{{"slot", slot}, {"weight", FormatPercent(*bp)}}.dump(),
      [&](const router::RoutingPolicy& p, const std::string& suffix) {
        return "canary: " + slot + " now receives " + FormatPercent(TrafficShare(p, slot)) +
               " %, " + p.active + " " + FormatPercent(TrafficShare(p, p.active)) + " %" + suffix;
      });
}

int RunStatus(Remote& remote, const Args&) {
  int code = kExitOk;
  auto r = Call(remote, "GET", "/v1/status", "", &code);
  if (!r) return code;
  if (remote.json) {
    std::cout << r->reply.body;
    return kExitOk;
  }
  auto status = router::ParseRouterStatusJson(r->reply.body);
  if (!status.ok()) return Failed(status.status());
  std::cout << FormatStatus(*status);
  return kExitOk;
}

int RunPolicy(Remote& remote, const Args& args) {
  int code = kExitOk;
  if (args.Has("set")) {
    const std::string file = args.Get("set");
    std::string body;
    if (file == "-") {
      std::ostringstream in;
      in << std::cin.rdbuf();
      body = in.str();
    } else {
      auto text = ReadFileToString(file, "policy file");
      if (!text.ok()) return Failed(text.status());
      body = std::move(text).value();
    }
    // Checked here first so that a typo is reported with the file's name.
    auto local = router::ParsePolicyJson(body);
    if (!local.ok()) {
      std::cerr << "turnout router: " << file << ": " << local.status().message() << "\n";
      return kExitFailed;
    }
    return ChangePolicy(remote, "/v1/policy", body,
                        [](const router::RoutingPolicy& p, const std::string& suffix) {
                          return "policy set: " + DescribePolicy(p) + suffix;
                        });
  }
  auto r = Call(remote, "GET", "/v1/policy", "", &code);
  if (!r) return code;
  json j = json::parse(r->reply.body, nullptr, false);
  if (remote.json || j.is_discarded()) {
    std::cout << r->reply.body;
    return kExitOk;
  }
  auto p = router::ParsePolicyJson(r->reply.body);
  if (p.ok()) std::cout << "# " << DescribePolicy(*p) << "\n";
  std::cout << j.dump(2) << "\n";
  return kExitOk;
}

int RunDrain(Remote& remote, const Args& args) {
  const std::string slot = args.positional()[0];
  Millis timeout(30000);
  if (args.Has("timeout")) {
    auto t = ParseDuration(args.Get("timeout"));
    if (!t.ok()) return UsageError("--timeout: " + t.status().message(), "");
    timeout = *t;
  }
  const bool wait = args.Has("wait");
  const bool live = wait && !remote.json && isatty(STDOUT_FILENO);
  Clock& clock = SystemClock::Get();
  const auto deadline = clock.Now() + timeout;
  std::string last_line;
  for (;;) {
    int code = kExitOk;
    auto r = Call(remote, "GET", "/v1/slots/" + slot, "", &code);
    if (!r) {
      if (live) std::cout << "\n";
      return code;
    }
    auto s = router::ParseSlotStatusJson(r->reply.body);
    if (!s.ok()) return Failed(s.status());
    if (s->receives_traffic) {
      if (live && !last_line.empty()) std::cout << "\n";
      std::cerr << "turnout router: slot " << slot
                << " still receives traffic by policy, so it will not drain; move the traffic "
                   "first (turnout router switch OTHER_SLOT, or weight "
                << slot << " 0)\n";
      return kExitFailed;
    }
    const std::string line = slot + ": " + DescribeDrain(*s);
    const bool done = s->drained || !wait || clock.Now() >= deadline;
    if (remote.json && done) {
      std::cout << r->reply.body;
    } else if (live) {
      std::cout << "\r\033[K" << line << std::flush;
    } else if (!remote.json && line != last_line) {
      std::cout << line << "\n" << std::flush;
    }
    last_line = line;
    if (done) {
      if (live) std::cout << "\n";
      if (!s->drained && wait) {
        std::cerr << "turnout router: " << slot << " not drained after " << timeout.count()
                  << " ms (" << DescribeDrain(*s) << ")\n";
      }
      return s->drained ? kExitOk : kExitFailed;
    }
    // Polling a local admin API a few times a second costs nothing and keeps the line live.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int RunMetrics(Remote& remote, const Args& args) {
  const std::string window = args.Get("window", "60");
  int code = kExitOk;
  auto r = Call(remote, "GET", "/v1/metrics?window=" + window, "", &code);
  if (!r) return code;
  if (remote.json) {
    std::cout << r->reply.body;
    return kExitOk;
  }
  auto m = router::ParseWindowMetricsJson(r->reply.body);
  if (!m.ok()) return Failed(m.status());
  json j = json::parse(r->reply.body);
  std::cout << FormatMetrics(std::chrono::seconds(j["window_seconds"].get<int64_t>()), *m);
  return kExitOk;
}

const std::vector<Sub>& Subcommands() {
  static const std::vector<Sub> kSubs = {
      {"switch", "switch SLOT [options]",
       "Send all traffic to SLOT (the canary, if any, is cleared). Requests in flight finish "
       "where they started.",
       RemoteFlags(), 1, RunSwitch},
      {"weight", "weight SLOT PERCENT [options]",
       "Make SLOT the canary with PERCENT of new clients (0..100, steps of 0.01, e.g. 5 or "
       "12.5%). Raising the weight keeps every client already on the canary there.",
       RemoteFlags(), 2, RunWeight},
      {"status", "status [options]",
       "Show the policy and, per slot, its traffic share, requests in flight, drain state and "
       "instances with their health.",
       RemoteFlags(), 0, RunStatus},
      {"policy", "policy [--set FILE.json] [options]",
       "Print the routing policy as JSON, or replace it with the policy in FILE (- for stdin). "
       "A policy the router refuses leaves the old one serving.",
       RemoteFlags({{"set", "FILE", "replace the policy with this JSON file (- = stdin)"}}), 0,
       RunPolicy},
      {"drain", "drain SLOT [--wait] [--timeout 30s] [options]",
       "Report whether SLOT is drained (no traffic by policy, no requests in flight). With "
       "--wait, wait until it is, showing a live line. Exit 0 when drained, 1 when not.",
       RemoteFlags({{"wait", "", "wait until the slot is drained"},
                    {"timeout", "DURATION", "give up waiting after this (default 30s)"}}),
       1, RunDrain},
      {"metrics", "metrics [--window SECONDS] [options]",
       "Per-slot requests, response classes, error rate and latency over the last window.",
       RemoteFlags({{"window", "SECONDS", "the window in seconds, 1..3600 (default 60)"}}), 0,
       RunMetrics},
  };
  return kSubs;
}

// ---- Running a router --------------------------------------------------------------------

std::string RouterHelp() {
  std::string out =
      "usage: turnout router [--config FILE | --listen ADDR --slot NAME=ADDR,... [options]]\n"
      "       turnout router COMMAND [options]\n\n"
      "Without a command: run the traffic router in the foreground until SIGINT or SIGTERM.\n\n"
      "Options to run a router:\n" +
      FlagsHelp(RouterRunFlags()) + "\nCommands that drive a running router:\n";
  for (const auto& s : Subcommands()) {
    std::string left = std::string("  ") + s.usage;
    out += left + "\n" + Wrap(s.summary, "      ");
  }
  out +=
      "\nRun `turnout router COMMAND --help` for a command's options.\n"
      "Exit codes: 0 ok, 1 failed, 2 usage error, 3 router unreachable.\n";
  return out;
}

int RunForeground(const std::vector<std::string>& argv) {
  // Before any thread starts: the service manager's variables are this process's alone.
  systemd::TakeNotifyEnvironment();
  auto args = Args::Parse(argv, RouterRunFlags());
  if (!args.ok()) return UsageError(args.status().message(), "see: turnout router --help\n");
  if (args->help()) {
    std::cout << RouterHelp();
    return kExitOk;
  }
  if (!args->positional().empty()) {
    return UsageError("unknown router command '" + args->positional()[0] + "'", RouterHelp());
  }
  auto config = RouterConfigFromArgs(*args);
  if (!config.ok()) {
    std::cerr << "turnout router: " << config.status().message() << "\n";
    return config.status().code() == StatusCode::kIoError ? kExitFailed : kExitUsage;
  }
  // Block the stop signals before any thread starts, so that every thread inherits the mask and
  // only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);  // reopens the access log
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const std::string admin_address = config->admin;
  const std::string admin_token = config->admin_token;
  const std::string secret_file = router::OverrideSecretFilePath(*config);
  const std::vector<std::string> admin_hosts = config->admin_hosts;
  const router::AccessLogConfig access_log = config->access_log;
  auto created = router::Router::Create(std::move(config).value());
  if (!created.ok()) return Failed(created.status());
  std::unique_ptr<router::Router> r = std::move(created).value();
  if (Status s = r->Start(); !s.ok()) return Failed(s);

  std::unique_ptr<router::AdminServer> admin;
  if (!admin_address.empty()) {
    router::AdminServer::Options options;
    options.address = admin_address;
    options.token = admin_token;
    options.allowed_hosts = admin_hosts;
    router::Router* raw = r.get();
    admin =
        std::make_unique<router::AdminServer>(options, *r, [raw] { return raw->PrometheusText(); });
    if (Status s = admin->Start(); !s.ok()) {
      r->Stop();
      return Failed(s);
    }
  }
  auto policy = r->GetPolicy();
  std::cout << "turnout router: serving on";
  for (const auto& l : r->ListenAddresses()) std::cout << " " << l;
  std::cout << "\n";
  if (policy.ok()) std::cout << "turnout router: policy: " << DescribePolicy(*policy) << "\n";
  std::cout << "turnout router: " << router::DescribeFdBudget(r->fd_budget()) << "\n";
  if (policy.ok() && !policy->override_header.header.empty()) {
    std::cout << "turnout router: the " << policy->override_header.header
              << " header needs X-Turnout-Secret: "
              << (secret_file.empty() ? std::string("the secret is kept in memory only (give "
                                                    "--override-secret-file to read it)")
                                      : "the secret is in " + secret_file)
              << "\n";
  }
  if (admin) {
    std::cout << "turnout router: admin API on " << admin->address()
              << (admin_token.empty() ? "" : " (token required)") << "\n";
  } else {
    std::cout << "turnout router: admin API disabled\n";
  }
  if (!access_log.path.empty()) {
    std::cout << "turnout router: access log: "
              << (access_log.path == "-" ? std::string("stdout") : access_log.path) << " ("
              << (access_log.format == router::AccessLogConfig::Format::kJson ? "json" : "logfmt")
              << ", 2xx/3xx sampled at " << access_log.sample * 100
              << " %; SIGHUP reopens the file)\n";
  }
  std::cout << "turnout router: stop with Ctrl-C or SIGTERM" << std::endl;
  // Start() returned: every listener accepts (and the admin API, when configured).
  std::string serving = "serving on";
  for (const auto& l : r->ListenAddresses()) serving += " " + l;
  systemd::NotifyReady(serving);
  // Alive = the router's control plane answers a status read (it takes the router's lock, as
  // every admin request and policy change does) within the watchdog's half interval.
  systemd::Watchdog watchdog([raw = r.get()] { return raw->GetStatus().ok(); });

  int signal_number = 0;
  for (;;) {
    if (sigwait(&stop_signals, &signal_number) != 0) continue;
    if (signal_number != SIGHUP) break;
    r->ReopenAccessLog();
  }
  const char* signal_name = signal_number == SIGINT ? "SIGINT" : "SIGTERM";
  std::cout << "turnout router: " << signal_name << " received, stopping" << std::endl;
  systemd::NotifyStopping(std::string(signal_name) + ": draining and stopping");
  if (admin) admin->Stop();
  r->Stop();
  std::cout << "turnout router: stopped" << std::endl;
  return kExitOk;
}

}  // namespace

std::vector<std::string> RouterSubcommandNames() {
  std::vector<std::string> names;
  for (const auto& sub : Subcommands()) names.push_back(sub.name);
  return names;
}

int RunRouterCommand(const std::vector<std::string>& argv) {
  if (argv.empty() || argv[0].empty() || argv[0][0] == '-') return RunForeground(argv);
  for (const auto& sub : Subcommands()) {
    if (argv[0] != sub.name) continue;
    auto args = Args::Parse(std::vector<std::string>(argv.begin() + 1, argv.end()), sub.flags);
    if (!args.ok()) return UsageError(args.status().message(), SubHelp(sub));
    if (args->help()) {
      std::cout << SubHelp(sub);
      return kExitOk;
    }
    if (args->positional().size() != sub.positional) {
      return UsageError(std::string(sub.name) + " takes " + std::to_string(sub.positional) +
                            " argument(s), got " + std::to_string(args->positional().size()),
                        SubHelp(sub));
    }
    auto remote = ConnectRemote(*args);
    if (!remote.ok()) return UsageError(remote.status().message(), SubHelp(sub));
    return sub.run(*remote, *args);
  }
  return UsageError("unknown router command '" + argv[0] + "'", RouterHelp());
}

}  // namespace turnout::cli
