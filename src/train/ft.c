/* ft.c - the fine-tune driver: base model (or a random one), dataset, LoRA / QLoRA / full
 * training with AdamW, accumulation, clipping and a schedule, evaluation, checkpoints and the
 * output folder (ft.h, docs/train.md). */
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/pool.h"
#include "base/time.h"
#include "nn/gguf.h"
#include "nn/llm.h"
#include "nn/tok.h"
#include "nn/train.h"
#include "train/ft.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FT_MAX_BATCH 4096
#define FT_MAX_STEPS 100000000L

void ft_opts_default(struct ft_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->lora_rank = 16;
    o->lora_alpha = 32.0f;
    o->lora_targets = TRAIN_LORA_ALL;
    o->epochs = 1;
    o->lr = 2e-4f;
    o->lr_min = -1.0f; // lr / 10
    o->warmup = 20;
    o->schedule = TRAIN_DECAY_COSINE;
    o->batch = 1;
    o->accum = 1;
    o->ds.n_ctx = 256;
    o->ds.eval_split = 0.1;
    o->ds.chat_tmpl = -1;
    o->seed = 42;
    o->n_threads = 1;
    o->clip = 1.0;
}

int ft_parse_targets(const char *s, unsigned *out, struct tw_err *err)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"q", TRAIN_LORA_Q},       {"k", TRAIN_LORA_K},       {"v", TRAIN_LORA_V},
                 {"o", TRAIN_LORA_O},       {"gate", TRAIN_LORA_GATE}, {"up", TRAIN_LORA_UP},
                 {"down", TRAIN_LORA_DOWN}, {"all", TRAIN_LORA_ALL}};
    unsigned bits = 0;
    const char *p = s;
    while (*p) {
        size_t len = strcspn(p, ","), i;
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (strlen(names[i].name) == len && !strncmp(names[i].name, p, len))
                break;
        if (i == sizeof(names) / sizeof(names[0]))
            return tw_errf(err, TW_EINVAL,
                           "unknown LoRA target '%.*s' (q, k, v, o, gate, up, "
                           "down or all)",
                           (int)(len > 40 ? 40 : len), p);
        bits |= names[i].bit;
        p += len + (p[len] == ',');
    }
    if (!bits)
        return tw_errf(err, TW_EINVAL, "empty LoRA target list");
    *out = bits;
    return TW_OK;
}

/* ---- the run's state ---- */

struct ft_run {
    const struct ft_opts *o;
    struct llm_model *lm;   // the base (NULL for init_random)
    struct gguf_file *meta; // the vocab file (init_random)
    struct tok *tk;
    struct train_llama *m;
    struct tw_pool *pool;
    struct ds ds;
    struct train_param *p;
    int n_p;
    struct train_rng rng; // dropout
    FILE *metrics;
    int32_t *in, *tgt; // one micro-batch [B*T]
    uint8_t *mask;
    size_t *perm; // the current epoch's row order
    long perm_epoch;
    char arch[64];
};

static void emit(const struct ft_run *r, const struct ft_event *ev)
{
    if (r->o->on_event)
        r->o->on_event(r->o->ctx, ev);
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Row order of an epoch: a shuffle seeded by (seed, epoch) alone, so a resumed run sees the
 * rows a continuous run would. */
static void epoch_perm(struct ft_run *r, long epoch)
{
    struct train_rng g;
    size_t n = (size_t)r->ds.train.n;
    if (r->perm_epoch == epoch)
        return;
    train_rng_seed(&g, mix64(r->o->seed ^ mix64((uint64_t)epoch + 0x70657270ull)));
    for (size_t i = 0; i < n; i++)
        r->perm[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(train_rng_next(&g) % (i + 1)), t = r->perm[i];
        r->perm[i] = r->perm[j];
        r->perm[j] = t;
    }
    r->perm_epoch = epoch;
}

/* Gathers micro-batch 'mb' (global index) into in/tgt/mask; returns its counted targets. */
static long gather(struct ft_run *r, long mb)
{
    const struct ds_rows *rows = &r->ds.train;
    int B = r->o->batch, T = rows->T;
    long counted = 0;
    for (int b = 0; b < B; b++) {
        long g = mb * B + b;
        size_t row;
        epoch_perm(r, g / rows->n);
        row = r->perm[g % rows->n];
        memcpy(r->in + (size_t)b * T, rows->in + row * T, (size_t)T * sizeof(int32_t));
        memcpy(r->tgt + (size_t)b * T, rows->tgt + row * T, (size_t)T * sizeof(int32_t));
        memcpy(r->mask + (size_t)b * T, rows->mask + row * T, (size_t)T);
        counted += rows->n_counted[row];
    }
    return counted;
}

/* Mean loss over every counted target of the eval rows, without dropout. */
static int evaluate(struct ft_run *r, double *out, struct tw_err *err)
{
    const struct ds_rows *e = &r->ds.eval;
    int B = r->o->batch, T = e->T;
    double sum = 0;
    long total = 0;
    *out = NAN;
    if (e->n == 0)
        return TW_OK;
    for (int s = 0; s < e->n; s += B) {
        int nb = e->n - s < B ? e->n - s : B;
        long c = 0;
        float loss;
        int rc;
        for (int b = 0; b < nb; b++)
            c += e->n_counted[s + b];
        rc = train_llama_forward(r->m, e->in + (size_t)s * T, e->tgt + (size_t)s * T,
                                 e->mask + (size_t)s * T, nb, T, NULL, &loss, err);
        if (rc < 0)
            return tw_err_ctx(err, "evaluating");
        sum += (double)loss * (double)c;
        total += c;
    }
    *out = total ? sum / (double)total : NAN;
    return TW_OK;
}

static void metric_eval(struct ft_run *r, long step, double loss)
{
    struct ft_event ev = {.kind = FT_EV_EVAL, .step = step, .eval_loss = loss};
    if (r->metrics) {
        fprintf(r->metrics, "{\"step\":%ld,\"eval_loss\":%.9g,\"eval_ppl\":%.9g}\n", step, loss,
                exp(loss));
        fflush(r->metrics);
    }
    emit(r, &ev);
}

static int path_join(char *buf, size_t cap, const char *dir, const char *name, struct tw_err *err)
{
    if ((size_t)snprintf(buf, cap, "%s/%s", dir, name) >= cap)
        return tw_errf(err, TW_ELIMIT, "path '%s/%s' too long", dir, name);
    return TW_OK;
}

static int save_checkpoint(struct ft_run *r, long step, struct tw_err *err)
{
    char path[4096];
    struct ft_event ev = {.kind = FT_EV_SAVE, .step = step};
    int rc = path_join(path, sizeof(path), r->o->out, "checkpoint.gguf", err);
    if (rc < 0 || (rc = train_llama_checkpoint_save(r->m, step, &r->rng, path, err)) < 0)
        return rc;
    ev.path = path;
    emit(r, &ev);
    return TW_OK;
}

/* Writes 'text' to 'path' through a temporary file and a rename. */
static int write_atomic(const char *path, const char *text, size_t len, struct tw_err *err)
{
    char tmp[4200];
    FILE *f;
    int ok;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return tw_errf(err, TW_ELIMIT, "path '%s' too long", path);
    f = fopen(tmp, "wb");
    if (!f)
        return tw_errf(err, TW_EIO, "cannot write '%s': %s", tmp, strerror(errno));
    ok = fwrite(text, 1, len, f) == len;
    ok &= fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) < 0) {
        unlink(tmp);
        return tw_errf(err, TW_EIO, "cannot write '%s': %s", path, strerror(errno));
    }
    return TW_OK;
}

static void json_num(struct tw_buf *b, const char *key, double v)
{
    if (isfinite(v))
        tw_buf_printf(b, "\"%s\":%.9g,", key, v);
    else
        tw_buf_printf(b, "\"%s\":null,", key);
}

static void json_str(struct tw_buf *b, const char *s)
{
    tw_buf_json_str(b, s, strlen(s));
}

static int write_run_json(struct ft_run *r, const struct ft_result *res, long total,
                          struct tw_err *err)
{
    const struct ft_opts *o = r->o;
    static const char *sched[] = {"constant", "linear", "cosine"};
    struct tw_buf b = TW_BUF_INIT;
    char path[4096];
    int rc;
    tw_buf_puts(&b, "{\"mode\":");
    json_str(&b, o->init_random ? "scratch" : o->full ? "full" : "lora");
    tw_buf_puts(&b, ",\"base\":");
    json_str(&b, o->init_random ? o->vocab_from : o->base);
    tw_buf_puts(&b, ",\"dataset\":");
    json_str(&b, o->dataset);
    tw_buf_printf(&b, ",\"dataset_sha256\":\"%s\",\"params\":{", r->ds.sha256);
    if (!o->full && !o->init_random)
        tw_buf_printf(&b,
                      "\"lora_rank\":%d,\"lora_alpha\":%g,\"lora_targets\":%u,"
                      "\"lora_dropout\":%g,",
                      o->lora_rank, o->lora_alpha, o->lora_targets, o->lora_dropout);
    if (o->init_random)
        tw_buf_printf(&b, "\"dim\":%d,\"layers\":%d,\"heads\":%d,\"kv_heads\":%d,\"ff\":%d,",
                      o->dim, o->layers, o->heads, o->kv_heads, o->ff);
    tw_buf_printf(&b,
                  "\"lr\":%g,\"lr_min\":%g,\"warmup\":%ld,\"schedule\":\"%s\",\"batch\":%d,"
                  "\"accum\":%d,\"ctx\":%d,\"steps\":%ld,\"eval_split\":%g,\"seed\":%llu,"
                  "\"clip\":%g,\"weight_decay\":%g},",
                  o->lr, o->lr_min >= 0 ? o->lr_min : o->lr / 10, o->warmup, sched[o->schedule],
                  o->batch, o->accum, o->ds.n_ctx, total, o->ds.eval_split,
                  (unsigned long long)o->seed, o->clip, o->weight_decay);
    tw_buf_printf(&b,
                  "\"train_rows\":%d,\"eval_rows\":%d,\"examples\":%ld,\"split\":%ld,"
                  "\"skipped\":%ld,",
                  r->ds.train.n, r->ds.eval.n, r->ds.st.n_examples, r->ds.st.n_split,
                  r->ds.st.n_bad);
    tw_buf_printf(&b, "\"step\":%ld,", res->steps);
    json_num(&b, "eval_loss_before", res->eval_before);
    json_num(&b, "eval_loss", res->eval_after);
    json_num(&b, "train_loss_first", res->loss_first);
    json_num(&b, "train_loss_last", res->loss_last);
    json_num(&b, "tokens_per_s", res->tokens_per_s);
    tw_buf_truncate(&b, b.len - 1);
    tw_buf_puts(&b, "}\n");
    if (b.err) {
        tw_buf_release(&b);
        return tw_errf(err, TW_ENOMEM, "out of memory writing run.json");
    }
    rc = path_join(path, sizeof(path), o->out, "run.json", err);
    if (rc == TW_OK)
        rc = write_atomic(path, b.data, b.len, err);
    tw_buf_release(&b);
    return rc;
}

/* ---- setup ---- */

static int load_model(struct ft_run *r, const struct gguf_file **meta, struct tw_err *err)
{
    const struct ft_opts *o = r->o;
    int rc;
    if (o->init_random) {
        struct train_llama_cfg cfg = {0};
        if (!o->vocab_from)
            return tw_errf(err, TW_EINVAL, "--init random needs --vocab-from FILE.gguf");
        if ((rc = gguf_open(o->vocab_from, &r->meta, err)) < 0 ||
            (rc = tok_new_from_gguf(r->meta, &r->tk, err)) < 0)
            return tw_err_ctx(err, "reading the vocabulary of '%s'", o->vocab_from);
        cfg.n_vocab = tok_n_vocab(r->tk);
        cfg.n_embd = o->dim;
        cfg.n_layer = o->layers;
        cfg.n_head = o->heads;
        cfg.n_head_kv = o->kv_heads ? o->kv_heads : o->heads;
        cfg.n_ff = o->ff;
        cfg.rope_type = TRAIN_ROPE_NORM;
        cfg.rope_base = 10000.0f;
        cfg.norm_eps = 1e-5f;
        cfg.tied_output = 1;
        if (o->heads <= 0 || o->dim % o->heads)
            return tw_errf(err, TW_EINVAL, "--dim %d is not a multiple of --heads %d", o->dim,
                           o->heads);
        if ((rc = train_llama_new(&cfg, o->seed, &r->m, err)) < 0)
            return tw_err_ctx(err, "building a random model");
        snprintf(r->arch, sizeof(r->arch), "llama");
        *meta = r->meta;
        return TW_OK;
    }
    if (!o->base)
        return tw_errf(err, TW_EINVAL, "no base model (--base FILE.gguf, or --init random)");
    if ((rc = llm_model_load(o->base, &r->lm, err)) < 0)
        return rc;
    *meta = llm_model_gguf(r->lm);
    if ((rc = tok_new_from_gguf(*meta, &r->tk, err)) < 0)
        return tw_err_ctx(err, "reading the tokenizer of '%s'", o->base);
    {
        struct gguf_str a = {0};
        gguf_get_str(*meta, "general.architecture", &a, err);
        tw_err_clear(err);
        snprintf(r->arch, sizeof(r->arch), "%.*s", (int)(a.len < 63 ? a.len : 63),
                 a.ptr ? a.ptr : "llama");
    }
    if ((rc = train_llama_from_llm(r->lm, !o->full, &r->m, err)) < 0)
        return tw_err_ctx(err, "preparing '%s' for training", o->base);
    if (!o->full) {
        if (o->lora_rank < 1 || o->lora_rank > TRAIN_LORA_MAX_RANK)
            return tw_errf(err, TW_EINVAL, "--lora-rank %d out of range [1, %d]", o->lora_rank,
                           TRAIN_LORA_MAX_RANK);
        if (!(o->lora_dropout >= 0 && o->lora_dropout < 1))
            return tw_errf(err, TW_EINVAL, "--lora-dropout %g out of range [0, 1)",
                           o->lora_dropout);
        rc = train_llama_add_lora(r->m, o->lora_targets, o->lora_rank, o->lora_alpha,
                                  o->lora_dropout, o->seed, err);
        if (rc < 0)
            return rc;
    }
    return TW_OK;
}

static int check_opts(const struct ft_opts *o, struct tw_err *err)
{
    if (!o->dataset)
        return tw_errf(err, TW_EINVAL, "no dataset (--dataset FILE.jsonl|DIR)");
    if (!o->out)
        return tw_errf(err, TW_EINVAL, "no output folder (--out DIR)");
    if (o->batch < 1 || o->batch > FT_MAX_BATCH || o->accum < 1 || o->accum > FT_MAX_BATCH)
        return tw_errf(err, TW_EINVAL, "--batch %d / --accum %d out of range [1, %d]", o->batch,
                       o->accum, FT_MAX_BATCH);
    if (o->steps < 0 || o->steps > FT_MAX_STEPS || o->epochs < 0 || o->epochs > 100000)
        return tw_errf(err, TW_EINVAL, "--steps %ld / --epochs %ld out of range", o->steps,
                       o->epochs);
    if (!(o->lr > 0 && o->lr < 10) || o->warmup < 0 || o->eval_every < 0 || o->save_every < 0)
        return tw_errf(err, TW_EINVAL, "--lr, --warmup, --eval-every or --save-every out of range");
    if (o->n_threads < 1 || o->n_threads > 1024)
        return tw_errf(err, TW_EINVAL, "--threads %d out of range [1, 1024]", o->n_threads);
    if (!(o->clip >= 0) || !(o->weight_decay >= 0 && o->weight_decay < 1))
        return tw_errf(err, TW_EINVAL, "--clip or --weight-decay out of range");
    if ((long)o->batch * o->ds.n_ctx > TRAIN_LLAMA_MAX_TOKENS)
        return tw_errf(err, TW_EINVAL, "--batch %d x --ctx %d exceeds %d tokens per forward",
                       o->batch, o->ds.n_ctx, TRAIN_LLAMA_MAX_TOKENS);
    return TW_OK;
}

static void run_release(struct ft_run *r)
{
    if (r->metrics)
        fclose(r->metrics);
    tw_free(r->in);
    tw_free(r->tgt);
    tw_free(r->mask);
    tw_free(r->perm);
    ds_release(&r->ds);
    train_llama_free(r->m);
    tw_pool_free(r->pool);
    tok_free(r->tk);
    llm_model_free(r->lm);
    gguf_close(r->meta);
}

static int open_outputs(struct ft_run *r, int resumed, struct tw_err *err)
{
    const struct ft_opts *o = r->o;
    char path[4096];
    const char *mp = o->metrics;
    int rc;
    if (mkdir(o->out, 0777) < 0 && errno != EEXIST)
        return tw_errf(err, TW_EIO, "cannot create '%s': %s", o->out, strerror(errno));
    if (!mp) {
        if ((rc = path_join(path, sizeof(path), o->out, "metrics.jsonl", err)) < 0)
            return rc;
        mp = path;
    }
    r->metrics = fopen(mp, resumed ? "a" : "w");
    if (!r->metrics)
        return tw_errf(err, TW_EIO, "cannot write '%s': %s", mp, strerror(errno));
    return TW_OK;
}

static int resume(struct ft_run *r, long *step, struct tw_err *err)
{
    char path[4096];
    struct gguf_file *f = NULL;
    int rc = path_join(path, sizeof(path), r->o->resume, "checkpoint.gguf", err);
    if (rc < 0 || (rc = gguf_open(path, &f, err)) < 0)
        return rc;
    rc = train_llama_checkpoint_load(r->m, f, step, &r->rng, err);
    gguf_close(f);
    if (rc < 0)
        return tw_err_ctx(err, "resuming from '%s'", path);
    return TW_OK;
}

/* ---- the loop ---- */

static int one_step(struct ft_run *r, long step, const struct train_sched *sched,
                    const struct train_adamw *opt, struct ft_event *ev, struct tw_err *err)
{
    const struct ft_opts *o = r->o;
    int B = o->batch, T = r->ds.train.T;
    long counts[FT_MAX_BATCH], total = 0;
    double t0 = tw_time_mono_s(), loss_sum = 0;
    float lr = train_sched_lr(sched, step);
    int rc;
    /* Counted targets of each micro-batch first: micro-batch a weighs counts[a] / total, so
     * the step's gradient is that of the mean loss over every counted target of the step. */
    for (int a = 0; a < o->accum; a++) {
        counts[a] = gather(r, step * o->accum + a);
        total += counts[a];
    }
    /* The gradients are zero here: the model starts with zero gradients and train_optim_step
     * leaves them zero after every step. */
    for (int a = 0; a < o->accum; a++) {
        float loss;
        if (counts[a] == 0)
            continue;
        gather(r, step * o->accum + a);
        rc = train_llama_forward(r->m, r->in, r->tgt, r->mask, B, T, &r->rng, &loss, err);
        if (rc < 0 || (rc = train_llama_backward(r->m, (float)counts[a] / (float)total, err)) < 0)
            return tw_err_ctx(err, "training step %ld", step + 1);
        loss_sum += (double)loss * (double)counts[a];
    }
    ev->grad_norm = train_optim_step(opt, lr, step + 1, r->p, r->n_p, o->clip, r->pool);
    ev->kind = FT_EV_STEP;
    ev->step = step + 1;
    ev->loss = (float)(loss_sum / (double)total);
    ev->lr = lr;
    ev->tokens_per_s = (double)B * o->accum * T / fmax(tw_time_mono_s() - t0, 1e-9);
    if (!isfinite(ev->loss))
        return tw_errf(err, TW_EINTERNAL, "training diverged at step %ld (loss %g); lower --lr",
                       step + 1, (double)ev->loss);
    return TW_OK;
}

static int write_outputs(struct ft_run *r, const struct gguf_file *meta, struct tw_err *err)
{
    const struct ft_opts *o = r->o;
    char path[4096];
    int rc;
    if (!o->full && !o->init_random) {
        rc = path_join(path, sizeof(path), o->out, "adapter.gguf", err);
        if (rc == TW_OK)
            rc = train_llama_lora_save(r->m, r->arch, path, err);
    } else {
        rc = path_join(path, sizeof(path), o->out, "model.gguf", err);
        if (rc == TW_OK)
            rc = train_llama_save_model(r->m, meta, 0, path, err);
    }
    if (rc == TW_OK) {
        struct ft_event ev = {.kind = FT_EV_SAVE, .path = path};
        emit(r, &ev);
    }
    return rc;
}

int ft_run(const struct ft_opts *o, struct ft_result *res, struct tw_err *err)
{
    struct ft_run r = {.o = o, .perm_epoch = -1};
    const struct gguf_file *meta = NULL;
    struct ds_opts dso = o->ds;
    struct train_sched sched;
    struct train_adamw opt = TRAIN_ADAMW_DEFAULT;
    struct ft_event ev = {0};
    struct gguf_str tmpl = {0};
    long step = 0, total, stop;
    double t_start, tokens = 0;
    int rc;
    memset(res, 0, sizeof(*res));
    res->eval_before = res->eval_after = res->loss_first = res->loss_last = NAN;
    if ((rc = check_opts(o, err)) < 0)
        return rc;
    if ((rc = load_model(&r, &meta, err)) < 0)
        goto out;
    gguf_get_str(meta, "tokenizer.chat_template", &tmpl, err);
    tw_err_clear(err);
    dso.chat_tmpl_text = tmpl.ptr;
    dso.chat_tmpl_len = (size_t)tmpl.len;
    if ((rc = ds_load(&r.ds, o->dataset, r.tk, &dso, err)) < 0)
        goto out;
    if ((rc = tw_pool_new(o->n_threads, &r.pool, err)) < 0)
        goto out;
    train_llama_set_pool(r.m, r.pool);
    r.p = train_llama_params(r.m, &r.n_p);
    train_rng_seed(&r.rng, mix64(o->seed ^ 0x64726f70ull));
    if (o->resume && (rc = resume(&r, &step, err)) < 0)
        goto out;
    r.in = tw_mallocarray((size_t)o->batch * dso.n_ctx, sizeof(int32_t));
    r.tgt = tw_mallocarray((size_t)o->batch * dso.n_ctx, sizeof(int32_t));
    r.mask = tw_malloc((size_t)o->batch * dso.n_ctx);
    r.perm = tw_mallocarray((size_t)r.ds.train.n, sizeof(size_t));
    if (!r.in || !r.tgt || !r.mask || !r.perm) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory for a batch of %d x %d tokens", o->batch,
                     dso.n_ctx);
        goto out;
    }
    if ((rc = open_outputs(&r, o->resume != NULL, err)) < 0)
        goto out;
    if (o->steps)
        total = o->steps;
    else
        total = (long)(((double)o->epochs * r.ds.train.n + (double)o->batch * o->accum - 1) /
                       ((double)o->batch * o->accum));
    if (total < 1)
        total = 1;
    if (step > total) {
        rc = tw_errf(err, TW_EINVAL, "checkpoint is at step %ld, past the %ld steps planned", step,
                     total);
        goto out;
    }
    stop = o->stop_at > 0 && o->stop_at < total ? o->stop_at : total;
    sched = (struct train_sched){o->schedule, o->lr, o->lr_min >= 0 ? o->lr_min : o->lr / 10,
                                 o->warmup, total};
    opt.weight_decay = o->weight_decay;
    {
        struct ft_event st = {.kind = FT_EV_START, .step = step, .total = total, .ds = &r.ds};
        for (int i = 0; i < r.n_p; i++) {
            st.n_base += (long)r.p[i].n;
            st.n_params += r.p[i].g ? (long)r.p[i].n : 0;
        }
        emit(&r, &st);
    }
    if (step == 0) {
        if ((rc = evaluate(&r, &res->eval_before, err)) < 0)
            goto out;
        if (r.ds.eval.n)
            metric_eval(&r, 0, res->eval_before);
    }
    t_start = tw_time_mono_s();
    while (step < stop) {
        if ((rc = one_step(&r, step, &sched, &opt, &ev, err)) < 0)
            goto out;
        step++;
        tokens += (double)o->batch * o->accum * dso.n_ctx;
        ev.total = total;
        if (isnan(res->loss_first))
            res->loss_first = ev.loss;
        res->loss_last = ev.loss;
        fprintf(r.metrics,
                "{\"step\":%ld,\"loss\":%.9g,\"lr\":%.9g,\"grad_norm\":%.9g,"
                "\"tokens_per_s\":%.6g}\n",
                step, ev.loss, ev.lr, ev.grad_norm, ev.tokens_per_s);
        fflush(r.metrics);
        emit(&r, &ev);
        if (o->eval_every && step % o->eval_every == 0 && step < total && r.ds.eval.n) {
            double l;
            if ((rc = evaluate(&r, &l, err)) < 0)
                goto out;
            metric_eval(&r, step, l);
        }
        if (o->save_every && step % o->save_every == 0 && step < stop &&
            (rc = save_checkpoint(&r, step, err)) < 0)
            goto out;
    }
    res->steps = step;
    res->tokens_per_s = tokens / fmax(tw_time_mono_s() - t_start, 1e-9);
    if ((rc = save_checkpoint(&r, step, err)) < 0)
        goto out;
    if (step == total) {
        if ((rc = evaluate(&r, &res->eval_after, err)) < 0)
            goto out;
        if (r.ds.eval.n)
            metric_eval(&r, step, res->eval_after);
        if ((rc = write_outputs(&r, meta, err)) < 0)
            goto out;
    }
    rc = write_run_json(&r, res, total, err);
    ev = (struct ft_event){.kind = FT_EV_DONE, .step = step, .total = total};
    if (rc == TW_OK)
        emit(&r, &ev);
out:
    run_release(&r);
    return rc;
}
