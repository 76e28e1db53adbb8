// `gac bench --search` (host/bench/search_bench.h) on a tiny MNIST-shaped IDX set.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "gac/error.h"
#include "host/bench/search_bench.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace gac;

namespace {

void write_be32(std::ofstream& f, uint32_t v) {
  const unsigned char b[4] = {static_cast<unsigned char>(v >> 24), static_cast<unsigned char>(v >> 16),
                              static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
  f.write(reinterpret_cast<const char*>(b), 4);
}

// IDX files of `count` random 28x28 images labelled i mod 10.
void write_idx(const fs::path& dir, const std::string& stem, uint32_t count, std::mt19937& rng) {
  std::ofstream images(dir / (stem + "-images-idx3-ubyte"), std::ios::binary);
  write_be32(images, 0x803);
  write_be32(images, count);
  write_be32(images, 28);
  write_be32(images, 28);
  for (uint32_t i = 0; i < count * 28 * 28; ++i) images.put(static_cast<char>(rng() & 0xff));
  std::ofstream labels(dir / (stem + "-labels-idx1-ubyte"), std::ios::binary);
  write_be32(labels, 0x801);
  write_be32(labels, count);
  for (uint32_t i = 0; i < count; ++i) labels.put(static_cast<char>(i % 10));
}

class SearchBenchTest : public test::TempDirTest {
 protected:
  // `o` with pattern search at n = 20 on a tiny random IDX set, 2 threads: its JSON document.
  nlohmann::json bench_pattern(SearchBenchOptions o) {
    std::mt19937 rng(3);
    write_idx(dir_, "train", 60, rng);
    write_idx(dir_, "t10k", 20, rng);
    o.kinds = {"pattern"};
    o.ns = {20};
    o.threads = 2;
    o.data = dir_.string();
    o.json = true;
    std::ostringstream out, log;
    EXPECT_EQ(run_search_bench(o, out, log), 0);
    return nlohmann::json::parse(out.str());
  }
};

}  // namespace

TEST_F(SearchBenchTest, CountsBatchesCandidatesAndStepsOfEachSearch) {
  SearchBenchOptions o;
  o.seconds = 0.3;
  const nlohmann::json j = bench_pattern(o);
  ASSERT_EQ(j["searches"].size(), 2u);  // incremental, then full
  EXPECT_EQ(j["searches"][0]["evaluation"], "incremental");
  EXPECT_EQ(j["searches"][1]["evaluation"], "full");
  for (const auto& r : j["searches"]) {
    EXPECT_EQ(r["slots"], 10000 / 20);
    const uint64_t batches = r["batches"], candidates = r["candidates"], steps = r["steps"];
    EXPECT_GE(batches, 1u);
    EXPECT_LE(steps, batches);  // at most one improvement per batch
    EXPECT_LE(candidates, batches * (10000 / 20 - 1));
    EXPECT_GT(candidates, (batches - 1) * (10000 / 20 - 1));  // only a sweep's last batch is partial
    EXPECT_GT(r["seconds"].get<double>(), 0.0);
  }
}

TEST_F(SearchBenchTest, StopsEachSearchAfterItsSteps) {
  SearchBenchOptions o;
  o.steps = 2;
  o.seconds = 1e-6;  // ignored with steps
  const nlohmann::json j = bench_pattern(o);
  EXPECT_EQ(j["steps_limit"], 2);
  ASSERT_EQ(j["searches"].size(), 2u);
  for (const auto& r : j["searches"]) {
    // 20 random images cannot be fitted in 2 moves: each search makes exactly its 2 steps.
    EXPECT_EQ(r["steps"], 2u);
    EXPECT_FALSE(r["finished"].get<bool>());
    EXPECT_GE(r["batches"].get<uint64_t>(), 2u);
  }
  // Both evaluations search alike (the same bits): the same batches to the same steps.
  EXPECT_EQ(j["searches"][0]["batches"], j["searches"][1]["batches"]);
  EXPECT_EQ(j["searches"][0]["candidates"], j["searches"][1]["candidates"]);
}

TEST(SearchBench, RefusesStepsBelowOne) {
  SearchBenchOptions o;
  o.kinds = {"pattern"};
  o.steps = -1;
  std::ostringstream out, log;
  EXPECT_ERROR_MENTIONS(run_search_bench(o, out, log), "--steps must be positive, got -1");
}

#ifdef GAC_BINARY
TEST(SearchBench, TheCommandLineRefusesStepsWithSecondsOrWithoutSearch) {
  test::expect_clear_error(test::run_gac({"bench", "--search", "pattern", "--steps", "2", "--seconds", "1"}),
                           "--seconds excludes --steps");
  test::expect_clear_error(test::run_gac({"bench", "--steps", "2"}), "--steps applies to --search only");
}
#endif

TEST(SearchBench, AnUnknownSearchIsNamed) {
  SearchBenchOptions o;
  o.kinds = {"annealing"};
  std::ostringstream out, log;
  EXPECT_ERROR_MENTIONS(run_search_bench(o, out, log), "--search takes pattern or greedy, got 'annealing'");
}
