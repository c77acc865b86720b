// The decision engine and redaction. Loading and validation are in policy_loader.cc.
#include "policy/policy.h"

#include <algorithm>
#include <charconv>
#include <set>
#include <utility>

#include "policy/policy_internal.h"
#include "record/json_pointer.h"

namespace safegate::policy {
namespace {

constexpr std::array<std::string_view, kPurposeCount> kPurposeNames = {
    "safeguarding",  "s47_enquiry",   "unscheduled_care", "scheduled_care",
    "case_transfer", "missing_child", "statistics",       "subject_access"};
constexpr std::array<std::string_view, kRoleCount> kRoleNames = {"police", "health",    "csc",
                                                                 "audit",  "committee", "gateway"};
constexpr std::array<std::string_view, kAgeBandCount> kAgeBandNames = {"child", "adult", "unknown"};
constexpr std::array<std::string_view, 4> kConsentNames = {"none", "given", "refused", "withdrawn"};
constexpr std::array<std::string_view, 3> kEffectNames = {"permit", "redact", "deny"};

template <typename Enum, size_t N>
std::optional<Enum> ParseName(const std::array<std::string_view, N>& names, std::string_view s) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == s) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

// Parses exactly `n` ASCII digits.
bool Digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

// "YYYY-MM-DD" -> a valid calendar date.
std::optional<std::chrono::year_month_day> ParseDate(std::string_view s) {
  int y = 0, m = 0, d = 0;
  if (s.size() < 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  if (!Digits(s, 0, 4, y) || !Digits(s, 5, 2, m) || !Digits(s, 8, 2, d)) return std::nullopt;
  std::chrono::year_month_day ymd{std::chrono::year{y},
                                  std::chrono::month{static_cast<unsigned>(m)},
                                  std::chrono::day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  return ymd;
}

// What Decide needs to know about its input, as bits and interned ids.
struct Facts {
  uint16_t source_role;
  uint16_t kind;
  uint16_t age;
  uint16_t handling;
  uint16_t special;
  uint16_t criminal;
  uint16_t same_area;
  uint16_t sched;
  int32_t source_agency = -1;
  int32_t source_area = -1;
  int32_t recipient_agency = -1;
  int32_t recipient_area = -1;
};

int32_t Lookup(const NameTable& table, std::string_view name) {
  auto it = table.find(name);
  return it == table.end() ? -1 : it->second;
}

bool InList(const std::vector<int32_t>& list, int32_t id) {
  if (list.empty()) return true;
  return std::find(list.begin(), list.end(), id) != list.end();
}

bool Matches(const CompiledRule& r, const Facts& f) {
  return (r.source_roles & f.source_role) && (r.kinds & f.kind) && (r.age_bands & f.age) &&
         (r.handling & f.handling) && (r.special & f.special) && (r.criminal & f.criminal) &&
         (r.same_area & f.same_area) && (r.schedule12a & f.sched) &&
         InList(r.source_agencies, f.source_agency) && InList(r.source_areas, f.source_area) &&
         InList(r.recipient_agencies, f.recipient_agency) &&
         InList(r.recipient_areas, f.recipient_area);
}

uint16_t Sched12aBits(const std::vector<int>& marks) {
  if (marks.empty()) return kSched12aNone;
  uint16_t bits = 0;
  for (int p : marks) bits |= (p >= 1 && p <= 7) ? static_cast<uint16_t>(1u << p) : kSched12aOther;
  return bits;
}

// Copies from `in` to `out` the members covered by `allowed`, recording the pointers of
// members left out. `path` is the pointer of `in`.
void RedactObject(const nlohmann::json& in, const std::string& path,
                  const std::set<std::string, std::less<>>& allowed, nlohmann::json& out,
                  std::vector<std::string>& withheld) {
  for (auto it = in.begin(); it != in.end(); ++it) {
    std::string member = path + "/" + record::JsonPointerToken(it.key());
    if (allowed.count(member) != 0) {
      out[it.key()] = it.value();
      continue;
    }
    // Is some allowed pointer below this member? Then descend into it.
    std::string prefix = member + "/";
    auto below = allowed.lower_bound(prefix);
    bool has_descendant = below != allowed.end() && below->compare(0, prefix.size(), prefix) == 0;
    if (has_descendant && it.value().is_object()) {
      nlohmann::json sub = nlohmann::json::object();
      RedactObject(it.value(), member, allowed, sub, withheld);
      out[it.key()] = std::move(sub);
    } else {
      withheld.push_back(std::move(member));
    }
  }
}

}  // namespace

std::string_view PurposeName(Purpose purpose) {
  return kPurposeNames[static_cast<size_t>(purpose)];
}
std::optional<Purpose> ParsePurpose(std::string_view name) {
  return ParseName<Purpose>(kPurposeNames, name);
}
const std::vector<Purpose>& AllPurposes() {
  static const std::vector<Purpose> kAll = [] {
    std::vector<Purpose> v;
    for (int i = 0; i < kPurposeCount; ++i) v.push_back(static_cast<Purpose>(i));
    return v;
  }();
  return kAll;
}
bool IsSafeguardingPurpose(Purpose purpose) {
  return purpose == Purpose::kSafeguarding || purpose == Purpose::kS47Enquiry ||
         purpose == Purpose::kMissingChild;
}

std::string_view RoleName(Role role) { return kRoleNames[static_cast<size_t>(role)]; }
std::optional<Role> ParseRole(std::string_view name) { return ParseName<Role>(kRoleNames, name); }
const std::vector<Role>& AllRoles() {
  static const std::vector<Role> kAll = [] {
    std::vector<Role> v;
    for (int i = 0; i < kRoleCount; ++i) v.push_back(static_cast<Role>(i));
    return v;
  }();
  return kAll;
}

std::string_view AgeBandName(AgeBand band) { return kAgeBandNames[static_cast<size_t>(band)]; }
std::optional<AgeBand> ParseAgeBand(std::string_view name) {
  return ParseName<AgeBand>(kAgeBandNames, name);
}

std::string_view ConsentStateName(ConsentState state) {
  return kConsentNames[static_cast<size_t>(state)];
}
std::optional<ConsentState> ParseConsentState(std::string_view name) {
  return ParseName<ConsentState>(kConsentNames, name);
}

std::string_view EffectName(Effect effect) { return kEffectNames[static_cast<size_t>(effect)]; }

AgeBand AgeBandOf(const std::optional<std::string>& birth_date,
                  std::chrono::system_clock::time_point now) {
  using namespace std::chrono;
  if (!birth_date || birth_date->size() != 10) return AgeBand::kUnknown;
  auto born = ParseDate(*birth_date);
  if (!born) return AgeBand::kUnknown;
  year_month_day today{floor<days>(now)};
  if (sys_days{*born} > sys_days{today}) return AgeBand::kUnknown;
  year y18 = born->year() + years{18};
  year_month_day eighteenth{y18, born->month(), born->day()};
  if (!eighteenth.ok()) eighteenth = year_month_day{y18, March, day{1}};  // born 29 February
  return sys_days{today} >= sys_days{eighteenth} ? AgeBand::kAdult : AgeBand::kChild;
}

std::optional<std::chrono::system_clock::time_point> ParseTimestamp(std::string_view s) {
  using namespace std::chrono;
  auto date = ParseDate(s);
  if (!date) return std::nullopt;
  sys_time<nanoseconds> t = sys_days{*date};
  if (s.size() == 10) return time_point_cast<system_clock::duration>(t);
  int hh = 0, mm = 0, ss = 0;
  if (s.size() < 20 || s[10] != 'T' || s[13] != ':' || s[16] != ':') return std::nullopt;
  if (!Digits(s, 11, 2, hh) || !Digits(s, 14, 2, mm) || !Digits(s, 17, 2, ss)) return std::nullopt;
  if (hh > 23 || mm > 59 || ss > 59) return std::nullopt;
  t += hours{hh} + minutes{mm} + seconds{ss};
  size_t pos = 19;
  if (s[pos] == '.') {
    ++pos;
    int64_t frac = 0;
    int ndigits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (ndigits < 9) {
        frac = frac * 10 + (s[pos] - '0');
        ++ndigits;
      }
      ++pos;
    }
    if (ndigits == 0) return std::nullopt;
    for (int i = ndigits; i < 9; ++i) frac *= 10;
    t += nanoseconds{frac};
  }
  if (pos == s.size()) return std::nullopt;
  if (s[pos] == 'Z' && pos + 1 == s.size()) return time_point_cast<system_clock::duration>(t);
  if ((s[pos] == '+' || s[pos] == '-') && pos + 6 == s.size() && s[pos + 3] == ':') {
    int oh = 0, om = 0;
    if (!Digits(s, pos + 1, 2, oh) || !Digits(s, pos + 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    auto offset = hours{oh} + minutes{om};
    t = s[pos] == '+' ? t - offset : t + offset;
    return time_point_cast<system_clock::duration>(t);
  }
  return std::nullopt;
}

nlohmann::json Decision::ToJson() const {
  return nlohmann::json{
      {"effect", EffectName(effect)},
      {"lawful_basis", lawful_basis},
      {"consent_required", consent_required},
      {"override_allowed", override_allowed},
      {"override_used", override_used},
      {"notify_owner", notify_owner},
      {"age_band", AgeBandName(age_band)},
      {"consent", ConsentStateName(consent)},
      {"governing_rule", governing_rule},
      {"rules_fired", rules_fired},
      {"reasons", reasons},
      {"allow_fields", allow_fields},
      {"retention_days", retention_days},
      {"policy_version", policy_version},
  };
}

std::shared_ptr<const Policy> MakePolicy(std::unique_ptr<const Policy::Data> data) {
  return std::shared_ptr<const Policy>(new Policy(std::move(data)));
}

Policy::Policy(std::unique_ptr<const Data> data) : data_(std::move(data)) {}
Policy::~Policy() = default;

const std::string& Policy::name() const { return data_->name; }
const std::string& Policy::source_name() const { return data_->source_name; }
const std::string& Policy::version() const { return data_->version; }
const std::vector<RuleSummary>& Policy::rules() const { return data_->summaries; }
const RuleSummary* Policy::FindRule(std::string_view id) const {
  for (const RuleSummary& r : data_->summaries) {
    if (r.id == id) return &r;
  }
  return nullptr;
}
int Policy::RetentionDays(record::Kind kind) const {
  return data_->retention[static_cast<size_t>(kind)];
}
const std::string& Policy::text() const { return data_->text; }

namespace {
const CompiledRule* FindCompiled(const Policy::Data& d, std::string_view id) {
  for (const CompiledRule& r : d.rules) {
    if (r.id == id) return &r;
  }
  return nullptr;
}
}  // namespace

std::string Policy::ExplainReason(std::string_view code) const {
  std::string_view id = code;
  const bool otherwise = code.substr(0, kOtherwisePermittedBy.size()) == kOtherwisePermittedBy;
  if (otherwise) id.remove_prefix(kOtherwisePermittedBy.size());
  const CompiledRule* r = FindCompiled(*data_, id);
  if (r == nullptr) return std::string(code);
  return otherwise ? std::string(kOtherwisePermittedBy) + r->reason_text : r->reason_text;
}

std::optional<std::string> Policy::LawfulBasisOf(std::string_view rule_id, bool special_category,
                                                 bool criminal_offence) const {
  const CompiledRule* r = FindCompiled(*data_, rule_id);
  if (r == nullptr || r->deny) return std::nullopt;
  return r->basis_text[(special_category ? 2 : 0) + (criminal_offence ? 1 : 0)];
}

Decision Policy::Decide(const DecisionInput& in) const {
  const Data& d = *data_;
  Decision out;
  out.policy_version = d.version;
  out.age_band = AgeBandOf(in.birth_date, in.now);
  out.consent = in.consent;

  const record::Classification& c = in.classification;
  Facts f;
  f.source_role = static_cast<uint16_t>(1u << static_cast<int>(in.source.role));
  f.kind = static_cast<uint16_t>(1u << static_cast<int>(in.kind));
  f.age = static_cast<uint16_t>(1u << static_cast<int>(out.age_band));
  // Any handling code other than "P" carries conditions: treat it as "C" (restrictive).
  f.handling = c.handling == "P" ? kFalseBit : kTrueBit;
  f.special = c.special_category ? kTrueBit : kFalseBit;
  f.criminal = c.criminal_offence ? kTrueBit : kFalseBit;
  f.same_area = in.source.area == in.recipient.area ? kTrueBit : kFalseBit;
  f.sched = Sched12aBits(c.schedule12a);
  if (d.uses_agencies) {
    f.source_agency = Lookup(d.agencies, in.source.agency);
    f.recipient_agency = Lookup(d.agencies, in.recipient.agency);
  }
  if (d.uses_areas) {
    f.source_area = Lookup(d.areas, in.source.area);
    f.recipient_area = Lookup(d.areas, in.recipient.area);
  }

  // Every matching rule fires; deny rules give their reasons now, the most specific permit
  // rule (the first in file order on a tie) governs.
  const auto& bucket = d.buckets[static_cast<size_t>(in.purpose) * kRoleCount +
                                 static_cast<size_t>(in.recipient.role)];
  const CompiledRule* governing = nullptr;
  bool denied = false;
  for (uint16_t index : bucket) {
    const CompiledRule& r = d.rules[index];
    if (!Matches(r, f)) continue;
    out.rules_fired.push_back(r.id);
    if (r.deny) {
      denied = true;
      out.reasons.push_back(r.reason_text);
      out.reason_codes.push_back(r.id);
    } else if (governing == nullptr || r.specificity > governing->specificity) {
      governing = &r;
    }
  }

  if (in.purpose == Purpose::kStatistics && !c.schedule12a.empty()) {
    denied = true;
    out.rules_fired.emplace_back(kBuiltinSched12a);
    out.reasons.push_back(std::string(kBuiltinSched12a) +
                          ": records carrying Schedule 12A marks (LGA 1972) never leave as rows "
                          "for statistics; committees receive suppressed aggregates only");
    out.reason_codes.push_back(out.reasons.back());
  }
  if (denied) return out;

  if (governing == nullptr) {
    out.rules_fired.emplace_back(kBuiltinDefaultDeny);
    std::string why(kBuiltinDefaultDeny);
    why += ": no rule permits sharing a ";
    why += record::KindName(in.kind);
    why += " record from ";
    why += RoleName(in.source.role);
    why += " to ";
    why += RoleName(in.recipient.role);
    why += " for ";
    why += PurposeName(in.purpose);
    out.reasons.push_back(std::move(why));
    out.reason_codes.push_back(out.reasons.back());
    return out;
  }

  const CompiledRule& g = *governing;
  out.governing_rule = g.id;
  out.consent_required = g.consent_required;
  out.override_allowed = g.override_allowed;

  // R1: special category and criminal offence data each need their own condition.
  bool r1_denied = false;
  if (c.special_category && g.special_condition.empty()) {
    r1_denied = true;
    out.rules_fired.emplace_back(kBuiltinArt9);
    out.reasons.push_back(std::string(kBuiltinArt9) +
                          ": the record is special category data (UK GDPR Art 9) and rule " + g.id +
                          " names no Art 9 condition");
    out.reason_codes.push_back(out.reasons.back());
  }
  if (c.criminal_offence && g.criminal_condition.empty()) {
    r1_denied = true;
    out.rules_fired.emplace_back(kBuiltinArt10);
    out.reasons.push_back(std::string(kBuiltinArt10) +
                          ": the record is criminal offence data (UK GDPR Art 10) and rule " +
                          g.id + " names no DPA 2018 Schedule 1 condition");
    out.reason_codes.push_back(out.reasons.back());
  }
  if (r1_denied) {
    out.reasons.push_back("otherwise permitted by " + g.reason_text);
    out.reason_codes.push_back(std::string(kOtherwisePermittedBy) + g.id);
    return out;
  }

  // R3 and R2: a refusal or withdrawal blocks; so does missing consent where consent is the
  // condition. Only an allowed, complete safeguarding override lifts the block.
  bool refused = in.consent == ConsentState::kRefused || in.consent == ConsentState::kWithdrawn;
  bool missing = g.consent_required && in.consent != ConsentState::kGiven;
  if (refused || missing) {
    std::string state = refused ? "consent was " + std::string(ConsentStateName(in.consent))
                                : std::string("consent is required and has not been given");
    state += " for ";
    state += PurposeName(in.purpose);
    const std::optional<Override>& ov = in.safeguarding_override;
    std::string blocked;
    if (!ov) {
      blocked = "; no safeguarding override was given";
    } else if (!g.override_allowed) {
      blocked = "; rule " + g.id + " does not allow the safeguarding override";
    } else if (ov->basis.empty() || ov->reason.empty() || ov->authorised_by.empty()) {
      blocked =
          "; the safeguarding override is incomplete (it needs basis, reason and "
          "authorised_by)";
    }
    if (!blocked.empty()) {
      out.rules_fired.emplace_back(kBuiltinConsent);
      out.reasons.push_back(std::string(kBuiltinConsent) + ": " + state + blocked);
      out.reason_codes.push_back(out.reasons.back());
      out.reasons.push_back("otherwise permitted by " + g.reason_text);
      out.reason_codes.push_back(std::string(kOtherwisePermittedBy) + g.id);
      return out;
    }
    out.override_used = true;
    out.rules_fired.emplace_back(kBuiltinOverride);
    out.reasons.push_back(g.reason_text);
    out.reason_codes.push_back(g.id);
    out.reasons.push_back(std::string(kBuiltinOverride) + ": " + state +
                          "; the safeguarding override was recorded with its basis, reason "
                          "and authoriser (DPA 2018 Sch 1 para 18)");
    out.reason_codes.push_back(out.reasons.back());
  } else {
    out.reasons.push_back(g.reason_text);
    out.reason_codes.push_back(g.id);
  }

  out.effect = g.has_allow_list ? Effect::kRedact : Effect::kPermit;
  out.lawful_basis = g.basis_text[(c.special_category ? 2 : 0) + (c.criminal_offence ? 1 : 0)];
  if (g.has_allow_list) out.allow_fields = g.allow_fields;
  out.retention_days =
      g.retention_days > 0 ? g.retention_days : d.retention[static_cast<size_t>(in.kind)];
  out.notify_owner = !g.silent_read;
  return out;
}

Redaction Redact(const nlohmann::json& record_json, const Decision& decision) {
  Redaction out;
  switch (decision.effect) {
    case Effect::kDeny:
      out.record = nullptr;
      return out;
    case Effect::kPermit:
      out.record = record_json;
      return out;
    case Effect::kRedact:
      break;
  }
  std::set<std::string, std::less<>> allowed(decision.allow_fields.begin(),
                                             decision.allow_fields.end());
  // The envelope always travels: what the record is, where it came from, how to handle it.
  allowed.insert("/kind");
  allowed.insert("/source");
  allowed.insert("/classification");
  out.record = nlohmann::json::object();
  if (record_json.is_object()) {
    RedactObject(record_json, "", allowed, out.record, out.withheld);
  }
  return out;
}

}  // namespace safegate::policy
