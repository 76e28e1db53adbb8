// A guard in front of toml++: text it cannot read safely is refused first.
#pragma once

#include <string>
#include <string_view>
#include <toml++/toml.h>

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

// The same text with every character toml++ 3.3 cannot classify replaced by
// one of the same UTF-8 length that it can (and that is no more whitespace):
// line, column and structure are unchanged, only string contents differ.
std::string toml_classifiable(std::string_view text);

// toml::parse behind both nets: the guard above refuses text with a clear
// error, then the text is parsed as toml_classifiable() first, so that text
// toml++ would refuse only after misreading (the guard's model of strings
// differs from toml++'s only in text that is not TOML) is refused by that
// parse. Only a document that parses is read as written. Throws gac::Error
// naming source:line:column.
toml::table parse_toml_safely(std::string_view text, const std::string& source);

}  // namespace gac
