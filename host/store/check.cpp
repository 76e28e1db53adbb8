// A run directory's structure: what `run` checks and repairs when it opens
// one, and the first half of `gac verify`.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <ostream>
#include <set>
#include <tuple>

#include "gac/error.h"
#include "gac/experiment.h"
#include "gac/npy.h"
#include "gac/philox.h"
#include "gac/prior.h"
#include "gac/optimizer.h"
#include "gac/verify.h"
#include "host/util/parallel_for.h"

namespace gac {
namespace {

namespace fs = std::filesystem;
using StreamId = std::tuple<int, int, int>;  // n, repeat, shard

std::string stream_text(const StreamId& id) {
  return "stream n=" + std::to_string(std::get<0>(id)) + " repeat " + std::to_string(std::get<1>(id)) + " shard " +
         std::to_string(std::get<2>(id));
}

// write_file_atomic's temporaries: NAME.tmp.PID.
bool is_temporary(const std::string& name) {
  const size_t at = name.rfind(".tmp.");
  return at != std::string::npos && at + 5 < name.size() &&
         name.find_first_not_of("0123456789", at + 5) == std::string::npos;
}

// weights/n{n}_r{repeat}_s{shard}_d{draw}.npy, or (SGD) ..._d{draw}_b{bin}.npy
bool is_weights_name(const std::string& name) {
  int n, repeat, shard, bin, end = 0;
  uint64_t draw;
  const char* text = name.c_str();
  return (std::sscanf(text, "n%d_r%d_s%d_d%" SCNu64 ".npy%n", &n, &repeat, &shard, &draw, &end) == 4 &&
          static_cast<size_t>(end) == name.size()) ||
         (std::sscanf(text, "n%d_r%d_s%d_d%" SCNu64 "_b%d.npy%n", &n, &repeat, &shard, &draw, &bin, &end) == 5 &&
          static_cast<size_t>(end) == name.size());
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Rows against their streams: each stream's per-bin `stored` counts its
// rows, and no row lies outside its stream.
std::vector<std::string> ledger_problems(const Store& store, const std::vector<StoredModel>& models) {
  std::vector<std::string> problems;
  const int n_bins = static_cast<int>(store.meta().bin_edges.size()) - 1;
  std::map<StreamId, std::vector<int>> rows;
  std::map<StreamId, uint64_t> last_draw;
  for (const StoredModel& m : models) {
    const StreamId id{m.n, m.repeat, m.shard};
    if (m.bin < 0 || m.bin >= n_bins) {
      problems.push_back(stream_text(id) + ": the row of draw " + std::to_string(m.draw) + " has bin " +
                         std::to_string(m.bin) + ", but the run has bins 0.." + std::to_string(n_bins - 1));
      continue;
    }
    auto& counts = rows[id];
    counts.resize(n_bins);
    ++counts[m.bin];
    last_draw[id] = std::max(last_draw[id], m.draw);
  }
  for (const StreamState& st : store.states()) {
    const StreamId id{st.n, st.repeat, st.shard};
    if (static_cast<int>(st.stored.size()) != n_bins || static_cast<int>(st.hits.size()) != n_bins) {
      problems.push_back(stream_text(id) + ": its row has " + std::to_string(st.stored.size()) + " bins, the run has " +
                         std::to_string(n_bins));
      continue;
    }
    const auto found = rows.find(id);
    for (int j = 0; j < n_bins; ++j) {
      const int held = found == rows.end() ? 0 : found->second[j];
      if (held != st.stored[j])
        problems.push_back(stream_text(id) + ", bin " + std::to_string(j) + ": the stream records " +
                           std::to_string(st.stored[j]) + " stored models but the ledger holds " + std::to_string(held) +
                           " model rows");
    }
    if (found != rows.end() && last_draw[id] >= st.draws)
      problems.push_back(stream_text(id) + ": a model row has draw " + std::to_string(last_draw[id]) +
                         ", beyond the stream's " + std::to_string(st.draws) + " checked draws");
    if (found != rows.end()) rows.erase(found);
  }
  for (const auto& [id, counts] : rows) {
    int total = 0;
    for (int c : counts) total += c;
    problems.push_back(stream_text(id) + ": " + std::to_string(total) + " model rows but no stream row");
  }
  return problems;
}

std::string file_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string plural(size_t count, const std::string& one, const std::string& many) {
  return std::to_string(count) + " " + (count == 1 ? one : many);
}

// Missing weights files of a guess-and-check run: each model is its draw.
void regenerate_missing_weights(const fs::path& dir, const Experiment& ex, const std::vector<StoredModel>& missing) {
  const ModelSpec& m = ex.model.spec;
  std::vector<float> params(m.n_params);
  for (const StoredModel& s : missing) {
    generate_params(ex.prior, make_stream_key(ex.cfg.seed, s.n, s.repeat, s.shard), s.draw, m.n_params, params.data());
    write_file_atomic(dir / s.file, npy_bytes_f32(params.data(), {m.n_params}));
  }
}

// Missing weights files of a trained run: each model's draw re-trained alone,
// one stream at a time, gives its parameters bit for bit.
void retrain_missing_weights(const fs::path& dir, const Experiment& ex, const std::vector<StoredModel>& missing) {
  const std::unique_ptr<Optimizer> trainer = make_optimizer(ex.cfg, ex.cfg.threads > 0 ? ex.cfg.threads : available_cpus());
  for (size_t first = 0; first < missing.size();) {
    const StoredModel& a = missing[first];
    size_t end = first;
    while (end < missing.size() && std::tie(missing[end].n, missing[end].repeat, missing[end].shard) ==
                                       std::tie(a.n, a.repeat, a.shard))
      ++end;
    trainer->begin_stream(stream_task(ex, a.n, a.repeat, a.shard));
    const std::vector<StoredModel> stream(missing.begin() + first, missing.begin() + end);
    const std::vector<TrainedModel> models = retrain_models(*trainer, stream);
    for (size_t i = 0; i < stream.size(); ++i) {
      if (models[i].bin < 0)
        throw Error(dir.string() + ": cannot regenerate " + stream[i].file + ": re-training draw " +
                    std::to_string(stream[i].draw) + " gives no model in bin " + std::to_string(stream[i].bin) +
                    "; `gac verify " + dir.string() + "` checks the run");
      write_file_atomic(dir / stream[i].file, npy_bytes_f32(models[i].params.data(), {ex.model.spec.n_params}));
    }
    first = end;
  }
}

}  // namespace

std::vector<std::string> DirectoryDamage::lines() const {
  std::vector<std::string> out = ledger;
  if (layout_differs) out.push_back("layout.json is missing or differs from the layout of the run's config");
  for (const StoredModel& m : missing_weights)
    out.push_back("missing weights file " + m.file + " (n=" + std::to_string(m.n) + " repeat " + std::to_string(m.repeat) +
                  " draw " + std::to_string(m.draw) + " bin " + std::to_string(m.bin) + ")");
  for (const std::string& f : leftovers) out.push_back("leftover file " + f + " (of a killed run; `gac run` removes it)");
  for (const std::string& f : unexpected) out.push_back("unexpected file " + f);
  return out;
}

DirectoryDamage inspect_run_directory(const Store& store, const std::string& layout_json) {
  DirectoryDamage d;
  const fs::path& dir = store.dir();
  // Rows first, files second: a writer commits a row only after its file.
  const std::vector<StoredModel> models = store.models();
  d.ledger = ledger_problems(store, models);

  std::error_code ec;
  // The size first: a file of another size differs, however large (it is never read).
  const fs::path layout = dir / "layout.json";
  d.layout_differs = !fs::is_regular_file(layout, ec) || fs::file_size(layout, ec) != layout_json.size() ||
                     file_text(layout) != layout_json;

  std::set<std::string> named;  // weights files the rows name
  for (const StoredModel& m : models) named.insert(m.file);
  std::set<std::string> present;
  for (const std::string& name : names_in(dir / "weights")) {
    const std::string file = "weights/" + name;
    present.insert(file);
    if (named.count(file)) continue;
    if (is_temporary(name) || is_weights_name(name)) d.leftovers.push_back(file);
    else d.unexpected.push_back(file);
  }
  for (const StoredModel& m : models)
    if (!present.count(m.file)) d.missing_weights.push_back(m);
  for (const char* sub : {"", "data"})
    for (const std::string& name : names_in(dir / sub))
      if (is_temporary(name) || name.rfind("ledger.sqlite.tmp", 0) == 0)
        d.leftovers.push_back((fs::path(sub) / name).string());
  return d;
}

void repair_run_directory(const Store& store, const Experiment& ex, std::ostream& log) {
  const fs::path& dir = store.dir();
  const std::string layout = layout_json(ex.model);
  const DirectoryDamage d = inspect_run_directory(store, layout);
  if (!d.ledger.empty())
    throw Error(dir.string() + ": the ledger is damaged: " + d.ledger.front() +
                (d.ledger.size() > 1 ? " (and " + plural(d.ledger.size() - 1, "more problem", "more problems") + ")" : "") +
                "; `gac verify " + dir.string() + "` lists them; restore the directory from a copy or use a new output "
                "directory");
  for (const std::string& f : d.leftovers) fs::remove(dir / f);
  if (!d.leftovers.empty())
    log << "gac: removed " << plural(d.leftovers.size(), "file", "files")
        << " left by a killed run (temporaries, weights of draws never committed)\n";
  if (d.layout_differs) {
    write_file_atomic(dir / "layout.json", layout);
    log << "gac: layout.json was missing or altered: rewritten from the config\n";
  }
  const bool trained = ex.cfg.optimizer != "guess";  // models made by an optimizer, not draws as they are
  if (trained) retrain_missing_weights(dir, ex, d.missing_weights);
  else regenerate_missing_weights(dir, ex, d.missing_weights);
  if (!d.missing_weights.empty())
    log << "gac: regenerated " << plural(d.missing_weights.size(), "missing weights file", "missing weights files")
        << (trained ? " by re-training their draws\n" : " from their draw indices\n");
}

std::vector<TrainedModel> retrain_models(const Optimizer& trainer, const std::vector<StoredModel>& models) {
  std::vector<uint64_t> draws;  // each draw once: it may hold a model in several bins
  for (const StoredModel& s : models) draws.push_back(s.draw);
  std::sort(draws.begin(), draws.end());
  draws.erase(std::unique(draws.begin(), draws.end()), draws.end());
  std::vector<std::vector<TrainedModel>> trained(draws.size());
  parallel_for(trainer.threads(), draws.size(), 1, [&](int, uint64_t i) { trained[i] = trainer.train_one(draws[i]); });
  std::vector<TrainedModel> out;
  for (const StoredModel& s : models) {
    const auto& hits = trained[std::lower_bound(draws.begin(), draws.end(), s.draw) - draws.begin()];
    const auto hit = std::find_if(hits.begin(), hits.end(), [&](const TrainedModel& h) { return h.bin == s.bin; });
    out.push_back(hit != hits.end() ? *hit : TrainedModel{s.draw, -1, 0.0f, 0, {}});
  }
  return out;
}

}  // namespace gac
