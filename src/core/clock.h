/* The library's one clock, for progress lines, epoch times and benchmarks. */
#ifndef FM_CORE_CLOCK_H
#define FM_CORE_CLOCK_H

/* Seconds on a monotonic clock (differences only: the origin is arbitrary). */
double fm__now(void);

#endif
