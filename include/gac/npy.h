// NumPy .npy files (format 1.0/2.0/3.0): what gac stores (float32 weights
// numpy.load reads with no gac code) and what users give it as data.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace gac {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<double> data;  // converted from any supported dtype
};

// Reads little-endian bool/int8..int64/uint8..uint64/float32/float64, C order.
// Throws gac::Error naming the file for anything else or for a truncated file.
NpyArray read_npy(const std::filesystem::path& path);

// Serialized .npy bytes of a float32 or int32 C-order array.
std::string npy_bytes_f32(const float* data, const std::vector<int64_t>& shape);
std::string npy_bytes_i32(const int32_t* data, const std::vector<int64_t>& shape);

// Writes a file atomically: temp file, fsync, rename, fsync of the directory.
// A crash leaves either the old state or the whole new file, never half.
// With durable = false it skips both fsyncs: the caller syncs the file and
// its directory before anything relies on it (the store does, per commit).
void write_file_atomic(const std::filesystem::path& path, const std::string& bytes, bool durable = true);

}  // namespace gac
