/* test_base_time.c - civil-date arithmetic, date parsing and RFC 3339 formatting.
 * Real dates come from the shared exports (RSS pubDate, atom:updated, Substack CSV); GNU
 * `date -u -d` is the independent oracle for their values. */
#include "test.h"

#include "base/err.h"
#include "base/mem.h"
#include "base/time.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int64_t parse_ok(const char *s, int *ok)
{
    struct tw_err err = TW_ERR_INIT;
    int64_t t = 0;
    *ok = tw_time_parse(s, strlen(s), &t, &err) == 0;
    if (!*ok)
        fprintf(stderr, "  parse '%s': %s\n", s, err.msg);
    return t;
}

#define CHECK_PARSE(s, want)                                                                       \
    do {                                                                                           \
        int ok_;                                                                                   \
        int64_t t_ = parse_ok(s, &ok_);                                                            \
        CHECK_MSG(ok_, "'%s' did not parse", s);                                                   \
        CHECK_EQ_INT(t_, want);                                                                    \
    } while (0)

TEST(time_civil_round_trip)
{
    CHECK_EQ_INT(tw_days_from_civil(1970, 1, 1), 0);
    CHECK_EQ_INT(tw_days_from_civil(2000, 3, 1), 11017);
    CHECK_EQ_INT(tw_days_from_civil(1969, 12, 31), -1);
    CHECK_EQ_INT(tw_days_from_civil(1600, 2, 29), -135081);
    /* every day from year -2000 to 6000 maps back to itself and days increase by one */
    int64_t prev = tw_days_from_civil(-2000, 1, 1) - 1;
    for (int64_t y = -2000; y <= 6000; y++) {
        for (int m = 1; m <= 12; m++) {
            for (int d = 1; d <= tw_days_in_month(y, m); d++) {
                int64_t z = tw_days_from_civil(y, m, d), y2;
                int m2, d2;
                if (z != prev + 1)
                    TEST_FAIL_("%lld-%d-%d: day %lld after %lld", (long long)y, m, d,
                               (long long)z, (long long)prev);
                tw_civil_from_days(z, &y2, &m2, &d2);
                if (y2 != y || m2 != m || d2 != d)
                    TEST_FAIL_("%lld-%d-%d came back as %lld-%d-%d", (long long)y, m, d,
                               (long long)y2, m2, d2);
                prev = z;
            }
        }
    }
    CHECK_EQ_INT(tw_days_in_month(1900, 2), 28);
    CHECK_EQ_INT(tw_days_in_month(2000, 2), 29);
    CHECK_EQ_INT(tw_days_in_month(2024, 2), 29);
}

TEST(time_parses_every_format)
{
    CHECK_PARSE("2006-01-02T15:04:05Z", 1136214245);
    CHECK_PARSE("2006-01-02t15:04:05z", 1136214245);
    CHECK_PARSE("2006-01-02T15:04:05.999999999Z", 1136214245);
    CHECK_PARSE("2006-01-02T15:04:05.1234567890123Z", 1136214245);
    CHECK_PARSE("2006-01-02T22:04:05+07:00", 1136214245);
    CHECK_PARSE("2006-01-02T08:04:05-0700", 1136214245);
    CHECK_PARSE("2006-01-02T15:04:05+00:00", 1136214245);
    CHECK_PARSE("2006-01-02 15:04:05", 1136214245);
    CHECK_PARSE("2006-01-02 08:04:05 -0700", 1136214245);
    CHECK_PARSE("  2006-01-02  ", 1136160000);
    CHECK_PARSE("2006-01-02", 1136160000);
    CHECK_PARSE("Mon, 02 Jan 2006 15:04:05 -0700", 1136239445);
    CHECK_PARSE("Mon, 02 Jan 2006 22:04:05 GMT", 1136239445);
    CHECK_PARSE("02 Jan 2006 22:04 UT", 1136239440);
    CHECK_PARSE("2 Jan 06 17:04:05 EST", 1136239445);
    CHECK_PARSE("Monday, 2 January 2006 22:04:05 +0000", 1136239445);
    CHECK_PARSE("January 2, 2006", 1136160000);
    CHECK_PARSE("Jan 2, 2006", 1136160000);
    CHECK_PARSE("Sept 30, 2021", 1632960000);
    CHECK_PARSE("2 January 2006", 1136160000);
    CHECK_PARSE("1969-12-31T23:59:59Z", -1);
    CHECK_PARSE("2016-12-31T23:59:60Z", 1483228800); /* leap second: the next instant */
    CHECK_PARSE("2024-02-29", 1709164800);
}

TEST(time_rejects_malformed_dates_with_a_message)
{
    static const char *bad[] = {
        "",           "2006",       "2006-13-01",  "2006-02-30",        "2023-02-29",
        "2006-01-02T25:00:00Z",     "2006-01-02T15:60:00Z", "2006-01-02T15:04:05+24:00",
        "2006-01-02T15:04:05Q",     "2006-01-02T15:04:05+7", "2006-1-2", "Foo 2, 2006",
        "January 32, 2006",         "Mon, 02 Jan 2006 15:04:05 XYZ", "Jan 2 2006x",
        "02 Jan 206 10:00 GMT",     "2006-01-02T15:04:05.Z",  "99999-01-01",
        "2006-01-02T15:04:05Z trailing",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tw_err err = TW_ERR_INIT;
        int64_t t;
        int rc = tw_time_parse(bad[i], strlen(bad[i]), &t, &err);
        CHECK_MSG(rc == TW_EFORMAT, "'%s' was accepted", bad[i]);
        CHECK_MSG(strstr(err.msg, "date '") != NULL, "message '%s'", err.msg);
    }
    /* the length is honoured: no read past len, no NUL needed */
    struct tw_err err = TW_ERR_INIT;
    int64_t t = 0;
    CHECK_OK(tw_time_parse("2006-01-02XXXX", 10, &t, &err), &err);
    CHECK_EQ_INT(t, 1136160000);
}

TEST(time_formats_rfc3339_utc)
{
    char buf[TW_TIME_STR_MAX];
    CHECK_EQ_INT(tw_time_format(1136214245, buf), 20);
    CHECK_EQ_STR(buf, "2006-01-02T15:04:05Z");
    tw_time_format(0, buf);
    CHECK_EQ_STR(buf, "1970-01-01T00:00:00Z");
    tw_time_format(-1, buf);
    CHECK_EQ_STR(buf, "1969-12-31T23:59:59Z");
    tw_time_format(253402300799, buf);
    CHECK_EQ_STR(buf, "9999-12-31T23:59:59Z");
    tw_time_format(253402300800, buf);
    CHECK_EQ_STR(buf, "+10000-01-01T00:00:00Z");
    /* parse(format(t)) == t over a wide spread of instants */
    for (int64_t t = -62135596800; t < 253402300799; t += 999999937) {
        struct tw_err err = TW_ERR_INIT;
        int64_t back;
        size_t n = tw_time_format(t, buf);
        CHECK_OK(tw_time_parse(buf, n, &back, &err), &err);
        CHECK_EQ_INT(back, t);
    }
}

/* Seconds for s from GNU date, or INT64_MIN when it cannot tell. */
static int64_t gnu_date(const char *s)
{
    char cmd[256], out[64];
    long long v;
    FILE *p;
    snprintf(cmd, sizeof(cmd), "TZ=UTC date -u -d '%s' +%%s 2>/dev/null", s);
    p = popen(cmd, "r");
    if (!p)
        return INT64_MIN;
    if (!fgets(out, sizeof(out), p) || sscanf(out, "%lld", &v) != 1)
        v = INT64_MIN;
    pclose(p);
    return v;
}

/* Every "<tag>value</tag>" (or "<tag>value<") in text, passed to fn. */
static int each_tag(char *text, const char *open, int (*fn)(const char *))
{
    int n = 0;
    for (char *p = strstr(text, open); p; p = strstr(p, open)) {
        char val[80];
        char *v = p + strlen(open), *e = strchr(v, '<');
        if (!e || e - v >= (long)sizeof(val))
            break;
        memcpy(val, v, (size_t)(e - v));
        val[e - v] = 0;
        if (fn(val) != 0)
            return -1;
        n++;
        p = e;
    }
    return n;
}

static int check_against_date(const char *s)
{
    int ok;
    int64_t t = parse_ok(s, &ok), want = gnu_date(s);
    if (!ok || want == INT64_MIN || t != want) {
        fprintf(stderr, "  '%s': ours %lld, date(1) %lld\n", s, (long long)t, (long long)want);
        return -1;
    }
    return 0;
}

TEST(time_agrees_with_gnu_date_on_shared_exports)
{
    size_t len;
    char *rss = test_read_file(test_shared("data/exports/rss/medium_feed.jekyll-import.xml"), &len);
    CHECK(rss != NULL);
    int n1 = each_tag(rss, "<pubDate>", check_against_date);
    int n2 = each_tag(rss, "<atom:updated>", check_against_date);
    int n3 = each_tag(rss, "<lastBuildDate>", check_against_date);
    tw_free(rss);
    CHECK_MSG(n1 > 0 && n2 > 0 && n3 > 0, "pubDate %d, atom:updated %d, lastBuildDate %d", n1, n2,
              n3);

    /* the Substack CSV: the second column is an RFC 3339 post_date */
    char *csv = test_read_file(test_shared("data/exports/substack_export/posts.csv"), &len);
    CHECK(csv != NULL);
    int n_csv = 0, bad = 0;
    for (char *line = strchr(csv, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        char *c1 = strchr(line + 1, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
        if (!c2 || c2 - c1 - 1 >= 40)
            continue;
        char val[48];
        memcpy(val, c1 + 1, (size_t)(c2 - c1 - 1));
        val[c2 - c1 - 1] = 0;
        bad += check_against_date(val) != 0;
        n_csv++;
    }
    tw_free(csv);
    CHECK_EQ_INT(bad, 0);
    CHECK(n_csv > 0);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
