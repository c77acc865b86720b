#include "daemon/audit/encoding.h"

#include <gtest/gtest.h>

namespace safegate::audit {
namespace {

TEST(Encoding, HexRoundTripsAndIsStrict) {
  const std::string bytes("\x00\x01\xab\xff", 4);
  EXPECT_EQ(ToHex(bytes), "0001abff");
  EXPECT_EQ(FromHex("0001abff"), bytes);
  EXPECT_EQ(FromHex(""), std::string());
  EXPECT_FALSE(FromHex("0001ABFF").has_value());  // the API promises lower case
  EXPECT_FALSE(FromHex("abc").has_value());
  EXPECT_FALSE(FromHex("zz").has_value());
  EXPECT_FALSE(FromHex(" 00").has_value());
  EXPECT_FALSE((FixedFromHex<2>("0001ab").has_value()));
  EXPECT_EQ((FixedFromHex<2>("01ab")->at(1)), 0xab);
}

TEST(Encoding, Base64RoundTripsAndIsCanonical) {
  EXPECT_EQ(ToBase64(std::string_view("")), "");
  EXPECT_EQ(ToBase64(std::string_view("f")), "Zg==");
  EXPECT_EQ(ToBase64(std::string_view("fo")), "Zm8=");
  EXPECT_EQ(ToBase64(std::string_view("foo")), "Zm9v");
  EXPECT_EQ(ToBase64(std::string_view("\xfb\xff", 2)), "+/8=");
  for (std::string_view s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    EXPECT_EQ(FromBase64(ToBase64(s)), std::string(s));
  }
  EXPECT_FALSE(FromBase64("Zg").has_value());      // padding required
  EXPECT_FALSE(FromBase64("Zh==").has_value());    // non-zero padding bits
  EXPECT_FALSE(FromBase64("-_8=").has_value());    // URL-safe alphabet
  EXPECT_FALSE(FromBase64("Zm9v\n").has_value());  // whitespace
  EXPECT_FALSE(FromBase64("Zm9v====").has_value());
  EXPECT_FALSE(FromBase64("Z===").has_value());
}

}  // namespace
}  // namespace safegate::audit
