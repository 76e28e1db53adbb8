// Nested sampling on the CPU (include/gac/nested.h): the bodies a range of
// pairs touches, each evaluated once on the training set, then their heads
// tried on the features, both spread over every core.
#pragma once

#include <vector>

#include "gac/backend.h"
#include "host/backends/cpu_nested_simd.h"

namespace gac {

// The nested kernels of the plain kernel `simd` (nullptr: the scalar reference).
const NestedSimdKernel* nested_kernel_for(const SimdKernel* simd);

// Checks pairs [first, first + count) of `task` (prior.heads > 1) as
// CpuBackend::evaluate checks draws: perfect pairs appended to `hits` in
// pair order. Examples counted: n per body touched, and each head's up to
// its first miss (all n without early rejection). `simd` null: the scalar
// reference of kernels/nested.h.
EvalCounts evaluate_nested(const StreamTask& task, const NestedSimdKernel* simd, int threads, uint64_t first,
                           uint64_t count, std::vector<Hit>& hits);

}  // namespace gac
