// Adapter: turns one native export (a Niche XML file, a FHIR Bundle, a CIN census file...)
// into canonical records, all or nothing.
//
// Each format is one class in its own folder, listed once in adapters/registry.cc. An adapter
// holds no state: Parse() is a pure function of its input and the context, so the same export
// parsed twice gives equal records (that is what makes re-ingesting idempotent).
//
// Errors: Parse() returns Status::Invalid when anything in the input is wrong, listing every
// problem found (up to a cap, see common/problems.h), each with its position: "line 12, field
// dob" for CSV, an element path such as "/Message/Children/Child[3]/ChildIdentifiers/UPN" for
// XML, a JSON pointer for JSON. Nothing is returned on failure. Oddities that do not make a
// record wrong (stray text, unknown codes the format tolerates) come back as warnings beside
// the records. Every record returned has passed record::CheckRecord (the rules of
// record::ParseRecord, applied to the record as built).
//
// Thread-safety: adapters are immutable; Parse() may be called from many threads at once.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "record/record.h"
#include "record/status.h"

namespace safegate::adapters {

// Who is ingesting: the caller's agency (from its certificate) and the gateway's area. The
// agency becomes source.agency of every record; the area names CSC local ids ("csc:<area>") and
// the agency names police ones ("police:<agency>").
struct IngestContext {
  std::string agency;
  std::string area;
};

struct ParsedBatch {
  std::vector<record::Record> records;  // in input order
  std::vector<Problem> warnings;        // carried, not fatal; same position format as errors
};

class Adapter {
 public:
  virtual ~Adapter() = default;
  // Stable name, used in the URL (POST /v1/ingest/{name}) and written into audit entries.
  virtual std::string_view Name() const = 0;
  // The media type the export arrives as (Content-Type).
  virtual std::string_view MediaType() const = 0;
  // Parses a whole export. REQUIRES: context.agency and context.area are non-empty slugs.
  virtual Result<ParsedBatch> Parse(std::string_view input, const IngestContext& context) const = 0;
};

}  // namespace safegate::adapters
