#include "tools/gen_exports/generator.h"

#include <array>
#include <cstdio>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace safegate::tools {
namespace {

constexpr std::array<std::string_view, 24> kGiven = {
    "Amira",  "Jade",   "Oliver", "Aisha",  "Liam",    "Chloe", "Zain",   "Ellie",
    "Harvey", "Maryam", "Kian",   "Sophie", "Ibrahim", "Lacey", "Tyler",  "Hafsa",
    "Mason",  "Ruby",   "Bilal",  "Keira",  "Reece",   "Noor",  "Callum", "Paige"};
constexpr std::array<std::string_view, 20> kFamily = {
    "Hussain", "Walker", "Khan",   "Smith", "Ahmed",  "Robinson", "Ali",
    "Wood",    "Begum",  "Taylor", "Iqbal", "Wright", "Mahmood",  "Thompson",
    "Akhtar",  "Holmes", "Shah",   "Booth", "Riaz",   "Kelly"};
constexpr std::string_view kInward = "ABDEFGHJLNPQRSTUWXYZ";
constexpr std::array<std::string_view, 4> kOccurrenceTypes = {
    "Child sexual exploitation", "Missing person", "Assault", "Concern for safety"};

// A small, portable generator (SplitMix64): the same seed gives the same exports everywhere,
// which std::uniform_int_distribution does not promise.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  int Below(int n) { return static_cast<int>(Next() % static_cast<uint64_t>(n)); }
  bool Chance(int percent) { return Below(100) < percent; }

 private:
  uint64_t s_;
};

struct Date {
  int y = 2000, m = 1, d = 1;
  int64_t Days() const {  // days since 1970-01-01
    const int yy = y - (m <= 2);
    const int64_t era = yy / 400;
    const int64_t yoe = yy - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
  }
  static Date FromDays(int64_t z) {
    z += 719468;
    const int64_t era = z / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    Date out;
    out.d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
    out.m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
    out.y = static_cast<int>(yoe + era * 400 + (out.m <= 2));
    return out;
  }
  Date Plus(int64_t days) const { return FromDays(Days() + days); }
  std::string Str() const {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
    return buf;
  }
};

bool ValidNhs(const std::string& d) {
  int sum = 0;
  for (size_t i = 0; i < 9; ++i) sum += (d[i] - '0') * static_cast<int>(10 - i);
  int check = 11 - sum % 11;
  if (check == 11) check = 0;
  return check != 10 && check == d[9] - '0';
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string CsvField(std::string_view s) {
  if (s.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string Misspell(std::string name, Rng& rng) {
  if (name.size() < 4) return name + name.back();
  const size_t i = 1 + static_cast<size_t>(rng.Below(static_cast<int>(name.size()) - 2));
  if (rng.Chance(50)) {
    std::swap(name[i], name[i + 1]);  // transposed letters
  } else {
    name.erase(i, 1);  // a dropped letter
  }
  return name;
}

// Niche CSV rows built by column name, so a row cannot drift out of line with the header.
constexpr std::array<std::string_view, 23> kNicheColumns = {"record_type",
                                                            "id",
                                                            "version",
                                                            "nominal_id",
                                                            "surname",
                                                            "forenames",
                                                            "dob",
                                                            "postcode",
                                                            "nhs_number",
                                                            "recorded_at",
                                                            "type",
                                                            "occurred_at",
                                                            "summary",
                                                            "enquiry_log",
                                                            "outcome",
                                                            "level",
                                                            "start",
                                                            "review",
                                                            "end",
                                                            "source_evaluation",
                                                            "information_assessment",
                                                            "handling_code",
                                                            "text"};

std::string NicheHeader() {
  std::string out;
  for (std::string_view c : kNicheColumns) {
    if (!out.empty()) out += ',';
    out += c;
  }
  out += '\n';
  return out;
}

std::string NicheRow(const std::vector<std::pair<std::string_view, std::string>>& values) {
  std::string out;
  for (size_t i = 0; i < kNicheColumns.size(); ++i) {
    if (i > 0) out += ',';
    for (const auto& [k, v] : values) {
      if (k == kNicheColumns[i]) out += CsvField(v);
    }
  }
  return out + "\n";
}

struct CpPlan {
  Date start;
  bool ended = false;
  Date end;
};

struct Child {
  std::string given, family, nhs, la_id, postcode;
  Date dob;
  bool csc = false, police = false, health = false;
  std::vector<CpPlan> cp_plans;  // from the CIN blocks, mirrored by health and CP-IS
  bool looked_after = false;
  Date looked_after_start;
};

}  // namespace

GeneratedExports GenerateExports(const GenOptions& o) {
  Rng rng(o.seed);
  GeneratedExports out;
  std::vector<Child> children(static_cast<size_t>(o.children > 0 ? o.children : 0));
  // 999-range test numbers (999 000 0001 to 999 999 9999), each seed starting at its own
  // place in the range and wrapping inside it, so every seed gives 10-digit numbers.
  constexpr uint64_t kNhsBase = 9990000000ULL, kNhsRange = 10000000ULL;
  uint64_t nhs_next = (1 + (o.seed % 1000) * 100000) % kNhsRange;
  std::string prefix;
  for (char c : o.area.substr(0, 3)) prefix += static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);

  for (size_t i = 0; i < children.size(); ++i) {
    Child& c = children[i];
    c.given = std::string(kGiven[static_cast<size_t>(rng.Below(kGiven.size()))]);
    c.family = std::string(kFamily[static_cast<size_t>(rng.Below(kFamily.size()))]);
    c.dob = {2004 + rng.Below(19), 1 + rng.Below(12), 1 + rng.Below(28)};
    do {
      c.nhs = std::to_string(kNhsBase + nhs_next);
      nhs_next = (nhs_next + 1) % kNhsRange;
    } while (!ValidNhs(c.nhs));
    char id[32];
    std::snprintf(id, sizeof id, "%s-%06zu", prefix.c_str(), i + 1);
    c.la_id = id;
    c.postcode = "BD" + std::to_string(1 + rng.Below(22)) + " " + std::to_string(rng.Below(10)) +
                 kInward[static_cast<size_t>(rng.Below(kInward.size()))] +
                 kInward[static_cast<size_t>(rng.Below(kInward.size()))];
    c.csc = rng.Chance(80);
    c.police = rng.Chance(40);
    c.health = rng.Chance(50);
    if (!c.csc && !c.police && !c.health) c.csc = true;  // every child is known somewhere
  }

  nlohmann::json manifest = {
      {"area", o.area}, {"seed", o.seed}, {"children", nlohmann::json::array()}};

  // CSC: the CIN census.
  std::string cin =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Message>\n  <Header>\n"
      "    <CollectionDetails><Collection>CIN</Collection><Year>2024</Year>"
      "<ReferenceDate>2024-03-31</ReferenceDate></CollectionDetails>\n"
      "    <Source><SourceLevel>L</SourceLevel><LEA>380</LEA>"
      "<SoftwareCode>gen-exports</SoftwareCode><Release>1</Release>"
      "<SerialNo>001</SerialNo><DateTime>2024-05-01T09:00:00</DateTime></Source>\n"
      "  </Header>\n  <Children>\n";
  for (Child& c : children) {
    if (!c.csc) continue;
    cin += "    <Child>\n      <ChildIdentifiers><LAchildID>" + c.la_id + "</LAchildID><UPN>A" +
           c.nhs.substr(1) + "12</UPN><PersonBirthDate>" + c.dob.Str() +
           "</PersonBirthDate><GenderCurrent>" + std::to_string(1 + rng.Below(2)) +
           "</GenderCurrent></ChildIdentifiers>\n";
    const int referrals = 1 + (rng.Chance(25) ? 1 : 0);
    Date referral = c.dob.Plus(200 + rng.Below(1500));
    for (int r = 0; r < referrals; ++r) {
      cin += "      <CINdetails><CINreferralDate>" + referral.Str() +
             "</CINreferralDate><ReferralSource>" + (rng.Chance(50) ? "5A" : "1B") +
             "</ReferralSource><PrimaryNeedCode>N" + std::to_string(rng.Below(10)) +
             "</PrimaryNeedCode><ReferralNFA>false</ReferralNFA>";
      ++out.cin_records;
      if (rng.Chance(60)) {
        const Date start = referral.Plus(3);
        cin += "<Assessments><AssessmentActualStartDate>" + start.Str() +
               "</AssessmentActualStartDate><AssessmentAuthorisationDate>" +
               start.Plus(30 + rng.Below(15)).Str() +
               "</AssessmentAuthorisationDate><FactorsIdentifiedAtAssessment><AssessmentFactors>"
               "4B</AssessmentFactors></FactorsIdentifiedAtAssessment></Assessments>";
        ++out.cin_records;
      }
      if (rng.Chance(30)) {
        const Date s47 = referral.Plus(5);
        const Date icpc = s47.Plus(10 + rng.Below(5));
        cin += "<Section47><S47ActualStartDate>" + s47.Str() +
               "</S47ActualStartDate>"
               "<DateOfInitialCPC>" +
               icpc.Str() + "</DateOfInitialCPC></Section47>";
        ++out.cin_records;
        if (rng.Chance(70)) {
          CpPlan plan{icpc, rng.Chance(40), icpc.Plus(180 + rng.Below(200))};
          cin += "<ChildProtectionPlans><CPPstartDate>" + plan.start.Str() + "</CPPstartDate>" +
                 (plan.ended ? "<CPPendDate>" + plan.end.Str() + "</CPPendDate>" : "") +
                 "<LatestCategoryOfAbuse>" + (rng.Chance(50) ? "NEG" : "EMO") +
                 "</LatestCategoryOfAbuse><Reviews><CPPreviewDate>" + plan.start.Plus(90).Str() +
                 "</CPPreviewDate></Reviews></ChildProtectionPlans>";
          out.cin_records += 2;  // the plan and its flag
          c.cp_plans.push_back(plan);
        }
      } else if (rng.Chance(30)) {
        cin += "<CINPlanDates><CINPlanStartDate>" + referral.Plus(40).Str() +
               "</CINPlanStartDate></CINPlanDates>";
        ++out.cin_records;
      }
      cin += "</CINdetails>\n";
      referral = referral.Plus(400 + rng.Below(300));
    }
    cin += "    </Child>\n";
    if (rng.Chance(10)) {
      c.looked_after = true;
      c.looked_after_start = c.dob.Plus(1000 + rng.Below(2000));
    }
  }
  cin += "  </Children>\n</Message>\n";
  out.cin_xml = std::move(cin);

  // CSC's CP-IS upload: its child protection plans and looked-after children.
  out.cpis_csv =
      "nhs_number,plan_type,start_date,end_date,responsible_authority,"
      "office_hours_phone,out_of_hours_phone,given_name,family_name,birth_date\n";
  for (const Child& c : children) {
    auto row = [&](std::string_view type, const Date& start, const std::string& end) {
      out.cpis_csv += c.nhs + "," + std::string(type) + "," + start.Str() + "," + end +
                      ",City of Bradford Metropolitan District Council,01274 435600,01274 431010," +
                      c.given + "," + c.family + "," + c.dob.Str() + "\n";
      ++out.cpis_records;
    };
    for (const CpPlan& p : c.cp_plans) row("CPP", p.start, p.ended ? p.end.Str() : "");
    if (c.looked_after) row("LAC", c.looked_after_start, "");
  }

  // Police: Niche nominals and items, with the noise of a real police system.
  std::string nominals, occurrences, markers, intel;
  out.niche_csv = NicheHeader();
  int seq = 0;
  for (size_t i = 0; i < children.size(); ++i) {
    Child& c = children[i];
    nlohmann::json m = {{"given_name", c.given},     {"family_name", c.family},
                        {"birth_date", c.dob.Str()}, {"nhs_number", c.nhs},
                        {"postcode", c.postcode},    {"noise", nlohmann::json::array()}};
    if (c.csc) m["csc_id"] = c.la_id;
    if (c.police) {
      const std::string nominal_id = "N-" + std::to_string(100000 + i);
      m["police_id"] = nominal_id;
      std::string given = c.given, family = c.family;
      Date dob = c.dob;
      if (rng.Chance(10)) {
        family = Misspell(family, rng);
        m["noise"].push_back("misspelt family name: " + family);
      }
      if (rng.Chance(5)) {
        given = Misspell(given, rng);
        m["noise"].push_back("misspelt given name: " + given);
      }
      if (dob.d <= 12 && dob.d != dob.m && rng.Chance(8)) {
        std::swap(dob.d, dob.m);
        m["noise"].push_back("day and month swapped: " + dob.Str());
      }
      const bool with_nhs = rng.Chance(20);
      if (!with_nhs) m["noise"].push_back("police hold no NHS number");
      nominals += "    <Nominal id=\"" + nominal_id + "\"><Surname>" + XmlEscape(family) +
                  "</Surname><Forenames>" + XmlEscape(given) + "</Forenames><DateOfBirth>" +
                  dob.Str() + "</DateOfBirth><Postcode>" + c.postcode + "</Postcode>" +
                  (with_nhs ? "<NHSNumber>" + c.nhs + "</NHSNumber>" : "") + "</Nominal>\n";
      auto row = [&](std::string_view type, const std::string& id, const std::string& recorded,
                     std::vector<std::pair<std::string_view, std::string>> values) {
        values.insert(values.end(), {{"record_type", std::string(type)},
                                     {"id", id},
                                     {"nominal_id", nominal_id},
                                     {"surname", family},
                                     {"forenames", given},
                                     {"dob", dob.Str()},
                                     {"postcode", c.postcode},
                                     {"nhs_number", with_nhs ? c.nhs : ""},
                                     {"recorded_at", recorded}});
        out.niche_csv += NicheRow(values);
      };
      const int n_occ = 1 + rng.Below(3);
      for (int k = 0; k < n_occ; ++k) {
        const Date when = c.dob.Plus(3650 + rng.Below(2000));
        const std::string id =
            "OCC-" + std::to_string(when.y) + "-" + std::to_string(100000 + ++seq);
        const std::string type(
            kOccurrenceTypes[static_cast<size_t>(rng.Below(kOccurrenceTypes.size()))]);
        const std::string at = when.Str() + "T21:30:00Z";
        const std::string summary = "Reported by a member of the public; officers attended.";
        const std::string log1 = when.Plus(1).Str() + "T09:00:00Z";
        occurrences += "    <Occurrence id=\"" + id + "\" nominal=\"" + nominal_id + "\"><Type>" +
                       type + "</Type><OccurredAt>" + at + "</OccurredAt><Recorded>" + log1 +
                       "</Recorded><Summary>" + summary + "</Summary><EnquiryLog><Entry at=\"" +
                       log1 +
                       "\">Referral made to CSC, strategy discussion requested.</Entry>"
                       "</EnquiryLog><Outcome>Referred to CSC</Outcome></Occurrence>\n";
        row("occurrence", id, log1,
            {{"type", type},
             {"occurred_at", at},
             {"summary", summary},
             {"enquiry_log", log1 + " Referral made to CSC, strategy discussion requested."},
             {"outcome", "Referred to CSC"}});
        ++out.niche_records;
      }
      if (rng.Chance(30)) {
        static constexpr std::array<std::string_view, 3> kLevels = {"LOW", "MEDIUM", "HIGH"};
        const Date start = c.dob.Plus(4000 + rng.Below(1500));
        const std::string id = "WM-" + std::to_string(500000 + ++seq);
        const std::string level(kLevels[static_cast<size_t>(rng.Below(3))]);
        const std::string recorded = start.Str() + "T10:00:00Z";
        markers += "    <WarningMarker id=\"" + id + "\" nominal=\"" + nominal_id +
                   "\"><Type>CSE</Type><Level>" + level + "</Level><Recorded>" + recorded +
                   "</Recorded><Start>" + start.Str() + "</Start><Review>" + start.Plus(90).Str() +
                   "</Review></WarningMarker>\n";
        row("warning_marker", id, recorded,
            {{"type", "CSE"},
             {"level", level},
             {"start", start.Str()},
             {"review", start.Plus(90).Str()}});
        ++out.niche_records;
      }
      if (rng.Chance(15)) {
        const Date start = c.dob.Plus(4000 + rng.Below(1500));
        const std::string id = "WM-" + std::to_string(500000 + ++seq);
        const std::string recorded = start.Str() + "T18:00:00Z";
        markers += "    <WarningMarker id=\"" + id + "\" nominal=\"" + nominal_id +
                   "\"><Type>MISSING</Type><Recorded>" + recorded + "</Recorded><Start>" +
                   start.Str() + "</Start><End>" + start.Plus(3).Str() + "</End></WarningMarker>\n";
        row("warning_marker", id, recorded,
            {{"type", "MISSING"}, {"start", start.Str()}, {"end", start.Plus(3).Str()}});
        ++out.niche_records;
      }
      if (rng.Chance(20)) {
        const Date when = c.dob.Plus(4000 + rng.Below(1500));
        const std::string id =
            "INT-" + std::to_string(when.y) + "-" + std::to_string(100000 + ++seq);
        const std::string handling = rng.Chance(30) ? "C" : "P";
        const std::string recorded = when.Str() + "T14:00:00Z";
        const std::string text =
            "Subject seen with older males near a takeaway on several evenings.";
        intel += "    <IntelligenceReport id=\"" + id + "\" nominal=\"" + nominal_id +
                 "\"><Recorded>" + recorded +
                 "</Recorded><Grading source=\"B\" information=\"2\""
                 " handling=\"" +
                 handling + "\"/><Text>" + text + "</Text></IntelligenceReport>\n";
        row("intelligence", id, recorded,
            {{"source_evaluation", "B"},
             {"information_assessment", "2"},
             {"handling_code", handling},
             {"text", text}});
        ++out.niche_records;
      }
    }
    manifest["children"].push_back(std::move(m));
  }
  out.niche_xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<NicheExport>\n  <Nominals>\n" +
                  nominals + "  </Nominals>\n  <Occurrences>\n" + occurrences +
                  "  </Occurrences>\n  <WarningMarkers>\n" + markers +
                  "  </WarningMarkers>\n  <IntelligenceReports>\n" + intel +
                  "  </IntelligenceReports>\n</NicheExport>\n";

  // Health: the hospital's flags, as a FHIR Bundle.
  nlohmann::json entries = nlohmann::json::array();
  int flag_seq = 0;
  auto flag = [&](const Child& c, std::string_view code, std::string_view display,
                  const std::string& start, const nlohmann::json& extensions, bool active) {
    nlohmann::json f = {
        {"resourceType", "Flag"},
        {"id", o.health_agency + "-flag-" + std::to_string(++flag_seq)},
        {"meta", {{"versionId", "1"}, {"lastUpdated", start + "T12:00:00Z"}}},
        {"status", active ? "active" : "inactive"},
        {"category",
         {{{"coding",
            {{{"system", "http://terminology.hl7.org/CodeSystem/flag-category"},
              {"code", "safety"}}}}}}},
        {"code",
         {{"coding",
           {{{"system", "http://snomed.info/sct"}, {"code", code}, {"display", display}}}}}},
        {"subject",
         {{"identifier", {{"system", "https://fhir.nhs.uk/Id/nhs-number"}, {"value", c.nhs}}}}},
        {"period", {{"start", start}}}};
    if (!extensions.empty()) f["extension"] = extensions;
    entries.push_back(
        {{"fullUrl", "urn:uuid:00000000-0000-4000-8000-" + std::to_string(100000000000 + flag_seq)},
         {"resource", std::move(f)}});
    ++out.fhir_records;
  };
  for (const Child& c : children) {
    if (!c.health) continue;
    for (const CpPlan& p : c.cp_plans) {
      if (!p.ended)
        flag(c, "342191000000101", "Subject to child protection plan", p.start.Str(), {}, true);
    }
    if (rng.Chance(20)) {
      const std::string level = rng.Chance(50) ? "medium" : "high";
      const Date start = c.dob.Plus(4200 + rng.Below(1000));
      flag(c, "716565009", "At increased risk of child sexual exploitation", start.Str(),
           {{{"url", "https://safegate.invalid/fhir/StructureDefinition/risk-level"},
             {"valueCode", level}},
            {{"url", "https://safegate.invalid/fhir/StructureDefinition/review-date"},
             {"valueDate", start.Plus(90).Str()}}},
           true);
    }
    if (rng.Chance(30)) {
      flag(c, "836881000000105", "Child is cause for safeguarding concern",
           c.dob.Plus(500 + rng.Below(3000)).Str(), {}, rng.Chance(70));
    }
  }
  out.fhir_bundle =
      nlohmann::json({{"resourceType", "Bundle"}, {"type", "collection"}, {"entry", entries}})
          .dump(1);
  out.manifest = manifest.dump(1);
  return out;
}

}  // namespace safegate::tools
