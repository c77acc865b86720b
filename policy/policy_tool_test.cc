// `safegatectl policy check|explain|test`, run in-process.
#include "policy/policy_tool.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "policy/policy_test_util.h"

namespace safegate::policy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct ToolRun {
  int code = -1;
  std::string out;
  std::string err;
};

ToolRun Command(std::vector<std::string> args) {
  std::ostringstream out, err;
  ToolRun r;
  r.code = PolicyCommand(args, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

std::string Src(const std::string& rel) { return testing::SourceDir() + "/" + rel; }

TEST(PolicyTool, CheckAcceptsTheDefaultPolicy) {
  ToolRun r = Command({"check", testing::DefaultPolicyPath()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(": ok: policy \"safegate default policy (example areas)\""));
  EXPECT_THAT(r.out, HasSubstr("version "));
}

TEST(PolicyTool, CheckRefusesABadFileWithFileAndLine) {
  testing::TempDir dir;
  std::string path = dir.Write("bad.toml", std::string(testing::kHead) + R"P(
[[rule]]
id = "r"
effect = "permit"
reason = "x"
lawful_basis = "UK GDPR Art 6(1)(e)"
match = { purpose = "marketing" }
)P");
  ToolRun r = Command({"check", path});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr(path + ":16: unknown purpose 'marketing'"));
  EXPECT_TRUE(r.out.empty());
}

TEST(PolicyTool, ExplainPrintsTheDecisionAndEveryRuleThatFired) {
  ToolRun r = Command({"explain", "--policy", testing::DefaultPolicyPath(), "--case",
                       Src("policy/examples/intelligence_c_to_csc.json")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("decision:        deny"));
  EXPECT_THAT(r.out, HasSubstr("R4-handling-c-police-only (deny, line"));
  EXPECT_THAT(r.out, HasSubstr("R2-police-to-csc-child-protection (permit, line"));
  EXPECT_THAT(r.out, HasSubstr("policy version:  "));
}

TEST(PolicyTool, ExplainShowsWithheldFieldsOfARedaction) {
  ToolRun r = Command({"explain", "--policy", testing::DefaultPolicyPath(), "--case",
                       Src("policy/examples/cp_flag_to_emergency_department.json")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("decision:        redact"));
  EXPECT_THAT(r.out, HasSubstr("withheld fields: /body/level, /body/note"));
  EXPECT_THAT(r.out, Not(HasSubstr("Parents separated")));
}

TEST(PolicyTool, ExplainUsesTheDefaultPolicyWhenNoneIsGiven) {
  std::ostringstream out, err;
  int code = PolicyCommand({"explain", "--case", Src("policy/examples/intelligence_c_to_csc.json")},
                           out, err, testing::DefaultPolicyPath());
  EXPECT_EQ(code, 0) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("decision:        deny"));
}

TEST(PolicyTool, ExplainJson) {
  ToolRun r = Command({"explain", "--policy", testing::DefaultPolicyPath(), "--case",
                       Src("policy/examples/cse_flag_to_csc_override.json"), "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["decision"]["effect"], "permit");
  EXPECT_EQ(j["decision"]["override_used"], true);
  ASSERT_EQ(j["rules"].size(), 2u);
  EXPECT_EQ(j["rules"][0]["id"], "R2-police-to-csc-child-protection");
  EXPECT_TRUE(j.contains("withheld"));
}

TEST(PolicyTool, ExplainReportsABadCase) {
  testing::TempDir dir;
  std::string c = dir.Write("case.json", R"P({"purpose": "marketing", "kind": "flag",
    "source": {"agency": "wyp", "role": "police", "area": "bradford"},
    "recipient": {"agency": "x", "role": "nurse", "area": "bradford"}, "colour": 1})P");
  ToolRun r = Command({"explain", "--policy", testing::DefaultPolicyPath(), "--case", c});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr(c + ":/purpose: unknown purpose 'marketing'"));
  EXPECT_THAT(r.err, HasSubstr(c + ":/recipient/role: unknown role 'nurse'"));
  EXPECT_THAT(r.err, HasSubstr(c + ":/colour: unknown key"));
  std::string notjson = dir.Write("bad.json", "{");
  EXPECT_EQ(Command({"explain", "--policy", testing::DefaultPolicyPath(), "--case", notjson}).code,
            2);
}

TEST(PolicyTool, UsageErrors) {
  EXPECT_EQ(Command({}).code, 2);
  EXPECT_EQ(Command({"frobnicate"}).code, 2);
  EXPECT_EQ(Command({"check"}).code, 2);
  EXPECT_EQ(Command({"explain", "--case", "x.json"}).code, 2);
  EXPECT_EQ(Command({"test"}).code, 2);
  EXPECT_EQ(Command({"help"}).code, 0);
}

TEST(PolicyTool, TestRunsTheShippedCases) {
  ToolRun r = Command({"test", Src("policy/tests")});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(" failed"));
  EXPECT_THAT(r.out, HasSubstr(" 0 failed"));
}

TEST(PolicyTool, TestReportsAFailingCase) {
  testing::TempDir dir;
  dir.Write("cases/one.toml", "policy = \"" + testing::DefaultPolicyPath() + R"P("
[[case]]
name = "wrongly expects a permit"
[case.input]
purpose = "safeguarding"
kind = "flag"
now = "2024-06-01"
source = { agency = "wyp", role = "police", area = "bradford" }
recipient = { agency = "bradford-audit", role = "audit", area = "bradford" }
[case.expect]
effect = "permit"
)P");
  ToolRun r = Command({"test", dir.path() + "/cases"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out,
              HasSubstr("FAIL " + dir.path() + "/cases/one.toml:2: wrongly expects a permit"));
  EXPECT_THAT(r.out, HasSubstr("effect: expected \"permit\", got \"deny\""));
  EXPECT_THAT(r.out, HasSubstr("1 cases in 1 files: 0 passed, 1 failed"));
}

TEST(PolicyTool, TestRefusesAMalformedCaseFile) {
  testing::TempDir dir;
  dir.Write("cases/bad.toml", R"P(policy = "nowhere.toml"
colour = "blue"
[[case]]
name = "x"
)P");
  ToolRun r = Command({"test", dir.path() + "/cases"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("bad.toml:2: unknown key 'colour'"));
  EXPECT_THAT(r.out, HasSubstr("1 files could not be run"));
}

TEST(PolicyTool, PolicyFlagOverridesTheCaseFilesPolicy) {
  testing::TempDir dir;
  // A policy that denies everything to CSC: every shipped case expecting a CSC permit fails.
  std::string strict = dir.Write("strict.toml", std::string(testing::kHead) + R"P(
[[rule]]
id = "none"
effect = "deny"
reason = "nothing"
match = { recipient_role = "csc" }
)P");
  ToolRun r = Command({"test", Src("policy/tests"), "--policy", strict});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("FAIL "));
}

TEST(CaseInput, TakesKindClassificationAndBirthDateFromTheRecord) {
  nlohmann::json j = nlohmann::json::parse(R"P({
    "purpose": "s47_enquiry",
    "source": {"agency": "wyp", "role": "police", "area": "bradford"},
    "recipient": {"agency": "bradford-csc", "role": "csc", "area": "bradford"},
    "record": {"kind": "plan", "subject": {"birth_date": "2015-01-01"},
               "classification": {"special_category": true, "criminal_offence": false,
                                  "schedule12a": [1], "handling": "C"}},
    "consent": "withdrawn",
    "override": {"basis": "b", "reason": "r", "authorised_by": "a"}
  })P");
  auto c = ParseCaseInput(j, "case", ".", ParseTimestamp("2024-06-01"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->input.kind, record::Kind::kPlan);
  EXPECT_TRUE(c->input.classification.special_category);
  EXPECT_EQ(c->input.classification.schedule12a, std::vector<int>{1});
  EXPECT_EQ(c->input.classification.handling, "C");
  EXPECT_EQ(c->input.birth_date, "2015-01-01");
  EXPECT_EQ(c->input.purpose, Purpose::kS47Enquiry);
  EXPECT_EQ(c->input.consent, ConsentState::kWithdrawn);
  ASSERT_TRUE(c->input.safeguarding_override);
  EXPECT_EQ(c->input.safeguarding_override->authorised_by, "a");
  EXPECT_TRUE(c->record.has_value());
  // Without a default time, "now" is required.
  auto no_now = ParseCaseInput(j, "case", ".", std::nullopt);
  ASSERT_FALSE(no_now.ok());
  EXPECT_THAT(no_now.status().problems()[0].what, HasSubstr("missing now"));
}

}  // namespace
}  // namespace safegate::policy
