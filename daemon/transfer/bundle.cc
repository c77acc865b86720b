#include "daemon/transfer/bundle.h"

#include <sodium.h>

#include <algorithm>
#include <cstdlib>
#include <initializer_list>
#include <set>

#include "daemon/transfer/working_days.h"
#include "record/record.h"
#include "record/json_pointer.h"

namespace safegate::transfer {
namespace {

using nlohmann::json;

constexpr std::string_view kKindNames[] = {"proposal", "ack", "accept", "decline",
                                           "conference_held"};
constexpr std::string_view kReasonNames[] = {"moved", "placement", "missing"};
constexpr std::string_view kLeadRoleNames[] = {"csc_lead", "police_lead"};
constexpr std::string_view kRefusalNames[] = {
    "not_sealed_to_us", "malformed",     "unsigned",     "unknown_sender",
    "sender_mismatch",  "bad_signature", "misaddressed", "unsupported_version"};

template <typename E, size_t N>
std::optional<E> ParseName(const std::string_view (&names)[N], std::string_view name) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<E>(i);
  }
  return std::nullopt;
}

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Collects every problem of a payload with its JSON pointer (the record parser's habit: report
// all faults, not only the first).
class Reader {
 public:
  explicit Reader(std::string prefix) : prefix_(std::move(prefix)) {}

  std::vector<Problem>& problems() { return problems_; }
  std::string At(std::string_view where) const { return prefix_ + std::string(where); }
  void Fail(std::string_view where, std::string what) {
    problems_.push_back({At(where), std::move(what)});
  }

  // `j` must be an object holding only `keys`; reports the others as unknown.
  bool Object(const json& j, std::string_view where, std::initializer_list<std::string_view> keys) {
    if (!j.is_object()) {
      Fail(where, "must be an object");
      return false;
    }
    for (const auto& [k, v] : j.items()) {
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) {
        Fail(std::string(where) + "/" + record::JsonPointerToken(k), "unknown member");
      }
    }
    return true;
  }

  const json* Member(const json& obj, std::string_view where, std::string_view key) {
    const auto it = obj.find(key);
    if (it == obj.end()) {
      Fail(std::string(where) + "/" + std::string(key), "is required");
      return nullptr;
    }
    return &*it;
  }

  // A required string; `allow_empty` permits "".
  std::optional<std::string> String(const json& obj, std::string_view where, std::string_view key,
                                    bool allow_empty = false) {
    const json* v = Member(obj, where, key);
    if (v == nullptr) return std::nullopt;
    const std::string at = std::string(where) + "/" + std::string(key);
    if (!v->is_string()) {
      Fail(at, "must be a string");
      return std::nullopt;
    }
    std::string s = v->get<std::string>();
    if (s.empty() && !allow_empty) {
      Fail(at, "must not be empty");
      return std::nullopt;
    }
    return s;
  }

  std::optional<std::string> Slug(const json& obj, std::string_view where, std::string_view key) {
    auto s = String(obj, where, key);
    if (s && !record::IsSlug(*s)) {
      Fail(std::string(where) + "/" + std::string(key),
           "must be 1 to 64 characters of a-z, 0-9 and '-'");
      return std::nullopt;
    }
    return s;
  }

  std::optional<int64_t> Time(const json& obj, std::string_view where, std::string_view key) {
    auto s = String(obj, where, key);
    if (!s) return std::nullopt;
    auto ms = ParseTimeMs(*s);
    if (!ms) {
      Fail(std::string(where) + "/" + std::string(key),
           "must be an RFC 3339 UTC time such as 2026-12-24T10:00:00.000Z");
    }
    return ms;
  }

  std::optional<int> Count(const json& obj, std::string_view where, std::string_view key) {
    const json* v = Member(obj, where, key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number_integer() || v->get<int64_t>() < 0 || v->get<int64_t>() > 1'000'000) {
      Fail(std::string(where) + "/" + std::string(key), "must be an integer from 0 to 1000000");
      return std::nullopt;
    }
    return static_cast<int>(v->get<int64_t>());
  }

 private:
  std::string prefix_;
  std::vector<Problem> problems_;
};

json LeadToJson(const Lead& lead) {
  return {{"area", lead.area}, {"agency", lead.agency}, {"since", FormatTimeMs(lead.since_ms)}};
}

std::optional<Lead> ParseLead(Reader& r, const json& j, const std::string& where) {
  if (!r.Object(j, where, {"area", "agency", "since"})) return std::nullopt;
  auto area = r.Slug(j, where, "area");
  auto agency = r.Slug(j, where, "agency");
  auto since = r.Time(j, where, "since");
  if (!area || !agency || !since) return std::nullopt;
  return Lead{*area, *agency, *since};
}

json ProposalToJson(const ProposalBody& p) {
  json deadlines = json::array();
  for (const DeadlineDue& d : p.deadlines) {
    deadlines.push_back({{"name", d.name}, {"due", FormatTimeMs(d.due_ms)}});
  }
  json records = json::array();
  for (const TransferRecord& t : p.records) {
    records.push_back({{"for", config::RoleName(t.recipient)},
                       {"record", t.record},
                       {"decision",
                        {{"effect", t.decision.effect},
                         {"lawful_basis", t.decision.lawful_basis},
                         {"governing_rule", t.decision.governing_rule},
                         {"withheld", t.decision.withheld}}}});
  }
  return {{"subject", p.subject},
          {"reason", ReasonName(p.reason)},
          {"note", p.note},
          {"leads", {{"csc", LeadToJson(p.leads.csc)}, {"police", LeadToJson(p.leads.police)}}},
          {"deadlines", std::move(deadlines)},
          {"records", std::move(records)},
          {"policy",
           {{"purpose", p.policy.purpose},
            {"policy_version", p.policy.policy_version},
            {"permitted", p.policy.permitted},
            {"redacted", p.policy.redacted},
            {"denied", p.policy.denied}}}};
}

std::optional<ProposalBody> ParseProposal(Reader& r, const json& j, const std::string& w) {
  if (!r.Object(j, w, {"subject", "reason", "note", "leads", "deadlines", "records", "policy"})) {
    return std::nullopt;
  }
  ProposalBody p;
  const size_t before = r.problems().size();
  if (auto s = r.String(j, w, "subject")) {
    if (record::ParseSubjectRef(*s).ok()) {
      p.subject = *s;
    } else {
      r.Fail(w + "/subject",
             "must be a subject reference: nhs:<10 digits>, csc:<area>:<id> or "
             "police:<force>:<id>");
    }
  }
  if (auto s = r.String(j, w, "reason")) {
    if (auto reason = ParseReason(*s)) {
      p.reason = *reason;
    } else {
      r.Fail(w + "/reason", "must be moved, placement or missing");
    }
  }
  if (auto s = r.String(j, w, "note", /*allow_empty=*/true)) p.note = *s;

  if (const json* leads = r.Member(j, w, "leads")) {
    const std::string lw = w + "/leads";
    if (r.Object(*leads, lw, {"csc", "police"})) {
      if (const json* c = r.Member(*leads, lw, "csc")) {
        if (auto l = ParseLead(r, *c, lw + "/csc")) p.leads.csc = *l;
      }
      if (const json* c = r.Member(*leads, lw, "police")) {
        if (auto l = ParseLead(r, *c, lw + "/police")) p.leads.police = *l;
      }
    }
  }

  if (const json* ds = r.Member(j, w, "deadlines")) {
    const std::string dw = w + "/deadlines";
    if (!ds->is_array()) {
      r.Fail(dw, "must be an array");
    } else {
      std::set<std::string> names;
      for (size_t i = 0; i < ds->size(); ++i) {
        const std::string iw = dw + "/" + std::to_string(i);
        const json& d = (*ds)[i];
        if (!r.Object(d, iw, {"name", "due"})) continue;
        auto name = r.String(d, iw, "name");
        auto due = r.Time(d, iw, "due");
        if (name && !names.insert(*name).second) r.Fail(iw + "/name", "names a deadline twice");
        if (name && due) p.deadlines.push_back({*name, *due});
      }
    }
  }

  int permits = 0, redacts = 0;
  if (const json* rs = r.Member(j, w, "records")) {
    const std::string rw = w + "/records";
    if (!rs->is_array()) {
      r.Fail(rw, "must be an array");
    } else {
      for (size_t i = 0; i < rs->size(); ++i) {
        const std::string iw = rw + "/" + std::to_string(i);
        const json& t = (*rs)[i];
        if (!r.Object(t, iw, {"for", "record", "decision"})) continue;
        TransferRecord out;
        if (auto f = r.String(t, iw, "for")) {
          auto role = config::ParseRole(*f);
          if (role == config::Role::kCsc || role == config::Role::kPolice) {
            out.recipient = *role;
          } else {
            r.Fail(iw + "/for", "must be csc or police");
          }
        }
        if (const json* rec = r.Member(t, iw, "record")) {
          // Redaction may leave out any member but the envelope that always travels (kind,
          // source, classification), so only the envelope is checked here; the receiving
          // store validates what it keeps.
          if (!rec->is_object()) {
            r.Fail(iw + "/record", "must be an object (a canonical record)");
          } else {
            const auto kind = rec->find("kind");
            if (kind == rec->end() || !kind->is_string() ||
                !record::ParseKind(kind->get<std::string>())) {
              r.Fail(iw + "/record/kind", "must be a record kind (flag, occurrence, ...)");
            }
            const auto source = rec->find("source");
            if (source == rec->end() || !source->is_object()) {
              r.Fail(iw + "/record/source", "must be an object");
            }
            out.record = *rec;
          }
        }
        if (const json* d = r.Member(t, iw, "decision")) {
          const std::string dw = iw + "/decision";
          if (r.Object(*d, dw, {"effect", "lawful_basis", "governing_rule", "withheld"})) {
            if (auto e = r.String(*d, dw, "effect")) {
              if (*e == "permit") {
                ++permits;
              } else if (*e == "redact") {
                ++redacts;
              } else {
                r.Fail(dw + "/effect", "must be permit or redact (denied records do not travel)");
              }
              out.decision.effect = *e;
            }
            if (auto b = r.String(*d, dw, "lawful_basis")) out.decision.lawful_basis = *b;
            if (auto g = r.String(*d, dw, "governing_rule", true)) out.decision.governing_rule = *g;
            if (const json* wh = r.Member(*d, dw, "withheld")) {
              bool good = wh->is_array();
              if (good) {
                for (const json& ptr : *wh) {
                  if (!ptr.is_string() || ptr.get<std::string>().empty() ||
                      ptr.get<std::string>()[0] != '/') {
                    good = false;
                    break;
                  }
                  out.decision.withheld.push_back(ptr.get<std::string>());
                }
              }
              if (!good) r.Fail(dw + "/withheld", "must be an array of JSON pointers");
            }
          }
        }
        p.records.push_back(std::move(out));
      }
    }
  }

  if (const json* pol = r.Member(j, w, "policy")) {
    const std::string pw = w + "/policy";
    if (r.Object(*pol, pw, {"purpose", "policy_version", "permitted", "redacted", "denied"})) {
      if (auto s = r.String(*pol, pw, "purpose")) {
        if (*s != "case_transfer") r.Fail(pw + "/purpose", "must be case_transfer");
        p.policy.purpose = *s;
      }
      if (auto s = r.String(*pol, pw, "policy_version", true)) {
        if (!IsLowerHex(*s)) r.Fail(pw + "/policy_version", "must be lower-case hex");
        p.policy.policy_version = *s;
      }
      auto permitted = r.Count(*pol, pw, "permitted");
      auto redacted = r.Count(*pol, pw, "redacted");
      auto denied = r.Count(*pol, pw, "denied");
      if (permitted) {
        p.policy.permitted = *permitted;
        if (*permitted != permits) {
          r.Fail(pw + "/permitted", "says " + std::to_string(*permitted) + " but " +
                                        std::to_string(permits) + " records are permitted");
        }
      }
      if (redacted) {
        p.policy.redacted = *redacted;
        if (*redacted != redacts) {
          r.Fail(pw + "/redacted", "says " + std::to_string(*redacted) + " but " +
                                       std::to_string(redacts) + " records are redacted");
        }
      }
      if (denied) p.policy.denied = *denied;
    }
  }
  if (r.problems().size() != before) return std::nullopt;
  return p;
}

json AnswerToJson(const AnswerBody& a, MessageKind kind) {
  json out = {{"role", LeadRoleName(a.role)}, {"agency", a.agency}, {"by", a.by}};
  if (kind == MessageKind::kDecline) out["reason"] = a.reason;
  return out;
}

std::optional<AnswerBody> ParseAnswer(Reader& r, const json& j, const std::string& w,
                                      MessageKind kind) {
  const bool decline = kind == MessageKind::kDecline;
  const bool shaped = decline ? r.Object(j, w, {"role", "agency", "by", "reason"})
                              : r.Object(j, w, {"role", "agency", "by"});
  if (!shaped) return std::nullopt;
  const size_t before = r.problems().size();
  AnswerBody a;
  if (auto s = r.String(j, w, "role")) {
    if (auto role = ParseLeadRole(*s)) {
      a.role = *role;
    } else {
      r.Fail(w + "/role", "must be csc_lead or police_lead");
    }
  }
  if (auto s = r.Slug(j, w, "agency")) a.agency = *s;
  // Who accepted must be named; a decline is by the agency, its reason is what matters.
  if (auto s = r.String(j, w, "by", /*allow_empty=*/decline)) a.by = *s;
  if (decline) {
    if (auto s = r.String(j, w, "reason")) a.reason = *s;
  }
  if (r.problems().size() != before) return std::nullopt;
  return a;
}

Refusal Refuse(RefusalCode code, std::string what, std::string where = "") {
  Refusal out;
  out.code = code;
  out.detail = std::string(RefusalCodeName(code)) + ": " + what;
  if (!where.empty()) out.detail += " (at " + where + ")";
  out.where = std::move(where);
  return out;
}

}  // namespace

std::string_view MessageKindName(MessageKind kind) { return kKindNames[static_cast<size_t>(kind)]; }
std::optional<MessageKind> ParseMessageKind(std::string_view name) {
  return ParseName<MessageKind>(kKindNames, name);
}
std::string_view ReasonName(Reason reason) { return kReasonNames[static_cast<size_t>(reason)]; }
std::optional<Reason> ParseReason(std::string_view name) {
  return ParseName<Reason>(kReasonNames, name);
}
std::string_view LeadRoleName(LeadRole role) { return kLeadRoleNames[static_cast<size_t>(role)]; }
std::optional<LeadRole> ParseLeadRole(std::string_view name) {
  return ParseName<LeadRole>(kLeadRoleNames, name);
}
config::Role AgencyRoleFor(LeadRole role) {
  return role == LeadRole::kCsc ? config::Role::kCsc : config::Role::kPolice;
}
std::string_view RefusalCodeName(RefusalCode code) {
  return kRefusalNames[static_cast<size_t>(code)];
}

std::string NewTransferId() {
  if (sodium_init() < 0) std::abort();  // no randomness: a broken invariant
  unsigned char raw[16];
  randombytes_buf(raw, sizeof raw);
  char hex[2 * sizeof raw + 1];
  sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
  return std::string("trf_") + hex;
}

bool IsTransferId(std::string_view text) {
  return text.size() == 36 && text.substr(0, 4) == "trf_" && IsLowerHex(text.substr(4));
}

std::string MessageIdFor(std::string_view transfer_id, MessageKind kind,
                         std::optional<LeadRole> role) {
  std::string id = std::string(transfer_id) + ":" + std::string(MessageKindName(kind));
  if (kind == MessageKind::kAccept && role) id += ":" + std::string(LeadRoleName(*role));
  return id;
}

json BundleToJson(const Bundle& b) {
  json out = {{"version", b.version},
              {"transfer_id", b.transfer_id},
              {"message_id", b.message_id},
              {"kind", MessageKindName(b.kind)},
              {"from_area", b.from_area},
              {"to_area", b.to_area},
              {"created_at", FormatTimeMs(b.created_ms)}};
  const std::string key(MessageKindName(b.kind));
  switch (b.kind) {
    case MessageKind::kProposal:
      out[key] = b.proposal ? ProposalToJson(*b.proposal) : json();
      break;
    case MessageKind::kAck:
      out[key] = b.ack ? json{{"acked_message_id", b.ack->acked_message_id}} : json();
      break;
    case MessageKind::kAccept:
      out[key] = b.accept ? AnswerToJson(*b.accept, b.kind) : json();
      break;
    case MessageKind::kDecline:
      out[key] = b.decline ? AnswerToJson(*b.decline, b.kind) : json();
      break;
    case MessageKind::kConferenceHeld:
      out[key] = b.conference_held ? json{{"agency", b.conference_held->agency},
                                          {"held_at", FormatTimeMs(b.conference_held->held_at_ms)}}
                                   : json();
      break;
  }
  return out;
}

Result<Bundle> BundleFromJson(const json& j, std::string_view where_prefix) {
  Reader r{std::string(where_prefix)};
  Bundle b;
  if (!j.is_object()) {
    r.Fail("", "must be an object");
    return Status::Invalid("transfer message is not an object", std::move(r.problems()));
  }
  // Which body member is allowed depends on the kind; read the kind first.
  std::optional<MessageKind> kind;
  if (auto s = r.String(j, "", "kind")) {
    kind = ParseMessageKind(*s);
    if (!kind) r.Fail("/kind", "must be proposal, ack, accept, decline or conference_held");
  }
  const std::string body_key = kind ? std::string(MessageKindName(*kind)) : "";
  if (kind) {
    r.Object(j, "",
             {"version", "transfer_id", "message_id", "kind", "from_area", "to_area", "created_at",
              body_key});
    b.kind = *kind;
  }
  if (const json* v = r.Member(j, "", "version")) {
    if (!v->is_number_integer() || v->get<int64_t>() != kBundleVersion) {
      r.Fail("/version", "must be " + std::to_string(kBundleVersion));
    }
  }
  if (auto s = r.String(j, "", "transfer_id")) {
    if (IsTransferId(*s)) {
      b.transfer_id = *s;
    } else {
      r.Fail("/transfer_id", "must be trf_ followed by 32 lower-case hex digits");
    }
  }
  auto message_id = r.String(j, "", "message_id");
  if (auto s = r.Slug(j, "", "from_area")) b.from_area = *s;
  if (auto s = r.Slug(j, "", "to_area")) b.to_area = *s;
  if (!b.from_area.empty() && b.from_area == b.to_area) {
    r.Fail("/to_area", "must differ from from_area");
  }
  if (auto t = r.Time(j, "", "created_at")) b.created_ms = *t;

  std::optional<LeadRole> accept_role;
  if (kind) {
    const std::string w = "/" + body_key;
    if (const json* body = r.Member(j, "", body_key)) {
      switch (*kind) {
        case MessageKind::kProposal:
          b.proposal = ParseProposal(r, *body, w);
          if (b.proposal) {
            for (const auto& [name, lead] : {std::pair{"csc", &b.proposal->leads.csc},
                                             std::pair{"police", &b.proposal->leads.police}}) {
              if (!b.from_area.empty() && lead->area != b.from_area) {
                r.Fail(w + "/leads/" + name + "/area",
                       "must be from_area: the sending area leads until the transfer is "
                       "accepted");
              }
            }
          }
          break;
        case MessageKind::kAck:
          if (r.Object(*body, w, {"acked_message_id"})) {
            if (auto s = r.String(*body, w, "acked_message_id")) {
              if (!b.transfer_id.empty() &&
                  *s != MessageIdFor(b.transfer_id, MessageKind::kProposal)) {
                r.Fail(w + "/acked_message_id",
                       "must be the message id of this transfer's proposal");
              }
              b.ack = AckBody{*s};
            }
          }
          break;
        case MessageKind::kAccept:
          b.accept = ParseAnswer(r, *body, w, *kind);
          if (b.accept) accept_role = b.accept->role;
          break;
        case MessageKind::kDecline:
          b.decline = ParseAnswer(r, *body, w, *kind);
          break;
        case MessageKind::kConferenceHeld:
          if (r.Object(*body, w, {"agency", "held_at"})) {
            auto agency = r.Slug(*body, w, "agency");
            auto held = r.Time(*body, w, "held_at");
            if (agency && held) b.conference_held = ConferenceBody{*agency, *held};
          }
          break;
      }
    }
  }
  if (message_id) {
    b.message_id = *message_id;
    if (kind && !b.transfer_id.empty() && (*kind != MessageKind::kAccept || accept_role) &&
        *message_id != MessageIdFor(b.transfer_id, *kind, accept_role)) {
      r.Fail("/message_id", "must be " + MessageIdFor(b.transfer_id, *kind, accept_role));
    }
  }
  if (!r.problems().empty()) {
    const size_t n = r.problems().size();
    return Status::Invalid(
        "transfer message has " + std::to_string(n) + " problem" + (n == 1 ? "" : "s"),
        std::move(r.problems()));
  }
  return b;
}

std::string SigningInput(std::string_view payload) {
  std::string out(kSignatureContext);
  out.append(payload);
  return out;
}

std::string EnvelopeBytes(std::string_view payload, std::string_view signature,
                          std::string_view signer_area) {
  return record::CanonicalJson(json{{"payload", ToBase64(payload)},
                                    {"signature", ToBase64(signature)},
                                    {"signer_area", std::string(signer_area)}});
}

Result<std::string> SealBundle(const Bundle& bundle, const GatewayKeys& own,
                               const PeerKeys& receiver) {
  if (receiver.area != bundle.to_area) {
    return Status::Internal("transfer message to " + bundle.to_area + " sealed to the keys of " +
                            receiver.area);
  }
  if (!receiver.sealing) {
    return Status::Unavailable("no sealing public key is configured for peer gateway " +
                               receiver.area +
                               ": exchange keys (safegatectl keys show) and reload");
  }
  const json payload_json = BundleToJson(bundle);
  if (Result<Bundle> check = BundleFromJson(payload_json, "/payload"); !check.ok()) {
    const auto& p = check.status().problems();
    return Status::Internal("refusing to send a malformed transfer message: " +
                            (p.empty() ? check.status().detail() : p[0].where + " " + p[0].what));
  }
  const std::string payload = record::CanonicalJson(payload_json);
  const std::string signature = own.Sign(SigningInput(payload));
  return SealTo(*receiver.sealing, EnvelopeBytes(payload, signature, bundle.from_area));
}

Status Refusal::ToStatus() const {
  switch (code) {
    case RefusalCode::kMalformed:
    case RefusalCode::kUnsupportedVersion:
    case RefusalCode::kMisaddressed:
      return Status::Invalid(detail, {{where, detail}});
    case RefusalCode::kNotSealedToUs:
      return Status::BadRequest(detail);
    case RefusalCode::kUnsigned:
    case RefusalCode::kUnknownSender:
    case RefusalCode::kSenderMismatch:
    case RefusalCode::kBadSignature:
      return Status::Forbidden(detail);
  }
  return Status::Internal(detail);
}

OpenResult OpenBundle(std::string_view sealed, const GatewayKeys& own, std::string_view own_area,
                      const PeerDirectory& peers, std::string_view tls_peer_area) {
  // 1. Unseal.
  Result<std::string> opened = own.OpenSealed(sealed);
  if (!opened.ok()) {
    return Refuse(RefusalCode::kNotSealedToUs, opened.status().detail());
  }

  // 2. The envelope.
  const json env = json::parse(*opened, nullptr, /*allow_exceptions=*/false);
  if (env.is_discarded() || !env.is_object()) {
    return Refuse(RefusalCode::kMalformed, "the sealed content is not a JSON object", "/envelope");
  }
  for (const auto& [k, v] : env.items()) {
    if (k != "payload" && k != "signature" && k != "signer_area") {
      return Refuse(RefusalCode::kMalformed, "unknown member",
                    "/envelope/" + record::JsonPointerToken(k));
    }
  }
  const auto payload_it = env.find("payload");
  if (payload_it == env.end() || !payload_it->is_string()) {
    return Refuse(RefusalCode::kMalformed, "payload must be a base64 string", "/envelope/payload");
  }
  std::optional<std::string> payload = FromBase64(payload_it->get<std::string>());
  if (!payload) {
    return Refuse(RefusalCode::kMalformed, "payload is not base64", "/envelope/payload");
  }
  const auto signer_it = env.find("signer_area");
  if (signer_it == env.end() || !signer_it->is_string() ||
      !record::IsSlug(signer_it->get<std::string>())) {
    return Refuse(RefusalCode::kMalformed, "signer_area must be an area slug",
                  "/envelope/signer_area");
  }
  const std::string signer = signer_it->get<std::string>();

  // 3. Signed at all?
  const auto sig_it = env.find("signature");
  if (sig_it == env.end() || sig_it->is_null() ||
      (sig_it->is_string() && sig_it->get<std::string>().empty())) {
    return Refuse(RefusalCode::kUnsigned, "the message carries no signature",
                  "/envelope/signature");
  }
  std::optional<std::string> signature;
  if (sig_it->is_string()) signature = FromBase64(sig_it->get<std::string>());
  if (!signature || signature->size() != kSignatureBytes) {
    return Refuse(RefusalCode::kMalformed, "signature must be base64 of 64 bytes",
                  "/envelope/signature");
  }

  // 4. The signer is the peer the TLS connection authenticated.
  if (signer != tls_peer_area) {
    return Refuse(RefusalCode::kSenderMismatch,
                  "signer_area " + signer +
                      " differs from the area of the authenticated peer "
                      "gateway (" +
                      std::string(tls_peer_area) + ")",
                  "/envelope/signer_area");
  }
  // 5. A peer we hold a signing key for.
  const PeerKeys* peer = peers.Find(signer);
  if (peer == nullptr || !peer->signing) {
    return Refuse(RefusalCode::kUnknownSender,
                  peer == nullptr
                      ? "area " + signer + " is not a configured peer gateway"
                      : "no signing public key is configured for peer gateway " + signer,
                  "/envelope/signer_area");
  }
  // 6. The signature.
  if (!VerifySignature(*peer->signing, SigningInput(*payload), *signature)) {
    return Refuse(RefusalCode::kBadSignature,
                  "the signature does not verify with the signing key configured for peer "
                  "gateway " +
                      signer,
                  "/envelope/signature");
  }

  // 7. The version, before the strict parse: a later version may have other members.
  const json pj = json::parse(*payload, nullptr, /*allow_exceptions=*/false);
  if (pj.is_discarded() || !pj.is_object()) {
    return Refuse(RefusalCode::kMalformed, "the payload is not a JSON object", "/payload");
  }
  const auto version = pj.find("version");
  if (version == pj.end() || !version->is_number_integer()) {
    return Refuse(RefusalCode::kMalformed, "version must be an integer", "/payload/version");
  }
  if (version->get<int64_t>() != kBundleVersion) {
    return Refuse(RefusalCode::kUnsupportedVersion,
                  "payload version " + version->dump() +
                      " is not supported (this gateway "
                      "speaks version " +
                      std::to_string(kBundleVersion) + ")",
                  "/payload/version");
  }

  // 8. The strict parse.
  Result<Bundle> bundle = BundleFromJson(pj, "/payload");
  if (!bundle.ok()) {
    const auto& p = bundle.status().problems();
    if (p.empty()) return Refuse(RefusalCode::kMalformed, bundle.status().detail(), "/payload");
    std::string what = p[0].what;
    if (p.size() > 1) what += " (and " + std::to_string(p.size() - 1) + " more problems)";
    return Refuse(RefusalCode::kMalformed, what, p[0].where);
  }

  // 9, 10. Who it claims to be from, and to.
  if (bundle->from_area != signer) {
    return Refuse(RefusalCode::kSenderMismatch,
                  "from_area " + bundle->from_area + " differs from signer_area " + signer,
                  "/payload/from_area");
  }
  if (bundle->to_area != own_area) {
    return Refuse(RefusalCode::kMisaddressed,
                  "the message is addressed to " + bundle->to_area + ", this gateway is " +
                      std::string(own_area),
                  "/payload/to_area");
  }
  return OpenedBundle{std::move(bundle).value(), std::move(*payload), std::move(*signature)};
}

}  // namespace safegate::transfer
