/* fuzz_gguf.c - the GGUF reader on arbitrary bytes: every input must open cleanly or fail with a
 * message, and everything an opened file hands out must lie inside the input. */
#include "base/err.h"
#include "nn/gguf.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tw_err err = TW_ERR_INIT;
    struct gguf_file *f = NULL;
    volatile uint8_t sink = 0;

    if (gguf_open_mem(data, size, "fuzz.gguf", &f, &err) < 0) {
        TW_ASSERT(f == NULL && err.code < 0 && err.msg[0]);
        return 0;
    }
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        struct gguf_str k = gguf_kv_key(f, i);
        TW_ASSERT((const uint8_t *)k.ptr >= data && (const uint8_t *)k.ptr + k.len <= data + size);
        if (gguf_kv_type(f, i) == GGUF_V_ARRAY && gguf_kv_arr_type(f, i) == GGUF_V_STRING) {
            for (uint64_t j = 0; j < gguf_kv_arr_n(f, i); j++) {
                struct gguf_str s = gguf_kv_arr_str(f, i, j);
                if (s.len)
                    sink ^= (uint8_t)s.ptr[s.len - 1];
            }
        }
    }
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const struct gguf_tensor *t = gguf_tensor(f, i);
        TW_ASSERT((const uint8_t *)t->data >= data &&
                  (const uint8_t *)t->data + t->nbytes <= data + size);
        if (t->nbytes)
            sink ^= ((const uint8_t *)t->data)[t->nbytes - 1];
    }
    (void)sink;
    gguf_close(f);
    return 0;
}
