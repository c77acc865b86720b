// The Niche export model shared by niche-xml and niche-csv: nominals (people) and the items
// about them (occurrences, warning markers, intelligence reports), as read from either file
// format, each value with the input position it came from. NicheBuilder checks the values,
// resolves each item's nominal and makes the canonical records, so both formats apply exactly
// the same rules (docs/adapters/niche.md).
//
// Thread-safety: none; one builder per Parse() call.
#pragma once

#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "adapters/adapter.h"
#include "adapters/common/batch.h"

namespace safegate::adapters::niche {

// Where a value is in the input. A CSV cell is kept as its line and column and spelled out
// ("line 12, field dob") only when a problem names it, which most values never are.
class Where {
 public:
  Where() = default;
  Where(std::string text) : text_(std::move(text)) {}  // NOLINT: implicit, like a string
  Where(const char* text) : text_(text) {}             // NOLINT: implicit, like a string
  // "line 12, field enquiry_log" and, with an entry, "..., entry 2".
  // REQUIRES: `column` outlives the value (the adapters pass string literals).
  static Where Cell(size_t line, std::string_view column, size_t entry = 0) {
    Where w;
    w.line_ = line;
    w.column_ = column;
    w.entry_ = entry;
    return w;
  }
  std::string str() const {
    if (line_ == 0) return text_;
    std::string out = "line " + std::to_string(line_) + ", field " + std::string(column_);
    if (entry_ > 0) out += ", entry " + std::to_string(entry_);
    return out;
  }
  operator std::string() const { return str(); }  // NOLINT: a position is read as text

 private:
  std::string text_;
  size_t line_ = 0;
  std::string_view column_;
  size_t entry_ = 0;
};

// One input value: its trimmed text ("" when absent) and where it is, or would be, in the input.
struct Value {
  std::string text;
  Where where;
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
  // A new item, kept in place (an Item is large: filling it where it stays saves a move).
  Item& NewItem() { return items_.emplace_back(); }
  // Forgets the item NewItem() returned last.
  void DropLastItem() { items_.pop_back(); }
  // Checks every item and hands its record to the batch.
  void Finish();

 private:
  void BuildItem(Item& item);  // moves the item's texts into its record

  const IngestContext& context_;
  BatchBuilder& out_;
  std::unordered_map<std::string, Nominal> nominals_;
  std::deque<Item> items_;  // Items are large: a deque never moves them as it grows
};

}  // namespace safegate::adapters::niche
