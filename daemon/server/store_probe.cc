#include "daemon/server/store_probe.h"

#include <filesystem>

#include "daemon/core/sqlite.h"

namespace safegate::server {

StoreProbe::StoreProbe(std::string data_dir)
    : db_path_((std::filesystem::path(data_dir) / "safegate.db").string()) {}

StoreProbe::~StoreProbe() = default;

std::optional<Metrics::TreeHeadInfo> StoreProbe::LatestTreeHead() {
  if (!db_) {
    auto db = core::Db::Open(db_path_, core::Db::Mode::kReadOnly);
    if (!db.ok()) return std::nullopt;
    db_ = std::move(*db);
    (void)db_->Exec("PRAGMA busy_timeout=1000");
  }
  auto stmt =
      db_->Prepare("SELECT timestamp_ms, tree_size FROM tree_heads ORDER BY position DESC LIMIT 1");
  if (!stmt.ok()) {
    db_.reset();
    return std::nullopt;
  }
  auto row = (*stmt)->Step();
  std::optional<Metrics::TreeHeadInfo> out;
  if (row.ok() && *row) out = Metrics::TreeHeadInfo{(*stmt)->Int(0), (*stmt)->Int(1)};
  (*stmt)->Reset();  // no read transaction held open between scrapes
  if (!row.ok()) db_.reset();
  return out;
}

}  // namespace safegate::server
