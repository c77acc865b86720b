#include "policy/consent.h"

#include <algorithm>
#include <optional>

namespace safegate::policy {
namespace {

int Restrictiveness(ConsentState s) {
  switch (s) {
    case ConsentState::kNone:
      return 0;
    case ConsentState::kGiven:
      return 1;
    case ConsentState::kWithdrawn:
      return 2;
    case ConsentState::kRefused:
      return 3;
  }
  return 3;
}

template <typename SubjectMatches>
ConsentState Latest(std::span<const ConsentStatement> statements, Purpose purpose,
                    SubjectMatches matches) {
  const ConsentStatement* best = nullptr;
  for (const ConsentStatement& s : statements) {
    if (s.purpose != purpose || s.status == ConsentState::kNone || !matches(s.subject)) continue;
    if (best == nullptr || s.recorded_at > best->recorded_at ||
        (s.recorded_at == best->recorded_at &&
         Restrictiveness(s.status) > Restrictiveness(best->status))) {
      best = &s;
    }
  }
  return best == nullptr ? ConsentState::kNone : best->status;
}

}  // namespace

ConsentState LatestConsent(std::span<const ConsentStatement> statements, std::string_view subject,
                           Purpose purpose) {
  return Latest(statements, purpose, [&](const std::string& s) { return s == subject; });
}

ConsentState LatestConsent(std::span<const ConsentStatement> statements,
                           std::span<const std::string> subject_refs, Purpose purpose) {
  return Latest(statements, purpose, [&](const std::string& s) {
    return std::find(subject_refs.begin(), subject_refs.end(), s) != subject_refs.end();
  });
}

}  // namespace safegate::policy
