#include "common/clock.h"

namespace turnout {

SystemClock& SystemClock::Get() {
  static SystemClock clock;
  return clock;
}

}  // namespace turnout
