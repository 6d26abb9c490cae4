/* train_optim.c - the seeded RNG, AdamW, gradient clipping and learning-rate schedules.
 * Contracts in train.h. */
#include "nn/train.h"

#include "base/rng.h"

#include <math.h>

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

/* ---- AdamW ---- */

void train_adamw_step(const struct train_adamw *opt, float lr, long t, struct train_param *p,
                      int n_params)
{
    float b1 = opt->beta1, b2 = opt->beta2;
    float bc1 = 1.0f - (float)pow(b1, (double)t);
    float bc2 = 1.0f - (float)pow(b2, (double)t);
    for (int k = 0; k < n_params; k++) {
        float *restrict w = p[k].w, *restrict m = p[k].m, *restrict v = p[k].v;
        const float *restrict g = p[k].g;
        float decay = p[k].decay ? lr * opt->weight_decay : 0.0f;
        if (!g)
            continue;
        for (size_t i = 0; i < p[k].n; i++) {
            float mh, vh;
            w[i] -= decay * w[i];
            m[i] = b1 * m[i] + (1.0f - b1) * g[i];
            v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
            mh = m[i] / bc1;
            vh = v[i] / bc2;
            w[i] -= lr * mh / (sqrtf(vh) + opt->eps);
        }
    }
}

double train_clip_grad_norm(struct train_param *p, int n_params, double max_norm)
{
    double ss = 0, norm;
    for (int k = 0; k < n_params; k++)
        if (p[k].g)
            for (size_t i = 0; i < p[k].n; i++)
                ss += (double)p[k].g[i] * p[k].g[i];
    norm = sqrt(ss);
    if (max_norm > 0 && norm > max_norm)
        train_grad_scale(p, n_params, (float)(max_norm / norm));
    return norm;
}

void train_grad_scale(struct train_param *p, int n_params, float s)
{
    for (int k = 0; k < n_params; k++)
        if (p[k].g)
            for (size_t i = 0; i < p[k].n; i++)
                p[k].g[i] *= s;
}

void train_grad_zero(struct train_param *p, int n_params)
{
    for (int k = 0; k < n_params; k++)
        if (p[k].g)
            for (size_t i = 0; i < p[k].n; i++)
                p[k].g[i] = 0;
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
