// The FHIR vocabulary safegate reads and writes for safeguarding flags: which Flag.code
// codings mean which canonical flag type, and the few extensions and identifier systems of
// our own. docs/adapters/fhir-flag.md lists them and says which codes are SNOMED CT and which
// are local to safegate.
//
// Thread-safety: constant data.
#pragma once

#include <span>
#include <string_view>

namespace safegate::adapters::fhir {

inline constexpr std::string_view kSnomed = "http://snomed.info/sct";
// Codes for which SNOMED CT has no concept yet. The .invalid domain marks it as ours: it will
// never resolve, and it cannot be mistaken for an NHS or HL7 system.
inline constexpr std::string_view kLocalFlagSystem =
    "https://safegate.invalid/fhir/CodeSystem/safeguarding-flag";
inline constexpr std::string_view kNhsNumberSystem = "https://fhir.nhs.uk/Id/nhs-number";
inline constexpr std::string_view kUkCoreFlagProfile =
    "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Flag";
inline constexpr std::string_view kFlagCategorySystem =
    "http://terminology.hl7.org/CodeSystem/flag-category";
inline constexpr std::string_view kAgencySystem = "https://safegate.invalid/fhir/Id/agency";
inline constexpr std::string_view kRecordIdSystemPrefix =
    "https://safegate.invalid/fhir/Id/record/";
inline constexpr std::string_view kLocalIdSystemPrefix = "https://safegate.invalid/fhir/Id/";

// Extensions (all on Flag).
inline constexpr std::string_view kExtRiskLevel =
    "https://safegate.invalid/fhir/StructureDefinition/risk-level";  // valueCode low|medium|high
inline constexpr std::string_view kExtReviewDate =
    "https://safegate.invalid/fhir/StructureDefinition/review-date";  // valueDate
inline constexpr std::string_view kExtNote =
    "https://safegate.invalid/fhir/StructureDefinition/note";  // valueString
inline constexpr std::string_view kExtContact =
    "https://safegate.invalid/fhir/StructureDefinition/contact";  // office-hours, out-of-hours

struct FlagCode {
  std::string_view flag_type;  // canonical body.type
  std::string_view system;
  std::string_view code;
  std::string_view display;
};

// One row per canonical flag type; the code rendered for it. Parsing accepts exactly these.
std::span<const FlagCode> FlagCodes();
const FlagCode* FindFlagCode(std::string_view system, std::string_view code);
const FlagCode* FlagCodeForType(std::string_view flag_type);

}  // namespace safegate::adapters::fhir
