// One writer per run directory: an fcntl record lock on DIR/writer.lock.
#include "gac/dir_lock.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <mutex>
#include <set>
#include <thread>

#include "gac/error.h"

namespace gac {
namespace {

namespace fs = std::filesystem;

// POSIX locks belong to the process: a second lock on the same file from this
// process would succeed, and closing any descriptor of the file would drop
// the first. So the process keeps its own list of directories it holds.
std::mutex registry_mutex;
std::set<std::string>& registry() {
  static std::set<std::string> held;
  return held;
}

// "host node7 pid 4242 since 2026-03-01T10:00:00Z"
std::string holder_line() {
  char host[256] = "?";
  ::gethostname(host, sizeof host - 1);
  char since[32];
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  std::strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return std::string("host ") + host + " pid " + std::to_string(::getpid()) + " since " + since;
}

bool try_lock(int fd) {
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;  // the whole file: start 0, length 0
  return ::fcntl(fd, F_SETLK, &lock) == 0;
}

// The holder line another writer wrote into the lock file. It writes it just
// after taking the lock, so an empty file is given a moment to fill.
std::string read_holder(int fd) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    char text[512];
    const ssize_t got = ::pread(fd, text, sizeof text - 1, 0);
    std::string line(text, got > 0 ? static_cast<size_t>(got) : 0);
    if (const size_t end = line.find('\n'); end != std::string::npos) return line.substr(0, end);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  if (::fcntl(fd, F_GETLK, &lock) == 0 && lock.l_type != F_UNLCK && lock.l_pid > 0)
    return "pid " + std::to_string(lock.l_pid) + " (host unknown)";
  return "holder unknown";
}

void write_holder(int fd, const fs::path& file) {
  const std::string line = holder_line() + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size()) ||
      ::fsync(fd) != 0)
    throw Error("cannot write " + file.string() + ": " + std::strerror(errno));
}

}  // namespace

DirLock::DirLock(const fs::path& dir) {
  const fs::path file = dir / kFileName;
  std::error_code ec;
  key_ = fs::weakly_canonical(dir, ec).string();
  if (ec) throw Error("cannot use " + dir.string() + " as a run directory: " + ec.message());
  const std::lock_guard<std::mutex> guard(registry_mutex);
  if (registry().count(key_))
    throw Error(dir.string() + " is already open for writing in this process (pid " + std::to_string(::getpid()) + ")");

  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot create " + file.string() + ": " + std::strerror(errno));
  if (!try_lock(fd_)) {
    const int why = errno;
    std::string message;
    if (why == EACCES || why == EAGAIN)
      message = dir.string() + " is in use by another gac writer (" + read_holder(fd_) +
                "); wait for it to finish or stop it: a run directory takes one writer at a time";
    else
      message = "cannot lock " + file.string() + ": " + std::strerror(why) +
                " (gac keeps a second writer out of a run directory with an fcntl lock; on NFS that needs lockd "
                "(NFSv3) or NFSv4; use a directory on a file system that supports locks)";
    ::close(fd_);
    fd_ = -1;
    throw Error(message);
  }
  try {
    write_holder(fd_, file);
  } catch (...) {
    ::close(fd_);  // also drops the lock
    fd_ = -1;
    throw;
  }
  registry().insert(key_);
}

std::string DirLock::holder(const fs::path& dir) {
  std::error_code ec;
  const std::string key = fs::weakly_canonical(dir, ec).string();
  const std::lock_guard<std::mutex> guard(registry_mutex);
  // Opening and closing the file here would drop this process's own lock.
  if (!ec && registry().count(key)) return "this process, pid " + std::to_string(::getpid());
  const int fd = ::open((dir / kFileName).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  const bool held = ::fcntl(fd, F_GETLK, &lock) == 0 && lock.l_type != F_UNLCK;
  const std::string who = held ? read_holder(fd) : "";
  ::close(fd);
  return who;
}

DirLock::~DirLock() {
  if (fd_ < 0) return;
  const std::lock_guard<std::mutex> guard(registry_mutex);
  ::close(fd_);  // drops the lock
  registry().erase(key_);
}

}  // namespace gac
