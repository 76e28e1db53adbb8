// Per-cell reports of a small run written through Store: aggregation over
// repeats and shards, filled/unfilled status, upper-bound rates, and the
// table, CSV and JSON forms; two runs side by side (--versus), paired by
// training set when they share them.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "gac/report.h"
#include "gac/stats.h"
#include "gac/store.h"
#include "test_util.h"

using namespace gac;
namespace fs = std::filesystem;

namespace {

RunMeta report_meta() {
  RunMeta m;
  m.bin_edges = {0.3, 0.35, 0.4};
  m.target = 2;
  m.ns = {4, 8, 16};
  m.repeats = 2;
  m.n_params = 2;
  return m;
}

// The line of `text` holding `needle`, its runs of spaces squeezed to one ("" if none).
std::string squeezed_line(const std::string& text, const std::string& needle) {
  const size_t at = text.find(needle);
  if (at == std::string::npos) return "";
  const size_t begin = text.rfind('\n', at) + 1, end = text.find('\n', at);  // npos + 1 = 0
  std::string line;
  for (char ch : text.substr(begin, end - begin))
    if (ch != ' ' || line.empty() || line.back() != ' ') line += ch;
  return line;
}

// The fields of row `row` (1: the first after the header) of CSV `csv`, by column name.
std::map<std::string, std::string> csv_row(const std::string& csv, int row) {
  std::istringstream in(csv);
  std::vector<std::vector<std::string>> lines;
  for (std::string line; std::getline(in, line);) {
    lines.emplace_back();
    std::istringstream fields(line + ",");
    for (std::string field; std::getline(fields, field, ',');) lines.back().push_back(field);
  }
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < lines[0].size(); ++i) out[lines[0][i]] = lines.at(row).at(i);
  return out;
}

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gac_report_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    store_ = std::make_unique<Store>(dir_, "[run]\n", "{}", report_meta());
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  // Commits stream (n, repeat, shard) with one model per entry of `accs` in `model_bins`.
  void add_stream(int n, int repeat, int shard, uint64_t draws, std::vector<uint64_t> hits, std::vector<int> stored,
                  const std::string& status, const std::vector<int>& model_bins = {},
                  const std::vector<double>& accs = {}, const std::vector<int>& classes = {}) {
    StreamState s;
    s.n = n;
    s.repeat = repeat;
    s.shard = shard;
    s.draws = draws;
    s.hits = std::move(hits);
    s.stored = std::move(stored);
    s.status = status;
    s.classes = classes;
    std::vector<StoredModel> models;
    for (size_t i = 0; i < model_bins.size(); ++i) {
      StoredModel m;
      m.n = n;
      m.repeat = repeat;
      m.shard = shard;
      m.draw = i;
      m.bin = model_bins[i];
      m.train_acc = 1;
      m.test_acc = accs[i];
      m.test_loss = 1 - accs[i];
      models.push_back(m);
    }
    store_->commit(s, models, std::vector<std::vector<float>>(models.size(), {0.5f, -0.5f}));
  }

  // n = 4: bin 0 filled by both repeats; bin 1 filled by repeat 1 only.
  // n = 8: no hits at all; repeat 0 out of time, repeat 1 out of budget.
  // n = 16: nothing yet.
  void add_typical_run() {
    add_stream(4, 0, 0, 1000, {3, 0}, {2, 0}, "budget", {0, 0}, {0.8, 0.9});
    add_stream(4, 1, 0, 500, {2, 2}, {2, 2}, "filled", {0, 0, 1, 1}, {0.7, 1.0, 0.6, 0.5});
    add_stream(8, 0, 0, 100, {0, 0}, {0, 0}, "time");
    add_stream(8, 1, 0, 300, {0, 0}, {0, 0}, "budget");
  }

  // A (store_, 3 repeats) and an SGD run B in DIR_sgd, returned: in cell
  // n = 4, bin 0, A's repeats hold {0.8, 0.9}, {0.6, 0.7}, {0.9} and B's
  // {0.5}, {0.7, 0.6}; no other cell has models, unless equal_differences:
  // then in cell n = 8, bin 1, A's repeats hold {0.9}, {0.8} and B's {0.8},
  // {0.7}. No training sets stored.
  fs::path add_versus_runs(bool equal_differences = false) {
    RunMeta meta = report_meta();
    meta.repeats = 3;
    store_.reset();
    fs::remove_all(dir_);
    store_ = std::make_unique<Store>(dir_, "[run]\n", "{}", meta);
    add_stream(4, 0, 0, 100, {2, 0}, {2, 0}, "filled", {0, 0}, {0.8, 0.9});
    add_stream(4, 1, 0, 100, {2, 0}, {2, 0}, "filled", {0, 0}, {0.6, 0.7});
    add_stream(4, 2, 0, 100, {1, 0}, {1, 0}, "budget", {0}, {0.9});
    const fs::path sgd_dir = dir_.string() + "_sgd";
    fs::remove_all(sgd_dir);
    meta.optimizer = "sgd";
    Store sgd(sgd_dir, "[optimizer]\nkind = \"sgd\"\nlr = 0.5\n", "{}", meta);
    auto commit = [&](int repeat, const std::vector<double>& accs, int n = 4, int bin = 0) {
      StreamState s;
      s.n = n;
      s.repeat = repeat;
      s.hits = {0, 0};
      s.stored = {0, 0};
      s.hits[bin] = accs.size();
      s.stored[bin] = static_cast<int>(accs.size());
      s.draws = 50;
      std::vector<StoredModel> models;
      for (size_t i = 0; i < accs.size(); ++i) {
        StoredModel m;
        m.n = n;
        m.repeat = repeat;
        m.draw = 7 + i;
        m.bin = bin;
        m.test_acc = accs[i];
        models.push_back(m);
      }
      sgd.commit(s, models, std::vector<std::vector<float>>(models.size(), {1.0f, 2.0f}));
    };
    commit(0, {0.5});
    commit(1, {0.7, 0.6});
    if (equal_differences) {
      add_stream(8, 0, 0, 10, {0, 1}, {0, 1}, "budget", {1}, {0.9});
      add_stream(8, 1, 0, 10, {0, 1}, {0, 1}, "budget", {1}, {0.8});
      commit(0, {0.8}, 8, 1);
      commit(1, {0.7}, 8, 1);
    }
    return sgd_dir;
  }

  // Writes the training-set file data/n{n}_r{repeat}_{part} of run directory `run`.
  static void write_training_file(const fs::path& run, int n, int repeat, const std::string& part, const std::string& bytes) {
    fs::create_directories(run / "data");
    std::ofstream(run / "data" / ("n" + std::to_string(n) + "_r" + std::to_string(repeat) + "_" + part),
                  std::ios::binary) << bytes;
  }

  fs::path dir_;
  std::unique_ptr<Store> store_;
};

}  // namespace

TEST_F(ReportTest, CellsInOrder) {
  add_typical_run();
  const auto cells = cell_reports(*store_);
  ASSERT_EQ(cells.size(), 6u);
  const std::vector<std::pair<int, int>> expected = {{4, 0}, {4, 1}, {8, 0}, {8, 1}, {16, 0}, {16, 1}};
  for (size_t i = 0; i < cells.size(); ++i) {
    EXPECT_EQ(std::make_pair(cells[i].n, cells[i].bin), expected[i]);
    EXPECT_EQ(cells[i].wanted, 4);
  }
  EXPECT_EQ(cells[1].loss_lo, 0.35);
  EXPECT_EQ(cells[1].loss_hi, 0.4);
}

TEST_F(ReportTest, FilledCellAggregatesRepeats) {
  add_typical_run();
  const CellReport c = cell_reports(*store_)[0];
  EXPECT_EQ(c.models, 4);
  EXPECT_TRUE(c.filled);
  EXPECT_EQ(c.status, "filled");
  EXPECT_EQ(c.draws, 1500u);
  EXPECT_EQ(c.hits, 5u);
  EXPECT_DOUBLE_EQ(c.rate, 5.0 / 1500.0);
  EXPECT_DOUBLE_EQ(c.log10_rate, std::log10(5.0 / 1500.0));
  const Interval ci = wilson_interval(5, 1500);
  EXPECT_EQ(c.rate_ci.lo, ci.lo);
  EXPECT_EQ(c.rate_ci.hi, ci.hi);
  const Summary acc = summarize({0.8, 0.9, 0.7, 1.0});
  EXPECT_EQ(c.test_acc.count, 4);
  EXPECT_DOUBLE_EQ(c.test_acc.mean, acc.mean);
  EXPECT_DOUBLE_EQ(c.test_acc.std, acc.std);
  // Both repeats' models average 0.85: with the repeat as the unit the interval is [0.85, 0.85].
  EXPECT_EQ(c.test_acc_by_repeat.groups, 2);
  EXPECT_NEAR(c.test_acc.ci95.lo, 0.85, 1e-12);
  EXPECT_NEAR(c.test_acc.ci95.hi, 0.85, 1e-12);
  EXPECT_EQ(c.test_acc.min, 0.7);
  EXPECT_EQ(c.test_acc.max, 1.0);
  EXPECT_NEAR(c.test_loss.mean, 0.15, 1e-12);
}

TEST_F(ReportTest, UnfilledCellTakesStatusOfUnfilledRepeat) {
  add_typical_run();
  const CellReport c = cell_reports(*store_)[1];  // repeat 0 stopped by its budget with 0 of 2 models
  EXPECT_EQ(c.models, 2);
  EXPECT_FALSE(c.filled);
  EXPECT_EQ(c.status, "budget");
  EXPECT_EQ(c.hits, 2u);
  EXPECT_DOUBLE_EQ(c.log10_rate, std::log10(2.0 / 1500.0));
}

TEST_F(ReportTest, NoHitsGivesUpperBound) {
  add_typical_run();
  const CellReport c = cell_reports(*store_)[2];
  EXPECT_EQ(c.models, 0);
  EXPECT_FALSE(c.filled);
  EXPECT_EQ(c.status, "time");  // time outranks budget
  EXPECT_EQ(c.draws, 400u);
  EXPECT_EQ(c.hits, 0u);
  EXPECT_EQ(c.rate, 0.0);
  EXPECT_EQ(c.rate_ci.lo, 0.0);
  EXPECT_NEAR(c.rate_ci.hi, wilson_interval(0, 400).hi, 1e-15);
  EXPECT_DOUBLE_EQ(c.log10_rate, std::log10(wilson_interval(0, 400).hi));
  EXPECT_EQ(c.test_acc.count, 0);
}

TEST_F(ReportTest, NoDrawsYet) {
  add_typical_run();
  const CellReport c = cell_reports(*store_)[4];
  EXPECT_EQ(c.status, "pending");
  EXPECT_FALSE(c.filled);
  EXPECT_EQ(c.draws, 0u);
  EXPECT_TRUE(std::isnan(c.log10_rate));
  EXPECT_EQ(c.rate_ci.lo, 0.0);
  EXPECT_EQ(c.rate_ci.hi, 1.0);
}

TEST_F(ReportTest, RepeatWithoutStateIsNotFilled) {
  add_stream(4, 0, 0, 1000, {5, 5}, {2, 2}, "filled", {0, 0, 1, 1}, {1, 1, 1, 1});
  const CellReport c = cell_reports(*store_)[0];
  EXPECT_FALSE(c.filled);
  EXPECT_EQ(c.status, "pending");
  EXPECT_EQ(c.models, 2);
}

TEST_F(ReportTest, ShardsOfARepeatAddUp) {
  // 8 tasks over 6 streams: each stream in 2 shards of target 1.
  store_.reset();
  fs::remove_all(dir_);
  RunMeta meta = report_meta();
  meta.shards = 8;
  store_ = std::make_unique<Store>(dir_, "[run]\n", "{}", meta);
  add_stream(4, 0, 0, 100, {1, 0}, {1, 0}, "budget", {0}, {0.9});
  add_stream(4, 0, 1, 100, {1, 0}, {1, 0}, "budget", {0}, {0.8});
  add_stream(4, 1, 0, 100, {1, 0}, {1, 0}, "running", {0}, {0.7});
  add_stream(4, 1, 1, 100, {2, 0}, {1, 0}, "running", {0}, {0.6});
  const CellReport c = cell_reports(*store_)[0];
  EXPECT_TRUE(c.filled);
  EXPECT_EQ(c.models, 4);
  EXPECT_EQ(c.wanted, 4);
  EXPECT_EQ(c.draws, 400u);
  EXPECT_EQ(c.hits, 5u);
  EXPECT_EQ(cell_reports(*store_)[1].status, "running");  // bin 1: shards still at work
}

TEST_F(ReportTest, StatusOfAStreamWhoseRunIsGoneIsInterrupted) {
  add_stream(4, 1, 0, 100, {2, 2}, {2, 2}, "filled", {0, 0, 1, 1}, {1, 1, 1, 1});
  add_stream(4, 0, 0, 100, {1, 0}, {1, 0}, "running", {0}, {0.9});
  EXPECT_EQ(cell_reports(*store_)[1].status, "running");  // its writer, this process, is alive
  // The writer becomes a process that has exited.
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "ledger.sqlite").c_str(), &db), SQLITE_OK);
  const std::string sql = "UPDATE meta SET value = json_set(value, '$.pid', " + std::to_string(child) + ") WHERE key = 'writer'";
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(cell_reports(*Store::open_existing(dir_))[1].status, "interrupted");
  // Stopped by a signal or the time limit, the stream says so itself.
  add_stream(4, 0, 0, 200, {1, 0}, {1, 0}, "time", {0}, {0.9});
  EXPECT_EQ(cell_reports(*store_)[1].status, "time");
}

TEST_F(ReportTest, CsvHasOneRowPerCell) {
  add_typical_run();
  const std::string csv = format_report(*store_, ReportFormat::csv);
  std::istringstream in(csv);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_EQ(lines[0],
            "n,bin,loss_lo,loss_hi,models,wanted,filled,status,test_acc_mean,test_acc_std,test_acc_ci_lo,"
            "test_acc_ci_hi,test_acc_min,test_acc_max,test_loss_mean,draws,hits,rate,rate_lo,rate_hi,log10_rate,"
            "log10_rate_is_upper_bound,test_acc_se,test_acc_repeats,classes,optimizer,optimizer_title,failed");
  for (const std::string& line : lines) EXPECT_EQ(std::count(line.begin(), line.end(), ','), 27) << line;
  // Guess and check: no optimization to fail (an empty field).
  EXPECT_EQ(lines[1].substr(lines[1].size() - 23), ",guess,guess and check,") << lines[1];
  EXPECT_EQ(lines[1].rfind("4,0,0.3,0.35,4,4,1,filled,", 0), 0u) << lines[1];
  // n=8 bin 0: no models, so no test metrics; the rate is an upper bound.
  EXPECT_EQ(lines[3].rfind("8,0,0.3,0.35,0,4,0,time,,,,,,,,400,0,0,0,", 0), 0u) << lines[3];
  const std::string guess = ",guess,guess and check,";  // the optimizer; guess and check fails no draw
  EXPECT_EQ(lines[3].substr(lines[3].size() - 29), ",1,,0," + guess) << lines[3];
  EXPECT_EQ(lines[5].substr(lines[5].size() - 30), ",,0,,0," + guess) << lines[5];  // n=16: no draws, no log10 rate
}

TEST_F(ReportTest, JsonParsesWithAllFields) {
  add_typical_run();
  const auto doc = nlohmann::json::parse(format_report(*store_, ReportFormat::json));
  ASSERT_TRUE(doc.contains("cells"));
  ASSERT_EQ(doc["cells"].size(), 6u);
  for (const char* key : {"n", "bin", "loss_lo", "loss_hi", "models", "wanted", "filled", "status", "test_acc_mean",
                          "test_acc_std", "test_acc_ci_lo", "test_acc_ci_hi", "test_acc_min", "test_acc_max",
                          "test_loss_mean", "draws", "hits", "rate", "rate_lo", "rate_hi", "log10_rate",
                          "log10_rate_is_upper_bound"})
    EXPECT_TRUE(doc["cells"][0].contains(key)) << key;
  EXPECT_EQ(doc["cells"][0]["filled"], true);
  EXPECT_EQ(doc["cells"][0]["draws"], 1500);
  EXPECT_EQ(doc["cells"][2]["log10_rate_is_upper_bound"], true);
  EXPECT_TRUE(doc["cells"][2]["test_acc_mean"].is_null());
  EXPECT_TRUE(doc["cells"][4]["log10_rate"].is_null());
  EXPECT_EQ(doc["meta"]["n_params"], 2);
  EXPECT_EQ(doc["meta"]["ns"], (std::vector<int>{4, 8, 16}));
  EXPECT_EQ(doc["meta"]["bin_edges"], (std::vector<double>{0.3, 0.35, 0.4}));
}

TEST_F(ReportTest, TableShowsEveryCell) {
  add_typical_run();
  const std::string table = format_report(*store_, ReportFormat::table);
  EXPECT_NE(table.find("(0.30, 0.35]"), std::string::npos) << table;
  EXPECT_NE(table.find("4/4"), std::string::npos) << table;
  EXPECT_NE(table.find("0.8500 ± 0.1291"), std::string::npos) << table;
  EXPECT_NE(table.find("<-2."), std::string::npos) << table;  // n=8: log10 of the Wilson upper end
  EXPECT_NE(table.find("upper bound"), std::string::npos) << table;
  // Header, one line per cell, all aligned: each cell row starts with its n.
  std::istringstream in(table);
  int rows = 0;
  for (std::string line; std::getline(in, line);) rows += line.rfind("4 ", 0) == 0 || line.rfind("8 ", 0) == 0 ||
                                                           line.rfind("16 ", 0) == 0;
  EXPECT_EQ(rows, 6);
}

TEST_F(ReportTest, ReadOnlyStoreReports) {
  add_typical_run();
  const auto reader = Store::open_existing(dir_);
  EXPECT_EQ(format_report(*reader, ReportFormat::csv), format_report(*store_, ReportFormat::csv));
}

TEST_F(ReportTest, ATasksDirectoryReportsItsOwnCells) {
  // Task 0 of 8 over 6 streams (2 shards each): units (4, 0, 0) and (16, 0, 0), target 1 each.
  store_.reset();
  fs::remove_all(dir_);
  RunMeta meta = report_meta();
  meta.shards = 8;
  meta.shard = 0;
  store_ = std::make_unique<Store>(dir_, "[run]\n", "{}", meta);
  add_stream(4, 0, 0, 100, {1, 1}, {1, 1}, "filled", {0, 1}, {0.9, 0.8});
  const auto cells = cell_reports(*store_);
  ASSERT_EQ(cells.size(), 4u);  // no cell of n = 8: other tasks run it
  EXPECT_EQ(cells[0].n, 4);
  EXPECT_EQ(cells[0].wanted, 1);
  EXPECT_TRUE(cells[0].filled);
  EXPECT_EQ(cells[2].n, 16);
  EXPECT_EQ(cells[2].status, "pending");
  EXPECT_NE(format_report(*store_, ReportFormat::table).find("task 0 of 8"), std::string::npos);
}

// Two repeats of 2 models each: 0.8, 0.9 and 0.6, 0.7. By hand: mean 0.75, the
// repeats' summed deviations 0.2 and -0.2, se^2 = 2/1 * 0.08 / 16 = 0.01.
TEST_F(ReportTest, IntervalTakesTheRepeatAsTheUnit) {
  add_stream(4, 0, 0, 100, {2, 0}, {2, 0}, "filled", {0, 0}, {0.8, 0.9});
  add_stream(4, 1, 0, 100, {2, 0}, {2, 0}, "filled", {0, 0}, {0.6, 0.7});
  const CellReport c = cell_reports(*store_)[0];
  EXPECT_NEAR(c.test_acc.mean, 0.75, 1e-15);
  EXPECT_NEAR(c.test_acc_by_repeat.se, 0.1, 1e-15);
  EXPECT_EQ(c.test_acc_by_repeat.groups, 2);
  EXPECT_NEAR(c.test_acc_by_repeat.ci95.lo, 0.75 - 12.706 * 0.1, 1e-12);  // t_1 = 12.706
  EXPECT_EQ(c.test_acc.ci95.lo, 0.0);  // clipped to [0, 1]
  EXPECT_EQ(c.test_acc.ci95.hi, 1.0);
  const auto doc = nlohmann::json::parse(format_report(*store_, ReportFormat::json));
  EXPECT_NEAR(doc["cells"][0]["test_acc_se"].get<double>(), 0.1, 1e-15);
  EXPECT_EQ(doc["cells"][0]["test_acc_repeats"], 2);
}

TEST_F(ReportTest, OneRepeatIsNotEstimable) {
  add_typical_run();  // n = 4, bin 1: two models, both of repeat 1
  const CellReport c = cell_reports(*store_)[1];
  EXPECT_EQ(c.models, 2);
  EXPECT_EQ(c.test_acc_by_repeat.groups, 1);
  EXPECT_TRUE(std::isnan(c.test_acc.ci95.lo));
  EXPECT_TRUE(std::isnan(c.test_acc.ci95.hi));
  const auto doc = nlohmann::json::parse(format_report(*store_, ReportFormat::json));
  EXPECT_TRUE(doc["cells"][1]["test_acc_ci_lo"].is_null());
  EXPECT_TRUE(doc["cells"][1]["test_acc_se"].is_null());
  const std::string table = format_report(*store_, ReportFormat::table);
  const size_t row = table.find("0.5500 ± 0.0707");
  ASSERT_NE(row, std::string::npos) << table;
  EXPECT_NE(table.substr(row, table.find('\n', row) - row).find("not estimable"), std::string::npos) << table;
}

TEST_F(ReportTest, PerRepeatBreakdown) {
  add_typical_run();
  const std::string csv = format_repeats(*store_, ReportFormat::csv);
  std::istringstream in(csv);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 13u);  // 6 cells x 2 repeats
  EXPECT_EQ(lines[0], "n,bin,loss_lo,loss_hi,repeat,classes,models,status,test_acc_mean,test_acc_std,test_acc_min,"
                      "test_acc_max,test_loss_mean,draws,hits,rate,failed");
  EXPECT_EQ(lines[1].rfind("4,0,0.3,0.35,0,,2,filled,0.8500000000000001,", 0), 0u) << lines[1];
  EXPECT_EQ(lines[3], "4,1,0.35,0.4,0,,0,budget,,,,,,1000,0,0,") << lines[3];  // repeat 0 found nothing in bin 1
  EXPECT_EQ(lines[4].rfind("4,1,0.35,0.4,1,,2,filled,0.55,", 0), 0u) << lines[4];
  EXPECT_EQ(lines[12], "16,1,0.35,0.4,1,,0,pending,,,,,,0,0,0,") << lines[12];
  const auto doc = nlohmann::json::parse(format_repeats(*store_, ReportFormat::json));
  const auto& r = doc["cells"][1]["repeats"];
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0]["models"], 0);
  EXPECT_TRUE(r[0]["test_acc_mean"].is_null());
  EXPECT_EQ(r[1]["test_acc_max"], 0.6);
  EXPECT_EQ(r[1]["draws"], 500);
  const std::string table = format_repeats(*store_, ReportFormat::table);
  EXPECT_NE(table.find("pending"), std::string::npos) << table;
}

TEST_F(ReportTest, ClassesOfEveryTrainingSet) {
  add_stream(4, 0, 0, 100, {1, 0}, {1, 0}, "budget", {0}, {0.9}, {3, 7});
  add_stream(4, 1, 0, 100, {1, 0}, {1, 0}, "budget", {0}, {0.8}, {0, 5});
  add_stream(8, 0, 0, 100, {0, 0}, {0, 0}, "budget", {}, {}, {1, 2});
  std::string table = format_report(*store_, ReportFormat::table);
  EXPECT_NE(table.find("classes (original labels) of each training set, by repeat:\n  n=4:  3,7  0,5\n  n=8:  1,2  -\n"),
            std::string::npos) << table;
  std::string csv = format_report(*store_, ReportFormat::csv);
  EXPECT_NE(csv.find(",3 7;0 5,guess,"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",1 2,guess,"), std::string::npos) << csv;  // n = 8: one repeat started
  auto doc = nlohmann::json::parse(format_report(*store_, ReportFormat::json));
  EXPECT_EQ(doc["cells"][0]["classes"], nlohmann::json::parse("[[3, 7], [0, 5]]"));
  EXPECT_EQ(doc["cells"][0]["repeats"][1]["classes"], nlohmann::json::parse("[0, 5]"));
  EXPECT_NE(format_repeats(*store_, ReportFormat::csv).find("4,0,0.3,0.35,1,0 5,1,"), std::string::npos);

  // The same classes everywhere: one line, one list.
  add_stream(4, 1, 0, 100, {1, 0}, {1, 0}, "budget", {0}, {0.8}, {3, 7});
  add_stream(8, 0, 0, 100, {0, 0}, {0, 0}, "budget", {}, {}, {3, 7});
  table = format_report(*store_, ReportFormat::table);
  EXPECT_NE(table.find("classes 3, 7 (original labels) in every training set\n"), std::string::npos) << table;
  doc = nlohmann::json::parse(format_report(*store_, ReportFormat::json));
  EXPECT_EQ(doc["cells"][0]["classes"], nlohmann::json::parse("[[3, 7]]"));
}

// --versus on two constructed ledgers, against the hand computation of
// StatsMeanDifference.WelchSatterthwaiteByHand (cell n = 4, bin 0).
TEST_F(ReportTest, VersusSetsTwoRunsSideBySideWithTheirDifference) {
  const fs::path sgd_dir = add_versus_runs();
  const auto versus = Store::open_existing(sgd_dir);
  EXPECT_TRUE(fs::exists(sgd_dir / "weights" / "n4_r1_s0_d8_b0.npy"));  // SGD models are named by bin too
  const std::vector<VersusCell> cells = compare_runs(*store_, *versus).cells;
  ASSERT_EQ(cells.size(), 6u);
  const double va = 1.5 * 0.1016 / 25, vb = 2.0 * 0.02 / 9, se = std::sqrt(va + vb);
  EXPECT_NEAR(cells[0].test_acc.mean, 0.18, 1e-15);
  EXPECT_NEAR(cells[0].test_acc.se, se, 1e-15);
  EXPECT_NEAR(cells[0].test_acc.df, 2.8983, 1e-4);
  EXPECT_NEAR(cells[0].test_acc.ci95.lo, 0.18 - 4.303 * se, 1e-12);
  EXPECT_EQ(cells[0].run.models, 5);
  EXPECT_EQ(cells[0].versus.models, 3);
  EXPECT_TRUE(std::isnan(cells[1].test_acc.mean));  // no models on either side

  const auto doc = nlohmann::json::parse(format_versus(*store_, *versus, ReportFormat::json));
  EXPECT_EQ(doc["run"]["optimizer"], "guess");
  EXPECT_EQ(doc["versus"]["optimizer"], "sgd");
  EXPECT_NEAR(doc["cells"][0]["difference"]["ci_hi"].get<double>(), 0.18 + 4.303 * se, 1e-12);
  EXPECT_EQ(doc["cells"][0]["versus"]["repeats"], 2);
  EXPECT_TRUE(doc["cells"][1]["difference"]["test_acc"].is_null());

  const std::string csv = format_versus(*store_, *versus, ReportFormat::csv);
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "n,bin,loss_lo,loss_hi,run_models,run_repeats,run_status,run_test_acc_mean,run_test_acc_se,run_test_acc_ci_lo,"
            "run_test_acc_ci_hi,run_optimizer,run_failed,versus_models,versus_repeats,versus_status,versus_test_acc_mean,"
            "versus_test_acc_se,versus_test_acc_ci_lo,versus_test_acc_ci_hi,versus_optimizer,versus_failed,difference_test_acc,difference_se,difference_df,"
            "difference_ci_lo,difference_ci_hi,paired_test_acc,paired_se,paired_df,paired_ci_lo,paired_ci_hi,paired_sets");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7);
  // Neither run stores its training sets: no paired difference, its fields empty.
  EXPECT_FALSE(cells[0].paired_available);
  EXPECT_NE(csv.find(",,,,,,\n"), std::string::npos) << csv;
  EXPECT_TRUE(doc["cells"][0]["paired"]["test_acc"].is_null());
  EXPECT_TRUE(doc["cells"][0]["paired"]["sets"].is_null());
  EXPECT_NE(doc["unpaired_reason"].get<std::string>().find(
                "paired: not shown, the training set of n=4 repeat 0 is not known to be the same: neither run stores it"),
            std::string::npos);

  const std::string table = format_versus(*store_, *versus, ReportFormat::table);
  EXPECT_NE(table.find("B = " + sgd_dir.string() + ": SGD from each draw (lr 0.5"), std::string::npos) << table;
  EXPECT_NE(table.find("0.7800 ["), std::string::npos) << table;
  char diff[64];
  std::snprintf(diff, sizeof diff, "+0.1800 [%+.4f, %+.4f]  2.9", 0.18 - 4.303 * se, 0.18 + 4.303 * se);
  EXPECT_NE(table.find(diff), std::string::npos) << table;
  EXPECT_NE(table.find(doc["unpaired_reason"].get<std::string>() + "\n"), std::string::npos) << table;
  fs::remove_all(sgd_dir);
}

// The same runs with byte-identical training sets for the repeats with
// models in both (n = 4, repeats 0 and 1; repeat 2 has models in A alone and
// needs none). Cell n = 4, bin 0 by hand: A's repeat means 0.85, 0.65, B's
// 0.5, 0.65, so d = 0.35, 0.00: mean 0.175, sd = 0.35 / sqrt(2), se = sd /
// sqrt(2) = 0.175, df 1, t_1 = 12.706: [0.175 - 2.22355, 0.175 + 2.22355].
//
// Cell n = 8, bin 1 gets d = 0.1 on both repeats (0.9 - 0.8, 0.8 - 0.7): se
// 0, shown as not estimable rather than as a zero-width interval.
TEST_F(ReportTest, VersusPairsTheRunsByTrainingSetWhenTheyShareThem) {
  const fs::path sgd_dir = add_versus_runs(true);
  for (const fs::path& run : {dir_, sgd_dir})
    for (int n : {4, 8})
      for (int repeat : {0, 1}) {
        write_training_file(run, n, repeat, "train_x.npy", "x of n " + std::to_string(n) + " repeat " + std::to_string(repeat));
        write_training_file(run, n, repeat, "train_y.npy", "y of n " + std::to_string(n) + " repeat " + std::to_string(repeat));
      }
  const auto versus = Store::open_existing(sgd_dir);
  EXPECT_EQ(compare_runs(*store_, *versus).unpaired, "");
  const std::vector<VersusCell> cells = compare_runs(*store_, *versus).cells;
  ASSERT_EQ(cells.size(), 6u);
  const VersusCell& c = cells[0];
  EXPECT_TRUE(c.paired_available);
  EXPECT_EQ(c.paired_sets, 2);
  EXPECT_NEAR(c.paired.mean, 0.175, 1e-15);
  EXPECT_NEAR(c.paired.se, 0.175, 1e-15);
  EXPECT_EQ(c.paired.df, 1.0);
  EXPECT_NEAR(c.paired.ci95.lo, 0.175 - 12.706 * 0.175, 1e-12);
  EXPECT_NEAR(c.paired.ci95.hi, 0.175 + 12.706 * 0.175, 1e-12);
  EXPECT_NEAR(c.test_acc.mean, 0.18, 1e-15);  // the Welch difference is unchanged: all of A's models
  EXPECT_EQ(cells[1].paired_sets, 0);          // no models: no pairs
  EXPECT_TRUE(std::isnan(cells[1].paired.mean));
  EXPECT_NEAR(cells[3].paired.mean, 0.1, 1e-15);  // n = 8, bin 1: equal differences
  EXPECT_EQ(cells[3].paired.se, 0.0);
  EXPECT_TRUE(std::isnan(cells[3].paired.ci95.lo));

  const auto doc = nlohmann::json::parse(format_versus(*store_, *versus, ReportFormat::json));
  EXPECT_TRUE(doc["unpaired_reason"].is_null());
  EXPECT_NEAR(doc["cells"][0]["paired"]["test_acc"].get<double>(), 0.175, 1e-15);
  EXPECT_NEAR(doc["cells"][0]["paired"]["ci_hi"].get<double>(), 0.175 + 12.706 * 0.175, 1e-12);
  EXPECT_EQ(doc["cells"][0]["paired"]["df"], 1.0);
  EXPECT_EQ(doc["cells"][0]["paired"]["sets"], 2);
  EXPECT_EQ(doc["cells"][1]["paired"]["sets"], 0);
  const std::string csv = format_versus(*store_, *versus, ReportFormat::csv);
  auto row = csv_row(csv, 1);
  EXPECT_NEAR(std::stod(row["paired_test_acc"]), 0.175, 1e-15) << csv;
  EXPECT_NEAR(std::stod(row["paired_se"]), 0.175, 1e-15);
  EXPECT_EQ(row["paired_df"], "1");
  EXPECT_NEAR(std::stod(row["paired_ci_lo"]), 0.175 - 12.706 * 0.175, 1e-12);
  EXPECT_NEAR(std::stod(row["paired_ci_hi"]), 0.175 + 12.706 * 0.175, 1e-12);
  EXPECT_EQ(row["paired_sets"], "2");
  row = csv_row(csv, 4);  // n = 8, bin 1: se 0, no interval
  EXPECT_EQ(row["paired_se"], "0");
  EXPECT_EQ(row["paired_ci_lo"], "");
  EXPECT_EQ(row["paired_sets"], "2");

  const std::string table = format_versus(*store_, *versus, ReportFormat::table);
  char paired[64];
  // -2.04855 to 4 decimals is a tie: print what was computed (checked above)
  std::snprintf(paired, sizeof paired, " 2.9 +0.1750 [%+.4f, %+.4f] 2", c.paired.ci95.lo, c.paired.ci95.hi);
  EXPECT_TRUE(squeezed_line(table, "+0.1800 [").ends_with(paired)) << table;
  EXPECT_TRUE(squeezed_line(table, "+0.1000 [").ends_with(" +0.1000 (not estimable) 2")) << table;
  EXPECT_NE(table.find("paired A - B: paired by training set"), std::string::npos) << table;
  EXPECT_EQ(table.find("paired: not shown"), std::string::npos) << table;
  fs::remove_all(sgd_dir);
}

// The pooled estimate of the same runs by hand: the sets' d (the mean over
// their cells with models in both) are n = 4: 0.35, 0.00 (cell n = 4, bin 0
// only); n = 8: 0.1, 0.1 (cell n = 8, bin 1 only). All sizes: mean 0.1375,
// sd = sqrt(0.066875 / 3), se = sd / 2, t_3 = 3.182 (stats.cpp's table).
TEST_F(ReportTest, VersusPoolsThePairedDifferencesOverTrainingSets) {
  const fs::path sgd_dir = add_versus_runs(true);
  for (const fs::path& run : {dir_, sgd_dir})
    for (int n : {4, 8})
      for (int repeat : {0, 1})
        for (const char* part : {"train_x.npy", "train_y.npy"})
          write_training_file(run, n, repeat, part, std::string(part) + std::to_string(n) + "/" + std::to_string(repeat));
  const auto versus = Store::open_existing(sgd_dir);
  const Versus result = compare_runs(*store_, *versus);
  ASSERT_EQ(result.pooled.size(), 4u);  // n = 4, 8, 16, all
  const PooledDifference &n4 = result.pooled[0], &n8 = result.pooled[1], &n16 = result.pooled[2], &all = result.pooled[3];
  EXPECT_EQ(n4.n, 4);
  EXPECT_EQ(n4.sets, 2);
  EXPECT_EQ(n4.cells, 1);
  EXPECT_NEAR(n4.paired.mean, 0.175, 1e-15);
  EXPECT_NEAR(n4.paired.se, 0.175, 1e-15);
  EXPECT_NEAR(n8.paired.mean, 0.1, 1e-15);
  EXPECT_TRUE(std::isnan(n8.paired.ci95.lo));  // equal differences: not estimable
  EXPECT_EQ(n16.sets, 0);
  EXPECT_TRUE(std::isnan(n16.paired.mean));
  const double se = std::sqrt(0.066875 / 3) / 2;
  EXPECT_EQ(all.n, 0);
  EXPECT_EQ(all.sets, 4);
  EXPECT_EQ(all.cells, 2);
  EXPECT_NEAR(all.paired.mean, 0.1375, 1e-15);
  EXPECT_NEAR(all.paired.se, se, 1e-15);
  EXPECT_EQ(all.paired.df, 3.0);
  EXPECT_NEAR(all.paired.ci95.lo, 0.1375 - 3.182 * se, 1e-12);
  EXPECT_EQ(all.cells_estimable, 1);  // n = 4, bin 0; n = 8, bin 1 has se 0
  EXPECT_EQ(all.cells_excluding_zero, 0);

  const auto doc = nlohmann::json::parse(format_versus(*store_, *versus, ReportFormat::json));
  EXPECT_TRUE(doc["pooled"][3]["n"].is_null());
  EXPECT_NEAR(doc["pooled"][3]["paired"]["test_acc"].get<double>(), 0.1375, 1e-15);
  EXPECT_EQ(doc["pooled"][3]["sets"], 4);
  EXPECT_EQ(doc["pooled"][3]["cells_estimable"], 1);
  const std::string csv = format_versus(*store_, *versus, ReportFormat::csv);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 6 + 4);
  auto row = csv_row(csv, 10);  // all sizes: n and bin empty, paired_ its own
  EXPECT_EQ(row["n"], "");
  EXPECT_EQ(row["bin"], "");
  EXPECT_EQ(row["run_models"], "");
  EXPECT_NEAR(std::stod(row["paired_test_acc"]), 0.1375, 1e-15);
  EXPECT_EQ(row["paired_sets"], "4");
  EXPECT_EQ(csv_row(csv, 7)["n"], "4");
  const std::string table = format_versus(*store_, *versus, ReportFormat::table);
  char pooled[64];
  std::snprintf(pooled, sizeof pooled, "all 4 2 +0.1375 [%+.4f, %+.4f] 3", all.paired.ci95.lo, all.paired.ci95.hi);
  EXPECT_EQ(squeezed_line(table, "+0.1375 ["), pooled) << table;
  EXPECT_NE(table.find("Multiplicity: 0 of 1 cells with a paired interval exclude zero"), std::string::npos) << table;
  EXPECT_NE(table.find("chance alone would give about 0.1 (5% of 1;"), std::string::npos) << table;

  // A training set stored in neither run is not known to be the same.
  for (const fs::path& run : {dir_, sgd_dir})
    for (const char* part : {"n4_r0_train_x.npy", "n4_r0_train_y.npy"}) fs::remove(run / "data" / part);
  EXPECT_NE(compare_runs(*store_, *versus).unpaired.find("n=4 repeat 0 is not known to be the same: neither run stores it"),
            std::string::npos);
  fs::remove_all(sgd_dir);
}

// A training set that differs, or is stored in one run only: no paired
// difference, and the notes name the first such stream.
TEST_F(ReportTest, VersusPairsNothingWhenATrainingSetIsNotTheSame) {
  const fs::path sgd_dir = add_versus_runs();
  for (const fs::path& run : {dir_, sgd_dir})
    for (int repeat : {0, 1}) write_training_file(run, 4, repeat, "train_x.npy", "x of repeat " + std::to_string(repeat));
  write_training_file(dir_, 4, 1, "train_rows.npy", "rows");
  write_training_file(sgd_dir, 4, 1, "train_rows.npy", "other rows");
  const auto versus = Store::open_existing(sgd_dir);
  const std::string differ = "paired: not shown, the runs' training sets differ (n=4 repeat 1: data/n4_r1_train_rows.npy)";
  EXPECT_EQ(compare_runs(*store_, *versus).unpaired, differ);
  const std::vector<VersusCell> cells = compare_runs(*store_, *versus).cells;
  EXPECT_FALSE(cells[0].paired_available);
  EXPECT_TRUE(std::isnan(cells[0].paired.mean));
  EXPECT_TRUE(std::isnan(cells[0].paired.ci95.lo));
  const std::string table = format_versus(*store_, *versus, ReportFormat::table);
  EXPECT_NE(table.find(differ + "\n"), std::string::npos) << table;
  EXPECT_EQ(table.find("paired by training set"), std::string::npos) << table;
  EXPECT_TRUE(squeezed_line(table, "+0.1800 [").ends_with(" 2.9 - -")) << table;  // after the Welch df

  fs::remove(sgd_dir / "data" / "n4_r1_train_rows.npy");
  EXPECT_EQ(compare_runs(*store_, *versus).unpaired,
            "paired: not shown, the training set of n=4 repeat 1 is not known to be the same: " + sgd_dir.string() +
                " has no data/n4_r1_train_rows.npy");
  fs::remove(dir_ / "data" / "n4_r1_train_rows.npy");
  EXPECT_EQ(compare_runs(*store_, *versus).unpaired, "");
  fs::remove_all(sgd_dir);
}

TEST_F(ReportTest, VersusRefusesRunsOfOtherCells) {
  const fs::path other = dir_.string() + "_other";
  fs::remove_all(other);
  RunMeta meta = report_meta();
  meta.bin_edges = {0.3, 0.4};
  { Store(other, "[run]\n", "{}", meta); }
  EXPECT_ERROR_MENTIONS(compare_runs(*store_, *Store::open_existing(other)),
                        "has bin edges [0.3,0.35,0.4] but " + other.string() + " has [0.3,0.4]; only cells of the same bins");
  fs::remove_all(other);
  meta = report_meta();
  meta.ns = {32, 2};
  { Store(other, "[run]\n", "{}", meta); }
  EXPECT_ERROR_MENTIONS(compare_runs(*store_, *Store::open_existing(other)),
                        "has sizes n [4,8,16] but " + other.string() + " has [2,32]; no size n in common");
  fs::remove_all(other);
}

TEST_F(ReportTest, VersusComparesTheSizesBothRunsHave) {
  const fs::path other = dir_.string() + "_other";
  fs::remove_all(other);
  RunMeta meta = report_meta();
  meta.ns = {32, 16, 4};
  { Store(other, "[run]\n", "{}", meta); }
  const auto versus = Store::open_existing(other);
  const Versus v = compare_runs(*store_, *versus);
  std::set<int> compared;
  for (const VersusCell& c : v.cells) compared.insert(c.run.n);
  EXPECT_EQ(compared, (std::set<int>{4, 16}));
  EXPECT_EQ(v.cells.size(), 2u * 2u);  // 2 bins each
  EXPECT_EQ(v.sizes_only_in_run, std::vector<int>{8});
  EXPECT_EQ(v.sizes_only_in_versus, std::vector<int>{32});
  const std::string table = format_versus(*store_, *versus, ReportFormat::table);
  EXPECT_NE(table.find("Not compared: n = 8, only in A.\nNot compared: n = 32, only in B.\n"), std::string::npos)
      << table;
  const auto json = nlohmann::json::parse(format_versus(*store_, *versus, ReportFormat::json));
  EXPECT_EQ(json["sizes_only_in_run"], nlohmann::json::array({8}));
  EXPECT_EQ(json["sizes_only_in_versus"], nlohmann::json::array({32}));
  EXPECT_EQ(json["cells"].size(), 4u);
  // The same sizes: nothing left out.
  EXPECT_TRUE(compare_runs(*store_, *store_).sizes_only_in_run.empty());
  EXPECT_EQ(format_versus(*store_, *store_, ReportFormat::table).find("Not compared"), std::string::npos);
  fs::remove_all(other);
}

namespace {
class VersusRunTest : public gac::test::RunDirTest {
 protected:
  gac::test::Result run(const std::string& out, const std::vector<std::string>& sets) {
    std::vector<std::string> args = {"run", kink_config().string(), "-o", (dir_ / out).string(), "-q"};
    for (const std::string& s : sets) args.insert(args.end(), {"--set", s});
    return gac::test::run_gac(args);
  }
  nlohmann::json report(const std::vector<std::string>& args) {
    const gac::test::Result r = gac::test::run_gac(args);
    EXPECT_EQ(r.status, 0) << r.err;
    return nlohmann::json::parse(r.out);
  }
};
}  // namespace

// Two whole kink runs of one seed (targets 4 and 2) share every training set:
// each cell's paired difference is, by hand from the --per-repeat numbers, the
// mean of the repeats' differences d_r with se sd(d)/sqrt(k) and t_{k-1}. A
// run of another seed has other training sets: nothing paired, and the notes say so.
TEST_F(VersusRunTest, RunsOfOneSeedArePairedByTrainingSet) {
  ASSERT_EQ(run("a", {"run.target=4"}).status, 0);
  ASSERT_EQ(run("b", {"run.target=2"}).status, 0);
  const std::string a = (dir_ / "a").string(), b = (dir_ / "b").string();
  const auto ours = report({"report", a, "--per-repeat", "--json"})["cells"];
  const auto theirs = report({"report", b, "--per-repeat", "--json"})["cells"];
  const auto both = report({"report", a, "--versus", b, "--json"});
  EXPECT_TRUE(both["unpaired_reason"].is_null()) << both["unpaired_reason"];
  ASSERT_EQ(both["cells"].size(), 6u);
  int estimable = 0;
  for (size_t i = 0; i < 6; ++i) {
    std::vector<double> d;
    for (size_t r = 0; r < 2; ++r) {
      const auto &x = ours[i]["repeats"][r], &y = theirs[i]["repeats"][r];
      if (x["models"] > 0 && y["models"] > 0)
        d.push_back(x["test_acc_mean"].get<double>() - y["test_acc_mean"].get<double>());
    }
    const auto& p = both["cells"][i]["paired"];
    EXPECT_EQ(p["sets"], d.size());
    if (d.size() < 2) continue;
    const double mean = (d[0] + d[1]) / 2, se = std::abs(d[0] - d[1]) / 2;  // sd = |d0 - d1| / sqrt(2)
    EXPECT_NEAR(p["test_acc"].get<double>(), mean, 1e-12);
    if (se < 1e-12) continue;
    ++estimable;
    EXPECT_NEAR(p["se"].get<double>(), se, 1e-12);
    EXPECT_EQ(p["df"], 1.0);
    EXPECT_NEAR(p["ci_lo"].get<double>(), mean - 12.706 * se, 1e-12);
    EXPECT_NEAR(p["ci_hi"].get<double>(), mean + 12.706 * se, 1e-12);
  }
  EXPECT_GT(estimable, 0);
  const gac::test::Result csv = gac::test::run_gac({"report", a, "--versus", b, "--csv"});
  EXPECT_NE(csv.out.find(",paired_test_acc,paired_se,paired_df,paired_ci_lo,paired_ci_hi,paired_sets\n"),
            std::string::npos) << csv.out;
  const gac::test::Result table = gac::test::run_gac({"report", a, "--versus", b});
  EXPECT_TRUE(squeezed_line(table.out, "loss bin").ends_with(" df paired A - B [95% CI] sets")) << table.out;
  EXPECT_NE(table.out.find("paired A - B: paired by training set"), std::string::npos) << table.out;

  ASSERT_EQ(run("c", {"run.target=2", "run.seed=4"}).status, 0);
  const std::string c = (dir_ / "c").string();
  const std::string differ = "paired: not shown, the runs' training sets differ (n=4 repeat 0: data/n4_r0_train_x.npy)";
  const auto other = report({"report", a, "--versus", c, "--json"});
  EXPECT_EQ(other["unpaired_reason"], differ);
  for (const auto& cell : other["cells"]) {
    EXPECT_TRUE(cell["paired"]["test_acc"].is_null());
    EXPECT_TRUE(cell["paired"]["sets"].is_null());
    EXPECT_FALSE(cell["difference"]["test_acc"].is_null());  // the Welch difference stays
  }
  EXPECT_NE(gac::test::run_gac({"report", a, "--versus", c}).out.find(differ + "\n"), std::string::npos);
}
