// IDX files (MNIST, Fashion-MNIST), raw or gzip-compressed.
#include <climits>
#include <cstdio>

#include "host/data/raw_data.h"

namespace gac::data_detail {
namespace {

namespace fs = std::filesystem;

uint32_t be_u32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

// "fashion-mnist" for "/usr/share/datasets/fashion-mnist/".
std::string last_component(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

// An IDX file checked against its header: the sizes after the magic number
// and the offset of the first data byte.
struct IdxFile {
  std::vector<uint8_t> bytes;
  std::vector<uint32_t> dims;
  size_t offset = 0;
};

IdxFile read_idx(const fs::path& path, uint32_t magic, const std::string& what) {
  IdxFile f{read_file_bytes(path), {}, 0};
  const std::string name = path.string();
  const int ndims = static_cast<int>(magic & 0xff);
  f.offset = 4 + 4 * static_cast<size_t>(ndims);
  if (f.bytes.size() < f.offset)
    fail(name + ": truncated: the IDX header needs " + num(f.offset) + " bytes, the file has " + num(f.bytes.size()));
  if (be_u32(f.bytes.data()) != magic) {
    char text[64];
    std::snprintf(text, sizeof text, "bad magic number 0x%08x (expected 0x%08x)", be_u32(f.bytes.data()), magic);
    fail(name + ": " + text + "; not an IDX " + what + " file");
  }
  uint64_t expected = 1;  // saturates instead of overflowing: then it is surely truncated
  for (int i = 0; i < ndims; ++i) {
    const uint32_t d = be_u32(f.bytes.data() + 4 + 4 * i);
    if (d == 0) fail(name + ": dimension " + num(i) + " of the IDX header is 0");
    f.dims.push_back(d);
    expected = expected > UINT64_MAX / d ? UINT64_MAX : expected * d;
  }
  const uint64_t got = f.bytes.size() - f.offset;
  if (got < expected)
    fail(name + ": truncated: expected " + std::to_string(expected) + " " + what + " bytes, got " + num(got));
  if (got > expected) fail(name + ": " + num(got - expected) + " unexpected bytes after the " + what + " data");
  return f;
}

// train-images-idx3-ubyte or its .gz, whichever exists (raw first).
fs::path idx_path(const DataConfig& cfg, const std::string& stem) {
  const fs::path raw = fs::path(cfg.path) / (cfg.prefix + stem);
  fs::path gz = raw;
  gz += ".gz";
  std::error_code ec;
  if (fs::is_regular_file(raw, ec)) return raw;
  if (fs::is_regular_file(gz, ec)) return gz;
  fail("idx: missing " + raw.string() + " (or " + gz.filename().string() + ")");
}

Split<uint8_t> load_idx_split(const DataConfig& cfg, const std::string& set, Shape& shape) {
  const fs::path images_path = idx_path(cfg, set + "-images-idx3-ubyte");
  const fs::path labels_path = idx_path(cfg, set + "-labels-idx1-ubyte");
  IdxFile images = read_idx(images_path, 0x00000803, "image");
  const IdxFile labels = read_idx(labels_path, 0x00000801, "label");
  if (images.dims[0] != labels.dims[0])
    fail(images_path.string() + " has " + num(images.dims[0]) + " images but " + labels_path.string() + " has " +
         num(labels.dims[0]) + " labels");
  if (int64_t{images.dims[1]} * images.dims[2] > INT_MAX)
    fail(images_path.string() + ": images of " + num(images.dims[1]) + "x" + num(images.dims[2]) + " are too large");
  shape = Shape{1, static_cast<int>(images.dims[1]), static_cast<int>(images.dims[2])};
  Split<uint8_t> split;
  split.labels.assign(labels.bytes.begin() + static_cast<std::ptrdiff_t>(labels.offset), labels.bytes.end());
  images.bytes.erase(images.bytes.begin(), images.bytes.begin() + static_cast<std::ptrdiff_t>(images.offset));
  split.x = std::move(images.bytes);
  return split;
}

}  // namespace

RawData<uint8_t> load_idx(const DataConfig& cfg) {
  require_directory(cfg.path, "idx");
  RawData<uint8_t> raw;
  raw.name = "idx:" + last_component(cfg.path);
  Shape test_shape;
  raw.train = load_idx_split(cfg, "train", raw.shape);
  raw.test = load_idx_split(cfg, "t10k", test_shape);
  if (!(test_shape == raw.shape))
    fail(cfg.path + ": training images are " + num(raw.shape.h) + "x" + num(raw.shape.w) + " but test images are " +
         num(test_shape.h) + "x" + num(test_shape.w));
  return raw;
}

}  // namespace gac::data_detail
