#include "host/config/toml_guard.h"

#include <algorithm>
#include <string>

namespace gac {

NonAsciiSpot non_ascii_toml_cannot_read(std::string_view text) {
  const size_t start = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;  // a UTF-8 byte order mark is allowed
  char previous = '\n';  // the last character that is not a space or tab
  for (size_t i = start; i < text.size();) {
    const char c = text[i];
    if (static_cast<unsigned char>(c) >= 0x80) return {i, "a non-ASCII character outside a string or comment"};
    if (c == '#') {
      i = std::min(text.find('\n', i), text.size());
      continue;
    }
    if ((c == '"' || c == '\'') && std::string_view("=[,{.\n").find(previous) != std::string_view::npos) {
      // "...", '...' (both end at a newline at the latest), """...""" or ''''...''''
      const size_t width = text.substr(i, 3) == std::string(3, c) ? 3 : 1;
      const std::string_view close = text.substr(i, width);
      i += width;
      while (i < text.size() && text.substr(i, width) != close && (width == 3 || text[i] != '\n')) {
        if (c == '"' && text[i] == '\\') {  // an escape: the next byte is the string's
          size_t next = i + 1;
          while (width == 3 && next < text.size() && std::string_view(" \t\r\n").find(text[next]) != std::string_view::npos)
            ++next;
          if (width == 3 && next < text.size() && static_cast<unsigned char>(text[next]) >= 0x80)
            return {next, "a non-ASCII character after a backslash in a \"\"\"string\"\"\" (write it as \\u.... or \\U........)"};
          i += 2;
        } else {
          ++i;
        }
      }
      if (i < text.size() && text[i] == c) i += width;
      while (width == 3 && i < text.size() && text[i] == c) ++i;  // """a"""" ends with a quote in the string
      previous = c;
      continue;
    }
    if (c != ' ' && c != '\t') previous = c;
    ++i;
  }
  return {};
}

}  // namespace gac
