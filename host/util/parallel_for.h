// The CPU's threading: a range of work items handed out in blocks through an
// atomic counter, so fast threads take more blocks and no thread idles while
// work remains. Callers keep per-thread scratch indexed by the thread number.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace gac {

// The CPUs this process may use: its affinity mask (taskset, cgroups,
// SLURM's task/affinity), and no more than SLURM_CPUS_PER_TASK when SLURM
// allocated that many (with task/none the mask still shows every CPU). The
// CPU backend's and the SGD trainer's threads unless exec.threads says otherwise.
int available_cpus();

// Runs body(thread, index) for index in [0, count) on up to `threads` threads.
template <class Body>
void parallel_for(int threads, uint64_t count, uint64_t grain, Body body) {
  const uint64_t blocks = (count + grain - 1) / grain;
  const int n_threads = static_cast<int>(std::min<uint64_t>(threads, blocks));
  std::atomic<uint64_t> next{0};
  auto worker = [&](int t) {
    for (uint64_t b; (b = next.fetch_add(1)) < blocks;)
      for (uint64_t i = b * grain, end = std::min(count, i + grain); i < end; ++i) body(t, i);
  };
  std::vector<std::jthread> pool;
  for (int t = 1; t < n_threads; ++t) pool.emplace_back(worker, t);
  if (n_threads > 0) worker(0);
}

}  // namespace gac
