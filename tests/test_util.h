// Helpers shared by the test files.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

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
    s << " classes";
    for (auto c : st.classes) s << " " << c;
    s << "\n";
  }
  for (const StoredModel& m : store->models())
    s << "model " << m.n << " " << m.repeat << " " << m.draw << " " << m.bin << " " << m.train_loss << " " << m.test_acc
      << " " << m.test_loss << " " << m.file << " " << std::hash<std::string>{}(slurp(run / m.file)) << "\n";
  return s.str();
}

}  // namespace gac::test

// `expr` throws a gac::Error whose message contains `text`.
#define EXPECT_ERROR_MENTIONS(expr, text)                                                       \
  do {                                                                                          \
    const std::string message_ = ::gac::test::error_of([&] { (void)(expr); });                  \
    EXPECT_NE(message_, "") << #expr " threw no gac::Error";                                    \
    EXPECT_NE(message_.find(text), std::string::npos) << "message: " << message_;               \
  } while (0)
