/* Shared helpers of the libFuzzer targets in fuzz/.
 *
 * The readers under test take paths, so each input is handed to them as a
 * file: an in-memory file (memfd_create) named /proc/self/fd/N, rewritten for
 * every input, so no disk I/O and nothing to clean up. Where no memfd is to be
 * had, a file in the process's temporary folder stands in. That folder
 * (mkdtemp under $TMPDIR, else /tmp) also holds what round-trip checks write;
 * it is removed at a normal exit, not when libFuzzer stops on a finding
 * (fuzz/run.sh points TMPDIR at a scratch folder of its own).
 *
 * A target that finds the library breaking one of its own promises (say, a
 * file it wrote that it cannot read back) calls FUZZ_ASSERT, which aborts so
 * libFuzzer reports it like a crash. */
#ifndef FM_FUZZ_UTIL_H
#define FM_FUZZ_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_ASSERT(cond, ...)                                                   \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: fuzz check failed: %s: ", __FILE__, __LINE__, \
                    #cond);                                                      \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
            abort();                                                             \
        }                                                                        \
    } while (0)

static char fuzz__dir[4096];

static inline void fuzz__cleanup(void) {
    if (!fuzz__dir[0]) return;
    DIR *d = opendir(fuzz__dir);
    if (d) {
        struct dirent *e;
        char p[sizeof fuzz__dir + 300];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", fuzz__dir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(fuzz__dir);
    fuzz__dir[0] = 0;
}

/* The process's own temporary folder, created on first use. */
static inline const char *fuzz_tmpdir(void) {
    if (fuzz__dir[0]) return fuzz__dir;
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    snprintf(fuzz__dir, sizeof fuzz__dir, "%s/fmnist-fuzz-XXXXXX", base);
    if (!mkdtemp(fuzz__dir)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(fuzz__cleanup);
    return fuzz__dir;
}

/* A path inside fuzz_tmpdir() (static storage: four rotating buffers). */
static inline const char *fuzz_tmp_path(const char *name) {
    static char buf[4][sizeof fuzz__dir + 64];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", fuzz_tmpdir(), name);
    return buf[k];
}

/* A reusable input file: its path stays the same, its content is replaced. */
typedef struct fuzz_file {
    int fd;
    char path[sizeof fuzz__dir + 64];
} fuzz_file;

static inline void fuzz_file_open(fuzz_file *f, const char *name) {
#ifdef MFD_CLOEXEC
    f->fd = memfd_create(name, MFD_CLOEXEC);
    if (f->fd >= 0) {
        snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
        struct stat st;
        if (stat(f->path, &st) == 0) return; /* /proc is there: use it */
        close(f->fd);
    }
#endif
    snprintf(f->path, sizeof f->path, "%s", fuzz_tmp_path(name));
    f->fd = open(f->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (f->fd < 0) {
        perror(f->path);
        abort();
    }
}

/* Replaces the file's content by data[0..size). */
static inline void fuzz_file_set(fuzz_file *f, const void *data, size_t size) {
    if (!f->path[0]) abort();
    if (ftruncate(f->fd, 0) != 0) abort();
    const char *p = data;
    off_t at = 0;
    while (size) {
        ssize_t w = pwrite(f->fd, p, size, at);
        if (w <= 0) {
            perror("fuzz: pwrite");
            abort();
        }
        p += w;
        at += w;
        size -= (size_t)w;
    }
}

/* The whole content of a file, malloc'd (NULL if unreadable). */
static inline unsigned char *fuzz_slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    for (size_t got; b && (got = fread(b + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            unsigned char *nb = realloc(b, cap *= 2);
            if (!nb) free(b);
            b = nb;
        }
    }
    fclose(f);
    *size = n;
    return b;
}

#endif
