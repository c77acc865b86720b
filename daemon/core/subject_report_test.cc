// The subject access report in the store, with the shipped policy (policy/default.toml): a
// permit under a safeguarding override, a redaction, a denial by policy and one by refused
// consent are each listed with their reasons and lawful basis; another child's entries are
// not; the report is itself an audit entry, and a later report lists the earlier one.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>

#include "daemon/core/gateway.h"
#include "daemon/core/test_support.h"
#include "daemon/core/time_format.h"

namespace safegate {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace safegate::testing;
using nlohmann::json;

std::string PolicyFile() {
  if (const char* dir = std::getenv("SAFEGATE_SOURCE_DIR"); dir != nullptr && *dir != '\0') {
    return std::string(dir) + "/policy/default.toml";
  }
  return std::string(SAFEGATE_POLICY_DIR) + "/default.toml";
}

std::shared_ptr<const DeliveryPolicy> ShippedPolicy() {
  auto policy = MakePolicyDeliveryPolicy(PolicyFile());
  if (!policy.ok()) throw std::runtime_error(policy.status().ToString());
  return *policy;
}

const std::string kChild = std::string("nhs:") + kNhs1;
const std::string kOtherChild = std::string("nhs:") + kNhs2;

class SubjectReportTest : public ::testing::Test {
 protected:
  SubjectReportTest() : h(ShippedPolicy()) {}
  void SetUp() override {
    h.config()->audit.sth_max_entries = 1;  // a signed head after every commit
    ASSERT_TRUE(h.Open().ok());
  }

  Result<json> Report(const std::string& agency, const std::string& ref,
                      const std::string& purpose = "subject_access") {
    return Await<json>([&](Callback<json> cb) {
      h.gw().SubjectReport(CallerFor(agency), ref, purpose, std::move(cb));
    });
  }

  void RecordConsent(const std::string& subject, const std::string& status) {
    json body = {{"subject", subject},
                 {"purpose", "safeguarding"},
                 {"status", status},
                 {"recorded_by", "Practitioner 4711"},
                 {"recorded_at", core::FormatTimeMs(kT0 - kHour)}};
    auto r = Await<ConsentRecord>([&](Callback<ConsentRecord> cb) {
      h.gw().RecordConsent(CallerFor("bradford-csc"), std::move(body), std::move(cb));
    });
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  GatewayHarness h;
};

const json* FindItem(const json& list, const std::string& record_id, const std::string& to) {
  for (const json& item : list) {
    if (item.value("record_id", json()) == record_id && item.contains("to") &&
        item["to"].value("id", "") == to) {
      return &item;
    }
  }
  return nullptr;
}

std::string Joined(const json& reasons) {
  std::string out;
  for (const json& r : reasons) out += r.get<std::string>() + "\n";
  return out;
}

TEST_F(SubjectReportTest, ListsEveryDisclosureRefusalAndReadOfTheSubjectOnly) {
  RecordConsent(kChild, "refused");
  // Refused consent for safeguarding: denied.
  auto blocked = h.Push("wyp", MakePush("wyp", "OCC-1", {"bradford-csc"}, "safeguarding"));
  ASSERT_TRUE(blocked.ok()) << blocked.status().ToString();
  ASSERT_EQ(blocked->deliveries[0].decision, "deny");
  // The safeguarding override lifts the block: permit to csc, redact to health.
  PushRequest over = MakePush("wyp", "OCC-2", {"bradford-csc", "bthft"}, "safeguarding");
  over.override_request = json{{"basis", "DPA 2018 Sch 1 para 18"},
                               {"reason", "Parent refused; risk of immediate harm"},
                               {"authorised_by", "Team manager T. Example"}};
  auto overridden = h.Push("wyp", std::move(over));
  ASSERT_TRUE(overridden.ok()) << overridden.status().ToString();
  ASSERT_EQ(overridden->deliveries[0].decision, "permit");
  ASSERT_EQ(overridden->deliveries[1].decision, "redact");
  // A denial by policy: police to health for an s47 enquiry.
  auto s47 = h.Push("wyp", MakePush("wyp", "OCC-3", {"bthft"}, "s47_enquiry"));
  ASSERT_TRUE(s47.ok());
  ASSERT_EQ(s47->deliveries[0].decision, "deny");
  // Another child: must not appear.
  PushRequest other_push = MakePush("wyp", "OCC-5", {"bradford-csc"}, "missing_child");
  other_push.record = MakeRecord("wyp", "OCC-5", 1, kNhs2);
  auto other_child = h.Push("wyp", std::move(other_push));
  ASSERT_TRUE(other_child.ok()) << other_child.status().ToString();
  // The recipient reads its mailbox and the record.
  ASSERT_TRUE(h.Mailbox("bradford-csc").ok());
  ASSERT_TRUE(h.Get("bradford-csc", overridden->record_id).ok());

  auto report = Report("bradford-audit", kChild);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const json& r = *report;
  EXPECT_EQ(r["report"], "subject_access");
  EXPECT_EQ(r["subject"], kChild);
  EXPECT_EQ(r["purpose"], "subject_access");
  EXPECT_EQ(r["generated_by"], "bradford-audit");
  EXPECT_EQ(r["gateway"]["area"], "bradford");

  // Disclosures: the permit under the override and the redaction, with their reasons.
  const json* permit = FindItem(r["disclosures"], overridden->record_id, "bradford-csc");
  ASSERT_NE(permit, nullptr) << r["disclosures"].dump(2);
  EXPECT_EQ((*permit)["decision"], "permit");
  EXPECT_EQ((*permit)["from"]["id"], "wyp");
  EXPECT_EQ((*permit)["record_kind"], "flag");
  EXPECT_EQ((*permit)["purpose"], "safeguarding");
  EXPECT_EQ((*permit)["consent"], "refused");
  EXPECT_THAT((*permit)["lawful_basis"].get<std::string>(), HasSubstr("6(1)(e)"));
  EXPECT_THAT(Joined((*permit)["reasons"]), HasSubstr("builtin.R2-safeguarding-override"));
  // The entry records the rule id; the report gives the rule's own words from the stored
  // text of the policy version the entry cites.
  EXPECT_THAT(Joined((*permit)["reasons"]),
              HasSubstr("R2-police-to-csc-child-protection: police share what they know"));
  EXPECT_THAT((*permit)["reason_codes"], ::testing::Contains(json("R2-police-to-csc-child-protection")));
  ASSERT_TRUE((*permit)["override"].is_object());
  EXPECT_EQ((*permit)["override"]["used"], true);
  EXPECT_EQ((*permit)["override"]["recorded"]["reason"], "Parent refused; risk of immediate harm");
  EXPECT_EQ((*permit)["override"]["recorded"]["authorised_by"], "Team manager T. Example");
  EXPECT_TRUE((*permit)["acknowledged_at"].is_null());

  const json* redact = FindItem(r["disclosures"], overridden->record_id, "bthft");
  ASSERT_NE(redact, nullptr);
  EXPECT_EQ((*redact)["decision"], "redact");
  EXPECT_TRUE((*redact)["withheld"].is_array());
  EXPECT_FALSE((*redact)["withheld"].empty());
  EXPECT_EQ(r["disclosures"].size(), 2u);

  // Refusals: the consent block and the policy's denial, with why.
  const json* consent_block = FindItem(r["refusals"], blocked->record_id, "bradford-csc");
  ASSERT_NE(consent_block, nullptr) << r["refusals"].dump(2);
  EXPECT_EQ((*consent_block)["decision"], "deny");
  EXPECT_EQ((*consent_block)["consent"], "refused");
  EXPECT_THAT(Joined((*consent_block)["reasons"]),
              HasSubstr("builtin.R3-consent: consent was refused for safeguarding"));
  const json* policy_deny = FindItem(r["refusals"], s47->record_id, "bthft");
  ASSERT_NE(policy_deny, nullptr);
  EXPECT_THAT(Joined((*policy_deny)["reasons"]), HasSubstr("builtin.default-deny"));
  EXPECT_TRUE((*policy_deny)["lawful_basis"].is_null());

  // Who looked: the recipient's mailbox read and record read.
  bool mailbox_read = false, record_read = false;
  for (const json& read : r["reads"]) {
    if (read["action"] == "mailbox_read" && read["by"]["id"] == "bradford-csc") mailbox_read = true;
    if (read["action"] == "record_read" && read["record_id"] == overridden->record_id) {
      record_read = true;
    }
  }
  EXPECT_TRUE(mailbox_read);
  EXPECT_TRUE(record_read);

  // Consents: the refusal, as recorded.
  EXPECT_EQ(r["consents"]["state"]["safeguarding"], "refused");
  ASSERT_EQ(r["consents"]["consents"].size(), 1u);

  // Nothing about the other child: neither its record nor its reference.
  const std::string text = r.dump();
  EXPECT_THAT(text, Not(HasSubstr(other_child->record_id)));
  EXPECT_THAT(text, Not(HasSubstr(kNhs2)));

  // The tree head the report was cut at, signed, with the public key to check it.
  ASSERT_TRUE(r["tree_head"].is_object());
  EXPECT_GE(r["tree_head"]["tree_size"].get<int64_t>(), 1);
  EXPECT_FALSE(r["tree_head"]["public_key"].get<std::string>().empty());
  EXPECT_FALSE(r["tree_head"]["signature"].get<std::string>().empty());

  // The report is itself audited, about the subject, with its purpose.
  const int64_t report_seq = r["report_seq"].get<int64_t>();
  auto trail = AllEntries(h, Filter({{"subject", kChild}}));
  const AuditEntry* own = nullptr;
  for (const AuditEntry& e : trail) {
    if (e.seq == report_seq) own = &e;
  }
  ASSERT_NE(own, nullptr);
  EXPECT_EQ(own->action, "audit_queried");
  EXPECT_EQ(own->actor, "bradford-audit");
  EXPECT_EQ(own->subject, kChild);
  EXPECT_EQ(own->purpose, "subject_access");
  EXPECT_EQ(own->detail["what"], "subject_report");
  EXPECT_EQ(own->detail["disclosures"], 2);
  EXPECT_EQ(own->detail["refusals"], 2);
  // Never the reference in the entry's clear bytes.
  EXPECT_EQ(h.Count("audit", "instr(CAST(entry AS TEXT), '" + std::string(kNhs1) + "') > 0"), 0);

  // A later report lists the earlier one among the reads.
  auto again = Report("bradford-audit", kChild);
  ASSERT_TRUE(again.ok());
  bool lists_earlier = false;
  for (const json& read : (*again)["reads"]) {
    if (read["seq"] == report_seq) {
      lists_earlier = true;
      EXPECT_EQ(read["what"], "subject access report");
      EXPECT_EQ(read["by"]["id"], "bradford-audit");
    }
  }
  EXPECT_TRUE(lists_earlier);
  EXPECT_TRUE(h.Verify().ok());
  EXPECT_TRUE(h.Verify()->ok);
}

TEST_F(SubjectReportTest, RefusesOtherRolesBadReferencesAndMissingPurposeAndAuditsIt) {
  EXPECT_EQ(Report("wyp", kChild).status().code(), ErrorCode::kForbidden);
  EXPECT_EQ(Report("bradford-csc", kChild).status().code(), ErrorCode::kForbidden);
  EXPECT_EQ(Report("bradford-audit", "Alex Example").status().code(), ErrorCode::kBadRequest);
  auto no_purpose = Report("bradford-audit", kChild, "");
  EXPECT_EQ(no_purpose.status().code(), ErrorCode::kInvalidInput);
  ASSERT_FALSE(no_purpose.status().problems().empty());
  EXPECT_EQ(no_purpose.status().problems()[0].where, "purpose");
  EXPECT_EQ(Report("bradford-audit", kChild, "Not A Slug").status().code(),
            ErrorCode::kInvalidInput);

  int refusals = 0;
  for (const AuditEntry& e : AllEntries(h)) {
    if (e.action == "request_rejected" && e.detail.value("operation", "") == "subject_report") {
      ++refusals;
      EXPECT_THAT(e.detail.dump(), Not(HasSubstr("Alex Example")));
    }
  }
  EXPECT_EQ(refusals, 5);
}

TEST_F(SubjectReportTest, AnUnknownSubjectGivesAnEmptyReport) {
  auto r = Report("bradford-audit", kOtherChild);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE((*r)["disclosures"].empty());
  EXPECT_TRUE((*r)["refusals"].empty());
  EXPECT_TRUE((*r)["reads"].empty());
  EXPECT_EQ((*r)["entries"], 0);
  EXPECT_GE((*r)["report_seq"].get<int64_t>(), 1);
}

// A record known only by its CSC id joins the child's subject through that id (docs/subjects.md);
// the report asked under the NHS number covers it too, saying which reference each disclosure
// was made under, and so does the report asked under the CSC id. A child held for review (a
// second NHS number with the same CSC id) is not linked and stays out.
TEST_F(SubjectReportTest, CoversReferencesLinkedToTheSameSubject) {
  const std::string csc_ref = "csc:bradford:BRA-000123";
  auto first = h.Push("wyp", MakePush("wyp", "OCC-10", {"bradford-csc"}, "safeguarding"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  PushRequest by_csc = MakePush("bradford-csc", "CSC-11", {"wyp"}, "safeguarding");
  by_csc.record = MakeRecord("bradford-csc", "CSC-11", 1);
  by_csc.record.subject.nhs_number.reset();  // known to the CSC by its own id only
  auto second = h.Push("bradford-csc", std::move(by_csc));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  PushRequest other = MakePush("wyp", "OCC-12", {"bradford-csc"}, "safeguarding");
  other.record = MakeRecord("wyp", "OCC-12", 1, kNhs2);
  ASSERT_TRUE(h.Push("wyp", std::move(other)).ok());

  for (const std::string& asked : {kChild, csc_ref}) {
    auto r = Report("bradford-audit", asked);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const std::string linked = asked == kChild ? csc_ref : kChild;
    EXPECT_EQ((*r)["subject"], asked);
    EXPECT_EQ((*r)["linked_references"], json::array({linked})) << r->dump(2);
    std::map<std::string, std::string> reference_of;  // record_id -> reference
    // Each push's delivery decision, permitted or refused by the policy.
    for (const char* section : {"disclosures", "refusals"}) {
      for (const json& d : (*r)[section]) {
        if (d.value("action", "").rfind("delivery_", 0) != 0) continue;
        reference_of[d.value("record_id", "")] = d.value("reference", "");
      }
    }
    ASSERT_EQ(reference_of.size(), 2u) << r->dump(2);
    EXPECT_EQ(reference_of[first->record_id], kChild);
    EXPECT_EQ(reference_of[second->record_id], csc_ref);
    // Every item says its reference, and none is the other child's.
    for (const char* section : {"disclosures", "refusals", "reads", "events"}) {
      for (const json& item : (*r)[section]) {
        EXPECT_THAT(item.value("reference", ""), ::testing::AnyOf(kChild, csc_ref)) << item;
      }
    }
    EXPECT_THAT(r->dump(), Not(HasSubstr(kNhs2)));
  }
}

}  // namespace
}  // namespace safegate
