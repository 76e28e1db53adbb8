#include "host/store/durable_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "gac/error.h"

namespace gac::store_detail {

namespace fs = std::filesystem;

void fsync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool ok = fd >= 0 && ::fsync(fd) == 0;
  const std::string why = std::strerror(errno);
  if (fd >= 0) ::close(fd);
  if (!ok) throw Error("cannot sync directory " + dir.string() + ": " + why);
}

void make_writable_directory(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw Error("cannot use " + dir.string() + " as the output directory: it exists and is not a directory");
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create output directory " + dir.string() + ": " + ec.message());
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw Error("cannot write into output directory " + dir.string() + ": " + std::strerror(errno));
}

void sync_filesystem(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool ok = fd >= 0 && ::syncfs(fd) == 0;
  const std::string why = std::strerror(errno);
  if (fd >= 0) ::close(fd);
  if (!ok) throw Error("cannot sync " + dir.string() + ": " + why);
}

}  // namespace gac::store_detail
