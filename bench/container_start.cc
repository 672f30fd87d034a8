// turnout-bench-container-start: how long a container engine takes from "run this image" to the
// app answering HTTP, without turnout: the baseline of bench/containers/run.sh.
//
//   turnout-bench-container-start --engine unix:///dir/podman.sock --image IMAGE --rounds N
//                                 [--cli podman]
//
// Each round takes a free loopback port, runs IMAGE with host networking and PORT=<port>, and
// polls http://127.0.0.1:<port>/ (a new connection every 0.5 ms; refused connections return at
// once) until it answers 200; then the container is removed (not timed). The image's app must
// listen on $PORT (the container test app does).
//
//   API mode (default): POST /containers/create, then /start, through container::EngineClient
//     (what turnout's container platform calls): one JSON line per round
//     {"mode":"api","create_ms","start_ms","answer_after_start_ms","total_ms"}.
//   --cli BINARY: the engine's own CLI, `BINARY --url unix://SOCK run -d --network host -e PORT=p
//     IMAGE`, until it answers: {"mode":"cli","cli_ms" (the CLI's own run until it exited),
//     "total_ms"}.
//
// Exit 0 when every round answered within --timeout (default 20 s).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "common/flags.h"
#include "common/text.h"
#include "container/engine_client.h"
#include "platform/ports.h"
#include "platform/run.h"

namespace turnout::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kUsage =
    R"(usage: turnout-bench-container-start --engine unix:///SOCK --image IMAGE [--rounds N] [--cli BINARY]
  --engine A    the engine's Unix socket (unix:///path or /path)
  --image I     the image (its app listens on $PORT)
  --rounds N    containers to run, one after the other.  Default: 10
  --cli B       run them with `B --url unix://SOCK run -d ...` instead of the API
  --timeout D   a round that does not answer by then fails. Default: 20s
)";

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// True once http://127.0.0.1:port/ answers 200.
bool Answers(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const char kRequest[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::write(fd, kRequest, sizeof(kRequest) - 1) == static_cast<ssize_t>(sizeof(kRequest) - 1)) {
      char buf[64];
      ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
      ok = n >= 12 && std::string_view(buf, 12) == "HTTP/1.1 200";
    }
  }
  ::close(fd);
  return ok;
}

bool WaitAnswer(uint16_t port, Clock::time_point deadline) {
  while (Clock::now() < deadline) {
    if (Answers(port)) return true;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  return false;
}

int Main(int argc, char** argv) {
  const std::vector<FlagSpec> specs = {{"engine", "A", ""},
                                       {"image", "I", ""},
                                       {"rounds", "N", ""},
                                       {"cli", "B", ""},
                                       {"timeout", "D", ""}};
  Result<Args> args = Args::ParseFlagsOnly(argc, argv, specs);
  if (!args.ok() || args->help() || !args->Has("engine") || !args->Has("image")) {
    std::cerr << (args.ok() ? "" : args.status().message() + "\n") << kUsage;
    return args.ok() && args->help() ? 0 : 2;
  }
  const int rounds = std::stoi(args->Get("rounds", "10"));
  const auto timeout = std::chrono::seconds(std::stoi(args->Get("timeout", "20")));
  Result<container::EngineClient> client = container::EngineClient::Connect({args->Get("engine")});
  if (!client.ok()) {
    std::cerr << client.status().message() << "\n";
    return 1;
  }
  const std::string image = args->Get("image");
  const std::string cli = args->Get("cli");
  int failed = 0;
  for (int round = 0; round < rounds; ++round) {
    Result<uint16_t> port = platform::FreePort();
    if (!port.ok()) {
      std::cerr << port.status().message() << "\n";
      return 1;
    }
    const std::string env = "PORT=" + std::to_string(*port);
    std::string id;
    char line[256];
    const Clock::time_point t0 = Clock::now();
    if (cli.empty()) {
      container::ContainerSpec spec;
      spec.image = image;
      spec.env = {env};
      spec.network_mode = "host";
      Result<std::string> created = client->ContainerCreate(spec);
      const Clock::time_point t1 = Clock::now();
      if (!created.ok()) {
        std::cerr << created.status().message() << "\n";
        return 1;
      }
      id = *created;
      Status started = client->ContainerStart(id);
      const Clock::time_point t2 = Clock::now();
      const bool answered = started.ok() && WaitAnswer(*port, t2 + timeout);
      const Clock::time_point t3 = Clock::now();
      if (!answered) ++failed;
      std::snprintf(
          line, sizeof(line),
          R"({"mode":"api","create_ms":%.1f,"start_ms":%.1f,"answer_after_start_ms":%.1f,"total_ms":%.1f,"ok":%s})",
          Ms(t1 - t0), Ms(t2 - t1), Ms(t3 - t2), Ms(t3 - t0), answered ? "true" : "false");
    } else {
      platform::RunSpec run;
      run.argv = {
          cli, "--url", "unix://" + client->socket_path(), "run", "-d", "--network", "host", "-e",
          env, image};
      Result<platform::RunResult> ran = platform::RunCommand(run);
      const Clock::time_point t1 = Clock::now();
      if (!ran.ok() || !ran->ok()) {
        std::cerr << cli << " run: "
                  << (ran.ok() ? ran->Describe() + ": " + ran->Tail() : ran.status().message())
                  << "\n";
        return 1;
      }
      id = std::string(Trim(ran->output));
      const bool answered = WaitAnswer(*port, t1 + timeout);
      const Clock::time_point t2 = Clock::now();
      if (!answered) ++failed;
      std::snprintf(line, sizeof(line), R"({"mode":"cli","cli_ms":%.1f,"total_ms":%.1f,"ok":%s})",
                    Ms(t1 - t0), Ms(t2 - t0), answered ? "true" : "false");
    }
    std::cout << line << std::endl;
    if (Status removed = client->ContainerRemove(id, /*force=*/true); !removed.ok()) {
      std::cerr << "cannot remove container " << id << ": " << removed.message() << "\n";
    }
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace turnout::bench

int main(int argc, char** argv) { return turnout::bench::Main(argc, argv); }
