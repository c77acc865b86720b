#include "daemon/transfer/settings.h"

#include <gtest/gtest.h>

namespace safegate::transfer {
namespace {

int64_t At(std::string_view rfc3339) {
  const auto ms = ParseTimeMs(rfc3339);
  EXPECT_TRUE(ms.has_value()) << rfc3339;
  return ms.value_or(0);
}

// The configuration's defaults and the library's are written in two places (config cannot
// depend on this library); they must stay the same.
TEST(SettingsFromConfig, DefaultsAreTheLibrarysDefaults) {
  const config::Config::Transfers defaults;
  Result<TransferSettings> s = SettingsFromConfig(defaults);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->deadlines.acceptance_working_days, kDefaultAcceptanceWorkingDays);
  EXPECT_EQ(s->deadlines.conference_working_days, kDefaultConferenceWorkingDays);
  EXPECT_EQ(s->deadlines.escalation_interval_ms, kDefaultEscalationIntervalMs);
  EXPECT_EQ(s->retry_initial_ms, 1000);
  EXPECT_EQ(s->retry_max_ms, 300'000);
  // No list configured: the built-in England and Wales holidays (Christmas 2026 example).
  EXPECT_EQ(s->calendar.LastHolidayYear(), WorkingCalendar().LastHolidayYear());
  EXPECT_EQ(FormatTimeMs(s->calendar.AddWorkingDays(At("2026-12-24T10:00:00Z"), 1)),
            "2026-12-29T10:00:00.000Z");
}

TEST(SettingsFromConfig, ConfiguredValuesAndHolidaysReplaceTheDefaults) {
  config::Config::Transfers t;
  t.acceptance_working_days = 2;
  t.conference_working_days = 10;
  t.escalation_interval = std::chrono::hours(12);
  t.retry_initial = std::chrono::milliseconds(250);
  t.retry_max = std::chrono::minutes(1);
  t.bank_holidays = std::vector<std::string>{"2026-12-29"};
  Result<TransferSettings> s = SettingsFromConfig(t);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->deadlines.acceptance_working_days, 2);
  EXPECT_EQ(s->deadlines.conference_working_days, 10);
  EXPECT_EQ(s->deadlines.escalation_interval_ms, 12 * 3600 * 1000);
  EXPECT_EQ(s->retry_initial_ms, 250);
  EXPECT_EQ(s->retry_max_ms, 60'000);
  // The list replaces the built-in one: Christmas and its substitute day are working days
  // here, the 29th is not.
  EXPECT_TRUE(s->calendar.IsWorkingDay(CivilDate{2026, 12, 25}));
  EXPECT_FALSE(s->calendar.IsWorkingDay(CivilDate{2026, 12, 29}));
  EXPECT_EQ(FormatTimeMs(s->calendar.AddWorkingDays(At("2026-12-24T10:00:00Z"), 1)),
            "2026-12-25T10:00:00.000Z");
  EXPECT_EQ(FormatTimeMs(s->calendar.AddWorkingDays(At("2026-12-28T10:00:00Z"), 1)),
            "2026-12-30T10:00:00.000Z");

  // An empty list: weekends only.
  t.bank_holidays = std::vector<std::string>{};
  s = SettingsFromConfig(t);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->calendar.LastHolidayYear(), std::nullopt);
  EXPECT_TRUE(s->calendar.IsWorkingDay(CivilDate{2026, 12, 25}));
}

TEST(SettingsFromConfig, ABadHolidayIsNamedAsInTheConfiguration) {
  config::Config::Transfers t;
  t.bank_holidays = std::vector<std::string>{"2026-12-25", "2026-02-30"};
  Result<TransferSettings> s = SettingsFromConfig(t);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), ErrorCode::kInvalidInput);
  ASSERT_EQ(s.status().problems().size(), 1u) << s.status().ToString();
  EXPECT_EQ(s.status().problems()[0].where, "transfers.bank_holidays[1]");
}

}  // namespace
}  // namespace safegate::transfer
