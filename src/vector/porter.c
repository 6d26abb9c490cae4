/* porter.c - the Porter stemming algorithm (M.F. Porter, "An algorithm for suffix stripping",
 * Program 14(3), 1980), with the two departures of Porter's own reference implementation
 * ("bli" -> "ble" in step 2, "logi" -> "log" added), so results match common IR toolkits.
 *
 * The word is b[0..k]; j marks the end of the stem while a suffix is being tested. */
#include "vector/lexical.h"

#include <string.h>

struct stemmer {
    char *b;
    int k, j;
};

static int cons(const struct stemmer *z, int i)
{
    switch (z->b[i]) {
    case 'a':
    case 'e':
    case 'i':
    case 'o':
    case 'u':
        return 0;
    case 'y':
        return i == 0 ? 1 : !cons(z, i - 1);
    default:
        return 1;
    }
}

/* The number of consonant-vowel sequences between 0 and j: [C](VC)^m[V]. */
static int measure(const struct stemmer *z)
{
    int n = 0, i = 0;
    for (;;) {
        if (i > z->j)
            return n;
        if (!cons(z, i))
            break;
        i++;
    }
    i++;
    for (;;) {
        for (;;) {
            if (i > z->j)
                return n;
            if (cons(z, i))
                break;
            i++;
        }
        i++;
        n++;
        for (;;) {
            if (i > z->j)
                return n;
            if (!cons(z, i))
                break;
            i++;
        }
        i++;
    }
}

static int vowel_in_stem(const struct stemmer *z)
{
    for (int i = 0; i <= z->j; i++)
        if (!cons(z, i))
            return 1;
    return 0;
}

static int double_cons(const struct stemmer *z, int j)
{
    return j >= 1 && z->b[j] == z->b[j - 1] && cons(z, j);
}

/* consonant-vowel-consonant ending at i, the last not w, x or y: "hop", not "snow". */
static int cvc(const struct stemmer *z, int i)
{
    int ch;
    if (i < 2 || !cons(z, i) || cons(z, i - 1) || !cons(z, i - 2))
        return 0;
    ch = z->b[i];
    return ch != 'w' && ch != 'x' && ch != 'y';
}

static int ends(struct stemmer *z, const char *s)
{
    int len = (int)strlen(s);
    if (len > z->k + 1 || memcmp(z->b + z->k - len + 1, s, (size_t)len) != 0)
        return 0;
    z->j = z->k - len;
    return 1;
}

static void set_to(struct stemmer *z, const char *s)
{
    int len = (int)strlen(s);
    memcpy(z->b + z->j + 1, s, (size_t)len);
    z->k = z->j + len;
}

static void replace_if_m(struct stemmer *z, const char *s)
{
    if (measure(z) > 0)
        set_to(z, s);
}

static void step1ab(struct stemmer *z)
{
    if (z->b[z->k] == 's') {
        if (ends(z, "sses"))
            z->k -= 2;
        else if (ends(z, "ies"))
            set_to(z, "i");
        else if (z->b[z->k - 1] != 's')
            z->k--;
    }
    if (ends(z, "eed")) {
        if (measure(z) > 0)
            z->k--;
    } else if ((ends(z, "ed") || ends(z, "ing")) && vowel_in_stem(z)) {
        z->k = z->j;
        if (ends(z, "at"))
            set_to(z, "ate");
        else if (ends(z, "bl"))
            set_to(z, "ble");
        else if (ends(z, "iz"))
            set_to(z, "ize");
        else if (double_cons(z, z->k)) {
            int ch = z->b[z->k--];
            if (ch == 'l' || ch == 's' || ch == 'z')
                z->k++;
        } else {
            z->j = z->k;
            if (measure(z) == 1 && cvc(z, z->k))
                set_to(z, "e");
        }
    }
}

static void step1c(struct stemmer *z)
{
    if (ends(z, "y") && vowel_in_stem(z))
        z->b[z->k] = 'i';
}

struct rule {
    const char *suffix, *repl;
};

static int apply_rules(struct stemmer *z, const struct rule *rules)
{
    for (; rules->suffix; rules++) {
        if (ends(z, rules->suffix)) {
            replace_if_m(z, rules->repl);
            return 1;
        }
    }
    return 0;
}

static void step2(struct stemmer *z)
{
    static const struct rule r_a[] = {{"ational", "ate"}, {"tional", "tion"}, {0, 0}};
    static const struct rule r_c[] = {{"enci", "ence"}, {"anci", "ance"}, {0, 0}};
    static const struct rule r_e[] = {{"izer", "ize"}, {0, 0}};
    static const struct rule r_l[] = {{"bli", "ble"}, {"alli", "al"}, {"entli", "ent"},
                                      {"eli", "e"},   {"ousli", "ous"}, {0, 0}};
    static const struct rule r_o[] = {{"ization", "ize"}, {"ation", "ate"}, {"ator", "ate"}, {0, 0}};
    static const struct rule r_s[] = {
        {"alism", "al"}, {"iveness", "ive"}, {"fulness", "ful"}, {"ousness", "ous"}, {0, 0}};
    static const struct rule r_t[] = {{"aliti", "al"}, {"iviti", "ive"}, {"biliti", "ble"}, {0, 0}};
    static const struct rule r_g[] = {{"logi", "log"}, {0, 0}};
    if (z->k < 1)
        return;
    switch (z->b[z->k - 1]) {
    case 'a': apply_rules(z, r_a); break;
    case 'c': apply_rules(z, r_c); break;
    case 'e': apply_rules(z, r_e); break;
    case 'l': apply_rules(z, r_l); break;
    case 'o': apply_rules(z, r_o); break;
    case 's': apply_rules(z, r_s); break;
    case 't': apply_rules(z, r_t); break;
    case 'g': apply_rules(z, r_g); break;
    }
}

static void step3(struct stemmer *z)
{
    static const struct rule r_e[] = {{"icate", "ic"}, {"ative", ""}, {"alize", "al"}, {0, 0}};
    static const struct rule r_i[] = {{"iciti", "ic"}, {0, 0}};
    static const struct rule r_l[] = {{"ical", "ic"}, {"ful", ""}, {0, 0}};
    static const struct rule r_s[] = {{"ness", ""}, {0, 0}};
    switch (z->b[z->k]) {
    case 'e': apply_rules(z, r_e); break;
    case 'i': apply_rules(z, r_i); break;
    case 'l': apply_rules(z, r_l); break;
    case 's': apply_rules(z, r_s); break;
    }
}

static void step4(struct stemmer *z)
{
    static const char *const s_a[] = {"al", 0}, *const s_c[] = {"ance", "ence", 0},
                             *const s_e[] = {"er", 0}, *const s_i[] = {"ic", 0},
                             *const s_l[] = {"able", "ible", 0},
                             *const s_n[] = {"ant", "ement", "ment", "ent", 0},
                             *const s_s[] = {"ism", 0}, *const s_t[] = {"ate", "iti", 0},
                             *const s_u[] = {"ous", 0}, *const s_v[] = {"ive", 0},
                             *const s_z[] = {"ize", 0};
    const char *const *list = NULL;
    int hit = 0;

    if (z->k < 1)
        return;
    switch (z->b[z->k - 1]) {
    case 'a': list = s_a; break;
    case 'c': list = s_c; break;
    case 'e': list = s_e; break;
    case 'i': list = s_i; break;
    case 'l': list = s_l; break;
    case 'n': list = s_n; break;
    case 'o':
        if (ends(z, "ion") && z->j >= 0 && (z->b[z->j] == 's' || z->b[z->j] == 't'))
            hit = 1;
        else if (ends(z, "ou"))
            hit = 1;
        break;
    case 's': list = s_s; break;
    case 't': list = s_t; break;
    case 'u': list = s_u; break;
    case 'v': list = s_v; break;
    case 'z': list = s_z; break;
    }
    for (; list && *list && !hit; list++)
        hit = ends(z, *list);
    if (hit && measure(z) > 1)
        z->k = z->j;
}

static void step5(struct stemmer *z)
{
    z->j = z->k;
    if (z->b[z->k] == 'e') {
        int a = measure(z);
        if (a > 1 || (a == 1 && !cvc(z, z->k - 1)))
            z->k--;
    }
    if (z->b[z->k] == 'l' && double_cons(z, z->k)) {
        z->j = z->k;
        if (measure(z) > 1)
            z->k--;
    }
}

void lex_porter_stem(char *w, size_t *len)
{
    struct stemmer z;
    if (*len <= 2 || *len > 1000)
        return;
    for (size_t i = 0; i < *len; i++)
        if (w[i] < 'a' || w[i] > 'z')
            return; /* only plain lowercase ASCII words are stemmed */
    z.b = w;
    z.k = (int)*len - 1;
    z.j = 0;
    step1ab(&z);
    if (z.k > 0) {
        step1c(&z);
        step2(&z);
        step3(&z);
        step4(&z);
        step5(&z);
    }
    *len = (size_t)z.k + 1;
}
