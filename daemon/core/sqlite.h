// Thin RAII wrappers over the SQLite C API, and the one place SQLite result codes become a
// safegate::Status (SqliteStatus).
//
// Db owns one connection; Stmt owns one prepared statement. Neither is thread-safe: the
// store gives each connection to exactly one thread at a time (the writer thread owns the
// write connection; the stats reader is guarded by a mutex).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "record/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace safegate::core {

// Translates a SQLite result code into a Status. `what` names the operation, e.g.
// "insert audit entry"; `db` (may be null) supplies sqlite3_errmsg. SQLITE_OK, SQLITE_ROW
// and SQLITE_DONE are success. Busy/locked and a full disk are kUnavailable (the request can
// be retried later); everything else is kInternal.
Status SqliteStatus(int rc, sqlite3* db, std::string_view what);

class Stmt;

class Db {
 public:
  enum class Mode { kReadWriteCreate, kReadOnly };

  // Opens `path`. The returned Db closes the connection when destroyed.
  static Result<std::unique_ptr<Db>> Open(const std::string& path, Mode mode);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs one or more SQL statements that return no rows the caller needs.
  Status Exec(std::string_view sql);
  // A statement prepared once per connection and reused (reset on each Prepare).
  // `sql` must stay alive as long as the Db (pass string literals).
  // The returned reference stays valid until the Db is destroyed.
  Result<Stmt*> Prepare(const char* sql);
  // A fresh statement owned by the caller (for ad hoc SQL).
  Result<std::unique_ptr<Stmt>> PrepareOnce(std::string_view sql);

  // Reads a PRAGMA (or any single-value query) as an integer.
  Result<int64_t> QueryInt(const char* sql);
  // Rewinds every cached statement, so none holds a read open across COMMIT or ROLLBACK.
  void ResetAll();

  int64_t LastInsertRowid() const;
  int Changes() const;
  bool InTransaction() const;
  sqlite3* raw() const { return db_; }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::map<const char*, std::unique_ptr<Stmt>> cache_;
};

// A prepared statement. Bind parameters are 1-based; columns are 0-based.
class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, std::string_view text);  // TEXT
  Stmt& Bind(int i, const char* text) { return Bind(i, std::string_view(text)); }
  Stmt& BindBlob(int i, const void* data, size_t size);
  Stmt& BindBlob(int i, std::string_view bytes) { return BindBlob(i, bytes.data(), bytes.size()); }
  Stmt& BindNull(int i);
  Stmt& Bind(int i, std::optional<int64_t> v) { return v ? Bind(i, *v) : BindNull(i); }

  // Steps once: true when a row is available, false when done, or an error Status.
  Result<bool> Step();
  // Steps to completion of a statement that returns no rows.
  Status Run();
  // Clears bindings and rewinds, ready for reuse.
  void Reset();

  bool IsNull(int col) const;
  int64_t Int(int col) const;
  std::optional<int64_t> OptInt(int col) const;
  std::string Text(int col) const;  // "" for NULL
  std::string Blob(int col) const;  // raw bytes; "" for NULL

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

}  // namespace safegate::core
