// A small blocking HTTPS/1.1 client with mutual TLS for integration tests: one connection
// per request ("Connection: close"), TLS 1.3 only, the server's certificate checked against
// the sandbox CA and 127.0.0.1. It can also send raw bytes (malformed or oversized requests)
// and hold a connection open without sending anything (timeouts).
//
// Transport failures (refused connection, refused handshake, TLS alert, timeout) come back as
// a non-OK Status whose detail carries OpenSSL's words, e.g. "tlsv13 alert certificate
// required"; any HTTP answer, whatever its status, is a value.
//
// Thread-safety: one HttpsClient may be used from several threads at once (each request has
// its own connection; the shared TLS context is only read).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "record/status.h"

namespace safegate::testing {

struct TlsIdentity {
  std::string ca;    // CA bundle the server certificate must chain to
  std::string cert;  // client certificate (PEM); empty: present none
  std::string key;   // its private key
};

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;

  // The body as JSON; a discarded value (is_discarded()) when it is not JSON.
  nlohmann::json Json() const;
  // The "error" code of an error body, or "" when there is none.
  std::string ErrorCode() const;
  // Status and body, for failure messages.
  std::string Describe() const;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

class HttpsClient {
 public:
  // base_url: "https://127.0.0.1:PORT". Loads the identity's files; a missing or bad file
  // makes every request fail with a Status naming it.
  HttpsClient(std::string base_url, TlsIdentity identity,
              std::chrono::milliseconds timeout = std::chrono::seconds(60));
  ~HttpsClient();
  HttpsClient(HttpsClient&&) noexcept;
  HttpsClient& operator=(HttpsClient&&) noexcept;

  Result<HttpResponse> Get(const std::string& target);
  Result<HttpResponse> PostJson(const std::string& target, const nlohmann::json& body);
  // Any method; Host, Connection: close and (when a body is given) Content-Length are added.
  Result<HttpResponse> Request(const std::string& method, const std::string& target,
                               const std::string& body, const Headers& headers = {});
  // Sends `bytes` as they are after the handshake and reads one response.
  Result<HttpResponse> SendRaw(const std::string& bytes);
  // Handshakes, sends `bytes` (may be empty), then reads until the server closes. OK when the
  // server closed (with or without an answer) within `bound`; kUnavailable when it did not.
  // `answer`, when given, receives whatever the server sent.
  Status SendAndWaitForClose(const std::string& bytes, std::chrono::milliseconds bound,
                             std::string* answer = nullptr);

  const std::string& base_url() const { return base_url_; }

 private:
  struct Impl;
  std::string base_url_;
  std::unique_ptr<Impl> impl_;
};

// Connects over plain TCP, sends nothing, and waits for the server to close the connection
// (a client that never starts the handshake). OK when it closed within `bound`.
Status TcpSilentUntilClosed(const std::string& base_url, std::chrono::milliseconds bound);

// Percent-encodes one path segment or query value (RFC 3986 unreserved kept as is).
std::string UrlEncode(const std::string& s);

}  // namespace safegate::testing
