// The verifiable audit log through the Gateway: subject references sealed per subject and
// found by their blind index, erasure that leaves every proof intact, the Merkle tree written
// with the entries, signed tree heads (when they are made, and after a crash), proofs and
// offline bundles checked by daemon/audit's verifier and by the independent Python verifier.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "daemon/audit/encoding.h"
#include "daemon/audit/merkle.h"
#include "daemon/audit/proof_bundle.h"
#include "daemon/audit/tree_head.h"
#include "daemon/core/audit_log.h"
#include "daemon/core/test_support.h"

namespace safegate {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace safegate::testing;
using nlohmann::json;

#ifdef SAFEGATE_PYTHON3
constexpr const char* kPython = SAFEGATE_PYTHON3;
constexpr const char* kVerifier = SAFEGATE_RFC9162_VERIFIER;
#else
constexpr const char* kPython = nullptr;
constexpr const char* kVerifier = nullptr;
#endif
#ifdef SAFEGATE_HAVE_OPENSSL_CLI
constexpr bool kHaveOpenssl = true;
#else
constexpr bool kHaveOpenssl = false;
#endif

const std::string kChild1 = std::string("nhs:") + kNhs1;
const std::string kChild2 = std::string("nhs:") + kNhs2;

PushRequest PushAbout(const std::string& agency, const std::string& id, const std::string& nhs,
                      std::vector<std::string> recipients) {
  PushRequest req = MakePush(agency, id, std::move(recipients));
  req.record.subject.nhs_number = nhs;
  req.record.subject.local_ids.clear();
  return req;
}

audit::Hash HashOf(const json& hex) {
  auto h = audit::FixedFromHex<audit::kHashSize>(hex.get<std::string>());
  EXPECT_TRUE(h.has_value()) << hex;
  return h.value_or(audit::Hash{});
}

std::vector<audit::Hash> PathOf(const json& path) {
  std::vector<audit::Hash> out;
  for (const json& p : path) out.push_back(HashOf(p));
  return out;
}

// Checks a tree-head object's signature; returns the head.
audit::SignedTreeHead CheckedHead(const json& object) {
  auto parsed = audit::TreeHeadFromJson(object);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  if (!parsed.ok()) return {};
  EXPECT_TRUE(audit::VerifyTreeHead(parsed->head, parsed->public_key).ok());
  return parsed->head;
}

class VerifiableAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A head at every commit, so that each test knows what the latest head covers.
    h.config()->audit.sth_max_entries = 1;
    ASSERT_TRUE(h.Open().ok());
  }
  GatewayHarness h;
};

TEST_F(VerifiableAuditTest, SubjectsAreSealedAndFoundThroughTheBlindIndex) {
  ASSERT_TRUE(h.Push("wyp", PushAbout("wyp", "OCC-1", kNhs1, {"bradford-csc"})).ok());  // 1-2
  ASSERT_TRUE(h.Push("wyp", PushAbout("wyp", "OCC-2", kNhs2, {"bradford-csc"})).ok());  // 3-4
  ASSERT_TRUE(h.Mailbox("bradford-csc").ok());                                          // 5-6

  auto page = h.Query("bradford-audit", Filter({{"subject", kChild1}, {"purpose", "dpo_review"}}));
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  std::vector<int64_t> seqs;
  for (const AuditEntry& e : page->entries) {
    seqs.push_back(e.seq);
    EXPECT_EQ(e.subject, kChild1);
    EXPECT_FALSE(e.erased);
    EXPECT_EQ(e.details_hash.size(), 64u);
  }
  EXPECT_EQ(seqs, (std::vector<int64_t>{1, 2, 5}));
  const json shown = page->ToJson();
  EXPECT_EQ(shown["entries"][0]["subject"], kChild1);
  EXPECT_EQ(shown["entries"][0]["erased"], false);

  // The references are nowhere in the log's own tables: not in the hashed bytes, not in
  // the sealed details, not as an index column.
  for (const char* nhs : {kNhs1, kNhs2}) {
    const std::string like = std::string("'%") + nhs + "%'";
    EXPECT_EQ(h.Count("audit", "CAST(entry AS TEXT) LIKE " + like + " OR CAST(details AS TEXT) "
                               "LIKE " + like + " OR CAST(actor AS TEXT) LIKE " + like),
              0)
        << nhs;
  }
  EXPECT_EQ(h.Count("subject_keys"), 2);
  EXPECT_EQ(h.Count("audit", "key_id IS NULL"), 0) << "every entry so far is about a child";
}

TEST_F(VerifiableAuditTest, ErasureDestroysTheDetailsAndKeepsEveryProof) {
  ASSERT_TRUE(h.Push("wyp", PushAbout("wyp", "OCC-1", kNhs1, {"bradford-csc"})).ok());  // 1-2
  ASSERT_TRUE(h.Push("wyp", PushAbout("wyp", "OCC-2", kNhs2, {"bradford-csc"})).ok());  // 3-4
  ASSERT_TRUE(h.Mailbox("bradford-csc").ok());                                          // 5-6
  auto before = h.TreeHead();                                                           // 7
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  const audit::SignedTreeHead head_before = CheckedHead(*before);
  EXPECT_EQ(head_before.tree_size, 6u);

  // Only an audit agency erases, with a reason code, a reference, and only once.
  EXPECT_EQ(h.Erase(kChild1, "retention_expired", "bradford-csc").status().code(),
            ErrorCode::kForbidden);
  auto bad = h.Erase("Alex Example", "Retention ended for this child");
  ASSERT_EQ(bad.status().code(), ErrorCode::kInvalidInput);
  ASSERT_EQ(bad.status().problems().size(), 2u);
  EXPECT_EQ(bad.status().problems()[0].where, "subject");
  EXPECT_EQ(bad.status().problems()[1].where, "reason");
  EXPECT_EQ(h.Erase("nhs:9990000034", "retention_expired").status().code(),
            ErrorCode::kNotFound);

  const int64_t entries_before = h.Count("audit");
  auto erased = h.Erase(kChild1, "retention_expired");
  ASSERT_TRUE(erased.ok()) << erased.status().ToString();
  EXPECT_EQ(erased->entries, 3) << "entries 1, 2 and 5";
  EXPECT_EQ(erased->seq, entries_before + 1);
  EXPECT_EQ(h.Erase(kChild1, "retention_expired").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(h.Count("subject_keys", "sealed_key IS NULL AND blind IS NULL AND nonce IS NULL"), 1);

  // The entries are still there, their details are gone for good.
  const std::vector<AuditEntry> all = AllEntries(h, Filter({{"purpose", "dpo_review"}}));
  ASSERT_GE(all.size(), 8u);
  for (int64_t seq : {1, 2, 5}) {
    const AuditEntry& e = all[static_cast<size_t>(seq - 1)];
    EXPECT_TRUE(e.erased) << seq;
    EXPECT_EQ(e.subject, "") << seq;
    EXPECT_EQ(e.details_hash.size(), 64u) << "the commitment stays";
  }
  for (int64_t seq : {3, 4, 6}) {
    EXPECT_EQ(all[static_cast<size_t>(seq - 1)].subject, kChild2) << seq;
  }
  const AuditEntry& record = all[static_cast<size_t>(erased->seq - 1)];
  EXPECT_EQ(record.action, "subject_erased");
  EXPECT_EQ(record.actor, "bradford-audit");
  EXPECT_EQ(record.reasons, (std::vector<std::string>{"retention_expired"}));
  EXPECT_EQ(record.detail["entries"], 3);
  EXPECT_EQ(record.subject, "") << "the erasure names no subject";
  AuditPage one;
  one.entries = {all[0]};
  EXPECT_EQ(one.ToJson()["entries"][0]["subject"], nullptr);
  EXPECT_EQ(one.ToJson()["entries"][0]["erased"], true);

  // The subject can no longer be linked to them.
  auto by_subject = h.Query("bradford-audit", Filter({{"subject", kChild1}}));
  ASSERT_TRUE(by_subject.ok());
  EXPECT_TRUE(by_subject->entries.empty());

  // The chain, the tree and every head still verify, online and offline.
  auto report = h.Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_GE(report->heads_checked, 2);
  auto offline = VerifyAuditChain(h.data_dir());
  ASSERT_TRUE(offline.ok());
  EXPECT_TRUE(offline->ok) << offline->problem;

  // The later head extends the one signed before the erasure, and an erased entry is still
  // provably in it.
  auto after = h.TreeHead();
  ASSERT_TRUE(after.ok());
  const audit::SignedTreeHead head_after = CheckedHead(*after);
  auto consistency = h.Consistency(static_cast<int64_t>(head_before.tree_size),
                                   static_cast<int64_t>(head_after.tree_size));
  ASSERT_TRUE(consistency.ok()) << consistency.status().ToString();
  EXPECT_TRUE(audit::VerifyConsistency(head_before.tree_size, head_after.tree_size,
                                       head_before.root_hash, head_after.root_hash,
                                       PathOf((*consistency)["path"]))
                  .ok());
  auto inclusion = h.Inclusion(1, static_cast<int64_t>(head_after.tree_size));
  ASSERT_TRUE(inclusion.ok());
  const std::string entry = *audit::FromBase64((*inclusion)["entry"].get<std::string>());
  EXPECT_TRUE(audit::VerifyInclusion(audit::LeafHash(entry), 0, head_after.tree_size,
                                     PathOf((*inclusion)["path"]), head_after.root_hash)
                  .ok());
}

TEST_F(VerifiableAuditTest, TreeHeadsAndProofsAsTheApiShowsThem) {
  EXPECT_EQ(h.TreeHead().status().code(), ErrorCode::kNotFound) << "nothing signed yet";
  ASSERT_TRUE(h.Push("wyp", PushAbout("wyp", "OCC-1", kNhs1, {"bradford-csc", "bthft"})).ok());
  // 1: the refused tree-head read, 2-4: the push
  auto first = h.TreeHead();  // 5
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ((*first)["tree_size"], 4);
  for (const char* key : {"tree_size", "root_hash", "timestamp", "signature", "public_key"}) {
    EXPECT_TRUE(first->contains(key)) << key;
  }
  EXPECT_EQ(first->size(), 5u);
  const audit::SignedTreeHead head1 = CheckedHead(*first);
  EXPECT_EQ(head1.timestamp_ms, static_cast<uint64_t>(kT0));

  ASSERT_TRUE(h.Mailbox("bradford-csc").ok());
  const int64_t n = h.Count("audit");  // the head covers every committed entry
  auto second = h.TreeHead();
  ASSERT_TRUE(second.ok());
  const audit::SignedTreeHead head2 = CheckedHead(*second);
  EXPECT_EQ(head2.tree_size, static_cast<uint64_t>(n));
  EXPECT_EQ((*second)["public_key"], (*first)["public_key"]);

  // Inclusion: tree_size 0 means the latest signed head, which by now also covers the
  // audit_queried entry of the tree-head read (a head is signed at every commit here).
  auto latest = h.Inclusion(3, 0);
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  EXPECT_EQ((*latest)["tree_size"], n + 1);
  auto inclusion = h.Inclusion(3, n);
  ASSERT_TRUE(inclusion.ok()) << inclusion.status().ToString();
  EXPECT_EQ((*inclusion)["leaf_index"], 2);
  EXPECT_EQ((*inclusion)["tree_size"], n);
  EXPECT_EQ(inclusion->size(), 5u);
  const std::string entry = *audit::FromBase64((*inclusion)["entry"].get<std::string>());
  auto parsed = core::ParseAuditEntry(entry);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->seq, 3);
  EXPECT_EQ((*inclusion)["leaf_hash"], audit::HashHex(audit::LeafHash(entry)));
  EXPECT_TRUE(audit::VerifyInclusion(audit::LeafHash(entry), 2, head2.tree_size,
                                     PathOf((*inclusion)["path"]), head2.root_hash)
                  .ok());

  auto consistency = h.Consistency(4, n);
  ASSERT_TRUE(consistency.ok());
  EXPECT_EQ(*consistency, (json{{"first", 4}, {"second", n}, {"path", (*consistency)["path"]}}));
  EXPECT_TRUE(audit::VerifyConsistency(4, head2.tree_size, head1.root_hash, head2.root_hash,
                                       PathOf((*consistency)["path"]))
                  .ok());

  // Bad requests name the parameter; other roles are refused; every refusal is audited.
  auto where = [](const Status& s) {
    return s.problems().empty() ? std::string() : s.problems()[0].where;
  };
  EXPECT_EQ(where(h.Inclusion(0, 4).status()), "seq");
  EXPECT_EQ(where(h.Inclusion(5, 4).status()), "seq");
  EXPECT_EQ(where(h.Inclusion(1, 10'000).status()), "tree_size");
  EXPECT_EQ(where(h.Consistency(0, 4).status()), "first");
  EXPECT_EQ(where(h.Consistency(4, 3).status()), "first");
  EXPECT_EQ(where(h.Consistency(1, 10'000).status()), "second");
  EXPECT_EQ(h.TreeHead("wyp").status().code(), ErrorCode::kForbidden);
  EXPECT_EQ(h.Inclusion(1, 1, "bradford-csc").status().code(), ErrorCode::kForbidden);
  EXPECT_EQ(h.Consistency(1, 2, "bthft").status().code(), ErrorCode::kForbidden);

  // Each read is an audit_queried entry naming what was read.
  std::vector<std::string> what;
  for (const AuditEntry& e : AllEntries(h, Filter({{"action", "audit_queried"}}))) {
    if (e.detail.contains("what")) what.push_back(e.detail["what"].get<std::string>());
  }
  EXPECT_EQ(what, (std::vector<std::string>{"tree_head", "tree_head", "inclusion_proof",
                                             "inclusion_proof", "consistency_proof"}));
  std::vector<std::string> refused_ops;
  for (const AuditEntry& e : AllEntries(h, Filter({{"action", "request_rejected"}}))) {
    refused_ops.push_back(e.detail["operation"].get<std::string>());
  }
  EXPECT_EQ(refused_ops.front(), "tree_head");
  EXPECT_EQ(refused_ops.size(), 10u);
}

TEST_F(VerifiableAuditTest, OfflineBundleVerifiesHereAndWithTheIndependentVerifier) {
  ASSERT_TRUE(h.Push("wyp", PushAbout("wyp", "OCC-1", kNhs1, {"bradford-csc"})).ok());
  ASSERT_TRUE(h.Mailbox("bradford-csc").ok());
  auto head = h.TreeHead();
  ASSERT_TRUE(head.ok());
  const std::string public_key = (*head)["public_key"].get<std::string>();
  h.Close();  // the last head covers everything

  EXPECT_EQ(MakeAuditProofBundle(h.data_dir(), 99).status().code(), ErrorCode::kNotFound);
  auto bundle = MakeAuditProofBundle(h.data_dir(), 2);
  ASSERT_TRUE(bundle.ok()) << bundle.status().ToString();
  EXPECT_EQ((*bundle)["format"], "safegate-audit-inclusion-v1");
  EXPECT_EQ((*bundle)["leaf_index"], 1);
  const auto pk = audit::ParsePublicKey(public_key);
  ASSERT_TRUE(pk.has_value());
  EXPECT_TRUE(audit::VerifyBundleJson(bundle->dump(), &*pk).ok());
  json tampered = *bundle;
  tampered["leaf_index"] = 0;
  EXPECT_FALSE(audit::VerifyBundleJson(tampered.dump(), &*pk).ok());

  if (kPython == nullptr) GTEST_SKIP() << "python3 was not found when configuring";
  const std::string file = h.data_dir() + "/bundle.json";
  std::ofstream(file) << bundle->dump(2);
  const std::string command = std::string(kPython) + " " + kVerifier + " bundle " + file +
                              " --public-key " + public_key +
                              (kHaveOpenssl ? "" : " --no-signatures") + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
  const int rc = ::pclose(pipe);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, StartsWith("OK: the entry is in the tree the gateway signed"));
}

TEST_F(VerifiableAuditTest, SigningKeyFileIsPrivateAndPinned) {
  const std::string key = h.data_dir() + "/signing.key";
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  h.Close();

  ASSERT_EQ(::chmod(key.c_str(), 0640), 0);
  Status s = h.Open();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.detail(), HasSubstr("chmod 600"));
  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
  ASSERT_TRUE(h.Open().ok());
  h.Close();

  // Another key is refused: its heads could not be tied to the earlier ones.
  std::filesystem::rename(key, key + ".orig");
  ASSERT_TRUE(audit::SigningKey::LoadOrCreate(key).ok());
  s = h.Open();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.detail(), HasSubstr("not the key this audit log's tree heads were signed with"));
  std::filesystem::rename(key + ".orig", key);
  EXPECT_TRUE(h.Open().ok());
}

TEST_F(VerifiableAuditTest, VerifyReportCarriesTheHeads) {
  ASSERT_TRUE(h.Push("wyp", PushAbout("wyp", "OCC-1", kNhs1, {"bradford-csc"})).ok());
  auto report = h.Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->tree_size, 2);
  EXPECT_EQ(report->heads_checked, 1);
  const json j = report->ToJson();
  EXPECT_EQ(j["tree_head"]["tree_size"], 2);
  EXPECT_EQ(j["tree_head"]["root_hash"], j["root_hash"]);
  EXPECT_EQ(j["public_key"], j["tree_head"]["public_key"]);
  EXPECT_TRUE(j["head_faults"].empty());
}

// With heads due only after an hour or a million entries, a process that dies right after
// committing entries leaves them without a head. Nothing is lost: the entries are durable,
// and the next start signs a head over them before taking any work.
TEST(VerifiableAuditCrashTest, EntriesCommittedBeforeACrashGetTheirHeadAtTheNextStart) {
  GatewayHarness h;
  h.config()->audit.sth_interval = std::chrono::hours(1);
  h.config()->audit.sth_max_entries = 1'000'000;
  EXPECT_EXIT(
      {
        const bool opened = h.Open().ok();
        const bool pushed =
            opened && h.Push("wyp", PushAbout("wyp", "OCC-1", kNhs1, {"bradford-csc"})).ok() &&
            h.Push("wyp", PushAbout("wyp", "OCC-2", kNhs2, {"bradford-csc"})).ok();
        const bool no_head = h.Count("tree_heads") == 0;
        std::_Exit(pushed && no_head ? 0 : 1);  // dies without shutting down
      },
      ::testing::ExitedWithCode(0), "");
  EXPECT_EQ(h.Count("audit"), 4);
  EXPECT_EQ(h.Count("merkle_nodes"), 7) << "every leaf committed with its entry";
  EXPECT_EQ(h.Count("tree_heads"), 0);

  ASSERT_TRUE(h.Open().ok());
  EXPECT_EQ(h.Count("tree_heads"), 1);
  auto head = h.TreeHead();
  ASSERT_TRUE(head.ok());
  EXPECT_EQ((*head)["tree_size"], 4);
  auto report = h.Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
  h.Close();
  EXPECT_EQ(h.Count("tree_heads"), 2) << "shutdown signs over the reads since";
}

// While entries wait and nothing else happens, the writer wakes to sign their head once the
// interval has passed.
TEST(VerifiableAuditIntervalTest, AnIdleLogGetsItsHeadAfterTheInterval) {
  GatewayHarness h;
  h.config()->audit.sth_interval = std::chrono::milliseconds(20);
  h.config()->audit.sth_max_entries = 1'000'000;
  ASSERT_TRUE(h.Open().ok());
  ASSERT_TRUE(h.Push("wyp", PushAbout("wyp", "OCC-1", kNhs1, {"bradford-csc"})).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (h.Count("tree_heads") == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(h.Count("tree_heads"), 1);
  auto head = h.TreeHead();
  ASSERT_TRUE(head.ok());
  EXPECT_EQ((*head)["tree_size"], 2);
}

}  // namespace
}  // namespace safegate
