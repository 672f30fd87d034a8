// Strict HTTP/1.1 message-head parsing and chunked-body decoding for untrusted bytes.
//
// The router faces the internet, so this parser refuses every ambiguous framing instead of
// guessing (RFC 9112 §6.3 and the request-smuggling literature). A request is rejected when it has:
//   - Content-Length together with Transfer-Encoding;
//   - a Transfer-Encoding other than exactly one `chunked` (so `chunked, chunked`, `gzip`,
//     `gzip, chunked` and duplicate Transfer-Encoding fields are all refused) -> 400
//     (a coding other than chunked alone is refused with 501 when it is otherwise well-formed);
//   - more than one Content-Length field, or one that is signed, empty, has non-digits, lists
//     several values, or overflows;
//   - a bare CR or a bare LF as a line ending anywhere in the head;
//   - whitespace between a field name and the colon; obs-fold (a line starting with SP/HTAB);
//   - a `Content_Length` or `Transfer_Encoding` field (CGI-style servers read them as framing);
//   - control characters (other than HTAB in values) or non-token bytes in names, method;
//   - a request-line that is not `method SP request-target SP HTTP/1.x`;
//   - a request-target with bytes other than visible ASCII, or not in origin-form (`/p?q`),
//     absolute-form (`scheme://authority...`) or asterisk-form (`*`, OPTIONS only);
//   - the CONNECT method (authority-form; the router does not tunnel) -> 501;
//   - no Host in HTTP/1.1, more than one Host, or a Host with characters other than letters,
//     digits and `-._~:[]%`; an absolute-form target whose authority is not the Host value
//     (the upstream would follow the target, the router the Host);
//   - a Connection option that is not a token.
// Empty lines (CRLF) before the request-line are skipped and counted in `consumed`.
// Limits: a head larger than `max_head_bytes` -> 431; a request-target longer than
// `max_target_bytes` -> 414; more than `max_headers` fields -> 431. HTTP/1.0 and 1.1 are
// accepted; any other version -> 505. Errors that the bytes received so far already prove (a bare
// LF, a bad method, an over-long target, a bad version) are reported before the head is complete.
//
// Zero-copy: every string_view in a parsed head points into the buffer given to the parser, which
// must outlive the head. Parsing is a pure function of the bytes: call it again with more bytes
// after kIncomplete (the cost is bounded by max_head_bytes). No allocation, no locale.
// Thread-safety: the functions are pure; a ChunkedDecoder is one object per body, not shared.
//
// Example:
//   http::RequestHead head;
//   http::ParseResult r = http::ParseRequestHead(buffer, limits, &head);
//   if (r.state == http::ParseState::kIncomplete) { /* read more */ }
//   if (r.state == http::ParseState::kError) { /* reply r.error_status, close */ }
//   // r.consumed bytes form the head; the body (if any) follows, framed by head.body.

#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/text.h"

namespace turnout::http {

inline constexpr size_t kMaxHeaders = 100;

struct ParseLimits {
  size_t max_head_bytes = 64 * 1024;   // Default: 64 KiB. Over it: 431.
  size_t max_target_bytes = 8 * 1024;  // Default: 8 KiB. Over it: 414.
  size_t max_headers = kMaxHeaders;    // Default: 100 (never more than kMaxHeaders). Over it: 431.
};

enum class ParseState { kIncomplete, kComplete, kError };

struct ParseResult {
  ParseState state = ParseState::kIncomplete;
  size_t consumed = 0;   // kComplete: bytes of the head, including the final CRLF CRLF
  int error_status = 0;  // kError: the status to answer with (400, 414, 431, 501, 505, 502)
  const char* error_reason = "";  // kError: a short static description for logs and metrics
  // kIncomplete (ParseRequestHead): where the next call on the same, grown buffer may resume the
  // search for the end of the head. Passing it back keeps a client that trickles its head a byte
  // at a time from costing a rescan of everything received on every read.
  size_t resume_at = 0;
};

// How the body that follows a head is framed.
enum class BodyKind {
  kNone,           // no body (requests without CL/TE; HEAD, 1xx, 204, 304 responses)
  kContentLength,  // exactly content_length bytes (`Content-Length: 0` gives this with 0)
  kChunked,        // chunked transfer coding; decode with ChunkedDecoder
  kUntilClose,     // responses only: the body ends when the upstream closes
};

struct Header {
  std::string_view name;   // as received (case preserved); compare with EqualsIgnoreCase
  std::string_view value;  // leading/trailing whitespace trimmed
  // True for fields a proxy must not forward: Connection, Keep-Alive, Proxy-Connection, TE,
  // Trailer, Transfer-Encoding, Upgrade, Proxy-Authenticate, Proxy-Authorization, and every field
  // named in a Connection header. (Transfer-Encoding/Upgrade are re-added by the proxy itself
  // when it forwards a chunked body or an upgrade.) Host and Content-Length are never marked even
  // when a Connection header names them: dropping them would change routing or body framing
  // between the proxy and the upstream, which is itself a smuggling trick.
  bool hop_by_hop = false;
};

struct MessageHeaders {
  Header fields[kMaxHeaders];
  size_t count = 0;

  // The first field with this name (case-insensitive), or nullptr when there is none.
  const Header* Find(std::string_view name) const;
};

// RequestHead and ResponseHead hold kMaxHeaders fields inline (about 4 KiB): keep one per
// connection rather than on a small stack. The parser resets every member it reports, so an
// object can be reused for the next message.
struct RequestHead {
  std::string_view method;
  std::string_view target;
  int version_minor = 1;  // HTTP/1.<version_minor>: 0 or 1
  MessageHeaders headers;
  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;  // valid when body == kContentLength
  bool keep_alive = true;       // HTTP/1.1 default unless `Connection: close`; 1.0 needs keep-alive
  bool expect_continue = false;  // `Expect: 100-continue`
  // `Connection: upgrade` + an `Upgrade` field on a GET (e.g. websocket). On other methods the
  // request is an ordinary one and the (hop-by-hop) Upgrade field is not forwarded.
  bool upgrade = false;
  std::string_view upgrade_protocol;  // the Upgrade field's value when upgrade is true
  std::string_view host;              // the Host field (required for HTTP/1.1: missing -> 400)
};

struct ResponseHead {
  int status = 0;
  std::string_view reason;
  int version_minor = 1;
  MessageHeaders headers;
  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;  // false when the upstream said close or the body is kUntilClose
};

// Parses a request head at the start of `buffer`. `resume_at` is 0, or the resume_at of the
// previous kIncomplete result for the same buffer (same bytes at the same offsets, more appended);
// any other value is treated as 0 when out of range and may otherwise turn a valid head into an
// error, never an invalid one into a valid one.
ParseResult ParseRequestHead(std::string_view buffer, const ParseLimits& limits, RequestHead* out,
                             size_t resume_at = 0);

// Parses an upstream's response head. `request_method` decides HEAD semantics (no body);
// the same strictness applies (a response with both CL and TE, a bad CL, bare LF... is an error,
// reported with error_status 502 so the proxy answers 502 to its client; limits too give 502).
// Framing: 1xx, 204, 304 and responses to HEAD have no body whatever their fields say.
// Transfer-Encoding fields form one list of codings in which `chunked` may only be last: chunked
// last -> kChunked; another final coding, or any Transfer-Encoding in an HTTP/1.0 response ->
// kUntilClose. Several Content-Length fields are accepted only when their values are identical.
// Neither CL nor TE -> kUntilClose. kUntilClose always sets keep_alive to false.
// The reason phrase may be empty, and its SP may be missing (`HTTP/1.1 200\r\n`).
ParseResult ParseResponseHead(std::string_view buffer, std::string_view request_method,
                              const ParseLimits& limits, ResponseHead* out);

// Incremental decoder for a chunked body. Feed it bytes as they arrive; it returns the data
// bytes (which the proxy re-frames as it forwards) and tells when the body, including its
// trailer section, has ended. Chunk extensions are validated and dropped; trailer fields are
// validated and dropped. Sizes are hex without sign or whitespace, at most 16 digits and never
// overflowing; anything else is an error (400 for requests, 502 for responses).
// Strict line endings: every line ends in CRLF (a bare LF or CR is an error), chunk data must be
// followed by exactly CRLF, the size line including extensions is at most 4 KiB and the trailer
// section at most 8 KiB. Any split of the input decodes exactly like the whole input. The decoder
// never consumes bytes after the end of the body (they belong to the next message).
class ChunkedDecoder {
 public:
  struct Step {
    size_t consumed = 0;    // bytes of `input` used by this step
    std::string_view data;  // body data found in this step (a sub-view of input), may be empty
    bool done = false;      // the terminating chunk and trailer section were read
    bool error = false;
    const char* error_reason = "";
  };

  // Decodes from `input` until it either produced some data, finished, failed, or needs more.
  // Call repeatedly while consumed < input.size() and !done && !error.
  Step Feed(std::string_view input);

  bool done() const;

 private:
  enum class State : uint8_t {
    kSize,
    kSizeLf,
    kExtName,
    kExtNameMore,
    kExtValueStart,
    kExtToken,
    kExtQuoted,
    kExtQuotedEscape,
    kExtAfterQuoted,
    kData,
    kDataCr,
    kDataLf,
    kTrailerLineStart,
    kTrailerName,
    kTrailerValue,
    kTrailerLf,
    kFinalLf,
    kDone,
    kError,
  };
  // Sub-states of a chunk extension (`;name[=token|quoted-string]`) and of a trailer field line
  // are explicit so that any split of the input decodes exactly like the whole input.
  State state_ = State::kSize;
  uint64_t remaining_ = 0;  // kSize: the size so far; kData: data bytes left in the chunk
  int size_digits_ = 0;
  size_t line_bytes_ = 0;     // guards the chunk-size line length (extensions included)
  size_t trailer_bytes_ = 0;  // total trailer section size
  const char* error_reason_ = "";
};

// ASCII case-insensitive comparison of header names and tokens (common/text.h).
using ::turnout::EqualsIgnoreCase;

// The canonical reason phrase for a status code ("Bad Gateway"); "" when unknown.
std::string_view ReasonPhrase(int status);

}  // namespace turnout::http
