#include "adapters/cpis/cpis_csv.h"

#include <optional>
#include <string>

#include "adapters/common/batch.h"
#include "adapters/common/csv.h"
#include "adapters/common/text.h"

namespace safegate::adapters {
namespace {

struct PlanType {
  std::string_view code;       // as CP-IS writes it
  std::string_view flag_type;  // canonical flag type
};
constexpr PlanType kPlanTypes[] = {
    {"CPP", "cp_plan"},
    {"UCPP", "unborn_cp_plan"},
    {"LAC", "looked_after"},
};

}  // namespace

Result<ParsedBatch> CpisCsvAdapter::Parse(std::string_view input,
                                          const IngestContext& context) const {
  BatchBuilder out(Name());
  CsvTable csv(input,
               {"nhs_number", "plan_type", "start_date", "responsible_authority",
                "office_hours_phone", "out_of_hours_phone"},
               {"end_date", "given_name", "family_name", "birth_date"}, out.problems());
  // Looked up once, not by name in every row.
  const auto nhs_number = csv.Find("nhs_number"), given_name = csv.Find("given_name"),
             family_name = csv.Find("family_name"), birth_date = csv.Find("birth_date"),
             plan_type = csv.Find("plan_type"), start_date = csv.Find("start_date"),
             end_date = csv.Find("end_date"), responsible_authority = csv.Find("responsible_authority"),
             office_hours_phone = csv.Find("office_hours_phone"),
             out_of_hours_phone = csv.Find("out_of_hours_phone");
  while (csv.Next()) {
    const size_t problems_before = out.problems().size();
    auto problem = [&](std::string_view column, std::string what) {
      out.Problem(csv.Where(column), std::move(what));
    };

    record::Record r;
    r.kind = record::Kind::kFlag;
    std::string nhs;
    if (std::string why = CheckNhsNumber(csv.Get(nhs_number), &nhs); !why.empty()) {
      problem("nhs_number", why);
    }
    r.subject.nhs_number = nhs;
    if (auto v = csv.Get(given_name); !v.empty()) r.subject.given_name = std::string(v);
    if (auto v = csv.Get(family_name); !v.empty()) r.subject.family_name = std::string(v);
    if (auto v = csv.Get(birth_date); !v.empty()) {
      if (IsIsoDate(v)) {
        r.subject.birth_date = std::string(v);
      } else {
        problem("birth_date", "not a date (YYYY-MM-DD): \"" + Excerpt(v) + "\"");
      }
    }

    const std::string code = ToUpperAscii(csv.Get(plan_type));
    const PlanType* type = nullptr;
    for (const PlanType& t : kPlanTypes) {
      if (t.code == code) type = &t;
    }
    if (type == nullptr) {
      problem("plan_type", "unknown plan type \"" + Excerpt(csv.Get(plan_type)) +
                               "\" (expected CPP, UCPP or LAC)");
    }

    const std::string_view start = csv.Get(start_date);
    const std::string_view end = csv.Get(end_date);
    if (!IsIsoDate(start)) {
      problem("start_date",
              start.empty() ? "required" : "not a date (YYYY-MM-DD): \"" + Excerpt(start) + "\"");
    }
    if (!end.empty() && !IsIsoDate(end)) {
      problem("end_date", "not a date (YYYY-MM-DD): \"" + Excerpt(end) + "\"");
    } else if (!end.empty() && IsIsoDate(start) && end < start) {
      problem("end_date",
              "ends (" + std::string(end) + ") before it starts (" + std::string(start) + ")");
    }

    const std::string_view authority = csv.Get(responsible_authority);
    if (authority.empty()) problem("responsible_authority", "required");
    const std::string_view office = csv.Get(office_hours_phone);
    const std::string_view ooh = csv.Get(out_of_hours_phone);
    if (std::string why = CheckPhone(office); !why.empty()) problem("office_hours_phone", why);
    if (std::string why = CheckPhone(ooh); !why.empty()) problem("out_of_hours_phone", why);

    if (out.problems().size() != problems_before) continue;

    // CP-IS rows have no id: the plan is known by child, type and start. Ending the plan is
    // the one change a row goes through, so it makes version 2 of the same record.
    r.source.agency = context.agency;
    r.source.system = "cpis";
    r.source.record_id = DigestId("cpis", {nhs, type->code, start});
    r.source.version = end.empty() ? 1 : 2;
    r.source.recorded_at = StartOfDayUtc(end.empty() ? start : end);
    // CP-IS is an NHS system: its records are health records, special category data, and
    // about an identified child (Schedule 12A paragraphs 1 and 2).
    r.classification.special_category = true;
    r.classification.criminal_offence = false;
    r.classification.schedule12a = {1, 2};
    r.classification.handling = "P";

    FlagFields f;
    f.type = std::string(type->flag_type);
    f.status = end.empty() ? "active" : "inactive";
    f.start = std::string(start);
    if (!end.empty()) f.end = std::string(end);
    f.owner_agency = context.agency;
    f.office_hours = std::string(office);
    f.out_of_hours = std::string(ooh);
    constexpr std::string_view kNoteStart = "Responsible authority: ";
    f.note.emplace().reserve(kNoteStart.size() + authority.size());
    f.note->append(kNoteStart).append(authority);
    FlagBody(std::move(f), r.body);
    out.AddLazy(std::move(r), "line " + std::to_string(csv.line()), [&] {
      return BatchBuilder::FieldPositions{
          {"/subject/given_name", csv.Where("given_name")},
          {"/subject/family_name", csv.Where("family_name")},
          {"/body/note", csv.Where("responsible_authority")},
          {"/body/contact/office_hours", csv.Where("office_hours_phone")},
          {"/body/contact/out_of_hours", csv.Where("out_of_hours_phone")}};
    });
  }
  return out.Finish();
}

}  // namespace safegate::adapters
