// `safegatectl backup` and `safegatectl restore` against a real sandbox gateway.
//
// A backup taken while several clients push restores to exactly one commit's state: every
// push answered before the backup started is in it, no push sent after it finished is, the
// audit log verifies offline, and the gateway starts on the restored store with its keys.
// A restore is refused while the gateway runs, and a backup whose audit log was tampered
// with is refused without touching the data directory.
#include <gtest/gtest.h>

#include <signal.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/sandbox.h"
#include "tests/support/test_data.h"

namespace safegate::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Runs safegatectl; returns its exit status, and its stdout+stderr in `output`.
int Ctl(const std::vector<std::string>& args, std::string* output) {
  std::vector<std::string> argv = {SafegatectlPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  Result<int> rc = RunProgram(argv, output);
  EXPECT_TRUE(rc.ok()) << rc.status().ToString();
  return rc.ok() ? *rc : -1;
}

// The JSON object safegatectl printed (its first '{' to its last '}'; its stderr lines are
// outside it).
json JsonIn(const std::string& output) {
  const size_t begin = output.find('{');
  const size_t end = output.rfind('}');
  if (begin == std::string::npos || end == std::string::npos || end < begin) return json();
  return json::parse(output.substr(begin, end - begin + 1), nullptr, false);
}

class BackupTest : public SandboxTest {
 protected:
  std::string DataDir() { return sandbox().area("bradford").data_dir; }
  std::string BackupDir() {
    const std::string dir = sandbox().dir() + "/backups";
    fs::create_directories(dir);
    return dir;
  }

  // Pushes one CSE flag (serial `n`) from wyp to Bradford CSC; returns the record id on 201.
  std::string PushOne(HttpsClient& client, int n) {
    const std::string occurrence = "OCC-2025-" + std::to_string(100000 + n);
    auto r = client.PostJson("/v1/records",
                             PushBody(CseFlag(TestNhsNumber(n), occurrence), {"bradford-csc"}));
    if (!r.ok() || r->status != 201) {
      ADD_FAILURE() << "push " << n << ": " << (r.ok() ? r->Describe() : r.status().ToString());
      return "";
    }
    return r->Json().value("record_id", "");
  }

  int RecordStatus(const std::string& record_id) {
    auto r = Client("bradford-csc").Get("/v1/records/" + UrlEncode(record_id));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->status : 0;
  }
};

TEST_F(BackupTest, BackupUnderLoadRestoresOneConsistentState) {
  const std::string backup = BackupDir() + "/safegate-backup.db";

  // The load: four clients pushing until told to stop. Each accepted push is filed under
  // the phase it was sent in and the phase its answer came back in: 0 before the backup
  // started, 1 while it ran, 2 after it finished.
  std::atomic<int> phase{0};
  std::atomic<bool> stop{false};
  std::atomic<int> serial{1000};
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> answered_before;  // answered in phase 0
  std::vector<std::string> sent_after;       // sent in phase 2
  std::vector<std::thread> pushers;
  for (int t = 0; t < 4; ++t) {
    pushers.emplace_back([&] {
      HttpsClient client = Client("wyp");
      while (!stop.load()) {
        const int sent_phase = phase.load();
        const std::string id = PushOne(client, serial.fetch_add(1));
        if (id.empty()) {
          stop = true;
          cv.notify_all();
          return;
        }
        const int answered_phase = phase.load();
        std::lock_guard<std::mutex> lock(mu);
        if (answered_phase == 0) answered_before.push_back(id);
        if (sent_phase == 2) sent_after.push_back(id);
        cv.notify_all();
      }
    });
  }
  auto wait_for = [&](std::vector<std::string>& list, size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(120), [&] {
      return stop.load() || list.size() >= n;
    }) && !stop.load();
  };

  ASSERT_TRUE(wait_for(answered_before, 20)) << "the load did not get going\n"
                                             << sandbox().LogTails();
  phase = 1;
  std::string output;
  const int backup_rc = Ctl({"backup", "--data-dir", DataDir(), "--to", backup}, &output);
  phase = 2;
  const bool load_went_on = wait_for(sent_after, 20);
  stop = true;
  for (auto& t : pushers) t.join();
  ASSERT_TRUE(load_went_on) << "pushes after the backup did not go through\n"
                            << sandbox().LogTails();

  ASSERT_EQ(backup_rc, 0) << output;
  json report = JsonIn(output);
  ASSERT_TRUE(report.is_object()) << output;
  EXPECT_EQ(report["audit"].value("ok", false), true) << output;
  EXPECT_GT(report["audit"].value("entries", 0), 0) << output;
  EXPECT_EQ(report.value("keys_included", true), false) << output;
  EXPECT_NE(output.find("store.key"), std::string::npos) << "the key is not mentioned: " << output;
  EXPECT_EQ(fs::status(backup).permissions() & (fs::perms::group_all | fs::perms::others_all),
            fs::perms::none)
      << "the backup is readable by others";
  // One self-contained file: nothing beside it, no temporary left behind.
  for (const auto& entry : fs::directory_iterator(BackupDir())) {
    EXPECT_EQ(entry.path().filename(), "safegate-backup.db") << "left behind: " << entry.path();
  }

  // While the gateway runs, its store is not replaced.
  const std::string live_db = DataDir() + "/safegate.db";
  ASSERT_EQ(Ctl({"restore", "--from", backup, "--data-dir", DataDir()}, &output), 1) << output;
  EXPECT_NE(output.find("a gateway is running"), std::string::npos) << output;
  EXPECT_EQ(RecordStatus(sent_after.back()), 200) << "the running gateway's store changed";

  ASSERT_TRUE(sandbox().Stop("bradford", SIGTERM).ok());
  ASSERT_EQ(Ctl({"restore", "--from", backup, "--data-dir", DataDir()}, &output), 0) << output;
  report = JsonIn(output);
  ASSERT_TRUE(report.is_object()) << output;
  EXPECT_EQ(report["audit"].value("ok", false), true) << output;
  EXPECT_TRUE(report["missing_keys"].empty()) << output;
  ASSERT_TRUE(report["previous_store"].is_string()) << output;
  EXPECT_TRUE(fs::is_regular_file(report["previous_store"].get<std::string>())) << output;
  EXPECT_FALSE(fs::exists(live_db + "-wal")) << "a WAL of the replaced store stayed beside it";

  ASSERT_EQ(Ctl({"audit", "verify", "--data-dir", DataDir()}, &output), 0) << output;

  Status restarted = sandbox().Restart("bradford");
  ASSERT_TRUE(restarted.ok()) << restarted.ToString() << "\n" << sandbox().LogTails();
  for (const auto& id : answered_before) {
    EXPECT_EQ(RecordStatus(id), 200) << id << " was accepted before the backup began";
  }
  for (const auto& id : sent_after) {
    EXPECT_EQ(RecordStatus(id), 404) << id << " was pushed after the backup ended";
  }
  // The restored gateway goes on: its audit chain continues from the restored head.
  HttpsClient wyp = Client("wyp");
  EXPECT_FALSE(PushOne(wyp, 999).empty());
  ASSERT_TRUE(sandbox().Stop("bradford", SIGTERM).ok());
  ASSERT_EQ(Ctl({"audit", "verify", "--data-dir", DataDir()}, &output), 0) << output;
}

TEST_F(BackupTest, TamperedBackupIsRefusedAndNothingChanges) {
  HttpsClient wyp = Client("wyp");
  for (int n = 1; n <= 3; ++n) ASSERT_FALSE(PushOne(wyp, n).empty());
  const std::string backup = BackupDir() + "/tampered.db";
  std::string output;
  ASSERT_EQ(Ctl({"backup", "--data-dir", DataDir(), "--to", backup}, &output), 0) << output;
  ASSERT_TRUE(sandbox().Stop("bradford", SIGTERM).ok());

  // What someone holding the backup file could do (the store's tables: daemon/core/schema.cc).
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(backup.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(db,
                              "DROP TRIGGER IF EXISTS audit_no_update;"
                              "UPDATE audit SET entry = CAST(replace(CAST(entry AS TEXT), 'wyp', "
                              "'bthft') AS BLOB) WHERE seq = (SELECT min(seq) FROM audit "
                              "WHERE action = 'record_accepted');",
                              nullptr, nullptr, &error);
  const std::string why = error ? error : "";
  sqlite3_free(error);
  const int changed = sqlite3_changes(db);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << why;
  ASSERT_EQ(changed, 1);

  const std::string live_db = DataDir() + "/safegate.db";
  const std::string before = ReadFile(live_db);
  ASSERT_EQ(Ctl({"restore", "--from", backup, "--data-dir", DataDir()}, &output), 1) << output;
  EXPECT_NE(output.find("does not verify"), std::string::npos) << output;
  EXPECT_NE(output.find("Nothing was changed"), std::string::npos) << output;
  EXPECT_EQ(ReadFile(live_db), before) << "the store changed although the restore was refused";
  for (const auto& entry : fs::directory_iterator(DataDir())) {
    const std::string name = entry.path().filename().string();
    EXPECT_EQ(name.rfind("pre-restore-", 0), std::string::npos) << name;
    EXPECT_EQ(name.rfind(".restore-", 0), std::string::npos) << "left behind: " << name;
  }
  Status restarted = sandbox().Restart("bradford");
  ASSERT_TRUE(restarted.ok()) << restarted.ToString() << "\n" << sandbox().LogTails();
}

TEST_F(BackupTest, BadArgumentsAreNamed) {
  std::string output;
  // A backup inside the data directory would be lost with it.
  EXPECT_EQ(Ctl({"backup", "--data-dir", DataDir(), "--to", DataDir() + "/copy.db"}, &output), 2)
      << output;
  EXPECT_NE(output.find("inside the data directory"), std::string::npos) << output;
  // No store there.
  EXPECT_EQ(Ctl({"backup", "--data-dir", BackupDir(), "--to", sandbox().dir() + "/x.db"}, &output),
            2)
      << output;
  EXPECT_NE(output.find("no safegate store at"), std::string::npos) << output;
  // Not a database: refused before anything changes.
  const std::string junk = BackupDir() + "/junk.db";
  std::ofstream(junk) << "this is not a database\n";
  const std::string empty_dir = sandbox().dir() + "/restored";
  EXPECT_EQ(Ctl({"restore", "--from", junk, "--data-dir", empty_dir}, &output), 1) << output;
  EXPECT_NE(output.find("is not a usable safegate backup"), std::string::npos) << output;
  EXPECT_FALSE(fs::exists(empty_dir + "/safegate.db"));
  // Options that do not belong.
  EXPECT_EQ(Ctl({"backup", "--data-dir", DataDir(), "--from", junk}, &output), 2) << output;
  EXPECT_EQ(Ctl({"restore", "--from", junk}, &output), 2) << output;
  EXPECT_NE(output.find("--data-dir DIR is required"), std::string::npos) << output;
}

}  // namespace
}  // namespace safegate::testing
