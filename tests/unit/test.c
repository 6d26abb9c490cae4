/* test.c - runner for the unit-test harness (see test.h). */
#include "test.h"

#include "base/mem.h"

#include <cJSON.h>

#include <stdlib.h>
#include <unistd.h>

#define TEST_MAX 1024

static struct test_case tests[TEST_MAX];
static int n_tests;
int test__failed;
static char tmpdir[512];

void test__register(const char *name, void (*fn)(void))
{
    if (n_tests < TEST_MAX)
        tests[n_tests++] = (struct test_case){name, fn};
}

const char *test_shared(const char *rel)
{
    static char bufs[8][1024];
    static int slot;
    const char *root = getenv("TWIN_SHARED");
    char *b = bufs[slot++ % 8];
    snprintf(b, sizeof(bufs[0]), "%s/%s", root && *root ? root : "../shared", rel);
    return b;
}

static void rm_tmpdir(void)
{
    char cmd[600];
    if (!tmpdir[0])
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", tmpdir);
}

const char *test_tmpdir(void)
{
    const char *base;
    if (tmpdir[0])
        return tmpdir;
    base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/twin-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        exit(2);
    }
    atexit(rm_tmpdir);
    return tmpdir;
}

char *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = tw_malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        tw_free(buf);
        fclose(f);
        return NULL;
    }
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

int test_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int rc;
    if (!f)
        return -1;
    rc = fwrite(data, 1, len, f) == len ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

struct cJSON *test_json_load(const char *rel)
{
    size_t len;
    char *text = test_read_file(test_shared(rel), &len);
    cJSON *j;
    if (!text)
        return NULL;
    j = cJSON_ParseWithLength(text, len);
    tw_free(text);
    return j;
}

int test_json_ids(const struct cJSON *a, int32_t *out, int cap)
{
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if (n < cap)
            out[n] = (int32_t)e->valuedouble;
        n++;
    }
    return n;
}

int test_json_floats(const struct cJSON *a, float *out, int cap)
{
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if (n < cap)
            out[n] = (float)e->valuedouble;
        n++;
    }
    return n;
}

int test_main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    const char *filter = argc > 1 ? argv[1] : NULL;

    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < n_tests; i++) {
        long live;
        if (filter && !strstr(tests[i].name, filter))
            continue;
        test__failed = 0;
        live = tw_mem_live();
        tests[i].fn();
        if (!test__failed && tw_mem_live() != live) {
            fprintf(stderr, "  leak: %ld block(s) allocated by tw_malloc not freed\n",
                    tw_mem_live() - live);
            test__failed = 1;
        }
        tw_mem_fail_after(-1);
        if (test__failed) {
            printf("FAIL %s\n", tests[i].name);
            failed++;
        } else {
            printf("ok %s\n", tests[i].name);
            passed++;
        }
    }
    printf("unit: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
