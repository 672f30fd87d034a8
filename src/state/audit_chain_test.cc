#include "state/audit_chain.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>

#include "common/clock.h"
#include "state/sqlite_state_store.h"
#include "state/test_util.h"

namespace turnout::state {
namespace {

using ::testing::HasSubstr;
using testing::RawExec;
using testing::TempDir;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

TEST(AuditChainTest, CanonicalEncodingSeparatesFields) {
  AuditEntry a;
  a.seq = 1;
  a.actor = "ab";
  a.action = "c";
  a.prev_hash = std::string(audit::kGenesisHash);
  AuditEntry b = a;
  b.actor = "a";
  b.action = "bc";
  EXPECT_NE(audit::CanonicalEncoding(a), audit::CanonicalEncoding(b));
  EXPECT_NE(audit::ComputeHash(a), audit::ComputeHash(b));
  EXPECT_EQ(audit::ComputeHash(a).size(), 64u);
  // Every field is covered.
  AuditEntry c = a;
  c.time += std::chrono::nanoseconds(1);
  EXPECT_NE(audit::ComputeHash(a), audit::ComputeHash(c));
  c = a;
  c.seq = 2;
  EXPECT_NE(audit::ComputeHash(a), audit::ComputeHash(c));
  c = a;
  c.detail_json = R"({"x":1})";
  EXPECT_NE(audit::ComputeHash(a), audit::ComputeHash(c));
  // The known SHA-256 of the empty string.
  EXPECT_EQ(audit::Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(AuditChainTest, HeadFileRoundTripAndCorruption) {
  TempDir dir;
  const std::string path = dir.File("db.audit-head");
  EXPECT_EQ(audit::ReadHead(path).state, audit::HeadState::kMissing);
  audit::Head head{7, audit::Sha256Hex("seven")};
  ASSERT_TRUE(audit::WriteHead(path, head).ok());
  audit::HeadFile read = audit::ReadHead(path);
  ASSERT_EQ(read.state, audit::HeadState::kOk) << read.error;
  EXPECT_EQ(read.head.seq, 7);
  EXPECT_EQ(read.head.hash, head.hash);

  std::string text = ReadFile(path);
  size_t at = text.find("seq 7");
  ASSERT_NE(at, std::string::npos);
  text[at + 4] = '9';  // a plausible edit that the checksum catches
  WriteFile(path, text);
  read = audit::ReadHead(path);
  EXPECT_EQ(read.state, audit::HeadState::kCorrupt);
  EXPECT_THAT(read.error, HasSubstr("checksum"));
  WriteFile(path, "garbage");
  EXPECT_EQ(audit::ReadHead(path).state, audit::HeadState::kCorrupt);
}

// A store with ten audit entries whose file the tests then tamper with through SQLite's C API
// (triggers dropped first, as an attacker with write access to the file would).
class AuditTamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    for (int i = 1; i <= 10; ++i) {
      clock_.Advance(std::chrono::seconds(1));
      auto seq = store->AppendAudit({"actor-" + std::to_string(1000 + i), "test.event", "web",
                                     R"({"i":)" + std::to_string(i) + "}"});
      ASSERT_TRUE(seq.ok()) << seq.status().ToString();
    }
    auto entries = store->ReadAudit(0, 0);
    ASSERT_TRUE(entries.ok());
    entries_ = *entries;
    auto report = store->VerifyAudit();
    ASSERT_TRUE(report.ok());
    ASSERT_TRUE(report->ok()) << report->ToString();
  }

  std::unique_ptr<SqliteStateStore> Open() { return testing::OpenTestStore(path_, &clock_); }

  void Tamper(const std::string& sql) {
    RawExec(path_,
            "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS "
            "audit_no_delete; " +
                sql);
  }

  AuditReport Verify() {
    auto store = Open();
    EXPECT_NE(store, nullptr);
    if (store == nullptr) return AuditReport();
    auto report = store->VerifyAudit();
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? *report : AuditReport();
  }

  void ExpectBroken(AuditProblemKind kind, int64_t first_bad_seq) {
    AuditReport report = Verify();
    EXPECT_FALSE(report.ok());
    EXPECT_EQ(report.kind, kind) << report.ToString();
    EXPECT_EQ(report.first_bad_seq, first_bad_seq) << report.ToString();
  }

  static std::string Row(const AuditEntry& e) {
    return "(" + std::to_string(e.seq) + ", " + std::to_string(audit::ToNanos(e.time)) + ", '" +
           e.actor + "', '" + e.action + "', '" + e.subject + "', '" + e.detail_json + "', '" +
           e.prev_hash + "', '" + e.hash + "')";
  }

  TempDir dir_;
  std::string path_ = dir_.File("turnout.db");
  ManualClock clock_;
  std::vector<AuditEntry> entries_;
};

TEST_F(AuditTamperTest, ModifiedContent) {
  Tamper("UPDATE audit SET actor = 'mallory' WHERE seq = 4");
  ExpectBroken(AuditProblemKind::kModified, 4);
}

TEST_F(AuditTamperTest, ModifiedAndRehashed) {
  AuditEntry forged = entries_[3];
  forged.detail_json = R"({"i":400})";
  forged.hash = audit::ComputeHash(forged);
  Tamper("UPDATE audit SET detail = '" + forged.detail_json + "', hash = '" + forged.hash +
         "' WHERE seq = 4");
  ExpectBroken(AuditProblemKind::kModified, 4);
}

TEST_F(AuditTamperTest, RawFileEditBehindSqlitesBack) {
  // The store closed cleanly in SetUp, so everything is checkpointed into the main file.
  const std::string needle = "actor-1006";
  std::string bytes = ReadFile(path_);
  size_t at = bytes.find(needle);
  ASSERT_NE(at, std::string::npos);
  ASSERT_EQ(bytes.find(needle, at + 1), std::string::npos);
  bytes[at + needle.size() - 1] = '9';
  WriteFile(path_, bytes);
  ExpectBroken(AuditProblemKind::kModified, 6);
}

TEST_F(AuditTamperTest, DeletedLeavesAGap) {
  Tamper("DELETE FROM audit WHERE seq IN (4, 5)");
  AuditReport report = Verify();
  EXPECT_EQ(report.kind, AuditProblemKind::kDeleted) << report.ToString();
  EXPECT_EQ(report.first_bad_seq, 4);
  EXPECT_THAT(report.message, HasSubstr("4..5"));
}

TEST_F(AuditTamperTest, DeletedAndRenumberedToHideTheGap) {
  std::string sql = "DELETE FROM audit WHERE seq = 4;";
  for (int s = 5; s <= 10; ++s) {
    sql += "UPDATE audit SET seq = " + std::to_string(s - 1) + " WHERE seq = " + std::to_string(s) +
           ";";
  }
  Tamper(sql);
  ExpectBroken(AuditProblemKind::kDeleted, 4);
}

TEST_F(AuditTamperTest, ManyDeletedAndRenumbered) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(store->AppendAudit({"b", "e", "web", "{}"}).ok());
  }
  // Entries 3..17 go; 18..30 become 3..15.
  std::string sql = "DELETE FROM audit WHERE seq BETWEEN 3 AND 17;";
  for (int s = 18; s <= 30; ++s) {
    sql += "UPDATE audit SET seq = " + std::to_string(s - 15) +
           " WHERE seq = " + std::to_string(s) + ";";
  }
  Tamper(sql);
  AuditReport report = Verify();
  EXPECT_EQ(report.kind, AuditProblemKind::kDeleted) << report.ToString();
  EXPECT_EQ(report.first_bad_seq, 3);
  EXPECT_THAT(report.message, HasSubstr("3..17"));
}

TEST_F(AuditTamperTest, InsertedWithGarbageHash) {
  std::string sql;
  for (int s = 10; s >= 4; --s) {
    sql += "UPDATE audit SET seq = " + std::to_string(s + 1) + " WHERE seq = " + std::to_string(s) +
           ";";
  }
  AuditEntry forged = entries_[3];
  forged.actor = "mallory";
  forged.hash = std::string(64, 'a');
  sql += "INSERT INTO audit VALUES " + Row(forged) + ";";
  Tamper(sql);
  ExpectBroken(AuditProblemKind::kInserted, 4);
}

TEST_F(AuditTamperTest, InsertedWithForgedHash) {
  std::string sql;
  for (int s = 10; s >= 4; --s) {
    sql += "UPDATE audit SET seq = " + std::to_string(s + 1) + " WHERE seq = " + std::to_string(s) +
           ";";
  }
  AuditEntry forged = entries_[3];  // links correctly to entry 3 and hashes correctly at 4
  forged.actor = "mallory";
  forged.hash = audit::ComputeHash(forged);
  sql += "INSERT INTO audit VALUES " + Row(forged) + ";";
  Tamper(sql);
  ExpectBroken(AuditProblemKind::kInserted, 4);
}

TEST_F(AuditTamperTest, ReorderedBySwappingPositions) {
  Tamper(
      "UPDATE audit SET seq = 100 WHERE seq = 4; UPDATE audit SET seq = 4 WHERE seq = 6; "
      "UPDATE audit SET seq = 6 WHERE seq = 100;");
  ExpectBroken(AuditProblemKind::kReordered, 4);
}

TEST_F(AuditTamperTest, ReorderedByMovingAnEntryToTheEnd) {
  Tamper("UPDATE audit SET seq = 11 WHERE seq = 3");
  ExpectBroken(AuditProblemKind::kReordered, 3);
}

TEST_F(AuditTamperTest, TruncatedTailIsCaughtByTheHeadAnchor) {
  Tamper("DELETE FROM audit WHERE seq > 7");
  AuditReport report = Verify();
  EXPECT_EQ(report.kind, AuditProblemKind::kTruncated) << report.ToString();
  EXPECT_EQ(report.first_bad_seq, 8);
  EXPECT_EQ(report.head_seq, 10);
  EXPECT_EQ(report.last_seq, 7);
}

TEST_F(AuditTamperTest, RewrittenTailIsCaughtByTheHeadAnchor) {
  AuditEntry forged = entries_[9];
  forged.actor = "mallory";
  forged.hash = audit::ComputeHash(forged);
  Tamper("UPDATE audit SET actor = 'mallory', hash = '" + forged.hash + "' WHERE seq = 10");
  ExpectBroken(AuditProblemKind::kModified, 10);
}

TEST_F(AuditTamperTest, HeadFileMissing) {
  ASSERT_EQ(::unlink(audit::HeadPath(path_).c_str()), 0);
  ExpectBroken(AuditProblemKind::kHeadMissing, 0);
}

TEST_F(AuditTamperTest, HeadFileCorrupt) {
  WriteFile(audit::HeadPath(path_), "turnout-audit-head 1\nseq 3\n");
  ExpectBroken(AuditProblemKind::kHeadCorrupt, 0);
}

TEST_F(AuditTamperTest, AnchorBehindAfterACrashIsNotAnError) {
  // A writer killed between its commit and the anchor update leaves the anchor behind.
  const std::string head_path = audit::HeadPath(path_);
  const std::string old_head = ReadFile(head_path);
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->AppendAudit({"bob", "test.event", "web", "{}"}).ok());
  }
  WriteFile(head_path, old_head);
  AuditReport report = Verify();
  EXPECT_TRUE(report.ok()) << report.ToString();
  EXPECT_EQ(report.head_seq, 10);
  EXPECT_EQ(report.head_lag, 1);
  // The next append anchors the newest entry again.
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->AppendAudit({"bob", "test.event", "web", "{}"}).ok());
  }
  report = Verify();
  EXPECT_TRUE(report.ok()) << report.ToString();
  EXPECT_EQ(report.head_lag, 0);
  EXPECT_EQ(report.head_seq, 12);
}

// The incremental check starts at the last verified entry and sees what was appended since,
// a change to that entry, and a change to any newer one.
TEST_F(AuditTamperTest, IncrementalCheckFromTheLastVerifiedEntry) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto all = store->VerifyAuditFrom(0, audit::kGenesisHash);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->ok()) << all->ToString();
  EXPECT_EQ(all->last_seq, 10);
  EXPECT_EQ(all->last_hash, entries_[9].hash);
  ASSERT_TRUE(store->AppendAudit({"bob", "test.event", "web", "{}"}).ok());
  ASSERT_TRUE(store->AppendAudit({"bob", "test.event", "web", "{}"}).ok());
  auto since = store->VerifyAuditFrom(10, entries_[9].hash);
  ASSERT_TRUE(since.ok());
  EXPECT_TRUE(since->ok()) << since->ToString();
  EXPECT_EQ(since->entries, 3);  // entry 10 and the two new ones: not the whole log
  EXPECT_EQ(since->last_seq, 12);

  // Tampering before the checkpoint is the start-up check's to find, not this one's.
  Tamper("UPDATE audit SET actor = 'mallory' WHERE seq = 4");
  since = store->VerifyAuditFrom(10, entries_[9].hash);
  ASSERT_TRUE(since.ok());
  EXPECT_TRUE(since->ok()) << since->ToString();
  Tamper("UPDATE audit SET actor = 'mallory' WHERE seq = 11");
  since = store->VerifyAuditFrom(10, entries_[9].hash);
  ASSERT_TRUE(since.ok());
  EXPECT_FALSE(since->ok());
  EXPECT_EQ(since->kind, AuditProblemKind::kModified) << since->ToString();
  EXPECT_EQ(since->first_bad_seq, 11);
  Tamper("UPDATE audit SET actor = 'mallory' WHERE seq = 10");
  since = store->VerifyAuditFrom(10, entries_[9].hash);
  ASSERT_TRUE(since.ok());
  EXPECT_EQ(since->first_bad_seq, 10) << since->ToString();
  Tamper("DELETE FROM audit WHERE seq >= 10");
  since = store->VerifyAuditFrom(10, entries_[9].hash);
  ASSERT_TRUE(since.ok());
  EXPECT_EQ(since->kind, AuditProblemKind::kDeleted) << since->ToString();
}

// An acknowledged break stays reported but is trusted while the chain verifies from the
// acknowledgement on; a new break after it is not covered.
TEST_F(AuditTamperTest, AcknowledgedBreakIsTrustedUntilTheNextOne) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    auto nothing = store->AcknowledgeAuditBreak({"alice", "audit.acknowledged", "audit", "{}"});
    EXPECT_EQ(nothing.status().code(), StatusCode::kFailedPrecondition);
  }
  Tamper("UPDATE audit SET actor = 'mallory' WHERE seq = 4");
  AuditReport broken = Verify();
  EXPECT_FALSE(broken.trusted());
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto ack = store->AcknowledgeAuditBreak(
      {"alice", "audit.acknowledged", "audit", R"({"reason":"restored from backup"})"});
  ASSERT_TRUE(ack.ok()) << ack.status().ToString();
  EXPECT_EQ(*ack, 11);
  ASSERT_TRUE(store->AppendAudit({"bob", "test.event", "web", "{}"}).ok());
  AuditReport report = Verify();
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.kind, AuditProblemKind::kModified);
  EXPECT_EQ(report.first_bad_seq, 4);
  EXPECT_EQ(report.acknowledged_seq, 11);
  EXPECT_TRUE(report.trusted());
  EXPECT_NE(report.ToString().find("restored from backup"), std::string::npos) << report.ToString();
  Tamper("UPDATE audit SET actor = 'mallory' WHERE seq = 12");
  report = Verify();
  EXPECT_FALSE(report.trusted()) << report.ToString();
}

// A truncated tail: the acknowledgement re-anchors the head below the entry it named.
TEST_F(AuditTamperTest, AcknowledgingATruncationReanchorsTheHead) {
  Tamper("DELETE FROM audit WHERE seq > 7");
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto ack = store->AcknowledgeAuditBreak(
      {"alice", "audit.acknowledged", "audit", R"({"reason":"disk restored"})"});
  ASSERT_TRUE(ack.ok()) << ack.status().ToString();
  EXPECT_EQ(*ack, 8);
  AuditReport report = Verify();
  EXPECT_TRUE(report.ok()) << report.ToString();
  EXPECT_EQ(report.head_seq, 8);
}

TEST(AuditVerifyTest, EmptyLogWithoutAnchorIsFine) {
  AuditReport report = audit::Verify({}, audit::HeadFile{});
  EXPECT_TRUE(report.ok()) << report.ToString();
}

}  // namespace
}  // namespace turnout::state
