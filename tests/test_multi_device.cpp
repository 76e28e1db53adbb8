// Several devices behind one backend (host/backends/multi_backend.h), on
// emulated devices of different sizes and speeds: every range split over
// them gives the CPU's hits bit for bit, test scores too, a whole run stores
// what the CPU run stores, and a device failing is one clear error that
// loses nothing committed.
#include <gtest/gtest.h>

#include <cstring>
#include <sstream>

#include "emulated_device.h"
#include "gac/backend.h"
#include "gac/config.h"
#include "gac/experiment.h"
#include "gac/run.h"
#include "host/backends/multi_backend.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace gac;

namespace {

RunConfig kink_config() {
  return parse_config(R"(
[data]
kind = "kink"
test_size = 300
[model]
arch = "mlp"
hidden = 10
[run]
seed = 7
n = [4, 8]
bins = [0.0, 0.55, 0.6, 0.65, 0.69, 10.0]
)",
                      "kink.toml");
}

RunConfig slab_config() {  // a deeper MLP
  return parse_config(R"(
[data]
kind = "slab"
test_size = 40
[model]
arch = "mlp"
hidden = 6
layers = 3
[run]
seed = 11
n = [16]
bins = [0.0, 0.6, 0.68, 10.0]
)",
                      "slab.toml");
}

// Three emulated devices: the usual one, a small one whose allocations fail
// and whose launches shrink (61 draws at most), and one of 128-thread
// blocks; the first range is dealt 1 : 3 : 0.5, later ones by measured speed.
std::unique_ptr<Backend> three_devices(int fail_at_launch = -1) {
  std::vector<BackendFactory> devices;
  devices.push_back([] { return make_emulated_backend("emulated"); });
  devices.push_back([fail_at_launch] {
    EmulatorConfig c;
    c.name = "emulated small";
    c.memory = size_t{1} << 20;
    c.overstate_free_memory = true;
    c.fail_at_launch = fail_at_launch;
    DeviceBackendOptions o;
    o.name = "emulated";
    o.max_launch = 61;
    return make_device_backend(make_emulated_device(c), o);
  });
  devices.push_back([] {
    EmulatorConfig c;
    c.name = "emulated wide";
    c.block_threads = 128;
    c.sms = 1;
    DeviceBackendOptions o;
    o.name = "emulated";
    return make_device_backend(make_emulated_device(c), o);
  });
  return make_multi_backend(std::move(devices), {1, 3, 0.5});
}

}  // namespace

TEST(MultiDevice, RangesSplitOverThreeDevicesGiveTheCpusHitsBitForBit) {
  const std::unique_ptr<Backend> multi = three_devices();
  const std::unique_ptr<Backend> cpu = make_cpu_backend(1);
  EXPECT_NE(multi->description().find("3 devices"), std::string::npos) << multi->description();
  for (const RunConfig& cfg : {kink_config(), slab_config()}) {
    const Experiment ex = prepare_experiment(cfg);
    for (int n : cfg.ns) {
      const StreamTask task = stream_task(ex, n, 0);
      cpu->begin_stream(task);
      multi->begin_stream(task);
      std::vector<Hit> want, got;
      cpu->evaluate(0, 40000, want);
      uint64_t examples = 0;
      // Odd sizes: one draw, fewer draws than devices, ranges the devices split unevenly.
      for (uint64_t first = 0, step = 1; first < 40000; first += step, step = step * 5 + 2) {
        const uint64_t count = std::min<uint64_t>(step, 40000 - first);
        const EvalCounts c = multi->evaluate(first, count, got);
        EXPECT_EQ(c.draws, count);
        examples += c.examples;
      }
      test::expect_same_hits(want, got, "n=" + std::to_string(n));
      EXPECT_GT(examples, 0u);
      EXPECT_GT(want.size(), 0u) << "no perfect draws: nothing compared";
    }
  }
}

TEST(MultiDevice, TestScoresAreTheCpus) {
  const std::unique_ptr<Backend> multi = three_devices();
  const std::unique_ptr<Backend> cpu = make_cpu_backend(1);
  const Experiment ex = prepare_experiment(kink_config());
  const StreamTask task = stream_task(ex, 4, 0);
  cpu->begin_stream(task);
  multi->begin_stream(task);
  for (size_t count : {1, 2, 37}) {
    std::vector<uint64_t> draws;
    for (size_t i = 0; i < count; ++i) draws.push_back(1000 + 7919 * i);
    const std::vector<TestScore> want = cpu->score_test(draws), got = multi->score_test(draws);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i].accuracy, want[i].accuracy) << "draw " << draws[i];
      EXPECT_NEAR(got[i].loss, want[i].loss, 1e-6 * std::fabs(want[i].loss)) << "draw " << draws[i];
    }
  }
}

class MultiDeviceRunTest : public gac::test::TempDirTest {
 protected:
  static RunConfig run_config() {
    RunConfig cfg = kink_config();
    cfg.target = 3;
    cfg.repeats = 2;
    cfg.max_draws = 100000;
    cfg.batch = 3001;  // many calls per stream
    return cfg;
  }
  RunOutcome run(const std::string& out, std::shared_ptr<Backend> backend, uint64_t max_draws = 100000) {
    std::ostringstream log;
    RunConfig cfg = run_config();
    cfg.max_draws = max_draws;
    return run_experiment(cfg, RunOptions{dir_ / out, false, std::move(backend)}, log);
  }
};

TEST_F(MultiDeviceRunTest, AWholeRunStoresWhatTheCpuRunStores) {
  ASSERT_TRUE(run("cpu", make_cpu_backend(1)).complete);
  ASSERT_TRUE(run("multi", three_devices()).complete);
  const std::string want = gac::test::fingerprint(dir_ / "cpu");
  EXPECT_NE(want.find("model "), std::string::npos);
  EXPECT_EQ(gac::test::fingerprint(dir_ / "multi"), want);
}

TEST_F(MultiDeviceRunTest, ADeviceFailingIsOneClearErrorAndLosesNothingCommitted) {
  ASSERT_TRUE(run("cpu", make_cpu_backend(1)).complete);
  ASSERT_TRUE(run("multi", three_devices(), 2000).complete);  // committed before the failure
  const std::string committed = gac::test::fingerprint(dir_ / "multi");
  try {
    run("multi", three_devices(300));
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("device 1 (emulated"), std::string::npos) << what;
    EXPECT_NE(what.find("lost at launch 300"), std::string::npos) << what;
  }
  for (const StreamState& st : Store::open_existing(dir_ / "multi")->states()) EXPECT_GE(st.draws, 2000u);
  EXPECT_EQ(Store::open_existing(dir_ / "multi")->models().size() >= 1, committed.find("model ") != std::string::npos);
  // The same directory, healthy devices: it resumes and ends as the CPU's run.
  ASSERT_TRUE(run("multi", three_devices()).complete);
  EXPECT_EQ(gac::test::fingerprint(dir_ / "multi"), gac::test::fingerprint(dir_ / "cpu"));
}

TEST(MultiDevice, DeviceListsAreCheckedWithClearErrors) {
  EXPECT_EQ(parse_device_list("all", 3), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(parse_device_list("2,0", 3), (std::vector<int>{2, 0}));
  EXPECT_ERROR_MENTIONS(parse_device_list("0,3", 2), "no device 3 (this machine has 2: 0 to 1)");
  EXPECT_ERROR_MENTIONS(parse_device_list("1,1", 2), "listed twice");
  for (const char* bad : {"", "x", "0,", ",1", "-1", "0;1", "1.5"})
    EXPECT_ERROR_MENTIONS(parse_device_list(bad, 2), "expected \"all\" or device numbers");
  EXPECT_ERROR_MENTIONS(parse_config("", "t.toml", {"exec.devices=\"0,x\""}), "exec.devices");
  EXPECT_EQ(parse_config("", "t.toml", {"exec.devices=\"1,0\""}).devices, "1,0");
  // TOML's own spellings of the same lists.
  EXPECT_EQ(parse_config("", "t.toml", {"exec.devices=2"}).devices, "2");
  EXPECT_EQ(parse_config("", "t.toml", {"exec.devices=[1, 0]"}).devices, "1,0");
  EXPECT_ERROR_MENTIONS(parse_config("", "t.toml", {"exec.devices=[0, 0]"}), "exec.devices: device 0 is listed twice");
  EXPECT_ERROR_MENTIONS(parse_config("", "t.toml", {"exec.devices=[]"}), "exec.devices: must not be empty");
  EXPECT_ERROR_MENTIONS(parse_config("", "t.toml", {"exec.devices=-1"}), "exec.devices: -1 is out of range");
  EXPECT_ERROR_MENTIONS(parse_config("", "t.toml", {"exec.devices=true"}), "exec.devices: expected \"all\", a device number");
}
