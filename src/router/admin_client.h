// AdminClient: RouterControl over the admin HTTP API of a standalone `turnout router`.
//
// Synchronous, over turnout's one outbound HTTP client (httpc, libcurl): one connection per call
// (so calls from several threads do not share state), every call bounded by the timeout given to
// Create (connect + request + response). Switch and SetCanaryWeight use the server's single-request
// endpoints (POST /v1/switch, /v1/weight), which the router applies atomically; UpdatePolicy is a
// compare-and-set (PUT /v1/policy?if_generation=N) retried as RouterControl describes.
//
// Errors say what to do:
//   Unavailable       the router could not be reached ("... is `turnout router` running? pass
//                     --admin")
//   DeadlineExceeded  no complete answer within the timeout
//   otherwise         the router's refusal, mapped from the HTTP status: 400/413/415/431
//                     InvalidArgument, 401/403/421 FailedPrecondition (token, Origin, Host),
//                     404 NotFound, 409 Aborted for a stale if_generation (re-read and retry),
//                     other 409 FailedPrecondition, 503 Unavailable, other 5xx Internal; the
//                     message is the router's {"error":...}.
//
// Thread-safety: all methods may be called concurrently.

#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "router/config.h"
#include "router/router_control.h"

namespace turnout::router {

class AdminClient final : public RouterControl {
 public:
  // `address`: host:port or unix:/path of the admin API (requests carry Host: that host:port, or
  // localhost on a socket). `token`: sent as a Bearer token when non-empty.
  // Fails only when the address does not parse (nothing is contacted yet).
  static Result<std::unique_ptr<AdminClient>> Create(std::string address, std::string token,
                                                     Millis timeout);

  Result<RouterStatus> GetStatus() override;
  Result<RoutingPolicy> GetPolicy() override;
  Result<uint64_t> SetPolicy(const RoutingPolicy& policy) override;
  // PUT /v1/policy?if_generation=N; the router's 409 with "current_generation" is Aborted.
  Result<uint64_t> SetPolicyIf(const RoutingPolicy& policy, uint64_t if_generation) override;
  // GET /v1/status, then SetPolicyIf with its generation, retried as RouterControl describes.
  Result<uint64_t> UpdatePolicy(const PolicyChange& change) override;
  Result<uint64_t> SetSlotInstances(const std::string& slot,
                                    const std::vector<std::string>& instances) override;
  Result<SlotStatus> GetSlotStatus(const std::string& slot) override;
  Result<std::vector<SlotWindowMetrics>> GetWindowMetrics(std::chrono::seconds window) override;
  Result<std::vector<SlotWindowMetrics>> GetCumulativeMetrics() override;
  Result<uint64_t> Switch(const std::string& slot) override;
  Result<uint64_t> SetCanaryWeight(const std::string& slot, uint32_t weight_bp) override;

  // The raw exchange, for callers that print the router's JSON as is (`turnout ... --json`).
  struct HttpReply {
    int status = 0;
    std::string content_type;
    std::string body;
  };
  // Any HTTP status is a successful exchange; only transport failures are errors.
  Result<HttpReply> Exchange(std::string_view method, std::string_view target,
                             std::string_view body);
  // Like Exchange, but a non-2xx status becomes the Status described above; returns the body.
  Result<std::string> Call(std::string_view method, std::string_view target,
                           std::string_view body = {});

  // The Prometheus text of GET /metrics.
  Result<std::string> PrometheusText();

  const std::string& address() const { return address_; }

 private:
  AdminClient(std::string address, std::string token, Millis timeout)
      : address_(std::move(address)), token_(std::move(token)), timeout_(timeout) {}

  std::string address_;
  std::string token_;
  Millis timeout_;
};

}  // namespace turnout::router
