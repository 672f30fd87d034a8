// libFuzzer target for the access log's line formatter (FormatAccessLogLine): whatever bytes a
// client puts in its request line, the line stays one line and valid JSON. The input is split
// at '\n' into method, target, request id and trace id; its head is also parsed as an HTTP
// request and, when it parses, logged from the parsed fields as the router does.
// Properties checked besides "no crash, no sanitizer report":
//  - JSON: exactly one '\n', at the end; the line parses as one object; method, path (query
//    kept) and request id read back as the input's bytes (each \u00XX code point is one byte);
//    without include_query the path is the target up to its first '?';
//  - logfmt: exactly one '\n', at the end, and no other byte below 0x20 or from 0x7f.

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/fuzz_check.h"
#include "http/parser.h"
#include "router/access_log.h"

namespace {

using turnout::fuzz::Check;
using turnout::router::AccessLogConfig;
using turnout::router::AccessLogEntry;

// The bytes a JSON string holds when each code point stands for one byte (as the log writes
// them); code points above 0xff never come from the formatter.
std::string Bytes(const std::string& utf8) {
  std::string out;
  for (size_t i = 0; i < utf8.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(utf8[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      continue;
    }
    Check((c == 0xc2 || c == 0xc3) && i + 1 < utf8.size(), "a code point above 0xff");
    out.push_back(static_cast<char>(((c & 0x03) << 6) | (utf8[++i] & 0x3f)));
  }
  return out;
}

std::string_view NextField(std::string_view* rest) {
  size_t nl = rest->find('\n');
  std::string_view f = rest->substr(0, nl);
  rest->remove_prefix(nl == std::string_view::npos ? rest->size() : nl + 1);
  return f;
}

void CheckLines(const AccessLogEntry& e) {
  std::string line;
  FormatAccessLogLine(e, AccessLogConfig::Format::kJson, true, &line);
  Check(!line.empty() && line.back() == '\n' && line.find('\n') == line.size() - 1,
        "a JSON line is one line");
  nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  Check(!j.is_discarded() && j.is_object(), "a JSON line parses as an object");
  Check(Bytes(j["method"].get<std::string>()) == e.method, "method reads back");
  Check(Bytes(j["path"].get<std::string>()) == e.target, "path (with query) reads back");
  Check(Bytes(j["request_id"].get<std::string>()) == e.request_id, "request id reads back");

  line.clear();
  FormatAccessLogLine(e, AccessLogConfig::Format::kJson, false, &line);
  j = nlohmann::json::parse(line, nullptr, false);
  Check(!j.is_discarded(), "a JSON line without query parses");
  std::string_view target = e.target;
  Check(Bytes(j["path"].get<std::string>()) == target.substr(0, target.find('?')),
        "path without query is the target up to '?'");

  line.clear();
  FormatAccessLogLine(e, AccessLogConfig::Format::kLogfmt, true, &line);
  Check(!line.empty() && line.back() == '\n', "a logfmt line ends in a newline");
  for (size_t i = 0; i + 1 < line.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(line[i]);
    Check(c >= 0x20 && c < 0x7f, "a logfmt line holds printable ASCII only");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  std::string_view rest = input;
  AccessLogEntry e;
  e.unix_ms = size * 1'000'003;
  e.client_ip = "192.0.2.1";
  e.method = NextField(&rest);
  e.target = NextField(&rest);
  e.request_id = NextField(&rest);
  e.trace_id = NextField(&rest);
  e.slot = rest;
  e.status = static_cast<int>(size % 600);
  e.duration_ms = static_cast<double>(size) / 7.0;
  e.upstream_ms = size % 2 == 0 ? -1.0 : static_cast<double>(size) / 9.0;
  CheckLines(e);

  static thread_local turnout::http::RequestHead head;
  turnout::http::ParseResult r =
      turnout::http::ParseRequestHead(input, turnout::http::ParseLimits{}, &head);
  if (r.state == turnout::http::ParseState::kComplete) {
    AccessLogEntry p;
    p.method = head.method;
    p.target = head.target;
    p.version_minor = head.version_minor;
    const turnout::http::Header* rid = head.headers.Find("X-Request-Id");
    if (rid != nullptr) p.request_id = rid->value;
    CheckLines(p);
  }
  return 0;
}
