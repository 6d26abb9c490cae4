/* test_collect_csv.c - the CSV reader and the LinkedIn Shares.csv source. */
#include "test.h"

#include "collect/collect.h"
#include "collect_sink.h"

#include <stdio.h>
#include <sys/stat.h>

static struct cs c;

TEST(csv_rfc4180_records)
{
    const char *s = "\xef\xbb\xbf"
                    "a,b,c\r\n1,\"x, \"\"y\"\"\",\"multi\nline\"\n,,\nlast";
    struct csv_reader r;
    struct tw_err err = TW_ERR_INIT;
    csv_init(&r, s, strlen(s));
    CHECK_EQ_INT(csv_next(&r, &err), 1);
    CHECK_EQ_INT(r.n_fields, 3);
    CHECK_EQ_STR(r.field[0], "a");
    CHECK_EQ_INT(csv_column(&r, "C"), 2);
    CHECK_EQ_INT(csv_next(&r, &err), 1);
    CHECK_EQ_INT(r.n_fields, 3);
    CHECK_EQ_STR(r.field[1], "x, \"y\"");
    CHECK_EQ_INT(r.field_len[1], 6);
    CHECK_EQ_STR(r.field[2], "multi\nline");
    CHECK_EQ_INT(r.line, 2);
    CHECK_EQ_INT(csv_next(&r, &err), 1);
    CHECK_EQ_INT(r.n_fields, 3);
    CHECK_EQ_STR(r.field[2], "");
    CHECK_EQ_INT(r.line, 4); /* the quoted line break counted */
    CHECK_EQ_INT(csv_next(&r, &err), 1);
    CHECK_EQ_STR(r.field[0], "last");
    CHECK_EQ_INT(csv_next(&r, &err), 0);
    csv_release(&r);
}

TEST(csv_errors_name_the_line_and_resume)
{
    const char *s = "a,b\nx\"y,2\n\"ok\",3\n\"z\"junk,4\n\"never closed,5\n";
    struct csv_reader r;
    struct tw_err err = TW_ERR_INIT;
    csv_init(&r, s, strlen(s));
    CHECK_EQ_INT(csv_next(&r, &err), 1);
    CHECK_EQ_INT(csv_next(&r, &err), TW_EFORMAT);
    CHECK_EQ_STR(err.msg, "csv line 2: quote inside unquoted field 1 (quote the field)");
    tw_err_clear(&err);
    CHECK_EQ_INT(csv_next(&r, &err), 1);
    CHECK_EQ_STR(r.field[0], "ok");
    CHECK_EQ_INT(csv_next(&r, &err), TW_EFORMAT);
    CHECK_EQ_STR(err.msg, "csv line 4: text after the closing quote of field 1");
    tw_err_clear(&err);
    CHECK_EQ_INT(csv_next(&r, &err), TW_EFORMAT);
    CHECK_EQ_STR(err.msg, "csv line 5: quoted field never closed (missing '\"')");
    CHECK_EQ_INT(csv_next(&r, &err), 0);
    csv_release(&r);
}

TEST(csv_field_limit)
{
    char s[1200];
    struct csv_reader r;
    struct tw_err err = TW_ERR_INIT;
    size_t n = 0;
    for (int i = 0; i < CSV_FIELDS_MAX + 5; i++)
        s[n++] = ',';
    memcpy(s + n, "\nok\n", 5);
    csv_init(&r, s, strlen(s));
    CHECK_EQ_INT(csv_next(&r, &err), TW_ELIMIT);
    CHECK(strstr(err.msg, "more than 256 fields") != NULL);
    CHECK_EQ_INT(csv_next(&r, &err), 1);
    CHECK_EQ_STR(r.field[0], "ok");
    csv_release(&r);
}

/* A Shares.csv as LinkedIn writes it: the multi-line post's line breaks come out of the CSV
 * decoder as quote-newline-quote, so in the raw file they read ""<LF>"" and a blank line
 * ""<LF>"""" . */
static const char shares_csv[] =
    "Date,ShareLink,ShareCommentary,SharedUrl,MediaUrl,Visibility\n"
    "2023-05-04 14:03:21,https://www.linkedin.com/feed/update/urn:li:share:7060000000000000001/,"
    "\"Excited to share our \xf0\x9d\x97\x95\xf0\x9d\x97\xbc\xf0\x9d\x97\xb9\xf0\x9d\x97\xb1 "
    "news, finally!\"\"\n\"\"\"\"\n\"\"Second paragraph with \"\"quotes\"\".\"\"\n\"\""
    "#c #systems\",,,MEMBER_NETWORK\n"
    "2023-06-01 08:00:00,https://www.linkedin.com/feed/update/urn:li:share:7060000000000000002/,"
    ",https://example.com/article,,MEMBER_NETWORK\n"
    "2023-06-02 09:30:00,https://www.linkedin.com/feed/update/urn:li:share:7060000000000000003/,"
    "\"One line, with a \"\"quote\"\" inside\",,,\n"
    "2023-06-02 09:40:00,https://www.linkedin.com/feed/update/urn:li:share:7060000000000000004/,"
    "bad \"quote\" here,,,\n"
    "2023-06-03 10:00:00,,\"No link\",,,\n"
    "2023-06-04 11:00:00,https://www.linkedin.com/feed/update/urn:li:share:7060000000000000005/,"
    "\"Plain single line\",,,MEMBER_NETWORK\n";

TEST(linkedin_shares_csv)
{
    char path[1024];
    struct src_sink sink = cs_sink(&c);
    struct src_opts o = {.author_name = "Ada Lovelace"};
    struct tw_err err = TW_ERR_INIT;
    const struct cs_doc *d;
    snprintf(path, sizeof(path), "%s/Shares.csv", test_tmpdir());
    CHECK(test_write_file(path, shares_csv, strlen(shares_csv)) == 0);
    CHECK_OK(src_linkedin_import(path, &o, &sink, &err), &err);
    CHECK_EQ_INT(c.n, 3);
    d = cs_find(&c, "urn:li:share:7060000000000000003/");
    CHECK(d != NULL);
    CHECK_EQ_STR(d->content, "One line, with a \"quote\" inside");
    d = cs_find(&c, "urn:li:share:7060000000000000001/");
    CHECK(d != NULL);
    CHECK_EQ_STR(d->kind, "post");
    CHECK_EQ_STR(d->platform, "linkedin");
    CHECK_EQ_INT(d->published_at, 1683209001);
    /* Line breaks restored, quotes LinkedIn added gone, the post's own quotes and the
     * mathematical bold letters kept. */
    CHECK_EQ_STR(
        d->content,
        "Excited to share our \xf0\x9d\x97\x95\xf0\x9d\x97\xbc\xf0\x9d\x97\xb9"
        "\xf0\x9d\x97\xb1 news, finally!\n\nSecond paragraph with \"quotes\".\n#c #systems");
    CHECK_EQ_STR(d->title, "Excited to share our \xf0\x9d\x97\x95\xf0\x9d\x97\xbc\xf0\x9d\x97\xb9"
                           "\xf0\x9d\x97\xb1 news, finally!");
    d = cs_find(&c, "urn:li:share:7060000000000000005/");
    CHECK(d != NULL);
    CHECK_EQ_STR(d->content, "Plain single line");
    /* One row has a quote inside an unquoted field, one has no link; the reshare without text
     * is not an error. */
    CHECK_EQ_INT(c.n_fail, 2);
    CHECK(strstr(c.fail_msg[0], "quote inside unquoted field 3") != NULL);
    CHECK(strstr(c.fail_msg[1], "no ShareLink") != NULL);
    CHECK(strstr(c.fail_item[1], "Shares.csv") != NULL);
    cs_release(&c);
}

TEST(linkedin_export_folder_and_zip)
{
    char dir[1024], cmd[1100], zip[1100];
    struct src_sink sink = cs_sink(&c);
    struct tw_err err = TW_ERR_INIT;
    snprintf(dir, sizeof(dir), "%s/li-export", test_tmpdir());
    CHECK(mkdir(dir, 0777) == 0);
    snprintf(cmd, sizeof(cmd), "%s/Shares.csv", dir);
    CHECK(test_write_file(cmd, shares_csv, strlen(shares_csv)) == 0);
    snprintf(cmd, sizeof(cmd), "%s/Profile.csv", dir);
    CHECK(test_write_file(cmd, "First Name\nAda\n", 15) == 0);
    CHECK_OK(src_linkedin_import(dir, NULL, &sink, &err), &err);
    CHECK_EQ_INT(c.n, 3);
    CHECK_EQ_INT(src_detect(dir), SRC_KIND_LINKEDIN);
    cs_release(&c);

    snprintf(zip, sizeof(zip), "%s/li.zip", test_tmpdir());
    {
        const char *names[] = {"Basic_LinkedInDataExport/Profile.csv",
                               "Basic_LinkedInDataExport/Shares.csv"};
        const char *datas[] = {"First Name\nAda\n", shares_csv};
        CHECK(cs_write_zip(zip, names, datas, 2) == 0);
    }
    CHECK_EQ_INT(src_detect(zip), SRC_KIND_LINKEDIN);
    sink = cs_sink(&c);
    CHECK_OK(src_linkedin_import(zip, NULL, &sink, &err), &err);
    CHECK_EQ_INT(c.n, 3);
    cs_release(&c);

    /* A folder without Shares.csv is an error for this source. */
    sink = cs_sink(&c);
    CHECK_EQ_INT(src_linkedin_import(test_shared("data/exports/medium_export"), NULL, &sink, &err),
                 TW_ENOENT);
    CHECK(strstr(err.msg, "no Shares.csv") != NULL);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
