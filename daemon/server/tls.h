// TLS for the public listener, in plain OpenSSL terms (no Asio here).
//
// MakeServerSslCtx builds the one SSL_CTX policy the gateway accepts: TLS 1.3 only, key
// exchange groups X25519, P-256, P-384, a client certificate required and verified against
// tls.ca, revocation checked against tls.crl, no session resumption (every connection is
// fully verified against the CRL in force when it was accepted).
//
// Every OpenSSL failure is turned into words here and nowhere else: OpenSslErrorText for the
// error queue, TranslateHandshakeFailure for a failed handshake.
//
// Thread-safety: pure functions, apart from OpenSSL's per-thread error queue.
#pragma once

#include <memory>
#include <string>

#include <openssl/types.h>

#include "config/config.h"
#include "record/status.h"

namespace safegate::server {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const;
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

// Errors: kInvalidInput naming the config key and file ("tls.crl: /etc/x.pem: no CRL found").
Result<SslCtxPtr> MakeServerSslCtx(const config::Config::Tls& tls);

// SHA-256 of the certificate's DER encoding, lower-case hex without colons (the form the
// registry uses).
std::string Sha256Fingerprint(X509* cert);
// The same for the first certificate of a PEM file. Errors: kInvalidInput.
Result<std::string> FingerprintOfPemFile(const std::string& path);

// Drains this thread's OpenSSL error queue into one line ("" when it is empty).
std::string OpenSslErrorText();

// What the verify callback saw on one connection.
struct PeerVerification {
  bool certificate_seen = false;
  std::string fingerprint;  // of the certificate presented (the chain's end entity)
  int x509_error = 0;       // the first verification error, X509_V_OK (0) when none
  std::string x509_error_text;
};

// To be called from the verify callback with its arguments. Records the presented
// certificate and the first error, and returns `preverified` unchanged: the decision stays
// OpenSSL's.
bool RecordVerification(PeerVerification& peer, bool preverified, X509_STORE_CTX* store);

// A handshake that did not complete, as the network layer saw it.
struct HandshakeError {
  enum class Kind { kTimeout, kTls, kClosed };
  Kind kind = Kind::kTls;
  unsigned long openssl_code = 0;  // packed ERR code, for kTls
  std::string message;             // the error_code's message, for logs
};

// The same failure in the gateway's words.
struct TlsRefusal {
  std::string result;  // safegate_tls_handshakes_total label: rejected, no_certificate,
                       // failed, timeout
  std::string reason;  // safegate_tls_rejections_total label when result is "rejected":
                       // expired, not_yet_valid, revoked, untrusted, revocation_unknown,
                       // wrong_purpose, invalid
  std::string detail;  // for a person ("certificate revoked"); the audit entry's reason
  bool audit = false;  // a certificate was presented and refused: audit tls_rejected
};
TlsRefusal TranslateHandshakeFailure(const HandshakeError& error, const PeerVerification& peer);

}  // namespace safegate::server
