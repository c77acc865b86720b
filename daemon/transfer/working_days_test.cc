#include "daemon/transfer/working_days.h"

#include <set>

#include <gtest/gtest.h>

namespace safegate::transfer {
namespace {

int64_t At(std::string_view rfc3339) {
  const auto ms = ParseTimeMs(rfc3339);
  EXPECT_TRUE(ms.has_value()) << rfc3339;
  return ms.value_or(0);
}

TEST(WorkingDays, ChristmasTwentyTwentySix) {
  const WorkingCalendar cal;
  // Thursday 24 December 2026: Christmas Day is a Friday, Boxing Day a Saturday (substitute
  // holiday Monday 28th), so the next working day is Tuesday 29th.
  ASSERT_EQ(IsoWeekday(CivilDate{2026, 12, 24}), 4);
  EXPECT_EQ(FormatTimeMs(cal.AddWorkingDays(At("2026-12-24T10:00:00Z"), 1)),
            "2026-12-29T10:00:00.000Z");
  // The transfer-in conference deadline from the same moment: 15 working days, with New
  // Year's Day 2027 (a Friday) skipped too.
  EXPECT_EQ(FormatTimeMs(cal.AddWorkingDays(At("2026-12-24T10:00:00Z"), 15)),
            "2027-01-19T10:00:00.000Z");
}

TEST(WorkingDays, Weekends) {
  const WorkingCalendar cal;
  // Friday + 1 = Monday; Saturday and Sunday + 1 = Monday; Monday + 5 = next Monday.
  EXPECT_EQ(FormatTimeMs(cal.AddWorkingDays(At("2026-11-20T23:59:59.999Z"), 1)),
            "2026-11-23T23:59:59.999Z");
  EXPECT_EQ(FormatTimeMs(cal.AddWorkingDays(At("2026-11-21T08:00:00Z"), 1)),
            "2026-11-23T08:00:00.000Z");
  EXPECT_EQ(FormatTimeMs(cal.AddWorkingDays(At("2026-11-22T08:00:00Z"), 1)),
            "2026-11-23T08:00:00.000Z");
  EXPECT_EQ(FormatTimeMs(cal.AddWorkingDays(At("2026-11-23T00:00:00Z"), 5)),
            "2026-11-30T00:00:00.000Z");
  EXPECT_EQ(cal.AddWorkingDays(At("2026-11-21T08:00:00Z"), 0), At("2026-11-21T08:00:00Z"));
}

TEST(WorkingDays, Easter) {
  const WorkingCalendar cal;
  // Maundy Thursday 2026 + 1: Good Friday 3 April and Easter Monday 6 April are holidays.
  EXPECT_EQ(FormatTimeMs(cal.AddWorkingDays(At("2026-04-02T12:00:00Z"), 1)),
            "2026-04-07T12:00:00.000Z");
}

TEST(WorkingDays, ConfiguredHolidaysReplaceTheDefault) {
  auto none = WorkingCalendar::WithHolidays({});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(FormatTimeMs(none->AddWorkingDays(At("2026-12-24T10:00:00Z"), 1)),
            "2026-12-25T10:00:00.000Z");
  EXPECT_EQ(none->LastHolidayYear(), std::nullopt);

  auto scotland = WorkingCalendar::WithHolidays({"2026-11-30", "2026-12-25"});
  ASSERT_TRUE(scotland.ok());
  EXPECT_EQ(FormatTimeMs(scotland->AddWorkingDays(At("2026-11-27T09:00:00Z"), 1)),
            "2026-12-01T09:00:00.000Z");
  EXPECT_EQ(scotland->LastHolidayYear(), 2026);

  auto bad = WorkingCalendar::WithHolidays({"2026-12-25", "2026-02-30", "25/12/2026"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidInput);
  ASSERT_EQ(bad.status().problems().size(), 2u);
  EXPECT_EQ(bad.status().problems()[0].where, "bank_holidays[1]");
  EXPECT_EQ(bad.status().problems()[1].where, "bank_holidays[2]");
}

// The default list, checked against the rules that make it (computed here independently):
// New Year's Day, Good Friday, Easter Monday, the first and last Mondays of May, the last
// Monday of August, Christmas and Boxing Day, with weekend days substituted by the next
// weekdays not already holidays.
CivilDate EasterSunday(int y) {  // the anonymous Gregorian algorithm
  const int a = y % 19, b = y / 100, c = y % 100, d = b / 4, e = b % 4, f = (b + 8) / 25;
  const int g = (b - f + 1) / 3, h = (19 * a + b - d - g + 15) % 30, i = c / 4, k = c % 4;
  const int l = (32 + 2 * e + 2 * i - h - k) % 7, m = (a + 11 * h + 22 * l) / 451;
  return CivilDate{y, (h + l - 7 * m + 114) / 31, (h + l - 7 * m + 114) % 31 + 1};
}

std::set<std::string> RuleHolidays(int y) {
  std::set<int64_t> days;
  auto add_substituted = [&](CivilDate date) {
    int64_t d = DaysFromCivil(date);
    while (IsoWeekday(CivilFromDays(d)) > 5 || days.contains(d)) ++d;
    days.insert(d);
  };
  auto monday_on_or_after = [](CivilDate date) {
    int64_t d = DaysFromCivil(date);
    while (IsoWeekday(CivilFromDays(d)) != 1) ++d;
    return d;
  };
  auto last_monday_of = [](int year, int month, int last_day) {
    int64_t d = DaysFromCivil(CivilDate{year, month, last_day});
    while (IsoWeekday(CivilFromDays(d)) != 1) --d;
    return d;
  };
  add_substituted(CivilDate{y, 1, 1});
  const int64_t easter = DaysFromCivil(EasterSunday(y));
  days.insert(easter - 2);
  days.insert(easter + 1);
  days.insert(monday_on_or_after(CivilDate{y, 5, 1}));
  days.insert(last_monday_of(y, 5, 31));
  days.insert(last_monday_of(y, 8, 31));
  add_substituted(CivilDate{y, 12, 25});
  add_substituted(CivilDate{y, 12, 26});
  std::set<std::string> out;
  for (int64_t d : days) out.insert(CivilFromDays(d).ToString());
  return out;
}

TEST(WorkingDays, DefaultHolidaysFollowTheRules) {
  std::set<std::string> expected;
  for (int y = 2025; y <= 2028; ++y) expected.merge(RuleHolidays(y));
  const auto& list = EnglandAndWalesBankHolidays();
  EXPECT_EQ(std::set<std::string>(list.begin(), list.end()), expected);
  EXPECT_EQ(list.size(), 32u);
  const WorkingCalendar cal;
  EXPECT_EQ(cal.LastHolidayYear(), 2028);
  for (const std::string& d : list) {
    const auto date = ParseIsoDate(d);
    ASSERT_TRUE(date.has_value()) << d;
    EXPECT_LE(IsoWeekday(*date), 5) << d << " is a weekend day";
    EXPECT_TRUE(cal.IsHoliday(*date)) << d;
    EXPECT_FALSE(cal.IsWorkingDay(*date)) << d;
  }
}

TEST(WorkingDays, CalendarArithmetic) {
  EXPECT_EQ(DaysFromCivil(CivilDate{1970, 1, 1}), 0);
  EXPECT_EQ(IsoWeekday(CivilDate{1970, 1, 1}), 4);
  EXPECT_EQ(IsoWeekday(CivilDate{1969, 12, 28}), 7);
  for (int64_t d = -800; d < 800000; d += 997) {
    EXPECT_EQ(DaysFromCivil(CivilFromDays(d)), d);
  }
  EXPECT_EQ(CivilFromDays(DaysFromCivil(CivilDate{2028, 2, 29})), (CivilDate{2028, 2, 29}));
  EXPECT_FALSE(ParseIsoDate("2027-02-29").has_value());
  EXPECT_TRUE(ParseIsoDate("2028-02-29").has_value());
  EXPECT_FALSE(ParseIsoDate("2028-2-29").has_value());
}

TEST(WorkingDays, Rfc3339) {
  EXPECT_EQ(FormatTimeMs(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatTimeMs(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(ParseTimeMs("2026-12-24T10:00:00.5Z"), At("2026-12-24T10:00:00.500Z"));
  EXPECT_EQ(ParseTimeMs("2026-12-24T10:00:00.123456789Z"), At("2026-12-24T10:00:00.123Z"));
  const int64_t t = At("2026-12-24T10:11:12.013Z");
  EXPECT_EQ(ParseTimeMs(FormatTimeMs(t)), t);
  for (std::string_view bad :
       {"2026-12-24T10:00:00", "2026-12-24T10:00:00+00:00", "2026-12-24 10:00:00Z",
        "2026-12-24T24:00:00Z", "2026-02-30T10:00:00Z", "2026-12-24T10:00:00.Z",
        "2026-12-24T10:00:00.1234567890Z", "2026-12-24T10:0:00Z", ""}) {
    EXPECT_FALSE(ParseTimeMs(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace safegate::transfer
