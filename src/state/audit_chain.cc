#include "state/audit_chain.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <optional>
#include <unordered_map>

#include "common/file_util.h"

namespace turnout::state::audit {
namespace {

void AppendField(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += ':';
  out += field;
  out += '\n';
}

std::optional<int64_t> ParseInt(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

bool IsHexHash(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string HeadBody(const Head& head) {
  return "turnout-audit-head 1\nseq " + std::to_string(head.seq) + "\nhash " + head.hash + "\n";
}

}  // namespace

int64_t ToNanos(WallTime time) { return time.time_since_epoch().count(); }
WallTime FromNanos(int64_t nanos) { return WallTime(Clock::Duration(nanos)); }

std::string CanonicalEncoding(const AuditEntry& entry) {
  std::string out = "turnout-audit-v1\n";
  AppendField(out, std::to_string(entry.seq));
  AppendField(out, std::to_string(ToNanos(entry.time)));
  AppendField(out, entry.actor);
  AppendField(out, entry.action);
  AppendField(out, entry.subject);
  AppendField(out, entry.detail_json);
  AppendField(out, entry.prev_hash);
  return out;
}

std::string ComputeHash(const AuditEntry& entry) { return Sha256Hex(CanonicalEncoding(entry)); }

std::string HeadPath(const std::string& database_path) { return database_path + ".audit-head"; }

Status WriteHead(const std::string& path, const Head& head) {
  std::string body = HeadBody(head);
  body += "check " + Sha256Hex(body) + "\n";
  return WriteFileAtomically(path, body, 0600);
}

HeadFile ReadHead(const std::string& path) {
  HeadFile out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return out;  // kMissing
    out.state = HeadState::kCorrupt;
    out.error = "cannot open: " + std::string(std::strerror(errno));
    return out;
  }
  std::string data;
  char buf[512];
  while (data.size() < 4096) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  out.state = HeadState::kCorrupt;
  // Four lines exactly; anything else is corrupt.
  std::vector<std::string_view> lines;
  std::string_view rest(data);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) {
      out.error = "last line is not terminated";
      return out;
    }
    lines.push_back(rest.substr(0, nl));
    rest.remove_prefix(nl + 1);
  }
  if (lines.size() != 4 || lines[0] != "turnout-audit-head 1" || !lines[1].starts_with("seq ") ||
      !lines[2].starts_with("hash ") || !lines[3].starts_with("check ")) {
    out.error = "not a turnout audit head file";
    return out;
  }
  std::optional<int64_t> seq = ParseInt(lines[1].substr(4));
  std::string_view hash = lines[2].substr(5);
  if (!seq.has_value() || *seq < 0 || !IsHexHash(hash)) {
    out.error = "bad seq or hash";
    return out;
  }
  Head head{*seq, std::string(hash)};
  if (lines[3].substr(6) != Sha256Hex(HeadBody(head))) {
    out.error = "checksum mismatch";
    return out;
  }
  out.state = HeadState::kOk;
  out.head = std::move(head);
  return out;
}

AuditReport Verify(const std::vector<AuditEntry>& entries, const HeadFile& head) {
  AuditReport report;
  const size_t n = entries.size();
  report.entries = static_cast<int64_t>(n);
  report.last_seq = n == 0 ? 0 : entries.back().seq;
  report.last_hash = n == 0 ? std::string(kGenesisHash) : entries.back().hash;
  if (head.state == HeadState::kOk) report.head_seq = head.head.seq;

  auto fail = [&](AuditProblemKind kind, int64_t seq, std::string message) {
    report.kind = kind;
    report.first_bad_seq = seq;
    report.message = std::move(message);
    return report;
  };
  auto valid_at = [&](size_t i, int64_t seq) {
    AuditEntry copy = entries[i];
    copy.seq = seq;
    return ComputeHash(copy) == entries[i].hash;
  };

  // The position each row's content was hashed for ("claimed"): its own seq for an intact row;
  // for a row whose seq was changed, the seq its hash is valid at, found from its prev_hash link
  // or nearby positions; none when the content itself was changed.
  std::vector<bool> own_valid(n);
  std::unordered_map<std::string, size_t> by_hash;
  for (size_t i = 0; i < n; ++i) {
    own_valid[i] = valid_at(i, entries[i].seq);
    by_hash.emplace(entries[i].hash, i);
  }
  std::vector<std::optional<int64_t>> claimed(n);
  std::unordered_map<int64_t, int> claim_count;
  constexpr int64_t kWindow = 8;
  for (size_t i = 0; i < n; ++i) {
    if (own_valid[i]) {
      claimed[i] = entries[i].seq;
    } else {
      std::vector<int64_t> candidates;
      if (entries[i].prev_hash == kGenesisHash) candidates.push_back(1);
      auto link = by_hash.find(entries[i].prev_hash);
      if (link != by_hash.end() && own_valid[link->second]) {
        candidates.push_back(entries[link->second].seq + 1);
      }
      for (int64_t d = 1; d <= kWindow; ++d) {
        candidates.push_back(entries[i].seq - d);
        candidates.push_back(entries[i].seq + d);
      }
      for (int64_t c : candidates) {
        if (c >= 1 && valid_at(i, c)) {
          claimed[i] = c;
          break;
        }
      }
    }
    if (claimed[i].has_value()) ++claim_count[*claimed[i]];
  }
  auto claimed_by_other = [&](int64_t seq, size_t self) {
    for (size_t j = 0; j < n; ++j) {
      if (j != self && claimed[j] == seq) return true;
    }
    return false;
  };
  auto broken_link = [&](size_t i) {
    const AuditEntry& row = entries[i];
    if (i + 1 < n && claimed[i + 1] == row.seq) {
      return fail(AuditProblemKind::kInserted, row.seq,
                  "entry " + std::to_string(row.seq) +
                      " is not part of the chain; the entry hashed for that position now sits "
                      "after it");
    }
    int64_t seq = i == 0 ? row.seq : entries[i - 1].seq;
    return fail(AuditProblemKind::kModified, seq,
                "entry " + std::to_string(row.seq) + " does not link to " +
                    (i == 0 ? std::string("the start of the chain")
                            : "entry " + std::to_string(entries[i - 1].seq)) +
                    " (an entry was rewritten and rehashed)");
  };

  for (size_t i = 0; i < n; ++i) {
    const AuditEntry& row = entries[i];
    const int64_t expected_seq = i == 0 ? 1 : entries[i - 1].seq + 1;
    const std::string& expected_prev = i == 0 ? std::string(kGenesisHash) : entries[i - 1].hash;
    const std::string at = "entry " + std::to_string(row.seq);
    if (!claimed[i].has_value() && !(i + 1 < n && claimed[i + 1] == row.seq)) {
      // The first row without a claim: before calling it modified, look for its position
      // everywhere (a renumbering by more than the window), once, in O(entries) hashes.
      const int64_t limit = report.last_seq + static_cast<int64_t>(n) + 1;
      for (int64_t seq = 1; seq <= limit; ++seq) {
        if (valid_at(i, seq)) {
          claimed[i] = seq;
          ++claim_count[seq];
          break;
        }
      }
    }
    if (!claimed[i].has_value()) {
      if (i + 1 < n && claimed[i + 1] == row.seq) {
        return fail(AuditProblemKind::kInserted, row.seq,
                    at + " is not part of the chain; the entry hashed for that position now "
                         "sits after it");
      }
      return fail(AuditProblemKind::kModified, row.seq, at + ": content does not match its hash");
    }
    const int64_t c = *claimed[i];
    if (c > row.seq) {
      if (claim_count[row.seq] > 0) {
        return fail(AuditProblemKind::kReordered, row.seq,
                    at + " holds the content of entry " + std::to_string(c) +
                        ", and its own content sits elsewhere");
      }
      return fail(AuditProblemKind::kDeleted, row.seq,
                  "entries " + std::to_string(row.seq) + ".." + std::to_string(c - 1) +
                      " are missing; later entries were renumbered to hide the gap");
    }
    if (c < row.seq) {
      if (claimed_by_other(c, i)) {
        for (size_t j = 0; j < i; ++j) {
          if (claimed[j] == c) {
            return fail(AuditProblemKind::kInserted, entries[j].seq,
                        "entry " + std::to_string(entries[j].seq) +
                            " is not part of the chain; the entry hashed for that position "
                            "now sits at " +
                            std::to_string(row.seq));
          }
        }
        return fail(AuditProblemKind::kInserted, row.seq,
                    at + " duplicates the content of entry " + std::to_string(c));
      }
      return fail(AuditProblemKind::kReordered, row.seq,
                  at + " holds the content of entry " + std::to_string(c));
    }
    // Hash valid at its own position.
    if (row.seq != expected_seq) {
      if (claim_count[expected_seq] > 0) {
        return fail(AuditProblemKind::kReordered, expected_seq,
                    "entry " + std::to_string(expected_seq) + " was moved to another position");
      }
      return fail(AuditProblemKind::kDeleted, expected_seq,
                  "entries " + std::to_string(expected_seq) + ".." + std::to_string(row.seq - 1) +
                      " are missing");
    }
    if (row.prev_hash != expected_prev) return broken_link(i);
  }

  switch (head.state) {
    case HeadState::kMissing:
      if (n > 0) {
        return fail(AuditProblemKind::kHeadMissing, 0,
                    "the head anchor file is missing; truncation cannot be ruled out");
      }
      return report;
    case HeadState::kCorrupt:
      return fail(AuditProblemKind::kHeadCorrupt, 0,
                  "the head anchor file is corrupt: " + head.error);
    case HeadState::kOk:
      break;
  }
  const Head& anchor = head.head;
  if (anchor.seq > report.last_seq) {
    return fail(AuditProblemKind::kTruncated, report.last_seq + 1,
                "the head anchor names entry " + std::to_string(anchor.seq) +
                    " but the log ends at entry " + std::to_string(report.last_seq));
  }
  // The chain is contiguous from 1 here, so entry k sits at index k-1.
  const std::string& anchored_hash =
      anchor.seq == 0 ? std::string(kGenesisHash) : entries[anchor.seq - 1].hash;
  if (anchored_hash != anchor.hash) {
    return fail(AuditProblemKind::kModified, anchor.seq == 0 ? 1 : anchor.seq,
                "entry " + std::to_string(anchor.seq) +
                    " differs from the head anchor (the tail was rewritten)");
  }
  report.head_lag = report.last_seq - anchor.seq;
  return report;
}

AuditReport VerifyFrom(const Head& from, const std::vector<AuditEntry>& rows,
                       const HeadFile& head) {
  AuditReport report;
  report.entries = static_cast<int64_t>(rows.size());
  report.last_seq = rows.empty() ? from.seq : rows.back().seq;
  report.last_hash = rows.empty() ? from.hash : rows.back().hash;
  if (head.state == HeadState::kOk) report.head_seq = head.head.seq;
  auto fail = [&](AuditProblemKind kind, int64_t seq, std::string message) {
    report.kind = kind;
    report.first_bad_seq = seq;
    report.message = std::move(message);
    return report;
  };
  size_t i = 0;
  if (from.seq > 0) {
    const std::string at = "entry " + std::to_string(from.seq);
    if (rows.empty() || rows[0].seq != from.seq) {
      return fail(AuditProblemKind::kDeleted, from.seq,
                  at + ", verified earlier, is gone from the log");
    }
    if (rows[0].hash != from.hash || ComputeHash(rows[0]) != rows[0].hash) {
      return fail(AuditProblemKind::kModified, from.seq, at + " changed since it was verified");
    }
    i = 1;
  }
  int64_t expected_seq = from.seq + 1;
  std::string expected_prev = from.seq > 0 ? from.hash : std::string(kGenesisHash);
  for (; i < rows.size(); ++i) {
    const AuditEntry& row = rows[i];
    const std::string at = "entry " + std::to_string(row.seq);
    if (row.seq > expected_seq) {
      return fail(AuditProblemKind::kDeleted, expected_seq,
                  "entries " + std::to_string(expected_seq) + ".." + std::to_string(row.seq - 1) +
                      " are missing");
    }
    if (row.seq < expected_seq) {
      return fail(AuditProblemKind::kReordered, row.seq, at + " is out of order");
    }
    if (ComputeHash(row) != row.hash) {
      return fail(AuditProblemKind::kModified, row.seq, at + ": content does not match its hash");
    }
    if (row.prev_hash != expected_prev) {
      return fail(AuditProblemKind::kModified, row.seq,
                  at + " does not link to entry " + std::to_string(row.seq - 1) +
                      " (an entry was rewritten and rehashed)");
    }
    expected_prev = row.hash;
    ++expected_seq;
  }
  switch (head.state) {
    case HeadState::kMissing:
      return fail(AuditProblemKind::kHeadMissing, 0,
                  "the head anchor file is missing; truncation cannot be ruled out");
    case HeadState::kCorrupt:
      return fail(AuditProblemKind::kHeadCorrupt, 0,
                  "the head anchor file is corrupt: " + head.error);
    case HeadState::kOk:
      break;
  }
  if (head.head.seq > report.last_seq) {
    return fail(AuditProblemKind::kTruncated, report.last_seq + 1,
                "the head anchor names entry " + std::to_string(head.head.seq) +
                    " but the log ends at entry " + std::to_string(report.last_seq));
  }
  const int64_t first = from.seq > 0 ? from.seq : 1;
  if (head.head.seq >= first) {
    const AuditEntry& anchored = rows[static_cast<size_t>(head.head.seq - first)];
    if (anchored.hash != head.head.hash) {
      return fail(AuditProblemKind::kModified, head.head.seq,
                  "entry " + std::to_string(head.head.seq) +
                      " differs from the head anchor (the tail was rewritten)");
    }
  }
  report.head_lag = std::max<int64_t>(0, report.last_seq - head.head.seq);
  return report;
}

}  // namespace turnout::state::audit
