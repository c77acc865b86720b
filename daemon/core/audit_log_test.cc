// The audit entry format (bytes version 2), the sealed details, the chain hash, the Merkle
// tree and the signed heads the log writes, exactly as docs/audit-log.md states them. The
// worked example of that page is checked here byte for byte, so the page cannot drift.
#include "daemon/core/audit_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <iostream>

#include "daemon/audit/encoding.h"
#include "daemon/core/crypto.h"
#include "daemon/core/schema.h"
#include "daemon/core/test_support.h"
#include "daemon/core/time_format.h"
#include "daemon/core/writer.h"

namespace safegate::core {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* kSubject = "nhs:9990000018";
// The worked example's salts: fixed here so that the page's hashes can be reproduced. The
// gateway draws a fresh random salt for every entry.
constexpr const char* kSalts[3] = {"6a0c9b8f3e2d41a7b5c4d3e2f1a09b8c",
                                   "0d4f7e1a2b3c4d5e6f708192a3b4c5d6",
                                   "c3b2a1908f7e6d5c4b3a29180f1e2d3c"};

AuditEntry Accepted() {
  AuditEntry e;
  e.seq = 1;
  e.at_ms = testing::kT0 + 123;
  e.actor = "wyp";
  e.action = "record_accepted";
  e.subject = kSubject;
  e.record_id = "rec_8f14e45fceea167a5a36dedd4bea2543";
  e.purpose = "child_protection";
  e.detail = {{"kind", "flag"}, {"recipients", {"bradford-csc"}}, {"source_version", 1}};
  return e;
}

AuditEntry Permitted() {
  AuditEntry e = Accepted();
  e.seq = 2;
  e.action = "delivery_permitted";
  e.message_id = "msg_c9f0f895fb98ab9159f51fd0297e236d";
  e.decision = "permit";
  e.reasons = {"placeholder policy: registered police, health and csc recipients are permitted"};
  e.detail = {{"recipient", "bradford-csc"}, {"deadline", "2026-11-22T17:34:00.123Z"}};
  return e;
}

AuditEntry Read() {
  AuditEntry e;
  e.seq = 3;
  e.at_ms = testing::kT0 + 5 * 60 * 1000 + 7;
  e.actor = "bradford-csc";
  e.action = "mailbox_read";
  e.subject = kSubject;
  e.record_id = "rec_8f14e45fceea167a5a36dedd4bea2543";
  e.message_id = "msg_c9f0f895fb98ab9159f51fd0297e236d";
  e.purpose = "child_protection";
  e.detail = {{"type", "record"}};
  return e;
}

TEST(AuditEntryTest, BytesAreCanonicalWithEveryKey) {
  AuditEntry e;
  e.seq = 42;
  e.at_ms = 0;
  e.actor = "-";
  e.action = "tls_rejected";
  e.subject = "nhs:9990000018";  // not part of the bytes
  EXPECT_EQ(AuditEntryBytes(e),
            R"({"action":"tls_rejected","actor":"-","at":"1970-01-01T00:00:00.000Z",)"
            R"("decision":"","detail":{},"details_hash":"","message_id":"","purpose":"",)"
            R"("reasons":[],"record_id":"","seq":42})");
  EXPECT_THAT(AuditEntryBytes(Accepted()), ::testing::Not(HasSubstr("999")));
}

TEST(AuditEntryTest, BytesAreThoseOfTheCanonicalObject) {
  // AuditEntryBytes writes the members itself; the bytes must be CanonicalJson of the object
  // for any content: escapes, non-ASCII and invalid UTF-8, nested details, negative seq, a
  // detail that is not an object (written as {}).
  auto as_object = [](const AuditEntry& e) {
    return record::CanonicalJson(
        {{"action", e.action}, {"actor", e.actor}, {"at", FormatTimeMs(e.at_ms)},
         {"decision", e.decision},
         {"detail", e.detail.is_object() ? e.detail : nlohmann::json::object()},
         {"details_hash", e.details_hash}, {"message_id", e.message_id},
         {"purpose", e.purpose}, {"reasons", e.reasons}, {"record_id", e.record_id},
         {"seq", e.seq}});
  };
  AuditEntry e = Accepted();
  EXPECT_EQ(AuditEntryBytes(e), as_object(e));
  e.seq = -7;
  e.at_ms = 1'700'000'000'123;
  e.actor = "quote \" and \\ backslash\ttab";
  e.decision = "caf\xc3\xa9 \xe2\x82\xac";
  e.reasons = {"R2-police-to-csc", "bad \xc3 utf8", "", "\x01 control"};
  e.detail = {{"rules_fired", {"a", "b"}}, {"n", 3}, {"nested", {{"z", nullptr}, {"a", true}}},
              {"withheld", nlohmann::json::array()}};
  EXPECT_EQ(AuditEntryBytes(e), as_object(e));
  e.detail = nlohmann::json::array({1, 2});
  EXPECT_EQ(AuditEntryBytes(e), as_object(e));
  EXPECT_THAT(AuditEntryBytes(e), HasSubstr(R"("detail":{},)"));
}

TEST(AuditEntryTest, ParseRoundTrips) {
  for (AuditEntry e : {Accepted(), Permitted(), Read()}) {
    e.subject.clear();
    e.details_hash = Hex(Sha256("details"));
    auto parsed = ParseAuditEntry(AuditEntryBytes(e));
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(parsed->seq, e.seq);
    EXPECT_EQ(parsed->at_ms, e.at_ms);
    EXPECT_EQ(parsed->actor, e.actor);
    EXPECT_EQ(parsed->action, e.action);
    EXPECT_EQ(parsed->details_hash, e.details_hash);
    EXPECT_EQ(parsed->subject, "");
    EXPECT_EQ(parsed->record_id, e.record_id);
    EXPECT_EQ(parsed->message_id, e.message_id);
    EXPECT_EQ(parsed->purpose, e.purpose);
    EXPECT_EQ(parsed->decision, e.decision);
    EXPECT_EQ(parsed->reasons, e.reasons);
    EXPECT_EQ(parsed->detail, e.detail);
    EXPECT_EQ(AuditEntryBytes(*parsed), AuditEntryBytes(e));
  }
}

TEST(AuditEntryTest, ParseRejectsOtherShapes) {
  const std::string good = AuditEntryBytes(Accepted());
  json j = json::parse(good);
  auto with = [&](const char* key, json value) {
    json copy = j;
    copy[key] = std::move(value);
    return copy.dump();
  };
  auto without = [&](const char* key) {
    json copy = j;
    copy.erase(key);
    return copy.dump();
  };
  EXPECT_FALSE(ParseAuditEntry("not json").ok());
  EXPECT_FALSE(ParseAuditEntry("[]").ok());
  EXPECT_THAT(ParseAuditEntry(without("purpose")).status().detail(), HasSubstr("purpose"));
  EXPECT_THAT(ParseAuditEntry(without("details_hash")).status().detail(),
              HasSubstr("details_hash"));
  EXPECT_FALSE(ParseAuditEntry(with("extra", 1)).ok());
  // Version 1 bytes (the subject in the clear) are not an entry of this format.
  EXPECT_FALSE(ParseAuditEntry(with("subject", "nhs:9990000018")).ok());
  EXPECT_FALSE(ParseAuditEntry(with("seq", "1")).ok());
  EXPECT_FALSE(ParseAuditEntry(with("at", "yesterday")).ok());
  EXPECT_FALSE(ParseAuditEntry(with("reasons", {1})).ok());
  EXPECT_FALSE(ParseAuditEntry(with("detail", json::array())).ok());
  EXPECT_FALSE(ParseAuditEntry(with("actor", nullptr)).ok());
  EXPECT_FALSE(ParseAuditEntry(with("details_hash", "ABCD")).ok());
  EXPECT_FALSE(ParseAuditEntry(with("details_hash", std::string(64, 'A'))).ok());
  EXPECT_TRUE(ParseAuditEntry(with("details_hash", std::string(64, 'a'))).ok());
}

TEST(AuditEntryTest, AgenciesNamed) {
  EXPECT_EQ(AgenciesNamedBy(Accepted()), (std::set<std::string>{"wyp", "bradford-csc"}));
  AuditEntry e = Read();
  e.detail = {{"recipient", "bthft"}, {"notified", {"wyp", "bradford-audit"}}};
  EXPECT_EQ(AgenciesNamedBy(e),
            (std::set<std::string>{"bradford-csc", "bthft", "wyp", "bradford-audit"}));
  e.actor = "-";
  e.detail = json::object();
  EXPECT_TRUE(AgenciesNamedBy(e).empty());
}

TEST(AuditDetailsTest, BytesAndParse) {
  EXPECT_EQ(AuditDetailsBytes(kSubject, kSalts[0], ""),
            R"({"salt":"6a0c9b8f3e2d41a7b5c4d3e2f1a09b8c","subject":"nhs:9990000018"})");
  EXPECT_EQ(AuditDetailsBytes(kSubject, kSalts[0], "seen at \"school\""),
            R"({"salt":"6a0c9b8f3e2d41a7b5c4d3e2f1a09b8c","subject":"nhs:9990000018",)"
            R"("text":"seen at \"school\""})");
  auto d = ParseAuditDetails(AuditDetailsBytes(kSubject, kSalts[1], "note"));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->subject, kSubject);
  EXPECT_EQ(d->salt, kSalts[1]);
  EXPECT_EQ(d->text, "note");
  EXPECT_FALSE(ParseAuditDetails(R"({"subject":"nhs:9990000018"})").ok());
  EXPECT_FALSE(ParseAuditDetails(R"({"salt":"00","subject":"nhs:9990000018"})").ok());
  EXPECT_FALSE(ParseAuditDetails(
                   R"({"salt":"6a0c9b8f3e2d41a7b5c4d3e2f1a09b8c","subject":"x","name":"A"})")
                   .ok());
}

// A log on a fresh database with a key, a signing key and subject keys: what the gateway
// builds, without the gateway.
class LogFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = Db::Open(dir_.path() + "/a.db", Db::Mode::kReadWriteCreate);
    ASSERT_TRUE(db.ok());
    db_ = std::move(*db);
    ASSERT_TRUE(Migrate(*db_).ok());
    auto key = AtRestKey::LoadOrCreate(dir_.path() + "/store.key");
    ASSERT_TRUE(key.ok());
    key_ = std::move(*key);
    auto signing = audit::SigningKey::LoadOrCreate(dir_.path() + "/signing.key");
    ASSERT_TRUE(signing.ok());
    signing_ = std::move(*signing);
    keys_ = std::make_unique<SubjectKeys>(db_.get(), key_.get());
  }
  std::unique_ptr<AuditLog> MakeLog(uint64_t every_entries = 1000) {
    AuditLogOptions o;
    o.subject_keys = keys_.get();
    o.signing_key = signing_.get();
    o.head_policy = audit::TreeHeadPolicy{every_entries, 3'600'000};
    o.clock = &clock_;
    return std::make_unique<AuditLog>(db_.get(), o);
  }
  VerifyReport Verify() {
    VerifyOptions o;
    o.public_key = &signing_->public_key();
    o.subject_keys = keys_.get();
    auto r = VerifyLog(*db_, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : VerifyReport{};
  }

  testing::TempDir dir_;
  ManualClock clock_{testing::kT0};
  std::unique_ptr<Db> db_;
  std::unique_ptr<AtRestKey> key_;
  std::unique_ptr<audit::SigningKey> signing_;
  std::unique_ptr<SubjectKeys> keys_;
};

TEST_F(LogFixture, ChainTreeDetailsAndHeadsOnDisk) {
  auto log = MakeLog();
  ASSERT_TRUE(log->Load().ok());
  EXPECT_EQ(log->head().seq, 0);
  EXPECT_EQ(log->head().hash, std::string(32, '\0'));
  EXPECT_FALSE(log->HeadDueIn()) << "nothing to sign";

  ASSERT_TRUE(db_->Exec("BEGIN").ok());
  std::string h(32, '\0');
  audit::MemoryNodeStore reference;
  auto ref_tree = audit::MerkleTree::Open(&reference, 0);
  for (AuditEntry e : {Accepted(), Permitted(), Read()}) {
    e.seq = 999;  // assigned by the log
    ASSERT_TRUE(log->Append(e).ok());
    EXPECT_EQ(e.details_hash.size(), 64u);
    h = Sha256(h, AuditEntryBytes(e));
    EXPECT_EQ(e.hash, Hex(h));
    ASSERT_TRUE(ref_tree->AppendEntry(AuditEntryBytes(e)).ok());
  }
  EXPECT_EQ(log->tree_size(), 3u);
  EXPECT_EQ(log->root(), ref_tree->Root());
  ASSERT_TRUE(log->HeadDueIn().has_value()) << "three entries wait for a head";
  auto signed_head = log->SignHeadIfDue(/*force=*/true);
  ASSERT_TRUE(signed_head.ok() && *signed_head);
  ASSERT_TRUE(db_->Exec("COMMIT").ok());
  EXPECT_EQ(log->head().seq, 3);
  EXPECT_FALSE(log->HeadDueIn());
  ASSERT_TRUE(log->latest_head());
  EXPECT_EQ(log->latest_head()->tree_size, 3u);
  EXPECT_EQ(log->latest_head()->timestamp_ms, static_cast<uint64_t>(testing::kT0));
  EXPECT_TRUE(audit::VerifyTreeHead(*log->latest_head(), signing_->public_key()).ok());

  // The bytes carry no subject; one key was made for the one subject.
  EXPECT_EQ(db_->QueryInt("SELECT count(*) FROM subject_keys").value(), 1);
  EXPECT_EQ(db_->QueryInt("SELECT count(*) FROM audit WHERE CAST(entry AS TEXT) LIKE '%9990000018%'")
                .value(),
            0);
  EXPECT_EQ(db_->QueryInt("SELECT count(*) FROM merkle_nodes").value(), 4);  // 2*3 - popcount(3)

  auto reloaded = MakeLog();
  ASSERT_TRUE(reloaded->Load().ok());
  EXPECT_EQ(reloaded->head().seq, 3);
  EXPECT_EQ(reloaded->head().hash, h);
  EXPECT_EQ(reloaded->root(), ref_tree->Root());
  EXPECT_EQ(reloaded->latest_head(), log->latest_head());

  const VerifyReport report = Verify();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.entries, 3);
  EXPECT_EQ(report.head, Hex(h));
  EXPECT_EQ(report.tree_size, 3);
  EXPECT_EQ(report.root_hash, audit::HashHex(ref_tree->Root()));
  EXPECT_EQ(report.heads_checked, 1);
  EXPECT_EQ(report.tree_head["tree_size"], 3);

  // The details open to the subject and hash to the entry's details_hash.
  SubjectKeys::Cache cache;
  auto key_id = keys_->Find(kSubject);
  ASSERT_TRUE(key_id.ok() && *key_id);
  auto q = db_->PrepareOnce("SELECT key_id, details, entry FROM audit WHERE seq = 2");
  ASSERT_TRUE(q.ok() && (*q)->Step().value());
  EXPECT_EQ((*q)->Int(0), **key_id);
  auto parsed = ParseAuditEntry((*q)->Blob(2));
  ASSERT_TRUE(parsed.ok());
  auto details = keys_->Open((*q)->Int(0), 2, (*q)->Blob(1), parsed->details_hash, cache);
  ASSERT_TRUE(details.ok()) << details.status().ToString();
  ASSERT_TRUE(*details);
  EXPECT_EQ((*details)->subject, kSubject);
  // Sealed for entry 2, they do not open as entry 3's.
  EXPECT_FALSE(keys_->Open((*q)->Int(0), 3, (*q)->Blob(1), "", cache).ok());

  // The program itself cannot rewrite the log, its tree or its heads.
  EXPECT_FALSE(db_->Exec("UPDATE audit SET actor = 'x' WHERE seq = 1").ok());
  EXPECT_FALSE(db_->Exec("DELETE FROM audit WHERE seq = 3").ok());
  EXPECT_FALSE(db_->Exec("DELETE FROM merkle_nodes WHERE pos = 3").ok());  // leaf 2
  EXPECT_FALSE(db_->Exec("UPDATE tree_heads SET tree_size = 2").ok());
}

TEST_F(LogFixture, ErasureLeavesTheChainAndTreeVerifiable) {
  auto log = MakeLog();
  ASSERT_TRUE(log->Load().ok());
  ASSERT_TRUE(db_->Exec("BEGIN").ok());
  for (AuditEntry e : {Accepted(), Permitted(), Read()}) ASSERT_TRUE(log->Append(e).ok());
  AuditEntry other = Read();
  other.subject = "nhs:9990000026";
  ASSERT_TRUE(log->Append(other).ok());
  ASSERT_TRUE(log->SignHeadIfDue(true).ok());
  const audit::Hash root_before = log->root();
  auto key_id = keys_->Find(kSubject);
  ASSERT_TRUE(key_id.ok() && *key_id);
  ASSERT_TRUE(keys_->Erase(**key_id, testing::kT0, 5).ok());
  EXPECT_EQ(keys_->Erase(**key_id, testing::kT0, 5).code(), ErrorCode::kNotFound);
  ASSERT_TRUE(db_->Exec("COMMIT").ok());

  EXPECT_FALSE(keys_->Find(kSubject).value()) << "the blind index no longer leads anywhere";
  EXPECT_EQ(db_->QueryInt("SELECT count(*) FROM subject_keys WHERE sealed_key IS NOT NULL OR "
                          "blind IS NOT NULL OR nonce IS NOT NULL")
                .value(),
            1)
      << "only the other subject's key is left";
  SubjectKeys::Cache cache;
  auto q = db_->PrepareOnce("SELECT key_id, details FROM audit WHERE seq = 1");
  ASSERT_TRUE(q.ok() && (*q)->Step().value());
  auto details = keys_->Open((*q)->Int(0), 1, (*q)->Blob(1), "", cache);
  ASSERT_TRUE(details.ok());
  EXPECT_FALSE(*details) << "erased";

  auto reloaded = MakeLog();
  ASSERT_TRUE(reloaded->Load().ok());
  EXPECT_EQ(reloaded->root(), root_before);
  const VerifyReport report = Verify();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.entries, 4);
}

TEST_F(LogFixture, FreeTextNeedsASubject) {
  auto log = MakeLog();
  ASSERT_TRUE(log->Load().ok());
  ASSERT_TRUE(db_->Exec("BEGIN").ok());
  AuditEntry e = Read();
  e.subject.clear();
  e.text = "a note";
  EXPECT_EQ(log->Append(e).code(), ErrorCode::kInternal);
  EXPECT_EQ(log->head().seq, 0);
  e.subject = kSubject;
  ASSERT_TRUE(log->Append(e).ok());
  ASSERT_TRUE(db_->Exec("COMMIT").ok());
  EXPECT_EQ(db_->QueryInt("SELECT count(*) FROM audit WHERE CAST(entry AS TEXT) LIKE '%note%' OR "
                          "CAST(details AS TEXT) LIKE '%note%'")
                .value(),
            0);
}

TEST_F(LogFixture, HeadsFollowThePolicy) {
  auto log = MakeLog(/*every_entries=*/2);
  ASSERT_TRUE(log->Load().ok());
  ASSERT_TRUE(db_->Exec("BEGIN").ok());
  AuditEntry e = Accepted();
  ASSERT_TRUE(log->Append(e).ok());
  EXPECT_FALSE(log->SignHeadIfDue(false).value()) << "one entry, interval not over";
  ASSERT_TRUE(log->Append(e).ok());
  EXPECT_TRUE(log->SignHeadIfDue(false).value()) << "two entries";
  EXPECT_FALSE(log->SignHeadIfDue(true).value()) << "nothing new";
  ASSERT_TRUE(log->Append(e).ok());
  clock_.Advance(-1000);  // a clock going backwards does not move heads back
  EXPECT_TRUE(log->SignHeadIfDue(true).value());
  ASSERT_TRUE(db_->Exec("COMMIT").ok());
  auto heads = ReadTreeHeads(*db_);
  ASSERT_TRUE(heads.ok());
  ASSERT_EQ(heads->size(), 2u);
  EXPECT_EQ((*heads)[0].position, 1);
  EXPECT_EQ((*heads)[0].head.tree_size, 2u);
  EXPECT_EQ((*heads)[1].head.tree_size, 3u);
  EXPECT_EQ((*heads)[1].head.timestamp_ms, (*heads)[0].head.timestamp_ms);
}

TEST_F(LogFixture, RolledBackAppendsLeaveNothingBehind) {
  auto log = MakeLog();
  ASSERT_TRUE(log->Load().ok());
  ASSERT_TRUE(db_->Exec("BEGIN").ok());
  AuditEntry e = Accepted();
  ASSERT_TRUE(log->Append(e).ok());
  const AuditLog::Checkpoint saved = log->Save();
  ASSERT_TRUE(db_->Exec("SAVEPOINT job").ok());
  AuditEntry second = Read();
  second.subject = "nhs:9990000026";
  ASSERT_TRUE(log->Append(second).ok());
  ASSERT_TRUE(db_->Exec("ROLLBACK TO job").ok());
  ASSERT_TRUE(db_->Exec("RELEASE job").ok());
  log->Restore(saved);
  AuditEntry third = Permitted();
  ASSERT_TRUE(log->Append(third).ok());
  EXPECT_EQ(third.seq, 2);
  ASSERT_TRUE(db_->Exec("COMMIT").ok());
  EXPECT_EQ(db_->QueryInt("SELECT count(*) FROM subject_keys").value(), 1);
  const VerifyReport report = Verify();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.tree_size, 2);
}

// A batch of writer jobs, queued before the writer starts so that they run as one batch.
class WriterFixture : public LogFixture {
 protected:
  struct Queued {
    std::future<Status> done;
  };
  // Queues `job`, whose final Status the returned future holds.
  static Queued Submit(Writer& w, Job job) {
    auto promise = std::make_shared<std::promise<Status>>();
    Queued q{promise->get_future()};
    job.done = [promise](Status s) { promise->set_value(std::move(s)); };
    w.Submit(std::move(job));
    return q;
  }
  // A job that appends `e`, then returns `result`; `on_refused` (optional) appends `refusal`.
  Queued Submit(Writer& w, AuditEntry e, Status result, std::optional<AuditEntry> refusal,
                AuditLog& log) {
    Job job;
    job.run = [&log, e, result] {
      AuditEntry copy = e;  // a job may run twice: each run starts from its inputs
      if (!copy.action.empty()) {
        if (Status s = log.Append(copy); !s.ok()) return s;
      }
      return result;
    };
    if (refusal) {
      job.on_refused = [&log, refusal](const Status&) {
        AuditEntry copy = *refusal;
        return log.Append(copy);
      };
    }
    return Submit(w, std::move(job));
  }
  static Status Wait(Queued& q) {
    if (q.done.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
      ADD_FAILURE() << "the writer did not answer within 60 s";
      return Status::Internal("timed out");
    }
    return q.done.get();
  }
  void SetUp() override {
    LogFixture::SetUp();
    log_ = MakeLog();
    writer_ = std::make_unique<Writer>(db_.get(), log_.get(), /*max_batch=*/16);
    writer_->OnRollback([this] { ++rollbacks_; });
    refused_ = Read();
    refused_.action = "request_rejected";
  }
  void TearDown() override { writer_.reset(); }  // before the log and the database
  // The entries' actions, in order, then the whole log verified.
  std::vector<std::string> Actions() {
    std::vector<std::string> out;
    auto q = db_->PrepareOnce("SELECT action FROM audit ORDER BY seq");
    EXPECT_TRUE(q.ok());
    for (;;) {
      auto row = (*q)->Step();
      if (!row.ok() || !*row) break;
      out.push_back((*q)->Text(0));
    }
    const VerifyReport report = Verify();
    EXPECT_TRUE(report.ok) << report.problem;
    EXPECT_EQ(report.tree_size, static_cast<int64_t>(out.size()));
    return out;
  }

  std::unique_ptr<AuditLog> log_;
  std::unique_ptr<Writer> writer_;
  int rollbacks_ = 0;
  AuditEntry refused_;
};

TEST_F(WriterFixture, AJobThatFailsPartWayIsUndoneAndTheRestOfItsBatchCommits) {
  ASSERT_TRUE(log_->Load().ok());
  Writer& w = *writer_;
  Queued a = Submit(w, Accepted(), Status::Ok(), std::nullopt, *log_);
  Queued b = Submit(w, Permitted(), Status::Internal("fails after its first write"),
                    std::nullopt, *log_);
  Queued c = Submit(w, Read(), Status::Ok(), std::nullopt, *log_);
  Queued d = Submit(w, Permitted(), Status::Conflict("refused after its first write"), refused_,
                    *log_);
  w.Start();
  EXPECT_TRUE(Wait(a).ok());
  EXPECT_EQ(Wait(b).code(), ErrorCode::kInternal);
  EXPECT_TRUE(Wait(c).ok());
  EXPECT_EQ(Wait(d).code(), ErrorCode::kConflict);
  EXPECT_EQ(w.commits(), 1) << "one batch";
  w.Shutdown();
  EXPECT_EQ(w.restarts(), 1) << "the batch ran again with savepoints";
  EXPECT_GE(rollbacks_, 3) << "the whole transaction, then b's and d's savepoints";
  EXPECT_THAT(Actions(), ::testing::ElementsAre("record_accepted", "mailbox_read",
                                                "request_rejected"));
}

TEST_F(WriterFixture, ARefusalBeforeAnyWriteNeedsNoSavepoints) {
  ASSERT_TRUE(log_->Load().ok());
  Writer& w = *writer_;
  Queued a = Submit(w, Accepted(), Status::Ok(), std::nullopt, *log_);
  Queued b = Submit(w, AuditEntry{}, Status::Forbidden("refused by its checks"), refused_, *log_);
  Queued c = Submit(w, Permitted(), Status::Ok(), std::nullopt, *log_);
  w.Start();
  EXPECT_TRUE(Wait(a).ok());
  EXPECT_EQ(Wait(b).code(), ErrorCode::kForbidden);
  EXPECT_TRUE(Wait(c).ok());
  w.Shutdown();
  EXPECT_EQ(w.restarts(), 0);
  EXPECT_EQ(rollbacks_, 0);
  EXPECT_THAT(Actions(), ::testing::ElementsAre("record_accepted", "request_rejected",
                                                "delivery_permitted"));
}

// SQLite ends the whole transaction itself on some errors (a full disk, an I/O error). A job
// that fails so has changed no rows, but the jobs before it are gone: the batch must not go
// on outside a transaction, committing later jobs one statement at a time.
TEST_F(WriterFixture, AJobWhoseFailureEndedTheTransactionFailsTheBatch) {
  ASSERT_TRUE(log_->Load().ok());
  Writer& w = *writer_;
  Queued a = Submit(w, Accepted(), Status::Ok(), std::nullopt, *log_);
  Job ends;
  ends.run = [this] {
    (void)db_->Exec("ROLLBACK");  // as SQLite does after SQLITE_FULL
    return Status::Internal("the disk is full");
  };
  Queued b = Submit(w, std::move(ends));
  Queued c = Submit(w, Permitted(), Status::Ok(), std::nullopt, *log_);
  w.Start();
  EXPECT_EQ(Wait(a).code(), ErrorCode::kInternal);
  EXPECT_EQ(Wait(b).code(), ErrorCode::kInternal);
  EXPECT_EQ(Wait(c).code(), ErrorCode::kInternal);
  w.Shutdown();
  EXPECT_TRUE(Actions().empty()) << "nothing of the batch was committed";
}

// docs/audit-log.md, "Worked example": these bytes and hashes are pasted there.
TEST(AuditLogTest, WorkedExample) {
  const std::vector<AuditEntry> entries = {Accepted(), Permitted(), Read()};
  const std::vector<std::string> expected_details_hashes = {
      "f32b8befff586312b69375b5109743e81d9f025f41851f7d6fdf1f081ee4019f",
      "a0051d0b0b1ec490d30b034409f4e0953eeeab36b951e944685aaf2d9538d0be",
      "cb375a3313f564ac2681aa4e38f70a2103f809bb68077468f006d836ddcc16b5",
  };
  const std::vector<std::string> expected_hashes = {
      "1eedae84c68a795985a42d527e9f628599685eb56b4e50afbc9d22eda19ff975",
      "e737e86e0f506acac5d03d10b49ca7fdee6edac45aa607e3633f7d99b594da8b",
      "9baecc242fbb1c2ffce809ddce0921c7695ebdd71196470478063dbc841654c2",
  };
  std::string h(32, '\0');
  std::cout << "h_0 = " << Hex(h) << "\n";
  for (size_t i = 0; i < entries.size(); ++i) {
    AuditEntry e = entries[i];
    const std::string details = AuditDetailsBytes(e.subject, kSalts[i], "");
    e.details_hash = Hex(Sha256(details));
    const std::string bytes = AuditEntryBytes(e);
    h = Sha256(h, bytes);
    std::cout << "details_" << i + 1 << " = " << details << "\n";
    std::cout << "details_hash_" << i + 1 << " = " << e.details_hash << "\n";
    std::cout << "entry_" << i + 1 << " = " << bytes << "\n";
    std::cout << "h_" << i + 1 << " = " << Hex(h) << "\n";
    std::cout << "leaf_" << i + 1 << " = " << Hex(Sha256(std::string(1, '\0'), bytes)) << "\n";
    EXPECT_EQ(e.details_hash, expected_details_hashes[i]) << "entry " << i + 1;
    EXPECT_EQ(Hex(h), expected_hashes[i]) << "entry " << i + 1;
  }
}

}  // namespace
}  // namespace safegate::core
