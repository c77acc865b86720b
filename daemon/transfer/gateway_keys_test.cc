#include "daemon/transfer/gateway_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <toml++/toml.h>

#include "daemon/transfer/test_util.h"

namespace safegate::transfer {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::string SigningPath(const TempDir& d) { return d.path() + "/" + std::string(kSigningKeyFile); }
std::string SealingPath(const TempDir& d) { return d.path() + "/" + std::string(kSealingKeyFile); }

TEST(GatewayKeys, CreatesBothKeyFilesPrivateAndWhole) {
  TempDir dir;
  auto keys = GatewayKeys::LoadOrCreate(dir.path());
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  for (const std::string& path : {SigningPath(dir), SealingPath(dir)}) {
    EXPECT_EQ(ModeOf(path), 0600u) << path;
    EXPECT_EQ(std::filesystem::file_size(path), 32u) << path;
  }
  // Atomic creation leaves nothing but the two key files behind.
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 2);
  // The two keypairs are distinct.
  EXPECT_NE((*keys)->signing_public_key(), (*keys)->sealing_public_key());
}

TEST(GatewayKeys, ReloadGivesTheSameKeys) {
  TempDir dir;
  auto first = GatewayKeys::LoadOrCreate(dir.path());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto again = GatewayKeys::LoadOrCreate(dir.path());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  auto loaded = GatewayKeys::Load(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  for (const auto* k : {&again, &loaded}) {
    EXPECT_EQ((**k)->signing_public_key(), (*first)->signing_public_key());
    EXPECT_EQ((**k)->sealing_public_key(), (*first)->sealing_public_key());
  }
  // The reloaded secret halves work with the first public halves.
  const std::string sig = (*loaded)->Sign("message");
  EXPECT_TRUE(VerifySignature((*first)->signing_public_key(), "message", sig));
  auto opened = (*loaded)->OpenSealed(SealTo((*first)->sealing_public_key(), "secret"));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, "secret");
}

TEST(GatewayKeys, RefusesAKeyFileOthersCanRead) {
  for (const bool signing : {true, false}) {
    TempDir dir;
    ASSERT_TRUE(GatewayKeys::LoadOrCreate(dir.path()).ok());
    const std::string path = signing ? SigningPath(dir) : SealingPath(dir);
    ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
    for (const bool create : {true, false}) {
      auto keys = create ? GatewayKeys::LoadOrCreate(dir.path()) : GatewayKeys::Load(dir.path());
      ASSERT_FALSE(keys.ok()) << path;
      EXPECT_EQ(keys.status().code(), ErrorCode::kInternal);
      EXPECT_THAT(keys.status().detail(), HasSubstr(path));
      EXPECT_THAT(keys.status().detail(), HasSubstr("mode 0644"));
      EXPECT_THAT(keys.status().detail(), HasSubstr("chmod 600 " + path));
    }
  }
  // Group-writable only is refused too.
  TempDir dir;
  ASSERT_TRUE(GatewayKeys::LoadOrCreate(dir.path()).ok());
  ASSERT_EQ(::chmod(SealingPath(dir).c_str(), 0620), 0);
  EXPECT_FALSE(GatewayKeys::Load(dir.path()).ok());
}

TEST(GatewayKeys, RefusesAKeyFileOfTheWrongSize) {
  TempDir dir;
  {
    const int fd = ::open(SigningPath(dir).c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "short", 5), 5);
    ::close(fd);
  }
  auto keys = GatewayKeys::LoadOrCreate(dir.path());
  ASSERT_FALSE(keys.ok());
  EXPECT_THAT(keys.status().detail(), HasSubstr(SigningPath(dir)));
  EXPECT_THAT(keys.status().detail(), HasSubstr("exactly 32 bytes, it holds 5"));
}

TEST(GatewayKeys, LoadDoesNotCreate) {
  TempDir dir;
  auto keys = GatewayKeys::Load(dir.path());
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().code(), ErrorCode::kNotFound);
  EXPECT_THAT(keys.status().detail(), HasSubstr(SigningPath(dir)));
  EXPECT_FALSE(std::filesystem::exists(SigningPath(dir)));
  EXPECT_FALSE(std::filesystem::exists(SealingPath(dir)));
}

TEST(GatewayKeys, MissingDataDirectoryIsNamed) {
  TempDir dir;
  const std::string missing = dir.path() + "/nope";
  auto keys = GatewayKeys::LoadOrCreate(missing);
  ASSERT_FALSE(keys.ok());
  EXPECT_THAT(keys.status().detail(), HasSubstr(missing));
}

TEST(GatewayKeys, CompletesAHalfMadeKeySet) {
  // A crash between the two files leaves the signing key alone: the next start keeps it and
  // makes the sealing key.
  TempDir dir;
  PublicKey signing{};
  {
    auto keys = GatewayKeys::LoadOrCreate(dir.path());
    ASSERT_TRUE(keys.ok());
    signing = (*keys)->signing_public_key();
  }
  std::filesystem::remove(SealingPath(dir));
  auto keys = GatewayKeys::LoadOrCreate(dir.path());
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ((*keys)->signing_public_key(), signing);
  EXPECT_EQ(ModeOf(SealingPath(dir)), 0600u);
}

TEST(GatewayKeys, PublicKeysAsBase64) {
  TempDir dir;
  auto keys = GatewayKeys::LoadOrCreate(dir.path());
  ASSERT_TRUE(keys.ok());
  const std::string b64 = (*keys)->SigningPublicKeyBase64();
  EXPECT_EQ(b64.size(), 44u);  // 32 bytes, padded standard base64
  EXPECT_EQ(b64.back(), '=');
  EXPECT_EQ(PublicKeyFromBase64(b64), (*keys)->signing_public_key());
  EXPECT_EQ(PublicKeyFromBase64((*keys)->SealingPublicKeyBase64()), (*keys)->sealing_public_key());
  EXPECT_EQ(PublicKeyFromBase64("c2hvcnQ="), std::nullopt);         // 5 bytes
  EXPECT_EQ(PublicKeyFromBase64(b64.substr(0, 43)), std::nullopt);  // padding missing
  EXPECT_EQ(PublicKeyFromBase64(" " + b64), std::nullopt);          // whitespace
  EXPECT_EQ(FromBase64(ToBase64(std::string_view("\x00\xff\x10", 3))),
            std::string("\x00\xff\x10", 3));
}

TEST(GatewayKeys, KeysShowIsTomlForAPeerBlock) {
  TempDir dir;
  auto keys = GatewayKeys::LoadOrCreate(dir.path());
  ASSERT_TRUE(keys.ok());
  const std::string text = KeysShowText("bradford", **keys);
  // Pasted under [[peer]] it parses, and the keys decode to this gateway's.
  toml::table table;
  try {
    table = toml::parse("[[peer]]\n" + text);
  } catch (const toml::parse_error& e) {
    FAIL() << "keys show output is not TOML: " << e.description() << "\n" << text;
  }
  const auto* peer = table["peer"][0].as_table();
  ASSERT_NE(peer, nullptr);
  EXPECT_EQ((*peer)["area"].value_or(std::string()), "bradford");
  EXPECT_EQ(PublicKeyFromBase64((*peer)["signing_public_key"].value_or(std::string())),
            (*keys)->signing_public_key());
  EXPECT_EQ(PublicKeyFromBase64((*peer)["sealing_public_key"].value_or(std::string())),
            (*keys)->sealing_public_key());
}

TEST(GatewayKeys, SealedBoxOpensOnlyWithItsKey) {
  TempDir a, b;
  auto ka = GatewayKeys::LoadOrCreate(a.path());
  auto kb = GatewayKeys::LoadOrCreate(b.path());
  ASSERT_TRUE(ka.ok() && kb.ok());
  const std::string sealed = SealTo((*ka)->sealing_public_key(), "for a only");
  EXPECT_EQ(sealed.size(), std::string("for a only").size() + 48);
  EXPECT_TRUE((*ka)->OpenSealed(sealed).ok());
  auto wrong = (*kb)->OpenSealed(sealed);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), ErrorCode::kBadRequest);
  EXPECT_FALSE((*ka)->OpenSealed("tiny").ok());
}

TEST(PeerDirectory, FromRegistryPeers) {
  TempDir dir;
  auto keys = GatewayKeys::LoadOrCreate(dir.path());
  ASSERT_TRUE(keys.ok());
  config::Peer cambs;
  cambs.area = "cambridgeshire";
  cambs.signing_public_key = (*keys)->SigningPublicKeyBase64();
  cambs.sealing_public_key = (*keys)->SealingPublicKeyBase64();
  config::Peer york;  // keys not exchanged yet
  york.area = "york";
  auto peers = PeerDirectory::FromPeers({cambs, york});
  ASSERT_TRUE(peers.ok()) << peers.status().ToString();
  ASSERT_NE(peers->Find("cambridgeshire"), nullptr);
  EXPECT_EQ(peers->Find("cambridgeshire")->signing, (*keys)->signing_public_key());
  ASSERT_NE(peers->Find("york"), nullptr);
  EXPECT_FALSE(peers->Find("york")->signing.has_value());
  EXPECT_EQ(peers->Find("leeds"), nullptr);

  york.sealing_public_key = "c2hvcnQ=";
  auto bad = PeerDirectory::FromPeers({cambs, york});
  ASSERT_FALSE(bad.ok());
  ASSERT_EQ(bad.status().problems().size(), 1u);
  EXPECT_EQ(bad.status().problems()[0].where, "peer[1].sealing_public_key");
}

}  // namespace
}  // namespace safegate::transfer
