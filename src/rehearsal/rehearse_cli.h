// `turnout rehearse`: the command-line face of rehearsal/rehearsal.h.
//
//   turnout rehearse [ID|latest] [--url URL] [--migrations D] [--backups D] [--lock-budget 1s]
//                    [--jobs N] [--verify N] [--keep] [--json] ...
//
// Human output by default (progress lines on `err`, the report on `out`), --json for scripts
// (the report as one JSON document on `out`; a failure to run is {"ok": false, "error": ...}).
// Exit codes: 0 the rehearsal ran and flagged nothing; 1 something was flagged, or the rehearsal
// could not run (an unverified or damaged backup, an unreachable server, ...); 2 bad usage.
//
// Thread-safety: reentrant; writes only to `out` and `err`.

#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace turnout::rehearsal {

// `args` are the words after `rehearse`, e.g. {"latest", "--migrations", "db/migrations"}.
int RunRehearseCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace turnout::rehearsal
