/* test_base_config.c - twin.conf layers (file < TWIN_* env < flags), bad input, progress lines. */
#include "test.h"

#include "base/buf.h"
#include "base/config.h"
#include "base/err.h"
#include "base/mem.h"
#include "base/progress.h"

#include <stdlib.h>

TEST(config_layers_file_env_flags)
{
    struct tw_err err = TW_ERR_INIT;
    struct tw_config *cfg;
    char path[512];
    snprintf(path, sizeof(path), "%s/twin.conf", test_tmpdir());
    const char *text = "# twin.conf\n"
                       "data = ./from-file\n"
                       "; another comment\n"
                       "[store]\n"
                       "url = sqlite:./x\n"
                       "Busy-Timeout = 250\n"
                       "[Author]\n"
                       "name = Ada Lovelace\n"
                       "follow = yes\n";
    CHECK_EQ_INT(test_write_file(path, text, strlen(text)), 0);
    unsetenv("TWIN_DATA");
    unsetenv("TWIN_STORE_URL");
    CHECK_OK(tw_config_new(&cfg, &err), &err);
    CHECK_OK(tw_config_load_file(cfg, path, true, &err), &err);
    CHECK_EQ_STR(tw_config_get(cfg, "data"), "./from-file");
    CHECK_EQ_STR(tw_config_get(cfg, "store.url"), "sqlite:./x");
    CHECK_EQ_STR(tw_config_get(cfg, "author.name"), "Ada Lovelace"); /* section lowercased */
    CHECK(tw_config_get(cfg, "nope") == NULL);
    CHECK_EQ_STR(tw_config_get_or(cfg, "nope", "dflt"), "dflt");
    int64_t v;
    CHECK_OK(tw_config_get_int(cfg, "store.busy-timeout", 5, 0, 1000, &v, &err), &err);
    CHECK_EQ_INT(v, 250);
    CHECK_EQ_INT(tw_config_get_int(cfg, "store.busy-timeout", 5, 0, 100, &v, &err), TW_EINVAL);
    CHECK(strstr(err.msg, "store.busy-timeout") != NULL);
    tw_err_clear(&err);
    bool b = false;
    CHECK_OK(tw_config_get_bool(cfg, "author.follow", false, &b, &err), &err);
    CHECK(b);

    /* env beats file, flags beat env */
    setenv("TWIN_DATA", "/from/env", 1);
    setenv("TWIN_STORE_BUSY_TIMEOUT", "7", 1);
    CHECK_EQ_STR(tw_config_get(cfg, "data"), "/from/env");
    CHECK_OK(tw_config_get_int(cfg, "store.busy-timeout", 5, 0, 1000, &v, &err), &err);
    CHECK_EQ_INT(v, 7);
    CHECK_OK(tw_config_set(cfg, "data", "/from/flag", &err), &err);
    CHECK_EQ_STR(tw_config_get(cfg, "data"), "/from/flag");
    CHECK_OK(tw_config_set(cfg, "data", NULL, &err), &err);
    CHECK_EQ_STR(tw_config_get(cfg, "data"), "/from/env");
    unsetenv("TWIN_DATA");
    unsetenv("TWIN_STORE_BUSY_TIMEOUT");
    CHECK_EQ_STR(tw_config_get(cfg, "data"), "./from-file");
    CHECK_EQ_INT(tw_config_set(cfg, "Bad Key", "x", &err), TW_EINVAL);
    tw_config_free(cfg);

    char env[80];
    CHECK_OK(tw_config_env_name("store.url", env, sizeof(env)), &err);
    CHECK_EQ_STR(env, "TWIN_STORE_URL");
    CHECK_EQ_INT(tw_config_env_name("a..b", env, sizeof(env)), TW_EINVAL);
}

TEST(config_missing_and_malformed_files)
{
    struct tw_err err = TW_ERR_INIT;
    struct tw_config *cfg;
    CHECK_OK(tw_config_new(&cfg, &err), &err);
    CHECK_OK(tw_config_load_file(cfg, "/nonexistent/twin.conf", false, &err), &err);
    CHECK_EQ_INT(tw_config_load_file(cfg, "/nonexistent/twin.conf", true, &err), TW_ENOENT);
    CHECK(strstr(err.msg, "/nonexistent/twin.conf") != NULL);
    tw_err_clear(&err);

    CHECK_EQ_INT(tw_config_load_string(cfg, "a = 1\n\nthis line is wrong\nb = 2\n", "t.conf", &err),
                 TW_EFORMAT);
    CHECK_MSG(strstr(err.msg, "t.conf:3:") != NULL, "message: %s", err.msg);
    CHECK_EQ_STR(tw_config_get(cfg, "a"), "1");
    tw_err_clear(&err);

    CHECK_EQ_INT(tw_config_load_string(cfg, "[s]\nx = 1\nbad key! = 2\n", "u.conf", &err),
                 TW_EFORMAT);
    CHECK_MSG(strstr(err.msg, "u.conf:3:") && strstr(err.msg, "invalid"), "message: %s", err.msg);
    tw_err_clear(&err);

    /* more keys than the limit */
    struct tw_buf big = TW_BUF_INIT;
    for (int i = 0; i < 700; i++)
        tw_buf_printf(&big, "k%d = v\n", i);
    CHECK(!big.err);
    int rc = tw_config_load_string(cfg, big.data, "big.conf", &err);
    tw_buf_release(&big);
    CHECK_EQ_INT(rc, TW_ELIMIT);
    CHECK_MSG(strstr(err.msg, "big.conf:") && strstr(err.msg, "512"), "message: %s", err.msg);
    tw_config_free(cfg);
}

TEST(progress_plain_lines_are_throttled)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/progress.txt", test_tmpdir());
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    struct tw_progress p;
    tw_progress_init(&p, f, "import", 200);
    CHECK(!p.tty);
    p.interval_ms = 3600 * 1000; /* no line is due before finish, however slow the machine */
    for (int i = 1; i <= 200; i++)
        tw_progress_update(&p, (uint64_t)i);
    tw_progress_finish(&p);
    fclose(f);
    size_t len;
    char *out = test_read_file(path, &len);
    CHECK(out != NULL);
    int ok = !strcmp(out, "import: 200/200 (100%)\n");
    if (!ok)
        fprintf(stderr, "  got '%s'\n", out);
    tw_free(out);
    CHECK(ok);

    char line[160];
    tw_progress_init(&p, NULL, "crawl", 0);
    p.done = 5;
    tw_progress_format(&p, p.start_ms + 2000, line, sizeof(line));
    CHECK_EQ_STR(line, "crawl: 5  2.5/s");
    p.tty = true;
    p.total = 8;
    p.done = 2;
    tw_progress_format(&p, p.start_ms + 1000, line, sizeof(line));
    CHECK_EQ_STR(line, "crawl  [######..................]  2/8   25%  2.0/s");
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
