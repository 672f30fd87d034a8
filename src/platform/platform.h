// The Platform interface: how the controller runs one instance of an app version, stops it,
// looks at it and re-attaches to it after the daemon itself was restarted (or killed -9).
//
// The platform owns everything about where an instance runs and how it is reached: it allocates
// the address the router sends traffic to (AllocateAddress, called before Launch so that the
// controller can record the instance with its port before it exists), launches, stops, inspects
// and adopts instances, and reports how they ended (exit code, signal, killed for lack of
// memory). The controller does no I/O of its own towards instances: it only uses this interface
// and the address in the handle.
//
// An instance is identified by an InstanceHandle, a plain value the controller persists in its
// state store (EncodeHandle / DecodeHandle). It carries the kind of platform that launched it
// ("process"; later "container", "kubernetes") and that platform's own id. A platform refuses a
// handle of another kind with FailedPrecondition (CheckHandleKind) and never reads its fields as
// its own. A process handle names the process by pid *and* by the process's start time and the
// machine's boot id, because a pid alone is not an identity: after the process exits the kernel
// hands the number to someone else. Every implementation must guarantee that it never signals a
// process whose identity no longer matches the handle.
//
// Implementations: ProcessPlatform (local processes, process_platform.h) and, for tests,
// testing::FakePlatform (platform/testing/fake_platform.h: instances as records, no processes).
// Containers (Docker / Podman Engine API) and Kubernetes fit the same interface; their handles put
// a container id into `id` and leave the process fields empty.

#pragma once

#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace turnout::platform {

// A secret an instance receives, by reference (turnout.yaml `secrets:`). Only the reference is
// saved with a deployment and hashed; turnoutd reads the value from its state directory at each
// launch into InstanceSpec::secret_env, so no value is ever in the state store.
struct SecretRef {
  std::string name;  // the variable the app reads (common::IsUserEnvName)
  // "env": NAME holds the value; "file": NAME_FILE names a file that holds it.
  std::string as = "env";
  int64_t generation = 0;   // which value (1, 2, ...: each new value of NAME is the next)
  std::string fingerprint;  // its keyed fingerprint (common/secret.h KeyedSecretFingerprint)
  // During a rotation's overlap: the value before it, as NAME_PREVIOUS (NAME_PREVIOUS_FILE).
  // 0 and "": none.
  int64_t previous_generation = 0;
  std::string previous_fingerprint;
  friend bool operator==(const SecretRef&, const SecretRef&) = default;
};

// What to run: one instance (replica `instance`) of `version` of `service` in `slot`.
struct InstanceSpec {
  std::string service;  // [A-Za-z0-9][A-Za-z0-9._+-]*; part of log file names
  std::string version;  // same character set; substituted for {version}
  std::string slot;     // same character set; substituted for {slot}
  int instance = 0;     // replica index within the slot, >= 0; substituted for {instance}
  // Where the instance must listen: the bind host and the port from Platform::AllocateAddress.
  // The port is substituted for {port}. Default host: 127.0.0.1
  std::string host = "127.0.0.1";
  uint16_t port = 0;
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
  // Containers: the exact image to run, as the deployment recorded it (an image ID from
  // ContainerPlatform::ResolveImage), so that every instance of a revision runs the same image
  // even after its tag moved. Processes ignore it. Default: "" (the platform's image for
  // `version`).
  std::string image;
  // A digest of the platform's own options that change what runs (containers: every key of the
  // container platform in turnout.yaml), so that SpecHash changes with them. Default: ""
  std::string platform_hash;
  // The secrets of the instance, by reference (hashed by SpecHash). Default: none
  std::vector<SecretRef> secrets;
  // Their resolved variables (NAME, NAME_PREVIOUS, or NAME_FILE, NAME_PREVIOUS_FILE), filled by
  // whoever holds the values just before Launch; added to the environment after `env`. Never
  // hashed, persisted or logged. ValidateSpec refuses a spec whose secrets are not resolved.
  std::vector<std::pair<std::string, std::string>> secret_env;
};

// A stable hash of everything in a spec that changes what runs (hex, 16 digits). Used to notice
// that a running instance was started from a different definition. Not a security hash: it
// covers `env` values but, of secrets, only their references (keyed fingerprints), never
// secret_env.
std::string SpecHash(const InstanceSpec& spec);

// Checks the spec's names, instance index, command and grace, and that every secret was
// resolved into secret_env; InvalidArgument says which field.
Status ValidateSpec(const InstanceSpec& spec);

// The kind of ProcessPlatform's handles (and its Name()).
inline constexpr std::string_view kProcessKind = "process";

// A launched instance, as a value. Copyable; safe to persist and to hand to another Platform
// object (or another daemon process) of the same kind.
struct InstanceHandle {
  // The platform that launched it: "process", later "container", "kubernetes". Handles stored
  // by versions before the field existed decode as "process" (they were all processes).
  std::string kind = std::string(kProcessKind);
  // The platform's own id: "<service>-<slot>-<instance>-<pid>" for processes (whose identity is
  // pid + start time + boot id below), the container id for containers.
  std::string id;
  // Where the router sends the instance's traffic ("127.0.0.1:8001"); filled by the platform at
  // Launch from the allocated address. Handles stored before the field existed decode as
  // "127.0.0.1:<port>": turnoutd always ran instances on 127.0.0.1 then.
  std::string address;
  pid_t pid = 0;                  // 0 when the platform has no process of its own
  uint64_t start_time_ticks = 0;  // /proc/<pid>/stat field 22: clock ticks since boot
  std::string boot_id;            // /proc/sys/kernel/random/boot_id when it was launched
  uint16_t port = 0;              // the port of `address` (processes: {port})
  std::string spec_hash;          // SpecHash of the spec it was launched from
  // Needed to stop the instance after a daemon restart, when the spec may be gone.
  int stop_signal = SIGTERM;
  std::chrono::milliseconds grace = std::chrono::seconds(10);
  std::string log_path;  // where its stdout/stderr go ("" when not a file)

  friend bool operator==(const InstanceHandle&, const InstanceHandle&) = default;
};

// JSON text for the state store, and back. DecodeHandle refuses malformed text and missing
// fields with InvalidArgument; it never throws. The process fields (pid, start time, boot id,
// port, stop signal, grace) are required of a "process" handle only; a handle of another kind
// decodes with whatever of them it has (the platform of that kind reads the rest).
std::string EncodeHandle(const InstanceHandle& handle);
Result<InstanceHandle> DecodeHandle(std::string_view json);

// OK when `handle` was launched by a platform of kind `platform_kind`; otherwise
// FailedPrecondition: "instance X was launched by the container platform; this turnoutd runs the
// process platform (...)". Every Platform method that takes a handle checks it first.
Status CheckHandleKind(const InstanceHandle& handle, std::string_view platform_kind);

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
  // kExited because the kernel (or the container runtime) killed it for lack of memory.
  // Containers report it (their runtime says so). Processes never set it: a SIGKILL sent by the
  // kernel's OOM killer cannot be told apart cheaply from any other SIGKILL, so a process killed
  // for lack of memory reports term_signal 9.
  bool oom_killed = false;

  bool running() const { return state == InstanceState::kRunning; }
  // "running", "exited with code 3", "killed by signal 9 (Killed)", "killed: out of memory",
  // "gone", "pid reused".
  std::string ToString() const;
  friend bool operator==(const InstanceStatus&, const InstanceStatus&) = default;
};

// What AllocateAddress is asked: instance `instance` of `slot` (the slot's position in the
// service's two slots is `slot_index`, its replica count `replicas`), with the service's
// placement settings from turnout.yaml.
struct AddressRequest {
  std::string service;
  std::string slot;
  int slot_index = 0;  // 0 or 1
  int instance = 0;    // replica index, >= 0
  int replicas = 1;
  // Processes: the bind host (IPv4 literal) and the first port of the service's fixed ports
  // (instance i of slot s gets first_port + s * replicas + i), 0 for a port the OS reports free
  // now (another process may still take it before the instance binds it; the instance then
  // fails readiness and the deployment rolls back). Other platforms may ignore them.
  std::string host = "127.0.0.1";
  uint16_t first_port = 0;
  // Addresses ("host:port") the service's other instances hold: never handed out again.
  std::vector<std::string> in_use;
};

struct InstanceAddress {
  std::string host;
  uint16_t port = 0;
  std::string ToString() const;  // "host:port"
};

// A port the OS reports free on `host` (an IPv4 literal) now (FreePort), never one whose
// "host:port" is in `in_use`: for platforms that let the OS pick. Unavailable after 20 picks
// that were all in use; FreePort's errors as they are.
Result<InstanceAddress> FreeAddressNotIn(const std::string& host,
                                         const std::vector<std::string>& in_use);

// The role: runs instances. Implementations are thread-safe (the controller and the supervisor
// call from different threads) unless they say otherwise.
class Platform {
 public:
  virtual ~Platform() = default;

  // The kind of the handles it launches and accepts: "process", "container", ...
  virtual std::string_view Name() const = 0;

  // Where a new instance will listen, before it is launched (the controller records the port
  // first, then launches with spec.host and spec.port set to the answer). Never an address in
  // request.in_use. InvalidArgument for a bad request (a host that is not an IP literal, ports
  // that do not fit), IoError when the machine could not be asked.
  virtual Result<InstanceAddress> AllocateAddress(const AddressRequest& request) = 0;

  // Starts one instance. It does not wait for the instance to become ready (that is the
  // controller's health check); it fails only when the instance could not be started at all
  // (bad spec, program not found, log file not writable) or when its port is already in use
  // (FailedPrecondition naming the port; ports.h). The handle's address is spec.host:spec.port.
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

  // The last `max_lines` lines (reading at most `max_bytes`) of what the instance wrote to its
  // stdout and stderr, for messages saying why it ended; "" when unknown or of another kind.
  virtual std::string LogTail(const InstanceHandle& handle, size_t max_lines, size_t max_bytes) = 0;

  // The exact image `version` runs as, resolved before anything of a deployment is launched
  // (pulled when the platform's policy says so): the deployment records it and launches with it
  // in InstanceSpec::image. "" for platforms without images (processes, the default). Errors say
  // what is missing (NotFound: the image; Unavailable: the engine, naming its socket). A pull
  // ends soon after `interrupt` (when given) holds true, with Aborted.
  virtual Result<std::string> ResolveImage(std::string_view /*version*/,
                                           const std::atomic<bool>* /*interrupt*/ = nullptr) const {
    return std::string();
  }

  // Re-attaches to an instance launched by an earlier daemon process (or another Platform
  // object): checks its identity, starts tracking it and returns its status. Adopting a handle
  // that is not running is not an error; the status says what happened to it.
  virtual Result<InstanceStatus> Adopt(const InstanceHandle& handle) = 0;
};

}  // namespace turnout::platform
