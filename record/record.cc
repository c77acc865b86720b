// The canonical record: strict validation, canonical JSON, subject references.
// docs/record-model.md is the reference for every rule enforced here; keep them in step.

#include "record/record.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <limits>
#include <set>
#include <tuple>
#include <utility>

namespace safegate::record {
namespace {

using json = nlohmann::json;
using Problems = std::vector<Problem>;

// A record is bounded by the request size limit, but a hostile one could still carry a
// million unknown fields; the problem list (which goes back to the caller) stays bounded.
constexpr size_t kMaxProblems = 200;

constexpr size_t kMaxNameChars = 100;       // given_name, family_name
constexpr size_t kMaxLocalIdChars = 64;     // local_ids[].value and subject reference ids
constexpr size_t kMaxRecordIdChars = 128;   // source.record_id
constexpr size_t kMaxShortTextChars = 200;  // codes and one-line values in bodies
constexpr size_t kMaxTextChars = 65536;     // free text (summaries, notes, log entries)
constexpr size_t kMaxSlugChars = 64;
constexpr size_t kMaxArrayItems = 1000;  // factors, review_dates, enquiry_log

// Collects problems; drops them past kMaxProblems and says so once.
class Sink {
 public:
  void Add(std::string where, std::string what) {
    if (problems_.size() < kMaxProblems) {
      problems_.push_back({std::move(where), std::move(what)});
    } else {
      truncated_ = true;
    }
  }
  size_t count() const { return problems_.size(); }
  bool truncated() const { return truncated_; }
  Problems Take(const std::string& root) {
    if (truncated_) {
      problems_.push_back({root, "too many problems; only the first " +
                                     std::to_string(kMaxProblems) + " are listed"});
    }
    return std::move(problems_);
  }

 private:
  Problems problems_;
  bool truncated_ = false;
};

// RFC 6901: "~" and "/" inside a key are escaped so the pointer stays unambiguous.
std::string Ptr(const std::string& base, std::string_view key) {
  std::string out = base;
  out += '/';
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}
std::string Ptr(const std::string& base, size_t index) {
  return base + "/" + std::to_string(index);
}

std::string TypeName(const json& v) {
  if (v.is_boolean()) return "bool";
  if (v.is_number_integer()) return "integer";
  if (v.is_number_float()) return "number with a fraction";
  return v.type_name();  // "null", "object", "array", "string", ...
}

void WrongType(Sink& sink, const std::string& where, std::string_view expected, const json& v) {
  sink.Add(where, "expected " + std::string(expected) + ", got " + TypeName(v));
}

// ---------------------------------------------------------------------------------------------
// Text checks

// Counts code points of well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
// Reports through the out-parameters whether control characters occur, so each caller
// decides which of them it tolerates.
struct TextScan {
  bool valid_utf8 = true;
  size_t chars = 0;
  bool has_line_control = false;   // \t \n \r
  bool has_other_control = false;  // any other C0, DEL or C1 control
};

TextScan ScanText(std::string_view s) {
  TextScan scan;
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    uint32_t cp = 0;
    size_t len = 0;
    if (b0 < 0x80) {
      cp = b0;
      len = 1;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
      cp = b0 & 0x1Fu;
      len = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      cp = b0 & 0x0Fu;
      len = 3;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      cp = b0 & 0x07u;
      len = 4;
    } else {
      scan.valid_utf8 = false;
      return scan;
    }
    if (i + len > s.size()) {
      scan.valid_utf8 = false;
      return scan;
    }
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0u) != 0x80u) {
        scan.valid_utf8 = false;
        return scan;
      }
      cp = (cp << 6) | (b & 0x3Fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      scan.valid_utf8 = false;
      return scan;
    }
    if (cp == '\t' || cp == '\n' || cp == '\r') {
      scan.has_line_control = true;
    } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) {
      scan.has_other_control = true;
    }
    ++scan.chars;
    i += len;
  }
  return scan;
}

enum class TextRule {
  kLine,       // one line of text: no control characters at all
  kMultiline,  // free text: tab, CR and LF allowed
  kAsciiId,    // printable ASCII (0x20..0x7E), no leading or trailing space
};

// Reports what is wrong with `s` as text of the given rule and length; true when fine.
bool CheckText(Sink& sink, const std::string& where, std::string_view s, TextRule rule,
               size_t max_chars) {
  if (s.empty()) {
    sink.Add(where, "must not be empty");
    return false;
  }
  if (rule == TextRule::kAsciiId) {
    for (char c : s) {
      if (c < 0x20 || c > 0x7E) {
        sink.Add(where, "must be printable ASCII characters only");
        return false;
      }
    }
    if (s.front() == ' ' || s.back() == ' ') {
      sink.Add(where, "must not start or end with a space");
      return false;
    }
    if (s.size() > max_chars) {
      sink.Add(where, "longer than " + std::to_string(max_chars) + " characters");
      return false;
    }
    return true;
  }
  const TextScan scan = ScanText(s);
  if (!scan.valid_utf8) {
    sink.Add(where, "not valid UTF-8");
    return false;
  }
  if (scan.has_other_control || (rule == TextRule::kLine && scan.has_line_control)) {
    sink.Add(where, rule == TextRule::kLine ? "must be one line without control characters"
                                            : "contains control characters");
    return false;
  }
  if (scan.chars > max_chars) {
    sink.Add(where, "longer than " + std::to_string(max_chars) + " characters");
    return false;
  }
  bool all_space = std::all_of(
      s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
  if (all_space) {
    sink.Add(where, "must not be blank");
    return false;
  }
  return true;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsUpperOrLowerAlpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

int Digits(std::string_view s, size_t pos, size_t n) {
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) v = v * 10 + (s[i] - '0');
  return v;
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[static_cast<size_t>(m - 1)];
}

// A point in time or a day, comparable: a day sorts as its midnight.
struct Instant {
  int year = 0, month = 0, day = 0;
  int second_of_day = 0;
  int64_t nanos = 0;
  auto Key() const { return std::tie(year, month, day, second_of_day, nanos); }
};

std::optional<Instant> ParseDate(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!IsDigit(s[i])) return std::nullopt;
  }
  Instant t;
  t.year = Digits(s, 0, 4);
  t.month = Digits(s, 5, 2);
  t.day = Digits(s, 8, 2);
  if (t.year < 1 || t.month < 1 || t.month > 12 || t.day < 1 ||
      t.day > DaysInMonth(t.year, t.month)) {
    return std::nullopt;
  }
  return t;
}

// "YYYY-MM-DDTHH:MM:SS(.f{1,9})?Z"
std::optional<Instant> ParseDateTime(std::string_view s) {
  if (s.size() < 20 || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s.back() != 'Z') {
    return std::nullopt;
  }
  auto t = ParseDate(s.substr(0, 10));
  if (!t) return std::nullopt;
  for (size_t i : {11, 12, 14, 15, 17, 18}) {
    if (!IsDigit(s[i])) return std::nullopt;
  }
  const int h = Digits(s, 11, 2);
  const int mi = Digits(s, 14, 2);
  const int sec = Digits(s, 17, 2);
  if (h > 23 || mi > 59 || sec > 59) return std::nullopt;
  t->second_of_day = h * 3600 + mi * 60 + sec;
  const std::string_view rest = s.substr(19, s.size() - 20);  // between seconds and 'Z'
  if (!rest.empty()) {
    if (rest.size() < 2 || rest.size() > 10 || rest[0] != '.') return std::nullopt;
    int64_t nanos = 0;
    for (size_t i = 1; i < rest.size(); ++i) {
      if (!IsDigit(rest[i])) return std::nullopt;
      nanos = nanos * 10 + (rest[i] - '0');
    }
    for (size_t i = rest.size(); i < 10; ++i) nanos *= 10;
    t->nanos = nanos;
  }
  return t;
}

std::optional<Instant> ParseDateOrDateTime(std::string_view s) {
  return s.size() == 10 ? ParseDate(s) : ParseDateTime(s);
}

// ---------------------------------------------------------------------------------------------
// Object walking

// Reads the declared fields of one JSON object and, on Finish(), reports every key that was
// not asked for. REQUIRES: obj is an object and outlives the reader.
class ObjectReader {
 public:
  ObjectReader(const json& obj, std::string where, Sink& sink)
      : obj_(obj), where_(std::move(where)), sink_(sink) {}

  // The field's value, or nullptr (and a "required field missing" problem) when absent.
  const json* Required(std::string_view key) {
    const json* v = Find(key);
    if (v == nullptr) sink_.Add(At(key), "required field missing");
    return v;
  }
  // The field's value, or nullptr when absent. A present null is returned as such.
  const json* Optional(std::string_view key) { return Find(key); }

  void Finish() {
    for (const auto& [key, value] : obj_.items()) {
      if (known_.count(key) == 0) sink_.Add(At(key), "unknown field");
    }
  }
  std::string At(std::string_view key) const { return Ptr(where_, key); }
  const std::string& where() const { return where_; }

 private:
  const json* Find(std::string_view key) {
    known_.emplace(key);
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }

  const json& obj_;
  std::string where_;
  Sink& sink_;
  std::set<std::string, std::less<>> known_;
};

const std::string* AsString(Sink& sink, const std::string& where, const json& v) {
  if (!v.is_string()) {
    WrongType(sink, where, "string", v);
    return nullptr;
  }
  return v.get_ptr<const std::string*>();
}

std::optional<bool> AsBool(Sink& sink, const std::string& where, const json& v) {
  if (!v.is_boolean()) {
    WrongType(sink, where, "bool", v);
    return std::nullopt;
  }
  return v.get<bool>();
}

std::optional<int64_t> AsInt(Sink& sink, const std::string& where, const json& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      sink.Add(where, "integer out of range");
      return std::nullopt;
    }
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  WrongType(sink, where, "integer", v);
  return std::nullopt;
}

bool CheckSlug(Sink& sink, const std::string& where, std::string_view s) {
  if (!IsSlug(s)) {
    sink.Add(where, "must be a slug: 1 to " + std::to_string(kMaxSlugChars) +
                        " characters of a-z, 0-9 and '-'");
    return false;
  }
  return true;
}

std::string JoinQuoted(const std::vector<std::string_view>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += i + 1 == values.size() ? " or " : ", ";
    out += '"';
    out += values[i];
    out += '"';
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Body specifications, one table per kind (docs/record-model.md mirrors them)

enum class FieldType {
  kLine,            // one line of text, <= kMaxShortTextChars
  kText,            // free text, multi-line, <= kMaxTextChars
  kCode,            // [A-Za-z0-9_.-]{1,32}
  kSlug,            // agency id
  kEnum,            // one of `values`
  kDate,            // YYYY-MM-DD
  kDateTime,        // YYYY-MM-DDTHH:MM:SS(.f)?Z
  kDateOrDateTime,  // either
  kBool,
  kPostcode,     // normalised
  kLineArray,    // array of kLine
  kDateArray,    // array of kDate
  kObject,       // nested `fields`
  kObjectArray,  // array of nested `fields`
};

enum class Presence {
  kRequired,
  kOptional,  // may be absent; null is a type error
  kNullable,  // may be null or absent (absent is stored as null)
};

struct FieldSpec {
  std::string_view name;
  FieldType type = FieldType::kLine;
  Presence presence = Presence::kRequired;
  std::vector<std::string_view> values;            // kEnum
  const std::vector<FieldSpec>* fields = nullptr;  // kObject, kObjectArray
};

FieldSpec F(std::string_view name, FieldType type, Presence presence) {
  FieldSpec f;
  f.name = name;
  f.type = type;
  f.presence = presence;
  return f;
}
FieldSpec E(std::string_view name, Presence presence, std::vector<std::string_view> values) {
  FieldSpec f = F(name, FieldType::kEnum, presence);
  f.values = std::move(values);
  return f;
}
FieldSpec O(std::string_view name, FieldType type, Presence presence,
            const std::vector<FieldSpec>& fields) {
  FieldSpec f = F(name, type, presence);
  f.fields = &fields;
  return f;
}

constexpr auto kReq = Presence::kRequired;
constexpr auto kOpt = Presence::kOptional;
constexpr auto kNull = Presence::kNullable;

const std::vector<FieldSpec>& FlagContactFields() {
  static const std::vector<FieldSpec> k = {F("office_hours", FieldType::kLine, kOpt),
                                           F("out_of_hours", FieldType::kLine, kOpt)};
  return k;
}
const std::vector<FieldSpec>& EnquiryLogFields() {
  static const std::vector<FieldSpec> k = {F("at", FieldType::kDateOrDateTime, kReq),
                                           F("text", FieldType::kText, kReq)};
  return k;
}
const std::vector<FieldSpec>& ReturnInterviewFields() {
  static const std::vector<FieldSpec> k = {F("offered", FieldType::kBool, kReq),
                                           F("accepted", FieldType::kBool, kOpt),
                                           F("date", FieldType::kDate, kOpt)};
  return k;
}

const std::vector<FieldSpec>& BodyFields(Kind kind) {
  static const std::vector<FieldSpec> kFlag = {
      E("type", kReq,
        {"cse_risk", "cce_risk", "missing", "cp_plan", "unborn_cp_plan", "looked_after", "marac",
         "concern"}),
      E("level", kNull, {"low", "medium", "high"}),
      E("status", kReq, {"active", "inactive", "entered_in_error"}),
      F("start", FieldType::kDate, kReq),
      F("end", FieldType::kDate, kNull),
      F("review_by", FieldType::kDate, kNull),
      F("owner_agency", FieldType::kSlug, kReq),
      O("contact", FieldType::kObject, kOpt, FlagContactFields()),
      F("note", FieldType::kText, kOpt),
  };
  static const std::vector<FieldSpec> kOccurrence = {
      F("occurrence_type", FieldType::kLine, kReq),
      F("occurred_at", FieldType::kDateOrDateTime, kReq),
      F("summary", FieldType::kText, kReq),
      O("enquiry_log", FieldType::kObjectArray, kOpt, EnquiryLogFields()),
      F("outcome", FieldType::kLine, kOpt),
      F("location_postcode", FieldType::kPostcode, kOpt),
  };
  static const std::vector<FieldSpec> kReferral = {
      F("referral_date", FieldType::kDate, kReq), F("referral_source", FieldType::kCode, kReq),
      F("reason", FieldType::kText, kReq),        F("to_agency", FieldType::kSlug, kOpt),
      F("nfa", FieldType::kBool, kOpt),
  };
  static const std::vector<FieldSpec> kAssessment = {
      F("assessment_type", FieldType::kLine, kReq), F("start", FieldType::kDate, kReq),
      F("authorised", FieldType::kDate, kNull),     F("factors", FieldType::kLineArray, kOpt),
      F("outcome", FieldType::kLine, kOpt),
  };
  static const std::vector<FieldSpec> kMissingEpisode = {
      F("start", FieldType::kDateTime, kReq),
      F("end", FieldType::kDateTime, kNull),
      F("reported_by", FieldType::kLine, kReq),
      O("return_interview", FieldType::kObject, kOpt, ReturnInterviewFields()),
  };
  static const std::vector<FieldSpec> kPlan = {
      E("plan_type", kReq, {"cp", "cin", "lac", "unborn_cp"}),
      F("start", FieldType::kDate, kReq),
      F("end", FieldType::kDate, kNull),
      E("category_of_abuse", kOpt, {"neglect", "physical", "sexual", "emotional", "multiple"}),
      F("review_dates", FieldType::kDateArray, kOpt),
  };
  switch (kind) {
    case Kind::kFlag:
      return kFlag;
    case Kind::kOccurrence:
      return kOccurrence;
    case Kind::kReferral:
      return kReferral;
    case Kind::kAssessment:
      return kAssessment;
    case Kind::kMissingEpisode:
      return kMissingEpisode;
    case Kind::kPlan:
      return kPlan;
  }
  return kFlag;
}

bool IsCode(std::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return IsDigit(c) || IsUpperOrLowerAlpha(c) || c == '_' || c == '.' || c == '-';
  });
}

json CheckObject(Sink& sink, const std::string& where, const json& v,
                 const std::vector<FieldSpec>& fields);

// Validates one value against its spec. Returns the normalised value, or nullopt when
// there was a problem (already reported).
std::optional<json> CheckValue(Sink& sink, const std::string& where, const json& v,
                               const FieldSpec& spec) {
  switch (spec.type) {
    case FieldType::kLine:
    case FieldType::kText: {
      const std::string* s = AsString(sink, where, v);
      if (s == nullptr) return std::nullopt;
      const bool line = spec.type == FieldType::kLine;
      if (!CheckText(sink, where, *s, line ? TextRule::kLine : TextRule::kMultiline,
                     line ? kMaxShortTextChars : kMaxTextChars)) {
        return std::nullopt;
      }
      return v;
    }
    case FieldType::kCode: {
      const std::string* s = AsString(sink, where, v);
      if (s == nullptr) return std::nullopt;
      if (!IsCode(*s)) {
        sink.Add(where, "must be a code: 1 to 32 characters of A-Z, a-z, 0-9, '_', '.' and '-'");
        return std::nullopt;
      }
      return v;
    }
    case FieldType::kSlug: {
      const std::string* s = AsString(sink, where, v);
      if (s == nullptr || !CheckSlug(sink, where, *s)) return std::nullopt;
      return v;
    }
    case FieldType::kEnum: {
      const std::string* s = AsString(sink, where, v);
      if (s == nullptr) return std::nullopt;
      if (std::find(spec.values.begin(), spec.values.end(), *s) == spec.values.end()) {
        sink.Add(where, "must be one of " + JoinQuoted(spec.values));
        return std::nullopt;
      }
      return v;
    }
    case FieldType::kDate: {
      const std::string* s = AsString(sink, where, v);
      if (s == nullptr) return std::nullopt;
      if (!IsValidDate(*s)) {
        sink.Add(where, "must be a calendar date YYYY-MM-DD");
        return std::nullopt;
      }
      return v;
    }
    case FieldType::kDateTime: {
      const std::string* s = AsString(sink, where, v);
      if (s == nullptr) return std::nullopt;
      if (!IsValidDateTime(*s)) {
        sink.Add(where, "must be a UTC date and time YYYY-MM-DDTHH:MM:SS[.fff]Z");
        return std::nullopt;
      }
      return v;
    }
    case FieldType::kDateOrDateTime: {
      const std::string* s = AsString(sink, where, v);
      if (s == nullptr) return std::nullopt;
      if (!ParseDateOrDateTime(*s)) {
        sink.Add(where,
                 "must be a calendar date YYYY-MM-DD or a UTC date and time "
                 "YYYY-MM-DDTHH:MM:SS[.fff]Z");
        return std::nullopt;
      }
      return v;
    }
    case FieldType::kBool: {
      auto b = AsBool(sink, where, v);
      if (!b) return std::nullopt;
      return json(*b);
    }
    case FieldType::kPostcode: {
      const std::string* s = AsString(sink, where, v);
      if (s == nullptr) return std::nullopt;
      auto pc = NormalisePostcode(*s);
      if (!pc) {
        sink.Add(where, "not a UK postcode");
        return std::nullopt;
      }
      return json(*pc);
    }
    case FieldType::kLineArray:
    case FieldType::kDateArray:
    case FieldType::kObjectArray: {
      if (!v.is_array()) {
        WrongType(sink, where, "array", v);
        return std::nullopt;
      }
      if (v.size() > kMaxArrayItems) {
        sink.Add(where, "more than " + std::to_string(kMaxArrayItems) + " items");
        return std::nullopt;
      }
      FieldSpec item = spec;
      item.type = spec.type == FieldType::kLineArray   ? FieldType::kLine
                  : spec.type == FieldType::kDateArray ? FieldType::kDate
                                                       : FieldType::kObject;
      json out = json::array();
      bool ok = true;
      for (size_t i = 0; i < v.size(); ++i) {
        auto e = CheckValue(sink, Ptr(where, i), v[i], item);
        if (e) {
          out.push_back(std::move(*e));
        } else {
          ok = false;
        }
      }
      if (!ok) return std::nullopt;
      return out;
    }
    case FieldType::kObject: {
      if (!v.is_object()) {
        WrongType(sink, where, "object", v);
        return std::nullopt;
      }
      const size_t before = sink.count();
      json out = CheckObject(sink, where, v, *spec.fields);
      if (sink.count() != before) return std::nullopt;
      return out;
    }
  }
  return std::nullopt;
}

// Checks an object against its field table. Returns the normalised object holding the
// fields that passed (nullable fields that were absent are set to null).
json CheckObject(Sink& sink, const std::string& where, const json& v,
                 const std::vector<FieldSpec>& fields) {
  json out = json::object();
  ObjectReader reader(v, where, sink);
  for (const FieldSpec& spec : fields) {
    const std::string at = reader.At(spec.name);
    const json* value = spec.presence == Presence::kRequired ? reader.Required(spec.name)
                                                             : reader.Optional(spec.name);
    if (value == nullptr) {
      if (spec.presence == Presence::kNullable) out[std::string(spec.name)] = nullptr;
      continue;
    }
    if (value->is_null() && spec.presence == Presence::kNullable) {
      out[std::string(spec.name)] = nullptr;
      continue;
    }
    auto checked = CheckValue(sink, at, *value, spec);
    if (checked) out[std::string(spec.name)] = std::move(*checked);
  }
  reader.Finish();
  return out;
}

// `later` must not be before `earlier` when both are present and valid in `body`.
void CheckOrder(Sink& sink, const std::string& where, const json& body, std::string_view earlier,
                std::string_view later) {
  auto a = body.find(earlier);
  auto b = body.find(later);
  if (a == body.end() || b == body.end() || !a->is_string() || !b->is_string()) return;
  auto ta = ParseDateOrDateTime(a->get_ref<const std::string&>());
  auto tb = ParseDateOrDateTime(b->get_ref<const std::string&>());
  if (ta && tb && tb->Key() < ta->Key()) {
    sink.Add(Ptr(where, later),
             "must not be before " + std::string(earlier) + " (" + a->get<std::string>() + ")");
  }
}

json CheckBody(Sink& sink, const std::string& where, Kind kind, const json& v) {
  if (!v.is_object()) {
    WrongType(sink, where, "object", v);
    return json::object();
  }
  json body = CheckObject(sink, where, v, BodyFields(kind));
  switch (kind) {
    case Kind::kFlag:
      CheckOrder(sink, where, body, "start", "end");
      break;
    case Kind::kAssessment:
      CheckOrder(sink, where, body, "start", "authorised");
      break;
    case Kind::kMissingEpisode: {
      CheckOrder(sink, where, body, "start", "end");
      auto ri = body.find("return_interview");
      if (ri != body.end() && ri->value("accepted", false) && !ri->value("offered", false)) {
        sink.Add(Ptr(Ptr(where, "return_interview"), "accepted"),
                 "cannot be true when offered is false");
      }
      break;
    }
    case Kind::kPlan:
      CheckOrder(sink, where, body, "start", "end");
      break;
    case Kind::kOccurrence:
    case Kind::kReferral:
      break;
  }
  return body;
}

// ---------------------------------------------------------------------------------------------
// Envelope sections

void CheckLocalIdSystem(Sink& sink, const std::string& where, std::string_view system) {
  const auto colon = system.find(':');
  const std::string_view prefix = system.substr(0, colon);
  if (colon == std::string_view::npos || (prefix != "csc" && prefix != "police") ||
      !IsSlug(system.substr(colon + 1))) {
    sink.Add(where, "must be \"csc:<area>\" or \"police:<force>\" with a slug after the colon");
  }
}

Subject CheckSubject(Sink& sink, const std::string& where, const json& v) {
  Subject subject;
  if (!v.is_object()) {
    WrongType(sink, where, "object", v);
    return subject;
  }
  ObjectReader r(v, where, sink);
  bool has_identifier = false;
  bool identifier_given = false;  // present, even if invalid: avoid a second, misleading problem

  if (const json* nhs = r.Optional("nhs_number")) {
    identifier_given = true;
    const std::string at = r.At("nhs_number");
    if (const std::string* s = AsString(sink, at, *nhs)) {
      if (s->size() != 10 || !std::all_of(s->begin(), s->end(), IsDigit)) {
        sink.Add(at, "must be 10 digits");
      } else if (!IsValidNhsNumber(*s)) {
        sink.Add(at, "check digit is wrong (modulus 11)");
      } else {
        subject.nhs_number = *s;
        has_identifier = true;
      }
    }
  }

  if (const json* ids = r.Optional("local_ids")) {
    const std::string at = r.At("local_ids");
    if (!ids->is_array()) {
      WrongType(sink, at, "array", *ids);
      identifier_given = true;
    } else if (ids->size() > kMaxArrayItems) {
      sink.Add(at, "more than " + std::to_string(kMaxArrayItems) + " items");
      identifier_given = true;
    } else {
      for (size_t i = 0; i < ids->size(); ++i) {
        identifier_given = true;
        const std::string item_at = Ptr(at, i);
        const json& item = (*ids)[i];
        if (!item.is_object()) {
          WrongType(sink, item_at, "object", item);
          continue;
        }
        ObjectReader ir(item, item_at, sink);
        LocalId id;
        bool ok = true;
        if (const json* sys = ir.Required("system")) {
          const std::string* s = AsString(sink, ir.At("system"), *sys);
          const size_t before = sink.count();
          if (s != nullptr) CheckLocalIdSystem(sink, ir.At("system"), *s);
          ok = ok && s != nullptr && sink.count() == before;
          if (s != nullptr) id.system = *s;
        } else {
          ok = false;
        }
        if (const json* val = ir.Required("value")) {
          const std::string* s = AsString(sink, ir.At("value"), *val);
          ok = ok && s != nullptr &&
               CheckText(sink, ir.At("value"), *s, TextRule::kAsciiId, kMaxLocalIdChars);
          if (s != nullptr) id.value = *s;
        } else {
          ok = false;
        }
        ir.Finish();
        if (!ok) continue;
        if (std::find(subject.local_ids.begin(), subject.local_ids.end(), id) !=
            subject.local_ids.end()) {
          sink.Add(item_at, "duplicate local id");
          continue;
        }
        subject.local_ids.push_back(std::move(id));
        has_identifier = true;
      }
    }
  }

  for (std::string_view key : {"given_name", "family_name"}) {
    if (const json* name = r.Optional(key)) {
      const std::string at = r.At(key);
      const std::string* s = AsString(sink, at, *name);
      if (s != nullptr && CheckText(sink, at, *s, TextRule::kLine, kMaxNameChars)) {
        (key == "given_name" ? subject.given_name : subject.family_name) = *s;
      }
    }
  }
  if (const json* dob = r.Optional("birth_date")) {
    const std::string at = r.At("birth_date");
    if (const std::string* s = AsString(sink, at, *dob)) {
      if (IsValidDate(*s)) {
        subject.birth_date = *s;
      } else {
        sink.Add(at, "must be a calendar date YYYY-MM-DD");
      }
    }
  }
  if (const json* pc = r.Optional("postcode")) {
    const std::string at = r.At("postcode");
    if (const std::string* s = AsString(sink, at, *pc)) {
      if (auto norm = NormalisePostcode(*s)) {
        subject.postcode = std::move(*norm);
      } else {
        sink.Add(at, "not a UK postcode");
      }
    }
  }
  r.Finish();
  if (!has_identifier && !identifier_given) {
    sink.Add(where, "needs an identifier: nhs_number or at least one local_ids entry");
  }
  return subject;
}

Source CheckSource(Sink& sink, const std::string& where, const json& v) {
  Source source;
  if (!v.is_object()) {
    WrongType(sink, where, "object", v);
    return source;
  }
  ObjectReader r(v, where, sink);
  if (const json* a = r.Required("agency")) {
    if (const std::string* s = AsString(sink, r.At("agency"), *a)) {
      if (CheckSlug(sink, r.At("agency"), *s)) source.agency = *s;
    }
  }
  if (const json* sys = r.Required("system")) {
    if (const std::string* s = AsString(sink, r.At("system"), *sys)) {
      if (CheckText(sink, r.At("system"), *s, TextRule::kAsciiId, kMaxSlugChars)) {
        source.system = *s;
      }
    }
  }
  if (const json* id = r.Required("record_id")) {
    if (const std::string* s = AsString(sink, r.At("record_id"), *id)) {
      if (CheckText(sink, r.At("record_id"), *s, TextRule::kAsciiId, kMaxRecordIdChars)) {
        source.record_id = *s;
      }
    }
  }
  if (const json* ver = r.Required("version")) {
    if (auto n = AsInt(sink, r.At("version"), *ver)) {
      if (*n < 1) {
        sink.Add(r.At("version"), "must be at least 1");
      } else {
        source.version = *n;
      }
    }
  }
  if (const json* at = r.Required("recorded_at")) {
    if (const std::string* s = AsString(sink, r.At("recorded_at"), *at)) {
      if (IsValidDateTime(*s)) {
        source.recorded_at = *s;
      } else {
        sink.Add(r.At("recorded_at"), "must be a UTC date and time YYYY-MM-DDTHH:MM:SS[.fff]Z");
      }
    }
  }
  r.Finish();
  return source;
}

Classification CheckClassification(Sink& sink, const std::string& where, const json& v) {
  Classification c;
  if (!v.is_object()) {
    WrongType(sink, where, "object", v);
    return c;
  }
  ObjectReader r(v, where, sink);
  if (const json* b = r.Required("special_category")) {
    if (auto x = AsBool(sink, r.At("special_category"), *b)) c.special_category = *x;
  }
  if (const json* b = r.Required("criminal_offence")) {
    if (auto x = AsBool(sink, r.At("criminal_offence"), *b)) c.criminal_offence = *x;
  }
  if (const json* arr = r.Required("schedule12a")) {
    const std::string at = r.At("schedule12a");
    if (!arr->is_array()) {
      WrongType(sink, at, "array", *arr);
    } else {
      std::array<bool, 8> seen{};
      for (size_t i = 0; i < arr->size(); ++i) {
        const std::string item_at = Ptr(at, i);
        auto n = AsInt(sink, item_at, (*arr)[i]);
        if (!n) continue;
        if (*n < 1 || *n > 7) {
          sink.Add(item_at, "must be a paragraph number 1 to 7");
        } else if (seen[static_cast<size_t>(*n)]) {
          sink.Add(item_at, "duplicate paragraph " + std::to_string(*n));
        } else {
          seen[static_cast<size_t>(*n)] = true;
        }
      }
      for (int p = 1; p <= 7; ++p) {
        if (seen[static_cast<size_t>(p)]) c.schedule12a.push_back(p);  // ascending by design
      }
    }
  }
  if (const json* h = r.Required("handling")) {
    if (const std::string* s = AsString(sink, r.At("handling"), *h)) {
      if (*s == "P" || *s == "C") {
        c.handling = *s;
      } else {
        sink.Add(r.At("handling"), "must be \"P\" or \"C\"");
      }
    }
  }
  r.Finish();
  return c;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public functions

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kFlag:
      return "flag";
    case Kind::kOccurrence:
      return "occurrence";
    case Kind::kReferral:
      return "referral";
    case Kind::kAssessment:
      return "assessment";
    case Kind::kMissingEpisode:
      return "missing_episode";
    case Kind::kPlan:
      return "plan";
  }
  return "flag";
}

std::optional<Kind> ParseKind(std::string_view name) {
  for (Kind k : AllKinds()) {
    if (KindName(k) == name) return k;
  }
  return std::nullopt;
}

const std::vector<Kind>& AllKinds() {
  static const std::vector<Kind> kAll = {Kind::kFlag,       Kind::kOccurrence,     Kind::kReferral,
                                         Kind::kAssessment, Kind::kMissingEpisode, Kind::kPlan};
  return kAll;
}

bool IsValidNhsNumber(std::string_view digits) {
  if (digits.size() != 10 || !std::all_of(digits.begin(), digits.end(), IsDigit)) return false;
  int sum = 0;
  for (size_t i = 0; i < 9; ++i) sum += (digits[i] - '0') * static_cast<int>(10 - i);
  int check = 11 - (sum % 11);
  if (check == 11) check = 0;
  if (check == 10) return false;  // such a number is never issued
  return check == digits[9] - '0';
}

bool IsValidDate(std::string_view text) { return ParseDate(text).has_value(); }

bool IsValidDateTime(std::string_view text) { return ParseDateTime(text).has_value(); }

int CompareDates(std::string_view a, std::string_view b) {
  auto ta = ParseDateOrDateTime(a);
  auto tb = ParseDateOrDateTime(b);
  if (!ta || !tb) return a < b ? -1 : (a == b ? 0 : 1);
  if (ta->Key() < tb->Key()) return -1;
  if (tb->Key() < ta->Key()) return 1;
  return 0;
}

bool IsSlug(std::string_view text) {
  if (text.empty() || text.size() > kMaxSlugChars) return false;
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || IsDigit(c) || c == '-'; });
}

std::optional<std::string> NormalisePostcode(std::string_view text) {
  std::string compact;
  for (char c : text) {
    if (c == ' ') continue;
    if (!IsDigit(c) && !IsUpperOrLowerAlpha(c)) return std::nullopt;
    compact += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    if (compact.size() > 7) return std::nullopt;
  }
  // A single space at most, and only between the outward and inward codes.
  const auto space_count = std::count(text.begin(), text.end(), ' ');
  if (space_count > 1) return std::nullopt;
  if (compact.size() < 5) return std::nullopt;
  const std::string outward = compact.substr(0, compact.size() - 3);
  const std::string inward = compact.substr(compact.size() - 3);
  if (space_count == 1 && text.find(' ') != outward.size()) return std::nullopt;
  if (compact == "GIR0AA") return "GIR 0AA";
  auto alpha = [](char c) { return c >= 'A' && c <= 'Z'; };
  if (!IsDigit(inward[0]) || !alpha(inward[1]) || !alpha(inward[2])) return std::nullopt;
  // Outward shapes: A9, A99, A9A, AA9, AA99, AA9A.
  std::string shape;
  for (char c : outward) shape += IsDigit(c) ? '9' : 'A';
  static const std::array<std::string_view, 6> kShapes = {"A9",  "A99",  "A9A",
                                                          "AA9", "AA99", "AA9A"};
  if (std::find(kShapes.begin(), kShapes.end(), shape) == kShapes.end()) return std::nullopt;
  return outward + " " + inward;
}

Result<Record> ParseRecord(const json& input, std::string_view where_prefix) {
  Sink sink;
  const std::string root(where_prefix);
  Record record;
  if (!input.is_object()) {
    WrongType(sink, root, "object", input);
  } else {
    ObjectReader r(input, root, sink);
    std::optional<Kind> kind;
    if (const json* k = r.Required("kind")) {
      if (const std::string* s = AsString(sink, r.At("kind"), *k)) {
        kind = ParseKind(*s);
        if (kind) {
          record.kind = *kind;
        } else {
          sink.Add(r.At("kind"),
                   "must be one of \"flag\", \"occurrence\", \"referral\", \"assessment\", "
                   "\"missing_episode\" or \"plan\"");
        }
      }
    }
    if (const json* s = r.Required("subject"))
      record.subject = CheckSubject(sink, r.At("subject"), *s);
    if (const json* s = r.Required("source")) record.source = CheckSource(sink, r.At("source"), *s);
    if (const json* c = r.Required("classification")) {
      record.classification = CheckClassification(sink, r.At("classification"), *c);
    }
    if (const json* b = r.Required("body")) {
      // Without a valid kind the body's fields are unknown; the kind's problem says why.
      if (kind) {
        record.body = CheckBody(sink, r.At("body"), *kind, *b);
      } else if (!b->is_object()) {
        WrongType(sink, r.At("body"), "object", *b);
      }
    }
    r.Finish();
  }
  if (sink.count() > 0) {
    const size_t n = sink.count();
    std::string detail = sink.truncated()
                             ? "record has more than " + std::to_string(n) + " problems"
                         : n == 1 ? std::string("record has 1 problem")
                                  : "record has " + std::to_string(n) + " problems";
    return Status::Invalid(std::move(detail), sink.Take(root));
  }
  return record;
}

json ToJson(const Record& record) {
  json subject = json::object();
  if (record.subject.nhs_number) subject["nhs_number"] = *record.subject.nhs_number;
  if (!record.subject.local_ids.empty()) {
    json ids = json::array();
    for (const LocalId& id : record.subject.local_ids) {
      ids.push_back({{"system", id.system}, {"value", id.value}});
    }
    subject["local_ids"] = std::move(ids);
  }
  if (record.subject.given_name) subject["given_name"] = *record.subject.given_name;
  if (record.subject.family_name) subject["family_name"] = *record.subject.family_name;
  if (record.subject.birth_date) subject["birth_date"] = *record.subject.birth_date;
  if (record.subject.postcode) subject["postcode"] = *record.subject.postcode;

  json out = json::object();
  out["kind"] = std::string(KindName(record.kind));
  out["subject"] = std::move(subject);
  out["source"] = {{"agency", record.source.agency},
                   {"system", record.source.system},
                   {"record_id", record.source.record_id},
                   {"version", record.source.version},
                   {"recorded_at", record.source.recorded_at}};
  out["classification"] = {{"special_category", record.classification.special_category},
                           {"criminal_offence", record.classification.criminal_offence},
                           {"schedule12a", record.classification.schedule12a},
                           {"handling", record.classification.handling}};
  out["body"] = record.body;
  return out;
}

std::string CanonicalJson(const json& value) {
  // nlohmann::json keeps objects in a std::map, so keys come out sorted by byte (which for
  // UTF-8 is code point order). Integers are printed without exponent; floats (never in a
  // valid record) in their shortest round-trip form, which is deterministic. Strings that
  // are not valid UTF-8 (only possible for values built in code, since the parser rejects
  // them) are written with U+FFFD rather than throwing.
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string SubjectRef::ToString() const {
  return type == Type::kNhs ? "nhs:" + value : system + ":" + value;
}

Result<SubjectRef> ParseSubjectRef(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return Status::BadRequest("subject reference: " + why +
                              " (expected \"nhs:<10 digits>\", \"csc:<area>:<id>\" or "
                              "\"police:<force>:<id>\")");
  };
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return bad("no scheme");
  const std::string_view scheme = text.substr(0, colon);
  const std::string_view rest = text.substr(colon + 1);
  SubjectRef ref;
  if (scheme == "nhs") {
    if (rest.size() != 10 || !std::all_of(rest.begin(), rest.end(), IsDigit)) {
      return bad("NHS number must be 10 digits");
    }
    if (!IsValidNhsNumber(rest)) return bad("NHS number check digit is wrong");
    ref.type = SubjectRef::Type::kNhs;
    ref.system = "nhs";
    ref.value = std::string(rest);
    return ref;
  }
  if (scheme != "csc" && scheme != "police") {
    return bad("unknown scheme \"" + std::string(scheme.substr(0, 16)) + "\"");
  }
  const auto colon2 = rest.find(':');
  if (colon2 == std::string_view::npos)
    return bad("missing the id after the " + std::string(scheme == "csc" ? "area" : "force"));
  const std::string_view owner = rest.substr(0, colon2);
  const std::string_view id = rest.substr(colon2 + 1);
  if (!IsSlug(owner)) {
    return bad(std::string(scheme == "csc" ? "area" : "force") +
               " must be a slug of a-z, 0-9 and '-'");
  }
  Sink sink;
  if (!CheckText(sink, "", id, TextRule::kAsciiId, kMaxLocalIdChars)) {
    return bad("id " + sink.Take("").front().what);
  }
  ref.type = scheme == "csc" ? SubjectRef::Type::kCsc : SubjectRef::Type::kPolice;
  ref.system = std::string(scheme) + ":" + std::string(owner);
  ref.value = std::string(id);
  return ref;
}

std::vector<SubjectRef> RefsOf(const Subject& subject) {
  std::vector<SubjectRef> refs;
  if (subject.nhs_number) {
    refs.push_back({SubjectRef::Type::kNhs, "nhs", *subject.nhs_number});
  }
  for (const LocalId& id : subject.local_ids) {
    SubjectRef ref;
    ref.type =
        id.system.rfind("police:", 0) == 0 ? SubjectRef::Type::kPolice : SubjectRef::Type::kCsc;
    ref.system = id.system;
    ref.value = id.value;
    refs.push_back(std::move(ref));
  }
  return refs;
}

std::string PrimaryRef(const Subject& subject) {
  if (subject.nhs_number) return "nhs:" + *subject.nhs_number;
  if (!subject.local_ids.empty()) {
    return subject.local_ids.front().system + ":" + subject.local_ids.front().value;
  }
  return "";
}

}  // namespace safegate::record
