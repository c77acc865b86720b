// The stored policy texts and the explanation of delivery entries (policy_texts.h).
#include "daemon/core/policy_texts.h"

#include <utility>

#include "daemon/core/crypto.h"

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
  } else if (auto cited = e.detail.find("basis"); cited != e.detail.end() && cited->is_array()) {
    auto rule = e.detail.find("governing_rule");
    if (p != nullptr && rule != e.detail.end() && rule->is_string()) {
      bool art9 = false, art10 = false;
      for (const json& c : *cited) {
        if (c == "art9") art9 = true;
        if (c == "art10") art10 = true;
      }
      if (auto text = p->LawfulBasisOf(rule->get<std::string>(), art9, art10)) basis = *text;
    }
  }
  e.explained = {{"reasons", std::move(reasons)},
                 {"lawful_basis", std::move(basis)},
                 {"policy_text", p ? "stored" : "not stored"}};
}

}  // namespace safegate::core
