/* cmd_tokenize.c - `twin tokenize -m FILE TEXT`: ids and pieces of a text, as llama.cpp
 * tokenizes it with the model's vocabulary. */
#include "base/buf.h"
#include "base/err.h"
#include "base/mem.h"
#include "cli/cli.h"
#include "nn/gguf.h"
#include "nn/tok.h"

#include <stdio.h>
#include <string.h>

#define TOKENIZE_MAX_INPUT ((size_t)256 << 20)

static void usage(FILE *out)
{
    fprintf(out,
            "usage: twin tokenize -m MODEL [options] TEXT\n"
            "       twin tokenize -m MODEL [options] -f FILE   (FILE '-' reads stdin)\n\n"
            "Prints one line per token: the id and its piece (escaped). The vocabulary comes\n"
            "from the GGUF file's tokenizer.ggml.* metadata.\n\n"
            "options:\n"
            "   -m, --model FILE     GGUF model or vocabulary file\n"
            "   -f, --file FILE      tokenize the contents of FILE instead of TEXT\n"
            "   --json               print {\"ids\":[...],\"pieces\":[...]}\n"
            "   --ids                print only the ids, space-separated, on one line\n"
            "   --no-special         do not add BOS/EOS ([CLS]/[SEP] for BERT vocabularies)\n"
            "   --parse-special      read special-token texts such as <s> in TEXT as tokens\n"
            "   --decode             also print the text decoded back from the ids\n");
}

static int read_input(const char *path, struct tw_buf *b)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    char chunk[65536];
    size_t n;
    if (!f)
        return cli_fail("tokenize: cannot open '%s'", path);
    tw_buf_init(b, TOKENIZE_MAX_INPUT);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (tw_buf_add(b, chunk, n))
            break;
    if (f != stdin)
        fclose(f);
    if (b->err)
        return cli_fail("tokenize: '%s' is larger than %zu MiB", path, TOKENIZE_MAX_INPUT >> 20);
    return 0;
}

/* The piece of 'id' (rendering control tokens) in a buffer that grows for long pieces; returns
 * its length. *buf starts as 'small' and is tw_malloc'd when that is too short. */
static size_t get_piece(const struct tok *t, int32_t id, char **buf, char *small, size_t cap)
{
    int32_t k = tok_piece(t, id, true, small, cap);
    if (*buf != small)
        tw_free(*buf);
    *buf = small;
    if (k >= 0)
        return (size_t)k;
    *buf = tw_malloc((size_t)-k);
    if (!*buf) {
        *buf = small;
        return 0;
    }
    return (size_t)tok_piece(t, id, true, *buf, (size_t)-k);
}

/* Writes a piece with control bytes escaped so each token stays on one line. */
static void print_piece(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\\')
            fputs("\\\\", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

TW_COMMAND(tokenize, "print the token ids and pieces of a text for a model's vocabulary")
{
    struct tw_err err = TW_ERR_INIT;
    const char *model = NULL, *text = NULL, *file = NULL;
    bool json = false, ids_only = false, add_special = true, parse_special = false;
    bool decode = false;
    struct tw_buf input = TW_BUF_INIT, out = TW_BUF_INIT;
    struct gguf_file *f = NULL;
    struct tok *t = NULL;
    int32_t *ids = NULL;
    size_t n = 0, len;
    int rc = 1;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc)
            model = argv[++i];
        else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && i + 1 < argc)
            file = argv[++i];
        else if (!strcmp(a, "--json"))
            json = true;
        else if (!strcmp(a, "--ids"))
            ids_only = true;
        else if (!strcmp(a, "--no-special"))
            add_special = false;
        else if (!strcmp(a, "--parse-special"))
            parse_special = true;
        else if (!strcmp(a, "--decode"))
            decode = true;
        else if (!strcmp(a, "--") && i + 1 < argc && !text)
            text = argv[++i];
        else if (a[0] == '-' && a[1])
            return cli_fail("tokenize: unknown option '%s'; see 'twin tokenize --help'", a);
        else if (!text)
            text = a;
        else
            return cli_fail("tokenize: one TEXT expected (quote it), got '%s' too", a);
    }
    if (!model || (!text && !file) || (text && file)) {
        usage(stderr);
        return 2;
    }
    if (file) {
        if (read_input(file, &input))
            goto done;
        text = input.data;
        len = input.len;
    } else {
        len = strlen(text);
    }
    if (gguf_open(model, &f, &err) < 0 || tok_new_from_gguf(f, &t, &err) < 0) {
        cli_fail("%s", err.msg);
        goto done;
    }
    {
        size_t cap = len + 16;
        ids = tw_mallocarray(cap, sizeof(*ids));
        if (!ids) {
            cli_fail("tokenize: out of memory");
            goto done;
        }
        rc = tok_encode(t, text, len, add_special, parse_special, ids, cap, &n, &err);
        if (rc == TW_ELIMIT && n > cap) {
            tw_free(ids);
            ids = tw_mallocarray(n, sizeof(*ids));
            tw_err_clear(&err);
            rc = ids ? tok_encode(t, text, len, add_special, parse_special, ids, n, &n, &err)
                     : TW_ENOMEM;
        }
        if (rc < 0) {
            cli_fail("tokenize: %s", err.code ? err.msg : tw_strerror(rc));
            rc = 1;
            goto done;
        }
    }
    if (json) {
        tw_buf_puts(&out, "{\"ids\":[");
        for (size_t i = 0; i < n; i++)
            tw_buf_printf(&out, "%s%d", i ? "," : "", ids[i]);
        tw_buf_puts(&out, "],\"pieces\":[");
        for (size_t i = 0; i < n; i++) {
            char small[256], *piece = small;
            size_t k = get_piece(t, ids[i], &piece, small, sizeof(small));
            if (i)
                tw_buf_putc(&out, ',');
            tw_buf_json_str(&out, piece, k);
            if (piece != small)
                tw_free(piece);
        }
        tw_buf_puts(&out, "]");
        if (decode) {
            struct tw_buf d = TW_BUF_INIT;
            tok_decode(t, ids, n, false, false, &d);
            tw_buf_puts(&out, ",\"text\":");
            tw_buf_json_str(&out, d.data, d.len);
            tw_buf_release(&d);
        }
        tw_buf_puts(&out, "}\n");
        if (out.err) {
            cli_fail("tokenize: out of memory");
            rc = 1;
            goto done;
        }
        fwrite(out.data, 1, out.len, stdout);
    } else if (ids_only) {
        for (size_t i = 0; i < n; i++)
            printf("%s%d", i ? " " : "", ids[i]);
        putchar('\n');
    } else {
        for (size_t i = 0; i < n; i++) {
            char small[256], *piece = small;
            size_t k = get_piece(t, ids[i], &piece, small, sizeof(small));
            printf("%6d  '", ids[i]);
            print_piece(piece, k);
            fputs("'\n", stdout);
            if (piece != small)
                tw_free(piece);
        }
    }
    if (decode && !json) {
        struct tw_buf d = TW_BUF_INIT;
        tok_decode(t, ids, n, false, false, &d);
        fputs("decoded: ", stdout);
        fwrite(d.data, 1, d.len, stdout);
        putchar('\n');
        tw_buf_release(&d);
    }
    rc = 0;
done:
    tw_free(ids);
    tw_buf_release(&input);
    tw_buf_release(&out);
    tok_free(t);
    gguf_close(f);
    return rc;
}
