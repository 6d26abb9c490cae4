/* time.c - civil calendar arithmetic [H. Hinnant, "chrono-Compatible Low-Level Date
 * Algorithms"] and a small hand-written date parser. */
#include "base/time.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t tw_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                       // [0, 399]
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;     // [0, 365]
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;               // [0, 146096]
    return era * 146097 + doe - 719468;
}

void tw_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;                                    // [0, 146096]
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; // [0, 399]
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);             // [0, 365]
    int64_t mp = (5 * doy + 2) / 153;                                  // [0, 11]
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int tw_days_in_month(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m < 1 || m > 12)
        return 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* ---- parser ---- */

struct cur {
    const char *p, *end;
};

static bool at_end(const struct cur *c)
{
    return c->p >= c->end;
}

static char peek(const struct cur *c)
{
    return c->p < c->end ? *c->p : 0;
}

static bool accept(struct cur *c, char ch)
{
    if (peek(c) == ch) {
        c->p++;
        return true;
    }
    return false;
}

static void skip_spaces(struct cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

/* Exactly n digits (n <= 9). */
static bool digits(struct cur *c, int n, int *out)
{
    int v = 0;
    if (c->end - c->p < n)
        return false;
    for (int i = 0; i < n; i++) {
        if (c->p[i] < '0' || c->p[i] > '9')
            return false;
        v = v * 10 + (c->p[i] - '0');
    }
    c->p += n;
    *out = v;
    return true;
}

/* 1 to max digits. */
static bool digits_upto(struct cur *c, int max, int *out, int *n_out)
{
    int v = 0, n = 0;
    while (n < max && c->p < c->end && *c->p >= '0' && *c->p <= '9')
        v = v * 10 + (*c->p++ - '0'), n++;
    *out = v;
    if (n_out)
        *n_out = n;
    return n > 0;
}

/* A case-insensitive alphabetic word; returns its length (0 if none). */
static size_t word(struct cur *c, const char **w)
{
    const char *s = c->p;
    while (c->p < c->end && ((*c->p | 0x20) >= 'a' && (*c->p | 0x20) <= 'z'))
        c->p++;
    *w = s;
    return (size_t)(c->p - s);
}

static bool word_is(const char *w, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((w[i] | 0x20) != lit[i])
            return false;
    return true;
}

static int month_from_word(const char *w, size_t n)
{
    static const char *const names[12] = {"january", "february", "march",     "april",
                                          "may",     "june",     "july",      "august",
                                          "september", "october", "november", "december"};
    for (int i = 0; i < 12; i++) {
        size_t full = strlen(names[i]);
        if (n == 3 || (n == full) || (i == 8 && n == 4)) { // "Sept" is common enough
            bool ok = n <= full;
            for (size_t k = 0; ok && k < n; k++)
                ok = (w[k] | 0x20) == names[i][k];
            if (ok)
                return i + 1;
        }
    }
    return 0;
}

static bool is_weekday(const char *w, size_t n)
{
    static const char *const days[7] = {"monday", "tuesday",  "wednesday", "thursday",
                                        "friday", "saturday", "sunday"};
    for (int i = 0; i < 7; i++) {
        size_t full = strlen(days[i]);
        if (n == 3 || n == full) {
            bool ok = true;
            for (size_t k = 0; ok && k < n; k++)
                ok = (w[k] | 0x20) == days[i][k];
            if (ok)
                return true;
        }
    }
    return false;
}

struct fields {
    int64_t year;
    int mon, day, hour, min, sec;
    int offset_s; // east of UTC
};

/* HH:MM[:SS[.frac]] */
static bool parse_clock(struct cur *c, struct fields *f, bool sec_optional)
{
    int n;
    if (!digits(c, 2, &f->hour) || !accept(c, ':') || !digits(c, 2, &f->min))
        return false;
    if (accept(c, ':')) {
        if (!digits(c, 2, &f->sec))
            return false;
        if (accept(c, '.') || accept(c, ',')) {
            int frac;
            if (!digits_upto(c, 9, &frac, &n))
                return false;
            while (c->p < c->end && *c->p >= '0' && *c->p <= '9') // more than 9 digits: drop
                c->p++;
        }
    } else if (!sec_optional) {
        return false;
    }
    return true;
}

/* Z | UTC | GMT | UT | +HH:MM | +HHMM | +HH | US zone; absent means UTC. */
static bool parse_zone(struct cur *c, struct fields *f)
{
    static const struct {
        const char *name;
        int hours;
    } zones[] = {{"z", 0},   {"ut", 0},   {"utc", 0},  {"gmt", 0},  {"est", -5}, {"edt", -4},
                 {"cst", -6}, {"cdt", -5}, {"mst", -7}, {"mdt", -6}, {"pst", -8}, {"pdt", -7}};
    const char *w;
    size_t n;
    int hh, mm = 0;

    skip_spaces(c);
    if (at_end(c)) {
        f->offset_s = 0;
        return true;
    }
    if (peek(c) == '+' || peek(c) == '-') {
        int sign = *c->p++ == '-' ? -1 : 1;
        if (!digits(c, 2, &hh))
            return false;
        if (accept(c, ':')) {
            if (!digits(c, 2, &mm))
                return false;
        } else if (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (!digits(c, 2, &mm))
                return false;
        }
        if (hh > 23 || mm > 59)
            return false;
        f->offset_s = sign * (hh * 3600 + mm * 60);
        return true;
    }
    n = word(c, &w);
    for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
        if (word_is(w, n, zones[i].name)) {
            f->offset_s = zones[i].hours * 3600;
            return true;
        }
    }
    return false;
}

/* 2006-01-02[(T|t| )15:04:05[.frac]][zone] */
static bool parse_iso(struct cur *c, struct fields *f)
{
    int y;
    if (!digits(c, 4, &y) || !accept(c, '-') || !digits(c, 2, &f->mon) || !accept(c, '-') ||
        !digits(c, 2, &f->day))
        return false;
    f->year = y;
    if (at_end(c))
        return true;
    if (!accept(c, 'T') && !accept(c, 't')) {
        skip_spaces(c);
        if (at_end(c))
            return true;
    }
    if (!parse_clock(c, f, true))
        return false;
    return parse_zone(c, f);
}

/* [Mon,] 02 Jan 2006 15:04[:05] zone | January 2, 2006 | 2 January 2006 */
static bool parse_words(struct cur *c, struct fields *f)
{
    const char *w;
    size_t n;
    int y, ny, d;

    n = word(c, &w);
    if (n && is_weekday(w, n)) {
        accept(c, ',');
        skip_spaces(c);
        n = word(c, &w);
    }
    if (n) { // "January 2, 2006"
        f->mon = month_from_word(w, n);
        skip_spaces(c);
        if (!f->mon || !digits_upto(c, 2, &f->day, NULL))
            return false;
        accept(c, ',');
        skip_spaces(c);
        if (!digits(c, 4, &y))
            return false;
        f->year = y;
        skip_spaces(c);
        if (at_end(c))
            return true;
        if (!parse_clock(c, f, true))
            return false;
        return parse_zone(c, f);
    }
    if (!digits_upto(c, 2, &d, NULL))
        return false;
    f->day = d;
    skip_spaces(c);
    n = word(c, &w);
    f->mon = month_from_word(w, n);
    skip_spaces(c);
    if (!f->mon || !digits_upto(c, 4, &y, &ny) || ny == 1 || ny == 3)
        return false;
    f->year = ny == 2 ? (y < 50 ? 2000 + y : 1900 + y) : y; // RFC 2822 §4.3 obsolete years
    skip_spaces(c);
    if (at_end(c))
        return true;
    if (!parse_clock(c, f, true))
        return false;
    return parse_zone(c, f);
}

int tw_time_parse(const char *s, size_t len, int64_t *out, struct tw_err *err)
{
    struct cur c = {s, s + len};
    struct fields f = {0, 0, 0, 0, 0, 0, 0};
    bool ok;

    skip_spaces(&c);
    while (c.end > c.p && (c.end[-1] == ' ' || c.end[-1] == '\t' || c.end[-1] == '\n' ||
                           c.end[-1] == '\r'))
        c.end--;
    if (c.end - c.p > 64)
        return tw_errf(err, TW_EFORMAT, "date '%.64s...' is too long", c.p);
    if (c.end - c.p >= 5 && c.p[4] == '-')
        ok = parse_iso(&c, &f);
    else
        ok = parse_words(&c, &f);
    if (!ok || !at_end(&c))
        return tw_errf(err, TW_EFORMAT,
                       "date '%.*s' is not RFC 3339, RFC 2822, YYYY-MM-DD or 'January 2, 2006'",
                       (int)(c.end - s > 64 ? 64 : c.end - s), s);
    if (f.mon < 1 || f.mon > 12 || f.day < 1 || f.day > tw_days_in_month(f.year, f.mon) ||
        f.hour > 23 || f.min > 59 || f.sec > 60)
        return tw_errf(err, TW_EFORMAT, "date '%.*s' has a field out of range",
                       (int)(c.end - s > 64 ? 64 : c.end - s), s);
    *out = tw_days_from_civil(f.year, f.mon, f.day) * 86400 + f.hour * 3600 + f.min * 60 + f.sec -
           f.offset_s;
    return TW_OK;
}

size_t tw_time_format(int64_t t, char buf[TW_TIME_STR_MAX])
{
    int64_t days = t / 86400, rem = t % 86400, y;
    int m, d, n;
    if (rem < 0)
        rem += 86400, days--;
    tw_civil_from_days(days, &y, &m, &d);
    if (y >= 0 && y <= 9999)
        n = snprintf(buf, TW_TIME_STR_MAX, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)y, m, d,
                     (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
    else
        n = snprintf(buf, TW_TIME_STR_MAX, "%+lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m, d,
                     (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
    return n > 0 ? (size_t)n : 0;
}

int64_t tw_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

int64_t tw_time_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double tw_time_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
