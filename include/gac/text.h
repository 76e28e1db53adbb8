// Numbers and names as gac writes them for people: floats in the shortest
// form that reads back exactly (0.3, not 0.29999999999999999), and text that
// came from outside (file names, config values, file contents) escaped so
// that every message stays on one line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace gac {

// Shortest decimal text that parses back to exactly `v` ("0.3", "1e+300").
std::string shortest(double v);
std::string shortest(float v);  // the float's own shortest form: 0.1f is "0.1"

// An integer with thousands separators: 2,147,483,647.
std::string grouped(int64_t v);

// Bytes in GiB with one decimal: "1.5 GiB".
std::string gib(uint64_t bytes);

// True when `text` is well-formed UTF-8 (ASCII included).
bool valid_utf8(std::string_view text);

// `text` with control characters written as \n, \t, \r or \xNN, and bytes
// that are not valid UTF-8 as \xNN: printable on one line, nothing lost.
std::string one_line(std::string_view text);

}  // namespace gac
