/* test_gguf.c - GGUF reader and writer: real files, round trips and hostile input. */
#include "base/buf.h"
#include "base/mem.h"
#include "nn/gguf.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static const char *stories(void)
{
    return test_shared("data/models/stories260K.gguf");
}

static bool str_is(struct gguf_str s, const char *c)
{
    return s.len == strlen(c) && !memcmp(s.ptr, c, s.len);
}

TEST(gguf_reads_stories260k)
{
    struct tw_err err = TW_ERR_INIT;
    struct gguf_file *f;
    struct gguf_str s;
    const struct gguf_tensor *t;
    int64_t i;
    uint32_t u;

    CHECK_OK(gguf_open(stories(), &f, &err), &err);
    CHECK_EQ_INT(gguf_version(f), 3);
    CHECK_EQ_INT(gguf_alignment(f), 32);
    CHECK_EQ_INT(gguf_data_offset(f) % 32, 0);
    CHECK_OK(gguf_get_str(f, "general.architecture", &s, &err), &err);
    CHECK(str_is(s, "llama"));
    CHECK_OK(gguf_get_str(f, "tokenizer.ggml.model", &s, &err), &err);
    CHECK(str_is(s, "llama"));
    i = gguf_find_key(f, "tokenizer.ggml.tokens");
    CHECK(i >= 0);
    CHECK_EQ_INT(gguf_kv_type(f, i), GGUF_V_ARRAY);
    CHECK_EQ_INT(gguf_kv_arr_type(f, i), GGUF_V_STRING);
    CHECK_EQ_INT(gguf_kv_arr_n(f, i), 512);
    CHECK(str_is(gguf_kv_arr_str(f, i, 3), "<0x00>"));
    CHECK(str_is(gguf_kv_arr_str(f, i, 258), "<0xFF>"));
    CHECK_OK(gguf_get_u32(f, "llama.block_count", 0, &u, &err), &err);
    CHECK_EQ_INT(u, 5);
    CHECK_OK(gguf_get_u32(f, "llama.embedding_length", 0, &u, &err), &err);
    CHECK_EQ_INT(u, 64);
    /* absent keys give the default */
    CHECK_OK(gguf_get_u32(f, "no.such.key", 77, &u, &err), &err);
    CHECK_EQ_INT(u, 77);
    /* a string is not an integer */
    CHECK(gguf_get_u32(f, "general.architecture", 0, &u, &err) == TW_EFORMAT);
    CHECK(strstr(err.msg, "general.architecture") != NULL);
    t = gguf_find_tensor(f, "token_embd.weight");
    CHECK(t != NULL);
    CHECK_EQ_INT(t->type, GGUF_T_F32);
    CHECK_EQ_INT(t->n_dims, 2);
    CHECK_EQ_INT(t->ne[0], 64);
    CHECK_EQ_INT(t->ne[1], 512);
    CHECK_EQ_INT(t->nbytes, 64 * 512 * 4);
    CHECK(gguf_find_tensor(f, "nope") == NULL);
    /* offsets are the aligned running sum */
    {
        uint64_t expect = 0;
        for (int64_t k = 0; k < gguf_n_tensors(f); k++) {
            t = gguf_tensor(f, k);
            CHECK_EQ_INT(t->offset, expect);
            expect = (t->offset + t->nbytes + 31) / 32 * 32;
        }
    }
    gguf_close(f);
}

/* Dropping a tensor's pages from memory loses nothing: they read back the same from the file;
 * ranges outside the file are ignored. */
TEST(gguf_drop_pages_keeps_contents)
{
    struct tw_err err = TW_ERR_INIT;
    struct gguf_file *f = NULL;
    CHECK_OK(gguf_open(test_shared("refs/models/synth-tiny-f32.gguf"), &f, &err), &err);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const struct gguf_tensor *t = gguf_tensor(f, i);
        unsigned char *copy = tw_malloc(t->nbytes + 1);
        CHECK(copy != NULL);
        memcpy(copy, t->data, t->nbytes);
        gguf_drop_pages(f, t->data, t->nbytes);
        CHECK(memcmp(copy, t->data, t->nbytes) == 0);
        tw_free(copy);
    }
    static const char outside[4096];
    gguf_drop_pages(f, outside, sizeof(outside));
    gguf_close(f);
}

/* The writer re-creates stories260K.gguf byte for byte from the parsed contents. */
TEST(gguf_writer_recreates_stories260k)
{
    struct tw_err err = TW_ERR_INIT;
    struct gguf_file *f;
    struct gguf_writer *w;
    char path[1024];
    char *a, *b;
    size_t alen, blen;

    CHECK_OK(gguf_open(stories(), &f, &err), &err);
    w = gguf_writer_new();
    CHECK(w != NULL);
    gguf_writer_copy_kv(w, f);
    for (int64_t k = 0; k < gguf_n_tensors(f); k++) {
        const struct gguf_tensor *t = gguf_tensor(f, k);
        char name[80];
        snprintf(name, sizeof(name), "%.*s", (int)t->name.len, t->name.ptr);
        gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data);
    }
    snprintf(path, sizeof(path), "%s/copy.gguf", test_tmpdir());
    CHECK_OK(gguf_writer_write(w, path, &err), &err);
    gguf_writer_free(w);
    gguf_close(f);
    a = test_read_file(stories(), &alen);
    b = test_read_file(path, &blen);
    CHECK(a && b);
    CHECK_EQ_INT(alen, blen);
    CHECK(memcmp(a, b, alen) == 0);
    tw_free(a);
    tw_free(b);
}

/* Every GGUF in shared/ (vocabs, F16 and quantized models, a LoRA adapter, BERT) parses, and
 * our writer re-creates each one byte for byte from its parsed contents. The one difference
 * allowed: like ggml's writer we always pad the metadata to the alignment, where gguf-py's
 * vocab-only files (no tensors) end unpadded. */
TEST(gguf_writer_recreates_every_shared_file)
{
    static const char *const files[] = {
        "data/models/llama-2-tiny-random.gguf",     "data/vocab/ggml-vocab-bert-bge.gguf",
        "data/vocab/ggml-vocab-deepseek-llm.gguf", "data/vocab/ggml-vocab-phi-3.gguf",
        "refs/lora/stories260K-test-lora.gguf",    "refs/lora/stories260K-test-lora-merged.gguf",
        "refs/models/synth-tiny-q4_0.gguf",        "refs/models/synth-tiny-q4_k_m.gguf",
        "refs/models/synth-tiny-q6_k.gguf",        "refs/models/synth-tiny-q8_0.gguf",
        "refs/models/tiny-bert-bge-synth.gguf",
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct tw_err err = TW_ERR_INIT;
        struct gguf_file *f;
        struct gguf_writer *w;
        char path[1024];
        char *a, *b;
        size_t alen, blen, want;
        int64_t n_tensors;
        CHECK_MSG(gguf_open(test_shared(files[i]), &f, &err) == 0, "%s", err.msg);
        n_tensors = gguf_n_tensors(f);
        w = gguf_writer_new();
        gguf_writer_copy_kv(w, f);
        for (int64_t k = 0; k < gguf_n_tensors(f); k++) {
            const struct gguf_tensor *t = gguf_tensor(f, k);
            char name[80];
            snprintf(name, sizeof(name), "%.*s", (int)t->name.len, t->name.ptr);
            gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data);
        }
        snprintf(path, sizeof(path), "%s/copy%zu.gguf", test_tmpdir(), i);
        CHECK_OK(gguf_writer_write(w, path, &err), &err);
        gguf_writer_free(w);
        gguf_close(f);
        a = test_read_file(test_shared(files[i]), &alen);
        b = test_read_file(path, &blen);
        CHECK(a && b);
        want = n_tensors ? alen : (alen + 31) / 32 * 32;
        CHECK_MSG(blen == want && !memcmp(a, b, alen), "%s: copy differs (%zu vs %zu bytes)",
                  files[i], blen, alen);
        for (size_t k = alen; k < blen; k++)
            CHECK(b[k] == 0);
        tw_free(a);
        tw_free(b);
    }
}

TEST(gguf_writer_round_trip)
{
    struct tw_err err = TW_ERR_INIT;
    struct gguf_writer *w = gguf_writer_new();
    struct gguf_file *f;
    char path[1024];
    float data[3 * 64];
    uint16_t half[32];
    int32_t ints[4] = {-1, 0, 7, 1 << 30};
    struct gguf_str strs[3] = {{"a", 1}, {"", 0}, {"\xe2\x96\x81x", 4}};
    int64_t ne[2] = {64, 3}, ne1[1] = {32};
    struct gguf_str s;
    uint32_t u;
    int64_t i64;
    float fv;
    bool bv;
    int64_t i;

    for (int k = 0; k < 3 * 64; k++)
        data[k] = (float)k * 0.5f - 3.0f;
    for (int k = 0; k < 32; k++)
        half[k] = (uint16_t)(0x3c00 + k);
    gguf_writer_set_str(w, "general.architecture", "test");
    gguf_writer_set_u32(w, "general.alignment", 64);
    gguf_writer_set_i32(w, "x.i32", -5);
    gguf_writer_set_u64(w, "x.u64", 1ull << 40);
    gguf_writer_set_f32(w, "x.f32", 1.5f);
    gguf_writer_set_bool(w, "x.bool", true);
    gguf_writer_set_arr(w, "x.ints", GGUF_V_I32, ints, 4);
    gguf_writer_set_arr_str(w, "x.strs", strs, 3);
    gguf_writer_set_u32(w, "x.replaced", 1);
    gguf_writer_set_u32(w, "x.replaced", 2);
    gguf_writer_add_tensor(w, "w", GGUF_T_F32, 2, ne, data);
    gguf_writer_add_tensor(w, "h", GGUF_T_F16, 1, ne1, half);
    snprintf(path, sizeof(path), "%s/rt.gguf", test_tmpdir());
    CHECK_OK(gguf_writer_write(w, path, &err), &err);
    gguf_writer_free(w);

    CHECK_OK(gguf_open(path, &f, &err), &err);
    CHECK_EQ_INT(gguf_alignment(f), 64);
    CHECK_EQ_INT(gguf_n_kv(f), 9);
    CHECK(str_is(gguf_kv_key(f, 0), "general.architecture"));
    CHECK_OK(gguf_get_i64(f, "x.i32", 0, &i64, &err), &err);
    CHECK_EQ_INT(i64, -5);
    CHECK(gguf_get_u32(f, "x.i32", 0, &u, &err) == TW_EFORMAT); // -5 does not fit
    tw_err_clear(&err);
    CHECK_OK(gguf_get_i64(f, "x.u64", 0, &i64, &err), &err);
    CHECK_EQ_INT(i64, 1ll << 40);
    CHECK_OK(gguf_get_f32(f, "x.f32", 0, &fv, &err), &err);
    CHECK(fv == 1.5f);
    CHECK_OK(gguf_get_bool(f, "x.bool", false, &bv, &err), &err);
    CHECK(bv);
    CHECK_OK(gguf_get_u32(f, "x.replaced", 0, &u, &err), &err);
    CHECK_EQ_INT(u, 2);
    CHECK_OK(gguf_get_str(f, "general.architecture", &s, &err), &err);
    CHECK(str_is(s, "test"));
    i = gguf_find_key(f, "x.ints");
    CHECK(i >= 0 && gguf_kv_arr_type(f, i) == GGUF_V_I32 && gguf_kv_arr_n(f, i) == 4);
    CHECK(memcmp(gguf_kv_arr_data(f, i), ints, sizeof(ints)) == 0);
    i = gguf_find_key(f, "x.strs");
    CHECK(i >= 0 && gguf_kv_arr_n(f, i) == 3);
    CHECK(str_is(gguf_kv_arr_str(f, i, 0), "a"));
    CHECK(str_is(gguf_kv_arr_str(f, i, 1), ""));
    CHECK(str_is(gguf_kv_arr_str(f, i, 2), "\xe2\x96\x81x"));
    CHECK_EQ_INT(gguf_n_tensors(f), 2);
    CHECK(memcmp(gguf_find_tensor(f, "w")->data, data, sizeof(data)) == 0);
    CHECK_EQ_INT(gguf_find_tensor(f, "h")->offset, 768);
    CHECK(memcmp(gguf_find_tensor(f, "h")->data, half, sizeof(half)) == 0);
    CHECK_EQ_INT((uintptr_t)gguf_find_tensor(f, "h")->data % 64, 0);
    gguf_close(f);
}

/* ---- hand-made files ---- */

static void put_u32(struct tw_buf *b, uint32_t v)
{
    tw_buf_add(b, &v, 4);
}

static void put_u64(struct tw_buf *b, uint64_t v)
{
    tw_buf_add(b, &v, 8);
}

static void put_str(struct tw_buf *b, const char *s)
{
    put_u64(b, strlen(s));
    tw_buf_add(b, s, strlen(s));
}

static void put_header(struct tw_buf *b, uint32_t version, uint64_t n_t, uint64_t n_kv)
{
    tw_buf_add(b, "GGUF", 4);
    put_u32(b, version);
    put_u64(b, n_t);
    put_u64(b, n_kv);
}

static void put_tensor(struct tw_buf *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                       uint32_t type, uint64_t off)
{
    put_str(b, name);
    put_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        put_u64(b, ne[d]);
    put_u32(b, type);
    put_u64(b, off);
}

static void pad_to(struct tw_buf *b, size_t align)
{
    while (b->len % align)
        tw_buf_putc(b, 0);
}

/* Opens b as a GGUF; returns the rc, leaves the message in err. */
static int open_buf(struct tw_buf *b, struct tw_err *err)
{
    struct gguf_file *f = NULL;
    int rc;
    tw_err_clear(err);
    rc = gguf_open_mem(b->data, b->len, "m.gguf", &f, err);
    gguf_close(f);
    return rc;
}

/* A valid file with every value type, nested arrays and two tensors. */
static void build_valid(struct tw_buf *b)
{
    uint64_t ne[2] = {32, 2};
    uint8_t z[256] = {0};
    put_header(b, 3, 2, 14);
    put_str(b, "k.u8"), put_u32(b, GGUF_V_U8), tw_buf_putc(b, 7);
    put_str(b, "k.i8"), put_u32(b, GGUF_V_I8), tw_buf_putc(b, (char)-7);
    put_str(b, "k.u16"), put_u32(b, GGUF_V_U16), tw_buf_add(b, "\x01\x02", 2);
    put_str(b, "k.i16"), put_u32(b, GGUF_V_I16), tw_buf_add(b, "\xff\xff", 2);
    put_str(b, "k.u32"), put_u32(b, GGUF_V_U32), put_u32(b, 123);
    put_str(b, "k.i32"), put_u32(b, GGUF_V_I32), put_u32(b, (uint32_t)-123);
    put_str(b, "k.f32"), put_u32(b, GGUF_V_F32), tw_buf_add(b, "\x00\x00\xc0\x3f", 4);
    put_str(b, "k.bool"), put_u32(b, GGUF_V_BOOL), tw_buf_putc(b, 1);
    put_str(b, "k.str"), put_u32(b, GGUF_V_STRING), put_str(b, "hello");
    put_str(b, "k.u64"), put_u32(b, GGUF_V_U64), put_u64(b, 1ull << 63);
    put_str(b, "k.i64"), put_u32(b, GGUF_V_I64), put_u64(b, (uint64_t)-2);
    put_str(b, "k.f64"), put_u32(b, GGUF_V_F64), tw_buf_add(b, "\0\0\0\0\0\0\xf8\x3f", 8);
    /* an array of two arrays of strings */
    put_str(b, "k.nested"), put_u32(b, GGUF_V_ARRAY), put_u32(b, GGUF_V_ARRAY), put_u64(b, 2);
    put_u32(b, GGUF_V_STRING), put_u64(b, 1), put_str(b, "x");
    put_u32(b, GGUF_V_STRING), put_u64(b, 2), put_str(b, "y"), put_str(b, "zz");
    put_str(b, "k.arr"), put_u32(b, GGUF_V_ARRAY), put_u32(b, GGUF_V_U16), put_u64(b, 2);
    tw_buf_add(b, "\x01\x00\x02\x00", 4);
    put_tensor(b, "a", 2, ne, GGUF_T_F32, 0);
    put_tensor(b, "b", 1, ne, GGUF_T_Q8_0, 256);
    pad_to(b, 32);
    tw_buf_add(b, z, 256);
    tw_buf_add(b, z, 34);
}

TEST(gguf_hand_made_file_with_every_type)
{
    struct tw_buf b = TW_BUF_INIT;
    struct tw_err err = TW_ERR_INIT;
    struct gguf_file *f;
    int64_t v;
    float fv;

    build_valid(&b);
    CHECK_OK(gguf_open_mem(b.data, b.len, "m.gguf", &f, &err), &err);
    CHECK_EQ_INT(gguf_n_kv(f), 14);
    CHECK_OK(gguf_get_i64(f, "k.i8", 0, &v, &err), &err);
    CHECK_EQ_INT(v, -7);
    CHECK_OK(gguf_get_i64(f, "k.u16", 0, &v, &err), &err);
    CHECK_EQ_INT(v, 0x0201);
    CHECK_OK(gguf_get_i64(f, "k.i16", 0, &v, &err), &err);
    CHECK_EQ_INT(v, -1);
    CHECK_OK(gguf_get_i64(f, "k.i64", 0, &v, &err), &err);
    CHECK_EQ_INT(v, -2);
    CHECK(gguf_get_i64(f, "k.u64", 0, &v, &err) == TW_EFORMAT); // 2^63 does not fit
    tw_err_clear(&err);
    CHECK_OK(gguf_get_f32(f, "k.f64", 0, &fv, &err), &err);
    CHECK(fv == 1.5f);
    CHECK_OK(gguf_get_f32(f, "k.f32", 0, &fv, &err), &err);
    CHECK(fv == 1.5f);
    CHECK_EQ_INT(gguf_kv_arr_type(f, gguf_find_key(f, "k.nested")), GGUF_V_ARRAY);
    CHECK_EQ_INT(gguf_kv_arr_n(f, gguf_find_key(f, "k.nested")), 2);
    CHECK_EQ_INT(gguf_find_tensor(f, "b")->nbytes, 34);
    gguf_close(f);

    /* Every truncation fails cleanly (and never reads past the end under ASan). */
    for (size_t n = 0; n < b.len; n++) {
        struct gguf_file *g = NULL;
        char *copy = tw_malloc(n ? n : 1);
        memcpy(copy, b.data, n);
        tw_err_clear(&err);
        CHECK_MSG(gguf_open_mem(copy, n, "m.gguf", &g, &err) < 0, "prefix of %zu bytes", n);
        CHECK(g == NULL && err.msg[0]);
        tw_free(copy);
    }
    tw_buf_release(&b);
}

/* v2 has v3's layout; copy_kv carries every value (nested arrays included) to a new file. */
TEST(gguf_v2_and_copy_of_every_type)
{
    struct tw_buf b = TW_BUF_INIT;
    struct tw_err err = TW_ERR_INIT;
    struct gguf_file *f, *g;
    struct gguf_writer *w;
    char path[1024];

    build_valid(&b);
    b.data[4] = 2; // version 2
    CHECK_OK(gguf_open_mem(b.data, b.len, "v2.gguf", &f, &err), &err);
    CHECK_EQ_INT(gguf_version(f), 2);
    w = gguf_writer_new();
    gguf_writer_copy_kv(w, f);
    for (int64_t k = 0; k < gguf_n_tensors(f); k++) {
        const struct gguf_tensor *t = gguf_tensor(f, k);
        char name[80];
        snprintf(name, sizeof(name), "%.*s", (int)t->name.len, t->name.ptr);
        gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data);
    }
    snprintf(path, sizeof(path), "%s/copy-v2.gguf", test_tmpdir());
    CHECK_OK(gguf_writer_write(w, path, &err), &err);
    gguf_writer_free(w);
    CHECK_OK(gguf_open(path, &g, &err), &err);
    CHECK_EQ_INT(gguf_version(g), 3);
    CHECK_EQ_INT(gguf_n_kv(g), gguf_n_kv(f));
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        struct gguf_str k1 = gguf_kv_key(f, i), k2 = gguf_kv_key(g, i);
        CHECK(k1.len == k2.len && !memcmp(k1.ptr, k2.ptr, k1.len));
        CHECK_EQ_INT(gguf_kv_type(f, i), gguf_kv_type(g, i));
    }
    {
        int64_t i = gguf_find_key(g, "k.nested");
        CHECK(i >= 0 && gguf_kv_arr_type(g, i) == GGUF_V_ARRAY && gguf_kv_arr_n(g, i) == 2);
    }
    /* everything after the version is byte-identical; like ggml, the writer also pads the
     * last tensor to the alignment */
    {
        size_t glen;
        char *gb = test_read_file(path, &glen);
        CHECK(gb && glen == (b.len + 31) / 32 * 32 && !memcmp(gb + 8, b.data + 8, b.len - 8));
        for (size_t i = b.len; i < glen; i++)
            CHECK(gb[i] == 0);
        tw_free(gb);
    }
    gguf_close(g);
    gguf_close(f);
    tw_buf_release(&b);
}

/* A failed write reports the path and leaves nothing behind. */
TEST(gguf_writer_errors)
{
    struct tw_err err = TW_ERR_INIT;
    struct gguf_writer *w = gguf_writer_new();
    int64_t ne[1] = {33};
    float x[33] = {0};
    char path[1024];

    gguf_writer_set_u32(w, "a", 1);
    CHECK(gguf_writer_write(w, "/nonexistent-dir/m.gguf", &err) == TW_EIO);
    CHECK(strstr(err.msg, "/nonexistent-dir/m.gguf") != NULL);
    gguf_writer_add_tensor(w, "q", GGUF_T_Q8_0, 1, ne, x); // 33 is not a multiple of 32
    tw_err_clear(&err);
    snprintf(path, sizeof(path), "%s/bad.gguf", test_tmpdir());
    CHECK(gguf_writer_write(w, path, &err) == TW_EINVAL);
    CHECK(strstr(err.msg, "'q'") != NULL);
    CHECK(access(path, F_OK) != 0);
    gguf_writer_free(w);
}

#define EXPECT_ERR(bufp, needle)                                                                   \
    do {                                                                                           \
        struct tw_err e_ = TW_ERR_INIT;                                                            \
        CHECK(open_buf(bufp, &e_) < 0);                                                            \
        CHECK_MSG(strstr(e_.msg, needle) != NULL, "message '%s' lacks '%s'", e_.msg, needle);      \
        tw_buf_release(bufp);                                                                      \
    } while (0)

TEST(gguf_rejects_hostile_files)
{
    struct tw_buf b = TW_BUF_INIT;
    uint64_t ne[5] = {32, 2, 1, 1, 1};
    uint8_t z[512] = {0};

    tw_buf_add(&b, "GGUX", 4), put_u32(&b, 3), put_u64(&b, 0), put_u64(&b, 0);
    EXPECT_ERR(&b, "bad magic");
    put_header(&b, 1, 0, 0);
    EXPECT_ERR(&b, "v1");
    put_header(&b, 4, 0, 0);
    EXPECT_ERR(&b, "version 4");
    put_header(&b, 0x03000000, 0, 0);
    EXPECT_ERR(&b, "big-endian");
    put_header(&b, 3, 0, 1ull << 60);
    EXPECT_ERR(&b, "keys cannot fit");
    put_header(&b, 3, 1ull << 40, 0);
    EXPECT_ERR(&b, "tensors cannot fit");

    put_header(&b, 3, 0, 2);
    put_str(&b, "a"), put_u32(&b, GGUF_V_U8), tw_buf_putc(&b, 1);
    put_str(&b, "a"), put_u32(&b, GGUF_V_U8), tw_buf_putc(&b, 1);
    EXPECT_ERR(&b, "duplicate key 'a'");

    put_header(&b, 3, 0, 1);
    put_str(&b, "a"), put_u32(&b, 13), put_u64(&b, 0);
    EXPECT_ERR(&b, "unknown value type 13");

    put_header(&b, 3, 0, 1);
    put_str(&b, "a"), put_u32(&b, GGUF_V_BOOL), tw_buf_putc(&b, 2);
    EXPECT_ERR(&b, "bool value 2");

    put_header(&b, 3, 0, 1);
    put_str(&b, "big"), put_u32(&b, GGUF_V_ARRAY), put_u32(&b, GGUF_V_U64), put_u64(&b, 1ull << 61);
    EXPECT_ERR(&b, "array of 2305843009213693952 u64 elements does not fit");

    put_header(&b, 3, 0, 1);
    put_str(&b, "s"), put_u32(&b, GGUF_V_STRING), put_u64(&b, 1000), tw_buf_add(&b, "abc", 3);
    EXPECT_ERR(&b, "truncated string value");

    put_header(&b, 3, 0, 1);
    put_str(&b, "deep"), put_u32(&b, GGUF_V_ARRAY);
    for (int d = 0; d < 10; d++)
        put_u32(&b, GGUF_V_ARRAY), put_u64(&b, 1);
    put_u32(&b, GGUF_V_U8), put_u64(&b, 0);
    EXPECT_ERR(&b, "nested deeper");

    put_header(&b, 3, 0, 1);
    put_str(&b, "general.alignment"), put_u32(&b, GGUF_V_U32), put_u32(&b, 48);
    EXPECT_ERR(&b, "not a power of two");

    put_header(&b, 3, 0, 1);
    put_str(&b, "general.alignment"), put_u32(&b, GGUF_V_U64), put_u64(&b, 64);
    EXPECT_ERR(&b, "expected u32");

    put_header(&b, 3, 1, 0);
    put_tensor(&b, "t", 5, ne, GGUF_T_F32, 0);
    EXPECT_ERR(&b, "has 5 dims, limit 4");

    put_header(&b, 3, 1, 0);
    put_tensor(&b, "t", 2, ne, 4, 0);
    EXPECT_ERR(&b, "unknown type id 4");

    put_header(&b, 3, 1, 0);
    put_tensor(&b, "t", 2, ne, 99, 0);
    EXPECT_ERR(&b, "unknown type id 99");

    put_header(&b, 3, 1, 0);
    ne[0] = 33;
    put_tensor(&b, "t", 2, ne, GGUF_T_Q4_0, 0);
    EXPECT_ERR(&b, "row length 33 is not a multiple of q4_0 block size 32");
    ne[0] = 32;

    put_header(&b, 3, 1, 0);
    {
        uint64_t big[4] = {1ull << 40, 1ull << 40, 1, 1};
        put_tensor(&b, "t", 2, big, GGUF_T_F32, 0);
    }
    EXPECT_ERR(&b, "overflows");

    put_header(&b, 3, 1, 0);
    {
        uint64_t neg[1] = {(uint64_t)-1};
        put_tensor(&b, "t", 1, neg, GGUF_T_F32, 0);
    }
    EXPECT_ERR(&b, "negative");

    put_header(&b, 3, 2, 0);
    put_tensor(&b, "t", 1, ne, GGUF_T_F32, 0);
    put_tensor(&b, "t", 1, ne, GGUF_T_F32, 128);
    EXPECT_ERR(&b, "duplicate tensor name 't'");

    put_header(&b, 3, 1, 0);
    put_tensor(&b, "0123456789012345678901234567890123456789012345678901234567890123", 1, ne,
               GGUF_T_F32, 0);
    EXPECT_ERR(&b, "is 64 bytes, limit 63");

    put_header(&b, 3, 2, 0);
    put_tensor(&b, "t", 1, ne, GGUF_T_F32, 0);
    put_tensor(&b, "u", 1, ne, GGUF_T_F32, 129);
    pad_to(&b, 32);
    tw_buf_add(&b, z, 512);
    EXPECT_ERR(&b, "tensor 'u' has data offset 129, expected 128");

    put_header(&b, 3, 1, 0);
    put_tensor(&b, "blk.0.attn_q.weight", 2, ne, GGUF_T_F32, 0);
    pad_to(&b, 32);
    tw_buf_add(&b, z, 100);
    {
        char want[128];
        snprintf(want, sizeof(want), "'m.gguf': tensor 'blk.0.attn_q.weight' ends at byte %zu, "
                                     "file has %zu",
                 b.len - 100 + 256, b.len);
        EXPECT_ERR(&b, want);
    }
}

TEST(gguf_open_reports_missing_file)
{
    struct tw_err err = TW_ERR_INIT;
    struct gguf_file *f = (struct gguf_file *)&err;
    CHECK(gguf_open("/nonexistent/x.gguf", &f, &err) == TW_ENOENT);
    CHECK(f == NULL);
    CHECK(strstr(err.msg, "/nonexistent/x.gguf") != NULL);
}

TEST(gguf_type_table)
{
    CHECK_EQ_INT(gguf_type_block_size(GGUF_T_Q4_K), 256);
    CHECK_EQ_INT(gguf_type_block_bytes(GGUF_T_Q4_K), 144);
    CHECK_EQ_INT(gguf_type_block_bytes(GGUF_T_Q6_K), 210);
    CHECK_EQ_INT(gguf_type_block_bytes(GGUF_T_Q8_0), 34);
    CHECK_EQ_INT(gguf_row_size(GGUF_T_Q4_0, 64), 36);
    CHECK_EQ_INT(gguf_row_size(GGUF_T_Q4_0, 65), 0);
    CHECK_EQ_STR(gguf_type_name(GGUF_T_BF16), "bf16");
    CHECK_EQ_STR(gguf_type_name((enum gguf_ttype)5), "unknown");
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
