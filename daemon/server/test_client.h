// Test support: a small HTTP/1.1 client for the server tests, over TLS 1.3 with an optional
// client certificate (mTLS), or plain TCP for the admin listener. Every operation is
// bounded by the client's timeout, so a test never hangs on a silent server.
//
// Test code only. Not thread-safe: one client per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "record/status.h"

namespace safegate::server::testing {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  bool keep_alive = true;
  // The body as JSON (null when it is not JSON).
  nlohmann::json Json() const;
};

struct ClientIdentity {
  std::string cert;  // PEM file
  std::string key;   // PEM file
};

class TestClient {
 public:
  // Connects to 127.0.0.1:port. With `ca` set, runs a TLS 1.3 handshake verifying the
  // server's certificate against it (and its IP SAN 127.0.0.1), presenting `identity` when
  // given. With TLS 1.3 the server judges the client certificate after the client's side of
  // the handshake is done, so a refused certificate shows up as a failed first request.
  // `max_tls_version` (an OpenSSL constant such as TLS1_2_VERSION; 0 for TLS 1.3 only)
  // lets a test offer an older protocol.
  static Result<std::unique_ptr<TestClient>> Connect(
      uint16_t port, std::optional<std::string> ca, std::optional<ClientIdentity> identity,
      std::chrono::milliseconds timeout = std::chrono::seconds(10), int max_tls_version = 0);
  ~TestClient();

  // Sends one request and reads its response. A body is sent with `content_type` (omitted
  // when empty). `extra` adds or replaces header fields.
  Result<HttpResponse> Request(const std::string& method, const std::string& target,
                               const std::string& body = "",
                               const std::string& content_type = "application/json",
                               const std::map<std::string, std::string>& extra = {});
  // Sends bytes as they are (for malformed or oversized requests).
  Status SendRaw(const std::string& bytes);
  // Reads one response.
  Result<HttpResponse> ReadResponse();
  // Waits up to `bound` for the server to close the connection, discarding any data.
  // True when it closed (end of stream, reset or a TLS alert), false on timeout.
  bool WaitForClose(std::chrono::milliseconds bound);

  struct Impl;

 private:
  explicit TestClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace safegate::server::testing
