#include "daemon/core/crypto.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "daemon/core/sqlite.h"
#include "daemon/core/test_support.h"

namespace safegate::core {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

TEST(CryptoTest, Sha256KnownAnswers) {
  ASSERT_TRUE(InitSodium().ok());
  EXPECT_EQ(Hex(Sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256("ab", "c"), Sha256("abc"));
}

TEST(CryptoTest, HexRoundTrip) {
  const std::string raw("\x00\x01\xab\xff", 4);
  EXPECT_EQ(Hex(raw), "0001abff");
  EXPECT_EQ(FromHex("0001ABff"), raw);
  EXPECT_FALSE(FromHex("abc").has_value());
  EXPECT_FALSE(FromHex("zz").has_value());
}

TEST(CryptoTest, RandomIds) {
  ASSERT_TRUE(InitSodium().ok());
  const std::string a = RandomId("rec_"), b = RandomId("rec_");
  EXPECT_THAT(a, MatchesRegex("rec_[0-9a-f]{32}"));
  EXPECT_NE(a, b);
}

class KeyTest : public ::testing::Test {
 protected:
  std::string path() const { return dir_.path() + "/store.key"; }
  safegate::testing::TempDir dir_;
};

TEST_F(KeyTest, CreatedPrivateAndReloaded) {
  auto key = AtRestKey::LoadOrCreate(path());
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  struct stat st {};
  ASSERT_EQ(::stat(path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  auto sealed = (*key)->Seal("hello", "rec_1");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->nonce.size(), kNonceBytes);
  EXPECT_EQ(sealed->ciphertext.size(), 5u + 16u);
  EXPECT_EQ(sealed->ciphertext.find("hello"), std::string::npos);

  auto again = AtRestKey::LoadOrCreate(path());  // the same key, read back
  ASSERT_TRUE(again.ok());
  auto opened = (*again)->Unseal(sealed->nonce, sealed->ciphertext, "rec_1");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, "hello");
}

// Creation goes through a temporary file linked into place, so a kill during it leaves at
// most a stray temporary (never an empty store.key); the stray one does not stop a start,
// several starting at once agree on one key, and nothing temporary is left behind.
TEST_F(KeyTest, CreationLeavesAWholeKeyOrNone) {
  std::ofstream(path() + ".new-AbC123");  // what a kill mid-write leaves: empty
  std::vector<std::thread> starts;
  std::vector<std::string> sealed(4);
  for (size_t i = 0; i < sealed.size(); ++i) {
    starts.emplace_back([&, i] {
      auto key = AtRestKey::LoadOrCreate(path());
      if (!key.ok()) return;
      auto s = (*key)->Seal("x", "ad");
      if (s.ok()) sealed[i] = s->nonce + s->ciphertext;
    });
  }
  for (auto& t : starts) t.join();
  auto key = AtRestKey::LoadOrCreate(path());
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  for (const std::string& s : sealed) {
    ASSERT_EQ(s.size(), kNonceBytes + 1 + 16);
    auto opened = (*key)->Unseal(s.substr(0, kNonceBytes), s.substr(kNonceBytes), "ad");
    EXPECT_TRUE(opened.ok()) << "a concurrent start made a key of its own";
  }
  int temporaries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    const std::string name = e.path().filename().string();
    if (name.rfind("store.key.new-", 0) == 0 && name != "store.key.new-AbC123") ++temporaries;
  }
  EXPECT_EQ(temporaries, 0);
}

TEST_F(KeyTest, TamperedOrMovedCiphertextDoesNotOpen) {
  auto key = AtRestKey::LoadOrCreate(path());
  ASSERT_TRUE(key.ok());
  auto sealed = (*key)->Seal("body", "rec_1");
  ASSERT_TRUE(sealed.ok());
  auto moved = (*key)->Unseal(sealed->nonce, sealed->ciphertext, "rec_2");
  EXPECT_EQ(moved.status().code(), ErrorCode::kInternal);
  std::string flipped = sealed->ciphertext;
  flipped[0] ^= 1;
  EXPECT_FALSE((*key)->Unseal(sealed->nonce, flipped, "rec_1").ok());
  EXPECT_FALSE((*key)->Unseal("short", sealed->ciphertext, "rec_1").ok());
  EXPECT_FALSE((*key)->Unseal(sealed->nonce, "x", "rec_1").ok());
  // Two seals of one plaintext differ (fresh nonces).
  EXPECT_NE((*key)->Seal("body", "rec_1")->ciphertext, sealed->ciphertext);
}

TEST_F(KeyTest, RefusesUnsafeKeyFiles) {
  ASSERT_TRUE(AtRestKey::LoadOrCreate(path()).ok());
  ASSERT_EQ(::chmod(path().c_str(), 0640), 0);
  auto s = AtRestKey::LoadOrCreate(path()).status();
  EXPECT_THAT(s.detail(), HasSubstr("mode 0640"));
  ASSERT_EQ(::chmod(path().c_str(), 0604), 0);
  EXPECT_FALSE(AtRestKey::LoadOrCreate(path()).ok());
  ASSERT_EQ(::chmod(path().c_str(), 0600), 0);
  { std::ofstream(path(), std::ios::app) << "x"; }
  EXPECT_THAT(AtRestKey::LoadOrCreate(path()).status().detail(), HasSubstr("holds 33"));
  std::filesystem::remove(path());
  std::filesystem::create_directory(path());
  EXPECT_THAT(AtRestKey::LoadOrCreate(path()).status().detail(), HasSubstr("regular file"));
  std::filesystem::remove(path());
  std::filesystem::create_symlink("/etc/hostname", path());
  EXPECT_FALSE(AtRestKey::LoadOrCreate(path()).ok()) << "symlinks are not followed";
}

TEST(SqliteStatusTest, TranslatesCodes) {
  EXPECT_TRUE(SqliteStatus(SQLITE_OK, nullptr, "x").ok());
  EXPECT_TRUE(SqliteStatus(SQLITE_DONE, nullptr, "x").ok());
  EXPECT_TRUE(SqliteStatus(SQLITE_ROW, nullptr, "x").ok());
  EXPECT_EQ(SqliteStatus(SQLITE_BUSY, nullptr, "x").code(), ErrorCode::kUnavailable);
  EXPECT_EQ(SqliteStatus(SQLITE_BUSY_SNAPSHOT, nullptr, "x").code(), ErrorCode::kUnavailable);
  EXPECT_EQ(SqliteStatus(SQLITE_FULL, nullptr, "x").code(), ErrorCode::kUnavailable);
  EXPECT_EQ(SqliteStatus(SQLITE_CORRUPT, nullptr, "x").code(), ErrorCode::kInternal);
  EXPECT_EQ(SqliteStatus(SQLITE_CONSTRAINT_UNIQUE, nullptr, "x").code(), ErrorCode::kInternal);
  const Status s = SqliteStatus(SQLITE_IOERR_FSYNC, nullptr, "commit");
  EXPECT_THAT(s.detail(), HasSubstr("commit"));
  EXPECT_THAT(s.detail(), HasSubstr("disk I/O error"));
}

TEST(SodiumStatusTest, TranslatesCodes) {
  EXPECT_TRUE(SodiumStatus(0, "x").ok());
  const Status s = SodiumStatus(-1, "seal record body");
  EXPECT_EQ(s.code(), ErrorCode::kInternal);
  EXPECT_THAT(s.detail(), HasSubstr("seal record body"));
}

}  // namespace
}  // namespace safegate::core
