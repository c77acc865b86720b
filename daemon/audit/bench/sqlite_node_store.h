// A NodeStore over an SQLite table, for the benchmarks: it shows the interface maps onto
// the table docs/audit-merkle.md proposes, and measures what durable appends and proofs cost
// on disk. The store's production implementation lives with the store (daemon/core); this one
// has no error translation beyond what a benchmark needs.
//
//   CREATE TABLE merkle_node (level INTEGER NOT NULL, idx INTEGER NOT NULL,
//                             hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID;
//
// Not thread-safe (one connection).
#pragma once

#include <sqlite3.h>

#include <cstring>
#include <string>

#include "daemon/audit/merkle.h"

namespace safegate::audit::bench {

class SqliteNodeStore final : public NodeStore {
 public:
  // Opens (creating) the database at `path` in WAL mode with synchronous=FULL.
  explicit SqliteNodeStore(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) return;
    Exec("PRAGMA journal_mode=WAL");
    Exec("PRAGMA synchronous=FULL");
    Exec("PRAGMA cache_size=-262144");  // 256 MiB: the upper levels stay hot, as they would
    Exec(
        "CREATE TABLE IF NOT EXISTS merkle_node (level INTEGER NOT NULL, idx INTEGER NOT NULL, "
        "hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID");
    // Stands in for the audit table the entries go to in the same transaction.
    Exec("CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, entry BLOB NOT NULL)");
    sqlite3_prepare_v2(db_, "SELECT hash FROM merkle_node WHERE level = ? AND idx = ?", -1, &get_,
                       nullptr);
    sqlite3_prepare_v2(db_,
                       "INSERT OR REPLACE INTO merkle_node (level, idx, hash) VALUES (?, ?, ?)", -1,
                       &put_, nullptr);
    sqlite3_prepare_v2(db_, "INSERT INTO audit (seq, entry) VALUES (?, ?)", -1, &entry_, nullptr);
  }
  ~SqliteNodeStore() override {
    sqlite3_finalize(get_);
    sqlite3_finalize(put_);
    sqlite3_finalize(entry_);
    sqlite3_close(db_);
  }
  SqliteNodeStore(const SqliteNodeStore&) = delete;
  SqliteNodeStore& operator=(const SqliteNodeStore&) = delete;

  bool ok() const { return get_ != nullptr && put_ != nullptr && entry_ != nullptr; }

  Result<Hash> Get(int level, uint64_t index) const override {
    sqlite3_reset(get_);
    sqlite3_bind_int(get_, 1, level);
    sqlite3_bind_int64(get_, 2, static_cast<sqlite3_int64>(index));
    if (sqlite3_step(get_) != SQLITE_ROW ||
        sqlite3_column_bytes(get_, 0) != static_cast<int>(kHashSize)) {
      return Status::Internal("merkle node missing");
    }
    Hash h;
    std::memcpy(h.data(), sqlite3_column_blob(get_, 0), kHashSize);
    return h;
  }

  Status Put(int level, uint64_t index, const Hash& hash) override {
    sqlite3_reset(put_);
    sqlite3_bind_int(put_, 1, level);
    sqlite3_bind_int64(put_, 2, static_cast<sqlite3_int64>(index));
    sqlite3_bind_blob(put_, 3, hash.data(), static_cast<int>(hash.size()), SQLITE_STATIC);
    if (sqlite3_step(put_) != SQLITE_DONE) return Status::Internal(sqlite3_errmsg(db_));
    return Status::Ok();
  }

  Status PutEntry(uint64_t seq, std::string_view bytes) {
    sqlite3_reset(entry_);
    sqlite3_bind_int64(entry_, 1, static_cast<sqlite3_int64>(seq));
    sqlite3_bind_blob(entry_, 2, bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC);
    if (sqlite3_step(entry_) != SQLITE_DONE) return Status::Internal(sqlite3_errmsg(db_));
    return Status::Ok();
  }

  bool Exec(const char* sql) {
    return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* get_ = nullptr;
  sqlite3_stmt* put_ = nullptr;
  sqlite3_stmt* entry_ = nullptr;
};

}  // namespace safegate::audit::bench
