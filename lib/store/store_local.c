/*
 * store_local.c - an object store in a local directory: the default store
 * (cold tier and snapshots work with no network), and a reference backend
 * for the conformance tests.
 *
 * A key "a/b/c" is the file ROOT/a/b/c.  Safety: keys are checked by the
 * dispatch layer (no "..", no leading '/'), and every path is walked one
 * segment at a time with openat(O_NOFOLLOW), so even a symlink planted
 * inside ROOT cannot lead a read or write outside it.
 *
 * Atomic puts: the bytes go to "<name>.<random>.akidb-tmp" in the target
 * directory, which is fsync'ed, renamed over the name, and the directory
 * fsync'ed; readers see the old object or the new one.  Listings skip
 * temporary files, and keys whose last segment ends in ".akidb-tmp" are
 * refused, so the two can never be confused.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/file.h"
#include "store/store.h"

#define TMP_SUFFIX ".akidb-tmp"

typedef struct local_store {
    akidb_store base;
    char *root;
    int root_fd;
    unsigned file_mode;   /* of objects; directories add x where r is set */
    unsigned dir_mode;
} local_store;

static int os_err(const char *op, const char *key, int err)
{
    char q[96];
    return akidb__err(AKIDB_IOERR, "local store: %s \"%s\": %s", op,
                      akidb__quote(q, sizeof q, key, 60), strerror(err));
}

static int refuse_tmp_name(const char *key)
{
    size_t len = strlen(key), sl = strlen(TMP_SUFFIX);
    if (len >= sl && strcmp(key + len - sl, TMP_SUFFIX) == 0) {
        char q[96];
        return akidb__err(AKIDB_INVALID, "local store: key \"%s\" ends in %s, which is "
                          "reserved for temporary files", akidb__quote(q, sizeof q, key, 60),
                          TMP_SUFFIX);
    }
    return AKIDB_OK;
}

/* Open the directory holding `key`'s last segment; *leaf points into key.
 * create = 1 makes missing directories.  Returns an fd, or -errno. */
static int open_parent(const local_store *ls, const char *key, int create, const char **leaf)
{
    int fd = dup(ls->root_fd);
    if (fd < 0)
        return -errno;
    const char *seg = key;
    for (;;) {
        const char *slash = strchr(seg, '/');
        if (!slash)
            break;
        char name[AKIDB_MAX_KEY_LEN + 1];
        size_t n = (size_t)(slash - seg);
        memcpy(name, seg, n);
        name[n] = '\0';
        if (create && mkdirat(fd, name, (mode_t)ls->dir_mode) != 0 && errno != EEXIST) {
            int err = errno;
            close(fd);
            return -err;
        }
        int next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int err = errno;
        close(fd);
        if (next < 0)
            return -(err == ENOTDIR || err == ELOOP ? ENOENT : err);
        fd = next;
        seg = slash + 1;
    }
    *leaf = seg;
    return fd;
}

static int local_get(akidb_store *s, const char *key, uint64_t offset, uint64_t len,
                     void **buf_out, size_t *len_out)
{
    local_store *ls = (local_store *)s;
    const char *leaf;
    int dir = open_parent(ls, key, 0, &leaf);
    if (dir < 0)
        return dir == -ENOENT ? akidb__err(AKIDB_NOTFOUND, "local store: no object \"%s\"", key)
                              : os_err("get", key, -dir);
    int fd = openat(dir, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    close(dir);
    if (fd < 0)
        return err == ENOENT || err == ELOOP
            ? akidb__err(AKIDB_NOTFOUND, "local store: no object \"%s\"", key)
            : os_err("get", key, err);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return akidb__err(AKIDB_NOTFOUND, "local store: no object \"%s\"", key);
    }
    uint64_t size = (uint64_t)st.st_size;
    uint64_t avail = offset < size ? size - offset : 0;
    uint64_t want = len < avail ? len : avail;
    if (want > SIZE_MAX - 1) {
        close(fd);
        return akidb__err(AKIDB_NOMEM, "local store: %llu bytes of \"%s\" do not fit in memory",
                          (unsigned long long)want, key);
    }
    char *buf = akidb__out_malloc((size_t)want + 1);
    if (!buf) {
        close(fd);
        return akidb__err(AKIDB_NOMEM, "local store: out of memory reading \"%s\"", key);
    }
    akidb__advise_huge(&akidb__default_allocator, buf, (size_t)want + 1);
    ssize_t got = want ? akidb__pread_full(fd, buf, (size_t)want, offset) : 0;
    close(fd);
    if (got < 0) {
        akidb__out_free(buf);
        return os_err("get", key, (int)-got);
    }
    *buf_out = buf;
    *len_out = (size_t)got;
    return AKIDB_OK;
}

static int local_size(akidb_store *s, const char *key, uint64_t *size_out)
{
    local_store *ls = (local_store *)s;
    const char *leaf;
    int dir = open_parent(ls, key, 0, &leaf);
    if (dir < 0)
        return dir == -ENOENT ? akidb__err(AKIDB_NOTFOUND, "local store: no object \"%s\"", key)
                              : os_err("size", key, -dir);
    struct stat st;
    int rc = fstatat(dir, leaf, &st, AT_SYMLINK_NOFOLLOW);
    int err = errno;
    close(dir);
    if (rc != 0 || !S_ISREG(st.st_mode))
        return rc != 0 && err != ENOENT ? os_err("size", key, err)
                                        : akidb__err(AKIDB_NOTFOUND, "local store: no object "
                                                     "\"%s\"", key);
    *size_out = (uint64_t)st.st_size;
    return AKIDB_OK;
}

static int local_put(akidb_store *s, const char *key, const void *buf, size_t len)
{
    local_store *ls = (local_store *)s;
    int rc = refuse_tmp_name(key);
    if (rc)
        return rc;
    const char *leaf;
    int dir = open_parent(ls, key, 1, &leaf);
    if (dir < 0)
        return dir == -ENOENT
            ? akidb__err(AKIDB_INVALID, "local store: put \"%s\": a path segment is a file",
                         key)
            : os_err("put", key, -dir);
    char tmp[AKIDB_MAX_KEY_LEN + 64];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(tmp, sizeof tmp, "%s.%ld%09ld.%d%s", leaf, (long)ts.tv_sec, ts.tv_nsec,
             (int)getpid(), TMP_SUFFIX);
    int err = 0;
    int fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    (mode_t)ls->file_mode);
    if (fd < 0) {
        err = errno;
    } else {
        err = akidb__pwrite_all(fd, buf, len, 0);
        if (!err && fsync(fd) != 0)
            err = errno;
        close(fd);
        if (!err && renameat(dir, tmp, dir, leaf) != 0)
            err = errno;
        if (!err && fsync(dir) != 0)
            err = errno;
        if (err)
            unlinkat(dir, tmp, 0);
    }
    close(dir);
    if (err == EISDIR || err == ENOTEMPTY || err == EEXIST)
        return akidb__err(AKIDB_INVALID, "local store: put \"%s\": a directory has that name",
                          key);
    return err ? os_err("put", key, err) : AKIDB_OK;
}

static int local_del(akidb_store *s, const char *key)
{
    local_store *ls = (local_store *)s;
    const char *leaf;
    int dir = open_parent(ls, key, 0, &leaf);
    if (dir < 0)
        return dir == -ENOENT ? AKIDB_OK : os_err("delete", key, -dir);
    struct stat st;
    int err = 0;
    if (fstatat(dir, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
        err = 0;   /* a directory is not an object: nothing to delete */
    else if (unlinkat(dir, leaf, 0) != 0 && errno != ENOENT)
        err = errno;
    else if (fsync(dir) != 0)
        err = errno;
    close(dir);
    return err ? os_err("delete", key, err) : AKIDB_OK;
}

/* ---- list ------------------------------------------------------------ */

typedef struct entry { char *key; uint64_t size; } entry;
typedef struct entries { entry *e; size_t n, cap; } entries;

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->key, ((const entry *)b)->key);
}

/* Walk directory fd (whose keys start with `base`), collecting regular
 * files whose key starts with prefix.  Descends only where the prefix can
 * still match. */
static int walk(int fd, char *base, size_t base_len, const char *prefix, size_t prefix_len,
                entries *out, int depth)
{
    if (depth > 256)
        return AKIDB_OK;   /* deeper than any valid key can reach */
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return errno;
    }
    int err = 0;
    struct dirent *de;
    while (!err && (de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        size_t nl = strlen(name), sl = strlen(TMP_SUFFIX);
        if (nl >= sl && strcmp(name + nl - sl, TMP_SUFFIX) == 0)
            continue;
        if (base_len + nl + 1 > AKIDB_MAX_KEY_LEN)
            continue;
        memcpy(base + base_len, name, nl + 1);
        size_t key_len = base_len + nl;
        size_t cmp = key_len < prefix_len ? key_len : prefix_len;
        if (memcmp(base, prefix, cmp) != 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                continue;
            base[key_len] = '/';
            base[key_len + 1] = '\0';
            err = walk(sub, base, key_len + 1, prefix, prefix_len, out, depth + 1);
        } else if (S_ISREG(st.st_mode) && key_len >= prefix_len) {
            if (out->n == out->cap) {
                size_t cap = out->cap ? out->cap * 2 : 64;
                entry *e = realloc(out->e, cap * sizeof *e);
                if (!e) {
                    err = ENOMEM;
                    break;
                }
                out->e = e;
                out->cap = cap;
            }
            if (!(out->e[out->n].key = strdup(base))) {
                err = ENOMEM;
                break;
            }
            out->e[out->n++].size = (uint64_t)st.st_size;
        }
    }
    closedir(d);
    return err;
}

static int local_list(akidb_store *s, const char *prefix,
                      int (*cb)(void *ctx, const char *key, uint64_t size), void *ctx)
{
    local_store *ls = (local_store *)s;
    entries out = { NULL, 0, 0 };
    char base[AKIDB_MAX_KEY_LEN + 2] = "";
    /* A fresh open file description: a dup() would share (and advance)
     * the root descriptor's directory offset. */
    int fd = openat(ls->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int err = fd < 0 ? errno : walk(fd, base, 0, prefix, strlen(prefix), &out, 0);
    int rc = AKIDB_OK;
    if (err == ENOMEM)
        rc = akidb__err(AKIDB_NOMEM, "local store: out of memory listing \"%s\"", prefix);
    else if (err)
        rc = os_err("list", prefix, err);
    if (rc == AKIDB_OK) {
        if (out.n)
            qsort(out.e, out.n, sizeof *out.e, cmp_entry);
        for (size_t i = 0; i < out.n && rc == AKIDB_OK; i++)
            rc = cb(ctx, out.e[i].key, out.e[i].size);
    }
    for (size_t i = 0; i < out.n; i++)
        free(out.e[i].key);
    free(out.e);
    return rc;
}

static void local_destroy(akidb_store *s)
{
    local_store *ls = (local_store *)s;
    close(ls->root_fd);
    free(ls->root);
    free(ls);
}

static const akidb_store_methods local_methods = {
    AKIDB_STORE_METHODS_VERSION, local_get, local_size, local_put, local_del, local_list,
    local_destroy
};

int akidb__store_local_new(const char *dir, unsigned file_mode, akidb_store **out)
{
    *out = NULL;
    file_mode &= 0777u;
    unsigned dir_mode = file_mode | ((file_mode & 0444u) >> 2);
    if (mkdir(dir, (mode_t)dir_mode) != 0 && errno != EEXIST)
        return akidb__err(AKIDB_IOERR, "local store: cannot create %s: %s", dir, strerror(errno));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return akidb__err(AKIDB_IOERR, "local store: cannot open %s: %s", dir, strerror(errno));
    local_store *ls = calloc(1, sizeof *ls);
    char *root = strdup(dir);
    if (!ls || !root) {
        free(ls);
        free(root);
        close(fd);
        return akidb__err(AKIDB_NOMEM, "local store: out of memory");
    }
    ls->base.methods = &local_methods;
    ls->root = root;
    ls->root_fd = fd;
    ls->file_mode = file_mode;
    ls->dir_mode = dir_mode;
    *out = &ls->base;
    return AKIDB_OK;
}

int akidb_store_local_open(const char *dir, akidb_store **out)
{
    akidb__err_clear();
    if (!out)
        return akidb__err(AKIDB_MISUSE, "akidb_store_local_open: out must not be NULL");
    *out = NULL;
    if (!dir)
        return akidb__err(AKIDB_MISUSE, "akidb_store_local_open: dir must not be NULL");
    return akidb__store_local_new(dir, 0644, out);
}
