// Audit forwarding to a syslog collector over TLS ([audit.forward], docs/audit-log.md,
// "Forwarding"), end to end: a real gateway from the sandbox, restarted with the section in
// its config, and a test collector here (a TLS server on 127.0.0.1, port 0, presenting a
// certificate made at run time by certs/make-dev-certs) that parses RFC 5425 octet-counted
// frames strictly and records each RFC 5424 message.
//
// Each message is checked against the gateway's own database: its entry bytes are the stored
// bytes of that seq, its leaf and chain hashes are the ones the log computes, and nothing
// identifying (the subject references pushed) appears in anything sent.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/sandbox.h"
#include "tests/support/test_data.h"

namespace safegate::testing {
namespace {

using nlohmann::json;
constexpr auto kBound = std::chrono::seconds(30);

std::string Hex(const unsigned char* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

std::string Sha256Hex(const std::string& bytes) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), md);
  return Hex(md, sizeof md);
}

std::string Sha256Raw(const std::string& bytes) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof md);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Waits (bounded) for `pred`, looking again every 20 ms; returns its last answer.
bool Eventually(const std::function<bool()>& pred) {
  const auto deadline = std::chrono::steady_clock::now() + kBound;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// A metric's value from a /metrics page ("name 12" or "name{labels} 12"); -1 when absent.
double Metric(const std::string& page, const std::string& series) {
  const size_t at = page.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(page.substr(at + series.size() + 2));
}

// A syslog collector speaking RFC 5425: TLS, then octet-counted frames (MSG-LEN SP MSG, with
// MSG-LEN a non-zero decimal without leading zeros). Anything else is a framing error: it is
// recorded and the connection is closed.
class Collector {
 public:
  struct Options {
    std::string cert;
    std::string key;
    std::string client_ca;  // non-empty: a client certificate from this CA is required
    uint16_t port = 0;      // 0: any free port
  };

  explicit Collector(Options options) : options_(std::move(options)) {}
  ~Collector() { Stop(); }

  // Listens on 127.0.0.1. Returns "" or what went wrong.
  std::string Start() {
    ctx_ = SSL_CTX_new(TLS_server_method());
    if (SSL_CTX_use_certificate_chain_file(ctx_, options_.cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx_, options_.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      return "collector certificate " + options_.cert + " cannot be loaded";
    }
    if (!options_.client_ca.empty()) {
      SSL_CTX_load_verify_locations(ctx_, options_.client_ca.c_str(), nullptr);
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(options_.port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 16) != 0) {
      return std::string("collector bind/listen: ") + std::strerror(errno);
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    if (::pipe(wake_) != 0) return "pipe failed";
    accept_thread_ = std::thread([this] { AcceptLoop(); });
    return "";
  }

  // Closes the listener and every connection (without reading what is still in flight),
  // and joins every thread. Idempotent.
  void Stop() {
    if (listen_fd_ < 0) return;
    (void)!::write(wake_[1], "x", 1);
    accept_thread_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : connection_threads_) t.join();
    connection_threads_.clear();
    ::close(listen_fd_);
    listen_fd_ = -1;
    ::close(wake_[0]);
    ::close(wake_[1]);
    SSL_CTX_free(ctx_);
    ctx_ = nullptr;
  }

  uint16_t port() const { return port_; }

  std::vector<std::string> Messages() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }
  std::vector<std::string> Errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }
  int Handshakes() {
    std::lock_guard<std::mutex> lock(mu_);
    return handshakes_;
  }
  std::vector<std::string> ClientSubjects() {
    std::lock_guard<std::mutex> lock(mu_);
    return client_subjects_;
  }

 private:
  void AcceptLoop() {
    for (;;) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) continue;
      if (fds[1].revents != 0) return;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard<std::mutex> lock(mu_);
      open_fds_.insert(fd);
      connection_threads_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  void Serve(int fd) {
    SSL* ssl = SSL_new(ctx_);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      ++handshakes_;
      if (X509* peer = SSL_get0_peer_certificate(ssl)) {
        char name[256];
        X509_NAME_oneline(X509_get_subject_name(peer), name, sizeof name);
        client_subjects_.emplace_back(name);
      }
    } else {
      ERR_clear_error();
      Close(ssl, fd);
      return;
    }
    std::string buffer;
    char chunk[4096];
    for (;;) {
      const int n = SSL_read(ssl, chunk, sizeof chunk);
      if (n <= 0) break;
      buffer.append(chunk, static_cast<size_t>(n));
      if (!TakeFrames(buffer)) break;
    }
    if (!buffer.empty()) {
      std::lock_guard<std::mutex> lock(mu_);
      // A frame cut off by the connection's end is not a message (the sender sends it again).
      partial_.push_back(buffer);
    }
    ERR_clear_error();
    Close(ssl, fd);
  }

  // Moves every complete frame out of `buffer`; false on a framing error.
  bool TakeFrames(std::string& buffer) {
    for (;;) {
      size_t i = 0;
      while (i < buffer.size() && i < 10 && buffer[i] >= '0' && buffer[i] <= '9') ++i;
      if (i == buffer.size()) return true;  // the length is still arriving
      if (i == 0 || buffer[0] == '0' || buffer[i] != ' ') {
        std::lock_guard<std::mutex> lock(mu_);
        errors_.push_back("bad MSG-LEN at: " + buffer.substr(0, 20));
        return false;
      }
      const size_t len = std::stoul(buffer.substr(0, i));
      if (buffer.size() < i + 1 + len) return true;
      std::lock_guard<std::mutex> lock(mu_);
      messages_.push_back(buffer.substr(i + 1, len));
      buffer.erase(0, i + 1 + len);
    }
  }

  void Close(SSL* ssl, int fd) {
    SSL_free(ssl);
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.erase(fd);
    ::close(fd);
  }

  Options options_;
  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::thread accept_thread_;
  std::vector<std::thread> connection_threads_;

  std::mutex mu_;
  std::set<int> open_fds_;
  std::vector<std::string> messages_;
  std::vector<std::string> errors_;
  std::vector<std::string> partial_;
  std::vector<std::string> client_subjects_;
  int handshakes_ = 0;
};

// One message, taken apart per RFC 5424 as the gateway writes it.
struct Parsed {
  bool ok = false;
  std::string why;
  std::string timestamp, hostname, app_name, procid, msgid;
  int64_t seq = 0;
  std::string leaf, chain, area;
  std::string entry;  // MSG without its BOM
};

Parsed Parse(const std::string& message) {
  static const std::regex kHeader(
      "<110>1 (\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z) ([!-~]{1,255}) ([!-~]{1,48}) "
      "([0-9]{1,128}) ([a-z_]{1,32}) \\[safegate@32473 seq=\"([1-9][0-9]*)\" "
      "leaf=\"([0-9a-f]{64})\" chain=\"([0-9a-f]{64})\" area=\"([a-z0-9-]+)\"\\]");
  Parsed p;
  // HEADER SP STRUCTURED-DATA SP BOM MSG; the header and the structured data never hold "] "
  // followed by a BOM, so the first one ends them.
  const std::string kEnd = "] \xEF\xBB\xBF";
  const size_t end = message.find(kEnd);
  std::smatch m;
  const std::string head = end == std::string::npos ? message : message.substr(0, end + 1);
  if (end == std::string::npos || !std::regex_match(head, m, kHeader)) {
    p.why = "not an RFC 5424 message of the documented shape: " + message.substr(0, 200);
    return p;
  }
  p.ok = true;
  p.timestamp = m[1];
  p.hostname = m[2];
  p.app_name = m[3];
  p.procid = m[4];
  p.msgid = m[5];
  p.seq = std::stoll(m[6]);
  p.leaf = m[7];
  p.chain = m[8];
  p.area = m[9];
  p.entry = message.substr(end + kEnd.size());
  return p;
}

struct StoredEntry {
  std::string entry;
  std::string hash;  // raw
};

// Every entry of the gateway's log, by seq, read straight from its database (read-only).
std::map<int64_t, StoredEntry> StoredLog(const std::string& data_dir) {
  std::map<int64_t, StoredEntry> out;
  sqlite3* db = nullptr;
  const std::string path = data_dir + "/safegate.db";
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return out;
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT seq, entry, hash FROM audit ORDER BY seq", -1, &stmt,
                         nullptr) == SQLITE_OK) {
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      StoredEntry e;
      e.entry.assign(static_cast<const char*>(sqlite3_column_blob(stmt, 1)),
                     static_cast<size_t>(sqlite3_column_bytes(stmt, 1)));
      e.hash.assign(static_cast<const char*>(sqlite3_column_blob(stmt, 2)),
                    static_cast<size_t>(sqlite3_column_bytes(stmt, 2)));
      out[sqlite3_column_int64(stmt, 0)] = std::move(e);
    }
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

class AuditForwardTest : public SandboxTest {
 protected:
  const Sandbox::Area& Bradford() { return sandbox().area("bradford"); }
  std::string Cert(const std::string& name) { return sandbox().CertsDir() + "/" + name; }

  // A collector presenting the certificate of a gateway (SAN localhost and 127.0.0.1, from the
  // sandbox's CA).
  std::unique_ptr<Collector> StartCollector(uint16_t port = 0, bool require_client_cert = false) {
    Collector::Options o;
    o.cert = Cert("gateway-bradford.pem");
    o.key = Cert("gateway-bradford.key");
    if (require_client_cert) o.client_ca = Cert("ca.pem");
    o.port = port;
    auto c = std::make_unique<Collector>(o);
    const std::string error = c->Start();
    EXPECT_EQ(error, "");
    return c;
  }

  // Restarts the Bradford gateway with [audit.forward] (`extra` lines added) in its config.
  void EnableForwarding(uint16_t port, const std::string& extra = "",
                        const std::string& ca = "ca.pem",
                        const std::string& server_name = "localhost") {
    ASSERT_TRUE(sandbox().Stop("bradford", SIGTERM).ok());
    std::ofstream config(Bradford().config, std::ios::app);
    config << "\n[audit.forward]\naddress = \"127.0.0.1:" << port << "\"\nca = \"" << Cert(ca)
           << "\"\nserver_name = \"" << server_name << "\"\nretry_initial = \"20ms\"\n"
           << "retry_max = \"200ms\"\npoll_interval = \"20ms\"\ntimeout = \"5s\"\n"
           << extra;
    config.close();
    Status restarted = sandbox().Restart("bradford");
    ASSERT_TRUE(restarted.ok()) << restarted.ToString() << sandbox().LogTails();
  }

  // Pushes a flag about a fresh synthetic child; returns the subject reference.
  std::string Push(int serial) {
    const std::string nhs = TestNhsNumber(serial);
    auto pushed = Client("wyp").PostJson(
        "/v1/records", PushBody(CseFlag(nhs, "OCC-2026-" + std::to_string(100000 + serial)),
                                {"bradford-csc", "bthft"}));
    EXPECT_TRUE(pushed.ok()) << pushed.status().ToString();
    if (pushed.ok()) {
      EXPECT_EQ(pushed->status, 201) << pushed->Describe();
    }
    return NhsRef(nhs);
  }

  // Waits until the collector holds every entry the log has now (by seq).
  bool WaitForAll(Collector& c) {
    const int64_t last = StoredLog(Bradford().data_dir).rbegin()->first;
    return Eventually([&] {
      for (const auto& m : c.Messages()) {
        Parsed p = Parse(m);
        if (p.ok && p.seq == last) return true;
      }
      return false;
    });
  }

  // Checks every message against the stored log (bytes, leaf, chain, header) and that the
  // seqs received cover 1..last without a gap. Returns the seqs in arrival order.
  std::vector<int64_t> CheckAgainstLog(const std::vector<std::string>& messages,
                                       const std::vector<std::string>& refs) {
    const auto log = StoredLog(Bradford().data_dir);
    std::vector<int64_t> order;
    std::set<int64_t> seen;
    for (const std::string& message : messages) {
      for (const std::string& ref : refs) {
        EXPECT_EQ(message.find(ref), std::string::npos) << "subject reference sent: " << message;
        // The bare NHS number too (the reference is "nhs:" + it).
        EXPECT_EQ(message.find(ref.substr(4)), std::string::npos) << message;
      }
      Parsed p = Parse(message);
      EXPECT_TRUE(p.ok) << p.why;
      if (!p.ok) continue;
      order.push_back(p.seq);
      seen.insert(p.seq);
      auto it = log.find(p.seq);
      EXPECT_NE(it, log.end()) << "seq " << p.seq << " is not in the log";
      if (it == log.end()) continue;
      EXPECT_EQ(p.entry, it->second.entry) << "seq " << p.seq;
      EXPECT_EQ(p.leaf, Sha256Hex(std::string(1, '\0') + it->second.entry)) << "seq " << p.seq;
      EXPECT_EQ(p.chain, Hex(reinterpret_cast<const unsigned char*>(it->second.hash.data()),
                             it->second.hash.size()));
      json entry = json::parse(p.entry, nullptr, false);
      EXPECT_TRUE(entry.is_object()) << p.entry;
      if (!entry.is_object()) continue;
      EXPECT_EQ(entry.value("seq", int64_t{0}), p.seq);
      EXPECT_EQ(entry.value("at", ""), p.timestamp);
      EXPECT_EQ(entry.value("action", ""), p.msgid);
      EXPECT_EQ(p.app_name, "safegate");
      EXPECT_EQ(p.area, "bradford");
    }
    // No gap: every seq from 1 to the last one received.
    if (!seen.empty()) {
      EXPECT_EQ(*seen.begin(), 1);
      EXPECT_EQ(static_cast<int64_t>(seen.size()), *seen.rbegin())
          << "a seq between 1 and " << *seen.rbegin() << " never arrived";
    }
    // The chain links: h_n = SHA-256(h_{n-1} || entry_n), recomputed from what was sent.
    std::string h(32, '\0');
    for (int64_t seq : seen) {
      h = Sha256Raw(h + log.at(seq).entry);
      EXPECT_EQ(h, log.at(seq).hash) << "seq " << seq;
    }
    return order;
  }

  std::string GatewayLog() { return ReadFile(Bradford().log); }

  // Waits until the gateway's log, after `log_from`, reports a forwarding failure at the TLS
  // stage mentioning `detail`, and the failure is counted in /metrics.
  void ExpectTlsRefusal(size_t log_from, std::string_view detail) {
    ASSERT_TRUE(Eventually([&] {
      const std::string log = GatewayLog().substr(log_from);
      return log.find("\"event\":\"audit_forward_error\"") != std::string::npos &&
             log.find("\"stage\":\"tls\"") != std::string::npos &&
             log.find(detail) != std::string::npos;
    })) << GatewayLog().substr(log_from);
    ASSERT_TRUE(Eventually([&] {
      return Metric(LoopbackGet(Bradford().admin_port, "/metrics"),
                    "safegate_audit_forward_failures_total{reason=\"tls\"}") >= 1;
    }));
  }
};

TEST_F(AuditForwardTest, EntriesArriveInOrderAsRfc5424OverMutualTls) {
  auto collector = StartCollector(0, /*require_client_cert=*/true);
  EnableForwarding(collector->port(), "cert = \"" + Cert("gateway-bradford.pem") + "\"\nkey = \"" +
                                          Cert("gateway-bradford.key") +
                                          "\"\nhostname = \"gw.bradford.test\"\n");
  std::vector<std::string> refs;
  for (int i = 0; i < 3; ++i) refs.push_back(Push(201 + i));
  ASSERT_TRUE(WaitForAll(*collector)) << sandbox().LogTails();

  const auto messages = collector->Messages();
  EXPECT_TRUE(collector->Errors().empty()) << collector->Errors().front();
  const std::vector<int64_t> order = CheckAgainstLog(messages, refs);
  // One connection, no repeats: strictly 1, 2, 3, ...
  for (size_t i = 0; i < order.size(); ++i) EXPECT_EQ(order[i], static_cast<int64_t>(i + 1));
  EXPECT_EQ(Parse(messages.front()).hostname, "gw.bradford.test");
  EXPECT_EQ(Parse(messages.front()).msgid, "record_accepted");
  // The gateway presented its client certificate.
  ASSERT_FALSE(collector->ClientSubjects().empty());

  // What an operator sees: the connection in the log and the cursor in /metrics.
  EXPECT_NE(GatewayLog().find("\"event\":\"audit_forward_connected\""), std::string::npos);
  ASSERT_TRUE(Eventually([&] {
    const std::string page = LoopbackGet(Bradford().admin_port, "/metrics");
    return Metric(page, "safegate_audit_forward_connected") == 1 &&
           Metric(page, "safegate_audit_forward_backlog") >= 0 &&
           Metric(page, "safegate_audit_forward_last_seq") >= static_cast<double>(order.size());
  })) << LoopbackGet(Bradford().admin_port, "/metrics");
  // The cursor file names the last entry forwarded.
  const json cursor = json::parse(ReadFile(Bradford().data_dir + "/audit-forward.json"), nullptr,
                                  false);
  ASSERT_TRUE(cursor.is_object());
  EXPECT_GE(cursor.value("seq", int64_t{0}), static_cast<int64_t>(order.size()));
}

TEST_F(AuditForwardTest, CollectorDownWhileRecordsArePushedLosesNothing) {
  auto collector = StartCollector();
  const uint16_t port = collector->port();
  EnableForwarding(port);
  std::vector<std::string> refs = {Push(211)};
  ASSERT_TRUE(WaitForAll(*collector)) << sandbox().LogTails();
  std::vector<std::string> messages = collector->Messages();
  collector->Stop();

  // While the collector is away, records are pushed: they wait in the log.
  for (int i = 0; i < 4; ++i) refs.push_back(Push(212 + i));
  ASSERT_TRUE(Eventually([&] {
    const std::string page = LoopbackGet(Bradford().admin_port, "/metrics");
    return Metric(page, "safegate_audit_forward_connected") == 0 &&
           Metric(page, "safegate_audit_forward_backlog") > 0;
  })) << LoopbackGet(Bradford().admin_port, "/metrics");
  EXPECT_NE(GatewayLog().find("\"event\":\"audit_forward_disconnected\""), std::string::npos);

  // It comes back on the same port: everything arrives, in order.
  collector = StartCollector(port);
  ASSERT_TRUE(WaitForAll(*collector)) << sandbox().LogTails();
  const auto later = collector->Messages();
  messages.insert(messages.end(), later.begin(), later.end());
  EXPECT_TRUE(collector->Errors().empty());
  const std::vector<int64_t> order = CheckAgainstLog(messages, refs);
  // Nothing was written while the collector was away, so nothing came twice: strictly
  // increasing across both connections.
  for (size_t i = 1; i < order.size(); ++i) EXPECT_EQ(order[i], order[i - 1] + 1);
  ASSERT_TRUE(Eventually([&] {
    return Metric(LoopbackGet(Bradford().admin_port, "/metrics"),
                  "safegate_audit_forward_backlog") == 0;
  }));
}

TEST_F(AuditForwardTest, KilledGatewayResumesFromItsCursor) {
  auto collector = StartCollector();
  EnableForwarding(collector->port());
  std::vector<std::string> refs;
  for (int i = 0; i < 3; ++i) refs.push_back(Push(221 + i));
  ASSERT_TRUE(WaitForAll(*collector)) << sandbox().LogTails();
  // More entries, and a kill straight after them: some may be in flight or sent but not yet
  // under the cursor.
  for (int i = 0; i < 3; ++i) refs.push_back(Push(224 + i));
  ASSERT_TRUE(sandbox().Stop("bradford", SIGKILL).ok());
  Status restarted = sandbox().Restart("bradford");
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();
  refs.push_back(Push(227));
  ASSERT_TRUE(WaitForAll(*collector)) << sandbox().LogTails();

  const auto messages = collector->Messages();
  const std::vector<int64_t> order = CheckAgainstLog(messages, refs);  // no gap, bytes match
  // At least once: entries sent before the kill but not yet under the cursor may come again
  // after the restart, and only there. So the arrival order increases by one at every step
  // but at most one, the reconnection after the restart, where it may go back to just after
  // the cursor; each repeat is byte for byte what was sent the first time (checked above
  // against the log).
  int steps_back = 0;
  for (size_t i = 1; i < order.size(); ++i) {
    if (order[i] == order[i - 1] + 1) continue;
    ++steps_back;
    EXPECT_LE(order[i], order[i - 1]) << "a gap between " << order[i - 1] << " and " << order[i];
  }
  EXPECT_LE(steps_back, 1);
  EXPECT_NE(GatewayLog().find("\"resume_after_seq\""), std::string::npos);
}

// The collector's certificate is from the sandbox CA and names localhost and 127.0.0.1.
// Told to trust another CA, or to expect another name, the gateway refuses the connection,
// sends nothing, logs the error and counts it; the gateway itself keeps working.
TEST_F(AuditForwardTest, WrongCaIsRefusedNothingSentErrorLoggedAndCounted) {
  auto collector = StartCollector();
  const size_t log_before = GatewayLog().size();
  EnableForwarding(collector->port(), "", "rogue-ca.pem");
  Push(231);

  ExpectTlsRefusal(log_before, "");
  if (HasFatalFailure()) return;
  EXPECT_TRUE(collector->Messages().empty());
  EXPECT_EQ(collector->Handshakes(), 0);
  const std::string page = LoopbackGet(Bradford().admin_port, "/metrics");
  EXPECT_EQ(Metric(page, "safegate_audit_forward_connected"), 0);
  EXPECT_GT(Metric(page, "safegate_audit_forward_backlog"), 0);
  EXPECT_EQ(Metric(page, "safegate_audit_forward_last_seq"), 0);
}

TEST_F(AuditForwardTest, WrongServerNameIsRefused) {
  auto collector = StartCollector();
  const size_t log_before = GatewayLog().size();
  EnableForwarding(collector->port(), "", "ca.pem", "collector.example.org");
  Push(241);

  ExpectTlsRefusal(log_before, "collector.example.org");
  if (HasFatalFailure()) return;
  EXPECT_TRUE(collector->Messages().empty());
  EXPECT_EQ(collector->Handshakes(), 0);
}

TEST_F(AuditForwardTest, BadConfigValuesAreRefusedNamingTheKey) {
  const std::string base = ReadFile(Bradford().config);
  struct Case {
    std::string section;
    std::string key;
  };
  const std::string ca = "ca = \"" + Cert("ca.pem") + "\"\n";
  for (const Case& c : {
           Case{"address = \"127.0.0.1\"\n" + ca, "audit.forward.address"},
           Case{"address = \"127.0.0.1:6514\"\n", "audit.forward.ca"},
           Case{"address = \"127.0.0.1:6514\"\nca = \"" + Cert("nope.pem") + "\"\n",
                "audit.forward.ca"},
           Case{"address = \"127.0.0.1:6514\"\n" + ca + "cert = \"" + Cert("wyp.pem") + "\"\n",
                "audit.forward.cert"},
           Case{"address = \"127.0.0.1:6514\"\n" + ca + "retry_max = \"soon\"\n",
                "audit.forward.retry_max"},
           Case{"address = \"127.0.0.1:6514\"\n" + ca + "app_name = \"safe gate\"\n",
                "audit.forward.app_name"},
       }) {
    const std::string file = sandbox().dir() + "/bad-forward.toml";
    std::ofstream(file, std::ios::trunc) << base << "\n[audit.forward]\n" << c.section;
    std::string output;
    Result<int> rc = RunProgram({SafegatedPath(), "--check-config", file}, &output);
    ASSERT_TRUE(rc.ok()) << rc.status().ToString();
    EXPECT_EQ(*rc, 2) << output;
    EXPECT_NE(output.find(file), std::string::npos) << output;
    EXPECT_NE(output.find(c.key + ": "), std::string::npos) << c.key << ": " << output;
  }
}

// A real collector: rsyslogd (Debian packages rsyslog and rsyslog-gnutls) with imtcp over the
// gtls driver, listening on a port of its choosing (listenPortFileName), writing each
// message's MSGID, structured data and MSG to a file. scripts/setup installs both packages.
TEST_F(AuditForwardTest, RsyslogReceivesTheFrames) {
  const std::string rsyslogd = "/usr/sbin/rsyslogd";
  if (::access(rsyslogd.c_str(), X_OK) != 0 ||
      !std::filesystem::exists("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so")) {
    FAIL() << "rsyslogd with the gtls driver is not installed (Debian packages rsyslog, "
              "rsyslog-gnutls; scripts/setup installs them)";
  }
  const std::string dir = sandbox().dir() + "/rsyslog";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/rsyslog.conf")
      << "global(workDirectory=\"" << dir << "\"\n"
      << "  DefaultNetstreamDriver=\"gtls\"\n"
      << "  DefaultNetstreamDriverCAFile=\"" << Cert("ca.pem") << "\"\n"
      << "  DefaultNetstreamDriverCertFile=\"" << Cert("gateway-bradford.pem") << "\"\n"
      << "  DefaultNetstreamDriverKeyFile=\"" << Cert("gateway-bradford.key") << "\")\n"
      << "module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" "
         "StreamDriver.AuthMode=\"anon\")\n"
      << "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"0\" listenPortFileName=\"" << dir
      << "/port\")\n"
      << "template(name=\"t\" type=\"string\" string=\"%msgid%|%structured-data%|%msg%\\n\")\n"
      << "action(type=\"omfile\" file=\"" << dir << "/out.log\" template=\"t\")\n";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string log = dir + "/rsyslogd.out";
    FILE* out = std::freopen(log.c_str(), "w", stdout);
    (void)out;
    ::dup2(STDOUT_FILENO, STDERR_FILENO);
    ::execl(rsyslogd.c_str(), "rsyslogd", "-n", "-f", (dir + "/rsyslog.conf").c_str(), "-i",
            (dir + "/rsyslogd.pid").c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  struct Reap {
    pid_t pid;
    ~Reap() {
      ::kill(pid, SIGTERM);
      int status = 0;
      ::waitpid(pid, &status, 0);
    }
  } reap{pid};
  ASSERT_TRUE(Eventually([&] { return !ReadFile(dir + "/port").empty(); }))
      << ReadFile(dir + "/rsyslogd.out");
  const int port = std::stoi(ReadFile(dir + "/port"));

  EnableForwarding(static_cast<uint16_t>(port));
  const std::vector<std::string> refs = {Push(251), Push(252)};
  const auto log = StoredLog(Bradford().data_dir);
  const int64_t last = log.rbegin()->first;
  ASSERT_TRUE(Eventually([&] {
    return ReadFile(dir + "/out.log").find("seq=\"" + std::to_string(last) + "\"") !=
           std::string::npos;
  })) << ReadFile(dir + "/rsyslogd.out") << sandbox().LogTails();

  // One line per entry, in order, each as rsyslog parsed it: MSGID the action, the
  // structured data with the seq, MSG the BOM and the entry bytes.
  std::istringstream lines(ReadFile(dir + "/out.log"));
  std::string line;
  int64_t expected = 1;
  while (std::getline(lines, line)) {
    const size_t bar1 = line.find('|');
    const size_t bar2 = line.find("]|\xEF\xBB\xBF");
    ASSERT_NE(bar1, std::string::npos) << line;
    ASSERT_NE(bar2, std::string::npos) << line;
    const std::string msgid = line.substr(0, bar1);
    const std::string sd = line.substr(bar1 + 1, bar2 + 1 - bar1 - 1);
    const std::string msg = line.substr(bar2 + 2);
    ASSERT_TRUE(log.count(expected)) << expected;
    const std::string& entry = log.at(expected).entry;
    EXPECT_EQ(sd.rfind("[safegate@32473 seq=\"" + std::to_string(expected) + "\" leaf=\"" +
                           Sha256Hex(std::string(1, '\0') + entry) + "\"",
                       0),
              0u)
        << sd;
    EXPECT_EQ(msg, "\xEF\xBB\xBF" + entry);
    EXPECT_EQ(msgid, json::parse(entry).value("action", ""));
    for (const std::string& ref : refs) EXPECT_EQ(line.find(ref.substr(4)), std::string::npos);
    ++expected;
  }
  EXPECT_EQ(expected, last + 1) << ReadFile(dir + "/out.log");
}

}  // namespace
}  // namespace safegate::testing
