// The audit entry format and the chain hash, exactly as docs/audit-log.md states them. The
// worked example of that page is checked here byte for byte, so the page cannot drift.
#include "daemon/core/audit_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <iostream>

#include "daemon/core/crypto.h"
#include "daemon/core/schema.h"
#include "daemon/core/test_support.h"
#include "daemon/core/time_format.h"

namespace safegate::core {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

AuditEntry Accepted() {
  AuditEntry e;
  e.seq = 1;
  e.at_ms = testing::kT0 + 123;
  e.actor = "wyp";
  e.action = "record_accepted";
  e.subject = "nhs:9990000018";
  e.record_id = "rec_8f14e45fceea167a5a36dedd4bea2543";
  e.purpose = "child_protection";
  e.detail = {{"kind", "flag"}, {"recipients", {"bradford-csc"}}, {"source_version", 1}};
  return e;
}

AuditEntry Permitted() {
  AuditEntry e = Accepted();
  e.seq = 2;
  e.action = "delivery_permitted";
  e.message_id = "msg_c9f0f895fb98ab9159f51fd0297e236d";
  e.decision = "permit";
  e.reasons = {"placeholder policy: registered police, health and csc recipients are permitted"};
  e.detail = {{"recipient", "bradford-csc"}, {"deadline", "2026-11-22T17:34:00.123Z"}};
  return e;
}

AuditEntry Read() {
  AuditEntry e;
  e.seq = 3;
  e.at_ms = testing::kT0 + 5 * 60 * 1000 + 7;
  e.actor = "bradford-csc";
  e.action = "mailbox_read";
  e.subject = "nhs:9990000018";
  e.record_id = "rec_8f14e45fceea167a5a36dedd4bea2543";
  e.message_id = "msg_c9f0f895fb98ab9159f51fd0297e236d";
  e.purpose = "child_protection";
  e.detail = {{"type", "record"}};
  return e;
}

TEST(AuditEntryTest, BytesAreCanonicalWithEveryKey) {
  AuditEntry e;
  e.seq = 42;
  e.at_ms = 0;
  e.actor = "-";
  e.action = "tls_rejected";
  EXPECT_EQ(AuditEntryBytes(e),
            R"({"action":"tls_rejected","actor":"-","at":"1970-01-01T00:00:00.000Z",)"
            R"("decision":"","detail":{},"message_id":"","purpose":"","reasons":[],)"
            R"("record_id":"","seq":42,"subject":""})");
}

TEST(AuditEntryTest, ParseRoundTrips) {
  for (const AuditEntry& e : {Accepted(), Permitted(), Read()}) {
    auto parsed = ParseAuditEntry(AuditEntryBytes(e));
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(parsed->seq, e.seq);
    EXPECT_EQ(parsed->at_ms, e.at_ms);
    EXPECT_EQ(parsed->actor, e.actor);
    EXPECT_EQ(parsed->action, e.action);
    EXPECT_EQ(parsed->subject, e.subject);
    EXPECT_EQ(parsed->record_id, e.record_id);
    EXPECT_EQ(parsed->message_id, e.message_id);
    EXPECT_EQ(parsed->purpose, e.purpose);
    EXPECT_EQ(parsed->decision, e.decision);
    EXPECT_EQ(parsed->reasons, e.reasons);
    EXPECT_EQ(parsed->detail, e.detail);
    EXPECT_EQ(AuditEntryBytes(*parsed), AuditEntryBytes(e));
  }
}

TEST(AuditEntryTest, ParseRejectsOtherShapes) {
  const std::string good = AuditEntryBytes(Accepted());
  json j = json::parse(good);
  auto with = [&](const char* key, json value) {
    json copy = j;
    copy[key] = std::move(value);
    return copy.dump();
  };
  auto without = [&](const char* key) {
    json copy = j;
    copy.erase(key);
    return copy.dump();
  };
  EXPECT_FALSE(ParseAuditEntry("not json").ok());
  EXPECT_FALSE(ParseAuditEntry("[]").ok());
  EXPECT_THAT(ParseAuditEntry(without("purpose")).status().detail(), HasSubstr("purpose"));
  EXPECT_FALSE(ParseAuditEntry(with("extra", 1)).ok());
  EXPECT_FALSE(ParseAuditEntry(with("seq", "1")).ok());
  EXPECT_FALSE(ParseAuditEntry(with("at", "yesterday")).ok());
  EXPECT_FALSE(ParseAuditEntry(with("reasons", {1})).ok());
  EXPECT_FALSE(ParseAuditEntry(with("detail", json::array())).ok());
  EXPECT_FALSE(ParseAuditEntry(with("actor", nullptr)).ok());
}

TEST(AuditEntryTest, AgenciesNamed) {
  EXPECT_EQ(AgenciesNamedBy(Accepted()), (std::set<std::string>{"wyp", "bradford-csc"}));
  AuditEntry e = Read();
  e.detail = {{"recipient", "bthft"}, {"notified", {"wyp", "bradford-audit"}}};
  EXPECT_EQ(AgenciesNamedBy(e),
            (std::set<std::string>{"bradford-csc", "bthft", "wyp", "bradford-audit"}));
  e.actor = "-";
  e.detail = json::object();
  EXPECT_TRUE(AgenciesNamedBy(e).empty());
}

TEST(AuditLogTest, ChainOnDisk) {
  testing::TempDir dir;
  auto db = Db::Open(dir.path() + "/a.db", Db::Mode::kReadWriteCreate);
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(Migrate(**db).ok());
  AuditLog log(db->get());
  ASSERT_TRUE(log.Load().ok());
  EXPECT_EQ(log.head().seq, 0);
  EXPECT_EQ(log.head().hash, std::string(32, '\0'));

  ASSERT_TRUE((*db)->Exec("BEGIN").ok());
  std::string h(32, '\0');
  for (AuditEntry e : {Accepted(), Permitted(), Read()}) {
    e.seq = 999;  // assigned by the log
    ASSERT_TRUE(log.Append(e).ok());
    AuditEntry expected = e;
    h = Sha256(h, AuditEntryBytes(expected));
    EXPECT_EQ(e.hash, Hex(h));
  }
  ASSERT_TRUE((*db)->Exec("COMMIT").ok());
  EXPECT_EQ(log.head().seq, 3);

  AuditLog reloaded(db->get());
  ASSERT_TRUE(reloaded.Load().ok());
  EXPECT_EQ(reloaded.head().seq, 3);
  EXPECT_EQ(reloaded.head().hash, h);
  auto report = VerifyChain(**db);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->entries, 3);
  EXPECT_EQ(report->head, Hex(h));

  // The log refuses to be rewritten by the program itself.
  EXPECT_FALSE((*db)->Exec("UPDATE audit SET actor = 'x' WHERE seq = 1").ok());
  EXPECT_FALSE((*db)->Exec("DELETE FROM audit WHERE seq = 3").ok());
}

// docs/audit-log.md, "Worked example": these bytes and hashes are pasted there.
TEST(AuditLogTest, WorkedExample) {
  const std::vector<AuditEntry> entries = {Accepted(), Permitted(), Read()};
  const std::vector<std::string> expected_hashes = {
      "4c23ff29470eefd75fb8515013a8a8fba23dd9a02c8dc3bf0df6a33d544a0bb9",
      "7f6205fc75b6b29795fd7d82601c746e8256433d58566c0d2121c0690467f8c0",
      "898a0297b5ef4b7fa317a1fb7a8b617b8ca7197b9261d7c933e5a4eadbbe9783",
  };
  std::string h(32, '\0');
  std::cout << "h_0 = " << Hex(h) << "\n";
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string bytes = AuditEntryBytes(entries[i]);
    h = Sha256(h, bytes);
    std::cout << "entry_" << i + 1 << " = " << bytes << "\n";
    std::cout << "h_" << i + 1 << " = " << Hex(h) << "\n";
    EXPECT_EQ(Hex(h), expected_hashes[i]) << "entry " << i + 1;
  }
  // The leaf hash a later Merkle tree (RFC 9162) will use for entry 1.
  std::cout << "leaf_1 = " << Hex(Sha256(std::string(1, '\0'), AuditEntryBytes(entries[0])))
            << "\n";
}

}  // namespace
}  // namespace safegate::core
