#include "common/clock.h"

#include <thread>

namespace turnout {

void SystemClock::SleepFor(Duration d) const {
  if (d > Duration::zero()) std::this_thread::sleep_for(d);
}

SystemClock& SystemClock::Get() {
  static SystemClock clock;
  return clock;
}

}  // namespace turnout
