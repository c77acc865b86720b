// `safegatectl retention run`: the retention sweep (R9) of a gateway's store, by hand, while
// the gateway is stopped (a running gateway holds its data directory and sweeps hourly
// itself). docs/policy.md ("Retention") describes the sweep.
//
// Thread-safety: one call at a time per data directory (the store's lock enforces it).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "record/status.h"

namespace safegate::ctl {

struct RetentionOptions {
  std::string config;    // a gateway configuration: its data_dir and policy are used
  std::string data_dir;  // or the data directory itself ...
  std::string policy;    // ... and the policy whose periods apply to bodies without a date yet
};

struct RetentionRunReport {
  std::string data_dir;
  std::string policy;          // "" when none was given
  std::string policy_version;  // of that policy
  int64_t records_deleted = 0;
  int64_t views_deleted = 0;
  int batches = 0;
  nlohmann::json ToJson() const;
};

// Opens the store (kUnavailable while a gateway runs on it; kNotFound when DIR holds no
// store), sweeps in batches until nothing is left to delete, each deletion audited as
// retention_deleted, and closes it. kInvalidInput for a bad configuration or policy file.
Result<RetentionRunReport> RunRetention(const RetentionOptions& options);

}  // namespace safegate::ctl
