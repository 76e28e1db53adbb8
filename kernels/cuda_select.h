// CUB's DeviceSelect::Flagged for kernels/cuda_device.cu (see the Device
// interface's select_indices).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace gac {

size_t cuda_select_temp_bytes(uint32_t items);  // scratch for up to `items` items
void cuda_select_indices(void* temp, size_t temp_bytes, const uint8_t* flags, uint32_t count, uint32_t* out,
                         uint32_t* n_out, cudaStream_t stream);
}  // namespace gac
