#include "daemon/server/notify.h"

#include <cstdint>
#include <cstdlib>

#ifdef SAFEGATE_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace safegate::server {

void Notify(const std::string& state) {
  if (std::getenv("NOTIFY_SOCKET") == nullptr) return;
#ifdef SAFEGATE_HAVE_SYSTEMD
  (void)sd_notify(/*unset_environment=*/0, state.c_str());
#else
  (void)state;
#endif
}

std::chrono::microseconds WatchdogInterval() {
#ifdef SAFEGATE_HAVE_SYSTEMD
  uint64_t usec = 0;
  if (sd_watchdog_enabled(/*unset_environment=*/0, &usec) > 0 && usec > 0) {
    return std::chrono::microseconds(usec / 2);
  }
#endif
  return std::chrono::microseconds(0);
}

}  // namespace safegate::server
