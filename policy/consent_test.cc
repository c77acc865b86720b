#include "policy/consent.h"

#include <gtest/gtest.h>

#include <vector>

namespace safegate::policy {
namespace {

std::chrono::system_clock::time_point At(const char* text) { return *ParseTimestamp(text); }

const std::string kAnn = "nhs:9990000018";
const std::string kAnnCsc = "csc:bradford:BRA-1";
const std::string kBen = "nhs:9990000026";

TEST(LatestConsent, NoStatementIsNone) {
  std::vector<ConsentStatement> none;
  EXPECT_EQ(LatestConsent(none, kAnn, Purpose::kSafeguarding), ConsentState::kNone);
}

TEST(LatestConsent, TheLatestStatementWinsWhateverTheOrderGiven) {
  std::vector<ConsentStatement> s = {
      {kAnn, Purpose::kSafeguarding, ConsentState::kWithdrawn, At("2024-03-01T00:00:00Z")},
      {kAnn, Purpose::kSafeguarding, ConsentState::kGiven, At("2024-01-01T00:00:00Z")},
  };
  EXPECT_EQ(LatestConsent(s, kAnn, Purpose::kSafeguarding), ConsentState::kWithdrawn);
  // A new consent after the withdrawal restores sharing.
  s.push_back({kAnn, Purpose::kSafeguarding, ConsentState::kGiven, At("2024-04-01T00:00:00Z")});
  EXPECT_EQ(LatestConsent(s, kAnn, Purpose::kSafeguarding), ConsentState::kGiven);
  // Then a refusal.
  s.push_back({kAnn, Purpose::kSafeguarding, ConsentState::kRefused, At("2024-04-01T00:00:01Z")});
  EXPECT_EQ(LatestConsent(s, kAnn, Purpose::kSafeguarding), ConsentState::kRefused);
}

TEST(LatestConsent, IsPerSubjectAndPerPurpose) {
  std::vector<ConsentStatement> s = {
      {kAnn, Purpose::kSafeguarding, ConsentState::kRefused, At("2024-03-01T00:00:00Z")},
      {kAnn, Purpose::kScheduledCare, ConsentState::kGiven, At("2024-03-02T00:00:00Z")},
      {kBen, Purpose::kSafeguarding, ConsentState::kGiven, At("2024-03-03T00:00:00Z")},
  };
  EXPECT_EQ(LatestConsent(s, kAnn, Purpose::kSafeguarding), ConsentState::kRefused);
  EXPECT_EQ(LatestConsent(s, kAnn, Purpose::kScheduledCare), ConsentState::kGiven);
  EXPECT_EQ(LatestConsent(s, kAnn, Purpose::kS47Enquiry), ConsentState::kNone);
  EXPECT_EQ(LatestConsent(s, kBen, Purpose::kSafeguarding), ConsentState::kGiven);
}

TEST(LatestConsent, ATieResolvesToTheMoreRestrictiveStatement) {
  auto t = At("2024-03-01T00:00:00Z");
  std::vector<ConsentStatement> s = {
      {kAnn, Purpose::kSafeguarding, ConsentState::kRefused, t},
      {kAnn, Purpose::kSafeguarding, ConsentState::kGiven, t},
  };
  EXPECT_EQ(LatestConsent(s, kAnn, Purpose::kSafeguarding), ConsentState::kRefused);
  std::swap(s[0], s[1]);
  EXPECT_EQ(LatestConsent(s, kAnn, Purpose::kSafeguarding), ConsentState::kRefused);
}

TEST(LatestConsent, StatementsUnderAnyOfTheSubjectsReferencesCount) {
  std::vector<ConsentStatement> s = {
      {kAnn, Purpose::kSafeguarding, ConsentState::kGiven, At("2024-03-01T00:00:00Z")},
      {kAnnCsc, Purpose::kSafeguarding, ConsentState::kWithdrawn, At("2024-03-05T00:00:00Z")},
      {kBen, Purpose::kSafeguarding, ConsentState::kGiven, At("2024-03-09T00:00:00Z")},
  };
  std::vector<std::string> refs = {kAnn, kAnnCsc};
  EXPECT_EQ(LatestConsent(s, refs, Purpose::kSafeguarding), ConsentState::kWithdrawn);
  EXPECT_EQ(LatestConsent(s, kAnn, Purpose::kSafeguarding), ConsentState::kGiven);
}

TEST(LatestConsent, NoneStatementsAreIgnored) {
  std::vector<ConsentStatement> s = {
      {kAnn, Purpose::kSafeguarding, ConsentState::kRefused, At("2024-03-01T00:00:00Z")},
      {kAnn, Purpose::kSafeguarding, ConsentState::kNone, At("2024-03-05T00:00:00Z")},
  };
  EXPECT_EQ(LatestConsent(s, kAnn, Purpose::kSafeguarding), ConsentState::kRefused);
}

}  // namespace
}  // namespace safegate::policy
