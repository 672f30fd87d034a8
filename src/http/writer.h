// Small helpers that serialise HTTP/1.1 messages the router and the demo app produce themselves
// (error pages, admin replies, re-framed chunked bodies).
//
// All functions append to a caller-owned std::string and never fail. They trust their arguments:
// header names/values and content types must already be valid field content (no CR/LF), which
// holds for the literals and numbers the callers pass; they are not meant for untrusted bytes.
// Thread-safety: stateless, safe from any thread.
//
// Example:
//   std::string out;
//   http::AppendSimpleResponse(&out, 503, "text/plain", "no healthy instance\n", /*close=*/true,
//                              "Retry-After: 1\r\n");

#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace turnout::http {

// Appends "HTTP/1.1 <status> <reason>\r\nContent-Type: <content_type>\r\nContent-Length: <n>\r\n"
// ["Connection: close\r\n"] <extra_header_lines> "\r\n" <body>. The reason is ReasonPhrase(status)
// (empty for unknown codes). `extra_header_lines` is zero or more complete "Name: value\r\n" lines.
// An empty content_type omits the Content-Type line.
void AppendSimpleResponse(std::string* out, int status, std::string_view content_type,
                          std::string_view body, bool close,
                          std::string_view extra_header_lines = {});

// Appends one "Name: value\r\n" line.
void AppendHeader(std::string* out, std::string_view name, std::string_view value);

// Appends the size line of a chunk: lower-case hex without leading zeros, then CRLF. A size of 0
// is the last chunk; prefer kLastChunk, which also ends the (empty) trailer section.
void AppendChunkHeader(std::string* out, uint64_t size);

// The last chunk plus the empty trailer section that ends a chunked body.
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

}  // namespace turnout::http
