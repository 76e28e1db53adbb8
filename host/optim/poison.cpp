#include "host/optim/poison.h"

#include <string>

#include "gac/error.h"
#include "kernels/forward.h"

namespace gac {
namespace {

void check_labels(const Examples& set, const char* which, int n_classes) {
  for (int32_t y : set.y)
    if (y < 0 || y >= n_classes)
      throw Error(std::string("sgd poison: ") + which + " label " + std::to_string(y) + " outside 0.." +
                  std::to_string(n_classes - 1));
}

}  // namespace

Examples poisoned_set(const Examples& train, const Examples& test, int repeats, int n_classes) {
  if (repeats < 1) throw Error("sgd poison: repeats must be at least 1, got " + std::to_string(repeats));
  if (n_classes < 2) throw Error("sgd poison: flipping labels needs at least two classes");
  check_labels(train, "training", n_classes);
  check_labels(test, "test", n_classes);
  const size_t width = train.size() ? train.x.size() / train.size() : test.size() ? test.x.size() / test.size() : 0;
  if (train.x.size() != train.size() * width || test.x.size() != test.size() * width)
    throw Error("sgd poison: training and test examples differ in size");
  Examples out;
  out.x.reserve(train.x.size() * repeats + test.x.size());
  out.y.reserve(train.size() * repeats + test.size());
  for (size_t e = 0; e < train.size(); ++e)
    for (int r = 0; r < repeats; ++r) {
      out.x.insert(out.x.end(), train.x.begin() + e * width, train.x.begin() + (e + 1) * width);
      out.y.push_back(train.y[e]);
    }
  out.x.insert(out.x.end(), test.x.begin(), test.x.end());
  for (int32_t y : test.y) out.y.push_back((y + 1) % n_classes);
  return out;
}

void bin_on_training_set(const StreamTask& task, std::vector<SgdHit>& hits, size_t first) {
  const ModelSpec& m = task.model;
  const int n = static_cast<int>(task.train.size());
  std::vector<float> buf0(m.max_activation), buf1(m.max_activation), logits(static_cast<size_t>(n) * m.n_classes);
  size_t kept = first;
  for (size_t i = first; i < hits.size(); ++i) {
    SgdHit& h = hits[i];
    const DrawResult r = evaluate_draw(m, h.params.data(), task.train.x.data(), task.train.y.data(), n, task.loss, false,
                                       buf0.data(), buf1.data(), logits.data());
    h.loss = r.loss;
    h.bin = find_bin(task.bin_edges.data(), static_cast<int>(task.bin_edges.size()), r.loss);
    if (r.correct != n || h.bin < 0) continue;
    if (kept != i) hits[kept] = std::move(h);
    ++kept;
  }
  hits.resize(kept);
}

}  // namespace gac
