/* test_collect_oom.c - every tw_malloc failure in the parsers and sources is an error, never a
 * crash or a leak: each call is repeated failing the 1st, 2nd, ... allocation until it passes. */
#include "test.h"

#include "base/mem.h"
#include "collect/collect.h"
#include "collect/collect_int.h"
#include "collect/html.h"
#include "collect_sink.h"

#include <stdio.h>
#include <sys/stat.h>

static struct cs c;

/* Runs fn with allocation n failing for n = 0, 1, ... until it succeeds; each failing run must
 * return an error (or report it) and leave no block behind. Returns the number of runs. */
#define OOM_LOOP(call, ok_expr, cleanup)                                                           \
    do {                                                                                           \
        int done_ = 0;                                                                             \
        for (long n_ = 0; n_ < 100000 && !done_; n_++) {                                           \
            long live_ = tw_mem_live();                                                            \
            int rc_;                                                                               \
            tw_mem_fail_after(n_);                                                                 \
            rc_ = (call);                                                                          \
            tw_mem_fail_after(-1);                                                                 \
            if (rc_ == 0 && (ok_expr))                                                             \
                done_ = 1;                                                                         \
            else if (rc_ != 0)                                                                     \
                CHECK_MSG(rc_ < 0, "failing allocation %ld gave %d", n_, rc_);                     \
            cleanup;                                                                               \
            CHECK_MSG(tw_mem_live() == live_, "allocation %ld failing leaked %ld block(s)", n_,    \
                      tw_mem_live() - live_);                                                      \
        }                                                                                          \
        CHECK(done_);                                                                              \
    } while (0)

TEST(oom_html)
{
    const char *page = "<html><head><title>T</title><meta property=\"og:title\" content=\"O\">"
                       "<script type=\"application/ld+json\">{\"@type\":\"Article\",\"headline\":"
                       "\"H\",\"author\":{\"name\":\"A\"}}</script></head><body><article><h1>T</h1>"
                       "<p>Para one, with commas, and words.</p><pre>code\n  x</pre><ul><li>a"
                       "</li></ul><table><tr><td>1</td><td>2</td></tr></table></article></body>";
    struct tw_err err = TW_ERR_INIT;
    struct html_article a;
    char *out = NULL;
    OOM_LOOP(html_to_text(page, strlen(page), &out, &err), out != NULL,
             (tw_free(out), out = NULL, tw_err_clear(&err)));
    OOM_LOOP(html_extract_article(page, strlen(page), &a, &err), a.content != NULL,
             (html_article_release(&a), tw_err_clear(&err)));
}

TEST(oom_frontmatter_and_csv)
{
    const char *t = "---\ntitle: \"x \\u00e9\"\ntags: [a, b]\ndescription: >\n  a\n  b\n---\nB";
    const char *csv = "a,b\n\"x\"\"y\",2\n";
    struct tw_err err = TW_ERR_INIT;
    struct fm_meta m;
    struct csv_reader r;
    OOM_LOOP(fm_parse(t, strlen(t), &m, &err), m.title && m.n_tags == 2 && m.subtitle,
             (fm_meta_release(&m), tw_err_clear(&err)));
    OOM_LOOP(
        (csv_init(&r, csv, strlen(csv)), csv_next(&r, &err) == 1 ? csv_next(&r, &err) - 1 : -1),
        r.n_fields == 2, (csv_release(&r), tw_err_clear(&err)));
}

static int import_all(const char *path)
{
    struct src_sink sink = cs_sink(&c);
    struct src_opts o = {.author_name = "A"};
    struct tw_err err = TW_ERR_INIT;
    return src_import_path(path, &o, &sink, &err);
}

TEST(oom_sources)
{
    char dir[1024], p[1100];
    snprintf(dir, sizeof(dir), "%s/oom", test_tmpdir());
    CHECK(mkdir(dir, 0777) == 0);
    snprintf(p, sizeof(p), "%s/2020-01-02-a.md", dir);
    CHECK(test_write_file(p, "---\ntitle: A\n---\n# A\n\ntext\n", 27) == 0);
    snprintf(p, sizeof(p), "%s/b.html", dir);
    CHECK(test_write_file(p, "<p>b text</p>", 13) == 0);
    /* A failing allocation may end the import with an error or fail single items; the run
     * that fails nothing must find both documents. */
    OOM_LOOP(import_all(dir), c.n == 2 && c.n_fail == 0, cs_release(&c));
    OOM_LOOP(import_all(test_shared("data/exports/medium_export")), c.n == 3 && c.n_fail == 4,
             cs_release(&c));
    OOM_LOOP(import_all(test_shared("data/exports/substack_export")), c.n == 3 && c.n_fail == 0,
             cs_release(&c));
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
