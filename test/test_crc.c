/*
 * test_crc.c - lib/common/crc.c: CRC-32C (log, checkpoints, checked store
 * reads) and zlib's CRC-32 (Parquet pages).
 *
 * Published check values, then a bitwise reference at every length up to
 * 300 bytes from every alignment 0..7 (the fast paths start at 8-byte
 * alignment and, for CRC-32's carry-less multiply, at 64 bytes), and
 * incremental == one shot at every split.  test_parquet.c's parquet_crc32
 * checks CRC-32 again the way pages use it.
 */
#include "runner.h"
#include "helpers.h"

#include <stdint.h>

#include "common/crc.h"

/* One bit at a time, reflected: the definition, not an optimisation. */
static uint32_t crc_ref(uint32_t poly, const unsigned char *p, size_t len)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ poly : c >> 1;
    }
    return ~c;
}

TEST(crc_check_values)
{
    unsigned char zeros[32], ones[32], inc[32];
    for (int i = 0; i < 32; i++) {
        zeros[i] = 0;
        ones[i] = 0xFF;
        inc[i] = (unsigned char)i;
    }
    /* CRC-32C: the catalogue check value and RFC 3720 (iSCSI) B.4 */
    ASSERT_EQ(akidb__crc32c(0, "123456789", 9), 0xE3069283u);
    ASSERT_EQ(akidb__crc32c(0, zeros, 32), 0x8A9136AAu);
    ASSERT_EQ(akidb__crc32c(0, ones, 32), 0x62A8AB43u);
    ASSERT_EQ(akidb__crc32c(0, inc, 32), 0x46DD794Eu);
    ASSERT_EQ(akidb__crc32c(0, "", 0), 0);
    /* CRC-32: zlib's crc32() */
    ASSERT_EQ(akidb__crc32(0, "123456789", 9), 0xCBF43926u);
    ASSERT_EQ(akidb__crc32(0, zeros, 32), 0x190A55ADu);
    ASSERT_EQ(akidb__crc32(0, "", 0), 0);
}

TEST(crc_against_bitwise_reference)
{
    unsigned char buf[8 + 300];
    uint64_t s = 20240611;
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)splitmix64(&s);
    for (size_t start = 0; start < 8; start++)
        for (size_t len = 0; len <= 300; len++) {
            const unsigned char *p = buf + start;
            ASSERT_EQ(akidb__crc32c(0, p, len), crc_ref(0x82F63B78u, p, len));
            ASSERT_EQ(akidb__crc32(0, p, len), crc_ref(0xEDB88320u, p, len));
        }
}

TEST(crc_incremental_equals_one_shot)
{
    unsigned char buf[1000];
    uint64_t s = 7;
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)splitmix64(&s);
    const uint32_t whole_c = akidb__crc32c(0, buf, sizeof buf);
    const uint32_t whole_z = akidb__crc32(0, buf, sizeof buf);
    for (size_t cut = 0; cut <= sizeof buf; cut++) {
        ASSERT_EQ(akidb__crc32c(akidb__crc32c(0, buf, cut), buf + cut, sizeof buf - cut),
                  whole_c);
        ASSERT_EQ(akidb__crc32(akidb__crc32(0, buf, cut), buf + cut, sizeof buf - cut),
                  whole_z);
    }
    /* the two polynomials really differ */
    ASSERT_NE(whole_c, whole_z);
}
