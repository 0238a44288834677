#include "base/result.h"

#include <gtest/gtest.h>

#include "base/errc.h"

using namespace sluice;

TEST(result, value_and_error) {
    result<int> a = 5;
    ASSERT_TRUE(a);
    EXPECT_EQ(*a, 5);
    result<int> b = base::errc::malformed;
    ASSERT_FALSE(b);
    EXPECT_TRUE(b.error().is(base::errc::malformed));
    EXPECT_NE(b.error().describe().find("malformed"), std::string::npos);
    result<void> c = error(base::errc::limit_exceeded, "frame of 9 GB");
    EXPECT_FALSE(c);
    EXPECT_NE(c.error().describe().find("frame of 9 GB"), std::string::npos);
    EXPECT_DEATH({ (void)b.value(); }, "malformed");
}
