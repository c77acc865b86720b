// `safegatectl retention run` (retention.h).
#include "daemon/ctl/retention.h"

#include <chrono>
#include <exception>
#include <filesystem>
#include <future>
#include <memory>
#include <utility>

#include "config/config.h"
#include "daemon/core/clock.h"
#include "daemon/core/gateway.h"

namespace safegate::ctl {

namespace fs = std::filesystem;

nlohmann::json RetentionRunReport::ToJson() const {
  return {{"data_dir", data_dir},
          {"policy", policy},
          {"policy_version", policy_version},
          {"records_deleted", records_deleted},
          {"views_deleted", views_deleted},
          {"batches", batches}};
}

namespace {

constexpr int kMaxBatches = 100000;  // a bound on the loop; each batch deletes up to 2,000

Result<RetentionReport> SweepOnce(Gateway& gateway, int64_t now_ms) {
  auto promise = std::make_shared<std::promise<Result<RetentionReport>>>();
  auto future = promise->get_future();
  gateway.SweepRetention(now_ms, [promise](Result<RetentionReport> r) {
    promise->set_value(std::move(r));
  });
  return future.get();  // the writer always answers, also when shutting down
}

}  // namespace

Result<RetentionRunReport> RunRetention(const RetentionOptions& options) {
  auto config = std::make_shared<config::Config>();
  std::string policy_file = options.policy;
  if (!options.config.empty()) {
    try {
      *config = config::LoadConfig(options.config);
    } catch (const std::exception& e) {
      return Status::Invalid(e.what());
    }
    if (policy_file.empty()) policy_file = config->policy;
  } else {
    if (options.data_dir.empty()) {
      return Status::Invalid("give --config FILE, or --data-dir DIR (with --policy FILE)");
    }
    config->area = "local";
    config->data_dir = options.data_dir;
  }
  std::error_code ec;
  const fs::path db = fs::path(config->data_dir) / "safegate.db";
  if (!fs::is_regular_file(db, ec)) {
    return Status::NotFound("no safegate store in " + config->data_dir + " (no " + db.string() +
                            ")");
  }
  config->policy.clear();  // the policy is given to the gateway below, or none

  RetentionRunReport report;
  report.data_dir = config->data_dir;
  report.policy = policy_file;
  GatewayOptions gateway_options;
  if (!policy_file.empty()) {
    auto policy = MakePolicyDeliveryPolicy(policy_file);
    if (!policy.ok()) return policy.status();
    report.policy_version = (*policy)->Version();
    gateway_options.policy = std::move(*policy);
  }
  SystemClock clock;
  gateway_options.config = config;
  gateway_options.registry = std::make_shared<config::Registry>();  // no agency is needed
  gateway_options.clock = &clock;
  auto gateway = Gateway::Open(std::move(gateway_options));
  if (!gateway.ok()) return gateway.status();

  Status failed = Status::Ok();
  for (int i = 0; i < kMaxBatches; ++i) {
    auto swept = SweepOnce(**gateway, clock.NowMs());
    if (!swept.ok()) {
      failed = swept.status();
      break;
    }
    ++report.batches;
    report.records_deleted += swept->records_deleted;
    report.views_deleted += swept->views_deleted;
    if (!swept->more) break;
  }
  (*gateway)->Shutdown();
  if (!failed.ok()) return failed;
  return report;
}

}  // namespace safegate::ctl
