#include "daemon/server/outbox_sender.h"

#include <algorithm>
#include <future>
#include <utility>

#include <nlohmann/json.hpp>

#include "daemon/server/metrics.h"

namespace safegate::server {

using nlohmann::json;

namespace {

constexpr std::string_view kPeerPath = "/v1/peer/messages";
// A Gateway call that does not answer within this is treated as failed (the store is
// shutting down or stuck); the sender tries again later.
constexpr auto kGatewayBound = std::chrono::seconds(60);

template <typename T, typename Start>
Result<T> AwaitGateway(Start&& start) {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  start([promise](Result<T> r) { promise->set_value(std::move(r)); });
  if (future.wait_for(kGatewayBound) != std::future_status::ready) {
    return Status::Unavailable("the store did not answer within 60 s");
  }
  return future.get();
}

// The error code and words of a refusal body ({"error", "detail"}), or the status alone.
std::string RefusalText(int status, const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string text = "HTTP " + std::to_string(status);
  if (j.is_object()) {
    if (auto e = j.find("error"); e != j.end() && e->is_string()) {
      text += " " + e->get<std::string>();
    }
    if (auto d = j.find("detail"); d != j.end() && d->is_string()) {
      text += ": " + d->get<std::string>();
    }
  }
  return text.substr(0, 500);
}

}  // namespace

std::chrono::milliseconds OutboxSender::Backoff(int attempts, std::chrono::milliseconds base,
                                                std::chrono::milliseconds max,
                                                std::mt19937_64& rng) {
  int64_t d = std::max<int64_t>(1, base.count());
  for (int i = 0; i < attempts && d < max.count(); ++i) d *= 2;
  d = std::min<int64_t>(d, std::max<int64_t>(1, max.count()));
  std::uniform_int_distribution<int64_t> jitter(d / 2, d);
  return std::chrono::milliseconds(jitter(rng));
}

Result<std::unique_ptr<OutboxSender>> OutboxSender::Start(OutboxSenderOptions options) {
  if (options.gateway == nullptr || options.clock == nullptr || options.log == nullptr ||
      !options.registry) {
    return Status::Internal("OutboxSender needs a gateway, a clock, a log and a registry");
  }
  auto client = PeerClient::Create(options.tls);
  if (!client.ok()) return client.status();
  std::unique_ptr<OutboxSender> sender(new OutboxSender(std::move(options), std::move(*client)));
  sender->options_.gateway->SetOutboxListener([raw = sender.get()] { raw->Wake(); });
  sender->thread_ = std::thread([raw = sender.get()] { raw->Loop(); });
  return sender;
}

OutboxSender::OutboxSender(OutboxSenderOptions options, std::unique_ptr<PeerClient> client)
    : options_(std::move(options)), client_(std::move(client)), rng_(std::random_device{}()) {}

OutboxSender::~OutboxSender() { Stop(); }

void OutboxSender::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void OutboxSender::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
    // No more wake-ups into a sender that is going away.
    options_.gateway->SetOutboxListener(nullptr);
  }
}

void OutboxSender::Loop() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      woken_ = false;
    }
    std::optional<int64_t> next_due;
    const bool progressed = Round(next_due);
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) return;
    if (progressed || woken_) continue;
    auto wait = options_.idle_poll;
    if (next_due) {
      const int64_t until = *next_due - options_.clock->NowMs();
      wait = std::min(wait, std::chrono::milliseconds(std::max<int64_t>(0, until)));
    }
    cv_.wait_for(lock, wait, [this] { return stopping_ || woken_; });
  }
}

bool OutboxSender::Round(std::optional<int64_t>& next_due_ms) {
  auto batch = AwaitGateway<OutboxBatch>([&](Callback<OutboxBatch> cb) {
    options_.gateway->TakeOutbox(options_.clock->NowMs(), std::move(cb));
  });
  if (!batch.ok()) {
    // A store without an outbox, or one shutting down: look again later (a commit that
    // queues a message wakes the sender anyway).
    options_.log->Event(LogLevel::kWarn, "transfer_outbox_unreadable",
                        {{"error", batch.status().ToString()}});
    next_due_ms = options_.clock->NowMs() + std::min<int64_t>(options_.idle_poll.count(), 5000);
    return false;
  }
  next_due_ms = batch->next_due_ms;
  bool delivered_any = false;
  for (const OutboxItem& item : batch->due) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return false;
    }
    bool delivered = false;
    const int64_t retry_at = SendOne(item, delivered);
    delivered_any = delivered_any || delivered;
    // A failed attempt is due again at its own time, which the batch could not know.
    if (retry_at > 0 && (!next_due_ms || retry_at < *next_due_ms)) next_due_ms = retry_at;
  }
  return delivered_any;
}

int64_t OutboxSender::SendOne(const OutboxItem& item, bool& delivered) {
  const auto registry = options_.registry();
  const config::Peer* peer = registry ? registry->FindPeer(item.peer_area) : nullptr;
  PeerResponse response;
  if (peer == nullptr) {
    response.error = "no peer gateway for area " + item.peer_area + " is in the registry";
  } else {
    response = client_->Post(*peer, kPeerPath, item.sealed, options_.request_timeout);
  }
  OutboxSettlement s;
  s.seq = item.seq;
  s.http_status = response.status;
  std::string result;
  if (response.status >= 200 && response.status < 300) {
    s.outcome = OutboxSettlement::Outcome::kDelivered;
    result = "delivered";
  } else if (response.status >= 400 && response.status < 500 && response.status != 408 &&
             response.status != 429) {
    s.outcome = OutboxSettlement::Outcome::kRefused;
    s.error = RefusalText(response.status, response.body);
    result = "refused";
  } else {
    s.outcome = OutboxSettlement::Outcome::kRetry;
    s.error = response.status != 0 ? RefusalText(response.status, response.body) : response.error;
    const auto delay =
        Backoff(item.attempts, options_.base_backoff, options_.max_backoff, rng_);
    s.next_attempt_at_ms = options_.clock->NowMs() + delay.count();
    result = "retry";
  }
  if (options_.metrics != nullptr) options_.metrics->CountTransferSend(item.peer_area, result);
  json fields = {{"peer", item.peer_area},
                 {"transfer_id", item.transfer_id},
                 {"message_id", item.message_id},
                 {"attempt", item.attempts + 1},
                 {"result", result}};
  if (response.status != 0) fields["status"] = response.status;
  if (!s.error.empty()) fields["error"] = s.error;
  if (s.outcome == OutboxSettlement::Outcome::kRetry) {
    fields["retry_in_ms"] = s.next_attempt_at_ms - options_.clock->NowMs();
  }
  options_.log->Event(s.outcome == OutboxSettlement::Outcome::kDelivered ? LogLevel::kInfo
                      : s.outcome == OutboxSettlement::Outcome::kRefused ? LogLevel::kError
                                                                          : LogLevel::kWarn,
                      "transfer_send", fields);
  auto settled = AwaitGateway<Empty>([&](Callback<Empty> cb) {
    options_.gateway->SettleOutbox(s, std::move(cb));
  });
  if (!settled.ok()) {
    // The message stays as it was: delivered again later (the peer absorbs the repeat).
    options_.log->Event(LogLevel::kError, "transfer_settle_failed",
                        {{"peer", item.peer_area},
                         {"message_id", item.message_id},
                         {"error", settled.status().ToString()}});
    return options_.clock->NowMs() + options_.base_backoff.count();
  }
  // A refused message is set aside: the peer's next message may go at once too.
  delivered = s.outcome != OutboxSettlement::Outcome::kRetry;
  return s.outcome == OutboxSettlement::Outcome::kRetry ? s.next_attempt_at_ms : 0;
}

}  // namespace safegate::server
