/* test_feature.c - cleaning, embedding text and chunking per kind. */
#include "test.h"

#include "base/mem.h"
#include "feature/feat.h"

#include <ctype.h>
#include <dirent.h>

static char *clean(enum feat_kind k, const char *s)
{
    struct tw_err err = TW_ERR_INIT;
    char *out = NULL;
    size_t n;
    if (feat_clean(k, s, strlen(s), &out, &n, &err) != 0)
        return NULL;
    return out;
}

TEST(clean_post_folds_math_letters_and_normalizes_urls)
{
    /* "𝐁𝐨𝐥𝐝 𝟏𝟐𝟑 𝘪𝘵𝘢𝘭𝘪𝘤" as LinkedIn posts write it. */
    char *c = clean(FEAT_POST, "\xf0\x9d\x90\x81\xf0\x9d\x90\xa8\xf0\x9d\x90\xa5\xf0\x9d\x90\x9d "
                               "\xf0\x9d\x9f\x8f\xf0\x9d\x9f\x90\xf0\x9d\x9f\x91 #AI \xf0\x9f\x8e\x89  \n"
                               "\n\n\nSee HTTPS://Example.COM/Path?utm_source=li&id=3&fbclid=x#top.");
    CHECK(c != NULL);
    CHECK_EQ_STR(c, "Bold 123 #AI \xf0\x9f\x8e\x89\n\nSee https://example.com/Path?id=3#top.");
    tw_free(c);
    c = clean(FEAT_POST, "only http://a.com/?utm_medium=x");
    CHECK_EQ_STR(c, "only http://a.com/");
    tw_free(c);
}

TEST(clean_article_nfc_and_keeps_code_fences)
{
    char *c = clean(FEAT_ARTICLE, "Cafe\xcc\x81 \r\n\r\n\r\n```\ncode   \n\n\n  x\n```\nend  ");
    CHECK_EQ_STR(c, "Caf\xc3\xa9\n\n```\ncode   \n\n\n  x\n```\nend");
    tw_free(c);
    /* Link reference definitions are link targets, not prose. */
    c = clean(FEAT_ARTICLE, "See [the paper][pcg].\n\n[pcg]: https://www.pcg-random.org/\n"
                            "[x]:  /blog/x\n[not a ref] here\n");
    CHECK_EQ_STR(c, "See [the paper][pcg].\n\n[not a ref] here");
    tw_free(c);
}

TEST(clean_code_is_exact_and_rejects_bad_utf8)
{
    struct tw_err err = TW_ERR_INIT;
    char *out = NULL;
    size_t n;
    char *c = clean(FEAT_CODE, "int x;  \r\n\n\n\tif (x)  \n");
    CHECK_EQ_STR(c, "int x;  \n\n\n\tif (x)  \n");
    tw_free(c);
    CHECK_EQ_INT(feat_clean(FEAT_ARTICLE, "ok\xff", 3, &out, &n, &err), TW_EFORMAT);
    CHECK_EQ_STR(err.msg, "invalid UTF-8 at byte 2");
    CHECK(out == NULL);
}

TEST(embed_text_per_kind)
{
    struct tw_buf b = TW_BUF_INIT;
    const char *post = "Great \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd news \xe2\x9d\xa4\xef\xb8\x8f!";
    feat_embed_text(FEAT_POST, NULL, post, strlen(post), &b);
    CHECK_EQ_STR(b.data, "Great  news !");
    tw_buf_reset(&b);
    feat_embed_text(FEAT_CODE, "repo/src/a.c", "int x;", 6, &b);
    CHECK_EQ_STR(b.data, "repo/src/a.c\nint x;");
    tw_buf_release(&b);
    CHECK_EQ_STR(feat_code_language("x/y/main.PY"), "python");
    CHECK_EQ_STR(feat_code_language("Makefile"), "make");
    CHECK_EQ_STR(feat_code_language("README"), "text");
}

TEST(chunk_ids_are_stable_and_distinct)
{
    char a[37], b[37], c[37], d[37];
    feat_chunk_id("doc-1", 0, "hello", 5, a);
    feat_chunk_id("doc-1", 0, "hello", 5, b);
    feat_chunk_id("doc-1", 1, "hello", 5, c);
    feat_chunk_id("doc-1", 0, "hellp", 5, d);
    CHECK_EQ_STR(a, b);
    CHECK(strcmp(a, c) && strcmp(a, d) && strcmp(c, d));
    CHECK_EQ_INT(strlen(a), 36);
    CHECK(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
}

/* Words as tokens: easy to reason about in tests. */
static int count_words(void *ctx, const char *t, size_t n)
{
    int w = 0;
    (void)ctx;
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)t[i]) && (i == 0 || isspace((unsigned char)t[i - 1])))
            w++;
    return w;
}

static struct feat_chunk *chunk(enum feat_kind k, const char *t, int budget, int overlap,
                                size_t *n)
{
    struct feat_chunker c = {budget, overlap, count_words, NULL};
    struct tw_err err = TW_ERR_INIT;
    struct feat_chunk *out = NULL;
    if (feat_chunk(&c, k, t, strlen(t), &out, n, &err) != 0)
        return NULL;
    return out;
}

TEST(chunk_short_post_is_one_chunk)
{
    size_t n;
    struct feat_chunk *c = chunk(FEAT_POST, "  One short post. Two sentences.\n\n", 64, 8, &n);
    CHECK(c != NULL);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(c[0].start, 2);
    CHECK_EQ_INT(c[0].end, 32);
    CHECK_EQ_INT(c[0].n_tokens, 5);
    tw_free(c);
}

TEST(chunk_article_by_sections_then_sentences_with_overlap)
{
    const char *t = "# Intro\n\nAlpha beta gamma. Delta epsilon zeta.\n\n"
                    "# Second\n\nOne two three four. Five six seven eight. Nine ten eleven twelve. "
                    "Thirteen fourteen fifteen sixteen.";
    size_t n;
    struct feat_chunk *c = chunk(FEAT_ARTICLE, t, 10, 4, &n);
    CHECK(c != NULL);
    /* Section 1 (8 words) fits; section 2 (18 words) splits at sentences with one sentence of
     * overlap (4 words). */
    CHECK_EQ_INT(n, 4);
    CHECK(!strncmp(t + c[0].start, "# Intro", 7));
    CHECK_EQ_INT(c[0].end, strlen("# Intro\n\nAlpha beta gamma. Delta epsilon zeta."));
    CHECK(!strncmp(t + c[1].start, "# Second", 8));
    CHECK(!strncmp(t + c[2].start, "Five six", 8)); /* overlap: repeats the 2nd sentence */
    CHECK(!strncmp(t + c[3].start, "Nine ten", 8));
    for (size_t i = 0; i < n; i++)
        CHECK(c[i].n_tokens <= 10);
    tw_free(c);
}

TEST(chunk_giant_word_and_code_blocks)
{
    char big[400];
    size_t n;
    struct feat_chunk *c;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    /* One 399-byte word with a counter of 1 token per 4 bytes: cut in pieces. */
    {
        struct feat_chunker ck = {16, 0, feat_count_approx, NULL};
        struct tw_err err = TW_ERR_INIT;
        CHECK_OK(feat_chunk(&ck, FEAT_ARTICLE, big, strlen(big), &c, &n, &err), &err);
        CHECK(n >= 7);
        CHECK_EQ_INT(c[0].start, 0);
        CHECK_EQ_INT(c[n - 1].end, 399);
        for (size_t i = 1; i < n; i++)
            CHECK_EQ_INT(c[i].start, c[i - 1].end);
        tw_free(c);
    }
    c = chunk(FEAT_CODE, "int a(void)\n{\n    return 1;\n}\n\nint b(void)\n{\n    return 2;\n}\n",
              8, 0, &n);
    CHECK(c != NULL);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(c[1].start, 31);
    tw_free(c);
}

TEST(chunk_rejects_bad_budget)
{
    struct feat_chunker ck = {4, 0, count_words, NULL};
    struct tw_err err = TW_ERR_INIT;
    struct feat_chunk *c = NULL;
    size_t n;
    CHECK_EQ_INT(feat_chunk(&ck, FEAT_ARTICLE, "x", 1, &c, &n, &err), TW_EINVAL);
    ck.max_tokens = 64;
    ck.overlap_tokens = 64;
    tw_err_clear(&err);
    CHECK_EQ_INT(feat_chunk(&ck, FEAT_ARTICLE, "x", 1, &c, &n, &err), TW_EINVAL);
}

/* Every skeeto post, cleaned as an article and chunked: chunks within budget, in order, at
 * whitespace boundaries, covering every non-space byte. */
TEST(chunk_invariants_on_skeeto_corpus)
{
    const char *dir = test_shared("data/corpora/skeeto/_posts");
    char dir_copy[1024];
    DIR *d;
    struct dirent *e;
    int files = 0;
    long chunks = 0;
    snprintf(dir_copy, sizeof(dir_copy), "%s", dir);
    d = opendir(dir_copy);
    CHECK(d != NULL);
    while ((e = readdir(d))) {
        char path[2048];
        size_t len, n, cl;
        char *raw, *text = NULL;
        struct feat_chunk *c = NULL;
        struct tw_err err = TW_ERR_INIT;
        struct feat_chunker ck = {128, 16, feat_count_approx, NULL};
        int bad = 0;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir_copy, e->d_name);
        raw = test_read_file(path, &len);
        if (!raw)
            continue;
        if (feat_clean(FEAT_ARTICLE, raw, len, &text, &cl, &err) != 0 ||
            feat_chunk(&ck, FEAT_ARTICLE, text, cl, &c, &n, &err) != 0) {
            tw_free(raw);
            tw_free(text);
            closedir(d);
            CHECK_MSG(0, "%s: %s", e->d_name, err.msg);
        }
        {
            size_t covered = 0; /* every non-space byte before 'covered' is in a chunk */
            for (size_t i = 0; i < n && !bad; i++) {
                if (c[i].end <= c[i].start || c[i].end > cl)
                    bad = 1;
                if (i && (c[i].start < c[i - 1].start || c[i].end <= c[i - 1].end))
                    bad = 2;
                for (size_t k = covered; k < c[i].start && !bad; k++)
                    if (!isspace((unsigned char)text[k]))
                        bad = 3;
                if (c[i].end > covered)
                    covered = c[i].end;
            }
            for (size_t k = covered; k < cl && !bad; k++)
                if (!isspace((unsigned char)text[k]))
                    bad = 4;
        }
        chunks += (long)n;
        files++;
        tw_free(raw);
        tw_free(text);
        tw_free(c);
        if (bad) {
            closedir(d);
            CHECK_MSG(0, "%s: invariant %d broken", e->d_name, bad);
        }
    }
    closedir(d);
    CHECK_EQ_INT(files, 461);
    printf("  skeeto: %d posts, %ld chunks at 128 tokens\n", files, chunks);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
