// Checking a run directory: its structure when `run` opens it (cheap, with
// repairs of what can be derived), and `gac verify`, which also regenerates
// every stored model from its draw index alone.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "gac/optimizer.h"
#include "gac/store.h"

namespace gac {

struct Experiment;

// What is wrong with a run directory's files and ledger, found without
// re-scoring any model: one directory listing and the ledger's rows.
struct DirectoryDamage {
  std::vector<std::string> ledger;           // model rows disagreeing with their streams: not repairable
  std::vector<StoredModel> missing_weights;  // rows whose weights file is gone: regenerable from the draw index
  std::vector<std::string> leftovers;        // files of killed writers: *.tmp.PID, weights no row names
  std::vector<std::string> unexpected;       // anything else under weights/
  bool layout_differs = false;               // layout.json missing or not the config's
  std::vector<std::string> lines() const;    // every problem, one line each
};

// `layout_json`: the layout the run's config gives.
DirectoryDamage inspect_run_directory(const Store& store, const std::string& layout_json);

// What `run` does when it opens an existing directory, as its writer:
// refuses (gac::Error) one whose ledger is damaged, and otherwise removes
// leftovers of killed runs, rewrites layout.json and regenerates missing
// weights files bit for bit, saying so on `log`.
void repair_run_directory(const Store& store, const Experiment& ex, std::ostream& log);

// What re-training each trained model's draw alone (Optimizer::train_one) gives,
// bit for bit what a run stores: result[i] is models[i]'s parameters (its bin's),
// or has bin -1 when re-training gives no model in that bin. The models are
// of the trainer's current stream; each draw is trained once, on every thread.
std::vector<TrainedModel> retrain_models(const Optimizer& trainer, const std::vector<StoredModel>& models);

// Lists every structural problem (above, and data files that changed since
// the run began), then checks, for up to `limit` models (0 = all): weights
// file bit-identical to the regenerated draw (SGD: the draw re-trained),
// training accuracy 1 with the stored loss and bin, test accuracy and loss as
// stored. True if all is well.
bool verify_run(const std::filesystem::path& dir, int limit, std::ostream& out);

}  // namespace gac
