// The outbox sender's pure parts: the retry backoff (exponential, jittered, capped) and the
// peer endpoint parsing. Delivery itself runs between real gateways in
// tests/transfer_flow_test.cc and, in the store, daemon/core/transfers_test.cc.
#include <gtest/gtest.h>

#include <random>

#include "daemon/server/outbox_sender.h"
#include "daemon/server/peer_client.h"

namespace safegate::server {
namespace {

using std::chrono::milliseconds;

TEST(OutboxBackoff, DoublesWithJitterAndIsCapped) {
  std::mt19937_64 rng(7);
  const milliseconds base{1000}, max{5 * 60 * 1000};
  for (int attempts = 0; attempts < 12; ++attempts) {
    const int64_t d = std::min<int64_t>(base.count() << attempts, max.count());
    bool varied = false;
    int64_t first = -1;
    for (int i = 0; i < 50; ++i) {
      const int64_t wait = OutboxSender::Backoff(attempts, base, max, rng).count();
      EXPECT_GE(wait, d / 2) << "attempt " << attempts;
      EXPECT_LE(wait, d) << "attempt " << attempts;
      if (first < 0) first = wait;
      varied = varied || wait != first;
    }
    EXPECT_TRUE(varied) << "no jitter at attempt " << attempts;
  }
  // Very many attempts neither overflow nor exceed the cap.
  const int64_t late = OutboxSender::Backoff(1000, base, max, rng).count();
  EXPECT_GE(late, max.count() / 2);
  EXPECT_LE(late, max.count());
}

TEST(PeerEndpoint, ParsesHostPortAndPrefix) {
  auto plain = ParsePeerEndpoint("https://127.0.0.1:8444");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->host, "127.0.0.1");
  EXPECT_EQ(plain->port, "8444");
  EXPECT_EQ(plain->prefix, "");
  auto named = ParsePeerEndpoint("HTTPS://gateway.cambs.example/safegate/");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->host, "gateway.cambs.example");
  EXPECT_EQ(named->port, "443");
  EXPECT_EQ(named->prefix, "/safegate");
  auto v6 = ParsePeerEndpoint("https://[::1]:9443");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, "9443");
  for (const char* bad : {"http://127.0.0.1:1", "https://:80", "https://host:http", "https://[::1"}) {
    auto r = ParsePeerEndpoint(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidInput) << bad;
  }
}

}  // namespace
}  // namespace safegate::server
