// Shared fixtures for the core tests: a temporary data directory, a registry of the example
// areas built in code, a synthetic record, and a synchronous front to the asynchronous
// Gateway (each call waits, with a bound, for its callback).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>

#include "config/config.h"
#include "daemon/core/clock.h"
#include "daemon/core/gateway.h"
#include "record/record.h"

namespace safegate::testing {

// 2026-11-21T17:34:00.000Z: a fixed start for ManualClock.
constexpr int64_t kT0 = 1795282440000;
constexpr int64_t kHour = 3600 * 1000;
constexpr int64_t kDay = 24 * kHour;

// Synthetic NHS numbers in the 999 range reserved for testing, with valid check digits.
inline constexpr const char* kNhs1 = "9990000018";
inline constexpr const char* kNhs2 = "9990000026";

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Bradford: wyp (police), bradford-csc, bthft (health), bradford-audit, bradford-scrutiny
// (committee). Cambridgeshire: cambs-csc, cambs-police, cuh (health), cambs-audit. Plus a
// gateway agency, safegate-cambs.
std::shared_ptr<const config::Registry> TestRegistry();
std::shared_ptr<config::Config> TestConfig(const std::string& data_dir);
Caller CallerFor(const std::string& agency);  // REQUIRES: agency in TestRegistry()

// A flag from `agency` about a child with NHS number `nhs`.
record::Record MakeRecord(const std::string& agency, const std::string& record_id,
                          int64_t version = 1, const std::string& nhs = kNhs1);
PushRequest MakePush(const std::string& agency, const std::string& record_id,
                     std::vector<std::string> recipients,
                     const std::string& purpose = "child_protection", int64_t version = 1);

// Runs `start(callback)` and waits for the callback, at most 60 s.
template <typename T, typename Start>
Result<T> Await(Start&& start) {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  start([promise](Result<T> r) { promise->set_value(std::move(r)); });
  if (future.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    ADD_FAILURE() << "no answer from the gateway within 60 s";
    return Status::Internal("timed out");
  }
  return future.get();
}

// A gateway on a temporary data directory with a ManualClock, and synchronous calls.
class GatewayHarness {
 public:
  explicit GatewayHarness(std::shared_ptr<const DeliveryPolicy> policy = nullptr);
  ~GatewayHarness();

  Status Open();  // (re)opens on the same data directory
  void Close();   // Shutdown and destroy
  Gateway& gw() { return *gw_; }
  ManualClock& clock() { return clock_; }
  const std::string& data_dir() const { return dir_.path(); }
  std::string db_path() const { return dir_.path() + "/safegate.db"; }
  std::string key_path() const { return dir_.path() + "/store.key"; }
  std::shared_ptr<config::Config> config() { return config_; }

  Result<PushOutcome> Push(const std::string& agency, PushRequest req);
  Result<MailboxPage> Mailbox(const std::string& agency, int limit = 100, std::string after = "");
  Status Ack(const std::string& agency, const std::string& message_id);
  Result<nlohmann::json> Get(const std::string& agency, const std::string& record_id);
  Result<AuditPage> Query(const std::string& agency, AuditFilter filter);
  Result<VerifyReport> Verify(const std::string& agency = "bradford-audit");
  Status Reject(Rejection r);
  Result<SweepReport> Sweep(int64_t now_ms);
  // The verifiable audit log, as an audit agency by default.
  Result<nlohmann::json> TreeHead(const std::string& agency = "bradford-audit");
  Result<nlohmann::json> Inclusion(int64_t seq, int64_t tree_size,
                                   const std::string& agency = "bradford-audit");
  Result<nlohmann::json> Consistency(int64_t first, int64_t second,
                                     const std::string& agency = "bradford-audit");
  Result<ErasureReport> Erase(const std::string& subject, const std::string& reason,
                              const std::string& agency = "bradford-audit");

  // Row count of a table, read through a separate connection.
  int64_t Count(const std::string& table, const std::string& where = "");

 private:
  TempDir dir_;
  ManualClock clock_{kT0};
  std::shared_ptr<config::Config> config_;
  std::shared_ptr<const DeliveryPolicy> policy_;
  std::unique_ptr<Gateway> gw_;
};

// An audit filter from (field, value) pairs, e.g. Filter({{"action", "mailbox_read"}}).
// Fields: purpose, subject, agency, action, limit, after.
AuditFilter Filter(std::initializer_list<std::pair<std::string, std::string>> fields);

// Every audit entry, oldest first (through an audit agency's queries; each page query adds
// an audit_queried entry, which later pages include).
std::vector<AuditEntry> AllEntries(GatewayHarness& h, AuditFilter filter = {});

// Row count of `table` in the SQLite file at `db_path` (optionally WHERE `where`), read through
// a separate read-only connection; -1 when it cannot be read.
int64_t CountRows(const std::string& db_path, const std::string& table,
                  const std::string& where = "");

}  // namespace safegate::testing
