// Out-of-area transfers in the store (transfers.cc): two real gateways in one process, each on
// its own data directory with its own keys and ManualClock, the outbox carried between them
// by hand (TakeOutbox -> ReceivePeerMessage -> SettleOutbox), exactly as the outbox sender
// and POST /v1/peer/messages do it over mTLS.
#include <sqlite3.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "daemon/core/test_support.h"
#include "daemon/core/time_format.h"
#include "daemon/transfer/bundle.h"
#include "daemon/transfer/gateway_keys.h"
#include "daemon/transfer/working_days.h"

namespace safegate {
namespace {

using namespace safegate::testing;
using nlohmann::json;
using ::testing::HasSubstr;

std::string PolicyFile() {
  if (const char* dir = std::getenv("SAFEGATE_SOURCE_DIR"); dir != nullptr && *dir != '\0') {
    return std::string(dir) + "/policy/default.toml";
  }
  return std::string(SAFEGATE_POLICY_DIR) + "/default.toml";
}

// Thursday 24 December 2026, 10:00 UTC: acceptance is due Tuesday 29 December 10:00.
const int64_t kStart = transfer::ParseTimeMs("2026-12-24T10:00:00Z").value();
const int64_t kAcceptanceDue = transfer::ParseTimeMs("2026-12-29T10:00:00Z").value();
const int64_t kMinute = 60 * 1000;

// One area's gateway.
struct Side {
  explicit Side(std::string area_name) : area(std::move(area_name)) {
    config = std::make_shared<config::Config>();
    config->area = area;
    config->data_dir = dir.path();
    auto k = transfer::GatewayKeys::LoadOrCreate(dir.path());
    EXPECT_TRUE(k.ok()) << k.status().ToString();
    keys = std::move(*k);
  }
  Status Open(std::shared_ptr<const config::Registry> r) {
    registry = std::move(r);
    if (gw) gw->Shutdown();
    gw.reset();
    GatewayOptions o;
    o.config = config;
    o.registry = registry;
    o.clock = &clock;
    auto policy = MakePolicyDeliveryPolicy(PolicyFile());
    if (!policy.ok()) return policy.status();
    o.policy = *policy;
    auto opened = Gateway::Open(std::move(o));
    if (!opened.ok()) return opened.status();
    gw = std::move(*opened);
    return Status::Ok();
  }
  ~Side() {
    if (gw) gw->Shutdown();
  }
  int64_t Count(const std::string& table, const std::string& where = "") {
    return testing::CountRows(dir.path() + "/safegate.db", table, where);
  }
  Caller AsPeer() const { return Caller{"gateway:" + area, config::Role::kGateway, area}; }

  std::string area;
  TempDir dir;
  ManualClock clock{kStart};
  std::shared_ptr<config::Config> config;
  std::shared_ptr<const config::Registry> registry;
  std::unique_ptr<transfer::GatewayKeys> keys;
  std::unique_ptr<Gateway> gw;
};

// The agencies of `area` (from the core test registry) and the other side as its peer.
std::shared_ptr<const config::Registry> RegistryFor(const Side& self, const Side& peer,
                                                    bool with_keys = true,
                                                    bool with_police = true) {
  auto r = std::make_shared<config::Registry>();
  const auto all = TestRegistry();  // held: the loop must not outlive it
  for (const config::Agency& a : all->agencies) {
    if (a.area != self.area || a.role == config::Role::kGateway) continue;
    if (!with_police && a.role == config::Role::kPolice) continue;
    r->agencies.push_back(a);
  }
  config::Peer p;
  p.area = peer.area;
  p.endpoint = "https://127.0.0.1:1";
  p.fingerprints = {std::string(64, peer.area == "bradford" ? 'b' : 'c')};
  if (with_keys) {
    p.signing_public_key = peer.keys->SigningPublicKeyBase64();
    p.sealing_public_key = peer.keys->SealingPublicKeyBase64();
  }
  r->peers.push_back(p);
  return r;
}

Caller As(const std::string& agency) { return CallerFor(agency); }

std::vector<MailboxMessage> Notices(Side& s, const std::string& agency,
                                    const std::string& kind = "") {
  std::vector<MailboxMessage> out;
  auto page = Await<MailboxPage>(
      [&](Callback<MailboxPage> cb) { s.gw->ReadMailbox(As(agency), 1000, "", std::move(cb)); });
  EXPECT_TRUE(page.ok()) << page.status().ToString();
  if (!page.ok()) return out;
  for (auto& m : page->messages) {
    if (m.type == "notice" && (kind.empty() || m.notice.value("kind", "") == kind)) {
      out.push_back(m);
    }
  }
  return out;
}

record::Record Flag(const std::string& agency, const std::string& record_id,
                    const std::string& type, const std::string& status) {
  record::Record r = MakeRecord(agency, record_id);
  r.body["type"] = type;
  r.body["status"] = status;
  r.body["owner_agency"] = agency;
  if (agency != "wyp") r.classification.criminal_offence = false;
  return r;
}

class TransferStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(brad.Open(RegistryFor(brad, cambs)).ok());
    ASSERT_TRUE(cambs.Open(RegistryFor(cambs, brad)).ok());
  }

  // Stores a flag at Bradford, pushed by `agency` to the other Bradford lead agency.
  std::string Push(const record::Record& r, const std::string& to) {
    PushRequest p;
    p.record = r;
    p.purpose = "safeguarding";
    p.recipients = {to};
    auto out = Await<PushOutcome>([&](Callback<PushOutcome> cb) {
      brad.gw->Push(As(r.source.agency), std::move(p), std::move(cb));
    });
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? out->record_id : "";
  }

  Result<json> Propose(const json& body, const std::string& agency = "bradford-csc") {
    return Await<json>(
        [&](Callback<json> cb) { brad.gw->ProposeTransfer(As(agency), body, std::move(cb)); });
  }
  Result<json> Get(Side& s, const std::string& agency, const std::string& id) {
    return Await<json>(
        [&](Callback<json> cb) { s.gw->GetTransfer(As(agency), id, std::move(cb)); });
  }
  Result<json> Answer(Side& s, const std::string& agency, const std::string& id,
                      const std::string& action, const json& body) {
    return Await<json>([&](Callback<json> cb) {
      s.gw->AnswerTransfer(As(agency), id, action, body, std::move(cb));
    });
  }
  Result<PeerMessageReceipt> Receive(Side& to, const Side& from, const std::string& sealed) {
    return Await<PeerMessageReceipt>([&](Callback<PeerMessageReceipt> cb) {
      to.gw->ReceivePeerMessage(from.AsPeer(), sealed, std::move(cb));
    });
  }
  Result<SweepReport> Sweep(Side& s, int64_t at) {
    s.clock.Set(at);
    return Await<SweepReport>(
        [&](Callback<SweepReport> cb) { s.gw->SweepDeadlines(at, std::move(cb)); });
  }

  // Carries every due outbox message of `from` to `to`, settling each as the sender does.
  // Returns the sealed bytes carried, in order.
  std::vector<std::string> Carry(Side& from, Side& to) {
    std::vector<std::string> carried;
    for (int round = 0; round < 20; ++round) {
      auto batch = Await<OutboxBatch>(
          [&](Callback<OutboxBatch> cb) { from.gw->TakeOutbox(from.clock.NowMs(), std::move(cb)); });
      EXPECT_TRUE(batch.ok()) << batch.status().ToString();
      if (!batch.ok() || batch->due.empty()) break;
      for (const OutboxItem& item : batch->due) {
        EXPECT_EQ(item.peer_area, to.area);
        auto receipt = Receive(to, from, item.sealed);
        EXPECT_TRUE(receipt.ok()) << receipt.status().ToString();
        OutboxSettlement s;
        s.seq = item.seq;
        s.outcome = receipt.ok() ? OutboxSettlement::Outcome::kDelivered
                                 : OutboxSettlement::Outcome::kRefused;
        s.http_status = receipt.ok() ? 200 : HttpStatusFor(receipt.status().code());
        s.error = receipt.ok() ? "" : receipt.status().detail();
        EXPECT_TRUE(Await<Empty>([&](Callback<Empty> cb) {
                      from.gw->SettleOutbox(s, std::move(cb));
                    }).ok());
        carried.push_back(item.sealed);
      }
    }
    return carried;
  }

  std::vector<AuditEntry> Audit(Side& s, const std::string& action) {
    AuditFilter f;
    f.action = action;
    f.limit = 1000;
    const std::string auditor = s.area == "bradford" ? "bradford-audit" : "cambs-audit";
    auto page = Await<AuditPage>(
        [&](Callback<AuditPage> cb) { s.gw->QueryAudit(As(auditor), f, std::move(cb)); });
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    return page.ok() ? page->entries : std::vector<AuditEntry>{};
  }

  json Body(const std::vector<std::string>& records, const std::string& reason = "missing") {
    return {{"subject", std::string("nhs:") + kNhs1},
            {"to_area", "cambridgeshire"},
            {"reason", reason},
            {"records", records},
            {"note", "Placed with a relative in Cambridge"}};
  }

  Side brad{"bradford"};
  Side cambs{"cambridgeshire"};
};

void ExpectLeads(const json& view, const std::string& area, const std::string& csc,
                 const std::string& police) {
  ASSERT_TRUE(view.contains("leads")) << view.dump();
  EXPECT_EQ(view["leads"]["csc"]["area"], area) << view.dump();
  EXPECT_EQ(view["leads"]["csc"]["agency"], csc);
  EXPECT_EQ(view["leads"]["police"]["area"], area);
  EXPECT_EQ(view["leads"]["police"]["agency"], police);
}

TEST_F(TransferStoreTest, BradfordToCambridgeshireExactlyOnce) {
  brad.clock.Set(kStart - kMinute);
  const std::string cse = Push(Flag("wyp", "CSE-1", "cse_risk", "active"), "bradford-csc");
  const std::string plan = Push(Flag("bradford-csc", "CPP-1", "cp_plan", "active"), "wyp");
  const std::string old = Push(Flag("bradford-csc", "CON-1", "concern", "inactive"), "wyp");
  brad.clock.Set(kStart);

  // Bradford CSC proposes; the child has gone missing in Cambridgeshire.
  auto proposed = Propose(Body({cse, plan, old}));
  ASSERT_TRUE(proposed.ok()) << proposed.status().ToString();
  const std::string id = (*proposed)["transfer_id"];
  EXPECT_TRUE(transfer::IsTransferId(id));
  EXPECT_EQ((*proposed)["state"], "proposed");
  EXPECT_EQ((*proposed)["policy"]["permitted"].get<int>() +
                (*proposed)["policy"]["redacted"].get<int>(),
            6)
      << proposed->dump();
  ExpectLeads(*proposed, "bradford", "bradford-csc", "wyp");
  EXPECT_EQ(brad.Count("transfer_outbox"), 1);
  EXPECT_EQ(brad.Count("transfers", "state = 'proposed' AND side = 'sending'"), 1);
  // Sealed at rest: neither the outbox nor the copy holds the subject in the clear.
  EXPECT_EQ(brad.Count("transfers", "CAST(sealed AS TEXT) LIKE '%" + std::string(kNhs1) + "%'"),
            0);

  auto view = Get(brad, "wyp", id);
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_EQ((*view)["state"], "proposed");
  ExpectLeads(*view, "bradford", "bradford-csc", "wyp");
  EXPECT_EQ(Get(brad, "bthft", id).status().code(), ErrorCode::kForbidden);
  EXPECT_EQ(Get(brad, "wyp", "trf_00000000000000000000000000000000").status().code(),
            ErrorCode::kNotFound);

  // Delivery: stored once at Cambridgeshire, which tells its police and CSC at once, with
  // the active flags, before anyone accepts.
  cambs.clock.Set(kStart + 5 * kMinute);
  const auto to_cambs = Carry(brad, cambs);
  ASSERT_EQ(to_cambs.size(), 1u);
  EXPECT_EQ(brad.Count("transfer_outbox"), 0);
  EXPECT_EQ(cambs.Count("transfers", "state = 'delivered' AND side = 'receiving'"), 1);
  for (const std::string agency : {"cambs-police", "cambs-csc"}) {
    auto missing = Notices(cambs, agency, "transfer_missing");
    ASSERT_EQ(missing.size(), 1u) << agency;
    EXPECT_EQ(missing[0].purpose, "missing_child");
    EXPECT_EQ(missing[0].notice["urgent"], true);
    EXPECT_EQ(missing[0].notice["transfer_id"], id);
    EXPECT_EQ(missing[0].notice["flags"].size(), 2u) << "active flags only";
    auto delivered = Notices(cambs, agency, "transfer_delivered");
    ASSERT_EQ(delivered.size(), 1u);
    EXPECT_EQ(delivered[0].notice["records"].size(), 3u);
  }
  // The notice bodies carry records: sealed at rest, only the kind in the clear.
  EXPECT_EQ(cambs.Count("messages", "notice_json LIKE '%" + std::string(kNhs1) + "%'"), 0);
  auto at_cambs = Get(cambs, "cambs-csc", id);
  ASSERT_TRUE(at_cambs.ok()) << at_cambs.status().ToString();
  EXPECT_EQ((*at_cambs)["state"], "delivered");
  ExpectLeads(*at_cambs, "bradford", "bradford-csc", "wyp");

  // The same bytes again (a retry after a lost answer): 200, nothing new.
  const int64_t notices_before = cambs.Count("messages", "type = 'notice'");
  const int64_t audit_before = cambs.Count("audit");
  auto replay = Receive(cambs, brad, to_cambs[0]);
  ASSERT_TRUE(replay.ok()) << replay.status().ToString();
  EXPECT_TRUE(replay->duplicate);
  EXPECT_EQ(replay->state, "delivered");
  EXPECT_EQ(cambs.Count("messages", "type = 'notice'"), notices_before);
  EXPECT_EQ(cambs.Count("audit"), audit_before);
  EXPECT_EQ(cambs.Count("transfers"), 1);
  EXPECT_EQ(cambs.Count("transfer_outbox"), 1) << "one ack";

  // The ack: Bradford's copy is delivered too.
  brad.clock.Set(kStart + 6 * kMinute);
  ASSERT_EQ(Carry(cambs, brad).size(), 1u);
  EXPECT_EQ((*Get(brad, "bradford-csc", id))["state"], "delivered");

  // Answers come from the receiving area, by the agency of the matching role.
  EXPECT_EQ(Answer(brad, "bradford-csc", id, "accept",
                   {{"role", "csc_lead"}, {"accepted_by", "A Manager"}})
                .status()
                .code(),
            ErrorCode::kForbidden);
  EXPECT_EQ(Answer(cambs, "cambs-csc", id, "accept",
                   {{"role", "police_lead"}, {"accepted_by", "A Manager"}})
                .status()
                .code(),
            ErrorCode::kForbidden);
  auto bad = Answer(cambs, "cambs-csc", id, "accept", {{"role", "chief"}, {"accepted_by", ""}});
  ASSERT_EQ(bad.status().code(), ErrorCode::kInvalidInput);
  EXPECT_EQ(bad.status().problems().size(), 2u);
  EXPECT_EQ(bad.status().problems()[0].where, "/role");

  // Police accept first: Bradford still leads.
  cambs.clock.Set(kStart + 60 * kMinute);
  auto police = Answer(cambs, "cambs-police", id, "accept",
                       {{"role", "police_lead"}, {"accepted_by", "DS Smith"}});
  ASSERT_TRUE(police.ok()) << police.status().ToString();
  EXPECT_EQ((*police)["state"], "delivered");
  ExpectLeads(*police, "bradford", "bradford-csc", "wyp");
  EXPECT_EQ(Answer(cambs, "cambs-police", id, "accept",
                   {{"role", "police_lead"}, {"accepted_by", "DS Smith"}})
                .status()
                .code(),
            ErrorCode::kConflict);

  // The acceptance deadline passes: both gateways escalate to their own area, once.
  auto esc = Sweep(cambs, kAcceptanceDue);
  ASSERT_TRUE(esc.ok()) << esc.status().ToString();
  EXPECT_EQ(esc->transfer_escalations, 1);
  EXPECT_EQ(Sweep(cambs, kAcceptanceDue + kMinute)->transfer_escalations, 0);
  EXPECT_EQ(Notices(cambs, "cambs-csc", "transfer_escalated").size(), 1u);
  EXPECT_EQ(Notices(cambs, "cambs-police", "transfer_escalated").size(), 1u);
  EXPECT_EQ(Sweep(brad, kAcceptanceDue)->transfer_escalations, 1);
  EXPECT_EQ(Notices(brad, "bradford-csc", "transfer_escalated").size(), 1u);
  EXPECT_EQ(Notices(brad, "wyp", "transfer_escalated").size(), 1u);
  // Again one interval later.
  EXPECT_EQ(Sweep(brad, kAcceptanceDue + 24 * kHour)->transfer_escalations, 1);
  EXPECT_EQ(Notices(brad, "wyp", "transfer_escalated").size(), 2u);

  // CSC accepts: both leads pass to Cambridgeshire at once, on both gateways.
  cambs.clock.Set(kAcceptanceDue + 2 * kHour);
  auto csc = Answer(cambs, "cambs-csc", id, "accept",
                    {{"role", "csc_lead"}, {"accepted_by", "T Leader"}});
  ASSERT_TRUE(csc.ok()) << csc.status().ToString();
  EXPECT_EQ((*csc)["state"], "accepted");
  ExpectLeads(*csc, "cambridgeshire", "cambs-csc", "cambs-police");
  ASSERT_EQ(Carry(cambs, brad).size(), 2u) << "police and csc acceptances, in order";
  auto final_brad = Get(brad, "wyp", id);
  ASSERT_TRUE(final_brad.ok());
  EXPECT_EQ((*final_brad)["state"], "accepted");
  ExpectLeads(*final_brad, "cambridgeshire", "cambs-csc", "cambs-police");
  EXPECT_EQ(Notices(brad, "bradford-csc", "transfer_accepted").size(), 1u);
  EXPECT_EQ(Notices(cambs, "cambs-police", "transfer_accepted").size(), 1u);

  // The conference (an API extension) meets the last deadline on both sides.
  auto conference = Answer(cambs, "cambs-csc", id, "conference", json::object());
  ASSERT_TRUE(conference.ok()) << conference.status().ToString();
  ASSERT_EQ(Carry(cambs, brad).size(), 1u);
  for (Side* s : {&brad, &cambs}) {
    auto v = Get(*s, s == &brad ? "bradford-csc" : "cambs-csc", id);
    ASSERT_TRUE(v.ok());
    for (const json& d : (*v)["deadlines"]) EXPECT_NE(d["status"], "pending") << d.dump();
  }

  // Both audit logs tell the story; every notice and message id appears once.
  EXPECT_EQ(Audit(brad, "transfer_proposed").size(), 1u);
  EXPECT_EQ(Audit(brad, "transfer_delivered").size(), 1u);
  EXPECT_EQ(Audit(brad, "transfer_accepted").size(), 2u);
  EXPECT_EQ(Audit(cambs, "transfer_delivered").size(), 1u);
  EXPECT_EQ(Audit(cambs, "transfer_accepted").size(), 2u);
  EXPECT_EQ(Audit(cambs, "transfer_escalated").size(), 1u);
  EXPECT_EQ(Audit(brad, "transfer_escalated").size(), 2u);
  auto proposed_entry = Audit(brad, "transfer_proposed");
  ASSERT_EQ(proposed_entry.size(), 1u);
  EXPECT_EQ(proposed_entry[0].subject, std::string("nhs:") + kNhs1);
  EXPECT_EQ(proposed_entry[0].detail.dump().find(kNhs1), std::string::npos);  // R7
  for (Side* s : {&brad, &cambs}) {
    auto verify = Await<VerifyReport>([&](Callback<VerifyReport> cb) {
      s->gw->VerifyAudit(As(s == &brad ? "bradford-audit" : "cambs-audit"), std::move(cb));
    });
    ASSERT_TRUE(verify.ok());
    EXPECT_TRUE(verify->ok) << verify->problem;
  }
}

TEST_F(TransferStoreTest, RefusedMessagesAreAuditedAndStoreNothing) {
  const std::string cse = Push(Flag("wyp", "CSE-1", "cse_risk", "active"), "bradford-csc");
  auto proposed = Propose(Body({cse}, "moved"));
  ASSERT_TRUE(proposed.ok()) << proposed.status().ToString();
  const std::string id = (*proposed)["transfer_id"];
  auto batch = Await<OutboxBatch>(
      [&](Callback<OutboxBatch> cb) { brad.gw->TakeOutbox(brad.clock.NowMs(), std::move(cb)); });
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->due.size(), 1u);
  const std::string sealed = batch->due[0].sealed;

  auto refused = [&](const std::string& bytes, ErrorCode code, const std::string& refusal) {
    const int64_t audit = cambs.Count("audit", "action = 'request_rejected'");
    auto r = Receive(cambs, brad, bytes);
    ASSERT_FALSE(r.ok()) << refusal;
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_THAT(r.status().detail(), HasSubstr(refusal));
    EXPECT_EQ(cambs.Count("transfers"), 0);
    EXPECT_EQ(cambs.Count("transfer_received"), 0);
    EXPECT_EQ(cambs.Count("messages"), 0);
    EXPECT_EQ(cambs.Count("audit", "action = 'request_rejected'"), audit + 1) << refusal;
  };
  // Tampered ciphertext.
  std::string tampered = sealed;
  tampered[tampered.size() / 2] ^= 0x01;
  refused(tampered, ErrorCode::kBadRequest, "not_sealed_to_us");
  // Signed by Cambridgeshire's own key instead of Bradford's (a forgery).
  transfer::Bundle forged;
  forged.transfer_id = id;
  forged.message_id = transfer::MessageIdFor(id, transfer::MessageKind::kAck);
  forged.kind = transfer::MessageKind::kAck;
  forged.from_area = "bradford";
  forged.to_area = "cambridgeshire";
  forged.created_ms = kT0;
  forged.ack = transfer::AckBody{transfer::MessageIdFor(id, transfer::MessageKind::kProposal)};
  transfer::PeerKeys to_cambs{"cambridgeshire", cambs.keys->signing_public_key(),
                              cambs.keys->sealing_public_key()};
  refused(*transfer::SealBundle(forged, *cambs.keys, to_cambs), ErrorCode::kForbidden,
          "bad_signature");
  // Misaddressed: signed by Bradford, sealed to Cambridgeshire's key, addressed elsewhere.
  transfer::Bundle elsewhere = forged;
  elsewhere.to_area = "york";
  refused(*transfer::SealBundle(elsewhere, *brad.keys,
                                transfer::PeerKeys{"york", std::nullopt,
                                                   cambs.keys->sealing_public_key()}),
          ErrorCode::kInvalidInput, "misaddressed");
  // The audit entry names the refusal code, never the message's content.
  auto rejected = Audit(cambs, "request_rejected");
  ASSERT_FALSE(rejected.empty());
  EXPECT_EQ(rejected.back().detail["refusal"], "misaddressed");
  EXPECT_EQ(rejected.back().actor, "gateway:bradford");

  // A certificate that is no peer's may not deliver at all.
  auto stranger = Await<PeerMessageReceipt>([&](Callback<PeerMessageReceipt> cb) {
    cambs.gw->ReceivePeerMessage(Caller{"gateway:york", config::Role::kGateway, "york"}, sealed,
                                 std::move(cb));
  });
  EXPECT_EQ(stranger.status().code(), ErrorCode::kForbidden);

  // The genuine message is applied; another message reusing its id is then refused (409).
  ASSERT_TRUE(Receive(cambs, brad, sealed).ok());
  auto prop = transfer::OpenBundle(sealed, *cambs.keys, "cambridgeshire",
                                   *transfer::PeerDirectory::FromPeers(cambs.registry->peers),
                                   "bradford");
  ASSERT_TRUE(prop.ok());
  transfer::Bundle reused = prop.value().bundle;
  reused.proposal->note = "a different note";
  auto again = Receive(cambs, brad,
                       *transfer::SealBundle(reused, *brad.keys, to_cambs));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), ErrorCode::kConflict);
  EXPECT_THAT(again.status().detail(), HasSubstr("replayed"));
  EXPECT_EQ(cambs.Count("transfers"), 1);
  EXPECT_EQ(cambs.Count("transfer_received"), 1);
}

TEST_F(TransferStoreTest, ATransitionAppliesWhollyOrNotAtAll) {
  // Cambridgeshire has no police agency registered: the proposal's notices have nowhere to
  // go, so nothing of it is stored (and the sender will retry: 5xx).
  ASSERT_TRUE(cambs.Open(RegistryFor(cambs, brad, true, /*with_police=*/false)).ok());
  const std::string cse = Push(Flag("wyp", "CSE-1", "cse_risk", "active"), "bradford-csc");
  auto proposed = Propose(Body({cse}));
  ASSERT_TRUE(proposed.ok()) << proposed.status().ToString();
  auto batch = Await<OutboxBatch>(
      [&](Callback<OutboxBatch> cb) { brad.gw->TakeOutbox(brad.clock.NowMs(), std::move(cb)); });
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->due.size(), 1u);
  auto failed = Receive(cambs, brad, batch->due[0].sealed);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), ErrorCode::kInternal);
  for (const char* table : {"transfers", "transfer_received", "transfer_outbox", "messages"}) {
    EXPECT_EQ(cambs.Count(table), 0) << table;
  }
  EXPECT_EQ(cambs.Count("audit", "action LIKE 'transfer_%'"), 0);

  // A retry after the registry is fixed (restart) is applied once.
  ASSERT_TRUE(cambs.Open(RegistryFor(cambs, brad)).ok());
  auto ok = Receive(cambs, brad, batch->due[0].sealed);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_FALSE(ok->duplicate);
  EXPECT_EQ(cambs.Count("transfers"), 1);
  EXPECT_EQ(cambs.Count("messages", "type = 'notice'"), 4);

  // The outbox keeps a message until it is settled, across a restart.
  ASSERT_TRUE(brad.Open(RegistryFor(brad, cambs)).ok());
  EXPECT_EQ(brad.Count("transfer_outbox"), 1);
  OutboxSettlement retry;
  retry.seq = batch->due[0].seq;
  retry.outcome = OutboxSettlement::Outcome::kRetry;
  retry.error = "connection refused";
  retry.next_attempt_at_ms = brad.clock.NowMs() + 1000;
  ASSERT_TRUE(
      Await<Empty>([&](Callback<Empty> cb) { brad.gw->SettleOutbox(retry, std::move(cb)); }).ok());
  auto later = Await<OutboxBatch>(
      [&](Callback<OutboxBatch> cb) { brad.gw->TakeOutbox(brad.clock.NowMs(), std::move(cb)); });
  ASSERT_TRUE(later.ok());
  EXPECT_TRUE(later->due.empty());
  EXPECT_EQ(later->next_due_ms, brad.clock.NowMs() + 1000);
  auto stats = brad.gw->GetStats();
  EXPECT_EQ(stats.outbox_depth["cambridgeshire"], 1);
}

TEST_F(TransferStoreTest, ProposalInputIsCheckedNamingTheField) {
  const std::string cse = Push(Flag("wyp", "CSE-1", "cse_risk", "active"), "bradford-csc");
  PushRequest other;
  other.record = MakeRecord("wyp", "OTHER-1", 1, kNhs2);
  other.record.subject.local_ids.clear();
  other.purpose = "safeguarding";
  other.recipients = {"bradford-csc"};
  auto pushed = Await<PushOutcome>([&](Callback<PushOutcome> cb) {
    brad.gw->Push(As("wyp"), std::move(other), std::move(cb));
  });
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();

  auto wrong = Propose({{"subject", "nhs:123"},
                        {"to_area", "bradford"},
                        {"reason", "holiday"},
                        {"records", {cse, pushed->record_id, "rec_0000"}}});
  ASSERT_EQ(wrong.status().code(), ErrorCode::kInvalidInput);
  std::set<std::string> where;
  for (const Problem& p : wrong.status().problems()) where.insert(p.where);
  EXPECT_EQ(where, (std::set<std::string>{"/subject", "/to_area", "/reason", "/records/2"}));

  auto not_about = Propose(Body({cse, pushed->record_id}));
  ASSERT_EQ(not_about.status().code(), ErrorCode::kInvalidInput);
  ASSERT_EQ(not_about.status().problems().size(), 1u);
  EXPECT_EQ(not_about.status().problems()[0].where, "/records/1");
  EXPECT_THAT(not_about.status().problems()[0].what, HasSubstr("another subject"));

  EXPECT_EQ(Propose(Body({cse}), "wyp").status().code(), ErrorCode::kForbidden);
  // A peer whose keys have not been exchanged cannot be proposed to; nothing is stored.
  ASSERT_TRUE(brad.Open(RegistryFor(brad, cambs, /*with_keys=*/false)).ok());
  auto no_keys = Propose(Body({cse}));
  ASSERT_EQ(no_keys.status().code(), ErrorCode::kInvalidInput);
  EXPECT_EQ(no_keys.status().problems()[0].where, "/to_area");
  EXPECT_EQ(brad.Count("transfers"), 0);
  EXPECT_EQ(brad.Count("transfer_outbox"), 0);
  EXPECT_GE(brad.Count("audit", "action = 'request_rejected'"), 4);
}

TEST_F(TransferStoreTest, DeclineGoesBackToTheSender) {
  const std::string cse = Push(Flag("wyp", "CSE-1", "cse_risk", "active"), "bradford-csc");
  auto proposed = Propose(Body({cse}, "placement"));
  ASSERT_TRUE(proposed.ok());
  const std::string id = (*proposed)["transfer_id"];
  ASSERT_EQ(Carry(brad, cambs).size(), 1u);
  ASSERT_EQ(Carry(cambs, brad).size(), 1u);
  auto missing_reason = Answer(cambs, "cambs-csc", id, "decline", {{"role", "csc_lead"}});
  EXPECT_EQ(missing_reason.status().code(), ErrorCode::kInvalidInput);
  auto declined = Answer(cambs, "cambs-csc", id, "decline",
                         {{"role", "csc_lead"}, {"reason", "The family did not move here"}});
  ASSERT_TRUE(declined.ok()) << declined.status().ToString();
  EXPECT_EQ((*declined)["state"], "declined");
  ExpectLeads(*declined, "bradford", "bradford-csc", "wyp");
  ASSERT_EQ(Carry(cambs, brad).size(), 1u);
  auto at_brad = Get(brad, "bradford-csc", id);
  ASSERT_TRUE(at_brad.ok());
  EXPECT_EQ((*at_brad)["state"], "declined");
  ExpectLeads(*at_brad, "bradford", "bradford-csc", "wyp");
  auto notice = Notices(brad, "bradford-csc", "transfer_declined");
  ASSERT_EQ(notice.size(), 1u);
  EXPECT_EQ(notice[0].notice["declined"]["reason"], "The family did not move here");
  EXPECT_EQ(Answer(cambs, "cambs-police", id, "accept",
                   {{"role", "police_lead"}, {"accepted_by", "DS Smith"}})
                .status()
                .code(),
            ErrorCode::kConflict);
  // Nothing escalates for a declined transfer.
  EXPECT_EQ(Sweep(brad, kAcceptanceDue + 30 * kDay)->transfer_escalations, 0);
}

}  // namespace
}  // namespace safegate
