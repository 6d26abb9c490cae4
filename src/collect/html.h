/* html.h - HTML to normalized text, and main-content extraction (gumbo).
 *
 * html_to_text renders an HTML document or fragment as markdown-ish text: headings ("# "),
 * paragraphs separated by blank lines, lists ("- ", "1. "), fenced code blocks (pre), block
 * quotes ("> "), links as their text, entities decoded, whitespace collapsed outside pre; script,
 * style, nav, footer, header, aside, form, noscript and share/subscribe widgets dropped; output is
 * Unicode NFC (utf8proc) and valid UTF-8. html_extract_article finds the main content of a full
 * page the way readability does (article/main/itemprop=articleBody, else the highest-scoring
 * block by paragraph text) and also returns its title, author, date and canonical URL from
 * og:/twitter:/JSON-LD/meta tags when present. html_is_bot_challenge recognizes
 * challenge/paywall interstitials ("Just a moment...", "Verify you are human").
 * Input is UTF-8 (invalid sequences become U+FFFD), except that a page which is not valid UTF-8
 * and declares a charset of the windows-1252 family (iso-8859-1, latin1, us-ascii, cp1252) in
 * its first 4 KiB is converted from windows-1252 first. Input is bounded: at most HTML_INPUT_MAX bytes, and markup nesting elements more than 2000 deep
 * (estimated before parsing, since tree building is quadratic in depth) is refused with
 * TW_ELIMIT. All functions are pure and thread-safe; outputs are heap strings freed with tw_free.
 */
#ifndef TW_HTML_H
#define TW_HTML_H

#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTML_INPUT_MAX ((size_t)32 << 20)

struct html_article {
    char *title;         // NULL if none
    char *subtitle;      // og:description or a subtitle element, NULL if none
    char *author;        // NULL if none
    char *canonical_url; // NULL if none
    int64_t published_at; // unix seconds, or INT64_MIN
    char *content;       // the main content as text (never NULL on success)
};

/* Text of an HTML fragment or document. On success *out is a heap string (possibly empty). */
int html_to_text(const char *html, size_t len, char **out, struct tw_err *err);
/* Main content of a page; TW_ENOENT ("no article content found") when there is none. */
int html_extract_article(const char *html, size_t len, struct html_article *out,
                         struct tw_err *err);
void html_article_release(struct html_article *a);
bool html_is_bot_challenge(const char *html, size_t len);

#endif
