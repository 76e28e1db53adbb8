#include "gac/memory.h"

#include <algorithm>
#include <string>
#include <thread>

#include "gac/error.h"
#include "gac/text.h"
#include "host/util/parallel_for.h"

namespace gac {
namespace {

constexpr uint64_t kDrawsPerVector = 16;

}  // namespace

uint64_t cpu_run_bytes(const ModelSpec& m, int threads, uint64_t n_train, uint64_t n_test) {
  const uint64_t params = static_cast<uint64_t>(m.n_params), activation = static_cast<uint64_t>(m.max_activation);
  const uint64_t classes = static_cast<uint64_t>(m.n_classes), input = static_cast<uint64_t>(m.in_size());
  const uint64_t search = kDrawsPerVector * (params + 2 * activation + n_train * classes) + n_train * input;
  const uint64_t scoring = kDrawsPerVector * (params + 2 * activation) + n_test * input;
  // Worker threads free their scratch when a call ends; the calling thread
  // keeps both kinds.
  return 4 * (static_cast<uint64_t>(std::max(threads, 1)) * std::max(search, scoring) + std::min(search, scoring) + params);
}

void check_cpu_memory(const Experiment& ex, int threads, uint64_t available) {
  if (threads <= 0) threads = available_cpus();
  const uint64_t n_train = static_cast<uint64_t>(*std::max_element(ex.cfg.ns.begin(), ex.cfg.ns.end()));
  const uint64_t n_test = ex.data.synthetic ? static_cast<uint64_t>(ex.cfg.data.test_size) : ex.data.test.size();
  const uint64_t needed = cpu_run_bytes(ex.model.spec, threads, n_train, n_test);
  if (available == 0 || needed <= available) return;
  const Arch arch = ex.cfg.model.arch;
  const std::string change = arch == Arch::mlp     ? "lower model.hidden or model.layers, or exec.threads"
                             : arch == Arch::lenet ? "lower model.width or exec.threads"
                                                   : "lower exec.threads";
  throw Error("memory: this run (" + ex.model.arch_name + " with " + grouped(ex.model.spec.n_params) + " parameters on " +
              std::to_string(threads) + " CPU threads) needs about " + gib(needed) + " but " + gib(available) +
              " is available; " + change);
}

}  // namespace gac
