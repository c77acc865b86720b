#include "policy/suppression.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>
#include <utility>

namespace safegate::policy {
namespace {

// One figure of the published table: a cell or a total.
struct Item {
  int64_t value = 0;
  bool is_cell = true;
  Suppression state = Suppression::kNone;
  bool suppressed() const { return state != Suppression::kNone; }
};

// total == sum of members.
struct Equation {
  int total = 0;
  std::vector<int> members;
};

class Suppressor {
 public:
  Suppressor(std::vector<Item> items, std::vector<Equation> equations, int64_t max_small)
      : items_(std::move(items)), equations_(std::move(equations)), max_small_(max_small) {
    for (size_t e = 0; e < equations_.size(); ++e) {
      equations_of_[static_cast<size_t>(equations_[e].total)].push_back(static_cast<int>(e));
      for (int m : equations_[e].members)
        equations_of_[static_cast<size_t>(m)].push_back(static_cast<int>(e));
    }
  }

  std::vector<Item> Run() {
    for (Item& it : items_) {
      if (it.value >= 1 && it.value <= max_small_) it.state = Suppression::kPrimary;
    }
    while (true) {
      while (RulePass()) {
      }
      if (!ExactPass()) break;
    }
    return std::move(items_);
  }

 private:
  // The best figure of `eq` to suppress next: the smallest non-zero published cell, else
  // the total if it is published and non-zero; -1 if none.
  int Candidate(const Equation& eq) const {
    int best = -1;
    for (int m : eq.members) {
      const Item& it = items_[static_cast<size_t>(m)];
      if (it.suppressed() || it.value == 0) continue;
      if (best < 0 || it.value < items_[static_cast<size_t>(best)].value) best = m;
    }
    if (best >= 0) return best;
    const Item& total = items_[static_cast<size_t>(eq.total)];
    if (!total.suppressed() && total.value != 0) return eq.total;
    return -1;
  }

  void Suppress(int index) { items_[static_cast<size_t>(index)].state = Suppression::kSecondary; }

  bool RulePass() {
    bool changed = false;
    for (const Equation& eq : equations_) {
      int suppressed = items_[static_cast<size_t>(eq.total)].suppressed() ? 1 : 0;
      int64_t hidden = 0;
      for (int m : eq.members) {
        if (items_[static_cast<size_t>(m)].suppressed()) {
          ++suppressed;
          hidden += items_[static_cast<size_t>(m)].value;
        }
      }
      if (suppressed == 0) continue;
      bool lone = suppressed == 1;
      bool small_difference = !items_[static_cast<size_t>(eq.total)].suppressed() && hidden >= 1 &&
                              hidden <= max_small_;
      if (!lone && !small_difference) continue;
      int c = Candidate(eq);
      if (c >= 0) {
        Suppress(c);
        changed = true;
      }
    }
    return changed;
  }

  // Finds primary figures the published table determines exactly; suppresses one more
  // figure for each. Returns whether anything was suppressed.
  bool ExactPass() {
    std::vector<int> unknowns;
    std::vector<int> column(items_.size(), -1);
    for (size_t i = 0; i < items_.size(); ++i) {
      if (items_[i].suppressed()) {
        column[i] = static_cast<int>(unknowns.size());
        unknowns.push_back(static_cast<int>(i));
      }
    }
    if (unknowns.empty()) return false;
    const size_t cols = unknowns.size();
    std::vector<std::vector<double>> rows;
    for (const Equation& eq : equations_) {
      std::vector<double> row(cols, 0.0);
      bool any = false;
      if (int c = column[static_cast<size_t>(eq.total)]; c >= 0) {
        row[static_cast<size_t>(c)] = -1.0;
        any = true;
      }
      for (int m : eq.members) {
        if (int c = column[static_cast<size_t>(m)]; c >= 0) {
          row[static_cast<size_t>(c)] += 1.0;
          any = true;
        }
      }
      if (any) rows.push_back(std::move(row));
    }
    // Reduced row echelon form.
    constexpr double kEps = 1e-9;
    std::vector<int> pivot_row_of(cols, -1);
    size_t r = 0;
    for (size_t c = 0; c < cols && r < rows.size(); ++c) {
      size_t best = r;
      for (size_t i = r + 1; i < rows.size(); ++i) {
        if (std::fabs(rows[i][c]) > std::fabs(rows[best][c])) best = i;
      }
      if (std::fabs(rows[best][c]) < kEps) continue;
      std::swap(rows[r], rows[best]);
      double p = rows[r][c];
      for (double& v : rows[r]) v /= p;
      for (size_t i = 0; i < rows.size(); ++i) {
        if (i == r || std::fabs(rows[i][c]) < kEps) continue;
        double f = rows[i][c];
        for (size_t k = 0; k < cols; ++k) rows[i][k] -= f * rows[r][k];
      }
      pivot_row_of[c] = static_cast<int>(r);
      ++r;
    }
    bool changed = false;
    for (size_t c = 0; c < cols; ++c) {
      int item = unknowns[c];
      if (items_[static_cast<size_t>(item)].state != Suppression::kPrimary) continue;
      if (pivot_row_of[c] < 0) continue;  // a free variable: not determined
      const std::vector<double>& row = rows[static_cast<size_t>(pivot_row_of[c])];
      bool determined = true;
      for (size_t k = 0; k < cols; ++k) {
        if (k != c && pivot_row_of[k] < 0 && std::fabs(row[k]) > kEps) {
          determined = false;
          break;
        }
      }
      if (!determined) continue;
      int cover = -1;
      for (int e : equations_of_[static_cast<size_t>(item)]) {
        int cand = Candidate(equations_[static_cast<size_t>(e)]);
        if (cand < 0) continue;
        const Item& ci = items_[static_cast<size_t>(cand)];
        const Item* bi = cover < 0 ? nullptr : &items_[static_cast<size_t>(cover)];
        if (bi == nullptr || (ci.is_cell && !bi->is_cell) ||
            (ci.is_cell == bi->is_cell && ci.value < bi->value)) {
          cover = cand;
        }
      }
      if (cover < 0) {
        // Nothing left to suppress near it: widen to the smallest published figure anywhere
        // (suppressing everything is always safe, so this terminates).
        for (size_t i = 0; i < items_.size(); ++i) {
          const Item& it = items_[i];
          if (it.suppressed() || it.value == 0) continue;
          if (cover < 0 || it.value < items_[static_cast<size_t>(cover)].value) {
            cover = static_cast<int>(i);
          }
        }
      }
      if (cover >= 0) {
        Suppress(cover);
        changed = true;
      }
    }
    return changed;
  }

  std::vector<Item> items_;
  std::vector<Equation> equations_;
  std::map<size_t, std::vector<int>> equations_of_;
  int64_t max_small_;
};

PublishedCount Publish(std::string kind, std::string area, std::string decision, const Item& item) {
  PublishedCount out{std::move(kind), std::move(area), std::move(decision), std::nullopt,
                     item.state};
  if (!item.suppressed()) out.count = item.value;
  return out;
}

nlohmann::json CountJson(const PublishedCount& c) {
  nlohmann::json j = nlohmann::json::object();
  if (!c.kind.empty()) j["kind"] = c.kind;
  if (!c.area.empty()) j["area"] = c.area;
  if (!c.decision.empty()) j["decision"] = c.decision;
  j["count"] = c.count ? nlohmann::json(*c.count) : nlohmann::json(nullptr);
  if (c.suppression != Suppression::kNone) j["suppressed"] = SuppressionName(c.suppression);
  return j;
}

}  // namespace

std::string_view SuppressionName(Suppression s) {
  switch (s) {
    case Suppression::kNone:
      return "none";
    case Suppression::kPrimary:
      return "primary";
    case Suppression::kSecondary:
      return "secondary";
  }
  return "none";
}

nlohmann::json SuppressedTable::ToJson() const {
  nlohmann::json j{{"cells", nlohmann::json::array()}, {"totals", nlohmann::json::array()}};
  for (const PublishedCount& c : cells) j["cells"].push_back(CountJson(c));
  for (const PublishedCount& c : totals) j["totals"].push_back(CountJson(c));
  return j;
}

Result<SuppressedTable> SuppressSmallNumbers(std::span<const StatsCell> cells,
                                             SuppressionOptions options) {
  std::vector<Problem> problems;
  std::map<std::tuple<std::string, std::string, std::string>, int64_t> merged;
  for (size_t i = 0; i < cells.size(); ++i) {
    const StatsCell& c = cells[i];
    std::string where = "cells[" + std::to_string(i) + "]";
    if (c.kind.empty() || c.area.empty() || c.decision.empty()) {
      problems.push_back({where, "kind, area and decision must all be named"});
      continue;
    }
    if (c.count < 0) {
      problems.push_back({where, "count must not be negative"});
      continue;
    }
    merged[{c.kind, c.area, c.decision}] += c.count;
  }
  if (options.max_small < 0) problems.push_back({"options.max_small", "must not be negative"});
  if (!problems.empty()) return Status::Invalid("statistics cells are not valid", problems);

  // Items: the cells in order, then one total per kind, per area, per decision, then all.
  std::map<std::string, std::vector<int>> by_kind, by_area, by_decision;
  std::vector<Item> items;
  std::vector<std::tuple<std::string, std::string, std::string>> keys;
  for (const auto& [key, count] : merged) {
    int index = static_cast<int>(items.size());
    items.push_back(Item{count, true, Suppression::kNone});
    keys.push_back(key);
    by_kind[std::get<0>(key)].push_back(index);
    by_area[std::get<1>(key)].push_back(index);
    by_decision[std::get<2>(key)].push_back(index);
  }
  const size_t ncells = items.size();
  std::vector<Equation> equations;
  std::vector<std::tuple<std::string, std::string, std::string>> total_keys;
  auto add_total = [&](std::vector<int> members,
                       std::tuple<std::string, std::string, std::string> key) {
    int64_t sum = 0;
    for (int m : members) sum += items[static_cast<size_t>(m)].value;
    int index = static_cast<int>(items.size());
    items.push_back(Item{sum, false, Suppression::kNone});
    total_keys.push_back(std::move(key));
    equations.push_back(Equation{index, std::move(members)});
  };
  for (auto& [k, members] : by_kind) add_total(members, {k, "", ""});
  for (auto& [a, members] : by_area) add_total(members, {"", a, ""});
  for (auto& [d, members] : by_decision) add_total(members, {"", "", d});
  std::vector<int> all(ncells);
  for (size_t i = 0; i < ncells; ++i) all[i] = static_cast<int>(i);
  add_total(std::move(all), {"", "", ""});

  Suppressor suppressor(std::move(items), std::move(equations), options.max_small);
  std::vector<Item> result = suppressor.Run();

  SuppressedTable table;
  for (size_t i = 0; i < ncells; ++i) {
    auto& [k, a, d] = keys[i];
    table.cells.push_back(Publish(k, a, d, result[i]));
  }
  for (size_t i = 0; i < total_keys.size(); ++i) {
    auto& [k, a, d] = total_keys[i];
    table.totals.push_back(Publish(k, a, d, result[ncells + i]));
  }
  return table;
}

}  // namespace safegate::policy
