// FakePlatform: a Platform whose instances are records in memory, for tests of code that drives
// a platform (the controller's engine) in milliseconds, without a process. Modelled on the idea
// of an in-memory environment: the same contract as the real platform, checked the same way,
// nothing behind it.
//
// What it does like ProcessPlatform: AllocateAddress (first_port formula, else the next free
// fake port, never one in request.in_use), Launch validates the spec (ValidateSpec) and refuses
// a port a running instance holds (FailedPrecondition naming it), every method that takes a
// handle refuses one of another kind (CheckHandleKind), Stop is idempotent and OK for an
// instance that already ended, a handle it does not know is reported kGone (the process is not
// there), and Wait blocks (by the injected clock: clock.SleepFor(timeout), so a ManualClock
// moves on) until the instance ends or the timeout passed.
//
// What the test controls: instances become ready / unready / not live (read by whatever answers
// the probes, e.g. controller/testing/fake_prober.h), exit with a code, die by a signal or are
// OOM-killed, fail to launch (FailLaunches), get log lines; on_launch configures each new
// instance (by its spec: a version that never gets ready, one that exits at once...). It counts
// launches, stops and adoptions.
//
// Thread-safe (one mutex). Handles have kind `kind` (default "process"), id "fake-<n>", pid 0.

#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "platform/platform.h"

namespace turnout::platform::testing {

struct FakeInstance {
  InstanceSpec spec;
  InstanceHandle handle;
  InstanceStatus status{InstanceState::kRunning, std::nullopt, std::nullopt};
  bool ready = true;  // answers readiness probes with 2xx
  bool live = true;   // answers liveness probes with 2xx
  std::string log;    // what it "wrote" (LogTail reads it)
  int stops = 0;      // Stop calls that ended it
};

class FakePlatform final : public Platform {
 public:
  // `clock` paces Wait (SleepFor); it must outlive the platform.
  explicit FakePlatform(const Clock& clock, std::string kind = std::string(kProcessKind));

  std::string_view Name() const override { return kind_; }
  Result<InstanceAddress> AllocateAddress(const AddressRequest& request) override;
  Result<InstanceHandle> Launch(const InstanceSpec& spec) override;
  Status Stop(const InstanceHandle& handle) override;
  Result<InstanceStatus> Inspect(const InstanceHandle& handle) override;
  Result<InstanceStatus> Wait(const InstanceHandle& handle,
                              std::chrono::milliseconds timeout) override;
  std::string LogTail(const InstanceHandle& handle, size_t max_lines, size_t max_bytes) override;
  Result<InstanceStatus> Adopt(const InstanceHandle& handle) override;
  // resolve_image's answer (counted); "" without one, as for processes.
  Result<std::string> ResolveImage(std::string_view version,
                                   const std::atomic<bool>* interrupt = nullptr) const override;

  // Called (under the platform's lock) for every instance it launches, before Launch returns.
  void set_on_launch(std::function<void(FakeInstance&)> on_launch);
  // What ResolveImage answers for a version (an image ID, or an error like a missing image).
  void set_resolve_image(std::function<Result<std::string>(std::string_view)> resolve);
  int image_resolutions() const;
  // The next `count` launches fail with `error` (a program that is missing, a port in use).
  void FailLaunches(Status error, int count = 1);

  // The instance running (or, when none runs there, launched last) at `address`, by value.
  std::optional<FakeInstance> At(const std::string& address) const;
  std::vector<FakeInstance> Instances() const;  // every instance launched, in launch order
  // Changes the instance whose handle id or address is `who` (the running one at an address).
  // False when there is none.
  bool SetReady(const std::string& who, bool ready);
  bool SetLive(const std::string& who, bool live);
  bool Exit(const std::string& who, int code);   // it exits with `code`
  bool Kill(const std::string& who, int signo);  // it dies by signal `signo`
  bool OomKill(const std::string& who);          // the runtime killed it for lack of memory
  // Applies to every running instance whose spec matches.
  void ForEachRunning(const std::function<void(FakeInstance&)>& change);

  int launches() const;
  int stops() const;
  int adoptions() const;
  int running() const;

 private:
  FakeInstance* FindLocked(const std::string& who);
  FakeInstance* ByHandleLocked(const InstanceHandle& handle);
  bool EndLocked(const std::string& who, InstanceStatus status);

  const Clock& clock_;
  const std::string kind_;
  mutable std::mutex mu_;
  std::vector<FakeInstance> instances_;
  std::function<void(FakeInstance&)> on_launch_;
  std::vector<Status> launch_failures_;
  std::function<Result<std::string>(std::string_view)> resolve_image_;
  mutable int image_resolutions_ = 0;
  uint16_t next_port_ = 20000;
  int launches_ = 0, stops_ = 0, adoptions_ = 0;
};

}  // namespace turnout::platform::testing
