// turnoutd: the deployment daemon of one service. See daemon/daemon.h and docs/daemon.md.
//
//   turnoutd [--config turnout.yaml] [--socket PATH] [--api HOST:PORT --token T]
//
// Runs in the foreground until SIGTERM or SIGINT; `turnout up` starts it in the background.

#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/daemon.h"

namespace {

constexpr std::string_view kUsage = R"(usage: turnoutd [--config FILE] [--socket PATH] [--api HOST:PORT --token TOKEN]

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
  turnout::daemon::DaemonOptions options;
  options.config_path = "turnout.yaml";
  if (const char* t = std::getenv("TURNOUTD_TOKEN")) options.api_token = t;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    }
    std::string name = a, value;
    bool inline_value = false;
    if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      inline_value = true;
    }
    if (name != "--config" && name != "--socket" && name != "--api" && name != "--token") {
      std::cerr << "turnoutd: unknown argument '" << a << "'\n\n" << kUsage;
      return 2;
    }
    if (!inline_value) {
      if (i + 1 >= args.size()) {
        std::cerr << "turnoutd: " << name << " needs a value\n";
        return 2;
      }
      value = args[++i];
    }
    if (name == "--config") options.config_path = value;
    if (name == "--socket") options.socket_path = value;
    if (name == "--api") options.api_tcp_address = value;
    if (name == "--token") options.api_token = value;
  }

  // Signals are taken by sigwait below; every thread started from here inherits the mask.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto created = turnout::daemon::Daemon::Create(options);
  if (!created.ok()) {
    std::cerr << "turnoutd: " << created.status().message() << "\n";
    return 1;
  }
  std::unique_ptr<turnout::daemon::Daemon> daemon = std::move(created).value();
  if (turnout::Status s = daemon->Start(); !s.ok()) {
    std::cerr << "turnoutd: cannot start: " << s.message() << "\n";
    return 1;
  }
  int signal_number = 0;
  while (sigwait(&stop, &signal_number) != 0) {
  }
  std::cerr << "turnoutd: signal " << signal_number << ", stopping\n";
  daemon->Stop();
  return 0;
}
