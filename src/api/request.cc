// Request, Reply and the target decoding shared by the server and its tests.

#include <nlohmann/json.hpp>

#include "api/api.h"
#include "api/target.h"
#include "common/text.h"
#include "http/api_support.h"
#include "http/server.h"

namespace turnout::api {
namespace {

using nlohmann::json;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Handlers and error messages may carry bytes that are not UTF-8 (a path echoed back); the
// replacement character keeps the reply valid JSON instead of making dump() throw.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

constexpr std::pair<StatusCode, std::string_view> kCodeNames[] = {
    {StatusCode::kInvalidArgument, "invalid_argument"},
    {StatusCode::kNotFound, "not_found"},
    {StatusCode::kAlreadyExists, "already_exists"},
    {StatusCode::kFailedPrecondition, "failed_precondition"},
    {StatusCode::kUnavailable, "unavailable"},
    {StatusCode::kDeadlineExceeded, "deadline_exceeded"},
    {StatusCode::kAborted, "aborted"},
    {StatusCode::kIoError, "io_error"},
    {StatusCode::kInternal, "internal"},
};

std::string_view CodeName(StatusCode code) {
  for (const auto& [c, name] : kCodeNames) {
    if (c == code) return name;
  }
  return "internal";
}

// For replies without a "code" (the transport's own 4xx, or another server).
StatusCode CodeForHttpStatus(int status) {
  switch (status) {
    case 400:
    case 411:
    case 413:
    case 414:
    case 431:
      return StatusCode::kInvalidArgument;
    case 401:
    case 403:
    case 409:
      return StatusCode::kFailedPrecondition;
    case 404:
      return StatusCode::kNotFound;
    case 503:
      return StatusCode::kUnavailable;
    case 504:
      return StatusCode::kDeadlineExceeded;
    default:
      return status >= 500 ? StatusCode::kInternal : StatusCode::kInvalidArgument;
  }
}

}  // namespace

std::string Request::Query(std::string_view name, std::string fallback) const {
  for (const auto& [k, v] : query) {
    if (k == name) return v;
  }
  return fallback;
}

Result<int64_t> Request::QueryNumber(std::string_view name, int64_t fallback, int64_t min,
                                     int64_t max) const {
  for (const auto& [k, v] : query) {
    if (k != name) continue;
    Result<int64_t> n = ParseWholeNumber(v, min, max);
    if (!n.ok()) return n.status().WithContext("query parameter " + std::string(name));
    return n;
  }
  return fallback;
}

Reply Reply::Json(int status, std::string body) {
  http::ServerReply r = http::ServerReply::Json(status, std::move(body));
  Reply reply;
  reply.status = r.status;
  reply.content_type = std::move(r.content_type);
  reply.body = std::move(r.body);
  return reply;
}

Reply Reply::Error(int status, std::string_view message) {
  http::ServerReply r = http::ServerReply::Error(status, message);
  Reply reply;
  reply.status = r.status;
  reply.content_type = std::move(r.content_type);
  reply.body = std::move(r.body);
  return reply;
}

Reply Reply::FromStatus(const Status& s) {
  if (s.ok()) return Json(200, "{}");
  return Json(http::HttpStatusFor(s.code()),
              Dump(json{{"error", s.message()}, {"code", std::string(CodeName(s.code()))}}));
}

Status StatusFromReply(const Reply& reply) {
  if (reply.status >= 200 && reply.status < 300) return Status::Ok();
  StatusCode code = CodeForHttpStatus(reply.status);
  std::string message = reply.body;
  while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
    message.pop_back();
  }
  json j = json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded() && j.is_object()) {
    if (auto e = j.find("error"); e != j.end() && e->is_string()) message = e->get<std::string>();
    if (auto c = j.find("code"); c != j.end() && c->is_string()) {
      const std::string name = c->get<std::string>();
      for (const auto& [known, known_name] : kCodeNames) {
        if (known_name == name) code = known;
      }
    }
  }
  if (message.empty()) message = "HTTP " + std::to_string(reply.status);
  return Status(code, std::move(message));
}

Result<std::string> PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+' && plus_is_space) {
      out += ' ';
    } else if (c == '%') {
      if (i + 2 >= in.size()) return InvalidArgument("a '%' must be followed by two hex digits");
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return InvalidArgument("a '%' must be followed by two hex digits");
      const char decoded = static_cast<char>(hi * 16 + lo);
      if (decoded == '\0') return InvalidArgument("%00 is not allowed");
      out += decoded;
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

Status DecodeTarget(std::string_view target, Request* out) {
  if (target.empty() || target[0] != '/') {
    return InvalidArgument("the request target must be a path such as /v1/status");
  }
  std::string_view raw_path = target;
  std::string_view raw_query;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    raw_path = target.substr(0, q);
    raw_query = target.substr(q + 1);
  }
  auto path = PercentDecode(raw_path, /*plus_is_space=*/false);
  if (!path.ok()) return path.status().WithContext("path");
  out->path = std::move(*path);
  out->query.clear();
  while (!raw_query.empty()) {
    const size_t amp = raw_query.find('&');
    std::string_view piece = raw_query.substr(0, amp);
    raw_query = amp == std::string_view::npos ? std::string_view() : raw_query.substr(amp + 1);
    if (piece.empty()) continue;
    const size_t eq = piece.find('=');
    auto name = PercentDecode(piece.substr(0, eq), /*plus_is_space=*/true);
    if (!name.ok()) return name.status().WithContext("query");
    std::string value;
    if (eq != std::string_view::npos) {
      auto v = PercentDecode(piece.substr(eq + 1), /*plus_is_space=*/true);
      if (!v.ok()) return v.status().WithContext("query");
      value = std::move(*v);
    }
    out->query.emplace_back(std::move(*name), std::move(value));
  }
  return Status::Ok();
}

}  // namespace turnout::api
