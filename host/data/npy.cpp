// NumPy .npy reading and writing, and atomic file replacement.
//
// Format reference: numpy/lib/format.py. A file is the magic "\x93NUMPY",
// a version (major, minor), a little-endian header length (2 bytes in v1,
// 4 bytes in v2/v3), then a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// padded with spaces and a newline, then the raw C-order data.
#include "gac/npy.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>

#include "gac/error.h"

namespace gac {

static_assert(std::endian::native == std::endian::little, "gac's .npy code assumes a little-endian host");

namespace {

const std::string kMagic = "\x93NUMPY";
constexpr size_t kAlign = 64;  // numpy aligns the data to 64 bytes since 1.14

std::string errno_text() { return std::strerror(errno); }

// The start of a header for a message: a header may be any bytes, up to 4 GiB.
std::string excerpt(const std::string& header) {
  constexpr size_t kShown = 120;
  return header.size() <= kShown ? header : header.substr(0, kShown) + "...";
}

// ---------------------------------------------------------------------------
// Header dict parsing: a tiny parser for the Python literals numpy writes
// (strings, True/False, tuples of integers), tolerant of spacing, either
// quote style and trailing commas.

struct HeaderValue {
  enum Kind { string, boolean, tuple } kind = string;
  std::string text;
  bool flag = false;
  std::vector<int64_t> items;
};

class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& file) : s_(text), file_(file) {}

  std::map<std::string, HeaderValue> parse_dict() {
    std::map<std::string, HeaderValue> dict;
    expect('{');
    while (!accept('}')) {
      skip_space();
      const std::string key = parse_string();
      expect(':');
      dict[key] = parse_value();
      if (!accept(',')) {
        expect('}');
        break;
      }
    }
    return dict;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(file_ + ": malformed .npy header (" + what + " at offset " + std::to_string(pos_) + "): " + excerpt(s_));
  }

  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }

  bool accept(char c) {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void expect(char c) {
    if (!accept(c)) fail(std::string("expected '") + c + "'");
  }

  std::string parse_string() {
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) fail("expected a string");
    const char quote = s_[pos_++];
    const size_t end = s_.find(quote, pos_);
    if (end == std::string::npos) fail("unterminated string");
    std::string out = s_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return out;
  }

  int64_t parse_int() {
    skip_space();
    const size_t start = pos_;
    while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    if (pos_ == start) fail("expected a non-negative integer");
    // Python 2 era numpy wrote longs as "3L".
    const std::string digits = s_.substr(start, pos_ - start);
    if (pos_ < s_.size() && s_[pos_] == 'L') ++pos_;
    if (digits.size() > 18) fail("dimension too large");
    return std::stoll(digits);
  }

  HeaderValue parse_value() {
    skip_space();
    HeaderValue v;
    if (pos_ < s_.size() && (s_[pos_] == '\'' || s_[pos_] == '"')) {
      v.text = parse_string();
    } else if (s_.compare(pos_, 4, "True") == 0 || s_.compare(pos_, 5, "False") == 0) {
      v.kind = HeaderValue::boolean;
      v.flag = s_[pos_] == 'T';
      pos_ += v.flag ? 4 : 5;
    } else if (accept('(')) {
      v.kind = HeaderValue::tuple;
      while (!accept(')')) {
        v.items.push_back(parse_int());
        if (!accept(',')) {
          expect(')');
          break;
        }
      }
    } else {
      // e.g. a list descr of a structured dtype
      fail("unsupported value");
    }
    return v;
  }

  const std::string& s_;
  const std::string& file_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------
// dtypes

struct DType {
  char kind;     // 'b' bool, 'i' signed, 'u' unsigned, 'f' float
  size_t size;   // bytes per element
};

DType parse_descr(const std::string& descr, const std::string& file) {
  static const std::map<std::string, DType> supported = {
      {"|b1", {'b', 1}}, {"|i1", {'i', 1}}, {"|u1", {'u', 1}}, {"<i2", {'i', 2}}, {"<u2", {'u', 2}},
      {"<i4", {'i', 4}}, {"<u4", {'u', 4}}, {"<i8", {'i', 8}}, {"<u8", {'u', 8}}, {"<f4", {'f', 4}},
      {"<f8", {'f', 8}}};
  if (auto it = supported.find(descr); it != supported.end()) return it->second;
  // Byte order is meaningless for one-byte types; some writers say '<u1'.
  if (descr.size() == 3 && descr[0] == '<' && descr[2] == '1') {
    std::string one_byte = descr;
    one_byte[0] = '|';
    return parse_descr(one_byte, file);
  }
  if (!descr.empty() && descr[0] == '>')
    throw Error(file + ": big-endian dtype '" + excerpt(descr) + "' is not supported; save the array as little-endian "
                "(e.g. a.astype(a.dtype.newbyteorder('<')))");
  throw Error(file + ": unsupported dtype '" + excerpt(descr) +
              "' (supported: bool, int8..int64, uint8..uint64, float32, float64, little-endian)");
}

template <typename T>
void convert(const char* src, size_t count, std::vector<double>& out) {
  for (size_t i = 0; i < count; ++i) {
    T v;
    std::memcpy(&v, src + i * sizeof(T), sizeof(T));
    out[i] = static_cast<double>(v);
  }
}

void convert_data(DType t, const char* src, size_t count, std::vector<double>& out) {
  out.resize(count);
  switch (t.kind) {
    case 'b':
      for (size_t i = 0; i < count; ++i) out[i] = src[i] != 0 ? 1.0 : 0.0;
      return;
    case 'i':
      if (t.size == 1) return convert<int8_t>(src, count, out);
      if (t.size == 2) return convert<int16_t>(src, count, out);
      if (t.size == 4) return convert<int32_t>(src, count, out);
      return convert<int64_t>(src, count, out);
    case 'u':
      if (t.size == 1) return convert<uint8_t>(src, count, out);
      if (t.size == 2) return convert<uint16_t>(src, count, out);
      if (t.size == 4) return convert<uint32_t>(src, count, out);
      return convert<uint64_t>(src, count, out);
    default:
      if (t.size == 4) return convert<float>(src, count, out);
      return convert<double>(src, count, out);
  }
}

// A .npy file read piece by piece: the header, then exactly the data it
// announces. Bytes after the data (numpy.load ignores them, however many:
// a sparse file can claim terabytes) are never read.
class NpyFile {
 public:
  explicit NpyFile(const std::filesystem::path& path) : name_(path.string()), in_(path, std::ios::binary) {
    if (!in_) throw Error(name_ + ": cannot open: " + errno_text());
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) throw Error(name_ + ": cannot read: not a regular file");
    size_ = std::filesystem::file_size(path, ec);
    if (ec) throw Error(name_ + ": cannot read: " + ec.message());
  }

  uint64_t left() const { return size_ - read_; }

  // Up to `count` bytes (fewer at the end of the file).
  std::string read(uint64_t count) {
    std::string bytes(static_cast<size_t>(std::min(count, left())), '\0');
    in_.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (in_.bad()) throw Error(name_ + ": read error: " + errno_text());
    bytes.resize(static_cast<size_t>(in_.gcount()));
    read_ += bytes.size();
    return bytes;
  }

 private:
  std::string name_;
  std::ifstream in_;
  uint64_t size_ = 0, read_ = 0;
};

uint32_t read_le(const std::string& bytes, size_t offset, size_t width) {
  uint32_t v = 0;
  for (size_t i = 0; i < width; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  return v;
}

// Number of elements of `shape`, refusing products that overflow.
uint64_t element_count(const std::vector<int64_t>& shape, const std::string& file) {
  uint64_t count = 1;
  for (int64_t d : shape) {
    if (d != 0 && count > std::numeric_limits<uint64_t>::max() / 16 / static_cast<uint64_t>(d))
      throw Error(file + ": .npy shape is too large");
    count *= static_cast<uint64_t>(d);
  }
  return count;
}

// ---------------------------------------------------------------------------
// Writing

std::string shape_literal(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) s += ",";  // a 1-tuple in Python needs its comma
  return s + ")";
}

// Version 1.0 .npy bytes with the data starting at a multiple of kAlign.
std::string npy_bytes(const char* descr, const void* data, size_t elem_size, const std::vector<int64_t>& shape) {
  for (int64_t d : shape)
    if (d < 0) throw Error("npy: negative dimension in shape " + shape_literal(shape));
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape_literal(shape) + ", }";
  const size_t prefix = kMagic.size() + 2 + 2;  // magic, version, 2-byte header length
  const size_t total = (prefix + header.size() + 1 + kAlign - 1) / kAlign * kAlign;
  header.append(total - prefix - header.size() - 1, ' ');
  header += '\n';
  if (header.size() > 0xffff) throw Error("npy: header too long for format 1.0: " + shape_literal(shape));

  const size_t data_bytes = element_count(shape, "npy") * elem_size;
  std::string out = kMagic;
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(static_cast<const char*>(data), data_bytes);
  return out;
}

// Closes a file descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

NpyArray read_npy(const std::filesystem::path& path) {
  const std::string file = path.string();
  NpyFile in(path);
  const std::string start = in.read(kMagic.size() + 2);
  if (start.size() < kMagic.size() + 2 || start.compare(0, kMagic.size(), kMagic) != 0)
    throw Error(file + ": not a .npy file");

  const int major = static_cast<unsigned char>(start[6]);
  if (major < 1 || major > 3)
    throw Error(file + ": unsupported .npy format version " + std::to_string(major) + "." +
                std::to_string(static_cast<unsigned char>(start[7])));
  const size_t len_width = major == 1 ? 2 : 4;
  const std::string length = in.read(len_width);
  if (length.size() < len_width) throw Error(file + ": truncated .npy header");
  const size_t header_len = read_le(length, 0, len_width);
  if (header_len > in.left()) throw Error(file + ": truncated .npy header");

  const std::string header = in.read(header_len);
  const auto dict = HeaderParser(header, file).parse_dict();
  auto field = [&](const char* key, HeaderValue::Kind kind) -> const HeaderValue& {
    auto it = dict.find(key);
    if (it == dict.end() || it->second.kind != kind)
      throw Error(file + ": .npy header lacks a valid '" + key + "' entry: " + excerpt(header));
    return it->second;
  };
  const DType dtype = parse_descr(field("descr", HeaderValue::string).text, file);
  if (field("fortran_order", HeaderValue::boolean).flag)
    throw Error(file + ": Fortran-ordered arrays are not supported; save a C-ordered array "
                "(e.g. numpy.ascontiguousarray)");

  NpyArray out;
  out.shape = field("shape", HeaderValue::tuple).items;
  const uint64_t count = element_count(out.shape, file);
  const uint64_t expected = count * dtype.size;
  // Like numpy.load, bytes after the data are ignored (and not read).
  if (in.left() < expected)
    throw Error(file + ": truncated: expected " + std::to_string(expected) + " bytes, found " + std::to_string(in.left()));
  const std::string data = in.read(expected);
  convert_data(dtype, data.data(), count, out.data);
  return out;
}

std::string npy_bytes_f32(const float* data, const std::vector<int64_t>& shape) {
  return npy_bytes("<f4", data, sizeof(float), shape);
}

std::string npy_bytes_i32(const int32_t* data, const std::vector<int64_t>& shape) {
  return npy_bytes("<i4", data, sizeof(int32_t), shape);
}

void write_file_atomic(const std::filesystem::path& path, const std::string& bytes, bool durable) {
  const std::string tmp = path.string() + ".tmp." + std::to_string(::getpid());
  auto fail = [&](const std::string& what) {
    const std::string reason = errno_text();
    ::unlink(tmp.c_str());
    throw Error("cannot write " + path.string() + ": " + what + ": " + reason);
  };
  {
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (f.fd < 0) throw Error("cannot write " + path.string() + ": " + errno_text());
    for (size_t done = 0; done < bytes.size();) {
      const ssize_t n = ::write(f.fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail("write");
      done += static_cast<size_t>(n);
    }
    if (durable && ::fsync(f.fd) != 0) fail("fsync");
    const int fd = f.fd;
    f.fd = -1;
    if (::close(fd) != 0) fail("close");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename");
  if (!durable) return;

  // The rename is durable only once the directory entry is on disk.
  const std::filesystem::path parent = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  Fd dir{::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (dir.fd < 0 || ::fsync(dir.fd) != 0)
    throw Error("cannot write " + path.string() + ": fsync of directory " + parent.string() + ": " + errno_text());
}

}  // namespace gac
