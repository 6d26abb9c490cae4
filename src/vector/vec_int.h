/* vec_int.h - internals shared by the vector module's files: the kernel table. */
#ifndef TW_VEC_INT_H
#define TW_VEC_INT_H

#include <stddef.h>

typedef float (*vec__dist_fn)(const float *a, const float *b, size_t n);

struct vec__kernels {
    const char *isa;   // "scalar", "avx2" or "avx512"
    vec__dist_fn dot;  // sum a[i]*b[i]
    vec__dist_fn l2sq; // sum (a[i]-b[i])^2
};

/* The kernel set in use (picked once from the CPU and TWIN_VEC_ISA; thread-safe). */
const struct vec__kernels *vec__kernels(void);

/* Per-ISA kernels; call only when the CPU has the ISA (vec__cpu_has). */
float vec__dot_avx2(const float *a, const float *b, size_t n);
float vec__l2sq_avx2(const float *a, const float *b, size_t n);
float vec__dot_avx512(const float *a, const float *b, size_t n);
float vec__l2sq_avx512(const float *a, const float *b, size_t n);
/* True when the CPU and OS support "avx2" (with FMA) or "avx512" (F). */
int vec__cpu_has(const char *isa);

/* Checksum of the index file: a 64-bit hash of len bytes (any alignment). */
unsigned long long vec__hash64(const void *data, size_t len, unsigned long long seed);

/* Recomputes the checksums of an index file image in place (tests and fuzzing only: lets hostile
 * images reach the structural checks). 0, or -1 if the offsets do not fit in 'len'. */
int vec__file_reseal(unsigned char *img, size_t len);

#endif
