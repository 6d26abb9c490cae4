/* test_base_hash.c - sha256 (NIST vectors, real files against SOURCES.md digests) and uuid. */
#include "test.h"

#include "base/err.h"
#include "base/mem.h"
#include "base/sha256.h"
#include "base/uuid.h"

#include <stdint.h>
#include <stdlib.h>

static void hex_of(const char *s, size_t len, char out[65])
{
    tw_sha256_hex(s, len, out);
}

TEST(sha256_nist_vectors)
{
    /* FIPS 180-2 appendix B and the NIST CAVS short messages. */
    char h[65];
    hex_of("", 0, h);
    CHECK_EQ_STR(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, h);
    CHECK_EQ_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(m448, strlen(m448), h);
    CHECK_EQ_STR(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklm"
                       "nopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    hex_of(m896, strlen(m896), h);
    CHECK_EQ_STR(h, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    /* one million 'a', fed in uneven pieces to cross block boundaries */
    struct tw_sha256 s;
    uint8_t d[32];
    char chunk[997];
    memset(chunk, 'a', sizeof(chunk));
    tw_sha256_init(&s);
    size_t left = 1000000;
    for (size_t step = 1; left; step = step * 7 % 997 + 1) {
        size_t n = step < left ? step : left;
        tw_sha256_update(&s, chunk, n);
        left -= n;
    }
    tw_sha256_final(&s, d);
    tw_sha256_to_hex(d, h);
    CHECK_EQ_STR(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* lengths 55, 56, 63, 64: the padding edge cases; the NIST byte-oriented vector for 0xbd */
    hex_of("\xbd", 1, h);
    CHECK_EQ_STR(h, "68325720aabd7c82f30f554b313d0570c95accbb7dc4b5aae11204c08ffe732b");
    hex_of("\xc9\x8c\x8e\x55", 4, h);
    CHECK_EQ_STR(h, "7abc22c0ae5af26ce93dbb94433a0e0b2e119d014f8e7f65bd56c61ccccd9504");
}

TEST(sha256_matches_digests_listed_for_shared_data)
{
    /* SOURCES.md lists "| path | size | `sha256` | ..." for every shared file; hash the first
     * skeeto posts ourselves, in odd-sized pieces, and compare. */
    size_t len, checked = 0;
    char *sources = test_read_file(test_shared("data/SOURCES.md"), &len);
    CHECK_MSG(sources != NULL, "cannot read %s", test_shared("data/SOURCES.md"));
    for (char *line = sources; line && *line && checked < 25;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (!strncmp(line, "| corpora/skeeto/_posts/", 24)) {
            char path[512], want[65], got[65];
            char *end = strchr(line + 2, ' ');
            char *tick = strchr(line, '`');
            if (end && tick && strlen(tick) > 65) {
                snprintf(path, sizeof(path), "data/%.*s", (int)(end - line - 2), line + 2);
                memcpy(want, tick + 1, 64);
                want[64] = 0;
                size_t flen;
                char *data = test_read_file(test_shared(path), &flen);
                if (!data) {
                    tw_free(sources);
                }
                CHECK_MSG(data != NULL, "cannot read %s", path);
                struct tw_sha256 s;
                uint8_t d[32];
                tw_sha256_init(&s);
                for (size_t off = 0, step = 13; off < flen; off += step, step = step * 3 % 211 + 1)
                    tw_sha256_update(&s, data + off, step < flen - off ? step : flen - off);
                tw_sha256_final(&s, d);
                tw_sha256_to_hex(d, got);
                tw_free(data);
                if (strcmp(got, want))
                    tw_free(sources);
                CHECK_EQ_STR(got, want);
                checked++;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    tw_free(sources);
    CHECK_EQ_INT(checked, 25);
}

TEST(uuid_v4_format_and_uniqueness)
{
    struct tw_err err = TW_ERR_INIT;
    char a[37], b[37];
    CHECK_OK(tw_uuid_v4(a, &err), &err);
    CHECK_OK(tw_uuid_v4(b, &err), &err);
    CHECK_EQ_INT(strlen(a), 36);
    CHECK(tw_uuid_is_valid(a));
    CHECK(a[14] == '4');
    CHECK(strchr("89ab", a[19]) != NULL);
    CHECK(strcmp(a, b) != 0);
    /* version and variant bits hold over many draws; all nibbles appear elsewhere */
    int seen[16] = {0};
    for (int i = 0; i < 200; i++) {
        CHECK_OK(tw_uuid_v4(a, &err), &err);
        CHECK(a[14] == '4' && strchr("89ab", a[19]));
        char c = a[0];
        seen[c <= '9' ? c - '0' : c - 'a' + 10] = 1;
    }
    int n_seen = 0;
    for (int i = 0; i < 16; i++)
        n_seen += seen[i];
    CHECK(n_seen >= 12); /* 200 draws miss 5 of 16 nibbles with probability ~1e-10 */
}

TEST(uuid_name_is_stable_and_distinct)
{
    char a[37], b[37], c[37];
    tw_uuid_name("twin.user", "Ada Lovelace", 12, a);
    tw_uuid_name("twin.user", "Ada Lovelace", 12, b);
    tw_uuid_name("twin.doc", "Ada Lovelace", 12, c);
    CHECK_EQ_STR(a, b);
    CHECK(strcmp(a, c) != 0);
    CHECK(tw_uuid_is_valid(a));
    CHECK(a[14] == '8');
    CHECK(!tw_uuid_is_valid("not-a-uuid"));
    CHECK(!tw_uuid_is_valid("01475da9-58d6-36ac-e652-ce88c48b6b0"));
    CHECK(!tw_uuid_is_valid("01475da9-58d6-36ac-e652-ce88c48b6b02x"));
    CHECK(tw_uuid_is_valid("01475da9-58d6-36ac-e652-ce88c48b6b02")); /* from a skeeto post */
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
