// Synthetic test data for integration tests: NHS numbers in the 999 range reserved for
// testing (valid modulus-11 check digits), and canonical records shaped as in API.md.
// Every person here is made up. Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace safegate::testing {

// The purpose of the pushes in these tests, and of their audit queries.
inline constexpr const char* kPurpose = "safeguarding";
inline constexpr const char* kAuditPurpose = "subject_access";

// A valid NHS number "999" + 6 digits + check digit; distinct serials give distinct numbers
// (serials whose check digit would be 10, which no NHS number may have, are skipped over).
std::string TestNhsNumber(int serial);
// The same number with a wrong check digit.
std::string BadCheckDigit(const std::string& nhs_number);
// "nhs:<number>".
std::string NhsRef(const std::string& nhs_number);

// A CSE-risk flag raised by `agency` (police), about a child with this NHS number.
nlohmann::json CseFlag(const std::string& nhs_number, const std::string& record_id,
                       const std::string& level = "high", int version = 1,
                       const std::string& agency = "wyp");

// The body of POST /v1/records.
nlohmann::json PushBody(const nlohmann::json& record, const std::vector<std::string>& recipients,
                        const std::string& purpose = kPurpose);

}  // namespace safegate::testing
