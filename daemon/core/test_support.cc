#include "daemon/core/test_support.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>

namespace safegate::testing {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "safegate-core-XXXXXX").string();
  char* made = ::mkdtemp(tmpl.data());
  if (made == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::shared_ptr<const config::Registry> TestRegistry() {
  auto r = std::make_shared<config::Registry>();
  using config::Role;
  auto add = [&](std::string id, Role role, std::string area) {
    config::Agency a;
    a.id = std::move(id);
    a.name = "Agency " + a.id;
    a.role = role;
    a.area = std::move(area);
    r->agencies.push_back(std::move(a));
  };
  add("wyp", Role::kPolice, "bradford");
  add("bradford-csc", Role::kCsc, "bradford");
  add("bthft", Role::kHealth, "bradford");
  add("bradford-audit", Role::kAudit, "bradford");
  add("bradford-scrutiny", Role::kCommittee, "bradford");
  add("cambs-csc", Role::kCsc, "cambridgeshire");
  add("cambs-police", Role::kPolice, "cambridgeshire");
  add("cuh", Role::kHealth, "cambridgeshire");
  add("cambs-audit", Role::kAudit, "cambridgeshire");
  add("safegate-cambs", Role::kGateway, "cambridgeshire");
  return r;
}

std::shared_ptr<config::Config> TestConfig(const std::string& data_dir) {
  auto c = std::make_shared<config::Config>();
  c->area = "bradford";
  c->data_dir = data_dir;
  return c;
}

Caller CallerFor(const std::string& agency) {
  static const auto registry = TestRegistry();
  const config::Agency* a = registry->Find(agency);
  if (a == nullptr) throw std::runtime_error("no test agency " + agency);
  return Caller{a->id, a->role, a->area};
}

record::Record MakeRecord(const std::string& agency, const std::string& record_id, int64_t version,
                          const std::string& nhs) {
  record::Record r;
  r.kind = record::Kind::kFlag;
  r.subject.nhs_number = nhs;
  r.subject.local_ids = {{"csc:bradford", "BRA-000123"}};
  r.subject.given_name = "Alex";
  r.subject.family_name = "Example";
  r.subject.birth_date = "2012-03-01";
  r.subject.postcode = "BD3 9AB";
  r.source = {agency, "niche", record_id, version, "2026-11-20T09:12:00Z"};
  r.classification.criminal_offence = true;
  r.classification.schedule12a = {1, 2, 7};
  r.body = {{"type", "cse_risk"},
            {"level", "high"},
            {"status", "active"},
            {"start", "2026-11-20"},
            {"end", nullptr},
            {"review_by", "2027-02-20"},
            {"owner_agency", agency},
            {"contact", {{"office_hours", "01274 000000"}, {"out_of_hours", "101"}}}};
  return r;
}

PushRequest MakePush(const std::string& agency, const std::string& record_id,
                     std::vector<std::string> recipients, const std::string& purpose,
                     int64_t version) {
  PushRequest p;
  p.record = MakeRecord(agency, record_id, version);
  p.purpose = purpose;
  p.recipients = std::move(recipients);
  return p;
}

GatewayHarness::GatewayHarness(std::shared_ptr<const DeliveryPolicy> policy)
    : config_(TestConfig(dir_.path())), policy_(std::move(policy)) {}

GatewayHarness::~GatewayHarness() { Close(); }

Status GatewayHarness::Open() {
  Close();
  GatewayOptions o;
  o.config = config_;
  o.registry = TestRegistry();
  o.clock = &clock_;
  o.policy = policy_;
  auto gw = Gateway::Open(std::move(o));
  if (!gw.ok()) return gw.status();
  gw_ = std::move(*gw);
  return Status::Ok();
}

void GatewayHarness::Close() {
  if (gw_) gw_->Shutdown();
  gw_.reset();
}

Result<PushOutcome> GatewayHarness::Push(const std::string& agency, PushRequest req) {
  return Await<PushOutcome>([&](Callback<PushOutcome> cb) {
    gw_->Push(CallerFor(agency), std::move(req), std::move(cb));
  });
}
Result<MailboxPage> GatewayHarness::Mailbox(const std::string& agency, int limit,
                                            std::string after) {
  return Await<MailboxPage>([&](Callback<MailboxPage> cb) {
    gw_->ReadMailbox(CallerFor(agency), limit, std::move(after), std::move(cb));
  });
}
Status GatewayHarness::Ack(const std::string& agency, const std::string& message_id) {
  auto r = Await<Empty>(
      [&](Callback<Empty> cb) { gw_->Ack(CallerFor(agency), message_id, std::move(cb)); });
  return r.status();
}
Result<nlohmann::json> GatewayHarness::Get(const std::string& agency,
                                           const std::string& record_id) {
  return Await<nlohmann::json>([&](Callback<nlohmann::json> cb) {
    gw_->GetRecord(CallerFor(agency), record_id, std::move(cb));
  });
}
Result<AuditPage> GatewayHarness::Query(const std::string& agency, AuditFilter filter) {
  return Await<AuditPage>([&](Callback<AuditPage> cb) {
    gw_->QueryAudit(CallerFor(agency), std::move(filter), std::move(cb));
  });
}
Result<VerifyReport> GatewayHarness::Verify(const std::string& agency) {
  return Await<VerifyReport>(
      [&](Callback<VerifyReport> cb) { gw_->VerifyAudit(CallerFor(agency), std::move(cb)); });
}
Status GatewayHarness::Reject(Rejection r) {
  return Await<Empty>([&](Callback<Empty> cb) { gw_->Reject(std::move(r), std::move(cb)); })
      .status();
}
Result<SweepReport> GatewayHarness::Sweep(int64_t now_ms) {
  return Await<SweepReport>(
      [&](Callback<SweepReport> cb) { gw_->SweepDeadlines(now_ms, std::move(cb)); });
}

Result<nlohmann::json> GatewayHarness::TreeHead(const std::string& agency) {
  return Await<nlohmann::json>(
      [&](Callback<nlohmann::json> cb) { gw_->GetTreeHead(CallerFor(agency), std::move(cb)); });
}
Result<nlohmann::json> GatewayHarness::Inclusion(int64_t seq, int64_t tree_size,
                                                 const std::string& agency) {
  return Await<nlohmann::json>([&](Callback<nlohmann::json> cb) {
    gw_->GetInclusionProof(CallerFor(agency), seq, tree_size, std::move(cb));
  });
}
Result<nlohmann::json> GatewayHarness::Consistency(int64_t first, int64_t second,
                                                   const std::string& agency) {
  return Await<nlohmann::json>([&](Callback<nlohmann::json> cb) {
    gw_->GetConsistencyProof(CallerFor(agency), first, second, std::move(cb));
  });
}
Result<ErasureReport> GatewayHarness::Erase(const std::string& subject, const std::string& reason,
                                            const std::string& agency) {
  return Await<ErasureReport>([&](Callback<ErasureReport> cb) {
    gw_->EraseSubject(CallerFor(agency), subject, reason, std::move(cb));
  });
}

int64_t CountRows(const std::string& db_path, const std::string& table,
                  const std::string& where) {
  sqlite3* db = nullptr;
  int64_t n = -1;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 5000);
    const std::string sql =
        "SELECT count(*) FROM " + table + (where.empty() ? "" : " WHERE " + where);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

int64_t GatewayHarness::Count(const std::string& table, const std::string& where) {
  return CountRows(db_path(), table, where);
}

AuditFilter Filter(std::initializer_list<std::pair<std::string, std::string>> fields) {
  AuditFilter f;
  for (const auto& [name, value] : fields) {
    if (name == "purpose")
      f.purpose = value;
    else if (name == "subject")
      f.subject = value;
    else if (name == "agency")
      f.agency = value;
    else if (name == "action")
      f.action = value;
    else if (name == "limit")
      f.limit = std::stoi(value);
    else if (name == "after")
      f.after = value;
    else
      throw std::invalid_argument("no audit filter field " + name);
  }
  return f;
}

std::vector<AuditEntry> AllEntries(GatewayHarness& h, AuditFilter filter) {
  std::vector<AuditEntry> out;
  filter.limit = 1000;
  for (;;) {
    auto page = h.Query("bradford-audit", filter);
    if (!page.ok()) {
      ADD_FAILURE() << page.status().ToString();
      return out;
    }
    for (auto& e : page->entries) out.push_back(e);
    if (page->next.empty()) return out;
    filter.after = page->next;
  }
}

}  // namespace safegate::testing
