#include "adapters/niche/niche_xml.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <initializer_list>
#include <string>

#include "adapters/common/batch.h"
#include "adapters/common/text.h"
#include "adapters/common/xml_units.h"
#include "adapters/niche/niche_model.h"

namespace safegate::adapters {
namespace {

using niche::Value;
using niche::Where;
// A unit's (or element's) path, kept once for the positions of the values read from it.
using Base = const std::string*;

const XmlLayout& Layout() {
  static const XmlLayout kLayout = {
      {"/NicheExport", "/NicheExport/Nominals", "/NicheExport/Occurrences",
       "/NicheExport/WarningMarkers", "/NicheExport/IntelligenceReports"},
      {"/NicheExport/Nominals/Nominal", "/NicheExport/Occurrences/Occurrence",
       "/NicheExport/WarningMarkers/WarningMarker",
       "/NicheExport/IntelligenceReports/IntelligenceReport"},
      /*paths_inside_units=*/false,
  };
  return kLayout;
}

bool Contains(std::initializer_list<std::string_view> names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Checks a unit's shape against our schema: only the named attributes and child elements,
// each child at most once, text only in leaves. Every deviation is a problem: the schema is
// ours, so anything else is a mistake in the export. `path` is the unit's (elements inside a
// unit carry none: see Layout()).
void CheckShape(const XmlNode& unit, const std::string& path,
                std::initializer_list<std::string_view> attributes,
                std::initializer_list<std::string_view> leaves,
                std::initializer_list<std::string_view> structured, BatchBuilder& out) {
  for (const auto& [name, value] : unit.attributes) {
    if (!Contains(attributes, name)) out.Problem(path + "/@" + name, "unknown attribute");
  }
  if (!unit.text.empty()) {
    out.Problem(path, "stray text \"" + Excerpt(unit.text) + "\" between elements");
  }
  // The known names seen so far, each once: at most the names listed (8 for a warning
  // marker), so a small array is enough.
  std::array<std::string_view, 16> seen;
  size_t seen_count = 0;
  for (const XmlNode& c : unit.children) {
    const bool leaf = Contains(leaves, c.name);
    if (!leaf && !Contains(structured, c.name)) {
      out.Problem(XmlChildPath(path, c.name, c.index), "unknown element <" + c.name + ">");
      continue;
    }
    const auto seen_end = seen.begin() + static_cast<ptrdiff_t>(seen_count);
    if (std::find(seen.begin(), seen_end, c.name) != seen_end) {
      out.Problem(XmlChildPath(path, c.name, c.index), "<" + c.name + "> may appear only once");
      continue;
    }
    if (seen_count < seen.size()) seen[seen_count++] = c.name;
    if (leaf && !c.children.empty()) {
      out.Problem(XmlChildPath(path, c.name, c.index), "<" + c.name + "> holds text only");
    }
  }
}

// Leaf() and Attr() take the text out of the unit: each is read once, after the unit's shape
// was checked. `base` is the path of `unit` / `node`; `name` a string literal.
Value Leaf(XmlNode& unit, Base base, std::string_view name) {
  if (XmlNode* c = unit.Child(name)) return {std::move(c->text), Where::Xml(base, name, c->index)};
  return {"", Where::Xml(base, name)};
}

Value Attr(XmlNode& node, Base base, std::string_view name) {
  std::string* v = node.Attribute(name);
  return {v != nullptr ? std::move(*v) : "", Where::Xml(base, {}, 0, name)};
}

class Handler : public XmlUnitHandler {
 public:
  Handler(niche::NicheBuilder& niche, BatchBuilder& out) : niche_(niche), out_(out) {}

  void OnUnit(std::string_view unit_path, XmlNode& unit) override {
    const Base base = niche_.KeepPath(unit.path);
    if (unit_path.ends_with("/Nominal")) {
      CheckShape(
          unit, unit.path, {"id"},
          {"Surname", "Forenames", "DateOfBirth", "Address", "Postcode", "PNCId", "NHSNumber"}, {},
          out_);
      niche::Nominal n;
      n.where = unit.path;
      n.id = Attr(unit, base, "id");
      n.surname = Leaf(unit, base, "Surname");
      n.forenames = Leaf(unit, base, "Forenames");
      n.dob = Leaf(unit, base, "DateOfBirth");
      n.address = Leaf(unit, base, "Address");
      n.postcode = Leaf(unit, base, "Postcode");
      n.pnc_id = Leaf(unit, base, "PNCId");
      n.nhs_number = Leaf(unit, base, "NHSNumber");
      niche_.AddNominal(std::move(n), /*repeat_ok=*/false);
      return;
    }
    niche::Item& item = niche_.NewItem();
    item.where = unit.path;
    item.id = Attr(unit, base, "id");
    item.version = Attr(unit, base, "version");
    item.nominal = Attr(unit, base, "nominal");
    item.recorded = Leaf(unit, base, "Recorded");
    if (unit_path.ends_with("/Occurrence")) {
      CheckShape(unit, unit.path, {"id", "version", "nominal"},
                 {"Type", "Recorded", "OccurredAt", "LocationPostcode", "Summary", "Outcome"},
                 {"EnquiryLog"}, out_);
      item.type = niche::ItemType::kOccurrence;
      item.occurrence_type() = Leaf(unit, base, "Type");
      item.occurred_at() = Leaf(unit, base, "OccurredAt");
      item.location_postcode() = Leaf(unit, base, "LocationPostcode");
      item.summary() = Leaf(unit, base, "Summary");
      item.outcome() = Leaf(unit, base, "Outcome");
      if (XmlNode* log = unit.Child("EnquiryLog")) {
        const Base log_path = niche_.KeepPath(XmlChildPath(unit.path, "EnquiryLog", log->index));
        item.log_where = {"", Where::Xml(log_path)};
        if (!log->text.empty()) {
          out_.Problem(*log_path, "stray text \"" + Excerpt(log->text) + "\" between entries");
        }
        item.log.reserve(log->children.size());
        for (XmlNode& e : log->children) {
          if (e.name != "Entry") {
            out_.Problem(XmlChildPath(*log_path, e.name, e.index),
                         "unknown element <" + e.name + "> (expected <Entry>)");
            continue;
          }
          for (const auto& [name, value] : e.attributes) {
            if (name != "at") {
              out_.Problem(XmlChildPath(*log_path, e.name, e.index) + "/@" + name,
                           "unknown attribute");
            }
          }
          if (!e.children.empty()) {
            out_.Problem(XmlChildPath(*log_path, e.name, e.index), "<Entry> holds text only");
          }
          std::string* at = e.Attribute("at");
          item.log.push_back(
              {{at != nullptr ? std::move(*at) : "", Where::Xml(log_path, "Entry", e.index, "at")},
               {std::move(e.text), Where::Xml(log_path, "Entry", e.index)}});
        }
      }
    } else if (unit_path.ends_with("/WarningMarker")) {
      CheckShape(unit, unit.path, {"id", "version", "nominal"},
                 {"Type", "Level", "Status", "Recorded", "Start", "Review", "End", "Note"}, {},
                 out_);
      item.type = niche::ItemType::kWarningMarker;
      item.marker_type() = Leaf(unit, base, "Type");
      item.level() = Leaf(unit, base, "Level");
      item.status() = Leaf(unit, base, "Status");
      item.start() = Leaf(unit, base, "Start");
      item.review() = Leaf(unit, base, "Review");
      item.end() = Leaf(unit, base, "End");
      item.note() = Leaf(unit, base, "Note");
    } else {
      CheckShape(unit, unit.path, {"id", "version", "nominal"}, {"Recorded", "Text", "Grading"}, {},
                 out_);
      item.type = niche::ItemType::kIntelligence;
      item.text() = Leaf(unit, base, "Text");
      XmlNode* g = unit.Child("Grading");
      const Base grading =
          niche_.KeepPath(XmlChildPath(unit.path, "Grading", g != nullptr ? g->index : 0));
      if (g != nullptr) {
        CheckShape(*g, *grading, {"source", "information", "handling"}, {}, {}, out_);
        item.source_grade() = Attr(*g, grading, "source");
        item.information_grade() = Attr(*g, grading, "information");
        item.handling() = Attr(*g, grading, "handling");
      } else {
        item.source_grade() = {"", Where::Xml(grading, {}, 0, "source")};
        item.information_grade() = {"", Where::Xml(grading, {}, 0, "information")};
        item.handling() = {"", Where::Xml(grading, {}, 0, "handling")};
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
