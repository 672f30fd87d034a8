// turnout_container_platform_launch_helper ENGINE_SOCKET IMAGE SERVICE PORT
//
// Plays a daemon that launches one container and is then killed with SIGKILL: launches IMAGE
// with host networking as instance 0 of SERVICE's blue slot on PORT (ulimits nofile and nproc
// set, as the test engines need), prints the encoded handle as one line on stdout, and waits
// until it is killed. Exit 1 (and the error on stderr) if the launch failed.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "container_platform/container_platform.h"

int main(int argc, char** argv) {
  using namespace turnout::platform;
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s ENGINE_SOCKET IMAGE SERVICE PORT\n", argv[0]);
    return 2;
  }
  ContainerPlatformOptions options;
  options.engine = argv[1];
  options.image = argv[2];
  options.pull = PullPolicy::kNever;
  options.nofile = ContainerLimit{1024, 1024};
  options.nproc = ContainerLimit{4096, 4096};
  auto platform = ContainerPlatform::Create(options);
  if (!platform.ok()) {
    std::fprintf(stderr, "%s\n", platform.status().ToString().c_str());
    return 1;
  }
  InstanceSpec spec;
  spec.service = argv[3];
  spec.version = "v1";
  spec.slot = "blue";
  spec.port = static_cast<uint16_t>(std::atoi(argv[4]));
  auto handle = (*platform)->Launch(spec);
  if (!handle.ok()) {
    std::fprintf(stderr, "%s\n", handle.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", EncodeHandle(*handle).c_str());
  std::fflush(stdout);
  while (true) ::pause();
}
