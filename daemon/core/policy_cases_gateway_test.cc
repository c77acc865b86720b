// The table-driven R1-R9 cases of policy/tests/*.toml, driven through the Gateway: each case
// becomes a push from its source to its recipient (the consent it names recorded first, its
// override sent with the push), and the delivery must carry the decision the engine gives
// and the case file expects: the same effect, every rule fired, the same withheld fields, and
// the recipient sees exactly the redacted record.
//
// Where the store refuses a case before any decision (a recipient that never receives
// records: audit, committee, gateway), the refusal is checked (422 naming the recipient) and
// the case must expect a denial. An override the governing rule does not allow is refused
// with 403 before anything is stored.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <set>
#include <sstream>

#include "daemon/core/policy_delivery.h"
#include "daemon/core/test_support.h"
#include "daemon/core/time_format.h"
#include "policy/policy.h"
#include "policy/policy_tool.h"
#include "policy/test_support.h"
#include "record/record.h"

namespace safegate {
namespace {

namespace fs = std::filesystem;
using namespace safegate::testing;
using policy::testing::CaseRecord;
using policy::testing::Join;
using policy::testing::Receives;
using ::testing::HasSubstr;
using nlohmann::json;

std::string PolicyDir() {
  if (const char* dir = std::getenv("SAFEGATE_SOURCE_DIR"); dir != nullptr && *dir != '\0') {
    return std::string(dir) + "/policy";
  }
  return SAFEGATE_POLICY_DIR;
}

std::vector<std::string> CaseFiles() { return policy::testing::CaseFiles(PolicyDir()); }

class CasesThroughGatewayTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CasesThroughGatewayTest, EveryCaseIsDecidedAsTheEngineAndTheFileSay) {
  const std::string file = GetParam();
  const std::string policy_path = PolicyDir() + "/default.toml";
  auto engine = policy::LoadPolicy(policy_path);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto delivery_policy = MakePolicyDeliveryPolicy(policy_path);
  ASSERT_TRUE(delivery_policy.ok());
  GatewayHarness h(*delivery_policy);
  ASSERT_TRUE(h.Open().ok());
  const auto registry = TestRegistry();

  int n = 0, delivered = 0, refused_by_store = 0, refused_override = 0;
  for (policy::testing::LoadedCase& lc : policy::testing::LoadCases(file, PolicyDir())) {
    n = lc.n;
    SCOPED_TRACE(lc.where);
    const json& expect = lc.expect;
    policy::PolicyCase& c = lc.c;

    record::Record rec = CaseRecord(c, n);
    const json rec_json = record::ToJson(rec);
    const policy::Decision want = (*engine)->Decide(c.input);
    ASSERT_EQ(policy::EffectName(want.effect), expect.value("effect", ""))
        << "the engine and the case file disagree (policy_test says more)";

    const config::Agency* source = registry->Find(c.input.source.agency);
    const config::Agency* recipient = registry->Find(c.input.recipient.agency);
    if (!Receives(c.input.recipient.role)) {
      // The store never delivers to these roles: refused before any decision. The one
      // permit among them is a statistics row to the gateway itself, which counts
      // deliveries from its own store (GET /v1/stats) rather than receiving pushes.
      if (c.input.recipient.role == policy::Role::kGateway) {
        ASSERT_EQ(c.input.purpose, policy::Purpose::kStatistics);
      } else {
        ASSERT_EQ(want.effect, policy::Effect::kDeny);
      }
      ASSERT_NE(source, nullptr);
      PushRequest p;
      p.record = rec;
      p.purpose = std::string(policy::PurposeName(c.input.purpose));
      p.recipients = {c.input.recipient.agency};
      auto pushed = h.Push(source->id, std::move(p));
      ASSERT_FALSE(pushed.ok());
      EXPECT_EQ(pushed.status().code(), ErrorCode::kInvalidInput);
      ASSERT_FALSE(pushed.status().problems().empty());
      EXPECT_EQ(pushed.status().problems()[0].where, "/recipients/0");
      ++refused_by_store;
      continue;
    }
    ASSERT_NE(source, nullptr) << c.input.source.agency;
    ASSERT_NE(recipient, nullptr) << c.input.recipient.agency;
    ASSERT_EQ(core::PolicyRole(source->role), c.input.source.role);
    ASSERT_EQ(source->area, c.input.source.area);
    ASSERT_EQ(core::PolicyRole(recipient->role), c.input.recipient.role);
    ASSERT_EQ(recipient->area, c.input.recipient.area);

    const int64_t now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(c.input.now.time_since_epoch())
            .count();
    h.clock().Set(now_ms);
    const std::string purpose(policy::PurposeName(c.input.purpose));
    if (c.input.consent != policy::ConsentState::kNone) {
      json body = {{"subject", record::PrimaryRef(rec.subject)},
                   {"purpose", purpose},
                   {"status", policy::ConsentStateName(c.input.consent)},
                   {"recorded_by", "case runner"},
                   {"recorded_at", core::FormatTimeMs(now_ms - 60 * 1000)}};
      auto recorded = Await<ConsentRecord>([&](Callback<ConsentRecord> cb) {
        h.gw().RecordConsent(CallerFor("bradford-csc"), body, std::move(cb));
      });
      ASSERT_TRUE(recorded.ok()) << recorded.status().ToString();
    }

    PushRequest p;
    p.record = rec;
    p.purpose = purpose;
    p.recipients = {recipient->id};
    if (c.input.safeguarding_override) {
      const policy::Override& o = *c.input.safeguarding_override;
      p.override_request =
          json{{"basis", o.basis}, {"reason", o.reason}, {"authorised_by", o.authorised_by}};
    }
    auto pushed = h.Push(source->id, std::move(p));

    const auto& ov = c.input.safeguarding_override;
    if (ov && (ov->basis.empty() || ov->reason.empty() || ov->authorised_by.empty())) {
      // An incomplete override is a malformed request (422), which the engine denies.
      ASSERT_EQ(want.effect, policy::Effect::kDeny);
      ASSERT_FALSE(pushed.ok());
      EXPECT_EQ(pushed.status().code(), ErrorCode::kInvalidInput);
      ASSERT_FALSE(pushed.status().problems().empty());
      EXPECT_THAT(pushed.status().problems()[0].where, ::testing::StartsWith("/override/"));
      ++refused_override;
      continue;
    }
    if (ov && !want.governing_rule.empty() && !want.override_allowed) {
      // R2: the rule does not allow the override the push carries.
      ASSERT_EQ(want.effect, policy::Effect::kDeny);
      ASSERT_FALSE(pushed.ok());
      EXPECT_EQ(pushed.status().code(), ErrorCode::kForbidden);
      EXPECT_THAT(pushed.status().detail(),
                  HasSubstr("rule " + want.governing_rule + " does not allow"));
      ++refused_override;
      continue;
    }
    ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
    ASSERT_EQ(pushed->deliveries.size(), 1u);
    const Delivery& d = pushed->deliveries[0];
    EXPECT_EQ(d.decision, expect["effect"].get<std::string>());
    EXPECT_THAT(d.reasons, ::testing::Contains("rules fired: " + Join(want.rules_fired, ", ")));
    for (const std::string& reason : want.reasons) {
      EXPECT_THAT(d.reasons, ::testing::Contains(reason));
    }
    if (!want.lawful_basis.empty()) {
      EXPECT_THAT(d.reasons, ::testing::Contains("lawful basis: " + want.lawful_basis));
    }
    const policy::Redaction redaction = policy::Redact(rec_json, want);
    if (want.effect == policy::Effect::kDeny) {
      EXPECT_TRUE(d.message_id.empty());
      EXPECT_EQ(h.Get(recipient->id, pushed->record_id).status().code(), ErrorCode::kNotFound);
    } else {
      auto seen = h.Get(recipient->id, pushed->record_id);
      ASSERT_TRUE(seen.ok()) << seen.status().ToString();
      EXPECT_EQ(*seen, redaction.record);
    }

    AuditFilter f;
    f.action = want.effect == policy::Effect::kPermit   ? "delivery_permitted"
               : want.effect == policy::Effect::kRedact ? "delivery_redacted"
                                                        : "delivery_denied";
    bool found = false;
    for (const AuditEntry& e : AllEntries(h, f)) {
      if (e.record_id != pushed->record_id) continue;
      found = true;
      EXPECT_EQ(e.detail["rules_fired"], json(want.rules_fired));
      EXPECT_EQ(e.detail["policy_version"], (*engine)->version());
      EXPECT_EQ(e.detail["consent"], policy::ConsentStateName(c.input.consent));
      // The entry's reasons are the decision's codes, and its citations resolve (against the
      // stored policy text) to exactly the sentences and lawful basis the decision gave.
      EXPECT_EQ(e.reasons, want.reason_codes);
      EXPECT_FALSE(e.detail.contains("lawful_basis"));
      EXPECT_EQ(e.detail.contains("basis"), !want.lawful_basis.empty());
      if (!e.explained.is_object()) {
        ADD_FAILURE() << "the audit query did not explain entry " << e.seq;
        continue;
      }
      EXPECT_EQ(e.explained["policy_text"], "stored");
      EXPECT_EQ(e.explained["reasons"], json(want.reasons));
      if (want.lawful_basis.empty()) {
        EXPECT_TRUE(e.explained["lawful_basis"].is_null());
      } else {
        EXPECT_EQ(e.explained["lawful_basis"], want.lawful_basis);
      }
      if (want.effect == policy::Effect::kRedact) {
        EXPECT_EQ(e.detail["withheld"], json(redaction.withheld));
      }
    }
    EXPECT_TRUE(found) << "no " << f.action << " entry for the push";
    ++delivered;
  }
  EXPECT_EQ(delivered + refused_by_store + refused_override, n);
  EXPECT_GT(delivered, 0) << "no case of " << file << " reached a decision through the gateway";
  std::cout << file << ": " << delivered << " decided through the gateway, " << refused_by_store
            << " refused by the store (recipient role), " << refused_override
            << " refused (override incomplete or not allowed)\n";
}

INSTANTIATE_TEST_SUITE_P(PolicyCases, CasesThroughGatewayTest, ::testing::ValuesIn(CaseFiles()),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           std::string name = fs::path(param.param).stem().string();
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

TEST(CasesThroughGateway, EveryDomainRuleHasACaseFile) {
  std::set<std::string> groups;
  for (const std::string& f : CaseFiles()) {
    groups.insert(fs::path(f).stem().string().substr(0, 2));
  }
  for (int r = 1; r <= 9; ++r) EXPECT_TRUE(groups.count("r" + std::to_string(r))) << r;
}

}  // namespace
}  // namespace safegate
