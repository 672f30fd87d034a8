#include "container_platform/container_platform.h"

#include <signal.h>
#include <string.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <random>
#include <set>

#include "common/host_port.h"
#include "common/text.h"
#include "platform/command.h"
#include "platform/log_tail.h"
#include "platform/ports.h"

namespace turnout::platform {
namespace {

using container::ContainerInfo;
using container::Labels;

constexpr std::string_view kServiceLabel = "turnout.service";
constexpr std::string_view kSlotLabel = "turnout.slot";
constexpr std::string_view kRevisionLabel = "turnout.revision";
constexpr std::string_view kInstanceLabel = "turnout.instance";
constexpr std::string_view kSpecHashLabel = "turnout.spec-hash";
constexpr std::string_view kAddressLabel = "turnout.address";
constexpr std::string_view kStopSignalLabel = "turnout.stop-signal";
constexpr std::string_view kGraceLabel = "turnout.grace-ms";

std::string Label(const Labels& labels, std::string_view key) {
  auto it = labels.find(std::string(key));
  return it == labels.end() ? "" : it->second;
}

// The engine's name for a signal number: "SIGTERM".
std::string SignalName(int signo) {
  const char* abbrev = sigabbrev_np(signo);
  return abbrev == nullptr ? std::to_string(signo) : "SIG" + std::string(abbrev);
}

std::string ShortUnique() {
  std::random_device rd;
  char out[9];
  std::snprintf(out, sizeof(out), "%08x", static_cast<unsigned>(rd()));
  return out;
}

// Container names take [A-Za-z0-9_.-]; service names may also hold '+'.
std::string NamePart(std::string s) {
  std::replace(s.begin(), s.end(), '+', '_');
  return s;
}

std::optional<int64_t> LabelNumber(const Labels& labels, std::string_view key, int64_t max) {
  Result<int64_t> v = ParseWholeNumber(Label(labels, key), 0, max);
  return v.ok() ? std::optional<int64_t>(*v) : std::nullopt;
}

std::vector<std::string> Expand(const std::vector<std::string>& words, const InstanceSpec& spec) {
  std::vector<std::string> out;
  for (const auto& w : words) out.push_back(SubstitutePlaceholders(w, spec));
  return out;
}

InstanceStatus StatusOf(const ContainerInfo& info) {
  InstanceStatus status;
  if (info.state.running) {
    status.state = InstanceState::kRunning;
    return status;
  }
  status.state = InstanceState::kExited;
  const int code = info.state.exit_code;
  if (info.state.oom_killed) {
    status.oom_killed = true;
    status.term_signal = SIGKILL;
  } else if (code > 128 && code < 128 + NSIG) {
    status.term_signal = code - 128;  // engines report a signal n as exit code 128+n
  } else {
    status.exit_code = code;
  }
  return status;
}

Result<InstanceHandle> HandleFromLabels(const std::string& id, const Labels& labels) {
  InstanceHandle h;
  h.kind = std::string(kContainerKind);
  h.id = id;
  h.address = Label(labels, kAddressLabel);
  h.spec_hash = Label(labels, kSpecHashLabel);
  if (size_t colon = h.address.rfind(':'); colon != std::string::npos) {
    Result<int64_t> port =
        ParseWholeNumber(std::string_view(h.address).substr(colon + 1), 1, 65535);
    if (port.ok()) h.port = static_cast<uint16_t>(*port);
  }
  if (auto sig = LabelNumber(labels, kStopSignalLabel, NSIG - 1); sig && *sig > 0) {
    h.stop_signal = static_cast<int>(*sig);
  }
  if (auto grace = LabelNumber(labels, kGraceLabel, INT64_MAX)) {
    h.grace = std::chrono::milliseconds(*grace);
  }
  return h;
}

}  // namespace

Status ValidateContainerOptions(const ContainerPlatformOptions& o) {
  if (o.image.empty())
    return InvalidArgument("platform.image is required (e.g. \"app:{version}\")");
  if (o.network == ContainerNetwork::kBridge && o.port == 0) {
    return InvalidArgument(
        "platform.port is required with network: bridge (the port the app listens on inside "
        "the container)");
  }
  if (o.nofile.has_value() != o.nproc.has_value()) {
    return InvalidArgument(
        "platform.ulimits: give nofile and nproc together (an explicit list replaces all of the "
        "engine's defaults)");
  }
  for (const auto* limit : {&o.nofile, &o.nproc}) {
    if (*limit && ((*limit)->soft < 0 || (*limit)->hard < (*limit)->soft)) {
      return InvalidArgument("platform.ulimits: soft must be >= 0 and <= hard");
    }
  }
  if (o.memory_bytes < 0) return InvalidArgument("platform.memory must not be negative");
  if (o.cpus < 0) return InvalidArgument("platform.cpus must not be negative");
  for (const auto& m : o.mounts) {
    if (m.source.empty() || m.target.empty() || m.source.find(':') != std::string::npos ||
        m.target.find(':') != std::string::npos) {
      return InvalidArgument("platform.mounts: \"" + m.source + ":" + m.target +
                             "\" needs a source and a target, neither with ':'");
    }
  }
  for (const auto& [name, value] : o.env) {
    if (name.empty() || name.find('=') != std::string::npos) {
      return InvalidArgument("platform.env: variable name '" + name + "' is not valid");
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<ContainerPlatform>> ContainerPlatform::Create(
    ContainerPlatformOptions options) {
  TURNOUT_RETURN_IF_ERROR(ValidateContainerOptions(options));
  TURNOUT_ASSIGN_OR_RETURN(container::EngineClient client,
                           container::EngineClient::Connect(
                               {.address = options.engine, .timeout = options.engine_timeout}));
  return std::unique_ptr<ContainerPlatform>(
      new ContainerPlatform(std::move(options), std::move(client)));
}

std::string ContainerPlatform::ImageFor(std::string_view version) const {
  InstanceSpec spec;
  spec.version = std::string(version);
  return SubstitutePlaceholders(options_.image, spec);
}

Result<std::string> ContainerPlatform::ResolveImage(std::string_view version,
                                                    const std::atomic<bool>* interrupt) const {
  const std::string image = ImageFor(version);
  auto missing = [&](const Status& why) {
    return NotFound("image " + image + " is not on the container engine at " +
                    client_.socket_path() + " (" + why.message() + "): " +
                    (options_.pull == PullPolicy::kNever
                         ? "pull it there, or set platform.pull to if_not_present"
                         : "check the image name and tag"));
  };
  // Inspecting an image never involves a registry: Unavailable there is the engine itself.
  auto engine_gone = [&](const Status& why) {
    return Unavailable("the container engine at " + client_.socket_path() + " does not answer (" +
                       why.message() +
                       "): start it (dockerd, or podman system service), or set platform.engine "
                       "to the socket it listens on");
  };
  if (options_.pull != PullPolicy::kAlways) {
    Result<container::ImageInfo> local = client_.ImageInspect(image);
    if (local.ok()) return local->id;
    if (local.status().code() == StatusCode::kUnavailable) return engine_gone(local.status());
    if (local.status().code() != StatusCode::kNotFound) return local.status();
    if (options_.pull == PullPolicy::kNever) return missing(local.status());
  }
  if (Status pulled = client_.ImagePull(image, {}, std::chrono::minutes(10), interrupt);
      !pulled.ok()) {
    if (pulled.code() == StatusCode::kNotFound) return missing(pulled);
    return pulled;
  }
  Result<container::ImageInfo> info = client_.ImageInspect(image);
  if (!info.ok()) {
    return info.status().code() == StatusCode::kNotFound ? missing(info.status()) : info.status();
  }
  return info->id;
}

Result<InstanceAddress> ContainerPlatform::AllocateAddress(const AddressRequest& request) {
  // Published ports and host-networked apps are both reached on loopback.
  return FreeAddressNotIn("127.0.0.1", request.in_use);
}

Result<InstanceHandle> ContainerPlatform::Launch(const InstanceSpec& spec) {
  {
    // The command is the image's (or the options'): only the rest of the spec is checked.
    InstanceSpec checked = spec;
    checked.command = "-";
    TURNOUT_RETURN_IF_ERROR(ValidateSpec(checked));
  }
  if (spec.port == 0) return InvalidArgument("the spec has no port (AllocateAddress first)");
  std::string image = spec.image;
  if (image.empty()) {
    TURNOUT_ASSIGN_OR_RETURN(image, ResolveImage(spec.version));
  }
  TURNOUT_RETURN_IF_ERROR(CheckPortFree(spec.port));

  const bool host = options_.network == ContainerNetwork::kHost;
  const uint16_t app_port = host ? spec.port : options_.port;
  const std::string address = FormatHostPort("127.0.0.1", spec.port);
  const std::string spec_hash = SpecHash(spec);

  container::ContainerSpec c;
  c.name = "turnout-" + NamePart(spec.service) + "-" + spec.slot + "-" +
           std::to_string(spec.instance) + "-" + ShortUnique();
  c.image = image;
  {
    InstanceSpec inside = spec;  // {port} in the command is the port the app listens on
    inside.port = app_port;
    c.entrypoint = Expand(options_.command, inside);
    c.cmd = Expand(options_.args, inside);
  }
  for (const auto& [name, value] : options_.env) c.env.push_back(name + "=" + value);
  for (const auto& [name, value] : spec.env) c.env.push_back(name + "=" + value);
  for (const auto& [name, value] : spec.secret_env) c.env.push_back(name + "=" + value);
  c.env.push_back("TURNOUT_VERSION=" + spec.version);
  c.env.push_back("TURNOUT_SLOT=" + spec.slot);
  c.env.push_back("TURNOUT_INSTANCE=" + std::to_string(spec.instance));
  c.env.push_back("TURNOUT_PORT=" + std::to_string(app_port));
  c.env.push_back("PORT=" + std::to_string(app_port));
  c.labels = {
      {std::string(kManagedLabel), "true"},
      {std::string(kServiceLabel), spec.service},
      {std::string(kSlotLabel), spec.slot},
      {std::string(kRevisionLabel), spec.version},
      {std::string(kInstanceLabel), std::to_string(spec.instance)},
      {std::string(kSpecHashLabel), spec_hash},
      {std::string(kAddressLabel), address},
      {std::string(kStopSignalLabel), std::to_string(spec.stop_signal)},
      {std::string(kGraceLabel), std::to_string(spec.grace.count())},
  };
  if (!options_.owner.empty()) c.labels[std::string(kOwnerLabel)] = options_.owner;
  c.user = options_.user;
  if (host) {
    c.network_mode = "host";
  } else {
    c.network_mode = "bridge";
    c.ports.push_back({.container_port = options_.port, .host_port = spec.port});
  }
  c.memory_bytes = options_.memory_bytes;
  c.nano_cpus = static_cast<int64_t>(std::llround(options_.cpus * 1e9));
  for (const auto& m : options_.mounts) {
    c.binds.push_back(m.source + ":" + m.target + (m.read_only ? ":ro" : ""));
  }
  if (options_.nofile && options_.nproc) {
    c.ulimits = {{"nofile", options_.nofile->soft, options_.nofile->hard},
                 {"nproc", options_.nproc->soft, options_.nproc->hard}};
  }
  c.stop_signal = SignalName(spec.stop_signal);
  // The engine counts whole seconds; never less than the grace asked for.
  c.stop_timeout_s = static_cast<int>((spec.grace.count() + 999) / 1000);

  Result<std::string> id = client_.ContainerCreate(c);
  if (!id.ok()) {
    if (id.status().code() == StatusCode::kNotFound) {
      return NotFound("image " + image + " is not on the container engine at " +
                      client_.socket_path() + ": " + id.status().message());
    }
    return id.status();
  }
  if (Status started = client_.ContainerStart(*id); !started.ok()) {
    (void)client_.ContainerRemove(*id, /*force=*/true);
    if (started.code() == StatusCode::kAlreadyExists) {
      return FailedPrecondition("port " + std::to_string(spec.port) +
                                " is already in use: the container of " + spec.service + " " +
                                spec.slot + "-" + std::to_string(spec.instance) +
                                " could not start (" + started.message() + ")");
    }
    return started;
  }

  InstanceHandle handle;
  handle.kind = std::string(kContainerKind);
  handle.id = *id;
  handle.address = address;
  handle.port = spec.port;
  handle.spec_hash = spec_hash;
  handle.stop_signal = spec.stop_signal;
  handle.grace = spec.grace;
  return handle;
}

Result<ContainerInfo> ContainerPlatform::InspectManaged(const InstanceHandle& handle) const {
  TURNOUT_RETURN_IF_ERROR(CheckHandleKind(handle, kContainerKind));
  TURNOUT_ASSIGN_OR_RETURN(ContainerInfo info, client_.ContainerInspect(handle.id));
  if (Label(info.labels, kManagedLabel) != "true") {
    return FailedPrecondition("container " + info.name + " (" + handle.id +
                              ") does not carry turnout's label " + std::string(kManagedLabel) +
                              "=true: turnout did not create it and leaves it alone");
  }
  const std::string owner = Label(info.labels, kOwnerLabel);
  if (!options_.owner.empty() && !owner.empty() && owner != options_.owner) {
    return FailedPrecondition("container " + info.name + " (" + handle.id +
                              ") belongs to the turnoutd of another state directory (" +
                              std::string(kOwnerLabel) + "=" + owner + ", this one is " +
                              options_.owner + ") and is left alone");
  }
  return info;
}

Status ContainerPlatform::Stop(const InstanceHandle& handle) {
  Result<ContainerInfo> info = InspectManaged(handle);
  if (!info.ok()) {
    return info.status().code() == StatusCode::kNotFound ? Status::Ok() : info.status();
  }
  const auto grace = std::chrono::ceil<std::chrono::seconds>(handle.grace);
  Status stopped = client_.ContainerStop(handle.id, grace);
  if (!stopped.ok() && stopped.code() != StatusCode::kNotFound) return stopped;
  Status removed = client_.ContainerRemove(handle.id, /*force=*/true);
  if (!removed.ok() && removed.code() != StatusCode::kNotFound) return removed;
  return Status::Ok();
}

Result<InstanceStatus> ContainerPlatform::Inspect(const InstanceHandle& handle) {
  TURNOUT_RETURN_IF_ERROR(CheckHandleKind(handle, kContainerKind));
  Result<ContainerInfo> info = client_.ContainerInspect(handle.id);
  if (!info.ok()) {
    if (info.status().code() == StatusCode::kNotFound) return InstanceStatus{};  // kGone
    return info.status();
  }
  return StatusOf(*info);
}

Result<InstanceStatus> ContainerPlatform::Wait(const InstanceHandle& handle,
                                               std::chrono::milliseconds timeout) {
  TURNOUT_RETURN_IF_ERROR(CheckHandleKind(handle, kContainerKind));
  TURNOUT_ASSIGN_OR_RETURN(InstanceStatus now, Inspect(handle));
  if (!now.running() || timeout.count() <= 0) return now;
  // The engine blocks until the container is not running; a timeout (or a gone container)
  // leaves the answer to Inspect.
  (void)client_.ContainerWait(handle.id, timeout);
  return Inspect(handle);
}

Result<InstanceStatus> ContainerPlatform::Adopt(const InstanceHandle& handle) {
  Result<ContainerInfo> info = InspectManaged(handle);
  if (!info.ok()) {
    if (info.status().code() == StatusCode::kNotFound) return InstanceStatus{};  // kGone
    return info.status();
  }
  const std::string hash = Label(info->labels, kSpecHashLabel);
  if (!handle.spec_hash.empty() && hash != handle.spec_hash) {
    return FailedPrecondition("container " + info->name + " carries spec hash " + hash +
                              ", the handle " + handle.spec_hash +
                              ": it is not the instance the handle names");
  }
  return StatusOf(*info);
}

std::string ContainerPlatform::LogTail(const InstanceHandle& handle, size_t max_lines,
                                       size_t max_bytes) {
  if (!CheckHandleKind(handle, kContainerKind).ok() || max_lines == 0) return "";
  const int n = static_cast<int>(std::min<size_t>(max_lines, 100000));
  container::LogOptions options;
  options.tail = n;
  Result<container::Logs> logs = client_.ContainerLogs(handle.id, options);
  if (!logs.ok()) return "";
  // stdout's lines, then stderr's (the engine keeps the two apart), where errors usually are.
  std::string text = container::LastLines(logs->out, n);
  std::string err = container::LastLines(logs->err, n);
  if (!text.empty() && !err.empty()) text += "\n";
  text += err;
  // Podman with runc on cgroup v1 reports a container killed at its memory limit as exit code
  // 137 without OOMKilled, so its status reads as a plain SIGKILL: say what is likely here, last,
  // where the deployment's reason quotes it.
  if (options_.memory_bytes > 0) {
    Result<ContainerInfo> info = client_.ContainerInspect(handle.id);
    if (info.ok() && !info->state.running && info->state.exit_code == 137 &&
        !info->state.oom_killed) {
      const int64_t mib = options_.memory_bytes / (1024 * 1024);
      const std::string limit = options_.memory_bytes % (1024 * 1024) == 0
                                    ? std::to_string(mib) + " MiB"
                                    : std::to_string(options_.memory_bytes) + " bytes";
      if (!text.empty()) text += "\n";
      text += "exit code 137 with a memory limit of " + limit +
              ": probably killed at it (raise platform.memory or find the leak)";
    }
  }
  return TailOfText(text, max_lines, max_bytes);
}

Status ContainerPlatform::FollowLogs(const InstanceHandle& handle, int tail,
                                     const std::function<bool(std::string_view)>& out,
                                     const std::atomic<bool>& cancel) const {
  TURNOUT_RETURN_IF_ERROR(CheckHandleKind(handle, kContainerKind));
  container::LogOptions options;
  options.tail = std::max(0, tail);
  options.follow = true;
  options.on_output = [&out](container::LogStream, std::string_view piece) { return out(piece); };
  options.cancel = &cancel;
  return client_.ContainerLogs(handle.id, options).status();
}

Result<std::vector<ManagedContainer>> ContainerPlatform::ListManaged(
    std::string_view service) const {
  std::vector<std::string> filters = {std::string(kManagedLabel) + "=true",
                                      std::string(kServiceLabel) + "=" + std::string(service)};
  if (!options_.owner.empty()) filters.push_back(std::string(kOwnerLabel) + "=" + options_.owner);
  TURNOUT_ASSIGN_OR_RETURN(std::vector<container::ContainerSummary> list,
                           client_.ContainerList(filters));
  std::vector<ManagedContainer> out;
  for (const auto& c : list) {
    // The engine filtered; check again, so that no other container is ever handed out.
    if (Label(c.labels, kManagedLabel) != "true" || Label(c.labels, kServiceLabel) != service ||
        (!options_.owner.empty() && Label(c.labels, kOwnerLabel) != options_.owner)) {
      continue;
    }
    ManagedContainer m;
    TURNOUT_ASSIGN_OR_RETURN(m.handle, HandleFromLabels(c.id, c.labels));
    m.name = c.names.empty() ? "" : c.names.front();
    m.slot = Label(c.labels, kSlotLabel);
    m.revision = Label(c.labels, kRevisionLabel);
    m.instance = static_cast<int>(LabelNumber(c.labels, kInstanceLabel, INT32_MAX).value_or(0));
    m.state = c.state;
    m.owner = Label(c.labels, kOwnerLabel);
    out.push_back(std::move(m));
  }
  return out;
}

namespace {

// Image ids compare without the "sha256:" that some engines' lists leave out.
std::string_view BareImageId(std::string_view id) {
  constexpr std::string_view kPrefix = "sha256:";
  if (id.substr(0, kPrefix.size()) == kPrefix) id.remove_prefix(kPrefix.size());
  return id;
}

bool IsStopped(std::string_view state) {
  return state == "exited" || state == "created" || state == "dead" || state == "stopped" ||
         state == "configured";
}

}  // namespace

Result<PruneReport> ContainerPlatform::Prune(std::string_view service,
                                             const std::vector<PruneRevision>& revisions,
                                             const std::vector<std::string>& recorded,
                                             bool dry_run) {
  PruneReport report;
  report.dry_run = dry_run;

  // The stopped containers of the service that nothing records.
  TURNOUT_ASSIGN_OR_RETURN(std::vector<ManagedContainer> managed, ListManaged(service));
  std::set<std::string> stray_ids;
  for (ManagedContainer& c : managed) {
    if (!IsStopped(c.state)) continue;
    if (std::find(recorded.begin(), recorded.end(), c.handle.id) != recorded.end()) continue;
    PruneContainer out{c.handle.id, c.name, c.revision, c.state, true, ""};
    if (!dry_run) {
      c.handle.grace = std::chrono::milliseconds(0);
      if (Status s = Stop(c.handle); !s.ok()) {
        out.removed = false;
        out.error = s.message();
      }
    }
    if (out.removed) stray_ids.insert(c.handle.id);
    report.containers.push_back(std::move(out));
  }

  // Every other container on the engine and the image it runs.
  TURNOUT_ASSIGN_OR_RETURN(std::vector<container::ContainerSummary> all, client_.ContainerList({}));
  std::erase_if(all, [&](const container::ContainerSummary& c) { return stray_ids.count(c.id); });

  std::set<std::string, std::less<>> kept_ids;
  for (const PruneRevision& r : revisions) {
    if (r.keep && !r.image.empty()) kept_ids.insert(std::string(BareImageId(r.image)));
  }
  // The images of the revisions that are not kept, in revision order, each once.
  std::vector<PruneImage> candidates;
  for (const PruneRevision& r : revisions) {
    if (r.keep || r.image.empty() || kept_ids.count(BareImageId(r.image))) continue;
    auto it = std::find_if(candidates.begin(), candidates.end(), [&](const PruneImage& i) {
      return BareImageId(i.id) == BareImageId(r.image);
    });
    if (it == candidates.end()) {
      candidates.push_back(PruneImage{});
      it = std::prev(candidates.end());
      it->id = r.image;
    }
    it->revisions.push_back(r.revision);
    it->versions.push_back(r.version);
  }

  std::vector<PruneImage> kept;
  for (PruneImage& image : candidates) {
    Result<container::ImageInfo> info = client_.ImageInspect(image.id);
    if (!info.ok() && info.status().code() == StatusCode::kNotFound) continue;  // gone already
    if (!info.ok()) return info.status();
    image.tags = info->repo_tags;
    image.bytes = info->size;
    std::set<std::string> own;
    for (const std::string& v : image.versions) own.insert(ImageFor(v));
    for (const auto& c : all) {
      const bool by_id = !c.image_id.empty() && BareImageId(c.image_id) == BareImageId(image.id);
      const bool by_name =
          BareImageId(c.image) == BareImageId(image.id) ||
          std::find(image.tags.begin(), image.tags.end(), c.image) != image.tags.end();
      if (by_id || by_name) {
        image.kept_because =
            "used by container " + (c.names.empty() ? c.id.substr(0, 12) : c.names.front());
        break;
      }
    }
    if (image.kept_because.empty()) {
      for (const std::string& tag : image.tags) {
        if (!own.count(tag)) {
          image.kept_because = "also tagged " + tag + ", which turnout did not record";
          break;
        }
      }
    }
    if (image.kept_because.empty() && !dry_run) {
      Status removed = Status::Ok();
      for (const std::string& tag : image.tags) {
        removed = client_.ImageRemove(tag);
        if (!removed.ok()) break;
      }
      if (removed.ok()) {
        Result<container::ImageInfo> still = client_.ImageInspect(image.id);
        if (still.ok()) removed = client_.ImageRemove(image.id);
      }
      if (!removed.ok()) image.kept_because = "the engine refused: " + removed.message();
    }
    image.removed = image.kept_because.empty();
    if (image.removed) {
      report.freed_bytes += image.bytes;
      report.images.push_back(std::move(image));
    } else {
      kept.push_back(std::move(image));
    }
  }
  for (PruneImage& image : kept) report.images.push_back(std::move(image));
  return report;
}

}  // namespace turnout::platform
