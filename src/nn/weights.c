/* weights.c - checked weight lookup (see weights.h). */
#include "nn/weights.h"

#include "nn/kq.h"

const struct gguf_tensor *nn_weight(const struct gguf_file *f, const char *name, int64_t ne0,
                                    int64_t ne1, bool required, int *rc, struct tw_err *err)
{
    const struct gguf_tensor *t = gguf_find_tensor(f, name);

    *rc = 0;
    if (!t) {
        if (required)
            *rc = tw_errf(err, TW_EFORMAT, "tensor '%s' is missing", name);
        return NULL;
    }
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1) {
        *rc = tw_errf(err, TW_EFORMAT,
                      "tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]",
                      name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                      (long long)t->ne[3], (long long)ne0, (long long)ne1);
        return NULL;
    }
    if (!kq_type_supported(t->type)) {
        *rc = tw_errf(err, TW_EUNSUP, "tensor '%s' has type %s, which the kernels do not support",
                      name, gguf_type_name(t->type));
        return NULL;
    }
    return t;
}
