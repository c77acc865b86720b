#include "daemon/core/audit_log.h"

#include <optional>
#include <utility>
#include <vector>

#include "daemon/core/crypto.h"
#include "daemon/core/time_format.h"
#include "record/record.h"

namespace safegate::core {
namespace {

using nlohmann::json;

constexpr const char* kInsertEntry =
    "INSERT INTO audit(seq, at_ms, actor, action, subject, record_id, message_id, purpose, "
    "decision, entry, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
constexpr const char* kInsertAgency = "INSERT INTO audit_agencies(agency, seq) VALUES (?1, ?2)";

// The eleven keys of an entry, in canonical (sorted) order.
constexpr std::string_view kKeys[] = {"action",    "actor",      "at",      "decision",
                                      "detail",    "message_id", "purpose", "reasons",
                                      "record_id", "seq",        "subject"};

std::optional<std::string> StringField(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace

std::string AuditEntryBytes(const AuditEntry& e) {
  json j = json::object();
  j["action"] = e.action;
  j["actor"] = e.actor;
  j["at"] = FormatTimeMs(e.at_ms);
  j["decision"] = e.decision;
  j["detail"] = e.detail.is_object() ? e.detail : json::object();
  j["message_id"] = e.message_id;
  j["purpose"] = e.purpose;
  j["reasons"] = e.reasons;
  j["record_id"] = e.record_id;
  j["seq"] = e.seq;
  j["subject"] = e.subject;
  return record::CanonicalJson(j);
}

Result<AuditEntry> ParseAuditEntry(std::string_view bytes) {
  const json j = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Internal("audit entry is not a JSON object");
  }
  for (std::string_view k : kKeys) {
    if (!j.contains(k)) return Status::Internal("audit entry lacks \"" + std::string(k) + "\"");
  }
  if (j.size() != std::size(kKeys)) {
    return Status::Internal("audit entry has " + std::to_string(j.size()) + " keys, not 11");
  }
  AuditEntry e;
  struct Text {
    const char* key;
    std::string* out;
  };
  for (const Text& t :
       {Text{"action", &e.action}, Text{"actor", &e.actor}, Text{"decision", &e.decision},
        Text{"message_id", &e.message_id}, Text{"purpose", &e.purpose},
        Text{"record_id", &e.record_id}, Text{"subject", &e.subject}}) {
    auto v = StringField(j, t.key);
    if (!v) return Status::Internal(std::string("audit entry \"") + t.key + "\" is not a string");
    *t.out = std::move(*v);
  }
  auto at = StringField(j, "at");
  auto at_ms = at ? ParseTimeMs(*at) : std::nullopt;
  if (!at_ms) return Status::Internal("audit entry \"at\" is not an RFC 3339 time");
  e.at_ms = *at_ms;
  const json& seq = j["seq"];
  if (!seq.is_number_integer()) return Status::Internal("audit entry \"seq\" is not an integer");
  e.seq = seq.get<int64_t>();
  const json& reasons = j["reasons"];
  if (!reasons.is_array()) return Status::Internal("audit entry \"reasons\" is not an array");
  for (const json& r : reasons) {
    if (!r.is_string()) return Status::Internal("audit entry \"reasons\" holds a non-string");
    e.reasons.push_back(r.get<std::string>());
  }
  if (!j["detail"].is_object()) return Status::Internal("audit entry \"detail\" is not an object");
  e.detail = j["detail"];
  return e;
}

std::set<std::string> AgenciesNamedBy(const AuditEntry& e) {
  std::set<std::string> out;
  if (!e.actor.empty() && e.actor != "-") out.insert(e.actor);
  if (!e.detail.is_object()) return out;
  if (auto it = e.detail.find("recipient"); it != e.detail.end() && it->is_string()) {
    out.insert(it->get<std::string>());
  }
  for (const char* key : {"recipients", "notified"}) {
    auto it = e.detail.find(key);
    if (it == e.detail.end() || !it->is_array()) continue;
    for (const json& v : *it) {
      if (v.is_string()) out.insert(v.get<std::string>());
    }
  }
  out.erase("");
  return out;
}

Status AuditLog::Load() {
  auto stmt = db_->Prepare("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
  if (!stmt.ok()) return stmt.status();
  auto row = (*stmt)->Step();
  if (!row.ok()) return row.status();
  ChainHead head;
  if (*row) {
    head.seq = (*stmt)->Int(0);
    head.hash = (*stmt)->Blob(1);
    if (head.hash.size() != kHashBytes) {
      return Status::Internal("audit log: the hash of entry " + std::to_string(head.seq) +
                              " is not 32 bytes; run safegatectl audit verify");
    }
  }
  (*stmt)->Reset();
  head_ = std::move(head);
  return Status::Ok();
}

Status AuditLog::Append(AuditEntry& e) {
  e.seq = head_.seq + 1;
  if (!e.detail.is_object()) e.detail = json::object();
  const std::string bytes = AuditEntryBytes(e);
  std::string hash = Sha256(head_.hash, bytes);

  auto ins = db_->Prepare(kInsertEntry);
  if (!ins.ok()) return ins.status();
  (*ins)->Bind(1, e.seq).Bind(2, e.at_ms).Bind(3, e.actor).Bind(4, e.action).Bind(5, e.subject);
  (*ins)->Bind(6, e.record_id).Bind(7, e.message_id).Bind(8, e.purpose).Bind(9, e.decision);
  (*ins)->BindBlob(10, bytes).BindBlob(11, hash);
  if (Status s = (*ins)->Run(); !s.ok()) return s;
  for (const std::string& agency : AgenciesNamedBy(e)) {
    auto a = db_->Prepare(kInsertAgency);
    if (!a.ok()) return a.status();
    (*a)->Bind(1, agency).Bind(2, e.seq);
    if (Status s = (*a)->Run(); !s.ok()) return s;
  }
  e.hash = Hex(hash);
  head_ = ChainHead{e.seq, std::move(hash)};
  return Status::Ok();
}

Result<VerifyReport> VerifyChain(Db& db) {
  auto rows = db.PrepareOnce(
      "SELECT seq, at_ms, actor, action, subject, record_id, message_id, purpose, decision, "
      "entry, hash FROM audit ORDER BY seq");
  if (!rows.ok()) return rows.status();
  auto agencies = db.PrepareOnce("SELECT seq, agency FROM audit_agencies ORDER BY seq, agency");
  if (!agencies.ok()) return agencies.status();
  Stmt& r = **rows;
  Stmt& a = **agencies;

  VerifyReport report;
  auto fail = [&report](int64_t seq, std::string problem) {
    if (!report.ok) return;  // keep the first problem only
    report.ok = false;
    report.first_bad_seq = seq;
    report.problem = std::move(problem);
  };

  // audit_agencies is read in step with audit (both ordered by seq): a merge join.
  auto a_row = a.Step();
  if (!a_row.ok()) return a_row.status();
  bool a_has = *a_row;
  auto advance_agencies = [&]() -> Status {
    auto next = a.Step();
    if (!next.ok()) return next.status();
    a_has = *next;
    return Status::Ok();
  };

  std::string prev(kHashBytes, '\0');
  int64_t expected = 1;
  std::string last_hash;
  for (;;) {
    auto row = r.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    ++report.entries;
    const int64_t seq = r.Int(0);
    const std::string bytes = r.Blob(9);
    const std::string stored_hash = r.Blob(10);
    last_hash = stored_hash;

    // Index rows for seqs before this one belong to no entry (a deleted one, normally).
    std::optional<int64_t> orphan;
    while (a_has && a.Int(0) < seq) {
      if (!orphan) orphan = a.Int(0);
      if (Status s = advance_agencies(); !s.ok()) return s;
    }
    std::set<std::string> indexed;
    while (a_has && a.Int(0) == seq) {
      indexed.insert(a.Text(1));
      if (Status s = advance_agencies(); !s.ok()) return s;
    }
    if (!report.ok) continue;  // only count the rest

    if (seq != expected) {
      if (seq > expected) {
        fail(expected, "missing: entry " + std::to_string(expected) +
                           " is not in the log (deleted); the next stored entry is " +
                           std::to_string(seq));
      } else {
        fail(seq, "altered: unexpected seq " + std::to_string(seq) + " where " +
                      std::to_string(expected) + " was due");
      }
      continue;
    }
    if (orphan) {
      fail(*orphan, "column mismatch: audit_agencies has rows for seq " + std::to_string(*orphan) +
                        ", which has no entry");
      continue;
    }
    auto parsed = ParseAuditEntry(bytes);
    if (!parsed.ok()) {
      fail(seq, "altered: " + parsed.status().detail());
      continue;
    }
    if (parsed->seq != seq) {
      fail(seq, "reordered: the entry stored at seq " + std::to_string(seq) + " is entry " +
                    std::to_string(parsed->seq));
      continue;
    }
    const std::string h = Sha256(prev, bytes);
    if (h != stored_hash) {
      fail(seq,
           "altered: the entry's bytes or stored hash were changed (the chain hash does "
           "not match)");
      continue;
    }
    struct Column {
      const char* name;
      bool same;
    };
    for (const Column& c :
         {Column{"at_ms", r.Int(1) == parsed->at_ms}, Column{"actor", r.Text(2) == parsed->actor},
          Column{"action", r.Text(3) == parsed->action},
          Column{"subject", r.Text(4) == parsed->subject},
          Column{"record_id", r.Text(5) == parsed->record_id},
          Column{"message_id", r.Text(6) == parsed->message_id},
          Column{"purpose", r.Text(7) == parsed->purpose},
          Column{"decision", r.Text(8) == parsed->decision}}) {
      if (!c.same) {
        fail(seq,
             std::string("column mismatch: column ") + c.name + " differs from the entry's bytes");
        break;
      }
    }
    if (report.ok && indexed != AgenciesNamedBy(*parsed)) {
      fail(seq,
           "column mismatch: the audit_agencies rows differ from the agencies the entry "
           "names");
    }
    prev = h;
    ++expected;
  }
  if (report.ok && a_has) {
    fail(a.Int(0), "column mismatch: audit_agencies has rows for seq " + std::to_string(a.Int(0)) +
                       ", which has no entry");
  }
  report.head = Hex(last_hash);
  return report;
}

}  // namespace safegate::core
