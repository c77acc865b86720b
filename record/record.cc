// The canonical record: strict validation, canonical JSON, subject references.
// docs/record-model.md is the reference for every rule enforced here; keep them in step.

#include "record/record.h"

#include "record/canonical_json.h"
#include "record/json_pointer.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <charconv>
#include <cstddef>
#include <limits>
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

// RFC 6901: "~" and "/" inside a key are escaped so the pointer stays unambiguous.
std::string Ptr(const std::string& base, std::string_view key) {
  return base + '/' + JsonPointerToken(key);
}
std::string Ptr(const std::string& base, size_t index) {
  return base + "/" + std::to_string(index);
}

// Where a value is, as a JSON pointer that is only spelled out when a problem names it: a
// valid record is checked without building a string per field. A Loc refers to its parent
// and to its key, which must outlive it (they are the caller's locals, the field tables'
// names and the keys of the JSON being checked).
class Loc {
 public:
  Loc(const std::string& root) : root_(&root) {}  // NOLINT: implicit, a root is a Loc
  Loc(const Loc& parent, std::string_view key) : parent_(&parent), key_(key) {}
  Loc(const Loc& parent, size_t index) : parent_(&parent), index_(index), is_index_(true) {}

  std::string str() const {
    if (parent_ == nullptr) return *root_;
    return is_index_ ? Ptr(parent_->str(), index_) : Ptr(parent_->str(), key_);
  }

 private:
  const std::string* root_ = nullptr;
  const Loc* parent_ = nullptr;
  std::string_view key_;
  size_t index_ = 0;
  bool is_index_ = false;
};

// Collects problems; drops them past kMaxProblems and says so once.
class Sink {
 public:
  void Add(const Loc& where, std::string what) {
    if (problems_.size() < kMaxProblems) {
      problems_.push_back({where.str(), std::move(what)});
    } else {
      truncated_ = true;
    }
  }
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

std::string TypeName(const json& v) {
  if (v.is_boolean()) return "bool";
  if (v.is_number_integer()) return "integer";
  if (v.is_number_float()) return "number with a fraction";
  return v.type_name();  // "null", "object", "array", "string", ...
}

void WrongType(Sink& sink, const Loc& where, std::string_view expected, const json& v) {
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
  // Most text is printable ASCII: one byte, one character, nothing to report.
  while (i < s.size() && s[i] >= 0x20 && s[i] < 0x7F) ++i;
  scan.chars = i;
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
bool CheckText(Sink& sink, const Loc& where, std::string_view s, TextRule rule,
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
// not asked for. REQUIRES: obj is an object and outlives the reader; the keys asked for
// outlive it too (they are the field tables' names and string literals).
class ObjectReader {
 public:
  ObjectReader(const json& obj, const Loc& where, Sink& sink)
      : obj_(obj), where_(where), sink_(sink) {}

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
      if (!Known(key)) sink_.Add(At(key), "unknown field");
    }
  }
  Loc At(std::string_view key) const { return Loc(where_, key); }
  const Loc& where() const { return where_; }

 private:
  const json* Find(std::string_view key) {
    if (known_count_ < known_.size()) {
      known_[known_count_++] = key;
    } else {
      more_known_.push_back(key);
    }
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }
  bool Known(std::string_view key) const {
    return std::find(known_.begin(), known_.begin() + static_cast<ptrdiff_t>(known_count_),
                     key) != known_.begin() + static_cast<ptrdiff_t>(known_count_) ||
           std::find(more_known_.begin(), more_known_.end(), key) != more_known_.end();
  }

  const json& obj_;
  Loc where_;
  Sink& sink_;
  // A handful of names per object, searched in order: no allocation for the usual few.
  std::array<std::string_view, 12> known_;
  size_t known_count_ = 0;
  std::vector<std::string_view> more_known_;
};

const std::string* AsString(Sink& sink, const Loc& where, const json& v) {
  if (!v.is_string()) {
    WrongType(sink, where, "string", v);
    return nullptr;
  }
  return v.get_ptr<const std::string*>();
}

std::optional<bool> AsBool(Sink& sink, const Loc& where, const json& v) {
  if (!v.is_boolean()) {
    WrongType(sink, where, "bool", v);
    return std::nullopt;
  }
  return v.get<bool>();
}

std::optional<int64_t> AsInt(Sink& sink, const Loc& where, const json& v) {
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

bool CheckSlug(Sink& sink, const Loc& where, std::string_view s) {
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

void CheckObject(Sink& sink, const Loc& where, json& v, const std::vector<FieldSpec>& fields);

// Validates one value against its spec and normalises it in place (postcodes). Returns false
// when there was a problem (already reported); the value is then left as it was found.
bool CheckValue(Sink& sink, const Loc& where, json& v, const FieldSpec& spec) {
  switch (spec.type) {
    case FieldType::kLine:
    case FieldType::kText: {
      const std::string* s = AsString(sink, where, v);
      if (s == nullptr) return false;
      const bool line = spec.type == FieldType::kLine;
      return CheckText(sink, where, *s, line ? TextRule::kLine : TextRule::kMultiline,
                       line ? kMaxShortTextChars : kMaxTextChars);
    }
    case FieldType::kCode: {
      const std::string* s = AsString(sink, where, v);
      if (s == nullptr) return false;
      if (!IsCode(*s)) {
        sink.Add(where, "must be a code: 1 to 32 characters of A-Z, a-z, 0-9, '_', '.' and '-'");
        return false;
      }
      return true;
    }
    case FieldType::kSlug: {
      const std::string* s = AsString(sink, where, v);
      return s != nullptr && CheckSlug(sink, where, *s);
    }
    case FieldType::kEnum: {
      const std::string* s = AsString(sink, where, v);
      if (s == nullptr) return false;
      if (std::find(spec.values.begin(), spec.values.end(), *s) == spec.values.end()) {
        sink.Add(where, "must be one of " + JoinQuoted(spec.values));
        return false;
      }
      return true;
    }
    case FieldType::kDate: {
      const std::string* s = AsString(sink, where, v);
      if (s == nullptr) return false;
      if (!IsValidDate(*s)) {
        sink.Add(where, "must be a calendar date YYYY-MM-DD");
        return false;
      }
      return true;
    }
    case FieldType::kDateTime: {
      const std::string* s = AsString(sink, where, v);
      if (s == nullptr) return false;
      if (!IsValidDateTime(*s)) {
        sink.Add(where, "must be a UTC date and time YYYY-MM-DDTHH:MM:SS[.fff]Z");
        return false;
      }
      return true;
    }
    case FieldType::kDateOrDateTime: {
      const std::string* s = AsString(sink, where, v);
      if (s == nullptr) return false;
      if (!ParseDateOrDateTime(*s)) {
        sink.Add(where,
                 "must be a calendar date YYYY-MM-DD or a UTC date and time "
                 "YYYY-MM-DDTHH:MM:SS[.fff]Z");
        return false;
      }
      return true;
    }
    case FieldType::kBool:
      return AsBool(sink, where, v).has_value();
    case FieldType::kPostcode: {
      const std::string* s = AsString(sink, where, v);
      if (s == nullptr) return false;
      auto pc = NormalisePostcode(*s);
      if (!pc) {
        sink.Add(where, "not a UK postcode");
        return false;
      }
      if (*pc != *s) v = std::move(*pc);
      return true;
    }
    case FieldType::kLineArray:
    case FieldType::kDateArray:
    case FieldType::kObjectArray: {
      if (!v.is_array()) {
        WrongType(sink, where, "array", v);
        return false;
      }
      if (v.size() > kMaxArrayItems) {
        sink.Add(where, "more than " + std::to_string(kMaxArrayItems) + " items");
        return false;
      }
      FieldSpec item;
      item.type = spec.type == FieldType::kLineArray   ? FieldType::kLine
                  : spec.type == FieldType::kDateArray ? FieldType::kDate
                                                       : FieldType::kObject;
      item.fields = spec.fields;
      bool ok = true;
      for (size_t i = 0; i < v.size(); ++i) {
        if (!CheckValue(sink, Loc(where, i), v[i], item)) ok = false;
      }
      return ok;
    }
    case FieldType::kObject: {
      if (!v.is_object()) {
        WrongType(sink, where, "object", v);
        return false;
      }
      const size_t before = sink.count();
      CheckObject(sink, where, v, *spec.fields);
      return sink.count() == before;
    }
  }
  return false;
}

// Checks an object against its field table and normalises it in place: nullable fields that
// are absent are set to null, and fields that failed their check are removed, so that what
// is left (the same as a copy of the fields that passed) is what the cross-field checks see.
void CheckObject(Sink& sink, const Loc& where, json& v, const std::vector<FieldSpec>& fields) {
  auto& object = v.get_ref<json::object_t&>();
  // One pass over the members, each matched to its field by a short linear search; then the
  // fields in table order and the unknown members in key order, the order problems are
  // reported in. The largest table has 9 fields.
  constexpr size_t kMaxFields = 16;
  assert(fields.size() <= kMaxFields);
  std::array<json::object_t::iterator, kMaxFields> found;
  std::array<bool, kMaxFields> present{};
  bool unknown = false;
  for (auto it = object.begin(); it != object.end(); ++it) {
    size_t i = 0;
    while (i < fields.size() && fields[i].name != it->first) ++i;
    if (i == fields.size()) {
      unknown = true;
    } else {
      found[i] = it;
      present[i] = true;
    }
  }
  for (size_t i = 0; i < fields.size(); ++i) {
    const FieldSpec& spec = fields[i];
    if (!present[i]) {
      if (spec.presence == Presence::kRequired) {
        sink.Add(Loc(where, spec.name), "required field missing");
      } else if (spec.presence == Presence::kNullable) {
        object.emplace(std::string(spec.name), nullptr);
      }
      continue;
    }
    json& value = found[i]->second;
    if (value.is_null() && spec.presence == Presence::kNullable) continue;
    if (!CheckValue(sink, Loc(where, spec.name), value, spec)) object.erase(found[i]);
  }
  if (!unknown) return;
  for (const auto& member : object) {
    const bool known = std::any_of(fields.begin(), fields.end(),
                                   [&](const FieldSpec& f) { return f.name == member.first; });
    if (!known) sink.Add(Loc(where, member.first), "unknown field");
  }
}

// `later` must not be before `earlier` when both are present and valid in `body`.
void CheckOrder(Sink& sink, const Loc& where, const json& body, std::string_view earlier,
                std::string_view later) {
  auto a = body.find(earlier);
  auto b = body.find(later);
  if (a == body.end() || b == body.end() || !a->is_string() || !b->is_string()) return;
  auto ta = ParseDateOrDateTime(a->get_ref<const std::string&>());
  auto tb = ParseDateOrDateTime(b->get_ref<const std::string&>());
  if (ta && tb && tb->Key() < ta->Key()) {
    sink.Add(Loc(where, later),
             "must not be before " + std::string(earlier) + " (" + a->get<std::string>() + ")");
  }
}

// Checks a body in place (see CheckObject). A body that is not an object becomes {}.
void CheckBody(Sink& sink, const Loc& where, Kind kind, json& body) {
  if (!body.is_object()) {
    WrongType(sink, where, "object", body);
    body = json::object();
    return;
  }
  CheckObject(sink, where, body, BodyFields(kind));
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
        sink.Add(Loc(Loc(where, "return_interview"), "accepted"),
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
}

// ---------------------------------------------------------------------------------------------
// Envelope sections

// The rules for each envelope field, shared by the JSON reading (ParseRecord) and the
// checking of records built in code (CheckRecord), so the two cannot drift apart. Each
// reports what is wrong at `where` and returns whether the value is fine.

bool CheckNhsNumberText(Sink& sink, const Loc& where, const std::string& s) {
  if (s.size() != 10 || !std::all_of(s.begin(), s.end(), IsDigit)) {
    sink.Add(where, "must be 10 digits");
    return false;
  }
  if (!IsValidNhsNumber(s)) {
    sink.Add(where, "check digit is wrong (modulus 11)");
    return false;
  }
  return true;
}

bool CheckLocalIdSystem(Sink& sink, const Loc& where, std::string_view system) {
  const auto colon = system.find(':');
  const std::string_view prefix = system.substr(0, colon);
  if (colon == std::string_view::npos || (prefix != "csc" && prefix != "police") ||
      !IsSlug(system.substr(colon + 1))) {
    sink.Add(where, "must be \"csc:<area>\" or \"police:<force>\" with a slug after the colon");
    return false;
  }
  return true;
}

bool CheckLocalIdValue(Sink& sink, const Loc& where, const std::string& s) {
  return CheckText(sink, where, s, TextRule::kAsciiId, kMaxLocalIdChars);
}

bool CheckName(Sink& sink, const Loc& where, const std::string& s) {
  return CheckText(sink, where, s, TextRule::kLine, kMaxNameChars);
}

bool CheckBirthDate(Sink& sink, const Loc& where, const std::string& s) {
  if (IsValidDate(s)) return true;
  sink.Add(where, "must be a calendar date YYYY-MM-DD");
  return false;
}

std::optional<std::string> CheckPostcode(Sink& sink, const Loc& where, const std::string& s) {
  auto norm = NormalisePostcode(s);
  if (!norm) sink.Add(where, "not a UK postcode");
  return norm;
}

void NeedIdentifier(Sink& sink, const Loc& where) {
  sink.Add(where, "needs an identifier: nhs_number or at least one local_ids entry");
}

bool CheckSourceSystem(Sink& sink, const Loc& where, const std::string& s) {
  return CheckText(sink, where, s, TextRule::kAsciiId, kMaxSlugChars);
}

bool CheckRecordId(Sink& sink, const Loc& where, const std::string& s) {
  return CheckText(sink, where, s, TextRule::kAsciiId, kMaxRecordIdChars);
}

bool CheckVersion(Sink& sink, const Loc& where, int64_t n) {
  if (n >= 1) return true;
  sink.Add(where, "must be at least 1");
  return false;
}

bool CheckRecordedAt(Sink& sink, const Loc& where, const std::string& s) {
  if (IsValidDateTime(s)) return true;
  sink.Add(where, "must be a UTC date and time YYYY-MM-DDTHH:MM:SS[.fff]Z");
  return false;
}

// One schedule12a item; `seen` collects the paragraphs accepted so far.
void CheckParagraph(Sink& sink, const Loc& where, int64_t n, std::array<bool, 8>& seen) {
  if (n < 1 || n > 7) {
    sink.Add(where, "must be a paragraph number 1 to 7");
  } else if (seen[static_cast<size_t>(n)]) {
    sink.Add(where, "duplicate paragraph " + std::to_string(n));
  } else {
    seen[static_cast<size_t>(n)] = true;
  }
}

std::vector<int> Paragraphs(const std::array<bool, 8>& seen) {
  std::vector<int> out;
  for (int p = 1; p <= 7; ++p) {
    if (seen[static_cast<size_t>(p)]) out.push_back(p);  // ascending by design
  }
  return out;
}

bool CheckHandling(Sink& sink, const Loc& where, const std::string& s) {
  if (s == "P" || s == "C") return true;
  sink.Add(where, "must be \"P\" or \"C\"");
  return false;
}

// ---------------------------------------------------------------------------------------------
// Envelope sections read from JSON

Subject CheckSubject(Sink& sink, const Loc& where, const json& v) {
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
    const Loc at = r.At("nhs_number");
    if (const std::string* s = AsString(sink, at, *nhs)) {
      if (CheckNhsNumberText(sink, at, *s)) {
        subject.nhs_number = *s;
        has_identifier = true;
      }
    }
  }

  if (const json* ids = r.Optional("local_ids")) {
    const Loc at = r.At("local_ids");
    if (!ids->is_array()) {
      WrongType(sink, at, "array", *ids);
      identifier_given = true;
    } else if (ids->size() > kMaxArrayItems) {
      sink.Add(at, "more than " + std::to_string(kMaxArrayItems) + " items");
      identifier_given = true;
    } else {
      for (size_t i = 0; i < ids->size(); ++i) {
        identifier_given = true;
        const Loc item_at(at, i);
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
          ok = ok && s != nullptr && CheckLocalIdSystem(sink, ir.At("system"), *s);
          if (s != nullptr) id.system = *s;
        } else {
          ok = false;
        }
        if (const json* val = ir.Required("value")) {
          const std::string* s = AsString(sink, ir.At("value"), *val);
          ok = ok && s != nullptr && CheckLocalIdValue(sink, ir.At("value"), *s);
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
      const Loc at = r.At(key);
      const std::string* s = AsString(sink, at, *name);
      if (s != nullptr && CheckName(sink, at, *s)) {
        (key == "given_name" ? subject.given_name : subject.family_name) = *s;
      }
    }
  }
  if (const json* dob = r.Optional("birth_date")) {
    const Loc at = r.At("birth_date");
    if (const std::string* s = AsString(sink, at, *dob)) {
      if (CheckBirthDate(sink, at, *s)) subject.birth_date = *s;
    }
  }
  if (const json* pc = r.Optional("postcode")) {
    const Loc at = r.At("postcode");
    if (const std::string* s = AsString(sink, at, *pc)) {
      if (auto norm = CheckPostcode(sink, at, *s)) subject.postcode = std::move(*norm);
    }
  }
  r.Finish();
  if (!has_identifier && !identifier_given) NeedIdentifier(sink, where);
  return subject;
}

Source CheckSource(Sink& sink, const Loc& where, const json& v) {
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
      if (CheckSourceSystem(sink, r.At("system"), *s)) source.system = *s;
    }
  }
  if (const json* id = r.Required("record_id")) {
    if (const std::string* s = AsString(sink, r.At("record_id"), *id)) {
      if (CheckRecordId(sink, r.At("record_id"), *s)) source.record_id = *s;
    }
  }
  if (const json* ver = r.Required("version")) {
    if (auto n = AsInt(sink, r.At("version"), *ver)) {
      if (CheckVersion(sink, r.At("version"), *n)) source.version = *n;
    }
  }
  if (const json* at = r.Required("recorded_at")) {
    if (const std::string* s = AsString(sink, r.At("recorded_at"), *at)) {
      if (CheckRecordedAt(sink, r.At("recorded_at"), *s)) source.recorded_at = *s;
    }
  }
  r.Finish();
  return source;
}

Classification CheckClassification(Sink& sink, const Loc& where, const json& v) {
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
    const Loc at = r.At("schedule12a");
    if (!arr->is_array()) {
      WrongType(sink, at, "array", *arr);
    } else {
      std::array<bool, 8> seen{};
      for (size_t i = 0; i < arr->size(); ++i) {
        const Loc item_at(at, i);
        if (auto n = AsInt(sink, item_at, (*arr)[i])) CheckParagraph(sink, item_at, *n, seen);
      }
      c.schedule12a = Paragraphs(seen);
    }
  }
  if (const json* h = r.Required("handling")) {
    if (const std::string* s = AsString(sink, r.At("handling"), *h)) {
      if (CheckHandling(sink, r.At("handling"), *s)) c.handling = *s;
    }
  }
  r.Finish();
  return c;
}

// ---------------------------------------------------------------------------------------------
// Envelope sections of a record built in code: the same rules in the same order as the JSON
// reading above, without the type checks a typed field cannot fail. Values are normalised in
// place (postcode, schedule12a order).

void CheckSubjectFields(Sink& sink, const Loc& where, Subject& subject) {
  if (subject.nhs_number) CheckNhsNumberText(sink, Loc(where, "nhs_number"), *subject.nhs_number);
  if (!subject.local_ids.empty()) {
    const Loc at(where, "local_ids");
    if (subject.local_ids.size() > kMaxArrayItems) {
      sink.Add(at, "more than " + std::to_string(kMaxArrayItems) + " items");
    } else {
      for (size_t i = 0; i < subject.local_ids.size(); ++i) {
        const Loc item_at(at, i);
        const LocalId& id = subject.local_ids[i];
        const bool system_ok = CheckLocalIdSystem(sink, Loc(item_at, "system"), id.system);
        const bool value_ok = CheckLocalIdValue(sink, Loc(item_at, "value"), id.value);
        if (!system_ok || !value_ok) continue;
        // An equal earlier id passed the same checks, so ParseRecord kept it: a duplicate.
        for (size_t k = 0; k < i; ++k) {
          if (subject.local_ids[k] == id) {
            sink.Add(item_at, "duplicate local id");
            break;
          }
        }
      }
    }
  }
  if (subject.given_name) CheckName(sink, Loc(where, "given_name"), *subject.given_name);
  if (subject.family_name) CheckName(sink, Loc(where, "family_name"), *subject.family_name);
  if (subject.birth_date) CheckBirthDate(sink, Loc(where, "birth_date"), *subject.birth_date);
  if (subject.postcode) {
    if (auto norm = CheckPostcode(sink, Loc(where, "postcode"), *subject.postcode)) {
      if (*norm != *subject.postcode) subject.postcode = std::move(*norm);
    }
  }
  if (!subject.nhs_number && subject.local_ids.empty()) NeedIdentifier(sink, where);
}

void CheckSourceFields(Sink& sink, const Loc& where, const Source& source) {
  CheckSlug(sink, Loc(where, "agency"), source.agency);
  CheckSourceSystem(sink, Loc(where, "system"), source.system);
  CheckRecordId(sink, Loc(where, "record_id"), source.record_id);
  CheckVersion(sink, Loc(where, "version"), source.version);
  CheckRecordedAt(sink, Loc(where, "recorded_at"), source.recorded_at);
}

void CheckClassificationFields(Sink& sink, const Loc& where, Classification& c) {
  const Loc at(where, "schedule12a");
  std::array<bool, 8> seen{};
  bool sorted = true;
  for (size_t i = 0; i < c.schedule12a.size(); ++i) {
    CheckParagraph(sink, Loc(at, i), c.schedule12a[i], seen);
    if (i > 0 && c.schedule12a[i] <= c.schedule12a[i - 1]) sorted = false;
  }
  if (!sorted) c.schedule12a = Paragraphs(seen);
  CheckHandling(sink, Loc(where, "handling"), c.handling);
}

// The failure ParseRecord and CheckRecord return. REQUIRES: sink.count() > 0.
Status Invalid(Sink& sink, const std::string& root) {
  const size_t n = sink.count();
  std::string detail = sink.truncated() ? "record has more than " + std::to_string(n) + " problems"
                       : n == 1         ? std::string("record has 1 problem")
                                        : "record has " + std::to_string(n) + " problems";
  return Status::Invalid(std::move(detail), sink.Take(root));
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

std::string JsonPointerToken(std::string_view key) {
  std::string out;
  out.reserve(key.size());
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
  // Letters and digits without the spaces, upper-cased: at most 7 (a buffer, not a string:
  // this runs for every postcode an adapter reads).
  std::array<char, 8> compact{};
  size_t n = 0;
  size_t spaces = 0;
  size_t first_space = std::string_view::npos;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ') {
      if (spaces++ == 0) first_space = i;
      continue;
    }
    if (!IsDigit(c) && !IsUpperOrLowerAlpha(c)) return std::nullopt;
    if (n == 7) return std::nullopt;
    compact[n++] = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  }
  // A single space at most, and only between the outward and inward codes.
  if (spaces > 1) return std::nullopt;
  if (n < 5) return std::nullopt;
  const std::string_view all(compact.data(), n);
  const std::string_view outward = all.substr(0, n - 3);
  const std::string_view inward = all.substr(n - 3);
  if (spaces == 1 && first_space != outward.size()) return std::nullopt;
  if (all == "GIR0AA") return "GIR 0AA";
  auto alpha = [](char c) { return c >= 'A' && c <= 'Z'; };
  if (!IsDigit(inward[0]) || !alpha(inward[1]) || !alpha(inward[2])) return std::nullopt;
  // Outward shapes: A9, A99, A9A, AA9, AA99, AA9A.
  std::array<char, 4> shape_buffer{};
  for (size_t i = 0; i < outward.size(); ++i) shape_buffer[i] = IsDigit(outward[i]) ? '9' : 'A';
  const std::string_view shape(shape_buffer.data(), outward.size());
  static constexpr std::array<std::string_view, 6> kShapes = {"A9",  "A99",  "A9A",
                                                              "AA9", "AA99", "AA9A"};
  if (std::find(kShapes.begin(), kShapes.end(), shape) == kShapes.end()) return std::nullopt;
  std::string out;
  out.reserve(n + 1);
  out.append(outward).push_back(' ');
  out.append(inward);
  return out;
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
        record.body = *b;
        CheckBody(sink, r.At("body"), *kind, record.body);
      } else if (!b->is_object()) {
        WrongType(sink, r.At("body"), "object", *b);
      }
    }
    r.Finish();
  }
  if (sink.count() > 0) return Invalid(sink, root);
  return record;
}

Result<Record> CheckRecord(Record record, std::string_view where_prefix) {
  Sink sink;
  const std::string root(where_prefix);
  const Loc at(root);
  // ToJson writes the kind's name, which ParseRecord reads back.
  record.kind = ParseKind(KindName(record.kind)).value_or(Kind::kFlag);
  CheckSubjectFields(sink, Loc(at, "subject"), record.subject);
  CheckSourceFields(sink, Loc(at, "source"), record.source);
  CheckClassificationFields(sink, Loc(at, "classification"), record.classification);
  CheckBody(sink, Loc(at, "body"), record.kind, record.body);
  if (sink.count() > 0) return Invalid(sink, root);
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

namespace {

// The bytes nlohmann::json's dump(-1, ' ', false, replace) gives for `value`, written
// directly. Audit entries, sealed bodies and content hashes are all canonical JSON, and
// nlohmann's serializer runs every string byte through its UTF-8 decoder; here a string of
// printable ASCII without '"' or '\\' (nearly every string the gateway writes) is copied as it
// is, and anything else is left to nlohmann, so the bytes are the same by construction
// (CanonicalJsonTest checks them against dump()).
void AppendCanonicalString(std::string& out, std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7F || c == '"' || c == '\\') {
      out += json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
      return;
    }
  }
  out += '"';
  out += s;
  out += '"';
}

void AppendCanonical(std::string& out, const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      out += "null";
      return;
    case json::value_t::boolean:
      out += value.get<bool>() ? "true" : "false";
      return;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: {
      char buf[24];
      auto [end, ec] =
          value.is_number_unsigned()
              ? std::to_chars(buf, buf + sizeof buf, value.get<uint64_t>())
              : std::to_chars(buf, buf + sizeof buf, value.get<int64_t>());
      (void)ec;  // 24 bytes hold any 64-bit integer
      out.append(buf, end);
      return;
    }
    case json::value_t::string:
      AppendCanonicalString(out, value.get_ref<const std::string&>());
      return;
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const json& item : value) {
        if (!first) out += ',';
        first = false;
        AppendCanonical(out, item);
      }
      out += ']';
      return;
    }
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = value.begin(); it != value.end(); ++it) {
        if (!first) out += ',';
        first = false;
        AppendCanonicalString(out, it.key());
        out += ':';
        AppendCanonical(out, it.value());
      }
      out += '}';
      return;
    }
    default:  // floats (never in a valid record), binary, discarded: nlohmann's own bytes
      out += value.dump(-1, ' ', false, json::error_handler_t::replace);
      return;
  }
}

}  // namespace

void AppendCanonicalJson(std::string& out, const json& value) { AppendCanonical(out, value); }

void AppendCanonicalJsonString(std::string& out, std::string_view text) {
  AppendCanonicalString(out, text);
}

std::string CanonicalJson(const json& value) {
  // nlohmann::json keeps objects in a std::map, so keys come out sorted by byte (which for
  // UTF-8 is code point order). Integers are printed without exponent; floats (never in a
  // valid record) in their shortest round-trip form, which is deterministic. Strings that
  // are not valid UTF-8 (only possible for values built in code, since the parser rejects
  // them) are written with U+FFFD rather than throwing. The bytes are exactly those of
  // value.dump(-1, ' ', false, json::error_handler_t::replace).
  std::string out;
  out.reserve(256);
  AppendCanonical(out, value);
  return out;
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
  const std::string nowhere;
  if (!CheckText(sink, nowhere, id, TextRule::kAsciiId, kMaxLocalIdChars)) {
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
