// Nested sampling end to end through the gac binary: a run with heads > 1
// fills, verifies bit for bit, resumes after SIGKILL to the same bytes,
// splits and merges to the unsplit run; K = 1 is the plain run.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <random>
#include <map>
#include <set>
#include <sstream>

#include "gac/backend.h"
#include "emulated_device.h"
#include "gac/experiment.h"
#include "gac/run.h"
#include "gac/store.h"
#include "host/backends/multi_backend.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace gac;
using gac::test::expect_clear_error;
using gac::test::expect_killed_and_resumed_equals;
using gac::test::fingerprint;
using gac::test::Result;
using gac::test::run_gac;
using gac::test::slurp;

namespace {

class NestedRunTest : public gac::test::RunDirTest {
 protected:
  fs::path nested_config() { return kink_config_with("[sampler]\nheads = 64\n"); }

  fs::path kink_config_with(const std::string& extra) {
    const fs::path plain = kink_config();
    return write_config("nested.toml", extra + slurp(plain));
  }
};

// Each stream's same_body, in stream order.
std::string same_body_of(const fs::path& run) {
  std::ostringstream s;
  for (const StreamState& st : Store::open_existing(run)->states()) {
    for (uint64_t v : st.same_body) s << v << " ";
    s << "| ";
  }
  return s.str();
}

}  // namespace

TEST_F(NestedRunTest, RunFillsVerifiesAndDoesNotDependOnThreadsOrBatch) {
  const fs::path cfg = nested_config();
  const Result r = run_gac({"run", cfg.string(), "-o", (dir_ / "a").string(), "-q"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("80/80"), std::string::npos) << r.out;
  EXPECT_NE(slurp(dir_ / "a" / "config.toml").find("heads = 64"), std::string::npos);
  const auto store = Store::open_existing(dir_ / "a");
  std::set<uint64_t> bodies;
  for (const StoredModel& m : store->models()) bodies.insert(m.draw / 64);
  EXPECT_LT(bodies.size(), store->models().size()) << "no two stored pairs share a body: K = 64 nests nothing";
  const Result v = run_gac({"verify", (dir_ / "a").string()});
  EXPECT_EQ(v.status, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("all match"), std::string::npos) << v.out;
  ASSERT_EQ(run_gac({"run", cfg.string(), "-o", (dir_ / "b").string(), "-q", "--threads", "1", "--set",
                     "exec.batch=777"})
                .status,
            0);
  EXPECT_EQ(fingerprint(dir_ / "a"), fingerprint(dir_ / "b"));
  // Another K is another run.
  const Result other = run_gac({"run", cfg.string(), "-o", (dir_ / "a").string(), "-q", "--set", "sampler.heads=8"});
  EXPECT_EQ(other.status, 2);
  EXPECT_NE(other.err.find("heads"), std::string::npos) << other.err;
}

TEST_F(NestedRunTest, OneHeadIsThePlainRun) {
  ASSERT_EQ(run_gac({"run", kink_config().string(), "-o", (dir_ / "plain").string(), "-q"}).status, 0);
  ASSERT_EQ(run_gac({"run", kink_config_with("[sampler]\nheads = 1\n").string(), "-o", (dir_ / "one").string(), "-q"})
                .status,
            0);
  EXPECT_EQ(fingerprint(dir_ / "plain"), fingerprint(dir_ / "one"));
  EXPECT_EQ(slurp(dir_ / "plain" / "config.toml"), slurp(dir_ / "one" / "config.toml"));
}

TEST_F(NestedRunTest, SigkillThenResumeEqualsAnUninterruptedRun) {
  const fs::path cfg = nested_config();
  auto args = [&](const std::string& out) {
    return std::vector<std::string>{"run", cfg.string(), "-o", (dir_ / out).string(), "-q", "--threads", "1",
                                    "--set", "exec.batch=512", "--set", "run.target=100"};
  };
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(run_gac(args("whole")).status, 0);
  const double whole_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  expect_killed_and_resumed_equals(dir_ / "whole", args("killed"), dir_ / "killed", whole_s, 4);
  EXPECT_EQ(same_body_of(dir_ / "whole"), same_body_of(dir_ / "killed"));
}

TEST_F(NestedRunTest, TasksMergedEqualTheUnsplitRun) {
  const fs::path cfg = nested_config();
  ASSERT_EQ(run_gac({"run", cfg.string(), "-o", (dir_ / "whole").string(), "-q"}).status, 0);
  for (int t = 0; t < 3; ++t) {
    const Result r = run_gac({"run", cfg.string(), "--shard", std::to_string(t) + "/3", "-o",
                              (dir_ / "split" / "shards" / std::to_string(t)).string(), "-q"});
    ASSERT_EQ(r.status, 0) << r.err;
  }
  const Result merged = run_gac({"merge", (dir_ / "split").string()});
  ASSERT_EQ(merged.status, 0) << merged.err;
  EXPECT_EQ(fingerprint(dir_ / "split"), fingerprint(dir_ / "whole"));
  EXPECT_EQ(same_body_of(dir_ / "split"), same_body_of(dir_ / "whole"));
  EXPECT_EQ(run_gac({"verify", (dir_ / "split").string()}).status, 0);
}

TEST_F(NestedRunTest, BadHeadsAreOneClearError) {
  expect_clear_error(run_gac({"run", nested_config().string(), "-o", (dir_ / "a").string(), "--set", "prior.kind=sphere"}),
                     "sampler.heads");
  expect_clear_error(run_gac({"run", nested_config().string(), "-o", (dir_ / "a").string(), "--set", "sampler.heads=0"}),
                     "sampler.heads");
  expect_clear_error(run_gac({"run", nested_config().string(), "-o", (dir_ / "a").string(), "--set", "sampler.hedas=2"}),
                     "sampler.hedas");
  EXPECT_FALSE(fs::exists(dir_ / "a" / "ledger.sqlite"));
}

// same_body counts, per bin, the pairs of hits within one body: recounted
// here from every pair each stream checked. The report shows the design
// effect and the effective draws it gives.
TEST_F(NestedRunTest, SameBodyCountsEveryPairOfHitsOfOneBody) {
  const fs::path cfg = nested_config();
  ASSERT_EQ(run_gac({"run", cfg.string(), "-o", (dir_ / "a").string(), "-q", "--set", "exec.batch=300"}).status, 0);
  const Experiment ex = prepare_experiment(load_config(cfg));
  const auto backend = make_cpu_backend(2);
  uint64_t total = 0;
  for (const StreamState& st : Store::open_existing(dir_ / "a")->states()) {
    backend->begin_stream(stream_task(ex, st.n, st.repeat, st.shard));
    std::vector<Hit> hits;
    backend->evaluate(0, st.draws, hits);
    std::map<std::pair<uint64_t, int>, uint64_t> per_body;
    for (const Hit& h : hits)
      if (h.bin >= 0) ++per_body[{h.draw / 64, h.bin}];
    std::vector<uint64_t> want(st.hits.size(), 0);
    for (const auto& [key, h] : per_body) want[key.second] += h * (h - 1) / 2;
    EXPECT_EQ(st.same_body, want) << "n " << st.n << " repeat " << st.repeat;
    for (uint64_t v : want) total += v;
  }
  EXPECT_GT(total, 0u) << "no body with two hits: the test checks nothing";
  const Result json = run_gac({"report", (dir_ / "a").string(), "--json"});
  EXPECT_NE(json.out.find("\"design_effect\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"effective_draws\""), std::string::npos);
  const std::string table = run_gac({"report", (dir_ / "a").string()}).out;
  EXPECT_NE(table.find("deff"), std::string::npos);
  EXPECT_NE(table.find("draws / deff"), std::string::npos) << "the footnote must say how the rate interval is made\n" << table;
}

// The device path (host/backends/device_nested.cpp) on emulated devices:
// a nested run stores what the CPU's run stores, ledger and same_body
// included, on one device and on two that split every range between them.
TEST_F(NestedRunTest, EmulatedDevicesStoreWhatTheCpuStores) {
  const RunConfig cfg = load_config(kink_config_with("[sampler]\nheads = 64\n[exec]\nbatch = 3001\n"));
  std::ostringstream log;
  auto run_on = [&](const std::string& out, std::shared_ptr<Backend> backend) {
    return run_experiment(cfg, RunOptions{dir_ / out, false, std::move(backend)}, log);
  };
  ASSERT_TRUE(run_on("cpu", make_cpu_backend(2)).complete);
  ASSERT_TRUE(run_on("emulated", make_emulated_backend("emulated")).complete);
  std::vector<BackendFactory> two;
  two.push_back([] { return make_emulated_backend("emulated"); });
  two.push_back([] { return make_emulated_backend("emulated_tight"); });
  ASSERT_TRUE(run_on("two", make_multi_backend(std::move(two), {1, 2})).complete);
  const std::string want = fingerprint(dir_ / "cpu");
  EXPECT_NE(want.find("model "), std::string::npos);
  for (const char* out : {"emulated", "two"}) {
    EXPECT_EQ(fingerprint(dir_ / out), want) << out;
    EXPECT_EQ(same_body_of(dir_ / out), same_body_of(dir_ / "cpu")) << out;
  }
}
