// Number formatting shared by the progress lines, the report and the bench table.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>

namespace gac {

// 3 significant digits with a k/M/G suffix: 1.23M, 45.6k, 789.
inline std::string human_count(double v) {
  char buf[32];
  const char* suffix = "";
  if (v >= 1e9) v /= 1e9, suffix = "G";
  else if (v >= 1e6) v /= 1e6, suffix = "M";
  else if (v >= 1e3) v /= 1e3, suffix = "k";
  std::snprintf(buf, sizeof buf, v >= 100 ? "%.0f%s" : v >= 10 ? "%.1f%s" : "%.2f%s", v, suffix);
  return buf;
}

// A count the same way, but below 1000 as the whole number it is ("7", not "7.00").
inline std::string human_integer(uint64_t v) { return v < 1000 ? std::to_string(v) : human_count(static_cast<double>(v)); }

// `decimals` digits after the point ("%.*f"); "-" for NaN and infinity.
inline std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace gac
