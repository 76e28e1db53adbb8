// The shipped configs: each parses, says in its header whether it has the
// paper's sizes or is trimmed, and the paper-sized ones have the paper's
// sizes (its configs/ and scripts/: Table 2, Table 3, Table 6, Figure 2).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gac/config.h"

using namespace gac;
namespace fs = std::filesystem;

namespace {

const fs::path kConfigs = fs::path(GAC_SOURCE_DIR) / "configs";

std::string header(const fs::path& file) {
  std::ifstream in(file);
  std::string text, line;
  while (std::getline(in, line) && line.rfind('#', 0) == 0) text += line + "\n";
  return text;
}

}  // namespace

TEST(Configs, EveryConfigParsesAndSaysItsSize) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator(kConfigs)) {
    if (entry.path().extension() != ".toml") continue;
    ++count;
    SCOPED_TRACE(entry.path().string());
    EXPECT_NO_THROW(load_config(entry.path()));
    const std::string name = entry.path().stem().string(), text = header(entry.path());
    const bool trimmed = text.find("TRIMMED") != std::string::npos, paper = text.find("PAPER'S SIZE") != std::string::npos;
    if (name.find("_trimmed") != std::string::npos) {
      EXPECT_TRUE(trimmed) << text;
    }
    if (name.rfind("table", 0) == 0 || name.rfind("figure2", 0) == 0) {
      EXPECT_TRUE(trimmed != paper) << text;
    }
  }
  EXPECT_GE(count, 8);
}

TEST(Configs, PaperSizes) {
  for (const char* name : {"table2_mnist.toml", "table2_fashion.toml"}) {
    const RunConfig c = load_config(kConfigs / name);
    EXPECT_EQ(c.ns, (std::vector<int>{2, 4, 8, 16, 32})) << name;
    EXPECT_EQ(c.repeats, 20) << name;  // 20 data seeds x 10 models per cell
    EXPECT_EQ(c.target, 10) << name;
    EXPECT_EQ(c.bins, (std::vector<double>{0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65})) << name;
    EXPECT_EQ(c.data.random_classes, 2) << name;
    EXPECT_EQ(c.data.class_draw, "per_training_set") << name;
    EXPECT_EQ(c.data.statistics, "all") << name;
  }
  const RunConfig t3 = load_config(kConfigs / "table3_cifar10.toml");
  EXPECT_EQ(t3.ns, (std::vector<int>{2, 4, 8, 16, 24}));
  EXPECT_EQ(t3.bins, (std::vector<double>{0.55, 0.57, 0.59, 0.61, 0.63, 0.65, 0.67}));
  EXPECT_EQ(t3.repeats, 100);  // 100 data seeds x 1 model
  EXPECT_EQ(t3.target, 1);
  const RunConfig t6 = load_config(kConfigs / "table6_mnist.toml");  // its scripts/table6.sh
  EXPECT_EQ(t6.ns, (std::vector<int>{16}));
  EXPECT_EQ(t6.repeats, 20);
  EXPECT_EQ(t6.target, 10);
  EXPECT_EQ(t6.bins, load_config(kConfigs / "table2_mnist.toml").bins);
  const RunConfig f2 = load_config(kConfigs / "figure2_kink.toml");
  EXPECT_EQ(f2.ns, (std::vector<int>{11}));  // the paper's 16 samples, 70/30
  EXPECT_EQ(f2.data.test_size, 4);
  EXPECT_EQ(f2.repeats, 1);
  EXPECT_EQ(f2.target, 500000);
  EXPECT_EQ(f2.bins, (std::vector<double>{-999, 999}));
}

// The SGD configs: the paper's settings (its configs/table2/mnist_sgd.yaml,
// table3/cifar_sgd.yaml, figure2/sgd_u*.yaml) on the cells of their
// guess-and-check twins, so that `gac report --versus` pairs each with its twin.
TEST(Configs, SgdConfigsHaveThePapersSettingsOnTheirTwinsCells) {
  struct Pair {
    const char *sgd, *twin;
    double lr;
    int batch, epochs, repeats, target;
  };
  const Pair pairs[] = {
      {"table2_mnist_sgd.toml", "table2_mnist.toml", 0.001, 2, 30, 10, 20},  // 10 data seeds x 20 models
      {"table2_fashion_sgd.toml", "table2_fashion.toml", 0.001, 2, 30, 10, 20},
      {"table3_cifar10_sgd.toml", "table3_cifar10.toml", 0.0001, 2, 30, 100, 1},
      {"figure2_kink_sgd.toml", "figure2_kink.toml", 0.1, 3, 200, 1, 50000},
      {"table2_mnist_sgd_trimmed.toml", "table2_mnist_trimmed.toml", 0.001, 2, 30, 4, 2},
      {"table2_fashion_sgd_trimmed.toml", "table2_fashion_trimmed.toml", 0.001, 2, 30, 4, 2},
      {"table3_cifar10_sgd_trimmed.toml", "table3_cifar10_trimmed.toml", 0.0001, 2, 30, 10, 1},
      {"figure2_kink_sgd_trimmed.toml", "figure2_kink_trimmed.toml", 0.1, 3, 200, 5, 500},
  };
  for (const Pair& p : pairs) {
    SCOPED_TRACE(p.sgd);
    const RunConfig sgd = load_config(kConfigs / p.sgd), twin = load_config(kConfigs / p.twin);
    EXPECT_EQ(sgd.optimizer, "sgd");
    EXPECT_EQ(sgd.sgd.lr, p.lr);
    EXPECT_EQ(sgd.sgd.batch_size, p.batch);
    EXPECT_EQ(sgd.sgd.epochs, p.epochs);
    EXPECT_EQ(sgd.sgd.momentum, 0.0);
    EXPECT_EQ(sgd.repeats, p.repeats);
    EXPECT_EQ(sgd.target, p.target);
    // Everything else that defines the run is the twin's: the same cells, training sets and draws.
    RunConfig same = sgd;
    same.optimizer = "guess";
    same.repeats = twin.repeats;
    same.target = twin.target;
    EXPECT_EQ(identity_difference(twin, same), "");
    EXPECT_NE(header(kConfigs / p.sgd).find(p.twin), std::string::npos) << "the header names its twin";
  }
}

// Table 1 (SGDPoison), Table 2's linear row: the paper's settings (its
// scripts/table1.sh, configs/table2/mnist_linear.yaml), each SGD config on the
// cells and training sets of its guess-and-check twin.
TEST(Configs, PoisonAndLinearRowHaveThePapersSettingsOnTheirTwinsCells) {
  struct Pair {
    const char *sgd, *twin;
    double lr;
    int batch, epochs, poison;
    PriorKind prior;
  };
  const Pair pairs[] = {
      {"table1_mnist_poison.toml", "table1_mnist_guess.toml", 0.001, 400, 40000, 10, PriorKind::uniform},
      {"table1_mnist_poison_trimmed.toml", "table1_mnist_guess_trimmed.toml", 0.001, 400, 0, 10, PriorKind::uniform},
      {"table2_mnist_linear_sgd.toml", "table2_mnist_linear.toml", 0.1, 2, 20, 0, PriorKind::regular},
      {"table2_mnist_linear_sgd_trimmed.toml", "table2_mnist_linear_trimmed.toml", 0.1, 2, 20, 0, PriorKind::regular},
  };
  for (const Pair& p : pairs) {
    SCOPED_TRACE(p.sgd);
    const RunConfig sgd = load_config(kConfigs / p.sgd), twin = load_config(kConfigs / p.twin);
    EXPECT_EQ(sgd.optimizer, "sgd");
    EXPECT_EQ(twin.optimizer, "guess");
    EXPECT_EQ(sgd.sgd.lr, p.lr);
    EXPECT_EQ(sgd.sgd.batch_size, p.batch);
    if (p.epochs) {
      EXPECT_EQ(sgd.sgd.epochs, p.epochs);  // trimmed Table 1: fewer epochs
    }
    EXPECT_EQ(sgd.sgd.poison_repeats, p.poison);
    EXPECT_EQ(sgd.prior.kind, p.prior);
    RunConfig same = sgd;
    same.optimizer = "guess";
    same.sgd = SgdConfig{};
    same.prior = twin.prior;  // the linear row: SGD from the paper's regular init, guess and check uniform
    same.target = twin.target;
    EXPECT_EQ(identity_difference(twin, same), "");
    EXPECT_NE(header(kConfigs / p.sgd).find(p.twin), std::string::npos) << "the header names its twin";
  }
  EXPECT_EQ(load_config(kConfigs / "table1_mnist_poison.toml").bins, (std::vector<double>{-999, 999}));
  EXPECT_EQ(load_config(kConfigs / "table2_mnist_linear_sgd.toml").model.arch, Arch::linear);
  EXPECT_EQ(load_config(kConfigs / "table2_mnist_linear_sgd.toml").ns, (std::vector<int>{2, 4, 8, 16, 32}));
}

// Table 4 (the paper's configs/table4/*.yaml and scripts/table4.sh): LeNet
// width 1 on all 10 classes, 100 models per n, one bin (-999, 999].
TEST(Configs, Table4PaperSizes) {
  struct Row {
    const char* file;
    const char* optimizer;
    int64_t budget;  // model_count_times_batch_size (searches)
  };
  for (const Row& r : {Row{"table4_mnist_pattern.toml", "pattern", 10000}, Row{"table4_mnist_greedy.toml", "greedy", 200000},
                       Row{"table4_cifar10_pattern.toml", "pattern", 50000},
                       Row{"table4_cifar10_greedy.toml", "greedy", 100000}, Row{"table4_mnist_sgd.toml", "sgd", 0},
                       Row{"table4_cifar10_sgd.toml", "sgd", 0}}) {
    SCOPED_TRACE(r.file);
    const RunConfig c = load_config(kConfigs / r.file);
    EXPECT_EQ(c.optimizer, r.optimizer);
    EXPECT_EQ(c.model.arch, Arch::lenet);
    EXPECT_EQ(c.model.width, 1.0);
    EXPECT_TRUE(c.data.classes.empty() && c.data.random_classes == 0);  // classes = "all"
    EXPECT_EQ(c.ns, (std::vector<int>{100, 300, 500, 1000}));
    EXPECT_EQ(c.repeats, 100);
    EXPECT_EQ(c.target, 1);
    EXPECT_EQ(c.bins, (std::vector<double>{-999.0, 999.0}));
    if (r.budget) {
      EXPECT_EQ(c.prior.kind, PriorKind::uniform);  // model.init left at its default
      EXPECT_EQ(c.prior.radius, 1.0);
      EXPECT_EQ(c.search.budget, r.budget);
      EXPECT_EQ(c.search.max_calls, 80000);
      EXPECT_EQ(c.search.check_every, 0);
    } else {
      EXPECT_EQ(c.prior.kind, PriorKind::regular);
      EXPECT_EQ(c.sgd.lr, 0.01);
      EXPECT_EQ(c.sgd.momentum, 0.5);
      EXPECT_EQ(c.sgd.batch_size, 64);
      EXPECT_EQ(c.sgd.epochs, 400);
    }
  }
}
