// safegatectl's audit tools offline, on a data directory written by the real store: verify
// against the latest signed head, prove an entry into a bundle, check the bundle with no
// gateway, and the refusals (a tampered bundle, a wrong pinned key, bad usage). The API forms
// of the same commands run against real gateways in tests/audit_tools_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

#include <nlohmann/json.hpp>

#include "daemon/core/gateway.h"
#include "daemon/ctl/audit_tool.h"

namespace safegate::ctl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class AuditToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "safegatectl-audit-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    data_ = dir_ + "/data";
    // A gateway writes a few entries and stops (its last tree head covers them all).
    auto config = std::make_shared<config::Config>();
    config->area = "bradford";
    config->data_dir = data_;
    auto registry = std::make_shared<config::Registry>();
    for (auto [id, role] : {std::pair{"wyp", config::Role::kPolice},
                            std::pair{"bradford-audit", config::Role::kAudit}}) {
      config::Agency a;
      a.id = id;
      a.name = id;
      a.role = role;
      a.area = "bradford";
      registry->agencies.push_back(a);
    }
    GatewayOptions o;
    o.config = config;
    o.registry = registry;
    auto gw = Gateway::Open(std::move(o));
    ASSERT_TRUE(gw.ok()) << gw.status().ToString();
    for (int i = 0; i < 5; ++i) {
      Rejection r;
      r.action = "request_rejected";
      r.actor = "wyp";
      r.reason = "bad_request";
      r.detail = {{"route", "/v1/records"}, {"status", 400}};
      std::promise<Result<Empty>> p;
      (*gw)->Reject(std::move(r), [&p](Result<Empty> res) { p.set_value(std::move(res)); });
      ASSERT_TRUE(p.get_future().get().ok());
    }
    (*gw)->Shutdown();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  int Run(const std::string& action, std::map<std::string, std::string> options,
          std::vector<std::string> positional = {}) {
    out_.str("");
    err_.str("");
    return AuditCommand(action, options, positional, out_, err_);
  }

  std::string dir_, data_;
  std::ostringstream out_, err_;
};

TEST_F(AuditToolTest, VerifyProveAndCheckOffline) {
  ASSERT_EQ(Run("verify", {{"--data-dir", data_}}), 0) << err_.str();
  const json report = json::parse(out_.str());
  EXPECT_EQ(report["ok"], true);
  EXPECT_EQ(report["entries"], 5);
  EXPECT_EQ(report["tree_head"]["tree_size"], 5);
  const std::string key = report["public_key"];

  const std::string bundle = dir_ + "/seq3.json";
  ASSERT_EQ(Run("prove", {{"--data-dir", data_}, {"--seq", "3"}, {"--out", bundle}}), 0)
      << err_.str();
  EXPECT_NE(err_.str().find("entry 3 is in the tree of 5 entries"), std::string::npos)
      << err_.str();
  ASSERT_TRUE(fs::exists(bundle));

  ASSERT_EQ(Run("check-proof", {{"--public-key", key}}, {bundle}), 0) << out_.str();
  EXPECT_EQ(out_.str().rfind("OK: entry 3 (leaf 2) is in the tree of 5 entries", 0), 0u)
      << out_.str();
  // Without a pinned key it still checks, and says what that leaves unproven.
  ASSERT_EQ(Run("check-proof", {}, {bundle}), 0);
  EXPECT_NE(err_.str().find("no --public-key"), std::string::npos);

  // Another key, a tampered entry: rejected, naming where.
  EXPECT_EQ(Run("check-proof", {{"--public-key", "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}},
                {bundle}),
            1);
  EXPECT_NE(out_.str().find("/tree_head/public_key"), std::string::npos) << out_.str();
  json tampered;
  std::ifstream(bundle) >> tampered;
  tampered["leaf_index"] = 1;
  std::ofstream(dir_ + "/tampered.json") << tampered.dump();
  EXPECT_EQ(Run("check-proof", {{"--public-key", key}}, {dir_ + "/tampered.json"}), 1);
  EXPECT_NE(out_.str().find("REJECTED"), std::string::npos);
  EXPECT_NE(out_.str().find("/path"), std::string::npos) << out_.str();

  // A pinned key that is not the gateway's fails verification of every head.
  EXPECT_EQ(Run("verify", {{"--data-dir", data_},
                           {"--public-key", "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}}),
            1);
  EXPECT_THAT(out_.str(), ::testing::HasSubstr("signature"));
}

TEST_F(AuditToolTest, RefusalsNameWhatWasWrong) {
  EXPECT_EQ(Run("prove", {{"--data-dir", data_}, {"--seq", "99"}, {"--out", dir_ + "/x"}}), 1);
  EXPECT_NE(err_.str().find("not under the latest signed tree head"), std::string::npos)
      << err_.str();
  EXPECT_FALSE(fs::exists(dir_ + "/x"));
  EXPECT_EQ(Run("prove", {{"--data-dir", data_}, {"--seq", "0"}, {"--out", dir_ + "/x"}}), 2);
  EXPECT_EQ(Run("prove", {{"--seq", "1"}, {"--out", dir_ + "/x"}}), 2);
  EXPECT_EQ(Run("verify", {}), 2);
  EXPECT_EQ(Run("verify", {{"--data-dir", dir_ + "/none"}}), 2);
  EXPECT_EQ(Run("verify", {{"--data-dir", data_}, {"--public-key", "short"}}), 2);
  EXPECT_EQ(Run("check-proof", {}, {dir_ + "/missing.json"}), 2);
  EXPECT_EQ(Run("check-proof", {}, {}), 2);
  EXPECT_EQ(Run("query", {{"--url", "https://127.0.0.1:1"},
                          {"--ca", "a"},
                          {"--cert", "b"},
                          {"--key", "c"}}),
            2);
  EXPECT_NE(err_.str().find("--purpose"), std::string::npos);
  EXPECT_EQ(Run("tail", {{"--purpose", "x"}}), 2);
  EXPECT_NE(err_.str().find("--url"), std::string::npos);
  EXPECT_EQ(Run("sideways", {}), 2);
  EXPECT_EQ(Run("verify", {{"--data-dir", data_}, {"--seq", "1"}}), 2);
  EXPECT_NE(err_.str().find("--seq does not apply"), std::string::npos);
}

TEST(AuditToolUnitTest, QueryEscapeAndBadUrls) {
  EXPECT_EQ(QueryEscape("nhs:9990000018"), "nhs%3A9990000018");
  EXPECT_EQ(QueryEscape("2026-01-01T00:00:00+01:00"), "2026-01-01T00%3A00%3A00%2B01%3A00");
  ApiEndpoint e;
  e.url = "http://127.0.0.1:80";
  EXPECT_EQ(ApiGet(e, "/").status().code(), ErrorCode::kInvalidInput);
  e.url = "https://127.0.0.1";
  EXPECT_EQ(ApiGet(e, "/").status().code(), ErrorCode::kInvalidInput);
}

}  // namespace
}  // namespace safegate::ctl
