// The Platform interface: how the controller runs one instance of an app version, stops it,
// looks at it and re-attaches to it after the daemon itself was restarted (or killed -9).
//
// An instance is identified by an InstanceHandle, a plain value the controller persists in its
// state store (EncodeHandle / DecodeHandle). A handle names the process by pid *and* by the
// process's start time and the machine's boot id, because a pid alone is not an identity: after
// the process exits the kernel hands the number to someone else. Every implementation must
// guarantee that it never signals a process whose identity no longer matches the handle.
//
// Implementations: ProcessPlatform (local processes, process_platform.h). Containers (Docker /
// Podman Engine API) and Kubernetes are meant to fit the same interface later; their handles
// would put a container id into `id` and leave the process fields empty.

#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace turnout::platform {

// What to run: one instance (replica `instance`) of `version` of `service` in `slot`.
struct InstanceSpec {
  std::string service;  // [A-Za-z0-9][A-Za-z0-9._+-]*; part of log file names
  std::string version;  // same character set; substituted for {version}
  std::string slot;     // same character set; substituted for {slot}
  int instance = 0;     // replica index within the slot, >= 0; substituted for {instance}
  uint16_t port = 0;    // the port this instance must listen on; substituted for {port}
  // The command, split into argv like a shell would split words ('single', "double" quotes and
  // backslash escapes), then {version} {port} {slot} {instance} are replaced inside each word.
  // There is no shell unless the template runs one (`sh -c '...'`). Other braces stay as they
  // are. Example: "./app --listen 127.0.0.1:{port} --version {version}".
  std::string command;
  std::string working_dir;  // Default: "" (the daemon's working directory)
  // Added to the daemon's environment (later entries win); the platform then sets
  // TURNOUT_VERSION, TURNOUT_SLOT, TURNOUT_PORT and TURNOUT_INSTANCE. Default: none.
  std::vector<std::pair<std::string, std::string>> env;
  int stop_signal = SIGTERM;  // Default: SIGTERM
  // How long Stop waits after stop_signal before SIGKILL. Default: 10s
  std::chrono::milliseconds grace = std::chrono::seconds(10);
  // stdout and stderr are appended to <log_dir>/<service>-<slot>-<instance>.log; the directory
  // is created when missing. Default: "" (the working directory of the daemon).
  std::string log_dir;
};

// A stable hash of everything in a spec that changes what runs (hex, 16 digits). Used to notice
// that a running instance was started from a different definition. Not a security hash.
std::string SpecHash(const InstanceSpec& spec);

// Checks the spec's names, instance index, command and grace; InvalidArgument says which field.
Status ValidateSpec(const InstanceSpec& spec);

// A launched instance, as a value. Copyable; safe to persist and to hand to another Platform
// object (or another daemon process) of the same kind.
struct InstanceHandle {
  std::string id;                 // "<service>-<slot>-<instance>-<pid>" for processes
  pid_t pid = 0;                  // 0 when the platform has no process of its own
  uint64_t start_time_ticks = 0;  // /proc/<pid>/stat field 22: clock ticks since boot
  std::string boot_id;            // /proc/sys/kernel/random/boot_id when it was launched
  uint16_t port = 0;
  std::string spec_hash;  // SpecHash of the spec it was launched from
  // Needed to stop the instance after a daemon restart, when the spec may be gone.
  int stop_signal = SIGTERM;
  std::chrono::milliseconds grace = std::chrono::seconds(10);
  std::string log_path;  // where its stdout/stderr go ("" when not a file)

  friend bool operator==(const InstanceHandle&, const InstanceHandle&) = default;
};

// JSON text for the state store, and back. DecodeHandle refuses malformed text and missing
// fields with InvalidArgument; it never throws.
std::string EncodeHandle(const InstanceHandle& handle);
Result<InstanceHandle> DecodeHandle(std::string_view json);

enum class InstanceState {
  kRunning,    // the process named by the handle is alive
  kExited,     // it ended and its exit code or signal is known
  kGone,       // it ended (or the machine rebooted); how it ended is not known
  kPidReused,  // the pid now belongs to a different process: never signal it
};
std::string_view InstanceStateName(InstanceState state);

struct InstanceStatus {
  InstanceState state = InstanceState::kGone;
  std::optional<int> exit_code;    // kExited by exit(): the code
  std::optional<int> term_signal;  // kExited by a signal: the signal number

  bool running() const { return state == InstanceState::kRunning; }
  // "running", "exited with code 3", "killed by signal 9 (Killed)", "gone", "pid reused".
  std::string ToString() const;
  friend bool operator==(const InstanceStatus&, const InstanceStatus&) = default;
};

// The role: runs instances. Implementations are thread-safe (the controller and the supervisor
// call from different threads) unless they say otherwise.
class Platform {
 public:
  virtual ~Platform() = default;

  // "process", "docker", ...
  virtual std::string_view Name() const = 0;

  // Starts one instance. It does not wait for the instance to become ready (that is the
  // controller's health check); it fails only when the instance could not be started at all
  // (bad spec, program not found, log file not writable) or when its port is already in use
  // (FailedPrecondition naming the port; ports.h).
  virtual Result<InstanceHandle> Launch(const InstanceSpec& spec) = 0;

  // Sends handle.stop_signal, waits up to handle.grace for the instance to end, then kills it.
  // Blocks until the instance has ended (or, after the kill, a few more seconds passed:
  // DeadlineExceeded). OK when the instance had already ended, so it is idempotent, and OK
  // without signalling anything when the pid was reused. FailedPrecondition when
  // the instance runs on but could not be signalled (a process of another user).
  virtual Status Stop(const InstanceHandle& handle) = 0;

  // What the instance is doing now. Does not block.
  virtual Result<InstanceStatus> Inspect(const InstanceHandle& handle) = 0;

  // Blocks until the instance is no longer running or `timeout` passed, and returns Inspect's
  // answer at that point (still kRunning after a timeout).
  virtual Result<InstanceStatus> Wait(const InstanceHandle& handle,
                                      std::chrono::milliseconds timeout) = 0;

  // Re-attaches to an instance launched by an earlier daemon process (or another Platform
  // object): checks its identity, starts tracking it and returns its status. Adopting a handle
  // that is not running is not an error; the status says what happened to it.
  virtual Result<InstanceStatus> Adopt(const InstanceHandle& handle) = 0;
};

}  // namespace turnout::platform
