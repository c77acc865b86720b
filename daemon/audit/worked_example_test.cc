// The worked example of docs/audit-merkle.md, byte for byte: if this test changes, the page
// must change with it. The three entries are those of docs/audit-log.md's worked example.
#include <gtest/gtest.h>

#include "daemon/audit/encoding.h"
#include "daemon/audit/merkle.h"
#include "daemon/audit/proof_bundle.h"
#include "daemon/audit/tree_head.h"

namespace safegate::audit {
namespace {

const char* const kEntries[3] = {
    R"({"action":"record_accepted","actor":"wyp","at":"2026-11-21T17:34:00.123Z","decision":"","detail":{"kind":"flag","recipients":["bradford-csc"],"source_version":1},"message_id":"","purpose":"child_protection","reasons":[],"record_id":"rec_8f14e45fceea167a5a36dedd4bea2543","seq":1,"subject":"nhs:9990000018"})",
    R"({"action":"delivery_permitted","actor":"wyp","at":"2026-11-21T17:34:00.123Z","decision":"permit","detail":{"deadline":"2026-11-22T17:34:00.123Z","recipient":"bradford-csc"},"message_id":"msg_c9f0f895fb98ab9159f51fd0297e236d","purpose":"child_protection","reasons":["placeholder policy: registered police, health and csc recipients are permitted"],"record_id":"rec_8f14e45fceea167a5a36dedd4bea2543","seq":2,"subject":"nhs:9990000018"})",
    R"({"action":"mailbox_read","actor":"bradford-csc","at":"2026-11-21T17:39:00.007Z","decision":"","detail":{"type":"record"},"message_id":"msg_c9f0f895fb98ab9159f51fd0297e236d","purpose":"child_protection","reasons":[],"record_id":"rec_8f14e45fceea167a5a36dedd4bea2543","seq":3,"subject":"nhs:9990000018"})",
};

constexpr const char* kL0 = "be70f279b6b59ba59009ff0591f1d4e9a2409bc13051c21367a0d1ce5243c9e9";
constexpr const char* kL1 = "125b5912aa990ea6f7b0776046a61978ac4ecd84c0395aa76f6948f0cb939448";
constexpr const char* kL2 = "469e69bf6943980c425df7f8e7fd83c02dbfd4b120a17a095a7030601db01c32";
constexpr const char* kN01 = "b10f458d555fdf686f1ad77c6a0bebed3bd96d76eab5d0650c5d20ac1d7db586";
constexpr const char* kRoot3 = "b05cb6120fecc8d47d9820a71f9c1cec128fadedf39bb5b8798443a101dace92";

std::vector<std::string> Hex(const std::vector<Hash>& hashes) {
  std::vector<std::string> out;
  for (const Hash& h : hashes) out.push_back(HashHex(h));
  return out;
}

TEST(WorkedExample, MatchesDocsAuditMerkle) {
  MemoryNodeStore store;
  auto tree = MerkleTree::Open(&store, 0);
  ASSERT_TRUE(tree.ok());
  for (const char* e : kEntries) ASSERT_TRUE(tree->AppendEntry(e).ok());

  EXPECT_EQ(HashHex(LeafHash(kEntries[0])), kL0);
  EXPECT_EQ(HashHex(LeafHash(kEntries[1])), kL1);
  EXPECT_EQ(HashHex(LeafHash(kEntries[2])), kL2);
  EXPECT_EQ(HashHex(*store.Get(1, 0)), kN01);
  EXPECT_EQ(HashHex(NodeHash(LeafHash(kEntries[0]), LeafHash(kEntries[1]))), kN01);
  EXPECT_EQ(HashHex(*RootAt(store, 1)), kL0);
  EXPECT_EQ(HashHex(*RootAt(store, 2)), kN01);
  EXPECT_EQ(HashHex(tree->Root()), kRoot3);
  EXPECT_EQ(HashHex(NodeHash(*store.Get(1, 0), LeafHash(kEntries[2]))), kRoot3);

  using V = std::vector<std::string>;
  EXPECT_EQ(Hex(*InclusionProof(store, 0, 3)), (V{kL1, kL2}));
  EXPECT_EQ(Hex(*InclusionProof(store, 1, 3)), (V{kL0, kL2}));
  EXPECT_EQ(Hex(*InclusionProof(store, 2, 3)), (V{kN01}));
  EXPECT_EQ(Hex(*ConsistencyProof(store, 1, 3)), (V{kL1, kL2}));
  EXPECT_EQ(Hex(*ConsistencyProof(store, 2, 3)), (V{kL2}));

  // The tree head, signed with RFC 8032's TEST 1 key (a published test key) at
  // 2026-11-21T17:39:00.107Z.
  auto key = SigningKey::FromSeed(
      *FromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
  ASSERT_TRUE(key.ok());
  const uint64_t ts = 1'795'282'740'107;
  EXPECT_EQ(ToHex(TreeHeadSignatureInput(3, ts, tree->Root())),
            "73616665676174652d7374682d76310a"
            "0000000000000003"
            "000001a1ff30a38b" +
                std::string(kRoot3));
  const SignedTreeHead head = SignTreeHead(**key, 3, tree->Root(), ts);
  const nlohmann::json sth = TreeHeadToJson(head, (*key)->public_key());
  EXPECT_EQ(sth["public_key"], "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
  EXPECT_EQ(
      sth["signature"],
      "zXefefEz0g+Q1WrZgeqThZrQlgqb6j3qulCe5fU8+BOtZRKur6sehURgjLIpUFfTjlW4ABd8Hr1vzcyuvmPSDQ==");

  auto bundle = MakeBundle(store, kEntries[1], 1, head, (*key)->public_key());
  ASSERT_TRUE(bundle.ok());
  const nlohmann::json b = BundleToJson(*bundle);
  EXPECT_EQ(b["leaf_hash"], kL1);
  EXPECT_EQ(b["path"], (nlohmann::json{kL0, kL2}));
  EXPECT_EQ(b["entry"].get<std::string>().substr(0, 24), "eyJhY3Rpb24iOiJkZWxpdmVy");
}

}  // namespace
}  // namespace safegate::audit
