// `safegatectl audit ...`: the audit officer's tools (docs/audit-merkle.md, docs/audit-log.md).
//
//   verify       the whole log, against its latest signed tree head: offline from a data
//                directory (read-only, no key), or through the API (GET /v1/audit/verify)
//   prove        an offline-verifiable proof bundle for one entry: through the API (the signed
//                head and the inclusion proof against it) or offline from a data directory
//   check-proof  verifies a bundle with no gateway at all (daemon/audit's VerifyBundleJson)
//   query        GET /v1/audit with filters; every query states its purpose
//   tail         the latest entries, and with --follow, new ones as they are written
//   export       the subject access report of one subject reference, as JSON or as a
//                printable HTML page (subject_report_html.h, docs/subject-access.md)
//
// API commands authenticate with the audit officer's certificate (mutual TLS 1.3); the
// gateway's certificate must chain to --ca and name the URL's host.
//
// Thread-safety: plain functions; each call opens its own connections.
#pragma once

#include <chrono>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "record/status.h"

namespace safegate::ctl {

// Where and as whom to call a gateway's API.
struct ApiEndpoint {
  std::string url;   // https://HOST:PORT
  std::string ca;    // CA bundle (PEM) the gateway's certificate must chain to
  std::string cert;  // the audit agency's client certificate (PEM)
  std::string key;   // its private key (PEM)
  std::chrono::milliseconds timeout{30'000};
};

struct ApiAnswer {
  int status = 0;
  std::string body;
};

// One GET over mutual TLS 1.3 ("Connection: close"). Transport and TLS failures are
// kUnavailable (kInvalidInput for a bad URL or unreadable certificate files), naming what
// failed; any HTTP answer is a value.
Result<ApiAnswer> ApiGet(const ApiEndpoint& endpoint, const std::string& target);

// Percent-encodes a query value (RFC 3986 unreserved characters stay).
std::string QueryEscape(const std::string& value);

// Runs `safegatectl audit ACTION` with its options (--name -> value; flags have value "1")
// and positional arguments after the action. Writes results to `out`, messages to `err`.
// Returns the exit status: 0 success, 1 a check failed (log not intact, proof rejected) or
// the gateway refused, 2 bad usage or unreadable input.
int AuditCommand(const std::string& action, const std::map<std::string, std::string>& options,
                 const std::vector<std::string>& positional, std::ostream& out,
                 std::ostream& err);

}  // namespace safegate::ctl
