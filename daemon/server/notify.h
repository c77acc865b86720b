// Service-manager readiness notifications (systemd Type=notify).
//
// Notify() sends one state string ("READY=1", "RELOADING=1", "STOPPING=1", ...) when the
// NOTIFY_SOCKET environment variable names a socket, and does nothing otherwise or when the
// daemon was built without libsystemd. Failures are ignored: the service manager's absence
// never stops the gateway.
//
// Thread-safety: may be called from any thread.
#pragma once

#include <string>

namespace safegate::server {

void Notify(const std::string& state);

}  // namespace safegate::server
