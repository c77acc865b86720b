// The audit log: append-only, hash-linked entries in the `audit` table, the RFC 9162 Merkle
// tree over the same entry bytes in `merkle_nodes`, and signed tree heads in `tree_heads`.
//
// docs/audit-log.md is the normative description of the entry bytes (version 2), the sealed
// details, the chain hash, the actions and verification; docs/audit-merkle.md of the tree and
// the heads. This header and audit_log.cc implement exactly that.
//
//   entry_n = record::CanonicalJson({"action","actor","at","decision","detail","details_hash",
//                                    "message_id","purpose","reasons","record_id","seq"})
//   h_0 = 32 zero bytes,  h_n = SHA-256(h_{n-1} || entry_n)
//   leaf n-1 of the Merkle tree = SHA-256(0x00 || entry_n)
//
// Every Append writes, in the caller's transaction, the entry row, its audit_agencies rows,
// its sealed details (and the subject's key when new) and its Merkle nodes: a crash can never
// leave an entry without its leaf, or a leaf without its entry.
//
// Thread-safety: AuditLog is used only by the store's writer thread. The free functions are
// pure (VerifyLog reads through the connection it is given).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "daemon/audit/merkle.h"
#include "daemon/audit/tree_head.h"
#include "daemon/core/clock.h"
#include "daemon/core/gateway.h"
#include "daemon/core/merkle_store.h"
#include "daemon/core/sqlite.h"
#include "daemon/core/subject_keys.h"
#include "record/status.h"

namespace safegate::core {

// The canonical bytes of `entry` (its seq, at_ms, details_hash and every content field;
// subject, text, erased and hash are not part of the bytes).
std::string AuditEntryBytes(const AuditEntry& entry);

// Parses stored entry bytes. kInternal naming the first thing wrong when the bytes are not
// an entry of the documented shape. `hash` and `subject` are left empty.
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

struct AuditLogOptions {
  // Seals entries' details. Null: an entry with a subject is refused (kInternal).
  SubjectKeys* subject_keys = nullptr;
  // Signs tree heads. Null: no heads are signed (and none are checked at Load).
  const audit::SigningKey* signing_key = nullptr;
  audit::TreeHeadPolicy head_policy;
  // The heads' timestamps; null: the system clock. Not owned.
  const Clock* clock = nullptr;
};

class AuditLog {
 public:
  // `db` is the write connection; not owned, nor is anything in `options`.
  AuditLog(Db* db, AuditLogOptions options);

  // Reads the chain head, the Merkle tree's right edge and the latest signed head from disk
  // (at open, and after a failed commit), and checks that they agree: the tree holds exactly
  // one leaf per entry, and the latest head covers no more entries than the log holds, matches
  // the tree's root at its size and verifies under the signing key. kInternal saying what
  // disagrees otherwise (the log was tampered with or truncated; the gateway must not sign
  // on top of it).
  Status Load();
  // Appends `entry` (REQUIRES: a transaction is open): assigns seq = head.seq + 1, seals the
  // details (subject, text) when there are any and sets details_hash, writes the row, its
  // audit_agencies rows, the chain hash and the Merkle nodes, and fills entry.seq,
  // entry.details_hash and entry.hash. On failure nothing in memory changes; the caller rolls
  // back the database side.
  Status Append(AuditEntry& entry);

  // What Append and SignHeadIfDue change in memory, so that a caller whose savepoint rolled
  // back can put the log back where it was.
  struct Checkpoint {
    ChainHead chain;
    audit::MerkleTree::Checkpoint tree;
    std::optional<audit::SignedTreeHead> latest_head;
  };
  Checkpoint Save() const;
  // Also forgets the subject key remembered for sealing (see ForgetSubjectKeys).
  void Restore(Checkpoint checkpoint);
  // Wipes the subject key SubjectKeys::Seal remembers between the entries of one job; the
  // writer calls it at the start and end of each job (Load and Restore do too).
  void ForgetSubjectKeys();

  const ChainHead& head() const { return head_; }
  uint64_t tree_size() const { return tree_.size(); }
  audit::Hash root() const { return tree_.Root(); }
  const audit::NodeStore& nodes() const { return nodes_; }
  const std::optional<audit::SignedTreeHead>& latest_head() const { return latest_head_; }
  const audit::SigningKey* signing_key() const { return options_.signing_key; }

  // Signs and stores a tree head over every entry so far when the policy says one is due, or,
  // with `force`, whenever the log has grown since the last head. REQUIRES: a transaction is
  // open. Returns whether a head was signed. Without a signing key: false.
  Result<bool> SignHeadIfDue(bool force);
  // While some entries have no signed head: how long until one is due by time (zero when
  // overdue). nullopt when every entry is under a head, or heads are not signed.
  std::optional<std::chrono::milliseconds> HeadDueIn() const;

 private:
  Db* db_;
  AuditLogOptions options_;
  SqliteNodeStore nodes_;
  audit::MerkleTree tree_;
  ChainHead head_;
  std::optional<audit::SignedTreeHead> latest_head_;
  // When the last head was signed (or the log loaded), on the steady clock: the interval
  // between heads is measured in real time even when the timestamps come from a test clock.
  std::chrono::steady_clock::time_point last_signed_ = std::chrono::steady_clock::now();
};

struct VerifyOptions {
  // Tree heads' signatures are checked with this key; null: not checked.
  const audit::PublicKey* public_key = nullptr;
  // When given, each entry's sealed details whose key is live are opened and checked against
  // its details_hash (the running gateway has the key; offline verification does not).
  SubjectKeys* subject_keys = nullptr;
};

// Verifies the whole log: recomputes the chain from the stored bytes and checks every stored
// column against them; recomputes the Merkle tree from the bytes and checks every stored node;
// checks every signed tree head (signature, size, root) and looks for two heads of one size
// with different roots. The report names the first problem by seq: a gap in seq ("missing"),
// bytes that do not parse or do not hash to the stored hash ("altered"), bytes of another seq
// ("reordered"), an indexed column or audit_agencies row that disagrees with the bytes
// ("column mismatch"), details that do not match their hash ("details mismatch"), a stored
// node that the bytes do not produce ("merkle mismatch"), entries a head signed that are gone
// ("truncated"), or a head at fault ("root mismatch", "equivocation", "signature"); heads at
// fault are each listed by position in head_faults. docs/audit-log.md, "Verification".
// REQUIRES: run inside one read transaction for a consistent view.
Result<VerifyReport> VerifyLog(Db& db, const VerifyOptions& options);
// VerifyLog without signature or details checks.
inline Result<VerifyReport> VerifyChain(Db& db) { return VerifyLog(db, {}); }

}  // namespace safegate::core
