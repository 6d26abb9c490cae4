/* subcommand.c - dispatch for command groups (TW_SUBCOMMAND, collected into subcommands.h). */
#include "cli/cli.h"

#include <string.h>

#define X(group, name) extern const struct cli_subcommand cli_subcommand_##group##_##name;
#include "subcommands.h"
#undef X

static const struct cli_subcommand *const subcommands[] = {
#define X(group, name) &cli_subcommand_##group##_##name,
#include "subcommands.h"
#undef X
    NULL,
};

static void group_usage(FILE *f, const char *group)
{
    fprintf(f, "usage: twin %s <subcommand> [<args>]\n\nsubcommands:\n", group);
    for (int i = 0; subcommands[i]; i++)
        if (!strcmp(subcommands[i]->group, group))
            fprintf(f, "   %-10s %s\n", subcommands[i]->name, subcommands[i]->summary);
}

int cli_run_subcommand(const char *group, int argc, char **argv)
{
    if (argc < 2) {
        group_usage(stderr, group);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        group_usage(stdout, group);
        return 0;
    }
    for (int i = 0; subcommands[i]; i++)
        if (!strcmp(subcommands[i]->group, group) && !strcmp(subcommands[i]->name, argv[1]))
            return subcommands[i]->run(argc - 1, argv + 1);
    fprintf(stderr, "twin: '%s' is not a 'twin %s' subcommand; see 'twin %s --help'\n", argv[1],
            group, group);
    return 2;
}
