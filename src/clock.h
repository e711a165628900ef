/* clock.h - monotonic and wall clocks in nanoseconds, and the timestamp formats of the output files. */
#ifndef FLUXLOOP_CLOCK_H
#define FLUXLOOP_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Length of "2026-11-25T17:00:00.000012Z" plus the terminating NUL. */
#define CLOCK_ISO_SIZE 28

int64_t clock_mono_ns(void);
int64_t clock_wall_ns(void);
/* Writes wall_ns as ISO 8601 UTC with microseconds and 'Z'; returns the length (27). */
size_t clock_format_utc(int64_t wall_ns, char out[CLOCK_ISO_SIZE]);
/* Writes wall_ns as local "YYYYMMDD_HHMMSS" (the experiment folder suffix); returns the length. */
size_t clock_format_local_stamp(int64_t wall_ns, char out[16]);
/* Sleeps ms milliseconds, resuming after signals until the time has passed. */
void clock_sleep_ms(double ms);

#endif
