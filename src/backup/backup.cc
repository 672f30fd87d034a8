#include "backup/backup.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "backup/catalog.h"
#include "backup/conninfo.h"
#include "common/duration.h"
#include "common/file_util.h"
#include "common/secret.h"
#include "common/sha256.h"
#include "common/text.h"
#include "db/pg.h"
#include "platform/run.h"

namespace turnout::backup {
namespace {

namespace fs = std::filesystem;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

constexpr std::string_view kInProgressFile = ".in-progress";
// Written by `turnout rehearse` (rehearsal/rehearsal.h): a record about the backup, not content.
constexpr std::string_view kRehearsalFile = "rehearsal.json";
constexpr std::string_view kApplicationName = "turnout-backup";
constexpr std::string_view kDamagedNextStep =
    "do not restore this backup: take a new one (turnout backup create), and find out what "
    "changed its files (disk errors, an incomplete copy or sync)";

const Clock& ClockOf(const BackupEnv& env) {
  return env.clock != nullptr ? *env.clock : SystemClock::Get();
}

int64_t WallMs(const Clock& clock) {
  return duration_cast<milliseconds>(clock.WallNow().time_since_epoch()).count();
}

int64_t ElapsedMs(const Clock& clock, Clock::TimePoint since) {
  return duration_cast<milliseconds>(clock.Now() - since).count();
}

void Report(const BackupEnv& env, std::string phase, std::string message, uint64_t bytes = 0) {
  if (env.on_progress) env.on_progress(Progress{std::move(phase), std::move(message), bytes});
}

std::string Program(const BackupEnv& env, const std::string& name) {
  return env.pg_bin_dir.empty() ? name : (fs::path(env.pg_bin_dir) / name).string();
}

// Runs a PostgreSQL client program; a run that ends badly is an error carrying its output.
Result<platform::RunResult> RunTool(const BackupEnv& env, std::vector<std::string> argv,
                                    std::vector<std::pair<std::string, std::string>> extra_env,
                                    const std::string& what) {
  platform::RunSpec spec;
  spec.argv = std::move(argv);
  spec.env.emplace_back("PGAPPNAME", std::string(kApplicationName));
  for (auto& e : extra_env) spec.env.push_back(std::move(e));  // later entries win
  spec.timeout = env.command_timeout;
  auto r = platform::RunCommand(spec);
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kNotFound) {
      return NotFound(r.status().message() +
                      " (install the PostgreSQL client programs, e.g. postgresql-client-15, or "
                      "point --pg-bin at their directory)");
    }
    return r.status();
  }
  if (!r->ok()) {
    return Aborted(what + " " + r->Describe() + ":\n" + r->Tail(15));
  }
  return r;
}

// Runs a client program on its own thread and calls `tick` on this thread at once and then
// every `interval` until the program ends (progress output, the lock watchdog).
Result<platform::RunResult> RunWithTicks(const BackupEnv& env, std::vector<std::string> argv,
                                         std::vector<std::pair<std::string, std::string>> extra_env,
                                         const std::string& what,
                                         std::chrono::milliseconds interval,
                                         const std::function<void()>& tick) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<platform::RunResult>> result;
  std::thread runner([&] {
    auto r = RunTool(env, std::move(argv), std::move(extra_env), what);
    std::lock_guard<std::mutex> l(mu);
    result.emplace(std::move(r));
    cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> l(mu);
    bool first = true;
    while (first || !cv.wait_for(l, interval, [&] { return result.has_value(); })) {
      first = false;
      l.unlock();
      tick();
      l.lock();
    }
  }
  runner.join();
  return std::move(*result);
}

// Streaming SHA-256 of a file (dump files can be far larger than memory).
Result<std::string> HashFile(const fs::path& path, uint64_t* size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open " + path.string(), errno);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    ::close(fd);
    return Internal("OpenSSL cannot start a SHA-256 digest");
  }
  std::vector<char> buf(1 << 20);
  uint64_t total = 0;
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return ErrnoError("cannot read " + path.string(), e);
    }
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1) return Internal("SHA-256 failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  *size = total;
  return hex;
}

// Files that belong to the backup's bookkeeping, not its content.
bool IsBookkeeping(const std::string& rel) {
  return rel == kManifestFile || rel == kVerifyFile || rel == kInProgressFile ||
         rel == kRehearsalFile || rel.starts_with(std::string(kManifestFile) + ".tmp.") ||
         rel.starts_with(std::string(kVerifyFile) + ".tmp.") ||
         rel.starts_with(std::string(kRehearsalFile) + ".tmp.");
}

// Every content file under `root`, relative, sorted. Symlinks and special files are listed too
// (as problems for the caller: a dump never has them).
Result<std::vector<std::string>> ListContentFiles(const fs::path& root,
                                                  std::vector<std::string>* odd) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, ec), end;
  if (ec) return IoError("cannot list " + root.string() + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return IoError("cannot list " + root.string() + ": " + ec.message());
    std::string rel = fs::relative(it->path(), root, ec).generic_string();
    if (ec) return IoError("cannot list " + root.string() + ": " + ec.message());
    if (it->is_symlink(ec)) {
      if (odd) odd->push_back(rel + " is a symbolic link");
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_directory(ec)) continue;
    if (!it->is_regular_file(ec)) {
      if (odd) odd->push_back(rel + " is not a regular file");
      continue;
    }
    if (!IsBookkeeping(rel)) out.push_back(rel);
  }
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t TreeBytes(const fs::path& root) {
  std::error_code ec;
  if (fs::is_regular_file(root, ec)) return fs::file_size(root, ec);
  uint64_t total = 0;
  fs::recursive_directory_iterator it(root, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code e2;
    if (it->is_regular_file(e2)) {
      uintmax_t n = it->file_size(e2);
      if (!e2) total += n;
    }
  }
  return total;
}

// The newest modification time of anything under `root` (the directory itself included).
fs::file_time_type NewestWrite(const fs::path& root) {
  std::error_code ec;
  fs::file_time_type newest = fs::last_write_time(root, ec);
  fs::recursive_directory_iterator it(root, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code e2;
    fs::file_time_type t = it->last_write_time(e2);
    if (!e2 && t > newest) newest = t;
  }
  return newest;
}

Result<std::string> ReadWholeFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read " + path.string());
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return IoError("cannot read " + path.string());
  return s.str();
}

std::string RandomHex(size_t bytes) {
  if (Result<std::string> hex = RandomSecretHex(bytes); hex.ok()) return *hex;
  // Not secret, only unique: fall back to the pid and a counter.
  static std::atomic<uint64_t> counter{0};
  return Sha256Hex(std::to_string(::getpid()) + "." + std::to_string(counter++))
      .substr(0, bytes * 2);
}

// The create lock: the file exists and is flock'ed while a create runs.
class InProgressLock {
 public:
  static Result<InProgressLock> Take(const fs::path& dir) {
    fs::path p = dir / kInProgressFile;
    int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoError("cannot create " + p.string(), errno);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int e = errno;
      ::close(fd);
      return ErrnoError("cannot lock " + p.string(), e);
    }
    return InProgressLock(fd, p);
  }
  // Whether a create holds the lock in `dir` now.
  static bool Held(const fs::path& dir) {
    fs::path p = dir / kInProgressFile;
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(fd);
    return held;
  }
  InProgressLock(InProgressLock&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) {
    o.fd_ = -1;
  }
  InProgressLock& operator=(InProgressLock&&) = delete;
  ~InProgressLock() { Release(); }
  // Removes the file, then unlocks (so nobody sees an unlocked marker of a finished create).
  void Release() {
    if (fd_ < 0) return;
    std::error_code ec;
    fs::remove(path_, ec);
    ::close(fd_);
    fd_ = -1;
  }

 private:
  InProgressLock(int fd, fs::path p) : fd_(fd), path_(std::move(p)) {}
  int fd_;
  fs::path path_;
};

Result<db::PgConnection> Connect(const std::string& conninfo) {
  auto c = db::PgConnection::Connect(conninfo, std::string(kApplicationName));
  if (!c.ok()) {
    return Unavailable(c.status().message() +
                       "\n(check --url, $TURNOUT_DATABASE_URL/$DATABASE_URL or the PG* variables, "
                       "and that the server accepts connections)");
  }
  return c;
}

Result<std::string> QueryOne(db::PgConnection& conn, const std::string& sql) {
  TURNOUT_ASSIGN_OR_RETURN(db::PgRows rows, conn.Exec(sql));
  if (rows.empty() || rows.columns().empty()) return Internal("no result for: " + sql);
  return rows.text(0, 0);
}

// Level 1: every file of the manifest exists with its size and hash, and nothing else is there.
std::vector<std::string> CheckFiles(const BackupEnv& env, const fs::path& dir, const Manifest& m,
                                    Status* error) {
  std::vector<std::string> problems;
  std::vector<std::string> odd;
  auto files = ListContentFiles(dir, &odd);
  if (!files.ok()) {
    *error = files.status();
    return problems;
  }
  for (const std::string& o : odd) problems.push_back("unexpected file: " + o);
  std::set<std::string> on_disk(files->begin(), files->end());
  uint64_t done = 0, reported = 0;
  for (const FileEntry& f : m.files) {
    if (!on_disk.count(f.path)) {
      problems.push_back("missing file: " + f.path + " (" + std::to_string(f.size) + " bytes)");
      continue;
    }
    on_disk.erase(f.path);
    uint64_t size = 0;
    auto sha = HashFile(dir / f.path, &size);
    if (!sha.ok()) {
      problems.push_back("unreadable file: " + f.path + ": " + sha.status().message());
      continue;
    }
    done += size;
    // Directory dumps have a file per table: report every 64 MiB, not every file.
    if (done - reported >= (uint64_t{64} << 20)) {
      Report(env, "hash", HumanBytes(done) + " checked", done);
      reported = done;
    }
    if (size != f.size) {
      problems.push_back("changed file: " + f.path + " has " + std::to_string(size) +
                         " bytes, the manifest says " + std::to_string(f.size) +
                         (size < f.size ? " (truncated)" : ""));
    } else if (*sha != f.sha256) {
      problems.push_back("changed file: " + f.path + " has SHA-256 " + *sha +
                         ", the manifest says " + f.sha256);
    }
  }
  for (const std::string& extra : on_disk) {
    problems.push_back("extra file: " + extra + " is not in the manifest");
  }
  return problems;
}

std::string DumpPath(const fs::path& dir, const Manifest& m) {
  return (dir / m.dump_path).string();
}

// Compares counts read from a restored database with the manifest's.
std::vector<std::string> CompareCounts(const std::map<std::string, int64_t>& expected,
                                       const std::map<std::string, int64_t>& actual,
                                       bool extra_is_problem) {
  std::vector<std::string> out;
  for (const auto& [table, n] : expected) {
    auto it = actual.find(table);
    if (it == actual.end()) {
      out.push_back("table " + table + " is missing (the manifest has " + std::to_string(n) +
                    " rows)");
    } else if (it->second != n) {
      out.push_back("table " + table + " has " + std::to_string(it->second) +
                    " rows, the manifest says " + std::to_string(n));
    }
  }
  if (extra_is_problem) {
    for (const auto& [table, n] : actual) {
      if (!expected.count(table)) {
        out.push_back("table " + table + " (" + std::to_string(n) +
                      " rows) is not in the manifest");
      }
    }
  }
  return out;
}

Result<Manifest> LoadManifest(const fs::path& dir) {
  auto text = ReadWholeFile(dir / kManifestFile);
  if (!text.ok()) {
    return FailedPrecondition("backup " + dir.filename().string() +
                              " is incomplete: it has no manifest.json (its create did not "
                              "finish); it cannot be used. `turnout backup prune` removes it");
  }
  auto m = ParseManifest(*text);
  if (!m.ok()) {
    return FailedPrecondition("backup " + dir.filename().string() + ": " + m.status().message() +
                              "; the backup cannot be trusted: take a new one");
  }
  if (m->id != dir.filename().string()) {
    return FailedPrecondition("backup " + dir.filename().string() + ": its manifest names id " +
                              m->id + " (a directory renamed or copied over another?)");
  }
  return m;
}

// The scratch database of a level-3 verify, dropped whatever happens.
class ScratchDatabase {
 public:
  ScratchDatabase(db::PgConnection& admin, std::string name) : admin_(admin), name_(name) {}
  ~ScratchDatabase() { (void)Drop(); }
  Status Drop() {
    if (!created_) return Status::Ok();
    created_ = false;
    auto r =
        admin_.Exec("DROP DATABASE IF EXISTS " + admin_.QuoteIdentifier(name_) + " WITH (FORCE)");
    if (!r.ok()) {
      return r.status().WithContext("cannot drop the scratch database " + name_ +
                                    " (drop it by hand)");
    }
    return Status::Ok();
  }
  void set_created() { created_ = true; }
  const std::string& name() const { return name_; }

 private:
  db::PgConnection& admin_;
  std::string name_;
  bool created_ = false;
};

}  // namespace

Result<Manifest> CreateBackup(const BackupEnv& env, const CreateOptions& options) {
  const Clock& clock = ClockOf(env);
  Clock::TimePoint start = clock.Now();
  if (options.jobs < 1) return InvalidArgument("jobs must be at least 1");
  if (options.jobs > 1 && options.format != DumpFormat::kDirectory) {
    return InvalidArgument("parallel dumps (jobs > 1) need the directory format");
  }
  if (options.compress && (*options.compress < 0 || *options.compress > 9)) {
    return InvalidArgument("compression level must be 0..9");
  }
  TURNOUT_ASSIGN_OR_RETURN(CommandConnection cmd_conn, ForCommand(options.conninfo));

  // pg_dump's version first: a missing pg_dump should fail before anything is created.
  TURNOUT_ASSIGN_OR_RETURN(
      platform::RunResult version_run,
      RunTool(env, {Program(env, "pg_dump"), "--version"}, {}, "pg_dump --version"));
  std::string pg_dump_version(Trim(version_run.output));

  Report(env, "connect", "connecting to the database");
  TURNOUT_ASSIGN_OR_RETURN(db::PgConnection conn, Connect(options.conninfo));

  std::error_code ec;
  fs::path root(env.backups_dir);
  fs::create_directories(root, ec);
  if (ec)
    return IoError("cannot create the backups directory " + root.string() + ": " + ec.message());
  // Ids are times in milliseconds; a collision (two creates in the same millisecond) moves on.
  int64_t id_ms = WallMs(clock);
  std::string id;
  fs::path dir;
  for (int attempt = 0;; ++attempt) {
    id = FormatBackupId(id_ms + attempt);
    dir = root / id;
    if (fs::create_directory(dir, ec)) break;
    if (ec) return IoError("cannot create " + dir.string() + ": " + ec.message());
    if (attempt > 1000) return AlreadyExists("cannot find a free backup id in " + root.string());
  }
  TURNOUT_ASSIGN_OR_RETURN(InProgressLock lock, InProgressLock::Take(dir));
  struct Cleanup {
    fs::path dir;
    bool keep = false;
    ~Cleanup() {
      if (!keep) {
        std::error_code e;
        fs::remove_all(dir, e);
      }
    }
  } cleanup{dir};

  Manifest m;
  m.id = id;
  m.format = options.format;
  m.jobs = options.jobs;
  m.labels = options.labels;
  m.pg_dump_version = pg_dump_version;
  m.dump_path = options.format == DumpFormat::kDirectory ? "dump" : "dump.pgdump";
  TURNOUT_ASSIGN_OR_RETURN(m.server_version, QueryOne(conn, "SHOW server_version"));
  TURNOUT_ASSIGN_OR_RETURN(m.database, QueryOne(conn, "SELECT current_database()"));
  TURNOUT_ASSIGN_OR_RETURN(m.encoding,
                           QueryOne(conn,
                                    "SELECT pg_encoding_to_char(encoding) FROM pg_database "
                                    "WHERE datname = current_database()"));

  if (options.lock_timeout.count() > 0) {
    TURNOUT_RETURN_IF_ERROR(
        conn.Exec("SET lock_timeout = " + std::to_string(options.lock_timeout.count())).status());
  }
  Report(env, "snapshot", "exporting a snapshot");
  TURNOUT_RETURN_IF_ERROR(conn.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").status());
  TURNOUT_ASSIGN_OR_RETURN(m.snapshot, QueryOne(conn, "SELECT pg_export_snapshot()"));
  m.created_at = FormatRfc3339(WallMs(clock));

  std::vector<std::string> argv = {Program(env, "pg_dump"),
                                   "--no-password",
                                   "--snapshot=" + m.snapshot,
                                   options.format == DumpFormat::kDirectory ? "-Fd" : "-Fc",
                                   "-f",
                                   (dir / m.dump_path).string()};
  if (options.jobs > 1) argv.push_back("-j" + std::to_string(options.jobs));
  if (options.compress) argv.push_back("-Z" + std::to_string(*options.compress));
  if (options.lock_timeout.count() > 0) {
    argv.push_back("--lock-wait-timeout=" + std::to_string(options.lock_timeout.count()) + "ms");
  }
  if (!cmd_conn.conninfo.empty()) argv.push_back("--dbname=" + cmd_conn.conninfo);

  // pg_dump runs on its own thread while this session counts rows in the same snapshot; the
  // session's transaction (and with it the snapshot) stays open until pg_dump has finished.
  Report(env, "dump",
         "pg_dump started (" + std::string(DumpFormatName(options.format)) + " format" +
             (options.jobs > 1 ? ", " + std::to_string(options.jobs) + " jobs" : "") + ")");
  Result<SchemaFingerprint> fingerprint = Internal("not read");
  Result<std::optional<int64_t>> migration = std::optional<int64_t>();
  Result<std::map<std::string, int64_t>> counts = Internal("not read");
  bool counted = false;
  auto dumped = RunWithTicks(env, argv, cmd_conn.env, "pg_dump", std::chrono::seconds(1), [&] {
    if (!counted) {  // the first tick, right after pg_dump started
      counted = true;
      Report(env, "counts", "counting rows and reading the schema in the snapshot");
      counts = ReadRowCounts(conn);
      if (counts.ok()) fingerprint = ReadSchemaFingerprint(conn);
      if (counts.ok() && fingerprint.ok()) migration = ReadMigrationVersion(conn);
      if (counts.ok()) Report(env, "counts", std::to_string(counts->size()) + " tables counted");
      return;
    }
    uint64_t bytes = TreeBytes(dir / m.dump_path);
    Report(env, "dump", "pg_dump: " + HumanBytes(bytes) + " written", bytes);
  });
  (void)conn.Exec("ROLLBACK");
  // A failed query aborts the snapshot's transaction, which can in turn fail pg_dump: name the
  // query's error first, it is the cause.
  if (!counts.ok()) return counts.status();
  if (!fingerprint.ok()) return fingerprint.status();
  if (!migration.ok()) return migration.status();
  if (!dumped.ok()) return dumped.status();
  m.row_counts = std::move(*counts);
  m.schema_fingerprint = fingerprint->sha256;
  m.migration_version = *migration;
  Report(env, "dump", "pg_dump finished: " + HumanBytes(TreeBytes(dir / m.dump_path)) + " written",
         TreeBytes(dir / m.dump_path));

  TURNOUT_RETURN_IF_ERROR(WriteFileAtomically((dir / kSchemaFile).string(),
                                              CanonicalSchemaText(fingerprint->lines), 0600));

  Report(env, "hash", "hashing the files");
  TURNOUT_ASSIGN_OR_RETURN(std::vector<std::string> files, ListContentFiles(dir, nullptr));
  for (const std::string& rel : files) {
    FileEntry f;
    f.path = rel;
    TURNOUT_ASSIGN_OR_RETURN(f.sha256, HashFile(dir / rel, &f.size));
    m.size_bytes += f.size;
    m.files.push_back(std::move(f));
  }
  m.duration_ms = ElapsedMs(clock, start);
  TURNOUT_RETURN_IF_ERROR(
      WriteFileAtomically((dir / kManifestFile).string(), ManifestToJson(m), 0600));
  lock.Release();
  cleanup.keep = true;
  Report(env, "done",
         "backup " + m.id + " complete: " + HumanBytes(m.size_bytes) + ", " +
             std::to_string(m.row_counts.size()) + " tables");
  return m;
}

Result<std::vector<BackupInfo>> ListBackups(const BackupEnv& env) {
  std::vector<BackupInfo> out;
  fs::path root(env.backups_dir);
  std::error_code ec;
  if (!fs::exists(root, ec)) return out;
  fs::directory_iterator it(root, ec), end;
  if (ec) return IoError("cannot list " + root.string() + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return IoError("cannot list " + root.string() + ": " + ec.message());
    std::string name = it->path().filename().string();
    if (!it->is_directory(ec) || !IsValidBackupId(name)) continue;
    BackupInfo info;
    info.id = name;
    info.path = it->path().string();
    info.disk_bytes = TreeBytes(it->path());
    if (!fs::exists(it->path() / kManifestFile, ec)) {
      info.in_progress = InProgressLock::Held(it->path());
      info.problem = info.in_progress ? "create in progress" : "incomplete (no manifest)";
    } else {
      auto m = LoadManifest(it->path());
      if (m.ok()) {
        info.manifest = std::move(*m);
      } else {
        info.problem = m.status().message();
      }
    }
    if (fs::exists(it->path() / kVerifyFile, ec)) {
      auto text = ReadWholeFile(it->path() / kVerifyFile);
      if (text.ok()) {
        auto v = ParseVerifyRecord(*text);
        if (v.ok() && v->backup_id == name) info.verify = std::move(*v);
      }
    }
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(),
            [](const BackupInfo& a, const BackupInfo& b) { return a.id < b.id; });
  return out;
}

Result<BackupInfo> FindBackup(const BackupEnv& env, const std::string& id) {
  TURNOUT_ASSIGN_OR_RETURN(std::vector<BackupInfo> all, ListBackups(env));
  if (id == "latest") {
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
      if (it->manifest) return *it;
    }
    return NotFound("no complete backup in " + env.backups_dir);
  }
  if (!IsValidBackupId(id)) return InvalidArgument("'" + id + "' is not a backup id");
  for (BackupInfo& b : all) {
    if (b.id == id) return std::move(b);
  }
  return NotFound("no backup " + id + " in " + env.backups_dir +
                  " (`turnout backup list` shows them)");
}

Result<VerifyReport> VerifyBackup(const BackupEnv& env, const std::string& id,
                                  const VerifyOptions& options) {
  if (options.level < 1 || options.level > 3) return InvalidArgument("--level must be 1, 2 or 3");
  const Clock& clock = ClockOf(env);
  TURNOUT_ASSIGN_OR_RETURN(BackupInfo info, FindBackup(env, id));
  fs::path dir(info.path);
  if (info.in_progress) return FailedPrecondition("backup " + info.id + " is still being created");
  TURNOUT_ASSIGN_OR_RETURN(Manifest m, LoadManifest(dir));

  VerifyReport report;
  report.id = m.id;
  report.level_requested = options.level;
  auto finish = [&]() -> Result<VerifyReport> {
    report.ok = report.level_reached == report.level_requested && report.problems.empty();
    VerifyRecord rec;
    rec.backup_id = report.id;
    rec.level_requested = report.level_requested;
    rec.level_reached = report.level_reached;
    rec.ok = report.ok;
    rec.verified_at = FormatRfc3339(WallMs(clock));
    rec.level_duration_ms = report.level_duration_ms;
    rec.problems = report.problems;
    Status st = WriteFileAtomically((dir / kVerifyFile).string(), VerifyRecordToJson(rec), 0600);
    if (!st.ok()) return st.WithContext("cannot record the verify result");
    return report;
  };

  // Level 1.
  Clock::TimePoint t = clock.Now();
  Report(env, "hash",
         "level 1: checking the SHA-256 of " + std::to_string(m.files.size()) + " files");
  Status error;
  report.problems = CheckFiles(env, dir, m, &error);
  if (!error.ok()) return error;
  std::vector<std::string> schema_lines;
  if (report.problems.empty()) {
    auto text = ReadWholeFile(dir / kSchemaFile);
    auto lines =
        text.ok() ? ParseSchemaText(*text) : Result<std::vector<std::string>>(text.status());
    if (!lines.ok()) {
      report.problems.push_back("schema.txt: " + lines.status().message());
    } else if (FingerprintOf(*lines).sha256 != m.schema_fingerprint) {
      report.problems.push_back("schema.txt does not hash to the manifest's schema fingerprint");
    } else {
      schema_lines = std::move(*lines);
    }
  }
  report.level_duration_ms[1] = ElapsedMs(clock, t);
  if (!report.problems.empty()) {
    report.next_step = std::string(kDamagedNextStep);
    return finish();
  }
  report.level_reached = 1;
  if (options.level == 1) return finish();

  // Level 2: a full decode reads every block of every table's data.
  t = clock.Now();
  Report(env, "decode", "level 2: full decode (pg_restore -f /dev/null)");
  auto decode = RunTool(env, {Program(env, "pg_restore"), "-f", "/dev/null", DumpPath(dir, m)}, {},
                        "pg_restore -f /dev/null");
  report.level_duration_ms[2] = ElapsedMs(clock, t);
  if (!decode.ok()) {
    if (decode.status().code() != StatusCode::kAborted) return decode.status();
    report.problems.push_back("the full decode failed: " + decode.status().message());
    report.next_step =
        "the dump cannot be read back although its files match the manifest, so it was written "
        "damaged (or the manifest was rewritten): do not restore it; take a new backup";
    return finish();
  }
  report.level_reached = 2;
  if (options.level == 2) return finish();

  // Level 3: restore into a scratch database and compare.
  t = clock.Now();
  TURNOUT_ASSIGN_OR_RETURN(db::PgConnection admin, Connect(options.conninfo));
  ScratchDatabase scratch(admin, "turnout_verify_" + RandomHex(8));
  report.scratch_database = scratch.name();
  Report(env, "restore", "level 3: restoring into scratch database " + scratch.name());
  std::string create =
      "CREATE DATABASE " + admin.QuoteIdentifier(scratch.name()) + " TEMPLATE template0";
  if (!m.encoding.empty()) create += " ENCODING " + admin.QuoteLiteral(m.encoding);
  auto created = admin.Exec(create);
  if (!created.ok()) {
    return created.status().WithContext(
        "cannot create the scratch database (level 3 needs CREATEDB on the server given by "
        "--url or --scratch-url)");
  }
  scratch.set_created();
  TURNOUT_ASSIGN_OR_RETURN(std::string scratch_info,
                           WithDatabase(options.conninfo, scratch.name()));
  TURNOUT_ASSIGN_OR_RETURN(CommandConnection cmd, ForCommand(scratch_info));
  std::vector<std::string> argv = {Program(env, "pg_restore"), "--no-password",
                                   "--exit-on-error",          "--no-owner",
                                   "--no-privileges",          "--dbname=" + cmd.conninfo};
  if (m.format == DumpFormat::kDirectory && options.jobs > 1) {
    argv.push_back("-j" + std::to_string(options.jobs));
  }
  argv.push_back(DumpPath(dir, m));
  auto restored = RunTool(env, argv, cmd.env, "pg_restore into the scratch database");
  if (!restored.ok()) {
    if (restored.status().code() != StatusCode::kAborted) return restored.status();
    report.problems.push_back("the restore into a scratch database failed: " +
                              restored.status().message());
  } else {
    Report(env, "compare", "level 3: comparing row counts and the schema fingerprint");
    TURNOUT_ASSIGN_OR_RETURN(db::PgConnection sc, Connect(scratch_info));
    TURNOUT_ASSIGN_OR_RETURN(auto counts, ReadRowCounts(sc));
    TURNOUT_ASSIGN_OR_RETURN(SchemaFingerprint fp, ReadSchemaFingerprint(sc));
    for (std::string& p : CompareCounts(m.row_counts, counts, true)) {
      report.problems.push_back("restored " + p);
    }
    if (fp.sha256 != m.schema_fingerprint) {
      report.problems.push_back("the restored schema fingerprint " + fp.sha256 +
                                " differs from the manifest's " + m.schema_fingerprint);
      for (std::string& d : DiffSchemaLines(schema_lines, fp.lines)) {
        report.problems.push_back("  schema " + d);
      }
    }
  }
  Status dropped = scratch.Drop();
  report.level_duration_ms[3] = ElapsedMs(clock, t);
  if (!dropped.ok()) report.problems.push_back(dropped.message());
  if (!report.problems.empty()) {
    report.next_step =
        "the backup does not restore to what was dumped: do not rely on it; take a new backup "
        "and verify it (a mismatch on a healthy dump is a turnout bug: please report it with "
        "this output)";
    return finish();
  }
  report.level_reached = 3;
  return finish();
}

Result<RestoreReport> RestoreBackup(const BackupEnv& env, const std::string& id,
                                    const RestoreOptions& options) {
  TURNOUT_ASSIGN_OR_RETURN(BackupInfo info, FindBackup(env, id));
  if (info.in_progress) return FailedPrecondition("backup " + info.id + " is still being created");
  fs::path dir(info.path);
  TURNOUT_ASSIGN_OR_RETURN(Manifest m, LoadManifest(dir));
  RestoreReport report;
  report.id = m.id;
  report.backup_created_at = m.created_at;

  // What the target holds now, against what the backup will bring back.
  {
    TURNOUT_ASSIGN_OR_RETURN(db::PgConnection target, Connect(options.target));
    TURNOUT_ASSIGN_OR_RETURN(auto now, ReadRowCounts(target));
    for (const auto& [table, n] : m.row_counts) {
      auto it = now.find(table);
      if (it == now.end()) {
        report.deltas.push_back({table, n, std::nullopt});
        report.rows_back_at_least += n;
      } else if (it->second != n) {
        report.deltas.push_back({table, n, it->second});
        if (it->second > n) {
          report.rows_lost_at_least += it->second - n;
        } else {
          report.rows_back_at_least += n - it->second;
        }
      }
    }
    for (const auto& [table, n] : now) {
      if (!m.row_counts.count(table)) report.kept_tables.push_back(table);
    }
  }
  bool single_transaction = m.format == DumpFormat::kCustom || options.jobs <= 1;
  report.method =
      single_transaction
          ? "pg_restore --clean --if-exists --single-transaction: all or nothing, the target is "
            "unchanged if any statement fails"
          : "pg_restore --clean --if-exists -j" + std::to_string(options.jobs) +
                ": parallel (directory format) and therefore not one transaction; a failure "
                "leaves the target partly restored";
  if (!options.confirm_data_loss) {
    report.refused = true;
    return report;
  }

  Report(env, "hash", "checking the backup's files (verify level 1)");
  Status error;
  std::vector<std::string> problems = CheckFiles(env, dir, m, &error);
  if (!error.ok()) return error;
  if (!problems.empty()) {
    std::string msg = "backup " + m.id + " is damaged, nothing was restored:";
    for (const std::string& p : problems) msg += "\n  " + p;
    return FailedPrecondition(msg + "\n" + std::string(kDamagedNextStep));
  }
  TURNOUT_ASSIGN_OR_RETURN(CommandConnection cmd, ForCommand(options.target));
  std::vector<std::string> argv = {Program(env, "pg_restore"), "--no-password", "--exit-on-error",
                                   "--clean", "--if-exists"};
  if (single_transaction) {
    argv.push_back("--single-transaction");
  } else {
    argv.push_back("-j" + std::to_string(options.jobs));
  }
  if (options.no_owner) argv.push_back("--no-owner");
  if (!cmd.conninfo.empty()) argv.push_back("--dbname=" + cmd.conninfo);
  argv.push_back(DumpPath(dir, m));
  // The dump's script begins with SET lock_timeout = 0, so the limit cannot be passed to
  // pg_restore's sessions: a watchdog session cancels one that waits for a lock too long.
  std::string app_name = std::string(kApplicationName) + "-restore-" + RandomHex(6);
  cmd.env.emplace_back("PGAPPNAME", app_name);
  std::optional<db::PgConnection> watchdog;
  if (options.lock_timeout.count() > 0) {
    TURNOUT_ASSIGN_OR_RETURN(watchdog, Connect(options.target));
  }
  std::string blocked_by;  // set when the watchdog cancelled a waiting restore session
  auto interval = std::clamp(options.lock_timeout / 4, milliseconds(50), milliseconds(1000));
  Report(env, "restore", "restoring: " + report.method);
  auto restored = RunWithTicks(env, argv, cmd.env, "pg_restore", interval, [&] {
    if (!watchdog || !blocked_by.empty()) return;
    auto waiting = watchdog->ExecParams(R"sql(
SELECT a.pid, coalesce((
  SELECT string_agg('pid ' || b.pid || ' (' || coalesce(nullif(b.application_name, ''), '?')
                    || ', ' || coalesce(host(b.client_addr), 'local') || ', ' || b.state
                    || ': ' || left(b.query, 80) || ')', '; ')
  FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids(a.pid))), 'unknown')
FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
WHERE a.application_name = $1 AND a.datname = current_database()
  AND l.waitstart < now() - make_interval(secs => $2::float8 / 1000)
LIMIT 1)sql",
                                        {app_name, std::to_string(options.lock_timeout.count())});
    if (!waiting.ok() || waiting->empty()) return;
    blocked_by = waiting->text(0, 1);
    (void)watchdog->ExecParams("SELECT pg_cancel_backend($1::int)", {waiting->text(0, 0)});
  });
  if (!restored.ok()) {
    std::string outcome = single_transaction
                              ? "the restore failed and was rolled back; the target is unchanged"
                              : "the restore failed part way; the target is partly restored: fix "
                                "the cause and restore again";
    if (!blocked_by.empty()) {
      return Aborted("the restore waited more than " + FormatDuration(options.lock_timeout) +
                     " for a table lock held by " + blocked_by + " and was cancelled; " + outcome +
                     ". Stop the applications using the target (or raise "
                     "--lock-timeout) and run it again");
    }
    return restored.status().WithContext(outcome);
  }
  report.restored = true;

  Report(env, "compare", "comparing row counts with the manifest");
  TURNOUT_ASSIGN_OR_RETURN(db::PgConnection target, Connect(options.target));
  TURNOUT_ASSIGN_OR_RETURN(auto after, ReadRowCounts(target));
  TURNOUT_ASSIGN_OR_RETURN(SchemaFingerprint fp, ReadSchemaFingerprint(target));
  report.mismatches = CompareCounts(m.row_counts, after, false);
  report.fingerprint_matches = fp.sha256 == m.schema_fingerprint;
  if (!report.fingerprint_matches) {
    auto text = ReadWholeFile(dir / kSchemaFile);
    auto lines =
        text.ok() ? ParseSchemaText(*text) : Result<std::vector<std::string>>(text.status());
    if (lines.ok()) report.schema_diff = DiffSchemaLines(*lines, fp.lines);
  }
  return report;
}

Result<PruneReport> PruneBackups(const BackupEnv& env, const PruneOptions& options) {
  if (options.keep < 0) return InvalidArgument("keep must not be negative");
  TURNOUT_ASSIGN_OR_RETURN(std::vector<BackupInfo> all, ListBackups(env));
  std::optional<std::string> newest_verified;
  for (const BackupInfo& b : all) {
    if (b.manifest && b.verified_level() >= options.verified_level) newest_verified = b.id;
  }
  int complete_seen = 0;
  PruneReport report;
  // Newest first, so the first `keep` complete backups are the ones kept.
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const BackupInfo& b = *it;
    std::string why;
    if (b.in_progress) {
      why = "create in progress";
    } else if (!b.manifest) {
      auto written = fs::file_time_type::clock::to_sys(NewestWrite(b.path));
      auto age = duration_cast<milliseconds>(ClockOf(env).WallNow() - written);
      if (age < options.incomplete_grace) {
        why = "incomplete, but written to " +
              std::to_string(std::max<int64_t>(0, age.count()) / 1000) +
              " s ago (a pg_dump may still be running)";
      }
    } else {
      ++complete_seen;
      if (complete_seen <= options.keep) {
        why = "one of the newest " + std::to_string(options.keep);
      } else if (newest_verified && b.id == *newest_verified) {
        why = "the newest verified backup (level " + std::to_string(b.verified_level()) + ")";
      } else if (options.keep_verified && b.verified_level() >= options.verified_level) {
        why = "verified (level " + std::to_string(b.verified_level()) + ")";
      }
    }
    if (!why.empty()) {
      report.kept.emplace_back(b.id, why);
      continue;
    }
    report.deleted.push_back(b.id);
    if (options.dry_run) continue;
    // Re-check right before deleting: a create may have started in a directory meanwhile.
    if (!b.manifest && InProgressLock::Held(b.path)) {
      report.deleted.pop_back();
      report.kept.emplace_back(b.id, "create in progress");
      continue;
    }
    std::error_code ec;
    fs::remove_all(b.path, ec);
    if (ec) return IoError("cannot delete " + b.path + ": " + ec.message());
  }
  return report;
}

}  // namespace turnout::backup
