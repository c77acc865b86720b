// What a gateway has answered 201 to survives: a clean restart (SIGTERM, then
// `safegated --config CONFIG` as an operator would) and a crash (SIGKILL while several
// clients push at once). After either, every accepted record is there exactly once, the
// mailboxes and the audit log are intact, and the audit chain verifies offline.
#include <gtest/gtest.h>

#include <signal.h>
#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "tests/support/sandbox.h"
#include "tests/support/test_data.h"

namespace safegate::testing {
namespace {

using nlohmann::json;

class DurabilityTest : public SandboxTest {
 protected:
  // `safegatectl audit verify --data-dir` on the area's data directory.
  void ExpectOfflineVerifyOk() {
    std::string output;
    Result<int> rc = RunProgram(
        {SafegatectlPath(), "audit", "verify", "--data-dir", sandbox().area("bradford").data_dir},
        &output);
    ASSERT_TRUE(rc.ok()) << rc.status().ToString();
    EXPECT_EQ(*rc, 0) << output;
    json report = json::parse(output, nullptr, false);
    ASSERT_TRUE(report.is_object()) << output;
    EXPECT_EQ(report.value("ok", false), true) << output;
    EXPECT_GT(report.value("entries", 0), 0) << output;
  }

  // record_accepted entries per record_id, over the whole log.
  std::map<std::string, int> AcceptedPerRecord() {
    std::map<std::string, int> count;
    for (const auto& e : AuditEntries("action=record_accepted")) {
      ++count[e.value("record_id", "")];
    }
    return count;
  }
};

TEST_F(DurabilityTest, CleanRestartKeepsRecordsMailboxAndAudit) {
  const std::string nhs = TestNhsNumber(11);
  const json push = PushBody(CseFlag(nhs, "OCC-2025-000011"), {"bradford-csc", "bthft"});
  auto pushed = Client("wyp").PostJson("/v1/records", push);
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  ASSERT_EQ(pushed->status, 201) << pushed->Describe();
  const json answer = pushed->Json();
  const std::string record_id = answer.value("record_id", "");
  const size_t trail_before = AuditEntries("subject=" + UrlEncode(NhsRef(nhs))).size();

  ASSERT_TRUE(sandbox().Stop("bradford", SIGTERM).ok());
  Status restarted = sandbox().Restart("bradford");
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();

  auto read = Client("bthft").Get("/v1/records/" + UrlEncode(record_id));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->status, 200) << read->Describe();

  auto mailbox = Client("bradford-csc").Get("/v1/mailbox");
  ASSERT_TRUE(mailbox.ok()) << mailbox.status().ToString();
  ASSERT_EQ(mailbox->status, 200) << mailbox->Describe();
  ASSERT_EQ(mailbox->Json()["messages"].size(), 1u) << mailbox->Describe();
  EXPECT_EQ(mailbox->Json()["messages"][0].value("record_id", ""), record_id);

  // The idempotency key survived: the same push is a replay, not a second record.
  auto again = Client("wyp").PostJson("/v1/records", push);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->status, 200) << again->Describe();
  EXPECT_EQ(again->Json(), answer);

  EXPECT_GE(AuditEntries("subject=" + UrlEncode(NhsRef(nhs))).size(), trail_before);
  EXPECT_EQ(AcceptedPerRecord()[record_id], 1);
  ExpectOfflineVerifyOk();
}

TEST_F(DurabilityTest, KillDuringConcurrentPushesLosesAndDuplicatesNothing) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 40;
  constexpr int kKillAfter = 30;  // SIGKILL once this many pushes have been answered 201

  struct Attempt {
    json push;
    int status = 0;  // 0: no answer (refused, or cut off by the kill)
    std::string record_id;
  };
  std::vector<std::vector<Attempt>> attempts(kThreads);
  std::mutex mu;
  std::condition_variable cv;
  int created = 0;
  bool stop_all = false;

  std::vector<std::thread> pushers;
  for (int t = 0; t < kThreads; ++t) {
    pushers.emplace_back([&, t] {
      HttpsClient wyp = Client("wyp");
      for (int i = 0; i < kPerThread; ++i) {
        {
          std::lock_guard<std::mutex> lock(mu);
          if (stop_all) return;
        }
        const int n = t * kPerThread + i;
        Attempt a;
        a.push = PushBody(CseFlag(TestNhsNumber(100 + n), "OCC-LOAD-" + std::to_string(n)),
                          {"bradford-csc"});
        auto r = wyp.PostJson("/v1/records", a.push);
        if (r.ok()) {
          a.status = r->status;
          a.record_id = r->Json().value("record_id", "");
        }
        std::lock_guard<std::mutex> lock(mu);
        attempts[static_cast<size_t>(t)].push_back(a);
        if (a.status == 201) ++created;
        cv.notify_all();
        // Once the gateway is gone, further pushes only fail; stop after the first failure.
        if (!r.ok()) return;
      }
    });
  }
  bool enough = false;
  {
    std::unique_lock<std::mutex> lock(mu);
    enough = cv.wait_for(lock, std::chrono::seconds(120), [&] { return created >= kKillAfter; });
    if (!enough) stop_all = true;
  }
  if (!enough) {
    for (auto& p : pushers) p.join();
    FAIL() << "only " << created << " pushes were accepted: "
           << json(attempts.front().empty() ? json() : attempts.front().back().push).dump();
  }
  Status killed = sandbox().Stop("bradford", SIGKILL);
  for (auto& p : pushers) p.join();
  ASSERT_TRUE(killed.ok()) << killed.ToString();

  std::vector<Attempt> all;
  for (const auto& per_thread : attempts)
    all.insert(all.end(), per_thread.begin(), per_thread.end());
  int answered_201 = 0;
  for (const auto& a : all) {
    // Before the kill the only answers are 201; after it, no answer at all.
    EXPECT_TRUE(a.status == 201 || a.status == 0) << a.status;
    if (a.status == 201) ++answered_201;
  }
  ASSERT_GE(answered_201, kKillAfter);
  std::cout << "[          ] " << answered_201 << " pushes answered 201 before SIGKILL, "
            << all.size() - static_cast<size_t>(answered_201) << " cut off\n";

  // The crashed store verifies offline before anything else touches it.
  ExpectOfflineVerifyOk();

  Status restarted = sandbox().Restart("bradford");
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();

  HttpsClient wyp = Client("wyp");
  for (const auto& a : all) {
    if (a.status != 201) continue;
    auto read = wyp.Get("/v1/records/" + UrlEncode(a.record_id));
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    EXPECT_EQ(read->status, 200) << a.record_id
                                 << " was answered 201 and is gone: " << read->Describe();
  }
  std::map<std::string, int> accepted = AcceptedPerRecord();
  for (const auto& a : all) {
    if (a.status == 201) {
      EXPECT_EQ(accepted[a.record_id], 1) << a.record_id;
    }
  }
  for (const auto& [record_id, count] : accepted) {
    EXPECT_EQ(count, 1) << record_id << " accepted " << count << " times";
  }

  // Every attempt pushed again: an accepted one is replayed (200, same id); one cut off by
  // the kill is either replayed (it had committed) or accepted now. Either way, afterwards
  // each is in the log exactly once.
  for (const auto& a : all) {
    auto again = wyp.PostJson("/v1/records", a.push);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    if (a.status == 201) {
      EXPECT_EQ(again->status, 200) << again->Describe();
      EXPECT_EQ(again->Json().value("record_id", ""), a.record_id);
    } else {
      EXPECT_TRUE(again->status == 200 || again->status == 201) << again->Describe();
    }
  }
  accepted = AcceptedPerRecord();
  EXPECT_EQ(accepted.size(), all.size());
  for (const auto& [record_id, count] : accepted) {
    EXPECT_EQ(count, 1) << record_id << " accepted " << count << " times";
  }

  // Every accepted record reached the mailbox exactly once.
  std::map<std::string, int> delivered;
  HttpsClient csc = Client("bradford-csc");
  std::string after;
  for (int page = 0; page < 100; ++page) {
    auto mailbox =
        csc.Get("/v1/mailbox?limit=100" + (after.empty() ? "" : "&after=" + UrlEncode(after)));
    ASSERT_TRUE(mailbox.ok()) << mailbox.status().ToString();
    ASSERT_EQ(mailbox->status, 200) << mailbox->Describe();
    json body = mailbox->Json();
    for (const auto& m : body["messages"]) ++delivered[m.value("record_id", "")];
    if (!body["next"].is_string() || body["next"].get<std::string>().empty() ||
        body["messages"].empty()) {
      break;
    }
    after = body["next"].get<std::string>();
  }
  EXPECT_EQ(delivered.size(), all.size());
  for (const auto& [record_id, count] : delivered) {
    EXPECT_EQ(count, 1) << record_id << " delivered " << count << " times";
  }

  auto verify = Client("bradford-audit").Get("/v1/audit/verify");
  ASSERT_TRUE(verify.ok()) << verify.status().ToString();
  EXPECT_EQ(verify->Json().value("ok", false), true) << verify->Describe();
  ExpectOfflineVerifyOk();
}

// The offline verifier is what an auditor trusts after the fact: a log rewritten behind the
// gateway's back (the append-only triggers dropped, one entry's bytes changed) must fail it,
// naming the first bad entry, with exit status 1.
TEST_F(DurabilityTest, RewrittenAuditEntryFailsOfflineVerification) {
  auto pushed = Client("wyp").PostJson(
      "/v1/records", PushBody(CseFlag(TestNhsNumber(12), "OCC-2025-000012"), {"bradford-csc"}));
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  ASSERT_EQ(pushed->status, 201) << pushed->Describe();
  ASSERT_TRUE(sandbox().Stop("bradford", SIGTERM).ok());
  ExpectOfflineVerifyOk();

  // What an intruder with the database file could do. (This names the store's tables: see
  // daemon/core/schema.cc.)
  const std::string db_path = sandbox().area("bradford").data_dir + "/safegate.db";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK) << db_path;
  char* error = nullptr;
  int rc = sqlite3_exec(db,
                        "DROP TRIGGER IF EXISTS audit_no_update;"
                        "UPDATE audit SET entry = CAST(replace(CAST(entry AS TEXT), 'wyp', "
                        "'bthft') AS BLOB) WHERE seq = (SELECT min(seq) FROM audit "
                        "WHERE action = 'record_accepted');",
                        nullptr, nullptr, &error);
  std::string why = error ? error : "";
  sqlite3_free(error);
  int changed = sqlite3_changes(db);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << why;
  ASSERT_EQ(changed, 1);

  std::string output;
  Result<int> verify = RunProgram(
      {SafegatectlPath(), "audit", "verify", "--data-dir", sandbox().area("bradford").data_dir},
      &output);
  ASSERT_TRUE(verify.ok()) << verify.status().ToString();
  EXPECT_EQ(*verify, 1) << output;
  json report = json::parse(output, nullptr, false);
  ASSERT_TRUE(report.is_object()) << output;
  EXPECT_EQ(report.value("ok", true), false) << output;
  EXPECT_TRUE(report["first_bad_seq"].is_number_integer() && report["first_bad_seq"] > 0) << output;
}

}  // namespace
}  // namespace safegate::testing
