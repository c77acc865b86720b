// OutboxSender: delivers the transfer outbox (docs/transfers.md, "Delivery") to the peer
// gateways, on a thread of its own.
//
// Each round it asks the Gateway for the first unsent message of every peer whose next
// attempt is due (Gateway::TakeOutbox), POSTs each one's sealed bytes to the peer's
// /v1/peer/messages over mutual TLS (PeerClient), and tells the Gateway how it ended
// (Gateway::SettleOutbox):
//   2xx                       delivered: removed from the outbox; that peer's next message
//                             goes at once (one peer's messages strictly in order);
//   4xx (but 408 and 429)     refused: kept, marked failed, audited; never retried;
//   anything else             retried after an exponential backoff with jitter:
//                             a uniformly random delay in [d/2, d], d = base * 2^attempts,
//                             at most max_backoff.
// Between rounds it sleeps until the earliest next attempt, a Wake() (the Gateway calls it
// after a commit that queued a message), or the idle poll, whichever comes first.
//
// Ownership: the Gateway, the Clock and the EventLog are not owned and must outlive the
// sender; Stop() (or the destructor) joins the thread and must run before the Gateway is
// shut down. Thread-safety: Wake() and Stop() may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "config/config.h"
#include "daemon/core/clock.h"
#include "daemon/core/gateway.h"
#include "daemon/server/event_log.h"
#include "daemon/server/peer_client.h"

namespace safegate::server {

class Metrics;

struct OutboxSenderOptions {
  Gateway* gateway = nullptr;
  const Clock* clock = nullptr;
  const EventLog* log = nullptr;
  Metrics* metrics = nullptr;  // optional: attempts counted by peer and result
  // The registry in force (peers' endpoints and certificate fingerprints), read per attempt
  // so that a reload (SIGHUP) applies to the next one.
  std::function<std::shared_ptr<const config::Registry>()> registry;
  config::Config::Tls tls;  // this gateway's certificate, key and CA
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds base_backoff{1000};  // config [transfers] retry_initial
  std::chrono::milliseconds max_backoff{5 * 60 * 1000};  // retry_max
  std::chrono::milliseconds idle_poll{30'000};
};

class OutboxSender {
 public:
  // Errors: kInvalidInput when the TLS files cannot be loaded (PeerClient::Create).
  static Result<std::unique_ptr<OutboxSender>> Start(OutboxSenderOptions options);
  ~OutboxSender();
  OutboxSender(const OutboxSender&) = delete;
  OutboxSender& operator=(const OutboxSender&) = delete;

  void Wake();
  // Finishes the attempt in progress (bounded by request_timeout), then joins. Idempotent.
  void Stop();

  // The backoff before attempt `attempts + 1`, drawn with `rng` (exposed for tests).
  static std::chrono::milliseconds Backoff(int attempts, std::chrono::milliseconds base,
                                           std::chrono::milliseconds max, std::mt19937_64& rng);

 private:
  OutboxSender(OutboxSenderOptions options, std::unique_ptr<PeerClient> client);
  void Loop();
  // One round; returns true when a message was delivered (so the next may go at once) and
  // sets `next_due_ms` to the earliest later attempt.
  bool Round(std::optional<int64_t>& next_due_ms);
  // One attempt, settled with the store. Returns when the message is due again after a
  // failed attempt (0 when delivered or refused).
  int64_t SendOne(const OutboxItem& item, bool& delivered);

  OutboxSenderOptions options_;
  std::unique_ptr<PeerClient> client_;
  std::mt19937_64 rng_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace safegate::server
