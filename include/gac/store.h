// The run directory: resolved config, SQLite ledger, accepted weights.
//
//   DIR/writer.lock      the lock of the one process writing (see gac/dir_lock.h)
//   DIR/config.toml      resolved config (what defines the run)
//   DIR/layout.json      state_dict names, shapes and offsets of the flat vector
//   DIR/ledger.sqlite    tables meta, streams (progress), models and search_checkpoints
//   DIR/weights/*.npy    one float32 vector per accepted model
//
// Crash safety: weights are written atomically and synced before the
// transaction that records them and the stream's new progress; a kill at any
// instant leaves the last committed state, and an .npy without a row is
// simply rewritten by the resumed run (same draw, same bytes). The ledger
// uses a rollback journal (not WAL), so it also works on NFS and Lustre.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "gac/checkpoint.h"
#include "gac/data_files.h"

namespace gac {

struct RunMeta {
  std::vector<double> bin_edges;  // increasing; bin j is (edges[j], edges[j+1]]
  int target = 0;                 // models wanted per (n, repeat, bin)
  std::vector<int> ns;            // training-set sizes
  int repeats = 1;
  int n_params = 0;
  // Fingerprints of the data files the run reads (meta key "data_files"):
  // a resume whose data changed is refused.
  std::vector<DataFile> data_files;
  int shards = 1;                 // tasks the run is split into (include/gac/shards.h)
  int shard = -1;                 // the task this directory holds; -1: every task (one run, or merged)
  // "guess": one model per draw; "sgd": up to one per draw and bin (see weights_file).
  std::string optimizer = "guess";
  int heads = 1;                  // sampler.heads: pairs per body (docs/nested.md); 1: plain draws
};

struct StoredModel {
  int n = 0, repeat = 0, shard = 0;
  uint64_t draw = 0;  // index in the stream of (seed, n, repeat, shard)
  int bin = 0;
  double train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0;
  std::string file;   // weights file, relative to the run directory
  // Searches only (optimizer pattern or greedy; -1 and NaN otherwise, NULL in the ledger):
  int64_t search_steps = -1;  // improvements
  int64_t search_calls = -1;  // calls made
  double search_radius = NAN; // the final radius
};

// The weights file of model `m`, relative to the run directory:
// weights/n{n}_r{repeat}_s{shard}_d{draw}.npy, and for optimizer "sgd", whose
// draws give up to one model per bin, weights/n{n}_r{repeat}_s{shard}_d{draw}_b{bin}.npy.
std::string weights_file(const StoredModel& m, const std::string& optimizer);

// Progress of the parameter stream of one (n, repeat, shard).
struct StreamState {
  int n = 0, repeat = 0, shard = 0;
  uint64_t draws = 0;            // draws [0, draws) have been checked
  uint64_t perfect = 0;          // draws with training accuracy 1 (SGD: draws trained into a bin)
  std::vector<uint64_t> hits;    // per bin: perfect draws with loss in the bin (SGD: draws with a model in it)
  // Per bin, nested sampling (docs/nested.md): pairs of hits within one body,
  // sum over bodies b of h_b (h_b - 1) / 2, so that sum of h_b^2 = hits + 2
  // same_body (the report's design effect). Empty: none (plain draws; older runs).
  std::vector<uint64_t> same_body;
  std::vector<int> stored;       // per bin: models stored (at most target)
  // running | filled | budget (out of draws) | time (stopped by the time
  // limit) | interrupted (stopped by a signal); a killed run leaves running.
  std::string status = "running";
  double seconds = 0;            // wall time spent evaluating this stream
  std::vector<int> classes;      // original labels of the training set's classes, in class-index order
  uint64_t failed = 0;           // draws whose optimization gave no model of training accuracy 1 (searches)
};

// The process that committed last to a run directory, and when.
struct WriterInfo {
  std::string host;
  int pid = 0;
  double time = 0;  // seconds since the Unix epoch
};

// Whether an existing run whose DIR/config.toml holds `stored` may go on with
// this store's config: "" if so, else the reason (see extension_problem).
using ConfigCheck = std::function<std::string(const std::string& stored)>;

class Store {
 public:
  // Creates DIR (with config.toml, layout.json, ledger.sqlite, weights/) or
  // opens an existing run, as the one writer of DIR: the DirLock is taken
  // before any file of a new run is created and held while the Store lives.
  // Throws gac::Error when another process writes DIR (naming it), when DIR
  // cannot be written, is not a gac run, holds a run of another config, or
  // whose recorded data files differ from meta.data_files. `check` decides
  // what counts as another config (without one, config.toml must equal
  // `config_toml`; the message shows the first differing line). A run that
  // `check` accepts with a new target, repeats or sizes n in `meta` is
  // extended: config.toml and the metadata are updated.
  Store(const std::filesystem::path& dir, const std::string& config_toml, const std::string& layout_json,
        const RunMeta& meta, const ConfigCheck& check = nullptr);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Opens an existing run read-only (report, verify), without the lock.
  // Throws gac::Error if DIR is not a run.
  static std::unique_ptr<Store> open_existing(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const;
  const RunMeta& meta() const;
  std::string config_toml() const;  // contents of DIR/config.toml

  std::optional<StreamState> load_state(int n, int repeat, int shard) const;

  // Writes each model's weights (weights[i] has meta.n_params floats) to its
  // weights_file, then records the models and `state` in one transaction,
  // which also deletes the stream's checkpoints of draws before state.draws
  // (their searches are done). Fills in StoredModel::file.
  void commit(const StreamState& state, std::vector<StoredModel>& models,
              const std::vector<std::vector<float>>& weights);

  // The checkpoint of draw `draw`'s search in stream (n, repeat, shard), if any.
  std::optional<SearchCheckpoint> load_checkpoint(int n, int repeat, int shard, uint64_t draw) const;
  // Saves `c` (of meta.n_params floats) durably in one transaction, replacing the draw's earlier one.
  void save_checkpoint(int n, int repeat, int shard, const SearchCheckpoint& c);
  // Draws with a checkpoint, per stream (n, repeat, shard), ordered.
  std::vector<std::tuple<int, int, int, uint64_t>> checkpointed_draws() const;

  std::vector<StoredModel> models() const;  // ordered by n, repeat, shard, draw, bin
  std::vector<StreamState> states() const;  // ordered by n, repeat, shard
  std::optional<WriterInfo> last_writer() const;  // none before the first commit

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Store();
  void check_data_files(const std::vector<DataFile>& now);
};

}  // namespace gac
