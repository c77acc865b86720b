// Tampering with the audit log behind the gateway's back (straight through SQLite, triggers
// dropped, as an attacker with the file would) is detected, at the exact first bad entry, by
// both the offline verifier and the running gateway.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>

#include "daemon/core/crypto.h"
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
        "DROP TRIGGER audit_agencies_no_update; DROP TRIGGER audit_agencies_no_delete;");
  }
  ~Tamper() { sqlite3_close(db_); }

  void Exec(const std::string& sql) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << sql << ": " << (err ? err : "");
    sqlite3_free(err);
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
  }

  // A copy of the clean store to tamper with.
  std::unique_ptr<GatewayHarness> Copy() {
    auto copy = std::make_unique<GatewayHarness>();
    for (const char* name : {"safegate.db", "safegate.db-wal", "store.key"}) {
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
  EXPECT_EQ(r.first_bad_seq, 6) << "the next link no longer matches";
  EXPECT_THAT(r.problem, StartsWith("altered"));
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
  for (const char* column : {"actor", "subject", "record_id", "action", "purpose"}) {
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

// Known limit of a bare hash chain: cutting entries off the end leaves a shorter valid chain.
// An external anchor (the signed Merkle tree heads of a later version, or a head recorded
// by an audit officer) catches it; here the head moves back, which is what to compare.
TEST_F(TamperTest, TruncationChangesTheHead) {
  auto copy = Copy();
  {
    Tamper t(copy->db_path());
    t.Exec("DELETE FROM audit WHERE seq = 10; DELETE FROM audit_agencies WHERE seq = 10;");
  }
  auto r = VerifyAuditChain(copy->data_dir());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok);
  EXPECT_EQ(r->entries, kEntries - 1);
  EXPECT_NE(r->head, clean_head_);
}

TEST(VerifyAuditChainTest, MissingDatabase) {
  TempDir dir;
  auto r = VerifyAuditChain(dir.path());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace safegate
