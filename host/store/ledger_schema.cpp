#include "host/store/ledger_schema.h"

#include "gac/error.h"

namespace gac::store_detail {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// 2: streams.classes; 3: models keyed by (n, repeat, shard, draw, bin); 4: streams.same_body;
// 5: search columns (models.search_steps, search_calls, search_radius; streams.failed);
// 6: the search_checkpoints table
constexpr int kSchemaVersion = 6;

const char* const kSchema = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE streams(
  n INTEGER NOT NULL, repeat INTEGER NOT NULL, shard INTEGER NOT NULL,
  draws INTEGER NOT NULL, perfect INTEGER NOT NULL,
  hits TEXT NOT NULL, stored TEXT NOT NULL,
  status TEXT NOT NULL, seconds REAL NOT NULL,
  classes TEXT NOT NULL,
  same_body TEXT,
  PRIMARY KEY(n, repeat, shard));
)sql";

// Added by version 5 (migrate_from_4 adds them to older ledgers).
const char* const kSearchColumns = R"sql(
ALTER TABLE streams ADD COLUMN failed INTEGER;
ALTER TABLE models ADD COLUMN search_steps INTEGER;
ALTER TABLE models ADD COLUMN search_calls INTEGER;
ALTER TABLE models ADD COLUMN search_radius REAL;
)sql";

// Added by version 6: the state of searches in progress (include/gac/checkpoint.h),
// params the current point as little-endian float32 bytes.
const char* const kCheckpointsTable = R"sql(
CREATE TABLE IF NOT EXISTS search_checkpoints(
  n INTEGER NOT NULL, repeat INTEGER NOT NULL, shard INTEGER NOT NULL, draw INTEGER NOT NULL,
  params BLOB NOT NULL, loss REAL NOT NULL, correct INTEGER NOT NULL, radius REAL NOT NULL,
  steps INTEGER NOT NULL, calls INTEGER NOT NULL,
  PRIMARY KEY(n, repeat, shard, draw));
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

std::vector<DataFile> data_files_from_json(const std::string& text) {
  std::vector<DataFile> files;
  for (const json& f : json::parse(text)) files.push_back({f.at("path"), f.at("size"), f.at("crc32")});
  return files;
}

}  // namespace

void migrate_from_2(Ledger& db) {
  Transaction tx(db);
  db.exec("ALTER TABLE models RENAME TO models_v2");
  db.exec(kModelsTable);
  db.exec("INSERT INTO models SELECT * FROM models_v2; DROP TABLE models_v2; "
          "UPDATE meta SET value = '3' WHERE key = 'schema_version'");
  tx.commit();
}

void migrate_from_3(Ledger& db) {
  Transaction tx(db);
  Statement has_column(db, "SELECT 1 FROM pragma_table_info('streams') WHERE name = 'same_body'");
  if (!has_column.step()) db.exec("ALTER TABLE streams ADD COLUMN same_body TEXT");
  db.exec("UPDATE meta SET value = '4' WHERE key = 'schema_version'");
  tx.commit();
}

void migrate_from_4(Ledger& db) {
  Transaction tx(db);
  db.exec(kSearchColumns);
  db.exec("UPDATE meta SET value = '5' WHERE key = 'schema_version'");
  tx.commit();
}

void migrate_from_5(Ledger& db) {
  Transaction tx(db);
  db.exec(kCheckpointsTable);
  db.exec("UPDATE meta SET value = '6' WHERE key = 'schema_version'");
  tx.commit();
}

std::string stream_columns(int version) {
  if (version >= 5) return kStreamColumns;
  return version == 4 ? "n, repeat, shard, draws, perfect, hits, stored, status, seconds, classes, same_body, NULL"
                      : "n, repeat, shard, draws, perfect, hits, stored, status, seconds, classes, NULL, NULL";
}

std::string model_columns(int version) {
  return version >= 5 ? kModelColumns
                      : "n, repeat, shard, draw, bin, train_loss, train_acc, test_loss, test_acc, file, NULL, NULL, NULL";
}

int schema_version(const Ledger& db, const fs::path& path) {
  const std::string version = meta_value(db, path, "schema_version");
  for (int v = 2; v <= kSchemaVersion; ++v)
    if (version == std::to_string(v)) return v;  // a writer migrates older versions; a reader reads them as they are
  throw Error(path.string() + ": ledger schema version " + version + "; this gac reads version " +
              std::to_string(kSchemaVersion));
}

json meta_to_json(const RunMeta& m) {
  json j = {{"bin_edges", m.bin_edges}, {"target", m.target}, {"ns", m.ns},       {"repeats", m.repeats},
            {"n_params", m.n_params},   {"shards", m.shards}, {"shard", m.shard}, {"optimizer", m.optimizer}};
  if (m.heads > 1) j["heads"] = m.heads;  // plain runs' metadata as before nested sampling
  return j;
}

std::string data_files_json(const std::vector<DataFile>& files) {
  json j = json::array();
  for (const DataFile& f : files) j.push_back({{"path", f.path}, {"size", f.size}, {"crc32", f.crc32}});
  return j.dump();
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

RunMeta read_meta(const Ledger& db, const fs::path& path) {
  schema_version(db, path);
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
  m.heads = j.value("heads", 1);                 // absent in plain runs
  return m;
}

void create_ledger(const fs::path& path, const RunMeta& meta) {
  Ledger db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  db.exec("PRAGMA synchronous=FULL");
  Transaction tx(db);
  db.exec(kSchema);
  db.exec(kModelsTable);
  db.exec(kSearchColumns);
  db.exec(kCheckpointsTable);
  Statement put(db, "INSERT INTO meta(key, value) VALUES (?, ?)");
  put.bind_text(1, "schema_version").bind_text(2, std::to_string(kSchemaVersion)).step();
  put.reset();
  put.bind_text(1, "run_meta").bind_text(2, meta_to_json(meta).dump()).step();
  put.reset();
  put.bind_text(1, kDataFilesKey).bind_text(2, data_files_json(meta.data_files)).step();
  tx.commit();
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
  const std::string same_body = row.column_text(10);  // NULL (older rows): ""
  if (!same_body.empty()) s.same_body = json::parse(same_body).get<std::vector<uint64_t>>();
  s.failed = row.column_is_null(11) ? 0 : static_cast<uint64_t>(row.column_int(11));
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
  if (!row.column_is_null(10)) m.search_steps = row.column_int(10);
  if (!row.column_is_null(11)) m.search_calls = row.column_int(11);
  if (!row.column_is_null(12)) m.search_radius = row.column_real(12);
  return m;
}

}  // namespace gac::store_detail
