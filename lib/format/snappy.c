/*
 * snappy.c - SNAPPY block decompression (google/snappy
 * format_description.txt), written here so reading other tools' Parquet
 * files needs no extra library.
 *
 * Block layout: ULEB128 uncompressed length (at most 32 bits), then
 * elements, each starting with a tag byte whose low 2 bits say:
 *   00 literal   length-1 in the upper 6 bits; 60..63 mean the length-1
 *                follows in 1..4 little-endian bytes; then the bytes
 *   01 copy      length 4..11 = 4 + bits 2..4, offset 11 bits: bits 5..7
 *                are the high 3, the next byte the low 8
 *   10 copy      length 1..64 = 1 + upper 6 bits, offset u16 LE
 *   11 copy      length 1..64, offset u32 LE
 * A copy repeats `length` bytes starting `offset` bytes back in the output
 * and may overlap itself (offset < length repeats a pattern).  Offset 0, an
 * offset before the start of the output, a literal past the end of the
 * input, or output longer or shorter than announced are all errors.
 */
#include <stdint.h>
#include <string.h>
#include "format/snappy.h"

int akidb__snappy_length(const void *src, size_t src_len, size_t *out_len, size_t *err_pos)
{
    const unsigned char *s = src;
    uint64_t v = 0;
    for (size_t i = 0; i < 5; i++) {
        if (i >= src_len) {
            *err_pos = src_len;
            return -1;
        }
        v |= (uint64_t)(s[i] & 0x7F) << (7 * i);
        if (!(s[i] & 0x80)) {
            if (v > UINT32_MAX) {
                *err_pos = i;
                return -1;
            }
            *out_len = (size_t)v;
            return 0;
        }
    }
    *err_pos = 4;
    return -1;
}

int akidb__snappy_decompress(const void *src, size_t src_len, void *dst, size_t dst_len,
                             size_t *err_pos)
{
    const unsigned char *s = src;
    unsigned char *d = dst;
    size_t ip, op = 0, n;
    size_t len;

    if (akidb__snappy_length(src, src_len, &n, err_pos))
        return -1;
    if (n != dst_len) {
        *err_pos = 0;
        return -1;
    }
    ip = 0;
    while (s[ip] & 0x80)
        ip++;
    ip++;

    while (ip < src_len) {
        size_t at = ip;
        unsigned tag = s[ip++];
        size_t off;
        switch (tag & 3) {
        case 0:
            len = tag >> 2;
            if (len >= 60) {
                size_t nb = len - 59;
                if (src_len - ip < nb)
                    goto bad;
                len = 0;
                for (size_t i = 0; i < nb; i++)
                    len |= (size_t)s[ip + i] << (8 * i);
                ip += nb;
            }
            len += 1;
            if (src_len - ip < len || dst_len - op < len)
                goto bad;
            memcpy(d + op, s + ip, len);
            ip += len;
            op += len;
            continue;
        case 1:
            if (src_len - ip < 1)
                goto bad;
            len = 4 + ((tag >> 2) & 7);
            off = (size_t)(tag >> 5) << 8 | s[ip];
            ip += 1;
            break;
        case 2:
            if (src_len - ip < 2)
                goto bad;
            len = 1 + (tag >> 2);
            off = (size_t)s[ip] | (size_t)s[ip + 1] << 8;
            ip += 2;
            break;
        default:
            if (src_len - ip < 4)
                goto bad;
            len = 1 + (tag >> 2);
            off = (size_t)s[ip] | (size_t)s[ip + 1] << 8 | (size_t)s[ip + 2] << 16 |
                  (size_t)s[ip + 3] << 24;
            ip += 4;
            break;
        }
        if (off == 0 || off > op || dst_len - op < len) {
            *err_pos = at;
            return -1;
        }
        if (off >= len) {
            memcpy(d + op, d + op - off, len);
        } else {
            /* Overlapping: the source is the output being produced. */
            const unsigned char *from = d + op - off;
            for (size_t i = 0; i < len; i++)
                d[op + i] = from[i];
        }
        op += len;
        continue;
bad:
        *err_pos = at;
        return -1;
    }
    if (op != dst_len) {
        *err_pos = src_len;
        return -1;
    }
    return 0;
}
