#include "policy/suppression.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <random>
#include <set>

namespace safegate::policy {
namespace {

using ::testing::HasSubstr;

const PublishedCount* Find(const std::vector<PublishedCount>& v, const std::string& kind,
                           const std::string& area, const std::string& decision) {
  for (const PublishedCount& c : v) {
    if (c.kind == kind && c.area == area && c.decision == decision) return &c;
  }
  return nullptr;
}

TEST(Suppression, SmallCountsAreSuppressedZeroAndLargeArePublished) {
  std::vector<StatsCell> cells = {
      {"flag", "bradford", "permit", 0},  {"flag", "bradford", "deny", 3},
      {"flag", "bradford", "redact", 12}, {"plan", "bradford", "permit", 40},
      {"plan", "bradford", "deny", 7},
  };
  auto r = SuppressSmallNumbers(cells);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const PublishedCount* small = Find(r->cells, "flag", "bradford", "deny");
  ASSERT_NE(small, nullptr);
  EXPECT_FALSE(small->count.has_value());
  EXPECT_EQ(small->suppression, Suppression::kPrimary);
  const PublishedCount* zero = Find(r->cells, "flag", "bradford", "permit");
  ASSERT_NE(zero, nullptr);
  EXPECT_EQ(zero->count, 0);
}

TEST(Suppression, ATableWithoutSmallNumbersIsPublishedWhole) {
  std::vector<StatsCell> cells = {
      {"flag", "bradford", "permit", 0},
      {"flag", "bradford", "deny", 5},
      {"plan", "cambridgeshire", "permit", 40},
      {"plan", "bradford", "deny", 7},
  };
  auto r = SuppressSmallNumbers(cells);
  ASSERT_TRUE(r.ok());
  for (const PublishedCount& c : r->cells) {
    EXPECT_TRUE(c.count.has_value()) << c.kind << "/" << c.area << "/" << c.decision;
    EXPECT_EQ(c.suppression, Suppression::kNone);
  }
  for (const PublishedCount& c : r->totals) EXPECT_TRUE(c.count.has_value());
  EXPECT_EQ(Find(r->cells, "plan", "cambridgeshire", "permit")->count, 40);
  EXPECT_EQ(Find(r->totals, "", "", "")->count, 52);
  EXPECT_EQ(Find(r->totals, "", "bradford", "")->count, 12);
}

TEST(Suppression, ALoneSuppressedCellInATotalGetsAPartner) {
  // flag total = 3 + 12 = 15 would reveal the 3 by subtraction; the 12 goes too.
  std::vector<StatsCell> cells = {
      {"flag", "bradford", "deny", 3},
      {"flag", "bradford", "redact", 12},
      {"plan", "bradford", "deny", 30},
      {"plan", "bradford", "redact", 40},
  };
  auto r = SuppressSmallNumbers(cells);
  ASSERT_TRUE(r.ok());
  const PublishedCount* partner = Find(r->cells, "flag", "bradford", "redact");
  ASSERT_NE(partner, nullptr);
  EXPECT_EQ(partner->suppression, Suppression::kSecondary);
  EXPECT_FALSE(partner->count.has_value());
  // The "deny" total (3 + 30) would then reveal the 3 again: a partner there too.
  EXPECT_EQ(Find(r->cells, "plan", "bradford", "deny")->suppression, Suppression::kSecondary);
  // The rectangle of four suppressed cells cannot be solved; the totals stay.
  EXPECT_EQ(Find(r->totals, "flag", "", "")->count, 15);
  EXPECT_EQ(Find(r->totals, "", "", "")->count, 85);
}

TEST(Suppression, SmallTotalsAreSuppressedToo) {
  std::vector<StatsCell> cells = {
      {"flag", "bradford", "deny", 2},
      {"flag", "cambridgeshire", "deny", 1},
      {"plan", "bradford", "deny", 30},
      {"plan", "cambridgeshire", "deny", 25},
  };
  auto r = SuppressSmallNumbers(cells);
  ASSERT_TRUE(r.ok());
  const PublishedCount* flag_total = Find(r->totals, "flag", "", "");
  ASSERT_NE(flag_total, nullptr);
  EXPECT_EQ(flag_total->suppression, Suppression::kPrimary);
  EXPECT_FALSE(flag_total->count.has_value());
}

TEST(Suppression, SuppressedCellsThatAddUpToASmallNumberGetMoreCover) {
  // Two 1s in a total of 20: publishing 18 would reveal that the two hidden cells hold 2.
  std::vector<StatsCell> cells = {
      {"flag", "bradford", "deny", 1},
      {"flag", "bradford", "permit", 1},
      {"flag", "bradford", "redact", 18},
  };
  auto r = SuppressSmallNumbers(cells);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Find(r->cells, "flag", "bradford", "redact")->suppression, Suppression::kSecondary);
}

TEST(Suppression, DuplicateCellsAreAddedAndBadCellsRefused) {
  std::vector<StatsCell> dup = {{"flag", "bradford", "deny", 3}, {"flag", "bradford", "deny", 4}};
  auto r = SuppressSmallNumbers(dup);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->cells.size(), 1u);
  EXPECT_EQ(r->cells[0].count, 7);

  std::vector<StatsCell> bad = {{"flag", "", "deny", 3}, {"flag", "bradford", "deny", -1}};
  auto b = SuppressSmallNumbers(bad);
  ASSERT_FALSE(b.ok());
  ASSERT_EQ(b.status().problems().size(), 2u);
  EXPECT_EQ(b.status().problems()[0].where, "cells[0]");
  EXPECT_EQ(b.status().problems()[1].where, "cells[1]");
  EXPECT_THAT(b.status().problems()[1].what, HasSubstr("negative"));
}

TEST(Suppression, JsonShowsNullForSuppressedCounts) {
  std::vector<StatsCell> cells = {{"flag", "bradford", "deny", 2},
                                  {"flag", "bradford", "permit", 9},
                                  {"flag", "bradford", "redact", 9}};
  auto r = SuppressSmallNumbers(cells);
  ASSERT_TRUE(r.ok());
  nlohmann::json j = r->ToJson();
  ASSERT_EQ(j["cells"].size(), 3u);
  EXPECT_TRUE(j["cells"][0]["count"].is_null());
  EXPECT_EQ(j["cells"][0]["suppressed"], "primary");
  EXPECT_FALSE(j["totals"].back().contains("kind"));  // the grand total
}

// What a reader can infer: every assignment of whole numbers >= 1 to the suppressed cells
// that agrees with every published cell and total. A primary figure must be left with more
// than one possible value. Exhaustive, so only for small tables.
void ExpectNoPrimaryIsDetermined(const std::vector<StatsCell>& input, const SuppressedTable& t) {
  std::vector<const PublishedCount*> hidden;
  for (const PublishedCount& c : t.cells) {
    if (!c.count) hidden.push_back(&c);
  }
  int64_t grand = 0;
  for (const StatsCell& c : input) grand += c.count;
  std::map<const PublishedCount*, std::set<int64_t>> seen;
  std::map<std::tuple<std::string, std::string, std::string>, int64_t> value;
  for (const PublishedCount& c : t.cells) {
    if (c.count) value[{c.kind, c.area, c.decision}] = *c.count;
  }
  std::function<void(size_t)> assign = [&](size_t i) {
    if (i == hidden.size()) {
      // Check every published total against this assignment.
      for (const PublishedCount& total : t.totals) {
        int64_t sum = 0;
        for (const auto& [key, v] : value) {
          auto& [k, a, d] = key;
          if ((total.kind.empty() || total.kind == k) && (total.area.empty() || total.area == a) &&
              (total.decision.empty() || total.decision == d)) {
            sum += v;
          }
        }
        if (total.count && *total.count != sum) return;
        if (!total.count) seen[&total].insert(sum);
      }
      for (const PublishedCount* h : hidden) seen[h].insert(value[{h->kind, h->area, h->decision}]);
      return;
    }
    const PublishedCount* h = hidden[i];
    // No cell exceeds a published total that contains it.
    int64_t bound = grand;
    for (const PublishedCount& total : t.totals) {
      if (total.count && (total.kind.empty() || total.kind == h->kind) &&
          (total.area.empty() || total.area == h->area) &&
          (total.decision.empty() || total.decision == h->decision)) {
        bound = std::min(bound, *total.count);
      }
    }
    for (int64_t v = 1; v <= bound; ++v) {
      value[{h->kind, h->area, h->decision}] = v;
      assign(i + 1);
    }
  };
  assign(0);
  for (const PublishedCount& c : t.cells) {
    if (c.suppression == Suppression::kPrimary) {
      EXPECT_GT(seen[&c].size(), 1u)
          << "cell " << c.kind << "/" << c.area << "/" << c.decision << " can be worked out";
    }
  }
  for (const PublishedCount& c : t.totals) {
    if (c.suppression == Suppression::kPrimary) {
      EXPECT_GT(seen[&c].size(), 1u)
          << "total " << c.kind << "/" << c.area << "/" << c.decision << " can be worked out";
    }
  }
}

TEST(Suppression, RandomSmallTablesNeverRevealASmallNumber) {
  std::mt19937 rng(20240601);
  const std::vector<std::string> kinds = {"flag", "plan"};
  const std::vector<std::string> areas = {"bradford", "cambridgeshire"};
  const std::vector<std::string> decisions = {"permit", "deny"};
  std::uniform_int_distribution<int> pick(0, 9);
  int checked = 0;
  for (int round = 0; round < 100; ++round) {
    std::vector<StatsCell> cells;
    for (const auto& k : kinds) {
      for (const auto& a : areas) {
        for (const auto& d : decisions) {
          int r = pick(rng);
          // Mostly small counts, some zeros, some larger.
          int64_t count = r < 2 ? 0 : r < 7 ? r - 1 : 5 + r;
          cells.push_back({k, a, d, count});
        }
      }
    }
    auto result = SuppressSmallNumbers(cells);
    ASSERT_TRUE(result.ok());
    // Primary suppression is complete.
    for (size_t i = 0; i < cells.size(); ++i) {
      const PublishedCount* c =
          Find(result->cells, cells[i].kind, cells[i].area, cells[i].decision);
      ASSERT_NE(c, nullptr);
      if (cells[i].count >= 1 && cells[i].count <= 4) {
        EXPECT_FALSE(c->count.has_value()) << "round " << round;
      } else if (c->count) {
        EXPECT_EQ(*c->count, cells[i].count);
      }
    }
    // Count suppressed cells: the exhaustive search must stay small.
    size_t hidden = 0;
    for (const PublishedCount& c : result->cells) hidden += c.count ? 0 : 1;
    int64_t grand = 0;
    for (const StatsCell& c : cells) grand += c.count;
    double space = 1;
    for (size_t i = 0; i < hidden; ++i) space *= static_cast<double>(grand);
    if (space > 5e6) continue;
    ExpectNoPrimaryIsDetermined(cells, *result);
    ++checked;
  }
  // Enough tables were small enough to search exhaustively for the test to mean something.
  EXPECT_GE(checked, 10);
}

}  // namespace
}  // namespace safegate::policy
