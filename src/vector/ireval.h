/* ireval.h - Cranfield-style retrieval evaluation: MAP, nDCG, P@k and friends, computed the way
 * NIST trec_eval computes them, so figures can be compared with published ones.
 *
 * Inputs are the two TREC text formats (or the same data added in code):
 *
 *     qrels:  QID  ITER  DOCNO  REL          "301 0 FR940202-2-00150 1"  (ITER ignored)
 *     run:    QID  Q0    DOCNO  RANK  SCORE  RUNID                       (RANK ignored)
 *
 * As in trec_eval, a run is ranked by SCORE descending, ties by DOCNO descending (strcmp); a
 * document counts as relevant when REL >= rel_min (trec_eval -l, default 1); only queries that
 * have both judgments and results are evaluated, and the summary is the mean over them (sums for
 * the num_* counts, a geometric mean with floor 1e-5 for gm_map). nDCG uses the judged level as
 * the gain and trec_eval 9's discount, 1/log2(rank + 1).
 *
 * Ownership: the objects own copies of every string. Thread-safety: one thread per object;
 * ireval_evaluate only reads its inputs.
 */
#ifndef TW_IREVAL_H
#define TW_IREVAL_H

#include "base/err.h"

#include <stddef.h>

#define IREVAL_QID_MAX   64   // bytes of a query id, NUL included
#define IREVAL_DOCNO_MAX 256  // bytes of a document id, NUL included
#define IREVAL_N_CUTS    9    // P, recall, ndcg_cut at 5 10 15 20 30 100 200 500 1000
#define IREVAL_N_IPREC   11   // interpolated precision at recall 0.0, 0.1, ... 1.0
#define IREVAL_N_SUCCESS 3    // success at 1 5 10

extern const int ireval_cuts[IREVAL_N_CUTS];
extern const int ireval_success_cuts[IREVAL_N_SUCCESS];

struct ireval_qrels;
struct ireval_run;

struct ireval_result {
    char qid[IREVAL_QID_MAX];        // the query, or "all" for the summary
    long num_q;                      // queries evaluated (1 per query)
    long num_ret;                    // documents retrieved
    long num_rel;                    // relevant documents judged
    long num_rel_ret;                // relevant documents retrieved
    double map;                      // average precision
    double gm_map;                   // geometric mean AP (summary only; AP per query)
    double rprec;                    // precision at rank num_rel
    double recip_rank;               // 1 / rank of the first relevant document
    double iprec[IREVAL_N_IPREC];    // interpolated precision at recall 0.0 .. 1.0
    double p[IREVAL_N_CUTS];         // precision at ireval_cuts
    double recall[IREVAL_N_CUTS];    // recall at ireval_cuts
    double ndcg;                     // nDCG over the whole ranking
    double ndcg_cut[IREVAL_N_CUTS];  // nDCG at ireval_cuts
    double success[IREVAL_N_SUCCESS]; // 1 if a relevant document is in the top 1 / 5 / 10
};

int ireval_qrels_new(struct ireval_qrels **out, struct tw_err *err);
void ireval_qrels_free(struct ireval_qrels *q);
/* Adds one judgment. TW_EINVAL for an empty or too long id. */
int ireval_qrels_add(struct ireval_qrels *q, const char *qid, const char *docno, int rel,
                     struct tw_err *err);
/* Parses qrels text; on a bad line returns TW_EFORMAT naming 'name' and the line. */
int ireval_qrels_parse(struct ireval_qrels *q, const char *text, size_t len, const char *name,
                       struct tw_err *err);

int ireval_run_new(struct ireval_run **out, struct tw_err *err);
void ireval_run_free(struct ireval_run *r);
int ireval_run_add(struct ireval_run *r, const char *qid, const char *docno, double score,
                   struct tw_err *err);
/* Parses a TREC run; on a bad line returns TW_EFORMAT naming 'name' and the line. */
int ireval_run_parse(struct ireval_run *r, const char *text, size_t len, const char *name,
                     struct tw_err *err);

/* Evaluates 'run' against 'qrels'. *per_query (tw_malloc'd, caller frees with tw_free; may be
 * NULL if *n_q is 0) gets one result per evaluated query in qid order (strcmp); 'all' the
 * summary. per_query may be NULL when only the summary is wanted. */
int ireval_evaluate(const struct ireval_qrels *qrels, struct ireval_run *run, int rel_min,
                    struct ireval_result **per_query, size_t *n_q, struct ireval_result *all,
                    struct tw_err *err);

#endif
