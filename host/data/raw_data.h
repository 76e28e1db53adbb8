// The form every data file format is read into: both splits as the files hold
// them, before scaling and class choice (host/data/dataset.cpp makes a
// Dataset of it), and the file readers, one per format.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "gac/dataset.h"
#include "host/data/data_error.h"

namespace gac::data_detail {

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

// The readers: both splits of the files `cfg` names (idx_reader.cpp,
// cifar10_reader.cpp, npy_reader.cpp, csv_reader.cpp).
RawData<uint8_t> load_idx(const DataConfig& cfg);
RawData<uint8_t> load_cifar10(const DataConfig& cfg);
RawData<double> load_npy(const DataConfig& cfg);
RawData<double> load_csv(const DataConfig& cfg);

// What the readers share (raw_data.cpp).
void require_file(const std::filesystem::path& path);
void require_directory(const std::string& dir, const std::string& kind);
// The most bytes of one data file this process can hold: a fifth of the
// memory available (the bytes, and the float32 examples made of them), 0 when unknown.
uint64_t data_bytes_limit();
// The whole content of a file; a name ending in ".gz" is decompressed. More
// than `max_bytes` (0: no limit) is refused before it is held: a small gzip
// bomb must be a clear error, not the OOM killer.
std::vector<uint8_t> read_file_bytes(const std::filesystem::path& path, uint64_t max_bytes = data_bytes_limit());
// data.shape ([c, h, w]), when given, replaces the shape found in the file.
void apply_config_shape(const std::vector<int>& cfg_shape, RawData<double>& raw, const std::string& file);
// A label stored as a number: it must be an integer that fits an int.
int to_label(double v, const std::string& where);
// Features are used as float32: a finite double beyond its range would become inf.
void require_finite(double v, const std::string& where);

}  // namespace gac::data_detail
