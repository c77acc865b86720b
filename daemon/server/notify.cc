#include "daemon/server/notify.h"

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

}  // namespace safegate::server
