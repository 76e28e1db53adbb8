// `gac info [CONFIG]`: build, backends, devices; with a config, its data and model.
#include <cstdio>
#include <iostream>
#include <memory>

#include "gac/backend.h"
#include "gac/error.h"
#include "gac/experiment.h"
#include "gac/text.h"
#include "host/cli/commands.h"

namespace gac::cli {

namespace {

void print_model(const Model& m) {
  char kflop[32];
  std::snprintf(kflop, sizeof kflop, "%.1f", m.flops_per_example / 1e3);
  std::cout << "model: " << m.arch_name << ", " << grouped(m.spec.n_params) << " parameters, "
            << grouped(static_cast<int64_t>(m.flops_per_example)) << " FLOP per example (" << kflop << " kFLOP)\n";
  for (const auto& t : m.tensors) {
    std::cout << "  " << t.name << " [";
    for (size_t i = 0; i < t.shape.size(); ++i) std::cout << (i ? ", " : "") << t.shape[i];
    std::cout << "] offset " << t.offset << "\n";
  }
}

std::string standardization(const Experiment& ex) {
  if (!ex.data.standardize) return "none";
  return ex.cfg.data.statistics == "all"
             ? "per channel, with the mean and std of the whole training split (all classes)"
             : "per channel, with the mean and std of the training split's examples of each training set's classes";
}

int info(const ConfigArgs& a) {
  std::cout << "gac " << GAC_VERSION << "\n";
  std::cout << "compiler: " << __VERSION__ << "\n";
  std::string why_none = "this gac was built without CUDA";
#if defined(GAC_HAVE_CUDA)
  std::cout << "cuda: built for architectures " << GAC_CUDA_ARCHS << "\n";
  const auto devices = cuda_device_descriptions(&why_none);
  if (devices.empty()) std::cout << "cuda devices: none\n";
  for (const auto& d : devices) std::cout << "cuda device: " << d << "\n";
#else
  std::cout << "cuda: not built\n";
#endif
  std::string note;
  const auto backend = make_backend(a.backend.empty() ? "auto" : a.backend, a.threads < 0 ? 0 : a.threads, &note,
                                    a.devices.empty() ? "all" : a.devices);
  std::cout << "backend (auto): " << backend->description() << "\n";
  // Other commands stay quiet when a machine simply has no GPU; info says why.
  if (note.empty() && backend->name() == "cpu" && (a.backend.empty() || a.backend == "auto"))
    note = "no usable CUDA device (" + why_none + "); using the CPU backend";
  if (!note.empty()) std::cout << "note: " << note << "\n";
  if (a.config.empty()) return 0;

  const RunConfig cfg = resolve(a);
  std::cout << "\nconfig: " << a.config << "\n";
  Experiment ex;
  try {
    ex = prepare_experiment(cfg);
  } catch (const Error&) {
    // Without its files, the model of the image sets' usual shape is still shown.
    const int c = cfg.data.kind == "cifar10" ? 3 : 1, side = cfg.data.kind == "cifar10" ? 32 : 28;
    if (cfg.data.kind != "idx" && cfg.data.kind != "cifar10") throw;
    const int k = !cfg.data.classes.empty() ? static_cast<int>(cfg.data.classes.size())
                  : cfg.data.random_classes > 0 ? cfg.data.random_classes : 10;
    std::cout << "data: not loaded (see below); the model for " << c << "x" << side << "x" << side << " inputs and " << k
              << " classes:\n";
    print_model(build_model(cfg.model, c, side, side, k));
    throw;
  }
  const Dataset& d = ex.data;
  std::cout << "data: " << d.name << ", " << d.n_classes << " classes, input " << d.c << "x" << d.h << "x" << d.w << ", ";
  if (d.synthetic)
    std::cout << "a pool of " << grouped(static_cast<int64_t>(d.train.size()))
              << " points: each training set takes n of them and its test set the next " << grouped(cfg.data.test_size)
              << "\n";
  else
    std::cout << grouped(static_cast<int64_t>(d.train.size())) << " training / " << grouped(static_cast<int64_t>(d.test.size()))
              << " test examples\n";
  std::cout << "standardization: " << standardization(ex) << "\n";
  std::cout << "optimizer: " << optimizer_text(cfg) << (cfg.optimizer != "guess" ? ", trained on the CPU" : "") << "\n";
  print_model(ex.model);
  print_classes(std::cout, ex, "");
  return 0;
}

}  // namespace

Command add_info(CLI::App& app) {
  auto a = std::make_shared<ConfigArgs>();
  auto* cmd = app.add_subcommand("info", "build, backends, devices; with a config: its model and data");
  add_config_options(cmd, *a, false);
  return [a] { return info(*a); };
}

}  // namespace gac::cli
