// EngineClient: typed calls of the Docker Engine API v1.41 over a Unix socket, for dockerd and for
// Podman's compatible service (`podman system service`). Every call is one blocking HTTP request
// through httpc (paths carry the `/v1.41` prefix); nothing is cached between calls, so one client
// may be used from several threads at once.
//
// Engine address (ResolveEngineSockets / EngineClient::Connect), first that is given wins:
//   1. the explicit address (`platform.engine`): "unix:///path/to.sock" or "/path/to.sock";
//   2. `$DOCKER_HOST`, which must be unix:// (tcp:// and ssh:// are refused: InvalidArgument
//      saying that only Unix sockets are supported);
//   3. /var/run/docker.sock, then /run/podman/podman.sock (the first that answers /_ping).
// Nothing answering is Unavailable naming every socket tried and what to do.
//
// Errors: the engine's {"message": "..."} with its HTTP status and what was asked:
//   404 NotFound (no such image / container), 409 AlreadyExists for a container name in use
//   (FailedPrecondition for other conflicts, e.g. removing a running container), 400
//   InvalidArgument, 401/403 FailedPrecondition (pull denied: check the registry credentials),
//   a start that finds its port taken AlreadyExists ("port ... already in use"), other 5xx
//   IoError; the transport's errors as httpc gives them (Unavailable names the socket).
// Messages never carry registry credentials.

#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "container/streams.h"

namespace turnout::container {

using Millis = std::chrono::milliseconds;
using Labels = std::map<std::string, std::string>;

inline constexpr std::string_view kApiVersion = "1.41";

struct VersionInfo {
  std::string version;      // "20.10.24" (dockerd) or "4.3.1" (Podman)
  std::string api_version;  // "1.41"
  std::string os, arch;
  bool podman = false;  // the engine says it is Podman (its Components name "Podman Engine")
};

struct ImageInfo {
  std::string id;  // "sha256:..."
  std::vector<std::string> repo_tags;
  std::vector<std::string> repo_digests;  // "name@sha256:..." (empty for a local-only image)
  int64_t size = 0;
};

struct PortBinding {
  uint16_t container_port = 0;
  uint16_t host_port = 0;
  std::string host_ip = "127.0.0.1";  // Default: loopback only
  std::string protocol = "tcp";
};

struct Ulimit {
  std::string name;  // "nofile", "nproc"
  int64_t soft = 0;
  int64_t hard = 0;
};

// What ContainerCreate sends. Empty fields are left to the image and the engine.
struct ContainerSpec {
  std::string name;   // Default: the engine picks one
  std::string image;  // required
  std::vector<std::string> cmd;
  std::vector<std::string> entrypoint;
  std::vector<std::string> env;  // "NAME=value"
  Labels labels;
  std::string user;
  std::string working_dir;
  // "host", "bridge", "none", ...; "" = the engine's default (a bridge).
  std::string network_mode;
  std::vector<PortBinding> ports;  // published ports (bridge mode)
  int64_t memory_bytes = 0;        // 0 = no limit
  int64_t nano_cpus = 0;           // 1e9 = one CPU; 0 = no limit
  std::vector<std::string> binds;  // "host-path:container-path[:ro]"
  // An explicit list replaces the engine's defaults entirely: give nofile and nproc together.
  std::vector<Ulimit> ulimits;
  std::string stop_signal;            // Default: the image's (SIGTERM)
  std::optional<int> stop_timeout_s;  // Default: the engine's (10 s)
};

struct ContainerState {
  std::string status;  // "created", "running", "exited", ...
  bool running = false;
  int exit_code = 0;
  bool oom_killed = false;
  int pid = 0;
  std::string started_at, finished_at;  // RFC 3339 as the engine gives them
  std::string error;                    // the runtime's error, if any
};

struct ContainerInfo {
  std::string id;
  std::string name;   // without the leading '/'
  std::string image;  // the image id
  Labels labels;
  ContainerState state;
};

struct ContainerSummary {
  std::string id;
  std::vector<std::string> names;  // without the leading '/'
  std::string image;               // as the container was created: a name or an image id
  std::string image_id;  // the image id the engine resolved it to ("sha256:..." or bare hex)
  std::string state;     // "running", "exited", ...
  Labels labels;
};

struct WaitResult {
  int exit_code = 0;
  std::string error;  // the engine's error while waiting, if any
};

struct LogOptions {
  bool stdout_stream = true;
  bool stderr_stream = true;
  std::optional<int> tail;  // the last N lines; Default: all
  // Keep the call open and hand new output to `on_output` until the container stops, `on_output`
  // returns false or `cancel` holds true. Default: false (what is there now)
  bool follow = false;
  // Receives payload pieces in order (with follow, as they come). When unset, the output is
  // collected into Logs. Default: none
  LogDemuxer::Sink on_output;
  const std::atomic<bool>* cancel = nullptr;
};

struct Logs {
  std::string out;       // stdout, collected when LogOptions::on_output is unset
  std::string err;       // stderr
  bool stopped = false;  // ended by on_output or cancel
};

// The last `n` lines of `text` (a final line without '\n' counts), joined with '\n'.
std::string LastLines(std::string_view text, int n);

struct PullProgress {
  std::string status;  // "Pulling fs layer", "Download complete", ...
  std::string id;      // the layer, when the line names one
};

struct EngineOptions {
  // The explicit engine address (platform.engine): "unix:///path" or "/path"; "" = resolve.
  std::string address;
  Millis timeout{30000};  // one ordinary call. Default: 30 s
};

// The sockets to try, in order: [the explicit address] or [$DOCKER_HOST] or the two defaults.
// `docker_host` is the value of $DOCKER_HOST ("" when unset). InvalidArgument for an address
// that is not a Unix socket (tcp://, ssh://, http://) or an empty unix:// path.
Result<std::vector<std::string>> ResolveEngineSockets(std::string_view address,
                                                      std::string_view docker_host);

class EngineClient {
 public:
  // A client for exactly this socket; no I/O.
  explicit EngineClient(std::string socket_path, Millis timeout = Millis(30000));

  // Resolves the address (reading $DOCKER_HOST) and returns a client for the first socket that
  // answers /_ping. Unavailable: "no container engine answered on <a> (<why>), <b> (<why>): start
  // dockerd or `podman system service`, or set platform.engine or DOCKER_HOST to its socket".
  static Result<EngineClient> Connect(const EngineOptions& options);

  const std::string& socket_path() const { return socket_; }

  Status Ping() const;
  Result<VersionInfo> Version() const;

  Result<ImageInfo> ImageInspect(std::string_view image) const;
  // Pulls `image` ("name", "name:tag" or "name@sha256:..."; no tag = "latest") with the
  // credentials of RegistryAuthFor. `progress` sees each status line. An error line in the
  // stream is an error (FailedPrecondition when it says the pull was denied or the name is
  // unknown, else IoError), with the engine's message. Its own timeout (Default: 10 min).
  // `cancel` holding true ends it (within about a second): Aborted "the pull of IMAGE was
  // interrupted".
  Status ImagePull(std::string_view image,
                   const std::function<void(const PullProgress&)>& progress = {},
                   Millis timeout = Millis(600000),
                   const std::atomic<bool>* cancel = nullptr) const;
  // Images carrying every label in `labels` ("key" or "key=value"); all when empty.
  Result<std::vector<ImageInfo>> ImageList(const std::vector<std::string>& labels = {}) const;
  // Removes a tag ("name:tag": the image goes with its last tag) or an image by id. Without
  // `force`, an image a container uses or that has other tags is FailedPrecondition (409) and
  // stays.
  Status ImageRemove(std::string_view image, bool force = false) const;

  // Returns the new container's id. NotFound when the image is not there (nothing is created).
  Result<std::string> ContainerCreate(const ContainerSpec& spec) const;
  // A container already running is not an error.
  Status ContainerStart(std::string_view id) const;
  Result<ContainerInfo> ContainerInspect(std::string_view id) const;
  // SIGTERM (or the container's stop signal), then SIGKILL after `grace`. A stopped container is
  // not an error.
  Status ContainerStop(std::string_view id, std::chrono::seconds grace) const;
  Status ContainerKill(std::string_view id, std::string_view signal = "SIGKILL") const;
  // Blocks until the container is not running (at most `timeout`), returns its exit code.
  Result<WaitResult> ContainerWait(std::string_view id, Millis timeout = Millis(60000)) const;
  // force: kill it first if it runs. Its anonymous volumes go with it.
  Status ContainerRemove(std::string_view id, bool force = false) const;
  // Every container, running or not (all=true), carrying every label in `labels` ("key" or
  // "key=value").
  Result<std::vector<ContainerSummary>> ContainerList(const std::vector<std::string>& labels) const;
  Result<Logs> ContainerLogs(std::string_view id, const LogOptions& options = {}) const;

  // Why a container is not running, for a user: FailedPrecondition "container <name> exited
  // with code <n>[, killed for exceeding its memory limit (OOMKilled)...| (SIGKILL: ...) for
  // 137 without OOMKilled][: <runtime error>]; its last log lines:\n<stdout lines>\n<stderr
  // lines>" (at most `lines` of each). Its own errors when inspect fails; OK when it runs.
  Status ExplainExit(std::string_view id, int lines = 20) const;

 private:
  struct Reply;
  Result<Reply> Call(std::string_view method, std::string target, std::string body = "",
                     std::optional<Millis> timeout = std::nullopt) const;
  Status ErrorOf(std::string_view what, const Reply& reply) const;

  std::string socket_;
  Millis timeout_;
};

}  // namespace turnout::container
