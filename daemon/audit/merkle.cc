#include "daemon/audit/merkle.h"

#include <algorithm>
#include <bit>
#include <cassert>

#include "daemon/audit/encoding.h"
#include "daemon/audit/sha256.h"

namespace safegate::audit {
namespace {

static_assert(kHashSize == std::tuple_size_v<Sha256Digest>);

constexpr int kMaxLevel = 63;  // 2^63 leaves is beyond anything an int64 seq can number

std::string NodeName(int level, uint64_t index) {
  return "merkle node (level " + std::to_string(level) + ", index " + std::to_string(index) + ")";
}

// The largest power of two strictly less than n (RFC 9162's k). REQUIRES: n >= 2.
uint64_t SplitPoint(uint64_t n) {
  assert(n >= 2);
  return uint64_t{1} << (std::bit_width(n - 1) - 1);
}

bool IsPowerOfTwo(uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

// MTH(D[start:start+len]) from the complete subtrees that make it up. The ranges RFC 9162's
// recursion produces always start at a multiple of the largest power of two <= len, so each
// of the binary pieces of len (largest first) is one stored node. REQUIRES: len >= 1.
Result<Hash> RangeHash(const NodeStore& store, uint64_t start, uint64_t len) {
  assert(len >= 1);
  Hash acc{};
  bool have = false;
  // Fold from the smallest (right-most) piece: MTH = H(p0, H(p1, ... H(p_{j-1}, p_j))).
  for (int level = 0; level <= kMaxLevel && (len >> level) != 0; ++level) {
    if (((len >> level) & 1) == 0) continue;
    const uint64_t piece_start = start + ((len >> (level + 1)) << (level + 1));
    assert(piece_start % (uint64_t{1} << level) == 0);
    auto node = store.Get(level, piece_start >> level);
    if (!node.ok()) return node.status();
    acc = have ? NodeHash(*node, acc) : *node;
    have = true;
  }
  return acc;
}

// Number of hashes in PATH(m, D[n]) and PROOF(m, D[n]); used only to explain a failed
// verification, so it walks the same recursion without reading anything.
size_t InclusionPathLength(uint64_t m, uint64_t n) {
  size_t count = 0;
  while (n > 1) {
    const uint64_t k = SplitPoint(n);
    if (m < k) {
      n = k;
    } else {
      m -= k;
      n -= k;
    }
    ++count;
  }
  return count;
}

size_t ConsistencyPathLength(uint64_t m, uint64_t n) {
  if (m == 0 || m >= n) return 0;
  size_t count = 0;
  bool whole = true;
  while (m != n) {
    const uint64_t k = SplitPoint(n);
    if (m <= k) {
      n = k;
    } else {
      m -= k;
      n -= k;
      whole = false;
    }
    ++count;
  }
  return count + (whole ? 0 : 1);
}

Status Fail(std::string what) { return Status::Invalid(std::move(what)); }

}  // namespace

Hash LeafHash(std::string_view entry) {
  static constexpr char kLeafPrefix = 0x00;
  return Sha256Of({std::string_view(&kLeafPrefix, 1), entry});
}

Hash NodeHash(const Hash& left, const Hash& right) {
  // One contiguous 65-byte message: this is the inner loop of appends and verification.
  char buf[1 + 2 * kHashSize];
  buf[0] = 0x01;
  std::copy(left.begin(), left.end(), buf + 1);
  std::copy(right.begin(), right.end(), buf + 1 + kHashSize);
  return Sha256Of({std::string_view(buf, sizeof buf)});
}

Hash EmptyRoot() { return Sha256Of({}); }

std::string HashHex(const Hash& hash) { return ToHex(std::span<const uint8_t>(hash)); }

// ---- MemoryNodeStore ----

Result<Hash> MemoryNodeStore::Get(int level, uint64_t index) const {
  if (level < 0 || static_cast<size_t>(level) >= levels_.size() ||
      index >= levels_[static_cast<size_t>(level)].size()) {
    return Status::Internal(NodeName(level, index) + " is missing from the store");
  }
  return levels_[static_cast<size_t>(level)][index];
}

Status MemoryNodeStore::Put(int level, uint64_t index, const Hash& hash) {
  if (level < 0 || level > kMaxLevel) {
    return Status::Internal(NodeName(level, index) + ": level out of range");
  }
  const auto l = static_cast<size_t>(level);
  if (levels_.size() <= l) levels_.resize(l + 1);
  std::vector<Hash>& row = levels_[l];
  if (index < row.size()) {
    row[index] = hash;
  } else if (index == row.size()) {
    row.push_back(hash);
  } else {
    // The tree writes each level left to right; a gap means a caller bug, and filling it with
    // zeros would turn it into silently wrong proofs.
    return Status::Internal(NodeName(level, index) + " would leave a gap: level holds " +
                            std::to_string(row.size()) + " nodes");
  }
  return Status::Ok();
}

size_t MemoryNodeStore::node_count() const {
  size_t n = 0;
  for (const auto& row : levels_) n += row.size();
  return n;
}

// ---- proofs ----

Result<Hash> RootAt(const NodeStore& store, uint64_t n) {
  if (n == 0) return EmptyRoot();
  return RangeHash(store, 0, n);
}

Result<std::vector<Hash>> InclusionProof(const NodeStore& store, uint64_t leaf_index, uint64_t n) {
  if (leaf_index >= n) {
    return Status::BadRequest("leaf index " + std::to_string(leaf_index) + " is not in a tree of " +
                              std::to_string(n) + " leaves");
  }
  // PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])  if m < k
  //              = PATH(m - k, D[k:n]) : MTH(D[0:k]) otherwise.
  // Walking down collects the siblings top first; the proof lists them leaf first.
  std::vector<Hash> path;
  uint64_t start = 0;
  uint64_t m = leaf_index;
  while (n > 1) {
    const uint64_t k = SplitPoint(n);
    Result<Hash> sibling = m < k ? RangeHash(store, start + k, n - k) : RangeHash(store, start, k);
    if (!sibling.ok()) return sibling.status();
    path.push_back(*sibling);
    if (m < k) {
      n = k;
    } else {
      start += k;
      m -= k;
      n -= k;
    }
  }
  std::reverse(path.begin(), path.end());
  return path;
}

Result<std::vector<Hash>> ConsistencyProof(const NodeStore& store, uint64_t m, uint64_t n) {
  if (m == 0) {
    return Status::BadRequest("a consistency proof needs a first tree size of at least 1");
  }
  if (m > n) {
    return Status::BadRequest("first tree size " + std::to_string(m) +
                              " is larger than second tree size " + std::to_string(n));
  }
  std::vector<Hash> proof;
  if (m == n) return proof;
  // SUBPROOF(m, D[n], b):
  //   m == n:  []  if b, else [MTH(D[n])]
  //   m <= k:  SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
  //   m > k:   SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
  uint64_t start = 0;
  bool whole = true;  // b: the old tree is still the whole of the current subtree's left edge
  while (m != n) {
    const uint64_t k = SplitPoint(n);
    Result<Hash> node = m <= k ? RangeHash(store, start + k, n - k) : RangeHash(store, start, k);
    if (!node.ok()) return node.status();
    proof.push_back(*node);
    if (m <= k) {
      n = k;
    } else {
      start += k;
      m -= k;
      n -= k;
      whole = false;
    }
  }
  if (!whole) {
    auto node = RangeHash(store, start, n);
    if (!node.ok()) return node.status();
    proof.push_back(*node);
  }
  std::reverse(proof.begin(), proof.end());
  return proof;
}

// ---- verification (RFC 9162 §2.1.3.2 and §2.1.4.2, step by step) ----

Result<Hash> RootFromInclusionProof(const Hash& leaf_hash, uint64_t leaf_index, uint64_t tree_size,
                                    std::span<const Hash> path) {
  // 1. leaf_index >= tree_size fails.
  if (leaf_index >= tree_size) {
    return Fail("leaf index " + std::to_string(leaf_index) + " is not in a tree of " +
                std::to_string(tree_size) + " leaves");
  }
  auto wrong_length = [&] {
    return Fail("the path has " + std::to_string(path.size()) +
                " hashes; an inclusion proof for leaf " + std::to_string(leaf_index) +
                " in a tree of " + std::to_string(tree_size) + " leaves has " +
                std::to_string(InclusionPathLength(leaf_index, tree_size)));
  };
  // 2.-3.
  uint64_t fn = leaf_index;
  uint64_t sn = tree_size - 1;
  Hash r = leaf_hash;
  // 4.
  for (const Hash& p : path) {
    if (sn == 0) return wrong_length();
    if ((fn & 1) != 0 || fn == sn) {
      r = NodeHash(p, r);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  // 5. (first half) sn must have reached 0.
  if (sn != 0) return wrong_length();
  return r;
}

Status VerifyInclusion(const Hash& leaf_hash, uint64_t leaf_index, uint64_t tree_size,
                       std::span<const Hash> path, const Hash& root) {
  auto computed = RootFromInclusionProof(leaf_hash, leaf_index, tree_size, path);
  if (!computed.ok()) return computed.status();
  if (*computed != root) {
    return Fail("the path leads from leaf " + std::to_string(leaf_index) + " to root " +
                HashHex(*computed) + ", not to the expected root " + HashHex(root) +
                " of the tree of " + std::to_string(tree_size) + " leaves");
  }
  return Status::Ok();
}

Status VerifyConsistency(uint64_t first, uint64_t second, const Hash& first_root,
                         const Hash& second_root, std::span<const Hash> path) {
  if (first == 0) return Fail("first tree size is 0: there is nothing to prove");
  if (first > second) {
    return Fail("first tree size " + std::to_string(first) + " is larger than second tree size " +
                std::to_string(second));
  }
  if (first == second) {
    if (!path.empty()) {
      return Fail("trees of equal size " + std::to_string(first) +
                  " need an empty consistency path, got " + std::to_string(path.size()) +
                  " hashes");
    }
    if (first_root != second_root) {
      return Fail("two different roots for tree size " + std::to_string(first) + ": " +
                  HashHex(first_root) + " and " + HashHex(second_root));
    }
    return Status::Ok();
  }
  auto wrong_length = [&] {
    return Fail("the path has " + std::to_string(path.size()) +
                " hashes; a consistency proof from " + std::to_string(first) + " to " +
                std::to_string(second) + " leaves has " +
                std::to_string(ConsistencyPathLength(first, second)));
  };
  // 1. An empty path fails.
  if (path.empty()) return wrong_length();
  // 2. If first is an exact power of 2, prepend first_hash.
  std::vector<Hash> cp;
  cp.reserve(path.size() + 1);
  if (IsPowerOfTwo(first)) cp.push_back(first_root);
  cp.insert(cp.end(), path.begin(), path.end());
  // 3.
  uint64_t fn = first - 1;
  uint64_t sn = second - 1;
  // 4.
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  // 5.
  Hash fr = cp[0];
  Hash sr = cp[0];
  // 6.
  for (size_t i = 1; i < cp.size(); ++i) {
    const Hash& c = cp[i];
    if (sn == 0) return wrong_length();
    if ((fn & 1) != 0 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  // 7.
  if (sn != 0) return wrong_length();
  if (fr != first_root) {
    return Fail("the path rebuilds root " + HashHex(fr) + " for the first tree (" +
                std::to_string(first) + " leaves), not the expected " + HashHex(first_root));
  }
  if (sr != second_root) {
    return Fail("the path rebuilds root " + HashHex(sr) + " for the second tree (" +
                std::to_string(second) + " leaves), not the expected " + HashHex(second_root));
  }
  return Status::Ok();
}

// ---- MerkleTree ----

Result<MerkleTree> MerkleTree::Open(NodeStore* store, uint64_t size) {
  MerkleTree tree(store);
  tree.size_ = size;
  for (int level = 0; level <= kMaxLevel && (size >> level) != 0; ++level) {
    if (((size >> level) & 1) == 0) continue;
    auto node = store->Get(level, (size >> level) - 1);
    if (!node.ok()) {
      return Status::Internal("opening the Merkle tree of " + std::to_string(size) +
                              " leaves: " + node.status().detail());
    }
    tree.edge_.resize(static_cast<size_t>(level) + 1);
    tree.edge_[static_cast<size_t>(level)] = *node;
  }
  return tree;
}

Hash MerkleTree::Root() const {
  if (size_ == 0) return EmptyRoot();
  Hash acc{};
  bool have = false;
  for (size_t level = 0; level < edge_.size(); ++level) {
    if (((size_ >> level) & 1) == 0) continue;
    acc = have ? NodeHash(edge_[level], acc) : edge_[level];
    have = true;
  }
  return acc;
}

uint64_t NodePosition(int level, uint64_t index) {
  const uint64_t j = index + 1;
  return 2 * (j << level) - static_cast<uint64_t>(std::popcount(j)) -
         static_cast<uint64_t>(std::countr_zero(j)) - 1;
}

uint64_t NodeCountForLeaves(uint64_t n) { return 2 * n - static_cast<uint64_t>(std::popcount(n)); }

std::optional<uint64_t> LeavesForNodeCount(uint64_t nodes) {
  // NodeCountForLeaves grows strictly with n (by 1 + ctz(n + 1) per leaf), and n <= nodes.
  uint64_t lo = 0, hi = nodes;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (NodeCountForLeaves(mid) < nodes) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (NodeCountForLeaves(lo) != nodes) return std::nullopt;
  return lo;
}

Status MerkleTree::Append(const Hash& leaf_hash) {
  const uint64_t index = size_;
  if (Status s = store_->Put(0, index, leaf_hash); !s.ok()) return s;
  // Each set low bit of the old size is a complete subtree on the right edge that the new
  // leaf's subtree now pairs with (like carrying in binary addition).
  Hash h = leaf_hash;
  size_t level = 0;
  while (((index >> level) & 1) != 0) {
    h = NodeHash(edge_[level], h);
    ++level;
    if (Status s = store_->Put(static_cast<int>(level), index >> level, h); !s.ok()) return s;
  }
  if (edge_.size() <= level) edge_.resize(level + 1);
  edge_[level] = h;
  size_ = index + 1;
  return Status::Ok();
}

void MerkleTree::Restore(Checkpoint checkpoint) {
  size_ = checkpoint.size;
  edge_ = std::move(checkpoint.edge);
}

}  // namespace safegate::audit
