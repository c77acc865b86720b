// Helpers shared by the policy tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>

#include "policy/policy.h"

namespace safegate::policy::testing {

// The head every small test policy needs: a name and a retention period for every kind.
inline constexpr char kHead[] = R"([policy]
name = "test"
[retention]
flag = 10
occurrence = 20
referral = 30
assessment = 40
missing_episode = 50
plan = 60
)";

// Parses kHead + rules; fails the test (and returns null) if the policy is refused.
inline std::shared_ptr<const Policy> MustParse(const std::string& rules,
                                               const std::string& name = "test.toml") {
  auto p = ParsePolicy(std::string(kHead) + rules, name);
  if (!p.ok()) {
    std::string all = p.status().ToString();
    for (const Problem& pr : p.status().problems()) all += "\n  " + pr.where + ": " + pr.what;
    ADD_FAILURE() << all;
    return nullptr;
  }
  return *p;
}

// The source tree: from CTest's environment, else the one this test was built from (test
// discovery runs the binary without CTest's environment).
inline std::string SourceDir() {
  const char* dir = std::getenv("SAFEGATE_SOURCE_DIR");
  if (dir != nullptr && *dir != '\0') return dir;
#ifdef SAFEGATE_TEST_SOURCE_DIR
  return SAFEGATE_TEST_SOURCE_DIR;
#else
  return ".";
#endif
}

inline std::string DefaultPolicyPath() { return SourceDir() + "/policy/default.toml"; }

// A fresh directory under the test temp dir, removed when the object goes.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("policy-test-" + std::to_string(rd()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string Write(const std::string& name, const std::string& text) const {
    std::filesystem::path p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// An input most tests start from: police to CSC in Bradford, safeguarding, a child.
inline DecisionInput BaseInput() {
  DecisionInput in;
  in.kind = record::Kind::kFlag;
  in.birth_date = "2012-05-01";
  in.now = *ParseTimestamp("2024-06-01T12:00:00Z");
  in.source = {"wyp", Role::kPolice, "bradford"};
  in.recipient = {"bradford-csc", Role::kCsc, "bradford"};
  in.purpose = Purpose::kSafeguarding;
  return in;
}

}  // namespace safegate::policy::testing
