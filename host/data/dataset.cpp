// Datasets: IDX, CIFAR-10 binary, NPY and CSV files and the synthetic kink
// and slab sets, loaded into one in-memory form (see gac/dataset.h). Every
// problem with a file is a gac::Error naming it: a wrong file must never turn
// into silently wrong numbers.
#include "gac/dataset.h"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "gac/error.h"
#include "gac/npy.h"
#include "gac/philox.h"

namespace gac {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& message) { throw Error("data: " + message); }

std::string num(int64_t v) { return std::to_string(v); }

// Shortest text that reads back as v ("1.5", not "1.500000").
std::string show(double v) {
  char text[32];
  const auto end = std::to_chars(text, text + sizeof text, v).ptr;
  return std::string(text, end);
}

// ---- Files ------------------------------------------------------------------

void require_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) fail(path.string() + ": no such file");
}

void require_directory(const std::string& dir, const std::string& kind) {
  if (dir.empty()) fail("data.path (the directory of the " + kind + " files) is not set");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir + ": no such directory (data.path for " + kind + ")");
}

std::vector<uint8_t> read_gz_bytes(const fs::path& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) fail(path.string() + ": cannot open");
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> chunk(1 << 20);
  int got;
  while ((got = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()))) > 0)
    bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + got);
  // gzread reports a cut-off stream only through gzerror (Z_BUF_ERROR), and
  // passes a file that is not gzip at all through unchanged: check both.
  int err = Z_OK;
  std::string message = gzerror(f, &err);  // "path: what"
  if (message.rfind(path.string() + ": ", 0) == 0) message.erase(0, path.string().size() + 2);
  const bool plain = gzdirect(f) != 0;
  gzclose(f);
  if (err == Z_BUF_ERROR) fail(path.string() + ": truncated gzip data");
  if (err != Z_OK || got < 0) fail(path.string() + ": corrupt gzip data (" + message + ")");
  if (plain) fail(path.string() + (bytes.empty() ? ": empty file" : ": not gzip data (the name ends in .gz)"));
  return bytes;
}

// The whole content of a file; a name ending in ".gz" is decompressed.
std::vector<uint8_t> read_file_bytes(const fs::path& path) {
  require_file(path);
  if (path.extension() == ".gz") return read_gz_bytes(path);
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (!in || ec) fail(path.string() + ": cannot open");
  std::vector<uint8_t> bytes(size);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(in.gcount()) != size) fail(path.string() + ": read error");
  return bytes;
}

uint32_t be_u32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

// ---- The form every file format is read into ----------------------------------

struct Shape {
  int c = 1, h = 1, w = 1;
  int dim() const { return c * h * w; }
  bool operator==(const Shape&) const = default;
  std::string str() const { return num(c) + "x" + num(h) + "x" + num(w); }
};

// One split as stored in the files: rows of `dim` values (bytes or doubles)
// and their original labels.
template <class T>
struct Split {
  std::vector<T> x;
  std::vector<int> labels;
};

template <class T>
struct RawData {
  std::string name;
  Shape shape;
  bool flat = false;  // rows are plain feature vectors, not [c][h][w] images
  Split<T> train, test;
};

// data.shape ([c, h, w]), when given, replaces the shape found in the file.
void apply_config_shape(const std::vector<int>& cfg_shape, RawData<double>& raw, const std::string& file) {
  if (cfg_shape.empty()) return;
  if (cfg_shape.size() != 3 || cfg_shape[0] < 1 || cfg_shape[1] < 1 || cfg_shape[2] < 1)
    fail("data.shape must be [channels, height, width] of positive sizes");
  const Shape s{cfg_shape[0], cfg_shape[1], cfg_shape[2]};
  if (int64_t{s.c} * s.h * s.w != raw.shape.dim())
    fail("data.shape " + s.str() + " has " + num(int64_t{s.c} * s.h * s.w) + " values per example but " + file +
         " has " + num(raw.shape.dim()));
  raw.shape = s;
  raw.flat = false;
}

// "fashion-mnist" for "/usr/share/datasets/fashion-mnist/".
std::string last_component(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

// ---- IDX (MNIST, Fashion-MNIST) -------------------------------------------------

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

// ---- CIFAR-10 binary version ----------------------------------------------------

Split<uint8_t> load_cifar_files(const fs::path& dir, const std::vector<std::string>& names) {
  constexpr size_t kPixels = 3 * 32 * 32, kRecord = 1 + kPixels;
  Split<uint8_t> split;
  for (const std::string& file : names) {
    const fs::path path = dir / file;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) fail("cifar10: missing batch file " + path.string());
    const std::vector<uint8_t> bytes = read_file_bytes(path);
    if (bytes.empty() || bytes.size() % kRecord != 0)
      fail(path.string() + ": size " + num(bytes.size()) + " is not a positive multiple of the " + num(kRecord) +
           "-byte CIFAR-10 record");
    for (size_t at = 0; at < bytes.size(); at += kRecord) {
      if (bytes[at] >= 10)
        fail(path.string() + ": record " + num(at / kRecord) + " has label " + num(bytes[at]) + " (CIFAR-10 labels are 0..9)");
      split.labels.push_back(bytes[at]);
      split.x.insert(split.x.end(), bytes.begin() + static_cast<std::ptrdiff_t>(at + 1),
                     bytes.begin() + static_cast<std::ptrdiff_t>(at + kRecord));
    }
  }
  return split;
}

RawData<uint8_t> load_cifar10(const DataConfig& cfg) {
  require_directory(cfg.path, "cifar10");
  RawData<uint8_t> raw;
  raw.name = "cifar10";
  raw.shape = Shape{3, 32, 32};
  raw.train = load_cifar_files(cfg.path, {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                          "data_batch_4.bin", "data_batch_5.bin"});
  raw.test = load_cifar_files(cfg.path, {"test_batch.bin"});
  return raw;
}

// ---- User features: NPY and CSV ----------------------------------------------------

// A label stored as a number: it must be an integer that fits an int.
int to_label(double v, const std::string& where) {
  if (!(std::isfinite(v) && v == std::floor(v) && v >= INT_MIN && v <= INT_MAX))
    fail(where + ": label " + show(v) + " is not an integer");
  return static_cast<int>(v);
}

// Features are used as float32: a finite double beyond its range would become inf.
void require_finite(double v, const std::string& where) {
  if (!std::isfinite(v)) fail(where + ": feature value " + show(v) + " is not finite");
  if (!std::isfinite(static_cast<float>(v))) fail(where + ": feature value " + show(v) + " is beyond float32's range");
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + num(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

Split<double> load_npy_split(const std::string& x_file, const std::string& y_file, Shape& shape, bool& flat) {
  require_file(x_file);
  require_file(y_file);
  NpyArray x = read_npy(x_file);
  const NpyArray y = read_npy(y_file);
  const auto& xs = x.shape;
  const bool positive = std::all_of(xs.begin(), xs.end(), [](int64_t d) { return d > 0 && d <= INT_MAX; });
  if ((xs.size() != 2 && xs.size() != 4) || !positive)
    fail(x_file + ": features must have shape (N, D) or (N, c, h, w) with no empty axis, got " + shape_text(xs));
  // The reader holds every value, so their count bounds the row size.
  if (x.data.size() / static_cast<size_t>(xs[0]) > INT_MAX)
    fail(x_file + ": examples of shape " + shape_text(xs) + " are too large");
  flat = xs.size() == 2;
  shape = flat ? Shape{1, 1, int(xs[1])} : Shape{int(xs[1]), int(xs[2]), int(xs[3])};
  if (y.shape.size() != 1 || y.shape[0] != xs[0])
    fail(y_file + ": labels must have shape (" + num(xs[0]) + ",) to match " + x_file + ", got " + shape_text(y.shape));
  Split<double> split;
  for (size_t i = 0; i < y.data.size(); ++i) split.labels.push_back(to_label(y.data[i], y_file + ": index " + num(i)));
  const auto bad = std::find_if(x.data.begin(), x.data.end(), [](double v) { return !std::isfinite(static_cast<float>(v)); });
  if (bad != x.data.end()) require_finite(*bad, x_file + ": example " + num((bad - x.data.begin()) / shape.dim()));
  split.x = std::move(x.data);
  return split;
}

RawData<double> load_npy(const DataConfig& cfg) {
  RawData<double> raw;
  raw.name = "npy:" + fs::path(cfg.train_x).filename().string();
  Shape test_shape;
  bool test_flat = false;
  raw.train = load_npy_split(cfg.train_x, cfg.train_y, raw.shape, raw.flat);
  raw.test = load_npy_split(cfg.test_x, cfg.test_y, test_shape, test_flat);
  if (!(test_shape == raw.shape))
    fail(cfg.test_x + ": examples of " + num(test_shape.dim()) + " values (" + test_shape.str() + ") but " + cfg.train_x +
         " has " + num(raw.shape.dim()) + " (" + raw.shape.str() + ")");
  apply_config_shape(cfg.shape, raw, cfg.train_x);
  return raw;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  for (size_t start = 0;;) {
    const size_t comma = line.find(',', start);
    fields.push_back(trim(line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
    if (comma == std::string_view::npos) return fields;
    start = comma + 1;
  }
}

// A number in the whole field (from_chars: locale-independent); nan/inf are
// numbers here so that they fail later with their own message.
bool parse_number(std::string_view s, double& v) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size();
}

bool all_numeric(const std::vector<std::string_view>& fields) {
  double v;
  return std::all_of(fields.begin(), fields.end(), [&](std::string_view f) { return parse_number(f, v); });
}

Split<double> load_csv_split(const std::string& file, int label_column, int& n_features) {
  const std::vector<uint8_t> bytes = read_file_bytes(file);
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  Split<double> split;
  int n_fields = -1, label_at = -1;
  size_t line_no = 0;
  for (size_t start = 0; start < text.size();) {
    const size_t end = std::min(text.find('\n', start), text.size());
    const std::string_view line = trim(text.substr(start, end - start));
    start = end + 1;
    ++line_no;
    if (line.empty()) continue;
    const std::vector<std::string_view> fields = split_fields(line);
    const std::string where = file + ": line " + num(line_no);
    if (n_fields < 0) {  // the first line fixes the column count and may be a header
      n_fields = static_cast<int>(fields.size());
      if (n_fields < 2) fail(where + ": needs at least one feature column and a label column");
      label_at = label_column < 0 ? n_fields - 1 : label_column;
      if (label_at >= n_fields)
        fail(file + ": data.label_column = " + num(label_column) + " but the file has " + num(n_fields) +
             " columns (0.." + num(n_fields - 1) + ")");
      if (!all_numeric(fields)) continue;
    }
    if (static_cast<int>(fields.size()) != n_fields)
      fail(where + ": " + num(fields.size()) + " fields, expected " + num(n_fields) + " like the first line");
    for (int col = 0; col < n_fields; ++col) {
      const std::string at = where + ", column " + num(col + 1);
      double v;
      if (!parse_number(fields[col], v)) fail(at + ": '" + std::string(fields[col]) + "' is not a number");
      if (col == label_at) {
        split.labels.push_back(to_label(v, at));
      } else {
        require_finite(v, at);
        split.x.push_back(v);
      }
    }
  }
  if (split.labels.empty()) fail(file + ": no data rows");
  n_features = n_fields - 1;
  return split;
}

RawData<double> load_csv(const DataConfig& cfg) {
  RawData<double> raw;
  raw.name = "csv:" + fs::path(cfg.train_file).filename().string();
  int train_features = 0, test_features = 0;
  raw.train = load_csv_split(cfg.train_file, cfg.label_column, train_features);
  raw.test = load_csv_split(cfg.test_file, cfg.label_column, test_features);
  if (test_features != train_features)
    fail(cfg.test_file + ": " + num(test_features) + " feature columns but " + cfg.train_file + " has " +
         num(train_features));
  raw.shape = Shape{1, 1, train_features};
  raw.flat = true;
  apply_config_shape(cfg.shape, raw, cfg.train_file);
  return raw;
}

// ---- Classes --------------------------------------------------------------------

std::string label_list(const std::vector<int>& labels) {
  std::string s;
  for (size_t i = 0; i < labels.size() && i < 20; ++i) s += (i ? ", " : "") + num(labels[i]);
  return s + (labels.size() > 20 ? ", ..." : "");
}

bool contains(const std::vector<int>& sorted, int label) { return std::binary_search(sorted.begin(), sorted.end(), label); }

// k of the ascending `labels`, uniformly at random, sorted ascending.
std::vector<int> draw_classes(std::vector<int> labels, int k, uint64_t seed) {
  // Partial Fisher-Yates: the first k places become a uniform k-subset.
  SplitMix64 rng(seed);
  for (int i = 0; i < k; ++i) std::swap(labels[i], labels[i + rng.below(labels.size() - i)]);
  labels.resize(k);
  std::sort(labels.begin(), labels.end());
  return labels;
}

// Classes (original labels, in class-index order) that a training set of
// `data` may have: as many as the model has outputs, each in the training
// split, none twice.
void check_classes(const Dataset& data, const std::vector<int>& classes) {
  if (static_cast<int>(classes.size()) != data.n_classes)
    fail(num(classes.size()) + " classes (" + label_list(classes) + ") but the model has " + num(data.n_classes) +
         " outputs");
  for (size_t i = 0; i < classes.size(); ++i) {
    if (!contains(data.labels, classes[i]))
      fail("class label " + num(classes[i]) + " is not in the training split (labels present: " +
           label_list(data.labels) + ")");
    if (std::find(classes.begin(), classes.begin() + static_cast<std::ptrdiff_t>(i), classes[i]) !=
        classes.begin() + static_cast<std::ptrdiff_t>(i))
      fail("class label " + num(classes[i]) + " is listed twice");
  }
}

// Checks the class settings against the labels in the files; sets the
// number of classes of every training set, and d.class_ids when they are
// fixed for the whole run.
void choose_classes(const DataConfig& cfg, Dataset& d, const std::vector<int>& test_labels) {
  if (!cfg.classes.empty()) {
    if (cfg.random_classes > 0) fail("give either data.classes or data.random_classes, not both");
    d.class_ids = cfg.classes;
  } else if (cfg.random_classes != 0) {
    const int k = cfg.random_classes;
    if (k < 0 || k > static_cast<int>(d.labels.size()))
      fail("data.random_classes = " + num(k) + " but the training split has " + num(d.labels.size()) + " labels");
    if (cfg.class_draw == "per_run") d.class_ids = draw_classes(d.labels, k, cfg.seed);
    else if (cfg.class_draw != "per_training_set")
      fail("data.class_draw '" + cfg.class_draw + "' is not one of per_training_set, per_run");
    d.n_classes = k;
  } else {
    // All classes: a test label the training split lacks could never be
    // predicted, and dropping it would quietly change the test set.
    for (int label : test_labels)
      if (!contains(d.labels, label)) fail("the test split has label " + num(label) + ", which the training split lacks");
    d.class_ids = d.labels;
  }
  if (!d.class_ids.empty()) d.n_classes = static_cast<int>(d.class_ids.size());
  if (d.n_classes < 2)
    fail("needs at least 2 classes, got " + num(d.n_classes) +
         (d.class_ids.empty() ? " (data.random_classes)" : " (" + label_list(d.class_ids) + ")"));
  if (!d.class_ids.empty()) check_classes(d, d.class_ids);
}

// ---- Standardization --------------------------------------------------------------

// Mean and population std of each of `groups` equal runs of a row (the
// channels of [c][h][w], or every single feature) over the given rows. A
// constant group gets std 1, so it is only centered: dividing by 0 would
// turn it into NaN.
void group_stats(const Examples& e, int dim, int groups, const std::vector<size_t>& rows, std::vector<double>& mean,
                 std::vector<double>& sd) {
  const size_t run = static_cast<size_t>(dim / groups), count = rows.size() * run;
  mean.assign(groups, 0.0);
  std::vector<double> var(groups, 0.0);
  for (size_t r : rows)
    for (size_t j = 0; j < static_cast<size_t>(dim); ++j) mean[j / run] += e.x[r * dim + j];
  for (double& m : mean) m /= static_cast<double>(count);
  for (size_t r : rows)
    for (size_t j = 0; j < static_cast<size_t>(dim); ++j) {
      const double dev = e.x[r * dim + j] - mean[j / run];
      var[j / run] += dev * dev;
    }
  sd.resize(groups);
  for (int g = 0; g < groups; ++g) {
    const double s = std::sqrt(var[g] / static_cast<double>(count));
    sd[g] = s > 0 ? s : 1.0;
  }
}

std::vector<size_t> all_rows(size_t count) {
  std::vector<size_t> rows(count);
  for (size_t i = 0; i < count; ++i) rows[i] = i;
  return rows;
}

// The rows of the chosen classes' examples in file order, relabeled to class
// indices and standardized as `source` says.
Examples gather(const Examples& from, int dim, const std::vector<size_t>& rows, const std::vector<int>& classes,
                const SplitSource& source) {
  Examples out;
  out.y.reserve(rows.size());
  out.x.reserve(rows.size() * dim);
  const size_t run = source.mean.empty() ? 1 : static_cast<size_t>(dim) / source.mean.size();
  for (size_t r : rows) {
    const auto label = std::find(classes.begin(), classes.end(), from.y[r]);
    out.y.push_back(static_cast<int32_t>(label - classes.begin()));
    const float* row = from.x.data() + r * static_cast<size_t>(dim);
    for (size_t j = 0; j < static_cast<size_t>(dim); ++j)
      out.x.push_back(source.mean.empty() ? row[j]
                                          : static_cast<float>((row[j] - source.mean[j / run]) / source.sd[j / run]));
  }
  return out;
}

// ---- Loading ---------------------------------------------------------------------------

// One split's rows as floats divided by `divisor` (255 for image bytes).
template <class T>
Examples scaled(const Split<T>& split, double divisor) {
  Examples out;
  out.y.assign(split.labels.begin(), split.labels.end());
  out.x.resize(split.x.size());
  for (size_t j = 0; j < split.x.size(); ++j) out.x[j] = static_cast<float>(static_cast<double>(split.x[j]) / divisor);
  return out;
}

template <class T>
Dataset finish(RawData<T> raw, const DataConfig& cfg, double divisor, bool standardize_values) {
  if (cfg.statistics != "all" && cfg.statistics != "classes")
    fail("data.statistics '" + cfg.statistics + "' is not one of all, classes");
  Dataset d;
  d.name = raw.name;
  d.c = raw.shape.c;
  d.h = raw.shape.h;
  d.w = raw.shape.w;
  d.labels = raw.train.labels;
  std::sort(d.labels.begin(), d.labels.end());
  d.labels.erase(std::unique(d.labels.begin(), d.labels.end()), d.labels.end());
  choose_classes(cfg, d, raw.test.labels);
  if (!d.class_ids.empty() &&
      std::none_of(raw.test.labels.begin(), raw.test.labels.end(), [&](int l) {
        return std::find(d.class_ids.begin(), d.class_ids.end(), l) != d.class_ids.end();
      }))
    fail(d.name + ": the test split has no examples of the chosen classes (" + label_list(d.class_ids) + ")");
  d.train = scaled(raw.train, divisor);
  d.test = scaled(raw.test, divisor);
  d.standardize = standardize_values;
  d.groups = raw.flat ? d.dim() : d.c;
  if (d.standardize) group_stats(d.train, d.dim(), d.groups, all_rows(d.train.size()), d.mean, d.sd);
  return d;
}

// ---- Synthetic sets (the paper's 2-D data) ------------------------------------------

Dataset synthetic(const std::string& name) {
  Dataset d;
  d.name = name;
  d.c = 1;
  d.h = 1;
  d.w = 2;
  d.n_classes = 2;
  d.labels = d.class_ids = {0, 1};
  d.synthetic = true;
  return d;
}

void add_point(Examples& e, double x, double y, int32_t label) {
  e.x.push_back(static_cast<float>(x));
  e.x.push_back(static_cast<float>(y));
  e.y.push_back(label);
}

// y = -|x| (label 1) and the same raised by `margin` (label 0), 2000 evenly
// spaced x in [-1, 1] each.
Dataset make_kink(const DataConfig& cfg) {
  constexpr int kPoints = 2000;
  if (!(std::isfinite(cfg.margin) && cfg.margin > 0)) fail("kink: margin " + show(cfg.margin) + " must be positive");
  Dataset d = synthetic("kink");
  for (int upper = 0; upper < 2; ++upper)
    for (int i = 0; i < kPoints; ++i) {
      const double x = -1.0 + 2.0 * i / (kPoints - 1);
      add_point(d.train, x, -std::fabs(x) + (upper ? cfg.margin : 0.0), upper ? 0 : 1);
    }
  return d;
}

// Four horizontal slabs from y = 1 down, alternately left (label 1) and right
// (label 0). The seed is fixed so that the pool is the same for every run;
// only its shuffle depends on the data seed.
Dataset make_slab() {
  constexpr int kSlabs = 4, kPoints = 400;
  constexpr double kThickness = 0.35, kGap = 0.2;
  constexpr uint64_t kPoolSeed = 0x5EED51AB5EED51ABull;
  Dataset d = synthetic("slab");
  SplitMix64 rng(kPoolSeed);
  for (int k = 0; k < kSlabs; ++k) {
    const double top = 1.0 - (kThickness + kGap) * k, bottom = top - kThickness;
    const bool left = k % 2 == 0;
    const double x0 = left ? -1.0 : 0.1, x1 = left ? -0.1 : 1.0;
    for (int i = 0; i < kPoints; ++i) {
      const double x = x0 + (x1 - x0) * rng.uniform();
      add_point(d.train, x, bottom + kThickness * rng.uniform(), left ? 1 : 0);
    }
  }
  return d;
}

// ---- Training sets ------------------------------------------------------------------

TrainTest synthetic_split(const Dataset& data, int test_size, int n, uint64_t data_seed) {
  if (test_size < 0) fail("test_size = " + num(test_size) + " must not be negative");
  const size_t pool = data.train.size(), need = static_cast<size_t>(n) + static_cast<size_t>(test_size);
  if (need > pool)
    fail("n = " + num(n) + " plus test_size = " + num(test_size) + " needs " + num(need) + " points but the " + data.name +
         " pool has " + num(pool));
  std::vector<size_t> order = all_rows(pool);
  SplitMix64 rng(data_seed);
  rng.shuffle(order.data(), order.size());
  TrainTest tt;
  tt.source.classes = data.class_ids;
  const std::vector<size_t> train(order.begin(), order.begin() + n), test(order.begin() + n, order.begin() + need);
  tt.train = gather(data.train, data.dim(), train, data.class_ids, tt.source);
  tt.test = gather(data.train, data.dim(), test, data.class_ids, tt.source);
  tt.source.train_rows.assign(train.begin(), train.end());
  tt.source.test_rows.assign(test.begin(), test.end());
  return tt;
}

// Examples of class c in a training set of n drawn from k classes.
size_t class_share(int n, int k, int c) { return static_cast<size_t>(n / k + (c < n % k ? 1 : 0)); }

// The rows of each class (index into `classes`) in the training split, in file order.
std::vector<std::vector<size_t>> rows_by_class(const Dataset& data, const std::vector<int>& classes) {
  std::vector<std::vector<size_t>> by_class(classes.size());
  for (size_t i = 0; i < data.train.size(); ++i) {
    const auto it = std::find(classes.begin(), classes.end(), data.train.y[i]);
    if (it != classes.end()) by_class[it - classes.begin()].push_back(i);
  }
  return by_class;
}

void check_shares(const std::vector<int>& classes, const std::vector<std::vector<size_t>>& by_class, int n) {
  const int k = static_cast<int>(classes.size());
  for (int c = 0; c < k; ++c)
    if (class_share(n, k, c) > by_class[c].size())
      fail("n = " + num(n) + " needs " + num(class_share(n, k, c)) + " examples of class " + num(c) + " (original label " +
           num(classes[c]) + ") but the training split has " + num(by_class[c].size()));
}

std::vector<size_t> test_rows_of(const Dataset& data, const std::vector<int>& classes) {
  std::vector<size_t> rows;
  for (size_t i = 0; i < data.test.size(); ++i)
    if (std::find(classes.begin(), classes.end(), data.test.y[i]) != classes.end()) rows.push_back(i);
  if (rows.empty()) fail(data.name + ": the test split has no examples of classes " + label_list(classes));
  return rows;
}

TrainTest balanced_split(const Dataset& data, const DataConfig& cfg, int n, uint64_t data_seed,
                         const std::vector<int>& classes) {
  check_classes(data, classes);
  const int k = static_cast<int>(classes.size());
  std::vector<std::vector<size_t>> by_class = rows_by_class(data, classes);
  check_shares(classes, by_class, n);
  const std::vector<size_t> test_rows = test_rows_of(data, classes);

  TrainTest tt;
  tt.source.classes = classes;
  if (data.standardize && cfg.statistics == "classes") {
    std::vector<size_t> class_rows;  // file order, as the statistics of a filtered split
    for (size_t i = 0; i < data.train.size(); ++i)
      if (std::find(classes.begin(), classes.end(), data.train.y[i]) != classes.end()) class_rows.push_back(i);
    group_stats(data.train, data.dim(), data.groups, class_rows, tt.source.mean, tt.source.sd);
  } else if (data.standardize) {
    tt.source.mean = data.mean;
    tt.source.sd = data.sd;
  }

  // One generator for everything, in a fixed order: each class's pick by a
  // partial Fisher-Yates shuffle, then the classes dealt round-robin in a
  // seeded class order. Alternating classes lets early rejection discard the
  // many random nets that predict one class for everything within k examples.
  SplitMix64 rng(data_seed);
  for (int c = 0; c < k; ++c) {
    std::vector<size_t>& rows = by_class[c];
    for (size_t i = 0; i < class_share(n, k, c); ++i) std::swap(rows[i], rows[i + rng.below(rows.size() - i)]);
  }
  std::vector<int> class_order(k);
  for (int c = 0; c < k; ++c) class_order[c] = c;
  rng.shuffle(class_order.data(), class_order.size());
  std::vector<size_t> picked;
  for (size_t round = 0; picked.size() < static_cast<size_t>(n); ++round)
    for (int c : class_order)
      if (round < class_share(n, k, c)) picked.push_back(by_class[c][round]);

  tt.train = gather(data.train, data.dim(), picked, classes, tt.source);
  tt.test = gather(data.test, data.dim(), test_rows, classes, tt.source);
  tt.source.train_rows.assign(picked.begin(), picked.end());
  tt.source.test_rows.assign(test_rows.begin(), test_rows.end());
  return tt;
}

}  // namespace

Dataset load_dataset(const DataConfig& cfg) {
  constexpr double kByte = 255.0;
  if (cfg.kind == "kink") return make_kink(cfg);
  if (cfg.kind == "slab") return make_slab();
  if (cfg.kind == "idx") return finish(load_idx(cfg), cfg, kByte, true);
  if (cfg.kind == "cifar10") return finish(load_cifar10(cfg), cfg, kByte, true);
  if (cfg.kind == "npy") return finish(load_npy(cfg), cfg, 1.0, cfg.standardize);
  if (cfg.kind == "csv") return finish(load_csv(cfg), cfg, 1.0, cfg.standardize);
  fail("unknown data.kind '" + cfg.kind + "' (valid: idx, cifar10, npy, csv, kink, slab)");
}

std::vector<int> training_set_classes(const Dataset& data, uint64_t data_seed) {
  if (!data.class_ids.empty()) return data.class_ids;
  // A seed of its own, so the class draw and the example picks stay independent.
  return draw_classes(data.labels, data.n_classes, splitmix64(data_seed ^ 0xC1A55E5D0A7Aull));
}

TrainTest make_train_test(const Dataset& data, const DataConfig& cfg, int n, uint64_t data_seed,
                          const std::vector<int>& classes) {
  if (n < 1) fail("n = " + num(n) + " must be at least 1");
  if (data.synthetic) return synthetic_split(data, cfg.test_size, n, data_seed);
  return balanced_split(data, cfg, n, data_seed, classes);
}

TrainTest make_train_test(const Dataset& data, const DataConfig& cfg, int n, uint64_t data_seed) {
  return make_train_test(data, cfg, n, data_seed, training_set_classes(data, data_seed));
}

void check_training_set(const Dataset& data, const DataConfig& cfg, int n, uint64_t data_seed) {
  if (n < 1) fail("n = " + num(n) + " must be at least 1");
  if (data.synthetic) {
    synthetic_split(data, cfg.test_size, n, data_seed);  // small: building it is the check
    return;
  }
  const std::vector<int> classes = training_set_classes(data, data_seed);
  check_shares(classes, rows_by_class(data, classes), n);
  test_rows_of(data, classes);
}

std::string classes_text(const std::vector<int>& classes, const char* sep) {
  std::string s;
  for (size_t i = 0; i < classes.size(); ++i) s += (i ? sep : "") + std::to_string(classes[i]);
  return s;
}

}  // namespace gac
