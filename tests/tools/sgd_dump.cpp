// gac_sgd_dump OUT_DIR: writes what tests/sgd_torch.py compares with PyTorch.
// For each case (an MLP on kink-shaped points, the same with momentum, and a
// LeNet on random 1x28x28 images): the training set, the starting draw, every
// epoch's minibatch order, and gac's results: the first minibatch gradient,
// the parameters after one SGD step and after the whole run (no bin is ever
// reached, so the run goes through every epoch), and the final check.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gac/config.h"
#include "gac/npy.h"
#include "gac/sgd.h"
#include "kernels/sgd_step.h"

using namespace gac;
namespace fs = std::filesystem;

namespace {

struct Case {
  std::string name;
  ModelConfig model;
  int c, h, w;
  SgdConfig sgd;
};

Examples make_examples(const Case& k, int n) {
  SplitMix64 rng(7);
  Examples ex;
  for (int i = 0; i < n; ++i) {
    ex.y.push_back(i % 2);
    if (k.model.arch == Arch::mlp) {  // kink-shaped: y = -|x|, label 0 shifted up by 0.25
      const float x = static_cast<float>(rng.uniform() * 2 - 1);
      ex.x.push_back(x);
      ex.x.push_back(-std::fabs(x) + (i % 2 == 0 ? 0.25f : 0.0f));
    } else {
      for (int j = 0; j < k.c * k.h * k.w; ++j) ex.x.push_back(static_cast<float>(rng.uniform() * 2 - 1));
    }
  }
  return ex;
}

void dump(const Case& k, const fs::path& out) {
  const int n = 16;
  const uint64_t draw = 3;
  const Model model = build_model(k.model, k.c, k.h, k.w, 2);
  const ModelSpec& m = model.spec;
  const Examples ex = make_examples(k, n);
  const PriorSpec prior = make_prior_spec(k.model.arch == Arch::mlp ? PriorConfig{PriorKind::kaiming} : PriorConfig{},
                                          model);
  const StreamKey key = make_stream_key(1, n, 0, 0);
  const int epochs = k.sgd.epochs, batch = effective_batch_size(k.sgd, n);
  std::vector<int32_t> order(static_cast<size_t>(epochs) * n);
  for (int e = 0; e < epochs; ++e) minibatch_order(key, e, n, order.data() + static_cast<size_t>(e) * n);
  const float edges[2] = {-2.0f, -1.0f};  // never reached: the run goes through every epoch
  const SgdProblem p{m, prior, key, LossKind::normalized, ex.x.data(), ex.y.data(), n, edges, 2, order.data(),
                     epochs, batch, static_cast<float>(k.sgd.lr), static_cast<float>(k.sgd.momentum)};

  std::vector<float> params(m.n_params), grad(m.n_params), velocity(m.n_params), acts(total_activations(m)),
      d0(m.max_activation), d1(m.max_activation), logits(n * m.n_classes);
  const SgdScratch s{params.data(), grad.data(), velocity.data(), acts.data(), d0.data(), d1.data(), logits.data()};
  generate_params(prior, key, draw, m.n_params, params.data());
  const std::vector<float> init = params;
  minibatch_gradient(p, order.data(), batch, s);
  const std::vector<float> grad1 = grad;
  sgd_update(m.n_params, p.lr, p.momentum, true, grad.data(), velocity.data(), params.data());
  const std::vector<float> step1 = params;
  const int steps = sgd_trajectory(p, draw, s, [](int, float, int, const float*) {});
  const DrawResult check = evaluate_draw(m, params.data(), ex.x.data(), ex.y.data(), n, LossKind::normalized, false,
                                         d0.data(), d1.data(), logits.data());

  const auto f32 = [&](const std::string& file, const std::vector<float>& v, std::vector<int64_t> shape) {
    write_file_atomic(out / (k.name + "_" + file + ".npy"), npy_bytes_f32(v.data(), shape));
  };
  f32("x", ex.x, {n, k.c, k.h, k.w});
  write_file_atomic(out / (k.name + "_y.npy"), npy_bytes_i32(ex.y.data(), {n}));
  write_file_atomic(out / (k.name + "_order.npy"), npy_bytes_i32(order.data(), {epochs, n}));
  f32("init", init, {m.n_params});
  f32("grad1", grad1, {m.n_params});
  f32("step1", step1, {m.n_params});
  f32("final", params, {m.n_params});
  nlohmann::json meta = nlohmann::json::parse(layout_json(model));
  meta["lr"] = k.sgd.lr;
  meta["momentum"] = k.sgd.momentum;
  meta["batch"] = batch;
  meta["epochs"] = epochs;
  meta["steps"] = steps;
  meta["final_loss"] = check.loss;
  meta["final_correct"] = check.correct;
  meta["norm_divisor"] = m.norm_divisor;
  std::ofstream(out / (k.name + "_meta.json")) << meta.dump(2) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gac_sgd_dump OUT_DIR\n");
    return 2;
  }
  ModelConfig mlp;
  mlp.arch = Arch::mlp;
  mlp.hidden = 10;
  ModelConfig lenet;
  lenet.arch = Arch::lenet;
  lenet.width = 0.5;
  const Case cases[] = {
      {"mlp", mlp, 1, 1, 2, SgdConfig{0.1, 0.0, 3, 20}},          // Figure 2's lr and batch
      {"mlp_momentum", mlp, 1, 1, 2, SgdConfig{0.05, 0.9, 3, 20}},
      {"lenet", lenet, 1, 28, 28, SgdConfig{0.001, 0.0, 2, 30}},  // Table 2's settings
  };
  for (const Case& k : cases) dump(k, argv[1]);
  return 0;
}
