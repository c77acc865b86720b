// Server: safegated's network side. It owns the public HTTPS listener (mutual TLS, the API of
// docs/api.md), the plain-HTTP admin listener on loopback (/healthz, /metrics), the thread
// pool running one io_context, signal handling (SIGTERM/SIGINT stop, SIGHUP reload), the
// mailbox deadline timer and the structured log.
//
// Lifecycle:
//   auto server = Server::Create(config, registry, gateway, clock);  // binds both listeners
//   server->Run();            // blocks until stopped; returns after the Gateway is shut down
//   (from a signal or another thread) server->RequestStop();
// Run() writes <data_dir>/ports.json ({"listen": P, "admin": P}) once both listeners accept,
// and tells systemd READY=1 when NOTIFY_SOCKET is set.
//
// Ownership: the Gateway and the Clock are not owned and must outlive the Server. Run()
// calls gateway->Shutdown() before it returns.
//
// Thread-safety: RequestStop(), Reload() and the port accessors may be called from any thread.
// Run() is called once.
#pragma once

#include <cstdint>
#include <memory>

#include "config/config.h"
#include "daemon/core/clock.h"
#include "daemon/core/gateway.h"
#include "record/status.h"

namespace safegate::server {

struct ServerOptions {
  // Handle SIGTERM, SIGINT and SIGHUP inside Run(). Tests that run a Server in-process turn
  // this off and call RequestStop()/Reload() themselves.
  bool handle_signals = true;
};

class Server {
 public:
  // Builds the TLS context and the log, and binds both listeners (port 0: the kernel picks).
  // Errors: kInvalidInput for a bad certificate, key, CA or CRL file, or a non-loopback admin
  // address; kUnavailable when an address cannot be bound.
  static Result<std::unique_ptr<Server>> Create(std::shared_ptr<const config::Config> config,
                                                std::shared_ptr<const config::Registry> registry,
                                                Gateway* gateway, const Clock* clock,
                                                ServerOptions options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves on config.threads threads (the calling thread is one of them) until stopped, then
  // drains in-flight requests (bounded by limits.read_timeout), closes idle connections and
  // shuts the Gateway down. Errors: kInternal if ports.json cannot be written.
  Status Run();

  // Stop accepting and shut down as above. Idempotent; returns at once.
  void RequestStop();

  // Re-reads the registry, and the server certificate, key, CA and CRL into a new TLS
  // context for new connections; existing connections keep theirs. On any error nothing
  // changes and the error is returned (and logged). Blocking file I/O: call it off the
  // network threads (the SIGHUP handler does).
  Status Reload();

  uint16_t port() const;        // the public listener's bound port
  uint16_t admin_port() const;  // the admin listener's bound port

  class Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The same checks Create() makes on the TLS files, without binding anything (for
// safegated --check-config). Errors: kInvalidInput naming the key and the file.
Status CheckTlsFiles(const config::Config& config);

}  // namespace safegate::server
