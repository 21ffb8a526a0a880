/*
 * wal.c - the per-collection write-ahead log.
 *
 * Every insert, upsert and delete is appended here before it is applied in
 * RAM, and acknowledged only once durable under the handle's sync mode.
 * Recovery = the collection's last checkpoint + the records after it.
 *
 * File layout (little-endian):
 *
 *   header, 32 bytes:
 *     0  "AKIWAL"           magic
 *     6  u16 version (2; version 1, without sync markers, is still read)
 *     8  u32 dim            must match the collection
 *    12  u32 crc32c         of the 32 header bytes with this field zero
 *    16  u64 coll_id        must match the catalog
 *    24  u64 base_seq       the checkpoint this log continues: its records
 *                           follow record base_seq (0 = from the start)
 *
 *   records, each starting at a multiple of 8:
 *     0  u32 len            payload bytes (before padding)
 *     4  u32 crc32c         of bytes 8 .. 24+len (seq, synced_upto, payload)
 *     8  u64 seq            strictly increasing within the file
 *    16  u64 synced_upto    file offset known durable when this was written
 *    24  payload, then zero padding to a multiple of 8
 *
 *   a sync marker (version 2) is a record with len 0 and no payload: its
 *   seq is the next record's, its synced_upto its own offset.  In ALWAYS
 *   mode one is written after each fsync, just past the record it proves
 *   durable, and the next append overwrites it; so a log normally ends
 *   with one.  Markers carry no data and do not advance seq.
 *
 * Recovery reads records until the first invalid one (short, bad length,
 * bad CRC, seq not increasing).  What follows it is either a torn tail
 * (the crash interrupted a write, or the OS wrote unsynced pages out of
 * order) or real damage in the middle of the log.  synced_upto tells the
 * two apart: if any valid record or sync marker after the bad spot says
 * the bad spot had already been synced, acknowledged writes sit behind it,
 * and truncating would lose them silently, so that is AKIDB_CORRUPT.  The
 * marker is what covers the last record: without it, a flipped byte in the
 * last acknowledged record of a killed process would look like a torn
 * write.  Otherwise nothing in the file proves the bad spot was synced,
 * and the log is cut there (logged, counted in akidb_wal_truncations_total
 * and in the collection's stats).  That is exact for a crash in ALWAYS
 * mode; under INTERVAL (the last group) and NONE a damaged acknowledged
 * tail cannot be told from a torn one, and the message says so.  A
 * read-only handle skips the tail in memory and leaves the file alone.
 *
 * Files deleted under an open handle (a stray rm of DIR/wal/N.wal, or of
 * the checkpoint the log continues): the log checks its own link count
 * after each fsync (ALWAYS, INTERVAL) or each write (NONE), and looks the
 * checkpoint up by path after each fsync; a write that finds either gone
 * fails with AKIDB_IOERR instead of being acknowledged, and the log
 * refuses writes until a checkpoint has written the collection out again
 * and, for a deleted log, created a new one at the path (akidb__wal_reset).
 *
 * base_seq guards the pairing of log and checkpoint: after a checkpoint
 * the log is emptied and its header says which checkpoint it follows, so a
 * lost or older checkpoint is detected (AKIDB_CORRUPT) instead of the
 * collection silently coming back without the checkpointed documents.
 *
 * Sync modes: ALWAYS fsyncs inside append, before the change is applied,
 * so a failed fsync leaves nothing behind.  INTERVAL is group commit: the
 * change is applied, the collection lock released, and then one writer
 * (the leader) fsyncs everything written so far for everyone waiting.
 * Writers that append while that fsync runs form the next group, so the
 * index work of one group overlaps the disk wait of the previous one.
 * (A first version made the leader wait for every writer on its way to
 * append: fewer, larger fsyncs, but the CPU sat idle during each one; 8
 * writers at batch 1 reached 0.56 of NONE's throughput, against 0.70
 * now.)  NONE never fsyncs.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/crc.h"
#include "common/file.h"
#include "engine/wal.h"

#define WAL_MAGIC "AKIWAL"
#define WAL_VERSION 2u
#define WAL_FIRST_VERSION_WITH_MARKERS 2u
#define REC_HEADER_LEN 24u
#define MAX_PAYLOAD ((uint64_t)1 << 30)

struct akidb__wal {
    const akidb__env *env;
    int fd;
    char *path;
    uint64_t coll_id;
    uint32_t dim;
    uint64_t base_seq;           /* from the header */
    unsigned version;            /* of the header: 2 and up write sync markers */
    uint64_t cut_bytes;          /* torn or damaged tail cut (or skipped) at replay */
    char *ckpt_path;             /* the checkpoint this log continues, or NULL */
    uint64_t size;               /* append offset */
    uint64_t next_seq;
    unsigned char *rec;          /* reusable record buffer */
    size_t rec_cap;

    pthread_mutex_t sync_lock;   /* guards everything below */
    pthread_cond_t sync_cond;
    uint64_t written_seq;        /* last appended */
    uint64_t written_size;
    uint64_t synced_seq;         /* last known durable */
    uint64_t synced_size;
    int syncing;                 /* a leader is in fdatasync */
    int failed;                  /* an fsync failed: refuse everything */
    int gone;                    /* GONE_LOG / GONE_CKPT: refuse appends until reset */
    int ckpt_known;              /* ckpt_path existed at the last watch or reset, */
    dev_t ckpt_dev;              /* as this file: no fd is held for it, so a */
    ino_t ckpt_ino;              /* collection costs one descriptor */
};

#define GONE_LOG 1
#define GONE_CKPT 2

static inline void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}

static inline void put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static inline uint64_t pad8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

static void make_header(unsigned char h[AKIDB__WAL_HEADER_LEN], uint64_t coll_id, uint32_t dim,
                        uint64_t base_seq)
{
    memset(h, 0, AKIDB__WAL_HEADER_LEN);
    memcpy(h, WAL_MAGIC, 6);
    h[6] = (unsigned char)WAL_VERSION;
    h[7] = (unsigned char)(WAL_VERSION >> 8);
    put32(h + 8, dim);
    put64(h + 16, coll_id);
    put64(h + 24, base_seq);
    put32(h + 12, akidb__crc32c(0, h, AKIDB__WAL_HEADER_LEN));
}

static int header_crc_ok(const unsigned char h[AKIDB__WAL_HEADER_LEN])
{
    unsigned char copy[AKIDB__WAL_HEADER_LEN];
    memcpy(copy, h, sizeof copy);
    memset(copy + 12, 0, 4);
    return get32(h + 12) == akidb__crc32c(0, copy, sizeof copy);
}

static int wal_new(const akidb__env *env, const char *path, uint64_t coll_id, uint32_t dim,
                   akidb__wal **out)
{
    const akidb_allocator *a = &env->alloc;
    akidb__wal *w = akidb__calloc(a, 1, sizeof *w);
    if (!w)
        return akidb__err(AKIDB_NOMEM, "%s: out of memory", path);
    w->path = akidb__strdup(a, path);
    if (!w->path) {
        akidb__free(a, w);
        return akidb__err(AKIDB_NOMEM, "%s: out of memory", path);
    }
    w->env = env;
    w->fd = -1;
    w->version = WAL_VERSION;
    w->coll_id = coll_id;
    w->dim = dim;
    w->next_seq = 1;
    pthread_mutex_init(&w->sync_lock, NULL);
    pthread_cond_init(&w->sync_cond, NULL);
    *out = w;
    return AKIDB_OK;
}

void akidb__wal_close(akidb__wal *w)
{
    if (!w)
        return;
    const akidb_allocator *a = &w->env->alloc;
    if (w->fd >= 0)
        close(w->fd);
    pthread_mutex_destroy(&w->sync_lock);
    pthread_cond_destroy(&w->sync_cond);
    akidb__free(a, w->rec);
    akidb__free(a, w->path);
    akidb__free(a, w->ckpt_path);
    akidb__free(a, w);
}

static int io_err(const akidb__wal *w, const char *what, int err)
{
    return akidb__err(AKIDB_IOERR, "%s: %s: %s", w->path, what, strerror(err));
}

int akidb__wal_create(const akidb__env *env, const char *path, uint64_t coll_id,
                      uint32_t dim, akidb__wal **out)
{
    akidb__wal *w;
    int rc = wal_new(env, path, coll_id, dim, &w);
    if (rc)
        return rc;
    if (env->read_only) {
        /* Nothing may be written: an empty log that exists in memory only
         * (a read-only handle never appends). */
        w->size = w->written_size = w->synced_size = AKIDB__WAL_HEADER_LEN;
        *out = w;
        return AKIDB_OK;
    }
    unsigned char h[AKIDB__WAL_HEADER_LEN];
    make_header(h, coll_id, dim, 0);
    int err;
    w->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, akidb__env_file_mode(env));
    if (w->fd < 0) {
        rc = io_err(w, "cannot create log", errno);
    } else if ((err = akidb__pwrite_all(w->fd, h, sizeof h, 0)) != 0) {
        rc = io_err(w, "cannot write log header", err);
    } else if (fdatasync(w->fd) != 0) {
        rc = io_err(w, "cannot sync log", errno);
    } else if ((err = akidb__fsync_parent(path)) != 0) {
        rc = io_err(w, "cannot sync log directory", err);
    }
    if (rc) {
        akidb__wal_close(w);
        return rc;
    }
    w->size = w->written_size = w->synced_size = AKIDB__WAL_HEADER_LEN;
    *out = w;
    return AKIDB_OK;
}

int akidb__wal_open(const akidb__env *env, const char *path, uint64_t coll_id,
                    uint32_t dim, akidb__wal **out)
{
    akidb__wal *w;
    int rc = wal_new(env, path, coll_id, dim, &w);
    if (rc)
        return rc;
    unsigned char h[AKIDB__WAL_HEADER_LEN];
    w->fd = open(path, (env->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (w->fd < 0) {
        rc = errno == ENOENT ? akidb__err(AKIDB_NOTFOUND, "%s: log does not exist", path)
                             : io_err(w, "cannot open log", errno);
        goto fail;
    }
    ssize_t got = akidb__pread_full(w->fd, h, sizeof h, 0);
    if (got < 0) {
        rc = io_err(w, "cannot read log header", (int)-got);
        goto fail;
    }
    if ((size_t)got < sizeof h || memcmp(h, WAL_MAGIC, 6) != 0 || !header_crc_ok(h)) {
        rc = akidb__err(AKIDB_CORRUPT, "%s: log header is damaged (%zd bytes read)", path, got);
        goto fail;
    }
    unsigned version = (unsigned)h[6] | (unsigned)h[7] << 8;
    if (version < 1 || version > WAL_VERSION) {
        rc = akidb__err(AKIDB_INVALID, "%s: log format version %u is not supported", path,
                        version);
        goto fail;
    }
    if (get64(h + 16) != coll_id || get32(h + 8) != dim) {
        rc = akidb__err(AKIDB_CORRUPT, "%s: log belongs to collection %llu (dim %u), not "
                        "%llu (dim %u)", path, (unsigned long long)get64(h + 16),
                        get32(h + 8), (unsigned long long)coll_id, dim);
        goto fail;
    }
    w->base_seq = get64(h + 24);
    w->version = version;
    w->size = w->written_size = w->synced_size = AKIDB__WAL_HEADER_LEN;
    *out = w;
    return AKIDB_OK;
fail:
    akidb__wal_close(w);
    return rc;
}

/* Is there a valid record at `off`?  If so, return its end offset (else 0)
 * and its header fields. */
static uint64_t check_record(const unsigned char *base, uint64_t file_size, uint64_t off,
                             uint64_t min_seq, uint64_t *seq_out, uint64_t *synced_out,
                             uint32_t *len_out)
{
    if (file_size - off < REC_HEADER_LEN)
        return 0;
    const unsigned char *r = base + off;
    uint64_t len = get32(r);
    if (len > MAX_PAYLOAD || pad8(len) > file_size - off - REC_HEADER_LEN)
        return 0;
    uint64_t seq = get64(r + 8);
    if (seq < min_seq)
        return 0;
    if (get32(r + 4) != akidb__crc32c(0, r + 8, 16 + (size_t)len))
        return 0;
    *seq_out = seq;
    *synced_out = get64(r + 16);
    *len_out = (uint32_t)len;
    return off + REC_HEADER_LEN + pad8(len);
}

/* ---- files vanishing under the handle -------------------------------- */

/* Has fd's file lost its last link?  (A failing fstat counts as no: the
 * write path reports what it knows, and an unreadable fd fails the write
 * on its own.) */
static int unlinked(int fd)
{
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && st.st_nlink == 0;
}

/* The write path's check: 0, GONE_LOG or GONE_CKPT.  One fstat for the
 * log; the checkpoint (if there is one) is looked up by path, and only
 * its presence counts here: our own checkpoint renames a new file over it
 * before the reset that records the new one, and a concurrent INTERVAL
 * leader may look in between.  Called by the appender (collection write
 * lock) or with sync_lock held, so the checkpoint fields are not being
 * changed meanwhile. */
static int files_gone(const akidb__wal *w, int check_ckpt)
{
    if (unlinked(w->fd))
        return GONE_LOG;
    struct stat st;
    if (check_ckpt && w->ckpt_known && stat(w->ckpt_path, &st) != 0 && errno == ENOENT)
        return GONE_CKPT;
    return 0;
}

/* Remember which file the checkpoint is now (or that there is none). */
static void note_checkpoint(akidb__wal *w)
{
    struct stat st;
    w->ckpt_known = w->ckpt_path && stat(w->ckpt_path, &st) == 0;
    if (w->ckpt_known) {
        w->ckpt_dev = st.st_dev;
        w->ckpt_ino = st.st_ino;
    }
}

/* Is the file at w->path not the one w->fd has open (deleted, renamed
 * away, or replaced)? */
static int log_replaced(const akidb__wal *w)
{
    struct stat fst, pst;
    if (fstat(w->fd, &fst) != 0)
        return 0;
    if (fst.st_nlink == 0)
        return 1;
    return stat(w->path, &pst) != 0 || pst.st_dev != fst.st_dev || pst.st_ino != fst.st_ino;
}

static int gone_err(const akidb__wal *w, int gone, const char *what)
{
    if (gone == GONE_LOG)
        return akidb__err(AKIDB_IOERR, "%s: the log file was deleted or replaced while the "
                          "database was open; %s.  akidb_checkpoint() or akidb_close() writes "
                          "the collection out and creates a new log", w->path, what);
    return akidb__err(AKIDB_IOERR, "%s: checkpoint %s, which the log continues, was deleted "
                      "while the database was open (the documents it held are only in "
                      "memory); %s.  akidb_checkpoint() or akidb_close() writes them out "
                      "again", w->path, w->ckpt_path ? w->ckpt_path : "?", what);
}

int akidb__wal_watch(akidb__wal *w, const char *ckpt_path)
{
    char *p = akidb__strdup(&w->env->alloc, ckpt_path);
    if (!p)
        return akidb__err(AKIDB_NOMEM, "%s: out of memory", w->path);
    akidb__free(&w->env->alloc, w->ckpt_path);
    w->ckpt_path = p;
    note_checkpoint(w);   /* missing is fine: a collection without one yet */
    return AKIDB_OK;
}

int akidb__wal_intact(akidb__wal *w, char *why, size_t why_len)
{
    const char *what = NULL, *path = NULL;
    pthread_mutex_lock(&w->sync_lock);   /* an INTERVAL leader sets gone */
    int gone = w->gone;
    pthread_mutex_unlock(&w->sync_lock);
    if (w->fd >= 0 && (gone == GONE_LOG || log_replaced(w))) {
        what = "log";
        path = w->path;
    } else if (w->ckpt_known) {
        struct stat st;
        if (gone == GONE_CKPT || stat(w->ckpt_path, &st) != 0 || st.st_dev != w->ckpt_dev ||
            st.st_ino != w->ckpt_ino) {
            what = "checkpoint";
            path = w->ckpt_path;
        }
    }
    if (!what)
        return 1;
    if (why && why_len)
        snprintf(why, why_len, "its %s %s was deleted or replaced while the database was open",
                 what, path);
    return 0;
}

/* ---- replay ---------------------------------------------------------- */

int akidb__wal_replay(akidb__wal *w, uint64_t after_seq,
                      int (*apply)(void *ctx, uint64_t seq, const unsigned char *payload,
                                   size_t len),
                      void *ctx)
{
    if (w->base_seq > after_seq)
        return akidb__err(AKIDB_CORRUPT, "%s: log continues from checkpointed record %llu, but "
                          "the checkpoint found %s: the checkpoint file is missing or was "
                          "replaced by an older one", w->path,
                          (unsigned long long)w->base_seq,
                          after_seq ? "ends earlier" : "does not exist");
    if (w->fd < 0) {
        /* A read-only handle's stand-in for a log that was never created. */
        w->next_seq = after_seq + 1;
        w->written_seq = w->synced_seq = after_seq;
        return AKIDB_OK;
    }
    struct stat st;
    if (fstat(w->fd, &st) != 0)
        return io_err(w, "cannot stat log", errno);
    uint64_t file_size = (uint64_t)st.st_size;
    uint64_t last_seq = after_seq;
    uint64_t off = AKIDB__WAL_HEADER_LEN;   /* where reading stopped */
    uint64_t good_end = off;                /* end of the last record with data */
    int rc = AKIDB_OK;
    unsigned char *base = NULL;

    if (file_size > AKIDB__WAL_HEADER_LEN) {
        base = mmap(NULL, (size_t)file_size, PROT_READ, MAP_SHARED, w->fd, 0);
        if (base == MAP_FAILED)
            return io_err(w, "cannot map log", errno);
        uint64_t file_last = 0;
        for (;;) {
            uint64_t seq, synced;
            uint32_t len;
            uint64_t end = check_record(base, file_size, off, file_last + 1, &seq, &synced, &len);
            if (!end)
                break;
            if (len == 0) {
                /* A sync marker: proof for the scan below, no data.  A
                 * version 1 log never has one, so there it is damage. */
                if (w->version < WAL_FIRST_VERSION_WITH_MARKERS)
                    break;
                off = end;
                continue;
            }
            if (seq > after_seq) {
                rc = apply(ctx, seq, base + off + REC_HEADER_LEN, len);
                if (rc)
                    goto done;
                akidb__metric_add((akidb__metrics *)&w->env->metrics, AKIDB__M_WAL_REPLAYED, 1);
            }
            file_last = seq;
            if (seq > last_seq)
                last_seq = seq;
            off = good_end = end;
        }
        if (off < file_size) {
            /* Look past the bad spot for records or sync markers claiming
             * it was synced. */
            uint64_t max_synced = 0, first_later = 0;
            for (uint64_t p = off + 8; p + REC_HEADER_LEN <= file_size; p += 8) {
                uint64_t seq, synced;
                uint32_t len;
                uint64_t end = check_record(base, file_size, p, file_last + 1, &seq, &synced,
                                            &len);
                if (!end)
                    continue;
                if (len == 0 && w->version < WAL_FIRST_VERSION_WITH_MARKERS)
                    continue;
                if (!first_later)
                    first_later = p;
                if (synced > max_synced)
                    max_synced = synced;
                p = end - 8;
            }
            if (max_synced > off) {
                rc = akidb__err(AKIDB_CORRUPT, "%s: record at offset %llu is damaged, and the "
                                "%s at offset %llu shows it had been synced: cutting the "
                                "log there would lose acknowledged writes", w->path,
                                (unsigned long long)off,
                                first_later ? "record or sync marker" : "record",
                                (unsigned long long)first_later);
                goto done;
            }
        }
    }
    if (off < file_size) {
        /* A torn tail (what follows the last record with data, markers
         * included, goes with it). */
        uint64_t cut = file_size - good_end;
        munmap(base, (size_t)file_size);
        base = NULL;
        if (!w->env->read_only &&
            (ftruncate(w->fd, (off_t)good_end) != 0 || fdatasync(w->fd) != 0)) {
            rc = io_err(w, "cannot cut off the damaged log tail", errno);
            goto done;
        }
        w->cut_bytes = cut;
        akidb__metric_add((akidb__metrics *)&w->env->metrics, AKIDB__M_WAL_TRUNCATIONS, 1);
        akidb__log(w->env, AKIDB_LOG_WARN, "%s: %s %llu bytes at offset %llu%s: the record "
                   "there is incomplete or damaged, and nothing after it shows that it was "
                   "synced, so it is taken for a write that a crash interrupted; if it had "
                   "been acknowledged, it is lost", w->path,
                   w->env->read_only ? "skipping" : "cut", (unsigned long long)cut,
                   (unsigned long long)good_end,
                   w->env->read_only ? " (read-only: the file is left as it is)" : "");
    }
    /* A trailing sync marker stays in the file: the next append overwrites
     * it. */
    w->size = w->written_size = w->synced_size = good_end;
    w->next_seq = last_seq + 1;
    w->written_seq = w->synced_seq = last_seq;
done:
    if (base)
        munmap(base, (size_t)file_size);
    return rc;
}

/* ---- appends --------------------------------------------------------- */

/* Cut a failed append back off the file.  If even that fails, the log can
 * no longer be trusted to match RAM: poison it. */
static void cut_back(akidb__wal *w, uint64_t size)
{
    if (ftruncate(w->fd, (off_t)size) != 0) {
        pthread_mutex_lock(&w->sync_lock);
        w->failed = 1;
        pthread_mutex_unlock(&w->sync_lock);
        akidb__log(w->env, AKIDB_LOG_ERROR, "%s: cannot cut back a failed append (%s); "
                   "the collection refuses writes until reopened", w->path, strerror(errno));
    }
}

/* After the fsync that made everything before `at` durable: say so in a
 * sync marker at `at`, which the next append overwrites.  Not synced
 * itself (that would double the cost of a write): it survives a killed
 * process, not a power cut.  Best effort: a marker that cannot be written
 * is cut off again, since a half-written one would read as a torn tail. */
static void write_marker(akidb__wal *w, uint64_t at, uint64_t next_seq)
{
    if (w->version < WAL_FIRST_VERSION_WITH_MARKERS)
        return;
    unsigned char m[REC_HEADER_LEN];
    put32(m, 0);
    put64(m + 8, next_seq);
    put64(m + 16, at);
    put32(m + 4, akidb__crc32c(0, m + 8, 16));
    if (akidb__pwrite_all(w->fd, m, sizeof m, at) != 0 && ftruncate(w->fd, (off_t)at) != 0)
        akidb__log(w->env, AKIDB_LOG_WARN, "%s: cannot remove a half-written sync marker "
                   "(%s); the next open may report a torn tail of up to %u bytes", w->path,
                   strerror(errno), (unsigned)sizeof m);
}

int akidb__wal_append(akidb__wal *w, const void *payload, size_t len, uint64_t *seq_out)
{
    const akidb__env *env = w->env;
    if (len > MAX_PAYLOAD)
        return akidb__err(AKIDB_INVALID, "%s: record of %zu bytes exceeds the %llu-byte limit",
                          w->path, len, (unsigned long long)MAX_PAYLOAD);
    if (w->fd < 0)
        return akidb__err(AKIDB_READONLY, "%s: the log is open read-only", w->path);
    pthread_mutex_lock(&w->sync_lock);
    int failed = w->failed, gone = w->gone;
    uint64_t synced_upto = w->synced_size;
    pthread_mutex_unlock(&w->sync_lock);
    if (failed)
        return akidb__err(AKIDB_IOERR, "%s: an earlier fsync failed; reopen the database",
                          w->path);
    if (gone)
        return gone_err(w, gone, "this write was not applied");

    size_t rec_len = REC_HEADER_LEN + (size_t)pad8(len);
    if (rec_len > w->rec_cap) {
        unsigned char *p = akidb__realloc(&env->alloc, w->rec, rec_len);
        if (!p)
            return akidb__err(AKIDB_NOMEM, "%s: out of memory for a %zu-byte record",
                              w->path, rec_len);
        w->rec = p;
        w->rec_cap = rec_len;
    }
    uint64_t seq = w->next_seq;
    unsigned char *r = w->rec;
    put32(r, (uint32_t)len);
    put64(r + 8, seq);
    put64(r + 16, synced_upto);
    memcpy(r + REC_HEADER_LEN, payload, len);
    memset(r + REC_HEADER_LEN + len, 0, rec_len - REC_HEADER_LEN - len);
    put32(r + 4, akidb__crc32c(0, r + 8, 16 + len));

    uint64_t start = w->size;
    int err = akidb__fault(env, AKIDB__FAULT_WAL_WRITE);
    if (!err) {
        if (env->fault_fn) {
            /* Two writes, so a test can crash between them (a torn record). */
            size_t half = rec_len / 2;
            err = akidb__pwrite_all(w->fd, r, half, start);
            if (!err)
                err = akidb__fault(env, AKIDB__FAULT_WAL_MID_RECORD);
            if (!err)
                err = akidb__pwrite_all(w->fd, r + half, rec_len - half, start + half);
        } else {
            err = akidb__pwrite_all(w->fd, r, rec_len, start);
        }
    }
    if (err) {
        cut_back(w, start);
        return io_err(w, "cannot append to log", err);
    }
    /* A record written into a file someone deleted is not durable, so it
     * must not be acknowledged: the log's link count is checked after each
     * fsync (ALWAYS) or write (NONE; INTERVAL checks in akidb__wal_sync),
     * and the checkpoint's wherever there is an fsync anyway. */
    if (env->sync_mode == AKIDB_SYNC_ALWAYS) {
        err = akidb__fault(env, AKIDB__FAULT_WAL_BEFORE_SYNC);
        if (!err && fdatasync(w->fd) != 0)
            err = errno;
        if (err) {
            cut_back(w, start);
            return io_err(w, "cannot sync log", err);
        }
        gone = files_gone(w, 1);
        if (!gone)
            write_marker(w, start + rec_len, seq + 1);
        akidb__metric_add((akidb__metrics *)&env->metrics, AKIDB__M_WAL_SYNCS, 1);
    } else if (env->sync_mode == AKIDB_SYNC_NONE) {
        gone = files_gone(w, 0);
    }
    if (gone) {
        cut_back(w, start);
        pthread_mutex_lock(&w->sync_lock);
        w->gone = gone;
        pthread_mutex_unlock(&w->sync_lock);
        return gone_err(w, gone, "this write was not applied");
    }
    w->size = start + rec_len;
    w->next_seq = seq + 1;
    pthread_mutex_lock(&w->sync_lock);
    w->written_seq = seq;
    w->written_size = w->size;
    if (env->sync_mode == AKIDB_SYNC_ALWAYS) {
        w->synced_seq = seq;
        w->synced_size = w->size;
    }
    pthread_mutex_unlock(&w->sync_lock);
    akidb__metric_add((akidb__metrics *)&env->metrics, AKIDB__M_WAL_RECORDS, 1);
    akidb__metric_add((akidb__metrics *)&env->metrics, AKIDB__M_WAL_BYTES, (int64_t)rec_len);
    *seq_out = seq;
    return AKIDB_OK;
}

int akidb__wal_sync(akidb__wal *w, uint64_t seq)
{
    const akidb__env *env = w->env;
    if (env->sync_mode != AKIDB_SYNC_INTERVAL)
        return AKIDB_OK;
    pthread_mutex_lock(&w->sync_lock);
    while (w->synced_seq < seq && !w->failed && !w->gone) {
        if (w->syncing) {
            pthread_cond_wait(&w->sync_cond, &w->sync_lock);
            continue;
        }
        /* Lead: fsync what is written now.  Writers that append while
         * this fsync runs form the next group; their index work overlaps
         * the disk wait instead of queueing behind it.  The fd is read
         * here: akidb__wal_reset swaps it only while no one is syncing. */
        w->syncing = 1;
        uint64_t target_seq = w->written_seq, target_size = w->written_size;
        int fd = w->fd;
        pthread_mutex_unlock(&w->sync_lock);
        int err = akidb__fault(env, AKIDB__FAULT_WAL_BEFORE_SYNC);
        if (!err && fdatasync(fd) != 0)
            err = errno;
        pthread_mutex_lock(&w->sync_lock);
        w->syncing = 0;
        int gone = err ? 0 : files_gone(w, 1);
        if (err) {
            w->failed = 1;
            akidb__log(env, AKIDB_LOG_ERROR, "%s: fsync failed (%s); the collection refuses "
                       "writes until reopened", w->path, strerror(err));
        } else if (gone) {
            w->gone = gone;
            akidb__log(env, AKIDB_LOG_ERROR, "%s: the %s was deleted while the database was "
                       "open; the collection refuses writes until a checkpoint writes it "
                       "out again", w->path, gone == GONE_LOG ? "log" : "checkpoint");
        } else {
            if (target_seq > w->synced_seq) {
                w->synced_seq = target_seq;
                w->synced_size = target_size;
            }
            akidb__metric_add((akidb__metrics *)&env->metrics, AKIDB__M_WAL_SYNCS, 1);
        }
        pthread_cond_broadcast(&w->sync_cond);
    }
    int failed = w->failed && w->synced_seq < seq;
    int gone = w->gone && w->synced_seq < seq ? w->gone : 0;
    pthread_mutex_unlock(&w->sync_lock);
    if (failed)
        return akidb__err(AKIDB_IOERR, "%s: fsync failed; the write is applied but may not "
                          "survive a power loss; reopen the database", w->path);
    if (gone)
        return gone_err(w, gone, "the write is applied but not durable");
    return AKIDB_OK;
}

/* A new, empty log at w->path, in place of one that was deleted or
 * replaced: written as PATH.tmp (the directory is made again if it went
 * too; a leftover .tmp is removed at open), synced, renamed into place.
 * Returns the new fd through *fd_out. */
static int recreate(akidb__wal *w, const unsigned char h[AKIDB__WAL_HEADER_LEN], int *fd_out)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", w->path) >= (int)sizeof tmp)
        return akidb__err(AKIDB_INVALID, "%s: path too long", w->path);
    unsigned mode = akidb__env_file_mode(w->env);
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0 && errno == ENOENT && akidb__mkdir_parent(tmp, akidb__env_dir_mode(w->env)) == 0)
        fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return io_err(w, "cannot create a new log", errno);
    int err = akidb__pwrite_all(fd, h, AKIDB__WAL_HEADER_LEN, 0);
    if (!err && fdatasync(fd) != 0)
        err = errno;
    if (!err && rename(tmp, w->path) != 0)
        err = errno;
    if (!err)
        err = akidb__fsync_parent(w->path);
    if (err) {
        close(fd);
        unlink(tmp);
        return io_err(w, "cannot create a new log", err);
    }
    *fd_out = fd;
    return AKIDB_OK;
}

int akidb__wal_reset(akidb__wal *w, uint64_t last_seq)
{
    if (w->fd < 0)
        return akidb__err(AKIDB_READONLY, "%s: the log is open read-only", w->path);
    /* Any crash order is safe: a new header over old records just makes
     * replay skip them (seq <= the checkpoint's); a truncated file under
     * the old header is an empty log after an older base. */
    unsigned char h[AKIDB__WAL_HEADER_LEN];
    make_header(h, w->coll_id, w->dim, last_seq);
    int new_fd = -1;
    if (log_replaced(w)) {
        /* Deleted under us: the checkpoint just written holds every record
         * the lost file had, so a new log at the path completes it. */
        int rc = recreate(w, h, &new_fd);
        if (rc)
            return rc;
        akidb__log(w->env, AKIDB_LOG_WARN, "%s: the log file had been deleted or replaced "
                   "while open; a new one was created after the checkpoint", w->path);
    } else {
        int err = akidb__pwrite_all(w->fd, h, sizeof h, 0);
        if (err)
            return io_err(w, "cannot rewrite log header after checkpoint", err);
        if (ftruncate(w->fd, AKIDB__WAL_HEADER_LEN) != 0 || fdatasync(w->fd) != 0)
            return io_err(w, "cannot empty log after checkpoint", errno);
    }
    w->base_seq = last_seq;
    w->version = WAL_VERSION;
    w->size = AKIDB__WAL_HEADER_LEN;
    pthread_mutex_lock(&w->sync_lock);
    if (new_fd >= 0) {
        while (w->syncing)   /* a leader still fsyncs the old fd */
            pthread_cond_wait(&w->sync_cond, &w->sync_lock);
        close(w->fd);
        w->fd = new_fd;
    }
    note_checkpoint(w);   /* the checkpoint this log now continues */
    w->gone = 0;
    /* Everything up to last_seq is in the checkpoint, which is synced. */
    if (last_seq > w->synced_seq)
        w->synced_seq = last_seq;
    w->written_size = w->synced_size = AKIDB__WAL_HEADER_LEN;
    pthread_cond_broadcast(&w->sync_cond);
    pthread_mutex_unlock(&w->sync_lock);
    return AKIDB_OK;
}

uint64_t akidb__wal_size(const akidb__wal *w) { return w->size; }
uint64_t akidb__wal_last_seq(const akidb__wal *w) { return w->next_seq - 1; }
const char *akidb__wal_path(const akidb__wal *w) { return w->path; }
uint64_t akidb__wal_cut_bytes(const akidb__wal *w) { return w->cut_bytes; }
