/* model_merge.c - `twin model merge BASE ADAPTER[:SCALE]... OUT`: fold LoRA adapters into a base
 * model (nn/lora.h), as llama-export-lora does, optionally re-quantized. */
#include "base/pool.h"
#include "cli/cli.h"
#include "cli/cli_lora.h"
#include "nn/kq.h"
#include "nn/lora.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void merge_usage(FILE *f)
{
    fprintf(f,
            "usage: twin model merge [--scale S] [--type T] [--threads N] BASE ADAPTER[:SCALE]... "
            "OUT\n\n"
            "Folds LoRA adapters (llama.cpp's GGUF adapter format) into the base model BASE and\n"
            "writes OUT: every adapted weight becomes W + s * (B.A), s = SCALE * alpha / rank,\n"
            "as llama-export-lora computes it. Up to %d adapters; they add up.\n\n"
            "  --scale S     user scale for adapters given without :SCALE (default 1.0)\n"
            "  --type T      write every 2-D weight as T (%s);\n"
            "                default: merged weights F32 if the base weight is F32, else F16,\n"
            "                other tensors copied as they are (llama-export-lora's choice)\n"
            "  --threads N   worker threads (default: all CPUs)\n",
            LORA_MAX_ADAPTERS, kq_quantize_types());
}

TW_SUBCOMMAND(model, merge, "BASE ADAPTER[:SCALE] OUT: fold LoRA adapters into a model")
{
    struct tw_err err = TW_ERR_INIT;
    struct lora_merge_input in[LORA_MAX_ADAPTERS];
    struct lora_adapter *ads[LORA_MAX_ADAPTERS];
    struct lora_merge_stats st;
    struct tw_pool *pool = NULL;
    const char *pos[LORA_MAX_ADAPTERS + 2], *type = NULL;
    int n_pos = 0, n_in = 0, n_threads = 0, rc = 0;
    float def_scale = 1.0f;
    struct timespec t0, t1;

    if (cli_wants_help(argc, argv)) {
        merge_usage(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char *end;
        if ((!strcmp(a, "--scale") || !strcmp(a, "--type") || !strcmp(a, "--threads")) &&
            i + 1 >= argc)
            return cli_fail("model merge: option '%s' needs a value", a);
        if (!strcmp(a, "--scale")) {
            errno = 0;
            double v = strtod(argv[++i], &end);
            if (errno || *end || end == argv[i] || !isfinite(v))
                return cli_fail("model merge: --scale '%s' is not a number", argv[i]);
            def_scale = (float)v;
        } else if (!strcmp(a, "--type")) {
            type = argv[++i];
        } else if (!strcmp(a, "--threads")) {
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 256)
                return cli_fail("model merge: --threads wants a number from 1 to 256, not '%s'",
                                argv[i]);
            n_threads = (int)v;
        } else if (a[0] == '-' && a[1]) {
            return cli_fail("model merge: unknown option '%s'; see 'twin model merge --help'", a);
        } else if (n_pos < LORA_MAX_ADAPTERS + 2) {
            pos[n_pos++] = a;
        } else {
            return cli_fail("model merge: more than %d adapters", LORA_MAX_ADAPTERS);
        }
    }
    if (n_pos < 3) {
        merge_usage(stderr);
        return 2;
    }
    for (int i = 1; i < n_pos - 1; i++) {
        char path[4096];
        float s;
        rc = cli_lora_split(pos[i], def_scale, path, sizeof(path), &s);
        if (rc)
            goto done;
        if (lora_adapter_load(path, &ads[n_in], &err) < 0) {
            rc = cli_fail("model merge: %s", err.msg);
            goto done;
        }
        in[n_in].a = ads[n_in];
        in[n_in].scale = s;
        n_in++;
    }
    if (tw_pool_new(n_threads, &pool, &err) < 0) {
        rc = cli_fail("model merge: %s", err.msg);
        goto done;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (lora_merge_file(pos[0], in, n_in, pos[n_pos - 1], type, pool, &st, &err) < 0) {
        rc = cli_fail("model merge: %s", err.msg);
        goto done;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%s: %lld tensors, %lld merged from %d adapter%s%s%s in %.2f s\n", pos[n_pos - 1],
           (long long)st.n_tensors, (long long)st.n_merged, n_in, n_in == 1 ? "" : "s",
           type ? ", written as " : "", type ? type : "",
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
done:
    for (int i = 0; i < n_in; i++)
        lora_adapter_free(ads[i]);
    tw_pool_free(pool);
    return rc;
}
