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

#include <toml++/toml.h>

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
#include "record/record.h"

namespace safegate {
namespace {

namespace fs = std::filesystem;
using namespace safegate::testing;
using ::testing::HasSubstr;
using nlohmann::json;

std::string PolicyDir() {
  if (const char* dir = std::getenv("SAFEGATE_SOURCE_DIR"); dir != nullptr && *dir != '\0') {
    return std::string(dir) + "/policy";
  }
  return SAFEGATE_POLICY_DIR;
}

std::vector<std::string> CaseFiles() {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(PolicyDir() + "/tests", ec)) {
    if (e.path().extension() == ".toml") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

json TomlToJson(const toml::node& node) {
  if (const toml::table* t = node.as_table()) {
    json j = json::object();
    for (const auto& [k, v] : *t) j[std::string(k.str())] = TomlToJson(v);
    return j;
  }
  if (const toml::array* a = node.as_array()) {
    json j = json::array();
    for (const toml::node& v : *a) j.push_back(TomlToJson(v));
    return j;
  }
  if (node.is_string()) return *node.value<std::string>();
  if (node.is_integer()) return *node.value<int64_t>();
  if (node.is_floating_point()) return *node.value<double>();
  if (node.is_boolean()) return *node.value<bool>();
  std::ostringstream text;
  if (const auto* d = node.as_date()) text << d->get();
  return text.str();
}

// A valid NHS number in the 999 range reserved for testing, different for each `n`.
std::string TestNhsNumber(int n) {
  for (int candidate = n * 7;; ++candidate) {
    std::string digits = "999" + std::string(6 - std::to_string(candidate % 1000000).size(), '0') +
                         std::to_string(candidate % 1000000);
    int sum = 0;
    for (int i = 0; i < 9; ++i) sum += (digits[i] - '0') * (10 - i);
    const int check = 11 - sum % 11;
    if (check == 10) continue;
    digits += static_cast<char>('0' + (check == 11 ? 0 : check));
    if (record::IsValidNhsNumber(digits)) return digits;
  }
}

std::string Join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

bool Receives(policy::Role role) {
  return role == policy::Role::kPolice || role == policy::Role::kHealth ||
         role == policy::Role::kCsc;
}

// The record the case describes, as a push from its source: the case's record (or one built
// from its kind, classification and birth date), with its subject references made unique to
// the case so that consent recorded for one case does not reach another.
record::Record CaseRecord(const policy::PolicyCase& c, int n) {
  record::Record r;
  if (c.record) {
    auto parsed = record::ParseRecord(*c.record);
    if (!parsed.ok()) throw std::runtime_error("case record: " + parsed.status().ToString());
    r = std::move(*parsed);
  } else {
    r.kind = c.input.kind;
    r.classification = c.input.classification;
    r.subject.birth_date = c.input.birth_date;
    r.subject.local_ids = {{"csc:bradford", "CASE"}};
    r.body = {{"type", "concern"}, {"status", "active"}};
  }
  if (r.subject.nhs_number || r.subject.local_ids.empty()) {
    r.subject.nhs_number = TestNhsNumber(n);
  }
  for (record::LocalId& id : r.subject.local_ids) id.value += "-" + std::to_string(n);
  // What the case gives explicitly wins over its record, as for the engine.
  r.kind = c.input.kind;
  r.classification = c.input.classification;
  r.subject.birth_date = c.input.birth_date;
  r.source.agency = c.input.source.agency;
  r.source.record_id = "CASE-" + std::to_string(n);
  r.source.version = 1;
  if (r.source.recorded_at.empty()) r.source.recorded_at = "2024-01-01T00:00:00Z";
  if (r.source.system.empty()) r.source.system = "test";
  return r;
}

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

  toml::table root = toml::parse_file(file);
  ASSERT_EQ(root["policy"].value_or(std::string()), "../default.toml")
      << file << " runs against another policy; this test drives the shipped one";
  json defaults = root.get("defaults") ? TomlToJson(*root.get("defaults")) : json::object();
  const toml::array* cases = root["case"].as_array();
  ASSERT_NE(cases, nullptr);

  int n = 0, delivered = 0, refused_by_store = 0, refused_override = 0;
  for (const toml::node& node : *cases) {
    ++n;
    const toml::table& t = *node.as_table();
    const std::string name = t["name"].value_or(std::string());
    const std::string where = file + ":" + std::to_string(node.source().begin.line) + " " + name;
    SCOPED_TRACE(where);
    json in = defaults;
    const json case_input = TomlToJson(*t.get("input"));
    for (const auto& [k, v] : case_input.items()) in[k] = v;
    const json expect = TomlToJson(*t.get("expect"));
    auto parsed = policy::ParseCaseInput(in, where, PolicyDir() + "/tests", std::nullopt);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    policy::PolicyCase c = std::move(*parsed);

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
