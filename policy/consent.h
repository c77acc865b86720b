// Consent per subject and purpose (R3): the logic of the consent registry, as a pure
// function over the statements recorded so far. Storing statements is the store's job; the
// gateway reads a subject's statements and asks LatestConsent for the state to put in a
// DecisionInput.
//
// Rules: a statement applies to one subject reference and one purpose; the statement
// recorded latest wins (a withdrawal after a consent ends it; a new consent after a
// withdrawal restores it). Two statements for the same subject and purpose recorded at the
// same instant resolve to the more restrictive one (refused or withdrawn over given), so
// that an ambiguity never widens sharing. With no statement the state is kNone.
//
// Thread-safety: pure functions over plain values.
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <string_view>

#include "policy/policy.h"

namespace safegate::policy {

struct ConsentStatement {
  std::string subject;  // a subject reference, e.g. "nhs:9434765919" or "csc:bradford:BRA-1"
  Purpose purpose = Purpose::kSafeguarding;
  ConsentState status = ConsentState::kGiven;  // kGiven, kRefused or kWithdrawn (kNone is ignored)
  std::chrono::system_clock::time_point recorded_at{};
};

// The latest state for `subject` and `purpose`.
ConsentState LatestConsent(std::span<const ConsentStatement> statements, std::string_view subject,
                           Purpose purpose);

// The same over every reference a subject carries (its NHS number and its local ids): a
// statement recorded under any of them counts, since they name one person.
ConsentState LatestConsent(std::span<const ConsentStatement> statements,
                           std::span<const std::string> subject_refs, Purpose purpose);

}  // namespace safegate::policy
