/* bench_model.c - `twin bench model`: prompt processing and generation speed of the decoder, in
 * llama-bench's terms (pp128, pp512, tg128), and how close generation is to memory bandwidth. */
#include "base/err.h"
#include "base/mem.h"
#include "cli/cli.h"
#include "nn/gguf.h"
#include "nn/kq.h"
#include "nn/llm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds used by all threads of the process: on a shared machine, tokens per CPU-second
 * shows the code's speed when wall time mostly shows the load. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct speed {
    double tok_s;     // tokens per wall-clock second (median run)
    double tok_cpu_s; // tokens per CPU-second of that run
};

/* Best of 'reps' copies of a buffer twice the size of the last-level caches: GB/s of
 * read + write traffic a single-threaded memcpy achieves. */
static double copy_bandwidth(void)
{
    size_t n = (size_t)256 << 20;
    char *a = tw_malloc(n), *b = tw_malloc(n);
    double best = 0;
    if (!a || !b) {
        tw_free(a);
        tw_free(b);
        return 0;
    }
    memset(a, 1, n);
    memset(b, 2, n);
    for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        memcpy(b, a, n);
        double dt = now_s() - t0;
        double gbs = 2.0 * (double)n / dt / 1e9; // bytes read + bytes written
        best = gbs > best ? gbs : best;
        a[r] = b[n - 1 - r]; // keep the copy observable
    }
    tw_free(a);
    tw_free(b);
    return best;
}

/* Median of 'reps' runs of feeding n_tok tokens in one batch (pp) or one at a time (tg). */
static int bench_run(struct llm_ctx *c, const int32_t *ids, int n_tok, int tg, int reps,
                     float *logits, struct speed *sp, struct tw_err *err)
{
    double t[5], cpu[5];
    for (int r = 0; r < reps; r++) {
        double t0, c0;
        llm_ctx_reset(c);
        if (tg && llm_decode(c, ids, 1, logits, 0, err) < 0) // BOS, not timed
            return -1;
        t0 = now_s();
        c0 = cpu_s();
        if (!tg) {
            if (llm_decode(c, ids, n_tok, logits, 0, err) < 0)
                return -1;
        } else {
            for (int i = 0; i < n_tok; i++)
                if (llm_decode(c, ids + 1 + i, 1, logits, 0, err) < 0)
                    return -1;
        }
        t[r] = now_s() - t0;
        cpu[r] = cpu_s() - c0;
    }
    for (int i = 1; i < reps; i++) // insertion sort by wall time for the median
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double x = t[j], y = cpu[j];
            t[j] = t[j - 1];
            cpu[j] = cpu[j - 1];
            t[j - 1] = x;
            cpu[j - 1] = y;
        }
    sp->tok_s = n_tok / t[reps / 2];
    sp->tok_cpu_s = cpu[reps / 2] > 0 ? n_tok / cpu[reps / 2] : 0;
    return 0;
}

static void bench_usage(FILE *f)
{
    fprintf(f, "usage: twin bench model [-m FILE] [-t N] [-r REPS] [--kv f32|f16]\n\n"
               "Prompt processing of 128 and 512 tokens (pp128, pp512) and generation of 128\n"
               "tokens (tg128) in tokens/s, median of REPS runs (default 3). For tg it also prints\n"
               "the bytes of weights read per token and what fraction of the measured memcpy\n"
               "bandwidth that traffic is. Default model: $TWIN_SHARED/data/models/stories260K.gguf.\n"
               "Make a bigger one with 'twin model synth'.\n");
}

TW_BENCH(model, "decoder tokens/s: pp128, pp512, tg128, and tg bytes/token vs memory bandwidth")
{
    const char *path = NULL, *shared = getenv("TWIN_SHARED");
    char defpath[1024];
    int n_threads = 0, reps = 3;
    enum llm_kv_type kv = LLM_KV_F32;
    struct tw_err err = TW_ERR_INIT;
    struct llm_model *m = NULL;
    struct llm_ctx *c = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    struct speed pp128, pp512, tg128;
    double bw;
    int rc = 1;

    if (cli_wants_help(argc, argv)) {
        bench_usage(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return cli_fail("bench model: option '%s' needs a value", argv[i]);
        if (!strcmp(argv[i], "-m"))
            path = v;
        else if (!strcmp(argv[i], "-t"))
            n_threads = (int)strtol(v, NULL, 10);
        else if (!strcmp(argv[i], "-r"))
            reps = (int)strtol(v, NULL, 10);
        else if (!strcmp(argv[i], "--kv"))
            kv = !strcmp(v, "f16") ? LLM_KV_F16 : LLM_KV_F32;
        else
            return cli_fail("bench model: unknown option '%s'; see 'twin bench model --help'",
                            argv[i]);
        i++;
    }
    if (reps < 1 || reps > 5)
        return cli_fail("bench model: -r must be in [1, 5]");
    if (!path) {
        snprintf(defpath, sizeof(defpath), "%s/data/models/stories260K.gguf",
                 shared ? shared : "../shared");
        path = defpath;
    }
    if (llm_model_load(path, &m, &err) < 0)
        return cli_fail("bench model: %s", err.msg);
    if (llm_ctx_new(m, 1024, kv, n_threads, &c, &err) < 0) {
        cli_fail("bench model: %s", err.msg);
        goto out;
    }
    ids = tw_mallocarray(520, sizeof(*ids));
    logits = tw_mallocarray((size_t)llm_n_vocab(m), sizeof(float));
    if (!ids || !logits) {
        cli_fail("bench model: out of memory");
        goto out;
    }
    for (int i = 0; i < 520; i++) // a fixed pseudo-random prompt inside the vocabulary
        ids[i] = (int32_t)((1u + (uint32_t)i * 2654435761u) % (uint32_t)llm_n_vocab(m));
    ids[0] = 1 % llm_n_vocab(m);
    if (bench_run(c, ids, 128, 0, reps, logits, &pp128, &err) < 0 ||
        bench_run(c, ids, 512, 0, reps, logits, &pp512, &err) < 0 ||
        bench_run(c, ids, 128, 1, reps, logits, &tg128, &err) < 0) {
        cli_fail("bench model: %s", err.msg);
        goto out;
    }
    bw = copy_bandwidth();
    {
        const struct llm_hparams *hp = llm_model_hparams(m);
        double bytes = (double)llm_model_weight_bytes(m);
        printf("model    %s: %s, dim %d, %d layers, %d/%d heads, ff %d, vocab %d\n", path,
               hp->arch == LLM_ARCH_QWEN2 ? "qwen2" : "llama", hp->n_embd, hp->n_layer,
               hp->n_head, hp->n_head_kv, hp->n_ff, hp->n_vocab);
        printf("threads  %d, kernels %s, kv %s, median of %d\n", llm_ctx_n_threads(c), kq_isa(),
               kv == LLM_KV_F16 ? "f16" : "f32", reps);
        printf("pp128    %10.1f tokens/s  (%.1f per CPU-second)\n", pp128.tok_s, pp128.tok_cpu_s);
        printf("pp512    %10.1f tokens/s  (%.1f per CPU-second)\n", pp512.tok_s, pp512.tok_cpu_s);
        printf("tg128    %10.1f tokens/s  (%.1f per CPU-second)\n", tg128.tok_s, tg128.tok_cpu_s);
        printf("tg       %.1f MB of weights per token -> %.2f GB/s; memcpy %.2f GB/s (read+write) "
               "-> %.0f%% of it\n",
               bytes / 1e6, bytes * tg128.tok_s / 1e9, bw,
               bw > 0 ? 100.0 * bytes * tg128.tok_s / 1e9 / bw : 0);
    }
    rc = 0;
out:
    tw_free(ids);
    tw_free(logits);
    llm_ctx_free(c);
    llm_model_free(m);
    return rc;
}
