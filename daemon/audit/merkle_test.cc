#include "daemon/audit/merkle.h"

#include <gtest/gtest.h>

#include <bit>
#include <string>
#include <vector>

#include "daemon/audit/encoding.h"

namespace safegate::audit {
namespace {

Hash H(std::string_view hex) {
  auto h = FixedFromHex<kHashSize>(hex);
  EXPECT_TRUE(h.has_value()) << hex;
  return h.value_or(Hash{});
}

std::vector<std::string> HexList(const std::vector<Hash>& hashes) {
  std::vector<std::string> out;
  for (const Hash& h : hashes) out.push_back(HashHex(h));
  return out;
}

// ---- A naive reference, written straight from the definitions of RFC 9162 §2.1.1,
// §2.1.3.1 and §2.1.4.1: recursive over the entries themselves, rehashing everything. ----

using Entries = std::vector<std::string>;

Entries Slice(const Entries& d, size_t from, size_t to) {
  return Entries(d.begin() + static_cast<ptrdiff_t>(from), d.begin() + static_cast<ptrdiff_t>(to));
}

// "the largest power of two smaller than n"
size_t RefK(size_t n) {
  size_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

Hash RefMth(const Entries& d) {
  if (d.empty()) return EmptyRoot();
  if (d.size() == 1) return LeafHash(d[0]);
  const size_t k = RefK(d.size());
  return NodeHash(RefMth(Slice(d, 0, k)), RefMth(Slice(d, k, d.size())));
}

std::vector<Hash> RefPath(size_t m, const Entries& d) {
  if (d.size() == 1) return {};
  const size_t k = RefK(d.size());
  std::vector<Hash> out;
  if (m < k) {
    out = RefPath(m, Slice(d, 0, k));
    out.push_back(RefMth(Slice(d, k, d.size())));
  } else {
    out = RefPath(m - k, Slice(d, k, d.size()));
    out.push_back(RefMth(Slice(d, 0, k)));
  }
  return out;
}

std::vector<Hash> RefSubproof(size_t m, const Entries& d, bool b) {
  const size_t n = d.size();
  if (m == n) {
    if (b) return {};
    return {RefMth(d)};
  }
  const size_t k = RefK(n);
  std::vector<Hash> out;
  if (m <= k) {
    out = RefSubproof(m, Slice(d, 0, k), b);
    out.push_back(RefMth(Slice(d, k, n)));
  } else {
    out = RefSubproof(m - k, Slice(d, k, n), false);
    out.push_back(RefMth(Slice(d, 0, k)));
  }
  return out;
}

std::vector<Hash> RefProof(size_t m, const Entries& d) { return RefSubproof(m, d, true); }

Entries MakeEntries(size_t n) {
  Entries d;
  for (size_t i = 0; i < n; ++i) {
    d.push_back("{\"action\":\"record_read\",\"seq\":" + std::to_string(i + 1) + "}");
  }
  return d;
}

Hash Flip(Hash h, size_t byte, uint8_t mask) {
  h[byte % kHashSize] ^= mask;
  return h;
}

// A tree of `n` entries over a fresh in-memory store.
struct Built {
  MemoryNodeStore store;
  std::vector<Hash> roots_while_growing;  // tree.Root() after each append
};
void Build(Built& b, const Entries& d) {
  auto tree = MerkleTree::Open(&b.store, 0);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  for (const std::string& e : d) {
    ASSERT_TRUE(tree->AppendEntry(e).ok());
    b.roots_while_growing.push_back(tree->Root());
  }
}

// ---- hashing primitives and the published RFC 6962 test vectors ----

// The inputs and roots of the Certificate Transparency reference tests (RFC 6962 hashing,
// which RFC 9162 keeps unchanged).
const Entries& CtLeaves() {
  static const Entries leaves = [] {
    Entries d;
    for (const char* hex : {"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                            "606162636465666768696a6b6c6d6e6f"}) {
      d.push_back(*FromHex(hex));
    }
    return d;
  }();
  return leaves;
}
const char* const kCtRoots[] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

TEST(MerkleHashing, DomainSeparatedLeafAndNode) {
  EXPECT_EQ(HashHex(EmptyRoot()), kCtRoots[0]);
  // SHA-256(0x00): the leaf hash of empty entry bytes, which is also the root of tree size 1.
  EXPECT_EQ(HashHex(LeafHash("")), kCtRoots[1]);
  // A leaf is never equal to a node over the same bytes: the prefixes differ.
  const Hash a = LeafHash("a");
  const Hash b = LeafHash("b");
  std::string concat(reinterpret_cast<const char*>(a.data()), a.size());
  concat.append(reinterpret_cast<const char*>(b.data()), b.size());
  EXPECT_NE(NodeHash(a, b), LeafHash(concat));
  EXPECT_NE(NodeHash(a, b), NodeHash(b, a));
}

TEST(MerkleKnownAnswers, CertificateTransparencyRoots) {
  Built b;
  Build(b, CtLeaves());
  for (uint64_t n = 0; n <= 8; ++n) {
    auto root = RootAt(b.store, n);
    ASSERT_TRUE(root.ok());
    EXPECT_EQ(HashHex(*root), kCtRoots[n]) << "tree size " << n;
    if (n > 0) {
      EXPECT_EQ(HashHex(b.roots_while_growing[n - 1]), kCtRoots[n]);
    }
  }
}

TEST(MerkleKnownAnswers, CertificateTransparencyInclusionProofs) {
  Built b;
  Build(b, CtLeaves());
  struct Case {
    uint64_t index, size;
    std::vector<std::string> path;
  };
  const Case cases[] = {
      {0,
       8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {5,
       8,
       {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2, 3, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
      {1,
       5,
       {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
  };
  for (const Case& c : cases) {
    auto path = InclusionProof(b.store, c.index, c.size);
    ASSERT_TRUE(path.ok());
    EXPECT_EQ(HexList(*path), c.path) << "leaf " << c.index << " of " << c.size;
    EXPECT_TRUE(
        VerifyInclusion(LeafHash(CtLeaves()[c.index]), c.index, c.size, *path, H(kCtRoots[c.size]))
            .ok());
  }
}

TEST(MerkleKnownAnswers, CertificateTransparencyConsistencyProofs) {
  Built b;
  Build(b, CtLeaves());
  struct Case {
    uint64_t first, second;
    std::vector<std::string> path;
  };
  const Case cases[] = {
      {1, 1, {}},
      {1,
       8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {6,
       8,
       {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2,
       5,
       {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
  };
  for (const Case& c : cases) {
    auto path = ConsistencyProof(b.store, c.first, c.second);
    ASSERT_TRUE(path.ok());
    EXPECT_EQ(HexList(*path), c.path) << c.first << " -> " << c.second;
    EXPECT_TRUE(
        VerifyConsistency(c.first, c.second, H(kCtRoots[c.first]), H(kCtRoots[c.second]), *path)
            .ok());
  }
}

// ---- every size 1..64 and every m against the naive reference ----

class MerkleAllSizes : public ::testing::Test {
 protected:
  static constexpr size_t kMax = 64;
  void SetUp() override {
    entries_ = MakeEntries(kMax);
    Build(built_, entries_);
    for (size_t n = 0; n <= kMax; ++n) ref_roots_.push_back(RefMth(Slice(entries_, 0, n)));
  }
  Entries entries_;
  Built built_;
  std::vector<Hash> ref_roots_;
};

TEST_F(MerkleAllSizes, RootsMatchTheDefinition) {
  for (size_t n = 0; n <= kMax; ++n) {
    auto root = RootAt(built_.store, n);
    ASSERT_TRUE(root.ok());
    EXPECT_EQ(*root, ref_roots_[n]) << "RootAt " << n;
    if (n > 0) {
      EXPECT_EQ(built_.roots_while_growing[n - 1], ref_roots_[n]) << "Root() at " << n;
    }
  }
}

TEST_F(MerkleAllSizes, InclusionProofsMatchPathAndVerify) {
  for (size_t n = 1; n <= kMax; ++n) {
    const Entries d = Slice(entries_, 0, n);
    for (size_t m = 0; m < n; ++m) {
      auto path = InclusionProof(built_.store, m, n);
      ASSERT_TRUE(path.ok());
      ASSERT_EQ(*path, RefPath(m, d)) << "PATH(" << m << ", D[" << n << "])";
      const Status s = VerifyInclusion(LeafHash(entries_[m]), m, n, *path, ref_roots_[n]);
      EXPECT_TRUE(s.ok()) << "leaf " << m << " of " << n << ": " << s.ToString();
    }
  }
}

TEST_F(MerkleAllSizes, ConsistencyProofsMatchProofAndVerify) {
  for (size_t n = 1; n <= kMax; ++n) {
    const Entries d = Slice(entries_, 0, n);
    for (size_t m = 1; m <= n; ++m) {
      auto proof = ConsistencyProof(built_.store, m, n);
      ASSERT_TRUE(proof.ok());
      if (m < n) {
        ASSERT_EQ(*proof, RefProof(m, d)) << "PROOF(" << m << ", D[" << n << "])";
      } else {
        EXPECT_TRUE(proof->empty());
      }
      const Status s = VerifyConsistency(m, n, ref_roots_[m], ref_roots_[n], *proof);
      EXPECT_TRUE(s.ok()) << m << " -> " << n << ": " << s.ToString();
    }
  }
}

// Tampering with any one thing an inclusion proof depends on is detected.
TEST_F(MerkleAllSizes, TamperedInclusionProofsFail) {
  int checked = 0;
  for (size_t n = 1; n <= kMax; ++n) {
    for (size_t m = 0; m < n; ++m) {
      const std::vector<Hash> path = *InclusionProof(built_.store, m, n);
      const Hash leaf = LeafHash(entries_[m]);
      const Hash& root = ref_roots_[n];
      // Any bit of any path element.
      for (size_t i = 0; i < path.size(); ++i) {
        for (size_t bit : {size_t{0}, size_t{131}, size_t{255}}) {
          std::vector<Hash> bad = path;
          bad[i] = Flip(bad[i], bit / 8, static_cast<uint8_t>(1u << (bit % 8)));
          EXPECT_FALSE(VerifyInclusion(leaf, m, n, bad, root).ok()) << m << "/" << n << " " << i;
          ++checked;
        }
      }
      // The leaf, the root, the index, the size.
      EXPECT_FALSE(VerifyInclusion(Flip(leaf, 7, 0x10), m, n, path, root).ok());
      EXPECT_FALSE(VerifyInclusion(LeafHash(entries_[m] + " "), m, n, path, root).ok());
      EXPECT_FALSE(VerifyInclusion(leaf, m, n, path, Flip(root, 31, 0x80)).ok());
      if (n > 1) {
        const size_t other = (m + 1) % n;
        EXPECT_FALSE(VerifyInclusion(leaf, other, n, path, root).ok()) << m << "->" << other;
      }
      EXPECT_FALSE(VerifyInclusion(leaf, n, n, path, root).ok());
      if (n + 1 <= kMax) {
        EXPECT_FALSE(VerifyInclusion(leaf, m, n + 1, path, ref_roots_[n + 1]).ok());
      }
      if (m < n - 1) {
        EXPECT_FALSE(VerifyInclusion(leaf, m, n - 1, path, ref_roots_[n - 1]).ok());
      }
      // A path one hash short, one hash long, or reordered.
      if (!path.empty()) {
        std::vector<Hash> shorter(path.begin(), path.end() - 1);
        EXPECT_FALSE(VerifyInclusion(leaf, m, n, shorter, root).ok());
      }
      std::vector<Hash> longer = path;
      longer.push_back(root);
      EXPECT_FALSE(VerifyInclusion(leaf, m, n, longer, root).ok());
      if (path.size() >= 2) {
        std::vector<Hash> swapped = path;
        std::swap(swapped.front(), swapped.back());
        EXPECT_FALSE(VerifyInclusion(leaf, m, n, swapped, root).ok());
      }
    }
  }
  EXPECT_GT(checked, 1000);
}

TEST_F(MerkleAllSizes, TamperedConsistencyProofsFail) {
  for (size_t n = 2; n <= kMax; ++n) {
    for (size_t m = 1; m < n; ++m) {
      const std::vector<Hash> proof = *ConsistencyProof(built_.store, m, n);
      const Hash& r1 = ref_roots_[m];
      const Hash& r2 = ref_roots_[n];
      for (size_t i = 0; i < proof.size(); ++i) {
        std::vector<Hash> bad = proof;
        bad[i] = Flip(bad[i], i, 0x01);
        EXPECT_FALSE(VerifyConsistency(m, n, r1, r2, bad).ok()) << m << "->" << n << " @" << i;
      }
      EXPECT_FALSE(VerifyConsistency(m, n, Flip(r1, 0, 1), r2, proof).ok());
      EXPECT_FALSE(VerifyConsistency(m, n, r1, Flip(r2, 0, 1), proof).ok());
      EXPECT_FALSE(VerifyConsistency(m, n, r2, r1, proof).ok());
      if (m + 1 < n) {
        EXPECT_FALSE(VerifyConsistency(m + 1, n, ref_roots_[m + 1], r2, proof).ok());
      }
      if (n + 1 <= kMax) {
        EXPECT_FALSE(VerifyConsistency(m, n + 1, r1, ref_roots_[n + 1], proof).ok());
      }
      std::vector<Hash> shorter(proof.begin(), proof.end() - 1);
      EXPECT_FALSE(VerifyConsistency(m, n, r1, r2, shorter).ok());
      std::vector<Hash> longer = proof;
      longer.push_back(r1);
      EXPECT_FALSE(VerifyConsistency(m, n, r1, r2, longer).ok());
      EXPECT_FALSE(VerifyConsistency(m, n, r1, r2, {}).ok());
    }
  }
  // Equal sizes: the roots must match and the path must be empty.
  EXPECT_TRUE(VerifyConsistency(5, 5, ref_roots_[5], ref_roots_[5], {}).ok());
  EXPECT_FALSE(VerifyConsistency(5, 5, ref_roots_[5], ref_roots_[6], {}).ok());
  const Hash extra = ref_roots_[1];
  EXPECT_FALSE(VerifyConsistency(5, 5, ref_roots_[5], ref_roots_[5], {&extra, 1}).ok());
  EXPECT_FALSE(VerifyConsistency(0, 5, EmptyRoot(), ref_roots_[5], {}).ok());
}

TEST(MerkleVerify, FailuresSayWhatWentWrong) {
  Built b;
  Build(b, MakeEntries(12));
  const Hash root = *RootAt(b.store, 12);
  std::vector<Hash> path = *InclusionProof(b.store, 3, 12);
  path.pop_back();
  Status s = VerifyInclusion(LeafHash(MakeEntries(12)[3]), 3, 12, path, root);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidInput);
  EXPECT_NE(s.detail().find("the path has 3 hashes"), std::string::npos) << s.detail();
  EXPECT_NE(s.detail().find("has 4"), std::string::npos) << s.detail();

  s = VerifyInclusion(LeafHash("x"), 3, 12, *InclusionProof(b.store, 3, 12), root);
  EXPECT_NE(s.detail().find("not to the expected root " + HashHex(root)), std::string::npos)
      << s.detail();

  s = VerifyInclusion(LeafHash("x"), 12, 12, {}, root);
  EXPECT_NE(s.detail().find("leaf index 12 is not in a tree of 12 leaves"), std::string::npos);

  const std::vector<Hash> proof = *ConsistencyProof(b.store, 5, 12);
  s = VerifyConsistency(5, 12, Flip(*RootAt(b.store, 5), 0, 1), root, proof);
  EXPECT_NE(s.detail().find("for the first tree (5 leaves)"), std::string::npos) << s.detail();
}

TEST(MerkleArguments, OutOfRangeRequestsAreRefused) {
  Built b;
  Build(b, MakeEntries(4));
  EXPECT_EQ(InclusionProof(b.store, 4, 4).status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(InclusionProof(b.store, 0, 0).status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(ConsistencyProof(b.store, 0, 4).status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(ConsistencyProof(b.store, 5, 4).status().code(), ErrorCode::kBadRequest);
  // Sizes beyond what the store holds are missing nodes: the caller must bound n by the
  // tree's size, and the store reports the corruption rather than inventing hashes.
  EXPECT_EQ(RootAt(b.store, 5).status().code(), ErrorCode::kInternal);
  EXPECT_EQ(RootAt(b.store, 0).value(), EmptyRoot());
}

// ---- storage behaviour ----

// Counts reads and refuses writes: proofs and roots must only read, and only a few nodes.
class CountingStore final : public NodeStore {
 public:
  explicit CountingStore(const NodeStore& inner) : inner_(inner) {}
  Result<Hash> Get(int level, uint64_t index) const override {
    ++gets;
    return inner_.Get(level, index);
  }
  Status Put(int, uint64_t, const Hash&) override {
    ++puts;
    return Status::Internal("read-only");
  }
  mutable size_t gets = 0;
  size_t puts = 0;

 private:
  const NodeStore& inner_;
};

TEST(MerkleStorage, ProofsReadLogarithmicallyManyNodesAndHashNoLeaf) {
  MemoryNodeStore store;
  auto tree = MerkleTree::Open(&store, 0);
  ASSERT_TRUE(tree.ok());
  const uint64_t kSize = 100'003;  // not a power of two: ragged right edge
  for (uint64_t i = 0; i < kSize; ++i) {
    ASSERT_TRUE(tree->AppendEntry("entry " + std::to_string(i)).ok());
  }
  // Each complete subtree is stored once: 2n - popcount(n) nodes.
  EXPECT_EQ(store.node_count(), 2 * kSize - static_cast<uint64_t>(std::popcount(kSize)));

  CountingStore counting(store);
  const size_t log_n = static_cast<size_t>(std::bit_width(kSize));  // 17
  for (uint64_t n : {kSize, kSize - 1, uint64_t{65'536}, uint64_t{77'777}}) {
    for (uint64_t m : {uint64_t{0}, n / 3, n - 1}) {
      counting.gets = 0;
      auto path = InclusionProof(counting, m, n);
      ASSERT_TRUE(path.ok());
      EXPECT_LE(counting.gets, 2 * log_n) << "inclusion " << m << " of " << n;
      counting.gets = 0;
      if (m > 0) {
        auto proof = ConsistencyProof(counting, m, n);
        ASSERT_TRUE(proof.ok());
        EXPECT_LE(counting.gets, log_n * log_n) << "consistency " << m << " -> " << n;
        EXPECT_TRUE(VerifyConsistency(m, n, *RootAt(store, m), *RootAt(store, n), *proof).ok());
      }
      counting.gets = 0;
      ASSERT_TRUE(RootAt(counting, n).ok());
      EXPECT_LE(counting.gets, log_n);
    }
  }
  EXPECT_EQ(counting.puts, 0u);
  EXPECT_EQ(*RootAt(store, kSize), tree->Root());
}

TEST(MerkleStorage, ReopeningContinuesTheSameTree) {
  const Entries d = MakeEntries(45);
  Built whole;
  Build(whole, d);
  for (uint64_t split : {0, 1, 2, 7, 8, 31, 32, 44, 45}) {
    MemoryNodeStore store;
    {
      auto tree = MerkleTree::Open(&store, 0);
      ASSERT_TRUE(tree.ok());
      for (uint64_t i = 0; i < split; ++i) ASSERT_TRUE(tree->AppendEntry(d[i]).ok());
    }
    auto tree = MerkleTree::Open(&store, split);
    ASSERT_TRUE(tree.ok()) << tree.status().ToString();
    EXPECT_EQ(tree->size(), split);
    EXPECT_EQ(tree->Root(), *RootAt(whole.store, split));
    for (uint64_t i = split; i < d.size(); ++i) ASSERT_TRUE(tree->AppendEntry(d[i]).ok());
    EXPECT_EQ(tree->Root(), whole.roots_while_growing.back()) << "split at " << split;
  }
}

TEST(MerkleStorage, OpeningOverAStoreThatLacksNodesFails) {
  MemoryNodeStore store;
  auto tree = MerkleTree::Open(&store, 3);
  ASSERT_FALSE(tree.ok());
  EXPECT_EQ(tree.status().code(), ErrorCode::kInternal);
  EXPECT_NE(tree.status().detail().find("merkle node (level 0, index 2) is missing"),
            std::string::npos)
      << tree.status().detail();
}

// A store whose writes start failing after a given number of Puts.
class FailingStore final : public NodeStore {
 public:
  Result<Hash> Get(int level, uint64_t index) const override { return inner.Get(level, index); }
  Status Put(int level, uint64_t index, const Hash& hash) override {
    if (puts_left == 0) return Status::Unavailable("disk full");
    --puts_left;
    return inner.Put(level, index, hash);
  }
  MemoryNodeStore inner;
  size_t puts_left = SIZE_MAX;
};

TEST(MerkleStorage, AFailedAppendChangesNothing) {
  const Entries d = MakeEntries(8);
  Built ref;
  Build(ref, d);
  FailingStore store;
  auto tree = MerkleTree::Open(&store, 0);
  ASSERT_TRUE(tree.ok());
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(tree->AppendEntry(d[i]).ok());
  const Hash before = tree->Root();
  // The 8th leaf completes subtrees at levels 1, 2 and 3: fail at each of its four writes.
  for (size_t allowed = 0; allowed < 4; ++allowed) {
    store.puts_left = allowed;
    const Status s = tree->AppendEntry(d[7]);
    EXPECT_EQ(s.code(), ErrorCode::kUnavailable);
    EXPECT_EQ(tree->size(), 7u);
    EXPECT_EQ(tree->Root(), before);
  }
  store.puts_left = SIZE_MAX;
  ASSERT_TRUE(tree->AppendEntry(d[7]).ok());
  EXPECT_EQ(tree->Root(), *RootAt(ref.store, 8));
  EXPECT_EQ(*RootAt(store, 8), *RootAt(ref.store, 8));
}

TEST(MerkleStorage, RestoringACheckpointUndoesAppends) {
  const Entries d = MakeEntries(20);
  Built ref;
  Build(ref, d);
  MemoryNodeStore store;
  auto tree = MerkleTree::Open(&store, 0);
  ASSERT_TRUE(tree.ok());
  for (int i = 0; i < 11; ++i) ASSERT_TRUE(tree->AppendEntry(d[i]).ok());
  const MerkleTree::Checkpoint saved = tree->Save();
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(tree->AppendEntry("rolled back " + std::to_string(i)).ok());
  tree->Restore(saved);
  EXPECT_EQ(tree->size(), 11u);
  EXPECT_EQ(tree->Root(), *RootAt(ref.store, 11));
  for (int i = 11; i < 20; ++i) ASSERT_TRUE(tree->AppendEntry(d[i]).ok());
  EXPECT_EQ(tree->Root(), *RootAt(ref.store, 20));
  EXPECT_EQ(*RootAt(store, 20), *RootAt(ref.store, 20));
}

TEST(MerkleStorage, MemoryStoreRefusesGapsAndReportsMissingNodes) {
  MemoryNodeStore store;
  EXPECT_TRUE(store.Put(0, 0, LeafHash("a")).ok());
  EXPECT_EQ(store.Put(0, 2, LeafHash("c")).code(), ErrorCode::kInternal);
  EXPECT_EQ(store.Put(-1, 0, LeafHash("c")).code(), ErrorCode::kInternal);
  EXPECT_EQ(store.Get(0, 1).status().code(), ErrorCode::kInternal);
  EXPECT_EQ(store.Get(5, 0).status().code(), ErrorCode::kInternal);
  EXPECT_TRUE(store.Put(0, 0, LeafHash("b")).ok());  // overwrite is allowed
  EXPECT_EQ(*store.Get(0, 0), LeafHash("b"));
}

// Records where each Put goes, for the position numbering.
class OrderStore final : public NodeStore {
 public:
  Result<Hash> Get(int level, uint64_t index) const override { return inner_.Get(level, index); }
  Status Put(int level, uint64_t index, const Hash& hash) override {
    order.emplace_back(level, index);
    return inner_.Put(level, index, hash);
  }
  std::vector<std::pair<int, uint64_t>> order;

 private:
  MemoryNodeStore inner_;
};

// NodePosition numbers the nodes in the order the tree writes them: a table keyed by it is
// only ever appended to, with no gaps, and a tree of n leaves ends at NodeCountForLeaves(n).
TEST(MerklePositions, NodesAreNumberedInTheOrderTheTreeWritesThem) {
  OrderStore store;
  auto tree = MerkleTree::Open(&store, 0);
  ASSERT_TRUE(tree.ok());
  for (uint64_t n = 1; n <= 1100; ++n) {
    ASSERT_TRUE(tree->AppendEntry("entry " + std::to_string(n)).ok());
    ASSERT_EQ(store.order.size(), NodeCountForLeaves(n)) << n;
    EXPECT_EQ(LeavesForNodeCount(NodeCountForLeaves(n)), n);
  }
  for (size_t pos = 0; pos < store.order.size(); ++pos) {
    const auto& [level, index] = store.order[pos];
    ASSERT_EQ(NodePosition(level, index), pos) << "node (" << level << ", " << index << ")";
  }
  // The worked values of merkle.h.
  EXPECT_EQ(NodePosition(1, 0), 2u);
  EXPECT_EQ(NodePosition(1, 1), 5u);
  EXPECT_EQ(NodePosition(2, 0), 6u);
  // Far out, where a table of ten million entries ends.
  const uint64_t n = 10'000'000;
  EXPECT_EQ(NodePosition(0, n - 1), NodeCountForLeaves(n) - 1 - std::countr_zero(n));
  EXPECT_EQ(LeavesForNodeCount(NodeCountForLeaves(n)), n);
}

TEST(MerklePositions, ANodeCountNoTreeSizeEndsAtIsRecognised) {
  EXPECT_EQ(LeavesForNodeCount(0), 0u);
  EXPECT_EQ(LeavesForNodeCount(1), 1u);
  EXPECT_EQ(LeavesForNodeCount(2), std::nullopt) << "leaf 1 written, node (1, 0) not";
  EXPECT_EQ(LeavesForNodeCount(3), 2u);
  EXPECT_EQ(LeavesForNodeCount(6), std::nullopt);
  EXPECT_EQ(LeavesForNodeCount(7), 4u);
}

}  // namespace
}  // namespace safegate::audit
