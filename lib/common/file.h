/*
 * file.h - small POSIX file helpers shared by the log, the checkpoints and
 * the importer: full writes and reads that retry on EINTR and short
 * counts, the directory fsync that makes a create or rename durable, and
 * mapping a whole file.
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
/* Create the directory holding `path` (one level, with `mode`), for files
 * whose directory was deleted under an open handle: 0 (also when it
 * exists), or an errno value. */
int akidb__mkdir_parent(const char *path, unsigned mode);

/* Map the whole regular file at `path` read-only (one map_file for the
 * library: checkpoints, snapshot copies, import files).  An empty file
 * gives *data NULL and *len 0.  Returns AKIDB_OK, AKIDB_NOTFOUND (no such
 * file; no message recorded, so callers that expect it stay quiet),
 * AKIDB_INVALID (not a regular file), AKIDB_NOMEM (no address space),
 * AKIDB_IOERR; messages name the path.  Release with akidb__unmap_file. */
int akidb__map_file(const char *path, const void **data, size_t *len);
void akidb__unmap_file(const void *data, size_t len);

#endif
