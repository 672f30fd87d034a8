// Compiled by the thread-safety check (src/common/CMakeLists.txt) with -Wthread-safety -Werror:
// with TURNOUT_MISUSE defined it must NOT compile (a guarded member read without its mutex);
// without it, it must. This proves the clang presets really check the annotations.

#include "common/mutex.h"

namespace turnout {

class Counter {
 public:
  void Add() {
    MutexLock lock(mu_);
    ++count_;
  }
  int Read() {
#ifdef TURNOUT_MISUSE
    return count_;
#else
    MutexLock lock(mu_);
    return count_;
#endif
  }

 private:
  Mutex mu_;
  int count_ TURNOUT_GUARDED_BY(mu_) = 0;
};

int Use() {
  Counter c;
  c.Add();
  return c.Read();
}

}  // namespace turnout
