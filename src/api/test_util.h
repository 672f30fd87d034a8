// Helpers for the api tests: a private temporary directory for socket files, an echo handler,
// and a raw socket that sends exact bytes (for requests the Client would never produce).

#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "api/api.h"

namespace turnout::api::testing {

// A fresh directory under the system's temporary directory, removed with its contents.
// Kept short: socket paths must fit sun_path.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tapi-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// Replies with everything the handler saw, so tests can check the transport's decoding.
inline Reply Echo(const Request& r) {
  nlohmann::json query = nlohmann::json::array();
  for (const auto& [k, v] : r.query) query.push_back({k, v});
  return Reply::Json(200, nlohmann::json{{"method", r.method},
                                         {"target", r.target},
                                         {"path", r.path},
                                         {"query", query},
                                         {"body", r.body},
                                         {"peer", r.peer}}
                              .dump());
}

// Holds handlers back the way a daemon handler waits for the controller: Pass() records that a
// handler got there and blocks until Open() (or `limit`, so that a failing test cannot hang).
class Gate {
 public:
  void Pass(std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait_for(lock, limit, [&] { return open_; });
  }
  // Waits until `n` handlers have reached Pass(); false after `limit`.
  bool WaitEntered(int n = 1, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return entered_ >= n; });
  }
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int entered_ = 0;
  bool open_ = false;
};

// A connected stream socket (Unix path, or TCP "127.0.0.1:port"); -1 when connecting failed.
inline int ConnectRaw(const std::string& unix_path, const std::string& tcp_address = "") {
  if (!unix_path.empty()) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, unix_path.c_str(), sizeof(addr.sun_path) - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  const size_t colon = tcp_address.rfind(':');
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(tcp_address.substr(colon + 1))));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline bool SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

struct RawResult {
  std::string bytes;    // everything received
  bool closed = false;  // the server closed the connection (EOF or reset) before the deadline
};

// Reads until the peer closes or `limit` passes.
inline RawResult ReadUntilClosed(int fd, std::chrono::milliseconds limit) {
  RawResult r;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  char chunk[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return r;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return r;
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      r.closed = true;
      return r;
    }
    r.bytes.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace turnout::api::testing
