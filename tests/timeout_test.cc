// Slow and silent clients are cut off by the gateway's timeouts instead of holding a
// connection forever. The sandbox gateway is restarted with one-second timeouts (its own
// config plus a [limits] table), as an operator would configure it.
#include <gtest/gtest.h>

#include <signal.h>

#include <fstream>

#include "tests/support/sandbox.h"
#include "tests/support/test_data.h"

namespace safegate::testing {
namespace {

// Far above the configured one second, so only a gateway that never closes fails.
constexpr std::chrono::seconds kBound{20};

class TimeoutTest : public SandboxTest {
 protected:
  void SetUp() override {
    SandboxTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(sandbox().Stop("bradford", SIGTERM).ok());
    std::ofstream config(sandbox().area("bradford").config, std::ios::app);
    config << "\n[limits]\nhandshake_timeout = \"1s\"\nread_timeout = \"1s\"\n"
              "idle_timeout = \"1s\"\n";
    config.close();
    Status s = sandbox().Restart("bradford");
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
};

TEST_F(TimeoutTest, SilentTcpClientIsClosed) {
  Status s = TcpSilentUntilClosed(sandbox().area("bradford").url, kBound);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST_F(TimeoutTest, SilentTlsClientIsClosed) {
  HttpsClient wyp(sandbox().area("bradford").url,
                  {sandbox().json().value("ca", ""), sandbox().CertsDir() + "/wyp.pem",
                   sandbox().CertsDir() + "/wyp.key"},
                  std::chrono::seconds(2));
  Status s = wyp.SendAndWaitForClose("", kBound);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST_F(TimeoutTest, StalledRequestIsClosedAndNothingStored) {
  HttpsClient wyp(sandbox().area("bradford").url,
                  {sandbox().json().value("ca", ""), sandbox().CertsDir() + "/wyp.pem",
                   sandbox().CertsDir() + "/wyp.key"},
                  std::chrono::seconds(2));
  std::string body =
      PushBody(CseFlag(TestNhsNumber(3), "OCC-2025-000003"), {"bradford-csc"}).dump();
  // The head and half the body, then nothing.
  std::string partial =
      "POST /v1/records HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, body.size() / 2);
  std::string answer;
  Status s = wyp.SendAndWaitForClose(partial, kBound, &answer);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!answer.empty()) {
    EXPECT_EQ(answer.find("HTTP/1.1 2"), std::string::npos)
        << "a stalled push was accepted: " << answer;
  }
  // The gateway still serves, and the half push stored nothing.
  auto mailbox = Client("bradford-csc").Get("/v1/mailbox");
  ASSERT_TRUE(mailbox.ok()) << mailbox.status().ToString();
  ASSERT_EQ(mailbox->status, 200) << mailbox->Describe();
  EXPECT_TRUE(mailbox->Json()["messages"].empty()) << mailbox->Describe();
}

}  // namespace
}  // namespace safegate::testing
