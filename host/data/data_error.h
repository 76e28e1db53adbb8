// Messages of the data module (host/data/): every problem with a data file or
// setting is a gac::Error starting "data: " that names it, with its numbers
// shown exactly.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>

#include "gac/error.h"

// gac::data_detail: what the files of host/data/ share with each other and
// with nobody else.
namespace gac::data_detail {

[[noreturn]] inline void fail(const std::string& message) { throw Error("data: " + message); }

inline std::string num(int64_t v) { return std::to_string(v); }

// Shortest text that reads back as v ("1.5", not "1.500000").
inline std::string show(double v) {
  char text[32];
  const auto end = std::to_chars(text, text + sizeof text, v).ptr;
  return std::string(text, end);
}

}  // namespace gac::data_detail
