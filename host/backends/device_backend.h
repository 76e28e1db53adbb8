// The device backend (host/backends/device_backend.cpp): the Backend
// contract on any Device (kernels/device.h), and what the tests ask of a
// device directly.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gac/backend.h"
#include "kernels/device.h"

namespace gac {

// Where the block kernels keep a draw's parameters.
enum class ImagePlace { automatic, shared, global };

struct DeviceBackendOptions {
  std::string name = "cuda";
  ImagePlace image = ImagePlace::automatic;  // shared: whenever it fits
  uint32_t max_launch = 1u << 22;  // draws per launch (slot indices are 32-bit; launches stay short)
  size_t memory_cap = 0;           // >0: launch buffers beyond this many bytes (both together) count as not fitting
};

std::unique_ptr<Backend> make_device_backend(std::unique_ptr<Device> device, DeviceBackendOptions options = {});

// Every step's output (block_forward's trace) of the model with `params` on
// each of the n examples X, computed on the device: [n][block_trace_floats].
std::vector<float> device_trace_layers(Device& device, const ModelSpec& m, const std::vector<float>& params,
                                       const std::vector<float>& X, int n);

// Parameters of `draws` generated on the device (tests: bit-identity with the host).
std::vector<float> device_generate_params(Device& device, const PriorSpec& prior, StreamKey key, const ModelSpec& m,
                                          const std::vector<uint64_t>& draws);

}  // namespace gac
