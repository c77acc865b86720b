// The retention sweep (R9): record bodies and redacted per-recipient views past their
// retention period are deleted, each deletion audited as retention_deleted.
//
// Deadlines are set when a push is decided (policy_push.cc): a recipient's copy is kept for
// the days its decision names; the record's own body for the policy's period for its kind,
// or longer while a permitted copy (which is read from that body) is kept. Records stored
// before a policy with periods was in force get the period for their kind from their
// creation, the first time a sweep runs with such a policy.
//
// A deleted body is replaced by a sealed tombstone, {"deleted": {"reason": "retention", "at",
// "retained_until"}, "kind"}, under the same row binding, so a reader that opens it gets the
// tombstone (and the flags view skips it) rather than an error. secure_delete zeroes the
// freed pages, so the old ciphertext does not linger in the file. The audit log is not
// touched: the trail of what happened stays and still verifies.
#include <utility>
#include <vector>

#include "daemon/core/crypto.h"
#include "daemon/core/policy_store.h"
#include "daemon/core/time_format.h"

namespace safegate {

using nlohmann::json;

json RetentionReport::ToJson() const {
  return {{"records_deleted", records_deleted}, {"views_deleted", views_deleted}, {"more", more}};
}

namespace core {
namespace {

constexpr const char* kGatewayActor = "safegate";
constexpr int64_t kMaxRowsPerSweep = 1000;  // per kind of body; the next sweep takes the rest

json Tombstone(const std::string& kind, int64_t now, int64_t retained_until) {
  return {{"deleted",
           {{"reason", "retention"},
            {"at", FormatTimeMs(now)},
            {"retained_until", FormatTimeMs(retained_until)}}},
          {"kind", kind}};
}

struct Due {
  std::string id;  // message id (views) or record id (records)
  std::string record_id, recipient, purpose, subject, kind;
  int64_t until = 0;
};

Result<std::vector<Due>> DueViews(Db& db, int64_t now) {
  std::vector<Due> due;
  auto q = db.Prepare(
      "SELECT m.message_id, m.record_id, m.recipient, m.purpose, m.retain_until_ms, "
      "r.subject_ref, r.kind FROM messages m JOIN records r ON r.record_id = m.record_id "
      "WHERE m.body_deleted_at_ms IS NULL AND m.view_ciphertext IS NOT NULL "
      "AND m.retain_until_ms <= ?1 ORDER BY m.retain_until_ms, m.seq LIMIT ?2");
  if (!q.ok()) return q.status();
  Stmt& s = **q;
  s.Bind(1, now).Bind(2, kMaxRowsPerSweep);
  for (;;) {
    auto row = s.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    due.push_back({s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Text(5), s.Text(6), s.Int(4)});
  }
  s.Reset();
  return due;
}

Result<std::vector<Due>> DueRecords(Db& db, int64_t now) {
  std::vector<Due> due;
  auto q = db.Prepare(
      "SELECT record_id, purpose, subject_ref, kind, retain_until_ms FROM records "
      "WHERE body_deleted_at_ms IS NULL AND retain_until_ms <= ?1 "
      "ORDER BY retain_until_ms, record_id LIMIT ?2");
  if (!q.ok()) return q.status();
  Stmt& s = **q;
  s.Bind(1, now).Bind(2, kMaxRowsPerSweep);
  for (;;) {
    auto row = s.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    due.push_back({s.Text(0), s.Text(0), "", s.Text(1), s.Text(2), s.Text(3), s.Int(4)});
  }
  s.Reset();
  return due;
}

}  // namespace

TypedJob<RetentionReport> PrepareRetentionSweep(StoreContext& store, const DeliveryPolicy& policy,
                                                int64_t now_ms) {
  // The periods are read now, so the whole sweep uses one policy.
  std::vector<std::pair<std::string, int64_t>> periods;
  for (record::Kind kind : record::AllKinds()) {
    const int days = policy.RetentionDays(kind);
    if (days > 0) periods.emplace_back(std::string(record::KindName(kind)), days * kDayMs);
  }
  TypedJob<RetentionReport> job;
  job.run = [&store, periods, now_ms](RetentionReport& out) -> Status {
    Db& db = store.StoreDb();
    for (const auto& [kind, period] : periods) {
      auto upd = db.Prepare(
          "UPDATE records SET retain_until_ms = created_at_ms + ?1 "
          "WHERE retain_until_ms IS NULL AND body_deleted_at_ms IS NULL AND kind = ?2");
      if (!upd.ok()) return upd.status();
      (*upd)->Bind(1, period).Bind(2, kind);
      if (Status s = (*upd)->Run(); !s.ok()) return s;
    }

    auto views = DueViews(db, now_ms);
    if (!views.ok()) return views.status();
    for (const Due& d : *views) {
      auto sealed = store.StoreKey().Seal(
          record::CanonicalJson(Tombstone(d.kind, now_ms, d.until)), d.id);
      if (!sealed.ok()) return sealed.status();
      auto upd = db.Prepare(
          "UPDATE messages SET view_nonce = ?1, view_ciphertext = ?2, body_deleted_at_ms = ?3 "
          "WHERE message_id = ?4");
      if (!upd.ok()) return upd.status();
      (*upd)->BindBlob(1, sealed->nonce).BindBlob(2, sealed->ciphertext);
      (*upd)->Bind(3, now_ms).Bind(4, d.id);
      if (Status s = (*upd)->Run(); !s.ok()) return s;
      AuditEntry e;
      e.at_ms = now_ms;
      e.actor = kGatewayActor;
      e.action = "retention_deleted";
      e.subject = d.subject;
      e.record_id = d.record_id;
      e.message_id = d.id;
      e.purpose = d.purpose;
      e.reasons = {"the retention period of this recipient's copy ended (R9)"};
      e.detail = {{"what", "view"},
                  {"kind", d.kind},
                  {"recipient", d.recipient},
                  {"retained_until", FormatTimeMs(d.until)}};
      if (Status s = store.StoreAppend(e); !s.ok()) return s;
      ++out.views_deleted;
    }

    auto records = DueRecords(db, now_ms);
    if (!records.ok()) return records.status();
    for (const Due& d : *records) {
      auto sealed = store.StoreKey().Seal(
          record::CanonicalJson(Tombstone(d.kind, now_ms, d.until)), d.id);
      if (!sealed.ok()) return sealed.status();
      auto upd = db.Prepare(
          "UPDATE records SET nonce = ?1, ciphertext = ?2, body_deleted_at_ms = ?3 "
          "WHERE record_id = ?4");
      if (!upd.ok()) return upd.status();
      (*upd)->BindBlob(1, sealed->nonce).BindBlob(2, sealed->ciphertext);
      (*upd)->Bind(3, now_ms).Bind(4, d.id);
      if (Status s = (*upd)->Run(); !s.ok()) return s;
      // Permitted copies are read from this body: they are gone with it.
      auto copies = db.Prepare(
          "UPDATE messages SET body_deleted_at_ms = ?1 WHERE record_id = ?2 AND type = 'record' "
          "AND view_ciphertext IS NULL AND body_deleted_at_ms IS NULL");
      if (!copies.ok()) return copies.status();
      (*copies)->Bind(1, now_ms).Bind(2, d.id);
      if (Status s = (*copies)->Run(); !s.ok()) return s;
      AuditEntry e;
      e.at_ms = now_ms;
      e.actor = kGatewayActor;
      e.action = "retention_deleted";
      e.subject = d.subject;
      e.record_id = d.id;
      e.purpose = d.purpose;
      e.reasons = {"the retention period of the record ended (R9)"};
      e.detail = {{"what", "record"},
                  {"kind", d.kind},
                  {"retained_until", FormatTimeMs(d.until)}};
      if (Status s = store.StoreAppend(e); !s.ok()) return s;
      ++out.records_deleted;
    }
    out.more = static_cast<int64_t>(views->size()) == kMaxRowsPerSweep ||
               static_cast<int64_t>(records->size()) == kMaxRowsPerSweep;
    return Status::Ok();
  };
  return job;
}

}  // namespace core
}  // namespace safegate
