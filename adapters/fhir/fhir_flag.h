// fhir-flag: FHIR R4 Flag resources, alone or in a Bundle, shaped as the UK Core Flag profile
// shapes them (status, subject by NHS number, period, author, category, code). Each Flag whose
// code safegate maps becomes one canonical flag record (docs/adapters/fhir-flag.md).
//
// RenderFhirFlagBundle goes the other way, for health recipients that ask for
// application/fhir+json.
//
// Thread-safety: immutable; Parse() and RenderFhirFlagBundle() may run on many threads.
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/adapter.h"

namespace safegate::adapters {

class FhirFlagAdapter final : public Adapter {
 public:
  std::string_view Name() const override { return "fhir-flag"; }
  std::string_view MediaType() const override { return "application/fhir+json"; }
  Result<ParsedBatch> Parse(std::string_view input, const IngestContext& context) const override;
};

// A FHIR R4 Bundle (type "searchset") holding one UK Core Flag per flag record, in order.
// Records of other kinds are left out (they have no Flag form). A subject without an NHS
// number is identified by its first local id, under a safegate identifier system.
nlohmann::json RenderFhirFlagBundle(const std::vector<record::Record>& records);

}  // namespace safegate::adapters
