// turnout-container-test-app: the program inside the container tests' image. Linked statically,
// so the image is this one file (imported without a registry). Plain POSIX, no turnout code: it
// must run inside a bare container.
//
//   test-app serve     answers every HTTP request on 127.0.0.1:$PORT (Default 8080, or
//                      0.0.0.0 with BIND_ALL=1) with 200 "<APP_VERSION> <path>\n" (503 for
//                      /ready with FAIL_READY=1: a version that never gets ready; with
//                      ERROR_PERCENT=N, 500 for N of every 100 requests to other paths than
//                      /ready and /live, evenly spread: a version with errors); writes
//                      "request <path>" for each request to /log/...; on SIGTERM writes
//                      "stopping" and exits 0.
//   test-app exit N    writes "starting" (stdout) and "fatal: <MESSAGE or 'no config'>"
//                      (stderr), then exits with code N at once.
//   test-app hog       allocates and touches memory 4 MiB at a time until it is killed.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

volatile sig_atomic_t g_stop = 0;
void OnTerm(int) { g_stop = 1; }

const char* Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

int Serve() {
  struct sigaction sa {};
  sa.sa_handler = OnTerm;  // no SA_RESTART: accept() returns EINTR
  sigaction(SIGTERM, &sa, nullptr);
  int port = std::atoi(Env("PORT", "8080"));
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr =
      std::string(Env("BIND_ALL", "0")) == "1" ? htonl(INADDR_ANY) : htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 64) != 0) {
    std::fprintf(stderr, "cannot listen on port %d: %s\n", port, std::strerror(errno));
    return 3;
  }
  std::printf("listening on port %d\n", port);
  std::fflush(stdout);
  std::fprintf(stderr, "serving version %s\n", Env("APP_VERSION", "none"));
  const long error_percent = std::atol(Env("ERROR_PERCENT", "0"));
  long answered = 0;  // requests other than /ready and /live
  while (g_stop == 0) {
    int c = accept(fd, nullptr, nullptr);
    if (c < 0) continue;
    char buf[4096];
    std::string head;
    while (head.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = read(c, buf, sizeof(buf));
      if (n <= 0) break;
      head.append(buf, static_cast<size_t>(n));
    }
    size_t sp1 = head.find(' ');
    size_t sp2 = head.find(' ', sp1 + 1);
    std::string path = sp1 == std::string::npos || sp2 == std::string::npos
                           ? "/"
                           : head.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string body = std::string(Env("APP_VERSION", "none")) + " " + path + "\n";
    const bool unready = path == "/ready" && std::string(Env("FAIL_READY", "0")) == "1";
    if (path.rfind("/log/", 0) == 0) {
      std::printf("request %s\n", path.c_str());
      std::fflush(stdout);
    }
    bool error = false;
    if (path != "/ready" && path != "/live") {
      ++answered;
      error = answered * error_percent / 100 != (answered - 1) * error_percent / 100;
    }
    std::string reply = std::string(unready ? "HTTP/1.1 503 Service Unavailable"
                                    : error ? "HTTP/1.1 500 Internal Server Error"
                                            : "HTTP/1.1 200 OK") +
                        "\r\nContent-Length: " + std::to_string(body.size()) +
                        "\r\nConnection: close\r\n\r\n" + body;
    ssize_t ignored = write(c, reply.data(), reply.size());
    (void)ignored;
    close(c);
  }
  std::printf("stopping\n");
  return 0;
}

int Hog() {
  std::printf("allocating\n");
  std::fflush(stdout);
  // Every page is written through a volatile pointer: a compiler may otherwise drop the
  // allocations that are never read (clang does), and with them the whole loop.
  for (;;) {
    volatile char* p = static_cast<char*>(std::malloc(4 << 20));
    if (p == nullptr) return 4;
    for (size_t i = 0; i < (4 << 20); i += 4096) p[i] = 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "serve";
  if (mode == "serve") return Serve();
  if (mode == "exit" && argc > 2) {
    std::printf("starting\n");
    std::fflush(stdout);
    std::fprintf(stderr, "fatal: %s\n", Env("MESSAGE", "no config"));
    return std::atoi(argv[2]);
  }
  if (mode == "hog") return Hog();
  std::fprintf(stderr, "usage: test-app serve | exit N | hog\n");
  return 2;
}
