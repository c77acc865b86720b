// StoreContext: what the store's extensions (ingest, subject linking, the flags view) may use
// of the store while one of their jobs runs on the writer thread.
//
// The SQLite gateway implements it; the extensions live in their own files (ingest.cc,
// subjects.cc, flags.cc) and see the store only through this interface, so they run inside
// the same transaction, savepoint and audit chain as every other operation.
//
// Thread-safety: StoreConfig and StoreRegistry may be called from any thread; every other
// method is for the writer thread only, inside a running job (REQUIRES: a transaction is
// open). Nothing returned may be kept past the job.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "daemon/core/gateway.h"
#include "daemon/core/sqlite.h"
#include "record/status.h"

namespace safegate::core {

class AtRestKey;
class SubjectIndex;

// A job for the store's writer, typed by what it answers: `run` fills a T that the caller's
// callback receives after COMMIT; `on_refused` writes the request_rejected entry of a refusal.
template <typename T>
struct TypedJob {
  std::function<Status(T&)> run;
  std::function<Status(const Status& refusal)> on_refused;
};

class StoreContext {
 public:
  virtual ~StoreContext() = default;

  // The write connection.
  virtual Db& StoreDb() = 0;
  virtual const AtRestKey& StoreKey() = 0;
  virtual int64_t StoreNowMs() = 0;
  virtual const config::Config& StoreConfig() = 0;
  virtual std::shared_ptr<const config::Registry> StoreRegistry() = 0;
  // Appends to the audit chain (fills seq and hash). A failure must fail the job.
  virtual Status StoreAppend(AuditEntry& entry) = 0;
  // Exactly what POST /v1/records does for one record (idempotency, decisions, deliveries,
  // audit entries, subject linking), without its own job: the caller's job holds the
  // transaction.
  virtual Status StorePush(const Caller& caller, const PushRequest& request,
                           PushOutcome& out) = 0;
  // What StorePush works out without the database (the push's content hash, its record id,
  // the sealed record, the policy's decisions as if the subject had no consent statement),
  // as Push does on the network thread. Any thread; the result is for one StorePush of the
  // same caller and request, which checks that the decisions still hold.
  class PreparedPush {
   public:
    virtual ~PreparedPush() = default;
  };
  virtual std::unique_ptr<PreparedPush> StorePreparePush(const Caller& caller,
                                                         const PushRequest& request) = 0;
  // StorePush with what StorePreparePush made for this caller and request.
  virtual Status StorePush(const Caller& caller, const PushRequest& request, PushOutcome& out,
                           const PreparedPush* prepared) = 0;
  // Puts a notice from the gateway into `recipient`'s mailbox; returns its message id.
  // `record_id` must name a stored record.
  virtual Result<std::string> StoreNotice(const std::string& recipient,
                                          const std::string& record_id,
                                          const std::string& purpose,
                                          const nlohmann::json& notice, int64_t now) = 0;
  // Opens a sealed canonical JSON body bound to `ad` (a record id or a message id).
  virtual Result<nlohmann::json> StoreUnseal(const std::string& nonce,
                                             const std::string& ciphertext,
                                             std::string_view ad) = 0;
  virtual SubjectIndex& Subjects() = 0;
};

}  // namespace safegate::core
