// Statistics for audit officers and the scrutiny committee (R6): deliveries counted by record
// kind, recipient area and decision, with small numbers suppressed (policy/suppression.h).
//
// The counts are read from each push's stored answer (its per-recipient decisions) and the
// record's kind; no record body is opened, and the answer holds aggregates only, so a record
// carrying Schedule 12A marks is never a row of it: it is one among the counted.
#include <chrono>
#include <map>
#include <tuple>
#include <utility>

#include "daemon/core/policy_store.h"
#include "daemon/core/time_format.h"
#include "policy/policy.h"
#include "policy/suppression.h"

namespace safegate {

using nlohmann::json;

namespace {
constexpr int64_t kMaxSmall = 4;
}  // namespace

json StatsReport::ToJson() const {
  json j = {{"from", core::FormatTimeMs(from_ms)},
            {"to", core::FormatTimeMs(to_ms)},
            {"max_suppressed", kMaxSmall}};
  j["cells"] = table.contains("cells") ? table["cells"] : json::array();
  j["totals"] = table.contains("totals") ? table["totals"] : json::array();
  return j;
}

namespace core {
namespace {

bool MayReadStats(config::Role role) {
  return role == config::Role::kAudit || role == config::Role::kCommittee;
}

// "2024-06-01T12:00:00Z", "...+01:00" or "2024-06-01" (midnight UTC).
std::optional<int64_t> ParseBound(const std::string& text) {
  auto t = policy::ParseTimestamp(text);
  if (!t) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count();
}

}  // namespace

TypedJob<StatsReport> PrepareStats(StoreContext& store, const Caller& caller, StatsQuery query) {
  TypedJob<StatsReport> job;
  job.run = [&store, caller, query](StatsReport& out) -> Status {
    const int64_t now = store.StoreNowMs();
    if (!MayReadStats(caller.role)) {
      return Status::Forbidden("statistics are for audit and committee agencies only");
    }
    std::vector<Problem> problems;
    out.from_ms = 0;
    out.to_ms = now + 1;  // up to and including now
    const char* kBoundFormat =
        "must be an RFC 3339 date-time (2024-06-01T12:00:00Z) or a date (2024-06-01)";
    if (!query.from.empty()) {
      if (auto ms = ParseBound(query.from)) {
        out.from_ms = *ms;
      } else {
        problems.push_back({"from", kBoundFormat});
      }
    }
    if (!query.to.empty()) {
      if (auto ms = ParseBound(query.to)) {
        out.to_ms = *ms;
      } else {
        problems.push_back({"to", kBoundFormat});
      }
    }
    if (problems.empty() && out.from_ms > out.to_ms) problems.push_back({"from", "is after to"});
    if (!problems.empty()) {
      std::string detail = problems[0].where + ": " + problems[0].what;
      return Status::Invalid(std::move(detail), std::move(problems));
    }

    const auto registry = store.StoreRegistry();
    std::map<std::tuple<std::string, std::string, std::string>, int64_t> counts;
    auto q = store.StoreDb().Prepare(
        "SELECT kind, response_json FROM records WHERE created_at_ms >= ?1 AND created_at_ms < ?2");
    if (!q.ok()) return q.status();
    Stmt& s = **q;
    s.Bind(1, out.from_ms).Bind(2, out.to_ms);
    for (;;) {
      auto row = s.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      const std::string kind = s.Text(0);
      const std::string answer = s.Text(1);
      json j = json::parse(answer, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.contains("deliveries") || !j["deliveries"].is_array()) {
        s.Reset();
        return Status::Internal("store: a stored push answer is malformed");
      }
      for (const json& d : j["deliveries"]) {
        if (!d.is_object()) continue;
        const std::string recipient = d.value("recipient", "");
        const config::Agency* agency = registry ? registry->Find(recipient) : nullptr;
        const std::string area = agency != nullptr ? agency->area : "unknown";
        ++counts[{kind, area, d.value("decision", "")}];
      }
    }
    s.Reset();

    std::vector<policy::StatsCell> cells;
    for (const auto& [key, count] : counts) {
      cells.push_back({std::get<0>(key), std::get<1>(key), std::get<2>(key), count});
    }
    policy::SuppressionOptions options;
    options.max_small = kMaxSmall;
    auto table = policy::SuppressSmallNumbers(cells, options);
    if (!table.ok()) return Status::Internal("statistics: " + table.status().detail());
    out.table = table->ToJson();

    AuditEntry e;
    e.at_ms = now;
    e.actor = caller.agency;
    e.action = "stats_queried";
    e.detail = {{"from", FormatTimeMs(out.from_ms)},
                {"to", FormatTimeMs(out.to_ms)},
                {"cells", static_cast<int64_t>(cells.size())}};
    return store.StoreAppend(e);
  };
  job.on_refused = [&store, caller](const Status& refusal) {
    AuditEntry e = RefusalEntry(store.StoreNowMs(), caller.agency, "stats", refusal);
    return store.StoreAppend(e);
  };
  return job;
}

}  // namespace core
}  // namespace safegate
