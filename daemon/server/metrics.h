// Metrics: the counters and histograms the server keeps for GET /metrics on the admin
// listener, rendered in the Prometheus text exposition format (version 0.0.4).
//
// Label values are bounded sets chosen by the server (route templates, status codes,
// handshake results, refusal reasons, agency ids from the registry), never request text, so
// the number of series cannot be driven up by clients.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/core/gateway.h"
#include "daemon/server/cert_expiry.h"

namespace safegate::server {

class Metrics {
 public:
  Metrics();

  // One finished request on the public listener: route template ("/v1/mailbox/{id}/ack",
  // "unknown"), HTTP status, and seconds from its first byte to the last byte of the reply.
  void CountRequest(std::string_view route, int status, double seconds);
  // result: "ok", "rejected", "no_certificate", "failed", "timeout".
  void CountHandshake(std::string_view result);
  // reason: "expired", "revoked", "untrusted", "unregistered", ...
  void CountTlsRejection(std::string_view reason);
  void ConnectionOpened() { open_.fetch_add(1); }
  void ConnectionClosed() { open_.fetch_sub(1); }
  int64_t OpenConnections() const { return open_.load(); }
  // A connection closed at once because max_connections were open.
  void CountConnectionRefused() { refused_.fetch_add(1); }
  // result: "ok" or "failed".
  void CountReload(std::string_view result);
  void CountSweep(std::string_view result);
  // One attempt to deliver a transfer message to the peer gateway of `peer` (an area from
  // the registry): result "delivered", "retry" or "refused".
  void CountTransferSend(std::string_view peer, std::string_view result);

  // Audit forwarding to a syslog collector ([audit.forward], syslog_forwarder.h). Nothing is
  // rendered until EnableAuditForward. The backlog is the log's entries minus the last
  // forwarded seq, computed at render time from the store's numbers.
  void EnableAuditForward();
  void SetAuditForwardState(bool connected, int64_t last_forwarded_seq);
  void CountAuditForwarded(uint64_t messages);
  // reason: "resolve", "connect", "tls", "closed", "write", "store", "cursor".
  void CountAuditForwardFailure(std::string_view reason);

  // What the gateway is: safegate_build_info{version, area} and its start time.
  void SetBuildInfo(std::string version, std::string area, int64_t start_ms);
  // The certificates the gateway depends on (cert_expiry.h), re-read at start, on reload and
  // daily, and the [tls] expiry_warning window.
  void SetCertificates(std::vector<CertificateExpiry> certificates, int64_t warning_window_ms);
  // The latest signed tree head of the audit log: when it was signed and its tree size.
  struct TreeHeadInfo {
    int64_t timestamp_ms = 0;
    int64_t tree_size = 0;
  };
  void SetLatestTreeHead(std::optional<TreeHeadInfo> head);

  // The whole exposition, with the store's numbers from `stats`; ages (certificate days
  // left, tree head age) as of `now_ms`.
  std::string Render(const Gateway::Stats& stats, int64_t now_ms) const;
  // As above, as of the system clock's now.
  std::string Render(const Gateway::Stats& stats) const;

  // Upper bounds (seconds) of the request latency histogram buckets.
  static const std::vector<double>& LatencyBuckets();

 private:
  struct Histogram {
    std::vector<uint64_t> buckets;  // cumulative counts are computed at render time
    uint64_t count = 0;
    double sum = 0;
  };

  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_;  // by route
  std::map<std::string, uint64_t> handshakes_;
  std::map<std::string, uint64_t> tls_rejections_;
  std::map<std::string, uint64_t> reloads_;
  std::map<std::string, uint64_t> sweeps_;
  std::map<std::pair<std::string, std::string>, uint64_t> transfer_sends_;  // (peer, result)
  std::string version_;
  std::string area_;
  int64_t start_ms_ = 0;
  std::vector<CertificateExpiry> certificates_;
  int64_t warning_window_ms_ = 0;
  std::optional<TreeHeadInfo> tree_head_;
  struct AuditForward {
    bool connected = false;
    int64_t last_seq = 0;
    uint64_t sent = 0;
    std::map<std::string, uint64_t> failures;
  };
  std::optional<AuditForward> forward_;
  std::atomic<int64_t> open_{0};
  std::atomic<uint64_t> refused_{0};
};

}  // namespace safegate::server
