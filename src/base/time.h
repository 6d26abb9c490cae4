/* time.h - calendar arithmetic, date parsing and RFC 3339 formatting, all in UTC.
 *
 * Times are int64 unix seconds. The civil<->days conversions are proleptic Gregorian over any
 * int64 day count, written out here because gmtime/localtime are banned (STYLE §4): they depend
 * on the process time zone and are not reentrant.
 *
 * tw_time_parse accepts, with surrounding spaces:
 *     2006-01-02T15:04:05Z   2006-01-02T15:04:05.999+07:00   2006-01-02t15:04:05-0700
 *     2006-01-02 15:04:05    (no zone: UTC)                 2006-01-02
 *     Mon, 02 Jan 2006 15:04:05 -0700   02 Jan 06 15:04 GMT (RFC 2822, also UT/UTC/Z and
 *                                       the US zones EST EDT CST CDT MST MDT PST PDT)
 *     January 2, 2006   Jan 2, 2006   2 January 2006
 * Fractions of a second are accepted and dropped. Years are 0000..9999. Pure functions,
 * thread-safe.
 */
#ifndef TW_TIME_H
#define TW_TIME_H

#include "base/err.h"

#include <stddef.h>
#include <stdint.h>

#define TW_TIME_STR_MAX 32 // room for any tw_time_format output and its NUL

/* Days since 1970-01-01 of the civil date y-m-d (m 1..12, d 1..31, not checked here). */
int64_t tw_days_from_civil(int64_t y, int m, int d);
/* The civil date of day z (days since 1970-01-01). */
void tw_civil_from_days(int64_t z, int64_t *y, int *m, int *d);
/* Days in month m (1..12) of year y. */
int tw_days_in_month(int64_t y, int m);

/* Parses s[0..len) in one of the formats above into unix seconds. Returns 0, or TW_EFORMAT with
 * a message quoting the input. */
int tw_time_parse(const char *s, size_t len, int64_t *out, struct tw_err *err);
/* Writes t as RFC 3339 UTC "2006-01-02T15:04:05Z" (NUL-terminated) into buf; returns the
 * length. Years outside 0..9999 are written with as many digits as needed and a sign. */
size_t tw_time_format(int64_t t, char buf[TW_TIME_STR_MAX]);

/* The wall clock, unix seconds. */
int64_t tw_time_now(void);
/* A monotonic clock in milliseconds, for timeouts and throughput. */
int64_t tw_time_mono_ms(void);
/* A monotonic clock in seconds with sub-microsecond resolution, for benchmarks. */
double tw_time_mono_s(void);

#endif
