// The decision engine, redaction, names, dates and reloading.
#include "policy/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "policy/policy_holder.h"
#include "policy/policy_test_util.h"

namespace safegate::policy {
namespace {

using testing::BaseInput;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::MustParse;

TEST(PolicyNames, EveryPurposeRoundTrips) {
  ASSERT_EQ(AllPurposes().size(), static_cast<size_t>(kPurposeCount));
  for (Purpose p : AllPurposes()) {
    auto back = ParsePurpose(PurposeName(p));
    ASSERT_TRUE(back.has_value()) << PurposeName(p);
    EXPECT_EQ(*back, p);
  }
  for (const char* required : {"safeguarding", "s47_enquiry", "unscheduled_care", "case_transfer",
                               "missing_child", "statistics", "subject_access"}) {
    EXPECT_TRUE(ParsePurpose(required).has_value()) << required;
  }
  EXPECT_FALSE(ParsePurpose("Safeguarding").has_value());
  EXPECT_FALSE(ParsePurpose("").has_value());
}

TEST(PolicyNames, EveryRoleAgeBandConsentAndEffectRoundTrips) {
  ASSERT_EQ(AllRoles().size(), static_cast<size_t>(kRoleCount));
  for (Role r : AllRoles()) EXPECT_EQ(ParseRole(RoleName(r)), r);
  for (const char* role : {"police", "health", "csc", "audit", "committee", "gateway"}) {
    EXPECT_TRUE(ParseRole(role).has_value()) << role;
  }
  EXPECT_FALSE(ParseRole("nurse").has_value());
  for (AgeBand b : {AgeBand::kChild, AgeBand::kAdult, AgeBand::kUnknown}) {
    EXPECT_EQ(ParseAgeBand(AgeBandName(b)), b);
  }
  for (ConsentState s : {ConsentState::kNone, ConsentState::kGiven, ConsentState::kRefused,
                         ConsentState::kWithdrawn}) {
    EXPECT_EQ(ParseConsentState(ConsentStateName(s)), s);
  }
  EXPECT_EQ(EffectName(Effect::kPermit), "permit");
  EXPECT_EQ(EffectName(Effect::kRedact), "redact");
  EXPECT_EQ(EffectName(Effect::kDeny), "deny");
}

TEST(PolicyNames, SafeguardingPurposesAreExactlyThree) {
  int n = 0;
  for (Purpose p : AllPurposes()) n += IsSafeguardingPurpose(p) ? 1 : 0;
  EXPECT_EQ(n, 3);
  EXPECT_TRUE(IsSafeguardingPurpose(Purpose::kSafeguarding));
  EXPECT_TRUE(IsSafeguardingPurpose(Purpose::kS47Enquiry));
  EXPECT_TRUE(IsSafeguardingPurpose(Purpose::kMissingChild));
}

std::chrono::system_clock::time_point At(const char* text) {
  auto t = ParseTimestamp(text);
  EXPECT_TRUE(t.has_value()) << text;
  return t.value_or(std::chrono::system_clock::time_point{});
}

TEST(AgeBand, EighteenthBirthdayIsTheFirstAdultDay) {
  EXPECT_EQ(AgeBandOf(std::string("2006-06-02"), At("2024-06-01T23:59:59Z")), AgeBand::kChild);
  EXPECT_EQ(AgeBandOf(std::string("2006-06-01"), At("2024-06-01T00:00:00Z")), AgeBand::kAdult);
  EXPECT_EQ(AgeBandOf(std::string("2006-05-31"), At("2024-06-01")), AgeBand::kAdult);
  EXPECT_EQ(AgeBandOf(std::string("2024-06-01"), At("2024-06-01")), AgeBand::kChild);
}

TEST(AgeBand, LeapDayBirthdayTurnsEighteenOnFirstMarch) {
  // 2026 is not a leap year.
  EXPECT_EQ(AgeBandOf(std::string("2008-02-29"), At("2026-02-28")), AgeBand::kChild);
  EXPECT_EQ(AgeBandOf(std::string("2008-02-29"), At("2026-03-01")), AgeBand::kAdult);
  // An 18th birthday never falls on 29 February (18 is not a multiple of 4).
  EXPECT_EQ(AgeBandOf(std::string("2012-02-29"), At("2030-02-28T23:59:59Z")), AgeBand::kChild);
  EXPECT_EQ(AgeBandOf(std::string("2012-02-29"), At("2030-03-01")), AgeBand::kAdult);
  EXPECT_EQ(AgeBandOf(std::string("2011-02-29"), At("2030-03-01")),
            AgeBand::kUnknown);  // no such day
}

TEST(AgeBand, UnusableBirthDatesAreUnknown) {
  auto now = At("2024-06-01");
  EXPECT_EQ(AgeBandOf(std::nullopt, now), AgeBand::kUnknown);
  EXPECT_EQ(AgeBandOf(std::string(""), now), AgeBand::kUnknown);
  EXPECT_EQ(AgeBandOf(std::string("2024-06-02"), now), AgeBand::kUnknown);  // future
  EXPECT_EQ(AgeBandOf(std::string("2010-02-30"), now), AgeBand::kUnknown);  // no such day
  EXPECT_EQ(AgeBandOf(std::string("2010-2-3"), now), AgeBand::kUnknown);
  EXPECT_EQ(AgeBandOf(std::string("2010-02-03T00:00:00Z"), now), AgeBand::kUnknown);
  EXPECT_EQ(AgeBandOf(std::string("abcd-ef-gh"), now), AgeBand::kUnknown);
}

TEST(Timestamp, ParsesUtcOffsetsFractionsAndDates) {
  using namespace std::chrono;
  auto base = ParseTimestamp("2024-06-01T12:00:00Z");
  ASSERT_TRUE(base);
  EXPECT_EQ(ParseTimestamp("2024-06-01T13:00:00+01:00"), base);
  EXPECT_EQ(ParseTimestamp("2024-06-01T11:30:00-00:30"), base);
  EXPECT_EQ(*ParseTimestamp("2024-06-01T12:00:00.5Z") - *base, milliseconds(500));
  EXPECT_EQ(*ParseTimestamp("2024-06-01T12:00:00.000001Z") - *base, microseconds(1));
  EXPECT_EQ(*base - *ParseTimestamp("2024-06-01"), hours(12));
  for (const char* bad :
       {"", "2024-06-01T12:00:00", "2024-06-01T12:00Z", "2024-06-01T24:00:00Z",
        "2024-06-01T12:00:00.Z", "2024-06-01T12:00:00+0100", "2024-13-01T12:00:00Z",
        "2024-06-01 12:00:00Z", "2024-06-01T12:00:00Zx"}) {
    EXPECT_FALSE(ParseTimestamp(bad).has_value()) << bad;
  }
}

constexpr char kTwoPermits[] = R"P(
[[rule]]
id = "general"
effect = "permit"
reason = "police to csc"
match = { source_role = "police", recipient_role = "csc" }
lawful_basis = "UK GDPR Art 6(1)(e) general"
allow_fields = ["/subject/nhs_number"]
retention_days = 5

[[rule]]
id = "specific"
effect = "permit"
reason = "police to csc for safeguarding of a child"
match = { purpose = "safeguarding", source_role = "police", recipient_role = "csc", age_band = "child" }
lawful_basis = "UK GDPR Art 6(1)(e) specific"
special_category_condition = "UK GDPR Art 9(2)(g); DPA 2018 Sch 1 para 18"
criminal_offence_condition = "DPA 2018 Sch 1 para 18"
)P";

TEST(Decide, DefaultDenyWhenNoRuleMatches) {
  auto p = MustParse(kTwoPermits);
  ASSERT_TRUE(p);
  DecisionInput in = BaseInput();
  in.recipient = {"bthft", Role::kHealth, "bradford"};
  Decision d = p->Decide(in);
  EXPECT_EQ(d.effect, Effect::kDeny);
  EXPECT_THAT(d.rules_fired, ElementsAre("builtin.default-deny"));
  ASSERT_EQ(d.reasons.size(), 1u);
  EXPECT_THAT(d.reasons[0],
              HasSubstr("no rule permits sharing a flag record from police to health"));
  EXPECT_EQ(d.retention_days, 0);
  EXPECT_TRUE(d.lawful_basis.empty());
  EXPECT_TRUE(d.governing_rule.empty());
  EXPECT_EQ(d.policy_version, p->version());
}

TEST(Decide, TheMostSpecificPermitGovernsAndEveryMatchFires) {
  auto p = MustParse(kTwoPermits);
  ASSERT_TRUE(p);
  Decision d = p->Decide(BaseInput());
  EXPECT_EQ(d.effect, Effect::kPermit);
  EXPECT_EQ(d.governing_rule, "specific");
  EXPECT_THAT(d.rules_fired, ElementsAre("general", "specific"));
  EXPECT_EQ(d.lawful_basis, "UK GDPR Art 6(1)(e) specific");
  EXPECT_THAT(d.allow_fields, IsEmpty());
  EXPECT_EQ(d.retention_days, 10);  // the policy's period for flags
  EXPECT_TRUE(d.notify_owner);

  // An adult is matched only by the general rule, whose allow-list makes it a redaction.
  DecisionInput adult = BaseInput();
  adult.birth_date = "1990-01-01";
  Decision g = p->Decide(adult);
  EXPECT_EQ(g.effect, Effect::kRedact);
  EXPECT_EQ(g.governing_rule, "general");
  EXPECT_THAT(g.allow_fields, ElementsAre("/subject/nhs_number"));
  EXPECT_EQ(g.retention_days, 5);
}

TEST(Decide, LawfulBasisAddsTheConditionsForTheMarksPresent) {
  auto p = MustParse(kTwoPermits);
  ASSERT_TRUE(p);
  DecisionInput in = BaseInput();
  in.classification.special_category = true;
  EXPECT_EQ(p->Decide(in).lawful_basis,
            "UK GDPR Art 6(1)(e) specific; UK GDPR Art 9(2)(g); DPA 2018 Sch 1 para 18");
  in.classification.criminal_offence = true;
  EXPECT_EQ(p->Decide(in).lawful_basis,
            "UK GDPR Art 6(1)(e) specific; UK GDPR Art 9(2)(g); DPA 2018 Sch 1 para 18; DPA 2018 "
            "Sch 1 para 18");
}

TEST(Decide, SpecialCategoryWithoutAnArt9ConditionIsDenied) {
  auto p = MustParse(kTwoPermits);
  ASSERT_TRUE(p);
  DecisionInput in = BaseInput();
  in.birth_date = "1990-01-01";  // governed by "general", which names no conditions
  in.classification.special_category = true;
  Decision d = p->Decide(in);
  EXPECT_EQ(d.effect, Effect::kDeny);
  EXPECT_THAT(d.rules_fired, ElementsAre("general", "builtin.R1-special-category-condition"));
  in.classification.special_category = false;
  in.classification.criminal_offence = true;
  d = p->Decide(in);
  EXPECT_EQ(d.effect, Effect::kDeny);
  EXPECT_THAT(d.rules_fired, ElementsAre("general", "builtin.R1-criminal-offence-condition"));
}

TEST(Decide, DenyOverridesPermitWhateverTheSpecificity) {
  auto p = MustParse(std::string(kTwoPermits) + R"P(
[[rule]]
id = "no-c"
effect = "deny"
reason = "handling C stays with police"
match = { handling = "C" }
)P");
  ASSERT_TRUE(p);
  DecisionInput in = BaseInput();
  in.classification.handling = "C";
  Decision d = p->Decide(in);
  EXPECT_EQ(d.effect, Effect::kDeny);
  EXPECT_THAT(d.rules_fired, ElementsAre("general", "specific", "no-c"));
  EXPECT_THAT(d.reasons, ElementsAre("no-c: handling C stays with police"));
  EXPECT_TRUE(d.governing_rule.empty());
  // An unknown handling code is treated as "C": restrictions apply.
  in.classification.handling = "X";
  EXPECT_EQ(p->Decide(in).effect, Effect::kDeny);
  in.classification.handling = "P";
  EXPECT_EQ(p->Decide(in).effect, Effect::kPermit);
}

TEST(Decide, AgenciesAreasAndSameArea) {
  auto p = MustParse(R"P(
[[rule]]
id = "wyp-only"
effect = "permit"
reason = "r"
match = { source_agency = "wyp", recipient_area = ["bradford", "leeds"] }
lawful_basis = "UK GDPR Art 6(1)(e)"

[[rule]]
id = "cross-area"
effect = "permit"
reason = "r"
match = { source_role = "csc", same_area = false }
lawful_basis = "UK GDPR Art 6(1)(e)"
)P");
  ASSERT_TRUE(p);
  DecisionInput in = BaseInput();
  EXPECT_EQ(p->Decide(in).governing_rule, "wyp-only");
  in.source.agency = "cambs-police";
  EXPECT_EQ(p->Decide(in).effect, Effect::kDeny);
  in.source.agency = "wyp";
  in.recipient.area = "cambridgeshire";
  EXPECT_EQ(p->Decide(in).effect, Effect::kDeny);

  DecisionInput csc = BaseInput();
  csc.source = {"bradford-csc", Role::kCsc, "bradford"};
  csc.recipient = {"cambs-csc", Role::kCsc, "cambridgeshire"};
  EXPECT_EQ(p->Decide(csc).governing_rule, "cross-area");
  csc.recipient = {"wyp", Role::kPolice, "bradford"};
  EXPECT_EQ(p->Decide(csc).effect, Effect::kDeny);
}

TEST(Decide, Schedule12aDimensionAndTheStatisticsGuard) {
  auto p = MustParse(R"P(
[[rule]]
id = "marked-para7"
effect = "permit"
reason = "r"
match = { schedule12a = [7], recipient_role = "csc" }
lawful_basis = "UK GDPR Art 6(1)(e) seven"

[[rule]]
id = "unmarked"
effect = "permit"
reason = "r"
match = { schedule12a = "none", recipient_role = "csc" }
lawful_basis = "UK GDPR Art 6(1)(e) none"

[[rule]]
id = "stats"
effect = "permit"
reason = "r"
match = { purpose = "statistics" }
lawful_basis = "UK GDPR Art 6(1)(e) stats"
)P");
  ASSERT_TRUE(p);
  DecisionInput in = BaseInput();
  EXPECT_EQ(p->Decide(in).governing_rule, "unmarked");
  in.classification.schedule12a = {1, 7};
  EXPECT_EQ(p->Decide(in).governing_rule, "marked-para7");
  in.classification.schedule12a = {1};
  EXPECT_EQ(p->Decide(in).effect, Effect::kDeny);

  DecisionInput stats = BaseInput();
  stats.purpose = Purpose::kStatistics;
  stats.recipient = {"gw", Role::kGateway, "bradford"};
  EXPECT_EQ(p->Decide(stats).effect, Effect::kPermit);
  stats.classification.schedule12a = {2};
  Decision d = p->Decide(stats);
  EXPECT_EQ(d.effect, Effect::kDeny);
  EXPECT_THAT(d.rules_fired, ElementsAre("stats", "builtin.R6-schedule12a-statistics"));
}

constexpr char kOverridePolicy[] = R"P(
[[rule]]
id = "child"
effect = "permit"
reason = "child protection"
match = { purpose = ["safeguarding", "missing_child"], age_band = "child" }
lawful_basis = "UK GDPR Art 6(1)(e)"
override_allowed = true

[[rule]]
id = "consent-based"
effect = "permit"
reason = "with consent"
match = { purpose = "scheduled_care" }
lawful_basis = "UK GDPR Art 6(1)(a)"
consent_required = true
)P";

TEST(Decide, ConsentAndTheSafeguardingOverride) {
  auto p = MustParse(kOverridePolicy);
  ASSERT_TRUE(p);
  DecisionInput in = BaseInput();
  for (ConsentState s : {ConsentState::kNone, ConsentState::kGiven}) {
    in.consent = s;
    EXPECT_EQ(p->Decide(in).effect, Effect::kPermit) << ConsentStateName(s);
  }
  for (ConsentState s : {ConsentState::kRefused, ConsentState::kWithdrawn}) {
    in.consent = s;
    in.safeguarding_override.reset();
    Decision d = p->Decide(in);
    EXPECT_EQ(d.effect, Effect::kDeny);
    EXPECT_THAT(d.rules_fired, ElementsAre("child", "builtin.R3-consent"));
    EXPECT_EQ(d.consent, s);
    in.safeguarding_override = Override{"DPA 2018 Sch 1 para 18", "would alert abuser", "DS 1"};
    d = p->Decide(in);
    EXPECT_EQ(d.effect, Effect::kPermit);
    EXPECT_TRUE(d.override_used);
    EXPECT_THAT(d.rules_fired, ElementsAre("child", "builtin.R2-safeguarding-override"));
    for (Override incomplete :
         {Override{"", "r", "a"}, Override{"b", "", "a"}, Override{"b", "r", ""}}) {
      in.safeguarding_override = incomplete;
      d = p->Decide(in);
      EXPECT_EQ(d.effect, Effect::kDeny);
      EXPECT_FALSE(d.override_used);
    }
  }

  DecisionInput care = BaseInput();
  care.purpose = Purpose::kScheduledCare;
  EXPECT_EQ(p->Decide(care).effect, Effect::kDeny);  // no consent recorded
  care.consent = ConsentState::kGiven;
  EXPECT_EQ(p->Decide(care).effect, Effect::kPermit);
  care.consent = ConsentState::kRefused;
  care.safeguarding_override = Override{"b", "r", "a"};
  Decision d = p->Decide(care);
  EXPECT_EQ(d.effect, Effect::kDeny);
  EXPECT_FALSE(d.override_allowed);
}

TEST(Decide, ReasonsNeverCarryTheOverridesFreeText) {
  auto p = MustParse(kOverridePolicy);
  ASSERT_TRUE(p);
  DecisionInput in = BaseInput();
  in.consent = ConsentState::kRefused;
  in.safeguarding_override = Override{"basis-TEXT", "reason-TEXT", "authoriser-TEXT"};
  std::string all = p->Decide(in).ToJson().dump();
  EXPECT_EQ(all.find("basis-TEXT"), std::string::npos);
  EXPECT_EQ(all.find("reason-TEXT"), std::string::npos);
  EXPECT_EQ(all.find("authoriser-TEXT"), std::string::npos);
}

TEST(Decide, AFirstRuleWinsATieOfIdenticalTerms) {
  auto p = MustParse(R"P(
[[rule]]
id = "a"
effect = "permit"
reason = "r"
match = { source_role = "police" }
lawful_basis = "UK GDPR Art 6(1)(e)"

[[rule]]
id = "b"
effect = "permit"
reason = "r"
match = { recipient_role = "csc" }
lawful_basis = "UK GDPR Art 6(1)(e)"
)P");
  ASSERT_TRUE(p);
  Decision d = p->Decide(BaseInput());
  EXPECT_EQ(d.governing_rule, "a");
  EXPECT_THAT(d.rules_fired, ElementsAre("a", "b"));
}

TEST(Decide, DecisionJsonHasEveryField) {
  auto p = MustParse(kTwoPermits);
  ASSERT_TRUE(p);
  nlohmann::json j = p->Decide(BaseInput()).ToJson();
  for (const char* key :
       {"effect", "lawful_basis", "consent_required", "override_allowed", "override_used",
        "notify_owner", "age_band", "consent", "governing_rule", "rules_fired", "reasons",
        "allow_fields", "retention_days", "policy_version"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["effect"], "permit");
}

TEST(Decide, IsSafeToCallFromSeveralThreads) {
  auto p = MustParse(kTwoPermits);
  ASSERT_TRUE(p);
  const Decision expected = p->Decide(BaseInput());
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        Decision d = p->Decide(BaseInput());
        if (d.rules_fired != expected.rules_fired || d.effect != expected.effect) ++mismatches[t];
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

TEST(PolicyVersion, IsTheSha256OfTheFileBytes) {
  auto p = ParsePolicy(R"P([policy]
name = "tiny"
[retention]
flag = 1
occurrence = 2
referral = 3
assessment = 4
missing_episode = 5
plan = 6
[[rule]]
id = "p"
effect = "permit"
reason = "r"
lawful_basis = "UK GDPR Art 6(1)(e)"
)P",
                       "tiny.toml");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->version(), "55fb792d068372e80c8c90baec13fe918f4e8a765a5e6b9c9416af201288e739");
  EXPECT_EQ((*p)->name(), "tiny");
  EXPECT_EQ((*p)->source_name(), "tiny.toml");
  EXPECT_EQ((*p)->RetentionDays(record::Kind::kPlan), 6);
  ASSERT_NE((*p)->FindRule("p"), nullptr);
  EXPECT_EQ((*p)->FindRule("p")->line, 10);
  ASSERT_NE((*p)->FindRule("builtin.default-deny"), nullptr);
  EXPECT_EQ((*p)->FindRule("nope"), nullptr);
}

nlohmann::json SampleRecord() {
  return nlohmann::json::parse(R"P({
    "kind": "flag",
    "subject": {"nhs_number": "9990000018", "given_name": "A", "family_name": "B",
                "postcode": "BD3 9AB", "local_ids": [{"system": "csc:bradford", "value": "X1"}]},
    "source": {"agency": "wyp", "system": "niche", "record_id": "R1", "version": 1,
               "recorded_at": "2024-01-01T00:00:00Z"},
    "classification": {"special_category": false, "criminal_offence": true, "schedule12a": [],
                       "handling": "P"},
    "body": {"type": "cse_risk", "level": "high", "contact": {"office_hours": "1", "out_of_hours": "2"},
             "a/b": 1, "note": "free text"}
  })P");
}

TEST(Redact, PermitDeliversTheRecordUnchangedAndDenyNothing) {
  Decision d;
  d.effect = Effect::kPermit;
  Redaction r = Redact(SampleRecord(), d);
  EXPECT_EQ(r.record, SampleRecord());
  EXPECT_THAT(r.withheld, IsEmpty());
  d.effect = Effect::kDeny;
  r = Redact(SampleRecord(), d);
  EXPECT_TRUE(r.record.is_null());
  EXPECT_THAT(r.withheld, IsEmpty());
}

TEST(Redact, KeepsTheAllowListAndTheEnvelopeAndNamesWhatIsWithheld) {
  Decision d;
  d.effect = Effect::kRedact;
  d.allow_fields = {"/subject/nhs_number", "/body/contact", "/body/a~1b", "/body/missing"};
  Redaction r = Redact(SampleRecord(), d);
  nlohmann::json want = nlohmann::json::parse(R"P({
    "kind": "flag",
    "subject": {"nhs_number": "9990000018"},
    "source": {"agency": "wyp", "system": "niche", "record_id": "R1", "version": 1,
               "recorded_at": "2024-01-01T00:00:00Z"},
    "classification": {"special_category": false, "criminal_offence": true, "schedule12a": [],
                       "handling": "P"},
    "body": {"contact": {"office_hours": "1", "out_of_hours": "2"}, "a/b": 1}
  })P");
  EXPECT_EQ(r.record, want) << r.record.dump(2);
  EXPECT_THAT(r.withheld,
              ElementsAre("/body/level", "/body/note", "/body/type", "/subject/family_name",
                          "/subject/given_name", "/subject/local_ids", "/subject/postcode"));
  // Values never appear in the withheld list.
  for (const std::string& w : r.withheld) EXPECT_EQ(w.find("BD3"), std::string::npos);
}

TEST(Redact, AnEmptyAllowListKeepsOnlyTheEnvelope) {
  Decision d;
  d.effect = Effect::kRedact;
  Redaction r = Redact(SampleRecord(), d);
  EXPECT_EQ(r.record.size(), 3u);
  EXPECT_TRUE(r.record.contains("kind"));
  EXPECT_TRUE(r.record.contains("source"));
  EXPECT_TRUE(r.record.contains("classification"));
  EXPECT_THAT(r.withheld, ElementsAre("/body", "/subject"));
}

TEST(Redact, ArraysTravelWholeOrNotAtAll) {
  Decision d;
  d.effect = Effect::kRedact;
  d.allow_fields = {"/subject/local_ids/0"};
  Redaction r = Redact(SampleRecord(), d);
  EXPECT_FALSE(r.record["subject"].contains("local_ids"));
  EXPECT_THAT(r.withheld, ::testing::Contains("/subject/local_ids"));
  d.allow_fields = {"/subject/local_ids"};
  r = Redact(SampleRecord(), d);
  EXPECT_EQ(r.record["subject"]["local_ids"], SampleRecord()["subject"]["local_ids"]);
}

TEST(PolicyHolder, ReloadSwapsAGoodFileAndKeepsTheOldOnABadOne) {
  testing::TempDir dir;
  const std::string rules = R"P(
[[rule]]
id = "one"
effect = "permit"
reason = "r"
lawful_basis = "UK GDPR Art 6(1)(e)"
)P";
  std::string path = dir.Write("policy.toml", std::string(testing::kHead) + rules);
  auto first = LoadPolicy(path);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  PolicyHolder holder(*first, path);
  std::shared_ptr<const Policy> snapshot = holder.Current();
  const std::string v1 = snapshot->version();

  dir.Write("policy.toml", std::string(testing::kHead) + rules + "\n# edited\n");
  auto second = holder.Reload();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_NE(holder.Current()->version(), v1);
  EXPECT_EQ(snapshot->version(), v1);  // a decision under way keeps its policy
  const std::string v2 = holder.Current()->version();

  dir.Write("policy.toml", std::string(testing::kHead) + rules + "bogus = 1\n");
  auto third = holder.Reload();
  ASSERT_FALSE(third.ok());
  ASSERT_FALSE(third.status().problems().empty());
  EXPECT_EQ(third.status().problems()[0].where, path + ":" + std::to_string(16));
  EXPECT_THAT(third.status().problems()[0].what, HasSubstr("unknown key 'bogus'"));
  EXPECT_EQ(holder.Current()->version(), v2);
}

TEST(DefaultPolicy, LoadsAndNamesItsRules) {
  auto p = LoadPolicy(testing::DefaultPolicyPath());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->version().size(), 64u);
  int own = 0;
  for (const RuleSummary& r : (*p)->rules()) own += r.line > 0 ? 1 : 0;
  EXPECT_GE(own, 12);
}

}  // namespace
}  // namespace safegate::policy
