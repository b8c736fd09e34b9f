/* Atomic file replacement, whole-file reads and path joining (see file.h). */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

int fm__sync_parent(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    size_t len = slash ? (size_t)(slash - path) : 1;
    if (len >= sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (!slash)
        dir[0] = '.';
    else if (len == 0)
        dir[len++] = '/';
    else
        memcpy(dir, path, len);
    dir[len] = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int fm__atomic_open(fm__atomic *a, const char *path, fm_err *err) {
    a->f = NULL;
    int n = snprintf(a->path, sizeof a->path, "%s", path);
    if (n < 0 || (size_t)n >= sizeof a->path)
        return fm__err(err, "%.200s...: path too long", path);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp", path);
    if (!(a->f = fopen(a->tmp, "wb")))
        return fm__err(err, "%s: cannot create: %s", a->tmp, strerror(errno));
    return 0;
}

void fm__atomic_abort(fm__atomic *a) {
    if (!a->f) return;
    fclose(a->f);
    a->f = NULL;
    remove(a->tmp);
}

int fm__atomic_commit(fm__atomic *a, fm_err *err) {
    errno = 0;
    int ok = !ferror(a->f) && fflush(a->f) == 0 && fsync(fileno(a->f)) == 0;
    int saved = errno ? errno : EIO; /* a failed write need not set errno */
    if (fclose(a->f) != 0 && ok) ok = 0, saved = errno;
    a->f = NULL;
    if (ok && rename(a->tmp, a->path) != 0) ok = 0, saved = errno;
    if (!ok) {
        remove(a->tmp);
        return fm__err(err, "%s: write failed: %s", a->path, strerror(saved));
    }
    if (fm__sync_parent(a->path) != 0)
        return fm__err(err, "%s: cannot sync its folder: %s", a->path, strerror(errno));
    return 0;
}

int fm__write_file_atomic(const char *path, const void *data, size_t len, fm_err *err) {
    fm__atomic a;
    if (fm__atomic_open(&a, path, err) < 0) return -1;
    if (len && fwrite(data, 1, len, a.f) != len) {
        int saved = errno ? errno : EIO;
        fm__atomic_abort(&a);
        return fm__err(err, "%s: write failed: %s", path, strerror(saved));
    }
    return fm__atomic_commit(&a, err);
}

int fm__read_file(const char *path, size_t max, char **data, size_t *len, fm_err *err) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return fm__err(err, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            /* grow by doubling, but read at most max + 1 bytes: one past the
             * limit is enough to tell the file is too large */
            size_t want = cap ? cap * 2 : 4096;
            if (want > max + 1) want = max + 1;
            char *p = want > cap ? realloc(buf, want + 1) : NULL;
            if (!p) {
                free(buf);
                fclose(f);
                if (want <= cap) return fm__err(err, "%s: larger than %zu bytes", path, max);
                return fm__err(err, "%s: out of memory", path);
            }
            buf = p;
            cap = want;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad || n > max) {
        free(buf);
        return bad ? fm__err(err, "%s: read error", path)
                   : fm__err(err, "%s: larger than %zu bytes", path, max);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

int fm__path_join(char *out, size_t cap, const char *dir, const char *name, fm_err *err) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return fm__err(err, "%s: path too long", dir);
    return 0;
}
