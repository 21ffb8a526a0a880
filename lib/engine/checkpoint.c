/*
 * checkpoint.c - a collection written to one file and read back, so that
 * reopening loads the saved graph instead of replaying the whole log or
 * rebuilding the index.
 *
 * A checkpoint is a Parquet file in the snapshot format (snapshot.c) of
 * the "checkpoint" kind: every node in node order, tombstones flagged in a
 * hnsw_deleted column, links and entry point verbatim, and the level
 * generator's state, so a reopened collection is the very graph that was
 * saved and grows exactly as the original would have.  Writes are
 * acknowledged before they are linked into the graph, so the checkpoint
 * holds "graph + tail": the nodes not linked yet are its last rows, with
 * their levels and no links, and akidb.hnsw_linked_rows says where they
 * start (snapshot.c); a reopen puts them back in the tail, and the
 * indexer links them after akidb_open returns.  Writing one never waits
 * for the indexer.  DuckDB and the
 * other tools read it like any snapshot.  Its key_value_metadata adds
 *
 *   akidb.collection_id   the catalog's id of the collection
 *   akidb.last_seq        the last log record the state includes
 *   akidb.file_crc32c     CRC-32C of the whole file, 8 hex digits
 *
 * The whole-file checksum is there because Parquet protects pages (page
 * CRC-32) but not its footer, and a flipped digit of last_seq or next_id
 * in the footer would otherwise load as valid and silently replay the
 * wrong records.  A file cannot hold its own checksum, so the value is
 * computed with its eight digits set to '0' and written over them last;
 * a reader finds the digits by their unique encoding in the footer (the
 * key, then the Thrift field header and length of an 8-byte value).  The
 * footer holds no user data (no column statistics are written, and a
 * collection name is [A-Za-z0-9_-]), so nothing else can spell that.
 *
 * Writing is atomic: PATH.tmp is written and fsync'ed, renamed over PATH,
 * and the directory fsync'ed; a crash at any point leaves either the old
 * checkpoint or the new one, and the log still holds everything after the
 * old one.  A checkpoint directory deleted under an open handle is made
 * again: the state in RAM is then the only complete copy, and writing it
 * out is what saves it.
 *
 * Reading streams the file: the footer is read first, then each row group
 * into one reused window (pread), where its bytes are added to the
 * whole-file checksum and decoded into the index while they are in the
 * CPU's caches; the checksum is compared once the last byte has been
 * counted, and a mismatch makes the whole load AKIDB_CORRUPT whatever the
 * decoder made of the damage (the collection being loaded is discarded by
 * the caller, as on any error).  Reading through a mapping instead cost
 * two passes over the mapped pages (checksum, then decode): on the VMs
 * measured (docs/BENCHMARKS.md, tiering) each pass over a 205 MB mapping
 * took 90 ms against 25-40 ms for pread + checksum of the same file, and
 * a WARM -> HOT promotion is exactly this load.  Checkpoints held in
 * memory (a cold object just downloaded) are checked first and then
 * decoded, as before.  An intact checkpoint of another akidb.format (a
 * newer library's) is AKIDB_INVALID, not damage (docs/FORMATS.md,
 * "Versions and upgrades").
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/alloc.h"
#include "engine/checkpoint.h"
#include "common/crc.h"
#include "common/file.h"
#include "format/parquet.h"
#include "engine/snapshot.h"

#define CRC_KEY "akidb.file_crc32c"
#define CRC_PLACEHOLDER "00000000"
/* The key's bytes, then the header of KeyValue's field 2 (compact
 * protocol: field delta 1 in the high nibble, type BINARY = 8 in the low)
 * and the value's length, 8: what precedes the digits. */
#define CRC_MARKER CRC_KEY "\x18\x08"
#define CRC_MARKER_LEN (sizeof CRC_MARKER - 1)
#define MAX_FOOTER ((size_t)64 << 20)

typedef struct ckpt_sink {
    int fd;
    const char *path;
    uint64_t off;
    uint32_t crc;
} ckpt_sink;

static int sink_write(void *ctx, const void *buf, size_t len)
{
    ckpt_sink *s = ctx;
    int err = akidb__pwrite_all(s->fd, buf, len, s->off);
    if (err)
        return akidb__err(AKIDB_IOERR, "%s: write failed: %s", s->path, strerror(err));
    s->crc = akidb__crc32c(s->crc, buf, len);
    s->off += len;
    return AKIDB_OK;
}

/* The offset of the checksum digits within footer[0..len), or -1 unless
 * the marker occurs exactly once. */
static int64_t find_crc_digits(const unsigned char *footer, size_t len)
{
    int64_t at = -1;
    const unsigned char *p = footer, *end = footer + len;
    while ((size_t)(end - p) >= CRC_MARKER_LEN + 8) {
        const unsigned char *hit = memmem(p, (size_t)(end - p), CRC_MARKER, CRC_MARKER_LEN);
        if (!hit || (size_t)(end - hit) < CRC_MARKER_LEN + 8)
            break;
        if (at >= 0)
            return -1;
        at = hit - footer + (int64_t)CRC_MARKER_LEN;
        p = hit + 1;
    }
    return at;
}

/* Where the footer of a size-byte Parquet file starts, from its last 8
 * bytes (tail); 0 when the tail is not Parquet's. */
static uint64_t footer_start(const unsigned char tail[8], uint64_t size)
{
    uint32_t footer_len;
    memcpy(&footer_len, tail, 4);
    if (memcmp(tail + 4, "PAR1", 4) != 0 || footer_len > MAX_FOOTER ||
        (uint64_t)footer_len + 12 > size)
        return 0;
    return size - 8 - footer_len;
}

/* Put the checksum over its placeholder in the finished file. */
static int seal(const akidb__env *env, ckpt_sink *s)
{
    unsigned char tail[8];
    uint64_t size = s->off, start;
    if (akidb__pread_full(s->fd, tail, 8, size - 8) != 8 || !(start = footer_start(tail, size)))
        return akidb__err(AKIDB_IOERR, "%s: cannot read back the footer just written", s->path);
    size_t len = (size_t)(size - 8 - start);
    unsigned char *footer = akidb__malloc(&env->alloc, len ? len : 1);
    if (!footer)
        return akidb__err(AKIDB_NOMEM, "%s: out of memory", s->path);
    int rc = AKIDB_OK;
    int64_t at;
    if (akidb__pread_full(s->fd, footer, len, start) != (ssize_t)len ||
        (at = find_crc_digits(footer, len)) < 0 ||
        memcmp(footer + at, CRC_PLACEHOLDER, 8) != 0) {
        rc = akidb__err(AKIDB_IOERR, "%s: cannot find the checksum placeholder in the footer "
                        "just written", s->path);
    } else {
        char digits[9];
        snprintf(digits, sizeof digits, "%08" PRIx32, s->crc);
        int err = akidb__pwrite_all(s->fd, digits, 8, start + (uint64_t)at);
        if (err)
            rc = akidb__err(AKIDB_IOERR, "%s: write failed: %s", s->path, strerror(err));
    }
    akidb__free(&env->alloc, footer);
    return rc;
}

int akidb__ckpt_write(const akidb__env *env, const akidb__collection *c, const char *path,
                      uint64_t coll_id, uint64_t last_seq)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return akidb__err(AKIDB_INVALID, "%s: path too long", path);
    int err = akidb__fault(env, AKIDB__FAULT_CKPT_WRITE);
    if (err)
        return akidb__err(AKIDB_IOERR, "%s: cannot write checkpoint: %s", tmp, strerror(err));

    ckpt_sink s = { -1, tmp, 0, 0 };
    const unsigned mode = akidb__env_file_mode(env);
    s.fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (s.fd < 0 && errno == ENOENT && akidb__mkdir_parent(tmp, akidb__env_dir_mode(env)) == 0)
        s.fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (s.fd < 0)
        return akidb__err(AKIDB_IOERR, "%s: cannot create: %s", tmp, strerror(errno));
    char kv_id[24], kv_seq[24];
    snprintf(kv_id, sizeof kv_id, "%" PRIu64, coll_id);
    snprintf(kv_seq, sizeof kv_seq, "%" PRIu64, last_seq);
    const char *keys[] = { "akidb.collection_id", "akidb.last_seq", CRC_KEY };
    const char *vals[] = { kv_id, kv_seq, CRC_PLACEHOLDER };
    int rc = akidb__snap_encode_exact(env, c, keys, vals, 3, sink_write, &s, tmp);
    if (rc)
        goto done;
    if ((rc = seal(env, &s)))
        goto done;
    if (fsync(s.fd) != 0) {
        rc = akidb__err(AKIDB_IOERR, "%s: fsync failed: %s", tmp, strerror(errno));
        goto done;
    }
    if ((err = akidb__fault(env, AKIDB__FAULT_CKPT_BEFORE_RENAME)) != 0) {
        rc = akidb__err(AKIDB_IOERR, "%s: cannot rename: %s", tmp, strerror(err));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        rc = akidb__err(AKIDB_IOERR, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        goto done;
    }
    if ((err = akidb__fsync_parent(path)) != 0)
        rc = akidb__err(AKIDB_IOERR, "%s: cannot sync directory: %s", path, strerror(err));
done:
    close(s.fd);
    if (rc != AKIDB_OK)
        unlink(tmp);
    return rc;
}

/* The checksum check: AKIDB_OK when the file's CRC-32C matches its
 * akidb.file_crc32c digits. */
static int verify(const unsigned char *p, uint64_t size, const char *path)
{
    uint64_t start = size >= 12 ? footer_start(p + size - 8, size) : 0;
    if (memcmp(p, "PAR1", 4) != 0 || !start)
        return akidb__err(AKIDB_CORRUPT, "%s: checkpoint is truncated or not a Parquet file "
                          "(%" PRIu64 " bytes)", path, size);
    int64_t at = find_crc_digits(p + start, (size_t)(size - 8 - start));
    if (at < 0)
        return akidb__err(AKIDB_CORRUPT, "%s: checkpoint footer (at offset %" PRIu64 ") has no "
                          "intact %s", path, start, CRC_KEY);
    uint64_t digits_at = start + (uint64_t)at;
    char digits[9];
    memcpy(digits, p + digits_at, 8);
    digits[8] = '\0';
    char *end;
    unsigned long stored = strtoul(digits, &end, 16);
    uint32_t crc = akidb__crc32c(0, p, (size_t)digits_at);
    crc = akidb__crc32c(crc, CRC_PLACEHOLDER, 8);
    crc = akidb__crc32c(crc, p + digits_at + 8, (size_t)(size - digits_at - 8));
    if (*end || digits[0] == '-' || digits[0] == '+' || digits[0] == ' ' || stored != crc)
        return akidb__err(AKIDB_CORRUPT, "%s: checkpoint checksum mismatch (stored \"%s\", "
                          "computed %08" PRIx32 ")", path, digits, crc);
    return AKIDB_OK;
}

/*
 * A checkpoint whose checksum matched was written this way, so anything
 * the decoder refuses -- even what it would call unsupported in a foreign
 * file -- means the catalog and the file disagree: AKIDB_CORRUPT, with the
 * decoder's message, prefixed by the path when it lacks one.
 */
static int reraise(int rc, const char *path)
{
    if (rc == AKIDB_NOMEM || rc == AKIDB_IOERR)
        return rc;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", akidb__errmsg());
    return path ? akidb__err(AKIDB_CORRUPT, "%s: %s", path, msg)
                : akidb__err(AKIDB_CORRUPT, "%s", msg);
}

static int binary_checkpoint(const unsigned char *head, uint64_t size, const char *path)
{
    if (size >= 8 && memcmp(head, "AKIDBCKP", 8) == 0)
        return akidb__err(AKIDB_INVALID, "%s: a binary checkpoint of a pre-release build; this "
                          "version reads Parquet checkpoints only", path);
    return AKIDB_OK;
}

/* The checkpoint behind reader r (its pages covered by the whole-file
 * checksum, checked before or after by the caller) into c. */
static int load_reader(const akidb__env *env, akidb__collection *c, akidb__pqr *r,
                       const char *path, uint64_t coll_id, uint64_t *last_seq_out)
{
    uint64_t got_id = 0, got_seq = 0;
    int rc;
    akidb__pqr_trust_pages(r);
    /* Intact (the checksum matched) but of another layout version: a newer
     * library wrote it.  That is INVALID, not damage (docs/FORMATS.md). */
    const char *fmt = akidb__pqr_kv(r, "akidb.format");
    if (fmt && strcmp(fmt, AKIDB__SNAP_FORMAT) != 0 && strcmp(fmt, AKIDB__SNAP_FORMAT_TAIL) != 0)
        return akidb__err(AKIDB_INVALID, "%s: checkpoint of format %.20s; this library reads "
                          "formats %s and %s (was the database opened by a newer libakidb?)",
                          path, fmt, AKIDB__SNAP_FORMAT, AKIDB__SNAP_FORMAT_TAIL);
    const char *kind = akidb__pqr_kv(r, "akidb.kind");
    if (!kind || strcmp(kind, "checkpoint") != 0)
        return akidb__err(AKIDB_CORRUPT, "%s: not a checkpoint (akidb.kind is %s)", path,
                          kind ? kind : "missing");
    if ((rc = akidb__snap_kv_u64(r, "akidb.collection_id", &got_id, path)) ||
        (rc = akidb__snap_kv_u64(r, "akidb.last_seq", &got_seq, path)))
        return rc;
    if (got_id != coll_id)
        return akidb__err(AKIDB_CORRUPT, "%s: checkpoint belongs to collection %" PRIu64 ", the "
                          "catalog says %" PRIu64, path, got_id, coll_id);
    /* The settings (dim, metric, M) are the loader's to check against c,
     * which has the catalog's; a mismatch comes back as INVALID and is
     * reraised as CORRUPT. */
    if ((rc = akidb__snap_load_reader(env, r, path, c)))
        return reraise(rc, NULL);
    *last_seq_out = got_seq;
    return AKIDB_OK;
}

/* Load the checkpoint bytes p[0..size) (`path` names them in messages). */
static int load_bytes(const akidb__env *env, akidb__collection *c, const unsigned char *p,
                      uint64_t size, const char *path, uint64_t coll_id, uint64_t *last_seq_out,
                      int checked)
{
    if (size < 12)
        return akidb__err(AKIDB_CORRUPT, "%s: checkpoint is truncated (%" PRIu64 " bytes)",
                          path, size);
    akidb__pqr *r = NULL;
    int rc = binary_checkpoint(p, size, path);
    if (rc == AKIDB_OK && !checked)
        rc = verify(p, size, path);
    if (rc == AKIDB_OK && (rc = akidb__pqr_open(p, (size_t)size, &env->alloc, &r)))
        rc = reraise(rc, path);
    if (rc == AKIDB_OK)
        rc = load_reader(env, c, r, path, coll_id, last_seq_out);
    akidb__pqr_free(r);
    return rc;
}

/* ---- streaming a checkpoint file ------------------------------------- */

typedef struct ckpt_stream {
    const akidb__env *env;
    int fd;
    const char *path;
    uint64_t size;
    unsigned char *win;         /* the reused window (fetch) */
    size_t win_cap;
    uint64_t crc_upto;          /* file bytes [0, crc_upto) are in crc */
    uint32_t crc;
    uint64_t digits_at;         /* the akidb.file_crc32c digits: counted as CRC_PLACEHOLDER */
} ckpt_stream;

static int stream_read(ckpt_stream *s, unsigned char *dst, uint64_t off, size_t len)
{
    ssize_t got = akidb__pread_full(s->fd, dst, len, off);
    if (got < 0)
        return akidb__err(AKIDB_IOERR, "%s: read at offset %" PRIu64 " failed: %s", s->path,
                          off, strerror((int)-got));
    if ((size_t)got != len)
        return akidb__err(AKIDB_CORRUPT, "%s: checkpoint shrank while it was read (%zd of %zu "
                          "bytes at offset %" PRIu64 ")", s->path, got, len, off);
    return AKIDB_OK;
}

/* Count file bytes [from, to), held at p, into the checksum: only those
 * past crc_upto (from <= crc_upto: no gap), the digits as the
 * placeholder they were computed with. */
static void stream_count(ckpt_stream *s, const unsigned char *p, uint64_t from, uint64_t to)
{
    if (to <= s->crc_upto)
        return;
    p += s->crc_upto - from;
    from = s->crc_upto;
    const uint64_t d0 = s->digits_at, d1 = s->digits_at + 8;
    if (from < d0) {
        uint64_t e = to < d0 ? to : d0;
        s->crc = akidb__crc32c(s->crc, p, (size_t)(e - from));
        p += e - from;
        from = e;
    }
    if (from < to && from < d1) {
        uint64_t e = to < d1 ? to : d1;
        s->crc = akidb__crc32c(s->crc, &CRC_PLACEHOLDER[from - d0], (size_t)(e - from));
        p += e - from;
        from = e;
    }
    if (from < to)
        s->crc = akidb__crc32c(s->crc, p, (size_t)(to - from));
    s->crc_upto = to;
}

/* The window: with the C library's allocator, a mapping of its own,
 * unmapped when the load ends, so that a promotion leaves no row group's
 * worth of heap behind (glibc would keep a freed block that size in the
 * heap, and the tier's memory budget is about RSS: tier.c); from the
 * embedder's allocator otherwise, and in sanitizer builds, whose
 * allocator is what catches a read past the window. */
static int window_mapped(const akidb__env *env)
{
    return !AKIDB__SANITIZED && env->alloc.malloc_fn == akidb__default_allocator.malloc_fn;
}

static void window_release(ckpt_stream *s)
{
    if (s->win && window_mapped(s->env))
        munmap(s->win, s->win_cap);
    else
        akidb__free(&s->env->alloc, s->win);
    s->win = NULL;
    s->win_cap = 0;
}

static int window_room(ckpt_stream *s, size_t n)
{
    if (n <= s->win_cap)
        return AKIDB_OK;
    window_release(s);
    if (window_mapped(s->env)) {
        void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        s->win = p == MAP_FAILED ? NULL : p;
        if (s->win)
            akidb__advise_huge(&s->env->alloc, s->win, n);
    } else {
        s->win = akidb__malloc(&s->env->alloc, n);
    }
    if (!s->win)
        return akidb__err(AKIDB_NOMEM, "%s: out of memory for a %zu-byte read window", s->path,
                          n);
    s->win_cap = n;
    return AKIDB_OK;
}

/* akidb__pqr_fetch_fn: file bytes [off, off + len) into the window.  Bytes
 * between what was counted and off are read too, so the checksum stays
 * one pass in file order (a checkpoint's row groups follow each other, so
 * that gap is its 4-byte magic once). */
static int stream_fetch(void *ctx, uint64_t off, size_t len, const unsigned char **bytes)
{
    ckpt_stream *s = ctx;
    if (off > s->size || len > s->size - off)
        return akidb__err(AKIDB_CORRUPT, "%s: read of %zu bytes at offset %" PRIu64 " is past "
                          "the end", s->path, len, off);
    uint64_t from = off < s->crc_upto ? off : s->crc_upto;
    size_t n = (size_t)(off + len - from);
    int rc = window_room(s, n ? n : 1);
    if (rc == AKIDB_OK)
        rc = stream_read(s, s->win, from, n);
    if (rc)
        return rc;
    stream_count(s, s->win, from, off + len);
    *bytes = s->win + (off - from);
    return AKIDB_OK;
}

/* Count the rest of the file, [crc_upto, size), and compare. */
static int stream_check(ckpt_stream *s, uint32_t stored)
{
    while (s->crc_upto < s->size) {
        uint64_t left = s->size - s->crc_upto;
        size_t n = left < ((size_t)4 << 20) ? (size_t)left : (size_t)4 << 20;
        int rc = window_room(s, n);
        if (rc == AKIDB_OK)
            rc = stream_read(s, s->win, s->crc_upto, n);
        if (rc)
            return rc;
        stream_count(s, s->win, s->crc_upto, s->crc_upto + n);
    }
    if (s->crc != stored)
        return akidb__err(AKIDB_CORRUPT, "%s: checkpoint checksum mismatch (stored %08" PRIx32
                          ", computed %08" PRIx32 ")", s->path, stored, s->crc);
    return AKIDB_OK;
}

/* The stored checksum: the 8 hex digits at footer[at] (checked as
 * verify() checks them). */
static int stored_crc(const unsigned char *digits_p, const char *path, uint32_t *out)
{
    char digits[9];
    memcpy(digits, digits_p, 8);
    digits[8] = '\0';
    char *end;
    unsigned long v = strtoul(digits, &end, 16);
    if (*end || digits[0] == '-' || digits[0] == '+' || digits[0] == ' ')
        return akidb__err(AKIDB_CORRUPT, "%s: checkpoint checksum mismatch (stored \"%s\" is "
                          "not 8 hex digits)", path, digits);
    *out = (uint32_t)v;
    return AKIDB_OK;
}

/* Open s->fd (already set) as a checkpoint: a regular file of at least
 * 12 bytes, not of the pre-release binary format; its first 8 bytes into
 * head and its footer (with its length and magic, from file offset
 * *start) into *tail, *tail_len bytes from the env's allocator. */
static int stream_footer(ckpt_stream *s, unsigned char head[8], unsigned char **tail,
                         size_t *tail_len, uint64_t *start)
{
    unsigned char end8[8];
    struct stat st;
    int rc;
    if (fstat(s->fd, &st) != 0)
        return akidb__err(AKIDB_IOERR, "%s: cannot stat: %s", s->path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return akidb__err(AKIDB_INVALID, "%s: not a regular file", s->path);
    s->size = (uint64_t)st.st_size;
    if (s->size < 12)
        return akidb__err(AKIDB_CORRUPT, "%s: checkpoint is truncated (%" PRIu64 " bytes)",
                          s->path, s->size);
    if ((rc = stream_read(s, head, 0, 8)) || (rc = binary_checkpoint(head, s->size, s->path)) ||
        (rc = stream_read(s, end8, s->size - 8, 8)))
        return rc;
    *start = footer_start(end8, s->size);
    if (memcmp(head, "PAR1", 4) != 0 || !*start)
        return akidb__err(AKIDB_CORRUPT, "%s: checkpoint is truncated or not a Parquet file "
                          "(%" PRIu64 " bytes)", s->path, s->size);
    *tail_len = (size_t)(s->size - *start);   /* footer, its length, magic: <= 64 MiB */
    if (!(*tail = akidb__malloc(&s->env->alloc, *tail_len)))
        return akidb__err(AKIDB_NOMEM, "%s: out of memory for a %zu-byte footer", s->path,
                          *tail_len);
    return stream_read(s, *tail, *start, *tail_len);
}

int akidb__ckpt_read(const akidb__env *env, akidb__collection *c, const char *path,
                     uint64_t coll_id, uint64_t *last_seq_out)
{
    ckpt_stream s = { .env = env, .path = path, .fd = -1 };
    unsigned char head[8], *tail = NULL;
    akidb__pqr *r = NULL;
    uint32_t stored = 0;
    uint64_t start = 0;
    size_t tail_len = 0;
    int rc;
    if ((s.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return errno == ENOENT ? AKIDB_NOTFOUND   /* silently: no checkpoint yet */
                               : akidb__err(AKIDB_IOERR, "%s: cannot open: %s", path,
                                            strerror(errno));
    if ((rc = stream_footer(&s, head, &tail, &tail_len, &start)))
        goto done;
    int64_t at = find_crc_digits(tail, tail_len - 8);
    if (at < 0) {
        rc = akidb__err(AKIDB_CORRUPT, "%s: checkpoint footer (at offset %" PRIu64 ") has no "
                        "intact %s", path, start, CRC_KEY);
        goto done;
    }
    s.digits_at = start + (uint64_t)at;
    if ((rc = stored_crc(tail + at, path, &stored)))
        goto done;
    /* A collection that reads its exact vectors from this very file
     * (AKIDB_EXACT_FILE) gets them before the rows are built, so the load
     * never holds them in RAM.  Where the file's vectors cannot be read in
     * place (it decodes as a checkpoint all the same), they stay in RAM:
     * more memory, no loss. */
    if (akidb__coll_wants_file_vectors(c)) {
        akidb__coll_vectors v;
        akidb_collection_config cfg;
        akidb__coll_config(c, &cfg);
        if (akidb__ckpt_vectors_open(env, path, s.fd, cfg.dim, &v) == AKIDB_OK)
            akidb__coll_set_vectors(c, &v);
        else
            akidb__log(env, AKIDB_LOG_WARN, "collection %s: exact vectors kept in RAM: %s",
                       akidb__coll_name(c), akidb__errmsg());
    }
    rc = akidb__pqr_open_tail(head, tail, tail_len, s.size, stream_fetch, &s, &env->alloc, &r);
    if (rc)
        rc = reraise(rc, path);
    else
        rc = load_reader(env, c, r, path, coll_id, last_seq_out);
    /* Whatever the decoder said, damage is named as such: a checksum that
     * does not match wins over the decoder's error, and over success. */
    if (rc != AKIDB_IOERR) {
        int crc_rc = stream_check(&s, stored);
        if (crc_rc)
            rc = crc_rc;
    }
done:
    akidb__pqr_free(r);
    akidb__free(&env->alloc, tail);
    window_release(&s);
    close(s.fd);
    return rc;
}

int akidb__ckpt_read_mem(const akidb__env *env, akidb__collection *c, const void *data,
                         size_t len, const char *what, uint64_t coll_id, uint64_t *last_seq_out,
                         int checked)
{
    return load_bytes(env, c, data, len, what, coll_id, last_seq_out, checked);
}

int akidb__ckpt_check_mem(const void *data, size_t len, const char *what)
{
    if (len < 12)
        return akidb__err(AKIDB_CORRUPT, "%s: checkpoint is truncated (%zu bytes)", what, len);
    return verify(data, len, what);
}

int akidb__ckpt_peek(const akidb__env *env, const void *data, size_t len, const char *what,
                     uint64_t *coll_id_out, uint64_t *last_seq_out, uint64_t *rows_out)
{
    akidb__pqr *r = NULL;
    int rc = akidb__pqr_open(data, len, &env->alloc, &r);
    if (rc) {
        rc = reraise(rc, what);
    } else if ((rc = akidb__snap_kv_u64(r, "akidb.collection_id", coll_id_out, what)) ==
                   AKIDB_OK &&
               (rc = akidb__snap_kv_u64(r, "akidb.last_seq", last_seq_out, what)) == AKIDB_OK) {
        *rows_out = akidb__pqr_num_rows(r);
    }
    akidb__pqr_free(r);
    return rc;
}

/* ---- a checkpoint in memory ------------------------------------------ */

typedef struct mem_sink {
    const akidb_allocator *alloc;
    unsigned char *buf;
    size_t len, cap;
    const char *what;
} mem_sink;

static int mem_write(void *ctx, const void *buf, size_t len)
{
    mem_sink *m = ctx;
    if (len > m->cap - m->len) {
        size_t cap = m->cap ? m->cap : 1 << 20;
        while (cap - m->len < len) {
            if (cap > SIZE_MAX / 2)
                return akidb__err(AKIDB_NOMEM, "%s: checkpoint too large for memory", m->what);
            cap *= 2;
        }
        unsigned char *p = akidb__realloc(m->alloc, m->buf, cap);
        if (!p)
            return akidb__err(AKIDB_NOMEM, "%s: out of memory for a %zu-byte checkpoint",
                              m->what, cap);
        m->buf = p;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, buf, len);
    m->len += len;
    return AKIDB_OK;
}

int akidb__ckpt_write_mem(const akidb__env *env, const akidb__collection *c, uint64_t coll_id,
                          uint64_t last_seq, const char *what, void **buf_out, size_t *len_out)
{
    mem_sink m = { &env->alloc, NULL, 0, 0, what };
    char kv_id[24], kv_seq[24];
    snprintf(kv_id, sizeof kv_id, "%" PRIu64, coll_id);
    snprintf(kv_seq, sizeof kv_seq, "%" PRIu64, last_seq);
    const char *keys[] = { "akidb.collection_id", "akidb.last_seq", CRC_KEY };
    const char *vals[] = { kv_id, kv_seq, CRC_PLACEHOLDER };
    int rc = akidb__snap_encode_exact(env, c, keys, vals, 3, mem_write, &m, what);
    uint64_t start = 0;
    int64_t at = -1;
    if (rc == AKIDB_OK &&
        (m.len < 12 || !(start = footer_start(m.buf + m.len - 8, m.len)) ||
         (at = find_crc_digits(m.buf + start, (size_t)(m.len - 8 - start))) < 0))
        rc = akidb__err(AKIDB_ERROR, "%s: cannot find the checksum placeholder in the footer "
                        "just written", what);
    if (rc) {
        akidb__free(&env->alloc, m.buf);
        return rc;
    }
    char digits[9];
    snprintf(digits, sizeof digits, "%08" PRIx32, akidb__crc32c(0, m.buf, m.len));
    memcpy(m.buf + start + (uint64_t)at, digits, 8);
    *buf_out = m.buf;
    *len_out = m.len;
    return AKIDB_OK;
}

/* ---- exact vectors read in place (AKIDB_EXACT_FILE) ------------------ */

/* One checkpoint file's vector column, read a vector at a time with
 * pread: the page cache holds what searches re-rank, and the kernel takes
 * it back under memory pressure.  pread rather than a mapping: a file
 * truncated or a disk failing under the handle is then an error returned
 * by the search (AKIDB_CORRUPT / AKIDB_IOERR naming the file), not a
 * SIGBUS in the application.  The price is a system call per vector:
 * ~2.1 us against ~0.7-1 us for a copy from a mapping on the VM measured,
 * which at rerank 2 x k = 20 reads a search is most of the difference
 * between this mode's QPS and RAM's (docs/BENCHMARKS.md). */
typedef struct ckpt_vectors {
    const akidb_allocator *alloc;
    int fd;
    char *path;
    uint32_t dim;
    uint64_t rows;
    akidb__pq_span *spans;      /* ascending first_row, from row 0, no gaps */
    size_t n_spans;
    /* Set when the kernel or file system refuses RWF_NOWAIT reads:
     * read_cached then reads as read does.  Searches race on it, hence
     * atomic (relaxed: a stale 0 costs one refused call). */
    atomic_int no_nowait;
} ckpt_vectors;

/* akidb__pqr_fetch_fn for the page walk: plain reads into a small buffer. */
typedef struct walk_fetch {
    ckpt_stream *s;
    unsigned char *buf;
    size_t cap;
} walk_fetch;

static int walk_fetch_fn(void *ctx, uint64_t off, size_t len, const unsigned char **bytes)
{
    walk_fetch *w = ctx;
    if (off > w->s->size || len > w->s->size - off)
        return akidb__err(AKIDB_CORRUPT, "%s: read of %zu bytes at offset %" PRIu64 " is past "
                          "the end", w->s->path, len, off);
    if (len > w->cap) {
        unsigned char *b = akidb__realloc(&w->s->env->alloc, w->buf, len ? len : 1);
        if (!b)
            return akidb__err(AKIDB_NOMEM, "%s: out of memory", w->s->path);
        w->buf = b;
        w->cap = len;
    }
    int rc = stream_read(w->s, w->buf, off, len);
    *bytes = w->buf;
    return rc;
}

/* Where row node's exact vector starts in the file (node < v->rows). */
static uint64_t vector_offset(const ckpt_vectors *v, uint32_t node)
{
    size_t lo = 0, hi = v->n_spans;     /* the last span starting at or before node */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (v->spans[mid].first_row <= node)
            lo = mid;
        else
            hi = mid;
    }
    const akidb__pq_span *sp = &v->spans[lo];
    return sp->offset + (node - sp->first_row) * (uint64_t)v->dim * sizeof(float);
}

static int vectors_read(void *ctx, uint32_t node, float *out)
{
    const ckpt_vectors *v = ctx;
    if (node >= v->rows)
        return akidb__err(AKIDB_INVALID, "%s: no row %" PRIu32 " (the file holds %" PRIu64 ")",
                          v->path, node, v->rows);
    size_t len = (size_t)v->dim * sizeof(float);
    uint64_t off = vector_offset(v, node);
    ssize_t got = akidb__pread_full(v->fd, out, len, off);
    if (got < 0)
        return akidb__err(AKIDB_IOERR, "%s: reading the exact vector of row %" PRIu32 " (offset "
                          "%" PRIu64 ") failed: %s", v->path, node, off, strerror((int)-got));
    if ((size_t)got != len)
        return akidb__err(AKIDB_CORRUPT, "%s: the exact vector of row %" PRIu32 " (offset "
                          "%" PRIu64 ") is past the file's end: was the checkpoint truncated "
                          "under the handle?", v->path, node, off);
    return AKIDB_OK;
}

#ifdef RWF_NOWAIT
/* akidb__exact_source's read_cached: one RWF_NOWAIT read, which the
 * kernel refuses (EAGAIN) rather than wait for the disk.  Anything short
 * of the whole vector is AKIDB__EXACT_WOULD_BLOCK: vectors_read then
 * reads it, or reports why it cannot. */
static int vectors_read_cached(void *ctx, uint32_t node, float *out)
{
    ckpt_vectors *v = ctx;
    if (node >= v->rows || atomic_load_explicit(&v->no_nowait, memory_order_relaxed))
        return vectors_read(ctx, node, out);
    size_t len = (size_t)v->dim * sizeof(float);
    struct iovec iov = { out, len };
    ssize_t got = preadv2(v->fd, &iov, 1, (off_t)vector_offset(v, node), RWF_NOWAIT);
    if (got == (ssize_t)len)
        return AKIDB_OK;
    if (got < 0 && (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS))
        atomic_store_explicit(&v->no_nowait, 1, memory_order_relaxed);
    return AKIDB__EXACT_WOULD_BLOCK;
}

/* akidb__exact_source's will_need: start reading the vector into the
 * page cache (the file's RANDOM advice keeps that to its own pages). */
static void vectors_will_need(void *ctx, uint32_t node)
{
    const ckpt_vectors *v = ctx;
    if (node < v->rows)
        (void)posix_fadvise(v->fd, (off_t)vector_offset(v, node),
                            (off_t)v->dim * (off_t)sizeof(float), POSIX_FADV_WILLNEED);
}
#endif

static void vectors_close(void *ctx)
{
    ckpt_vectors *v = ctx;
    if (!v)
        return;
    close(v->fd);
    akidb__free(v->alloc, v->spans);
    akidb__free(v->alloc, v->path);
    akidb__free(v->alloc, v);
}

int akidb__ckpt_vectors_open(const akidb__env *env, const char *path, int fd, uint32_t dim,
                             akidb__coll_vectors *out)
{
    memset(out, 0, sizeof *out);
    ckpt_vectors *v = akidb__calloc(&env->alloc, 1, sizeof *v);
    size_t plen = strlen(path) + 1;
    char *pcopy = akidb__malloc(&env->alloc, plen);
    if (!v || !pcopy) {
        akidb__free(&env->alloc, v);
        akidb__free(&env->alloc, pcopy);
        return akidb__err(AKIDB_NOMEM, "%s: out of memory", path);
    }
    memcpy(pcopy, path, plen);
    v->alloc = &env->alloc;
    v->path = pcopy;
    v->dim = dim;
    /* A descriptor of its own (not a dup of fd, which would share fd's
     * file position and read-ahead state: the random-access advice below
     * would slow the sequential load reading through fd), of the same
     * file as fd. */
    v->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat want, got;
    if (v->fd >= 0 && fd >= 0 &&
        (fstat(fd, &want) != 0 || fstat(v->fd, &got) != 0 || want.st_dev != got.st_dev ||
         want.st_ino != got.st_ino)) {
        close(v->fd);
        v->fd = -1;
        errno = ESTALE;   /* replaced between the two opens */
    }
    ckpt_stream s = { .env = env, .path = path, .fd = v->fd };
    walk_fetch w = { &s, NULL, 0 };
    unsigned char head[8], *tail = NULL;
    size_t tail_len = 0;
    uint64_t start = 0;
    akidb__pqr *r = NULL;
    int rc = v->fd >= 0 ? AKIDB_OK
                        : akidb__err(AKIDB_IOERR, "%s: cannot open: %s", path, strerror(errno));
    if (rc == AKIDB_OK && (rc = stream_footer(&s, head, &tail, &tail_len, &start)) == AKIDB_OK &&
        (rc = akidb__pqr_open_tail(head, tail, tail_len, s.size, walk_fetch_fn, &w, &env->alloc,
                                   &r)) == AKIDB_OK) {
        int col = akidb__pqr_find_column(r, "vector");
        rc = col < 0 ? akidb__err(AKIDB_CORRUPT, "%s: no vector column", path)
                     : akidb__pqr_plain_spans(r, (size_t)col, dim, &v->spans, &v->n_spans);
        v->rows = akidb__pqr_num_rows(r);
        if (rc == AKIDB_OK && v->rows > UINT32_MAX)
            rc = akidb__err(AKIDB_CORRUPT, "%s: %" PRIu64 " rows", path, v->rows);
    }
    akidb__pqr_free(r);
    akidb__free(&env->alloc, tail);
    akidb__free(&env->alloc, w.buf);
    if (rc) {
        vectors_close(v);
        return rc;
    }
    /* single vectors at random places: read-ahead would fetch 128 KiB for
     * each 1.5 KiB asked for */
    (void)posix_fadvise(v->fd, 0, 0, POSIX_FADV_RANDOM);
    out->src.read = vectors_read;
#ifdef RWF_NOWAIT
    out->src.read_cached = vectors_read_cached;
    out->src.will_need = vectors_will_need;
#endif
    out->src.ctx = v;
    out->src.n_nodes = (uint32_t)v->rows;
    out->close = vectors_close;
    out->bytes = sizeof *v + plen + v->n_spans * sizeof *v->spans;
    return AKIDB_OK;
}
