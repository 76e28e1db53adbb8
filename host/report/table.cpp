// The report's cells as text tables.
#include "host/report/table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>
#include <utility>

#include "gac/dataset.h"
#include "gac/optimizer.h"
#include "host/report/cells.h"
#include "host/report/format.h"
#include "host/report/tasks.h"

namespace gac {

namespace fs = std::filesystem;

namespace {

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
          any ? printf_string(a.count > 1 ? "%.4f ± %.4f" : "%.4f", a.mean, a.std) : "-",
          !any ? "-" : std::isnan(a.ci95.lo) ? "not estimable" : printf_string("[%.4f, %.4f]", a.ci95.lo, a.ci95.hi),
          any ? printf_string("%.4f", a.min) : "-",
          any ? printf_string("%.4f", a.max) : "-",
          std::to_string(c.draws),
          printf_string("%.3g [%.3g, %.3g]", c.rate, c.rate_ci.lo, c.rate_ci.hi) +
              (c.heads > 1 ? printf_string(" deff %.2f", c.design_effect) : std::string()),
          log10};
}

std::string compact_classes(const std::vector<int>& classes) { return classes.empty() ? "-" : classes_text(classes, ","); }

// The classes of the training sets: one line when they are all the same,
// else one line per n listing each repeat's.
std::string classes_header(const std::vector<CellReport>& cells) {
  std::vector<std::pair<int, std::vector<std::vector<int>>>> by_n;  // n -> classes of each repeat
  std::set<std::vector<int>> distinct;
  for (const CellReport& c : cells) {
    if (!by_n.empty() && by_n.back().first == c.n) continue;  // every bin of an n has the same repeats
    by_n.emplace_back(c.n, std::vector<std::vector<int>>{});
    for (const RepeatReport& r : c.repeats) {
      by_n.back().second.push_back(r.classes);
      if (!r.classes.empty()) distinct.insert(r.classes);
    }
  }
  if (distinct.empty()) return "";
  if (distinct.size() == 1) return "classes " + classes_text(*distinct.begin()) + " (original labels) in every training set\n";
  std::string out = "classes (original labels) of each training set, by repeat:\n";
  for (const auto& [n, per_repeat] : by_n) {
    out += "  n=" + std::to_string(n) + ":";
    for (const auto& classes : per_repeat) out += "  " + compact_classes(classes);
    out += "\n";
  }
  return out;
}

std::string table_heading(const Store& store, const std::vector<CellReport>& cells) {
  const RunMeta& meta = store.meta();
  std::string tasks;
  if (meta.shards > 1)
    tasks = "; " + (meta.shard < 0 ? std::string("every task") : "task " + std::to_string(meta.shard)) + " of " +
            std::to_string(meta.shards);
  std::string trained;
  if (meta.optimizer != "guess") trained = "trained by " + optimizer_title(meta.optimizer) + " from the draws, ";
  if (meta.optimizer == "pattern" || meta.optimizer == "greedy") {
    uint64_t draws = 0, failed = 0;
    for (const StreamState& st : store.states()) {
      draws += st.draws;
      failed += st.failed;
    }
    trained += std::to_string(failed) + " of " + std::to_string(draws) +
               " searches failed (no model of training accuracy 1), ";
  }
  return store.dir().string() + ": " + std::to_string(meta.n_params) + " parameters, " + trained + "target " +
         std::to_string(meta.target) + " models per cell and repeat, " + std::to_string(meta.repeats) +
         (meta.repeats == 1 ? " repeat" : " repeats") + tasks + "\n" + classes_header(cells) + "\n";
}

}  // namespace

std::string printf_string(const char* format, double a, double b, double c) {
  char buf[128];
  std::snprintf(buf, sizeof buf, format, a, b, c);
  return buf;
}

std::string bin_label(double lo, double hi, int decimals) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "(%.*f, %.*f]", decimals, lo, decimals, hi);
  return buf;
}

// Fewest decimals (2 to 6) that show every bin edge exactly: "(0.30, 0.35]", "(0.125, 0.250]".
// (The config requires finite edges, so fixed() never writes its "-" here.)
int edge_decimals(const std::vector<double>& edges) {
  for (int d = 2; d < 6; ++d) {
    const bool exact =
        std::all_of(edges.begin(), edges.end(), [d](double e) { return std::stod(fixed(e, d)) == e; });
    if (exact) return d;
  }
  return 6;
}

// Rows of text in aligned columns, two spaces apart.
std::string aligned(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], display_width(row[i]));
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) line += row[i] + std::string(widths[i] - display_width(row[i]) + 2, ' ');
    out += line.substr(0, line.find_last_not_of(' ') + 1) + "\n";
  }
  return out;
}

std::string format_table(const Store& store, const std::vector<CellReport>& cells) {
  const RunMeta& meta = store.meta();
  std::vector<std::vector<std::string>> rows = {{"n", "loss bin", "models", "status", "test acc (mean ± std)",
                                                 "test acc 95% CI", "min", "max", "draws", "rate [95% CI]",
                                                 "log10 rate"}};
  const int decimals = edge_decimals(meta.bin_edges);
  for (const CellReport& c : cells) rows.push_back(table_row(c, decimals));

  std::ostringstream out;
  out << table_heading(store, cells) << aligned(rows);
  out << "\ntest acc 95% CI: t interval with the training set (repeat) as the unit, not the model (models of one\n"
         "training set are not independent); not estimable until models of 2 repeats are in the cell.\n"
         "rate = hits/draws with a Wilson 95% interval. A cell with no hits yet (unfilled) has only an upper bound:\n"
         "its log10 rate, marked '<', is log10 of the interval's upper end.\n";
  if (std::any_of(cells.begin(), cells.end(), [](const CellReport& c) { return c.heads > 1; }))
    out << "nested sampling (" << meta.heads << " heads per body): draws are (body, head) pairs; the rate's Wilson\n"
           "interval uses the effective number of draws, draws / deff, with deff the design effect of the cell's\n"
           "hits, bodies as clusters (docs/nested.md). deff well above 1: the cell's hits crowd into few bodies.\n";
  if (fs::is_directory(store.dir() / "shards")) out << merged_tasks_line(store);
  return out.str();
}

std::string format_repeats_table(const Store& store, const std::vector<CellReport>& cells) {
  std::vector<std::vector<std::string>> rows = {
      {"n", "loss bin", "repeat", "classes", "models", "status", "test acc (mean ± std)", "min", "max", "draws", "hits"}};
  const int decimals = edge_decimals(store.meta().bin_edges);
  for (const CellReport& c : cells)
    for (const RepeatReport& r : c.repeats) {
      const Summary& a = r.test_acc;
      const bool any = a.count > 0;
      rows.push_back({std::to_string(c.n), bin_label(c.loss_lo, c.loss_hi, decimals), std::to_string(r.repeat),
                      compact_classes(r.classes), std::to_string(r.models), r.status,
                      any ? printf_string(a.count > 1 ? "%.4f ± %.4f" : "%.4f", a.mean, a.std) : "-",
                      any ? printf_string("%.4f", a.min) : "-", any ? printf_string("%.4f", a.max) : "-",
                      std::to_string(r.draws), std::to_string(r.hits)});
    }
  return table_heading(store, cells) + aligned(rows);
}

}  // namespace gac
