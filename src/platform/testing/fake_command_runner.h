// FakeCommandRunner: a CommandRunner that runs nothing. The test says how each program "ends"
// (by argv[0]); anything it was not told about exits 0 with no output. Every call is recorded.
// Thread-safe.

#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "platform/run.h"

namespace turnout::platform::testing {

class FakeCommandRunner final : public CommandRunner {
 public:
  // `program` (argv[0]) exits with `code` and prints `output`.
  void Exits(const std::string& program, int code, std::string output = "") {
    RunResult r;
    r.exit_code = code;
    r.output = std::move(output);
    std::lock_guard lock(mu_);
    results_[program] = r;
  }
  // Running `program` fails on our side (NotFound: it does not exist; IoError: spawn failed).
  void Fails(const std::string& program, Status error) {
    std::lock_guard lock(mu_);
    errors_[program] = std::move(error);
  }

  Result<RunResult> Run(const RunSpec& spec) override {
    std::lock_guard lock(mu_);
    calls_.push_back(spec);
    if (spec.argv.empty()) return InvalidArgument("empty argv");
    if (auto e = errors_.find(spec.argv[0]); e != errors_.end()) return e->second;
    RunResult r;
    r.exit_code = 0;
    if (auto it = results_.find(spec.argv[0]); it != results_.end()) r = it->second;
    r.timeout = spec.timeout;
    return r;
  }

  std::vector<RunSpec> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, RunResult> results_;
  std::map<std::string, Status> errors_;
  std::vector<RunSpec> calls_;
};

}  // namespace turnout::platform::testing
