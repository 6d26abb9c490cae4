/* test_ireval.c - the trec_eval-compatible evaluator against NIST trec_eval's own test outputs
 * (shared/data/ir/trec_eval_test: out.test.a is `-m all_trec`, out.test.aq adds `-q`). */
#include "test.h"

#include "base/mem.h"
#include "vector/ireval.h"

#include <stdlib.h>

/* The value of measure 'name' in r, or -1 when the evaluator does not compute it. */
static double measure(const struct ireval_result *r, const char *name)
{
    char buf[64];
    if (!strcmp(name, "num_q"))
        return (double)r->num_q;
    if (!strcmp(name, "num_ret"))
        return (double)r->num_ret;
    if (!strcmp(name, "num_rel"))
        return (double)r->num_rel;
    if (!strcmp(name, "num_rel_ret"))
        return (double)r->num_rel_ret;
    if (!strcmp(name, "map"))
        return r->map;
    if (!strcmp(name, "gm_map"))
        return r->gm_map;
    if (!strcmp(name, "Rprec"))
        return r->rprec;
    if (!strcmp(name, "recip_rank"))
        return r->recip_rank;
    if (!strcmp(name, "ndcg"))
        return r->ndcg;
    for (int k = 0; k < IREVAL_N_IPREC; k++) {
        snprintf(buf, sizeof(buf), "iprec_at_recall_%.2f", k / 10.0);
        if (!strcmp(name, buf))
            return r->iprec[k];
    }
    for (int c = 0; c < IREVAL_N_CUTS; c++) {
        snprintf(buf, sizeof(buf), "P_%d", ireval_cuts[c]);
        if (!strcmp(name, buf))
            return r->p[c];
        snprintf(buf, sizeof(buf), "recall_%d", ireval_cuts[c]);
        if (!strcmp(name, buf))
            return r->recall[c];
        snprintf(buf, sizeof(buf), "ndcg_cut_%d", ireval_cuts[c]);
        if (!strcmp(name, buf))
            return r->ndcg_cut[c];
    }
    for (int c = 0; c < IREVAL_N_SUCCESS; c++) {
        snprintf(buf, sizeof(buf), "success_%d", ireval_success_cuts[c]);
        if (!strcmp(name, buf))
            return r->success[c];
    }
    return -1;
}

static char *load(const char *rel, size_t *len)
{
    char *t = test_read_file(test_shared(rel), len);
    if (!t)
        fprintf(stderr, "  cannot read %s\n", test_shared(rel));
    return t;
}

/* Compares every line of a trec_eval output file whose measure we compute; returns how many
 * matched, or -1 after printing the first mismatch. */
static long compare(const char *expected, size_t len, const struct ireval_result *per_q,
                    size_t n_q, const struct ireval_result *all)
{
    const char *p = expected, *end = expected + len;
    long matched = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        char name[64], qid[64], val[64], line[256];
        size_t l = (size_t)((nl ? nl : end) - p);
        const struct ireval_result *r = NULL;
        double got, want;
        snprintf(line, sizeof(line), "%.*s", (int)(l < 255 ? l : 255), p);
        p = nl ? nl + 1 : end;
        if (sscanf(line, "%63s %63s %63s", name, qid, val) != 3)
            continue;
        if (!strcmp(qid, "all"))
            r = all;
        for (size_t i = 0; !r && i < n_q; i++)
            if (!strcmp(per_q[i].qid, qid))
                r = &per_q[i];
        if (!r) {
            fprintf(stderr, "  no result for query '%s'\n", qid);
            return -1;
        }
        got = measure(r, name);
        if (got < 0)
            continue;
        want = strtod(val, NULL);
        if (fabs(got - want) > 5.1e-5) {
            fprintf(stderr, "  %s %s: got %.6f, trec_eval %s\n", name, qid, got, val);
            return -1;
        }
        matched++;
    }
    return matched;
}

static int eval_files(const char *qrels_rel, int rel_min, struct ireval_result **per_q,
                      size_t *n_q, struct ireval_result *all)
{
    struct tw_err err = TW_ERR_INIT;
    struct ireval_qrels *q = NULL;
    struct ireval_run *r = NULL;
    size_t ql, rl;
    char *qt = load(qrels_rel, &ql), *rt = load("data/ir/trec_eval_test/results.test", &rl);
    int rc = -1;
    if (qt && rt && ireval_qrels_new(&q, &err) == 0 && ireval_run_new(&r, &err) == 0 &&
        ireval_qrels_parse(q, qt, ql, qrels_rel, &err) == 0 &&
        ireval_run_parse(r, rt, rl, "results.test", &err) == 0 &&
        ireval_evaluate(q, r, rel_min, per_q, n_q, all, &err) == 0)
        rc = 0;
    if (rc < 0)
        fprintf(stderr, "  %s\n", err.msg);
    ireval_qrels_free(q);
    ireval_run_free(r);
    tw_free(qt);
    tw_free(rt);
    return rc;
}

TEST(ireval_matches_trec_eval_all_trec_summary_and_per_query)
{
    struct ireval_result *per_q = NULL, all;
    size_t n_q = 0, len;
    char *exp_a = load("data/ir/trec_eval_test/out.test.a", &len);
    long m;
    CHECK(exp_a != NULL);
    CHECK_EQ_INT(eval_files("data/ir/trec_eval_test/qrels.test", 1, &per_q, &n_q, &all), 0);
    CHECK_EQ_INT(n_q, 3);
    CHECK_NEAR(all.map, 0.1785, 5.1e-5);
    CHECK_NEAR(all.ndcg_cut[1], 0.3016, 5.1e-5);
    CHECK_NEAR(all.p[1], 0.3000, 5.1e-5);
    m = compare(exp_a, len, per_q, n_q, &all);
    // Every measure ireval computes appears once in the summary: 4 counts, map, gm_map, Rprec,
    // recip_rank, 11 iprec, 9 P, 9 recall, ndcg, 9 ndcg_cut, 3 success = 50.
    CHECK_EQ_INT(m, 50);
    tw_free(exp_a);
    exp_a = load("data/ir/trec_eval_test/out.test.aq", &len);
    CHECK(exp_a != NULL);
    m = compare(exp_a, len, per_q, n_q, &all);
    CHECK_EQ_INT(m, 48 * 3 + 50); // per query all but num_q and gm_map, plus the summary
    tw_free(exp_a);
    tw_free(per_q);
}

TEST(ireval_matches_trec_eval_graded_levels)
{
    /* out.test.aql: -l2 over qrels.rel_level (levels 0..2+). */
    struct ireval_result *per_q = NULL, all;
    size_t n_q = 0, len;
    char *exp = load("data/ir/trec_eval_test/out.test.aql", &len);
    long m;
    CHECK(exp != NULL);
    CHECK_EQ_INT(eval_files("data/ir/trec_eval_test/qrels.rel_level", 2, &per_q, &n_q, &all), 0);
    m = compare(exp, len, per_q, n_q, &all);
    CHECK_EQ_INT(m, 48 * 3 + 50);
    tw_free(exp);
    tw_free(per_q);
}

TEST(ireval_rejects_bad_lines_naming_the_file)
{
    struct tw_err err = TW_ERR_INIT;
    struct ireval_qrels *q;
    struct ireval_run *r;
    CHECK_OK(ireval_qrels_new(&q, &err), &err);
    CHECK_OK(ireval_run_new(&r, &err), &err);
    CHECK_EQ_INT(ireval_qrels_parse(q, "1 0 d1 1\n1 0 d2\n", 16, "q.txt", &err), TW_EFORMAT);
    CHECK_EQ_STR(err.msg, "'q.txt' line 2: 3 fields, a qrels line has 4");
    tw_err_clear(&err);
    CHECK_EQ_INT(ireval_qrels_parse(q, "1 0 d1 x\n", 9, "q.txt", &err), TW_EFORMAT);
    CHECK_EQ_STR(err.msg, "'q.txt' line 1: relevance 'x' is not an integer");
    tw_err_clear(&err);
    CHECK_EQ_INT(ireval_run_parse(r, "1 Q0 d1 1 nan? run\n", 19, "r.txt", &err), TW_EFORMAT);
    CHECK_EQ_STR(err.msg, "'r.txt' line 1: score 'nan?' is not a number");
    ireval_qrels_free(q);
    ireval_run_free(r);
}

TEST(ireval_hand_computed_ranking)
{
    /* One query, relevant {a, c}, ranking a b c (scores 3 2 1): AP = (1/1 + 2/3) / 2,
     * nDCG = (1 + 1/log2(4)) / (1 + 1/log2(3)), P@5 = 2/5, Rprec = 1/2, RR = 1. */
    struct tw_err err = TW_ERR_INIT;
    struct ireval_qrels *q;
    struct ireval_run *r;
    struct ireval_result all;
    size_t n_q;
    CHECK_OK(ireval_qrels_new(&q, &err), &err);
    CHECK_OK(ireval_run_new(&r, &err), &err);
    CHECK_OK(ireval_qrels_add(q, "7", "a", 1, &err), &err);
    CHECK_OK(ireval_qrels_add(q, "7", "c", 1, &err), &err);
    CHECK_OK(ireval_qrels_add(q, "7", "b", 0, &err), &err);
    CHECK_OK(ireval_qrels_add(q, "8", "z", 1, &err), &err); // no results: not evaluated
    CHECK_OK(ireval_run_add(r, "7", "c", 1, &err), &err);
    CHECK_OK(ireval_run_add(r, "7", "a", 3, &err), &err);
    CHECK_OK(ireval_run_add(r, "7", "b", 2, &err), &err);
    CHECK_OK(ireval_evaluate(q, r, 1, NULL, &n_q, &all, &err), &err);
    CHECK_EQ_INT(n_q, 1);
    CHECK_NEAR(all.map, (1.0 + 2.0 / 3) / 2, 1e-12);
    CHECK_NEAR(all.ndcg, (1 + 1 / log2(4.0)) / (1 + 1 / log2(3.0)), 1e-12);
    CHECK_NEAR(all.p[0], 2.0 / 5, 1e-12);
    CHECK_NEAR(all.rprec, 0.5, 1e-12);
    CHECK_NEAR(all.recip_rank, 1, 1e-12);
    ireval_qrels_free(q);
    ireval_run_free(r);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
