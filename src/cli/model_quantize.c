/* model_quantize.c - `twin model quantize IN OUT TYPE`: convert a GGUF model's weights. */
#include "base/pool.h"
#include "cli/cli.h"
#include "nn/kq.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

TW_SUBCOMMAND(model, quantize, "IN OUT TYPE: convert a GGUF model's weights (q4_k_m, q8_0, ...)")
{
    struct tw_err err = TW_ERR_INIT;
    struct tw_pool *pool = NULL;
    struct kq_quantize_stats st;
    struct timespec t0, t1;
    int n_threads = 0, rc;
    const char *pos[3];
    int n_pos = 0;

    if (cli_wants_help(argc, argv)) {
        printf("usage: twin model quantize [--threads N] IN OUT TYPE\n\n"
               "Writes a copy of the GGUF model IN to OUT with its 2-D weights in TYPE:\n"
               "  %s\n"
               "Plain types convert every 2-D weight (like llama-quantize --pure); q4_k_m and\n"
               "q5_k_m are llama.cpp's mixes. Norms and biases stay as they are. The bytes are\n"
               "those llama-quantize writes without an importance matrix.\n",
               kq_quantize_types());
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 256)
                return cli_fail("--threads wants a number from 1 to 256, not '%s'", argv[i]);
            n_threads = (int)v;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_fail("unknown option '%s'; see 'twin model quantize --help'", argv[i]);
        } else if (n_pos < 3) {
            pos[n_pos++] = argv[i];
        } else {
            return cli_fail("too many arguments; usage: twin model quantize IN OUT TYPE");
        }
    }
    if (n_pos != 3)
        return cli_fail("usage: twin model quantize [--threads N] IN OUT TYPE (TYPE: %s)",
                        kq_quantize_types());
    if (tw_pool_new(n_threads, &pool, &err) < 0)
        return cli_fail("%s", err.msg);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = kq_quantize_file(pos[0], pos[1], pos[2], pool, &st, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    tw_pool_free(pool);
    if (rc < 0)
        return cli_fail("%s", err.msg);
    printf("%s: %lld tensors, %lld converted to %s, %.2f MB -> %.2f MB in %.2f s\n", pos[1],
           (long long)st.n_tensors, (long long)st.n_quantized, pos[2], st.bytes_in / 1e6,
           st.bytes_out / 1e6, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
    return 0;
}
