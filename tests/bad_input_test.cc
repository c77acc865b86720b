// Bad input through a real gateway: each request is refused with the documented status and
// error code, names what was wrong and where, is audited as request_rejected, and leaves
// nothing stored (no record accepted, no message in any mailbox).
#include <gtest/gtest.h>

#include <functional>

#include "tests/support/sandbox.h"
#include "tests/support/test_data.h"

namespace safegate::testing {
namespace {

using nlohmann::json;

class BadInputTest : public SandboxTest {
 protected:
  // The body of a valid push, to break in one place.
  json ValidPush() {
    return PushBody(CseFlag(TestNhsNumber(7), "OCC-2025-000777"), {"bradford-csc", "bthft"});
  }

  bool HasProblemAt(const HttpResponse& r, const std::string& where) {
    json body = r.Json();
    if (!body.is_object() || !body.contains("problems") || !body["problems"].is_array()) {
      return false;
    }
    for (const auto& p : body["problems"]) {
      if (p.value("where", "") == where && !p.value("what", "").empty()) return true;
    }
    return false;
  }

  // Sends a request that must be refused with `status`/`code`, and checks that the refusal
  // was audited. Returns the response for further checks.
  HttpResponse ExpectRefused(const std::string& what, int status, const std::string& code,
                             const std::function<Result<HttpResponse>()>& send) {
    const size_t rejected_before = CountAudit("request_rejected");
    Result<HttpResponse> r = send();
    EXPECT_TRUE(r.ok()) << what << ": " << r.status().ToString();
    if (!r.ok()) return {};
    EXPECT_EQ(r->status, status) << what << ": " << r->Describe();
    if (!code.empty()) {
      EXPECT_EQ(r->ErrorCode(), code) << what << ": " << r->Describe();
      json body = r->Json();
      EXPECT_TRUE(body.is_object() && body.contains("detail") && body["detail"].is_string() &&
                  !body["detail"].get<std::string>().empty())
          << what << ": an error names what was wrong: " << r->Describe();
    }
    EXPECT_GT(CountAudit("request_rejected"), rejected_before)
        << what << ": a rejected request is still audited";
    return *r;
  }

  void ExpectNothingStored() {
    EXPECT_TRUE(AuditEntries("action=record_accepted").empty()) << "a refused push stored a record";
    for (const char* recipient : {"bradford-csc", "bthft"}) {
      auto mailbox = Client(recipient).Get("/v1/mailbox");
      ASSERT_TRUE(mailbox.ok()) << mailbox.status().ToString();
      ASSERT_EQ(mailbox->status, 200) << mailbox->Describe();
      EXPECT_TRUE(mailbox->Json()["messages"].empty())
          << recipient << " received a refused push: " << mailbox->Describe();
    }
  }
};

TEST_F(BadInputTest, MalformedJsonIs400) {
  HttpsClient wyp = Client("wyp");
  ExpectRefused("truncated JSON", 400, "bad_request", [&] {
    return wyp.Request("POST", "/v1/records", R"({"record": {"kind": "flag", )",
                       {{"Content-Type", "application/json"}});
  });
  ExpectRefused("not JSON at all", 400, "bad_request", [&] {
    return wyp.Request("POST", "/v1/records", "kind=flag&level=high",
                       {{"Content-Type", "application/json"}});
  });
  ExpectNothingStored();
}

TEST_F(BadInputTest, WrongTypesAre422WithProblems) {
  HttpsClient wyp = Client("wyp");
  json push = ValidPush();
  push["record"]["kind"] = 5;
  push["record"]["source"]["version"] = "one";
  HttpResponse r = ExpectRefused("wrong types", 422, "invalid_input",
                                 [&] { return wyp.PostJson("/v1/records", push); });
  EXPECT_TRUE(HasProblemAt(r, "/record/kind")) << r.Describe();
  EXPECT_TRUE(HasProblemAt(r, "/record/source/version")) << r.Describe();

  json not_object = ValidPush();
  not_object["recipients"] = "bradford-csc";
  r = ExpectRefused("recipients not a list", 422, "invalid_input",
                    [&] { return wyp.PostJson("/v1/records", not_object); });
  EXPECT_TRUE(HasProblemAt(r, "/recipients")) << r.Describe();
  ExpectNothingStored();
}

TEST_F(BadInputTest, MissingFieldsAre422WithProblems) {
  HttpsClient wyp = Client("wyp");
  json push = ValidPush();
  push.erase("purpose");
  push["record"]["source"].erase("record_id");
  HttpResponse r = ExpectRefused("missing fields", 422, "invalid_input",
                                 [&] { return wyp.PostJson("/v1/records", push); });
  EXPECT_TRUE(HasProblemAt(r, "/purpose")) << r.Describe();
  EXPECT_TRUE(HasProblemAt(r, "/record/source/record_id")) << r.Describe();
  ExpectNothingStored();
}

TEST_F(BadInputTest, BadNhsCheckDigitIs422AtTheField) {
  HttpsClient wyp = Client("wyp");
  json push = ValidPush();
  push["record"]["subject"]["nhs_number"] = BadCheckDigit(TestNhsNumber(7));
  HttpResponse r = ExpectRefused("bad NHS check digit", 422, "invalid_input",
                                 [&] { return wyp.PostJson("/v1/records", push); });
  EXPECT_TRUE(HasProblemAt(r, "/record/subject/nhs_number")) << r.Describe();
  ExpectNothingStored();
}

TEST_F(BadInputTest, BodyOverTheLimitIs413BeforeItIsRead) {
  HttpsClient wyp = Client("wyp");
  // Only the head is sent: the gateway must answer from Content-Length alone.
  const std::string head =
      "POST /v1/records HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(17 * 1024 * 1024) + "\r\nConnection: close\r\n\r\n";
  ExpectRefused("17 MiB body", 413, "payload_too_large", [&] { return wyp.SendRaw(head); });
  ExpectNothingStored();
}

TEST_F(BadInputTest, WrongContentTypeIs415) {
  HttpsClient wyp = Client("wyp");
  ExpectRefused("text/plain", 415, "unsupported_media_type", [&] {
    return wyp.Request("POST", "/v1/records", ValidPush().dump(), {{"Content-Type", "text/plain"}});
  });
  ExpectNothingStored();
}

TEST_F(BadInputTest, SourceAgencyThatIsNotTheCallerIs403) {
  // wyp's certificate, a record claiming to come from children's social care.
  HttpsClient wyp = Client("wyp");
  json push =
      PushBody(CseFlag(TestNhsNumber(7), "OCC-2025-000777", "high", 1, "bradford-csc"), {"bthft"});
  ExpectRefused("source.agency is not the caller", 403, "forbidden",
                [&] { return wyp.PostJson("/v1/records", push); });
  ExpectNothingStored();
}

TEST_F(BadInputTest, UnknownRecipientIs422) {
  HttpsClient wyp = Client("wyp");
  json push = ValidPush();
  push["recipients"] = {"bradford-csc", "no-such-agency"};
  ExpectRefused("unknown recipient", 422, "invalid_input",
                [&] { return wyp.PostJson("/v1/records", push); });
  // Nothing was delivered to the known recipient either: the push is refused as a whole.
  ExpectNothingStored();
}

TEST_F(BadInputTest, OversizedHeadersAre431) {
  HttpsClient wyp = Client("wyp");
  ExpectRefused("32 KiB header", 431, "", [&] {
    return wyp.Request(
        "POST", "/v1/records", ValidPush().dump(),
        {{"Content-Type", "application/json"}, {"X-Padding", std::string(32 * 1024, 'a')}});
  });
  ExpectNothingStored();
}

}  // namespace
}  // namespace safegate::testing
