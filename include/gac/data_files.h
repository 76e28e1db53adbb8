// The files a dataset is read from, fingerprinted (size and CRC-32), so that a
// run directory notices when the data behind its config has changed: a resume
// on other data would mix models of two datasets.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "gac/dataset.h"

namespace gac {

struct DataFile {
  std::string path;  // as the config names it
  uint64_t size = 0;
  uint32_t crc32 = 0;
};

// The files load_dataset reads for `cfg`, in a fixed order: idx 4 (raw or
// .gz, as load_dataset picks them), cifar10 6, npy 4, csv 2, kink/slab none.
std::vector<std::filesystem::path> data_input_files(const DataConfig& cfg);

// Size and CRC-32 of each of those files; throws gac::Error naming a file
// that cannot be read.
std::vector<DataFile> fingerprint_data_files(const DataConfig& cfg);

// "" when `now` matches `recorded` (sizes and checksums, in order), else one
// line naming the first file that differs.
std::string data_files_difference(const std::vector<DataFile>& recorded, const std::vector<DataFile>& now);

}  // namespace gac
