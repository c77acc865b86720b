// One safeguarding exchange end to end, through a real gateway with real certificates: a
// police CSE-risk flag pushed to children's social care and the hospital, idempotency,
// conflicts, mailbox pull and ack, record reads by who may and may not, and the audit trail
// an audit officer sees.
#include <gtest/gtest.h>

#include <set>

#include "tests/support/sandbox.h"
#include "tests/support/test_data.h"

namespace safegate::testing {
namespace {

using nlohmann::json;

std::set<std::string> Actions(const std::vector<json>& entries) {
  std::set<std::string> actions;
  for (const auto& e : entries) actions.insert(e.value("action", ""));
  return actions;
}

std::string AuditedDeliveryAction(const std::string& decision) {
  return decision == "permit"   ? "delivery_permitted"
         : decision == "redact" ? "delivery_redacted"
                                : "delivery_denied";
}

class PushFlowTest : public SandboxTest {};

TEST_F(PushFlowTest, FlagIsDeliveredReadAckedAndAudited) {
  const std::string nhs = TestNhsNumber(1);
  const json record = CseFlag(nhs, "OCC-2025-000001");
  HttpsClient wyp = Client("wyp");

  // Push: 201 with one delivery per recipient.
  auto pushed = wyp.PostJson("/v1/records", PushBody(record, {"bradford-csc", "bthft"}));
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  ASSERT_EQ(pushed->status, 201) << pushed->Describe();
  const json answer = pushed->Json();
  ASSERT_TRUE(answer.is_object()) << pushed->Describe();
  const std::string record_id = answer.value("record_id", "");
  ASSERT_FALSE(record_id.empty()) << pushed->Describe();
  ASSERT_TRUE(answer["deliveries"].is_array());
  ASSERT_EQ(answer["deliveries"].size(), 2u) << pushed->Describe();
  std::map<std::string, json> deliveries;
  for (const auto& d : answer["deliveries"]) deliveries[d.value("recipient", "")] = d;
  ASSERT_EQ(deliveries.count("bradford-csc"), 1u) << pushed->Describe();
  ASSERT_EQ(deliveries.count("bthft"), 1u) << pushed->Describe();
  for (const auto& [recipient, d] : deliveries) {
    const std::string decision = d.value("decision", "");
    EXPECT_TRUE(decision == "permit" || decision == "redact")
        << "a high CSE-risk flag about a child must reach " << recipient << ": " << d.dump();
    EXPECT_FALSE(d.value("message_id", "").empty()) << d.dump();
    EXPECT_TRUE(d["reasons"].is_array() && !d["reasons"].empty()) << d.dump();
  }
  const std::string csc_message = deliveries["bradford-csc"].value("message_id", "");

  // The same push again: 200 and the first answer.
  auto again = wyp.PostJson("/v1/records", PushBody(record, {"bradford-csc", "bthft"}));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->status, 200) << again->Describe();
  EXPECT_EQ(again->Json(), answer);

  // Other content under the same idempotency key: 409, and nothing changes.
  auto changed = wyp.PostJson("/v1/records", PushBody(CseFlag(nhs, "OCC-2025-000001", "medium"),
                                                      {"bradford-csc", "bthft"}));
  ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  EXPECT_EQ(changed->status, 409) << changed->Describe();
  EXPECT_EQ(changed->ErrorCode(), "conflict") << changed->Describe();

  // Children's social care pulls its mailbox: exactly the one message, from wyp.
  HttpsClient csc = Client("bradford-csc");
  auto mailbox = csc.Get("/v1/mailbox");
  ASSERT_TRUE(mailbox.ok()) << mailbox.status().ToString();
  ASSERT_EQ(mailbox->status, 200) << mailbox->Describe();
  json messages = mailbox->Json()["messages"];
  ASSERT_TRUE(messages.is_array()) << mailbox->Describe();
  ASSERT_EQ(messages.size(), 1u) << mailbox->Describe();
  EXPECT_EQ(messages[0].value("message_id", ""), csc_message);
  EXPECT_EQ(messages[0].value("record_id", ""), record_id);
  EXPECT_EQ(messages[0].value("from", ""), "wyp");
  EXPECT_EQ(messages[0].value("purpose", ""), kPurpose);
  ASSERT_TRUE(messages[0]["record"].is_object()) << mailbox->Describe();
  EXPECT_EQ(messages[0]["record"]["body"].value("type", ""), "cse_risk");
  EXPECT_EQ(messages[0]["record"]["body"].value("level", ""), "high");

  // Only the recipient may ack its message.
  auto foreign_ack = Client("bthft").Request("POST", "/v1/mailbox/" + csc_message + "/ack", "");
  ASSERT_TRUE(foreign_ack.ok()) << foreign_ack.status().ToString();
  EXPECT_EQ(foreign_ack->status, 404) << foreign_ack->Describe();

  auto ack = csc.Request("POST", "/v1/mailbox/" + csc_message + "/ack", "");
  ASSERT_TRUE(ack.ok()) << ack.status().ToString();
  EXPECT_EQ(ack->status, 204) << ack->Describe();

  auto after_ack = csc.Get("/v1/mailbox");
  ASSERT_TRUE(after_ack.ok()) << after_ack.status().ToString();
  ASSERT_EQ(after_ack->status, 200) << after_ack->Describe();
  EXPECT_TRUE(after_ack->Json()["messages"].empty()) << after_ack->Describe();

  // The hospital, a recipient, may read the record; so may its source.
  for (const char* reader : {"bthft", "wyp"}) {
    auto read = Client(reader).Get("/v1/records/" + UrlEncode(record_id));
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    EXPECT_EQ(read->status, 200) << reader << ": " << read->Describe();
    EXPECT_EQ(read->Json()["source"].value("record_id", ""), "OCC-2025-000001") << reader;
  }

  // A record delivered only to children's social care is not the hospital's to read, and
  // its existence is not revealed.
  auto only_csc = wyp.PostJson(
      "/v1/records", PushBody(CseFlag(TestNhsNumber(2), "OCC-2025-000002"), {"bradford-csc"}));
  ASSERT_TRUE(only_csc.ok()) << only_csc.status().ToString();
  ASSERT_EQ(only_csc->status, 201) << only_csc->Describe();
  auto not_delivered =
      Client("bthft").Get("/v1/records/" + UrlEncode(only_csc->Json().value("record_id", "")));
  ASSERT_TRUE(not_delivered.ok()) << not_delivered.status().ToString();
  EXPECT_EQ(not_delivered->status, 404) << not_delivered->Describe();
  EXPECT_EQ(not_delivered->ErrorCode(), "not_found");
  auto committee = Client("bradford-scrutiny").Get("/v1/records/" + UrlEncode(record_id));
  ASSERT_TRUE(committee.ok()) << committee.status().ToString();
  EXPECT_TRUE(committee->status == 403 || committee->status == 404)
      << "a committee never sees records: " << committee->Describe();

  // The audit officer sees the subject's whole trail.
  const std::vector<json> trail = AuditEntries("subject=" + UrlEncode(NhsRef(nhs)));
  const std::set<std::string> actions = Actions(trail);
  for (const std::string& expected :
       {std::string("record_accepted"),
        AuditedDeliveryAction(deliveries["bradford-csc"].value("decision", "")),
        AuditedDeliveryAction(deliveries["bthft"].value("decision", "")),
        std::string("mailbox_read"), std::string("message_acked")}) {
    EXPECT_EQ(actions.count(expected), 1u) << "no " << expected << " in " << json(trail).dump(1);
  }
  size_t accepted = 0;
  for (const auto& e : trail) {
    EXPECT_EQ(e.value("subject", ""), NhsRef(nhs)) << e.dump();
    EXPECT_FALSE(e.value("hash", "").empty()) << e.dump();
    if (e.value("action", "") == "record_accepted") {
      ++accepted;
      EXPECT_EQ(e.value("record_id", ""), record_id) << e.dump();
      EXPECT_EQ(e.value("actor", ""), "wyp") << e.dump();
      EXPECT_EQ(e.value("purpose", ""), kPurpose) << e.dump();
    }
  }
  EXPECT_EQ(accepted, 1u) << "the replayed push must not be accepted twice";
  // The audit trail names no person: no name, birth date or postcode in any entry (R7).
  const std::string trail_text = json(trail).dump();
  for (const char* personal : {"Zephyrine", "Quillfeather", "2015-06-01", "BD3 9AB"}) {
    EXPECT_EQ(trail_text.find(personal), std::string::npos) << personal << " in the audit log";
  }

  // The chain verifies, for the audit officer only.
  auto verify = Client("bradford-audit").Get("/v1/audit/verify");
  ASSERT_TRUE(verify.ok()) << verify.status().ToString();
  ASSERT_EQ(verify->status, 200) << verify->Describe();
  EXPECT_EQ(verify->Json().value("ok", false), true) << verify->Describe();
  EXPECT_GT(verify->Json().value("entries", 0), 0) << verify->Describe();
  // No bad entry: first_bad_seq is null (or 0).
  const json first_bad = verify->Json()["first_bad_seq"];
  EXPECT_TRUE(first_bad.is_null() || first_bad == 0) << verify->Describe();

  for (const char* outsider : {"wyp", "bradford-csc", "bthft", "bradford-scrutiny"}) {
    for (const std::string& target :
         {std::string("/v1/audit/verify"), std::string("/v1/audit?purpose=") + kAuditPurpose}) {
      auto refused = Client(outsider).Get(target);
      ASSERT_TRUE(refused.ok()) << refused.status().ToString();
      EXPECT_EQ(refused->status, 403) << outsider << " " << target << ": " << refused->Describe();
      EXPECT_EQ(refused->ErrorCode(), "forbidden") << outsider << " " << target;
    }
  }
}

}  // namespace
}  // namespace safegate::testing
