// niche-xml: police exports from Niche RMS in safegate's own XML schema (no public Niche export
// schema exists; docs/adapters/niche.md defines this one). Nominals, occurrences with their
// enquiry log, warning markers and graded intelligence reports become canonical records.
//
// Thread-safety: immutable; Parse() may run on many threads.
#pragma once

#include "adapters/adapter.h"

namespace safegate::adapters {

class NicheXmlAdapter final : public Adapter {
 public:
  std::string_view Name() const override { return "niche-xml"; }
  std::string_view MediaType() const override { return "application/xml"; }
  Result<ParsedBatch> Parse(std::string_view input, const IngestContext& context) const override;
};

}  // namespace safegate::adapters
