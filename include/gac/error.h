// The one error type for bad input: its message names the problem and is
// printed as is by the CLI, which then exits non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace gac {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace gac
