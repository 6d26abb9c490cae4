/* fuzz_hnsw.c - the vector index file loader (vec_index_load_mem) on hostile input.
 *
 * The first input byte picks the mode: bit 0 set means "recompute the checksums first", so that
 * mutated images get past the checksums and exercise the structural validation and, when they
 * load, the graph walk, insert, delete and compaction over whatever graph they hold. */
#include "base/mem.h"
#include "vector/vec.h"
#include "vector/vec_int.h"

#include <stdint.h>
#include <string.h>

static void exercise(struct vec_index *idx)
{
    struct tw_err err = TW_ERR_INIT;
    struct vec_params p;
    struct vec_hit hits[8];
    uint32_t nh;
    float *q;

    vec_index_params(idx, &p);
    if (p.dim > 4096)
        return;
    q = tw_calloc(p.dim, sizeof(*q));
    if (!q)
        return;
    for (uint32_t i = 0; i < p.dim; i++)
        q[i] = (float)((i * 7) % 5) - 1.5f;
    vec_index_search(idx, q, 8, 0, NULL, NULL, 0, hits, &nh, &err);
    tw_err_clear(&err);
    vec_index_search(idx, q, 3, 16, NULL, NULL, VEC_SEARCH_EXACT, hits, &nh, &err);
    tw_err_clear(&err);
    if (vec_index_count(idx) < 2000) {
        vec_index_add(idx, 0xfeedULL, q, &err);
        tw_err_clear(&err);
        if (nh)
            vec_index_delete(idx, hits[0].id, &err);
        tw_err_clear(&err);
        vec_index_search(idx, q, 8, 0, NULL, NULL, 0, hits, &nh, &err);
        tw_err_clear(&err);
        vec_index_compact(idx, &err);
    }
    tw_free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tw_err err = TW_ERR_INIT;
    struct vec_index *idx = NULL;
    uint8_t *img;

    if (size < 1)
        return 0;
    img = tw_malloc(size);
    if (!img)
        return 0;
    memcpy(img, data + 1, size - 1);
    if (data[0] & 1)
        vec__file_reseal(img, size - 1);
    if (vec_index_load_mem(img, size - 1, "fuzz", &idx, &err) == 0) {
        exercise(idx);
        vec_index_free(idx);
    }
    tw_free(img);
    return 0;
}
