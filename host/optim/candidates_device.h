// The searches' candidate evaluator on a device (kernels/device.h): the CUDA
// GPU, or the emulated device in the tests. Equal to the CPU's evaluator
// (host/optim/candidates.h) bit for bit.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "host/optim/candidates.h"
#include "kernels/device.h"

namespace gac {

// Scores batches of up to `max_count` candidates of `task`, whose training
// set it keeps resident on `device`. Throws gac::Error naming
// optimizer.budget, before any work, when such a batch does not fit the
// device's memory. `task` and `device` must outlive the evaluator.
std::unique_ptr<CandidateEvaluator> make_device_candidate_evaluator(const StreamTask& task, Device& device,
                                                                    int64_t max_count);

#if defined(GAC_HAVE_CUDA)
// CUDA device 0 (kernels/cuda_device.cu); nullptr when none is usable, with the reason.
std::unique_ptr<Device> make_cuda_device(std::string* why_not);
#endif

}  // namespace gac
