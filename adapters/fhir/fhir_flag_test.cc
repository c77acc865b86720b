#include "adapters/fhir/fhir_flag.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "adapters/fhir/fhir_codes.h"
#include "adapters/test_support.h"

namespace safegate::adapters {
namespace {

using nlohmann::json;
using testing::DocExample;
using ::testing::ElementsAre;
using testing::ParseWith;
using testing::ProblemAt;
using ::testing::UnorderedElementsAre;

json MinimalFlag() {
  return json::parse(R"({
    "resourceType": "Flag", "id": "f1", "status": "active",
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "342191000000101"}]},
    "subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}},
    "period": {"start": "2024-02-01"}})");
}

TEST(FhirFlag, DocExampleGivesExpectedRecords) {
  auto batch = ParseWith("fhir-flag", DocExample("fhir-flag", "fhir-flag"), "bthft");
  ASSERT_TRUE(batch.ok()) << testing::Describe(batch.status().problems());
  ASSERT_EQ(batch->records.size(), 2u);
  EXPECT_TRUE(batch->warnings.empty());

  const record::Record& cpp = batch->records[0];
  EXPECT_EQ(cpp.kind, record::Kind::kFlag);
  EXPECT_EQ(cpp.subject.nhs_number, "9990000018");
  EXPECT_TRUE(cpp.subject.local_ids.empty());
  EXPECT_EQ(cpp.source.agency, "bthft");
  EXPECT_EQ(cpp.source.system, "fhir");
  EXPECT_EQ(cpp.source.record_id, "bthft-flag-20240201-001");
  EXPECT_EQ(cpp.source.version, 1);
  EXPECT_EQ(cpp.source.recorded_at, "2024-02-01T10:15:00Z");
  EXPECT_TRUE(cpp.classification.special_category);
  EXPECT_FALSE(cpp.classification.criminal_offence);
  EXPECT_EQ(cpp.classification.schedule12a, (std::vector<int>{1, 2}));
  EXPECT_EQ(cpp.classification.handling, "P");
  EXPECT_EQ(cpp.body, json::parse(R"({
      "type": "cp_plan", "level": null, "status": "active", "start": "2024-02-01",
      "end": null, "review_by": null, "owner_agency": "bthft",
      "contact": {"office_hours": "01274 435600", "out_of_hours": "01274 431010"}})"));

  const record::Record& cse = batch->records[1];
  EXPECT_EQ(cse.source.version, 3);
  EXPECT_EQ(cse.source.recorded_at, "2024-04-02T08:00:00Z");
  EXPECT_EQ(cse.body, json::parse(R"({
      "type": "cse_risk", "level": "medium", "status": "active", "start": "2024-03-05",
      "end": null, "review_by": "2024-06-05", "owner_agency": "bthft"})"));
}

TEST(FhirFlag, SingleFlagWithoutMetaUsesItsStartAsRecordedAt) {
  json flag = MinimalFlag();
  flag["status"] = "entered-in-error";
  flag["period"]["end"] = "2024-03-01T12:00:00+01:00";
  auto batch = ParseWith("fhir-flag", flag.dump(), "bthft");
  ASSERT_TRUE(batch.ok()) << testing::Describe(batch.status().problems());
  ASSERT_EQ(batch->records.size(), 1u);
  EXPECT_EQ(batch->records[0].source.recorded_at, "2024-02-01T00:00:00Z");
  EXPECT_EQ(batch->records[0].body["status"], "entered_in_error");
  EXPECT_EQ(batch->records[0].body["end"], "2024-03-01");
}

TEST(FhirFlag, OtherResourcesInABundleAreWarnedAboutAndIgnored) {
  json bundle = {{"resourceType", "Bundle"},
                 {"type", "transaction"},
                 {"entry",
                  {{{"resource", {{"resourceType", "Patient"}, {"id", "p"}}}},
                   {{"resource", MinimalFlag()}}}}};
  auto batch = ParseWith("fhir-flag", bundle.dump(), "bthft");
  ASSERT_TRUE(batch.ok()) << testing::Describe(batch.status().problems());
  EXPECT_EQ(batch->records.size(), 1u);
  EXPECT_THAT(batch->warnings, ElementsAre(ProblemAt("/entry/0/resource/resourceType", "Patient")));
}

TEST(FhirFlag, EveryProblemHasItsJsonPointer) {
  json bad1 = MinimalFlag();
  bad1["status"] = "suspended";
  bad1["subject"]["identifier"]["value"] = "9990000019";
  bad1["period"] = {{"start", "2024-02-01"}, {"end", "2024-01-01"}};
  bad1["meta"] = {{"versionId", "v7"}};
  json bad2 = MinimalFlag();
  bad2.erase("id");
  bad2["code"]["coding"][0]["code"] = "12345";
  bad2["subject"] = {{"reference", "Patient/123"}};
  bad2.erase("period");
  bad2["modifierExtension"] = json::array();
  json bad3 = MinimalFlag();
  bad3["subject"]["identifier"]["system"] = "https://example.org/mrn";
  bad3["extension"] = {{{"url", fhir::kExtRiskLevel}, {"valueCode", "severe"}}};
  json bundle = {{"resourceType", "Bundle"},
                 {"entry", {{{"resource", bad1}}, {{"resource", bad2}}, {{"resource", bad3}}, 7}}};
  auto batch = ParseWith("fhir-flag", bundle.dump(), "bthft");
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(batch.status().code(), ErrorCode::kInvalidInput);
  EXPECT_THAT(
      batch.status().problems(),
      UnorderedElementsAre(
          ProblemAt("/entry/0/resource/status", "must be active, inactive or entered-in-error"),
          ProblemAt("/entry/0/resource/subject/identifier/value", "check digit"),
          ProblemAt("/entry/0/resource/period/end", "before it starts"),
          ProblemAt("/entry/0/resource/meta/versionId", "whole-number version"),
          ProblemAt("/entry/1/resource/id", "required"),
          ProblemAt("/entry/1/resource/code/coding", "no coding safegate maps"),
          ProblemAt("/entry/1/resource/subject/identifier", "a reference alone"),
          ProblemAt("/entry/1/resource/period", "required"),
          ProblemAt("/entry/1/resource/modifierExtension", "not understood"),
          ProblemAt("/entry/2/resource/subject/identifier/system", "NHS number"),
          ProblemAt("/entry/2/resource/extension/0/valueCode", "low, medium or high"),
          ProblemAt("/entry/3", "must be an object")))
      << testing::Describe(batch.status().problems());
}

TEST(FhirFlag, JsonLevelProblems) {
  auto syntax =
      ParseWith("fhir-flag", "{\n  \"resourceType\": \"Flag\",\n  \"id\": tru\n}", "bthft");
  ASSERT_FALSE(syntax.ok());
  EXPECT_THAT(syntax.status().problems(),
              ElementsAre(ProblemAt("line 3, column 12", "invalid literal")));

  auto dup =
      ParseWith("fhir-flag", R"({"resourceType":"Flag","code":{"text":"a","text":"b"}})", "bthft");
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(dup.status().problems(), ElementsAre(ProblemAt("/code/text", "duplicate member")));

  std::string deep = std::string(100, '[') + std::string(100, ']');
  auto nested = ParseWith("fhir-flag", deep, "bthft");
  ASSERT_FALSE(nested.ok());
  EXPECT_THAT(nested.status().problems()[0].what, ::testing::HasSubstr("nested deeper than 64"));

  auto other = ParseWith("fhir-flag", R"({"resourceType":"Patient"})", "bthft");
  ASSERT_FALSE(other.ok());
  EXPECT_THAT(other.status().problems(),
              ElementsAre(ProblemAt("/resourceType", "expected Flag or Bundle")));
}

// Flag records from every format's doc example: what a health recipient could be sent.
std::vector<record::Record> FlagsFromEveryFormat() {
  std::vector<record::Record> all;
  auto add = [&](std::string_view format, const std::string& page, const std::string& agency) {
    auto batch = ParseWith(format, DocExample(page, std::string(format)), agency);
    EXPECT_TRUE(batch.ok()) << format << testing::Describe(batch.status().problems());
    if (batch.ok()) all.insert(all.end(), batch->records.begin(), batch->records.end());
  };
  add("fhir-flag", "fhir-flag", "bthft");
  add("cpis-csv", "cpis-csv", "bradford-csc");
  add("niche-xml", "niche", "wyp");
  add("cin-xml", "cin-xml", "bradford-csc");
  return all;
}

TEST(FhirRender, BundleShape) {
  const std::vector<record::Record> records = FlagsFromEveryFormat();
  const json bundle = RenderFhirFlagBundle(records);
  EXPECT_EQ(bundle["resourceType"], "Bundle");
  EXPECT_EQ(bundle["type"], "searchset");
  size_t flags = 0;
  for (const auto& r : records) flags += r.kind == record::Kind::kFlag ? 1 : 0;
  ASSERT_GT(flags, 5u);
  EXPECT_EQ(bundle["total"], flags);
  ASSERT_EQ(bundle["entry"].size(), flags);

  const json& first = bundle["entry"][0]["resource"];  // the CP plan flag from the FHIR example
  EXPECT_EQ(first["id"], "bthft-flag-20240201-001");
  EXPECT_EQ(first["meta"]["profile"][0], fhir::kUkCoreFlagProfile);
  EXPECT_EQ(first["code"]["coding"][0]["code"], "342191000000101");
  EXPECT_EQ(first["subject"]["identifier"]["system"], fhir::kNhsNumberSystem);
  EXPECT_EQ(first["subject"]["identifier"]["value"], "9990000018");
  EXPECT_EQ(first["author"]["identifier"]["value"], "bthft");

  // A police flag has no NHS number: it is identified by the police local id.
  bool saw_local = false;
  for (const json& e : bundle["entry"]) {
    const json& ident = e["resource"]["subject"]["identifier"];
    if (ident["system"] == std::string(fhir::kLocalIdSystemPrefix) + "police:wyp") saw_local = true;
  }
  EXPECT_TRUE(saw_local);
}

TEST(FhirRender, ParsingARenderedBundleGivesTheSameRecords) {
  auto batch = ParseWith("fhir-flag", DocExample("fhir-flag", "fhir-flag"), "bthft");
  ASSERT_TRUE(batch.ok());
  auto again = ParseWith("fhir-flag", RenderFhirFlagBundle(batch->records).dump(), "bthft");
  ASSERT_TRUE(again.ok()) << testing::Describe(again.status().problems());
  EXPECT_EQ(again->records, batch->records);

  auto cpis = ParseWith("cpis-csv", DocExample("cpis-csv", "cpis-csv"), "bthft");
  ASSERT_TRUE(cpis.ok());
  auto from_fhir = ParseWith("fhir-flag", RenderFhirFlagBundle(cpis->records).dump(), "bthft");
  ASSERT_TRUE(from_fhir.ok()) << testing::Describe(from_fhir.status().problems());
  ASSERT_EQ(from_fhir->records.size(), cpis->records.size());
  for (size_t i = 0; i < cpis->records.size(); ++i) {
    EXPECT_EQ(from_fhir->records[i].body, cpis->records[i].body);
    // A Flag names its subject by NHS number only; names stay out of the rendering.
    EXPECT_EQ(from_fhir->records[i].subject.nhs_number, cpis->records[i].subject.nhs_number);
  }
}

bool HaveCommand(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

// The rendered bundle, checked by an independent FHIR R4 validator (the npm `fhir` package,
// tools/fhir-check/). It is installed from the lock file into the build tree on first use.
TEST(FhirRender, IndependentValidatorAcceptsTheBundle) {
  if (!HaveCommand("node") || !HaveCommand("npm")) {
    GTEST_SKIP() << "node and npm are needed for the FHIR validator (scripts/setup installs "
                    "nodejs and npm); not checked";
  }
  namespace fs = std::filesystem;
  const fs::path src = testing::SourceDir() / "tools" / "fhir-check";
  const char* bin_env = std::getenv("SAFEGATE_BINARY_DIR");
  const fs::path work =
      fs::path(bin_env != nullptr ? bin_env : SAFEGATE_BINARY_DIR_DEFAULT) / "fhir-check";
  fs::create_directories(work);
  if (!fs::exists(work / "node_modules" / "fhir")) {
    fs::copy_file(src / "package.json", work / "package.json",
                  fs::copy_options::overwrite_existing);
    fs::copy_file(src / "package-lock.json", work / "package-lock.json",
                  fs::copy_options::overwrite_existing);
    const std::string install =
        "cd '" + work.string() + "' && npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1";
    ASSERT_EQ(std::system(install.c_str()), 0) << "npm ci failed; see " << (work / "npm.log");
  }

  const fs::path good = work / "bundle.json";
  std::ofstream(good) << RenderFhirFlagBundle(FlagsFromEveryFormat()).dump(2);
  // A deliberately broken copy proves the validator is really looking.
  json broken = RenderFhirFlagBundle(FlagsFromEveryFormat());
  broken["entry"][0]["resource"]["status"] = "suspended";
  broken["entry"][0]["resource"]["colour"] = "red";
  const fs::path bad = work / "broken.json";
  std::ofstream(bad) << broken.dump(2);

  auto run = [&](const fs::path& file) {
    const fs::path out = work / (file.stem().string() + ".out");
    const std::string cmd = "NODE_PATH='" + (work / "node_modules").string() + "' node '" +
                            (src / "check.js").string() + "' '" + file.string() + "' >'" +
                            out.string() + "' 2>&1";
    const int rc = std::system(cmd.c_str());
    return std::make_pair(rc, testing::ReadFile(out).value_or(""));
  };
  auto [good_rc, good_out] = run(good);
  EXPECT_EQ(good_rc, 0) << good_out;
  EXPECT_THAT(good_out, ::testing::HasSubstr("\"valid\":true"));
  auto [bad_rc, bad_out] = run(bad);
  EXPECT_NE(bad_rc, 0) << bad_out;
  EXPECT_THAT(bad_out, ::testing::HasSubstr("Flag.status"));
  EXPECT_THAT(bad_out, ::testing::HasSubstr("Flag.colour"));
}

}  // namespace
}  // namespace safegate::adapters
