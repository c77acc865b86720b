// The Niche export model shared by niche-xml and niche-csv: nominals (people) and the items
// about them (occurrences, warning markers, intelligence reports), as read from either file
// format, each value with the input position it came from. NicheBuilder checks the values,
// resolves each item's nominal and makes the canonical records, so both formats apply exactly
// the same rules (docs/adapters/niche.md).
//
// Thread-safety: none; one builder per Parse() call.
#pragma once

#include <array>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "adapters/adapter.h"
#include "adapters/common/batch.h"

namespace safegate::adapters::niche {

// Where a value is in the input. A CSV cell is kept as its line and column, an XML element or
// attribute as the path of the unit it is in (kept once for all its values, see
// NicheBuilder::KeepPath) and what follows, and either is spelled out ("line 12, field dob",
// "/NicheExport/Nominals/Nominal[3]/Surname") only when a problem names it, which most values
// never are. A default Where is "".
class Where {
 public:
  Where() = default;
  // "line 12, field enquiry_log" and, with an entry, "..., entry 2".
  // REQUIRES: `column` outlives the value (the adapters pass string literals).
  static Where Cell(size_t line, std::string_view column, size_t entry = 0) {
    Where w;
    w.line_ = line;
    w.column_ = column;
    w.entry_ = entry;
    return w;
  }
  // `*base` + "/name" (with "[index]" when index > 0; nothing when name is empty) +
  // "/@attribute" (nothing when empty). REQUIRES: `base`, `name` and `attribute` outlive the
  // value (the adapter passes a path from NicheBuilder::KeepPath and string literals).
  static Where Xml(const std::string* base, std::string_view name = {}, int index = 0,
                   std::string_view attribute = {}) {
    Where w;
    w.base_ = base;
    w.column_ = name;
    w.entry_ = static_cast<size_t>(index);
    w.attribute_ = attribute;
    return w;
  }
  std::string str() const {
    if (base_ != nullptr) {
      std::string out = *base_;
      if (!column_.empty()) {
        out.append("/").append(column_);
        if (entry_ > 0) out.append("[").append(std::to_string(entry_)).append("]");
      }
      if (!attribute_.empty()) out.append("/@").append(attribute_);
      return out;
    }
    if (line_ == 0) return "";
    std::string out = "line " + std::to_string(line_) + ", field " + std::string(column_);
    if (entry_ > 0) out += ", entry " + std::to_string(entry_);
    return out;
  }
  operator std::string() const { return str(); }  // NOLINT: a position is read as text

 private:
  size_t line_ = 0;
  std::string_view column_;  // a CSV column, or an XML element name
  size_t entry_ = 0;         // a log entry's number, or an XML element's index
  const std::string* base_ = nullptr;
  std::string_view attribute_;
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
  // The values of its type, named below. An item is of one type, so the types share them: an
  // item is made for every record, and a smaller one is quicker to make and to free.
  std::array<Value, 7> values;
  std::vector<LogEntry> log;  // occurrence
  Value log_where;            // the enquiry log as a whole (CSV cell / XML element)

  // Occurrence.
  Value& occurrence_type() { return values[0]; }
  Value& occurred_at() { return values[1]; }
  Value& location_postcode() { return values[2]; }
  Value& summary() { return values[3]; }
  Value& outcome() { return values[4]; }
  // Warning marker.
  Value& marker_type() { return values[0]; }
  Value& level() { return values[1]; }
  Value& status() { return values[2]; }
  Value& start() { return values[3]; }
  Value& review() { return values[4]; }
  Value& end() { return values[5]; }
  Value& note() { return values[6]; }
  // Intelligence report, graded 3x5x2.
  Value& source_grade() { return values[0]; }
  Value& information_grade() { return values[1]; }
  Value& handling() { return values[2]; }
  Value& text() { return values[3]; }
};

class NicheBuilder {
 public:
  NicheBuilder(const IngestContext& context, BatchBuilder& out) : context_(context), out_(out) {}

  // Checks and keeps a nominal. A second nominal with the same id is a problem unless
  // `repeat_ok` (CSV rows repeat their nominal) and its details are the same. Returns true
  // when `n` was kept: its id was new and it has no problem.
  bool AddNominal(Nominal n, bool repeat_ok);
  // Keeps an item until Finish(): items may name nominals defined later in the file.
  void AddItem(Item item) { items_.push_back(std::move(item)); }
  // A new item, kept in place (an Item is large: filling it where it stays saves a move).
  Item& NewItem() { return items_.emplace_back(); }
  // Forgets the item NewItem() returned last.
  void DropLastItem() { items_.pop_back(); }
  // Keeps `path` (an XML unit's or element's) for the positions of the values read from it,
  // as long as the builder.
  const std::string* KeepPath(std::string path) { return &paths_.emplace_back(std::move(path)); }
  // Checks every item and hands its record to the batch.
  void Finish();

 private:
  void BuildItem(Item& item);  // moves the item's texts into its record

  const IngestContext& context_;
  BatchBuilder& out_;
  std::unordered_map<std::string, Nominal> nominals_;
  std::deque<Item> items_;         // Items are large: a deque never moves them as it grows
  std::deque<std::string> paths_;  // see KeepPath; a deque never moves them either
};

}  // namespace safegate::adapters::niche
