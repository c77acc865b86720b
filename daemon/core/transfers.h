// Out-of-area transfers in the store: the Gateway's transfer operations written against
// StoreContext (like consents.cc and ingest.cc), applying the state machine of
// daemon/transfer/workflow.h. docs/transfers.md describes the behaviour; the tables
// (transfers, transfer_outbox, transfer_received) are schema version 5 (schema.cc).
//
// Every workflow Transition is applied in ONE writer transaction (ApplyTransition): the
// transfer copy (TransferToStoredJson, sealed at rest), the notices into this area's
// mailboxes (sealed at rest too: they carry records), the audit entries, and each outbound
// message sealed to the peer (SealBundle) into the outbox. A failed transition applies
// nothing.
//
// Ownership: a TransferStore belongs to the store (SqliteGateway) and keeps references to its
// StoreContext and DeliveryPolicy, which must outlive it. It owns the gateway's transfer keys.
// Thread-safety: the Prepare functions may be called from any thread; the jobs they return,
// SweepEscalations and the peer directory run on the store's writer thread only.
// ReadOutboxStats uses only the connection it is given. SetListener/NotifyOutbox are
// thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/core/gateway.h"
#include "daemon/core/sqlite.h"
#include "daemon/core/store_context.h"
#include "daemon/transfer/gateway_keys.h"
#include "daemon/transfer/working_days.h"
#include "daemon/transfer/workflow.h"
#include "record/status.h"

namespace safegate::core {

class TransferStore {
 public:
  // Loads the gateway's transfer keys from the store's data_dir, making them on first start
  // (transfer::GatewayKeys::LoadOrCreate), and checks the options (a bad bank holiday is
  // kInvalidInput naming it). Runs before the writer starts.
  static Result<std::unique_ptr<TransferStore>> Open(StoreContext& store,
                                                     const DeliveryPolicy& policy,
                                                     const TransferOptions& options);

  TypedJob<nlohmann::json> PreparePropose(const Caller& caller, nlohmann::json body);
  TypedJob<nlohmann::json> PrepareGet(const Caller& caller, std::string transfer_id);
  TypedJob<nlohmann::json> PrepareAnswer(const Caller& caller, std::string transfer_id,
                                         std::string action, nlohmann::json body);
  TypedJob<PeerMessageReceipt> PrepareReceive(const Caller& peer, std::string sealed);
  TypedJob<OutboxBatch> PrepareTakeOutbox(int64_t now_ms);
  TypedJob<Empty> PrepareSettle(OutboxSettlement settlement);

  // Inside the deadline sweep's job: DueEscalations for every open transfer whose next
  // escalation is due at `now_ms`, each applied like any transition.
  Status SweepEscalations(int64_t now_ms, SweepReport& out);

  // The outbox numbers for /metrics, read with `reader` (a read-only connection).
  static Status ReadOutboxStats(Db& reader, int64_t now_ms, Gateway::Stats& stats);

  void SetListener(std::function<void()> listener);
  // Wakes the listener (after a commit that may have queued a message).
  void NotifyOutbox();

  const transfer::GatewayKeys& keys() const { return *keys_; }

 private:
  TransferStore(StoreContext& store, const DeliveryPolicy& policy,
                std::unique_ptr<transfer::GatewayKeys> keys, transfer::WorkingCalendar calendar,
                transfer::DeadlineSettings settings)
      : store_(store),
        policy_(policy),
        keys_(std::move(keys)),
        calendar_(std::move(calendar)),
        settings_(settings) {}

  // Writer thread only.
  const transfer::PeerDirectory& Peers();
  Status Apply(const transfer::Transition& tr, int64_t now_ms, bool* queued = nullptr);
  Status RunPropose(const Caller& caller, const nlohmann::json& body, nlohmann::json& out);
  Status RunAnswer(const Caller& caller, const std::string& id, const std::string& action,
                   const nlohmann::json& body, nlohmann::json& out);
  Status RunReceive(const Caller& peer, const std::string& sealed, PeerMessageReceipt& out,
                    nlohmann::json& refusal_detail);

  StoreContext& store_;
  const DeliveryPolicy& policy_;
  const std::unique_ptr<transfer::GatewayKeys> keys_;
  const transfer::WorkingCalendar calendar_;
  const transfer::DeadlineSettings settings_;

  // Writer thread only: the peer directory built from the registry in force (rebuilt when
  // the registry is replaced, as on SIGHUP).
  std::shared_ptr<const config::Registry> peers_from_;
  transfer::PeerDirectory peers_;

  std::mutex listener_mu_;
  std::function<void()> listener_;
};

}  // namespace safegate::core
