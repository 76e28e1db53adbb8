// `gac report --probes slab`: the probe sets' geometry against values printed
// by the paper's datasets.py (get_linear_data(30), get_nonlinear_data(30, 4)),
// and the counts on a run whose models cannot fit one of them.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gac/error.h"
#include "gac/run.h"
#include "host/report/probes.h"

using namespace gac;
namespace fs = std::filesystem;

TEST(SlabProbes, GeometryIsThePapers) {
  const std::vector<ProbeSet> probes = slab_probes();
  ASSERT_EQ(probes.size(), 2u);
  const ProbeSet &linear = probes[0], &nonlinear = probes[1];
  ASSERT_EQ(linear.y.size(), 60u);
  ASSERT_EQ(nonlinear.y.size(), 60u);
  const auto expect_point = [](const ProbeSet& p, int i, double x0, double x1, int label) {
    EXPECT_NEAR(p.x[2 * i], x0, 1e-6) << p.name << " " << i;
    EXPECT_NEAR(p.x[2 * i + 1], x1, 1e-6) << p.name << " " << i;
    EXPECT_EQ(p.y[i], label) << p.name << " " << i;
  };
  expect_point(linear, 0, 0.1, 1.0, 0);
  expect_point(linear, 29, 0.1, -1.0, 0);
  expect_point(linear, 30, -0.1, 1.0, 1);
  expect_point(nonlinear, 0, -0.13357864, -0.825, 0);
  expect_point(nonlinear, 29, 0.41642136, 0.825, 0);
  expect_point(nonlinear, 30, -0.41642136, -0.825, 1);
  expect_point(nonlinear, 59, 0.13357864, 0.825, 1);
}

// A linear model draws one straight boundary: the zigzag probe's two classes
// are not linearly separable, so no model of a linear run fits it.
TEST(SlabProbes, ALinearRunNeverFitsTheNonlinearProbe) {
  const fs::path dir = fs::temp_directory_path() / ("gac_probes_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  RunConfig cfg;
  cfg.data.kind = "slab";
  cfg.data.test_size = 50;
  cfg.model.arch = Arch::linear;
  cfg.ns = {8};
  cfg.repeats = 20;
  cfg.bins = {-999, 999};
  cfg.target = 1;
  cfg.backend = "cpu";
  RunOptions opts;
  opts.dir = dir;
  opts.progress = false;
  std::ostringstream log;
  ASSERT_TRUE(run_experiment(cfg, opts, log).complete);
  const auto store = Store::open_existing(dir);
  const auto rows = nlohmann::json::parse(format_probe_report(*store, slab_probes(), ReportFormat::json));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["models"], 20);
  EXPECT_EQ(rows[0]["training_sets"], 20);
  EXPECT_EQ(rows[0]["nonlinear_fit"], 0);
  EXPECT_GT(rows[0]["nonlinear_ci_hi"].get<double>(), 0.1);  // Wilson: 0 of 20 is not "never"
  const std::string table = format_probe_report(*store, slab_probes(), ReportFormat::table);
  EXPECT_NE(table.find("fit nonlinear (share [95% CI])"), std::string::npos) << table;
  EXPECT_NE(table.find("each model of its own training set"), std::string::npos) << table;
  fs::remove_all(dir);
}
