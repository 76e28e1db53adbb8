// Shared by the fuzz targets: a private scratch directory and file writing.
// Loaders take paths, so each input is written to a file first.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "gac/dataset.h"
#include "gac/error.h"

namespace gac::fuzz {

// A directory of this process, in memory (/dev/shm) when there is one.
inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    const std::filesystem::path base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    const std::filesystem::path d = base / ("gac_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] { std::filesystem::remove_all(scratch()); });
    return d;
  }();
  return dir;
}

inline void write(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The parts of `data` separated by NUL bytes (at most `max_parts`; the last takes the rest).
inline std::vector<std::string_view> split_nul(const uint8_t* data, size_t size, size_t max_parts) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    const size_t nul = rest.find('\0');
    if (nul == std::string_view::npos) break;
    parts.push_back(rest.substr(0, nul));
    rest.remove_prefix(nul + 1);
  }
  parts.push_back(rest);
  return parts;
}

// Loads the data set and draws a training set from it; bad input is a gac::Error, nothing else.
inline void load_and_split(const DataConfig& cfg) {
  try {
    make_train_test(load_dataset(cfg), cfg, 2, 7);
  } catch (const Error&) {
  }
}

}  // namespace gac::fuzz
