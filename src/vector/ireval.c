/* ireval.c - retrieval evaluation with NIST trec_eval's conventions (MAP, nDCG@10, P@10, MRR).
 *
 * Judgements and run entries are kept in flat arrays, sorted once before evaluation:
 *   qrels: (qid, docno, rel) by (qid, docno)      -> binary search per retrieved doc
 *   run:   (qid, docno, score) by (qid, score desc, docno desc)   (trec_eval's tie order) */
#include "vector/lexical.h"

#include "base/mem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define IR_ID_MAX 63
#define IR_RET_MAX 1000
#define IR_LINE_MAX 4096

struct ir_qrel {
    char qid[IR_ID_MAX + 1];
    char docno[IR_ID_MAX + 1];
    int rel;
};

struct ir_qrels {
    struct ir_qrel *v;
    size_t n, cap;
    bool sorted;
};

struct ir_ret {
    char qid[IR_ID_MAX + 1];
    char docno[IR_ID_MAX + 1];
    double score;
};

struct ir_run {
    struct ir_ret *v;
    size_t n, cap;
    bool sorted;
};

static int grow(void **v, size_t *cap, size_t n, size_t elem)
{
    void *p;
    size_t ncap;
    if (n < *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 256;
    p = tw_reallocarray(*v, ncap, elem);
    if (!p)
        return TW_ENOMEM;
    *v = p;
    *cap = ncap;
    return 0;
}

static int copy_id(char *dst, const char *src)
{
    size_t n = strlen(src);
    if (n == 0 || n > IR_ID_MAX)
        return TW_EFORMAT;
    memcpy(dst, src, n + 1);
    return 0;
}

struct ir_qrels *ir_qrels_new(void)
{
    return tw_calloc(1, sizeof(struct ir_qrels));
}

void ir_qrels_free(struct ir_qrels *q)
{
    if (!q)
        return;
    tw_free(q->v);
    tw_free(q);
}

int ir_qrels_add(struct ir_qrels *q, const char *qid, const char *docno, int rel)
{
    struct ir_qrel *e;
    if (grow((void **)&q->v, &q->cap, q->n, sizeof(*q->v)))
        return TW_ENOMEM;
    e = &q->v[q->n];
    if (copy_id(e->qid, qid) || copy_id(e->docno, docno))
        return TW_EFORMAT;
    e->rel = rel;
    q->n++;
    q->sorted = false;
    return 0;
}

struct ir_run *ir_run_new(void)
{
    return tw_calloc(1, sizeof(struct ir_run));
}

void ir_run_free(struct ir_run *r)
{
    if (!r)
        return;
    tw_free(r->v);
    tw_free(r);
}

int ir_run_add(struct ir_run *r, const char *qid, const char *docno, double score)
{
    struct ir_ret *e;
    if (grow((void **)&r->v, &r->cap, r->n, sizeof(*r->v)))
        return TW_ENOMEM;
    e = &r->v[r->n];
    if (copy_id(e->qid, qid) || copy_id(e->docno, docno) || !isfinite(score))
        return TW_EFORMAT;
    e->score = score;
    r->n++;
    r->sorted = false;
    return 0;
}

/* Splits a line into at most 'max' whitespace-separated fields (in place). */
static int split_fields(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    while (*p && n < max) {
        while (*p == ' ' || *p == '\t' || *p == '\r')
            p++;
        if (!*p)
            break;
        f[n++] = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\r')
            p++;
        if (*p)
            *p++ = '\0';
    }
    return n;
}

typedef int (*line_fn)(void *obj, char **f, int nf, long lineno, struct tw_err *err);

static int parse_lines(const char *text, size_t len, void *obj, line_fn fn, const char *what,
                       struct tw_err *err)
{
    char line[IR_LINE_MAX];
    size_t i = 0;
    long lineno = 0;
    while (i < len) {
        size_t e = i;
        char *f[8];
        int nf, rc;
        while (e < len && text[e] != '\n')
            e++;
        lineno++;
        if (e - i >= sizeof(line))
            return tw_errf(err, TW_EFORMAT, "%s line %ld: longer than %zu bytes", what, lineno,
                           sizeof(line) - 1);
        memcpy(line, text + i, e - i);
        line[e - i] = '\0';
        i = e + 1;
        nf = split_fields(line, f, 8);
        if (nf == 0)
            continue;
        if ((rc = fn(obj, f, nf, lineno, err)) != 0)
            return rc;
    }
    return 0;
}

static int qrels_line(void *obj, char **f, int nf, long lineno, struct tw_err *err)
{
    char *end;
    long rel;
    if (nf != 4)
        return tw_errf(err, TW_EFORMAT, "qrels line %ld: expected 4 fields, found %d", lineno, nf);
    rel = strtol(f[3], &end, 10);
    if (*end || rel < -1000 || rel > 1000)
        return tw_errf(err, TW_EFORMAT, "qrels line %ld: relevance '%s' is not an integer",
                       lineno, f[3]);
    if (ir_qrels_add(obj, f[0], f[2], (int)rel))
        return tw_errf(err, TW_EFORMAT, "qrels line %ld: bad query or document id", lineno);
    return 0;
}

static int run_line(void *obj, char **f, int nf, long lineno, struct tw_err *err)
{
    char *end;
    double score;
    if (nf != 6)
        return tw_errf(err, TW_EFORMAT, "run line %ld: expected 6 fields, found %d", lineno, nf);
    score = strtod(f[4], &end);
    if (*end)
        return tw_errf(err, TW_EFORMAT, "run line %ld: score '%s' is not a number", lineno, f[4]);
    if (ir_run_add(obj, f[0], f[2], score))
        return tw_errf(err, TW_EFORMAT, "run line %ld: bad query or document id", lineno);
    return 0;
}

int ir_qrels_parse(const char *text, size_t len, struct ir_qrels **out, struct tw_err *err)
{
    struct ir_qrels *q = ir_qrels_new();
    int rc;
    *out = NULL;
    if (!q)
        return tw_errf(err, TW_ENOMEM, "out of memory reading qrels");
    if ((rc = parse_lines(text, len, q, qrels_line, "qrels", err)) != 0) {
        ir_qrels_free(q);
        return rc;
    }
    *out = q;
    return 0;
}

int ir_run_parse(const char *text, size_t len, struct ir_run **out, struct tw_err *err)
{
    struct ir_run *r = ir_run_new();
    int rc;
    *out = NULL;
    if (!r)
        return tw_errf(err, TW_ENOMEM, "out of memory reading run");
    if ((rc = parse_lines(text, len, r, run_line, "run", err)) != 0) {
        ir_run_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

static int qrel_cmp(const void *a, const void *b)
{
    const struct ir_qrel *x = a, *y = b;
    int c = strcmp(x->qid, y->qid);
    return c ? c : strcmp(x->docno, y->docno);
}

static int ret_cmp(const void *a, const void *b)
{
    const struct ir_ret *x = a, *y = b;
    int c = strcmp(x->qid, y->qid);
    if (c)
        return c;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return strcmp(y->docno, x->docno);
}

static int gain_cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return y - x;
}

static const struct ir_qrel *qrel_find(const struct ir_qrels *q, const char *qid,
                                       const char *docno)
{
    struct ir_qrel key;
    if (copy_id(key.qid, qid) || copy_id(key.docno, docno))
        return NULL;
    return bsearch(&key, q->v, q->n, sizeof(*q->v), qrel_cmp);
}

/* The [first, last) range of qrels of one query. */
static void qrels_range(const struct ir_qrels *q, const char *qid, size_t *first, size_t *last)
{
    size_t lo = 0, hi = q->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(q->v[mid].qid, qid) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *first = lo;
    while (lo < q->n && !strcmp(q->v[lo].qid, qid))
        lo++;
    *last = lo;
}

int ir_evaluate(const struct ir_qrels *cq, const struct ir_run *cr, struct ir_measures *m)
{
    struct ir_qrels *q = (struct ir_qrels *)cq;
    struct ir_run *r = (struct ir_run *)cr;
    int gains[IR_RET_MAX];
    size_t i = 0;

    memset(m, 0, sizeof(*m));
    /* Sorting is an idempotent normalization of the containers, not a visible change. */
    if (!q->sorted) {
        qsort(q->v, q->n, sizeof(*q->v), qrel_cmp);
        q->sorted = true;
    }
    if (!r->sorted) {
        qsort(r->v, r->n, sizeof(*r->v), ret_cmp);
        r->sorted = true;
    }
    while (i < r->n) {
        size_t end = i, first, last, n_ret, n_gain = 0;
        long num_rel = 0, rel_ret = 0;
        double ap = 0, dcg = 0, idcg = 0, rr = 0;
        const char *qid = r->v[i].qid;

        while (end < r->n && !strcmp(r->v[end].qid, qid))
            end++;
        qrels_range(q, qid, &first, &last);
        if (first == last) {
            i = end;
            continue;
        }
        for (size_t k = first; k < last; k++) {
            if (q->v[k].rel >= 1) {
                num_rel++;
                if (n_gain < IR_RET_MAX)
                    gains[n_gain++] = q->v[k].rel;
            }
        }
        n_ret = end - i < IR_RET_MAX ? end - i : IR_RET_MAX;
        for (size_t k = 0; k < n_ret; k++) {
            const struct ir_qrel *j = qrel_find(q, qid, r->v[i + k].docno);
            int rel = j ? j->rel : 0;
            if (rel >= 1) {
                rel_ret++;
                ap += (double)rel_ret / (double)(k + 1);
                if (rr == 0)
                    rr = 1.0 / (double)(k + 1);
                if (k < 10) {
                    dcg += rel / log2((double)k + 2);
                    m->p_10 += 0.1;
                }
            }
        }
        qsort(gains, n_gain, sizeof(gains[0]), gain_cmp);
        for (size_t k = 0; k < n_gain && k < 10; k++)
            idcg += gains[k] / log2((double)k + 2);
        m->num_q++;
        m->map += num_rel ? ap / (double)num_rel : 0;
        m->ndcg_cut_10 += idcg > 0 ? dcg / idcg : 0;
        m->recip_rank += rr;
        m->num_ret += (long)n_ret;
        m->num_rel += num_rel;
        m->num_rel_ret += rel_ret;
        i = end;
    }
    if (m->num_q) {
        m->map /= m->num_q;
        m->ndcg_cut_10 /= m->num_q;
        m->p_10 /= m->num_q;
        m->recip_rank /= m->num_q;
    }
    return 0;
}
