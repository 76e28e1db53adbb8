// Helpers shared by the test files.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gac/backend.h"
#include "gac/config.h"
#include "gac/error.h"
#include "gac/philox.h"
#include "gac/store.h"

namespace gac::test {

// The models nested sampling splits into body and head (include/gac/nested.h),
// each with its input shape: the MLP with and without hidden biases (with them,
// a Philox block holds both body and head values), LeNet on both image shapes,
// and the linear model (no body at all).
struct NestedArch {
  const char* name;
  ModelConfig mc;
  int c, h, w;
};

inline std::vector<NestedArch> nested_archs() {
  ModelConfig mlp, mlp_bias, lenet, linear;
  mlp_bias.hidden_bias = true;
  lenet.arch = Arch::lenet;
  linear.arch = Arch::linear;
  return {{"mlp", mlp, 1, 1, 2},
          {"mlp_hidden_bias", mlp_bias, 1, 1, 2},
          {"lenet_1x28x28", lenet, 1, 28, 28},
          {"lenet_3x32x32", lenet, 3, 32, 32},
          {"linear", linear, 1, 1, 3}};
}

// v's bits: float comparisons that must hold bit for bit (-0 and NaN included).
inline uint32_t float_bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

// `count` floats uniform in [lo, hi) from SplitMix64(seed).
inline std::vector<float> random_floats(size_t count, uint64_t seed, double lo = -1, double hi = 1) {
  SplitMix64 rng(seed);
  std::vector<float> v(count);
  for (float& x : v) x = static_cast<float>(lo + (hi - lo) * rng.uniform());
  return v;
}

// The same hits: draws, losses bit for bit and bins.
inline void expect_same_hits(const std::vector<Hit>& want, const std::vector<Hit>& got, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].draw, want[i].draw) << what;
    EXPECT_EQ(float_bits(got[i].loss), float_bits(want[i].loss)) << what << " draw " << want[i].draw;
    EXPECT_EQ(got[i].bin, want[i].bin) << what << " draw " << want[i].draw;
  }
}

// The message of the gac::Error `f` throws ("" if it throws none).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Everything a finished run directory holds that must not depend on how it
// was run: models (draw, bin, metrics, weight bytes) and stream progress.
inline std::string fingerprint(const std::filesystem::path& run) {
  const auto store = Store::open_existing(run);
  std::ostringstream s;
  for (const StreamState& st : store->states()) {
    s << "stream " << st.n << " " << st.repeat << " " << st.shard << " draws " << st.draws << " perfect " << st.perfect
      << " status " << st.status << " hits";
    for (auto h : st.hits) s << " " << h;
    s << " stored";
    for (auto v : st.stored) s << " " << v;
    s << " classes";
    for (auto c : st.classes) s << " " << c;
    s << "\n";
  }
  for (const StoredModel& m : store->models())
    s << "model " << m.n << " " << m.repeat << " " << m.draw << " " << m.bin << " " << m.train_loss << " " << m.test_acc
      << " " << m.test_loss << " " << m.file << " " << std::hash<std::string>{}(slurp(run / m.file)) << "\n";
  return s.str();
}

// Lines of `text` that begin with `start`.
inline size_t count_lines(const std::string& text, const std::string& start) {
  size_t count = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) count += line.rfind(start, 0) == 0;
  return count;
}

// A fresh directory per test (dir_), named after the test and removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("gac_" + std::to_string(getpid()) + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

// ---- The gac binary as a process ------------------------------------------

struct Result {
  int status = -1;  // exit code, or -signal when killed
  std::string out, err;
};

// A gac process started by start_gac, its output going to two files.
struct Started {
  pid_t pid = -1;
  std::string out, err;
};

#ifdef GAC_BINARY
inline Started start_gac(const std::vector<std::string>& args) {
  static int count = 0;
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("gac_out_" + std::to_string(getpid()) + "_" + std::to_string(count++));
  std::filesystem::create_directories(dir);
  Started s{-1, (dir / "stdout").string(), (dir / "stderr").string()};
  s.pid = fork();
  if (s.pid == 0) {
    const int o = open(s.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(s.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    std::vector<char*> argv{const_cast<char*>(GAC_BINARY)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(GAC_BINARY, argv.data());
    _exit(127);
  }
  return s;
}

inline Result finish_gac(const Started& s) {
  int wstatus = 0;
  waitpid(s.pid, &wstatus, 0);
  Result r;
  r.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -WTERMSIG(wstatus);
  r.out = slurp(s.out);
  r.err = slurp(s.err);
  std::filesystem::remove_all(std::filesystem::path(s.out).parent_path());
  return r;
}

// Runs the gac binary; with kill_after_s >= 0 sends SIGKILL after that long.
inline Result run_gac(const std::vector<std::string>& args, double kill_after_s = -1) {
  const Started s = start_gac(args);
  if (kill_after_s >= 0) {
    std::this_thread::sleep_for(std::chrono::duration<double>(kill_after_s));
    kill(s.pid, SIGKILL);
  }
  return finish_gac(s);
}
#endif

// Each bad input: exit code 2 and one line "gac: error: ..." naming the problem.
inline void expect_clear_error(const Result& r, const std::string& needle) {
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(r.err.rfind("gac: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// ---- Split runs, signals (test_split_run.cpp, test_slurm.cpp, test_cluster.cpp) ----

// TempDirTest with configs written into it.
class RunDirTest : public TempDirTest {
 protected:
  std::filesystem::path write_config(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return dir_ / name;
  }

  // The kink MLP, 2 sizes n x 2 repeats = 4 streams: a few seconds on 2 cores.
  std::filesystem::path kink_config() {
    return write_config("kink.toml", R"(
[data]
kind = "kink"
[model]
arch = "mlp"
hidden = 10
[run]
seed = 3
n = [4, 8]
repeats = 2
bins = [0.66, 0.67, 0.68, 0.69]
target = 40
)");
  }

  // LeNet (w=0.5) on Fashion-MNIST classes 0 and 1, with `run` as its [run]
  // section. Debian's dataset-fashion-mnist: a test skips without it.
  static constexpr const char* kFashionDir = "/usr/share/datasets/fashion-mnist";
  std::filesystem::path fashion_lenet_config(const std::string& name, const std::string& run) {
    return write_config(name, std::string("[data]\nkind = \"idx\"\npath = \"") + kFashionDir +
                                  "\"\nclasses = [0, 1]\n[model]\narch = \"lenet\"\nwidth = 0.5\n[run]\n" + run);
  }
};

#ifdef GAC_BINARY
// Runs the gac binary and sends it `signal` after `after_s` seconds; one
// still running `kill_after_s` later is killed (SIGKILL).
struct Signalled {
  Result result;
  double exit_s = 0;  // from the signal to the exit (or the kill)
};
inline Signalled signal_gac(const std::vector<std::string>& args, double after_s, int signal, double kill_after_s = 30) {
  const Started s = start_gac(args);
  std::this_thread::sleep_for(std::chrono::duration<double>(after_s));
  kill(s.pid, signal);
  const auto sent = std::chrono::steady_clock::now();
  Signalled out;
  for (;;) {
    siginfo_t info{};
    if (waitid(P_PID, s.pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid != 0) break;  // it exited
    out.exit_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
    if (out.exit_s > kill_after_s) {
      kill(s.pid, SIGKILL);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  out.exit_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
  out.result = finish_gac(s);
  return out;
}

// Interrupts a run at random moments, each between lo and hi times whole_s
// (the time an uninterrupted run took here), until it finishes on its own or
// `attempts` interruptions were made. `interrupt(delay)` runs it, interrupts
// it after `delay` seconds and says whether it was interrupted. This
// machine's speed swings 2-4x, so a run that finishes before its first
// interruption is deleted (`out`) and tried again with half the delays.
// Returns the number of interruptions.
inline int interrupt_at_random_moments(const std::filesystem::path& out, double whole_s, int attempts,
                                       const std::function<bool(double)>& interrupt, double lo = 0.15,
                                       double hi = 0.5) {
  std::mt19937 rng(std::random_device{}());
  int interrupted = 0;
  double scale = 1;
  for (int fresh_starts = 0; interrupted < attempts && fresh_starts < 5;) {
    const double delay = std::uniform_real_distribution<double>(lo, hi)(rng) * whole_s * scale;
    const bool stopped = interrupt(delay);
    std::cerr << "interrupt after " << delay << " s of a " << whole_s << " s run: "
              << (stopped ? "interrupted" : "finished") << "\n";
    if (stopped) {
      ++interrupted;
    } else if (interrupted > 0) {
      break;
    } else {
      std::filesystem::remove_all(out);
      scale /= 2;
      ++fresh_starts;
    }
  }
  return interrupted;
}

// The same with SIGKILL: gac's args, the run directory they write.
inline int kill_at_random_moments(const std::vector<std::string>& args, const std::filesystem::path& out,
                                  double whole_s, int attempts, double lo = 0.15, double hi = 0.5) {
  return interrupt_at_random_moments(
      out, whole_s, attempts, [&](double delay) { return run_gac(args, delay).status == -SIGKILL; }, lo, hi);
}

// Kills the run of `args` (writing `killed`) at random moments, resumes it to
// its end and expects the bytes of `whole`, the same run uninterrupted, which
// took whole_s.
inline void expect_killed_and_resumed_equals(const std::filesystem::path& whole, const std::vector<std::string>& args,
                                             const std::filesystem::path& killed, double whole_s, int attempts) {
  const int kills = kill_at_random_moments(args, killed, whole_s, attempts);
  const Result last = run_gac(args);
  ASSERT_EQ(last.status, 0) << last.err;
  EXPECT_GT(kills, 0) << "the run always finished before the kill";
  EXPECT_EQ(fingerprint(whole), fingerprint(killed));
}
#endif

}  // namespace gac::test

// A CUDA case with no usable device skips, unless GAC_REQUIRE_CUDA=1 (set
// by scripts/gpu-check): then it fails, so that a GPU machine whose driver
// or device is unusable cannot pass the suite by running nothing.
#define GAC_SKIP_WITHOUT_CUDA(why)                                                                  \
  do {                                                                                              \
    const char* require_ = std::getenv("GAC_REQUIRE_CUDA");                                         \
    if (require_ && std::string(require_) == "1") FAIL() << "GAC_REQUIRE_CUDA=1 but no usable CUDA device: " << (why); \
    GTEST_SKIP() << "no usable CUDA device: " << (why);                                            \
  } while (0)

// `expr` throws a gac::Error whose message contains `text`.
#define EXPECT_ERROR_MENTIONS(expr, text)                                                       \
  do {                                                                                          \
    const std::string message_ = ::gac::test::error_of([&] { (void)(expr); });                  \
    EXPECT_NE(message_, "") << #expr " threw no gac::Error";                                    \
    EXPECT_NE(message_.find(text), std::string::npos) << "message: " << message_;               \
  } while (0)
