#include "record/status.h"
#include "record/json_pointer.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace safegate {
namespace {

TEST(StatusTest, EveryErrorCodeHasAUniqueNameAndAnErrorHttpStatus) {
  std::set<std::string_view> names;
  for (ErrorCode code : AllErrorCodes()) {
    const std::string_view name = ErrorCodeName(code);
    EXPECT_FALSE(name.empty()) << static_cast<int>(code);
    EXPECT_NE(name, "ok") << static_cast<int>(code);
    EXPECT_TRUE(names.insert(name).second) << "duplicate name " << name;
    const int http = HttpStatusFor(code);
    EXPECT_GE(http, 400) << name;
    EXPECT_LE(http, 599) << name;
  }
  // kOk is the only code not listed; every other enumerator is.
  EXPECT_EQ(AllErrorCodes().size(), static_cast<size_t>(ErrorCode::kInternal));
  EXPECT_EQ(ErrorCodeName(ErrorCode::kOk), "ok");
  EXPECT_EQ(HttpStatusFor(ErrorCode::kOk), 200);
}

TEST(StatusTest, CodesMatchTheApiContract) {
  struct Row {
    ErrorCode code;
    std::string_view name;
    int http;
  };
  const Row rows[] = {
      {ErrorCode::kBadRequest, "bad_request", 400},
      {ErrorCode::kInvalidInput, "invalid_input", 422},
      {ErrorCode::kUnauthenticated, "unauthenticated", 401},
      {ErrorCode::kForbidden, "forbidden", 403},
      {ErrorCode::kNotFound, "not_found", 404},
      {ErrorCode::kConflict, "conflict", 409},
      {ErrorCode::kPayloadTooLarge, "payload_too_large", 413},
      {ErrorCode::kUnsupportedMediaType, "unsupported_media_type", 415},
      {ErrorCode::kTooManyRequests, "too_many_requests", 429},
      {ErrorCode::kUnavailable, "unavailable", 503},
      {ErrorCode::kInternal, "internal", 500},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(ErrorCodeName(row.code), row.name);
    EXPECT_EQ(HttpStatusFor(row.code), row.http) << row.name;
  }
}

TEST(StatusTest, InvalidProblemsNamesTheOneProblemOrCountsThem) {
  Status one = InvalidProblems({{"/subject", "required field missing"}});
  EXPECT_EQ(one.code(), ErrorCode::kInvalidInput);
  EXPECT_EQ(one.detail(), "/subject: required field missing");
  ASSERT_EQ(one.problems().size(), 1u);
  Status two = InvalidProblems({{"/a", "bad"}, {"/b", "worse"}});
  EXPECT_EQ(two.detail(), "2 problems; the first: /a: bad");
  EXPECT_EQ(two.problems().size(), 2u);
}

TEST(StatusTest, DefaultIsOkAndFactoriesSetCodes) {
  EXPECT_TRUE(Status().ok());
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ(Status::BadRequest("x").code(), ErrorCode::kBadRequest);
  EXPECT_EQ(Status::Invalid("x").code(), ErrorCode::kInvalidInput);
  EXPECT_EQ(Status::Unauthenticated("x").code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(Status::Forbidden("x").code(), ErrorCode::kForbidden);
  EXPECT_EQ(Status::NotFound("x").code(), ErrorCode::kNotFound);
  EXPECT_EQ(Status::Conflict("x").code(), ErrorCode::kConflict);
  EXPECT_EQ(Status::Unavailable("x").code(), ErrorCode::kUnavailable);
  EXPECT_EQ(Status::Internal("x").code(), ErrorCode::kInternal);
  EXPECT_FALSE(Status::Internal("x").ok());
}

TEST(StatusTest, ToStringNamesCodeDetailAndProblems) {
  Status s = Status::Invalid("record has 2 problems",
                             {{"/a", "required field missing"}, {"/b/0", "unknown field"}});
  EXPECT_EQ(s.ToString(),
            "invalid_input: record has 2 problems\n  at /a: required field missing\n"
            "  at /b/0: unknown field");
  EXPECT_EQ(s.problems().size(), 2u);
  EXPECT_EQ(Status::NotFound("").ToString(), "not_found");
}

TEST(StatusTest, ResultHoldsValueOrStatus) {
  Result<int> good(7);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  EXPECT_TRUE(good.status().ok());

  Result<int> bad(Status::NotFound("no such record"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(bad.status().detail(), "no such record");

  Result<std::string> moved(std::string("abc"));
  std::string taken = std::move(moved).value();
  EXPECT_EQ(taken, "abc");
}

}  // namespace
}  // namespace safegate
