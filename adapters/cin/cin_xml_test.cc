#include "adapters/cin/cin_xml.h"

#include <filesystem>

#include "adapters/test_support.h"

namespace safegate::adapters {
namespace {

using testing::DocExample;
using ::testing::ElementsAre;
using ::testing::IsSupersetOf;
using testing::ParseWith;
using testing::ProblemAt;
using ::testing::UnorderedElementsAre;

std::string Message(const std::string& children) {
  return "<Message><Header><CollectionDetails><Collection>CIN</Collection></CollectionDetails>"
         "</Header><Children>" +
         children + "</Children></Message>";
}

TEST(CinXml, DocExampleGivesExpectedRecords) {
  auto batch = ParseWith("cin-xml", DocExample("cin-xml", "cin-xml"), "bradford-csc");
  ASSERT_TRUE(batch.ok()) << testing::Describe(batch.status().problems());
  EXPECT_TRUE(batch->warnings.empty()) << testing::Describe(batch->warnings);
  // Child 1: referral, assessment, section 47, CP plan and its flag. Child 2: referral, CIN plan.
  ASSERT_EQ(batch->records.size(), 7u);
  const std::vector<record::LocalId> child1 = {{"csc:bradford", "BRA-000123"}};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(batch->records[i].subject.local_ids, child1);
    EXPECT_EQ(batch->records[i].subject.birth_date, "2012-03-01");
    EXPECT_EQ(batch->records[i].source.system, "cin");
    EXPECT_EQ(batch->records[i].source.agency, "bradford-csc");
    EXPECT_FALSE(batch->records[i].classification.special_category);
    EXPECT_FALSE(batch->records[i].classification.criminal_offence);
    EXPECT_EQ(batch->records[i].classification.schedule12a, (std::vector<int>{1, 2}));
    EXPECT_TRUE(batch->records[i].source.record_id.starts_with("cin-"));
    EXPECT_EQ(batch->records[i].source.record_id.find("BRA"), std::string::npos) << "R7";
  }
  const auto& referral = batch->records[0];
  EXPECT_EQ(referral.kind, record::Kind::kReferral);
  EXPECT_EQ(referral.source.version, 1);
  EXPECT_EQ(referral.source.recorded_at, "2023-10-06T00:00:00Z");
  EXPECT_EQ(referral.body, nlohmann::json::parse(R"({"referral_date": "2023-10-06",
      "referral_source": "5A", "reason": "Primary need N1: abuse or neglect", "nfa": false})"));

  const auto& assessment = batch->records[1];
  EXPECT_EQ(assessment.kind, record::Kind::kAssessment);
  EXPECT_EQ(assessment.source.version, 2);
  EXPECT_EQ(assessment.source.recorded_at, "2023-11-20T00:00:00Z");
  EXPECT_EQ(assessment.body,
            nlohmann::json::parse(R"({"assessment_type": "child and family assessment",
      "start": "2023-10-09", "authorised": "2023-11-20", "factors": ["4B", "22A"]})"));

  const auto& s47 = batch->records[2];
  EXPECT_EQ(s47.kind, record::Kind::kAssessment);
  EXPECT_EQ(s47.body, nlohmann::json::parse(R"({"assessment_type": "section 47 enquiry",
      "start": "2023-10-10", "authorised": null,
      "outcome": "initial child protection conference on 2023-10-27"})"));

  const auto& plan = batch->records[3];
  EXPECT_EQ(plan.kind, record::Kind::kPlan);
  EXPECT_EQ(plan.source.version, 2);  // one review held
  EXPECT_EQ(plan.source.recorded_at, "2024-01-19T00:00:00Z");
  EXPECT_EQ(plan.body, nlohmann::json::parse(R"({"plan_type": "cp", "start": "2023-10-27",
      "end": null, "category_of_abuse": "sexual", "review_dates": ["2024-01-19"]})"));

  const auto& flag = batch->records[4];
  EXPECT_EQ(flag.kind, record::Kind::kFlag);
  EXPECT_EQ(flag.body, nlohmann::json::parse(R"({"type": "cp_plan", "level": null,
      "status": "active", "start": "2023-10-27", "end": null, "review_by": null,
      "owner_agency": "bradford-csc"})"));

  EXPECT_EQ(batch->records[5].subject.local_ids,
            (std::vector<record::LocalId>{{"csc:bradford", "BRA-000456"}}));
  EXPECT_EQ(
      batch->records[6].body,
      nlohmann::json::parse(R"({"plan_type": "cin", "start": "2023-05-01", "end": "2023-09-29"})"));
  EXPECT_EQ(batch->records[6].source.version, 2);
}

TEST(CinXml, RejectsWhatWouldMakeARecordWrong) {
  const std::string doc = Message(
      "<Child><ChildIdentifiers><UPN>A1</UPN></ChildIdentifiers><CINdetails>"
      "<CINreferralDate>2023-01-01</CINreferralDate></CINdetails></Child>"
      "<Child><ChildIdentifiers><LAchildID>C2</LAchildID><PersonBirthDate>01/02/2015</"
      "PersonBirthDate>"
      "</ChildIdentifiers></Child>"
      "<Child><ChildIdentifiers><LAchildID>C3</LAchildID></ChildIdentifiers>"
      "<CINdetails><ReferralSource>1A</ReferralSource></CINdetails>"
      "<CINdetails><CINreferralDate>2023-02-01</CINreferralDate>"
      "<Assessments><AssessmentAuthorisationDate>2023-03-01</AssessmentAuthorisationDate></"
      "Assessments>"
      "<ChildProtectionPlans><CPPstartDate>2023-05-01</CPPstartDate><CPPendDate>2023-04-01</"
      "CPPendDate>"
      "<Reviews><CPPreviewDate>2023-02-30</CPPreviewDate></Reviews></ChildProtectionPlans>"
      "</CINdetails>"
      "<CINdetails><CINreferralDate>2023-02-01</CINreferralDate></CINdetails></Child>");
  auto batch = ParseWith("cin-xml", doc, "bradford-csc");
  ASSERT_FALSE(batch.ok());
  const std::string c3 = "/Message/Children/Child[3]";
  EXPECT_THAT(
      batch.status().problems(),
      UnorderedElementsAre(
          ProblemAt("/Message/Children/Child[1]/ChildIdentifiers/LAchildID", "required"),
          ProblemAt("/Message/Children/Child[2]/ChildIdentifiers/PersonBirthDate", "not a date"),
          ProblemAt(c3 + "/CINdetails[1]/CINreferralDate", "required"),
          ProblemAt(c3 + "/CINdetails[2]/Assessments/AssessmentActualStartDate", "required"),
          ProblemAt(c3 + "/CINdetails[2]/ChildProtectionPlans/CPPendDate",
                    "before the plan's start"),
          ProblemAt(c3 + "/CINdetails[2]/ChildProtectionPlans/Reviews/CPPreviewDate", "not a date"),
          ProblemAt(c3 + "/CINdetails[3]", "appears twice (first at " + c3 + "/CINdetails[2])")))
      << testing::Describe(batch.status().problems());
}

TEST(CinXml, WarnsAboutWhatOnlyFailsToAddInformation) {
  const std::string doc =
      "<Message><Children>stray<Child><ChildIdentifiers><LAchildID>C1</LAchildID>junk"
      "<Favourite>blue</Favourite></ChildIdentifiers>"
      "<CINdetails><CINreferralDate>2023-02-01</CINreferralDate><PrimaryNeedCode>N42</"
      "PrimaryNeedCode>"
      "<ReferralSource>ZZ</ReferralSource><ReferralNFA>maybe</ReferralNFA>"
      "<CINclosureDate>2023-01-01</CINclosureDate>"
      "<ChildProtectionPlans><CPPstartDate>2023-03-01</CPPstartDate>"
      "<LatestCategoryOfAbuse>XXX</LatestCategoryOfAbuse></ChildProtectionPlans>"
      "</CINdetails></Child><Child><ChildIdentifiers><LAchildID>C2</LAchildID></ChildIdentifiers>"
      "</Child></Children><Trailer/></Message>";
  auto batch = ParseWith("cin-xml", doc, "bradford-csc");
  ASSERT_TRUE(batch.ok()) << testing::Describe(batch.status().problems());
  EXPECT_EQ(batch->records.size(), 3u);  // referral, CP plan, CP plan flag
  const std::string d = "/Message/Children/Child[1]/CINdetails";
  EXPECT_THAT(
      batch->warnings,
      UnorderedElementsAre(
          ProblemAt("/Message/Children", "stray text \"stray\""),
          ProblemAt("/Message/Children/Child[1]/ChildIdentifiers", "stray text \"junk\""),
          ProblemAt("/Message/Children/Child[1]/ChildIdentifiers/Favourite", "unknown element"),
          ProblemAt(d + "/PrimaryNeedCode", "not a census code"),
          ProblemAt(d + "/ReferralSource", "not a census code"),
          ProblemAt(d + "/ReferralNFA", "ignored"),
          ProblemAt(d + "/CINclosureDate", "before the referral"),
          ProblemAt(d + "/ChildProtectionPlans/LatestCategoryOfAbuse", "left out"),
          ProblemAt("/Message/Children/Child[2]", "no CINdetails"),
          ProblemAt("/Message/Trailer", "ignored"), ProblemAt("/Message/Header", "missing")))
      << testing::Describe(batch->warnings);
  EXPECT_EQ(batch->records[0].body["reason"], "Primary need N42");
  EXPECT_FALSE(batch->records[1].body.contains("category_of_abuse"));
}

TEST(CinXml, LaterReturnGivesNewVersionsNotConflicts) {
  const std::string open = Message(
      "<Child><ChildIdentifiers><LAchildID>C1</LAchildID></ChildIdentifiers><CINdetails>"
      "<CINreferralDate>2023-02-01</CINreferralDate><ChildProtectionPlans>"
      "<CPPstartDate>2023-03-01</CPPstartDate></ChildProtectionPlans></CINdetails></Child>");
  const std::string ended = Message(
      "<Child><ChildIdentifiers><LAchildID>C1</LAchildID></ChildIdentifiers><CINdetails>"
      "<CINreferralDate>2023-02-01</CINreferralDate><ChildProtectionPlans>"
      "<CPPstartDate>2023-03-01</CPPstartDate><CPPendDate>2023-09-01</CPPendDate>"
      "<Reviews><CPPreviewDate>2023-05-01</CPPreviewDate></Reviews>"
      "</ChildProtectionPlans></CINdetails></Child>");
  auto a = ParseWith("cin-xml", open, "bradford-csc");
  auto b = ParseWith("cin-xml", ended, "bradford-csc");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->records.size(), 3u);
  ASSERT_EQ(b->records.size(), 3u);
  EXPECT_EQ(a->records[0], b->records[0]);  // the referral did not change
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_EQ(a->records[i].source.record_id, b->records[i].source.record_id);
    EXPECT_LT(a->records[i].source.version, b->records[i].source.version);
  }
  EXPECT_EQ(b->records[1].source.version, 3);  // start, one review, end
  EXPECT_EQ(b->records[2].body["status"], "inactive");
}

// The public fake census files of the DfE validator project (../shared/fixtures/cin/): they
// must ingest or be rejected with precise problems, never crash.
class CinFixtures : public ::testing::Test {
 protected:
  std::optional<std::string> Fixture(const std::string& name) {
    const auto path = testing::SourceDir().parent_path() / "shared" / "fixtures" / "cin" / name;
    return testing::ReadFile(path);
  }
};

#define SKIP_IF_ABSENT(var, name)                \
  auto var = Fixture(name);                      \
  if (!var)                                      \
  GTEST_SKIP() << "../shared/fixtures/cin/" name \
                  " is not beside the project "  \
                  "(a clone on its own has none)"

TEST_F(CinFixtures, FakeCinDataIngests) {
  SKIP_IF_ABSENT(text, "fake_CIN_data.xml");
  auto batch = ParseWith("cin-xml", *text, "bradford-csc");
  ASSERT_TRUE(batch.ok()) << testing::Describe(batch.status().problems());
  EXPECT_EQ(batch->records.size(), 402u);  // one referral per CINdetails block
  EXPECT_TRUE(batch->warnings.empty()) << testing::Describe(batch->warnings);
  auto again = ParseWith("cin-xml", *text, "bradford-csc");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->records, batch->records);
}

TEST_F(CinFixtures, Census2021IngestsWithAWarningForStrayText) {
  SKIP_IF_ABSENT(text, "CIN_Census_2021.xml");
  auto batch = ParseWith("cin-xml", *text, "bradford-csc");
  ASSERT_TRUE(batch.ok()) << testing::Describe(batch.status().problems());
  EXPECT_EQ(batch->records.size(), 6u);
  EXPECT_THAT(batch->warnings, ElementsAre(ProblemAt("/Message/Children/Child[1]/ChildIdentifiers",
                                                     "stray text \"PersonBirthDate\"")));
}

TEST_F(CinFixtures, Census2024And2026AreRejectedForAnAssessmentAuthorisedBeforeItStarted) {
  for (const char* name : {"CIN_Census_2024.xml", "CIN_Census_2026.xml"}) {
    SCOPED_TRACE(name);
    auto text = Fixture(name);
    if (!text) GTEST_SKIP() << "../shared/fixtures/cin/" << name << " is not beside the project";
    auto batch = ParseWith("cin-xml", *text, "bradford-csc");
    ASSERT_FALSE(batch.ok());
    EXPECT_THAT(batch.status().problems(),
                ElementsAre(ProblemAt("/Message/Children/Child[1]/CINdetails/Assessments/"
                                      "AssessmentAuthorisationDate",
                                      "2020-09-19 is before the assessment's start 2028-04-28")));
  }
}

}  // namespace
}  // namespace safegate::adapters
