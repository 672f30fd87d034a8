// Reading a process's identity from /proc (Linux).
//
// A pid names a process only while it lives; (pid, start time, boot id) names it for good. The
// start time is field 22 of /proc/<pid>/stat, in clock ticks since boot; it does not change on
// exec, so a launcher can read it right after spawning.
// Thread-safe (no state).

#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace turnout::platform {

struct ProcStat {
  char state = '?';               // field 3: R S D Z X T t ...
  pid_t parent = 0;               // field 4
  uint64_t start_time_ticks = 0;  // field 22
  bool zombie() const { return state == 'Z' || state == 'X'; }
};

// Parses the text of /proc/<pid>/stat. The command name (field 2) may hold spaces and ')', so
// fields are counted from the last ')'. InvalidArgument on malformed text.
Result<ProcStat> ParseProcStat(std::string_view text);

// Reads /proc/<pid>/stat: NotFound when there is no such process, IoError otherwise.
Result<ProcStat> ReadProcStat(pid_t pid);

// /proc/sys/kernel/random/boot_id without the newline (read once, then cached).
Result<std::string> BootId();

}  // namespace turnout::platform
