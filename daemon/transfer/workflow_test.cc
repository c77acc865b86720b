#include "daemon/transfer/workflow.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemon/transfer/test_util.h"

namespace safegate::transfer {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TestGateway;

constexpr int64_t kHour = 3600 * 1000;
constexpr int64_t kInterval = 4 * kHour;

int64_t At(std::string_view rfc3339) { return ParseTimeMs(rfc3339).value(); }

// Thursday 24 December 2026, 10:00 UTC: acceptance is due Tuesday 29 December 10:00 (25th
// and 28th are bank holidays), the transfer-in conference Tuesday 19 January 2027 10:00.
const int64_t kT0 = At("2026-12-24T10:00:00Z");
const int64_t kAcceptanceDue = At("2026-12-29T10:00:00Z");
const int64_t kConferenceDue = At("2027-01-19T10:00:00Z");

const Actor kBradfordCsc{"bradford-csc", config::Role::kCsc, "bradford"};
const Actor kWyp{"wyp", config::Role::kPolice, "bradford"};
const Actor kCambsCsc{"cambs-csc", config::Role::kCsc, "cambridgeshire"};
const Actor kCambsPolice{"cambs-police", config::Role::kPolice, "cambridgeshire"};
const Actor kCuh{"cuh", config::Role::kHealth, "cambridgeshire"};

json Flag(std::string_view agency, std::string_view type, std::string_view level,
          std::string_view status) {
  return {{"kind", "flag"},
          {"subject", {{"nhs_number", "9990000018"}}},
          {"source",
           {{"agency", agency},
            {"system", "test"},
            {"record_id", std::string(type) + "-1"},
            {"version", 1},
            {"recorded_at", "2026-10-31T09:12:00Z"}}},
          {"classification",
           {{"special_category", false},
            {"criminal_offence", agency == "wyp"},
            {"schedule12a", {1, 2}},
            {"handling", "P"}}},
          {"body", {{"type", type}, {"level", level}, {"status", status}}}};
}

// A child with a high CSE-risk flag (police) and a child protection plan (CSC), and an old
// concern that is no longer active; each receiving role gets its own copy as policy allows.
ProposeRequest Request(Reason reason) {
  ProposeRequest r;
  r.transfer_id = "trf_0123456789abcdef0123456789abcdef";
  r.subject = "nhs:9990000018";
  r.to_area = "cambridgeshire";
  r.reason = reason;
  r.note = "Placed with a relative in Cambridge";
  r.police_agency = "wyp";
  for (config::Role role : {config::Role::kCsc, config::Role::kPolice}) {
    r.records.push_back(
        {role, Flag("wyp", "cse_risk", "high", "active"), {"permit", "6(1)(e)", "p1", {}}});
    r.records.push_back(
        {role, Flag("bradford-csc", "cp_plan", "high", "active"), {"permit", "6(1)(e)", "p2", {}}});
    r.records.push_back({role, Flag("bradford-csc", "concern", "low", "inactive"),
                         role == config::Role::kPolice
                             ? RecordDecision{"redact", "6(1)(e)", "p3", {"/body/contact"}}
                             : RecordDecision{"permit", "6(1)(e)", "p3", {}}});
  }
  r.policy = {"case_transfer", std::string(64, 'b'), 5, 1, 1};
  return r;
}

// Every transition: it succeeded, the copy keeps its invariants (a lead is never empty), and
// the copy survives the store's round trip unchanged. Returns a copy: `r` is often a
// temporary.
Transition Ok(const Result<Transition>& r) {
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) throw std::runtime_error("transition failed: " + r.status().ToString());
  const Transfer& t = r->transfer;
  EXPECT_TRUE(CheckInvariants(t).ok()) << CheckInvariants(t).ToString();
  EXPECT_FALSE(t.leads.csc.agency.empty());
  EXPECT_FALSE(t.leads.police.agency.empty());
  EXPECT_FALSE(t.leads.csc.area.empty());
  EXPECT_FALSE(t.leads.police.area.empty());
  auto back = TransferFromStoredJson(TransferToStoredJson(t));
  EXPECT_TRUE(back.ok()) << back.status().ToString();
  if (back.ok()) {
    EXPECT_EQ(*back, t);
  }
  return *r;
}

std::string RoleText(const Notice& n) { return std::string(config::RoleName(n.role)); }

void ExpectError(const Result<Transition>& r, ErrorCode code, std::string_view text) {
  ASSERT_FALSE(r.ok()) << "expected " << ErrorCodeName(code) << " (" << text << ")";
  EXPECT_EQ(ErrorCodeName(r.status().code()), ErrorCodeName(code)) << r.status().ToString();
  EXPECT_THAT(r.status().detail(), HasSubstr(std::string(text)));
}

std::vector<std::string> Kinds(const std::vector<Notice>& notices) {
  std::vector<std::string> out;
  for (const Notice& n : notices) out.push_back(n.kind + "/" + RoleText(n));
  return out;
}

std::vector<std::string> Actions(const std::vector<AuditEvent>& audit) {
  std::vector<std::string> out;
  for (const AuditEvent& e : audit) out.push_back(e.action);
  return out;
}

std::vector<std::string> Events(const Transfer& t, bool with_escalations = true) {
  std::vector<std::string> out;
  for (const HistoryEntry& h : t.history) {
    if (with_escalations || h.event != "escalated") out.push_back(h.event);
  }
  return out;
}

// Both gateways with real keys, each listing the other as its peer; messages travel sealed
// and are opened exactly as the receiving gateway will open them.
class TransferStory : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(bradford_peers_
                    .Add("cambridgeshire", cambs_.keys->SigningPublicKeyBase64(),
                         cambs_.keys->SealingPublicKeyBase64())
                    .ok());
    ASSERT_TRUE(cambs_peers_
                    .Add("bradford", bradford_.keys->SigningPublicKeyBase64(),
                         bradford_.keys->SealingPublicKeyBase64())
                    .ok());
  }

  Bundle Carry(const Bundle& b) {
    const bool to_cambs = b.to_area == "cambridgeshire";
    const TestGateway& from = to_cambs ? bradford_ : cambs_;
    const TestGateway& to = to_cambs ? cambs_ : bradford_;
    auto sealed =
        SealBundle(b, *from.keys, from.area == "bradford" ? cambs_.AsPeer() : bradford_.AsPeer());
    EXPECT_TRUE(sealed.ok()) << sealed.status().ToString();
    OpenResult opened = OpenBundle(*sealed, *to.keys, to.area,
                                   to_cambs ? cambs_peers_ : bradford_peers_, from.area);
    EXPECT_TRUE(opened.ok()) << opened.refusal().detail;
    EXPECT_EQ(opened.value().bundle, b);
    return opened.value().bundle;
  }

  TestGateway bradford_{"bradford"};
  TestGateway cambs_{"cambridgeshire"};
  PeerDirectory bradford_peers_;
  PeerDirectory cambs_peers_;
  WorkingCalendar calendar_;
  DeadlineSettings settings_;
};

TEST_F(TransferStory, BradfordToCambridgeshire) {
  // 1. Bradford CSC proposes: the child, placed in Cambridge, has gone missing there.
  const Transition& proposed =
      Ok(Propose(kBradfordCsc, Request(Reason::kMissing), kT0, calendar_, settings_));
  Transfer brad = proposed.transfer;
  EXPECT_EQ(brad.state, State::kProposed);
  EXPECT_EQ(brad.leads.csc, (Lead{"bradford", "bradford-csc", kT0}));
  EXPECT_EQ(brad.leads.police, (Lead{"bradford", "wyp", kT0}));
  ASSERT_EQ(brad.deadlines.size(), 2u);
  EXPECT_EQ(brad.deadlines[0].name, "acceptance");
  EXPECT_EQ(brad.deadlines[0].due_ms, kAcceptanceDue);
  EXPECT_EQ(brad.deadlines[1].name, "transfer_in_conference");
  EXPECT_EQ(brad.deadlines[1].due_ms, kConferenceDue);
  EXPECT_THAT(Actions(proposed.audit), ElementsAre("transfer_proposed"));
  EXPECT_EQ(proposed.audit[0].actor, "bradford-csc");
  EXPECT_EQ(proposed.audit[0].subject, "nhs:9990000018");
  EXPECT_EQ(proposed.audit[0].detail.dump().find("9990000018"), std::string::npos);  // R7
  EXPECT_TRUE(proposed.notices.empty());
  ASSERT_EQ(proposed.outbound.size(), 1u);
  EXPECT_EQ(proposed.outbound[0].kind, MessageKind::kProposal);
  EXPECT_EQ(proposed.outbound[0].to_area, "cambridgeshire");
  EXPECT_EQ(proposed.outbound[0].proposal->records.size(), 6u);

  // 2. The proposal arrives at Cambridgeshire: delivered. Because the child is missing,
  //    police and CSC there get an urgent notice with the active flags at once.
  const int64_t t_delivered = kT0 + 10 * 60 * 1000;
  const Transition& delivered =
      Ok(ApplyMessage(nullptr, Carry(proposed.outbound[0]), "cambridgeshire", t_delivered));
  Transfer cambs = delivered.transfer;
  EXPECT_EQ(cambs.state, State::kDelivered);
  EXPECT_EQ(cambs.local_area, "cambridgeshire");
  EXPECT_EQ(cambs.leads, brad.leads);  // Bradford stays lead
  EXPECT_THAT(Kinds(delivered.notices),
              ElementsAre("transfer_missing/csc", "transfer_missing/police",
                          "transfer_delivered/csc", "transfer_delivered/police"));
  for (const Notice& n : delivered.notices) {
    EXPECT_EQ(n.area, "cambridgeshire");
    EXPECT_EQ(n.body["transfer_id"], brad.transfer_id);
    if (n.kind == "transfer_missing") {
      EXPECT_TRUE(n.urgent);
      EXPECT_EQ(n.purpose, "missing_child");
      EXPECT_EQ(n.body["state"], "delivered");  // before any acceptance
      ASSERT_EQ(n.body["flags"].size(), 2u);    // the inactive concern is not urgent
      EXPECT_EQ(n.body["flags"][0]["body"]["type"], "cse_risk");
      EXPECT_EQ(n.body["flags"][1]["body"]["type"], "cp_plan");
    } else {
      EXPECT_FALSE(n.urgent);
      EXPECT_EQ(n.body["records"].size(), 3u);
      EXPECT_EQ(n.body["leads"]["csc"]["agency"], "bradford-csc");
    }
  }
  EXPECT_THAT(Actions(delivered.audit), ElementsAre("transfer_delivered"));
  EXPECT_EQ(delivered.audit[0].actor, "gateway:bradford");
  ASSERT_EQ(delivered.outbound.size(), 1u);
  EXPECT_EQ(delivered.outbound[0].kind, MessageKind::kAck);

  // 3. The ack returns: Bradford's copy is delivered too, at the receiving gateway's time.
  const Transition& acked =
      Ok(ApplyMessage(&brad, Carry(delivered.outbound[0]), "bradford", t_delivered + 1000));
  brad = acked.transfer;
  EXPECT_EQ(brad.state, State::kDelivered);
  EXPECT_THAT(Actions(acked.audit), ElementsAre("transfer_delivered"));
  EXPECT_TRUE(acked.notices.empty());
  EXPECT_EQ(brad.history, cambs.history);

  // Replays change nothing.
  const Transition& replayed =
      Ok(ApplyMessage(&cambs, proposed.outbound[0], "cambridgeshire", t_delivered + 5000));
  EXPECT_TRUE(replayed.duplicate);
  EXPECT_TRUE(replayed.notices.empty() && replayed.audit.empty() && replayed.outbound.empty());
  EXPECT_EQ(replayed.transfer, cambs);
  EXPECT_TRUE(Ok(ApplyMessage(&brad, delivered.outbound[0], "bradford", t_delivered)).duplicate);

  // 4. Who may accept what.
  const int64_t t1 = kT0 + 2 * kHour;
  ExpectError(Accept(cambs, kCambsPolice, LeadRole::kCsc, "DI Example", t1), ErrorCode::kForbidden,
              "csc_lead is accepted by the cambridgeshire csc agency");
  ExpectError(Accept(cambs, kWyp, LeadRole::kPolice, "PC Example", t1), ErrorCode::kForbidden,
              "only the receiving area (cambridgeshire)");
  ExpectError(Accept(cambs, kCuh, LeadRole::kCsc, "Dr Example", t1), ErrorCode::kForbidden,
              "cuh is health");
  ExpectError(Accept(brad, kBradfordCsc, LeadRole::kCsc, "SW Example", t1), ErrorCode::kForbidden,
              "receiving gateway (cambridgeshire)");
  ExpectError(Accept(cambs, kCambsCsc, LeadRole::kCsc, "", t1), ErrorCode::kInvalidInput,
              "accepted_by");

  // 5. Cambridgeshire police accept first. One acceptance is not enough: Bradford still leads.
  const Transition& police_ok =
      Ok(Accept(cambs, kCambsPolice, LeadRole::kPolice, "DI Example", t1));
  cambs = police_ok.transfer;
  EXPECT_EQ(cambs.state, State::kDelivered);
  EXPECT_EQ(cambs.leads.police.agency, "wyp");
  EXPECT_EQ(cambs.leads.csc.agency, "bradford-csc");
  EXPECT_THAT(Actions(police_ok.audit), ElementsAre("transfer_accepted"));
  EXPECT_EQ(police_ok.audit[0].detail["complete"], false);
  EXPECT_TRUE(police_ok.notices.empty());
  ExpectError(Accept(cambs, kCambsPolice, LeadRole::kPolice, "DI Example", t1 + 1),
              ErrorCode::kConflict, "police_lead has already accepted");
  brad = Ok(ApplyMessage(&brad, Carry(police_ok.outbound[0]), "bradford", t1 + 1000)).transfer;
  EXPECT_EQ(brad.state, State::kDelivered);
  EXPECT_EQ(brad.leads.police.agency, "wyp");
  ASSERT_TRUE(brad.police_acceptance.has_value());
  EXPECT_EQ(brad.police_acceptance->at_ms, t1);

  // 6. CSC has not accepted by the deadline: both gateways escalate to their own area's CSC
  //    and police, so both areas hear of it; again at each interval; one notice after a gap.
  for (Transfer* copy : {&brad, &cambs}) {
    EXPECT_EQ(NextEscalationAt(*copy, kInterval), kAcceptanceDue);
    EXPECT_TRUE(DueEscalations(*copy, kAcceptanceDue - 1, kInterval).notices.empty());
    const Transition& first = Ok(DueEscalations(*copy, kAcceptanceDue, kInterval));
    EXPECT_THAT(Kinds(first.notices),
                ElementsAre("transfer_escalated/csc", "transfer_escalated/police"));
    for (const Notice& n : first.notices) {
      EXPECT_EQ(n.area, copy->local_area);
      EXPECT_EQ(n.body["deadline"], "acceptance");
      EXPECT_EQ(n.body["escalation"], 1);
    }
    EXPECT_THAT(Actions(first.audit), ElementsAre("transfer_escalated"));
    *copy = first.transfer;
    EXPECT_EQ(NextEscalationAt(*copy, kInterval), kAcceptanceDue + kInterval);
    EXPECT_TRUE(Ok(DueEscalations(*copy, kAcceptanceDue + kHour, kInterval)).notices.empty());
    const Transition& second = Ok(DueEscalations(*copy, kAcceptanceDue + kInterval, kInterval));
    ASSERT_EQ(second.notices.size(), 2u);
    EXPECT_EQ(second.notices[0].body["escalation"], 2);
    *copy = second.transfer;
    EXPECT_TRUE(
        Ok(DueEscalations(*copy, kAcceptanceDue + kInterval + 1, kInterval)).notices.empty());
    // The gateway was down for a day: one escalation now (the 8th interval), not six.
    const Transition& late = Ok(DueEscalations(*copy, kAcceptanceDue + 30 * kHour, kInterval));
    ASSERT_EQ(late.notices.size(), 2u);
    EXPECT_EQ(late.notices[0].body["escalation"], 8);
    *copy = late.transfer;
    const Deadline* d = copy->FindDeadline(kAcceptanceDeadline);
    EXPECT_EQ(d->escalations, 8);
    EXPECT_EQ(d->last_escalated_ms, kAcceptanceDue + 30 * kHour);
    EXPECT_EQ(StatusOf(*d, copy->state, kAcceptanceDue + 30 * kHour), DeadlineStatus::kOverdue);
  }
  EXPECT_THAT(Kinds(Ok(DueEscalations(brad, kAcceptanceDue + 32 * kHour, kInterval)).notices),
              ElementsAre("transfer_escalated/csc", "transfer_escalated/police"));

  // 7. Cambridgeshire CSC accepts: the transfer is accepted and both leads pass at once.
  const int64_t t2 = kAcceptanceDue + 31 * kHour;
  const Transition& csc_ok = Ok(Accept(cambs, kCambsCsc, LeadRole::kCsc, "Team manager", t2));
  cambs = csc_ok.transfer;
  EXPECT_EQ(cambs.state, State::kAccepted);
  EXPECT_EQ(cambs.leads.csc, (Lead{"cambridgeshire", "cambs-csc", t2}));
  EXPECT_EQ(cambs.leads.police, (Lead{"cambridgeshire", "cambs-police", t2}));
  EXPECT_EQ(csc_ok.audit[0].detail["complete"], true);
  EXPECT_THAT(Kinds(csc_ok.notices),
              ElementsAre("transfer_accepted/csc", "transfer_accepted/police"));
  EXPECT_EQ(csc_ok.notices[0].area, "cambridgeshire");
  const Transition& brad_accepted =
      Ok(ApplyMessage(&brad, Carry(csc_ok.outbound[0]), "bradford", t2 + 1000));
  brad = brad_accepted.transfer;
  EXPECT_EQ(brad.state, State::kAccepted);
  EXPECT_EQ(brad.leads, cambs.leads);
  EXPECT_THAT(Kinds(brad_accepted.notices),
              ElementsAre("transfer_accepted/csc", "transfer_accepted/police"));
  EXPECT_EQ(brad_accepted.notices[0].area, "bradford");
  for (const Transfer* copy : {&brad, &cambs}) {
    const Deadline* d = copy->FindDeadline(kAcceptanceDeadline);
    ASSERT_TRUE(d->met_ms.has_value());
    EXPECT_EQ(StatusOf(*d, copy->state, t2), DeadlineStatus::kMetLate);
    // Only the conference deadline is left to escalate.
    EXPECT_EQ(NextEscalationAt(*copy, kInterval), kConferenceDue);
    EXPECT_TRUE(DueEscalations(*copy, t2 + 10 * kHour, kInterval).notices.empty());
  }
  ExpectError(Accept(cambs, kCambsCsc, LeadRole::kCsc, "Team manager", t2 + 1),
              ErrorCode::kConflict, "already accepted");
  ExpectError(Decline(cambs, kCambsPolice, LeadRole::kPolice, "changed mind", t2 + 1),
              ErrorCode::kConflict, "already accepted");

  // 8. The transfer-in conference is late: escalated, then recorded by Cambridgeshire CSC.
  const Transition& conf_late = Ok(DueEscalations(cambs, kConferenceDue, kInterval));
  ASSERT_EQ(conf_late.notices.size(), 2u);
  EXPECT_EQ(conf_late.notices[0].body["deadline"], "transfer_in_conference");
  cambs = conf_late.transfer;
  const int64_t held = kConferenceDue + 20 * kHour, t3 = held + kHour;
  ExpectError(RecordConference(cambs, kCambsPolice, held, t3), ErrorCode::kForbidden,
              "cambridgeshire csc");
  ExpectError(RecordConference(cambs, kCambsCsc, t3 + 1, t3), ErrorCode::kInvalidInput, "future");
  const Transition& conf = Ok(RecordConference(cambs, kCambsCsc, held, t3));
  cambs = conf.transfer;
  EXPECT_THAT(Actions(conf.audit), ElementsAre("transfer_conference_held"));
  ExpectError(RecordConference(cambs, kCambsCsc, held, t3 + 1), ErrorCode::kConflict,
              "already recorded");
  brad = Ok(ApplyMessage(&brad, Carry(conf.outbound[0]), "bradford", t3 + 1000)).transfer;
  for (const Transfer* copy : {&brad, &cambs}) {
    EXPECT_EQ(NextEscalationAt(*copy, kInterval), std::nullopt);
    EXPECT_TRUE(DueEscalations(*copy, t3 + 100 * kHour, kInterval).notices.empty());
  }

  // 9. GET /v1/transfers/{id} says the same on both gateways (escalations apart, which each
  //    gateway sends to its own area).
  const json vb = RenderTransfer(brad, t3 + 2000), vc = RenderTransfer(cambs, t3 + 2000);
  for (const char* key : {"transfer_id", "subject", "from_area", "to_area", "reason", "state",
                          "leads", "acceptances", "created_at"}) {
    EXPECT_EQ(vb[key], vc[key]) << key;
  }
  EXPECT_EQ(vc["state"], "accepted");
  EXPECT_EQ(vc["reason"], "missing");
  EXPECT_EQ(
      vc["leads"]["csc"],
      (json{{"area", "cambridgeshire"}, {"agency", "cambs-csc"}, {"since", FormatTimeMs(t2)}}));
  EXPECT_EQ(vc["leads"]["police"]["agency"], "cambs-police");
  ASSERT_EQ(vc["deadlines"].size(), 2u);
  EXPECT_EQ(vc["deadlines"][0]["name"], "acceptance");
  EXPECT_EQ(vc["deadlines"][0]["due"], "2026-12-29T10:00:00.000Z");
  EXPECT_EQ(vc["deadlines"][0]["status"], "met_late");
  EXPECT_EQ(vc["deadlines"][1]["status"], "met_late");
  EXPECT_EQ(vc["deadlines"][1]["met_at"], FormatTimeMs(held));
  EXPECT_EQ(Events(brad, false), Events(cambs, false));
  EXPECT_THAT(Events(cambs, false), ElementsAre("proposed", "delivered", "accepted", "accepted",
                                                "leads_changed", "conference_held"));
  EXPECT_EQ(vc["history"][0]["agency"], "bradford-csc");
  EXPECT_EQ(vc["history"][2]["role"], "police_lead");

  // Who may see it: both areas' CSC and police, nobody else.
  EXPECT_TRUE(CanView(brad, kWyp));
  EXPECT_TRUE(CanView(cambs, kCambsCsc));
  EXPECT_FALSE(CanView(cambs, kCuh));
  EXPECT_FALSE(CanView(cambs, Actor{"york-csc", config::Role::kCsc, "york"}));
}

TEST_F(TransferStory, DeclinedTransferLeavesBradfordLeading) {
  const Transition& proposed =
      Ok(Propose(kBradfordCsc, Request(Reason::kMoved), kT0, calendar_, settings_));
  Transfer brad = proposed.transfer;
  const Transition& delivered =
      Ok(ApplyMessage(nullptr, Carry(proposed.outbound[0]), "cambridgeshire", kT0 + 1000));
  Transfer cambs = delivered.transfer;
  // Reason moved: no urgent notice, only the delivery notices.
  EXPECT_THAT(Kinds(delivered.notices),
              ElementsAre("transfer_delivered/csc", "transfer_delivered/police"));
  brad = Ok(ApplyMessage(&brad, Carry(delivered.outbound[0]), "bradford", kT0 + 2000)).transfer;

  const Transition& csc_ok =
      Ok(Accept(cambs, kCambsCsc, LeadRole::kCsc, "Team manager", kT0 + kHour));
  cambs = csc_ok.transfer;
  ExpectError(Decline(cambs, kCambsPolice, LeadRole::kPolice, "", kT0 + 2 * kHour),
              ErrorCode::kInvalidInput, "reason");
  ExpectError(Decline(cambs, kCambsCsc, LeadRole::kCsc, "no", kT0 + 2 * kHour),
              ErrorCode::kConflict, "csc_lead has already accepted");
  const Transition& declined = Ok(Decline(cambs, kCambsPolice, LeadRole::kPolice,
                                          "Family returned to Bradford", kT0 + 2 * kHour));
  cambs = declined.transfer;
  EXPECT_EQ(cambs.state, State::kDeclined);
  EXPECT_EQ(cambs.leads.csc.agency, "bradford-csc");
  EXPECT_EQ(cambs.leads.police.agency, "wyp");
  EXPECT_THAT(Actions(declined.audit), ElementsAre("transfer_declined"));
  EXPECT_EQ(declined.audit[0].text, "Family returned to Bradford");              // sealed free text
  EXPECT_EQ(declined.audit[0].detail.dump().find("Family"), std::string::npos);  // R7
  EXPECT_THAT(Kinds(declined.notices),
              ElementsAre("transfer_declined/csc", "transfer_declined/police"));

  ExpectError(Accept(cambs, kCambsPolice, LeadRole::kPolice, "DI Example", kT0 + 3 * kHour),
              ErrorCode::kConflict, "was declined by police_lead (cambs-police)");
  ExpectError(Decline(cambs, kCambsPolice, LeadRole::kPolice, "again", kT0 + 3 * kHour),
              ErrorCode::kConflict, "was declined");
  ExpectError(RecordConference(cambs, kCambsCsc, kT0 + 3 * kHour, kT0 + 3 * kHour),
              ErrorCode::kConflict, "declined");

  // The decline goes back to the sender; its CSC and police hear it and keep the lead.
  brad = Ok(ApplyMessage(&brad, Carry(csc_ok.outbound[0]), "bradford", kT0 + 2 * kHour)).transfer;
  const Transition& back =
      Ok(ApplyMessage(&brad, Carry(declined.outbound[0]), "bradford", kT0 + 3 * kHour));
  brad = back.transfer;
  EXPECT_EQ(brad.state, State::kDeclined);
  EXPECT_EQ(brad.leads, cambs.leads);
  EXPECT_THAT(Kinds(back.notices),
              ElementsAre("transfer_declined/csc", "transfer_declined/police"));
  EXPECT_EQ(back.notices[0].area, "bradford");
  EXPECT_EQ(back.notices[0].body["declined"]["reason"], "Family returned to Bradford");

  // Nothing escalates once declined; the deadlines are closed.
  for (const Transfer* copy : {&brad, &cambs}) {
    EXPECT_TRUE(DueEscalations(*copy, kConferenceDue + kHour, kInterval).notices.empty());
    EXPECT_EQ(NextEscalationAt(*copy, kInterval), std::nullopt);
    EXPECT_EQ(RenderTransfer(*copy, kConferenceDue)["deadlines"][0]["status"], "closed");
    EXPECT_EQ(RenderTransfer(*copy, kConferenceDue)["declined"]["role"], "police_lead");
  }
}

TEST_F(TransferStory, ProposeChecksItsInput) {
  ExpectError(Propose(kWyp, Request(Reason::kMoved), kT0, calendar_, settings_),
              ErrorCode::kForbidden, "proposed by a csc agency; wyp is police");
  ProposeRequest own = Request(Reason::kMoved);
  own.to_area = "bradford";
  auto r = Propose(kBradfordCsc, own, kT0, calendar_, settings_);
  ExpectError(r, ErrorCode::kInvalidInput, "problem");
  EXPECT_EQ(r.status().problems()[0].where, "/to_area");
  ProposeRequest bad_subject = Request(Reason::kMoved);
  bad_subject.subject = "nhs:9990000019";
  auto r2 = Propose(kBradfordCsc, bad_subject, kT0, calendar_, settings_);
  ExpectError(r2, ErrorCode::kInvalidInput, "problem");
  EXPECT_EQ(r2.status().problems()[0].where, "/subject");
  ProposeRequest no_police = Request(Reason::kMoved);
  no_police.police_agency.clear();
  ExpectError(Propose(kBradfordCsc, no_police, kT0, calendar_, settings_), ErrorCode::kInternal,
              "no police agency");
  ProposeRequest bad_summary = Request(Reason::kMoved);
  bad_summary.policy.redacted = 0;
  ExpectError(Propose(kBradfordCsc, bad_summary, kT0, calendar_, settings_), ErrorCode::kInternal,
              "would be malformed");
  // Configured deadlines.
  DeadlineSettings quick{0, 2, kHour};
  const Transition& t = Ok(Propose(kBradfordCsc, Request(Reason::kMoved), kT0, calendar_, quick));
  EXPECT_EQ(t.transfer.deadlines[0].due_ms, kT0);
  EXPECT_EQ(t.transfer.deadlines[1].due_ms, At("2026-12-30T10:00:00Z"));
}

TEST_F(TransferStory, MessagesThatDoNotBelongAreRefused) {
  const Transition& proposed =
      Ok(Propose(kBradfordCsc, Request(Reason::kMoved), kT0, calendar_, settings_));
  const Transfer brad = proposed.transfer;
  const Transition& delivered =
      Ok(ApplyMessage(nullptr, proposed.outbound[0], "cambridgeshire", kT0 + 1000));
  const Transfer cambs = delivered.transfer;

  Bundle accept = Ok(Accept(cambs, kCambsCsc, LeadRole::kCsc, "TM", kT0 + kHour)).outbound[0];
  // For a transfer this gateway does not hold.
  ExpectError(ApplyMessage(nullptr, accept, "bradford", kT0), ErrorCode::kNotFound, "no transfer");
  // From an area that is not the transfer's other side.
  Bundle stranger = accept;
  stranger.from_area = "york";
  ExpectError(ApplyMessage(&brad, stranger, "bradford", kT0), ErrorCode::kForbidden,
              "does not belong to transfer");
  // Answers go to the sending gateway only.
  Bundle misrouted = accept;
  misrouted.from_area = "bradford";
  misrouted.to_area = "cambridgeshire";
  ExpectError(ApplyMessage(&cambs, misrouted, "cambridgeshire", kT0), ErrorCode::kConflict,
              "takes only its proposal");
  // A proposal addressed elsewhere.
  ExpectError(ApplyMessage(nullptr, proposed.outbound[0], "york", kT0), ErrorCode::kInvalidInput,
              "addressed to cambridgeshire");

  // An answer that overtakes the ack still implies delivery at the sending side.
  const Transition& early = Ok(ApplyMessage(&brad, accept, "bradford", kT0 + kHour + 1));
  EXPECT_EQ(early.transfer.state, State::kDelivered);
  EXPECT_THAT(Actions(early.audit), ElementsAre("transfer_delivered", "transfer_accepted"));
  const Transition& late_ack =
      Ok(ApplyMessage(&early.transfer, delivered.outbound[0], "bradford", kT0 + kHour + 2));
  EXPECT_FALSE(late_ack.duplicate);
  EXPECT_TRUE(late_ack.audit.empty());
  EXPECT_EQ(late_ack.transfer.state, State::kDelivered);
}

TEST(TransferStored, BrokenCopiesAreNamed) {
  const WorkingCalendar calendar;
  auto r = Propose(kBradfordCsc, Request(Reason::kMoved), kT0, calendar, DeadlineSettings{});
  ASSERT_TRUE(r.ok());
  json j = TransferToStoredJson(r->transfer);
  j["leads"]["police"]["agency"] = "";
  auto broken = TransferFromStoredJson(j);
  ASSERT_FALSE(broken.ok());
  EXPECT_THAT(broken.status().detail(), HasSubstr("police lead is empty"));
  j = TransferToStoredJson(r->transfer);
  j["deadlines"][1].erase("due_ms");
  auto missing = TransferFromStoredJson(j);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().detail(), HasSubstr("/deadlines/1/due_ms is missing"));
  j = TransferToStoredJson(r->transfer);
  j["state"] = "accepted";
  EXPECT_FALSE(TransferFromStoredJson(j).ok());
}

}  // namespace
}  // namespace safegate::transfer
