#include "bench/record_gen.h"

#include <cstdio>

namespace safegate::bench {
namespace {

// Slugs and ids need no escaping in practice; this keeps the output valid JSON whatever
// a caller passes on the command line.
void AppendJsonString(std::string_view s, std::string& out) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(c));
      out += esc;
    } else {
      out += c;
    }
  }
  out += '"';
}


}  // namespace

int NhsCheckDigit(const char (&first9)[9]) {
  int sum = 0;
  for (int i = 0; i < 9; ++i) sum += (first9[i] - '0') * (10 - i);
  int check = 11 - sum % 11;
  if (check == 11) return 0;
  if (check == 10) return -1;
  return check;
}

std::string NhsNumberFor(uint64_t n) {
  // "999" + 5 digits give a prefix; its 9th digit d has weight 2, so d = 0..9 give ten
  // different remainders mod 11 and at most one of them lacks a check digit. Taking the k-th
  // usable d (k < 9) of prefix n / 9 makes the mapping one-to-one over kNhsNumbers values.
  n %= kNhsNumbers;
  char digits[11];
  std::snprintf(digits, sizeof digits, "999%05llu", static_cast<unsigned long long>(n / 9));
  uint64_t k = n % 9;
  for (char d = '0'; d <= '9'; ++d) {
    char first9[9];
    for (int i = 0; i < 8; ++i) first9[i] = digits[i];
    first9[8] = d;
    int check = NhsCheckDigit(first9);
    if (check < 0) continue;
    if (k-- > 0) continue;
    std::string out(first9, 9);
    out += static_cast<char>('0' + check);
    return out;
  }
  return {};  // unreachable: every prefix has at least 9 usable ninth digits
}

void AppendPushBody(const PushTemplate& t, uint64_t n, std::string& out) {
  char seq[32], child[32];
  std::snprintf(seq, sizeof seq, "%010llu", static_cast<unsigned long long>(n));
  uint64_t subject = t.subjects ? n % t.subjects : n;
  std::snprintf(child, sizeof child, "%07llu", static_cast<unsigned long long>(subject));
  out += R"({"record":{"kind":"flag","subject":{"nhs_number":")";
  out += NhsNumberFor(subject);
  out += R"(","given_name":"Synthetic","family_name":"Child)";
  out += child;
  // Dates of birth over 18 years and postcodes over Bradford's districts, as a real caseload
  // spreads them (a shared date of birth or postcode is a linking candidate to be scored).
  char dob[16], postcode[16];
  const uint64_t day = (subject * 7919) % 6570;  // 18 years of days from 2008-01-01
  std::snprintf(dob, sizeof dob, "%04llu-%02llu-%02llu",
                static_cast<unsigned long long>(2008 + day / 365),
                static_cast<unsigned long long>(1 + (day % 365) / 31 % 12),
                static_cast<unsigned long long>(1 + day % 28));
  std::snprintf(postcode, sizeof postcode, "BD%llu %llu%c%c",
                static_cast<unsigned long long>(1 + subject % 22),
                static_cast<unsigned long long>(subject / 22 % 10),
                static_cast<char>('A' + subject / 220 % 26), static_cast<char>('A' + subject / 5720 % 26));
  out += R"(","birth_date":")";
  out += dob;
  out += R"(","postcode":")";
  out += postcode;
  out += R"("},"source":{"agency":)";
  AppendJsonString(t.agency, out);
  out += R"(,"system":)";
  AppendJsonString(t.system, out);
  out += R"(,"record_id":)";
  AppendJsonString("LOAD-" + t.run_id + "-" + seq, out);
  out += R"(,"version":1,"recorded_at":"2024-01-15T09:12:00Z"},)"
         R"("classification":{"special_category":false,"criminal_offence":true,)"
         R"("schedule12a":[1,2,7],"handling":"P"},)"
         R"("body":{"type":"cse_risk","level":"high","status":"active","start":"2024-01-15",)"
         R"("end":null,"review_by":"2024-04-15","owner_agency":)";
  AppendJsonString(t.agency, out);
  out += R"(,"contact":{"office_hours":"01274 000000","out_of_hours":"01274 000001"}}},)"
         R"("purpose":)";
  AppendJsonString(t.purpose, out);
  if (!t.recipients.empty()) {
    out += R"(,"recipients":[)";
    for (size_t i = 0; i < t.recipients.size(); ++i) {
      if (i) out += ',';
      AppendJsonString(t.recipients[i], out);
    }
    out += ']';
  }
  out += '}';
}

std::string PushBody(const PushTemplate& t, uint64_t n) {
  std::string out;
  out.reserve(1024);
  AppendPushBody(t, n, out);
  return out;
}

}  // namespace safegate::bench
