// Synthetic push bodies for the load tool and the micro-benchmarks.
//
// Every body is a valid `POST /v1/records` request (API.md): a canonical flag record whose
// source.record_id is unique per (run id, sequence number), so a push is never an
// idempotent replay of an earlier one, and whose subject carries a synthetic NHS number from
// the 999 range reserved for testing, with a correct modulus-11 check digit.
//
// Thread-safety: pure functions of their arguments.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace safegate::bench {

struct PushTemplate {
  std::string agency = "wyp";          // source.agency and body.owner_agency: the caller's agency
  std::string system = "niche";        // source.system
  std::string purpose = "safeguarding";
  std::vector<std::string> recipients;  // empty: the field is left out (the gateway decides)
  std::string run_id = "run";          // makes record ids unique across runs: [A-Za-z0-9-]
  // Distinct children the records are about: record n is about child n mod subjects (same
  // NHS number and name each time). The default is about one area's children known to CSC.
  uint64_t subjects = 100'000;
};

// How many distinct numbers NhsNumberFor gives before it wraps.
constexpr uint64_t kNhsNumbers = 900'000;

// A valid NHS number of the 999 range (reserved for testing) with a correct modulus-11 check
// digit; one-to-one for n < kNhsNumbers, then it wraps.
std::string NhsNumberFor(uint64_t n);

// The modulus-11 check digit of the first 9 digits, or -1 when no check digit exists.
int NhsCheckDigit(const char (&first9)[9]);

// The JSON push request for sequence number n (compact, about 900 bytes).
std::string PushBody(const PushTemplate& t, uint64_t n);

// Appends the same bytes as PushBody to `out` (lets a caller reuse one buffer).
void AppendPushBody(const PushTemplate& t, uint64_t n, std::string& out);

}  // namespace safegate::bench
