/*
** cursor.c -- the cursors of the `bitcask` module (xOpen .. xColumn): every
** read of a table, one kind of walk per query plan (plan.c).
**
** Snapshots.  Every read of the table goes through one engine snapshot
** (engine/snapshot.c) opened by the first xFilter of a cursor of the table
** while none is open and closed when its last cursor closes.  SQLite keeps
** a statement's cursors open until the statement halts (a correlated
** subquery's cursor is replaced only after its successor opened), and a
** statement left stepping keeps them open, so every cursor of a statement
** -- subqueries, self-joins, nested statements of the connection started
** meanwhile -- reads one committed state, as SQLite's own read transaction
** in WAL mode gives the statements that overlap it.  A read-only table
** catches up with the writer once, when the snapshot opens.  The
** connection's own transaction is read instead while it has one (no other
** connection can commit meanwhile: transactions serialise); when it
** commits, the snapshot moves on to the new state (xCommit), so statements
** still reading see their connection's writes.  Explicit read transactions
** are invisible to a virtual table (no xBegin for reads): each statement
** of one gets its own snapshot.
**
** A PLAN_RANGE walk is a cursor in the ordered index of the snapshot's view
** (engine/iter.c): each row is the next key past the previous one, so keys
** come in strictly increasing (decreasing) order, and writes of this
** statement -- read through its transaction -- never make it skip or
** repeat a key.  Values are read in xColumn only when asked for, from the
** same view, so a walk that does not use `value` reads nothing from disk
** and a row's value is the one its key had in the snapshot.  A RANGE_FOLD
** scan is the engine's fold of the same view, in storage order
** (engine/fold.c); its values are read with their keys in xNext.
** PLAN_EQ and PLAN_IN probe each key in the same view: with its value when
** the statement uses it (PROBE_VALUE: one probe per key), else the lookup
** alone, xColumn reading a value it is asked for after all.
*/
#include "vtab.h"
SQLITE_EXTENSION_INIT3

#include <string.h>

/* The largest value buffer a table keeps for its next cursor. */
#define SPARE_BUF_MAX (1u << 20)

/* What a cursor walks: one member of its union u, set by xFilter from the
** plan (idxNum). */
enum {
  CURSOR_NONE,  /* before the first xFilter */
  CURSOR_RANGE, /* PLAN_RANGE: the ordered index, range after range */
  CURSOR_FOLD,  /* PLAN_RANGE|RANGE_FOLD: every key, in storage order */
  CURSOR_PROBE, /* PLAN_EQ, PLAN_IN: one keydir probe per key given */
  CURSOR_COUNT  /* PLAN_COUNT: rows counted, none read */
};

typedef struct bitcask_cursor {
  sqlite3_vtab_cursor base; /* base class: must be first */
  int kind;                 /* CURSOR_*: which member of u is in use */
  int eof;                  /* no current row */
  /* The current row. */
  const unsigned char *key; /* its key bytes (in the iterator, the fold or
                            ** the probe list) */
  size_t klen;
  bc_info info;             /* its keydir info */
  int has_value;            /* `value` is its value, read with the key (for
                            ** a probe: while sh->changes is still
                            ** u.probe.changes) */
  const void *value;        /* (in vbuf); else xColumn reads the value */
  bc_buf vbuf;              /* value read buffer, reused across rows */
  union {
    struct {                /* CURSOR_RANGE */
      bcx_ranges ranges;    /* the ranges to walk, ascending */
      int irange;           /* the range iter walks (counting down if desc) */
      int desc;             /* RANGE_DESC: in descending key order */
      bc_iter *iter;        /* the engine's ordered iterator in range irange */
      sqlite3_int64 limit;  /* rows still to return; < 0: no LIMIT */
    } range;
    struct {                /* CURSOR_FOLD */
      bc_fold *fold;        /* the engine's fold (bc_fold_open) */
      sqlite3_int64 limit;  /* rows still to return; < 0: no LIMIT */
      int skipping;         /* the rows of an OFFSET are being passed: no
                            ** value is read for them */
    } fold;
    struct {                /* CURSOR_PROBE */
      bcx_key *keys;        /* the keys to probe: &one, or sqlite3_malloc'd */
      bcx_key one;          /* PLAN_EQ's key */
      int n;                /* entries in keys */
      int i;                /* index of the current probe */
      int value;            /* read each row's value with its key (the
                            ** statement uses it: PROBE_VALUE) */
      unsigned long long changes; /* sh->changes before that read: a write
                            ** of this process since (a function of the
                            ** statement writing the table) makes xColumn
                            ** read the value again, as it would have */
    } probe;
    struct {                /* CURSOR_COUNT */
      sqlite3_int64 passed;    /* rows moved past (xNext) */
      sqlite3_int64 remaining; /* rows left, the current one included */
    } count;
  } u;
} bitcask_cursor;

/* Reads go through this connection's transaction when it has one (its own
** writes are visible to it, and no other connection can commit while it is
** open), else through the statement's snapshot, else to the committed
** store.  view_txn is the transaction to read through: this connection's,
** unless the statement's snapshot is of the read-only store that the
** writer's replaced since (registry.c): a statement still reading it goes
** on in its view. */
static bc_txn *view_txn(const bitcask_vtab *p) {
  return p->txn && (!p->snap || p->snap_store == p->sh->store) ? p->txn : NULL;
}

static bc_status kv_lookup(bitcask_vtab *p, const void *k, size_t n, bc_info *i) {
  bc_txn *t = view_txn(p);
  return t         ? bc_txn_lookup(t, k, n, i)
         : p->snap ? bc_snapshot_lookup(p->snap, k, n, i)
                   : bc_lookup(p->sh->store, k, n, i);
}

static bc_status kv_get(bitcask_vtab *p, const void *k, size_t n, bc_buf *b,
                        const void **v, bc_info *i) {
  bc_txn *t = view_txn(p);
  return t         ? bc_txn_get(t, k, n, b, v, i)
         : p->snap ? bc_snapshot_get(p->snap, k, n, b, v, i)
                   : bc_get(p->sh->store, k, n, b, v, i);
}


/* ---- cursor ------------------------------------------------------------ */

int bitcaskOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCursor) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  bitcask_cursor *c = sqlite3_malloc(sizeof *c);
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, sizeof *c);
  c->kind = CURSOR_NONE;
  c->eof = 1;
  c->vbuf = p->spare;
  memset(&p->spare, 0, sizeof p->spare);
  /* No cursor of the table is open: it reads nothing through an old store. */
  if (p->nopen == 0 && p->sh) bcx_shared_moved(p->sh, &p->gen);
  p->nopen++;
  *ppCursor = &c->base;
  return SQLITE_OK;
}

/* Free what the cursor's walk holds: back to CURSOR_NONE, at eof. */
static void cursor_reset(bitcask_cursor *c) {
  switch (c->kind) {
  case CURSOR_RANGE:
    bc_iter_close(c->u.range.iter);
    bcx_ranges_free(&c->u.range.ranges);
    break;
  case CURSOR_FOLD:
    bc_fold_close(c->u.fold.fold);
    break;
  case CURSOR_PROBE:
    for (int i = 0; i < c->u.probe.n; i++) bcx_key_clear(&c->u.probe.keys[i]);
    if (c->u.probe.keys != &c->u.probe.one) sqlite3_free(c->u.probe.keys);
    break;
  default:
    break;
  }
  memset(&c->u, 0, sizeof c->u);
  c->kind = CURSOR_NONE;
  c->has_value = 0;
  c->eof = 1;
}

int bitcaskClose(sqlite3_vtab_cursor *cur) {
  bitcask_cursor *c = (bitcask_cursor *)cur;
  bitcask_vtab *p = (bitcask_vtab *)cur->pVtab;
  cursor_reset(c);
  if (!p->spare.data && c->vbuf.cap <= SPARE_BUF_MAX) {
    p->spare = c->vbuf;
  } else {
    bc_buf_free(&c->vbuf);
  }
  sqlite3_free(c);
  if (--p->nopen == 0) {
    /* The statement halts: its writes stay (SQLite decides the rest). */
    bcx_stmt_mark_release(p);
    /* The last cursor of the statements that shared the snapshot. */
    bc_snapshot_close(p->snap);
    p->snap = NULL;
  }
  return SQLITE_OK;
}

/* The cursor's current row is key[0..klen) (c->info filled already). */
static void row_set(bitcask_cursor *c, const void *key, size_t klen) {
  c->key = key;
  c->klen = klen;
  c->eof = 0;
}

/* ---- CURSOR_PROBE: PLAN_EQ and PLAN_IN ---- */

/* Advance to the next probe key that is live, or to eof.  With
** u.probe.value the row's value is read with it (kv_get: one probe, one
** lock); a value that cannot be read leaves the row there when its key is,
** and xColumn reports the error if the statement asks for the value. */
static void probe_advance(bitcask_cursor *c) {
  bitcask_vtab *p = (bitcask_vtab *)c->base.pVtab;
  c->has_value = 0;
  for (; c->u.probe.i < c->u.probe.n; c->u.probe.i++) {
    bcx_key *k = &c->u.probe.keys[c->u.probe.i];
    c->u.probe.changes = p->sh->changes;
    bc_status st = c->u.probe.value ? kv_get(p, k->data, k->len, &c->vbuf, &c->value, &c->info)
                                    : kv_lookup(p, k->data, k->len, &c->info);
    if (st == BC_OK) c->has_value = c->u.probe.value;
    if (st == BC_OK || (st != BC_NOTFOUND && c->u.probe.value &&
                        kv_lookup(p, k->data, k->len, &c->info) == BC_OK)) {
      row_set(c, k->data, k->len);
      return;
    }
  }
  c->eof = 1;
}

/* Encode the key of `v` into *k, the next place of the cursor's probe list,
** and count it; NULL, and keys too long to exist, match nothing and are
** skipped. */
static int probe_push(bitcask_cursor *c, sqlite3_value *v, bcx_key *k) {
  int rc = bcx_key_encode(v, k);
  if (rc == SQLITE_MISMATCH || rc == SQLITE_TOOBIG) return SQLITE_OK;
  if (rc == SQLITE_OK) c->u.probe.n++;
  return rc;
}

/* Add the key of `v` to the cursor's probe list (grown as needed). */
static int probe_add(bitcask_cursor *c, sqlite3_value *v, int *pAlloc) {
  if (c->u.probe.n == *pAlloc) {
    int n = *pAlloc ? *pAlloc * 2 : 4;
    bcx_key *a = sqlite3_realloc64(c->u.probe.keys, (sqlite3_uint64)n * sizeof *a);
    if (!a) return SQLITE_NOMEM;
    /* The keys moved: short ones point into themselves. */
    for (int i = 0; i < c->u.probe.n; i++) bcx_key_rebase(&a[i]);
    c->u.probe.keys = a;
    *pAlloc = n;
  }
  return probe_push(c, v, &c->u.probe.keys[c->u.probe.n]);
}

/* Start a PLAN_EQ (arg: the key) or PLAN_IN (arg: the IN list, walked with
** sqlite3_vtab_in_first/next) at its first live key.  idxStr says whether
** the values are read with the keys (PROBE_VALUE). */
static int probe_start(bitcask_cursor *c, int idxNum, const char *idxStr,
                       sqlite3_value *arg) {
  int rc, alloc = 0;
  c->kind = CURSOR_PROBE;
  c->u.probe.value = idxStr && idxStr[strlen(idxStr) + 1] == PROBE_VALUE;
  if (idxNum == PLAN_EQ) {
    c->u.probe.keys = &c->u.probe.one; /* the list of one key, in the cursor */
    rc = probe_push(c, arg, &c->u.probe.one);
  } else {
    sqlite3_value *v;
    for (rc = sqlite3_vtab_in_first(arg, &v); rc == SQLITE_OK && v;
         rc = sqlite3_vtab_in_next(arg, &v)) {
      rc = probe_add(c, v, &alloc);
      if (rc != SQLITE_OK) break;
    }
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  if (rc != SQLITE_OK) return rc;
  c->u.probe.i = 0;
  probe_advance(c);
  return SQLITE_OK;
}

/* ---- CURSOR_RANGE and CURSOR_FOLD: PLAN_RANGE ---- */

/* Open the engine iterator over range c->u.range.irange. */
static int range_open(bitcask_cursor *c) {
  bitcask_vtab *p = (bitcask_vtab *)c->base.pVtab;
  const bcx_range *r = &c->u.range.ranges.r[c->u.range.irange];
  bc_range br = {r->lo, r->lo_len, r->lo_excl, r->hi, r->hi_len, r->hi_excl,
                 c->u.range.desc};
  bc_status st = p->snap ? bc_iter_open_snapshot(p->snap, &br, &c->u.range.iter)
                         : bc_iter_open_range(p->sh->store, &br, &c->u.range.iter);
  return st == BC_OK ? SQLITE_OK : bcx_engine_error(p, st);
}

/* CURSOR_RANGE's next row: the next live key of the current range, moving
** on through the ranges, in this connection's view (its transaction, if it
** has one now -- a walk may outlive the transaction it began in). */
static int range_next(bitcask_cursor *c) {
  bitcask_vtab *p = (bitcask_vtab *)c->base.pVtab;
  c->eof = 1;
  if (c->u.range.limit == 0) return SQLITE_OK;
  while (c->u.range.iter) {
    const void *key;
    size_t klen;
    bc_status st = bc_iter_next_view(c->u.range.iter, view_txn(p), &key, &klen, &c->info);
    if (st == BC_OK) {
      row_set(c, key, klen);
      if (c->u.range.limit > 0) c->u.range.limit--;
      return SQLITE_OK;
    }
    if (st != BC_DONE) return bcx_engine_error(p, st);
    bc_iter_close(c->u.range.iter);
    c->u.range.iter = NULL;
    int desc = c->u.range.desc;
    if (desc ? c->u.range.irange == 0 : c->u.range.irange + 1 >= c->u.range.ranges.n) break;
    c->u.range.irange += desc ? -1 : 1;
    int rc = range_open(c);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

/* CURSOR_FOLD's next row, in this connection's view: the value comes with
** the key (a RANGE_FOLD plan uses it), one trip into the engine per row. */
static int fold_next(bitcask_cursor *c) {
  bitcask_vtab *p = (bitcask_vtab *)c->base.pVtab;
  c->eof = 1;
  c->has_value = 0;
  if (c->u.fold.limit == 0) return SQLITE_OK;
  const void *key;
  size_t klen;
  bc_status st = bc_fold_next(c->u.fold.fold, view_txn(p), &key, &klen, &c->info,
                              c->u.fold.skipping ? NULL : &c->vbuf, &c->value);
  if (st == BC_DONE) return SQLITE_OK;
  if (st != BC_OK) return bcx_engine_error(p, st);
  row_set(c, key, klen);
  c->has_value = !c->u.fold.skipping;
  if (c->u.fold.limit > 0) c->u.fold.limit--;
  return SQLITE_OK;
}

/* Pass `offset` rows (SQLite does not: the OFFSET is omitted), then go to
** the first row; `limit` rows are returned from there (< 0: all). */
static int walk_first(bitcask_cursor *c, sqlite3_int64 offset, sqlite3_int64 limit) {
  int fold = c->kind == CURSOR_FOLD;
  int (*next)(bitcask_cursor *) = fold ? fold_next : range_next;
  sqlite3_int64 *left = fold ? &c->u.fold.limit : &c->u.range.limit;
  int rc = SQLITE_OK;
  *left = -1;
  if (fold) c->u.fold.skipping = 1; /* no value is read for them */
  for (sqlite3_int64 i = 0; i < offset && rc == SQLITE_OK; i++) {
    rc = next(c);
    if (c->eof) break;
  }
  if (fold) c->u.fold.skipping = 0;
  if (c->eof && offset > 0) return rc;
  *left = limit < 0 ? -1 : limit;
  if (rc == SQLITE_OK) rc = next(c);
  return rc;
}

/* Keep the tighter of the bound *cur (if *have) and k, for a lower bound
** (is_lo) or an upper one; k is taken (moved into *cur or cleared). */
static void bound_keep(int is_lo, bcx_key *k, int excl, bcx_key *cur, int *have, int *ex) {
  int tighter = 1;
  if (*have) {
    int c = bc_key_cmp(k->data, k->len, cur->data, cur->len);
    tighter = is_lo ? (c > 0 || (c == 0 && excl)) : (c < 0 || (c == 0 && excl));
  }
  if (tighter) {
    if (*have) bcx_key_clear(cur);
    *cur = *k;
    bcx_key_rebase(cur);
    *have = 1;
    *ex = excl;
  } else {
    bcx_key_clear(k);
  }
}

/* What a PLAN_RANGE's argv asks for (see bitcaskBestIndex). */
typedef struct range_args {
  bcx_key lo, hi;            /* the tightest bound of each side, when have_* */
  int have_lo, have_hi, lo_excl, hi_excl;
  int pat_op;                /* BCX_PATTERN_*; pat its pattern */
  const unsigned char *pat;
  sqlite3_int64 limit;       /* < 0: no LIMIT */
  sqlite3_int64 offset;
  int none;                  /* a NULL bound or pattern: no row can match */
  /* UTF-16: the TEXT bounds of each side, as UTF-8 (range_args_utf16). */
  sqlite3_value *tlo[MAX_BOUNDS], *thi[MAX_BOUNDS];
  int ntlo, nthi;
} range_args;

static void range_args_clear(range_args *ra) {
  if (ra->have_lo) bcx_key_clear(&ra->lo);
  if (ra->have_hi) bcx_key_clear(&ra->hi);
}

/* A bound argument (op ARG_GT .. ARG_LE) into *ra. */
static int range_args_bound(bitcask_vtab *p, int op, sqlite3_value *v, range_args *ra) {
  int is_lo = op == ARG_GT || op == ARG_GE, excl = op == ARG_GT || op == ARG_LT;
  if (p->utf16 && sqlite3_value_type(v) == SQLITE_TEXT) {
    /* Not a range of UTF-8 keys: widened by range_args_utf16 (xBestIndex
    ** left the bound to SQLite). */
    if (is_lo && ra->ntlo < MAX_BOUNDS) ra->tlo[ra->ntlo++] = v;
    if (!is_lo && ra->nthi < MAX_BOUNDS) ra->thi[ra->nthi++] = v;
    return SQLITE_OK;
  }
  bcx_key k;
  int rc = bcx_key_encode_bound(v, &k);
  if (rc == SQLITE_MISMATCH) { /* NULL: the comparison is never true */
    ra->none = 1;
    return SQLITE_OK;
  }
  if (rc != SQLITE_OK) return rc;
  /* Keep the tightest bound of each side. */
  if (is_lo) bound_keep(1, &k, excl, &ra->lo, &ra->have_lo, &ra->lo_excl);
  else bound_keep(0, &k, excl, &ra->hi, &ra->have_hi, &ra->hi_excl);
  return SQLITE_OK;
}

/* Read a PLAN_RANGE's argv, each argument's ARG_* taken from idxNum. */
static int range_args_read(bitcask_vtab *p, int idxNum, int argc, sqlite3_value **argv,
                           range_args *ra) {
  int rc = SQLITE_OK;
  memset(ra, 0, sizeof *ra);
  ra->pat_op = BCX_PATTERN_NONE;
  ra->limit = -1;
  for (int a = 0; a < argc && a < MAX_ARGS && rc == SQLITE_OK; a++) {
    int op = (idxNum >> (ARG_SHIFT + ARG_BITS * a)) & ((1 << ARG_BITS) - 1);
    sqlite3_value *v = argv[a];
    switch (op) {
    case ARG_GT: case ARG_GE: case ARG_LT: case ARG_LE:
      rc = range_args_bound(p, op, v, ra);
      break;
    case ARG_LIKE: case ARG_GLOB:
      ra->pat = sqlite3_value_text(v);
      if (!ra->pat) {
        if (sqlite3_value_type(v) == SQLITE_NULL) ra->none = 1;
        else rc = SQLITE_NOMEM;
        break;
      }
      ra->pat_op = op == ARG_LIKE ? BCX_PATTERN_LIKE : BCX_PATTERN_GLOB;
      break;
    case ARG_LIMIT:
      ra->limit = sqlite3_value_int64(v);
      break;
    case ARG_OFFSET:
      ra->offset = sqlite3_value_int64(v);
      break;
    default:
      break;
    }
  }
  return rc;
}

/* UTF-16 TEXT bounds.  SQLite orders TEXT by its UTF-16 bytes there, so
** the strings above (below) a TEXT bound are no range of UTF-8 keys; a
** lower one becomes "every TEXT key and above", an upper one "anything"
** (BLOBs sort above every TEXT, and leaving them in keeps the pattern's
** own BLOB range whole).  A lower and an upper TEXT bound together confine
** the strings to those starting with their common ASCII prefix, in any
** byte order: then the walk is the keys starting with it (bounds SQLite's
** LIKE optimization derives beside a pattern are not trusted for that:
** they do not hold for BLOB keys).  SQLite applies the bounds itself. */
static int range_args_utf16(range_args *ra) {
  size_t best = 0;
  const unsigned char *bp = NULL;
  for (int i = 0; i < ra->ntlo && ra->pat_op == BCX_PATTERN_NONE; i++)
    for (int j = 0; j < ra->nthi; j++) {
      const unsigned char *a = sqlite3_value_text(ra->tlo[i]), *b = sqlite3_value_text(ra->thi[j]);
      if (!a || !b) return SQLITE_NOMEM;
      size_t n = bcx_utf16_prefix(a, (size_t)sqlite3_value_bytes(ra->tlo[i]), b,
                                  (size_t)sqlite3_value_bytes(ra->thi[j]));
      if (n > best) best = n, bp = a;
    }
  if (!ra->ntlo) return SQLITE_OK;
  bcx_key klo, khi;
  int rc = bcx_key_text_prefix(bp ? bp : (const unsigned char *)"", best, &klo, &khi);
  if (rc != SQLITE_OK) return rc;
  bound_keep(1, &klo, 0, &ra->lo, &ra->have_lo, &ra->lo_excl);
  if (best) bound_keep(0, &khi, 1, &ra->hi, &ra->have_hi, &ra->hi_excl);
  else bcx_key_clear(&khi);
  return SQLITE_OK;
}

/* Start a PLAN_RANGE: its ranges from argv, the ordered walk of them (or,
** RANGE_FOLD, the fold of every key), then the first row past the
** OFFSET. */
static int range_start(bitcask_cursor *c, int idxNum, int argc, sqlite3_value **argv) {
  bitcask_vtab *p = (bitcask_vtab *)c->base.pVtab;
  range_args ra;
  bcx_ranges ranges = {0};
  bcx_text_order_check(p);
  int rc = range_args_read(p, idxNum, argc, argv, &ra);
  if (rc == SQLITE_OK && !ra.none && (ra.ntlo || ra.nthi)) rc = range_args_utf16(&ra);
  if (rc == SQLITE_OK && !ra.none)
    rc = bcx_ranges_build(&ranges, ra.have_lo ? &ra.lo : NULL, ra.lo_excl,
                          ra.have_hi ? &ra.hi : NULL, ra.hi_excl, ra.pat_op, ra.pat,
                          p->utf16);
  range_args_clear(&ra);
  if (rc != SQLITE_OK) return rc;
  if (ra.none || ranges.n == 0) { /* eof */
    bcx_ranges_free(&ranges);
    return SQLITE_OK;
  }
  if (idxNum & RANGE_FOLD) {
    /* No bound: the one range is the whole key space. */
    bcx_ranges_free(&ranges);
    c->kind = CURSOR_FOLD;
    bc_txn *t = view_txn(p);
    bc_status st = p->snap && !t ? bc_fold_open_snapshot(p->snap, &c->u.fold.fold)
                                 : bc_fold_open(p->sh->store, t, &c->u.fold.fold);
    if (st != BC_OK) return bcx_engine_error(p, st);
  } else {
    c->kind = CURSOR_RANGE;
    c->u.range.ranges = ranges;
    c->u.range.desc = (idxNum & RANGE_DESC) != 0;
    c->u.range.irange = c->u.range.desc ? ranges.n - 1 : 0;
    rc = range_open(c);
    if (rc != SQLITE_OK) return rc;
  }
  return walk_first(c, ra.offset, ra.limit);
}

/* ---- CURSOR_COUNT: PLAN_COUNT ---- */

/* Start a PLAN_COUNT: the live key count of the view, no key read. */
static void count_start(bitcask_cursor *c) {
  bitcask_vtab *p = (bitcask_vtab *)c->base.pVtab;
  bc_txn *t = view_txn(p);
  c->kind = CURSOR_COUNT;
  c->u.count.passed = 0;
  c->u.count.remaining = (sqlite3_int64)(t || !p->snap ? bc_count_view(p->sh->store, t)
                                                       : bc_snapshot_count(p->snap));
  c->eof = c->u.count.remaining <= 0;
}

/* A PLAN_COUNT cursor asked for a column after all: SQLite reports colUsed
** 0 for `DELETE FROM kv` too, which then reads each row's key.  Become a
** walk of every key, positioned at the same row. */
static int count_to_range(bitcask_cursor *c) {
  sqlite3_int64 skip = c->u.count.passed;
  bcx_range *all = sqlite3_malloc(sizeof *all);
  if (!all) return SQLITE_NOMEM;
  memset(all, 0, sizeof *all);
  memset(&c->u, 0, sizeof c->u);
  c->kind = CURSOR_RANGE;
  c->u.range.ranges.r = all;
  c->u.range.ranges.n = 1;
  c->u.range.limit = -1;
  int rc = range_open(c);
  for (sqlite3_int64 k = 0; rc == SQLITE_OK && k <= skip; k++) rc = range_next(c);
  return rc;
}

/* ---- the cursor methods ---- */

int bitcaskFilter(sqlite3_vtab_cursor *cur, int idxNum,
                         const char *idxStr, int argc, sqlite3_value **argv) {
  bitcask_cursor *c = (bitcask_cursor *)cur;
  bitcask_vtab *p = (bitcask_vtab *)cur->pVtab;
  bcx_rows_read(p);
  cursor_reset(c);
  int rc = bcx_vtab_store(p);
  if (rc != SQLITE_OK) return rc;
  if (!p->snap) {
    /* The first cursor of a statement to read: the state every cursor of
    ** the table reads until the last one closes (a read-only table first
    ** catches up with what the writing process committed). */
    p->snap_store = p->sh->store;
    bc_status st = bc_snapshot_open(p->snap_store, &p->snap);
    if (st != BC_OK) return bcx_engine_error(p, st);
  }
  switch (idxNum & PLAN_MASK) {
  case PLAN_RANGE:
    return range_start(c, idxNum, argc, argv);
  case PLAN_COUNT:
    count_start(c);
    return SQLITE_OK;
  default:
    return probe_start(c, idxNum, idxStr, argv[0]);
  }
}

int bitcaskNext(sqlite3_vtab_cursor *cur) {
  bitcask_cursor *c = (bitcask_cursor *)cur;
  bcx_rows_read((bitcask_vtab *)cur->pVtab);
  switch (c->kind) {
  case CURSOR_RANGE:
    return range_next(c);
  case CURSOR_FOLD:
    return fold_next(c);
  case CURSOR_PROBE:
    c->u.probe.i++;
    probe_advance(c);
    return SQLITE_OK;
  case CURSOR_COUNT:
    c->u.count.passed++;
    c->eof = c->u.count.remaining-- <= 1;
    return SQLITE_OK;
  default:
    c->eof = 1;
    return SQLITE_OK;
  }
}

int bitcaskEof(sqlite3_vtab_cursor *cur) {
  return ((bitcask_cursor *)cur)->eof;
}

/* The current row's value could not be read (xColumn): a key deleted since
** the walk found it reads as NULL; an error fails the statement. */
static int column_read_error(bitcask_vtab *p, sqlite3_context *ctx, bc_status st) {
  if (st == BC_NOTFOUND) {
    sqlite3_result_null(ctx);
    return SQLITE_OK;
  }
  char em[BCX_ERRMSG_MAX];
  char *msg = sqlite3_mprintf("bitcask table '%s': %s", p->zName,
                              bc_errmsg_copy(p->sh->store, em, sizeof em));
  sqlite3_result_error(ctx, msg ? msg : "out of memory", -1);
  sqlite3_free(msg);
  sqlite3_result_error_code(ctx, bcx_rc(st));
  return bcx_rc(st);
}

int bitcaskColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx,
                         int i) {
  bitcask_cursor *c = (bitcask_cursor *)cur;
  bitcask_vtab *p = (bitcask_vtab *)cur->pVtab;
  int rc;
  if (c->kind == CURSOR_COUNT) {
    rc = count_to_range(c);
    if (rc != SQLITE_OK) return rc;
    if (c->eof) {
      /* The rows counted are gone meanwhile. */
      sqlite3_result_null(ctx);
      return SQLITE_OK;
    }
  }
  if (i == 0) {
    rc = bcx_key_result(ctx, c->key, c->klen, c->info.meta);
  } else if (sqlite3_vtab_nochange(ctx)) {
    return SQLITE_OK; /* an UPDATE that does not change `value` need not read it */
  } else if (c->has_value &&
             (c->kind != CURSOR_PROBE || c->u.probe.changes == p->sh->changes)) {
    rc = bcx_value_result(ctx, c->value, c->info.value_size, c->info.meta);
  } else {
    /* Read now, in the cursor's view, as the key was found. */
    const void *val;
    bc_info info;
    bc_status st = kv_get(p, c->key, c->klen, &c->vbuf, &val, &info);
    if (st != BC_OK) return column_read_error(p, ctx, st);
    rc = bcx_value_result(ctx, val, info.value_size, info.meta);
  }
  if (rc == SQLITE_CORRUPT) {
    sqlite3_result_error(ctx, "bitcask: a record has a malformed key or value", -1);
    sqlite3_result_error_code(ctx, SQLITE_CORRUPT);
  }
  return rc;
}

int bitcaskRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *pRowid) {
  /* A WITHOUT ROWID virtual table: SQLite never asks. */
  (void)cur;
  *pRowid = 0;
  return SQLITE_ERROR;
}

