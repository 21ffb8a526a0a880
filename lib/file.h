/*
 * file.h - small POSIX file helpers shared by the log and the checkpoints:
 * full writes and reads that retry on EINTR and short counts, and the
 * directory fsync that makes a create or rename durable.
 */
#ifndef AKIDB_FILE_H
#define AKIDB_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* 0, or an errno value. */
int akidb__pwrite_all(int fd, const void *buf, size_t len, uint64_t offset);
/* Bytes read (short only at end of file), or -errno. */
ssize_t akidb__pread_full(int fd, void *buf, size_t len, uint64_t offset);
/* fsync the directory holding `path` (the file's own name is stripped). */
int akidb__fsync_parent(const char *path);
/* fsync a directory by its path. */
int akidb__fsync_dir(const char *dir);

#endif
