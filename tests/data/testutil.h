/* Helpers shared by the data-layer tests: a scratch folder per test, small
 * files written byte for byte (plain or gzipped), synthetic image sets. */
#ifndef FM_TESTS_DATA_TESTUTIL_H
#define FM_TESTS_DATA_TESTUTIL_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fmnist/fmnist.h"

static char tu__dir[4096];

/* Makes an empty $FMNIST_TEST_TMP/<name> (an absolute path) and remembers it. */
static inline void tu_init(const char *name) {
    const char *base = getenv("FMNIST_TEST_TMP");
    char cwd[2048];
    if (!base || !*base) base = "test-tmp";
    if (base[0] != '/' && getcwd(cwd, sizeof cwd))
        snprintf(tu__dir, sizeof tu__dir, "%s/%s/%s", cwd, base, name);
    else
        snprintf(tu__dir, sizeof tu__dir, "%s/%s", base, name);
    char rm[4200];
    snprintf(rm, sizeof rm, "rm -rf '%s'", tu__dir); /* what an earlier run left */
    if (system(rm) != 0) exit(1);
    /* mkdir -p */
    for (char *p = tu__dir + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tu__dir, 0777);
            *p = '/';
        }
    if (mkdir(tu__dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot make %s: %s\n", tu__dir, strerror(errno));
        exit(1);
    }
}

/* tu__dir/name, in one of 8 rotating buffers so several can be live. */
static inline const char *tu_path(const char *name) {
    static char bufs[8][4352];
    static int next;
    char *b = bufs[next++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", tu__dir, name);
    return b;
}

static inline void tu_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static inline void tu_write_gz(const char *path, const void *data, size_t n) {
    gzFile g = gzopen(path, "wb");
    if (!g || (n && gzwrite(g, data, (unsigned)n) != (int)n) || gzclose(g) != Z_OK) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

/* Whole file into memory (caller frees); NULL if unreadable. */
static inline unsigned char *tu_read(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0, r;
    unsigned char *b = malloc(cap);
    while ((r = fread(b + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) b = realloc(b, cap *= 2);
    }
    fclose(f);
    *n = len;
    return b;
}

/* A set of n images whose bytes depend on (seed, image, pixel), labels i % 10. */
static inline void tu_make_set(fm_images *imgs, size_t n, unsigned seed) {
    if (fm_images_alloc(imgs, n, NULL) < 0) exit(1);
    for (size_t i = 0; i < n; i++) {
        imgs->labels[i] = (uint8_t)(i % 10);
        for (int j = 0; j < FM_IMAGE_PIXELS; j++)
            imgs->pixels[i * FM_IMAGE_PIXELS + j] = (uint8_t)((i * 31 + (size_t)j * 7 + seed) % 256);
    }
}

static inline int tu_same_set(const fm_images *a, const fm_images *b) {
    return a->count == b->count && a->count > 0 &&
           !memcmp(a->pixels, b->pixels, a->count * FM_IMAGE_PIXELS) &&
           !memcmp(a->labels, b->labels, a->count);
}

/* rc < 0 and the message holds both fragments (b may be NULL). */
#define CHECK_ERR(rc, err, a, b)                                                           \
    CHECK_MSG((rc) < 0 && strstr((err).msg, (a)) && (!(b) || strstr((err).msg, (b) ? (b) : "")), \
              "rc %d, message: %s", (rc), (err).msg)

/* 1 when dir/name exists (a file or a folder), 0 otherwise. */
static inline int tu_exists(const char *dir, const char *name) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* 1 when dir holds no "*.tmp" left over from an atomic write, 0 otherwise
 * (or when dir cannot be read). */
static inline int tu_no_temp_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int clean = 1;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp")) clean = 0;
    closedir(d);
    return clean;
}

#endif
