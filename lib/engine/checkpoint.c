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
 * out is what saves it.  Reading maps the file, checks the checksum
 * before anything is decoded, and then decodes one row group at a time
 * into the index.  An intact checkpoint of another akidb.format (a newer
 * library's) is AKIDB_INVALID, not damage (docs/FORMATS.md, "Versions and
 * upgrades").
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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

/* Load the checkpoint bytes p[0..size) (`path` names them in messages). */
static int load_bytes(const akidb__env *env, akidb__collection *c, const unsigned char *p,
                      uint64_t size, const char *path, uint64_t coll_id, uint64_t *last_seq_out,
                      int checked)
{
    if (size < 12)
        return akidb__err(AKIDB_CORRUPT, "%s: checkpoint is truncated (%" PRIu64 " bytes)",
                          path, size);
    akidb__pqr *r = NULL;
    uint64_t got_id = 0, got_seq = 0;
    const char *kind, *fmt;
    int rc;
    if (memcmp(p, "AKIDBCKP", 8) == 0) {
        rc = akidb__err(AKIDB_INVALID, "%s: a binary checkpoint of a pre-release build; this "
                        "version reads Parquet checkpoints only", path);
        goto done;
    }
    if (!checked && (rc = verify(p, size, path)))
        goto done;
    if ((rc = akidb__pqr_open(p, (size_t)size, &env->alloc, &r))) {
        rc = reraise(rc, path);
        goto done;
    }
    akidb__pqr_trust_pages(r);   /* verify() covered every page */
    /* Intact (the checksum matched) but of another layout version: a newer
     * library wrote it.  That is INVALID, not damage (docs/FORMATS.md). */
    fmt = akidb__pqr_kv(r, "akidb.format");
    if (fmt && strcmp(fmt, AKIDB__SNAP_FORMAT) != 0 && strcmp(fmt, AKIDB__SNAP_FORMAT_TAIL) != 0) {
        rc = akidb__err(AKIDB_INVALID, "%s: checkpoint of format %.20s; this library reads "
                        "formats %s and %s (was the database opened by a newer libakidb?)",
                        path, fmt, AKIDB__SNAP_FORMAT, AKIDB__SNAP_FORMAT_TAIL);
        goto done;
    }
    kind = akidb__pqr_kv(r, "akidb.kind");
    if (!kind || strcmp(kind, "checkpoint") != 0) {
        rc = akidb__err(AKIDB_CORRUPT, "%s: not a checkpoint (akidb.kind is %s)", path,
                        kind ? kind : "missing");
        goto done;
    }
    if ((rc = akidb__snap_kv_u64(r, "akidb.collection_id", &got_id, path)) ||
        (rc = akidb__snap_kv_u64(r, "akidb.last_seq", &got_seq, path)))
        goto done;
    if (got_id != coll_id) {
        rc = akidb__err(AKIDB_CORRUPT, "%s: checkpoint belongs to collection %" PRIu64 ", the "
                        "catalog says %" PRIu64, path, got_id, coll_id);
        goto done;
    }
    /* The settings (dim, metric, M) are the loader's to check against c,
     * which has the catalog's; a mismatch comes back as INVALID and is
     * reraised as CORRUPT below. */
    if ((rc = akidb__snap_load_reader(env, r, path, c)) == AKIDB_OK)
        *last_seq_out = got_seq;
    else
        rc = reraise(rc, NULL);
done:
    akidb__pqr_free(r);
    return rc;
}

int akidb__ckpt_read(const akidb__env *env, akidb__collection *c, const char *path,
                     uint64_t coll_id, uint64_t *last_seq_out)
{
    const void *map;
    size_t map_len;
    int rc = akidb__map_file(path, &map, &map_len);
    if (rc)
        return rc;   /* AKIDB_NOTFOUND silently: a collection without a checkpoint yet */
    rc = load_bytes(env, c, map, map_len, path, coll_id, last_seq_out, 0);
    akidb__unmap_file(map, map_len);
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
