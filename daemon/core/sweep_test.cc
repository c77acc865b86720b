// Acknowledgement deadlines, moved by a ManualClock: overdue notices to the sender and the
// recipient area's audit agency, repeats, expiry with a final notice.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemon/core/test_support.h"
#include "daemon/core/time_format.h"

namespace safegate {
namespace {

using ::testing::ElementsAre;
using namespace safegate::testing;
using nlohmann::json;

std::vector<MailboxMessage> Notices(GatewayHarness& h, const std::string& agency) {
  std::vector<MailboxMessage> out;
  auto page = h.Mailbox(agency, 1000);
  EXPECT_TRUE(page.ok()) << page.status().ToString();
  if (!page.ok()) return out;
  for (auto& m : page->messages) {
    if (m.type == "notice") out.push_back(m);
  }
  return out;
}

// Notices carry ids and times, never a name or a record body.
void ExpectOnlyIds(const json& notice) {
  static const std::set<std::string> kAllowed = {"kind",         "message_id",   "record_id",
                                                 "recipient",    "delivered_at", "deadline",
                                                 "notices_sent", "expired_at"};
  ASSERT_TRUE(notice.is_object());
  for (const auto& [key, value] : notice.items()) {
    EXPECT_TRUE(kAllowed.count(key)) << "unexpected notice field " << key;
  }
}

class SweepTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(h.Open().ok()); }
  SweepReport Sweep(int64_t at) {
    h.clock().Set(at);
    auto r = h.Sweep(at);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : SweepReport{};
  }
  GatewayHarness h;
};

TEST_F(SweepTest, NoticesRepeatsAndExpiry) {
  auto a = h.Push("wyp", MakePush("wyp", "A", {"bradford-csc"}, "child_protection"));
  auto b = h.Push("wyp", MakePush("wyp", "B", {"bthft"}, "missing_child"));
  ASSERT_TRUE(a.ok() && b.ok());
  const std::string a_msg = a->deliveries[0].message_id, b_msg = b->deliveries[0].message_id;

  // missing_child has a 1 hour deadline.
  EXPECT_EQ(Sweep(kT0 + kHour - 1).notices, 0);
  EXPECT_TRUE(Notices(h, "wyp").empty());
  EXPECT_EQ(Sweep(kT0 + kHour).notices, 1);
  auto to_sender = Notices(h, "wyp");
  ASSERT_EQ(to_sender.size(), 1u);
  EXPECT_EQ(to_sender[0].from, "safegate");
  EXPECT_EQ(to_sender[0].record_id, b->record_id);
  EXPECT_EQ(to_sender[0].purpose, "missing_child");
  EXPECT_TRUE(to_sender[0].record.is_null());
  const json& n = to_sender[0].notice;
  EXPECT_EQ(n["kind"], "ack_overdue");
  EXPECT_EQ(n["message_id"], b_msg);
  EXPECT_EQ(n["record_id"], b->record_id);
  EXPECT_EQ(n["recipient"], "bthft");
  EXPECT_EQ(n["delivered_at"], core::FormatTimeMs(kT0));
  EXPECT_EQ(n["deadline"], core::FormatTimeMs(kT0 + kHour));
  ExpectOnlyIds(n);
  auto to_audit = Notices(h, "bradford-audit");
  ASSERT_EQ(to_audit.size(), 1u);
  EXPECT_EQ(to_audit[0].notice, n);
  EXPECT_EQ(h.Mailbox("bthft")->messages.size(), 1u) << "overdue is still deliverable";

  EXPECT_EQ(Sweep(kT0 + kHour).notices, 0) << "one notice per interval";
  // The default deadline is 24 hours.
  EXPECT_EQ(Sweep(kT0 + 24 * kHour - 1).notices, 0);
  EXPECT_EQ(Sweep(kT0 + 24 * kHour).notices, 1);
  EXPECT_EQ(Notices(h, "wyp").back().notice["message_id"], a_msg);
  // Repeats every renotice interval (24 hours) while unacked.
  EXPECT_EQ(Sweep(kT0 + 25 * kHour).notices, 1);
  EXPECT_EQ(Notices(h, "wyp").back().notice["notices_sent"], 2);
  EXPECT_EQ(Sweep(kT0 + 48 * kHour).notices, 1);
  EXPECT_EQ(Notices(h, "wyp").back().notice["message_id"], a_msg);

  // Acked: no more notices about it.
  ASSERT_TRUE(h.Ack("bradford-csc", a_msg).ok());
  EXPECT_EQ(Sweep(kT0 + 72 * kHour).notices, 1) << "b (due since 49h) only; a is acked";
  EXPECT_EQ(Notices(h, "wyp").back().notice["message_id"], b_msg);

  // Expiry after 30 days, with a final notice; the message leaves the mailbox.
  const SweepReport before_expiry = Sweep(kT0 + 30 * kDay - 1);
  EXPECT_EQ(before_expiry.expired, 0);
  EXPECT_EQ(before_expiry.notices, 1);
  const SweepReport final_sweep = Sweep(kT0 + 30 * kDay);
  EXPECT_EQ(final_sweep.expired, 1);
  EXPECT_EQ(final_sweep.notices, 0);
  auto last = Notices(h, "wyp").back().notice;
  EXPECT_EQ(last["kind"], "expired");
  EXPECT_EQ(last["message_id"], b_msg);
  EXPECT_EQ(last["expired_at"], core::FormatTimeMs(kT0 + 30 * kDay));
  ExpectOnlyIds(last);
  EXPECT_EQ(Notices(h, "bradford-audit").back().notice["kind"], "expired");
  EXPECT_TRUE(h.Mailbox("bthft")->messages.empty());
  const SweepReport after = Sweep(kT0 + 60 * kDay);
  EXPECT_EQ(after.notices + after.expired, 0);

  auto overdue = AllEntries(h, Filter({{"action", "delivery_overdue"}}));
  ASSERT_EQ(overdue.size(), 6u);  // b at 1h, 25h, 72h, 30d-1ms; a at 24h, 48h
  EXPECT_EQ(overdue[0].actor, "safegate");
  EXPECT_EQ(overdue[0].message_id, b_msg);
  EXPECT_EQ(overdue[0].subject, std::string("nhs:") + kNhs1);
  EXPECT_EQ(overdue[0].detail["notified"], json({"wyp", "bradford-audit"}));
  EXPECT_EQ(overdue[0].detail["recipient"], "bthft");
  auto expired = AllEntries(h, Filter({{"action", "message_expired"}}));
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].message_id, b_msg);
  EXPECT_EQ(expired[0].at_ms, kT0 + 30 * kDay);
  // The audit agency can find everything about its overdue deliveries by its own id.
  EXPECT_EQ(
      AllEntries(h, Filter({{"agency", "bradford-audit"}, {"action", "delivery_overdue"}})).size(),
      6u);

  // A late ack after expiry is still recorded.
  ASSERT_TRUE(h.Ack("bthft", b_msg).ok());
  auto acked = AllEntries(h, Filter({{"action", "message_acked"}}));
  ASSERT_EQ(acked.size(), 2u);
  EXPECT_EQ(acked[1].detail["after_expiry"], true);
  EXPECT_TRUE(h.Verify()->ok);
}

TEST_F(SweepTest, MissedSweepsDoNotFloodAndExpiryIsOnTime) {
  auto a = h.Push("wyp", MakePush("wyp", "A", {"bradford-csc"}));
  auto b = h.Push("wyp", MakePush("wyp", "B", {"bthft"}, "missing_child"));
  ASSERT_TRUE(a.ok() && b.ok());
  // The gateway was down for ten days: one notice each, not one per missed interval.
  EXPECT_EQ(Sweep(kT0 + 10 * kDay).notices, 2);
  EXPECT_EQ(Sweep(kT0 + 10 * kDay + 1).notices, 0);
  EXPECT_EQ(Sweep(kT0 + 10 * kDay + kHour).notices, 1);  // b: due every day at 1h past t0
  EXPECT_EQ(Sweep(kT0 + 11 * kDay).notices, 1);          // a: due every day at t0
  // b's next notice would fall after its expiry; the expiry happens on time instead.
  EXPECT_EQ(Sweep(kT0 + 30 * kDay - 1).notices, 2);
  const SweepReport r = Sweep(kT0 + 30 * kDay);
  EXPECT_EQ(r.expired, 2);
  EXPECT_TRUE(h.Mailbox("bthft")->messages.empty());
  EXPECT_TRUE(h.Mailbox("bradford-csc")->messages.empty());
}

TEST_F(SweepTest, TheRecipientsAreaAuditAgencyIsNotified) {
  auto r = h.Push("wyp", MakePush("wyp", "X", {"cuh"}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Sweep(kT0 + kDay).notices, 1);
  EXPECT_EQ(Notices(h, "cambs-audit").size(), 1u);
  EXPECT_TRUE(Notices(h, "bradford-audit").empty());
  auto overdue = AllEntries(h, Filter({{"action", "delivery_overdue"}}));
  ASSERT_EQ(overdue.size(), 1u);
  EXPECT_EQ(overdue[0].detail["notified"], json({"wyp", "cambs-audit"}));
  // Notices are messages too: acked like any other.
  auto notice = Notices(h, "wyp");
  ASSERT_EQ(notice.size(), 1u);
  ASSERT_TRUE(h.Ack("wyp", notice[0].message_id).ok());
  EXPECT_TRUE(Notices(h, "wyp").empty());
  EXPECT_EQ(Sweep(kT0 + 2 * kDay).notices, 1) << "notices never raise notices of their own";
  EXPECT_EQ(Notices(h, "wyp").size(), 1u);
}

}  // namespace
}  // namespace safegate
