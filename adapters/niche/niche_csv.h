// niche-csv: the same Niche export as niche-xml, as one CSV row per record with the nominal's
// details repeated on each row (safegate's own layout; docs/adapters/niche.md).
//
// Thread-safety: immutable; Parse() may run on many threads.
#pragma once

#include "adapters/adapter.h"

namespace safegate::adapters {

class NicheCsvAdapter final : public Adapter {
 public:
  std::string_view Name() const override { return "niche-csv"; }
  std::string_view MediaType() const override { return "text/csv"; }
  Result<ParsedBatch> Parse(std::string_view input, const IngestContext& context) const override;
};

}  // namespace safegate::adapters
