// The sharing policy in the store, through the Gateway interface with the shipped policy
// (policy/default.toml): permit, redact (withheld fields audited, never values), deny,
// consent, the safeguarding override, unknown purposes, policy reload, statistics with small
// numbers suppressed, and the retention sweep.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "daemon/core/policy_delivery.h"
#include "daemon/core/test_support.h"
#include "daemon/core/time_format.h"
#include "record/record.h"

namespace safegate {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace safegate::testing;
using nlohmann::json;

std::string PolicyDir() {
  if (const char* dir = std::getenv("SAFEGATE_SOURCE_DIR"); dir != nullptr && *dir != '\0') {
    return std::string(dir) + "/policy";
  }
  return SAFEGATE_POLICY_DIR;
}

std::shared_ptr<const DeliveryPolicy> LoadOrDie(const std::string& path) {
  auto policy = MakePolicyDeliveryPolicy(path);
  if (!policy.ok()) throw std::runtime_error("policy " + path + ": " + policy.status().ToString());
  return *policy;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += s + "\n";
  return out;
}

json ConsentBody(const std::string& subject, const std::string& purpose,
                 const std::string& status, int64_t recorded_at_ms) {
  return {{"subject", subject},
          {"purpose", purpose},
          {"status", status},
          {"recorded_by", "Practitioner 4711"},
          {"recorded_at", core::FormatTimeMs(recorded_at_ms)},
          {"evidence", "signed form, scanned"}};
}

const AuditEntry* FindAction(const std::vector<AuditEntry>& entries, const std::string& action,
                             const std::string& recipient = "") {
  for (const AuditEntry& e : entries) {
    if (e.action != action) continue;
    if (!recipient.empty() && e.detail.value("recipient", "") != recipient) continue;
    return &e;
  }
  return nullptr;
}

// The gateway with the shipped policy, and synchronous calls for the policy's operations.
class PolicyGatewayTest : public ::testing::Test {
 protected:
  explicit PolicyGatewayTest(std::shared_ptr<const DeliveryPolicy> policy = nullptr)
      : h(policy ? std::move(policy) : LoadOrDie(PolicyDir() + "/default.toml")) {}
  void SetUp() override { ASSERT_TRUE(h.Open().ok()); }

  Result<ConsentRecord> RecordConsent(const std::string& agency, json body) {
    return Await<ConsentRecord>([&](Callback<ConsentRecord> cb) {
      h.gw().RecordConsent(CallerFor(agency), std::move(body), std::move(cb));
    });
  }
  Result<ConsentList> ListConsents(const std::string& agency, const std::string& ref) {
    return Await<ConsentList>([&](Callback<ConsentList> cb) {
      h.gw().ListConsents(CallerFor(agency), ref, std::move(cb));
    });
  }
  Result<StatsReport> Stats(const std::string& agency, StatsQuery q = {}) {
    return Await<StatsReport>([&](Callback<StatsReport> cb) {
      h.gw().QueryStats(CallerFor(agency), std::move(q), std::move(cb));
    });
  }
  Result<RetentionReport> Retention(int64_t now_ms) {
    return Await<RetentionReport>(
        [&](Callback<RetentionReport> cb) { h.gw().SweepRetention(now_ms, std::move(cb)); });
  }
  Result<PolicyReloadReport> Reload() {
    return Await<PolicyReloadReport>(
        [&](Callback<PolicyReloadReport> cb) { h.gw().ReloadPolicy(std::move(cb)); });
  }
  std::vector<AuditEntry> Trail() { return AllEntries(h); }

  GatewayHarness h;
};

PushRequest Push(const std::string& from, const std::string& id, std::vector<std::string> to,
                 const std::string& purpose) {
  return MakePush(from, id, std::move(to), purpose);
}

// A flag without criminal offence or Schedule 12A marks: one a CP-IS view may show.
PushRequest CpFlagPush(const std::string& id, const std::string& purpose) {
  PushRequest p = MakePush("bradford-csc", id, {"bthft"}, purpose);
  p.record.source.system = "liquidlogic";
  p.record.classification = {};
  p.record.body["type"] = "cp_plan";
  p.record.body["owner_agency"] = "bradford-csc";
  return p;
}

json Override() {
  return {{"basis", "DPA 2018 Sch 1 para 18"},
          {"reason", "Parent refused; risk of immediate harm to the child"},
          {"authorised_by", "Team manager T. Example"}};
}

TEST_F(PolicyGatewayTest, PermitCarriesRulesBasisAndVersion) {
  auto pushed = h.Push("wyp", Push("wyp", "OCC-1", {"bradford-csc"}, "safeguarding"));
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  ASSERT_EQ(pushed->deliveries.size(), 1u);
  const Delivery& d = pushed->deliveries[0];
  EXPECT_EQ(d.decision, "permit");
  EXPECT_FALSE(d.message_id.empty());
  const std::string reasons = Join(d.reasons);
  EXPECT_THAT(reasons, HasSubstr("rules fired: R2-police-to-csc-child-protection"));
  EXPECT_THAT(reasons, HasSubstr("lawful basis: UK GDPR Art 6(1)(e) public task"));
  EXPECT_THAT(reasons, HasSubstr("DPA 2018 Sch 1 para 18"));  // criminal offence condition
  EXPECT_THAT(reasons, ::testing::ContainsRegex("policy version: [0-9a-f]{64}"));

  auto box = h.Mailbox("bradford-csc");
  ASSERT_TRUE(box.ok());
  ASSERT_EQ(box->messages.size(), 1u);
  EXPECT_EQ(box->messages[0].record, record::ToJson(MakeRecord("wyp", "OCC-1")));

  const auto trail = Trail();
  const AuditEntry* e = FindAction(trail, "delivery_permitted");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->decision, "permit");
  EXPECT_EQ(e->detail["recipient"], "bradford-csc");
  EXPECT_EQ(e->detail["rules_fired"], json({"R2-police-to-csc-child-protection"}));
  EXPECT_EQ(e->detail["governing_rule"], "R2-police-to-csc-child-protection");
  EXPECT_EQ(e->detail["consent"], "none");
  EXPECT_EQ(e->detail["age_band"], "child");
  EXPECT_EQ(e->detail["retention_days"], 730);
  EXPECT_EQ(e->detail["policy_version"].get<std::string>().size(), 64u);
  EXPECT_THAT(reasons, HasSubstr("policy version: " + e->detail["policy_version"].get<std::string>()));
  // The entry cites the policy rather than repeating its text: the rule id as the reason,
  // and the governing rule's lawful basis with the conditions the record needed (it is
  // criminal offence data, not special category data).
  EXPECT_EQ(e->reasons, std::vector<std::string>({"R2-police-to-csc-child-protection"}));
  EXPECT_EQ(e->detail["basis"], json({"art6", "art10"}));
  EXPECT_FALSE(e->detail.contains("lawful_basis"));
  EXPECT_FALSE(e->detail.contains("consent_required"));  // the rule's terms, in the policy
  // The audit query resolves the citations against the stored text of that version: the
  // same words the pushing agency was given.
  ASSERT_TRUE(e->explained.is_object());
  EXPECT_EQ(e->explained["policy_text"], "stored");
  ASSERT_EQ(e->explained["reasons"].size(), 1u);
  EXPECT_EQ(e->explained["reasons"][0], d.reasons[0]);
  EXPECT_THAT(e->explained["reasons"][0].get<std::string>(),
              HasSubstr("R2-police-to-csc-child-protection: police share"));
  const std::string basis = e->explained["lawful_basis"].get<std::string>();
  EXPECT_THAT(basis, HasSubstr("6(1)(e)"));
  EXPECT_THAT(basis, HasSubstr("DPA 2018 Sch 1 para 18"));
  EXPECT_THAT(d.reasons, ::testing::Contains("lawful basis: " + basis));
}

TEST_F(PolicyGatewayTest, RedactDeliversTheAllowListAndAuditsWithheldPointersOnly) {
  auto pushed = h.Push("wyp", Push("wyp", "OCC-2", {"bthft"}, "safeguarding"));
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  const Delivery& d = pushed->deliveries[0];
  EXPECT_EQ(d.decision, "redact");
  EXPECT_THAT(Join(d.reasons), HasSubstr("R4-police-to-health-child-protection"));

  auto box = h.Mailbox("bthft");
  ASSERT_TRUE(box.ok());
  ASSERT_EQ(box->messages.size(), 1u);
  const json& seen = box->messages[0].record;
  EXPECT_FALSE(seen["subject"].contains("postcode"));
  EXPECT_FALSE(seen["subject"].contains("local_ids"));
  EXPECT_EQ(seen["subject"]["nhs_number"], kNhs1);
  EXPECT_EQ(seen["body"]["level"], "high");
  EXPECT_TRUE(seen.contains("classification"));  // the envelope always travels
  auto got = h.Get("bthft", pushed->record_id);  // the same view through a record read
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, seen);

  const auto trail = Trail();
  const AuditEntry* e = FindAction(trail, "delivery_redacted");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->detail["withheld"], json({"/subject/local_ids", "/subject/postcode"}));
  // Pointers, never values: the withheld postcode and local id are not in the entry.
  const std::string entry = e->detail.dump() + Join(e->reasons);
  EXPECT_THAT(entry, Not(HasSubstr("BD3 9AB")));
  EXPECT_THAT(entry, Not(HasSubstr("BRA-000123")));
}

TEST_F(PolicyGatewayTest, DenyStoresNoMessageAndAuditsTheReasons) {
  // Police share with health for safeguarding only; an s47 enquiry is no rule's business.
  auto pushed =
      h.Push("wyp", Push("wyp", "OCC-3", {"bthft", "bradford-csc"}, "s47_enquiry"));
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  ASSERT_EQ(pushed->deliveries.size(), 2u);
  EXPECT_EQ(pushed->deliveries[0].decision, "deny");
  EXPECT_TRUE(pushed->deliveries[0].message_id.empty());
  EXPECT_THAT(Join(pushed->deliveries[0].reasons), HasSubstr("builtin.default-deny"));
  EXPECT_THAT(Join(pushed->deliveries[0].reasons), Not(HasSubstr("lawful basis:")));
  EXPECT_EQ(pushed->deliveries[1].decision, "permit");
  EXPECT_TRUE(h.Mailbox("bthft")->messages.empty());

  const auto trail = Trail();
  const AuditEntry* e = FindAction(trail, "delivery_denied", "bthft");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->decision, "deny");
  EXPECT_EQ(e->detail["rules_fired"], json({"builtin.default-deny"}));
  EXPECT_FALSE(e->detail.contains("lawful_basis"));
  EXPECT_FALSE(e->detail.contains("basis"));
  // A builtin guard's reason is its own sentence (no rule text to cite).
  EXPECT_THAT(Join(e->reasons), HasSubstr("no rule permits sharing a flag record from police "
                                          "to health for s47_enquiry"));
  ASSERT_TRUE(e->explained.is_object());
  EXPECT_TRUE(e->explained["lawful_basis"].is_null());
  EXPECT_EQ(e->explained["reasons"], json(e->reasons));
}

TEST_F(PolicyGatewayTest, AReplayGetsTheFirstAnswerWordForWord) {
  // A permit and a redaction, then a denial and a permit: every kind of delivery answer.
  const PushRequest pushes[] = {
      Push("wyp", "OCC-R1", {"bradford-csc", "bthft"}, "safeguarding"),
      Push("wyp", "OCC-R2", {"bthft", "bradford-csc"}, "s47_enquiry")};
  for (const PushRequest& p : pushes) {
    auto first = h.Push("wyp", p);
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    ASSERT_TRUE(first->created);
    auto again = h.Push("wyp", p);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_FALSE(again->created);
    EXPECT_EQ(again->ToJson(), first->ToJson());
    EXPECT_THAT(Join(again->deliveries[0].reasons), HasSubstr("policy version: "));
  }
  // Stored by citation, not as the prose the caller was given.
  EXPECT_EQ(CountRows(h.db_path(), "records"), 2);
  EXPECT_EQ(CountRows(h.db_path(), "records", "response_json LIKE '%\"codes\"%'"), 2);
  EXPECT_EQ(CountRows(h.db_path(), "records", "response_json LIKE '%rules fired%'"), 0);
  EXPECT_EQ(CountRows(h.db_path(), "records", "response_json LIKE '%lawful basis%'"), 0);
}

TEST_F(PolicyGatewayTest, HandlingCodeCGoesToPoliceOnly) {
  PushRequest p = Push("wyp", "INT-1", {"bradford-csc", "cambs-police"}, "missing_child");
  p.record.classification.handling = "C";
  auto pushed = h.Push("wyp", std::move(p));
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  EXPECT_EQ(pushed->deliveries[0].decision, "deny");
  EXPECT_THAT(Join(pushed->deliveries[0].reasons), HasSubstr("R4-handling-c-police-only"));
  EXPECT_EQ(pushed->deliveries[1].decision, "permit");
}

TEST_F(PolicyGatewayTest, UnknownPurposeIsRefusedAndAudited) {
  auto pushed = h.Push("wyp", Push("wyp", "OCC-4", {"bradford-csc"}, "child_protection"));
  ASSERT_FALSE(pushed.ok());
  EXPECT_EQ(pushed.status().code(), ErrorCode::kInvalidInput);
  ASSERT_EQ(pushed.status().problems().size(), 1u);
  EXPECT_EQ(pushed.status().problems()[0].where, "/purpose");
  EXPECT_THAT(pushed.status().problems()[0].what, HasSubstr("safeguarding, s47_enquiry"));
  EXPECT_EQ(h.Count("records"), 0);
  const auto trail = Trail();
  const AuditEntry* e = FindAction(trail, "request_rejected");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->detail["status"], 422);
}

TEST_F(PolicyGatewayTest, ConsentIsRecordedListedAndAuditedWithoutNames) {
  const std::string subject = std::string("nhs:") + kNhs1;
  auto recorded =
      RecordConsent("bradford-csc", ConsentBody(subject, "safeguarding", "refused", kT0 - kHour));
  ASSERT_TRUE(recorded.ok()) << recorded.status().ToString();
  EXPECT_THAT(recorded->consent_id, ::testing::MatchesRegex("con_[0-9a-f]{32}"));
  EXPECT_EQ(recorded->agency, "bradford-csc");
  EXPECT_EQ(recorded->recorded_at_ms, kT0 - kHour);
  const json j = recorded->ToJson();
  EXPECT_EQ(j["recorded_at"], "2026-11-21T16:34:00.000Z");
  EXPECT_EQ(j["evidence"], "signed form, scanned");

  h.clock().Advance(1000);
  ASSERT_TRUE(
      RecordConsent("bthft", ConsentBody(subject, "safeguarding", "given", kT0 - 60 * 1000)).ok());
  ASSERT_TRUE(RecordConsent("wyp", ConsentBody(subject, "scheduled_care", "given", kT0)).ok());

  auto list = ListConsents("wyp", "nhs:" + std::string(kNhs1));
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->consents.size(), 3u);
  EXPECT_EQ(list->consents[0].status, "refused");
  EXPECT_EQ(list->consents[0].recorded_by, "Practitioner 4711");
  EXPECT_EQ(list->state.at("safeguarding"), "given");  // the latest statement wins
  EXPECT_EQ(list->state.at("scheduled_care"), "given");
  EXPECT_EQ(ListConsents("wyp", "nhs:" + std::string(kNhs2))->consents.size(), 0u);

  // Who recorded it and the evidence are nowhere in the clear: not in the database file, its
  // WAL, or the audit entries.
  const std::string disk = ReadFile(h.db_path()) + ReadFile(h.db_path() + "-wal");
  for (const char* text : {"Practitioner 4711", "signed form, scanned"}) {
    EXPECT_EQ(disk.find(text), std::string::npos) << text;
  }
  const auto trail = Trail();
  const AuditEntry* e = FindAction(trail, "consent_recorded");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->actor, "bradford-csc");
  EXPECT_EQ(e->purpose, "safeguarding");
  EXPECT_EQ(e->detail["status"], "refused");
  EXPECT_EQ(e->detail["evidence"], true);
  EXPECT_NE(FindAction(trail, "consents_queried"), nullptr);
}

TEST_F(PolicyGatewayTest, BadConsentsAreRefusedWithEveryProblem) {
  auto r = RecordConsent("bradford-csc", json{{"subject", "Alex Example"},
                                              {"purpose", "marketing"},
                                              {"status", "maybe"},
                                              {"recorded_by", ""},
                                              {"recorded_at", "yesterday"},
                                              {"colour", "blue"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidInput);
  std::set<std::string> where;
  for (const Problem& p : r.status().problems()) where.insert(p.where);
  EXPECT_EQ(where, (std::set<std::string>{"body", "/subject", "/purpose", "/status",
                                          "/recorded_by", "/recorded_at"}));
  EXPECT_EQ(h.Count("audit", "instr(CAST(entry AS TEXT), 'Alex Example') > 0"), 0);

  auto future = RecordConsent("bradford-csc", ConsentBody("nhs:" + std::string(kNhs1),
                                                          "safeguarding", "given", kT0 + kDay));
  ASSERT_FALSE(future.ok());
  EXPECT_EQ(future.status().problems()[0].where, "/recorded_at");

  auto forbidden = RecordConsent(
      "bradford-audit", ConsentBody("nhs:" + std::string(kNhs1), "safeguarding", "given", kT0));
  EXPECT_EQ(forbidden.status().code(), ErrorCode::kForbidden);
  EXPECT_EQ(ListConsents("bradford-scrutiny", "nhs:" + std::string(kNhs1)).status().code(),
            ErrorCode::kForbidden);
  EXPECT_EQ(ListConsents("wyp", "Alex Example").status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(h.Count("consents"), 0);
}

TEST_F(PolicyGatewayTest, ConsentRefusedBlocksUntilGivenAgain) {
  // Recorded under the subject's CSC id: it still counts for a record carrying its NHS number.
  ASSERT_TRUE(RecordConsent("bradford-csc", ConsentBody("csc:bradford:BRA-000123", "safeguarding",
                                                        "refused", kT0 - kHour))
                  .ok());
  auto blocked = h.Push("wyp", Push("wyp", "OCC-5", {"bradford-csc"}, "safeguarding"));
  ASSERT_TRUE(blocked.ok()) << blocked.status().ToString();
  EXPECT_EQ(blocked->deliveries[0].decision, "deny");
  EXPECT_THAT(Join(blocked->deliveries[0].reasons),
              HasSubstr("builtin.R3-consent: consent was refused for safeguarding; no "
                        "safeguarding override was given"));
  // Another purpose is not blocked by it (consent is per purpose).
  auto other = h.Push("wyp", Push("wyp", "OCC-6", {"bradford-csc"}, "missing_child"));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->deliveries[0].decision, "permit");

  ASSERT_TRUE(RecordConsent("bradford-csc", ConsentBody("nhs:" + std::string(kNhs1),
                                                        "safeguarding", "given", kT0 - 1000))
                  .ok());
  auto allowed = h.Push("wyp", Push("wyp", "OCC-7", {"bradford-csc"}, "safeguarding"));
  ASSERT_TRUE(allowed.ok());
  EXPECT_EQ(allowed->deliveries[0].decision, "permit");
  const auto trail = Trail();
  const AuditEntry* denied = FindAction(trail, "delivery_denied");
  ASSERT_NE(denied, nullptr);
  EXPECT_EQ(denied->detail["consent"], "refused");
}

TEST_F(PolicyGatewayTest, OverrideLiftsARefusalAndTellsTheAuditAgency) {
  ASSERT_TRUE(RecordConsent("bradford-csc", ConsentBody("nhs:" + std::string(kNhs1),
                                                        "safeguarding", "refused", kT0 - kHour))
                  .ok());
  PushRequest p = Push("wyp", "OCC-8", {"bradford-csc", "bthft"}, "safeguarding");
  p.override_request = Override();
  auto pushed = h.Push("wyp", std::move(p));
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  for (const Delivery& d : pushed->deliveries) {
    EXPECT_NE(d.decision, "deny") << d.recipient;
    EXPECT_THAT(Join(d.reasons), HasSubstr("builtin.R2-safeguarding-override")) << d.recipient;
  }

  const auto trail = Trail();
  const AuditEntry* used = FindAction(trail, "override_used");
  ASSERT_NE(used, nullptr);
  EXPECT_EQ(used->actor, "wyp");
  EXPECT_EQ(used->record_id, pushed->record_id);
  EXPECT_EQ(used->detail["recipients"], json({"bradford-csc", "bthft"}));
  EXPECT_EQ(used->detail["consent"], "refused");
  EXPECT_EQ(used->detail["notified"], json({"bradford-audit"}));
  // The recorded reason and authoriser are kept sealed, not in the entry's clear bytes.
  EXPECT_EQ(h.Count("audit", "instr(CAST(entry AS TEXT), 'immediate harm') > 0"), 0);
  EXPECT_EQ(h.Count("audit", "instr(CAST(entry AS TEXT), 'T. Example') > 0"), 0);
  const AuditEntry* permitted = FindAction(trail, "delivery_permitted");
  ASSERT_NE(permitted, nullptr);
  EXPECT_EQ(permitted->detail["override_used"], true);

  auto box = h.Mailbox("bradford-audit");
  ASSERT_TRUE(box.ok());
  ASSERT_EQ(box->messages.size(), 1u);
  EXPECT_EQ(box->messages[0].type, "notice");
  EXPECT_EQ(box->messages[0].notice["kind"], "override_used");
  EXPECT_EQ(box->messages[0].notice["record_id"], pushed->record_id);
  EXPECT_EQ(box->messages[0].notice["from"], "wyp");
}

TEST_F(PolicyGatewayTest, OverrideWithoutRefusalIsNotUsed) {
  PushRequest p = Push("wyp", "OCC-9", {"bradford-csc"}, "safeguarding");
  p.override_request = Override();
  auto pushed = h.Push("wyp", std::move(p));
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  EXPECT_EQ(pushed->deliveries[0].decision, "permit");
  EXPECT_EQ(FindAction(Trail(), "override_used"), nullptr);
  EXPECT_TRUE(h.Mailbox("bradford-audit")->messages.empty());
}

TEST_F(PolicyGatewayTest, OverrideTheRuleDoesNotAllowIsForbidden) {
  // An adult: the only rule (R1-safeguarding-adult-or-unknown-age) allows no override.
  PushRequest p = Push("wyp", "OCC-10", {"bradford-csc"}, "safeguarding");
  p.record.subject.birth_date = "1990-01-01";
  p.override_request = Override();
  auto pushed = h.Push("wyp", std::move(p));
  ASSERT_FALSE(pushed.ok());
  EXPECT_EQ(pushed.status().code(), ErrorCode::kForbidden);
  EXPECT_THAT(pushed.status().detail(),
              HasSubstr("rule R1-safeguarding-adult-or-unknown-age does not allow the "
                        "safeguarding override"));
  ASSERT_EQ(pushed.status().problems().size(), 1u);
  EXPECT_EQ(pushed.status().problems()[0].where, "/override");
  EXPECT_EQ(h.Count("records"), 0);
  EXPECT_EQ(h.Count("messages"), 0);
  const auto trail = Trail();
  const AuditEntry* e = FindAction(trail, "request_rejected");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->detail["status"], 403);
  EXPECT_EQ(FindAction(trail, "override_used"), nullptr);
}

TEST_F(PolicyGatewayTest, MalformedOverrideIsInvalid) {
  PushRequest p = Push("wyp", "OCC-11", {"bradford-csc"}, "safeguarding");
  p.override_request = json{{"basis", "DPA 2018 Sch 1 para 18"}, {"reason", ""}, {"who", "x"}};
  auto pushed = h.Push("wyp", std::move(p));
  ASSERT_FALSE(pushed.ok());
  EXPECT_EQ(pushed.status().code(), ErrorCode::kInvalidInput);
  std::set<std::string> where;
  for (const Problem& problem : pushed.status().problems()) where.insert(problem.where);
  EXPECT_EQ(where, (std::set<std::string>{"/override", "/override/reason",
                                          "/override/authorised_by"}));
  PushRequest q = Push("wyp", "OCC-12", {"bradford-csc"}, "safeguarding");
  q.override_request = json("because");
  EXPECT_EQ(h.Push("wyp", std::move(q)).status().code(), ErrorCode::kInvalidInput);
  EXPECT_EQ(h.Count("records"), 0);
}

TEST_F(PolicyGatewayTest, StatsAreSuppressedAndAggregateOnly) {
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(h.Push("wyp", Push("wyp", "S-" + std::to_string(i), {"bradford-csc"},
                                   "safeguarding"))
                    .ok());
  }
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(
        h.Push("wyp", Push("wyp", "H-" + std::to_string(i), {"bthft"}, "safeguarding")).ok());
  }
  auto stats = Stats("bradford-scrutiny");
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  const json j = stats->ToJson();
  ASSERT_TRUE(j["cells"].is_array());
  bool redact_cell_seen = false;
  for (const char* part : {"cells", "totals"}) {
    for (const json& c : j[part]) {
      if (!c["count"].is_null()) {
        const int64_t n = c["count"].get<int64_t>();
        EXPECT_TRUE(n == 0 || n > 4) << c.dump();  // never a small number
      }
      if (std::string(part) == "cells" && c["decision"] == "redact") {
        redact_cell_seen = true;
        EXPECT_TRUE(c["count"].is_null()) << c.dump();  // 2: suppressed
      }
    }
  }
  EXPECT_TRUE(redact_cell_seen);
  // Aggregates only: no record id, subject reference or name in the answer (the records
  // carry Schedule 12A marks, and are never rows).
  const std::string text = j.dump();
  for (const char* s : {"rec_", "9990000018", "Alex", "BRA-000123"}) {
    EXPECT_THAT(text, Not(HasSubstr(s)));
  }
  EXPECT_TRUE(Stats("bradford-audit").ok());
  EXPECT_EQ(Stats("wyp").status().code(), ErrorCode::kForbidden);
  EXPECT_EQ(Stats("bradford-audit", {"last week", ""}).status().code(),
            ErrorCode::kInvalidInput);
  auto empty = Stats("bradford-audit", {"2020-01-01", "2020-02-01"});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->ToJson()["cells"].empty());
  EXPECT_NE(FindAction(Trail(), "stats_queried"), nullptr);
}

TEST_F(PolicyGatewayTest, RetentionSweepDeletesBodiesAndTheChainStillVerifies) {
  // A CP-IS view for an emergency department is kept 90 days; the flag itself 730.
  auto view = h.Push("bradford-csc", CpFlagPush("CP-1", "unscheduled_care"));
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  ASSERT_EQ(view->deliveries[0].decision, "redact");
  auto full = h.Push("wyp", Push("wyp", "OCC-20", {"bradford-csc"}, "safeguarding"));
  ASSERT_TRUE(full.ok());

  auto early = Retention(kT0 + 89 * kDay);
  ASSERT_TRUE(early.ok()) << early.status().ToString();
  EXPECT_EQ(early->views_deleted, 0);
  EXPECT_EQ(early->records_deleted, 0);

  auto after_view = Retention(kT0 + 91 * kDay);
  ASSERT_TRUE(after_view.ok());
  EXPECT_EQ(after_view->views_deleted, 1);
  EXPECT_EQ(after_view->records_deleted, 0);
  auto seen = h.Get("bthft", view->record_id);
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ((*seen)["deleted"]["reason"], "retention");
  EXPECT_FALSE(seen->contains("subject"));
  auto source_copy = h.Get("bradford-csc", view->record_id);  // the source's copy stays
  ASSERT_TRUE(source_copy.ok());
  EXPECT_TRUE(source_copy->contains("subject"));

  auto after_all = Retention(kT0 + 731 * kDay);
  ASSERT_TRUE(after_all.ok());
  EXPECT_EQ(after_all->records_deleted, 2);
  EXPECT_FALSE(after_all->more);
  auto gone = h.Get("wyp", full->record_id);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ((*gone)["deleted"]["reason"], "retention");
  auto delivered = h.Get("bradford-csc", full->record_id);  // the permitted copy went with it
  ASSERT_TRUE(delivered.ok());
  EXPECT_TRUE(delivered->contains("deleted"));
  EXPECT_EQ(Retention(kT0 + 800 * kDay)->records_deleted, 0);  // each deletion happens once

  const auto trail = Trail();
  int deletions = 0;
  for (const AuditEntry& e : trail) {
    if (e.action != "retention_deleted") continue;
    ++deletions;
    EXPECT_EQ(e.actor, "safegate");
    EXPECT_FALSE(e.record_id.empty());
  }
  EXPECT_EQ(deletions, 3);
  auto verify = h.Verify();
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE(verify->ok) << verify->problem;
  EXPECT_EQ(h.Count("records", "body_deleted_at_ms IS NOT NULL"), 2);
}

TEST(PolicyGatewayPlaceholder, RetentionWithoutAPolicyDeletesNothing) {
  GatewayHarness h;
  ASSERT_TRUE(h.Open().ok());
  ASSERT_TRUE(h.Push("wyp", MakePush("wyp", "OCC-1", {"bradford-csc"})).ok());
  auto swept = Await<RetentionReport>(
      [&](Callback<RetentionReport> cb) { h.gw().SweepRetention(kT0 + 9999 * kDay, cb); });
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(swept->records_deleted, 0);
  auto reload = Await<PolicyReloadReport>(
      [&](Callback<PolicyReloadReport> cb) { h.gw().ReloadPolicy(cb); });
  ASSERT_TRUE(reload.ok());
  EXPECT_FALSE(reload->ok);
  EXPECT_THAT(reload->problems[0].what, HasSubstr("no policy file is configured"));
}

// A policy file of the test's own, to change and reload.
std::string ReloadablePolicyPath() {
  static TempDir dir;  // outlives every test of the suite
  static const std::string path = [] {
    std::string p = dir.path() + "/policy.toml";
    WriteFile(p, ReadFile(PolicyDir() + "/default.toml"));
    return p;
  }();
  return path;
}

class PolicyReloadTest : public PolicyGatewayTest {
 protected:
  PolicyReloadTest() : PolicyGatewayTest(LoadOrDie(ReloadablePolicyPath())) {}
  static std::string path() { return ReloadablePolicyPath(); }
};

TEST(PolicyGatewayOpen, TheConfiguredPolicyIsLoadedAndABadOneRefused) {
  GatewayHarness h;  // no policy given: Open takes the configuration's
  h.config()->policy = PolicyDir() + "/default.toml";
  ASSERT_TRUE(h.Open().ok());
  auto pushed = h.Push("wyp", MakePush("wyp", "OCC-1", {"bthft"}, "safeguarding"));
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  EXPECT_EQ(pushed->deliveries[0].decision, "redact");
  h.Close();

  TempDir dir;
  const std::string bad = dir.path() + "/bad.toml";
  WriteFile(bad, "[policy]\nname = \"x\"\ncolour = 1\n");
  h.config()->policy = bad;
  Status opened = h.Open();
  ASSERT_FALSE(opened.ok());
  ASSERT_FALSE(opened.problems().empty());
  EXPECT_THAT(opened.problems()[0].where, ::testing::StartsWith(bad + ":"));
}

TEST_F(PolicyReloadTest, GoodFileIsReloadedAndBadFileKeepsTheOldPolicy) {
  auto before = h.Push("wyp", Push("wyp", "R-1", {"bradford-csc"}, "safeguarding"));
  ASSERT_TRUE(before.ok());
  const std::string text = ReadFile(path());

  // A good change: a new version, audited.
  WriteFile(path(), text + "\n# reviewed by the information governance board\n");
  auto good = Reload();
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_TRUE(good->ok);
  EXPECT_NE(good->version, good->previous_version);
  EXPECT_EQ(good->version.size(), 64u);
  auto after = h.Push("wyp", Push("wyp", "R-2", {"bradford-csc"}, "safeguarding"));
  ASSERT_TRUE(after.ok());
  EXPECT_THAT(Join(after->deliveries[0].reasons), HasSubstr("policy version: " + good->version));

  // A bad file: refused with file:line, the policy in force stays.
  WriteFile(path(), text + "\n[[rule]]\nid = \"x\"\neffect = \"permit\"\nreason = \"r\"\n"
                           "colour = \"blue\"\n");
  auto bad = Reload();
  ASSERT_TRUE(bad.ok()) << bad.status().ToString();
  EXPECT_FALSE(bad->ok);
  EXPECT_EQ(bad->version, good->version);
  ASSERT_FALSE(bad->problems.empty());
  EXPECT_THAT(bad->problems[0].where, ::testing::StartsWith(path() + ":"));
  auto still = h.Push("wyp", Push("wyp", "R-3", {"bradford-csc"}, "safeguarding"));
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->deliveries[0].decision, "permit");
  EXPECT_THAT(Join(still->deliveries[0].reasons), HasSubstr("policy version: " + good->version));

  // A replay of a push decided under the earlier version gets that version's words, from
  // its stored text.
  auto replay = h.Push("wyp", Push("wyp", "R-1", {"bradford-csc"}, "safeguarding"));
  ASSERT_TRUE(replay.ok()) << replay.status().ToString();
  EXPECT_FALSE(replay->created);
  EXPECT_EQ(replay->ToJson(), before->ToJson());
  EXPECT_THAT(Join(replay->deliveries[0].reasons),
              HasSubstr("policy version: " + good->previous_version));

  const auto trail = Trail();
  const AuditEntry* reloaded = FindAction(trail, "policy_reloaded");
  ASSERT_NE(reloaded, nullptr);
  EXPECT_EQ(reloaded->actor, "safegate");
  EXPECT_EQ(reloaded->detail["version"], good->version);
  const AuditEntry* failed = FindAction(trail, "policy_reload_failed");
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->detail["version"], good->version);
  ASSERT_FALSE(failed->reasons.empty());
  EXPECT_THAT(failed->reasons[0], ::testing::ContainsRegex(":[0-9]+: "));
  WriteFile(path(), text);  // as it was, for any later test of the suite
}

}  // namespace
}  // namespace safegate
