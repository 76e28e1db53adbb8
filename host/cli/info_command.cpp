// `gac info [CONFIG]`: build, backends, devices; with a config, its data and model.
#include <iostream>
#include <memory>

#include "gac/backend.h"
#include "gac/run.h"
#include "host/cli/commands.h"

namespace gac::cli {

namespace {

std::string standardization(const Experiment& ex) {
  if (!ex.data.standardize) return "none";
  return ex.cfg.data.statistics == "all"
             ? "per channel, with the mean and std of the whole training split (all classes)"
             : "per channel, with the mean and std of the training split's examples of each training set's classes";
}

int info(const ConfigArgs& a) {
  std::cout << "gac " << GAC_VERSION << "\n";
  std::cout << "compiler: " << __VERSION__ << "\n";
#if defined(GAC_HAVE_CUDA)
  std::cout << "cuda: built for architectures " << GAC_CUDA_ARCHS << "\n";
  const auto devices = cuda_device_descriptions();
  if (devices.empty()) std::cout << "cuda devices: none\n";
  for (const auto& d : devices) std::cout << "cuda device: " << d << "\n";
#else
  std::cout << "cuda: not built\n";
#endif
  std::string note;
  const auto backend = make_backend(a.backend.empty() ? "auto" : a.backend, a.threads < 0 ? 0 : a.threads, &note);
  std::cout << "backend (auto): " << backend->description() << "\n";
  if (!note.empty()) std::cout << "note: " << note << "\n";
  if (a.config.empty()) return 0;

  const Experiment ex = prepare_experiment(resolve(a));
  const Model& m = ex.model;
  std::cout << "\nconfig: " << a.config << "\n"
            << "data: " << ex.data.name << ", " << ex.data.n_classes << " classes, input " << ex.data.c << "x" << ex.data.h
            << "x" << ex.data.w << ", " << ex.data.train.size() << " training / " << ex.data.test.size() << " test examples\n"
            << "standardization: " << standardization(ex) << "\n"
            << "model: " << m.arch_name << ", " << m.spec.n_params << " parameters, " << m.flops_per_example
            << " FLOP per example (" << m.flops_per_example / 1e3 << " kFLOP)\n";
  for (const auto& t : m.tensors) {
    std::cout << "  " << t.name << " [";
    for (size_t i = 0; i < t.shape.size(); ++i) std::cout << (i ? ", " : "") << t.shape[i];
    std::cout << "] offset " << t.offset << "\n";
  }
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
