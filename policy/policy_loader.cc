// Loading, validating and compiling a policy file.
//
// Three steps, as for the gateway configuration: parse the TOML; walk every table checking
// each key is known and each value well-typed and meaningful (collecting every problem with
// its line, not only the first); then check the rules against each other (conflicts at the
// same specificity, permits that a deny always overrides). Only a policy with no problem at
// all is compiled into the indexed form policy.cc decides with.
//
// toml++ reports syntax errors by exception; that is caught here and turned into a Problem,
// so nothing escapes to the caller (a reload on SIGHUP must not throw).
#include <openssl/evp.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "policy/policy.h"
#include "policy/policy_internal.h"

namespace safegate::policy {
namespace {

constexpr int kMaxRules = 10000;
constexpr int64_t kMaxRetentionDays = 36500;

// The match dimensions a rule may name, in the order specificity counts them.
constexpr std::string_view kMatchKeys[] = {
    "purpose",          "source_role",    "source_agency", "source_area", "recipient_role",
    "recipient_agency", "recipient_area", "same_area",     "kind",        "special_category",
    "criminal_offence", "schedule12a",    "handling",      "age_band"};

constexpr std::string_view kRuleKeys[] = {"id",
                                          "effect",
                                          "reason",
                                          "match",
                                          "lawful_basis",
                                          "special_category_condition",
                                          "criminal_offence_condition",
                                          "consent_required",
                                          "override_allowed",
                                          "silent_read",
                                          "allow_fields",
                                          "allow_list",
                                          "retention_days"};

constexpr std::string_view kPermitOnlyKeys[] = {"lawful_basis",
                                                "special_category_condition",
                                                "criminal_offence_condition",
                                                "consent_required",
                                                "override_allowed",
                                                "silent_read",
                                                "allow_fields",
                                                "allow_list",
                                                "retention_days"};

constexpr std::string_view kTopKeys[] = {"policy", "agencies", "allow_lists", "retention", "rule"};
constexpr std::string_view kPolicyKeys[] = {"name", "description"};
constexpr std::string_view kAgencyKeys[] = {"role", "area"};

template <size_t N>
bool IsOneOf(const std::string_view (&list)[N], std::string_view key) {
  return std::find(std::begin(list), std::end(list), key) != std::end(list);
}

template <typename Range>
std::string JoinNames(const Range& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

bool IsSlug(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

bool IsRuleId(std::string_view s) {
  if (s.empty() || s.size() > 96) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(s[0])) return false;
  return std::all_of(s.begin(), s.end(),
                     [&](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
}

int LineOf(const toml::node& n) { return static_cast<int>(n.source().begin.line); }
int LineOf(const toml::key& k) { return static_cast<int>(k.source().begin.line); }

std::string Sha256Hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

// Checks a JSON pointer against the canonical record's shape (docs/record-model.md). Body
// members vary by kind, so anything under /body is accepted.
std::string PointerProblem(std::string_view p) {
  if (p.empty() || p[0] != '/') return "must be a JSON pointer starting with '/'";
  std::vector<std::string> tokens;
  size_t pos = 1;
  while (true) {
    size_t next = p.find('/', pos);
    std::string_view raw = p.substr(pos, next == std::string_view::npos ? p.npos : next - pos);
    std::string token;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '~') {
        if (i + 1 < raw.size() && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
          token += raw[i + 1] == '0' ? '~' : '/';
          ++i;
        } else {
          return "has a '~' that is not '~0' or '~1' (RFC 6901)";
        }
      } else {
        token += raw[i];
      }
    }
    if (token.empty()) return "has an empty segment";
    tokens.push_back(std::move(token));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  static const std::map<std::string, std::vector<std::string>, std::less<>> kShape = {
      {"kind", {}},
      {"subject",
       {"nhs_number", "local_ids", "given_name", "family_name", "birth_date", "postcode"}},
      {"source", {"agency", "system", "record_id", "version", "recorded_at"}},
      {"classification", {"special_category", "criminal_offence", "schedule12a", "handling"}},
      {"body", {}},
  };
  auto top = kShape.find(tokens[0]);
  if (top == kShape.end()) {
    return "names '/" + tokens[0] +
           "', which is not a member of a canonical record (kind, subject, source, "
           "classification, body)";
  }
  if (tokens[0] == "body") return {};
  if (tokens.size() == 1) return {};
  if (top->second.empty()) return "goes below '/" + tokens[0] + "', which has no members";
  if (std::find(top->second.begin(), top->second.end(), tokens[1]) == top->second.end()) {
    return "names '" + tokens[1] + "', which is not a member of /" + tokens[0] + " (" +
           JoinNames(top->second) + ")";
  }
  if (tokens.size() > 2) {
    return "goes below /" + tokens[0] + "/" + tokens[1] +
           " (pointers name object members; arrays and values travel whole)";
  }
  return {};
}

// Everything about one rule the later checks need, besides its compiled form.
struct Draft {
  CompiledRule rule;
  bool ok = true;  // no problem found in the rule itself (cross-rule checks skip bad rules)
  std::vector<std::string> source_agencies, source_areas, recipient_agencies, recipient_areas;
  bool purpose_named = false;
  bool age_named = false;
};

struct DeclaredAgency {
  Role role;
  std::string area;
};

class Loader {
 public:
  explicit Loader(std::string name) : name_(std::move(name)) {}

  Result<std::shared_ptr<const Policy>> Run(std::string_view text);

 private:
  void Add(int line, std::string what) {
    problems_.push_back({name_ + ":" + std::to_string(line), std::move(what)});
  }
  void Add(const toml::node& n, std::string what) { Add(LineOf(n), std::move(what)); }

  template <size_t N>
  void CheckKeys(const toml::table& table, const std::string_view (&known)[N],
                 std::string_view where) {
    for (const auto& [key, value] : table) {
      if (!IsOneOf(known, key.str())) {
        Add(LineOf(key), "unknown key '" + std::string(key.str()) + "' in " + std::string(where) +
                             " (known keys: " + JoinNames(known) + ")");
      }
    }
  }

  std::optional<std::string> String(const toml::node& n, std::string_view what) {
    if (auto s = n.value<std::string>(); s && n.is_string()) return *s;
    Add(n, std::string(what) + " must be a string");
    return std::nullopt;
  }

  void ParsePolicyTable(const toml::node* node);
  void ParseAgencies(const toml::node* node);
  void ParseAllowLists(const toml::node* node);
  void ParseRetention(const toml::node* node, int top_line);
  void ParseRule(const toml::node& node);
  void ParseMatch(const toml::table& match, Draft& draft);
  // A string or an array of strings; an empty array is reported (it matches nothing).
  std::optional<std::vector<std::pair<std::string, const toml::node*>>> StringList(
      const toml::node& n, const std::string& what);
  // A match dimension over a closed set of names, as a bit mask.
  template <typename Enum>
  std::optional<uint16_t> EnumMask(const toml::node& n, const std::string& what,
                                   std::optional<Enum> (*parse)(std::string_view),
                                   const std::vector<std::string>& known);
  void CheckNames(Draft& draft, const std::vector<std::pair<std::string, const toml::node*>>& items,
                  std::vector<std::string>& out, bool is_agency, const std::string& what);
  void CheckPermitTerms(const toml::table& t, Draft& draft);
  void CheckCoherence(Draft& draft);
  void CheckAcrossRules();
  std::string Witness(const CompiledRule& a, const CompiledRule& b) const;
  std::unique_ptr<Policy::Data> Compile(std::string_view text);

  std::string name_;
  std::vector<Problem> problems_;
  std::string policy_name_;
  std::string description_;
  std::map<std::string, DeclaredAgency, std::less<>> agencies_;
  std::set<std::string, std::less<>> declared_areas_;
  std::map<std::string, std::vector<std::string>, std::less<>> allow_lists_;
  std::array<int, kKindCount> retention_{};
  std::vector<Draft> drafts_;
  std::map<std::string, int, std::less<>> rule_lines_;
};

std::vector<std::string> PurposeNames() {
  std::vector<std::string> v;
  for (Purpose p : AllPurposes()) v.emplace_back(PurposeName(p));
  return v;
}
std::vector<std::string> RoleNames() {
  std::vector<std::string> v;
  for (Role r : AllRoles()) v.emplace_back(RoleName(r));
  return v;
}
std::vector<std::string> KindNames() {
  std::vector<std::string> v;
  for (record::Kind k : record::AllKinds()) v.emplace_back(record::KindName(k));
  return v;
}
std::vector<std::string> AgeBandNames() { return {"child", "adult", "unknown"}; }
std::optional<record::Kind> ParseKindName(std::string_view s) { return record::ParseKind(s); }
std::optional<int> ParseHandling(std::string_view s) {
  if (s == "P") return 0;
  if (s == "C") return 1;
  return std::nullopt;
}

void Loader::ParsePolicyTable(const toml::node* node) {
  if (node == nullptr) {
    Add(1, "missing [policy] table (it needs at least name = \"...\")");
    return;
  }
  const toml::table* t = node->as_table();
  if (t == nullptr) {
    Add(*node, "policy must be a table");
    return;
  }
  CheckKeys(*t, kPolicyKeys, "[policy]");
  if (const toml::node* n = t->get("name")) {
    if (auto s = String(*n, "policy.name")) {
      if (s->empty()) Add(*n, "policy.name must not be empty");
      policy_name_ = *s;
    }
  } else {
    Add(*node, "[policy] needs name = \"...\"");
  }
  if (const toml::node* n = t->get("description")) {
    if (auto s = String(*n, "policy.description")) description_ = *s;
  }
}

void Loader::ParseAgencies(const toml::node* node) {
  if (node == nullptr) return;
  const toml::table* t = node->as_table();
  if (t == nullptr) {
    Add(*node,
        "agencies must be a table of agency ids, e.g. wyp = { role = \"police\", "
        "area = \"bradford\" }");
    return;
  }
  for (const auto& [key, value] : *t) {
    std::string id(key.str());
    if (!IsSlug(id)) {
      Add(LineOf(key), "agency id '" + id + "' must be a slug of a-z, 0-9 and '-'");
      continue;
    }
    const toml::table* a = value.as_table();
    if (a == nullptr) {
      Add(value, "agencies." + id + " must be a table { role = \"...\", area = \"...\" }");
      continue;
    }
    CheckKeys(*a, kAgencyKeys, "agencies." + id);
    const toml::node* role_node = a->get("role");
    const toml::node* area_node = a->get("area");
    if (role_node == nullptr || area_node == nullptr) {
      Add(value, "agencies." + id + " needs both role and area");
      continue;
    }
    auto role_name = String(*role_node, "agencies." + id + ".role");
    auto area = String(*area_node, "agencies." + id + ".area");
    if (!role_name || !area) continue;
    auto role = ParseRole(*role_name);
    if (!role) {
      Add(*role_node, "unknown role '" + *role_name + "' for agency " + id +
                          " (known roles: " + JoinNames(RoleNames()) + ")");
      continue;
    }
    if (!IsSlug(*area)) {
      Add(*area_node, "area '" + *area + "' must be a slug of a-z, 0-9 and '-'");
      continue;
    }
    agencies_[id] = DeclaredAgency{*role, *area};
    declared_areas_.insert(*area);
  }
}

void Loader::ParseAllowLists(const toml::node* node) {
  if (node == nullptr) return;
  const toml::table* t = node->as_table();
  if (t == nullptr) {
    Add(*node, "allow_lists must be a table of named lists of JSON pointers");
    return;
  }
  for (const auto& [key, value] : *t) {
    std::string name(key.str());
    const toml::array* arr = value.as_array();
    if (arr == nullptr) {
      Add(value, "allow_lists." + name + " must be an array of JSON pointers");
      continue;
    }
    std::vector<std::string> fields;
    bool ok = true;
    for (const toml::node& item : *arr) {
      auto s = String(item, "allow_lists." + name + " entries");
      if (!s) {
        ok = false;
        continue;
      }
      if (std::string why = PointerProblem(*s); !why.empty()) {
        Add(item, "allow_lists." + name + ": field '" + *s + "' " + why);
        ok = false;
        continue;
      }
      fields.push_back(*s);
    }
    if (!ok) continue;
    std::sort(fields.begin(), fields.end());
    fields.erase(std::unique(fields.begin(), fields.end()), fields.end());
    allow_lists_[name] = std::move(fields);
  }
}

void Loader::ParseRetention(const toml::node* node, int top_line) {
  retention_.fill(0);
  if (node == nullptr) {
    Add(top_line,
        "missing [retention] table: every kind of record needs a retention period "
        "in days (R9): " +
            JoinNames(KindNames()));
    return;
  }
  const toml::table* t = node->as_table();
  if (t == nullptr) {
    Add(*node, "retention must be a table of kind = days");
    return;
  }
  for (const auto& [key, value] : *t) {
    auto kind = record::ParseKind(key.str());
    if (!kind) {
      Add(LineOf(key), "unknown kind '" + std::string(key.str()) +
                           "' in [retention] (known kinds: " + JoinNames(KindNames()) + ")");
      continue;
    }
    auto days = value.value<int64_t>();
    if (!value.is_integer() || !days || *days < 1 || *days > kMaxRetentionDays) {
      Add(value, "retention." + std::string(key.str()) +
                     " must be a whole number of days from 1 to " +
                     std::to_string(kMaxRetentionDays));
      continue;
    }
    retention_[static_cast<size_t>(*kind)] = static_cast<int>(*days);
  }
  for (record::Kind k : record::AllKinds()) {
    bool listed = t->contains(record::KindName(k));
    if (!listed) {
      Add(*node, "[retention] has no period for kind '" + std::string(record::KindName(k)) +
                     "' (R9: every kind of record needs one)");
    }
  }
}

std::optional<std::vector<std::pair<std::string, const toml::node*>>> Loader::StringList(
    const toml::node& n, const std::string& what) {
  std::vector<std::pair<std::string, const toml::node*>> out;
  if (n.is_string()) {
    out.emplace_back(*n.value<std::string>(), &n);
    return out;
  }
  const toml::array* arr = n.as_array();
  if (arr == nullptr) {
    Add(n, what + " must be a string or an array of strings");
    return std::nullopt;
  }
  if (arr->empty()) {
    Add(n, what + " is an empty list, which matches nothing: the rule could never match");
    return std::nullopt;
  }
  bool ok = true;
  for (const toml::node& item : *arr) {
    if (!item.is_string()) {
      Add(item, what + " entries must be strings");
      ok = false;
      continue;
    }
    out.emplace_back(*item.value<std::string>(), &item);
  }
  if (!ok) return std::nullopt;
  return out;
}

template <typename Enum>
std::optional<uint16_t> Loader::EnumMask(const toml::node& n, const std::string& what,
                                         std::optional<Enum> (*parse)(std::string_view),
                                         const std::vector<std::string>& known) {
  auto items = StringList(n, what);
  if (!items) return std::nullopt;
  uint16_t mask = 0;
  bool ok = true;
  for (const auto& [s, node] : *items) {
    auto v = parse(s);
    if (!v) {
      Add(*node, "unknown " + what + " '" + s + "' (known: " + JoinNames(known) + ")");
      ok = false;
      continue;
    }
    mask |= static_cast<uint16_t>(1u << static_cast<int>(*v));
  }
  if (!ok) return std::nullopt;
  return mask;
}

void Loader::CheckNames(Draft& draft,
                        const std::vector<std::pair<std::string, const toml::node*>>& items,
                        std::vector<std::string>& out, bool is_agency, const std::string& what) {
  for (const auto& [s, node] : items) {
    if (!IsSlug(s)) {
      Add(*node, what + " '" + s + "' must be a slug of a-z, 0-9 and '-'");
      draft.ok = false;
      continue;
    }
    if (is_agency && !agencies_.empty() && agencies_.find(s) == agencies_.end()) {
      Add(*node, "unknown agency '" + s + "' in " + what + ": [agencies] does not list it");
      draft.ok = false;
      continue;
    }
    if (!is_agency && !declared_areas_.empty() && declared_areas_.count(s) == 0) {
      Add(*node, "unknown area '" + s + "' in " + what + " (the areas of [agencies] are " +
                     JoinNames(declared_areas_) + ")");
      draft.ok = false;
      continue;
    }
    out.push_back(s);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
}

void Loader::ParseMatch(const toml::table& match, Draft& draft) {
  CheckKeys(match, kMatchKeys, "rule '" + draft.rule.id + "' match");
  CompiledRule& r = draft.rule;
  auto bad = [&] { draft.ok = false; };
  for (const auto& [key, value] : match) {
    std::string k(key.str());
    if (!IsOneOf(kMatchKeys, k)) {
      bad();
      continue;
    }
    ++r.specificity;
    if (k == "purpose") {
      draft.purpose_named = true;
      if (auto m = EnumMask<Purpose>(value, "purpose", &ParsePurpose, PurposeNames())) {
        r.purposes = *m;
      } else {
        bad();
      }
    } else if (k == "source_role" || k == "recipient_role") {
      if (auto m = EnumMask<Role>(value, k, &ParseRole, RoleNames())) {
        (k == "source_role" ? r.source_roles : r.recipient_roles) = *m;
      } else {
        bad();
      }
    } else if (k == "kind") {
      if (auto m = EnumMask<record::Kind>(value, "kind", &ParseKindName, KindNames())) {
        r.kinds = *m;
      } else {
        bad();
      }
    } else if (k == "age_band") {
      draft.age_named = true;
      if (auto m = EnumMask<AgeBand>(value, "age_band", &ParseAgeBand, AgeBandNames())) {
        r.age_bands = *m;
      } else {
        bad();
      }
    } else if (k == "handling") {
      if (auto m = EnumMask<int>(value, "handling", &ParseHandling, {"P", "C"})) {
        r.handling = *m;
      } else {
        bad();
      }
    } else if (k == "special_category" || k == "criminal_offence" || k == "same_area") {
      if (!value.is_boolean()) {
        Add(value, k + " must be true or false");
        bad();
        continue;
      }
      uint16_t m = *value.value<bool>() ? kTrueBit : kFalseBit;
      (k == "special_category"   ? r.special
       : k == "criminal_offence" ? r.criminal
                                 : r.same_area) = m;
    } else if (k == "schedule12a") {
      if (value.is_string()) {
        std::string s = *value.value<std::string>();
        if (s == "any") {
          r.schedule12a = kSched12aAnyMark;
        } else if (s == "none") {
          r.schedule12a = kSched12aNone;
        } else {
          Add(value, "schedule12a must be \"any\", \"none\" or a list of paragraphs 1 to 7");
          bad();
        }
      } else if (const toml::array* arr = value.as_array()) {
        if (arr->empty()) {
          Add(value,
              "schedule12a is an empty list, which matches nothing: the rule could "
              "never match");
          bad();
          continue;
        }
        uint16_t m = 0;
        for (const toml::node& item : *arr) {
          auto p = item.value<int64_t>();
          if (!item.is_integer() || !p || *p < 1 || *p > 7) {
            Add(item, "schedule12a paragraphs are whole numbers from 1 to 7");
            bad();
            continue;
          }
          m |= static_cast<uint16_t>(1u << *p);
        }
        r.schedule12a = m;
      } else {
        Add(value, "schedule12a must be \"any\", \"none\" or a list of paragraphs 1 to 7");
        bad();
      }
    } else {
      // Agency and area names.
      auto items = StringList(value, k);
      if (!items) {
        bad();
        continue;
      }
      bool agency = k == "source_agency" || k == "recipient_agency";
      std::vector<std::string>& out = k == "source_agency"      ? draft.source_agencies
                                      : k == "source_area"      ? draft.source_areas
                                      : k == "recipient_agency" ? draft.recipient_agencies
                                                                : draft.recipient_areas;
      CheckNames(draft, *items, out, agency, k);
    }
  }
}

void Loader::CheckPermitTerms(const toml::table& t, Draft& draft) {
  CompiledRule& r = draft.rule;
  const std::string rid = "rule '" + r.id + "'";
  auto bad = [&] { draft.ok = false; };
  if (r.deny) {
    for (const auto& [key, value] : t) {
      if (IsOneOf(kPermitOnlyKeys, key.str())) {
        Add(LineOf(key), rid + ": " + std::string(key.str()) +
                             " has no meaning on a deny rule (nothing is disclosed)");
        bad();
      }
    }
    return;
  }
  auto text = [&](std::string_view key) -> std::optional<std::string> {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::nullopt;
    auto s = String(*n, rid + " " + std::string(key));
    if (!s) {
      bad();
      return std::nullopt;
    }
    if (s->empty()) {
      Add(*n, rid + ": " + std::string(key) + " must not be empty");
      bad();
      return std::nullopt;
    }
    return s;
  };
  auto flag = [&](std::string_view key) -> bool {
    const toml::node* n = t.get(key);
    if (n == nullptr) return false;
    if (!n->is_boolean()) {
      Add(*n, rid + ": " + std::string(key) + " must be true or false");
      bad();
      return false;
    }
    return *n->value<bool>();
  };

  if (auto s = text("lawful_basis")) {
    r.lawful_basis = *s;
    if (s->find("6(1)(") == std::string::npos) {
      Add(*t.get("lawful_basis"),
          rid +
              ": lawful_basis must name a UK GDPR Art 6(1) basis, e.g. \"UK GDPR Art "
              "6(1)(e) public task\" (R1)");
      bad();
    }
  } else if (t.get("lawful_basis") == nullptr) {
    Add(t, rid + ": a permit rule needs lawful_basis (R1: every disclosure has a lawful basis)");
    bad();
  }
  if (auto s = text("special_category_condition")) {
    r.special_condition = *s;
    if (s->find("9(2)(") == std::string::npos) {
      Add(*t.get("special_category_condition"),
          rid +
              ": special_category_condition must name a UK GDPR Art 9(2) condition, e.g. "
              "\"UK GDPR Art 9(2)(g); DPA 2018 Sch 1 para 18\" (R1)");
      bad();
    }
  }
  if (auto s = text("criminal_offence_condition")) {
    r.criminal_condition = *s;
    if (s->find("Sch 1") == std::string::npos && s->find("Schedule 1") == std::string::npos) {
      Add(*t.get("criminal_offence_condition"),
          rid +
              ": criminal_offence_condition must name a DPA 2018 Schedule 1 condition, e.g. "
              "\"DPA 2018 Sch 1 para 18\" (R1)");
      bad();
    }
  }
  r.consent_required = flag("consent_required");
  r.override_allowed = flag("override_allowed");
  r.silent_read = flag("silent_read");

  const toml::node* fields = t.get("allow_fields");
  const toml::node* list = t.get("allow_list");
  if (fields != nullptr && list != nullptr) {
    Add(*list, rid + ": give either allow_fields or allow_list, not both");
    bad();
  } else if (fields != nullptr) {
    const toml::array* arr = fields->as_array();
    if (arr == nullptr) {
      Add(*fields, rid + ": allow_fields must be an array of JSON pointers");
      bad();
    } else {
      r.has_allow_list = true;
      for (const toml::node& item : *arr) {
        auto s = String(item, rid + " allow_fields entries");
        if (!s) {
          bad();
          continue;
        }
        if (std::string why = PointerProblem(*s); !why.empty()) {
          Add(item, rid + ": allow_fields entry '" + *s + "' " + why);
          bad();
          continue;
        }
        r.allow_fields.push_back(*s);
      }
      std::sort(r.allow_fields.begin(), r.allow_fields.end());
      r.allow_fields.erase(std::unique(r.allow_fields.begin(), r.allow_fields.end()),
                           r.allow_fields.end());
    }
  } else if (list != nullptr) {
    if (auto s = String(*list, rid + " allow_list")) {
      auto it = allow_lists_.find(*s);
      if (it == allow_lists_.end()) {
        Add(*list, rid + ": allow_list '" + *s + "' is not defined in [allow_lists]" +
                       (allow_lists_.empty() ? std::string()
                                             : " (defined: " + JoinNames([&] {
                                                 std::vector<std::string> v;
                                                 for (const auto& [n, f] : allow_lists_)
                                                   v.push_back(n);
                                                 return v;
                                               }()) +
                                                   ")"));
        bad();
      } else {
        r.has_allow_list = true;
        r.allow_list_name = *s;
        r.allow_fields = it->second;
      }
    } else {
      bad();
    }
  }

  if (const toml::node* n = t.get("retention_days")) {
    auto days = n->value<int64_t>();
    if (!n->is_integer() || !days || *days < 1 || *days > kMaxRetentionDays) {
      Add(*n, rid + ": retention_days must be a whole number of days from 1 to " +
                  std::to_string(kMaxRetentionDays));
      bad();
    } else {
      r.retention_days = static_cast<int>(*days);
    }
  }
}

// Statutory limits and conditions that make a rule impossible or meaningless.
void Loader::CheckCoherence(Draft& draft) {
  CompiledRule& r = draft.rule;
  const std::string rid = "rule '" + r.id + "'";
  auto problem = [&](std::string what) {
    Add(r.line, rid + ": " + std::move(what));
    draft.ok = false;
  };

  // An agency named alongside a role or area it does not have never matches.
  auto check_side = [&](const std::vector<std::string>& agencies, uint16_t roles,
                        const std::vector<std::string>& areas, std::string_view side) {
    if (agencies_.empty()) return;
    for (const std::string& a : agencies) {
      auto it = agencies_.find(a);
      if (it == agencies_.end()) continue;
      if ((roles & (1u << static_cast<int>(it->second.role))) == 0) {
        problem(std::string(side) + "_agency '" + a + "' is a " +
                std::string(RoleName(it->second.role)) +
                " agency, so it can never match this "
                "rule's " +
                std::string(side) + "_role: the rule could never match it");
      }
      if (!areas.empty() && std::find(areas.begin(), areas.end(), it->second.area) == areas.end()) {
        problem(std::string(side) + "_agency '" + a + "' is in area '" + it->second.area +
                "', which this rule's " + std::string(side) +
                "_area excludes: the rule could "
                "never match it");
      }
    }
  };
  check_side(draft.source_agencies, r.source_roles, draft.source_areas, "source");
  check_side(draft.recipient_agencies, r.recipient_roles, draft.recipient_areas, "recipient");

  if (!draft.source_areas.empty() && !draft.recipient_areas.empty()) {
    std::vector<std::string> common;
    std::set_intersection(draft.source_areas.begin(), draft.source_areas.end(),
                          draft.recipient_areas.begin(), draft.recipient_areas.end(),
                          std::back_inserter(common));
    if (r.same_area == kTrueBit && common.empty()) {
      problem(
          "same_area = true but source_area and recipient_area have no area in common: "
          "the rule could never match");
    }
    if (r.same_area == kFalseBit && draft.source_areas.size() == 1 &&
        draft.source_areas == draft.recipient_areas) {
      problem("same_area = false but source_area and recipient_area are both '" +
              draft.source_areas[0] + "': the rule could never match");
    }
  }

  if (r.deny) return;

  // Permits the engine's statutory guards would always deny.
  const uint16_t stats_bit = 1u << static_cast<int>(Purpose::kStatistics);
  if (r.purposes == stats_bit && (r.schedule12a & kSched12aNone) == 0) {
    problem(
        "it permits only Schedule 12A-marked records for statistics, which never leave as "
        "rows (R6): the rule could never permit anything");
  }
  if (r.special == kTrueBit && r.special_condition.empty()) {
    problem(
        "it matches only special category data but names no special_category_condition "
        "(an Art 9 condition, R1): the rule could never permit anything");
  }
  if (r.criminal == kTrueBit && r.criminal_condition.empty()) {
    problem(
        "it matches only criminal offence data but names no criminal_offence_condition "
        "(a DPA 2018 Schedule 1 condition, R1): the rule could never permit anything");
  }
  if (r.override_allowed) {
    uint16_t safeguarding = 0;
    for (Purpose p : AllPurposes()) {
      if (IsSafeguardingPurpose(p))
        safeguarding |= static_cast<uint16_t>(1u << static_cast<int>(p));
    }
    if (!draft.purpose_named || (r.purposes & ~safeguarding) != 0) {
      problem(
          "override_allowed: the safeguarding override (DPA 2018 Sch 1 para 18, R2) may "
          "stand in for consent only for purposes safeguarding, s47_enquiry and "
          "missing_child; name only those in match.purpose");
    }
    if (!draft.age_named || r.age_bands != (1u << static_cast<int>(AgeBand::kChild))) {
      problem(
          "override_allowed: the safeguarding override (R2) applies to children only; add "
          "age_band = \"child\" to the match");
    }
  }
  if (r.silent_read) {
    if (r.purposes != (1u << static_cast<int>(Purpose::kScheduledCare)) ||
        r.recipient_roles != (1u << static_cast<int>(Role::kHealth))) {
      problem(
          "silent_read: a read that does not notify the owning agency (R8) is allowed only "
          "for purpose scheduled_care and recipient_role health");
    }
  }
}

bool ListsIntersect(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  if (a.empty() || b.empty()) return true;
  for (int32_t x : a) {
    if (std::find(b.begin(), b.end(), x) != b.end()) return true;
  }
  return false;
}

bool ListCovers(const std::vector<int32_t>& outer, const std::vector<int32_t>& inner) {
  if (outer.empty()) return true;
  if (inner.empty()) return false;
  for (int32_t x : inner) {
    if (std::find(outer.begin(), outer.end(), x) == outer.end()) return false;
  }
  return true;
}

#define SAFEGATE_POLICY_MASKS(X)                                                              \
  X(purposes)                                                                                 \
  X(source_roles) X(recipient_roles) X(kinds) X(age_bands) X(handling) X(special) X(criminal) \
      X(same_area) X(schedule12a)

bool Overlap(const CompiledRule& a, const CompiledRule& b) {
#define SAFEGATE_OVERLAP(m) \
  if ((a.m & b.m) == 0) return false;
  SAFEGATE_POLICY_MASKS(SAFEGATE_OVERLAP)
#undef SAFEGATE_OVERLAP
  return ListsIntersect(a.source_agencies, b.source_agencies) &&
         ListsIntersect(a.source_areas, b.source_areas) &&
         ListsIntersect(a.recipient_agencies, b.recipient_agencies) &&
         ListsIntersect(a.recipient_areas, b.recipient_areas);
}

// Every input `inner` matches is matched by `outer` (judged dimension by dimension, so it
// may miss a cover that only holds across dimensions; it never claims a false one).
bool Covers(const CompiledRule& outer, const CompiledRule& inner) {
#define SAFEGATE_COVERS(m) \
  if ((inner.m & ~outer.m) != 0) return false;
  SAFEGATE_POLICY_MASKS(SAFEGATE_COVERS)
#undef SAFEGATE_COVERS
  return ListCovers(outer.source_agencies, inner.source_agencies) &&
         ListCovers(outer.source_areas, inner.source_areas) &&
         ListCovers(outer.recipient_agencies, inner.recipient_agencies) &&
         ListCovers(outer.recipient_areas, inner.recipient_areas);
}

// Which terms differ, or empty if they agree.
std::string TermsDiffer(const CompiledRule& a, const CompiledRule& b) {
  std::vector<std::string> d;
  if (a.lawful_basis != b.lawful_basis) d.emplace_back("lawful_basis");
  if (a.special_condition != b.special_condition) d.emplace_back("special_category_condition");
  if (a.criminal_condition != b.criminal_condition) d.emplace_back("criminal_offence_condition");
  if (a.consent_required != b.consent_required) d.emplace_back("consent_required");
  if (a.override_allowed != b.override_allowed) d.emplace_back("override_allowed");
  if (a.silent_read != b.silent_read) d.emplace_back("silent_read");
  if (a.has_allow_list != b.has_allow_list || a.allow_fields != b.allow_fields) {
    d.emplace_back("allowed fields");
  }
  if (a.retention_days != b.retention_days) d.emplace_back("retention_days");
  return JoinNames(d);
}

std::string Loader::Witness(const CompiledRule& a, const CompiledRule& b) const {
  std::vector<std::string> parts;
  auto first_bit = [](uint16_t m) { return __builtin_ctz(m); };
  auto add_enum = [&](std::string_view key, uint16_t ma, uint16_t mb, auto name_of) {
    if (ma == kAllBits && mb == kAllBits) return;
    parts.push_back(std::string(key) + "=" + std::string(name_of(first_bit(ma & mb))));
  };
  add_enum("purpose", a.purposes, b.purposes,
           [](int i) { return PurposeName(static_cast<Purpose>(i)); });
  add_enum("source_role", a.source_roles, b.source_roles,
           [](int i) { return RoleName(static_cast<Role>(i)); });
  add_enum("recipient_role", a.recipient_roles, b.recipient_roles,
           [](int i) { return RoleName(static_cast<Role>(i)); });
  add_enum("kind", a.kinds, b.kinds,
           [](int i) { return record::KindName(static_cast<record::Kind>(i)); });
  add_enum("age_band", a.age_bands, b.age_bands,
           [](int i) { return AgeBandName(static_cast<AgeBand>(i)); });
  add_enum("handling", a.handling, b.handling,
           [](int i) { return std::string_view(i == 0 ? "P" : "C"); });
  auto bool_name = [](int i) { return std::string_view(i == 0 ? "false" : "true"); };
  add_enum("special_category", a.special, b.special, bool_name);
  add_enum("criminal_offence", a.criminal, b.criminal, bool_name);
  add_enum("same_area", a.same_area, b.same_area, bool_name);
  if (parts.empty()) return "any input";
  return JoinNames(parts);
}

void Loader::CheckAcrossRules() {
  for (size_t i = 0; i < drafts_.size(); ++i) {
    const CompiledRule& a = drafts_[i].rule;
    if (!drafts_[i].ok) continue;
    for (size_t j = i + 1; j < drafts_.size(); ++j) {
      const CompiledRule& b = drafts_[j].rule;
      if (!drafts_[j].ok) continue;
      if (a.deny || b.deny || a.specificity != b.specificity || !Overlap(a, b)) continue;
      std::string differ = TermsDiffer(a, b);
      if (differ.empty()) continue;
      Add(b.line, "rules '" + a.id + "' (line " + std::to_string(a.line) + ") and '" + b.id +
                      "' are in conflict: both permit some inputs (for example " + Witness(a, b) +
                      ") at the same specificity (" + std::to_string(a.specificity) +
                      " conditions) but differ in " + differ +
                      "; make one of them more specific or make their terms agree");
    }
  }
  for (const Draft& p : drafts_) {
    if (!p.ok || p.rule.deny) continue;
    for (const Draft& d : drafts_) {
      if (!d.ok || !d.rule.deny) continue;
      if (Covers(d.rule, p.rule)) {
        Add(p.rule.line, "rule '" + p.rule.id +
                             "' can never take effect: every input it "
                             "matches is also matched by deny rule '" +
                             d.rule.id + "' (line " + std::to_string(d.rule.line) +
                             "), and deny overrides permit");
        break;
      }
    }
  }
}

void Loader::ParseRule(const toml::node& node) {
  Draft draft;
  CompiledRule& r = draft.rule;
  r.line = LineOf(node);
  const toml::table* t = node.as_table();
  if (t == nullptr) {
    Add(node, "each [[rule]] must be a table");
    return;
  }
  // The id first, so that every later message can name the rule.
  if (const toml::node* n = t->get("id")) {
    if (auto s = String(*n, "rule id")) {
      r.id = *s;
      if (!IsRuleId(r.id)) {
        Add(*n, "rule id '" + r.id + "' must be letters, digits, '.', '_' or '-' (at most 96)");
        draft.ok = false;
      } else if (r.id.rfind("builtin.", 0) == 0) {
        Add(*n, "rule id '" + r.id +
                    "': ids starting with 'builtin.' are reserved for the "
                    "engine's own guards");
        draft.ok = false;
      } else if (auto [it, fresh] = rule_lines_.emplace(r.id, r.line); !fresh) {
        Add(*n, "duplicate rule id '" + r.id + "' (first defined at line " +
                    std::to_string(it->second) + ")");
        draft.ok = false;
      }
    } else {
      draft.ok = false;
    }
  } else {
    Add(node, "a [[rule]] needs an id");
    draft.ok = false;
    r.id = "(line " + std::to_string(r.line) + ")";
  }
  const std::string rid = "rule '" + r.id + "'";
  CheckKeys(*t, kRuleKeys, rid);
  for (const auto& [key, value] : *t) {
    if (!IsOneOf(kRuleKeys, key.str())) draft.ok = false;
  }

  bool effect_known = false;
  if (const toml::node* n = t->get("effect")) {
    auto s = String(*n, rid + " effect");
    if (s && (*s == "permit" || *s == "deny")) {
      r.deny = *s == "deny";
      effect_known = true;
    } else {
      if (s) Add(*n, rid + ": effect must be \"permit\" or \"deny\", not '" + *s + "'");
      draft.ok = false;
    }
  } else {
    Add(node, rid + " needs effect = \"permit\" or \"deny\"");
    draft.ok = false;
  }
  if (const toml::node* n = t->get("reason")) {
    auto s = String(*n, rid + " reason");
    if (s && !s->empty()) {
      r.reason = *s;
    } else {
      if (s) Add(*n, rid + ": reason must not be empty");
      draft.ok = false;
    }
  } else {
    Add(node, rid + " needs a reason: a sentence an information governance officer can read");
    draft.ok = false;
  }
  r.reason_text = r.id + ": " + r.reason;

  if (const toml::node* n = t->get("match")) {
    if (const toml::table* m = n->as_table()) {
      ParseMatch(*m, draft);
    } else {
      Add(*n, rid + ": match must be a table");
      draft.ok = false;
    }
  }
  // Which terms are allowed depends on the effect: without one, checking them would only
  // add noise to the message that matters.
  if (effect_known) CheckPermitTerms(*t, draft);
  if (draft.ok) CheckCoherence(draft);

  // Precompose the lawful basis for each combination of special category and criminal
  // offence data, so a decision copies one string.
  for (int special = 0; special < 2; ++special) {
    for (int criminal = 0; criminal < 2; ++criminal) {
      std::string text = r.lawful_basis;
      if (special && !r.special_condition.empty()) text += "; " + r.special_condition;
      if (criminal && !r.criminal_condition.empty()) text += "; " + r.criminal_condition;
      r.basis_text[static_cast<size_t>(special * 2 + criminal)] = std::move(text);
    }
  }
  drafts_.push_back(std::move(draft));
}

std::unique_ptr<Policy::Data> Loader::Compile(std::string_view text) {
  auto data = std::make_unique<Policy::Data>();
  data->name = policy_name_;
  data->description = description_;
  data->source_name = name_;
  data->version = Sha256Hex(text);
  data->text = std::string(text);
  data->retention = retention_;
  auto intern = [](NameTable& table, const std::vector<std::string>& names) {
    std::vector<int32_t> ids;
    for (const std::string& n : names) {
      auto [it, fresh] = table.emplace(n, static_cast<int32_t>(table.size()));
      ids.push_back(it->second);
    }
    return ids;
  };
  for (Draft& d : drafts_) {
    d.rule.source_agencies = intern(data->agencies, d.source_agencies);
    d.rule.recipient_agencies = intern(data->agencies, d.recipient_agencies);
    d.rule.source_areas = intern(data->areas, d.source_areas);
    d.rule.recipient_areas = intern(data->areas, d.recipient_areas);
  }
  data->uses_agencies = !data->agencies.empty();
  data->uses_areas = !data->areas.empty();
  for (size_t i = 0; i < drafts_.size(); ++i) {
    const CompiledRule& r = drafts_[i].rule;
    for (int p = 0; p < kPurposeCount; ++p) {
      if ((r.purposes & (1u << p)) == 0) continue;
      for (int role = 0; role < kRoleCount; ++role) {
        if ((r.recipient_roles & (1u << role)) == 0) continue;
        data->buckets[static_cast<size_t>(p * kRoleCount + role)].push_back(
            static_cast<uint16_t>(i));
      }
    }
    data->summaries.push_back(RuleSummary{r.id, r.deny ? Effect::kDeny : Effect::kPermit, r.reason,
                                          r.line, r.specificity});
  }
  for (RuleSummary& b : BuiltinSummaries()) data->summaries.push_back(std::move(b));
  data->rules.reserve(drafts_.size());
  for (Draft& d : drafts_) data->rules.push_back(std::move(d.rule));
  return data;
}

Result<std::shared_ptr<const Policy>> Loader::Run(std::string_view text) {
  toml::table root;
  try {
    root = toml::parse(text, name_);
  } catch (const toml::parse_error& e) {
    Add(static_cast<int>(e.source().begin.line), "not valid TOML: " + std::string(e.description()) +
                                                     " (column " +
                                                     std::to_string(e.source().begin.column) + ")");
    return Status::Invalid("policy " + name_ + " is not valid TOML", problems_);
  }

  CheckKeys(root, kTopKeys, "the policy file");
  ParsePolicyTable(root.get("policy"));
  ParseAgencies(root.get("agencies"));
  ParseAllowLists(root.get("allow_lists"));
  ParseRetention(root.get("retention"), 1);
  if (const toml::node* rules = root.get("rule")) {
    const toml::array* arr = rules->as_array();
    if (arr == nullptr) {
      Add(*rules, "rule must be an array of tables: write each rule as [[rule]]");
    } else {
      if (arr->size() > static_cast<size_t>(kMaxRules)) {
        Add(*rules, "too many rules (" + std::to_string(arr->size()) + "); at most " +
                        std::to_string(kMaxRules));
      }
      for (const toml::node& n : *arr) ParseRule(n);
    }
  }
  if (drafts_.empty() && problems_.empty()) {
    Add(1, "the policy has no [[rule]]: with default deny it would refuse everything");
  }
  if (problems_.empty()) {
    // Conflicts are judged on interned names; intern into a scratch table first.
    NameTable agencies, areas;
    auto intern = [](NameTable& table, const std::vector<std::string>& names) {
      std::vector<int32_t> ids;
      for (const std::string& n : names) {
        ids.push_back(table.emplace(n, static_cast<int32_t>(table.size())).first->second);
      }
      return ids;
    };
    for (Draft& d : drafts_) {
      d.rule.source_agencies = intern(agencies, d.source_agencies);
      d.rule.recipient_agencies = intern(agencies, d.recipient_agencies);
      d.rule.source_areas = intern(areas, d.source_areas);
      d.rule.recipient_areas = intern(areas, d.recipient_areas);
    }
    CheckAcrossRules();
  }
  if (!problems_.empty()) {
    size_t n = problems_.size();
    return Status::Invalid(
        "policy " + name_ + " has " + std::to_string(n) + (n == 1 ? " problem" : " problems"),
        problems_);
  }
  return MakePolicy(Compile(text));
}

}  // namespace

std::vector<RuleSummary> BuiltinSummaries() {
  return {
      {std::string(kBuiltinDefaultDeny), Effect::kDeny,
       "no rule permits this disclosure, so it is denied (default deny)", 0, 0},
      {std::string(kBuiltinArt9), Effect::kDeny,
       "special category data (UK GDPR Art 9) is disclosed only under a rule naming an Art 9 "
       "condition (R1)",
       0, 0},
      {std::string(kBuiltinArt10), Effect::kDeny,
       "criminal offence data (UK GDPR Art 10) is disclosed only under a rule naming a DPA 2018 "
       "Schedule 1 condition (R1)",
       0, 0},
      {std::string(kBuiltinOverride), Effect::kPermit,
       "a recorded and authorised safeguarding override stood in for consent (R2)", 0, 0},
      {std::string(kBuiltinConsent), Effect::kDeny,
       "a refusal or withdrawal of consent, or missing consent where consent is the condition, "
       "blocks sharing unless an allowed safeguarding override is given (R3)",
       0, 0},
      {std::string(kBuiltinSched12a), Effect::kDeny,
       "records with Schedule 12A marks never leave as rows for statistics (R6)", 0, 0},
  };
}

Result<std::shared_ptr<const Policy>> ParsePolicy(std::string_view text, std::string_view name) {
  Loader loader{std::string(name)};
  return loader.Run(text);
}

Result<std::shared_ptr<const Policy>> LoadPolicy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    return Status::Invalid("cannot read policy file " + path,
                           {{path, std::string("cannot open: ") + std::strerror(err)}});
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) {
    return Status::Invalid("cannot read policy file " + path, {{path, "read failed"}});
  }
  return ParsePolicy(buf.str(), path);
}

}  // namespace safegate::policy
