#include "gac/dataset.h"
#include "gac/philox.h"

namespace gac {

uint64_t class_choice_seed(uint64_t seed) { return splitmix64(splitmix64(seed) ^ 0xC1A55E5ull); }

uint64_t data_seed(uint64_t seed, int n, int repeat) {
  return splitmix64(splitmix64(splitmix64(seed) ^ 0xDA7Aull) ^ (static_cast<uint64_t>(n) << 32 | static_cast<uint32_t>(repeat)));
}

}  // namespace gac
