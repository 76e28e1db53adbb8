#include "host/store/sqlite.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

namespace gac::store_detail {

namespace fs = std::filesystem;

std::string sqlite_failure(const std::string& path, int code, int system_errno, const std::string& message) {
  const int primary = code & 0xff;
  if (primary != SQLITE_FULL && primary != SQLITE_IOERR) return message;
  const std::string dir = fs::path(path).parent_path().string();
  struct statvfs space {};
  const bool no_space =
      ::statvfs(dir.empty() ? "." : dir.c_str(), &space) == 0 && space.f_bavail * space.f_frsize < (1u << 20);
  if (primary == SQLITE_FULL || system_errno == ENOSPC || no_space) return "no space left on device";
  if (system_errno == EDQUOT) return "disk quota exceeded";
  return system_errno ? message + " (" + std::strerror(system_errno) + ")" : message;
}

}  // namespace gac::store_detail
