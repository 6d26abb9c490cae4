/* ireval.c - trec_eval-compatible retrieval measures (see ireval.h). */
#include "vector/ireval.h"

#include "base/arena.h"
#include "base/mem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const int ireval_cuts[IREVAL_N_CUTS] = {5, 10, 15, 20, 30, 100, 200, 500, 1000};
const int ireval_success_cuts[IREVAL_N_SUCCESS] = {1, 5, 10};

#define IREVAL_LINES_MAX 50000000 // judgments or run lines per object

struct ireval_judgment {
    const char *qid;
    const char *docno;
    int rel;
};

struct ireval_qrels {
    struct tw_arena strings;
    struct ireval_judgment *j;
    size_t n, cap;
    int sorted;
};

struct ireval_entry {
    const char *qid;
    const char *docno;
    double score;
};

struct ireval_run {
    struct tw_arena strings;
    struct ireval_entry *e;
    size_t n, cap;
};

/* ---- building ---- */

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
    size_t ncap;
    void *np;
    if (n < *cap)
        return 0;
    if (n >= IREVAL_LINES_MAX)
        return TW_ELIMIT;
    ncap = *cap ? *cap * 2 : 256;
    np = tw_reallocarray(*p, ncap, size);
    if (!np)
        return TW_ENOMEM;
    *p = np;
    *cap = ncap;
    return 0;
}

static int check_ids(const char *qid, const char *docno, struct tw_err *err)
{
    size_t ql = strlen(qid), dl = strlen(docno);
    if (!ql || ql >= IREVAL_QID_MAX)
        return tw_errf(err, TW_EINVAL, "query id '%.80s' is empty or longer than %d bytes", qid,
                       IREVAL_QID_MAX - 1);
    if (!dl || dl >= IREVAL_DOCNO_MAX)
        return tw_errf(err, TW_EINVAL, "document id '%.80s' is empty or longer than %d bytes",
                       docno, IREVAL_DOCNO_MAX - 1);
    return 0;
}

int ireval_qrels_new(struct ireval_qrels **out, struct tw_err *err)
{
    *out = tw_calloc(1, sizeof(**out));
    if (!*out)
        return tw_errf(err, TW_ENOMEM, "out of memory creating qrels");
    tw_arena_init(&(*out)->strings, 64 * 1024);
    return 0;
}

void ireval_qrels_free(struct ireval_qrels *q)
{
    if (!q)
        return;
    tw_arena_release(&q->strings);
    tw_free(q->j);
    tw_free(q);
}

int ireval_qrels_add(struct ireval_qrels *q, const char *qid, const char *docno, int rel,
                     struct tw_err *err)
{
    struct ireval_judgment *j;
    int rc = check_ids(qid, docno, err);
    if (rc < 0)
        return rc;
    rc = grow((void **)&q->j, &q->cap, q->n, sizeof(*q->j));
    if (rc < 0)
        return tw_errf(err, rc, "cannot add judgment %zu: %s", q->n, tw_strerror(rc));
    j = &q->j[q->n];
    j->qid = tw_arena_strdup(&q->strings, qid);
    j->docno = tw_arena_strdup(&q->strings, docno);
    if (!j->qid || !j->docno)
        return tw_errf(err, TW_ENOMEM, "out of memory adding a judgment");
    j->rel = rel;
    q->n++;
    q->sorted = 0;
    return 0;
}

int ireval_run_new(struct ireval_run **out, struct tw_err *err)
{
    *out = tw_calloc(1, sizeof(**out));
    if (!*out)
        return tw_errf(err, TW_ENOMEM, "out of memory creating a run");
    tw_arena_init(&(*out)->strings, 64 * 1024);
    return 0;
}

void ireval_run_free(struct ireval_run *r)
{
    if (!r)
        return;
    tw_arena_release(&r->strings);
    tw_free(r->e);
    tw_free(r);
}

int ireval_run_add(struct ireval_run *r, const char *qid, const char *docno, double score,
                   struct tw_err *err)
{
    struct ireval_entry *e;
    int rc = check_ids(qid, docno, err);
    if (rc < 0)
        return rc;
    if (!isfinite(score))
        return tw_errf(err, TW_EINVAL, "score of '%s' for query '%s' is not finite", docno, qid);
    rc = grow((void **)&r->e, &r->cap, r->n, sizeof(*r->e));
    if (rc < 0)
        return tw_errf(err, rc, "cannot add run line %zu: %s", r->n, tw_strerror(rc));
    e = &r->e[r->n];
    e->qid = tw_arena_strdup(&r->strings, qid);
    e->docno = tw_arena_strdup(&r->strings, docno);
    if (!e->qid || !e->docno)
        return tw_errf(err, TW_ENOMEM, "out of memory adding a run line");
    e->score = score;
    r->n++;
    return 0;
}

/* ---- parsing ---- */

/* Splits the line [p, end) into at most 'max' whitespace-separated fields, NUL-terminated in
 * 'buf'. Returns the field count, or -1 if a field is too long for buf. */
static int split(const char *p, const char *end, char *buf, size_t buf_len, char **f, int max)
{
    int n = 0;
    size_t used = 0;
    while (p < end) {
        const char *s;
        size_t l;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
            p++;
        if (p >= end)
            break;
        s = p;
        while (p < end && *p != ' ' && *p != '\t' && *p != '\r')
            p++;
        l = (size_t)(p - s);
        if (n == max)
            return max + 1;
        if (used + l + 1 > buf_len)
            return -1;
        memcpy(buf + used, s, l);
        buf[used + l] = 0;
        f[n++] = buf + used;
        used += l + 1;
    }
    return n;
}

typedef int (*line_fn)(void *obj, char **f, int nf, struct tw_err *err);

static int parse_lines(void *obj, const char *text, size_t len, const char *name, int want,
                       const char *what, line_fn fn, struct tw_err *err)
{
    const char *p = text, *end = text + len;
    char buf[1024], *f[8];
    long line = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        int nf, rc;
        line++;
        nf = split(p, le, buf, sizeof(buf), f, 7);
        p = nl ? nl + 1 : end;
        if (nf == 0)
            continue;
        if (nf != want)
            return tw_errf(err, TW_EFORMAT, "'%s' line %ld: %d fields, a %s line has %d", name,
                           line, nf < 0 ? 0 : nf, what, want);
        rc = fn(obj, f, nf, err);
        if (rc < 0)
            return tw_err_ctx(err, "'%s' line %ld", name, line);
    }
    return 0;
}

static int qrels_line(void *obj, char **f, int nf, struct tw_err *err)
{
    char *e;
    long rel = strtol(f[3], &e, 10);
    (void)nf;
    if (*e || e == f[3] || rel < -1000000 || rel > 1000000)
        return tw_errf(err, TW_EFORMAT, "relevance '%.40s' is not an integer", f[3]);
    return ireval_qrels_add(obj, f[0], f[2], (int)rel, err);
}

static int run_line(void *obj, char **f, int nf, struct tw_err *err)
{
    char *e;
    double score = strtod(f[4], &e);
    (void)nf;
    if (*e || e == f[4])
        return tw_errf(err, TW_EFORMAT, "score '%.40s' is not a number", f[4]);
    return ireval_run_add(obj, f[0], f[2], score, err);
}

int ireval_qrels_parse(struct ireval_qrels *q, const char *text, size_t len, const char *name,
                       struct tw_err *err)
{
    return parse_lines(q, text, len, name, 4, "qrels", qrels_line, err);
}

int ireval_run_parse(struct ireval_run *r, const char *text, size_t len, const char *name,
                     struct tw_err *err)
{
    return parse_lines(r, text, len, name, 6, "run", run_line, err);
}

/* ---- evaluation ---- */

static int judgment_cmp(const void *a, const void *b)
{
    const struct ireval_judgment *x = a, *y = b;
    int c = strcmp(x->qid, y->qid);
    return c ? c : strcmp(x->docno, y->docno);
}

/* trec_eval's ranking: query, then score descending, then docno descending. */
static int entry_cmp(const void *a, const void *b)
{
    const struct ireval_entry *x = a, *y = b;
    int c = strcmp(x->qid, y->qid);
    if (c)
        return c;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return strcmp(y->docno, x->docno);
}

static int int_desc(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

/* Relevance level of docno among the sorted judgments j[0..n); INT_MIN-ish when unjudged. */
#define UNJUDGED (-1000001)
static int lookup(const struct ireval_judgment *j, size_t n, const char *docno)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(j[mid].docno, docno);
        if (!c)
            return j[mid].rel;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return UNJUDGED;
}

/* trec_eval 9's discount: the gain at rank r (from 1) is divided by log2(r + 1). */
static double dcg(const int *gain, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        if (gain[i] > 0)
            s += gain[i] / log2((double)(i + 2));
    return s;
}

/* Measures of one query: run entries e[0..ne) in rank order, judgments j[0..nj) by docno. */
static void eval_query(const struct ireval_entry *e, size_t ne, const struct ireval_judgment *j,
                       size_t nj, int rel_min, int *gains, int *ideal, struct ireval_result *r)
{
    long rel_so_far = 0, num_rel = 0;
    size_t n_ideal = 0;
    double ap = 0;

    memset(r, 0, sizeof(*r));
    snprintf(r->qid, sizeof(r->qid), "%s", e[0].qid);
    for (size_t i = 0; i < nj; i++) {
        num_rel += j[i].rel >= rel_min;
        if (j[i].rel > 0)
            ideal[n_ideal++] = j[i].rel;
    }
    qsort(ideal, n_ideal, sizeof(*ideal), int_desc);
    r->num_q = 1;
    r->num_ret = (long)ne;
    r->num_rel = num_rel;
    for (size_t i = 0; i < ne; i++) {
        int rel = lookup(j, nj, e[i].docno);
        long rank = (long)i + 1;
        gains[i] = rel > 0 ? rel : 0;
        if (rel >= rel_min) {
            rel_so_far++;
            ap += (double)rel_so_far / rank;
            if (rel_so_far == 1)
                r->recip_rank = 1.0 / rank;
        }
        for (int c = 0; c < IREVAL_N_CUTS; c++)
            if (rank == ireval_cuts[c]) {
                r->p[c] = (double)rel_so_far / rank;
                r->recall[c] = num_rel ? (double)rel_so_far / num_rel : 0;
            }
        for (int c = 0; c < IREVAL_N_SUCCESS; c++)
            if (rank <= ireval_success_cuts[c] && rel >= rel_min)
                r->success[c] = 1;
        if (rank == num_rel)
            r->rprec = (double)rel_so_far / num_rel;
        // Interpolated precision: the best precision at any rank holding at least the relevant
        // count of this recall level, which trec_eval rounds half up (recall 0.5 of 77 is 39).
        if (rel >= rel_min && num_rel) {
            double prec = (double)rel_so_far / rank;
            for (int k = 0; k < IREVAL_N_IPREC; k++)
                if (rel_so_far >= (long)floor(k / 10.0 * num_rel + 0.5) && prec > r->iprec[k])
                    r->iprec[k] = prec;
        }
    }
    r->num_rel_ret = rel_so_far;
    // Cuts past the end of the ranking count the missing ranks as non-relevant.
    for (int c = 0; c < IREVAL_N_CUTS; c++)
        if ((size_t)ireval_cuts[c] > ne) {
            r->p[c] = (double)rel_so_far / ireval_cuts[c];
            r->recall[c] = num_rel ? (double)rel_so_far / num_rel : 0;
        }
    if ((size_t)num_rel > ne && num_rel)
        r->rprec = (double)rel_so_far / num_rel;
    // The interpolated curve is non-increasing: carry maxima down from higher recall levels.
    for (int k = IREVAL_N_IPREC - 2; k >= 0; k--)
        if (r->iprec[k + 1] > r->iprec[k])
            r->iprec[k] = r->iprec[k + 1];
    r->map = num_rel ? ap / num_rel : 0;
    r->gm_map = r->map;
    {
        double idcg = dcg(ideal, n_ideal);
        r->ndcg = idcg > 0 ? dcg(gains, ne) / idcg : 0;
        for (int c = 0; c < IREVAL_N_CUTS; c++) {
            size_t k = (size_t)ireval_cuts[c];
            double ic = dcg(ideal, n_ideal < k ? n_ideal : k);
            r->ndcg_cut[c] = ic > 0 ? dcg(gains, ne < k ? ne : k) / ic : 0;
        }
    }
}

static void accumulate(struct ireval_result *all, const struct ireval_result *r, double *log_ap)
{
    all->num_q += 1;
    all->num_ret += r->num_ret;
    all->num_rel += r->num_rel;
    all->num_rel_ret += r->num_rel_ret;
    all->map += r->map;
    *log_ap += log(r->map > 1e-5 ? r->map : 1e-5);
    all->rprec += r->rprec;
    all->recip_rank += r->recip_rank;
    all->ndcg += r->ndcg;
    for (int k = 0; k < IREVAL_N_IPREC; k++)
        all->iprec[k] += r->iprec[k];
    for (int c = 0; c < IREVAL_N_CUTS; c++) {
        all->p[c] += r->p[c];
        all->recall[c] += r->recall[c];
        all->ndcg_cut[c] += r->ndcg_cut[c];
    }
    for (int c = 0; c < IREVAL_N_SUCCESS; c++)
        all->success[c] += r->success[c];
}

static void average(struct ireval_result *all, double log_ap)
{
    double n = all->num_q ? (double)all->num_q : 1;
    all->map /= n;
    all->gm_map = all->num_q ? exp(log_ap / n) : 0;
    all->rprec /= n;
    all->recip_rank /= n;
    all->ndcg /= n;
    for (int k = 0; k < IREVAL_N_IPREC; k++)
        all->iprec[k] /= n;
    for (int c = 0; c < IREVAL_N_CUTS; c++) {
        all->p[c] /= n;
        all->recall[c] /= n;
        all->ndcg_cut[c] /= n;
    }
    for (int c = 0; c < IREVAL_N_SUCCESS; c++)
        all->success[c] /= n;
}

int ireval_evaluate(const struct ireval_qrels *qrels, struct ireval_run *run, int rel_min,
                    struct ireval_result **per_query, size_t *n_q, struct ireval_result *all,
                    struct tw_err *err)
{
    struct ireval_qrels *q = (struct ireval_qrels *)qrels; // sorting is not a visible change
    struct ireval_result *out = NULL;
    size_t n_out = 0, i = 0, jq = 0, max_group = 0;
    int *gains = NULL, *ideal = NULL;
    double log_ap = 0;

    if (per_query)
        *per_query = NULL;
    *n_q = 0;
    memset(all, 0, sizeof(*all));
    snprintf(all->qid, sizeof(all->qid), "all");
    if (!q->sorted) {
        qsort(q->j, q->n, sizeof(*q->j), judgment_cmp);
        q->sorted = 1;
    }
    qsort(run->e, run->n, sizeof(*run->e), entry_cmp);
    for (size_t a = 0, b; a < run->n; a = b) {
        for (b = a; b < run->n && !strcmp(run->e[b].qid, run->e[a].qid); b++)
            ;
        if (b - a > max_group)
            max_group = b - a;
    }
    for (size_t a = 0, b; a < q->n; a = b) {
        for (b = a; b < q->n && !strcmp(q->j[b].qid, q->j[a].qid); b++)
            ;
        if (b - a > max_group)
            max_group = b - a;
    }
    gains = tw_mallocarray(max_group + 1, sizeof(*gains));
    ideal = tw_mallocarray(max_group + 1, sizeof(*ideal));
    if (per_query)
        out = tw_calloc(run->n + 1, sizeof(*out));
    if (!gains || !ideal || (per_query && !out)) {
        tw_free(gains);
        tw_free(ideal);
        tw_free(out);
        return tw_errf(err, TW_ENOMEM, "out of memory evaluating a run");
    }
    while (i < run->n) {
        size_t end = i, jend;
        int c = 1;
        struct ireval_result r;
        while (end < run->n && !strcmp(run->e[end].qid, run->e[i].qid))
            end++;
        while (jq < q->n && (c = strcmp(q->j[jq].qid, run->e[i].qid)) < 0)
            jq++;
        if (jq < q->n && c == 0) {
            for (jend = jq; jend < q->n && !strcmp(q->j[jend].qid, run->e[i].qid); jend++)
                ;
            eval_query(run->e + i, end - i, q->j + jq, jend - jq, rel_min, gains, ideal, &r);
            accumulate(all, &r, &log_ap);
            if (out)
                out[n_out] = r;
            n_out++;
        }
        i = end;
    }
    average(all, log_ap);
    tw_free(gains);
    tw_free(ideal);
    *n_q = n_out;
    if (per_query && n_out)
        *per_query = out;
    else
        tw_free(out);
    return 0;
}
