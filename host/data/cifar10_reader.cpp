// CIFAR-10, binary version: data_batch_1..5.bin and test_batch.bin.
#include "host/data/raw_data.h"

namespace gac::data_detail {
namespace {

namespace fs = std::filesystem;

Split<uint8_t> load_cifar_files(const fs::path& dir, const std::vector<std::string>& names) {
  constexpr size_t kPixels = 3 * 32 * 32, kRecord = 1 + kPixels;
  Split<uint8_t> split;
  for (const std::string& file : names) {
    const fs::path path = dir / file;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) fail("cifar10: missing batch file " + path.string());
    const std::vector<uint8_t> bytes = read_file_bytes(path);
    if (bytes.empty() || bytes.size() % kRecord != 0)
      fail(path.string() + ": size " + num(bytes.size()) + " is not a positive multiple of the " + num(kRecord) +
           "-byte CIFAR-10 record");
    for (size_t at = 0; at < bytes.size(); at += kRecord) {
      if (bytes[at] >= 10)
        fail(path.string() + ": record " + num(at / kRecord) + " has label " + num(bytes[at]) + " (CIFAR-10 labels are 0..9)");
      split.labels.push_back(bytes[at]);
      split.x.insert(split.x.end(), bytes.begin() + static_cast<std::ptrdiff_t>(at + 1),
                     bytes.begin() + static_cast<std::ptrdiff_t>(at + kRecord));
    }
  }
  return split;
}

}  // namespace

RawData<uint8_t> load_cifar10(const DataConfig& cfg) {
  require_directory(cfg.path, "cifar10");
  RawData<uint8_t> raw;
  raw.name = "cifar10";
  raw.shape = Shape{3, 32, 32};
  raw.train = load_cifar_files(cfg.path, {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                          "data_batch_4.bin", "data_batch_5.bin"});
  raw.test = load_cifar_files(cfg.path, {"test_batch.bin"});
  return raw;
}

}  // namespace gac::data_detail
