// FakeProber: a Prober that sends nothing. Each request is answered by the first of: a fixed
// answer the test set for its address and path (Answer; the path without its query), the
// handler the test set (SetHandler: e.g. one that reads a FakePlatform's instances), or
// Unavailable ("connection refused": nothing listens there). Every request is recorded.
// Thread-safe.

#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "controller/prober.h"

namespace turnout::controller::testing {

class FakeProber final : public Prober {
 public:
  using Handler = std::function<Result<ProbeResponse>(const ProbeRequest&)>;

  void Answer(const std::string& address, const std::string& path, Result<ProbeResponse> answer) {
    std::lock_guard lock(mu_);
    answers_.insert_or_assign({address, path}, std::move(answer));
  }
  void Clear(const std::string& address, const std::string& path) {
    std::lock_guard lock(mu_);
    answers_.erase({address, path});
  }
  void SetHandler(Handler handler) {
    std::lock_guard lock(mu_);
    handler_ = std::move(handler);
  }

  Result<ProbeResponse> Probe(const ProbeRequest& request) override {
    Handler handler;
    {
      std::lock_guard lock(mu_);
      requests_.push_back(request);
      const std::string path = request.path.substr(0, request.path.find('?'));
      if (auto it = answers_.find({request.address, path}); it != answers_.end()) {
        return it->second;
      }
      handler = handler_;
    }
    if (handler) return handler(request);
    return Unavailable("connect to " + request.address + ": connection refused");
  }

  std::vector<ProbeRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  // How many requests went to `address` for `path` (without the query).
  int Count(const std::string& address, const std::string& path) const {
    std::lock_guard lock(mu_);
    int n = 0;
    for (const auto& r : requests_) {
      n += r.address == address && r.path.substr(0, r.path.find('?')) == path ? 1 : 0;
    }
    return n;
  }

  static ProbeResponse Status(int status, std::string body = "") {
    ProbeResponse r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, Result<ProbeResponse>> answers_;
  Handler handler_;
  std::vector<ProbeRequest> requests_;
};

}  // namespace turnout::controller::testing
