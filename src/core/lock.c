/* The run folder lock (see lock.h), and fm_run_lock, its public face. flock is BSD, not POSIX, but Linux and
 * the BSDs have it, and unlike fcntl's locks it belongs to the open file, so
 * one process's two opens exclude each other and a close elsewhere in the
 * process does not drop it. */
#include "core/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"

/* The process id written in the lock file, or 0 when there is none yet. */
static long holder(int fd) {
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    buf[n] = 0;
    long pid = strtol(buf, NULL, 10);
    return pid > 0 ? pid : 0;
}

int fm__lock_take(fm__lock *l, const char *dir, const char *instead, fm_err *err) {
    l->fd = -1;
    if (fm__path_join(l->path, sizeof l->path, dir, FM__LOCK_FILE, err) < 0) return -1;
    /* A few tries: the file may be removed by its holder as we lock it. */
    for (int attempt = 0; attempt < 16; attempt++) {
        int fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0) return fm__err(err, "%s: cannot create the lock file: %s", l->path, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            long pid = holder(fd);
            close(fd);
            if (e != EWOULDBLOCK) return fm__err(err, "%s: cannot lock: %s", l->path, strerror(e));
            if (pid == (long)getpid()) return 0; /* this process holds it already */
            char who[48] = "";
            if (pid) snprintf(who, sizeof who, " (pid %ld)", pid);
            return fm__err(err, "%s: in use by another fmnist process%s; wait for it to end%s%s",
                           dir, who, instead ? ", or " : "", instead ? instead : "");
        }
        /* Locked; but if the holder before us removed the file meanwhile,
         * the lock is on a file nobody else will ever open: try again. */
        struct stat held, named;
        if (fstat(fd, &held) == 0 && stat(l->path, &named) == 0 && held.st_dev == named.st_dev &&
            held.st_ino == named.st_ino) {
            char pid[32];
            int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
                int e = errno ? errno : EIO;
                close(fd);
                return fm__err(err, "%s: cannot write the lock file: %s", l->path, strerror(e));
            }
            l->fd = fd;
            return 0;
        }
        close(fd);
    }
    return fm__err(err, "%s: cannot lock: the lock file keeps being replaced", l->path);
}

void fm__lock_release(fm__lock *l) {
    if (l->fd < 0) return;
    /* removed while still held: whoever opened it meanwhile sees that it is gone */
    unlink(l->path);
    close(l->fd);
    l->fd = -1;
}

struct fm_run_lock {
    fm__lock lock;
};

fm_run_lock *fm_run_lock_take(const char *dir, int *created, const char *instead, fm_err *err) {
    fm_run_lock *l = malloc(sizeof *l);
    if (!l) {
        fm__err(err, "%s: out of memory", dir);
        return NULL;
    }
    int made = 0;
    if (created) {
        made = access(dir, F_OK) != 0;
        if (fm__make_dirs(dir, err) < 0) {
            free(l);
            return NULL;
        }
    }
    if (fm__lock_take(&l->lock, dir, instead, err) < 0) {
        if (made) rmdir(dir);
        free(l);
        return NULL;
    }
    if (created) *created = made;
    return l;
}

void fm_run_lock_release(fm_run_lock *l) {
    if (!l) return;
    fm__lock_release(&l->lock);
    free(l);
}
