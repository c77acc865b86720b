#include "adapters/cpis/cpis_csv.h"

#include "adapters/test_support.h"

namespace safegate::adapters {
namespace {

using testing::DocExample;
using ::testing::ElementsAre;
using testing::ParseWith;
using testing::ProblemAt;
using ::testing::UnorderedElementsAre;

const char kHeader[] =
    "nhs_number,plan_type,start_date,end_date,responsible_authority,office_hours_phone,"
    "out_of_hours_phone\n";

TEST(CpisCsv, DocExampleGivesExpectedRecords) {
  auto batch = ParseWith("cpis-csv", DocExample("cpis-csv", "cpis-csv"), "bradford-csc");
  ASSERT_TRUE(batch.ok()) << batch.status().ToString()
                          << testing::Describe(batch.status().problems());
  ASSERT_EQ(batch->records.size(), 3u);
  EXPECT_TRUE(batch->warnings.empty());

  const record::Record& cpp = batch->records[0];
  EXPECT_EQ(cpp.kind, record::Kind::kFlag);
  EXPECT_EQ(cpp.subject.nhs_number, "9990000018");
  EXPECT_EQ(cpp.subject.given_name, "Amira");
  EXPECT_EQ(cpp.subject.birth_date, "2012-03-01");
  EXPECT_EQ(cpp.source.agency, "bradford-csc");
  EXPECT_EQ(cpp.source.system, "cpis");
  EXPECT_EQ(cpp.source.version, 1);
  EXPECT_EQ(cpp.source.recorded_at, "2024-02-01T00:00:00Z");
  EXPECT_TRUE(cpp.source.record_id.starts_with("cpis-"));
  EXPECT_EQ(cpp.source.record_id.find("9990000018"), std::string::npos)
      << "R7: no NHS number in ids";
  EXPECT_TRUE(cpp.classification.special_category);
  EXPECT_FALSE(cpp.classification.criminal_offence);
  EXPECT_EQ(cpp.classification.schedule12a, (std::vector<int>{1, 2}));
  EXPECT_EQ(cpp.body, nlohmann::json::parse(R"({
      "type": "cp_plan", "level": null, "status": "active", "start": "2024-02-01",
      "end": null, "review_by": null, "owner_agency": "bradford-csc",
      "contact": {"office_hours": "01274 435600", "out_of_hours": "01274 431010"},
      "note": "Responsible authority: City of Bradford Metropolitan District Council"})"));

  const record::Record& lac = batch->records[1];
  EXPECT_EQ(lac.subject.nhs_number, "9990000026");  // spaces removed
  EXPECT_EQ(lac.body["type"], "looked_after");
  EXPECT_EQ(lac.body["status"], "inactive");
  EXPECT_EQ(lac.body["end"], "2024-01-10");
  EXPECT_EQ(lac.source.version, 2);
  EXPECT_EQ(lac.source.recorded_at, "2024-01-10T00:00:00Z");

  EXPECT_EQ(batch->records[2].body["type"], "unborn_cp_plan");
}

TEST(CpisCsv, EndingAPlanIsANewVersionOfTheSameRecord) {
  const std::string open =
      std::string(kHeader) + "9990000018,CPP,2024-02-01,,Bradford,01274 435600,01274 431010\n";
  const std::string ended =
      std::string(kHeader) +
      "9990000018,CPP,2024-02-01,2024-09-01,Bradford,01274 435600,01274 431010\n";
  auto a = ParseWith("cpis-csv", open, "bradford-csc");
  auto b = ParseWith("cpis-csv", ended, "bradford-csc");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->records[0].source.record_id, b->records[0].source.record_id);
  EXPECT_EQ(a->records[0].source.version, 1);
  EXPECT_EQ(b->records[0].source.version, 2);
}

TEST(CpisCsv, EveryBadFieldIsReportedWithLineAndField) {
  const std::string input = std::string(kHeader) +
                            "9990000018,CPP,2024-02-01,,Bradford,01274 435600,01274 431010\n"
                            "9990000019,XYZ,2024-13-01,,Bradford,01274 435600,01274 431010\n"
                            "9990000026,LAC,2024-02-01,2024-01-01,,call us,01274 431010\n"
                            "12345,CPP,2024-02-01\n";
  auto batch = ParseWith("cpis-csv", input, "bradford-csc");
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(batch.status().code(), ErrorCode::kInvalidInput);
  EXPECT_THAT(
      batch.status().problems(),
      UnorderedElementsAre(ProblemAt("line 3, field nhs_number", "check digit"),
                           ProblemAt("line 3, field plan_type", "unknown plan type \"XYZ\""),
                           ProblemAt("line 3, field start_date", "not a date"),
                           ProblemAt("line 4, field end_date", "before it starts"),
                           ProblemAt("line 4, field responsible_authority", "required"),
                           ProblemAt("line 4, field office_hours_phone", "telephone"),
                           ProblemAt("line 5", "expected 7 fields, found 3")))
      << testing::Describe(batch.status().problems());
}

TEST(CpisCsv, HeaderProblems) {
  auto batch = ParseWith("cpis-csv", "nhs_number,plan_type,colour\n", "bradford-csc");
  ASSERT_FALSE(batch.ok());
  EXPECT_THAT(
      batch.status().problems(),
      ::testing::IsSupersetOf({ProblemAt("line 1, header column 3", "unknown column \"colour\""),
                               ProblemAt("line 1", "missing required column \"start_date\"")}));
  auto empty = ParseWith("cpis-csv", "", "bradford-csc");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().problems(), ElementsAre(ProblemAt("line 1", "empty")));
}

TEST(CpisCsv, SameRowTwiceIsRefused) {
  const std::string row = "9990000018,CPP,2024-02-01,,Bradford,01274 435600,01274 431010\n";
  auto batch = ParseWith("cpis-csv", std::string(kHeader) + row + row, "bradford-csc");
  ASSERT_FALSE(batch.ok());
  EXPECT_THAT(batch.status().problems(),
              ElementsAre(ProblemAt("line 3", "appears twice (first at line 2)")));
}

}  // namespace
}  // namespace safegate::adapters
