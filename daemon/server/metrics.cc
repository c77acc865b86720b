#include "daemon/server/metrics.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace safegate::server {
namespace {

// Label values come from bounded server-chosen sets, but escape anyway so that the output
// stays well-formed whatever a registry id contains.
std::string Escape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Number(double v) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void Header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void LabelledCounter(std::string& out, std::string_view name, std::string_view label,
                     const std::map<std::string, uint64_t>& values) {
  for (const auto& [value, count] : values) {
    out += name;
    out += '{';
    out += label;
    out += "=\"";
    out += Escape(value);
    out += "\"} ";
    out += std::to_string(count);
    out += '\n';
  }
}

}  // namespace

const std::vector<double>& Metrics::LatencyBuckets() {
  static const std::vector<double> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                               0.25,  0.5,    1,     2.5,  5,     10};
  return kBuckets;
}

Metrics::Metrics() = default;

void Metrics::CountRequest(std::string_view route, int status, double seconds) {
  std::lock_guard lock(mu_);
  ++requests_[{std::string(route), status}];
  auto& h = latency_[std::string(route)];
  const auto& bounds = LatencyBuckets();
  if (h.buckets.empty()) h.buckets.assign(bounds.size(), 0);
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (seconds <= bounds[i]) {
      ++h.buckets[i];
      break;
    }
  }
  ++h.count;
  h.sum += seconds;
}

void Metrics::CountHandshake(std::string_view result) {
  std::lock_guard lock(mu_);
  ++handshakes_[std::string(result)];
}

void Metrics::CountTlsRejection(std::string_view reason) {
  std::lock_guard lock(mu_);
  ++tls_rejections_[std::string(reason)];
}

void Metrics::CountReload(std::string_view result) {
  std::lock_guard lock(mu_);
  ++reloads_[std::string(result)];
}

void Metrics::CountSweep(std::string_view result) {
  std::lock_guard lock(mu_);
  ++sweeps_[std::string(result)];
}

void Metrics::CountTransferSend(std::string_view peer, std::string_view result) {
  std::lock_guard lock(mu_);
  ++transfer_sends_[{std::string(peer), std::string(result)}];
}

void Metrics::EnableAuditForward() {
  std::lock_guard lock(mu_);
  if (!forward_) forward_.emplace();
}

void Metrics::SetAuditForwardState(bool connected, int64_t last_forwarded_seq) {
  std::lock_guard lock(mu_);
  if (!forward_) forward_.emplace();
  forward_->connected = connected;
  forward_->last_seq = last_forwarded_seq;
}

void Metrics::CountAuditForwarded(uint64_t messages) {
  std::lock_guard lock(mu_);
  if (!forward_) forward_.emplace();
  forward_->sent += messages;
}

void Metrics::CountAuditForwardFailure(std::string_view reason) {
  std::lock_guard lock(mu_);
  if (!forward_) forward_.emplace();
  ++forward_->failures[std::string(reason)];
}

void Metrics::SetBuildInfo(std::string version, std::string area, int64_t start_ms) {
  std::lock_guard lock(mu_);
  version_ = std::move(version);
  area_ = std::move(area);
  start_ms_ = start_ms;
}

void Metrics::SetCertificates(std::vector<CertificateExpiry> certificates,
                              int64_t warning_window_ms) {
  std::lock_guard lock(mu_);
  certificates_ = std::move(certificates);
  warning_window_ms_ = warning_window_ms;
}

void Metrics::SetLatestTreeHead(std::optional<TreeHeadInfo> head) {
  std::lock_guard lock(mu_);
  tree_head_ = head;
}

std::string Metrics::Render(const Gateway::Stats& stats) const {
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  return Render(stats, now_ms);
}

std::string Metrics::Render(const Gateway::Stats& stats, int64_t now_ms) const {
  std::string out;
  std::optional<AuditForward> forward;
  {
    std::lock_guard lock(mu_);
    forward = forward_;
    if (!version_.empty()) {
      Header(out, "safegate_build_info", "gauge", "The gateway's version and area (always 1).");
      out += "safegate_build_info{version=\"" + Escape(version_) + "\",area=\"" + Escape(area_) +
             "\"} 1\n";
      Header(out, "safegate_start_time_seconds", "gauge",
             "When this gateway process started, in seconds since the Unix epoch.");
      // Whole seconds and milliseconds: %.9g would round a current epoch to tens of seconds.
      char start[32];
      std::snprintf(start, sizeof start, "%lld.%03lld", static_cast<long long>(start_ms_ / 1000),
                    static_cast<long long>(start_ms_ % 1000));
      out += std::string("safegate_start_time_seconds ") + start + "\n";
    }
    if (!certificates_.empty()) {
      Header(out, "safegate_certificate_expiry_days", "gauge",
             "Days until each certificate the gateway depends on expires (negative: expired), "
             "by role (server, ca, agency, peer), name and SHA-256 fingerprint.");
      for (const auto& c : certificates_) {
        out += "safegate_certificate_expiry_days{role=\"" + Escape(c.role) + "\",name=\"" +
               Escape(c.name) + "\",fingerprint=\"" + Escape(c.fingerprint) + "\"} " +
               Number(DaysLeft(c, now_ms)) + "\n";
      }
      Header(out, "safegate_certificate_expiry_warning_days", "gauge",
             "The [tls] expiry_warning window: certificates expiring within it are logged.");
      out += "safegate_certificate_expiry_warning_days " +
             Number(static_cast<double>(warning_window_ms_) / (24.0 * 3600 * 1000)) + "\n";
    }
    if (tree_head_) {
      Header(out, "safegate_audit_tree_head_age_seconds", "gauge",
             "Age of the latest signed tree head of the audit log.");
      out += "safegate_audit_tree_head_age_seconds " +
             Number(static_cast<double>(now_ms - tree_head_->timestamp_ms) / 1000.0) + "\n";
      Header(out, "safegate_audit_tree_head_size", "gauge",
             "Entries covered by the latest signed tree head.");
      out += "safegate_audit_tree_head_size " + std::to_string(tree_head_->tree_size) + "\n";
    }
    Header(out, "safegate_http_requests_total", "counter",
           "Requests answered on the public listener, by route template and HTTP status.");
    for (const auto& [key, count] : requests_) {
      out += "safegate_http_requests_total{route=\"" + Escape(key.first) + "\",status=\"" +
             std::to_string(key.second) + "\"} " + std::to_string(count) + "\n";
    }

    Header(out, "safegate_http_request_duration_seconds", "histogram",
           "Time from a request's first byte to the last byte of its reply.");
    const auto& bounds = LatencyBuckets();
    for (const auto& [route, h] : latency_) {
      uint64_t cumulative = 0;
      const std::string label = "route=\"" + Escape(route) + "\"";
      for (size_t i = 0; i < bounds.size(); ++i) {
        cumulative += h.buckets[i];
        out += "safegate_http_request_duration_seconds_bucket{" + label + ",le=\"" +
               Number(bounds[i]) + "\"} " + std::to_string(cumulative) + "\n";
      }
      out += "safegate_http_request_duration_seconds_bucket{" + label + ",le=\"+Inf\"} " +
             std::to_string(h.count) + "\n";
      out += "safegate_http_request_duration_seconds_sum{" + label + "} " + Number(h.sum) + "\n";
      out += "safegate_http_request_duration_seconds_count{" + label + "} " +
             std::to_string(h.count) + "\n";
    }

    Header(out, "safegate_tls_handshakes_total", "counter",
           "TLS handshakes on the public listener, by result.");
    LabelledCounter(out, "safegate_tls_handshakes_total", "result", handshakes_);
    Header(out, "safegate_tls_rejections_total", "counter",
           "Client certificates refused, by reason.");
    LabelledCounter(out, "safegate_tls_rejections_total", "reason", tls_rejections_);
    Header(out, "safegate_reloads_total", "counter", "Reloads (SIGHUP), by result.");
    LabelledCounter(out, "safegate_reloads_total", "result", reloads_);
    Header(out, "safegate_deadline_sweeps_total", "counter", "Mailbox deadline sweeps, by result.");
    LabelledCounter(out, "safegate_deadline_sweeps_total", "result", sweeps_);
    Header(out, "safegate_transfer_sends_total", "counter",
           "Attempts to deliver transfer messages to peer gateways, by peer and result "
           "(delivered, retry, refused).");
    for (const auto& [key, n] : transfer_sends_) {
      out += "safegate_transfer_sends_total{peer=\"" + Escape(key.first) + "\",result=\"" +
             Escape(key.second) + "\"} " + std::to_string(n) + "\n";
    }
  }

  Header(out, "safegate_connections_open", "gauge", "Open connections on the public listener.");
  out += "safegate_connections_open " + std::to_string(open_.load()) + "\n";
  Header(out, "safegate_connections_refused_total", "counter",
         "Connections closed at once because max_connections were open.");
  out += "safegate_connections_refused_total " + std::to_string(refused_.load()) + "\n";

  Header(out, "safegate_audit_entries", "gauge", "Entries in the audit log.");
  out += "safegate_audit_entries " + std::to_string(stats.audit_entries) + "\n";
  Header(out, "safegate_store_commits_total", "counter", "Store transactions committed.");
  out += "safegate_store_commits_total " + std::to_string(stats.commits) + "\n";
  Header(out, "safegate_store_committed_jobs_total", "counter",
         "Operations committed (several share one transaction when group-committed).");
  out += "safegate_store_committed_jobs_total " + std::to_string(stats.committed_jobs) + "\n";
  Header(out, "safegate_store_batch_size_mean", "gauge",
         "Mean operations per committed transaction since start.");
  out += "safegate_store_batch_size_mean " +
         Number(stats.commits > 0
                    ? static_cast<double>(stats.committed_jobs) / static_cast<double>(stats.commits)
                    : 0.0) +
         "\n";
  Header(out, "safegate_store_last_commit_seconds", "gauge",
         "Duration of the latest store commit, fsync included.");
  out += "safegate_store_last_commit_seconds " + Number(stats.last_commit_ms / 1000.0) + "\n";

  Header(out, "safegate_mailbox_depth", "gauge", "Unacknowledged messages per agency.");
  for (const auto& [agency, depth] : stats.mailbox_depth) {
    out +=
        "safegate_mailbox_depth{agency=\"" + Escape(agency) + "\"} " + std::to_string(depth) + "\n";
  }
  Header(out, "safegate_mailbox_oldest_unacked_seconds", "gauge",
         "Age of the oldest unacknowledged message per agency.");
  for (const auto& [agency, age_ms] : stats.oldest_unacked_age_ms) {
    out += "safegate_mailbox_oldest_unacked_seconds{agency=\"" + Escape(agency) + "\"} " +
           Number(static_cast<double>(age_ms) / 1000.0) + "\n";
  }

  // The transfer outbox (docs/transfers.md, "Delivery"), per peer gateway area.
  Header(out, "safegate_transfer_outbox_backlog", "gauge",
         "Transfer messages waiting to be delivered to each peer gateway.");
  for (const auto& [peer, depth] : stats.outbox_depth) {
    out += "safegate_transfer_outbox_backlog{peer=\"" + Escape(peer) + "\"} " +
           std::to_string(depth) + "\n";
  }
  Header(out, "safegate_transfer_outbox_oldest_seconds", "gauge",
         "Age of the oldest transfer message not yet delivered to each peer gateway (0: none).");
  for (const auto& [peer, age_ms] : stats.outbox_oldest_age_ms) {
    out += "safegate_transfer_outbox_oldest_seconds{peer=\"" + Escape(peer) + "\"} " +
           Number(static_cast<double>(age_ms) / 1000.0) + "\n";
  }
  if (forward) {
    Header(out, "safegate_audit_forward_connected", "gauge",
           "1 while a TLS connection to the audit syslog collector is open, else 0.");
    out += std::string("safegate_audit_forward_connected ") + (forward->connected ? "1" : "0") +
           "\n";
    Header(out, "safegate_audit_forward_last_seq", "gauge",
           "Seq of the last audit entry written to the syslog collector (the cursor).");
    out += "safegate_audit_forward_last_seq " + std::to_string(forward->last_seq) + "\n";
    Header(out, "safegate_audit_forward_backlog", "gauge",
           "Audit entries not yet forwarded to the syslog collector.");
    out += "safegate_audit_forward_backlog " +
           std::to_string(std::max<int64_t>(0, stats.audit_entries - forward->last_seq)) + "\n";
    Header(out, "safegate_audit_forward_messages_total", "counter",
           "Audit entries written to the syslog collector (repeats after a reconnect included).");
    out += "safegate_audit_forward_messages_total " + std::to_string(forward->sent) + "\n";
    Header(out, "safegate_audit_forward_failures_total", "counter",
           "Audit forwarding failures, by reason (resolve, connect, tls, closed, write, store, "
           "cursor).");
    LabelledCounter(out, "safegate_audit_forward_failures_total", "reason", forward->failures);
  }
  Header(out, "safegate_transfer_outbox_refused", "gauge",
         "Transfer messages a peer gateway refused (kept, not retried: see the audit log).");
  for (const auto& [peer, n] : stats.outbox_failed) {
    out += "safegate_transfer_outbox_refused{peer=\"" + Escape(peer) + "\"} " +
           std::to_string(n) + "\n";
  }
  return out;
}

}  // namespace safegate::server
