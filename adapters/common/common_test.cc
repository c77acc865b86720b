// The shared readers: XML hardening, CSV edge cases, text checks, and the registry.
#include <map>
#include <string>

#include "adapters/common/csv.h"
#include "adapters/common/text.h"
#include "adapters/common/xml_units.h"
#include "adapters/test_support.h"

namespace safegate::adapters {
namespace {

using ::testing::ElementsAre;
using testing::ParseWith;
using testing::ProblemAt;

// Every XML adapter refuses document type declarations, and with them every entity trick.
class XmlHardening : public ::testing::TestWithParam<std::string> {};

TEST_P(XmlHardening, DtdIsRefused) {
  const std::string doc =
      "<?xml version=\"1.0\"?>\n<!DOCTYPE Message [<!ENTITY x \"y\">]>\n<Message>&x;</Message>";
  auto batch = ParseWith(GetParam(), doc, "wyp");
  ASSERT_FALSE(batch.ok());
  ASSERT_EQ(batch.status().problems().size(), 1u);
  EXPECT_THAT(batch.status().problems()[0].where, ::testing::StartsWith("line 2, column "));
  EXPECT_THAT(batch.status().problems()[0].what, ::testing::HasSubstr("(DTD) is not allowed"));
}

TEST_P(XmlHardening, ExternalEntityIsRefused) {
  const std::string doc = "<!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><r>&xxe;</r>";
  auto batch = ParseWith(GetParam(), doc, "wyp");
  ASSERT_FALSE(batch.ok());
  ASSERT_EQ(batch.status().problems().size(), 1u);
  EXPECT_THAT(batch.status().problems()[0].what, ::testing::HasSubstr("DTD"));
  EXPECT_THAT(batch.status().problems()[0].what, ::testing::Not(::testing::HasSubstr("root:")));
}

TEST_P(XmlHardening, ExternalDtdIsRefused) {
  auto batch = ParseWith(GetParam(), "<!DOCTYPE r SYSTEM \"http://127.0.0.1:1/x.dtd\"><r/>", "wyp");
  ASSERT_FALSE(batch.ok());
  EXPECT_THAT(batch.status().problems()[0].what, ::testing::HasSubstr("DTD"));
}

TEST_P(XmlHardening, BillionLaughsIsRefused) {
  std::string doc = "<!DOCTYPE lolz [<!ENTITY lol \"lol\">";
  for (int i = 1; i < 10; ++i) {
    doc += "<!ENTITY lol" + std::to_string(i) + " \"";
    for (int k = 0; k < 10; ++k)
      doc += "&lol" + (i == 1 ? std::string() : std::to_string(i - 1)) + ";";
    doc += "\">";
  }
  doc += "]><lolz>&lol9;</lolz>";
  auto batch = ParseWith(GetParam(), doc, "wyp");
  ASSERT_FALSE(batch.ok());
  EXPECT_THAT(batch.status().problems()[0].what, ::testing::HasSubstr("DTD"));
}

TEST_P(XmlHardening, UndefinedEntityIsAnError) {
  const std::string root = GetParam() == "niche-xml" ? "NicheExport" : "Message";
  auto batch = ParseWith(GetParam(), "<" + root + ">\n&nope;</" + root + ">", "wyp");
  ASSERT_FALSE(batch.ok());
  EXPECT_THAT(batch.status().problems(),
              ElementsAre(ProblemAt("line 2, column 1", "undefined entity")));
}

TEST_P(XmlHardening, DeepNestingIsRefused) {
  std::string doc;
  for (int i = 0; i < 5000; ++i) doc += "<a>";
  auto batch = ParseWith(GetParam(), doc, "wyp");
  ASSERT_FALSE(batch.ok());  // wrong root or too deep: either way, no crash
}

TEST_P(XmlHardening, EmptyAndBinaryInput) {
  for (std::string input : {std::string(), std::string("\0\xff\xfe<", 4), std::string("   ")}) {
    auto batch = ParseWith(GetParam(), input, "wyp");
    ASSERT_FALSE(batch.ok());
    EXPECT_THAT(batch.status().problems()[0].where, ::testing::StartsWith("line "));
  }
}

INSTANTIATE_TEST_SUITE_P(XmlAdapters, XmlHardening, ::testing::Values("niche-xml", "cin-xml"));

TEST(XmlUnits, PathsCarryIndicesOnlyWhereNamesRepeat) {
  struct Collect : XmlUnitHandler {
    std::vector<std::string> paths;
    void OnUnit(std::string_view, XmlNode& unit) override { Walk(unit); }
    void Walk(const XmlNode& n) {
      paths.push_back(n.path);
      for (const auto& c : n.children) Walk(c);
    }
    void OnUnexpected(const std::string& path, int) override { paths.push_back("?" + path); }
    void OnStrayText(const std::string& path, std::string_view) override {
      paths.push_back("!" + path);
    }
  } collect;
  ProblemList problems;
  ASSERT_TRUE(ReadXmlUnits("<R><S><U><a/><b/><b/></U>x<U><a/></U></S><T/></R>",
                           {{"/R", "/R/S"}, {"/R/S/U"}}, collect, problems));
  EXPECT_THAT(collect.paths,
              ElementsAre("/R/S/U[1]", "/R/S/U[1]/a", "/R/S/U[1]/b[1]", "/R/S/U[1]/b[2]", "!/R/S",
                          "/R/S/U[2]", "/R/S/U[2]/a", "?/R/T"));
}

TEST(Csv, QuotingLineEndsAndBom) {
  ProblemList problems;
  const std::string input =
      "\xEF\xBB\xBF"
      "A,b\r\n\"x, \"\"quoted\"\"\",\"two\nlines\"\r\n\r\nplain,last";
  CsvTable csv(input, {"a", "b"}, {}, problems);
  ASSERT_TRUE(csv.ok());
  ASSERT_TRUE(csv.Next());
  EXPECT_EQ(csv.line(), 2u);
  EXPECT_EQ(csv.Get("a"), "x, \"quoted\"");
  EXPECT_EQ(csv.Get("b"), "two\nlines");
  ASSERT_TRUE(csv.Next());
  EXPECT_EQ(csv.line(), 5u);
  EXPECT_EQ(csv.Get("b"), "last");
  EXPECT_FALSE(csv.Next());
  EXPECT_TRUE(problems.empty());
}

TEST(Csv, MalformedRowsAreReportedAndReadingGoesOn) {
  ProblemList problems;
  CsvTable csv("a,b\nx\"y,1\n\"p\"q,2\nok,3\n\"never closed,4\n", {"a", "b"}, {}, problems);
  ASSERT_TRUE(csv.ok());
  ASSERT_TRUE(csv.Next());
  EXPECT_EQ(csv.Get("a"), "ok");
  EXPECT_FALSE(csv.Next());
  EXPECT_THAT(problems.Take(), ElementsAre(ProblemAt("line 2, field 1", "quote inside"),
                                           ProblemAt("line 3, field 1", "after the closing quote"),
                                           ProblemAt("line 5, field 1", "never closed")));
}

TEST(Csv, InvalidUtf8IsReportedWithItsLine) {
  ProblemList problems;
  CsvTable csv("a\nok\nbad\xC3\x28\n", {"a"}, {}, problems);
  EXPECT_FALSE(csv.ok());
  EXPECT_THAT(problems.Take(), ElementsAre(ProblemAt("line 3", "not valid UTF-8")));
}

TEST(Problems, ListIsCapped) {
  ProblemList problems;
  for (size_t i = 0; i < ProblemList::kMaxProblems + 5; ++i) problems.Add("w", "x");
  EXPECT_EQ(problems.size(), ProblemList::kMaxProblems + 5);
  auto list = problems.Take();
  ASSERT_EQ(list.size(), ProblemList::kMaxProblems + 1);
  EXPECT_EQ(list.back().what, "... and 5 more problems not listed");
}

TEST(Text, Timestamps) {
  EXPECT_EQ(NormalizeTimestamp("2018-10-31T09:12:00Z"), "2018-10-31T09:12:00Z");
  EXPECT_EQ(NormalizeTimestamp("2018-10-31T00:30:00+01:00"), "2018-10-30T23:30:00Z");
  EXPECT_EQ(NormalizeTimestamp("2020-02-29T23:00:00.999-02:00"), "2020-03-01T01:00:00Z");
  EXPECT_EQ(NormalizeTimestamp("2018-12-31T23:59:59-00:30"), "2019-01-01T00:29:59Z");
  EXPECT_FALSE(NormalizeTimestamp("2018-10-31T09:12:00"));  // no zone
  EXPECT_FALSE(NormalizeTimestamp("2018-02-30T09:12:00Z"));
  EXPECT_FALSE(NormalizeTimestamp("2018-10-31 09:12:00Z"));
  EXPECT_FALSE(NormalizeTimestamp("2018-10-31T24:00:00Z"));
  EXPECT_TRUE(IsIsoDate("2024-02-29"));
  EXPECT_FALSE(IsIsoDate("2023-02-29"));
  EXPECT_FALSE(IsIsoDate("2023-1-01"));
}

TEST(Text, DigestIdsAreStableAndSeparateParts) {
  EXPECT_EQ(DigestId("x", {"ab", "c"}), DigestId("x", {"ab", "c"}));
  EXPECT_NE(DigestId("x", {"ab", "c"}), DigestId("x", {"a", "bc"}));
  EXPECT_EQ(DigestId("cin", {"a"}).size(), 4u + 16u);
  EXPECT_EQ(DigestId("x", {}), "x-cbf29ce484222325");  // FNV-1a offset basis: pinned format
}

TEST(Registry, ListsEveryFormatOnceByName) {
  std::vector<std::string> names;
  for (const Adapter* a : AllAdapters()) {
    names.emplace_back(a->Name());
    EXPECT_EQ(FindAdapter(a->Name()), a);
    EXPECT_FALSE(a->MediaType().empty());
  }
  EXPECT_THAT(names, ElementsAre("niche-xml", "niche-csv", "fhir-flag", "cpis-csv", "cin-xml"));
  EXPECT_EQ(FindAdapter("nope"), nullptr);
  EXPECT_EQ(FindAdapter("fhir-flag")->MediaType(), "application/fhir+json");
}

TEST(Registry, EveryFormatHasADocPageWithAnExample) {
  const std::map<std::string, std::string> pages = {{"niche-xml", "niche"},
                                                    {"niche-csv", "niche"},
                                                    {"fhir-flag", "fhir-flag"},
                                                    {"cpis-csv", "cpis-csv"},
                                                    {"cin-xml", "cin-xml"}};
  for (const Adapter* a : AllAdapters()) {
    auto page = pages.find(std::string(a->Name()));
    ASSERT_NE(page, pages.end()) << a->Name() << " has no doc page in this test's table";
    const std::string example = testing::DocExample(page->second, std::string(a->Name()));
    auto batch = a->Parse(example, testing::Bradford("wyp"));
    EXPECT_TRUE(batch.ok()) << a->Name() << testing::Describe(batch.status().problems());
    if (batch.ok()) {
      EXPECT_FALSE(batch->records.empty()) << a->Name();
      auto again = a->Parse(example, testing::Bradford("wyp"));
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(again->records, batch->records) << a->Name() << ": parsing twice differs";
      for (const auto& r : batch->records) {
        EXPECT_TRUE(record::ParseRecord(record::ToJson(r)).ok());
      }
    }
  }
}

}  // namespace
}  // namespace safegate::adapters
