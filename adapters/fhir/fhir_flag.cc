#include "adapters/fhir/fhir_flag.h"

#include <optional>
#include <string>

#include "adapters/common/batch.h"
#include "adapters/common/json_input.h"
#include "adapters/common/text.h"
#include "adapters/fhir/fhir_codes.h"

namespace safegate::adapters {
namespace {

using nlohmann::json;

// A JSON pointer spelled out only when a problem names it: a valid Flag is read without
// building one per member. A Path made from a parent refers to it, and the parent must
// outlive it (parents are the paths of the enclosing readers, or named locals).
class Path {
 public:
  Path(std::string text) : text_(std::move(text)) {}  // NOLINT: implicit, like a string
  Path(const char* text) : text_(text) {}             // NOLINT: implicit, like a string
  Path(const Path& parent, std::string_view key) : parent_(&parent), key_(key) {}
  Path(const Path& parent, size_t index) : parent_(&parent), index_(index), is_index_(true) {}

  std::string str() const {
    if (parent_ == nullptr) return text_;
    return is_index_ ? JsonPointer(parent_->str(), index_) : JsonPointer(parent_->str(), key_);
  }
  operator std::string() const { return str(); }  // NOLINT: a position is read as text

 private:
  std::string text_;
  const Path* parent_ = nullptr;
  std::string_view key_;
  size_t index_ = 0;
  bool is_index_ = false;
};

// Reads the members of one JSON object, reporting type errors at their JSON pointer.
// REQUIRES: the object and the parent of `at` outlive the reader.
class Members {
 public:
  Members(const json& obj, Path at, BatchBuilder& out) : obj_(obj), at_(std::move(at)), out_(out) {}

  // Refers to this reader, which must outlive the result.
  Path At(std::string_view key) const { return Path(at_, key); }
  const json* Get(std::string_view key) const {
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }
  // The member as an object; nullptr (and a problem if present or required) otherwise.
  const json* Object(std::string_view key, bool required) const {
    const json* v = Get(key);
    if (v == nullptr) {
      if (required) out_.Problem(At(key), "required");
      return nullptr;
    }
    if (!v->is_object()) {
      out_.Problem(At(key), "must be an object");
      return nullptr;
    }
    return v;
  }
  std::optional<std::string> String(std::string_view key, bool required) const {
    const json* v = Get(key);
    if (v == nullptr) {
      if (required) out_.Problem(At(key), "required");
      return std::nullopt;
    }
    if (!v->is_string()) {
      out_.Problem(At(key), "must be a string");
      return std::nullopt;
    }
    return v->get<std::string>();
  }
  const json* Array(std::string_view key) const {
    const json* v = Get(key);
    if (v == nullptr) return nullptr;
    if (!v->is_array()) {
      out_.Problem(At(key), "must be an array");
      return nullptr;
    }
    return v;
  }

 private:
  const json& obj_;
  Path at_;
  BatchBuilder& out_;
};

// A FHIR date or dateTime as a calendar date: the date part a person reads, in the zone the
// source wrote. nullopt if it is not one.
std::optional<std::string> DatePart(std::string_view s) {
  if (IsIsoDate(s)) return std::string(s);
  if (s.size() > 10 && IsIsoDate(s.substr(0, 10)) && NormalizeTimestamp(s)) {
    return std::string(s.substr(0, 10));
  }
  return std::nullopt;
}

bool IsPrintableAscii(std::string_view s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7E) return false;
  }
  return !s.empty();
}

class FlagReader {
 public:
  FlagReader(const IngestContext& context, BatchBuilder& out) : context_(context), out_(out) {}

  void Read(const json& flag, const Path& at) {
    const size_t before = out_.problems().size();
    Members m(flag, at, out_);
    record::Record r;
    r.kind = record::Kind::kFlag;

    if (m.Get("modifierExtension") != nullptr) {
      // FHIR: a modifier extension changes the meaning of the resource; one we do not know
      // must not be ignored.
      out_.Problem(m.At("modifierExtension"), "modifier extensions are not understood here");
    }

    // Identity and version.
    std::optional<std::string> id = m.String("id", false);
    if (!id) {
      if (const json* ids = m.Array("identifier");
          ids != nullptr && !ids->empty() && (*ids)[0].is_object()) {
        const Path ids_at = m.At("identifier");
        Members first((*ids)[0], Path(ids_at, size_t{0}), out_);
        id = first.String("value", true);
      }
    }
    if (!id) {
      out_.Problem(m.At("id"), "required: the Flag's id (or an identifier) names the record");
    } else if (!IsPrintableAscii(*id) || id->size() > 128) {
      out_.Problem(m.At("id"), "an id is 1 to 128 printable ASCII characters");
    }
    int64_t version = 1;
    std::optional<std::string> last_updated;
    if (const json* meta = m.Object("meta", false)) {
      Members mm(*meta, m.At("meta"), out_);
      if (auto v = mm.String("versionId", false)) {
        if (auto n = ParseInteger(*v, 1, INT64_MAX / 2)) {
          version = *n;
        } else {
          out_.Problem(mm.At("versionId"),
                       "safegate needs a whole-number version from 1, not \"" + Excerpt(*v) + "\"");
        }
      }
      if (auto lu = mm.String("lastUpdated", false)) {
        last_updated = NormalizeTimestamp(*lu);
        if (!last_updated) {
          out_.Problem(mm.At("lastUpdated"),
                       "not an instant with a zone: \"" + Excerpt(*lu) + "\"");
        }
      }
    }

    // Status.
    std::string status;
    if (auto s = m.String("status", true)) {
      if (*s == "active" || *s == "inactive") {
        status = *s;
      } else if (*s == "entered-in-error") {
        status = "entered_in_error";
      } else {
        out_.Problem(m.At("status"),
                     "must be active, inactive or entered-in-error, not \"" + Excerpt(*s) + "\"");
      }
    }

    // Code.
    const fhir::FlagCode* code = nullptr;
    if (const json* c = m.Object("code", true)) {
      Members cm(*c, m.At("code"), out_);
      if (const json* codings = cm.Array("coding")) {
        const Path codings_at = cm.At("coding");
        for (size_t i = 0; i < codings->size() && code == nullptr; ++i) {
          const json& coding = (*codings)[i];
          if (!coding.is_object()) {
            out_.Problem(Path(codings_at, i), "must be an object");
            continue;
          }
          Members k(coding, Path(codings_at, i), out_);
          auto system = k.String("system", false);
          auto value = k.String("code", false);
          if (system && value) code = fhir::FindFlagCode(*system, *value);
        }
      }
      if (code == nullptr) {
        out_.Problem(cm.At("coding"),
                     "no coding safegate maps to a flag type (see docs/adapters/fhir-flag.md "
                     "for the SNOMED CT and local codes)");
      }
    }

    // Subject: by NHS number.
    std::string nhs;
    if (const json* subject = m.Object("subject", true)) {
      Members sm(*subject, m.At("subject"), out_);
      if (const json* ident = sm.Object("identifier", false)) {
        Members im(*ident, sm.At("identifier"), out_);
        auto system = im.String("system", true);
        auto value = im.String("value", true);
        if (system && *system != fhir::kNhsNumberSystem) {
          out_.Problem(im.At("system"), "the subject is identified by NHS number: system must be " +
                                            std::string(fhir::kNhsNumberSystem));
        } else if (value) {
          if (std::string why = CheckNhsNumber(*value, &nhs); !why.empty()) {
            out_.Problem(im.At("value"), why);
          }
        }
      } else if (subject->contains("reference")) {
        out_.Problem(sm.At("identifier"),
                     "required: a reference alone does not say who the child is; give the "
                     "subject's NHS number identifier");
      } else {
        out_.Problem(sm.At("identifier"), "required: the subject's NHS number identifier");
      }
    }

    // Period.
    std::optional<std::string> start, end;
    if (const json* period = m.Object("period", true)) {
      Members pm(*period, m.At("period"), out_);
      if (auto s = pm.String("start", true)) {
        start = DatePart(*s);
        if (!start)
          out_.Problem(pm.At("start"), "not a FHIR date or dateTime: \"" + Excerpt(*s) + "\"");
      }
      if (auto e = pm.String("end", false)) {
        end = DatePart(*e);
        if (!end) {
          out_.Problem(pm.At("end"), "not a FHIR date or dateTime: \"" + Excerpt(*e) + "\"");
        } else if (start && *end < *start) {
          out_.Problem(pm.At("end"), "ends (" + *end + ") before it starts (" + *start + ")");
        }
      }
    }

    // Our extensions; others are ignored, as FHIR allows for plain extensions.
    FlagFields f;
    if (const json* exts = m.Array("extension")) {
      const Path exts_at = m.At("extension");
      for (size_t i = 0; i < exts->size(); ++i) ReadExtension((*exts)[i], Path(exts_at, i), f);
    }
    if (m.Get("category") != nullptr) m.Array("category");  // type check only
    if (m.Get("author") != nullptr) m.Object("author", false);

    if (out_.problems().size() != before) return;

    r.subject.nhs_number = nhs;
    r.source.agency = context_.agency;
    r.source.system = "fhir";
    r.source.record_id = *id;
    r.source.version = version;
    // Without meta.lastUpdated the flag's own start is the only time in it that does not
    // change between two exports of the same resource.
    r.source.recorded_at = last_updated ? *last_updated : StartOfDayUtc(*start);
    // Health data: special category (UK GDPR Art 9), about an identified child.
    r.classification.special_category = true;
    r.classification.criminal_offence = false;
    r.classification.schedule12a = {1, 2};
    r.classification.handling = "P";
    f.type = std::string(code->flag_type);
    f.status = status;
    f.start = *start;
    f.end = end;
    f.owner_agency = context_.agency;
    FlagBody(std::move(f), r.body);
    out_.AddLazy(std::move(r), at.str(), [&] {
      return BatchBuilder::FieldPositions{
          {"/subject/nhs_number", m.At("subject").str() + "/identifier/value"},
          {"/body/note", m.At("extension")},
          {"/body/contact", m.At("extension")}};
    });
  }

 private:
  void ReadExtension(const json& ext, const Path& at, FlagFields& f) {
    if (!ext.is_object()) {
      out_.Problem(at, "must be an object");
      return;
    }
    Members e(ext, at, out_);
    auto url = e.String("url", true);
    if (!url) return;
    if (*url == fhir::kExtRiskLevel) {
      if (auto v = e.String("valueCode", true)) {
        if (*v == "low" || *v == "medium" || *v == "high") {
          f.level = *v;
        } else {
          out_.Problem(e.At("valueCode"),
                       "risk level is low, medium or high, not \"" + Excerpt(*v) + "\"");
        }
      }
    } else if (*url == fhir::kExtReviewDate) {
      if (auto v = e.String("valueDate", true)) {
        if (IsIsoDate(*v)) {
          f.review_by = *v;
        } else {
          out_.Problem(e.At("valueDate"), "not a date (YYYY-MM-DD): \"" + Excerpt(*v) + "\"");
        }
      }
    } else if (*url == fhir::kExtNote) {
      if (auto v = e.String("valueString", true)) f.note = *v;
    } else if (*url == fhir::kExtContact) {
      if (const json* parts = e.Array("extension")) {
        const Path parts_at = e.At("extension");
        for (size_t i = 0; i < parts->size(); ++i) {
          const Path part_at(parts_at, i);
          if (!(*parts)[i].is_object()) {
            out_.Problem(part_at, "must be an object");
            continue;
          }
          Members p((*parts)[i], part_at, out_);
          auto part_url = p.String("url", true);
          auto value = p.String("valueString", true);
          if (!part_url || !value) continue;
          if (*part_url == "office-hours") {
            f.office_hours = *value;
          } else if (*part_url == "out-of-hours") {
            f.out_of_hours = *value;
          } else {
            out_.Problem(p.At("url"), "expected office-hours or out-of-hours");
          }
        }
      }
    }
  }

  const IngestContext& context_;
  BatchBuilder& out_;
};

}  // namespace

Result<ParsedBatch> FhirFlagAdapter::Parse(std::string_view input,
                                           const IngestContext& context) const {
  BatchBuilder out(Name());
  std::optional<json> doc = ParseJsonStrict(input, out.problems());
  if (!doc) return out.Finish();
  if (!doc->is_object()) {
    out.Problem("", "expected a FHIR resource (a JSON object)");
    return out.Finish();
  }
  FlagReader reader(context, out);
  Members top(*doc, "", out);
  const std::optional<std::string> type = top.String("resourceType", true);
  if (type == "Flag") {
    reader.Read(*doc, "");
  } else if (type == "Bundle") {
    if (const json* entries = top.Array("entry")) {
      const Path entries_at = top.At("entry");
      for (size_t i = 0; i < entries->size(); ++i) {
        const Path at(entries_at, i);
        const json& entry = (*entries)[i];
        if (!entry.is_object()) {
          out.Problem(at, "must be an object");
          continue;
        }
        Members em(entry, at, out);
        const json* resource = em.Object("resource", true);
        if (resource == nullptr) continue;
        Members rm(*resource, em.At("resource"), out);
        auto rtype = rm.String("resourceType", true);
        if (rtype == "Flag") {
          reader.Read(*resource, em.At("resource"));
        } else if (rtype) {
          // A transaction bundle may carry the Patient or Organization the flags refer to;
          // they add nothing the flags do not say.
          out.Warn(rm.At("resourceType"), "a " + Excerpt(*rtype) + " resource was ignored");
        }
      }
    }
  } else if (type) {
    out.Problem("/resourceType", "expected Flag or Bundle, not \"" + Excerpt(*type) + "\"");
  }
  return out.Finish();
}

}  // namespace safegate::adapters
