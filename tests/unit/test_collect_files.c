/* test_collect_files.c - front matter and local files, on the skeeto Jekyll corpus. */
#include "test.h"

#include "collect/collect.h"
#include "collect/collect_int.h"
#include "collect_sink.h"

#include <stdio.h>
#include <sys/stat.h>

static struct cs c; // large: static, not on the stack

static int write_str(const char *dir, const char *name, const char *s)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return test_write_file(p, s, strlen(s));
}

TEST(frontmatter_yaml_fields_and_tags)
{
    const char *t = "---\ntitle: \"A \\\"quoted\\\" title \\u00e9\"\nlayout: post\n"
                    "date: 2017-03-01T21:22:24Z\ntags: [c, 'posix', \"win32\"]\n"
                    "description: >\n  folded\n  text\nmeta:\n  nested: x\n---\nBody\n";
    struct fm_meta m;
    struct tw_err err = TW_ERR_INIT;
    CHECK_OK(fm_parse(t, strlen(t), &m, &err), &err);
    CHECK_EQ_STR(m.title, "A \"quoted\" title \xc3\xa9");
    CHECK_EQ_STR(m.date, "2017-03-01T21:22:24Z");
    CHECK_EQ_STR(m.subtitle, "folded text");
    CHECK_EQ_INT(m.n_tags, 3);
    CHECK_EQ_STR(m.tags[1], "posix");
    CHECK_EQ_STR(t + m.body_off, "Body\n");
    CHECK(!m.draft);
    fm_meta_release(&m);
}

TEST(frontmatter_toml_block_list_and_errors)
{
    const char *toml = "+++\ntitle = 'It''s TOML'\ndate = 2020-01-02\ndraft = true\n"
                       "tags = [\"a\", \"b\"]\n[params]\ntitle = \"not this\"\n+++\nx";
    const char *block = "---\ntitle: t\ntags:\n  - one\n  - two # comment\n---\n";
    const char *open = "---\ntitle: never closed\n\nBody";
    const char *bad = "---\ntitle: ok\njust words\n---\n";
    struct fm_meta m;
    struct tw_err err = TW_ERR_INIT;
    CHECK_OK(fm_parse(toml, strlen(toml), &m, &err), &err);
    CHECK_EQ_STR(m.title, "It's TOML");
    CHECK(m.draft);
    CHECK_EQ_INT(m.n_tags, 2);
    CHECK_EQ_STR(toml + m.body_off, "x");
    fm_meta_release(&m);
    CHECK_OK(fm_parse(block, strlen(block), &m, &err), &err);
    CHECK_EQ_INT(m.n_tags, 2);
    CHECK_EQ_STR(m.tags[1], "two");
    fm_meta_release(&m);
    CHECK_EQ_INT(fm_parse(open, strlen(open), &m, &err), TW_EFORMAT);
    CHECK(strstr(err.msg, "never closed") != NULL);
    tw_err_clear(&err);
    CHECK_EQ_INT(fm_parse(bad, strlen(bad), &m, &err), TW_EFORMAT);
    CHECK_EQ_STR(err.msg, "front matter line 3: expected 'key: value', got 'just words'");
    /* No front matter at all. */
    CHECK_OK(fm_parse("plain", 5, &m, &err), &err);
    CHECK_EQ_INT(m.body_off, 0);
    CHECK(m.title == NULL);
}

TEST(parse_time_forms)
{
    int64_t t;
    CHECK_OK(src__parse_time("2007-09-01", 10, &t), &(struct tw_err){0});
    CHECK_EQ_INT(t, 1188604800);
    CHECK_EQ_INT(src__parse_time("2017-03-01T21:22:24Z", 20, &t), 0);
    CHECK_EQ_INT(t, 1488403344);
    CHECK_EQ_INT(src__parse_time("2017-03-01 23:22:24 +0200", 25, &t), 0);
    CHECK_EQ_INT(t, 1488403344);
    CHECK_EQ_INT(src__parse_time("2024-11-06T17:37:50.661Z", 24, &t), 0);
    CHECK_EQ_INT(t, 1730914670);
    CHECK_EQ_INT(src__parse_time("2023-02-29", 10, &t), -1);
    CHECK_EQ_INT(src__parse_time("yesterday", 9, &t), -1);
    CHECK_EQ_INT(src__parse_time("2020-01-01T10:00:00Zjunk", 24, &t), -1);
}

TEST(files_skeeto_corpus)
{
    struct src_sink sink = cs_sink(&c);
    struct src_opts o = {.author_name = "Chris Wellons"};
    struct tw_err err = TW_ERR_INIT;
    const struct cs_doc *d;
    CHECK_OK(src_files_import(test_shared("data/corpora/skeeto/_posts"), &o, &sink, &err), &err);
    if (c.n_fail)
        fprintf(stderr, "  first failure: %s: %s\n", c.fail_item[0], c.fail_msg[0]);
    CHECK_EQ_INT(c.n_fail, 0);
    CHECK_EQ_INT(c.n, 461);

    d = cs_find(&c, "/2007-09-01-intro.markdown");
    CHECK(d != NULL);
    CHECK_EQ_STR(d->title, "null program is Alive");
    CHECK_EQ_STR(d->kind, "article");
    CHECK_EQ_STR(d->platform, "file");
    CHECK_EQ_STR(d->author, "Chris Wellons");
    CHECK(!strncmp(d->url, "file:///", 8));
    CHECK(strstr(d->source, "skeeto/_posts") != NULL);
    CHECK_EQ_INT(d->published_at, 1188604800); /* from the file name */
    CHECK(!strncmp(d->content,
                   "Welcome to **null program**. This is my new home as my [student\n"
                   "location](http://www.cse.psu.edu/~wellons)",
                   100));

    d = cs_find(&c, "/2017-03-01-OpenMP-and-pwrite-.markdown");
    CHECK(d != NULL);
    CHECK_EQ_STR(d->title, "OpenMP and pwrite()");
    CHECK_EQ_INT(d->published_at, 1488403344); /* front matter date wins */

    /* An HTML post: quoted title, comments and markup gone, Liquid code block fenced. */
    d = cs_find(&c, "/2009-01-04-namegen.html");
    CHECK(d != NULL);
    CHECK_EQ_STR(d->title, "Fantasy Name Generator: Request for Patterns");
    CHECK(!strncmp(d->content,
                   "Whether choosing a name for my character in a fantasy game or "
                   "populating a world",
                   80));
    CHECK(strstr(d->content, "<p>") == NULL && strstr(d->content, "<!--") == NULL);
    d = cs_find(&c, "/2008-07-18-c-pointers.html");
    CHECK(d != NULL);
    CHECK(strstr(d->content, "```\n#include <stdio.h>\n\nvoid a ()") != NULL);
    cs_release(&c);
}

TEST(files_bad_items_are_reported_and_others_kept)
{
    char dir[1024];
    struct src_sink sink = cs_sink(&c);
    struct src_opts o = {.author_name = "A B"};
    struct tw_err err = TW_ERR_INIT;
    const struct cs_doc *d;
    int k;
    snprintf(dir, sizeof(dir), "%s/files", test_tmpdir());
    CHECK(mkdir(dir, 0777) == 0);
    CHECK(write_str(dir, "good.md", "# Heading Title\n\nFirst para.\r\n\r\n\r\n\r\nSecond.\n") ==
          0);
    CHECK(write_str(dir, "2021-05-06-slug-name.txt", "plain text\n") == 0);
    CHECK(write_str(dir, "saved-page.html",
                    "<!DOCTYPE html><html><head><title>Saved - Site</title><meta property="
                    "\"og:title\" content=\"Saved Page\"><meta property=\"article:published_time\" "
                    "content=\"2022-03-04T05:06:07Z\"></head><body><nav>Home About</nav><aside>"
                    "<p>Sidebar text that is long enough to be a paragraph, really.</p></aside>"
                    "<article><p>The article itself, with enough words to count.</p></article>"
                    "</body></html>") == 0);
    CHECK(write_str(dir, "comments.md",
                    "# C\n\nkept <!-- hidden --> text\n<!--more-->\n<!-- spans\nlines -->after\n"
                    "```\n<!-- in code -->\n```\n    <!-- indented code -->\nuse `<!--` here\n") ==
          0);
    CHECK(write_str(dir, "empty.md", "") == 0);
    CHECK(write_str(dir, "latin1.md", "caf\xe9\n") == 0);
    CHECK(write_str(dir, "open.md", "---\ntitle: x\nno end") == 0);
    CHECK(write_str(dir, "draft.md", "---\ntitle: D\ndraft: true\n---\nwip\n") == 0);
    CHECK(write_str(dir, "nohtml.html", "<html><script>x()</script></html>") == 0);
    CHECK(write_str(dir, "image.png", "\x89PNG") == 0);
    CHECK_OK(src_files_import(dir, &o, &sink, &err), &err);
    CHECK_EQ_INT(c.n, 4);
    /* A whole saved page goes through article extraction and keeps its metadata. */
    d = cs_find(&c, "/saved-page.html");
    CHECK(d != NULL);
    CHECK_EQ_STR(d->title, "Saved Page");
    CHECK_EQ_STR(d->content, "The article itself, with enough words to count.");
    CHECK_EQ_INT(d->published_at, 1646370367);
    d = cs_find(&c, "/comments.md");
    CHECK(d != NULL);
    CHECK_EQ_STR(d->content, "# C\n\nkept  text\n\nafter\n```\n<!-- in code -->\n```\n"
                             "    <!-- indented code -->\nuse `<!--` here");
    d = cs_find(&c, "/good.md");
    CHECK(d != NULL);
    CHECK_EQ_STR(d->title, "Heading Title");
    CHECK_EQ_STR(d->content, "# Heading Title\n\nFirst para.\n\nSecond.");
    CHECK_EQ_INT(d->published_at, INT64_MIN);
    d = cs_find(&c, "/2021-05-06-slug-name.txt");
    CHECK(d != NULL);
    CHECK_EQ_STR(d->title, "slug name");
    CHECK_EQ_INT(d->published_at, 1620259200);
    CHECK_EQ_INT(c.n_fail, 4);
    k = cs_find_fail(&c, "/empty.md");
    CHECK(k >= 0);
    CHECK_EQ_STR(c.fail_msg[k], "file is empty");
    k = cs_find_fail(&c, "/latin1.md");
    CHECK(k >= 0);
    CHECK_EQ_STR(c.fail_msg[k],
                 "not valid UTF-8 (bad byte 0xe9 at offset 3); convert it to UTF-8 first");
    k = cs_find_fail(&c, "/open.md");
    CHECK(k >= 0 && strstr(c.fail_msg[k], "never closed"));
    k = cs_find_fail(&c, "/nohtml.html");
    CHECK(k >= 0);
    CHECK_EQ_STR(c.fail_msg[k], "no article content found");
    cs_release(&c);

    /* --drafts brings the draft in. */
    sink = cs_sink(&c);
    o.include_drafts = true;
    CHECK_OK(src_files_import(dir, &o, &sink, &err), &err);
    CHECK_EQ_INT(c.n, 5);
    CHECK(cs_find(&c, "/draft.md") != NULL);
    cs_release(&c);
}

TEST(files_single_file_and_sink_stop)
{
    char path[1024];
    struct src_sink sink = cs_sink(&c);
    struct tw_err err = TW_ERR_INIT;
    snprintf(path, sizeof(path), "%s/one.txt", test_tmpdir());
    CHECK(test_write_file(path, "hello\n", 6) == 0);
    CHECK_OK(src_files_import(path, NULL, &sink, &err), &err);
    CHECK_EQ_INT(c.n, 1);
    CHECK_EQ_STR(c.d[0].title, "one");
    CHECK_EQ_STR(c.d[0].content, "hello");
    cs_release(&c);
    /* A store failure stops the source and is returned. */
    sink = cs_sink(&c);
    c.stop_after = 3;
    CHECK_EQ_INT(src_files_import(test_shared("data/corpora/skeeto/_posts"), NULL, &sink, &err),
                 TW_EDB);
    CHECK(strstr(err.msg, "sink full") != NULL);
    CHECK_EQ_INT(c.n, 3);
    cs_release(&c);
    tw_err_clear(&err);
    CHECK_EQ_INT(src_files_import("/nonexistent/x", NULL, &sink, &err), TW_ENOENT);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
