// The NPY reader, alone (first byte even) or as an npy dataset's features
// (first byte odd), whose loader checks shapes, labels and values further.
#include <cstdint>

#include "fuzz/fuzz_util.h"
#include "gac/dataset.h"
#include "gac/error.h"
#include "gac/npy.h"

using namespace gac;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto dir = fuzz::scratch();
  fuzz::write(dir / "x.npy", {reinterpret_cast<const char*>(data + 1), size - 1});
  try {
    if (data[0] % 2 == 0) {
      const NpyArray a = read_npy(dir / "x.npy");
      uint64_t count = 1;
      for (int64_t d : a.shape) count *= static_cast<uint64_t>(d);
      if (count != a.data.size()) __builtin_trap();
      return 0;
    }
    static const bool labels_written = [&] {
      const int32_t y[4] = {0, 1, 0, 1};
      write_file_atomic(dir / "y.npy", npy_bytes_i32(y, {4}));
      return true;
    }();
    (void)labels_written;
    DataConfig cfg;
    cfg.kind = "npy";
    cfg.train_x = cfg.test_x = (dir / "x.npy").string();
    cfg.train_y = cfg.test_y = (dir / "y.npy").string();
    cfg.standardize = data[0] & 2;
    const Dataset d = load_dataset(cfg);
    make_train_test(d, cfg, 2, 7);
  } catch (const Error&) {
  }
  return 0;
}
