// The loss a draw is checked with: cross-entropy of the normalized logits
// (the paper's: logits divided by the product of the layers' weight norms)
// or of the raw logits. Shared by the config, the backends and the kernels.
#pragma once

#include <cstdint>

namespace gac {

enum class LossKind : int32_t { normalized, raw };

}  // namespace gac
