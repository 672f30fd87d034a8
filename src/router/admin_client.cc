#include "router/admin_client.h"

#include <boost/asio.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "http/api_support.h"
#include "http/parser.h"
#include "router/admin_json.h"

namespace turnout::router {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using nlohmann::json;

// Replies of the admin API are small; this bounds what a wrong peer can make us buffer.
constexpr size_t kMaxReplyBytes = 64 << 20;

std::string Lowercase(std::string s) {
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = static_cast<char>(s[0] - 'A' + 'a');
  return s;
}

struct ExchangeState {
  std::optional<Result<AdminClient::HttpReply>> result;
  std::string stage = "connecting to";
};

Status Unreachable(const std::string& address, const boost::system::error_code& ec) {
  return Unavailable("cannot reach the router's admin API at " + address + ": " +
                     Lowercase(ec.message()) +
                     " - is `turnout router` running? pass --admin (or set TURNOUT_ADMIN)");
}

// Sends `request` on a connected socket and reads one response into state->result.
template <typename Socket>
asio::awaitable<void> ExchangeOn(Socket& socket, const std::string& address,
                                 const std::string& request, const std::string& method,
                                 ExchangeState* state);

asio::awaitable<void> DoExchange(std::string address, HostPort hp, std::string request,
                                 std::string method, ExchangeState* state) {
  auto executor = co_await asio::this_coro::executor;
  boost::system::error_code ec;
  if (std::string_view path = UnixSocketPathOf(address); !path.empty()) {
    asio::local::stream_protocol::socket socket(executor);
    auto [cec] = co_await socket.async_connect(asio::local::stream_protocol::endpoint(path),
                                               asio::as_tuple(asio::use_awaitable));
    if (cec) {
      state->result = Unreachable(address, cec);
      co_return;
    }
    co_await ExchangeOn(socket, address, request, method, state);
    co_return;
  }
  tcp::socket socket(executor);
  std::string host = hp.host == "localhost" ? "127.0.0.1" : hp.host;
  // IP literals (the usual case) skip the resolver, which runs on a thread of its own.
  std::vector<tcp::endpoint> endpoints;
  if (auto ip = asio::ip::make_address(host, ec); !ec) {
    endpoints.emplace_back(ip, hp.port);
  } else {
    tcp::resolver resolver(executor);
    auto [rec, results] = co_await resolver.async_resolve(host, std::to_string(hp.port),
                                                          asio::as_tuple(asio::use_awaitable));
    if (rec) {
      state->result = Unreachable(address, rec);
      co_return;
    }
    for (const auto& r : results) endpoints.push_back(r.endpoint());
  }
  auto [cec, endpoint] =
      co_await asio::async_connect(socket, endpoints, asio::as_tuple(asio::use_awaitable));
  if (cec) {
    state->result = Unreachable(address, cec);
    co_return;
  }
  // Requests are written in one piece; do not let Nagle hold a retransmitted tail.
  socket.set_option(tcp::no_delay(true), ec);
  co_await ExchangeOn(socket, address, request, method, state);
}

template <typename Socket>
asio::awaitable<void> ExchangeOn(Socket& socket, const std::string& address,
                                 const std::string& request, const std::string& method,
                                 ExchangeState* state) {
  boost::system::error_code ec;
  state->stage = "sending a request to";
  auto [wec, written] = co_await asio::async_write(socket, asio::buffer(request),
                                                   asio::as_tuple(asio::use_awaitable));
  if (wec) {
    state->result = Unreachable(address, wec);
    co_return;
  }
  state->stage = "waiting for the answer of";
  std::string buffer;
  char chunk[16384];
  bool eof = false;
  auto read_more = [&]() -> asio::awaitable<bool> {
    auto [rec2, n] =
        co_await socket.async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable));
    if (rec2 || n == 0) {
      eof = true;
      co_return false;
    }
    buffer.append(chunk, n);
    co_return buffer.size() <= kMaxReplyBytes;
  };
  auto broken = [&](std::string_view why) {
    return Unavailable("the router's admin API at " + address + " sent a broken reply (" +
                       std::string(why) + ")");
  };

  http::ResponseHead head;
  http::ParseResult parsed;
  http::ParseLimits limits;
  for (;;) {
    parsed = http::ParseResponseHead(buffer, method, limits, &head);
    if (parsed.state != http::ParseState::kIncomplete) break;
    if (!co_await read_more()) {
      state->result = broken(eof ? "connection closed before a complete head" : "too large");
      co_return;
    }
  }
  if (parsed.state == http::ParseState::kError) {
    state->result = broken(parsed.error_reason);
    co_return;
  }
  AdminClient::HttpReply reply;
  reply.status = head.status;
  if (const http::Header* ct = head.headers.Find("Content-Type")) {
    reply.content_type = std::string(ct->value);
  }
  const size_t start = parsed.consumed;
  switch (head.body) {
    case http::BodyKind::kNone:
      break;
    case http::BodyKind::kContentLength: {
      if (head.content_length > kMaxReplyBytes) {
        state->result = broken("body too large");
        co_return;
      }
      const size_t end = start + static_cast<size_t>(head.content_length);
      while (buffer.size() < end) {
        if (!co_await read_more()) {
          state->result = broken("body cut short");
          co_return;
        }
      }
      reply.body = buffer.substr(start, static_cast<size_t>(head.content_length));
      break;
    }
    case http::BodyKind::kChunked: {
      http::ChunkedDecoder decoder;
      size_t pos = start;
      while (!decoder.done()) {
        if (pos == buffer.size() && !co_await read_more()) {
          state->result = broken("chunked body cut short");
          co_return;
        }
        auto step = decoder.Feed(std::string_view(buffer).substr(pos));
        if (step.error) {
          state->result = broken(step.error_reason);
          co_return;
        }
        reply.body.append(step.data);
        pos += step.consumed;
      }
      break;
    }
    case http::BodyKind::kUntilClose:
      while (co_await read_more()) {
      }
      if (buffer.size() > kMaxReplyBytes) {
        state->result = broken("body too large");
        co_return;
      }
      reply.body = buffer.substr(start);
      break;
  }
  socket.shutdown(asio::socket_base::shutdown_both, ec);
  state->result = std::move(reply);
}

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
  HostPort host_port;
  if (address.starts_with(kUnixAddressPrefix)) {
    if (UnixSocketPathOf(address).empty()) {
      return InvalidArgument("admin address " + address +
                             " names no socket file; write unix:/path/to/admin.sock");
    }
  } else {
    auto hp = ParseHostPort(address);
    if (!hp.ok()) return hp.status().WithContext("admin address");
    if (hp->port == 0) return InvalidArgument("admin address " + address + " needs a port");
    host_port = std::move(*hp);
  }
  return std::unique_ptr<AdminClient>(
      new AdminClient(std::move(address), std::move(host_port), std::move(token), timeout));
}

Result<AdminClient::HttpReply> AdminClient::Exchange(std::string_view method,
                                                     std::string_view target,
                                                     std::string_view body) {
  std::string request;
  request.reserve(256 + body.size());
  request.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: ");
  // A Unix socket has no host name; "localhost" is what HTTP clients send there.
  request.append(UnixSocketPathOf(address_).empty() ? std::string_view(address_) : "localhost");
  request.append("\r\nUser-Agent: turnout\r\nAccept: application/json\r\n");
  if (!token_.empty()) request.append("Authorization: Bearer ").append(token_).append("\r\n");
  if (!body.empty() || http::IsMutatingMethod(method)) {
    request.append("Content-Type: application/json\r\nContent-Length: ");
    request.append(std::to_string(body.size())).append("\r\n");
  }
  request.append("Connection: close\r\n\r\n").append(body);

  ExchangeState state;
  asio::io_context io(1);
  asio::co_spawn(io,
                 DoExchange(address_, host_port_, std::move(request), std::string(method), &state),
                 [&state](std::exception_ptr e) {
                   if (e && !state.result) {
                     state.result = Internal("admin client failed unexpectedly");
                   }
                 });
  try {
    io.run_for(timeout_);
  } catch (const std::exception& e) {
    return Internal(std::string("admin client: ") + e.what());
  }
  if (!state.result) {
    return DeadlineExceeded("no answer within " + std::to_string(timeout_.count()) + " ms while " +
                            state.stage + " the router's admin API at " + address_ +
                            " - is it overloaded or is --admin pointing at something else?");
  }
  return std::move(*state.result);
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
  TURNOUT_ASSIGN_OR_RETURN(
      std::string body, Call("PUT", "/v1/policy?if_generation=" + std::to_string(if_generation),
                             PolicyToJson(policy, /*include_secret=*/true)));
  return ReadGeneration(body);
}

Result<uint64_t> AdminClient::UpdatePolicy(const PolicyChange& change) {
  return RetryWhileStale([&](bool* stale) -> Result<uint64_t> {
    TURNOUT_ASSIGN_OR_RETURN(std::string status_body, Call("GET", "/v1/status"));
    TURNOUT_ASSIGN_OR_RETURN(RouterStatus status, ParseRouterStatusJson(status_body));
    TURNOUT_ASSIGN_OR_RETURN(RoutingPolicy next, change(status.policy, status.generation));
    // The status never shows the secret; an empty one in `next` keeps the router's.
    json j = json::parse(PolicyToJson(next, /*include_secret=*/!next.override_header.secret.empty()));
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
