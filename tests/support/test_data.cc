#include "tests/support/test_data.h"

namespace safegate::testing {
namespace {

// Modulus 11 over the first nine digits, weights 10..2; 11 becomes 0; 10 means no valid
// number has these nine digits.
int CheckDigit(const std::string& nine) {
  int sum = 0;
  for (int i = 0; i < 9; ++i) sum += (nine[static_cast<size_t>(i)] - '0') * (10 - i);
  int check = 11 - sum % 11;
  return check == 11 ? 0 : check;
}

std::string NineDigits(int serial) {
  std::string digits = std::to_string(serial % 1000000);
  return "999" + std::string(6 - digits.size(), '0') + digits;
}

}  // namespace

std::string TestNhsNumber(int serial) {
  // Map serials onto the nine-digit prefixes that have a check digit, in order.
  int found = -1;
  for (int candidate = 0;; ++candidate) {
    std::string nine = NineDigits(candidate);
    int check = CheckDigit(nine);
    if (check == 10) continue;
    if (++found == serial) return nine + std::to_string(check);
  }
}

std::string BadCheckDigit(const std::string& nhs_number) {
  std::string bad = nhs_number;
  bad[9] = static_cast<char>('0' + (bad[9] - '0' + 1) % 10);
  return bad;
}

std::string NhsRef(const std::string& nhs_number) { return "nhs:" + nhs_number; }

nlohmann::json CseFlag(const std::string& nhs_number, const std::string& record_id,
                       const std::string& level, int version, const std::string& agency) {
  return {
      {"kind", "flag"},
      {"subject",
       {{"nhs_number", nhs_number},
        {"local_ids",
         {{{"system", "csc:bradford"}, {"value", "BRA-" + nhs_number.substr(4)}},
          {{"system", "police:wyp"}, {"value", "N-" + nhs_number.substr(3)}}}},
        {"given_name", "Zephyrine"},
        {"family_name", "Quillfeather"},
        {"birth_date", "2015-06-01"},
        {"postcode", "BD3 9AB"}}},
      {"source",
       {{"agency", agency},
        {"system", "niche"},
        {"record_id", record_id},
        {"version", version},
        {"recorded_at", "2025-10-31T09:12:00Z"}}},
      {"classification",
       {{"special_category", false},
        {"criminal_offence", true},
        {"schedule12a", {1, 2, 7}},
        {"handling", "P"}}},
      {"body",
       {{"type", "cse_risk"},
        {"level", level},
        {"status", "active"},
        {"start", "2025-10-31"},
        {"end", nullptr},
        {"review_by", "2026-01-31"},
        {"owner_agency", agency},
        {"contact",
         {{"office_hours", "01274 000000 (test)"}, {"out_of_hours", "01274 000001 (test)"}}}}},
  };
}

nlohmann::json PushBody(const nlohmann::json& record, const std::vector<std::string>& recipients,
                        const std::string& purpose) {
  return {{"record", record}, {"purpose", purpose}, {"recipients", recipients}};
}

}  // namespace safegate::testing
