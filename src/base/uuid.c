/* uuid.c - random and name-based uuids. */
#include "base/uuid.h"

#include "base/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

int tw_random_bytes(void *buf, size_t n, struct tw_err *err)
{
    uint8_t *p = buf;
    size_t got = 0;
    int fd;

    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got == n)
        return TW_OK;
    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tw_errf(err, TW_EIO, "cannot open '/dev/urandom': %s", strerror(errno));
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            close(fd);
            return tw_errf(err, TW_EIO, "cannot read '/dev/urandom'");
        }
        got += (size_t)r;
    }
    close(fd);
    return TW_OK;
}

static void format_uuid(const uint8_t b[16], char out[TW_UUID_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = digits[b[i] >> 4];
        *o++ = digits[b[i] & 15];
    }
    *o = 0;
}

int tw_uuid_v4(char out[TW_UUID_LEN + 1], struct tw_err *err)
{
    uint8_t b[16];
    int rc = tw_random_bytes(b, sizeof(b), err);
    if (rc < 0)
        return rc;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    format_uuid(b, out);
    return TW_OK;
}

void tw_uuid_name(const char *ns, const char *name, size_t name_len, char out[TW_UUID_LEN + 1])
{
    struct tw_sha256 s;
    uint8_t d[TW_SHA256_LEN];
    tw_sha256_init(&s);
    tw_sha256_update(&s, ns, strlen(ns) + 1); // the NUL separates ns from name
    tw_sha256_update(&s, name, name_len);
    tw_sha256_final(&s, d);
    d[6] = (uint8_t)((d[6] & 0x0f) | 0x80);
    d[8] = (uint8_t)((d[8] & 0x3f) | 0x80);
    format_uuid(d, out);
}

bool tw_uuid_is_valid(const char *s)
{
    if (!s)
        return false;
    for (int i = 0; i < TW_UUID_LEN; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return s[TW_UUID_LEN] == 0;
}
