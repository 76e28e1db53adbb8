// The run directory: resolved config, SQLite ledger, accepted weights.
//
//   DIR/config.toml      resolved config (what defines the run)
//   DIR/layout.json      state_dict names, shapes and offsets of the flat vector
//   DIR/ledger.sqlite    tables meta, streams (progress) and models
//   DIR/weights/*.npy    one float32 vector per accepted model
//
// Crash safety: weights are written atomically before the transaction that
// records them and the stream's new progress; a kill at any instant leaves
// the last committed state, and an .npy without a row is simply rewritten
// by the resumed run (same draw, same bytes).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace gac {

struct RunMeta {
  std::vector<double> bin_edges;  // increasing; bin j is (edges[j], edges[j+1]]
  int target = 0;                 // models wanted per (n, repeat, bin)
  std::vector<int> ns;            // training-set sizes
  int repeats = 1;
  int n_params = 0;
};

struct StoredModel {
  int n = 0, repeat = 0, shard = 0;
  uint64_t draw = 0;  // index in the stream of (seed, n, repeat, shard)
  int bin = 0;
  double train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0;
  std::string file;   // weights file, relative to the run directory
};

// Progress of the parameter stream of one (n, repeat, shard).
struct StreamState {
  int n = 0, repeat = 0, shard = 0;
  uint64_t draws = 0;            // draws [0, draws) have been checked
  uint64_t perfect = 0;          // draws with training accuracy 1
  std::vector<uint64_t> hits;    // per bin: perfect draws with loss in the bin
  std::vector<int> stored;       // per bin: models stored (at most target)
  std::string status = "running";  // running | filled | budget | time
  double seconds = 0;            // wall time spent evaluating this stream
  std::vector<int> classes;      // original labels of the training set's classes, in class-index order
};

class Store {
 public:
  // Creates DIR (with config.toml, layout.json, ledger.sqlite, weights/) or
  // opens an existing run. Throws gac::Error when DIR cannot be written, is
  // not a gac run, or holds a run whose config.toml differs from
  // `config_toml` (the message shows the first differing line).
  Store(const std::filesystem::path& dir, const std::string& config_toml, const std::string& layout_json,
        const RunMeta& meta);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Opens an existing run read-only (report, verify). Throws gac::Error if DIR is not a run.
  static std::unique_ptr<Store> open_existing(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const;
  const RunMeta& meta() const;
  std::string config_toml() const;  // contents of DIR/config.toml

  std::optional<StreamState> load_state(int n, int repeat, int shard) const;

  // Writes each model's weights (weights[i] has meta.n_params floats) to
  // weights/n{n}_r{repeat}_s{shard}_d{draw}.npy, then records the models and
  // `state` in one transaction. Fills in StoredModel::file.
  void commit(const StreamState& state, std::vector<StoredModel>& models,
              const std::vector<std::vector<float>>& weights);

  std::vector<StoredModel> models() const;  // ordered by n, repeat, shard, draw
  std::vector<StreamState> states() const;  // ordered by n, repeat, shard

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Store();
};

}  // namespace gac
