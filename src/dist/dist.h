/* The processes of a data-parallel run (MPI, when compiled in and started
 * by mpirun): who this process is and the collectives training needs. In a
 * world of one process every collective is the identity and costs nothing,
 * so the training code calls them unconditionally. Every process must make
 * the same collective calls in the same order. A collective that fails
 * (another process gone) returns -1 with err set. */
#ifndef FM_DIST_DIST_H
#define FM_DIST_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "fmnist/fmnist.h"
#include "model/safetensors.h"

/* This process's place: rank 0..size-1. */
typedef struct fm__dist {
    int rank, size;
} fm__dist;

/* The world fm_dist_init joined (one process before, or without MPI). */
const fm__dist *fm__dist_world(void);

/* The share [*lo, *hi) of n items that rank takes: rank r gets
 * n * r / size .. n * (r + 1) / size, so shares differ by one at most. */
void fm__dist_share(const fm__dist *d, size_t n, size_t *lo, size_t *hi);

/* In place, over every process: the sums of n doubles or floats. */
int fm__dist_sum_f64(const fm__dist *d, double *buf, size_t n, fm_err *err);
int fm__dist_sum_f32(const fm__dist *d, float *buf, size_t n, fm_err *err);

/* 1 when every process passed the same v, 0 when not, -1 on failure. */
int fm__dist_same_u64(const fm__dist *d, uint64_t v, fm_err *err);

/* Whether every process succeeded (rc 0 on each): returns 0 if so; else -1
 * on every process, err holding the message of the lowest rank that failed
 * (its own, or "process R failed" where it came without one). */
int fm__dist_agree(const fm__dist *d, int rc, fm_err *err);

/* Rank 0's bytes to every process: *buf (malloc'd on the others, *len set). */
int fm__dist_bcast_bytes(const fm__dist *d, unsigned char **buf, size_t *len, fm_err *err);

/* fm__st_read on rank 0, its file (or its error) given to every process, so
 * only rank 0 needs to see path. */
int fm__dist_st_read(const fm__dist *d, fm__st_file *f, const char *path, fm_err *err);

#endif
