// cpis-csv: child protection plans and looked-after episodes as rows shaped like the uploads
// local authorities make to NHS CP-IS (Child Protection - Information Sharing). Each row becomes
// one flag record (cp_plan, unborn_cp_plan or looked_after) about the child (for an unborn
// child, the mother's NHS number, as CP-IS holds it). docs/adapters/cpis-csv.md describes the
// columns, the mapping and which problems reject the file.
//
// Thread-safety: immutable; Parse() may run on many threads.
#pragma once

#include "adapters/adapter.h"

namespace safegate::adapters {

class CpisCsvAdapter final : public Adapter {
 public:
  std::string_view Name() const override { return "cpis-csv"; }
  std::string_view MediaType() const override { return "text/csv"; }
  Result<ParsedBatch> Parse(std::string_view input, const IngestContext& context) const override;
};

}  // namespace safegate::adapters
