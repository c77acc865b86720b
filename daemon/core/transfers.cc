// Out-of-area transfers in the store (transfers.h): requests checked and turned into workflow
// transitions, each applied in the job's one transaction; peer messages opened before
// anything is stored and applied exactly once; the outbox and the escalation sweep.
#include "daemon/core/transfers.h"

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "daemon/core/crypto.h"
#include "daemon/core/policy_store.h"
#include "daemon/core/subjects.h"
#include "daemon/core/time_format.h"
#include "daemon/transfer/bundle.h"
#include "daemon/transfer/settings.h"
#include "record/record.h"
#include "record/json_pointer.h"

namespace safegate {

using nlohmann::json;

json PeerMessageReceipt::ToJson() const {
  return {{"transfer_id", transfer_id},
          {"message_id", message_id},
          {"kind", kind},
          {"duplicate", duplicate},
          {"state", state}};
}

// Stores that do not implement transfers say so rather than fail to build.
void Gateway::ProposeTransfer(const Caller&, json, Callback<json> done) {
  done(Status::Unavailable("this store does not handle transfers"));
}
void Gateway::GetTransfer(const Caller&, std::string, Callback<json> done) {
  done(Status::Unavailable("this store does not handle transfers"));
}
void Gateway::AnswerTransfer(const Caller&, std::string, std::string, json, Callback<json> done) {
  done(Status::Unavailable("this store does not handle transfers"));
}
void Gateway::ReceivePeerMessage(const Caller&, std::string, Callback<PeerMessageReceipt> done) {
  done(Status::Unavailable("this store does not handle transfers"));
}
void Gateway::TakeOutbox(int64_t, Callback<OutboxBatch> done) {
  done(Status::Unavailable("this store has no transfer outbox"));
}
void Gateway::SettleOutbox(OutboxSettlement, Callback<Empty> done) {
  done(Status::Unavailable("this store has no transfer outbox"));
}

namespace core {
namespace {

using transfer::Bundle;
using transfer::LeadRole;
using transfer::Transfer;
using transfer::Transition;

constexpr const char* kGatewayActor = "safegate";
constexpr const char* kPurpose = "case_transfer";
constexpr size_t kMaxNote = 4000;
constexpr size_t kMaxBy = 200;
constexpr size_t kMaxRecords = 1000;
constexpr int kMaxSweepTransfers = 1000;
constexpr const char* kRefFormat =
    "must be a subject reference: nhs:<10 digits>, csc:<area>:<id> or police:<force>:<id>";

bool IsBlank(const std::string& s) {
  return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

bool IsRecordId(std::string_view id) {
  if (id.size() != 36 || id.substr(0, 4) != "rec_") return false;
  return std::all_of(id.begin() + 4, id.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string NotFoundText() { return "there is no such transfer at this gateway"; }

transfer::Actor ActorOf(const Caller& caller) {
  return transfer::Actor{caller.agency, caller.role, caller.area};
}

// The members of a request body: unknown ones are problems (named by the JSON pointer of a
// fixed text: a member's name is the caller's text and is not echoed).
void CheckMembers(const json& body, std::initializer_list<std::string_view> allowed,
                  std::vector<Problem>& problems) {
  for (const auto& [key, value] : body.items()) {
    (void)value;
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      problems.push_back({"body", "has a member other than " + list});
      return;
    }
  }
}

// A required (or optional) string member; problems name its pointer.
std::optional<std::string> TextMember(const json& body, const char* name, bool required,
                                      size_t max, std::vector<Problem>& problems) {
  const std::string where = std::string("/") + name;
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) {
    if (required) problems.push_back({where, "is required"});
    return std::nullopt;
  }
  if (!it->is_string()) {
    problems.push_back({where, "must be a string"});
    return std::nullopt;
  }
  std::string value = it->get<std::string>();
  if (required && IsBlank(value)) {
    problems.push_back({where, "must not be empty"});
    return std::nullopt;
  }
  if (value.size() > max) {
    problems.push_back({where, "is longer than " + std::to_string(max) + " characters"});
    return std::nullopt;
  }
  return value;
}

// ---- Rows --------------------------------------------------------------------------------

std::string TransferAd(const std::string& id) { return "transfer:" + id; }

Result<std::optional<Transfer>> LoadTransfer(StoreContext& store, const std::string& id) {
  auto q = store.StoreDb().Prepare("SELECT nonce, sealed FROM transfers WHERE transfer_id = ?1");
  if (!q.ok()) return q.status();
  Stmt& s = **q;
  s.Bind(1, id);
  auto row = s.Step();
  if (!row.ok()) return row.status();
  if (!*row) {
    s.Reset();
    return std::optional<Transfer>();
  }
  const std::string nonce = s.Blob(0), sealed = s.Blob(1);
  s.Reset();
  auto stored = store.StoreUnseal(nonce, sealed, TransferAd(id));
  if (!stored.ok()) return stored.status();
  auto t = transfer::TransferFromStoredJson(*stored);
  if (!t.ok()) {
    return Status::Internal("store: the stored transfer " + id +
                            " does not read back: " + t.status().detail());
  }
  if (Status s2 = transfer::CheckInvariants(*t); !s2.ok()) return s2;
  return std::optional<Transfer>(std::move(*t));
}

Status SaveTransfer(StoreContext& store, const Transfer& t, int64_t now,
                    std::optional<int64_t> next_escalation) {
  auto sealed = store.StoreKey().Seal(record::CanonicalJson(transfer::TransferToStoredJson(t)),
                                      TransferAd(t.transfer_id));
  if (!sealed.ok()) return sealed.status();
  auto q = store.StoreDb().Prepare(
      "INSERT INTO transfers(transfer_id, side, from_area, to_area, state, created_at_ms, "
      "updated_at_ms, next_escalation_at_ms, nonce, sealed) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
      "ON CONFLICT(transfer_id) DO UPDATE SET state = excluded.state, "
      "updated_at_ms = excluded.updated_at_ms, "
      "next_escalation_at_ms = excluded.next_escalation_at_ms, nonce = excluded.nonce, "
      "sealed = excluded.sealed");
  if (!q.ok()) return q.status();
  Stmt& s = **q;
  s.Bind(1, t.transfer_id).Bind(2, t.IsSending() ? "sending" : "receiving");
  s.Bind(3, t.from_area).Bind(4, t.to_area).Bind(5, transfer::StateName(t.state));
  s.Bind(6, t.created_ms).Bind(7, now).Bind(8, next_escalation);
  s.BindBlob(9, sealed->nonce).BindBlob(10, sealed->ciphertext);
  return s.Run();
}

// A notice from the gateway. Transfer notices carry records and free text, so the whole
// notice is sealed under the at-rest key (bound to its message id); the clear column keeps
// only its kind and the transfer id.
Result<std::string> InsertNotice(StoreContext& store, const std::string& recipient,
                                 const transfer::Notice& n, int64_t now) {
  std::string id = RandomId("msg_");
  auto sealed = store.StoreKey().Seal(record::CanonicalJson(n.body), id);
  if (!sealed.ok()) return sealed.status();
  const json stub = {{"kind", n.kind}, {"transfer_id", n.body.value("transfer_id", "")}};
  auto q = store.StoreDb().Prepare(
      "INSERT INTO messages(message_id, type, recipient, sender, record_id, purpose, "
      "delivered_at_ms, notice_json, view_nonce, view_ciphertext) "
      "VALUES (?1, 'notice', ?2, ?3, NULL, ?4, ?5, ?6, ?7, ?8)");
  if (!q.ok()) return q.status();
  Stmt& s = **q;
  s.Bind(1, id).Bind(2, recipient).Bind(3, kGatewayActor).Bind(4, n.purpose).Bind(5, now);
  s.Bind(6, record::CanonicalJson(stub)).BindBlob(7, sealed->nonce).BindBlob(8, sealed->ciphertext);
  if (Status st = s.Run(); !st.ok()) return st;
  return id;
}

Status Enqueue(StoreContext& store, const Bundle& b, const std::string& sealed, int64_t now) {
  auto q = store.StoreDb().Prepare(
      "INSERT INTO transfer_outbox(peer_area, transfer_id, message_id, sealed, attempts, "
      "next_attempt_at_ms, created_at_ms) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)");
  if (!q.ok()) return q.status();
  Stmt& s = **q;
  s.Bind(1, b.to_area).Bind(2, b.transfer_id).Bind(3, b.message_id).BindBlob(4, sealed);
  s.Bind(5, now);
  return s.Run();
}

AuditEntry EntryOf(const transfer::AuditEvent& ev, int64_t now) {
  AuditEntry e;
  e.at_ms = now;
  e.actor = ev.actor;
  e.action = ev.action;
  e.subject = ev.subject;
  e.text = ev.subject.empty() ? "" : ev.text;
  e.message_id = ev.message_id;
  e.purpose = ev.purpose;
  e.decision = ev.decision;
  e.reasons = ev.reasons;
  e.detail = ev.detail.is_object() ? ev.detail : json::object();
  return e;
}

// The stored record the caller names, as the policy decides on it. Problems name
// /records/<i>; nothing about the record is echoed.
struct NamedRecord {
  std::string record_id;
  record::Record record;
};

Status ResolveRecord(StoreContext& store, const Caller& caller, const std::string& subject,
                     const std::string& id, const std::string& where,
                     std::vector<Problem>& problems, std::vector<NamedRecord>& out) {
  Db& db = store.StoreDb();
  auto q = db.Prepare(
      "SELECT source_agency, nonce, ciphertext, body_deleted_at_ms FROM records "
      "WHERE record_id = ?1");
  if (!q.ok()) return q.status();
  Stmt& s = **q;
  s.Bind(1, id);
  auto row = s.Step();
  if (!row.ok()) return row.status();
  if (!*row) {
    s.Reset();
    problems.push_back({where, "is not a record this gateway holds for you"});
    return Status::Ok();
  }
  const std::string source = s.Text(0), nonce = s.Blob(1), ciphertext = s.Blob(2);
  const bool deleted = !s.IsNull(3);
  s.Reset();
  // The caller must hold the record: its source, or a recipient it was delivered to.
  if (source != caller.agency) {
    auto m = db.Prepare(
        "SELECT 1 FROM messages WHERE record_id = ?1 AND recipient = ?2 AND type = 'record' "
        "AND decision IN ('permit', 'redact') LIMIT 1");
    if (!m.ok()) return m.status();
    (*m)->Bind(1, id).Bind(2, caller.agency);
    auto held = (*m)->Step();
    if (!held.ok()) return held.status();
    (*m)->Reset();
    if (!*held) {
      problems.push_back({where, "is not a record this gateway holds for you"});
      return Status::Ok();
    }
  }
  if (deleted) {
    problems.push_back({where, "was deleted at the end of its retention period"});
    return Status::Ok();
  }
  // About the transfer's child: carrying the reference, or linked to the same subject.
  bool about = false;
  {
    auto r = db.Prepare("SELECT 1 FROM subject_refs WHERE ref = ?1 AND record_id = ?2");
    if (!r.ok()) return r.status();
    (*r)->Bind(1, subject).Bind(2, id);
    auto found = (*r)->Step();
    if (!found.ok()) return found.status();
    (*r)->Reset();
    about = *found;
  }
  if (!about) {
    auto subject_id = store.Subjects().SubjectOf(db, subject);
    if (!subject_id.ok()) return subject_id.status();
    if (*subject_id) {
      auto r = db.Prepare(
          "SELECT 1 FROM record_subjects WHERE record_id = ?1 AND subject_id = ?2");
      if (!r.ok()) return r.status();
      (*r)->Bind(1, id).Bind(2, **subject_id);
      auto found = (*r)->Step();
      if (!found.ok()) return found.status();
      (*r)->Reset();
      about = *found;
    }
  }
  if (!about) {
    problems.push_back({where, "is about another subject than the transfer's"});
    return Status::Ok();
  }
  auto body = store.StoreUnseal(nonce, ciphertext, id);
  if (!body.ok()) return body.status();
  auto parsed = record::ParseRecord(*body);
  if (!parsed.ok()) {
    return Status::Internal("store: record " + id + " does not parse: " +
                            parsed.status().detail());
  }
  out.push_back({id, std::move(*parsed)});
  return Status::Ok();
}

std::string DetailText(const json& detail, const char* key) {
  auto it = detail.find(key);
  return it != detail.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

// ---- Opening ------------------------------------------------------------------------------

Result<std::unique_ptr<TransferStore>> TransferStore::Open(StoreContext& store,
                                                           const DeliveryPolicy& policy,
                                                           const TransferOptions& options) {
  auto keys = transfer::GatewayKeys::LoadOrCreate(store.StoreConfig().data_dir);
  if (!keys.ok()) return keys.status();
  // The configuration's [transfers] section, then what the options override (tests).
  auto configured = transfer::SettingsFromConfig(store.StoreConfig().transfers);
  if (!configured.ok()) return configured.status();
  transfer::WorkingCalendar calendar = std::move(configured->calendar);
  transfer::DeadlineSettings settings = configured->deadlines;
  if (options.bank_holidays) {
    auto holidays = transfer::WorkingCalendar::WithHolidays(*options.bank_holidays);
    if (!holidays.ok()) return holidays.status();
    calendar = std::move(*holidays);
  }
  if (options.acceptance_working_days) {
    settings.acceptance_working_days = *options.acceptance_working_days;
  }
  if (options.conference_working_days) {
    settings.conference_working_days = *options.conference_working_days;
  }
  if (options.escalation_interval_ms) settings.escalation_interval_ms = *options.escalation_interval_ms;
  std::vector<Problem> problems;
  if (settings.acceptance_working_days < 0) {
    problems.push_back({"transfers.acceptance_working_days", "must be 0 or more"});
  }
  if (settings.conference_working_days < 0) {
    problems.push_back({"transfers.conference_working_days", "must be 0 or more"});
  }
  if (settings.escalation_interval_ms <= 0) {
    problems.push_back({"transfers.escalation_interval", "must be more than 0"});
  }
  if (!problems.empty()) return InvalidProblems(std::move(problems));
  return std::unique_ptr<TransferStore>(
      new TransferStore(store, policy, std::move(*keys), std::move(calendar), settings));
}

void TransferStore::SetListener(std::function<void()> listener) {
  std::lock_guard<std::mutex> lock(listener_mu_);
  listener_ = std::move(listener);
}

void TransferStore::NotifyOutbox() {
  std::function<void()> listener;
  {
    std::lock_guard<std::mutex> lock(listener_mu_);
    listener = listener_;
  }
  if (listener) listener();
}

const transfer::PeerDirectory& TransferStore::Peers() {
  auto registry = store_.StoreRegistry();
  if (registry != peers_from_) {
    transfer::PeerDirectory built;
    if (registry) {
      // The registry loader has checked every key; a peer whose keys do not decode is left
      // out (it can neither be sealed to nor verified), not the whole directory.
      for (const config::Peer& p : registry->peers) {
        if (!built.Add(p.area, p.signing_public_key, p.sealing_public_key).ok()) continue;
      }
    }
    peers_ = std::move(built);
    peers_from_ = std::move(registry);
  }
  return peers_;
}

// ---- Applying a transition ----------------------------------------------------------------

Status TransferStore::Apply(const Transition& tr, int64_t now, bool* queued) {
  if (tr.duplicate) return Status::Ok();
  const Transfer& t = tr.transfer;
  if (Status s = transfer::CheckInvariants(t); !s.ok()) return s;
  if (Status s = SaveTransfer(store_, t, now,
                              transfer::NextEscalationAt(t, settings_.escalation_interval_ms));
      !s.ok()) {
    return s;
  }

  // Notices to this area's CSC and police mailboxes.
  const auto registry = store_.StoreRegistry();
  std::vector<std::pair<std::string, std::string>> sent;  // (agency, message id)
  for (const transfer::Notice& n : tr.notices) {
    const config::Agency* to = registry ? registry->FindByRole(n.area, n.role) : nullptr;
    if (to == nullptr) {
      return Status::Internal("no " + std::string(config::RoleName(n.role)) +
                              " agency is registered for area " + n.area +
                              ": the transfer notices of transfer " + t.transfer_id +
                              " have no mailbox to go to");
    }
    auto id = InsertNotice(store_, to->id, n, now);
    if (!id.ok()) return id.status();
    sent.emplace_back(to->id, *id);
  }

  // The audit events; each names the notices it caused (escalations: two per event).
  const bool paired = !tr.audit.empty() && sent.size() == 2 * tr.audit.size();
  for (size_t i = 0; i < tr.audit.size(); ++i) {
    AuditEntry e = EntryOf(tr.audit[i], now);
    json notified = json::array(), notices = json::array();
    for (size_t k = 0; k < sent.size(); ++k) {
      const bool mine = paired ? k / 2 == i : i == 0;
      if (!mine) continue;
      if (std::find(notified.begin(), notified.end(), sent[k].first) == notified.end()) {
        notified.push_back(sent[k].first);
      }
      notices.push_back(sent[k].second);
    }
    if (!notices.empty()) {
      e.detail["notified"] = std::move(notified);
      e.detail["notices"] = std::move(notices);
    }
    if (Status s = store_.StoreAppend(e); !s.ok()) return s;
  }

  // The messages for the peer gateway, sealed now: the outbox never holds plaintext, and a
  // retry sends the same bytes.
  for (const Bundle& b : tr.outbound) {
    const transfer::PeerKeys* peer = Peers().Find(b.to_area);
    if (peer == nullptr) {
      return Status::Unavailable("no peer gateway for area " + b.to_area +
                                 " is configured; add its [[peer]] block and reload");
    }
    auto sealed = transfer::SealBundle(b, *keys_, *peer);
    if (!sealed.ok()) return sealed.status();
    if (Status s = Enqueue(store_, b, *sealed, now); !s.ok()) return s;
    if (queued != nullptr) *queued = true;
  }
  return Status::Ok();
}

// ---- POST /v1/transfers -------------------------------------------------------------------

Status TransferStore::RunPropose(const Caller& caller, const json& body, json& out) {
  const int64_t now = store_.StoreNowMs();
  const config::Config& cfg = store_.StoreConfig();
  if (caller.role != config::Role::kCsc) {
    return Status::Forbidden("a transfer is proposed by a csc agency; " + caller.agency + " is " +
                             std::string(config::RoleName(caller.role)));
  }
  if (caller.area != cfg.area) {
    return Status::Forbidden("a transfer is proposed at the gateway of the sending area (" +
                             cfg.area + "); " + caller.agency + " is in " + caller.area);
  }
  if (!body.is_object()) return InvalidProblems({{"body", "must be a JSON object"}});
  std::vector<Problem> problems;
  CheckMembers(body, {"subject", "to_area", "reason", "records", "note"}, problems);

  std::string subject;
  if (auto ref = TextMember(body, "subject", true, 200, problems)) {
    auto parsed = record::ParseSubjectRef(*ref);
    if (parsed.ok()) {
      subject = parsed->ToString();
    } else {
      problems.push_back({"/subject", kRefFormat});
    }
  }
  std::string to_area;
  const auto registry = store_.StoreRegistry();
  if (auto area = TextMember(body, "to_area", true, 64, problems)) {
    if (!record::IsSlug(*area)) {
      problems.push_back({"/to_area", "must be an area (a-z, 0-9 and '-')"});
    } else if (*area == cfg.area) {
      problems.push_back({"/to_area", "must be another area than this gateway's (" + cfg.area +
                                          ")"});
    } else if (registry == nullptr || registry->FindPeer(*area) == nullptr) {
      problems.push_back({"/to_area", "is not the area of a peer gateway in this gateway's "
                                      "registry"});
    } else {
      const transfer::PeerKeys* keys = Peers().Find(*area);
      if (keys == nullptr || !keys->sealing || !keys->signing) {
        problems.push_back({"/to_area", "names a peer gateway whose public keys have not been "
                                        "exchanged yet (safegatectl keys show, then its [[peer]] "
                                        "block)"});
      } else {
        to_area = *area;
      }
    }
  }
  std::optional<transfer::Reason> reason;
  if (auto r = TextMember(body, "reason", true, 64, problems)) {
    reason = transfer::ParseReason(*r);
    if (!reason) problems.push_back({"/reason", "must be moved, placement or missing"});
  }
  std::string note;
  if (auto n = TextMember(body, "note", false, kMaxNote, problems)) note = *n;

  std::vector<std::pair<std::string, size_t>> record_ids;  // (id, index in the request)
  if (auto it = body.find("records"); it == body.end()) {
    problems.push_back({"/records", "is required: an array of record ids (may be empty)"});
  } else if (!it->is_array()) {
    problems.push_back({"/records", "must be an array of record ids"});
  } else if (it->size() > kMaxRecords) {
    problems.push_back({"/records", "names more than 1000 records"});
  } else {
    std::set<std::string> seen;
    for (size_t i = 0; i < it->size(); ++i) {
      const std::string where = "/records/" + std::to_string(i);
      const json& id = (*it)[i];
      if (!id.is_string() || !IsRecordId(id.get<std::string>())) {
        problems.push_back({where, "must be a record id (rec_ and 32 hex digits)"});
      } else if (!seen.insert(id.get<std::string>()).second) {
        problems.push_back({where, "names the same record as an earlier entry"});
      } else {
        record_ids.emplace_back(id.get<std::string>(), i);
      }
    }
  }
  // Each record must be the caller's to pass on, and about this child.
  std::vector<NamedRecord> records;
  if (!subject.empty()) {
    for (const auto& [id, index] : record_ids) {
      if (Status s = ResolveRecord(store_, caller, subject, id,
                                   "/records/" + std::to_string(index), problems, records);
          !s.ok()) {
        return s;
      }
    }
  }
  if (!problems.empty()) return InvalidProblems(std::move(problems));

  const config::Agency* police =
      registry ? registry->FindByRole(cfg.area, config::Role::kPolice) : nullptr;
  if (police == nullptr) {
    return Status::Unavailable("no police agency is registered for area " + cfg.area +
                               ": a transfer names one as police lead until it is accepted");
  }

  // What travels: each record as the policy decides it for case_transfer, once for the
  // receiving area's CSC and once for its police, with the record's own agency as source.
  transfer::ProposeRequest req;
  req.transfer_id = transfer::NewTransferId();
  req.subject = subject;
  req.to_area = to_area;
  req.reason = *reason;
  req.note = note;
  req.police_agency = police->id;
  req.policy.policy_version = policy_.Version();
  json decisions = json::array();
  for (const NamedRecord& named : records) {
    Caller source{named.record.source.agency, config::Role::kCsc, cfg.area};
    const config::Agency* owner = registry->Find(named.record.source.agency);
    PushRequest push;
    push.record = named.record;
    push.purpose = kPurpose;
    DecisionContext context;
    if (Status s = PrepareDecisionContext(store_, policy_, push, now, context); !s.ok()) return s;
    for (config::Role role : {config::Role::kCsc, config::Role::kPolice}) {
      DeliveryDecision d;
      if (owner == nullptr) {
        // The record's agency has left the registry: nobody can speak for its sharing.
        d.decision = "deny";
        d.reasons = {"the record's source agency is no longer registered"};
      } else {
        source.role = owner->role;
        source.area = owner->area;
        config::Agency recipient;
        recipient.id = to_area + ":" + std::string(config::RoleName(role));
        recipient.name = "the " + std::string(config::RoleName(role)) + " lead of " + to_area;
        recipient.role = role;
        recipient.area = to_area;
        d = policy_.DecideInContext(source, push, recipient, context);
      }
      decisions.push_back({{"record_id", named.record_id},
                           {"for", config::RoleName(role)},
                           {"decision", d.decision}});
      if (d.decision == "deny") {
        ++req.policy.denied;
        continue;
      }
      transfer::TransferRecord tr;
      tr.recipient = role;
      const json& detail = d.audit_detail;
      tr.decision.effect = d.decision == "redact" ? "redact" : "permit";
      tr.decision.lawful_basis = d.lawful_basis;
      if (tr.decision.lawful_basis.empty()) {
        tr.decision.lawful_basis = "not stated: no sharing policy is configured (placeholder)";
      }
      tr.decision.governing_rule = DetailText(detail, "governing_rule");
      if (d.decision == "redact") {
        if (!d.redacted_record) return Status::Internal("policy decided redact without a view");
        tr.record = *d.redacted_record;
        ++req.policy.redacted;
        if (auto w = detail.find("withheld"); w != detail.end() && w->is_array()) {
          for (const json& p : *w) {
            if (p.is_string()) tr.decision.withheld.push_back(p.get<std::string>());
          }
        }
      } else if (d.decision == "permit") {
        tr.record = record::ToJson(named.record);
        ++req.policy.permitted;
      } else {
        return Status::Internal("policy returned an unknown decision for a transfer record");
      }
      req.records.push_back(std::move(tr));
    }
  }

  auto tr = transfer::Propose(ActorOf(caller), req, now, calendar_, settings_);
  if (!tr.ok()) return tr.status();
  if (Status s = Apply(*tr, now); !s.ok()) return s;
  const Transfer& t = tr->transfer;
  out = {{"transfer_id", t.transfer_id},
         {"state", transfer::StateName(t.state)},
         {"from_area", t.from_area},
         {"to_area", t.to_area},
         {"leads", transfer::RenderTransfer(t, now)["leads"]},
         {"policy",
          {{"purpose", kPurpose},
           {"policy_version", req.policy.policy_version},
           {"permitted", req.policy.permitted},
           {"redacted", req.policy.redacted},
           {"denied", req.policy.denied}}},
         {"decisions", std::move(decisions)}};
  return Status::Ok();
}

TypedJob<json> TransferStore::PreparePropose(const Caller& caller, json body) {
  TypedJob<json> job;
  auto shared = std::make_shared<const json>(std::move(body));
  job.run = [this, caller, shared](json& out) { return RunPropose(caller, *shared, out); };
  job.on_refused = [this, caller](const Status& refusal) {
    AuditEntry e = RefusalEntry(store_.StoreNowMs(), caller.agency, "transfer_propose", refusal);
    return store_.StoreAppend(e);
  };
  return job;
}

// ---- GET /v1/transfers/{id} ---------------------------------------------------------------

TypedJob<json> TransferStore::PrepareGet(const Caller& caller, std::string transfer_id) {
  TypedJob<json> job;
  job.run = [this, caller, transfer_id](json& out) -> Status {
    const int64_t now = store_.StoreNowMs();
    if (!transfer::IsTransferId(transfer_id)) return Status::NotFound(NotFoundText());
    auto t = LoadTransfer(store_, transfer_id);
    if (!t.ok()) return t.status();
    if (!*t) return Status::NotFound(NotFoundText());
    if (!transfer::CanView(**t, ActorOf(caller))) {
      return Status::Forbidden("transfer " + transfer_id + " is seen by the csc and police "
                               "agencies of " + (*t)->from_area + " and " + (*t)->to_area);
    }
    out = transfer::RenderTransfer(**t, now);
    AuditEntry e;
    e.at_ms = now;
    e.actor = caller.agency;
    e.action = "transfer_read";
    e.subject = (*t)->subject;
    e.purpose = kPurpose;
    e.detail = {{"transfer_id", transfer_id}, {"state", transfer::StateName((*t)->state)}};
    return store_.StoreAppend(e);
  };
  job.on_refused = [this, caller, transfer_id](const Status& refusal) {
    AuditEntry e = RefusalEntry(store_.StoreNowMs(), caller.agency, "transfer_read", refusal);
    if (transfer::IsTransferId(transfer_id)) e.detail["transfer_id"] = transfer_id;
    return store_.StoreAppend(e);
  };
  return job;
}

// ---- POST /v1/transfers/{id}/accept|decline|conference -------------------------------------

Status TransferStore::RunAnswer(const Caller& caller, const std::string& id,
                                const std::string& action, const json& body, json& out) {
  const int64_t now = store_.StoreNowMs();
  if (!body.is_object()) return InvalidProblems({{"body", "must be a JSON object"}});
  std::vector<Problem> problems;
  std::optional<LeadRole> role;
  std::string text;
  std::optional<int64_t> held_at;
  if (action == "accept" || action == "decline") {
    const bool accept = action == "accept";
    CheckMembers(body, {"role", accept ? "accepted_by" : "reason"}, problems);
    if (auto r = TextMember(body, "role", true, 64, problems)) {
      role = transfer::ParseLeadRole(*r);
      if (!role) problems.push_back({"/role", "must be csc_lead or police_lead"});
    }
    if (auto t = TextMember(body, accept ? "accepted_by" : "reason", true,
                            accept ? kMaxBy : kMaxNote, problems)) {
      text = *t;
    }
  } else if (action == "conference") {
    CheckMembers(body, {"held_at"}, problems);
    if (auto h = TextMember(body, "held_at", false, 64, problems)) {
      held_at = transfer::ParseTimeMs(*h);
      if (!held_at) {
        problems.push_back({"/held_at", "must be an RFC 3339 UTC date-time such as "
                                        "2027-01-12T10:00:00Z"});
      }
    }
  } else {
    return Status::NotFound("no such transfer action");
  }
  if (!problems.empty()) return InvalidProblems(std::move(problems));
  if (!transfer::IsTransferId(id)) return Status::NotFound(NotFoundText());
  auto t = LoadTransfer(store_, id);
  if (!t.ok()) return t.status();
  if (!*t) return Status::NotFound(NotFoundText());
  const transfer::Actor actor = ActorOf(caller);
  Result<Transition> tr = Status::Internal("no transition");
  if (action == "accept") {
    tr = transfer::Accept(**t, actor, *role, text, now);
  } else if (action == "decline") {
    tr = transfer::Decline(**t, actor, *role, text, now);
  } else {
    tr = transfer::RecordConference(**t, actor, held_at.value_or(now), now);
  }
  if (!tr.ok()) return tr.status();
  if (Status s = Apply(*tr, now); !s.ok()) return s;
  out = transfer::RenderTransfer(tr->transfer, now);
  return Status::Ok();
}

TypedJob<json> TransferStore::PrepareAnswer(const Caller& caller, std::string transfer_id,
                                            std::string action, json body) {
  TypedJob<json> job;
  auto shared = std::make_shared<const json>(std::move(body));
  job.run = [this, caller, transfer_id, action, shared](json& out) {
    return RunAnswer(caller, transfer_id, action, *shared, out);
  };
  job.on_refused = [this, caller, transfer_id, action](const Status& refusal) {
    const std::string operation =
        action == "accept" || action == "decline" || action == "conference"
            ? "transfer_" + action
            : "transfer_answer";
    AuditEntry e = RefusalEntry(store_.StoreNowMs(), caller.agency, operation, refusal);
    if (transfer::IsTransferId(transfer_id)) e.detail["transfer_id"] = transfer_id;
    return store_.StoreAppend(e);
  };
  return job;
}

// ---- POST /v1/peer/messages ----------------------------------------------------------------

Status TransferStore::RunReceive(const Caller& peer, const std::string& sealed,
                                 PeerMessageReceipt& out, json& refusal) {
  const int64_t now = store_.StoreNowMs();
  const config::Config& cfg = store_.StoreConfig();
  refusal = json::object();
  const auto registry = store_.StoreRegistry();
  if (peer.role != config::Role::kGateway || peer.agency != "gateway:" + peer.area ||
      registry == nullptr || registry->FindPeer(peer.area) == nullptr) {
    return Status::Forbidden("transfer messages are taken only from the peer gateways in this "
                             "gateway's registry");
  }
  refusal["peer"] = peer.area;
  // Opened and verified before anything is stored.
  transfer::OpenResult opened = transfer::OpenBundle(sealed, *keys_, cfg.area, Peers(), peer.area);
  if (!opened.ok()) {
    refusal["refusal"] = transfer::RefusalCodeName(opened.refusal().code);
    if (!opened.refusal().where.empty()) refusal["where"] = opened.refusal().where;
    return opened.status();
  }
  const transfer::OpenedBundle& o = opened.value();
  const Bundle& b = o.bundle;
  refusal["transfer_id"] = b.transfer_id;
  refusal["message_id"] = b.message_id;
  out.transfer_id = b.transfer_id;
  out.message_id = b.message_id;
  out.kind = std::string(transfer::MessageKindName(b.kind));

  // Exactly once: the same message again is answered as before, and nothing happens; other
  // bytes under a message id already taken are refused.
  const std::string hash = Sha256(o.payload);
  Db& db = store_.StoreDb();
  {
    auto q = db.Prepare(
        "SELECT payload_sha256 FROM transfer_received WHERE transfer_id = ?1 AND message_id = ?2");
    if (!q.ok()) return q.status();
    (*q)->Bind(1, b.transfer_id).Bind(2, b.message_id);
    auto row = (*q)->Step();
    if (!row.ok()) return row.status();
    const bool seen = *row;
    const std::string seen_hash = seen ? (*q)->Blob(0) : "";
    (*q)->Reset();
    if (seen && seen_hash == hash) {
      auto t = LoadTransfer(store_, b.transfer_id);
      if (!t.ok()) return t.status();
      out.duplicate = true;
      out.state = *t ? std::string(transfer::StateName((*t)->state)) : "";
      return Status::Ok();
    }
    if (seen) {
      refusal["refusal"] = "replayed";
      return Status::Conflict("replayed: message " + b.message_id +
                              " was already received from gateway " + peer.area +
                              " with other content; the different message is refused");
    }
  }

  auto existing = LoadTransfer(store_, b.transfer_id);
  if (!existing.ok()) return existing.status();
  auto tr = transfer::ApplyMessage(*existing ? &**existing : nullptr, b, cfg.area, now);
  if (!tr.ok()) {
    refusal["refusal"] = "not_applicable";
    return tr.status();
  }
  // The evidence: the signed payload and its signature, sealed at rest.
  const json evidence = {{"payload", transfer::ToBase64(o.payload)},
                         {"signature", transfer::ToBase64(o.signature)}};
  auto kept = store_.StoreKey().Seal(record::CanonicalJson(evidence),
                                     "transfer_received:" + b.transfer_id + ":" + b.message_id);
  if (!kept.ok()) return kept.status();
  {
    auto q = db.Prepare(
        "INSERT INTO transfer_received(transfer_id, message_id, kind, from_area, payload_sha256, "
        "received_at_ms, nonce, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    if (!q.ok()) return q.status();
    Stmt& s = **q;
    s.Bind(1, b.transfer_id).Bind(2, b.message_id).Bind(3, out.kind).Bind(4, b.from_area);
    s.BindBlob(5, hash).Bind(6, now).BindBlob(7, kept->nonce).BindBlob(8, kept->ciphertext);
    if (Status st = s.Run(); !st.ok()) return st;
  }
  if (Status s = Apply(*tr, now); !s.ok()) return s;
  out.duplicate = tr->duplicate;
  out.state = std::string(transfer::StateName(tr->transfer.state));
  return Status::Ok();
}

TypedJob<PeerMessageReceipt> TransferStore::PrepareReceive(const Caller& peer, std::string sealed) {
  TypedJob<PeerMessageReceipt> job;
  auto shared = std::make_shared<const std::string>(std::move(sealed));
  auto refusal = std::make_shared<json>(json::object());
  job.run = [this, peer, shared, refusal](PeerMessageReceipt& out) {
    return RunReceive(peer, *shared, out, *refusal);
  };
  job.on_refused = [this, peer, refusal](const Status& status) {
    AuditEntry e = RefusalEntry(store_.StoreNowMs(), peer.agency, "transfer_message", status);
    for (const auto& [k, v] : refusal->items()) e.detail[k] = v;
    return store_.StoreAppend(e);
  };
  return job;
}

// ---- The outbox ---------------------------------------------------------------------------

TypedJob<OutboxBatch> TransferStore::PrepareTakeOutbox(int64_t now_ms) {
  TypedJob<OutboxBatch> job;
  job.run = [this, now_ms](OutboxBatch& out) -> Status {
    // The first unsent message of each peer: a peer's messages go in the order queued.
    auto q = store_.StoreDb().Prepare(
        "SELECT o.seq, o.peer_area, o.transfer_id, o.message_id, o.sealed, o.attempts, "
        "o.created_at_ms, o.next_attempt_at_ms FROM transfer_outbox o "
        "WHERE o.failed_at_ms IS NULL AND o.seq = (SELECT min(p.seq) FROM transfer_outbox p "
        "WHERE p.peer_area = o.peer_area AND p.failed_at_ms IS NULL) ORDER BY o.seq");
    if (!q.ok()) return q.status();
    Stmt& s = **q;
    for (;;) {
      auto row = s.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      OutboxItem item;
      item.seq = s.Int(0);
      item.peer_area = s.Text(1);
      item.transfer_id = s.Text(2);
      item.message_id = s.Text(3);
      item.attempts = static_cast<int>(s.Int(5));
      item.created_at_ms = s.Int(6);
      item.next_attempt_at_ms = s.Int(7);
      if (item.next_attempt_at_ms <= now_ms) {
        item.sealed = s.Blob(4);
        out.due.push_back(std::move(item));
      } else if (!out.next_due_ms || item.next_attempt_at_ms < *out.next_due_ms) {
        out.next_due_ms = item.next_attempt_at_ms;
      }
    }
    s.Reset();
    return Status::Ok();
  };
  return job;
}

TypedJob<Empty> TransferStore::PrepareSettle(OutboxSettlement settlement) {
  TypedJob<Empty> job;
  job.run = [this, settlement](Empty&) -> Status {
    const int64_t now = store_.StoreNowMs();
    Db& db = store_.StoreDb();
    std::string peer, transfer_id, message_id;
    {
      auto q = db.Prepare(
          "SELECT peer_area, transfer_id, message_id FROM transfer_outbox WHERE seq = ?1");
      if (!q.ok()) return q.status();
      (*q)->Bind(1, settlement.seq);
      auto row = (*q)->Step();
      if (!row.ok()) return row.status();
      if (!*row) {
        (*q)->Reset();
        return Status::Ok();  // settled already (a second sender, or a restart): nothing to do
      }
      peer = (*q)->Text(0);
      transfer_id = (*q)->Text(1);
      message_id = (*q)->Text(2);
      (*q)->Reset();
    }
    const std::string error = settlement.error.substr(0, 500);
    switch (settlement.outcome) {
      case OutboxSettlement::Outcome::kDelivered: {
        auto d = db.Prepare("DELETE FROM transfer_outbox WHERE seq = ?1");
        if (!d.ok()) return d.status();
        (*d)->Bind(1, settlement.seq);
        return (*d)->Run();
      }
      case OutboxSettlement::Outcome::kRetry: {
        auto u = db.Prepare(
            "UPDATE transfer_outbox SET attempts = attempts + 1, next_attempt_at_ms = ?1, "
            "last_error = ?2 WHERE seq = ?3");
        if (!u.ok()) return u.status();
        (*u)->Bind(1, settlement.next_attempt_at_ms).Bind(2, error).Bind(3, settlement.seq);
        return (*u)->Run();
      }
      case OutboxSettlement::Outcome::kRefused: {
        auto u = db.Prepare(
            "UPDATE transfer_outbox SET attempts = attempts + 1, failed_at_ms = ?1, "
            "last_error = ?2 WHERE seq = ?3");
        if (!u.ok()) return u.status();
        (*u)->Bind(1, now).Bind(2, error).Bind(3, settlement.seq);
        if (Status s = (*u)->Run(); !s.ok()) return s;
        // Kept, not retried: an operator has to look (the peer said why, in its own audit).
        AuditEntry e;
        e.at_ms = now;
        e.actor = kGatewayActor;
        e.action = "transfer_message_refused";
        e.message_id = message_id;
        e.purpose = kPurpose;
        auto t = LoadTransfer(store_, transfer_id);
        if (t.ok() && *t) e.subject = (*t)->subject;
        e.reasons = {"the peer gateway " + peer + " refused the message: " + error};
        e.detail = {{"transfer_id", transfer_id},
                    {"peer", peer},
                    {"status", settlement.http_status},
                    {"error", error}};
        return store_.StoreAppend(e);
      }
    }
    return Status::Internal("unknown outbox outcome");
  };
  return job;
}

Status TransferStore::ReadOutboxStats(Db& reader, int64_t now_ms, Gateway::Stats& stats) {
  auto q = reader.Prepare(
      "SELECT peer_area, sum(failed_at_ms IS NULL), "
      "min(CASE WHEN failed_at_ms IS NULL THEN created_at_ms END), "
      "sum(failed_at_ms IS NOT NULL) FROM transfer_outbox GROUP BY peer_area");
  if (!q.ok()) return q.status();
  Stmt& s = **q;
  for (;;) {
    auto row = s.Step();
    if (!row.ok()) {
      s.Reset();
      return row.status();
    }
    if (!*row) break;
    const std::string peer = s.Text(0);
    stats.outbox_depth[peer] = s.Int(1);
    stats.outbox_oldest_age_ms[peer] = s.IsNull(2) ? 0 : std::max<int64_t>(0, now_ms - s.Int(2));
    stats.outbox_failed[peer] = s.Int(3);
  }
  s.Reset();
  return Status::Ok();
}

// ---- Escalation ---------------------------------------------------------------------------

Status TransferStore::SweepEscalations(int64_t now_ms, SweepReport& out) {
  std::vector<std::string> due;
  {
    auto q = store_.StoreDb().Prepare(
        "SELECT transfer_id FROM transfers WHERE next_escalation_at_ms <= ?1 "
        "ORDER BY next_escalation_at_ms LIMIT ?2");
    if (!q.ok()) return q.status();
    (*q)->Bind(1, now_ms).Bind(2, static_cast<int64_t>(kMaxSweepTransfers));
    for (;;) {
      auto row = (*q)->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      due.push_back((*q)->Text(0));
    }
    (*q)->Reset();
  }
  for (const std::string& id : due) {
    auto t = LoadTransfer(store_, id);
    if (!t.ok()) return t.status();
    if (!*t) continue;
    Transition tr = transfer::DueEscalations(**t, now_ms, settings_.escalation_interval_ms);
    if (Status s = Apply(tr, now_ms); !s.ok()) return s;
    out.transfer_escalations += static_cast<int>(tr.audit.size());
  }
  return Status::Ok();
}

}  // namespace core
}  // namespace safegate
