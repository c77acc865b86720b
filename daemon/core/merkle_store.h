// The verifiable audit log's tables in the store: the Merkle tree's nodes (`merkle_nodes`)
// and the signed tree heads (`tree_heads`). docs/audit-merkle.md describes both.
//
// SqliteNodeStore is daemon/audit's NodeStore over `merkle_nodes`, on whichever connection it
// is given: the writer's (appends go into the transaction that writes the entries, so a crash
// can never leave an entry without its leaf) or a read-only one (proofs, verification).
//
// Ownership: borrows the connection; it must outlive the store.
// Thread-safety: as the connection (none).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "daemon/audit/merkle.h"
#include "daemon/audit/tree_head.h"
#include "daemon/core/sqlite.h"
#include "record/status.h"

namespace safegate::core {

class SqliteNodeStore final : public audit::NodeStore {
 public:
  explicit SqliteNodeStore(Db* db) : db_(db) {}
  // kInternal naming the node when it is missing or not 32 bytes.
  Result<audit::Hash> Get(int level, uint64_t index) const override;
  // A plain INSERT: a node is written once. After a rolled-back transaction the rows are gone
  // too, so the same position can be written again; a node already present is corruption
  // (the constraint error fails the append).
  Status Put(int level, uint64_t index, const audit::Hash& hash) override;

 private:
  Db* db_;
};

// The number of leaves `merkle_nodes` holds: the tree size whose nodes end at its last
// position (0 for none). kInternal when the table ends part-way through one leaf's nodes.
Result<uint64_t> StoredLeafCount(Db& db);

// A signed tree head as stored, with its position (1, 2, ...: the order of signing).
struct StoredTreeHead {
  int64_t position = 0;
  audit::SignedTreeHead head;
};

// Every stored head, by position. kInternal when a row's hash or signature has the wrong size.
Result<std::vector<StoredTreeHead>> ReadTreeHeads(Db& db);
// The most recently signed head, if any.
Result<std::optional<StoredTreeHead>> ReadLatestTreeHead(Db& db);
// Appends a head; returns its position. REQUIRES: a transaction is open.
Result<int64_t> InsertTreeHead(Db& db, const audit::SignedTreeHead& head);

}  // namespace safegate::core
