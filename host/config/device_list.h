// exec.devices / --devices: which GPUs a run drives (host/backends/multi_backend.h).
#pragma once

#include <string>
#include <vector>

namespace gac {

// "all" or a comma-separated list of distinct device numbers, each below
// `count`. Throws gac::Error naming the problem.
std::vector<int> parse_device_list(const std::string& text, int count);
// The syntax alone (for the config key, before devices are known): "" if fine, else why not.
std::string device_list_problem(const std::string& text);

}  // namespace gac
