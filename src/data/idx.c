/* The IDX layout of the original distribution: a big-endian header (magic
 * 00 00 08 NDIMS, then one 32-bit size per dimension) followed by unsigned
 * bytes. Images are 3-dimensional (count x 28 x 28), labels 1-dimensional.
 *
 * Files are read through zlib's gz interface, which reads plain files as they
 * are, so both `.gz` and uncompressed files work. A header may claim any
 * count, so nothing is allocated from it alone: a plain file's claim is
 * checked against its size first, and a gzipped one's buffer only grows as
 * decompressed data actually arrives. Errors name the file and the byte
 * offset (in the decompressed stream for .gz files). */
#include "data/data.h"
#include "core/error.h"
#include "core/file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Read size, and the first allocation for a gzipped file's payload. */
#define IDX_CHUNK (1u << 22)

static uint32_t be32(const uint8_t *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static void put_be32(uint8_t *b, uint32_t v) {
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

/* Reads up to n bytes into buf, *got of them (short only at the end of the
 * data); -1 when zlib reports an error, including a truncated gzip stream.
 * zlib decompresses ahead, so an error can be pending while bytes before it
 * are still delivered: it only counts once a read comes up short. */
static int read_full(gzFile g, uint8_t *buf, size_t n, size_t *got) {
    *got = 0;
    while (*got < n) {
        size_t want = n - *got < IDX_CHUNK ? n - *got : IDX_CHUNK;
        int r = gzread(g, buf + *got, (unsigned)want);
        if (r < 0) return -1;
        if (r == 0) break;
        *got += (size_t)r;
    }
    int errnum = Z_OK;
    if (*got < n) gzerror(g, &errnum);
    return errnum == Z_OK ? 0 : -1;
}

static int gz_fail(const char *path, gzFile g, unsigned long long offset, fm_err *err) {
    int errnum;
    const char *msg = gzerror(g, &errnum);
    size_t plen = strlen(path);
    if (errnum == Z_ERRNO) msg = strerror(errno);
    else if (!strncmp(msg, path, plen) && !strncmp(msg + plen, ": ", 2)) msg += plen + 2;
    return fm__err(err, "%s: corrupt or truncated gzip data near decompressed offset %llu: %s", path,
                   offset, msg);
}

/* Reads one IDX file whose data has `dims` dimensions (3: images, 1: labels)
 * into *data: count images of 28x28 bytes, or count labels. */
static int read_idx(const char *path, int dims, uint32_t *count, uint8_t **data, fm_err *err) {
    const char *what = dims == 3 ? "images" : "labels";
    struct stat st;
    if (stat(path, &st) != 0) return fm__err(err, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return fm__err(err, "%s: is a folder, expected an IDX file", path);
    errno = 0;
    gzFile g = gzopen(path, "rb");
    if (!g) return fm__err(err, "%s: %s", path, errno ? strerror(errno) : "cannot open");
    gzbuffer(g, 1u << 18);
    *data = NULL;
    uint8_t *buf = NULL;
    int rc = -1;
    const size_t hlen = 4 + 4 * (size_t)dims;
    uint8_t hdr[16];
    size_t n;
    if (read_full(g, hdr, hlen, &n) < 0) {
        gz_fail(path, g, n, err);
        goto done;
    }
    if (n == 0) {
        fm__err(err, "%s: empty file", path);
        goto done;
    }
    if (n < 4 || hdr[0] != 0 || hdr[1] != 0) {
        fm__err(err, "%s: offset 0: not an IDX file (bad magic number)", path);
        goto done;
    }
    if (hdr[2] != 0x08) {
        fm__err(err, "%s: offset 2: data type 0x%02x, expected 0x08 (unsigned bytes)", path, hdr[2]);
        goto done;
    }
    if (hdr[3] != dims) {
        fm__err(err, "%s: offset 3: %d dimensions, expected %d for %s", path, hdr[3], dims, what);
        goto done;
    }
    if (n < hlen) {
        fm__err(err, "%s: offset %zu: truncated header (%zu of %zu bytes)", path, n, n, hlen);
        goto done;
    }
    *count = be32(hdr + 4);
    if (dims == 3 && (be32(hdr + 8) != FM_IMAGE_ROWS || be32(hdr + 12) != FM_IMAGE_COLS)) {
        fm__err(err, "%s: offset 8: images are %ux%u, expected %dx%d", path, be32(hdr + 8),
                be32(hdr + 12), FM_IMAGE_ROWS, FM_IMAGE_COLS);
        goto done;
    }
    if (*count == 0) {
        fm__err(err, "%s: offset 4: the header says 0 %s", path, what);
        goto done;
    }
    const size_t item = dims == 3 ? FM_IMAGE_PIXELS : 1;
    const unsigned long long want = (unsigned long long)*count * item;
    if (want > SIZE_MAX) {
        fm__err(err, "%s: offset 4: %u %s do not fit in memory", path, *count, what);
        goto done;
    }
    int plain = gzdirect(g);
    if (plain) {
        unsigned long long have = (unsigned long long)st.st_size - hlen;
        if (have < want) {
            fm__err(err, "%s: offset %llu: truncated: the header says %u %s (%llu bytes) but the file "
                    "ends here",
                    path, (unsigned long long)st.st_size, *count, what, want);
            goto done;
        }
        if (have > want) {
            fm__err(err, "%s: offset %llu: %llu bytes of unexpected data after the last of %u %s",
                    path, hlen + want, have - want, *count, what);
            goto done;
        }
    }
    /* Plain: the size is verified, allocate it all. Gzipped: start small and
     * double as data arrives, so a lying header costs nothing. */
    size_t cap = plain || want < IDX_CHUNK ? (size_t)want : IDX_CHUNK, got = 0;
    buf = malloc(cap);
    if (!buf) {
        fm__err(err, "%s: out of memory for %u %s", path, *count, what);
        goto done;
    }
    for (;;) {
        int bad = read_full(g, buf + got, cap - got, &n);
        got += n;
        if (bad) {
            gz_fail(path, g, hlen + got, err);
            goto done;
        }
        if (got < cap || cap == want) break;
        size_t next = cap * 2 < want ? cap * 2 : (size_t)want;
        uint8_t *b = realloc(buf, next);
        if (!b) {
            fm__err(err, "%s: out of memory for %u %s", path, *count, what);
            goto done;
        }
        buf = b;
        cap = next;
    }
    if (got < want) {
        fm__err(err, "%s: offset %llu (decompressed): truncated: the header says %u %s but the data "
                "holds %zu",
                path, hlen + (unsigned long long)got, *count, what, got / item);
        goto done;
    }
    uint8_t extra;
    if (read_full(g, &extra, 1, &n) < 0) {
        gz_fail(path, g, hlen + got, err);
        goto done;
    }
    if (n > 0) {
        fm__err(err, "%s: offset %llu: unexpected data after the last of %u %s", path,
                hlen + (unsigned long long)got, *count, what);
        goto done;
    }
    *data = buf;
    buf = NULL;
    rc = 0;
done:
    free(buf);
    gzclose(g);
    return rc;
}

int fm_data_load_idx(const char *images_path, const char *labels_path, fm_images *out,
                     fm_err *err) {
    memset(out, 0, sizeof *out);
    uint32_t n_images, n_labels;
    uint8_t *pixels, *labels;
    if (read_idx(images_path, 3, &n_images, &pixels, err) < 0) return -1;
    if (read_idx(labels_path, 1, &n_labels, &labels, err) < 0) {
        free(pixels);
        return -1;
    }
    int rc = 0;
    if (n_images != n_labels) {
        rc = fm__err(err, "%s has %u images but %s has %u labels", images_path, n_images,
                     labels_path, n_labels);
    } else {
        for (uint32_t i = 0; i < n_labels; i++)
            if (labels[i] > 9) {
                rc = fm__err(err, "%s: offset %llu: label %u (item %u) is out of range 0..9",
                             labels_path, 8ull + i, labels[i], i);
                break;
            }
    }
    if (rc < 0) {
        free(pixels);
        free(labels);
        return -1;
    }
    out->count = n_images;
    out->pixels = pixels;
    out->labels = labels;
    return 0;
}

/* Writes one gzipped IDX file, the header then n bytes of data, through the
 * atomic writer: zlib writes to a duplicate of the temporary file's
 * descriptor, so the commit's fsync and rename cover every compressed byte. */
static int write_idx(const char *path, const uint8_t *hdr, size_t hlen, const uint8_t *data,
                     size_t n, fm_err *err) {
    fm__atomic a;
    if (fm__atomic_open(&a, path, err) < 0) return -1;
    int fd = dup(a.fd);
    gzFile g = fd < 0 ? NULL : gzdopen(fd, "wb6");
    if (!g) {
        int saved = errno ? errno : ENOMEM;
        if (fd >= 0) close(fd);
        fm__atomic_abort(&a);
        return fm__err(err, "%s: cannot start gzip compression: %s", path, strerror(saved));
    }
    int ok = gzwrite(g, hdr, (unsigned)hlen) == (int)hlen;
    for (size_t off = 0; ok && off < n; off += IDX_CHUNK) {
        unsigned len = (unsigned)(n - off < IDX_CHUNK ? n - off : IDX_CHUNK);
        ok = gzwrite(g, data + off, len) == (int)len;
    }
    char why[256] = "";
    if (!ok) {
        int errnum;
        const char *msg = gzerror(g, &errnum);
        snprintf(why, sizeof why, "%s", errnum == Z_ERRNO ? strerror(errno) : msg);
    }
    int closed = gzclose(g); /* flushes the last compressed block, closes the duplicate */
    if (closed != Z_OK && ok) {
        ok = 0;
        snprintf(why, sizeof why, "%s", closed == Z_ERRNO ? strerror(errno) : "zlib error");
    }
    if (!ok) {
        fm__atomic_abort(&a);
        return fm__err(err, "%s: write failed: %s", path, why);
    }
    return fm__atomic_commit(&a, err);
}

int fm__idx_write(const char *images_path, const char *labels_path, const fm_images *imgs,
                  fm_err *err) {
    if (imgs->count > UINT32_MAX)
        return fm__err(err, "%s: %zu images do not fit an IDX header", images_path, imgs->count);
    uint8_t hdr[16] = {0, 0, 0x08, 3};
    put_be32(hdr + 4, (uint32_t)imgs->count);
    put_be32(hdr + 8, FM_IMAGE_ROWS);
    put_be32(hdr + 12, FM_IMAGE_COLS);
    if (write_idx(images_path, hdr, 16, imgs->pixels, imgs->count * FM_IMAGE_PIXELS, err) < 0)
        return -1;
    hdr[3] = 1;
    return write_idx(labels_path, hdr, 8, imgs->labels, imgs->count, err);
}
