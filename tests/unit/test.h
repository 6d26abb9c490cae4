/* test.h - the unit-test harness [libuv task.h, Redis testhelp.h].
 *
 *     TEST(buf_grows) { ...; CHECK(x); CHECK_EQ_INT(a, b); CHECK_EQ_STR(s, "x"); }
 *     int main(int argc, char **argv) { return test_main(argc, argv); }
 *
 * Each TEST registers itself (a constructor). test_main runs every case (or those whose name
 * contains argv[1]), prints "ok NAME" or "FAIL NAME" per case and a last line
 * "unit: N passed, N failed", and exits non-zero if any failed. A case fails on the first failed
 * CHECK (it returns) and also if it leaks blocks allocated with tw_malloc.
 * Data paths: test_shared("data/models/x.gguf") resolves against $TWIN_SHARED (default
 * "../shared"); test_tmpdir() gives a fresh scratch directory removed at exit.
 */
#ifndef TW_TEST_H
#define TW_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct test_case {
    const char *name;
    void (*fn)(void);
};

void test__register(const char *name, void (*fn)(void));
extern int test__failed;

#define TEST(name)                                                                                 \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void test__reg_##name(void)                                \
    {                                                                                              \
        test__register(#name, test_##name);                                                        \
    }                                                                                              \
    static void test_##name(void)

#define TEST_FAIL_(...)                                                                            \
    do {                                                                                           \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                                          \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        test__failed = 1;                                                                          \
        return;                                                                                    \
    } while (0)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            TEST_FAIL_("check failed: %s", #cond);                                                 \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);             \
            TEST_FAIL_(__VA_ARGS__);                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            TEST_FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_);                                  \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_))                                                          \
            TEST_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)",                   \
                       b_ ? b_ : "(null)");                                                        \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double a_ = (double)(a), b_ = (double)(b);                                                 \
        if (!(fabs(a_ - b_) <= (tol)))                                                             \
            TEST_FAIL_("%s ~= %s: %.9g vs %.9g (tol %g)", #a, #b, a_, b_, (double)(tol));          \
    } while (0)

/* Asserts a TW_OK return, printing the tw_err message otherwise. */
#define CHECK_OK(expr, errp)                                                                       \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != 0)                                                                              \
            TEST_FAIL_("%s returned %d: %s", #expr, rc_, (errp)->msg);                             \
    } while (0)

int test_main(int argc, char **argv);
/* "$TWIN_SHARED/rel" (default "../shared/rel"); a static buffer per call slot (8 rotating). */
const char *test_shared(const char *rel);
/* A fresh directory under $TMPDIR for this process, removed recursively at exit. */
const char *test_tmpdir(void);
/* Reads a whole file into a tw_malloc'd NUL-terminated buffer; NULL if unreadable. */
char *test_read_file(const char *path, size_t *len);
/* Writes data to path; 0 on success. */
int test_write_file(const char *path, const void *data, size_t len);

/* Reference outputs are JSON: parses $TWIN_SHARED/rel (cJSON_Delete it), NULL if unreadable. */
struct cJSON;
struct cJSON *test_json_load(const char *rel);
/* Numbers of a JSON array into out (at most cap); returns the array's length. */
int test_json_ids(const struct cJSON *a, int32_t *out, int cap);
int test_json_floats(const struct cJSON *a, float *out, int cap);

#endif
