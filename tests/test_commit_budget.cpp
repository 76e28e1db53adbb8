// exec.commit_bytes: a unit commits early once the weights of its models not
// yet committed pass the budget (host/run/run.cpp), even in the middle of
// one backend call's hits; what is stored never changes.
#include <gtest/gtest.h>

#include <regex>

#include "gac/store.h"
#include "test_util.h"

namespace fs = std::filesystem;
using gac::test::fingerprint;
using gac::test::Result;
using gac::test::run_gac;

namespace {

class CommitBudgetTest : public gac::test::RunDirTest {
 protected:
  Result run(const fs::path& cfg, const std::string& out, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"run", cfg.string(), "-o", (dir_ / out).string(), "--threads", "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_gac(args);
  }
  // The commits a finished run reports on its last line.
  static int commits(const Result& r) {
    std::smatch m;
    const bool found = std::regex_search(r.err, m, std::regex(R"(\((\d+) commits\))"));
    EXPECT_TRUE(found) << r.err;
    return found ? std::stoi(m[1]) : -1;
  }
  static int models(const fs::path& dir) { return static_cast<int>(gac::Store::open_existing(dir)->models().size()); }
};

}  // namespace

TEST_F(CommitBudgetTest, ATinyBudgetCommitsEveryModelAloneAndStoresTheSame) {
  // Calls of 100,000 draws hold many models each: the 1-byte budget
  // commits them one by one inside the call. (Each commit syncs files:
  // a small target keeps the test short.)
  const fs::path cfg = kink_config();
  const std::vector<std::string> base = {"--set", "run.target=8", "--set", "exec.batch=100000"};
  auto with = [&](const std::string& budget) {
    std::vector<std::string> args = base;
    args.insert(args.end(), {"--set", "exec.commit_bytes=" + budget});
    return args;
  };
  const Result whole = run(cfg, "a", base);
  ASSERT_EQ(whole.status, 0) << whole.err;
  const Result tiny = run(cfg, "b", with("1"));
  ASSERT_EQ(tiny.status, 0) << tiny.err;
  const Result some = run(cfg, "c", with("1000"));  // 5 models of 42 floats
  ASSERT_EQ(some.status, 0) << some.err;
  const std::string want = fingerprint(dir_ / "a");
  EXPECT_EQ(fingerprint(dir_ / "b"), want);
  EXPECT_EQ(fingerprint(dir_ / "c"), want);
  const int stored = models(dir_ / "a");
  EXPECT_GT(stored, 50);
  EXPECT_LT(commits(whole), stored / 5) << "the default budget committed early";
  EXPECT_GE(commits(tiny), stored) << "not one commit per model";
  EXPECT_GE(commits(some), stored / 5);
}

TEST_F(CommitBudgetTest, SgdModelsCommitEarlyAndStoreTheSame) {
  const fs::path cfg =
      write_config("sgd.toml", "[data]\nkind = \"kink\"\n[model]\narch = \"mlp\"\nhidden = 10\n"
                               "[optimizer]\nkind = \"sgd\"\nlr = 0.1\nbatch_size = 3\nepochs = 20\n"
                               "[run]\nseed = 3\nn = [4, 8]\nrepeats = 2\nbins = [0.66, 0.67, 0.68, 0.69]\ntarget = 10\n");
  const Result whole = run(cfg, "a", {});
  ASSERT_EQ(whole.status, 0) << whole.err;
  const Result tiny = run(cfg, "b", {"--set", "exec.commit_bytes=1"});
  ASSERT_EQ(tiny.status, 0) << tiny.err;
  EXPECT_EQ(fingerprint(dir_ / "b"), fingerprint(dir_ / "a"));
  EXPECT_GT(commits(tiny), commits(whole));
}

TEST_F(CommitBudgetTest, ABudgetOfNothingIsRefused) {
  gac::test::expect_clear_error(run(kink_config(), "a", {"--set", "exec.commit_bytes=0"}), "exec.commit_bytes");
}
