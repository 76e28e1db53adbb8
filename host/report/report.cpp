// Per-cell results of a run directory, as a table, CSV or JSON.
#include "gac/report.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

namespace gac {

namespace {

using ordered_json = nlohmann::ordered_json;  // keeps the columns in the order they are added

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// Which status explains an unfilled cell best: a stream still running says
// more than one stopped by the time limit, which says more than the budget.
int status_rank(const std::string& status) {
  if (status == "filled") return 0;
  if (status == "budget") return 1;
  if (status == "time") return 2;
  return 3;  // running, or anything unexpected
}

std::string worse_status(const std::string& a, const std::string& b) {
  return status_rank(b) > status_rank(a) ? b : a;
}

template <typename T>
T at_or_zero(const std::vector<T>& v, int i) {
  return i < static_cast<int>(v.size()) ? v[i] : T{};
}

// The rate is only bounded from above when no draw has hit yet.
bool rate_is_upper_bound(const CellReport& c) { return c.hits == 0 && c.draws > 0; }

// Fills the per-repeat fields (draws, hits, filled, status) from the stream states of c.n.
void aggregate_streams(CellReport& c, const RunMeta& meta, const std::vector<StreamState>& states) {
  const int repeats = std::max(meta.repeats, 0);
  std::vector<int> stored(repeats, 0);
  std::vector<std::string> status(repeats);  // "" while a repeat has no state yet
  for (const StreamState& s : states) {
    if (s.n != c.n) continue;
    c.draws += s.draws;
    c.hits += at_or_zero(s.hits, c.bin);
    if (s.repeat < 0 || s.repeat >= repeats) continue;
    stored[s.repeat] += at_or_zero(s.stored, c.bin);  // shards of one repeat add up
    status[s.repeat] = status[s.repeat].empty() ? s.status : worse_status(status[s.repeat], s.status);
  }

  c.filled = true;
  std::string unfinished = "filled";
  for (int r = 0; r < repeats; ++r) {
    if (!status[r].empty() && stored[r] >= meta.target) continue;
    c.filled = false;
    unfinished = worse_status(unfinished, status[r].empty() ? "running" : status[r]);
  }
  // An unfilled repeat whose streams all claim "filled" can only be mid-update: call it running.
  c.status = c.filled ? "filled" : unfinished == "filled" ? "running" : unfinished;
}

CellReport make_cell(const RunMeta& meta, int n, int bin, const std::vector<StreamState>& states,
                     const std::vector<StoredModel>& models) {
  CellReport c;
  c.n = n;
  c.bin = bin;
  c.loss_lo = meta.bin_edges[bin];
  c.loss_hi = meta.bin_edges[bin + 1];
  c.wanted = meta.target * meta.repeats;

  std::vector<double> acc, loss;
  for (const StoredModel& m : models) {
    if (m.n != n || m.bin != bin) continue;
    acc.push_back(m.test_acc);
    loss.push_back(m.test_loss);
  }
  c.models = static_cast<int>(acc.size());
  c.test_acc = summarize(acc);
  // An accuracy lies in [0, 1]; with few models the t interval can reach past it.
  c.test_acc.ci95.lo = std::max(0.0, c.test_acc.ci95.lo);
  c.test_acc.ci95.hi = std::min(1.0, c.test_acc.ci95.hi);
  c.test_loss = summarize(loss);

  aggregate_streams(c, meta, states);
  c.rate = c.draws ? static_cast<double>(c.hits) / static_cast<double>(c.draws) : 0.0;
  c.rate_ci = wilson_interval(c.hits, c.draws);
  c.log10_rate = c.draws == 0 ? kNaN : std::log10(c.hits ? c.rate : c.rate_ci.hi);
  return c;
}

// ---------------------------------------------------------------------------
// Formatting

std::string printf_string(const char* format, double a, double b = 0, double c = 0) {
  char buf[128];
  std::snprintf(buf, sizeof buf, format, a, b, c);
  return buf;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string bin_label(double lo, double hi, int decimals) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "(%.*f, %.*f]", decimals, lo, decimals, hi);
  return buf;
}

// Fewest decimals (2 to 6) that show every bin edge exactly: "(0.30, 0.35]", "(0.125, 0.250]".
int edge_decimals(const std::vector<double>& edges) {
  for (int d = 2; d < 6; ++d) {
    const bool exact =
        std::all_of(edges.begin(), edges.end(), [d](double e) { return std::stod(fixed(e, d)) == e; });
    if (exact) return d;
  }
  return 6;
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
  j["test_acc_std"] = metric(c.test_acc.std);
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
  j["log10_rate"] = c.log10_rate;
  j["log10_rate_is_upper_bound"] = rate_is_upper_bound(c);
  return j;
}

ordered_json meta_json(const RunMeta& m) {
  ordered_json j;
  j["bin_edges"] = m.bin_edges;
  j["target"] = m.target;
  j["ns"] = m.ns;
  j["repeats"] = m.repeats;
  j["n_params"] = m.n_params;
  return j;
}

// One CSV field: shortest round-trip numbers, NaN as empty, booleans as 0/1.
std::string csv_field(const ordered_json& v) {
  if (v.is_boolean()) return v.get<bool>() ? "1" : "0";
  if (v.is_string()) return v.get<std::string>();  // statuses: no commas or quotes
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isnan(d)) return "";
    char buf[32];
    return std::string(buf, std::to_chars(buf, buf + sizeof buf, d).ptr);
  }
  return v.dump();  // integers
}

std::string format_csv(const std::vector<CellReport>& cells) {
  std::ostringstream out;
  const char* sep = "";
  const ordered_json header = cell_fields(CellReport{});  // a named object: items() does not own it
  for (const auto& field : header.items()) out << std::exchange(sep, ",") << field.key();
  out << "\n";
  for (const CellReport& c : cells) {
    sep = "";
    const ordered_json fields = cell_fields(c);
    for (const auto& field : fields.items()) out << std::exchange(sep, ",") << csv_field(field.value());
    out << "\n";
  }
  return out.str();
}

std::string format_json(const Store& store, const std::vector<CellReport>& cells) {
  ordered_json doc;
  doc["cells"] = ordered_json::array();
  for (const CellReport& c : cells) doc["cells"].push_back(cell_fields(c));
  doc["meta"] = meta_json(store.meta());
  return doc.dump(2) + "\n";  // NaN is written as null
}

// Display width of UTF-8 text ("±" is two bytes, one column).
size_t display_width(const std::string& s) {
  return std::count_if(s.begin(), s.end(), [](char ch) { return (static_cast<unsigned char>(ch) & 0xC0) != 0x80; });
}

std::vector<std::string> table_row(const CellReport& c, int decimals) {
  const Summary& a = c.test_acc;
  const bool any = a.count > 0;
  std::string log10 = "-";
  if (!std::isnan(c.log10_rate)) log10 = printf_string(rate_is_upper_bound(c) ? "<%.2f" : "%.2f", c.log10_rate);
  return {std::to_string(c.n),
          bin_label(c.loss_lo, c.loss_hi, decimals),
          std::to_string(c.models) + "/" + std::to_string(c.wanted),
          c.status,
          any ? printf_string("%.4f ± %.4f", a.mean, a.std) : "-",
          any ? printf_string("[%.4f, %.4f]", a.ci95.lo, a.ci95.hi) : "-",
          any ? printf_string("%.4f", a.min) : "-",
          any ? printf_string("%.4f", a.max) : "-",
          std::to_string(c.draws),
          printf_string("%.3g [%.3g, %.3g]", c.rate, c.rate_ci.lo, c.rate_ci.hi),
          log10};
}

std::string format_table(const Store& store, const std::vector<CellReport>& cells) {
  const RunMeta& meta = store.meta();
  std::vector<std::vector<std::string>> rows = {{"n", "loss bin", "models", "status", "test acc (mean ± std)",
                                                 "test acc 95% CI", "min", "max", "draws", "rate [95% CI]",
                                                 "log10 rate"}};
  const int decimals = edge_decimals(meta.bin_edges);
  for (const CellReport& c : cells) rows.push_back(table_row(c, decimals));

  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], display_width(row[i]));

  std::ostringstream out;
  out << store.dir().string() << ": " << meta.n_params << " parameters, target " << meta.target
      << " models per cell and repeat, " << meta.repeats << (meta.repeats == 1 ? " repeat" : " repeats") << "\n\n";
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) line += row[i] + std::string(widths[i] - display_width(row[i]) + 2, ' ');
    out << line.substr(0, line.find_last_not_of(' ') + 1) << "\n";
  }
  out << "\nrate = hits/draws with a Wilson 95% interval. A cell with no hits yet (unfilled) has only an upper bound:\n"
         "its log10 rate, marked '<', is log10 of the interval's upper end.\n";
  return out.str();
}

}  // namespace

std::vector<CellReport> cell_reports(const Store& store) {
  const RunMeta& meta = store.meta();
  const std::vector<StreamState> states = store.states();
  const std::vector<StoredModel> models = store.models();
  std::vector<CellReport> cells;
  const int bins = static_cast<int>(meta.bin_edges.size()) - 1;
  for (int n : meta.ns)
    for (int bin = 0; bin < bins; ++bin) cells.push_back(make_cell(meta, n, bin, states, models));
  return cells;
}

std::string format_report(const Store& store, ReportFormat format) {
  const std::vector<CellReport> cells = cell_reports(store);
  switch (format) {
    case ReportFormat::csv:
      return format_csv(cells);
    case ReportFormat::json:
      return format_json(store, cells);
    case ReportFormat::table:
      break;
  }
  return format_table(store, cells);
}

}  // namespace gac
