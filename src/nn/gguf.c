/* gguf.c - GGUF v2/v3 reader (mmap + strict validation) and writer (engine-notes §7).
 *
 * The reader walks the file once with a bounded cursor: every count, length and offset is checked
 * against the bytes that remain and against the hard limits below before anything is used, so a
 * hostile file can only produce an error. Metadata values stay in the mapping; the reader keeps,
 * per key, the span of its encoded value (so the writer can copy keys verbatim) and, for string
 * arrays, an index of the strings.
 */
#include "nn/gguf.h"

#include "base/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Hard limits on hostile input. */
#define GGUF_MAX_KEY_LEN    ((uint64_t)65535)
#define GGUF_MAX_STR_LEN    ((uint64_t)1 << 30)
#define GGUF_MAX_NAME_LEN   ((uint64_t)63) // ggml: names are shorter than GGML_MAX_NAME (64)
#define GGUF_MAX_KV         ((uint64_t)1 << 20)
#define GGUF_MAX_TENSORS    ((uint64_t)1 << 20)
#define GGUF_MAX_DEPTH      8 // nested arrays
#define GGUF_DEFAULT_ALIGN  32
#define GGUF_MAX_ALIGN      ((uint64_t)1 << 30)

/* ---- type tables ---- */

struct gguf_type_info {
    const char *name;
    uint16_t block;
    uint16_t bytes;
};

/* ggml type traits (block size, bytes per block); zero rows are ids that ggml removed. */
static const struct gguf_type_info type_info[GGUF_T_COUNT] = {
    [0] = {"f32", 1, 4},         [1] = {"f16", 1, 2},         [2] = {"q4_0", 32, 18},
    [3] = {"q4_1", 32, 20},      [6] = {"q5_0", 32, 22},      [7] = {"q5_1", 32, 24},
    [8] = {"q8_0", 32, 34},      [9] = {"q8_1", 32, 36},      [10] = {"q2_k", 256, 84},
    [11] = {"q3_k", 256, 110},   [12] = {"q4_k", 256, 144},   [13] = {"q5_k", 256, 176},
    [14] = {"q6_k", 256, 210},   [15] = {"q8_k", 256, 292},   [16] = {"iq2_xxs", 256, 66},
    [17] = {"iq2_xs", 256, 74},  [18] = {"iq3_xxs", 256, 98}, [19] = {"iq1_s", 256, 50},
    [20] = {"iq4_nl", 32, 18},   [21] = {"iq3_s", 256, 110},  [22] = {"iq2_s", 256, 82},
    [23] = {"iq4_xs", 256, 136}, [24] = {"i8", 1, 1},         [25] = {"i16", 1, 2},
    [26] = {"i32", 1, 4},        [27] = {"i64", 1, 8},        [28] = {"f64", 1, 8},
    [29] = {"iq1_m", 256, 56},   [30] = {"bf16", 1, 2},       [34] = {"tq1_0", 256, 54},
    [35] = {"tq2_0", 256, 66},   [39] = {"mxfp4", 32, 17},
};

size_t gguf_type_block_size(enum gguf_ttype t)
{
    return (unsigned)t < GGUF_T_COUNT ? type_info[t].block : 0;
}

size_t gguf_type_block_bytes(enum gguf_ttype t)
{
    return (unsigned)t < GGUF_T_COUNT ? type_info[t].bytes : 0;
}

const char *gguf_type_name(enum gguf_ttype t)
{
    return (unsigned)t < GGUF_T_COUNT && type_info[t].name ? type_info[t].name : "unknown";
}

size_t gguf_row_size(enum gguf_ttype t, int64_t ne0)
{
    size_t bs = gguf_type_block_size(t), out;
    if (!bs || ne0 < 0 || (uint64_t)ne0 % bs)
        return 0;
    if (tw_size_mul((size_t)ne0 / bs, gguf_type_block_bytes(t), &out) < 0)
        return 0;
    return out;
}

size_t gguf_vtype_size(enum gguf_vtype t)
{
    switch (t) {
    case GGUF_V_U8:
    case GGUF_V_I8:
    case GGUF_V_BOOL:
        return 1;
    case GGUF_V_U16:
    case GGUF_V_I16:
        return 2;
    case GGUF_V_U32:
    case GGUF_V_I32:
    case GGUF_V_F32:
        return 4;
    case GGUF_V_U64:
    case GGUF_V_I64:
    case GGUF_V_F64:
        return 8;
    default: /* strings, arrays, and any other id a hostile file may hold */
        break;
    }
    return 0;
}

static const char *vtype_name(uint32_t t)
{
    static const char *const names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32",  "f32",
                                        "bool", "string", "array", "u64", "i64", "f64"};
    return t < sizeof(names) / sizeof(names[0]) ? names[t] : "unknown";
}

/* ---- file ---- */

struct gguf_kv_ent {
    struct gguf_str key;
    uint32_t type;
    uint32_t arr_type;     // arrays only
    uint64_t arr_n;        // arrays only
    size_t val_off;        // encoded value (after the type id) in the file
    size_t val_len;        // its length
    size_t arr_data_off;   // arrays: first element
    struct gguf_str *strs; // string arrays: arr_n views (tw_malloc'd)
};

struct gguf_file {
    const uint8_t *data;
    size_t size;
    bool mapped;
    char *name;
    uint32_t version;
    size_t alignment;
    size_t data_offset;
    uint64_t n_kv;
    struct gguf_kv_ent *kv;
    uint64_t n_tensors;
    struct gguf_tensor *tensors;
    uint32_t *kv_hash;     // open addressing, index+1 (0 = empty)
    uint32_t *tensor_hash; // same for tensors
    size_t kv_hash_cap;
    size_t tensor_hash_cap;
};

struct cursor {
    const uint8_t *p;
    size_t off;
    size_t size;
    const char *name;
    struct tw_err *err;
};

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static uint64_t rd_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint32_t rd_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static int cur_need(struct cursor *c, uint64_t n, const char *what)
{
    if (n > c->size - c->off)
        return tw_errf(c->err, TW_EFORMAT,
                       "'%s': truncated %s at byte %zu: needs %llu bytes, %zu left", c->name, what,
                       c->off, (unsigned long long)n, c->size - c->off);
    return 0;
}

static int cur_u32(struct cursor *c, uint32_t *v, const char *what)
{
    if (cur_need(c, 4, what))
        return TW_EFORMAT;
    *v = rd_u32(c->p + c->off);
    c->off += 4;
    return 0;
}

static int cur_u64(struct cursor *c, uint64_t *v, const char *what)
{
    if (cur_need(c, 8, what))
        return TW_EFORMAT;
    *v = rd_u64(c->p + c->off);
    c->off += 8;
    return 0;
}

static int cur_str(struct cursor *c, struct gguf_str *s, uint64_t max, const char *what)
{
    uint64_t len;
    if (cur_u64(c, &len, what))
        return TW_EFORMAT;
    if (len > max)
        return tw_errf(c->err, TW_EFORMAT, "'%s': %s at byte %zu is %llu bytes long, limit %llu",
                       c->name, what, c->off - 8, (unsigned long long)len,
                       (unsigned long long)max);
    if (cur_need(c, len, what))
        return TW_EFORMAT;
    s->ptr = (const char *)c->p + c->off;
    s->len = len;
    c->off += len;
    return 0;
}

/* Skips one value of type 't' (arrays recursively), validating it. */
static int skip_value(struct cursor *c, uint32_t t, int depth, const char *key);

static int skip_array(struct cursor *c, int depth, const char *key, uint32_t *et_out,
                      uint64_t *n_out)
{
    uint32_t et;
    uint64_t n;
    size_t es;

    if (depth >= GGUF_MAX_DEPTH)
        return tw_errf(c->err, TW_EFORMAT, "'%s': key '%s': arrays nested deeper than %d",
                       c->name, key, GGUF_MAX_DEPTH);
    if (cur_u32(c, &et, "array type") || cur_u64(c, &n, "array count"))
        return TW_EFORMAT;
    if (et > GGUF_V_F64)
        return tw_errf(c->err, TW_EFORMAT, "'%s': key '%s': unknown array element type %u",
                       c->name, key, et);
    es = gguf_vtype_size((enum gguf_vtype)et);
    /* Every element takes at least one byte (strings and arrays at least 8 and 12). */
    {
        uint64_t min = es ? es : et == GGUF_V_STRING ? 8 : 12;
        if (n > (c->size - c->off) / min)
            return tw_errf(c->err, TW_EFORMAT,
                           "'%s': key '%s': array of %llu %s elements does not fit in the %zu "
                           "bytes left",
                           c->name, key, (unsigned long long)n, vtype_name(et), c->size - c->off);
    }
    if (et_out)
        *et_out = et;
    if (n_out)
        *n_out = n;
    if (es) {
        c->off += (size_t)n * es; // checked above
        return 0;
    }
    for (uint64_t j = 0; j < n; j++)
        if (skip_value(c, et, depth + 1, key))
            return TW_EFORMAT;
    return 0;
}

static int skip_value(struct cursor *c, uint32_t t, int depth, const char *key)
{
    size_t sz = gguf_vtype_size((enum gguf_vtype)t);
    struct gguf_str s;

    if (sz) {
        if (cur_need(c, sz, "value"))
            return TW_EFORMAT;
        if (t == GGUF_V_BOOL && c->p[c->off] > 1)
            return tw_errf(c->err, TW_EFORMAT, "'%s': key '%s': bool value %u is not 0 or 1",
                           c->name, key, c->p[c->off]);
        c->off += sz;
        return 0;
    }
    if (t == GGUF_V_STRING)
        return cur_str(c, &s, GGUF_MAX_STR_LEN, "string value");
    if (t == GGUF_V_ARRAY)
        return skip_array(c, depth, key, NULL, NULL);
    return tw_errf(c->err, TW_EFORMAT, "'%s': key '%s': unknown value type %u", c->name, key, t);
}

static int hash_insert(uint32_t *tab, size_t cap, const struct gguf_str *names, size_t stride,
                       uint32_t idx)
{
    const struct gguf_str *s = (const struct gguf_str *)((const char *)names + stride * idx);
    size_t h = (size_t)hash_bytes(s->ptr, s->len) & (cap - 1);
    while (tab[h]) {
        const struct gguf_str *o =
            (const struct gguf_str *)((const char *)names + stride * (tab[h] - 1));
        if (o->len == s->len && !memcmp(o->ptr, s->ptr, s->len))
            return -1;
        h = (h + 1) & (cap - 1);
    }
    tab[h] = idx + 1;
    return 0;
}

static int64_t hash_find(const uint32_t *tab, size_t cap, const struct gguf_str *names,
                         size_t stride, const char *key)
{
    size_t len = strlen(key);
    size_t h;
    if (!cap)
        return -1;
    h = (size_t)hash_bytes(key, len) & (cap - 1);
    while (tab[h]) {
        const struct gguf_str *o =
            (const struct gguf_str *)((const char *)names + stride * (tab[h] - 1));
        if (o->len == len && !memcmp(o->ptr, key, len))
            return tab[h] - 1;
        h = (h + 1) & (cap - 1);
    }
    return -1;
}

static size_t hash_cap_for(uint64_t n)
{
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    return cap;
}

static int parse_kv(struct gguf_file *f, struct cursor *c)
{
    struct tw_err *err = c->err;
    char key[96];

    f->kv = tw_calloc(f->n_kv ? f->n_kv : 1, sizeof(*f->kv));
    f->kv_hash_cap = hash_cap_for(f->n_kv);
    f->kv_hash = tw_calloc(f->kv_hash_cap, sizeof(*f->kv_hash));
    if (!f->kv || !f->kv_hash)
        return tw_errf(err, TW_ENOMEM, "'%s': out of memory for %llu keys", f->name,
                       (unsigned long long)f->n_kv);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        struct gguf_kv_ent *e = &f->kv[i];
        if (cur_str(c, &e->key, GGUF_MAX_KEY_LEN, "key"))
            return TW_EFORMAT;
        snprintf(key, sizeof(key), "%.*s", (int)(e->key.len < 80 ? e->key.len : 80), e->key.ptr);
        if (e->key.len == 0)
            return tw_errf(err, TW_EFORMAT, "'%s': key %llu is empty", f->name,
                           (unsigned long long)i);
        if (hash_insert(f->kv_hash, f->kv_hash_cap, &f->kv[0].key, sizeof(*f->kv), (uint32_t)i))
            return tw_errf(err, TW_EFORMAT, "'%s': duplicate key '%s'", f->name, key);
        if (cur_u32(c, &e->type, "value type"))
            return TW_EFORMAT;
        if (e->type > GGUF_V_F64)
            return tw_errf(err, TW_EFORMAT, "'%s': key '%s' has unknown value type %u", f->name,
                           key, e->type);
        e->val_off = c->off;
        if (e->type == GGUF_V_ARRAY) {
            if (skip_array(c, 0, key, &e->arr_type, &e->arr_n))
                return TW_EFORMAT;
            e->arr_data_off = e->val_off + 12;
            if (e->arr_type == GGUF_V_STRING) {
                struct cursor sc = *c;
                sc.off = e->arr_data_off;
                e->strs = tw_mallocarray(e->arr_n ? e->arr_n : 1, sizeof(*e->strs));
                if (!e->strs)
                    return tw_errf(err, TW_ENOMEM, "'%s': out of memory for key '%s'", f->name,
                                   key);
                for (uint64_t j = 0; j < e->arr_n; j++)
                    if (cur_str(&sc, &e->strs[j], GGUF_MAX_STR_LEN, "string"))
                        return TW_EFORMAT; // cannot happen: validated by skip_array
            }
        } else if (skip_value(c, e->type, 0, key)) {
            return TW_EFORMAT;
        }
        e->val_len = c->off - e->val_off;
    }
    return 0;
}

static int parse_alignment(struct gguf_file *f, struct tw_err *err)
{
    int64_t i = gguf_find_key(f, "general.alignment");
    uint32_t a;
    f->alignment = GGUF_DEFAULT_ALIGN;
    if (i < 0)
        return 0;
    if (f->kv[i].type != GGUF_V_U32)
        return tw_errf(err, TW_EFORMAT, "'%s': general.alignment has type %s, expected u32",
                       f->name, vtype_name(f->kv[i].type));
    a = rd_u32(f->data + f->kv[i].val_off);
    if (a == 0 || (a & (a - 1)) || a > GGUF_MAX_ALIGN)
        return tw_errf(err, TW_EFORMAT, "'%s': general.alignment %u is not a power of two",
                       f->name, a);
    f->alignment = a;
    return 0;
}

static int parse_tensor_info(struct gguf_file *f, struct cursor *c, uint64_t i)
{
    struct gguf_tensor *t = &f->tensors[i];
    struct tw_err *err = c->err;
    uint32_t type;
    uint64_t nrows = 1;
    char name[80];
    size_t row;

    if (cur_str(c, &t->name, GGUF_MAX_STR_LEN, "tensor name"))
        return TW_EFORMAT;
    snprintf(name, sizeof(name), "%.*s", (int)(t->name.len < 70 ? t->name.len : 70), t->name.ptr);
    if (t->name.len > GGUF_MAX_NAME_LEN)
        return tw_errf(err, TW_EFORMAT, "'%s': tensor %llu name '%s...' is %llu bytes, limit %llu",
                       f->name, (unsigned long long)i, name, (unsigned long long)t->name.len,
                       (unsigned long long)GGUF_MAX_NAME_LEN);
    if (hash_insert(f->tensor_hash, f->tensor_hash_cap, &f->tensors[0].name, sizeof(*t),
                    (uint32_t)i))
        return tw_errf(err, TW_EFORMAT, "'%s': duplicate tensor name '%s'", f->name, name);
    if (cur_u32(c, &t->n_dims, "tensor dims"))
        return TW_EFORMAT;
    if (t->n_dims > GGUF_MAX_DIMS)
        return tw_errf(err, TW_EFORMAT, "'%s': tensor '%s' has %u dims, limit %d", f->name, name,
                       t->n_dims, GGUF_MAX_DIMS);
    for (int d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t ne;
        if (cur_u64(c, &ne, "tensor shape"))
            return TW_EFORMAT;
        if (ne > (uint64_t)INT64_MAX)
            return tw_errf(err, TW_EFORMAT, "'%s': tensor '%s' dim %u is negative", f->name, name,
                           d);
        t->ne[d] = (int64_t)ne;
    }
    if (cur_u32(c, &type, "tensor type") || cur_u64(c, &t->offset, "tensor offset"))
        return TW_EFORMAT;
    t->type = (enum gguf_ttype)type;
    if (!gguf_type_block_size(t->type))
        return tw_errf(err, TW_EFORMAT, "'%s': tensor '%s' has unknown type id %u", f->name, name,
                       type);
    if (t->ne[0] % (int64_t)gguf_type_block_size(t->type))
        return tw_errf(err, TW_EFORMAT,
                       "'%s': tensor '%s' row length %lld is not a multiple of %s block size %zu",
                       f->name, name, (long long)t->ne[0], gguf_type_name(t->type),
                       gguf_type_block_size(t->type));
    /* Element count and byte size, with overflow checks (ggml: INT64_MAX elements). */
    {
        uint64_t nel = (uint64_t)t->ne[0];
        for (int d = 1; d < GGUF_MAX_DIMS; d++) {
            uint64_t ne = (uint64_t)t->ne[d];
            if (ne && nel > (uint64_t)INT64_MAX / ne)
                return tw_errf(err, TW_EFORMAT, "'%s': tensor '%s' element count overflows",
                               f->name, name);
            nel *= ne;
            if (ne && nrows > (uint64_t)INT64_MAX / ne)
                return tw_errf(err, TW_EFORMAT, "'%s': tensor '%s' row count overflows", f->name,
                               name);
            nrows *= ne;
        }
    }
    row = gguf_row_size(t->type, t->ne[0]);
    if (t->ne[0] && !row)
        return tw_errf(err, TW_EFORMAT, "'%s': tensor '%s' row size overflows", f->name, name);
    if (nrows && row > (uint64_t)INT64_MAX / nrows)
        return tw_errf(err, TW_EFORMAT, "'%s': tensor '%s' byte size overflows", f->name, name);
    t->nbytes = (uint64_t)row * nrows;
    return 0;
}

static int parse_tensors(struct gguf_file *f, struct cursor *c)
{
    struct tw_err *err = c->err;
    uint64_t expect = 0;

    f->tensors = tw_calloc(f->n_tensors ? f->n_tensors : 1, sizeof(*f->tensors));
    f->tensor_hash_cap = hash_cap_for(f->n_tensors);
    f->tensor_hash = tw_calloc(f->tensor_hash_cap, sizeof(*f->tensor_hash));
    if (!f->tensors || !f->tensor_hash)
        return tw_errf(err, TW_ENOMEM, "'%s': out of memory for %llu tensors", f->name,
                       (unsigned long long)f->n_tensors);
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (parse_tensor_info(f, c, i))
            return TW_EFORMAT;
    /* The data section starts at the next multiple of the alignment. */
    {
        size_t pad = (f->alignment - c->off % f->alignment) % f->alignment;
        if (f->n_tensors && pad > c->size - c->off)
            return tw_errf(err, TW_EFORMAT, "'%s': data section at byte %zu is past the end (%zu)",
                           f->name, c->off + pad, c->size);
        f->data_offset = c->off + pad;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        struct gguf_tensor *t = &f->tensors[i];
        uint64_t end;
        if (t->offset != expect)
            return tw_errf(err, TW_EFORMAT,
                           "'%s': tensor '%.*s' has data offset %llu, expected %llu (the aligned "
                           "end of the previous tensor)",
                           f->name, (int)t->name.len, t->name.ptr,
                           (unsigned long long)t->offset, (unsigned long long)expect);
        /* offset is at most the file size plus one alignment (the previous tensor ended inside
         * the file) and nbytes at most INT64_MAX, so the sum cannot wrap. */
        end = (uint64_t)f->data_offset + t->offset + t->nbytes;
        if (end > f->size)
            return tw_errf(err, TW_EFORMAT, "'%s': tensor '%.*s' ends at byte %llu, file has %zu",
                           f->name, (int)t->name.len, t->name.ptr, (unsigned long long)end,
                           f->size);
        t->data = f->data + f->data_offset + t->offset;
        expect = t->offset + t->nbytes;
        expect += (f->alignment - expect % f->alignment) % f->alignment;
    }
    return 0;
}

static int parse(struct gguf_file *f, struct tw_err *err)
{
    struct cursor c = {f->data, 0, f->size, f->name, err};
    int rc;

    if (f->size < 4 || memcmp(f->data, "GGUF", 4)) {
        return tw_errf(err, TW_EFORMAT, "'%s': not a GGUF file (bad magic)", f->name);
    }
    c.off = 4;
    if (cur_u32(&c, &f->version, "header"))
        return TW_EFORMAT;
    if (f->version == 1)
        return tw_errf(err, TW_EUNSUP, "'%s': GGUF v1 is not supported (re-convert the model)",
                       f->name);
    if ((f->version & 0xffff) == 0 && f->version)
        return tw_errf(err, TW_EUNSUP, "'%s': big-endian GGUF is not supported", f->name);
    if (f->version != 2 && f->version != 3)
        return tw_errf(err, TW_EUNSUP, "'%s': GGUF version %u is not supported (2 or 3)",
                       f->name, f->version);
    if (cur_u64(&c, &f->n_tensors, "header") || cur_u64(&c, &f->n_kv, "header"))
        return TW_EFORMAT;
    if (f->n_tensors > GGUF_MAX_TENSORS || f->n_tensors > (c.size - c.off) / 24)
        return tw_errf(err, TW_EFORMAT, "'%s': %llu tensors cannot fit in %zu bytes (limit %llu)",
                       f->name, (unsigned long long)f->n_tensors, c.size,
                       (unsigned long long)GGUF_MAX_TENSORS);
    if (f->n_kv > GGUF_MAX_KV || f->n_kv > (c.size - c.off) / 13)
        return tw_errf(err, TW_EFORMAT, "'%s': %llu keys cannot fit in %zu bytes (limit %llu)",
                       f->name, (unsigned long long)f->n_kv, c.size,
                       (unsigned long long)GGUF_MAX_KV);
    if ((rc = parse_kv(f, &c)) < 0 || (rc = parse_alignment(f, err)) < 0 ||
        (rc = parse_tensors(f, &c)) < 0)
        return rc;
    return 0;
}

static void file_free(struct gguf_file *f)
{
    if (!f)
        return;
    if (f->kv)
        for (uint64_t i = 0; i < f->n_kv; i++)
            tw_free(f->kv[i].strs);
    tw_free(f->kv);
    tw_free(f->kv_hash);
    tw_free(f->tensors);
    tw_free(f->tensor_hash);
    if (f->mapped && f->size)
        munmap((void *)f->data, f->size);
    tw_free(f->name);
    tw_free(f);
}

int gguf_open_mem(const void *data, size_t size, const char *name, struct gguf_file **out,
                  struct tw_err *err)
{
    struct gguf_file *f;
    int rc;

    *out = NULL;
    f = tw_calloc(1, sizeof(*f));
    if (!f || !(f->name = tw_strdup(name ? name : "(memory)"))) {
        tw_free(f);
        return tw_errf(err, TW_ENOMEM, "out of memory opening '%s'", name ? name : "(memory)");
    }
    f->data = data;
    f->size = size;
    rc = parse(f, err);
    if (rc < 0) {
        file_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

int gguf_open(const char *path, struct gguf_file **out, struct tw_err *err)
{
    struct gguf_file *f;
    struct stat st;
    void *map = NULL;
    int fd, rc;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tw_errf(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "cannot open '%s': %s", path,
                       strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tw_errf(err, TW_EIO, "'%s' is not a regular file", path);
    }
    if (st.st_size > 0) {
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return tw_errf(err, TW_EIO, "cannot map '%s': %s", path, strerror(e));
        }
    }
    close(fd);
    f = tw_calloc(1, sizeof(*f));
    if (!f || !(f->name = tw_strdup(path))) {
        tw_free(f);
        if (map)
            munmap(map, (size_t)st.st_size);
        return tw_errf(err, TW_ENOMEM, "out of memory opening '%s'", path);
    }
    f->data = map ? map : (const void *)"";
    f->size = (size_t)st.st_size;
    f->mapped = map != NULL;
    rc = parse(f, err);
    if (rc < 0) {
        file_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

void gguf_close(struct gguf_file *f)
{
    file_free(f);
}

void gguf_drop_pages(const struct gguf_file *f, const void *p, size_t n)
{
    const uintptr_t base = (uintptr_t)f->data, a = (uintptr_t)p;
    const long pg = sysconf(_SC_PAGESIZE);
    if (!f->mapped || pg <= 0 || a < base || n > f->size || a - base > f->size - n)
        return;
    const uintptr_t lo = (a + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
    const uintptr_t hi = (a + n) & ~((uintptr_t)pg - 1);
    if (hi > lo) // read-only private file mapping: the pages are re-read from the file if needed
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

uint32_t gguf_version(const struct gguf_file *f)
{
    return f->version;
}

size_t gguf_alignment(const struct gguf_file *f)
{
    return f->alignment;
}

size_t gguf_data_offset(const struct gguf_file *f)
{
    return f->data_offset;
}

/* ---- metadata ---- */

int64_t gguf_n_kv(const struct gguf_file *f)
{
    return (int64_t)f->n_kv;
}

int64_t gguf_find_key(const struct gguf_file *f, const char *key)
{
    return hash_find(f->kv_hash, f->kv_hash_cap, &f->kv[0].key, sizeof(*f->kv), key);
}

struct gguf_str gguf_kv_key(const struct gguf_file *f, int64_t i)
{
    TW_ASSERT(i >= 0 && (uint64_t)i < f->n_kv);
    return f->kv[i].key;
}

enum gguf_vtype gguf_kv_type(const struct gguf_file *f, int64_t i)
{
    TW_ASSERT(i >= 0 && (uint64_t)i < f->n_kv);
    return (enum gguf_vtype)f->kv[i].type;
}

enum gguf_vtype gguf_kv_arr_type(const struct gguf_file *f, int64_t i)
{
    TW_ASSERT(i >= 0 && (uint64_t)i < f->n_kv && f->kv[i].type == GGUF_V_ARRAY);
    return (enum gguf_vtype)f->kv[i].arr_type;
}

uint64_t gguf_kv_arr_n(const struct gguf_file *f, int64_t i)
{
    TW_ASSERT(i >= 0 && (uint64_t)i < f->n_kv && f->kv[i].type == GGUF_V_ARRAY);
    return f->kv[i].arr_n;
}

struct gguf_str gguf_kv_arr_str(const struct gguf_file *f, int64_t i, uint64_t j)
{
    TW_ASSERT(i >= 0 && (uint64_t)i < f->n_kv && f->kv[i].strs && j < f->kv[i].arr_n);
    return f->kv[i].strs[j];
}

const void *gguf_kv_arr_data(const struct gguf_file *f, int64_t i)
{
    TW_ASSERT(i >= 0 && (uint64_t)i < f->n_kv && f->kv[i].type == GGUF_V_ARRAY);
    return f->data + f->kv[i].arr_data_off;
}

/* Reads a scalar integer kv as int64 (u64 above INT64_MAX fails). */
static int kv_int(const struct gguf_file *f, int64_t i, int64_t *v)
{
    const uint8_t *p = f->data + f->kv[i].val_off;
    switch (f->kv[i].type) {
    case GGUF_V_U8:
        *v = p[0];
        return 0;
    case GGUF_V_I8:
        *v = (int8_t)p[0];
        return 0;
    case GGUF_V_U16: {
        uint16_t x;
        memcpy(&x, p, 2);
        *v = x;
        return 0;
    }
    case GGUF_V_I16: {
        int16_t x;
        memcpy(&x, p, 2);
        *v = x;
        return 0;
    }
    case GGUF_V_U32:
        *v = rd_u32(p);
        return 0;
    case GGUF_V_I32: {
        int32_t x;
        memcpy(&x, p, 4);
        *v = x;
        return 0;
    }
    case GGUF_V_U64: {
        uint64_t x = rd_u64(p);
        if (x > (uint64_t)INT64_MAX)
            return -1;
        *v = (int64_t)x;
        return 0;
    }
    case GGUF_V_I64: {
        int64_t x;
        memcpy(&x, p, 8);
        *v = x;
        return 0;
    }
    }
    return -1;
}

int gguf_get_i64(const struct gguf_file *f, const char *key, int64_t def, int64_t *out,
                 struct tw_err *err)
{
    int64_t i = gguf_find_key(f, key);
    *out = def;
    if (i < 0)
        return 0;
    if (kv_int(f, i, out) < 0) {
        *out = def;
        return tw_errf(err, TW_EFORMAT, "'%s': key '%s' has type %s, expected an integer",
                       f->name, key, vtype_name(f->kv[i].type));
    }
    return 0;
}

int gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t def, uint32_t *out,
                 struct tw_err *err)
{
    int64_t v;
    int rc = gguf_get_i64(f, key, def, &v, err);
    *out = def;
    if (rc < 0)
        return rc;
    if (v < 0 || v > (int64_t)UINT32_MAX)
        return tw_errf(err, TW_EFORMAT, "'%s': key '%s' value %lld does not fit in u32", f->name,
                       key, (long long)v);
    *out = (uint32_t)v;
    return 0;
}

int gguf_get_f32(const struct gguf_file *f, const char *key, float def, float *out,
                 struct tw_err *err)
{
    int64_t i = gguf_find_key(f, key);
    const uint8_t *p;
    *out = def;
    if (i < 0)
        return 0;
    p = f->data + f->kv[i].val_off;
    if (f->kv[i].type == GGUF_V_F32) {
        memcpy(out, p, 4);
        return 0;
    }
    if (f->kv[i].type == GGUF_V_F64) {
        double d;
        memcpy(&d, p, 8);
        *out = (float)d;
        return 0;
    }
    return tw_errf(err, TW_EFORMAT, "'%s': key '%s' has type %s, expected f32", f->name, key,
                   vtype_name(f->kv[i].type));
}

int gguf_get_bool(const struct gguf_file *f, const char *key, bool def, bool *out,
                  struct tw_err *err)
{
    int64_t i = gguf_find_key(f, key);
    *out = def;
    if (i < 0)
        return 0;
    if (f->kv[i].type != GGUF_V_BOOL)
        return tw_errf(err, TW_EFORMAT, "'%s': key '%s' has type %s, expected bool", f->name, key,
                       vtype_name(f->kv[i].type));
    *out = f->data[f->kv[i].val_off] != 0;
    return 0;
}

int gguf_get_str(const struct gguf_file *f, const char *key, struct gguf_str *out,
                 struct tw_err *err)
{
    int64_t i = gguf_find_key(f, key);
    out->ptr = NULL;
    out->len = 0;
    if (i < 0)
        return 0;
    if (f->kv[i].type != GGUF_V_STRING)
        return tw_errf(err, TW_EFORMAT, "'%s': key '%s' has type %s, expected string", f->name,
                       key, vtype_name(f->kv[i].type));
    out->len = rd_u64(f->data + f->kv[i].val_off);
    out->ptr = (const char *)f->data + f->kv[i].val_off + 8;
    return 0;
}

/* For the writer: the encoded value of key i. */
static const uint8_t *kv_raw(const struct gguf_file *f, int64_t i, size_t *len)
{
    *len = f->kv[i].val_len;
    return f->data + f->kv[i].val_off;
}

/* ---- tensors ---- */

int64_t gguf_n_tensors(const struct gguf_file *f)
{
    return (int64_t)f->n_tensors;
}

const struct gguf_tensor *gguf_tensor(const struct gguf_file *f, int64_t i)
{
    TW_ASSERT(i >= 0 && (uint64_t)i < f->n_tensors);
    return &f->tensors[i];
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name)
{
    int64_t i;
    if (!f->n_tensors)
        return NULL;
    i = hash_find(f->tensor_hash, f->tensor_hash_cap, &f->tensors[0].name, sizeof(*f->tensors),
                  name);
    return i < 0 ? NULL : &f->tensors[i];
}

/* ---- writer ---- */

struct gguf_wkv {
    char *key;
    uint32_t type;
    uint8_t *val; // encoded value (tw_malloc'd)
    size_t val_len;
};

struct gguf_wtensor {
    char *name;
    enum gguf_ttype type;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    const void *data;
    uint64_t nbytes;
};

struct gguf_writer {
    struct gguf_wkv *kv;
    size_t n_kv, kv_cap;
    struct gguf_wtensor *t;
    size_t n_t, t_cap;
    int err;
    char msg[160];
};

struct gguf_writer *gguf_writer_new(void)
{
    return tw_calloc(1, sizeof(struct gguf_writer));
}

void gguf_writer_free(struct gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        tw_free(w->kv[i].key);
        tw_free(w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++)
        tw_free(w->t[i].name);
    tw_free(w->kv);
    tw_free(w->t);
    tw_free(w);
}

static void w_fail(struct gguf_writer *w, int code, const char *fmt, const char *what)
{
    if (w->err)
        return;
    w->err = code;
    snprintf(w->msg, sizeof(w->msg), fmt, what);
}

/* Takes ownership of 'val'. */
static void w_set(struct gguf_writer *w, const char *key, uint32_t type, uint8_t *val,
                  size_t val_len)
{
    char *k;
    if (w->err || !val) {
        tw_free(val);
        w_fail(w, TW_ENOMEM, "out of memory setting key '%s'", key);
        return;
    }
    if (!*key || strlen(key) > GGUF_MAX_KEY_LEN) {
        tw_free(val);
        w_fail(w, TW_EINVAL, "invalid key '%.60s'", key);
        return;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (!strcmp(w->kv[i].key, key)) {
            tw_free(w->kv[i].val);
            w->kv[i].type = type;
            w->kv[i].val = val;
            w->kv[i].val_len = val_len;
            return;
        }
    }
    if (w->n_kv == w->kv_cap) {
        size_t cap = w->kv_cap ? w->kv_cap * 2 : 16;
        struct gguf_wkv *kv = tw_reallocarray(w->kv, cap, sizeof(*kv));
        if (!kv) {
            tw_free(val);
            w_fail(w, TW_ENOMEM, "out of memory setting key '%s'", key);
            return;
        }
        w->kv = kv;
        w->kv_cap = cap;
    }
    k = tw_strdup(key);
    if (!k) {
        tw_free(val);
        w_fail(w, TW_ENOMEM, "out of memory setting key '%s'", key);
        return;
    }
    w->kv[w->n_kv].key = k;
    w->kv[w->n_kv].type = type;
    w->kv[w->n_kv].val = val;
    w->kv[w->n_kv].val_len = val_len;
    w->n_kv++;
}

static void w_scalar(struct gguf_writer *w, const char *key, uint32_t type, const void *v,
                     size_t n)
{
    uint8_t *val = tw_malloc(n);
    if (val)
        memcpy(val, v, n);
    w_set(w, key, type, val, n);
}

void gguf_writer_set_u32(struct gguf_writer *w, const char *key, uint32_t v)
{
    w_scalar(w, key, GGUF_V_U32, &v, 4);
}

void gguf_writer_set_i32(struct gguf_writer *w, const char *key, int32_t v)
{
    w_scalar(w, key, GGUF_V_I32, &v, 4);
}

void gguf_writer_set_u64(struct gguf_writer *w, const char *key, uint64_t v)
{
    w_scalar(w, key, GGUF_V_U64, &v, 8);
}

void gguf_writer_set_f32(struct gguf_writer *w, const char *key, float v)
{
    w_scalar(w, key, GGUF_V_F32, &v, 4);
}

void gguf_writer_set_bool(struct gguf_writer *w, const char *key, bool v)
{
    uint8_t b = v ? 1 : 0;
    w_scalar(w, key, GGUF_V_BOOL, &b, 1);
}

void gguf_writer_set_str(struct gguf_writer *w, const char *key, const char *v)
{
    uint64_t len = strlen(v);
    uint8_t *val = tw_malloc(8 + len);
    if (val) {
        memcpy(val, &len, 8);
        memcpy(val + 8, v, len);
    }
    w_set(w, key, GGUF_V_STRING, val, 8 + len);
}

void gguf_writer_set_arr(struct gguf_writer *w, const char *key, enum gguf_vtype type,
                         const void *data, uint64_t n)
{
    size_t es = gguf_vtype_size(type), total;
    uint8_t *val;
    uint32_t t = type;
    if (!es || tw_size_mul(es, n, &total) < 0 || tw_size_add(total, 12, &total) < 0) {
        w_fail(w, TW_EINVAL, "invalid array for key '%s'", key);
        return;
    }
    val = tw_malloc(total);
    if (val) {
        memcpy(val, &t, 4);
        memcpy(val + 4, &n, 8);
        if (total > 12)
            memcpy(val + 12, data, total - 12);
    }
    w_set(w, key, GGUF_V_ARRAY, val, total);
}

void gguf_writer_set_arr_str(struct gguf_writer *w, const char *key, const struct gguf_str *v,
                             uint64_t n)
{
    size_t total = 12;
    uint8_t *val, *p;
    uint32_t t = GGUF_V_STRING;
    for (uint64_t i = 0; i < n; i++) {
        if (tw_size_add(total, 8, &total) < 0 || tw_size_add(total, v[i].len, &total) < 0) {
            w_fail(w, TW_EINVAL, "string array for key '%s' is too large", key);
            return;
        }
    }
    val = tw_malloc(total);
    if (val) {
        memcpy(val, &t, 4);
        memcpy(val + 4, &n, 8);
        p = val + 12;
        for (uint64_t i = 0; i < n; i++) {
            memcpy(p, &v[i].len, 8);
            if (v[i].len)
                memcpy(p + 8, v[i].ptr, v[i].len);
            p += 8 + v[i].len;
        }
    }
    w_set(w, key, GGUF_V_ARRAY, val, total);
}

void gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_file *f)
{
    for (uint64_t i = 0; i < f->n_kv; i++) {
        size_t len;
        const uint8_t *raw = kv_raw(f, (int64_t)i, &len);
        char *key = tw_strndup(f->kv[i].key.ptr, f->kv[i].key.len);
        uint8_t *val = tw_malloc(len);
        if (!key) {
            tw_free(val);
            w_fail(w, TW_ENOMEM, "out of memory copying keys of '%s'", f->name);
            return;
        }
        if (val)
            memcpy(val, raw, len);
        w_set(w, key, f->kv[i].type, val, len);
        tw_free(key);
    }
}

void gguf_writer_add_tensor(struct gguf_writer *w, const char *name, enum gguf_ttype type,
                            uint32_t n_dims, const int64_t *ne, const void *data)
{
    struct gguf_wtensor *t;
    uint64_t nrows = 1;
    size_t row;

    if (w->err)
        return;
    if (strlen(name) > GGUF_MAX_NAME_LEN || !*name) {
        w_fail(w, TW_EINVAL, "invalid tensor name '%.70s'", name);
        return;
    }
    if (n_dims > GGUF_MAX_DIMS || !gguf_type_block_size(type)) {
        w_fail(w, TW_EINVAL, "tensor '%s' has an invalid type or shape", name);
        return;
    }
    for (size_t i = 0; i < w->n_t; i++) {
        if (!strcmp(w->t[i].name, name)) {
            w_fail(w, TW_EINVAL, "duplicate tensor name '%s'", name);
            return;
        }
    }
    if (w->n_t == w->t_cap) {
        size_t cap = w->t_cap ? w->t_cap * 2 : 16;
        struct gguf_wtensor *nt = tw_reallocarray(w->t, cap, sizeof(*nt));
        if (!nt) {
            w_fail(w, TW_ENOMEM, "out of memory adding tensor '%s'", name);
            return;
        }
        w->t = nt;
        w->t_cap = cap;
    }
    t = &w->t[w->n_t];
    memset(t, 0, sizeof(*t));
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = d < (int)n_dims ? ne[d] : 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        if (t->ne[d] < 0 || (d > 0 && t->ne[d] && nrows > (uint64_t)INT64_MAX / t->ne[d])) {
            w_fail(w, TW_EINVAL, "tensor '%s' has an invalid shape", name);
            return;
        }
        if (d > 0)
            nrows *= (uint64_t)t->ne[d];
    }
    row = gguf_row_size(type, t->ne[0]);
    if ((t->ne[0] && !row) || (nrows && row > (uint64_t)INT64_MAX / nrows)) {
        w_fail(w, TW_EINVAL, "tensor '%s': row length is not a multiple of the block size", name);
        return;
    }
    t->nbytes = row * nrows;
    t->data = data;
    t->name = tw_strdup(name);
    if (!t->name) {
        w_fail(w, TW_ENOMEM, "out of memory adding tensor '%s'", name);
        return;
    }
    w->n_t++;
}

struct wfile {
    int fd;
    uint64_t off;
    int err;
};

static void wf_write(struct wfile *o, const void *p, size_t n)
{
    const char *c = p;
    if (o->err)
        return;
    while (n) {
        ssize_t k = write(o->fd, c, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            o->err = errno;
            return;
        }
        c += k;
        n -= (size_t)k;
        o->off += (uint64_t)k;
    }
}

static void wf_pad(struct wfile *o, size_t align)
{
    static const uint8_t zeros[256];
    size_t pad = (align - o->off % align) % align;
    while (pad) {
        size_t k = pad < sizeof(zeros) ? pad : sizeof(zeros);
        wf_write(o, zeros, k);
        pad -= k;
    }
}

static size_t writer_alignment(const struct gguf_writer *w)
{
    for (size_t i = 0; i < w->n_kv; i++) {
        if (!strcmp(w->kv[i].key, "general.alignment") && w->kv[i].type == GGUF_V_U32) {
            uint32_t a = rd_u32(w->kv[i].val);
            if (a && !(a & (a - 1)) && a <= GGUF_MAX_ALIGN)
                return a;
            return 0;
        }
    }
    return GGUF_DEFAULT_ALIGN;
}

int gguf_writer_write(struct gguf_writer *w, const char *path, struct tw_err *err)
{
    struct wfile o = {-1, 0, 0};
    char tmp[4096];
    uint32_t version = 3;
    uint64_t n;
    uint64_t off = 0;
    size_t align;

    if (w->err)
        return tw_errf(err, w->err, "writing '%s': %s", path, w->msg);
    align = writer_alignment(w);
    if (!align)
        return tw_errf(err, TW_EINVAL, "writing '%s': general.alignment is not a power of two",
                       path);
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return tw_errf(err, TW_EINVAL, "path '%s' is too long", path);
    o.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (o.fd < 0)
        return tw_errf(err, TW_EIO, "cannot create '%s': %s", tmp, strerror(errno));
    wf_write(&o, "GGUF", 4);
    wf_write(&o, &version, 4);
    n = w->n_t;
    wf_write(&o, &n, 8);
    n = w->n_kv;
    wf_write(&o, &n, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        uint64_t klen = strlen(w->kv[i].key);
        wf_write(&o, &klen, 8);
        wf_write(&o, w->kv[i].key, klen);
        wf_write(&o, &w->kv[i].type, 4);
        wf_write(&o, w->kv[i].val, w->kv[i].val_len);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const struct gguf_wtensor *t = &w->t[i];
        uint64_t nlen = strlen(t->name);
        uint32_t type = t->type;
        wf_write(&o, &nlen, 8);
        wf_write(&o, t->name, nlen);
        wf_write(&o, &t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++)
            wf_write(&o, &t->ne[d], 8);
        wf_write(&o, &type, 4);
        wf_write(&o, &off, 8);
        off += t->nbytes;
        off += (align - off % align) % align;
    }
    wf_pad(&o, align);
    for (size_t i = 0; i < w->n_t; i++) {
        if (w->t[i].nbytes)
            wf_write(&o, w->t[i].data, w->t[i].nbytes);
        wf_pad(&o, align);
    }
    if (!o.err && fsync(o.fd) < 0)
        o.err = errno;
    if (close(o.fd) < 0 && !o.err)
        o.err = errno;
    if (!o.err && rename(tmp, path) < 0)
        o.err = errno;
    if (o.err) {
        unlink(tmp);
        return tw_errf(err, TW_EIO, "writing '%s': %s", path, strerror(o.err));
    }
    return 0;
}
