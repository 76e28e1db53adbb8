// The compaction between example groups and of a launch's hits: CUB's
// DeviceSelect::Flagged. Its own file because CUB's kernels are compiled
// without the spill checks gac's kernels get (CMakeLists.txt).
#include <cub/device/device_select.cuh>
#include <thrust/iterator/counting_iterator.h>

#include "kernels/cuda_check.h"
#include "kernels/cuda_select.h"

namespace gac {

size_t cuda_select_temp_bytes(uint32_t items) {
  size_t bytes = 0;
  GAC_CUDA_CHECK(cub::DeviceSelect::Flagged(nullptr, bytes, thrust::counting_iterator<uint32_t>(0),
                                            static_cast<const uint8_t*>(nullptr), static_cast<uint32_t*>(nullptr),
                                            static_cast<uint32_t*>(nullptr), static_cast<int64_t>(items)));
  return bytes;
}

void cuda_select_indices(void* temp, size_t temp_bytes, const uint8_t* flags, uint32_t count, uint32_t* out,
                         uint32_t* n_out, cudaStream_t stream) {
  GAC_CUDA_CHECK(cub::DeviceSelect::Flagged(temp, temp_bytes, thrust::counting_iterator<uint32_t>(0), flags, out,
                                            n_out, static_cast<int64_t>(count), stream));
}

}  // namespace gac
