/* clock.c - clock_gettime wrappers and timestamp formatting (no Lua here). */
#include "clock.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

int64_t clock_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t clock_wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void put2(char *p, int v) { p[0] = (char)('0' + v / 10 % 10); p[1] = (char)('0' + v % 10); }

/* The UTC calendar date of a day counted from 1970-01-01 (proleptic Gregorian).  Pure
 * arithmetic: gmtime_r takes a lock and walks time zone state, several times per trace.
 * Days are shifted to start on 0000-03-01 so the leap day ends each year; a 400-year
 * cycle has 146097 days, a 100-year one 36524, a 4-year one 1461. */
static void civil_date(int64_t days, int *year, int *month, int *day) {
  int64_t z = days + 719468; /* days from 0000-03-01 */
  int64_t cycle = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doc = z - cycle * 146097;                                        /* 0..146096 */
  int64_t yoc = (doc - doc / 1460 + doc / 36524 - doc / 146096) / 365;     /* 0..399 */
  int64_t doy = doc - (365 * yoc + yoc / 4 - yoc / 100);                   /* 0..365, from March */
  int64_t mp = (5 * doy + 2) / 153;                                        /* 0 = March */
  *day = (int)(doy - (153 * mp + 2) / 5 + 1);
  *month = (int)(mp < 10 ? mp + 3 : mp - 9);
  *year = (int)(yoc + cycle * 400 + (*month <= 2));
}

size_t clock_format_utc(int64_t wall_ns, char out[CLOCK_ISO_SIZE]) {
  int64_t secs = wall_ns / 1000000000, of_day;
  long usec = (long)(wall_ns % 1000000000 / 1000);
  int year, month, day;
  if (wall_ns < 0) { secs = 0; usec = 0; }
  of_day = secs % 86400;
  civil_date(secs / 86400, &year, &month, &day);
  /* Hand-formatted: this runs several times per trace. */
  put2(out, year / 100); put2(out + 2, year % 100);
  out[4] = '-'; put2(out + 5, month);
  out[7] = '-'; put2(out + 8, day);
  out[10] = 'T'; put2(out + 11, (int)(of_day / 3600));
  out[13] = ':'; put2(out + 14, (int)(of_day / 60 % 60));
  out[16] = ':'; put2(out + 17, (int)(of_day % 60));
  out[19] = '.';
  for (int i = 25; i >= 20; i--) { out[i] = (char)('0' + usec % 10); usec /= 10; }
  out[26] = 'Z';
  out[27] = '\0';
  return 27;
}

size_t clock_format_local_stamp(int64_t wall_ns, char out[16]) {
  time_t secs = (time_t)(wall_ns / 1000000000);
  struct tm tm;
  localtime_r(&secs, &tm);
  return strftime(out, 16, "%Y%m%d_%H%M%S", &tm);
}

void clock_sleep_ms(double ms) {
  struct timespec ts;
  if (!(ms > 0)) return;
  ts.tv_sec = (time_t)(ms / 1000);
  ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000) * 1e6);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}
