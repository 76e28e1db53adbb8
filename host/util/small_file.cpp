#include "host/util/small_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "gac/error.h"

namespace gac {

std::string read_small_file(const std::filesystem::path& path, const std::string& prefix, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(prefix + "cannot read " + path.string() + ": " + std::strerror(errno));
  std::string text;
  char piece[1 << 16];
  while (in.read(piece, sizeof piece) || in.gcount() > 0) {
    text.append(piece, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxSmallFileBytes) throw Error(prefix + path.string() + " is larger than 16 MiB; " + what);
  }
  if (in.bad()) throw Error(prefix + "cannot read " + path.string() + ": " + std::strerror(errno));
  return text;
}

}  // namespace gac
