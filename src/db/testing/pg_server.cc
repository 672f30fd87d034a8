#include "db/testing/pg_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "db/pg.h"

namespace turnout::db::testsupport {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kDebianBinDir = "/usr/lib/postgresql/15/bin";

// A port that was free a moment ago (bind port 0, read it, close). PostgreSQL binds it next;
// a collision in between makes Start() try again.
Result<int> FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket", errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int e = errno;
    ::close(fd);
    return ErrnoError("bind 127.0.0.1:0", e);
  }
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int e = errno;
    ::close(fd);
    return ErrnoError("getsockname", e);
  }
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

std::string FindBinDir() {
  std::string out;
  if (RunCommand({"pg_config", "--bindir"}, &out).ok()) {
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    if (fs::exists(fs::path(out) / "initdb") && fs::exists(fs::path(out) / "pg_ctl")) return out;
  }
  return std::string(kDebianBinDir);
}

PgServer* g_server = nullptr;

}  // namespace

Status RunCommand(const std::vector<std::string>& argv, std::string* output) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return ErrnoError("fork", e);
  }
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    _exit(127);
  }
  ::close(fds[1]);
  std::string text;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fds[0], buf, sizeof(buf));
    if (n > 0) {
      text.append(buf, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (output != nullptr) *output = text;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd;
    for (const std::string& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    return Internal("`" + cmd + "` failed (status " + std::to_string(status) + "): " + text);
  }
  return Status::Ok();
}

PgServer::~PgServer() { Stop(); }

Status PgServer::RunAsOwner(const std::vector<std::string>& argv, std::string* output) {
  if (!as_postgres_user_) return RunCommand(argv, output);
  std::vector<std::string> wrapped = {"runuser", "-u", "postgres", "--"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return RunCommand(wrapped, output);
}

Status PgServer::Start() {
  bindir_ = FindBinDir();
  if (!fs::exists(fs::path(bindir_) / "initdb")) {
    return NotFound("PostgreSQL server binaries not found in " + bindir_ +
                    "; install postgresql-15 (scripts/install-deps.sh)");
  }
  std::string tmpl = (fs::temp_directory_path() / "turnout-pg-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoError("mkdtemp", errno);
  dir_ = tmpl;
  fs::create_directories(fs::path(dir_) / "socket");
  if (::geteuid() == 0) {
    // PostgreSQL refuses to run as root.
    passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) return NotFound("running as root but there is no `postgres` user");
    as_postgres_user_ = true;
    for (const fs::path& p : {fs::path(dir_), fs::path(dir_) / "socket"}) {
      if (::chown(p.c_str(), pw->pw_uid, pw->pw_gid) != 0) return ErrnoError("chown", errno);
    }
  }
  std::string data = dir_ + "/data";
  std::string out;
  TURNOUT_RETURN_IF_ERROR(RunAsOwner({bindir_ + "/initdb", "-D", data, "-U", "postgres", "-A",
                                      "trust", "-E", "UTF8", "--no-sync", "--no-instructions"},
                                     &out));
  Status last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    TURNOUT_ASSIGN_OR_RETURN(int port, FreePort());
    std::string opts = "-p " + std::to_string(port) + " -k " + dir_ +
                       "/socket -c listen_addresses=127.0.0.1 -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60 "
                       "-c shared_buffers=32MB";
    last = RunAsOwner({bindir_ + "/pg_ctl", "-D", data, "-l", dir_ + "/log", "-w", "-t", "60", "-o",
                       opts, "start"},
                      &out);
    if (last.ok()) {
      port_ = port;
      running_ = true;
      return Status::Ok();
    }
    if (Log().find("could not bind") == std::string::npos &&
        Log().find("already in use") == std::string::npos) {
      break;
    }
  }
  return last.WithContext("cannot start PostgreSQL; log: " + Log());
}

void PgServer::Stop() {
  if (running_) {
    std::string out;
    (void)RunAsOwner({bindir_ + "/pg_ctl", "-D", dir_ + "/data", "-m", "immediate", "-w", "stop"},
                     &out);
    running_ = false;
  }
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    dir_.clear();
  }
}

std::string PgServer::Url(const std::string& database) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

Result<std::string> PgServer::CreateDatabase() {
  TURNOUT_ASSIGN_OR_RETURN(PgConnection conn, PgConnection::Connect(Url("postgres"), "test"));
  std::string name = "t_" + std::to_string(++next_db_);
  TURNOUT_RETURN_IF_ERROR(conn.Exec("CREATE DATABASE " + name).status());
  return Url(name);
}

std::string PgServer::Log() const {
  std::ifstream in(dir_ + "/log");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void PgEnvironment::SetUp() {
  static PgServer server;
  Status st = server.Start();
  ASSERT_TRUE(st.ok()) << st.ToString();
  g_server = &server;
}

void PgEnvironment::TearDown() {
  if (g_server != nullptr) g_server->Stop();
  g_server = nullptr;
}

PgServer& PgEnvironment::server() { return *g_server; }

}  // namespace turnout::db::testsupport
