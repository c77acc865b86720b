// The Gateway on SQLite: one database file per gateway, one writer thread, group commit,
// record bodies sealed at rest, every operation audited in its own transaction.
// docs/store.md describes the schema and the durability argument; docs/audit-log.md the log.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "daemon/audit/encoding.h"
#include "daemon/audit/merkle.h"
#include "daemon/audit/proof_bundle.h"
#include "daemon/audit/tree_head.h"
#include "daemon/core/audit_log.h"
#include "daemon/core/crypto.h"
#include "daemon/core/merkle_store.h"
#include "daemon/core/gateway.h"
#include "daemon/core/schema.h"
#include "daemon/core/sqlite.h"
#include "daemon/core/subject_keys.h"
#include "daemon/core/time_format.h"
#include "daemon/core/writer.h"
#include "daemon/core/ingest.h"         // ingest and the flags view (their own files)
#include "daemon/core/policy_store.h"   // consents, stats, retention, policy reload
#include "daemon/core/store_context.h"
#include "daemon/core/subjects.h"
#include "daemon/core/policy_texts.h"
#include "daemon/core/subject_report.h"  // the subject access report (its own file)
#include "daemon/core/transfers.h"       // out-of-area transfers (their own file)
#include "record/record.h"
#include "record/json_pointer.h"

namespace safegate {
namespace {

using core::AtRestKey;
using core::Db;
using core::Stmt;
using nlohmann::json;

constexpr const char* kGatewayActor = "safegate";  // actor and sender of the gateway's own acts
constexpr int kMaxPageLimit = 1000;
constexpr int kMaxSweepRows = 5000;  // one sweep's bound; the next sweep picks up the rest
constexpr std::string_view kKeyCheckPlaintext = "safegate at-rest key check v1";
constexpr std::string_view kKeyCheckAd = "meta:key_check";
constexpr const char* kSigningKeyFile = "signing.key";

bool IsSlug(std::string_view s, bool allow_underscore, bool allow_dash) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    (allow_underscore && c == '_') || (allow_dash && c == '-');
    if (!ok) return false;
  }
  return true;
}
bool IsPurpose(std::string_view s) { return IsSlug(s, true, true); }

// True for ids of the shape this gateway issues: `prefix` then 32 lower-case hex. Only such
// ids from a refused request are copied into its audit entry; anything else a caller typed
// could be free text (R7).
bool IsGatewayId(std::string_view prefix, std::string_view id) {
  if (id.size() != prefix.size() + 32 || id.substr(0, prefix.size()) != prefix) return false;
  for (char c : id.substr(prefix.size())) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool MayPush(config::Role role) {
  return role == config::Role::kPolice || role == config::Role::kHealth ||
         role == config::Role::kCsc;
}

// Cursors are the decimal seq of the last item returned. "" is the start.
std::optional<int64_t> ParseCursor(const std::string& text) {
  if (text.empty()) return 0;
  if (text.size() > 18) return std::nullopt;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

Status CheckPaging(int limit, const std::string& after, int64_t* after_seq) {
  std::vector<Problem> problems;
  if (limit < 1 || limit > kMaxPageLimit) {
    problems.push_back({"limit", "must be between 1 and 1000"});
  }
  auto cursor = ParseCursor(after);
  if (!cursor) problems.push_back({"after", "is not a cursor this gateway issued"});
  if (!problems.empty()) return Status::Invalid("bad paging parameters", std::move(problems));
  *after_seq = *cursor;
  return Status::Ok();
}

Result<json> ParseStoredJson(std::string_view text, std::string_view what) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Internal("store: " + std::string(what) + " is not JSON");
  return j;
}

// The first answer to a push, read back for an idempotent replay.
// What a push needs that no database read decides, worked out on the calling (network)
// thread before the push is queued: the writer thread, which every store operation waits
// for in turn, then only reads and writes. The record is sealed under the id it will have if
// it is stored; a replay or a refusal just discards both.
struct PushPrepared final : core::StoreContext::PreparedPush {
  std::string content_hash;  // SHA-256 of the canonical push: the idempotency check
  std::string record_id;
  Result<core::SealedBytes> sealed_record = Status::Internal("not sealed");
  // The record as JSON, for the policy's redactions on the writer (not made again there).
  std::shared_ptr<const json> record_json;
  // Decisions made before the push was queued (SqliteGateway::Predecide), for a subject with
  // no consent statement: the writer takes them (moves them out; it is their only user once
  // queued) when every input of the decision is still the same, and decides itself otherwise.
  // What follows from a decision and needs no database read, made with it: the message id,
  // the redacted view sealed under that id, and the form the answer is stored in.
  struct Ahead {
    bool made = false;
    std::string message_id;  // empty on deny
    std::string view_nonce, view_ciphertext;  // redact only
    std::optional<json> cited;  // the stored answer's form (CiteDelivery); nullopt: as answered
    json entry_detail;          // the delivery entry's detail but its deadline (DoPush)
  };
  struct Predecided {
    // The recipient as the registry gave it: what the decision depended on.
    std::string recipient_id;
    config::Role recipient_role = config::Role::kCsc;
    std::string recipient_area;
    DeliveryDecision decision;
    Ahead ahead;
  };
  mutable std::vector<Predecided> predecided;
  // The stored answer (records.response_json) made from the predecided deliveries, for when
  // the writer takes every one of them (DoPush); empty when nothing was predecided.
  std::string predecided_answer;
  std::shared_ptr<const policy::Policy> predecided_policy;  // null: nothing predecided
  int64_t predecided_day = 0;                               // UTC day of the decisions' clock
};

int64_t UtcDay(int64_t ms) { return ms >= 0 ? ms / 86'400'000 : (ms - 86'399'999) / 86'400'000; }

std::string PushContentHash(const PushRequest& req, const json& record_json) {
  std::vector<std::string> sorted_recipients = req.recipients;
  std::sort(sorted_recipients.begin(), sorted_recipients.end());
  json content = {{"record", record_json},
                  {"purpose", req.purpose},
                  {"recipients", sorted_recipients}};
  if (req.override_request) content["override"] = *req.override_request;
  return core::Sha256(record::CanonicalJson(content));
}

PushPrepared PreparePush(const PushRequest& req, const AtRestKey& key, int64_t now) {
  PushPrepared p;
  auto record_json = std::make_shared<const json>(record::ToJson(req.record));
  p.content_hash = PushContentHash(req, *record_json);
  // Time-ordered ids keep the indexes on record and message ids appending (crypto.h).
  p.record_id = core::TimeOrderedId("rec_", now);
  p.sealed_record = key.Seal(record::CanonicalJson(*record_json), p.record_id);
  p.record_json = std::move(record_json);
  return p;
}

// One delivery as the stored push answer holds it: by citation when the policy cites it
// (`cited`, from CiteDelivery), as answered otherwise.
json StoredDelivery(const Delivery& del, const std::optional<json>& cited) {
  if (cited) return *cited;
  return {{"recipient", del.recipient},
          {"decision", del.decision},
          {"reasons", del.reasons},
          {"message_id", del.message_id.empty() ? json(nullptr) : json(del.message_id)}};
}

std::string StoredAnswer(const std::string& record_id, json deliveries) {
  return record::CanonicalJson(
      json{{"record_id", record_id}, {"deliveries", std::move(deliveries)}});
}

// A stored push answer (records.response_json; policy_texts.h, "The stored push answer").
// `policies` spells out the deliveries stored as citations.
Result<PushOutcome> OutcomeFromJson(const json& j, core::PolicyExplainer& policies) {
  PushOutcome out;
  out.created = false;
  if (!j.is_object() || !j.contains("record_id") || !j["record_id"].is_string() ||
      !j.contains("deliveries") || !j["deliveries"].is_array()) {
    return Status::Internal("store: a stored push answer is malformed");
  }
  out.record_id = j["record_id"].get<std::string>();
  for (const json& d : j["deliveries"]) {
    if (!d.is_object()) return Status::Internal("store: a stored delivery is malformed");
    Delivery del;
    del.recipient = d.value("recipient", "");
    del.decision = d.value("decision", "");
    if (d.contains("message_id") && d["message_id"].is_string()) {
      del.message_id = d["message_id"].get<std::string>();
    }
    if (d.contains("codes")) {
      auto reasons = core::CitedReasons(d, policies);
      if (!reasons.ok()) return reasons.status();
      del.reasons = std::move(*reasons);
    } else if (d.contains("reasons") && d["reasons"].is_array()) {
      for (const json& r : d["reasons"]) {
        if (r.is_string()) del.reasons.push_back(r.get<std::string>());
      }
    }
    out.deliveries.push_back(std::move(del));
  }
  return out;
}

// An open file descriptor holding an exclusive flock on <data_dir>/safegate.lock: one
// gateway process per data directory, because the audit chain head lives in its memory.
class DirLock {
 public:
  explicit DirLock(int fd) : fd_(fd) {}
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_;
};

class SqliteGateway final : public Gateway, private core::StoreContext {
  // Which messages a mailbox page holds: all, or only record deliveries of flags (the FHIR
  // flag view), and the view named in the page's mailbox_read audit entries ("" for none).
  struct MailboxScope {
    bool flags_only = false;
    std::string view;
  };

 public:
  SqliteGateway(GatewayOptions options, std::unique_ptr<DirLock> lock, std::unique_ptr<Db> db,
                std::unique_ptr<AtRestKey> key, std::unique_ptr<audit::SigningKey> signing_key,
                std::unique_ptr<Db> reader)
      : lock_(std::move(lock)),
        config_(std::move(options.config)),
        registry_(std::move(options.registry)),
        clock_(options.clock != nullptr ? options.clock : &system_clock_),
        policy_(options.policy ? std::move(options.policy) : MakePlaceholderDeliveryPolicy()),
        db_(std::move(db)),
        key_(std::move(key)),
        signing_key_(std::move(signing_key)),
        subject_keys_(db_.get(), key_.get()),
        audit_(db_.get(), core::AuditLogOptions{
                              &subject_keys_, signing_key_.get(),
                              audit::TreeHeadPolicy{config_->audit.sth_max_entries,
                                                    config_->audit.sth_interval.count()},
                              clock_}),
        reader_(std::move(reader)) {
    transfer_options_ = std::move(options.transfers);
  }

  ~SqliteGateway() override {
    if (writer_) writer_->Shutdown();
  }

  Status Start() {
    if (Status s = audit_.Load(); !s.ok()) return s;
    // Entries committed after the last signed head (the previous run stopped before signing
    // one) get their head now, before any new work.
    if (audit_.HeadDueIn()) {
      if (Status s = db_->Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
      auto signed_head = audit_.SignHeadIfDue(/*force=*/true);
      Status s = signed_head.ok() ? db_->Exec("COMMIT") : signed_head.status();
      if (!s.ok()) {
        db_->ResetAll();
        (void)db_->Exec("ROLLBACK");
        return Status::Internal("store: could not sign a tree head over the entries committed "
                                "since the last one: " + s.detail());
      }
    }
    if (Status s = subjects_.Load(*db_, *key_); !s.ok()) return s;
    // The text of the policy in force, stored before any push cites it (policy_texts.h).
    if (auto in_force = policy_->Snapshot()) {
      Status s = db_->Exec("BEGIN IMMEDIATE");
      if (s.ok()) s = core::StorePolicyText(*db_, *in_force, policy_->PolicyFile(), clock_->NowMs());
      if (s.ok()) s = db_->Exec("COMMIT");
      if (!s.ok()) {
        db_->ResetAll();
        (void)db_->Exec("ROLLBACK");
        return Status::Internal("store: could not store the sharing policy's text: " + s.detail());
      }
      policy_text_version_ = in_force->version();
    }
    auto transfers = core::TransferStore::Open(*this, *policy_, transfer_options_);
    if (!transfers.ok()) return transfers.status();
    transfers_ = std::move(*transfers);
    // Checkpoints run beside the writer, on a connection of their own (writer.h).
    auto checkpointer = core::Checkpointer::Start(
        (std::filesystem::path(config_->data_dir) / "safegate.db").string());
    if (!checkpointer.ok()) return checkpointer.status();
    checkpointer_ = std::move(*checkpointer);
    writer_ = std::make_unique<core::Writer>(db_.get(), &audit_, config_->store.max_batch,
                                             checkpointer_.get());
    // A rolled-back job may have stored the policy's text: store it again when next cited.
    writer_->OnRollback([this] { policy_text_version_.clear(); });
    writer_->Start();
    return Status::Ok();
  }

  void SetRegistry(std::shared_ptr<const config::Registry> registry) override {
    std::lock_guard<std::mutex> lock(registry_mu_);
    registry_ = std::move(registry);
  }

  void Push(const Caller& caller, PushRequest request, Callback<PushOutcome> done) override {
    auto req = std::make_shared<const PushRequest>(std::move(request));
    const std::string subject = record::PrimaryRef(req->record.subject);
    auto ready = std::make_shared<PushPrepared>(PreparePush(*req, *key_, clock_->NowMs()));
    Predecide(caller, *req, *ready);
    std::shared_ptr<const PushPrepared> prepared = std::move(ready);
    Submit<PushOutcome>([this, caller, req, prepared](
                            PushOutcome& out) { return DoPush(caller, *req, out, prepared.get()); },
                        [this, caller, req, subject](const Status& refusal) {
                          AuditEntry e = RejectionEntry(caller.agency, "push", refusal);
                          e.subject = subject;
                          e.purpose = IsPurpose(req->purpose) ? req->purpose : "";
                          if (refusal.code() == ErrorCode::kConflict)
                            e.record_id = conflict_record_id_;
                          return Append(e);
                        },
                        std::move(done));
  }

  // On the calling (network) thread, before the push is queued: the policy's decision for each
  // recipient as if the subject had no consent statement (the usual case), redaction included,
  // so that the writer, which every store operation waits for, only looks the consent state up
  // and checks that the decisions still hold (DoPush). Decide is pure: the same policy,
  // caller, request, recipient, consent state and day give the same decision.
  void Predecide(const Caller& caller, const PushRequest& req, PushPrepared& p) {
    if (!policy_->UsesConsent()) return;  // the placeholder: nothing worth moving
    auto snapshot = policy_->Snapshot();
    const auto registry = Registry();
    if (!snapshot || !registry || !policy_->CheckPush(req).ok()) return;
    DecisionContext context;
    context.now_ms = clock_->NowMs();
    context.policy = snapshot;
    context.consent = "none";
    context.record_json = p.record_json;
    for (const std::string& id : req.recipients) {
      const config::Agency* agency = registry->Find(id);
      if (agency == nullptr) return;  // refused on the writer; nothing to reuse
      PushPrepared::Predecided pre{agency->id, agency->role, agency->area,
                                   policy_->DecideInContext(caller, req, *agency, context), {}};
      DeliveryDecision& d = pre.decision;
      PushPrepared::Ahead& ahead = pre.ahead;
      if (d.decision != "deny") ahead.message_id = core::TimeOrderedId("msg_", context.now_ms);
      if (d.decision == "redact" && d.redacted_record) {
        auto sealed = SealJson(*d.redacted_record, ahead.message_id, &ahead.view_nonce);
        if (!sealed.ok()) return;  // the writer seals, and reports the failure
        ahead.view_ciphertext = std::move(*sealed);
      }
      ahead.cited = core::CiteDelivery(Delivery{agency->id, d.decision, d.reasons, ahead.message_id},
                                       d, snapshot.get());
      // The entry's detail but its deadline; the redacted view, sealed above, is freed here
      // rather than on the writer.
      ahead.entry_detail = {{"recipient", agency->id}};
      core::MergeAuditDetail(ahead.entry_detail, d);
      d.redacted_record.reset();
      ahead.made = true;
      p.predecided.push_back(std::move(pre));
    }
    json deliveries = json::array();
    for (const PushPrepared::Predecided& pre : p.predecided) {
      const Delivery del{pre.recipient_id, pre.decision.decision, pre.decision.reasons,
                         pre.ahead.message_id};
      deliveries.push_back(StoredDelivery(del, pre.ahead.cited));
    }
    p.predecided_answer = StoredAnswer(p.record_id, std::move(deliveries));
    p.predecided_policy = std::move(snapshot);
    p.predecided_day = UtcDay(context.now_ms);
  }

  void ReadMailbox(const Caller& caller, int limit, std::string after,
                   Callback<MailboxPage> done) override {
    SubmitMailboxRead(caller, limit, std::move(after), MailboxScope{}, std::move(done));
  }
  void SubmitMailboxRead(const Caller& caller, int limit, std::string after, MailboxScope scope,
                         Callback<MailboxPage> done) {
    Submit<MailboxPage>(
        [this, caller, limit, after, scope](MailboxPage& out) {
          return DoReadMailbox(caller, limit, after, scope, out);
        },
        [this, caller](const Status& refusal) {
          AuditEntry e = RejectionEntry(caller.agency, "mailbox_read", refusal);
          return Append(e);
        },
        std::move(done));
  }

  void Ack(const Caller& caller, std::string message_id, Callback<Empty> done) override {
    Submit<Empty>([this, caller, message_id](Empty&) { return DoAck(caller, message_id); },
                  [this, caller, message_id](const Status& refusal) {
                    AuditEntry e = RejectionEntry(caller.agency, "ack", refusal);
                    if (IsGatewayId("msg_", message_id)) e.message_id = message_id;
                    return Append(e);
                  },
                  std::move(done));
  }

  void GetRecord(const Caller& caller, std::string record_id, Callback<json> done) override {
    Submit<json>(
        [this, caller, record_id](json& out) { return DoGetRecord(caller, record_id, out); },
        [this, caller, record_id](const Status& refusal) {
          AuditEntry e = RejectionEntry(caller.agency, "record_read", refusal);
          if (IsGatewayId("rec_", record_id)) e.record_id = record_id;
          return Append(e);
        },
        std::move(done));
  }

  void QueryAudit(const Caller& caller, AuditFilter filter, Callback<AuditPage> done) override {
    Submit<AuditPage>(
        [this, caller, filter](AuditPage& out) { return DoQueryAudit(caller, filter, out); },
        [this, caller](const Status& refusal) {
          AuditEntry e = RejectionEntry(caller.agency, "audit_query", refusal);
          return Append(e);
        },
        std::move(done));
  }

  void VerifyAudit(const Caller& caller, Callback<VerifyReport> done) override {
    Submit<VerifyReport>([this, caller](VerifyReport& out) { return DoVerifyAudit(caller, out); },
                         [this, caller](const Status& refusal) {
                           AuditEntry e = RejectionEntry(caller.agency, "audit_verify", refusal);
                           return Append(e);
                         },
                         std::move(done));
  }

  void Reject(Rejection rejection, Callback<Empty> done) override {
    Submit<Empty>([this, rejection](Empty&) { return DoReject(rejection); }, nullptr,
                  std::move(done));
  }

  void SweepDeadlines(int64_t now_ms, Callback<SweepReport> done) override {
    Submit<SweepReport>([this, now_ms](SweepReport& out) { return DoSweep(now_ms, out); }, nullptr,
                        std::move(done));
  }

  void GetTreeHead(const Caller& caller, Callback<json> done) override {
    Submit<json>([this, caller](json& out) { return DoGetTreeHead(caller, out); },
                 [this, caller](const Status& refusal) {
                   AuditEntry e = RejectionEntry(caller.agency, "tree_head", refusal);
                   return Append(e);
                 },
                 std::move(done));
  }

  void GetInclusionProof(const Caller& caller, int64_t seq, int64_t tree_size,
                         Callback<json> done) override {
    Submit<json>(
        [this, caller, seq, tree_size](json& out) {
          return DoGetInclusionProof(caller, seq, tree_size, out);
        },
        [this, caller](const Status& refusal) {
          AuditEntry e = RejectionEntry(caller.agency, "inclusion_proof", refusal);
          return Append(e);
        },
        std::move(done));
  }

  void GetConsistencyProof(const Caller& caller, int64_t first, int64_t second,
                           Callback<json> done) override {
    Submit<json>(
        [this, caller, first, second](json& out) {
          return DoGetConsistencyProof(caller, first, second, out);
        },
        [this, caller](const Status& refusal) {
          AuditEntry e = RejectionEntry(caller.agency, "consistency_proof", refusal);
          return Append(e);
        },
        std::move(done));
  }

  void EraseSubject(const Caller& caller, std::string subject_ref, std::string reason,
                    Callback<ErasureReport> done) override {
    // The refusal's entry names no subject: recording a failed erasure under the subject's
    // key would create a key for a reference that may never have been seen.
    Submit<ErasureReport>(
        [this, caller, subject_ref, reason](ErasureReport& out) {
          return DoEraseSubject(caller, subject_ref, reason, out);
        },
        [this, caller](const Status& refusal) {
          AuditEntry e = RejectionEntry(caller.agency, "erase_subject", refusal);
          return Append(e);
        },
        std::move(done),
        // The destroyed key's sealed copy may linger in old pages of the write-ahead log;
        // a truncating checkpoint overwrites them (best effort: readers can hold it back).
        [this] { (void)db_->Exec("PRAGMA wal_checkpoint(TRUNCATE)"); });
  }

  // Ingest and the flags view live in ingest.cc and flags.cc, on the StoreContext below.
  void Ingest(const Caller& caller, IngestRequest request, Callback<IngestOutcome> done) override {
    auto job = core::PrepareIngest(*this, caller, request);  // parses on this thread
    Submit<IngestOutcome>(std::move(job.run), std::move(job.on_refused), std::move(done));
  }
  void SubjectFlags(const Caller& caller, std::string ref, std::string purpose,
                    Callback<FlagsView> done) override {
    auto job = core::PrepareSubjectFlags(*this, caller, std::move(ref), std::move(purpose));
    Submit<FlagsView>(std::move(job.run), std::move(job.on_refused), std::move(done));
  }
  void ReadFlagMailbox(const Caller& caller, int limit, std::string after,
                       Callback<MailboxPage> done) override {
    SubmitMailboxRead(caller, limit, std::move(after), MailboxScope{true, "fhir"},
                      std::move(done));
  }

  // The policy's operations live in consents.cc, stats.cc, retention.cc and policy_push.cc.
  void RecordConsent(const Caller& caller, json body, Callback<ConsentRecord> done) override {
    auto job = core::PrepareRecordConsent(*this, caller, std::move(body));
    Submit<ConsentRecord>(std::move(job.run), std::move(job.on_refused), std::move(done));
  }
  void ListConsents(const Caller& caller, std::string ref, Callback<ConsentList> done) override {
    auto job = core::PrepareListConsents(*this, caller, std::move(ref));
    Submit<ConsentList>(std::move(job.run), std::move(job.on_refused), std::move(done));
  }
  void SubjectReport(const Caller& caller, std::string ref, std::string purpose,
                     Callback<json> done) override {
    auto job = core::PrepareSubjectReport(*this, caller, std::move(ref), std::move(purpose));
    Submit<json>(std::move(job.run), std::move(job.on_refused), std::move(done));
  }
  void QueryStats(const Caller& caller, StatsQuery query, Callback<StatsReport> done) override {
    auto job = core::PrepareStats(*this, caller, std::move(query));
    Submit<StatsReport>(std::move(job.run), std::move(job.on_refused), std::move(done));
  }
  void SweepRetention(int64_t now_ms, Callback<RetentionReport> done) override {
    auto job = core::PrepareRetentionSweep(*this, *policy_, now_ms);
    Submit<RetentionReport>(std::move(job.run), nullptr, std::move(done));
  }
  void ReloadPolicy(Callback<PolicyReloadReport> done) override {
    auto job = core::PreparePolicyReload(*this, *policy_);  // reads the file on this thread
    Submit<PolicyReloadReport>(std::move(job.run), nullptr, std::move(done));
  }

  // Out-of-area transfers live in transfers.cc. Jobs that may queue a message for a peer
  // wake the outbox sender once they are committed.
  void ProposeTransfer(const Caller& caller, json body, Callback<json> done) override {
    auto job = transfers_->PreparePropose(caller, std::move(body));
    Submit<json>(std::move(job.run), std::move(job.on_refused), std::move(done),
                 [this] { transfers_->NotifyOutbox(); });
  }
  void GetTransfer(const Caller& caller, std::string transfer_id, Callback<json> done) override {
    auto job = transfers_->PrepareGet(caller, std::move(transfer_id));
    Submit<json>(std::move(job.run), std::move(job.on_refused), std::move(done));
  }
  void AnswerTransfer(const Caller& caller, std::string transfer_id, std::string action,
                      json body, Callback<json> done) override {
    auto job = transfers_->PrepareAnswer(caller, std::move(transfer_id), std::move(action),
                                         std::move(body));
    Submit<json>(std::move(job.run), std::move(job.on_refused), std::move(done),
                 [this] { transfers_->NotifyOutbox(); });
  }
  void ReceivePeerMessage(const Caller& peer, std::string sealed,
                          Callback<PeerMessageReceipt> done) override {
    auto job = transfers_->PrepareReceive(peer, std::move(sealed));
    Submit<PeerMessageReceipt>(std::move(job.run), std::move(job.on_refused), std::move(done),
                               [this] { transfers_->NotifyOutbox(); });
  }
  void TakeOutbox(int64_t now_ms, Callback<OutboxBatch> done) override {
    auto job = transfers_->PrepareTakeOutbox(now_ms);
    Submit<OutboxBatch>(std::move(job.run), nullptr, std::move(done));
  }
  void SettleOutbox(OutboxSettlement settlement, Callback<Empty> done) override {
    auto job = transfers_->PrepareSettle(std::move(settlement));
    Submit<Empty>(std::move(job.run), nullptr, std::move(done));
  }
  void SetOutboxListener(std::function<void()> listener) override {
    transfers_->SetListener(std::move(listener));
  }

  Stats GetStats() override;

  void Shutdown() override {
    if (writer_) writer_->Shutdown();
  }

 private:
  // Wraps typed work as a writer Job: `run` fills a T that `done` receives after COMMIT.
  template <typename T>
  void Submit(std::function<Status(T&)> run, std::function<Status(const Status&)> on_refused,
              Callback<T> done, std::function<void()> after_commit = nullptr) {
    auto out = std::make_shared<T>();
    core::Job job;
    job.run = [out, run = std::move(run)] {
      *out = T{};
      return run(*out);
    };
    job.on_refused = std::move(on_refused);
    job.after_commit = std::move(after_commit);
    job.done = [out, done = std::move(done)](Status status) {
      if (status.ok()) {
        done(Result<T>(std::move(*out)));
      } else {
        done(Result<T>(std::move(status)));
      }
    };
    writer_->Submit(std::move(job));
  }

  std::shared_ptr<const config::Registry> Registry() {
    std::lock_guard<std::mutex> lock(registry_mu_);
    return registry_;
  }

  Status Append(AuditEntry& e) { return audit_.Append(e); }

  // core::StoreContext, for ingest.cc, subjects.cc and flags.cc.
  Db& StoreDb() override { return *db_; }
  const AtRestKey& StoreKey() override { return *key_; }
  int64_t StoreNowMs() override { return clock_->NowMs(); }
  const config::Config& StoreConfig() override { return *config_; }
  std::shared_ptr<const config::Registry> StoreRegistry() override { return Registry(); }
  Status StoreAppend(AuditEntry& e) override { return Append(e); }
  Status StorePush(const Caller& c, const PushRequest& r, PushOutcome& out) override {
    return DoPush(c, r, out);
  }
  std::unique_ptr<PreparedPush> StorePreparePush(const Caller& c, const PushRequest& r) override {
    auto p = std::make_unique<PushPrepared>(PreparePush(r, *key_, clock_->NowMs()));
    Predecide(c, r, *p);
    return p;
  }
  Status StorePush(const Caller& c, const PushRequest& r, PushOutcome& out,
                   const PreparedPush* prepared) override {
    return DoPush(c, r, out, static_cast<const PushPrepared*>(prepared));
  }
  Result<std::string> StoreNotice(const std::string& recipient, const std::string& record_id,
                                  const std::string& purpose, const json& notice,
                                  int64_t now) override {
    return InsertNotice(recipient, record_id, purpose, notice, now);
  }
  Result<json> StoreUnseal(const std::string& nonce, const std::string& ciphertext,
                           std::string_view ad) override {
    return UnsealJson(nonce, ciphertext, ad);
  }
  core::SubjectIndex& Subjects() override { return subjects_; }

  // A request_rejected entry for a refusal: which operation, the API error code and the
  // reason given to the caller. Reasons name fields and agencies, never personal data: the
  // texts below never echo a caller's values.
  AuditEntry RejectionEntry(const std::string& actor, std::string_view operation,
                            const Status& refusal) {
    AuditEntry e;
    e.at_ms = clock_->NowMs();
    e.actor = actor.empty() ? "-" : actor;
    e.action = "request_rejected";
    e.reasons = {refusal.detail()};
    json problems = json::array();
    for (const Problem& p : refusal.problems())
      problems.push_back({{"where", p.where}, {"what", p.what}});
    e.detail = {{"operation", operation},
                {"error", ErrorCodeName(refusal.code())},
                {"status", HttpStatusFor(refusal.code())}};
    if (!problems.empty()) e.detail["problems"] = std::move(problems);
    return e;
  }

  Result<std::string> SealJson(const json& value, std::string_view ad, std::string* nonce) {
    auto sealed = key_->Seal(record::CanonicalJson(value), ad);
    if (!sealed.ok()) return sealed.status();
    *nonce = std::move(sealed->nonce);
    return std::move(sealed->ciphertext);
  }

  Result<json> UnsealJson(const std::string& nonce, const std::string& ciphertext,
                          std::string_view ad) {
    auto plain = key_->Unseal(nonce, ciphertext, ad);
    if (!plain.ok()) {
      return Status::Internal("store: the sealed body of " + std::string(ad) +
                              " does not open: " + plain.status().detail());
    }
    return ParseStoredJson(*plain, "a sealed body");
  }

  int64_t AckDeadline(const std::string& purpose) const {
    const auto& m = config_->mailbox;
    auto it = m.ack_deadline_by_purpose.find(purpose);
    return (it != m.ack_deadline_by_purpose.end() ? it->second : m.ack_deadline).count();
  }

  // `prepared` (may be null: then it is worked out here) is PreparePush of `req`.
  Status DoPush(const Caller& caller, const PushRequest& req, PushOutcome& out,
                const PushPrepared* prepared = nullptr);
  Status DoReadMailbox(const Caller& caller, int limit, const std::string& after,
                       const MailboxScope& scope, MailboxPage& out);
  Status DoAck(const Caller& caller, const std::string& message_id);
  Status DoGetRecord(const Caller& caller, const std::string& record_id, json& out);
  Status DoQueryAudit(const Caller& caller, const AuditFilter& filter, AuditPage& out);
  Status DoVerifyAudit(const Caller& caller, VerifyReport& out);
  Status DoGetTreeHead(const Caller& caller, json& out);
  Status DoGetInclusionProof(const Caller& caller, int64_t seq, int64_t tree_size, json& out);
  Status DoGetConsistencyProof(const Caller& caller, int64_t first, int64_t second, json& out);
  Status DoEraseSubject(const Caller& caller, const std::string& subject_ref,
                        const std::string& reason, ErasureReport& out);
  // An audit_queried entry for a read of the verifiable log (tree head, proofs).
  Status AuditProofRead(const Caller& caller, json detail);
  // Opens the sealed details of a stored entry into `e` (subject, text, erased).
  Status OpenDetails(Stmt& row, int key_col, int details_col, AuditEntry& e,
                     core::SubjectKeys::Cache& cache);
  Status DoReject(const Rejection& rejection);
  Status DoSweep(int64_t now, SweepReport& out);
  // Puts a notice into `recipient`'s mailbox; returns its message id.
  Result<std::string> InsertNotice(const std::string& recipient, const std::string& record_id,
                                   const std::string& purpose, const json& notice, int64_t now);

  const std::unique_ptr<DirLock> lock_;  // first member: released after everything else
  const std::shared_ptr<const config::Config> config_;
  std::mutex registry_mu_;
  std::shared_ptr<const config::Registry> registry_;
  SystemClock system_clock_;
  const Clock* clock_;
  const std::shared_ptr<const DeliveryPolicy> policy_;
  std::unique_ptr<Db> db_;  // the write connection: the writer thread's alone once started
  std::unique_ptr<AtRestKey> key_;
  std::unique_ptr<audit::SigningKey> signing_key_;
  core::SubjectKeys subject_keys_;
  core::AuditLog audit_;
  std::unique_ptr<core::Checkpointer> checkpointer_;  // outlives writer_, which nudges it
  std::unique_ptr<core::Writer> writer_;
  std::string conflict_record_id_;  // writer thread only: the record a 409 collided with
  core::SubjectIndex subjects_;     // writer thread only (loaded in Start)
  TransferOptions transfer_options_;
  std::unique_ptr<core::TransferStore> transfers_;  // made in Start (loads the transfer keys)

  std::mutex stats_mu_;  // guards reader_ and the cache below
  std::unique_ptr<Db> reader_;
  int64_t stats_generation_ = -1;
  std::map<std::string, int64_t> depth_cache_;
  // The policy version whose text the store last wrote to policy_texts (writer thread only).
  std::string policy_text_version_;
  std::map<std::string, int64_t> oldest_cache_;  // delivered_at_ms of the oldest open message
};

// ---- Push -------------------------------------------------------------------------------

Status SqliteGateway::DoPush(const Caller& caller, const PushRequest& req, PushOutcome& out,
                             const PushPrepared* prepared) {
  const int64_t now = clock_->NowMs();
  std::optional<PushPrepared> own;
  if (prepared == nullptr) prepared = &own.emplace(PreparePush(req, *key_, now));
  conflict_record_id_.clear();
  if (!MayPush(caller.role)) {
    return Status::Forbidden("agencies of role " + std::string(config::RoleName(caller.role)) +
                             " may not push records");
  }
  if (req.record.source.agency != caller.agency) {
    return Status(ErrorCode::kForbidden, "record.source.agency must be the calling agency",
                  {{"/record/source/agency", "must be the calling agency"}});
  }

  // Idempotency first: a replay of an accepted push gets its first answer even if the
  // registry has changed since.
  const std::string& content_hash = prepared->content_hash;
  {
    auto find = db_->Prepare(
        "SELECT record_id, content_hash, response_json FROM records "
        "WHERE source_agency = ?1 AND source_record_id = ?2 AND source_version = ?3");
    if (!find.ok()) return find.status();
    Stmt& f = **find;
    f.Bind(1, req.record.source.agency).Bind(2, req.record.source.record_id);
    f.Bind(3, req.record.source.version);
    auto row = f.Step();
    if (!row.ok()) return row.status();
    if (*row) {
      if (f.Blob(1) != content_hash) {
        conflict_record_id_ = f.Text(0);
        return Status::Conflict(
            "this source.agency, source.record_id and source.version were already pushed with "
            "different content; push the change as a new source.version");
      }
      auto first = ParseStoredJson(f.Text(2), "a stored push answer");
      if (!first.ok()) return first.status();
      core::PolicyExplainer policies(*db_, policy_->Snapshot());
      auto replay = OutcomeFromJson(*first, policies);
      if (!replay.ok()) return replay.status();
      out = std::move(*replay);
      return Status::Ok();  // nothing new happened, so nothing new is audited
    }
  }

  // Validate what the request asks for.
  std::vector<Problem> problems;
  if (!IsPurpose(req.purpose)) {
    problems.push_back({"/purpose", "must be a purpose slug: 1-64 of a-z, 0-9, '_' and '-'"});
  }
  // The subject's identifiers key every row and audit entry of the push. A request parsed
  // from JSON has had them checked (record::ParseRecord); a record built in code is held to
  // the same rules here, so no push is ever stored under an empty or invalid reference.
  const record::Subject& who = req.record.subject;
  if (who.nhs_number && !record::IsValidNhsNumber(*who.nhs_number)) {
    problems.push_back({"/record/subject/nhs_number",
                        "must be 10 digits whose check digit is right (modulus 11)"});
  }
  if (!who.nhs_number && who.local_ids.empty()) {
    problems.push_back(
        {"/record/subject", "needs an identifier: nhs_number or at least one local_ids entry"});
  }
  for (size_t i = 0; i < who.local_ids.size(); ++i) {
    if (who.local_ids[i].system.empty() || who.local_ids[i].value.empty()) {
      problems.push_back({"/record/subject/local_ids/" + std::to_string(i),
                          "needs a non-empty system and value"});
    }
  }
  const auto registry = Registry();
  std::vector<const config::Agency*> recipients;
  if (req.recipients.empty()) {
    problems.push_back({"/recipients", "name at least one recipient agency"});
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < req.recipients.size(); ++i) {
    const std::string where = "/recipients/" + std::to_string(i);
    const std::string& id = req.recipients[i];
    if (!seen.insert(id).second) {
      problems.push_back({where, "names the same agency as an earlier recipient"});
      continue;
    }
    const config::Agency* agency = registry ? registry->Find(id) : nullptr;
    if (agency == nullptr) {
      problems.push_back({where, "is not a registered agency"});
      continue;
    }
    switch (agency->role) {
      case config::Role::kAudit:
        problems.push_back({where, "audit agencies never receive records"});
        continue;
      case config::Role::kCommittee:
        problems.push_back({where, "committee agencies never receive records (aggregates only)"});
        continue;
      case config::Role::kGateway:
        problems.push_back({where, "gateway agencies never receive records; use a transfer"});
        continue;
      default:
        break;
    }
    recipients.push_back(agency);
  }
  if (!problems.empty()) {
    return InvalidProblems(std::move(problems));
  }

  // The policy's own checks (purpose, override), then what its decisions need: one policy
  // snapshot for the whole push and the subject's consent state (policy_push.cc).
  if (Status st = policy_->CheckPush(req); !st.ok()) return st;
  DecisionContext context;
  if (Status st = core::PrepareDecisionContext(*this, *policy_, req, now, context); !st.ok()) {
    return st;
  }
  context.record_json = prepared->record_json;
  // The text of the policy version the entries will cite, stored once (policy_texts.h).
  if (context.policy && context.policy->version() != policy_text_version_) {
    if (Status st = core::StorePolicyText(*db_, *context.policy, policy_->PolicyFile(), now);
        !st.ok()) {
      return st;
    }
    policy_text_version_ = context.policy->version();
  }

  // Decide, per recipient.
  out = PushOutcome{};
  out.created = true;
  out.record_id = prepared->record_id;
  const std::string subject = record::PrimaryRef(req.record.subject);
  struct Planned {
    const config::Agency* agency;
    DeliveryDecision decision;
    PushPrepared::Ahead ahead;  // made before the push was queued, if the decision was
  };
  std::vector<Planned> planned;
  bool every_decision_ahead = true;  // then the answer made with them is the one to store
  // The decisions made before the push was queued hold if nothing they depend on changed.
  const bool predecided = prepared->predecided_policy &&
                          prepared->predecided_policy == context.policy &&
                          context.consent == "none" &&
                          prepared->predecided_day == UtcDay(context.now_ms) &&
                          prepared->predecided.size() == recipients.size();
  for (size_t r = 0; r < recipients.size(); ++r) {
    const config::Agency* agency = recipients[r];
    DeliveryDecision d;
    PushPrepared::Ahead made;
    auto& ahead = prepared->predecided;
    if (predecided && !ahead[r].decision.decision.empty() && ahead[r].recipient_id == agency->id &&
        ahead[r].recipient_role == agency->role && ahead[r].recipient_area == agency->area) {
      d = std::move(ahead[r].decision);
      made = std::move(ahead[r].ahead);
      ahead[r].decision = DeliveryDecision{};  // taken: a job run again decides for itself
      ahead[r].ahead = PushPrepared::Ahead{};
    } else {
      d = policy_->DecideInContext(caller, req, *agency, context);
      every_decision_ahead = false;
    }
    if (!d.override_refused.empty()) {  // R2: an override the rule does not allow: 403
      return Status(ErrorCode::kForbidden, d.override_refused,
                    {{"/override", d.override_refused}});
    }
    if (d.decision != "permit" && d.decision != "redact" && d.decision != "deny") {
      return Status::Internal("policy returned an unknown decision for a recipient");
    }
    if (d.decision == "redact" && !d.redacted_record && !made.made) {
      return Status::Internal("policy decided redact without a redacted record");
    }
    // The reasons (about a kilobyte with a policy) move to the answer: nothing below reads
    // them from the decision.
    Delivery del{agency->id, d.decision, std::move(d.reasons), ""};
    if (d.decision != "deny") {
      del.message_id = made.made ? made.message_id : core::TimeOrderedId("msg_", now);
    }
    out.deliveries.push_back(std::move(del));
    planned.push_back({agency, std::move(d), std::move(made)});
  }

  // Retention deadlines (R9), written with the rows.
  std::vector<const DeliveryDecision*> decisions;
  for (const Planned& p : planned) decisions.push_back(&p.decision);
  const core::RetentionPlan retention =
      core::PlanRetention(*policy_, req, out, decisions, now);
  auto until_or_null = [](int64_t until) {
    return until > 0 ? std::optional<int64_t>(until) : std::nullopt;
  };

  // The record, sealed, bound to its id (PreparePush).
  if (!prepared->sealed_record.ok()) return prepared->sealed_record.status();
  const std::string& nonce = prepared->sealed_record->nonce;
  const std::string& ciphertext = prepared->sealed_record->ciphertext;
  {
    auto ins = db_->Prepare(
        "INSERT INTO records(record_id, source_agency, source_record_id, source_version, "
        "content_hash, kind, subject_ref, purpose, created_at_ms, nonce, ciphertext, "
        "response_json, retain_until_ms) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
    if (!ins.ok()) return ins.status();
    Stmt& s = **ins;
    s.Bind(1, out.record_id).Bind(2, req.record.source.agency).Bind(3, req.record.source.record_id);
    s.Bind(4, req.record.source.version).BindBlob(5, content_hash);
    s.Bind(6, record::KindName(req.record.kind)).Bind(7, subject).Bind(8, req.purpose);
    s.Bind(9, now).BindBlob(10, nonce).BindBlob(11, ciphertext);
    // The answer for replays, the policy's deliveries by citation (policy_texts.h): made
    // before the push was queued when every decision was.
    if (every_decision_ahead && !prepared->predecided_answer.empty()) {
      s.Bind(12, prepared->predecided_answer);
    } else {
      json deliveries = json::array();
      for (size_t i = 0; i < planned.size(); ++i) {
        const Delivery& del = out.deliveries[i];
        const Planned& pl = planned[i];
        deliveries.push_back(StoredDelivery(
            del, pl.ahead.made ? pl.ahead.cited
                               : core::CiteDelivery(del, pl.decision, context.policy.get())));
      }
      s.Bind(12, StoredAnswer(out.record_id, std::move(deliveries)));
    }
    s.Bind(13, until_or_null(retention.record_until_ms));
    if (Status st = s.Run(); !st.ok()) return st;
  }
  for (const record::SubjectRef& ref : record::RefsOf(req.record.subject)) {
    auto ins = db_->Prepare("INSERT OR IGNORE INTO subject_refs(ref, record_id) VALUES (?1, ?2)");
    if (!ins.ok()) return ins.status();
    (*ins)->Bind(1, ref.ToString()).Bind(2, out.record_id);
    if (Status st = (*ins)->Run(); !st.ok()) return st;
  }

  // One message per permitted (or redacted) recipient.
  const int64_t deadline = now + AckDeadline(req.purpose);
  for (size_t i = 0; i < planned.size(); ++i) {
    const Delivery& del = out.deliveries[i];
    if (del.message_id.empty()) continue;
    std::string view_nonce, view_ciphertext;
    if (planned[i].decision.decision == "redact" && planned[i].ahead.made) {
      view_nonce = std::move(planned[i].ahead.view_nonce);
      view_ciphertext = std::move(planned[i].ahead.view_ciphertext);
    } else if (planned[i].decision.decision == "redact") {
      auto sealed = SealJson(*planned[i].decision.redacted_record, del.message_id, &view_nonce);
      if (!sealed.ok()) return sealed.status();
      view_ciphertext = std::move(*sealed);
    }
    auto ins = db_->Prepare(
        "INSERT INTO messages(message_id, type, recipient, sender, record_id, purpose, decision, "
        "reasons_json, view_nonce, view_ciphertext, delivered_at_ms, deadline_at_ms, "
        "next_notice_at_ms, retain_until_ms) "
        "VALUES (?1, 'record', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)");
    if (!ins.ok()) return ins.status();
    Stmt& s = **ins;
    s.Bind(1, del.message_id).Bind(2, del.recipient).Bind(3, caller.agency).Bind(4, out.record_id);
    // The reasons as the audit entry records them (codes the policy version resolves).
    const DeliveryDecision& d = planned[i].decision;
    s.Bind(5, req.purpose).Bind(6, del.decision);
    s.Bind(7, record::CanonicalJson(d.audit_reasons.empty() ? del.reasons : d.audit_reasons));
    if (view_ciphertext.empty()) {
      s.BindNull(8).BindNull(9);
    } else {
      s.BindBlob(8, view_nonce).BindBlob(9, view_ciphertext);
    }
    s.Bind(10, now).Bind(11, deadline).Bind(12, until_or_null(retention.message_until_ms[i]));
    if (Status st = s.Run(); !st.ok()) return st;
  }

  // The audit trail of the push, in the same transaction.
  AuditEntry accepted;
  accepted.at_ms = now;
  accepted.actor = caller.agency;
  accepted.action = "record_accepted";
  accepted.subject = subject;
  accepted.record_id = out.record_id;
  accepted.purpose = req.purpose;
  accepted.detail = {{"kind", record::KindName(req.record.kind)},
                     {"source_version", req.record.source.version},
                     {"recipients", req.recipients}};
  if (Status st = Append(accepted); !st.ok()) return st;
  for (size_t i = 0; i < out.deliveries.size(); ++i) {
    const Delivery& del = out.deliveries[i];
    AuditEntry e;
    e.at_ms = now;
    e.actor = caller.agency;
    e.action = del.decision == "permit"   ? "delivery_permitted"
               : del.decision == "redact" ? "delivery_redacted"
                                          : "delivery_denied";
    e.subject = subject;
    e.record_id = out.record_id;
    e.message_id = del.message_id;
    e.purpose = req.purpose;
    e.decision = del.decision;
    const DeliveryDecision& d = planned[i].decision;
    e.reasons = d.audit_reasons.empty() ? del.reasons : d.audit_reasons;  // codes, if any
    if (planned[i].ahead.made) {  // merged before the push was queued
      e.detail = std::move(planned[i].ahead.entry_detail);
    } else {
      e.detail = {{"recipient", del.recipient}};
      core::MergeAuditDetail(e.detail, planned[i].decision);  // rules, basis, withheld fields
    }
    if (!del.message_id.empty()) e.detail["deadline"] = core::FormatTimeMs(deadline);
    if (Status st = Append(e); !st.ok()) return st;
  }
  // The safeguarding override's entry and notice (policy_push.cc).
  if (Status st = core::AfterPushDecisions(*this, *policy_, caller, req, out, decisions, now);
      !st.ok()) {
    return st;
  }
  // Which child this is about (daemon/core/subjects.cc): same transaction, own audit entries.
  return subjects_.Link(*this, caller, req.record, out.record_id, req.purpose, now);
}

// ---- Mailbox ----------------------------------------------------------------------------

Status SqliteGateway::DoReadMailbox(const Caller& caller, int limit, const std::string& after,
                                    const MailboxScope& scope, MailboxPage& out) {
  const int64_t now = clock_->NowMs();
  int64_t after_seq = 0;
  if (Status s = CheckPaging(limit, after, &after_seq); !s.ok()) return s;
  auto q = db_->Prepare(
      scope.flags_only
          ? "SELECT m.seq, m.message_id, m.type, m.record_id, m.sender, m.purpose, "
            "m.delivered_at_ms, m.notice_json, m.view_nonce, m.view_ciphertext, r.nonce, "
            "r.ciphertext, r.subject_ref "
            "FROM messages m JOIN records r ON r.record_id = m.record_id "
            "WHERE m.recipient = ?1 AND m.acked_at_ms IS NULL AND m.expired_at_ms IS NULL "
            "AND m.type = 'record' AND r.kind = 'flag' AND m.seq > ?2 ORDER BY m.seq LIMIT ?3"
          : "SELECT m.seq, m.message_id, m.type, m.record_id, m.sender, m.purpose, "
            "m.delivered_at_ms, m.notice_json, m.view_nonce, m.view_ciphertext, r.nonce, "
            "r.ciphertext, r.subject_ref "
            "FROM messages m LEFT JOIN records r ON r.record_id = m.record_id "
            "WHERE m.recipient = ?1 AND m.acked_at_ms IS NULL AND m.expired_at_ms IS NULL "
            "AND m.seq > ?2 ORDER BY m.seq LIMIT ?3");
  if (!q.ok()) return q.status();
  Stmt& s = **q;
  s.Bind(1, caller.agency).Bind(2, after_seq).Bind(3, static_cast<int64_t>(limit) + 1);
  std::vector<std::string> subjects;
  int64_t last_seq = 0;
  bool more = false;
  for (;;) {
    auto row = s.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (static_cast<int>(out.messages.size()) == limit) {
      more = true;
      break;
    }
    MailboxMessage m;
    last_seq = s.Int(0);
    m.message_id = s.Text(1);
    m.type = s.Text(2);
    m.record_id = s.Text(3);
    m.from = s.Text(4);
    m.purpose = s.Text(5);
    m.delivered_at_ms = s.Int(6);
    if (m.type == "record") {
      auto body = s.IsNull(9) ? UnsealJson(s.Blob(10), s.Blob(11), m.record_id)
                              : UnsealJson(s.Blob(8), s.Blob(9), m.message_id);
      if (!body.ok()) return body.status();
      m.record = std::move(*body);
    } else if (!s.IsNull(9)) {
      // A notice that carries records (transfers.cc) is sealed, bound to its message id.
      auto notice = UnsealJson(s.Blob(8), s.Blob(9), m.message_id);
      if (!notice.ok()) return notice.status();
      m.notice = std::move(*notice);
    } else {
      auto notice = ParseStoredJson(s.Text(7), "a notice");
      if (!notice.ok()) return notice.status();
      m.notice = std::move(*notice);
    }
    subjects.push_back(s.Text(12));
    out.messages.push_back(std::move(m));
  }
  s.Reset();
  if (more) out.next = std::to_string(last_seq);

  if (out.messages.empty()) {
    AuditEntry e;
    e.at_ms = now;
    e.actor = caller.agency;
    e.action = "mailbox_read";
    e.detail = {{"count", 0}};
    if (!scope.view.empty()) e.detail["view"] = scope.view;
    return Append(e);
  }
  for (size_t i = 0; i < out.messages.size(); ++i) {
    const MailboxMessage& m = out.messages[i];
    AuditEntry e;
    e.at_ms = now;
    e.actor = caller.agency;
    e.action = "mailbox_read";
    e.subject = subjects[i];
    e.record_id = m.record_id;
    e.message_id = m.message_id;
    e.purpose = m.purpose;
    e.detail = {{"type", m.type}};
    if (!scope.view.empty()) e.detail["view"] = scope.view;
    if (m.type == "notice" && m.notice.is_object() && m.notice.contains("kind")) {
      e.detail["notice"] = m.notice["kind"];
    }
    if (Status st = Append(e); !st.ok()) return st;
  }
  return Status::Ok();
}

Status SqliteGateway::DoAck(const Caller& caller, const std::string& message_id) {
  const int64_t now = clock_->NowMs();
  auto q = db_->Prepare(
      "SELECT m.recipient, m.acked_at_ms, m.expired_at_ms, m.record_id, m.purpose, m.type, "
      "r.subject_ref, m.deadline_at_ms FROM messages m "
      "LEFT JOIN records r ON r.record_id = m.record_id WHERE m.message_id = ?1");
  if (!q.ok()) return q.status();
  Stmt& s = **q;
  s.Bind(1, message_id);
  auto row = s.Step();
  if (!row.ok()) return row.status();
  // Another agency's message is "not found": its existence is not the caller's business.
  if (!*row || s.Text(0) != caller.agency) {
    return Status::NotFound("there is no such message in your mailbox");
  }
  if (!s.IsNull(1)) return Status::Ok();  // acked before: nothing changes, nothing to audit
  const bool expired = !s.IsNull(2);
  AuditEntry e;
  e.at_ms = now;
  e.actor = caller.agency;
  e.action = "message_acked";
  e.subject = s.Text(6);
  e.record_id = s.Text(3);
  e.message_id = message_id;
  e.purpose = s.Text(4);
  e.detail = {{"type", s.Text(5)}};
  if (auto deadline = s.OptInt(7); deadline && now > *deadline) e.detail["late"] = true;
  if (expired) e.detail["after_expiry"] = true;
  s.Reset();

  auto upd = db_->Prepare(
      "UPDATE messages SET acked_at_ms = ?1, next_notice_at_ms = NULL WHERE message_id = ?2");
  if (!upd.ok()) return upd.status();
  (*upd)->Bind(1, now).Bind(2, message_id);
  if (Status st = (*upd)->Run(); !st.ok()) return st;
  return Append(e);
}

// ---- Records ----------------------------------------------------------------------------

Status SqliteGateway::DoGetRecord(const Caller& caller, const std::string& record_id, json& out) {
  const int64_t now = clock_->NowMs();
  const Status not_found = Status::NotFound("there is no such record for you");
  auto q = db_->Prepare(
      "SELECT source_agency, subject_ref, purpose, nonce, ciphertext FROM records "
      "WHERE record_id = ?1");
  if (!q.ok()) return q.status();
  Stmt& s = **q;
  s.Bind(1, record_id);
  auto row = s.Step();
  if (!row.ok()) return row.status();
  if (!*row) return not_found;
  const std::string source = s.Text(0), subject = s.Text(1);
  std::string purpose = s.Text(2);
  const std::string nonce = s.Blob(3), ciphertext = s.Blob(4);
  s.Reset();

  AuditEntry e;
  e.at_ms = now;
  e.actor = caller.agency;
  e.action = "record_read";
  e.subject = subject;
  e.record_id = record_id;
  if (caller.agency == source) {
    auto body = UnsealJson(nonce, ciphertext, record_id);
    if (!body.ok()) return body.status();
    out = std::move(*body);
    e.detail = {{"as", "source"}};
  } else {
    // The recipient sees the record as it was delivered to them (redacted if so decided).
    auto d = db_->Prepare(
        "SELECT message_id, decision, purpose, view_nonce, view_ciphertext FROM messages "
        "WHERE record_id = ?1 AND recipient = ?2 AND type = 'record' "
        "AND decision IN ('permit', 'redact') ORDER BY seq LIMIT 1");
    if (!d.ok()) return d.status();
    Stmt& m = **d;
    m.Bind(1, record_id).Bind(2, caller.agency);
    auto mrow = m.Step();
    if (!mrow.ok()) return mrow.status();
    if (!*mrow) return not_found;
    e.message_id = m.Text(0);
    e.decision = m.Text(1);
    purpose = m.Text(2);
    auto body = m.IsNull(4) ? UnsealJson(nonce, ciphertext, record_id)
                            : UnsealJson(m.Blob(3), m.Blob(4), e.message_id);
    m.Reset();
    if (!body.ok()) return body.status();
    out = std::move(*body);
    e.detail = {{"as", "recipient"}};
  }
  e.purpose = purpose;
  return Append(e);
}

// ---- Audit ------------------------------------------------------------------------------

Status SqliteGateway::DoQueryAudit(const Caller& caller, const AuditFilter& filter,
                                   AuditPage& out) {
  const int64_t now = clock_->NowMs();
  if (caller.role != config::Role::kAudit) {
    return Status::Forbidden("only audit agencies may read the audit log");
  }
  int64_t after_seq = 0;
  Status paging = CheckPaging(filter.limit, filter.after, &after_seq);
  std::vector<Problem> problems = paging.problems();
  // Filters are echoed into the audit_queried entry, so each must be a reference, an id or
  // a slug: free text (a name typed into the subject box) is refused, never stored.
  std::string subject;
  if (!filter.subject.empty()) {
    auto ref = record::ParseSubjectRef(filter.subject);
    if (ref.ok()) {
      subject = ref->ToString();
    } else {
      problems.push_back({"subject",
                          "must be a subject reference: nhs:<10 digits>, "
                          "csc:<area>:<id> or police:<force>:<id>"});
    }
  }
  if (!filter.agency.empty() && !IsSlug(filter.agency, false, true)) {
    problems.push_back({"agency", "must be an agency id"});
  }
  if (!filter.action.empty() && !IsSlug(filter.action, true, false)) {
    problems.push_back({"action", "must be an audit action such as record_accepted"});
  }
  if (!filter.purpose.empty() && !IsPurpose(filter.purpose)) {
    problems.push_back({"purpose", "must be a purpose slug"});
  }
  if (filter.from_ms && filter.to_ms && *filter.from_ms > *filter.to_ms) {
    problems.push_back({"from", "is after to"});
  }
  if (!problems.empty()) {
    return InvalidProblems(std::move(problems));
  }

  // A subject is found only through the blind index of its reference: the key it maps to
  // names the entries sealed under it. An erased subject's index is gone, so it finds nothing.
  std::optional<int64_t> key_id;
  if (!subject.empty()) {
    auto found = subject_keys_.Find(subject);
    if (!found.ok()) return found.status();
    key_id = *found;
  }
  core::SubjectKeys::Cache cache;
  core::PolicyExplainer explainer(*db_, policy_->Snapshot());
  if (subject.empty() || key_id) {
    std::string sql =
        "SELECT seq, entry, hash, at_ms, actor, action, record_id, message_id, purpose, "
        "decision, key_id, details FROM audit WHERE seq > ?1";
    if (key_id) sql += " AND key_id = ?2";
    if (!filter.action.empty()) sql += " AND action = ?3";
    if (filter.from_ms) sql += " AND at_ms >= ?4";
    if (filter.to_ms) sql += " AND at_ms < ?5";
    if (!filter.agency.empty())
      sql += " AND seq IN (SELECT seq FROM audit_agencies WHERE agency = ?6)";
    sql += " ORDER BY seq LIMIT ?7";
    auto q = db_->PrepareOnce(sql);
    if (!q.ok()) return q.status();
    Stmt& s = **q;
    s.Bind(1, after_seq);
    if (key_id) s.Bind(2, *key_id);
    if (!filter.action.empty()) s.Bind(3, filter.action);
    if (filter.from_ms) s.Bind(4, *filter.from_ms);
    if (filter.to_ms) s.Bind(5, *filter.to_ms);
    if (!filter.agency.empty()) s.Bind(6, filter.agency);
    s.Bind(7, static_cast<int64_t>(filter.limit) + 1);
    bool more = false;
    for (;;) {
      auto row = s.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      if (static_cast<int>(out.entries.size()) == filter.limit) {
        more = true;
        break;
      }
      // The answer is built from the hashed bytes, not the index columns.
      auto entry = core::ParseAuditEntry(s.Blob(1));
      AuditEntry e;
      if (entry.ok()) {
        e = std::move(*entry);
        if (Status st = OpenDetails(s, 10, 11, e, cache); !st.ok()) {
          e.detail["unreadable"] = "the entry's sealed details do not match it; run audit verify";
        }
      } else {
        e.seq = s.Int(0);
        e.at_ms = s.Int(3);
        e.actor = s.Text(4);
        e.action = s.Text(5);
        e.record_id = s.Text(6);
        e.message_id = s.Text(7);
        e.purpose = s.Text(8);
        e.decision = s.Text(9);
        e.detail = {{"unreadable", "the stored entry bytes do not parse; run audit verify"}};
      }
      e.hash = core::Hex(s.Blob(2));
      explainer.Explain(e);  // a delivery's reasons and lawful basis, in words
      out.entries.push_back(std::move(e));
    }
    if (more) out.next = std::to_string(out.entries.back().seq);
  }

  // The subject filter is not echoed in the clear: it is this entry's own (sealed) subject.
  json echoed = json::object();
  if (!filter.agency.empty()) echoed["agency"] = filter.agency;
  if (!filter.action.empty()) echoed["action"] = filter.action;
  if (filter.from_ms) echoed["from"] = core::FormatTimeMs(*filter.from_ms);
  if (filter.to_ms) echoed["to"] = core::FormatTimeMs(*filter.to_ms);
  if (!filter.after.empty()) echoed["after"] = filter.after;
  echoed["limit"] = filter.limit;
  if (!subject.empty()) echoed["by_subject"] = true;
  AuditEntry e;
  e.at_ms = now;
  e.actor = caller.agency;
  e.action = "audit_queried";
  e.subject = subject;
  e.purpose = filter.purpose;
  e.detail = {{"what", "query"},
              {"filter", echoed},
              {"returned", static_cast<int64_t>(out.entries.size())}};
  return Append(e);
}

Status SqliteGateway::OpenDetails(Stmt& row, int key_col, int details_col, AuditEntry& e,
                                  core::SubjectKeys::Cache& cache) {
  if (row.IsNull(key_col)) return Status::Ok();
  auto details = subject_keys_.Open(row.Int(key_col), e.seq, row.Blob(details_col),
                                    e.details_hash, cache);
  if (!details.ok()) return details.status();
  if (!*details) {
    e.erased = true;
    return Status::Ok();
  }
  e.subject = std::move((*details)->subject);
  e.text = std::move((*details)->text);
  return Status::Ok();
}

Status SqliteGateway::DoVerifyAudit(const Caller& caller, VerifyReport& out) {
  const int64_t now = clock_->NowMs();
  if (caller.role != config::Role::kAudit) {
    return Status::Forbidden("only audit agencies may verify the audit log");
  }
  core::VerifyOptions options;
  options.public_key = &signing_key_->public_key();
  options.subject_keys = &subject_keys_;
  auto report = core::VerifyLog(*db_, options);
  if (!report.ok()) return report.status();
  out = std::move(*report);
  AuditEntry e;  // written after the report was computed, so the report does not include it
  e.at_ms = now;
  e.actor = caller.agency;
  e.action = "audit_queried";
  e.detail = {{"what", "verify"}, {"ok", out.ok}, {"entries", out.entries}};
  if (!out.ok) e.detail["first_bad_seq"] = out.first_bad_seq;
  return Append(e);
}

Status SqliteGateway::AuditProofRead(const Caller& caller, json detail) {
  AuditEntry e;
  e.at_ms = clock_->NowMs();
  e.actor = caller.agency;
  e.action = "audit_queried";
  e.detail = std::move(detail);
  return Append(e);
}

Status SqliteGateway::DoGetTreeHead(const Caller& caller, json& out) {
  if (caller.role != config::Role::kAudit) {
    return Status::Forbidden("only audit agencies may read the audit log's tree heads");
  }
  const auto& head = audit_.latest_head();
  if (!head) return Status::NotFound("no tree head has been signed yet: the audit log is empty");
  out = audit::TreeHeadToJson(*head, signing_key_->public_key());
  return AuditProofRead(caller, {{"what", "tree_head"}, {"tree_size", head->tree_size}});
}

Status SqliteGateway::DoGetInclusionProof(const Caller& caller, int64_t seq, int64_t tree_size,
                                          json& out) {
  if (caller.role != config::Role::kAudit) {
    return Status::Forbidden("only audit agencies may read the audit log's proofs");
  }
  const int64_t entries = static_cast<int64_t>(audit_.tree_size());
  if (tree_size == 0) {
    if (!audit_.latest_head()) {
      return Status::NotFound("no tree head has been signed yet: name a tree_size");
    }
    tree_size = static_cast<int64_t>(audit_.latest_head()->tree_size);
  }
  std::vector<Problem> problems;
  if (tree_size < 1 || tree_size > entries) {
    problems.push_back({"tree_size", "must be between 1 and the number of entries (" +
                                         std::to_string(entries) + ")"});
  }
  if (seq < 1 || (problems.empty() && seq > tree_size)) {
    problems.push_back({"seq", "must be between 1 and tree_size (" + std::to_string(tree_size) +
                                   ")"});
  }
  if (!problems.empty()) {
    return InvalidProblems(std::move(problems));
  }
  auto q = db_->Prepare("SELECT entry FROM audit WHERE seq = ?1");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, seq);
  auto row = (*q)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::Internal("audit: entry " + std::to_string(seq) + " is missing");
  const std::string entry = (*q)->Blob(0);
  (*q)->Reset();
  const uint64_t index = static_cast<uint64_t>(seq - 1);
  auto path = audit::InclusionProof(audit_.nodes(), index, static_cast<uint64_t>(tree_size));
  if (!path.ok()) return path.status();
  out = audit::InclusionProofToJson(index, static_cast<uint64_t>(tree_size), entry, *path);
  return AuditProofRead(caller,
                        {{"what", "inclusion_proof"}, {"seq", seq}, {"tree_size", tree_size}});
}

Status SqliteGateway::DoGetConsistencyProof(const Caller& caller, int64_t first, int64_t second,
                                            json& out) {
  if (caller.role != config::Role::kAudit) {
    return Status::Forbidden("only audit agencies may read the audit log's proofs");
  }
  const int64_t entries = static_cast<int64_t>(audit_.tree_size());
  std::vector<Problem> problems;
  if (second < 1 || second > entries) {
    problems.push_back({"second", "must be between 1 and the number of entries (" +
                                      std::to_string(entries) + ")"});
  }
  if (first < 1 || (problems.empty() && first > second)) {
    problems.push_back({"first", "must be between 1 and second"});
  }
  if (!problems.empty()) {
    return InvalidProblems(std::move(problems));
  }
  auto path = audit::ConsistencyProof(audit_.nodes(), static_cast<uint64_t>(first),
                                      static_cast<uint64_t>(second));
  if (!path.ok()) return path.status();
  out = audit::ConsistencyProofToJson(static_cast<uint64_t>(first), static_cast<uint64_t>(second),
                                      *path);
  return AuditProofRead(caller,
                        {{"what", "consistency_proof"}, {"first", first}, {"second", second}});
}

Status SqliteGateway::DoEraseSubject(const Caller& caller, const std::string& subject_ref,
                                     const std::string& reason, ErasureReport& out) {
  const int64_t now = clock_->NowMs();
  if (caller.role != config::Role::kAudit) {
    return Status::Forbidden("only audit agencies may erase a subject's audit details");
  }
  std::vector<Problem> problems;
  auto ref = record::ParseSubjectRef(subject_ref);
  if (!ref.ok()) {
    problems.push_back({"subject", "must be a subject reference: nhs:<10 digits>, "
                                   "csc:<area>:<id> or police:<force>:<id>"});
  }
  if (!IsSlug(reason, true, true)) {
    problems.push_back({"reason", "must be a reason code: 1-64 of a-z, 0-9, '_' and '-' (such "
                                  "as retention_expired); free text is not kept"});
  }
  if (!problems.empty()) {
    return InvalidProblems(std::move(problems));
  }
  auto key_id = subject_keys_.Find(ref->ToString());
  if (!key_id.ok()) return key_id.status();
  if (!*key_id) {
    return Status::NotFound("the audit log holds no details under this subject reference (never "
                            "recorded, or erased already)");
  }
  {
    auto n = db_->Prepare("SELECT count(*) FROM audit WHERE key_id = ?1");
    if (!n.ok()) return n.status();
    (*n)->Bind(1, **key_id);
    auto row = (*n)->Step();
    if (!row.ok()) return row.status();
    out.entries = *row ? (*n)->Int(0) : 0;
    (*n)->Reset();
  }
  // The entry names the key it destroys (a number, not the subject) and how many entries it
  // makes unreadable; the entry itself has no details, or they would be sealed under a key.
  AuditEntry e;
  e.at_ms = now;
  e.actor = caller.agency;
  e.action = "subject_erased";
  e.reasons = {reason};
  e.detail = {{"key", **key_id}, {"entries", out.entries}};
  if (Status st = Append(e); !st.ok()) return st;
  out.seq = e.seq;
  return subject_keys_.Erase(**key_id, now, e.seq);
}

Status SqliteGateway::DoReject(const Rejection& rejection) {
  if (rejection.action != "tls_rejected" && rejection.action != "request_rejected") {
    return Status::Internal("Reject takes tls_rejected or request_rejected, not '" +
                            rejection.action + "'");
  }
  AuditEntry e;
  e.at_ms = clock_->NowMs();
  e.actor = rejection.actor.empty() ? "-" : rejection.actor;
  e.action = rejection.action;
  if (!rejection.reason.empty()) e.reasons = {rejection.reason};
  e.detail = rejection.detail.is_object() ? rejection.detail : json::object();
  return Append(e);
}

// ---- Deadlines --------------------------------------------------------------------------

Result<std::string> SqliteGateway::InsertNotice(const std::string& recipient,
                                                const std::string& record_id,
                                                const std::string& purpose, const json& notice,
                                                int64_t now) {
  std::string id = core::TimeOrderedId("msg_", now);
  auto ins = db_->Prepare(
      "INSERT INTO messages(message_id, type, recipient, sender, record_id, purpose, "
      "delivered_at_ms, notice_json) VALUES (?1, 'notice', ?2, ?3, ?4, ?5, ?6, ?7)");
  if (!ins.ok()) return ins.status();
  Stmt& s = **ins;
  s.Bind(1, id).Bind(2, recipient).Bind(3, kGatewayActor).Bind(4, record_id).Bind(5, purpose);
  s.Bind(6, now).Bind(7, record::CanonicalJson(notice));
  if (Status st = s.Run(); !st.ok()) return st;
  return id;
}

Status SqliteGateway::DoSweep(int64_t now, SweepReport& out) {
  struct Due {
    int64_t seq;
    std::string message_id, recipient, sender, record_id, purpose, subject;
    int64_t delivered_at, deadline, next_notice, notices_sent;
  };
  std::vector<Due> due;
  {
    auto q = db_->Prepare(
        "SELECT m.seq, m.message_id, m.recipient, m.sender, m.record_id, m.purpose, "
        "m.delivered_at_ms, m.deadline_at_ms, m.next_notice_at_ms, m.notices_sent, r.subject_ref "
        "FROM messages m JOIN records r ON r.record_id = m.record_id "
        "WHERE m.type = 'record' AND m.acked_at_ms IS NULL AND m.expired_at_ms IS NULL "
        "AND m.next_notice_at_ms <= ?1 ORDER BY m.next_notice_at_ms, m.seq LIMIT ?2");
    if (!q.ok()) return q.status();
    Stmt& s = **q;
    s.Bind(1, now).Bind(2, static_cast<int64_t>(kMaxSweepRows));
    for (;;) {
      auto row = s.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      due.push_back({s.Int(0), s.Text(1), s.Text(2), s.Text(3), s.Text(4), s.Text(5), s.Text(10),
                     s.Int(6), s.Int(7), s.Int(8), s.Int(9)});
    }
  }
  const auto registry = Registry();
  const int64_t expire_after = config_->mailbox.expire_after.count();
  const int64_t renotice = std::max<int64_t>(1, config_->mailbox.renotice_interval.count());

  for (const Due& d : due) {
    // Who hears about it: the sender, and the audit agency of the recipient's area.
    std::vector<std::string> notified = {d.sender};
    const config::Agency* recipient = registry ? registry->Find(d.recipient) : nullptr;
    const std::string area = recipient != nullptr ? recipient->area : config_->area;
    const config::Agency* auditor =
        registry ? registry->FindByRole(area, config::Role::kAudit) : nullptr;
    if (auditor != nullptr && auditor->id != d.sender) notified.push_back(auditor->id);

    const int64_t expires_at = d.delivered_at + expire_after;
    const bool expire = now >= expires_at;
    json notice = {{"kind", expire ? "expired" : "ack_overdue"},
                   {"message_id", d.message_id},
                   {"record_id", d.record_id},
                   {"recipient", d.recipient},
                   {"delivered_at", core::FormatTimeMs(d.delivered_at)},
                   {"deadline", core::FormatTimeMs(d.deadline)}};
    if (expire) {
      notice["expired_at"] = core::FormatTimeMs(now);
    } else {
      notice["notices_sent"] = d.notices_sent + 1;
    }
    json notice_ids = json::array();
    for (const std::string& to : notified) {
      auto id = InsertNotice(to, d.record_id, d.purpose, notice, now);
      if (!id.ok()) return id.status();
      notice_ids.push_back(*id);
    }

    AuditEntry e;
    e.at_ms = now;
    e.actor = kGatewayActor;
    e.subject = d.subject;
    e.record_id = d.record_id;
    e.message_id = d.message_id;
    e.purpose = d.purpose;
    e.detail = {{"recipient", d.recipient},
                {"notified", notified},
                {"notices", notice_ids},
                {"deadline", core::FormatTimeMs(d.deadline)}};
    if (expire) {
      auto upd = db_->Prepare(
          "UPDATE messages SET expired_at_ms = ?1, next_notice_at_ms = NULL WHERE seq = ?2");
      if (!upd.ok()) return upd.status();
      (*upd)->Bind(1, now).Bind(2, d.seq);
      if (Status st = (*upd)->Run(); !st.ok()) return st;
      e.action = "message_expired";
      ++out.expired;
    } else {
      // The next notice: one renotice interval on, skipping intervals the gateway was not
      // running for, and never later than the expiry.
      int64_t next = d.next_notice + renotice;
      if (next <= now) next += ((now - next) / renotice + 1) * renotice;
      next = std::min(next, expires_at);
      auto upd = db_->Prepare(
          "UPDATE messages SET next_notice_at_ms = ?1, notices_sent = notices_sent + 1 "
          "WHERE seq = ?2");
      if (!upd.ok()) return upd.status();
      (*upd)->Bind(1, next).Bind(2, d.seq);
      if (Status st = (*upd)->Run(); !st.ok()) return st;
      e.action = "delivery_overdue";
      e.detail["notices_sent"] = d.notices_sent + 1;
      ++out.notices;
    }
    if (Status st = Append(e); !st.ok()) return st;
  }
  // Transfer deadlines (transfers.cc): escalations due by now, in the same job.
  if (transfers_) return transfers_->SweepEscalations(now, out);
  return Status::Ok();
}

// ---- Stats ------------------------------------------------------------------------------

Gateway::Stats SqliteGateway::GetStats() {
  Stats st;
  st.audit_entries = writer_->audit_entries();
  st.commits = writer_->commits();
  st.committed_jobs = writer_->committed_jobs();
  st.last_commit_ms = writer_->last_commit_ms();
  std::lock_guard<std::mutex> lock(stats_mu_);
  const int64_t generation = writer_->generation();
  if (reader_ && generation != stats_generation_) {
    // Mailbox depth changes only when something commits, so the query runs at most once
    // per commit, however often /metrics is scraped.
    auto q = reader_->Prepare(
        "SELECT recipient, count(*), min(delivered_at_ms) FROM messages "
        "WHERE acked_at_ms IS NULL AND expired_at_ms IS NULL GROUP BY recipient");
    if (q.ok()) {
      std::map<std::string, int64_t> depth, oldest;
      bool ok = true;
      for (;;) {
        auto row = (*q)->Step();
        if (!row.ok()) {
          ok = false;
          break;
        }
        if (!*row) break;
        depth[(*q)->Text(0)] = (*q)->Int(1);
        oldest[(*q)->Text(0)] = (*q)->Int(2);
      }
      (*q)->Reset();
      if (ok) {
        depth_cache_ = std::move(depth);
        oldest_cache_ = std::move(oldest);
        stats_generation_ = generation;
      }
    }
  }
  // The transfer outbox, per peer: every configured peer appears, with 0 when empty.
  if (reader_) {
    if (const auto registry = Registry()) {
      for (const config::Peer& p : registry->peers) {
        st.outbox_depth[p.area] = 0;
        st.outbox_oldest_age_ms[p.area] = 0;
        st.outbox_failed[p.area] = 0;
      }
    }
    (void)core::TransferStore::ReadOutboxStats(*reader_, clock_->NowMs(), st);
  }
  const int64_t now = clock_->NowMs();
  st.mailbox_depth = depth_cache_;
  for (const auto& [agency, delivered] : oldest_cache_) {
    st.oldest_unacked_age_ms[agency] = std::max<int64_t>(0, now - delivered);
  }
  return st;
}

// ---- Opening ----------------------------------------------------------------------------

Status ErrnoStatus(const std::string& path, std::string_view what, int err) {
  return Status::Internal("store: " + std::string(what) + " " + path + ": " + std::strerror(err));
}

// Creates the data directory (0700) and an empty database file (0600) if missing, so that
// SQLite's -wal and -shm files, which copy the database file's mode, are private too.
Status PrepareFiles(const std::string& data_dir, const std::string& db_path) {
  std::error_code ec;
  if (!std::filesystem::exists(data_dir, ec)) {
    std::filesystem::create_directories(data_dir, ec);
    if (ec) return Status::Internal("store: create " + data_dir + ": " + ec.message());
    std::filesystem::permissions(data_dir, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::replace, ec);
    if (ec) return Status::Internal("store: chmod 700 " + data_dir + ": " + ec.message());
  } else if (!std::filesystem::is_directory(data_dir, ec)) {
    return Status::Internal("store: data_dir " + data_dir + " is not a directory");
  }
  const int fd =
      ::open(db_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
  } else if (errno != EEXIST) {
    return ErrnoStatus(db_path, "create", errno);
  }
  return Status::Ok();
}

// Takes the data directory's lock, trying again until `wait` has passed: a gateway restarted
// straight after its predecessor was killed may find the lock still held for a moment while
// the kernel finishes closing the dead process's files.
Result<std::unique_ptr<DirLock>> LockDataDir(const std::string& data_dir,
                                             std::chrono::milliseconds wait) {
  const std::string path = (std::filesystem::path(data_dir) / "safegate.lock").string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(path, "open", errno);
  auto lock = std::make_unique<DirLock>(fd);
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) return ErrnoStatus(path, "lock", errno);
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::Unavailable("store: another safegate process is using " + data_dir);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling the lock, bounded
  }
  return lock;
}

// Confirms the key opens this database's bodies, or records a check value on first use.
Status CheckKey(Db& db, const AtRestKey& key, const std::string& key_path) {
  auto q = db.Prepare("SELECT value FROM meta WHERE key = 'key_check'");
  if (!q.ok()) return q.status();
  auto row = (*q)->Step();
  if (!row.ok()) return row.status();
  if (*row) {
    const std::string stored = (*q)->Blob(0);
    (*q)->Reset();
    if (stored.size() < core::kNonceBytes ||
        !key.Unseal(stored.substr(0, core::kNonceBytes), stored.substr(core::kNonceBytes),
                    kKeyCheckAd)
             .ok()) {
      return Status::Internal("store key file " + key_path +
                              " is not the key this database was sealed with; restore the "
                              "right key file");
    }
    return Status::Ok();
  }
  (*q)->Reset();
  auto sealed = key.Seal(kKeyCheckPlaintext, kKeyCheckAd);
  if (!sealed.ok()) return sealed.status();
  auto ins = db.Prepare("INSERT INTO meta(key, value) VALUES ('key_check', ?1)");
  if (!ins.ok()) return ins.status();
  (*ins)->BindBlob(1, sealed->nonce + sealed->ciphertext);
  return (*ins)->Run();  // autocommit: durable before the first request is taken
}

// Records the signing key's public half on first use, and refuses a signing key other than
// the one this log's heads were signed with (a replaced key would sign heads nobody can tie
// to the earlier ones).
Status CheckSigningKey(Db& db, const audit::SigningKey& key, const std::string& key_path) {
  const std::string pk(reinterpret_cast<const char*>(key.public_key().data()),
                       key.public_key().size());
  auto q = db.Prepare("SELECT value FROM meta WHERE key = 'signing_public_key'");
  if (!q.ok()) return q.status();
  auto row = (*q)->Step();
  if (!row.ok()) return row.status();
  if (*row) {
    const std::string stored = (*q)->Blob(0);
    (*q)->Reset();
    if (stored != pk) {
      return Status::Internal("signing key file " + key_path +
                              " is not the key this audit log's tree heads were signed with "
                              "(public key " + audit::ToBase64(stored) + "); restore that key file");
    }
    return Status::Ok();
  }
  (*q)->Reset();
  auto ins = db.Prepare("INSERT INTO meta(key, value) VALUES ('signing_public_key', ?1)");
  if (!ins.ok()) return ins.status();
  (*ins)->BindBlob(1, pk);
  return (*ins)->Run();
}

// The public key offline verification checks heads with: the data directory's signing key
// when this user can read it, else the one the database recorded. Empty when neither exists.
Result<std::optional<audit::PublicKey>> DataDirPublicKey(Db& db, const std::string& data_dir) {
  const std::string key_path = (std::filesystem::path(data_dir) / kSigningKeyFile).string();
  if (auto key = audit::SigningKey::Load(key_path); key.ok()) {
    return std::optional<audit::PublicKey>((*key)->public_key());
  }
  auto q = db.PrepareOnce("SELECT value FROM meta WHERE key = 'signing_public_key'");
  if (!q.ok()) return q.status();
  auto row = (*q)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<audit::PublicKey>();
  const std::string stored = (*q)->Blob(0);
  audit::PublicKey pk{};
  if (stored.size() != pk.size()) {
    return Status::Internal("store: the recorded signing public key is not 32 bytes");
  }
  std::copy(stored.begin(), stored.end(), pk.begin());
  return std::optional<audit::PublicKey>(pk);
}

// Opens a data directory's database read-only for offline tools.
Result<std::unique_ptr<Db>> OpenReadOnly(const std::string& data_dir) {
  const std::string db_path = (std::filesystem::path(data_dir) / "safegate.db").string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(db_path, ec)) {
    return Status::NotFound("no safegate database at " + db_path);
  }
  auto db = Db::Open(db_path, Db::Mode::kReadOnly);
  if (!db.ok()) return db.status();
  (void)(*db)->Exec("PRAGMA busy_timeout=5000");
  if (Status s = core::CheckSchemaVersion(**db); !s.ok()) return s;
  return std::move(*db);
}

Result<bool> HasKeyCheck(Db& db) {
  auto n = db.QueryInt("SELECT count(*) FROM meta WHERE key = 'key_check'");
  if (!n.ok()) return n.status();
  return *n > 0;
}

}  // namespace

Result<std::unique_ptr<Gateway>> Gateway::Open(GatewayOptions options) {
  if (!options.config) return Status::Internal("Gateway::Open: no configuration given");
  if (!options.registry) return Status::Internal("Gateway::Open: no registry given");
  const config::Config& cfg = *options.config;
  if (cfg.data_dir.empty()) return Status::Internal("store: data_dir is not set");
  if (Status s = core::InitSodium(); !s.ok()) return s;
  // The configured policy file; a refused file stops the start with its file:line problems.
  if (!options.policy && !cfg.policy.empty()) {
    auto policy = MakePolicyDeliveryPolicy(cfg.policy);
    if (!policy.ok()) return policy.status();
    options.policy = std::move(*policy);
  }

  const std::string db_path = (std::filesystem::path(cfg.data_dir) / "safegate.db").string();
  const std::string key_path = cfg.store.key_file.empty()
                                   ? (std::filesystem::path(cfg.data_dir) / "store.key").string()
                                   : cfg.store.key_file;
  if (Status s = PrepareFiles(cfg.data_dir, db_path); !s.ok()) return s;
  auto lock = LockDataDir(cfg.data_dir, options.lock_wait);
  if (!lock.ok()) return lock.status();

  auto db = Db::Open(db_path, Db::Mode::kReadWriteCreate);
  if (!db.ok()) return db.status();
  if (Status s = core::ConfigureWriteConnection(**db); !s.ok()) return s;
  if (Status s = core::Migrate(**db); !s.ok()) return s;

  // A database that already holds sealed bodies never gets a fresh key silently: a lost key
  // file is an operator's problem to solve, not something to paper over.
  auto has_check = HasKeyCheck(**db);
  if (!has_check.ok()) return has_check.status();
  std::error_code ec;
  if (*has_check && !std::filesystem::exists(key_path, ec)) {
    return Status::Internal("store key file " + key_path +
                            " is missing, but the database holds data sealed with it; restore "
                            "the key file");
  }
  auto key = AtRestKey::LoadOrCreate(key_path);
  if (!key.ok()) return key.status();
  if (Status s = CheckKey(**db, **key, key_path); !s.ok()) return s;

  // The gateway's Ed25519 key, which signs the audit log's tree heads.
  const std::string signing_key_path =
      (std::filesystem::path(cfg.data_dir) / kSigningKeyFile).string();
  auto signing_key = audit::SigningKey::LoadOrCreate(signing_key_path);
  if (!signing_key.ok()) return signing_key.status();
  if (Status s = CheckSigningKey(**db, **signing_key, signing_key_path); !s.ok()) return s;

  // A second, read-only connection for /metrics, so GetStats never waits for the writer.
  auto reader = Db::Open(db_path, Db::Mode::kReadOnly);
  std::unique_ptr<Db> reader_db;
  if (reader.ok()) {
    reader_db = std::move(*reader);
    (void)reader_db->Exec("PRAGMA busy_timeout=1000");
  }

  auto gateway = std::make_unique<SqliteGateway>(std::move(options), std::move(*lock),
                                                 std::move(*db), std::move(*key),
                                                 std::move(*signing_key), std::move(reader_db));
  if (Status s = gateway->Start(); !s.ok()) return s;
  return std::unique_ptr<Gateway>(std::move(gateway));
}

Result<VerifyReport> VerifyAuditChain(const std::string& data_dir) {
  return VerifyAuditChain(data_dir, "");
}

Result<VerifyReport> VerifyAuditChain(const std::string& data_dir,
                                      const std::string& public_key_base64) {
  std::optional<audit::PublicKey> pinned;
  if (!public_key_base64.empty()) {
    pinned = audit::ParsePublicKey(public_key_base64);
    if (!pinned) {
      return Status::Invalid("the public key is not base64 of 32 bytes",
                             {{"public_key", "must be the gateway's Ed25519 public key, base64"}});
    }
  }
  auto db = OpenReadOnly(data_dir);
  if (!db.ok()) return db.status();
  if (Status s = (*db)->Exec("BEGIN"); !s.ok()) return s;  // one snapshot for the whole walk
  std::optional<audit::PublicKey> key = pinned;
  if (!key) {
    auto own = DataDirPublicKey(**db, data_dir);
    if (!own.ok()) {
      (void)(*db)->Exec("COMMIT");
      return own.status();
    }
    key = *own;
  }
  core::VerifyOptions options;
  if (key) options.public_key = &*key;
  auto report = core::VerifyLog(**db, options);
  (void)(*db)->Exec("COMMIT");
  return report;
}

Result<json> MakeAuditProofBundle(const std::string& data_dir, int64_t seq) {
  auto db = OpenReadOnly(data_dir);
  if (!db.ok()) return db.status();
  if (Status s = (*db)->Exec("BEGIN"); !s.ok()) return s;
  auto finish = [&](Result<json> r) {
    (*db)->ResetAll();
    (void)(*db)->Exec("COMMIT");
    return r;
  };
  auto key = DataDirPublicKey(**db, data_dir);
  if (!key.ok()) return finish(key.status());
  if (!*key) return finish(Status::NotFound("no tree head has been signed in " + data_dir));
  auto head = core::ReadLatestTreeHead(**db);
  if (!head.ok()) return finish(head.status());
  if (!*head) return finish(Status::NotFound("no tree head has been signed in " + data_dir));
  if (seq < 1 || static_cast<uint64_t>(seq) > (*head)->head.tree_size) {
    return finish(Status::NotFound(
        "entry " + std::to_string(seq) + " is not under the latest signed tree head (tree size " +
        std::to_string((*head)->head.tree_size) + ")"));
  }
  std::string entry;
  {
    auto q = (*db)->PrepareOnce("SELECT entry FROM audit WHERE seq = ?1");
    if (!q.ok()) return finish(q.status());
    (*q)->Bind(1, seq);
    auto row = (*q)->Step();
    if (!row.ok()) return finish(row.status());
    if (!*row) return finish(Status::Internal("audit: entry " + std::to_string(seq) + " is missing"));
    entry = (*q)->Blob(0);
  }
  core::SqliteNodeStore nodes(db->get());
  auto bundle = audit::MakeBundle(nodes, std::move(entry), static_cast<uint64_t>(seq - 1),
                                  (*head)->head, **key);
  if (!bundle.ok()) return finish(bundle.status());
  return finish(audit::BundleToJson(*bundle));
}

}  // namespace safegate
