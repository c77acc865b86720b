// An out-of-area transfer between two real gateways (Bradford and Cambridgeshire, each with
// its own certificates, keys and data) through the sandbox: a child with a high CSE-risk flag
// and a child protection plan moves to Cambridgeshire, goes missing there (reason missing:
// an urgent notice with the active flags reaches Cambridgeshire police and CSC before anyone
// accepts), is found, and the case transfers. States and leads are checked on both gateways
// at each step (a lead is never empty), with both mailboxes and both audit logs. The
// receiving gateway is killed (SIGKILL) during a delivery and restarted: the transfer is
// there exactly once. Forged, replayed and misaddressed messages are refused and audited.
//
// Deadlines and escalation need a clock that can be moved; the daemon runs on the system
// clock, so they are tested in the store (daemon/core/transfers_test.cc) with a ManualClock.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "daemon/transfer/bundle.h"
#include "daemon/transfer/gateway_keys.h"
#include "daemon/transfer/working_days.h"
#include "tests/support/sandbox.h"
#include "tests/support/test_data.h"

namespace safegate::testing {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kBound = std::chrono::seconds(60);

// Waits (bounded) until `ready` holds, polling; false if it never did.
bool WaitUntil(const std::function<bool()>& ready) {
  const auto deadline = SteadyClock::now() + kBound;
  while (SteadyClock::now() < deadline) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return ready();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

class TransferFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sb = Sandbox::Up({"bradford", "cambridgeshire"});
    ASSERT_TRUE(sb.ok()) << sb.status().ToString();
    sandbox_ = std::move(sb).value();
    ASSERT_NO_FATAL_FAILURE(ExchangeKeys());
  }
  void TearDown() override {
    if (sandbox_ && HasFailure()) std::cerr << sandbox_->LogTails();
    sandbox_.reset();
  }

  // Each gateway made its transfer keys on first start. When the sandbox has already written
  // the other gateway's public keys into each [[peer]] block, there is nothing to do;
  // otherwise they are added here from the keys on disk (as an operator pastes the output
  // of `safegatectl keys show`) and the gateways restarted on the new registries.
  void ExchangeKeys() {
    for (const std::string area : {"bradford", "cambridgeshire"}) {
      const std::string other = area == "bradford" ? "cambridgeshire" : "bradford";
      const std::string registry = sandbox_->dir() + "/" + area + "/registry.toml";
      std::string text = ReadFile(registry);
      ASSERT_FALSE(text.empty()) << registry;
      if (text.find("sealing_public_key = \"") != std::string::npos &&
          text.find("sealing_public_key = \"\"") == std::string::npos) {
        continue;  // the sandbox exchanged them
      }
      auto keys = transfer::GatewayKeys::Load(sandbox_->area(other).data_dir);
      ASSERT_TRUE(keys.ok()) << keys.status().ToString();
      // The [[peer]] block is the registry's last table: the keys go at its end.
      std::ofstream out(registry, std::ios::app);
      out << "signing_public_key = \"" << (*keys)->SigningPublicKeyBase64() << "\"\n"
          << "sealing_public_key = \"" << (*keys)->SealingPublicKeyBase64() << "\"\n";
      out.close();
      ASSERT_TRUE(sandbox_->Stop(area, SIGTERM).ok());
      Status restarted = sandbox_->Restart(area);
      ASSERT_TRUE(restarted.ok()) << restarted.ToString();
    }
  }

  HttpsClient Client(const std::string& area, const std::string& agency) {
    return sandbox_->Client(area, agency);
  }

  // GET /v1/transfers/{id} as `agency` at `area`'s gateway; null when not 200.
  json View(const std::string& area, const std::string& agency, const std::string& id) {
    auto r = Client(area, agency).Get("/v1/transfers/" + id);
    if (!r.ok() || r->status != 200) return json();
    return r->Json();
  }

  // Every audit entry at `area` matching `query`, as its audit agency.
  std::vector<json> Audit(const std::string& area, const std::string& query) {
    const std::string auditor = area == "bradford" ? "bradford-audit" : "cambs-audit";
    auto r = Client(area, auditor)
                 .Get("/v1/audit?purpose=" + std::string(kAuditPurpose) + "&limit=1000&" + query);
    EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->Describe() : r.status().ToString());
    if (!r.ok() || r->status != 200) return {};
    return r->Json()["entries"].get<std::vector<json>>();
  }

  std::vector<json> Notices(const std::string& area, const std::string& agency,
                            const std::string& kind) {
    auto r = Client(area, agency).Get("/v1/mailbox?limit=1000");
    EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->Describe() : r.status().ToString());
    std::vector<json> out;
    if (!r.ok() || r->status != 200) return out;
    const json page = r->Json();  // held: the loop must not outlive it
    if (!page.is_object() || !page["messages"].is_array()) return out;
    for (const json& m : page["messages"]) {
      if (m.value("type", "") == "notice" && m["notice"].value("kind", "") == kind) {
        out.push_back(m);
      }
    }
    return out;
  }

  // A gateway-to-gateway POST presenting Bradford's gateway certificate to Cambridgeshire.
  Result<HttpResponse> PostAsBradfordGateway(const std::string& bytes) {
    return sandbox_->ClientWithCertificate("cambridgeshire", "gateway-bradford")
        .Request("POST", "/v1/peer/messages", bytes,
                 {{"Content-Type", "application/octet-stream"}});
  }

  std::string Push(const json& record, const std::string& agency, const std::string& to) {
    auto r = Client("bradford", agency).PostJson("/v1/records", PushBody(record, {to}));
    EXPECT_TRUE(r.ok() && r->status == 201) << (r.ok() ? r->Describe() : r.status().ToString());
    return r.ok() ? r->Json().value("record_id", "") : "";
  }

  std::unique_ptr<Sandbox> sandbox_;
};

void ExpectLeads(const json& view, const std::string& area, const std::string& csc,
                 const std::string& police, const std::string& where) {
  ASSERT_TRUE(view.is_object()) << where;
  EXPECT_EQ(view["leads"]["csc"]["area"], area) << where << ": " << view["leads"].dump();
  EXPECT_EQ(view["leads"]["csc"]["agency"], csc) << where;
  EXPECT_EQ(view["leads"]["police"]["area"], area) << where;
  EXPECT_EQ(view["leads"]["police"]["agency"], police) << where;
  EXPECT_FALSE(view["leads"]["csc"].value("since", "").empty()) << where;
  EXPECT_FALSE(view["leads"]["police"].value("since", "").empty()) << where;
}

TEST_F(TransferFlowTest, MissingChildCaseTransfersToCambridgeshire) {
  const std::string nhs = TestNhsNumber(61);
  // Bradford holds a high CSE-risk flag (West Yorkshire Police) and a child protection plan
  // (Bradford CSC) about the child.
  const std::string cse = Push(CseFlag(nhs, "OCC-2026-000061"), "wyp", "bradford-csc");
  json plan = CseFlag(nhs, "CPP-2026-000061", "high", 1, "bradford-csc");
  plan["body"]["type"] = "cp_plan";
  plan["classification"]["criminal_offence"] = false;
  const std::string cpp = Push(plan, "bradford-csc", "wyp");
  ASSERT_FALSE(cse.empty());
  ASSERT_FALSE(cpp.empty());

  // The child has gone missing in Cambridgeshire: Bradford CSC starts the transfer.
  auto proposed = Client("bradford", "bradford-csc")
                      .PostJson("/v1/transfers", {{"subject", NhsRef(nhs)},
                                                  {"to_area", "cambridgeshire"},
                                                  {"reason", "missing"},
                                                  {"records", {cse, cpp}},
                                                  {"note", "Placed with a relative; missing"}});
  ASSERT_TRUE(proposed.ok()) << proposed.status().ToString();
  ASSERT_EQ(proposed->status, 201) << proposed->Describe();
  const std::string id = proposed->Json().value("transfer_id", "");
  ASSERT_TRUE(transfer::IsTransferId(id)) << proposed->Describe();
  EXPECT_EQ(proposed->Json()["state"], "proposed");
  ExpectLeads(proposed->Json(), "bradford", "bradford-csc", "wyp", "proposed at Bradford");

  // Delivered at Cambridgeshire: Bradford still leads, on both gateways.
  json at_cambs;
  ASSERT_TRUE(WaitUntil([&] {
    at_cambs = View("cambridgeshire", "cambs-police", id);
    return at_cambs.is_object();
  })) << "the transfer never reached Cambridgeshire";
  EXPECT_EQ(at_cambs["state"], "delivered");
  ExpectLeads(at_cambs, "bradford", "bradford-csc", "wyp", "delivered, at Cambridgeshire");
  // Before anyone accepts, police and CSC there have the urgent notice with the active flags.
  for (const std::string agency : {"cambs-police", "cambs-csc"}) {
    auto missing = Notices("cambridgeshire", agency, "transfer_missing");
    ASSERT_EQ(missing.size(), 1u) << agency;
    EXPECT_EQ(missing[0]["purpose"], "missing_child");
    EXPECT_EQ(missing[0]["notice"]["urgent"], true);
    EXPECT_EQ(missing[0]["notice"]["flags"].size(), 2u) << missing[0].dump();
    EXPECT_EQ(Notices("cambridgeshire", agency, "transfer_delivered").size(), 1u) << agency;
  }
  json at_brad;
  ASSERT_TRUE(WaitUntil([&] {
    at_brad = View("bradford", "wyp", id);
    return at_brad.is_object() && at_brad["state"] == "delivered";
  })) << "Bradford never learnt of the delivery: " << at_brad.dump();
  ExpectLeads(at_brad, "bradford", "bradford-csc", "wyp", "delivered, at Bradford");

  // Found: Cambridgeshire police accept first. Bradford remains lead until CSC accepts too.
  auto police = Client("cambridgeshire", "cambs-police")
                    .PostJson("/v1/transfers/" + id + "/accept",
                              {{"role", "police_lead"}, {"accepted_by", "DS Example"}});
  ASSERT_TRUE(police.ok());
  ASSERT_EQ(police->status, 200) << police->Describe();
  ExpectLeads(police->Json(), "bradford", "bradford-csc", "wyp", "police accepted, Cambs");
  // The wrong role, the wrong area: 403; a bad role name: 422.
  auto wrong_role = Client("cambridgeshire", "cambs-csc")
                        .PostJson("/v1/transfers/" + id + "/accept",
                                  {{"role", "police_lead"}, {"accepted_by", "X"}});
  ASSERT_TRUE(wrong_role.ok());
  EXPECT_EQ(wrong_role->status, 403) << wrong_role->Describe();
  auto wrong_area = Client("bradford", "bradford-csc")
                        .PostJson("/v1/transfers/" + id + "/accept",
                                  {{"role", "csc_lead"}, {"accepted_by", "X"}});
  ASSERT_TRUE(wrong_area.ok());
  EXPECT_EQ(wrong_area->status, 403) << wrong_area->Describe();
  auto bad_role = Client("cambridgeshire", "cambs-csc")
                      .PostJson("/v1/transfers/" + id + "/accept",
                                {{"role", "lead"}, {"accepted_by", "X"}});
  ASSERT_TRUE(bad_role.ok());
  EXPECT_EQ(bad_role->status, 422) << bad_role->Describe();
  EXPECT_EQ(bad_role->Json()["problems"][0]["where"], "/role");
  ExpectLeads(View("bradford", "bradford-csc", id), "bradford", "bradford-csc", "wyp",
              "police accepted, Bradford");

  // CSC accepts: both leads pass to Cambridgeshire at once, on both gateways.
  auto csc = Client("cambridgeshire", "cambs-csc")
                 .PostJson("/v1/transfers/" + id + "/accept",
                           {{"role", "csc_lead"}, {"accepted_by", "T Manager"}});
  ASSERT_TRUE(csc.ok());
  ASSERT_EQ(csc->status, 200) << csc->Describe();
  EXPECT_EQ(csc->Json()["state"], "accepted");
  ExpectLeads(csc->Json(), "cambridgeshire", "cambs-csc", "cambs-police", "accepted, Cambs");
  ASSERT_TRUE(WaitUntil([&] {
    at_brad = View("bradford", "bradford-csc", id);
    return at_brad.is_object() && at_brad["state"] == "accepted";
  })) << at_brad.dump();
  ExpectLeads(at_brad, "cambridgeshire", "cambs-csc", "cambs-police", "accepted, Bradford");
  EXPECT_EQ(Notices("bradford", "bradford-csc", "transfer_accepted").size(), 1u);
  EXPECT_EQ(Notices("bradford", "wyp", "transfer_accepted").size(), 1u);
  EXPECT_EQ(Notices("cambridgeshire", "cambs-police", "transfer_accepted").size(), 1u);

  // Both audit logs tell it, and both verify.
  EXPECT_EQ(Audit("bradford", "action=transfer_proposed").size(), 1u);
  EXPECT_EQ(Audit("bradford", "action=transfer_delivered").size(), 1u);
  EXPECT_EQ(Audit("bradford", "action=transfer_accepted").size(), 2u);
  EXPECT_EQ(Audit("cambridgeshire", "action=transfer_delivered").size(), 1u);
  EXPECT_EQ(Audit("cambridgeshire", "action=transfer_accepted").size(), 2u);
  for (const std::string area : {"bradford", "cambridgeshire"}) {
    auto v = Client(area, area == "bradford" ? "bradford-audit" : "cambs-audit")
                 .Get("/v1/audit/verify");
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->Json()["ok"], true) << area << ": " << v->Describe();
  }
  // Nothing is left waiting to be sent.
  const std::string metrics = LoopbackGet(sandbox_->area("bradford").admin_port, "/metrics");
  EXPECT_NE(metrics.find("safegate_transfer_outbox_backlog{peer=\"cambridgeshire\"} 0"),
            std::string::npos)
      << metrics;
}

TEST_F(TransferFlowTest, ReceiverKilledDuringDeliveryGetsTheTransferOnce) {
  const std::string nhs = TestNhsNumber(62);
  const std::string cse = Push(CseFlag(nhs, "OCC-2026-000062"), "wyp", "bradford-csc");
  auto proposed = Client("bradford", "bradford-csc")
                      .PostJson("/v1/transfers", {{"subject", NhsRef(nhs)},
                                                  {"to_area", "cambridgeshire"},
                                                  {"reason", "moved"},
                                                  {"records", {cse}}});
  ASSERT_TRUE(proposed.ok());
  ASSERT_EQ(proposed->status, 201) << proposed->Describe();
  const std::string id = proposed->Json().value("transfer_id", "");
  // Killed while the proposal is on its way (before, during or just after it is stored).
  ASSERT_TRUE(sandbox_->Stop("cambridgeshire", SIGKILL).ok());
  // While it is down the message waits in Bradford's outbox.
  const std::string metrics = LoopbackGet(sandbox_->area("bradford").admin_port, "/metrics");
  EXPECT_NE(metrics.find("safegate_transfer_outbox_backlog{peer=\"cambridgeshire\"}"),
            std::string::npos)
      << metrics;
  Status restarted = sandbox_->Restart("cambridgeshire");
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();

  json at_brad;
  ASSERT_TRUE(WaitUntil([&] {
    at_brad = View("bradford", "bradford-csc", id);
    return at_brad.is_object() && at_brad["state"] == "delivered";
  })) << at_brad.dump();
  json at_cambs = View("cambridgeshire", "cambs-csc", id);
  ASSERT_TRUE(at_cambs.is_object());
  EXPECT_EQ(at_cambs["state"], "delivered");
  ExpectLeads(at_cambs, "bradford", "bradford-csc", "wyp", "after the restart");
  // Exactly once: one delivery in Cambridgeshire's audit log, one notice per mailbox.
  size_t deliveries = 0;
  for (const json& e : Audit("cambridgeshire", "action=transfer_delivered")) {
    if (e["detail"].value("transfer_id", "") == id) ++deliveries;
  }
  EXPECT_EQ(deliveries, 1u);
  EXPECT_EQ(Notices("cambridgeshire", "cambs-csc", "transfer_delivered").size(), 1u);
  EXPECT_EQ(Notices("cambridgeshire", "cambs-police", "transfer_delivered").size(), 1u);
}

TEST_F(TransferFlowTest, ForgedReplayedAndMisaddressedMessagesAreRefused) {
  const std::string nhs = TestNhsNumber(63);
  const std::string cse = Push(CseFlag(nhs, "OCC-2026-000063"), "wyp", "bradford-csc");
  auto proposed = Client("bradford", "bradford-csc")
                      .PostJson("/v1/transfers", {{"subject", NhsRef(nhs)},
                                                  {"to_area", "cambridgeshire"},
                                                  {"reason", "placement"},
                                                  {"records", {cse}}});
  ASSERT_TRUE(proposed.ok());
  ASSERT_EQ(proposed->status, 201) << proposed->Describe();
  const std::string id = proposed->Json().value("transfer_id", "");
  ASSERT_TRUE(WaitUntil([&] { return View("cambridgeshire", "cambs-csc", id).is_object(); }));

  auto bradford_keys = transfer::GatewayKeys::Load(sandbox_->area("bradford").data_dir);
  auto cambs_keys = transfer::GatewayKeys::Load(sandbox_->area("cambridgeshire").data_dir);
  ASSERT_TRUE(bradford_keys.ok() && cambs_keys.ok());
  const transfer::PeerKeys to_cambs{"cambridgeshire", (*cambs_keys)->signing_public_key(),
                                    (*cambs_keys)->sealing_public_key()};
  transfer::Bundle proposal;
  proposal.transfer_id = id;
  proposal.message_id = transfer::MessageIdFor(id, transfer::MessageKind::kProposal);
  proposal.kind = transfer::MessageKind::kProposal;
  proposal.from_area = "bradford";
  proposal.to_area = "cambridgeshire";
  proposal.created_ms = transfer::ParseTimeMs("2026-01-05T10:00:00Z").value();
  transfer::ProposalBody body;
  body.subject = NhsRef(nhs);
  body.reason = transfer::Reason::kPlacement;
  body.note = "not the proposal that was sent";
  body.leads.csc = {"bradford", "bradford-csc", proposal.created_ms};
  body.leads.police = {"bradford", "wyp", proposal.created_ms};
  body.deadlines = {{"acceptance", proposal.created_ms + 86400000},
                    {"transfer_in_conference", proposal.created_ms + 15 * 86400000ll}};
  proposal.proposal = body;

  auto expect_refused = [&](const std::string& bytes, int status, const std::string& code) {
    auto r = PostAsBradfordGateway(bytes);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, status) << code << ": " << r->Describe();
    EXPECT_NE(r->Json().value("detail", "").find(code), std::string::npos) << r->Describe();
  };
  // Forged: signed with a key that is not Bradford's.
  std::string forger_dir = sandbox_->dir() + "/forger";
  ASSERT_EQ(::mkdir(forger_dir.c_str(), 0700), 0);
  auto forger = transfer::GatewayKeys::LoadOrCreate(forger_dir);
  ASSERT_TRUE(forger.ok()) << forger.status().ToString();
  expect_refused(*transfer::SealBundle(proposal, **forger, to_cambs), 403, "bad_signature");
  // Replayed: another message under the id of the proposal already received (with Bradford's
  // real key, as a compromised or confused sender would): 409.
  expect_refused(*transfer::SealBundle(proposal, **bradford_keys, to_cambs), 409, "replayed");
  // Misaddressed: Bradford's genuine signature, sealed to Cambridgeshire, for another area.
  transfer::Bundle elsewhere = proposal;
  elsewhere.transfer_id = transfer::NewTransferId();
  elsewhere.message_id = transfer::MessageIdFor(elsewhere.transfer_id,
                                                transfer::MessageKind::kProposal);
  elsewhere.to_area = "york";
  expect_refused(*transfer::SealBundle(elsewhere, **bradford_keys,
                                       transfer::PeerKeys{"york", std::nullopt,
                                                          (*cambs_keys)->sealing_public_key()}),
                 422, "misaddressed");
  // Garbage: not sealed to Cambridgeshire at all.
  expect_refused(std::string(200, 'x'), 400, "not_sealed_to_us");

  // An agency's certificate may not deliver gateway messages; a peer's may do nothing else.
  auto agency = Client("cambridgeshire", "cambs-csc")
                    .Request("POST", "/v1/peer/messages", "x",
                             {{"Content-Type", "application/octet-stream"}});
  ASSERT_TRUE(agency.ok());
  EXPECT_EQ(agency->status, 403) << agency->Describe();
  auto peer_reads = sandbox_->ClientWithCertificate("cambridgeshire", "gateway-bradford")
                        .Get("/v1/mailbox");
  ASSERT_TRUE(peer_reads.ok());
  EXPECT_EQ(peer_reads->status, 403) << peer_reads->Describe();

  // Each refusal is in Cambridgeshire's audit log with its code; the transfer is unchanged.
  std::set<std::string> refusals;
  for (const json& e : Audit("cambridgeshire", "action=request_rejected")) {
    if (e.value("actor", "") == "gateway:bradford") refusals.insert(e["detail"].value("refusal", ""));
  }
  for (const char* code : {"bad_signature", "replayed", "misaddressed", "not_sealed_to_us"}) {
    EXPECT_EQ(refusals.count(code), 1u) << code;
  }
  json at_cambs = View("cambridgeshire", "cambs-csc", id);
  EXPECT_EQ(at_cambs["note"], "");
  EXPECT_EQ(at_cambs["state"], "delivered");
}

}  // namespace
}  // namespace safegate::testing
