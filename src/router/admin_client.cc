#include "router/admin_client.h"

#include <nlohmann/json.hpp>
#include <vector>

#include "http/api_support.h"
#include "httpc/client.h"
#include "router/admin_json.h"

namespace turnout::router {
namespace {

using nlohmann::json;

// Replies of the admin API are small; this bounds what a wrong peer can make us buffer.
constexpr size_t kMaxReplyBytes = 64 << 20;

Status StatusFromReply(const AdminClient::HttpReply& reply) {
  std::string message;
  json j = json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_string()) {
    message = j["error"].get<std::string>();
  } else {
    message = "HTTP " + std::to_string(reply.status) + ": " + reply.body.substr(0, 200);
  }
  switch (reply.status) {
    case 400:
    case 411:
    case 413:
    case 415:
    case 422:
    case 431:
      return InvalidArgument(message);
    case 401:
    case 403:
    case 421:
      return FailedPrecondition("the router's admin API refused the request: " + message);
    case 404:
      return NotFound(message);
    case 409:
      // A compare-and-set that lost the race is Aborted (retry); other refusals are not.
      if (!j.is_discarded() && j.is_object() && j.contains("current_generation")) {
        return Aborted(message);
      }
      return FailedPrecondition(message);
    case 503:
      return Unavailable(message);
    case 504:
      return DeadlineExceeded(message);
    default:
      return Internal("unexpected reply from the router's admin API: " + message);
  }
}

Result<uint64_t> ReadGeneration(const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("generation") ||
      !j["generation"].is_number_unsigned()) {
    return Internal("the router's admin API answered without a generation: " + body.substr(0, 200));
  }
  return j["generation"].get<uint64_t>();
}

std::string EscapeSlot(const std::string& slot) {
  // Slot names are [A-Za-z0-9._-]; anything else would not name a slot, so it is sent in a form
  // the server refuses with 404 instead of being interpreted as another path.
  std::string out;
  for (char c : slot) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
    if (plain) {
      out += c;
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out += '%';
      out += kHex[static_cast<uint8_t>(c) >> 4];
      out += kHex[static_cast<uint8_t>(c) & 15];
    }
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<AdminClient>> AdminClient::Create(std::string address, std::string token,
                                                         Millis timeout) {
  if (timeout.count() <= 0) return InvalidArgument("admin client timeout must be positive");
  if (address.starts_with(kUnixAddressPrefix)) {
    if (UnixSocketPathOf(address).empty()) {
      return InvalidArgument("admin address " + address +
                             " names no socket file; write unix:/path/to/admin.sock");
    }
  } else {
    auto hp = ParseHostPort(address);
    if (!hp.ok()) return hp.status().WithContext("admin address");
    if (hp->port == 0) return InvalidArgument("admin address " + address + " needs a port");
  }
  return std::unique_ptr<AdminClient>(
      new AdminClient(std::move(address), std::move(token), timeout));
}

Result<AdminClient::HttpReply> AdminClient::Exchange(std::string_view method,
                                                     std::string_view target,
                                                     std::string_view body) {
  httpc::Request request;
  request.method = std::string(method);
  if (std::string_view path = UnixSocketPathOf(address_); !path.empty()) {
    // A Unix socket has no host name; "localhost" is what HTTP clients send there.
    request.unix_socket = std::string(path);
    request.url = "http://localhost" + std::string(target);
  } else {
    request.url = "http://" + address_ + std::string(target);  // Host: the address as given
  }
  request.headers.emplace_back("Accept", "application/json");
  if (!token_.empty()) request.headers.emplace_back("Authorization", "Bearer " + token_);
  if (!body.empty() || http::IsMutatingMethod(method)) {
    request.headers.emplace_back("Content-Type", "application/json");
  }
  request.body = std::string(body);
  request.timeout = timeout_;
  request.connect_timeout = timeout_;
  request.max_response_bytes = kMaxReplyBytes;
  Result<httpc::Response> response = httpc::Fetch(request);
  if (!response.ok()) {
    const Status& s = response.status();
    if (s.code() == StatusCode::kDeadlineExceeded) {
      return DeadlineExceeded("no answer within " + std::to_string(timeout_.count()) +
                              " ms from the router's admin API at " + address_ +
                              " - is it overloaded or is --admin pointing at something else?");
    }
    if (s.code() == StatusCode::kUnavailable) {
      return Unavailable("cannot reach the router's admin API at " + address_ + ": " + s.message() +
                         " - is `turnout router` running? pass --admin (or set TURNOUT_ADMIN)");
    }
    return s;
  }
  HttpReply reply;
  reply.status = response->status;
  reply.content_type = response->Header("Content-Type");
  reply.body = std::move(response->body);
  return reply;
}

Result<std::string> AdminClient::Call(std::string_view method, std::string_view target,
                                      std::string_view body) {
  TURNOUT_ASSIGN_OR_RETURN(HttpReply reply, Exchange(method, target, body));
  if (reply.status < 200 || reply.status > 299) return StatusFromReply(reply);
  return std::move(reply.body);
}

Result<RouterStatus> AdminClient::GetStatus() {
  TURNOUT_ASSIGN_OR_RETURN(std::string body, Call("GET", "/v1/status"));
  return ParseRouterStatusJson(body);
}

Result<RoutingPolicy> AdminClient::GetPolicy() {
  TURNOUT_ASSIGN_OR_RETURN(std::string body, Call("GET", "/v1/policy"));
  return ParsePolicyJson(body);
}

Result<uint64_t> AdminClient::SetPolicy(const RoutingPolicy& policy) {
  TURNOUT_ASSIGN_OR_RETURN(
      std::string body, Call("PUT", "/v1/policy", PolicyToJson(policy, /*include_secret=*/true)));
  return ReadGeneration(body);
}

Result<uint64_t> AdminClient::SetPolicyIf(const RoutingPolicy& policy, uint64_t if_generation) {
  TURNOUT_ASSIGN_OR_RETURN(std::string body,
                           Call("PUT", "/v1/policy?if_generation=" + std::to_string(if_generation),
                                PolicyToJson(policy, /*include_secret=*/true)));
  return ReadGeneration(body);
}

Result<uint64_t> AdminClient::UpdatePolicy(const PolicyChange& change) {
  return RetryWhileStale([&](bool* stale) -> Result<uint64_t> {
    TURNOUT_ASSIGN_OR_RETURN(std::string status_body, Call("GET", "/v1/status"));
    TURNOUT_ASSIGN_OR_RETURN(RouterStatus status, ParseRouterStatusJson(status_body));
    TURNOUT_ASSIGN_OR_RETURN(RoutingPolicy next, change(status.policy, status.generation));
    // The status never shows the secret; an empty one in `next` keeps the router's.
    json j =
        json::parse(PolicyToJson(next, /*include_secret=*/!next.override_header.secret.empty()));
    if (next.override_header.secret.empty()) {
      json s = json::parse(status_body, nullptr, /*allow_exceptions=*/false);
      const bool secret_set = s.is_object() && s.contains("policy") && s["policy"].is_object() &&
                              s["policy"].contains("override") &&
                              s["policy"]["override"].is_object() &&
                              s["policy"]["override"].value("secret_set", false);
      j["override"]["secret_set"] = secret_set;
    }
    Result<std::string> body =
        Call("PUT", "/v1/policy?if_generation=" + std::to_string(status.generation), j.dump());
    *stale = !body.ok() && body.status().code() == StatusCode::kAborted;
    if (!body.ok()) return body.status();
    return ReadGeneration(*body);
  });
}

Result<uint64_t> AdminClient::SetSlotInstances(const std::string& slot,
                                               const std::vector<std::string>& instances) {
  json j = {{"instances", instances}};
  TURNOUT_ASSIGN_OR_RETURN(std::string body,
                           Call("PUT", "/v1/slots/" + EscapeSlot(slot) + "/instances", j.dump()));
  return ReadGeneration(body);
}

Result<SlotStatus> AdminClient::GetSlotStatus(const std::string& slot) {
  TURNOUT_ASSIGN_OR_RETURN(std::string body, Call("GET", "/v1/slots/" + EscapeSlot(slot)));
  return ParseSlotStatusJson(body);
}

Result<std::vector<SlotWindowMetrics>> AdminClient::GetWindowMetrics(std::chrono::seconds window) {
  TURNOUT_ASSIGN_OR_RETURN(std::string body,
                           Call("GET", "/v1/metrics?window=" + std::to_string(window.count())));
  return ParseWindowMetricsJson(body);
}

Result<std::vector<SlotWindowMetrics>> AdminClient::GetCumulativeMetrics() {
  TURNOUT_ASSIGN_OR_RETURN(std::string body, Call("GET", "/v1/metrics?window=0"));
  return ParseWindowMetricsJson(body);
}

Result<uint64_t> AdminClient::Switch(const std::string& slot) {
  TURNOUT_ASSIGN_OR_RETURN(std::string body,
                           Call("POST", "/v1/switch", json{{"slot", slot}}.dump()));
  return ReadGeneration(body);
}

Result<uint64_t> AdminClient::SetCanaryWeight(const std::string& slot, uint32_t weight_bp) {
  // Sent as a decimal string so that the weight is exact ("12.34"), never a rounded double.
  std::string percent = std::to_string(weight_bp / 100);
  if (weight_bp % 100 != 0) {
    percent += '.';
    percent += static_cast<char>('0' + (weight_bp % 100) / 10);
    percent += static_cast<char>('0' + weight_bp % 10);
  }
  TURNOUT_ASSIGN_OR_RETURN(
      std::string body,
      Call("POST", "/v1/weight", json{{"slot", slot}, {"weight", percent}}.dump()));
  return ReadGeneration(body);
}

Result<std::string> AdminClient::PrometheusText() { return Call("GET", "/metrics"); }

}  // namespace turnout::router
