// A throwaway PostgreSQL 15 server for tests: Debian's initdb + pg_ctl on a temporary directory,
// listening on 127.0.0.1 at a port the OS picked, with its unix socket inside the directory.
//
// When the test runs as root (CI does), initdb and pg_ctl run as the `postgres` system user
// (PostgreSQL refuses to run as root) through runuser, and the directory is handed to that user.
// fsync is off: the data is thrown away anyway.
//
// Usage: one server per test binary through PgEnvironment, a fresh database per test:
//   static auto* const kPg =
//       ::testing::AddGlobalTestEnvironment(new turnout::db::testsupport::PgEnvironment);
//   ... std::string url = PgEnvironment::server().CreateDatabase().value();
//
// Not thread-safe (tests create databases from the main thread).

#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace turnout::db::testsupport {

class PgServer {
 public:
  PgServer() = default;
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;
  // Stops the server (pg_ctl stop -m immediate) and removes its directory.
  ~PgServer();

  // initdb + pg_ctl start. Retries with another port when the chosen one was taken meanwhile.
  // Fails with NotFound when the PostgreSQL binaries are missing (install postgresql-15).
  Status Start();
  void Stop();

  int port() const { return port_; }
  // postgresql://postgres@127.0.0.1:<port>/<db>
  std::string Url(const std::string& database) const;
  // CREATE DATABASE t_<n>; returns its URL.
  Result<std::string> CreateDatabase();
  // The server log (for failure messages).
  std::string Log() const;

 private:
  Status RunAsOwner(const std::vector<std::string>& argv, std::string* output);

  std::string dir_;  // temporary root: data/, socket/, log
  std::string bindir_;
  bool as_postgres_user_ = false;
  bool running_ = false;
  int port_ = 0;
  int next_db_ = 0;
};

// Runs one external command, waits for it; its stdout+stderr go to *output. Exit status != 0
// is an error that includes the output.
Status RunCommand(const std::vector<std::string>& argv, std::string* output);

class PgEnvironment : public ::testing::Environment {
 public:
  void SetUp() override;
  void TearDown() override;
  // The running server; valid between SetUp and TearDown.
  static PgServer& server();
};

}  // namespace turnout::db::testsupport
