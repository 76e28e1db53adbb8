// The IDX loader (MNIST format), raw and gzip. The first byte picks which of
// the four files the rest of the input replaces (bits 0-1) and how it is
// stored (bits 2-3: raw; gzip-compressed here; a .gz name on bytes as given);
// the other three are a valid 4-image set.
#include <zlib.h>

#include <cstdint>
#include <string>

#include "fuzz/fuzz_util.h"
#include "gac/dataset.h"
#include "gac/error.h"

using namespace gac;

namespace {

const char* const kFiles[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                               "t10k-labels-idx1-ubyte"};

std::string valid_file(int which) {
  if (which % 2 == 1) return std::string("\0\0\x08\x01\0\0\0\x04", 8) + std::string("\0\x01\0\x01", 4);
  std::string images("\0\0\x08\x03\0\0\0\x04\0\0\0\x03\0\0\0\x03", 16);
  for (int i = 0; i < 4 * 9; ++i) images += static_cast<char>(i * 7);
  return images;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto dir = fuzz::scratch();
  const int which = data[0] & 3, mode = (data[0] >> 2) & 3;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  for (int f = 0; f < 4; ++f) {
    std::filesystem::remove(dir / kFiles[f]);
    std::filesystem::remove(dir / (std::string(kFiles[f]) + ".gz"));
    if (f != which) fuzz::write(dir / kFiles[f], valid_file(f));
  }
  const std::filesystem::path raw = dir / kFiles[which], gz = dir / (std::string(kFiles[which]) + ".gz");
  if (mode == 1) {
    gzFile out = gzopen(gz.c_str(), "wb");
    gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(out);
  } else {
    fuzz::write(mode == 2 ? gz : raw, bytes);
  }
  DataConfig cfg;
  cfg.kind = "idx";
  cfg.path = dir.string();
  fuzz::load_and_split(cfg);
  return 0;
}
