// Small RAII wrappers over the sqlite3 C API, for the run's ledger: every
// failure is a gac::Error naming the ledger's file.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "gac/error.h"

// gac::store_detail: what the files of host/store/ share with each other and
// with nobody else.
namespace gac::store_detail {

constexpr int kBusyTimeoutMs = 60000;  // another process (e.g. a report) may hold a lock briefly

// SQLite reports a full disk as "database or disk is full" when a write
// fails, but as "disk I/O error" when the failure shows up at a sync (file
// systems that allocate late) or a truncation, without the operating
// system's error: then the free space of the ledger's file system tells.
std::string sqlite_failure(const std::string& path, int code, int system_errno, const std::string& message);

class Ledger {
 public:
  Ledger(const std::filesystem::path& path, int flags) : path_(path.string()) {
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
  Statement& bind_null(int i) { return check(sqlite3_bind_null(stmt_, i)); }
  Statement& bind_blob(int i, const void* data, size_t bytes) {
    return check(sqlite3_bind_blob64(stmt_, i, data, bytes, SQLITE_TRANSIENT));
  }
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
  bool column_is_null(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
  std::string column_blob(int c) const {
    const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt_, c));
    return data ? std::string(data, static_cast<size_t>(sqlite3_column_bytes(stmt_, c))) : std::string();
  }
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

}  // namespace gac::store_detail
