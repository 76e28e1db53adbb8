// `gac plot`: a non-empty PNG and SVG from a fixture run, the width figure
// from runs differing in model.hidden, the script found in the build tree and
// in an installed layout, and one clear error line for a missing matplotlib,
// a missing script and bad arguments.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gac/config.h"
#include "gac/error.h"
#include "gac/run.h"
#include "gac/store.h"
#include "host/report/boundary.h"
#include "tests/test_util.h"

using namespace gac;
namespace fs = std::filesystem;
using gac::test::slurp;

namespace {

struct Result {
  int status = -1;
  std::string err;
};

class PlotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gac_plot_test_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A small kink run (an MLP of `hidden` units, or a linear model when 0): seconds on a CPU.
  fs::path fixture_run(const std::string& name, int hidden = 4, int target = 2) {
    RunConfig cfg;
    cfg.data.kind = "kink";
    cfg.data.test_size = 200;
    cfg.model.arch = hidden ? Arch::mlp : Arch::linear;
    cfg.model.hidden = hidden ? hidden : cfg.model.hidden;
    cfg.ns = {2, 4};
    cfg.repeats = 3;
    cfg.bins = {0.6, 0.65, 0.69};
    cfg.target = target;
    cfg.backend = "cpu";
    RunOptions opts;
    opts.dir = dir_ / name;
    opts.progress = false;
    std::ostringstream log;
    EXPECT_TRUE(run_experiment(cfg, opts, log).complete);
    return opts.dir;
  }

  // A linear model on 3 inputs (csv data): not 2-D.
  fs::path three_input_run() {
    std::ofstream(dir_ / "train.csv") << "1,2,3,0\n3,5,1,1\n5,1,0,0\n7,2,2,1\n2,2,2,0\n";
    std::ofstream(dir_ / "test.csv") << "0,0,1,1\n1,1,1,0\n";
    RunConfig cfg;
    cfg.data.kind = "csv";
    cfg.data.train_file = (dir_ / "train.csv").string();
    cfg.data.test_file = (dir_ / "test.csv").string();
    cfg.model.arch = Arch::linear;
    cfg.ns = {2};
    cfg.repeats = 1;
    cfg.bins = {0.0, 0.7};
    cfg.target = 1;
    cfg.max_draws = 100000;
    cfg.backend = "cpu";
    RunOptions opts;
    opts.dir = dir_ / "three";
    opts.progress = false;
    std::ostringstream log;
    run_experiment(cfg, opts, log);
    return opts.dir;
  }

  // `env gac args`, through the shell.
  Result gac(const std::string& args, const std::string& env = "", const std::string& binary = GAC_BINARY) {
    const fs::path err = dir_ / "stderr";
    const int status = std::system((env + " " + binary + " " + args + " > /dev/null 2> " + err.string()).c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(err)};
  }

  // Plots, or skips the test when this machine's python3 has no matplotlib.
  bool plotted(const std::string& args) {
    const Result r = gac("plot " + args);
    if (r.status == 2 && r.err.find("python3-matplotlib") != std::string::npos) return false;
    EXPECT_EQ(r.status, 0) << r.err;
    return true;
  }

  fs::path dir_;
};

#define PLOT_OR_SKIP(args)                                                                                      \
  if (!plotted(args))                                                                                           \
  GTEST_SKIP() << "matplotlib is not installed for python3 (Debian python3-matplotlib; scripts/install-deps " \
                  "installs it)"

bool is_png(const fs::path& file) {
  const std::string bytes = slurp(file);
  return bytes.size() > 10000 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0;
}

}  // namespace

TEST_F(PlotTest, PngAndSvgFromAFixtureRun) {
  const fs::path run = fixture_run("gac");
  PLOT_OR_SKIP(run.string() + " -o " + (dir_ / "accuracy.png").string());
  EXPECT_TRUE(is_png(dir_ / "accuracy.png"));
  PLOT_OR_SKIP(run.string() + " " + run.string() + " --figure rate -o " + (dir_ / "rate.png").string());
  EXPECT_TRUE(is_png(dir_ / "rate.png"));
  PLOT_OR_SKIP(run.string() + " -o " + (dir_ / "accuracy.svg").string());
  EXPECT_NE(slurp(dir_ / "accuracy.svg").find("<svg"), std::string::npos);
}

TEST_F(PlotTest, WidthFigureFromRunsDifferingInHidden) {
  const fs::path narrow = fixture_run("h2", 2), wide = fixture_run("h6", 6);
  PLOT_OR_SKIP(narrow.string() + " " + wide.string() + " --figure width -o " + (dir_ / "width.png").string());
  EXPECT_TRUE(is_png(dir_ / "width.png"));
  const fs::path linear = fixture_run("linear", 0);
  const Result r = gac("plot " + narrow.string() + " " + linear.string() + " --figure width -o " + (dir_ / "w.png").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("gac: error: --figure width needs MLP runs that differ in model.hidden or LeNet runs that "
                       "differ in model.width; linear has neither"),
            std::string::npos) << r.err;
}

// Runs with the same seed share their training sets: paired. Another
// width's runs too (the same data); only two runs make a difference.
TEST_F(PlotTest, DifferenceFigureOfTwoRunsOfTheSameCells) {
  const fs::path a = fixture_run("a", 4, 2), b = fixture_run("b", 6, 3);
  PLOT_OR_SKIP(a.string() + " " + b.string() + " --figure difference -o " + (dir_ / "difference.png").string());
  EXPECT_TRUE(is_png(dir_ / "difference.png"));
  const Result r = gac("plot " + a.string() + " --figure difference -o " + (dir_ / "d.png").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("plot --figure difference: give exactly two runs, A and B (it plots A - B), not 1"),
            std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "d.png"));
}

// The boundary figure: one panel per 2-D run (an MLP and a linear model);
// the map spans the stored training set and samples at most max_models.
TEST_F(PlotTest, BoundaryFigureOfTwoDimensionalRuns) {
  const fs::path a = fixture_run("a", 4), b = fixture_run("b", 0);
  PLOT_OR_SKIP(a.string() + " " + b.string() + " --figure boundary -o " + (dir_ / "boundary.png").string());
  EXPECT_TRUE(is_png(dir_ / "boundary.png"));
  const auto store = Store::open_existing(a);
  const DecisionMap map = decision_map(*store, 2, 0, 50, 401);
  EXPECT_EQ(map.models, std::min(50, map.models_available));
  ASSERT_EQ(map.train_x.size(), 4u);  // n = 2 points of 2 inputs
  for (size_t i = 0; i < map.train_y.size(); ++i) {
    EXPECT_LT(map.x_lo, map.train_x[2 * i]);
    EXPECT_GT(map.y_hi, map.train_x[2 * i + 1]);
  }

  // Not 2-D: a clear error, no image.
  const fs::path three = three_input_run();
  const Result r = gac("plot " + three.string() + " --figure boundary -o " + (dir_ / "x.png").string());
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("plot --figure boundary needs runs on 2-D inputs with two classes (kink, slab); " +
                       three.string() + "'s model reads 3 inputs into 2 classes"),
            std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "x.png"));
  EXPECT_THROW(decision_map(*store, 2, 7), Error);  // no such repeat: no model
  const Result probes = gac("report " + three.string() + " --probes slab");
  EXPECT_NE(probes.err.find("report --probes: " + three.string() + "'s model reads 3 inputs into 2 classes; the slab "
                            "probes need 2 and 2"),
            std::string::npos) << probes.err;
  EXPECT_NE(probes.status, 0);
}

// The data figure (the paper's Figure 1): each run's first stream, its stored
// training set over its test set; a run not on 2-D inputs is one clear error.
TEST_F(PlotTest, DataFigureShowsTheStoredPointsOfTwoDimensionalRuns) {
  const fs::path a = fixture_run("a", 4);
  const auto store = Store::open_existing(a);
  const StreamPoints p = stream_points(*store, 2, 0);
  EXPECT_EQ(p.train_x.size(), 4u);  // n = 2 points of 2 inputs
  EXPECT_EQ(p.test_x.size(), 400u);  // test_size = 200
  EXPECT_EQ(p.train_y.size(), 2u);
  EXPECT_EQ(p.train_x, decision_map(*store, 2, 0, 1, 2).train_x);
  EXPECT_THROW(stream_points(*store, 2, 9), Error);  // no such repeat stored
  PLOT_OR_SKIP(a.string() + " --figure data -o " + (dir_ / "data.png").string());
  EXPECT_TRUE(is_png(dir_ / "data.png"));

  const fs::path three = three_input_run();
  const Result r = gac("plot " + three.string() + " --figure data -o " + (dir_ / "x.png").string());
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("plot --figure data needs runs on 2-D inputs (kink, slab); " + three.string() +
                       "'s model reads 3 inputs"),
            std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "x.png"));
}

TEST_F(PlotTest, MissingMatplotlibIsOneClearLine) {
  const fs::path run = fixture_run("gac");
  fs::create_directories(dir_ / "fake" / "matplotlib");
  std::ofstream(dir_ / "fake" / "matplotlib" / "__init__.py") << "raise ImportError('no matplotlib here')\n";
  const Result r = gac("plot " + run.string() + " -o " + (dir_ / "x.png").string(), "PYTHONPATH=" + (dir_ / "fake").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.rfind("gac: error: gac plot needs matplotlib for ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("install Debian's python3-matplotlib"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "x.png"));
}

TEST_F(PlotTest, FindsTheScriptInAnInstalledLayout) {
  const fs::path run = fixture_run("gac");
  const fs::path prefix = dir_ / "prefix";
  fs::create_directories(prefix / "bin");
  fs::create_directories(prefix / "share" / "gac");
  fs::copy_file(GAC_BINARY, prefix / "bin" / "gac");
  fs::copy_file(fs::path(GAC_BINARY).parent_path() / "gac_plot.py", prefix / "share" / "gac" / "gac_plot.py");
  const std::string args = "plot " + run.string() + " -o " + (dir_ / "installed.png").string();
  Result r = gac(args, "", (prefix / "bin" / "gac").string());
  if (r.status == 2 && r.err.find("python3-matplotlib") != std::string::npos) GTEST_SKIP() << "matplotlib is not installed";
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(is_png(dir_ / "installed.png"));

  fs::remove_all(prefix / "share");
  r = gac(args, "", (prefix / "bin" / "gac").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("gac: error: plot: gac_plot.py is missing: looked for " + (prefix / "bin" / "gac_plot.py").string() +
                       " and " + (prefix / "share" / "gac" / "gac_plot.py").string()),
            std::string::npos) << r.err;
}

TEST_F(PlotTest, BadArgumentsAreOneClearError) {
  const fs::path run = fixture_run("gac");
  Result r = gac("plot " + run.string() + " -o " + (dir_ / "x.jpg").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("gac: error: plot: -o " + (dir_ / "x.jpg").string() + ": the file must end in .png or .svg"),
            std::string::npos) << r.err;
  r = gac("plot " + (dir_ / "nowhere").string() + " -o " + (dir_ / "x.png").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("is not a gac run directory"), std::string::npos) << r.err;
  r = gac("plot " + run.string() + " -o " + (dir_ / "no" / "such" / "dir" / "x.png").string());
  EXPECT_EQ(r.status, 2);
  if (r.err.find("python3-matplotlib") == std::string::npos) {
    EXPECT_NE(r.err.find("gac: error: cannot write " + (dir_ / "no" / "such" / "dir" / "x.png").string()),
              std::string::npos) << r.err;
  }
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(PlotTest, AStoredConfigTomlCannotReadSafelyIsOneClearError) {
  // A hand-edited config.toml goes through the config parser's guard (toml++
  // 3.3 reaches undefined behaviour on a non-ASCII character after a backslash
  // in a """string""").
  const fs::path run = fixture_run("gac");
  std::ofstream(run / "config.toml", std::ios::app) << "[note]\ntext = \"\"\"a \\ \xce\x9a\"\"\"\n";
  const Result r = gac("plot " + run.string() + " -o " + (dir_ / "x.png").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("config.toml:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("a non-ASCII character after a backslash"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}
