#include "record/record.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace safegate::record {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

// The example of API.md (all identifiers synthetic; 9434765919 is a valid test number).
json ExampleFlag() {
  return json::parse(R"({
    "kind": "flag",
    "subject": {
      "nhs_number": "9434765919",
      "local_ids": [{"system": "csc:bradford", "value": "BRA-000123"},
                    {"system": "police:wyp", "value": "N-100234"}],
      "given_name": "A", "family_name": "B", "birth_date": "2004-03-01", "postcode": "BD3 9AB"
    },
    "source": {"agency": "wyp", "system": "niche", "record_id": "OCC-2018-001234",
               "version": 1, "recorded_at": "2018-10-31T09:12:00Z"},
    "classification": {"special_category": false, "criminal_offence": true,
                       "schedule12a": [1, 2, 7], "handling": "P"},
    "body": {"type": "cse_risk", "level": "high", "status": "active",
             "start": "2018-10-31", "end": null, "review_by": "2019-01-31",
             "owner_agency": "wyp",
             "contact": {"office_hours": "01274 000000", "out_of_hours": "01274 000001"}}
  })");
}

// A complete, normalised body for each kind (every optional field present).
json FullBody(Kind kind) {
  switch (kind) {
    case Kind::kFlag:
      return ExampleFlag()["body"];
    case Kind::kOccurrence:
      return json::parse(R"({
        "occurrence_type": "CSE concern", "occurred_at": "2018-10-30T22:15:00Z",
        "summary": "Reported seen with adults at an address.\nOfficers attended.",
        "enquiry_log": [{"at": "2018-10-31T08:00:00Z", "text": "Visit made."},
                        {"at": "2018-11-01", "text": "Strategy meeting held."}],
        "outcome": "referred to CSC", "location_postcode": "BD3 9AB"})");
    case Kind::kReferral:
      return json::parse(R"({"referral_date": "2018-10-31", "referral_source": "1A",
        "reason": "Police concern about exploitation.", "to_agency": "bradford-csc",
        "nfa": false})");
    case Kind::kAssessment:
      return json::parse(R"({"assessment_type": "single", "start": "2018-11-01",
        "authorised": "2018-11-20", "factors": ["6A", "2B"], "outcome": "cp_plan"})");
    case Kind::kMissingEpisode:
      return json::parse(R"({"start": "2019-01-05T18:30:00Z", "end": "2019-01-06T07:45:00.500Z",
        "reported_by": "carer",
        "return_interview": {"offered": true, "accepted": true, "date": "2019-01-07"}})");
    case Kind::kPlan:
      return json::parse(R"({"plan_type": "cp", "start": "2018-11-20", "end": null,
        "category_of_abuse": "sexual", "review_dates": ["2019-02-20", "2019-08-20"]})");
  }
  return json::object();
}

// The smallest valid body for each kind (required fields only).
json MinimalBody(Kind kind) {
  switch (kind) {
    case Kind::kFlag:
      return json::parse(R"({"type": "concern", "status": "active", "start": "2020-01-01",
                             "owner_agency": "bthft"})");
    case Kind::kOccurrence:
      return json::parse(
          R"({"occurrence_type": "missing", "occurred_at": "2020-01-01", "summary": "x"})");
    case Kind::kReferral:
      return json::parse(
          R"({"referral_date": "2020-01-01", "referral_source": "3F", "reason": "x"})");
    case Kind::kAssessment:
      return json::parse(R"({"assessment_type": "s47", "start": "2020-01-01"})");
    case Kind::kMissingEpisode:
      return json::parse(R"({"start": "2020-01-01T00:00:00Z", "reported_by": "school"})");
    case Kind::kPlan:
      return json::parse(R"({"plan_type": "lac", "start": "2020-01-01"})");
  }
  return json::object();
}

json WithBody(Kind kind, json body) {
  json r = ExampleFlag();
  r["kind"] = std::string(KindName(kind));
  r["body"] = std::move(body);
  return r;
}

std::string Describe(const Status& s) { return s.ToString(); }

// ---------------------------------------------------------------------------------------------
// NHS numbers

// An independent statement of the rule: weights 10..2 over the first nine digits, check digit
// 11 - (sum mod 11), 11 means 0, 10 means no number may end so.
std::optional<int> ReferenceCheckDigit(const std::string& nine) {
  int sum = 0;
  int weight = 10;
  for (char c : nine) sum += (c - '0') * weight--;
  const int r = 11 - sum % 11;
  if (r == 10) return std::nullopt;
  return r == 11 ? 0 : r;
}

TEST(NhsNumberTest, KnownValidNumbers) {
  EXPECT_TRUE(IsValidNhsNumber("9434765919"));
  EXPECT_TRUE(IsValidNhsNumber("9990000018"));  // 9*10+9*9+9*8+1*2 = 245; 245 mod 11 = 3; 11-3=8
}

TEST(NhsNumberTest, AgreesWithAnIndependentImplementationOverThe999Range) {
  int valid_seen = 0;
  int ten_seen = 0;
  for (int n = 0; n < 2000; ++n) {
    std::string nine = "999" + std::string(6 - std::to_string(n).size(), '0') + std::to_string(n);
    auto check = ReferenceCheckDigit(nine);
    for (int d = 0; d <= 9; ++d) {
      const std::string number = nine + static_cast<char>('0' + d);
      const bool expected = check.has_value() && *check == d;
      ASSERT_EQ(IsValidNhsNumber(number), expected) << number;
    }
    if (check) {
      ++valid_seen;
    } else {
      ++ten_seen;
    }
  }
  EXPECT_GT(valid_seen, 1000);
  EXPECT_GT(ten_seen, 0);  // the remainder-10 case was exercised
}

TEST(NhsNumberTest, RemainderTenIsNeverValid) {
  // Find a nine-digit prefix whose check would be 10 and show no tenth digit makes it valid.
  for (int n = 0; n < 1000; ++n) {
    std::string nine = "999" + std::string(6 - std::to_string(n).size(), '0') + std::to_string(n);
    if (ReferenceCheckDigit(nine)) continue;
    for (char d = '0'; d <= '9'; ++d) EXPECT_FALSE(IsValidNhsNumber(nine + d)) << nine << d;
    return;
  }
  FAIL() << "no remainder-10 prefix found";
}

TEST(NhsNumberTest, RejectsBadShapes) {
  EXPECT_FALSE(IsValidNhsNumber(""));
  EXPECT_FALSE(IsValidNhsNumber("943476591"));    // 9 digits
  EXPECT_FALSE(IsValidNhsNumber("94347659190"));  // 11 digits
  EXPECT_FALSE(IsValidNhsNumber("943476591a"));
  EXPECT_FALSE(IsValidNhsNumber("943 476 5919"));
  EXPECT_FALSE(IsValidNhsNumber("943-476-591"));
  EXPECT_FALSE(IsValidNhsNumber("9434765918"));  // wrong check digit
  EXPECT_FALSE(IsValidNhsNumber(std::string("943476591\0", 10)));
}

// ---------------------------------------------------------------------------------------------
// Field helpers

TEST(FieldTest, Dates) {
  EXPECT_TRUE(IsValidDate("2004-03-01"));
  EXPECT_TRUE(IsValidDate("2024-02-29"));
  EXPECT_TRUE(IsValidDate("2000-02-29"));
  EXPECT_FALSE(IsValidDate("1900-02-29"));
  EXPECT_FALSE(IsValidDate("2023-02-29"));
  EXPECT_FALSE(IsValidDate("2023-04-31"));
  EXPECT_FALSE(IsValidDate("2023-13-01"));
  EXPECT_FALSE(IsValidDate("2023-00-10"));
  EXPECT_FALSE(IsValidDate("2023-01-00"));
  EXPECT_FALSE(IsValidDate("0000-01-01"));
  EXPECT_FALSE(IsValidDate("2023-1-01"));
  EXPECT_FALSE(IsValidDate("2023/01/01"));
  EXPECT_FALSE(IsValidDate("2023-01-01T00:00:00Z"));
  EXPECT_FALSE(IsValidDate(""));
}

TEST(FieldTest, DateTimes) {
  EXPECT_TRUE(IsValidDateTime("2018-10-31T09:12:00Z"));
  EXPECT_TRUE(IsValidDateTime("2018-10-31T09:12:00.123Z"));
  EXPECT_TRUE(IsValidDateTime("2018-10-31T23:59:59.123456789Z"));
  EXPECT_FALSE(IsValidDateTime("2018-10-31T09:12:00.1234567890Z"));
  EXPECT_FALSE(IsValidDateTime("2018-10-31T09:12:00.Z"));
  EXPECT_FALSE(IsValidDateTime("2018-10-31T24:00:00Z"));
  EXPECT_FALSE(IsValidDateTime("2018-10-31T09:60:00Z"));
  EXPECT_FALSE(IsValidDateTime("2018-10-31T09:12:60Z"));
  EXPECT_FALSE(IsValidDateTime("2018-10-31T09:12:00"));
  EXPECT_FALSE(IsValidDateTime("2018-10-31T09:12:00+01:00"));
  EXPECT_FALSE(IsValidDateTime("2018-10-31 09:12:00Z"));
  EXPECT_FALSE(IsValidDateTime("2018-10-31t09:12:00z"));
  EXPECT_FALSE(IsValidDateTime("2018-02-30T09:12:00Z"));
  EXPECT_FALSE(IsValidDateTime("2018-10-31"));
}

TEST(FieldTest, CompareDatesOrdersByTime) {
  EXPECT_LT(CompareDates("2018-10-30", "2018-10-31"), 0);
  EXPECT_EQ(CompareDates("2018-10-31", "2018-10-31T00:00:00Z"), 0);
  EXPECT_LT(CompareDates("2018-10-31", "2018-10-31T00:00:01Z"), 0);
  // Byte order would get this wrong ('.' < 'Z').
  EXPECT_GT(CompareDates("2018-10-31T09:12:00.5Z", "2018-10-31T09:12:00Z"), 0);
  EXPECT_EQ(CompareDates("2018-10-31T09:12:00.5Z", "2018-10-31T09:12:00.500Z"), 0);
}

TEST(FieldTest, Slugs) {
  EXPECT_TRUE(IsSlug("wyp"));
  EXPECT_TRUE(IsSlug("bradford-csc"));
  EXPECT_TRUE(IsSlug("a1"));
  EXPECT_FALSE(IsSlug(""));
  EXPECT_FALSE(IsSlug("WYP"));
  EXPECT_FALSE(IsSlug("bradford_csc"));
  EXPECT_FALSE(IsSlug("a b"));
  EXPECT_FALSE(IsSlug(std::string(65, 'a')));
  EXPECT_TRUE(IsSlug(std::string(64, 'a')));
}

TEST(FieldTest, Postcodes) {
  EXPECT_EQ(NormalisePostcode("BD3 9AB"), "BD3 9AB");
  EXPECT_EQ(NormalisePostcode("bd39ab"), "BD3 9AB");
  EXPECT_EQ(NormalisePostcode("cb2 0qq"), "CB2 0QQ");
  EXPECT_EQ(NormalisePostcode("M1 1AE"), "M1 1AE");
  EXPECT_EQ(NormalisePostcode("B33 8TH"), "B33 8TH");
  EXPECT_EQ(NormalisePostcode("W1A 0AX"), "W1A 0AX");
  EXPECT_EQ(NormalisePostcode("EC1A 1BB"), "EC1A 1BB");
  EXPECT_EQ(NormalisePostcode("gir0aa"), "GIR 0AA");
  EXPECT_EQ(NormalisePostcode("BD3 9A"), std::nullopt);
  EXPECT_EQ(NormalisePostcode("BD3  9AB"), std::nullopt);
  EXPECT_EQ(NormalisePostcode("B D39AB"), std::nullopt);
  EXPECT_EQ(NormalisePostcode("1D3 9AB"), std::nullopt);
  EXPECT_EQ(NormalisePostcode("BD3 AAB"), std::nullopt);
  EXPECT_EQ(NormalisePostcode("BDD3 9AB"), std::nullopt);
  EXPECT_EQ(NormalisePostcode("BD3-9AB"), std::nullopt);
  EXPECT_EQ(NormalisePostcode(""), std::nullopt);
  EXPECT_EQ(NormalisePostcode("ABCDEFGHIJK"), std::nullopt);
}

// ---------------------------------------------------------------------------------------------
// ParseRecord: valid records

TEST(ParseRecordTest, ParsesTheApiExample) {
  auto r = ParseRecord(ExampleFlag());
  ASSERT_TRUE(r.ok()) << Describe(r.status());
  EXPECT_EQ(r->kind, Kind::kFlag);
  EXPECT_EQ(r->subject.nhs_number, "9434765919");
  ASSERT_EQ(r->subject.local_ids.size(), 2u);
  EXPECT_EQ(r->subject.local_ids[1], (LocalId{"police:wyp", "N-100234"}));
  EXPECT_EQ(r->subject.given_name, "A");
  EXPECT_EQ(r->subject.family_name, "B");
  EXPECT_EQ(r->subject.birth_date, "2004-03-01");
  EXPECT_EQ(r->subject.postcode, "BD3 9AB");
  EXPECT_EQ(r->source.agency, "wyp");
  EXPECT_EQ(r->source.system, "niche");
  EXPECT_EQ(r->source.record_id, "OCC-2018-001234");
  EXPECT_EQ(r->source.version, 1);
  EXPECT_EQ(r->source.recorded_at, "2018-10-31T09:12:00Z");
  EXPECT_FALSE(r->classification.special_category);
  EXPECT_TRUE(r->classification.criminal_offence);
  EXPECT_EQ(r->classification.schedule12a, (std::vector<int>{1, 2, 7}));
  EXPECT_EQ(r->classification.handling, "P");
  EXPECT_EQ(r->body["level"], "high");
  EXPECT_TRUE(r->body["end"].is_null());
}

TEST(ParseRecordTest, EveryKindAcceptsFullAndMinimalBodies) {
  for (Kind kind : AllKinds()) {
    SCOPED_TRACE(std::string(KindName(kind)));
    auto full = ParseRecord(WithBody(kind, FullBody(kind)));
    ASSERT_TRUE(full.ok()) << Describe(full.status());
    EXPECT_EQ(full->kind, kind);
    EXPECT_EQ(full->body, FullBody(kind));  // already normalised, so unchanged
    auto minimal = ParseRecord(WithBody(kind, MinimalBody(kind)));
    ASSERT_TRUE(minimal.ok()) << Describe(minimal.status());
  }
}

TEST(ParseRecordTest, KindNamesRoundTrip) {
  std::set<std::string_view> names;
  for (Kind kind : AllKinds()) {
    EXPECT_EQ(ParseKind(KindName(kind)), kind);
    EXPECT_TRUE(names.insert(KindName(kind)).second);
  }
  EXPECT_EQ(AllKinds().size(), 6u);
  EXPECT_EQ(ParseKind("Flag"), std::nullopt);
  EXPECT_EQ(ParseKind(""), std::nullopt);
}

TEST(ParseRecordTest, SubjectNeedsOnlyOneIdentifier) {
  json r = ExampleFlag();
  r["subject"] = {{"nhs_number", "9990000018"}};
  EXPECT_TRUE(ParseRecord(r).ok());
  r["subject"] = {{"local_ids", {{{"system", "csc:cambridgeshire"}, {"value", "C 1"}}}}};
  EXPECT_TRUE(ParseRecord(r).ok()) << Describe(ParseRecord(r).status());
}

TEST(ParseRecordTest, Normalises) {
  json r = ExampleFlag();
  r["subject"]["postcode"] = "bd39ab";
  r["classification"]["schedule12a"] = {7, 1, 2};
  r["body"].erase("end");
  r["body"].erase("level");
  r["body"].erase("review_by");
  auto parsed = ParseRecord(r);
  ASSERT_TRUE(parsed.ok()) << Describe(parsed.status());
  EXPECT_EQ(parsed->subject.postcode, "BD3 9AB");
  EXPECT_EQ(parsed->classification.schedule12a, (std::vector<int>{1, 2, 7}));
  // Nullable fields that are absent are stored as null.
  ASSERT_TRUE(parsed->body.contains("end"));
  EXPECT_TRUE(parsed->body["end"].is_null());
  EXPECT_TRUE(parsed->body["level"].is_null());
  EXPECT_TRUE(parsed->body["review_by"].is_null());

  json occ = WithBody(Kind::kOccurrence, FullBody(Kind::kOccurrence));
  occ["body"]["location_postcode"] = "cb20qq";
  auto p2 = ParseRecord(occ);
  ASSERT_TRUE(p2.ok()) << Describe(p2.status());
  EXPECT_EQ(p2->body["location_postcode"], "CB2 0QQ");
}

TEST(ParseRecordTest, AcceptsLargeVersionsAndEmptySchedule12a) {
  json r = ExampleFlag();
  r["source"]["version"] = 9223372036854775807LL;
  r["classification"]["schedule12a"] = json::array();
  auto parsed = ParseRecord(r);
  ASSERT_TRUE(parsed.ok()) << Describe(parsed.status());
  EXPECT_EQ(parsed->source.version, 9223372036854775807LL);
  EXPECT_TRUE(parsed->classification.schedule12a.empty());
}

// ---------------------------------------------------------------------------------------------
// ParseRecord: every kind of problem, with its pointer

struct BadCase {
  std::string name;
  Kind kind;                  // which valid record to start from (full body)
  std::string pointer;        // where to change it
  std::optional<json> value;  // nullopt: remove the field
  std::string where;          // expected problem pointer (under "/record")
  std::string what;           // expected substring of the problem text
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class ProblemTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(ProblemTest, ReportsExactlyOneProblemAtThePointer) {
  const BadCase& c = GetParam();
  json r = WithBody(c.kind, FullBody(c.kind));
  const json::json_pointer ptr(c.pointer);
  if (c.value) {
    r[ptr] = *c.value;
  } else {
    r[ptr.parent_pointer()].erase(ptr.back());
  }
  auto parsed = ParseRecord(r, "/record");
  ASSERT_FALSE(parsed.ok()) << r.dump();
  EXPECT_EQ(parsed.status().code(), ErrorCode::kInvalidInput);
  EXPECT_EQ(parsed.status().detail(), "record has 1 problem") << Describe(parsed.status());
  ASSERT_EQ(parsed.status().problems().size(), 1u) << Describe(parsed.status());
  const Problem& p = parsed.status().problems()[0];
  EXPECT_EQ(p.where, c.where);
  EXPECT_THAT(p.what, HasSubstr(c.what));
}

const std::string kLong65(65, 'x');
const std::string kLong101(101, 'x');
const std::string kLong129(129, 'x');

std::vector<BadCase> BadCases() {
  const Kind F = Kind::kFlag;
  std::vector<BadCase> v = {
      // Top level.
      {"missing_kind", F, "/kind", std::nullopt, "/record/kind", "required field missing"},
      {"missing_subject", F, "/subject", std::nullopt, "/record/subject", "required field missing"},
      {"missing_source", F, "/source", std::nullopt, "/record/source", "required field missing"},
      {"missing_classification", F, "/classification", std::nullopt, "/record/classification",
       "required field missing"},
      {"missing_body", F, "/body", std::nullopt, "/record/body", "required field missing"},
      {"unknown_top", F, "/extra", json(1), "/record/extra", "unknown field"},
      {"unknown_key_escaped", F, "/a~1b", json(1), "/record/a~1b", "unknown field"},
      {"kind_type", F, "/kind", json(3), "/record/kind", "expected string, got integer"},
      {"kind_enum", F, "/kind", json("note"), "/record/kind", "must be one of"},
      {"subject_type", F, "/subject", json("x"), "/record/subject", "expected object, got string"},
      {"source_type", F, "/source", json::array(), "/record/source", "expected object, got array"},
      {"classification_type", F, "/classification", json(nullptr), "/record/classification",
       "expected object, got null"},
      {"body_type", F, "/body", json(true), "/record/body", "expected object, got bool"},
      // Subject.
      {"subject_no_identifier", F, "/subject", json({{"given_name", "A"}}), "/record/subject",
       "needs an identifier"},
      {"subject_unknown", F, "/subject/ethnicity", json("x"), "/record/subject/ethnicity",
       "unknown field"},
      {"nhs_type", F, "/subject/nhs_number", json(9434765919LL), "/record/subject/nhs_number",
       "expected string, got integer"},
      {"nhs_check", F, "/subject/nhs_number", json("9434765918"), "/record/subject/nhs_number",
       "check digit"},
      {"nhs_length", F, "/subject/nhs_number", json("943476591"), "/record/subject/nhs_number",
       "10 digits"},
      {"nhs_nondigit", F, "/subject/nhs_number", json("94347659x9"), "/record/subject/nhs_number",
       "10 digits"},
      {"local_ids_type", F, "/subject/local_ids", json("x"), "/record/subject/local_ids",
       "expected array, got string"},
      {"local_id_type", F, "/subject/local_ids/1", json(5), "/record/subject/local_ids/1",
       "expected object, got integer"},
      {"local_id_system_missing", F, "/subject/local_ids/0/system", std::nullopt,
       "/record/subject/local_ids/0/system", "required field missing"},
      {"local_id_value_missing", F, "/subject/local_ids/1/value", std::nullopt,
       "/record/subject/local_ids/1/value", "required field missing"},
      {"local_id_unknown", F, "/subject/local_ids/0/type", json("x"),
       "/record/subject/local_ids/0/type", "unknown field"},
      {"local_id_system_prefix", F, "/subject/local_ids/0/system", json("nhs:bradford"),
       "/record/subject/local_ids/0/system", "csc:<area>"},
      {"local_id_system_slug", F, "/subject/local_ids/0/system", json("csc:Bradford"),
       "/record/subject/local_ids/0/system", "slug"},
      {"local_id_system_bare", F, "/subject/local_ids/0/system", json("csc"),
       "/record/subject/local_ids/0/system", "csc:<area>"},
      {"local_id_value_empty", F, "/subject/local_ids/0/value", json(""),
       "/record/subject/local_ids/0/value", "must not be empty"},
      {"local_id_value_long", F, "/subject/local_ids/0/value", json(kLong65),
       "/record/subject/local_ids/0/value", "longer than 64"},
      {"local_id_value_control", F, "/subject/local_ids/0/value", json("A\tB"),
       "/record/subject/local_ids/0/value", "printable"},
      {"local_id_duplicate", F, "/subject/local_ids/1",
       json({{"system", "csc:bradford"}, {"value", "BRA-000123"}}), "/record/subject/local_ids/1",
       "duplicate"},
      {"given_name_type", F, "/subject/given_name", json(1), "/record/subject/given_name",
       "expected string"},
      {"given_name_long", F, "/subject/given_name", json(kLong101), "/record/subject/given_name",
       "longer than 100"},
      {"family_name_empty", F, "/subject/family_name", json(""), "/record/subject/family_name",
       "must not be empty"},
      {"family_name_newline", F, "/subject/family_name", json("B\nC"),
       "/record/subject/family_name", "one line"},
      {"family_name_blank", F, "/subject/family_name", json("   "), "/record/subject/family_name",
       "blank"},
      {"birth_date_bad", F, "/subject/birth_date", json("2004-02-30"), "/record/subject/birth_date",
       "calendar date"},
      {"postcode_bad", F, "/subject/postcode", json("BD3"), "/record/subject/postcode",
       "UK postcode"},
      {"postcode_null", F, "/subject/postcode", json(nullptr), "/record/subject/postcode",
       "expected string, got null"},
      // Source.
      {"agency_missing", F, "/source/agency", std::nullopt, "/record/source/agency",
       "required field missing"},
      {"agency_slug", F, "/source/agency", json("West Yorks"), "/record/source/agency", "slug"},
      {"system_empty", F, "/source/system", json(""), "/record/source/system", "empty"},
      {"system_missing", F, "/source/system", std::nullopt, "/record/source/system",
       "required field missing"},
      {"record_id_long", F, "/source/record_id", json(kLong129), "/record/source/record_id",
       "longer than 128"},
      {"record_id_empty", F, "/source/record_id", json(""), "/record/source/record_id", "empty"},
      {"version_zero", F, "/source/version", json(0), "/record/source/version", "at least 1"},
      {"version_negative", F, "/source/version", json(-3), "/record/source/version", "at least 1"},
      {"version_float", F, "/source/version", json(1.5), "/record/source/version",
       "expected integer, got number with a fraction"},
      {"version_float_integral", F, "/source/version", json(1.0), "/record/source/version",
       "expected integer"},
      {"version_string", F, "/source/version", json("1"), "/record/source/version",
       "expected integer, got string"},
      {"version_huge", F, "/source/version", json(18446744073709551615ULL),
       "/record/source/version", "out of range"},
      {"recorded_at_offset", F, "/source/recorded_at", json("2018-10-31T09:12:00+00:00"),
       "/record/source/recorded_at", "UTC date and time"},
      {"recorded_at_date", F, "/source/recorded_at", json("2018-10-31"),
       "/record/source/recorded_at", "UTC date and time"},
      {"source_unknown", F, "/source/owner", json("x"), "/record/source/owner", "unknown field"},
      // Classification.
      {"special_missing", F, "/classification/special_category", std::nullopt,
       "/record/classification/special_category", "required field missing"},
      {"special_type", F, "/classification/special_category", json("false"),
       "/record/classification/special_category", "expected bool, got string"},
      {"criminal_type", F, "/classification/criminal_offence", json(1),
       "/record/classification/criminal_offence", "expected bool, got integer"},
      {"sch12a_missing", F, "/classification/schedule12a", std::nullopt,
       "/record/classification/schedule12a", "required field missing"},
      {"sch12a_type", F, "/classification/schedule12a", json(1),
       "/record/classification/schedule12a", "expected array"},
      {"sch12a_range", F, "/classification/schedule12a/1", json(8),
       "/record/classification/schedule12a/1", "1 to 7"},
      {"sch12a_zero", F, "/classification/schedule12a/0", json(0),
       "/record/classification/schedule12a/0", "1 to 7"},
      {"sch12a_dup", F, "/classification/schedule12a/2", json(1),
       "/record/classification/schedule12a/2", "duplicate paragraph 1"},
      {"sch12a_item_type", F, "/classification/schedule12a/0", json("1"),
       "/record/classification/schedule12a/0", "expected integer, got string"},
      {"handling_enum", F, "/classification/handling", json("p"), "/record/classification/handling",
       "\"P\" or \"C\""},
      {"handling_missing", F, "/classification/handling", std::nullopt,
       "/record/classification/handling", "required field missing"},
      {"classification_unknown", F, "/classification/grade", json("B2"),
       "/record/classification/grade", "unknown field"},
      // Flag body.
      {"flag_type", F, "/body/type", json("cse"), "/record/body/type", "must be one of"},
      {"flag_type_missing", F, "/body/type", std::nullopt, "/record/body/type",
       "required field missing"},
      {"flag_level", F, "/body/level", json("severe"), "/record/body/level", "\"low\""},
      {"flag_level_type", F, "/body/level", json(3), "/record/body/level",
       "expected string, got integer"},
      {"flag_status", F, "/body/status", json("closed"), "/record/body/status", "must be one of"},
      {"flag_start_missing", F, "/body/start", std::nullopt, "/record/body/start",
       "required field missing"},
      {"flag_start_bad", F, "/body/start", json("31/10/2018"), "/record/body/start",
       "calendar date"},
      {"flag_start_null", F, "/body/start", json(nullptr), "/record/body/start",
       "expected string, got null"},
      {"flag_end_before_start", F, "/body/end", json("2018-10-30"), "/record/body/end",
       "must not be before start"},
      {"flag_review_bad", F, "/body/review_by", json("2019-02-29"), "/record/body/review_by",
       "calendar date"},
      {"flag_owner", F, "/body/owner_agency", json("WYP"), "/record/body/owner_agency", "slug"},
      {"flag_contact_type", F, "/body/contact", json("01274"), "/record/body/contact",
       "expected object, got string"},
      {"flag_contact_unknown", F, "/body/contact/email", json("x@example.org"),
       "/record/body/contact/email", "unknown field"},
      {"flag_contact_value", F, "/body/contact/office_hours", json(1274000000),
       "/record/body/contact/office_hours", "expected string"},
      {"flag_note_null", F, "/body/note", json(nullptr), "/record/body/note",
       "expected string, got null"},
      {"flag_unknown", F, "/body/grade", json("high"), "/record/body/grade", "unknown field"},
      // Occurrence body.
      {"occ_type_missing", Kind::kOccurrence, "/body/occurrence_type", std::nullopt,
       "/record/body/occurrence_type", "required field missing"},
      {"occ_at_bad", Kind::kOccurrence, "/body/occurred_at", json("2018-10-30 22:15"),
       "/record/body/occurred_at", "calendar date YYYY-MM-DD or a UTC date and time"},
      {"occ_summary_empty", Kind::kOccurrence, "/body/summary", json(""), "/record/body/summary",
       "empty"},
      {"occ_summary_control", Kind::kOccurrence, "/body/summary", json(std::string("a\x01") + "b"),
       "/record/body/summary", "control characters"},
      {"occ_log_type", Kind::kOccurrence, "/body/enquiry_log", json::object(),
       "/record/body/enquiry_log", "expected array, got object"},
      {"occ_log_item_type", Kind::kOccurrence, "/body/enquiry_log/1", json("x"),
       "/record/body/enquiry_log/1", "expected object, got string"},
      {"occ_log_at", Kind::kOccurrence, "/body/enquiry_log/1/at", json("yesterday"),
       "/record/body/enquiry_log/1/at", "calendar date"},
      {"occ_log_text_missing", Kind::kOccurrence, "/body/enquiry_log/0/text", std::nullopt,
       "/record/body/enquiry_log/0/text", "required field missing"},
      {"occ_log_unknown", Kind::kOccurrence, "/body/enquiry_log/0/officer", json("PC 1"),
       "/record/body/enquiry_log/0/officer", "unknown field"},
      {"occ_outcome_long", Kind::kOccurrence, "/body/outcome", json(std::string(201, 'o')),
       "/record/body/outcome", "longer than 200"},
      {"occ_postcode", Kind::kOccurrence, "/body/location_postcode", json("nowhere"),
       "/record/body/location_postcode", "UK postcode"},
      {"occ_flag_field", Kind::kOccurrence, "/body/level", json("high"), "/record/body/level",
       "unknown field"},
      // Referral body.
      {"ref_date", Kind::kReferral, "/body/referral_date", json("2018-10"),
       "/record/body/referral_date", "calendar date"},
      {"ref_source_code", Kind::kReferral, "/body/referral_source", json("the police"),
       "/record/body/referral_source", "must be a code"},
      {"ref_reason_missing", Kind::kReferral, "/body/reason", std::nullopt, "/record/body/reason",
       "required field missing"},
      {"ref_to_agency", Kind::kReferral, "/body/to_agency", json("Bradford CSC"),
       "/record/body/to_agency", "slug"},
      {"ref_nfa_type", Kind::kReferral, "/body/nfa", json("no"), "/record/body/nfa",
       "expected bool, got string"},
      // Assessment body.
      {"ass_type_missing", Kind::kAssessment, "/body/assessment_type", std::nullopt,
       "/record/body/assessment_type", "required field missing"},
      {"ass_authorised_before", Kind::kAssessment, "/body/authorised", json("2018-10-01"),
       "/record/body/authorised", "must not be before start"},
      {"ass_factors_type", Kind::kAssessment, "/body/factors", json("6A"), "/record/body/factors",
       "expected array, got string"},
      {"ass_factor_item", Kind::kAssessment, "/body/factors/1", json(6), "/record/body/factors/1",
       "expected string, got integer"},
      // Missing episode body.
      {"miss_start_date_only", Kind::kMissingEpisode, "/body/start", json("2019-01-05"),
       "/record/body/start", "UTC date and time"},
      {"miss_end_before", Kind::kMissingEpisode, "/body/end", json("2019-01-05T18:29:59.999Z"),
       "/record/body/end", "must not be before start"},
      {"miss_reported_by", Kind::kMissingEpisode, "/body/reported_by", json(nullptr),
       "/record/body/reported_by", "expected string, got null"},
      {"miss_ri_offered", Kind::kMissingEpisode, "/body/return_interview/offered", std::nullopt,
       "/record/body/return_interview/offered", "required field missing"},
      {"miss_ri_accepted_without_offer", Kind::kMissingEpisode, "/body/return_interview/offered",
       json(false), "/record/body/return_interview/accepted", "offered is false"},
      {"miss_ri_date", Kind::kMissingEpisode, "/body/return_interview/date", json("soon"),
       "/record/body/return_interview/date", "calendar date"},
      {"miss_ri_unknown", Kind::kMissingEpisode, "/body/return_interview/by", json("x"),
       "/record/body/return_interview/by", "unknown field"},
      // Plan body.
      {"plan_type", Kind::kPlan, "/body/plan_type", json("cpp"), "/record/body/plan_type",
       "\"unborn_cp\""},
      {"plan_end_before", Kind::kPlan, "/body/end", json("2018-11-19"), "/record/body/end",
       "must not be before start"},
      {"plan_category", Kind::kPlan, "/body/category_of_abuse", json("other"),
       "/record/body/category_of_abuse", "\"neglect\""},
      {"plan_category_null", Kind::kPlan, "/body/category_of_abuse", json(nullptr),
       "/record/body/category_of_abuse", "expected string, got null"},
      {"plan_review_item", Kind::kPlan, "/body/review_dates/0", json("2019-02-31"),
       "/record/body/review_dates/0", "calendar date"},
  };
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, ProblemTest, ::testing::ValuesIn(BadCases()),
                         [](const ::testing::TestParamInfo<BadCase>& param_info) {
                           return param_info.param.name;
                         });

// ---------------------------------------------------------------------------------------------
// CheckRecord: the same answer as ParseRecord(ToJson(record)) for records built in code

// CheckRecord and the JSON round trip agree: both valid with equal records, or both invalid
// with the same detail and the same problems in the same order.
void ExpectSameAsRoundTrip(const Record& r) {
  const json emitted = ToJson(r);
  SCOPED_TRACE(emitted.dump(-1, ' ', false, json::error_handler_t::replace));
  auto direct = CheckRecord(r, "/record");
  auto round_trip = ParseRecord(emitted, "/record");
  ASSERT_EQ(direct.ok(), round_trip.ok())
      << (direct.ok() ? Describe(round_trip.status()) : Describe(direct.status()));
  if (round_trip.ok()) {
    EXPECT_EQ(*direct, *round_trip);
    return;
  }
  EXPECT_EQ(direct.status().code(), round_trip.status().code());
  EXPECT_EQ(direct.status().detail(), round_trip.status().detail());
  const auto& a = direct.status().problems();
  const auto& b = round_trip.status().problems();
  ASSERT_EQ(a.size(), b.size()) << Describe(direct.status()) << "\nvs\n"
                                << Describe(round_trip.status());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].where, b[i].where);
    EXPECT_EQ(a[i].what, b[i].what);
  }
}

Record ValidRecord(Kind kind, const json& body) {
  auto r = ParseRecord(WithBody(kind, body));
  EXPECT_TRUE(r.ok()) << Describe(r.status());
  return r.ok() ? *r : Record{};
}

TEST(CheckRecordTest, ValidRecordsOfEveryKind) {
  for (Kind kind : AllKinds()) {
    for (const json& body : {FullBody(kind), MinimalBody(kind)}) {
      const Record r = ValidRecord(kind, body);
      auto checked = CheckRecord(r);
      ASSERT_TRUE(checked.ok()) << Describe(checked.status());
      ExpectSameAsRoundTrip(r);
    }
  }
}

TEST(CheckRecordTest, NormalisesAsParseRecordDoes) {
  Record r = ValidRecord(Kind::kOccurrence, FullBody(Kind::kOccurrence));
  r.subject.postcode = "bd39ab";
  r.body["location_postcode"] = "bd3 9ab";
  r.classification.schedule12a = {7, 1, 2};
  auto checked = CheckRecord(r);
  ASSERT_TRUE(checked.ok()) << Describe(checked.status());
  EXPECT_EQ(checked->subject.postcode, "BD3 9AB");
  EXPECT_EQ(checked->body["location_postcode"], "BD3 9AB");
  EXPECT_EQ(checked->classification.schedule12a, (std::vector<int>{1, 2, 7}));
  ExpectSameAsRoundTrip(r);

  Record flag = ValidRecord(Kind::kFlag, MinimalBody(Kind::kFlag));
  flag.body.erase("level");  // nullable and absent: becomes null
  auto checked_flag = CheckRecord(flag);
  ASSERT_TRUE(checked_flag.ok());
  EXPECT_TRUE(checked_flag->body.at("level").is_null());
  ExpectSameAsRoundTrip(flag);
}

TEST(CheckRecordTest, EnvelopeProblemsMatchTheRoundTrip) {
  const Record base = ValidRecord(Kind::kFlag, FullBody(Kind::kFlag));
  std::vector<std::function<void(Record&)>> changes = {
      [](Record& r) { r.subject.nhs_number = "9434765918"; },
      [](Record& r) { r.subject.nhs_number = "94347"; },
      [](Record& r) { r.subject.nhs_number = ""; },
      [](Record& r) { r.subject.nhs_number.reset(); },
      [](Record& r) {
        r.subject.nhs_number.reset();
        r.subject.local_ids.clear();
      },
      [](Record& r) { r.subject.local_ids[0].system = "csc:Bradford"; },
      [](Record& r) { r.subject.local_ids[0].system = "nhs"; },
      [](Record& r) { r.subject.local_ids[1].value = ""; },
      [](Record& r) { r.subject.local_ids[1].value = " N-1"; },
      [](Record& r) { r.subject.local_ids[1].value = kLong65; },
      [](Record& r) { r.subject.local_ids[1] = r.subject.local_ids[0]; },
      [](Record& r) {
        r.subject.local_ids.push_back(r.subject.local_ids[0]);
        r.subject.local_ids.push_back(r.subject.local_ids[0]);
        r.subject.local_ids[0].system = "bad";
      },
      [](Record& r) { r.subject.local_ids.assign(1001, {"police:wyp", "N-1"}); },
      [](Record& r) { r.subject.given_name = ""; },
      [](Record& r) { r.subject.given_name = "A\nB"; },
      [](Record& r) { r.subject.family_name = kLong101; },
      [](Record& r) { r.subject.family_name = "\xff"; },
      [](Record& r) { r.subject.birth_date = "2001-02-30"; },
      [](Record& r) { r.subject.postcode = "nowhere"; },
      [](Record& r) { r.source.agency = "WYP"; },
      [](Record& r) { r.source.system = ""; },
      [](Record& r) { r.source.record_id = kLong129; },
      [](Record& r) { r.source.record_id = "id "; },
      [](Record& r) { r.source.version = 0; },
      [](Record& r) { r.source.recorded_at = "2018-10-31"; },
      [](Record& r) { r.classification.schedule12a = {0, 2}; },
      [](Record& r) { r.classification.schedule12a = {2, 2, 8}; },
      [](Record& r) { r.classification.schedule12a.clear(); },
      [](Record& r) { r.classification.handling = "X"; },
      [](Record& r) { r.body = json::array(); },
      [](Record& r) { r.body = json::object(); },
      [](Record& r) { r.kind = Kind::kPlan; },  // a flag's body under another kind
      [](Record& r) {
        r.subject.nhs_number = "1";
        r.source.version = -1;
        r.classification.handling = "";
        r.body["level"] = "extreme";
        r.body["colour"] = "red";
      },
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    SCOPED_TRACE("change " + std::to_string(i));
    Record r = base;
    changes[i](r);
    ExpectSameAsRoundTrip(r);
  }
}

TEST(CheckRecordTest, BodyProblemsMatchTheRoundTrip) {
  size_t body_cases = 0;
  for (const BadCase& c : BadCases()) {
    if (!c.pointer.starts_with("/body/")) continue;
    SCOPED_TRACE(c.name);
    ++body_cases;
    Record r = ValidRecord(c.kind, FullBody(c.kind));
    const json::json_pointer ptr(c.pointer.substr(std::string("/body").size()));
    if (c.value) {
      r.body[ptr] = *c.value;
    } else {
      r.body[ptr.parent_pointer()].erase(ptr.back());
    }
    ExpectSameAsRoundTrip(r);
  }
  EXPECT_GT(body_cases, 20u);
  // A field that fails its own check takes no part in the order checks, as in ParseRecord.
  Record r = ValidRecord(Kind::kFlag, FullBody(Kind::kFlag));
  r.body["start"] = "2018-10-31T00:00:00Z";  // a date-time where a date belongs
  r.body["end"] = "2018-01-01";
  ExpectSameAsRoundTrip(r);
}

TEST(ParseRecordTest, ReportsEveryProblemInOneRecord) {
  json r = ExampleFlag();
  r["kind"] = "flag";
  r["subject"]["nhs_number"] = "1234567890";            // bad check digit
  r["subject"]["local_ids"][0]["system"] = "social:x";  // bad system
  r["source"].erase("version");                         // missing
  r["source"]["recorded_at"] = 17;                      // wrong type
  r["classification"]["schedule12a"] = {1, 9};          // out of range
  r["body"]["level"] = "extreme";                       // bad enum
  r["body"]["colour"] = "red";                          // unknown
  r["trailer"] = true;                                  // unknown
  auto parsed = ParseRecord(r, "/record");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().detail(), "record has 8 problems");
  std::set<std::string> wheres;
  for (const Problem& p : parsed.status().problems()) wheres.insert(p.where);
  EXPECT_EQ(wheres, (std::set<std::string>{
                        "/record/subject/nhs_number", "/record/subject/local_ids/0/system",
                        "/record/source/version", "/record/source/recorded_at",
                        "/record/classification/schedule12a/1", "/record/body/level",
                        "/record/body/colour", "/record/trailer"}));
}

TEST(ParseRecordTest, RootThatIsNotAnObject) {
  for (const json& v : {json(nullptr), json::array(), json("x"), json(1)}) {
    auto parsed = ParseRecord(v, "/record");
    ASSERT_FALSE(parsed.ok());
    ASSERT_EQ(parsed.status().problems().size(), 1u);
    EXPECT_EQ(parsed.status().problems()[0].where, "/record");
    EXPECT_THAT(parsed.status().problems()[0].what, HasSubstr("expected object"));
  }
  auto no_prefix = ParseRecord(json::array());
  ASSERT_FALSE(no_prefix.ok());
  EXPECT_EQ(no_prefix.status().problems()[0].where, "");  // RFC 6901: the whole document
}

TEST(ParseRecordTest, EmptyObjectReportsEachRequiredField) {
  auto parsed = ParseRecord(json::object());
  ASSERT_FALSE(parsed.ok());
  std::vector<std::string> wheres;
  for (const Problem& p : parsed.status().problems()) wheres.push_back(p.where);
  EXPECT_THAT(wheres, ::testing::UnorderedElementsAre("/kind", "/subject", "/source",
                                                      "/classification", "/body"));
}

TEST(ParseRecordTest, UnknownKindSkipsBodyFields) {
  json r = ExampleFlag();
  r["kind"] = "warning";
  auto parsed = ParseRecord(r);
  ASSERT_FALSE(parsed.ok());
  ASSERT_EQ(parsed.status().problems().size(), 1u) << Describe(parsed.status());
  EXPECT_EQ(parsed.status().problems()[0].where, "/kind");
}

TEST(ParseRecordTest, BodyOfTheWrongKindReportsItsFields) {
  json r = WithBody(Kind::kPlan, FullBody(Kind::kFlag));
  auto parsed = ParseRecord(r);
  ASSERT_FALSE(parsed.ok());
  std::set<std::string> wheres;
  for (const Problem& p : parsed.status().problems()) wheres.insert(p.where);
  EXPECT_TRUE(wheres.count("/body/plan_type"));  // missing
  EXPECT_TRUE(wheres.count("/body/type"));       // unknown for a plan
  EXPECT_TRUE(wheres.count("/body/owner_agency"));
}

TEST(ParseRecordTest, InvalidUtf8BuiltInCodeIsAProblem) {
  json r = ExampleFlag();
  r["subject"]["given_name"] = std::string("A\xC3", 2);
  r["body"]["note"] = std::string("\xED\xA0\x80", 3);  // an encoded surrogate
  auto parsed = ParseRecord(r);
  ASSERT_FALSE(parsed.ok());
  ASSERT_EQ(parsed.status().problems().size(), 2u) << Describe(parsed.status());
  for (const Problem& p : parsed.status().problems()) EXPECT_EQ(p.what, "not valid UTF-8");
}

TEST(ParseRecordTest, AcceptsUnicodeNames) {
  json r = ExampleFlag();
  r["subject"]["given_name"] = "Zoë";
  r["subject"]["family_name"] = std::string(100, 'x');
  auto parsed = ParseRecord(r);
  ASSERT_TRUE(parsed.ok()) << Describe(parsed.status());
  // 100 characters, counted as characters not bytes.
  std::string hundred;
  for (int i = 0; i < 100; ++i) hundred += "ë";
  r["subject"]["family_name"] = hundred;
  EXPECT_TRUE(ParseRecord(r).ok());
}

TEST(ParseRecordTest, ProblemListIsBounded) {
  json r = ExampleFlag();
  for (int i = 0; i < 1000; ++i) r["body"]["x" + std::to_string(i)] = i;
  auto parsed = ParseRecord(r);
  ASSERT_FALSE(parsed.ok());
  const auto& problems = parsed.status().problems();
  ASSERT_EQ(problems.size(), 201u);
  EXPECT_EQ(parsed.status().detail(), "record has more than 200 problems");
  EXPECT_THAT(problems.back().what, HasSubstr("too many problems"));
}

// ---------------------------------------------------------------------------------------------
// ToJson and CanonicalJson

TEST(ToJsonTest, RoundTripsEveryKind) {
  for (Kind kind : AllKinds()) {
    for (const json& body : {FullBody(kind), MinimalBody(kind)}) {
      SCOPED_TRACE(std::string(KindName(kind)) + " " + body.dump());
      auto first = ParseRecord(WithBody(kind, body));
      ASSERT_TRUE(first.ok()) << Describe(first.status());
      const json emitted = ToJson(*first);
      auto second = ParseRecord(emitted);
      ASSERT_TRUE(second.ok()) << Describe(second.status());
      EXPECT_EQ(*second, *first);
      EXPECT_EQ(ToJson(*second), emitted);
    }
  }
}

TEST(ToJsonTest, NormalisedInputComesBackUnchanged) {
  const json input = ExampleFlag();
  auto parsed = ParseRecord(input);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(ToJson(*parsed), input);
}

TEST(ToJsonTest, OmitsAbsentOptionals) {
  json r = ExampleFlag();
  r["subject"] = {{"local_ids", {{{"system", "police:wyp"}, {"value", "N-1"}}}}};
  auto parsed = ParseRecord(r);
  ASSERT_TRUE(parsed.ok());
  const json out = ToJson(*parsed);
  EXPECT_EQ(out["subject"], r["subject"]);
  EXPECT_FALSE(out["subject"].contains("nhs_number"));
  EXPECT_FALSE(out["subject"].contains("given_name"));
}

TEST(CanonicalJsonTest, ExactBytesOfTheExample) {
  auto parsed = ParseRecord(ExampleFlag());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(
      CanonicalJson(ToJson(*parsed)),
      R"({"body":{"contact":{"office_hours":"01274 000000","out_of_hours":"01274 000001"},)"
      R"("end":null,"level":"high","owner_agency":"wyp","review_by":"2019-01-31",)"
      R"("start":"2018-10-31","status":"active","type":"cse_risk"},)"
      R"("classification":{"criminal_offence":true,"handling":"P","schedule12a":[1,2,7],)"
      R"("special_category":false},"kind":"flag",)"
      R"("source":{"agency":"wyp","record_id":"OCC-2018-001234","recorded_at":"2018-10-31T09:12:00Z",)"
      R"("system":"niche","version":1},)"
      R"("subject":{"birth_date":"2004-03-01","family_name":"B","given_name":"A",)"
      R"("local_ids":[{"system":"csc:bradford","value":"BRA-000123"},)"
      R"({"system":"police:wyp","value":"N-100234"}],"nhs_number":"9434765919","postcode":"BD3 9AB"}})");
}

TEST(CanonicalJsonTest, KeyOrderDoesNotDependOnInsertionOrder) {
  json a = json::object();
  a["zeta"] = 1;
  a["alpha"] = {{"b", 2}, {"a", 1}};
  a["Beta"] = "x";
  a["é"] = true;
  json b = json::object();
  b["é"] = true;
  b["Beta"] = "x";
  b["alpha"] = {{"a", 1}, {"b", 2}};
  b["zeta"] = 1;
  EXPECT_EQ(CanonicalJson(a), CanonicalJson(b));
  // Byte order: upper case before lower case, non-ASCII last.
  EXPECT_EQ(CanonicalJson(a), "{\"Beta\":\"x\",\"alpha\":{\"a\":1,\"b\":2},\"zeta\":1,\"é\":true}");
  // Parsing text with other whitespace and order gives the same bytes.
  json c =
      json::parse("{ \"zeta\" : 1 ,\n \"é\":true, \"alpha\": {\"b\":2,\"a\":1}, \"Beta\":\"x\"}");
  EXPECT_EQ(CanonicalJson(c), CanonicalJson(a));
}

TEST(CanonicalJsonTest, NumbersAndStrings) {
  EXPECT_EQ(CanonicalJson(json(1)), "1");
  EXPECT_EQ(CanonicalJson(json(-42)), "-42");
  EXPECT_EQ(CanonicalJson(json(9223372036854775807LL)), "9223372036854775807");
  EXPECT_EQ(CanonicalJson(json(18446744073709551615ULL)), "18446744073709551615");
  EXPECT_EQ(CanonicalJson(json::parse("100000000000000000000")), "1e+20");  // a float
  EXPECT_EQ(CanonicalJson(json("a\"b\\c\n\t\x01")), "\"a\\\"b\\\\c\\n\\t\\u0001\"");
  EXPECT_EQ(CanonicalJson(json("Zoë")), "\"Zoë\"");  // UTF-8 kept, not \u-escaped
  EXPECT_EQ(CanonicalJson(json("/")), "\"/\"");
  EXPECT_EQ(CanonicalJson(json::array({1, "a", nullptr, false})), "[1,\"a\",null,false]");
  EXPECT_EQ(CanonicalJson(json::object()), "{}");
  // Invalid UTF-8 built in code does not throw.
  EXPECT_EQ(CanonicalJson(json(std::string("a\xFF", 2))), "\"a\xEF\xBF\xBD\"");
}

// CanonicalJson writes plain strings itself and leaves the rest to nlohmann: the bytes must
// be dump()'s for every kind of value, or stored hashes would stop matching.
TEST(CanonicalJsonTest, SameBytesAsNlohmannDump) {
  auto dump = [](const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); };
  std::vector<json> values = {
      nullptr, true, false, 0, -1, 1, INT64_MIN, INT64_MAX, UINT64_MAX, 0.5, -1e-7, 1e300,
      "", "plain ascii text", "quote \" and backslash \\", "tab\there", std::string("nul\0in", 6),
      "\x7f delete", "caf\xc3\xa9", "\xe2\x82\xac euro", "\xf0\x9f\x98\x80 emoji",
      std::string("bad \xc3 utf8"), std::string("\xff\xfe"), std::string("trunc \xe2\x82"),
      json::array(), json::object(), json::array({1, "two", nullptr, json::array({3.25})}),
      json::parse(R"({"b":{"z":1,"a":[true,{"k\"ey":"v\u0001"}]},"a":"x","\u00e9":2})")};
  std::mt19937 rng(7);
  for (int i = 0; i < 500; ++i) {
    std::string s(rng() % 24, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    values.push_back(s);
    values.push_back(json::object({{s, s}, {"k", json::array({s, i})}}));
  }
  for (const json& v : values) EXPECT_EQ(CanonicalJson(v), dump(v)) << dump(v);
}

TEST(CanonicalJsonTest, DeterministicAcrossCopiesAndReparses) {
  auto parsed = ParseRecord(WithBody(Kind::kOccurrence, FullBody(Kind::kOccurrence)));
  ASSERT_TRUE(parsed.ok());
  const std::string once = CanonicalJson(ToJson(*parsed));
  for (int i = 0; i < 5; ++i) {
    const json again = json::parse(once);
    EXPECT_EQ(CanonicalJson(again), once);
  }
  // Pretty-printed text with other whitespace gives the same canonical bytes.
  EXPECT_EQ(CanonicalJson(json::parse(json::parse(once).dump(4))), once);
}

// ---------------------------------------------------------------------------------------------
// Fuzz seeds stay meaningful: the per-kind seeds are valid records, the bad one is not.

json ReadSeed(const std::string& name) {
  const char* dir = std::getenv("SAFEGATE_SOURCE_DIR");
  if (dir == nullptr) return json();
  std::ifstream in(std::string(dir) + "/record/fuzz_seeds/" + name);
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
}

TEST(FuzzSeedTest, KindSeedsAreValidAndTheBadOneIsNot) {
  if (std::getenv("SAFEGATE_SOURCE_DIR") == nullptr) GTEST_SKIP() << "SAFEGATE_SOURCE_DIR unset";
  for (Kind kind : AllKinds()) {
    const std::string name = std::string(KindName(kind)) + ".json";
    const json seed = ReadSeed(name);
    ASSERT_FALSE(seed.is_discarded()) << name;
    auto parsed = ParseRecord(seed);
    ASSERT_TRUE(parsed.ok()) << name << ": " << Describe(parsed.status());
    EXPECT_EQ(parsed->kind, kind);
  }
  auto bad = ParseRecord(ReadSeed("many_problems.json"));
  ASSERT_FALSE(bad.ok());
  EXPECT_GE(bad.status().problems().size(), 10u) << Describe(bad.status());
}

// ---------------------------------------------------------------------------------------------
// Subject references

TEST(SubjectRefTest, ParsesEachScheme) {
  auto nhs = ParseSubjectRef("nhs:9434765919");
  ASSERT_TRUE(nhs.ok()) << Describe(nhs.status());
  EXPECT_EQ(nhs->type, SubjectRef::Type::kNhs);
  EXPECT_EQ(nhs->system, "nhs");
  EXPECT_EQ(nhs->value, "9434765919");
  EXPECT_EQ(nhs->ToString(), "nhs:9434765919");

  auto csc = ParseSubjectRef("csc:bradford:BRA-000123");
  ASSERT_TRUE(csc.ok()) << Describe(csc.status());
  EXPECT_EQ(csc->type, SubjectRef::Type::kCsc);
  EXPECT_EQ(csc->system, "csc:bradford");
  EXPECT_EQ(csc->value, "BRA-000123");
  EXPECT_EQ(csc->ToString(), "csc:bradford:BRA-000123");

  auto police = ParseSubjectRef("police:wyp:N-100234");
  ASSERT_TRUE(police.ok()) << Describe(police.status());
  EXPECT_EQ(police->type, SubjectRef::Type::kPolice);
  EXPECT_EQ(police->system, "police:wyp");
  EXPECT_EQ(police->value, "N-100234");

  // An id may itself hold colons: everything after the second colon is the id.
  auto colon = ParseSubjectRef("police:cambs-police:A:1");
  ASSERT_TRUE(colon.ok());
  EXPECT_EQ(colon->value, "A:1");
  EXPECT_EQ(colon->ToString(), "police:cambs-police:A:1");
}

TEST(SubjectRefTest, RejectsBadReferencesWithAReason) {
  struct Case {
    std::string text;
    std::string why;
  };
  const Case cases[] = {
      {"", "no scheme"},
      {"9434765919", "no scheme"},
      {"nhs:9434765918", "check digit"},
      {"nhs:943476591", "10 digits"},
      {"nhs:94347659190", "10 digits"},
      {"nhs:94347659a9", "10 digits"},
      {"NHS:9434765919", "unknown scheme"},
      {"fhir:123", "unknown scheme"},
      {"csc:bradford", "missing the id after the area"},
      {"police:wyp", "missing the id after the force"},
      {"csc:Bradford:1", "area must be a slug"},
      {"police::1", "force must be a slug"},
      {"csc:bradford:", "must not be empty"},
      {"csc:bradford:" + std::string(65, '1'), "longer than 64"},
      {"csc:bradford:a\nb", "printable"},
      {"csc:bradford: a", "space"},
  };
  for (const Case& c : cases) {
    auto r = ParseSubjectRef(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
    EXPECT_THAT(r.status().detail(), HasSubstr(c.why)) << c.text;
    EXPECT_THAT(r.status().detail(), HasSubstr("subject reference")) << c.text;
  }
}

TEST(SubjectRefTest, RefsOfAndPrimaryRef) {
  auto parsed = ParseRecord(ExampleFlag());
  ASSERT_TRUE(parsed.ok());
  const auto refs = RefsOf(parsed->subject);
  ASSERT_EQ(refs.size(), 3u);
  EXPECT_EQ(refs[0].ToString(), "nhs:9434765919");
  EXPECT_EQ(refs[1].ToString(), "csc:bradford:BRA-000123");
  EXPECT_EQ(refs[1].type, SubjectRef::Type::kCsc);
  EXPECT_EQ(refs[2].ToString(), "police:wyp:N-100234");
  EXPECT_EQ(refs[2].type, SubjectRef::Type::kPolice);
  for (const SubjectRef& ref : refs) {
    auto back = ParseSubjectRef(ref.ToString());
    ASSERT_TRUE(back.ok()) << ref.ToString();
    EXPECT_EQ(*back, ref);
  }
  EXPECT_EQ(PrimaryRef(parsed->subject), "nhs:9434765919");

  Subject local_only;
  local_only.local_ids = {{"police:wyp", "N-1"}, {"csc:bradford", "B-1"}};
  local_only.given_name = "A";
  EXPECT_EQ(PrimaryRef(local_only), "police:wyp:N-1");
  EXPECT_EQ(RefsOf(local_only).size(), 2u);
  EXPECT_EQ(RefsOf(local_only)[0].type, SubjectRef::Type::kPolice);

  EXPECT_EQ(PrimaryRef(Subject{}), "");
  EXPECT_TRUE(RefsOf(Subject{}).empty());
}

}  // namespace
}  // namespace safegate::record
