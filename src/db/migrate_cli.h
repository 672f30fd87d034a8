// `turnout migrate`: the command-line face of db::Migrator.
//
//   turnout migrate status|plan|up|down|verify|lint|history [flags]
//
// Human output by default (one progress line per statement and migration), --json for scripts.
// Exit codes: 0 success; 1 the work failed (a migration failed, verify or lint found problems,
// the lock was not obtained); 2 bad usage.
//
// Thread-safety: reentrant; writes only to `out` and `err`.

#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace turnout::db {

// `args` are the words after `migrate`, e.g. {"up", "--dir", "migrations", "--to", "3"}.
int RunMigrateCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace turnout::db
