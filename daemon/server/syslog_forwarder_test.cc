// The message and frame format of audit forwarding (docs/audit-log.md, "Forwarding"): the
// example of that page, byte for byte, and the cursor file. The whole path (TLS, collector
// down, restarts) is tested end to end in tests/audit_forward_test.cc.
#include "daemon/server/syslog_forwarder.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "daemon/core/crypto.h"

namespace safegate::server {
namespace {

// Entry 1 of the worked example of docs/audit-log.md and its chain hash h_1.
constexpr std::string_view kEntry1 =
    R"({"action":"record_accepted","actor":"wyp","at":"2026-11-21T17:34:00.123Z","decision":"","detail":{"kind":"flag","recipients":["bradford-csc"],"source_version":1},"details_hash":"f32b8befff586312b69375b5109743e81d9f025f41851f7d6fdf1f081ee4019f","message_id":"","purpose":"child_protection","reasons":[],"record_id":"rec_8f14e45fceea167a5a36dedd4bea2543","seq":1})";
constexpr std::string_view kH1 = "1eedae84c68a795985a42d527e9f628599685eb56b4e50afbc9d22eda19ff975";

SyslogHeader Header() { return {"gw1.bradford.example", "safegate", "4242", "bradford"}; }

TEST(SyslogForwarderTest, MessageOfTheWorkedExample) {
  ForwardedEntry e{1, std::string(kEntry1), *core::FromHex(kH1)};
  const std::string message = SyslogMessage(e, Header());
  const std::string expected =
      "<110>1 2026-11-21T17:34:00.123Z gw1.bradford.example safegate 4242 record_accepted "
      "[safegate@32473 seq=\"1\" "
      "leaf=\"822d94aa8447615c263ff5bb5ea77fcf41c6cbc01f1da34a9e5efc2a1d8525a2\" "
      "chain=\"1eedae84c68a795985a42d527e9f628599685eb56b4e50afbc9d22eda19ff975\" "
      "area=\"bradford\"] \xEF\xBB\xBF" +
      std::string(kEntry1);
  EXPECT_EQ(message, expected);
  EXPECT_EQ(message.size(), 633u);
  EXPECT_EQ(OctetCountedFrame(message), "633 " + expected);
}

TEST(SyslogForwarderTest, UnreadableFieldsBecomeNilValues) {
  // Bytes that are not an entry (never written by the gateway) still go, verbatim, with
  // NILVALUE where the header would need them.
  ForwardedEntry e{7, "not json", std::string(32, '\0')};
  const std::string message = SyslogMessage(e, {"", "safe gate", "1", "x\"]"});
  EXPECT_EQ(message.substr(0, 24), "<110>1 - - - 1 - [safega");
  EXPECT_NE(message.find("seq=\"7\""), std::string::npos);
  EXPECT_NE(message.find("area=\"x\\\"\\]\"]"), std::string::npos) << message;
  EXPECT_EQ(message.substr(message.size() - 11), "\xEF\xBB\xBFnot json");
}

class CursorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/safegate-cursor-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(CursorTest, MissingIsZeroWrittenIsReadBackBadIsNamed) {
  const std::string path = ForwardCursorPath(dir_);
  EXPECT_EQ(path, dir_ + "/audit-forward.json");
  auto none = ReadForwardCursor(path);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);

  ASSERT_TRUE(WriteForwardCursor(path, 41, "logs:6514").ok());
  ASSERT_TRUE(WriteForwardCursor(path, 42, "logs:6514").ok());
  auto read = ReadForwardCursor(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(*read, 42);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::others_all,
            std::filesystem::perms::none);

  std::ofstream(path, std::ios::trunc) << "{\"seq\": -1}";
  auto bad = ReadForwardCursor(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().detail().find(path), std::string::npos) << bad.status().ToString();
  std::ofstream(path, std::ios::trunc) << "garbage";
  EXPECT_FALSE(ReadForwardCursor(path).ok());
}

}  // namespace
}  // namespace safegate::server
