// The table-driven R1-R9 cases of policy/tests/*.toml, over HTTPS against a real gateway
// running the shipped policy (policy/default.toml, as `safegatectl sandbox up` configures it):
// each case becomes the consent it names (POST /v1/consents) and a push from its source's
// certificate (POST /v1/records, with its override). The answer must carry the decision the
// case file expects with every rule that fired and its reasons; the recipient must read
// exactly the redacted record (or nothing, on a denial); the audit officer must find the
// delivery's entry with its decision and reasons (GET /v1/audit).
//
// The gateway runs on the real clock, so each case is moved to today with its subject's age
// kept to the day (policy::testing::MoveCaseTo), and the engine must still give the case's
// expected effect for the moved case. The cross-area cases need the Cambridgeshire agencies,
// which this test adds to the Bradford gateway's registry.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <ctime>
#include <fstream>
#include <iostream>
#include <string>

#include "policy/policy.h"
#include "policy/test_support.h"
#include "record/record.h"
#include "tests/support/sandbox.h"
#include "tests/support/test_data.h"

namespace safegate::testing {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;
namespace pt = policy::testing;

std::string SourceDir() {
  if (const char* dir = std::getenv("SAFEGATE_SOURCE_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  return SAFEGATE_SOURCE_DIR_DEFAULT;
}

std::string UtcText(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

class PolicyCasesHttpTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto sb = Sandbox::Up({"bradford"});
    ASSERT_TRUE(sb.ok()) << sb.status().ToString();
    sandbox_ = std::move(*sb);
    // The Cambridgeshire agencies of the cross-area cases, known to this gateway as agencies
    // of their own area (their certificates are among the sandbox's).
    {
      std::ofstream registry(sandbox_->dir() + "/bradford/registry.toml", std::ios::app);
      for (const auto& [id, role] : std::vector<std::pair<std::string, std::string>>{
               {"cambs-csc", "csc"}, {"cambs-police", "police"}, {"cuh", "health"}}) {
        registry << "\n[[agency]]\nid = \"" << id << "\"\nname = \"" << id << "\"\nrole = \""
                 << role << "\"\narea = \"cambridgeshire\"\ncertificates = [\""
                 << sandbox_->CertsDir() << "/" << id << ".pem\"]\n";
      }
    }
    ASSERT_TRUE(sandbox_->Stop("bradford", SIGTERM).ok());
    Status restarted = sandbox_->Restart("bradford");
    ASSERT_TRUE(restarted.ok()) << restarted.ToString();
  }

  HttpsClient As(const std::string& agency) {
    return sandbox_->ClientWithCertificate("bradford", agency);
  }

  std::unique_ptr<Sandbox> sandbox_;
};

TEST_P(PolicyCasesHttpTest, EveryCaseIsDecidedOverHttpAsTheFileSays) {
  const std::string file = GetParam();
  auto engine = policy::LoadPolicy(SourceDir() + "/policy/default.toml");
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  HttpsClient auditor = As("bradford-audit");

  int decided = 0, refused = 0, total = 0;
  for (pt::LoadedCase& lc : pt::LoadCases(file, SourceDir() + "/policy")) {
    ++total;
    SCOPED_TRACE(lc.where);
    policy::PolicyCase& c = lc.c;
    const auto now = std::chrono::system_clock::now();
    pt::MoveCaseTo(c, now);
    const policy::Decision want = (*engine)->Decide(c.input);
    ASSERT_EQ(policy::EffectName(want.effect), lc.expect.value("effect", ""))
        << "moved to today (birth date " << c.input.birth_date.value_or("none")
        << "), the case no longer means what its file says";

    // A subject of its own per file and case: the sandbox is new for each file.
    record::Record rec = pt::CaseRecord(c, lc.n);
    rec.source.recorded_at = UtcText(now - std::chrono::hours(1));
    // As the gateway reads it off the wire: checked, and its absent nullable fields null.
    auto checked = record::ParseRecord(record::ToJson(rec));
    ASSERT_TRUE(checked.ok()) << checked.status().ToString();
    rec = std::move(*checked);
    const json rec_json = record::ToJson(rec);
    const std::string purpose(policy::PurposeName(c.input.purpose));
    HttpsClient source = As(c.input.source.agency);

    if (c.input.consent != policy::ConsentState::kNone) {
      json consent = {{"subject", record::PrimaryRef(rec.subject)},
                      {"purpose", purpose},
                      {"status", policy::ConsentStateName(c.input.consent)},
                      {"recorded_by", "case runner"},
                      {"recorded_at", UtcText(now - std::chrono::minutes(1))}};
      auto recorded = As("bradford-csc").PostJson("/v1/consents", consent);
      ASSERT_TRUE(recorded.ok()) << recorded.status().ToString();
      ASSERT_EQ(recorded->status, 201) << recorded->Describe();
    }

    json push = PushBody(rec_json, {c.input.recipient.agency}, purpose);
    const auto& ov = c.input.safeguarding_override;
    if (ov) {
      push["override"] = {
          {"basis", ov->basis}, {"reason", ov->reason}, {"authorised_by", ov->authorised_by}};
    }
    auto pushed = source.PostJson("/v1/records", push);
    ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
    const json answer = pushed->Json();

    if (!pt::Receives(c.input.recipient.role)) {
      // Audit, committee and gateway agencies never receive pushes: refused before any
      // decision, naming the recipient; the engine denies them too (or, for the gateway's
      // own statistics, counts from the store instead of receiving).
      if (c.input.recipient.role != policy::Role::kGateway) {
        ASSERT_EQ(want.effect, policy::Effect::kDeny);
      }
      EXPECT_EQ(pushed->status, 422) << pushed->Describe();
      ASSERT_TRUE(answer.contains("problems")) << pushed->Describe();
      EXPECT_EQ(answer["problems"][0].value("where", ""), "/recipients/0");
      ++refused;
      continue;
    }
    if (ov && (ov->basis.empty() || ov->reason.empty() || ov->authorised_by.empty())) {
      ASSERT_EQ(want.effect, policy::Effect::kDeny);
      EXPECT_EQ(pushed->status, 422) << pushed->Describe();
      ASSERT_TRUE(answer.contains("problems")) << pushed->Describe();
      EXPECT_THAT(answer["problems"][0].value("where", ""), ::testing::StartsWith("/override/"));
      ++refused;
      continue;
    }
    if (ov && !want.governing_rule.empty() && !want.override_allowed) {
      ASSERT_EQ(want.effect, policy::Effect::kDeny);
      EXPECT_EQ(pushed->status, 403) << pushed->Describe();
      EXPECT_EQ(pushed->ErrorCode(), "forbidden");
      EXPECT_THAT(answer.value("detail", ""),
                  HasSubstr("rule " + want.governing_rule + " does not allow"));
      ++refused;
      continue;
    }
    ASSERT_EQ(pushed->status, 201) << pushed->Describe();
    ASSERT_EQ(answer["deliveries"].size(), 1u) << pushed->Describe();
    const json& d = answer["deliveries"][0];
    EXPECT_EQ(d.value("recipient", ""), c.input.recipient.agency);
    EXPECT_EQ(d.value("decision", ""), lc.expect.value("effect", ""));
    const auto reasons = d.value("reasons", std::vector<std::string>{});
    EXPECT_THAT(reasons, ::testing::Contains("rules fired: " + pt::Join(want.rules_fired, ", ")));
    for (const std::string& reason : want.reasons) {
      EXPECT_THAT(reasons, ::testing::Contains(reason));
    }
    if (!want.lawful_basis.empty()) {
      EXPECT_THAT(reasons, ::testing::Contains("lawful basis: " + want.lawful_basis));
    }

    // What the recipient reads: nothing on a denial, else exactly the redacted record.
    const std::string record_id = answer.value("record_id", "");
    auto seen = As(c.input.recipient.agency).Get("/v1/records/" + record_id);
    ASSERT_TRUE(seen.ok()) << seen.status().ToString();
    if (want.effect == policy::Effect::kDeny) {
      EXPECT_EQ(seen->status, 404) << seen->Describe();
      EXPECT_TRUE(!d.contains("message_id") || d["message_id"].is_null() ||
                  d["message_id"] == "")
          << pushed->Describe();
    } else {
      ASSERT_EQ(seen->status, 200) << seen->Describe();
      EXPECT_EQ(seen->Json(), policy::Redact(rec_json, want).record);
    }

    // What the audit officer finds: the delivery's entry, its decision and its reasons.
    const std::string action = want.effect == policy::Effect::kPermit   ? "delivery_permitted"
                               : want.effect == policy::Effect::kRedact ? "delivery_redacted"
                                                                        : "delivery_denied";
    auto audit = auditor.Get("/v1/audit?purpose=" + std::string(kAuditPurpose) +
                             "&action=" + action + "&limit=1000");
    ASSERT_TRUE(audit.ok()) << audit.status().ToString();
    ASSERT_EQ(audit->status, 200) << audit->Describe();
    bool found = false;
    const json page = audit->Json();  // held: the loop must not outlive it
    ASSERT_TRUE(page.contains("entries")) << audit->Describe();
    for (const json& e : page["entries"]) {
      if (e.value("record_id", "") != record_id) continue;
      found = true;
      EXPECT_EQ(e.value("decision", ""), lc.expect.value("effect", ""));
      const json detail = e.value("detail", json::object());
      EXPECT_EQ(detail.value("rules_fired", json()), json(want.rules_fired));
      EXPECT_EQ(detail.value("consent", ""), policy::ConsentStateName(c.input.consent));
      EXPECT_FALSE(e.value("reasons", json::array()).empty());
      // The entry records reason codes; the answer explains them in the policy's words.
      EXPECT_EQ(e.value("reasons", json::array()), json(want.reason_codes));
      const json explained = e.value("explained", json::object());
      EXPECT_EQ(explained.value("reasons", json::array()), json(want.reasons)) << e.dump();
      if (!want.lawful_basis.empty()) {
        EXPECT_EQ(explained.value("lawful_basis", json()), json(want.lawful_basis));
      }
    }
    EXPECT_TRUE(found) << "no " << action << " entry for record " << record_id;
    ++decided;
  }
  EXPECT_EQ(decided + refused, total);
  EXPECT_GT(decided, 0) << "no case of " << file << " reached a decision over HTTP";
  std::cout << "[          ] " << file << ": " << decided << " decided over HTTP, " << refused
            << " refused before a decision\n";
}

INSTANTIATE_TEST_SUITE_P(PolicyCases, PolicyCasesHttpTest,
                         ::testing::ValuesIn(pt::CaseFiles(SourceDir() + "/policy")),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           std::string name =
                               std::filesystem::path(param.param).stem().string();
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace safegate::testing
