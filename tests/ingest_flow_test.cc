// Agency exports through a real gateway: a police Niche export, a hospital's FHIR flags and a
// CSC census file about the same child come together in the flags view; the owners are told;
// a health system reads its mailbox as FHIR; bad exports are refused whole; a drop folder
// survives kill -9; doubtful links wait for a person (safegatectl subjects review).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "daemon/core/ingest_story.h"
#include "tests/support/sandbox.h"
#include "tests/support/test_data.h"
#include "tools/gen_exports/generator.h"

namespace safegate::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using nlohmann::json;

Result<HttpResponse> Ingest(HttpsClient& client, const std::string& format,
                            const std::string& body, const std::string& content_type,
                            const std::string& query = "purpose=safeguarding") {
  return client.Request("POST", "/v1/ingest/" + format + "?" + query, body,
                        {{"Content-Type", content_type}});
}

std::multiset<std::string> FlagTypes(const json& view) {
  std::multiset<std::string> out;
  for (const json& f : view["flags"]) out.insert(f.value("type", ""));
  return out;
}

int64_t CountRows(const std::string& data_dir, const std::string& sql) {
  const std::string path = data_dir + "/safegate.db";
  sqlite3* db = nullptr;
  int64_t n = -1;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

class IngestFlowTest : public SandboxTest {
 protected:
  // The story of daemon/core/ingest_story.h, through the API.
  void TellTheStory() {
    json referral = {{"record", story::CscReferral()},
                     {"purpose", "safeguarding"},
                     {"recipients", {"wyp", "bthft"}}};
    HttpsClient csc = Client("bradford-csc");
    auto pushed = csc.PostJson("/v1/records", referral);
    ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
    ASSERT_EQ(pushed->status, 201) << pushed->Describe();

    HttpsClient wyp = Client("wyp");
    auto niche = Ingest(wyp, "niche-xml", story::kNicheXml, "application/xml");
    ASSERT_TRUE(niche.ok()) << niche.status().ToString();
    ASSERT_EQ(niche->status, 201) << niche->Describe();
    EXPECT_EQ(niche->Json()["count"], 3) << niche->Describe();
    EXPECT_EQ(niche->Json()["records"].size(), 3u);

    HttpsClient bthft = Client("bthft");
    auto fhir = Ingest(bthft, "fhir-flag", story::kFhirBundle, "application/fhir+json");
    ASSERT_TRUE(fhir.ok()) << fhir.status().ToString();
    ASSERT_EQ(fhir->status, 201) << fhir->Describe();

    auto cin = Ingest(csc, "cin-xml", story::kCinXml, "application/octet-stream");
    ASSERT_TRUE(cin.ok()) << cin.status().ToString();
    ASSERT_EQ(cin->status, 201) << cin->Describe();
  }
};

TEST_F(IngestFlowTest, ThreeAgenciesExportsComeTogetherInTheFlagsView) {
  TellTheStory();

  HttpsClient bthft = Client("bthft");
  auto view = bthft.Get("/v1/subjects/" + UrlEncode(story::kNhsRef) + "/flags?purpose=safeguarding");
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  ASSERT_EQ(view->status, 200) << view->Describe();
  const json v = view->Json();
  EXPECT_EQ(v["subject"], story::kNhsRef);
  EXPECT_EQ(FlagTypes(v), (std::multiset<std::string>{"cp_plan", "concern", "cse_risk"}))
      << v.dump(2);
  for (const json& f : v["flags"]) {
    // The police CSE marker was due for review on 2026-04-11: reported overdue, not dropped.
    if (f["type"] == "cse_risk") {
      EXPECT_EQ(f["overdue"], true) << f.dump();
      EXPECT_EQ(f["owner"]["agency"], "wyp");
    }
    if (f["type"] == "cp_plan") {
      EXPECT_EQ(f["owner"]["agency"], "bradford-csc");
    }
    if (f["type"] == "concern") {
      EXPECT_EQ(f["owner"]["contact"]["out_of_hours"], "01274 542200") << f.dump();
    }
    EXPECT_FALSE(f["owner"]["name"].get<std::string>().empty()) << f.dump();
  }
  EXPECT_EQ(v["notified"], json({"bradford-csc", "wyp"}));

  // The police hear that their marker was looked at, as CP-IS tells a local authority.
  // The notice comes after the records already delivered to the police: read every page.
  HttpsClient wyp = Client("wyp");
  bool told = false;
  std::string after;
  for (int page = 0; page < 100; ++page) {
    auto box = wyp.Get("/v1/mailbox?limit=500" + (after.empty() ? "" : "&after=" + after));
    ASSERT_TRUE(box.ok());
    const json body = box->Json();
    for (const json& m : body["messages"]) {
      if (m.contains("notice") && m["notice"].is_object() &&
          m["notice"].value("kind", "") == "access_notification") {
        told = true;
        EXPECT_EQ(m["notice"]["by"], "bthft");
      }
    }
    if (!body.contains("next") || !body["next"].is_string()) break;
    after = body["next"].get<std::string>();
  }
  EXPECT_TRUE(told) << "no access_notification in wyp's mailbox";

  // The same child under the police's own reference.
  auto by_police = bthft.Get("/v1/subjects/" + UrlEncode(story::kPoliceRef) +
                             "/flags?purpose=safeguarding");
  ASSERT_TRUE(by_police.ok());
  EXPECT_EQ(FlagTypes(by_police->Json()), FlagTypes(v));

  // What the audit officer sees: the link by score, the query and the notices; no names.
  auto linked = AuditEntries("action=subject_linked");
  ASSERT_EQ(linked.size(), 1u);
  EXPECT_EQ(linked[0]["detail"]["method"], "score");
  EXPECT_EQ(AuditEntries("action=ingest_accepted").size(), 3u);
  EXPECT_EQ(AuditEntries("action=flags_queried").size(), 2u);
  EXPECT_EQ(AuditEntries("action=access_notified").size(), 4u);
  for (const json& e : AuditEntries("")) {
    EXPECT_THAT(e.dump(), ::testing::Not(HasSubstr("Hussain"))) << e.dump();
    EXPECT_THAT(e.dump(), ::testing::Not(HasSubstr("Hussein"))) << e.dump();
  }

  // Bad requests to the flags view.
  auto no_purpose = bthft.Get("/v1/subjects/" + UrlEncode(story::kNhsRef) + "/flags");
  ASSERT_TRUE(no_purpose.ok());
  EXPECT_EQ(no_purpose->status, 400) << no_purpose->Describe();
  auto bad_ref = bthft.Get("/v1/subjects/nhs%3A9990000108/flags?purpose=safeguarding");
  ASSERT_TRUE(bad_ref.ok());
  EXPECT_EQ(bad_ref->status, 400) << bad_ref->Describe();
  auto audit_role = Client("bradford-audit")
                        .Get("/v1/subjects/" + UrlEncode(story::kNhsRef) +
                             "/flags?purpose=safeguarding");
  ASSERT_TRUE(audit_role.ok());
  EXPECT_EQ(audit_role->status, 403) << audit_role->Describe();
}

bool HaveCommand(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

TEST_F(IngestFlowTest, AHealthSystemReadsItsMailboxAsFhir) {
  TellTheStory();
  HttpsClient bthft = Client("bthft");
  auto fhir = bthft.Request("GET", "/v1/mailbox?limit=100", "",
                            {{"Accept", "application/fhir+json"}});
  ASSERT_TRUE(fhir.ok()) << fhir.status().ToString();
  ASSERT_EQ(fhir->status, 200) << fhir->Describe();
  EXPECT_THAT(fhir->headers["content-type"], HasSubstr("application/fhir+json"));
  const json bundle = fhir->Json();
  EXPECT_EQ(bundle["resourceType"], "Bundle");
  // The CSE and MISSING markers and the CP plan flag; the referral, the occurrence and the
  // census records have no FHIR form and stay for the JSON view.
  ASSERT_EQ(bundle["entry"].size(), 3u) << bundle.dump(2);
  std::vector<std::string> message_ids;
  for (const json& entry : bundle["entry"]) {
    EXPECT_EQ(entry["resource"]["resourceType"], "Flag");
    for (const json& id : entry["resource"]["identifier"]) {
      if (id["system"] == "https://safegate.invalid/fhir/Id/mailbox-message") {
        message_ids.push_back(id["value"]);
      }
    }
  }
  ASSERT_EQ(message_ids.size(), 3u);

  // An independent FHIR R4 validator accepts it (as the adapters' tests check the renderer).
  const char* bin = std::getenv("SAFEGATE_BINARY_DIR");
  const char* src = std::getenv("SAFEGATE_SOURCE_DIR");
  if (HaveCommand("node") && bin != nullptr && src != nullptr &&
      fs::exists(fs::path(bin) / "fhir-check" / "node_modules" / "fhir")) {
    const fs::path file = fs::path(sandbox().dir()) / "mailbox-bundle.json";
    std::ofstream(file) << bundle.dump(2);
    const std::string cmd = "NODE_PATH='" + (fs::path(bin) / "fhir-check" / "node_modules").string() +
                            "' node '" + (fs::path(src) / "tools" / "fhir-check" / "check.js").string() +
                            "' '" + file.string() + "' >'" + file.string() + ".out' 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << std::ifstream(file.string() + ".out").rdbuf();
  } else {
    std::cout << "FHIR validator not installed in the build tree (adapters_test installs it); "
                 "not checked here\n";
  }

  // Acknowledged by the ids it carries, they leave the FHIR view; the rest stay for JSON.
  for (const std::string& id : message_ids) {
    auto acked = bthft.Request("POST", "/v1/mailbox/" + id + "/ack", "");
    ASSERT_TRUE(acked.ok());
    EXPECT_EQ(acked->status, 204) << acked->Describe();
  }
  auto after = bthft.Request("GET", "/v1/mailbox", "", {{"Accept", "application/fhir+json"}});
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->Json()["entry"].empty()) << after->Describe();
  auto plain = bthft.Get("/v1/mailbox");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->Json()["messages"].empty());
  EXPECT_THAT(plain->headers["content-type"], HasSubstr("application/json"));
}

TEST_F(IngestFlowTest, ABadExportIsRefusedWholeWithEveryProblem) {
  HttpsClient wyp = Client("wyp");
  std::string broken = story::kNicheXml;
  broken.replace(broken.find("2011-03-07"), 10, "2011-02-30");
  broken.replace(broken.find("<Level>HIGH</Level>"), 19, "<Level>SEVERE</Level>");
  auto refused = Ingest(wyp, "niche-xml", broken, "application/xml");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 422) << refused->Describe();
  EXPECT_EQ(refused->ErrorCode(), "invalid_input");
  const json body = refused->Json();
  ASSERT_GE(body["problems"].size(), 2u) << refused->Describe();
  std::string wheres;
  for (const json& p : body["problems"]) wheres += p.value("where", "") + "\n";
  EXPECT_THAT(wheres, HasSubstr("/Nominal[1]/DateOfBirth"));
  EXPECT_THAT(wheres, HasSubstr("/WarningMarker[1]/Level"));

  auto wrong_type = Ingest(wyp, "niche-xml", story::kNicheXml, "application/json");
  ASSERT_TRUE(wrong_type.ok());
  EXPECT_EQ(wrong_type->status, 415) << wrong_type->Describe();
  auto unknown = Ingest(wyp, "pdf", "%PDF", "application/pdf");
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->status, 404) << unknown->Describe();
  auto no_purpose = Ingest(wyp, "niche-xml", story::kNicheXml, "application/xml", "");
  ASSERT_TRUE(no_purpose.ok());
  EXPECT_EQ(no_purpose->status, 400) << no_purpose->Describe();
  HttpsClient auditor = Client("bradford-audit");
  auto audit = Ingest(auditor, "niche-xml", story::kNicheXml, "application/xml");
  ASSERT_TRUE(audit.ok());
  EXPECT_EQ(audit->status, 403) << audit->Describe();

  EXPECT_EQ(CountRows(sandbox().area("bradford").data_dir, "SELECT count(*) FROM records"), 0);
  EXPECT_EQ(AuditEntries("action=request_rejected").size(), 5u);

  // The same export, corrected, goes in whole; again, it only replays (200).
  auto good = Ingest(wyp, "niche-xml", story::kNicheXml, "application/xml");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good->status, 201) << good->Describe();
  auto again = Ingest(wyp, "niche-xml", story::kNicheXml, "application/xml");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 200) << again->Describe();
  EXPECT_EQ(again->Json()["replayed"], 3);
  EXPECT_EQ(again->Json()["records"], good->Json()["records"]);
}

TEST_F(IngestFlowTest, DoubtfulLinksAreListedForReview) {
  TellTheStory();
  const std::string doubtful = R"(<NicheExport><Nominals>
    <Nominal id="N-200003"><Surname>Hussain</Surname><Forenames>Amira</Forenames>
      <DateOfBirth>2011-07-03</DateOfBirth><Postcode>LS1 4AB</Postcode></Nominal>
  </Nominals><WarningMarkers>
    <WarningMarker id="WM-70003" nominal="N-200003"><Type>CCE</Type><Level>MEDIUM</Level>
      <Recorded>2026-10-01T09:00:00Z</Recorded><Start>2026-10-01</Start></WarningMarker>
  </WarningMarkers></NicheExport>)";
  HttpsClient wyp = Client("wyp");
  auto held = Ingest(wyp, "niche-xml", doubtful, "application/xml");
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held->status, 201) << held->Describe();
  EXPECT_EQ(AuditEntries("action=link_held").size(), 1u);

  std::string output;
  auto rc = RunProgram({SafegatectlPath(), "subjects", "review", "--data-dir",
                        sandbox().area("bradford").data_dir},
                       &output);
  ASSERT_TRUE(rc.ok()) << rc.status().ToString();
  ASSERT_EQ(*rc, 0) << output;
  const json list = json::parse(output, nullptr, false);
  ASSERT_TRUE(list.is_object()) << output;
  ASSERT_EQ(list["count"], 1) << output;
  const json& r = list["reviews"][0];
  EXPECT_EQ(r["subject"], "police:wyp:N-200003");
  EXPECT_EQ(r["reason"], "ambiguous_match");
  EXPECT_EQ(r["candidates"][0]["refs"][0], story::kNhsRef);
  EXPECT_THAT(output, ::testing::Not(HasSubstr("Hussain")));
  // Never merged: the NHS number's flags do not include the new marker.
  auto view = Client("bthft").Get("/v1/subjects/" + UrlEncode(story::kNhsRef) +
                                  "/flags?purpose=safeguarding");
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(FlagTypes(view->Json()).count("cce_risk"), 0u);
}

// A drop folder configured for wyp; a large export dropped; the gateway killed (kill -9) at
// whatever point the ingest has reached; restarted: every record once, the file in done/.
TEST_F(IngestFlowTest, ADropFolderSurvivesKillNine) {
  const Sandbox::Area& area = sandbox().area("bradford");
  const fs::path drop = fs::path(sandbox().dir()) / "drop-wyp";
  {
    std::ofstream config(area.config, std::ios::app);
    config << "\n[[drop]]\nagency = \"wyp\"\nformat = \"niche-xml\"\ndir = \"" << drop.string()
           << "\"\npurpose = \"safeguarding\"\n";
  }
  ASSERT_TRUE(sandbox().Stop("bradford", SIGTERM).ok());
  Status restarted = sandbox().Restart("bradford");
  ASSERT_TRUE(restarted.ok()) << restarted.ToString() << sandbox().LogTails();
  ASSERT_TRUE(fs::is_directory(drop / "done"));

  tools::GenOptions o;
  o.children = 6000;
  o.seed = 5;
  const tools::GeneratedExports g = tools::GenerateExports(o);
  std::ofstream(drop / ".big.xml") << g.niche_xml;
  fs::rename(drop / ".big.xml", drop / "big.xml");

  const fs::path wal = fs::path(area.data_dir) / "safegate.db-wal";
  std::error_code ec;
  const auto wal_before = fs::file_size(wal, ec);
  // Generous bounds: a sanitizer build on a busy machine parses and writes many times slower.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  bool started = false;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto size = fs::file_size(wal, ec);
    if ((!ec && size > wal_before + 256 * 1024) || fs::exists(drop / "done" / "big.xml")) {
      started = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling a condition
  }
  ASSERT_TRUE(started) << sandbox().LogTails();
  ASSERT_TRUE(sandbox().Stop("bradford", SIGKILL).ok());
  restarted = sandbox().Restart("bradford");
  ASSERT_TRUE(restarted.ok()) << restarted.ToString() << sandbox().LogTails();

  const auto done_by = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (!fs::exists(drop / "done" / "big.xml") && std::chrono::steady_clock::now() < done_by) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a condition
  }
  ASSERT_TRUE(fs::exists(drop / "done" / "big.xml")) << sandbox().LogTails();
  EXPECT_FALSE(fs::exists(drop / "big.xml"));
  EXPECT_TRUE(fs::is_empty(drop / "failed"));
  EXPECT_EQ(CountRows(area.data_dir, "SELECT count(*) FROM records"),
            static_cast<int64_t>(g.niche_records));
  EXPECT_EQ(CountRows(area.data_dir,
                      "SELECT count(*) FROM audit WHERE action = 'record_accepted'"),
            static_cast<int64_t>(g.niche_records));
}

}  // namespace
}  // namespace safegate::testing
