// Certificates the gateway depends on, and when each expires: its own server certificate, the
// CA bundle client certificates chain to, and the certificate files of registered agencies
// and peer gateways. Read at start, on reload and daily (server.cc) for three uses: refusing
// to start on an expired server certificate, warning about certificates that expire within
// [tls] expiry_warning, and safegate_certificate_expiry_days on /metrics.
//
// Also the permission check on the TLS private key (the at-rest and signing keys are checked
// by the store when it loads them).
//
// Thread-safety: pure functions (file reads, OpenSSL parsing), callable from any thread.
// They block on file I/O: keep them off the network threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "record/status.h"

namespace safegate::server {

struct CertificateExpiry {
  std::string role;         // "server", "ca", "agency" or "peer"
  std::string name;         // agency id or peer area; the subject's CN for server and CA
  std::string fingerprint;  // SHA-256 of the DER, lower-case hex (tells apart an entity's certs)
  std::string file;         // where it was read
  int64_t not_after_ms = 0;
};

struct CertificateInventory {
  std::vector<CertificateExpiry> certificates;
  std::vector<std::string> problems;  // files that could not be read, with the reason
};

// Reads every certificate named by `config.tls` (cert: the first, the gateway's own; ca:
// each one in the bundle) and by `registry` (each agency's and peer's certificate files;
// fingerprints listed without a file cannot be dated). `registry` may be null.
CertificateInventory ReadCertificates(const config::Config& config,
                                      const config::Registry* registry);

// Whole and fractional days from `now_ms` to the certificate's notAfter (negative once
// expired).
double DaysLeft(const CertificateExpiry& certificate, int64_t now_ms);

// "2026-11-21T18:52:16Z".
std::string FormatUtc(int64_t ms);

// kInvalidInput, naming tls.cert, the file, the subject and the date, when the gateway's own
// certificate (the first in tls.cert) has expired at `now_ms` or cannot be read.
Status CheckServerCertificateCurrent(const config::Config::Tls& tls, int64_t now_ms);

// kInvalidInput when the private key file `path` (config key `key_name`) may be read or
// written by others, or by a group other than this process's own group (a key shared with
// the service's own group, e.g. root:safegate 0640, is accepted).
Status CheckPrivateKeyPermissions(const std::string& path, const std::string& key_name);

}  // namespace safegate::server
