// Inputs that used to crash or mislead, each now one clear line: models too
// large to count in 32 bits or to fit in memory, a directory or an endless
// file given as the config, values beyond float32, raw bytes in messages, a
// device list that is not one, no test points, standard output that cannot be
// written; and what `info` prints for synthetic data and for absent image data.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gac/config.h"
#include "gac/dataset.h"
#include "gac/memory.h"
#include "gac/model.h"
#include "gac/npy.h"
#include "gac/text.h"
#include "tests/test_util.h"

using namespace gac;
using namespace gac::test;
namespace fs = std::filesystem;

namespace {

class CliErrorTest : public TempDirTest {
 protected:

  Result run(const std::vector<std::string>& sets) {
    std::vector<std::string> args = {"run", quickstart_, "-o", (dir_ / "run").string(), "-q"};
    for (const auto& s : sets) args.insert(args.end(), {"--set", s});
    return run_gac(args);
  }

  const std::string quickstart_ = std::string(GAC_SOURCE_DIR) + "/configs/quickstart.toml";
};

ModelConfig mlp(int hidden, int layers) {
  ModelConfig m;
  m.arch = Arch::mlp;
  m.hidden = hidden;
  m.layers = layers;
  return m;
}

}  // namespace

// ---- Sizes (counted in 64 bits; memory estimated before allocating) ---------

TEST(ModelSize, CountsIn64BitsAndRefusesWhatDoesNotFitTheSpec) {
  EXPECT_ERROR_MENTIONS(build_model(mlp(65536, 2), 1, 1, 2, 2),
                        "model: this mlp would have 4,295,229,442 parameters, more than gac's limit of 2,147,483,647 "
                        "(lower model.hidden or model.layers)");
  ModelConfig lenet;
  lenet.arch = Arch::lenet;
  lenet.width = 10000;  // 32-bit counts printed -731,659,774 parameters
  EXPECT_ERROR_MENTIONS(build_model(lenet, 1, 28, 28, 2), "would have 4,320,005,440,002 parameters");
  lenet.width = 1e300;  // counts saturate rather than wrap
  EXPECT_ERROR_MENTIONS(build_model(lenet, 1, 28, 28, 2), "more than 9,223,372,036,854,775,806 parameters");
  EXPECT_ERROR_MENTIONS(build_model(lenet, 1, 28, 28, 2), "(lower model.width)");
  // The largest that fits is built as before.
  const Model m = build_model(mlp(46340, 1), 1, 1, 2, 2);
  EXPECT_EQ(m.spec.n_params, 46340 * 2 + 46340 * 2 + 2);
}

TEST(ModelSize, MemoryIsEstimatedBeforeAnythingIsAllocated) {
  Experiment ex;
  ex.cfg.ns = {16};
  ex.cfg.model = mlp(10000, 2);
  ex.data.synthetic = true;
  ex.model = build_model(ex.cfg.model, 1, 1, 2, 2);
  const uint64_t one_thread = cpu_run_bytes(ex.model.spec, 1, 16, 1000);
  EXPECT_GT(one_thread, 16ull * 4 * static_cast<uint64_t>(ex.model.spec.n_params));  // 16 draws of 100M parameters
  EXPECT_GT(cpu_run_bytes(ex.model.spec, 8, 16, 1000), 4 * one_thread);
  EXPECT_NO_THROW(check_cpu_memory(ex, 1, one_thread));
  EXPECT_NO_THROW(check_cpu_memory(ex, 1, 0));  // unknown: no check
  EXPECT_ERROR_MENTIONS(check_cpu_memory(ex, 2, one_thread),
                        "memory: this run (mlp with 100,040,002 parameters on 2 CPU threads) needs about ");
  EXPECT_ERROR_MENTIONS(check_cpu_memory(ex, 2, one_thread), "lower model.hidden or model.layers, or exec.threads");
  EXPECT_GT(available_memory_bytes(), 0u);
}

TEST_F(CliErrorTest, AModelTooLargeToCountIsOneLineNotACrash) {
  expect_clear_error(run({"model.hidden=65536", "model.layers=2"}), "4,295,229,442 parameters");
  EXPECT_FALSE(fs::exists(dir_ / "run"));
}

TEST_F(CliErrorTest, AModelTooLargeForMemoryIsRefusedBeforeAllocating) {
  // About 2 billion parameters: 16 draws of them per thread are terabytes.
  const Result r = run({"model.hidden=32000", "model.layers=3", "exec.threads=64"});
  expect_clear_error(r, "memory: this run (mlp with 2,048,128,002 parameters on 64 CPU threads) needs about ");
  EXPECT_NE(r.err.find(" is available; lower model.hidden or model.layers, or exec.threads"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "run"));
}

TEST_F(CliErrorTest, InfoCountsLargeModelsIn64Bits) {
  const Result r = run_gac({"info", quickstart_, "--set", "model.arch=lenet", "--set", "data.kind=idx", "--set",
                            "data.path=/nonexistent", "--set", "model.width=10000"});
  expect_clear_error(r, "this lenet would have 4,320,012,160,010 parameters, more than gac's limit");
}

// ---- Other bad input ------------------------------------------------------------

TEST_F(CliErrorTest, ADirectoryAsTheConfigIsRefused) {
  expect_clear_error(run_gac({"run", dir_.string(), "-o", (dir_ / "run").string()}),
                     "config: " + dir_.string() + " is a directory, not a config file");
  EXPECT_FALSE(fs::exists(dir_ / "run"));
}

TEST_F(CliErrorTest, AnEndlessConfigIsRefusedNotReadUntilMemoryRunsOut) {
  expect_clear_error(run_gac({"run", "/dev/zero", "-o", (dir_ / "run").string()}),
                     "config: /dev/zero is larger than 16 MiB; a config is a small TOML file");
  EXPECT_FALSE(fs::exists(dir_ / "run"));
  // A run directory whose config.toml became endless: resuming and verifying refuse it the same way.
  ASSERT_EQ(run({"run.n=[2]", "run.repeats=1", "run.target=2"}).status, 0);
  fs::remove(dir_ / "run" / "config.toml");
  fs::create_symlink("/dev/zero", dir_ / "run" / "config.toml");
  const std::string why = (dir_ / "run" / "config.toml").string() + " is larger than 16 MiB";
  expect_clear_error(run({"run.n=[2]", "run.repeats=1", "run.target=2"}), why);
  expect_clear_error(run_gac({"verify", (dir_ / "run").string()}), why);
}

TEST_F(CliErrorTest, OutputThatCannotBeWrittenIsAnErrorNotAShortFile) {
  ASSERT_EQ(run({"run.n=[2]", "run.repeats=1", "run.target=3"}).status, 0);
  const std::string err = (dir_ / "err").string();
  for (const std::string& command : {"report " + (dir_ / "run").string() + " --csv", std::string("info")}) {
    const int status = std::system((std::string(GAC_BINARY) + " " + command + " > /dev/full 2> " + err).c_str());
    ASSERT_TRUE(WIFEXITED(status)) << command;
    EXPECT_EQ(WEXITSTATUS(status), 2) << command;
    EXPECT_EQ(slurp(err), "gac: error: cannot write the output to standard output: No space left on device\n") << command;
  }
}

TEST_F(CliErrorTest, AKeyForAnotherDataKindIsRefused) {
  expect_clear_error(run({"data.label_column=1"}), "data.label_column: does not apply to data.kind = \"kink\"");
}

TEST_F(CliErrorTest, ANegativeVerifyLimitIsOneShortLine) {
  const Result r = run_gac({"verify", dir_.string(), "--limit", "-1"});
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.err, "gac: error: --limit: expected a whole number from 0 to 2147483647, got '-1' (see gac --help)\n");
}

TEST_F(CliErrorTest, ANumberOptionThatIsNotAWholeNumberSaysSo) {
  for (const char* bad : {"abc", "1.5", "4097", "", "2x"}) {
    const Result r = run_gac({"run", quickstart_, "--threads", bad});
    EXPECT_EQ(r.status, 2) << bad;
    EXPECT_EQ(r.err, std::string("gac: error: --threads: expected a whole number from 0 to 4096, got '") + bad +
                         "' (see gac --help)\n");
  }
}

TEST_F(CliErrorTest, ADeviceListOnTheCommandLineIsCheckedLikeTheConfigKey) {
  // Even where no GPU is used (the CPU backend ignores the list), a typo is an error, not a silent run.
  for (const auto& [bad, why] : {std::pair{"foo", "expected \"all\" or device numbers"}, std::pair{"0,0", "device 0 is listed twice"}})
    for (const char* command : {"run", "info"}) {
      const Result r = run_gac({command, quickstart_, "-o", (dir_ / "run").string(), "--devices", bad});
      EXPECT_EQ(r.status, 2) << command << " " << bad;
      EXPECT_NE(r.err.find(std::string("gac: error: --devices: ") + why), std::string::npos) << r.err;
    }
  EXPECT_FALSE(fs::exists(dir_ / "run"));
}

TEST_F(CliErrorTest, SyntheticDataWithoutTestPointsIsRefused) {
  // Test accuracy over no points would read 0 in every cell.
  expect_clear_error(run({"data.test_size=0"}), "config: data.test_size: 0 is out of range [1, ");
  EXPECT_FALSE(fs::exists(dir_ / "run" / "ledger.sqlite"));
}

TEST_F(CliErrorTest, RawBytesInMessagesAreEscapedOntoOneLine) {
  expect_clear_error(run({"data.kind=a\nb\x01\xc3\xa9"}), "config: data.kind: 'a\\nb\\x01\xc3\xa9' is not one of");
  const fs::path odd = dir_ / "new\nline\x1b[31m\xff.toml";
  expect_clear_error(run_gac({"run", odd.string()}), "new\\nline\\x1b[31m\\xff.toml");
  // A CLI11 error (a bad option value) is one line too.
  const Result r = run_gac({"run", quickstart_, "--threads", "many\nlines"});
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("many\\nlines"), std::string::npos) << r.err;
}

TEST(OneLine, EscapesControlsAndBytesThatAreNotUtf8) {
  EXPECT_EQ(one_line("plain text"), "plain text");
  EXPECT_EQ(one_line("a\nb\tc\rd"), "a\\nb\\tc\\rd");
  EXPECT_EQ(one_line(std::string("nul\0x\x7f", 6)), "nul\\x00x\\x7f");
  EXPECT_EQ(one_line("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82");
  EXPECT_EQ(one_line("\xff\xc3"), "\\xff\\xc3");               // invalid, and a sequence cut short
  EXPECT_EQ(one_line("\xc0\xaf"), "\\xc0\\xaf");               // overlong '/'
  EXPECT_EQ(one_line("\xed\xa0\x80"), "\\xed\\xa0\\x80");      // a UTF-16 surrogate
  EXPECT_EQ(one_line("\xc2\x85|\xe2\x80\xa8"), "\\xc2\\x85|\\xe2\\x80\\xa8");  // NEL and LINE SEPARATOR break lines
  EXPECT_TRUE(valid_utf8("caf\xc3\xa9"));
  EXPECT_FALSE(valid_utf8("caf\xc3"));
}

TEST(Shortest, FloatsReadBackExactlyInTheFewestDigits) {
  EXPECT_EQ(shortest(0.3), "0.3");
  EXPECT_EQ(shortest(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(shortest(1e300), "1e+300");
  EXPECT_EQ(shortest(0.1f), "0.1");
  EXPECT_EQ(grouped(2147483647), "2,147,483,647");
  EXPECT_EQ(grouped(-1234), "-1,234");
  EXPECT_EQ(grouped(999), "999");
}

// ---- Values beyond float32 --------------------------------------------------------

TEST_F(CliErrorTest, FeaturesBeyondFloat32AreRefusedNamingFileAndPlace) {
  const double x[4] = {0.5, 1e300, -1, 2};
  const int32_t y[2] = {0, 1};
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  const std::string npy = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size()) + '\0' + header +
        std::string(reinterpret_cast<const char*>(x), sizeof x);
  write_file_atomic(dir_ / "x.npy", npy);
  write_file_atomic(dir_ / "y.npy", npy_bytes_i32(y, {2}));
  DataConfig cfg;
  cfg.kind = "npy";
  cfg.train_x = cfg.test_x = (dir_ / "x.npy").string();
  cfg.train_y = cfg.test_y = (dir_ / "y.npy").string();
  EXPECT_ERROR_MENTIONS(load_dataset(cfg), (dir_ / "x.npy").string() + ": example 0: feature value 1e+300 is beyond "
                                           "float32's range");

  std::ofstream(dir_ / "a.csv") << "x,y,label\n1,2,0\n3,-1e300,1\n";
  DataConfig csv;
  csv.kind = "csv";
  csv.train_file = csv.test_file = (dir_ / "a.csv").string();
  EXPECT_ERROR_MENTIONS(load_dataset(csv), "a.csv: line 3, column 2: feature value -1e+300 is beyond float32's range");
  std::ofstream(dir_ / "a.csv") << "x,y,label\n1,2,0\n3,3e38,1\n";  // the largest floats are fine
  EXPECT_NO_THROW(load_dataset(csv));
}

// ---- info -------------------------------------------------------------------------

TEST_F(CliErrorTest, InfoDescribesSyntheticDataAsAPool) {
  const Result r = run_gac({"info", quickstart_});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("data: kink, 2 classes, input 1x1x2, a pool of 4,000 points: each training set takes n of them "
                       "and its test set the next 1,000"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("0 test"), std::string::npos) << r.out;
}

TEST_F(CliErrorTest, InfoPrintsTheModelThenSaysTheDataIsMissing) {
  const Result r = run_gac({"info", std::string(GAC_SOURCE_DIR) + "/configs/table3_cifar10.toml", "--set",
                            "data.path=" + (dir_ / "absent").string()});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("the model for 3x32x32 inputs and 2 classes:\nmodel: lenet, "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fc3.bias [2]"), std::string::npos) << r.out;
  expect_clear_error(r, (dir_ / "absent").string() + ": no such directory");
}
