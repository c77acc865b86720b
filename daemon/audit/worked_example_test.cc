// The worked example of docs/audit-merkle.md, byte for byte: if this test changes, the page
// must change with it. The three entries are those of docs/audit-log.md's worked example
// (entry bytes version 2; daemon/core's AuditLogTest.WorkedExample makes the same bytes).
#include <gtest/gtest.h>

#include "daemon/audit/encoding.h"
#include "daemon/audit/merkle.h"
#include "daemon/audit/proof_bundle.h"
#include "daemon/audit/tree_head.h"

namespace safegate::audit {
namespace {

const char* const kEntries[3] = {
    R"({"action":"record_accepted","actor":"wyp","at":"2026-11-21T17:34:00.123Z","decision":"","detail":{"kind":"flag","recipients":["bradford-csc"],"source_version":1},"details_hash":"f32b8befff586312b69375b5109743e81d9f025f41851f7d6fdf1f081ee4019f","message_id":"","purpose":"child_protection","reasons":[],"record_id":"rec_8f14e45fceea167a5a36dedd4bea2543","seq":1})",
    R"({"action":"delivery_permitted","actor":"wyp","at":"2026-11-21T17:34:00.123Z","decision":"permit","detail":{"deadline":"2026-11-22T17:34:00.123Z","recipient":"bradford-csc"},"details_hash":"a0051d0b0b1ec490d30b034409f4e0953eeeab36b951e944685aaf2d9538d0be","message_id":"msg_c9f0f895fb98ab9159f51fd0297e236d","purpose":"child_protection","reasons":["placeholder policy: registered police, health and csc recipients are permitted"],"record_id":"rec_8f14e45fceea167a5a36dedd4bea2543","seq":2})",
    R"({"action":"mailbox_read","actor":"bradford-csc","at":"2026-11-21T17:39:00.007Z","decision":"","detail":{"type":"record"},"details_hash":"cb375a3313f564ac2681aa4e38f70a2103f809bb68077468f006d836ddcc16b5","message_id":"msg_c9f0f895fb98ab9159f51fd0297e236d","purpose":"child_protection","reasons":[],"record_id":"rec_8f14e45fceea167a5a36dedd4bea2543","seq":3})",
};

constexpr const char* kL0 = "822d94aa8447615c263ff5bb5ea77fcf41c6cbc01f1da34a9e5efc2a1d8525a2";
constexpr const char* kL1 = "496836a96dc761c5595dd66ca9cccb0cc35e79598e72e7af2ab9deb7130f034a";
constexpr const char* kL2 = "7e969521e4a3bdf3f47115f1516a58da64bf4edf696d335e4fdf3d86453e18bc";
constexpr const char* kN01 = "b7bb0c5d7e6d405e1fe83af1036e45d5090b5f1c3e0eeadb0a47eeca5ab1e248";
constexpr const char* kRoot3 = "07273b375063f7683ab905a145355f347773f546ccdc60b9d25fa9dd1bdc5bd4";

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
      "BN8psWay9krtGUsYHEv5RxFh8NSEUeI5SNdyjvuGoBH4slaMWFHwPp0YcJKze+61HEwCwGEw+Oa+lHFkMWL3AQ==");

  auto bundle = MakeBundle(store, kEntries[1], 1, head, (*key)->public_key());
  ASSERT_TRUE(bundle.ok());
  const nlohmann::json b = BundleToJson(*bundle);
  EXPECT_EQ(b["leaf_hash"], kL1);
  EXPECT_EQ(b["path"], (nlohmann::json{kL0, kL2}));
  EXPECT_EQ(b["entry"].get<std::string>().substr(0, 24), "eyJhY3Rpb24iOiJkZWxpdmVy");
}

}  // namespace
}  // namespace safegate::audit
