/* test_collect_exports.c - Medium and Substack exports, Substack pages, zip bounds, detection. */
#include "test.h"

#include "collect/collect.h"
#include "collect/collect_int.h"
#include "collect_sink.h"

#include <stdio.h>
#include <sys/stat.h>

static struct cs c;

TEST(medium_export_folder)
{
    struct src_sink sink = cs_sink(&c);
    struct src_opts o = {.author_name = "Joe Bloggs"};
    struct tw_err err = TW_ERR_INIT;
    const struct cs_doc *d;
    int k;
    CHECK_EQ_INT(src_detect(test_shared("data/exports/medium_export")), SRC_KIND_MEDIUM);
    CHECK_OK(src_medium_import(test_shared("data/exports/medium_export"), &o, &sink, &err), &err);
    /* 9 files: the draft and the response are skipped; advanced, basic, code, quote and short
     * share one canonical link in these fixtures, so the first (advanced) wins and four fail. */
    CHECK_EQ_INT(c.n, 3);
    CHECK_EQ_INT(c.n_fail, 4);
    k = cs_find_fail(&c, "posts/basic-post.html");
    CHECK(k >= 0);
    CHECK(strstr(c.fail_msg[k], "is also the link of") != NULL);

    d = cs_find(&c, "/@JoeBloggs/testpost-efefef12121212");
    CHECK(d != NULL);
    CHECK_EQ_STR(d->title, "Advanced Post Title");
    CHECK_EQ_STR(d->subtitle, "This is a subtitle of some sort");
    CHECK_EQ_STR(d->kind, "article");
    CHECK_EQ_STR(d->platform, "medium");
    CHECK_EQ_INT(d->published_at, 1533986614); /* 2018-08-11T11:23:34.123Z */
    CHECK_EQ_STR(d->handle, "username");       /* profile/profile.html: @username */
    CHECK_EQ_STR(d->author, "Joe Bloggs");
    /* The repeated title/subtitle headings are gone; captions, lists and links as text. */
    CHECK(!strncmp(d->content,
                   "This is an image caption\n\nThis is a subtitle of some sort\n\n"
                   "This is a paragraph of text and stuff.",
                   90));
    CHECK(strstr(d->content, "#### Another header\n\n- Single item list") != NULL);
    CHECK(strstr(d->content, "- And a second list item with a link to Ghost") != NULL);
    CHECK(strstr(d->content, "\xf0\x9f\x8e\x89 This is a call to action") != NULL);
    CHECK(strstr(d->content, "Exported from") == NULL); /* footer dropped */

    d = cs_find(&c, "/@JoeBloggs/no-date-post-efefef121212");
    CHECK(d != NULL);
    CHECK_EQ_STR(d->content, "First paragraph.\n\nSecond paragraph.");
    CHECK_EQ_INT(d->published_at, INT64_MIN);
    d = cs_find(&c, "/@JoeBloggs/1234567890");
    CHECK(d != NULL);
    CHECK_EQ_STR(d->title, "No Slug Post");
    cs_release(&c);
}

TEST(medium_export_zip_code_and_drafts)
{
    char zip[1024];
    size_t len;
    char *code =
        test_read_file(test_shared("data/exports/medium_export/posts/code-post.html"), &len);
    char *draft =
        test_read_file(test_shared("data/exports/medium_export/posts/draft-post.html"), &len);
    char *profile =
        test_read_file(test_shared("data/exports/medium_export/profile/profile.html"), &len);
    char *quote =
        test_read_file(test_shared("data/exports/medium_export/posts/quote-post.html"), &len);
    struct src_sink sink = cs_sink(&c);
    struct src_opts o = {.author_name = "Joe Bloggs", .include_drafts = true};
    struct tw_err err = TW_ERR_INIT;
    const struct cs_doc *d;
    CHECK(code && draft && profile && quote);
    snprintf(zip, sizeof(zip), "%s/medium.zip", test_tmpdir());
    {
        const char *names[] = {"medium-export/posts/code-post.html",
                               "medium-export/posts/draft_Draft-Post-ababab.html",
                               "medium-export/profile/profile.html", "medium-export/README.html"};
        const char *datas[] = {code, draft, profile, "<p>readme</p>"};
        CHECK(cs_write_zip(zip, names, datas, 4) == 0);
    }
    {
        char zq[1100];
        const char *names[] = {"posts/quote-post.html", "profile/profile.html"};
        const char *datas[] = {quote, profile};
        struct src_sink s2 = cs_sink(&c);
        snprintf(zq, sizeof(zq), "%s/quote.zip", test_tmpdir());
        CHECK(cs_write_zip(zq, names, datas, 2) == 0);
        CHECK_OK(src_import_path(zq, &o, &s2, &err), &err);
        CHECK_EQ_INT(c.n, 1);
        CHECK(strstr(c.d[0].content, "> \xe2\x80\x9cLorem Ipsum\xe2\x80\x9d Example") != NULL);
        cs_release(&c);
        sink = cs_sink(&c);
    }
    tw_free(quote);
    tw_free(code);
    tw_free(draft);
    tw_free(profile);
    CHECK_EQ_INT(src_detect(zip), SRC_KIND_MEDIUM);
    CHECK_OK(src_medium_import(zip, &o, &sink, &err), &err);
    CHECK_EQ_INT(c.n, 2);
    d = cs_find(&c, "/@JoeBloggs/testpost-efefef12121212");
    CHECK(d != NULL);
    CHECK_EQ_STR(d->title, "Code Post Title");
    CHECK(strstr(d->content, "```\nsudo apt-get update\nsudo apt-get install \\\n    "
                             "apt-transport-https \\\n") != NULL);
    CHECK(strstr(d->content, "echo \"deb https://sub.example.com/ce/dolor lorem ipsum\" |\\\n"
                             "sudo tee") != NULL);
    /* With --drafts the draft comes in under its file URL. */
    d = cs_find(&c, "medium.zip#medium-export/posts/draft_Draft-Post-ababab.html");
    CHECK(d != NULL);
    CHECK_EQ_STR(d->title, "Draft Post Title");
    cs_release(&c);
}

TEST(substack_export)
{
    struct src_sink sink = cs_sink(&c);
    struct src_opts o = {.author_name = "Ex Ample", .author_handle = "example"};
    struct tw_err err = TW_ERR_INIT;
    const struct cs_doc *d;
    CHECK_EQ_INT(src_detect(test_shared("data/exports/substack_export")), SRC_KIND_SUBSTACK);
    CHECK_OK(src_substack_import(test_shared("data/exports/substack_export"), &o, &sink, &err),
             &err);
    /* 5 rows: the unpublished draft and the About page are skipped. */
    CHECK_EQ_INT(c.n_fail, 0);
    CHECK_EQ_INT(c.n, 3);
    d = cs_find(&c, "https://example.substack.com/p/plain-text");
    CHECK(d != NULL);
    CHECK_EQ_STR(d->title, "Plain Text");
    CHECK_EQ_STR(d->subtitle, "\xe2\x80\x9cThis quote\xe2\x80\x99s rather short\xe2\x80\x9d");
    CHECK_EQ_INT(d->published_at, 1564174099); /* 2019-07-26T20:48:19.814Z */
    CHECK_EQ_STR(d->content, "## Lorem Ipsum\n\nLorem ipsum dolor sit amet, consectetur adipiscing "
                             "elit, sed do eiusmod tempor incididunt.\n\nDolore magna aliqua. Ut "
                             "enim ad minim veniam, quis nostrud exercitation ullamco.");
    d = cs_find(&c, "/p/podcast");
    CHECK(d != NULL);
    CHECK_EQ_STR(d->kind, "article");
    CHECK_EQ_STR(d->content, "## Podcast Episode\n\nDolore magna aliqua.\n\nDolor sit amet.");
    d = cs_find(&c, "/p/thread");
    CHECK(d != NULL);
    CHECK_EQ_STR(d->kind, "post");
    cs_release(&c);

    /* --drafts brings the unpublished post in; without a handle urls are substack:<post_id>. */
    sink = cs_sink(&c);
    o.include_drafts = true;
    o.author_handle = NULL;
    CHECK_OK(
        src_substack_import(test_shared("data/exports/substack_export/posts.csv"), &o, &sink, &err),
        &err);
    CHECK_EQ_INT(c.n, 4);
    CHECK(cs_find(&c, "substack:123404.draft-text") != NULL);
    cs_release(&c);
}

TEST(substack_export_zip_with_a_top_folder)
{
    static const char *const files[] = {"posts.csv",
                                        "posts/123401.plain-text.html",
                                        "posts/123402.podcast.html",
                                        "posts/123403.thread.html",
                                        "posts/123404.draft-text.html",
                                        "posts/123405.about-us.html"};
    char *datas[6], names[6][128], zip[1024];
    const char *np[6], *dp[6];
    struct src_sink sink = cs_sink(&c);
    struct src_opts o = {.author_name = "Ex Ample"};
    struct tw_err err = TW_ERR_INIT;
    for (int i = 0; i < 6; i++) {
        char rel[256];
        size_t len;
        snprintf(rel, sizeof(rel), "data/exports/substack_export/%s", files[i]);
        datas[i] = test_read_file(test_shared(rel), &len);
        snprintf(names[i], sizeof(names[i]), "export-2024/%s", files[i]);
        np[i] = names[i];
        dp[i] = datas[i];
    }
    for (int i = 0; i < 6; i++)
        CHECK(datas[i] != NULL);
    snprintf(zip, sizeof(zip), "%s/substack.zip", test_tmpdir());
    CHECK(cs_write_zip(zip, np, dp, 6) == 0);
    for (int i = 0; i < 6; i++)
        tw_free(datas[i]);
    CHECK_EQ_INT(src_detect(zip), SRC_KIND_SUBSTACK);
    CHECK_OK(src_import_path(zip, &o, &sink, &err), &err);
    CHECK_EQ_INT(c.n, 3);
    CHECK(cs_find(&c, "substack:123401.plain-text") != NULL);
    CHECK(strstr(c.d[0].source, "substack.zip") != NULL);
    cs_release(&c);
}

TEST(substack_export_bad_rows)
{
    char dir[1024], p[1100];
    struct src_sink sink = cs_sink(&c);
    struct tw_err err = TW_ERR_INIT;
    snprintf(dir, sizeof(dir), "%s/ss", test_tmpdir());
    CHECK(mkdir(dir, 0777) == 0);
    snprintf(p, sizeof(p), "%s/posts", dir);
    CHECK(mkdir(p, 0777) == 0);
    snprintf(p, sizeof(p), "%s/posts.csv", dir);
    {
        const char *csv = "post_id,post_date,is_published,email_sent_at,inbox_sent_at,type,"
                          "audience,title,subtitle,podcast_url\n"
                          "1.ok,,TRUE,,2021-01-02T03:04:05Z,newsletter,everyone,Ok,,\n"
                          "2.missing,2021-01-01T00:00:00Z,TRUE,,,newsletter,everyone,Gone,,\n"
                          "3.empty,2021-01-01T00:00:00Z,TRUE,,,newsletter,everyone,Empty,,\n"
                          "4.bad\"quote,x,TRUE,,,,,,,\n";
        CHECK(test_write_file(p, csv, strlen(csv)) == 0);
    }
    snprintf(p, sizeof(p), "%s/posts/1.ok.html", dir);
    CHECK(test_write_file(p, "<p>fine</p>", 11) == 0);
    snprintf(p, sizeof(p), "%s/posts/3.empty.html", dir);
    CHECK(test_write_file(p, "<script>x</script>", 18) == 0);
    CHECK_OK(src_substack_import(dir, NULL, &sink, &err), &err);
    CHECK_EQ_INT(c.n, 1);
    CHECK_EQ_INT(c.d[0].published_at, 1609556645); /* inbox_sent_at when post_date is empty */
    CHECK_EQ_INT(c.n_fail, 3);
    CHECK(strstr(c.fail_msg[0], "post 2.missing: no posts/2.missing.html") != NULL);
    CHECK_EQ_STR(c.fail_msg[1], "no text content");
    CHECK(strstr(c.fail_msg[2], "quote inside unquoted field 1") != NULL);
    cs_release(&c);
}

TEST(substack_pages)
{
    size_t len;
    char *html =
        test_read_file(test_shared("data/exports/substack_pages/substack-hello-world.html"), &len);
    struct src_sink sink = cs_sink(&c);
    struct tw_err err = TW_ERR_INIT;
    const struct cs_doc *d;
    CHECK(html != NULL);
    CHECK_OK(src_substack_page(html, len, "https://fetched.example/x", "test", NULL, &sink, &err),
             &err);
    tw_free(html);
    CHECK_EQ_INT(c.n, 1);
    d = &c.d[0];
    /* window._preloads wins over the social-preview og:/JSON-LD titles. */
    CHECK_EQ_STR(d->title, "Hello world!");
    CHECK_EQ_STR(d->subtitle, "Oh, this is a subtitle?");
    CHECK_EQ_STR(d->url, "https://example.substack.com/p/hello-world");
    CHECK_EQ_INT(d->published_at, 1730914670);
    CHECK_EQ_STR(d->content, "Body content, not testing this");
    cs_release(&c);

    html = test_read_file(test_shared("data/exports/substack_pages/substack-single-author.html"),
                          &len);
    sink = cs_sink(&c);
    CHECK(html != NULL);
    CHECK_OK(src_substack_page(html, len, "https://fetched.example/y", NULL, NULL, &sink, &err),
             &err);
    tw_free(html);
    CHECK_EQ_STR(c.d[0].url, "https://example.substack.com/p/hello-world"); /* canonical link */
    CHECK_EQ_STR(c.d[0].title, "Social title");
    cs_release(&c);

    html = test_read_file(test_shared("data/exports/substack_pages/substack-podcast.html"), &len);
    sink = cs_sink(&c);
    CHECK(html != NULL);
    CHECK_EQ_INT(src_substack_page(html, len, "https://x/p", NULL, NULL, &sink, &err), TW_ENOENT);
    tw_free(html);
    CHECK_EQ_INT(c.n, 0);
}

TEST(zip_rejects_traversal_and_corruption)
{
    char zip[1024], bad[1024];
    struct src_sink sink = cs_sink(&c);
    struct tw_err err = TW_ERR_INIT;
    snprintf(zip, sizeof(zip), "%s/evil.zip", test_tmpdir());
    {
        const char *names[] = {"ok.md", "../../etc/evil.md"};
        const char *datas[] = {"# ok\n", "# evil\n"};
        CHECK(cs_write_zip(zip, names, datas, 2) == 0);
    }
    CHECK_EQ_INT(src_files_import(zip, NULL, &sink, &err), TW_EFORMAT);
    CHECK(strstr(err.msg, "'../../etc/evil.md' points outside the archive") != NULL);
    CHECK_EQ_INT(c.n, 0);

    /* A zip cut in half: libarchive reads the local headers it can, then fails clearly. */
    snprintf(zip, sizeof(zip), "%s/good.zip", test_tmpdir());
    {
        const char *names[] = {"a.md", "b.md"};
        const char *datas[] = {"# a\n\nalpha text\n", "# b\n\nbeta text\n"};
        CHECK(cs_write_zip(zip, names, datas, 2) == 0);
    }
    sink = cs_sink(&c);
    tw_err_clear(&err);
    CHECK_OK(src_files_import(zip, NULL, &sink, &err), &err);
    CHECK_EQ_INT(c.n, 2);
    CHECK(strstr(c.d[0].url, "good.zip#a.md") != NULL);
    CHECK_EQ_STR(c.d[1].content, "# b\n\nbeta text");
    cs_release(&c);
    {
        size_t len;
        char *data = test_read_file(zip, &len);
        CHECK(data != NULL);
        snprintf(bad, sizeof(bad), "%s/cut.zip", test_tmpdir());
        /* Keep the signature and garble the rest of the first header. */
        memset(data + 6, 0xff, 24);
        CHECK(test_write_file(bad, data, len) == 0);
        tw_free(data);
    }
    sink = cs_sink(&c);
    tw_err_clear(&err);
    CHECK(src_files_import(bad, NULL, &sink, &err) < 0);
    CHECK(strstr(err.msg, "cut.zip") != NULL);
    cs_release(&c);
}

TEST(detect_kinds)
{
    char dir[1024], p[1100];
    snprintf(dir, sizeof(dir), "%s/repo", test_tmpdir());
    CHECK(mkdir(dir, 0777) == 0);
    CHECK_EQ_INT(src_detect(dir), SRC_KIND_FILES);
    snprintf(p, sizeof(p), "%s/.git", dir);
    CHECK(mkdir(p, 0777) == 0);
    CHECK_EQ_INT(src_detect(dir), SRC_KIND_GIT);
    CHECK_EQ_INT(src_detect("https://github.com/skeeto/skeeto.github.com.git"), SRC_KIND_GIT);
    CHECK_EQ_INT(src_detect("https://github.com/skeeto/w64devkit"), SRC_KIND_GIT);
    CHECK_EQ_INT(src_detect("https://example.com/blog/feed"), SRC_KIND_NONE);
    {
        struct src_sink sink = cs_sink(&c);
        struct tw_err err = TW_ERR_INIT;
        CHECK_EQ_INT(src_import_path("https://example.com/blog/feed", NULL, &sink, &err),
                     TW_EUNSUP);
        CHECK(strstr(err.msg, "twin crawl") != NULL);
    }
    CHECK_EQ_INT(src_detect(test_shared("data/corpora/skeeto/_posts")), SRC_KIND_FILES);
    CHECK_EQ_INT(src_detect(test_shared("data/exports/substack_export/posts.csv")),
                 SRC_KIND_SUBSTACK);
    CHECK_EQ_INT(src_detect("/nonexistent/path"), SRC_KIND_NONE);
    CHECK_EQ_STR(src_kind_name(SRC_KIND_MEDIUM), "medium export");
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
