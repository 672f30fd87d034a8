// `turnout backup`: the command-line face of backup/backup.h.
//
//   turnout backup create|list|verify|restore|prune [flags]
//
// Human output by default (live progress on `err` while pg_dump/pg_restore run), --json for
// scripts (one JSON document on `out`, no progress). Exit codes: 0 success; 1 the work failed
// (create failed, verify found a problem, restore was refused for want of --confirm-data-loss or
// did not match the manifest); 2 bad usage.
//
// Thread-safety: reentrant; writes only to `out` and `err`.

#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace turnout::backup {

// `args` are the words after `backup`, e.g. {"verify", "latest", "--level", "2"}.
int RunBackupCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace turnout::backup
