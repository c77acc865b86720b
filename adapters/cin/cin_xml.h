// cin-xml: the Department for Education's children-in-need census XML (Message / Header /
// Children / Child, with ChildIdentifiers, CINdetails, Assessments, CINPlanDates, Section47,
// ChildProtectionPlans and Reviews; GenderCurrent before 2026, Sex after). Each child's
// referrals, assessments, section 47 enquiries and plans become canonical records about the
// child, known by the local authority's child id.
//
// Real returns carry stray text, codes outside the census lists and gaps; which of those
// reject the file and which travel as warnings is set out in docs/adapters/cin-xml.md.
//
// Thread-safety: immutable; Parse() may run on many threads.
#pragma once

#include "adapters/adapter.h"

namespace safegate::adapters {

class CinXmlAdapter final : public Adapter {
 public:
  std::string_view Name() const override { return "cin-xml"; }
  std::string_view MediaType() const override { return "application/xml"; }
  Result<ParsedBatch> Parse(std::string_view input, const IngestContext& context) const override;
};

}  // namespace safegate::adapters
