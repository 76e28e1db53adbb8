// Several devices behind one Backend (`gac run --devices all|0,2,...`): each
// evaluate() range is dealt out in contiguous sub-ranges, one per device,
// sized by each device's measured speed; the devices run at once, each from
// a host thread of its own, and their hits are concatenated in draw order.
// Draws are a pure function of their index, so the run loop and the store
// see exactly what one device (or the CPU) gives, however the range is split.
// score_test deals the models out the same way. A device that fails makes
// the call throw one error naming it; the run loop has committed nothing of
// the failed call, so nothing committed is lost.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gac/backend.h"
#include "host/config/device_list.h"  // parse_device_list

namespace gac {

// Makes one device's backend. It is called on the host thread that drives
// that device from then on (a CUDA device made current there stays so).
using BackendFactory = std::function<std::unique_ptr<Backend>()>;

// `weights`: the devices' starting shares of a range (default: equal); after
// each call a device's share follows its measured draws per second.
std::unique_ptr<Backend> make_multi_backend(std::vector<BackendFactory> devices, std::vector<double> weights = {});

}  // namespace gac
