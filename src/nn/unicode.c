/* unicode.c - code point classes, case and decomposition for the tokenizers (utf8proc), and
 * the UTF-8 and GPT-2 byte-level codecs with llama.cpp's exact error behaviour. */
#include "nn/tok_int.h"

#include <utf8proc.h>

/* Unicode 15.1 assigned these after the Unicode 15.0 of the installed utf8proc; llama.cpp's
 * tables are 15.1 (UnicodeData.txt 15.1: CJK Extension I letters, the new ideographic
 * description characters and U+31EF). Returns 0 for code points outside them. */
static unsigned unicode_15_1(uint32_t cp)
{
    if (cp >= 0x2ebf0 && cp <= 0x2ee5d)
        return TOK_UC_LETTER; // Lo
    if ((cp >= 0x2ffc && cp <= 0x2fff) || cp == 0x31ef)
        return TOK_UC_SYMBOL; // So
    return 0;
}

unsigned tok_uc_flags(uint32_t cp)
{
    unsigned f;

    if (cp > 0x10ffff)
        return TOK_UC_UNDEFINED;
    if ((f = unicode_15_1(cp)) != 0)
        return f;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        f = TOK_UC_LETTER;
        break;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
        f = TOK_UC_MARK;
        break;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        f = TOK_UC_NUMBER;
        break;
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
        f = TOK_UC_PUNCTUATION;
        break;
    case UTF8PROC_CATEGORY_SM:
    case UTF8PROC_CATEGORY_SC:
    case UTF8PROC_CATEGORY_SK:
    case UTF8PROC_CATEGORY_SO:
        f = TOK_UC_SYMBOL;
        break;
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
        f = TOK_UC_SEPARATOR;
        break;
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
        f = TOK_UC_CONTROL;
        break;
    default:
        f = TOK_UC_UNDEFINED;
        break;
    }
    /* Unicode White_Space (PropList.txt). */
    if ((cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
        (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
        cp == 0x205f || cp == 0x3000)
        f |= TOK_UC_WHITESPACE;
    return f;
}

uint32_t tok_uc_tolower(uint32_t cp)
{
    if (cp > 0x10ffff)
        return cp;
    return (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
}

uint32_t tok_uc_nfd_first(uint32_t cp)
{
    utf8proc_int32_t dst[8];
    int last = 0;
    utf8proc_ssize_t n;

    if (cp < 0xc0 || cp > 0x10ffff)
        return cp;
    n = utf8proc_decompose_char((utf8proc_int32_t)cp, dst, 8, UTF8PROC_DECOMPOSE, &last);
    if (n < 1)
        return cp;
    return (uint32_t)dst[0];
}

uint32_t tok_uc_decode(const char *s, size_t len, size_t *off)
{
    const unsigned char *u = (const unsigned char *)s + *off;
    size_t left = len - *off;

    if (!(u[0] & 0x80)) {
        *off += 1;
        return u[0];
    }
    if (!(u[0] & 0x40))
        goto invalid;
    if (!(u[0] & 0x20)) {
        if (left < 2 || (u[1] & 0xc0) != 0x80)
            goto invalid;
        *off += 2;
        return ((uint32_t)(u[0] & 0x1f) << 6) | (u[1] & 0x3f);
    }
    if (!(u[0] & 0x10)) {
        if (left < 3 || (u[1] & 0xc0) != 0x80 || (u[2] & 0xc0) != 0x80)
            goto invalid;
        *off += 3;
        return ((uint32_t)(u[0] & 0x0f) << 12) | ((uint32_t)(u[1] & 0x3f) << 6) | (u[2] & 0x3f);
    }
    if (!(u[0] & 0x08)) {
        if (left < 4 || (u[1] & 0xc0) != 0x80 || (u[2] & 0xc0) != 0x80 || (u[3] & 0xc0) != 0x80)
            goto invalid;
        *off += 4;
        return ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3f) << 12) |
               ((uint32_t)(u[2] & 0x3f) << 6) | (u[3] & 0x3f);
    }
invalid:
    *off += 1;
    return 0xfffd;
}

size_t tok_uc_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp <= 0x7f) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp <= 0x7ff) {
        o[0] = (unsigned char)(0xc0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp > 0x10ffff)
        cp = 0xfffd; // llama.cpp throws here; we keep going with the replacement character
    if (cp <= 0xffff) {
        o[0] = (unsigned char)(0xe0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* GPT-2's bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68 bytes to
 * U+0100.. in byte order. */
static bool byte_is_printable(unsigned b)
{
    return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

uint32_t tok_uc_byte_cp(uint8_t b)
{
    unsigned n = 0;
    if (byte_is_printable(b))
        return b;
    for (unsigned c = 0; c < b; c++)
        n += !byte_is_printable(c);
    return 0x100 + n;
}

int tok_uc_cp_byte(uint32_t cp)
{
    unsigned n = 0;
    if (cp < 0x100)
        return byte_is_printable(cp) ? (int)cp : -1;
    if (cp >= 0x100 + 68)
        return -1;
    for (unsigned c = 0; c < 256; c++) {
        if (byte_is_printable(c))
            continue;
        if (n == cp - 0x100)
            return (int)c;
        n++;
    }
    return -1;
}
