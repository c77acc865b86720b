#include "daemon/server/http_util.h"

#include <gtest/gtest.h>

#include <string>

namespace safegate::server {
namespace {

TEST(PercentDecode, DecodesEscapesAndKeepsPlus) {
  auto v = PercentDecode("nhs%3A999%2f0+1", "x");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, "nhs:999/0+1");
}

TEST(PercentDecode, RefusesMalformedEscapesAndControlCharacters) {
  for (const char* bad : {"%", "%4", "%zz", "a%0", "%00", "%0a", "tab\there"}) {
    auto v = PercentDecode(bad, "path segment");
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_EQ(v.status().code(), ErrorCode::kBadRequest);
    EXPECT_NE(v.status().detail().find("path segment"), std::string::npos);
  }
}

TEST(ParseTarget, SplitsSegmentsAndQuery) {
  auto t = ParseTarget("/v1/mailbox/m%2D1/ack?limit=5&after=abc%3D&flag");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->segments, (std::vector<std::string>{"v1", "mailbox", "m-1", "ack"}));
  EXPECT_EQ(t->query.at("limit"), "5");
  EXPECT_EQ(t->query.at("after"), "abc=");
  EXPECT_EQ(t->query.at("flag"), "");
}

TEST(ParseTarget, RefusesBadTargets) {
  for (const char* bad : {"", "v1/mailbox", "http://x/v1", "/v1//mailbox", "/v1/mailbox/",
                          "/v1/a#frag", "/v1?a=1&a=2", "/v1?=x", "/v1/%zz"}) {
    EXPECT_FALSE(ParseTarget(bad).ok()) << bad;
  }
  auto dup = ParseTarget("/v1?limit=1&limit=2");
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().detail().find("'limit'"), std::string::npos);
}

TEST(IsJsonMediaType, AcceptsParametersAndCase) {
  EXPECT_TRUE(IsJsonMediaType("application/json"));
  EXPECT_TRUE(IsJsonMediaType("Application/JSON"));
  EXPECT_TRUE(IsJsonMediaType("application/json; charset=utf-8"));
  EXPECT_TRUE(IsJsonMediaType("application/json;charset=\"UTF-8\""));
  EXPECT_FALSE(IsJsonMediaType(""));
  EXPECT_FALSE(IsJsonMediaType("text/plain"));
  EXPECT_FALSE(IsJsonMediaType("application/jsonx"));
  EXPECT_FALSE(IsJsonMediaType("application/json; charset=latin1"));
}

TEST(ParseRfc3339Ms, ParsesOffsetsAndFractions) {
  EXPECT_EQ(ParseRfc3339Ms("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseRfc3339Ms("2026-01-01T00:00:00Z"), 1767225600000);
  EXPECT_EQ(ParseRfc3339Ms("2026-01-01T01:00:00+01:00"), 1767225600000);
  EXPECT_EQ(ParseRfc3339Ms("2025-12-31T23:30:00-00:30"), 1767225600000);
  EXPECT_EQ(ParseRfc3339Ms("2026-01-01T00:00:00.250Z"), 1767225600250);
  EXPECT_EQ(ParseRfc3339Ms("2026-01-01t00:00:00.2z"), 1767225600200);
  EXPECT_EQ(ParseRfc3339Ms("2024-02-29T12:00:00Z"), 1709208000000);
}

TEST(ParseRfc3339Ms, RefusesWhatIsNotOne) {
  for (const char* bad :
       {"", "2026-01-01", "2026-01-01 00:00:00Z", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z",
        "2023-02-29T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:00:00.Z",
        "2026-01-01T00:00:00+0100", "2026-01-01T00:00:00Zjunk", "yesterday"}) {
    EXPECT_FALSE(ParseRfc3339Ms(bad).has_value()) << bad;
  }
}

TEST(ParseJsonBody, ParsesAValue) {
  auto v = ParseJsonBody(R"({"a": [1, 2, {"b": null}]})");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)["a"][2]["b"], nullptr);
}

TEST(ParseJsonBody, NamesTheByteOffsetOfTheError) {
  auto v = ParseJsonBody(R"({"a": 1,})");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), ErrorCode::kBadRequest);
  EXPECT_NE(v.status().detail().find("byte offset 8"), std::string::npos) << v.status().ToString();
  auto empty = ParseJsonBody("");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().detail().find("byte offset 0"), std::string::npos);
  auto utf8 = ParseJsonBody("\"\xff\"");
  EXPECT_FALSE(utf8.ok());
}

TEST(ParseJsonBody, RefusesDeepNesting) {
  std::string deep(kMaxJsonDepth + 1, '[');
  deep += std::string(kMaxJsonDepth + 1, ']');
  auto v = ParseJsonBody(deep);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().detail().find("byte offset " + std::to_string(kMaxJsonDepth)),
            std::string::npos)
      << v.status().ToString();
  std::string ok(kMaxJsonDepth, '[');
  ok += std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(ParseJsonBody(ok).ok());
  // Brackets inside strings do not count.
  EXPECT_TRUE(ParseJsonBody("[\"" + std::string(200, '[') + "\"]").ok());
}

TEST(ParseIntParam, ChecksRangeAndSyntax) {
  EXPECT_EQ(*ParseIntParam("limit", "10", 1, 1000), 10);
  for (const char* bad : {"", "0", "1001", "-1", "1e3", "10x", " 10"}) {
    auto v = ParseIntParam("limit", bad, 1, 1000);
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_NE(v.status().detail().find("'limit'"), std::string::npos);
  }
}

TEST(Slugs, AndTokens) {
  EXPECT_TRUE(IsSlug("bradford-csc"));
  EXPECT_TRUE(IsSlug("missing_child"));
  EXPECT_FALSE(IsSlug(""));
  EXPECT_FALSE(IsSlug("Bradford"));
  EXPECT_FALSE(IsSlug(std::string(65, 'a')));
  EXPECT_TRUE(IsToken("msg_01J0:abc"));
  EXPECT_FALSE(IsToken("a b"));
  EXPECT_FALSE(IsToken(std::string(257, 'a')));
}

}  // namespace
}  // namespace safegate::server
