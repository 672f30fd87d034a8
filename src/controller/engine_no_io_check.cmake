# The engine does no I/O of its own (engine.h): it reaches instances, probes, commands, time and
# pauses only through its roles. Fails when one of its sources includes or calls a mechanism.
# Run as: cmake -DSOURCES="a.cc;b.h" -P engine_no_io_check.cmake
set(forbidden
  "<sys/socket.h>" "<netinet/" "<arpa/" "<unistd.h>" "<poll.h>" "<thread>" "<fstream>"
  "<curl/" "<spawn.h>" "controller/http_probe.h" "platform/process_platform.h"
  "platform/ports.h" "container_platform/" "container/engine_client.h" "HttpProbe("
  "RunCommand(" "ReadLogTail(" "FreePort(" "FreeAddressNotIn(" "CheckPortFree("
  "sleep_for" "sleep_until" "::socket(" "::bind(" "::connect(" "posix_spawn" "fork(" "popen("
  "fopen(" "ifstream" "steady_clock::now" "system_clock::now")
set(found "")
foreach(source IN LISTS SOURCES)
  file(READ "${source}" text)
  foreach(pattern IN LISTS forbidden)
    string(FIND "${text}" "${pattern}" at)
    if(NOT at EQUAL -1)
      list(APPEND found "${source}: ${pattern}")
    endif()
  endforeach()
endforeach()
if(found)
  list(JOIN found "\n  " lines)
  message(FATAL_ERROR "the engine does I/O of its own; use its roles (Platform, Prober, "
                      "CommandRunner, Clock) instead:\n  ${lines}")
endif()
list(LENGTH SOURCES count)
message(STATUS "engine: no I/O mechanism in ${count} source(s)")
