// The Niche export model shared by niche-xml and niche-csv: nominals (people) and the items
// about them (occurrences, warning markers, intelligence reports), as read from either file
// format, each value with the input position it came from. NicheBuilder checks the values,
// resolves each item's nominal and makes the canonical records, so both formats apply exactly
// the same rules (docs/adapters/niche.md).
//
// Thread-safety: none; one builder per Parse() call.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "adapters/adapter.h"
#include "adapters/common/batch.h"

namespace safegate::adapters::niche {

// One input value: its trimmed text ("" when absent) and where it is, or would be, in the input.
struct Value {
  std::string text;
  std::string where;
  bool present() const { return !text.empty(); }
};

struct Nominal {
  std::string where;  // the nominal as a whole
  Value id, surname, forenames, dob, address, postcode, pnc_id, nhs_number;
};

struct LogEntry {
  Value at, text;
};

enum class ItemType { kOccurrence, kWarningMarker, kIntelligence };

struct Item {
  ItemType type = ItemType::kOccurrence;
  std::string where;
  Value id, version, nominal, recorded;
  // Occurrence.
  Value occurrence_type, occurred_at, location_postcode, summary, outcome;
  std::vector<LogEntry> log;
  Value log_where;  // the enquiry log as a whole (CSV cell / XML element)
  // Warning marker.
  Value marker_type, level, status, start, review, end, note;
  // Intelligence report, graded 3x5x2.
  Value source_grade, information_grade, handling, text;
};

class NicheBuilder {
 public:
  NicheBuilder(const IngestContext& context, BatchBuilder& out) : context_(context), out_(out) {}

  // Checks and keeps a nominal. A second nominal with the same id is a problem unless
  // `repeat_ok` (CSV rows repeat their nominal) and its details are the same.
  void AddNominal(Nominal n, bool repeat_ok);
  // Keeps an item until Finish(): items may name nominals defined later in the file.
  void AddItem(Item item) { items_.push_back(std::move(item)); }
  // Checks every item and hands its record to the batch.
  void Finish();

 private:
  void BuildItem(const Item& item);

  const IngestContext& context_;
  BatchBuilder& out_;
  std::unordered_map<std::string, Nominal> nominals_;
  std::vector<Item> items_;
};

}  // namespace safegate::adapters::niche
