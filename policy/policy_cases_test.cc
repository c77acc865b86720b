// Runs every table-driven case in policy/tests/*.toml through the engine, one test per file,
// and checks the shipped policy's coverage: a case file per domain rule R1-R9, each with at
// least one denial, and every rule of the policy (and every builtin guard) exercised.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "policy/policy.h"
#include "policy/policy_test_util.h"
#include "policy/policy_tool.h"
#include "record/record.h"

namespace safegate::policy {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> CaseFiles() {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(testing::SourceDir() + "/policy/tests", ec)) {
    if (e.path().extension() == ".toml") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

class CaseFileTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CaseFileTest, EveryCasePasses) {
  auto result = RunCaseFile(GetParam(), std::nullopt);
  ASSERT_TRUE(result.ok()) << [&] {
    std::string all = result.status().ToString();
    for (const Problem& p : result.status().problems()) all += "\n  " + p.where + ": " + p.what;
    return all;
  }();
  EXPECT_FALSE(result->cases.empty());
  for (const CaseResult& c : result->cases) {
    std::string why;
    for (const std::string& f : c.failures) why += "\n  " + f;
    EXPECT_TRUE(c.passed) << GetParam() << ":" << c.line << ": " << c.name << why
                          << "\n  decision: " << c.decision.ToJson().dump();
  }
}

INSTANTIATE_TEST_SUITE_P(PolicyCases, CaseFileTest, ::testing::ValuesIn(CaseFiles()),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           std::string name = fs::path(param.param).stem().string();
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

TEST(PolicyCases, EachDomainRuleHasAFileWithADenial) {
  std::map<std::string, bool> has_deny;
  for (const std::string& file : CaseFiles()) {
    std::string stem = fs::path(file).stem().string();
    auto result = RunCaseFile(file, std::nullopt);
    ASSERT_TRUE(result.ok()) << file;
    bool deny = false;
    for (const CaseResult& c : result->cases) deny = deny || c.decision.effect == Effect::kDeny;
    has_deny[stem.substr(0, stem.find('_'))] = deny;
  }
  for (int r = 1; r <= 9; ++r) {
    std::string group = "r" + std::to_string(r);
    ASSERT_TRUE(has_deny.count(group)) << "no case file " << group << "_*.toml";
    EXPECT_TRUE(has_deny[group]) << group << " has no case that is denied";
  }
}

TEST(PolicyCases, EveryRuleOfTheDefaultPolicyFiresInSomeCase) {
  auto policy = LoadPolicy(testing::DefaultPolicyPath());
  ASSERT_TRUE(policy.ok());
  std::set<std::string> fired;
  for (const std::string& file : CaseFiles()) {
    auto result = RunCaseFile(file, std::nullopt);
    ASSERT_TRUE(result.ok()) << file;
    for (const CaseResult& c : result->cases) {
      fired.insert(c.decision.rules_fired.begin(), c.decision.rules_fired.end());
    }
  }
  for (const RuleSummary& r : (*policy)->rules()) {
    EXPECT_TRUE(fired.count(r.id)) << "no case exercises rule " << r.id;
  }
}

TEST(PolicyCases, TheTestRecordsAreValidCanonicalRecords) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(testing::SourceDir() + "/policy/tests/records")) {
    std::ifstream in(e.path());
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = record::ParseRecord(nlohmann::json::parse(text.str()));
    EXPECT_TRUE(parsed.ok()) << e.path() << ": " << [&] {
      std::string all = parsed.status().ToString();
      for (const Problem& p : parsed.status().problems()) all += "\n  " + p.where + ": " + p.what;
      return all;
    }();
    ++n;
  }
  EXPECT_GE(n, 5);
}

}  // namespace
}  // namespace safegate::policy
