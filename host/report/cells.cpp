// Per-cell results of a run directory: its streams' draws and hits and its
// stored models' test metrics, aggregated over repeats and shards.
#include <algorithm>
#include <cmath>

#include "gac/report.h"
#include "host/report/cells.h"
#include "host/report/units.h"

namespace gac {

namespace {

template <typename T>
T at_or_zero(const std::vector<T>& v, int i) {
  return i < static_cast<int>(v.size()) ? v[i] : T{};
}

// Fills wanted, draws, hits, filled and status from the units of c.n: the
// shards of a repeat add up, hits and draws over every unit.
void aggregate_streams(CellReport& c, const std::vector<Unit>& units, const StreamIndex& streams, bool alive) {
  c.filled = true;
  std::string unfinished = "filled";
  for (const Unit& u : units) {
    if (u.n != c.n) continue;
    c.wanted += u.target;
    const StreamState* st = find_stream(streams, u);
    if (st) {
      c.draws += st->draws;
      c.hits += at_or_zero(st->hits, c.bin);
      c.failed += st->failed;
      c.same_body += at_or_zero(st->same_body, c.bin);
      if (at_or_zero(st->stored, c.bin) >= u.target) continue;
    }
    c.filled = false;
    unfinished = worse_status(unfinished, unit_status(u, st, alive));
  }
  c.status = c.filled ? "filled" : unfinished;
}

// The cell's repeats one by one: classes, models, metrics and draws over their shards (units).
std::vector<RepeatReport> repeat_reports(const CellReport& c, const std::vector<Unit>& units, const StreamIndex& streams,
                                         bool alive, const std::vector<std::vector<double>>& acc_by_repeat,
                                         const std::vector<std::vector<double>>& loss_by_repeat) {
  std::vector<RepeatReport> out(acc_by_repeat.size());
  std::vector<bool> filled(out.size(), true);
  for (const Unit& u : units) {
    if (u.n != c.n || u.repeat < 0 || u.repeat >= static_cast<int>(out.size())) continue;
    RepeatReport& r = out[u.repeat];
    const StreamState* st = find_stream(streams, u);
    if (st) {
      if (r.classes.empty()) r.classes = st->classes;  // every shard of a repeat has the same training set
      r.draws += st->draws;
      r.hits += at_or_zero(st->hits, c.bin);
      r.failed += st->failed;
      if (at_or_zero(st->stored, c.bin) >= u.target) continue;
    }
    filled[u.repeat] = false;
    const std::string status = unit_status(u, st, alive);
    r.status = r.status.empty() ? status : worse_status(r.status, status);
  }
  for (size_t i = 0; i < out.size(); ++i) {
    RepeatReport& r = out[i];
    r.repeat = static_cast<int>(i);
    r.models = static_cast<int>(acc_by_repeat[i].size());
    r.test_acc = summarize(acc_by_repeat[i]);
    r.test_loss = summarize(loss_by_repeat[i]);
    if (filled[i]) r.status = "filled";
  }
  return out;
}

Interval clipped_to_unit(Interval i) {
  if (!std::isnan(i.lo)) i.lo = std::max(0.0, i.lo);
  if (!std::isnan(i.hi)) i.hi = std::min(1.0, i.hi);
  return i;
}

CellReport make_cell(const RunMeta& meta, int n, int bin, const std::vector<Unit>& units, const StreamIndex& streams,
                     bool alive, const std::vector<StoredModel>& models) {
  CellReport c;
  c.n = n;
  c.bin = bin;
  c.loss_lo = meta.bin_edges[bin];
  c.loss_hi = meta.bin_edges[bin + 1];
  c.optimizer = meta.optimizer;

  std::vector<double> acc, loss;
  std::vector<std::vector<double>> acc_by_repeat(std::max(meta.repeats, 0)), loss_by_repeat(acc_by_repeat.size());
  for (const StoredModel& m : models) {
    if (m.n != n || m.bin != bin) continue;
    acc.push_back(m.test_acc);
    loss.push_back(m.test_loss);
    if (m.repeat < 0 || m.repeat >= meta.repeats) continue;
    acc_by_repeat[m.repeat].push_back(m.test_acc);
    loss_by_repeat[m.repeat].push_back(m.test_loss);
  }
  c.models = static_cast<int>(acc.size());
  c.test_acc = summarize(acc);
  // Models of one training set are not independent: the interval takes the
  // repeat as the unit. An accuracy lies in [0, 1]; with few repeats the t
  // interval can reach past it.
  c.test_acc_by_repeat = grouped_mean(acc_by_repeat);
  c.test_acc.ci95 = clipped_to_unit(c.test_acc_by_repeat.ci95);
  c.test_loss = summarize(loss);

  aggregate_streams(c, units, streams, alive);
  c.repeats = repeat_reports(c, units, streams, alive, acc_by_repeat, loss_by_repeat);
  c.rate = c.draws ? static_cast<double>(c.hits) / static_cast<double>(c.draws) : 0.0;
  c.heads = meta.optimizer == "guess" ? meta.heads : 1;  // SGD's same_body is not counted (docs/nested.md)
  c.design_effect = design_effect(c.draws, c.hits, c.same_body, c.heads);
  c.effective_draws = static_cast<double>(c.draws) / std::max(1.0, c.design_effect);
  c.rate_ci = wilson_interval_clustered(c.hits, c.draws, c.design_effect);
  c.log10_rate = c.draws == 0 ? kNaN : std::log10(c.hits ? c.rate : c.rate_ci.hi);
  return c;
}

}  // namespace

std::vector<CellReport> cell_reports(const Store& store) {
  const RunMeta& meta = store.meta();
  const std::vector<StreamState> states = store.states();
  const std::vector<StoredModel> models = store.models();
  const std::vector<Unit> units = directory_units(meta);
  const StreamIndex streams = index_streams(states);
  const bool alive = writer_alive(store.last_writer());
  std::vector<CellReport> cells;
  const int bins = static_cast<int>(meta.bin_edges.size()) - 1;
  for (int n : meta.ns) {
    // A task's directory holds no cell of an n whose streams other tasks run.
    if (std::none_of(units.begin(), units.end(), [n](const Unit& u) { return u.n == n; })) continue;
    for (int bin = 0; bin < bins; ++bin) cells.push_back(make_cell(meta, n, bin, units, streams, alive, models));
  }
  return cells;
}

}  // namespace gac
