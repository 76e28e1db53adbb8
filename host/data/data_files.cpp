#include "gac/data_files.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "gac/error.h"

namespace gac {
namespace {

namespace fs = std::filesystem;

// IDX files are read raw when both forms exist, as load_dataset does.
fs::path idx_file(const DataConfig& cfg, const std::string& stem) {
  const fs::path raw = fs::path(cfg.path) / (cfg.prefix + stem);
  std::error_code ec;
  return fs::is_regular_file(raw, ec) || !fs::is_regular_file(raw.string() + ".gz", ec) ? raw : fs::path(raw.string() + ".gz");
}

DataFile fingerprint(const fs::path& path) {
  DataFile f;
  f.path = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("data: cannot read " + f.path + ": " + std::strerror(errno));
  std::vector<unsigned char> chunk(1 << 20);
  uLong crc = ::crc32(0L, Z_NULL, 0);
  for (;;) {
    const ssize_t got = ::read(fd, chunk.data(), chunk.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      throw Error("data: cannot read " + f.path + ": " + why);
    }
    if (got == 0) break;
    crc = ::crc32_z(crc, chunk.data(), static_cast<size_t>(got));
    f.size += static_cast<uint64_t>(got);
  }
  ::close(fd);
  f.crc32 = static_cast<uint32_t>(crc);
  return f;
}

std::string hex(uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof text, "%08x", v);
  return text;
}

}  // namespace

std::vector<fs::path> data_input_files(const DataConfig& cfg) {
  if (cfg.kind == "idx")
    return {idx_file(cfg, "train-images-idx3-ubyte"), idx_file(cfg, "train-labels-idx1-ubyte"),
            idx_file(cfg, "t10k-images-idx3-ubyte"), idx_file(cfg, "t10k-labels-idx1-ubyte")};
  if (cfg.kind == "cifar10") {
    std::vector<fs::path> files;
    for (const char* name : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                             "data_batch_5.bin", "test_batch.bin"})
      files.push_back(fs::path(cfg.path) / name);
    return files;
  }
  if (cfg.kind == "npy") return {cfg.train_x, cfg.train_y, cfg.test_x, cfg.test_y};
  if (cfg.kind == "csv") return {cfg.train_file, cfg.test_file};
  return {};  // kink, slab: generated from the config alone
}

std::vector<DataFile> fingerprint_data_files(const DataConfig& cfg) {
  std::vector<DataFile> out;
  for (const fs::path& path : data_input_files(cfg)) out.push_back(fingerprint(path));
  return out;
}

std::string data_files_difference(const std::vector<DataFile>& recorded, const std::vector<DataFile>& now) {
  if (recorded.size() != now.size())
    return "the run was made from " + std::to_string(recorded.size()) + " data files, this config reads " +
           std::to_string(now.size());
  for (size_t i = 0; i < now.size(); ++i) {
    const DataFile &was = recorded[i], &is = now[i];
    if (was.size != is.size)
      return "data file " + is.path + " has changed since the run began: " + std::to_string(is.size) + " bytes, was " +
             std::to_string(was.size);
    if (was.crc32 != is.crc32)
      return "data file " + is.path + " has changed since the run began: CRC-32 " + hex(is.crc32) + ", was " +
             hex(was.crc32) + " (same size)";
  }
  return "";
}

}  // namespace gac
