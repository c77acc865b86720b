// The sandbox contract (API.md, "The sandbox"): `safegatectl sandbox up` with both example
// areas writes sandbox.json as documented, every file it names is real, each gateway serves
// its own area's agencies and is the other's peer, the configs hold the concrete ports and
// pass `safegated --check-config`, a second `up` on a running sandbox is refused, and
// `sandbox down` stops both gateways.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon/ctl/process.h"
#include "tests/support/sandbox.h"

namespace safegate::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::map<std::string, std::map<std::string, std::string>> kExpectedAgencies = {
    {"bradford",
     {{"bradford-csc", "csc"},
      {"wyp", "police"},
      {"bthft", "health"},
      {"bradford-audit", "audit"},
      {"bradford-scrutiny", "committee"}}},
    {"cambridgeshire",
     {{"cambs-csc", "csc"},
      {"cambs-police", "police"},
      {"cuh", "health"},
      {"cambs-audit", "audit"}}},
};

TEST(SandboxContractTest, BothAreasUpAsDocumentedThenDown) {
  Result<std::unique_ptr<Sandbox>> up = Sandbox::Up({"bradford", "cambridgeshire"});
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  Sandbox& sb = **up;
  const json& doc = sb.json();

  ASSERT_TRUE(doc["ca"].is_string());
  EXPECT_TRUE(fs::exists(doc["ca"].get<std::string>()));
  ASSERT_EQ(doc["areas"].size(), 2u) << doc.dump(2);
  for (const auto& [area, agencies] : kExpectedAgencies) {
    SCOPED_TRACE(area);
    const json& a = doc["areas"][area];
    ASSERT_TRUE(a.is_object()) << doc.dump(2);
    for (const char* field : {"url", "admin_url", "data_dir", "config"}) {
      EXPECT_TRUE(a[field].is_string()) << field;
    }
    EXPECT_EQ(a["url"].get<std::string>().rfind("https://127.0.0.1:", 0), 0u);
    EXPECT_EQ(a["admin_url"].get<std::string>().rfind("http://127.0.0.1:", 0), 0u);
    EXPECT_TRUE(a["pid"].is_number_integer());
    EXPECT_TRUE(ctl::ProcessAlive(a["pid"].get<pid_t>()));
    EXPECT_TRUE(fs::is_directory(a["data_dir"].get<std::string>()));
    ASSERT_EQ(a["agencies"].size(), agencies.size()) << a["agencies"].dump(2);
    for (const auto& [agency, role] : agencies) {
      const json& entry = a["agencies"][agency];
      ASSERT_TRUE(entry.is_object()) << agency;
      EXPECT_EQ(entry.value("role", ""), role) << agency;
      EXPECT_TRUE(fs::exists(entry.value("cert", ""))) << agency;
      EXPECT_TRUE(fs::exists(entry.value("key", ""))) << agency;
    }

    // The config holds the ports in use, so a restart comes back on the same addresses.
    const std::string config = ReadFile(a["config"].get<std::string>());
    EXPECT_EQ(config.find("port = 0"), std::string::npos) << config;
    const std::string url = a["url"].get<std::string>();
    EXPECT_NE(config.find("port = " + url.substr(url.rfind(':') + 1)), std::string::npos) << config;
    std::string output;
    Result<int> rc =
        RunProgram({SafegatedPath(), "--check-config", a["config"].get<std::string>()}, &output);
    ASSERT_TRUE(rc.ok()) << rc.status().ToString();
    EXPECT_EQ(*rc, 0) << output;

    // Every agency of the area is answered by its own gateway.
    for (const auto& [agency, role] : agencies) {
      auto r = sb.Client(area, agency).Get("/v1/mailbox");
      ASSERT_TRUE(r.ok()) << agency << ": " << r.status().ToString();
      EXPECT_EQ(r->status, 200) << agency << ": " << r->Describe();
    }
    auto health =
        ctl::LoopbackHttpGet(sb.area(area).admin_port, "/healthz", std::chrono::seconds(5));
    ASSERT_TRUE(health.ok()) << health.status().ToString();
    EXPECT_EQ(*health, 200);
  }

  // Each gateway names the other as its peer, at the other's real URL.
  for (const auto& [area, other] : std::map<std::string, std::string>{
           {"bradford", "cambridgeshire"}, {"cambridgeshire", "bradford"}}) {
    const std::string registry = ReadFile(sb.dir() + "/" + area + "/registry.toml");
    EXPECT_NE(registry.find("[[peer]]\narea = \"" + other + "\"\nendpoint = \"" +
                            sb.area(other).url + "\""),
              std::string::npos)
        << area << "'s registry:\n"
        << registry;
  }

  // One area's agencies are strangers to the other area's gateway.
  auto stranger = sb.ClientWithCertificate("bradford", "cambs-csc").Get("/v1/mailbox");
  EXPECT_FALSE(stranger.ok()) << "cambs-csc was answered by Bradford: " << stranger->Describe();

  // The files are real for curl too, as API.md promises.
  if (access("/usr/bin/curl", X_OK) == 0) {
    const json& wyp = doc["areas"]["bradford"]["agencies"]["wyp"];
    std::string output;
    Result<int> rc =
        RunProgram({"/usr/bin/curl", "-sS", "--fail", "--cacert", doc["ca"].get<std::string>(),
                    "--cert", wyp.value("cert", ""), "--key", wyp.value("key", ""),
                    sb.area("bradford").url + "/v1/mailbox"},
                   &output);
    ASSERT_TRUE(rc.ok()) << rc.status().ToString();
    EXPECT_EQ(*rc, 0) << output;
    EXPECT_TRUE(json::parse(output, nullptr, false).contains("messages")) << output;
  }

  // A second `up` on a running sandbox is refused and leaves it running.
  std::string output;
  Result<int> again = RunProgram({SafegatectlPath(), "sandbox", "up", "--dir", sb.dir()}, &output);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*again, 0) << output;
  EXPECT_NE(output.find("already running"), std::string::npos) << output;
  EXPECT_TRUE(ctl::ProcessAlive(sb.area("bradford").pid));

  // Down stops both gateways.
  Result<int> down = RunProgram({SafegatectlPath(), "sandbox", "down", "--dir", sb.dir()}, &output);
  ASSERT_TRUE(down.ok());
  EXPECT_EQ(*down, 0) << output;
  for (const char* area : {"bradford", "cambridgeshire"}) {
    EXPECT_FALSE(ctl::ProcessAlive(sb.area(area).pid)) << area;
    EXPECT_NE(output.find(std::string(area) + ": stopped pid " + std::to_string(sb.area(area).pid)),
              std::string::npos)
        << output;
  }
}

}  // namespace
}  // namespace safegate::testing
