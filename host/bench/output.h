// `gac bench`'s results, written as one JSON document or as a table.
#pragma once

#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "gac/bench.h"
#include "host/bench/ceilings.h"
#include "host/bench/measure.h"

namespace gac {

struct BenchResults {
  std::vector<Measurement> measurements;
  std::vector<Measurement> nested;  // heads > 1, early rejection on; compared with the plain early-on rows
  std::vector<std::pair<std::string, std::string>> legend;    // scenario -> description
  std::vector<std::pair<std::string, std::string>> backends;  // label -> description
  bool want_cpu = false, want_cuda = false;                   // which ceilings were measured
  Ceiling cpu_ceiling;   // the CPU's FP32 FMA peak
  Ceiling cpu_sgemm;     // OpenBLAS SGEMM
  Ceiling cuda_ceiling;  // cuBLAS SGEMM, also the GPU's SGEMM figure
};

void write_bench_json(const BenchOptions& opts, const BenchResults& r, std::ostream& out);
void write_bench_table(const BenchOptions& opts, const BenchResults& r, std::ostream& out);

}  // namespace gac
