// `turnout logs --access`: reading the router's JSON access log back (router/access_log.h),
// filtered, as a compact table or as the JSON lines themselves.
//
// Thread-safety: pure functions, except FollowAccessLog (the calling thread only).

#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace turnout::cli {

struct AccessLogFilter {
  std::string slot;      // empty: every slot
  int status_class = 0;  // 1..5 for "5xx"; 0: none
  int status = 0;        // an exact status ("404"); 0: none
  std::string since;     // a "time" value (FormatAccessLogTime): lines from it on
};

// "5xx" / "4XX" (a class) or "404" (a status); InvalidArgument otherwise.
Status ParseStatusFilter(std::string_view text, AccessLogFilter* filter);

// A parsed line that passes the filter. nullopt for a line that is not a JSON object (a logfmt
// log, a torn line) or that the filter drops.
struct AccessLogLine {
  std::string time, client, method, path, protocol, slot, instance, route, request_id, trace_id,
      error;
  int status = 0;
  double duration_ms = 0;
};
std::optional<AccessLogLine> ParseAccessLogLine(std::string_view line);
bool Matches(const AccessLogLine& line, const AccessLogFilter& filter);

// One row of the human table: TIME STATUS METHOD PATH SLOT MS ROUTE TRACE/ERROR, columns padded
// for a live stream. Control bytes in the path are escaped (common/text.h EscapeControl).
std::string FormatAccessLogRow(const AccessLogLine& line);
std::string AccessLogHeaderRow();

// Calls `emit` with each complete line of FILE (from its start), then, when `follow`, keeps
// polling every `poll` for new lines, across a rotation (FILE renamed away and a new FILE
// created: the rest of the old file is read first) and a truncation, until `emit` returns false.
// IoError naming the file when it cannot be opened at first.
Status ReadAccessLog(const std::string& path, bool follow, std::chrono::milliseconds poll,
                     const std::function<bool(std::string_view line)>& emit);

}  // namespace turnout::cli
