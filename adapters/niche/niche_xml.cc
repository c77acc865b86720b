#include "adapters/niche/niche_xml.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <initializer_list>

#include "adapters/common/batch.h"
#include "adapters/common/text.h"
#include "adapters/common/xml_units.h"
#include "adapters/niche/niche_model.h"

namespace safegate::adapters {
namespace {

using niche::Value;

const XmlLayout& Layout() {
  static const XmlLayout kLayout = {
      {"/NicheExport", "/NicheExport/Nominals", "/NicheExport/Occurrences",
       "/NicheExport/WarningMarkers", "/NicheExport/IntelligenceReports"},
      {"/NicheExport/Nominals/Nominal", "/NicheExport/Occurrences/Occurrence",
       "/NicheExport/WarningMarkers/WarningMarker",
       "/NicheExport/IntelligenceReports/IntelligenceReport"},
  };
  return kLayout;
}

bool Contains(std::initializer_list<std::string_view> names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Checks a unit's shape against our schema: only the named attributes and child elements,
// each child at most once, text only in leaves. Every deviation is a problem: the schema is
// ours, so anything else is a mistake in the export.
void CheckShape(const XmlNode& unit, std::initializer_list<std::string_view> attributes,
                std::initializer_list<std::string_view> leaves,
                std::initializer_list<std::string_view> structured, BatchBuilder& out) {
  for (const auto& [name, value] : unit.attributes) {
    if (!Contains(attributes, name)) out.Problem(unit.AttributePath(name), "unknown attribute");
  }
  if (!unit.text.empty()) {
    out.Problem(unit.path, "stray text \"" + Excerpt(unit.text) + "\" between elements");
  }
  // The known names seen so far, each once: at most the names listed (8 for a warning
  // marker), so a small array is enough.
  std::array<std::string_view, 16> seen;
  size_t seen_count = 0;
  for (const XmlNode& c : unit.children) {
    const bool leaf = Contains(leaves, c.name);
    if (!leaf && !Contains(structured, c.name)) {
      out.Problem(c.path, "unknown element <" + c.name + ">");
      continue;
    }
    const auto seen_end = seen.begin() + static_cast<ptrdiff_t>(seen_count);
    if (std::find(seen.begin(), seen_end, c.name) != seen_end) {
      out.Problem(c.path, "<" + c.name + "> may appear only once");
      continue;
    }
    if (seen_count < seen.size()) seen[seen_count++] = c.name;
    if (leaf && !c.children.empty()) out.Problem(c.path, "<" + c.name + "> holds text only");
  }
}

// Leaf() and Attr() take the text and path out of the unit: each is read once, after the
// unit's shape was checked.
Value Leaf(XmlNode& unit, std::string_view name) {
  if (XmlNode* c = unit.Child(name)) return {std::move(c->text), std::move(c->path)};
  return {"", unit.path + "/" + std::string(name)};
}

Value Attr(XmlNode& node, std::string_view name) {
  std::string* v = node.Attribute(name);
  return {v != nullptr ? std::move(*v) : "", node.AttributePath(name)};
}

class Handler : public XmlUnitHandler {
 public:
  Handler(niche::NicheBuilder& niche, BatchBuilder& out) : niche_(niche), out_(out) {}

  void OnUnit(std::string_view unit_path, XmlNode& unit) override {
    if (unit_path.ends_with("/Nominal")) {
      CheckShape(
          unit, {"id"},
          {"Surname", "Forenames", "DateOfBirth", "Address", "Postcode", "PNCId", "NHSNumber"}, {},
          out_);
      niche::Nominal n;
      n.where = unit.path;
      n.id = Attr(unit, "id");
      n.surname = Leaf(unit, "Surname");
      n.forenames = Leaf(unit, "Forenames");
      n.dob = Leaf(unit, "DateOfBirth");
      n.address = Leaf(unit, "Address");
      n.postcode = Leaf(unit, "Postcode");
      n.pnc_id = Leaf(unit, "PNCId");
      n.nhs_number = Leaf(unit, "NHSNumber");
      niche_.AddNominal(std::move(n), /*repeat_ok=*/false);
      return;
    }
    niche::Item& item = niche_.NewItem();
    item.where = unit.path;
    item.id = Attr(unit, "id");
    item.version = Attr(unit, "version");
    item.nominal = Attr(unit, "nominal");
    item.recorded = Leaf(unit, "Recorded");
    if (unit_path.ends_with("/Occurrence")) {
      CheckShape(unit, {"id", "version", "nominal"},
                 {"Type", "Recorded", "OccurredAt", "LocationPostcode", "Summary", "Outcome"},
                 {"EnquiryLog"}, out_);
      item.type = niche::ItemType::kOccurrence;
      item.occurrence_type = Leaf(unit, "Type");
      item.occurred_at = Leaf(unit, "OccurredAt");
      item.location_postcode = Leaf(unit, "LocationPostcode");
      item.summary = Leaf(unit, "Summary");
      item.outcome = Leaf(unit, "Outcome");
      if (XmlNode* log = unit.Child("EnquiryLog")) {
        item.log_where = {"", log->path};
        if (!log->text.empty()) {
          out_.Problem(log->path, "stray text \"" + Excerpt(log->text) + "\" between entries");
        }
        for (XmlNode& e : log->children) {
          if (e.name != "Entry") {
            out_.Problem(e.path, "unknown element <" + e.name + "> (expected <Entry>)");
            continue;
          }
          for (const auto& [name, value] : e.attributes) {
            if (name != "at") out_.Problem(e.AttributePath(name), "unknown attribute");
          }
          if (!e.children.empty()) out_.Problem(e.path, "<Entry> holds text only");
          Value at = Attr(e, "at");
          item.log.push_back({std::move(at), {std::move(e.text), std::move(e.path)}});
        }
      }
    } else if (unit_path.ends_with("/WarningMarker")) {
      CheckShape(unit, {"id", "version", "nominal"},
                 {"Type", "Level", "Status", "Recorded", "Start", "Review", "End", "Note"}, {},
                 out_);
      item.type = niche::ItemType::kWarningMarker;
      item.marker_type = Leaf(unit, "Type");
      item.level = Leaf(unit, "Level");
      item.status = Leaf(unit, "Status");
      item.start = Leaf(unit, "Start");
      item.review = Leaf(unit, "Review");
      item.end = Leaf(unit, "End");
      item.note = Leaf(unit, "Note");
    } else {
      CheckShape(unit, {"id", "version", "nominal"}, {"Recorded", "Text", "Grading"}, {}, out_);
      item.type = niche::ItemType::kIntelligence;
      item.text = Leaf(unit, "Text");
      if (XmlNode* g = unit.Child("Grading")) {
        CheckShape(*g, {"source", "information", "handling"}, {}, {}, out_);
        item.source_grade = Attr(*g, "source");
        item.information_grade = Attr(*g, "information");
        item.handling = Attr(*g, "handling");
      } else {
        const std::string at = unit.path + "/Grading";
        item.source_grade = {"", at + "/@source"};
        item.information_grade = {"", at + "/@information"};
        item.handling = {"", at + "/@handling"};
      }
    }
  }

  void OnUnexpected(const std::string& path, int) override {
    out_.Problem(path, "unknown element (see docs/adapters/niche.md for the schema)");
  }
  void OnStrayText(const std::string& path, std::string_view text) override {
    out_.Problem(path, "stray text \"" + Excerpt(text) + "\" between elements");
  }

 private:
  niche::NicheBuilder& niche_;
  BatchBuilder& out_;
};

}  // namespace

Result<ParsedBatch> NicheXmlAdapter::Parse(std::string_view input,
                                           const IngestContext& context) const {
  BatchBuilder out(Name());
  niche::NicheBuilder niche(context, out);
  Handler handler(niche, out);
  // A document that is not well-formed stops here: records from its first part would only
  // add noise to the one problem that matters.
  if (ReadXmlUnits(input, Layout(), handler, out.problems())) niche.Finish();
  return out.Finish();
}

}  // namespace safegate::adapters
