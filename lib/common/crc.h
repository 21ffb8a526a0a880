/*
 * crc.h - the two CRCs of the formats the library writes.
 *
 *   CRC-32C (Castagnoli, polynomial 0x1EDC6F41)   log records, log headers,
 *       the whole-file checksum of checkpoints, checked store reads.  Chosen
 *       for what the library defines itself because x86-64 (SSE4.2) and
 *       ARMv8 compute it in hardware, and its error detection is better for
 *       the short records of a log.
 *   CRC-32 (zlib's crc32(), polynomial 0x04C11DB7)   Parquet page
 *       checksums: the Parquet format fixes this one.
 *
 * Both are reflected, start from 0 and are extended incrementally:
 * crc(crc(0, a), b) == crc(0, a || b).  Thread safe (tables are built once
 * under pthread_once and constant afterwards); no allocation, no errors.
 */
#ifndef AKIDB_CRC_H
#define AKIDB_CRC_H

#include <stddef.h>
#include <stdint.h>

/* Extend `crc` (0 to start) with len bytes at p: CRC-32C. */
uint32_t akidb__crc32c(uint32_t crc, const void *p, size_t len);

/* Extend `crc` (0 to start) with len bytes at p: CRC-32 as zlib's crc32()
 * computes it (akidb__crc32(0, "123456789", 9) == 0xCBF43926). */
uint32_t akidb__crc32(uint32_t crc, const void *p, size_t len);

#endif
