// turnoutd: the deployment daemon of one service. See daemon/daemon.h and docs/daemon.md.
//
//   turnoutd [--config turnout.yaml] [--socket PATH] [--api HOST:PORT --token T]
//
// Runs in the foreground until SIGTERM or SIGINT; `turnout up` starts it in the background.
// Under systemd (Type=notify) it reports READY=1 once the API answers, STATUS= lines, STOPPING=1
// and, with WatchdogSec=, WATCHDOG=1 while its own API answers /healthz
// (packaging/systemd/turnoutd.service, docs/operating.md).

#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "api/api.h"
#include "common/flags.h"
#include "daemon/daemon.h"
#include "systemd/service_manager.h"

namespace {

constexpr std::string_view kUsage =
    R"(usage: turnoutd [--config FILE] [--socket PATH] [--api HOST:PORT --token TOKEN]

turnoutd runs the deployments of one service: it embeds the traffic router (or drives a
standalone one), launches and supervises the app's instances, and records every step in the
state directory. The `turnout` CLI talks to it; `turnout up` starts it in the background.

  --config FILE     the service definition.                Default: turnout.yaml
  --socket PATH     the API's Unix socket.                 Default: <state_dir>/turnoutd.sock
  --api HOST:PORT   also serve the API on TCP (needs a token)
  --token TOKEN     bearer token of the TCP API (or env TURNOUTD_TOKEN)
  -h, --help        this text

Exit codes: 0 stopped by a signal, 1 could not start, 2 usage error.
)";

}  // namespace

int main(int argc, char** argv) {
  // Before any thread or child: the service manager's variables are turnoutd's alone.
  turnout::systemd::TakeNotifyEnvironment();
  turnout::daemon::DaemonOptions options;
  options.config_path = "turnout.yaml";
  if (const char* t = std::getenv("TURNOUTD_TOKEN")) options.api_token = t;
  static const std::vector<turnout::FlagSpec> kFlags = {
      {"config", "FILE", "the service definition"},
      {"socket", "PATH", "the API's Unix socket"},
      {"api", "HOST:PORT", "also serve the API on TCP"},
      {"token", "TOKEN", "the bearer token of the TCP API"},
  };
  auto args = turnout::Args::ParseFlagsOnly(argc, argv, kFlags);
  if (!args.ok()) {
    std::cerr << "turnoutd: " << args.status().message() << "\n";
    return 2;
  }
  if (args->help()) {
    std::cout << kUsage;
    return 0;
  }
  options.config_path = args->Get("config", options.config_path);
  options.socket_path = args->Get("socket", options.socket_path);
  options.api_tcp_address = args->Get("api", options.api_tcp_address);
  options.api_token = args->Get("token", options.api_token);

  // Signals are taken by sigwait below; every thread started from here inherits the mask.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);

  namespace systemd = turnout::systemd;
  systemd::NotifyStatus("starting: reading " + options.config_path);
  auto created = turnout::daemon::Daemon::Create(options);
  if (!created.ok()) {
    std::cerr << "turnoutd: " << created.status().message() << "\n";
    systemd::NotifyStatus("could not start: " + created.status().message());
    return 1;
  }
  std::unique_ptr<turnout::daemon::Daemon> daemon = std::move(created).value();
  if (turnout::Status s = daemon->Start(); !s.ok()) {
    std::cerr << "turnoutd: cannot start: " << s.message() << "\n";
    systemd::NotifyStatus("could not start: " + s.message());
    return 1;
  }
  // Start() returned: the API socket is bound and accepting.
  systemd::NotifyReady("serving; API on " + daemon->socket_path());
  // Alive = the API answers /healthz through its own socket within the watchdog's half
  // interval: the listener and a handler thread work. The controller thread is not judged:
  // one of its steps may rightly take long (a backup, a migration).
  const std::string endpoint = "unix:" + daemon->socket_path();
  systemd::Watchdog watchdog([&endpoint, timeout = systemd::WatchdogTimeout() / 2] {
    turnout::api::Client client(
        {endpoint, "", std::chrono::duration_cast<std::chrono::milliseconds>(timeout)});
    turnout::Result<turnout::api::Reply> r = client.Call("GET", "/healthz");
    return r.ok() && r->status == 200;
  });
  int signal_number = 0;
  while (sigwait(&stop, &signal_number) != 0) {
  }
  std::cerr << "turnoutd: signal " << signal_number << ", stopping\n";
  systemd::NotifyStopping(std::string(signal_number == SIGINT ? "SIGINT" : "SIGTERM") +
                          ": stopping (app instances and the router keep running)");
  daemon->Stop();
  return 0;
}
