#include "daemon/transfer/settings.h"

#include <utility>
#include <vector>

namespace safegate::transfer {

Result<TransferSettings> SettingsFromConfig(const config::Config::Transfers& transfers) {
  TransferSettings settings;
  settings.deadlines.acceptance_working_days = static_cast<int>(transfers.acceptance_working_days);
  settings.deadlines.conference_working_days = static_cast<int>(transfers.conference_working_days);
  settings.deadlines.escalation_interval_ms = transfers.escalation_interval.count();
  settings.retry_initial_ms = transfers.retry_initial.count();
  settings.retry_max_ms = transfers.retry_max.count();
  if (transfers.bank_holidays) {
    Result<WorkingCalendar> calendar = WorkingCalendar::WithHolidays(*transfers.bank_holidays);
    if (!calendar.ok()) {
      // Name the entries as the configuration does.
      std::vector<Problem> problems;
      for (const Problem& p : calendar.status().problems()) {
        problems.push_back({"transfers." + p.where, p.what});
      }
      return Status::Invalid("transfers.bank_holidays: " + calendar.status().detail(),
                             std::move(problems));
    }
    settings.calendar = std::move(*calendar);
  }
  return settings;
}

}  // namespace safegate::transfer
