/* cli_lora.h - what commands that load a decoder share for LoRA adapters: the FILE[:SCALE]
 * syntax, and `--lora FILE[:SCALE]` (repeatable) applied at run time (nn/lora.h,
 * llm_model_apply_lora).
 *
 *     struct cli_lora lora = CLI_LORA_INIT;
 *     ... if (!strcmp(a, "--lora")) { if (cli_lora_add(&lora, v)) return 1; } ...
 *     ... after llm_model_load: if (cli_lora_apply(&lora, model)) goto fail; ...
 *     cli_lora_release(&lora);   // after llm_model_free: the model borrows the adapters
 */
#ifndef TW_CLI_LORA_H
#define TW_CLI_LORA_H

#include "nn/llm.h"
#include "nn/lora.h"

#include <stddef.h>

struct cli_lora {
    int n;
    const char *spec[LORA_MAX_ADAPTERS]; // the FILE[:SCALE] arguments (borrowed from argv)
    struct lora_adapter *a[LORA_MAX_ADAPTERS];
};

#define CLI_LORA_INIT {0}

/* Splits "FILE" or "FILE:SCALE" (the last ':' followed by a finite number; otherwise the whole
 * argument is the path) into path (cap bytes) and *scale (def when absent). Prints the error and
 * returns 1 if the path is empty or too long, else 0. */
int cli_lora_split(const char *arg, float def, char *path, size_t cap, float *scale);
/* Records one --lora argument. Prints the error and returns 1 past LORA_MAX_ADAPTERS. */
int cli_lora_add(struct cli_lora *l, const char *spec);
/* Loads every recorded adapter and applies it to m at its scale (default 1). Prints the error
 * ("twin: --lora 'x.gguf': ...") and returns 1 on failure, else 0. */
int cli_lora_apply(struct cli_lora *l, struct llm_model *m);
/* Frees the adapters (after the model that borrows them). */
void cli_lora_release(struct cli_lora *l);

#endif
