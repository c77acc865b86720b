// Cross-checks this library against tests/rfc9162/verify.py, a verifier written separately
// from the text of RFC 9162 in Python (standard library; Ed25519 through the openssl CLI).
// The library makes proofs for many (m, n) and tampered copies of them; the Python verifier
// must accept exactly the untampered ones.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "daemon/audit/encoding.h"
#include "daemon/audit/merkle.h"
#include "daemon/audit/proof_bundle.h"
#include "daemon/audit/tree_head.h"

namespace safegate::audit {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

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

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

json PathJson(const std::vector<Hash>& path) {
  json out = json::array();
  for (const Hash& h : path) out.push_back(HashHex(h));
  return out;
}

class Rfc9162PythonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (kPython == nullptr) GTEST_SKIP() << "python3 was not found when configuring";
    std::string tmpl = (fs::temp_directory_path() / "safegate-rfc9162-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  void Add(json c, bool expect_ok) {
    const std::string id = std::to_string(cases_.size());
    c["id"] = id;
    expected_[id] = expect_ok;
    cases_.push_back(std::move(c));
  }

  // Runs verify.py over every case added and checks each verdict.
  void RunVerifier(const std::string& extra_args = "") {
    const std::string in = dir_ + "/cases.json";
    const std::string out = dir_ + "/verdicts.jsonl";
    std::ofstream(in) << json{{"cases", cases_}}.dump();
    const std::string cmd = Quote(kPython) + " " + Quote(kVerifier) + " " + extra_args + " check " +
                            Quote(in) + " > " + Quote(out);
    const int rc = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(rc)) << cmd;
    // Exit 1 means "some case failed", which the tampered cases make certain.
    ASSERT_EQ(WEXITSTATUS(rc), 1) << cmd;
    std::ifstream verdicts(out);
    std::string line;
    size_t seen = 0;
    size_t accepted = 0;
    while (std::getline(verdicts, line)) {
      const json v = json::parse(line);
      const std::string id = v["id"].get<std::string>();
      ASSERT_TRUE(expected_.contains(id)) << line;
      const bool ok = v["ok"].get<bool>();
      EXPECT_EQ(ok, expected_[id]) << "case " << cases_[std::stoul(id)].dump() << " -> " << line;
      ++seen;
      accepted += ok ? 1 : 0;
    }
    EXPECT_EQ(seen, cases_.size());
    size_t want_accepted = 0;
    for (const auto& [id, ok] : expected_) want_accepted += ok ? 1 : 0;
    EXPECT_EQ(accepted, want_accepted);
    std::cout << "verify.py checked " << seen << " cases, accepted " << accepted << "\n";
  }

  std::string dir_;
  std::vector<json> cases_;
  std::map<std::string, bool> expected_;
};

TEST_F(Rfc9162PythonTest, AcceptsEveryProofForAllSizesUpTo64AndRejectsTamperedOnes) {
  constexpr uint64_t kMax = 64;
  MemoryNodeStore store;
  auto tree = MerkleTree::Open(&store, 0);
  ASSERT_TRUE(tree.ok());
  std::vector<std::string> entries;
  std::vector<Hash> roots = {EmptyRoot()};
  for (uint64_t i = 0; i < kMax; ++i) {
    // Binary bytes too: the entry is opaque to the tree.
    entries.push_back(std::string("entry\0\xff", 7) + std::to_string(i * 7919));
    ASSERT_TRUE(tree->AppendEntry(entries.back()).ok());
    roots.push_back(tree->Root());
  }
  for (uint64_t n = 1; n <= kMax; ++n) {
    for (uint64_t m = 0; m < n; ++m) {
      const std::vector<Hash> path = *InclusionProof(store, m, n);
      json c = {{"type", "inclusion"},    {"leaf_index", m},
                {"tree_size", n},         {"entry", ToBase64(entries[m])},
                {"path", PathJson(path)}, {"root_hash", HashHex(roots[n])}};
      Add(c, true);
      if (!path.empty()) {
        std::vector<Hash> bad = path;
        bad[(m * 31 + n) % bad.size()][(m + n) % kHashSize] ^= 0x20;
        json t = c;
        t["path"] = PathJson(bad);
        Add(t, false);
        t = c;
        t["path"].erase(t["path"].size() - 1);
        Add(t, false);
      }
      json t = c;
      t["entry"] = ToBase64(entries[m] + "!");
      Add(t, false);
      t = c;
      t["root_hash"] = HashHex(roots[n - 1]);
      Add(t, false);
      if (n > 1) {
        t = c;
        t["leaf_index"] = (m + 1) % n;
        Add(t, false);
      }
    }
    for (uint64_t m = 1; m <= n; ++m) {
      const std::vector<Hash> proof = *ConsistencyProof(store, m, n);
      json c = {{"type", "consistency"},
                {"first", m},
                {"second", n},
                {"first_root", HashHex(roots[m])},
                {"second_root", HashHex(roots[n])},
                {"path", PathJson(proof)}};
      Add(c, true);
      if (!proof.empty()) {
        std::vector<Hash> bad = proof;
        bad[(m * 17 + n) % bad.size()][m % kHashSize] ^= 0x01;
        json t = c;
        t["path"] = PathJson(bad);
        Add(t, false);
        t = c;
        t["path"].erase(0);
        Add(t, false);
      }
      json t = c;
      t["first_root"] = HashHex(roots[m - 1]);
      Add(t, false);
      t = c;
      t["second_root"] = HashHex(roots[n - 1]);
      Add(t, false);
    }
  }
  RunVerifier("--no-signatures");
}

TEST_F(Rfc9162PythonTest, VerifiesSignedTreeHeadsAndBundlesWithOpenssl) {
  if (!kHaveOpenssl) GTEST_SKIP() << "no openssl command line";
  auto key = SigningKey::FromSeed(std::string(32, '\x11'));
  ASSERT_TRUE(key.ok());
  auto other = SigningKey::FromSeed(std::string(32, '\x22'));
  ASSERT_TRUE(other.ok());
  MemoryNodeStore store;
  auto tree = MerkleTree::Open(&store, 0);
  ASSERT_TRUE(tree.ok());
  std::vector<std::string> entries;
  for (int i = 0; i < 11; ++i) {
    entries.push_back("{\"action\":\"record_read\",\"seq\":" + std::to_string(i + 1) + "}");
    ASSERT_TRUE(tree->AppendEntry(entries.back()).ok());
  }
  const SignedTreeHead head = SignTreeHead(**key, 11, tree->Root(), 1'700'000'000'123);
  const json head_json = TreeHeadToJson(head, (*key)->public_key());
  Add({{"type", "tree_head"}, {"tree_head", head_json}}, true);
  for (const char* field : {"tree_size", "timestamp"}) {
    json t = head_json;
    t[field] = t[field].get<uint64_t>() + 1;
    Add({{"type", "tree_head"}, {"tree_head", t}}, false);
  }
  {
    json t = head_json;
    t["public_key"] = (*other)->PublicKeyBase64();
    Add({{"type", "tree_head"}, {"tree_head", t}}, false);
  }
  for (uint64_t i : {0, 5, 10}) {
    auto bundle = MakeBundle(store, entries[i], i, head, (*key)->public_key());
    ASSERT_TRUE(bundle.ok());
    const json b = BundleToJson(*bundle);
    Add({{"type", "bundle"}, {"bundle", b}, {"public_key", (*key)->PublicKeyBase64()}}, true);
    Add({{"type", "bundle"}, {"bundle", b}, {"public_key", (*other)->PublicKeyBase64()}}, false);
    json t = b;
    t["tree_head"]["root_hash"] = HashHex(LeafHash("forged"));
    Add({{"type", "bundle"}, {"bundle", t}}, false);
    t = b;
    auto sig = FromBase64(t["tree_head"]["signature"].get<std::string>());
    (*sig)[0] = static_cast<char>((*sig)[0] ^ 1);
    t["tree_head"]["signature"] = ToBase64(*sig);
    Add({{"type", "bundle"}, {"bundle", t}}, false);
    t = b;
    t["entry"] = ToBase64(entries[i] + " ");
    t.erase("leaf_hash");
    Add({{"type", "bundle"}, {"bundle", t}}, false);
  }
  // A forger's own key and signature over a forged root: accepted only without a trusted key,
  // which is why a verifier must pin the gateway's key.
  const SignedTreeHead forged = SignTreeHead(**other, 11, tree->Root(), 1);
  auto forged_bundle = MakeBundle(store, entries[3], 3, forged, (*other)->public_key());
  ASSERT_TRUE(forged_bundle.ok());
  Add({{"type", "bundle"}, {"bundle", BundleToJson(*forged_bundle)}}, true);
  Add({{"type", "bundle"},
       {"bundle", BundleToJson(*forged_bundle)},
       {"public_key", (*key)->PublicKeyBase64()}},
      false);
  RunVerifier();
}

}  // namespace
}  // namespace safegate::audit
