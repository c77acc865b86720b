// A policy with any fault is refused as a whole, with "file:line" and a reason a person can
// act on. One test per kind of fault.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "policy/policy.h"
#include "policy/policy_test_util.h"

namespace safegate::policy {
namespace {

using ::testing::HasSubstr;

// The problems of a policy expected to be refused, as "where: what" lines.
std::vector<std::string> Refuse(const std::string& rules,
                                const std::string& head = testing::kHead) {
  auto p = ParsePolicy(head + rules, "p.toml");
  EXPECT_FALSE(p.ok()) << "the policy was accepted";
  std::vector<std::string> out;
  if (p.ok()) return out;
  EXPECT_EQ(p.status().code(), ErrorCode::kInvalidInput);
  for (const Problem& pr : p.status().problems()) out.push_back(pr.where + ": " + pr.what);
  return out;
}

std::string One(const std::vector<std::string>& problems) {
  EXPECT_EQ(problems.size(), 1u) << ::testing::PrintToString(problems);
  return problems.empty() ? std::string() : problems[0];
}

// kHead is 9 lines, so the first line of `rules` (after its leading newline) is line 11.
constexpr char kPermitHead[] = R"P(
[[rule]]
id = "r"
effect = "permit"
reason = "because"
lawful_basis = "UK GDPR Art 6(1)(e)"
)P";

TEST(PolicyValidation, UnknownKeyInARule) {
  std::string p = One(Refuse(std::string(kPermitHead) + "lawfull_basis = \"x\"\n"));
  EXPECT_THAT(p, HasSubstr("p.toml:16: unknown key 'lawfull_basis' in rule 'r'"));
}

TEST(PolicyValidation, UnknownKeyInAMatch) {
  std::string p = One(Refuse(std::string(kPermitHead) + "match = { recipient = \"csc\" }\n"));
  EXPECT_THAT(p, HasSubstr("p.toml:16: unknown key 'recipient' in rule 'r' match"));
  EXPECT_THAT(p, HasSubstr("recipient_role"));  // the message lists the known keys
}

TEST(PolicyValidation, UnknownKeyAtTopLevelAndInPolicyTable) {
  // Top-level keys come before the first table header.
  auto problems = Refuse(kPermitHead, "version = 2\n" + std::string(testing::kHead));
  ASSERT_EQ(problems.size(), 1u) << ::testing::PrintToString(problems);
  EXPECT_THAT(problems[0], HasSubstr("p.toml:1: unknown key 'version' in the policy file"));
  const std::string head = testing::kHead;
  problems = Refuse(kPermitHead, "[policy]\nname = \"x\"\nowner = \"y\"\n" +
                                     head.substr(head.find("[retention]")));
  ASSERT_EQ(problems.size(), 1u) << ::testing::PrintToString(problems);
  EXPECT_THAT(problems[0], HasSubstr("p.toml:3: unknown key 'owner' in [policy]"));
}

TEST(PolicyValidation, UnknownPurpose) {
  std::string p = One(Refuse(std::string(kPermitHead) +
                             "match = { purpose = [\"safeguarding\", \"marketing\"] }\n"));
  EXPECT_THAT(p, HasSubstr("p.toml:16: unknown purpose 'marketing'"));
  EXPECT_THAT(p, HasSubstr("s47_enquiry"));
}

TEST(PolicyValidation, UnknownRole) {
  std::string p =
      One(Refuse(std::string(kPermitHead) + "match = { recipient_role = \"nurse\" }\n"));
  EXPECT_THAT(p, HasSubstr("p.toml:16: unknown recipient_role 'nurse'"));
  EXPECT_THAT(p, HasSubstr("police, health, csc, audit, committee, gateway"));
  p = One(Refuse(std::string(kPermitHead) + "match = { source_role = \"school\" }\n"));
  EXPECT_THAT(p, HasSubstr("unknown source_role 'school'"));
}

TEST(PolicyValidation, UnknownKindAgeBandAndHandling) {
  EXPECT_THAT(One(Refuse(std::string(kPermitHead) + "match = { kind = \"note\" }\n")),
              HasSubstr("unknown kind 'note'"));
  EXPECT_THAT(One(Refuse(std::string(kPermitHead) + "match = { age_band = \"teen\" }\n")),
              HasSubstr("unknown age_band 'teen'"));
  EXPECT_THAT(One(Refuse(std::string(kPermitHead) + "match = { handling = \"X\" }\n")),
              HasSubstr("unknown handling 'X'"));
}

TEST(PolicyValidation, UnknownAgencyOrAreaWhenAgenciesAreDeclared) {
  const std::string agencies = "[agencies]\nwyp = { role = \"police\", area = \"bradford\" }\n";
  auto problems = Refuse(agencies + kPermitHead + "match = { source_agency = \"wyq\" }\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], HasSubstr("unknown agency 'wyq'"));
  problems = Refuse(agencies + kPermitHead + "match = { recipient_area = \"bradfrod\" }\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], HasSubstr("unknown area 'bradfrod'"));
  EXPECT_THAT(problems[0], HasSubstr("bradford"));
}

TEST(PolicyValidation, RuleThatCanNeverMatch) {
  // An empty list matches nothing.
  EXPECT_THAT(One(Refuse(std::string(kPermitHead) + "match = { purpose = [] }\n")),
              HasSubstr("could never match"));
  // An agency with a role the rule excludes.
  const std::string agencies = "[agencies]\nwyp = { role = \"police\", area = \"bradford\" }\n";
  EXPECT_THAT(One(Refuse(agencies + kPermitHead +
                         "match = { source_agency = \"wyp\", source_role = \"health\" }\n")),
              HasSubstr("'wyp' is a police agency"));
  // An agency in an area the rule excludes.
  EXPECT_THAT(
      One(Refuse("[agencies]\nwyp = { role = \"police\", area = \"bradford\" }\n"
                 "cuh = { role = \"health\", area = \"cambridgeshire\" }\n" +
                 std::string(kPermitHead) +
                 "match = { source_agency = \"wyp\", source_area = \"cambridgeshire\" }\n")),
      HasSubstr("is in area 'bradford'"));
  // Same area demanded of two different areas.
  EXPECT_THAT(
      One(Refuse(std::string(kPermitHead) +
                 "match = { source_area = \"a\", recipient_area = \"b\", same_area = true }\n")),
      HasSubstr("no area in common"));
  EXPECT_THAT(
      One(Refuse(std::string(kPermitHead) +
                 "match = { source_area = \"a\", recipient_area = \"a\", same_area = false }\n")),
      HasSubstr("could never match"));
  EXPECT_THAT(One(Refuse(std::string(kPermitHead) + "match = { schedule12a = [] }\n")),
              HasSubstr("could never match"));
}

TEST(PolicyValidation, PermitTheStatutoryGuardsWouldAlwaysDeny) {
  EXPECT_THAT(One(Refuse(std::string(kPermitHead) +
                         "match = { purpose = \"statistics\", schedule12a = \"any\" }\n")),
              HasSubstr("could never permit anything"));
  EXPECT_THAT(One(Refuse(std::string(kPermitHead) + "match = { special_category = true }\n")),
              HasSubstr("names no special_category_condition"));
  EXPECT_THAT(One(Refuse(std::string(kPermitHead) + "match = { criminal_offence = true }\n")),
              HasSubstr("names no criminal_offence_condition"));
}

TEST(PolicyValidation, PermitAlwaysOverriddenByADeny) {
  std::string p = One(Refuse(std::string(kPermitHead) +
                             R"P(match = { recipient_role = "audit", purpose = "safeguarding" }

[[rule]]
id = "no-audit"
effect = "deny"
reason = "audit sees no records"
match = { recipient_role = ["audit", "committee"] }
)P"));
  EXPECT_THAT(p, HasSubstr("p.toml:11: rule 'r' can never take effect"));
  EXPECT_THAT(p, HasSubstr("deny rule 'no-audit' (line 18)"));
}

constexpr char kConflicting[] = R"P(
[[rule]]
id = "police-to-csc"
effect = "permit"
reason = "a"
match = { purpose = "safeguarding", source_role = "police" }
lawful_basis = "UK GDPR Art 6(1)(e)"

[[rule]]
id = "to-csc"
effect = "permit"
reason = "b"
match = { purpose = ["safeguarding", "s47_enquiry"], recipient_role = "csc" }
lawful_basis = "UK GDPR Art 6(1)(e)"
allow_fields = ["/subject/nhs_number"]
)P";

TEST(PolicyValidation, ConflictingRulesAtTheSameSpecificity) {
  std::string p = One(Refuse(kConflicting));
  EXPECT_THAT(p,
              HasSubstr("p.toml:18: rules 'police-to-csc' (line 11) and 'to-csc' are in conflict"));
  EXPECT_THAT(p, HasSubstr("purpose=safeguarding"));
  EXPECT_THAT(p, HasSubstr("recipient_role=csc"));
  EXPECT_THAT(p, HasSubstr("same specificity (2 conditions)"));
  EXPECT_THAT(p, HasSubstr("differ in allowed fields"));
}

TEST(PolicyValidation, NoConflictAtDifferentSpecificityOrWithoutOverlapOrWithEqualTerms) {
  // One more condition makes the second rule more specific: it governs where both match.
  std::string more_specific = kConflicting;
  more_specific.replace(more_specific.find("recipient_role = \"csc\" }"),
                        std::string("recipient_role = \"csc\" }").size(),
                        "recipient_role = \"csc\", kind = \"flag\" }");
  EXPECT_TRUE(ParsePolicy(testing::kHead + more_specific, "p.toml").ok());
  // Disjoint purposes never overlap.
  std::string disjoint = kConflicting;
  disjoint.replace(disjoint.find("[\"safeguarding\", \"s47_enquiry\"]"),
                   std::string("[\"safeguarding\", \"s47_enquiry\"]").size(), "\"s47_enquiry\"");
  EXPECT_TRUE(ParsePolicy(testing::kHead + disjoint, "p.toml").ok());
  // Equal terms: whichever governs, the answer is the same.
  std::string equal = kConflicting;
  equal.replace(equal.find("allow_fields = [\"/subject/nhs_number\"]\n"),
                std::string("allow_fields = [\"/subject/nhs_number\"]\n").size(), "");
  EXPECT_TRUE(ParsePolicy(testing::kHead + equal, "p.toml").ok());
}

TEST(PolicyValidation, TomlSyntaxErrorNamesTheLine) {
  std::string p = One(Refuse(std::string(kPermitHead) + "match = { purpose = \"x\" \n"));
  EXPECT_THAT(p, HasSubstr("p.toml:16: not valid TOML"));
}

TEST(PolicyValidation, RuleIdsAreRequiredUniqueAndNotBuiltin) {
  EXPECT_THAT(One(Refuse(std::string(kPermitHead) + kPermitHead)),
              HasSubstr("p.toml:18: duplicate rule id 'r' (first defined at line 11)"));
  std::string builtin = kPermitHead;
  builtin.replace(builtin.find("id = \"r\""), 8, "id = \"builtin.x\"");
  EXPECT_THAT(One(Refuse(builtin)), HasSubstr("reserved"));
  std::string no_id = kPermitHead;
  no_id.replace(no_id.find("id = \"r\"\n"), 9, "");
  EXPECT_THAT(One(Refuse(no_id)), HasSubstr("needs an id"));
}

TEST(PolicyValidation, PermitNeedsAnArt6BasisAndConditionsMustNameTheirArticle) {
  EXPECT_THAT(One(Refuse("\n[[rule]]\nid = \"r\"\neffect = \"permit\"\nreason = \"x\"\n")),
              HasSubstr("needs lawful_basis"));
  EXPECT_THAT(One(Refuse("\n[[rule]]\nid = \"r\"\neffect = \"permit\"\nreason = \"x\"\n"
                         "lawful_basis = \"public task\"\n")),
              HasSubstr("must name a UK GDPR Art 6(1) basis"));
  EXPECT_THAT(One(Refuse(std::string(kPermitHead) + "special_category_condition = \"health\"\n")),
              HasSubstr("Art 9(2) condition"));
  EXPECT_THAT(One(Refuse(std::string(kPermitHead) + "criminal_offence_condition = \"crime\"\n")),
              HasSubstr("Schedule 1 condition"));
}

TEST(PolicyValidation, EffectAndReasonAreRequired) {
  EXPECT_THAT(One(Refuse("\n[[rule]]\nid = \"r\"\neffect = \"allow\"\nreason = \"x\"\n")),
              HasSubstr("effect must be \"permit\" or \"deny\""));
  EXPECT_THAT(One(Refuse("\n[[rule]]\nid = \"r\"\neffect = \"deny\"\n")),
              HasSubstr("needs a reason"));
}

TEST(PolicyValidation, PermitOnlyKeysOnADenyRule) {
  EXPECT_THAT(One(Refuse("\n[[rule]]\nid = \"r\"\neffect = \"deny\"\nreason = \"x\"\n"
                         "allow_fields = [\"/kind\"]\n")),
              HasSubstr("allow_fields has no meaning on a deny rule"));
}

TEST(PolicyValidation, OverrideOnlyForChildrenAndSafeguardingPurposes) {
  std::string base = std::string(kPermitHead) + "override_allowed = true\n";
  EXPECT_THAT(Refuse(base + "match = { purpose = \"safeguarding\" }\n").at(0),
              HasSubstr("applies to children only"));
  EXPECT_THAT(Refuse(base + "match = { purpose = \"statistics\", age_band = \"child\" }\n").at(0),
              HasSubstr("only for purposes safeguarding, s47_enquiry and missing_child"));
  EXPECT_TRUE(
      ParsePolicy(
          testing::kHead + base +
              "match = { purpose = [\"s47_enquiry\", \"missing_child\"], age_band = \"child\" }\n",
          "p.toml")
          .ok());
}

TEST(PolicyValidation, SilentReadOnlyForHealthInScheduledCare) {
  std::string base = std::string(kPermitHead) + "silent_read = true\n";
  EXPECT_THAT(
      One(Refuse(base +
                 "match = { purpose = \"unscheduled_care\", recipient_role = \"health\" }\n")),
      HasSubstr("silent_read"));
  EXPECT_TRUE(
      ParsePolicy(testing::kHead + base +
                      "match = { purpose = \"scheduled_care\", recipient_role = \"health\" }\n",
                  "p.toml")
          .ok());
}

TEST(PolicyValidation, AllowListsNameRecordFields) {
  EXPECT_THAT(One(Refuse(std::string(kPermitHead) + "allow_fields = [\"/subject/nhs_no\"]\n")),
              HasSubstr("'nhs_no', which is not a member of /subject"));
  EXPECT_THAT(One(Refuse(std::string(kPermitHead) + "allow_fields = [\"subject\"]\n")),
              HasSubstr("must be a JSON pointer"));
  EXPECT_THAT(One(Refuse(std::string(kPermitHead) + "allow_fields = [\"/person\"]\n")),
              HasSubstr("not a member of a canonical record"));
  EXPECT_THAT(One(Refuse(std::string(kPermitHead) + "allow_fields = [\"/subject/local_ids/0\"]\n")),
              HasSubstr("arrays and values travel whole"));
  EXPECT_THAT(One(Refuse(std::string(kPermitHead) + "allow_list = \"nope\"\n")),
              HasSubstr("allow_list 'nope' is not defined"));
  EXPECT_THAT(
      One(Refuse(std::string(kPermitHead) + "allow_list = \"x\"\nallow_fields = [\"/kind\"]\n")),
      HasSubstr("not both"));
  EXPECT_TRUE(ParsePolicy(std::string(testing::kHead) + "[allow_lists]\nx = [\"/body/a~1b\"]\n" +
                              kPermitHead + "allow_list = \"x\"\n",
                          "p.toml")
                  .ok());
}

TEST(PolicyValidation, EveryKindNeedsARetentionPeriod) {
  auto problems = Refuse(kPermitHead, "[policy]\nname = \"x\"\n[retention]\nflag = 10\nplan = 0\n");
  std::string all = ::testing::PrintToString(problems);
  EXPECT_THAT(all, HasSubstr("p.toml:5: retention.plan must be a whole number of days"));
  for (const char* kind : {"occurrence", "referral", "assessment", "missing_episode"}) {
    EXPECT_THAT(all, HasSubstr("no period for kind '" + std::string(kind) + "'"));
  }
  EXPECT_THAT(One(Refuse(std::string(kPermitHead) + "retention_days = -1\n")),
              HasSubstr("retention_days must be a whole number of days"));
}

TEST(PolicyValidation, EveryProblemIsReportedNotOnlyTheFirst) {
  auto problems = Refuse(std::string(kPermitHead) +
                         "match = { purpose = \"x\", recipient_role = \"y\" }\nfoo = 1\n");
  EXPECT_EQ(problems.size(), 3u) << ::testing::PrintToString(problems);
}

TEST(PolicyValidation, NoRulesAtAll) { EXPECT_THAT(One(Refuse("")), HasSubstr("no [[rule]]")); }

TEST(PolicyValidation, UnreadableFile) {
  auto p = LoadPolicy("/nonexistent/policy.toml");
  ASSERT_FALSE(p.ok());
  ASSERT_EQ(p.status().problems().size(), 1u);
  EXPECT_EQ(p.status().problems()[0].where, "/nonexistent/policy.toml");
  EXPECT_THAT(p.status().problems()[0].what, HasSubstr("cannot open"));
}

}  // namespace
}  // namespace safegate::policy
