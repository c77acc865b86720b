#include "daemon/core/merkle_store.h"

#include <cstring>
#include <string>

namespace safegate::core {
namespace {

template <size_t N>
bool CopyFixed(const std::string& bytes, std::array<uint8_t, N>& out) {
  if (bytes.size() != N) return false;
  std::memcpy(out.data(), bytes.data(), N);
  return true;
}

std::string_view AsBytes(std::span<const uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

Result<StoredTreeHead> HeadFromRow(Stmt& s) {
  StoredTreeHead out;
  out.position = s.Int(0);
  const int64_t size = s.Int(1), ts = s.Int(2);
  if (size < 0 || ts < 0 || !CopyFixed(s.Blob(3), out.head.root_hash) ||
      !CopyFixed(s.Blob(4), out.head.signature)) {
    return Status::Internal("audit: the tree head at position " + std::to_string(out.position) +
                            " is malformed (negative size or time, or a root or signature of "
                            "the wrong length)");
  }
  out.head.tree_size = static_cast<uint64_t>(size);
  out.head.timestamp_ms = static_cast<uint64_t>(ts);
  return out;
}

}  // namespace

Result<audit::Hash> SqliteNodeStore::Get(int level, uint64_t index) const {
  auto q = db_->Prepare("SELECT hash FROM merkle_nodes WHERE pos = ?1");
  if (!q.ok()) return q.status();
  Stmt& s = **q;
  s.Bind(1, static_cast<int64_t>(audit::NodePosition(level, index)));
  auto row = s.Step();
  if (!row.ok()) return row.status();
  audit::Hash h{};
  const bool ok = *row && CopyFixed(s.Blob(0), h);
  s.Reset();
  if (!ok) {
    return Status::Internal("audit: Merkle node (" + std::to_string(level) + ", " +
                            std::to_string(index) + ") is " + (*row ? "malformed" : "missing"));
  }
  return h;
}

Status SqliteNodeStore::Put(int level, uint64_t index, const audit::Hash& hash) {
  auto ins = db_->Prepare("INSERT INTO merkle_nodes(pos, hash) VALUES (?1, ?2)");
  if (!ins.ok()) return ins.status();
  (*ins)->Bind(1, static_cast<int64_t>(audit::NodePosition(level, index)));
  (*ins)->BindBlob(2, AsBytes(hash));
  return (*ins)->Run();
}

Result<uint64_t> StoredLeafCount(Db& db) {
  auto end = db.QueryInt("SELECT coalesce(max(pos) + 1, 0) FROM merkle_nodes");
  if (!end.ok()) return end.status();
  // The tree writes a leaf and the subtrees it closes in one transaction, so the table ends
  // where some tree size's nodes end; anything else is a table cut off by hand.
  auto leaves = audit::LeavesForNodeCount(static_cast<uint64_t>(*end));
  if (!leaves) {
    return Status::Internal("audit: the Merkle node table ends at position " +
                            std::to_string(*end - 1) +
                            ", part-way through the nodes of one entry");
  }
  return *leaves;
}

Result<std::vector<StoredTreeHead>> ReadTreeHeads(Db& db) {
  auto q = db.PrepareOnce(
      "SELECT position, tree_size, timestamp_ms, root_hash, signature FROM tree_heads "
      "ORDER BY position");
  if (!q.ok()) return q.status();
  std::vector<StoredTreeHead> out;
  for (;;) {
    auto row = (*q)->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    auto head = HeadFromRow(**q);
    if (!head.ok()) return head.status();
    out.push_back(std::move(*head));
  }
  return out;
}

Result<std::optional<StoredTreeHead>> ReadLatestTreeHead(Db& db) {
  auto q = db.Prepare(
      "SELECT position, tree_size, timestamp_ms, root_hash, signature FROM tree_heads "
      "ORDER BY position DESC LIMIT 1");
  if (!q.ok()) return q.status();
  Stmt& s = **q;
  auto row = s.Step();
  if (!row.ok()) return row.status();
  std::optional<StoredTreeHead> out;
  if (*row) {
    auto head = HeadFromRow(s);
    if (!head.ok()) {
      s.Reset();
      return head.status();
    }
    out = std::move(*head);
  }
  s.Reset();
  return out;
}

Result<int64_t> InsertTreeHead(Db& db, const audit::SignedTreeHead& head) {
  auto ins = db.Prepare(
      "INSERT INTO tree_heads(tree_size, timestamp_ms, root_hash, signature) "
      "VALUES (?1, ?2, ?3, ?4)");
  if (!ins.ok()) return ins.status();
  Stmt& s = **ins;
  s.Bind(1, static_cast<int64_t>(head.tree_size)).Bind(2, static_cast<int64_t>(head.timestamp_ms));
  s.BindBlob(3, AsBytes(head.root_hash)).BindBlob(4, AsBytes(head.signature));
  if (Status st = s.Run(); !st.ok()) return st;
  return db.LastInsertRowid();
}

}  // namespace safegate::core
