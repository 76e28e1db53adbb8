#include "gac/verify.h"

#include <cmath>
#include <cstring>
#include <map>
#include <ostream>

#include "gac/backend.h"
#include "gac/npy.h"
#include "gac/run.h"
#include "gac/store.h"

namespace gac {

bool verify_run(const std::filesystem::path& dir, int limit, std::ostream& out) {
  const auto store = Store::open_existing(dir);
  const Experiment ex = prepare_experiment(parse_config(store->config_toml(), (dir / "config.toml").string()));
  const ModelSpec& m = ex.model.spec;
  auto backend = make_cpu_backend(0);
  std::map<std::tuple<int, int, int>, StreamTask> tasks;
  std::vector<float> params(m.n_params), buf0(m.max_activation), buf1(m.max_activation);
  int checked = 0, bad = 0;
  auto fail = [&](const StoredModel& s, const std::string& what) {
    ++bad;
    out << "MISMATCH " << s.file << " (n=" << s.n << " repeat " << s.repeat << " draw " << s.draw << "): " << what << "\n";
  };
  for (const StoredModel& s : store->models()) {
    if (limit > 0 && checked >= limit) break;
    ++checked;
    auto key = std::make_tuple(s.n, s.repeat, s.shard);
    if (!tasks.count(key)) {
      Experiment shard_ex = ex;
      shard_ex.cfg.shard = s.shard;
      tasks.emplace(key, stream_task(shard_ex, s.n, s.repeat));
    }
    const StreamTask& task = tasks.at(key);
    generate_params(task.prior, task.key, s.draw, m.n_params, params.data());

    const NpyArray stored = read_npy(dir / s.file);
    if (stored.data.size() != params.size()) {
      fail(s, "weights file holds " + std::to_string(stored.data.size()) + " values, expected " + std::to_string(params.size()));
      continue;
    }
    size_t differing = 0;
    for (size_t i = 0; i < params.size(); ++i) differing += static_cast<float>(stored.data[i]) != params[i];
    if (differing) fail(s, std::to_string(differing) + " weights differ from the regenerated draw");

    const int n = static_cast<int>(task.train.size());
    std::vector<float> logits(static_cast<size_t>(n) * m.n_classes);
    const DrawResult r = evaluate_draw(m, params.data(), task.train.x.data(), task.train.y.data(), n, task.loss, false,
                                       buf0.data(), buf1.data(), logits.data());
    if (r.correct != n) fail(s, "training accuracy " + std::to_string(r.correct) + "/" + std::to_string(n) + ", not 1");
    if (r.loss != static_cast<float>(s.train_loss))
      fail(s, "training loss " + std::to_string(r.loss) + " vs stored " + std::to_string(s.train_loss));
    if (find_bin(task.bin_edges.data(), static_cast<int>(task.bin_edges.size()), r.loss) != s.bin)
      fail(s, "loss " + std::to_string(r.loss) + " is not in stored bin " + std::to_string(s.bin));

    backend->begin_stream(task);
    const TestScore t = backend->score_test({s.draw})[0];
    if (t.accuracy != s.test_acc || std::fabs(t.loss - s.test_loss) > 1e-6 * std::max(1.0, std::fabs(s.test_loss)))
      fail(s, "test accuracy/loss " + std::to_string(t.accuracy) + "/" + std::to_string(t.loss) + " vs stored " +
                  std::to_string(s.test_acc) + "/" + std::to_string(s.test_loss));
  }
  out << "verified " << checked << " models in " << dir.string() << ": " << (bad ? std::to_string(bad) + " mismatches" : "all match")
      << "\n";
  return bad == 0;
}

}  // namespace gac
