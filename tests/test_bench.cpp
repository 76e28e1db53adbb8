// `gac bench` produces well-formed output and rejects bad names. Speed is
// never asserted: these tests run on shared, noisy machines.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "gac/bench.h"
#include "gac/error.h"
#include "host/bench/fma_peak.h"
#include "host/bench/measure.h"

namespace {

gac::BenchOptions quick_kink() {
  gac::BenchOptions opts;
  opts.scenarios = {"kink-mlp"};
  opts.backends = {"cpu"};
  opts.seconds = 0.2;
  return opts;
}

TEST(BenchJson, KinkMlpOnCpuHasEveryField) {
  gac::BenchOptions opts = quick_kink();
  opts.json = true;
  std::ostringstream out, log;
  ASSERT_EQ(gac::run_bench(opts, out, log), 0);
  const auto doc = nlohmann::json::parse(out.str());  // throws on malformed JSON

  ASSERT_TRUE(doc.contains("machine"));
  EXPECT_TRUE(doc["machine"]["cpu_model"].is_string());
  EXPECT_GE(doc["machine"]["cores"].get<int>(), 1);
  // No ratio to PyTorch figures from elsewhere: only bench/compare, measuring both, gives one.
  EXPECT_FALSE(doc.contains("pytorch_reference"));
  EXPECT_TRUE(doc["rss_definition"].is_string());
  EXPECT_TRUE(doc["roofline_definition"].is_string());
  EXPECT_TRUE(doc["ceiling_definition"].is_string());
  // Measured before and after the throughput, the best of all calls.
  auto expect_sessions = [](const nlohmann::json& c) {
    EXPECT_GE(c["calls"].get<int>(), 2);
    const double best = c["gflops"].get<double>();
    EXPECT_GE(best, c["before_gflops"].get<double>());
    EXPECT_GE(best, c["after_gflops"].get<double>());
    EXPECT_LE(c["slowest_call_gflops"].get<double>(), best);
  };
  // The CPU's ceiling is its FMA peak, measured by gac's own kernel: always there.
  const auto& ceiling = doc["ceiling"]["cpu"];
  ASSERT_TRUE(ceiling["available"].get<bool>()) << ceiling.dump();
  EXPECT_NE(ceiling["what"].get<std::string>().find("FMA peak"), std::string::npos) << ceiling["what"];
  const double peak = ceiling["gflops"].get<double>();
  EXPECT_TRUE(std::isfinite(peak) && peak > 0) << peak;
  expect_sessions(ceiling);
  // The SGEMM beside it needs OpenBLAS.
  const auto& sgemm = doc["sgemm"]["cpu"];
  ASSERT_TRUE(sgemm["available"].is_boolean());
  if (sgemm["available"].get<bool>()) {
    expect_sessions(sgemm);
  } else {
    EXPECT_TRUE(sgemm["why_not"].is_string());
  }

  const auto& rows = doc["measurements"];
  ASSERT_EQ(rows.size(), 2u);  // early rejection on and off
  for (const auto& m : rows) {
    for (const char* key : {"scenario", "n", "backend", "early_reject", "draws_per_s", "examples_per_s", "gflops",
                            "fraction_of_ceiling", "uniforms_per_s", "roofline_draws_per_s", "fraction_of_roofline",
                            "rss_mib", "flops_per_example", "draws", "examples", "ceiling_gflops", "sgemm_gflops",
                            "fraction_of_sgemm"})
      EXPECT_TRUE(m.contains(key)) << key;
    // %ceil is of the FMA peak, %sgemm of the SGEMM: each the row's GFLOP/s over its own figure.
    const double gflops = m["gflops"].get<double>();
    EXPECT_EQ(m["ceiling_gflops"].get<double>(), peak);
    EXPECT_NEAR(m["fraction_of_ceiling"].get<double>(), gflops / peak, 1e-12 * gflops / peak);
    if (sgemm["available"].get<bool>()) {
      const double sgemm_gflops = sgemm["gflops"].get<double>();
      EXPECT_EQ(m["sgemm_gflops"].get<double>(), sgemm_gflops);
      EXPECT_NEAR(m["fraction_of_sgemm"].get<double>(), gflops / sgemm_gflops, 1e-12 * gflops / sgemm_gflops);
    } else {
      EXPECT_TRUE(m["fraction_of_sgemm"].is_null());
    }
    EXPECT_FALSE(m.contains("ratio_to_pytorch_reference"));
    EXPECT_FALSE(m.contains("peak_rss_mib"));  // one memory figure, defined in rss_definition
    EXPECT_EQ(m["scenario"], "kink-mlp");
    EXPECT_EQ(m["n"], 16);
    EXPECT_EQ(m["backend"], "cpu");
    EXPECT_GT(m["draws_per_s"].get<double>(), 0.0);
    EXPECT_GT(m["examples_per_s"].get<double>(), 0.0);
    EXPECT_GT(m["gflops"].get<double>(), 0.0);
    EXPECT_GT(m["uniforms_per_s"].get<double>(), 0.0);  // the CPU backend generates alone
    if (!m["rss_mib"].is_null()) {
      EXPECT_GT(m["rss_mib"].get<double>(), 0.0);
    }
    // Full evaluation checks all 16 examples of every draw; early rejection at most that.
    const auto draws = m["draws"].get<uint64_t>(), examples = m["examples"].get<uint64_t>();
    if (m["early_reject"].get<bool>()) {
      EXPECT_LE(examples, 16 * draws);
      // The roofline of an early row: from the generation rate and the full row beside it.
      EXPECT_GT(m["roofline_draws_per_s"].get<double>(), 0.0);
      EXPECT_NEAR(m["fraction_of_roofline"].get<double>(),
                  m["draws_per_s"].get<double>() / m["roofline_draws_per_s"].get<double>(), 1e-9);
    } else {
      EXPECT_EQ(examples, 16 * draws);
      EXPECT_TRUE(m["roofline_draws_per_s"].is_null());  // a full row is its own roofline
    }
  }
  EXPECT_NE(rows[0]["early_reject"], rows[1]["early_reject"]);
}

TEST(BenchJson, NoRooflineWithoutAFullEvaluationRow) {
  gac::BenchOptions opts = quick_kink();
  opts.early_both = false;
  opts.json = true;
  std::ostringstream out, log;
  ASSERT_EQ(gac::run_bench(opts, out, log), 0);
  const auto rows = nlohmann::json::parse(out.str())["measurements"];
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(rows[0]["roofline_draws_per_s"].is_null());
  EXPECT_TRUE(rows[0]["fraction_of_roofline"].is_null());
}

TEST(BenchTable, PrintsOneRowPerMeasurement) {
  gac::BenchOptions opts = quick_kink();
  opts.early_both = false;
  opts.ns = {8};
  std::ostringstream out, log;
  ASSERT_EQ(gac::run_bench(opts, out, log), 0);
  const std::string text = out.str();
  EXPECT_NE(text.find("draws/s"), std::string::npos);
  EXPECT_NE(text.find("kink-mlp"), std::string::npos);
  EXPECT_NE(text.find("ceiling (cpu)"), std::string::npos);
  EXPECT_NE(text.find("sgemm (cpu)"), std::string::npos);
  EXPECT_NE(text.find("%sgemm"), std::string::npos);
  EXPECT_NE(text.find("%roof"), std::string::npos);
  EXPECT_NE(text.find("RSS MiB"), std::string::npos);
  EXPECT_EQ(text.find("xPyTorch"), std::string::npos);  // no ratio to figures measured elsewhere
  EXPECT_EQ(text.find("peak MiB"), std::string::npos);
  EXPECT_EQ(text.find(" off "), std::string::npos);  // no full-evaluation row
}

// The table's %ceil is its GFLOP/s over the FMA peak its ceiling line prints,
// up to the rounding of the three printed figures.
TEST(BenchTable, PercentOfCeilingIsOfTheFmaPeakPrinted) {
  gac::BenchOptions opts = quick_kink();
  opts.early_both = false;
  std::ostringstream out, log;
  ASSERT_EQ(gac::run_bench(opts, out, log), 0);
  const std::string text = out.str();
  const std::string ceiling_line = "ceiling (cpu): FP32 FMA peak: ";
  const size_t at = text.find(ceiling_line);
  ASSERT_NE(at, std::string::npos) << text;
  const size_t figure = text.find("threads: ", at);
  ASSERT_NE(figure, std::string::npos) << text;
  const double peak = std::stod(text.substr(figure + 9));
  EXPECT_TRUE(std::isfinite(peak) && peak > 0) << text;

  std::istringstream rows(text.substr(text.find("\nkink-mlp ") + 1));
  std::string scenario, backend, early, draws, evals, ceil_percent;
  int n = 0;
  double gflops = 0;
  rows >> scenario >> n >> backend >> early >> draws >> evals >> gflops >> ceil_percent;
  ASSERT_EQ(scenario, "kink-mlp") << text;
  ASSERT_EQ(ceil_percent.back(), '%') << text;
  const double percent = std::stod(ceil_percent);
  // Printed with 1, 2 and 1 decimals: half a unit of the last digit each.
  const double slack = 0.05 + 100 * (0.005 / peak + (gflops + 0.005) * 0.05 / (peak * (peak - 0.05)));
  EXPECT_NEAR(percent, 100 * gflops / peak, slack) << text;
}

TEST(BenchJson, CpuKernelCanBeChosen) {
  gac::BenchOptions opts = quick_kink();
  opts.backends = {"cpu:scalar"};
  opts.early_both = false;
  opts.json = true;
  std::ostringstream out, log;
  ASSERT_EQ(gac::run_bench(opts, out, log), 0);
  const auto rows = nlohmann::json::parse(out.str())["measurements"];
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["backend"], "cpu:scalar");
  EXPECT_NE(rows[0]["backend_description"].get<std::string>().find("scalar"), std::string::npos);
  EXPECT_GT(rows[0]["draws_per_s"].get<double>(), 0.0);
}

TEST(BenchNested, TallyCountsPairsOfHitsWithinABody) {
  gac::HitTally t{4};
  for (uint64_t draw : {0, 1, 5, 8, 9, 10, 17, 19}) t.add(draw);  // bodies 0:2 1:1 2:3 4:2 hits
  EXPECT_EQ(t.hits, 8u);
  EXPECT_EQ(t.same_body, 1u + 0u + 3u + 1u);
  gac::HitTally plain{1};
  for (uint64_t draw : {0, 1, 2, 7}) plain.add(draw);
  EXPECT_EQ(plain.same_body, 0u);
}

TEST(BenchNested, JsonComparesEachKWithThePlainRow) {
  gac::BenchOptions opts = quick_kink();
  opts.json = true;
  opts.early_both = false;
  opts.ns = {4};
  opts.heads = {16, 64};
  std::ostringstream out, log;
  ASSERT_EQ(gac::run_bench(opts, out, log), 0);
  const auto doc = nlohmann::json::parse(out.str());
  ASSERT_EQ(doc["measurements"].size(), 1u);  // the plain row alone: nested rows are apart
  ASSERT_EQ(doc["nested"].size(), 2u);
  EXPECT_TRUE(doc["nested_definition"].is_string());
  for (size_t i = 0; i < 2; ++i) {
    const auto& row = doc["nested"][i];
    EXPECT_EQ(row["heads"].get<int>(), opts.heads[i]);
    EXPECT_EQ(row["n"].get<int>(), 4);
    EXPECT_GT(row["pairs"].get<uint64_t>(), 0u);
    // kink at n = 4 fits often: many perfect pairs, several per body, so they cluster
    ASSERT_GT(row["perfect_pairs"].get<uint64_t>(), 100u);
    EXPECT_GT(row["same_body"].get<uint64_t>(), 0u);
    EXPECT_GT(row["design_effect"].get<double>(), 1.0);
    EXPECT_NEAR(row["effective_per_s"].get<double>(),
                row["perfect_pairs"].get<double>() / row["design_effect"].get<double>() / row["seconds"].get<double>(),
                1e-6 * row["effective_per_s"].get<double>());
    EXPECT_TRUE(row["gain"].is_number());
  }
}

TEST(BenchNested, OneHeadIsRefused) {
  gac::BenchOptions opts = quick_kink();
  opts.heads = {1};
  std::ostringstream out, log;
  try {
    gac::run_bench(opts, out, log);
    FAIL() << "heads 1 accepted";
  } catch (const gac::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--heads"), std::string::npos) << e.what();
  }
}

TEST(BenchErrors, UnknownScenarioIsNamed) {
  gac::BenchOptions opts = quick_kink();
  opts.scenarios = {"kink-mlp", "no-such-scenario"};
  std::ostringstream out, log;
  try {
    gac::run_bench(opts, out, log);
    FAIL() << "expected gac::Error";
  } catch (const gac::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("no-such-scenario"), std::string::npos) << msg;
    EXPECT_NE(msg.find("lenet-28"), std::string::npos) << msg;  // lists the valid ones
  }
  EXPECT_TRUE(out.str().empty());  // nothing measured before the check
}

TEST(BenchErrors, UnknownBackendIsNamed) {
  gac::BenchOptions opts = quick_kink();
  opts.backends = {"tpu"};
  std::ostringstream out, log;
  try {
    gac::run_bench(opts, out, log);
    FAIL() << "expected gac::Error";
  } catch (const gac::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tpu"), std::string::npos) << e.what();
  }
}

// Each FMA peak kernel against a plain reference: chain c starts at c and
// takes x -> x * 0.999 + 0.001 (one rounding with FMA, two without), then the
// chains are added in order and the vector's lanes one by one. Bit for bit:
// a kernel that skipped work, or ran other chains than it counts, fails here.
float fma_chains_reference(const gac::FmaKernel& kernel, uint64_t iterations, bool fused) {
  float sum = 0;
  for (int c = 0; c < kernel.chains; ++c) {
    float x = static_cast<float>(c);
    for (uint64_t i = 0; i < iterations; ++i) x = fused ? std::fma(x, 0.999f, 0.001f) : x * 0.999f + 0.001f;
    sum = c == 0 ? x : sum + x;
  }
  float total = 0;
  for (int lane = 0; lane < kernel.vector_bits / 32; ++lane) total += sum;
  return total;
}

TEST(FmaPeak, KernelsComputeTheirChains) {
  __builtin_cpu_init();
  std::vector<std::pair<const gac::FmaKernel*, bool>> kernels = {{&gac::fma_kernel_portable(), false}};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && gac::fma_kernel_avx2())
    kernels.emplace_back(gac::fma_kernel_avx2(), true);
  if (__builtin_cpu_supports("avx512f") && gac::fma_kernel_avx512()) kernels.emplace_back(gac::fma_kernel_avx512(), true);
  EXPECT_EQ(&gac::widest_fma_kernel(), kernels.back().first);
  for (const auto& [kernel, fused] : kernels) {
    SCOPED_TRACE(kernel->name);
    for (uint64_t iterations : {0, 1, 7, 1000})
      EXPECT_EQ(kernel->run(iterations), fma_chains_reference(*kernel, iterations, fused)) << iterations;
  }
}

}  // namespace
