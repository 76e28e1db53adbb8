#include "gac/verify.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <ostream>

#include "gac/backend.h"
#include "gac/dir_lock.h"
#include "gac/error.h"
#include "gac/experiment.h"
#include "gac/npy.h"
#include "gac/optimizer.h"
#include "gac/store.h"
#include "gac/text.h"
#include "host/util/parallel_for.h"
#include "kernels/forward.h"

namespace gac {
namespace {

// Every structural problem of the directory, one line each.
std::vector<std::string> structural_problems(const Store& store, const Experiment& ex, std::ostream& out) {
  DirectoryDamage damage = inspect_run_directory(store, layout_json(ex.model));
  const std::string writer = DirLock::holder(store.dir());
  if (!writer.empty()) {
    // Files of draws it has not committed yet are no damage.
    out << "note: " << store.dir().string() << " is being written (" << writer
        << "); its uncommitted files are not checked\n";
    damage.leftovers.clear();
  }
  std::vector<std::string> problems = damage.lines();
  const std::string data = data_files_difference(store.meta().data_files, fingerprint_data_files(ex.cfg.data));
  if (!store.meta().data_files.empty() && !data.empty()) problems.push_back(data);
  return problems;
}

std::string stream_name(const StoredModel& s) {
  return "stream n=" + std::to_string(s.n) + " repeat " + std::to_string(s.repeat) + " shard " + std::to_string(s.shard);
}

// The task of the stream of model `s`, its examples rebuilt from the classes
// the ledger records; a mismatch with the config's draw or with the test
// rows saved under DIR/data/ is reported and counted in `bad`.
StreamTask recorded_stream_task(const Store& store, const Experiment& ex, const StoredModel& s, std::ostream& out, int& bad) {
  const std::vector<int> drawn = training_set_classes(ex.data, data_seed(ex.cfg.seed, s.n, s.repeat));
  const std::optional<StreamState> state = store.load_state(s.n, s.repeat, s.shard);
  const std::vector<int> recorded = state ? state->classes : drawn;
  if (!state || recorded != drawn) {
    ++bad;
    out << "MISMATCH " << stream_name(s) << ": the ledger records classes ["
        << (state ? classes_text(recorded) : "no stream row") << "] but the config draws [" << classes_text(drawn) << "]\n";
  }
  StreamTask task = stream_task(ex, s.n, s.repeat, s.shard, recorded);
  const std::filesystem::path rows_file = store.dir() / "data" / (stream_data_stem(s.n, s.repeat) + "test_rows.npy");
  if (std::filesystem::exists(rows_file)) {
    const NpyArray saved = read_npy(rows_file);
    if (!std::equal(saved.data.begin(), saved.data.end(), task.source.test_rows.begin(), task.source.test_rows.end())) {
      ++bad;
      out << "MISMATCH " << stream_name(s) << ": " << one_line(rows_file.string()) << " differs from the test rows of classes ["
          << classes_text(recorded) << "]\n";
    }
  }
  return task;
}

}  // namespace

bool verify_run(const std::filesystem::path& dir, int limit, std::ostream& out) {
  const auto store = Store::open_existing(dir);
  const Experiment ex = prepare_experiment(parse_config(store->config_toml(), (dir / "config.toml").string()));
  const std::vector<std::string> problems = structural_problems(*store, ex, out);
  for (const std::string& p : problems) out << "PROBLEM " << one_line(p) << "\n";  // file names may hold anything

  const ModelSpec& m = ex.model.spec;
  // Trained models are re-trained (each draw once, on every core of the CPU, whatever
  // backend trained them: the same bits); guess-and-check ones regenerated.
  RunConfig on_cpu = ex.cfg;
  on_cpu.backend = "cpu";
  const std::unique_ptr<Optimizer> trainer = make_optimizer(on_cpu, available_cpus());
  auto backend = make_cpu_backend(0);
  std::vector<float> params(m.n_params), buf0(m.max_activation), buf1(m.max_activation);
  int checked = 0, bad = 0;
  auto fail = [&](const StoredModel& s, const std::string& what) {
    ++bad;
    out << "MISMATCH " << one_line(s.file) << " (n=" << s.n << " repeat " << s.repeat << " draw " << s.draw << " bin " << s.bin << "): " << what << "\n";
  };
  std::vector<StoredModel> models = store->models();  // ordered by stream, then draw
  if (limit > 0 && models.size() > static_cast<size_t>(limit)) models.resize(limit);
  for (size_t first = 0; first < models.size();) {
    // One stream at a time: its data is drawn once and its test scores come in one batch.
    size_t end = first;
    while (end < models.size() && models[end].n == models[first].n && models[end].repeat == models[first].repeat &&
           models[end].shard == models[first].shard)
      ++end;
    const StreamTask task = recorded_stream_task(*store, ex, models[first], out, bad);
    const std::vector<StoredModel> stream(models.begin() + first, models.begin() + end);
    // Guess and check: each model is its draw. Trained: its draw re-trained alone.
    std::vector<TrainedModel> retrained;
    std::vector<TestScore> scores;
    if (trainer) {
      trainer->begin_stream(task);
      retrained = retrain_models(*trainer, stream);
      scores = trainer->score_test(retrained);
    } else {
      backend->begin_stream(task);
      std::vector<uint64_t> draws;
      for (const StoredModel& s : stream) draws.push_back(s.draw);
      scores = backend->score_test(draws);
    }
    const int n = static_cast<int>(task.train.size());
    std::vector<float> logits(static_cast<size_t>(n) * m.n_classes);
    for (size_t i = first; i < end; ++i, ++checked) {
      const StoredModel& s = models[i];
      if (trainer && retrained[i - first].bin < 0) {
        fail(s, "re-training its draw gives no model in bin " + std::to_string(s.bin));
        continue;
      }
      if (trainer) params = retrained[i - first].params;
      else generate_params(task.prior, task.key, s.draw, m.n_params, params.data());
      std::error_code ec;
      if (std::filesystem::exists(dir / s.file, ec)) {  // a missing file is listed above
        try {
          const NpyArray stored = read_npy(dir / s.file);
          size_t differing = stored.data.size() == params.size() ? 0 : params.size();
          for (size_t j = 0; !differing && j < params.size(); ++j)
            differing += static_cast<float>(stored.data[j]) != params[j];
          if (differing) fail(s, trainer ? "the weights file differs from the re-trained draw" : "the weights file differs from the regenerated draw");
        } catch (const Error& e) {
          fail(s, e.what());
        }
      }

      const DrawResult r = evaluate_draw(m, params.data(), task.train.x.data(), task.train.y.data(), n, task.loss, false,
                                         buf0.data(), buf1.data(), logits.data());
      if (r.correct != n) fail(s, "training accuracy " + std::to_string(r.correct) + "/" + std::to_string(n) + ", not 1");
      if (r.loss != static_cast<float>(s.train_loss))
        fail(s, "training loss " + shortest(r.loss) + " vs stored " + shortest(s.train_loss));
      if (find_bin(task.bin_edges.data(), static_cast<int>(task.bin_edges.size()), r.loss) != s.bin)
        fail(s, "loss " + shortest(r.loss) + " is not in stored bin " + std::to_string(s.bin));
      const TestScore& t = scores[i - first];
      if (t.accuracy != s.test_acc || std::fabs(t.loss - s.test_loss) > 1e-6 * std::max(1.0, std::fabs(s.test_loss)))
        fail(s, "test accuracy/loss " + shortest(t.accuracy) + "/" + shortest(t.loss) + " vs stored " +
                    shortest(s.test_acc) + "/" + shortest(s.test_loss));
    }
    first = end;
  }
  out << "verified " << checked << " models in " << dir.string() << ": ";
  if (bad == 0 && problems.empty()) out << "all match\n";
  else out << bad << " mismatches, " << problems.size() << " problems\n";
  return bad == 0 && problems.empty();
}

}  // namespace gac
