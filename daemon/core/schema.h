// The store's schema and its migrations.
//
// The schema version lives in PRAGMA user_version. Migrations form one ordered list; at open
// every migration newer than the database's version runs, each in its own BEGIN IMMEDIATE
// transaction that also sets user_version, so a crash leaves the database at a whole version.
// A database newer than this program is refused rather than guessed at. docs/store.md
// describes the tables.
#pragma once

#include <string_view>
#include <vector>

#include "daemon/core/sqlite.h"
#include "record/status.h"

namespace safegate::core {

struct Migration {
  int version;  // 1, 2, 3, ... in order, no gaps
  std::string_view sql;
  // Optional: a query returning one integer, run before `sql` inside the migration's
  // transaction; non-zero refuses the migration with `refusal` (data this migration cannot
  // carry forward).
  std::string_view precondition = {};
  std::string_view refusal = {};
};

// Every migration, oldest first. The last one's version is the current schema version.
const std::vector<Migration>& Migrations();
int CurrentSchemaVersion();

// Sets the write connection's pragmas: WAL, synchronous=FULL, foreign_keys=ON, a busy
// timeout, secure_delete, a 64 MiB page cache, temporary files in memory. REQUIRES: no
// transaction open.
Status ConfigureWriteConnection(Db& db);

// Brings the database to CurrentSchemaVersion(). kInternal if it is newer than this program.
Status Migrate(Db& db);

// For read-only use (offline verification): OK when the schema is one this program knows.
Status CheckSchemaVersion(Db& db);

}  // namespace safegate::core
