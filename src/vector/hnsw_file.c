/* hnsw_file.c - index files: atomic save, mmap open, validation of untrusted files (see vec.h). */
#include "vector/hnsw_int.h"

#include "base/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "index files are little endian and mapped in place; add byte swapping for this target"
#endif

#define HDR_SIZE    256
#define HDR_VERSION 1
#define HDR_MAGIC   "TWVECIDX"
#define FILE_MAX    ((uint64_t)1 << 42) // 4 TiB

/* Header field offsets. */
enum {
    H_MAGIC = 0,
    H_VERSION = 8,
    H_HDR_SIZE = 12,
    H_DIM = 16,
    H_METRIC = 20,
    H_M = 24,
    H_M0 = 28,
    H_EFC = 32,
    H_EFS = 36,
    H_EXACT = 40,
    H_N = 44,
    H_N_DEAD = 48,
    H_MAX_LEVEL = 52,
    H_ENTRY = 56,
    H_MAX_SEQ = 64,
    H_STRIDE = 72,
    H_UPPER_LEN = 80,
    H_RNG = 88,
    H_SEED = 96,
    H_OFF_NODES = 104,
    H_OFF_IDS = 112,
    H_OFF_LEVELS = 120,
    H_OFF_DEAD = 128,
    H_OFF_UPPER_OFF = 136,
    H_OFF_UPPER = 144,
    H_FILE_SIZE = 152,
    H_BODY_HASH = 160,
    H_HDR_HASH = 248,
};

static void put32(uint8_t *h, int off, uint32_t v)
{
    memcpy(h + off, &v, 4);
}
static void put64(uint8_t *h, int off, uint64_t v)
{
    memcpy(h + off, &v, 8);
}
static uint32_t get32(const uint8_t *h, int off)
{
    uint32_t v;
    memcpy(&v, h + off, 4);
    return v;
}
static uint64_t get64(const uint8_t *h, int off)
{
    uint64_t v;
    memcpy(&v, h + off, 8);
    return v;
}

static uint64_t align64(uint64_t x)
{
    return (x + 63) & ~(uint64_t)63;
}

/* Section offsets for n slots; all sizes fit in 64 bits for the bounded inputs. */
struct layout {
    uint64_t nodes, ids, levels, dead, upper_off, upper, end;
};

static void layout_compute(struct layout *L, uint64_t n, uint64_t stride, uint64_t upper_len)
{
    L->nodes = HDR_SIZE;
    L->ids = align64(L->nodes + n * stride);
    L->levels = align64(L->ids + n * 8);
    L->dead = align64(L->levels + n);
    L->upper_off = align64(L->dead + n);
    L->upper = align64(L->upper_off + n * 4);
    L->end = L->upper + upper_len * 4;
}

/* The body checksum chains one hash per section, so saving can hash the arrays in place. */
static uint64_t body_hash(const struct vec_index *idx)
{
    uint64_t h = 0x7477766563696478ULL;
    size_t n = idx->n;
    h = vec__hash64(idx->nodes, n * idx->stride, h);
    h = vec__hash64(idx->ids, n * sizeof(*idx->ids), h);
    h = vec__hash64(idx->levels, n, h);
    h = vec__hash64(idx->dead, n, h);
    h = vec__hash64(idx->upper_off, n * sizeof(*idx->upper_off), h);
    h = vec__hash64(idx->upper, idx->upper_len * sizeof(*idx->upper), h);
    return h;
}

/* ---- save ---- */

static int write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len) {
        ssize_t w = write(fd, p, len > ((size_t)1 << 30) ? ((size_t)1 << 30) : len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Writes a section at its offset, padding with zeros from the current position 'pos'. */
static int write_section(int fd, uint64_t *pos, uint64_t off, const void *data, size_t len)
{
    static const uint8_t zeros[64];
    if (off - *pos > sizeof(zeros))
        return -1;
    if (off > *pos && write_all(fd, zeros, off - *pos) < 0)
        return -1;
    if (len && write_all(fd, data, len) < 0)
        return -1;
    *pos = off + len;
    return 0;
}

static int fsync_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    int fd, rc;
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int vec_index_save(struct vec_index *idx, const char *path, struct tw_err *err)
{
    uint8_t h[HDR_SIZE];
    struct layout L;
    uint64_t pos = 0;
    char tmp[4096];
    int fd, rc = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
        return tw_errf(err, TW_EINVAL, "index path '%.200s' is too long", path);
    pthread_rwlock_rdlock(&idx->lock);
    layout_compute(&L, idx->n, idx->stride, idx->upper_len);
    memset(h, 0, sizeof(h));
    memcpy(h + H_MAGIC, HDR_MAGIC, 8);
    put32(h, H_VERSION, HDR_VERSION);
    put32(h, H_HDR_SIZE, HDR_SIZE);
    put32(h, H_DIM, idx->p.dim);
    put32(h, H_METRIC, (uint32_t)idx->p.metric);
    put32(h, H_M, idx->p.M);
    put32(h, H_M0, idx->M0);
    put32(h, H_EFC, idx->p.ef_construction);
    put32(h, H_EFS, idx->p.ef_search);
    put32(h, H_EXACT, idx->p.exact_below);
    put32(h, H_N, idx->n);
    put32(h, H_N_DEAD, idx->n_dead);
    put32(h, H_MAX_LEVEL, (uint32_t)idx->max_level);
    put64(h, H_ENTRY, (uint64_t)idx->entry);
    put64(h, H_MAX_SEQ, idx->max_seq);
    put64(h, H_STRIDE, idx->stride);
    put64(h, H_UPPER_LEN, idx->upper_len);
    put64(h, H_RNG, idx->rng);
    put64(h, H_SEED, idx->p.seed);
    put64(h, H_OFF_NODES, L.nodes);
    put64(h, H_OFF_IDS, L.ids);
    put64(h, H_OFF_LEVELS, L.levels);
    put64(h, H_OFF_DEAD, L.dead);
    put64(h, H_OFF_UPPER_OFF, L.upper_off);
    put64(h, H_OFF_UPPER, L.upper);
    put64(h, H_FILE_SIZE, L.end);
    put64(h, H_BODY_HASH, body_hash(idx));
    put64(h, H_HDR_HASH, vec__hash64(h, H_HDR_HASH, 0));

    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = tw_errf(err, TW_EIO, "cannot create '%s': %s", tmp, strerror(errno));
        goto out;
    }
    if (write_section(fd, &pos, 0, h, sizeof(h)) < 0 ||
        write_section(fd, &pos, L.nodes, idx->nodes, (size_t)idx->n * idx->stride) < 0 ||
        write_section(fd, &pos, L.ids, idx->ids, (size_t)idx->n * 8) < 0 ||
        write_section(fd, &pos, L.levels, idx->levels, idx->n) < 0 ||
        write_section(fd, &pos, L.dead, idx->dead, idx->n) < 0 ||
        write_section(fd, &pos, L.upper_off, idx->upper_off, (size_t)idx->n * 4) < 0 ||
        write_section(fd, &pos, L.upper, idx->upper, idx->upper_len * 4) < 0 || fsync(fd) < 0) {
        rc = tw_errf(err, TW_EIO, "cannot write '%s': %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        rc = tw_errf(err, TW_EIO, "cannot write '%s': %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (fsync_dir(path) < 0)
        rc = tw_errf(err, TW_EIO, "cannot sync the directory of '%s': %s", path,
                     strerror(errno));
out:
    pthread_rwlock_unlock(&idx->lock);
    return rc;
}

/* Recomputes both checksums of a file image in place, after checking that the header's section
 * offsets lie inside it. For tests and the fuzz target, which need sealed hostile files to reach
 * the structural checks. Returns 0, or -1 if the image is too malformed to seal. */
int vec__file_reseal(unsigned char *img, size_t len)
{
    uint64_t n, stride, upper_len, h = 0x7477766563696478ULL;
    uint64_t off[6], size[6];
    if (len < HDR_SIZE)
        return -1;
    n = get32(img, H_N);
    stride = get64(img, H_STRIDE);
    upper_len = get64(img, H_UPPER_LEN);
    if (n > VEC_SLOTS_MAX || stride > ((uint64_t)1 << 24) || upper_len > UINT32_MAX)
        return -1;
    for (int i = 0; i < 6; i++)
        off[i] = get64(img, H_OFF_NODES + 8 * i);
    size[0] = n * stride;
    size[1] = n * 8;
    size[2] = n;
    size[3] = n;
    size[4] = n * 4;
    size[5] = upper_len * 4;
    for (int i = 0; i < 6; i++)
        if (off[i] > len || size[i] > len - off[i])
            return -1;
    for (int i = 0; i < 6; i++)
        h = vec__hash64(img + off[i], size[i], h);
    put64(img, H_BODY_HASH, h);
    put64(img, H_HDR_HASH, vec__hash64(img, H_HDR_HASH, 0));
    return 0;
}

/* ---- load ---- */

static int zeros_between(const uint8_t *base, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++)
        if (base[i])
            return 0;
    return 1;
}

/* Checks the links of slot s on 'level': count within maxm, every target an existing other
 * slot that reaches this level. */
static int check_links(const struct vec_index *idx, uint32_t s, int level, const char *name,
                       struct tw_err *err)
{
    const uint32_t *l = hnsw__links(idx, s, level);
    uint32_t maxm = level ? idx->p.M : idx->M0;
    if (l[0] > maxm)
        return tw_errf(err, TW_EFORMAT, "'%s': slot %u has %u links on level %d, limit %u", name,
                       s, l[0], level, maxm);
    for (uint32_t j = 0; j < l[0]; j++) {
        uint32_t t = l[1 + j];
        if (t >= idx->n || t == s || idx->levels[t] < level)
            return tw_errf(err, TW_EFORMAT,
                           "'%s': slot %u links to slot %u on level %d, which is not a node there",
                           name, s, t, level);
    }
    return 0;
}

static int check_graph(struct vec_index *idx, const uint8_t *base, const char *name,
                       struct tw_err *err)
{
    uint32_t n_dead = 0;
    uint64_t upper_at = 0;
    uint64_t stride_pad_from = idx->vec_bytes + (1 + (uint64_t)idx->M0) * 4;
    int rc;

    if (idx->n == 0 ? idx->entry != -1 : (idx->entry < 0 || idx->entry >= idx->n))
        return tw_errf(err, TW_EFORMAT, "'%s': entry slot %lld outside the %u slots", name,
                       (long long)idx->entry, idx->n);
    if (idx->max_level < 0 || idx->max_level > VEC_LEVEL_MAX ||
        (idx->n && idx->levels[idx->entry] != idx->max_level))
        return tw_errf(err, TW_EFORMAT, "'%s': max level %d does not match the entry slot", name,
                       idx->max_level);
    for (uint32_t s = 0; s < idx->n; s++) {
        int lv = idx->levels[s];
        if (lv > VEC_LEVEL_MAX)
            return tw_errf(err, TW_EFORMAT, "'%s': slot %u has level %d, limit %d", name, s, lv,
                           VEC_LEVEL_MAX);
        if (idx->dead[s] > 1)
            return tw_errf(err, TW_EFORMAT, "'%s': slot %u has deleted flag %u", name, s,
                           idx->dead[s]);
        n_dead += idx->dead[s];
        // Upper blocks are laid out in slot order with no gaps, as inserts append them; blocks
        // that overlapped would let one slot's links be written through another's.
        if (idx->upper_off[s] != upper_at ||
            upper_at + (uint64_t)lv * (1 + idx->p.M) > idx->upper_len)
            return tw_errf(err, TW_EFORMAT,
                           "'%s': upper links of slot %u at word %u, expected %llu of %zu", name,
                           s, idx->upper_off[s], (unsigned long long)upper_at, idx->upper_len);
        upper_at += (uint64_t)lv * (1 + idx->p.M);
        if (!zeros_between(idx->nodes + (size_t)s * idx->stride, stride_pad_from, idx->stride))
            return tw_errf(err, TW_EFORMAT, "'%s': padding of slot %u is not zero", name, s);
    }
    if (upper_at != idx->upper_len)
        return tw_errf(err, TW_EFORMAT, "'%s': upper section has %zu words, links use %llu", name,
                       idx->upper_len, (unsigned long long)upper_at);
    if (n_dead != idx->n_dead)
        return tw_errf(err, TW_EFORMAT, "'%s': header counts %u deleted slots, flags say %u", name,
                       idx->n_dead, n_dead);
    for (uint32_t s = 0; s < idx->n; s++)
        for (int lv = 0; lv <= idx->levels[s]; lv++)
            if ((rc = check_links(idx, s, lv, name, err)) < 0)
                return rc;
    (void)base;
    return 0;
}

/* Validates the file image 'base[0..len)' (64-byte aligned or better, kept alive by the caller)
 * and points a new index's arrays into it. */
static int load_image(const uint8_t *base, size_t len, const char *name, struct vec_index **out,
                      struct tw_err *err)
{
    const uint8_t *h = base;
    struct vec_index *idx;
    struct vec_params p;
    struct layout L;
    uint64_t n, upper_len;
    int rc;

    *out = NULL;
    if (len < HDR_SIZE)
        return tw_errf(err, TW_EFORMAT, "'%s' is %zu bytes, shorter than the %d-byte header", name,
                       len, HDR_SIZE);
    if (memcmp(h + H_MAGIC, HDR_MAGIC, 8))
        return tw_errf(err, TW_EFORMAT, "'%s' is not a twin vector index (bad magic)", name);
    if (get32(h, H_VERSION) != HDR_VERSION)
        return tw_errf(err, TW_EUNSUP, "'%s' has index format version %u; this build reads %d",
                       name, get32(h, H_VERSION), HDR_VERSION);
    if (get32(h, H_HDR_SIZE) != HDR_SIZE)
        return tw_errf(err, TW_EFORMAT, "'%s' has header size %u, expected %d", name,
                       get32(h, H_HDR_SIZE), HDR_SIZE);
    if (get64(h, H_HDR_HASH) != vec__hash64(h, H_HDR_HASH, 0))
        return tw_errf(err, TW_EFORMAT, "'%s': header checksum mismatch (corrupt file)", name);
    if (!zeros_between(h, H_BODY_HASH + 8, H_HDR_HASH))
        return tw_errf(err, TW_EFORMAT, "'%s': reserved header bytes are not zero", name);
    p.dim = get32(h, H_DIM);
    p.metric = (enum vec_metric)get32(h, H_METRIC);
    p.M = get32(h, H_M);
    p.ef_construction = get32(h, H_EFC);
    p.ef_search = get32(h, H_EFS);
    p.exact_below = get32(h, H_EXACT);
    p.seed = get64(h, H_SEED);
    rc = hnsw__check_params(&p, name, TW_EFORMAT, err);
    if (rc < 0)
        return rc;
    if (get32(h, H_M0) != 2 * p.M)
        return tw_errf(err, TW_EFORMAT, "'%s': M0 %u is not 2*M (%u)", name, get32(h, H_M0),
                       2 * p.M);
    n = get32(h, H_N);
    upper_len = get64(h, H_UPPER_LEN);
    if (n > VEC_SLOTS_MAX || get32(h, H_N_DEAD) > n)
        return tw_errf(err, TW_EFORMAT, "'%s': %llu slots (%u deleted), limit %u", name,
                       (unsigned long long)n, get32(h, H_N_DEAD), (unsigned)VEC_SLOTS_MAX);
    if (upper_len > UINT32_MAX)
        return tw_errf(err, TW_EFORMAT, "'%s': upper section of %llu words, limit %u", name,
                       (unsigned long long)upper_len, UINT32_MAX);

    idx = tw_calloc(1, sizeof(*idx));
    if (!idx)
        return tw_errf(err, TW_ENOMEM, "out of memory opening '%s'", name);
    idx->p = p;
    hnsw__init_layout(idx);
    rc = hnsw__sync_init(idx, err);
    if (rc < 0) {
        tw_free(idx);
        return rc;
    }
    if (get64(h, H_STRIDE) != idx->stride) {
        rc = tw_errf(err, TW_EFORMAT, "'%s': node stride %llu, expected %zu for dim %u M %u",
                     name, (unsigned long long)get64(h, H_STRIDE), idx->stride, p.dim, p.M);
        goto fail;
    }
    layout_compute(&L, n, idx->stride, upper_len);
    if (get64(h, H_OFF_NODES) != L.nodes || get64(h, H_OFF_IDS) != L.ids ||
        get64(h, H_OFF_LEVELS) != L.levels || get64(h, H_OFF_DEAD) != L.dead ||
        get64(h, H_OFF_UPPER_OFF) != L.upper_off || get64(h, H_OFF_UPPER) != L.upper ||
        get64(h, H_FILE_SIZE) != L.end) {
        rc = tw_errf(err, TW_EFORMAT, "'%s': section offsets do not match %llu slots", name,
                     (unsigned long long)n);
        goto fail;
    }
    if (L.end != len) {
        rc = tw_errf(err, TW_EFORMAT, "'%s' is %zu bytes, the header says %llu (truncated?)",
                     name, len, (unsigned long long)L.end);
        goto fail;
    }
    idx->n = idx->cap = (uint32_t)n;
    idx->n_dead = get32(h, H_N_DEAD);
    idx->max_level = (int)get32(h, H_MAX_LEVEL);
    idx->entry = (int64_t)get64(h, H_ENTRY);
    idx->max_seq = get64(h, H_MAX_SEQ);
    idx->rng = get64(h, H_RNG);
    idx->nodes = (uint8_t *)(base + L.nodes);
    idx->ids = (uint64_t *)(base + L.ids);
    idx->levels = (uint8_t *)(base + L.levels);
    idx->dead = (uint8_t *)(base + L.dead);
    idx->upper_off = (uint32_t *)(base + L.upper_off);
    idx->upper = (uint32_t *)(base + L.upper);
    idx->upper_len = idx->upper_cap = upper_len;
    if (get64(h, H_BODY_HASH) != body_hash(idx)) {
        rc = tw_errf(err, TW_EFORMAT, "'%s': checksum mismatch (corrupt file)", name);
        goto fail;
    }
    if (!zeros_between(base, L.nodes + n * idx->stride, L.ids) ||
        !zeros_between(base, L.ids + n * 8, L.levels) ||
        !zeros_between(base, L.levels + n, L.dead) ||
        !zeros_between(base, L.dead + n, L.upper_off) ||
        !zeros_between(base, L.upper_off + n * 4, L.upper)) {
        rc = tw_errf(err, TW_EFORMAT, "'%s': padding between sections is not zero", name);
        goto fail;
    }
    rc = check_graph(idx, base, name, err);
    if (rc < 0)
        goto fail;
    rc = hnsw__map_build(idx, name, err);
    if (rc < 0)
        goto fail;
    *out = idx;
    return 0;
fail:
    // The arrays belong to the caller's image; only the map and the shell are ours.
    tw_free(idx->map_keys);
    tw_free(idx->map_vals);
    pthread_mutex_destroy(&idx->ctx_lock);
    pthread_rwlock_destroy(&idx->lock);
    tw_free(idx);
    return rc;
}

int vec_index_load_mem(const void *data, size_t len, const char *name, struct vec_index **out,
                       struct tw_err *err)
{
    void *copy;
    int rc;

    *out = NULL;
    copy = tw_malloc(len ? len : 1); // malloc's alignment is enough: sections are 64-aligned
    if (!copy)
        return tw_errf(err, TW_ENOMEM, "out of memory loading '%s'", name);
    if (len)
        memcpy(copy, data, len);
    rc = load_image(copy, len, name, out, err);
    if (rc < 0) {
        tw_free(copy);
        return rc;
    }
    (*out)->file_copy = copy;
    return 0;
}

int vec_index_open(const char *path, struct vec_index **out, struct tw_err *err)
{
    struct stat st;
    void *map;
    int fd, rc;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tw_errf(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "cannot open '%s': %s", path,
                       strerror(errno));
    if (fstat(fd, &st) < 0) {
        rc = tw_errf(err, TW_EIO, "cannot stat '%s': %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode) || st.st_size < HDR_SIZE || (uint64_t)st.st_size > FILE_MAX) {
        close(fd);
        return tw_errf(err, TW_EFORMAT, "'%s' is %lld bytes, not an index file", path,
                       (long long)st.st_size);
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return tw_errf(err, TW_EIO, "cannot map '%s': %s", path, strerror(errno));
    rc = load_image(map, (size_t)st.st_size, path, out, err);
    if (rc < 0) {
        munmap(map, (size_t)st.st_size);
        return rc;
    }
    (*out)->file_map = map;
    (*out)->file_len = (size_t)st.st_size;
    return 0;
}
