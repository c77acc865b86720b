#include "adapters/niche/niche_csv.h"
#include "adapters/niche/niche_xml.h"

#include "adapters/test_support.h"

namespace safegate::adapters {
namespace {

using testing::DocExample;
using ::testing::ElementsAre;
using testing::ParseWith;
using testing::ProblemAt;
using ::testing::UnorderedElementsAre;

std::string Wrap(const std::string& nominals, const std::string& rest) {
  return "<NicheExport><Nominals>" + nominals + "</Nominals>" + rest + "</NicheExport>";
}
const char kNominal[] =
    "<Nominal id=\"N-1\"><Surname>Walker</Surname><Forenames>Jade</Forenames></Nominal>";

// The records the doc example describes, checked field by field.
void ExpectDocRecords(const ParsedBatch& batch) {
  ASSERT_EQ(batch.records.size(), 4u);
  EXPECT_TRUE(batch.warnings.empty());

  const record::Record& occ = batch.records[0];
  EXPECT_EQ(occ.kind, record::Kind::kOccurrence);
  EXPECT_EQ(occ.source.agency, "wyp");
  EXPECT_EQ(occ.source.system, "niche");
  EXPECT_EQ(occ.source.record_id, "OCC-2018-001234");
  EXPECT_EQ(occ.source.version, 1);
  EXPECT_EQ(occ.source.recorded_at, "2018-10-31T09:12:00Z");
  EXPECT_EQ(occ.subject.local_ids, (std::vector<record::LocalId>{{"police:wyp", "N-100234"},
                                                                 {"police:pnc", "18/0123456X"}}));
  EXPECT_EQ(occ.subject.family_name, "Hussain");
  EXPECT_EQ(occ.subject.given_name, "Amira");
  EXPECT_EQ(occ.subject.birth_date, "2004-03-01");
  EXPECT_EQ(occ.subject.postcode, "BD3 9AB");
  EXPECT_EQ(occ.subject.nhs_number, "9990000042");
  EXPECT_TRUE(occ.classification.criminal_offence);
  EXPECT_FALSE(occ.classification.special_category);
  EXPECT_EQ(occ.classification.schedule12a, (std::vector<int>{1, 2, 7}));
  EXPECT_EQ(occ.classification.handling, "P");
  EXPECT_EQ(occ.body, nlohmann::json::parse(R"({
      "occurrence_type": "Child sexual exploitation",
      "occurred_at": "2018-10-30T21:40:00Z",
      "summary": "Found in a car with two adult males after being reported missing.",
      "enquiry_log": [
        {"at": "2018-10-31T10:05:00Z", "text": "Strategy discussion held with CSC."},
        {"at": "2018-11-02", "text": "Vehicle keeper identified; enquiries ongoing."}],
      "outcome": "Referred to CSC; Child Abduction Warning Notices served",
      "location_postcode": "BD1 1AA"})"));

  const record::Record& cse = batch.records[1];
  EXPECT_EQ(cse.kind, record::Kind::kFlag);
  EXPECT_EQ(cse.source.record_id, "WM-55501");
  EXPECT_EQ(cse.source.version, 2);
  EXPECT_EQ(cse.classification.schedule12a, (std::vector<int>{1, 2, 7}));
  EXPECT_EQ(cse.body, nlohmann::json::parse(R"({
      "type": "cse_risk", "level": "high", "status": "active", "start": "2018-10-31",
      "end": null, "review_by": "2019-01-31", "owner_agency": "wyp",
      "note": "Risk assessment review due with the CSE hub."})"));

  const record::Record& missing = batch.records[2];
  EXPECT_EQ(missing.subject.local_ids, (std::vector<record::LocalId>{{"police:wyp", "N-100871"}}));
  EXPECT_EQ(missing.body["type"], "missing");
  EXPECT_EQ(missing.body["level"], nullptr);
  EXPECT_EQ(missing.body["status"], "inactive");
  EXPECT_EQ(missing.body["end"], "2018-09-20");
  EXPECT_EQ(missing.classification.schedule12a, (std::vector<int>{1, 2}));

  const record::Record& intel = batch.records[3];
  EXPECT_EQ(intel.kind, record::Kind::kOccurrence);
  EXPECT_EQ(intel.classification.handling, "C");
  EXPECT_EQ(intel.body["occurrence_type"], "intelligence report");
  EXPECT_EQ(intel.body["occurred_at"], "2018-11-03T14:00:00Z");
  EXPECT_EQ(intel.body["summary"],
            "Graded B2C (source B, information 2, handling C).\n"
            "Subject seen regularly at an address linked to older males.");
}

TEST(NicheXml, DocExampleGivesExpectedRecords) {
  auto batch = ParseWith("niche-xml", DocExample("niche", "niche-xml"), "wyp");
  ASSERT_TRUE(batch.ok()) << testing::Describe(batch.status().problems());
  ExpectDocRecords(*batch);
}

TEST(NicheCsv, DocExampleGivesExpectedRecords) {
  auto batch = ParseWith("niche-csv", DocExample("niche", "niche-csv"), "wyp");
  ASSERT_TRUE(batch.ok()) << testing::Describe(batch.status().problems());
  ExpectDocRecords(*batch);
}

TEST(Niche, XmlAndCsvExamplesGiveTheSameRecords) {
  auto xml = ParseWith("niche-xml", DocExample("niche", "niche-xml"), "wyp");
  auto csv = ParseWith("niche-csv", DocExample("niche", "niche-csv"), "wyp");
  ASSERT_TRUE(xml.ok() && csv.ok());
  EXPECT_EQ(xml->records, csv->records);
}

TEST(NicheXml, ParsingTwiceGivesEqualRecords) {
  const std::string doc = DocExample("niche", "niche-xml");
  auto a = ParseWith("niche-xml", doc, "wyp");
  auto b = ParseWith("niche-xml", doc, "wyp");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->records, b->records);
  for (size_t i = 0; i < a->records.size(); ++i) {
    EXPECT_EQ(record::CanonicalJson(record::ToJson(a->records[i])),
              record::CanonicalJson(record::ToJson(b->records[i])));
  }
}

TEST(NicheXml, EveryProblemHasItsElementPath) {
  const std::string doc = Wrap(
      std::string(kNominal) +
          "<Nominal id=\"N-2\"><Forenames>X</Forenames><DateOfBirth>2004-02-30</DateOfBirth>"
          "<Postcode>not a postcode</Postcode><Shoe>9</Shoe></Nominal>",
      "<Occurrences>"
      "<Occurrence id=\"O-1\" "
      "nominal=\"N-1\"><Type>x</Type><Recorded>2018-01-01T00:00:00Z</Recorded>"
      "<OccurredAt>2018-01-01</OccurredAt><Summary>s</Summary></Occurrence>"
      "<Occurrence id=\"O-2\" nominal=\"N-9\" colour=\"red\"><Recorded>yesterday</Recorded>"
      "<OccurredAt>2018-01-01</OccurredAt><Summary>s</Summary><Summary>t</Summary>"
      "<EnquiryLog><Entry at=\"soon\">text</Entry><Note/></EnquiryLog></Occurrence>"
      "</Occurrences>"
      "<WarningMarkers><WarningMarker id=\"W-1\" nominal=\"N-1\" version=\"0\"><Type>CSE</Type>"
      "<Recorded>2018-01-01T00:00:00Z</Recorded><Start>2018-05-01</Start><End>2018-04-01</End>"
      "</WarningMarker>"
      "<WarningMarker id=\"W-2\" nominal=\"N-1\"><Type>FIREARMS</Type><Level>EXTREME</Level>"
      "<Status>MAYBE</Status><Recorded>2018-01-01T00:00:00Z</Recorded><Start>2018-05-01</Start>"
      "</WarningMarker></WarningMarkers>"
      "<IntelligenceReports><IntelligenceReport id=\"I-1\" nominal=\"N-1\">"
      "<Recorded>2018-01-01T00:00:00Z</Recorded><Grading source=\"E\" information=\"6\" "
      "handling=\"X\"/>"
      "</IntelligenceReport></IntelligenceReports>");
  auto batch = ParseWith("niche-xml", doc, "wyp");
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(batch.status().code(), ErrorCode::kInvalidInput);
  const std::string n2 = "/NicheExport/Nominals/Nominal[2]";
  const std::string o2 = "/NicheExport/Occurrences/Occurrence[2]";
  const std::string w1 = "/NicheExport/WarningMarkers/WarningMarker[1]";
  const std::string w2 = "/NicheExport/WarningMarkers/WarningMarker[2]";
  const std::string i1 = "/NicheExport/IntelligenceReports/IntelligenceReport[1]";
  EXPECT_THAT(
      batch.status().problems(),
      UnorderedElementsAre(
          ProblemAt(n2 + "/Shoe", "unknown element <Shoe>"), ProblemAt(n2 + "/Surname", "required"),
          ProblemAt(n2 + "/DateOfBirth", "not a date"),
          ProblemAt(n2 + "/Postcode", "not a UK postcode"),
          ProblemAt(o2 + "/@colour", "unknown attribute"),
          ProblemAt(o2 + "/Summary[2]", "may appear only once"),
          ProblemAt(o2 + "/EnquiryLog/Note", "expected <Entry>"),
          ProblemAt(o2 + "/Recorded", "not a timestamp"),
          ProblemAt(o2 + "/@nominal", "no nominal \"N-9\""), ProblemAt(o2 + "/Type", "required"),
          ProblemAt(o2 + "/EnquiryLog/Entry/@at", "not a date or a timestamp"),
          ProblemAt(w1 + "/@version", "a version is a whole number"),
          ProblemAt(w1 + "/Level", "required: the risk level"),
          ProblemAt(w1 + "/End", "before it starts"),
          ProblemAt(w2 + "/Type", "unknown marker type \"FIREARMS\""),
          ProblemAt(w2 + "/Level", "unknown risk level \"EXTREME\""),
          ProblemAt(w2 + "/Status", "unknown status \"MAYBE\""),
          ProblemAt(i1 + "/Grading/@source", "A, B or C"),
          ProblemAt(i1 + "/Grading/@information", "1 to 5"),
          ProblemAt(i1 + "/Grading/@handling", "P or C"), ProblemAt(i1 + "/Text", "required")))
      << testing::Describe(batch.status().problems());
}

TEST(NicheXml, StructureProblems) {
  auto batch = ParseWith("niche-xml",
                         "<NicheExport>junk<Nominals>" + std::string(kNominal) + kNominal +
                             "</Nominals><Vehicles/></NicheExport>",
                         "wyp");
  ASSERT_FALSE(batch.ok());
  EXPECT_THAT(
      batch.status().problems(),
      UnorderedElementsAre(ProblemAt("/NicheExport", "stray text \"junk\""),
                           ProblemAt("/NicheExport/Nominals/Nominal[2]/@id", "defined twice"),
                           ProblemAt("/NicheExport/Vehicles", "unknown element")))
      << testing::Describe(batch.status().problems());

  auto wrong_root = ParseWith("niche-xml", "<Message/>", "wyp");
  ASSERT_FALSE(wrong_root.ok());
  EXPECT_THAT(wrong_root.status().problems(),
              ElementsAre(ProblemAt("/Message", "expected <NicheExport>")));

  auto broken = ParseWith("niche-xml", "<NicheExport>\n<Nominals>\n</NicheExport>", "wyp");
  ASSERT_FALSE(broken.ok());
  EXPECT_THAT(broken.status().problems(),
              ElementsAre(ProblemAt("line 3, column 3", "mismatched tag")));
}

TEST(NicheXml, NominalMayComeAfterTheItemsAboutIt) {
  auto batch = ParseWith(
      "niche-xml",
      "<NicheExport><WarningMarkers><WarningMarker id=\"W\" nominal=\"N-1\"><Type>missing</Type>"
      "<Recorded>2018-01-01T00:00:00+00:00</Recorded><Start>2018-01-01</Start>"
      "<Status>entered_in_error</Status></WarningMarker></WarningMarkers>"
      "<Nominals>" +
          std::string(kNominal) + "</Nominals></NicheExport>",
      "wyp");
  ASSERT_TRUE(batch.ok()) << testing::Describe(batch.status().problems());
  ASSERT_EQ(batch->records.size(), 1u);
  EXPECT_EQ(batch->records[0].body["status"], "entered_in_error");
}

TEST(NicheCsv, EveryProblemHasLineAndField) {
  const std::string csv =
      "record_type,id,nominal_id,surname,recorded_at,type,level,start,enquiry_log,summary,occurred_"
      "at,"
      "source_evaluation,information_assessment,handling_code,text\n"
      "warning_marker,W-1,N-1,Walker,2018-01-01T00:00:00Z,CSE,SEVERE,2018-01-01,,,,,,,\n"
      "occurrence,O-1,N-1,Walker,2018-01-01T00:00:00Z,Assault,,,\"no date here\",s,2018-01-01,,,,\n"
      "intelligence,I-1,N-1,Walkerr,2018-01-01T00:00:00Z,,,,,,,D,2,P,t\n"
      "vehicle,V-1,N-1,Walker,2018-01-01T00:00:00Z,,,,,,,,,,\n"
      "warning_marker,W-2,,Walker,2018-13-01T00:00:00Z,CSE,LOW,,,,,,,,\n";
  auto batch = ParseWith("niche-csv", csv, "wyp");
  ASSERT_FALSE(batch.ok());
  EXPECT_THAT(batch.status().problems(),
              UnorderedElementsAre(
                  ProblemAt("line 2, field level", "unknown risk level \"SEVERE\""),
                  ProblemAt("line 3, field enquiry_log", "starts with its date"),
                  ProblemAt("line 4", "nominal \"N-1\" has other details than at line 2"),
                  ProblemAt("line 4, field source_evaluation", "A, B or C"),
                  ProblemAt("line 5, field record_type", "unknown record type \"vehicle\""),
                  ProblemAt("line 6, field nominal_id", "required"),
                  ProblemAt("line 6, field start", "required"),
                  ProblemAt("line 6, field recorded_at", "not a timestamp")))
      << testing::Describe(batch.status().problems());
}

TEST(NicheCsv, EnquiryLogContinuationLines) {
  const std::string csv =
      "record_type,id,nominal_id,surname,recorded_at,type,occurred_at,summary,enquiry_log\n"
      "occurrence,O-1,N-1,Walker,2018-01-01T09:00:00Z,Assault,2018-01-01,s,\"2018-01-01T10:00:00Z "
      "first\n"
      "and more\n"
      "2018-01-02 second\"\n";
  auto batch = ParseWith("niche-csv", csv, "wyp");
  ASSERT_TRUE(batch.ok()) << testing::Describe(batch.status().problems());
  EXPECT_EQ(batch->records[0].body["enquiry_log"], nlohmann::json::parse(R"([
      {"at": "2018-01-01T10:00:00Z", "text": "first\nand more"},
      {"at": "2018-01-02", "text": "second"}])"));
}

}  // namespace
}  // namespace safegate::adapters
