#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "gac/memory.h"

namespace gac {
namespace {

// The number after `key` in the file at `path` (key "": its first number); 0 if none.
uint64_t read_number(const char* path, const std::string& key) {
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t at = text.find(key);
  if (at == std::string::npos) return 0;
  std::istringstream rest(text.substr(at + key.size()));
  uint64_t v = 0;
  return rest >> v ? v : 0;
}

}  // namespace

uint64_t available_memory_bytes() {
  uint64_t available = read_number("/proc/meminfo", "MemAvailable:") * 1024;
  // A container's or a SLURM job's limit: cgroup v2, else v1 ("max": none).
  uint64_t limit = read_number("/sys/fs/cgroup/memory.max", ""), used = read_number("/sys/fs/cgroup/memory.current", "");
  if (limit == 0) {
    limit = read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes", "");
    used = read_number("/sys/fs/cgroup/memory/memory.usage_in_bytes", "");
  }
  if (limit > used && limit < (uint64_t{1} << 60)) available = available ? std::min(available, limit - used) : limit - used;
  return available;
}

}  // namespace gac
