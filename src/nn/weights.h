/* weights.h - looking up model weights in a GGUF file with shape and type checks, shared by the
 * decoder (llm) and the encoder (enc). */
#ifndef TW_WEIGHTS_H
#define TW_WEIGHTS_H

#include "base/err.h"
#include "nn/gguf.h"

#include <stdbool.h>
#include <stdint.h>

/* The tensor 'name' of shape [ne0, ne1] (ne1 = 1 for vectors) in a type the kernels support.
 * Returns NULL with *rc = 0 when it is absent and optional; NULL with *rc < 0 and a message in
 * 'err' ("tensor 'x' has shape [..], expected [..]") when it is missing or does not fit. */
const struct gguf_tensor *nn_weight(const struct gguf_file *f, const char *name, int64_t ne0,
                                    int64_t ne1, bool required, int *rc, struct tw_err *err);

#endif
