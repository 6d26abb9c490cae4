/* cmd_version.c - `twin version`. */
#include "cli/cli.h"

TW_COMMAND(version, "print the version")
{
    (void)argc;
    (void)argv;
    printf("twin %s\n", cli_version);
    return 0;
}
