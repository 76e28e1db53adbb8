// A run's host memory, estimated before anything large is allocated, so that
// a model too large for the machine is one clear refusal instead of the OOM
// killer or std::bad_alloc halfway through.
#pragma once

#include <cstdint>

#include "gac/experiment.h"

namespace gac {

// Bytes the CPU backend allocates to evaluate `model` on `threads` threads:
// each thread's parameter, activation and logit scratch for up to 16 draws
// at a time (the widest SIMD kernel), for the search or for test scoring,
// plus one stored weights vector.
uint64_t cpu_run_bytes(const ModelSpec& model, int threads, uint64_t n_train, uint64_t n_test);

// Memory this process may still take: the least of /proc/meminfo's
// MemAvailable and the cgroup's limit less its usage; 0 when unknown.
uint64_t available_memory_bytes();

// Throws gac::Error naming the estimate, the memory available and what to
// change when running `ex` on the CPU backend with `threads` threads (0: all
// cores) needs more than `available` bytes (0: unknown, no check).
void check_cpu_memory(const Experiment& ex, int threads, uint64_t available = available_memory_bytes());

}  // namespace gac
