// turnout_platform_launch_helper LOG_DIR PORT COMMAND
//
// Plays a daemon that launches one instance and is then killed with SIGKILL: launches COMMAND
// as service "helper", slot "blue", instance 0, prints the encoded handle as one line on
// stdout, and waits until it is killed. Exit 1 (and the error on stderr) if the launch failed.
// It closes its stdin first, as a daemon might, so that the log file gets descriptor 0.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "platform/process_platform.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s LOG_DIR PORT COMMAND\n", argv[0]);
    return 2;
  }
  turnout::platform::InstanceSpec spec;
  spec.service = "helper";
  spec.version = "v1";
  spec.slot = "blue";
  spec.log_dir = argv[1];
  spec.port = static_cast<uint16_t>(std::atoi(argv[2]));
  spec.command = argv[3];
  ::close(STDIN_FILENO);
  turnout::platform::ProcessPlatform platform;
  auto handle = platform.Launch(spec);
  if (!handle.ok()) {
    std::fprintf(stderr, "%s\n", handle.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", turnout::platform::EncodeHandle(*handle).c_str());
  std::fflush(stdout);
  while (true) ::pause();
}
