#include "router/admin_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <optional>
#include <nlohmann/json.hpp>
#include <map>

#include "common/host_port.h"
#include "http/api_support.h"
#include "http/parser.h"
#include "http/writer.h"
#include "router/admin_json.h"
#include "router/config.h"

namespace turnout::router {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using UnixProtocol = asio::local::stream_protocol;
using nlohmann::json;
using namespace asio::experimental::awaitable_operators;
using Reply = AdminServer::Reply;

// The admin API is for operators and one controller; a cap keeps a misbehaving script from
// exhausting file descriptors that the router needs.
constexpr size_t kMaxConnections = 256;

Reply JsonReply(int status, std::string body) {
  Reply r;
  r.status = status;
  r.body = std::move(body);
  r.body += '\n';
  return r;
}

Reply ErrorReply(int status, std::string_view message) {
  return JsonReply(status, ErrorJson(message));
}

Reply StatusReply(const Status& s) {
  return ErrorReply(http::HttpStatusFor(s.code()), s.message());
}

// Body parsing for the small command bodies; returns the object or an error reply.
Result<json> ParseBody(std::string_view body, std::string_view example) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgument("the body must be a JSON object such as " + std::string(example));
  }
  return j;
}

Result<std::string> SlotField(const json& j, std::string_view example) {
  if (!j.contains("slot") || !j["slot"].is_string() || j["slot"].get<std::string>().empty()) {
    return InvalidArgument("\"slot\" must be a slot name, e.g. " + std::string(example));
  }
  return j["slot"].get<std::string>();
}

Result<uint32_t> WeightField(const json& j) {
  if (!j.contains("weight")) {
    return InvalidArgument("\"weight\" is missing; give a percentage such as 25 or \"0.5%\"");
  }
  const json& w = j["weight"];
  // The number's shortest decimal form goes through the same exact parser as the CLI's input,
  // so 12.34 is 1234 bp and 1.234 is refused instead of rounded.
  if (w.is_string()) return ParseWeightPercent(w.get<std::string>());
  if (w.is_number()) return ParseWeightPercent(w.dump());
  return InvalidArgument("\"weight\" must be a number of percent (0..100)");
}

}  // namespace

struct AdminServer::Impl {
  explicit Impl(AdminServer* s) : server(s) {}

  Status BindTcp();
  Status BindUnix(const std::string& path);
  template <typename Acceptor>
  asio::awaitable<void> AcceptLoop(Acceptor& acceptor);
  template <typename Socket>
  asio::awaitable<void> Session(Socket socket);

  AdminServer* server;
  asio::io_context io{1};
  tcp::acceptor tcp_acceptor{io};
  UnixProtocol::acceptor unix_acceptor{io};
  // The socket file this server created (removed by Stop when it is still that file).
  std::string unix_path;
  http::UnixListener unix_listener;
  // Live connections, by id; touched only on the server thread.
  std::map<uint64_t, std::function<void()>> closers;
  uint64_t next_connection = 0;
  bool started = false;
  bool stopping = false;
};

AdminServer::AdminServer(Options options, RouterControl& control,
                         std::function<std::string()> prometheus_text)
    : options_(std::move(options)),
      control_(control),
      prometheus_text_(std::move(prometheus_text)),
      impl_(std::make_unique<Impl>(this)) {
  // Until Start() binds, a TCP server knows no Host of its own (every Host is refused); a Unix
  // socket server checks none.
  access_.token = options_.token;
  access_.unix_socket = options_.address.rfind("unix:", 0) == 0;
}

AdminServer::~AdminServer() { Stop(); }

std::string AdminServer::address() const {
  return bound_address_.empty() ? options_.address : bound_address_;
}

const std::vector<AdminServer::Endpoint>& AdminServer::Endpoints() {
  static const std::vector<Endpoint> kEndpoints = {
      {"GET", "/v1/status"},         {"GET", "/v1/policy"},
      {"PUT", "/v1/policy"},         {"POST", "/v1/switch"},
      {"POST", "/v1/weight"},        {"GET", "/v1/slots/{name}"},
      {"PUT", "/v1/slots/{name}/instances"}, {"GET", "/v1/metrics"},
      {"GET", "/metrics"},           {"GET", "/healthz"},
  };
  return kEndpoints;
}

AdminServer::Reply AdminServer::Handle(const Request& request) {
  const std::string_view method = request.method;
  const std::string_view target = request.target;
  const std::string_view body = request.body;
  std::string_view path = target;
  std::string_view query;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  auto method_not_allowed = [](std::string_view allow) {
    Reply r = ErrorReply(405, "method not allowed here; use " + std::string(allow));
    r.extra_headers = "Allow: " + std::string(allow) + "\r\n";
    return r;
  };

  if (path == "/healthz") {
    if (method != "GET") return method_not_allowed("GET");
    Reply r;
    r.content_type = "text/plain";
    r.body = "ok\n";
    return r;
  }
  if (auto refusal = http::CheckApiRequest(
          access_, {.method = method,
                    .authorization = request.authorization,
                    .content_type = request.content_type,
                    .origin = request.origin,
                    .host = request.host})) {
    Reply r = ErrorReply(refusal->status, refusal->message);
    r.extra_headers = std::move(refusal->extra_headers);
    return r;
  }

  try {
    auto policy_reply = [&](Result<uint64_t> generation) -> Reply {
      if (!generation.ok()) return StatusReply(generation.status());
      auto policy = control_.GetPolicy();
      if (!policy.ok()) return StatusReply(policy.status());
      json j = {{"generation", *generation}, {"policy", json::parse(PolicyToJson(*policy))}};
      return JsonReply(200, j.dump());
    };

    if (path == "/v1/status") {
      if (method != "GET") return method_not_allowed("GET");
      auto s = control_.GetStatus();
      if (!s.ok()) return StatusReply(s.status());
      return JsonReply(200, RouterStatusToJson(*s));
    }
    if (path == "/v1/policy") {
      if (method == "GET") {
        auto p = control_.GetPolicy();
        if (!p.ok()) return StatusReply(p.status());
        return JsonReply(200, PolicyToJson(*p));
      }
      if (method != "PUT") return method_not_allowed("GET, PUT");
      // ?if_generation=N: compare-and-set; 409 with "current_generation" when it moved.
      std::optional<uint64_t> if_generation;
      if (!query.empty()) {
        constexpr std::string_view kKey = "if_generation=";
        uint64_t g = 0;
        std::string_view v = query.substr(std::min(query.size(), kKey.size()));
        auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), g);
        if (query.substr(0, kKey.size()) != kKey || ec != std::errc() ||
            end != v.data() + v.size()) {
          return ErrorReply(400,
                            "the only query parameter is if_generation=<generation from "
                            "GET /v1/status>");
        }
        if_generation = g;
      }
      auto parsed = ParsePolicyJson(body);
      if (!parsed.ok()) return StatusReply(parsed.status());
      // A policy read with GET shows only "secret_set"; sending it back keeps the secret.
      json raw = json::parse(body, nullptr, false);
      const bool keep_secret = parsed->override_header.secret.empty() &&
                               raw.contains("override") && raw["override"].is_object() &&
                               !raw["override"].contains("secret") &&
                               raw["override"].value("secret_set", false);
      std::optional<uint64_t> stale_at;
      auto written = control_.UpdatePolicy(
          [&](const RoutingPolicy& current, uint64_t generation) -> Result<RoutingPolicy> {
            if (if_generation && generation != *if_generation) {
              stale_at = generation;
              return StaleGeneration(*if_generation, generation);
            }
            RoutingPolicy next = *parsed;
            if (keep_secret) next.override_header.secret = current.override_header.secret;
            FillCanarySeed(current, &next);
            return next;
          });
      if (stale_at) {
        return JsonReply(409, json{{"error", written.status().message()},
                                   {"current_generation", *stale_at}}
                                  .dump());
      }
      return policy_reply(std::move(written));
    }
    if (path == "/v1/switch") {
      if (method != "POST") return method_not_allowed("POST");
      auto j = ParseBody(body, "{\"slot\":\"green\"}");
      if (!j.ok()) return StatusReply(j.status());
      auto slot = SlotField(*j, "{\"slot\":\"green\"}");
      if (!slot.ok()) return StatusReply(slot.status());
      return policy_reply(control_.Switch(*slot));
    }
    if (path == "/v1/weight") {
      if (method != "POST") return method_not_allowed("POST");
      constexpr std::string_view kExample = "{\"slot\":\"green\",\"weight\":25}";
      auto j = ParseBody(body, kExample);
      if (!j.ok()) return StatusReply(j.status());
      auto slot = SlotField(*j, kExample);
      if (!slot.ok()) return StatusReply(slot.status());
      auto weight = WeightField(*j);
      if (!weight.ok()) return StatusReply(weight.status());
      return policy_reply(control_.SetCanaryWeight(*slot, *weight));
    }
    constexpr std::string_view kSlots = "/v1/slots/";
    if (path.substr(0, kSlots.size()) == kSlots) {
      std::string_view rest = path.substr(kSlots.size());
      std::string_view name = rest.substr(0, rest.find('/'));
      std::string_view tail = rest.substr(name.size());
      if (!IsValidSlotName(name))
        return ErrorReply(404, "no such slot: '" + std::string(name) + "'");
      if (tail.empty()) {
        if (method != "GET") return method_not_allowed("GET");
        auto s = control_.GetSlotStatus(std::string(name));
        if (!s.ok()) return StatusReply(s.status());
        return JsonReply(200, SlotStatusToJson(*s));
      }
      if (tail == "/instances") {
        if (method != "PUT") return method_not_allowed("PUT");
        constexpr std::string_view kExample = "{\"instances\":[\"127.0.0.1:9001\"]}";
        auto j = ParseBody(body, kExample);
        if (!j.ok()) return StatusReply(j.status());
        if (!j->contains("instances") || !(*j)["instances"].is_array()) {
          return ErrorReply(
              400, "\"instances\" must be a list of host:port, e.g. " + std::string(kExample));
        }
        std::vector<std::string> instances;
        for (const json& i : (*j)["instances"]) {
          if (!i.is_string()) return ErrorReply(400, "\"instances\" must hold strings");
          auto hp = ParseHostPort(i.get<std::string>());
          if (!hp.ok()) return StatusReply(hp.status());
          if (hp->port == 0)
            return ErrorReply(400, "instance " + i.get<std::string>() + " needs a non-zero port");
          instances.push_back(i.get<std::string>());
        }
        auto g = control_.SetSlotInstances(std::string(name), instances);
        if (!g.ok()) return StatusReply(g.status());
        return JsonReply(200, json{{"generation", *g}}.dump());
      }
      return ErrorReply(404, "unknown path " + std::string(path));
    }
    if (path == "/v1/metrics") {
      if (method != "GET") return method_not_allowed("GET");
      int64_t window = 60;
      if (!query.empty()) {
        constexpr std::string_view kKey = "window=";
        if (query.substr(0, kKey.size()) != kKey || query.find('&') != std::string_view::npos) {
          return ErrorReply(400, "the only query parameter is window=<seconds>");
        }
        std::string_view v = query.substr(kKey.size());
        auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), window);
        if (ec != std::errc() || end != v.data() + v.size() || window < 0 || window > 3600) {
          return ErrorReply(400,
                            "window must be a number of seconds within 1..3600, or 0 for the "
                            "totals since the router started");
        }
      }
      auto m = window == 0 ? control_.GetCumulativeMetrics()
                           : control_.GetWindowMetrics(std::chrono::seconds(window));
      if (!m.ok()) return StatusReply(m.status());
      return JsonReply(200, WindowMetricsToJson(std::chrono::seconds(window), *m));
    }
    if (path == "/metrics") {
      if (method != "GET") return method_not_allowed("GET");
      Reply r;
      r.content_type = "text/plain; version=0.0.4";
      r.body = prometheus_text_ ? prometheus_text_() : std::string();
      return r;
    }
    return ErrorReply(
        404, "unknown path " + std::string(path) + "; see docs/router.md for the admin API");
  } catch (const std::exception& e) {
    // nlohmann::json and the allocator are the only throwers here; never let them take the
    // server down.
    return ErrorReply(500, std::string("internal error: ") + e.what());
  }
}

template <typename Socket>
asio::awaitable<void> AdminServer::Impl::Session(Socket socket) {
  Impl* impl = this;
  const Options& options = server->options_;
  // A connection accepted just before Stop() may start after Stop's close-all ran: end it here,
  // or it would hold the thread until its idle timeout.
  if (impl->stopping) co_return;
  const uint64_t id = impl->next_connection++;
  impl->closers.emplace(id, [&socket] {
    boost::system::error_code ignored;
    socket.close(ignored);
  });
  struct Unregister {
    Impl* impl;
    uint64_t id;
    ~Unregister() { impl->closers.erase(id); }
  } unregister{impl, id};

  asio::steady_timer timer(socket.get_executor());
  std::string buffer;
  char chunk[8192];
  auto read_more = [&]() -> asio::awaitable<bool> {
    timer.expires_after(options.idle_timeout);
    auto result = co_await (
        socket.async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable)) ||
        timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (result.index() != 0) co_return false;  // idle too long
    auto [ec, n] = std::get<0>(result);
    if (ec) co_return false;
    buffer.append(chunk, n);
    co_return true;
  };
  auto send = [&](const Reply& reply, bool close) -> asio::awaitable<bool> {
    std::string out;
    http::AppendSimpleResponse(&out, reply.status, reply.content_type, reply.body, close,
                               reply.extra_headers);
    auto [ec, n] =
        co_await asio::async_write(socket, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
    co_return !ec;
  };

  http::ParseLimits limits;
  limits.max_head_bytes = options.max_head_bytes;
  for (;;) {
    http::RequestHead head;
    http::ParseResult parsed;
    for (;;) {
      parsed = http::ParseRequestHead(buffer, limits, &head);
      if (parsed.state != http::ParseState::kIncomplete) break;
      if (buffer.size() > options.max_head_bytes) {
        parsed.state = http::ParseState::kError;
        parsed.error_status = 431;
        parsed.error_reason = "request head too large";
        break;
      }
      if (!co_await read_more()) co_return;
    }
    if (parsed.state == http::ParseState::kError) {
      int status = parsed.error_status >= 400 ? parsed.error_status : 400;
      co_await send(ErrorReply(status, std::string("bad request: ") + parsed.error_reason), true);
      co_return;
    }
    // The head's views point into `buffer`, which grows below: copy what is needed now.
    const std::string method(head.method);
    const std::string target(head.target);
    const auto checked = http::ApiCheckedHeaders::From(head.headers);
    const bool keep_alive = head.keep_alive;
    if (head.body == http::BodyKind::kChunked) {
      co_await send(ErrorReply(411, "send the body with Content-Length"), true);
      co_return;
    }
    const uint64_t length = head.body == http::BodyKind::kContentLength ? head.content_length : 0;
    if (length > options.max_body_bytes) {
      co_await send(ErrorReply(413, "body too large: at most " +
                                        std::to_string(options.max_body_bytes) + " bytes"),
                    true);
      co_return;
    }
    const size_t end = parsed.consumed + static_cast<size_t>(length);
    if (head.expect_continue && buffer.size() < end) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      auto [ec, n] = co_await asio::async_write(socket, asio::buffer(kContinue),
                                                asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
    }
    while (buffer.size() < end) {
      if (!co_await read_more()) co_return;
    }
    Reply reply = server->Handle({.method = method,
                                  .target = target,
                                  .body = std::string_view(buffer).substr(parsed.consumed, length),
                                  .authorization = checked.authorization,
                                  .content_type = checked.content_type,
                                  .origin = checked.origin,
                                  .host = checked.host});
    if (!co_await send(reply, !keep_alive) || !keep_alive) co_return;
    buffer.erase(0, end);
  }
}

template <typename Acceptor>
asio::awaitable<void> AdminServer::Impl::AcceptLoop(Acceptor& acceptor) {
  Impl* impl = this;
  asio::steady_timer backoff(impl->io);
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (impl->stopping || !acceptor.is_open()) co_return;
    if (ec) {
      // Out of descriptors and the like: wait a little instead of spinning.
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    if (impl->closers.size() >= kMaxConnections) continue;  // closes the socket
    asio::co_spawn(impl->io, impl->Session(std::move(socket)), [](std::exception_ptr) {});
  }
}

Status AdminServer::Impl::BindTcp() {
  const std::string& address = server->options_.address;
  TURNOUT_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(address));
  boost::system::error_code ec;
  asio::ip::address ip;
  if (hp.host == "localhost") {
    ip = asio::ip::address_v4::loopback();
  } else {
    ip = asio::ip::make_address(hp.host, ec);
    if (ec) {
      tcp::resolver resolver(io);
      auto results = resolver.resolve(hp.host, std::to_string(hp.port), ec);
      if (ec || results.empty()) {
        return InvalidArgument("admin address " + address + ": cannot resolve host '" + hp.host +
                               "'");
      }
      ip = results.begin()->endpoint().address();
    }
  }
  tcp::endpoint endpoint(ip, hp.port);
  auto fail = [&](std::string_view what) {
    return IoError("admin API: cannot " + std::string(what) + " " + address + ": " +
                   ec.message());
  };
  if (tcp_acceptor.open(endpoint.protocol(), ec)) return fail("open a socket for");
  if (tcp_acceptor.set_option(asio::socket_base::reuse_address(true), ec)) {
    return fail("configure");
  }
  if (tcp_acceptor.bind(endpoint, ec)) return fail("bind");
  if (tcp_acceptor.listen(asio::socket_base::max_listen_connections, ec)) return fail("listen on");
  const tcp::endpoint bound = tcp_acceptor.local_endpoint(ec);
  server->bound_address_ = FormatHostPort(bound.address().to_string(), bound.port());
  return Status::Ok();
}

Status AdminServer::Impl::BindUnix(const std::string& path) {
  // The default path's directory (e.g. $XDG_RUNTIME_DIR/turnout) may not exist yet: create it
  // for this user only. An existing directory is used as it is.
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    const std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoError("admin socket " + path + ": cannot create its directory " + dir, errno);
    }
  }
  TURNOUT_ASSIGN_OR_RETURN(unix_listener, http::ListenOnUnixSocket(path, 0600, "admin socket"));
  unix_path = path;
  boost::system::error_code ec;
  if (unix_acceptor.assign(UnixProtocol(), unix_listener.fd, ec)) {
    ::close(unix_listener.fd);
    http::RemoveUnixSocketFile(unix_path, unix_listener);
    unix_path.clear();
    return IoError("admin socket " + path + ": " + ec.message());
  }
  server->bound_address_ = std::string(kUnixAddressPrefix) + path;
  return Status::Ok();
}

Status AdminServer::Start() {
  if (impl_->started) return FailedPrecondition("admin server already started");
  const std::string_view unix_path = UnixSocketPathOf(options_.address);
  if (unix_path.empty() && options_.token.empty()) {
    return InvalidArgument("the admin API on TCP (" + options_.address +
                           ") needs a token: give --admin-token (or admin.token, or "
                           "TURNOUT_ADMIN_TOKEN), or listen on a Unix socket (--admin "
                           "unix:/path/to/admin.sock)");
  }
  TURNOUT_RETURN_IF_ERROR(unix_path.empty() ? impl_->BindTcp()
                                            : impl_->BindUnix(std::string(unix_path)));
  access_.token = options_.token;
  access_.unix_socket = !unix_path.empty();
  if (!access_.unix_socket) {
    access_.hosts = http::OwnHostsFor(bound_address_, options_.allowed_hosts);
  }

  Impl* impl = impl_.get();
  if (impl->unix_acceptor.is_open()) {
    asio::co_spawn(impl->io, impl->AcceptLoop(impl->unix_acceptor), [](std::exception_ptr) {});
  } else {
    asio::co_spawn(impl->io, impl->AcceptLoop(impl->tcp_acceptor), [](std::exception_ptr) {});
  }
  impl_->started = true;
  thread_ = std::thread([impl] {
    for (;;) {
      try {
        impl->io.run();
        return;
      } catch (...) {
        // A handler threw (allocation failure); keep serving.
      }
    }
  });
  return Status::Ok();
}

void AdminServer::Stop() {
  if (!thread_.joinable()) return;
  Impl* impl = impl_.get();
  asio::post(impl->io, [impl] {
    impl->stopping = true;
    boost::system::error_code ec;
    impl->tcp_acceptor.close(ec);
    impl->unix_acceptor.close(ec);
    for (auto& [id, close] : impl->closers) close();
  });
  thread_.join();
  if (!impl->unix_path.empty()) {
    http::RemoveUnixSocketFile(impl->unix_path, impl->unix_listener);
    impl->unix_path.clear();
  }
}

}  // namespace turnout::router
