/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of log records and
 * checkpoints.  Chosen over zlib's CRC-32 because x86-64 (SSE4.2) and
 * ARMv8 compute it in hardware, and its error detection is better for the
 * short records of a log.
 */
#ifndef AKIDB_CRC32C_H
#define AKIDB_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend `crc` (0 to start) with len bytes at p.  Thread safe. */
uint32_t akidb__crc32c(uint32_t crc, const void *p, size_t len);

#endif
