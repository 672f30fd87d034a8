// SecretStore against a real state directory and SQLite store: generations, sources, what a
// deployment keeps from the serving one, and resolution at launch.

#include "daemon/secrets.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "common/clock.h"
#include "state/test_util.h"

namespace turnout::daemon {
namespace {

using state::testing::TempDir;

class SecretStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = state::testing::OpenTestStore(dir_.File("state.db"), &clock_);
    ASSERT_NE(store_, nullptr);
    auto s = SecretStore::Open(dir_.File("secrets"), *store_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    secrets_ = std::move(*s);
  }
  void TearDown() override { ::unsetenv("SECRETS_TEST_VAR"); }

  void WriteFile(const std::string& name, const std::string& content, mode_t mode = 0600) {
    std::ofstream(dir_.File(name)) << content;
    ::chmod(dir_.File(name).c_str(), mode);
  }

  Result<std::vector<platform::SecretRef>> Refs(const std::vector<service::SecretConfig>& c,
                                                const std::vector<platform::SecretRef>& serving) {
    return secrets_->RefsForDeploy(c, dir_.path(), serving, clock_.WallNow());
  }

  static service::SecretConfig FromFile(const std::string& file, bool generate = false) {
    service::SecretConfig s;
    s.name = "KEY";
    s.from_file = file;
    if (generate) s.generate = "hex32";
    return s;
  }

  std::string Resolved(const std::vector<platform::SecretRef>& refs, const std::string& var) {
    platform::InstanceSpec spec;
    spec.secrets = refs;
    Status st = secrets_->Resolve(&spec);
    EXPECT_TRUE(st.ok()) << st.ToString();
    for (const auto& [name, value] : spec.secret_env) {
      if (name == var) return value;
    }
    return "<unset>";
  }

  TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<state::SqliteStateStore> store_;
  std::unique_ptr<SecretStore> secrets_;
};

TEST_F(SecretStoreTest, AnUnchangedSourceKeepsItsGenerationAChangedOneIsTheNext) {
  WriteFile("key", "first\n");
  auto one = Refs({FromFile("key")}, {});
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].generation, 1);
  EXPECT_EQ((*one)[0].fingerprint, secrets_->Fingerprint("first"));
  EXPECT_EQ(Resolved(*one, "KEY"), "first");
  auto same = Refs({FromFile("key")}, *one);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, *one);
  WriteFile("key", "second\n");
  auto two = Refs({FromFile("key")}, *one);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ((*two)[0].generation, 2);
  EXPECT_EQ(Resolved(*two, "KEY"), "second");
  // The value files are 0600 in a 0700 directory; the store holds no value.
  struct stat st {};
  ASSERT_EQ(::stat(dir_.File("secrets/KEY.2").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(dir_.File("secrets").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  std::ifstream db(dir_.File("state.db"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(db)), std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes.find("second"), std::string::npos);
}

TEST_F(SecretStoreTest, ARotatedValueStandsUntilTheSourceChanges) {
  WriteFile("key", "from-file\n");
  auto one = Refs({FromFile("key")}, {});
  ASSERT_TRUE(one.ok());
  auto rotated = secrets_->AddGeneration("KEY", "rotated", "rotated", clock_.WallNow());
  ASSERT_TRUE(rotated.ok());
  std::vector<platform::SecretRef> serving = *one;
  serving[0].previous_generation = serving[0].generation;
  serving[0].previous_fingerprint = serving[0].fingerprint;
  serving[0].generation = *rotated;
  serving[0].fingerprint = secrets_->Fingerprint("rotated");
  nlohmann::json meta = secrets_->Meta("KEY");
  meta["overlap_until_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 (clock_.WallNow() + std::chrono::hours(1)).time_since_epoch())
                                 .count();
  ASSERT_TRUE(secrets_->PutMeta("KEY", meta).ok());
  auto kept = Refs({FromFile("key")}, serving);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, serving) << "a deploy keeps the rotation and, during the overlap, the previous";
  EXPECT_EQ(Resolved(*kept, "KEY"), "rotated");
  EXPECT_EQ(Resolved(*kept, "KEY_PREVIOUS"), "from-file");
  clock_.Advance(std::chrono::hours(2));
  auto after = Refs({FromFile("key")}, serving);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)[0].generation, *rotated);
  EXPECT_EQ((*after)[0].previous_generation, 0) << "the overlap ended";
  WriteFile("key", "new-at-source\n");
  auto changed = Refs({FromFile("key")}, serving);
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(Resolved(*changed, "KEY"), "new-at-source");
}

TEST_F(SecretStoreTest, MissingOrOpenSourcesAreRefusedNamingThemNeverTheValue) {
  auto missing = Refs({FromFile("absent")}, {});
  EXPECT_EQ(missing.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(missing.status().message().find("secrets.KEY: " + dir_.File("absent")),
            std::string::npos)
      << missing.status().ToString();
  WriteFile("open", "hunter2\n", 0644);
  auto open = Refs({FromFile("open")}, {});
  EXPECT_EQ(open.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(open.status().message().find("chmod 600"), std::string::npos);
  EXPECT_EQ(open.status().message().find("hunter2"), std::string::npos);
  service::SecretConfig env;
  env.name = "KEY";
  env.from_env = "SECRETS_TEST_VAR";
  auto unset = Refs({env}, {});
  EXPECT_EQ(unset.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(unset.status().message().find("SECRETS_TEST_VAR is not set"), std::string::npos);
  ::setenv("SECRETS_TEST_VAR", "from-env", 1);
  auto set = Refs({env}, {});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(Resolved(*set, "KEY"), "from-env");
}

TEST_F(SecretStoreTest, GenerateMakesAValueOnceInTheFileOrTheStateDirectory) {
  auto made = Refs({FromFile("made.key", /*generate=*/true)}, {});
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  struct stat st {};
  ASSERT_EQ(::stat(dir_.File("made.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(Resolved(*made, "KEY").size(), 64u);
  service::SecretConfig generated;
  generated.name = "JWT";
  generated.generate = "hex32";
  auto one = Refs({generated}, {});
  ASSERT_TRUE(one.ok());
  auto again = Refs({generated}, {});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *one) << "generated once, then kept";
}

TEST_F(SecretStoreTest, AFileDeliveryIs0400AndAValueChangedByHandIsRefusedAtLaunch) {
  WriteFile("key", "v\n");
  service::SecretConfig s = FromFile("key");
  s.as = "file";
  auto refs = Refs({s}, {});
  ASSERT_TRUE(refs.ok());
  const std::string path = Resolved(*refs, "KEY_FILE");
  std::ifstream in(path);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()),
            "v");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0400u);
  // Someone rewrites the generation's file: the launch is refused, saying so.
  ::unlink(dir_.File("secrets/KEY.1").c_str());
  std::ofstream(dir_.File("secrets/KEY.1")) << "tampered\n";
  ::chmod(dir_.File("secrets/KEY.1").c_str(), 0600);
  platform::InstanceSpec spec;
  spec.secrets = *refs;
  Status resolved = secrets_->Resolve(&spec);
  EXPECT_EQ(resolved.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(resolved.message().find("changed by hand"), std::string::npos) << resolved.ToString();
  EXPECT_EQ(resolved.message().find("tampered"), std::string::npos);
}

}  // namespace
}  // namespace turnout::daemon
