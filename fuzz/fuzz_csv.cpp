// The CSV loader. The first byte sets data.label_column (-1..3) and
// standardization; the rest is the training file, then after a NUL byte the
// test file (the training file again when there is none).
#include <cstdint>

#include "fuzz/fuzz_util.h"
#include "gac/dataset.h"
#include "gac/error.h"

using namespace gac;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto dir = fuzz::scratch();
  const auto parts = fuzz::split_nul(data + 1, size - 1, 2);
  fuzz::write(dir / "train.csv", parts[0]);
  fuzz::write(dir / "test.csv", parts.back());
  DataConfig cfg;
  cfg.kind = "csv";
  cfg.train_file = (dir / "train.csv").string();
  cfg.test_file = (dir / "test.csv").string();
  cfg.label_column = data[0] % 5 - 1;
  cfg.standardize = data[0] & 0x80;
  fuzz::load_and_split(cfg);
  return 0;
}
