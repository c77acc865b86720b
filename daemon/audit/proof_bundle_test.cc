#include "daemon/audit/proof_bundle.h"

#include <gtest/gtest.h>

#include "daemon/audit/encoding.h"

namespace safegate::audit {
namespace {

using json = nlohmann::json;

std::vector<std::string> Wheres(const Status& s) {
  std::vector<std::string> out;
  for (const Problem& p : s.problems()) out.push_back(p.where);
  return out;
}

class ProofBundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = SigningKey::FromSeed(std::string(32, '\x2a'));
    ASSERT_TRUE(key.ok());
    key_ = std::move(key).value();
    auto tree = MerkleTree::Open(&store_, 0);
    ASSERT_TRUE(tree.ok());
    for (int i = 0; i < 13; ++i) {
      entries_.push_back("{\"action\":\"flags_queried\",\"seq\":" + std::to_string(i + 1) + "}");
      ASSERT_TRUE(tree->AppendEntry(entries_.back()).ok());
    }
    head_ = SignTreeHead(*key_, 13, tree->Root(), 1'700'000'000'000);
  }
  ProofBundle Bundle(uint64_t i) {
    auto b = MakeBundle(store_, entries_[i], i, head_, key_->public_key());
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return std::move(b).value();
  }
  // Verifies and returns the problems' JSON pointers (empty when the bundle verifies).
  std::vector<std::string> Check(const ProofBundle& b, bool with_trusted = true) {
    const PublicKey trusted = key_->public_key();
    const Status s = VerifyBundle(b, with_trusted ? &trusted : nullptr);
    if (!s.ok()) {
      EXPECT_EQ(s.code(), ErrorCode::kInvalidInput);
    }
    return Wheres(s);
  }

  MemoryNodeStore store_;
  std::unique_ptr<SigningKey> key_;
  std::vector<std::string> entries_;
  SignedTreeHead head_;
};

TEST_F(ProofBundleTest, EveryLeafsBundleVerifiesAndSurvivesJson) {
  for (uint64_t i = 0; i < entries_.size(); ++i) {
    const ProofBundle b = Bundle(i);
    EXPECT_TRUE(Check(b).empty()) << "leaf " << i;
    const std::string text = BundleToJson(b).dump();
    const PublicKey trusted = key_->public_key();
    EXPECT_TRUE(VerifyBundleJson(text, &trusted).ok()) << text;
    auto back = BundleFromJson(json::parse(text));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->entry, entries_[i]);
    EXPECT_EQ(back->path, b.path);
    EXPECT_EQ(back->tree_head, head_);
  }
}

TEST_F(ProofBundleTest, JsonHasTheDocumentedFields) {
  const json j = BundleToJson(Bundle(4));
  EXPECT_EQ(j["format"], "safegate-audit-inclusion-v1");
  EXPECT_EQ(j["entry"], ToBase64(entries_[4]));
  EXPECT_EQ(j["leaf_index"], 4);
  EXPECT_EQ(j["tree_size"], 13);
  EXPECT_EQ(j["leaf_hash"], HashHex(LeafHash(entries_[4])));
  EXPECT_EQ(j["path"].size(), 4u);
  EXPECT_EQ(j["tree_head"], TreeHeadToJson(head_, key_->public_key()));
  // The bundle is the API's inclusion proof plus the API's tree head.
  json inclusion = j;
  inclusion.erase("format");
  inclusion.erase("tree_head");
  EXPECT_EQ(inclusion, InclusionProofToJson(4, 13, entries_[4], Bundle(4).path));
}

TEST_F(ProofBundleTest, EachTamperingIsNamed) {
  const ProofBundle good = Bundle(6);
  ProofBundle b = good;
  b.entry += " ";
  EXPECT_EQ(Check(b), (std::vector<std::string>{"/leaf_hash", "/path"}));
  b.leaf_hash.reset();  // a bundle without leaf_hash: the path still catches it
  EXPECT_EQ(Check(b), (std::vector<std::string>{"/path"}));

  for (size_t i = 0; i < good.path.size(); ++i) {
    b = good;
    b.path[i][i] ^= 0x04;
    EXPECT_EQ(Check(b), (std::vector<std::string>{"/path"})) << "path element " << i;
  }
  b = good;
  b.path.pop_back();
  EXPECT_EQ(Check(b), (std::vector<std::string>{"/path"}));
  b = good;
  b.leaf_index = 7;
  EXPECT_EQ(Check(b), (std::vector<std::string>{"/path"}));
  b = good;
  b.leaf_index = 13;
  EXPECT_EQ(Check(b), (std::vector<std::string>{"/leaf_index"}));

  b = good;
  b.tree_head.root_hash[5] ^= 1;  // a different root: neither signature nor path agree
  EXPECT_EQ(Check(b), (std::vector<std::string>{"/tree_head/signature", "/path"}));
  b = good;
  b.tree_head.signature[63] ^= 1;
  EXPECT_EQ(Check(b), (std::vector<std::string>{"/tree_head/signature"}));
  b = good;
  b.tree_head.timestamp_ms += 1;
  EXPECT_EQ(Check(b), (std::vector<std::string>{"/tree_head/signature"}));
  b = good;
  b.tree_size = 12;
  EXPECT_EQ(Check(b), (std::vector<std::string>{"/tree_size"}));
  b = good;
  b.tree_head.tree_size = 12;
  // Leaf 6's path has the same shape in trees of 12 and 13 leaves, so the path alone cannot
  // tell; the signature over (size, root) is what pins the size.
  EXPECT_EQ(Check(b), (std::vector<std::string>{"/tree_head/signature", "/tree_size"}));

  // Someone re-signs a forged head with their own key and ships their key in the bundle:
  // self-consistent, so only the trusted key catches it.
  auto mallory = SigningKey::FromSeed(std::string(32, '\x66'));
  ASSERT_TRUE(mallory.ok());
  b = good;
  b.tree_head = SignTreeHead(**mallory, good.tree_head.tree_size, good.tree_head.root_hash,
                             good.tree_head.timestamp_ms);
  b.public_key = (*mallory)->public_key();
  EXPECT_EQ(Check(b), (std::vector<std::string>{"/tree_head/public_key"}));
  EXPECT_TRUE(Check(b, /*with_trusted=*/false).empty());
  // Swapping only the key breaks the signature.
  b = good;
  b.public_key = (*mallory)->public_key();
  EXPECT_EQ(Check(b, false), (std::vector<std::string>{"/tree_head/signature"}));
}

TEST_F(ProofBundleTest, DetailSaysWhatFailed) {
  ProofBundle b = Bundle(2);
  b.path[0][0] ^= 1;
  const Status s = VerifyBundle(b, nullptr);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidInput);
  EXPECT_NE(s.detail().find("the proof bundle does not verify: /path the path leads from leaf 2"),
            std::string::npos)
      << s.detail();
}

TEST_F(ProofBundleTest, MalformedBundlesListEveryProblem) {
  json j = BundleToJson(Bundle(1));
  j["format"] = "something-else";
  j["entry"] = "***";
  j["leaf_index"] = -1;
  j["path"][1] = "XYZ";
  j["tree_head"].erase("signature");
  j["surprise"] = 1;
  auto r = BundleFromJson(j);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidInput);
  EXPECT_EQ(Wheres(r.status()),
            (std::vector<std::string>{"/surprise", "/format", "/entry", "/leaf_index", "/path/1",
                                      "/tree_head/signature"}));

  EXPECT_EQ(VerifyBundleJson("{not json", nullptr).code(), ErrorCode::kInvalidInput);
  EXPECT_EQ(Wheres(VerifyBundleJson("[]", nullptr)), (std::vector<std::string>{"/"}));
  // leaf_hash is optional.
  j = BundleToJson(Bundle(1));
  j.erase("leaf_hash");
  EXPECT_TRUE(VerifyBundleJson(j.dump(), nullptr).ok());
}

TEST_F(ProofBundleTest, MakeBundleRefusesBytesThatAreNotTheLeaf) {
  auto b = MakeBundle(store_, "not the entry", 3, head_, key_->public_key());
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), ErrorCode::kInternal);
  EXPECT_NE(b.status().detail().find("the tree holds"), std::string::npos);
  EXPECT_EQ(MakeBundle(store_, entries_[3], 13, head_, key_->public_key()).status().code(),
            ErrorCode::kBadRequest);
  // A head whose root the store cannot reproduce (signed over something else).
  const SignedTreeHead wrong = SignTreeHead(*key_, 13, LeafHash("x"), 1);
  EXPECT_EQ(MakeBundle(store_, entries_[3], 3, wrong, key_->public_key()).status().code(),
            ErrorCode::kInternal);
}

TEST(ConsistencyProofJson, RoundTripsAndNamesProblems) {
  const std::vector<Hash> path = {LeafHash("a"), LeafHash("b")};
  const json j = ConsistencyProofToJson(3, 7, path);
  EXPECT_EQ(j, (json{{"first", 3},
                     {"second", 7},
                     {"path", {HashHex(LeafHash("a")), HashHex(LeafHash("b"))}}}));
  auto back = ConsistencyProofFromJson(j);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->first, 3u);
  EXPECT_EQ(back->second, 7u);
  EXPECT_EQ(back->path, path);
  auto bad = ConsistencyProofFromJson(json{{"first", "3"}, {"path", json::array({1})}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(Wheres(bad.status()), (std::vector<std::string>{"/first", "/second", "/path/0"}));
}

}  // namespace
}  // namespace safegate::audit
