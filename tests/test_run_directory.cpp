// A run directory's integrity: damage that `run` repairs (missing weights,
// layout.json, leftovers of killed runs) or refuses (ledger rows gone), that
// `verify` lists in full; and the data files a run was made from.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gac/data_files.h"
#include "gac/npy.h"
#include "gac/store.h"
#include "tests/test_util.h"

using namespace gac;
using namespace gac::test;
namespace fs = std::filesystem;

namespace {

void sql(const fs::path& ledger, const std::string& statement) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(ledger.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, statement.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
}

class RunDirectoryTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    std::ofstream(dir_ / "kink.toml") << "[data]\nkind = \"kink\"\n[run]\nseed = 5\nn = [4, 8]\nbins = [0.6, 0.65, 0.69]\n"
                                         "target = 5\n";
    run_ = dir_ / "run";
  }

  Result run(const fs::path& config) { return run_gac({"run", config.string(), "-o", run_.string(), "-q"}); }
  Result run() { return run(dir_ / "kink.toml"); }
  Result verify() { return run_gac({"verify", run_.string()}); }

  // A finished kink run; its fingerprint (models, weights, streams).
  std::string finished_run() {
    const Result r = run();
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(verify().status, 0);
    return fingerprint(run_);
  }

  std::vector<StoredModel> models() { return Store::open_existing(run_)->models(); }

  fs::path run_;
};

}  // namespace

TEST_F(RunDirectoryTest, MissingWeightsAreListedByVerifyAndRegeneratedBitForBitByRun) {
  const std::string before = finished_run();
  const auto stored = models();
  ASSERT_GE(stored.size(), 3u);
  fs::remove(run_ / stored[0].file);
  fs::remove(run_ / stored[2].file);

  const Result v = verify();
  EXPECT_EQ(v.status, 1);
  EXPECT_EQ(count_lines(v.out, "PROBLEM missing weights file weights/"), 2u) << v.out;
  EXPECT_NE(v.out.find("PROBLEM missing weights file " + stored[2].file), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("verified " + std::to_string(stored.size()) + " models"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("0 mismatches, 2 problems"), std::string::npos) << v.out;

  const Result r = run();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("gac: regenerated 2 missing weights files from their draw indices"), std::string::npos) << r.err;
  EXPECT_EQ(fingerprint(run_), before);
  EXPECT_EQ(verify().status, 0);
}

TEST_F(RunDirectoryTest, AWeightsDirectoryDeletedIsRegeneratedWhole) {
  const std::string before = finished_run();
  fs::remove_all(run_ / "weights");
  EXPECT_EQ(count_lines(verify().out, "PROBLEM missing weights file"), models().size());
  const Result r = run();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(fingerprint(run_), before);
}

TEST_F(RunDirectoryTest, LayoutIsRewrittenFromTheConfig) {
  finished_run();
  const std::string layout = slurp(run_ / "layout.json");
  fs::remove(run_ / "layout.json");
  const Result v = verify();
  EXPECT_EQ(v.status, 1);
  EXPECT_NE(v.out.find("PROBLEM layout.json is missing"), std::string::npos) << v.out;
  const Result r = run();
  EXPECT_NE(r.err.find("layout.json was missing or altered: rewritten"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(run_ / "layout.json"), layout);
  std::ofstream(run_ / "layout.json") << "{}";
  run();
  EXPECT_EQ(slurp(run_ / "layout.json"), layout);
  // Grown to a sparse 64 GiB (more than memory): told apart by its size, never read whole.
  fs::resize_file(run_ / "layout.json", uint64_t{1} << 36);
  EXPECT_NE(verify().out.find("PROBLEM layout.json is missing or differs"), std::string::npos);
  EXPECT_EQ(run().status, 0);
  EXPECT_EQ(slurp(run_ / "layout.json"), layout);
}

TEST_F(RunDirectoryTest, AModelRowDeletedIsListedByVerifyAndRefusedByRunChangingNothing) {
  finished_run();
  const auto stored = models();
  sql(run_ / "ledger.sqlite", "DELETE FROM models WHERE draw = " + std::to_string(stored[1].draw) +
                                  " AND n = " + std::to_string(stored[1].n));
  const std::string damaged = fingerprint(run_);

  const Result v = verify();
  EXPECT_EQ(v.status, 1);
  const std::string expected = "stream n=" + std::to_string(stored[1].n) + " repeat 0 shard 0, bin " +
                               std::to_string(stored[1].bin) + ": the stream records 5 stored models but the ledger "
                               "holds 4 model rows";
  EXPECT_NE(v.out.find("PROBLEM " + expected), std::string::npos) << v.out;
  // Its weights file, now named by no row, is listed too.
  EXPECT_NE(v.out.find("PROBLEM leftover file " + stored[1].file), std::string::npos) << v.out;

  expect_clear_error(run(), run_.string() + ": the ledger is damaged: " + expected);
  EXPECT_EQ(fingerprint(run_), damaged);
  EXPECT_TRUE(fs::exists(run_ / stored[1].file));
}

TEST_F(RunDirectoryTest, VerifyListsEveryProblemOfTheLedger) {
  finished_run();
  sql(run_ / "ledger.sqlite", "DELETE FROM models WHERE n = 4 AND bin = 0");
  sql(run_ / "ledger.sqlite", "DELETE FROM streams WHERE n = 8");
  const Result v = verify();
  EXPECT_EQ(v.status, 1);
  EXPECT_NE(v.out.find("PROBLEM stream n=4 repeat 0 shard 0, bin 0: the stream records 5 stored models but the ledger "
                       "holds 0 model rows"),
            std::string::npos)
      << v.out;
  EXPECT_NE(v.out.find("PROBLEM stream n=8 repeat 0 shard 0: 10 model rows but no stream row"), std::string::npos) << v.out;
  EXPECT_EQ(count_lines(v.out, "PROBLEM leftover file"), 5u) << v.out;
  expect_clear_error(run(), "(and 1 more problem)");
}

TEST_F(RunDirectoryTest, LeftoversOfKilledRunsAreRemovedWhenARunOpensItsDirectory) {
  const std::string before = finished_run();
  const std::vector<std::string> leftovers = {"weights/n4_r0_s0_d99999999.npy", "weights/n4_r0_s0_d7.npy.tmp.4242",
                                              "config.toml.tmp.17", "data/n4_r0_train_x.npy.tmp.9"};
  for (const auto& f : leftovers) std::ofstream(run_ / f) << "half";
  std::ofstream(run_ / "weights" / "notes.txt") << "mine";

  const Result v = verify();
  EXPECT_EQ(v.status, 1);
  for (const auto& f : leftovers) EXPECT_NE(v.out.find("PROBLEM leftover file " + f + " "), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("PROBLEM unexpected file weights/notes.txt"), std::string::npos) << v.out;

  const Result r = run();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("gac: removed 4 files left by a killed run"), std::string::npos) << r.err;
  for (const auto& f : leftovers) EXPECT_FALSE(fs::exists(run_ / f)) << f;
  EXPECT_TRUE(fs::exists(run_ / "weights" / "notes.txt"));  // not gac's to remove
  EXPECT_EQ(fingerprint(run_), before);
}

// ---- Data files --------------------------------------------------------------

namespace {

void write_features(const fs::path& path, float scale) {
  std::vector<float> x(40);
  for (size_t i = 0; i < x.size(); ++i) x[i] = scale * static_cast<float>((i * 7) % 11) - 3.0f;
  write_file_atomic(path, npy_bytes_f32(x.data(), {20, 2}));
}

}  // namespace

TEST_F(RunDirectoryTest, AResumeWhoseDataChangedIsRefusedNamingTheFile) {
  std::vector<int32_t> y(20);
  for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<int32_t>(i % 2);
  write_features(dir_ / "x.npy", 1.0f);
  write_file_atomic(dir_ / "y.npy", npy_bytes_i32(y.data(), {20}));
  const fs::path cfg = dir_ / "npy.toml";
  std::ofstream(cfg) << "[data]\nkind = \"npy\"\ntrain_x = \"" << (dir_ / "x.npy").string() << "\"\ntrain_y = \""
                     << (dir_ / "y.npy").string() << "\"\ntest_x = \"" << (dir_ / "x.npy").string() << "\"\ntest_y = \""
                     << (dir_ / "y.npy").string() << "\"\n[run]\nn = [2]\nbins = [0.5, 0.7]\ntarget = 2\n";
  ASSERT_EQ(run(cfg).status, 0);
  const std::string before = fingerprint(run_);
  EXPECT_EQ(Store::open_existing(run_)->meta().data_files.size(), 4u);

  write_features(dir_ / "x.npy", 2.0f);  // same size, other values
  expect_clear_error(run(cfg), "data file " + (dir_ / "x.npy").string() + " has changed since the run began: CRC-32");
  const Result v = verify();
  EXPECT_EQ(v.status, 1);
  EXPECT_NE(v.out.find("PROBLEM data file " + (dir_ / "x.npy").string() + " has changed"), std::string::npos) << v.out;
  EXPECT_EQ(fingerprint(run_), before);

  write_features(dir_ / "x.npy", 1.0f);  // the original data back: the run goes on
  EXPECT_EQ(run(cfg).status, 0);
  EXPECT_EQ(verify().status, 0);
}

TEST(DataFiles, EveryInputFileOfEachKind) {
  DataConfig cfg;
  cfg.kind = "kink";
  EXPECT_TRUE(data_input_files(cfg).empty());
  cfg.kind = "slab";
  EXPECT_TRUE(data_input_files(cfg).empty());
  cfg.kind = "npy";
  cfg.train_x = "a";
  cfg.train_y = "b";
  cfg.test_x = "c";
  cfg.test_y = "d";
  EXPECT_EQ(data_input_files(cfg), (std::vector<fs::path>{"a", "b", "c", "d"}));
  cfg.kind = "csv";
  cfg.train_file = "t.csv";
  cfg.test_file = "u.csv";
  EXPECT_EQ(data_input_files(cfg), (std::vector<fs::path>{"t.csv", "u.csv"}));
  cfg.kind = "cifar10";
  cfg.path = "/c";
  EXPECT_EQ(data_input_files(cfg).size(), 6u);
  EXPECT_EQ(data_input_files(cfg).back(), fs::path("/c/test_batch.bin"));

  // IDX: the raw file when it exists, else its .gz, as the loader reads them.
  const fs::path dir = fs::temp_directory_path() / ("gac_datafiles_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "p-train-images-idx3-ubyte.gz") << "z";
  std::ofstream(dir / "p-t10k-labels-idx1-ubyte") << "r";
  std::ofstream(dir / "p-t10k-labels-idx1-ubyte.gz") << "z";
  cfg.kind = "idx";
  cfg.path = dir.string();
  cfg.prefix = "p-";
  const auto files = data_input_files(cfg);
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(files[0], dir / "p-train-images-idx3-ubyte.gz");
  EXPECT_EQ(files[3], dir / "p-t10k-labels-idx1-ubyte");
  EXPECT_ERROR_MENTIONS(fingerprint_data_files(cfg), (dir / "p-train-labels-idx1-ubyte").string());
  fs::remove_all(dir);
}

TEST(DataFiles, FingerprintsAreSizeAndCrc32) {
  const fs::path file = fs::temp_directory_path() / ("gac_crc_" + std::to_string(getpid()));
  std::ofstream(file) << "123456789";  // the CRC-32 check value is cbf43926
  DataConfig cfg;
  cfg.kind = "csv";
  cfg.train_file = cfg.test_file = file.string();
  const auto prints = fingerprint_data_files(cfg);
  fs::remove(file);
  ASSERT_EQ(prints.size(), 2u);
  EXPECT_EQ(prints[0].size, 9u);
  EXPECT_EQ(prints[0].crc32, 0xcbf43926u);
  EXPECT_EQ(data_files_difference(prints, prints), "");
  auto other = prints;
  other[1].size = 10;
  EXPECT_EQ(data_files_difference(prints, other),
            "data file " + file.string() + " has changed since the run began: 10 bytes, was 9");
  EXPECT_NE(data_files_difference(prints, {}).find("made from 2 data files, this config reads 0"), std::string::npos);
}
