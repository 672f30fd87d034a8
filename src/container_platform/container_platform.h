// ContainerPlatform: instances are containers of a Docker Engine API v1.41 engine (dockerd, or
// Podman's compatible service) reached over a Unix socket through container::EngineClient (the
// `container` platform of turnout.yaml). Handles are of kind "container"; their `id` is the
// container id, their process fields stay empty. Handles of another kind are refused by every
// method that takes one (FailedPrecondition, CheckHandleKind).
//
// Addresses: AllocateAddress hands out a loopback port the OS reports free now (FreePort), never
// one of request.in_use. With host networking the app listens on that port itself: it gets it
// as PORT and TURNOUT_PORT. With a bridge the app listens on `port` inside the container (PORT
// and TURNOUT_PORT say that port) and the engine publishes it on 127.0.0.1:<allocated>. Either
// way the handle's address is 127.0.0.1:<allocated>. Launch checks that the allocated port is
// free first (CheckPortFree) and maps the engine's "port already in use" to the same
// FailedPrecondition naming the port (the container it created is removed again).
//
// Images: ResolveImage(version) expands the image template, pulls per the pull policy and
// returns the image ID ("sha256:..."). The deployment records that ID and launches with it in
// InstanceSpec::image, so that every instance of a revision runs that exact image even after
// the tag is moved to another one. A Launch without InstanceSpec::image resolves the template
// itself. A missing image (pull `never`, or a pull that finds nothing) is NotFound naming the
// image and the engine, before any container is created.
//
// Containers: Launch creates and starts `turnout-<service>-<slot>-<instance>-<8 hex digits>`
// with the labels below, the stop signal and grace of the spec, the options' limits, and the
// environment: options.env, then spec.env (later entries win), then TURNOUT_VERSION,
// TURNOUT_SLOT, TURNOUT_INSTANCE, TURNOUT_PORT and PORT. InstanceSpec::command, working_dir
// and log_dir are process settings and are not used (the command is the image's, or
// options.command / options.args); the engine keeps the logs (LogTail reads them).
//
// Labels (every container this platform creates carries all of them):
//   turnout.managed=true, turnout.service, turnout.slot, turnout.revision (the version),
//   turnout.instance, turnout.spec-hash, and what a handle needs to be rebuilt from the
//   container alone after the daemon lost its state: turnout.address, turnout.stop-signal,
//   turnout.grace-ms; and turnout.owner, the identity of the state directory whose turnoutd
//   created it (options.owner), when it has one.
// Stop and Adopt inspect the container first and refuse one without turnout.managed=true
// (FailedPrecondition): a container turnout did not label is never stopped or removed.
//
// Owners: a platform with options.owner set works only on containers of that owner. Stop and
// Adopt refuse a container labelled for another owner (FailedPrecondition), and ListManaged
// lists only the owner's. So two turnoutd on two state directories that run services of the
// same name on one engine never adopt or remove each other's containers. A container without
// turnout.owner (made before the label existed, or by a platform without an owner) is still
// adopted and stopped by its handle, but no owner's ListManaged lists it.
//
// Exit status: Inspect reports kRunning, kExited with the exit code, kExited with term_signal n
// for the engine's exit code 128+n (how engines report a container killed by a signal; an app
// that itself exits with 129..192 reads the same), oom_killed when the engine says OOMKilled,
// and kGone when the container is no longer there. Podman 4.3 with runc on cgroup v1 does not set
// OOMKilled for a container killed at its memory limit: it reports exit code 137 only, which
// reads as "killed by signal 9"; LogTail and container::EngineClient::ExplainExit say that a
// memory limit may be the cause.
//
// Thread-safe: the platform keeps no state between calls but its options and the client (which
// is stateless). Stop and Wait block the calling thread while the engine works.

#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "container/engine_client.h"
#include "platform/platform.h"

namespace turnout::platform {

// The kind of ContainerPlatform's handles (and its Name()).
inline constexpr std::string_view kContainerKind = "container";

// The label every container turnout creates carries; Stop and Adopt require it.
inline constexpr std::string_view kManagedLabel = "turnout.managed";
// The identity of the state directory whose turnoutd created the container (options.owner).
inline constexpr std::string_view kOwnerLabel = "turnout.owner";

enum class ContainerNetwork {
  kHost,    // the container shares the machine's network; the app listens on the allocated port
  kBridge,  // the engine's default bridge; options.port is published on 127.0.0.1:<allocated>
};

enum class PullPolicy {
  kAlways,        // pull on every ResolveImage (the registry's current image for the tag)
  kIfNotPresent,  // pull only when the engine does not have the image
  kNever,         // never pull: a missing image is NotFound
};

struct ContainerMount {
  std::string source;  // a path on the machine
  std::string target;  // the path inside the container
  bool read_only = false;
};

struct ContainerLimit {  // one resource limit (ulimit) of the processes in the container
  int64_t soft = 0;
  int64_t hard = 0;
};

// One field per turnout.yaml key of the container platform (`env_file` is read into `env` by
// whoever reads the file; registry credentials come from Docker's config.json, as the client
// finds it).
struct ContainerPlatformOptions {
  // `engine`: "unix:///path.sock" or "/path.sock"; "" = $DOCKER_HOST, then /var/run/docker.sock,
  // then /run/podman/podman.sock (container::ResolveEngineSockets). Default: ""
  std::string engine;
  // `image`: the image for a version, "{version}" replaced: "registry/app:{version}". Required.
  std::string image;
  // `port`: the port the app listens on inside the container, published with a bridge. Required
  // with kBridge; unused with kHost (the app listens on the allocated port). Default: 0
  uint16_t port = 0;
  ContainerNetwork network = ContainerNetwork::kHost;  // `network`: host | bridge
  // `command` replaces the image's entrypoint, `args` its command. Default: the image's.
  std::vector<std::string> command;
  std::vector<std::string> args;
  // `env` (and `env_file`): set in every container, before spec.env. Default: none
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<ContainerMount> mounts;  // `mounts`. Default: none
  int64_t memory_bytes = 0;            // `memory`; 0 = no limit
  double cpus = 0;                     // `cpus`: 1.5 = one and a half CPUs; 0 = no limit
  std::string user;                    // `user`: "uid[:gid]" or a name. Default: the image's
  PullPolicy pull = PullPolicy::kIfNotPresent;  // `pull`: always | if_not_present | never
  // `ulimits`: nofile and nproc, given together or not at all: an explicit list replaces the
  // engine's defaults entirely (Podman's defaults exceed the hard limits of some machines; see
  // docs/containers.md). Default: the engine's.
  std::optional<ContainerLimit> nofile;
  std::optional<ContainerLimit> nproc;
  // One ordinary engine call. Default: 30 s
  std::chrono::milliseconds engine_timeout = std::chrono::seconds(30);
  // Not a key of turnout.yaml: the identity of the state directory of the turnoutd that uses
  // this platform (a random id it keeps in its state store), carried as turnout.owner. ""
  // (the default): no owner; ListManaged lists the containers of every owner.
  std::string owner;
};

// A container of a service found by its labels (ListManaged).
struct ManagedContainer {
  InstanceHandle handle;  // rebuilt from the labels: Adopt, Stop and Inspect take it
  std::string name;
  std::string slot;
  std::string revision;
  int instance = 0;
  std::string state;  // the engine's: "running", "exited", "created", ...
  std::string owner;  // its turnout.owner ("" when it has none)
};

// ---- turnout prune ----------------------------------------------------------------------------

// One revision of the service, as its record says: the image ID it ran (InstanceSpec::image
// recorded at its pre-checks; "" when it never got that far) and whether it is kept (among the
// newest revisions.on_disk, serving, or with a live instance).
struct PruneRevision {
  int64_t revision = 0;
  std::string version;
  std::string image;  // "sha256:..."; "" = none recorded
  bool keep = false;
};

// An image of revisions that are no longer kept: removed (or, in a dry run, removable), or
// kept with the reason.
struct PruneImage {
  std::string id;
  std::vector<std::string> tags;  // the engine's RepoTags of the image
  std::vector<int64_t> revisions;
  std::vector<std::string> versions;  // the same order as `revisions`
  int64_t bytes = 0;                  // the engine's size of the image
  bool removed = false;               // dry run: removable
  std::string kept_because;           // "" when removed
};

// A stopped container turnout labelled for the service that no live record names.
struct PruneContainer {
  std::string id;
  std::string name;
  std::string version;
  std::string state;
  bool removed = false;  // dry run: removable
  std::string error;     // why it could not be removed
};

struct PruneReport {
  bool dry_run = false;
  std::vector<PruneImage> images;  // removed/removable first, then those kept (kept_because)
  std::vector<PruneContainer> containers;
  int64_t freed_bytes = 0;  // the sizes of the images removed (or removable)
};

// InvalidArgument naming the option when `options` cannot work (no image, a bridge without a
// port, one ulimit without the other, negative limits).
Status ValidateContainerOptions(const ContainerPlatformOptions& options);

class ContainerPlatform final : public Platform {
 public:
  // Validates the options and connects to the engine (the first socket that answers /_ping).
  // Unavailable naming every socket tried when none answers.
  static Result<std::unique_ptr<ContainerPlatform>> Create(ContainerPlatformOptions options);

  ContainerPlatform(const ContainerPlatform&) = delete;
  ContainerPlatform& operator=(const ContainerPlatform&) = delete;
  ~ContainerPlatform() override = default;

  std::string_view Name() const override { return kContainerKind; }
  const std::string& socket_path() const { return client_.socket_path(); }

  // The image reference for `version` (the template expanded).
  std::string ImageFor(std::string_view version) const;
  // The image ID for `version`, pulled per the pull policy. NotFound naming the image when it
  // is missing and may not (or could not) be pulled; FailedPrecondition when the pull was
  // denied (check the registry credentials). A pull ends soon after `interrupt` holds true
  // (Aborted).
  Result<std::string> ResolveImage(std::string_view version,
                                   const std::atomic<bool>* interrupt = nullptr) const override;

  Result<InstanceAddress> AllocateAddress(const AddressRequest& request) override;
  Result<InstanceHandle> Launch(const InstanceSpec& spec) override;
  // Stops the container with the handle's grace (its stop signal, then SIGKILL), then removes
  // it. OK when it is already gone.
  Status Stop(const InstanceHandle& handle) override;
  Result<InstanceStatus> Inspect(const InstanceHandle& handle) override;
  Result<InstanceStatus> Wait(const InstanceHandle& handle,
                              std::chrono::milliseconds timeout) override;
  // Inspects the container by id and checks that turnout labelled it, for no other owner (and,
  // when the handle has a spec hash, that the label matches). A container that is gone is
  // kGone, not an error.
  Result<InstanceStatus> Adopt(const InstanceHandle& handle) override;
  // The last lines of the container's stdout, then of its stderr, from the engine; for a
  // container with a memory limit that ended with exit code 137 and no OOMKilled, a last line
  // saying it was probably killed at that limit.
  std::string LogTail(const InstanceHandle& handle, size_t max_lines, size_t max_bytes) override;

  // Streams the container's log to `out`: its last `tail` lines, then new output as the engine
  // gets it (stdout and stderr interleaved as they come, in pieces that need not end lines),
  // until the container stops, `out` returns false or `cancel` holds true (within about a
  // second). Blocks the calling thread meanwhile. NotFound when the container is gone.
  Status FollowLogs(const InstanceHandle& handle, int tail,
                    const std::function<bool(std::string_view)>& out,
                    const std::atomic<bool>& cancel) const;

  // Every container (running or not) that turnout labelled for `service`, on this engine; with
  // options.owner set, only that owner's.
  Result<std::vector<ManagedContainer>> ListManaged(std::string_view service) const;

  // `turnout prune`: removes (with `dry_run`, only reports)
  //   - the stopped containers labelled for `service` whose ids are not in `recorded` (the
  //     container ids of the live instance records); a running container is never touched;
  //   - the images of the revisions that are not kept, except an image that
  //       a kept revision also ran,
  //       any container other than those stopped ones uses (another service's, a foreign one),
  //       carries a tag that is not this service's tag of one of those revisions (ImageFor of
  //       its version): someone else names it,
  //     each kept with the reason. An image is removed by its tags (the last one takes the
  //     image) or, untagged, by its id, never forced: an engine that refuses (a container
  //     created meanwhile) keeps it, with its message. Images no revision recorded are never
  //     looked at. An image already gone is left out.
  // Errors: the engine's, when it cannot list or inspect.
  Result<PruneReport> Prune(std::string_view service, const std::vector<PruneRevision>& revisions,
                            const std::vector<std::string>& recorded, bool dry_run);

 private:
  ContainerPlatform(ContainerPlatformOptions options, container::EngineClient client)
      : options_(std::move(options)), client_(std::move(client)) {}

  // The container as the engine sees it, after checking that turnout labelled it and that it
  // has no other owner. NotFound when it is gone.
  Result<container::ContainerInfo> InspectManaged(const InstanceHandle& handle) const;

  const ContainerPlatformOptions options_;
  const container::EngineClient client_;
};

}  // namespace turnout::platform
