// The run directory and its SQLite ledger.
//
// Durability: the ledger uses SQLite's rollback journal (journal_mode=DELETE;
// WAL needs shared memory, which NFS and Lustre do not give across hosts)
// with synchronous=FULL, so every COMMIT is on disk when it returns. Weights
// files are written (atomically) and made durable, all those of one commit
// with one syncfs, before the transaction that names them. The run loop
// commits about once a second, so syncs do not grow with the models found.
// The ledger itself is created under a temporary name and renamed into
// place, so "DIR/ledger.sqlite exists" means "DIR is a complete, initialized run".
#include "gac/store.h"

#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "gac/dir_lock.h"
#include "gac/error.h"
#include "gac/npy.h"

namespace gac {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kSchemaVersion = 3;  // 2: streams.classes; 3: models keyed by (n, repeat, shard, draw, bin)
constexpr int kBusyTimeoutMs = 60000;  // another process (e.g. a report) may hold a lock briefly

const char* const kSchema = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE streams(
  n INTEGER NOT NULL, repeat INTEGER NOT NULL, shard INTEGER NOT NULL,
  draws INTEGER NOT NULL, perfect INTEGER NOT NULL,
  hits TEXT NOT NULL, stored TEXT NOT NULL,
  status TEXT NOT NULL, seconds REAL NOT NULL,
  classes TEXT NOT NULL,
  PRIMARY KEY(n, repeat, shard));
)sql";

// An SGD draw may give a model in each bin: the bin is part of the key.
const char* const kModelsTable = R"sql(
CREATE TABLE models(
  n INTEGER NOT NULL, repeat INTEGER NOT NULL, shard INTEGER NOT NULL, draw INTEGER NOT NULL,
  bin INTEGER NOT NULL,
  train_loss REAL NOT NULL, train_acc REAL NOT NULL, test_loss REAL NOT NULL, test_acc REAL NOT NULL,
  file TEXT NOT NULL,
  PRIMARY KEY(n, repeat, shard, draw, bin));
)sql";

const char* const kStreamColumns = "n, repeat, shard, draws, perfect, hits, stored, status, seconds, classes";
const char* const kModelColumns = "n, repeat, shard, draw, bin, train_loss, train_acc, test_loss, test_acc, file";

// ---------------------------------------------------------------------------
// Small RAII wrappers over the sqlite3 C API.

// SQLite reports a full disk as "database or disk is full" when a write
// fails, but as "disk I/O error" when the failure shows up at a sync (file
// systems that allocate late) or a truncation, without the operating
// system's error: then the free space of the ledger's file system tells.
std::string sqlite_failure(const std::string& path, int code, int system_errno, const std::string& message) {
  const int primary = code & 0xff;
  if (primary != SQLITE_FULL && primary != SQLITE_IOERR) return message;
  const std::string dir = fs::path(path).parent_path().string();
  struct statvfs space {};
  const bool no_space =
      ::statvfs(dir.empty() ? "." : dir.c_str(), &space) == 0 && space.f_bavail * space.f_frsize < (1u << 20);
  if (primary == SQLITE_FULL || system_errno == ENOSPC || no_space) return "no space left on device";
  if (system_errno == EDQUOT) return "disk quota exceeded";
  return system_errno ? message + " (" + std::strerror(system_errno) + ")" : message;
}

class Ledger {
 public:
  Ledger(const fs::path& path, int flags) : path_(path.string()) {
    const int rc = sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
      const std::string why = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close_v2(db_);
      throw Error(path_ + ": cannot open the ledger: " + why);
    }
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  }
  ~Ledger() { sqlite3_close_v2(db_); }
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  sqlite3* get() const { return db_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(path_ + ": " + what + ": " +
                sqlite_failure(path_, sqlite3_extended_errcode(db_), sqlite3_system_errno(db_), sqlite3_errmsg(db_)));
  }

  void exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) == SQLITE_OK) return;
    const std::string text = sql;  // the schema is many lines: its first names it
    const size_t end = text.find('\n', text.find_first_not_of('\n'));
    fail("cannot run `" + (end == std::string::npos ? text : text.substr(0, end) + " ...") + "`");
  }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

class Statement {
 public:
  Statement(const Ledger& db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v2(db.get(), sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK)
      db.fail("cannot prepare `" + sql + "`");
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind_int(int i, int64_t v) { return check(sqlite3_bind_int64(stmt_, i, v)); }
  Statement& bind_real(int i, double v) { return check(sqlite3_bind_double(stmt_, i, v)); }
  Statement& bind_text(int i, const std::string& v) {
    return check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }

  // Advances to the next row; false when the statement is done.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    db_.fail(std::string("cannot run `") + sqlite3_sql(stmt_) + "`");
  }

  // Makes the statement ready to be bound and run again.
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  int64_t column_int(int c) const { return sqlite3_column_int64(stmt_, c); }
  double column_real(int c) const { return sqlite3_column_double(stmt_, c); }
  std::string column_text(int c) const {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
    return text ? std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt_, c))) : std::string();
  }

 private:
  Statement& check(int rc) {
    if (rc != SQLITE_OK) db_.fail("cannot bind a parameter");
    return *this;
  }

  const Ledger& db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back if commit() is never reached.
class Transaction {
 public:
  explicit Transaction(Ledger& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (!done_) sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    db_.exec("COMMIT");
    done_ = true;
  }

 private:
  Ledger& db_;
  bool done_ = false;
};

// Version 2 keyed models by draw alone (one model per draw: guess and check);
// a writer opening such a ledger rekeys it, in one transaction.
void migrate_from_2(Ledger& db) {
  Transaction tx(db);
  db.exec("ALTER TABLE models RENAME TO models_v2");
  db.exec(kModelsTable);
  db.exec("INSERT INTO models SELECT * FROM models_v2; DROP TABLE models_v2; "
          "UPDATE meta SET value = '3' WHERE key = 'schema_version'");
  tx.commit();
}

// ---------------------------------------------------------------------------
// Files and directories

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path.string() + ": " + std::strerror(errno));
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void fsync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool ok = fd >= 0 && ::fsync(fd) == 0;
  const std::string why = std::strerror(errno);
  if (fd >= 0) ::close(fd);
  if (!ok) throw Error("cannot sync directory " + dir.string() + ": " + why);
}

// Creates `dir` if needed and checks that the process can write into it.
void make_writable_directory(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw Error("cannot use " + dir.string() + " as the output directory: it exists and is not a directory");
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create output directory " + dir.string() + ": " + ec.message());
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw Error("cannot write into output directory " + dir.string() + ": " + std::strerror(errno));
}

// True when every entry of `dir` is one a gac run creates before its ledger
// exists: a run interrupted while being set up can be set up again. A split
// run's directory holds its SLURM script and the tasks' shards before it is
// merged into a run.
bool holds_only_setup_leftovers(const fs::path& dir) {
  static const std::set<std::string> names = {"config.toml", "layout.json", "weights", "slurm", "shards",
                                             DirLock::kFileName};
  static const std::vector<std::string> temporaries = {"config.toml.tmp.", "layout.json.tmp.", "ledger.sqlite.tmp"};
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    const bool temporary = std::any_of(temporaries.begin(), temporaries.end(),
                                       [&name](const std::string& prefix) { return name.rfind(prefix, 0) == 0; });
    if (!names.count(name) && !temporary) return false;
  }
  return true;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::string line;
  std::istringstream in(text);
  while (std::getline(in, line)) lines.push_back(line);
  if (!text.empty() && text.back() != '\n') return lines;
  lines.push_back("");  // keeps "a\n" and "a" distinguishable
  return lines;
}

// "line N: stored `...` vs new `...`" for the first line where the two differ.
std::string first_difference(const std::string& stored, const std::string& fresh) {
  const auto a = split_lines(stored), b = split_lines(fresh);
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  auto line_or_end = [i](const std::vector<std::string>& lines) {
    return i < lines.size() ? "`" + lines[i] + "`" : std::string("(end of file)");
  };
  return "line " + std::to_string(i + 1) + ": stored " + line_or_end(a) + " vs new " + line_or_end(b);
}

// Makes everything written to the filesystem of `dir` durable, the files
// and their directory entries, in one call (syncfs) however many files a
// commit names, just before the commit that names them.
void sync_filesystem(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool ok = fd >= 0 && ::syncfs(fd) == 0;
  const std::string why = std::strerror(errno);
  if (fd >= 0) ::close(fd);
  if (!ok) throw Error("cannot sync " + dir.string() + ": " + why);
}


// ---------------------------------------------------------------------------
// Ledger contents

json meta_to_json(const RunMeta& m) {
  return {{"bin_edges", m.bin_edges}, {"target", m.target}, {"ns", m.ns},       {"repeats", m.repeats},
          {"n_params", m.n_params},   {"shards", m.shards}, {"shard", m.shard}, {"optimizer", m.optimizer}};
}

const char* const kDataFilesKey = "data_files";

std::string data_files_json(const std::vector<DataFile>& files) {
  json j = json::array();
  for (const DataFile& f : files) j.push_back({{"path", f.path}, {"size", f.size}, {"crc32", f.crc32}});
  return j.dump();
}

std::vector<DataFile> data_files_from_json(const std::string& text) {
  std::vector<DataFile> files;
  for (const json& f : json::parse(text)) files.push_back({f.at("path"), f.at("size"), f.at("crc32")});
  return files;
}

std::optional<std::string> find_meta_value(const Ledger& db, const std::string& key) {
  Statement q(db, "SELECT value FROM meta WHERE key = ?");
  q.bind_text(1, key);
  if (!q.step()) return std::nullopt;
  return q.column_text(0);
}

std::string meta_value(const Ledger& db, const fs::path& path, const std::string& key) {
  const auto value = find_meta_value(db, key);
  if (!value) throw Error(path.string() + ": no '" + key + "' entry in the meta table");
  return *value;
}

void put_meta_value(Ledger& db, const std::string& key, const std::string& value) {
  Statement put(db, "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)");
  put.bind_text(1, key).bind_text(2, value).step();
}

// The run's metadata; json::exception when the stored JSON is corrupt.
RunMeta read_meta(const Ledger& db, const fs::path& path) {
  const std::string version = meta_value(db, path, "schema_version");
  if (version != std::to_string(kSchemaVersion) && version != "2")  // a writer migrates 2 (reads are the same)
    throw Error(path.string() + ": ledger schema version " + version + "; this gac reads version " +
                std::to_string(kSchemaVersion));
  const json j = json::parse(meta_value(db, path, "run_meta"));
  RunMeta m;
  j.at("bin_edges").get_to(m.bin_edges);
  j.at("target").get_to(m.target);
  j.at("ns").get_to(m.ns);
  j.at("repeats").get_to(m.repeats);
  j.at("n_params").get_to(m.n_params);
  // Runs made before data files were fingerprinted have no entry.
  if (const auto files = find_meta_value(db, kDataFilesKey)) m.data_files = data_files_from_json(*files);
  m.shards = j.value("shards", 1);  // absent in ledgers of unsplit runs by older gac versions
  m.shard = j.value("shard", -1);
  m.optimizer = j.value("optimizer", "guess");  // absent before SGD runs existed
  return m;
}

void create_ledger(const fs::path& path, const RunMeta& meta) {
  Ledger db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  db.exec("PRAGMA synchronous=FULL");
  Transaction tx(db);
  db.exec(kSchema);
  db.exec(kModelsTable);
  Statement put(db, "INSERT INTO meta(key, value) VALUES (?, ?)");
  put.bind_text(1, "schema_version").bind_text(2, std::to_string(kSchemaVersion)).step();
  put.reset();
  put.bind_text(1, "run_meta").bind_text(2, meta_to_json(meta).dump()).step();
  put.reset();
  put.bind_text(1, kDataFilesKey).bind_text(2, data_files_json(meta.data_files)).step();
  tx.commit();
}

// Writes config, layout, weights/ and finally the ledger, which marks the run as set up.
void create_run(const fs::path& dir, const std::string& config_toml, const std::string& layout_json, const RunMeta& meta) {
  write_file_atomic(dir / "config.toml", config_toml);
  write_file_atomic(dir / "layout.json", layout_json);
  std::error_code ec;
  fs::create_directories(dir / "weights", ec);
  if (ec) throw Error("cannot create " + (dir / "weights").string() + ": " + ec.message());

  const fs::path tmp = dir / "ledger.sqlite.tmp";
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) fs::remove(tmp.string() + suffix, ec);
  create_ledger(tmp, meta);
  if (::rename(tmp.c_str(), (dir / "ledger.sqlite").c_str()) != 0)
    throw Error("cannot create " + (dir / "ledger.sqlite").string() + ": " + std::strerror(errno));
  fsync_directory(dir);
}

std::string edges_text(const std::vector<double>& edges) { return json(edges).dump(); }

// This process as the ledger's last writer, now.
std::string writer_json() {
  char host[HOST_NAME_MAX + 1] = {};
  ::gethostname(host, sizeof host - 1);
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return json{{"host", host}, {"pid", ::getpid()}, {"time", now}}.dump();
}

StreamState state_from_row(const Statement& row) {
  StreamState s;
  s.n = static_cast<int>(row.column_int(0));
  s.repeat = static_cast<int>(row.column_int(1));
  s.shard = static_cast<int>(row.column_int(2));
  s.draws = static_cast<uint64_t>(row.column_int(3));
  s.perfect = static_cast<uint64_t>(row.column_int(4));
  s.hits = json::parse(row.column_text(5)).get<std::vector<uint64_t>>();
  s.stored = json::parse(row.column_text(6)).get<std::vector<int>>();
  s.status = row.column_text(7);
  s.seconds = row.column_real(8);
  s.classes = json::parse(row.column_text(9)).get<std::vector<int>>();
  return s;
}

StoredModel model_from_row(const Statement& row) {
  StoredModel m;
  m.n = static_cast<int>(row.column_int(0));
  m.repeat = static_cast<int>(row.column_int(1));
  m.shard = static_cast<int>(row.column_int(2));
  m.draw = static_cast<uint64_t>(row.column_int(3));
  m.bin = static_cast<int>(row.column_int(4));
  m.train_loss = row.column_real(5);
  m.train_acc = row.column_real(6);
  m.test_loss = row.column_real(7);
  m.test_acc = row.column_real(8);
  m.file = row.column_text(9);
  return m;
}

}  // namespace

std::string weights_file(const StoredModel& m, const std::string& optimizer) {
  return "weights/n" + std::to_string(m.n) + "_r" + std::to_string(m.repeat) + "_s" + std::to_string(m.shard) + "_d" +
         std::to_string(m.draw) + (optimizer == "sgd" ? "_b" + std::to_string(m.bin) : "") + ".npy";
}

// ---------------------------------------------------------------------------

struct Store::Impl {
  fs::path dir;
  RunMeta meta;
  std::unique_ptr<DirLock> lock;  // writers only; declared before db, so released after it closes
  std::unique_ptr<Ledger> db;
  bool read_only = false;

  fs::path ledger_path() const { return dir / "ledger.sqlite"; }

  void load_meta() {
    try {
      meta = read_meta(*db, ledger_path());
    } catch (const json::exception& e) {
      throw Error(ledger_path().string() + ": corrupt run metadata: " + e.what());
    }
  }

  // The run grows to `fresh` (more target, repeats or sizes n): the config
  // first, then the metadata; after a crash between them the next open of
  // the same config finishes the update.
  void extend(const std::string& config_toml, const RunMeta& fresh) {
    write_file_atomic(dir / "config.toml", config_toml);
    RunMeta grown = meta;
    grown.target = fresh.target;
    grown.ns = fresh.ns;
    grown.repeats = fresh.repeats;
    Transaction tx(*db);
    Statement put(*db, "UPDATE meta SET value = ? WHERE key = 'run_meta'");
    put.bind_text(1, meta_to_json(grown).dump()).step();
    tx.commit();
    meta = grown;
  }

  // Runs `f` on each row of `q`, turning corrupt JSON columns into a gac::Error.
  template <typename F>
  void for_each_row(Statement& q, F f) const {
    try {
      while (q.step()) f(q);
    } catch (const json::exception& e) {
      throw Error(ledger_path().string() + ": corrupt row: " + e.what());
    }
  }
};

Store::Store() : impl_(std::make_unique<Impl>()) {}
Store::~Store() = default;

Store::Store(const fs::path& dir, const std::string& config_toml, const std::string& layout_json, const RunMeta& meta,
             const ConfigCheck& check)
    : Store() {
  impl_->dir = dir;
  make_writable_directory(dir);
  const fs::path ledger = impl_->ledger_path();
  const auto refuse_foreign = [&] {
    if (!fs::exists(ledger) && !holds_only_setup_leftovers(dir))
      throw Error(dir.string() + " is not empty and is not a gac run directory (no ledger.sqlite); "
                  "use a new or empty output directory");
  };
  // A foreign directory gets no lock file. A gac writer creates the lock
  // file before anything else: with one there, the check waits for the lock.
  const fs::path lock_file = dir / DirLock::kFileName;
  if (!fs::exists(lock_file)) {
    try {
      refuse_foreign();
    } catch (const Error&) {
      if (!fs::exists(lock_file)) throw;  // else a writer began meanwhile
    }
  }
  impl_->lock = std::make_unique<DirLock>(dir);
  // Everything below runs as the directory's only writer.
  const bool existing = fs::exists(ledger);
  if (existing) {
    const std::string stored = read_text(dir / "config.toml");
    const std::string problem = check                   ? check(stored)
                                : stored == config_toml ? ""
                                                        : "first difference: " + first_difference(stored, config_toml);
    if (!problem.empty())
      throw Error(dir.string() + " holds a run with a different config; " + problem +
                  " (use a new output directory, or remove " + dir.string() + ")");
  } else {
    refuse_foreign();
    create_run(dir, config_toml, layout_json, meta);
  }

  impl_->db = std::make_unique<Ledger>(ledger, SQLITE_OPEN_READWRITE);
  impl_->db->exec("PRAGMA journal_mode=DELETE");  // also turns a WAL ledger of an older gac into one
  impl_->db->exec("PRAGMA synchronous=FULL");
  if (meta_value(*impl_->db, ledger, "schema_version") == "2") migrate_from_2(*impl_->db);
  impl_->load_meta();
  const RunMeta& m = impl_->meta;
  if (m.optimizer != meta.optimizer)
    throw Error(ledger.string() + " records models of optimizer " + m.optimizer + ", but this config's optimizer is " +
                meta.optimizer + " (use a new output directory, or remove " + dir.string() + ")");
  if (m.n_params != meta.n_params || m.bin_edges != meta.bin_edges)
    throw Error(ledger.string() + " records n_params " + std::to_string(m.n_params) + " and bin edges " +
                edges_text(m.bin_edges) + ", but this config gives n_params " + std::to_string(meta.n_params) +
                " and bin edges " + edges_text(meta.bin_edges) + " (use a new output directory, or remove " +
                dir.string() + ")");
  check_data_files(meta.data_files);
  if (existing) make_writable_directory(dir / "weights");
  if (existing && check && (m.target != meta.target || m.ns != meta.ns || m.repeats != meta.repeats))
    impl_->extend(config_toml, meta);
}

// A run made before data files were fingerprinted records them now.
void Store::check_data_files(const std::vector<DataFile>& now) {
  Impl& s = *impl_;
  if (!find_meta_value(*s.db, kDataFilesKey)) {
    put_meta_value(*s.db, kDataFilesKey, data_files_json(now));
    s.meta.data_files = now;
    return;
  }
  const std::string difference = data_files_difference(s.meta.data_files, now);
  if (!difference.empty())
    throw Error(s.dir.string() + ": " + difference + "; its models were drawn on the recorded data: restore that data, "
                "or use a new output directory");
}

std::unique_ptr<Store> Store::open_existing(const fs::path& dir) {
  std::unique_ptr<Store> store(new Store());
  Impl& s = *store->impl_;
  s.dir = dir;
  s.read_only = true;
  if (!fs::exists(s.ledger_path())) {
    const std::string writer = DirLock::holder(dir);
    if (!writer.empty()) throw Error(dir.string() + " is being set up by a gac writer (" + writer + "); try again in a moment");
    throw Error(dir.string() + " is not a gac run directory (no ledger.sqlite)");
  }
  // Read-write where allowed, only so that SQLite can roll back the journal a
  // killed writer left (a read-only connection refuses such a ledger);
  // query_only keeps this connection from writing anything else.
  const bool writable = ::access(s.ledger_path().c_str(), W_OK) == 0 && ::access(dir.c_str(), W_OK) == 0;
  s.db = std::make_unique<Ledger>(s.ledger_path(), writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY);
  s.db->exec("PRAGMA query_only=1");
  s.load_meta();
  return store;
}

const fs::path& Store::dir() const { return impl_->dir; }
const RunMeta& Store::meta() const { return impl_->meta; }
std::string Store::config_toml() const { return read_text(impl_->dir / "config.toml"); }

std::optional<StreamState> Store::load_state(int n, int repeat, int shard) const {
  Statement q(*impl_->db, std::string("SELECT ") + kStreamColumns + " FROM streams WHERE n = ? AND repeat = ? AND shard = ?");
  q.bind_int(1, n).bind_int(2, repeat).bind_int(3, shard);
  std::optional<StreamState> out;
  impl_->for_each_row(q, [&](const Statement& row) { out = state_from_row(row); });
  return out;
}

std::vector<StreamState> Store::states() const {
  std::vector<StreamState> out;
  Statement q(*impl_->db, std::string("SELECT ") + kStreamColumns + " FROM streams ORDER BY n, repeat, shard");
  impl_->for_each_row(q, [&](const Statement& row) { out.push_back(state_from_row(row)); });
  return out;
}

std::optional<WriterInfo> Store::last_writer() const {
  Statement q(*impl_->db, "SELECT value FROM meta WHERE key = 'writer'");
  if (!q.step()) return std::nullopt;
  try {
    const json j = json::parse(q.column_text(0));
    return WriterInfo{j.at("host").get<std::string>(), j.at("pid").get<int>(), j.at("time").get<double>()};
  } catch (const json::exception& e) {
    throw Error(impl_->ledger_path().string() + ": corrupt writer entry: " + e.what());
  }
}

std::vector<StoredModel> Store::models() const {
  std::vector<StoredModel> out;
  Statement q(*impl_->db, std::string("SELECT ") + kModelColumns + " FROM models ORDER BY n, repeat, shard, draw, bin");
  impl_->for_each_row(q, [&](const Statement& row) { out.push_back(model_from_row(row)); });
  return out;
}

void Store::commit(const StreamState& state, std::vector<StoredModel>& models,
                   const std::vector<std::vector<float>>& weights) {
  Impl& s = *impl_;
  if (s.read_only) throw Error(s.dir.string() + " was opened read-only; cannot commit");
  if (weights.size() != models.size())
    throw Error("Store::commit: " + std::to_string(models.size()) + " models but " + std::to_string(weights.size()) +
                " weight vectors");
  for (size_t i = 0; i < models.size(); ++i) {
    StoredModel& m = models[i];
    if (m.n != state.n || m.repeat != state.repeat || m.shard != state.shard)
      throw Error("Store::commit: a model of stream (" + std::to_string(m.n) + ", " + std::to_string(m.repeat) + ", " +
                  std::to_string(m.shard) + ") committed with another stream's state");
    if (weights[i].size() != static_cast<size_t>(s.meta.n_params))
      throw Error("Store::commit: weights of " + std::to_string(weights[i].size()) + " floats, expected n_params " +
                  std::to_string(s.meta.n_params));
  }

  // Weights first, all synced before the COMMIT: a crash before it leaves
  // only files no row names.
  for (size_t i = 0; i < models.size(); ++i) {
    models[i].file = weights_file(models[i], s.meta.optimizer);
    write_file_atomic(s.dir / models[i].file, npy_bytes_f32(weights[i].data(), {s.meta.n_params}), false);
  }
  if (!models.empty()) sync_filesystem(s.dir / "weights");

  Transaction tx(*s.db);
  Statement put_model(*s.db, std::string("INSERT OR REPLACE INTO models(") + kModelColumns +
                                 ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  for (const StoredModel& m : models) {
    put_model.bind_int(1, m.n).bind_int(2, m.repeat).bind_int(3, m.shard).bind_int(4, static_cast<int64_t>(m.draw));
    put_model.bind_int(5, m.bin).bind_real(6, m.train_loss).bind_real(7, m.train_acc);
    put_model.bind_real(8, m.test_loss).bind_real(9, m.test_acc).bind_text(10, m.file);
    put_model.step();
    put_model.reset();
  }
  Statement put_state(*s.db, std::string("INSERT OR REPLACE INTO streams(") + kStreamColumns +
                                 ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  put_state.bind_int(1, state.n).bind_int(2, state.repeat).bind_int(3, state.shard);
  put_state.bind_int(4, static_cast<int64_t>(state.draws)).bind_int(5, static_cast<int64_t>(state.perfect));
  put_state.bind_text(6, json(state.hits).dump()).bind_text(7, json(state.stored).dump());
  put_state.bind_text(8, state.status).bind_real(9, state.seconds);
  put_state.bind_text(10, json(state.classes).dump());
  put_state.step();
  Statement put_writer(*s.db, "INSERT OR REPLACE INTO meta(key, value) VALUES ('writer', ?)");
  put_writer.bind_text(1, writer_json()).step();
  tx.commit();
}

}  // namespace gac
