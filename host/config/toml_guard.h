// A guard in front of toml++: text it cannot read safely is refused first.
#pragma once

#include <string_view>

namespace gac {

// Where toml++ 3.3 (Debian's) would classify a byte >= 0x80 as whitespace: it
// reaches undefined behaviour doing so for some of them (found by
// fuzz/fuzz_config), so such text never reaches it. That is anywhere outside
// strings and comments (TOML allows none there), and in a """string""" right
// after a backslash and any ASCII whitespace (an escape, or a line-ending
// backslash). A quote starts a string only where a key or value can start
// (after = [ , { . or at the start of a line); anywhere else toml++ reads it
// as part of a bare token, which is where it would classify.
struct NonAsciiSpot {
  size_t at = std::string_view::npos;
  const char* what = "";
};
NonAsciiSpot non_ascii_toml_cannot_read(std::string_view text);

}  // namespace gac
