// Ingest: a native export parsed by its adapter, then every record stored in one job exactly
// as a push stores it. docs/ingest.md describes the behaviour.
#include "daemon/core/ingest.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "adapters/registry.h"
#include "daemon/core/time_format.h"
#include "record/record.h"

namespace safegate {

using nlohmann::json;

// Stores that do not implement the extension say so rather than fail to build.
void Gateway::Ingest(const Caller&, IngestRequest, Callback<IngestOutcome> done) {
  done(Status::Unavailable("this store does not ingest exports"));
}

void Gateway::SubjectFlags(const Caller&, std::string, std::string, Callback<FlagsView> done) {
  done(Status::Unavailable("this store does not answer flag queries"));
}

void Gateway::ReadFlagMailbox(const Caller&, int, std::string, Callback<MailboxPage> done) {
  done(Status::Unavailable("this store does not render mailboxes as FHIR"));
}

json IngestOutcome::ToJson() const {
  json problems = json::array();
  for (const Problem& p : warnings) problems.push_back({{"where", p.where}, {"what", p.what}});
  return {{"format", format},
          {"records", record_ids},
          {"count", static_cast<int64_t>(record_ids.size())},
          {"created", created},
          {"replayed", replayed},
          {"recipients", recipients},
          {"warnings", std::move(problems)}};
}

namespace core {
namespace {

constexpr size_t kMaxAuditedPositions = 20;

bool IsPurpose(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

bool MayPush(config::Role role) {
  return role == config::Role::kPolice || role == config::Role::kHealth ||
         role == config::Role::kCsc;
}

// What a parsed export carries into its job. Records are moved out as they are stored.
struct ParsedIngest {
  std::string format;
  std::string adapter;
  std::string purpose;
  std::vector<std::string> recipients;  // as requested; empty means the defaults
  std::vector<record::Record> records;
  std::vector<Problem> warnings;
  std::vector<PushRequest> requests;  // the records, moved into their pushes by the job
  bool records_moved = false;         // `records` are in `requests` now
};

// The request_rejected entry of a refused ingest. Adapters quote the offending values in
// their problems (for the sender, who owns them); the audit keeps only the positions, so no
// personal data from a bad export reaches the log.
AuditEntry IngestRejection(const Caller& caller, const std::string& format,
                           const std::string& purpose, const Status& refusal, int64_t now) {
  AuditEntry e;
  e.at_ms = now;
  e.actor = caller.agency.empty() ? "-" : caller.agency;
  e.action = "request_rejected";
  const size_t n = refusal.problems().size();
  e.reasons = {std::string(ErrorCodeName(refusal.code())) +
               (n > 0 ? ": " + std::to_string(n) + " problem(s) in the export" : "")};
  json positions = json::array();
  for (const Problem& p : refusal.problems()) {
    if (positions.size() >= kMaxAuditedPositions) break;
    positions.push_back(p.where);
  }
  e.detail = {{"operation", "ingest"},
              {"error", ErrorCodeName(refusal.code())},
              {"status", HttpStatusFor(refusal.code())},
              {"problem_count", static_cast<int64_t>(n)},
              {"positions", std::move(positions)}};
  // Only a registered format's name is echoed; anything else could be free text.
  if (adapters::FindAdapter(format) != nullptr) e.detail["format"] = format;
  if (IsPurpose(purpose)) e.purpose = purpose;
  return e;
}

Status CheckRecipients(const config::Registry* registry, const std::vector<std::string>& ids) {
  std::vector<Problem> problems;
  std::set<std::string> seen;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string where = "recipients[" + std::to_string(i) + "]";
    if (!seen.insert(ids[i]).second) {
      problems.push_back({where, "names the same agency as an earlier recipient"});
      continue;
    }
    const config::Agency* a = registry != nullptr ? registry->Find(ids[i]) : nullptr;
    if (a == nullptr) {
      problems.push_back({where, "is not a registered agency"});
    } else if (!MayPush(a->role)) {
      problems.push_back({where, "agencies of role " + std::string(config::RoleName(a->role)) +
                                     " never receive records"});
    }
  }
  if (problems.empty()) return Status::Ok();
  return Status::Invalid("the recipients are not all agencies that may receive records",
                         std::move(problems));
}

// The pushes of one export, prepared in order on a thread of its own while the writer stores
// the ones before. At most kAhead are waiting at a time, so the prepared (sealed) copies of
// a large export are never all in memory at once; a thread that got that far ahead sleeps
// until half of them are taken, so the two threads wake each other once per kAhead / 2
// pushes, not once per push. Take(i) blocks until push i is ready; the destructor stops the
// thread and waits for it (a job that fails part-way stops it early). The database-free part
// of a push (StoreContext::StorePreparePush: content hash, record id, sealed record, the
// policy's decisions) is thus done beside the writer, which only reads and writes.
class PushPipeline {
 public:
  using Prepared = std::unique_ptr<StoreContext::PreparedPush>;
  static constexpr size_t kAhead = 512;

  PushPipeline(StoreContext& store, const Caller& caller, const std::vector<PushRequest>& requests)
      : store_(store), caller_(caller), requests_(requests), prepared_(requests.size()) {
    thread_ = std::thread([this] { Run(); });
  }
  ~PushPipeline() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  PushPipeline(const PushPipeline&) = delete;
  PushPipeline& operator=(const PushPipeline&) = delete;

  // Push i, prepared. Called in order, i = 0, 1, ...
  Prepared Take(size_t i) {
    std::unique_lock<std::mutex> lock(mu_);
    if (ready_ <= i) {
      taker_waiting_ = true;
      cv_.wait(lock, [&] { return ready_ > i; });
      taker_waiting_ = false;
    }
    taken_ = i + 1;
    Prepared p = std::move(prepared_[i]);
    const bool wake = preparer_waiting_ && ready_ - taken_ <= kAhead / 2;
    lock.unlock();
    if (wake) cv_.notify_all();
    return p;
  }

  // A push the writer has stored: freed on the preparing thread (a prepared push holds JSON
  // trees of many small allocations), not on the writer, which every store operation waits for.
  void GiveBack(Prepared p) {
    std::lock_guard<std::mutex> lock(mu_);
    spent_.push_back(std::move(p));
    if (preparer_waiting_ && spent_.size() >= kAhead / 8) cv_.notify_all();
  }

 private:
  void Run() {
    std::vector<Prepared> spent;
    for (size_t i = 0; i < requests_.size(); ++i) {
      spent.clear();  // outside the lock
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (i >= taken_ + kAhead) {
          preparer_waiting_ = true;
          cv_.wait(lock, [&] { return stop_ || i <= taken_ + kAhead / 2; });
          preparer_waiting_ = false;
        }
        if (stop_) return;
        spent.swap(spent_);
      }
      Prepared p = store_.StorePreparePush(caller_, requests_[i]);
      bool wake = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        prepared_[i] = std::move(p);
        ready_ = i + 1;
        wake = taker_waiting_;
      }
      if (wake) cv_.notify_all();
    }
    // Every push prepared: free what the writer gives back until it has taken them all.
    for (;;) {
      spent.clear();
      std::unique_lock<std::mutex> lock(mu_);
      preparer_waiting_ = true;
      cv_.wait(lock, [&] { return stop_ || spent_.size() >= kAhead / 8; });
      preparer_waiting_ = false;
      if (stop_) return;
      spent.swap(spent_);
    }
  }

  StoreContext& store_;
  const Caller& caller_;
  const std::vector<PushRequest>& requests_;  // not changed while the thread runs
  std::vector<Prepared> prepared_;            // slot i: guarded by mu_ until taken
  std::vector<Prepared> spent_;               // guarded by mu_: given back, to free
  std::mutex mu_;
  std::condition_variable cv_;
  size_t ready_ = 0;  // guarded by mu_: pushes 0..ready_-1 are prepared
  size_t taken_ = 0;  // guarded by mu_: pushes 0..taken_-1 were taken
  bool taker_waiting_ = false;     // guarded by mu_
  bool preparer_waiting_ = false;  // guarded by mu_
  bool stop_ = false;              // guarded by mu_
  std::thread thread_;
};

// A conflict while storing record i: the whole export is refused, naming the record.
Status ConflictAt(size_t i, const PushRequest& req) {
  const std::string where = "/records/" + std::to_string(i);
  return Status(ErrorCode::kConflict,
                "record " + std::to_string(i) + " of the export (source.record_id " +
                    req.record.source.record_id + ", version " +
                    std::to_string(req.record.source.version) +
                    ") was already stored with other content; nothing from this export was "
                    "stored. Export the change as a new version",
                {{where, "already stored with other content under the same source.record_id "
                         "and source.version"}});
}

Status RunIngest(StoreContext& store, const Caller& caller, ParsedIngest& in,
                 IngestOutcome& out) {
  const int64_t now = store.StoreNowMs();
  out.format = in.format;
  out.adapter = in.adapter;
  out.warnings = in.warnings;
  const auto registry = store.StoreRegistry();
  out.recipients = in.recipients;
  if (out.recipients.empty() && registry) out.recipients = DefaultRecipients(*registry, caller);
  if (out.recipients.empty()) {
    return Status::Invalid("no recipients: name them, or register other agencies in the area",
                           {{"recipients", "no agency of the caller's area can receive records"}});
  }
  if (Status s = CheckRecipients(registry.get(), out.recipients); !s.ok()) return s;

  // Each record as the push that stores it. The records are moved in and stay with the
  // job's ParsedIngest, freed when the job is (after its answer), not one by one while the
  // transaction is open. A job run again (writer.h) finds them there already.
  std::vector<PushRequest>& requests = in.requests;
  if (!in.records_moved) {
    requests.resize(in.records.size());
    for (size_t i = 0; i < in.records.size(); ++i) {
      requests[i].record = std::move(in.records[i]);
      requests[i].purpose = in.purpose;
    }
    in.records.clear();
    in.records_moved = true;
  }
  for (PushRequest& r : requests) r.recipients = out.recipients;
  out.record_ids.reserve(requests.size());
  auto stored = [&](size_t i, Status s, const PushOutcome& pushed) {
    if (!s.ok()) return s.code() == ErrorCode::kConflict ? ConflictAt(i, requests[i]) : s;
    out.record_ids.push_back(pushed.record_id);
    (pushed.created ? out.created : out.replayed) += 1;
    return Status::Ok();
  };
  PushPipeline pipeline(store, caller, requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    auto prepared = pipeline.Take(i);
    PushOutcome pushed;
    Status s = stored(i, store.StorePush(caller, requests[i], pushed, prepared.get()), pushed);
    if (!s.ok()) return s;
    pipeline.GiveBack(std::move(prepared));
  }

  AuditEntry e;
  e.at_ms = now;
  e.actor = caller.agency;
  e.action = "ingest_accepted";
  e.purpose = in.purpose;
  e.detail = {{"format", in.format},
              {"adapter", in.adapter},
              {"records", static_cast<int64_t>(out.record_ids.size())},
              {"created", out.created},
              {"replayed", out.replayed},
              {"warnings", static_cast<int64_t>(out.warnings.size())},
              {"recipients", out.recipients}};
  return store.StoreAppend(e);
}

}  // namespace

std::vector<std::string> DefaultRecipients(const config::Registry& registry, const Caller& caller) {
  std::vector<std::string> out;
  for (const config::Agency& a : registry.agencies) {
    if (a.area != caller.area || a.id == caller.agency || !MayPush(a.role)) continue;
    out.push_back(a.id);
  }
  return out;
}

TypedJob<IngestOutcome> PrepareIngest(StoreContext& store, const Caller& caller,
                                      const IngestRequest& request) {
  TypedJob<IngestOutcome> job;
  job.on_refused = [&store, caller, format = request.format,
                    purpose = request.purpose](const Status& refusal) {
    AuditEntry e = IngestRejection(caller, format, purpose, refusal, store.StoreNowMs());
    return store.StoreAppend(e);
  };
  auto refuse = [&job](Status s) {
    job.run = [s = std::move(s)](IngestOutcome&) { return s; };
    return std::move(job);
  };

  // What can be refused without reading the export is refused first.
  if (!MayPush(caller.role)) {
    return refuse(Status::Forbidden("agencies of role " +
                                    std::string(config::RoleName(caller.role)) +
                                    " may not ingest records"));
  }
  const adapters::Adapter* adapter = adapters::FindAdapter(request.format);
  if (adapter == nullptr) {
    std::string names;
    for (const adapters::Adapter* a : adapters::AllAdapters()) {
      names += names.empty() ? "" : ", ";
      names += a->Name();
    }
    return refuse(Status::NotFound("there is no ingest format of that name; formats: " + names));
  }
  if (!IsPurpose(request.purpose)) {
    return refuse(Status::Invalid("purpose must be a purpose slug",
                                  {{"purpose", "must be 1-64 of a-z, 0-9, '_' and '-'"}}));
  }
  adapters::IngestContext context;
  context.agency = caller.agency;
  context.area = caller.area.empty() ? store.StoreConfig().area : caller.area;
  auto parsed = adapter->Parse(request.content, context);
  if (!parsed.ok()) return refuse(parsed.status());

  auto in = std::make_shared<ParsedIngest>();
  in->format = request.format;
  in->adapter = std::string(adapter->Name());
  in->purpose = request.purpose;
  in->recipients = request.recipients;
  in->records = std::move(parsed->records);
  in->warnings = std::move(parsed->warnings);
  job.run = [&store, caller, in](IngestOutcome& out) { return RunIngest(store, caller, *in, out); };
  return job;
}

}  // namespace core
}  // namespace safegate
