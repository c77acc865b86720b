// The out-of-area transfer state machine, as pure functions: a transition takes the stored
// Transfer and an event, and returns the next Transfer with every effect the store must apply
// in the same transaction (mailbox notices, audit events, messages for the peer gateway).
// Nothing here does I/O, reads a clock or draws randomness: "now" and ids come in.
//
// docs/transfers.md describes the states, the leads rule, deadlines and escalation.
//
//   proposed --(receiving gateway stores it)--> delivered --(csc_lead and police_lead have
//   both accepted, in any order)--> accepted
//   proposed/delivered --(either receiving lead declines, with a reason)--> declined
//
// Each gateway holds its own copy of a transfer (Transfer::local_area says which side). The
// sending gateway makes it with Propose; the receiving gateway with ApplyMessage(proposal).
// Receiving leads act at the receiving gateway (Accept, Decline, RecordConference), whose
// outbound messages the sending gateway applies with ApplyMessage, so both copies agree on
// state, leads, deadlines and history (escalations apart: each gateway escalates to its own
// area, see DueEscalations).
//
// Leads: until both receiving leads have accepted, the sending area's CSC and police agencies
// are the leads; at full acceptance both leads pass to the receiving area's accepting
// agencies at once. A lead is never empty (CheckInvariants).
//
// Notices: every notice a transition returns is for an agency of this gateway's own area (a
// gateway can reach only its own mailboxes); Notice names the area and role, and the store
// resolves the agency with Registry::FindByRole.
//
// Errors: kForbidden (wrong role or area for the action), kConflict (the state does not allow
// it: accepting twice, accepting after a decline, ...), kInvalidInput (a bad argument, with
// a problem naming it). The store applies nothing when a transition fails.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "daemon/transfer/bundle.h"
#include "daemon/transfer/working_days.h"
#include "record/status.h"

namespace safegate::transfer {

enum class State : uint8_t { kProposed, kDelivered, kAccepted, kDeclined };
std::string_view StateName(State state);  // "proposed", "delivered", "accepted", "declined"
std::optional<State> ParseState(std::string_view name);

// Who acts: from the caller's certificate and the registry, never from a body.
struct Actor {
  std::string agency;
  config::Role role = config::Role::kCsc;
  std::string area;
};

struct Acceptance {
  std::string agency;  // the receiving-area agency that accepted
  std::string by;      // who accepted ("accepted_by")
  int64_t at_ms = 0;
  bool operator==(const Acceptance&) const = default;
};

struct Declination {
  LeadRole role = LeadRole::kCsc;
  std::string agency;
  std::string by;
  std::string reason;
  int64_t at_ms = 0;
  bool operator==(const Declination&) const = default;
};

inline constexpr std::string_view kAcceptanceDeadline = "acceptance";
inline constexpr std::string_view kConferenceDeadline = "transfer_in_conference";

struct Deadline {
  std::string name;  // kAcceptanceDeadline or kConferenceDeadline
  int64_t due_ms = 0;
  std::optional<int64_t> met_ms;  // when it was met (possibly after due_ms)
  // transfer_escalated notices sent for it by this gateway: escalation k is due at
  // due_ms + (k - 1) * interval; after a pause only the latest is sent.
  int escalations = 0;
  std::optional<int64_t> last_escalated_ms;
  bool operator==(const Deadline&) const = default;
};

enum class DeadlineStatus : uint8_t { kPending, kMet, kMetLate, kOverdue, kClosed };
// "pending", "met", "met_late", "overdue", "closed" (the transfer was declined)
std::string_view DeadlineStatusName(DeadlineStatus status);
DeadlineStatus StatusOf(const Deadline& deadline, State state, int64_t now_ms);

struct HistoryEntry {
  int64_t at_ms = 0;
  // proposed, delivered, accepted (one lead role), leads_changed, declined, conference_held,
  // escalated
  std::string event;
  std::string area;    // where it happened
  std::string agency;  // the agency that acted; empty for the gateways' own events
  std::string role;    // "csc_lead" / "police_lead" where one applies
  std::string detail;  // a decline's reason, an escalated deadline's name, ...
  bool operator==(const HistoryEntry&) const = default;
};

struct Transfer {
  std::string transfer_id;
  std::string subject;  // subject reference
  std::string from_area;
  std::string to_area;
  std::string local_area;  // the gateway holding this copy: from_area or to_area
  Reason reason = Reason::kMoved;
  std::string note;
  State state = State::kProposed;
  int64_t created_ms = 0;
  Leads leads;
  std::optional<Acceptance> csc_acceptance;
  std::optional<Acceptance> police_acceptance;
  std::optional<Declination> declination;
  std::vector<Deadline> deadlines;
  std::vector<HistoryEntry> history;
  // Ids of the gateway messages this copy has sent or applied: a message applied twice is a
  // no-op (the store's idempotency is the first line; this is the second).
  std::vector<std::string> applied_messages;

  bool IsSending() const { return local_area == from_area; }
  const std::string& PeerArea() const { return IsSending() ? to_area : from_area; }
  const Deadline* FindDeadline(std::string_view name) const;
  bool operator==(const Transfer&) const = default;
};

// A notice for one mailbox of this gateway's area.
struct Notice {
  // transfer_delivered, transfer_missing (urgent), transfer_accepted, transfer_declined,
  // transfer_escalated
  std::string kind;
  std::string area;                        // always the local area
  config::Role role = config::Role::kCsc;  // the recipient: the agency of this role in `area`
  std::string purpose = "case_transfer";   // missing_child for the urgent notice
  bool urgent = false;
  // The mailbox notice object, {"kind": ..., "transfer_id": ..., ...}; transfer_delivered
  // carries this role's records, transfer_missing this role's active flags.
  nlohmann::json body;
};

// An audit entry to append (core::AuditEntry's content fields, same names).
struct AuditEvent {
  // transfer_proposed, transfer_delivered, transfer_accepted, transfer_declined,
  // transfer_escalated, transfer_conference_held
  std::string action;
  std::string actor;       // agency id; "gateway:<area>" for a peer gateway; "safegate" for ours
  std::string subject;     // subject reference (sealed by the audit log)
  std::string text;        // free text about the subject (note, decline reason); sealed
  std::string message_id;  // the gateway message sent or applied, if any
  std::string purpose = "case_transfer";
  std::string decision;  // "" or the answer ("accept", "decline")
  std::vector<std::string> reasons;
  nlohmann::json detail = nlohmann::json::object();  // ids, areas, state: no personal data
};

struct Transition {
  Transfer transfer;              // the state after; store it
  std::vector<Notice> notices;    // deliver to mailboxes
  std::vector<AuditEvent> audit;  // append
  std::vector<Bundle> outbound;   // seal (SealBundle) into the outbox, in this order
  bool duplicate = false;         // ApplyMessage: already applied; nothing to do
};

// POST /v1/transfers, after the store has resolved the records and run the policy.
struct ProposeRequest {
  std::string transfer_id;  // NewTransferId()
  std::string subject;      // subject reference
  std::string to_area;      // a configured peer's area
  Reason reason = Reason::kMoved;
  std::string note;
  // The sending area's police agency (Registry::FindByRole(area, police)): police lead until
  // the transfer is accepted. The proposing CSC agency is the CSC lead.
  std::string police_agency;
  std::vector<TransferRecord> records;  // as policy permits for case_transfer, per receiving role
  PolicySummary policy;
};

// Sending gateway. `actor` must be a csc agency of the local area. Deadlines are fixed here,
// from now_ms, with `calendar` and `settings`, and travel in the proposal.
// Effects: transfer_proposed; the proposal message.
Result<Transition> Propose(const Actor& actor, const ProposeRequest& request, int64_t now_ms,
                           const WorkingCalendar& calendar, const DeadlineSettings& settings);

// Receiving gateway: one receiving lead accepts (actor: the receiving area's agency of the
// role's kind). When the other role has already accepted, the transfer becomes accepted and
// both leads pass to the accepting agencies.
// Effects: transfer_accepted; the accept message; on full acceptance transfer_accepted
// notices to the local CSC and police.
Result<Transition> Accept(const Transfer& transfer, const Actor& actor, LeadRole role,
                          const std::string& accepted_by, int64_t now_ms);

// Receiving gateway: a receiving lead declines, with a reason. The sending area stays lead.
// Effects: transfer_declined; the decline message; transfer_declined notices (local).
Result<Transition> Decline(const Transfer& transfer, const Actor& actor, LeadRole role,
                           const std::string& reason, int64_t now_ms);

// Receiving gateway: the receiving CSC records that the transfer-in child protection
// conference was held (meets that deadline). Effects: transfer_conference_held; the
// conference_held message.
Result<Transition> RecordConference(const Transfer& transfer, const Actor& actor,
                                    int64_t held_at_ms, int64_t now_ms);

// Either gateway: a message from the peer gateway, already opened and verified by
// OpenBundle. `existing` is this gateway's copy of message.transfer_id, or null if it has
// none (then the message must be a proposal).
//   proposal (receiving side): the copy is made in state delivered. Effects:
//     transfer_delivered; transfer_delivered notices to the local CSC and police, each with
//     its records; for reason missing, also an urgent transfer_missing notice to each with its
//     active flags, at once; the ack message.
//   ack, accept, decline, conference_held (sending side): mirror what the receiving gateway
//     did, at the times it did it. Effects: the audit event; transfer_accepted (on full
//     acceptance) or transfer_declined notices to the local CSC and police.
// A message already applied returns the copy unchanged with duplicate = true.
Result<Transition> ApplyMessage(const Transfer* existing, const Bundle& message,
                                std::string_view local_area, int64_t now_ms);

// Escalation: every unmet deadline whose time has come gets one transfer_escalated notice to
// this gateway's area's CSC and police (and an audit event), at due_ms and again at each
// further `interval_ms` (a gateway that was down sends one, not a backlog). The peer gateway
// does the same for its area from the same due times, so both areas' CSC and police are told.
// Nothing is due for a declined transfer. The returned transfer records what was sent; an
// empty Transition (no notices) means nothing is due. REQUIRES: interval_ms > 0.
Transition DueEscalations(const Transfer& transfer, int64_t now_ms, int64_t interval_ms);
// When DueEscalations will next have something to send (for the store's sweep), or nullopt.
std::optional<int64_t> NextEscalationAt(const Transfer& transfer, int64_t interval_ms);

// The rules every stored copy satisfies: both leads name an area, an agency and a time; the
// leads are the sending area's unless the state is accepted; acceptances, declination and
// state agree; local_area is one of the two areas. kInternal naming the broken rule.
Status CheckInvariants(const Transfer& transfer);

// GET /v1/transfers/{id}: both areas' csc and police agencies.
bool CanView(const Transfer& transfer, const Actor& actor);

// The API view (API.md GET /v1/transfers/{id}): transfer_id, subject, from_area, to_area,
// reason, state, leads {csc, police: {area, agency, since}}, deadlines [{name, due, status,
// met_at?, escalations}], history [{at, event, area, agency?, role?, detail?}], plus note,
// created_at, acceptances {csc_lead, police_lead} and declined (when declined).
nlohmann::json RenderTransfer(const Transfer& transfer, int64_t now_ms);

// The whole copy as JSON for the store, and back (kInternal naming the member at fault).
nlohmann::json TransferToStoredJson(const Transfer& transfer);
Result<Transfer> TransferFromStoredJson(const nlohmann::json& json);

}  // namespace safegate::transfer
