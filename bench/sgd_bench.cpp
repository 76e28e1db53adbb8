// gac_sgd_bench: how fast the SGD baseline trains, in model-steps per second
// (one SGD step of one model, with the full-training-set check before it),
// for the batched trainer (SgdTrainer::train) with each of its SIMD kernels
// this CPU runs, and the one-model reference (SgdTrainer::train_one), on the
// same task. Measures; asserts nothing.
//
//   build/gac_sgd_bench [--seconds S] [--threads T] [--scenario kink-mlp|lenet-28]...
//                       [--kernel avx512|avx2|generic]...   (default: every one this CPU runs)
//
// Scenarios (the paper's SGD settings, n = 16):
//   kink-mlp  MLP 2->10->2 on kink, lr 0.1, batch 3, 200 epochs (Figure 2), bins 0.55..0.69
//   lenet-28  LeNet w0.5 on Fashion-MNIST 0/1 (synthetic images when not installed),
//             lr 0.001, batch 2, 30 epochs (Table 2), bins 0.30..0.65
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "gac/config.h"
#include "gac/error.h"
#include "gac/experiment.h"
#include "gac/sgd.h"

using namespace gac;

namespace {

struct Scenario {
  std::string name, toml;
  SgdConfig sgd;
};

std::vector<Scenario> scenarios() {
  const std::string run = "[prior]\nkind = \"uniform\"\nradius = 1.0\n[run]\nseed = 0\nn = [16]\nloss = \"normalized\"\n";
  const std::string fashion = "/usr/share/datasets/fashion-mnist";
  const bool have_fashion = std::filesystem::exists(fashion + "/train-images-idx3-ubyte.gz") ||
                            std::filesystem::exists(fashion + "/train-images-idx3-ubyte");
  std::vector<Scenario> list;
  list.push_back({"kink-mlp",
                  "[data]\nkind = \"kink\"\n[model]\narch = \"mlp\"\nhidden = 10\nlayers = 1\n" + run +
                      "bins = [0.55, 0.6, 0.65, 0.69]\n",
                  SgdConfig{0.1, 0.0, 3, 200}});
  if (have_fashion)
    list.push_back({"lenet-28",
                    "[data]\nkind = \"idx\"\npath = '" + fashion + "'\nclasses = [0, 1]\n[model]\narch = \"lenet\"\nwidth = 0.5\n" + run +
                        "bins = [0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65]\n",
                    SgdConfig{0.001, 0.0, 2, 30}});
  else
    std::fprintf(stderr, "gac_sgd_bench: %s not installed: lenet-28 skipped\n", fashion.c_str());
  return list;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

struct Rate {
  uint64_t draws = 0, steps = 0, hits = 0;
  double seconds = 0;
};

// Batched: calls of `chunk` draws until `seconds` have passed.
Rate measure_batched(SgdTrainer& trainer, uint64_t chunk, double seconds) {
  Rate r;
  std::vector<SgdHit> hits;
  trainer.train(0, 1, hits);  // warm-up (the slowest kernels take minutes for a LeNet chunk)
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t first = 1; r.seconds < seconds; first += chunk) {
    hits.clear();
    const SgdCounts c = trainer.train(first, chunk, hits);
    r.draws += c.draws;
    r.steps += c.steps;
    r.hits += hits.size();
    r.seconds = seconds_since(start);
  }
  return r;
}

// The reference: one draw at a time on one thread, draws 0, 1, ... until
// `seconds` have passed; its steps are those the batched trainer counts for
// the same draws.
Rate measure_reference(SgdTrainer& trainer, double seconds) {
  Rate r;
  const auto start = std::chrono::steady_clock::now();
  while (r.seconds < seconds) {
    r.hits += trainer.train_one(r.draws++).size();
    r.seconds = seconds_since(start);
  }
  std::vector<SgdHit> hits;
  r.steps = trainer.train(0, r.draws, hits).steps;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5;
  int threads = 0;
  std::vector<std::string> only, kernels;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) seconds = std::atof(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--scenario" && i + 1 < argc) only.push_back(argv[++i]);
    else if (a == "--kernel" && i + 1 < argc) kernels.push_back(argv[++i]);
    else {
      std::fprintf(stderr, "usage: gac_sgd_bench [--seconds S] [--threads T] [--scenario NAME]... [--kernel NAME]...\n");
      return 2;
    }
  }
  if (kernels.empty()) kernels = sgd_kernels();
  try {
    std::printf("%-9s %3s %-22s %8s %12s %14s %10s\n", "scenario", "n", "path", "threads", "models/s",
                "model-steps/s", "steps/model");
    for (const Scenario& s : scenarios()) {
      if (!only.empty() && std::find(only.begin(), only.end(), s.name) == only.end()) continue;
      const Experiment ex = prepare_experiment(parse_config(s.toml, "sgd-bench:" + s.name, {}));
      const StreamTask task = stream_task(ex, 16, 0);
      for (const std::string& kernel : kernels) {
        SgdTrainer trainer(threads, kernel);
        trainer.begin_stream(task, s.sgd);
        // LeNet: 16 draws per thread, whole vectors whatever the kernel's lanes.
        const uint64_t chunk = s.name == "kink-mlp" ? 4096 : 16 * static_cast<uint64_t>(trainer.threads());
        const Rate b = measure_batched(trainer, chunk, seconds);
        const std::string path = std::string("batched ") + trainer.kernel();
        std::printf("%-9s %3d %-22s %8d %12.1f %14.0f %10.1f\n", s.name.c_str(), 16, path.c_str(), trainer.threads(),
                    b.draws / b.seconds, b.steps / b.seconds, static_cast<double>(b.steps) / b.draws);
        std::fflush(stdout);
      }
      SgdTrainer trainer(threads);
      trainer.begin_stream(task, s.sgd);
      const Rate r = measure_reference(trainer, seconds / 2);
      std::printf("%-9s %3d %-22s %8d %12.1f %14.0f %10.1f\n", s.name.c_str(), 16, "reference (one model)", 1,
                  r.draws / r.seconds, r.steps / r.seconds, static_cast<double>(r.steps) / r.draws);
      std::fflush(stdout);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "gac: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
