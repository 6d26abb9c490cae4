/* uuid.h - UUIDs as 36-char lowercase strings ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx").
 *
 * tw_uuid_v4() draws 122 random bits from the kernel (getrandom, /dev/urandom as fallback).
 * tw_uuid_name() derives a stable id from a namespace string and a name (SHA-256 of
 * "ns\0name", truncated; version 8, the RFC 9562 custom version, variant 10): the same inputs
 * always give the same id, like a v5 UUID but without SHA-1. Thread-safe.
 */
#ifndef TW_UUID_H
#define TW_UUID_H

#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>

#define TW_UUID_LEN 36

/* Writes a random version-4 uuid and a NUL into out. Returns 0, or TW_EIO when the kernel's
 * random source cannot be read. */
int tw_uuid_v4(char out[TW_UUID_LEN + 1], struct tw_err *err);
/* Writes the name-based uuid of (ns, name) and a NUL into out. Never fails. */
void tw_uuid_name(const char *ns, const char *name, size_t name_len, char out[TW_UUID_LEN + 1]);
/* True when s is 36 chars of 8-4-4-4-12 hex digits (either case). */
bool tw_uuid_is_valid(const char *s);
/* Fills buf with n bytes from the kernel's random source. Returns 0 or TW_EIO. */
int tw_random_bytes(void *buf, size_t n, struct tw_err *err);

#endif
