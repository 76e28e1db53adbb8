// `gac bench --search`: the paper's searches (include/gac/search.h) on LeNet
// width 1, all 10 classes of an MNIST-shaped IDX set, at the paper's MNIST
// budgets: candidate evaluations/s and steps (improvements)/s of one search
// from draw 0 over a fixed time or a fixed number of steps, for pattern search
// with incremental evaluation on and off and for greedy random search.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace gac {

struct SearchBenchOptions {
  std::vector<std::string> kinds;  // "pattern", "greedy"
  std::vector<int> ns;             // training-set sizes (default 100)
  double seconds = 10.0;           // timed length of each search (when steps is 0)
  int64_t steps = 0;               // > 0: each search stops after this many steps instead
  int threads = 0;                 // 0: all cores
  std::string data;                // IDX directory (MNIST layout); "": Debian's Fashion-MNIST
  bool json = false;
};

int run_search_bench(const SearchBenchOptions& opts, std::ostream& out, std::ostream& log);

}  // namespace gac
