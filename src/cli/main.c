/* main.c - `twin`: dispatches to the subcommands listed in the generated commands.h. */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char cli_version[] = "0.1.0";

#define X(name) extern const struct cli_command cli_command_##name;
#include "commands.h"
#undef X

static const struct cli_command *const commands[] = {
#define X(name) &cli_command_##name,
#include "commands.h"
#undef X
    NULL,
};

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("twin: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            return 0;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return 1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: twin [--version] [--help] <command> [<args>]\n\n"
               "twin builds an LLM twin of a person from their own writing.\n\n"
               "commands:\n");
    for (int i = 0; commands[i]; i++)
        fprintf(f, "   %-10s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "\n'twin <command> --help' describes a command. The data directory is ./twin-data\n"
               "(--data DIR or TWIN_DATA to change it).\n");
}

int main(int argc, char **argv)
{
    const char *name;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        if (argc > 2 && strcmp(name, "help") == 0) {
            for (int i = 0; commands[i]; i++) {
                if (!strcmp(commands[i]->name, argv[2])) {
                    char *hargv[] = {argv[2], "--help", NULL};
                    return commands[i]->run(2, hargv);
                }
            }
        }
        usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "version")) {
        printf("twin %s\n", cli_version);
        return 0;
    }
    for (int i = 0; commands[i]; i++)
        if (!strcmp(commands[i]->name, name))
            return commands[i]->run(argc - 1, argv + 1);
    fprintf(stderr, "twin: '%s' is not a twin command; see 'twin --help'\n", name);
    return 2;
}
