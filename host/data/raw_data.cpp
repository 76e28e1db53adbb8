// The checks and file reading that the data file readers share.
#include "host/data/raw_data.h"

#include <zlib.h>

#include <climits>
#include <cmath>
#include <fstream>

#include "gac/memory.h"
#include "gac/text.h"

namespace gac::data_detail {

namespace fs = std::filesystem;

void require_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) fail(path.string() + ": no such file");
}

void require_directory(const std::string& dir, const std::string& kind) {
  if (dir.empty()) fail("data.path (the directory of the " + kind + " files) is not set");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir + ": no such directory (data.path for " + kind + ")");
}

namespace {

[[noreturn]] void too_large(const fs::path& path, const std::string& what, uint64_t max_bytes) {
  fail(path.string() + ": " + what + " more than this process can hold (" + gib(max_bytes) +
       ": a fifth of the memory available, for the bytes and their float32 examples)");
}

std::vector<uint8_t> read_gz_bytes(const fs::path& path, uint64_t max_bytes) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) fail(path.string() + ": cannot open");
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> chunk(1 << 20);
  int got;
  while ((got = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()))) > 0) {
    bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + got);
    if (max_bytes && bytes.size() > max_bytes) {
      gzclose(f);
      too_large(path, "it decompresses to", max_bytes);
    }
  }
  // gzread reports a cut-off stream only through gzerror (Z_BUF_ERROR), and
  // passes a file that is not gzip at all through unchanged: check both.
  int err = Z_OK;
  std::string message = gzerror(f, &err);  // "path: what"
  if (message.rfind(path.string() + ": ", 0) == 0) message.erase(0, path.string().size() + 2);
  const bool plain = gzdirect(f) != 0;
  gzclose(f);
  if (err == Z_BUF_ERROR) fail(path.string() + ": truncated gzip data");
  if (err != Z_OK || got < 0) fail(path.string() + ": corrupt gzip data (" + message + ")");
  if (plain) fail(path.string() + (bytes.empty() ? ": empty file" : ": not gzip data (the name ends in .gz)"));
  return bytes;
}

}  // namespace

uint64_t data_bytes_limit() { return available_memory_bytes() / 5; }

std::vector<uint8_t> read_file_bytes(const fs::path& path, uint64_t max_bytes) {
  require_file(path);
  if (path.extension() == ".gz") return read_gz_bytes(path, max_bytes);
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (!in || ec) fail(path.string() + ": cannot open");
  if (max_bytes && size > max_bytes) too_large(path, gib(size) + " is", max_bytes);
  std::vector<uint8_t> bytes(size);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(in.gcount()) != size) fail(path.string() + ": read error");
  return bytes;
}

void apply_config_shape(const std::vector<int>& cfg_shape, RawData<double>& raw, const std::string& file) {
  if (cfg_shape.empty()) return;
  if (cfg_shape.size() != 3 || cfg_shape[0] < 1 || cfg_shape[1] < 1 || cfg_shape[2] < 1)
    fail("data.shape must be [channels, height, width] of positive sizes");
  const Shape s{cfg_shape[0], cfg_shape[1], cfg_shape[2]};
  if (int64_t{s.c} * s.h * s.w != raw.shape.dim())
    fail("data.shape " + s.str() + " has " + num(int64_t{s.c} * s.h * s.w) + " values per example but " + file +
         " has " + num(raw.shape.dim()));
  raw.shape = s;
  raw.flat = false;
}

int to_label(double v, const std::string& where) {
  if (!(std::isfinite(v) && v == std::floor(v) && v >= INT_MIN && v <= INT_MAX))
    fail(where + ": label " + show(v) + " is not an integer");
  return static_cast<int>(v);
}

void require_finite(double v, const std::string& where) {
  if (!std::isfinite(v)) fail(where + ": feature value " + show(v) + " is not finite");
  if (!std::isfinite(static_cast<float>(v))) fail(where + ": feature value " + show(v) + " is beyond float32's range");
}

}  // namespace gac::data_detail
