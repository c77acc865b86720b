#include "daemon/audit/tree_head.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "daemon/audit/encoding.h"

namespace safegate::audit {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// RFC 8032 §7.1, TEST 1: a published test key, not anybody's real key.
constexpr std::string_view kRfc8032Seed =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
constexpr std::string_view kRfc8032Public =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
constexpr std::string_view kRfc8032EmptySignature =
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9"
    "b46bd25bf5f0595bbe24655141438e7a100b";

std::unique_ptr<SigningKey> TestKey() {
  auto key = SigningKey::FromSeed(*FromHex(kRfc8032Seed));
  EXPECT_TRUE(key.ok());
  return std::move(key).value();
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "safegate-audit-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string File(std::string_view name) const { return (fs::path(path_) / name).string(); }

 private:
  std::string path_;
};

TEST(Ed25519, MatchesRfc8032TestVector) {
  auto key = TestKey();
  EXPECT_EQ(ToHex(std::span<const uint8_t>(key->public_key())), kRfc8032Public);
  const Signature sig = key->Sign("");
  EXPECT_EQ(ToHex(std::span<const uint8_t>(sig)), kRfc8032EmptySignature);
  EXPECT_TRUE(VerifySignature(key->public_key(), "", sig));
  EXPECT_FALSE(VerifySignature(key->public_key(), "x", sig));
}

TEST(TreeHead, SignatureInputIsTheDocumentedSixtyFourBytes) {
  Hash root;
  for (size_t i = 0; i < root.size(); ++i) root[i] = static_cast<uint8_t>(0xa0 + i % 16);
  const std::string input = TreeHeadSignatureInput(3, 0x0102030405060708ULL, root);
  ASSERT_EQ(input.size(), 64u);
  EXPECT_EQ(ToHex(input),
            "73616665676174652d7374682d76310a"  // "safegate-sth-v1\n"
            "0000000000000003"                  // tree_size, big-endian
            "0102030405060708"                  // timestamp_ms, big-endian
            "a0a1a2a3a4a5a6a7a8a9aaabacadaeafa0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
  EXPECT_EQ(input.substr(0, 16), kTreeHeadDomain);
}

TEST(TreeHead, SignsAndVerifiesAndDetectsEveryTamperedField) {
  auto key = TestKey();
  const Hash root = LeafHash("root");
  const SignedTreeHead head = SignTreeHead(*key, 42, root, 1'700'000'000'123);
  EXPECT_EQ(head.tree_size, 42u);
  EXPECT_EQ(head.root_hash, root);
  EXPECT_EQ(head.timestamp_ms, 1'700'000'000'123u);
  EXPECT_TRUE(VerifyTreeHead(head, key->public_key()).ok());

  SignedTreeHead bad = head;
  bad.tree_size = 43;
  EXPECT_FALSE(VerifyTreeHead(bad, key->public_key()).ok());
  bad = head;
  bad.timestamp_ms += 1;
  EXPECT_FALSE(VerifyTreeHead(bad, key->public_key()).ok());
  bad = head;
  bad.root_hash[0] ^= 1;
  EXPECT_FALSE(VerifyTreeHead(bad, key->public_key()).ok());
  for (size_t i = 0; i < kSignatureSize; ++i) {
    bad = head;
    bad.signature[i] ^= 0x40;
    EXPECT_FALSE(VerifyTreeHead(bad, key->public_key()).ok()) << "signature byte " << i;
  }
  auto other = SigningKey::FromSeed(std::string(32, '\x07'));
  ASSERT_TRUE(other.ok());
  const Status s = VerifyTreeHead(head, (*other)->public_key());
  EXPECT_EQ(s.code(), ErrorCode::kInvalidInput);
  EXPECT_NE(s.detail().find("does not verify under public key " + (*other)->PublicKeyBase64()),
            std::string::npos)
      << s.detail();
}

TEST(TreeHead, JsonIsTheApiShapeAndRoundTrips) {
  auto key = TestKey();
  const SignedTreeHead head = SignTreeHead(*key, 3, LeafHash("r"), 1'700'000'000'000);
  const json j = TreeHeadToJson(head, key->public_key());
  EXPECT_EQ(j.size(), 5u);
  EXPECT_EQ(j["tree_size"], 3);
  EXPECT_EQ(j["root_hash"], HashHex(head.root_hash));
  EXPECT_EQ(j["timestamp"], 1'700'000'000'000);
  EXPECT_EQ(j["signature"], ToBase64(std::span<const uint8_t>(head.signature)));
  EXPECT_EQ(j["public_key"], key->PublicKeyBase64());
  auto back = TreeHeadFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->head, head);
  EXPECT_EQ(back->public_key, key->public_key());
}

TEST(TreeHead, MalformedJsonNamesEveryProblem) {
  const json j = {{"tree_size", -1},
                  {"root_hash", std::string(64, 'A')},
                  {"timestamp", 1.5},
                  {"signature", "not base64!"},
                  {"extra", true}};
  auto r = TreeHeadFromJson(j, "/tree_head");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidInput);
  std::vector<std::string> where;
  for (const Problem& p : r.status().problems()) where.push_back(p.where);
  EXPECT_EQ(where, (std::vector<std::string>{"/tree_head/extra", "/tree_head/tree_size",
                                             "/tree_head/timestamp", "/tree_head/root_hash",
                                             "/tree_head/signature", "/tree_head/public_key"}));
  EXPECT_FALSE(TreeHeadFromJson(json::array()).ok());
}

TEST(TreeHeadPolicy, SignsOnlyWhenSomethingIsNewAndEnoughHasPassed) {
  const TreeHeadPolicy policy;  // every 1000 entries or 100 ms
  EXPECT_EQ(policy.interval_ms, 100);
  EXPECT_FALSE(TreeHeadDue(policy, 10, 10, 10'000, 0));  // nothing new, however long
  EXPECT_FALSE(TreeHeadDue(policy, 11, 10, 1'099, 1'000));
  EXPECT_TRUE(TreeHeadDue(policy, 11, 10, 1'100, 1'000));
  EXPECT_TRUE(TreeHeadDue(policy, 1'010, 10, 1'001, 1'000));  // 1000 new entries
  EXPECT_FALSE(TreeHeadDue(policy, 1'009, 10, 1'001, 1'000));
}

TEST(Equivocation, TwoRootsForOneSizeAreReported) {
  auto key = TestKey();
  const SignedTreeHead a = SignTreeHead(*key, 5, LeafHash("a"), 1000);
  const SignedTreeHead a_later = SignTreeHead(*key, 5, LeafHash("a"), 2000);
  const SignedTreeHead b = SignTreeHead(*key, 6, LeafHash("b"), 3000);
  const SignedTreeHead fork = SignTreeHead(*key, 5, LeafHash("evil"), 4000);

  auto none = FindEquivocation({a, a_later, b}, key->public_key());
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  auto found = FindEquivocation({a, b, fork}, key->public_key());
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->first, a);
  EXPECT_EQ((*found)->second, fork);
  EXPECT_NE((*found)->Describe().find("two signed tree heads for tree size 5"), std::string::npos);
  EXPECT_NE((*found)->Describe().find(HashHex(LeafHash("evil"))), std::string::npos);

  // A head that does not verify proves nothing, so it is reported as such, by position.
  SignedTreeHead forged = fork;
  forged.signature[0] ^= 1;
  auto bad = FindEquivocation({a, forged}, key->public_key());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().detail().find("tree head 1:"), std::string::npos);
}

// ---- key files ----

TEST(SigningKeyFile, IsCreatedOnceWithMode0600AndReloadsTheSameKey) {
  TempDir dir;
  const std::string path = dir.File("signing.key");
  auto created = SigningKey::LoadOrCreate(path);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  auto again = SigningKey::LoadOrCreate(path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->public_key(), (*created)->public_key());
  auto loaded = SigningKey::Load(path);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ((*loaded)->public_key(), (*created)->public_key());
  // The public key exports as 44 characters of standard base64.
  const std::string b64 = (*created)->PublicKeyBase64();
  EXPECT_EQ(b64.size(), 44u);
  EXPECT_EQ(ParsePublicKey(b64), (*created)->public_key());
  EXPECT_FALSE(ParsePublicKey(b64.substr(4)).has_value());
}

TEST(SigningKeyFile, RefusesFilesOthersCanReadOrWrite) {
  TempDir dir;
  const std::string path = dir.File("signing.key");
  ASSERT_TRUE(SigningKey::LoadOrCreate(path).ok());
  for (mode_t mode : {0640, 0604, 0620, 0602, 0660}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto r = SigningKey::LoadOrCreate(path);
    ASSERT_FALSE(r.ok()) << std::oct << mode;
    EXPECT_NE(r.status().detail().find("chmod 600 " + path), std::string::npos)
        << r.status().detail();
  }
  ASSERT_EQ(::chmod(path.c_str(), 0400), 0);  // read-only for the owner is fine
  EXPECT_TRUE(SigningKey::Load(path).ok());
}

TEST(SigningKeyFile, RefusesWrongSizesSymlinksDirectoriesAndMissingFiles) {
  TempDir dir;
  const std::string short_key = dir.File("short.key");
  { std::ofstream(short_key) << "too short"; }
  ASSERT_EQ(::chmod(short_key.c_str(), 0600), 0);
  auto r = SigningKey::Load(short_key);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().detail().find("is 9 bytes, not the 32 bytes"), std::string::npos);

  const std::string real = dir.File("real.key");
  ASSERT_TRUE(SigningKey::LoadOrCreate(real).ok());
  const std::string link = dir.File("link.key");
  fs::create_symlink(real, link);
  r = SigningKey::LoadOrCreate(link);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().detail().find("symbolic link"), std::string::npos) << r.status().detail();

  const std::string sub = dir.File("sub");
  fs::create_directory(sub);
  ASSERT_EQ(::chmod(sub.c_str(), 0700), 0);
  r = SigningKey::Load(sub);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().detail().find("not a regular file"), std::string::npos);

  r = SigningKey::Load(dir.File("absent.key"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().detail().find("absent.key: open"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir.File("absent.key")));
}

TEST(SigningKeyFile, RefusesAKeyOwnedBySomeoneElse) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give the file away";
  TempDir dir;
  const std::string path = dir.File("signing.key");
  ASSERT_TRUE(SigningKey::LoadOrCreate(path).ok());
  ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
  auto r = SigningKey::Load(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().detail().find("owned by uid 65534"), std::string::npos);
}

}  // namespace
}  // namespace safegate::audit
