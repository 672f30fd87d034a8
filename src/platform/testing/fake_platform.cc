#include "platform/testing/fake_platform.h"

#include <signal.h>

#include <algorithm>

#include "common/host_port.h"
#include "platform/log_tail.h"

namespace turnout::platform::testing {

FakePlatform::FakePlatform(const Clock& clock, std::string kind)
    : clock_(clock), kind_(std::move(kind)) {}

Result<InstanceAddress> FakePlatform::AllocateAddress(const AddressRequest& request) {
  if (request.first_port != 0) {
    const int port = request.first_port + request.slot_index * request.replicas + request.instance;
    if (port > 65535) return InvalidArgument("the port does not fit below 65536");
    return InstanceAddress{request.host, static_cast<uint16_t>(port)};
  }
  std::lock_guard lock(mu_);
  while (true) {
    InstanceAddress a{request.host, next_port_++};
    const bool taken =
        std::find(request.in_use.begin(), request.in_use.end(), a.ToString()) !=
            request.in_use.end() ||
        std::any_of(instances_.begin(), instances_.end(), [&](const FakeInstance& i) {
          return i.status.running() && i.handle.address == a.ToString();
        });
    if (!taken) return a;
  }
}

Result<InstanceHandle> FakePlatform::Launch(const InstanceSpec& spec) {
  TURNOUT_RETURN_IF_ERROR(ValidateSpec(spec));
  std::lock_guard lock(mu_);
  ++launches_;
  if (!launch_failures_.empty()) {
    Status error = launch_failures_.front();
    launch_failures_.erase(launch_failures_.begin());
    return error;
  }
  const std::string address = FormatHostPort(spec.host, spec.port);
  for (const auto& i : instances_) {
    if (i.status.running() && i.handle.address == address) {
      return FailedPrecondition("port " + std::to_string(spec.port) +
                                " is already in use on this machine");
    }
  }
  FakeInstance inst;
  inst.spec = spec;
  inst.handle.kind = kind_;
  inst.handle.id = "fake-" + std::to_string(instances_.size() + 1);
  inst.handle.address = address;
  inst.handle.port = spec.port;
  inst.handle.spec_hash = SpecHash(spec);
  inst.handle.stop_signal = spec.stop_signal;
  inst.handle.grace = spec.grace;
  if (on_launch_) on_launch_(inst);
  instances_.push_back(inst);
  return inst.handle;
}

FakeInstance* FakePlatform::ByHandleLocked(const InstanceHandle& handle) {
  for (auto& i : instances_) {
    if (i.handle.id == handle.id) return &i;
  }
  return nullptr;
}

Status FakePlatform::Stop(const InstanceHandle& handle) {
  TURNOUT_RETURN_IF_ERROR(CheckHandleKind(handle, kind_));
  std::lock_guard lock(mu_);
  FakeInstance* i = ByHandleLocked(handle);
  if (i == nullptr || !i->status.running()) return Status::Ok();
  // Like the demo app on its stop signal: it finishes what it does and exits 0.
  i->status = InstanceStatus{InstanceState::kExited, 0, std::nullopt};
  ++i->stops;
  ++stops_;
  return Status::Ok();
}

Result<InstanceStatus> FakePlatform::Inspect(const InstanceHandle& handle) {
  TURNOUT_RETURN_IF_ERROR(CheckHandleKind(handle, kind_));
  std::lock_guard lock(mu_);
  FakeInstance* i = ByHandleLocked(handle);
  if (i == nullptr) return InstanceStatus{InstanceState::kGone, std::nullopt, std::nullopt};
  return i->status;
}

Result<InstanceStatus> FakePlatform::Wait(const InstanceHandle& handle,
                                          std::chrono::milliseconds timeout) {
  TURNOUT_ASSIGN_OR_RETURN(InstanceStatus status, Inspect(handle));
  if (!status.running()) return status;
  // Nothing ends by itself here: the whole timeout passes (by the clock).
  clock_.SleepFor(timeout);
  return Inspect(handle);
}

std::string FakePlatform::LogTail(const InstanceHandle& handle, size_t max_lines,
                                  size_t max_bytes) {
  if (!CheckHandleKind(handle, kind_).ok()) return "";
  std::lock_guard lock(mu_);
  FakeInstance* i = ByHandleLocked(handle);
  if (i == nullptr) return "";
  return TailOfText(i->log, max_lines, max_bytes);
}

Result<InstanceStatus> FakePlatform::Adopt(const InstanceHandle& handle) {
  TURNOUT_RETURN_IF_ERROR(CheckHandleKind(handle, kind_));
  {
    std::lock_guard lock(mu_);
    ++adoptions_;
  }
  return Inspect(handle);
}

void FakePlatform::set_on_launch(std::function<void(FakeInstance&)> on_launch) {
  std::lock_guard lock(mu_);
  on_launch_ = std::move(on_launch);
}

void FakePlatform::FailLaunches(Status error, int count) {
  std::lock_guard lock(mu_);
  for (int n = 0; n < count; ++n) launch_failures_.push_back(error);
}

FakeInstance* FakePlatform::FindLocked(const std::string& who) {
  FakeInstance* last_at = nullptr;
  for (auto& i : instances_) {
    if (i.handle.id == who) return &i;
    if (i.handle.address == who) {
      if (i.status.running()) return &i;
      last_at = &i;
    }
  }
  return last_at;
}

std::optional<FakeInstance> FakePlatform::At(const std::string& address) const {
  std::lock_guard lock(mu_);
  FakeInstance* i = const_cast<FakePlatform*>(this)->FindLocked(address);
  if (i == nullptr) return std::nullopt;
  return *i;
}

std::vector<FakeInstance> FakePlatform::Instances() const {
  std::lock_guard lock(mu_);
  return instances_;
}

bool FakePlatform::SetReady(const std::string& who, bool ready) {
  std::lock_guard lock(mu_);
  FakeInstance* i = FindLocked(who);
  if (i != nullptr) i->ready = ready;
  return i != nullptr;
}

bool FakePlatform::SetLive(const std::string& who, bool live) {
  std::lock_guard lock(mu_);
  FakeInstance* i = FindLocked(who);
  if (i != nullptr) i->live = live;
  return i != nullptr;
}

bool FakePlatform::EndLocked(const std::string& who, InstanceStatus status) {
  FakeInstance* i = FindLocked(who);
  if (i == nullptr || !i->status.running()) return false;
  i->status = status;
  return true;
}

bool FakePlatform::Exit(const std::string& who, int code) {
  std::lock_guard lock(mu_);
  return EndLocked(who, InstanceStatus{InstanceState::kExited, code, std::nullopt});
}

bool FakePlatform::Kill(const std::string& who, int signo) {
  std::lock_guard lock(mu_);
  return EndLocked(who, InstanceStatus{InstanceState::kExited, std::nullopt, signo});
}

bool FakePlatform::OomKill(const std::string& who) {
  std::lock_guard lock(mu_);
  return EndLocked(who, InstanceStatus{InstanceState::kExited, std::nullopt, SIGKILL, true});
}

void FakePlatform::ForEachRunning(const std::function<void(FakeInstance&)>& change) {
  std::lock_guard lock(mu_);
  for (auto& i : instances_) {
    if (i.status.running()) change(i);
  }
}

int FakePlatform::launches() const {
  std::lock_guard lock(mu_);
  return launches_;
}
int FakePlatform::stops() const {
  std::lock_guard lock(mu_);
  return stops_;
}
int FakePlatform::adoptions() const {
  std::lock_guard lock(mu_);
  return adoptions_;
}
int FakePlatform::running() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(std::count_if(instances_.begin(), instances_.end(),
                                        [](const FakeInstance& i) { return i.status.running(); }));
}

}  // namespace turnout::platform::testing

namespace turnout::platform::testing {

void FakePlatform::set_resolve_image(std::function<Result<std::string>(std::string_view)> resolve) {
  std::lock_guard<std::mutex> lock(mu_);
  resolve_image_ = std::move(resolve);
}

int FakePlatform::image_resolutions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return image_resolutions_;
}

Result<std::string> FakePlatform::ResolveImage(std::string_view version,
                                               const std::atomic<bool>* /*interrupt*/) const {
  std::function<Result<std::string>(std::string_view)> resolve;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++image_resolutions_;
    resolve = resolve_image_;
  }
  if (!resolve) return std::string();
  return resolve(version);
}

}  // namespace turnout::platform::testing
