// What the ledger holds: its tables (created new, or migrated from an older
// schema version), the run's metadata entries, and rows read back as
// StreamState and StoredModel.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "gac/store.h"
#include "host/store/sqlite.h"

namespace gac::store_detail {

const char* const kStreamColumns =
    "n, repeat, shard, draws, perfect, hits, stored, status, seconds, classes, same_body, failed";
const char* const kModelColumns =
    "n, repeat, shard, draw, bin, train_loss, train_acc, test_loss, test_acc, file, search_steps, search_calls, "
    "search_radius";

// The columns to SELECT from a ledger of schema `version`: NULL stands for
// the columns later versions added (4: same_body; 5: the search columns).
std::string stream_columns(int version);
std::string model_columns(int version);
// The ledger's schema version (2 to 6); throws gac::Error naming `path` for any other.
int schema_version(const Ledger& db, const std::filesystem::path& path);
const char* const kDataFilesKey = "data_files";

// Creates the tables of a new ledger at `path` and records `meta`.
void create_ledger(const std::filesystem::path& path, const RunMeta& meta);

// Version 2 keyed models by draw alone (one model per draw: guess and check);
// a writer opening such a ledger rekeys it, in one transaction.
void migrate_from_2(Ledger& db);
// Version 4 added streams.same_body (nested sampling's statistics; NULL in
// rows of older runs); a writer opening a version 2 or 3 ledger adds it.
void migrate_from_3(Ledger& db);
// Version 5 added the search columns (models.search_steps, search_calls,
// search_radius; streams.failed): a writer adds them, NULL in older rows.
void migrate_from_4(Ledger& db);
// Version 6 added the table search_checkpoints (searches in progress): a writer adds it, empty.
void migrate_from_5(Ledger& db);

nlohmann::json meta_to_json(const RunMeta& m);
std::string data_files_json(const std::vector<DataFile>& files);

std::optional<std::string> find_meta_value(const Ledger& db, const std::string& key);
// The value of `key`; throws gac::Error naming `path` when there is none.
std::string meta_value(const Ledger& db, const std::filesystem::path& path, const std::string& key);
void put_meta_value(Ledger& db, const std::string& key, const std::string& value);

// The run's metadata; json::exception when the stored JSON is corrupt.
RunMeta read_meta(const Ledger& db, const std::filesystem::path& path);

// A row of kStreamColumns, of kModelColumns; json::exception when a JSON column is corrupt.
StreamState state_from_row(const Statement& row);
StoredModel model_from_row(const Statement& row);

}  // namespace gac::store_detail
