/* test_feed.c - RSS/Atom parsing, on the real Medium feed fixture and on edge cases. */
#include "test.h"

#include "base/mem.h"
#include "collect/collect.h"

TEST(feed_medium_fixture)
{
    size_t len;
    char *xml = test_read_file(test_shared("data/exports/rss/medium_feed.jekyll-import.xml"), &len);
    struct feed f;
    struct tw_err err = TW_ERR_INIT;
    struct feed_item *a, *b;
    CHECK(xml != NULL);
    CHECK(feed_is_feed(xml, len));
    CHECK_OK(feed_parse(xml, len, &f, &err), &err);
    CHECK_EQ_INT(f.is_atom, 0);
    CHECK_EQ_STR(f.title, "Stories by John Doe on Medium");
    CHECK_EQ_STR(f.link, "https://medium.com/@John.Doe?source=rss-621a1d970ada------2");
    CHECK_EQ_INT(f.n_items, 2);
    a = &f.items[0];
    b = &f.items[1];
    CHECK_EQ_STR(a->title, "This is a Dummy Post");
    CHECK_EQ_STR(a->link, "https://example.com/blog/this-is-a-dummy-post-50703370aea7?source=rss-"
                          "621a1d970ada------2");
    CHECK_EQ_STR(a->guid, "https://medium.com/p/50703370aea7");
    CHECK_EQ_STR(a->author, "John Doe");
    CHECK_EQ_INT(a->n_categories, 5);
    CHECK_EQ_STR(a->categories[0], "java");
    CHECK_EQ_STR(a->categories[4], "docker");
    CHECK_EQ_INT(a->published_at, 1669104106); /* Tue, 22 Nov 2022 08:01:46 GMT */
    CHECK_EQ_INT(a->updated_at, 1669215117);   /* 2022-11-23T14:51:57.412Z */
    /* The malformed first item ("<<![CDATA[") still yields the HTML, without the stray '<'. */
    CHECK(a->content_html != NULL);
    CHECK_MSG(!strncmp(a->content_html, "<figure><img", 12), "%s", a->content_html);
    CHECK(strstr(a->content_html, "<p>The quick brown fox jumps over the lazy dog</p>") != NULL);
    CHECK(a->summary_html == NULL);
    CHECK_EQ_STR(b->title, "How I cross post Medium articles to GitHub Pages");
    CHECK_EQ_INT(b->n_categories, 5);
    CHECK_EQ_STR(b->categories[1], "jekyll");
    CHECK_EQ_INT(b->published_at, 1668116391); /* Thu, 10 Nov 2022 21:39:51 GMT */
    CHECK(!strncmp(b->content_html, "<figure>", 8));
    feed_release(&f);
    tw_free(xml);
}

static const char atom[] =
    "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
    "<!-- generated -->\n"
    "<feed xmlns=\"http://www.w3.org/2005/Atom\">\n"
    "  <title type=\"text\">Ada&apos;s &amp; notes</title>\n"
    "  <link href=\"https://ada.example/feed.xml\" rel=\"self\"/>\n"
    "  <link href=\"https://ada.example/\" rel=\"alternate\"/>\n"
    "  <entry>\n"
    "    <title>On engines &#8212; part 1</title>\n"
    "    <link rel=\"alternate\" type=\"text/html\" href=\"https://ada.example/p/1?a=1&amp;b=2\"/>\n"
    "    <link rel=\"replies\" href=\"https://ada.example/p/1#comments\"/>\n"
    "    <id>tag:ada.example,2024:1</id>\n"
    "    <published>2024-03-01T10:00:00+02:00</published>\n"
    "    <updated>2024-03-02T00:00:00Z</updated>\n"
    "    <author><email>ada@example</email><name>Ada Lovelace</name></author>\n"
    "    <category term=\"math\"/><category term=\"engines\"/>\n"
    "    <summary type=\"text\">1 &lt; 2</summary>\n"
    "    <content type=\"xhtml\"><div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Hello "
    "<b>world</b> &amp; more</p></div></content>\n"
    "  </entry>\n"
    "  <entry><title type=\"html\">&lt;i&gt;Second&lt;/i&gt;</title>"
    "<content type=\"html\">&lt;p&gt;Two&lt;/p&gt;</content>"
    "<updated>2024-04-01</updated></entry>\n"
    "</feed>\n";

TEST(feed_atom_entries)
{
    struct feed f;
    struct tw_err err = TW_ERR_INIT;
    CHECK(feed_is_feed(atom, sizeof(atom) - 1));
    CHECK_OK(feed_parse(atom, sizeof(atom) - 1, &f, &err), &err);
    CHECK_EQ_INT(f.is_atom, 1);
    CHECK_EQ_STR(f.title, "Ada's & notes");
    CHECK_EQ_STR(f.link, "https://ada.example/");
    CHECK_EQ_INT(f.n_items, 2);
    CHECK_EQ_STR(f.items[0].title, "On engines \xE2\x80\x94 part 1");
    CHECK_EQ_STR(f.items[0].link, "https://ada.example/p/1?a=1&b=2");
    CHECK_EQ_STR(f.items[0].guid, "tag:ada.example,2024:1");
    CHECK_EQ_INT(f.items[0].published_at, 1709280000); /* 2024-03-01T08:00:00Z */
    CHECK_EQ_INT(f.items[0].updated_at, 1709337600);
    CHECK_EQ_STR(f.items[0].author, "Ada Lovelace");
    CHECK_EQ_INT(f.items[0].n_categories, 2);
    CHECK_EQ_STR(f.items[0].categories[1], "engines");
    CHECK_EQ_STR(f.items[0].summary_html, "1 &lt; 2");
    CHECK_EQ_STR(f.items[0].content_html,
                 "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Hello <b>world</b> &amp; "
                 "more</p></div>");
    CHECK_EQ_STR(f.items[1].title, "<i>Second</i>");
    CHECK_EQ_STR(f.items[1].content_html, "<p>Two</p>");
    CHECK_EQ_INT(f.items[1].published_at, INT64_MIN);
    CHECK_EQ_INT(f.items[1].updated_at, 1711929600);
    feed_release(&f);
}

TEST(feed_rss_description_and_leniency)
{
    static const char rss[] =
        "<rss version=\"2.0\"><channel><title>T</title><link>https://s.example/</link>"
        "<item><title>A &nbsp;b &bogus; &#0; &#xZZ;</title><link> https://s.example/a </link>"
        "<description>&lt;p&gt;Para&lt;/p&gt;</description><author>a@x (Al)</author>"
        "<pubDate>Mon, 01 Jan 24 00:00:00 +0100</pubDate><unknown><deep>x</deep></unknown>"
        "<guid>g1</guid></item>"
        "<item><title>unclosed <b>child</title><dc:date>2020-01-02T03:04:05Z</dc:date>"
        "<content:encoded><![CDATA[<p>cdata ]] inside</p>]]></content:encoded></item>"
        "<item><title>cut off";
    struct feed f;
    struct tw_err err = TW_ERR_INIT;
    CHECK_OK(feed_parse(rss, sizeof(rss) - 1, &f, &err), &err);
    CHECK_EQ_STR(f.title, "T");
    CHECK_EQ_STR(f.link, "https://s.example/");
    CHECK_EQ_INT(f.n_items, 3);
    CHECK_EQ_STR(f.items[0].title, "A \xC2\xA0" "b &bogus; \xEF\xBF\xBD &#xZZ;");
    CHECK_EQ_STR(f.items[0].link, "https://s.example/a");
    CHECK_EQ_STR(f.items[0].summary_html, "<p>Para</p>");
    CHECK_EQ_STR(f.items[0].author, "a@x (Al)");
    CHECK_EQ_STR(f.items[0].guid, "g1");
    CHECK_EQ_INT(f.items[0].published_at, 1704063600); /* 2024-01-01T00:00:00+01:00 */
    CHECK_EQ_STR(f.items[1].title, "unclosed child");
    CHECK_EQ_INT(f.items[1].published_at, 1577934245);
    CHECK_EQ_STR(f.items[1].content_html, "<p>cdata ]] inside</p>");
    CHECK_EQ_STR(f.items[2].title, "cut off");
    feed_release(&f);
}

TEST(feed_rejects_non_feeds)
{
    struct feed f;
    struct tw_err err = TW_ERR_INIT;
    static const char html[] = "<!DOCTYPE html><html><body><item>x</item></body></html>";
    CHECK(!feed_is_feed(html, sizeof(html) - 1));
    CHECK_EQ_INT(feed_parse(html, sizeof(html) - 1, &f, &err), TW_EFORMAT);
    CHECK_MSG(strstr(err.msg, "not an RSS or Atom feed") != NULL, "%s", err.msg);
    feed_release(&f);
    tw_err_clear(&err);
    CHECK_EQ_INT(feed_parse("", 0, &f, &err), TW_EFORMAT);
    feed_release(&f);
    CHECK(!feed_is_feed("<", 1));
}

TEST(feed_dates)
{
    CHECK_EQ_INT(feed_parse_date("Tue, 22 Nov 2022 08:01:46 GMT"), 1669104106);
    CHECK_EQ_INT(feed_parse_date("22 Nov 2022 08:01 EST"), 1669122060);
    CHECK_EQ_INT(feed_parse_date("2022-11-23T14:51:57.412Z"), 1669215117);
    CHECK_EQ_INT(feed_parse_date("2022-11-23T14:51:57-05:30"), 1669234917);
    CHECK_EQ_INT(feed_parse_date("1970-01-01"), 0);
    CHECK_EQ_INT(feed_parse_date("yesterday"), INT64_MIN);
    CHECK_EQ_INT(feed_parse_date("2022-13-01"), INT64_MIN);
    CHECK_EQ_INT(feed_parse_date(""), INT64_MIN);
    CHECK_EQ_INT(feed_parse_date(NULL), INT64_MIN);
}

TEST(feed_survives_allocation_failures)
{
    size_t len;
    char *xml = test_read_file(test_shared("data/exports/rss/medium_feed.jekyll-import.xml"), &len);
    CHECK(xml != NULL);
    for (long n = 0; n < 200; n++) {
        struct feed f;
        struct tw_err err = TW_ERR_INIT;
        int rc;
        tw_mem_fail_after(n);
        rc = feed_parse(xml, len, &f, &err);
        tw_mem_fail_after(-1);
        CHECK(rc == 0 || rc == TW_ENOMEM);
        feed_release(&f);
        if (rc == 0)
            break;
    }
    tw_free(xml);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
