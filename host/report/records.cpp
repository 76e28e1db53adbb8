// The report's cells as CSV and JSON records.
#include "host/report/records.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>
#include <utility>

#include "gac/optimizer.h"
#include "host/report/cells.h"

namespace gac {

ordered_json failed_field(const std::string& optimizer, uint64_t failed) {
  return optimizer == "guess" ? ordered_json(kNaN) : ordered_json(failed);
}

namespace {

// The classes of a cell's repeats: one list when every repeat that has
// started shares it, else one per repeat in order (empty before it starts).
ordered_json cell_classes(const CellReport& c) {
  std::vector<std::vector<int>> per_repeat, started;
  for (const RepeatReport& r : c.repeats) {
    per_repeat.push_back(r.classes);
    if (!r.classes.empty()) started.push_back(r.classes);
  }
  const bool shared = std::all_of(started.begin(), started.end(), [&](const auto& cl) { return cl == started[0]; });
  if (started.empty()) return ordered_json::array();
  return shared ? ordered_json::array({started[0]}) : ordered_json(per_repeat);
}

// The CSV/JSON fields of a cell, in column order.
ordered_json cell_fields(const CellReport& c) {
  // Test metrics of a cell without models are missing (null / empty), not 0.
  auto metric = [&c](double v) { return c.models > 0 ? v : kNaN; };
  ordered_json j;
  j["n"] = c.n;
  j["bin"] = c.bin;
  j["loss_lo"] = c.loss_lo;
  j["loss_hi"] = c.loss_hi;
  j["models"] = c.models;
  j["wanted"] = c.wanted;
  j["filled"] = c.filled;
  j["status"] = c.status;
  j["test_acc_mean"] = metric(c.test_acc.mean);
  j["test_acc_std"] = c.models > 1 ? c.test_acc.std : kNaN;  // one model has no spread to show
  j["test_acc_ci_lo"] = metric(c.test_acc.ci95.lo);
  j["test_acc_ci_hi"] = metric(c.test_acc.ci95.hi);
  j["test_acc_min"] = metric(c.test_acc.min);
  j["test_acc_max"] = metric(c.test_acc.max);
  j["test_loss_mean"] = metric(c.test_loss.mean);
  j["draws"] = c.draws;
  j["hits"] = c.hits;
  j["rate"] = c.rate;
  j["rate_lo"] = c.rate_ci.lo;
  j["rate_hi"] = c.rate_ci.hi;
  if (c.heads > 1) {  // nested sampling (docs/nested.md): the rate's clustering
    j["heads"] = c.heads;
    j["design_effect"] = c.design_effect;
    j["effective_draws"] = c.effective_draws;
  }
  j["log10_rate"] = c.log10_rate;
  j["log10_rate_is_upper_bound"] = rate_is_upper_bound(c);
  j["test_acc_se"] = c.test_acc_by_repeat.se;
  j["test_acc_repeats"] = c.test_acc_by_repeat.groups;
  j["classes"] = cell_classes(c);
  j["optimizer"] = c.optimizer;
  j["optimizer_title"] = optimizer_title(c.optimizer);
  j["failed"] = failed_field(c.optimizer, c.failed);
  return j;
}

// The fields of one repeat of a cell (run with `optimizer`): the per-repeat breakdown.
ordered_json repeat_fields(const RepeatReport& r, const std::string& optimizer) {
  auto metric = [&r](double v) { return r.models > 0 ? v : kNaN; };
  ordered_json j;
  j["repeat"] = r.repeat;
  j["classes"] = r.classes;
  j["models"] = r.models;
  j["status"] = r.status;
  j["test_acc_mean"] = metric(r.test_acc.mean);
  j["test_acc_std"] = r.models > 1 ? r.test_acc.std : kNaN;
  j["test_acc_min"] = metric(r.test_acc.min);
  j["test_acc_max"] = metric(r.test_acc.max);
  j["test_loss_mean"] = metric(r.test_loss.mean);
  j["draws"] = r.draws;
  j["hits"] = r.hits;
  j["rate"] = r.draws ? static_cast<double>(r.hits) / static_cast<double>(r.draws) : 0.0;
  j["failed"] = failed_field(optimizer, r.failed);
  return j;
}

// One CSV field: shortest round-trip numbers, NaN as empty, booleans as 0/1.
std::string csv_field(const ordered_json& v) {
  if (v.is_boolean()) return v.get<bool>() ? "1" : "0";
  if (v.is_string()) return v.get<std::string>();  // statuses: no commas or quotes
  if (v.is_array()) {  // classes: "3 7", or one such list per repeat: "3 7;0 5"
    std::string text;
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) text += v[i].is_array() ? ";" : " ";
      text += csv_field(v[i]);
    }
    return text;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isnan(d)) return "";
    char buf[32];
    return std::string(buf, std::to_chars(buf, buf + sizeof buf, d).ptr);
  }
  return v.dump();  // integers
}

// One row of the per-repeat breakdown: the cell, then the repeat's fields.
ordered_json repeat_row(const CellReport& c, const RepeatReport& r) {
  ordered_json row;
  row["n"] = c.n;
  row["bin"] = c.bin;
  row["loss_lo"] = c.loss_lo;
  row["loss_hi"] = c.loss_hi;
  row.update(repeat_fields(r, c.optimizer));
  return row;
}

}  // namespace

ordered_json meta_json(const RunMeta& m) {
  ordered_json j;
  j["bin_edges"] = m.bin_edges;
  j["target"] = m.target;
  j["ns"] = m.ns;
  j["repeats"] = m.repeats;
  j["n_params"] = m.n_params;
  j["optimizer"] = m.optimizer;
  return j;
}

// A header of the fields of `header` (named: items() does not own a
// temporary), then one line per row of the same fields.
std::string csv_text(const ordered_json& header, const std::vector<ordered_json>& rows) {
  std::ostringstream out;
  const char* sep = "";
  for (const auto& field : header.items()) out << std::exchange(sep, ",") << field.key();
  out << "\n";
  for (const ordered_json& row : rows) {
    sep = "";
    for (const auto& field : row.items()) out << std::exchange(sep, ",") << csv_field(field.value());
    out << "\n";
  }
  return out.str();
}

std::string format_csv(const std::vector<CellReport>& cells) {
  std::vector<ordered_json> rows;
  for (const CellReport& c : cells) rows.push_back(cell_fields(c));
  return csv_text(cell_fields(CellReport{}), rows);
}

std::string format_json(const Store& store, const std::vector<CellReport>& cells) {
  ordered_json doc;
  doc["cells"] = ordered_json::array();
  for (const CellReport& c : cells) {
    ordered_json cell = cell_fields(c);
    cell["repeats"] = ordered_json::array();
    for (const RepeatReport& r : c.repeats) cell["repeats"].push_back(repeat_fields(r, c.optimizer));
    doc["cells"].push_back(std::move(cell));
  }
  doc["meta"] = meta_json(store.meta());
  return doc.dump(2) + "\n";  // NaN is written as null
}

std::string format_repeats_csv(const std::vector<CellReport>& cells) {
  std::vector<ordered_json> rows;
  for (const CellReport& c : cells)
    for (const RepeatReport& r : c.repeats) rows.push_back(repeat_row(c, r));
  return csv_text(repeat_row(CellReport{}, RepeatReport{}), rows);
}

}  // namespace gac
