#include "gac/text.h"

#include <charconv>
#include <cstdio>

namespace gac {

std::string shortest(double v) {
  char text[32];
  return std::string(text, std::to_chars(text, text + sizeof text, v).ptr);
}

std::string shortest(float v) {
  char text[32];
  return std::string(text, std::to_chars(text, text + sizeof text, v).ptr);
}

std::string grouped(int64_t v) {
  const std::string digits = std::to_string(v < 0 ? -(v + 1) + uint64_t{1} : static_cast<uint64_t>(v));
  std::string out = v < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string gib(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f GiB", static_cast<double>(bytes) / (1ull << 30));
  return text;
}

namespace {

// Length of the valid UTF-8 sequence of a non-ASCII character starting at
// text[i] (2 to 4), its code point in `code`; 0 if there is none.
size_t utf8_sequence(std::string_view text, size_t i, uint32_t& code) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  size_t len;
  if (lead >= 0xC2 && lead <= 0xDF) len = 2, code = lead & 0x1F;
  else if (lead >= 0xE0 && lead <= 0xEF) len = 3, code = lead & 0x0F;
  else if (lead >= 0xF0 && lead <= 0xF4) len = 4, code = lead & 0x07;
  else return 0;
  if (i + len > text.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code = code << 6 | (byte(i + k) & 0x3F);
  }
  // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
  const bool overlong = (len == 3 && code < 0x800) || (len == 4 && code < 0x10000);
  if (overlong || (code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF) return 0;
  return len;
}

}  // namespace

bool valid_utf8(std::string_view text) {
  uint32_t code;
  for (size_t i = 0; i < text.size();) {
    const size_t len = static_cast<unsigned char>(text[i]) < 0x80 ? 1 : utf8_sequence(text, i, code);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    uint32_t code = 0;
    const size_t len = c >= 0x80 ? utf8_sequence(text, i, code) : 0;
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else if (c == '\n' || c == '\t' || c == '\r') {
      out += c == '\n' ? "\\n" : c == '\t' ? "\\t" : "\\r";
    } else if (len > 0 && code >= 0xA0 && code != 0x2028 && code != 0x2029) {
      // (C1 controls, NEL among them, and the line and paragraph separators could break the line.)
      out.append(text.substr(i, len));
      i += len;
      continue;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
    ++i;
  }
  return out;
}

}  // namespace gac
