// Integration-test access to real gateways: a sandbox made by the real
// `safegatectl sandbox up` in a fresh temporary directory, clients holding each agency's real
// certificate, and the means to stop (SIGTERM or SIGKILL) and restart a gateway with
// `safegated --config CONFIG` as an operator would.
//
// Ownership: a Sandbox owns its directory and every daemon in it; the destructor runs
// `safegatectl sandbox down` (which also stops gateways restarted here) and removes the
// directory, unless SAFEGATE_KEEP_SANDBOX is set in the environment.
// Thread-safety: Client() may be called from several threads; the rest from one.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "record/status.h"
#include "tests/support/https_client.h"

namespace safegate::testing {

// Paths of the programs under test (compiled in by tests/CMakeLists.txt).
std::string SafegatectlPath();
std::string SafegatedPath();

// Runs a program to completion; returns its exit status and (in `output`) stdout+stderr.
Result<int> RunProgram(const std::vector<std::string>& argv, std::string* output);

// GET http://127.0.0.1:port/path (an admin listener: /metrics, /healthz) over plain HTTP; the
// whole answer (status line, headers, body) as text, or "" when nothing answered in 10 s.
std::string LoopbackGet(uint16_t port, const std::string& path);

class Sandbox {
 public:
  struct Area {
    std::string name;
    std::string url;
    std::string admin_url;
    uint16_t admin_port = 0;
    pid_t pid = 0;
    std::string data_dir;
    std::string config;
    std::string log;
  };

  // `safegatectl sandbox up --dir <new temp dir> --areas <areas>`; the Status carries
  // safegatectl's own words when it fails.
  static Result<std::unique_ptr<Sandbox>> Up(const std::vector<std::string>& areas);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  const std::string& dir() const { return dir_; }
  const nlohmann::json& json() const { return json_; }
  const Area& area(const std::string& name) const;
  std::string CertsDir() const { return dir_ + "/certs"; }

  // A client of `area`'s public listener with `agency`'s certificate from sandbox.json.
  HttpsClient Client(const std::string& area, const std::string& agency) const;
  // A client presenting certs/<name>.pem (e.g. "wyp-revoked", "rogue"); empty: no certificate.
  HttpsClient ClientWithCertificate(const std::string& area, const std::string& name) const;

  // Sends `signal` to the area's gateway and waits (bounded) until it has ended.
  Status Stop(const std::string& area, int signal);
  // Starts `safegated --config CONFIG` for the area (its log appended to the area's log),
  // waits for data_dir/ports.json and /healthz, and checks that the ports are the ones the
  // sandbox chose. Updates area(name).pid.
  Status Restart(const std::string& area);

  // The last lines of every gateway log, for failure messages.
  std::string LogTails() const;

 private:
  Sandbox() = default;
  Area& MutableArea(const std::string& name);

  std::string dir_;
  nlohmann::json json_;
  std::vector<Area> areas_;
};

// A gtest fixture with a Bradford-only sandbox, up before each test and down after it. The
// gateway logs are printed when a test fails.
class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  Sandbox& sandbox() { return *sandbox_; }
  HttpsClient Client(const std::string& agency) const {
    return sandbox_->Client("bradford", agency);
  }
  // Every audit entry matching `query` (e.g. "action=record_accepted&agency=wyp"), following
  // `next`, read as bradford-audit. Fails the test if a page is refused.
  std::vector<nlohmann::json> AuditEntries(const std::string& query);
  // Number of entries with this action (all agencies).
  size_t CountAudit(const std::string& action);

  std::unique_ptr<Sandbox> sandbox_;
};

}  // namespace safegate::testing
