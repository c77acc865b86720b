// A gateway's transfer settings: the [transfers] section of its configuration
// (config::Config::Transfers, docs/configuration.md) as the transfer library's types.
//
// The configuration loader has already checked every value and reported problems as
// FILE:LINE: KEY: MESSAGE; this turns the checked values into a DeadlineSettings, the
// WorkingCalendar deadlines are counted on, and the outbox's retry bounds. A bank holiday
// list that is not set means the library's built-in England and Wales list.
//
// Thread-safety: a pure function; TransferSettings is a plain value, immutable once built
// (WorkingCalendar is immutable), and may be shared between threads.
#pragma once

#include <cstdint>

#include "config/config.h"
#include "daemon/transfer/working_days.h"
#include "record/status.h"

namespace safegate::transfer {

struct TransferSettings {
  DeadlineSettings deadlines;
  WorkingCalendar calendar;  // weekends and the bank holidays in force
  // Outbox retries to a peer gateway: the first wait, and the longest between attempts.
  int64_t retry_initial_ms = 1000;
  int64_t retry_max_ms = 5 * 60 * 1000;
};

// kInvalidInput, one problem per bad entry at "transfers.bank_holidays[i]", when a holiday
// is not a real "YYYY-MM-DD" date (the loader refuses those first, so only for values that
// did not come through LoadConfig).
Result<TransferSettings> SettingsFromConfig(const config::Config::Transfers& transfers);

}  // namespace safegate::transfer
