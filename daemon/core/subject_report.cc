// The subject access report (subject_report.h, docs/subject-access.md).
//
// The subject's entries are found the way an audit query by subject finds them: through the
// blind index of the reference to the subject's key, then the entries sealed under that key
// (index audit_key). The answer is built from each entry's hashed bytes, never from the index
// columns, so what the report says is what the Merkle tree proves.
#include "daemon/core/subject_report.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "daemon/audit/tree_head.h"
#include "daemon/core/audit_log.h"
#include "daemon/core/crypto.h"
#include "daemon/core/merkle_store.h"
#include "daemon/core/policy_store.h"
#include "daemon/core/policy_texts.h"
#include "daemon/core/subject_keys.h"
#include "daemon/core/time_format.h"
#include "policy/consent.h"
#include "policy/policy.h"
#include "record/record.h"

namespace safegate {

using nlohmann::json;

// Stores that do not implement the report say so rather than fail to build.
void Gateway::SubjectReport(const Caller&, std::string, std::string, Callback<json> done) {
  done(Status::Unavailable("this store does not make subject access reports"));
}

namespace core {
namespace {

// A report covers at most this many entries; a subject with more is marked truncated (the
// rest is reachable with GET /v1/audit?subject=).
constexpr int64_t kMaxReportEntries = 100000;

bool IsPurposeId(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

std::string Str(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

// A string member, or null when absent: the report says "not recorded" rather than "".
json StrOrNull(const json& obj, const char* key) {
  std::string s = Str(obj, key);
  return s.empty() ? json(nullptr) : json(std::move(s));
}

json OrNull(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

// The lawful basis of a decision: the basis the entry cites, in the words of the policy
// version it cites (PolicyExplainer); for entries without a citation, the policy's detail,
// else its "lawful basis: ..." reason.
json LawfulBasis(const AuditEntry& e) {
  if (e.explained.is_object() && e.explained.contains("lawful_basis")) {
    return e.explained["lawful_basis"];
  }
  if (std::string b = Str(e.detail, "lawful_basis"); !b.empty()) return b;
  constexpr std::string_view kPrefix = "lawful basis: ";
  for (const std::string& r : e.reasons) {
    if (r.rfind(kPrefix, 0) == 0) return r.substr(kPrefix.size());
  }
  return nullptr;
}

enum class Section { kDisclosure, kRefusal, kRead, kEvent };

Section SectionOf(const std::string& action) {
  if (action == "delivery_permitted" || action == "delivery_redacted") return Section::kDisclosure;
  if (action == "delivery_denied" || action == "request_rejected") return Section::kRefusal;
  if (action == "mailbox_read" || action == "record_read" || action == "flags_queried" ||
      action == "consents_queried" || action == "audit_queried") {
    return Section::kRead;
  }
  return Section::kEvent;
}

struct Loaded {
  std::vector<AuditEntry> entries;
  bool truncated = false;
};

Result<Loaded> LoadEntries(StoreContext& store, const std::string& subject) {
  Loaded out;
  SubjectKeys keys(&store.StoreDb(), &store.StoreKey());
  auto key_id = keys.Find(subject);
  if (!key_id.ok()) return key_id.status();
  if (!*key_id) return out;  // never seen (or erased): nothing about it can be found
  auto q = store.StoreDb().PrepareOnce(
      "SELECT seq, entry, hash, key_id, details FROM audit WHERE key_id = ?1 ORDER BY seq "
      "LIMIT ?2");
  if (!q.ok()) return q.status();
  Stmt& s = **q;
  s.Bind(1, **key_id).Bind(2, kMaxReportEntries + 1);
  SubjectKeys::Cache cache;
  PolicyExplainer explainer(store.StoreDb(), nullptr);
  for (;;) {
    auto row = s.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (static_cast<int64_t>(out.entries.size()) == kMaxReportEntries) {
      out.truncated = true;
      break;
    }
    auto parsed = ParseAuditEntry(s.Blob(1));
    if (!parsed.ok()) {
      return Status::Internal("audit: entry " + std::to_string(s.Int(0)) +
                              " does not parse; run audit verify: " + parsed.status().detail());
    }
    AuditEntry e = std::move(*parsed);
    e.hash = Hex(s.Blob(2));
    auto details = keys.Open(s.Int(3), e.seq, s.Blob(4), e.details_hash, cache);
    if (!details.ok()) {
      return Status::Internal("audit: the sealed details of entry " + std::to_string(e.seq) +
                              " do not match it; run audit verify");
    }
    if (!*details) {
      e.erased = true;
    } else {
      // A blind-index collision would be another subject's entry: never report it.
      if ((*details)->subject != subject) continue;
      e.subject = std::move((*details)->subject);
      e.text = std::move((*details)->text);
    }
    explainer.Explain(e);  // a delivery's reasons and lawful basis, in words
    out.entries.push_back(std::move(e));
  }
  return out;
}

// The other references the subject index links to the same subject as `ref` (docs/subjects.md),
// sorted; empty when `ref` is not indexed or stands alone. A link held for review is not a
// link: a held record keeps a subject of its own.
Result<std::vector<std::string>> LinkedRefs(StoreContext& store, const std::string& ref) {
  auto q = store.StoreDb().PrepareOnce(
      "SELECT ref FROM subject_index WHERE subject_id = "
      "(SELECT subject_id FROM subject_index WHERE ref = ?1) AND ref != ?1 ORDER BY ref");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, ref);
  std::vector<std::string> out;
  for (;;) {
    auto row = (*q)->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back((*q)->Text(0));
  }
  return out;
}

// The entries of `subject` and of every reference linked to it, in seq order, each with the
// reference it was made under in `subject` (also for entries whose details are erased: the
// key that found them is that reference's).
Result<Loaded> LoadLinkedEntries(StoreContext& store, const std::vector<std::string>& refs) {
  Loaded out;
  for (const std::string& ref : refs) {
    auto loaded = LoadEntries(store, ref);
    if (!loaded.ok()) return loaded.status();
    out.truncated = out.truncated || loaded->truncated;
    for (AuditEntry& e : loaded->entries) {
      if (e.subject.empty()) e.subject = ref;
      out.entries.push_back(std::move(e));
    }
  }
  std::sort(out.entries.begin(), out.entries.end(),
            [](const AuditEntry& a, const AuditEntry& b) { return a.seq < b.seq; });
  if (static_cast<int64_t>(out.entries.size()) > kMaxReportEntries) {
    out.entries.resize(static_cast<size_t>(kMaxReportEntries));
    out.truncated = true;
  }
  return out;
}

// The latest signed tree head with the gateway's public key (API form), or null.
Result<json> LatestHead(StoreContext& store) {
  auto head = ReadLatestTreeHead(store.StoreDb());
  if (!head.ok()) return head.status();
  if (!*head) return json(nullptr);
  auto q = store.StoreDb().PrepareOnce("SELECT value FROM meta WHERE key = 'signing_public_key'");
  if (!q.ok()) return q.status();
  auto row = (*q)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::Internal("store: no signing public key is recorded");
  const std::string bytes = (*q)->Blob(0);
  if (bytes.size() != audit::kPublicKeySize) {
    return Status::Internal("store: the recorded signing public key is not 32 bytes");
  }
  audit::PublicKey key{};
  std::copy(bytes.begin(), bytes.end(), key.begin());
  return audit::TreeHeadToJson((*head)->head, key);
}

std::string AgencyName(const config::Registry* registry, const std::string& id) {
  if (registry == nullptr) return "";
  const config::Agency* a = registry->Find(id);
  return a != nullptr ? a->name : "";
}

// Builds the report from the subject's entries (oldest first).
json BuildSections(const std::vector<AuditEntry>& entries, const config::Registry* registry) {
  // What each record is, from its record_accepted entry; the override recorded for a record.
  std::map<std::string, std::string> kinds;
  std::map<std::string, const AuditEntry*> overrides;
  std::map<std::string, const AuditEntry*> acks;  // by message id
  for (const AuditEntry& e : entries) {
    if (e.erased) continue;
    if (e.action == "record_accepted" && !e.record_id.empty()) {
      kinds[e.record_id] = Str(e.detail, "kind");
    } else if (e.action == "override_used" && !e.record_id.empty()) {
      overrides[e.record_id] = &e;
    } else if (e.action == "message_acked" && !e.message_id.empty()) {
      acks.emplace(e.message_id, &e);
    }
  }
  auto kind_of = [&](const std::string& record_id) -> json {
    auto it = kinds.find(record_id);
    return it == kinds.end() || it->second.empty() ? json(nullptr) : json(it->second);
  };
  auto named = [&](const std::string& id) -> json {
    std::string name = AgencyName(registry, id);
    return {{"id", id}, {"name", OrNull(name)}};
  };

  json disclosures = json::array(), refusals = json::array(), reads = json::array(),
       events = json::array();
  int64_t erased = 0;
  for (const AuditEntry& e : entries) {
    json item = {{"seq", e.seq}, {"at", FormatTimeMs(e.at_ms)}, {"action", e.action}};
    item["reference"] = e.subject;  // the reference the entry was made under
    if (e.erased) {
      // The details are gone: what the bytes still say is in the log, not repeated here.
      ++erased;
      item["erased"] = true;
      events.push_back(std::move(item));
      continue;
    }
    const Section section = SectionOf(e.action);
    if (section == Section::kDisclosure || (section == Section::kRefusal &&
                                            e.action == "delivery_denied")) {
      const std::string recipient = Str(e.detail, "recipient");
      item["from"] = named(e.actor);
      item["to"] = named(recipient);
      item["record_id"] = OrNull(e.record_id);
      item["record_kind"] = kind_of(e.record_id);
      item["message_id"] = OrNull(e.message_id);
      item["purpose"] = OrNull(e.purpose);
      item["decision"] = e.decision;
      item["lawful_basis"] = LawfulBasis(e);
      // The reasons in words (the entry records rule ids, resolved against the policy text of
      // the version it cites), and the codes as recorded.
      if (e.explained.is_object() && e.explained.contains("reasons")) {
        item["reasons"] = e.explained["reasons"];
        item["reason_codes"] = e.reasons;
      } else {
        item["reasons"] = e.reasons;
      }
      item["consent"] = StrOrNull(e.detail, "consent");
      if (e.detail.contains("rules_fired")) item["rules_fired"] = e.detail["rules_fired"];
      item["policy_version"] = StrOrNull(e.detail, "policy_version");
      if (e.detail.contains("withheld")) item["withheld"] = e.detail["withheld"];
      if (e.detail.contains("deadline")) item["deadline"] = e.detail["deadline"];
      json override_info = nullptr;
      if (e.detail.value("override_used", false)) {
        override_info = {{"used", true}};
        if (auto it = overrides.find(e.record_id); it != overrides.end()) {
          const AuditEntry& o = *it->second;
          override_info["seq"] = o.seq;
          override_info["consent"] = StrOrNull(o.detail, "consent");
          override_info["reasons"] = o.reasons;
          // What the pushing agency recorded (basis, reason, authoriser) is sealed text.
          if (!o.text.empty()) {
            json recorded = json::parse(o.text, nullptr, false);
            if (recorded.is_object() && recorded.contains("override")) {
              override_info["recorded"] = recorded["override"];
            }
          }
        }
      }
      item["override"] = std::move(override_info);
      if (section == Section::kDisclosure) {
        json acked = nullptr;
        if (auto it = acks.find(e.message_id); it != acks.end()) {
          acked = FormatTimeMs(it->second->at_ms);
        }
        item["acknowledged_at"] = std::move(acked);
        disclosures.push_back(std::move(item));
      } else {
        refusals.push_back(std::move(item));
      }
      continue;
    }
    item["by"] = named(e.actor);
    item["record_id"] = OrNull(e.record_id);
    item["message_id"] = OrNull(e.message_id);
    item["purpose"] = OrNull(e.purpose);
    item["reasons"] = e.reasons;
    item["detail"] = e.detail;
    if (section == Section::kRefusal) {
      item["record_kind"] = kind_of(e.record_id);
      item["operation"] = StrOrNull(e.detail, "operation");
      refusals.push_back(std::move(item));
    } else if (section == Section::kRead) {
      if (e.action == "audit_queried") {
        item["what"] = Str(e.detail, "what") == "subject_report" ? "subject access report"
                                                                   : "audit log query";
      } else if (e.action == "record_read") {
        item["what"] = "record read";
      } else if (e.action == "mailbox_read") {
        item["what"] = "record received from the mailbox";
      } else if (e.action == "flags_queried") {
        item["what"] = "flags viewed";
      } else {
        item["what"] = "consents viewed";
      }
      reads.push_back(std::move(item));
    } else {
      if (!e.record_id.empty()) item["record_kind"] = kind_of(e.record_id);
      events.push_back(std::move(item));
    }
  }
  return {{"disclosures", std::move(disclosures)},
          {"refusals", std::move(refusals)},
          {"reads", std::move(reads)},
          {"events", std::move(events)},
          {"erased_entries", erased}};
}

}  // namespace

TypedJob<json> PrepareSubjectReport(StoreContext& store, const Caller& caller, std::string ref,
                                     std::string purpose) {
  TypedJob<json> job;
  job.run = [&store, caller, ref, purpose](json& out) -> Status {
    const int64_t now = store.StoreNowMs();
    if (caller.role != config::Role::kAudit) {
      return Status::Forbidden("only audit agencies may make subject access reports");
    }
    auto parsed = record::ParseSubjectRef(ref);
    if (!parsed.ok()) {
      return Status::BadRequest(
          "the subject in the path must be a subject reference: nhs:<10 digits>, "
          "csc:<area>:<id> or police:<force>:<id>");
    }
    if (!IsPurposeId(purpose)) {
      return Status::Invalid("a subject access report states its purpose",
                             {{"purpose", purpose.empty() ? "required: why the report is made, "
                                                            "e.g. subject_access"
                                                          : "must be a purpose slug: 1 to 64 "
                                                            "of a-z, 0-9, '-', '_'"}});
    }
    const std::string subject = parsed->ToString();

    // The reference asked for, then those the gateway has linked to the same subject.
    auto linked = LinkedRefs(store, subject);
    if (!linked.ok()) return linked.status();
    std::vector<std::string> refs = {subject};
    refs.insert(refs.end(), linked->begin(), linked->end());
    auto loaded = LoadLinkedEntries(store, refs);
    if (!loaded.ok()) return loaded.status();
    auto consents = LoadConsents(store, subject);
    if (!consents.ok()) return consents.status();
    auto head = LatestHead(store);
    if (!head.ok()) return head.status();
    auto log_size = store.StoreDb().QueryInt("SELECT COALESCE(MAX(seq), 0) FROM audit");
    if (!log_size.ok()) return log_size.status();

    const auto registry = store.StoreRegistry();
    json sections = BuildSections(loaded->entries, registry.get());
    const int64_t disclosed = static_cast<int64_t>(sections["disclosures"].size());
    const int64_t refused = static_cast<int64_t>(sections["refusals"].size());

    // The report's own entry, in the same transaction as the reads it describes.
    AuditEntry e;
    e.at_ms = now;
    e.actor = caller.agency;
    e.action = "audit_queried";
    e.subject = subject;
    e.purpose = purpose;
    e.detail = {{"what", "subject_report"},
                {"entries", static_cast<int64_t>(loaded->entries.size())},
                {"disclosures", disclosed},
                {"refusals", refused},
                {"log_size", *log_size},
                {"linked_references", static_cast<int64_t>(linked->size())}};
    if (loaded->truncated) e.detail["truncated"] = true;
    if (Status s = store.StoreAppend(e); !s.ok()) return s;

    out = {{"report", "subject_access"},
           {"subject", subject},
           {"linked_references", *linked},
           {"generated_at", FormatTimeMs(now)},
           {"generated_by", caller.agency},
           {"purpose", purpose},
           {"gateway", {{"area", store.StoreConfig().area}}},
           {"report_seq", e.seq},
           {"log_size", *log_size},
           {"entries", static_cast<int64_t>(loaded->entries.size())},
           {"truncated", loaded->truncated},
           {"disclosures", std::move(sections["disclosures"])},
           {"refusals", std::move(sections["refusals"])},
           {"reads", std::move(sections["reads"])},
           {"events", std::move(sections["events"])},
           {"erased_entries", sections["erased_entries"]},
           {"consents", consents->ToJson()},
           {"tree_head", std::move(*head)}};
    return Status::Ok();
  };
  job.on_refused = [&store, caller](const Status& refusal) {
    AuditEntry e = RefusalEntry(store.StoreNowMs(), caller.agency, "subject_report", refusal);
    return store.StoreAppend(e);
  };
  return job;
}

}  // namespace core
}  // namespace safegate
