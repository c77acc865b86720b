#include "daemon/core/time_format.h"

#include <gtest/gtest.h>

namespace safegate::core {
namespace {

TEST(TimeFormatTest, Formats) {
  EXPECT_EQ(FormatTimeMs(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatTimeMs(1795282440123), "2026-11-21T17:34:00.123Z");
  EXPECT_EQ(FormatTimeMs(951782400000), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(FormatTimeMs(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatTimeMs(INT64_MAX), "9999-12-31T23:59:59.999Z");
}

TEST(TimeFormatTest, Parses) {
  EXPECT_EQ(ParseTimeMs("2026-11-21T17:34:00.123Z"), 1795282440123);
  EXPECT_EQ(ParseTimeMs("2026-11-21T17:34:00Z"), 1795282440000);
  EXPECT_EQ(ParseTimeMs("2026-11-21t17:34:00.1234567z"), 1795282440123);
  EXPECT_EQ(ParseTimeMs("2026-11-21T18:34:00.5+01:00"), 1795282440500);
  EXPECT_EQ(ParseTimeMs("2026-11-21T16:34:00-01:00"), 1795282440000);
  EXPECT_EQ(ParseTimeMs("1969-12-31T23:59:59.999Z"), -1);
  for (int64_t ms :
       {int64_t{0}, int64_t{-86400001}, int64_t{1795282440123}, int64_t{4102444800999}}) {
    EXPECT_EQ(ParseTimeMs(FormatTimeMs(ms)), ms);
  }
}

TEST(TimeFormatTest, RejectsWhatIsNotADateTime) {
  for (const char* bad :
       {"", "2026-11-21", "2026-11-21T17:34Z", "2026-11-21T17:34:00", "2026-13-01T00:00:00Z",
        "2026-02-29T00:00:00Z", "2026-11-31T00:00:00Z", "2026-11-21T24:00:00Z",
        "2026-11-21T17:34:60Z", "2026-11-21T17:34:00.Z", "2026-11-21T17:34:00.1234567890Z",
        "2026-11-21T17:34:00+0100", "2026-11-21T17:34:00Z ", " 2026-11-21T17:34:00Z",
        "2026/11/21T17:34:00Z", "20261121T173400Z"}) {
    EXPECT_FALSE(ParseTimeMs(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace safegate::core
