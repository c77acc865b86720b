// `safegatectl status --admin-url URL`: a gateway's health at a glance, for an operator at a
// terminal or a monitoring script, from the admin listener's /healthz and /metrics (plain
// HTTP on loopback; docs/operations.md, "Monitoring").
//
// GatewayStatus gathers what those two endpoints say: health, version and area, uptime,
// every certificate's days left (and the warning window), mailbox backlogs, the audit log
// and its latest signed tree head, store commits, connections and TLS refusals.
// RenderStatus prints it for a person; GatewayStatus::ToJson for a script.
//
// Thread-safety: free functions without shared state. Errors: kInvalidInput for a URL that
// is not http://HOST:PORT; kUnavailable when nothing answers within the timeout (naming the
// URL and the cause).
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "record/status.h"

namespace safegate::ctl {

// One sample of the Prometheus text format: name{labels} value.
struct MetricSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Parses the Prometheus text exposition format (version 0.0.4); comment lines are skipped.
// Errors: kInvalidInput naming the first line that is not a sample.
Result<std::vector<MetricSample>> ParsePrometheusText(const std::string& text);

struct HttpAnswer {
  int status = 0;
  std::string body;
};

// GET `path` from `base_url` ("http://HOST:PORT", no TLS: the admin listener), bounded by
// `timeout` in all.
Result<HttpAnswer> PlainHttpGet(const std::string& base_url, const std::string& path,
                                std::chrono::milliseconds timeout);

struct GatewayStatus {
  std::string admin_url;
  bool healthy = false;
  int healthz_status = 0;
  std::string version;  // "" when /metrics does not say
  std::string area;
  double start_time_s = 0;
  double now_s = 0;
  double warning_days = 0;
  struct Certificate {
    std::string role, name, fingerprint;
    double days_left = 0;
  };
  std::vector<Certificate> certificates;  // soonest to expire first
  struct Mailbox {
    std::string agency;
    double depth = 0;
    double oldest_s = 0;
  };
  std::vector<Mailbox> mailboxes;
  bool has_tree_head = false;
  double tree_head_age_s = 0;
  double tree_head_size = 0;
  double audit_entries = 0;
  double commits = 0, committed_jobs = 0, last_commit_s = 0;
  double connections_open = 0;
  std::map<std::string, double> handshakes;      // by result
  std::map<std::string, double> tls_rejections;  // by reason

  nlohmann::json ToJson() const;
};

// Asks /healthz and /metrics. An unreachable gateway is an error; a /healthz that is not
// 200 is a status with healthy = false.
Result<GatewayStatus> GetGatewayStatus(const std::string& admin_url,
                                       std::chrono::milliseconds timeout);

// The status for a person, one fact per line.
std::string RenderStatus(const GatewayStatus& status);

}  // namespace safegate::ctl
