/*
** model_test.c -- a model-based random test of the engine (docs/DESIGN.md
** sections 7.1 and 7.5), in the spirit of Basho's QuickCheck model of bitcask:
** random sequences of operations run against the store and against a model (an array of
** slots, one per key of a small key space), and after every step the store
** must equal the model key by key.
**
**   build/model_test --dir DIR (--sequences N | --seconds S) [--seed X]
**                    [--length L] [--shrink-seconds T] [--real-fsync] [-v]
**   build/model_test --dir DIR --replay "SEQSPEC" [-v]
**
** Operations (their textual form, used by --replay, in brackets):
**   put key -> value (insert or replace)          [pK.LEN.META.TAG]
**   delete (present and absent keys)              [dK]
**   transaction: begin, puts, deletes, savepoints, rollback to and release
**   of savepoints, then commit, rollback, prepare + commit or prepare +
**   rollback                       [t(pK.L.M.T dK v b1 l1)c]  (end c/y/r/x)
**   bc_sync                                       [s]
**   bc_merge                                      [m]
**   close + reopen                                [r]
**   close + reopen with other options            [oMAX_FILE_SIZE.SYNC]
**   restart: close, reopen read-only and check, close, reopen  [R]
**   crash: the operations between a fork mark and the crash op run in a
**   forked child that is then killed with SIGKILL  [F ... Kb3 | Ki57.2]
**     Kb<n>     after the n-th operation of the segment (0: right after open)
**     Ki<c>.<v> inside the c-th I/O call the child makes after its open
**               (through bc_options.io): v = 0 before the call, 1 after it,
**               2 in the middle of a pwrite (part of the bytes written: a
**               torn write).  If the segment makes fewer calls the child
**               dies at its end.
**     ...+<c>.<v> (suffix of either) then kill the recovery too: a second
**               child opens the crashed store and is killed at the c-th I/O
**               call of bc_open (variant v as above) -- in the middle of
**               cutting a torn tail, redoing a merge, writing a new active
**               file -- before the parent opens it.
**   An F with no K after it (before the next F) does nothing; a K with no F
**   before it crashes a child that only opens the store.
** Sequence types (chosen per sequence from its seed): 64 keys or 8 (hot
** keys); key 0 is the empty key and key 1 is 700 bytes long; max_file_size
** the default (64 MiB), 4096, or 4096..65536; sync full, normal or off;
** values of 0..512 bytes, or 0..100 KB, or 0..100 KB with now and then one of
** 1..1.25 MiB (more than the engine's 1 MiB write buffer), or -- with
** max_file_size 4096 -- mostly 4..20 KB, so most records are larger than a
** whole data file.  Reopens with other options change max_file_size and sync
** along the way.
** A value is LEN bytes derived from TAG (a number unique to the put), so it
** is identified by a 64-bit hash; the model holds {present, len, meta, tag,
** hash} per key.  A SEQSPEC starts with a header "kNKEYS fMAX_FILE_SIZE
** ySYNC |" (the store's options at creation).
**
** Crash semantics.  The parent closes its store, forks, and the child opens
** the store, runs the segment and dies; the child reports its progress
** through a pipe (operation started / finished, transaction begun /
** committing, killed inside an I/O call).  The parent reopens the store and
** accepts any state the kill may legitimately leave:
**   - everything up to the last point where the writes are known to be in
**     the file -- a returned bc_sync, transaction begin / commit / rollback,
**     merge, close -- is present exactly (a kill -9 loses nothing written to
**     the OS, whatever the sync mode);
**   - standalone puts and deletes after that point may sit in the engine's
**     write buffer: any prefix of them survives (records reach the file in
**     order; a torn one is truncated away);
**   - the operation the kill interrupted may or may not have taken effect:
**     a transaction only if its commit had started (prepare + rollback too:
**     a kill between its COMMIT and the abort leaves it committed), and
**     never in part.
** The store is opened read-only first (no repair: a torn tail stays, an
** interrupted merge is not finished) and must match a candidate; then the
** writer's open (which repairs) must show that same state.  The test goes on
** from that candidate.
**
** Checks after every step: bc_get of every key of the key space (status,
** size, meta, value bytes), bc_lookup, bc_count, bc_stats (keys, corrupt ==
** 0), and an iteration that yields exactly the live keys once each; inside
** transactions the transaction's view (bc_txn_lookup, bc_iter_open_txn) and
** the committed view (bc_lookup) are checked too, and standalone writes and
** merges must get BC_BUSY.
**
** fsync.  Every store, the parent's and the child's, does its I/O through
** this test's bc_io, whose fsync does nothing unless --real-fsync is given:
** a kill -9 loses nothing the OS already has, so whether the engine's fsyncs
** reach the disk changes nothing this test can observe (power failures are
** not simulated), and real fsyncs would make the run time follow the disk's
** latency (0.2 to 3 ms per fsync here) rather than the work done.  The calls
** are still made, counted and used as kill points.
**
** On a failure the sequence is shrunk (chunks, single operations,
** transaction sub-operations, simpler values and options are removed while
** it still fails, each attempt from scratch in a fresh directory) and
** printed as a replayable SEQSPEC; the exit status is 1.
*/
#include "bitcask.h"
#include "../rng.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXKEYS 64
#define LONG_KEY 700                     /* key 1 is this long, key 0 empty */
#define BIG_MIN ((1u << 20) + 1)         /* > the engine's 1 MiB write buffer */
#define BIG_SPAN (256u << 10)
#define MAX_VLEN (BIG_MIN + BIG_SPAN)
#define MAX_SUB 48

/* ------------------------------------------------------------------ rng */

static uint64_t mix(uint64_t x) {
  rng r = {x};
  return next(&r);
}

/* --------------------------------------------------------- keys, values */

static unsigned char *g_vbuf; /* scratch: a generated value */

static size_t key_bytes(uint32_t k, char *out) {
  if (k == 0) return 0; /* the empty key */
  if (k == 1) {
    memset(out, 'L', LONG_KEY);
    return LONG_KEY;
  }
  return (size_t)sprintf(out, "key-%u", k);
}

/* Index of a key's bytes in the key space, or -1. */
static int key_index(const void *key, size_t klen, uint32_t nkeys) {
  char buf[LONG_KEY + 1];
  for (uint32_t k = 0; k < nkeys; k++) {
    size_t n = key_bytes(k, buf);
    if (n == klen && (n == 0 || memcmp(buf, key, n) == 0)) return (int)k;
  }
  return -1;
}

static void value_fill(uint32_t tag, uint32_t len, unsigned char *out) {
  rng r = {(uint64_t)tag * UINT64_C(0x2545F4914F6CDD1D) + len};
  uint32_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v = next(&r);
    memcpy(out + i, &v, 8);
  }
  if (i < len) {
    uint64_t v = next(&r);
    memcpy(out + i, &v, len - i);
  }
}

static uint64_t vhash(const unsigned char *p, size_t n) {
  uint64_t h = UINT64_C(0x243F6A8885A308D3) ^ n;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h = (h ^ w) * UINT64_C(0x9E3779B97F4A7C15);
    h ^= h >> 31;
  }
  uint64_t w = 0;
  if (n > i) memcpy(&w, p + i, n - i);
  h = (h ^ w) * UINT64_C(0xBF58476D1CE4E5B9);
  return h ^ (h >> 29);
}

/* ------------------------------------------------------------ operations */

typedef struct op {
  char kind;  /* p d s m r o R F K t; in a transaction: p d v b l */
  char end;   /* t: c (commit) y (prepare+commit) r (rollback) x (prepare+
              ** rollback); K: b (between operations) i (inside an I/O call) */
  uint8_t meta;
  uint32_t key, len, tag;
  uint64_t a, b; /* o: max_file_size, sync; K: n or c, variant; b/l: depth */
  uint32_t rk, rkv; /* K: kill the recovery at its rk-th I/O call (0: no) */
  int nsub;
  struct op *sub;
  int hashed;
  uint64_t hash;
} op;

typedef struct seq {
  uint32_t nkeys;
  uint64_t mfs;
  int sync;
  int n, cap;
  op *ops;
} seq;

static uint64_t op_hash(op *o) {
  if (!o->hashed) {
    value_fill(o->tag, o->len, g_vbuf);
    o->hash = vhash(g_vbuf, o->len);
    o->hashed = 1;
  }
  return o->hash;
}

static void op_free(op *o) {
  for (int i = 0; i < o->nsub; i++) op_free(&o->sub[i]);
  free(o->sub);
  o->sub = NULL;
  o->nsub = 0;
}

static void op_copy(op *dst, const op *src) {
  *dst = *src;
  if (src->nsub) {
    dst->sub = malloc((size_t)src->nsub * sizeof *dst->sub);
    for (int i = 0; i < src->nsub; i++) op_copy(&dst->sub[i], &src->sub[i]);
  } else {
    dst->sub = NULL;
  }
}

static void seq_free(seq *q) {
  for (int i = 0; i < q->n; i++) op_free(&q->ops[i]);
  free(q->ops);
  memset(q, 0, sizeof *q);
}

static op *seq_push(seq *q) {
  if (q->n == q->cap) {
    q->cap = q->cap ? q->cap * 2 : 64;
    q->ops = realloc(q->ops, (size_t)q->cap * sizeof *q->ops);
  }
  op *o = &q->ops[q->n++];
  memset(o, 0, sizeof *o);
  return o;
}

static void seq_copy(seq *dst, const seq *src) {
  *dst = *src;
  dst->cap = src->n ? src->n : 1;
  dst->ops = malloc((size_t)dst->cap * sizeof *dst->ops);
  for (int i = 0; i < src->n; i++) op_copy(&dst->ops[i], &src->ops[i]);
}

/* A copy of src without ops [from, from + count). */
static void seq_without(seq *dst, const seq *src, int from, int count) {
  *dst = *src;
  dst->cap = src->n ? src->n : 1;
  dst->ops = malloc((size_t)dst->cap * sizeof *dst->ops);
  dst->n = 0;
  for (int i = 0; i < src->n; i++)
    if (i < from || i >= from + count) op_copy(&dst->ops[dst->n++], &src->ops[i]);
}

/* ----------------------------------------------------- textual form */

typedef struct sbuf {
  char *p;
  size_t len, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (b->p && b->len + (size_t)n < b->cap) {
      b->len += (size_t)n;
      return;
    }
    b->cap = (b->cap + (size_t)n + 64) * 2;
    b->p = realloc(b->p, b->cap);
  }
}

static void fmt_op(sbuf *b, const op *o) {
  switch (o->kind) {
    case 'p':
      sb_printf(b, "p%u.%u.%u.%u", o->key, o->len, o->meta, o->tag);
      break;
    case 'd':
      sb_printf(b, "d%u", o->key);
      break;
    case 'o':
      sb_printf(b, "o%llu.%llu", (unsigned long long)o->a, (unsigned long long)o->b);
      break;
    case 'K':
      if (o->end == 'b')
        sb_printf(b, "Kb%llu", (unsigned long long)o->a);
      else
        sb_printf(b, "Ki%llu.%llu", (unsigned long long)o->a, (unsigned long long)o->b);
      if (o->rk) sb_printf(b, "+%u.%u", o->rk, o->rkv);
      break;
    case 'b':
    case 'l':
      sb_printf(b, "%c%llu", o->kind, (unsigned long long)o->a);
      break;
    case 't':
      sb_printf(b, "t(");
      for (int i = 0; i < o->nsub; i++) {
        if (i) sb_printf(b, " ");
        fmt_op(b, &o->sub[i]);
      }
      sb_printf(b, ")%c", o->end);
      break;
    default:
      sb_printf(b, "%c", o->kind);
  }
}

static char *fmt_seq(const seq *q) {
  sbuf b = {0};
  sb_printf(&b, "k%u f%llu y%d |", q->nkeys, (unsigned long long)q->mfs, q->sync);
  for (int i = 0; i < q->n; i++) {
    sb_printf(&b, " ");
    fmt_op(&b, &q->ops[i]);
  }
  return b.p;
}

static const char *g_p; /* parser cursor */

static void skip_ws(void) {
  while (*g_p == ' ' || *g_p == ',' || *g_p == '\t' || *g_p == '\n' || *g_p == '\r')
    g_p++;
}

static int parse_num(uint64_t *out) {
  if (*g_p < '0' || *g_p > '9') return -1;
  uint64_t v = 0;
  while (*g_p >= '0' && *g_p <= '9') v = v * 10 + (uint64_t)(*g_p++ - '0');
  *out = v;
  return 0;
}

/* Numbers separated by dots: exactly n of them. */
static int parse_nums(uint64_t *v, int n) {
  for (int i = 0; i < n; i++) {
    if (i && *g_p++ != '.') return -1;
    if (parse_num(&v[i]) != 0) return -1;
  }
  return 0;
}

static int parse_op(op *o, int in_txn) {
  uint64_t v[4];
  memset(o, 0, sizeof *o);
  o->kind = *g_p++;
  switch (o->kind) {
    case 'p':
      if (parse_nums(v, 4) || v[0] >= MAXKEYS || v[1] > MAX_VLEN || v[2] > 255) return -1;
      o->key = (uint32_t)v[0];
      o->len = (uint32_t)v[1];
      o->meta = (uint8_t)v[2];
      o->tag = (uint32_t)v[3];
      return 0;
    case 'd':
      if (parse_nums(v, 1) || v[0] >= MAXKEYS) return -1;
      o->key = (uint32_t)v[0];
      return 0;
    case 'v':
      return in_txn ? 0 : -1;
    case 'b':
    case 'l':
      if (!in_txn || parse_nums(v, 1)) return -1;
      o->a = v[0];
      return 0;
    case 's':
    case 'm':
    case 'r':
    case 'R':
    case 'F':
      return in_txn ? -1 : 0;
    case 'o':
      if (in_txn || parse_nums(v, 2) || v[1] > 2) return -1;
      o->a = v[0];
      o->b = v[1];
      return 0;
    case 'K':
      if (in_txn) return -1;
      o->end = *g_p++;
      if (o->end == 'b') {
        if (parse_nums(v, 1)) return -1;
        o->a = v[0];
      } else {
        if (o->end != 'i' || parse_nums(v, 2) || v[1] > 2) return -1;
        o->a = v[0];
        o->b = v[1];
      }
      if (*g_p == '+') {
        g_p++;
        if (parse_nums(v, 2) || v[0] > UINT32_MAX || v[1] > 2) return -1;
        o->rk = (uint32_t)v[0];
        o->rkv = (uint32_t)v[1];
      }
      return 0;
    case 't': {
      if (in_txn || *g_p++ != '(') return -1;
      int cap = 8;
      o->sub = malloc((size_t)cap * sizeof *o->sub);
      for (;;) {
        skip_ws();
        if (*g_p == ')') break;
        if (!*g_p) return -1;
        if (o->nsub == cap) {
          cap *= 2;
          o->sub = realloc(o->sub, (size_t)cap * sizeof *o->sub);
        }
        if (parse_op(&o->sub[o->nsub], 1) != 0) return -1;
        o->nsub++;
      }
      g_p++;
      o->end = *g_p++;
      return strchr("cyrx", o->end) && o->end ? 0 : -1;
    }
  }
  return -1;
}

static int parse_seq(const char *text, seq *q) {
  memset(q, 0, sizeof *q);
  q->nkeys = MAXKEYS;
  g_p = text;
  for (;;) {
    skip_ws();
    char c = *g_p++;
    uint64_t v;
    if (c == '|') break;
    if (!c || parse_num(&v) != 0) return -1;
    if (c == 'k' && v >= 2 && v <= MAXKEYS)
      q->nkeys = (uint32_t)v;
    else if (c == 'f')
      q->mfs = v;
    else if (c == 'y' && v <= 2)
      q->sync = (int)v;
    else
      return -1;
  }
  for (;;) {
    skip_ws();
    if (!*g_p) return 0;
    const char *at = g_p;
    if (parse_op(seq_push(q), 0) != 0) {
      fprintf(stderr, "model_test: bad operation at \"%.20s\"\n", at);
      return -1;
    }
    op *o = &q->ops[q->n - 1];
    int bad = o->kind == 'p' || o->kind == 'd' ? o->key >= q->nkeys : 0;
    for (int i = 0; i < o->nsub; i++)
      if ((o->sub[i].kind == 'p' || o->sub[i].kind == 'd') && o->sub[i].key >= q->nkeys)
        bad = 1;
    if (bad) {
      fprintf(stderr, "model_test: key out of the key space at \"%.20s\"\n", at);
      return -1;
    }
  }
}

/* ---------------------------------------------------------- generation */

typedef struct gen {
  rng r;
  int prof; /* 0 small, 1 mixed, 2 mixed + big, 3 tiny files */
  uint32_t nkeys;
  uint8_t present[MAXKEYS];
  uint32_t tag;
} gen;

static uint32_t gen_len(gen *g) {
  uint32_t c = below(&g->r, 1000);
  if (g->prof == 0) return c < 100 ? 0 : 1 + below(&g->r, 512);
  if (g->prof == 3) {
    if (c < 40) return 0;
    if (c < 300) return 1 + below(&g->r, 4000);
    if (c < 996) return 4097 + below(&g->r, 16000);
    return BIG_MIN + below(&g->r, BIG_SPAN);
  }
  if (g->prof == 2 && c >= 994) return BIG_MIN + below(&g->r, BIG_SPAN);
  if (c < 80) return 0;
  if (c < 480) return 1 + below(&g->r, 256);
  if (c < 800) return 257 + below(&g->r, 3840);
  uint32_t base = 4096u << below(&g->r, 5); /* 4 KiB .. 64 KiB */
  uint32_t n = base + below(&g->r, base);
  return n > 102400 ? 102400 : n;
}

static uint32_t gen_key(gen *g, int want_present, const uint8_t *present) {
  if (want_present) {
    uint32_t n = 0, pick[MAXKEYS];
    for (uint32_t k = 0; k < g->nkeys; k++)
      if (present[k]) pick[n++] = k;
    if (n) return pick[below(&g->r, n)];
  }
  return below(&g->r, g->nkeys);
}

static void gen_put(gen *g, op *o, uint8_t *present) {
  o->kind = 'p';
  o->key = gen_key(g, 0, present);
  o->len = gen_len(g);
  o->meta = (uint8_t)below(&g->r, 256);
  o->tag = ++g->tag;
  present[o->key] = 1;
}

static void gen_del(gen *g, op *o, uint8_t *present) {
  o->kind = 'd';
  o->key = gen_key(g, below(&g->r, 100) < 70, present);
  present[o->key] = 0;
}

static void gen_txn(gen *g, op *o) {
  uint8_t view[MAXKEYS];
  memcpy(view, g->present, sizeof view);
  o->kind = 't';
  uint32_t c = below(&g->r, 100);
  int n = c < 55 ? 1 + (int)below(&g->r, 4) : c < 95 ? 5 + (int)below(&g->r, 11)
                                                     : 16 + (int)below(&g->r, MAX_SUB - 16);
  o->sub = calloc((size_t)n, sizeof *o->sub);
  unsigned depth = 0;
  for (int i = 0; i < n; i++) {
    op *s = &o->sub[o->nsub++];
    uint32_t k = below(&g->r, 100);
    if (k < 55) {
      gen_put(g, s, view);
    } else if (k < 78) {
      gen_del(g, s, view);
    } else if (k < 88) {
      s->kind = 'v';
      depth++;
    } else if (k < 94 && depth) {
      s->kind = 'b';
      s->a = 1 + below(&g->r, depth);
      depth = (unsigned)s->a;
    } else if (depth) {
      s->kind = 'l';
      s->a = 1 + below(&g->r, depth);
      depth = (unsigned)s->a - 1;
    } else {
      gen_put(g, s, view);
    }
  }
  c = below(&g->r, 100);
  o->end = c < 62 ? 'c' : c < 74 ? 'y' : c < 88 ? 'r' : 'x';
  if (o->end == 'c' || o->end == 'y') memcpy(g->present, view, sizeof view);
}

static uint64_t gen_mfs(gen *g) {
  uint32_t c = below(&g->r, 100);
  if (c < 25) return 0;
  if (c < 50) return 4096;
  return 4096 + below(&g->r, 65536 - 4096 + 1);
}

/* One operation that is not a crash; returns a rough count of the I/O calls
** it makes (to place kills inside I/O calls). */
static uint32_t gen_plain(gen *g, op *o, uint64_t mfs) {
  uint32_t c = below(&g->r, 1000);
  uint32_t rot = mfs && mfs <= 65536 ? 3 : 0;
  if (c < 360) {
    gen_put(g, o, g->present);
    return 1 + (o->len > 2048 ? rot * 2 : rot / 3) + (o->len >= BIG_MIN ? 3 : 0);
  }
  if (c < 520) {
    gen_del(g, o, g->present);
    return 1;
  }
  if (c < 660) {
    gen_txn(g, o);
    return 4 + (uint32_t)o->nsub * (1 + rot);
  }
  if (c < 800) {
    o->kind = 's';
    return 3;
  }
  if (c < 830) {
    o->kind = 'm';
    return 60;
  }
  if (c < 880) {
    o->kind = 'r';
    return 30;
  }
  if (c < 905) {
    o->kind = 'o';
    o->a = gen_mfs(g);
    o->b = below(&g->r, 3);
    return 30;
  }
  if (c < 915) {
    o->kind = 'R';
    return 50;
  }
  gen_put(g, o, g->present);
  return 1;
}

static void gen_seq(uint64_t seed, int length, seq *q) {
  gen g;
  memset(&g, 0, sizeof g);
  g.r.s = seed;
  memset(q, 0, sizeof *q);
  uint32_t c = below(&g.r, 100);
  q->nkeys = c < 80 ? MAXKEYS : 8;
  g.nkeys = q->nkeys;
  c = below(&g.r, 100);
  if (c < 25) { /* records mostly larger than a data file */
    q->mfs = 4096;
    g.prof = 3;
  } else {
    q->mfs = gen_mfs(&g);
    c = below(&g.r, 100);
    g.prof = c < 20 ? 0 : c < 65 ? 1 : 2;
  }
  q->sync = (int)below(&g.r, 3);
  uint64_t mfs = q->mfs;
  int made = 0;
  while (made < length) {
    if (below(&g.r, 100) < 5) {
      /* A crash segment: F, 0..~25 operations, K. */
      seq_push(q)->kind = 'F';
      uint32_t c2 = below(&g.r, 100);
      int n = c2 < 10 ? 0 : c2 < 85 ? 1 + (int)below(&g.r, 10) : 11 + (int)below(&g.r, 16);
      uint32_t est = 4;
      for (int i = 0; i < n; i++) {
        op *o = seq_push(q);
        est += gen_plain(&g, o, mfs);
        if (o->kind == 'o') mfs = o->a;
      }
      op *k = seq_push(q);
      k->kind = 'K';
      if (below(&g.r, 100) < 30) {
        k->end = 'b';
        k->a = below(&g.r, (uint32_t)n + 1);
      } else {
        k->end = 'i';
        k->a = 1 + below(&g.r, est * 3 / 5);
        uint32_t v = below(&g.r, 100);
        k->b = v < 40 ? 0 : v < 65 ? 1 : 2;
      }
      if (below(&g.r, 100) < 25) { /* and kill the recovery after it */
        k->rk = 1 + below(&g.r, 1 + below(&g.r, 200));
        uint32_t v = below(&g.r, 100);
        k->rkv = v < 40 ? 0 : v < 65 ? 1 : 2;
      }
      made += n + 1;
    } else {
      op *o = seq_push(q);
      gen_plain(&g, o, mfs);
      if (o->kind == 'o') mfs = o->a;
      made++;
    }
  }
}

/* --------------------------------------------------------------- model */

typedef struct slot {
  uint8_t present, meta;
  uint32_t len, tag;
  uint64_t hash;
} slot;

typedef struct model {
  slot k[MAXKEYS];
} model;

static void slot_put(slot *s, op *o) {
  s->present = 1;
  s->meta = o->meta;
  s->len = o->len;
  s->tag = o->tag;
  s->hash = op_hash(o);
}

/* One sub-operation of a transaction on its view: the status the engine
** must return, or -1 when the sub-operation is skipped (a savepoint depth
** that is not open, after shrinking). */
static int txn_step(const op *s, model *cur, model *stack, unsigned *depth) {
  switch (s->kind) {
    case 'p':
      slot_put(&cur->k[s->key], (op *)s);
      return BC_OK;
    case 'd':
      if (!cur->k[s->key].present) return BC_NOTFOUND;
      cur->k[s->key].present = 0;
      return BC_OK;
    case 'v':
      stack[(*depth)++] = *cur;
      return BC_OK;
    case 'b':
      if (s->a < 1 || s->a > *depth) return -1;
      *cur = stack[s->a - 1];
      *depth = (unsigned)s->a;
      return BC_OK;
    case 'l':
      if (s->a < 1 || s->a > *depth) return -1;
      *depth = (unsigned)s->a - 1;
      return BC_OK;
  }
  return -1;
}

/* The state a transaction leaves if it commits. */
static void txn_result(const model *m, const op *t, model *out) {
  model *stack = malloc(((size_t)t->nsub + 1) * sizeof *stack);
  unsigned depth = 0;
  *out = *m;
  for (int i = 0; i < t->nsub; i++) txn_step(&t->sub[i], out, stack, &depth);
  free(stack);
}

static int txn_commits(const op *t) { return t->end == 'c' || t->end == 'y'; }

static int model_live(const model *m, uint32_t nkeys) {
  int n = 0;
  for (uint32_t k = 0; k < nkeys; k++) n += m->k[k].present;
  return n;
}

/* --------------------------------------------------------- statistics */

typedef struct counters {
  uint64_t sequences, ops, crashes, midio, recovery_kills, merges, reopens, keys_checked,
      keys_lost;
} counters;

static counters g_c;
static int g_counting = 1; /* 0 while shrinking */
#define COUNT(field, n) do { if (g_counting) g_c.field += (n); } while (0)

/* ---------------------------------------------- the killing I/O layer */

enum { MK_OPENED = 1, MK_START, MK_DONE, MK_BEGUN, MK_COMMITTING, MK_IOKILL, MK_END };

static int g_markfd = -1;      /* the child's progress pipe */
static uint64_t g_kill_at;     /* kill at this I/O call (1-based); 0 never */
static int g_kill_variant;
static uint64_t g_calls;
static pthread_t g_main;
static int g_real_fsync; /* --real-fsync */

static void mark(uint32_t idx, int code) {
  if (g_markfd < 0) return;
  uint32_t v = idx << 4 | (uint32_t)code;
  if (write(g_markfd, &v, sizeof v) != (ssize_t)sizeof v) _exit(5);
}

/* -1: go on; else the kill variant to apply to this call. */
static int tick(int callkind) {
  if (!g_kill_at || !pthread_equal(pthread_self(), g_main)) return -1;
  if (++g_calls != g_kill_at) return -1;
  mark((uint32_t)callkind, MK_IOKILL);
  return g_kill_variant;
}

static void die_now(void) {
  raise(SIGKILL);
  _exit(6);
}

static int k_open(void *c, const char *path, int flags, mode_t mode) {
  (void)c;
  int v = tick(0);
  if (v == 0) die_now();
  int fd;
  do fd = open(path, flags | O_CLOEXEC, mode);
  while (fd < 0 && errno == EINTR);
  if (v > 0) die_now();
  return fd;
}
static ssize_t k_pread(void *c, int fd, void *buf, size_t n, off_t off) {
  (void)c;
  int v = tick(1);
  if (v == 0) die_now();
  ssize_t r = pread(fd, buf, n, off);
  if (v > 0) die_now();
  return r;
}
static ssize_t k_pwrite(void *c, int fd, const void *buf, size_t n, off_t off) {
  (void)c;
  int v = tick(2);
  if (v == 0) die_now();
  if (v == 2 && n > 1) {
    /* A torn write: only part of the bytes reach the file. */
    size_t part = 1 + (size_t)(mix(g_kill_at) % (n - 1));
    if (pwrite(fd, buf, part, off) < 0) die_now();
    die_now();
  }
  ssize_t r = pwrite(fd, buf, n, off);
  if (v > 0) die_now();
  return r;
}
static int k_fsync(void *c, int fd) {
  (void)c;
  int v = tick(3);
  if (v == 0) die_now();
  int r = g_real_fsync ? fdatasync(fd) : 0;
  if (v > 0) die_now();
  return r;
}
static int k_ftruncate(void *c, int fd, off_t len) {
  (void)c;
  int v = tick(4);
  if (v == 0) die_now();
  int r = ftruncate(fd, len);
  if (v > 0) die_now();
  return r;
}
static int k_rename(void *c, const char *from, const char *to) {
  (void)c;
  int v = tick(5);
  if (v == 0) die_now();
  int r = rename(from, to);
  if (v > 0) die_now();
  return r;
}
static int k_unlink(void *c, const char *path) {
  (void)c;
  int v = tick(6);
  if (v == 0) die_now();
  int r = unlink(path);
  if (v > 0) die_now();
  return r;
}
static int k_close(void *c, int fd) {
  (void)c;
  int v = tick(7);
  if (v == 0) die_now();
  int r = close(fd);
  if (v > 0) die_now();
  return r;
}

static const bc_io g_kill_io = {NULL,    k_open,      k_pread,  k_pwrite, k_fsync,
                                k_ftruncate, k_rename, k_unlink, k_close};
static const char *const g_callname[] = {"open", "pread", "pwrite", "fsync",
                                         "ftruncate", "rename", "unlink", "close"};

/* ------------------------------------------------------------- a run */

typedef struct run {
  seq *q;
  char dir[PATH_MAX];
  bc_store *s;
  uint64_t mfs;
  int sync;
  const bc_io *io;
  model m;
  int verbose;
  int child;
  int fail_op; /* top-level index of the failing operation */
  char why[8192];
  bc_buf rb;
} run;

static int failf(run *r, const char *fmt, ...) {
  size_t n = strlen(r->why);
  va_list ap;
  va_start(ap, fmt);
  if (n < sizeof r->why - 1) vsnprintf(r->why + n, sizeof r->why - n, fmt, ap);
  va_end(ap);
  return -1;
}

static void describe_value(run *r, uint32_t len, uint64_t hash, sbuf *b) {
  for (int i = 0; i < r->q->n; i++) {
    op *o = &r->q->ops[i];
    int nn = o->kind == 't' ? o->nsub : 1;
    for (int j = 0; j < nn; j++) {
      op *p = o->kind == 't' ? &o->sub[j] : o;
      if (p->kind == 'p' && p->len == len && op_hash(p) == hash) {
        sb_printf(b, "the value of put #%u (op %d%s)", p->tag, i,
                  o->kind == 't' ? ", in a transaction" : "");
        return;
      }
    }
  }
  sb_printf(b, "bytes that no put wrote");
}

static void rm_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char path[PATH_MAX + 300];
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

static int do_open(run *r, int ro) {
  bc_options o;
  bc_options_init(&o);
  o.create = !ro;
  o.read_only = ro;
  o.max_file_size = r->mfs;
  o.sync = (bc_sync_mode)r->sync;
  o.io = r->io;
  char err[512];
  bc_status st = bc_open(r->dir, &o, &r->s, err, sizeof err);
  if (st != BC_OK) return failf(r, "bc_open%s: %s: %s\n", ro ? " (read-only)" : "",
                                bc_status_name(st), err);
  return 0;
}

static int do_close(run *r) {
  bc_status st = bc_close(r->s);
  r->s = NULL;
  if (st != BC_OK) return failf(r, "bc_close: %s\n", bc_status_name(st));
  return 0;
}

/* ------------------------------------------------------- snapshots */

typedef struct kobs {
  int gst, lst, iter_n;
  uint32_t glen, llen, ilen;
  uint8_t gmeta, lmeta, imeta;
  uint64_t ghash;
} kobs;

typedef struct snap {
  kobs k[MAXKEYS];
  uint64_t count, stat_keys, corrupt;
  int foreign, iter_total;
} snap;

static void take_snap(run *r, snap *sn) {
  memset(sn, 0, sizeof *sn);
  char key[LONG_KEY + 1];
  for (uint32_t k = 0; k < r->q->nkeys; k++) {
    kobs *o = &sn->k[k];
    size_t kl = key_bytes(k, key);
    const void *v = NULL;
    bc_info info;
    memset(&info, 0, sizeof info);
    o->gst = bc_get(r->s, key, kl, &r->rb, &v, &info);
    if (o->gst == BC_OK) {
      o->glen = info.value_size;
      o->gmeta = info.meta;
      o->ghash = vhash(v, info.value_size);
    }
    memset(&info, 0, sizeof info);
    o->lst = bc_lookup(r->s, key, kl, &info);
    o->llen = info.value_size;
    o->lmeta = info.meta;
  }
  sn->count = bc_count(r->s);
  bc_stats stt;
  bc_stats_get(r->s, &stt);
  sn->stat_keys = stt.keys;
  sn->corrupt = stt.corrupt;
  bc_iter *it;
  if (bc_iter_open(r->s, &it) != BC_OK) {
    sn->foreign = -1;
    return;
  }
  const void *ik;
  size_t ikl;
  bc_info info;
  while (bc_iter_next(it, &ik, &ikl, &info) == BC_OK) {
    sn->iter_total++;
    int k = key_index(ik, ikl, r->q->nkeys);
    if (k < 0) {
      sn->foreign++;
      continue;
    }
    sn->k[k].iter_n++;
    sn->k[k].ilen = info.value_size;
    sn->k[k].imeta = info.meta;
  }
  bc_iter_close(it);
}

/* Compare a snapshot with a model: the number of keys that differ (and
** global differences in *other); a description in b when b is given. */
static int cmp_snap(run *r, const snap *sn, const model *m, sbuf *b, int *other) {
  int bad = 0, shown = 0;
  *other = 0;
  for (uint32_t k = 0; k < r->q->nkeys; k++) {
    const kobs *o = &sn->k[k];
    const slot *s = &m->k[k];
    int ok;
    if (s->present)
      ok = o->gst == BC_OK && o->glen == s->len && o->gmeta == s->meta &&
           o->ghash == s->hash && o->lst == BC_OK && o->llen == s->len &&
           o->lmeta == s->meta && o->iter_n == 1 && o->ilen == s->len &&
           o->imeta == s->meta;
    else
      ok = o->gst == BC_NOTFOUND && o->lst == BC_NOTFOUND && o->iter_n == 0;
    if (ok) continue;
    bad++;
    if (!b || shown++ >= 8) continue;
    char kn[32];
    if (k == 0)
      snprintf(kn, sizeof kn, "key 0 (the empty key)");
    else if (k == 1)
      snprintf(kn, sizeof kn, "key 1 (the %d-byte key)", LONG_KEY);
    else
      snprintf(kn, sizeof kn, "key %u", k);
    sb_printf(b, "  %s: expected ", kn);
    if (s->present)
      sb_printf(b, "the value of put #%u (%u bytes, meta %u)", s->tag, s->len, s->meta);
    else
      sb_printf(b, "absent");
    sb_printf(b, "; bc_get gave %s", bc_status_name((bc_status)o->gst));
    if (o->gst == BC_OK) {
      sb_printf(b, " %u bytes, meta %u, ", o->glen, o->gmeta);
      describe_value(r, o->glen, o->ghash, b);
    }
    sb_printf(b, "; bc_lookup %s", bc_status_name((bc_status)o->lst));
    if (o->lst == BC_OK) sb_printf(b, " (%u bytes, meta %u)", o->llen, o->lmeta);
    sb_printf(b, "; the iteration yielded it %s",
              o->iter_n == 0 ? "not at all" : o->iter_n == 1 ? "once" : "more than once");
    if (o->iter_n) sb_printf(b, " (%u bytes, meta %u)", o->ilen, o->imeta);
    sb_printf(b, "\n");
  }
  if (b && shown > 8) sb_printf(b, "  ... and %d more keys\n", shown - 8);
  uint64_t live = (uint64_t)model_live(m, r->q->nkeys);
  if (sn->count != live || sn->stat_keys != live) {
    (*other)++;
    if (b)
      sb_printf(b, "  bc_count %llu, bc_stats.keys %llu, expected %llu\n",
                (unsigned long long)sn->count, (unsigned long long)sn->stat_keys,
                (unsigned long long)live);
  }
  if (sn->corrupt) {
    (*other)++;
    if (b) sb_printf(b, "  bc_stats.corrupt is %llu\n", (unsigned long long)sn->corrupt);
  }
  if (sn->foreign) {
    (*other)++;
    if (b)
      sb_printf(b, "  the iteration %s\n", sn->foreign < 0 ? "could not be opened"
                                                        : "yielded keys outside the key space");
  }
  return bad;
}

/* Check the store against r->m after an operation. */
static int check(run *r, const char *when) {
  snap sn;
  take_snap(r, &sn);
  sbuf b = {0};
  int other;
  int bad = cmp_snap(r, &sn, &r->m, &b, &other);
  COUNT(keys_checked, r->q->nkeys);
  if (!bad && !other) {
    free(b.p);
    return 0;
  }
  COUNT(keys_lost, (uint64_t)bad);
  failf(r, "the store differs from the model %s:\n%s", when, b.p ? b.p : "");
  free(b.p);
  return -1;
}

/* ---------------------------------------------------------- execution */

static int expect(run *r, bc_status got, int want, const char *what) {
  if ((int)got == want) return 0;
  return failf(r, "%s returned %s, expected %s (%s)\n", what, bc_status_name(got),
               bc_status_name((bc_status)want), r->s ? bc_errmsg(r->s) : "");
}

/* The committed view (bc_lookup) equals m, the transaction's view equals
** cur (bc_txn_lookup and an iteration of it). */
static int check_txn_views(run *r, bc_txn *t, const model *m, const model *cur) {
  char key[LONG_KEY + 1];
  int seen[MAXKEYS] = {0};
  for (uint32_t k = 0; k < r->q->nkeys; k++) {
    size_t kl = key_bytes(k, key);
    bc_info i;
    bc_status st = bc_lookup(r->s, key, kl, &i);
    if ((st == BC_OK) != m->k[k].present ||
        (st == BC_OK && (i.value_size != m->k[k].len || i.meta != m->k[k].meta)))
      return failf(r, "inside a transaction, bc_lookup of key %u shows %s, not the "
                      "committed state\n", k, bc_status_name(st));
    st = bc_txn_lookup(t, key, kl, &i);
    if ((st == BC_OK) != cur->k[k].present ||
        (st == BC_OK && (i.value_size != cur->k[k].len || i.meta != cur->k[k].meta)))
      return failf(r, "bc_txn_lookup of key %u gives %s, not the transaction's view\n",
                   k, bc_status_name(st));
  }
  bc_iter *it;
  if (bc_iter_open_txn(t, &it) != BC_OK) return failf(r, "bc_iter_open_txn failed\n");
  const void *ik;
  size_t ikl;
  bc_info info;
  int n = 0, bad = 0;
  while (bc_iter_next(it, &ik, &ikl, &info) == BC_OK) {
    n++;
    int k = key_index(ik, ikl, r->q->nkeys);
    if (k < 0 || seen[k]++ || !cur->k[k].present || info.value_size != cur->k[k].len)
      bad = 1;
  }
  bc_iter_close(it);
  if (bad || n != model_live(cur, r->q->nkeys))
    return failf(r, "bc_iter_open_txn yields %d keys, not the transaction's view "
                    "(%d live keys)\n", n, model_live(cur, r->q->nkeys));
  return 0;
}

static int exec_txn(run *r, op *o, model *m, uint32_t idx) {
  bc_txn *t = NULL;
  bc_status st = bc_txn_begin(r->s, &t);
  if (expect(r, st, BC_OK, "bc_txn_begin")) return -1;
  mark(idx, MK_BEGUN);
  model cur = *m;
  model *stack = malloc(((size_t)o->nsub + 1) * sizeof *stack);
  unsigned depth = 0;
  char key[LONG_KEY + 1];
  int rc = 0;
  size_t kl = key_bytes(2, key);
  if (expect(r, bc_put(r->s, key, kl, 0, "x", 1), BC_BUSY, "bc_put during a transaction") ||
      expect(r, bc_merge(r->s, NULL), BC_BUSY, "bc_merge during a transaction")) {
    rc = -1;
    goto out;
  }
  for (int i = 0; i < o->nsub && rc == 0; i++) {
    op *s = &o->sub[i];
    int want = txn_step(s, &cur, stack, &depth);
    if (want < 0) continue;
    switch (s->kind) {
      case 'p':
        kl = key_bytes(s->key, key);
        value_fill(s->tag, s->len, g_vbuf);
        st = bc_txn_put(t, key, kl, s->meta, s->len ? g_vbuf : NULL, s->len);
        rc = expect(r, st, want, "bc_txn_put");
        break;
      case 'd':
        kl = key_bytes(s->key, key);
        rc = expect(r, bc_txn_delete(t, key, kl), want, "bc_txn_delete");
        break;
      case 'v': {
        unsigned d = 0;
        rc = expect(r, bc_txn_savepoint(t, &d), want, "bc_txn_savepoint");
        if (!rc && d != depth) rc = failf(r, "bc_txn_savepoint gave depth %u, expected %u\n", d, depth);
        break;
      }
      case 'b':
        rc = expect(r, bc_txn_rollback_to(t, (unsigned)s->a), want, "bc_txn_rollback_to");
        break;
      case 'l':
        rc = expect(r, bc_txn_release(t, (unsigned)s->a), want, "bc_txn_release");
        break;
    }
  }
  if (rc == 0) rc = check_txn_views(r, t, m, &cur);
  if (rc != 0) goto out;
  mark(idx, MK_COMMITTING);
  if (o->end == 'y' || o->end == 'x') {
    st = bc_txn_prepare(t);
    if (expect(r, st, BC_OK, "bc_txn_prepare")) {
      rc = -1;
      goto out;
    }
  }
  if (txn_commits(o)) {
    st = bc_txn_commit(t);
    t = NULL;
    rc = expect(r, st, BC_OK, "bc_txn_commit");
    if (rc == 0) *m = cur;
  } else {
    st = bc_txn_rollback(t);
    t = NULL;
    rc = expect(r, st, BC_OK, "bc_txn_rollback");
  }
out:
  if (t) bc_txn_rollback(t);
  free(stack);
  return rc;
}

/* Run one non-crash operation against the store and m. */
static int exec_op(run *r, op *o, model *m, uint32_t idx) {
  char key[LONG_KEY + 1];
  size_t kl;
  switch (o->kind) {
    case 'p':
      kl = key_bytes(o->key, key);
      value_fill(o->tag, o->len, g_vbuf);
      if (expect(r, bc_put(r->s, key, kl, o->meta, o->len ? g_vbuf : NULL, o->len),
                 BC_OK, "bc_put"))
        return -1;
      slot_put(&m->k[o->key], o);
      return 0;
    case 'd':
      kl = key_bytes(o->key, key);
      if (expect(r, bc_delete(r->s, key, kl), m->k[o->key].present ? BC_OK : BC_NOTFOUND,
                 "bc_delete"))
        return -1;
      m->k[o->key].present = 0;
      return 0;
    case 's':
      return expect(r, bc_sync(r->s), BC_OK, "bc_sync");
    case 'm': {
      uint64_t rec = 0;
      if (expect(r, bc_merge(r->s, &rec), BC_OK, "bc_merge")) return -1;
      if (!r->child) COUNT(merges, 1);
      return 0;
    }
    case 'r':
    case 'o':
      if (do_close(r)) return -1;
      if (o->kind == 'o') {
        r->mfs = o->a;
        r->sync = (int)o->b;
      }
      if (!r->child) COUNT(reopens, 1);
      return do_open(r, 0);
    case 'R':
      if (do_close(r) || do_open(r, 1)) return -1;
      if (!r->child && check(r, "when reopened read-only")) return -1;
      if (!r->child) COUNT(reopens, 1);
      if (do_close(r)) return -1;
      return do_open(r, 0);
    case 't':
      return exec_txn(r, o, m, idx);
  }
  return failf(r, "unknown operation '%c'\n", o->kind);
}

/* ------------------------------------------------------------ crashes */

static void child_main(run *r, int first, int nseg, const op *k, int markfd) {
  g_markfd = markfd;
  g_main = pthread_self();
  g_calls = 0;
  g_kill_at = UINT64_MAX; /* no kill inside the open, but count */
  r->child = 1;
  r->why[0] = 0;
  alarm(120);
  if (do_open(r, 0) != 0) goto fail;
  mark(0, MK_OPENED);
  /* Ki counts the I/O calls made after the open. */
  g_calls = 0;
  g_kill_at = k->end == 'i' && k->a ? k->a : UINT64_MAX;
  g_kill_variant = (int)k->b;
  int between = k->end == 'b' ? (int)(k->a < (uint64_t)nseg ? k->a : (uint64_t)nseg) : -1;
  if (between == 0) die_now();
  for (int j = 0; j < nseg; j++) {
    mark((uint32_t)j, MK_START);
    if (exec_op(r, &r->q->ops[first + j], &r->m, (uint32_t)j) != 0) goto fail;
    mark((uint32_t)j, MK_DONE);
    if (between == j + 1) die_now();
  }
  mark((uint32_t)g_calls, MK_END);
  die_now();
fail:
  fprintf(stderr, "model_test child (segment op %d): %s", first, r->why);
  _exit(3);
}

/* The second child of a crash with a recovery kill: open the crashed store
** and die at the k->rk-th I/O call of the open, or right after it. */
static void recovery_main(run *r, const op *k, int markfd) {
  g_markfd = markfd;
  g_main = pthread_self();
  g_calls = 0;
  g_kill_at = k->rk;
  g_kill_variant = (int)k->rkv;
  r->child = 1;
  r->why[0] = 0;
  alarm(120);
  if (do_open(r, 0) != 0) {
    fprintf(stderr, "model_test recovery child: %s", r->why);
    _exit(3);
  }
  mark((uint32_t)g_calls, MK_END);
  die_now();
}

typedef struct progress {
  int opened, started, done_upto, iokill, iokind, ended;
  uint64_t calls;
  uint8_t *begun, *committing; /* per segment operation */
} progress;

/* The crash step: ops [first, first + nseg) run in a child killed per k. */
static int run_crash(run *r, int first, int nseg, const op *k, int kidx) {
  if (do_close(r)) return -1;
  int fds[2];
  if (pipe(fds) != 0) return failf(r, "pipe: %s\n", strerror(errno));
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return failf(r, "fork: %s\n", strerror(errno));
  if (pid == 0) {
    close(fds[0]);
    child_main(r, first, nseg, k, fds[1]);
    _exit(7);
  }
  close(fds[1]);
  progress pg;
  memset(&pg, 0, sizeof pg);
  pg.started = -1;
  pg.done_upto = -1;
  pg.begun = calloc((size_t)nseg + 1, 1);
  pg.committing = calloc((size_t)nseg + 1, 1);
  uint32_t v;
  while (read(fds[0], &v, sizeof v) == (ssize_t)sizeof v) {
    uint32_t idx = v >> 4;
    switch (v & 15) {
      case MK_OPENED: pg.opened = 1; break;
      case MK_START: pg.started = (int)idx; break;
      case MK_DONE: pg.done_upto = (int)idx; break;
      case MK_BEGUN: if (idx < (uint32_t)nseg) pg.begun[idx] = 1; break;
      case MK_COMMITTING: if (idx < (uint32_t)nseg) pg.committing[idx] = 1; break;
      case MK_IOKILL: pg.iokill = 1; pg.iokind = (int)idx; break;
      case MK_END: pg.ended = 1; pg.calls = idx; break;
    }
  }
  close(fds[0]);
  int wst;
  while (waitpid(pid, &wst, 0) < 0 && errno == EINTR) {
  }
  COUNT(crashes, 1);
  if (pg.iokill) COUNT(midio, 1);
  /* Then, maybe, a kill inside the recovery of what it left. */
  int rwst = 0, rran = 0, rkilled = 0;
  uint64_t rcalls = 0;
  if (k->rk && WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL) {
    /* Open with the options in effect at the kill. */
    for (int j = 0; j <= pg.started && j < nseg; j++)
      if (r->q->ops[first + j].kind == 'o') {
        r->mfs = r->q->ops[first + j].a;
        r->sync = (int)r->q->ops[first + j].b;
      }
    if (pipe(fds) != 0) return failf(r, "pipe: %s\n", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) return failf(r, "fork: %s\n", strerror(errno));
    if (pid == 0) {
      close(fds[0]);
      recovery_main(r, k, fds[1]);
      _exit(7);
    }
    close(fds[1]);
    rran = 1;
    while (read(fds[0], &v, sizeof v) == (ssize_t)sizeof v) {
      if ((v & 15) == MK_IOKILL) rkilled = 1;
      if ((v & 15) == MK_END) rcalls = v >> 4;
    }
    close(fds[0]);
    while (waitpid(pid, &rwst, 0) < 0 && errno == EINTR) {
    }
    if (rkilled) COUNT(recovery_kills, 1);
  }
  /* Count the child's work. */
  for (int j = 0; j <= pg.done_upto && j < nseg; j++) {
    op *o = &r->q->ops[first + j];
    if (o->kind == 'm') COUNT(merges, 1);
    if (o->kind == 'r' || o->kind == 'o' || o->kind == 'R') COUNT(reopens, 1);
  }
  COUNT(ops, (uint64_t)(pg.started + 1));
  if (rran && !(WIFSIGNALED(rwst) && WTERMSIG(rwst) == SIGKILL)) {
    free(pg.begun);
    free(pg.committing);
    return failf(r, "the recovery child %s %d instead of dying by SIGKILL (its message "
                    "is above)\n", WIFSIGNALED(rwst) ? "died of signal" : "exited with status",
                 WIFSIGNALED(rwst) ? WTERMSIG(rwst) : WEXITSTATUS(rwst));
  }
  if (!(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL)) {
    free(pg.begun);
    free(pg.committing);
    return failf(r, "the crash child %s %d instead of dying by SIGKILL (its message "
                    "is above)\n", WIFSIGNALED(wst) ? "died of signal" : "exited with status",
                 WIFSIGNALED(wst) ? WTERMSIG(wst) : WEXITSTATUS(wst));
  }

  /* The candidate states, most progressed last. */
  int maxc = nseg + 3;
  model *cand = malloc((size_t)maxc * sizeof *cand);
  int nc = 1;
  cand[0] = r->m;
  model cur = r->m;
  for (int j = 0; j <= pg.started && j < nseg; j++) {
    op *o = &r->q->ops[first + j];
    int done = j <= pg.done_upto;
    if (o->kind == 'o') {
      r->mfs = o->a;
      r->sync = (int)o->b;
    }
    switch (o->kind) {
      case 'p':
      case 'd':
        if (o->kind == 'p')
          slot_put(&cur.k[o->key], o);
        else
          cur.k[o->key].present = 0;
        cand[nc++] = cur; /* a prefix of the buffered writes survives */
        break;
      case 't':
        if (done || pg.begun[j]) { /* begin flushed the writes before it */
          nc = 1;
          cand[0] = cur;
        }
        if (done && txn_commits(o)) {
          txn_result(&cur, o, &cur);
          cand[0] = cur;
        } else if (!done && pg.committing[j] && o->end != 'r') {
          txn_result(&cur, o, &cand[nc++]);
        }
        break;
      default: /* s m r o R: the writes before are in the file once done */
        if (done) {
          nc = 1;
          cand[0] = cur;
        }
    }
  }
  if (r->verbose) {
    printf("    crash: child %s, ops done %d/%d", pg.opened ? "opened" : "killed while opening",
           pg.done_upto + 1, nseg);
    if (pg.iokill)
      printf(", killed in I/O call %llu (%s, variant %llu)", (unsigned long long)k->a,
             g_callname[pg.iokind & 7], (unsigned long long)k->b);
    else if (pg.ended)
      printf(", the segment made %llu I/O calls", (unsigned long long)pg.calls);
    printf(", %d candidate states\n", nc);
    if (k->rk && rkilled)
      printf("    crash: the recovery was killed in its I/O call %u (variant %u)\n", k->rk,
             k->rkv);
    else if (k->rk)
      printf("    crash: the recovery made %llu I/O calls, fewer than %u; killed after it\n",
             (unsigned long long)rcalls, k->rk);
  }
  free(pg.begun);
  free(pg.committing);
  /* First a read-only open (no lock, no repair: a torn tail stays, an
  ** interrupted merge is not finished), then the writer's open, which must
  ** show the very state the read-only one matched. */
  int pick = -1;
  for (int pass = 0; pass < 2; pass++) {
    const char *how = pass == 0 ? "read-only" : "read-write";
    if (do_open(r, pass == 0) != 0) {
      failf(r, "(the %s open after the crash at op %d)\n", how, kidx);
      free(cand);
      return -1;
    }
    snap sn;
    take_snap(r, &sn);
    int best = -1, bestbad = INT_MAX, found = -1;
    for (int c = nc - 1; c >= 0; c--) {
      if (pass == 1 && c != pick) continue;
      int other;
      int bad = cmp_snap(r, &sn, &cand[c], NULL, &other);
      if (!bad && !other) {
        found = c;
        break;
      }
      if (bad + other < bestbad) {
        bestbad = bad + other;
        best = c;
      }
    }
    COUNT(keys_checked, r->q->nkeys);
    if (found < 0) {
      sbuf b = {0};
      int other;
      int bad = cmp_snap(r, &sn, &cand[best], &b, &other);
      COUNT(keys_lost, (uint64_t)bad);
      if (pass == 0)
        failf(r, "after the crash (op %d; %d of %d segment ops done%s%s), the %s open "
                 "matches none of the %d acceptable states; against the closest "
                 "(candidate %d):\n%s",
              kidx, pg.done_upto + 1, nseg, pg.iokill ? ", killed inside " : "",
              pg.iokill ? g_callname[pg.iokind & 7] : "", how, nc, best, b.p ? b.p : "");
      else
        failf(r, "after the crash (op %d), the read-write open differs from the "
                 "read-only open before it (which matched candidate %d of %d):\n%s",
              kidx, pick, nc, b.p ? b.p : "");
      free(b.p);
      free(cand);
      return -1;
    }
    pick = found;
    if (pass == 0) do_close(r);
  }
  r->m = cand[pick];
  if (r->verbose && nc > 1) printf("    crash: the store matches candidate %d of %d\n", pick, nc);
  free(cand);
  return 0;
}

/* ------------------------------------------------------- a sequence */

/* Run q from scratch in dir.  0: passed; -1: failed (r->fail_op, r->why). */
static int run_seq(seq *q, const char *dir, int verbose, run *r) {
  memset(r, 0, sizeof *r);
  r->q = q;
  snprintf(r->dir, sizeof r->dir, "%s", dir);
  r->mfs = q->mfs;
  r->sync = q->sync;
  r->verbose = verbose;
  r->fail_op = -1;
  r->io = &g_kill_io; /* never kills in the parent (g_kill_at is UINT64_MAX) */
  rm_dir(dir);
  int rc = 0;
  if (do_open(r, 0) != 0 || check(r, "after creating the store") != 0) {
    r->fail_op = 0;
    rc = -1;
  }
  for (int i = 0; i < q->n && rc == 0; i++) {
    op *o = &q->ops[i];
    if (verbose) {
      sbuf b = {0};
      fmt_op(&b, o);
      printf("  op %d: %s\n", i, b.p);
      free(b.p);
    }
    if (o->kind == 'F') {
      int j = i + 1;
      while (j < q->n && q->ops[j].kind != 'K' && q->ops[j].kind != 'F') j++;
      if (j >= q->n || q->ops[j].kind != 'K') continue; /* no crash follows */
      if (verbose)
        for (int x = i + 1; x <= j; x++) {
          sbuf b = {0};
          fmt_op(&b, &q->ops[x]);
          printf("  op %d: %s (in the child)\n", x, b.p);
          free(b.p);
        }
      if (run_crash(r, i + 1, j - i - 1, &q->ops[j], j) != 0) {
        r->fail_op = j;
        rc = -1;
      }
      i = j;
      continue;
    }
    if (o->kind == 'K') { /* a crash with no segment: the child only opens the store */
      if (run_crash(r, i, 0, o, i) != 0) {
        r->fail_op = i;
        rc = -1;
      }
      continue;
    }
    COUNT(ops, 1);
    char when[64];
    snprintf(when, sizeof when, "after op %d", i);
    if (exec_op(r, o, &r->m, (uint32_t)i) != 0 || check(r, when) != 0) {
      r->fail_op = i;
      rc = -1;
    }
  }
  if (r->s) {
    if (bc_close(r->s) != BC_OK && rc == 0) {
      failf(r, "the final bc_close failed\n");
      r->fail_op = q->n - 1;
      rc = -1;
    }
    r->s = NULL;
  }
  bc_buf_free(&r->rb);
  if (rc == 0) rm_dir(dir);
  return rc;
}

/* -------------------------------------------------------- shrinking */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct shrinker {
  const char *dir;
  double deadline;
  int tries, budget;
  run *r;
} shrinker;

/* 1 if q still fails (then *q is kept by the caller). */
static int still_fails(shrinker *sh, seq *q) {
  if (sh->tries >= sh->budget || now_s() > sh->deadline) return 0;
  sh->tries++;
  /* A failing child writes its message to stderr: keep it quiet here. */
  int saved = dup(2), nul = open("/dev/null", O_WRONLY);
  if (nul >= 0) dup2(nul, 2);
  int fails = run_seq(q, sh->dir, 0, sh->r) != 0;
  if (saved >= 0) dup2(saved, 2);
  if (saved >= 0) close(saved);
  if (nul >= 0) close(nul);
  rm_dir(sh->dir);
  return fails;
}

static int try_replace(shrinker *sh, seq *q, seq *cand) {
  if (still_fails(sh, cand)) {
    seq_free(q);
    *q = *cand;
    return 1;
  }
  seq_free(cand);
  return 0;
}

static void shrink(seq *q, int fail_op, const char *dir, double seconds) {
  run *r = malloc(sizeof *r);
  shrinker sh = {dir, now_s() + seconds, 0, 4000, r};
  g_counting = 0;
  seq c;
  /* Nothing after the failing operation matters. */
  if (fail_op >= 0 && fail_op + 1 < q->n) {
    seq_without(&c, q, fail_op + 1, q->n - fail_op - 1);
    try_replace(&sh, q, &c);
  }
  int progress = 1;
  while (progress) {
    progress = 0;
    /* Chunks, halving down to single operations. */
    for (int chunk = q->n / 2 > 0 ? q->n / 2 : 1; chunk >= 1; chunk /= 2) {
      for (int at = 0; at < q->n;) {
        int cnt = at + chunk <= q->n ? chunk : q->n - at;
        seq_without(&c, q, at, cnt);
        if (try_replace(&sh, q, &c))
          progress = 1;
        else
          at += chunk;
      }
    }
    /* Sub-operations of transactions, and simpler transaction ends. */
    for (int i = 0; i < q->n; i++) {
      if (q->ops[i].kind != 't') continue;
      for (int j = 0; j < q->ops[i].nsub;) {
        seq_copy(&c, q);
        op *t = &c.ops[i];
        op_free(&t->sub[j]);
        memmove(&t->sub[j], &t->sub[j + 1], (size_t)(t->nsub - j - 1) * sizeof *t->sub);
        t->nsub--;
        if (try_replace(&sh, q, &c))
          progress = 1;
        else
          j++;
      }
      if (q->ops[i].end == 'y' || q->ops[i].end == 'x') {
        seq_copy(&c, q);
        c.ops[i].end = q->ops[i].end == 'y' ? 'c' : 'r';
        if (try_replace(&sh, q, &c)) progress = 1;
      }
    }
    /* Smaller values. */
    for (int i = 0; i < q->n; i++) {
      int nn = q->ops[i].kind == 't' ? q->ops[i].nsub : 1;
      for (int j = 0; j < nn; j++) {
        op *p = q->ops[i].kind == 't' ? &q->ops[i].sub[j] : &q->ops[i];
        if (p->kind != 'p' || p->len <= 1) continue;
        uint32_t len = p->len >= BIG_MIN ? 60000 : p->len > 64 ? p->len / 4 : 1;
        seq_copy(&c, q);
        op *cp = c.ops[i].kind == 't' ? &c.ops[i].sub[j] : &c.ops[i];
        cp->len = len;
        cp->hashed = 0;
        if (try_replace(&sh, q, &c)) progress = 1;
      }
    }
    /* Crashes without the recovery kill. */
    for (int i = 0; i < q->n; i++) {
      if (q->ops[i].kind != 'K' || !q->ops[i].rk) continue;
      seq_copy(&c, q);
      c.ops[i].rk = c.ops[i].rkv = 0;
      if (try_replace(&sh, q, &c)) progress = 1;
    }
    /* Simpler options. */
    if (q->sync != 0) {
      seq_copy(&c, q);
      c.sync = 0;
      if (try_replace(&sh, q, &c)) progress = 1;
    }
    if (sh.tries >= sh.budget || now_s() > sh.deadline) break;
  }
  g_counting = 1;
  free(r);
  printf("shrinking: %d runs%s\n", sh.tries,
         sh.tries >= sh.budget || now_s() > sh.deadline ? " (stopped at the limit)" : "");
}

/* ---------------------------------------------------------------- main */

static void usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s --dir DIR (--sequences N | --seconds S | --replay SEQSPEC)\n"
          "       [--seed X] [--length L] [--shrink-seconds T] [--real-fsync] [-v]\n",
          argv0);
  exit(2);
}

static void summary(uint64_t passed, uint64_t failed) {
  printf("model_test: %llu of the crashes also killed the recovery after them "
         "inside an I/O call\n", (unsigned long long)g_c.recovery_kills);
  printf("model_test: %llu sequences, %llu operations, %llu crashes (%llu mid-I/O), "
         "%llu merges, %llu reopens, keys checked %llu, keys lost %llu\n",
         (unsigned long long)g_c.sequences, (unsigned long long)g_c.ops,
         (unsigned long long)g_c.crashes, (unsigned long long)g_c.midio,
         (unsigned long long)g_c.merges, (unsigned long long)g_c.reopens,
         (unsigned long long)g_c.keys_checked, (unsigned long long)g_c.keys_lost);
  printf("%llu passed, %llu failed\n", (unsigned long long)passed,
         (unsigned long long)failed);
  fflush(stdout);
}

/* A failure: report, shrink, print the replayable form. */
static void report_failure(seq *q, run *r, const char *base, const char *label,
                           double shrink_seconds) {
  char *full = fmt_seq(q);
  printf("FAIL %s at op %d: %s", label, r->fail_op, r->why);
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/failed.replay", base);
  FILE *f = fopen(path, "w");
  if (f) {
    fprintf(f, "%s\n", full);
    fclose(f);
    printf("the full sequence (%d ops) is in %s; the store is kept in %s\n", q->n, path,
           r->dir);
  }
  free(full);
  fflush(stdout);
  char sdir[PATH_MAX];
  snprintf(sdir, sizeof sdir, "%s/shrink", base);
  seq s;
  seq_copy(&s, q);
  shrink(&s, r->fail_op, sdir, shrink_seconds);
  /* Run the shrunk sequence once more to show its failure. */
  run *r2 = malloc(sizeof *r2);
  g_counting = 0;
  int fails = run_seq(&s, sdir, 0, r2) != 0;
  g_counting = 1;
  char *text = fmt_seq(&s);
  if (fails) {
    printf("shrunk to %d ops, failing at op %d: %s", s.n, r2->fail_op, r2->why);
    rm_dir(sdir);
  }
  printf("replay with: build/model_test --dir DIR --replay \"%s\"\n", text);
  free(text);
  free(r2);
  seq_free(&s);
}

int main(int argc, char **argv) {
  const char *dir = NULL, *replay = NULL;
  long nseq = -1;
  double seconds = -1, shrink_seconds = 120;
  int length = 300, verbose = 0, have_seed = 0;
  uint64_t seed = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int more = i + 1 < argc;
    if (!strcmp(a, "--dir") && more)
      dir = argv[++i];
    else if (!strcmp(a, "--sequences") && more)
      nseq = atol(argv[++i]);
    else if (!strcmp(a, "--seconds") && more)
      seconds = atof(argv[++i]);
    else if (!strcmp(a, "--seed") && more) {
      seed = strtoull(argv[++i], NULL, 0);
      have_seed = 1;
    } else if (!strcmp(a, "--replay") && more)
      replay = argv[++i];
    else if (!strcmp(a, "--length") && more)
      length = atoi(argv[++i]);
    else if (!strcmp(a, "--shrink-seconds") && more)
      shrink_seconds = atof(argv[++i]);
    else if (!strcmp(a, "--real-fsync"))
      g_real_fsync = 1;
    else if (!strcmp(a, "-v"))
      verbose = 1;
    else
      usage(argv[0]);
  }
  if (!dir || (!replay && nseq < 0 && seconds < 0) || length < 1) usage(argv[0]);
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "model_test: cannot create %s: %s\n", dir, strerror(errno));
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  g_main = pthread_self();
  g_kill_at = UINT64_MAX;
  g_vbuf = malloc(MAX_VLEN);
  char sdir[PATH_MAX];
  run *r = malloc(sizeof *r);

  if (replay) {
    seq q;
    if (parse_seq(replay, &q) != 0) {
      fprintf(stderr, "model_test: cannot parse the sequence\n");
      return 2;
    }
    printf("model_test: replaying %d ops in %s\n", q.n, dir);
    snprintf(sdir, sizeof sdir, "%s/replay", dir);
    g_c.sequences = 1;
    int fails = run_seq(&q, sdir, verbose, r) != 0;
    if (fails) report_failure(&q, r, dir, "replay", shrink_seconds);
    summary(!fails, fails);
    seq_free(&q);
    return fails;
  }

  if (!have_seed) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
  }
  printf("model_test: seed %llu, %s %g, length %d, dir %s\n", (unsigned long long)seed,
         nseq >= 0 ? "sequences" : "seconds", nseq >= 0 ? (double)nseq : seconds, length,
         dir);
  fflush(stdout);
  double start = now_s();
  uint64_t passed = 0, failed = 0;
  for (long i = 0;; i++) {
    if (nseq >= 0 && i >= nseq) break;
    if (nseq < 0 && now_s() - start >= seconds) break;
    seq q;
    uint64_t sseed = mix(seed ^ ((uint64_t)i * UINT64_C(0x9E3779B97F4A7C15)));
    gen_seq(sseed, length, &q);
    snprintf(sdir, sizeof sdir, "%s/seq-%ld", dir, i);
    if (verbose)
      printf("sequence %ld: %d ops, %u keys, max_file_size %llu, sync %d\n", i, q.n,
             q.nkeys, (unsigned long long)q.mfs, q.sync);
    g_c.sequences++;
    if (run_seq(&q, sdir, verbose, r) == 0) {
      passed++;
    } else {
      failed++;
      char label[128];
      snprintf(label, sizeof label, "seed %llu sequence %ld", (unsigned long long)seed, i);
      report_failure(&q, r, dir, label, shrink_seconds);
      seq_free(&q);
      break;
    }
    seq_free(&q);
  }
  summary(passed, failed);
  free(r);
  free(g_vbuf);
  return failed ? 1 : 0;
}
