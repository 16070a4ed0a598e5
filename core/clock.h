/* Time helpers every module needs: monotonic seconds for measuring, and
 * absolute CLOCK_REALTIME deadlines for pthread_cond_timedwait. */
#ifndef GOMIRROR_CORE_CLOCK_H
#define GOMIRROR_CORE_CLOCK_H

#include <time.h>

/* Monotonic seconds (for durations only). */
double clock_now_s(void);
/* *ts = now (CLOCK_REALTIME) + ms, normalised. */
void clock_deadline_in(struct timespec *ts, long ms);

#endif
