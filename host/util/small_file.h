// Reading a file that should be small (a config, a run's config.toml).
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

namespace gac {

constexpr size_t kMaxSmallFileBytes = size_t{16} << 20;

// The whole file, read in pieces up to kMaxSmallFileBytes, so that /dev/zero
// or a runaway pipe is refused, not read until memory runs out. Throws
// gac::Error "<prefix><path> is larger than 16 MiB; <what>" or naming the read error.
std::string read_small_file(const std::filesystem::path& path, const std::string& prefix, const std::string& what);

}  // namespace gac
