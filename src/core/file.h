/* Replacing files atomically: everything is written to PATH.tmp, which
 * fm__atomic_commit flushes, syncs, renames over PATH, and then syncs the
 * folder, so a crash at any instant leaves the old file or the new one,
 * whole, never a mix or a stump. */
#ifndef FM_CORE_FILE_H
#define FM_CORE_FILE_H

#include <stdio.h>

#include "fmnist/fmnist.h"

typedef struct fm__atomic {
    FILE *f; /* write the new contents here */
    char path[4096], tmp[4100];
} fm__atomic;

/* Opens PATH.tmp for writing (binary). */
int fm__atomic_open(fm__atomic *a, const char *path, fm_err *err);
/* Puts the new file in place; on any failure (a write error included) the
 * temporary file is removed and err names the file and the reason. */
int fm__atomic_commit(fm__atomic *a, fm_err *err);
/* Gives up: closes and removes the temporary file. */
void fm__atomic_abort(fm__atomic *a);

/* A whole file from memory, atomically. */
int fm__write_file_atomic(const char *path, const void *data, size_t len, fm_err *err);

/* fsync of the folder holding path, so a rename into it survives a crash. */
int fm__sync_parent(const char *path);

#endif
