#include "adapters/niche/niche_csv.h"

#include <algorithm>
#include <array>
#include <string>
#include <unordered_map>

#include "adapters/common/batch.h"
#include "adapters/common/csv.h"
#include "adapters/common/text.h"
#include "adapters/niche/niche_model.h"

namespace safegate::adapters {
namespace {

using niche::Value;
using Column = CsvTable::Column;

// The columns, looked up in the header once rather than by name in every row.
struct Columns {
  explicit Columns(const CsvTable& csv)
      : record_type(csv.Find("record_type")),
        id(csv.Find("id")),
        version(csv.Find("version")),
        nominal_id(csv.Find("nominal_id")),
        surname(csv.Find("surname")),
        forenames(csv.Find("forenames")),
        dob(csv.Find("dob")),
        address(csv.Find("address")),
        postcode(csv.Find("postcode")),
        pnc_id(csv.Find("pnc_id")),
        nhs_number(csv.Find("nhs_number")),
        recorded_at(csv.Find("recorded_at")),
        type(csv.Find("type")),
        occurred_at(csv.Find("occurred_at")),
        location_postcode(csv.Find("location_postcode")),
        summary(csv.Find("summary")),
        enquiry_log(csv.Find("enquiry_log")),
        outcome(csv.Find("outcome")),
        level(csv.Find("level")),
        status(csv.Find("status")),
        start(csv.Find("start")),
        review(csv.Find("review")),
        end(csv.Find("end")),
        note(csv.Find("note")),
        source_evaluation(csv.Find("source_evaluation")),
        information_assessment(csv.Find("information_assessment")),
        handling_code(csv.Find("handling_code")),
        text(csv.Find("text")) {}
  Column record_type, id, version, nominal_id, surname, forenames, dob, address, postcode, pnc_id,
      nhs_number, recorded_at, type, occurred_at, location_postcode, summary, enquiry_log,
      outcome, level, status, start, review, end, note, source_evaluation,
      information_assessment, handling_code, text;
};

// The value keeps the column's name (a string literal above) for its position.
Value Cell(const CsvTable& csv, const Column& column) {
  return {std::string(csv.Get(column)), niche::Where::Cell(csv.line(), column.name)};
}

// The enquiry log cell: one entry per line, each starting with its date or timestamp and a
// space; a line that does not start so continues the entry above it.
void ReadLog(const CsvTable& csv, const Column& column, niche::Item& item, BatchBuilder& out) {
  const std::string_view cell = csv.Get(column);
  item.log_where = {"", niche::Where::Cell(csv.line(), column.name)};
  size_t pos = 0;
  while (pos < cell.size()) {
    size_t eol = cell.find('\n', pos);
    if (eol == std::string_view::npos) eol = cell.size();
    const std::string_view line = Trim(cell.substr(pos, eol - pos));
    pos = eol + 1;
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    const std::string_view first = line.substr(0, space);
    const bool starts_entry = IsIsoDate(first) || IsTimestamp(first);
    if (starts_entry) {
      const niche::Where where =
          niche::Where::Cell(csv.line(), column.name, item.log.size() + 1);
      const std::string_view text = space == std::string_view::npos ? "" : Trim(line.substr(space));
      item.log.push_back({{std::string(first), where}, {std::string(text), where}});
    } else if (item.log.empty()) {
      out.Problem(csv.Where(column.name),
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
  const Columns c(csv);
  // The cells of each nominal kept, by id, as first read. Rows repeat their nominal (one row per
  // item): a row whose cells are exactly those would pass the same checks and compare equal, so
  // it is not built and checked again.
  constexpr size_t kNominalCells = 7;
  std::unordered_map<std::string, std::array<std::string, kNominalCells>> kept_nominals;
  while (csv.Next()) {
    const std::string where = "line " + std::to_string(csv.line());
    const std::string_view nominal_id = csv.Get(c.nominal_id);
    const std::array<std::string_view, kNominalCells> cells = {
        csv.Get(c.surname),  csv.Get(c.forenames), csv.Get(c.dob),       csv.Get(c.address),
        csv.Get(c.postcode), csv.Get(c.pnc_id),    csv.Get(c.nhs_number)};
    auto kept =
        nominal_id.empty() ? kept_nominals.end() : kept_nominals.find(std::string(nominal_id));
    const bool repeated =
        kept != kept_nominals.end() && std::equal(cells.begin(), cells.end(), kept->second.begin());
    // Without a nominal id the item's own check reports it, once.
    if (!nominal_id.empty() && !repeated) {
      niche::Nominal n;
      n.where = where;
      n.id = Cell(csv, c.nominal_id);
      n.surname = Cell(csv, c.surname);
      n.forenames = Cell(csv, c.forenames);
      n.dob = Cell(csv, c.dob);
      n.address = Cell(csv, c.address);
      n.postcode = Cell(csv, c.postcode);
      n.pnc_id = Cell(csv, c.pnc_id);
      n.nhs_number = Cell(csv, c.nhs_number);
      if (niche.AddNominal(std::move(n), /*repeat_ok=*/true)) {
        auto& first = kept_nominals[std::string(nominal_id)];
        std::copy(cells.begin(), cells.end(), first.begin());
      }
    }

    niche::Item& item = niche.NewItem();
    item.where = where;
    item.id = Cell(csv, c.id);
    item.version = Cell(csv, c.version);
    item.nominal = Cell(csv, c.nominal_id);
    item.recorded = Cell(csv, c.recorded_at);
    const std::string type = ToLowerAscii(csv.Get(c.record_type));
    if (type == "occurrence") {
      item.type = niche::ItemType::kOccurrence;
      item.occurrence_type() = Cell(csv, c.type);
      item.occurred_at() = Cell(csv, c.occurred_at);
      item.location_postcode() = Cell(csv, c.location_postcode);
      item.summary() = Cell(csv, c.summary);
      item.outcome() = Cell(csv, c.outcome);
      ReadLog(csv, c.enquiry_log, item, out);
    } else if (type == "warning_marker") {
      item.type = niche::ItemType::kWarningMarker;
      item.marker_type() = Cell(csv, c.type);
      item.level() = Cell(csv, c.level);
      item.status() = Cell(csv, c.status);
      item.start() = Cell(csv, c.start);
      item.review() = Cell(csv, c.review);
      item.end() = Cell(csv, c.end);
      item.note() = Cell(csv, c.note);
    } else if (type == "intelligence") {
      item.type = niche::ItemType::kIntelligence;
      item.source_grade() = Cell(csv, c.source_evaluation);
      item.information_grade() = Cell(csv, c.information_assessment);
      item.handling() = Cell(csv, c.handling_code);
      item.text() = Cell(csv, c.text);
    } else {
      niche.DropLastItem();
      out.Problem(csv.Where("record_type"),
                  "unknown record type \"" + Excerpt(csv.Get(c.record_type)) +
                      "\" (expected occurrence, warning_marker or intelligence)");
      continue;
    }
  }
  niche.Finish();
  return out.Finish();
}

}  // namespace safegate::adapters
