#include "host/report/probes.h"

#include <cmath>
#include <map>

#include "gac/error.h"
#include "gac/stats.h"
#include "host/report/records.h"
#include "host/report/stored_models.h"
#include "host/report/table.h"
#include "kernels/forward.h"

namespace gac {

namespace {

// `count` points from `from` to `to` evenly, ends included (numpy's linspace).
std::vector<double> linspace(double from, double to, int count) {
  std::vector<double> v(count);
  for (int i = 0; i < count; ++i) v[i] = from + (to - from) * i / (count - 1);
  return v;
}

void add(ProbeSet& p, double x0, double x1, int label) {
  p.x.push_back(static_cast<float>(x0));
  p.x.push_back(static_cast<float>(x1));
  p.y.push_back(label);
}

// Whether the model (params) classifies every point of the probe right.
bool fits(const ModelSpec& spec, const std::vector<float>& params, const ProbeSet& probe) {
  std::vector<float> buf0(spec.max_activation), buf1(spec.max_activation);
  for (size_t i = 0; i < probe.y.size(); ++i)
    if (argmax(forward_example(spec, params.data(), &probe.x[2 * i], buf0.data(), buf1.data()), spec.n_classes) !=
        probe.y[i])
      return false;
  return true;
}

struct ProbeCell {
  int n = 0, bin = 0, models = 0;
  std::map<int, int> sets;  // repeat -> models
  std::vector<int> fit;     // per probe
};

std::string fit_text(int k, int models) {
  if (models == 0) return "-";
  const Interval ci = wilson_interval(k, models);
  return std::to_string(k) + printf_string(" (%.4f [%.4f, %.4f])", static_cast<double>(k) / models, ci.lo, ci.hi);
}

}  // namespace

std::vector<ProbeSet> slab_probes() {
  constexpr double kGap = 0.1, kThickness = 0.35;  // half the gap between slabs; a slab's height (4 slabs in [-1, 1])
  ProbeSet linear{"linear", {}, {}};
  for (int label = 0; label < 2; ++label)
    for (double y : linspace(1, -1, 30)) add(linear, label == 0 ? 0.1 : -0.1, y, label);

  // The zigzag: three segments of 10 points, each through the middle of a gap
  // at 45 degrees, alternating in direction, from the middle of the bottom slab up.
  std::vector<std::pair<double, double>> zigzag;
  double crossing = -1 + kThickness + kGap, start = -1 + kThickness / 2, slope = 1;
  for (int segment = 0; segment < 3; ++segment) {
    const double end = start + 2 * kGap + kThickness;
    for (double y : linspace(start, end, 10)) zigzag.emplace_back((y - crossing) * slope, y);
    crossing += 2 * kGap + kThickness;
    start = end;
    slope = -slope;
  }
  ProbeSet nonlinear{"nonlinear", {}, {}};
  const double shift = kGap * std::sqrt(2.0);
  for (int label = 0; label < 2; ++label)
    for (const auto& [x, y] : zigzag) add(nonlinear, label == 0 ? x + shift : x - shift, y, label);
  return {linear, nonlinear};
}

std::string format_probe_report(const Store& store, const std::vector<ProbeSet>& probes, ReportFormat format) {
  const std::string dir = store.dir().string();
  const ModelSpec spec = stored_model_spec(store);
  if (spec.in_size() != 2 || spec.n_classes != 2)
    throw Error("report --probes: " + dir + "'s model reads " + std::to_string(spec.in_size()) + " inputs into " +
                std::to_string(spec.n_classes) + " classes; the slab probes need 2 and 2");
  std::map<std::pair<int, int>, ProbeCell> cells;
  for (const StoredModel& m : store.models()) {
    ProbeCell& c = cells[{m.n, m.bin}];
    c.n = m.n, c.bin = m.bin;
    c.fit.resize(probes.size());
    const std::vector<float> params = stored_params(store, m, spec, "report --probes");
    ++c.models;
    ++c.sets[m.repeat];
    for (size_t p = 0; p < probes.size(); ++p) c.fit[p] += fits(spec, params, probes[p]);
  }

  std::vector<ordered_json> rows;
  std::vector<std::vector<std::string>> table = {{"n", "loss bin", "models", "training sets"}};
  const std::vector<double>& edges = store.meta().bin_edges;
  const int decimals = edge_decimals(edges);
  for (const ProbeSet& p : probes) table[0].push_back("fit " + p.name + " (share [95% CI])");
  bool clustered = false;
  for (const auto& [key, c] : cells) {
    ordered_json row;
    row["n"] = c.n;
    row["bin"] = c.bin;
    row["models"] = c.models;
    row["training_sets"] = c.sets.size();
    std::vector<std::string> line = {std::to_string(c.n), bin_label(edges[c.bin], edges[c.bin + 1], decimals),
                                     std::to_string(c.models),
                                     std::to_string(c.sets.size())};
    for (size_t p = 0; p < probes.size(); ++p) {
      const Interval ci = wilson_interval(c.fit[p], c.models);
      row[probes[p].name + "_fit"] = c.fit[p];
      row[probes[p].name + "_share"] = static_cast<double>(c.fit[p]) / c.models;
      row[probes[p].name + "_ci_lo"] = ci.lo;
      row[probes[p].name + "_ci_hi"] = ci.hi;
      line.push_back(fit_text(c.fit[p], c.models));
    }
    clustered |= c.sets.size() < static_cast<size_t>(c.models);
    rows.push_back(row);
    table.push_back(line);
  }
  if (format == ReportFormat::csv) return rows.empty() ? "" : csv_text(rows.front(), rows);
  if (format == ReportFormat::json) return ordered_json(rows).dump(2) + "\n";
  std::string notes;
  for (const ProbeSet& p : probes)
    notes += "fit " + p.name + ": models that classify all " + std::to_string(p.y.size()) + " points of the " + p.name +
             " probe right.\n";
  return dir + ": the accepted models against the slab probes (the paper's Figure 3)\n\n" + aligned(table) + "\n" + notes +
         "Intervals: Wilson 95% over models" +
         (clustered ? "; some training sets hold several models, which are not independent: the intervals are too narrow.\n"
                    : ", each model of its own training set.\n");
}

}  // namespace gac
