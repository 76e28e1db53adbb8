// Helpers shared by the test files.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gac/error.h"
#include "gac/store.h"

namespace gac::test {

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
    s << "\n";
  }
  for (const StoredModel& m : store->models())
    s << "model " << m.n << " " << m.repeat << " " << m.draw << " " << m.bin << " " << m.train_loss << " " << m.test_acc
      << " " << m.test_loss << " " << m.file << " " << std::hash<std::string>{}(slurp(run / m.file)) << "\n";
  return s.str();
}

struct Result {
  int status = -1;  // exit code, or -signal when killed
  std::string out, err;
  double exit_after_signal_s = 0;  // from the signal to the exit
};

// Runs the gac binary; with signal_after_s >= 0 sends `signal` after that long.
inline Result run_gac(const std::vector<std::string>& args, double signal_after_s = -1, int signal = SIGKILL) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("gac_out_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string out = (dir / "stdout").string(), err = (dir / "stderr").string();
  const pid_t pid = fork();
  if (pid == 0) {
    const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    std::vector<char*> argv{const_cast<char*>(GAC_BINARY)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(GAC_BINARY, argv.data());
    _exit(127);
  }
  auto signalled = std::chrono::steady_clock::now();
  if (signal_after_s >= 0) {
    std::this_thread::sleep_for(std::chrono::duration<double>(signal_after_s));
    kill(pid, signal);
    signalled = std::chrono::steady_clock::now();
  }
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  Result r;
  r.exit_after_signal_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - signalled).count();
  r.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -WTERMSIG(wstatus);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace gac::test

// `expr` throws a gac::Error whose message contains `text`.
#define EXPECT_ERROR_MENTIONS(expr, text)                                                       \
  do {                                                                                          \
    const std::string message_ = ::gac::test::error_of([&] { (void)(expr); });                  \
    EXPECT_NE(message_, "") << #expr " threw no gac::Error";                                    \
    EXPECT_NE(message_.find(text), std::string::npos) << "message: " << message_;               \
  } while (0)
