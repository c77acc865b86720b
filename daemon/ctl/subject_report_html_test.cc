// The printable subject access report: every section present, every disclosure shown with
// whom, when and why, free text escaped (a reason carrying <script> stays text), no scripts
// or external resources, and a report missing members still renders.
#include "daemon/ctl/subject_report_html.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace safegate::ctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using nlohmann::json;

json SampleReport() {
  return json::parse(R"({
    "report": "subject_access", "subject": "nhs:9990000018",
    "generated_at": "2026-11-21T18:00:00.000Z", "generated_by": "bradford-audit",
    "purpose": "subject_access", "gateway": {"area": "bradford"},
    "report_seq": 42, "log_size": 41, "entries": 9, "truncated": false,
    "disclosures": [
      {"seq": 5, "at": "2026-11-21T17:34:00.123Z", "action": "delivery_permitted",
       "from": {"id": "wyp", "name": "West Yorkshire Police"},
       "to": {"id": "bradford-csc", "name": "Bradford Children's Social Care"},
       "record_id": "rec_8f14e45fceea167a5a36dedd4bea2543", "record_kind": "flag",
       "message_id": "msg_c9f0f895fb98ab9159f51fd0297e236d", "purpose": "safeguarding",
       "decision": "permit", "lawful_basis": "UK GDPR Art 6(1)(e) public task",
       "reasons": ["rules fired: R2", "<script>alert('x')</script>"],
       "consent": "refused", "acknowledged_at": "2026-11-21T17:40:00.000Z",
       "override": {"used": true, "seq": 7,
                    "recorded": {"basis": "DPA 2018 Sch 1 para 18",
                                 "reason": "Risk of <b>immediate</b> harm & more",
                                 "authorised_by": "T. Example"}}},
      {"seq": 6, "at": "2026-11-21T17:34:00.123Z", "action": "delivery_redacted",
       "from": {"id": "wyp", "name": null}, "to": {"id": "bthft", "name": null},
       "record_id": "rec_8f14e45fceea167a5a36dedd4bea2543", "record_kind": "flag",
       "purpose": "safeguarding", "decision": "redact", "lawful_basis": null,
       "reasons": [], "consent": null, "withheld": ["/subject/postcode"], "override": null},
      {"seq": 3, "at": "2026-11-20T09:00:00.000Z", "action": "delivery_permitted", "erased": true}
    ],
    "refusals": [
      {"seq": 4, "at": "2026-11-21T17:30:00.000Z", "action": "delivery_denied",
       "from": {"id": "wyp", "name": "West Yorkshire Police"}, "to": {"id": "bthft", "name": null},
       "record_id": "rec_1", "record_kind": "flag", "purpose": "s47_enquiry", "decision": "deny",
       "reasons": ["builtin.R3-consent: consent was refused for safeguarding"],
       "consent": "refused", "override": null}
    ],
    "reads": [
      {"seq": 8, "at": "2026-11-21T17:41:00.000Z", "action": "mailbox_read",
       "by": {"id": "bradford-csc", "name": "Bradford CSC"}, "what": "record received from the mailbox",
       "purpose": "safeguarding", "record_id": "rec_8f14e45fceea167a5a36dedd4bea2543",
       "reasons": [], "detail": {}}
    ],
    "events": [],
    "erased_entries": 1,
    "consents": {"subject": "nhs:9990000018",
                 "consents": [{"consent_id": "con_1", "subject": "nhs:9990000018",
                               "purpose": "safeguarding", "status": "refused",
                               "recorded_by": "Practitioner \"4711\"",
                               "recorded_at": "2026-11-21T16:00:00.000Z",
                               "agency": "bradford-csc", "stored_at": "2026-11-21T16:00:01.000Z"}],
                 "state": {"safeguarding": "refused"}},
    "tree_head": {"tree_size": 41, "root_hash": "ab12", "timestamp": 1795282440000,
                  "signature": "c2lnbmF0dXJl", "public_key": "cHVibGljIGtleQ=="}
  })");
}

TEST(SubjectReportHtmlTest, EscapesEveryHtmlSpecialCharacter) {
  EXPECT_EQ(HtmlEscape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(HtmlEscape("plain text"), "plain text");
}

TEST(SubjectReportHtmlTest, ShowsEveryDisclosureWithWhomWhenAndWhy) {
  const std::string html = RenderSubjectReportHtml(SampleReport());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  for (const char* heading :
       {"Who this report is about", "What was shared, with whom, when and why",
        "What was refused", "Consents", "Who looked", "How to verify this report"}) {
    EXPECT_THAT(html, HasSubstr(std::string("<h2>") + heading + "</h2>")) << heading;
  }
  EXPECT_THAT(html, HasSubstr("nhs:9990000018"));
  // The permit: to whom, when, why, on what basis, with the override recorded.
  EXPECT_THAT(html, HasSubstr("Bradford Children&#39;s Social Care"));
  EXPECT_THAT(html, HasSubstr("2026-11-21T17:34:00.123Z"));
  EXPECT_THAT(html, HasSubstr("UK GDPR Art 6(1)(e) public task"));
  EXPECT_THAT(html, HasSubstr("Safeguarding override used"));
  EXPECT_THAT(html, HasSubstr("authorised by: T. Example"));
  EXPECT_THAT(html, HasSubstr("rec_8f14e45fceea167a5a36dedd4bea2543"));
  // The redaction and what it withheld; the erased entry without details.
  EXPECT_THAT(html, HasSubstr("shared with parts withheld"));
  EXPECT_THAT(html, HasSubstr("/subject/postcode"));
  EXPECT_THAT(html, HasSubstr("its details were erased"));
  // The refusal and its reason, the consent, who looked, the signed head and key.
  EXPECT_THAT(html, HasSubstr("builtin.R3-consent: consent was refused for safeguarding"));
  EXPECT_THAT(html, HasSubstr("Practitioner &quot;4711&quot;"));
  EXPECT_THAT(html, HasSubstr("record received from the mailbox"));
  EXPECT_THAT(html, HasSubstr("cHVibGljIGtleQ=="));
  EXPECT_THAT(html, HasSubstr("c2lnbmF0dXJl"));
  EXPECT_THAT(html, HasSubstr("@media print"));
}

TEST(SubjectReportHtmlTest, FreeTextIsEscapedAndThePageRunsNoScripts) {
  const std::string html = RenderSubjectReportHtml(SampleReport());
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, HasSubstr("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
  EXPECT_THAT(html, Not(HasSubstr("<b>immediate</b>")));
  EXPECT_THAT(html, HasSubstr("Risk of &lt;b&gt;immediate&lt;/b&gt; harm &amp; more"));
  // Self-contained: no external resources, and the browser is told to load none.
  EXPECT_THAT(html, Not(HasSubstr("src=")));
  EXPECT_THAT(html, Not(HasSubstr("<link")));
  EXPECT_THAT(html, HasSubstr("default-src 'none'"));

  // A subject reference carrying markup (the page never trusts the report) stays text.
  json hostile = SampleReport();
  hostile["subject"] = "</title><script>x()</script>";
  const std::string page = RenderSubjectReportHtml(hostile);
  EXPECT_THAT(page, Not(HasSubstr("<script")));
  EXPECT_THAT(page, HasSubstr("&lt;/title&gt;&lt;script&gt;"));
}

TEST(SubjectReportHtmlTest, AnEmptyOrMalformedReportStillRenders) {
  const std::string empty = RenderSubjectReportHtml(json::object());
  EXPECT_THAT(empty, HasSubstr("Nothing about this subject was shared."));
  EXPECT_THAT(empty, HasSubstr("Nothing was refused."));
  EXPECT_THAT(empty, HasSubstr("No tree head had been signed"));
  const std::string odd = RenderSubjectReportHtml(
      json{{"disclosures", json::array({42, "x", json::object()})}, {"subject", 7}});
  EXPECT_THAT(odd, HasSubstr("</html>"));
  EXPECT_THAT(RenderSubjectReportHtml(json("not an object")), HasSubstr("</html>"));
}

}  // namespace
}  // namespace safegate::ctl
