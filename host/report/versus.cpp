// `gac report RUN --versus OTHER`: the cells of the sizes n two runs share,
// side by side, with the difference of their mean test accuracies.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include "gac/config.h"
#include "gac/error.h"
#include "gac/report.h"
#include "gac/experiment.h"
#include "host/report/cells.h"
#include "host/report/records.h"
#include "host/report/table.h"

namespace gac {

namespace fs = std::filesystem;

namespace {

std::vector<int> sorted(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// The sizes in `a` and not in `b`, in order.
std::vector<int> sizes_not_in(const std::vector<int>& a, const std::vector<int>& b) {
  std::vector<int> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

// Only cells of the same bin edges compare, and the runs must share a size n.
// Sets `result`'s sizes of one run only.
void check_comparable(const Store& run, const Store& versus, Versus& result) {
  const RunMeta &a = run.meta(), &b = versus.meta();
  const auto refuse = [&](const std::string& what, const std::string& here, const std::string& there,
                          const std::string& why) {
    throw Error("report --versus: " + run.dir().string() + " has " + what + " " + here + " but " +
                versus.dir().string() + " has " + there + "; " + why);
  };
  if (a.bin_edges != b.bin_edges)
    refuse("bin edges", ordered_json(a.bin_edges).dump(), ordered_json(b.bin_edges).dump(),
           "only cells of the same bins compare");
  const std::vector<int> ns_a = sorted(a.ns), ns_b = sorted(b.ns);
  result.sizes_only_in_run = sizes_not_in(ns_a, ns_b);
  result.sizes_only_in_versus = sizes_not_in(ns_b, ns_a);
  if (result.sizes_only_in_run.size() == ns_a.size())
    refuse("sizes n", ordered_json(ns_a).dump(), ordered_json(ns_b).dump(), "no size n in common to compare");
}

// "n = 300" or "n = 300, 500".
std::string sizes_text(const std::vector<int>& ns) {
  std::string s = "n = ";
  for (size_t i = 0; i < ns.size(); ++i) s += (i ? ", " : "") + std::to_string(ns[i]);
  return s;
}

// "runs/x: SGD from each draw (lr 0.1, ...); 5 repeats, target 10 models per cell and repeat"
std::string run_line(const Store& store) {
  const RunMeta& m = store.meta();
  const RunConfig cfg = parse_config(store.config_toml(), (store.dir() / "config.toml").string());
  return store.dir().string() + ": " + optimizer_text(cfg) + "; " + std::to_string(m.repeats) +
         (m.repeats == 1 ? " repeat" : " repeats") + ", target " + std::to_string(m.target) +
         " models per cell and repeat";
}

// One run's side of a cell.
ordered_json side_fields(const CellReport& c) {
  auto metric = [&c](double v) { return c.models > 0 ? v : kNaN; };
  ordered_json j;
  j["models"] = c.models;
  j["repeats"] = c.test_acc_by_repeat.groups;
  j["status"] = c.status;
  j["test_acc_mean"] = metric(c.test_acc.mean);
  j["test_acc_se"] = c.test_acc_by_repeat.se;
  j["test_acc_ci_lo"] = metric(c.test_acc.ci95.lo);
  j["test_acc_ci_hi"] = metric(c.test_acc.ci95.hi);
  j["optimizer"] = c.optimizer;
  j["failed"] = failed_field(c.optimizer, c.failed);
  return j;
}

ordered_json difference_fields(const MeanDifference& d) {
  ordered_json j;
  j["test_acc"] = d.mean;
  j["se"] = d.se;
  j["df"] = d.df;
  j["ci_lo"] = d.ci95.lo;
  j["ci_hi"] = d.ci95.hi;
  return j;
}

// The paired difference's fields; null (NaN) where the runs' training sets are not the same.
ordered_json paired_fields(const VersusCell& v) {
  ordered_json j = difference_fields(v.paired);
  j["sets"] = v.paired_available ? static_cast<double>(v.paired_sets) : kNaN;
  return j;
}

// The cell's columns: n, bin, edges, then each part's fields with its prefix (CSV), or nested (JSON).
ordered_json versus_fields(const VersusCell& v, bool flat) {
  ordered_json j;
  j["n"] = v.run.n;
  j["bin"] = v.run.bin;
  j["loss_lo"] = v.run.loss_lo;
  j["loss_hi"] = v.run.loss_hi;
  const std::pair<const char*, ordered_json> parts[] = {
      {"run", side_fields(v.run)},
      {"versus", side_fields(v.versus)},
      {"difference", difference_fields(v.test_acc)},
      {"paired", paired_fields(v)}};
  for (const auto& [name, fields] : parts) {
    if (!flat) j[name] = fields;
    else
      for (const auto& field : fields.items()) j[std::string(name) + "_" + field.key()] = field.value();
  }
  return j;
}

// A pooled estimate as JSON: n null for all sizes.
ordered_json pooled_fields(const PooledDifference& p) {
  ordered_json j;
  j["n"] = p.n ? ordered_json(p.n) : ordered_json(nullptr);
  j["sets"] = p.sets;
  j["cells"] = p.cells;
  j["paired"] = difference_fields(p.paired);
  j["cells_estimable"] = p.cells_estimable;
  j["cells_excluding_zero"] = p.cells_excluding_zero;
  j["chance_exclusions"] = 0.05 * p.cells_estimable;
  return j;
}

// A pooled estimate as a CSV row after the cells': the cell columns empty
// (bin empty marks it; n empty for all sizes), the paired_ columns its own.
ordered_json pooled_csv_row(const PooledDifference& p) {
  ordered_json j = versus_fields(VersusCell{}, true);
  for (auto& field : j.items()) field.value() = kNaN;
  if (p.n) j["n"] = p.n;
  const ordered_json paired = difference_fields(p.paired);
  for (const auto& field : paired.items()) j["paired_" + field.key()] = field.value();
  j["paired_sets"] = p.sets;
  return j;
}

ordered_json run_json(const Store& store) {
  ordered_json j;
  j["dir"] = store.dir().string();
  j["optimizer"] = store.meta().optimizer;
  j["meta"] = meta_json(store.meta());
  return j;
}

std::string mean_with_interval(const CellReport& c) {
  if (c.models == 0) return "-";
  const Interval& ci = c.test_acc.ci95;
  return std::isnan(ci.lo) ? printf_string("%.4f (not estimable)", c.test_acc.mean)
                           : printf_string("%.4f [%.4f, %.4f]", c.test_acc.mean, ci.lo, ci.hi);
}

std::string difference_text(const MeanDifference& d) {
  if (std::isnan(d.mean)) return "-";
  return std::isnan(d.ci95.lo) ? printf_string("%+.4f (not estimable)", d.mean)
                               : printf_string("%+.4f [%+.4f, %+.4f]", d.mean, d.ci95.lo, d.ci95.hi);
}

// The pooled paired estimates (one row per n, then all sizes) and the multiplicity check.
std::string format_pooled_table(const std::vector<PooledDifference>& pooled) {
  std::vector<std::vector<std::string>> rows = {{"n", "sets", "cells", "pooled paired A - B [95% CI]", "df"}};
  for (const PooledDifference& p : pooled)
    rows.push_back({p.n ? std::to_string(p.n) : "all", std::to_string(p.sets), std::to_string(p.cells),
                    difference_text(p.paired), std::isnan(p.paired.df) ? "-" : printf_string("%.0f", p.paired.df)});
  const PooledDifference& all = pooled.back();
  return "\nPooled over cells, paired by training set: for each training set (n, repeat), d = the mean over its cells\n"
         "with models in both runs of A's mean test accuracy - B's; then the mean of d over the sets, t interval with\n"
         "sets-1 df. Cells weigh equally within a set, sets equally within a row.\n\n" +
         aligned(rows) +
         "\nMultiplicity: " + std::to_string(all.cells_excluding_zero) + " of " + std::to_string(all.cells_estimable) +
         " cells with a paired interval exclude zero; were A and B equal in every cell,\nchance alone would give " +
         printf_string("about %.1f", 0.05 * all.cells_estimable) + " (5% of " + std::to_string(all.cells_estimable) +
         "; cells of one size share training sets, so not independently).\n";
}

std::string format_versus_table(const Store& run, const Store& versus, const Versus& result) {
  const std::vector<VersusCell>& cells = result.cells;
  const std::string& unpaired = result.unpaired;
  std::vector<std::vector<std::string>> rows = {{"n", "loss bin", "A models", "A test acc [95% CI]", "B models",
                                                 "B test acc [95% CI]", "A - B [95% CI]", "df",
                                                 "paired A - B [95% CI]", "sets"}};
  const int decimals = edge_decimals(run.meta().bin_edges);
  for (const VersusCell& v : cells) {
    const MeanDifference& d = v.test_acc;
    rows.push_back({std::to_string(v.run.n), bin_label(v.run.loss_lo, v.run.loss_hi, decimals),
                    std::to_string(v.run.models) + "/" + std::to_string(v.run.wanted), mean_with_interval(v.run),
                    std::to_string(v.versus.models) + "/" + std::to_string(v.versus.wanted), mean_with_interval(v.versus),
                    difference_text(d), std::isnan(d.df) ? "-" : printf_string("%.1f", d.df),
                    difference_text(v.paired), v.paired_available ? std::to_string(v.paired_sets) : "-"});
  }
  std::string not_compared;
  for (const auto& [ns, side] : {std::pair{result.sizes_only_in_run, "A"}, {result.sizes_only_in_versus, "B"}})
    if (!ns.empty()) not_compared += "Not compared: " + sizes_text(ns) + ", only in " + side + ".\n";
  return "A = " + run_line(run) + "\nB = " + run_line(versus) + "\n" + not_compared + "\n" + aligned(rows) +
         "\nEach run's interval takes its training sets (repeats) as the units (cluster-robust standard error, t with\n"
         "R-1 df). A - B: difference of the mean test accuracies, standard error sqrt(se_A^2 + se_B^2), t interval with\n"
         "the Welch-Satterthwaite df (rounded down); not estimable unless both runs have models of 2 repeats in the cell.\n" +
         (unpaired.empty()
              ? "paired A - B: paired by training set, as the runs share each (n, repeat)'s training set: the mean over the\n"
                "k sets with models in both runs of d = A's mean test accuracy on the set - B's, t interval with k-1 df;\n"
                "not estimable for k < 2 or when every d is the same.\n" +
                    format_pooled_table(result.pooled)
              : unpaired + "\n");
}

// The bytes of a file; nullopt when there is none.
std::optional<std::string> file_bytes(const fs::path& file) {
  if (!fs::exists(file)) return std::nullopt;
  std::ifstream in(file, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in) throw Error("report --versus: cannot read " + file.string());
  return bytes.str();
}

// Why the training set of stream (n, repeat) is not known to be the same in both runs; "" when it is.
std::string training_set_mismatch(const Store& run, const Store& versus, int n, int repeat) {
  const std::string stream = "n=" + std::to_string(n) + " repeat " + std::to_string(repeat);
  int same = 0;
  for (const char* part : {"train_x.npy", "train_y.npy", "train_rows.npy"}) {
    const fs::path name = fs::path("data") / (stream_data_stem(n, repeat) + part);
    const std::optional<std::string> a = file_bytes(run.dir() / name), b = file_bytes(versus.dir() / name);
    if (!a && !b) continue;
    if (!a || !b)
      return "paired: not shown, the training set of " + stream + " is not known to be the same: " +
             (a ? versus : run).dir().string() + " has no " + name.string();
    if (*a != *b) return "paired: not shown, the runs' training sets differ (" + stream + ": " + name.string() + ")";
    ++same;
  }
  if (same == 0)
    return "paired: not shown, the training set of " + stream + " is not known to be the same: neither run stores it (" +
           (fs::path("data") / (stream_data_stem(n, repeat) + "train_*.npy")).string() + ")";
  return "";
}

// Whether repeat r has models in the cell in both runs.
bool both_have_models(const VersusCell& v, size_t r) {
  return r < v.run.repeats.size() && r < v.versus.repeats.size() && v.run.repeats[r].models > 0 &&
         v.versus.repeats[r].models > 0;
}

// Why the runs are not paired by training set, for the first stream (n,
// repeat) in order with models in both runs whose training set is not known
// to be the same; "" when there is none.
std::string first_unpaired_stream(const Store& run, const Store& versus, const std::vector<VersusCell>& cells) {
  std::set<std::pair<int, int>> streams;
  for (const VersusCell& v : cells)
    for (size_t r = 0; r < v.run.repeats.size(); ++r)
      if (both_have_models(v, r)) streams.insert({v.run.n, static_cast<int>(r)});
  for (const auto& [n, repeat] : streams) {
    std::string why = training_set_mismatch(run, versus, n, repeat);
    if (!why.empty()) return why;
  }
  return "";
}

void add_paired_differences(std::vector<VersusCell>& cells) {
  for (VersusCell& v : cells) {
    std::vector<double> a, b;
    for (size_t r = 0; r < v.run.repeats.size(); ++r) {
      if (!both_have_models(v, r)) continue;
      a.push_back(v.run.repeats[r].test_acc.mean);
      b.push_back(v.versus.repeats[r].test_acc.mean);
    }
    v.paired = paired_difference(a, b);
    v.paired_sets = static_cast<int>(a.size());
    v.paired_available = true;
  }
}

bool excludes_zero(const MeanDifference& d) { return d.ci95.lo > 0 || d.ci95.hi < 0; }

// The pooled paired estimate of the cells of size n (0: every size).
PooledDifference pooled_difference(const std::vector<VersusCell>& cells, int n) {
  std::map<std::pair<int, size_t>, std::vector<double>> by_set;  // (n, repeat) -> A - B in each of its cells
  PooledDifference p;
  p.n = n;
  for (const VersusCell& v : cells) {
    if (n != 0 && v.run.n != n) continue;
    bool any = false;
    for (size_t r = 0; r < v.run.repeats.size(); ++r)
      if (both_have_models(v, r)) {
        by_set[{v.run.n, r}].push_back(v.run.repeats[r].test_acc.mean - v.versus.repeats[r].test_acc.mean);
        any = true;
      }
    p.cells += any;
    p.cells_estimable += !std::isnan(v.paired.ci95.lo);
    p.cells_excluding_zero += excludes_zero(v.paired);
  }
  std::vector<double> per_set;
  for (const auto& [set, d] : by_set) per_set.push_back(summarize(d).mean);
  p.paired = paired_difference(per_set, std::vector<double>(per_set.size(), 0.0));
  p.sets = static_cast<int>(per_set.size());
  return p;
}

std::vector<PooledDifference> pooled_differences(const std::vector<VersusCell>& cells) {
  std::set<int> ns;
  for (const VersusCell& v : cells) ns.insert(v.run.n);
  std::vector<PooledDifference> pooled;
  for (int n : ns) pooled.push_back(pooled_difference(cells, n));
  pooled.push_back(pooled_difference(cells, 0));
  return pooled;
}

}  // namespace

Versus compare_runs(const Store& run, const Store& versus) {
  Versus result;
  check_comparable(run, versus, result);
  // The cells of the sizes both runs have.
  const auto shared = [&](std::vector<CellReport> cells, const std::vector<int>& only_here) {
    std::erase_if(cells, [&](const CellReport& c) { return std::ranges::count(only_here, c.n) > 0; });
    return cells;
  };
  const std::vector<CellReport> ours = shared(cell_reports(run), result.sizes_only_in_run),
                                theirs = shared(cell_reports(versus), result.sizes_only_in_versus);
  std::map<std::pair<int, int>, const CellReport*> by_cell;
  for (const CellReport& c : theirs) by_cell[{c.n, c.bin}] = &c;
  std::vector<VersusCell>& out = result.cells;
  for (const CellReport& c : ours) {
    const auto it = by_cell.find({c.n, c.bin});
    if (it == by_cell.end()) break;
    VersusCell v;
    v.run = c;
    v.versus = *it->second;
    v.test_acc = mean_difference(c.test_acc_by_repeat, it->second->test_acc_by_repeat);
    v.paired = paired_difference({}, {});  // NaN unless add_paired_differences fills it
    out.push_back(std::move(v));
  }
  if (out.size() != ours.size() || out.size() != theirs.size())
    throw Error("report --versus: " + run.dir().string() + " and " + versus.dir().string() +
                " do not hold the same cells (a task of a split run holds only its own: merge it first)");
  result.unpaired = first_unpaired_stream(run, versus, out);
  if (result.unpaired.empty()) {
    add_paired_differences(out);
    result.pooled = pooled_differences(out);
  }
  return result;
}

std::string format_versus(const Store& run, const Store& versus, ReportFormat format) {
  const Versus result = compare_runs(run, versus);
  if (format == ReportFormat::table) return format_versus_table(run, versus, result);
  std::vector<ordered_json> rows;
  for (const VersusCell& v : result.cells) rows.push_back(versus_fields(v, format == ReportFormat::csv));
  if (format == ReportFormat::csv) {
    for (const PooledDifference& p : result.pooled) rows.push_back(pooled_csv_row(p));
    return csv_text(versus_fields(VersusCell{}, true), rows);
  }
  ordered_json doc;
  doc["run"] = run_json(run);
  doc["versus"] = run_json(versus);
  doc["unpaired_reason"] = result.unpaired.empty() ? ordered_json(nullptr) : ordered_json(result.unpaired);
  doc["sizes_only_in_run"] = result.sizes_only_in_run;
  doc["sizes_only_in_versus"] = result.sizes_only_in_versus;
  doc["cells"] = rows;
  std::vector<ordered_json> pooled;
  for (const PooledDifference& p : result.pooled) pooled.push_back(pooled_fields(p));
  doc["pooled"] = pooled;
  return doc.dump(2) + "\n";
}

}  // namespace gac
