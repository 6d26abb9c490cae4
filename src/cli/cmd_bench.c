/* cmd_bench.c - `twin bench NAME|all`: runs the benchmarks of src/cli/bench_*.c. */
#include "cli/cli.h"

#include <string.h>

#define X(name) extern const struct cli_bench cli_bench_##name;
#include "benches.h"
#undef X

static const struct cli_bench *const benches[] = {
#define X(name) &cli_bench_##name,
#include "benches.h"
#undef X
    NULL,
};

static void bench_usage(FILE *f)
{
    fprintf(f, "usage: twin bench <name>|all [<args>]\n\nbenchmarks:\n");
    for (int i = 0; benches[i]; i++)
        fprintf(f, "   %-10s %s\n", benches[i]->name, benches[i]->summary);
    fprintf(f, "\nA benchmark prints throughput and, where a peer exists, the ratio to it measured\n"
               "in the same run. Build with 'make release' first for meaningful figures.\n");
}

TW_COMMAND(bench, "run benchmarks (twin bench --help lists them)")
{
    int rc = 0, found = 0;
    if (argc < 2 || cli_wants_help(2, argv)) {
        bench_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 0; benches[i]; i++) {
        if (strcmp(argv[1], "all") && strcmp(argv[1], benches[i]->name))
            continue;
        found = 1;
        if (!strcmp(argv[1], "all")) {
            char *bargv[] = {(char *)benches[i]->name, NULL};
            printf("== bench %s\n", benches[i]->name);
            fflush(stdout);
            rc |= benches[i]->run(1, bargv);
        } else {
            rc |= benches[i]->run(argc - 1, argv + 1);
        }
    }
    if (!found)
        return cli_fail("no benchmark named '%s'; see 'twin bench --help'", argv[1]);
    return rc ? 1 : 0;
}
