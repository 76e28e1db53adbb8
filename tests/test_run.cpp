// End to end through the gac binary: runs, resumes after SIGKILL, refuses a
// different config, and turns every bad input into one clear error.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "gac/backend.h"
#include "gac/store.h"
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

class RunTest : public gac::test::RunDirTest {};

}  // namespace

TEST_F(RunTest, RunFillsEveryCellReportsAndVerifies) {
  const Result r = run_gac({"run", kink_config().string(), "-o", (dir_ / "a").string(), "-q"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("80/80"), std::string::npos) << r.out;
  const auto store = Store::open_existing(dir_ / "a");
  EXPECT_EQ(store->models().size(), 2u * 2u * 3u * 40u);
  for (const StreamState& st : store->states()) EXPECT_EQ(st.status, "filled");
  EXPECT_TRUE(fs::exists(dir_ / "a" / "config.toml"));
  EXPECT_TRUE(fs::exists(dir_ / "a" / "layout.json"));
  const Result v = run_gac({"verify", (dir_ / "a").string()});
  EXPECT_EQ(v.status, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("all match"), std::string::npos) << v.out;
  // A tampered weights file is caught.
  const fs::path weights = dir_ / "a" / store->models().front().file;
  std::string bytes = slurp(weights);
  bytes[bytes.size() - 1] ^= 0x40;
  std::ofstream(weights, std::ios::binary) << bytes;
  const Result tampered = run_gac({"verify", (dir_ / "a").string()});
  EXPECT_EQ(tampered.status, 1);
  EXPECT_NE(tampered.out.find("MISMATCH"), std::string::npos) << tampered.out;
  const Result csv = run_gac({"report", (dir_ / "a").string(), "--csv"});
  EXPECT_EQ(csv.status, 0);
  EXPECT_EQ(std::count(csv.out.begin(), csv.out.end(), '\n'), 1 + 2 * 3);
  const Result json = run_gac({"report", (dir_ / "a").string(), "--json"});
  EXPECT_EQ(json.status, 0);
  EXPECT_NE(json.out.find("\"cells\""), std::string::npos);
}

TEST_F(RunTest, ResultsDoNotDependOnBatchOrThreads) {
  const fs::path cfg = kink_config();
  ASSERT_EQ(run_gac({"run", cfg.string(), "-o", (dir_ / "a").string(), "-q"}).status, 0);
  ASSERT_EQ(run_gac({"run", cfg.string(), "-o", (dir_ / "b").string(), "-q", "--threads", "1", "--set", "exec.batch=777"}).status, 0);
  EXPECT_EQ(fingerprint(dir_ / "a"), fingerprint(dir_ / "b"));
}

TEST_F(RunTest, SigkillAtRandomMomentsThenResumeEqualsAnUninterruptedRun) {
  const fs::path cfg = kink_config();
  // One thread and small batches: slow enough to be killed mid-run.
  auto args = [&](const std::string& out) {
    return std::vector<std::string>{"run", cfg.string(), "-o", (dir_ / out).string(), "-q", "--threads", "1",
                                    "--set", "exec.batch=512", "--set", "run.target=100"};
  };
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(run_gac(args("whole")).status, 0);
  const double whole_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  expect_killed_and_resumed_equals(dir_ / "whole", args("killed"), dir_ / "killed", whole_s, 6);
}

TEST_F(RunTest, DifferentConfigOnAnExistingRunIsRefusedAndNothingIsLost) {
  const fs::path cfg = kink_config();
  ASSERT_EQ(run_gac({"run", cfg.string(), "-o", (dir_ / "a").string(), "-q"}).status, 0);
  const std::string before = fingerprint(dir_ / "a");
  const Result r = run_gac({"run", cfg.string(), "-o", (dir_ / "a").string(), "-q", "--set", "model.hidden=12"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("different config"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("hidden"), std::string::npos) << r.err;
  EXPECT_EQ(fingerprint(dir_ / "a"), before);
  // Changing only a stopping rule or how to run is not a different run.
  EXPECT_EQ(run_gac({"run", cfg.string(), "-o", (dir_ / "a").string(), "-q", "--threads", "1"}).status, 0);
  EXPECT_EQ(fingerprint(dir_ / "a"), before);
}

TEST_F(RunTest, BudgetStopsAStreamAndReportsItUnfilled) {
  const fs::path cfg = write_config("tiny.toml", R"(
[data]
kind = "kink"
[run]
n = [8]
bins = [0.0, 0.01]
target = 5
max_draws = 20000
)");
  const Result r = run_gac({"run", cfg.string(), "-o", (dir_ / "a").string(), "-q"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("budget"), std::string::npos) << r.out;
  const auto store = Store::open_existing(dir_ / "a");
  ASSERT_EQ(store->states().size(), 1u);
  EXPECT_EQ(store->states()[0].draws, 20000u);
  EXPECT_EQ(store->states()[0].status, "budget");
  // A larger budget extends the same run.
  ASSERT_EQ(run_gac({"run", cfg.string(), "-o", (dir_ / "a").string(), "-q", "--set", "run.max_draws=30000"}).status, 0);
  EXPECT_EQ(Store::open_existing(dir_ / "a")->states()[0].draws, 30000u);
}

TEST_F(RunTest, BadInputUnknownConfigKey) {
  expect_clear_error(run_gac({"run", kink_config().string(), "-o", (dir_ / "a").string(), "--set", "run.targte=3"}),
                     "unknown key 'run.targte'");
  EXPECT_FALSE(fs::exists(dir_ / "a"));
}

TEST_F(RunTest, BadInputWrongValueType) {
  expect_clear_error(run_gac({"run", kink_config().string(), "-o", (dir_ / "a").string(), "--set", "run.n=\"four\""}),
                     "run.n: expected an integer");
}

TEST_F(RunTest, BadInputBinEdgesNotIncreasing) {
  expect_clear_error(run_gac({"run", kink_config().string(), "-o", (dir_ / "a").string(), "--set", "run.bins=[0.5, 0.4]"}),
                     "strictly increasing");
}

TEST_F(RunTest, BadInputNLargerThanTheDataHolds) {
  expect_clear_error(run_gac({"run", kink_config().string(), "-o", (dir_ / "a").string(), "--set", "run.n=[3500]"}), "3500");
  EXPECT_FALSE(fs::exists(dir_ / "a"));
}

TEST_F(RunTest, BadInputImageShapeNotFittingTheArchitecture) {
  expect_clear_error(run_gac({"run", kink_config().string(), "-o", (dir_ / "a").string(), "--set", "model.arch=lenet"}),
                     "lenet needs image inputs");
}

TEST_F(RunTest, BadInputMissingDataDirectory) {
  const Result r = run_gac({"run", kink_config().string(), "-o", (dir_ / "a").string(), "--set", "data.kind=idx", "--set",
                            "data.path=/nonexistent/mnist"});
  expect_clear_error(r, "/nonexistent/mnist");
}

TEST_F(RunTest, BadInputUnwritableOutputDirectory) {
  std::ofstream(dir_ / "file") << "x";
  expect_clear_error(run_gac({"run", kink_config().string(), "-o", (dir_ / "file" / "run").string()}), (dir_ / "file").string());
}

TEST_F(RunTest, BadInputCorruptNpyFile) {
  std::ofstream(dir_ / "x.npy") << "this is not a numpy file";
  const fs::path cfg = write_config("npy.toml", "[data]\nkind = \"npy\"\ntrain_x = \"" + (dir_ / "x.npy").string() +
                                                    "\"\ntrain_y = \"" + (dir_ / "x.npy").string() + "\"\ntest_x = \"" +
                                                    (dir_ / "x.npy").string() + "\"\ntest_y = \"" + (dir_ / "x.npy").string() +
                                                    "\"\n");
  expect_clear_error(run_gac({"run", cfg.string(), "-o", (dir_ / "a").string()}), "x.npy");
  EXPECT_FALSE(fs::exists(dir_ / "a"));
}

TEST_F(RunTest, BadInputTruncatedIdxFile) {
  // A tiny IDX set whose image files announce 10 images but hold 3.
  const fs::path data = dir_ / "idx";
  fs::create_directories(data);
  std::ofstream images(data / "train-images-idx3-ubyte", std::ios::binary), labels(data / "train-labels-idx1-ubyte", std::ios::binary);
  const unsigned char image_header[16] = {0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28};
  images.write(reinterpret_cast<const char*>(image_header), 16);
  images << std::string(784 * 3, '\x7f');  // 3 of the 10 images announced
  images.close();
  fs::copy_file(data / "train-images-idx3-ubyte", data / "t10k-images-idx3-ubyte");
  const unsigned char label_header[8] = {0, 0, 8, 1, 0, 0, 0, 10};
  labels.write(reinterpret_cast<const char*>(label_header), 8);
  labels << std::string(10, '\x01');
  labels.close();
  fs::copy_file(data / "train-labels-idx1-ubyte", data / "t10k-labels-idx1-ubyte");
  const Result r = run_gac({"run", kink_config().string(), "-o", (dir_ / "a").string(), "--set", "data.kind=idx", "--set",
                            "data.path=" + data.string(), "--set", "model.arch=lenet"});
  expect_clear_error(r, "train-images-idx3-ubyte");
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
}

TEST_F(RunTest, TimeLimitStopsTheRunAndTheSameCommandContinues) {
  const fs::path cfg = write_config("slow.toml", R"(
[data]
kind = "kink"
[run]
n = [16]
bins = [0.0, 0.01]
target = 1
max_draws = 100_000_000_000
time_limit = 0.5
)");
  const Result r = run_gac({"run", cfg.string(), "-o", (dir_ / "a").string(), "-q"});
  ASSERT_EQ(r.status, 75) << r.err;  // stopped early, resumable
  EXPECT_NE(r.err.find("time limit"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("time"), std::string::npos) << r.out;
  const uint64_t first = Store::open_existing(dir_ / "a")->states().at(0).draws;
  EXPECT_GT(first, 0u);
  EXPECT_EQ(Store::open_existing(dir_ / "a")->states().at(0).status, "time");
  ASSERT_EQ(run_gac({"run", cfg.string(), "-o", (dir_ / "a").string(), "-q"}).status, 75);
  EXPECT_GT(Store::open_existing(dir_ / "a")->states().at(0).draws, first);
}

TEST_F(RunTest, BadInputMissingConfigFile) {
  expect_clear_error(run_gac({"run", (dir_ / "nope.toml").string()}), "nope.toml");
}

TEST_F(RunTest, CudaBackendWithoutADeviceIsAClearError) {
  std::string note;
  if (make_backend("auto", 1, &note)->name() == "cuda") GTEST_SKIP() << "this machine has a usable CUDA device";
  expect_clear_error(run_gac({"run", kink_config().string(), "-o", (dir_ / "a").string(), "--backend", "cuda"}),
                     "--backend cuda: no usable CUDA device");
  EXPECT_FALSE(fs::exists(dir_ / "a")) << "a run directory without a backend";
  const Result info = run_gac({"info"});
  EXPECT_EQ(info.status, 0);
  EXPECT_NE(info.out.find("using the CPU backend"), std::string::npos) << info.out;
}

TEST_F(RunTest, BadInputCudaTestHookValues) {
  // The CUDA backend's test hooks are read before looking for a device, so
  // a bad value is one clear error on any machine.
#if !defined(GAC_HAVE_CUDA)
  GTEST_SKIP() << "built without CUDA";
#endif
  const std::vector<std::pair<const char*, const char*>> bad = {
      {"GAC_CUDA_IMAGE", "texture"}, {"GAC_CUDA_MAX_LAUNCH", "12x"}, {"GAC_CUDA_MEMORY_CAP", "-5"}};
  for (const auto& [name, value] : bad) {
    setenv(name, value, 1);
    const Result r = run_gac({"run", kink_config().string(), "-o", (dir_ / "a").string(), "--backend", "cuda"});
    unsetenv(name);
    expect_clear_error(r, name);
    EXPECT_FALSE(fs::exists(dir_ / "a")) << name;
  }
}

TEST_F(RunTest, ReportOfANonRunDirectoryIsAnError) {
  expect_clear_error(run_gac({"report", dir_.string()}), "not a gac run");
}

TEST_F(RunTest, InfoPrintsParametersAndFlops) {
  const fs::path cfg = write_config("lenet.toml", R"(
[data]
kind = "npy"
train_x = "x.npy"
train_y = "y.npy"
test_x = "x.npy"
test_y = "y.npy"
[model]
arch = "lenet"
)");
  // Build a tiny 1x28x28 NPY dataset with two classes.
  {
    std::ofstream x(dir_ / "x.npy", std::ios::binary), y(dir_ / "y.npy", std::ios::binary);
    auto header = [](std::ofstream& f, const std::string& dict) {
      std::string h = dict;
      while ((10 + h.size() + 1) % 64) h += ' ';
      h += '\n';
      f << "\x93NUMPY" << '\x01' << '\x00';
      const uint16_t len = static_cast<uint16_t>(h.size());
      f.write(reinterpret_cast<const char*>(&len), 2);
      f << h;
    };
    header(x, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 1, 28, 28), }");
    std::vector<float> xs(4 * 784, 0.5f);
    x.write(reinterpret_cast<const char*>(xs.data()), xs.size() * 4);
    header(y, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }");
    const int64_t ys[4] = {0, 1, 0, 1};
    y.write(reinterpret_cast<const char*>(ys), sizeof ys);
  }
  const fs::path old = fs::current_path();
  fs::current_path(dir_);
  const Result r = run_gac({"info", cfg.string()});
  fs::current_path(old);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("11,074 parameters"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("183,768 FLOP per example (183.8 kFLOP)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("conv1.weight [3, 1, 5, 5]"), std::string::npos) << r.out;
}

TEST_F(RunTest, FashionMnistLeNetRunEndToEnd) {
  if (!fs::exists(kFashionDir)) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const fs::path cfg = fashion_lenet_config("fashion.toml", "n = [2]\nbins = [0.0, 0.69, 0.6931]\ntarget = 2\n");
  const Result r = run_gac({"run", cfg.string(), "-o", (dir_ / "f").string(), "-q"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto store = Store::open_existing(dir_ / "f");
  ASSERT_EQ(store->models().size(), 4u);
  for (const StoredModel& m : store->models()) {
    EXPECT_GT(m.test_acc, 0.0);
    EXPECT_LE(m.test_acc, 1.0);
  }
  EXPECT_EQ(run_gac({"verify", (dir_ / "f").string()}).status, 0);
}
