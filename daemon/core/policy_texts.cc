// The stored policy texts and the explanation of delivery entries (policy_texts.h).
#include "daemon/core/policy_texts.h"

#include <utility>

#include "daemon/core/crypto.h"
#include "daemon/core/policy_delivery.h"

namespace safegate::core {

using nlohmann::json;

Status StorePolicyText(Db& db, const policy::Policy& policy, const std::string& file,
                       int64_t now_ms) {
  auto ins = db.Prepare(
      "INSERT OR IGNORE INTO policy_texts(version, file, text, stored_at_ms) "
      "VALUES (?1, ?2, ?3, ?4)");
  if (!ins.ok()) return ins.status();
  (*ins)->Bind(1, policy.version()).Bind(2, file).Bind(3, policy.text()).Bind(4, now_ms);
  return (*ins)->Run();
}

PolicyExplainer::PolicyExplainer(Db& db, std::shared_ptr<const policy::Policy> current)
    : db_(db), current_(std::move(current)) {}

const policy::Policy* PolicyExplainer::Find(const std::string& version) {
  if (current_ && current_->version() == version) return current_.get();
  auto it = loaded_.find(version);
  if (it != loaded_.end()) return it->second.get();
  std::shared_ptr<const policy::Policy> found;
  auto q = db_.PrepareOnce("SELECT text FROM policy_texts WHERE version = ?1");
  if (q.ok()) {
    Stmt& s = **q;
    s.Bind(1, version);
    auto row = s.Step();
    if (row.ok() && *row) {
      const std::string text = s.Text(0);
      // Only text whose hash is the cited version is the policy the entry was decided with.
      if (Hex(Sha256(text)) == version) {
        auto parsed = policy::ParsePolicy(text, "stored policy " + version.substr(0, 12));
        if (parsed.ok()) found = std::move(*parsed);
      }
    }
  }
  return loaded_.emplace(version, std::move(found)).first->second.get();
}

namespace {

// The lawful basis a citation (a delivery entry's detail, a stored answer's delivery) names:
// the basis its governing rule gives a record under the articles in its "basis" list, from
// `p`. nullopt when it cites none, is malformed, or `p` has no permit rule of that id.
std::optional<std::string> CitedLawfulBasis(const json& citation, const policy::Policy& p) {
  auto basis = citation.find("basis");
  auto rule = citation.find("governing_rule");
  if (basis == citation.end() || !basis->is_array() || rule == citation.end() ||
      !rule->is_string()) {
    return std::nullopt;
  }
  bool art9 = false, art10 = false;
  for (const json& b : *basis) {
    if (b == "art9") art9 = true;
    if (b == "art10") art10 = true;
  }
  return p.LawfulBasisOf(rule->get_ref<const std::string&>(), art9, art10);
}

}  // namespace

void PolicyExplainer::Explain(AuditEntry& e) {
  if (e.action != "delivery_permitted" && e.action != "delivery_redacted" &&
      e.action != "delivery_denied") {
    return;
  }
  auto v = e.detail.is_object() ? e.detail.find("policy_version") : e.detail.end();
  if (!e.detail.is_object() || v == e.detail.end() || !v->is_string()) return;
  const policy::Policy* p = Find(v->get<std::string>());

  json reasons = json::array();
  for (const std::string& code : e.reasons) reasons.push_back(p ? p->ExplainReason(code) : code);

  json basis = nullptr;
  if (auto old = e.detail.find("lawful_basis"); old != e.detail.end() && old->is_string()) {
    basis = *old;  // an entry from before the basis was cited
  } else if (p != nullptr) {
    if (auto text = CitedLawfulBasis(e.detail, *p)) basis = *text;
  }
  e.explained = {{"reasons", std::move(reasons)},
                 {"lawful_basis", std::move(basis)},
                 {"policy_text", p ? "stored" : "not stored"}};
}

namespace {

// The answer's reasons for a cited delivery under `p` (as DecideInContext composes them);
// nullopt if `cited` is malformed or `p` has no permit rule it cites.
std::optional<std::vector<std::string>> Spell(const json& cited, const policy::Policy& p) {
  auto codes = cited.find("codes");
  auto fired = cited.find("rules_fired");
  if (codes == cited.end() || !codes->is_array() || fired == cited.end() || !fired->is_array()) {
    return std::nullopt;
  }
  std::vector<std::string> reasons;
  reasons.reserve(codes->size() + 3);
  for (const json& c : *codes) {
    if (!c.is_string()) return std::nullopt;
    reasons.push_back(p.ExplainReason(c.get_ref<const std::string&>()));
  }
  std::vector<std::string> rules;
  for (const json& r : *fired) {
    if (!r.is_string()) return std::nullopt;
    rules.push_back(r.get<std::string>());
  }
  std::string basis;
  if (cited.contains("basis")) {
    auto text = CitedLawfulBasis(cited, p);
    if (!text) return std::nullopt;
    basis = std::move(*text);
  }
  AppendDecisionLines(reasons, rules, basis, p.version());
  return reasons;
}

}  // namespace

std::optional<json> CiteDelivery(const Delivery& delivery, const DeliveryDecision& decision,
                                 const policy::Policy* policy) {
  const json& detail = decision.audit_detail;
  if (policy == nullptr || !detail.is_object()) return std::nullopt;
  auto version = detail.find("policy_version");
  auto fired = detail.find("rules_fired");
  if (version == detail.end() || *version != policy->version() || fired == detail.end()) {
    return std::nullopt;
  }
  // Member by member: the {{key, value}, ...} form builds an array per member first.
  json cited = json::object();
  cited.emplace("recipient", delivery.recipient);
  cited.emplace("decision", delivery.decision);
  cited.emplace("message_id",
                delivery.message_id.empty() ? json(nullptr) : json(delivery.message_id));
  cited.emplace("codes", decision.audit_reasons);
  cited.emplace("rules_fired", *fired);
  cited.emplace("policy_version", *version);
  if (auto rule = detail.find("governing_rule"); rule != detail.end()) {
    cited.emplace("governing_rule", *rule);
  }
  if (auto basis = detail.find("basis"); basis != detail.end()) cited.emplace("basis", *basis);
  // Stored cited only if a replay will answer word for word what the caller was answered.
  auto again = Spell(cited, *policy);
  if (!again || *again != delivery.reasons) return std::nullopt;
  return cited;
}

Result<std::vector<std::string>> CitedReasons(const json& cited, PolicyExplainer& policies) {
  auto version = cited.find("policy_version");
  auto codes = cited.find("codes");
  if (version == cited.end() || !version->is_string() || codes == cited.end() ||
      !codes->is_array()) {
    return Status::Internal("store: a stored delivery's citation is malformed");
  }
  const std::string& v = version->get_ref<const std::string&>();
  if (const policy::Policy* p = policies.Find(v)) {
    if (auto reasons = Spell(cited, *p)) return *reasons;
    return Status::Internal("store: a stored delivery cites what policy " + v.substr(0, 12) +
                            " does not hold");
  }
  std::vector<std::string> reasons;
  for (const json& c : *codes) {
    if (c.is_string()) reasons.push_back(c.get<std::string>());
  }
  reasons.push_back("policy version: " + v + " (its text is not stored here)");
  return reasons;
}

}  // namespace safegate::core
