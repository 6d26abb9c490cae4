/* test_lexical.c - analyzer, Porter stemmer, FTS5 tokenizer, trec_eval-compatible measures, and
 * retrieval quality of the lexical index on the Cranfield collection. */
#include "test.h"

#include "base/buf.h"
#include "base/mem.h"
#include "vector/ireval.h"
#include "vector/lexical.h"

#include <ctype.h>
#include <stdlib.h>

TEST(porter_matches_reference_vocabulary)
{
    /* Pairs from Porter's published sample vocabulary (voc.txt / output.txt). */
    static const char *const pairs[][2] = {
        {"caresses", "caress"},   {"ponies", "poni"},        {"ties", "ti"},
        {"caress", "caress"},     {"cats", "cat"},           {"feed", "feed"},
        {"agreed", "agre"},       {"plastered", "plaster"},  {"motoring", "motor"},
        {"sing", "sing"},         {"conflated", "conflat"},  {"troubled", "troubl"},
        {"sized", "size"},        {"hopping", "hop"},        {"tanned", "tan"},
        {"falling", "fall"},      {"hissing", "hiss"},       {"fizzed", "fizz"},
        {"failing", "fail"},      {"filing", "file"},        {"happy", "happi"},
        {"sky", "sky"},           {"relational", "relat"},   {"conditional", "condit"},
        {"rational", "ration"},   {"digitizer", "digit"},    {"operator", "oper"},
        {"feudalism", "feudal"},  {"decisiveness", "decis"}, {"hopefulness", "hope"},
        {"callousness", "callous"}, {"formaliti", "formal"}, {"sensitiviti", "sensit"},
        {"sensibiliti", "sensibl"}, {"triplicate", "triplic"}, {"formative", "form"},
        {"formalize", "formal"},  {"electrical", "electr"},  {"hopeful", "hope"},
        {"goodness", "good"},     {"revival", "reviv"},      {"allowance", "allow"},
        {"inference", "infer"},   {"airliner", "airlin"},    {"gyroscopic", "gyroscop"},
        {"adjustable", "adjust"}, {"defensible", "defens"},  {"irritant", "irrit"},
        {"replacement", "replac"}, {"adjustment", "adjust"}, {"dependent", "depend"},
        {"adoption", "adopt"},    {"communism", "commun"},   {"activate", "activ"},
        {"effective", "effect"},  {"bowdlerize", "bowdler"}, {"probate", "probat"},
        {"rate", "rate"},         {"cease", "ceas"},         {"controll", "control"},
        {"roll", "roll"},         {"generalizations", "gener"}, {"oscillators", "oscil"},
        {"aerodynamics", "aerodynam"}, {"slipstream", "slipstream"}, {"ion", "ion"},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        char w[64];
        size_t n = strlen(pairs[i][0]);
        memcpy(w, pairs[i][0], n + 1);
        lex_porter_stem(w, &n);
        w[n] = '\0';
        CHECK_MSG(!strcmp(w, pairs[i][1]), "stem(%s) = %s, want %s", pairs[i][0], w, pairs[i][1]);
    }
}

/* Measured 0.3927 and 0.3291 (docs/lexical.md); the floors sit just under. */
#define FLOOR_NDCG 0.385
#define FLOOR_MAP 0.320

struct collected {
    char terms[32][LEX_TERM_MAX + 1];
    size_t start[32], end[32];
    int n;
};

static int collect_term(void *ctx, const char *t, size_t n, size_t s, size_t e)
{
    struct collected *c = ctx;
    if (c->n < 32) {
        memcpy(c->terms[c->n], t, n);
        c->terms[c->n][n] = '\0';
        c->start[c->n] = s;
        c->end[c->n++] = e;
    }
    return 0;
}

TEST(analyzer_words_offsets_stopwords_unicode)
{
    struct collected c = {0};
    const char *text = "The Wing\xe2\x80\x99s slipstream: Effects of /destalling/ on Caf\xc3\xa9s, "
                       "don't \xce\x91\xce\x92\xce\x93 x2";
    lex_analyze(text, strlen(text), collect_term, &c);
    CHECK_EQ_INT(c.n, 8);
    CHECK_EQ_STR(c.terms[0], "wing"); /* possessive ’s removed */
    CHECK_EQ_INT(c.start[0], 4);
    CHECK_EQ_INT(c.end[0], 12);
    CHECK_EQ_STR(c.terms[1], "slipstream");
    CHECK_EQ_STR(c.terms[2], "effect");
    CHECK_EQ_STR(c.terms[3], "destal");
    CHECK_EQ_STR(c.terms[4], "caf\xc3\xa9s"); /* non-ASCII words are lowercased, not stemmed */
    CHECK_EQ_STR(c.terms[5], "dont");
    CHECK_EQ_STR(c.terms[6], "\xce\xb1\xce\xb2\xce\xb3");
    CHECK_EQ_STR(c.terms[7], "x2");
}

TEST(analyzer_survives_invalid_utf8)
{
    struct collected c = {0};
    const char text[] = "ab\xff\xfe" "cd \xc3";
    lex_analyze(text, sizeof(text) - 1, collect_term, &c);
    CHECK_EQ_INT(c.n, 2);
    CHECK_EQ_STR(c.terms[0], "ab");
    CHECK_EQ_STR(c.terms[1], "cd");
}

TEST(match_expression_quotes_and_dedupes)
{
    struct tw_buf b = TW_BUF_INIT;
    CHECK_EQ_INT(lex_build_match("what are the \"wings\" AND wing NEAR(x)", 38, &b), 0);
    /* "and" is a stop word whatever its case; "wing" stems like "wings" and is dropped. */
    CHECK_EQ_STR(b.data, "\"wings\" OR \"NEAR\" OR \"x\"");
    tw_buf_reset(&b);
    CHECK_EQ_INT(lex_build_match("what is the", 11, &b), TW_ENOENT);
    tw_buf_release(&b);
}

/* ---- Cranfield ---- */

struct cran_doc {
    const char *title, *body;
    size_t title_len, body_len;
};

/* Finds the text of field 'tag' (".T", ".W") of the record starting at p, up to the next field. */
static const char *cran_field(const char *rec, const char *rec_end, const char *tag, size_t *len)
{
    const char *p = rec;
    size_t tl = strlen(tag);
    while (p < rec_end) {
        if (!strncmp(p, tag, tl) && (p[tl] == '\n')) {
            const char *s = p + tl + 1, *e = s;
            while (e < rec_end && !(e[0] == '\n' && e[1] == '.' && e + 2 < rec_end &&
                                    strchr("TABWI", e[2]) && (e[3] == '\n' || e[3] == ' ')))
                e++;
            *len = (size_t)(e - s);
            return s;
        }
        p = memchr(p, '\n', (size_t)(rec_end - p));
        if (!p)
            break;
        p++;
    }
    *len = 0;
    return "";
}

/* Splits Cranfield-format text into records starting with ".I ". */
static int cran_records(const char *text, size_t len, const char **starts, int max)
{
    int n = 0;
    for (size_t i = 0; i + 3 < len && n < max; i++)
        if ((i == 0 || text[i - 1] == '\n') && !strncmp(text + i, ".I ", 3))
            starts[n++] = text + i;
    return n;
}

/* The baseline of the issue: every query word, quoted, OR-ed. */
static void plain_match(const char *q, size_t len, struct tw_buf *out)
{
    size_t i = 0;
    while (i < len) {
        size_t s;
        while (i < len && !isalnum((unsigned char)q[i]))
            i++;
        s = i;
        while (i < len && isalnum((unsigned char)q[i]))
            i++;
        if (i > s) {
            if (out->len)
                tw_buf_puts(out, " OR ");
            tw_buf_putc(out, '"');
            tw_buf_add(out, q + s, i - s);
            tw_buf_putc(out, '"');
        }
    }
}

/* Indexes Cranfield with the given FTS5 tokenizer, runs the 225 queries (ours: analyzer-built
 * MATCH and title weight 'tw'; plain: every word OR-ed, tw 1) and evaluates with graded gains
 * 5 - code (codes 1..4 relevant, -1 lines ignored). Returns 1 if everything could be read. */
static int run_cranfield(sqlite3 *db, const char *tokenize, int ours, double tw,
                         struct ireval_result *m)
{
    size_t nd, nqt, nrel;
    char *docs = test_read_file(test_shared("data/ir/cranfield/cran.all.1400"), &nd);
    char *qtext = test_read_file(test_shared("data/ir/cranfield/cran.qry"), &nqt);
    char *rels = test_read_file(test_shared("data/ir/cranfield/cranqrel"), &nrel);
    static const char *dstart[1500], *qstart[300];
    struct ireval_qrels *q = NULL;
    struct ireval_run *r = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct tw_buf sql = TW_BUF_INIT, match = TW_BUF_INIT;
    sqlite3_stmt *ins = NULL, *sel = NULL;
    int n_docs, n_q, ok = 0;

    if (!docs || !qtext || !rels || ireval_qrels_new(&q, &err) || ireval_run_new(&r, &err))
        goto out;
    tw_buf_printf(&sql, "CREATE VIRTUAL TABLE cran USING fts5(title, body, tokenize='%s');",
                  tokenize);
    if (sqlite3_exec(db, sql.data, NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    n_docs = cran_records(docs, nd, dstart, 1500);
    n_q = cran_records(qtext, nqt, qstart, 300);
    if (n_docs != 1400 || n_q != 225)
        goto out;
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    sqlite3_prepare_v2(db, "INSERT INTO cran(rowid, title, body) VALUES (?, ?, ?)", -1, &ins, NULL);
    for (int i = 0; i < n_docs; i++) {
        const char *end = i + 1 < n_docs ? dstart[i + 1] : docs + nd;
        size_t tl, wl;
        const char *t = cran_field(dstart[i], end, ".T", &tl);
        const char *w = cran_field(dstart[i], end, ".W", &wl);
        sqlite3_bind_int(ins, 1, (int)strtol(dstart[i] + 3, NULL, 10));
        sqlite3_bind_text(ins, 2, t, (int)tl, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, w, (int)wl, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            goto out;
        sqlite3_reset(ins);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    tw_buf_reset(&sql);
    if (ours)
        tw_buf_printf(&sql, "SELECT rowid, twin_bm25f(cran, %g, %g, %g, 1.0) AS s FROM cran "
                            "WHERE cran MATCH ? ORDER BY s DESC LIMIT 1000", LEX_BM25F_K1, LEX_BM25F_B, tw);
    else
        tw_buf_printf(&sql, "SELECT rowid, -bm25(cran) FROM cran WHERE cran MATCH ? "
                            "ORDER BY bm25(cran) LIMIT 1000");
    if (sqlite3_prepare_v2(db, sql.data, -1, &sel, NULL) != SQLITE_OK)
        goto out;
    for (int i = 0; i < n_q; i++) {
        const char *end = i + 1 < n_q ? qstart[i + 1] : qtext + nqt;
        size_t wl;
        const char *w = cran_field(qstart[i], end, ".W", &wl);
        char qid[16];
        snprintf(qid, sizeof(qid), "%d", i + 1); /* cranqrel numbers queries in file order */
        tw_buf_reset(&match);
        if (ours)
            lex_build_match(w, wl, &match);
        else
            plain_match(w, wl, &match);
        if (match.len == 0)
            continue;
        sqlite3_bind_text(sel, 1, match.data, (int)match.len, SQLITE_STATIC);
        while (sqlite3_step(sel) == SQLITE_ROW) {
            char docno[16];
            snprintf(docno, sizeof(docno), "%d", sqlite3_column_int(sel, 0));
            ireval_run_add(r, qid, docno, sqlite3_column_double(sel, 1), &err);
        }
        sqlite3_reset(sel);
    }
    /* cranqrel: "query doc code", code 1 (complete answer) .. 4 (minimum interest), -1 none. */
    for (size_t i = 0; i < nrel;) {
        char line[64], qs[16], ds[16];
        int code;
        size_t e = i;
        while (e < nrel && rels[e] != '\n')
            e++;
        if (e - i < sizeof(line)) {
            memcpy(line, rels + i, e - i);
            line[e - i] = '\0';
            if (sscanf(line, "%15s %15s %d", qs, ds, &code) == 3 && code >= 1 && code <= 4)
                ireval_qrels_add(q, qs, ds, 5 - code, &err);
        }
        i = e + 1;
    }
    {
        size_t n_eval = 0;
        ok = ireval_evaluate(q, r, 1, NULL, &n_eval, m, &err) == 0;
    }
out:
    sqlite3_finalize(ins);
    sqlite3_finalize(sel);
    tw_buf_release(&sql);
    tw_buf_release(&match);
    ireval_qrels_free(q);
    ireval_run_free(r);
    tw_free(docs);
    tw_free(qtext);
    tw_free(rels);
    return ok;
}

static sqlite3 *open_mem_db(void)
{
    sqlite3 *db = NULL;
    struct tw_err err = TW_ERR_INIT;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK || lex_register(db, &err) != 0) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

TEST(cranfield_lexical_beats_plain_fts5)
{
    struct ireval_result ours, plain;
    sqlite3 *db1 = open_mem_db(), *db2 = open_mem_db();
    int ok1, ok2;
    CHECK(db1 && db2);
    ok1 = run_cranfield(db1, "twin", 1, LEX_TITLE_WEIGHT, &ours);
    ok2 = run_cranfield(db2, "porter", 0, 1.0, &plain);
    sqlite3_close(db1);
    sqlite3_close(db2);
    CHECK(ok1 && ok2);
    printf("  cranfield (graded 5-code, %d queries): twin lexical nDCG@10 %.4f MAP %.4f P@10 "
           "%.4f MRR %.4f | plain fts5 porter nDCG@10 %.4f MAP %.4f\n",
           (int)ours.num_q, ours.ndcg_cut[1], ours.map, ours.p[1], ours.recip_rank,
           plain.ndcg_cut[1], plain.map);
    CHECK_EQ_INT(ours.num_q, 225);
    /* The figures for plain FTS5 on this machine: nDCG@10 0.362, MAP 0.295. */
    CHECK_NEAR(plain.ndcg_cut[1], 0.362, 0.005);
    CHECK_NEAR(plain.map, 0.295, 0.01);
    /* Floors from our measurement (see docs/lexical.md), a little under it. */
    CHECK(ours.ndcg_cut[1] >= FLOOR_NDCG);
    CHECK(ours.map >= FLOOR_MAP);
    CHECK(ours.ndcg_cut[1] > plain.ndcg_cut[1] && ours.map > plain.map);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
