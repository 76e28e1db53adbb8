#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "host/util/parallel_for.h"

namespace gac {

int available_cpus() {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  int cpus = sched_getaffinity(0, sizeof mask, &mask) == 0 ? CPU_COUNT(&mask)
                                                            : static_cast<int>(std::thread::hardware_concurrency());
  if (const char* slurm = std::getenv("SLURM_CPUS_PER_TASK")) {
    const int allocated = std::atoi(slurm);
    if (allocated > 0) cpus = std::min(cpus, allocated);
  }
  return std::max(cpus, 1);
}

}  // namespace gac
