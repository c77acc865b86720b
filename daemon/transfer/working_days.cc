#include "daemon/transfer/working_days.h"

#include <cassert>
#include <cstdio>

namespace safegate::transfer {
namespace {

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Reads exactly `width` ASCII digits at text[pos]; -1 if any is not a digit.
int Digits(std::string_view text, size_t pos, size_t width) {
  if (pos + width > text.size()) return -1;
  int v = 0;
  for (size_t i = pos; i < pos + width; ++i) {
    if (text[i] < '0' || text[i] > '9') return -1;
    v = v * 10 + (text[i] - '0');
  }
  return v;
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

std::string CivilDate::ToString() const {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", year, month, day);
  return buf;
}

std::optional<CivilDate> ParseIsoDate(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  const int y = Digits(text, 0, 4), m = Digits(text, 5, 2), d = Digits(text, 8, 2);
  if (y < 1 || m < 1 || m > 12 || d < 1 || d > DaysInMonth(y, m)) return std::nullopt;
  return CivilDate{y, m, d};
}

// Howard Hinnant's days_from_civil / civil_from_days (public domain algorithms).
int64_t DaysFromCivil(const CivilDate& date) {
  const int64_t y = date.year - (date.month <= 2 ? 1 : 0);
  const int64_t era = FloorDiv(y, 400);
  const int64_t yoe = y - era * 400;
  const int64_t mp = (date.month + 9) % 12;
  const int64_t doy = (153 * mp + 2) / 5 + date.day - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

CivilDate CivilFromDays(int64_t days) {
  const int64_t z = days + 719468;
  const int64_t era = FloorDiv(z, 146097);
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  const int y = static_cast<int>(yoe + era * 400 + (m <= 2 ? 1 : 0));
  return CivilDate{y, m, d};
}

int IsoWeekday(const CivilDate& date) {
  // 1970-01-01 was a Thursday (ISO 4).
  const int64_t days = DaysFromCivil(date);
  return static_cast<int>((days % 7 + 7 + 3) % 7) + 1;
}

CivilDate UtcDateOf(int64_t ms) { return CivilFromDays(FloorDiv(ms, kMsPerDay)); }

std::string FormatTimeMs(int64_t ms) {
  const int64_t days = FloorDiv(ms, kMsPerDay);
  const int64_t in_day = ms - days * kMsPerDay;
  const CivilDate d = CivilFromDays(days);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", d.year, d.month, d.day,
                static_cast<int>(in_day / 3600000), static_cast<int>(in_day / 60000 % 60),
                static_cast<int>(in_day / 1000 % 60), static_cast<int>(in_day % 1000));
  return buf;
}

std::optional<int64_t> ParseTimeMs(std::string_view text) {
  if (text.size() < 20 || text[10] != 'T' || text.back() != 'Z') return std::nullopt;
  const auto date = ParseIsoDate(text.substr(0, 10));
  if (!date) return std::nullopt;
  if (text[13] != ':' || text[16] != ':') return std::nullopt;
  const int hh = Digits(text, 11, 2), mm = Digits(text, 14, 2), ss = Digits(text, 17, 2);
  if (hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 59) return std::nullopt;
  int frac_ms = 0;
  const size_t end = text.size() - 1;  // position of 'Z'
  if (end != 19) {
    const size_t digits = end - 20;
    if (text[19] != '.' || digits < 1 || digits > 9) return std::nullopt;
    for (size_t i = 20; i < end; ++i) {
      if (text[i] < '0' || text[i] > '9') return std::nullopt;
      if (i < 23) frac_ms = frac_ms * 10 + (text[i] - '0');
    }
    for (size_t i = digits; i < 3; ++i) frac_ms *= 10;
  }
  return DaysFromCivil(*date) * kMsPerDay + (hh * 3600 + mm * 60 + ss) * 1000ll + frac_ms;
}

const std::vector<std::string>& EnglandAndWalesBankHolidays() {
  // gov.uk/bank-holidays. Substitute days: Boxing Day 2026 (Sat) -> Mon 28 Dec; Christmas and
  // Boxing Day 2027 (Sat, Sun) -> Mon 27 and Tue 28 Dec; New Year's Day 2028 (Sat) -> Mon 3 Jan.
  static const std::vector<std::string> kHolidays = {
      // 2025
      "2025-01-01",
      "2025-04-18",
      "2025-04-21",
      "2025-05-05",
      "2025-05-26",
      "2025-08-25",
      "2025-12-25",
      "2025-12-26",
      // 2026
      "2026-01-01",
      "2026-04-03",
      "2026-04-06",
      "2026-05-04",
      "2026-05-25",
      "2026-08-31",
      "2026-12-25",
      "2026-12-28",
      // 2027
      "2027-01-01",
      "2027-03-26",
      "2027-03-29",
      "2027-05-03",
      "2027-05-31",
      "2027-08-30",
      "2027-12-27",
      "2027-12-28",
      // 2028
      "2028-01-03",
      "2028-04-14",
      "2028-04-17",
      "2028-05-01",
      "2028-05-29",
      "2028-08-28",
      "2028-12-25",
      "2028-12-26",
  };
  return kHolidays;
}

WorkingCalendar::WorkingCalendar() {
  for (const std::string& d : EnglandAndWalesBankHolidays()) {
    const auto date = ParseIsoDate(d);
    assert(date.has_value());
    holidays_.insert(DaysFromCivil(*date));
  }
}

Result<WorkingCalendar> WorkingCalendar::WithHolidays(const std::vector<std::string>& iso_dates) {
  std::set<int64_t> days;
  std::vector<Problem> problems;
  for (size_t i = 0; i < iso_dates.size(); ++i) {
    const auto date = ParseIsoDate(iso_dates[i]);
    if (!date) {
      problems.push_back(
          {"bank_holidays[" + std::to_string(i) + "]", "expected a real date written YYYY-MM-DD"});
      continue;
    }
    days.insert(DaysFromCivil(*date));
  }
  if (!problems.empty()) {
    return Status::Invalid(
        "bank holiday list has " + std::to_string(problems.size()) + " bad date(s)",
        std::move(problems));
  }
  return WorkingCalendar(std::move(days));
}

bool WorkingCalendar::IsHoliday(const CivilDate& date) const {
  return holidays_.contains(DaysFromCivil(date));
}

bool WorkingCalendar::IsWorkingDay(const CivilDate& date) const {
  return IsoWeekday(date) <= 5 && !IsHoliday(date);
}

int64_t WorkingCalendar::AddWorkingDays(int64_t utc_ms, int n) const {
  assert(n >= 0);
  int64_t day = FloorDiv(utc_ms, kMsPerDay);
  const int64_t time_of_day = utc_ms - day * kMsPerDay;
  for (int left = n; left > 0;) {
    ++day;
    if (IsWorkingDay(CivilFromDays(day))) --left;
  }
  return day * kMsPerDay + time_of_day;
}

std::optional<int> WorkingCalendar::LastHolidayYear() const {
  if (holidays_.empty()) return std::nullopt;
  return CivilFromDays(*holidays_.rbegin()).year;
}

}  // namespace safegate::transfer
