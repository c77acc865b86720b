// Transfer messages between gateways ("bundles"): what one area's gateway tells another about
// an out-of-area transfer, signed by the sender and sealed to the receiver.
//
// docs/transfers.md is the normative description (members, byte layouts, refusals); this
// header and bundle.cc implement exactly that. In short:
//
//   P = record::CanonicalJson(BundleToJson(bundle))                     the payload
//   M = "safegate-transfer-v1" 0x00 || P                                what is signed
//   sig = Ed25519 detached signature of M by the sender's transfer signing key (64 bytes)
//   E = CanonicalJson({"payload": base64(P), "signature": base64(sig), "signer_area": area})
//   S = crypto_box_seal(E, receiver's X25519 sealing public key)        what travels
//
// Message kinds (gateway to gateway; each kind's body is the payload member named after it):
//   proposal        sending -> receiving  the transfer: subject, reason, note, the sending
//                                         area's leads, deadlines, records as policy permits
//                                         for case_transfer, and the policy summary
//   ack             receiving -> sending  the receiving gateway has stored the proposal
//                                         (the transfer is "delivered" on both sides)
//   accept          receiving -> sending  one receiving lead (csc_lead or police_lead) accepted
//   decline         receiving -> sending  a receiving lead declined, with a reason
//   conference_held receiving -> sending  the transfer-in child protection conference was held
//
// Message ids are deterministic per transfer (MessageIdFor): a transition re-run after a crash
// produces the same id, so the receiver's idempotency on (transfer_id, message_id) also
// absorbs it.
//
// Thread-safety: plain values and pure functions (OpenBundle and SealBundle only read the
// keys they are given).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "daemon/transfer/gateway_keys.h"
#include "record/status.h"

namespace safegate::transfer {

inline constexpr int kBundleVersion = 1;
// The domain separator in front of the signed payload: 20 ASCII bytes and a NUL. A transfer
// signature can never be mistaken for a signature over anything else (the audit log signs
// tree heads under "safegate-sth-v1\n" with its own key).
inline constexpr std::string_view kSignatureContext{"safegate-transfer-v1\0", 21};

enum class MessageKind : uint8_t { kProposal, kAck, kAccept, kDecline, kConferenceHeld };
// "proposal", "ack", "accept", "decline", "conference_held"
std::string_view MessageKindName(MessageKind kind);
std::optional<MessageKind> ParseMessageKind(std::string_view name);

enum class Reason : uint8_t { kMoved, kPlacement, kMissing };
std::string_view ReasonName(Reason reason);  // "moved", "placement", "missing"
std::optional<Reason> ParseReason(std::string_view name);

// The two leads a transfer names at every moment.
enum class LeadRole : uint8_t { kCsc, kPolice };
std::string_view LeadRoleName(LeadRole role);  // "csc_lead", "police_lead"
std::optional<LeadRole> ParseLeadRole(std::string_view name);
// The agency role that may hold a lead role: csc_lead -> csc, police_lead -> police.
config::Role AgencyRoleFor(LeadRole role);

struct Lead {
  std::string area;    // slug
  std::string agency;  // registry id of the agency holding the lead
  int64_t since_ms = 0;
  bool operator==(const Lead&) const = default;
};
struct Leads {
  Lead csc;
  Lead police;
  bool operator==(const Leads&) const = default;
};

// A deadline as the proposal fixes it (both gateways use these due times, so they agree
// whatever their own holiday lists).
struct DeadlineDue {
  std::string name;  // "acceptance" | "transfer_in_conference"
  int64_t due_ms = 0;
  bool operator==(const DeadlineDue&) const = default;
};

// How the sending gateway's policy decided one record for purpose case_transfer.
struct RecordDecision {
  std::string effect;                 // "permit" | "redact" (denied records do not travel)
  std::string lawful_basis;           // non-empty
  std::string governing_rule;         // may be empty
  std::vector<std::string> withheld;  // JSON pointers left out (redact), never their values
  bool operator==(const RecordDecision&) const = default;
};

// One record as it travels: the copy for the receiving area's `recipient` (csc or police),
// as policy::Redact made it for that role.
struct TransferRecord {
  config::Role recipient = config::Role::kCsc;  // kCsc or kPolice
  nlohmann::json record;                        // a canonical record object (possibly redacted)
  RecordDecision decision;
  bool operator==(const TransferRecord&) const = default;
};

// The policy decision summary for the whole bundle.
struct PolicySummary {
  std::string purpose = "case_transfer";
  std::string policy_version;  // hex SHA-256 of the policy file; may be empty (no policy)
  int permitted = 0;           // record copies sent whole
  int redacted = 0;            // record copies sent redacted
  int denied = 0;              // record copies policy withheld (not in the bundle)
  bool operator==(const PolicySummary&) const = default;
};

struct ProposalBody {
  std::string subject;  // subject reference ("nhs:...", "csc:<area>:<id>", "police:<force>:<id>")
  Reason reason = Reason::kMoved;
  std::string note;  // free text, may be empty
  Leads leads;       // the sending area's CSC and police agencies
  std::vector<DeadlineDue> deadlines;
  std::vector<TransferRecord> records;
  PolicySummary policy;
  bool operator==(const ProposalBody&) const = default;
};

struct AckBody {
  std::string acked_message_id;  // the proposal's message id
  bool operator==(const AckBody&) const = default;
};

// accept and decline.
struct AnswerBody {
  LeadRole role = LeadRole::kCsc;
  std::string agency;  // the receiving-area agency that answered (from its certificate)
  std::string by;      // accept: who accepted (free text, "accepted_by"); decline: may be empty
  std::string reason;  // decline: why (non-empty); accept: empty
  bool operator==(const AnswerBody&) const = default;
};

struct ConferenceBody {
  std::string agency;  // the receiving area's CSC agency that recorded it
  int64_t held_at_ms = 0;
  bool operator==(const ConferenceBody&) const = default;
};

// One gateway-to-gateway message. Exactly the body member of `kind` is set.
struct Bundle {
  int version = kBundleVersion;
  std::string transfer_id;  // "trf_" + 32 lower-case hex
  std::string message_id;   // MessageIdFor(...)
  MessageKind kind = MessageKind::kProposal;
  std::string from_area;   // the sending gateway of this message (its signer)
  std::string to_area;     // the gateway it is addressed to
  int64_t created_ms = 0;  // when the event it reports happened, on the sender's clock
  std::optional<ProposalBody> proposal;
  std::optional<AckBody> ack;
  std::optional<AnswerBody> accept;
  std::optional<AnswerBody> decline;
  std::optional<ConferenceBody> conference_held;
  bool operator==(const Bundle&) const = default;
};

// A fresh transfer id: "trf_" + 32 lower-case hex (128 random bits, no personal data).
std::string NewTransferId();
bool IsTransferId(std::string_view text);
// "<transfer_id>:<kind>" and, for accept, ":<role>" (each role accepts once; a transfer is
// declined once, acked once, and its conference recorded once).
std::string MessageIdFor(std::string_view transfer_id, MessageKind kind,
                         std::optional<LeadRole> role = std::nullopt);

// The payload object (docs/transfers.md, "Payload").
nlohmann::json BundleToJson(const Bundle& bundle);
// Strict: every problem is reported with a JSON pointer under `where_prefix`; unknown members
// are problems. kInvalidInput with problems.
Result<Bundle> BundleFromJson(const nlohmann::json& json, std::string_view where_prefix = "");

// Building blocks of SealBundle, public for tests and for docs/transfers.md's worked example.
// kSignatureContext || payload.
std::string SigningInput(std::string_view payload);
// E: the canonical envelope {"payload","signature","signer_area"} with base64 byte strings.
std::string EnvelopeBytes(std::string_view payload, std::string_view signature,
                          std::string_view signer_area);

// Serialises, signs with `own` and seals to `receiver`. REQUIRES (else kInternal):
// bundle.to_area == receiver.area, the receiver has a sealing key, and the bundle is valid
// (BundleFromJson(BundleToJson(bundle)) succeeds: the sender never sends what the receiver
// would refuse as malformed).
Result<std::string> SealBundle(const Bundle& bundle, const GatewayKeys& own,
                               const PeerKeys& receiver);

// Why a received message was refused. Each refusal has its own code (its name is the first
// word of the Status detail), and none carries personal data in its text (R7).
enum class RefusalCode : uint8_t {
  kNotSealedToUs,       // does not open with our sealing key: another key, or altered
  kMalformed,           // not the documented shape; `where` is the JSON pointer
  kUnsigned,            // no signature
  kUnknownSender,       // signer_area is not a peer with a signing key
  kSenderMismatch,      // signer_area / from_area differ from the TLS-authenticated peer area
  kBadSignature,        // the signature does not verify with the peer's signing key
  kMisaddressed,        // to_area is not this gateway's area
  kUnsupportedVersion,  // a payload version this gateway does not speak
};
// "not_sealed_to_us", "malformed", "unsigned", "unknown_sender", "sender_mismatch",
// "bad_signature", "misaddressed", "unsupported_version"
std::string_view RefusalCodeName(RefusalCode code);

struct Refusal {
  RefusalCode code = RefusalCode::kMalformed;
  std::string detail;  // for a person; begins with RefusalCodeName(code) + ": "
  std::string where;   // JSON pointer ("/envelope/signature", "/payload/proposal/leads"), or ""
  // The API error: malformed and unsupported_version -> kInvalidInput with one problem;
  // misaddressed -> kInvalidInput (problem at /payload/to_area); not_sealed_to_us ->
  // kBadRequest; unsigned, unknown_sender, sender_mismatch, bad_signature -> kForbidden.
  Status ToStatus() const;
};

// A message that opened and verified, with the exact signed bytes as evidence (the store may
// keep them, and hashes `payload` to tell a replay of the same message from a different
// message reusing its id).
struct OpenedBundle {
  Bundle bundle;
  std::string payload;    // P, exactly as signed
  std::string signature;  // 64 raw bytes
};

class [[nodiscard]] OpenResult {
 public:
  OpenResult(OpenedBundle opened) : opened_(std::move(opened)) {}  // NOLINT: implicit
  OpenResult(Refusal refusal) : refusal_(std::move(refusal)) {}    // NOLINT: implicit
  bool ok() const { return opened_.has_value(); }
  const OpenedBundle& value() const& { return opened_.value(); }
  OpenedBundle&& value() && { return std::move(opened_).value(); }
  // REQUIRES: !ok().
  const Refusal& refusal() const { return refusal_.value(); }
  Status status() const { return ok() ? Status::Ok() : refusal().ToStatus(); }

 private:
  std::optional<OpenedBundle> opened_;
  std::optional<Refusal> refusal_;
};

// Opens a message received from a peer gateway, in this order, refusing at the first fault:
//   1. unseal with `own`                              -> not_sealed_to_us
//   2. parse the envelope                             -> malformed (/envelope/...)
//   3. a signature is present                         -> unsigned
//   4. signer_area == tls_peer_area (the area of the peer whose certificate authenticated
//      the connection, from the registry)             -> sender_mismatch
//   5. signer_area is a peer with a signing key       -> unknown_sender
//   6. the signature verifies over SigningInput(P)    -> bad_signature
//   7. P is JSON with version == kBundleVersion        -> malformed / unsupported_version
//   8. P parses strictly (BundleFromJson)             -> malformed (/payload/...)
//   9. from_area == signer_area                       -> sender_mismatch
//  10. to_area == own_area                            -> misaddressed
// Nothing is stored by this function; replay detection is the store's (by transfer_id and
// message_id, which the result exposes).
OpenResult OpenBundle(std::string_view sealed, const GatewayKeys& own, std::string_view own_area,
                      const PeerDirectory& peers, std::string_view tls_peer_area);

}  // namespace safegate::transfer
