// The flags view: every active flag on a child that the caller may see, from every agency
// linked to the child, and an access notification to each owner (as NHS CP-IS does).
// docs/subjects.md describes the behaviour.
#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "daemon/core/ingest.h"
#include "daemon/core/subjects.h"
#include "daemon/core/time_format.h"
#include "record/record.h"

namespace safegate {

using nlohmann::json;

json FlagsView::ToJson() const {
  json flags_json = json::array();
  for (const SubjectFlag& f : flags) {
    static const json kEmpty = json::object();
    const bool has_body = f.record.is_object() && f.record.contains("body") &&
                          f.record["body"].is_object();
    const json& body = has_body ? f.record["body"] : kEmpty;
    const json source = f.record.is_object() && f.record.contains("source") ? f.record["source"]
                                                                            : json::object();
    auto field = [&body](const char* name) { return body.contains(name) ? body[name] : json(); };
    json owner = {{"agency", f.owner_agency}, {"name", f.owner_name}};
    if (body.contains("contact")) owner["contact"] = body["contact"];
    flags_json.push_back({{"record_id", f.record_id},
                          {"type", field("type")},
                          {"level", field("level")},
                          {"status", field("status")},
                          {"start", field("start")},
                          {"end", field("end")},
                          {"review_by", field("review_by")},
                          {"overdue", f.overdue},
                          {"owner", std::move(owner)},
                          {"source", source},
                          {"record", f.record}});
  }
  return {{"subject", subject},
          {"flags", std::move(flags_json)},
          {"notified", notified},
          {"silent", silent}};
}

namespace core {
namespace {

// obj[key] when it is a string, else "": views may be redacted, so nothing is assumed.
std::string Str(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

const json& BodyOf(const json& record) {
  static const json kEmpty = json::object();
  if (!record.is_object()) return kEmpty;
  auto it = record.find("body");
  return it != record.end() && it->is_object() ? *it : kEmpty;
}

bool IsPurposeSlug(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

struct StoredFlag {
  std::string record_id, source_agency, source_record_id, nonce, ciphertext;
  int64_t version = 0;
};

// The record ids about the subject: linked to its subject, or carrying the reference itself
// (records held for review, and records stored before the subject index existed).
Result<std::vector<std::string>> RecordsAbout(Db& db, const std::optional<std::string>& subject,
                                              const std::string& ref) {
  std::set<std::string> ids;
  if (subject) {
    auto q = db.Prepare("SELECT record_id FROM record_subjects WHERE subject_id = ?1");
    if (!q.ok()) return q.status();
    (*q)->Bind(1, *subject);
    for (;;) {
      auto row = (*q)->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      ids.insert((*q)->Text(0));
    }
    (*q)->Reset();
  }
  auto q = db.Prepare("SELECT record_id FROM subject_refs WHERE ref = ?1");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, ref);
  for (;;) {
    auto row = (*q)->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    ids.insert((*q)->Text(0));
  }
  (*q)->Reset();
  return std::vector<std::string>(ids.begin(), ids.end());
}

Status RunSubjectFlags(StoreContext& store, const Caller& caller, const std::string& ref,
                       const std::string& purpose, FlagsView& out) {
  Db& db = store.StoreDb();
  const int64_t now = store.StoreNowMs();
  const std::string today = FormatTimeMs(now).substr(0, 10);
  out.subject = ref;
  out.silent = IsSilentRead(caller, purpose);

  auto subject = store.Subjects().SubjectOf(db, ref);
  if (!subject.ok()) return subject.status();
  auto ids = RecordsAbout(db, *subject, ref);
  if (!ids.ok()) return ids.status();

  // The latest version of each flag (by source agency and source record id).
  std::map<std::pair<std::string, std::string>, StoredFlag> latest;
  for (const std::string& id : *ids) {
    auto q = db.Prepare(
        "SELECT source_agency, source_record_id, source_version, nonce, ciphertext FROM records "
        "WHERE record_id = ?1 AND kind = 'flag'");
    if (!q.ok()) return q.status();
    Stmt& s = **q;
    s.Bind(1, id);
    auto row = s.Step();
    if (!row.ok()) return row.status();
    if (*row) {
      StoredFlag f{id, s.Text(0), s.Text(1), s.Blob(3), s.Blob(4), s.Int(2)};
      auto key = std::make_pair(f.source_agency, f.source_record_id);
      auto it = latest.find(key);
      if (it == latest.end() || it->second.version < f.version) latest[key] = std::move(f);
    }
    s.Reset();
  }

  const auto registry = store.StoreRegistry();
  for (auto& [key, f] : latest) {
    // As the caller may see it: the source sees its own record; a recipient sees the view it
    // was delivered (redacted if so decided). A flag never delivered to the caller is left
    // out, and a newer version the caller was not given hides the older one.
    json view;
    if (f.source_agency == caller.agency) {
      auto body = store.StoreUnseal(f.nonce, f.ciphertext, f.record_id);
      if (!body.ok()) return body.status();
      view = std::move(*body);
    } else {
      auto q = db.Prepare(
          "SELECT message_id, view_nonce, view_ciphertext FROM messages "
          "WHERE record_id = ?1 AND recipient = ?2 AND type = 'record' "
          "AND decision IN ('permit', 'redact') ORDER BY seq LIMIT 1");
      if (!q.ok()) return q.status();
      Stmt& m = **q;
      m.Bind(1, f.record_id).Bind(2, caller.agency);
      auto row = m.Step();
      if (!row.ok()) return row.status();
      if (!*row) {
        m.Reset();
        continue;
      }
      const std::string message_id = m.Text(0);
      const bool redacted = !m.IsNull(2);
      const std::string vn = m.Blob(1), vc = m.Blob(2);
      m.Reset();
      auto body = redacted ? store.StoreUnseal(vn, vc, message_id)
                           : store.StoreUnseal(f.nonce, f.ciphertext, f.record_id);
      if (!body.ok()) return body.status();
      view = std::move(*body);
    }
    const json& body = BodyOf(view);
    if (Str(body, "status") != "active") continue;
    const std::string end = Str(body, "end"), review_by = Str(body, "review_by");
    if (!end.empty() && record::CompareDates(end, today) < 0) continue;  // ended
    SubjectFlag flag;
    flag.record_id = f.record_id;
    flag.overdue = !review_by.empty() && record::CompareDates(review_by, today) < 0;
    flag.owner_agency = Str(body, "owner_agency");
    if (flag.owner_agency.empty()) flag.owner_agency = f.source_agency;
    if (const config::Agency* a = registry ? registry->Find(flag.owner_agency) : nullptr) {
      flag.owner_name = a->name;
    }
    flag.record = std::move(view);
    out.flags.push_back(std::move(flag));
  }
  std::sort(out.flags.begin(), out.flags.end(), [](const SubjectFlag& a, const SubjectFlag& b) {
    const std::string sa = Str(BodyOf(a.record), "start"), sb = Str(BodyOf(b.record), "start");
    return std::tie(a.owner_agency, sa, a.record_id) < std::tie(b.owner_agency, sb, b.record_id);
  });

  // Owners hear that their flags were looked at, by whom and why (ids only, no names).
  std::map<std::string, std::vector<std::string>> by_owner;
  int64_t overdue = 0;
  for (const SubjectFlag& f : out.flags) {
    if (f.overdue) ++overdue;
    by_owner[f.owner_agency].push_back(f.record_id);
  }
  std::vector<std::string> owners;
  for (const auto& [owner, records] : by_owner) owners.push_back(owner);
  struct Sent {
    std::string owner, message_id;
    std::vector<std::string> records;
  };
  std::vector<Sent> sent;
  if (!out.silent) {
    for (const auto& [owner, records] : by_owner) {
      if (owner == caller.agency) continue;
      if (registry == nullptr || registry->Find(owner) == nullptr) continue;  // no mailbox
      json notice = {{"kind", "access_notification"},
                     {"by", caller.agency},
                     {"by_role", config::RoleName(caller.role)},
                     {"purpose", purpose},
                     {"records", records},
                     {"at", FormatTimeMs(now)}};
      auto id = store.StoreNotice(owner, records.front(), purpose, notice, now);
      if (!id.ok()) return id.status();
      sent.push_back({owner, *id, records});
      out.notified.push_back(owner);
    }
  }

  AuditEntry q;
  q.at_ms = now;
  q.actor = caller.agency;
  q.action = "flags_queried";
  q.subject = ref;
  q.purpose = purpose;
  q.detail = {{"returned", static_cast<int64_t>(out.flags.size())},
              {"overdue", overdue},
              {"owners", owners},
              {"notified", out.notified},
              {"silent", out.silent}};
  if (Status s = store.StoreAppend(q); !s.ok()) return s;
  for (const Sent& n : sent) {
    AuditEntry e;
    e.at_ms = now;
    e.actor = caller.agency;
    e.action = "access_notified";
    e.subject = ref;
    e.record_id = n.records.front();
    e.message_id = n.message_id;
    e.purpose = purpose;
    e.detail = {{"recipient", n.owner}, {"records", n.records}};
    if (Status s = store.StoreAppend(e); !s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace

bool IsSilentRead(const Caller& caller, const std::string& purpose) {
  return caller.role == config::Role::kHealth && purpose == "scheduled_care";
}

TypedJob<FlagsView> PrepareSubjectFlags(StoreContext& store, const Caller& caller,
                                        std::string ref_text, std::string purpose) {
  TypedJob<FlagsView> job;
  // Refusals record the reference only once it parsed, and the purpose only if it is a slug:
  // whatever else a caller typed could be a name (R7).
  std::string ref;
  Status refusal;
  auto parsed = record::ParseSubjectRef(ref_text);
  if (parsed.ok()) ref = parsed->ToString();
  if (caller.role != config::Role::kPolice && caller.role != config::Role::kHealth &&
      caller.role != config::Role::kCsc) {
    refusal = Status::Forbidden("agencies of role " + std::string(config::RoleName(caller.role)) +
                                " may not query flags");
  } else if (!parsed.ok()) {
    refusal = Status::BadRequest(parsed.status().detail());
  } else if (!IsPurposeSlug(purpose)) {
    refusal = Status::Invalid("purpose is required: a purpose slug",
                              {{"purpose", "must be 1-64 of a-z, 0-9, '_' and '-'"}});
  }
  job.on_refused = [&store, caller, ref, purpose](const Status& r) {
    AuditEntry e;
    e.at_ms = store.StoreNowMs();
    e.actor = caller.agency.empty() ? "-" : caller.agency;
    e.action = "request_rejected";
    e.subject = ref;
    if (IsPurposeSlug(purpose)) e.purpose = purpose;
    e.reasons = {std::string(ErrorCodeName(r.code()))};
    e.detail = {{"operation", "flags_query"},
                {"error", ErrorCodeName(r.code())},
                {"status", HttpStatusFor(r.code())}};
    return store.StoreAppend(e);
  };
  if (!refusal.ok()) {
    job.run = [refusal](FlagsView&) { return refusal; };
    return job;
  }
  job.run = [&store, caller, ref, purpose](FlagsView& out) {
    return RunSubjectFlags(store, caller, ref, purpose, out);
  };
  return job;
}

}  // namespace core
}  // namespace safegate
