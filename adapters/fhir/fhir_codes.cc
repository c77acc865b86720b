#include "adapters/fhir/fhir_codes.h"

#include <array>

namespace safegate::adapters::fhir {
namespace {

// SNOMED CT concepts from the UK edition: the first three are NHS England's
// England-ChildProtectionPlan value set (the codes CP-IS plan types map to), CSE risk and
// safeguarding concern are the concepts GP systems record for them.
constexpr std::array<FlagCode, 8> kCodes = {{
    {"cp_plan", kSnomed, "342191000000101", "Subject to child protection plan"},
    {"unborn_cp_plan", kSnomed, "818901000000100", "Unborn child subject to child protection plan"},
    {"looked_after", kSnomed, "764841000000100", "Looked after child"},
    {"cse_risk", kSnomed, "716565009", "At increased risk of child sexual exploitation"},
    {"concern", kSnomed, "836881000000105", "Child is cause for safeguarding concern"},
    {"cce_risk", kLocalFlagSystem, "cce-risk", "At risk of child criminal exploitation"},
    {"missing", kLocalFlagSystem, "missing", "Missing from home or care"},
    {"marac", kLocalFlagSystem, "marac",
     "Subject of a multi-agency risk assessment conference (MARAC)"},
}};

}  // namespace

std::span<const FlagCode> FlagCodes() { return kCodes; }

const FlagCode* FindFlagCode(std::string_view system, std::string_view code) {
  for (const FlagCode& c : kCodes) {
    if (c.system == system && c.code == code) return &c;
  }
  return nullptr;
}

const FlagCode* FlagCodeForType(std::string_view flag_type) {
  for (const FlagCode& c : kCodes) {
    if (c.flag_type == flag_type) return &c;
  }
  return nullptr;
}

}  // namespace safegate::adapters::fhir
