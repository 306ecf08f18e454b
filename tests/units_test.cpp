#include <gtest/gtest.h>

#include "common/errors.h"
#include "common/units.h"

using v4b::parse_size;

TEST(Units, ParsesPlainAndSuffixedSizes) {
  EXPECT_EQ(parse_size("4096"), 4096);
  EXPECT_EQ(parse_size("4k"), 4096);
  EXPECT_EQ(parse_size("128K"), 131072);
  EXPECT_EQ(parse_size("1m"), 1048576);
  EXPECT_EQ(parse_size("2g"), int64_t{2} << 30);
  EXPECT_EQ(v4b::parse_size_list("4k,128k,1m"), (std::vector<int64_t>{4096, 131072, 1048576}));
}

TEST(Units, RejectsBadSizes) {
  for (const char* bad : {"", "abc", "-4", "0", "4kk", "k", "1.5k", "4 k", "99999999999999999999", "9000000000g"}) {
    EXPECT_THROW(parse_size(bad), v4b::UsageError) << bad;
  }
  EXPECT_THROW(v4b::parse_size_list("4k,,8k"), v4b::UsageError);
}

TEST(Units, FormatsWithLargestExactSuffix) {
  EXPECT_EQ(v4b::format_size(4096), "4k");
  EXPECT_EQ(v4b::format_size(1048576), "1m");
  EXPECT_EQ(v4b::format_size(1000), "1000");
  EXPECT_EQ(v4b::format_size(int64_t{3} << 30), "3g");
}
