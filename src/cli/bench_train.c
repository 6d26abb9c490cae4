/* bench_train.c - `twin bench train`: training tokens/s, peak memory and model FLOPs utilization
 * for LoRA (F32 and Q4_0 frozen base) and full fine-tuning of a ~100M-parameter Llama (the
 * shape `twin model synth --dim 768 --layers 16 --heads 12 --kv-heads 4 --ff 2048` writes, with
 * the stories260K vocabulary size), against this machine's f32 matmul peak.
 *
 * Each configuration runs in a child process so that its peak resident memory (getrusage
 * ru_maxrss) is its own. The model is built in memory (random weights; Q4_0 frozen matrices are
 * quantized with kq_quant and read in place, as QLoRA over a quantized GGUF reads them). */
#include "base/err.h"
#include "base/mem.h"
#include "base/pool.h"
#include "base/time.h"
#include "cli/cli.h"
#include "nn/gguf.h"
#include "nn/kq.h"
#include "nn/train.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

struct tb_opts {
    int dim, layers, heads, kv_heads, ff, vocab, ctx, steps, threads, rank, batch;
    unsigned modes; // bit per enum tb_mode to run
};

struct tb_result {
    int ok;
    double tok_s;      // training tokens per second (timed steps)
    double phase[3];   // seconds per timed step in forward, backward, optimizer
    double maxrss_mb;  // peak resident memory of the run
    double n_base;     // values of the whole model
    double n_train;    // trainable values
    double adapter_fl; // adapter FLOPs per token (forward + backward)
    char msg[300];
};

enum tb_mode { TB_LORA_F32 = 0, TB_LORA_Q4_0, TB_FULL_F32, TB_N };
static const char *tb_names[TB_N] = {"lora r=16 f32", "lora r=16 q4_0", "full f32"};

static double peak_gflops(int threads)
{
    const int n = 1024, T = 256;
    struct tw_pool *pool = NULL;
    struct tw_err err = TW_ERR_INIT;
    float *w = tw_mallocarray((size_t)n * n, sizeof(float));
    float *x = tw_mallocarray((size_t)T * n, sizeof(float));
    float *y = tw_mallocarray((size_t)T * n, sizeof(float));
    double best = 0;
    if (w && x && y && tw_pool_new(threads, &pool, &err) == 0) {
        for (size_t i = 0; i < (size_t)n * n; i++)
            w[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
        for (size_t i = 0; i < (size_t)T * n; i++)
            x[i] = (float)((i * 40503u) % 1000) / 1000.0f - 0.5f;
        for (int r = 0; r < 20; r++) {
            double t0 = tw_time_mono_s(), dt;
            kq_matmul(GGUF_T_F32, w, n, n, x, T, y, pool);
            dt = tw_time_mono_s() - t0;
            if (2.0 * n * n * T / dt / 1e9 > best)
                best = 2.0 * n * n * T / dt / 1e9;
        }
    }
    tw_pool_free(pool);
    tw_free(w);
    tw_free(x);
    tw_free(y);
    return best;
}

/* Gives every matrix of a frozen model (w NULL) random values in type t, read in place the way
 * QLoRA reads a quantized GGUF: no f32 copy of the base exists. */
static int fill_frozen(struct train_llama *m, enum gguf_ttype t, struct train_rng *rng,
                       void ***bufs, int *n_bufs, struct tw_err *err)
{
    int n;
    struct train_param *p = train_llama_params(m, &n);
    *bufs = tw_calloc((size_t)n, sizeof(void *));
    *n_bufs = n;
    if (!*bufs)
        return tw_errf(err, TW_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        int64_t n_in = p[i].ne[0], n_out = p[i].ne[1];
        size_t row = gguf_row_size(t, n_in);
        float *tmp;
        if (p[i].w || p[i].qdata)
            continue;
        (*bufs)[i] = tw_mallocarray((size_t)n_out, row);
        tmp = tw_mallocarray((size_t)n_in, sizeof(float));
        if (!(*bufs)[i] || !tmp) {
            tw_free(tmp);
            return tw_errf(err, TW_ENOMEM, "out of memory");
        }
        for (int64_t r = 0; r < n_out; r++) {
            for (int64_t j = 0; j < n_in; j++)
                tmp[j] = 0.04f * (train_rng_float(rng) - 0.5f);
            kq_quant(t, tmp, (char *)(*bufs)[i] + (size_t)r * row, n_in);
        }
        tw_free(tmp);
        if (train_llama_set_frozen(m, i, t, (*bufs)[i], err) < 0)
            return -1;
    }
    return TW_OK;
}

static void run_one(const struct tb_opts *o, enum tb_mode mode, struct tb_result *res)
{
    struct train_llama_cfg cfg = {.n_vocab = o->vocab,
                                  .n_embd = o->dim,
                                  .n_layer = o->layers,
                                  .n_head = o->heads,
                                  .n_head_kv = o->kv_heads,
                                  .n_ff = o->ff,
                                  .rope_type = TRAIN_ROPE_NORM,
                                  .rope_base = 10000.0f,
                                  .norm_eps = 1e-5f,
                                  .tied_output = 1};
    struct train_llama *m = NULL;
    struct tw_pool *pool = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_adamw opt = TRAIN_ADAMW_DEFAULT;
    struct train_param *p;
    struct train_rng rng;
    struct rusage ru;
    void **bufs = NULL;
    int n_bufs = 0, n, T = o->ctx;
    int B = o->batch;
    int32_t *tok = tw_mallocarray((size_t)B * T + 1, sizeof(int32_t));
    double t0 = 0;
    float loss;
    memset(res, 0, sizeof(*res));
    train_rng_seed(&rng, 1);
    if (!tok || tw_pool_new(o->threads, &pool, &err) < 0)
        goto out;
    if (mode == TB_FULL_F32 ? train_llama_new(&cfg, 1, &m, &err) < 0
                            : train_llama_new_frozen(&cfg, &m, &err) < 0)
        goto out;
    for (int i = 0; i <= B * T; i++)
        tok[i] = (int32_t)(train_rng_next(&rng) % (uint64_t)o->vocab);
    train_llama_set_pool(m, pool);
    if (mode != TB_FULL_F32 &&
        train_llama_add_lora(m, TRAIN_LORA_ALL, o->rank, 2.0f * o->rank, 0, 1, &err) < 0)
        goto out;
    if (mode != TB_FULL_F32 && fill_frozen(m, mode == TB_LORA_Q4_0 ? GGUF_T_Q4_0 : GGUF_T_F32, &rng,
                                           &bufs, &n_bufs, &err) < 0)
        goto out;
    p = train_llama_params(m, &n);
    for (int i = 0; i < n; i++) {
        res->n_base += (double)p[i].n;
        res->n_train += p[i].g ? (double)p[i].n : 0;
        if (strstr(p[i].name, "lora_a")) // A [r][n_in], with B [n_out][r] next
            res->adapter_fl += 6.0 * (double)o->rank * (double)(p[i].ne[0] + p[i + 1].ne[1]);
    }
    if (mode != TB_FULL_F32)
        res->n_base -= res->n_train; // N is the base model's size
    for (int s = 0; s <= o->steps; s++) {
        double tp[4];
        if (s == 1)
            t0 = tw_time_mono_s(); // step 0 warms up (allocations, page faults)
        /* as twin train runs a step: gradients start at zero, train_optim_step clips, updates
         * and zeroes them again */
        tp[0] = tw_time_mono_s();
        if (train_llama_forward(m, tok, tok + 1, NULL, B, T, NULL, &loss, &err) < 0)
            goto out;
        tp[1] = tw_time_mono_s();
        if (train_llama_backward(m, 1.0f, &err) < 0)
            goto out;
        tp[2] = tw_time_mono_s();
        train_optim_step(&opt, 1e-4f, s + 1, p, n, 1.0, pool);
        tp[3] = tw_time_mono_s();
        for (int k = 0; s > 0 && k < 3; k++)
            res->phase[k] += (tp[k + 1] - tp[k]) / o->steps;
    }
    res->tok_s = (double)o->steps * B * T / (tw_time_mono_s() - t0);
    getrusage(RUSAGE_SELF, &ru);
    res->maxrss_mb = (double)ru.ru_maxrss / 1024.0;
    res->ok = 1;
out:
    if (!res->ok)
        snprintf(res->msg, sizeof(res->msg), "%s", err.msg[0] ? err.msg : "out of memory");
    for (int i = 0; i < n_bufs; i++)
        tw_free(bufs ? bufs[i] : NULL);
    tw_free(bufs);
    train_llama_free(m);
    tw_pool_free(pool);
    tw_free(tok);
}

/* Runs one configuration (or, for TB_N, the peak measurement: tok_s is the GFLOP/s) in a child
 * process, so that nothing it allocates counts in a later child's peak RSS; its result comes
 * back through a pipe. */
static int run_child(const struct tb_opts *o, enum tb_mode mode, struct tb_result *res)
{
    int fd[2], status = 0;
    pid_t pid;
    memset(res, 0, sizeof(*res));
    if (pipe(fd) < 0)
        return -1;
    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        struct tb_result r;
        close(fd[0]);
        if (mode == TB_N) { // the matmul peak, kept out of the parent's memory too
            memset(&r, 0, sizeof(r));
            r.tok_s = peak_gflops(o->threads);
            r.ok = 1;
        } else {
            run_one(o, mode, &r);
        }
        if (write(fd[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
            _exit(2);
        _exit(0);
    }
    close(fd[1]);
    if (read(fd[0], res, sizeof(*res)) != (ssize_t)sizeof(*res))
        snprintf(res->msg, sizeof(res->msg), "child process failed");
    close(fd[0]);
    waitpid(pid, &status, 0);
    return 0;
}

static double tb_peak(const struct tb_opts *o)
{
    struct tb_result r;
    return run_child(o, TB_N, &r) == 0 && r.ok ? r.tok_s : 0;
}

static int tb_int(const char *opt, const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return cli_fail("bench train: %s '%s' must be an integer in [%d, %d]", opt, s, lo, hi);
    *out = (int)v;
    return 0;
}

TW_BENCH(train, "training tokens/s, peak memory and MFU: LoRA (f32, q4_0) and full, ~100M model")
{
    struct tb_opts o = {768, 16, 12, 4, 2048, 512, 128, 2, 2, 16, 1, (1u << TB_N) - 1};
    struct {
        const char *name;
        int *v;
        int lo, hi;
    } flags[] = {{"--dim", &o.dim, 32, 8192},    {"--layers", &o.layers, 1, 256},
                 {"--heads", &o.heads, 1, 256},  {"--kv-heads", &o.kv_heads, 1, 256},
                 {"--ff", &o.ff, 32, 65536},     {"--ctx", &o.ctx, 8, 4096},
                 {"--steps", &o.steps, 1, 1000}, {"--threads", &o.threads, 1, 256},
                 {"--rank", &o.rank, 1, 256},    {"--batch", &o.batch, 1, 64}};
    struct tb_result res[TB_N];
    double peak, peak2;
    memset(res, 0, sizeof(res));
    if (cli_wants_help(argc, argv)) {
        printf("usage: twin bench train [--dim 768 --layers 16 --heads 12 --kv-heads 4 --ff 2048]\n"
               "                        [--ctx 128] [--batch 1] [--steps 2] [--threads 2]\n"
               "                        [--rank 16] [--mode all|lora|qlora|full]\n");
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        size_t k;
        if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
            static const char *mode_names[] = {"lora", "qlora", "full"};
            const char *v = argv[++i];
            o.modes = 0;
            for (int mo = 0; mo < TB_N; mo++)
                if (!strcmp(v, "all") || !strcmp(v, mode_names[mo]))
                    o.modes = 1u << mo;
            if (!strcmp(v, "all"))
                o.modes = (1u << TB_N) - 1;
            if (!o.modes)
                return cli_fail("bench train: --mode '%s' must be all, lora, qlora or full", v);
            continue;
        }
        for (k = 0; k < sizeof(flags) / sizeof(flags[0]); k++)
            if (!strcmp(argv[i], flags[k].name))
                break;
        if (k == sizeof(flags) / sizeof(flags[0]) || i + 1 >= argc)
            return cli_fail("bench train: unknown option or missing value '%s'", argv[i]);
        if (tb_int(argv[i], argv[i + 1], flags[k].lo, flags[k].hi, flags[k].v))
            return 1;
        i++;
    }
    if (o.dim % o.heads || o.heads % o.kv_heads || (o.dim / o.heads) % 2 || o.dim % 32)
        return cli_fail("bench train: --dim must be a multiple of 32 and of --heads, --heads of "
                        "--kv-heads, with an even head size");
    /* The peak is taken before, between and after the runs and the highest kept: a matmul
     * slowed by another process on the machine would otherwise inflate every MFU. */
    peak = tb_peak(&o);
    for (int mode = 0; mode < TB_N; mode++) {
        if (!(o.modes & (1u << mode)))
            continue;
        if (run_child(&o, (enum tb_mode)mode, &res[mode]) < 0)
            snprintf(res[mode].msg, sizeof(res[mode].msg), "fork failed");
        peak2 = tb_peak(&o);
        peak = peak2 > peak ? peak2 : peak;
    }
    printf("train: dim %d, %d layers, %d/%d heads, ff %d, vocab %d; ctx %d, batch %d, %d timed "
           "steps, %d threads\n",
           o.dim, o.layers, o.heads, o.kv_heads, o.ff, o.vocab, o.ctx, o.batch, o.steps, o.threads);
    printf("f32 matmul peak (kq_matmul 1024x1024 x 256 tokens): %.1f GFLOP/s\n", peak);
    printf("%-16s %10s %12s %10s %10s %8s\n", "mode", "params", "trainable", "tokens/s", "peak MB",
           "MFU");
    for (int mode = 0; mode < TB_N; mode++) {
        const struct tb_result *r = &res[mode];
        double flops_tok, mfu;
        if (!(o.modes & (1u << mode)))
            continue;
        if (!r->ok) {
            printf("%-16s failed: %s\n", tb_names[mode], r->msg);
            continue;
        }
        /* full: 6N per token (forward 2N, backward 4N); LoRA: the frozen base costs 4N (forward
         * and the input gradient, no weight gradient) plus the adapters' own FLOPs */
        flops_tok = mode == TB_FULL_F32 ? 6.0 * r->n_base : 4.0 * r->n_base + r->adapter_fl;
        mfu = peak > 0 ? flops_tok * r->tok_s / (peak * 1e9) : 0;
        printf("%-16s %9.1fM %11.2fM %10.1f %10.0f %7.1f%%\n", tb_names[mode], r->n_base / 1e6,
               r->n_train / 1e6, r->tok_s, r->maxrss_mb, 100.0 * mfu);
    }
    printf("seconds per step:  %10s %10s %10s\n", "forward", "backward", "optimizer");
    for (int mode = 0; mode < TB_N; mode++)
        if ((o.modes & (1u << mode)) && res[mode].ok)
            printf("  %-16s %10.3f %10.3f %10.3f\n", tb_names[mode], res[mode].phase[0],
                   res[mode].phase[1], res[mode].phase[2]);
    return 0;
}
