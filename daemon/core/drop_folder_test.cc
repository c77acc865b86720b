// Drop folders on a real store: files renamed in are ingested and moved; refusals get a
// .why; nothing is lost or duplicated across a restart or a kill -9.
#include "daemon/core/drop_folder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "daemon/core/ingest_story.h"
#include "daemon/core/test_support.h"
#include "tools/gen_exports/generator.h"

namespace safegate::core {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using namespace safegate::testing;
using nlohmann::json;

int64_t CountRows(const std::string& db_path, const char* sql) {
  sqlite3* db = nullptr;
  int64_t n = -1;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
      n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

void Write(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string Read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Drops a file the way the contract asks: written under a temporary name, then renamed.
void Drop(const fs::path& dir, const std::string& name, const std::string& text) {
  Write(dir / (name + ".tmp"), text);
  fs::rename(dir / (name + ".tmp"), dir / name);
}

class DropFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(h.Open().ok());
    drop_dir = fs::path(drops.path()) / "wyp";
  }
  void TearDown() override { watcher.reset(); }

  config::Config::Drop WypDrop() {
    config::Config::Drop d;
    d.agency = "wyp";
    d.format = "niche-xml";
    d.dir = drop_dir.string();
    d.purpose = "safeguarding";
    return d;
  }

  Status StartWatcher(std::vector<config::Config::Drop> list) {
    DropWatcher::Options o;
    o.drops = std::move(list);
    o.registry = TestRegistry();
    o.gateway = &h.gw();
    o.clock = &h.clock();
    o.retry_interval = std::chrono::milliseconds(50);
    o.on_event = [this](const DropEvent& e) {
      std::lock_guard<std::mutex> lock(mu);
      events.push_back(e);
      cv.notify_all();
    };
    auto w = DropWatcher::Start(std::move(o));
    if (!w.ok()) return w.status();
    watcher = std::move(*w);
    return Status::Ok();
  }

  // Waits (at most 60 s) until `n` events have been seen; returns them.
  std::vector<DropEvent> WaitForEvents(size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return events.size() >= n; }))
        << "only " << events.size() << " of " << n << " drop events";
    return events;
  }

  GatewayHarness h;
  TempDir drops;
  fs::path drop_dir;
  std::unique_ptr<DropWatcher> watcher;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<DropEvent> events;
};

TEST_F(DropFolderTest, EachDropIsCheckedAtStart) {
  auto bad = [&](auto change, const std::string& what) {
    config::Config::Drop d = WypDrop();
    change(d);
    Status s = StartWatcher({d});
    EXPECT_EQ(s.code(), ErrorCode::kInvalidInput) << what;
    EXPECT_THAT(s.detail(), HasSubstr("drop[0]")) << what;
  };
  bad([](config::Config::Drop& d) { d.agency = "nobody"; }, "unknown agency");
  bad([](config::Config::Drop& d) { d.agency = "bradford-audit"; }, "audit agency");
  bad([](config::Config::Drop& d) { d.format = "pdf"; }, "unknown format");
  EXPECT_FALSE(fs::exists(drop_dir));
  ASSERT_TRUE(StartWatcher({WypDrop()}).ok());
  EXPECT_TRUE(fs::is_directory(drop_dir / "done"));
  EXPECT_TRUE(fs::is_directory(drop_dir / "failed"));
}

TEST_F(DropFolderTest, ARenamedFileIsIngestedAndMovedToDone) {
  ASSERT_TRUE(StartWatcher({WypDrop()}).ok());
  Write(drop_dir / "half-written.xml.tmp", "<NicheExport>");  // still being written: left alone
  Write(drop_dir / ".hidden", "<NicheExport>");
  Drop(drop_dir, "export-1.xml", story::kNicheXml);
  auto seen = WaitForEvents(1);
  ASSERT_GE(seen.size(), 1u);
  EXPECT_EQ(seen[0].file, "export-1.xml");
  EXPECT_EQ(seen[0].outcome, "done") << seen[0].status.ToString();
  EXPECT_EQ(seen[0].records, 3);
  EXPECT_EQ(seen[0].created, 3);
  EXPECT_EQ(seen[0].moved_to, (drop_dir / "done" / "export-1.xml").string());
  EXPECT_FALSE(fs::exists(drop_dir / "export-1.xml"));
  EXPECT_EQ(Read(drop_dir / "done" / "export-1.xml"), story::kNicheXml);
  EXPECT_TRUE(fs::exists(drop_dir / "half-written.xml.tmp"));
  EXPECT_TRUE(fs::exists(drop_dir / ".hidden"));
  EXPECT_EQ(h.Count("records"), 3);
  EXPECT_EQ(h.Count("audit", "action = 'ingest_accepted' AND purpose = 'safeguarding'"), 1);
  // The file name is the agency's business: it is not in the log.
  EXPECT_EQ(h.Count("audit", "CAST(entry AS TEXT) LIKE '%export-1%'"), 0);

  // The same name again: the export replays (nothing new) and lands beside the first.
  Drop(drop_dir, "export-1.xml", story::kNicheXml);
  seen = WaitForEvents(2);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].outcome, "done");
  EXPECT_EQ(seen[1].created, 0);
  EXPECT_EQ(seen[1].moved_to, (drop_dir / "done" / "export-1.xml.2").string());
  EXPECT_EQ(h.Count("records"), 3);
}

TEST_F(DropFolderTest, ARefusedFileMovesToFailedWithItsReasons) {
  ASSERT_TRUE(StartWatcher({WypDrop()}).ok());
  std::string broken = story::kNicheXml;
  broken.replace(broken.find("<Level>HIGH</Level>"), 19, "<Level>SEVERE</Level>");
  Drop(drop_dir, "broken.xml", broken);
  auto seen = WaitForEvents(1);
  ASSERT_GE(seen.size(), 1u);
  EXPECT_EQ(seen[0].outcome, "failed");
  EXPECT_EQ(seen[0].status.code(), ErrorCode::kInvalidInput);
  EXPECT_TRUE(fs::exists(drop_dir / "failed" / "broken.xml"));
  const json why = json::parse(Read(drop_dir / "failed" / "broken.xml.why"));
  EXPECT_EQ(why["file"], "broken.xml");
  EXPECT_EQ(why["agency"], "wyp");
  EXPECT_EQ(why["format"], "niche-xml");
  EXPECT_EQ(why["error"], "invalid_input");
  EXPECT_EQ(why["at"], "2026-11-21T17:34:00.000Z");
  ASSERT_EQ(why["problems"].size(), 1u);
  EXPECT_THAT(why["problems"][0]["where"].get<std::string>(), HasSubstr("/WarningMarker[1]/Level"));
  EXPECT_EQ(h.Count("records"), 0);

  // A link is refused as well, without following it.
  fs::create_symlink("/etc/hostname", drop_dir / "link.xml.tmp");
  fs::rename(drop_dir / "link.xml.tmp", drop_dir / "link.xml");
  seen = WaitForEvents(2);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].file, "link.xml");
  EXPECT_EQ(seen[1].outcome, "failed");
  const json link_why = json::parse(Read(drop_dir / "failed" / "link.xml.why"));
  EXPECT_THAT(link_why["detail"].get<std::string>(), HasSubstr("symbolic link"));
}

TEST_F(DropFolderTest, FilesLeftFromBeforeAreProcessedAtStart) {
  fs::create_directories(drop_dir);
  Write(drop_dir / "a.xml", story::kNicheXml);
  Write(drop_dir / "b.xml", "not xml");
  // Ingested before a crash that came before the move: at start it only replays.
  IngestRequest req;
  req.format = "fhir-flag";
  req.content = story::kFhirBundle;
  req.purpose = "safeguarding";
  auto first = Await<IngestOutcome>([&](Callback<IngestOutcome> cb) {
    h.gw().Ingest(CallerFor("bthft"), req, std::move(cb));
  });
  ASSERT_TRUE(first.ok());
  const fs::path bthft_dir = fs::path(drops.path()) / "bthft";
  fs::create_directories(bthft_dir);
  Write(bthft_dir / "flags.json", story::kFhirBundle);
  config::Config::Drop health;
  health.agency = "bthft";
  health.format = "fhir-flag";
  health.dir = bthft_dir.string();
  health.purpose = "safeguarding";

  ASSERT_TRUE(StartWatcher({WypDrop(), health}).ok());
  auto seen = WaitForEvents(3);
  ASSERT_EQ(seen.size(), 3u);
  std::map<std::string, DropEvent> by_file;
  for (const DropEvent& e : seen) by_file[e.file] = e;
  EXPECT_EQ(by_file["a.xml"].outcome, "done");
  EXPECT_EQ(by_file["a.xml"].created, 3);
  EXPECT_EQ(by_file["b.xml"].outcome, "failed");
  EXPECT_EQ(by_file["flags.json"].outcome, "done");
  EXPECT_EQ(by_file["flags.json"].created, 0);  // already stored: replayed, not duplicated
  EXPECT_EQ(h.Count("records"), 4);
}

TEST_F(DropFolderTest, AFileTheStoreCannotTakeNowStaysForARetry) {
  ASSERT_TRUE(StartWatcher({WypDrop()}).ok());
  h.gw().Shutdown();  // the store refuses everything from now on (unavailable)
  Drop(drop_dir, "later.xml", story::kNicheXml);
  auto seen = WaitForEvents(2);  // tried, and tried again after the retry interval
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].outcome, "retry");
  EXPECT_EQ(seen[0].status.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(seen[1].outcome, "retry");
  watcher.reset();
  EXPECT_TRUE(fs::exists(drop_dir / "later.xml"));
  EXPECT_TRUE(fs::is_empty(drop_dir / "failed"));
}

// kill -9 at whatever point the ingest of a large export has reached, then a restart: every
// record is there exactly once and the file ends in done/.
TEST(DropFolderCrashTest, KillNineMidIngestNeitherLosesNorDuplicates) {
  tools::GenOptions o;
  o.children = 2000;  // big enough that the kill lands mid-ingest, small enough for sanitizers
  o.seed = 11;
  const tools::GeneratedExports g = tools::GenerateExports(o);
  TempDir data, drops;
  const fs::path dir = fs::path(drops.path()) / "wyp";
  fs::create_directories(dir);
  Write(dir / "big.xml", g.niche_xml);

  config::Config::Drop d;
  d.agency = "wyp";
  d.format = "niche-xml";
  d.dir = dir.string();
  d.purpose = "safeguarding";
  auto open = [&](ManualClock* clock) {
    GatewayOptions go;
    go.config = TestConfig(data.path());
    go.registry = TestRegistry();
    go.clock = clock;
    return Gateway::Open(std::move(go));
  };

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child runs a gateway and a watcher until it is killed.
    ManualClock clock(kT0);
    auto gw = open(&clock);
    if (!gw.ok()) ::_exit(2);
    DropWatcher::Options wo;
    wo.drops = {d};
    wo.registry = TestRegistry();
    wo.gateway = gw->get();
    auto w = DropWatcher::Start(std::move(wo));
    if (!w.ok()) ::_exit(3);
    for (;;) ::pause();
  }
  // Kill it once the ingest's write transaction has begun to reach the disk (or it is all
  // done): 256 KiB of WAL beyond what the gateway's start wrote. The schema's migrations
  // alone can write that much before the store key exists, and a kill there is not the
  // crash this test is about, so the WAL is measured from when the key file is complete.
  const fs::path wal = fs::path(data.path()) / "safegate.db-wal";
  const fs::path key_file = fs::path(data.path()) / "store.key";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  bool started = false;
  std::optional<uintmax_t> wal_at_start;
  while (std::chrono::steady_clock::now() < deadline) {
    std::error_code ec, key_ec;
    const auto size = fs::file_size(wal, ec);
    if (!wal_at_start && !ec && fs::file_size(key_file, key_ec) == 32 && !key_ec) {
      wal_at_start = size;
    }
    if ((!ec && wal_at_start && size > *wal_at_start + 256 * 1024) ||
        fs::exists(dir / "done" / "big.xml")) {
      started = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling a condition
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(started) << "the child never began writing";
  ASSERT_TRUE(WIFSIGNALED(status));

  ManualClock clock(kT0);
  auto gw = open(&clock);
  ASSERT_TRUE(gw.ok()) << gw.status().ToString();
  std::mutex mu;
  std::condition_variable cv;
  std::vector<DropEvent> seen;
  DropWatcher::Options wo;
  wo.drops = {d};
  wo.registry = TestRegistry();
  wo.gateway = gw->get();
  wo.on_event = [&](const DropEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(e);
    cv.notify_all();
  };
  const bool moved_before = fs::exists(dir / "done" / "big.xml");
  auto w = DropWatcher::Start(std::move(wo));
  ASSERT_TRUE(w.ok());
  if (!moved_before) {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(400), [&] { return !seen.empty(); }));
    EXPECT_EQ(seen[0].outcome, "done") << seen[0].status.ToString();
    EXPECT_EQ(static_cast<size_t>(seen[0].records), g.niche_records);
    std::cout << "after kill -9: " << seen[0].created << " of " << seen[0].records
              << " records were not yet stored\n";
  }
  (*w)->Stop();
  (*gw)->Shutdown();
  gw->reset();
  EXPECT_TRUE(fs::exists(dir / "done" / "big.xml"));
  EXPECT_FALSE(fs::exists(dir / "big.xml"));
  const std::string db = (fs::path(data.path()) / "safegate.db").string();
  EXPECT_EQ(CountRows(db, "SELECT count(*) FROM records"),
            static_cast<int64_t>(g.niche_records));
  EXPECT_EQ(CountRows(db, "SELECT count(DISTINCT source_record_id) FROM records"),
            static_cast<int64_t>(g.niche_records));
  EXPECT_EQ(CountRows(db, "SELECT count(*) FROM audit WHERE action = 'record_accepted'"),
            static_cast<int64_t>(g.niche_records));
}

}  // namespace
}  // namespace safegate::core
