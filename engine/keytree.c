/*
** keytree.c -- the keydir's ordered index: a B+tree of entry refs in key
** order, so ranges, prefixes and key-ordered walks are walks of the index
** instead of a walk of every key and a sort.
**
** Key order is byte order: memcmp over the common length, then the shorter
** key first (bc_key_cmp).  The SQLite extension encodes keys so that this is
** SQLite's order for the column (ext/codec.c).
**
** Shape:
**  - A leaf holds up to KT_LEAF_CAP refs in key order and links to its
**    neighbours (prev/next), so a cursor steps without going back up.
**  - An inner node holds n children and, for i >= 1, sep[i]: a byte string
**    <= every key under child i and > every key under child i-1 (when child
**    i was split off, the shortest prefix of its first key greater than the
**    last key before it).  Copies, not refs: removing the entry a separator
**    came from leaves the separator valid.
**  - No node is empty; a leaf that falls under a quarter full is merged into
**    a neighbour under the same parent when the two fit in three quarters of
**    a leaf; a root with one child is replaced by the child.
**  - A leaf that splits at either end of the whole key range (keys inserted
**    in ascending or descending order) stays whole and a new leaf takes the
**    new key, so such loads fill leaves; other splits halve.
**
** The tree is built from the hash table on first use (bc_kd_ordered: one
** sort, leaves filled) and kept in step from then on.  A failed allocation
** drops the whole tree (bc_kt_drop): it is derived data, and the write that
** needed it goes on; the next ordered access rebuilds it.
**
** Every change to the set of keys, and every drop or rebuild, increments
** kd->version; a bc_kpos is valid while the version it was taken at holds.
*/
/* qsort_r needs _GNU_SOURCE, which the Makefile defines. */
#include "bitcask.h"
#include "keydir.h"

#include <stdlib.h>
#include <string.h>

/* 124 refs: a leaf of 520 bytes (a 528-byte malloc chunk), 4.2 bytes a ref
** when full, and one separator per 124 keys. */
#define KT_LEAF_CAP 124
#define KT_INNER_CAP 32
#define KT_MAX_HEIGHT 24 /* 2^32 refs need far fewer levels */
/* A bulk build fills leaves: the index is built for reads (the first
** ordered access), and inserts after it split a full leaf in two halves,
** as they would split a leaf filled to any other fraction a few inserts
** later. */
#define KT_BUILD_FILL KT_LEAF_CAP

struct kt_leaf {
  kt_leaf *prev, *next; /* neighbours in key order, NULL at the ends */
  uint32_t n;           /* refs in use, 1..KT_LEAF_CAP */
  uint32_t ref[KT_LEAF_CAP];
};

typedef struct kt_inner {
  uint32_t n;                          /* children, 1..KT_INNER_CAP */
  void *child[KT_INNER_CAP];           /* kt_inner or kt_leaf (one level up
                                       ** from the leaves) */
  unsigned char *sep[KT_INNER_CAP];    /* sep[0] unused; malloc'd copies */
  uint32_t seplen[KT_INNER_CAP];
} kt_inner;

int bc_key_cmp(const void *a, size_t an, const void *b, size_t bn) {
  size_t n = an < bn ? an : bn;
  int c = n ? memcmp(a, b, n) : 0;
  if (c) return c;
  return (an > bn) - (an < bn);
}

static int cmp_ref(const bc_keydir *kd, uint32_t ref, const void *key, size_t klen) {
  const bc_entry *e = bc_kd_entry(kd, ref);
  return bc_key_cmp(e->key, bc_e_klen(e), key, klen);
}

/* First index in leaf whose key is >= key (> key when strict). */
static uint32_t leaf_bound(const bc_keydir *kd, const kt_leaf *l, const void *key,
                           size_t klen, int strict) {
  uint32_t lo = 0, hi = l->n;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    int c = cmp_ref(kd, l->ref[mid], key, klen);
    if (c < 0 || (strict && c == 0))
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* The child of `in` whose range holds key: the last i with sep[i] <= key. */
static uint32_t inner_child(const kt_inner *in, const void *key, size_t klen) {
  uint32_t lo = 1, hi = in->n; /* answer in [lo - 1, hi - 1] */
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (bc_key_cmp(in->sep[mid], in->seplen[mid], key, klen) <= 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo - 1;
}

/* A path from the root: path[d] is the inner node at depth d and at[d] the
** child taken; the leaf is returned. */
typedef struct kt_path {
  kt_inner *node[KT_MAX_HEIGHT];
  uint32_t at[KT_MAX_HEIGHT];
  int depth; /* inner levels on the path: height - 1 */
} kt_path;

static kt_leaf *descend(const bc_keydir *kd, const void *key, size_t klen, kt_path *p) {
  void *n = kd->tree.root;
  p->depth = kd->tree.height - 1;
  for (int d = 0; d < p->depth; d++) {
    kt_inner *in = n;
    uint32_t i = inner_child(in, key, klen);
    p->node[d] = in;
    p->at[d] = i;
    n = in->child[i];
  }
  return n;
}

static void free_subtree(bc_keydir *kd, void *n, int height) {
  if (height > 1) {
    kt_inner *in = n;
    for (uint32_t i = 0; i < in->n; i++) {
      free_subtree(kd, in->child[i], height - 1);
      if (i > 0) {
        kd->tree.bytes -= in->seplen[i];
        free(in->sep[i]);
      }
    }
    kd->tree.bytes -= sizeof *in;
  } else {
    kd->tree.bytes -= sizeof(kt_leaf);
  }
  free(n);
}

void bc_kt_drop(bc_keydir *kd) {
  if (kd->tree.root) free_subtree(kd, kd->tree.root, kd->tree.height);
  kd->tree.root = NULL;
  kd->tree.height = 0;
  kd->tree.bytes = 0;
  kd->ordered = 0;
  kd->version++;
}

static void *kt_alloc(bc_keydir *kd, size_t n) {
  void *p = malloc(n);
  if (p) kd->tree.bytes += n;
  return p;
}

/* The separator between the keys of refs lo < hi: the shortest prefix of
** hi's key that is greater than lo's key (one byte past their common
** prefix, or all of hi's key), copied.  It is <= hi's key and > lo's, so
** it separates every key up to lo from every key from hi on. */
static unsigned char *sep_make(bc_keydir *kd, uint32_t lo, uint32_t hi, uint32_t *len) {
  const bc_entry *a = bc_kd_entry(kd, lo), *b = bc_kd_entry(kd, hi);
  uint32_t an = bc_e_klen(a), bn = bc_e_klen(b), m = an < bn ? an : bn, j = 0;
  while (j < m && a->key[j] == b->key[j]) j++;
  *len = j < bn ? j + 1 : bn;
  unsigned char *s = kt_alloc(kd, *len ? *len : 1);
  if (s && *len) memcpy(s, b->key, *len);
  return s;
}

/* ------------------------------------------------------------------ insert */

/* Insert (sep, right) as the child after path->at[d] in path->node[d], and
** up the path as nodes split.  spare[] holds the inner nodes the splits
** need (allocated beforehand, so nothing here can fail). */
static void insert_up(bc_keydir *kd, kt_path *p, int d, unsigned char *sep,
                      uint32_t seplen, void *right, kt_inner **spare) {
  for (; d >= 0; d--) {
    kt_inner *in = p->node[d];
    uint32_t at = p->at[d] + 1;
    if (in->n < KT_INNER_CAP) {
      memmove(&in->child[at + 1], &in->child[at], (in->n - at) * sizeof in->child[0]);
      memmove(&in->sep[at + 1], &in->sep[at], (in->n - at) * sizeof in->sep[0]);
      memmove(&in->seplen[at + 1], &in->seplen[at], (in->n - at) * sizeof in->seplen[0]);
      in->child[at] = right;
      in->sep[at] = sep;
      in->seplen[at] = seplen;
      in->n++;
      return;
    }
    /* Split: all KT_INNER_CAP + 1 children in order, then halve. */
    void *ch[KT_INNER_CAP + 1];
    unsigned char *sp[KT_INNER_CAP + 1];
    uint32_t sl[KT_INNER_CAP + 1];
    for (uint32_t i = 0, j = 0; i <= KT_INNER_CAP; i++) {
      if (i == at) {
        ch[i] = right;
        sp[i] = sep;
        sl[i] = seplen;
      } else {
        ch[i] = in->child[j];
        sp[i] = in->sep[j];
        sl[i] = in->seplen[j];
        j++;
      }
    }
    uint32_t half = (KT_INNER_CAP + 1) / 2;
    kt_inner *r = *spare++;
    memset(r, 0, sizeof *r);
    in->n = half;
    for (uint32_t i = 0; i < half; i++) {
      in->child[i] = ch[i];
      in->sep[i] = sp[i];
      in->seplen[i] = sl[i];
    }
    r->n = KT_INNER_CAP + 1 - half;
    for (uint32_t i = 0; i < r->n; i++) {
      r->child[i] = ch[half + i];
      r->sep[i] = i ? sp[half + i] : NULL;
      r->seplen[i] = i ? sl[half + i] : 0;
    }
    /* sp[half] moves up: it separates in from r. */
    sep = sp[half];
    seplen = sl[half];
    right = r;
  }
  /* The root split: a new root over the old one and `right`. */
  kt_inner *root = *spare;
  memset(root, 0, sizeof *root);
  root->n = 2;
  root->child[0] = kd->tree.root;
  root->child[1] = right;
  root->sep[1] = sep;
  root->seplen[1] = seplen;
  kd->tree.root = root;
  kd->tree.height++;
}

void bc_kt_insert(bc_keydir *kd, uint32_t ref) {
  if (!kd->ordered) return;
  const bc_entry *e = bc_kd_entry(kd, ref);
  const unsigned char *key = e->key;
  size_t klen = bc_e_klen(e);
  kd->version++;
  if (!kd->tree.root) {
    kt_leaf *l = kt_alloc(kd, sizeof *l);
    if (!l) goto fail;
    memset(l, 0, sizeof *l);
    l->n = 1;
    l->ref[0] = ref;
    kd->tree.root = l;
    kd->tree.height = 1;
    return;
  }
  kt_path p;
  kt_leaf *l = descend(kd, key, klen, &p);
  uint32_t pos = leaf_bound(kd, l, key, klen, 0);
  if (l->n < KT_LEAF_CAP) {
    memmove(&l->ref[pos + 1], &l->ref[pos], (l->n - pos) * sizeof l->ref[0]);
    l->ref[pos] = ref;
    l->n++;
    return;
  }
  /* The leaf splits.  Allocate everything first: the new leaf, its
  ** separator, and an inner node per full ancestor (plus a new root if all
  ** are full). */
  kt_inner *spare[KT_MAX_HEIGHT + 1];
  int nspare = 0, full = 0;
  while (full < p.depth && p.node[p.depth - 1 - full]->n == KT_INNER_CAP) full++;
  int need = full + (full == p.depth ? 1 : 0);
  kt_leaf *r = kt_alloc(kd, sizeof *r);
  for (; r && nspare < need; nspare++)
    if (!(spare[nspare] = kt_alloc(kd, sizeof(kt_inner)))) break;
  if (!r || nspare < need) {
    free(r);
    for (int i = 0; i < nspare; i++) free(spare[i]);
    goto fail;
  }
  memset(r, 0, sizeof *r);
  if (pos == KT_LEAF_CAP && !l->next) {
    /* Appending at the right end: start a new leaf. */
    r->n = 1;
    r->ref[0] = ref;
  } else if (pos == 0 && !l->prev) {
    /* Prepending at the left end: the full leaf moves right, whole. */
    r->n = l->n;
    memcpy(r->ref, l->ref, l->n * sizeof l->ref[0]);
    l->n = 1;
    l->ref[0] = ref;
  } else {
    uint32_t half = KT_LEAF_CAP / 2;
    r->n = KT_LEAF_CAP - half;
    memcpy(r->ref, &l->ref[half], r->n * sizeof l->ref[0]);
    l->n = half;
    kt_leaf *into = pos <= half ? l : r;
    uint32_t at = pos <= half ? pos : pos - half;
    memmove(&into->ref[at + 1], &into->ref[at], (into->n - at) * sizeof l->ref[0]);
    into->ref[at] = ref;
    into->n++;
  }
  uint32_t seplen;
  unsigned char *sep = sep_make(kd, l->ref[l->n - 1], r->ref[0], &seplen);
  if (!sep) {
    /* Undo nothing: the tree is dropped, r and the spares with it. */
    free(r);
    for (int i = 0; i < nspare; i++) free(spare[i]);
    goto fail;
  }
  r->next = l->next;
  r->prev = l;
  if (l->next) l->next->prev = r;
  l->next = r;
  insert_up(kd, &p, p.depth - 1, sep, seplen, r, spare);
  return;
fail:
  bc_kt_drop(kd);
}

/* ------------------------------------------------------------------ remove */

/* Remove child `at` of path->node[d] (already freed by the caller), and up
** the path while nodes become empty. */
static void remove_child(bc_keydir *kd, kt_path *p, int d, uint32_t at) {
  for (; d >= 0; d--) {
    kt_inner *in = p->node[d];
    /* Child 0 gone: child 1 takes its place and its separator is unused. */
    uint32_t freed = at ? at : (in->n > 1 ? 1u : 0u);
    if (freed) {
      kd->tree.bytes -= in->seplen[freed];
      free(in->sep[freed]);
    }
    if (at == 0 && in->n > 1) {
      in->child[0] = in->child[1];
      at = 1;
    }
    if (in->n > at + 1) {
      memmove(&in->child[at], &in->child[at + 1], (in->n - at - 1) * sizeof in->child[0]);
      memmove(&in->sep[at], &in->sep[at + 1], (in->n - at - 1) * sizeof in->sep[0]);
      memmove(&in->seplen[at], &in->seplen[at + 1], (in->n - at - 1) * sizeof in->seplen[0]);
    }
    in->n--;
    in->sep[0] = NULL;
    in->seplen[0] = 0;
    if (in->n > 0) break;
    /* Empty: it goes too. */
    kd->tree.bytes -= sizeof *in;
    free(in);
    if (d == 0) {
      kd->tree.root = NULL;
      kd->tree.height = 0;
      return;
    }
    at = p->at[d - 1];
  }
  /* A root with one child is replaced by it. */
  while (kd->tree.height > 1 && ((kt_inner *)kd->tree.root)->n == 1) {
    kt_inner *root = kd->tree.root;
    kd->tree.root = root->child[0];
    kd->tree.height--;
    kd->tree.bytes -= sizeof *root;
    free(root);
  }
}

static void leaf_unlink(bc_keydir *kd, kt_leaf *l) {
  if (l->prev) l->prev->next = l->next;
  if (l->next) l->next->prev = l->prev;
  kd->tree.bytes -= sizeof *l;
  free(l);
}

void bc_kt_remove(bc_keydir *kd, uint32_t ref) {
  if (!kd->ordered || !kd->tree.root) return;
  const bc_entry *e = bc_kd_entry(kd, ref);
  const unsigned char *key = e->key;
  size_t klen = bc_e_klen(e);
  kd->version++;
  kt_path p;
  kt_leaf *l = descend(kd, key, klen, &p);
  uint32_t pos = leaf_bound(kd, l, key, klen, 0);
  if (pos >= l->n || l->ref[pos] != ref) {
    bc_kt_drop(kd); /* not in the index: cannot happen; rebuild rather than trust it */
    return;
  }
  memmove(&l->ref[pos], &l->ref[pos + 1], (l->n - pos - 1) * sizeof l->ref[0]);
  l->n--;
  if (p.depth == 0) {
    if (l->n == 0) {
      leaf_unlink(kd, l);
      kd->tree.root = NULL;
      kd->tree.height = 0;
    }
    return;
  }
  kt_inner *parent = p.node[p.depth - 1];
  uint32_t at = p.at[p.depth - 1];
  if (l->n == 0) {
    leaf_unlink(kd, l);
    remove_child(kd, &p, p.depth - 1, at);
    return;
  }
  if (l->n >= KT_LEAF_CAP / 4) return;
  /* Under a quarter full: merge with a neighbour under the same parent. */
  kt_leaf *left = NULL, *right = NULL;
  uint32_t gone = 0;
  if (at + 1 < parent->n && l->n + ((kt_leaf *)parent->child[at + 1])->n <= KT_LEAF_CAP * 3 / 4) {
    left = l;
    right = parent->child[at + 1];
    gone = at + 1;
  } else if (at > 0 && l->n + ((kt_leaf *)parent->child[at - 1])->n <= KT_LEAF_CAP * 3 / 4) {
    left = parent->child[at - 1];
    right = l;
    gone = at;
  }
  if (!left) return;
  memcpy(&left->ref[left->n], right->ref, right->n * sizeof right->ref[0]);
  left->n += right->n;
  leaf_unlink(kd, right);
  remove_child(kd, &p, p.depth - 1, gone);
}

/* ------------------------------------------------------------------- build */

typedef struct kt_item {
  uint64_t prefix; /* 8 key bytes after the keys' common prefix, big-endian */
  uint32_t ref;
} kt_item;

static int item_cmp(const void *a, const void *b, void *arg) {
  const kt_item *x = a, *y = b;
  if (x->prefix != y->prefix) return x->prefix < y->prefix ? -1 : 1;
  const bc_keydir *kd = arg; /* equal prefixes: compare the whole keys */
  const bc_entry *ex = bc_kd_entry(kd, x->ref), *ey = bc_kd_entry(kd, y->ref);
  return bc_key_cmp(ex->key, bc_e_klen(ex), ey->key, bc_e_klen(ey));
}

/* Build the tree over sorted refs: full leaves, then inner levels.  -1 on
** NOMEM with everything it allocated freed. */
static int build_from(bc_keydir *kd, const kt_item *it, size_t n) {
  if (n == 0) return 0;
  size_t nleaf = (n + KT_BUILD_FILL - 1) / KT_BUILD_FILL;
  void **level = malloc(nleaf * sizeof *level);
  /* Every inner node made, to free them on failure; fewer than nleaf. */
  kt_inner **inner = malloc(nleaf * sizeof *inner);
  size_t ninner = 0;
  kt_leaf *first = NULL, *prev = NULL;
  if (!level || !inner) goto oom;
  for (size_t i = 0; i < nleaf; i++) {
    kt_leaf *l = kt_alloc(kd, sizeof *l);
    if (!l) goto oom;
    memset(l, 0, sizeof *l);
    size_t from = i * KT_BUILD_FILL, cnt = n - from < KT_BUILD_FILL ? n - from : KT_BUILD_FILL;
    for (size_t j = 0; j < cnt; j++) l->ref[j] = it[from + j].ref;
    l->n = (uint32_t)cnt;
    l->prev = prev;
    if (prev) prev->next = l;
    else first = l;
    prev = l;
    level[i] = l;
  }
  size_t nlev = nleaf;
  int height = 1;
  while (nlev > 1) {
    size_t nup = (nlev + KT_INNER_CAP - 1) / KT_INNER_CAP;
    for (size_t i = 0; i < nup; i++) {
      kt_inner *in = kt_alloc(kd, sizeof *in);
      if (!in) goto oom;
      memset(in, 0, sizeof *in);
      inner[ninner++] = in;
      size_t from = i * KT_INNER_CAP;
      size_t cnt = nlev - from < KT_INNER_CAP ? nlev - from : KT_INNER_CAP;
      for (size_t j = 0; j < cnt; j++) {
        void *c = level[from + j];
        in->child[j] = c;
        in->n = (uint32_t)(j + 1);
        if (j == 0) continue;
        /* Between the last key under the child before and the first under c. */
        void *b = level[from + j - 1];
        for (int h = height; h > 1; h--) {
          c = ((kt_inner *)c)->child[0];
          b = ((kt_inner *)b)->child[((kt_inner *)b)->n - 1];
        }
        const kt_leaf *lb = b;
        in->sep[j] = sep_make(kd, lb->ref[lb->n - 1], ((kt_leaf *)c)->ref[0], &in->seplen[j]);
        if (!in->sep[j]) goto oom;
      }
      level[i] = in;
    }
    nlev = nup;
    height++;
  }
  kd->tree.root = level[0];
  kd->tree.height = height;
  free(level);
  free(inner);
  return 0;
oom:
  for (size_t i = 0; i < ninner; i++) {
    for (uint32_t j = 1; j < inner[i]->n; j++) free(inner[i]->sep[j]);
    free(inner[i]);
  }
  while (first) {
    kt_leaf *next = first->next;
    free(first);
    first = next;
  }
  free(level);
  free(inner);
  return -1;
}

int bc_kd_ordered(bc_keydir *kd) {
  if (kd->ordered) return 0;
  size_t n = kd->count;
  kt_item *it = malloc((n ? n : 1) * sizeof *it);
  if (!it) return -1;
  size_t k = 0, skip = SIZE_MAX;
  const bc_entry *first = NULL;
  for (size_t i = 0; i < kd->cap; i++) {
    uint32_t r = bc_kd_ref_at(kd, i);
    if (!r) continue;
    it[k++].ref = r;
    const bc_entry *e = bc_kd_entry(kd, r);
    if (!first) {
      first = e;
      skip = bc_e_klen(e);
      continue;
    }
    size_t m = bc_e_klen(e) < skip ? bc_e_klen(e) : skip, j = 0;
    while (j < m && e->key[j] == first->key[j]) j++;
    skip = j;
  }
  for (size_t i = 0; i < k; i++) {
    const bc_entry *e = bc_kd_entry(kd, it[i].ref);
    uint64_t pfx = 0;
    size_t kl = bc_e_klen(e);
    for (size_t j = 0; j < 8; j++)
      pfx = (pfx << 8) | (skip + j < kl ? e->key[skip + j] : 0u);
    it[i].prefix = pfx;
  }
  qsort_r(it, k, sizeof *it, item_cmp, kd);
  kd->tree.root = NULL;
  kd->tree.height = 0;
  kd->ordered = 1;
  int rc = build_from(kd, it, k);
  free(it);
  kd->version++;
  if (rc != 0) {
    bc_kt_drop(kd);
    return -1;
  }
  return 0;
}

/* ----------------------------------------------------------------- cursors */

bc_entry *bc_kt_seek(const bc_keydir *kd, const void *key, size_t klen, int strict,
                     int desc, bc_kpos *pos) {
  pos->leaf = NULL;
  pos->idx = 0;
  if (!kd->tree.root) return NULL;
  kt_leaf *l;
  uint32_t i;
  if (!key) {
    void *n = kd->tree.root;
    for (int h = kd->tree.height; h > 1; h--) {
      kt_inner *in = n;
      n = in->child[desc ? in->n - 1 : 0];
    }
    l = n;
    i = desc ? l->n - 1 : 0;
  } else {
    kt_path p;
    l = descend(kd, key, klen, &p);
    /* asc: first >= key (> if strict); desc: last <= key (< if strict). */
    i = leaf_bound(kd, l, key, klen, desc ? !strict : strict);
    if (desc) {
      if (i == 0) {
        l = l->prev;
        if (!l) return NULL;
        i = l->n;
      }
      i--;
    } else if (i == l->n) {
      l = l->next;
      if (!l) return NULL;
      i = 0;
    }
  }
  pos->leaf = l;
  pos->idx = i;
  return bc_kd_entry(kd, l->ref[i]);
}

bc_entry *bc_kt_step(const bc_keydir *kd, bc_kpos *pos, int desc) {
  kt_leaf *l = pos->leaf;
  if (!l) return NULL;
  if (desc) {
    if (pos->idx == 0) {
      l = l->prev;
      if (!l) {
        pos->leaf = NULL;
        return NULL;
      }
      pos->idx = l->n;
    }
    pos->idx--;
  } else {
    pos->idx++;
    if (pos->idx >= l->n) {
      l = l->next;
      pos->idx = 0;
      if (!l) {
        pos->leaf = NULL;
        return NULL;
      }
    }
  }
  pos->leaf = l;
  return bc_kd_entry(kd, l->ref[pos->idx]);
}

size_t bc_kt_bytes(const bc_keydir *kd) { return kd->tree.bytes; }
