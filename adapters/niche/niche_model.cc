#include "adapters/niche/niche_model.h"

#include <cstdint>
#include <optional>
#include <utility>

#include "adapters/common/text.h"

namespace safegate::adapters::niche {
namespace {

constexpr size_t kMaxIdChars = 64;

bool IsPrintableAscii(std::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7E) return false;
  }
  return true;
}

// True if `*s` is a date, or a timestamp (then normalised to UTC in place); false, with `*s`
// unchanged, if neither.
bool DateOrTimestampInPlace(std::string* s) {
  return IsIsoDate(*s) || NormalizeTimestampInPlace(s);
}

struct Marker {
  std::string_view code;
  std::string_view flag_type;
  bool needs_level;
};
constexpr Marker kMarkers[] = {
    {"CSE", "cse_risk", true},
    {"CCE", "cce_risk", true},
    {"MISSING", "missing", false},
};

}  // namespace

bool NicheBuilder::AddNominal(Nominal n, bool repeat_ok) {
  const size_t before = out_.problems().size();
  if (!n.id.present()) {
    out_.Problem(n.id.where, "required: the nominal's id");
    return false;
  }
  if (!IsPrintableAscii(n.id.text) || n.id.text.size() > kMaxIdChars) {
    out_.Problem(n.id.where, "a nominal id is 1 to 64 printable ASCII characters");
  }
  if (!n.surname.present()) out_.Problem(n.surname.where, "required: the nominal's surname");
  if (n.dob.present() && !IsIsoDate(n.dob.text)) {
    out_.Problem(n.dob.where, "not a date (YYYY-MM-DD): \"" + Excerpt(n.dob.text) + "\"");
  }
  if (n.postcode.present()) {
    if (auto pc = record::NormalisePostcode(n.postcode.text)) {
      n.postcode.text = *pc;
    } else {
      out_.Problem(n.postcode.where, "not a UK postcode: \"" + Excerpt(n.postcode.text) + "\"");
    }
  }
  if (n.pnc_id.present() && (!IsPrintableAscii(n.pnc_id.text) || n.pnc_id.text.size() > 20)) {
    out_.Problem(n.pnc_id.where, "a PNC id is up to 20 printable ASCII characters");
  }
  if (n.nhs_number.present()) {
    std::string digits;
    if (std::string why = CheckNhsNumber(n.nhs_number.text, &digits); !why.empty()) {
      out_.Problem(n.nhs_number.where, why);
    } else {
      n.nhs_number.text = digits;
    }
  }
  if (out_.problems().size() != before) return false;

  auto it = nominals_.find(n.id.text);
  if (it == nominals_.end()) {
    std::string id = n.id.text;
    nominals_.emplace(std::move(id), std::move(n));
    return true;
  }
  const Nominal& first = it->second;
  const bool same = first.surname.text == n.surname.text &&
                    first.forenames.text == n.forenames.text && first.dob.text == n.dob.text &&
                    first.address.text == n.address.text &&
                    first.postcode.text == n.postcode.text && first.pnc_id.text == n.pnc_id.text &&
                    first.nhs_number.text == n.nhs_number.text;
  if (!repeat_ok) {
    out_.Problem(n.id.where,
                 "nominal \"" + n.id.text + "\" is defined twice (first at " + first.where + ")");
  } else if (!same) {
    out_.Problem(n.where, "nominal \"" + n.id.text + "\" has other details than at " + first.where);
  }
  return false;
}

void NicheBuilder::Finish() {
  // Each item is used once: its texts move into the record.
  out_.Reserve(items_.size());
  for (Item& item : items_) BuildItem(item);
}

void NicheBuilder::BuildItem(Item& item) {
  const size_t before = out_.problems().size();
  auto problem = [&](const Value& v, std::string what) { out_.Problem(v.where, std::move(what)); };
  auto required = [&](const Value& v, std::string_view what) {
    if (!v.present()) problem(v, "required: " + std::string(what));
    return v.present();
  };
  auto date = [&](const Value& v, bool needed,
                  std::string_view what) -> std::optional<std::string> {
    if (!v.present()) {
      if (needed) problem(v, "required: " + std::string(what));
      return std::nullopt;
    }
    if (!IsIsoDate(v.text)) {
      problem(v, "not a date (YYYY-MM-DD): \"" + Excerpt(v.text) + "\"");
      return std::nullopt;
    }
    return v.text;
  };

  record::Record r;
  if (required(item.id, "the record's id") &&
      (!IsPrintableAscii(item.id.text) || item.id.text.size() > 128)) {
    problem(item.id, "an id is 1 to 128 printable ASCII characters");
  }
  int64_t version = 1;
  if (item.version.present()) {
    if (auto v = ParseInteger(item.version.text, 1, INT64_MAX / 2)) {
      version = *v;
    } else {
      problem(item.version,
              "a version is a whole number from 1: \"" + Excerpt(item.version.text) + "\"");
    }
  }
  std::string recorded_at;
  if (required(item.recorded, "when it was recorded (RFC 3339 with a zone)")) {
    if (NormalizeTimestampInPlace(&item.recorded.text)) {
      recorded_at = std::move(item.recorded.text);
    } else {
      problem(item.recorded, "not a timestamp with a zone, such as 2018-10-31T09:12:00Z: \"" +
                                 Excerpt(item.recorded.text) + "\"");
    }
  }
  const Nominal* nominal = nullptr;
  if (required(item.nominal, "the nominal it is about")) {
    auto it = nominals_.find(item.nominal.text);
    if (it == nominals_.end()) {
      problem(item.nominal, "no nominal \"" + Excerpt(item.nominal.text) + "\" in the export");
    } else {
      nominal = &it->second;
    }
  }

  // Police records are criminal offence data (UK GDPR Art 10) about an identified person
  // (Schedule 12A paragraphs 1 and 2); anything kept to prevent or detect crime adds 7.
  r.classification.special_category = false;
  r.classification.criminal_offence = true;
  r.classification.schedule12a = {1, 2, 7};
  r.classification.handling = "P";

  switch (item.type) {
    case ItemType::kOccurrence: {
      r.kind = record::Kind::kOccurrence;
      required(item.occurrence_type(), "the occurrence type");
      required(item.summary(), "the summary");
      // The texts are normalised in place and then moved into the body.
      bool occurred = false;
      if (required(item.occurred_at(), "when it occurred")) {
        occurred = DateOrTimestampInPlace(&item.occurred_at().text);
        if (!occurred) {
          problem(item.occurred_at(), "not a date or a timestamp with a zone: \"" +
                                          Excerpt(item.occurred_at().text) + "\"");
        }
      }
      nlohmann::json log;  // null unless there are entries: no array for an item without any
      if (!item.log.empty()) {
        log = nlohmann::json::array();
        log.get_ref<nlohmann::json::array_t&>().reserve(item.log.size());
      }
      for (size_t i = 0; i < item.log.size(); ++i) {
        LogEntry& e = item.log[i];
        bool at = false;
        if (required(e.at, "when the log entry was made")) {
          at = DateOrTimestampInPlace(&e.at.text);
          if (!at)
            problem(e.at, "not a date or a timestamp with a zone: \"" + Excerpt(e.at.text) + "\"");
        }
        required(e.text, "the log entry's text");
        if (at) {
          nlohmann::json entry = nlohmann::json::object();
          Put(entry, "at", std::move(e.at.text));
          Put(entry, "text", std::move(e.text.text));
          log.push_back(std::move(entry));
        }
      }
      std::optional<std::string> postcode;
      if (item.location_postcode().present()) {
        postcode = record::NormalisePostcode(item.location_postcode().text);
        if (!postcode) {
          problem(item.location_postcode(),
                  "not a UK postcode: \"" + Excerpt(item.location_postcode().text) + "\"");
        }
      }
      // In key order (see Put).
      if (!log.empty()) Put(r.body, "enquiry_log", std::move(log));
      if (postcode) Put(r.body, "location_postcode", std::move(*postcode));
      Put(r.body, "occurred_at", occurred ? std::move(item.occurred_at().text) : std::string());
      Put(r.body, "occurrence_type", std::move(item.occurrence_type().text));
      if (item.outcome().present()) Put(r.body, "outcome", std::move(item.outcome().text));
      Put(r.body, "summary", std::move(item.summary().text));
      break;
    }
    case ItemType::kWarningMarker: {
      r.kind = record::Kind::kFlag;
      const Marker* marker = nullptr;
      if (required(item.marker_type(), "the marker type (CSE, CCE or MISSING)")) {
        const std::string code = ToUpperAscii(item.marker_type().text);
        for (const Marker& m : kMarkers) {
          if (m.code == code) marker = &m;
        }
        if (marker == nullptr) {
          problem(item.marker_type(), "unknown marker type \"" + Excerpt(item.marker_type().text) +
                                          "\" (expected CSE, CCE or MISSING)");
        }
      }
      std::optional<std::string> level;
      if (item.level().present()) {
        const std::string l = ToLowerAscii(item.level().text);
        if (l == "low" || l == "medium" || l == "high") {
          level = l;
        } else {
          problem(item.level(), "unknown risk level \"" + Excerpt(item.level().text) +
                                    "\" (expected LOW, MEDIUM or HIGH)");
        }
      } else if (marker != nullptr && marker->needs_level) {
        problem(item.level(), "required: the risk level (LOW, MEDIUM or HIGH) of a " +
                                  std::string(marker->code) + " marker");
      }
      const auto start = date(item.start(), true, "the start date");
      const auto review = date(item.review(), false, "");
      const auto end = date(item.end(), false, "");
      if (start && end && *end < *start) {
        problem(item.end(), "ends (" + *end + ") before it starts (" + *start + ")");
      }
      // A marker without a status is current until it has an end date.
      std::string status = end ? "inactive" : "active";
      if (item.status().present()) {
        const std::string s = ToUpperAscii(item.status().text);
        if (s == "ACTIVE") {
          status = "active";
        } else if (s == "INACTIVE") {
          status = "inactive";
        } else if (s == "ENTERED_IN_ERROR") {
          status = "entered_in_error";
        } else {
          problem(item.status(), "unknown status \"" + Excerpt(item.status().text) +
                                     "\" (expected ACTIVE, INACTIVE or ENTERED_IN_ERROR)");
        }
      }
      if (marker != nullptr && !marker->needs_level) {
        // Going missing is not itself crime-prevention information: paragraphs 1 and 2 only.
        r.classification.schedule12a = {1, 2};
      }
      FlagFields f;
      f.type = marker != nullptr ? std::string(marker->flag_type) : "";
      f.level = level;
      f.status = status;
      f.start = start.value_or("");
      f.end = end;
      f.review_by = review;
      f.owner_agency = context_.agency;
      if (item.note().present()) f.note = std::move(item.note().text);
      FlagBody(std::move(f), r.body);
      break;
    }
    case ItemType::kIntelligence: {
      r.kind = record::Kind::kOccurrence;
      const std::string source = ToUpperAscii(item.source_grade().text);
      const std::string info = item.information_grade().text;
      const std::string handling = ToUpperAscii(item.handling().text);
      if (required(item.source_grade(), "the source evaluation (A, B or C)") && source != "A" &&
          source != "B" && source != "C") {
        problem(item.source_grade(), "source evaluation is A, B or C, not \"" +
                                         Excerpt(item.source_grade().text) + "\"");
      }
      if (required(item.information_grade(), "the information assessment (1 to 5)") &&
          !ParseInteger(info, 1, 5)) {
        problem(item.information_grade(),
                "information assessment is 1 to 5, not \"" + Excerpt(info) + "\"");
      }
      if (required(item.handling(), "the handling code (P or C)") && handling != "P" &&
          handling != "C") {
        problem(item.handling(),
                "handling code is P or C, not \"" + Excerpt(item.handling().text) + "\"");
      }
      required(item.text(), "the intelligence text");
      // Handling code C (sharing only under conditions) becomes the record's handling, which
      // policy restricts.
      r.classification.handling = handling == "C" ? "C" : "P";
      Put(r.body, "occurrence_type", "intelligence report");
      Put(r.body, "occurred_at", recorded_at);
      Put(r.body, "summary",
          "Graded " + source + info + handling + " (source " + source + ", information " + info +
              ", handling " + handling + ").\n" + item.text().text);
      break;
    }
  }
  if (out_.problems().size() != before || nominal == nullptr) return;

  if (nominal->nhs_number.present()) r.subject.nhs_number = nominal->nhs_number.text;
  r.subject.local_ids.reserve(nominal->pnc_id.present() ? 2 : 1);
  r.subject.local_ids.push_back({"police:" + context_.agency, nominal->id.text});
  if (nominal->pnc_id.present())
    r.subject.local_ids.push_back({"police:pnc", nominal->pnc_id.text});
  r.subject.family_name = nominal->surname.text;
  if (nominal->forenames.present()) r.subject.given_name = nominal->forenames.text;
  if (nominal->dob.present()) r.subject.birth_date = nominal->dob.text;
  if (nominal->postcode.present()) r.subject.postcode = nominal->postcode.text;

  r.source.agency = context_.agency;
  r.source.system = "niche";
  r.source.record_id = std::move(item.id.text);
  r.source.version = version;
  r.source.recorded_at = std::move(recorded_at);
  // Where each record field came from, for a problem CheckRecord finds in a value the checks
  // above let through. Only made for such a record.
  out_.AddLazy(std::move(r), item.where, [&] {
    BatchBuilder::FieldPositions fields;
    switch (item.type) {
      case ItemType::kOccurrence:
        for (size_t i = 0; i < item.log.size(); ++i) {
          fields.emplace_back("/body/enquiry_log/" + std::to_string(i) + "/text",
                              item.log[i].text.where);
        }
        fields.emplace_back("/body/occurrence_type", item.occurrence_type().where);
        fields.emplace_back("/body/summary", item.summary().where);
        fields.emplace_back("/body/outcome", item.outcome().where);
        fields.emplace_back("/body/enquiry_log", item.log_where.where);
        break;
      case ItemType::kWarningMarker:
        fields.emplace_back("/body/note", item.note().where);
        break;
      case ItemType::kIntelligence:
        fields.emplace_back("/body/summary", item.text().where);
        break;
    }
    fields.emplace_back("/subject/family_name", nominal->surname.where);
    fields.emplace_back("/subject/given_name", nominal->forenames.where);
    return fields;
  });
}

}  // namespace safegate::adapters::niche
