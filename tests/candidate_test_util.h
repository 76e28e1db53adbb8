// What the candidate-evaluator tests share (test_candidates.cpp,
// test_candidates_greedy.cpp): a task of random examples and a random point.
#pragma once

#include <random>
#include <vector>

#include "gac/backend.h"
#include "gac/model.h"

namespace gac::test {

// A task of n random examples (inputs U(0, 1), random labels) for `model`.
inline StreamTask random_task(const ModelConfig& model, int in_c, int in_h, int in_w, int classes, int n, LossKind loss,
                              uint32_t seed) {
  StreamTask task;
  task.model = build_model(model, in_c, in_h, in_w, classes).spec;
  task.loss = loss;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  task.train.x.resize(static_cast<size_t>(n) * task.model.in_size());
  for (float& v : task.train.x) v = u(rng);
  for (int e = 0; e < n; ++e) task.train.y.push_back(static_cast<int32_t>(rng() % classes));
  return task;
}

// Parameters U(-0.5, 0.5) for model `m`.
inline std::vector<float> random_point(const ModelSpec& m, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  std::vector<float> p(m.n_params);
  for (float& v : p) v = u(rng);
  return p;
}

}  // namespace gac::test
