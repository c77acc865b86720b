// Consent statements (R3): recorded per subject reference and purpose, listed, and looked up
// for the decision step of a push (the latest statement wins: policy/consent.h).
//
// A statement's subject reference, who recorded it and its evidence are sealed with the
// at-rest key (additional data: the consent id); the row is found through the blind index
// of the reference, so the table holds no reference in the clear.
#include <chrono>
#include <set>
#include <utility>

#include "daemon/core/crypto.h"
#include "daemon/core/policy_store.h"
#include "daemon/core/time_format.h"
#include "policy/consent.h"
#include "policy/policy.h"
#include "record/json_pointer.h"

namespace safegate {

using nlohmann::json;

json ConsentRecord::ToJson() const {
  json j = {{"consent_id", consent_id},
            {"subject", subject},
            {"purpose", purpose},
            {"status", status},
            {"recorded_by", recorded_by},
            {"recorded_at", core::FormatTimeMs(recorded_at_ms)},
            {"agency", agency},
            {"stored_at", core::FormatTimeMs(stored_at_ms)}};
  if (evidence) j["evidence"] = *evidence;
  return j;
}

json ConsentList::ToJson() const {
  json list = json::array();
  for (const ConsentRecord& c : consents) list.push_back(c.ToJson());
  json states = json::object();
  for (const auto& [purpose, s] : state) states[purpose] = s;
  return {{"subject", subject}, {"consents", std::move(list)}, {"state", std::move(states)}};
}

namespace core {
namespace {

constexpr size_t kMaxRecordedBy = 200;
constexpr size_t kMaxEvidence = 4000;
// A statement may be dated a little ahead of the gateway's clock (clock skew), not more.
constexpr int64_t kFutureToleranceMs = 5 * 60 * 1000;
constexpr const char* kRefFormat =
    "must be a subject reference: nhs:<10 digits>, csc:<area>:<id> or police:<force>:<id>";

bool MayRecordConsent(config::Role role) {
  return role == config::Role::kPolice || role == config::Role::kHealth ||
         role == config::Role::kCsc;
}

bool IsBlank(const std::string& s) {
  return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

std::string PurposeList() {
  std::string out;
  for (policy::Purpose p : policy::AllPurposes()) {
    if (!out.empty()) out += ", ";
    out += policy::PurposeName(p);
  }
  return out;
}

std::chrono::system_clock::time_point TimePoint(int64_t ms) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

// The body of POST /v1/consents, checked. Problems name JSON pointers and never echo values.
Result<ConsentRecord> ParseConsentBody(const json& body, int64_t now) {
  if (!body.is_object()) return InvalidProblems({{"body", "must be a JSON object"}});
  std::vector<Problem> problems;
  static const std::set<std::string> kMembers = {"subject",     "purpose",     "status",
                                                 "recorded_by", "recorded_at", "evidence"};
  for (const auto& [key, value] : body.items()) {
    (void)value;
    if (kMembers.count(key) == 0) {
      problems.push_back({"body", "has a member other than subject, purpose, status, "
                                  "recorded_by, recorded_at and evidence"});
      break;
    }
  }
  ConsentRecord out;
  auto text = [&](const char* name, std::string& into) -> bool {
    const std::string where = std::string("/") + name;
    auto it = body.find(name);
    if (it == body.end() || it->is_null()) {
      problems.push_back({where, "is required"});
      return false;
    }
    if (!it->is_string()) {
      problems.push_back({where, "must be a string"});
      return false;
    }
    into = it->get<std::string>();
    return true;
  };
  if (std::string ref; text("subject", ref)) {
    auto parsed = record::ParseSubjectRef(ref);
    if (parsed.ok()) {
      out.subject = parsed->ToString();
    } else {
      problems.push_back({"/subject", kRefFormat});
    }
  }
  if (text("purpose", out.purpose) && !policy::ParsePurpose(out.purpose)) {
    problems.push_back({"/purpose", "is not a purpose the sharing policy knows (" +
                                        PurposeList() + ")"});
  }
  if (text("status", out.status) && out.status != "given" && out.status != "refused" &&
      out.status != "withdrawn") {
    problems.push_back({"/status", "must be given, refused or withdrawn"});
  }
  if (text("recorded_by", out.recorded_by)) {
    if (IsBlank(out.recorded_by)) {
      problems.push_back({"/recorded_by", "must not be empty"});
    } else if (out.recorded_by.size() > kMaxRecordedBy) {
      problems.push_back({"/recorded_by", "is longer than 200 characters"});
    }
  }
  if (std::string at; text("recorded_at", at)) {
    auto ms = ParseTimeMs(at);
    if (!ms) {
      problems.push_back(
          {"/recorded_at", "must be an RFC 3339 date-time such as 2024-06-01T12:00:00Z"});
    } else if (*ms > now + kFutureToleranceMs) {
      problems.push_back({"/recorded_at", "is in the future"});
    } else {
      out.recorded_at_ms = *ms;
    }
  }
  if (auto it = body.find("evidence"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) {
      problems.push_back({"/evidence", "must be a string"});
    } else if (it->get<std::string>().size() > kMaxEvidence) {
      problems.push_back({"/evidence", "is longer than 4000 characters"});
    } else if (!IsBlank(it->get<std::string>())) {
      out.evidence = it->get<std::string>();
    }
  }
  if (!problems.empty()) return InvalidProblems(std::move(problems));
  return out;
}

Status StoreConsent(StoreContext& store, ConsentRecord& c) {
  json sealed_fields = {{"subject", c.subject}, {"recorded_by", c.recorded_by}};
  if (c.evidence) sealed_fields["evidence"] = *c.evidence;
  auto sealed = store.StoreKey().Seal(record::CanonicalJson(sealed_fields), c.consent_id);
  if (!sealed.ok()) return sealed.status();
  auto ins = store.StoreDb().Prepare(
      "INSERT INTO consents(consent_id, subject_key, purpose, status, recorded_at_ms, agency, "
      "stored_at_ms, nonce, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
  if (!ins.ok()) return ins.status();
  Stmt& s = **ins;
  s.Bind(1, c.consent_id).BindBlob(2, store.StoreKey().BlindIndex(c.subject));
  s.Bind(3, c.purpose).Bind(4, c.status).Bind(5, c.recorded_at_ms).Bind(6, c.agency);
  s.Bind(7, c.stored_at_ms).BindBlob(8, sealed->nonce).BindBlob(9, sealed->ciphertext);
  return s.Run();
}

}  // namespace

Result<std::string> ConsentStateFor(StoreContext& store, const record::Subject& subject,
                                    const std::string& purpose) {
  const auto p = policy::ParsePurpose(purpose);
  if (!p) return std::string("none");
  std::vector<std::string> refs;
  for (const record::SubjectRef& ref : record::RefsOf(subject)) refs.push_back(ref.ToString());
  std::vector<policy::ConsentStatement> statements;
  for (const std::string& ref : refs) {
    auto q = store.StoreDb().Prepare(
        "SELECT status, recorded_at_ms FROM consents WHERE subject_key = ?1 AND purpose = ?2");
    if (!q.ok()) return q.status();
    Stmt& s = **q;
    s.BindBlob(1, store.StoreKey().BlindIndex(ref)).Bind(2, purpose);
    for (;;) {
      auto row = s.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      auto status = policy::ParseConsentState(s.Text(0));
      if (!status) return Status::Internal("store: a consent row has an unknown status");
      statements.push_back({ref, *p, *status, TimePoint(s.Int(1))});
    }
    s.Reset();
  }
  if (statements.empty()) return std::string("none");
  return std::string(policy::ConsentStateName(policy::LatestConsent(statements, refs, *p)));
}

TypedJob<ConsentRecord> PrepareRecordConsent(StoreContext& store, const Caller& caller,
                                             json body) {
  TypedJob<ConsentRecord> job;
  auto shared_body = std::make_shared<const json>(std::move(body));
  job.run = [&store, caller, shared_body](ConsentRecord& out) -> Status {
    const int64_t now = store.StoreNowMs();
    if (!MayRecordConsent(caller.role)) {
      return Status::Forbidden("agencies of role " + std::string(config::RoleName(caller.role)) +
                               " may not record consent; police, health and csc may");
    }
    auto parsed = ParseConsentBody(*shared_body, now);
    if (!parsed.ok()) return parsed.status();
    out = std::move(*parsed);
    out.consent_id = RandomId("con_");
    out.agency = caller.agency;
    out.stored_at_ms = now;
    if (Status s = StoreConsent(store, out); !s.ok()) return s;

    // Who recorded it and the evidence stay out of the audit entry (they may name people).
    AuditEntry e;
    e.at_ms = now;
    e.actor = caller.agency;
    e.action = "consent_recorded";
    e.subject = out.subject;
    e.purpose = out.purpose;
    e.detail = {{"consent_id", out.consent_id},
                {"status", out.status},
                {"recorded_at", FormatTimeMs(out.recorded_at_ms)},
                {"evidence", out.evidence.has_value()}};
    return store.StoreAppend(e);
  };
  job.on_refused = [&store, caller](const Status& refusal) {
    AuditEntry e = RefusalEntry(store.StoreNowMs(), caller.agency, "consent_record", refusal);
    return store.StoreAppend(e);
  };
  return job;
}

Result<ConsentList> LoadConsents(StoreContext& store, const std::string& subject) {
  ConsentList out;
  out.subject = subject;
  auto q = store.StoreDb().Prepare(
      "SELECT consent_id, purpose, status, recorded_at_ms, agency, stored_at_ms, nonce, sealed "
      "FROM consents WHERE subject_key = ?1 ORDER BY seq");
  if (!q.ok()) return q.status();
  Stmt& s = **q;
  s.BindBlob(1, store.StoreKey().BlindIndex(subject));
  std::vector<policy::ConsentStatement> statements;
  for (;;) {
    auto row = s.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    ConsentRecord c;
    c.consent_id = s.Text(0);
    c.purpose = s.Text(1);
    c.status = s.Text(2);
    c.recorded_at_ms = s.Int(3);
    c.agency = s.Text(4);
    c.stored_at_ms = s.Int(5);
    auto fields = store.StoreUnseal(s.Blob(6), s.Blob(7), c.consent_id);
    if (!fields.ok()) {
      s.Reset();
      return fields.status();
    }
    c.subject = fields->value("subject", "");
    if (c.subject != subject) continue;  // a blind-index collision: not this subject
    c.recorded_by = fields->value("recorded_by", "");
    if (fields->contains("evidence") && (*fields)["evidence"].is_string()) {
      c.evidence = (*fields)["evidence"].get<std::string>();
    }
    auto purpose = policy::ParsePurpose(c.purpose);
    auto status = policy::ParseConsentState(c.status);
    if (purpose && status) {
      statements.push_back({c.subject, *purpose, *status, TimePoint(c.recorded_at_ms)});
    }
    out.consents.push_back(std::move(c));
  }
  s.Reset();
  for (const ConsentRecord& c : out.consents) {
    auto purpose = policy::ParsePurpose(c.purpose);
    if (!purpose || out.state.count(c.purpose) > 0) continue;
    out.state[c.purpose] = std::string(
        policy::ConsentStateName(policy::LatestConsent(statements, out.subject, *purpose)));
  }
  return out;
}

TypedJob<ConsentList> PrepareListConsents(StoreContext& store, const Caller& caller,
                                          std::string ref) {
  TypedJob<ConsentList> job;
  job.run = [&store, caller, ref](ConsentList& out) -> Status {
    const int64_t now = store.StoreNowMs();
    if (!MayRecordConsent(caller.role)) {
      return Status::Forbidden("agencies of role " + std::string(config::RoleName(caller.role)) +
                               " may not read consent; police, health and csc may");
    }
    auto parsed = record::ParseSubjectRef(ref);
    if (!parsed.ok()) {
      return Status::BadRequest(std::string("the subject in the path ") + kRefFormat);
    }
    auto loaded = LoadConsents(store, parsed->ToString());
    if (!loaded.ok()) return loaded.status();
    out = std::move(*loaded);

    AuditEntry e;
    e.at_ms = now;
    e.actor = caller.agency;
    e.action = "consents_queried";
    e.subject = out.subject;
    e.detail = {{"returned", static_cast<int64_t>(out.consents.size())}};
    return store.StoreAppend(e);
  };
  job.on_refused = [&store, caller](const Status& refusal) {
    AuditEntry e = RefusalEntry(store.StoreNowMs(), caller.agency, "consent_list", refusal);
    return store.StoreAppend(e);
  };
  return job;
}

}  // namespace core
}  // namespace safegate
