// The run directory: create, commit, reopen; weights files numpy can read;
// and the refusals (different config, foreign directory, unwritable path).
#include <gtest/gtest.h>
#include <sched.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <filesystem>
#include <fstream>
#include <functional>

#include "gac/error.h"
#include "tests/test_util.h"
#include "gac/npy.h"
#include "gac/store.h"

using namespace gac;
using gac::test::slurp;
namespace fs = std::filesystem;

namespace {

const std::string kConfig = "[run]\nseed = 1\ntarget = 2\n";
const std::string kLayout = R"({"params": [{"name": "w", "shape": [3], "offset": 0}]})";

RunMeta test_meta() {
  RunMeta m;
  m.bin_edges = {0.3, 0.35, 0.4};
  m.target = 2;
  m.ns = {4, 8};
  m.repeats = 2;
  m.n_params = 3;
  return m;
}

StreamState test_state(int n, int repeat, int shard) {
  StreamState s;
  s.n = n;
  s.repeat = repeat;
  s.shard = shard;
  s.draws = (1ULL << 40) + 17;
  s.perfect = 9;
  s.hits = {5, 4};
  s.stored = {2, 1};
  s.status = "budget";
  s.seconds = 12.5;
  return s;
}

StoredModel test_model(int n, int repeat, int shard, uint64_t draw, int bin) {
  StoredModel m;
  m.n = n;
  m.repeat = repeat;
  m.shard = shard;
  m.draw = draw;
  m.bin = bin;
  m.train_loss = 0.31 + bin * 0.05;
  m.train_acc = 1.0;
  m.test_loss = 0.5;
  m.test_acc = 0.875;
  return m;
}

void expect_same_state(const StreamState& a, const StreamState& b) {
  EXPECT_EQ(a.n, b.n);
  EXPECT_EQ(a.repeat, b.repeat);
  EXPECT_EQ(a.shard, b.shard);
  EXPECT_EQ(a.draws, b.draws);
  EXPECT_EQ(a.perfect, b.perfect);
  EXPECT_EQ(a.hits, b.hits);
  EXPECT_EQ(a.stored, b.stored);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.seconds, b.seconds);
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("gac_store_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    dir_ = root_ / "run";
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<Store> make_store(const std::string& config = kConfig, const RunMeta& meta = test_meta()) {
    return std::make_unique<Store>(dir_, config, kLayout, meta);
  }

  // Commits two models (draws 7 and 3) with the state of stream (4, 1, 0).
  std::vector<StoredModel> commit_two(Store& store) {
    std::vector<StoredModel> models = {test_model(4, 1, 0, 7, 0), test_model(4, 1, 0, 3, 1)};
    store.commit(test_state(4, 1, 0), models, weights_);
    return models;
  }

  fs::path root_, dir_;
  const std::vector<std::vector<float>> weights_ = {{0.1f, -0.2f, 1e-7f}, {3.0f, -0.0f, 123.456f}};
};

}  // namespace

TEST_F(StoreTest, NewRunLaysOutDirectory) {
  auto store = make_store();
  EXPECT_TRUE(fs::is_regular_file(dir_ / "config.toml"));
  EXPECT_TRUE(fs::is_regular_file(dir_ / "layout.json"));
  EXPECT_TRUE(fs::is_regular_file(dir_ / "ledger.sqlite"));
  EXPECT_TRUE(fs::is_directory(dir_ / "weights"));
  EXPECT_FALSE(fs::exists(dir_ / "ledger.sqlite.tmp"));
  EXPECT_EQ(store->config_toml(), kConfig);
  EXPECT_EQ(store->dir(), dir_);
  EXPECT_EQ(store->meta().bin_edges, test_meta().bin_edges);
  EXPECT_FALSE(store->load_state(4, 0, 0).has_value());
  EXPECT_TRUE(store->states().empty());
  EXPECT_TRUE(store->models().empty());
}

TEST_F(StoreTest, CommitReopenRoundTrip) {
  std::vector<StoredModel> committed;
  {
    auto store = make_store();
    committed = commit_two(*store);
    EXPECT_EQ(committed[0].file, "weights/n4_r1_s0_d7.npy");
    EXPECT_EQ(committed[1].file, "weights/n4_r1_s0_d3.npy");
  }
  auto store = make_store();
  const RunMeta m = store->meta();
  EXPECT_EQ(m.ns, test_meta().ns);
  EXPECT_EQ(m.target, 2);
  EXPECT_EQ(m.repeats, 2);
  EXPECT_EQ(m.n_params, 3);

  const auto state = store->load_state(4, 1, 0);
  ASSERT_TRUE(state.has_value());
  expect_same_state(*state, test_state(4, 1, 0));
  EXPECT_FALSE(store->load_state(4, 0, 0).has_value());

  const auto models = store->models();
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].draw, 3u);  // ordered by draw
  EXPECT_EQ(models[1].draw, 7u);
  const StoredModel& a = models[1];
  const StoredModel& b = committed[0];
  EXPECT_EQ(std::tie(a.n, a.repeat, a.shard, a.draw, a.bin, a.file), std::tie(b.n, b.repeat, b.shard, b.draw, b.bin, b.file));
  EXPECT_EQ(std::tie(a.train_loss, a.train_acc, a.test_loss, a.test_acc),
            std::tie(b.train_loss, b.train_acc, b.test_loss, b.test_acc));
}

TEST_F(StoreTest, WeightsFilesHoldExactFloats) {
  auto store = make_store();
  const auto models = commit_two(*store);
  for (size_t i = 0; i < models.size(); ++i) {
    const NpyArray a = read_npy(dir_ / models[i].file);
    EXPECT_EQ(a.shape, (std::vector<int64_t>{3}));
    ASSERT_EQ(a.data.size(), 3u);
    for (size_t k = 0; k < 3; ++k) EXPECT_EQ(static_cast<float>(a.data[k]), weights_[i][k]);
  }
}

TEST_F(StoreTest, LaterCommitReplacesState) {
  auto store = make_store();
  commit_two(*store);
  StreamState s = test_state(4, 1, 0);
  s.draws += 1000;
  s.status = "filled";
  std::vector<StoredModel> none;
  store->commit(s, none, {});
  store->commit(test_state(8, 0, 2), none, {});
  const auto states = store->states();
  ASSERT_EQ(states.size(), 2u);
  expect_same_state(states[0], s);
  expect_same_state(states[1], test_state(8, 0, 2));
  EXPECT_EQ(store->models().size(), 2u);
}

TEST_F(StoreTest, CommitIsVisibleToOtherConnections) {
  auto writer = make_store();
  commit_two(*writer);
  // A reader opened while the writer is still open sees the state and its models together.
  auto reader = Store::open_existing(dir_);
  EXPECT_TRUE(reader->load_state(4, 1, 0).has_value());
  EXPECT_EQ(reader->models().size(), 2u);
  EXPECT_EQ(reader->meta().n_params, 3);
  EXPECT_EQ(reader->config_toml(), kConfig);
}

TEST_F(StoreTest, BadCommitChangesNothing) {
  auto store = make_store();
  std::vector<StoredModel> models = {test_model(4, 1, 0, 7, 0)};
  EXPECT_ERROR_MENTIONS(store->commit(test_state(4, 1, 0), models, {}), "1 models but 0 weight vectors");
  EXPECT_ERROR_MENTIONS(store->commit(test_state(4, 1, 0), models, {{1.0f}}), "expected n_params 3");
  EXPECT_ERROR_MENTIONS(store->commit(test_state(8, 1, 0), models, {weights_[0]}), "with another stream's state");
  EXPECT_FALSE(store->load_state(4, 1, 0).has_value());
  EXPECT_TRUE(store->models().empty());
  EXPECT_TRUE(fs::is_empty(dir_ / "weights"));
}

TEST_F(StoreTest, ReadOnlyStoreRefusesCommit) {
  make_store();
  auto reader = Store::open_existing(dir_);
  std::vector<StoredModel> none;
  EXPECT_ERROR_MENTIONS(reader->commit(test_state(4, 0, 0), none, {}), "read-only");
}

TEST_F(StoreTest, DifferentConfigRefused) {
  make_store();
  const std::string other = "[run]\nseed = 2\ntarget = 2\n";
  EXPECT_ERROR_MENTIONS(make_store(other), dir_.string() + " holds a run with a different config; first difference: "
                                                             "line 2: stored `seed = 1` vs new `seed = 2`");
  EXPECT_ERROR_MENTIONS(make_store(other), "use a new output directory, or remove " + dir_.string());
  EXPECT_ERROR_MENTIONS(make_store(kConfig + "extra = 1\n"), "line 4: stored `` vs new `extra = 1`");
}

TEST_F(StoreTest, DifferentMetaRefused) {
  make_store();
  RunMeta m = test_meta();
  m.n_params = 4;
  EXPECT_ERROR_MENTIONS(make_store(kConfig, m), "records n_params 3 and bin edges [0.3,0.35,0.4]");
}

TEST_F(StoreTest, ForeignDirectoryRefused) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "notes.txt") << "my thesis\n";
  EXPECT_ERROR_MENTIONS(make_store(), dir_.string() + " is not empty and is not a gac run directory");
  EXPECT_TRUE(fs::exists(dir_ / "notes.txt"));
  EXPECT_FALSE(fs::exists(dir_ / "ledger.sqlite"));
}

TEST_F(StoreTest, EmptyExistingDirectoryAccepted) {
  fs::create_directories(dir_);
  make_store();
  EXPECT_TRUE(fs::exists(dir_ / "ledger.sqlite"));
}

TEST_F(StoreTest, InterruptedSetupIsRedone) {
  // What a kill during setup leaves: config written, ledger not yet in place.
  fs::create_directories(dir_ / "weights");
  std::ofstream(dir_ / "config.toml") << "[run]\nseed = 99\n";
  std::ofstream(dir_ / "ledger.sqlite.tmp") << "half a database";
  auto store = make_store();
  EXPECT_EQ(store->config_toml(), kConfig);
  EXPECT_FALSE(fs::exists(dir_ / "ledger.sqlite.tmp"));
}

TEST_F(StoreTest, UnwritableOutputRefused) {
  const fs::path file = root_ / "plain";
  std::ofstream(file) << "a regular file";
  const fs::path under = file / "run";
  EXPECT_ERROR_MENTIONS(Store(under, kConfig, kLayout, test_meta()), "cannot create output directory " + under.string());
  EXPECT_ERROR_MENTIONS(Store(file, kConfig, kLayout, test_meta()), file.string() + " as the output directory");
}

TEST_F(StoreTest, OpenExistingMissingRefused) {
  EXPECT_ERROR_MENTIONS(Store::open_existing(root_ / "absent"),
                        (root_ / "absent").string() + " is not a gac run directory (no ledger.sqlite)");
  EXPECT_ERROR_MENTIONS(Store::open_existing(root_), "is not a gac run directory");
}

TEST_F(StoreTest, CorruptLedgerRefused) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "config.toml") << kConfig;
  std::ofstream(dir_ / "ledger.sqlite") << "this is not an SQLite database, but long enough to have a header......";
  EXPECT_ERROR_MENTIONS(make_store(), (dir_ / "ledger.sqlite").string());
  EXPECT_ERROR_MENTIONS(Store::open_existing(dir_), (dir_ / "ledger.sqlite").string());
}

// ---- A full disk -------------------------------------------------------------

namespace {

// The default SQLite VFS with its files' writes or syncs failing as on a
// full disk while `disk_full` is set: writes with SQLITE_FULL (what SQLite
// reports for ENOSPC), syncs with SQLITE_IOERR_FSYNC and errno ENOSPC.
enum class DiskFull { no, on_write, on_sync };
DiskFull disk_full = DiskFull::no;
sqlite3_vfs full_vfs;

// Each kind of file (database, journal, WAL) has its own methods: each gets a
// patched copy.
struct Methods {
  const sqlite3_io_methods* real = nullptr;
  sqlite3_io_methods patched{};
};
Methods methods[8];

const sqlite3_io_methods& real_methods(sqlite3_file* f) {
  for (const Methods& m : methods)
    if (&m.patched == f->pMethods) return *m.real;
  std::abort();
}

int full_write(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
  if (disk_full == DiskFull::on_write) return SQLITE_FULL;
  return real_methods(f).xWrite(f, data, amount, offset);
}

int full_sync(sqlite3_file* f, int flags) {
  if (disk_full != DiskFull::on_sync) return real_methods(f).xSync(f, flags);
  errno = ENOSPC;
  return SQLITE_IOERR_FSYNC;
}

int full_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  sqlite3_vfs* real = static_cast<sqlite3_vfs*>(full_vfs.pAppData);
  const int rc = real->xOpen(real, name, f, flags, out_flags);
  if (rc != SQLITE_OK || !f->pMethods) return rc;
  for (Methods& m : methods) {
    if (!m.real) {
      m.real = f->pMethods;
      m.patched = *f->pMethods;
      m.patched.xWrite = full_write;
      m.patched.xSync = full_sync;
    }
    if (m.real == f->pMethods) {
      f->pMethods = &m.patched;
      return rc;
    }
  }
  std::abort();  // more kinds of files than slots
}

// Makes the full-disk VFS SQLite's default while it lives.
struct FullDiskVfs {
  FullDiskVfs() {
    sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
    full_vfs = *real;
    full_vfs.zName = "gac_test_full_disk";
    full_vfs.pAppData = real;
    full_vfs.xOpen = full_open;
    sqlite3_vfs_register(&full_vfs, 1);
  }
  ~FullDiskVfs() {
    disk_full = DiskFull::no;
    sqlite3_vfs_unregister(&full_vfs);
  }
};

}  // namespace

TEST_F(StoreTest, AFullDiskIsReportedAsSuchWithThePath) {
  const FullDiskVfs vfs;
  auto store = make_store();
  std::vector<StoredModel> none;
  disk_full = DiskFull::on_write;
  // The rollback journal's first write fails (at a statement, or at COMMIT).
  const std::string full = gac::test::error_of([&] { store->commit(test_state(4, 0, 0), none, {}); });
  EXPECT_EQ(full.rfind((dir_ / "ledger.sqlite").string() + ": cannot run `", 0), 0u) << full;
  EXPECT_NE(full.find("`: no space left on device"), std::string::npos) << full;
  // A failed sync on a disk with room is no full disk.
  disk_full = DiskFull::on_sync;
  EXPECT_ERROR_MENTIONS(store->commit(test_state(4, 0, 0), none, {}), "cannot run `COMMIT`: disk I/O error");
  disk_full = DiskFull::no;
  store->commit(test_state(4, 0, 0), none, {});  // space again: the store goes on
  EXPECT_TRUE(store->load_state(4, 0, 0).has_value());
}

// Runs `body` in a child process in which a tmpfs of `size` is mounted on
// `dir` (root, or a user namespace; in a mount namespace of its own, gone
// with the child). Its text comes back; nullopt when no tmpfs can be mounted.
template <class Body>
std::optional<std::string> on_small_tmpfs(const fs::path& dir, const char* size, Body body) {
  int out[2];
  if (pipe(out) != 0) return std::nullopt;
  const pid_t pid = fork();
  if (pid == 0) {
    close(out[0]);
    const uid_t uid = geteuid();
    const gid_t gid = getegid();
    if (uid != 0) {
      if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) _exit(77);
      std::ofstream("/proc/self/setgroups") << "deny";
      std::ofstream("/proc/self/uid_map") << "0 " << uid << " 1";
      std::ofstream("/proc/self/gid_map") << "0 " << gid << " 1";
    } else if (unshare(CLONE_NEWNS) != 0) {
      _exit(77);
    }
    if (mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount("tmpfs", dir.c_str(), "tmpfs", 0, (std::string("size=") + size).c_str()) != 0)
      _exit(77);
    const std::string text = body();
    (void)!write(out[1], text.data(), text.size());
    _exit(0);
  }
  close(out[1]);
  std::string text;
  char buf[4096];
  for (ssize_t got; (got = read(out[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(got));
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  return text;
}

// A really full file system (the journal's writes fail, or only its sync:
// "disk I/O error" from SQLite, no errno) is reported as the full disk it is.
TEST_F(StoreTest, AFailedSyncOnAFullFileSystemIsReportedAsNoSpace) {
  fs::create_directories(dir_);
  const auto message = on_small_tmpfs(dir_, "1m", [this] {
    const FullDiskVfs vfs;
    auto store = make_store();
    std::vector<StoredModel> none;
    store->commit(test_state(4, 0, 0), none, {});
    std::ofstream filler(dir_ / "filler", std::ios::binary);
    const std::string block(4096, 'x');
    while (filler.write(block.data(), block.size()) && filler.flush()) {
    }
    disk_full = DiskFull::on_sync;
    return gac::test::error_of([&] { store->commit(test_state(4, 0, 0), none, {}); });
  });
  if (!message) GTEST_SKIP() << "no tmpfs can be mounted here (needs root or user namespaces)";
  EXPECT_EQ(message->rfind((dir_ / "ledger.sqlite").string() + ": cannot run `", 0), 0u) << *message;
  EXPECT_NE(message->find("`: no space left on device"), std::string::npos) << *message;
}

TEST_F(StoreTest, ARunWithoutDataFingerprintsRecordsThemWhenNextOpened) {
  make_store();  // no data files (a kink run)
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "ledger.sqlite").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DELETE FROM meta WHERE key = 'data_files'", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);  // as a ledger of a gac from before data files were fingerprinted
  RunMeta m = test_meta();
  m.data_files = {{"x.npy", 128, 0x1234}};
  EXPECT_EQ(make_store(kConfig, m)->meta().data_files.size(), 1u);
  EXPECT_EQ(Store::open_existing(dir_)->meta().data_files[0].crc32, 0x1234u);
  m.data_files[0].crc32 = 0x4321;
  EXPECT_ERROR_MENTIONS(make_store(kConfig, m), "data file x.npy has changed since the run began: CRC-32 00004321, was 00001234");
}

TEST_F(StoreTest, ConfigCheckDecidesAndAGrownRunUpdatesConfigAndMeta) {
  std::vector<StoredModel> none;
  make_store()->commit(test_state(4, 1, 0), none, {});
  const std::string grown_config = "[run]\nseed = 1\ntarget = 5\n";
  RunMeta grown = test_meta();
  grown.target = 5;
  grown.repeats = 3;
  grown.ns = {4, 8, 16};
  std::string seen;
  auto refuse = [&seen](const std::string& stored) {
    seen = stored;
    return std::string("run.seed is 1 there, 2 here");
  };
  EXPECT_ERROR_MENTIONS(Store(dir_, grown_config, kLayout, grown, refuse),
                        "different config; run.seed is 1 there, 2 here (use a new output directory");
  EXPECT_EQ(seen, kConfig);
  EXPECT_EQ(Store::open_existing(dir_)->meta().target, 2) << "a refused run changes nothing";

  auto accept = [](const std::string&) { return std::string(); };
  {
    Store store(dir_, grown_config, kLayout, grown, accept);
    EXPECT_EQ(store.meta().target, 5);
  }
  const auto reopened = Store::open_existing(dir_);
  EXPECT_EQ(reopened->meta().target, 5);
  EXPECT_EQ(reopened->meta().repeats, 3);
  EXPECT_EQ(reopened->meta().ns, grown.ns);
  EXPECT_EQ(reopened->config_toml(), grown_config);
  EXPECT_TRUE(reopened->load_state(4, 1, 0).has_value()) << "the run's streams stay";
  // Accepted with the same metadata (say, a comment added), config.toml is left as it is.
  std::ofstream(dir_ / "config.toml", std::ios::app) << "# a note\n";
  Store(dir_, grown_config, kLayout, grown, accept);
  EXPECT_EQ(slurp(dir_ / "config.toml"), grown_config + "# a note\n");
}

TEST_F(StoreTest, CommitRecordsItsWriter) {
  auto store = make_store();
  EXPECT_FALSE(store->last_writer().has_value());
  commit_two(*store);
  const auto writer = Store::open_existing(dir_)->last_writer();
  ASSERT_TRUE(writer.has_value());
  EXPECT_EQ(writer->pid, getpid());
  EXPECT_GT(writer->time, 1.7e9);
}

TEST_F(StoreTest, ReaderRecoversTheJournalOfAKilledCommit) {
  commit_two(*make_store());
  // A writer killed in the middle of a transaction leaves a hot rollback journal.
  const pid_t child = fork();
  if (child == 0) {
    sqlite3* db = nullptr;
    sqlite3_open((dir_ / "ledger.sqlite").c_str(), &db);
    sqlite3_exec(db, "PRAGMA cache_size=1; BEGIN IMMEDIATE; DELETE FROM models;", nullptr, nullptr, nullptr);
    for (int i = 0; i < 200; ++i)
      sqlite3_exec(db, ("INSERT INTO meta VALUES ('filler" + std::to_string(i) + "', hex(randomblob(2000)))").c_str(),
                   nullptr, nullptr, nullptr);
    _exit(0);  // no COMMIT, no ROLLBACK
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(fs::exists(dir_ / "ledger.sqlite-journal"));
  EXPECT_EQ(Store::open_existing(dir_)->models().size(), 2u);  // report and verify still read the committed state
  EXPECT_EQ(make_store()->models().size(), 2u);
}

// An SGD run's draws may give one model per bin: both are kept, each in its own file.
TEST_F(StoreTest, AnSgdDrawKeepsAModelInEachBin) {
  RunMeta meta = test_meta();
  meta.optimizer = "sgd";
  auto store = make_store(kConfig, meta);
  std::vector<StoredModel> models = {test_model(4, 1, 0, 7, 0), test_model(4, 1, 0, 7, 1)};
  store->commit(test_state(4, 1, 0), models, weights_);
  EXPECT_EQ(models[0].file, "weights/n4_r1_s0_d7_b0.npy");
  EXPECT_EQ(models[1].file, "weights/n4_r1_s0_d7_b1.npy");
  const auto stored = store->models();
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[1].bin, 1);
  EXPECT_EQ(read_npy(dir_ / stored[1].file).data[2], 123.456f);
  store.reset();
  // A guess-and-check config on it is refused (config.toml would differ too).
  EXPECT_ERROR_MENTIONS(make_store(), "records models of optimizer sgd, but this config's optimizer is guess");
}

// A ledger of schema version 2 (models keyed by draw alone) is read as it is
// and rekeyed when a writer opens it.
TEST_F(StoreTest, AVersion2LedgerOpensAndIsMigratedByAWriter) {
  commit_two(*make_store());
  const fs::path ledger = dir_ / "ledger.sqlite";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(ledger.c_str(), &db), SQLITE_OK);
  const char* downgrade = R"sql(
    ALTER TABLE models RENAME TO m3;
    CREATE TABLE models(n INTEGER NOT NULL, repeat INTEGER NOT NULL, shard INTEGER NOT NULL, draw INTEGER NOT NULL,
      bin INTEGER NOT NULL, train_loss REAL NOT NULL, train_acc REAL NOT NULL, test_loss REAL NOT NULL,
      test_acc REAL NOT NULL, file TEXT NOT NULL, PRIMARY KEY(n, repeat, shard, draw));
    INSERT INTO models SELECT n, repeat, shard, draw, bin, train_loss, train_acc, test_loss, test_acc, file FROM m3;
    DROP TABLE m3;
    ALTER TABLE streams DROP COLUMN failed;
    UPDATE meta SET value = '2' WHERE key = 'schema_version';
  )sql";
  ASSERT_EQ(sqlite3_exec(db, downgrade, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
  auto schema_version = [&] {
    sqlite3* d = nullptr;
    sqlite3_open(ledger.c_str(), &d);
    std::string version, key;
    sqlite3_exec(
        d, "SELECT value FROM meta WHERE key = 'schema_version'",
        [](void* out, int, char** values, char**) { return *static_cast<std::string*>(out) = values[0], 0; }, &version,
        nullptr);
    sqlite3_exec(
        d, "SELECT sql FROM sqlite_master WHERE name = 'models'",
        [](void* out, int, char** values, char**) { return *static_cast<std::string*>(out) = values[0], 0; }, &key,
        nullptr);
    sqlite3_close(d);
    return version + (key.find("PRIMARY KEY(n, repeat, shard, draw, bin)") != std::string::npos ? " by bin" : "");
  };
  ASSERT_EQ(schema_version(), "2");
  EXPECT_EQ(Store::open_existing(dir_)->models().size(), 2u);  // a reader changes nothing
  EXPECT_EQ(schema_version(), "2");
  auto store = make_store();
  EXPECT_EQ(schema_version(), "6 by bin");  // and on to version 6 (same_body, the search columns, checkpoints)
  EXPECT_EQ(store->models().size(), 2u);
  EXPECT_EQ(store->models()[0].file, "weights/n4_r1_s0_d3.npy");
}

TEST_F(StoreTest, AVersion3LedgerIsReadAndAWriterAddsSameBody) {
  commit_two(*make_store());
  const fs::path ledger = dir_ / "ledger.sqlite";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(ledger.c_str(), &db), SQLITE_OK);
  const char* downgrade = "ALTER TABLE streams DROP COLUMN same_body; ALTER TABLE streams DROP COLUMN failed; "
      "ALTER TABLE models DROP COLUMN search_steps; ALTER TABLE models DROP COLUMN search_calls; "
      "ALTER TABLE models DROP COLUMN search_radius; UPDATE meta SET value = '3' WHERE key = 'schema_version';";
  ASSERT_EQ(sqlite3_exec(db, downgrade, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
  const auto reader = Store::open_existing(dir_);  // a reader changes nothing
  ASSERT_FALSE(reader->states().empty());
  EXPECT_TRUE(reader->states().front().same_body.empty());
  auto store = make_store();
  const std::vector<StreamState> states = store->states();
  ASSERT_FALSE(states.empty());
  StreamState st = states.front();
  st.same_body.assign(st.hits.size(), 7);
  std::vector<StoredModel> none;
  store->commit(st, none, {});
  EXPECT_EQ(store->load_state(st.n, st.repeat, st.shard)->same_body, st.same_body);
}

// A ledger of schema version 4 (no search columns) is read as it is, with
// the search columns absent, and gains them when a writer opens it.
TEST_F(StoreTest, AVersion4LedgerOpensAndGainsTheSearchColumnsFromAWriter) {
  commit_two(*make_store());
  const fs::path ledger = dir_ / "ledger.sqlite";
  const auto sql = [&](const char* text) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(ledger.c_str(), &db), SQLITE_OK);
    std::string value;
    EXPECT_EQ(sqlite3_exec(
                  db, text,
                  [](void* out, int, char** values, char**) {
                    return *static_cast<std::string*>(out) = values[0] ? values[0] : "NULL", 0;
                  },
                  &value, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_close(db);
    return value;
  };
  sql("ALTER TABLE models DROP COLUMN search_steps; ALTER TABLE models DROP COLUMN search_calls; "
      "ALTER TABLE models DROP COLUMN search_radius; ALTER TABLE streams DROP COLUMN failed; "
      "UPDATE meta SET value = '4' WHERE key = 'schema_version'");
  const auto reader = Store::open_existing(dir_);
  ASSERT_EQ(reader->models().size(), 2u);
  EXPECT_EQ(reader->models()[0].search_calls, -1);
  EXPECT_EQ(reader->states().at(0).failed, 0u);
  EXPECT_EQ(sql("SELECT value FROM meta WHERE key = 'schema_version'"), "4");  // a reader changes nothing
  auto store = make_store();
  EXPECT_EQ(sql("SELECT value FROM meta WHERE key = 'schema_version'"), "6");
  EXPECT_EQ(sql("SELECT search_calls FROM models LIMIT 1"), "NULL");
  EXPECT_EQ(store->models().size(), 2u);
}
