#include "adapters/registry.h"

#include <array>

#include "adapters/cin/cin_xml.h"
#include "adapters/cpis/cpis_csv.h"
#include "adapters/fhir/fhir_flag.h"
#include "adapters/niche/niche_csv.h"
#include "adapters/niche/niche_xml.h"

namespace safegate::adapters {
namespace {

// The table. Adapters are stateless, so one constant instance of each serves every caller.
const NicheXmlAdapter kNicheXml;
const NicheCsvAdapter kNicheCsv;
const FhirFlagAdapter kFhirFlag;
const CpisCsvAdapter kCpisCsv;
const CinXmlAdapter kCinXml;

constexpr std::array<const Adapter*, 5> kAdapters = {
    &kNicheXml, &kNicheCsv, &kFhirFlag, &kCpisCsv, &kCinXml,
};

}  // namespace

const Adapter* FindAdapter(std::string_view name) {
  for (const Adapter* a : kAdapters) {
    if (a->Name() == name) return a;
  }
  return nullptr;
}

std::span<const Adapter* const> AllAdapters() { return kAdapters; }

}  // namespace safegate::adapters
