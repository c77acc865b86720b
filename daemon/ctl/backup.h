// Backup and restore of a gateway's store (safegatectl backup / restore; docs/operations.md).
//
// BackupStore copies <data_dir>/safegate.db to one self-contained SQLite file with SQLite's
// online backup API while the gateway keeps running: the whole copy is made in one read
// transaction, so it is the store exactly as of one commit (WAL readers do not block the
// gateway's writer, and the writer does not disturb the snapshot). The copy is checked
// (PRAGMA integrity_check, and the audit log verified offline) before it is renamed into
// place, so FILE is either a complete backup or untouched.
//
// The backup holds no key: the at-rest key (store.key), the tree-head signing key
// (signing.key) and the transfer keys (transfer_signing.key, transfer_sealing.key) stay in the
// data directory and must be backed up separately. Record bodies in the backup are sealed
// under store.key and cannot be read without it; peer gateways know this gateway by its
// transfer keys.
//
// RestoreStore puts a backup back into a data directory. It takes the data directory's lock
// (safegate.lock, the flock every gateway holds while it runs) and refuses while a gateway
// holds it; verifies the backup's integrity and audit log (tree heads checked with the data
// directory's signing.key when there is one) before anything in the directory changes; moves
// the store it replaces (safegate.db and any -wal/-shm/-journal) into
// <data_dir>/pre-restore-<UTC time>/ rather than deleting it; and renames the verified copy
// into place.
//
// Both refuse to run as root on a directory another user owns: files SQLite creates there
// (-wal, -shm, the restored store) would belong to root and lock the gateway out.
//
// Thread-safety: free functions without shared state; not for concurrent use on one
// directory. Errors: kInvalidInput for bad paths (naming them) and for a backup whose audit
// log does not verify (restore; naming the first fault), kUnavailable when a gateway holds
// the data directory, kInternal for I/O and SQLite failures (with the file and the cause).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/core/gateway.h"
#include "record/status.h"

namespace safegate::ctl {

struct BackupReport {
  std::string file;       // absolute path of the backup written
  int64_t bytes = 0;      // its size
  int64_t pages = 0;      // SQLite pages copied
  VerifyReport audit;     // the backup's audit log, verified offline
  std::string key_files;  // what to back up separately (for the operator)
  nlohmann::json ToJson() const;
};

// Writes a backup of data_dir's store to `to_file` (replaced atomically if it exists). A
// backup whose audit log does not verify is still written (it is evidence of the store's
// state); the report's audit.ok is then false and safegatectl exits 1.
Result<BackupReport> BackupStore(const std::string& data_dir, const std::string& to_file);

struct RestoreReport {
  std::string data_dir;
  std::string restored_from;
  VerifyReport audit;          // the restored store's audit log
  std::string previous_store;  // where the replaced store was moved ("" when there was none)
  std::vector<std::string> missing_keys;  // key files the gateway will need and that are absent
  nlohmann::json ToJson() const;
};

// Restores `from_file` into `data_dir` (created 0700 when missing). Nothing in data_dir
// changes unless the backup verifies.
Result<RestoreReport> RestoreStore(const std::string& from_file, const std::string& data_dir);

}  // namespace safegate::ctl
