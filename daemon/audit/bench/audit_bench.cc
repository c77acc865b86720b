// audit_bench: what the verifiable audit log costs.
//
//   BM_LeafHash, BM_NodeHash        the two SHA-256 forms
//   BM_AppendInMemory               leaf hash + append into MemoryNodeStore (entries/s)
//   BM_*10M                         proofs and roots over a tree of 10 million entries built
//                                   in memory once (about half a minute, ~1 GiB), each for a
//                                   random leaf / size
//   BM_DurableAppendSqlite/B        entries made durable through an SQLite table (WAL,
//                                   synchronous=FULL), B entries per commit (group commit):
//                                   the entry row plus its Merkle nodes in one transaction
//   BM_InclusionProofSqlite         inclusion proofs read from that table at the size given by
//                                   SAFEGATE_AUDIT_BENCH_SQLITE_LEAVES (default 10 million)
//
// SAFEGATE_AUDIT_BENCH_LEAVES overrides the in-memory tree size (default 10'000'000).
// Temporary databases go under $TMPDIR and are removed at exit.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "daemon/audit/bench/sqlite_node_store.h"
#include "daemon/audit/merkle.h"

namespace safegate::audit::bench {
namespace {

namespace fs = std::filesystem;

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 10);
}

// A 300-byte entry, about the size of a canonical audit entry.
std::string SampleEntry() {
  std::string e =
      "{\"action\":\"delivery_permitted\",\"actor\":\"wyp\",\"at\":\"2024-05-01T10:00:00.000Z\","
      "\"decision\":\"permit\",\"detail\":{\"recipient\":\"bradford-csc\"},\"message_id\":"
      "\"msg_3f2a9c0d4e5b6a7f8091a2b3c4d5e6f7\",\"purpose\":\"safeguarding\",\"reasons\":"
      "[\"rule:share-cse-risk\",\"basis:children-act-1989-s47\"],\"record_id\":"
      "\"rec_0123456789abcdef0123456789abcdef\",\"seq\":1,\"subject\":\"nhs:9434765919\"}";
  e.resize(300, ' ');
  return e;
}

// Cheap deterministic randomness for picking leaves.
struct XorShift {
  uint64_t s = 0x9e3779b97f4a7c15ULL;
  uint64_t Next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "safegate-audit-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  std::string File(const char* name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

TempDir& Scratch() {
  static TempDir dir;
  return dir;
}

// ---- hashing and in-memory appends ----

void BM_LeafHash(benchmark::State& state) {
  const std::string entry = SampleEntry();
  for (auto _ : state) benchmark::DoNotOptimize(LeafHash(entry));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LeafHash);

void BM_NodeHash(benchmark::State& state) {
  Hash a = LeafHash("a");
  const Hash b = LeafHash("b");
  for (auto _ : state) {
    a = NodeHash(a, b);
    benchmark::DoNotOptimize(a);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NodeHash);

void BM_AppendInMemory(benchmark::State& state) {
  MemoryNodeStore store;
  auto tree = MerkleTree::Open(&store, 0);
  std::string entry = SampleEntry();
  uint64_t i = 0;
  for (auto _ : state) {
    std::memcpy(entry.data() + 290, &i, sizeof i);  // every entry distinct
    if (!tree->AppendEntry(entry).ok()) state.SkipWithError("append failed");
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["tree_size"] = static_cast<double>(tree->size());
}
BENCHMARK(BM_AppendInMemory);

// ---- 10 million entries in memory ----

struct BigTree {
  MemoryNodeStore store;
  uint64_t size = 0;
};

const BigTree& Big() {
  static const BigTree* big = [] {
    auto* b = new BigTree;
    const uint64_t n = EnvOr("SAFEGATE_AUDIT_BENCH_LEAVES", 10'000'000);
    auto tree = MerkleTree::Open(&b->store, 0);
    std::string entry = SampleEntry().substr(0, 48);  // one SHA-256 block: quicker set-up
    for (uint64_t i = 0; i < n; ++i) {
      std::memcpy(entry.data() + 40, &i, sizeof i);
      if (!tree->AppendEntry(entry).ok()) std::abort();
    }
    b->size = tree->size();
    return b;
  }();
  return *big;
}

void BM_InclusionProof10M(benchmark::State& state) {
  const BigTree& big = Big();
  const bool historic = state.range(0) != 0;  // 1: a random earlier tree size too
  XorShift rng;
  for (auto _ : state) {
    const uint64_t n = historic ? 1 + rng.Next() % big.size : big.size;
    auto path = InclusionProof(big.store, rng.Next() % n, n);
    benchmark::DoNotOptimize(path);
  }
  state.counters["tree_size"] = static_cast<double>(big.size);
}
BENCHMARK(BM_InclusionProof10M)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

void BM_InclusionProofAndVerify10M(benchmark::State& state) {
  const BigTree& big = Big();
  const Hash root = *RootAt(big.store, big.size);
  XorShift rng;
  for (auto _ : state) {
    const uint64_t m = rng.Next() % big.size;
    auto path = InclusionProof(big.store, m, big.size);
    const Hash leaf = *big.store.Get(0, m);
    if (!VerifyInclusion(leaf, m, big.size, *path, root).ok()) state.SkipWithError("bad proof");
  }
}
BENCHMARK(BM_InclusionProofAndVerify10M)->Unit(benchmark::kMicrosecond);

void BM_ConsistencyProof10M(benchmark::State& state) {
  const BigTree& big = Big();
  XorShift rng;
  for (auto _ : state) {
    const uint64_t m = 1 + rng.Next() % big.size;
    auto proof = ConsistencyProof(big.store, m, big.size);
    benchmark::DoNotOptimize(proof);
  }
}
BENCHMARK(BM_ConsistencyProof10M)->Unit(benchmark::kMicrosecond);

void BM_RootAt10M(benchmark::State& state) {
  const BigTree& big = Big();
  XorShift rng;
  for (auto _ : state) {
    auto root = RootAt(big.store, 1 + rng.Next() % big.size);
    benchmark::DoNotOptimize(root);
  }
}
BENCHMARK(BM_RootAt10M)->Unit(benchmark::kMicrosecond);

// ---- on disk ----

void BM_DurableAppendSqlite(benchmark::State& state) {
  const auto batch = static_cast<uint64_t>(state.range(0));
  const std::string path = Scratch().File(("append-" + std::to_string(batch) + ".db").c_str());
  fs::remove(path);
  auto store = std::make_unique<SqliteNodeStore>(path);
  if (!store->ok()) {
    state.SkipWithError("cannot open SQLite");
    return;
  }
  auto tree = MerkleTree::Open(store.get(), 0);
  std::string entry = SampleEntry();
  uint64_t seq = 0;
  for (auto _ : state) {
    store->Exec("BEGIN IMMEDIATE");
    for (uint64_t i = 0; i < batch; ++i) {
      ++seq;
      std::memcpy(entry.data() + 290, &seq, sizeof seq);
      if (!store->PutEntry(seq, entry).ok() || !tree->AppendEntry(entry).ok()) {
        state.SkipWithError("append failed");
      }
    }
    if (!store->Exec("COMMIT")) state.SkipWithError("commit failed");  // fsync (FULL, WAL)
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
  state.counters["entries_per_commit"] = static_cast<double>(batch);
}
BENCHMARK(BM_DurableAppendSqlite)->Arg(1)->Arg(16)->Arg(128)->Arg(1024)->UseRealTime();

struct SqliteTree {
  std::unique_ptr<SqliteNodeStore> store;
  uint64_t size = 0;
};

const SqliteTree& SqliteBig() {
  static const SqliteTree* big = [] {
    auto* b = new SqliteTree;
    const uint64_t n = EnvOr("SAFEGATE_AUDIT_BENCH_SQLITE_LEAVES", 10'000'000);
    b->store = std::make_unique<SqliteNodeStore>(Scratch().File("big.db"));
    if (!b->store->ok()) std::abort();
    // Set-up only: no fsync per batch, one transaction per million leaves.
    b->store->Exec("PRAGMA synchronous=OFF");
    auto tree = MerkleTree::Open(b->store.get(), 0);
    std::string entry = SampleEntry().substr(0, 48);
    for (uint64_t i = 0; i < n; ++i) {
      if (i % 1'000'000 == 0) b->store->Exec(i == 0 ? "BEGIN" : "COMMIT; BEGIN");
      std::memcpy(entry.data() + 40, &i, sizeof i);
      if (!tree->AppendEntry(entry).ok()) std::abort();
    }
    b->store->Exec("COMMIT");
    b->store->Exec("PRAGMA synchronous=FULL");
    b->size = tree->size();
    return b;
  }();
  return *big;
}

void BM_InclusionProofSqlite(benchmark::State& state) {
  const SqliteTree& big = SqliteBig();
  XorShift rng;
  for (auto _ : state) {
    auto path = InclusionProof(*big.store, rng.Next() % big.size, big.size);
    if (!path.ok()) state.SkipWithError("proof failed");
    benchmark::DoNotOptimize(path);
  }
  state.counters["tree_size"] = static_cast<double>(big.size);
}
BENCHMARK(BM_InclusionProofSqlite)->Unit(benchmark::kMicrosecond);

void BM_ConsistencyProofSqlite(benchmark::State& state) {
  const SqliteTree& big = SqliteBig();
  XorShift rng;
  for (auto _ : state) {
    auto proof = ConsistencyProof(*big.store, 1 + rng.Next() % big.size, big.size);
    if (!proof.ok()) state.SkipWithError("proof failed");
    benchmark::DoNotOptimize(proof);
  }
}
BENCHMARK(BM_ConsistencyProofSqlite)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace safegate::audit::bench

BENCHMARK_MAIN();
