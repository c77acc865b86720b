// The subject access report through a real gateway (docs/subject-access.md): the route with
// the audit officer's certificate, refusals for other roles and without a purpose, and
// `safegatectl audit export` writing the printable page with the disclosures on it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "tests/support/sandbox.h"
#include "tests/support/test_data.h"

namespace safegate::testing {
namespace {

using nlohmann::json;

class SubjectReportFlowTest : public SandboxTest {};

TEST_F(SubjectReportFlowTest, AuditOfficerGetsTheReportOthersAreRefused) {
  const std::string nhs = TestNhsNumber(31);
  const std::string other_nhs = TestNhsNumber(32);
  HttpsClient wyp = Client("wyp");
  auto pushed =
      wyp.PostJson("/v1/records", PushBody(CseFlag(nhs, "OCC-SAR-1"), {"bradford-csc", "bthft"}));
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  ASSERT_EQ(pushed->status, 201) << pushed->Describe();
  const std::string record_id = pushed->Json().value("record_id", "");
  auto other = wyp.PostJson("/v1/records",
                            PushBody(CseFlag(other_nhs, "OCC-SAR-2"), {"bradford-csc"}));
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(other->status, 201) << other->Describe();
  const std::string other_id = other->Json().value("record_id", "");

  const std::string path = "/v1/audit/subjects/nhs%3A" + nhs + "/report";
  auto report = Client("bradford-audit").Get(path + "?purpose=subject_access");
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->status, 200) << report->Describe();
  const json r = report->Json();
  EXPECT_EQ(r["subject"], NhsRef(nhs));
  ASSERT_TRUE(r["disclosures"].is_array());
  EXPECT_EQ(r["disclosures"].size(), 2u) << r.dump(2);
  for (const json& d : r["disclosures"]) {
    EXPECT_EQ(d["record_id"], record_id);
    EXPECT_EQ(d["from"]["id"], "wyp");
    EXPECT_FALSE(d["reasons"].empty());
  }
  EXPECT_EQ(r.dump().find(other_id), std::string::npos);
  EXPECT_TRUE(r["consents"].is_object());
  EXPECT_TRUE(r.contains("tree_head"));

  // A csc certificate: 403 from the HTTP layer. No purpose: 400. Not a reference: 400.
  auto csc = Client("bradford-csc").Get(path + "?purpose=subject_access");
  ASSERT_TRUE(csc.ok());
  EXPECT_EQ(csc->status, 403) << csc->Describe();
  auto no_purpose = Client("bradford-audit").Get(path);
  ASSERT_TRUE(no_purpose.ok());
  EXPECT_EQ(no_purpose->status, 400) << no_purpose->Describe();
  EXPECT_NE(no_purpose->body.find("purpose"), std::string::npos) << no_purpose->Describe();
  auto bad_ref =
      Client("bradford-audit").Get("/v1/audit/subjects/Alex%20Example/report?purpose=dsar");
  ASSERT_TRUE(bad_ref.ok());
  EXPECT_EQ(bad_ref->status, 400) << bad_ref->Describe();

  // The report is itself in the log, about the subject.
  bool audited = false;
  for (const json& e : AuditEntries("subject=" + NhsRef(nhs) + "&action=audit_queried")) {
    if (e["detail"].value("what", "") == "subject_report" &&
        e.value("seq", int64_t{0}) == r.value("report_seq", int64_t{-1})) {
      audited = true;
      EXPECT_EQ(e["actor"], "bradford-audit");
      EXPECT_EQ(e["purpose"], "subject_access");
    }
  }
  EXPECT_TRUE(audited);
}

TEST_F(SubjectReportFlowTest, SafegatectlExportsAPrintablePage) {
  const std::string nhs = TestNhsNumber(33);
  auto pushed = Client("wyp").PostJson("/v1/records",
                                       PushBody(CseFlag(nhs, "OCC-SAR-3"), {"bradford-csc"}));
  ASSERT_TRUE(pushed.ok());
  ASSERT_EQ(pushed->status, 201) << pushed->Describe();
  const std::string record_id = pushed->Json().value("record_id", "");

  const json& doc = sandbox().json();
  const json& audit = doc["areas"]["bradford"]["agencies"]["bradford-audit"];
  const std::string out = sandbox().dir() + "/sar.html";
  std::string output;
  Result<int> rc = RunProgram(
      {SafegatectlPath(), "audit", "export", "--subject", NhsRef(nhs), "--format", "html",
       "--out", out, "--url", sandbox().area("bradford").url, "--ca",
       doc["ca"].get<std::string>(), "--cert", audit.value("cert", ""), "--key",
       audit.value("key", "")},
      &output);
  ASSERT_TRUE(rc.ok()) << rc.status().ToString();
  ASSERT_EQ(*rc, 0) << output;
  EXPECT_NE(output.find("1 disclosures"), std::string::npos) << output;
  std::ifstream in(out);
  const std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("What was shared, with whom, when and why"), std::string::npos);
  EXPECT_NE(html.find(record_id), std::string::npos);
  EXPECT_NE(html.find("(bradford-csc)"), std::string::npos);
  EXPECT_NE(html.find(NhsRef(nhs)), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);

  // As a csc agency the export is refused, and says why.
  const json& csc = doc["areas"]["bradford"]["agencies"]["bradford-csc"];
  rc = RunProgram({SafegatectlPath(), "audit", "export", "--subject", NhsRef(nhs), "--url",
                   sandbox().area("bradford").url, "--ca", doc["ca"].get<std::string>(),
                   "--cert", csc.value("cert", ""), "--key", csc.value("key", "")},
                  &output);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 1) << output;
  EXPECT_NE(output.find("403"), std::string::npos) << output;
}

}  // namespace
}  // namespace safegate::testing
