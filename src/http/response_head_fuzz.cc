// libFuzzer target for the upstream side of the HTTP framing code: ParseResponseHead and the
// chunked decoder on the body that follows a chunked response head. The first input byte picks
// the request method (it decides HEAD semantics) and the head size limit; the rest is what an
// upstream sent. Aborts when a promise of http/parser.h breaks:
//   - nothing is read beyond the input; an error is always 502 with a reason;
//   - a complete head ends in CRLF CRLF, and one byte less is still incomplete;
//   - what follows the head never changes the verdict on the head;
//   - a reused ResponseHead gives the same result as a fresh one;
//   - every view lies inside the head; names are non-empty, values carry no CR, LF or edge
//     whitespace; the status is 100..599;
//   - framing: 1xx/204/304 and HEAD responses have no body; kUntilClose never keeps the
//     connection; chunked only on HTTP/1.1 and never with Content-Length; a Content-Length body
//     has that header;
//   - the chunked body decodes the same whole and byte by byte, never past its input.

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

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

bool SameHead(const ResponseHead& a, const ResponseHead& b) {
  if (a.status != b.status || a.reason != b.reason || a.version_minor != b.version_minor ||
      a.body != b.body || a.content_length != b.content_length || a.keep_alive != b.keep_alive ||
      a.headers.count != b.headers.count) {
    return false;
  }
  for (size_t i = 0; i < a.headers.count; ++i) {
    const Header& x = a.headers.fields[i];
    const Header& y = b.headers.fields[i];
    if (x.name != y.name || x.value != y.value || x.hop_by_hop != y.hop_by_hop) return false;
  }
  return true;
}

void CheckHead(const ResponseHead& head, std::string_view bytes, std::string_view method,
               const ParseLimits& limits) {
  Check(head.status >= 100 && head.status <= 599, "status out of range");
  Check(head.version_minor == 0 || head.version_minor == 1, "bad version");
  Check(Inside(head.reason, bytes), "reason outside head");
  Check(head.headers.count <= limits.max_headers, "header count over limit");
  for (size_t i = 0; i < head.headers.count; ++i) {
    const Header& h = head.headers.fields[i];
    Check(!h.name.empty(), "empty field name");
    Check(Inside(h.name, bytes) && Inside(h.value, bytes), "field outside head");
    Check(h.name.find_first_of("\r\n: \t") == std::string_view::npos, "bad byte in field name");
    Check(h.value.find_first_of("\r\n") == std::string_view::npos, "CR or LF in field value");
    if (!h.value.empty()) {
      Check(!IsSpace(h.value.front()) && !IsSpace(h.value.back()), "value not trimmed");
    }
  }
  const bool no_body =
      head.status < 200 || head.status == 204 || head.status == 304 || method == "HEAD";
  if (no_body) Check(head.body == BodyKind::kNone, "bodiless response with a body");
  if (!no_body) Check(head.body != BodyKind::kNone, "response without framing");
  if (head.body == BodyKind::kUntilClose) Check(!head.keep_alive, "until-close kept alive");
  if (head.body == BodyKind::kChunked) {
    Check(head.version_minor == 1, "chunked on HTTP/1.0");
    Check(head.headers.Find("Content-Length") == nullptr, "chunked with Content-Length");
  }
  if (head.body == BodyKind::kContentLength) {
    Check(head.headers.Find("Content-Length") != nullptr, "CL body without the header");
    Check(head.headers.Find("Transfer-Encoding") == nullptr, "CL body with Transfer-Encoding");
  }
}

struct Decoded {
  std::string data;
  size_t consumed = 0;
  bool done = false;
  bool error = false;
};

// Feeds `in` whole (piece 0) or one byte at a time.
Decoded Decode(std::string_view in, bool byte_by_byte) {
  ChunkedDecoder decoder;
  Decoded out;
  size_t offset = 0;
  while (offset < in.size() && !out.done && !out.error) {
    const std::string_view rest = in.substr(offset, byte_by_byte ? 1 : std::string_view::npos);
    const ChunkedDecoder::Step step = decoder.Feed(rest);
    Check(step.consumed <= rest.size(), "decoder consumed beyond input");
    Check(Inside(step.data, rest.substr(0, step.consumed)), "data outside consumed bytes");
    Check(step.consumed > 0 || step.done || step.error, "decoder made no progress");
    out.data.append(step.data);
    offset += step.consumed;
    out.done = step.done;
    out.error = step.error;
    if (step.error) Check(step.error_reason != nullptr && step.error_reason[0], "no reason");
  }
  out.consumed = offset;
  Check(decoder.done() == out.done, "done() disagrees");
  return out;
}

void FuzzBody(std::string_view body) {
  const Decoded whole = Decode(body, false);
  const Decoded bytes = Decode(body, true);
  Check(whole.data == bytes.data, "data depends on the split");
  Check(whole.done == bytes.done && whole.error == bytes.error, "verdict depends on the split");
  if (whole.done) Check(whole.consumed == bytes.consumed, "end depends on the split");
  Check(whole.data.size() <= body.size(), "more data than input");
}

}  // namespace
}  // namespace turnout::http

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace turnout::http;
  if (size == 0) return 0;
  static constexpr std::string_view kMethods[] = {"GET",    "HEAD",    "POST",  "PUT",
                                                  "DELETE", "OPTIONS", "PATCH", "head"};
  const uint8_t selector = data[0];
  const std::string_view method = kMethods[selector % 8];
  ParseLimits limits;
  limits.max_head_bytes = (selector & 0x80) ? 256 : 8192;
  limits.max_headers = (selector & 0x40) ? 4 : 64;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

  static ResponseHead reused;  // keeps whatever the previous input left in it
  const ParseResult r = ParseResponseHead(in, method, limits, &reused);
  Check(r.consumed <= in.size(), "consumed beyond input");
  if (r.state == ParseState::kError) {
    Check(r.error_status == 502, "response error not 502");
    Check(r.error_reason != nullptr && r.error_reason[0] != '\0', "error without reason");
  }
  // A prefix never contradicts the whole: an error stays an error, a complete head stays the same.
  static ResponseHead early;
  const ParseResult half = ParseResponseHead(in.substr(0, in.size() / 2), method, limits, &early);
  if (half.state == ParseState::kError) Check(r.state == ParseState::kError, "error undone");
  if (half.state == ParseState::kComplete) {
    Check(r.state == ParseState::kComplete && r.consumed == half.consumed, "head changed");
  }
  if (r.state != ParseState::kComplete) return 0;

  static ResponseHead fresh;
  fresh = ResponseHead{};
  const ParseResult again = ParseResponseHead(in, method, limits, &fresh);
  Check(again.state == r.state && again.consumed == r.consumed, "verdict depends on the object");
  Check(SameHead(reused, fresh), "reused head differs from a fresh one");

  const std::string_view bytes = in.substr(0, r.consumed);
  Check(r.consumed >= 4 && bytes.substr(r.consumed - 4) == "\r\n\r\n", "head not CRLFCRLF");
  static ResponseHead shorter;
  const ParseResult prefix =
      ParseResponseHead(bytes.substr(0, r.consumed - 1), method, limits, &shorter);
  Check(prefix.state == ParseState::kIncomplete, "shorter head not incomplete");
  static ResponseHead alone;
  const ParseResult head_only = ParseResponseHead(bytes, method, limits, &alone);
  Check(head_only.state == ParseState::kComplete && head_only.consumed == r.consumed &&
            SameHead(alone, fresh),
        "the bytes after the head changed it");
  CheckHead(fresh, bytes, method, limits);
  if (fresh.body == BodyKind::kChunked) FuzzBody(in.substr(r.consumed));
  return 0;
}
