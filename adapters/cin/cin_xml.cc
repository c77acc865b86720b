#include "adapters/cin/cin_xml.h"

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <string>

#include "adapters/common/batch.h"
#include "adapters/common/text.h"
#include "adapters/common/xml_units.h"

namespace safegate::adapters {
namespace {

const XmlLayout& Layout() {
  static const XmlLayout kLayout = {
      {"/Message", "/Message/Children"},
      {"/Message/Header", "/Message/Children/Child"},
  };
  return kLayout;
}

struct Code {
  std::string_view code;
  std::string_view meaning;
};

// DfE CIN census code lists (children in need census guide).
constexpr Code kPrimaryNeed[] = {
    {"N0", "not stated"},
    {"N1", "abuse or neglect"},
    {"N2", "child's disability or illness"},
    {"N3", "parental disability or illness"},
    {"N4", "family in acute stress"},
    {"N5", "family dysfunction"},
    {"N6", "socially unacceptable behaviour"},
    {"N7", "low income"},
    {"N8", "absent parenting"},
    {"N9", "cases other than children in need"},
};
constexpr std::string_view kReferralSources[] = {"1A", "1B", "1C", "1D", "2A", "2B", "3A", "3B",
                                                 "3C", "3D", "3E", "3F", "4",  "5A", "5B", "5C",
                                                 "5D", "6",  "7",  "8",  "9",  "10"};
constexpr Code kAbuse[] = {
    {"NEG", "neglect"},   {"PHY", "physical"}, {"SAB", "sexual"},
    {"EMO", "emotional"}, {"MUL", "multiple"},
};

bool Among(std::initializer_list<std::string_view> names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool IsPrintableAscii(std::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7E) return false;
  }
  return true;
}

class ChildReader {
 public:
  ChildReader(const XmlNode& child, const IngestContext& context, BatchBuilder& out)
      : child_(child), context_(context), out_(out) {}

  void Read() {
    const size_t before = out_.problems().size();
    Known(child_, {"ChildIdentifiers", "ChildCharacteristics", "CINdetails"});
    const XmlNode* ids = child_.Child("ChildIdentifiers");
    if (ids == nullptr) {
      out_.Problem(child_.path + "/ChildIdentifiers", "required: the child's identifiers");
      return;
    }
    Known(*ids, {"LAchildID", "UPN", "FormerUPN", "UPNunknown", "PersonBirthDate",
                 "ExpectedPersonBirthDate", "GenderCurrent", "Sex", "PersonDeathDate"});
    const XmlNode* la_id = ids->Child("LAchildID");
    if (la_id == nullptr || la_id->text.empty()) {
      // Without it nothing links the records to a child the local authority can name.
      out_.Problem(ids->path + "/LAchildID", "required: the local authority's child id");
    } else if (!IsPrintableAscii(la_id->text) || la_id->text.size() > 64) {
      out_.Problem(la_id->path, "a child id is 1 to 64 printable ASCII characters");
    } else {
      child_id_ = la_id->text;
    }
    subject_.local_ids.push_back({"csc:" + context_.area, child_id_});
    subject_.birth_date = Date(ids->Child("PersonBirthDate"));

    const auto details = child_.ChildrenNamed("CINdetails");
    if (details.empty()) {
      out_.Warn(child_.path, "no CINdetails: nothing recorded about this child was ingested");
    }
    if (out_.problems().size() != before) return;  // every record would repeat the problem
    for (const XmlNode* d : details) ReadDetails(*d);
  }

 private:
  // Warns about elements the census does not define (they are ignored) and stray text.
  void Known(const XmlNode& node, std::initializer_list<std::string_view> names) {
    if (!node.text.empty() && !node.children.empty()) {
      out_.Warn(node.path, "stray text \"" + Excerpt(node.text) + "\" ignored");
    }
    for (const XmlNode& c : node.children) {
      if (!Among(names, c.name)) out_.Warn(c.path, "unknown element <" + c.name + "> ignored");
    }
  }

  // A date element's value: nullopt if absent or empty; a problem if not a date.
  std::optional<std::string> Date(const XmlNode* n) {
    if (n == nullptr || n->text.empty()) return std::nullopt;
    if (!n->children.empty()) {
      out_.Problem(n->path, "expected a date, found elements");
      return std::nullopt;
    }
    if (!IsIsoDate(n->text)) {
      out_.Problem(n->path, "not a date (YYYY-MM-DD): \"" + Excerpt(n->text) + "\"");
      return std::nullopt;
    }
    return n->text;
  }
  std::optional<std::string> RequiredDate(const XmlNode& parent, std::string_view name) {
    const XmlNode* n = parent.Child(name);
    if (n == nullptr || n->text.empty()) {
      out_.Problem(parent.path + "/" + std::string(name), "required");
      return std::nullopt;
    }
    return Date(n);
  }
  // `later` must not come before `earlier`: the record model refuses it, and a record with
  // its dates the wrong way round is not accurate enough to share.
  bool InOrder(const std::optional<std::string>& earlier, const XmlNode* later_node,
               const std::optional<std::string>& later, std::string_view earlier_name) {
    if (earlier && later && *later < *earlier) {
      out_.Problem(later_node->path,
                   *later + " is before " + std::string(earlier_name) + " " + *earlier);
      return false;
    }
    return true;
  }

  record::Record Base(record::Kind kind, std::string_view block, std::string_view date,
                      int64_t version, std::string_view recorded_on) const {
    record::Record r;
    r.kind = kind;
    r.subject = subject_;
    r.source.agency = context_.agency;
    r.source.system = "cin";
    r.source.record_id = DigestId("cin", {child_id_, block, date});
    r.source.version = version;
    r.source.recorded_at = StartOfDayUtc(recorded_on);
    // A children's social care case record: about an identified child (Schedule 12A
    // paragraphs 1 and 2); neither health nor criminal offence data.
    r.classification.special_category = false;
    r.classification.criminal_offence = false;
    r.classification.schedule12a = {1, 2};
    r.classification.handling = "P";
    return r;
  }

  void ReadDetails(const XmlNode& d) {
    Known(d, {"CINreferralDate", "ReferralSource", "PrimaryNeedCode", "CINclosureDate",
              "ReasonForClosure", "DateOfInitialCPC", "Assessments", "CINPlanDates", "Section47",
              "ReferralNFA", "ChildProtectionPlans", "PreProceedingsandFGDM"});
    const size_t before = out_.problems().size();
    const auto referral = RequiredDate(d, "CINreferralDate");
    const auto closure = Date(d.Child("CINclosureDate"));
    if (referral && closure && *closure < *referral) {
      out_.Warn(d.Child("CINclosureDate")->path,
                "closed (" + *closure + ") before the referral (" + *referral + ")");
    }
    if (out_.problems().size() != before) return;

    record::Record r = Base(record::Kind::kReferral, "referral", *referral, 1, *referral);
    std::string source = "not_recorded";
    if (const XmlNode* s = d.Child("ReferralSource"); s != nullptr && !s->text.empty()) {
      source = s->text;
      if (std::find(std::begin(kReferralSources), std::end(kReferralSources), source) ==
          std::end(kReferralSources)) {
        out_.Warn(s->path, "referral source \"" + Excerpt(source) + "\" is not a census code");
      }
    } else {
      out_.Warn(d.path + "/ReferralSource", "missing: recorded as not_recorded");
    }
    std::string reason = "Primary need not recorded";
    if (const XmlNode* n = d.Child("PrimaryNeedCode"); n != nullptr && !n->text.empty()) {
      const Code* need = nullptr;
      for (const Code& c : kPrimaryNeed) {
        if (c.code == n->text) need = &c;
      }
      if (need != nullptr) {
        reason = "Primary need " + n->text + ": " + std::string(need->meaning);
      } else {
        reason = "Primary need " + n->text;
        out_.Warn(n->path, "primary need \"" + Excerpt(n->text) + "\" is not a census code");
      }
    }
    Put(r.body, "referral_date", *referral);
    Put(r.body, "referral_source", std::move(source));
    Put(r.body, "reason", std::move(reason));
    if (const XmlNode* nfa = d.Child("ReferralNFA"); nfa != nullptr && !nfa->text.empty()) {
      if (nfa->text == "true" || nfa->text == "1") {
        Put(r.body, "nfa", true);
      } else if (nfa->text == "false" || nfa->text == "0") {
        Put(r.body, "nfa", false);
      } else {
        out_.Warn(nfa->path, "\"" + Excerpt(nfa->text) + "\" is not true, false, 1 or 0: ignored");
      }
    }
    out_.AddLazy(std::move(r), d.path, [&] {
      return BatchBuilder::FieldPositions{{"/body/referral_source", d.path + "/ReferralSource"}};
    });

    d.ForEachChild("Assessments", [&](const XmlNode& a) { ReadAssessment(a); });
    d.ForEachChild("CINPlanDates", [&](const XmlNode& p) { ReadCinPlan(p); });
    d.ForEachChild("Section47", [&](const XmlNode& s) { ReadSection47(s); });
    d.ForEachChild("ChildProtectionPlans", [&](const XmlNode& p) { ReadCpPlan(p); });
  }

  void ReadAssessment(const XmlNode& a) {
    Known(a, {"AssessmentActualStartDate", "AssessmentInternalReviewDate",
              "AssessmentAuthorisationDate", "FactorsIdentifiedAtAssessment"});
    const size_t before = out_.problems().size();
    const auto start = RequiredDate(a, "AssessmentActualStartDate");
    const XmlNode* auth_node = a.Child("AssessmentAuthorisationDate");
    const auto authorised = Date(auth_node);
    Date(a.Child("AssessmentInternalReviewDate"));
    InOrder(start, auth_node, authorised, "the assessment's start");
    nlohmann::json factors = nlohmann::json::array();
    const XmlNode* f = a.Child("FactorsIdentifiedAtAssessment");
    if (f != nullptr) {
      Known(*f, {"AssessmentFactors"});
      f->ForEachChild("AssessmentFactors", [&](const XmlNode& x) {
        if (!x.text.empty()) factors.push_back(x.text);
      });
    }
    // Where each factor came from, made only for a record that turns out not to be valid.
    auto fields = [&] {
      BatchBuilder::FieldPositions positions;
      if (f == nullptr) return positions;
      f->ForEachChild("AssessmentFactors", [&](const XmlNode& x) {
        if (x.text.empty()) return;
        positions.emplace_back("/body/factors/" + std::to_string(positions.size()), x.path);
      });
      return positions;
    };
    if (out_.problems().size() != before) return;
    record::Record r = Base(record::Kind::kAssessment, "assessment", *start, authorised ? 2 : 1,
                            authorised.value_or(*start));
    Put(r.body, "assessment_type", "child and family assessment");
    Put(r.body, "start", *start);
    Put(r.body, "authorised", OrNull(authorised));
    if (!factors.empty()) Put(r.body, "factors", std::move(factors));
    out_.AddLazy(std::move(r), a.path, fields);
  }

  void ReadCinPlan(const XmlNode& p) {
    Known(p, {"CINPlanStartDate", "CINPlanEndDate"});
    const size_t before = out_.problems().size();
    const auto start = RequiredDate(p, "CINPlanStartDate");
    const XmlNode* end_node = p.Child("CINPlanEndDate");
    const auto end = Date(end_node);
    InOrder(start, end_node, end, "the plan's start");
    if (out_.problems().size() != before) return;
    record::Record r =
        Base(record::Kind::kPlan, "cin-plan", *start, end ? 2 : 1, end.value_or(*start));
    Put(r.body, "plan_type", "cin");
    Put(r.body, "start", *start);
    Put(r.body, "end", OrNull(end));
    out_.Add(std::move(r), p.path);
  }

  void ReadSection47(const XmlNode& s) {
    Known(s, {"S47ActualStartDate", "InitialCPCtarget", "DateOfInitialCPC", "ICPCnotRequired"});
    const size_t before = out_.problems().size();
    const auto start = RequiredDate(s, "S47ActualStartDate");
    Date(s.Child("InitialCPCtarget"));
    const XmlNode* icpc_node = s.Child("DateOfInitialCPC");
    const auto icpc = Date(icpc_node);
    if (start && icpc && *icpc < *start) {
      out_.Warn(icpc_node->path,
                "conference (" + *icpc + ") before the enquiry began (" + *start + ")");
    }
    if (out_.problems().size() != before) return;
    std::optional<std::string> outcome;
    if (icpc) {
      outcome = "initial child protection conference on " + *icpc;
    } else if (const XmlNode* nr = s.Child("ICPCnotRequired");
               nr != nullptr && (nr->text == "true" || nr->text == "1")) {
      outcome = "initial child protection conference not required";
    }
    record::Record r = Base(record::Kind::kAssessment, "section47", *start, outcome ? 2 : 1,
                            icpc.value_or(*start));
    Put(r.body, "assessment_type", "section 47 enquiry");
    Put(r.body, "start", *start);
    Put(r.body, "authorised", nullptr);
    if (outcome) Put(r.body, "outcome", std::move(*outcome));
    out_.Add(std::move(r), s.path);
  }

  void ReadCpPlan(const XmlNode& p) {
    Known(p, {"CPPstartDate", "CPPendDate", "InitialCategoryOfAbuse", "LatestCategoryOfAbuse",
              "NumberOfPreviousCPP", "Reviews"});
    const size_t before = out_.problems().size();
    const auto start = RequiredDate(p, "CPPstartDate");
    const XmlNode* end_node = p.Child("CPPendDate");
    const auto end = Date(end_node);
    InOrder(start, end_node, end, "the plan's start");
    nlohmann::json reviews = nlohmann::json::array();
    std::string latest = start.value_or("");
    p.ForEachChild("Reviews", [&](const XmlNode& rv) {
      Known(rv, {"CPPreviewDate"});
      rv.ForEachChild("CPPreviewDate", [&](const XmlNode& d) {
        if (auto date = Date(&d)) {
          latest = std::max(latest, *date);
          reviews.push_back(std::move(*date));
        }
      });
    });
    std::optional<std::string> category;
    const XmlNode* cat = p.Child("LatestCategoryOfAbuse");
    if (cat == nullptr || cat->text.empty()) cat = p.Child("InitialCategoryOfAbuse");
    if (cat != nullptr && !cat->text.empty()) {
      for (const Code& c : kAbuse) {
        if (c.code == cat->text) category = std::string(c.meaning);
      }
      if (!category) {
        out_.Warn(cat->path, "category of abuse \"" + Excerpt(cat->text) +
                                 "\" is not a census code: left out");
      }
    }
    if (out_.problems().size() != before) return;
    if (end) latest = std::max(latest, *end);

    // Each review held and the end of the plan are new versions of the plan's record.
    record::Record plan = Base(record::Kind::kPlan, "cp-plan", *start,
                               1 + static_cast<int64_t>(reviews.size()) + (end ? 1 : 0), latest);
    Put(plan.body, "plan_type", "cp");
    Put(plan.body, "start", *start);
    Put(plan.body, "end", OrNull(end));
    if (category) Put(plan.body, "category_of_abuse", std::move(*category));
    if (!reviews.empty()) Put(plan.body, "review_dates", std::move(reviews));
    out_.Add(std::move(plan), p.path);

    // The plan also stands as a flag, the shape a health or police flag query answers with
    // (as CP-IS shows a child protection plan).
    record::Record flag =
        Base(record::Kind::kFlag, "cp-plan-flag", *start, end ? 2 : 1, end.value_or(*start));
    FlagFields f;
    f.type = "cp_plan";
    f.status = end ? "inactive" : "active";
    f.start = *start;
    f.end = end;
    f.owner_agency = context_.agency;
    FlagBody(std::move(f), flag.body);
    out_.Add(std::move(flag), p.path);
  }

  const XmlNode& child_;
  const IngestContext& context_;
  BatchBuilder& out_;
  std::string child_id_;
  record::Subject subject_;
};

class Handler : public XmlUnitHandler {
 public:
  Handler(const IngestContext& context, BatchBuilder& out) : context_(context), out_(out) {}

  void OnUnit(std::string_view unit_path, XmlNode& unit) override {
    if (unit_path == "/Message/Header") {
      ++headers_;
      return;  // collection year, LA number, software: nothing a record needs
    }
    ChildReader(unit, context_, out_).Read();
  }
  void OnUnexpected(const std::string& path, int) override {
    out_.Warn(path, "not part of the CIN census message: ignored");
  }
  void OnStrayText(const std::string& path, std::string_view text) override {
    out_.Warn(path, "stray text \"" + Excerpt(text) + "\" ignored");
  }
  int headers() const { return headers_; }

 private:
  const IngestContext& context_;
  BatchBuilder& out_;
  int headers_ = 0;
};

}  // namespace

Result<ParsedBatch> CinXmlAdapter::Parse(std::string_view input,
                                         const IngestContext& context) const {
  BatchBuilder out(Name());
  Handler handler(context, out);
  if (ReadXmlUnits(input, Layout(), handler, out.problems()) && handler.headers() == 0) {
    out.Warn("/Message/Header", "missing: the file does not say which return it is");
  }
  return out.Finish();
}

}  // namespace safegate::adapters
