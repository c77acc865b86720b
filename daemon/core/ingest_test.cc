// Ingest, subject linking and the flags view, on a real store (SQLite in a temp directory).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include "daemon/core/ingest.h"
#include "daemon/core/ingest_story.h"
#include "daemon/core/subjects.h"
#include "daemon/core/test_support.h"
#include "record/record.h"
#include "tools/gen_exports/generator.h"

#include <sqlite3.h>

#include <map>
#include <set>

namespace safegate {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using namespace safegate::testing;
using nlohmann::json;

std::vector<std::string> Actions(const std::vector<AuditEntry>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) out.push_back(e.action);
  return out;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// ---- Normalisation and scoring ----------------------------------------------------------

TEST(SubjectsTest, NamesAreFolded) {
  EXPECT_EQ(core::NormaliseName("  O'Brien-Smith "), "o brien smith");
  EXPECT_EQ(core::NormaliseName("Zo\u00eb"), "zoe");
  EXPECT_EQ(core::NormaliseName("\u0141UCJA"), "lucja");
  EXPECT_EQ(core::NormaliseName("\u00c6r\u00f8sk\u00f8bing"), "aeroskobing");
  EXPECT_EQ(core::NormaliseName("Jose\u0301"), "jose");  // a combining accent
  EXPECT_EQ(core::NormaliseName("Mary\u2013Jane  Smith"), "mary jane smith");
  EXPECT_EQ(core::NormaliseName("D\u00fcrst 3rd"), "durst rd");
  EXPECT_EQ(core::NormaliseName(""), "");
  EXPECT_EQ(core::NormaliseName("\xff\xfe"), "");  // not UTF-8: nothing to compare

  record::Subject s;
  s.given_name = "Mary-Jane Anne";
  s.family_name = "Smith-Jones";
  s.birth_date = "2011-03-07";
  s.postcode = "bd3 9ab";
  const core::Traits t = core::TraitsOf(s);
  EXPECT_EQ(t.given, "mary");
  EXPECT_EQ(t.given_all, "maryjaneanne");
  EXPECT_EQ(t.family, "smithjones");
  EXPECT_EQ(t.postcode, "BD39AB");
}

TEST(SubjectsTest, DayAndMonthSwap) {
  EXPECT_EQ(core::SwapDayMonth("2012-03-07"), "2012-07-03");
  EXPECT_EQ(core::SwapDayMonth("2012-03-13"), std::nullopt);  // no 13th month
  EXPECT_EQ(core::SwapDayMonth("2012-03-03"), std::nullopt);  // the same date
  EXPECT_EQ(core::SwapDayMonth("2012-3-7"), std::nullopt);
}

TEST(SubjectsTest, JaroWinkler) {
  EXPECT_NEAR(core::JaroWinkler("martha", "marhta"), 0.961, 0.001);
  EXPECT_NEAR(core::JaroWinkler("dixon", "dicksonx"), 0.813, 0.001);
  EXPECT_EQ(core::JaroWinkler("same", "same"), 1.0);
  EXPECT_EQ(core::JaroWinkler("abc", "xyz"), 0.0);
  EXPECT_EQ(core::JaroWinkler("", "x"), 0.0);
}

TEST(SubjectsTest, ScoreWeighsEachTrait) {
  core::Traits a{"amira", "amira", "hussain", "2011-03-07", "BD39AB"};
  EXPECT_EQ(core::Score(a, a).score, 13);
  core::Traits misspelt = a;
  misspelt.family = "hussein";
  EXPECT_EQ(core::Score(misspelt, a).score, 11);  // a link, just
  EXPECT_THAT(core::Score(misspelt, a).evidence,
              ElementsAre("family name similar", "forename same", "date of birth same",
                          "postcode same"));
  core::Traits swapped = a;
  swapped.birth_date = "2011-07-03";
  swapped.postcode = "LS14AB";
  EXPECT_EQ(core::Score(swapped, a).score, 8);  // held
  core::Traits twin = a;
  twin.given = twin.given_all = "zara";
  EXPECT_EQ(core::Score(twin, a).score, 6);  // neither
  core::Traits unknown_postcode = a;
  unknown_postcode.postcode.clear();
  EXPECT_EQ(core::Score(unknown_postcode, a).score, 11);
  core::Traits district = a;
  district.postcode = "BD31AA";
  EXPECT_EQ(core::Score(district, a).score, 11.5);
}

// ---- Ingest, linking and flags through the Gateway ---------------------------------------

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(h.Open().ok()); }

  Result<IngestOutcome> Ingest(const std::string& agency, const std::string& format,
                               const std::string& content, std::vector<std::string> to = {},
                               const std::string& purpose = "child_protection") {
    IngestRequest req;
    req.format = format;
    req.content = content;
    req.purpose = purpose;
    req.recipients = std::move(to);
    return Await<IngestOutcome>([&](Callback<IngestOutcome> cb) {
      h.gw().Ingest(CallerFor(agency), req, std::move(cb));
    });
  }

  Result<FlagsView> Flags(const std::string& agency, const std::string& ref,
                          const std::string& purpose = "child_protection") {
    return Await<FlagsView>([&](Callback<FlagsView> cb) {
      h.gw().SubjectFlags(CallerFor(agency), ref, purpose, std::move(cb));
    });
  }

  // The whole story of ingest_story.h: the CSC's referral, then the three exports.
  void TellTheStory() {
    PushRequest referral;
    auto r = record::ParseRecord(story::CscReferral());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    referral.record = *r;
    referral.purpose = "child_protection";
    referral.recipients = {"wyp", "bthft"};
    ASSERT_TRUE(h.Push("bradford-csc", referral).ok());
    auto niche = Ingest("wyp", "niche-xml", story::kNicheXml);
    ASSERT_TRUE(niche.ok()) << niche.status().ToString();
    auto fhir = Ingest("bthft", "fhir-flag", story::kFhirBundle);
    ASSERT_TRUE(fhir.ok()) << fhir.status().ToString();
    auto cin = Ingest("bradford-csc", "cin-xml", story::kCinXml);
    ASSERT_TRUE(cin.ok()) << cin.status().ToString();
  }

  std::vector<std::string> FlagTypes(const FlagsView& v) {
    std::vector<std::string> out;
    for (const SubjectFlag& f : v.flags) out.push_back(f.record["body"]["type"]);
    return out;
  }

  GatewayHarness h;
};

TEST_F(IngestTest, AnExportIsStoredAsPushesWithDefaultRecipients) {
  auto out = Ingest("wyp", "niche-xml", story::kNicheXml);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->adapter, "niche-xml");
  EXPECT_EQ(out->record_ids.size(), 3u);  // an occurrence and two warning markers
  EXPECT_EQ(out->created, 3);
  EXPECT_EQ(out->replayed, 0);
  EXPECT_THAT(out->recipients, ElementsAre("bradford-csc", "bthft"));
  const json j = out->ToJson();
  EXPECT_EQ(j["count"], 3);
  EXPECT_EQ(j["records"].size(), 3u);
  EXPECT_EQ(h.Count("records"), 3);
  EXPECT_EQ(h.Count("messages", "recipient = 'bthft'"), 3);
  EXPECT_EQ(h.Count("messages", "recipient = 'bradford-csc'"), 3);

  // Each record audited as a push is, then one ingest_accepted entry.
  auto all = AllEntries(h);
  std::vector<std::string> actions = Actions(all);
  ASSERT_FALSE(actions.empty());
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "record_accepted"), 3);
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "delivery_permitted"), 6);
  const AuditEntry* accepted = nullptr;
  for (const AuditEntry& e : all) {
    if (e.action == "ingest_accepted") accepted = &e;
  }
  ASSERT_NE(accepted, nullptr);
  EXPECT_EQ(accepted->actor, "wyp");
  EXPECT_EQ(accepted->purpose, "child_protection");
  EXPECT_EQ(accepted->detail["adapter"], "niche-xml");
  EXPECT_EQ(accepted->detail["records"], 3);
  EXPECT_EQ(accepted->detail["created"], 3);
  EXPECT_EQ(accepted->detail["recipients"], json({"bradford-csc", "bthft"}));

  // The same export again: every record replays, nothing new is stored.
  const int64_t audit_before = h.Count("audit");
  auto again = Ingest("wyp", "niche-xml", story::kNicheXml);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->created, 0);
  EXPECT_EQ(again->replayed, 3);
  EXPECT_EQ(again->record_ids, out->record_ids);
  EXPECT_EQ(h.Count("records"), 3);
  EXPECT_EQ(h.Count("audit"), audit_before + 1);  // only its ingest_accepted
  auto v = h.Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->problem;
}

TEST_F(IngestTest, ExplicitRecipientsAreChecked) {
  auto out = Ingest("wyp", "niche-xml", story::kNicheXml, {"bthft"});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(h.Count("messages", "recipient = 'bradford-csc'"), 0);
  EXPECT_EQ(h.Count("messages", "recipient = 'bthft'"), 3);

  const int64_t records = h.Count("records");
  auto bad = Ingest("bthft", "fhir-flag", story::kFhirBundle, {"bradford-audit", "nobody"});
  ASSERT_EQ(bad.status().code(), ErrorCode::kInvalidInput);
  EXPECT_THAT(bad.status().problems(),
              ElementsAre(Problem{"recipients[0]", "agencies of role audit never receive records"},
                          Problem{"recipients[1]", "is not a registered agency"}));
  EXPECT_EQ(h.Count("records"), records);
}

TEST_F(IngestTest, ABadRowRejectsTheWholeExportWithEveryProblem) {
  std::string broken = story::kNicheXml;
  broken.replace(broken.find("2011-03-07"), 10, "2011-02-30");  // no such date
  broken.replace(broken.find("<Level>HIGH</Level>"), 19, "<Level>SEVERE</Level>");
  auto out = Ingest("wyp", "niche-xml", broken);
  ASSERT_EQ(out.status().code(), ErrorCode::kInvalidInput);
  ASSERT_GE(out.status().problems().size(), 2u);
  std::vector<std::string> where;
  for (const Problem& p : out.status().problems()) where.push_back(p.where);
  EXPECT_THAT(where, ::testing::Contains(HasSubstr("/Nominal[1]/DateOfBirth")));
  EXPECT_THAT(where, ::testing::Contains(HasSubstr("/WarningMarker[1]/Level")));
  EXPECT_EQ(h.Count("records"), 0);
  EXPECT_EQ(h.Count("messages"), 0);
  EXPECT_EQ(h.Count("subject_index"), 0);

  // Refused, and audited with positions only: no value from the export reaches the log.
  auto rejected = AllEntries(h, Filter({{"action", "request_rejected"}}));
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(rejected[0].actor, "wyp");
  EXPECT_EQ(rejected[0].purpose, "child_protection");
  EXPECT_EQ(rejected[0].detail["operation"], "ingest");
  EXPECT_EQ(rejected[0].detail["format"], "niche-xml");
  EXPECT_EQ(rejected[0].detail["error"], "invalid_input");
  EXPECT_EQ(rejected[0].detail["problem_count"], out.status().problems().size());
  EXPECT_EQ(h.Count("audit", "CAST(entry AS TEXT) LIKE '%SEVERE%'"), 0);
  EXPECT_EQ(h.Count("audit", "CAST(entry AS TEXT) LIKE '%2011-02-30%'"), 0);
}

TEST_F(IngestTest, UnknownFormatsRolesAndPurposesAreRefused) {
  auto unknown = Ingest("wyp", "pdf", "%PDF-1.7");
  EXPECT_EQ(unknown.status().code(), ErrorCode::kNotFound);
  EXPECT_THAT(unknown.status().detail(), HasSubstr("niche-xml"));
  auto audit = Ingest("bradford-audit", "niche-xml", story::kNicheXml);
  EXPECT_EQ(audit.status().code(), ErrorCode::kForbidden);
  auto purpose = Ingest("wyp", "niche-xml", story::kNicheXml, {}, "Child Protection");
  EXPECT_EQ(purpose.status().code(), ErrorCode::kInvalidInput);
  EXPECT_EQ(h.Count("records"), 0);
  EXPECT_EQ(h.Count("audit", "action = 'request_rejected'"), 3);
  // Only a registered format's name is echoed into the log.
  EXPECT_EQ(h.Count("audit", "CAST(entry AS TEXT) LIKE '%pdf%'"), 0);
}

TEST_F(IngestTest, ARecordChangedWithoutANewVersionConflictsAndNothingIsStored) {
  ASSERT_TRUE(Ingest("wyp", "niche-xml", story::kNicheXml).ok());
  const int64_t records = h.Count("records");
  std::string changed = story::kNicheXml;
  changed.replace(changed.find("<Level>HIGH</Level>"), 19, "<Level>LOW</Level>");
  // A new item as well, which must not be stored either.
  changed.replace(changed.find("  </Occurrences>"), 0,
                  "    <Occurrence id=\"OCC-2026-000102\" nominal=\"N-200002\"><Type>Missing "
                  "person</Type><OccurredAt>2026-09-14</OccurredAt><Recorded>2026-09-14T18:00:00Z"
                  "</Recorded><Summary>Reported missing by carer.</Summary></Occurrence>\n");
  auto out = Ingest("wyp", "niche-xml", changed);
  ASSERT_EQ(out.status().code(), ErrorCode::kConflict) << out.status().ToString();
  EXPECT_THAT(out.status().detail(), HasSubstr("WM-70001"));
  EXPECT_EQ(h.Count("records"), records);
}

TEST_F(IngestTest, TheStoryComesTogetherInTheFlagsView) {
  TellTheStory();

  // One subject holds the NHS number, the CSC id and the police nominal.
  EXPECT_EQ(h.Count("subject_index",
                    "subject_id = (SELECT subject_id FROM subject_index WHERE ref = '" +
                        std::string(story::kNhsRef) + "') AND ref IN ('" + story::kCscRef +
                        "', '" + story::kPoliceRef + "')"),
            2);
  EXPECT_EQ(h.Count("link_reviews"), 0);

  // The police nominal was linked by score, and that decision is in the log without names.
  auto linked = AllEntries(h, Filter({{"action", "subject_linked"}}));
  ASSERT_EQ(linked.size(), 1u);
  EXPECT_EQ(linked[0].actor, "wyp");
  EXPECT_EQ(linked[0].subject, story::kPoliceRef);
  EXPECT_EQ(linked[0].detail["method"], "score");
  EXPECT_EQ(linked[0].detail["score"], 11.0);
  EXPECT_EQ(linked[0].detail["refs_added"], 1);
  // The references are in the entry's sealed text (erased with the subject), not its detail.
  EXPECT_THAT(linked[0].detail.dump(), ::testing::Not(HasSubstr("nhs:")));
  const json linked_text = json::parse(linked[0].text);
  EXPECT_EQ(linked_text["via"], story::kNhsRef);
  EXPECT_EQ(linked_text["refs_added"], json({story::kPoliceRef}));
  EXPECT_EQ(linked[0].detail["evidence"][0], "family name similar");

  // Health asks: three flags from three agencies, the police one overdue for review.
  auto view = Flags("bthft", story::kNhsRef);
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_EQ(view->subject, story::kNhsRef);
  EXPECT_THAT(FlagTypes(*view), ElementsAre("cp_plan", "concern", "cse_risk"));
  ASSERT_EQ(view->flags.size(), 3u);
  EXPECT_EQ(view->flags[0].owner_agency, "bradford-csc");
  EXPECT_EQ(view->flags[1].owner_agency, "bthft");
  EXPECT_EQ(view->flags[2].owner_agency, "wyp");
  EXPECT_EQ(view->flags[2].owner_name, "Agency wyp");
  EXPECT_TRUE(view->flags[2].overdue);   // review_by 2026-04-11, today 2026-11-21
  EXPECT_FALSE(view->flags[1].overdue);  // review_by 2027-02-01
  EXPECT_THAT(view->notified, ElementsAre("bradford-csc", "wyp"));
  EXPECT_FALSE(view->silent);
  const json j = view->ToJson();
  EXPECT_EQ(j["flags"][2]["overdue"], true);
  EXPECT_EQ(j["flags"][2]["level"], "high");
  EXPECT_EQ(j["flags"][2]["review_by"], "2026-04-11");
  EXPECT_EQ(j["flags"][1]["owner"]["contact"]["office_hours"], "01274 364000");
  EXPECT_EQ(j["flags"][2]["source"]["system"], "niche");

  // The owners hear about it in their mailboxes, with ids only.
  auto wyp_box = h.Mailbox("wyp");
  ASSERT_TRUE(wyp_box.ok());
  const MailboxMessage* notice = nullptr;
  for (const MailboxMessage& m : wyp_box->messages) {
    if (m.type == "notice" && m.notice["kind"] == "access_notification") notice = &m;
  }
  ASSERT_NE(notice, nullptr);
  EXPECT_EQ(notice->notice["by"], "bthft");
  EXPECT_EQ(notice->notice["purpose"], "child_protection");
  EXPECT_EQ(notice->notice["records"], json({view->flags[2].record_id}));
  EXPECT_EQ(h.Count("messages", "type = 'notice' AND recipient = 'bthft'"), 0);

  auto queried = AllEntries(h, Filter({{"action", "flags_queried"}}));
  ASSERT_EQ(queried.size(), 1u);
  EXPECT_EQ(queried[0].actor, "bthft");
  EXPECT_EQ(queried[0].subject, story::kNhsRef);
  EXPECT_EQ(queried[0].detail["returned"], 3);
  EXPECT_EQ(queried[0].detail["overdue"], 1);
  EXPECT_EQ(queried[0].detail["notified"], json({"bradford-csc", "wyp"}));
  auto notified = AllEntries(h, Filter({{"action", "access_notified"}}));
  ASSERT_EQ(notified.size(), 2u);
  EXPECT_EQ(notified[0].detail["recipient"], "bradford-csc");
  EXPECT_EQ(notified[1].detail["recipient"], "wyp");
  EXPECT_EQ(notified[1].message_id, notice->message_id);
  // The owning agency finds the query under its own id.
  auto for_wyp = AllEntries(h, Filter({{"agency", "wyp"}, {"action", "flags_queried"}}));
  EXPECT_EQ(for_wyp.size(), 1u);

  // A silent read for scheduled care tells nobody, and says so in the log.
  const int64_t notices = h.Count("messages", "type = 'notice'");
  auto silent = Flags("bthft", story::kNhsRef, "scheduled_care");
  ASSERT_TRUE(silent.ok());
  EXPECT_TRUE(silent->silent);
  EXPECT_EQ(silent->flags.size(), 3u);
  EXPECT_TRUE(silent->notified.empty());
  EXPECT_EQ(h.Count("messages", "type = 'notice'"), notices);
  auto last = AllEntries(h, Filter({{"action", "flags_queried"}}));
  EXPECT_EQ(last.back().detail["silent"], true);

  // Police asks by its own nominal id: the same child, the same three flags; the police do
  // not get a silent read for scheduled care.
  auto police = Flags("wyp", story::kPoliceRef, "scheduled_care");
  ASSERT_TRUE(police.ok());
  EXPECT_THAT(FlagTypes(*police), ElementsAre("cp_plan", "concern", "cse_risk"));
  EXPECT_THAT(police->notified, ElementsAre("bradford-csc", "bthft"));

  // And by CSC id, the CSC sees its own flag and those delivered to it.
  auto csc = Flags("bradford-csc", story::kCscRef);
  ASSERT_TRUE(csc.ok());
  EXPECT_THAT(FlagTypes(*csc), ElementsAre("cp_plan", "concern", "cse_risk"));

  // Jade Walker's ended MISSING marker is not on Amira, and not active on Jade either.
  auto jade = Flags("bthft", "police:wyp:N-200002");
  ASSERT_TRUE(jade.ok());
  EXPECT_TRUE(jade->flags.empty());
  EXPECT_TRUE(jade->notified.empty());

  auto v = h.Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->problem;
}

TEST_F(IngestTest, TheFhirMailboxViewHoldsOnlyFlagDeliveries) {
  TellTheStory();
  auto read = [&](int limit, std::string after) {
    return Await<MailboxPage>([&](Callback<MailboxPage> cb) {
      h.gw().ReadFlagMailbox(CallerFor("bthft"), limit, after, std::move(cb));
    });
  };
  auto all = h.Mailbox("bthft");
  ASSERT_TRUE(all.ok());
  size_t flags_in_box = 0;
  for (const MailboxMessage& m : all->messages) {
    if (m.type == "record" && m.record["kind"] == "flag") ++flags_in_box;
  }
  ASSERT_EQ(flags_in_box, 3u);  // the CSE and MISSING markers, the CP plan flag
  ASSERT_GT(all->messages.size(), flags_in_box);

  auto first = read(2, "");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->messages.size(), 2u);
  EXPECT_FALSE(first->next.empty());
  auto second = read(2, first->next);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->messages.size(), 1u);
  EXPECT_TRUE(second->next.empty());
  for (const auto* page : {&*first, &*second}) {
    for (const MailboxMessage& m : page->messages) EXPECT_EQ(m.record["kind"], "flag");
  }
  auto reads = AllEntries(h, Filter({{"action", "mailbox_read"}, {"agency", "bthft"}}));
  int fhir_reads = 0;
  for (const AuditEntry& e : reads) fhir_reads += e.detail.value("view", "") == "fhir" ? 1 : 0;
  EXPECT_EQ(fhir_reads, 3);
  EXPECT_EQ(read(0, "").status().code(), ErrorCode::kInvalidInput);
  EXPECT_EQ(read(10, "x").status().code(), ErrorCode::kInvalidInput);
}

TEST_F(IngestTest, FlagsShowOnlyWhatTheCallerWasGiven) {
  TellTheStory();
  // cuh (Cambridge) was given nothing: nothing shows and nobody is told.
  auto cuh = Flags("cuh", story::kNhsRef);
  ASSERT_TRUE(cuh.ok());
  EXPECT_TRUE(cuh->flags.empty());
  EXPECT_TRUE(cuh->notified.empty());
  // Roles that may not ask, and references that are not references.
  EXPECT_EQ(Flags("bradford-audit", story::kNhsRef).status().code(), ErrorCode::kForbidden);
  EXPECT_EQ(Flags("bthft", "Amira Hussain").status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(Flags("bthft", "nhs:9990000108").status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(Flags("bthft", story::kNhsRef, "").status().code(), ErrorCode::kInvalidInput);
  EXPECT_EQ(h.Count("audit", "action = 'request_rejected'"), 4);
  EXPECT_EQ(h.Count("audit", "CAST(entry AS TEXT) LIKE '%Amira%'"), 0);
  // A subject nobody knows: an empty answer, audited.
  auto nobody = Flags("bthft", "nhs:9990000018");
  ASSERT_TRUE(nobody.ok());
  EXPECT_TRUE(nobody->flags.empty());
}

TEST_F(IngestTest, AnAmbiguousMatchIsHeldForReviewNeverMerged) {
  TellTheStory();
  // Same names, day and month swapped, another postcode: a score of 8, short of a link.
  const std::string doubtful = R"(<NicheExport><Nominals>
    <Nominal id="N-200003"><Surname>Hussain</Surname><Forenames>Amira</Forenames>
      <DateOfBirth>2011-07-03</DateOfBirth><Postcode>LS1 4AB</Postcode></Nominal>
  </Nominals><WarningMarkers>
    <WarningMarker id="WM-70003" nominal="N-200003"><Type>CCE</Type><Level>MEDIUM</Level>
      <Recorded>2026-10-01T09:00:00Z</Recorded><Start>2026-10-01</Start></WarningMarker>
  </WarningMarkers></NicheExport>)";
  auto out = Ingest("wyp", "niche-xml", doubtful);
  ASSERT_TRUE(out.ok()) << out.status().ToString();

  auto held = AllEntries(h, Filter({{"action", "link_held"}}));
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].subject, "police:wyp:N-200003");
  EXPECT_EQ(held[0].detail["reason"], "ambiguous_match");
  ASSERT_EQ(held[0].detail["candidates"].size(), 1u);
  EXPECT_EQ(held[0].detail["candidates"][0]["score"], 8.0);
  EXPECT_THAT(held[0].detail.dump(), ::testing::Not(HasSubstr("nhs:")));
  EXPECT_EQ(json::parse(held[0].text)["candidates"][0]["refs"][0], story::kNhsRef);

  // Not merged: the NHS number's flags do not include the new marker...
  auto view = Flags("bthft", story::kNhsRef);
  ASSERT_TRUE(view.ok());
  EXPECT_THAT(FlagTypes(*view), ElementsAre("cp_plan", "concern", "cse_risk"));
  // ...which is found under its own identifier.
  auto own = Flags("bthft", "police:wyp:N-200003");
  ASSERT_TRUE(own.ok());
  EXPECT_THAT(FlagTypes(*own), ElementsAre("cce_risk"));

  // The review list (offline, as safegatectl reads it) shows references and evidence.
  auto reviews = core::ListLinkReviews(h.data_dir());
  ASSERT_TRUE(reviews.ok()) << reviews.status().ToString();
  ASSERT_EQ(reviews->size(), 1u);
  const core::LinkReview& r = (*reviews)[0];
  EXPECT_EQ(r.subject_ref, "police:wyp:N-200003");
  EXPECT_EQ(r.reason, "ambiguous_match");
  EXPECT_THAT(r.candidates[0]["evidence"].get<std::vector<std::string>>(),
              ElementsAre("family name same", "forename same",
                          "date of birth day and month swapped", "postcode different"));
  EXPECT_THAT(r.ToJson().dump(), ::testing::Not(HasSubstr("Hussain")));
}

TEST_F(IngestTest, ConflictingIdentifiersAreHeld) {
  TellTheStory();
  // A record naming Amira's CSC id with another child's NHS number.
  record::Record rec = MakeRecord("bthft", "H-CONFLICT", 1, kNhs2);
  rec.subject.local_ids = {{"csc:bradford", "BRA-000777"}};
  rec.subject.given_name = "Jade";
  PushRequest p;
  p.record = rec;
  p.purpose = "child_protection";
  p.recipients = {"bradford-csc"};
  ASSERT_TRUE(h.Push("bthft", p).ok());
  // nhs:kNhs2 was new, the CSC id is Amira's: one subject has one NHS number.
  auto held = AllEntries(h, Filter({{"action", "link_held"}}));
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].detail["reason"], "second_nhs_number");
  auto subject_of = [&](const std::string& ref) {
    return h.Count("subject_index", "ref = '" + ref + "' AND subject_id = (SELECT subject_id "
                                    "FROM subject_index WHERE ref = '" +
                                        std::string(story::kNhsRef) + "')");
  };
  EXPECT_EQ(subject_of(std::string("nhs:") + kNhs2), 0);
  EXPECT_EQ(subject_of(story::kCscRef), 1);

  // Identifiers that belong to two subjects: held as well.
  record::Record both = MakeRecord("bthft", "H-BOTH", 1, kNhs2);
  both.subject.local_ids = {{"police:wyp", "N-200002"}};
  PushRequest q;
  q.record = both;
  q.purpose = "child_protection";
  q.recipients = {"bradford-csc"};
  ASSERT_TRUE(h.Push("bthft", q).ok());
  held = AllEntries(h, Filter({{"action", "link_held"}}));
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[1].detail["reason"], "conflicting_identifiers");
  EXPECT_EQ(held[1].detail["candidates"].size(), 2u);
}

TEST_F(IngestTest, LinkingSurvivesAReopen) {
  TellTheStory();
  h.Close();
  ASSERT_TRUE(h.Open().ok());
  // The link key came back from the database: a new nominal still scores against Amira.
  const std::string again = R"(<NicheExport><Nominals>
    <Nominal id="N-200009"><Surname>Hussain</Surname><Forenames>Amira</Forenames>
      <DateOfBirth>2011-03-07</DateOfBirth><Postcode>BD3 9AB</Postcode></Nominal>
  </Nominals><WarningMarkers>
    <WarningMarker id="WM-70009" nominal="N-200009"><Type>MISSING</Type>
      <Recorded>2026-11-01T09:00:00Z</Recorded><Start>2026-11-01</Start></WarningMarker>
  </WarningMarkers></NicheExport>)";
  ASSERT_TRUE(Ingest("wyp", "niche-xml", again).ok());
  auto linked = AllEntries(h, Filter({{"action", "subject_linked"}}));
  ASSERT_EQ(linked.size(), 2u);
  EXPECT_EQ(linked[1].detail["score"], 13.0);
  auto view = Flags("bthft", story::kNhsRef);
  ASSERT_TRUE(view.ok());
  EXPECT_THAT(FlagTypes(*view), ElementsAre("cp_plan", "concern", "cse_risk", "missing"));
}

TEST_F(IngestTest, NoNamesOnDisk) {
  TellTheStory();
  ASSERT_TRUE(Flags("bthft", story::kNhsRef).ok());
  h.Close();
  std::string bytes = ReadBytes(h.db_path()) + ReadBytes(h.db_path() + "-wal");
  for (const char* needle : {"Hussain", "Hussein", "hussain", "hussein", "Amira", "amira",
                             "2011-03-07", "BD3 9AB", "BD39AB", "Walker", "walker"}) {
    EXPECT_EQ(bytes.find(needle), std::string::npos) << needle << " is on disk in the clear";
  }
}

// Every (ref, subject_id) of the subject index, read beside the running gateway.
std::vector<std::pair<std::string, std::string>> SubjectIndexRows(const std::string& db_path) {
  std::vector<std::pair<std::string, std::string>> out;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT ref, subject_id FROM subject_index", -1, &st, nullptr) ==
        SQLITE_OK) {
      while (sqlite3_step(st) == SQLITE_ROW) {
        out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)),
                         reinterpret_cast<const char*>(sqlite3_column_text(st, 1)));
      }
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

// The generator's noisy exports for 1,500 children: whatever the linker decides, it never puts
// two children under one subject (the manifest is the truth), and it does link police
// nominals that carry no NHS number to the child's NHS subject.
TEST_F(IngestTest, GeneratedExportsNeverMergeTwoChildren) {
  tools::GenOptions o;
  o.children = 1500;
  o.seed = 7;
  const tools::GeneratedExports g = tools::GenerateExports(o);
  ASSERT_TRUE(Ingest("bradford-csc", "cpis-csv", g.cpis_csv).ok());
  ASSERT_TRUE(Ingest("bthft", "fhir-flag", g.fhir_bundle).ok());
  ASSERT_TRUE(Ingest("bradford-csc", "cin-xml", g.cin_xml).ok());
  auto niche = Ingest("wyp", "niche-xml", g.niche_xml);
  ASSERT_TRUE(niche.ok()) << niche.status().ToString();

  const json manifest = json::parse(g.manifest);
  std::map<std::string, size_t> child_of;  // reference -> child index
  for (size_t i = 0; i < manifest["children"].size(); ++i) {
    const json& c = manifest["children"][i];
    child_of["nhs:" + c["nhs_number"].get<std::string>()] = i;
    if (c.contains("csc_id")) child_of["csc:bradford:" + c["csc_id"].get<std::string>()] = i;
    if (c.contains("police_id")) child_of["police:wyp:" + c["police_id"].get<std::string>()] = i;
  }
  std::map<std::string, std::set<size_t>> children_of_subject;
  std::map<std::string, std::string> subject_of;
  for (const auto& [ref, subject] : SubjectIndexRows(h.db_path())) {
    ASSERT_TRUE(child_of.count(ref)) << ref << " is in no export";
    children_of_subject[subject].insert(child_of[ref]);
    subject_of[ref] = subject;
  }
  for (const auto& [subject, children] : children_of_subject) {
    EXPECT_EQ(children.size(), 1u) << subject << " merges " << children.size() << " children";
  }
  // Police nominals without an NHS number that found the child's NHS subject by score.
  int scored = 0, without_nhs = 0;
  for (const json& c : manifest["children"]) {
    if (!c.contains("police_id")) continue;
    bool has_nhs = true;
    for (const json& n : c["noise"]) has_nhs = has_nhs && n != "police hold no NHS number";
    if (has_nhs) continue;
    ++without_nhs;
    const std::string police = "police:wyp:" + c["police_id"].get<std::string>();
    const std::string nhs = "nhs:" + c["nhs_number"].get<std::string>();
    if (subject_of.count(nhs) && subject_of[police] == subject_of[nhs]) ++scored;
  }
  std::cout << "police nominals without NHS number: " << without_nhs << ", linked by score: "
            << scored << ", held for review: " << h.Count("link_reviews") << "\n";
  EXPECT_GT(scored, 0);
}

TEST_F(IngestTest, DefaultRecipientsAreTheCallersAreasAgencies) {
  const auto registry = TestRegistry();
  EXPECT_THAT(core::DefaultRecipients(*registry, CallerFor("wyp")),
              ElementsAre("bradford-csc", "bthft"));
  EXPECT_THAT(core::DefaultRecipients(*registry, CallerFor("cuh")),
              UnorderedElementsAre("cambs-csc", "cambs-police"));
}

}  // namespace
}  // namespace safegate
