// PeerClient: one HTTPS request from this gateway to a peer gateway (out-of-area transfers),
// over the same mutual TLS rules as the public listener: TLS 1.3, this gateway's own
// certificate as the client certificate, the peer's certificate verified against the CA
// (tls.ca) AND pinned to the SHA-256 fingerprints the registry lists for that peer.
//
// Post() blocks the calling thread (the outbox sender's own thread) for at most `timeout`
// per stage (connect, handshake, write, read); it never throws.
//
// Thread-safety: a PeerClient is immutable after Create; Post may be called from several
// threads at once (each call has its own connection).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.h"
#include "record/status.h"

namespace safegate::server {

struct PeerResponse {
  int status = 0;     // the HTTP status; 0 when no answer came
  std::string body;   // at most 1 MiB
  std::string error;  // why no answer came (connection, TLS, pinning, timeout), for logs
};

class PeerClient {
 public:
  // Loads tls.cert and tls.key (the gateway's certificate: serverAuth and clientAuth) and
  // tls.ca. Errors: kInvalidInput naming the file.
  static Result<std::unique_ptr<PeerClient>> Create(const config::Config::Tls& tls);
  ~PeerClient();
  PeerClient(const PeerClient&) = delete;
  PeerClient& operator=(const PeerClient&) = delete;

  // POSTs `body` as application/octet-stream to `path` under the peer's endpoint.
  PeerResponse Post(const config::Peer& peer, std::string_view path, const std::string& body,
                    std::chrono::milliseconds timeout) const;

  struct Impl;

 private:
  explicit PeerClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "https://host:port[/prefix]" -> host, port, prefix. Errors: kInvalidInput.
struct PeerEndpoint {
  std::string host;
  std::string port;
  std::string prefix;  // "" or "/something" without a trailing slash
};
Result<PeerEndpoint> ParsePeerEndpoint(std::string_view endpoint);

}  // namespace safegate::server
