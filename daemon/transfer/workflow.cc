#include "daemon/transfer/workflow.h"

#include <algorithm>
#include <cassert>

#include "record/record.h"

namespace safegate::transfer {
namespace {

using nlohmann::json;

constexpr std::string_view kStateNames[] = {"proposed", "delivered", "accepted", "declined"};
constexpr std::string_view kDeadlineStatusNames[] = {"pending", "met", "met_late", "overdue",
                                                     "closed"};
constexpr LeadRole kLeadRoles[] = {LeadRole::kCsc, LeadRole::kPolice};
constexpr config::Role kNoticeRoles[] = {config::Role::kCsc, config::Role::kPolice};

bool Contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string RoleText(config::Role role) { return std::string(config::RoleName(role)); }
std::string LeadText(LeadRole role) { return std::string(LeadRoleName(role)); }

std::optional<Acceptance>& AcceptanceOf(Transfer& t, LeadRole role) {
  return role == LeadRole::kCsc ? t.csc_acceptance : t.police_acceptance;
}
const std::optional<Acceptance>& AcceptanceOf(const Transfer& t, LeadRole role) {
  return role == LeadRole::kCsc ? t.csc_acceptance : t.police_acceptance;
}

Deadline* FindDeadlineMut(Transfer& t, std::string_view name) {
  for (Deadline& d : t.deadlines) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

json LeadJson(const Lead& lead) {
  return {{"area", lead.area}, {"agency", lead.agency}, {"since", FormatTimeMs(lead.since_ms)}};
}

json LeadsJson(const Leads& leads) {
  return {{"csc", LeadJson(leads.csc)}, {"police", LeadJson(leads.police)}};
}

json DeadlinesDueJson(const Transfer& t) {
  json out = json::array();
  for (const Deadline& d : t.deadlines) {
    out.push_back({{"name", d.name}, {"due", FormatTimeMs(d.due_ms)}});
  }
  return out;
}

// The members every transfer notice carries.
json NoticeBody(const Transfer& t, std::string_view kind) {
  return {{"kind", kind},
          {"transfer_id", t.transfer_id},
          {"subject", t.subject},
          {"from_area", t.from_area},
          {"to_area", t.to_area},
          {"reason", ReasonName(t.reason)},
          {"state", StateName(t.state)},
          {"leads", LeadsJson(t.leads)}};
}

// One notice per local CSC and police agency; `extra(role)` adds role-specific members.
template <typename Extra>
void NotifyLocal(Transition& tr, std::string_view kind, Extra extra, bool urgent = false,
                 std::string purpose = "case_transfer") {
  for (config::Role role : kNoticeRoles) {
    Notice n;
    n.kind = std::string(kind);
    n.area = tr.transfer.local_area;
    n.role = role;
    n.purpose = purpose;
    n.urgent = urgent;
    n.body = NoticeBody(tr.transfer, kind);
    if (urgent) n.body["urgent"] = true;
    const json more = extra(role);  // a named value: items() must not outlive it
    for (const auto& [k, v] : more.items()) n.body[k] = v;
    tr.notices.push_back(std::move(n));
  }
}

void NotifyLocal(Transition& tr, std::string_view kind) {
  NotifyLocal(tr, kind, [](config::Role) { return json::object(); });
}

AuditEvent Audit(const Transfer& t, std::string_view action, std::string actor,
                 std::string message_id) {
  AuditEvent e;
  e.action = std::string(action);
  e.actor = std::move(actor);
  e.subject = t.subject;
  e.message_id = std::move(message_id);
  e.detail = {{"transfer_id", t.transfer_id},
              {"from_area", t.from_area},
              {"to_area", t.to_area},
              {"reason", ReasonName(t.reason)},
              {"state", StateName(t.state)}};
  return e;
}

std::string PeerGateway(std::string_view area) { return "gateway:" + std::string(area); }

// A message from this copy's gateway to the peer's.
Bundle Outbound(const Transfer& t, MessageKind kind, int64_t created_ms,
                std::optional<LeadRole> role = std::nullopt) {
  Bundle b;
  b.transfer_id = t.transfer_id;
  b.message_id = MessageIdFor(t.transfer_id, kind, role);
  b.kind = kind;
  b.from_area = t.local_area;
  b.to_area = t.PeerArea();
  b.created_ms = created_ms;
  return b;
}

void AddHistory(Transfer& t, int64_t at_ms, std::string event, std::string area,
                std::string agency = "", std::string role = "", std::string detail = "") {
  t.history.push_back({at_ms, std::move(event), std::move(area), std::move(agency), std::move(role),
                       std::move(detail)});
}

// Who may answer (accept, decline) for `role`: the receiving area's agency of that kind, at
// the receiving gateway.
Status CheckAnswerer(const Transfer& t, const Actor& actor, LeadRole role, std::string_view verb) {
  if (t.IsSending()) {
    return Status::Forbidden("transfer " + t.transfer_id + " is " + std::string(verb) +
                             "ed at the receiving gateway (" + t.to_area +
                             "); this gateway is its sending side (" + t.from_area + ")");
  }
  if (actor.area != t.to_area) {
    return Status::Forbidden("only the receiving area (" + t.to_area + ") may " +
                             std::string(verb) + " transfer " + t.transfer_id + "; agency " +
                             actor.agency + " is in " + actor.area);
  }
  const config::Role needed = AgencyRoleFor(role);
  if (actor.role != needed) {
    return Status::Forbidden(LeadText(role) + " is " + std::string(verb) + "ed by the " +
                             t.to_area + " " + RoleText(needed) + " agency; " + actor.agency +
                             " is " + RoleText(actor.role));
  }
  return Status::Ok();
}

// accept and decline need a transfer still open, and a role that has not answered yet.
Status CheckOpenFor(const Transfer& t, LeadRole role, std::string_view verb) {
  if (t.state == State::kDeclined) {
    const Declination& d = *t.declination;
    return Status::Conflict("transfer " + t.transfer_id + " was declined by " + LeadText(d.role) +
                            " (" + d.agency + ") at " + FormatTimeMs(d.at_ms) + "; it cannot be " +
                            std::string(verb) + "ed");
  }
  if (t.state == State::kAccepted) {
    return Status::Conflict("transfer " + t.transfer_id +
                            " is already accepted by both leads; it "
                            "cannot be " +
                            std::string(verb) + "ed");
  }
  if (const auto& a = AcceptanceOf(t, role)) {
    return Status::Conflict(LeadText(role) + " has already accepted transfer " + t.transfer_id +
                            " (" + a->agency + " at " + FormatTimeMs(a->at_ms) + ")");
  }
  return Status::Ok();
}

// Records one role's acceptance at `at_ms`; on the second, completes the transfer: state
// accepted, both leads to the accepting agencies, the acceptance deadline met.
void ApplyAcceptance(Transition& tr, LeadRole role, const std::string& agency,
                     const std::string& by, int64_t at_ms, const std::string& message_id) {
  Transfer& t = tr.transfer;
  AcceptanceOf(t, role) = Acceptance{agency, by, at_ms};
  AddHistory(t, at_ms, "accepted", t.to_area, agency, LeadText(role), by);
  const bool complete = t.csc_acceptance && t.police_acceptance;
  if (complete) {
    t.state = State::kAccepted;
    t.leads.csc = Lead{t.to_area, t.csc_acceptance->agency, at_ms};
    t.leads.police = Lead{t.to_area, t.police_acceptance->agency, at_ms};
    if (Deadline* d = FindDeadlineMut(t, kAcceptanceDeadline); d && !d->met_ms) d->met_ms = at_ms;
    AddHistory(t, at_ms, "leads_changed", t.to_area, "", "",
               "csc_lead " + t.leads.csc.agency + ", police_lead " + t.leads.police.agency);
  }
  AuditEvent e = Audit(t, "transfer_accepted", agency, message_id);
  e.decision = "accept";
  e.detail["role"] = LeadText(role);
  e.detail["complete"] = complete;
  e.reasons.push_back(LeadText(role) + " accepted");
  if (complete) {
    e.reasons.push_back("both receiving leads accepted: " + t.to_area + " leads from now");
  } else {
    const LeadRole other = role == LeadRole::kCsc ? LeadRole::kPolice : LeadRole::kCsc;
    e.reasons.push_back(LeadText(other) + " has not accepted yet: " + t.from_area +
                        " remains lead");
  }
  tr.audit.push_back(std::move(e));
  if (complete) NotifyLocal(tr, "transfer_accepted");
}

void ApplyDeclination(Transition& tr, const Declination& d, const std::string& message_id) {
  Transfer& t = tr.transfer;
  t.state = State::kDeclined;
  t.declination = d;
  AddHistory(t, d.at_ms, "declined", t.to_area, d.agency, LeadText(d.role), d.reason);
  AuditEvent e = Audit(t, "transfer_declined", d.agency, message_id);
  e.decision = "decline";
  e.text = d.reason;  // free text: sealed with the subject, not in the entry's bytes
  e.detail["role"] = LeadText(d.role);
  e.reasons.push_back(LeadText(d.role) + " declined: " + t.from_area + " remains lead");
  tr.audit.push_back(std::move(e));
  NotifyLocal(tr, "transfer_declined", [&](config::Role) {
    return json{{"declined",
                 {{"role", LeadText(d.role)},
                  {"agency", d.agency},
                  {"by", d.by},
                  {"reason", d.reason},
                  {"at", FormatTimeMs(d.at_ms)}}}};
  });
}

bool IsActiveFlag(const json& record) {
  if (!record.is_object()) return false;
  const auto kind = record.find("kind");
  const auto body = record.find("body");
  if (kind == record.end() || *kind != "flag" || body == record.end() || !body->is_object()) {
    return false;
  }
  const auto status = body->find("status");
  return status != body->end() && *status == "active";
}

Result<Transition> ReceiveProposal(const Bundle& m, std::string_view local_area, int64_t now_ms) {
  if (m.to_area != local_area) {
    return Status::Invalid("the proposal is addressed to " + m.to_area,
                           {{"/payload/to_area", "must be " + std::string(local_area)}});
  }
  if (!m.proposal) return Status::Internal("proposal message without its proposal body");
  const ProposalBody& p = *m.proposal;
  std::vector<Problem> problems;
  for (size_t i = 0; i < p.deadlines.size(); ++i) {
    if (p.deadlines[i].name != kAcceptanceDeadline && p.deadlines[i].name != kConferenceDeadline) {
      problems.push_back({"/payload/proposal/deadlines/" + std::to_string(i) + "/name",
                          "must be acceptance or transfer_in_conference"});
    }
  }
  if (!problems.empty()) return Status::Invalid("the proposal's deadlines are not known", problems);

  Transition tr;
  Transfer& t = tr.transfer;
  t.transfer_id = m.transfer_id;
  t.subject = p.subject;
  t.from_area = m.from_area;
  t.to_area = m.to_area;
  t.local_area = std::string(local_area);
  t.reason = p.reason;
  t.note = p.note;
  t.state = State::kDelivered;
  t.created_ms = m.created_ms;
  t.leads = p.leads;
  for (const DeadlineDue& d : p.deadlines) t.deadlines.push_back({d.name, d.due_ms, {}, 0, {}});
  AddHistory(t, m.created_ms, "proposed", t.from_area, p.leads.csc.agency, "",
             std::string(ReasonName(p.reason)));
  AddHistory(t, now_ms, "delivered", t.to_area);

  Bundle ack = Outbound(t, MessageKind::kAck, now_ms);
  ack.ack = AckBody{m.message_id};
  t.applied_messages = {m.message_id, ack.message_id};

  AuditEvent e = Audit(t, "transfer_delivered", PeerGateway(t.from_area), m.message_id);
  e.text = p.note;
  e.detail["records"] = p.records.size();
  e.detail["policy"] = {{"permitted", p.policy.permitted},
                        {"redacted", p.policy.redacted},
                        {"denied", p.policy.denied},
                        {"policy_version", p.policy.policy_version}};
  e.reasons.push_back("stored at the receiving gateway; " + t.from_area +
                      " remains lead until both " + t.to_area + " leads accept");
  tr.audit.push_back(std::move(e));

  auto records_for = [&](config::Role role, bool active_flags_only) {
    json out = json::array();
    for (const TransferRecord& r : p.records) {
      if (r.recipient != role) continue;
      if (active_flags_only && !IsActiveFlag(r.record)) continue;
      out.push_back(r.record);
    }
    return out;
  };
  // A child missing from the receiving area: police and CSC there learn at once, with the
  // active flags, before anyone has accepted anything.
  if (t.reason == Reason::kMissing) {
    NotifyLocal(
        tr, "transfer_missing",
        [&](config::Role role) {
          return json{{"flags", records_for(role, true)}};
        },
        /*urgent=*/true, "missing_child");
  }
  NotifyLocal(tr, "transfer_delivered", [&](config::Role role) {
    return json{{"note", t.note},
                {"deadlines", DeadlinesDueJson(t)},
                {"records", records_for(role, false)},
                {"records_withheld_by_policy", p.policy.denied}};
  });
  tr.outbound.push_back(std::move(ack));
  return tr;
}

Result<Transition> ApplyFromReceiver(const Transfer& existing, const Bundle& m, int64_t now_ms) {
  Transition tr{existing, {}, {}, {}, false};
  Transfer& t = tr.transfer;
  (void)now_ms;  // the sending side takes the receiving gateway's times, so both copies agree
  // Under the outbox's per-peer order an ack always comes first; an answer that overtakes it
  // still implies delivery.
  auto mark_delivered = [&](int64_t at_ms, const std::string& message_id) {
    if (t.state != State::kProposed) return;
    t.state = State::kDelivered;
    AddHistory(t, at_ms, "delivered", t.to_area);
    AuditEvent e = Audit(t, "transfer_delivered", PeerGateway(t.to_area), message_id);
    e.reasons.push_back("the receiving gateway stored the transfer; " + t.from_area +
                        " remains lead until both " + t.to_area + " leads accept");
    tr.audit.push_back(std::move(e));
  };
  switch (m.kind) {
    case MessageKind::kProposal:
      return Status::Internal("ApplyFromReceiver given a proposal");
    case MessageKind::kAck:
      mark_delivered(m.created_ms, m.message_id);
      break;
    case MessageKind::kAccept: {
      const AnswerBody& a = *m.accept;
      if (Status s = CheckOpenFor(t, a.role, "accept"); !s.ok()) return s;
      mark_delivered(m.created_ms, m.message_id);
      ApplyAcceptance(tr, a.role, a.agency, a.by, m.created_ms, m.message_id);
      break;
    }
    case MessageKind::kDecline: {
      const AnswerBody& a = *m.decline;
      if (Status s = CheckOpenFor(t, a.role, "decline"); !s.ok()) return s;
      mark_delivered(m.created_ms, m.message_id);
      ApplyDeclination(tr, Declination{a.role, a.agency, a.by, a.reason, m.created_ms},
                       m.message_id);
      break;
    }
    case MessageKind::kConferenceHeld: {
      if (t.state == State::kDeclined) {
        return Status::Conflict("transfer " + t.transfer_id +
                                " was declined; no conference is recorded for it");
      }
      Deadline* d = FindDeadlineMut(t, kConferenceDeadline);
      if (d == nullptr) {
        return Status::Conflict("transfer " + t.transfer_id + " has no " +
                                std::string(kConferenceDeadline) + " deadline");
      }
      const ConferenceBody& c = *m.conference_held;
      d->met_ms = c.held_at_ms;
      AddHistory(t, m.created_ms, "conference_held", t.to_area, c.agency, "",
                 "held at " + FormatTimeMs(c.held_at_ms));
      AuditEvent e = Audit(t, "transfer_conference_held", c.agency, m.message_id);
      e.detail["held_at"] = FormatTimeMs(c.held_at_ms);
      tr.audit.push_back(std::move(e));
      break;
    }
  }
  t.applied_messages.push_back(m.message_id);
  return tr;
}

// Reading the stored form back: the first fault, named by its member.
class StoredReader {
 public:
  const std::string& error() const { return error_; }
  void Fail(const std::string& where, std::string_view what) {
    if (error_.empty()) error_ = where + " " + std::string(what);
  }
  const json* Get(const json& obj, std::string_view key, const std::string& where) {
    if (!obj.is_object()) {
      Fail(where, "is not an object");
      return nullptr;
    }
    const auto it = obj.find(key);
    if (it == obj.end()) {
      Fail(where + "/" + std::string(key), "is missing");
      return nullptr;
    }
    return &*it;
  }
  std::string Str(const json& obj, std::string_view key, const std::string& where) {
    const json* v = Get(obj, key, where);
    if (v == nullptr) return "";
    if (!v->is_string()) {
      Fail(where + "/" + std::string(key), "is not a string");
      return "";
    }
    return v->get<std::string>();
  }
  int64_t Int(const json& obj, std::string_view key, const std::string& where) {
    const json* v = Get(obj, key, where);
    if (v == nullptr) return 0;
    if (!v->is_number_integer()) {
      Fail(where + "/" + std::string(key), "is not an integer");
      return 0;
    }
    return v->get<int64_t>();
  }
  std::optional<int64_t> OptInt(const json& obj, std::string_view key, const std::string& where) {
    const json* v = Get(obj, key, where);
    if (v == nullptr || v->is_null()) return std::nullopt;
    if (!v->is_number_integer()) {
      Fail(where + "/" + std::string(key), "is not an integer or null");
      return std::nullopt;
    }
    return v->get<int64_t>();
  }
  const json* Array(const json& obj, std::string_view key, const std::string& where) {
    const json* v = Get(obj, key, where);
    if (v != nullptr && !v->is_array()) {
      Fail(where + "/" + std::string(key), "is not an array");
      return nullptr;
    }
    return v;
  }
  template <typename T, typename Parse>
  T Enum(const json& obj, std::string_view key, const std::string& where, Parse parse) {
    const std::string s = Str(obj, key, where);
    const auto v = parse(s);
    if (!v) {
      Fail(where + "/" + std::string(key), "is not a known value");
      return T{};
    }
    return *v;
  }

 private:
  std::string error_;
};

json StoredLead(const Lead& l) {
  return {{"area", l.area}, {"agency", l.agency}, {"since_ms", l.since_ms}};
}

Lead ReadLead(StoredReader& r, const json& j, const std::string& w) {
  return Lead{r.Str(j, "area", w), r.Str(j, "agency", w), r.Int(j, "since_ms", w)};
}

json StoredAcceptance(const std::optional<Acceptance>& a) {
  if (!a) return nullptr;
  return {{"agency", a->agency}, {"by", a->by}, {"at_ms", a->at_ms}};
}

std::optional<Acceptance> ReadAcceptance(StoredReader& r, const json& obj, std::string_view key,
                                         const std::string& w) {
  const json* v = r.Get(obj, key, w);
  if (v == nullptr || v->is_null()) return std::nullopt;
  const std::string at = w + "/" + std::string(key);
  return Acceptance{r.Str(*v, "agency", at), r.Str(*v, "by", at), r.Int(*v, "at_ms", at)};
}

}  // namespace

std::string_view StateName(State state) { return kStateNames[static_cast<size_t>(state)]; }

std::optional<State> ParseState(std::string_view name) {
  for (size_t i = 0; i < std::size(kStateNames); ++i) {
    if (kStateNames[i] == name) return static_cast<State>(i);
  }
  return std::nullopt;
}

std::string_view DeadlineStatusName(DeadlineStatus status) {
  return kDeadlineStatusNames[static_cast<size_t>(status)];
}

DeadlineStatus StatusOf(const Deadline& d, State state, int64_t now_ms) {
  if (d.met_ms) return *d.met_ms <= d.due_ms ? DeadlineStatus::kMet : DeadlineStatus::kMetLate;
  if (state == State::kDeclined) return DeadlineStatus::kClosed;
  return now_ms >= d.due_ms ? DeadlineStatus::kOverdue : DeadlineStatus::kPending;
}

const Deadline* Transfer::FindDeadline(std::string_view name) const {
  for (const Deadline& d : deadlines) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

Result<Transition> Propose(const Actor& actor, const ProposeRequest& req, int64_t now_ms,
                           const WorkingCalendar& calendar, const DeadlineSettings& settings) {
  if (actor.role != config::Role::kCsc) {
    return Status::Forbidden("a transfer is proposed by a csc agency; " + actor.agency + " is " +
                             RoleText(actor.role));
  }
  if (!IsTransferId(req.transfer_id)) {
    return Status::Internal("transfer id " + req.transfer_id + " is not trf_ and 32 hex digits");
  }
  if (settings.acceptance_working_days < 0 || settings.conference_working_days < 0) {
    return Status::Internal("transfer deadlines must be 0 or more working days");
  }
  std::vector<Problem> problems;
  if (!record::ParseSubjectRef(req.subject).ok()) {
    problems.push_back({"/subject",
                        "must be a subject reference: nhs:<10 digits>, "
                        "csc:<area>:<id> or police:<force>:<id>"});
  }
  if (!record::IsSlug(req.to_area)) {
    problems.push_back({"/to_area", "must be an area (a-z, 0-9 and '-')"});
  } else if (req.to_area == actor.area) {
    problems.push_back({"/to_area", "must be another area than " + actor.area});
  }
  if (!problems.empty()) {
    return Status::Invalid("the transfer has " + std::to_string(problems.size()) + " problem" +
                               (problems.size() == 1 ? "" : "s"),
                           std::move(problems));
  }
  if (req.police_agency.empty()) {
    return Status::Internal("no police agency is registered for area " + actor.area +
                            ": a transfer needs one as police lead");
  }

  Transition tr;
  Transfer& t = tr.transfer;
  t.transfer_id = req.transfer_id;
  t.subject = req.subject;
  t.from_area = actor.area;
  t.to_area = req.to_area;
  t.local_area = actor.area;
  t.reason = req.reason;
  t.note = req.note;
  t.state = State::kProposed;
  t.created_ms = now_ms;
  t.leads.csc = Lead{actor.area, actor.agency, now_ms};
  t.leads.police = Lead{actor.area, req.police_agency, now_ms};
  t.deadlines = {
      {std::string(kAcceptanceDeadline),
       calendar.AddWorkingDays(now_ms, settings.acceptance_working_days),
       {},
       0,
       {}},
      {std::string(kConferenceDeadline),
       calendar.AddWorkingDays(now_ms, settings.conference_working_days),
       {},
       0,
       {}},
  };
  AddHistory(t, now_ms, "proposed", t.from_area, actor.agency, "",
             std::string(ReasonName(t.reason)));

  Bundle b = Outbound(t, MessageKind::kProposal, now_ms);
  ProposalBody p;
  p.subject = t.subject;
  p.reason = t.reason;
  p.note = t.note;
  p.leads = t.leads;
  for (const Deadline& d : t.deadlines) p.deadlines.push_back({d.name, d.due_ms});
  p.records = req.records;
  p.policy = req.policy;
  b.proposal = std::move(p);
  // Never propose what the receiving gateway would refuse as malformed.
  if (Result<Bundle> check = BundleFromJson(BundleToJson(b), "/proposal"); !check.ok()) {
    return Status(ErrorCode::kInternal,
                  "the transfer message would be malformed: " + check.status().detail(),
                  check.status().problems());
  }
  t.applied_messages.push_back(b.message_id);

  AuditEvent e = Audit(t, "transfer_proposed", actor.agency, b.message_id);
  e.text = t.note;
  e.detail["records"] = req.records.size();
  e.detail["policy"] = {{"permitted", req.policy.permitted},
                        {"redacted", req.policy.redacted},
                        {"denied", req.policy.denied},
                        {"policy_version", req.policy.policy_version}};
  e.reasons.push_back(t.from_area + " remains lead until both " + t.to_area + " leads accept");
  tr.audit.push_back(std::move(e));
  tr.outbound.push_back(std::move(b));
  return tr;
}

Result<Transition> Accept(const Transfer& transfer, const Actor& actor, LeadRole role,
                          const std::string& accepted_by, int64_t now_ms) {
  if (Status s = CheckAnswerer(transfer, actor, role, "accept"); !s.ok()) return s;
  if (Status s = CheckOpenFor(transfer, role, "accept"); !s.ok()) return s;
  if (accepted_by.empty()) {
    return Status::Invalid("accepted_by is required",
                           {{"/accepted_by", "must name who accepted the lead"}});
  }
  Transition tr{transfer, {}, {}, {}, false};
  Bundle b = Outbound(tr.transfer, MessageKind::kAccept, now_ms, role);
  b.accept = AnswerBody{role, actor.agency, accepted_by, ""};
  ApplyAcceptance(tr, role, actor.agency, accepted_by, now_ms, b.message_id);
  tr.transfer.applied_messages.push_back(b.message_id);
  tr.outbound.push_back(std::move(b));
  return tr;
}

Result<Transition> Decline(const Transfer& transfer, const Actor& actor, LeadRole role,
                           const std::string& reason, int64_t now_ms) {
  if (Status s = CheckAnswerer(transfer, actor, role, "decline"); !s.ok()) return s;
  if (Status s = CheckOpenFor(transfer, role, "decline"); !s.ok()) return s;
  if (reason.empty()) {
    return Status::Invalid("reason is required",
                           {{"/reason", "must say why the transfer is declined"}});
  }
  Transition tr{transfer, {}, {}, {}, false};
  Bundle b = Outbound(tr.transfer, MessageKind::kDecline, now_ms);
  b.decline = AnswerBody{role, actor.agency, "", reason};
  ApplyDeclination(tr, Declination{role, actor.agency, "", reason, now_ms}, b.message_id);
  tr.transfer.applied_messages.push_back(b.message_id);
  tr.outbound.push_back(std::move(b));
  return tr;
}

Result<Transition> RecordConference(const Transfer& transfer, const Actor& actor,
                                    int64_t held_at_ms, int64_t now_ms) {
  if (transfer.IsSending() || actor.area != transfer.to_area || actor.role != config::Role::kCsc) {
    return Status::Forbidden("the transfer-in conference of transfer " + transfer.transfer_id +
                             " is recorded by the " + transfer.to_area +
                             " csc agency at its "
                             "gateway; " +
                             actor.agency + " is " + RoleText(actor.role) + " in " + actor.area);
  }
  if (transfer.state == State::kDeclined) {
    return Status::Conflict("transfer " + transfer.transfer_id +
                            " was declined; no conference is recorded for it");
  }
  const Deadline* d = transfer.FindDeadline(kConferenceDeadline);
  if (d == nullptr) {
    return Status::Conflict("transfer " + transfer.transfer_id + " has no " +
                            std::string(kConferenceDeadline) + " deadline");
  }
  if (d->met_ms) {
    return Status::Conflict("the transfer-in conference of transfer " + transfer.transfer_id +
                            " was already recorded (held at " + FormatTimeMs(*d->met_ms) + ")");
  }
  if (held_at_ms > now_ms) {
    return Status::Invalid("held_at is in the future", {{"/held_at", "must not be in the future"}});
  }
  Transition tr{transfer, {}, {}, {}, false};
  Bundle b = Outbound(tr.transfer, MessageKind::kConferenceHeld, now_ms);
  b.conference_held = ConferenceBody{actor.agency, held_at_ms};
  // The same path as the sending side's, so that both copies record it alike.
  Transfer& t = tr.transfer;
  FindDeadlineMut(t, kConferenceDeadline)->met_ms = held_at_ms;
  AddHistory(t, now_ms, "conference_held", t.to_area, actor.agency, "",
             "held at " + FormatTimeMs(held_at_ms));
  AuditEvent e = Audit(t, "transfer_conference_held", actor.agency, b.message_id);
  e.detail["held_at"] = FormatTimeMs(held_at_ms);
  tr.audit.push_back(std::move(e));
  t.applied_messages.push_back(b.message_id);
  tr.outbound.push_back(std::move(b));
  return tr;
}

Result<Transition> ApplyMessage(const Transfer* existing, const Bundle& message,
                                std::string_view local_area, int64_t now_ms) {
  if (existing != nullptr && Contains(existing->applied_messages, message.message_id)) {
    return Transition{*existing, {}, {}, {}, true};
  }
  if (message.kind == MessageKind::kProposal) {
    if (existing != nullptr) {
      return Status::Conflict("transfer " + message.transfer_id +
                              " already exists at this gateway; another proposal for it is "
                              "refused");
    }
    return ReceiveProposal(message, local_area, now_ms);
  }
  if (existing == nullptr) {
    return Status::NotFound("no transfer " + message.transfer_id + " at this gateway for the " +
                            std::string(MessageKindName(message.kind)) + " message");
  }
  if (existing->transfer_id != message.transfer_id) {
    return Status::Internal("message of transfer " + message.transfer_id + " applied to " +
                            existing->transfer_id);
  }
  if (message.from_area != existing->PeerArea() || message.to_area != local_area) {
    return Status::Forbidden("a message from " + message.from_area + " to " + message.to_area +
                             " does not belong to transfer " + existing->transfer_id + " (" +
                             existing->from_area + " to " + existing->to_area + ")");
  }
  if (!existing->IsSending()) {
    return Status::Conflict("the receiving gateway of transfer " + existing->transfer_id +
                            " takes only its proposal from the sending gateway, not " +
                            std::string(MessageKindName(message.kind)));
  }
  return ApplyFromReceiver(*existing, message, now_ms);
}

Transition DueEscalations(const Transfer& transfer, int64_t now_ms, int64_t interval_ms) {
  assert(interval_ms > 0);
  if (interval_ms <= 0) interval_ms = kDefaultEscalationIntervalMs;
  Transition tr{transfer, {}, {}, {}, false};
  if (transfer.state == State::kDeclined) return tr;
  Transfer& t = tr.transfer;
  for (Deadline& d : t.deadlines) {
    if (d.met_ms || now_ms < d.due_ms) continue;
    const int64_t k = (now_ms - d.due_ms) / interval_ms + 1;
    if (k <= d.escalations) continue;
    d.escalations = static_cast<int>(k);
    d.last_escalated_ms = now_ms;
    AddHistory(t, now_ms, "escalated", t.local_area, "", "",
               d.name + " overdue (escalation " + std::to_string(k) + ")");
    AuditEvent e = Audit(t, "transfer_escalated", "safegate", "");
    e.detail["deadline"] = d.name;
    e.detail["due"] = FormatTimeMs(d.due_ms);
    e.detail["escalation"] = k;
    e.reasons.push_back(d.name + " deadline passed at " + FormatTimeMs(d.due_ms) +
                        " without being met");
    tr.audit.push_back(std::move(e));
    const Deadline snapshot = d;
    NotifyLocal(tr, "transfer_escalated", [&](config::Role) {
      return json{{"deadline", snapshot.name},
                  {"due", FormatTimeMs(snapshot.due_ms)},
                  {"escalation", snapshot.escalations},
                  {"overdue_ms", now_ms - snapshot.due_ms}};
    });
  }
  return tr;
}

std::optional<int64_t> NextEscalationAt(const Transfer& t, int64_t interval_ms) {
  if (t.state == State::kDeclined || interval_ms <= 0) return std::nullopt;
  std::optional<int64_t> next;
  for (const Deadline& d : t.deadlines) {
    if (d.met_ms) continue;
    const int64_t at = d.due_ms + static_cast<int64_t>(d.escalations) * interval_ms;
    if (!next || at < *next) next = at;
  }
  return next;
}

Status CheckInvariants(const Transfer& t) {
  auto broken = [&](std::string what) {
    return Status::Internal("transfer " + t.transfer_id + ": " + what);
  };
  if (t.from_area.empty() || t.to_area.empty() || t.from_area == t.to_area) {
    return broken("from_area and to_area must be two different areas");
  }
  if (t.local_area != t.from_area && t.local_area != t.to_area) {
    return broken("local_area " + t.local_area + " is neither from_area nor to_area");
  }
  for (const auto& [name, lead] :
       {std::pair{"csc", &t.leads.csc}, std::pair{"police", &t.leads.police}}) {
    if (lead->area.empty() || lead->agency.empty()) {
      return broken(std::string(name) + " lead is empty: a transfer always names its leads");
    }
  }
  const bool both = t.csc_acceptance && t.police_acceptance;
  const std::string& lead_area = t.state == State::kAccepted ? t.to_area : t.from_area;
  if (t.leads.csc.area != lead_area || t.leads.police.area != lead_area) {
    return broken("in state " + std::string(StateName(t.state)) + " the leads must be " +
                  lead_area + "'s");
  }
  if ((t.state == State::kAccepted) != both) {
    return broken("state accepted exactly when both receiving leads have accepted");
  }
  if ((t.state == State::kDeclined) != t.declination.has_value()) {
    return broken("state declined exactly when a declination is recorded");
  }
  if (t.state == State::kAccepted && (t.leads.csc.agency != t.csc_acceptance->agency ||
                                      t.leads.police.agency != t.police_acceptance->agency)) {
    return broken("after acceptance the leads are the accepting agencies");
  }
  return Status::Ok();
}

bool CanView(const Transfer& t, const Actor& actor) {
  return (actor.role == config::Role::kCsc || actor.role == config::Role::kPolice) &&
         (actor.area == t.from_area || actor.area == t.to_area);
}

json RenderTransfer(const Transfer& t, int64_t now_ms) {
  json deadlines = json::array();
  for (const Deadline& d : t.deadlines) {
    json j = {{"name", d.name},
              {"due", FormatTimeMs(d.due_ms)},
              {"status", DeadlineStatusName(StatusOf(d, t.state, now_ms))},
              {"escalations", d.escalations}};
    if (d.met_ms) j["met_at"] = FormatTimeMs(*d.met_ms);
    deadlines.push_back(std::move(j));
  }
  json history = json::array();
  for (const HistoryEntry& h : t.history) {
    json j = {{"at", FormatTimeMs(h.at_ms)}, {"event", h.event}, {"area", h.area}};
    if (!h.agency.empty()) j["agency"] = h.agency;
    if (!h.role.empty()) j["role"] = h.role;
    if (!h.detail.empty()) j["detail"] = h.detail;
    history.push_back(std::move(j));
  }
  json acceptances = json::object();
  for (LeadRole role : kLeadRoles) {
    const auto& a = AcceptanceOf(t, role);
    acceptances[LeadText(role)] =
        a ? json{{"agency", a->agency}, {"accepted_by", a->by}, {"at", FormatTimeMs(a->at_ms)}}
          : json(nullptr);
  }
  json out = {{"transfer_id", t.transfer_id},      {"subject", t.subject},
              {"from_area", t.from_area},          {"to_area", t.to_area},
              {"reason", ReasonName(t.reason)},    {"note", t.note},
              {"state", StateName(t.state)},       {"created_at", FormatTimeMs(t.created_ms)},
              {"leads", LeadsJson(t.leads)},       {"acceptances", std::move(acceptances)},
              {"deadlines", std::move(deadlines)}, {"history", std::move(history)}};
  if (t.declination) {
    const Declination& d = *t.declination;
    out["declined"] = {{"role", LeadText(d.role)},
                       {"agency", d.agency},
                       {"reason", d.reason},
                       {"at", FormatTimeMs(d.at_ms)}};
  }
  return out;
}

json TransferToStoredJson(const Transfer& t) {
  json deadlines = json::array();
  for (const Deadline& d : t.deadlines) {
    deadlines.push_back(
        {{"name", d.name},
         {"due_ms", d.due_ms},
         {"met_ms", d.met_ms ? json(*d.met_ms) : json(nullptr)},
         {"escalations", d.escalations},
         {"last_escalated_ms", d.last_escalated_ms ? json(*d.last_escalated_ms) : json(nullptr)}});
  }
  json history = json::array();
  for (const HistoryEntry& h : t.history) {
    history.push_back({{"at_ms", h.at_ms},
                       {"event", h.event},
                       {"area", h.area},
                       {"agency", h.agency},
                       {"role", h.role},
                       {"detail", h.detail}});
  }
  json declination = nullptr;
  if (t.declination) {
    const Declination& d = *t.declination;
    declination = {{"role", LeadText(d.role)},
                   {"agency", d.agency},
                   {"by", d.by},
                   {"reason", d.reason},
                   {"at_ms", d.at_ms}};
  }
  return {{"format", 1},
          {"transfer_id", t.transfer_id},
          {"subject", t.subject},
          {"from_area", t.from_area},
          {"to_area", t.to_area},
          {"local_area", t.local_area},
          {"reason", ReasonName(t.reason)},
          {"note", t.note},
          {"state", StateName(t.state)},
          {"created_ms", t.created_ms},
          {"leads", {{"csc", StoredLead(t.leads.csc)}, {"police", StoredLead(t.leads.police)}}},
          {"csc_acceptance", StoredAcceptance(t.csc_acceptance)},
          {"police_acceptance", StoredAcceptance(t.police_acceptance)},
          {"declination", std::move(declination)},
          {"deadlines", std::move(deadlines)},
          {"history", std::move(history)},
          {"applied_messages", t.applied_messages}};
}

Result<Transfer> TransferFromStoredJson(const json& j) {
  StoredReader r;
  Transfer t;
  if (r.Int(j, "format", "") != 1 && r.error().empty()) r.Fail("/format", "is not 1");
  t.transfer_id = r.Str(j, "transfer_id", "");
  t.subject = r.Str(j, "subject", "");
  t.from_area = r.Str(j, "from_area", "");
  t.to_area = r.Str(j, "to_area", "");
  t.local_area = r.Str(j, "local_area", "");
  t.reason = r.Enum<Reason>(j, "reason", "", ParseReason);
  t.note = r.Str(j, "note", "");
  t.state = r.Enum<State>(j, "state", "", ParseState);
  t.created_ms = r.Int(j, "created_ms", "");
  if (const json* leads = r.Get(j, "leads", "")) {
    if (const json* c = r.Get(*leads, "csc", "/leads")) t.leads.csc = ReadLead(r, *c, "/leads/csc");
    if (const json* p = r.Get(*leads, "police", "/leads")) {
      t.leads.police = ReadLead(r, *p, "/leads/police");
    }
  }
  t.csc_acceptance = ReadAcceptance(r, j, "csc_acceptance", "");
  t.police_acceptance = ReadAcceptance(r, j, "police_acceptance", "");
  if (const json* d = r.Get(j, "declination", ""); d && !d->is_null()) {
    t.declination =
        Declination{r.Enum<LeadRole>(*d, "role", "/declination", ParseLeadRole),
                    r.Str(*d, "agency", "/declination"), r.Str(*d, "by", "/declination"),
                    r.Str(*d, "reason", "/declination"), r.Int(*d, "at_ms", "/declination")};
  }
  if (const json* ds = r.Array(j, "deadlines", "")) {
    for (size_t i = 0; i < ds->size(); ++i) {
      const std::string w = "/deadlines/" + std::to_string(i);
      const json& d = (*ds)[i];
      Deadline out;
      out.name = r.Str(d, "name", w);
      out.due_ms = r.Int(d, "due_ms", w);
      out.met_ms = r.OptInt(d, "met_ms", w);
      out.escalations = static_cast<int>(r.Int(d, "escalations", w));
      out.last_escalated_ms = r.OptInt(d, "last_escalated_ms", w);
      t.deadlines.push_back(std::move(out));
    }
  }
  if (const json* hs = r.Array(j, "history", "")) {
    for (size_t i = 0; i < hs->size(); ++i) {
      const std::string w = "/history/" + std::to_string(i);
      const json& h = (*hs)[i];
      t.history.push_back({r.Int(h, "at_ms", w), r.Str(h, "event", w), r.Str(h, "area", w),
                           r.Str(h, "agency", w), r.Str(h, "role", w), r.Str(h, "detail", w)});
    }
  }
  if (const json* ms = r.Array(j, "applied_messages", "")) {
    for (size_t i = 0; i < ms->size(); ++i) {
      if (!(*ms)[i].is_string()) {
        r.Fail("/applied_messages/" + std::to_string(i), "is not a string");
        break;
      }
      t.applied_messages.push_back((*ms)[i].get<std::string>());
    }
  }
  if (!r.error().empty()) return Status::Internal("stored transfer: " + r.error());
  if (Status s = CheckInvariants(t); !s.ok()) return s;
  return t;
}

}  // namespace safegate::transfer
