// The real Server, in-process on 127.0.0.1 port 0, with certificates from certs/make-dev-certs
// in a temporary directory, a real Gateway (SQLite in a temporary data directory), and an
// mTLS client. Waits are on conditions with a bound, never on the clock alone.
#include "daemon/server/server.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "config/config.h"
#include "config/test_support.h"
#include "daemon/audit/encoding.h"
#include "daemon/audit/merkle.h"
#include "daemon/audit/tree_head.h"
#include "daemon/core/clock.h"
#include "daemon/core/gateway.h"
#include "daemon/server/test_client.h"
#include "record/record.h"

namespace safegate::server {
namespace {

using config::testing::MakeDevCerts;
using config::testing::Quoted;
using config::testing::ReadFile;
using config::testing::RunShell;
using config::testing::TempDir;
using config::testing::WriteFile;
using nlohmann::json;
using testing::ClientIdentity;
using testing::HttpResponse;
using testing::TestClient;

constexpr auto kBound = std::chrono::seconds(20);
constexpr const char* kNhs = "9990000018";  // test range, valid check digit

// Polls `condition` until it holds or `bound` passes; true if it held.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds bound = kBound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

// The value of one series in a Prometheus exposition, -1 when absent.
double MetricValue(const std::string& text, const std::string& series) {
  const std::string prefix = series + " ";
  size_t pos = 0;
  while ((pos = text.find(prefix, pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') return std::stod(text.substr(pos + prefix.size()));
    pos += prefix.size();
  }
  return -1;
}

json Flag(const std::string& record_id, int version = 1) {
  return {
      {"kind", "flag"},
      {"subject",
       {{"nhs_number", kNhs},
        {"local_ids", {{{"system", "csc:bradford"}, {"value", "BRA-900001"}}}},
        {"given_name", "Testchild"},
        {"family_name", "Synthetic"},
        {"birth_date", "2015-06-01"},
        {"postcode", "BD3 9AB"}}},
      {"source",
       {{"agency", "wyp"},
        {"system", "niche"},
        {"record_id", record_id},
        {"version", version},
        {"recorded_at", "2025-10-31T09:12:00Z"}}},
      {"classification",
       {{"special_category", false},
        {"criminal_offence", true},
        {"schedule12a", {1, 2, 7}},
        {"handling", "P"}}},
      {"body",
       {{"type", "cse_risk"},
        {"level", "high"},
        {"status", "active"},
        {"start", "2025-10-31"},
        {"end", nullptr},
        {"review_by", "2026-01-31"},
        {"owner_agency", "wyp"},
        {"contact", {{"office_hours", "01274 000000"}, {"out_of_hours", "01274 000001"}}}}},
  };
}

std::string PushBody(const json& record, const std::vector<std::string>& recipients) {
  return json{{"record", record}, {"purpose", "safeguarding"}, {"recipients", recipients}}.dump();
}

// Delegates to a real Gateway but holds pushes until released, so that a test can stop the
// server while a request is in flight.
class HoldingGateway final : public Gateway {
 public:
  explicit HoldingGateway(std::unique_ptr<Gateway> inner) : inner_(std::move(inner)) {}

  size_t held() const {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  void Release() {
    std::vector<std::function<void()>> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
    }
    for (auto& f : held) f();
  }

  void SetRegistry(std::shared_ptr<const config::Registry> r) override {
    inner_->SetRegistry(std::move(r));
  }
  void Push(const Caller& caller, PushRequest request, Callback<PushOutcome> done) override {
    std::lock_guard lock(mu_);
    held_.push_back([this, caller, request, done] { inner_->Push(caller, request, done); });
  }
  void ReadMailbox(const Caller& c, int limit, std::string after,
                   Callback<MailboxPage> done) override {
    inner_->ReadMailbox(c, limit, std::move(after), std::move(done));
  }
  void Ack(const Caller& c, std::string id, Callback<Empty> done) override {
    inner_->Ack(c, std::move(id), std::move(done));
  }
  void GetRecord(const Caller& c, std::string id, Callback<json> done) override {
    inner_->GetRecord(c, std::move(id), std::move(done));
  }
  void QueryAudit(const Caller& c, AuditFilter f, Callback<AuditPage> done) override {
    inner_->QueryAudit(c, std::move(f), std::move(done));
  }
  void VerifyAudit(const Caller& c, Callback<VerifyReport> done) override {
    inner_->VerifyAudit(c, std::move(done));
  }
  void Reject(Rejection r, Callback<Empty> done) override {
    inner_->Reject(std::move(r), std::move(done));
  }
  void SweepDeadlines(int64_t now_ms, Callback<SweepReport> done) override {
    inner_->SweepDeadlines(now_ms, std::move(done));
  }
  Stats GetStats() override { return inner_->GetStats(); }
  void Shutdown() override { inner_->Shutdown(); }

 private:
  std::unique_ptr<Gateway> inner_;
  mutable std::mutex mu_;
  std::vector<std::function<void()>> held_;
};

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new TempDir();
    MakeDevCerts(pki_->path().string());
  }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }

  static std::string Cert(const std::string& name) { return *pki_ / (name + ".pem"); }
  static std::string Key(const std::string& name) { return *pki_ / (name + ".key"); }
  static std::string Ca() { return *pki_ / "ca.pem"; }

  // The registry: Bradford's agencies, not Cambridgeshire's (their certificates chain to
  // the same CA, so they serve as "valid but unregistered").
  std::string RegistryToml(bool with_wyp = true) const {
    std::string out;
    auto agency = [&](const char* id, const char* role) {
      out += std::string("[[agency]]\nid = \"") + id + "\"\nname = \"" + id + "\"\nrole = \"" +
             role + "\"\narea = \"bradford\"\ncertificates = [" + Quoted(Cert(id)) + "]\n\n";
    };
    if (with_wyp) agency("wyp", "police");
    agency("bradford-csc", "csc");
    agency("bthft", "health");
    agency("bradford-audit", "audit");
    // TOML literal strings use single quotes, as Quoted() does.
    return out;
  }

  void SetUp() override {
    dir_ = std::make_unique<TempDir>();
    WriteFile(*dir_ / "registry.toml", RegistryToml());
    std::filesystem::create_directories(*dir_ / "data");
  }

  void TearDown() override { Stop(); }

  void Start(const std::function<void(config::Config&)>& tweak = {}, bool hold_pushes = false) {
    auto config = std::make_shared<config::Config>();
    config->source_file = *dir_ / "safegated.toml";
    config->area = "bradford";
    config->data_dir = *dir_ / "data";
    config->registry = *dir_ / "registry.toml";
    config->tls.cert = Cert("gateway-bradford");
    config->tls.key = Key("gateway-bradford");
    config->tls.ca = Ca();
    config->tls.crl = *pki_ / "crl.pem";
    config->limits.max_body_bytes = 64 * 1024;
    config->limits.max_header_bytes = 8 * 1024;
    // SAFEGATE_TEST_LOG=debug shows the server's log while debugging a test.
    const char* level = std::getenv("SAFEGATE_TEST_LOG");
    config->log.level = level != nullptr ? level : "warn";
    config->mailbox.sweep_interval = std::chrono::hours(1);
    if (tweak) tweak(*config);
    config_ = config;

    auto registry =
        std::make_shared<const config::Registry>(config::LoadRegistry(config_->registry));
    GatewayOptions options;
    options.config = config_;
    options.registry = registry;
    options.clock = &clock_;
    auto gateway = Gateway::Open(std::move(options));
    ASSERT_TRUE(gateway.ok()) << gateway.status().ToString();
    gateway_ = std::move(gateway).value();
    if (hold_pushes) {
      auto holding = std::make_unique<HoldingGateway>(std::move(gateway_));
      holding_ = holding.get();
      gateway_ = std::move(holding);
    }
    auto server = Server::Create(config_, registry, gateway_.get(), &clock_,
                                 ServerOptions{.handle_signals = false});
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    thread_ = std::thread([this] { run_status_ = server_->Run(); });
    ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(*dir_ / "data/ports.json"); }));
  }

  void Stop() {
    if (!server_) return;
    server_->RequestStop();
    thread_.join();
    EXPECT_TRUE(run_status_.ok()) << run_status_.ToString();
    server_.reset();
    gateway_.reset();
  }

  std::unique_ptr<TestClient> Connect(const std::string& who) {
    auto client = TestClient::Connect(server_->port(), Ca(), ClientIdentity{Cert(who), Key(who)});
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? std::move(client).value() : nullptr;
  }

  HttpResponse Call(const std::string& who, const std::string& method, const std::string& target,
                    const std::string& body = "") {
    auto client = Connect(who);
    if (!client) return {};
    auto res = client->Request(method, target, body);
    EXPECT_TRUE(res.ok()) << res.status().ToString();
    return res.ok() ? *res : HttpResponse{};
  }

  // True when a client presenting `who` gets no HTTP answer at all.
  bool Refused(const std::optional<std::string>& who) {
    std::optional<ClientIdentity> id;
    if (who) id = ClientIdentity{Cert(*who), Key(*who)};
    auto client = TestClient::Connect(server_->port(), Ca(), id);
    if (!client.ok()) return true;  // refused during the handshake
    // TLS 1.3: the server judges the client certificate after the client's handshake is
    // done; the refusal arrives as an alert on the first read.
    return !(*client)->Request("GET", "/v1/mailbox").ok();
  }

  json Audit(const std::string& query) {
    const HttpResponse res =
        Call("bradford-audit", "GET", "/v1/audit?purpose=audit_check&" + query);
    EXPECT_EQ(res.status, 200) << res.body;
    return res.Json();
  }

  std::string Metrics() {
    auto client = TestClient::Connect(server_->admin_port(), std::nullopt, std::nullopt);
    if (!client.ok()) return "";
    auto res = (*client)->Request("GET", "/metrics");
    return res.ok() ? res->body : "";
  }

  static TempDir* pki_;
  std::unique_ptr<TempDir> dir_;
  ManualClock clock_{1'767'225'600'000};  // 2026-01-01T00:00:00Z
  std::shared_ptr<const config::Config> config_;
  std::unique_ptr<Gateway> gateway_;
  HoldingGateway* holding_ = nullptr;  // when Start(..., hold_pushes = true)
  std::unique_ptr<Server> server_;
  std::thread thread_;
  Status run_status_;
};

TempDir* ServerTest::pki_ = nullptr;

TEST_F(ServerTest, WritesPortsFileWithTheBoundPorts) {
  Start();
  const json ports = json::parse(ReadFile(*dir_ / "data/ports.json"));
  EXPECT_EQ(ports["listen"], server_->port());
  EXPECT_EQ(ports["admin"], server_->admin_port());
  EXPECT_NE(server_->port(), 0);
  EXPECT_NE(server_->admin_port(), 0);
  EXPECT_FALSE(std::filesystem::exists(*dir_ / "data/ports.json.tmp"));
}

TEST_F(ServerTest, PushMailboxAckHappyPath) {
  Start();
  auto wyp = Connect("wyp");
  ASSERT_TRUE(wyp);
  const std::string body = PushBody(Flag("OCC-1"), {"bradford-csc"});
  auto pushed = wyp->Request("POST", "/v1/records", body);
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  ASSERT_EQ(pushed->status, 201) << pushed->body;
  EXPECT_EQ(pushed->headers["content-type"], "application/json");
  const json outcome = pushed->Json();
  ASSERT_EQ(outcome["deliveries"].size(), 1u) << outcome;
  EXPECT_EQ(outcome["deliveries"][0]["recipient"], "bradford-csc");
  const std::string record_id = outcome["record_id"];

  // The same push again on the same connection (keep-alive): 200 and the first answer.
  auto again = wyp->Request("POST", "/v1/records", body);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->status, 200) << again->body;
  EXPECT_EQ(again->Json()["record_id"], record_id);

  auto csc = Connect("bradford-csc");
  ASSERT_TRUE(csc);
  auto mailbox = csc->Request("GET", "/v1/mailbox?limit=10");
  ASSERT_TRUE(mailbox.ok());
  ASSERT_EQ(mailbox->status, 200) << mailbox->body;
  const json messages = mailbox->Json()["messages"];
  ASSERT_EQ(messages.size(), 1u) << mailbox->body;
  EXPECT_EQ(messages[0]["record_id"], record_id);
  EXPECT_EQ(messages[0]["from"], "wyp");
  const std::string message_id = messages[0]["message_id"];

  auto record = csc->Request("GET", "/v1/records/" + record_id);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->status, 200) << record->body;

  // Another agency cannot ack it: 404, as if it did not exist.
  auto stranger = Call("bthft", "POST", "/v1/mailbox/" + message_id + "/ack");
  EXPECT_EQ(stranger.status, 404) << stranger.body;

  auto ack = csc->Request("POST", "/v1/mailbox/" + message_id + "/ack");
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->status, 204) << ack->body;
  EXPECT_TRUE(ack->body.empty());
}

TEST_F(ServerTest, PushWithProblemsNamesEachOne) {
  Start();
  json body = {{"record", Flag("OCC-2")},
               {"purpose", "Not A Slug"},
               {"recipients", json::array()},
               {"extra", 1}};
  body["record"]["kind"] = "nonsense";
  const HttpResponse res = Call("wyp", "POST", "/v1/records", body.dump());
  ASSERT_EQ(res.status, 422) << res.body;
  const json error = res.Json();
  EXPECT_EQ(error["error"], "invalid_input");
  std::set<std::string> where;
  for (const auto& p : error["problems"]) where.insert(p["where"].get<std::string>());
  EXPECT_TRUE(where.count("/extra")) << error;
  EXPECT_TRUE(where.count("/purpose")) << error;
  EXPECT_TRUE(where.count("/recipients")) << error;
  EXPECT_TRUE(where.count("/record/kind")) << error;
}

TEST_F(ServerTest, ClientWithoutCertificateIsRefused) {
  Start();
  EXPECT_TRUE(Refused(std::nullopt));
  EXPECT_TRUE(WaitFor([&] {
    return Metrics().find("safegate_tls_handshakes_total{result=\"no_certificate\"} 1") !=
           std::string::npos;
  }));
}

TEST_F(ServerTest, RefusedCertificatesAreAuditedAsTlsRejected) {
  Start();
  EXPECT_TRUE(Refused("rogue")) << "certificate from another CA";
  EXPECT_TRUE(Refused("wyp-revoked")) << "revoked certificate";
  EXPECT_TRUE(Refused("wyp-expired")) << "expired certificate";
  EXPECT_TRUE(Refused("cambs-csc")) << "valid certificate of an agency not in the registry";

  json entries;
  ASSERT_TRUE(WaitFor([&] {
    entries = Audit("action=tls_rejected")["entries"];
    return entries.size() >= 4;
  })) << entries;
  std::set<std::string> reasons;
  for (const auto& e : entries) {
    EXPECT_EQ(e["actor"], "-");
    for (const auto& r : e["reasons"]) reasons.insert(r.get<std::string>());
  }
  EXPECT_TRUE(reasons.count("certificate not issued by a trusted CA")) << entries;
  EXPECT_TRUE(reasons.count("certificate revoked")) << entries;
  EXPECT_TRUE(reasons.count("certificate expired")) << entries;
  EXPECT_TRUE(reasons.count("unregistered certificate")) << entries;

  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find("safegate_tls_rejections_total{reason=\"revoked\"} 1"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("safegate_tls_rejections_total{reason=\"expired\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("safegate_tls_rejections_total{reason=\"untrusted\"} 1"),
            std::string::npos);
  EXPECT_NE(metrics.find("safegate_tls_rejections_total{reason=\"unregistered\"} 1"),
            std::string::npos);
}

TEST_F(ServerTest, OversizedContentLengthGets413BeforeTheBodyIsRead) {
  Start();
  auto client = Connect("wyp");
  ASSERT_TRUE(client);
  // Only the header is sent: the answer must not wait for a body.
  ASSERT_TRUE(client
                  ->SendRaw("POST /v1/records HTTP/1.1\r\nHost: x\r\n"
                            "Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
                  .ok());
  auto res = client->ReadResponse();
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(res->Json()["error"], "payload_too_large");
  EXPECT_FALSE(res->keep_alive);
  EXPECT_TRUE(client->WaitForClose(kBound));
}

TEST_F(ServerTest, OversizedChunkedBodyGets413) {
  Start();
  auto client = Connect("wyp");
  ASSERT_TRUE(client);
  const std::string chunk(70 * 1024, 'x');
  char size[32];
  snprintf(size, sizeof size, "%zx", chunk.size());
  ASSERT_TRUE(client
                  ->SendRaw(std::string("POST /v1/records HTTP/1.1\r\nHost: x\r\n"
                                        "Content-Type: application/json\r\n"
                                        "Transfer-Encoding: chunked\r\n\r\n") +
                            size + "\r\n" + chunk + "\r\n0\r\n\r\n")
                  .ok());
  auto res = client->ReadResponse();
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(res->Json()["error"], "payload_too_large");
}

TEST_F(ServerTest, HugeHeaderGets431) {
  Start();
  auto client = Connect("wyp");
  ASSERT_TRUE(client);
  ASSERT_TRUE(client
                  ->SendRaw("GET /v1/mailbox HTTP/1.1\r\nHost: x\r\nX-Filler: " +
                            std::string(20 * 1024, 'a') + "\r\n\r\n")
                  .ok());
  auto res = client->ReadResponse();
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 431);
  EXPECT_EQ(res->Json()["error"], "bad_request");
  EXPECT_EQ(res->headers["content-type"], "application/json");
}

TEST_F(ServerTest, WrongContentTypeGets415) {
  Start();
  auto client = Connect("wyp");
  ASSERT_TRUE(client);
  auto res = client->Request("POST", "/v1/records", PushBody(Flag("OCC-3"), {"bradford-csc"}),
                             "text/plain");
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 415);
  EXPECT_EQ(res->Json()["error"], "unsupported_media_type");
  // Parameters are allowed on the right type.
  auto ok = client->Request("POST", "/v1/records", PushBody(Flag("OCC-3"), {"bradford-csc"}),
                            "application/json; charset=utf-8");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 201) << ok->body;
}

TEST_F(ServerTest, MalformedJsonGets400NamingTheByteOffset) {
  Start();
  const HttpResponse res = Call("wyp", "POST", "/v1/records", R"({"record": {"kind": )");
  EXPECT_EQ(res.status, 400);
  const json error = res.Json();
  EXPECT_EQ(error["error"], "bad_request");
  EXPECT_NE(error["detail"].get<std::string>().find("byte offset 20"), std::string::npos) << error;
}

TEST_F(ServerTest, RoutingErrors) {
  Start();
  auto client = Connect("wyp");
  ASSERT_TRUE(client);
  auto missing = client->Request("GET", "/v1/nothing-here");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->Json()["error"], "not_found");

  auto method = client->Request("DELETE", "/v1/mailbox");
  ASSERT_TRUE(method.ok());
  EXPECT_EQ(method->status, 405);
  EXPECT_EQ(method->Json()["error"], "bad_request");
  EXPECT_EQ(method->headers["allow"], "GET");

  auto limit = client->Request("GET", "/v1/mailbox?limit=0");
  ASSERT_TRUE(limit.ok());
  EXPECT_EQ(limit->status, 400);
  EXPECT_NE(limit->Json()["detail"].get<std::string>().find("'limit'"), std::string::npos);

  auto unknown = client->Request("GET", "/v1/mailbox?colour=blue");
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->status, 400);
  EXPECT_NE(unknown->Json()["detail"].get<std::string>().find("'colour'"), std::string::npos);

  auto escape = client->Request("GET", "/v1/records/abc%zz");
  ASSERT_TRUE(escape.ok());
  EXPECT_EQ(escape->status, 400);

  // The police may not read the audit log.
  auto audit = client->Request("GET", "/v1/audit");
  ASSERT_TRUE(audit.ok());
  EXPECT_EQ(audit->status, 403);
  EXPECT_EQ(audit->Json()["error"], "forbidden");

  // Each refusal is in the audit log, attributed to the caller.
  json entries;
  ASSERT_TRUE(WaitFor([&] {
    entries = Audit("action=request_rejected&agency=wyp")["entries"];
    return entries.size() >= 6;
  })) << entries;
}

TEST_F(ServerTest, AuditQueryParametersAreChecked) {
  Start();
  auto client = Connect("bradford-audit");
  ASSERT_TRUE(client);
  auto from = client->Request("GET", "/v1/audit?from=yesterday");
  ASSERT_TRUE(from.ok());
  EXPECT_EQ(from->status, 400);
  EXPECT_NE(from->Json()["detail"].get<std::string>().find("'from'"), std::string::npos);
  auto subject = client->Request("GET", "/v1/audit?subject=nhs%3A1234567890");
  ASSERT_TRUE(subject.ok());
  EXPECT_EQ(subject->status, 400);
  EXPECT_NE(subject->Json()["detail"].get<std::string>().find("'subject'"), std::string::npos);
  auto ok =
      client->Request("GET", "/v1/audit?purpose=audit_check&subject=nhs%3A" + std::string(kNhs) +
                                 "&from=2020-01-01T00:00:00Z&to=2030-01-01T00:00:00%2B01:00");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200) << ok->body;
  auto verify = client->Request("GET", "/v1/audit/verify");
  ASSERT_TRUE(verify.ok());
  EXPECT_EQ(verify->status, 200);
  EXPECT_EQ(verify->Json()["ok"], true) << verify->body;
}

// The verifiable audit log's routes (API.md): a signed head, an inclusion proof and a
// consistency proof that check out with daemon/audit's verifier, and their refusals.
TEST_F(ServerTest, TreeHeadAndProofRoutes) {
  Start([](config::Config& c) { c.audit.sth_max_entries = 1; });  // a head at every commit
  ASSERT_EQ(Call("wyp", "POST", "/v1/records", PushBody(Flag("OCC-1"), {"bradford-csc"})).status,
            201);
  auto client = Connect("bradford-audit");
  ASSERT_TRUE(client);
  auto head_res = client->Request("GET", "/v1/audit/tree-head");
  ASSERT_TRUE(head_res.ok());
  ASSERT_EQ(head_res->status, 200) << head_res->body;
  const json head_json = head_res->Json();
  EXPECT_EQ(head_json.size(), 5u) << head_json;
  auto head = audit::TreeHeadFromJson(head_json);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_TRUE(audit::VerifyTreeHead(head->head, head->public_key).ok());
  const int64_t size = static_cast<int64_t>(head->head.tree_size);
  ASSERT_GE(size, 2);

  auto inclusion = client->Request(
      "GET", "/v1/audit/proof/inclusion?seq=1&tree_size=" + std::to_string(size));
  ASSERT_TRUE(inclusion.ok());
  ASSERT_EQ(inclusion->status, 200) << inclusion->body;
  const json proof = inclusion->Json();
  EXPECT_EQ(proof["leaf_index"], 0);
  EXPECT_EQ(proof["tree_size"], size);
  const std::string entry = audit::FromBase64(proof["entry"].get<std::string>()).value_or("");
  std::vector<audit::Hash> path;
  for (const json& p : proof["path"]) {
    path.push_back(audit::FixedFromHex<32>(p.get<std::string>()).value_or(audit::Hash{}));
  }
  EXPECT_EQ(proof["leaf_hash"], audit::HashHex(audit::LeafHash(entry)));
  EXPECT_TRUE(
      audit::VerifyInclusion(audit::LeafHash(entry), 0, head->head.tree_size, path,
                             head->head.root_hash)
          .ok());

  auto consistency = client->Request(
      "GET", "/v1/audit/proof/consistency?first=1&second=" + std::to_string(size));
  ASSERT_TRUE(consistency.ok());
  ASSERT_EQ(consistency->status, 200) << consistency->body;
  EXPECT_EQ(consistency->Json()["first"], 1);
  EXPECT_EQ(consistency->Json()["second"], size);

  struct Bad {
    const char* target;
    int status;
  };
  for (const Bad& b : {Bad{"/v1/audit/proof/inclusion", 400},
                       Bad{"/v1/audit/proof/inclusion?seq=one", 400},
                       Bad{"/v1/audit/proof/inclusion?seq=1&tree_size=0", 400},
                       Bad{"/v1/audit/proof/inclusion?seq=3&tree_size=2", 422},
                       Bad{"/v1/audit/proof/inclusion?seq=1&tree_size=100000", 422},
                       Bad{"/v1/audit/proof/consistency?first=1", 400},
                       Bad{"/v1/audit/proof/consistency?first=2&second=1", 422},
                       Bad{"/v1/audit/tree-head?x=1", 400}}) {
    auto res = client->Request("GET", b.target);
    ASSERT_TRUE(res.ok()) << b.target;
    EXPECT_EQ(res->status, b.status) << b.target << ": " << res->body;
  }
  EXPECT_EQ(Call("wyp", "GET", "/v1/audit/tree-head").status, 403);
  EXPECT_EQ(Call("bradford-csc", "GET", "/v1/audit/proof/inclusion?seq=1").status, 403);

  // Every read is in the log.
  const json reads = Audit("action=audit_queried&limit=1000");
  std::set<std::string> what;
  for (const json& e : reads["entries"]) what.insert(e["detail"].value("what", ""));
  for (const char* w : {"tree_head", "inclusion_proof", "consistency_proof"}) {
    EXPECT_TRUE(what.count(w)) << w;
  }
}

TEST_F(ServerTest, IdleConnectionIsClosedByTimeout) {
  Start([](config::Config& c) { c.limits.idle_timeout = std::chrono::milliseconds(200); });
  auto client = Connect("wyp");
  ASSERT_TRUE(client);
  auto res = client->Request("GET", "/v1/mailbox");  // served; then the connection idles
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(client->WaitForClose(kBound));
}

TEST_F(ServerTest, SilentTcpConnectionIsClosedByHandshakeTimeout) {
  Start([](config::Config& c) { c.limits.handshake_timeout = std::chrono::milliseconds(200); });
  auto client = TestClient::Connect(server_->port(), std::nullopt, std::nullopt);
  ASSERT_TRUE(client.ok());
  EXPECT_TRUE((*client)->WaitForClose(kBound));
  EXPECT_TRUE(WaitFor([&] {
    return Metrics().find("safegate_tls_handshakes_total{result=\"timeout\"} 1") !=
           std::string::npos;
  }));
}

TEST_F(ServerTest, ConnectionsOverTheCapAreClosedAtOnce) {
  Start([](config::Config& c) { c.limits.max_connections = 1; });
  auto first = Connect("wyp");
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->Request("GET", "/v1/mailbox").ok());
  auto second = TestClient::Connect(server_->port(), Ca(), ClientIdentity{Cert("wyp"), Key("wyp")});
  EXPECT_TRUE(!second.ok() || !(*second)->Request("GET", "/v1/mailbox").ok());
  EXPECT_NE(Metrics().find("safegate_connections_refused_total 1"), std::string::npos);
  // The first connection is unaffected.
  auto still = first->Request("GET", "/v1/mailbox");
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->status, 200);
}

TEST_F(ServerTest, ReloadKeepsEstablishedConnectionsAndAppliesTheNewRegistry) {
  Start();
  auto wyp = Connect("wyp");
  auto csc = Connect("bradford-csc");
  ASSERT_TRUE(wyp && csc);
  ASSERT_EQ(wyp->Request("GET", "/v1/mailbox")->status, 200);

  // A good reload: established connections keep working, new ones are accepted.
  ASSERT_TRUE(server_->Reload().ok());
  auto after = wyp->Request("GET", "/v1/mailbox");
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->status, 200);
  EXPECT_EQ(Call("bthft", "GET", "/v1/mailbox").status, 200);

  // A bad registry file: the reload fails, names the file, and nothing changes.
  WriteFile(*dir_ / "registry.toml", "[[agency]]\nid = \n");
  const Status bad = server_->Reload();
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.detail().find("registry.toml"), std::string::npos) << bad.ToString();
  EXPECT_EQ(wyp->Request("GET", "/v1/mailbox")->status, 200);
  EXPECT_EQ(Call("wyp", "GET", "/v1/mailbox").status, 200);

  // A registry without wyp: wyp's open connection is refused at its next request, new wyp
  // connections are refused at the handshake, others carry on.
  WriteFile(*dir_ / "registry.toml", RegistryToml(/*with_wyp=*/false));
  ASSERT_TRUE(server_->Reload().ok());
  auto gone = wyp->Request("GET", "/v1/mailbox");
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  EXPECT_EQ(gone->status, 401);
  EXPECT_EQ(gone->Json()["error"], "unauthenticated");
  EXPECT_TRUE(Refused("wyp"));
  auto csc_after = csc->Request("GET", "/v1/mailbox");
  ASSERT_TRUE(csc_after.ok());
  EXPECT_EQ(csc_after->status, 200);
}

TEST_F(ServerTest, AdminListenerServesHealthAndMetrics) {
  Start();
  EXPECT_EQ(Call("wyp", "GET", "/v1/mailbox").status, 200);
  auto client = TestClient::Connect(server_->admin_port(), std::nullopt, std::nullopt);
  ASSERT_TRUE(client.ok());
  auto health = (*client)->Request("GET", "/healthz");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->Json(), json({{"status", "ok"}}));
  auto metrics = (*client)->Request("GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->status, 200);
  for (const char* name :
       {"safegate_http_requests_total{route=\"/v1/mailbox\",status=\"200\"} 1",
        "safegate_http_request_duration_seconds_bucket{route=\"/v1/mailbox\",le=\"+Inf\"} 1",
        "safegate_tls_handshakes_total{result=\"ok\"}", "safegate_connections_open ",
        "safegate_audit_entries ", "safegate_store_commits_total ",
        "safegate_store_batch_size_mean ", "safegate_store_last_commit_seconds ",
        "# TYPE safegate_mailbox_depth gauge",
        "# TYPE safegate_mailbox_oldest_unacked_seconds gauge"}) {
    EXPECT_NE(metrics->body.find(name), std::string::npos) << name << "\n" << metrics->body;
  }
  auto missing = (*client)->Request("GET", "/nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
}

TEST_F(ServerTest, StopClosesIdleConnectionsAndReturns) {
  Start();
  auto client = Connect("wyp");
  ASSERT_TRUE(client);
  ASSERT_EQ(client->Request("GET", "/v1/mailbox")->status, 200);
  server_->RequestStop();
  EXPECT_TRUE(client->WaitForClose(kBound));
  thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_.ToString();
  server_.reset();
  gateway_.reset();
}

TEST_F(ServerTest, SweepsMailboxDeadlinesOnATimer) {
  Start([](config::Config& c) { c.mailbox.sweep_interval = std::chrono::milliseconds(20); });
  EXPECT_TRUE(WaitFor([&] {
    return MetricValue(Metrics(), "safegate_deadline_sweeps_total{result=\"ok\"}") >= 3;
  }));
}

TEST_F(ServerTest, StopLetsTheRequestInFlightFinish) {
  Start({}, /*hold_pushes=*/true);
  auto client = Connect("wyp");
  ASSERT_TRUE(client);
  const std::string body = PushBody(Flag("OCC-9"), {"bradford-csc"});
  ASSERT_TRUE(client
                  ->SendRaw("POST /v1/records HTTP/1.1\r\nHost: x\r\n"
                            "Content-Type: application/json\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body)
                  .ok());
  ASSERT_TRUE(WaitFor([&] { return holding_->held() == 1; }));
  server_->RequestStop();
  // The listener closes: new connections are refused while the push is still held.
  EXPECT_TRUE(WaitFor([&] {
    return !TestClient::Connect(server_->port(), Ca(), ClientIdentity{Cert("wyp"), Key("wyp")},
                                std::chrono::seconds(2))
                .ok();
  }));
  holding_->Release();
  auto res = client->ReadResponse();
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 201) << res->body;
  EXPECT_FALSE(res->keep_alive);
  EXPECT_TRUE(client->WaitForClose(kBound));
  thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_.ToString();
  server_.reset();
  gateway_.reset();
}

TEST_F(ServerTest, OnlyTls13IsSpoken) {
  Start();
  auto old = TestClient::Connect(server_->port(), Ca(), ClientIdentity{Cert("wyp"), Key("wyp")},
                                 std::chrono::seconds(10), TLS1_2_VERSION);
  EXPECT_FALSE(old.ok());
  EXPECT_TRUE(WaitFor([&] {
    return Metrics().find("safegate_tls_handshakes_total{result=\"failed\"} 1") !=
           std::string::npos;
  }));
}

TEST_F(ServerTest, AdminAddressMustBeLoopback) {
  auto config = std::make_shared<config::Config>();
  config->data_dir = *dir_ / "data";
  config->tls = {Cert("gateway-bradford"), Key("gateway-bradford"), Ca(), ""};
  config->admin.address = "0.0.0.0";
  config->log.level = "warn";
  GatewayOptions options;
  options.config = config;
  options.registry = std::make_shared<const config::Registry>();
  options.clock = &clock_;
  auto gateway = Gateway::Open(std::move(options));
  ASSERT_TRUE(gateway.ok()) << gateway.status().ToString();
  auto server = Server::Create(config, std::make_shared<const config::Registry>(), gateway->get(),
                               &clock_, ServerOptions{.handle_signals = false});
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().detail().find("admin.address"), std::string::npos);
  (*gateway)->Shutdown();
}

TEST_F(ServerTest, BadTlsFilesAreNamed) {
  config::Config config;
  config.tls = {Cert("gateway-bradford"), Key("wyp"), Ca(), ""};
  Status s = CheckTlsFiles(config);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.detail().find("tls.key"), std::string::npos) << s.ToString();
  config.tls = {Cert("gateway-bradford"), Key("gateway-bradford"), Ca(), Cert("wyp")};
  s = CheckTlsFiles(config);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.detail().find("tls.crl"), std::string::npos) << s.ToString();
  config.tls = {Cert("gateway-bradford"), Key("gateway-bradford"), Ca(), *pki_ / "crl.pem"};
  EXPECT_TRUE(CheckTlsFiles(config).ok());
}

// The daemon binary itself: argument handling and config errors.
class SafegatedTest : public ServerTest {};

TEST_F(SafegatedTest, CheckConfigAndErrors) {
  const std::string daemon = SAFEGATED_PATH;
  auto version = RunShell(Quoted(daemon) + " --version");
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_NE(version.output.find("safegated "), std::string::npos);

  auto usage = RunShell(Quoted(daemon) + " --frobnicate x");
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_NE(usage.output.find("usage:"), std::string::npos);

  const std::string good = *dir_ / "safegated.toml";
  WriteFile(good,
            "area = \"bradford\"\ndata_dir = \"data\"\nregistry = \"registry.toml\"\n"
            "[tls]\ncert = " +
                Quoted(Cert("gateway-bradford")) + "\nkey = " + Quoted(Key("gateway-bradford")) +
                "\nca = " + Quoted(Ca()) + "\ncrl = " + Quoted(*pki_ / "crl.pem") + "\n");
  auto check = RunShell(Quoted(daemon) + " --check-config " + Quoted(good));
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_EQ(check.output, good + ": ok\n");

  auto print = RunShell(Quoted(daemon) + " --print-config " + Quoted(good));
  EXPECT_EQ(print.exit_code, 0) << print.output;
  EXPECT_NE(print.output.find("area = \"bradford\""), std::string::npos) << print.output;

  const std::string bad = *dir_ / "bad.toml";
  WriteFile(bad, "area = \"bradford\"\nfrobnicate = 1\n");
  auto error = RunShell(Quoted(daemon) + " --check-config " + Quoted(bad));
  EXPECT_EQ(error.exit_code, 2);
  EXPECT_NE(error.output.find(bad + ":2: frobnicate"), std::string::npos) << error.output;
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
  }
  ~NotifySocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool bound() const { return bound_; }
  // The next message, or "" if none arrives within the bound.
  std::string Next() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kBound).count())) != 1) return "";
    char buf[512];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

TEST_F(SafegatedTest, RunsReloadsAndStopsWithServiceNotifications) {
  const std::string config_file = *dir_ / "safegated.toml";
  WriteFile(config_file,
            "area = \"bradford\"\ndata_dir = \"data\"\nregistry = \"registry.toml\"\n"
            "[tls]\ncert = " +
                Quoted(Cert("gateway-bradford")) + "\nkey = " + Quoted(Key("gateway-bradford")) +
                "\nca = " + Quoted(Ca()) + "\ncrl = " + Quoted(*pki_ / "crl.pem") +
                "\n[log]\nlevel = \"warn\"\n");
  NotifySocket notify(*dir_ / "notify.sock");
  ASSERT_TRUE(notify.bound());

  const std::string daemon = SAFEGATED_PATH;
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setenv("NOTIFY_SOCKET", (*dir_ / "notify.sock").c_str(), 1);
    ::execl(daemon.c_str(), daemon.c_str(), "--config", config_file.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Whatever happens below, do not leave the daemon running.
  struct Reaper {
    pid_t pid;
    bool reaped = false;
    ~Reaper() {
      if (!reaped) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
  } reaper{pid};

  EXPECT_NE(notify.Next().find("READY=1"), std::string::npos);
  const json ports = json::parse(ReadFile(*dir_ / "data/ports.json"));
  auto client = TestClient::Connect(ports["listen"].get<uint16_t>(), Ca(),
                                    ClientIdentity{Cert("wyp"), Key("wyp")});
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto res = (*client)->Request("GET", "/v1/mailbox");
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);

  ASSERT_EQ(::kill(pid, SIGHUP), 0);
  EXPECT_NE(notify.Next().find("RELOADING=1"), std::string::npos);
  EXPECT_NE(notify.Next().find("READY=1"), std::string::npos);
  res = (*client)->Request("GET", "/v1/mailbox");  // the connection survived the reload
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);

  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  EXPECT_NE(notify.Next().find("STOPPING=1"), std::string::npos);
  int status = 0;
  ASSERT_TRUE(WaitFor([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }));
  reaper.reaped = true;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE((*client)->WaitForClose(kBound));
}

}  // namespace
}  // namespace safegate::server
