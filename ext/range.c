/*
** range.c -- the key ranges a walk of a bitcask table covers (cursor.c).
**
** xBestIndex hands xFilter a lower bound (key > / >= ?), an upper bound
** (key < / <= ?) and a LIKE or GLOB pattern on the key; this file turns them
** into a sorted list of disjoint ranges of encoded keys (codec.c), which the
** cursor walks in the engine's ordered index one after another.
**
** Bounds are exact: encoded keys compare as bytes in SQLite's order, so
** `key > ?` is the range past enc(?).
**
** Patterns are served by their literal prefix and stay a filter SQLite
** applies (the constraint is not omitted):
**   - GLOB 'abc*...' (case-sensitive): keys starting with "abc".
**   - LIKE 'abc%...' (ASCII case-insensitive): keys starting with any case
**     variant of "abc".  The first LIKE_VARIANT_LETTERS letters are expanded
**     into their variants, one range each; the rest of the prefix bounds each
**     range from its all-upper-case to its all-lower-case spelling (a superset
**     of the variants, in one range).
**   - LIKE and GLOB compare a key's text: a BLOB key's bytes as text, and a
**     number's text ("-12", "1.5", "Inf").  So the prefix's ranges are taken
**     for TEXT and BLOB keys both, and all numeric keys are included when the
**     prefix is empty or starts with a character a number's text can start
**     with ('-', a digit, 'I' or 'i' for LIKE).
**   - A pattern with no literal prefix ('%x') gives the whole key space.
**   - In a UTF-16 database SQLite reads a BLOB's bytes as UTF-16 text, so
**     the prefix's bytes say nothing about which BLOB keys match: the whole
**     BLOB class is walked there (TEXT keys reach LIKE as their UTF-8 text
**     in every encoding, so their prefix ranges stay exact).
**
** UTF-16 databases compare TEXT as UTF-16 bytes (BINARY is memcmp of the
** database's encoding), an order the UTF-8 keys do not have: there a text
** bound is not a range of encoded keys.  What stays true in every byte
** order is that every string between two bounds starts with their common
** prefix; bcx_utf16_prefix gives its ASCII part, and the caller walks the
** TEXT keys with that prefix (or all TEXT keys) and leaves the bounds to
** SQLite.
*/
#include "bitcask_ext.h"
SQLITE_EXTENSION_INIT3

#include <stdlib.h>
#include <string.h>

#define LIKE_VARIANT_LETTERS 6

static unsigned char *dup_bytes(const unsigned char *p, size_t n) {
  unsigned char *d = sqlite3_malloc64(n ? n : 1);
  if (d && n) memcpy(d, p, n);
  return d;
}

void bcx_ranges_free(bcx_ranges *r) {
  for (int i = 0; i < r->n; i++) {
    sqlite3_free(r->r[i].lo);
    sqlite3_free(r->r[i].hi);
  }
  sqlite3_free(r->r);
  r->r = NULL;
  r->n = 0;
}

/* A candidate range before intersection: [lo, hi), both given. */
typedef struct span {
  unsigned char *lo, *hi; /* sqlite3_malloc'd */
  size_t lo_len, hi_len;
} span;

static int span_cmp(const void *a, const void *b) {
  const span *x = a, *y = b;
  return bc_key_cmp(x->lo, x->lo_len, y->lo, y->lo_len);
}

/* The least byte string greater than every string starting with s[0..n):
** s with trailing 0xFF bytes dropped and the last byte incremented, in
** place.  Returns its length; s[0] is a tag below 0xFF, so never 0. */
static size_t successor(unsigned char *s, size_t n) {
  while (n > 0 && s[n - 1] == 0xFF) n--;
  s[n - 1]++;
  return n;
}

static int is_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }
static int is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
static int is_letter(unsigned char c) { return is_lower(c) || is_upper(c); }
static unsigned char to_upper(unsigned char c) { return is_lower(c) ? (unsigned char)(c - 32) : c; }
static unsigned char to_lower(unsigned char c) { return is_upper(c) ? (unsigned char)(c + 32) : c; }

typedef struct spans {
  span *s;
  int n, cap;
  int oom;
} spans;

static void spans_add(spans *v, unsigned char *lo, size_t lo_len, unsigned char *hi,
                      size_t hi_len) {
  if (!lo || !hi || v->oom) {
    sqlite3_free(lo);
    sqlite3_free(hi);
    v->oom = 1;
    return;
  }
  if (v->n == v->cap) {
    int cap = v->cap ? v->cap * 2 : 8;
    span *s = sqlite3_realloc64(v->s, (sqlite3_uint64)cap * sizeof *s);
    if (!s) {
      sqlite3_free(lo);
      sqlite3_free(hi);
      v->oom = 1;
      return;
    }
    v->s = s;
    v->cap = cap;
  }
  v->s[v->n].lo = lo;
  v->s[v->n].lo_len = lo_len;
  v->s[v->n].hi = hi;
  v->s[v->n].hi_len = hi_len;
  v->n++;
}

/* Spans of keys tagged `tag` whose payload starts with prefix[0..n), LIKE
** (fold != 0) or GLOB. */
static void prefix_spans(spans *v, unsigned char tag, const unsigned char *prefix,
                         size_t n, int fold) {
  /* Positions of the letters to expand into variants. */
  size_t pos[LIKE_VARIANT_LETTERS];
  int nletters = 0;
  for (size_t i = 0; fold && i < n && nletters < LIKE_VARIANT_LETTERS; i++)
    if (is_letter(prefix[i])) pos[nletters++] = i;
  size_t fixed = nletters ? pos[nletters - 1] + 1 : 0; /* bytes fixed per variant */
  for (int mask = 0; mask < (1 << nletters); mask++) {
    unsigned char *lo = sqlite3_malloc64(n + 1), *hi = sqlite3_malloc64(n + 1);
    if (lo && hi) {
      lo[0] = hi[0] = tag;
      for (size_t i = 0; i < n; i++) {
        unsigned char c = prefix[i];
        if (i < fixed) {
          int bit = -1;
          for (int j = 0; j < nletters; j++)
            if (pos[j] == i) bit = j;
          if (bit >= 0) c = (mask >> bit) & 1 ? to_lower(c) : to_upper(c);
          lo[i + 1] = hi[i + 1] = c;
        } else {
          lo[i + 1] = fold ? to_upper(c) : c;
          hi[i + 1] = fold ? to_lower(c) : c;
        }
      }
    }
    size_t hlen = hi ? successor(hi, n + 1) : 0;
    spans_add(v, lo, n + 1, hi, hlen);
  }
}

/* Can a number's text ("-1", "0.5", "Inf", "-Inf") start with c? */
static int starts_number(unsigned char c, int fold) {
  return c == '-' || (c >= '0' && c <= '9') || c == 'I' || (fold && c == 'i');
}

size_t bcx_pattern_prefix(int op, const unsigned char *pat) {
  size_t n = 0;
  for (; pat[n]; n++) {
    unsigned char c = pat[n];
    if (op == BCX_PATTERN_LIKE ? (c == '%' || c == '_')
                               : (c == '*' || c == '?' || c == '['))
      break;
  }
  return n;
}

/* SQLite's LIKE optimization adds `key >= 'abc' AND key < 'abd'` beside a
** constant `key LIKE 'abc%'` (GLOB: `key >= 'abc' AND key < 'abd'` beside
** 'abc*'): the pattern's literal prefix and its successor (last byte + 1) as
** TEXT bounds.  They are virtual (SQLite never checks them itself) and wrong
** for numeric and BLOB keys, whose text can match the pattern. */
int bcx_pattern_bound_derived(int op, const unsigned char *pat, int is_lo,
                              sqlite3_value *bound) {
  size_t n = bcx_pattern_prefix(op, pat);
  if (n == 0 || !bound || sqlite3_value_type(bound) != SQLITE_TEXT ||
      (size_t)sqlite3_value_bytes(bound) != n)
    return 0;
  const unsigned char *t = sqlite3_value_text(bound);
  if (!t) return 0;
  return is_lo ? memcmp(t, pat, n) == 0
               : memcmp(t, pat, n - 1) == 0 && t[n - 1] == pat[n - 1] + 1;
}

/* The spans a pattern can match, sorted; one span of everything when the
** pattern has no literal prefix. */
static void pattern_spans(spans *v, int op, const unsigned char *pat, int utf16) {
  size_t n = bcx_pattern_prefix(op, pat);
  int fold = op == BCX_PATTERN_LIKE;
  if (n == 0) {
    /* Everything: [0x00, 0xFF). */
    unsigned char *lo = dup_bytes((const unsigned char *)"\x00", 1);
    unsigned char *hi = dup_bytes((const unsigned char *)"\xff", 1);
    spans_add(v, lo, 1, hi, 1);
    return;
  }
  if (starts_number(pat[0], fold)) {
    unsigned char lo_b[1] = {BCX_TAG_REAL_LOW}, hi_b[1] = {BCX_TAG_REAL_HIGH + 1};
    spans_add(v, dup_bytes(lo_b, 1), 1, dup_bytes(hi_b, 1), 1);
  }
  prefix_spans(v, BCX_TAG_TEXT, pat, n, fold);
  if (utf16) {
    unsigned char lo_b[1] = {BCX_TAG_BLOB}, hi_b[1] = {BCX_TAG_BLOB + 1};
    spans_add(v, dup_bytes(lo_b, 1), 1, dup_bytes(hi_b, 1), 1);
  } else {
    prefix_spans(v, BCX_TAG_BLOB, pat, n, fold);
  }
  if (!v->oom && v->n > 1) qsort(v->s, (size_t)v->n, sizeof *v->s, span_cmp);
}

int bcx_ranges_build(bcx_ranges *out, const bcx_key *lo, int lo_excl,
                     const bcx_key *hi, int hi_excl, int pattern_op,
                     const unsigned char *pattern, int utf16) {
  out->r = NULL;
  out->n = 0;
  spans v = {0};
  if (pattern_op != BCX_PATTERN_NONE) pattern_spans(&v, pattern_op, pattern, utf16);
  int rc = SQLITE_OK;
  int nspan = pattern_op != BCX_PATTERN_NONE ? v.n : 1;
  if (v.oom) {
    rc = SQLITE_NOMEM;
    goto done;
  }
  out->r = sqlite3_malloc64((sqlite3_uint64)(nspan ? nspan : 1) * sizeof *out->r);
  if (!out->r) {
    rc = SQLITE_NOMEM;
    goto done;
  }
  for (int i = 0; i < nspan; i++) {
    /* The intersection of [span lo, span hi) with the bounds. */
    const unsigned char *rl = NULL, *rh = NULL;
    size_t rll = 0, rhl = 0;
    int rlx = 0, rhx = 0;
    if (pattern_op != BCX_PATTERN_NONE) {
      rl = v.s[i].lo;
      rll = v.s[i].lo_len;
      rh = v.s[i].hi;
      rhl = v.s[i].hi_len;
      rhx = 1;
    }
    if (lo) {
      int c = rl ? bc_key_cmp(lo->data, lo->len, rl, rll) : 1;
      if (c > 0 || (c == 0 && lo_excl)) {
        rl = lo->data;
        rll = lo->len;
        rlx = lo_excl;
      }
    }
    if (hi) {
      int c = rh ? bc_key_cmp(hi->data, hi->len, rh, rhl) : -1;
      if (c < 0 || (c == 0 && hi_excl)) {
        rh = hi->data;
        rhl = hi->len;
        rhx = hi_excl;
      }
    }
    if (rl && rh) {
      int c = bc_key_cmp(rl, rll, rh, rhl);
      if (c > 0 || (c == 0 && (rlx || rhx))) continue; /* empty */
    }
    bcx_range *r = &out->r[out->n];
    memset(r, 0, sizeof *r);
    r->lo_excl = rlx;
    r->hi_excl = rhx;
    if (rl && !(r->lo = dup_bytes(rl, rll))) rc = SQLITE_NOMEM;
    if (rh && !(r->hi = dup_bytes(rh, rhl))) rc = SQLITE_NOMEM;
    r->lo_len = rll;
    r->hi_len = rhl;
    out->n++;
    if (rc != SQLITE_OK) break;
  }
done:
  for (int i = 0; i < v.n; i++) {
    sqlite3_free(v.s[i].lo);
    sqlite3_free(v.s[i].hi);
  }
  sqlite3_free(v.s);
  if (rc != SQLITE_OK) bcx_ranges_free(out);
  return rc;
}

/* ASCII only: in SQLite's conversions between UTF-8 and UTF-16 an ASCII
** character comes only from itself (a malformed or overlong sequence, which
** a UTF-8 database can store as TEXT, reads as U+FFFD or as a character
** above U+007F), so a UTF-16 string starts with an ASCII prefix exactly when
** the key's UTF-8 bytes do. */
size_t bcx_utf16_prefix(const unsigned char *a, size_t an, const unsigned char *b,
                        size_t bn) {
  size_t i = 0;
  while (i < an && i < bn && a[i] < 0x80 && a[i] == b[i]) i++;
  return i;
}

int bcx_key_text_prefix(const unsigned char *p, size_t n, bcx_key *lo, bcx_key *hi) {
  bcx_key *k[2] = {lo, hi};
  for (int i = 0; i < 2; i++) {
    memset(k[i], 0, sizeof *k[i]);
    k[i]->heap = sqlite3_malloc64(n + 1);
    if (!k[i]->heap) {
      bcx_key_clear(lo);
      if (i) bcx_key_clear(hi);
      return SQLITE_NOMEM;
    }
    k[i]->heap[0] = BCX_TAG_TEXT;
    if (n) memcpy(k[i]->heap + 1, p, n);
    k[i]->data = k[i]->heap;
    k[i]->len = n + 1;
  }
  hi->len = successor(hi->heap, n + 1);
  return SQLITE_OK;
}
