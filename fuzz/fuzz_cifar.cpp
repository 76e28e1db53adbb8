// The CIFAR-10 binary loader. The first byte picks which of the six batch
// files the rest of the input replaces; the others hold one valid record each.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_util.h"
#include "gac/dataset.h"
#include "gac/error.h"

using namespace gac;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const char* const files[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                       "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  const auto dir = fuzz::scratch();
  const int which = data[0] % 6;
  for (int f = 0; f < 6; ++f) {
    std::string record(1 + 3 * 32 * 32, '\x40');
    record[0] = static_cast<char>(f % 2);
    fuzz::write(dir / files[f], f == which ? std::string_view(reinterpret_cast<const char*>(data + 1), size - 1)
                                            : std::string_view(record));
  }
  DataConfig cfg;
  cfg.kind = "cifar10";
  cfg.path = dir.string();
  fuzz::load_and_split(cfg);
  return 0;
}
