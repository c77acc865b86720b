// Service-manager notifications (systemd Type=notify, WatchdogSec=).
//
// Notify() sends one state string ("READY=1", "RELOADING=1", "STOPPING=1", "WATCHDOG=1", ...)
// when the NOTIFY_SOCKET environment variable names a socket, and does nothing otherwise or
// when the daemon was built without libsystemd. Failures are ignored: the service manager's
// absence never stops the gateway.
//
// WatchdogInterval() is how often the service manager expects WATCHDOG=1: half the interval
// it set (WATCHDOG_USEC, for this process when WATCHDOG_PID is set), as sd_watchdog_enabled(3)
// advises; zero when no watchdog is asked for.
//
// Thread-safety: may be called from any thread.
#pragma once

#include <chrono>
#include <string>

namespace safegate::server {

void Notify(const std::string& state);

std::chrono::microseconds WatchdogInterval();

}  // namespace safegate::server
