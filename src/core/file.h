/* Files: replacing them atomically, reading them whole, and joining paths.
 *
 * An atomic write puts everything in PATH.tmp, which fm__atomic_commit
 * syncs, renames over PATH, and then syncs the folder, so a crash at any
 * instant leaves the old file or the new one, whole, never a mix or a stump.
 * A write past RLIMIT_FSIZE raises SIGXFSZ, which kills the process unless
 * it is ignored (the fmnist command ignores it; see fmnist.h): ignored, the
 * write fails with EFBIG and is reported like any other. */
#ifndef FM_CORE_FILE_H
#define FM_CORE_FILE_H

#include <stddef.h>

#include "fmnist/fmnist.h"

typedef struct fm__atomic {
    int fd;    /* the temporary file */
    int error; /* errno of the first failed write; 0 while none failed */
    char path[4096], tmp[4100];
} fm__atomic;

/* Opens PATH.tmp for writing. */
int fm__atomic_open(fm__atomic *a, const char *path, fm_err *err);
/* Appends len bytes with write(2), so a failure keeps its errno (ENOSPC,
 * EFBIG, EIO, ...) for the commit to report; -1 then, and later writes do
 * nothing. */
int fm__atomic_write(fm__atomic *a, const void *data, size_t len);
/* Puts the new file in place; on any failure (a write error included) the
 * temporary file is removed, the old file is untouched and err names the
 * file and the real reason ("PATH: write failed: No space left on device
 * (the file is left as it was)"). */
int fm__atomic_commit(fm__atomic *a, fm_err *err);
/* Gives up: closes and removes the temporary file. */
void fm__atomic_abort(fm__atomic *a);

/* A whole file from memory, atomically. */
int fm__write_file_atomic(const char *path, const void *data, size_t len, fm_err *err);

/* The folder holding path: "a/b" for "a/b/c", "." for "c", "/" for "/c";
 * -1 (errno ENAMETOOLONG) when it does not fit cap bytes. */
int fm__parent_dir(char *dir, size_t cap, const char *path, fm_err *err);

/* fsync of the folder holding path, so a rename into it survives a crash. */
int fm__sync_parent(const char *path);

/* Reads all of path into *data (malloc'd, with a NUL after the last byte so
 * text can be used as a string) and *len. Files larger than max bytes are
 * refused: the message says "larger than MAX bytes". */
int fm__read_file(const char *path, size_t max, char **data, size_t *len, fm_err *err);

/* out = "dir/name" (cap bytes at most, NUL included); -1 and "dir: path too
 * long" when it does not fit. */
int fm__path_join(char *out, size_t cap, const char *dir, const char *name, fm_err *err);

/* mkdir -p: path and the folders above it; -1 when one cannot be made or
 * path is not a folder. */
int fm__make_dirs(const char *path, fm_err *err);

/* Whether two paths name one file is fm_same_file (fmnist.h). */

#endif
