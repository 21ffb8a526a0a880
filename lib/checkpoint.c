/*
 * checkpoint.c - a collection written to one file and read back, so that
 * reopening loads the saved graph instead of replaying the whole log or
 * rebuilding the index.  The Parquet snapshot (a later milestone) will take
 * over this role; this compact format is what the log is checkpointed to
 * until then.
 *
 * File layout (little-endian):
 *
 *   header, 64 bytes:
 *     0  "AKIDBCKP"   magic
 *     8  u32 version (1)
 *    12  u32 dim
 *    16  u64 coll_id
 *    24  u64 last_seq      last log record included
 *    32  u32 metric, u32 hnsw_m, u32 ef_construction, u32 reserved
 *    48  u64 body_len
 *    56  u32 reserved
 *    60  u32 crc32c of bytes 0..59
 *   body: the collection (akidb__coll_save), body_len bytes
 *   trailer, 8 bytes: u32 crc32c of the body, "CKND"
 *
 * Writing is atomic: PATH.tmp is written and fsync'ed, renamed over PATH,
 * and the directory fsync'ed; a crash at any point leaves either the old
 * checkpoint or the new one, and the log still holds everything after the
 * old one.  Reading streams through a 1 MiB buffer with a running CRC, so
 * memory stays at one copy of the collection; every count read from the
 * file is bounded by the bytes the file has left, and the CRC is checked
 * before the loaded collection is used.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "checkpoint.h"
#include "crc32c.h"
#include "file.h"

#define CKPT_MAGIC "AKIDBCKP"
#define CKPT_VERSION 1u
#define HEADER_LEN 64u
#define TRAILER_LEN 8u
#define BUF_LEN ((size_t)1 << 20)

typedef struct stream {
    const akidb__env *env;
    const char *path;
    int fd;
    unsigned char *buf;
    size_t fill, pos;        /* write: bytes buffered; read: window [pos, fill) */
    uint64_t file_off;       /* where the next flush / refill happens */
    uint64_t body_left;      /* read: body bytes not yet consumed */
    uint64_t body_len;       /* write: body bytes so far */
    uint32_t crc;
} stream;

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static int flush(stream *s)
{
    int err = akidb__pwrite_all(s->fd, s->buf, s->fill, s->file_off);
    if (err)
        return akidb__err(AKIDB_IOERR, "%s: write failed: %s", s->path, strerror(err));
    s->file_off += s->fill;
    s->fill = 0;
    return AKIDB_OK;
}

static int stream_write(void *ctx, const void *p, size_t len)
{
    stream *s = ctx;
    const unsigned char *b = p;
    s->crc = akidb__crc32c(s->crc, p, len);
    s->body_len += len;
    while (len > 0) {
        size_t room = BUF_LEN - s->fill, take = len < room ? len : room;
        memcpy(s->buf + s->fill, b, take);
        s->fill += take;
        b += take;
        len -= take;
        if (s->fill == BUF_LEN) {
            int rc = flush(s);
            if (rc)
                return rc;
        }
    }
    return AKIDB_OK;
}

static void make_header(unsigned char *h, uint64_t coll_id, const akidb_collection_config *cfg,
                        uint64_t last_seq, uint64_t body_len)
{
    memset(h, 0, HEADER_LEN);
    memcpy(h, CKPT_MAGIC, 8);
    put32(h + 8, CKPT_VERSION);
    put32(h + 12, cfg->dim);
    put64(h + 16, coll_id);
    put64(h + 24, last_seq);
    put32(h + 32, (uint32_t)cfg->metric);
    put32(h + 36, cfg->hnsw_m);
    put32(h + 40, cfg->ef_construction);
    put64(h + 48, body_len);
    put32(h + 60, akidb__crc32c(0, h, 60));
}

int akidb__ckpt_write(const akidb__env *env, const akidb__collection *c, const char *path,
                      uint64_t coll_id, const akidb_collection_config *cfg, uint64_t last_seq)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return akidb__err(AKIDB_INVALID, "%s: path too long", path);
    int err = akidb__fault(env, AKIDB__FAULT_CKPT_WRITE);
    if (err)
        return akidb__err(AKIDB_IOERR, "%s: cannot write checkpoint: %s", tmp, strerror(err));

    stream s;
    memset(&s, 0, sizeof s);
    s.env = env;
    s.path = tmp;
    s.buf = akidb__malloc(&env->alloc, BUF_LEN);
    if (!s.buf)
        return akidb__err(AKIDB_NOMEM, "%s: out of memory", tmp);
    int rc = AKIDB_OK;
    s.fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s.fd < 0) {
        rc = akidb__err(AKIDB_IOERR, "%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    s.file_off = HEADER_LEN;   /* the header goes last, once body_len is known */
    if ((rc = akidb__coll_save(c, stream_write, &s)) != AKIDB_OK)
        goto done;
    unsigned char trailer[TRAILER_LEN];
    put32(trailer, s.crc);
    memcpy(trailer + 4, "CKND", 4);
    uint64_t body_len = s.body_len;
    if (s.fill + TRAILER_LEN > BUF_LEN && (rc = flush(&s)))
        goto done;
    memcpy(s.buf + s.fill, trailer, TRAILER_LEN);
    s.fill += TRAILER_LEN;
    if ((rc = flush(&s)))
        goto done;
    unsigned char h[HEADER_LEN];
    make_header(h, coll_id, cfg, last_seq, body_len);
    if ((err = akidb__pwrite_all(s.fd, h, HEADER_LEN, 0)) != 0) {
        rc = akidb__err(AKIDB_IOERR, "%s: write failed: %s", tmp, strerror(err));
        goto done;
    }
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
    if (s.fd >= 0)
        close(s.fd);
    if (rc != AKIDB_OK)
        unlink(tmp);
    akidb__free(&env->alloc, s.buf);
    return rc;
}

static int stream_read(void *ctx, void *p, size_t len)
{
    stream *s = ctx;
    unsigned char *out = p;
    if (len > s->body_left)
        return akidb__err(AKIDB_CORRUPT, "%s: data runs past the end of the checkpoint body",
                          s->path);
    s->body_left -= len;
    while (len > 0) {
        if (s->pos == s->fill) {
            ssize_t got = akidb__pread_full(s->fd, s->buf, BUF_LEN, s->file_off);
            if (got < 0)
                return akidb__err(AKIDB_IOERR, "%s: read failed: %s", s->path,
                                  strerror((int)-got));
            if (got == 0)
                return akidb__err(AKIDB_CORRUPT, "%s: file ends early", s->path);
            s->file_off += (uint64_t)got;
            s->pos = 0;
            s->fill = (size_t)got;
        }
        size_t take = s->fill - s->pos < len ? s->fill - s->pos : len;
        memcpy(out, s->buf + s->pos, take);
        s->crc = akidb__crc32c(s->crc, out, take);
        s->pos += take;
        out += take;
        len -= take;
    }
    return AKIDB_OK;
}

int akidb__ckpt_read(const akidb__env *env, akidb__collection *c, const char *path,
                     uint64_t coll_id, const akidb_collection_config *cfg,
                     uint64_t *last_seq_out)
{
    stream s;
    memset(&s, 0, sizeof s);
    s.env = env;
    s.path = path;
    s.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s.fd < 0) {
        if (errno == ENOENT)
            return AKIDB_NOTFOUND;
        return akidb__err(AKIDB_IOERR, "%s: cannot open: %s", path, strerror(errno));
    }
    int rc = AKIDB_OK;
    struct stat st;
    unsigned char h[HEADER_LEN], trailer[TRAILER_LEN];
    if (fstat(s.fd, &st) != 0) {
        rc = akidb__err(AKIDB_IOERR, "%s: cannot stat: %s", path, strerror(errno));
        goto done;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size < HEADER_LEN + TRAILER_LEN ||
        akidb__pread_full(s.fd, h, HEADER_LEN, 0) != (ssize_t)HEADER_LEN ||
        memcmp(h, CKPT_MAGIC, 8) != 0 || get32(h + 60) != akidb__crc32c(0, h, 60)) {
        rc = akidb__err(AKIDB_CORRUPT, "%s: checkpoint header is damaged (file is %llu bytes)",
                        path, (unsigned long long)size);
        goto done;
    }
    if (get32(h + 8) != CKPT_VERSION) {
        rc = akidb__err(AKIDB_INVALID, "%s: checkpoint format version %u is not supported",
                        path, get32(h + 8));
        goto done;
    }
    uint64_t body_len = get64(h + 48);
    if (get64(h + 16) != coll_id || get32(h + 12) != cfg->dim ||
        get32(h + 32) != (uint32_t)cfg->metric || get32(h + 36) != cfg->hnsw_m) {
        rc = akidb__err(AKIDB_CORRUPT, "%s: checkpoint belongs to another collection or "
                        "settings (collection %llu, dim %u)", path,
                        (unsigned long long)get64(h + 16), get32(h + 12));
        goto done;
    }
    if (body_len != size - HEADER_LEN - TRAILER_LEN ||
        akidb__pread_full(s.fd, trailer, TRAILER_LEN, size - TRAILER_LEN) != (ssize_t)TRAILER_LEN ||
        memcmp(trailer + 4, "CKND", 4) != 0) {
        rc = akidb__err(AKIDB_CORRUPT, "%s: checkpoint is truncated or has a damaged trailer "
                        "(body %llu bytes, file %llu)", path, (unsigned long long)body_len,
                        (unsigned long long)size);
        goto done;
    }
    s.buf = akidb__malloc(&env->alloc, BUF_LEN);
    if (!s.buf) {
        rc = akidb__err(AKIDB_NOMEM, "%s: out of memory", path);
        goto done;
    }
    s.file_off = HEADER_LEN;
    s.body_left = body_len;
    if ((rc = akidb__coll_load(c, stream_read, &s, body_len, path)) != AKIDB_OK)
        goto done;
    /* The loader may stop short of the body's end only if it is damaged;
     * and the CRC must cover every body byte. */
    unsigned char rest[4096];
    while (rc == AKIDB_OK && s.body_left > 0) {
        size_t take = s.body_left < sizeof rest ? (size_t)s.body_left : sizeof rest;
        rc = stream_read(&s, rest, take);
        if (rc == AKIDB_OK)
            rc = akidb__err(AKIDB_CORRUPT, "%s: %llu unexpected bytes after the collection",
                            path, (unsigned long long)(s.body_left + take));
    }
    if (rc == AKIDB_OK && s.crc != get32(trailer))
        rc = akidb__err(AKIDB_CORRUPT, "%s: checkpoint checksum mismatch (stored %08x, "
                        "computed %08x)", path, get32(trailer), s.crc);
    if (rc == AKIDB_OK)
        *last_seq_out = get64(h + 24);
done:
    close(s.fd);
    akidb__free(&env->alloc, s.buf);
    return rc;
}
