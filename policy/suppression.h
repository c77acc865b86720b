// Small-number suppression for the statistics the audit officers and the scrutiny committee
// see (R6: committees get aggregates only, with small numbers suppressed).
//
// Input: counts by (kind, area, decision). Output: the same cells and the totals a report
// shows (per kind, per area, per decision and overall), with every count from 1 to 4
// suppressed (primary suppression) and further counts suppressed where the published
// figures would otherwise let a reader work a suppressed one out (secondary suppression).
// docs/policy.md ("Statistics") explains the algorithm for a reader; in short:
//
//   1. Primary: every cell or total whose count is 1..max_small is suppressed. Zero is
//      published (it is not a small number of people).
//   2. Each total and the cells it sums form an equation. Repeat until nothing changes:
//      - an equation with exactly one suppressed figure would reveal it by subtraction:
//        suppress a second figure in it (the smallest non-zero published cell; the total
//        itself if no cell is left);
//      - an equation whose total is published while its suppressed cells add up to
//        1..max_small would publish a small number as a difference: suppress another cell.
//   3. Exact check: solve the system of all equations for the suppressed figures (Gaussian
//      elimination). Any primary figure the system determines uniquely gets another figure
//      of one of its equations suppressed, and step 2 runs again. Suppressing everything is
//      always safe, so this ends.
//
// Ties are broken by the order of the cells (kind, area, decision), so the output is
// deterministic. What it does not defend against: reasoning from bounds across several
// equations (e.g. knowing every suppressed cell is at least 1), and tables published
// elsewhere with other groupings.
//
// Thread-safety: a pure function.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "record/status.h"

namespace safegate::policy {

struct StatsCell {
  std::string kind;      // "flag", "occurrence", ...
  std::string area;      // "bradford", ...
  std::string decision;  // "permit", "redact", "deny"
  int64_t count = 0;     // >= 0
};

enum class Suppression : uint8_t { kNone, kPrimary, kSecondary };
std::string_view SuppressionName(Suppression s);  // "none", "primary", "secondary"

struct PublishedCount {
  // For totals, the dimensions summed over are empty ("" = all kinds / areas / decisions).
  std::string kind;
  std::string area;
  std::string decision;
  std::optional<int64_t> count;  // nullopt when suppressed
  Suppression suppression = Suppression::kNone;
};

struct SuppressedTable {
  std::vector<PublishedCount> cells;   // sorted by kind, area, decision
  std::vector<PublishedCount> totals;  // per kind, per area, per decision, then the grand total
  // {"cells": [{"kind","area","decision","count"|null,"suppressed"?}], "totals": [...]}
  nlohmann::json ToJson() const;
};

struct SuppressionOptions {
  int64_t max_small = 4;  // counts 1..max_small are suppressed
};

// Cells with the same (kind, area, decision) are added together. A negative count or an
// empty name is kInvalidInput with a problem per cell ("cells[3]").
Result<SuppressedTable> SuppressSmallNumbers(std::span<const StatsCell> cells,
                                             SuppressionOptions options = {});

}  // namespace safegate::policy
