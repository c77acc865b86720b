// store_bench: what the verifiable audit log costs inside the real store (daemon/core), as
// docs/audit-merkle.md ("Performance") reports it. Not run by CTest.
//
//   BM_GatewayAppend/<op>        durable appends through Gateway::Open's store: many
//                                requests in flight, group commit, signed tree heads every
//                                100 ms (the defaults). op 0: refusals (one entry each, no
//                                subject); op 1: pushes to one recipient (two entries, each
//                                with sealed subject details). Reports audit entries/s.
//   BM_*10M                      a data directory of 10 million audit entries (real entry
//                                bytes, sealed details of 120,000 subjects, Merkle nodes,
//                                a signed head every 1,000 entries) generated once by the
//                                store's own AuditLog in large transactions, then:
//     BM_InclusionProofTable10M      an inclusion proof read from merkle_nodes (read-only
//                                    connection, random leaf, latest signed size)
//     BM_GatewayInclusionProof10M    the same through Gateway::GetInclusionProof: includes
//                                    its audit_queried entry and that commit's fsync
//     BM_SubjectQueryIndex10M        a subject's entries through the blind index: keyed hash,
//                                    key lookup, the (key_id, seq) index, every entry parsed
//                                    and its details opened (read-only connection)
//     BM_GatewaySubjectQuery10M      the same through Gateway::QueryAudit (limit 1000):
//                                    includes its audit_queried entry and fsync
//
// Environment: SAFEGATE_STORE_BENCH_ENTRIES (default 10,000,000), SAFEGATE_STORE_BENCH_DIR
// (keep the generated data directory there and reuse it on the next run; default: a
// temporary directory removed at exit), SAFEGATE_STORE_BENCH_APPENDS (requests per
// BM_GatewayAppend run, default 40,000).
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/audit/merkle.h"
#include "daemon/audit/tree_head.h"
#include "daemon/core/audit_log.h"
#include "daemon/core/crypto.h"
#include "daemon/core/gateway.h"
#include "daemon/core/merkle_store.h"
#include "daemon/core/schema.h"
#include "daemon/core/sqlite.h"
#include "daemon/core/subject_keys.h"
#include "record/record.h"

namespace safegate::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kT0 = 1'795'282'440'000;  // 2026-11-21T17:34:00Z
constexpr uint64_t kSubjects = 120'000;     // children known to one area's CSC

// CPU seconds this process has used (all threads, user + system).
double ProcessCpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 10);
}

struct XorShift {
  uint64_t s = 0x9e3779b97f4a7c15ULL;
  uint64_t Next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

// A valid synthetic NHS number (999 test range, modulus-11 check digit) for subject i.
std::string SubjectRef(uint64_t i) {
  for (uint64_t k = i * 10;; ++k) {
    std::string digits = "999" + std::to_string(1'000'000 + k % 1'000'000).substr(1);
    int sum = 0;
    for (int d = 0; d < 9; ++d) sum += (digits[static_cast<size_t>(d)] - '0') * (10 - d);
    const int check = 11 - sum % 11;
    if (check == 10) continue;
    return "nhs:" + digits + std::to_string(check == 11 ? 0 : check);
  }
}

class ScratchDir {
 public:
  ScratchDir() {
    if (const char* keep = std::getenv("SAFEGATE_STORE_BENCH_DIR"); keep && *keep) {
      path_ = keep;
      keep_ = true;
      fs::create_directories(path_);
      return;
    }
    std::string tmpl = (fs::temp_directory_path() / "safegate-store-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!keep_ && !path_.empty()) fs::remove_all(path_, ec);
  }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
  bool keep_ = false;
};

ScratchDir& Scratch() {
  static ScratchDir dir;
  return dir;
}

std::shared_ptr<const config::Registry> Registry() {
  auto r = std::make_shared<config::Registry>();
  auto add = [&](const char* id, config::Role role) {
    config::Agency a;
    a.id = id;
    a.name = id;
    a.role = role;
    a.area = "bradford";
    r->agencies.push_back(a);
  };
  add("wyp", config::Role::kPolice);
  add("bradford-csc", config::Role::kCsc);
  add("bthft", config::Role::kHealth);
  add("bradford-audit", config::Role::kAudit);
  return r;
}

Caller CallerOf(const char* agency, config::Role role) { return Caller{agency, role, "bradford"}; }

std::unique_ptr<Gateway> OpenGateway(const std::string& data_dir) {
  auto cfg = std::make_shared<config::Config>();
  cfg->area = "bradford";
  cfg->data_dir = data_dir;  // [audit] defaults: a head every 100 ms or 1000 entries
  GatewayOptions o;
  o.config = cfg;
  o.registry = Registry();
  auto gw = Gateway::Open(std::move(o));
  if (!gw.ok()) {
    std::cerr << "store_bench: " << gw.status().ToString() << "\n";
    std::abort();
  }
  return std::move(*gw);
}

template <typename T, typename Start>
Result<T> Await(Start&& start) {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  start([promise](Result<T> r) { promise->set_value(std::move(r)); });
  return future.get();
}

PushRequest MakePushRequest(uint64_t i) {
  PushRequest req;
  json rec = {{"kind", "flag"},
              {"subject", {{"nhs_number", SubjectRef(i % kSubjects).substr(4)}}},
              {"source",
               {{"agency", "wyp"},
                {"system", "niche"},
                {"record_id", "OCC-" + std::to_string(i)},
                {"version", 1},
                {"recorded_at", "2026-11-21T09:12:00Z"}}},
              {"classification",
               {{"special_category", false},
                {"criminal_offence", true},
                {"schedule12a", {1}},
                {"handling", "P"}}},
              {"body",
               {{"type", "cse_risk"},
                {"level", "high"},
                {"status", "active"},
                {"start", "2026-11-01"},
                {"end", nullptr},
                {"review_by", "2027-01-31"},
                {"owner_agency", "wyp"},
                {"contact", {{"office_hours", "01274 000000"}, {"out_of_hours", "101"}}}}}};
  auto parsed = record::ParseRecord(rec);
  if (!parsed.ok()) {
    std::cerr << "store_bench: " << parsed.status().ToString() << "\n";
    std::abort();
  }
  req.record = std::move(*parsed);
  req.purpose = "child_protection";
  req.recipients = {"bradford-csc"};
  return req;
}

// ---- durable appends through the gateway ----

void BM_GatewayAppend(benchmark::State& state) {
  const bool pushes = state.range(0) == 1;
  const uint64_t n = EnvOr("SAFEGATE_STORE_BENCH_APPENDS", 40'000);
  constexpr uint64_t kInFlight = 4096;
  for (auto _ : state) {
    state.PauseTiming();
    const std::string dir = Scratch().Sub("append-" + std::to_string(state.range(0)) + "-" +
                                          std::to_string(::getpid()));
    fs::remove_all(dir);
    std::vector<PushRequest> requests;
    if (pushes) {
      for (uint64_t i = 0; i < n; ++i) requests.push_back(MakePushRequest(i));
    }
    auto gw = OpenGateway(dir);
    std::mutex mu;
    std::condition_variable cv;
    uint64_t done = 0, failed = 0;
    const auto finish = [&](bool ok) {
      std::lock_guard<std::mutex> lock(mu);
      ++done;
      if (!ok) ++failed;
      cv.notify_all();
    };
    state.ResumeTiming();
    const auto t0 = std::chrono::steady_clock::now();
    const double cpu0 = ProcessCpuSeconds();
    for (uint64_t i = 0; i < n; ++i) {
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return i - done < kInFlight; });
      }
      if (pushes) {
        gw->Push(CallerOf("wyp", config::Role::kPolice), std::move(requests[i]),
                 [&](Result<PushOutcome> r) { finish(r.ok()); });
      } else {
        Rejection r;
        r.action = "request_rejected";
        r.actor = "wyp";
        r.reason = "bad_request";
        r.detail = {{"route", "/v1/records"}, {"status", 400}};
        gw->Reject(std::move(r), [&](Result<Empty> res) { finish(res.ok()); });
      }
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return done == n; });
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu_seconds = ProcessCpuSeconds() - cpu0;
    state.PauseTiming();
    const Gateway::Stats stats = gw->GetStats();
    gw->Shutdown();
    gw.reset();
    if (failed != 0) state.SkipWithError("some requests failed");
    // Every entry is under a signed head at shutdown, and the log verifies.
    auto report = VerifyAuditChain(dir);
    if (!report.ok() || !report->ok) state.SkipWithError("the log does not verify");
    state.counters["requests"] = static_cast<double>(n);
    state.counters["entries"] = static_cast<double>(stats.audit_entries);
    state.counters["entries_per_s"] = static_cast<double>(stats.audit_entries) / seconds;
    // What the same work costs in CPU: the rate on a machine with a core to spare for the
    // writer (the development VM is shared, so wall-clock rates understate it).
    state.counters["entries_per_cpu_s"] =
        static_cast<double>(stats.audit_entries) / std::max(cpu_seconds, 1e-9);
    state.counters["commits"] = static_cast<double>(stats.commits);
    state.counters["heads"] = static_cast<double>(report.ok() ? report->heads_checked : 0);
    fs::remove_all(dir);
    state.ResumeTiming();
  }
}
BENCHMARK(BM_GatewayAppend)->Arg(0)->Arg(1)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---- 10 million entries ----

struct BigLog {
  std::string data_dir;
  uint64_t entries = 0;
  uint64_t head_size = 0;
  std::unique_ptr<core::Db> reader;
  std::unique_ptr<core::AtRestKey> key;
  std::unique_ptr<Gateway> gateway;  // opened after generation
};

// Generates the data directory with the store's own code: the entries, their sealed details,
// keys and Merkle nodes are exactly what the running gateway writes. Large transactions and
// no journal keep the set-up to minutes; the gateway later opens it as its own.
void Generate(const std::string& data_dir, uint64_t n) {
  fs::create_directories(data_dir);
  fs::permissions(data_dir, fs::perms::owner_all, fs::perm_options::replace);
  auto db = core::Db::Open(data_dir + "/safegate.db", core::Db::Mode::kReadWriteCreate);
  auto key = core::AtRestKey::LoadOrCreate(data_dir + "/store.key");
  auto signing = audit::SigningKey::LoadOrCreate(data_dir + "/signing.key");
  if (!db.ok() || !key.ok() || !signing.ok()) std::abort();
  core::Db& d = **db;
  if (!core::Migrate(d).ok()) std::abort();
  (void)d.Exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-524288;");
  core::SubjectKeys keys(&d, key->get());
  core::AuditLogOptions options;
  options.subject_keys = &keys;
  options.signing_key = signing->get();
  options.head_policy = audit::TreeHeadPolicy{1000, 1'000'000'000};
  core::AuditLog log(&d, options);
  if (!log.Load().ok()) std::abort();

  const char* agencies[] = {"wyp", "bradford-csc", "bthft"};
  const char* actions[] = {"record_accepted", "delivery_permitted", "mailbox_read", "record_read",
                           "message_acked", "flags_queried"};
  XorShift rng;
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    if (i % 200'000 == 0) {
      if (i != 0 && !d.Exec("COMMIT").ok()) std::abort();
      if (!d.Exec("BEGIN").ok()) std::abort();
      if (i % 1'000'000 == 0 && i != 0) {
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::cerr << "store_bench: generated " << i << " entries in " << s << " s\n";
      }
    }
    AuditEntry e;
    e.at_ms = kT0 + static_cast<int64_t>(i) * 50;
    e.actor = agencies[i % 3];
    e.action = actions[i % 6];
    e.subject = SubjectRef(rng.Next() % kSubjects);
    e.record_id = "rec_" + core::Hex(core::Sha256(std::to_string(i / 4)).substr(0, 16));
    if (i % 6 != 0) e.message_id = "msg_" + core::Hex(core::Sha256("m" + std::to_string(i)).substr(0, 16));
    e.purpose = "child_protection";
    if (i % 6 == 1) {
      e.decision = "permit";
      e.reasons = {"rule police-to-csc-safeguarding", "basis art6-1e"};
    }
    e.detail = {{"recipient", agencies[(i + 1) % 3]}};
    if (!log.Append(e).ok()) std::abort();
    if (!log.SignHeadIfDue(false).ok()) std::abort();
  }
  if (!log.SignHeadIfDue(true).ok()) std::abort();
  if (!d.Exec("COMMIT").ok()) std::abort();
  (void)d.Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cerr << "store_bench: generated " << n << " entries in " << s << " s\n";
}

BigLog& Big() {
  static BigLog* big = [] {
    auto* b = new BigLog;
    b->data_dir = Scratch().Sub("big");
    const uint64_t n = EnvOr("SAFEGATE_STORE_BENCH_ENTRIES", 10'000'000);
    if (!fs::exists(b->data_dir + "/safegate.db")) Generate(b->data_dir, n);
    b->gateway = OpenGateway(b->data_dir);
    auto reader = core::Db::Open(b->data_dir + "/safegate.db", core::Db::Mode::kReadOnly);
    auto key = core::AtRestKey::LoadOrCreate(b->data_dir + "/store.key");
    if (!reader.ok() || !key.ok()) std::abort();
    b->reader = std::move(*reader);
    b->key = std::move(*key);
    (void)b->reader->Exec("PRAGMA cache_size=-262144");
    auto latest = core::ReadLatestTreeHead(*b->reader);
    if (!latest.ok() || !*latest) std::abort();
    b->head_size = (*latest)->head.tree_size;
    b->entries = static_cast<uint64_t>(b->reader->QueryInt("SELECT max(seq) FROM audit").value());
    return b;
  }();
  return *big;
}

void BM_InclusionProofTable10M(benchmark::State& state) {
  BigLog& big = Big();
  core::SqliteNodeStore nodes(big.reader.get());
  XorShift rng;
  for (auto _ : state) {
    auto path = audit::InclusionProof(nodes, rng.Next() % big.head_size, big.head_size);
    if (!path.ok()) state.SkipWithError(path.status().ToString().c_str());
    benchmark::DoNotOptimize(path);
  }
  state.counters["tree_size"] = static_cast<double>(big.head_size);
}
BENCHMARK(BM_InclusionProofTable10M)->Unit(benchmark::kMicrosecond);

void BM_GatewayInclusionProof10M(benchmark::State& state) {
  BigLog& big = Big();
  const Caller auditor = CallerOf("bradford-audit", config::Role::kAudit);
  XorShift rng;
  for (auto _ : state) {
    const auto seq = static_cast<int64_t>(1 + rng.Next() % big.head_size);
    auto proof = Await<json>([&](Callback<json> cb) {
      big.gateway->GetInclusionProof(auditor, seq, static_cast<int64_t>(big.head_size),
                                     std::move(cb));
    });
    if (!proof.ok()) state.SkipWithError(proof.status().ToString().c_str());
  }
  state.counters["tree_size"] = static_cast<double>(big.head_size);
}
BENCHMARK(BM_GatewayInclusionProof10M)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SubjectQueryIndex10M(benchmark::State& state) {
  BigLog& big = Big();
  core::Db& db = *big.reader;
  core::SubjectKeys keys(&db, big.key.get());
  XorShift rng;
  int64_t found = 0;
  for (auto _ : state) {
    const std::string subject = SubjectRef(rng.Next() % kSubjects);
    auto key_id = keys.Find(subject);
    if (!key_id.ok() || !*key_id) {
      state.SkipWithError("subject not found");
      break;
    }
    auto q = db.Prepare(
        "SELECT seq, entry, details FROM audit WHERE key_id = ?1 ORDER BY seq LIMIT 1000");
    (*q)->Bind(1, **key_id);
    core::SubjectKeys::Cache cache;
    for (;;) {
      auto row = (*q)->Step();
      if (!row.ok() || !*row) break;
      auto entry = core::ParseAuditEntry((*q)->Blob(1));
      auto details = keys.Open(**key_id, (*q)->Int(0), (*q)->Blob(2),
                               entry.ok() ? entry->details_hash : "", cache);
      if (!entry.ok() || !details.ok() || !*details || (*details)->subject != subject) {
        state.SkipWithError("an entry's details do not open");
        break;
      }
      ++found;
    }
    (*q)->Reset();
  }
  state.counters["entries_per_query"] =
      static_cast<double>(found) / static_cast<double>(std::max<int64_t>(1, state.iterations()));
  state.counters["log_entries"] = static_cast<double>(big.entries);
}
BENCHMARK(BM_SubjectQueryIndex10M)->Unit(benchmark::kMillisecond);

void BM_GatewaySubjectQuery10M(benchmark::State& state) {
  BigLog& big = Big();
  const Caller auditor = CallerOf("bradford-audit", config::Role::kAudit);
  XorShift rng;
  int64_t found = 0;
  for (auto _ : state) {
    AuditFilter filter;
    filter.purpose = "dpo_review";
    filter.subject = SubjectRef(rng.Next() % kSubjects);
    filter.limit = 1000;
    auto page = Await<AuditPage>(
        [&](Callback<AuditPage> cb) { big.gateway->QueryAudit(auditor, filter, std::move(cb)); });
    if (!page.ok()) {
      state.SkipWithError(page.status().ToString().c_str());
      break;
    }
    found += static_cast<int64_t>(page->entries.size());
  }
  state.counters["entries_per_query"] =
      static_cast<double>(found) / static_cast<double>(std::max<int64_t>(1, state.iterations()));
}
BENCHMARK(BM_GatewaySubjectQuery10M)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace safegate::bench

BENCHMARK_MAIN();
