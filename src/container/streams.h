// Readers of the two streamed body formats of the Docker Engine API. Both are fed untrusted bytes
// (whatever the engine, or something posing as it, sends) in pieces of any size, and both are
// fuzzed (streams_log_fuzz.cc, streams_json_fuzz.cc).
//
//   LogDemuxer      the multiplexed stream of GET /containers/{id}/logs and attach for a
//                   container without a TTY: frames of an 8-byte header [stream, 0, 0, 0,
//                   size (4 bytes, big-endian)] followed by `size` bytes of payload; stream is 0
//                   (stdin), 1 (stdout) or 2 (stderr).
//   JsonLineReader  newline-delimited JSON objects (POST /images/create progress, GET /events).
//
// Both are incremental: a frame or a line may be split anywhere across Feed() calls, and the
// result does not depend on how the input was split. After an error every later call returns the
// same error (the stream cannot be resynchronised).

#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace turnout::container {

enum class LogStream : uint8_t { kStdin = 0, kStdout = 1, kStderr = 2 };

class LogDemuxer {
 public:
  // Receives payload bytes in order; a frame's payload may come in several pieces (never an
  // empty one). Return false to stop: Feed then returns Aborted.
  using Sink = std::function<bool(LogStream stream, std::string_view piece)>;

  // Consumes all of `bytes`. InvalidArgument when a header is not a frame header (a stream other
  // than 0-2, or non-zero padding: the container probably runs with a TTY, whose logs are not
  // multiplexed).
  Status Feed(std::string_view bytes, const Sink& sink);
  // At the end of the stream: InvalidArgument when it stopped inside a header or a payload.
  Status Finish() const;

  uint64_t frames() const { return frames_; }  // frame headers read so far

 private:
  Status error_;
  char header_[8] = {};
  size_t header_fill_ = 0;
  uint32_t remaining_ = 0;  // payload bytes still to come of the current frame
  LogStream stream_ = LogStream::kStdout;
  uint64_t frames_ = 0;
};

class JsonLineReader {
 public:
  // Receives each non-empty line's JSON value. Return false to stop: Feed then returns Aborted.
  using Sink = std::function<bool(const nlohmann::json& value)>;

  static constexpr size_t kDefaultMaxLine = 1 << 20;
  explicit JsonLineReader(size_t max_line_bytes = kDefaultMaxLine) : max_line_(max_line_bytes) {}

  // Lines end in "\n" (a "\r" before it is dropped); lines of only whitespace are skipped.
  // InvalidArgument for a line that is not JSON or is longer than `max_line_bytes`.
  Status Feed(std::string_view bytes, const Sink& sink);
  // At the end of the stream: a last line without "\n" is parsed like the others.
  Status Finish(const Sink& sink);

  uint64_t values() const { return values_; }  // values handed to sinks so far

 private:
  Status TakeLine(std::string_view line, const Sink& sink);

  size_t max_line_;
  Status error_;
  std::string partial_;
  uint64_t values_ = 0;
};

}  // namespace turnout::container
