/* sha256.h - SHA-256 (FIPS 180-4), streaming and one-shot.
 *
 *     struct tw_sha256 s;
 *     tw_sha256_init(&s); tw_sha256_update(&s, p, n); ...; tw_sha256_final(&s, digest);
 *     tw_sha256_hex(p, n, hex);   // 64 lowercase hex digits + NUL
 *
 * Content hashes of documents, artifact names in the registry. The context is a plain value the
 * caller embeds; fields are private. No allocation; thread-safe per context.
 */
#ifndef TW_SHA256_H
#define TW_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define TW_SHA256_LEN 32
#define TW_SHA256_HEX_LEN 64

struct tw_sha256 {
    uint32_t h[8];     // chaining state
    uint64_t n_bytes;  // total bytes hashed so far
    uint8_t block[64]; // pending partial block
    size_t block_len;  // bytes used in 'block'
};

void tw_sha256_init(struct tw_sha256 *s);
void tw_sha256_update(struct tw_sha256 *s, const void *data, size_t len);
/* Writes the 32-byte digest; the context must be re-initialized before reuse. */
void tw_sha256_final(struct tw_sha256 *s, uint8_t digest[TW_SHA256_LEN]);
/* One shot: the digest of data[0..len) as 64 lowercase hex digits, NUL-terminated. */
void tw_sha256_hex(const void *data, size_t len, char hex[TW_SHA256_HEX_LEN + 1]);
/* Formats a digest as lowercase hex, NUL-terminated. */
void tw_sha256_to_hex(const uint8_t digest[TW_SHA256_LEN], char hex[TW_SHA256_HEX_LEN + 1]);

#endif
