/* cli.h - the `twin` command line: git-style subcommands, one file per command.
 *
 * A command file declares itself with
 *
 *     TW_COMMAND(import, "import documents from files, folders and exports")
 *     {
 *         ... argc/argv as for main, argv[0] is "import" ...
 *         return 0;   // the process exit status
 *     }
 *
 * The Makefile collects every TW_COMMAND line of src/cli/cmd_*.c into the command table, so adding
 * a command touches no other file. Only cli/ writes to the terminal (STYLE §7).
 */
#ifndef TW_CLI_H
#define TW_CLI_H

#include <stdio.h>

struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

#define TW_COMMAND(name, summary)                                                                  \
    static int cmd_##name(int argc, char **argv);                                                  \
    const struct cli_command cli_command_##name = {#name, summary, cmd_##name};                    \
    static int cmd_##name(int argc, char **argv)

/* Prints "twin: <msg>\n" to stderr; returns 1 so commands can 'return cli_fail(...)'. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* True when argv has "-h" or "--help" before any "--". */
int cli_wants_help(int argc, char **argv);
/* The program version string ("0.1.0"). */
extern const char cli_version[];



/* Benchmarks: `twin bench NAME` runs one, `twin bench all` runs every one. A file
 * src/cli/bench_<area>.c declares its benchmarks like commands:
 *
 *     TW_BENCH(import, "documents/s and MB/s importing a corpus; change-log events/s")
 *     { ... argc/argv after "bench", argv[0] is "import" ...; return 0; }
 *
 * A benchmark prints throughput and, where a peer exists, the ratio to it measured in the same
 * run. The Makefile collects TW_BENCH lines of src/cli/bench_*.c like TW_COMMAND lines. */
struct cli_bench {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

#define TW_BENCH(name, summary)                                                                    \
    static int bench_##name(int argc, char **argv);                                                \
    const struct cli_bench cli_bench_##name = {#name, summary, bench_##name};                      \
    static int bench_##name(int argc, char **argv)

/* Subcommands of a command group (`twin model info`, `twin model quantize`, …), declared in any
 * src/cli/ file and collected by the Makefile like TW_COMMAND lines:
 *
 *     TW_SUBCOMMAND(model, quantize, "IN OUT TYPE: quantize a model")
 *     { ... argv[0] is "quantize" ... }
 *
 * The group's command runs them with cli_run_subcommand("model", argc, argv). */
struct cli_subcommand {
    const char *group;
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

#define TW_SUBCOMMAND(group, name, summary)                                                        \
    static int subcmd_##group##_##name(int argc, char **argv);                                     \
    const struct cli_subcommand cli_subcommand_##group##_##name = {#group, #name, summary,         \
                                                                   subcmd_##group##_##name};       \
    static int subcmd_##group##_##name(int argc, char **argv)

/* Dispatches argv[1] among the group's subcommands (argv[0] is the group); prints the group's
 * usage for --help or no argument. Returns the exit status. */
int cli_run_subcommand(const char *group, int argc, char **argv);
#endif
