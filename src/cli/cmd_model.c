/* cmd_model.c - `twin model <subcommand>`: model files (info, quantize, synth, merge, …).
 * Each subcommand lives in its own file as a TW_SUBCOMMAND(model, NAME, …). */
#include "cli/cli.h"

TW_COMMAND(model, "inspect, quantize, synthesize and merge model files")
{
    return cli_run_subcommand("model", argc, argv);
}
