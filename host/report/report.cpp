// Per-cell results of a run directory, as a table, CSV or JSON.
#include "gac/report.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>
#include <utility>

#include "gac/config.h"
#include "gac/error.h"
#include "gac/run.h"
#include "gac/shards.h"
#include "gac/dataset.h"

namespace gac {

namespace fs = std::filesystem;

namespace {

using ordered_json = nlohmann::ordered_json;  // keeps the columns in the order they are added

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// Which status explains an unfilled cell best: a stream still running says
// more than one stopped by a signal or a kill, one stopped by the time limit,
// one not begun yet, or one out of its budget.
int status_rank(const std::string& status) {
  if (status == "filled") return 0;
  if (status == "budget") return 1;
  if (status == "pending") return 2;
  if (status == "time") return 3;
  if (status == "interrupted") return 4;
  return 5;  // running, or anything unexpected
}

// A writer that committed within this long may still be running.
constexpr double kWriterStaleSeconds = 120;

// Whether the process that last committed to a run may still be at work: it
// committed recently and, on this host, its process exists.
bool writer_alive(const std::optional<WriterInfo>& w) {
  if (!w) return false;
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  if (now - w->time > kWriterStaleSeconds) return false;
  char host[HOST_NAME_MAX + 1] = {};
  ::gethostname(host, sizeof host - 1);
  return w->host != host || ::kill(w->pid, 0) == 0 || errno == EPERM;
}

// The units this directory's cells are made of: the run's, or its task's
// when it holds one task of a split run (include/gac/shards.h).
std::vector<Unit> directory_units(const RunMeta& meta) {
  RunConfig plan;
  plan.ns = meta.ns;
  plan.repeats = std::max(meta.repeats, 0);
  plan.target = std::max(meta.target, 1);
  plan.shards = std::max(meta.shards, 1);
  plan.shard = meta.shard;
  return task_units(plan);
}

using StreamIndex = std::map<std::tuple<int, int, int>, const StreamState*>;

StreamIndex index_streams(const std::vector<StreamState>& states) {
  StreamIndex index;
  for (const StreamState& s : states) index[{s.n, s.repeat, s.shard}] = &s;
  return index;
}

const StreamState* find_stream(const StreamIndex& index, const Unit& u) {
  const auto it = index.find({u.n, u.repeat, u.shard});
  return it == index.end() ? nullptr : it->second;
}

bool unit_filled(const Unit& u, const StreamState& st) {
  return std::all_of(st.stored.begin(), st.stored.end(), [&u](int stored) { return stored >= u.target; });
}

// A unit's status as the report shows it: pending before its first commit,
// or while a grown target waits for the run to go on; interrupted when its
// run died while it was running.
std::string unit_status(const Unit& u, const StreamState* st, bool alive) {
  if (!st) return "pending";
  if (st->status == "filled" && !unit_filled(u, *st)) return "pending";
  if (st->status == "running" && !alive) return "interrupted";
  return st->status;
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
  j["log10_rate"] = c.log10_rate;
  j["log10_rate_is_upper_bound"] = rate_is_upper_bound(c);
  j["test_acc_se"] = c.test_acc_by_repeat.se;
  j["test_acc_repeats"] = c.test_acc_by_repeat.groups;
  j["classes"] = cell_classes(c);
  return j;
}

// The fields of one repeat of a cell: the per-repeat breakdown.
ordered_json repeat_fields(const RepeatReport& r) {
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
  return j;
}

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
    for (const RepeatReport& r : c.repeats) cell["repeats"].push_back(repeat_fields(r));
    doc["cells"].push_back(std::move(cell));
  }
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
          any ? printf_string(a.count > 1 ? "%.4f ± %.4f" : "%.4f", a.mean, a.std) : "-",
          !any ? "-" : std::isnan(a.ci95.lo) ? "not estimable" : printf_string("[%.4f, %.4f]", a.ci95.lo, a.ci95.hi),
          any ? printf_string("%.4f", a.min) : "-",
          any ? printf_string("%.4f", a.max) : "-",
          std::to_string(c.draws),
          printf_string("%.3g [%.3g, %.3g]", c.rate, c.rate_ci.lo, c.rate_ci.hi),
          log10};
}

std::string task_counts(const std::vector<TaskProgress>& tasks) {
  std::map<std::string, int> count;
  for (const TaskProgress& t : tasks) ++count[t.state];
  std::string text;
  for (const char* state : {"done", "running", "interrupted", "never started"})
    text += (text.empty() ? "" : ", ") + std::to_string(count[state]) + " " + state;
  return text;
}

// A merged run's tasks: how many are done, and whether they hold draws the merge does not have yet.
std::string merged_tasks_line(const Store& store) {
  std::vector<TaskProgress> tasks;
  try {
    tasks = task_progress(store.dir());
  } catch (const Error&) {
    return "";  // shards/ holds no task: nothing to say
  }
  uint64_t task_draws = 0, merged_draws = 0;
  for (const TaskProgress& t : tasks) task_draws += t.draws;
  for (const StreamState& s : store.states()) merged_draws += s.draws;
  return "tasks in " + (store.dir() / "shards").string() + ": " + task_counts(tasks) +
         (task_draws > merged_draws ? "; they hold draws not merged yet: run gac merge again\n" : "\n");
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
  return store.dir().string() + ": " + std::to_string(meta.n_params) + " parameters, " +
         (meta.optimizer == "sgd" ? "trained by SGD from the draws, " : "") + "target " +
         std::to_string(meta.target) + " models per cell and repeat, " + std::to_string(meta.repeats) +
         (meta.repeats == 1 ? " repeat" : " repeats") + tasks + "\n" + classes_header(cells) + "\n";
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
  if (fs::is_directory(store.dir() / "shards")) out << merged_tasks_line(store);
  return out.str();
}

// One row of the per-repeat breakdown: the cell, then the repeat's fields.
ordered_json repeat_row(const CellReport& c, const RepeatReport& r) {
  ordered_json row;
  row["n"] = c.n;
  row["bin"] = c.bin;
  row["loss_lo"] = c.loss_lo;
  row["loss_hi"] = c.loss_hi;
  row.update(repeat_fields(r));
  return row;
}

std::string format_repeats_csv(const std::vector<CellReport>& cells) {
  std::vector<ordered_json> rows;
  for (const CellReport& c : cells)
    for (const RepeatReport& r : c.repeats) rows.push_back(repeat_row(c, r));
  return csv_text(repeat_row(CellReport{}, RepeatReport{}), rows);
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

std::vector<TaskProgress> task_progress(const fs::path& dir) {
  // The plan comes from any task's ledger, else from the config gac slurm wrote.
  std::map<int, std::unique_ptr<Store>> stores;
  std::optional<RunMeta> plan;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir / "shards", ec)) {
    const std::string name = entry.path().filename().string();
    int task = -1;
    const auto [end, err] = std::from_chars(name.data(), name.data() + name.size(), task);
    if (err != std::errc() || end != name.data() + name.size() || !fs::exists(entry.path() / "ledger.sqlite")) continue;
    stores[task] = Store::open_existing(entry.path());
    if (!plan) plan = stores[task]->meta();
  }
  if (!plan && fs::exists(dir / "slurm" / "config.toml")) {
    const RunConfig cfg = load_config(dir / "slurm" / "config.toml");
    plan = RunMeta{cfg.bins, cfg.target, cfg.ns, cfg.repeats, 0, {}, cfg.shards, -1};
  }
  if (!plan) throw Error(dir.string() + " is not a gac run directory (no ledger.sqlite) and holds no tasks of a split run (shards/)");

  std::vector<TaskProgress> tasks;
  const int bins = static_cast<int>(plan->bin_edges.size()) - 1;
  for (int task = 0; task < plan->shards; ++task) {
    TaskProgress p;
    p.task = task;
    RunMeta meta = *plan;
    meta.shard = task;
    const std::vector<Unit> units = directory_units(meta);
    p.streams = static_cast<int>(units.size());
    for (const Unit& u : units) p.wanted += static_cast<uint64_t>(u.target) * bins;
    const auto it = stores.find(task);
    if (it == stores.end()) {
      p.state = "never started";
      tasks.push_back(p);
      continue;
    }
    const std::vector<StreamState> states = it->second->states();
    const StreamIndex streams = index_streams(states);
    const bool alive = writer_alive(it->second->last_writer());
    for (const Unit& u : units) {
      const StreamState* st = find_stream(streams, u);
      if (!st) continue;
      p.draws += st->draws;
      for (int stored : st->stored) p.models += stored;
      const std::string status = unit_status(u, st, alive);
      p.streams_done += status == "filled" || status == "budget";
    }
    p.state = p.streams_done == p.streams ? "done" : alive ? "running" : "interrupted";
    tasks.push_back(p);
  }
  return tasks;
}

std::string format_task_progress(const fs::path& dir, ReportFormat format) {
  const std::vector<TaskProgress> tasks = task_progress(dir);
  auto fields = [](const TaskProgress& t) {
    ordered_json j;
    j["task"] = t.task;
    j["state"] = t.state;
    j["streams"] = t.streams;
    j["streams_done"] = t.streams_done;
    j["models"] = t.models;
    j["wanted"] = t.wanted;
    j["draws"] = t.draws;
    return j;
  };
  std::ostringstream out;
  if (format == ReportFormat::json) {
    ordered_json doc;
    doc["merged"] = false;
    doc["tasks"] = ordered_json::array();
    for (const TaskProgress& t : tasks) doc["tasks"].push_back(fields(t));
    return doc.dump(2) + "\n";
  }
  if (format == ReportFormat::csv) {
    out << "task,state,streams,streams_done,models,wanted,draws\n";
    for (const TaskProgress& t : tasks)
      out << t.task << "," << t.state << "," << t.streams << "," << t.streams_done << "," << t.models << ","
          << t.wanted << "," << t.draws << "\n";
    return out.str();
  }
  out << dir.string() << ": a run split into " << tasks.size() << " tasks, not merged yet: " << task_counts(tasks)
      << "\n\n";
  char line[160];
  std::snprintf(line, sizeof line, "%-6s %-14s %-10s %-16s %s\n", "task", "state", "streams", "models", "draws");
  out << line;
  for (const TaskProgress& t : tasks) {
    const std::string streams = std::to_string(t.streams_done) + "/" + std::to_string(t.streams);
    const std::string models = std::to_string(t.models) + "/" + std::to_string(t.wanted);
    std::snprintf(line, sizeof line, "%-6d %-14s %-10s %-16s %llu\n", t.task, t.state.c_str(), streams.c_str(),
                  models.c_str(), static_cast<unsigned long long>(t.draws));
    out << line;
  }
  out << "\nWhen every task is done: gac merge " << dir.string() << " (with --partial it merges what there is)\n";
  return out.str();
}

namespace {

// The cells of a run, one row a cell or (per_repeat) a row a cell and repeat.
std::string format_cells(const Store& store, ReportFormat format, bool per_repeat) {
  const std::vector<CellReport> cells = cell_reports(store);
  switch (format) {
    case ReportFormat::csv:
      return per_repeat ? format_repeats_csv(cells) : format_csv(cells);
    case ReportFormat::json:
      return format_json(store, cells);  // nests the repeats in each cell
    case ReportFormat::table:
      break;
  }
  return per_repeat ? format_repeats_table(store, cells) : format_table(store, cells);
}

}  // namespace

std::string format_repeats(const Store& store, ReportFormat format) { return format_cells(store, format, true); }

std::string format_report(const Store& store, ReportFormat format) { return format_cells(store, format, false); }

// ---------------------------------------------------------------------------
// Two runs side by side (--versus)

namespace {

std::vector<int> sorted(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// Only runs of the same cells compare: the same bin edges and sizes n.
void check_same_cells(const Store& run, const Store& versus) {
  const RunMeta &a = run.meta(), &b = versus.meta();
  const auto refuse = [&](const std::string& what, const std::string& here, const std::string& there) {
    throw Error("report --versus: " + run.dir().string() + " has " + what + " " + here + " but " +
                versus.dir().string() + " has " + there + "; only runs of the same cells (sizes n and bins) compare");
  };
  if (a.bin_edges != b.bin_edges) refuse("bin edges", ordered_json(a.bin_edges).dump(), ordered_json(b.bin_edges).dump());
  if (sorted(a.ns) != sorted(b.ns)) refuse("sizes n", ordered_json(sorted(a.ns)).dump(), ordered_json(sorted(b.ns)).dump());
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

std::string format_versus_table(const Store& run, const Store& versus, const std::vector<VersusCell>& cells,
                                const std::string& unpaired) {
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
  return "A = " + run_line(run) + "\nB = " + run_line(versus) + "\n\n" + aligned(rows) +
         "\nEach run's interval takes its training sets (repeats) as the units (cluster-robust standard error, t with\n"
         "R-1 df). A - B: difference of the mean test accuracies, standard error sqrt(se_A^2 + se_B^2), t interval with\n"
         "the Welch-Satterthwaite df (rounded down); not estimable unless both runs have models of 2 repeats in the cell.\n" +
         (unpaired.empty()
              ? "paired A - B: paired by training set, as the runs share each (n, repeat)'s training set: the mean over the\n"
                "k sets with models in both runs of d = A's mean test accuracy on the set - B's, t interval with k-1 df;\n"
                "not estimable for k < 2 or when every d is the same.\n"
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

}  // namespace

Versus compare_runs(const Store& run, const Store& versus) {
  check_same_cells(run, versus);
  const std::vector<CellReport> ours = cell_reports(run), theirs = cell_reports(versus);
  std::map<std::pair<int, int>, const CellReport*> by_cell;
  for (const CellReport& c : theirs) by_cell[{c.n, c.bin}] = &c;
  Versus result;
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
  if (result.unpaired.empty()) add_paired_differences(out);
  return result;
}

std::string format_versus(const Store& run, const Store& versus, ReportFormat format) {
  const auto [cells, unpaired] = compare_runs(run, versus);
  if (format == ReportFormat::table) return format_versus_table(run, versus, cells, unpaired);
  std::vector<ordered_json> rows;
  for (const VersusCell& v : cells) rows.push_back(versus_fields(v, format == ReportFormat::csv));
  if (format == ReportFormat::csv) return csv_text(versus_fields(VersusCell{}, true), rows);
  ordered_json doc;
  doc["run"] = run_json(run);
  doc["versus"] = run_json(versus);
  doc["unpaired_reason"] = unpaired.empty() ? ordered_json(nullptr) : ordered_json(unpaired);
  doc["cells"] = rows;
  return doc.dump(2) + "\n";
}

}  // namespace gac
