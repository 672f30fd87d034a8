// Clang's thread-safety annotations (-Wthread-safety), so that the compiler checks which mutex
// guards which member. Under other compilers they expand to nothing.
//
//   common::Mutex mu_;
//   int count_ TURNOUT_GUARDED_BY(mu_);
//   void AddLocked() TURNOUT_REQUIRES(mu_);
//
// The clang presets (asan, fuzz, tsan) build with -Wthread-safety and -Werror, so reading
// `count_` without holding `mu_` does not compile there. See common/mutex.h.

#pragma once

#if defined(__clang__)
#define TURNOUT_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define TURNOUT_THREAD_ANNOTATION(x)
#endif

// The member is read and written only with the given capability (mutex) held.
#define TURNOUT_GUARDED_BY(x) TURNOUT_THREAD_ANNOTATION(guarded_by(x))
// The data the pointer points to is guarded by the given capability.
#define TURNOUT_PT_GUARDED_BY(x) TURNOUT_THREAD_ANNOTATION(pt_guarded_by(x))
// The caller must hold the capabilities.
#define TURNOUT_REQUIRES(...) TURNOUT_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
// The caller must not hold the capabilities (the function takes them itself).
#define TURNOUT_EXCLUDES(...) TURNOUT_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// The function acquires / releases the capabilities.
#define TURNOUT_ACQUIRE(...) TURNOUT_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define TURNOUT_RELEASE(...) TURNOUT_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
// A type that is a capability (a mutex), and an RAII type that holds one for its lifetime.
#define TURNOUT_CAPABILITY(name) TURNOUT_THREAD_ANNOTATION(capability(name))
#define TURNOUT_SCOPED_CAPABILITY TURNOUT_THREAD_ANNOTATION(scoped_lockable)
// Turns the analysis off for one function; say why beside each use.
#define TURNOUT_NO_THREAD_SAFETY_ANALYSIS TURNOUT_THREAD_ANNOTATION(no_thread_safety_analysis)
