/* gguf.h - GGUF v2/v3 reader and writer (engine-notes §7).
 *
 *   +--------+---------+----------+---------+------------------+---------+--------------------+
 *   | "GGUF" | version | n_tensor | n_kv    | kv pairs ...     | tensor  | pad to alignment,  |
 *   | u32    | u32     | u64      | u64     | key,type,value   | infos   | then tensor data   |
 *   +--------+---------+----------+---------+------------------+---------+--------------------+
 *
 * The reader maps the file read-only and validates everything against the file size and hard
 * limits before handing anything out: a truncated, corrupt or hostile file gives an error naming
 * the file and the problem, never a crash or an over-read. Strings handed out point into the
 * mapping (not NUL-terminated: use the length) and live as long as the gguf_file.
 * The writer collects metadata and tensors and writes the file atomically (temp + rename).
 * Thread-safety: a gguf_file is immutable after open; any number of threads may read it.
 */
#ifndef TW_GGUF_H
#define TW_GGUF_H

#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ggml tensor types (the ids stored in GGUF). */
enum gguf_ttype {
    GGUF_T_F32 = 0,
    GGUF_T_F16 = 1,
    GGUF_T_Q4_0 = 2,
    GGUF_T_Q4_1 = 3,
    GGUF_T_Q5_0 = 6,
    GGUF_T_Q5_1 = 7,
    GGUF_T_Q8_0 = 8,
    GGUF_T_Q8_1 = 9,
    GGUF_T_Q2_K = 10,
    GGUF_T_Q3_K = 11,
    GGUF_T_Q4_K = 12,
    GGUF_T_Q5_K = 13,
    GGUF_T_Q6_K = 14,
    GGUF_T_Q8_K = 15,
    GGUF_T_BF16 = 30,
    GGUF_T_COUNT = 41,
};

/* Metadata value types. */
enum gguf_vtype {
    GGUF_V_U8 = 0,
    GGUF_V_I8 = 1,
    GGUF_V_U16 = 2,
    GGUF_V_I16 = 3,
    GGUF_V_U32 = 4,
    GGUF_V_I32 = 5,
    GGUF_V_F32 = 6,
    GGUF_V_BOOL = 7,
    GGUF_V_STRING = 8,
    GGUF_V_ARRAY = 9,
    GGUF_V_U64 = 10,
    GGUF_V_I64 = 11,
    GGUF_V_F64 = 12,
};

#define GGUF_MAX_DIMS 4

/* Size in bytes of a scalar metadata value type; 0 for strings, arrays and unknown ids. */
size_t gguf_vtype_size(enum gguf_vtype t);
/* Block size (elements per block) and bytes per block of a tensor type; 0 when unknown. */
size_t gguf_type_block_size(enum gguf_ttype t);
size_t gguf_type_block_bytes(enum gguf_ttype t);
/* "f32", "q4_k", ...; "unknown" for others. */
const char *gguf_type_name(enum gguf_ttype t);
/* Bytes of one row of ne0 elements, or 0 if ne0 is not a multiple of the block size. */
size_t gguf_row_size(enum gguf_ttype t, int64_t ne0);

struct gguf_str {
    const char *ptr; // not NUL-terminated
    uint64_t len;
};

struct gguf_tensor {
    struct gguf_str name;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; // ne[0] = row length; unused dims are 1
    enum gguf_ttype type;
    uint64_t offset;           // relative to the data section
    uint64_t nbytes;
    const void *data;          // into the mapping
};

struct gguf_file;

/* Opens and validates 'path'. On failure returns a negative TW_E* code with a message naming the
 * file ("'m.gguf': tensor 'x' ends at byte N, file has M") and leaves *out NULL. */
int gguf_open(const char *path, struct gguf_file **out, struct tw_err *err);
/* The same over a caller-owned buffer (fuzzing, tests); 'data' must outlive the gguf_file. */
int gguf_open_mem(const void *data, size_t size, const char *name, struct gguf_file **out,
                  struct tw_err *err);
void gguf_close(struct gguf_file *f);
/* Hints that the file's bytes [p, p + n) will not be read soon (a tensor copied elsewhere): the
 * whole pages inside leave the process's resident memory and come back from the file if read
 * again. Nothing for a file opened from memory. */
void gguf_drop_pages(const struct gguf_file *f, const void *p, size_t n);

uint32_t gguf_version(const struct gguf_file *f);
size_t gguf_alignment(const struct gguf_file *f);
size_t gguf_data_offset(const struct gguf_file *f);

/* ---- metadata ---- */
int64_t gguf_n_kv(const struct gguf_file *f);
/* Index of 'key' or -1. */
int64_t gguf_find_key(const struct gguf_file *f, const char *key);
struct gguf_str gguf_kv_key(const struct gguf_file *f, int64_t i);
enum gguf_vtype gguf_kv_type(const struct gguf_file *f, int64_t i);
/* For arrays: element type and count. */
enum gguf_vtype gguf_kv_arr_type(const struct gguf_file *f, int64_t i);
uint64_t gguf_kv_arr_n(const struct gguf_file *f, int64_t i);
/* Array element access (i must be an array of the matching type; j < count). */
struct gguf_str gguf_kv_arr_str(const struct gguf_file *f, int64_t i, uint64_t j);
/* Pointer to the packed elements of a numeric array (little-endian, unaligned). */
const void *gguf_kv_arr_data(const struct gguf_file *f, int64_t i);

/* Typed getters by key with a default when the key is absent. A key present with an
 * incompatible type is an error (TW_EFORMAT, message names the key). Integer getters accept
 * any integer type whose value fits; gguf_get_f32 accepts f32 and f64. */
int gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t def, uint32_t *out,
                 struct tw_err *err);
int gguf_get_i64(const struct gguf_file *f, const char *key, int64_t def, int64_t *out,
                 struct tw_err *err);
int gguf_get_f32(const struct gguf_file *f, const char *key, float def, float *out,
                 struct tw_err *err);
int gguf_get_bool(const struct gguf_file *f, const char *key, bool def, bool *out,
                  struct tw_err *err);
/* 'out' stays {NULL,0} when absent. */
int gguf_get_str(const struct gguf_file *f, const char *key, struct gguf_str *out,
                 struct tw_err *err);

/* ---- tensors ---- */
int64_t gguf_n_tensors(const struct gguf_file *f);
const struct gguf_tensor *gguf_tensor(const struct gguf_file *f, int64_t i);
/* NULL when absent. */
const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name);

/* ---- writer ---- */
struct gguf_writer;

struct gguf_writer *gguf_writer_new(void);
void gguf_writer_free(struct gguf_writer *w);
/* Setters copy their arguments. Setting a key twice replaces it. Errors are sticky and
 * reported by gguf_writer_write. */
void gguf_writer_set_u32(struct gguf_writer *w, const char *key, uint32_t v);
void gguf_writer_set_i32(struct gguf_writer *w, const char *key, int32_t v);
void gguf_writer_set_u64(struct gguf_writer *w, const char *key, uint64_t v);
void gguf_writer_set_f32(struct gguf_writer *w, const char *key, float v);
void gguf_writer_set_bool(struct gguf_writer *w, const char *key, bool v);
void gguf_writer_set_str(struct gguf_writer *w, const char *key, const char *v);
/* An array of 'n' elements of numeric type 'type' packed at 'data', or of strings. */
void gguf_writer_set_arr(struct gguf_writer *w, const char *key, enum gguf_vtype type,
                         const void *data, uint64_t n);
void gguf_writer_set_arr_str(struct gguf_writer *w, const char *key, const struct gguf_str *v,
                             uint64_t n);
/* Copies every key of 'f' (to derive a file from another, e.g. quantize or merge). */
void gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_file *f);
/* Adds a tensor; 'data' (nbytes of 'type' for shape 'ne') is borrowed until write. */
void gguf_writer_add_tensor(struct gguf_writer *w, const char *name, enum gguf_ttype type,
                            uint32_t n_dims, const int64_t *ne, const void *data);
/* Writes the file (v3, general.alignment or 32) to path.tmp, fsyncs, renames to path. */
int gguf_writer_write(struct gguf_writer *w, const char *path, struct tw_err *err);

#endif
