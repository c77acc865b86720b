// `safegatectl policy check|explain|test`. See policy_tool.h.
#include "policy/policy_tool.h"

#include <toml++/toml.h>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <set>
#include <sstream>
#include <utility>

namespace safegate::policy {
namespace {

namespace fs = std::filesystem;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

constexpr char kUsage[] =
    "usage: safegatectl policy check FILE\n"
    "       safegatectl policy explain [--policy FILE] --case CASE.json [--json]\n"
    "       safegatectl policy test DIR [--policy FILE] [--verbose]\n";

void PrintProblems(const Status& status, std::ostream& err) {
  err << status.detail() << "\n";
  for (const Problem& p : status.problems()) err << "  " << p.where << ": " << p.what << "\n";
}

std::optional<std::string> ReadFile(const std::string& path, std::string& why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = "cannot open " + path;
    return std::nullopt;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// TOML values as JSON, so TOML test cases and JSON case files share one parser. Dates and
// times become their ISO 8601 text.
nlohmann::json TomlToJson(const toml::node& node) {
  if (const toml::table* t = node.as_table()) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : *t) j[std::string(k.str())] = TomlToJson(v);
    return j;
  }
  if (const toml::array* a = node.as_array()) {
    nlohmann::json j = nlohmann::json::array();
    for (const toml::node& v : *a) j.push_back(TomlToJson(v));
    return j;
  }
  if (node.is_string()) return *node.value<std::string>();
  if (node.is_integer()) return *node.value<int64_t>();
  if (node.is_floating_point()) return *node.value<double>();
  if (node.is_boolean()) return *node.value<bool>();
  std::ostringstream text;
  if (const auto* d = node.as_date()) text << d->get();
  if (const auto* t = node.as_time()) text << t->get();
  if (const auto* dt = node.as_date_time()) text << dt->get();
  return text.str();
}

class CaseParser {
 public:
  CaseParser(std::string where, std::string base_dir)
      : where_(std::move(where)), base_dir_(std::move(base_dir)) {}

  Result<PolicyCase> Parse(const nlohmann::json& j,
                           std::optional<std::chrono::system_clock::time_point> default_now);

 private:
  void Add(const std::string& pointer, std::string what) {
    problems_.push_back({where_ + pointer, std::move(what)});
  }
  std::optional<std::string> Str(const nlohmann::json& j, const std::string& key,
                                 const std::string& pointer, bool required) {
    auto it = j.find(key);
    if (it == j.end()) {
      if (required) Add(pointer, "missing " + key);
      return std::nullopt;
    }
    if (!it->is_string()) {
      Add(pointer + "/" + key, "must be a string");
      return std::nullopt;
    }
    return it->get<std::string>();
  }
  std::optional<Party> ParseParty(const nlohmann::json& j, const std::string& pointer);
  std::optional<record::Classification> ParseClassification(const nlohmann::json& j,
                                                            const std::string& pointer);

  std::string where_;
  std::string base_dir_;
  std::vector<Problem> problems_;
};

std::optional<Party> CaseParser::ParseParty(const nlohmann::json& j, const std::string& pointer) {
  if (!j.is_object()) {
    Add(pointer, "must be an object {agency, role, area}");
    return std::nullopt;
  }
  for (const auto& [k, v] : j.items()) {
    if (k != "agency" && k != "role" && k != "area") Add(pointer + "/" + k, "unknown key");
  }
  Party p;
  auto agency = Str(j, "agency", pointer, true);
  auto role = Str(j, "role", pointer, true);
  auto area = Str(j, "area", pointer, true);
  if (!agency || !role || !area) return std::nullopt;
  auto r = ParseRole(*role);
  if (!r) {
    Add(pointer + "/role", "unknown role '" + *role + "'");
    return std::nullopt;
  }
  p.agency = *agency;
  p.role = *r;
  p.area = *area;
  return p;
}

std::optional<record::Classification> CaseParser::ParseClassification(const nlohmann::json& j,
                                                                      const std::string& pointer) {
  if (!j.is_object()) {
    Add(pointer, "must be an object");
    return std::nullopt;
  }
  record::Classification c;
  bool ok = true;
  for (const auto& [k, v] : j.items()) {
    std::string p = pointer + "/" + k;
    if (k == "special_category" || k == "criminal_offence") {
      if (!v.is_boolean()) {
        Add(p, "must be true or false");
        ok = false;
        continue;
      }
      (k == "special_category" ? c.special_category : c.criminal_offence) = v.get<bool>();
    } else if (k == "schedule12a") {
      if (!v.is_array()) {
        Add(p, "must be an array of paragraph numbers");
        ok = false;
        continue;
      }
      for (const auto& n : v) {
        if (!n.is_number_integer()) {
          Add(p, "paragraphs must be whole numbers");
          ok = false;
          continue;
        }
        c.schedule12a.push_back(n.get<int>());
      }
    } else if (k == "handling") {
      if (!v.is_string()) {
        Add(p, "must be \"P\" or \"C\"");
        ok = false;
        continue;
      }
      c.handling = v.get<std::string>();
    } else {
      Add(p, "unknown key");
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return c;
}

Result<PolicyCase> CaseParser::Parse(
    const nlohmann::json& j, std::optional<std::chrono::system_clock::time_point> default_now) {
  static const std::set<std::string> kKeys = {
      "purpose",        "source",     "recipient", "record",  "record_file", "kind",
      "classification", "birth_date", "now",       "consent", "override"};
  PolicyCase out;
  if (!j.is_object()) {
    Add("", "a case input must be an object");
    return Status::Invalid("case input is not valid", problems_);
  }
  for (const auto& [k, v] : j.items()) {
    if (kKeys.count(k) == 0) Add("/" + k, "unknown key");
  }
  DecisionInput& in = out.input;

  if (auto p = Str(j, "purpose", "", true)) {
    if (auto purpose = ParsePurpose(*p)) {
      in.purpose = *purpose;
    } else {
      std::string known;
      for (Purpose x : AllPurposes())
        known += (known.empty() ? "" : ", ") + std::string(PurposeName(x));
      Add("/purpose", "unknown purpose '" + *p + "' (known: " + known + ")");
    }
  }
  for (const char* side : {"source", "recipient"}) {
    auto it = j.find(side);
    if (it == j.end()) {
      Add("", std::string("missing ") + side);
      continue;
    }
    if (auto party = ParseParty(*it, std::string("/") + side)) {
      (std::string(side) == "source" ? in.source : in.recipient) = *party;
    }
  }

  // The record, inline or from a file; its kind, classification and birth date are the
  // defaults for the case.
  if (j.contains("record") && j.contains("record_file")) {
    Add("/record_file", "give either record or record_file, not both");
  } else if (auto it = j.find("record"); it != j.end()) {
    out.record = *it;
  } else if (auto file = Str(j, "record_file", "", false)) {
    fs::path path = fs::path(*file).is_absolute() ? fs::path(*file) : fs::path(base_dir_) / *file;
    std::string why;
    if (auto text = ReadFile(path.string(), why)) {
      try {
        out.record = nlohmann::json::parse(*text);
      } catch (const nlohmann::json::parse_error& e) {
        Add("/record_file", path.string() + " is not valid JSON: " + e.what());
      }
    } else {
      Add("/record_file", why);
    }
  }
  if (out.record && !out.record->is_object()) {
    Add("/record", "must be a canonical record (a JSON object)");
    out.record.reset();
  }
  const nlohmann::json* rec = out.record ? &*out.record : nullptr;

  const nlohmann::json* kind_node = nullptr;
  std::string kind_where;
  if (j.contains("kind")) {
    kind_node = &j["kind"];
    kind_where = "/kind";
  } else if (rec != nullptr && rec->contains("kind")) {
    kind_node = &(*rec)["kind"];
    kind_where = "/record/kind";
  }
  if (kind_node == nullptr) {
    Add("", "missing kind (or a record carrying one)");
  } else if (!kind_node->is_string() || !record::ParseKind(kind_node->get<std::string>())) {
    Add(kind_where, "unknown kind " + kind_node->dump());
  } else {
    in.kind = *record::ParseKind(kind_node->get<std::string>());
  }

  if (j.contains("classification")) {
    if (auto c = ParseClassification(j["classification"], "/classification"))
      in.classification = *c;
  } else if (rec != nullptr && rec->contains("classification")) {
    if (auto c = ParseClassification((*rec)["classification"], "/record/classification")) {
      in.classification = *c;
    }
  }

  if (j.contains("birth_date")) {
    if (auto b = Str(j, "birth_date", "", false)) in.birth_date = *b;
  } else if (rec != nullptr && rec->contains("subject") && (*rec)["subject"].is_object()) {
    const nlohmann::json& subject = (*rec)["subject"];
    if (auto it = subject.find("birth_date"); it != subject.end() && it->is_string()) {
      in.birth_date = it->get<std::string>();
    }
  }

  if (auto now = Str(j, "now", "", false)) {
    if (auto t = ParseTimestamp(*now)) {
      in.now = *t;
    } else {
      Add("/now", "must be an RFC 3339 time such as 2024-06-01T12:00:00Z, or a date");
    }
  } else if (default_now) {
    in.now = *default_now;
  } else if (!j.contains("now")) {
    Add("", "missing now (the day the decision is made, for the age band)");
  }

  if (auto consent = Str(j, "consent", "", false)) {
    if (auto c = ParseConsentState(*consent)) {
      in.consent = *c;
    } else {
      Add("/consent", "must be none, given, refused or withdrawn");
    }
  }

  if (auto it = j.find("override"); it != j.end()) {
    if (!it->is_object()) {
      Add("/override", "must be an object {basis, reason, authorised_by}");
    } else {
      Override ov;
      for (const auto& [k, v] : it->items()) {
        if (k != "basis" && k != "reason" && k != "authorised_by") {
          Add("/override/" + k, "unknown key");
        } else if (!v.is_string()) {
          Add("/override/" + k, "must be a string");
        } else {
          (k == "basis"    ? ov.basis
           : k == "reason" ? ov.reason
                           : ov.authorised_by) = v.get<std::string>();
        }
      }
      in.safeguarding_override = ov;
    }
  }

  if (!problems_.empty()) return Status::Invalid("case input is not valid", problems_);
  return out;
}

// ---------------------------------------------------------------------------------------
// Expectations of a test case.

class Expectation {
 public:
  Expectation(const nlohmann::json& expect, const Decision& d,
              const std::vector<std::string>& withheld,
              const std::optional<nlohmann::json>& delivered)
      : e_(expect), d_(d), withheld_(withheld), delivered_(delivered) {}

  std::vector<std::string> Check() {
    static const std::set<std::string> kKeys = {"effect",
                                                "rules_fired",
                                                "rules_include",
                                                "rules_exclude",
                                                "governing_rule",
                                                "lawful_basis_contains",
                                                "lawful_basis",
                                                "consent_required",
                                                "override_allowed",
                                                "override_used",
                                                "notify_owner",
                                                "age_band",
                                                "retention_days",
                                                "withheld",
                                                "allow_fields",
                                                "reasons_contain",
                                                "decision_excludes",
                                                "delivered_excludes",
                                                "delivered_includes"};
    for (const auto& [k, v] : e_.items()) {
      if (kKeys.count(k) == 0) failures_.push_back("unknown expectation '" + k + "'");
    }
    if (!e_.contains("effect")) failures_.push_back("the case must expect an effect");
    Equal("effect", std::string(EffectName(d_.effect)));
    Equal("governing_rule", d_.governing_rule);
    Equal("lawful_basis", d_.lawful_basis);
    Equal("consent_required", d_.consent_required);
    Equal("override_allowed", d_.override_allowed);
    Equal("override_used", d_.override_used);
    Equal("notify_owner", d_.notify_owner);
    Equal("age_band", std::string(AgeBandName(d_.age_band)));
    Equal("retention_days", d_.retention_days);
    SameSet("rules_fired", d_.rules_fired);
    SameSet("allow_fields", d_.allow_fields);
    if (e_.contains("withheld")) {
      if (!delivered_) {
        failures_.push_back("withheld is expected but the case gives no record");
      } else {
        SameSet("withheld", withheld_);
      }
    }
    for (const std::string& id : Strings("rules_include")) {
      if (std::find(d_.rules_fired.begin(), d_.rules_fired.end(), id) == d_.rules_fired.end()) {
        failures_.push_back("rule '" + id + "' did not fire (fired: " + Join(d_.rules_fired) + ")");
      }
    }
    for (const std::string& id : Strings("rules_exclude")) {
      if (std::find(d_.rules_fired.begin(), d_.rules_fired.end(), id) != d_.rules_fired.end()) {
        failures_.push_back("rule '" + id + "' fired but should not have");
      }
    }
    for (const std::string& s : Strings("lawful_basis_contains")) {
      if (d_.lawful_basis.find(s) == std::string::npos) {
        failures_.push_back("lawful basis \"" + d_.lawful_basis + "\" does not contain \"" + s +
                            "\"");
      }
    }
    for (const std::string& s : Strings("reasons_contain")) {
      bool found = std::any_of(d_.reasons.begin(), d_.reasons.end(), [&](const std::string& r) {
        return r.find(s) != std::string::npos;
      });
      if (!found)
        failures_.push_back("no reason contains \"" + s + "\" (reasons: " + Join(d_.reasons) + ")");
    }
    // R7: nothing personal in what travels outside the payload (the decision, the list of
    // withheld pointers).
    std::string outside = d_.ToJson().dump() + Join(withheld_);
    for (const std::string& s : Strings("decision_excludes")) {
      if (outside.find(s) != std::string::npos) {
        failures_.push_back("the decision or the withheld list contains \"" + s + "\"");
      }
    }
    std::string delivered = delivered_ ? delivered_->dump() : std::string();
    for (const std::string& s : Strings("delivered_excludes")) {
      if (delivered.find(s) != std::string::npos) {
        failures_.push_back("the delivered record contains \"" + s + "\"");
      }
    }
    for (const std::string& s : Strings("delivered_includes")) {
      if (delivered.find(s) == std::string::npos) {
        failures_.push_back("the delivered record does not contain \"" + s + "\"");
      }
    }
    return failures_;
  }

 private:
  static std::string Join(const std::vector<std::string>& v) {
    std::string out;
    for (const std::string& s : v) out += (out.empty() ? "" : ", ") + s;
    return out.empty() ? "none" : out;
  }

  std::vector<std::string> Strings(const std::string& key) {
    std::vector<std::string> out;
    auto it = e_.find(key);
    if (it == e_.end()) return out;
    if (it->is_string()) return {it->get<std::string>()};
    if (!it->is_array()) {
      failures_.push_back(key + " must be a string or an array of strings");
      return out;
    }
    for (const auto& v : *it) {
      if (!v.is_string()) {
        failures_.push_back(key + " entries must be strings");
        continue;
      }
      out.push_back(v.get<std::string>());
    }
    return out;
  }

  template <typename T>
  void Equal(const std::string& key, const T& actual) {
    auto it = e_.find(key);
    if (it == e_.end()) return;
    nlohmann::json a = actual;
    if (*it != a) failures_.push_back(key + ": expected " + it->dump() + ", got " + a.dump());
  }

  void SameSet(const std::string& key, const std::vector<std::string>& actual) {
    if (!e_.contains(key)) return;
    std::vector<std::string> want = Strings(key);
    std::multiset<std::string> a(actual.begin(), actual.end()), w(want.begin(), want.end());
    if (a != w)
      failures_.push_back(key + ": expected [" + Join(want) + "], got [" + Join(actual) + "]");
  }

  const nlohmann::json& e_;
  const Decision& d_;
  const std::vector<std::string>& withheld_;
  const std::optional<nlohmann::json>& delivered_;
  std::vector<std::string> failures_;
};

// ---------------------------------------------------------------------------------------
// Commands.

int Check(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.size() != 2) {
    err << kUsage;
    return kExitUsage;
  }
  auto policy = LoadPolicy(args[1]);
  if (!policy.ok()) {
    PrintProblems(policy.status(), err);
    return kExitFailed;
  }
  const Policy& p = **policy;
  size_t own = 0;
  for (const RuleSummary& r : p.rules()) own += r.line > 0 ? 1 : 0;
  out << args[1] << ": ok: policy \"" << p.name() << "\", " << own << " rules, version "
      << p.version() << "\n";
  return kExitOk;
}

void PrintDecisionText(const Policy& policy, const PolicyCase& c, const Decision& d,
                       const Redaction& redaction, std::ostream& out) {
  auto yes = [](bool b) { return b ? "yes" : "no"; };
  out << "decision:        " << EffectName(d.effect) << "\n";
  out << "purpose:         " << PurposeName(c.input.purpose) << "\n";
  out << "from:            " << c.input.source.agency << " (" << RoleName(c.input.source.role)
      << ", " << c.input.source.area << ")\n";
  out << "to:              " << c.input.recipient.agency << " (" << RoleName(c.input.recipient.role)
      << ", " << c.input.recipient.area << ")\n";
  out << "record:          " << record::KindName(c.input.kind)
      << (c.input.classification.special_category ? ", special category" : "")
      << (c.input.classification.criminal_offence ? ", criminal offence data" : "")
      << (c.input.classification.schedule12a.empty() ? "" : ", Schedule 12A marks") << ", handling "
      << c.input.classification.handling << "\n";
  out << "age band:        " << AgeBandName(d.age_band) << "\n";
  out << "lawful basis:    " << (d.lawful_basis.empty() ? "-" : d.lawful_basis) << "\n";
  out << "governing rule:  " << (d.governing_rule.empty() ? "-" : d.governing_rule) << "\n";
  out << "consent:         " << ConsentStateName(d.consent)
      << " (required: " << yes(d.consent_required)
      << "; override allowed: " << yes(d.override_allowed)
      << "; override used: " << yes(d.override_used) << ")\n";
  out << "notify owner:    " << yes(d.notify_owner) << "\n";
  out << "retention:       " << d.retention_days << " days\n";
  out << "rules fired:\n";
  for (const std::string& id : d.rules_fired) {
    const RuleSummary* r = policy.FindRule(id);
    out << "  " << id;
    if (r != nullptr) {
      out << " (" << EffectName(r->effect);
      if (r->line > 0) out << ", line " << r->line << ", " << r->specificity << " conditions";
      out << "): " << r->reason;
    }
    out << "\n";
  }
  out << "reasons:\n";
  for (const std::string& r : d.reasons) out << "  - " << r << "\n";
  if (d.effect == Effect::kRedact) {
    out << "allowed fields:  ";
    for (size_t i = 0; i < d.allow_fields.size(); ++i) out << (i ? ", " : "") << d.allow_fields[i];
    out << (d.allow_fields.empty() ? "(the envelope only)" : "") << "\n";
    if (c.record) {
      out << "withheld fields: ";
      for (size_t i = 0; i < redaction.withheld.size(); ++i) {
        out << (i ? ", " : "") << redaction.withheld[i];
      }
      out << (redaction.withheld.empty() ? "none" : "") << "\n";
    }
  }
  out << "policy:          " << policy.name() << " (" << policy.source_name() << ")\n";
  out << "policy version:  " << d.policy_version << "\n";
}

int Explain(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
            const std::optional<std::string>& default_policy) {
  std::optional<std::string> policy_path = default_policy, case_path;
  bool json = false;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--policy" && i + 1 < args.size()) {
      policy_path = args[++i];
    } else if (args[i] == "--case" && i + 1 < args.size()) {
      case_path = args[++i];
    } else if (args[i] == "--json") {
      json = true;
    } else {
      err << "explain: unexpected argument '" << args[i] << "'\n" << kUsage;
      return kExitUsage;
    }
  }
  if (!policy_path || !case_path) {
    err << "explain needs --case CASE.json and a policy (--policy FILE)\n" << kUsage;
    return kExitUsage;
  }
  auto policy = LoadPolicy(*policy_path);
  if (!policy.ok()) {
    PrintProblems(policy.status(), err);
    return kExitFailed;
  }
  std::string why;
  auto text = ReadFile(*case_path, why);
  if (!text) {
    err << "explain: " << why << "\n";
    return kExitUsage;
  }
  nlohmann::json case_json;
  try {
    case_json = nlohmann::json::parse(*text);
  } catch (const nlohmann::json::parse_error& e) {
    err << *case_path << ": not valid JSON: " << e.what() << "\n";
    return kExitUsage;
  }
  std::string base = fs::path(*case_path).parent_path().string();
  auto parsed = ParseCaseInput(case_json, *case_path + ":", base, std::chrono::system_clock::now());
  if (!parsed.ok()) {
    PrintProblems(parsed.status(), err);
    return kExitUsage;
  }
  Decision d = (*policy)->Decide(parsed->input);
  Redaction redaction;
  if (parsed->record) redaction = Redact(*parsed->record, d);
  if (json) {
    nlohmann::json j{{"decision", d.ToJson()}, {"rules", nlohmann::json::array()}};
    for (const std::string& id : d.rules_fired) {
      if (const RuleSummary* r = (*policy)->FindRule(id)) {
        j["rules"].push_back({{"id", r->id},
                              {"effect", EffectName(r->effect)},
                              {"line", r->line},
                              {"specificity", r->specificity},
                              {"reason", r->reason}});
      }
    }
    if (parsed->record) {
      j["withheld"] = redaction.withheld;
      j["delivered"] = redaction.record;
    }
    out << j.dump(2) << "\n";
  } else {
    PrintDecisionText(**policy, *parsed, d, redaction, out);
  }
  return kExitOk;
}

int Test(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::optional<std::string> dir, policy_path;
  bool verbose = false;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--policy" && i + 1 < args.size()) {
      policy_path = args[++i];
    } else if (args[i] == "--verbose" || args[i] == "-v") {
      verbose = true;
    } else if (!dir && !args[i].empty() && args[i][0] != '-') {
      dir = args[i];
    } else {
      err << "test: unexpected argument '" << args[i] << "'\n" << kUsage;
      return kExitUsage;
    }
  }
  if (!dir) {
    err << "test needs a directory of case files\n" << kUsage;
    return kExitUsage;
  }
  std::error_code ec;
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(*dir, ec)) {
    if (entry.is_regular_file() && entry.path().extension() == ".toml") {
      files.push_back(entry.path().string());
    }
  }
  if (ec) {
    err << "test: cannot read directory " << *dir << ": " << ec.message() << "\n";
    return kExitUsage;
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    err << "test: no *.toml case files in " << *dir << "\n";
    return kExitUsage;
  }
  int total = 0, failed = 0, bad_files = 0;
  for (const std::string& file : files) {
    auto result = RunCaseFile(file, policy_path);
    if (!result.ok()) {
      ++bad_files;
      PrintProblems(result.status(), err);
      continue;
    }
    for (const CaseResult& c : result->cases) {
      ++total;
      if (c.passed) {
        if (verbose) out << "PASS " << file << ":" << c.line << ": " << c.name << "\n";
        continue;
      }
      ++failed;
      out << "FAIL " << file << ":" << c.line << ": " << c.name << "\n";
      for (const std::string& f : c.failures) out << "     " << f << "\n";
      out << "     decision: " << c.decision.ToJson().dump() << "\n";
    }
  }
  out << total << " cases in " << files.size() << " files: " << (total - failed) << " passed, "
      << failed << " failed";
  if (bad_files > 0) out << ", " << bad_files << " files could not be run";
  out << "\n";
  return failed == 0 && bad_files == 0 ? kExitOk : kExitFailed;
}

}  // namespace

Result<PolicyCase> ParseCaseInput(
    const nlohmann::json& json, const std::string& where, const std::string& base_dir,
    std::optional<std::chrono::system_clock::time_point> default_now) {
  CaseParser parser(where, base_dir);
  return parser.Parse(json, default_now);
}

Result<CaseFileSpec> ReadCaseFile(const std::string& path,
                                  const std::optional<std::string>& policy_path) {
  std::vector<Problem> problems;
  auto fail = [&](int line, std::string what) {
    problems.push_back({path + (line > 0 ? ":" + std::to_string(line) : ""), std::move(what)});
  };
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    fail(static_cast<int>(e.source().begin.line),
         "not valid TOML: " + std::string(e.description()));
    return Status::Invalid("case file " + path + " cannot be run", problems);
  }
  for (const auto& [k, v] : root) {
    std::string key(k.str());
    if (key != "policy" && key != "description" && key != "defaults" && key != "case") {
      fail(static_cast<int>(k.source().begin.line),
           "unknown key '" + key + "' (known: policy, description, defaults, case)");
    }
  }
  fs::path base = fs::path(path).parent_path();
  CaseFileSpec spec;
  spec.file = path;
  if (policy_path) {
    spec.policy_path = *policy_path;
  } else if (auto p = root["policy"].value<std::string>()) {
    spec.policy_path = fs::path(*p).is_absolute() ? *p : (base / *p).lexically_normal().string();
  } else {
    fail(1, "no policy: give policy = \"path\" in the file or --policy FILE");
  }
  nlohmann::json defaults = nlohmann::json::object();
  if (const toml::node* d = root.get("defaults")) {
    if (!d->is_table()) {
      fail(static_cast<int>(d->source().begin.line), "defaults must be a table");
    } else {
      defaults = TomlToJson(*d);
    }
  }
  const toml::array* cases = root["case"].as_array();
  if (cases == nullptr || cases->empty()) fail(1, "no [[case]] in the file");
  if (!problems.empty()) return Status::Invalid("case file " + path + " cannot be run", problems);

  for (const toml::node& node : *cases) {
    int line = static_cast<int>(node.source().begin.line);
    const toml::table* t = node.as_table();
    if (t == nullptr) {
      fail(line, "each [[case]] must be a table");
      continue;
    }
    for (const auto& [k, v] : *t) {
      std::string key(k.str());
      if (key != "name" && key != "input" && key != "expect") {
        fail(static_cast<int>(k.source().begin.line),
             "unknown key '" + key + "' in [[case]] (known: name, input, expect)");
      }
    }
    CaseSpec c;
    c.line = line;
    c.name = t->get("name") ? t->get("name")->value_or(std::string()) : std::string();
    if (c.name.empty()) fail(line, "a [[case]] needs a name");
    const toml::node* input = t->get("input");
    const toml::node* expect = t->get("expect");
    if (input == nullptr || !input->is_table() || expect == nullptr || !expect->is_table()) {
      fail(line, "case '" + c.name + "' needs [case.input] and [case.expect] tables");
      continue;
    }
    nlohmann::json in = defaults;
    const nlohmann::json case_input = TomlToJson(*input);
    for (const auto& [k, v] : case_input.items()) in[k] = v;
    auto parsed = ParseCaseInput(in, path + ":" + std::to_string(line) + ": input", base.string(),
                                 std::nullopt);
    if (!parsed.ok()) {
      for (const Problem& p : parsed.status().problems()) problems.push_back(p);
      continue;
    }
    c.c = std::move(*parsed);
    c.expect = TomlToJson(*expect);
    spec.cases.push_back(std::move(c));
  }
  if (!problems.empty()) return Status::Invalid("case file " + path + " cannot be run", problems);
  return spec;
}

Result<CaseFileResult> RunCaseFile(const std::string& path,
                                   const std::optional<std::string>& policy_path) {
  auto spec = ReadCaseFile(path, policy_path);
  if (!spec.ok()) return spec.status();
  CaseFileResult result;
  result.file = path;
  result.policy_path = spec->policy_path;
  auto policy = LoadPolicy(result.policy_path);
  if (!policy.ok()) {
    return Status::Invalid(
        "case file " + path + ": policy " + result.policy_path + " does not load",
        policy.status().problems());
  }
  result.policy_version = (*policy)->version();
  for (CaseSpec& spec_case : spec->cases) {
    CaseResult c;
    c.line = spec_case.line;
    c.name = spec_case.name;
    c.decision = (*policy)->Decide(spec_case.c.input);
    std::optional<nlohmann::json> delivered;
    if (spec_case.c.record) {
      Redaction r = Redact(*spec_case.c.record, c.decision);
      c.withheld = r.withheld;
      delivered = std::move(r.record);
    }
    c.failures = Expectation(spec_case.expect, c.decision, c.withheld, delivered).Check();
    c.passed = c.failures.empty();
    result.cases.push_back(std::move(c));
  }
  return result;
}

int PolicyCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                  const std::optional<std::string>& default_policy) {
  if (args.empty()) {
    err << kUsage;
    return kExitUsage;
  }
  if (args[0] == "check") return Check(args, out, err);
  if (args[0] == "explain") return Explain(args, out, err, default_policy);
  if (args[0] == "test") return Test(args, out, err);
  if (args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    out << kUsage;
    return kExitOk;
  }
  err << "unknown policy command '" << args[0] << "'\n" << kUsage;
  return kExitUsage;
}

}  // namespace safegate::policy
