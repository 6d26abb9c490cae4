/* ds.c - the instruction / pre-training dataset: read JSONL or text, render with the chat
 * template, tokenize, mask, split, pack or pad into rows (ft.h). */
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/sha256.h"
#include "nn/chat.h"
#include "nn/tok.h"
#include "nn/train.h"
#include "train/ft.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- growable arrays ---- */

/* One unit: an example (instruction data) or a window (text), before rows are cut. */
struct ds_unit {
    int32_t *ids;
    uint8_t *flags; // flags[j]: token j counts as a target
    size_t n;
};

struct ds_units {
    struct ds_unit *u;
    size_t n, cap;
};

static void units_release(struct ds_units *us)
{
    for (size_t i = 0; i < us->n; i++) {
        tw_free(us->u[i].ids);
        tw_free(us->u[i].flags);
    }
    tw_free(us->u);
    memset(us, 0, sizeof(*us));
}

/* Takes ids/flags over (freed on failure too). */
static int units_push(struct ds_units *us, int32_t *ids, uint8_t *flags, size_t n,
                      struct tw_err *err)
{
    if (us->n == us->cap) {
        size_t cap = us->cap ? us->cap * 2 : 64;
        struct ds_unit *u = tw_reallocarray(us->u, cap, sizeof(*u));
        if (!u) {
            tw_free(ids);
            tw_free(flags);
            return tw_errf(err, TW_ENOMEM, "out of memory building the dataset");
        }
        us->u = u;
        us->cap = cap;
    }
    us->u[us->n++] = (struct ds_unit){ids, flags, n};
    return TW_OK;
}

/* ---- files ---- */

struct ds_paths {
    char **p;
    size_t n, cap;
};

static void paths_release(struct ds_paths *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        tw_free(ps->p[i]);
    tw_free(ps->p);
    memset(ps, 0, sizeof(*ps));
}

static int paths_add(struct ds_paths *ps, const char *path, struct tw_err *err)
{
    char *d;
    if (ps->n >= DS_MAX_FILES)
        return tw_errf(err, TW_ELIMIT, "dataset has more than %d files", DS_MAX_FILES);
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 16;
        char **p = tw_reallocarray(ps->p, cap, sizeof(*p));
        if (!p)
            return tw_errf(err, TW_ENOMEM, "out of memory listing '%s'", path);
        ps->p = p;
        ps->cap = cap;
    }
    d = tw_strdup(path);
    if (!d)
        return tw_errf(err, TW_ENOMEM, "out of memory listing '%s'", path);
    ps->p[ps->n++] = d;
    return TW_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular files under 'path' (itself if a file), hidden entries skipped, depth-limited. */
static int list_files(const char *path, int depth, struct ds_paths *ps, struct tw_err *err)
{
    struct stat st;
    DIR *d;
    struct dirent *e;
    int rc = TW_OK;
    if (stat(path, &st) < 0)
        return tw_errf(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "cannot read '%s': %s", path,
                       strerror(errno));
    if (S_ISREG(st.st_mode))
        return paths_add(ps, path, err);
    if (!S_ISDIR(st.st_mode))
        return TW_OK;
    if (depth > 16)
        return tw_errf(err, TW_ELIMIT, "folder '%s' is nested more than 16 deep", path);
    d = opendir(path);
    if (!d)
        return tw_errf(err, TW_EIO, "cannot open folder '%s': %s", path, strerror(errno));
    {
        struct ds_paths sub = {0};
        while (rc == TW_OK && (e = readdir(d)) != NULL) {
            char child[4096];
            if (e->d_name[0] == '.')
                continue;
            if ((size_t)snprintf(child, sizeof(child), "%s/%s", path, e->d_name) >= sizeof(child))
                rc = tw_errf(err, TW_ELIMIT, "path too long under '%s'", path);
            else
                rc = paths_add(&sub, child, err);
        }
        closedir(d);
        if (rc == TW_OK)
            qsort(sub.p, sub.n, sizeof(*sub.p), cmp_str);
        for (size_t i = 0; rc == TW_OK && i < sub.n; i++)
            rc = list_files(sub.p[i], depth + 1, ps, err);
        paths_release(&sub);
    }
    return rc;
}

static int read_file(const char *path, size_t *total, char **out, size_t *len, struct tw_err *err)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *buf;
    size_t n;
    *out = NULL;
    if (!f)
        return tw_errf(err, TW_EIO, "cannot open '%s': %s", path, strerror(errno));
    if (fstat(fileno(f), &st) < 0 || st.st_size < 0) {
        fclose(f);
        return tw_errf(err, TW_EIO, "cannot stat '%s'", path);
    }
    if ((size_t)st.st_size > DS_MAX_FILE_BYTES || *total + (size_t)st.st_size > DS_MAX_BYTES) {
        fclose(f);
        return tw_errf(err, TW_ELIMIT,
                       "'%s' is %lld bytes: over the dataset limit (%zu per file, "
                       "%zu in all)",
                       path, (long long)st.st_size, DS_MAX_FILE_BYTES, DS_MAX_BYTES);
    }
    buf = tw_malloc((size_t)st.st_size + 1);
    if (!buf) {
        fclose(f);
        return tw_errf(err, TW_ENOMEM, "out of memory reading '%s'", path);
    }
    n = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    if (n != (size_t)st.st_size) {
        tw_free(buf);
        return tw_errf(err, TW_EIO, "short read on '%s'", path);
    }
    buf[n] = 0;
    *total += n;
    *out = buf;
    *len = n;
    return TW_OK;
}

static int is_jsonl(const char *path)
{
    size_t n = strlen(path);
    return n >= 6 && !strcmp(path + n - 6, ".jsonl");
}

/* ---- tokenizing ---- */

static int encode(const struct tok *tk, const char *text, size_t len, int add_special,
                  int parse_special, int32_t **ids, size_t *n, struct tw_err *err)
{
    size_t need = 0;
    int rc;
    *ids = NULL;
    *n = 0;
    rc = tok_encode(tk, text, len, add_special, parse_special, NULL, 0, &need, err);
    if (rc < 0 && rc != TW_ELIMIT)
        return rc;
    if (rc == TW_ELIMIT && need == 0)
        return rc;
    tw_err_clear(err);
    *ids = tw_mallocarray(need + 2, sizeof(int32_t)); // room for an EOS
    if (!*ids)
        return tw_errf(err, TW_ENOMEM, "out of memory tokenizing %zu bytes", len);
    rc = tok_encode(tk, text, len, add_special, parse_special, *ids, need + 2, n, err);
    if (rc < 0) {
        tw_free(*ids);
        *ids = NULL;
    }
    return rc;
}

static size_t common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i])
        i++;
    return i;
}

static int render(int tmpl, const struct llm_chat_msg *msgs, size_t n, bool gen, struct tw_buf *b,
                  struct tw_err *err)
{
    tw_buf_reset(b);
    return llm_chat_render((enum llm_chat_tmpl)tmpl, msgs, n, gen, b, err);
}

static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The messages of an example: chat "messages" or Alpaca fields. *alpaca_user is a new string
 * the caller frees (NULL for chat). */
static int example_msgs(const cJSON *j, struct llm_chat_msg *msgs, size_t *n, char **alpaca_user,
                        struct tw_err *err)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "messages");
    size_t k = 0, n_asst = 0;
    *alpaca_user = NULL;
    if (!cJSON_IsObject(j))
        return tw_errf(err, TW_EFORMAT, "not a JSON object");
    if (arr) {
        const cJSON *m;
        if (!cJSON_IsArray(arr))
            return tw_errf(err, TW_EFORMAT, "\"messages\" is not an array");
        cJSON_ArrayForEach(m, arr)
        {
            const char *role = json_str(m, "role"), *content = json_str(m, "content");
            if (k >= DS_MAX_MESSAGES)
                return tw_errf(err, TW_ELIMIT, "more than %d messages", DS_MAX_MESSAGES);
            if (!role || !content)
                return tw_errf(err, TW_EFORMAT,
                               "message %zu lacks a string \"role\" or "
                               "\"content\"",
                               k + 1);
            if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))
                return tw_errf(err, TW_EFORMAT,
                               "message %zu has role '%.40s' (want system, user "
                               "or assistant)",
                               k + 1, role);
            n_asst += !strcmp(role, "assistant");
            msgs[k++] = (struct llm_chat_msg){role, content};
        }
        if (!n_asst)
            return tw_errf(err, TW_EFORMAT, "no assistant message to learn from");
    } else {
        const char *ins = json_str(j, "instruction"), *in = json_str(j, "input");
        const char *outp = json_str(j, "output");
        struct tw_buf b;
        if (!ins || !outp)
            return tw_errf(err, TW_EFORMAT,
                           "neither \"messages\" nor string \"instruction\" and "
                           "\"output\"");
        tw_buf_init(&b, DS_MAX_FILE_BYTES);
        tw_buf_puts(&b, ins);
        if (in && in[0]) {
            tw_buf_puts(&b, "\n\n");
            tw_buf_puts(&b, in);
        }
        if (b.err) {
            tw_buf_release(&b);
            return tw_errf(err, b.err, "example too large");
        }
        *alpaca_user = tw_buf_detach(&b, NULL);
        if (!*alpaca_user)
            return tw_errf(err, TW_ENOMEM, "out of memory");
        msgs[k++] = (struct llm_chat_msg){"user", *alpaca_user};
        msgs[k++] = (struct llm_chat_msg){"assistant", outp};
    }
    *n = k;
    return TW_OK;
}

/* Loss flags for the assistant turns: the tokens between the rendering up to the turn's
 * generation prompt and the rendering including the turn. Both are compared token by token
 * with the whole conversation, so a tokenization that merges across the boundary only moves
 * it by the merged token. */
static int flag_turns(const struct tok *tk, int tmpl, const struct llm_chat_msg *msgs, size_t n,
                      const int32_t *ids, size_t n_ids, uint8_t *flags, struct tw_buf *b,
                      struct tw_err *err)
{
    for (size_t i = 0; i < n; i++) {
        int32_t *p = NULL;
        size_t np = 0, lo, hi;
        int rc;
        if (strcmp(msgs[i].role, "assistant"))
            continue;
        if ((rc = render(tmpl, msgs, i, true, b, err)) < 0 ||
            (rc = encode(tk, b->data, b->len, true, true, &p, &np, err)) < 0)
            return rc;
        lo = common_prefix(p, np, ids, n_ids);
        tw_free(p);
        if ((rc = render(tmpl, msgs, i + 1, false, b, err)) < 0 ||
            (rc = encode(tk, b->data, b->len, true, true, &p, &np, err)) < 0)
            return rc;
        hi = common_prefix(p, np, ids, n_ids);
        if (i + 1 == n)
            hi = n_ids;
        tw_free(p);
        for (size_t j = lo; j < hi; j++)
            flags[j] = 1;
    }
    return TW_OK;
}

static int encode_obj(const cJSON *j, const struct tok *tk, int tmpl, int32_t **ids_out,
                      uint8_t **flags_out, size_t *n_out, struct tw_err *err)
{
    struct llm_chat_msg *msgs = tw_mallocarray(DS_MAX_MESSAGES, sizeof(*msgs));
    char *alpaca = NULL;
    struct tw_buf b;
    int32_t *ids = NULL;
    uint8_t *flags = NULL;
    size_t n_msgs = 0, n = 0;
    int rc;
    *ids_out = NULL;
    *flags_out = NULL;
    *n_out = 0;
    if (!msgs)
        return tw_errf(err, TW_ENOMEM, "out of memory");
    tw_buf_init(&b, DS_MAX_FILE_BYTES * 2);
    rc = example_msgs(j, msgs, &n_msgs, &alpaca, err);
    if (rc < 0)
        goto out;
    if ((rc = render(tmpl, msgs, n_msgs, false, &b, err)) < 0 ||
        (rc = encode(tk, b.data, b.len, true, true, &ids, &n, err)) < 0)
        goto out;
    flags = tw_calloc(n + 2, 1);
    if (!flags) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory");
        goto out;
    }
    rc = flag_turns(tk, tmpl, msgs, n_msgs, ids, n, flags, &b, err);
    if (rc < 0)
        goto out;
    /* The model must learn to stop: end with EOS unless the template's last token ends
     * generation already. */
    if (tok_eos(tk) >= 0 && (n == 0 || !tok_is_eog(tk, ids[n - 1]))) {
        ids[n] = tok_eos(tk);
        flags[n++] = 1;
    }
    *ids_out = ids;
    *flags_out = flags;
    *n_out = n;
    ids = NULL;
    flags = NULL;
out:
    tw_free(ids);
    tw_free(flags);
    tw_free(alpaca);
    tw_free(msgs);
    tw_buf_release(&b);
    return rc;
}

int ds_encode_example(const char *json, size_t len, const struct tok *tk, int tmpl, int32_t **ids,
                      uint8_t **flags, size_t *n, struct tw_err *err)
{
    cJSON *j = cJSON_ParseWithLength(json, len);
    int rc;
    *ids = NULL;
    *flags = NULL;
    *n = 0;
    if (tmpl < 0 || tmpl >= LLM_CHAT_COUNT)
        return tw_errf(err, TW_EINVAL, "chat template %d out of range", tmpl);
    if (!j)
        return tw_errf(err, TW_EFORMAT, "not valid JSON");
    rc = encode_obj(j, tk, tmpl, ids, flags, n, err);
    cJSON_Delete(j);
    return rc;
}

/* ---- reading inputs into units ---- */

static int load_jsonl(const char *path, const char *text, size_t len, const struct tok *tk,
                      int tmpl, int skip_bad, struct ds_units *us, struct ds_stats *st,
                      struct tw_err *err)
{
    size_t pos = 0;
    long line = 0;
    while (pos < len) {
        const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - s) : len - pos, k = 0;
        struct tw_err e = TW_ERR_INIT;
        int32_t *ids;
        uint8_t *flags;
        size_t n;
        cJSON *j;
        int rc;
        pos += l + (nl != NULL);
        line++;
        while (k < l && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r'))
            k++;
        if (k == l)
            continue; // blank line
        j = cJSON_ParseWithLength(s, l);
        if (!j)
            rc = tw_errf(&e, TW_EFORMAT, "not valid JSON");
        else
            rc = encode_obj(j, tk, tmpl, &ids, &flags, &n, &e);
        cJSON_Delete(j);
        if (rc == TW_ENOMEM)
            return tw_errf(err, rc, "%s:%ld: %s", path, line, e.msg);
        if (rc < 0) {
            if (!skip_bad)
                return tw_errf(err, TW_EFORMAT, "%s:%ld: %s (use --skip-bad to skip such lines)",
                               path, line, e.msg);
            tw_log(TW_LOG_WARN, "train", "%s:%ld: %s; line skipped", path, line, e.msg);
            st->n_bad++;
            continue;
        }
        st->n_examples++;
        st->n_tokens += (long)n;
        for (size_t i = 0; i < n; i++)
            st->n_counted += flags[i];
        if ((rc = units_push(us, ids, flags, n, err)) < 0)
            return rc;
    }
    return TW_OK;
}

/* Appends a text document to the stream (BOS text EOS, all counted). */
static int load_text(const char *path, const char *text, size_t len, const struct tok *tk,
                     struct ds_units *stream, struct ds_stats *st, struct tw_err *err)
{
    int32_t *ids;
    uint8_t *flags;
    size_t n;
    int rc = encode(tk, text, len, true, false, &ids, &n, err);
    if (rc < 0)
        return tw_err_ctx(err, "tokenizing '%s'", path);
    if (n == 0 || (n == 1 && tok_add_bos(tk))) {
        tw_free(ids);
        return TW_OK; // an empty file
    }
    if (tok_eos(tk) >= 0)
        ids[n++] = tok_eos(tk);
    flags = tw_malloc(n);
    if (!flags) {
        tw_free(ids);
        return tw_errf(err, TW_ENOMEM, "out of memory reading '%s'", path);
    }
    memset(flags, 1, n);
    flags[0] = tok_add_bos(tk) ? 0 : 1; // nothing predicts the first token
    st->n_examples++;
    st->n_tokens += (long)n;
    st->n_counted += (long)n - !flags[0];
    return units_push(stream, ids, flags, n, err);
}

/* Cuts the text documents into windows of T + 1 tokens overlapping by one (packing: a window
 * may span documents). */
static int pack_text(struct ds_units *docs, int T, struct ds_units *out, struct ds_stats *st,
                     struct tw_err *err)
{
    size_t total = 0, w = (size_t)T + 1, pos = 0, k;
    int32_t *all;
    uint8_t *fl;
    for (size_t i = 0; i < docs->n; i++) {
        total += docs->u[i].n;
        st->n_split += docs->u[i].n > w;
    }
    if (total < 2)
        return TW_OK;
    all = tw_mallocarray(total, sizeof(int32_t));
    fl = tw_malloc(total);
    if (!all || !fl) {
        tw_free(all);
        tw_free(fl);
        return tw_errf(err, TW_ENOMEM, "out of memory packing %zu tokens", total);
    }
    for (size_t i = 0; i < docs->n; i++) {
        memcpy(all + pos, docs->u[i].ids, docs->u[i].n * sizeof(int32_t));
        memcpy(fl + pos, docs->u[i].flags, docs->u[i].n);
        pos += docs->u[i].n;
    }
    for (size_t s = 0; s + 1 < total; s += (size_t)T) {
        int32_t *ids;
        uint8_t *f;
        int rc;
        k = total - s < w ? total - s : w;
        ids = tw_mallocarray(k, sizeof(int32_t));
        f = tw_malloc(k);
        if (!ids || !f) {
            tw_free(ids);
            tw_free(f);
            tw_free(all);
            tw_free(fl);
            return tw_errf(err, TW_ENOMEM, "out of memory packing");
        }
        memcpy(ids, all + s, k * sizeof(int32_t));
        memcpy(f, fl + s, k);
        f[0] = 0; // the window's first token is only an input
        if ((rc = units_push(out, ids, f, k, err)) < 0) {
            tw_free(all);
            tw_free(fl);
            return rc;
        }
    }
    tw_free(all);
    tw_free(fl);
    return TW_OK;
}

/* Reads every file of 'path' into units (examples or text windows). */
static int load_units(const char *path, const struct tok *tk, const struct ds_opts *o, int tmpl,
                      struct tw_sha256 *sha, enum ds_kind *kind, struct ds_units *us,
                      struct ds_stats *st, struct tw_err *err)
{
    struct ds_paths ps = {0};
    struct ds_units docs = {0};
    size_t total = 0;
    int rc, n_json = 0, n_text = 0;
    rc = list_files(path, 0, &ps, err);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < ps.n; i++)
        n_json += is_jsonl(ps.p[i]), n_text += !is_jsonl(ps.p[i]);
    if (n_json && n_text) {
        rc = tw_errf(err, TW_EINVAL,
                     "dataset '%s' mixes .jsonl files (instruction data) with "
                     "%d other files (plain text); use one kind",
                     path, n_text);
        goto out;
    }
    *kind = n_json ? DS_KIND_INSTRUCT : DS_KIND_TEXT;
    for (size_t i = 0; i < ps.n; i++) {
        char *text = NULL;
        size_t len = 0;
        if ((rc = read_file(ps.p[i], &total, &text, &len, err)) < 0)
            goto out;
        tw_sha256_update(sha, text, len);
        st->n_files++;
        if (*kind == DS_KIND_INSTRUCT)
            rc = load_jsonl(ps.p[i], text, len, tk, tmpl, o->skip_bad, us, st, err);
        else
            rc = load_text(ps.p[i], text, len, tk, &docs, st, err);
        tw_free(text);
        if (rc < 0)
            goto out;
    }
    if (*kind == DS_KIND_TEXT)
        rc = pack_text(&docs, o->n_ctx, us, st, err);
out:
    units_release(&docs);
    paths_release(&ps);
    return rc;
}

/* ---- rows ---- */

static int rows_alloc(struct ds_rows *r, size_t n, int T, struct tw_err *err)
{
    size_t nt = n * (size_t)T;
    r->T = T;
    r->n = 0;
    r->in = tw_mallocarray(nt ? nt : 1, sizeof(int32_t));
    r->tgt = tw_mallocarray(nt ? nt : 1, sizeof(int32_t));
    r->mask = tw_calloc(nt ? nt : 1, 1);
    r->n_counted = tw_calloc(n ? n : 1, sizeof(int32_t));
    if (!r->in || !r->tgt || !r->mask || !r->n_counted)
        return tw_errf(err, TW_ENOMEM, "out of memory for %zu rows of %d tokens", n, T);
    return TW_OK;
}

static void rows_release(struct ds_rows *r)
{
    tw_free(r->in);
    tw_free(r->tgt);
    tw_free(r->mask);
    tw_free(r->n_counted);
    memset(r, 0, sizeof(*r));
}

/* Rows a unit needs: windows of T + 1 with stride T. */
static size_t unit_rows(const struct ds_unit *u, int T)
{
    if (u->n < 2)
        return 0;
    return (u->n - 2) / (size_t)T + 1;
}

/* Cuts units (those with pick[i] == want) into rows, padding with 'pad'. */
static int cut_rows(const struct ds_units *us, const uint8_t *pick, int want, int T, int32_t pad,
                    struct ds_rows *r, struct ds_stats *st, long *counted, struct tw_err *err)
{
    size_t n = 0;
    int rc;
    for (size_t i = 0; i < us->n; i++)
        if (pick[i] == want)
            n += unit_rows(&us->u[i], T);
    if ((rc = rows_alloc(r, n, T, err)) < 0)
        return rc;
    for (size_t i = 0; i < us->n; i++) {
        const struct ds_unit *u = &us->u[i];
        if (pick[i] != want)
            continue;
        for (size_t s = 0; s + 1 < u->n; s += (size_t)T) {
            size_t k = u->n - s - 1 < (size_t)T ? u->n - s - 1 : (size_t)T; // targets
            int32_t *in = r->in + (size_t)r->n * T, *tg = r->tgt + (size_t)r->n * T;
            uint8_t *m = r->mask + (size_t)r->n * T;
            int32_t c = 0;
            for (size_t t = 0; t < (size_t)T; t++) {
                in[t] = t < k ? u->ids[s + t] : pad;
                tg[t] = t < k ? u->ids[s + t + 1] : pad;
                m[t] = t < k ? u->flags[s + t + 1] : 0;
                c += m[t];
            }
            if (c == 0) {
                st->n_dropped++;
                continue;
            }
            r->n_counted[r->n++] = c;
            *counted += c;
        }
    }
    return TW_OK;
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int ds_load(struct ds *ds, const char *path, const struct tok *tk, const struct ds_opts *o,
            struct tw_err *err)
{
    struct ds_units us = {0}, ev = {0};
    struct tw_sha256 sha;
    uint8_t digest[TW_SHA256_LEN];
    uint8_t *pick = NULL;
    size_t *order = NULL, n_eval = 0, shortest = (size_t)-1;
    int32_t pad;
    enum ds_kind ekind;
    int rc, tmpl = o->chat_tmpl, fits = 0;
    memset(ds, 0, sizeof(*ds));
    if (o->n_ctx < DS_MIN_CTX || o->n_ctx > DS_MAX_CTX)
        return tw_errf(err, TW_EINVAL, "context of %d tokens out of range [%d, %d]", o->n_ctx,
                       DS_MIN_CTX, DS_MAX_CTX);
    if (!(o->eval_split >= 0 && o->eval_split < 1))
        return tw_errf(err, TW_EINVAL, "eval split %g out of range [0, 1)", o->eval_split);
    if (tmpl < 0) {
        tmpl = llm_chat_detect(o->chat_tmpl_text, o->chat_tmpl_text ? o->chat_tmpl_len : 0);
        if (tmpl < 0)
            tmpl = LLM_CHAT_CHATML;
    }
    if (tmpl >= LLM_CHAT_COUNT)
        return tw_errf(err, TW_EINVAL, "chat template %d out of range", tmpl);
    ds->chat_tmpl = tmpl;
    tw_sha256_init(&sha);
    rc = load_units(path, tk, o, tmpl, &sha, &ds->kind, &us, &ds->st, err);
    if (rc < 0)
        goto fail;
    if (o->eval_path) {
        rc = load_units(o->eval_path, tk, o, tmpl, &sha, &ekind, &ev, &ds->st, err);
        if (rc < 0)
            goto fail;
        if (ekind != ds->kind) {
            rc = tw_errf(err, TW_EINVAL, "eval data '%s' is %s but the dataset is %s", o->eval_path,
                         ekind == DS_KIND_TEXT ? "text" : "instruction data",
                         ds->kind == DS_KIND_TEXT ? "text" : "instruction data");
            goto fail;
        }
    }
    if (us.n == 0) {
        rc = tw_errf(err, TW_EINVAL, "dataset '%s' has no examples%s", path,
                     ds->st.n_bad ? " (every line was malformed)" : "");
        goto fail;
    }
    for (size_t i = 0; i < us.n; i++) {
        fits += us.u[i].n <= (size_t)o->n_ctx + 1;
        if (us.u[i].n < shortest)
            shortest = us.u[i].n;
    }
    if (ds->kind == DS_KIND_INSTRUCT) {
        for (size_t i = 0; i < us.n; i++)
            ds->st.n_split += us.u[i].n > (size_t)o->n_ctx + 1;
        if (!fits) {
            rc = tw_errf(err, TW_EINVAL,
                         "a context of %d tokens is too small for any example of "
                         "'%s' (the shortest has %zu tokens); raise --ctx",
                         o->n_ctx, path, shortest);
            goto fail;
        }
    }
    /* The split: a seeded Fisher-Yates shuffle of the units, the first n_eval held out. */
    pick = tw_calloc(us.n, 1);
    order = tw_mallocarray(us.n, sizeof(*order));
    if (!pick || !order) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory splitting the dataset");
        goto fail;
    }
    if (!o->eval_path && o->eval_split > 0) {
        struct train_rng rng;
        n_eval = (size_t)(o->eval_split * (double)us.n + 0.5);
        if (n_eval == 0)
            n_eval = 1;
        if (n_eval >= us.n) {
            rc = tw_errf(err, TW_EINVAL,
                         "dataset '%s' has %zu %s: too few to hold out %g of "
                         "them and train on the rest",
                         path, us.n, ds->kind == DS_KIND_TEXT ? "windows" : "examples",
                         o->eval_split);
            goto fail;
        }
        train_rng_seed(&rng, mix64(o->seed ^ 0x64617461ull));
        for (size_t i = 0; i < us.n; i++)
            order[i] = i;
        for (size_t i = us.n - 1; i > 0; i--) {
            size_t j = (size_t)(train_rng_next(&rng) % (i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (size_t i = 0; i < n_eval; i++)
            pick[order[i]] = 1;
    }
    pad = tok_pad(tk) >= 0 ? tok_pad(tk) : (tok_eos(tk) >= 0 ? tok_eos(tk) : 0);
    rc = cut_rows(&us, pick, 0, o->n_ctx, pad, &ds->train, &ds->st, &ds->st.n_train_counted, err);
    if (rc < 0)
        goto fail;
    if (o->eval_path) {
        uint8_t *zero = tw_calloc(ev.n ? ev.n : 1, 1);
        if (!zero) {
            rc = tw_errf(err, TW_ENOMEM, "out of memory");
            goto fail;
        }
        rc = cut_rows(&ev, zero, 0, o->n_ctx, pad, &ds->eval, &ds->st, &ds->st.n_eval_counted, err);
        tw_free(zero);
    } else {
        rc = cut_rows(&us, pick, 1, o->n_ctx, pad, &ds->eval, &ds->st, &ds->st.n_eval_counted, err);
    }
    if (rc < 0)
        goto fail;
    if (ds->train.n == 0) {
        rc = tw_errf(err, TW_EINVAL, "dataset '%s' has no training row with a target to learn",
                     path);
        goto fail;
    }
    tw_sha256_final(&sha, digest);
    tw_sha256_to_hex(digest, ds->sha256);
    if (ds->st.n_split)
        tw_log(TW_LOG_INFO, "train",
               "%ld examples of '%s' are longer than %d tokens: split into "
               "windows",
               ds->st.n_split, path, o->n_ctx + 1);
    if (ds->st.n_bad)
        tw_log(TW_LOG_WARN, "train", "%ld malformed lines of '%s' skipped", ds->st.n_bad, path);
    tw_free(pick);
    tw_free(order);
    units_release(&us);
    units_release(&ev);
    return TW_OK;
fail:
    tw_free(pick);
    tw_free(order);
    units_release(&us);
    units_release(&ev);
    ds_release(ds);
    return rc;
}

void ds_release(struct ds *ds)
{
    if (!ds)
        return;
    rows_release(&ds->train);
    rows_release(&ds->eval);
}
