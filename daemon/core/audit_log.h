// The audit log: append-only, hash-linked entries in the `audit` table.
//
// docs/audit-log.md is the normative description of the entry bytes, the chain hash, the
// actions and verification; this header and audit_log.cc implement exactly that.
//
//   entry_n = record::CanonicalJson({"action","actor","at","decision","detail","message_id",
//                                    "purpose","reasons","record_id","seq","subject"})
//   h_0 = 32 zero bytes,  h_n = SHA-256(h_{n-1} || entry_n)
//
// Thread-safety: AuditLog is used only by the store's writer thread. The free functions are
// pure (VerifyChain reads through the connection it is given).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "daemon/core/gateway.h"
#include "daemon/core/sqlite.h"
#include "record/status.h"

namespace safegate::core {

// The canonical bytes of `entry` (its seq, at_ms and every content field; hash ignored).
std::string AuditEntryBytes(const AuditEntry& entry);

// Parses stored entry bytes. kInternal naming the first thing wrong when the bytes are not
// an entry of the documented shape. `hash` is left empty.
Result<AuditEntry> ParseAuditEntry(std::string_view bytes);

// Every agency an entry names: its actor (unless "-" or empty) and, in its detail, the
// string "recipient" and the string arrays "recipients" and "notified". These rows go to the
// audit_agencies index, which the agency filter of audit queries reads.
std::set<std::string> AgenciesNamedBy(const AuditEntry& entry);

// Where the chain ends: the last entry's seq and hash (h_0 and seq 0 for an empty log).
struct ChainHead {
  int64_t seq = 0;
  std::string hash = std::string(32, '\0');  // raw bytes
};

class AuditLog {
 public:
  // `db` is the write connection; not owned.
  explicit AuditLog(Db* db) : db_(db) {}

  // Reads the head from disk (at open, and after a failed commit).
  Status Load();
  // Appends `entry` (REQUIRES: a transaction is open): assigns seq = head.seq + 1, writes the
  // row, its audit_agencies rows and the chain hash, and fills entry.seq and entry.hash.
  // On failure nothing in memory changes; the caller rolls back the database side.
  Status Append(AuditEntry& entry);

  const ChainHead& head() const { return head_; }
  // Puts back a head saved before a job whose savepoint was rolled back.
  void Restore(ChainHead head) { head_ = std::move(head); }

 private:
  Db* db_;
  ChainHead head_;
};

// Recomputes the chain from the stored bytes and checks every stored column against them.
// Reports the first problem: a gap in seq ("missing"), bytes that do not parse or do not hash
// to the stored hash ("altered"), bytes of another seq ("reordered"), or an indexed column
// or audit_agencies row that disagrees with the bytes ("column mismatch").
// REQUIRES: run inside one read transaction for a consistent view.
Result<VerifyReport> VerifyChain(Db& db);

}  // namespace safegate::core
