/* test_collect_html.c - html_to_text, html_extract_article, html_is_bot_challenge. */
#include "test.h"

#include "base/buf.h"
#include "base/mem.h"
#include "collect/html.h"

#include <stdint.h>

static char *to_text(const char *html)
{
    char *out = NULL;
    struct tw_err err = TW_ERR_INIT;
    if (html_to_text(html, strlen(html), &out, &err) != 0) {
        fprintf(stderr, "  html_to_text: %s\n", err.msg);
        return NULL;
    }
    return out;
}

#define CHECK_TEXT(html, want)                                                                     \
    do {                                                                                           \
        char *t_ = to_text(html);                                                                  \
        CHECK(t_ != NULL);                                                                         \
        if (strcmp(t_, want)) {                                                                    \
            fprintf(stderr, "  got:  \"%s\"\n  want: \"%s\"\n", t_, want);                         \
            tw_free(t_);                                                                           \
            CHECK(!"text differs");                                                                \
        }                                                                                          \
        tw_free(t_);                                                                               \
    } while (0)

TEST(html_paragraphs_headings_entities)
{
    CHECK_TEXT("<h1>Title</h1><p>One  two\n three &amp; &lt;four&gt; &eacute;&nbsp;x</p><p>B</p>",
               "# Title\n\nOne two three & <four> \xc3\xa9 x\n\nB");
    CHECK_TEXT("<h3>Sub <em>head</em></h3>text<br>next line", "### Sub head\n\ntext\nnext line");
    /* Inline elements keep the spaces around them, and none are added. */
    CHECK_TEXT("<p>a <b>bold</b>, <a href=x>link</a>.</p>", "a bold, link.");
}

TEST(html_drops_scripts_nav_and_widgets)
{
    CHECK_TEXT(
        "<html><head><title>T</title><style>p{}</style></head><body><nav>Home</nav>"
        "<script>var x = 1;</script><p>Kept.</p><footer>foot</footer>"
        "<p class=\"button-wrapper\"><a>Sign up now</a></p><div class=share-bar>Share</div>"
        "<p hidden>h</p><p style=\"display:none\">n</p><noscript>ns</noscript></body></html>",
        "Kept.");
}

TEST(html_lists_quotes_code)
{
    CHECK_TEXT("<ul><li>one</li><li>two<ul><li>inner</li></ul></li></ul><ol start=3><li>c</li>"
               "<li>d</li></ol>",
               "- one\n- two\n  - inner\n\n3. c\n4. d");
    CHECK_TEXT("<blockquote><p>quoted</p><p>more</p></blockquote><p>after</p>",
               "> quoted\n>\n> more\n\nafter");
    /* The blank line before a quote is not part of it. */
    CHECK_TEXT("<p>before</p><blockquote><p>in</p></blockquote>", "before\n\n> in");
    CHECK_TEXT("<p>call <code>f(x)</code> now</p><pre><code>int main(void)\n{\n    return 0;\n}\n"
               "</code></pre>",
               "call `f(x)` now\n\n```\nint main(void)\n{\n    return 0;\n}\n```");
    /* Medium's layout: a pre indented by the markup, lines split by <br>. */
    CHECK_TEXT(
        "<pre>\n        <code>\n          sudo a \\<br>    b \\<br>c\n        </code>\n</pre>",
        "```\nsudo a \\\n    b \\\nc\n```");
}

TEST(html_tables_and_nfc_and_bad_utf8)
{
    CHECK_TEXT("<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>",
               "a | b\n1 | 2");
    /* e + combining acute (NFD) comes out composed (NFC). */
    CHECK_TEXT("<p>caf\x65\xcc\x81</p>", "caf\xc3\xa9");
    /* Invalid UTF-8 bytes are repaired to U+FFFD, never passed through. */
    CHECK_TEXT("<p>a\xff"
               "b</p>",
               "a\xef\xbf\xbd"
               "b");
    CHECK_TEXT("", "");
    /* A latin-1 page that says so is converted (0x93/0x94 are windows-1252 quotes). */
    CHECK_TEXT("<meta charset=\"ISO-8859-1\"><p>caf\xe9 \x93quoted\x94 \x80</p>",
               "caf\xc3\xa9 \xe2\x80\x9cquoted\xe2\x80\x9d \xe2\x82\xac");
    /* One that does not say so is repaired, not guessed. */
    CHECK_TEXT("<p>caf\xe9</p>", "caf\xef\xbf\xbd");
}

TEST(html_article_substack_page_metadata)
{
    size_t len;
    char *html =
        test_read_file(test_shared("data/exports/substack_pages/substack-hello-world.html"), &len);
    struct html_article a;
    struct tw_err err = TW_ERR_INIT;
    CHECK(html != NULL);
    CHECK_OK(html_extract_article(html, len, &a, &err), &err);
    tw_free(html);
    CHECK_EQ_STR(a.title, "Social title"); /* JSON-LD headline first */
    CHECK_EQ_STR(a.author, "Author Name");
    CHECK_EQ_STR(a.canonical_url, "https://example.substack.com/p/hello-world");
    CHECK_EQ_STR(a.subtitle, "Ah, a social preview!");
    CHECK_EQ_INT(a.published_at, 1730914670); /* 2024-11-06T17:37:50+00:00 */
    CHECK_EQ_STR(a.content, "Body content, not testing this");
    html_article_release(&a);
}

TEST(html_article_no_content_is_enoent)
{
    size_t len;
    char *html =
        test_read_file(test_shared("data/exports/substack_pages/substack-podcast.html"), &len);
    struct html_article a;
    struct tw_err err = TW_ERR_INIT;
    CHECK(html != NULL);
    CHECK_EQ_INT(html_extract_article(html, len, &a, &err), TW_ENOENT);
    tw_free(html);
    CHECK_EQ_STR(err.msg, "no article content found");
    CHECK(a.content == NULL);
}

TEST(html_article_prefers_scored_block)
{
    const char *page =
        "<html><head><title>Page T</title><meta property=\"article:published_time\" "
        "content=\"2020-02-29T10:00:00Z\"></head><body><div id=menu><a>Home</a> <a>About</a></div>"
        "<div class=content><p>This is the first real paragraph, with some commas, in it.</p>"
        "<p>And this is a second paragraph that is long enough to count for scoring.</p></div>"
        "<div class=promo><p>Short promo.</p></div></body></html>";
    struct html_article a;
    struct tw_err err = TW_ERR_INIT;
    CHECK_OK(html_extract_article(page, strlen(page), &a, &err), &err);
    CHECK_EQ_STR(a.title, "Page T");
    CHECK_EQ_INT(a.published_at, 1582970400);
    CHECK_EQ_STR(a.content, "This is the first real paragraph, with some commas, in it.\n\n"
                            "And this is a second paragraph that is long enough to count for "
                            "scoring.");
    CHECK(a.author == NULL);
    html_article_release(&a);
}

TEST(html_bot_challenge)
{
    const char *cf = "<html><head><title>Just a moment...</title></head><body>Checking</body>";
    const char *ok = "<html><head><title>Moments</title></head><body><p>fine</p></body>";
    CHECK(html_is_bot_challenge(cf, strlen(cf)));
    CHECK(!html_is_bot_challenge(ok, strlen(ok)));
}

TEST(html_deep_nesting_is_bounded)
{
    size_t n = 1500;
    char *html = tw_malloc(20000 * 5 + 16);
    char *out = NULL;
    struct tw_err err = TW_ERR_INIT;
    CHECK(html != NULL);
    for (size_t i = 0; i < n; i++)
        memcpy(html + i * 5, "<div>", 5);
    memcpy(html + n * 5, "deep", 5);
    /* Deep but plausible: rendered without recursion. */
    CHECK_OK(html_to_text(html, strlen(html), &out, &err), &err);
    CHECK_EQ_STR(out, "deep");
    tw_free(out);
    /* Hostile: refused before gumbo spends quadratic time on it. */
    n = 20000;
    for (size_t i = 0; i < n; i++)
        memcpy(html + i * 5, "<div>", 5);
    memcpy(html + n * 5, "deep", 5);
    CHECK_EQ_INT(html_to_text(html, strlen(html), &out, &err), TW_ELIMIT);
    CHECK_EQ_STR(err.msg, "html nests elements more than 2000 deep");
    tw_free(html);
    /* Thousands of unclosed <p> and <li> are ordinary HTML, not nesting. */
    {
        struct tw_buf b = TW_BUF_INIT;
        for (int i = 0; i < 5000; i++)
            tw_buf_puts(&b, "<li><p>x");
        tw_err_clear(&err);
        CHECK_OK(html_to_text(b.data, b.len, &out, &err), &err);
        tw_free(out);
        tw_buf_release(&b);
    }
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
