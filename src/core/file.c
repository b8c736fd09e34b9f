/* Atomic file replacement, whole-file reads and path joining (see file.h). */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

int fm__parent_dir(char *dir, size_t cap, const char *path, fm_err *err) {
    const char *slash = strrchr(path, '/');
    size_t len = slash ? (size_t)(slash - path) : 1;
    if (len + 2 > cap) {
        errno = ENAMETOOLONG;
        return fm__err(err, "%.200s...: path too long", path);
    }
    if (!slash)
        dir[0] = '.';
    else if (len == 0)
        dir[len++] = '/';
    else
        memcpy(dir, path, len);
    dir[len] = '\0';
    return 0;
}

int fm__sync_parent(const char *path) {
    char dir[4096];
    if (fm__parent_dir(dir, sizeof dir, path, NULL) < 0) return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int fm__atomic_open(fm__atomic *a, const char *path, fm_err *err) {
    a->fd = -1;
    a->error = 0;
    int n = snprintf(a->path, sizeof a->path, "%s", path);
    if (n < 0 || (size_t)n >= sizeof a->path)
        return fm__err(err, "%.200s...: path too long", path);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp", path);
    a->fd = open(a->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (a->fd < 0) return fm__err(err, "%s: cannot create: %s", path, strerror(errno));
    return 0;
}

int fm__atomic_write(fm__atomic *a, const void *data, size_t len) {
    const char *p = data;
    while (len && !a->error) {
        ssize_t n = write(a->fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) a->error = n < 0 ? errno : EIO; /* 0: nothing written, no reason given */
        else p += n, len -= (size_t)n;
    }
    return a->error ? -1 : 0;
}

void fm__atomic_abort(fm__atomic *a) {
    if (a->fd < 0) return;
    close(a->fd);
    a->fd = -1;
    unlink(a->tmp);
}

int fm__atomic_commit(fm__atomic *a, fm_err *err) {
    int saved = a->error;
    if (!saved && fsync(a->fd) != 0) saved = errno;
    /* close reports what a network file system only finds out then */
    if (close(a->fd) != 0 && !saved) saved = errno;
    a->fd = -1;
    if (!saved && rename(a->tmp, a->path) != 0) saved = errno;
    if (saved) {
        unlink(a->tmp);
        return fm__err(err, "%s: write failed: %s (the file is left as it was)", a->path,
                       strerror(saved));
    }
    if (fm__sync_parent(a->path) != 0)
        return fm__err(err, "%s: cannot sync its folder: %s", a->path, strerror(errno));
    return 0;
}

int fm__write_file_atomic(const char *path, const void *data, size_t len, fm_err *err) {
    fm__atomic a;
    if (fm__atomic_open(&a, path, err) < 0) return -1;
    fm__atomic_write(&a, data, len);
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

int fm__make_dirs(const char *path, fm_err *err) {
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf) return fm__err(err, "%s: bad output folder name", path);
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) < 0 && errno != EEXIST)
            return fm__err(err, "%s: cannot create folder: %s", buf, strerror(errno));
        buf[i] = c;
    }
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return fm__err(err, "%s: not a folder", path);
    return 0;
}

int fm_same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}
