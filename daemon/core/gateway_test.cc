// The Gateway on SQLite, end to end through its interface: pushes, mailboxes, acks, record
// reads, refusals and their audit entries, durability across reopen, encryption at rest, the
// key file, group commit, audit queries.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

#include "daemon/core/crypto.h"
#include "daemon/core/schema.h"
#include "daemon/core/test_support.h"

namespace safegate {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace safegate::testing;
using nlohmann::json;

std::vector<std::string> Actions(const std::vector<AuditEntry>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) out.push_back(e.action);
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Denies cuh, redacts the body's contact for bthft, permits everyone else: exercises the
// deny and redact paths the placeholder never takes.
class TestPolicy final : public DeliveryPolicy {
 public:
  DeliveryDecision Decide(const Caller&, const PushRequest& request,
                          const config::Agency& recipient) const override {
    if (recipient.id == "cuh") return {"deny", {"test: cuh is denied"}, std::nullopt};
    if (recipient.id == "bthft") {
      json view = record::ToJson(request.record);
      view["body"].erase("contact");
      return {"redact", {"test: bthft gets no contact details"}, view};
    }
    return {"permit", {"test: permitted"}, std::nullopt};
  }
};

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(h.Open().ok()); }
  GatewayHarness h;
};

TEST_F(GatewayTest, PushThenMailboxThenAck) {
  auto pushed = h.Push("wyp", MakePush("wyp", "OCC-1", {"bradford-csc", "bthft"}));
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  EXPECT_TRUE(pushed->created);
  EXPECT_THAT(pushed->record_id, ::testing::MatchesRegex("rec_[0-9a-f]{32}"));
  ASSERT_EQ(pushed->deliveries.size(), 2u);
  for (const Delivery& d : pushed->deliveries) {
    EXPECT_EQ(d.decision, "permit");
    EXPECT_THAT(d.message_id, ::testing::MatchesRegex("msg_[0-9a-f]{32}"));
    EXPECT_THAT(d.reasons, ElementsAre("placeholder policy: registered police, health and csc "
                                       "recipients are permitted"));
  }
  EXPECT_EQ(pushed->deliveries[0].recipient, "bradford-csc");
  const std::string message_id = pushed->deliveries[0].message_id;

  auto box = h.Mailbox("bradford-csc");
  ASSERT_TRUE(box.ok()) << box.status().ToString();
  ASSERT_EQ(box->messages.size(), 1u);
  const MailboxMessage& m = box->messages[0];
  EXPECT_EQ(m.message_id, message_id);
  EXPECT_EQ(m.type, "record");
  EXPECT_EQ(m.record_id, pushed->record_id);
  EXPECT_EQ(m.from, "wyp");
  EXPECT_EQ(m.purpose, "child_protection");
  EXPECT_EQ(m.delivered_at_ms, kT0);
  EXPECT_EQ(m.record, record::ToJson(MakeRecord("wyp", "OCC-1")));
  EXPECT_TRUE(box->next.empty());
  const json page = box->ToJson();
  EXPECT_EQ(page["messages"][0]["delivered_at"], "2026-11-21T17:34:00.000Z");
  EXPECT_TRUE(page["next"].is_null());

  EXPECT_TRUE(h.Mailbox("wyp")->messages.empty());  // the sender's mailbox is its own

  ASSERT_TRUE(h.Ack("bradford-csc", message_id).ok());
  EXPECT_TRUE(h.Mailbox("bradford-csc")->messages.empty());
  EXPECT_EQ(h.Count("messages", "acked_at_ms IS NOT NULL"), 1);
  const int64_t entries = h.Count("audit");
  EXPECT_TRUE(h.Ack("bradford-csc", message_id).ok());  // again: fine, and nothing new
  EXPECT_EQ(h.Count("audit"), entries);
  EXPECT_EQ(h.Mailbox("bthft")->messages.size(), 1u);

  AuditFilter f;
  f.subject = std::string("nhs:") + kNhs1;
  auto trail = AllEntries(h, f);
  EXPECT_THAT(Actions(trail),
              ElementsAre("record_accepted", "delivery_permitted", "delivery_permitted",
                          "mailbox_read", "message_acked", "mailbox_read"));
  EXPECT_EQ(trail[0].actor, "wyp");
  EXPECT_EQ(trail[0].record_id, pushed->record_id);
  EXPECT_EQ(trail[0].detail["recipients"], json({"bradford-csc", "bthft"}));
  EXPECT_EQ(trail[1].detail["recipient"], "bradford-csc");
  EXPECT_EQ(trail[1].message_id, message_id);
  EXPECT_EQ(trail[1].decision, "permit");
  EXPECT_EQ(trail[3].actor, "bradford-csc");
  EXPECT_EQ(trail[3].message_id, message_id);
  EXPECT_EQ(trail[4].action, "message_acked");
  EXPECT_EQ(trail[4].message_id, message_id);
}

TEST_F(GatewayTest, AnotherAgencysMessageIsNotFound) {
  auto pushed = h.Push("wyp", MakePush("wyp", "OCC-1", {"bradford-csc"}));
  ASSERT_TRUE(pushed.ok());
  const std::string id = pushed->deliveries[0].message_id;
  EXPECT_EQ(h.Ack("bthft", id).code(), ErrorCode::kNotFound);
  EXPECT_EQ(h.Ack("bthft", "msg_00000000000000000000000000000000").code(), ErrorCode::kNotFound);
  EXPECT_EQ(h.Mailbox("bradford-csc")->messages.size(), 1u);  // still unacked
}

TEST_F(GatewayTest, ARecordBuiltInCodeIsHeldToTheSubjectIdentifierRules) {
  // Pushes that did not come through ParseRecord: an empty NHS number, a wrong check digit,
  // no identifier at all, a local id without a value. Each is refused with its pointer, and
  // nothing but the refusal's audit entry is stored.
  PushRequest empty = MakePush("wyp", "OCC-ID1", {"bradford-csc"});
  empty.record.subject.nhs_number = "";
  PushRequest wrong = MakePush("wyp", "OCC-ID2", {"bradford-csc"});
  wrong.record.subject.nhs_number = "9434765918";  // 9434765919 with the last digit changed
  PushRequest none = MakePush("wyp", "OCC-ID3", {"bradford-csc"});
  none.record.subject.nhs_number.reset();
  none.record.subject.local_ids.clear();
  PushRequest blank_id = MakePush("wyp", "OCC-ID4", {"bradford-csc"});
  blank_id.record.subject.nhs_number.reset();
  blank_id.record.subject.local_ids = {{"bradford-csc", ""}};
  const std::pair<PushRequest*, std::string> cases[] = {
      {&empty, "/record/subject/nhs_number"},
      {&wrong, "/record/subject/nhs_number"},
      {&none, "/record/subject"},
      {&blank_id, "/record/subject/local_ids/0"}};
  for (const auto& [push, where] : cases) {
    const int64_t audit_before = h.Count("audit");
    auto refused = h.Push("wyp", *push);
    ASSERT_EQ(refused.status().code(), ErrorCode::kInvalidInput) << where;
    ASSERT_FALSE(refused.status().problems().empty());
    EXPECT_EQ(refused.status().problems()[0].where, where);
    EXPECT_EQ(h.Count("records"), 0);
    EXPECT_EQ(h.Count("messages"), 0);
    EXPECT_EQ(h.Count("audit"), audit_before + 1);
  }
}

TEST_F(GatewayTest, IdempotentReplayAndConflict) {
  auto first = h.Push("wyp", MakePush("wyp", "OCC-7", {"bradford-csc", "bthft"}));
  ASSERT_TRUE(first.ok());
  // The same content, recipients in another order: the first answer again.
  auto again = h.Push("wyp", MakePush("wyp", "OCC-7", {"bthft", "bradford-csc"}));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->ToJson(), first->ToJson());
  EXPECT_EQ(h.Count("records"), 1);
  EXPECT_EQ(h.Count("messages"), 2);

  // Other content under the same key: 409, nothing stored but the refusal's audit entry.
  PushRequest changed = MakePush("wyp", "OCC-7", {"bradford-csc", "bthft"});
  changed.record.body["level"] = "medium";
  const int64_t audit_before = h.Count("audit");
  auto conflict = h.Push("wyp", changed);
  EXPECT_EQ(conflict.status().code(), ErrorCode::kConflict);
  EXPECT_EQ(h.Count("records"), 1);
  EXPECT_EQ(h.Count("audit"), audit_before + 1);
  EXPECT_EQ(
      h.Count("audit", "action = 'request_rejected' AND record_id = '" + first->record_id + "'"),
      1);
  auto other_purpose =
      h.Push("wyp", MakePush("wyp", "OCC-7", {"bradford-csc", "bthft"}, "early_help"));
  EXPECT_EQ(other_purpose.status().code(), ErrorCode::kConflict);

  // A new version is a new record.
  auto v2 = h.Push("wyp", MakePush("wyp", "OCC-7", {"bradford-csc"}, "child_protection", 2));
  ASSERT_TRUE(v2.ok());
  EXPECT_TRUE(v2->created);
  EXPECT_NE(v2->record_id, first->record_id);
}

TEST_F(GatewayTest, OnlyThePushingAgencyMayBeTheSource) {
  auto forged = h.Push("wyp", MakePush("bthft", "X-1", {"bradford-csc"}));
  EXPECT_EQ(forged.status().code(), ErrorCode::kForbidden);
  for (const char* role_without_push : {"bradford-audit", "bradford-scrutiny", "safegate-cambs"}) {
    auto r = h.Push(role_without_push, MakePush(role_without_push, "X-2", {"bradford-csc"}));
    EXPECT_EQ(r.status().code(), ErrorCode::kForbidden) << role_without_push;
  }
  EXPECT_EQ(h.Count("records"), 0);
}

TEST_F(GatewayTest, RecipientsAreChecked) {
  auto r = h.Push("wyp", MakePush("wyp", "OCC-2",
                                  {"bradford-csc", "nobody", "bradford-audit", "bradford-csc",
                                   "bradford-scrutiny"}));
  ASSERT_EQ(r.status().code(), ErrorCode::kInvalidInput);
  const auto& p = r.status().problems();
  ASSERT_EQ(p.size(), 4u) << r.status().ToString();
  EXPECT_EQ(p[0].where, "/recipients/1");
  EXPECT_THAT(p[0].what, HasSubstr("not a registered agency"));
  EXPECT_EQ(p[1].where, "/recipients/2");
  EXPECT_EQ(p[1].what, "audit agencies never receive records");
  EXPECT_EQ(p[2].where, "/recipients/3");
  EXPECT_EQ(p[3].where, "/recipients/4");

  auto none = h.Push("wyp", MakePush("wyp", "OCC-3", {}));
  ASSERT_EQ(none.status().code(), ErrorCode::kInvalidInput);
  EXPECT_EQ(none.status().problems()[0].where, "/recipients");

  auto purpose = h.Push("wyp", MakePush("wyp", "OCC-4", {"bthft"}, "Child Protection!"));
  ASSERT_EQ(purpose.status().code(), ErrorCode::kInvalidInput);
  EXPECT_EQ(purpose.status().problems()[0].where, "/purpose");
  EXPECT_EQ(h.Count("records"), 0);
  EXPECT_EQ(h.Count("messages"), 0);
}

TEST_F(GatewayTest, EveryRefusalLeavesOnlyItsAuditEntry) {
  auto ok = h.Push("wyp", MakePush("wyp", "OCC-1", {"bradford-csc"}));
  ASSERT_TRUE(ok.ok());
  const std::string message_id = ok->deliveries[0].message_id;

  struct Refusal {
    const char* name;
    std::function<ErrorCode()> run;
    ErrorCode expected;
  };
  PushRequest changed = MakePush("wyp", "OCC-1", {"bradford-csc"});
  changed.record.body["status"] = "inactive";
  const std::vector<Refusal> refusals = {
      {"forged source",
       [&] { return h.Push("wyp", MakePush("bthft", "Z", {"bradford-csc"})).status().code(); },
       ErrorCode::kForbidden},
      {"committee pushes",
       [&] {
         return h.Push("bradford-scrutiny", MakePush("bradford-scrutiny", "Z", {"bthft"}))
             .status()
             .code();
       },
       ErrorCode::kForbidden},
      {"audit recipient",
       [&] { return h.Push("wyp", MakePush("wyp", "Z", {"bradford-audit"})).status().code(); },
       ErrorCode::kInvalidInput},
      {"unknown recipient",
       [&] { return h.Push("wyp", MakePush("wyp", "Z", {"nobody"})).status().code(); },
       ErrorCode::kInvalidInput},
      {"conflict", [&] { return h.Push("wyp", changed).status().code(); }, ErrorCode::kConflict},
      {"ack another's", [&] { return h.Ack("bthft", message_id).code(); }, ErrorCode::kNotFound},
      {"read unknown record", [&] { return h.Get("bthft", ok->record_id).status().code(); },
       ErrorCode::kNotFound},
      {"bad mailbox limit", [&] { return h.Mailbox("bthft", 0).status().code(); },
       ErrorCode::kInvalidInput},
      {"audit query by police", [&] { return h.Query("wyp", {}).status().code(); },
       ErrorCode::kForbidden},
      {"audit verify by csc", [&] { return h.Verify("bradford-csc").status().code(); },
       ErrorCode::kForbidden},
  };
  for (const Refusal& r : refusals) {
    const int64_t records = h.Count("records"), messages = h.Count("messages"),
                  refs = h.Count("subject_refs"), audit = h.Count("audit"),
                  acked = h.Count("messages", "acked_at_ms IS NOT NULL");
    EXPECT_EQ(r.run(), r.expected) << r.name;
    EXPECT_EQ(h.Count("records"), records) << r.name;
    EXPECT_EQ(h.Count("messages"), messages) << r.name;
    EXPECT_EQ(h.Count("subject_refs"), refs) << r.name;
    EXPECT_EQ(h.Count("messages", "acked_at_ms IS NOT NULL"), acked) << r.name;
    EXPECT_EQ(h.Count("audit"), audit + 1) << r.name;
    EXPECT_EQ(
        h.Count("audit", "seq = " + std::to_string(audit + 1) + " AND action = 'request_rejected'"),
        1)
        << r.name;
  }
  auto rejected = AllEntries(h, Filter({{"action", "request_rejected"}}));
  ASSERT_EQ(rejected.size(), refusals.size());
  EXPECT_EQ(rejected[0].actor, "wyp");
  EXPECT_EQ(rejected[0].detail["error"], "forbidden");
  EXPECT_EQ(rejected[0].detail["status"], 403);
  EXPECT_EQ(rejected[0].detail["operation"], "push");
  EXPECT_EQ(rejected[0].subject, std::string("nhs:") + kNhs1);
  EXPECT_EQ(rejected[2].detail["problems"][0]["what"], "audit agencies never receive records");
  EXPECT_TRUE(h.Verify()->ok);
}

TEST_F(GatewayTest, RefusedIdsAreLoggedOnlyIfTheyAreGatewayIds) {
  EXPECT_EQ(h.Get("wyp", "AlexExample").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(h.Ack("wyp", "AlexExample").code(), ErrorCode::kNotFound);
  const std::string unknown = "rec_0123456789abcdef0123456789abcdef";
  EXPECT_EQ(h.Get("wyp", unknown).status().code(), ErrorCode::kNotFound);
  auto rejected = AllEntries(h, Filter({{"action", "request_rejected"}}));
  ASSERT_EQ(rejected.size(), 3u);
  EXPECT_EQ(rejected[0].record_id, "");
  EXPECT_EQ(rejected[1].message_id, "");
  EXPECT_EQ(rejected[2].record_id, unknown);
  EXPECT_EQ(h.Count("audit", "CAST(entry AS TEXT) LIKE '%Alex%'"), 0);
}

TEST_F(GatewayTest, RecordReadsFollowDeliveries) {
  h.Close();
  GatewayHarness p(std::make_shared<TestPolicy>());
  ASSERT_TRUE(p.Open().ok());
  auto pushed = p.Push("wyp", MakePush("wyp", "OCC-9", {"bradford-csc", "bthft", "cuh"}));
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  ASSERT_EQ(pushed->deliveries.size(), 3u);
  EXPECT_EQ(pushed->deliveries[1].decision, "redact");
  EXPECT_EQ(pushed->deliveries[2].decision, "deny");
  EXPECT_TRUE(pushed->deliveries[2].message_id.empty());
  EXPECT_TRUE(pushed->ToJson()["deliveries"][2]["message_id"].is_null());
  const json full = record::ToJson(MakeRecord("wyp", "OCC-9"));

  EXPECT_EQ(*p.Get("wyp", pushed->record_id), full);           // the source
  EXPECT_EQ(*p.Get("bradford-csc", pushed->record_id), full);  // permitted
  auto redacted = p.Get("bthft", pushed->record_id);           // redacted view
  ASSERT_TRUE(redacted.ok());
  EXPECT_FALSE((*redacted)["body"].contains("contact"));
  EXPECT_EQ((*redacted)["body"]["level"], "high");
  EXPECT_FALSE(p.Mailbox("bthft")->messages[0].record["body"].contains("contact"));
  EXPECT_TRUE(p.Mailbox("cuh")->messages.empty());  // denied: nothing delivered
  EXPECT_EQ(p.Get("cuh", pushed->record_id).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(p.Get("cambs-csc", pushed->record_id).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(p.Get("wyp", "rec_nope").status().code(), ErrorCode::kNotFound);

  auto trail = AllEntries(p, Filter({{"subject", std::string("nhs:") + kNhs1}}));
  EXPECT_THAT(Actions(trail), ElementsAre("record_accepted", "delivery_permitted",
                                          "delivery_redacted", "delivery_denied", "record_read",
                                          "record_read", "record_read", "mailbox_read"));
  EXPECT_EQ(trail[3].decision, "deny");
  EXPECT_EQ(trail[3].reasons, std::vector<std::string>{"test: cuh is denied"});
  EXPECT_EQ(trail[4].detail["as"], "source");
  EXPECT_EQ(trail[6].decision, "redact");
  EXPECT_EQ(trail[6].detail["as"], "recipient");
}

TEST_F(GatewayTest, MailboxPages) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto r = h.Push("wyp", MakePush("wyp", "OCC-" + std::to_string(i), {"bradford-csc"}));
    ASSERT_TRUE(r.ok());
    ids.push_back(r->deliveries[0].message_id);
  }
  std::vector<std::string> seen;
  std::string after;
  int pages = 0;
  do {
    auto page = h.Mailbox("bradford-csc", 2, after);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const auto& m : page->messages) seen.push_back(m.message_id);
    after = page->next;
    ++pages;
  } while (!after.empty() && pages < 10);
  EXPECT_EQ(seen, ids);  // oldest first, each once
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(h.Mailbox("bradford-csc", 1001).status().code(), ErrorCode::kInvalidInput);
  auto bad = h.Mailbox("bradford-csc", 10, "not-a-cursor");
  ASSERT_EQ(bad.status().code(), ErrorCode::kInvalidInput);
  EXPECT_EQ(bad.status().problems()[0].where, "after");

  // An empty read is audited once, with a count of zero.
  const int64_t before = h.Count("audit");
  EXPECT_TRUE(h.Mailbox("cuh")->messages.empty());
  EXPECT_EQ(h.Count("audit"), before + 1);
  auto last = AllEntries(h, Filter({{"agency", "cuh"}}));
  ASSERT_FALSE(last.empty());
  EXPECT_EQ(last.back().action, "mailbox_read");
  EXPECT_EQ(last.back().detail, json({{"count", 0}}));
}

TEST_F(GatewayTest, ReopenFindsEverything) {
  auto pushed = h.Push("wyp", MakePush("wyp", "OCC-1", {"bradford-csc", "bthft"}));
  ASSERT_TRUE(pushed.ok());
  ASSERT_TRUE(h.Ack("bthft", pushed->deliveries[1].message_id).ok());
  auto before = h.Verify();
  ASSERT_TRUE(before.ok());
  h.Close();

  ASSERT_TRUE(h.Open().ok());
  auto box = h.Mailbox("bradford-csc");
  ASSERT_TRUE(box.ok());
  ASSERT_EQ(box->messages.size(), 1u);
  EXPECT_EQ(box->messages[0].record, record::ToJson(MakeRecord("wyp", "OCC-1")));
  EXPECT_TRUE(h.Mailbox("bthft")->messages.empty());  // the ack survived
  auto replay = h.Push("wyp", MakePush("wyp", "OCC-1", {"bradford-csc", "bthft"}));
  ASSERT_TRUE(replay.ok());
  EXPECT_FALSE(replay->created);
  EXPECT_EQ(replay->record_id, pushed->record_id);

  auto after = h.Verify();
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->ok) << after->problem;
  // The chain went on where it stopped: the earlier verify's entry, two mailbox reads since.
  EXPECT_EQ(after->entries, before->entries + 1 + 2);
  auto offline = VerifyAuditChain(h.data_dir());
  ASSERT_TRUE(offline.ok());
  EXPECT_TRUE(offline->ok);
  EXPECT_EQ(offline->entries, after->entries + 1);
}

TEST_F(GatewayTest, NoPlaintextOnDisk) {
  PushRequest req = MakePush("wyp", "OCC-1", {"bradford-csc"});
  req.record.subject.given_name = "Zephyrine";
  req.record.subject.family_name = "Quillfeather";
  req.record.body["contact"]["office_hours"] = "CANARY-body-7d1e9";
  ASSERT_TRUE(h.Push("wyp", req).ok());
  ASSERT_TRUE(h.Mailbox("bradford-csc").ok());
  ASSERT_TRUE(h.Get("wyp", h.Push("wyp", req)->record_id).ok());

  auto check = [&](const char* when) {
    std::string bytes;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      bytes += ReadFile(h.db_path() + suffix);
    }
    ASSERT_GT(bytes.size(), 4096u) << when;
    EXPECT_NE(bytes.find("OCC-1"), std::string::npos) << "sanity: the scan sees row text";
    for (const char* secret :
         {"Zephyrine", "Quillfeather", "CANARY-body-7d1e9", "BD3 9AB", "2012-03-01", "cse_risk"}) {
      EXPECT_EQ(bytes.find(secret), std::string::npos) << secret << " found on disk " << when;
    }
  };
  check("while open");
  h.Close();
  check("after close");
}

TEST_F(GatewayTest, KeyFileIsPrivateAndChecked) {
  struct stat st {};
  ASSERT_EQ(::stat(h.key_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  ASSERT_EQ(::stat(h.db_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u) << "the database holds subject references: owner only";
  ASSERT_TRUE(h.Push("wyp", MakePush("wyp", "OCC-1", {"bradford-csc"})).ok());
  h.Close();
  const std::string good_key = ReadFile(h.key_path());

  ASSERT_EQ(::chmod(h.key_path().c_str(), 0644), 0);
  Status s = h.Open();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.detail(), HasSubstr("group or others"));
  EXPECT_THAT(s.detail(), HasSubstr("0644"));
  EXPECT_THAT(s.detail(), HasSubstr(h.key_path()));
  ASSERT_EQ(::chmod(h.key_path().c_str(), 0600), 0);

  std::filesystem::resize_file(h.key_path(), 31);
  s = h.Open();
  EXPECT_THAT(s.detail(), HasSubstr("exactly 32 bytes"));

  {  // another key: refused, the records cannot be opened with it
    std::ofstream out(h.key_path(), std::ios::binary | std::ios::trunc);
    out << std::string(32, 'k');
  }
  s = h.Open();
  EXPECT_THAT(s.detail(), HasSubstr("not the key this database was sealed with"));

  std::filesystem::remove(h.key_path());
  s = h.Open();
  EXPECT_THAT(s.detail(), HasSubstr("missing"));
  EXPECT_FALSE(std::filesystem::exists(h.key_path())) << "no fresh key over existing data";

  {
    std::ofstream out(h.key_path(), std::ios::binary | std::ios::trunc);
    out << good_key;
  }
  ASSERT_EQ(::chmod(h.key_path().c_str(), 0600), 0);
  ASSERT_TRUE(h.Open().ok());
  EXPECT_EQ(h.Mailbox("bradford-csc")->messages.size(), 1u);
}

TEST_F(GatewayTest, OneGatewayPerDataDirectory) {
  GatewayOptions o;
  o.config = h.config();
  o.registry = TestRegistry();
  o.clock = &h.clock();
  auto second = Gateway::Open(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(second.status().detail(), HasSubstr("another safegate process"));
  h.Close();
  auto now_free = Gateway::Open(o);
  ASSERT_TRUE(now_free.ok()) << now_free.status().ToString();
}

// The daemon waits a bounded time for a lock its killed predecessor still holds.
TEST_F(GatewayTest, OpenWaitsForALockReleasedWithinItsBound) {
  GatewayOptions o;
  o.config = h.config();
  o.registry = TestRegistry();
  o.clock = &h.clock();
  o.lock_wait = std::chrono::seconds(30);
  std::atomic<bool> closed{false};
  std::thread holder([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    closed = true;
    h.Close();
  });
  auto second = Gateway::Open(o);
  holder.join();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(closed.load());  // it got the lock only once the first gateway let go
}

TEST_F(GatewayTest, SchemaVersionIsRecordedAndNewerIsRefused) {
  h.Close();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(h.db_path().c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), core::CurrentSchemaVersion());
  sqlite3_finalize(st);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=999", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  Status s = h.Open();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.detail(), HasSubstr("newer than this safegate"));
}

TEST_F(GatewayTest, GroupCommit) {
  constexpr int kThreads = 8, kPerThread = 200;
  std::atomic<int> ok{0}, failed{0}, answered{0};
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string agency = t % 2 == 0 ? "wyp" : "bthft";
      const std::string to = t % 2 == 0 ? "bradford-csc" : "wyp";
      for (int i = 0; i < kPerThread; ++i) {
        h.gw().Push(CallerFor(agency),
                    MakePush(agency, "G-" + std::to_string(t) + "-" + std::to_string(i), {to}),
                    [&](Result<PushOutcome> r) {
                      (r.ok() && r->created ? ok : failed).fetch_add(1);
                      std::lock_guard<std::mutex> lock(mu);
                      answered.fetch_add(1);
                      cv.notify_all();
                    });
      }
    });
  }
  for (auto& t : threads) t.join();
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(120),
                            [&] { return answered.load() == kThreads * kPerThread; }));
  }
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(failed.load(), 0);
  const Gateway::Stats stats = h.gw().GetStats();
  EXPECT_EQ(stats.committed_jobs, kThreads * kPerThread);
  EXPECT_LT(stats.commits, stats.committed_jobs) << "pushes were group-committed";
  std::cout << "group commit: " << stats.committed_jobs << " pushes in " << stats.commits
            << " commits\n";
  EXPECT_EQ(stats.audit_entries, kThreads * kPerThread * 2);
  EXPECT_EQ(stats.mailbox_depth.at("bradford-csc"), kThreads / 2 * kPerThread);
  EXPECT_EQ(stats.mailbox_depth.at("wyp"), kThreads / 2 * kPerThread);
  EXPECT_EQ(h.Count("records"), kThreads * kPerThread);
  auto v = h.Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->problem;
}

TEST_F(GatewayTest, StatsReportMailboxDepthAndAge) {
  ASSERT_TRUE(h.Push("wyp", MakePush("wyp", "OCC-1", {"bradford-csc", "bthft"})).ok());
  h.clock().Advance(5000);
  ASSERT_TRUE(h.Push("wyp", MakePush("wyp", "OCC-2", {"bradford-csc"})).ok());
  Gateway::Stats s = h.gw().GetStats();
  EXPECT_EQ(s.mailbox_depth["bradford-csc"], 2);
  EXPECT_EQ(s.mailbox_depth["bthft"], 1);
  EXPECT_EQ(s.oldest_unacked_age_ms["bradford-csc"], 5000);
  EXPECT_EQ(s.audit_entries, 5);
  EXPECT_GE(s.commits, 2);
  const std::string id = h.Mailbox("bthft")->messages[0].message_id;
  ASSERT_TRUE(h.Ack("bthft", id).ok());
  s = h.gw().GetStats();
  EXPECT_EQ(s.mailbox_depth.count("bthft"), 0u);
}

TEST_F(GatewayTest, AuditQueriesFilterAndPage) {
  PushRequest other = MakePush("bthft", "H-1", {"bradford-csc"});
  other.record.subject.nhs_number = kNhs2;
  other.record.subject.local_ids.clear();
  ASSERT_TRUE(h.Push("wyp", MakePush("wyp", "OCC-1", {"bradford-csc", "bthft"})).ok());
  h.clock().Advance(kHour);
  ASSERT_TRUE(h.Push("bthft", other).ok());
  h.clock().Advance(kHour);
  ASSERT_TRUE(h.Mailbox("bradford-csc").ok());

  auto by_subject = h.Query("bradford-audit", Filter({{"subject", std::string("nhs:") + kNhs2}}));
  ASSERT_TRUE(by_subject.ok()) << by_subject.status().ToString();
  EXPECT_THAT(Actions(by_subject->entries),
              ElementsAre("record_accepted", "delivery_permitted", "mailbox_read"));

  // bthft as actor (its push) or as a named recipient (wyp's delivery to it).
  auto by_agency = h.Query("bradford-audit", Filter({{"agency", "bthft"}}));
  ASSERT_TRUE(by_agency.ok());
  EXPECT_THAT(Actions(by_agency->entries), ElementsAre("record_accepted", "delivery_permitted",
                                                       "record_accepted", "delivery_permitted"));
  EXPECT_EQ(by_agency->entries[0].actor, "wyp");

  auto by_action = h.Query("bradford-audit", Filter({{"action", "mailbox_read"}}));
  EXPECT_EQ(by_action->entries.size(), 2u);

  AuditFilter window;
  window.from_ms = kT0 + kHour;
  window.to_ms = kT0 + 2 * kHour;
  auto in_window = h.Query("bradford-audit", window);
  EXPECT_THAT(Actions(in_window->entries), ElementsAre("record_accepted", "delivery_permitted"));

  // Paging: 3 at a time, each entry once, in seq order.
  std::vector<int64_t> seqs;
  AuditFilter page;
  page.limit = 3;
  for (int i = 0; i < 20; ++i) {
    auto r = h.Query("bradford-audit", page);
    ASSERT_TRUE(r.ok());
    for (const auto& e : r->entries) seqs.push_back(e.seq);
    if (r->next.empty()) break;
    page.after = r->next;
  }
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], static_cast<int64_t>(i + 1));
  EXPECT_GE(seqs.size(), 9u);

  // The query itself is audited, with its filter and no names.
  auto queried = h.Query("bradford-audit",
                         Filter({{"purpose", "subject_access"}, {"action", "audit_queried"}}));
  ASSERT_TRUE(queried.ok());
  ASSERT_FALSE(queried->entries.empty());
  const AuditEntry& q0 = queried->entries[0];
  EXPECT_EQ(q0.actor, "bradford-audit");
  EXPECT_EQ(q0.subject, std::string("nhs:") + kNhs2);
  // The subject filter is the entry's own sealed subject, never echoed in the clear.
  EXPECT_FALSE(q0.detail["filter"].contains("subject"));
  EXPECT_EQ(q0.detail["filter"]["by_subject"], true);
  EXPECT_EQ(q0.details_hash.size(), 64u);
  EXPECT_FALSE(q0.erased);
  EXPECT_EQ(q0.detail["returned"], 3);
  auto last = h.Query("bradford-audit", Filter({{"action", "audit_queried"}}));
  EXPECT_EQ(last->entries.back().purpose, "subject_access");

  // A name is not a subject reference, and never reaches the log.
  auto named = h.Query("bradford-audit", Filter({{"subject", "Alex Example"}}));
  ASSERT_EQ(named.status().code(), ErrorCode::kInvalidInput);
  EXPECT_EQ(named.status().problems()[0].where, "subject");
  EXPECT_EQ(h.Count("audit", "CAST(entry AS TEXT) LIKE '%Alex%'"), 0);

  auto forbidden = h.Query("bradford-csc", {});
  EXPECT_EQ(forbidden.status().code(), ErrorCode::kForbidden);
  EXPECT_EQ(h.Count("audit", "action = 'request_rejected' AND actor = 'bradford-csc'"), 1);
  EXPECT_EQ(h.Verify("wyp").status().code(), ErrorCode::kForbidden);

  auto json_page = h.Query("bradford-audit", Filter({{"limit", "1"}}));
  const json j = json_page->ToJson();
  EXPECT_EQ(j["entries"][0]["seq"], 1);
  EXPECT_EQ(j["entries"][0]["at"], "2026-11-21T17:34:00.000Z");
  EXPECT_EQ(j["entries"][0]["hash"].get<std::string>().size(), 64u);
  EXPECT_EQ(j["next"], "1");
}

TEST_F(GatewayTest, VerifyIsAuditedAfterTheReport) {
  ASSERT_TRUE(h.Push("wyp", MakePush("wyp", "OCC-1", {"bradford-csc"})).ok());
  auto v = h.Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok);
  EXPECT_EQ(v->entries, 2);
  EXPECT_EQ(v->first_bad_seq, 0);
  auto v2 = h.Verify();
  EXPECT_EQ(v2->entries, 3);  // the first verify's own entry
  auto entries = AllEntries(h, Filter({{"action", "audit_queried"}}));
  ASSERT_GE(entries.size(), 2u);
  EXPECT_EQ(entries[0].detail["what"], "verify");
  EXPECT_EQ(entries[0].seq, 3);
  EXPECT_EQ(v2->head, entries[0].hash);
  const json j = v->ToJson();
  EXPECT_EQ(j["ok"], true);
  EXPECT_TRUE(j["first_bad_seq"].is_null());
}

TEST_F(GatewayTest, RejectWritesOneEntry) {
  Rejection r;
  r.action = "tls_rejected";
  r.actor = "";
  r.reason = "certificate revoked";
  r.detail = {{"fingerprint", std::string(64, 'a')}};
  ASSERT_TRUE(h.Reject(r).ok());
  r.action = "request_rejected";
  r.actor = "wyp";
  r.reason = "bad_request";
  r.detail = {{"route", "POST /v1/records"}, {"status", 400}};
  ASSERT_TRUE(h.Reject(r).ok());
  r.action = "record_accepted";  // not a rejection: refused, not logged
  EXPECT_FALSE(h.Reject(r).ok());
  auto all = AllEntries(h);
  ASSERT_GE(all.size(), 2u);
  EXPECT_EQ(all[0].action, "tls_rejected");
  EXPECT_EQ(all[0].actor, "-");
  EXPECT_EQ(all[0].reasons, std::vector<std::string>{"certificate revoked"});
  EXPECT_EQ(all[1].actor, "wyp");
  EXPECT_EQ(all[1].detail["status"], 400);
  EXPECT_EQ(h.Count("audit", "action = 'record_accepted'"), 0);
}

TEST_F(GatewayTest, AFailedAuditWriteStoresNothingAndKeepsTheChain) {
  // Make the database refuse delivery audit entries, as a full disk or a fault would.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(h.db_path().c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  ASSERT_EQ(
      sqlite3_exec(db,
                   "CREATE TRIGGER fault BEFORE INSERT ON audit WHEN "
                   "NEW.action = 'delivery_permitted' BEGIN SELECT RAISE(ABORT, 'fault'); END",
                   nullptr, nullptr, nullptr),
      SQLITE_OK);
  auto failed = h.Push("wyp", MakePush("wyp", "OCC-1", {"bradford-csc"}));
  EXPECT_EQ(failed.status().code(), ErrorCode::kInternal);
  EXPECT_EQ(h.Count("records"), 0);
  EXPECT_EQ(h.Count("messages"), 0);
  EXPECT_EQ(h.Count("audit"), 0) << "record_accepted was rolled back with the rest";
  ASSERT_EQ(sqlite3_exec(db, "DROP TRIGGER fault", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);

  // The in-memory chain head was restored: the next entries chain from h_0 again.
  auto pushed = h.Push("wyp", MakePush("wyp", "OCC-1", {"bradford-csc"}));
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  auto v = h.Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->problem;
  EXPECT_EQ(v->entries, 2);
}

TEST_F(GatewayTest, ShutdownDrainsAndThenRefuses) {
  std::atomic<int> ok{0};
  for (int i = 0; i < 50; ++i) {
    h.gw().Push(CallerFor("wyp"), MakePush("wyp", "S-" + std::to_string(i), {"bthft"}),
                [&](Result<PushOutcome> r) {
                  if (r.ok()) ok.fetch_add(1);
                });
  }
  h.gw().Shutdown();
  EXPECT_EQ(ok.load(), 50) << "everything queued before Shutdown was committed";
  auto late = Await<PushOutcome>([&](Callback<PushOutcome> cb) {
    h.gw().Push(CallerFor("wyp"), MakePush("wyp", "late", {"bthft"}), std::move(cb));
  });
  EXPECT_EQ(late.status().code(), ErrorCode::kUnavailable);
  h.gw().Shutdown();  // idempotent
  EXPECT_EQ(h.Count("records"), 50);
}

}  // namespace
}  // namespace safegate
