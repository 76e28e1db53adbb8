// One writer per run directory: the lock between processes (real forked
// ones), within one process, its release when the holder dies, and two gac
// runs started on one directory.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "gac/dir_lock.h"
#include "gac/store.h"
#include "tests/test_util.h"

using namespace gac;
using namespace gac::test;
namespace fs = std::filesystem;

namespace {

const std::string kConfig = "[run]\nseed = 1\n";
const std::string kLayout = "{}\n";

RunMeta meta() {
  RunMeta m;
  m.bin_edges = {0.0, 1.0};
  m.target = 1;
  m.ns = {4};
  m.n_params = 3;
  return m;
}

std::string hostname() {
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  return host;
}

// True when a fresh process can take DIR's lock (it lets it go at once).
bool another_process_can_lock(const fs::path& dir) {
  const pid_t pid = fork();
  if (pid == 0) {
    try {
      DirLock lock(dir);
      _exit(0);
    } catch (const Error&) {
      _exit(1);
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

using DirLockTest = TempDirTest;

}  // namespace

TEST_F(DirLockTest, SecondProcessIsRefusedWithTheHolderNamedAndTheLockDiesWithItsHolder) {
  int ready[2], release[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(release), 0);
  const fs::path run = dir_ / "run";
  const pid_t holder = fork();
  if (holder == 0) {
    close(ready[0]);
    close(release[1]);
    try {
      Store store(run, kConfig, kLayout, meta());
      (void)!write(ready[1], "y", 1);
      char c;
      (void)!read(release[0], &c, 1);  // until the parent says so, or kills it
    } catch (...) {
      _exit(1);
    }
    _exit(0);
  }
  close(ready[1]);
  close(release[0]);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1) << "the holder could not open the store";

  EXPECT_ERROR_MENTIONS(Store(run, kConfig, kLayout, meta()),
                        run.string() + " is in use by another gac writer (host " + hostname() + " pid " +
                            std::to_string(holder) + " since ");
  EXPECT_ERROR_MENTIONS(DirLock{run}, "pid " + std::to_string(holder));
  EXPECT_NE(DirLock::holder(run).find("pid " + std::to_string(holder)), std::string::npos);
  EXPECT_NO_THROW(Store::open_existing(run));  // readers take no lock

  kill(holder, SIGKILL);  // no chance to clean up: the kernel drops the lock
  waitpid(holder, nullptr, 0);
  EXPECT_EQ(DirLock::holder(run), "");
  EXPECT_NO_THROW(Store(run, kConfig, kLayout, meta()));
  close(ready[0]);
  close(release[1]);
}

TEST_F(DirLockTest, ASecondWriterInTheSameProcessIsRefusedAndTheFirstKeepsItsLock) {
  Store first(dir_, kConfig, kLayout, meta());
  EXPECT_ERROR_MENTIONS(Store(dir_, kConfig, kLayout, meta()),
                        "already open for writing in this process (pid " + std::to_string(getpid()) + ")");
  EXPECT_ERROR_MENTIONS(DirLock{dir_ / "." / ""}, "already open for writing in this process");
  // Had the refused attempts opened and closed the lock file, POSIX would have dropped the first lock.
  EXPECT_FALSE(another_process_can_lock(dir_));
  EXPECT_NE(DirLock::holder(dir_).find("this process"), std::string::npos);
}

TEST_F(DirLockTest, ClosingTheStoreReleasesTheDirectory) {
  { Store store(dir_, kConfig, kLayout, meta()); }
  EXPECT_TRUE(another_process_can_lock(dir_));
  EXPECT_NO_THROW(Store(dir_, kConfig, kLayout, meta()));
  EXPECT_TRUE(fs::exists(dir_ / DirLock::kFileName));
}

TEST_F(DirLockTest, AForeignDirectoryGetsNoLockFile) {
  std::ofstream(dir_ / "notes.txt") << "mine\n";
  EXPECT_ERROR_MENTIONS(Store(dir_, kConfig, kLayout, meta()), "is not a gac run directory");
  EXPECT_FALSE(fs::exists(dir_ / DirLock::kFileName));
}

TEST_F(DirLockTest, TheLockIsTakenBeforeTheFirstFileOfARunIsCreated) {
  const fs::path run = dir_ / "run";
  fs::create_directories(run);
  const pid_t holder = fork();
  if (holder == 0) {
    try {
      DirLock lock(run);
      pause();
    } catch (...) {
    }
    _exit(1);
  }
  while (DirLock::holder(run).empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_ERROR_MENTIONS(Store(run, kConfig, kLayout, meta()), "is in use by another gac writer");
  EXPECT_ERROR_MENTIONS(Store::open_existing(run), run.string() + " is being set up by a gac writer (host ");
  EXPECT_FALSE(fs::exists(run / "config.toml"));
  EXPECT_FALSE(fs::exists(run / "ledger.sqlite"));
  kill(holder, SIGKILL);
  waitpid(holder, nullptr, 0);
}

// Two `gac run` on one directory at once: the second is refused in one line
// naming the first, which finishes as if alone.
TEST_F(DirLockTest, TwoRunsOnOneDirectory) {
  const fs::path cfg = dir_ / "kink.toml";
  std::ofstream(cfg) << "[data]\nkind = \"kink\"\n[run]\nn = [8]\nbins = [0.69, 0.6901]\ntarget = 1000000\n"
                        "max_draws = 1000000000\ntime_limit = 5\n";
  const fs::path run = dir_ / "run";
  const Started first = start_gac({"run", cfg.string(), "-o", run.string(), "-q"});
  const auto start = std::chrono::steady_clock::now();
  while (DirLock::holder(run).empty() && std::chrono::steady_clock::now() - start < std::chrono::seconds(30))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const Result second = run_gac({"run", cfg.string(), "-o", run.string(), "-q", "--set", "run.seed=1"});
  expect_clear_error(second, "is in use by another gac writer (host " + hostname() + " pid " + std::to_string(first.pid));
  // A reader meanwhile: files of draws not yet committed are no damage.
  while (!fs::exists(run / "ledger.sqlite") && std::chrono::steady_clock::now() - start < std::chrono::seconds(30))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const Result meanwhile = run_gac({"verify", run.string()});
  EXPECT_NE(meanwhile.out.find("is being written (host " + hostname() + " pid " + std::to_string(first.pid)),
            std::string::npos)
      << meanwhile.out;
  EXPECT_EQ(meanwhile.status, 0) << meanwhile.out << meanwhile.err;
  const Result r = finish_gac(first);
  EXPECT_EQ(r.err.find("error"), std::string::npos) << r.err;
  const Result verify = run_gac({"verify", run.string()});
  EXPECT_EQ(verify.status, 0) << verify.out << verify.err;
  EXPECT_NE(slurp(run / "config.toml").find("seed = 0"), std::string::npos);
}
