// The audit log's hash chain: canonical encoding, entry hashes, the head anchor file and the
// verification that explains what was done to a broken chain. Pure functions over entries and
// files; the store (sqlite_state_store.h) reads the rows and calls them.
//
// Canonical encoding of an entry (hashed with SHA-256, stored as lowercase hex):
//   "turnout-audit-v1\n" then, for seq, time (ns since the Unix epoch, decimal), actor, action,
//   subject, detail, prev_hash in that order: "<byte length>:<bytes>\n".
// The length prefix makes the encoding unambiguous whatever bytes the fields hold.
//
// Head anchor file (`<database>.audit-head`), written atomically (temp file, fsync, rename,
// fsync of the directory) after each append commits:
//   turnout-audit-head 1
//   seq <last seq>
//   hash <its hash>
//   check <SHA-256 hex of the three lines above, newlines included>
//
// Thread-safety: all functions are safe to call concurrently (they share no state).

#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/sha256.h"
#include "common/status.h"
#include "state/state_store.h"

namespace turnout::state::audit {

// prev_hash of the first entry.
inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

int64_t ToNanos(WallTime time);
WallTime FromNanos(int64_t nanos);

std::string CanonicalEncoding(const AuditEntry& entry);
// Lowercase hex SHA-256 of CanonicalEncoding(entry) (entry.hash is ignored).
std::string ComputeHash(const AuditEntry& entry);
// Lowercase hex SHA-256 of arbitrary bytes (common/sha256.h).
using ::turnout::Sha256Hex;

struct Head {
  int64_t seq = 0;
  std::string hash{kGenesisHash};
};

enum class HeadState { kOk, kMissing, kCorrupt };
struct HeadFile {
  HeadState state = HeadState::kMissing;
  Head head;
  std::string error;  // why it is corrupt
};

std::string HeadPath(const std::string& database_path);  // database_path + ".audit-head"
// Replaces the file atomically (mode 0600). Durable when it returns OK.
Status WriteHead(const std::string& path, const Head& head);
HeadFile ReadHead(const std::string& path);

// Checks `entries` (all rows of the table, ascending seq) against each other and the anchor.
// The first bad entry is exact (the lowest seq where the chain stops holding); the kind is the
// most likely explanation of what happened there (see docs/state.md for the rules).
AuditReport Verify(const std::vector<AuditEntry>& entries, const HeadFile& head);

// Incremental check: `rows` are the table's entries with seq >= from.seq (all of them when
// from.seq is 0), ascending. OK when the entry `from` names is still there with that hash and
// content, every later row links onto the one before it with a valid hash and no gap, and the
// anchor names none of the rows' successors (truncation) nor a different hash. Costs one hash
// per row: a caller that remembers the last verified entry checks only what was appended since.
// The kind of a failure is the plain one (modified, deleted...); Verify over the whole table
// explains it in more detail. report.entries counts `rows`.
AuditReport VerifyFrom(const Head& from, const std::vector<AuditEntry>& rows, const HeadFile& head);

}  // namespace turnout::state::audit
