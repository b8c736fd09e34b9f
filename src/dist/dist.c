/* The world of processes: MPI's when built with it (FM_HAVE_MPI) and started
 * by a launcher, else this one process. MPI_Init is called only under a
 * launcher, so a plain run never pays for it or depends on its runtime. */
#include "dist/dist.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#ifdef FM_HAVE_MPI
#include <mpi.h>
#endif

static fm__dist world = {0, 1};
#ifdef FM_HAVE_MPI
static int mpi_on; /* MPI_Init was called */
#endif

const fm__dist *fm__dist_world(void) { return &world; }

/* The process count a launcher gave in the environment (Open MPI's, or
 * PMI's as MPICH and Slurm set), or 0 when none did. */
static int launcher_size(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return 0;
}

int fm_dist_has_mpi(void) {
#ifdef FM_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

int fm_dist_init(int *argc, char ***argv, fm_err *err) {
    int launched = launcher_size();
#ifdef FM_HAVE_MPI
    if (launched < 1 || mpi_on) return 0;
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return fm__err(err, "MPI_Init failed: cannot join the processes mpirun started");
    mpi_on = 1;
    /* a failed collective returns here with an error instead of aborting */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world.size);
    return 0;
#else
    (void)argc, (void)argv;
    if (launched > 1)
        return fm__err(err,
                       "this fmnist was built without MPI, but a launcher (mpirun) started it "
                       "as one of %d processes, each of which would train alone; rebuild it "
                       "with MPI (install libopenmpi-dev, then cmake finds it) or run it "
                       "without mpirun",
                       launched);
    return 0;
#endif
}

int fm_dist_rank(void) { return world.rank; }
int fm_dist_size(void) { return world.size; }

void fm_dist_finalize(void) {
#ifdef FM_HAVE_MPI
    if (mpi_on) MPI_Finalize();
    mpi_on = 0;
#endif
    world = (fm__dist){0, 1};
}

void fm_dist_abort(int code) {
#ifdef FM_HAVE_MPI
    if (mpi_on && world.size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    (void)code;
}

void fm__dist_share(const fm__dist *d, size_t n, size_t *lo, size_t *hi) {
    *lo = n * (size_t)d->rank / (size_t)d->size;
    *hi = n * (size_t)(d->rank + 1) / (size_t)d->size;
}

#ifdef FM_HAVE_MPI
static int failed(const fm__dist *d, const char *what, int rc, fm_err *err) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) len = 0;
    text[len] = 0;
    return fm__err(err, "process %d of %d: %s failed (%s): another process has stopped?",
                   d->rank, d->size, what, len ? text : "MPI error");
}

/* MPI counts are ints: larger buffers go in pieces. */
static int allreduce(const fm__dist *d, void *buf, size_t n, MPI_Datatype type, size_t elem,
                     MPI_Op op, const char *what, fm_err *err) {
    for (size_t at = 0; at < n;) {
        int part = n - at > (size_t)INT_MAX ? INT_MAX : (int)(n - at);
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + at * elem, part, type, op,
                               MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return failed(d, what, rc, err);
        at += (size_t)part;
    }
    return 0;
}

static int bcast(const fm__dist *d, void *buf, size_t n, int root, const char *what,
                 fm_err *err) {
    for (size_t at = 0; at < n;) {
        int part = n - at > (size_t)INT_MAX ? INT_MAX : (int)(n - at);
        int rc = MPI_Bcast((char *)buf + at, part, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return failed(d, what, rc, err);
        at += (size_t)part;
    }
    return 0;
}
#endif

int fm__dist_sum_f64(const fm__dist *d, double *buf, size_t n, fm_err *err) {
#ifdef FM_HAVE_MPI
    if (d->size > 1)
        return allreduce(d, buf, n, MPI_DOUBLE, sizeof *buf, MPI_SUM, "a sum", err);
#endif
    (void)d, (void)buf, (void)n, (void)err;
    return 0;
}

int fm__dist_sum_f32(const fm__dist *d, float *buf, size_t n, fm_err *err) {
#ifdef FM_HAVE_MPI
    if (d->size > 1)
        return allreduce(d, buf, n, MPI_FLOAT, sizeof *buf, MPI_SUM, "the gradients' sum", err);
#endif
    (void)d, (void)buf, (void)n, (void)err;
    return 0;
}

int fm__dist_same_u64(const fm__dist *d, uint64_t v, fm_err *err) {
#ifdef FM_HAVE_MPI
    if (d->size > 1) {
        /* v and its complement, so one MIN gives both the least and the greatest */
        unsigned long long mm[2] = {v, ~v};
        if (allreduce(d, mm, 2, MPI_UNSIGNED_LONG_LONG, sizeof mm[0], MPI_MIN, "a comparison",
                      err) < 0)
            return -1;
        return mm[0] == ~mm[1];
    }
#endif
    (void)d, (void)v, (void)err;
    return 1;
}

int fm__dist_agree(const fm__dist *d, int rc, fm_err *err) {
#ifdef FM_HAVE_MPI
    if (d->size > 1) {
        int first = rc == 0 ? d->size : d->rank;
        fm_err lost;
        if (allreduce(d, &first, 1, MPI_INT, sizeof first, MPI_MIN, "an agreement", &lost) < 0) {
            if (err) *err = lost;
            return -1;
        }
        if (first == d->size) return 0;
        fm_err msg;
        if (d->rank == first) {
            if (err) msg = *err;
            else snprintf(msg.msg, sizeof msg.msg, "process %d failed", first);
        }
        if (bcast(d, msg.msg, sizeof msg.msg, first, "an error's broadcast", &lost) < 0) {
            if (err) *err = lost;
            return -1;
        }
        msg.msg[sizeof msg.msg - 1] = 0;
        if (err) *err = msg;
        return -1;
    }
#endif
    (void)d, (void)err;
    return rc == 0 ? 0 : -1;
}

int fm__dist_bcast_bytes(const fm__dist *d, unsigned char **buf, size_t *len, fm_err *err) {
#ifdef FM_HAVE_MPI
    if (d->size > 1) {
        unsigned long long n = *len;
        if (bcast(d, &n, sizeof n, 0, "a broadcast", err) < 0) return -1;
        if (d->rank != 0) {
            *len = (size_t)n;
            *buf = malloc(n ? n : 1);
        }
        if (fm__dist_agree(d, *buf ? 0 : fm__err(err, "out of memory for %llu bytes", n), err) <
                0 ||
            bcast(d, *buf, (size_t)n, 0, "a broadcast", err) < 0) {
            if (d->rank != 0) free(*buf), *buf = NULL;
            return -1;
        }
    }
#endif
    (void)d, (void)buf, (void)len, (void)err;
    return 0;
}

int fm__dist_st_read(const fm__dist *d, fm__st_file *f, const char *path, fm_err *err) {
    if (d->size == 1) return fm__st_read(f, path, err);
    memset(f, 0, sizeof *f);
    int rc = d->rank == 0 ? fm__st_read(f, path, err) : 0;
    if (fm__dist_agree(d, rc, err) < 0) {
        if (rc == 0) fm__st_close(f);
        return -1;
    }
    unsigned char *bytes = d->rank == 0 ? f->bytes : NULL;
    size_t len = d->rank == 0 ? f->size : 0;
    if (fm__dist_bcast_bytes(d, &bytes, &len, err) < 0) {
        if (d->rank == 0) fm__st_close(f);
        return -1;
    }
    if (d->rank == 0) return 0;
    rc = fm__st_parse(f, bytes, len, path, err);
    free(bytes);
    return rc;
}
