// Tampering with the audit log behind the gateway's back (straight through SQLite, triggers
// dropped, as an attacker with the file would) is detected, at the exact first bad entry, by
// both the offline verifier and the running gateway.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>

#include "daemon/audit/merkle.h"
#include "daemon/audit/tree_head.h"
#include "daemon/core/crypto.h"
#include "daemon/core/schema.h"
#include "daemon/core/test_support.h"

namespace safegate {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace safegate::testing;

class Tamper {
 public:
  explicit Tamper(const std::string& db_path) {
    EXPECT_EQ(sqlite3_open(db_path.c_str(), &db_), SQLITE_OK);
    Exec(
        "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;"
        "DROP TRIGGER audit_agencies_no_update; DROP TRIGGER audit_agencies_no_delete;"
        "DROP TRIGGER merkle_nodes_no_update; DROP TRIGGER merkle_nodes_no_delete;"
        "DROP TRIGGER tree_heads_no_update; DROP TRIGGER tree_heads_no_delete;");
  }
  ~Tamper() { sqlite3_close(db_); }

  void Exec(const std::string& sql) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << sql << ": " << (err ? err : "");
    sqlite3_free(err);
  }
  int64_t Int(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
    int64_t out = -1;
    if (sqlite3_step(st) == SQLITE_ROW) out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return out;
  }
  // Runs `sql` with one blob parameter.
  void ExecBlob(const std::string& sql, const std::string& blob) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
    sqlite3_bind_blob(st, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(st), SQLITE_DONE) << sql;
    sqlite3_finalize(st);
  }
  // The merkle_nodes key of node (level, idx), as SQL text.
  static std::string Pos(int level, uint64_t idx) {
    return std::to_string(audit::NodePosition(level, idx));
  }
  // Rebuilds merkle_nodes from the stored entry bytes, as someone rewriting the log would.
  void RebuildTree() {
    Exec("DELETE FROM merkle_nodes");
    audit::MemoryNodeStore nodes;
    auto tree = audit::MerkleTree::Open(&nodes, 0);
    const int64_t n = Int("SELECT max(seq) FROM audit");
    for (int64_t seq = 1; seq <= n; ++seq) ASSERT_TRUE(tree->AppendEntry(Blob("entry", seq)).ok());
    for (int level = 0; (n >> level) != 0; ++level) {
      for (int64_t idx = 0; idx < (n >> level); ++idx) {
        auto h = nodes.Get(level, static_cast<uint64_t>(idx));
        ASSERT_TRUE(h.ok());
        ExecBlob("INSERT INTO merkle_nodes(pos, hash) VALUES (" +
                     Pos(level, static_cast<uint64_t>(idx)) + ", ?)",
                 std::string(reinterpret_cast<const char*>(h->data()), h->size()));
      }
    }
  }
  // Appends a tree head signed with `key` (the gateway's own, or another).
  void AddHead(const audit::SigningKey& key, uint64_t size, const audit::Hash& root) {
    const audit::SignedTreeHead head = audit::SignTreeHead(key, size, root, 1);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db_,
                                 "INSERT INTO tree_heads(tree_size, timestamp_ms, root_hash, "
                                 "signature) VALUES (?, ?, ?, ?)",
                                 -1, &st, nullptr),
              SQLITE_OK);
    sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(size));
    sqlite3_bind_int64(st, 2, 1);
    sqlite3_bind_blob(st, 3, head.root_hash.data(), 32, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 4, head.signature.data(), 64, SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
  }
  std::string Blob(const std::string& column, int64_t seq) {
    sqlite3_stmt* st = nullptr;
    const std::string sql = "SELECT " + column + " FROM audit WHERE seq = ?";
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr), SQLITE_OK);
    sqlite3_bind_int64(st, 1, seq);
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW) {
      out.assign(static_cast<const char*>(sqlite3_column_blob(st, 0)),
                 static_cast<size_t>(sqlite3_column_bytes(st, 0)));
    }
    sqlite3_finalize(st);
    return out;
  }
  void SetBlob(const std::string& column, int64_t seq, const std::string& value) {
    sqlite3_stmt* st = nullptr;
    const std::string sql = "UPDATE audit SET " + column + " = ? WHERE seq = ?";
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr), SQLITE_OK);
    sqlite3_bind_blob(st, 1, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, seq);
    EXPECT_EQ(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
  }

 private:
  sqlite3* db_ = nullptr;
};

class TamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A head at every commit, so that which head covers which entries is known.
    src_.config()->audit.sth_max_entries = 1;
    ASSERT_TRUE(src_.Open().ok());
    auto a = src_.Push("wyp", MakePush("wyp", "OCC-1", {"bradford-csc", "bthft"}));  // 1-3
    ASSERT_TRUE(a.ok());
    src_.clock().Advance(1000);
    ASSERT_TRUE(src_.Mailbox("bradford-csc").ok());                           // 4
    ASSERT_TRUE(src_.Ack("bradford-csc", a->deliveries[0].message_id).ok());  // 5
    ASSERT_TRUE(src_.Get("bthft", a->record_id).ok());                        // 6
    ASSERT_TRUE(src_.Push("bthft", MakePush("bthft", "H-1", {"wyp"})).ok());  // 7-8
    ASSERT_TRUE(src_.Query("bradford-audit", {}).ok());                       // 9
    ASSERT_TRUE(src_.Mailbox("wyp").ok());                                    // 10
    src_.Close();
    auto clean = VerifyAuditChain(src_.data_dir());
    ASSERT_TRUE(clean.ok()) << clean.status().ToString();
    ASSERT_TRUE(clean->ok) << clean->problem;
    ASSERT_EQ(clean->entries, kEntries);
    clean_head_ = clean->head;
    clean_root_ = clean->root_hash;
  }

  // A copy of the clean store to tamper with.
  std::unique_ptr<GatewayHarness> Copy() {
    auto copy = std::make_unique<GatewayHarness>();
    for (const char* name : {"safegate.db", "safegate.db-wal", "store.key", "signing.key"}) {
      const auto from = std::filesystem::path(src_.data_dir()) / name;
      if (!std::filesystem::exists(from)) continue;
      const auto to = std::filesystem::path(copy->data_dir()) / name;
      std::filesystem::copy_file(from, to);
      ::chmod(to.c_str(), 0600);
    }
    return copy;
  }

  // Verifies offline and through a gateway opened on the tampered store; both must agree.
  VerifyReport Check(GatewayHarness& copy) {
    auto offline = VerifyAuditChain(copy.data_dir());
    EXPECT_TRUE(offline.ok()) << offline.status().ToString();
    if (!offline.ok()) return {};
    EXPECT_TRUE(copy.Open().ok());
    auto online = copy.Verify();
    EXPECT_TRUE(online.ok());
    if (online.ok()) {
      EXPECT_EQ(online->ok, offline->ok);
      EXPECT_EQ(online->first_bad_seq, offline->first_bad_seq);
      EXPECT_EQ(online->problem, offline->problem);
    }
    return *offline;
  }

  static constexpr int64_t kEntries = 10;
  GatewayHarness src_;
  std::string clean_head_;
  std::string clean_root_;
};

TEST_F(TamperTest, CleanLogVerifies) {
  auto copy = Copy();
  const VerifyReport r = Check(*copy);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.entries, kEntries);
  EXPECT_EQ(r.first_bad_seq, 0);
  EXPECT_EQ(r.head.size(), 64u);
  EXPECT_EQ(r.head, clean_head_);
}

// A store of schema version 6 (Merkle nodes keyed (level, idx), and the audit_actor and
// audit_agencies_seq indexes) is migrated: the same tree, keyed by position, and a log that
// verifies with the same head and root.
TEST_F(TamperTest, AVersionSixStoreMigratesItsMerkleNodesToPositions) {
  auto copy = Copy();
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(copy->db_path().c_str(), &db), SQLITE_OK);
    auto exec = [db](const std::string& sql) {
      char* err = nullptr;
      EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
          << sql << ": " << (err ? err : "");
      sqlite3_free(err);
    };
    exec("CREATE TABLE v6_nodes(level INTEGER NOT NULL, idx INTEGER NOT NULL, "
         "hash BLOB NOT NULL, PRIMARY KEY(level, idx)) WITHOUT ROWID");
    int64_t copied = 0;
    for (int level = 0; (kEntries >> level) != 0; ++level) {
      for (int64_t idx = 0; idx < (kEntries >> level); ++idx, ++copied) {
        exec("INSERT INTO v6_nodes SELECT " + std::to_string(level) + ", " + std::to_string(idx) +
             ", hash FROM merkle_nodes WHERE pos = " + Tamper::Pos(level, idx));
      }
    }
    ASSERT_EQ(copied, static_cast<int64_t>(audit::NodeCountForLeaves(kEntries)));
    exec("DROP TRIGGER merkle_nodes_no_update; DROP TRIGGER merkle_nodes_no_delete;"
         "DROP TABLE merkle_nodes; ALTER TABLE v6_nodes RENAME TO merkle_nodes;"
         "CREATE TRIGGER merkle_nodes_no_update BEFORE UPDATE ON merkle_nodes"
         "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
         "CREATE TRIGGER merkle_nodes_no_delete BEFORE DELETE ON merkle_nodes"
         "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
         "CREATE INDEX audit_actor ON audit(actor, seq);"
         "CREATE INDEX audit_agencies_seq ON audit_agencies(seq);"
         "PRAGMA user_version=6;");
    sqlite3_close(db);
  }
  ASSERT_TRUE(copy->Open().ok());  // migrates
  auto migrated = copy->Verify();
  ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
  EXPECT_TRUE(migrated->ok) << migrated->problem;
  EXPECT_EQ(migrated->head, clean_head_);
  EXPECT_EQ(migrated->root_hash, clean_root_) << "the same tree";
  // The migrated store takes new entries as usual.
  ASSERT_TRUE(copy->Mailbox("bradford-csc").ok());
  copy->Close();
  auto r = VerifyAuditChain(copy->data_dir());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->ok) << r->problem;
  EXPECT_GT(r->entries, kEntries);
  Tamper t(copy->db_path());
  EXPECT_EQ(t.Int("PRAGMA user_version"), core::CurrentSchemaVersion());
  EXPECT_EQ(t.Int("SELECT count(*) FROM sqlite_master WHERE name IN ('audit_actor', "
                  "'audit_agencies_seq')"),
            0);
  EXPECT_EQ(t.Int("SELECT count(*) FROM merkle_nodes"),
            static_cast<int64_t>(audit::NodeCountForLeaves(static_cast<uint64_t>(r->entries))));
}

TEST_F(TamperTest, AlteredEntryBytes) {
  auto copy = Copy();
  {
    Tamper t(copy->db_path());
    std::string entry = t.Blob("entry", 5);
    const size_t at = entry.find("bradford-csc");
    ASSERT_NE(at, std::string::npos);
    entry.replace(at, 12, "bradford-cse");
    t.SetBlob("entry", 5, entry);
  }
  const VerifyReport r = Check(*copy);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 5);
  EXPECT_THAT(r.problem, StartsWith("altered"));
  EXPECT_EQ(r.entries, kEntries);
}

TEST_F(TamperTest, AlteredEntryWithItsHashRecomputed) {
  auto copy = Copy();
  {
    Tamper t(copy->db_path());
    std::string entry = t.Blob("entry", 5);
    entry.replace(entry.find("message_acked"), 13, "message_ackee");
    t.SetBlob("entry", 5, entry);
    t.Exec("UPDATE audit SET action = 'message_ackee' WHERE seq = 5");
    t.SetBlob("hash", 5, core::Sha256(t.Blob("hash", 4), entry));
  }
  const VerifyReport r = Check(*copy);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 5) << "its Merkle leaf no longer matches";
  EXPECT_THAT(r.problem, StartsWith("merkle mismatch"));
  EXPECT_THAT(r.problem, HasSubstr("leaf hash (0, 4)"));
}

// Someone with the file rewrites entry 5 and recomputes every later chain hash and the whole
// Merkle tree: internally consistent, so only the signed heads can tell. The heads over 1..4
// still match, the heads from 5 on do not: the change is located at entry 5.
TEST_F(TamperTest, RewrittenLogIsCaughtByTheSignedHeads) {
  auto copy = Copy();
  {
    Tamper t(copy->db_path());
    std::string entry = t.Blob("entry", 5);
    entry.replace(entry.find("message_acked"), 13, "message_ackee");
    t.SetBlob("entry", 5, entry);
    t.Exec("UPDATE audit SET action = 'message_ackee' WHERE seq = 5");
    for (int64_t seq = 5; seq <= kEntries; ++seq) {
      t.SetBlob("hash", seq, core::Sha256(t.Blob("hash", seq - 1), t.Blob("entry", seq)));
    }
    t.RebuildTree();
  }
  auto r = VerifyAuditChain(copy->data_dir());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->ok);
  EXPECT_EQ(r->first_bad_seq, 5);
  EXPECT_THAT(r->problem, StartsWith("root mismatch"));
  EXPECT_THAT(r->problem, HasSubstr("among 5..5"));
  ASSERT_FALSE(r->head_faults.empty());
  for (const VerifyReport::HeadFault& f : r->head_faults) {
    EXPECT_GE(f.tree_size, 5) << f.problem;
    EXPECT_THAT(f.problem, StartsWith("root mismatch"));
  }
  // The gateway does not sign on top of a log that no longer matches its last head.
  Status open = copy->Open();
  EXPECT_FALSE(open.ok());
  EXPECT_THAT(open.detail(), HasSubstr("does not match the Merkle tree's root"));
}

TEST_F(TamperTest, AlteredMerkleNode) {
  auto copy = Copy();
  {
    Tamper t(copy->db_path());
    t.Exec("UPDATE merkle_nodes SET hash = zeroblob(32) WHERE pos = " +
           Tamper::Pos(1, 2));  // entries 5..6
  }
  auto r = VerifyAuditChain(copy->data_dir());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first_bad_seq, 6) << "entry 6 completes node (1, 2)";
  EXPECT_THAT(r->problem, StartsWith("merkle mismatch"));
  EXPECT_THAT(r->problem, HasSubstr("(1, 2)"));
}

TEST_F(TamperTest, SealedDetailsMovedOrRelinked) {
  {
    auto copy = Copy();
    {
      Tamper t(copy->db_path());
      t.SetBlob("details", 7, t.Blob("details", 6));  // same subject, another entry's details
    }
    ASSERT_TRUE(copy->Open().ok());
    auto r = copy->Verify();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->first_bad_seq, 7);
    EXPECT_THAT(r->problem, StartsWith("details mismatch"));
  }
  {
    auto copy = Copy();
    {
      Tamper t(copy->db_path());
      // Entry 7 linked to another subject's key: subject queries would find it under the
      // wrong child.
      t.Exec(
          "INSERT INTO subject_keys(blind, nonce, sealed_key, created_at_ms) "
          "VALUES (randomblob(32), randomblob(24), randomblob(48), 0);"
          "UPDATE audit SET key_id = last_insert_rowid() WHERE seq = 7");
    }
    ASSERT_TRUE(copy->Open().ok());
    auto r = copy->Verify();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->first_bad_seq, 7);
    EXPECT_THAT(r->problem, StartsWith("details mismatch"));
  }
}

TEST_F(TamperTest, UnparseableEntry) {
  auto copy = Copy();
  {
    Tamper t(copy->db_path());
    t.SetBlob("entry", 2, "{\"not\": \"an entry\"}");
  }
  const VerifyReport r = Check(*copy);
  EXPECT_EQ(r.first_bad_seq, 2);
  EXPECT_THAT(r.problem, StartsWith("altered"));
}

TEST_F(TamperTest, DeletedEntry) {
  auto copy = Copy();
  {
    Tamper t(copy->db_path());
    t.Exec("DELETE FROM audit WHERE seq = 4; DELETE FROM audit_agencies WHERE seq = 4;");
  }
  const VerifyReport r = Check(*copy);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 4);
  EXPECT_THAT(r.problem, StartsWith("missing"));
  EXPECT_EQ(r.entries, kEntries - 1);
}

TEST_F(TamperTest, DeletedEntryLeavingItsIndexRows) {
  auto copy = Copy();
  {
    Tamper t(copy->db_path());
    t.Exec("DELETE FROM audit WHERE seq = 4");
  }
  const VerifyReport r = Check(*copy);
  EXPECT_EQ(r.first_bad_seq, 4);
  EXPECT_THAT(r.problem, StartsWith("missing"));
}

TEST_F(TamperTest, SwappedEntries) {
  auto copy = Copy();
  {
    Tamper t(copy->db_path());
    // Every column but seq changes places between 3 and 6.
    t.Exec(
        "UPDATE audit SET seq = -3 WHERE seq = 3;"
        "UPDATE audit SET seq = 3 WHERE seq = 6;"
        "UPDATE audit SET seq = 6 WHERE seq = -3;");
  }
  const VerifyReport r = Check(*copy);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 3);
  EXPECT_THAT(r.problem, StartsWith("reordered"));
  EXPECT_THAT(r.problem, HasSubstr("is entry 6"));
}

TEST_F(TamperTest, EditedIndexedColumn) {
  for (const char* column : {"actor", "record_id", "action", "purpose", "decision"}) {
    auto copy = Copy();
    {
      Tamper t(copy->db_path());
      t.Exec(std::string("UPDATE audit SET ") + column + " = 'x' WHERE seq = 7");
    }
    const VerifyReport r = Check(*copy);
    EXPECT_FALSE(r.ok) << column;
    EXPECT_EQ(r.first_bad_seq, 7) << column;
    EXPECT_THAT(r.problem, StartsWith("column mismatch")) << column;
    EXPECT_THAT(r.problem, HasSubstr(column));
  }
  auto copy = Copy();
  {
    Tamper t(copy->db_path());
    t.Exec("UPDATE audit SET at_ms = at_ms - 1 WHERE seq = 8");
  }
  EXPECT_EQ(Check(*copy).first_bad_seq, 8);
}

TEST_F(TamperTest, EditedAgencyIndex) {
  {
    auto copy = Copy();
    {
      Tamper t(copy->db_path());
      t.Exec("INSERT INTO audit_agencies(agency, seq) VALUES ('cuh', 8)");
    }
    const VerifyReport r = Check(*copy);
    EXPECT_EQ(r.first_bad_seq, 8);
    EXPECT_THAT(r.problem, StartsWith("column mismatch"));
  }
  {
    auto copy = Copy();
    {
      Tamper t(copy->db_path());
      t.Exec("DELETE FROM audit_agencies WHERE seq = 2 AND agency = 'bradford-csc'");
    }
    const VerifyReport r = Check(*copy);
    EXPECT_EQ(r.first_bad_seq, 2);
    EXPECT_THAT(r.problem, StartsWith("column mismatch"));
  }
}

// Cutting entries off the end leaves a shorter chain that is valid in itself; the Merkle
// tree's leaves and the signed heads still count the removed entries.
TEST_F(TamperTest, TruncationIsDetected) {
  {
    auto copy = Copy();
    {
      Tamper t(copy->db_path());
      t.Exec("DELETE FROM audit WHERE seq = 10; DELETE FROM audit_agencies WHERE seq = 10;");
    }
    auto r = VerifyAuditChain(copy->data_dir());
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->ok);
    EXPECT_EQ(r->entries, kEntries - 1);
    EXPECT_EQ(r->first_bad_seq, 10);
    EXPECT_THAT(r->problem, StartsWith("truncated"));
    Status open = copy->Open();
    EXPECT_FALSE(open.ok()) << "a gateway must not append over removed entries";
    EXPECT_THAT(open.detail(), HasSubstr("entries were removed"));
  }
  {
    // The tree's nodes removed too: the signed head over 10 entries remains.
    auto copy = Copy();
    {
      Tamper t(copy->db_path());
      t.Exec(
          "DELETE FROM audit WHERE seq >= 9; DELETE FROM audit_agencies WHERE seq >= 9;"
          "DELETE FROM merkle_nodes WHERE pos >= " +
          std::to_string(audit::NodeCountForLeaves(8)) + ";");
    }
    auto r = VerifyAuditChain(copy->data_dir());
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->ok);
    EXPECT_EQ(r->first_bad_seq, 9);
    EXPECT_THAT(r->problem, StartsWith("truncated"));
    EXPECT_THAT(r->problem, HasSubstr("were removed"));
    ASSERT_EQ(r->head_faults.size(), 2u) << "the heads over 9 and over 10 entries";
    EXPECT_THAT(r->head_faults[1].problem, HasSubstr("entries 9..10 were removed"));
    EXPECT_FALSE(copy->Open().ok());
  }
}

// Two heads for one size with different roots, both validly signed: the gateway signed two
// different logs. Each head is reported by its position.
TEST_F(TamperTest, TwoSignedHeadsOfOneSizeWithDifferentRoots) {
  auto copy = Copy();
  int64_t forged = 0;
  int64_t genuine = 0;
  {
    auto key = audit::SigningKey::Load(copy->data_dir() + "/signing.key");
    ASSERT_TRUE(key.ok());
    Tamper t(copy->db_path());
    genuine = t.Int("SELECT position FROM tree_heads WHERE tree_size = 6");
    ASSERT_GT(genuine, 0);
    audit::Hash other{};
    other.fill(0x42);
    t.AddHead(**key, 6, other);
    forged = t.Int("SELECT max(position) FROM tree_heads");
  }
  auto r = VerifyAuditChain(copy->data_dir());
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->ok);
  EXPECT_EQ(r->first_bad_seq, 6);
  EXPECT_THAT(r->problem, StartsWith("equivocation"));
  const std::string both =
      "positions " + std::to_string(genuine) + ", " + std::to_string(forged);
  EXPECT_THAT(r->problem, HasSubstr(both));
  EXPECT_THAT(r->problem, HasSubstr("the log's entries match position " + std::to_string(genuine)));
  ASSERT_EQ(r->head_faults.size(), 2u);
  EXPECT_EQ(r->head_faults[0].position, genuine);
  EXPECT_EQ(r->head_faults[1].position, forged);
  EXPECT_EQ(r->head_faults[1].tree_size, 6);
  EXPECT_FALSE(copy->Open().ok()) << "the latest head no longer matches the tree";
}

TEST_F(TamperTest, HeadNotSignedByTheGatewayKey) {
  auto copy = Copy();
  int64_t forged = 0;
  {
    auto other = audit::SigningKey::FromSeed(std::string(32, '\x07'));
    ASSERT_TRUE(other.ok());
    Tamper t(copy->db_path());
    audit::Hash root{};
    t.AddHead(**other, 3, root);
    forged = t.Int("SELECT max(position) FROM tree_heads");
  }
  auto r = VerifyAuditChain(copy->data_dir());
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->ok);
  EXPECT_THAT(r->problem, StartsWith("signature"));
  ASSERT_EQ(r->head_faults.size(), 1u);
  EXPECT_EQ(r->head_faults[0].position, forged);
  // An auditor pinning another key sees every head fail.
  auto pinned = VerifyAuditChain(copy->data_dir(), "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
  ASSERT_TRUE(pinned.ok());
  EXPECT_EQ(pinned->head_faults.size(), static_cast<size_t>(pinned->heads_checked));
}

TEST(VerifyAuditChainTest, MissingDatabase) {
  TempDir dir;
  auto r = VerifyAuditChain(dir.path());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace safegate
