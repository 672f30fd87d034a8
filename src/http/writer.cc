#include "http/writer.h"

#include <charconv>

#include "http/parser.h"

namespace turnout::http {
namespace {

void AppendUnsigned(std::string* out, uint64_t value, int base) {
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof(digits), value, base);
  out->append(digits, result.ptr);
}

}  // namespace

void AppendSimpleResponse(std::string* out, int status, std::string_view content_type,
                          std::string_view body, bool close, std::string_view extra_header_lines) {
  out->append("HTTP/1.1 ");
  AppendUnsigned(out, static_cast<uint64_t>(status), 10);
  out->push_back(' ');
  out->append(ReasonPhrase(status));
  out->append("\r\n");
  if (!content_type.empty()) AppendHeader(out, "Content-Type", content_type);
  out->append("Content-Length: ");
  AppendUnsigned(out, body.size(), 10);
  out->append("\r\n");
  if (close) out->append("Connection: close\r\n");
  out->append(extra_header_lines);
  out->append("\r\n");
  out->append(body);
}

void AppendHeader(std::string* out, std::string_view name, std::string_view value) {
  out->append(name);
  out->append(": ");
  out->append(value);
  out->append("\r\n");
}

void AppendChunkHeader(std::string* out, uint64_t size) {
  AppendUnsigned(out, size, 16);
  out->append("\r\n");
}

}  // namespace turnout::http
