/*
 * file.c - POSIX helpers: full reads and writes, directory fsync.
 *
 * A rename or a new file is durable only once its directory is fsync'ed;
 * forgetting that is the classic way to lose a "committed" file on power
 * loss, so every create and rename in the library goes through here.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/file.h"

int akidb__pwrite_all(int fd, const void *buf, size_t len, uint64_t offset)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, (off_t)offset);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (w == 0)
            return EIO;
        p += w;
        len -= (size_t)w;
        offset += (uint64_t)w;
    }
    return 0;
}

ssize_t akidb__pread_full(int fd, void *buf, size_t len, uint64_t offset)
{
    char *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, p + done, len - done, (off_t)(offset + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

int akidb__fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return rc;
}

int akidb__fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof dir)
        return ENAMETOOLONG;
    memcpy(dir, path, len + 1);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return akidb__fsync_dir(".");
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    return akidb__fsync_dir(dir);
}

int akidb__mkdir_parent(const char *path, unsigned mode)
{
    char dir[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof dir)
        return ENAMETOOLONG;
    memcpy(dir, path, len + 1);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    if (mkdir(dir, (mode_t)mode) != 0 && errno != EEXIST)
        return errno;
    return 0;
}

/* Map every page at once: a file mapped here is read whole (checksum,
 * decode), and one populate call costs far less than a page fault per
 * 4 KiB, above all in a virtual machine. */
#ifdef MAP_POPULATE
#define MAP_POPULATE_IF MAP_POPULATE
#else
#define MAP_POPULATE_IF 0
#endif

int akidb__map_file(const char *path, const void **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return AKIDB_NOTFOUND;
        return akidb__err(AKIDB_IOERR, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return akidb__err(AKIDB_IOERR, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return akidb__err(AKIDB_INVALID, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return akidb__err(AKIDB_NOMEM, "%s: %lld bytes do not fit the address space", path,
                          (long long)st.st_size);
    }
    void *p = NULL;
    if (st.st_size > 0) {
        p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE_IF, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return akidb__err(e == ENOMEM ? AKIDB_NOMEM : AKIDB_IOERR,
                              "%s: cannot map %lld bytes: %s", path, (long long)st.st_size,
                              strerror(e));
        }
    }
    close(fd);
    *data = p;
    *len = (size_t)st.st_size;
    return AKIDB_OK;
}

void akidb__unmap_file(const void *data, size_t len)
{
    if (data && len)
        munmap((void *)data, len);
}
