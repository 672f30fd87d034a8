// libFuzzer target for the HTTP framing code: request heads, response heads (the first input
// byte picks the request method) and the chunked decoder (fed whole and in pieces whose sizes
// come from the input). Aborts when an invariant breaks: consumed beyond the input, a view outside
// the buffer, a result that depends on how the input was split.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/fuzz_check.h"
#include "http/parser.h"

namespace turnout::http {
namespace {

using turnout::fuzz::Check;
using turnout::fuzz::Inside;

void CheckResult(const ParseResult& r, std::string_view in) {
  Check(r.consumed <= in.size(), "consumed beyond input");
  if (r.state == ParseState::kError) {
    Check(r.error_status >= 400 && r.error_status <= 505, "error status out of range");
    Check(r.error_reason != nullptr && r.error_reason[0] != '\0', "error without reason");
  }
}

void CheckHeaders(const MessageHeaders& headers, std::string_view head) {
  Check(headers.count <= kMaxHeaders, "too many headers");
  for (size_t i = 0; i < headers.count; ++i) {
    Check(!headers.fields[i].name.empty(), "empty field name");
    Check(Inside(headers.fields[i].name, head), "name outside head");
    Check(Inside(headers.fields[i].value, head), "value outside head");
  }
}

void FuzzRequest(std::string_view in) {
  static RequestHead head;  // large; keep it off the stack
  ParseLimits limits;
  limits.max_head_bytes = 4096;
  limits.max_target_bytes = 512;
  limits.max_headers = 32;
  const ParseResult r = ParseRequestHead(in, limits, &head);
  CheckResult(r, in);
  // Bytes arriving in two reads: the first read's verdict must not contradict the final one.
  static RequestHead early;
  const ParseResult first = ParseRequestHead(in.substr(0, in.size() / 2), limits, &early);
  if (first.state == ParseState::kError) Check(r.state == ParseState::kError, "error undone");
  if (first.state == ParseState::kComplete) {
    Check(r.state == ParseState::kComplete && r.consumed == first.consumed, "head changed");
  }
  if (first.state == ParseState::kIncomplete) {
    // Resuming where the first read left off must give exactly the verdict of a fresh parse.
    Check(first.resume_at <= in.size() / 2, "resume_at beyond the bytes seen");
    static RequestHead resumed_head;
    const ParseResult resumed = ParseRequestHead(in, limits, &resumed_head, first.resume_at);
    Check(resumed.state == r.state && resumed.consumed == r.consumed &&
              resumed.error_status == r.error_status,
          "resumed parse differs");
  }
  if (r.state != ParseState::kComplete) return;
  const std::string_view bytes = in.substr(0, r.consumed);
  Check(r.consumed >= 4 && bytes.substr(r.consumed - 4) == "\r\n\r\n", "head not CRLFCRLF");
  Check(!head.method.empty() && Inside(head.method, bytes), "method outside head");
  Check(!head.target.empty() && Inside(head.target, bytes), "target outside head");
  Check(head.target.size() <= limits.max_target_bytes, "target over limit");
  Check(Inside(head.host, bytes) && Inside(head.upgrade_protocol, bytes), "view outside head");
  Check(head.version_minor == 0 || head.version_minor == 1, "bad version");
  Check(head.method != "CONNECT", "CONNECT accepted");
  Check(head.headers.count <= limits.max_headers, "header count over limit");
  CheckHeaders(head.headers, bytes);
  Check(head.body != BodyKind::kUntilClose, "request read until close");
  if (head.body == BodyKind::kChunked) {
    Check(head.headers.Find("Content-Length") == nullptr, "CL with chunked");
  }
  // The head is complete only at its last byte: one byte less must still be incomplete.
  static RequestHead shorter;
  const ParseResult prefix = ParseRequestHead(in.substr(0, r.consumed - 1), limits, &shorter);
  Check(prefix.state == ParseState::kIncomplete, "shorter head not incomplete");
}

void FuzzResponse(std::string_view in) {
  static ResponseHead head;
  if (in.empty()) return;
  static constexpr std::string_view kMethods[] = {"GET", "HEAD", "POST", "OPTIONS"};
  const std::string_view method = kMethods[static_cast<uint8_t>(in[0]) % 4];
  in.remove_prefix(1);
  ParseLimits limits;
  limits.max_head_bytes = 4096;
  limits.max_headers = 32;
  const ParseResult r = ParseResponseHead(in, method, limits, &head);
  CheckResult(r, in);
  static ResponseHead early;
  const ParseResult first = ParseResponseHead(in.substr(0, in.size() / 2), method, limits, &early);
  if (first.state == ParseState::kError) Check(r.state == ParseState::kError, "error undone");
  if (first.state == ParseState::kComplete) {
    Check(r.state == ParseState::kComplete && r.consumed == first.consumed, "head changed");
  }
  if (r.state == ParseState::kError) Check(r.error_status == 502, "response error not 502");
  if (r.state != ParseState::kComplete) return;
  const std::string_view bytes = in.substr(0, r.consumed);
  Check(head.status >= 100 && head.status <= 599, "status out of range");
  Check(Inside(head.reason, bytes), "reason outside head");
  CheckHeaders(head.headers, bytes);
  if (head.body == BodyKind::kUntilClose) Check(!head.keep_alive, "until-close kept alive");
  if (method == "HEAD") Check(head.body == BodyKind::kNone, "HEAD response with body");
}

struct Decoded {
  std::string data;
  size_t consumed = 0;
  bool done = false;
  bool error = false;
};

// Feeds `in` in pieces; piece k has size 1 + sizes[k % sizes.size()] % 16 (or all at once when
// `sizes` is empty).
Decoded Decode(std::string_view in, std::string_view sizes) {
  ChunkedDecoder decoder;
  Decoded out;
  size_t offset = 0;
  size_t k = 0;
  while (offset < in.size() && !out.done && !out.error) {
    size_t piece_size = in.size() - offset;
    if (!sizes.empty()) piece_size = 1 + static_cast<uint8_t>(sizes[k++ % sizes.size()]) % 16;
    const std::string_view piece = in.substr(offset, piece_size);
    size_t used = 0;
    while (used < piece.size()) {
      const std::string_view rest = piece.substr(used);
      const ChunkedDecoder::Step step = decoder.Feed(rest);
      Check(step.consumed <= rest.size(), "decoder consumed beyond input");
      Check(Inside(step.data, rest.substr(0, step.consumed)), "data outside consumed bytes");
      Check(!(step.done && step.error), "done and error");
      if (step.consumed == 0 && !step.done && !step.error) {
        Check(false, "decoder made no progress");
      }
      out.data.append(step.data);
      used += step.consumed;
      if (step.error) {
        Check(step.error_reason != nullptr && step.error_reason[0] != '\0', "error w/o reason");
        out.error = true;
        break;
      }
      if (step.done) {
        out.done = true;
        break;
      }
    }
    offset += used;
  }
  Check(decoder.done() == out.done, "done() disagrees");
  out.consumed = offset;
  return out;
}

void FuzzChunked(std::string_view in) {
  const Decoded whole = Decode(in, {});
  const Decoded pieces = Decode(in, in.substr(0, 64));
  Check(whole.data == pieces.data, "data depends on the split");
  Check(whole.done == pieces.done && whole.error == pieces.error, "verdict depends on split");
  if (!whole.error) Check(whole.consumed == pieces.consumed, "consumed depends on split");
  Check(whole.data.size() <= in.size(), "more data than input");
}

}  // namespace
}  // namespace turnout::http

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  turnout::http::FuzzRequest(in);
  turnout::http::FuzzResponse(in);
  turnout::http::FuzzChunked(in);
  return 0;
}
