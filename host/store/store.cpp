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
//
// The SQLite wrappers (sqlite.h), the ledger's schema (ledger_schema.h) and
// the file syncs (durable_files.h) have files of their own.
#include "gac/store.h"

#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "gac/dir_lock.h"
#include "gac/error.h"
#include "gac/npy.h"
#include "host/store/durable_files.h"
#include "host/store/ledger_schema.h"
#include "host/store/sqlite.h"
#include "host/util/small_file.h"

namespace gac {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace store_detail;

namespace {

std::string read_config_toml(const fs::path& dir) {
  return read_small_file(dir / "config.toml", "", "a run's config.toml is a small TOML file");
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

}  // namespace

std::string weights_file(const StoredModel& m, const std::string& optimizer) {
  return "weights/n" + std::to_string(m.n) + "_r" + std::to_string(m.repeat) + "_s" + std::to_string(m.shard) + "_d" +
         std::to_string(m.draw) + (optimizer == "sgd" ? "_b" + std::to_string(m.bin) : "") + ".npy";
}


struct Store::Impl {
  fs::path dir;
  RunMeta meta;
  std::unique_ptr<DirLock> lock;  // writers only; declared before db, so released after it closes
  std::unique_ptr<Ledger> db;
  bool read_only = false;
  int schema = 0;  // the ledger's schema version (a reader reads older ones as they are)

  fs::path ledger_path() const { return dir / "ledger.sqlite"; }

  void load_meta() {
    try {
      meta = read_meta(*db, ledger_path());
      schema = schema_version(*db, ledger_path());
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
    const std::string stored = read_config_toml(dir);
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
  if (schema_version(*impl_->db, ledger) == 2) migrate_from_2(*impl_->db);
  if (schema_version(*impl_->db, ledger) == 3) migrate_from_3(*impl_->db);
  if (schema_version(*impl_->db, ledger) == 4) migrate_from_4(*impl_->db);
  if (schema_version(*impl_->db, ledger) == 5) migrate_from_5(*impl_->db);
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
std::string Store::config_toml() const { return read_config_toml(impl_->dir); }

std::optional<StreamState> Store::load_state(int n, int repeat, int shard) const {
  Statement q(*impl_->db, "SELECT " + stream_columns(impl_->schema) + " FROM streams WHERE n = ? AND repeat = ? AND shard = ?");
  q.bind_int(1, n).bind_int(2, repeat).bind_int(3, shard);
  std::optional<StreamState> out;
  impl_->for_each_row(q, [&](const Statement& row) { out = state_from_row(row); });
  return out;
}

std::vector<StreamState> Store::states() const {
  std::vector<StreamState> out;
  Statement q(*impl_->db, "SELECT " + stream_columns(impl_->schema) + " FROM streams ORDER BY n, repeat, shard");
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
  Statement q(*impl_->db, "SELECT " + model_columns(impl_->schema) + " FROM models ORDER BY n, repeat, shard, draw, bin");
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
                                 ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  for (const StoredModel& m : models) {
    put_model.bind_int(1, m.n).bind_int(2, m.repeat).bind_int(3, m.shard).bind_int(4, static_cast<int64_t>(m.draw));
    put_model.bind_int(5, m.bin).bind_real(6, m.train_loss).bind_real(7, m.train_acc);
    put_model.bind_real(8, m.test_loss).bind_real(9, m.test_acc).bind_text(10, m.file);
    if (m.search_calls >= 0) put_model.bind_int(11, m.search_steps).bind_int(12, m.search_calls).bind_real(13, m.search_radius);
    else put_model.bind_null(11).bind_null(12).bind_null(13);
    put_model.step();
    put_model.reset();
  }
  Statement put_state(*s.db, std::string("INSERT OR REPLACE INTO streams(") + kStreamColumns +
                                 ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  put_state.bind_int(1, state.n).bind_int(2, state.repeat).bind_int(3, state.shard);
  put_state.bind_int(4, static_cast<int64_t>(state.draws)).bind_int(5, static_cast<int64_t>(state.perfect));
  put_state.bind_text(6, json(state.hits).dump()).bind_text(7, json(state.stored).dump());
  put_state.bind_text(8, state.status).bind_real(9, state.seconds);
  put_state.bind_text(10, json(state.classes).dump());
  put_state.bind_text(11, json(state.same_body).dump()).bind_int(12, static_cast<int64_t>(state.failed));
  put_state.step();
  // Searches done, and all of a finished stream's (a grown target would search its later draws afresh).
  Statement done(*s.db, "DELETE FROM search_checkpoints WHERE n = ? AND repeat = ? AND shard = ? AND (draw < ? OR ?)");
  done.bind_int(1, state.n).bind_int(2, state.repeat).bind_int(3, state.shard);
  done.bind_int(4, static_cast<int64_t>(state.draws)).bind_int(5, state.status == "filled" || state.status == "budget");
  done.step();
  Statement put_writer(*s.db, "INSERT OR REPLACE INTO meta(key, value) VALUES ('writer', ?)");
  put_writer.bind_text(1, writer_json()).step();
  tx.commit();
}

std::optional<SearchCheckpoint> Store::load_checkpoint(int n, int repeat, int shard, uint64_t draw) const {
  const Impl& s = *impl_;
  if (s.schema < 6) return std::nullopt;  // older ledgers (read as they are) have none
  Statement q(*s.db, "SELECT params, loss, correct, radius, steps, calls FROM search_checkpoints "
                     "WHERE n = ? AND repeat = ? AND shard = ? AND draw = ?");
  q.bind_int(1, n).bind_int(2, repeat).bind_int(3, shard).bind_int(4, static_cast<int64_t>(draw));
  if (!q.step()) return std::nullopt;
  const std::string bytes = q.column_blob(0);
  if (bytes.size() != static_cast<size_t>(s.meta.n_params) * sizeof(float))
    throw Error(s.ledger_path().string() + ": corrupt search checkpoint of draw " + std::to_string(draw) + " (" +
                std::to_string(bytes.size()) + " bytes of parameters, expected " +
                std::to_string(s.meta.n_params * sizeof(float)) + ")");
  SearchCheckpoint c;
  c.draw = draw;
  c.params.resize(s.meta.n_params);
  std::memcpy(c.params.data(), bytes.data(), bytes.size());
  c.loss = static_cast<float>(q.column_real(1));
  c.correct = static_cast<int32_t>(q.column_int(2));
  c.radius = static_cast<float>(q.column_real(3));
  c.steps = static_cast<uint64_t>(q.column_int(4));
  c.calls = q.column_int(5);
  return c;
}

void Store::save_checkpoint(int n, int repeat, int shard, const SearchCheckpoint& c) {
  Impl& s = *impl_;
  if (s.read_only) throw Error(s.dir.string() + " was opened read-only; cannot save a checkpoint");
  if (c.params.size() != static_cast<size_t>(s.meta.n_params))
    throw Error("Store::save_checkpoint: " + std::to_string(c.params.size()) + " parameters, expected n_params " +
                std::to_string(s.meta.n_params));
  Transaction tx(*s.db);
  Statement put(*s.db, "INSERT OR REPLACE INTO search_checkpoints(n, repeat, shard, draw, params, loss, correct, "
                       "radius, steps, calls) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  put.bind_int(1, n).bind_int(2, repeat).bind_int(3, shard).bind_int(4, static_cast<int64_t>(c.draw));
  put.bind_blob(5, c.params.data(), c.params.size() * sizeof(float)).bind_real(6, c.loss).bind_int(7, c.correct);
  put.bind_real(8, c.radius).bind_int(9, static_cast<int64_t>(c.steps)).bind_int(10, c.calls).step();
  tx.commit();
}

std::vector<std::tuple<int, int, int, uint64_t>> Store::checkpointed_draws() const {
  std::vector<std::tuple<int, int, int, uint64_t>> out;
  if (impl_->schema < 6) return out;
  Statement q(*impl_->db, "SELECT n, repeat, shard, draw FROM search_checkpoints ORDER BY n, repeat, shard, draw");
  while (q.step())
    out.emplace_back(static_cast<int>(q.column_int(0)), static_cast<int>(q.column_int(1)),
                     static_cast<int>(q.column_int(2)), static_cast<uint64_t>(q.column_int(3)));
  return out;
}

}  // namespace gac
