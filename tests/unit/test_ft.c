/* test_ft.c - the fine-tune driver on stories260K: LoRA on a skeeto post it has never seen
 * lowers the held-out loss, full fine-tuning overfits a tiny set, a resumed run equals an
 * uninterrupted one bit for bit, QLoRA over Q8_0 / Q4_0 bases follows the F32 loss curve, and a
 * model trained from scratch with the stories260K vocabulary learns and loads in the decoder. */
#include "test.h"

#include "base/mem.h"
#include "nn/kq.h"
#include "nn/llm.h"
#include "nn/tok.h"
#include "train/ft.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MODEL   "data/models/stories260K.gguf"
#define POST    "data/corpora/skeeto/_posts/2007-09-02-octave-mandel.markdown"
#define N_CURVE 24

struct curve {
    float loss[N_CURVE + 1];
    int n;
};

static void record(void *ctx, const struct ft_event *ev)
{
    struct curve *c = ctx;
    if (ev->kind == FT_EV_STEP && ev->step <= N_CURVE) {
        c->loss[ev->step] = ev->loss;
        c->n = (int)ev->step;
    }
}

static void base_opts(struct ft_opts *o, const char *out)
{
    ft_opts_default(o);
    o->base = test_shared(MODEL);
    o->dataset = test_shared(POST);
    o->out = out;
    o->ds.n_ctx = 64;
    o->batch = 4;
    o->lora_rank = 8;
    o->lora_alpha = 16;
    o->lr = 5e-3f;
    o->warmup = 3;
    o->ds.eval_split = 0.2;
    o->n_threads = 1;
}

static char *dir(const char *name)
{
    static char buf[8][600];
    static int k;
    char *d = buf[k++ & 7];
    snprintf(d, 600, "%s/%s", test_tmpdir(), name);
    return d;
}

/* LoRA (r=8, all targets) on a programming post: the held-out loss drops measurably. */
TEST(ft_lora_lowers_held_out_loss_on_unseen_text)
{
    struct ft_opts o;
    struct ft_result r;
    struct tw_err err = TW_ERR_INIT;
    char path[700], *m, *q;
    size_t len = 0;
    int n_eval = 0, n_step = 0;
    base_opts(&o, dir("lora"));
    o.steps = 30;
    o.eval_every = 10;
    CHECK_OK(ft_run(&o, &r, &err), &err);
    snprintf(path, sizeof(path), "%s/metrics.jsonl", o.out);
    m = test_read_file(path, &len);
    CHECK(m != NULL);
    for (q = m; (q = strstr(q, "\"eval_loss\"")) != NULL; q++)
        n_eval++;
    for (q = m; (q = strstr(q, "\"grad_norm\"")) != NULL; q++)
        n_step++;
    tw_free(m);
    CHECK_EQ_INT(n_eval, 4); // before step 1, after 10, 20 and at the end
    CHECK_EQ_INT(n_step, 30);
    printf("  held-out loss %.4f -> %.4f (ppl %.1f -> %.1f), train %.4f -> %.4f, %.0f tok/s\n",
           r.eval_before, r.eval_after, exp(r.eval_before), exp(r.eval_after), r.loss_first,
           r.loss_last, r.tokens_per_s);
    CHECK_EQ_INT(r.steps, 30);
    CHECK(r.eval_before > 4.5);
    CHECK(r.eval_after < r.eval_before - 1.0);
}

/* Full fine-tuning overfits two short instruction examples: training loss near zero. */
TEST(ft_full_overfits_a_tiny_set)
{
    struct ft_opts o;
    struct ft_result r;
    struct tw_err err = TW_ERR_INIT;
    char path[700];
    FILE *f;
    snprintf(path, sizeof(path), "%s/tiny.jsonl", test_tmpdir());
    f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("{\"instruction\":\"What does Chris write about?\",\"output\":\"Emacs, C and "
          "fractals.\"}\n{\"messages\":[{\"role\":\"user\",\"content\":\"Favorite language?\"},"
          "{\"role\":\"assistant\",\"content\":\"Plain C, with care.\"}]}\n",
          f);
    fclose(f);
    base_opts(&o, dir("full"));
    o.dataset = path;
    o.full = 1;
    o.ds.eval_split = 0;
    o.ds.n_ctx = 96;
    o.batch = 2;
    o.steps = 80;
    o.lr = 1e-2f;
    o.warmup = 5;
    CHECK_OK(ft_run(&o, &r, &err), &err);
    printf("  full fine-tuning on 2 examples: loss %.4f -> %.4f in 80 steps\n", r.loss_first,
           r.loss_last);
    CHECK(isnan(r.eval_after));
    CHECK(r.loss_first > 3);
    CHECK(r.loss_last < 0.1);
}

static char *slurp(const char *path, size_t *len)
{
    return test_read_file(path, len);
}

/* Three steps, stop, resume to six: the adapter is byte-identical to an uninterrupted run's
 * (dropout, weight decay and accumulation on). */
TEST(ft_resume_equals_uninterrupted)
{
    struct ft_opts o;
    struct ft_result r;
    struct tw_err err = TW_ERR_INIT;
    char pa[700], pb[700];
    char *a, *b;
    size_t la = 0, lb = 0;
    base_opts(&o, dir("whole"));
    o.steps = 6;
    o.accum = 2;
    o.batch = 2;
    o.lora_dropout = 0.1f;
    o.weight_decay = 0.01f;
    o.ds.eval_split = 0.1;
    CHECK_OK(ft_run(&o, &r, &err), &err);
    o.out = dir("part");
    o.stop_at = 3;
    CHECK_OK(ft_run(&o, &r, &err), &err);
    CHECK_EQ_INT(r.steps, 3);
    o.stop_at = 0;
    o.resume = o.out;
    CHECK_OK(ft_run(&o, &r, &err), &err);
    CHECK_EQ_INT(r.steps, 6);
    snprintf(pa, sizeof(pa), "%s/adapter.gguf", dir("whole"));
    snprintf(pb, sizeof(pb), "%s/adapter.gguf", dir("part"));
    a = slurp(pa, &la);
    b = slurp(pb, &lb);
    CHECK(a && b);
    CHECK_EQ_INT(la, lb);
    CHECK(!memcmp(a, b, la));
    tw_free(a);
    tw_free(b);
}

/* QLoRA: the same LoRA run over stories260K quantized to Q8_0 and Q4_0 (the frozen base read
 * in its type) follows the F32 curve. */
TEST(ft_qlora_follows_the_f32_curve)
{
    static const char *types[3] = {"f32", "q8_0", "q4_0"};
    struct curve c[3] = {0};
    struct ft_result r[3];
    struct tw_err err = TW_ERR_INIT;
    double dev[3] = {0};
    for (int i = 0; i < 3; i++) {
        struct ft_opts o;
        struct kq_quantize_stats qs;
        char path[700];
        snprintf(path, sizeof(path), "%s/stories-%s.gguf", test_tmpdir(), types[i]);
        if (i)
            CHECK_OK(kq_quantize_file(test_shared(MODEL), path, types[i], NULL, &qs, &err), &err);
        base_opts(&o, dir(types[i]));
        if (i)
            o.base = path;
        o.steps = N_CURVE;
        o.on_event = record;
        o.ctx = &c[i];
        CHECK_OK(ft_run(&o, &r[i], &err), &err);
        CHECK_EQ_INT(c[i].n, N_CURVE);
    }
    printf("  step   f32     q8_0    q4_0\n");
    for (int s = 1; s <= N_CURVE; s++) {
        if (s == 1 || s % 6 == 0)
            printf("  %4d  %.4f  %.4f  %.4f\n", s, c[0].loss[s], c[1].loss[s], c[2].loss[s]);
        for (int i = 1; i < 3; i++)
            dev[i] = fmax(dev[i], fabs(c[i].loss[s] - c[0].loss[s]));
    }
    printf("  held-out: f32 %.4f -> %.4f, q8_0 %.4f -> %.4f, q4_0 %.4f -> %.4f\n", r[0].eval_before,
           r[0].eval_after, r[1].eval_before, r[1].eval_after, r[2].eval_before, r[2].eval_after);
    printf("  max |loss - f32 loss|: q8_0 %.4f, q4_0 %.4f\n", dev[1], dev[2]);
    CHECK(dev[1] < 0.05);
    CHECK(dev[2] < 0.5);
    CHECK(r[1].eval_after < r[1].eval_before - 1.0);
    CHECK(r[2].eval_after < r[2].eval_before - 1.0);
}

/* From scratch with the stories260K vocabulary on a skeeto post: the loss comes down steadily
 * and model.gguf loads in the decoder, which continues a prompt. */
TEST(ft_from_scratch_learns_and_loads)
{
    struct ft_opts o;
    struct ft_result r;
    struct curve c = {0};
    struct tw_err err = TW_ERR_INIT;
    struct llm_model *lm = NULL;
    struct llm_ctx *ctx = NULL;
    char path[700];
    int32_t ids[8] = {1, 403, 407, 261, 378};
    float *logits = tw_mallocarray(512, sizeof(float));
    double early = 0, late = 0;
    CHECK(logits != NULL);
    ft_opts_default(&o);
    o.init_random = 1;
    o.vocab_from = test_shared(MODEL);
    o.dim = 64;
    o.layers = 2;
    o.heads = 4;
    o.kv_heads = 2;
    o.ff = 128;
    o.dataset = test_shared(POST);
    o.out = dir("scratch");
    o.ds.n_ctx = 64;
    o.batch = 4;
    o.steps = N_CURVE;
    o.lr = 1e-2f;
    o.warmup = 2;
    o.n_threads = 1;
    o.on_event = record;
    o.ctx = &c;
    CHECK_OK(ft_run(&o, &r, &err), &err);
    for (int s = 1; s <= 4; s++)
        early += c.loss[s] / 4;
    for (int s = N_CURVE - 3; s <= N_CURVE; s++)
        late += c.loss[s] / 4;
    printf("  from scratch (dim 64, 2 layers): train loss %.3f (steps 1-4) -> %.3f (last 4), "
           "held-out %.3f -> %.3f\n",
           early, late, r.eval_before, r.eval_after);
    CHECK(early > 5.5); // ~ln(512) = 6.24 at random init
    CHECK(late < early - 1.0);
    /* steadily: each quarter of the run averages below the one before */
    for (int q = 1; q < 4; q++) {
        double a = 0, b = 0;
        for (int s = 1; s <= 6; s++) {
            a += c.loss[(q - 1) * 6 + s];
            b += c.loss[q * 6 + s];
        }
        printf("  quarter %d: %.3f -> %.3f\n", q, a / 6, b / 6);
        CHECK(b < a);
    }
    CHECK(r.eval_after < r.eval_before - 1.0);
    snprintf(path, sizeof(path), "%s/model.gguf", o.out);
    CHECK_OK(llm_model_load(path, &lm, &err), &err);
    CHECK_EQ_INT(llm_model_hparams(lm)->n_embd, 64);
    CHECK_OK(llm_ctx_new(lm, 64, LLM_KV_F32, 1, &ctx, &err), &err);
    CHECK_OK(llm_decode(ctx, ids, 5, logits, 0, &err), &err);
    CHECK(isfinite(logits[0]));
    llm_ctx_free(ctx);
    llm_model_free(lm);
    tw_free(logits);
}

/* Accumulation: 2 micro-batches of 1 row make the same steps as 1 micro-batch of 2 rows (each
 * micro-batch weighted by its share of the counted targets), up to summation order. */
TEST(ft_accumulation_equals_a_bigger_batch)
{
    struct ft_opts o;
    struct ft_result r;
    struct curve a = {0}, b = {0};
    struct tw_err err = TW_ERR_INIT;
    double d = 0;
    base_opts(&o, dir("acc-a"));
    o.steps = 4;
    o.batch = 2;
    o.on_event = record;
    o.ctx = &a;
    CHECK_OK(ft_run(&o, &r, &err), &err);
    o.out = dir("acc-b");
    o.batch = 1;
    o.accum = 2;
    o.ctx = &b;
    CHECK_OK(ft_run(&o, &r, &err), &err);
    for (int s = 1; s <= 4; s++)
        d = fmax(d, fabs(a.loss[s] - b.loss[s]));
    printf("  batch 2 vs 1 x accum 2: max loss difference over 4 steps %.3g\n", d);
    CHECK_EQ_INT(b.n, 4);
    CHECK(d < 1e-4);
}

/* Option errors name the option. */
TEST(ft_rejects_bad_options)
{
    struct ft_opts o;
    struct ft_result r;
    struct tw_err err = TW_ERR_INIT;
    unsigned t = 0;
    base_opts(&o, dir("bad"));
    o.base = NULL;
    CHECK_EQ_INT(ft_run(&o, &r, &err), TW_EINVAL);
    CHECK(strstr(err.msg, "--base") != NULL);
    tw_err_clear(&err);
    base_opts(&o, dir("bad"));
    o.batch = 0;
    CHECK_EQ_INT(ft_run(&o, &r, &err), TW_EINVAL);
    tw_err_clear(&err);
    base_opts(&o, dir("bad"));
    o.resume = dir("nothing-here");
    CHECK(ft_run(&o, &r, &err) < 0);
    CHECK(strstr(err.msg, "checkpoint.gguf") != NULL);
    tw_err_clear(&err);
    CHECK_OK(ft_parse_targets("q,v,down", &t, &err), &err);
    CHECK_EQ_INT(t, TRAIN_LORA_Q | TRAIN_LORA_V | TRAIN_LORA_DOWN);
    CHECK_EQ_INT(ft_parse_targets("q,wq", &t, &err), TW_EINVAL);
    CHECK(strstr(err.msg, "'wq'") != NULL);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
