/* cmd_train.c - `twin train`: LoRA / QLoRA / full fine-tuning of a GGUF model, or training a
 * small model from scratch, through the training driver (train/ft.h). Progress goes to stderr:
 * a bar on a terminal, plain lines otherwise. */
#include "base/err.h"
#include "base/progress.h"
#include "cli/cli.h"
#include "nn/chat.h"
#include "train/ft.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void train_usage(FILE *f)
{
    fprintf(
        f,
        "usage: twin train --base FILE.gguf --dataset FILE.jsonl|DIR --out DIR [options]\n"
        "       twin train --init random --vocab-from FILE.gguf --dim D --layers L --heads H\n"
        "                  [--kv-heads K] --ff F --dataset DIR --out DIR [options]\n\n"
        "Dataset: JSONL lines {\"messages\":[{\"role\",\"content\"},...]} or {\"instruction\",\n"
        "\"input\",\"output\"} (loss on assistant tokens only), or plain text files / a folder.\n\n"
        "  --lora-rank R          adapter rank (default 16)\n"
        "  --lora-alpha A         adapter alpha (default 32; scale = alpha / rank)\n"
        "  --lora-targets LIST    q,k,v,o,gate,up,down or all (default all)\n"
        "  --lora-dropout P       dropout on adapter inputs (default 0)\n"
        "  --full                 train every weight instead of adapters (writes model.gguf)\n"
        "  --epochs N | --steps N length of the run (default 1 epoch)\n"
        "  --lr LR                peak learning rate (default 2e-4)\n"
        "  --lr-min LR            final learning rate (default lr / 10)\n"
        "  --warmup N             linear warmup steps (default 20)\n"
        "  --schedule S           cosine, linear or constant (default cosine)\n"
        "  --batch B --accum A    rows per micro-batch, micro-batches per step (default 1, 1)\n"
        "  --ctx T                tokens per row (default 256)\n"
        "  --eval-split F         held-out fraction (default 0.1) or --eval FILE|DIR\n"
        "  --eval-every N         evaluate every N steps (default: first and last only)\n"
        "  --save-every N         checkpoint every N steps (default: at the end)\n"
        "  --stop-at N            stop after step N with a checkpoint (resume later)\n"
        "  --resume DIR           continue from DIR/checkpoint.gguf (same options)\n"
        "  --seed S               seed of the split, order, adapters, dropout (default 42)\n"
        "  --threads N            threads (default 1)\n"
        "  --clip C               global gradient norm limit (default 1; 0 = off)\n"
        "  --weight-decay W       AdamW weight decay (default 0)\n"
        "  --chat-template NAME   override the model's template (chatml, llama3, ...)\n"
        "  --skip-bad             skip malformed JSONL lines instead of failing\n"
        "  --metrics FILE         JSON lines of metrics (default DIR/metrics.jsonl)\n"
        "  --quiet                no progress output\n\n"
        "Outputs in --out: adapter.gguf (LoRA; load with 'twin generate --lora') or\n"
        "model.gguf (--full, --init random), metrics.jsonl, run.json, checkpoint.gguf.\n");
}

struct train_ui {
    struct tw_progress bar;
    int started, quiet, tty;
    long last_line;
};

static void on_event(void *ctx, const struct ft_event *ev)
{
    struct train_ui *ui = ctx;
    if (ui->quiet)
        return;
    switch (ev->kind) {
    case FT_EV_START: {
        const struct ds_stats *s = &ev->ds->st;
        fprintf(stderr,
                "train: %ld examples from %ld files (%ld tokens, %ld in the loss), %ld split for "
                "the context, %ld skipped; %d train rows, %d eval rows\n",
                s->n_examples, s->n_files, s->n_tokens, s->n_counted, s->n_split, s->n_bad,
                ev->ds->train.n, ev->ds->eval.n);
        fprintf(stderr, "train: %ld trainable of %ld values; steps %ld..%ld\n", ev->n_params,
                ev->n_base, ev->step + 1, ev->total);
        tw_progress_init(&ui->bar, stderr, "train", (uint64_t)ev->total);
        ui->bar.done = (uint64_t)ev->step;
        ui->started = 1;
        break;
    }
    case FT_EV_STEP:
        if (ui->tty) {
            snprintf(ui->bar.label, sizeof(ui->bar.label), "train loss %.3f", ev->loss);
            tw_progress_update(&ui->bar, (uint64_t)ev->step);
        } else {
            fprintf(stderr, "step %ld/%ld  loss %.4f  lr %.3g  grad_norm %.3g  %.0f tok/s\n",
                    ev->step, ev->total, ev->loss, ev->lr, ev->grad_norm, ev->tokens_per_s);
        }
        break;
    case FT_EV_EVAL:
        if (ui->tty && ui->started)
            fputc('\n', stderr);
        fprintf(stderr, "eval at step %ld: loss %.4f  ppl %.3f\n", ev->step, ev->eval_loss,
                exp(ev->eval_loss));
        break;
    case FT_EV_SAVE:
        if (ui->tty && ui->started)
            fputc('\n', stderr);
        fprintf(stderr, "wrote %s\n", ev->path);
        break;
    case FT_EV_DONE:
        if (ui->tty && ui->started)
            tw_progress_finish(&ui->bar);
        break;
    }
}

static int num(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return cli_fail("train: %s '%s' must be a number in [%g, %g]", opt, s, lo, hi);
    *out = v;
    return 0;
}

static int parse(int argc, char **argv, struct ft_opts *o, struct train_ui *ui)
{
    struct tw_err err = TW_ERR_INIT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x = 0;
        int rc = 0;
        if (!strcmp(a, "--full")) {
            o->full = 1;
            continue;
        } else if (!strcmp(a, "--skip-bad")) {
            o->ds.skip_bad = 1;
            continue;
        } else if (!strcmp(a, "--quiet")) {
            ui->quiet = 1;
            continue;
        }
        if (!v)
            return cli_fail("train: option '%s' needs a value (see 'twin train --help')", a);
        i++;
        if (!strcmp(a, "--base"))
            o->base = v;
        else if (!strcmp(a, "--dataset"))
            o->dataset = v;
        else if (!strcmp(a, "--out"))
            o->out = v;
        else if (!strcmp(a, "--resume"))
            o->resume = v;
        else if (!strcmp(a, "--metrics"))
            o->metrics = v;
        else if (!strcmp(a, "--eval"))
            o->ds.eval_path = v;
        else if (!strcmp(a, "--vocab-from"))
            o->vocab_from = v;
        else if (!strcmp(a, "--init")) {
            if (strcmp(v, "random"))
                return cli_fail("train: --init '%s': only 'random' is known", v);
            o->init_random = 1;
        } else if (!strcmp(a, "--lora-targets")) {
            if (ft_parse_targets(v, &o->lora_targets, &err) < 0)
                return cli_fail("train: %s", err.msg);
        } else if (!strcmp(a, "--schedule")) {
            if (!strcmp(v, "cosine"))
                o->schedule = TRAIN_DECAY_COSINE;
            else if (!strcmp(v, "linear"))
                o->schedule = TRAIN_DECAY_LINEAR;
            else if (!strcmp(v, "constant"))
                o->schedule = TRAIN_DECAY_CONSTANT;
            else
                return cli_fail("train: --schedule '%s': cosine, linear or constant", v);
        } else if (!strcmp(a, "--chat-template")) {
            if ((o->ds.chat_tmpl = llm_chat_from_name(v)) < 0)
                return cli_fail("train: unknown chat template '%s'", v);
        } else if (!strcmp(a, "--lora-rank") && !(rc = num(a, v, 1, TRAIN_LORA_MAX_RANK, &x)))
            o->lora_rank = (int)x;
        else if (!strcmp(a, "--lora-alpha") && !(rc = num(a, v, 1e-6, 1e6, &x)))
            o->lora_alpha = (float)x;
        else if (!strcmp(a, "--lora-dropout") && !(rc = num(a, v, 0, 0.99, &x)))
            o->lora_dropout = (float)x;
        else if (!strcmp(a, "--epochs") && !(rc = num(a, v, 1, 100000, &x)))
            o->epochs = (long)x;
        else if (!strcmp(a, "--steps") && !(rc = num(a, v, 1, 1e8, &x)))
            o->steps = (long)x;
        else if (!strcmp(a, "--stop-at") && !(rc = num(a, v, 1, 1e8, &x)))
            o->stop_at = (long)x;
        else if (!strcmp(a, "--lr") && !(rc = num(a, v, 1e-12, 10, &x)))
            o->lr = (float)x;
        else if (!strcmp(a, "--lr-min") && !(rc = num(a, v, 0, 10, &x)))
            o->lr_min = (float)x;
        else if (!strcmp(a, "--warmup") && !(rc = num(a, v, 0, 1e8, &x)))
            o->warmup = (long)x;
        else if (!strcmp(a, "--batch") && !(rc = num(a, v, 1, 4096, &x)))
            o->batch = (int)x;
        else if (!strcmp(a, "--accum") && !(rc = num(a, v, 1, 4096, &x)))
            o->accum = (int)x;
        else if (!strcmp(a, "--ctx") && !(rc = num(a, v, DS_MIN_CTX, DS_MAX_CTX, &x)))
            o->ds.n_ctx = (int)x;
        else if (!strcmp(a, "--eval-split") && !(rc = num(a, v, 0, 0.9, &x)))
            o->ds.eval_split = x;
        else if (!strcmp(a, "--eval-every") && !(rc = num(a, v, 0, 1e8, &x)))
            o->eval_every = (long)x;
        else if (!strcmp(a, "--save-every") && !(rc = num(a, v, 0, 1e8, &x)))
            o->save_every = (long)x;
        else if (!strcmp(a, "--seed") && !(rc = num(a, v, 0, 9007199254740992.0, &x)))
            o->seed = (uint64_t)x;
        else if (!strcmp(a, "--threads") && !(rc = num(a, v, 1, 1024, &x)))
            o->n_threads = (int)x;
        else if (!strcmp(a, "--clip") && !(rc = num(a, v, 0, 1e6, &x)))
            o->clip = x;
        else if (!strcmp(a, "--weight-decay") && !(rc = num(a, v, 0, 0.99, &x)))
            o->weight_decay = (float)x;
        else if (!strcmp(a, "--dim") && !(rc = num(a, v, 1, 65536, &x)))
            o->dim = (int)x;
        else if (!strcmp(a, "--layers") && !(rc = num(a, v, 1, 256, &x)))
            o->layers = (int)x;
        else if (!strcmp(a, "--heads") && !(rc = num(a, v, 1, 1024, &x)))
            o->heads = (int)x;
        else if (!strcmp(a, "--kv-heads") && !(rc = num(a, v, 1, 1024, &x)))
            o->kv_heads = (int)x;
        else if (!strcmp(a, "--ff") && !(rc = num(a, v, 1, 1 << 20, &x)))
            o->ff = (int)x;
        else if (!rc)
            return cli_fail("train: unknown option '%s' (see 'twin train --help')", a);
        if (rc)
            return rc;
    }
    if (o->resume && !o->out)
        o->out = o->resume;
    if (o->init_random && (!o->dim || !o->layers || !o->heads || !o->ff))
        return cli_fail("train: --init random needs --dim, --layers, --heads and --ff");
    return 0;
}

TW_COMMAND(train, "fine-tune a model (LoRA, QLoRA, full) or train one from scratch")
{
    struct ft_opts o;
    struct ft_result res;
    struct train_ui ui = {0};
    struct tw_err err = TW_ERR_INIT;
    if (cli_wants_help(argc, argv)) {
        train_usage(stdout);
        return 0;
    }
    ft_opts_default(&o);
    if (parse(argc, argv, &o, &ui))
        return 1;
    ui.tty = isatty(fileno(stderr));
    o.on_event = on_event;
    o.ctx = &ui;
    if (ft_run(&o, &res, &err) < 0)
        return cli_fail("train: %s", err.msg);
    printf("steps %ld  eval loss %.4f -> %.4f  train loss %.4f -> %.4f  %.0f tokens/s\n", res.steps,
           res.eval_before, res.eval_after, res.loss_first, res.loss_last, res.tokens_per_s);
    return 0;
}
