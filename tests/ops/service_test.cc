// The gateway as a service an operator runs: systemd notifications and watchdog pings,
// /metrics (certificate expiry, the audit log's signed tree head, build information),
// `safegatectl status`, certificate expiry warnings and the refusal of an expired server
// certificate, the refusal of private keys others may read, and the structured log.
// Real daemons from `safegatectl sandbox up`, real certificates, loopback only.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/ctl/status.h"
#include "tests/support/sandbox.h"
#include "tests/support/test_data.h"

namespace safegate::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;
constexpr auto kBound = std::chrono::seconds(30);

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// Runs a program bounded by coreutils' timeout (exit 124 when it had to be stopped), so a
// daemon that should have refused to start cannot hang the test.
int RunBounded(std::vector<std::string> argv, std::string* output) {
  argv.insert(argv.begin(), {"/usr/bin/timeout", "-s", "KILL", "30"});
  Result<int> rc = RunProgram(argv, output);
  EXPECT_TRUE(rc.ok()) << rc.status().ToString();
  return rc.ok() ? *rc : -1;
}

// A datagram socket standing in for systemd's notification socket.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    bound_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval tv{0, 200'000};
    if (bound_) ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~NotifySocket() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  bool bound() const { return bound_; }

  // Collects messages until one contains `wanted` (true) or the bound passes (false).
  bool WaitFor(const std::string& wanted) {
    const auto deadline = SteadyClock::now() + kBound;
    while (SteadyClock::now() < deadline) {
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) continue;  // SO_RCVTIMEO: look at the deadline again
      std::string message(buf, static_cast<size_t>(n));
      received_.push_back(message);
      if (message.find(wanted) != std::string::npos) return true;
    }
    return false;
  }
  std::string Received() const {
    std::string all;
    for (const auto& m : received_) all += "[" + m + "] ";
    return all;
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
  std::vector<std::string> received_;
};

class ServiceTest : public SandboxTest {
 protected:
  const Sandbox::Area& Bradford() { return sandbox().area("bradford"); }

  std::vector<ctl::MetricSample> Metrics() {
    auto answer = ctl::PlainHttpGet(Bradford().admin_url, "/metrics", std::chrono::seconds(10));
    EXPECT_TRUE(answer.ok()) << answer.status().ToString();
    if (!answer.ok()) return {};
    EXPECT_EQ(answer->status, 200);
    auto samples = ctl::ParsePrometheusText(answer->body);
    EXPECT_TRUE(samples.ok()) << samples.status().ToString();
    return samples.ok() ? *samples : std::vector<ctl::MetricSample>{};
  }

  static const ctl::MetricSample* Find(const std::vector<ctl::MetricSample>& samples,
                                       const std::string& name,
                                       const std::map<std::string, std::string>& labels = {}) {
    for (const auto& s : samples) {
      if (s.name != name) continue;
      bool match = true;
      for (const auto& [k, v] : labels) {
        auto it = s.labels.find(k);
        match = match && it != s.labels.end() && it->second == v;
      }
      if (match) return &s;
    }
    return nullptr;
  }

  // Replaces every line of the area's config that starts with `prefix` by `line`.
  void EditConfig(const std::string& prefix, const std::string& line) {
    std::istringstream in(ReadFile(Bradford().config));
    std::string out, l;
    bool replaced = false;
    while (std::getline(in, l)) {
      if (l.rfind(prefix, 0) == 0) {
        l = line;
        replaced = true;
      }
      out += l + "\n";
    }
    ASSERT_TRUE(replaced) << "no line starting with " << prefix << " in " << Bradford().config;
    WriteFile(Bradford().config, out);
  }

  std::string CertsFile(const std::string& name) { return sandbox().CertsDir() + "/" + name; }
};

TEST_F(ServiceTest, NotifiesSystemdAndPingsTheWatchdog) {
  ASSERT_TRUE(sandbox().Stop("bradford", SIGTERM).ok());
  const std::string socket_path = sandbox().dir() + "/notify.sock";
  NotifySocket notify(socket_path);
  ASSERT_TRUE(notify.bound()) << socket_path;

  // What systemd sets for Type=notify with WatchdogSec=400ms (pings expected every 200 ms).
  ::setenv("NOTIFY_SOCKET", socket_path.c_str(), 1);
  ::setenv("WATCHDOG_USEC", "400000", 1);
  Status restarted = sandbox().Restart("bradford");
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();

  EXPECT_TRUE(notify.WaitFor("READY=1")) << notify.Received();
  EXPECT_TRUE(notify.WaitFor("WATCHDOG=1")) << notify.Received();
  EXPECT_TRUE(notify.WaitFor("WATCHDOG=1")) << "pings stopped: " << notify.Received();

  ASSERT_EQ(::kill(Bradford().pid, SIGHUP), 0);
  EXPECT_TRUE(notify.WaitFor("RELOADING=1")) << notify.Received();
  EXPECT_TRUE(notify.WaitFor("READY=1")) << "no READY=1 after the reload: " << notify.Received();
  EXPECT_TRUE(notify.WaitFor("WATCHDOG=1")) << "pings stopped after the reload";

  ASSERT_TRUE(sandbox().Stop("bradford", SIGTERM).ok());
  EXPECT_TRUE(notify.WaitFor("STOPPING=1")) << notify.Received();
  ASSERT_TRUE(sandbox().Restart("bradford").ok());
}

TEST_F(ServiceTest, MetricsShowCertificatesBuildAndTreeHead) {
  auto pushed = Client("wyp").PostJson(
      "/v1/records", PushBody(CseFlag(TestNhsNumber(41), "OCC-2025-000041"), {"bradford-csc"}));
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  ASSERT_EQ(pushed->status, 201) << pushed->Describe();

  auto samples = Metrics();
  const auto* build = Find(samples, "safegate_build_info");
  ASSERT_NE(build, nullptr);
  EXPECT_EQ(build->labels.at("version"), SAFEGATE_TEST_VERSION);
  EXPECT_EQ(build->labels.at("area"), "bradford");
  ASSERT_NE(Find(samples, "safegate_start_time_seconds"), nullptr);

  // make-dev-certs: gateway and agency certificates for 825 days, the CA for 10 years.
  const auto* server = Find(samples, "safegate_certificate_expiry_days",
                            {{"role", "server"}, {"name", "gateway-bradford"}});
  ASSERT_NE(server, nullptr);
  EXPECT_GT(server->value, 800);
  EXPECT_LE(server->value, 825);
  const auto* ca = Find(samples, "safegate_certificate_expiry_days", {{"role", "ca"}});
  ASSERT_NE(ca, nullptr);
  EXPECT_GT(ca->value, 3600);
  for (const char* agency : {"wyp", "bradford-csc", "bthft", "bradford-audit"}) {
    EXPECT_NE(
        Find(samples, "safegate_certificate_expiry_days", {{"role", "agency"}, {"name", agency}}),
        nullptr)
        << agency;
  }
  const auto* window = Find(samples, "safegate_certificate_expiry_warning_days");
  ASSERT_NE(window, nullptr);
  EXPECT_EQ(window->value, 30);

  const auto* depth = Find(samples, "safegate_mailbox_depth", {{"agency", "bradford-csc"}});
  ASSERT_NE(depth, nullptr);
  EXPECT_EQ(depth->value, 1);

  // A signed tree head follows the push within [audit] sth_interval (100 ms by default).
  const auto deadline = SteadyClock::now() + kBound;
  const ctl::MetricSample* head = nullptr;
  std::vector<ctl::MetricSample> later;
  while (SteadyClock::now() < deadline) {
    later = Metrics();
    head = Find(later, "safegate_audit_tree_head_size");
    if (head != nullptr && head->value >= 1) break;
  }
  ASSERT_NE(head, nullptr) << "no safegate_audit_tree_head_size on /metrics";
  EXPECT_GE(head->value, 1);
  const auto* age = Find(later, "safegate_audit_tree_head_age_seconds");
  ASSERT_NE(age, nullptr);
  EXPECT_GE(age->value, 0);
}

TEST_F(ServiceTest, StatusCommandPrintsHealthCertificatesAndBacklogs) {
  auto pushed = Client("wyp").PostJson(
      "/v1/records", PushBody(CseFlag(TestNhsNumber(42), "OCC-2025-000042"), {"bradford-csc"}));
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  ASSERT_EQ(pushed->status, 201) << pushed->Describe();

  std::string output;
  ASSERT_EQ(RunBounded({SafegatectlPath(), "status", "--admin-url", Bradford().admin_url}, &output),
            0)
      << output;
  EXPECT_NE(output.find("health       ok"), std::string::npos) << output;
  EXPECT_NE(output.find(std::string("version      ") + SAFEGATE_TEST_VERSION), std::string::npos)
      << output;
  EXPECT_NE(output.find("gateway-bradford"), std::string::npos) << output;
  EXPECT_NE(output.find("bradford-csc"), std::string::npos) << output;

  ASSERT_EQ(RunBounded({SafegatectlPath(), "status", "--json", "--admin-url", Bradford().admin_url},
                       &output),
            0)
      << output;
  json status = json::parse(output, nullptr, false);
  ASSERT_TRUE(status.is_object()) << output;
  EXPECT_EQ(status.value("healthy", false), true);
  EXPECT_EQ(status.value("area", ""), "bradford");
  EXPECT_FALSE(status["certificates"].empty()) << output;
  bool found = false;
  for (const auto& m : status["mailboxes"]) {
    if (m.value("agency", "") == "bradford-csc") {
      found = true;
      EXPECT_EQ(m.value("unacked", 0.0), 1.0) << output;
    }
  }
  EXPECT_TRUE(found) << output;

  // Nothing listening: a clear failure, exit 1. A URL of the wrong form: usage, exit 2.
  ASSERT_TRUE(sandbox().Stop("bradford", SIGTERM).ok());
  EXPECT_EQ(RunBounded({SafegatectlPath(), "status", "--admin-url", Bradford().admin_url}, &output),
            1)
      << output;
  EXPECT_NE(output.find("cannot connect"), std::string::npos) << output;
  EXPECT_EQ(
      RunBounded({SafegatectlPath(), "status", "--admin-url", "https://127.0.0.1:1"}, &output), 2)
      << output;
  EXPECT_NE(output.find("is not http://HOST:PORT"), std::string::npos) << output;
  ASSERT_TRUE(sandbox().Restart("bradford").ok());
}

TEST_F(ServiceTest, ExpiredServerCertificateRefusesToStart) {
  ASSERT_TRUE(sandbox().Stop("bradford", SIGTERM).ok());
  const std::string original = ReadFile(Bradford().config);
  // make-dev-certs' wyp-expired: same CA, valid from two years ago until one year ago.
  EditConfig("cert = ", "cert = \"" + CertsFile("wyp-expired.pem") + "\"");
  EditConfig("key = ", "key = \"" + CertsFile("wyp-expired.key") + "\"");

  std::string output;
  EXPECT_EQ(RunBounded({SafegatedPath(), "--check-config", Bradford().config}, &output), 2)
      << output;
  EXPECT_NE(output.find("expired on"), std::string::npos) << output;
  EXPECT_EQ(RunBounded({SafegatedPath(), "--config", Bradford().config}, &output), 2) << output;
  EXPECT_NE(output.find("tls.cert"), std::string::npos) << output;
  EXPECT_NE(output.find("expired on"), std::string::npos) << output;

  WriteFile(Bradford().config, original);
  ASSERT_TRUE(sandbox().Restart("bradford").ok());
}

TEST_F(ServiceTest, WarnsAboutCertificatesExpiringWithinTheWindow) {
  ASSERT_TRUE(sandbox().Stop("bradford", SIGTERM).ok());
  // Every development certificate but the CA expires within 1000 days.
  EditConfig("crl = ", "crl = \"" + CertsFile("crl.pem") + "\"\nexpiry_warning = \"1000d\"");
  const size_t log_before = ReadFile(Bradford().log).size();
  ASSERT_TRUE(sandbox().Restart("bradford").ok()) << sandbox().LogTails();
  // The check runs before the listeners accept, so its lines are written by now (the log
  // thread may lag a little: wait for them with a bound).
  const auto deadline = SteadyClock::now() + kBound;
  std::string log;
  while (SteadyClock::now() < deadline) {
    log = ReadFile(Bradford().log).substr(log_before);
    if (log.find("\"certificates_checked\"") != std::string::npos) break;
  }
  bool server_warned = false, ca_warned = false;
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line)) {
    json e = json::parse(line, nullptr, false);
    if (!e.is_object() || e.value("event", "") != "certificate_expiring") continue;
    EXPECT_EQ(e.value("level", ""), "warn") << line;
    if (e.value("role", "") == "server") server_warned = true;
    if (e.value("role", "") == "ca") ca_warned = true;
  }
  EXPECT_TRUE(server_warned) << log;
  EXPECT_FALSE(ca_warned) << "the CA has ten years left: " << log;
}

TEST_F(ServiceTest, RefusesToStartWithKeysOthersCanRead) {
  ASSERT_TRUE(sandbox().Stop("bradford", SIGTERM).ok());
  std::string output;
  for (const char* key : {"store.key", "signing.key"}) {
    const std::string path = Bradford().data_dir + "/" + key;
    ASSERT_EQ(::chmod(path.c_str(), 0640), 0) << path;
    EXPECT_EQ(RunBounded({SafegatedPath(), "--config", Bradford().config}, &output), 1) << output;
    EXPECT_NE(output.find(path), std::string::npos)
        << "the message does not name " << path << ": " << output;
    ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  }
  const std::string tls_key = CertsFile("gateway-bradford.key");
  ASSERT_EQ(::chmod(tls_key.c_str(), 0644), 0);
  EXPECT_EQ(RunBounded({SafegatedPath(), "--check-config", Bradford().config}, &output), 2)
      << output;
  EXPECT_NE(output.find("tls.key"), std::string::npos) << output;
  EXPECT_EQ(RunBounded({SafegatedPath(), "--config", Bradford().config}, &output), 2) << output;
  EXPECT_NE(output.find("must not be readable"), std::string::npos) << output;
  ASSERT_EQ(::chmod(tls_key.c_str(), 0600), 0);
  ASSERT_TRUE(sandbox().Restart("bradford").ok()) << sandbox().LogTails();
}

TEST_F(ServiceTest, LogIsJsonLinesWithStableKeysAndNoPersonalData) {
  auto pushed = Client("wyp").PostJson(
      "/v1/records", PushBody(CseFlag(TestNhsNumber(43), "OCC-2025-000043"), {"bradford-csc"}));
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  ASSERT_EQ(pushed->status, 201) << pushed->Describe();
  auto bad = Client("wyp").Request("POST", "/v1/records", "{\"not\": \"a record\"}",
                                   {{"Content-Type", "application/json"}});
  ASSERT_TRUE(bad.ok()) << bad.status().ToString();
  // Stopping flushes the log thread.
  ASSERT_TRUE(sandbox().Stop("bradford", SIGTERM).ok());

  const std::string log = ReadFile(Bradford().log);
  std::istringstream lines(log);
  std::string line;
  int events = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    json e = json::parse(line, nullptr, false);
    ASSERT_TRUE(e.is_object()) << "not a JSON object: " << line;
    ++events;
    for (const char* key : {"ts", "level", "event"}) {
      EXPECT_TRUE(e.contains(key) && e[key].is_string()) << "no \"" << key << "\": " << line;
    }
  }
  EXPECT_GT(events, 3) << log;
  // The pushed record's personal data: names, date of birth, postcode, NHS number.
  for (const std::string& personal :
       {std::string("Zephyrine"), std::string("Quillfeather"), std::string("2015-06-01"),
        std::string("BD3 9AB"), TestNhsNumber(43)}) {
    EXPECT_EQ(log.find(personal), std::string::npos) << "the log holds " << personal;
  }
  ASSERT_TRUE(sandbox().Restart("bradford").ok());
}

}  // namespace
}  // namespace safegate::testing
