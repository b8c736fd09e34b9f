/* One process per run folder: an exclusive flock(2) on DIR/.fmnist.lock,
 * held while the process writes there. The kernel lets go of it when the
 * process ends however it ends (SIGKILL included), so a lock is never stale;
 * the file holds the holder's process id for the refusal message, and is
 * removed by the holder as it lets go (a file left by a killed process is
 * harmless: nobody holds its lock).
 *
 * The lock belongs to the process: a process that holds a folder (the fmnist
 * command holds its run folder from start to end) may take it again, from
 * fm_train or the report writer, without waiting on itself; only the outer
 * hold lets go. Threads of one process are not kept apart. */
#ifndef FM_CORE_LOCK_H
#define FM_CORE_LOCK_H

#include "fmnist/fmnist.h"

#define FM__LOCK_FILE ".fmnist.lock"

typedef struct fm__lock {
    int fd; /* the locked file; -1 when this hold has nothing to let go */
    char path[4096];
} fm__lock;

/* Takes the lock of folder dir (which must exist). -1 when another process
 * holds it: "DIR: in use by another fmnist process (pid N); wait for it to
 * end, or INSTEAD" (without the last part when instead is NULL). */
int fm__lock_take(fm__lock *l, const char *dir, const char *instead, fm_err *err);
/* Lets go (nothing when the hold was nested, or l was never taken). */
void fm__lock_release(fm__lock *l);

#endif
