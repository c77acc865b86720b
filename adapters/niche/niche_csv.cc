#include "adapters/niche/niche_csv.h"

#include <string>

#include "adapters/common/batch.h"
#include "adapters/common/csv.h"
#include "adapters/common/text.h"
#include "adapters/niche/niche_model.h"

namespace safegate::adapters {
namespace {

using niche::Value;

Value Cell(const CsvTable& csv, std::string_view column) {
  return {std::string(csv.Get(column)), csv.Where(column)};
}

// The enquiry log cell: one entry per line, each starting with its date or timestamp and a
// space; a line that does not start so continues the entry above it.
void ReadLog(const CsvTable& csv, niche::Item& item, BatchBuilder& out) {
  const std::string_view cell = csv.Get("enquiry_log");
  item.log_where = {"", csv.Where("enquiry_log")};
  size_t pos = 0;
  while (pos < cell.size()) {
    size_t eol = cell.find('\n', pos);
    if (eol == std::string_view::npos) eol = cell.size();
    const std::string_view line = Trim(cell.substr(pos, eol - pos));
    pos = eol + 1;
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    const std::string_view first = line.substr(0, space);
    const bool starts_entry = IsIsoDate(first) || NormalizeTimestamp(first).has_value();
    const std::string where = csv.Where("enquiry_log") + ", entry " +
                              std::to_string(item.log.size() + (starts_entry ? 1 : 0));
    if (starts_entry) {
      const std::string_view text = space == std::string_view::npos ? "" : Trim(line.substr(space));
      item.log.push_back({{std::string(first), where}, {std::string(text), where}});
    } else if (item.log.empty()) {
      out.Problem(csv.Where("enquiry_log"),
                  "each log entry starts with its date or timestamp, e.g. "
                  "\"2018-10-31T10:05:00Z text\"; found \"" +
                      Excerpt(line) + "\"");
      return;
    } else {
      item.log.back().text.text += "\n";
      item.log.back().text.text += line;
    }
  }
}

}  // namespace

Result<ParsedBatch> NicheCsvAdapter::Parse(std::string_view input,
                                           const IngestContext& context) const {
  BatchBuilder out(Name());
  niche::NicheBuilder niche(context, out);
  CsvTable csv(input, {"record_type", "id", "nominal_id", "surname", "recorded_at"},
               {"version",
                "forenames",
                "dob",
                "address",
                "postcode",
                "pnc_id",
                "nhs_number",
                "type",
                "occurred_at",
                "location_postcode",
                "summary",
                "enquiry_log",
                "outcome",
                "level",
                "status",
                "start",
                "review",
                "end",
                "note",
                "source_evaluation",
                "information_assessment",
                "handling_code",
                "text"},
               out.problems());
  while (csv.Next()) {
    const std::string where = "line " + std::to_string(csv.line());
    niche::Nominal n;
    n.where = where;
    n.id = Cell(csv, "nominal_id");
    n.surname = Cell(csv, "surname");
    n.forenames = Cell(csv, "forenames");
    n.dob = Cell(csv, "dob");
    n.address = Cell(csv, "address");
    n.postcode = Cell(csv, "postcode");
    n.pnc_id = Cell(csv, "pnc_id");
    n.nhs_number = Cell(csv, "nhs_number");
    // Without a nominal id the item's own check reports it, once.
    if (n.id.present()) niche.AddNominal(std::move(n), /*repeat_ok=*/true);

    niche::Item item;
    item.where = where;
    item.id = Cell(csv, "id");
    item.version = Cell(csv, "version");
    item.nominal = Cell(csv, "nominal_id");
    item.recorded = Cell(csv, "recorded_at");
    const std::string type = ToLowerAscii(csv.Get("record_type"));
    if (type == "occurrence") {
      item.type = niche::ItemType::kOccurrence;
      item.occurrence_type = Cell(csv, "type");
      item.occurred_at = Cell(csv, "occurred_at");
      item.location_postcode = Cell(csv, "location_postcode");
      item.summary = Cell(csv, "summary");
      item.outcome = Cell(csv, "outcome");
      ReadLog(csv, item, out);
    } else if (type == "warning_marker") {
      item.type = niche::ItemType::kWarningMarker;
      item.marker_type = Cell(csv, "type");
      item.level = Cell(csv, "level");
      item.status = Cell(csv, "status");
      item.start = Cell(csv, "start");
      item.review = Cell(csv, "review");
      item.end = Cell(csv, "end");
      item.note = Cell(csv, "note");
    } else if (type == "intelligence") {
      item.type = niche::ItemType::kIntelligence;
      item.source_grade = Cell(csv, "source_evaluation");
      item.information_grade = Cell(csv, "information_assessment");
      item.handling = Cell(csv, "handling_code");
      item.text = Cell(csv, "text");
    } else {
      out.Problem(csv.Where("record_type"),
                  "unknown record type \"" + Excerpt(csv.Get("record_type")) +
                      "\" (expected occurrence, warning_marker or intelligence)");
      continue;
    }
    niche.AddItem(std::move(item));
  }
  niche.Finish();
  return out.Finish();
}

}  // namespace safegate::adapters
