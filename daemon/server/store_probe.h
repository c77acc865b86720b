// StoreProbe: read-only facts about the store for /metrics that Gateway::Stats does not carry
// yet, read over a separate read-only SQLite connection (WAL readers never block the store's
// writer). Today: the latest signed tree head of the audit log (when it was signed, its size).
//
// It names one table of the store's schema (tree_heads, daemon/core/schema.cc); if the
// schema changes under it, the query fails and the metric is simply left out. When
// Gateway::Stats gains these numbers, this goes.
//
// Thread-safety: not thread-safe; the server calls it from its single blocking-work thread.
// Errors: none surface; a fact that cannot be read is nullopt.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "daemon/server/metrics.h"

namespace safegate::core {
class Db;
}

namespace safegate::server {

class StoreProbe {
 public:
  explicit StoreProbe(std::string data_dir);
  ~StoreProbe();
  StoreProbe(const StoreProbe&) = delete;
  StoreProbe& operator=(const StoreProbe&) = delete;

  std::optional<Metrics::TreeHeadInfo> LatestTreeHead();

 private:
  std::string db_path_;
  std::unique_ptr<core::Db> db_;  // opened on first use, reopened after a failure
};

}  // namespace safegate::server
