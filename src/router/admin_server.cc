#include "router/admin_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/host_port.h"
#include "http/api_support.h"
#include "http/server.h"
#include "router/admin_json.h"
#include "router/config.h"

namespace turnout::router {
namespace {

using nlohmann::json;
using Reply = AdminServer::Reply;

// The admin API is for operators and one controller; a cap keeps a misbehaving script from
// exhausting file descriptors that the router needs.
constexpr size_t kMaxConnections = 256;

Reply JsonReply(int status, std::string body) {
  return http::ServerReply::Json(status, std::move(body));
}

Reply ErrorReply(int status, std::string_view message) {
  return http::ServerReply::Error(status, message);
}

// The path of a request target (what precedes '?').
std::string_view PathOf(std::string_view target) { return target.substr(0, target.find('?')); }

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

AdminServer::AdminServer(Options options, RouterControl& control,
                         std::function<std::string()> prometheus_text)
    : options_(std::move(options)),
      control_(control),
      prometheus_text_(std::move(prometheus_text)) {
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
      {"GET", "/v1/status"},
      {"GET", "/v1/policy"},
      {"PUT", "/v1/policy"},
      {"POST", "/v1/switch"},
      {"POST", "/v1/weight"},
      {"GET", "/v1/slots/{name}"},
      {"PUT", "/v1/slots/{name}/instances"},
      {"GET", "/v1/metrics"},
      {"GET", "/metrics"},
      {"GET", "/healthz"},
  };
  return kEndpoints;
}

AdminServer::Reply AdminServer::Handle(const Request& request) {
  // /healthz needs no token and passes no other check either.
  if (PathOf(request.target) != "/healthz") {
    if (auto refusal = http::CheckApiRequest(access_, {.method = request.method,
                                                       .authorization = request.authorization,
                                                       .content_type = request.content_type,
                                                       .origin = request.origin,
                                                       .host = request.host})) {
      Reply r = ErrorReply(refusal->status, refusal->message);
      r.extra_headers = std::move(refusal->extra_headers);
      return r;
    }
  }
  return Answer(request.method, request.target, request.body);
}

AdminServer::Reply AdminServer::Answer(std::string_view method, std::string_view target,
                                       std::string_view body) {
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
      const bool keep_secret = parsed->override_header.secret.empty() && raw.contains("override") &&
                               raw["override"].is_object() && !raw["override"].contains("secret") &&
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
        return JsonReply(
            409,
            json{{"error", written.status().message()}, {"current_generation", *stale_at}}.dump());
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

Status AdminServer::Start() {
  if (core_) return FailedPrecondition("admin server already started");
  const std::string_view unix_path = UnixSocketPathOf(options_.address);
  if (unix_path.empty() && options_.token.empty()) {
    return InvalidArgument("the admin API on TCP (" + options_.address +
                           ") needs a token: give --admin-token (or admin.token, or "
                           "TURNOUT_ADMIN_TOKEN), or listen on a Unix socket (--admin "
                           "unix:/path/to/admin.sock)");
  }
  if (!unix_path.empty()) {
    // The default path's directory (e.g. $XDG_RUNTIME_DIR/turnout) may not exist yet: create it
    // for this user only. An existing directory is used as it is.
    const std::string path(unix_path);
    const size_t slash = path.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      const std::string dir = path.substr(0, slash);
      if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        return ErrnoError("admin socket " + path + ": cannot create its directory " + dir, errno);
      }
    }
  }
  core_ = std::make_unique<http::Server>(
      http::Server::Options{
          .name = "admin",
          .unix_path = std::string(unix_path),
          .tcp_address = unix_path.empty() ? options_.address : std::string(),
          .resolve_host_names = true,
          .token = options_.token,
          .token_on_unix_socket = true,
          .allowed_hosts = options_.allowed_hosts,
          // /healthz needs no token and passes no other check either.
          .exempt = [](const http::ServerRequest& r) { return PathOf(r.target) == "/healthz"; },
          .max_body_bytes = options_.max_body_bytes,
          .max_head_bytes = options_.max_head_bytes,
          .idle_timeout = options_.idle_timeout,
          .max_connections = kMaxConnections,
          .handler_threads = 0},
      [this](const http::ServerRequest& r) { return Answer(r.method, r.target, r.body); });
  if (Status s = core_->Start(); !s.ok()) {
    core_.reset();
    return s;
  }
  bound_address_ = unix_path.empty() ? core_->tcp_address()
                                     : std::string(kUnixAddressPrefix) + std::string(unix_path);
  access_ = unix_path.empty() ? core_->tcp_access() : core_->unix_access();
  return Status::Ok();
}

void AdminServer::Stop() {
  if (core_) core_->Stop();
}

}  // namespace turnout::router
