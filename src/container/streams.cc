#include "container/streams.h"

#include <algorithm>

#include "common/text.h"

namespace turnout::container {

Status LogDemuxer::Feed(std::string_view bytes, const Sink& sink) {
  if (!error_.ok()) return error_;
  while (!bytes.empty()) {
    if (remaining_ == 0) {
      size_t take = std::min(bytes.size(), sizeof(header_) - header_fill_);
      std::copy_n(bytes.data(), take, header_ + header_fill_);
      header_fill_ += take;
      bytes.remove_prefix(take);
      if (header_fill_ < sizeof(header_)) break;
      header_fill_ = 0;
      auto u = [&](int i) { return static_cast<uint8_t>(header_[i]); };
      if (u(0) > 2 || u(1) != 0 || u(2) != 0 || u(3) != 0) {
        error_ = InvalidArgument(
            "container logs: not a multiplexed log stream (frame " + std::to_string(frames_ + 1) +
            " has a bad header); a container started with a TTY sends raw logs");
        return error_;
      }
      stream_ = static_cast<LogStream>(u(0));
      remaining_ = (uint32_t{u(4)} << 24) | (uint32_t{u(5)} << 16) | (uint32_t{u(6)} << 8) | u(7);
      ++frames_;
      continue;
    }
    size_t take = std::min<size_t>(bytes.size(), remaining_);
    remaining_ -= static_cast<uint32_t>(take);
    std::string_view piece = bytes.substr(0, take);
    bytes.remove_prefix(take);
    if (!sink(stream_, piece)) {
      error_ = Aborted("container logs: reading stopped");
      return error_;
    }
  }
  return Status::Ok();
}

Status LogDemuxer::Finish() const {
  if (!error_.ok()) return error_;
  if (header_fill_ != 0 || remaining_ != 0) {
    return InvalidArgument("container logs: the stream ended inside frame " +
                           std::to_string(frames_ + (header_fill_ != 0 ? 1 : 0)));
  }
  return Status::Ok();
}

Status JsonLineReader::TakeLine(std::string_view line, const Sink& sink) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (Trim(line).empty()) return Status::Ok();
  nlohmann::json value = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    error_ = InvalidArgument("engine stream: line " + std::to_string(values_ + 1) +
                             " is not JSON: \"" + std::string(line.substr(0, 80)) + "\"");
    return error_;
  }
  ++values_;
  if (!sink(value)) {
    error_ = Aborted("engine stream: reading stopped");
    return error_;
  }
  return Status::Ok();
}

Status JsonLineReader::Feed(std::string_view bytes, const Sink& sink) {
  if (!error_.ok()) return error_;
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    std::string_view part = bytes.substr(0, nl);
    if (partial_.size() + part.size() > max_line_) {
      error_ =
          InvalidArgument("engine stream: a line exceeds " + std::to_string(max_line_) + " bytes");
      return error_;
    }
    if (nl == std::string_view::npos) {
      partial_.append(part);
      break;
    }
    bytes.remove_prefix(nl + 1);
    Status s;
    if (partial_.empty()) {
      s = TakeLine(part, sink);
    } else {
      partial_.append(part);
      std::string line = std::move(partial_);
      partial_.clear();
      s = TakeLine(line, sink);
    }
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status JsonLineReader::Finish(const Sink& sink) {
  if (!error_.ok()) return error_;
  std::string line = std::move(partial_);
  partial_.clear();
  return TakeLine(line, sink);
}

}  // namespace turnout::container
