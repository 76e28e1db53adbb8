// `gac bench`: throughput of the backends on standard scenarios, next to the
// machine's SGEMM rate (the ceiling) and the paper's PyTorch figures.
// Speed is only ever measured here, never asserted in tests.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace gac {

struct BenchOptions {
  std::vector<std::string> scenarios;  // empty: all standard scenarios
  std::vector<std::string> backends;   // empty: "cpu", plus "cuda" when a device is usable
  double seconds = 2.0;                // timed length of each measurement
  int threads = 0;                     // CPU threads (backend and SGEMM); 0 = all cores
  bool early_both = true;              // also measure with early rejection off (full evaluation)
  std::vector<int> ns;                 // training-set sizes; empty: each scenario's own
  bool json = false;                   // one JSON document instead of the table
};

// Names of the standard scenarios, in the order they run.
std::vector<std::string> bench_scenario_names();

// Runs the measurements; results go to `out` (table or JSON), progress to
// `log`. Returns the exit code. Throws gac::Error for an unknown scenario or
// backend name (the message lists the valid ones), or for an explicitly
// requested backend that cannot run here.
int run_bench(const BenchOptions& opts, std::ostream& out, std::ostream& log);

}  // namespace gac
