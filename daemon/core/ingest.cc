// Ingest: a native export parsed by its adapter, then every record stored in one job exactly
// as a push stores it. docs/ingest.md describes the behaviour.
#include "daemon/core/ingest.h"

#include <memory>
#include <set>
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

  out.record_ids.reserve(in.records.size());
  for (size_t i = 0; i < in.records.size(); ++i) {
    PushRequest req;
    req.record = std::move(in.records[i]);
    req.purpose = in.purpose;
    req.recipients = out.recipients;
    PushOutcome pushed;
    Status s = store.StorePush(caller, req, pushed);
    if (!s.ok()) {
      if (s.code() != ErrorCode::kConflict) return s;
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
    out.record_ids.push_back(pushed.record_id);
    (pushed.created ? out.created : out.replayed) += 1;
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
