// Working days for transfer deadlines: "within 1 working day", "within 15 working days".
//
// A working day is a calendar day that is neither a Saturday, a Sunday nor a bank holiday.
// Days are taken in UTC: an instant's date is its UTC date. (Between 23:00 and midnight UK
// summer time the UK date is one day ahead of the UTC date; deadlines counted in whole
// working days are not meaningfully moved by that, and the rule is the same on every
// gateway, so two areas always compute the same due time.)
//
// Also here: the few UTC calendar and RFC 3339 helpers the transfer library needs, so that it
// depends on neither the store nor the server.
//
// Thread-safety: WorkingCalendar is immutable after construction; share it freely. The free
// functions are pure.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "record/status.h"

namespace safegate::transfer {

// A calendar date in the proleptic Gregorian calendar.
struct CivilDate {
  int year = 1970;
  int month = 1;  // 1..12
  int day = 1;    // 1..31
  auto operator<=>(const CivilDate&) const = default;
  std::string ToString() const;  // "YYYY-MM-DD"
};

// Strict "YYYY-MM-DD" (years 0001..9999, real dates only); nullopt otherwise.
std::optional<CivilDate> ParseIsoDate(std::string_view text);
// Days since 1970-01-01 and back.
int64_t DaysFromCivil(const CivilDate& date);
CivilDate CivilFromDays(int64_t days);
// 1 = Monday .. 7 = Sunday (ISO 8601).
int IsoWeekday(const CivilDate& date);

inline constexpr int64_t kMsPerDay = 24ll * 3600 * 1000;
// The UTC date of an instant (milliseconds since the Unix epoch).
CivilDate UtcDateOf(int64_t ms);

// "YYYY-MM-DDTHH:MM:SS.mmmZ": UTC, always three fraction digits (the API's timestamps).
std::string FormatTimeMs(int64_t ms);
// "YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z" (UTC only; a fraction is truncated to milliseconds).
// nullopt for anything else, including impossible dates and times.
std::optional<int64_t> ParseTimeMs(std::string_view text);

// England and Wales bank holidays 2025 to 2028 (as published on gov.uk, substitute days
// included), ascending ISO dates. The default list of WorkingCalendar.
const std::vector<std::string>& EnglandAndWalesBankHolidays();

class WorkingCalendar {
 public:
  // Weekends and EnglandAndWalesBankHolidays().
  WorkingCalendar();
  // Weekends and exactly these holidays (the list replaces the default, so that an area with
  // other holidays, such as Scotland, configures its own). Errors: kInvalidInput with one
  // problem per entry that is not a real "YYYY-MM-DD" date, where = "bank_holidays[i]".
  static Result<WorkingCalendar> WithHolidays(const std::vector<std::string>& iso_dates);

  bool IsHoliday(const CivilDate& date) const;
  bool IsWorkingDay(const CivilDate& date) const;

  // The instant `n` working days after `utc_ms`: the n-th working day after the instant's
  // date, at the same time of day. A start on a weekend or holiday counts from that day, so
  // Saturday + 1 is Monday. n == 0 returns `utc_ms`. REQUIRES: n >= 0.
  //   Thursday 2026-12-24T10:00Z + 1 = Tuesday 2026-12-29T10:00Z (25th and the 28th, the
  //   substitute for Boxing Day, are holidays; 26th and 27th are a weekend).
  int64_t AddWorkingDays(int64_t utc_ms, int n) const;

  // The last year the holiday list covers (nullopt for an empty list): deadlines after it
  // skip weekends only, and the gateway should warn when that year is near.
  std::optional<int> LastHolidayYear() const;

 private:
  explicit WorkingCalendar(std::set<int64_t> holidays) : holidays_(std::move(holidays)) {}
  std::set<int64_t> holidays_;  // days since 1970-01-01
};

// Transfer deadlines, in working days from the moment the transfer is proposed (the moment
// the receiving area is notified), and how often an unmet deadline is escalated again.
inline constexpr int kDefaultAcceptanceWorkingDays = 1;
inline constexpr int kDefaultConferenceWorkingDays = 15;
inline constexpr int64_t kDefaultEscalationIntervalMs = 24ll * 3600 * 1000;

struct DeadlineSettings {
  // The receiving area's CSC and police both accept (or one declines) within this.
  int acceptance_working_days = kDefaultAcceptanceWorkingDays;
  // The transfer-in child protection conference is held within this (Working Together to
  // Safeguard Children: within 15 working days of notification of the move).
  int conference_working_days = kDefaultConferenceWorkingDays;
  // After a deadline has passed unmet, transfer_escalated is sent again at each interval.
  int64_t escalation_interval_ms = kDefaultEscalationIntervalMs;
};

}  // namespace safegate::transfer
