/* model_info.c - `twin model info FILE`: metadata, tensor table, parameter count, bytes per type. */
#include "base/err.h"
#include "cli/cli.h"
#include "nn/gguf.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *vtype_name(enum gguf_vtype t)
{
    static const char *const names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32",  "f32",
                                        "bool", "string", "array", "u64", "i64", "f64"};
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

/* Prints a string with control characters escaped, cut at 'max' bytes. */
static void print_str(const char *p, uint64_t len, uint64_t max)
{
    uint64_t n = len < max ? len : max;
    putchar('"');
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('"');
    if (n < len)
        printf("... (%" PRIu64 " bytes)", len);
}

static void print_scalar(enum gguf_vtype t, const unsigned char *p)
{
    switch (t) {
    case GGUF_V_U8:
        printf("%u", p[0]);
        break;
    case GGUF_V_I8:
        printf("%d", (int8_t)p[0]);
        break;
    case GGUF_V_BOOL:
        fputs(p[0] ? "true" : "false", stdout);
        break;
    case GGUF_V_U16: {
        uint16_t v;
        memcpy(&v, p, 2);
        printf("%u", v);
        break;
    }
    case GGUF_V_I16: {
        int16_t v;
        memcpy(&v, p, 2);
        printf("%d", v);
        break;
    }
    case GGUF_V_U32: {
        uint32_t v;
        memcpy(&v, p, 4);
        printf("%" PRIu32, v);
        break;
    }
    case GGUF_V_I32: {
        int32_t v;
        memcpy(&v, p, 4);
        printf("%" PRId32, v);
        break;
    }
    case GGUF_V_F32: {
        float v;
        memcpy(&v, p, 4);
        printf("%g", v);
        break;
    }
    case GGUF_V_U64: {
        uint64_t v;
        memcpy(&v, p, 8);
        printf("%" PRIu64, v);
        break;
    }
    case GGUF_V_I64: {
        int64_t v;
        memcpy(&v, p, 8);
        printf("%" PRId64, v);
        break;
    }
    case GGUF_V_F64: {
        double v;
        memcpy(&v, p, 8);
        printf("%g", v);
        break;
    }
    default:
        fputs("?", stdout);
    }
}

static void print_kv(const struct gguf_file *f, int64_t i, int full)
{
    struct gguf_str k = gguf_kv_key(f, i);
    enum gguf_vtype t = gguf_kv_type(f, i);
    printf("  %-44.*s ", (int)k.len, k.ptr);
    if (t == GGUF_V_STRING) {
        struct gguf_str s;
        char key[512];
        snprintf(key, sizeof(key), "%.*s", (int)k.len, k.ptr);
        gguf_get_str(f, key, &s, NULL);
        print_str(s.ptr, s.len, full ? s.len : 120);
    } else if (t == GGUF_V_ARRAY) {
        enum gguf_vtype et = gguf_kv_arr_type(f, i);
        uint64_t n = gguf_kv_arr_n(f, i), show = full ? n : (n < 8 ? n : 8);
        printf("[%s x %" PRIu64 "] [", vtype_name(et), n);
        if (et == GGUF_V_STRING) {
            for (uint64_t j = 0; j < show; j++) {
                struct gguf_str s = gguf_kv_arr_str(f, i, j);
                if (j)
                    fputs(", ", stdout);
                print_str(s.ptr, s.len, 40);
            }
        } else if (gguf_vtype_size(et)) {
            const unsigned char *p = gguf_kv_arr_data(f, i);
            for (uint64_t j = 0; j < show; j++) {
                if (j)
                    fputs(", ", stdout);
                print_scalar(et, p + j * gguf_vtype_size(et));
            }
        } else {
            show = 0;
            fputs("nested", stdout);
        }
        printf("%s]", show < n ? ", ..." : "");
    } else {
        char key[512];
        int64_t v;
        snprintf(key, sizeof(key), "%.*s", (int)k.len, k.ptr);
        if (t == GGUF_V_F32 || t == GGUF_V_F64) {
            float fv;
            gguf_get_f32(f, key, 0, &fv, NULL);
            printf("%g", fv);
        } else if (t == GGUF_V_BOOL) {
            bool b;
            gguf_get_bool(f, key, false, &b, NULL);
            fputs(b ? "true" : "false", stdout);
        } else if (gguf_get_i64(f, key, 0, &v, NULL) == 0) {
            printf("%" PRId64, v);
        } else {
            fputs(">= 2^63", stdout);
        }
    }
    putchar('\n');
}

static void usage(FILE *out)
{
    fprintf(out, "usage: twin model info [--full] [--no-tensors] FILE\n\n"
                 "Prints a GGUF file's metadata (arrays summarized unless --full), its tensor\n"
                 "table, the parameter count and the bytes used per tensor type.\n");
}

TW_SUBCOMMAND(model, info, "FILE: metadata, tensors, parameter count of a GGUF model")
{
    struct tw_err err = TW_ERR_INIT;
    struct gguf_file *f;
    const char *path = NULL;
    int full = 0, tensors = 1;
    uint64_t params = 0, bytes_by_type[GGUF_T_COUNT] = {0}, count_by_type[GGUF_T_COUNT] = {0};
    uint64_t total_bytes = 0;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--full"))
            full = 1;
        else if (!strcmp(argv[i], "--no-tensors"))
            tensors = 0;
        else if (argv[i][0] == '-' && argv[i][1])
            return cli_fail("model info: unknown option '%s'", argv[i]);
        else if (!path)
            path = argv[i];
        else
            return cli_fail("model info: one FILE expected, got '%s' too", argv[i]);
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    if (gguf_open(path, &f, &err) < 0)
        return cli_fail("%s", err.msg);

    printf("file:        %s\n", path);
    printf("version:     %u\n", gguf_version(f));
    printf("alignment:   %zu\n", gguf_alignment(f));
    printf("data offset: %zu\n", gguf_data_offset(f));
    printf("metadata:    %" PRId64 " keys\n", gguf_n_kv(f));
    for (int64_t i = 0; i < gguf_n_kv(f); i++)
        print_kv(f, i, full);
    printf("tensors:     %" PRId64 "\n", gguf_n_tensors(f));
    if (tensors && gguf_n_tensors(f))
        printf("  %-40s %-8s %-28s %12s %12s\n", "name", "type", "shape", "offset", "bytes");
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const struct gguf_tensor *t = gguf_tensor(f, i);
        uint64_t nel = 1;
        char shape[96];
        int n = 0;
        shape[0] = '\0';
        for (uint32_t d = 0; d < t->n_dims; d++) {
            nel *= (uint64_t)t->ne[d];
            n += snprintf(shape + n, sizeof(shape) - (size_t)n, "%s%" PRId64, d ? " x " : "",
                          t->ne[d]);
            if (n >= (int)sizeof(shape))
                n = (int)sizeof(shape) - 1;
        }
        if (!t->n_dims)
            snprintf(shape, sizeof(shape), "scalar");
        params += nel;
        total_bytes += t->nbytes;
        bytes_by_type[t->type] += t->nbytes;
        count_by_type[t->type]++;
        if (tensors)
            printf("  %-40.*s %-8s %-28s %12" PRIu64 " %12" PRIu64 "\n", (int)t->name.len,
                   t->name.ptr, gguf_type_name(t->type), shape, t->offset, t->nbytes);
    }
    printf("parameters:  %" PRIu64 " (%.3f M)\n", params, (double)params / 1e6);
    printf("tensor data: %" PRIu64 " bytes (%.2f MiB)\n", total_bytes,
           (double)total_bytes / (1024.0 * 1024.0));
    for (int t = 0; t < GGUF_T_COUNT; t++)
        if (count_by_type[t])
            printf("  %-8s %6" PRIu64 " tensors %14" PRIu64 " bytes\n",
                   gguf_type_name((enum gguf_ttype)t), count_by_type[t], bytes_by_type[t]);
    gguf_close(f);
    return 0;
}
