/* train_optim.c - the seeded RNG, AdamW, gradient clipping and learning-rate schedules.
 * Contracts in train.h. */
#include "nn/train.h"

#include "base/mem.h"
#include "base/rng.h"

#include <math.h>
#include <string.h>

/* ---- RNG ---- */

void train_rng_seed(struct train_rng *rng, uint64_t seed)
{
    tw_rng_seed(rng->s, seed);
}

uint64_t train_rng_next(struct train_rng *rng)
{
    return tw_rng_next(rng->s);
}

float train_rng_float(struct train_rng *rng)
{
    return (float)(train_rng_next(rng) >> 40) * (1.0f / 16777216.0f);
}

static double rng_double(struct train_rng *rng)
{
    return (double)(train_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
}

double train_rng_normal(struct train_rng *rng)
{
    double u1 = rng_double(rng), u2 = rng_double(rng);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void train_rng_save(const struct train_rng *rng, uint8_t out[TRAIN_RNG_STATE_BYTES])
{
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 8; b++)
            out[i * 8 + b] = (uint8_t)(rng->s[i] >> (8 * b));
}

int train_rng_restore(struct train_rng *rng, const uint8_t in[TRAIN_RNG_STATE_BYTES],
                      struct tw_err *err)
{
    struct train_rng r = {{0, 0, 0, 0}};
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 8; b++)
            r.s[i] |= (uint64_t)in[i * 8 + b] << (8 * b);
    if (!(r.s[0] | r.s[1] | r.s[2] | r.s[3]))
        return tw_errf(err, TW_EFORMAT, "rng state is all zero (xoshiro256** would stay zero)");
    *rng = r;
    return TW_OK;
}

/* ---- AdamW, clipping: element-wise passes over every gradient, split across a pool ----
 *
 * Every tensor with a gradient is cut into units of OPT_CHUNK values (the last one shorter), and
 * the units of all tensors, in tensor order, are split into contiguous ranges, one per thread.
 * The updates are element-wise, so the split cannot change them; the squared norm is summed per
 * unit and the unit sums are added in unit order, so it does not depend on the split either. */

#define OPT_CHUNK 32768

enum opt_kind { OPT_NORM, OPT_SCALE, OPT_ZERO, OPT_ADAMW };

struct opt_ctx {
    enum opt_kind kind;
    struct train_param *p;
    int n_params;
    long n_units;
    double *part; // OPT_NORM: [n_units] sums of squares
    float s;      // OPT_SCALE: the factor; OPT_ADAMW: the gradients' factor if 'scaled'
    const struct train_adamw *opt;
    float lr, bc1, bc2; // OPT_ADAMW
    int scaled, zero;   // OPT_ADAMW: scale g by s first (clipping); zero g after
};

static long opt_units(const struct train_param *p, int n_params)
{
    long n = 0;
    for (int k = 0; k < n_params; k++)
        if (p[k].g)
            n += (long)((p[k].n + OPT_CHUNK - 1) / OPT_CHUNK);
    return n;
}

static double opt_sumsq(const float *restrict g, size_t n)
{
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0}; // 8 independent chains, in a fixed order
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += (double)g[i + k] * g[i + k];
    for (; i < n; i++)
        s[i % 8] += (double)g[i] * g[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* g * s is what clipping would have stored in g: the same float product, then the same update. */
static void opt_adamw(const struct opt_ctx *c, const struct train_param *p, size_t i0, size_t i1)
{
    float *restrict w = p->w + i0, *restrict m = p->m + i0, *restrict v = p->v + i0;
    float *restrict g = p->g + i0;
    float b1 = c->opt->beta1, b2 = c->opt->beta2, bc1 = c->bc1, bc2 = c->bc2, lr = c->lr;
    float eps = c->opt->eps, decay = p->decay ? c->lr * c->opt->weight_decay : 0.0f, s = c->s;
    size_t n = i1 - i0;
    for (size_t i = 0; i < n; i++) {
        float mh, vh, wi = w[i] - decay * w[i], gi = c->scaled ? g[i] * s : g[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        mh = m[i] / bc1;
        vh = v[i] / bc2;
        w[i] = wi - lr * mh / (sqrtf(vh) + eps);
    }
    if (c->zero)
        memset(g, 0, n * sizeof(float));
}

static void opt_unit(const struct opt_ctx *c, struct train_param *p, long u, size_t i0, size_t i1)
{
    switch (c->kind) {
    case OPT_NORM:
        c->part[u] = opt_sumsq(p->g + i0, i1 - i0);
        break;
    case OPT_SCALE:
        for (size_t i = i0; i < i1; i++)
            p->g[i] *= c->s;
        break;
    case OPT_ZERO:
        memset(p->g + i0, 0, (i1 - i0) * sizeof(float));
        break;
    case OPT_ADAMW:
        opt_adamw(c, p, i0, i1);
        break;
    }
}

static void opt_worker(void *arg, int ith, int nth)
{
    const struct opt_ctx *c = arg;
    long u0, u1, u = 0;
    tw_pool_slice(c->n_units, ith, nth, &u0, &u1);
    for (int k = 0; k < c->n_params && u < u1; k++) {
        struct train_param *p = &c->p[k];
        long nu;
        if (!p->g)
            continue;
        nu = (long)((p->n + OPT_CHUNK - 1) / OPT_CHUNK);
        for (long j = 0; j < nu; j++, u++) {
            size_t i0 = (size_t)j * OPT_CHUNK;
            if (u >= u0 && u < u1)
                opt_unit(c, p, u, i0, p->n - i0 < OPT_CHUNK ? p->n : i0 + OPT_CHUNK);
        }
    }
}

static void opt_run(struct opt_ctx *c, struct tw_pool *pool)
{
    c->n_units = opt_units(c->p, c->n_params);
    if (c->n_units)
        tw_pool_run(pool, opt_worker, c);
}

void train_adamw_step(const struct train_adamw *opt, float lr, long t, struct train_param *p,
                      int n_params, struct tw_pool *pool)
{
    struct opt_ctx c = {.kind = OPT_ADAMW, .p = p, .n_params = n_params, .opt = opt, .lr = lr};
    c.bc1 = 1.0f - (float)pow(opt->beta1, (double)t);
    c.bc2 = 1.0f - (float)pow(opt->beta2, (double)t);
    opt_run(&c, pool);
}

/* The global norm: squares summed per unit, unit sums added in unit order. */
static double opt_norm(struct train_param *p, int n_params, struct tw_pool *pool)
{
    struct opt_ctx c = {.kind = OPT_NORM, .p = p, .n_params = n_params};
    double ss = 0, one;
    c.n_units = opt_units(p, n_params);
    c.part = c.n_units > 1 ? tw_mallocarray((size_t)c.n_units, sizeof(double)) : NULL;
    if (c.part) {
        tw_pool_run(pool, opt_worker, &c);
        for (long u = 0; u < c.n_units; u++)
            ss += c.part[u];
        tw_free(c.part);
    } else { // one unit, or no memory: the same sums in the same order, on this thread
        c.part = &one;
        for (int k = 0; k < n_params; k++)
            for (size_t i0 = 0; p[k].g && i0 < p[k].n; i0 += OPT_CHUNK) {
                opt_unit(&c, &p[k], 0, i0, p[k].n - i0 < OPT_CHUNK ? p[k].n : i0 + OPT_CHUNK);
                ss += one;
            }
    }
    return sqrt(ss);
}

double train_clip_grad_norm(struct train_param *p, int n_params, double max_norm,
                            struct tw_pool *pool)
{
    double norm = opt_norm(p, n_params, pool);
    if (max_norm > 0 && norm > max_norm)
        train_grad_scale(p, n_params, (float)(max_norm / norm), pool);
    return norm;
}

double train_optim_step(const struct train_adamw *opt, float lr, long t, struct train_param *p,
                        int n_params, double max_norm, struct tw_pool *pool)
{
    struct opt_ctx c = {
        .kind = OPT_ADAMW, .p = p, .n_params = n_params, .opt = opt, .lr = lr, .zero = 1};
    double norm = opt_norm(p, n_params, pool);
    c.scaled = max_norm > 0 && norm > max_norm;
    c.s = c.scaled ? (float)(max_norm / norm) : 1.0f;
    c.bc1 = 1.0f - (float)pow(opt->beta1, (double)t);
    c.bc2 = 1.0f - (float)pow(opt->beta2, (double)t);
    opt_run(&c, pool);
    return norm;
}

void train_grad_scale(struct train_param *p, int n_params, float s, struct tw_pool *pool)
{
    struct opt_ctx c = {.kind = OPT_SCALE, .p = p, .n_params = n_params, .s = s};
    opt_run(&c, pool);
}

void train_grad_zero(struct train_param *p, int n_params, struct tw_pool *pool)
{
    struct opt_ctx c = {.kind = OPT_ZERO, .p = p, .n_params = n_params};
    opt_run(&c, pool);
}

/* ---- schedule ---- */

float train_sched_lr(const struct train_sched *s, long step)
{
    long decay_steps = s->total - s->warmup;
    double prog;
    if (step < 0)
        step = 0;
    if (step < s->warmup)
        return s->lr_max * (float)(step + 1) / (float)s->warmup;
    if (s->decay == TRAIN_DECAY_CONSTANT)
        return s->lr_max;
    if (decay_steps <= 0)
        return s->lr_min;
    prog = (double)(step - s->warmup) / (double)decay_steps;
    if (prog > 1)
        prog = 1;
    if (s->decay == TRAIN_DECAY_LINEAR)
        return (float)(s->lr_max + (s->lr_min - s->lr_max) * prog);
    return (float)(s->lr_min + 0.5 * (s->lr_max - s->lr_min) * (1 + cos(3.141592653589793 * prog)));
}
