// The API response bodies of the Gateway's results (API.md), and the placeholder policy.
#include "daemon/core/gateway.h"
#include "daemon/core/time_format.h"

namespace safegate {

using nlohmann::json;

namespace {

json NullIfEmpty(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

class PlaceholderDeliveryPolicy final : public DeliveryPolicy {
 public:
  DeliveryDecision Decide(const Caller&, const PushRequest&,
                          const config::Agency& recipient) const override {
    switch (recipient.role) {
      case config::Role::kPolice:
      case config::Role::kHealth:
      case config::Role::kCsc:
        return {"permit",
                {"placeholder policy: registered police, health and csc recipients are permitted"},
                std::nullopt};
      default:
        return {"deny",
                {"placeholder policy: agencies of role " +
                 std::string(config::RoleName(recipient.role)) + " do not receive records"},
                std::nullopt};
    }
  }
};

}  // namespace

std::shared_ptr<const DeliveryPolicy> MakePlaceholderDeliveryPolicy() {
  return std::make_shared<const PlaceholderDeliveryPolicy>();
}

json PushOutcome::ToJson() const {
  json deliveries_json = json::array();
  for (const Delivery& d : deliveries) {
    deliveries_json.push_back({{"recipient", d.recipient},
                               {"decision", d.decision},
                               {"reasons", d.reasons},
                               {"message_id", NullIfEmpty(d.message_id)}});
  }
  return {{"record_id", record_id}, {"deliveries", std::move(deliveries_json)}};
}

json MailboxPage::ToJson() const {
  json list = json::array();
  for (const MailboxMessage& m : messages) {
    list.push_back({{"message_id", m.message_id},
                    {"type", m.type},
                    {"record_id", NullIfEmpty(m.record_id)},
                    {"from", m.from},
                    {"purpose", m.purpose},
                    {"delivered_at", core::FormatTimeMs(m.delivered_at_ms)},
                    {"record", m.record},
                    {"notice", m.notice}});
  }
  return {{"messages", std::move(list)}, {"next", NullIfEmpty(next)}};
}

json AuditPage::ToJson() const {
  json list = json::array();
  for (const AuditEntry& e : entries) {
    json item = {{"seq", e.seq},
                 {"at", core::FormatTimeMs(e.at_ms)},
                 {"actor", e.actor},
                 {"action", e.action},
                 {"subject", e.erased ? json(nullptr) : json(e.subject)},
                 {"erased", e.erased},
                 {"record_id", e.record_id},
                 {"message_id", e.message_id},
                 {"purpose", e.purpose},
                 {"decision", e.decision},
                 {"reasons", e.reasons},
                 {"detail", e.detail},
                 {"details_hash", e.details_hash},
                 {"hash", e.hash}};
    if (!e.text.empty()) item["text"] = e.text;
    if (!e.explained.is_null()) item["explained"] = e.explained;
    list.push_back(std::move(item));
  }
  return {{"entries", std::move(list)}, {"next", NullIfEmpty(next)}};
}

json VerifyReport::ToJson() const {
  json faults = json::array();
  for (const HeadFault& f : head_faults) {
    faults.push_back({{"position", f.position}, {"tree_size", f.tree_size}, {"problem", f.problem}});
  }
  return {{"ok", ok},
          {"entries", entries},
          {"head", head},
          {"first_bad_seq", ok ? json(nullptr) : json(first_bad_seq)},
          {"problem", ok ? json(nullptr) : json(problem)},
          {"tree_size", tree_size},
          {"root_hash", root_hash},
          {"heads_checked", heads_checked},
          {"tree_head", tree_head},
          {"public_key", NullIfEmpty(public_key)},
          {"head_faults", std::move(faults)}};
}

json ErasureReport::ToJson() const { return {{"erased", true}, {"entries", entries}, {"seq", seq}}; }

}  // namespace safegate
