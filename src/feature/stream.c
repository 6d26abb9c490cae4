/* stream.c - the feature pipeline: change log -> clean -> chunk -> embed -> feature store. */
#include "feature/stream.h"

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/time.h"
#include "feature/feat.h"
#include "nn/enc.h"
#include "nn/tok.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

/* ---- embedder ---- */

#define EMBED_BATCH 16

struct feat_embedder {
    struct enc_model *model;
    struct tok *tok;
    struct tw_pool *pool;
    char name[128];
};

int feat_embedder_open(const char *path, int n_threads, struct feat_embedder **out,
                       struct tw_err *err)
{
    struct feat_embedder *e;
    const char *base = strrchr(path, '/');
    int rc;

    *out = NULL;
    e = tw_calloc(1, sizeof(*e));
    if (!e)
        return tw_errf(err, TW_ENOMEM, "out of memory loading '%s'", path);
    snprintf(e->name, sizeof(e->name), "%s", base ? base + 1 : path);
    if ((rc = enc_model_load(path, &e->model, err)) < 0)
        goto fail;
    if ((rc = tok_new_from_gguf(enc_model_gguf(e->model), &e->tok, err)) < 0) {
        tw_err_ctx(err, "'%s'", path);
        goto fail;
    }
    if ((rc = tw_pool_new(n_threads, &e->pool, err)) < 0)
        goto fail;
    *out = e;
    return 0;
fail:
    feat_embedder_free(e);
    return rc;
}

void feat_embedder_free(struct feat_embedder *e)
{
    if (!e)
        return;
    tw_pool_free(e->pool);
    tok_free(e->tok);
    enc_model_free(e->model);
    tw_free(e);
}

const char *feat_embedder_name(const struct feat_embedder *e)
{
    return e->name;
}

int feat_embedder_dim(const struct feat_embedder *e)
{
    return enc_model_hparams(e->model)->n_embd;
}

int feat_embedder_max_tokens(const struct feat_embedder *e)
{
    return enc_model_hparams(e->model)->n_ctx - 2;
}

struct tw_pool *feat_embedder_pool(struct feat_embedder *e)
{
    return e->pool;
}

int feat_embedder_count(void *ctx, const char *text, size_t len)
{
    struct feat_embedder *e = ctx;
    struct tw_err err = TW_ERR_INIT;
    size_t n = 0;
    int rc = tok_encode(e->tok, text, len, false, false, NULL, 0, &n, &err);
    if (rc < 0 && rc != TW_ELIMIT)
        return rc;
    return n > (size_t)1 << 30 ? 1 << 30 : (int)n;
}

int feat_embedder_embed(struct feat_embedder *e, const char *const *texts, const size_t *lens,
                        int n, float *out, struct tw_err *err)
{
    const int n_ctx = enc_model_hparams(e->model)->n_ctx;
    const int dim = feat_embedder_dim(e);
    int32_t *ids[EMBED_BATCH] = {0};
    int n_ids[EMBED_BATCH];
    int rc = 0;

    for (int i = 0; i < EMBED_BATCH; i++) {
        ids[i] = tw_mallocarray((size_t)n_ctx, sizeof(int32_t));
        if (!ids[i]) {
            rc = tw_errf(err, TW_ENOMEM, "out of memory embedding");
            goto out;
        }
    }
    for (int b = 0; b < n && rc == 0; b += EMBED_BATCH) {
        int nb = n - b < EMBED_BATCH ? n - b : EMBED_BATCH;
        for (int i = 0; i < nb; i++) {
            size_t need = 0;
            rc = tok_encode(e->tok, texts[b + i], lens[b + i], true, false, ids[i],
                            (size_t)n_ctx, &need, err);
            if (rc == TW_ELIMIT) {
                /* Too long: keep the first n_ctx - 1 tokens and end with [SEP]. */
                int32_t *all = tw_mallocarray(need, sizeof(int32_t));
                size_t n2;
                if (!all) {
                    rc = tw_errf(err, TW_ENOMEM, "out of memory embedding");
                    goto out;
                }
                tw_err_clear(err);
                rc = tok_encode(e->tok, texts[b + i], lens[b + i], true, false, all, need, &n2,
                                err);
                if (rc == 0) {
                    memcpy(ids[i], all, (size_t)(n_ctx - 1) * sizeof(int32_t));
                    ids[i][n_ctx - 1] = all[n2 - 1];
                    need = (size_t)n_ctx;
                }
                tw_free(all);
            }
            if (rc < 0)
                goto out;
            n_ids[i] = (int)need;
        }
        rc = enc_encode(e->model, (const int32_t *const *)ids, n_ids, nb, ENC_POOL_NONE, true,
                        out + (size_t)b * dim, NULL, e->pool, err);
    }
out:
    for (int i = 0; i < EMBED_BATCH; i++)
        tw_free(ids[i]);
    return rc;
}

/* ---- one event's work ---- */

struct ev_work {
    int64_t seq;
    bool is_delete;
    char doc_id[37];
    cJSON *json;
    enum feat_kind kind;
    struct vec_doc doc; // strings point into json / cleaned
    char *cleaned;
    size_t cleaned_len;
    struct feat_chunk *chunks;
    size_t n_chunks;
    char (*chunk_ids)[37];
    float *vectors;
    bool failed;
    char errmsg[TW_ERR_MSG_MAX];
};

static void work_release(struct ev_work *w)
{
    cJSON_Delete(w->json);
    tw_free(w->cleaned);
    tw_free(w->chunks);
    tw_free(w->chunk_ids);
    tw_free(w->vectors);
    memset(w, 0, sizeof(*w));
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void work_fail(struct ev_work *w, const char *msg)
{
    w->failed = true;
    snprintf(w->errmsg, sizeof(w->errmsg), "%s", msg);
}

/* Parses, cleans and chunks one event (worker threads). */
static void prepare_event(struct ev_work *w, const struct doc_event *ev,
                          const struct feat_chunker *ck)
{
    struct tw_err err = TW_ERR_INIT;
    const cJSON *doc;
    const char *content, *pub;

    w->seq = ev->seq;
    snprintf(w->doc_id, sizeof(w->doc_id), "%s", ev->doc_id);
    w->is_delete = !strcmp(ev->op, "delete");
    if (w->is_delete)
        return;
    w->json = cJSON_ParseWithLength(ev->json, ev->json_len);
    doc = w->json ? cJSON_GetObjectItemCaseSensitive(w->json, "document") : NULL;
    content = doc ? jstr(doc, "content") : NULL;
    if (!doc || !content || !jstr(doc, "kind") ||
        feat_kind_parse(jstr(doc, "kind"), &w->kind) != 0) {
        work_fail(w, "event has no document with a known kind and content");
        return;
    }
    w->doc = (struct vec_doc){w->doc_id, jstr(doc, "kind"), jstr(doc, "platform"),
                              jstr(doc, "author_id"), jstr(doc, "author"), jstr(doc, "url"),
                              jstr(doc, "title"), INT64_MIN, NULL, 0, jstr(doc, "content_hash"),
                              0};
    if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(doc, "version")))
        w->doc.version = (int64_t)cJSON_GetObjectItemCaseSensitive(doc, "version")->valuedouble;
    pub = jstr(doc, "published_at");
    if (pub && tw_time_parse(pub, strlen(pub), &w->doc.published_at, &err) < 0)
        w->doc.published_at = INT64_MIN;
    tw_err_clear(&err);
    if (feat_clean(w->kind, content, strlen(content), &w->cleaned, &w->cleaned_len, &err) < 0 ||
        feat_chunk(ck, w->kind, w->cleaned, w->cleaned_len, &w->chunks, &w->n_chunks, &err) < 0) {
        work_fail(w, err.msg);
        return;
    }
    w->doc.content = w->cleaned;
    w->doc.content_len = w->cleaned_len;
    w->chunk_ids = tw_calloc(w->n_chunks ? w->n_chunks : 1, sizeof(*w->chunk_ids));
    if (!w->chunk_ids) {
        work_fail(w, "out of memory");
        return;
    }
    for (size_t i = 0; i < w->n_chunks; i++)
        feat_chunk_id(w->doc_id, (int)i, w->cleaned + w->chunks[i].start,
                      w->chunks[i].end - w->chunks[i].start, w->chunk_ids[i]);
}

struct prep_job {
    struct ev_work *w;
    const struct doc_event *ev;
    size_t n;
    const struct feat_chunker *ck;
};

static void prep_worker(void *arg, int ith, int nth)
{
    struct prep_job *j = arg;
    long a, b;
    tw_pool_slice((long)j->n, ith, nth, &a, &b);
    for (long i = a; i < b; i++)
        prepare_event(&j->w[i], &j->ev[i], j->ck);
}

/* Embeds every chunk of the batch, EMBED_BATCH texts at a time (the encoder's own workers do
 * the matmuls). */
static int embed_batch(struct feat_embedder *emb, struct ev_work *w, size_t n,
                       struct tw_err *err)
{
    const int dim = feat_embedder_dim(emb);
    struct tw_buf texts[EMBED_BATCH];
    const char *ptr[EMBED_BATCH];
    size_t len[EMBED_BATCH];
    float *dst[EMBED_BATCH];
    float *tmp = tw_mallocarray((size_t)EMBED_BATCH * (size_t)dim, sizeof(float));
    int nb = 0, rc = 0;

    if (!tmp)
        return tw_errf(err, TW_ENOMEM, "out of memory embedding");
    for (int i = 0; i < EMBED_BATCH; i++)
        tw_buf_init(&texts[i], (size_t)1 << 26);
    for (size_t e = 0; e < n && rc == 0; e++) {
        struct ev_work *x = &w[e];
        if (x->failed || x->is_delete || x->n_chunks == 0)
            continue;
        x->vectors = tw_mallocarray(x->n_chunks * (size_t)dim, sizeof(float));
        if (!x->vectors) {
            rc = tw_errf(err, TW_ENOMEM, "out of memory embedding");
            break;
        }
        for (size_t c = 0; c < x->n_chunks && rc == 0; c++) {
            tw_buf_reset(&texts[nb]);
            feat_embed_text(x->kind, x->doc.title, x->cleaned + x->chunks[c].start,
                            x->chunks[c].end - x->chunks[c].start, &texts[nb]);
            if (texts[nb].err) {
                rc = tw_errf(err, texts[nb].err, "chunk text too large to embed");
                break;
            }
            ptr[nb] = texts[nb].data;
            len[nb] = texts[nb].len;
            dst[nb] = x->vectors + c * (size_t)dim;
            /* Flush when full, or at the very last chunk of the batch. */
            if (++nb == EMBED_BATCH) {
                if ((rc = feat_embedder_embed(emb, ptr, len, nb, tmp, err)) < 0)
                    break;
                for (int i = 0; i < nb; i++)
                    memcpy(dst[i], tmp + (size_t)i * dim, (size_t)dim * sizeof(float));
                nb = 0;
            }
        }
    }
    if (rc == 0 && nb > 0 && (rc = feat_embedder_embed(emb, ptr, len, nb, tmp, err)) == 0)
        for (int i = 0; i < nb; i++)
            memcpy(dst[i], tmp + (size_t)i * dim, (size_t)dim * sizeof(float));
    for (int i = 0; i < EMBED_BATCH; i++)
        tw_buf_release(&texts[i]);
    tw_free(tmp);
    return rc;
}

/* Writes the batch and the new offset in one transaction. */
static int write_batch(struct vec_store *vs, struct ev_work *w, size_t n, int dim,
                       struct feat_stream_stats *st, struct tw_err *err)
{
    struct feat_stream_stats add = {0};
    struct vec_chunk *rows = NULL;
    size_t cap = 0;
    int rc;

    if ((rc = vec_store_begin(vs, err)) < 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct ev_work *x = &w[i];
        if (x->is_delete) {
            rc = vec_store_delete_doc(vs, x->doc_id, err);
            add.deletes++;
            continue;
        }
        if (x->failed) {
            tw_log(TW_LOG_WARN, "feature", "event %lld (document %s) skipped: %s",
                   (long long)x->seq, x->doc_id, x->errmsg);
            add.errors++;
            continue;
        }
        if (x->n_chunks > cap) {
            struct vec_chunk *r = tw_reallocarray(rows, x->n_chunks, sizeof(*r));
            if (!r) {
                rc = tw_errf(err, TW_ENOMEM, "out of memory writing chunks");
                break;
            }
            rows = r;
            cap = x->n_chunks;
        }
        for (size_t c = 0; c < x->n_chunks; c++)
            rows[c] = (struct vec_chunk){x->chunk_ids[c], (int)c, x->chunks[c].start,
                                         x->chunks[c].end,
                                         x->vectors ? x->vectors + c * (size_t)dim : NULL};
        rc = vec_store_put_doc(vs, &x->doc, rows, x->n_chunks, err);
        add.upserts++;
        add.chunks += (int64_t)x->n_chunks;
    }
    if (rc == 0 && n > 0)
        rc = vec_store_set_offset(vs, FEAT_CONSUMER, w[n - 1].seq, err);
    if (rc == 0)
        rc = vec_store_commit(vs, err);
    tw_free(rows);
    if (rc < 0) {
        vec_store_rollback(vs);
        return rc;
    }
    st->deletes += add.deletes;
    st->errors += add.errors;
    st->upserts += add.upserts;
    st->chunks += add.chunks;
    st->events += (int64_t)n;
    return 0;
}

/* ---- the run loop ---- */

static int process_batch(struct doc_store *ds, struct vec_store *vs, struct feat_embedder *emb,
                         const struct feat_chunker *ck, int64_t offset, int batch,
                         int64_t *new_offset, struct feat_stream_stats *st, struct tw_err *err)
{
    struct doc_event *ev = NULL;
    struct ev_work *w = NULL;
    size_t n = 0;
    int rc;

    *new_offset = offset;
    if ((rc = doc_changes_read(ds, offset, (size_t)batch, &ev, &n, err)) < 0 || n == 0)
        goto out;
    w = tw_calloc(n, sizeof(*w));
    if (!w) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory reading events");
        goto out;
    }
    {
        struct prep_job job = {w, ev, n, ck};
        tw_pool_run(emb ? feat_embedder_pool(emb) : NULL, prep_worker, &job);
    }
    if (emb && (rc = embed_batch(emb, w, n, err)) < 0)
        goto out;
    if ((rc = write_batch(vs, w, n, emb ? feat_embedder_dim(emb) : 0, st, err)) < 0)
        goto out;
    *new_offset = ev[n - 1].seq;
out:
    for (size_t i = 0; w && i < n; i++)
        work_release(&w[i]);
    tw_free(w);
    doc_events_free(ev, n);
    return rc;
}

int feat_stream_run(struct doc_store *ds, struct vec_store *vs, struct feat_embedder *emb,
                    const struct feat_stream_opts *o, volatile sig_atomic_t *stop,
                    struct feat_stream_stats *st, struct tw_err *err)
{
    struct feat_chunker ck;
    int batch = o->batch_events > 0 ? o->batch_events : 64;
    int64_t offset, last = 0, last_save = tw_time_mono_ms();
    int rc;

    memset(st, 0, sizeof(*st));
    ck.max_tokens = o->max_tokens > 0 ? o->max_tokens : emb ? 256 : 128;
    if (emb && ck.max_tokens > feat_embedder_max_tokens(emb))
        ck.max_tokens = feat_embedder_max_tokens(emb);
    ck.overlap_tokens = o->overlap_tokens >= 0 && o->overlap_tokens < ck.max_tokens
                            ? o->overlap_tokens
                            : ck.max_tokens / 8;
    ck.count = emb ? feat_embedder_count : feat_count_approx;
    ck.count_ctx = emb;
    if ((rc = vec_store_set_model(vs, emb ? feat_embedder_name(emb) : "",
                                  emb ? feat_embedder_dim(emb) : 0, err)) < 0 ||
        (rc = vec_store_sync_index(vs, false, err)) < 0 ||
        (rc = vec_store_offset(vs, FEAT_CONSUMER, &offset, err)) < 0)
        return rc;
    for (;;) {
        int64_t next;
        if (stop && *stop)
            break;
        if ((rc = doc_changes_last_seq(ds, &last, err)) < 0)
            return rc;
        if (offset > last) {
            return tw_errf(err, TW_ESTATE,
                           "the feature store has processed the change log up to %lld, but the "
                           "log ends at %lld (a different document store?); run 'twin stream "
                           "--reset'", (long long)offset, (long long)last);
        }
        if (offset == last) {
            int64_t now = tw_time_mono_ms();
            if ((rc = vec_store_sync_index(vs, false, err)) < 0)
                return rc;
            if (!o->follow)
                break;
            if (now - last_save >= (o->save_every_ms > 0 ? o->save_every_ms : 5000)) {
                if ((rc = vec_store_save_index(vs, err)) < 0)
                    return rc;
                last_save = now;
            }
            rc = doc_changes_wait(ds, offset, 500, err);
            if (rc == TW_ETIMEOUT) {
                tw_err_clear(err);
                continue;
            }
            if (rc < 0)
                return rc;
            continue;
        }
        if ((rc = process_batch(ds, vs, emb, &ck, offset, batch, &next, st, err)) < 0)
            return rc;
        offset = next;
        if (o->progress)
            o->progress(o->progress_ctx, st->events, st->events + (last - offset), st->chunks);
    }
    if ((rc = vec_store_sync_index(vs, false, err)) < 0)
        return rc;
    return vec_store_save_index(vs, err);
}
