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

size_t clock_format_utc(int64_t wall_ns, char out[CLOCK_ISO_SIZE]) {
  time_t secs = (time_t)(wall_ns / 1000000000);
  long usec = (long)(wall_ns % 1000000000 / 1000);
  struct tm tm;
  int year;
  if (wall_ns < 0) { secs = 0; usec = 0; }
  gmtime_r(&secs, &tm);
  year = tm.tm_year + 1900;
  /* Hand-formatted: this runs several times per trace. */
  put2(out, year / 100); put2(out + 2, year % 100);
  out[4] = '-'; put2(out + 5, tm.tm_mon + 1);
  out[7] = '-'; put2(out + 8, tm.tm_mday);
  out[10] = 'T'; put2(out + 11, tm.tm_hour);
  out[13] = ':'; put2(out + 14, tm.tm_min);
  out[16] = ':'; put2(out + 17, tm.tm_sec);
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
