// One writer per run directory.
//
// DirLock holds an exclusive POSIX record lock (fcntl F_SETLK) on
// DIR/writer.lock for as long as it lives, and writes its holder (host, pid,
// start time) into that file for the message a second writer gets. POSIX
// record locks hold across hosts on NFS (NFSv3 through lockd, NFSv4 natively)
// and the kernel (or the NFS server, once the client is gone) drops them when
// the process dies, so a killed run never leaves a stale lock behind. The
// file itself stays: only the lock on it means anything.
#pragma once

#include <filesystem>
#include <string>

namespace gac {

class DirLock {
 public:
  static constexpr const char* kFileName = "writer.lock";

  // Creates DIR/writer.lock if needed and locks it. Throws gac::Error naming
  // the holder when another process (or another DirLock of this process)
  // holds it, and a clear refusal when the file system cannot lock at all.
  explicit DirLock(const std::filesystem::path& dir);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

  // For readers: who writes DIR now ("host node7 pid 4242 since ..."), or ""
  // when nobody holds its lock. Takes no lock.
  static std::string holder(const std::filesystem::path& dir);

 private:
  int fd_ = -1;
  std::string key_;  // this process's registry entry for the directory
};

}  // namespace gac
