// Users' features and labels in CSV files: one example a line, the label in one
// column, an optional header line.
#include <algorithm>
#include <charconv>
#include <string_view>

#include "host/data/raw_data.h"

namespace gac::data_detail {
namespace {

namespace fs = std::filesystem;

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

}  // namespace

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

}  // namespace gac::data_detail
