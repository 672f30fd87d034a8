// A file descriptor closed when its owner goes out of scope, so that early error returns cannot
// leak one. Internal to the platform module. Not thread-safe (a plain owner, like unique_ptr).

#pragma once

#include <unistd.h>

#include <utility>

namespace turnout::platform {

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  void swap(UniqueFd& other) { std::swap(fd_, other.fd_); }

 private:
  int fd_;
};

}  // namespace turnout::platform
