// Helpers shared by the test files.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "gac/error.h"

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

}  // namespace gac::test

// `expr` throws a gac::Error whose message contains `text`.
#define EXPECT_ERROR_MENTIONS(expr, text)                                                       \
  do {                                                                                          \
    const std::string message_ = ::gac::test::error_of([&] { (void)(expr); });                  \
    EXPECT_NE(message_, "") << #expr " threw no gac::Error";                                    \
    EXPECT_NE(message_.find(text), std::string::npos) << "message: " << message_;               \
  } while (0)
