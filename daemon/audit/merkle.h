// The Merkle tree over the audit log, with RFC 9162 (Certificate Transparency v2) hashing:
//
//   leaf hash  = SHA-256(0x00 || entry bytes)
//   node hash  = SHA-256(0x01 || left || right)
//   MTH({})    = SHA-256()                       (the empty tree)
//
// Leaves are numbered from 0. The tree stores, in a NodeStore, the hash of every *complete*
// (perfect) subtree: node (level, index) is the root of the 2^level leaves
// [index * 2^level, (index + 1) * 2^level). Level 0 holds the leaf hashes. A complete subtree
// never changes once written, so any tree size n up to the current size can be served from
// stored nodes: the root of the first n leaves, an inclusion proof or a consistency proof
// each read O(log² n) nodes at worst (O(log n) in the common case) and hash only
// O(log n) times. No leaf is ever rehashed.
//
// The proof functions follow RFC 9162 exactly:
//   §2.1.1   MTH          RootAt()
//   §2.1.3.1 PATH(m, D_n)  InclusionProof()       path from the leaf upwards
//   §2.1.3.2              VerifyInclusion()
//   §2.1.4.1 PROOF(m, D_n) ConsistencyProof()
//   §2.1.4.2              VerifyConsistency()
// docs/audit-merkle.md describes the format and gives a worked example.
//
// Thread-safety: the free functions are pure or read only through the `const NodeStore&` they
// are given; they may run concurrently with each other and with MerkleTree::Append as long as
// the store itself allows concurrent Get and Put (MemoryNodeStore does not; an SQLite store
// with a separate read connection does). MerkleTree is not thread-safe: one writer.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "record/status.h"

namespace safegate::audit {

inline constexpr size_t kHashSize = 32;
using Hash = std::array<uint8_t, kHashSize>;

// SHA-256(0x00 || entry).
Hash LeafHash(std::string_view entry);
// SHA-256(0x01 || left || right).
Hash NodeHash(const Hash& left, const Hash& right);
// SHA-256 of nothing: the root of the empty tree.
Hash EmptyRoot();

std::string HashHex(const Hash& hash);

// Where the tree keeps the hashes of its complete subtrees.
//
// A relational table implements it directly, keyed by NodePosition so that every append
// goes to the end of the table (the store's SqliteNodeStore, daemon/core/merkle_store.h):
//   CREATE TABLE merkle_nodes (pos INTEGER PRIMARY KEY, hash BLOB NOT NULL);
//   Get: SELECT hash FROM merkle_nodes WHERE pos = NodePosition(level, index)
//   Put: INSERT INTO merkle_nodes (pos, hash) VALUES (NodePosition(level, index), ?)
// After a failed append the caller rolls back its transaction (or savepoint), which removes
// the nodes the append wrote, and restores the tree from a Checkpoint; the same positions are
// then written again. A store without transactions (MemoryNodeStore) must let Put overwrite.
// The tree never deletes nodes. Transactions belong to the caller: MerkleTree::Append puts
// the new nodes into whatever transaction is open, beside the audit row itself.
class NodeStore {
 public:
  virtual ~NodeStore() = default;
  // The stored hash of node (level, index). A node the tree asks for and the store does not
  // have is corruption: kInternal, naming the node.
  virtual Result<Hash> Get(int level, uint64_t index) const = 0;
  // Stores node (level, index). kInternal (or kUnavailable) when the store cannot write.
  virtual Status Put(int level, uint64_t index, const Hash& hash) = 0;
};

// The order in which a MerkleTree writes nodes (each leaf, then every complete subtree it
// closes, smallest first), numbered from 0: the post-order of the forest of complete
// subtrees. A store keyed by this position only ever appends at its end. For node
// (level, index), with j = index + 1:
//   NodePosition = 2 * j * 2^level - popcount(j) - ctz(j) - 1
// e.g. leaves 0, 1 are 0, 1; node (1, 0) is 2; leaves 2, 3 are 3, 4; (1, 1) is 5; (2, 0) is 6.
// REQUIRES: (index + 1) << (level + 1) fits in 63 bits.
uint64_t NodePosition(int level, uint64_t index);
// How many nodes a tree of n leaves has stored: 2n - popcount(n) (positions 0 .. that - 1).
uint64_t NodeCountForLeaves(uint64_t n);
// The number of leaves n whose tree has stored exactly `nodes` nodes; nullopt when no tree
// size gives that count (a node table cut off part-way through an append).
std::optional<uint64_t> LeavesForNodeCount(uint64_t nodes);

// NodeStore in memory: one vector of hashes per level. For tests, benchmarks and tools that
// rebuild a tree from a log file. Not thread-safe.
class MemoryNodeStore final : public NodeStore {
 public:
  Result<Hash> Get(int level, uint64_t index) const override;
  Status Put(int level, uint64_t index, const Hash& hash) override;
  // Number of stored nodes (for tests that check nothing is rehashed or stored twice).
  size_t node_count() const;

 private:
  std::vector<std::vector<Hash>> levels_;
};

// MTH(D[0:n]) computed from stored complete subtrees.
// REQUIRES: the store holds every complete subtree of the first n leaves (that is, a
// MerkleTree over this store has size >= n). n = 0 gives EmptyRoot().
Result<Hash> RootAt(const NodeStore& store, uint64_t n);

// PATH(leaf_index, D[0:n]) of RFC 9162 §2.1.3.1: the sibling hashes from the leaf upwards.
// kBadRequest unless leaf_index < n. REQUIRES as for RootAt.
Result<std::vector<Hash>> InclusionProof(const NodeStore& store, uint64_t leaf_index, uint64_t n);

// PROOF(m, D[0:n]) of RFC 9162 §2.1.4.1, for 0 < m < n. For m == n (a tree is consistent
// with itself) the proof is empty, which VerifyConsistency accepts when the two roots are
// equal; RFC 9162 leaves that case undefined. kBadRequest for m == 0 or m > n.
Result<std::vector<Hash>> ConsistencyProof(const NodeStore& store, uint64_t m, uint64_t n);

// RFC 9162 §2.1.3.2. OK when `path` leads from `leaf_hash` at `leaf_index` to `root` in a tree
// of `tree_size` leaves; otherwise kInvalidInput saying what failed (index out of range, path
// too long or too short for this index and size, or the root it leads to).
Status VerifyInclusion(const Hash& leaf_hash, uint64_t leaf_index, uint64_t tree_size,
                       std::span<const Hash> path, const Hash& root);
// The root that `path` leads to, or kInvalidInput when the path has the wrong length for
// leaf_index and tree_size. VerifyInclusion compares its result with the expected root.
Result<Hash> RootFromInclusionProof(const Hash& leaf_hash, uint64_t leaf_index, uint64_t tree_size,
                                    std::span<const Hash> path);

// RFC 9162 §2.1.4.2. OK when `path` proves that the tree of `first` leaves with root
// `first_root` is a prefix of the tree of `second` leaves with root `second_root`;
// otherwise kInvalidInput saying what failed. first == second needs an empty path and equal
// roots; first == 0 is refused (there is nothing to prove about an empty tree).
Status VerifyConsistency(uint64_t first, uint64_t second, const Hash& first_root,
                         const Hash& second_root, std::span<const Hash> path);

// The writer's view of the tree: appends leaves and keeps the right edge in memory so that
// appending is O(1) amortised (two node writes per leaf on average) and the current root
// needs no store reads.
//
// Movable, not copyable. Holds a pointer to the store (not owned; must outlive the tree).
class MerkleTree {
 public:
  // A tree over `store` that already holds `size` leaves (0 for a new tree). Reads the
  // O(log size) nodes of the right edge; kInternal when one is missing.
  static Result<MerkleTree> Open(NodeStore* store, uint64_t size);

  uint64_t size() const { return size_; }
  // MTH of all leaves appended so far (EmptyRoot() when none), from memory.
  Hash Root() const;

  // Appends one leaf: writes its hash and the hash of every subtree it completes. On failure
  // the tree's size and right edge are unchanged (the caller rolls back its transaction).
  Status Append(const Hash& leaf_hash);
  Status AppendEntry(std::string_view entry_bytes) { return Append(LeafHash(entry_bytes)); }

  // What Append changes in memory, so that a caller whose transaction (or savepoint) rolled
  // back after successful Appends can put the tree back where it was.
  struct Checkpoint {
    uint64_t size = 0;
    std::vector<Hash> edge;
  };
  Checkpoint Save() const { return {size_, edge_}; }
  void Restore(Checkpoint checkpoint);

  const NodeStore& store() const { return *store_; }

 private:
  explicit MerkleTree(NodeStore* store) : store_(store) {}

  NodeStore* store_;
  uint64_t size_ = 0;
  // edge_[level] is the hash of the complete subtree of 2^level leaves on the right edge
  // when bit `level` of size_ is set (unused otherwise). The root folds these from the
  // smallest upwards.
  std::vector<Hash> edge_;
};

}  // namespace safegate::audit
