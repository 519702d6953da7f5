/*
** test_snapshot.c -- read snapshots (bitcask.h "snapshots"): a bc_snapshot
** is the store as it was at one moment, one committed state, whatever is
** committed, merged or (read-only store) refreshed while it is open.
**
** Written from the contract in bitcask.h.  Every test changes the store
** after the snapshot opened and checks the snapshot against a copy of the
** model taken at that moment, so each one fails if snapshot reads went to
** the live store:
**   - point reads (bc_snapshot_get, _lookup, _count) across standalone
**     writes, deletes, inserts and transaction commits;
**   - a transaction's writes in a snapshot whole or not at all;
**   - ordered iterators (ranges, ascending and descending) and unordered
**     scans over the snapshot, the store changed between every two steps;
**   - merges while a snapshot is open: the old versions stay readable from
**     files already unlinked (mmap, and pread through a custom bc_io), held
**     only until the snapshot closes;
**   - several snapshots at different epochs, closed in various orders, and
**     the bc_stats figures they promise;
**   - bc_snapshot_refresh, also under an iterator;
**   - a read-only follower: catch-up at open, stability across refreshes
**     and the writer's merges;
**   - threads: transfers between accounts with merges, readers checking
**     the invariant in their snapshots;
**   - a failed bc_sync (its standalone writes undone) under an open
**     snapshot.
*/
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

/* Values: tu_fill bytes, length in [VLO, VLO + VSPAN). */
#define VLO 8
#define VSPAN 100

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}


static bc_status put_ver(bc_store *s, tu_model *m, size_t i, unsigned ver) {
  return tu_put_ver(s, m, i, ver, VLO, VSPAN);
}

/* The same inside transaction t; m is the model of t's outcome. */
static void txn_put_ver(bc_txn *t, tu_model *m, size_t i, unsigned ver) {
  char k[32];
  unsigned char v[VLO + VSPAN];
  size_t kl = tu_key(k, i), vl = tu_vlen(i, ver, VLO, VSPAN);
  tu_fill(v, vl, i, ver);
  uint8_t meta = (uint8_t)(i + ver);
  TU_OK(bc_txn_put(t, k, kl, meta, v, vl));
  tu_model_set(m, i, v, vl, meta);
}

static void txn_del(bc_txn *t, tu_model *m, size_t i) {
  char k[32];
  size_t kl = tu_key(k, i);
  TU_OK(bc_txn_delete(t, k, kl));
  tu_model_del(m, i);
}

/* Assert that sn's view is exactly model m, through bc_snapshot_get,
** bc_snapshot_lookup and bc_snapshot_count.  seq (may be NULL): the seq
** each present key had when the snapshot opened. */
static void snap_check(bc_snapshot *sn, const tu_model *m, const uint64_t *seq,
                       const char *where) {
  bc_buf b = {0};
  for (size_t i = 0; i < m->n; i++) {
    char k[32];
    size_t kl = tu_key(k, i);
    const void *v = NULL;
    bc_info info, li;
    memset(&info, 0, sizeof info);
    memset(&li, 0, sizeof li);
    bc_status st = bc_snapshot_get(sn, k, kl, &b, &v, &info);
    bc_status lst = bc_snapshot_lookup(sn, k, kl, &li);
    if (m->v[i]) {
      if (st != BC_OK || lst != BC_OK)
        fail_msg("%s: key %zu: bc_snapshot_get %s, lookup %s, want BC_OK (present "
                 "at the snapshot)",
                 where, i, bc_status_name(st), bc_status_name(lst));
      if (info.value_size != m->len[i] || memcmp(v, m->v[i], m->len[i]) != 0)
        fail_msg("%s: key %zu: a value of %u bytes, not the view's (%zu bytes)",
                 where, i, info.value_size, m->len[i]);
      if (info.meta != m->meta[i] || li.meta != m->meta[i] ||
          li.value_size != m->len[i])
        fail_msg("%s: key %zu: meta %u / lookup meta %u size %u, want meta %u size %zu",
                 where, i, info.meta, li.meta, li.value_size, m->meta[i], m->len[i]);
      if (seq && (info.seq != seq[i] || li.seq != seq[i]))
        fail_msg("%s: key %zu: seq %llu / lookup seq %llu, want the snapshot's %llu",
                 where, i, (unsigned long long)info.seq, (unsigned long long)li.seq,
                 (unsigned long long)seq[i]);
    } else if (st != BC_NOTFOUND || lst != BC_NOTFOUND) {
      fail_msg("%s: key %zu: bc_snapshot_get %s, lookup %s, want BC_NOTFOUND (absent "
               "at the snapshot)",
               where, i, bc_status_name(st), bc_status_name(lst));
    }
  }
  bc_buf_free(&b);
  if (bc_snapshot_count(sn) != tu_model_count(m))
    fail_msg("%s: bc_snapshot_count %llu, want %zu", where,
             (unsigned long long)bc_snapshot_count(sn), tu_model_count(m));
}

/* Whether sn reads exactly m (bc_snapshot_get of every key, the count),
** without failing: the first key that differs, N for the count, -1. */
static long snap_differs(bc_snapshot *sn, const tu_model *m) {
  bc_buf b = {0};
  long bad = -1;
  for (size_t i = 0; i < m->n && bad < 0; i++) {
    char k[32];
    size_t kl = tu_key(k, i);
    const void *v;
    bc_info info;
    bc_status st = bc_snapshot_get(sn, k, kl, &b, &v, &info);
    if (m->v[i] ? st != BC_OK || info.value_size != m->len[i] ||
                      memcmp(v, m->v[i], m->len[i]) != 0
                : st != BC_NOTFOUND)
      bad = (long)i;
  }
  bc_buf_free(&b);
  if (bad < 0 && bc_snapshot_count(sn) != tu_model_count(m)) bad = (long)m->n;
  return bad;
}

/* Every key of m once, in order, through an iterator on sn; values through
** bc_snapshot_get. */
static void snap_iter_check(bc_snapshot *sn, const tu_model *m, const char *where) {
  bc_iter *it;
  TU_OK(bc_iter_open_snapshot(sn, NULL, &it));
  bc_buf b = {0};
  const void *key, *v;
  size_t klen, n = 0, want = 0;
  bc_info info;
  bc_status st;
  while ((st = bc_iter_next(it, &key, &klen, &info)) == BC_OK) {
    size_t i = tu_key_num(key, klen);
    while (want < m->n && !m->v[want]) want++;
    if (i != want) fail_msg("%s: iterator gave key %zu, want key %zu", where, i, want);
    TU_OK(bc_snapshot_get(sn, key, klen, &b, &v, &info));
    assert_int_equal(info.value_size, m->len[i]);
    assert_memory_equal(v, m->v[i], m->len[i]);
    want++;
    n++;
  }
  assert_int_equal(st, BC_DONE);
  if (n != tu_model_count(m))
    fail_msg("%s: iterator gave %zu keys, want %zu", where, n, tu_model_count(m));
  bc_iter_close(it);
  bc_buf_free(&b);
}

/* A scan of sn (bc_fold_open_snapshot, values read) against m: every key
** of m once with its value, no other. */
static void snap_scan_check(bc_snapshot *sn, const tu_model *m) {
  bc_fold *sc;
  TU_OK(bc_fold_open_snapshot(sn, &sc));
  bc_buf b = {0};
  const void *key, *v;
  size_t klen, rows = 0;
  bc_info info;
  bc_status st;
  while ((st = bc_fold_next(sc, NULL, &key, &klen, &info, &b, &v)) == BC_OK) {
    size_t i = tu_key_num(key, klen);
    assert_non_null(m->v[i]);
    assert_int_equal(info.value_size, m->len[i]);
    assert_memory_equal(v, m->v[i], m->len[i]);
    rows++;
  }
  assert_int_equal(st, BC_DONE);
  assert_int_equal(rows, tu_model_count(m));
  bc_fold_close(sc);
  bc_buf_free(&b);
}

/* The seq of every live key of s now (0: absent). Caller frees. */
static uint64_t *seqs_now(bc_store *s, size_t n) {
  uint64_t *q = calloc(n, sizeof *q);
  assert_non_null(q);
  for (size_t i = 0; i < n; i++) {
    char k[32];
    size_t kl = tu_key(k, i);
    bc_info info;
    if (bc_lookup(s, k, kl, &info) == BC_OK) q[i] = info.seq;
  }
  return q;
}

/* Keys whose presence or value differ between two models. */
static size_t model_diffs(const tu_model *a, const tu_model *b, size_t lo, size_t hi) {
  size_t d = 0;
  for (size_t i = lo; i < hi && i < a->n; i++) {
    if (!a->v[i] != !b->v[i])
      d++;
    else if (a->v[i] && (a->len[i] != b->len[i] || memcmp(a->v[i], b->v[i], a->len[i]) != 0))
      d++;
  }
  return d;
}

/* ------------------------------------------------------------------ 1 */

/* Point reads: what the store had at the open, whatever standalone writes
** and transactions commit afterwards; a new open sees the new state. */
static void test_point_reads(void **state) {
  tu_fix *fx = *state;
  enum { N = 32 };
  bc_store *s = tu_open(fx->base, 0, BC_SYNC_OFF, NULL);
  tu_model m, snap;
  tu_model_init(&m, N);
  for (size_t i = 0; i < 10; i++)
    if (i != 3) TU_OK(put_ver(s, &m, i, 0));
  TU_OK(bc_sync(s));

  /* Only an insert after the open: the snapshot has no other change. */
  bc_snapshot *sn;
  TU_OK(bc_snapshot_open(s, &sn));
  tu_model_copy(&snap, &m);
  uint64_t *seq = seqs_now(s, N);
  TU_OK(put_ver(s, &m, 20, 1));
  TU_OK(bc_sync(s));
  tu_model_check(s, &m, "store after an insert");
  snap_check(sn, &snap, seq, "snapshot after an insert");
  snap_iter_check(sn, &snap, "snapshot iterator after an insert");
  bc_snapshot_close(sn);
  tu_model_free(&snap);
  free(seq);

  /* Standalone update, delete, insert. */
  TU_OK(bc_snapshot_open(s, &sn));
  tu_model_copy(&snap, &m);
  seq = seqs_now(s, N);
  assert_non_null(snap.v[1]);
  assert_non_null(snap.v[2]);
  assert_null(snap.v[3]);
  TU_OK(put_ver(s, &m, 1, 2)); /* k1: a new value */
  TU_OK(tu_del(s, &m, 2));     /* k2: deleted */
  TU_OK(put_ver(s, &m, 3, 2)); /* k3: new */
  TU_OK(bc_sync(s));
  tu_model_check(s, &m, "store after standalone writes");
  assert_int_equal(bc_lookup(s, "key:000002", 10, NULL), BC_NOTFOUND);
  snap_check(sn, &snap, seq, "snapshot after standalone writes");

  /* A transaction: k1 again, a delete, an insert, a put of a new key. */
  bc_txn *t;
  TU_OK(bc_txn_begin(s, &t));
  tu_model pend;
  tu_model_copy(&pend, &m);
  txn_put_ver(t, &pend, 1, 3);
  txn_del(t, &pend, 4);
  txn_put_ver(t, &pend, 11, 3);
  {
    char k[32];
    unsigned char v[VLO + VSPAN];
    size_t kl = tu_key(k, 12), vl = tu_vlen(12, 3, VLO, VSPAN);
    tu_fill(v, vl, 12, 3);
    TU_OK(bc_txn_insert(t, k, kl, 9, v, vl));
    tu_model_set(&pend, 12, v, vl, 9);
  }
  /* Uncommitted: nobody sees it; the snapshot least of all. */
  snap_check(sn, &snap, seq, "snapshot with a transaction open");
  TU_OK(bc_txn_commit(t));
  tu_model_free(&m);
  m = pend;
  tu_model_check(s, &m, "store after the transaction");
  snap_check(sn, &snap, seq, "snapshot after the transaction");
  snap_iter_check(sn, &snap, "snapshot iterator after the transaction");
  assert_int_equal(bc_snapshot_count(sn), 10); /* keys 0-9 but 3, and 20 */
  assert_int_equal(bc_count(s), tu_model_count(&m));
  assert_true(bc_count(s) != bc_snapshot_count(sn));
  bc_snapshot_close(sn);
  free(seq);

  /* A new snapshot: the new state. */
  TU_OK(bc_snapshot_open(s, &sn));
  snap_check(sn, &m, NULL, "a snapshot opened after");
  snap_iter_check(sn, &m, "its iterator");
  bc_snapshot_close(sn);
  TU_OK(bc_close(s));
  tu_model_free(&m);
  tu_model_free(&snap);
}

/* ------------------------------------------------------------------ 2 */

static void get_str(bc_snapshot *sn, const char *k, char *out, size_t cap) {
  bc_buf b = {0};
  const void *v;
  bc_info i;
  bc_status st = bc_snapshot_get(sn, k, strlen(k), &b, &v, &i);
  if (st == BC_NOTFOUND) {
    out[0] = 0;
  } else {
    if (st != BC_OK) fail_msg("bc_snapshot_get(%s): %s", k, bc_status_name(st));
    assert_true(i.value_size < cap);
    memcpy(out, v, i.value_size);
    out[i.value_size] = 0;
  }
  bc_buf_free(&b);
}

static void put_str(bc_txn *t, const char *k, const char *v) {
  TU_OK(bc_txn_put(t, k, strlen(k), 0, v, strlen(v)));
}

/* A transaction committed between two reads of a snapshot: neither read
** sees any of it; a snapshot opened after sees all of it. */
static void test_txn_atomic(void **state) {
  tu_fix *fx = *state;
  bc_store *s = tu_open(fx->base, 0, BC_SYNC_OFF, NULL);
  TU_OK(bc_put(s, "a", 1, 0, "1", 1));
  TU_OK(bc_put(s, "b", 1, 0, "1", 1));
  TU_OK(bc_sync(s));
  char a[16], b[16];

  bc_snapshot *s1;
  TU_OK(bc_snapshot_open(s, &s1));
  get_str(s1, "a", a, sizeof a);
  bc_txn *t;
  TU_OK(bc_txn_begin(s, &t));
  put_str(t, "a", "2");
  put_str(t, "b", "2");
  TU_OK(bc_txn_commit(t));
  get_str(s1, "b", b, sizeof b);
  assert_string_equal(a, "1");
  assert_string_equal(b, "1");
  get_str(s1, "a", a, sizeof a);
  assert_string_equal(a, "1");

  bc_snapshot *s2;
  TU_OK(bc_snapshot_open(s, &s2));
  get_str(s2, "a", a, sizeof a);
  get_str(s2, "b", b, sizeof b);
  assert_string_equal(a, "2");
  assert_string_equal(b, "2");

  /* A transaction begun before a snapshot opens and committed while it is
  ** open is not in it; nor is its delete. */
  TU_OK(bc_txn_begin(s, &t));
  put_str(t, "a", "3");
  TU_OK(bc_txn_delete(t, "b", 1));
  put_str(t, "c", "3");
  bc_snapshot *s3;
  TU_OK(bc_snapshot_open(s, &s3));
  TU_OK(bc_txn_commit(t));
  get_str(s3, "a", a, sizeof a);
  assert_string_equal(a, "2");
  get_str(s3, "b", b, sizeof b);
  assert_string_equal(b, "2");
  get_str(s3, "c", b, sizeof b);
  assert_string_equal(b, "");
  assert_int_equal(bc_snapshot_count(s3), 2);
  /* Its iterator: a and b, no c. */
  bc_iter *it;
  TU_OK(bc_iter_open_snapshot(s3, NULL, &it));
  const void *key;
  size_t klen;
  char got[8] = "";
  size_t n = 0;
  while (bc_iter_next(it, &key, &klen, NULL) == BC_OK && n < 7) got[n++] = *(const char *)key;
  bc_iter_close(it);
  assert_string_equal(got, "ab");

  bc_snapshot *s4;
  TU_OK(bc_snapshot_open(s, &s4));
  get_str(s4, "a", a, sizeof a);
  assert_string_equal(a, "3");
  get_str(s4, "b", b, sizeof b);
  assert_string_equal(b, "");
  get_str(s4, "c", b, sizeof b);
  assert_string_equal(b, "3");
  assert_int_equal(bc_snapshot_count(s4), 2);
  /* The older ones are unchanged. */
  get_str(s1, "a", a, sizeof a);
  get_str(s1, "b", b, sizeof b);
  assert_string_equal(a, "1");
  assert_string_equal(b, "1");
  get_str(s2, "b", b, sizeof b);
  assert_string_equal(b, "2");
  bc_snapshot_close(s1);
  bc_snapshot_close(s2);
  bc_snapshot_close(s3);
  bc_snapshot_close(s4);
  TU_OK(bc_close(s));
}

/* ------------------------------------------------------------------ 3 */

/* A random key strictly ahead of the cursor at key c (desc: below it;
** started: c is meaningful), inside [lo, hi], present (want 1) or absent
** (want 0) in m.  SIZE_MAX if none found. */
static size_t pick_ahead(const tu_model *m, size_t lo, size_t hi, int desc, int started,
                         size_t c, int want) {
  size_t from = lo, to = hi; /* [from, to) */
  if (started) {
    if (desc)
      to = c < to ? c : to;
    else
      from = c + 1 > from ? c + 1 : from;
  }
  if (from >= to) return SIZE_MAX;
  size_t span = to - from, start = (size_t)(rnd() % span);
  for (size_t j = 0; j < span; j++) {
    size_t i = from + (start + j) % span;
    if ((m->v[i] != NULL) == want) return i;
  }
  return SIZE_MAX;
}

typedef struct rcase {
  long lo, hi; /* key numbers, -1: no bound */
  int lo_excl, hi_excl, desc;
} rcase;

static void test_iter_ordered(void **state) {
  tu_fix *fx = *state;
  enum { N = 600 };
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  tu_model m;
  tu_model_init(&m, N);
  for (size_t j = 0; j < N; j++) {
    size_t i = (j * 7919) % N;
    if (rnd() % 3) TU_OK(put_ver(s, &m, i, 0));
  }
  const rcase cases[] = {
      {-1, -1, 0, 0, 0},   {-1, -1, 0, 0, 1},  {100, 400, 0, 1, 0}, {100, 400, 1, 0, 1},
      {250, -1, 0, 0, 1},  {-1, 300, 0, 0, 0}, {250, -1, 1, 0, 0},  {-1, 300, 0, 1, 1},
  };
  unsigned ver = 1;
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    const rcase *rc = &cases[c];
    char lo_k[32], hi_k[32];
    bc_range r = {0};
    if (rc->lo >= 0) {
      r.lo = lo_k;
      r.lo_len = tu_key(lo_k, (size_t)rc->lo);
      r.lo_excl = rc->lo_excl;
    }
    if (rc->hi >= 0) {
      r.hi = hi_k;
      r.hi_len = tu_key(hi_k, (size_t)rc->hi);
      r.hi_excl = rc->hi_excl;
    }
    r.desc = rc->desc;
    /* The key numbers in range: [klo, khi). */
    size_t klo = rc->lo < 0 ? 0 : (size_t)rc->lo + (size_t)rc->lo_excl;
    size_t khi = rc->hi < 0 ? N : (size_t)rc->hi + 1 - (size_t)rc->hi_excl;

    bc_snapshot *sn;
    TU_OK(bc_snapshot_open(s, &sn));
    tu_model snap;
    tu_model_copy(&snap, &m);
    bc_iter *it;
    TU_OK(bc_iter_open_snapshot(sn, &r, &it));
    unsigned char *seen = calloc(N, 1);
    assert_non_null(seen);
    bc_buf b = {0};
    const void *key, *v;
    size_t klen, prev = 0, rows = 0, steps = 0;
    bc_info info;
    bc_status st;
    for (;;) {
      st = steps % 2 ? bc_iter_next(it, &key, &klen, &info)
                     : bc_iter_next_view(it, NULL, &key, &klen, &info);
      if (st != BC_OK) break;
      size_t i = tu_key_num(key, klen);
      if (i < klo || i >= khi) fail_msg("case %zu: key %zu out of range", c, i);
      if (!snap.v[i])
        fail_msg("case %zu step %zu: key %zu was not live at the snapshot", c, steps, i);
      if (rows && (rc->desc ? i >= prev : i <= prev))
        fail_msg("case %zu: key %zu after key %zu: out of order", c, i, prev);
      assert_false(seen[i]);
      seen[i] = 1;
      assert_int_equal(info.value_size, snap.len[i]);
      assert_int_equal(info.meta, snap.meta[i]);
      TU_OK(bc_snapshot_get(sn, key, klen, &b, &v, &info));
      assert_int_equal(info.value_size, snap.len[i]);
      assert_memory_equal(v, snap.v[i], snap.len[i]);
      prev = i;
      rows++;
      steps++;
      /* Between this step and the next: a delete, an insert and an
      ** update ahead of the cursor, and an update of the key just read. */
      size_t j;
      if ((j = pick_ahead(&m, klo, khi, rc->desc, 1, i, 1)) != SIZE_MAX)
        TU_OK(tu_del(s, &m, j));
      if ((j = pick_ahead(&m, klo, khi, rc->desc, 1, i, 0)) != SIZE_MAX)
        TU_OK(put_ver(s, &m, j, ver++));
      if ((j = pick_ahead(&m, klo, khi, rc->desc, 1, i, 1)) != SIZE_MAX)
        TU_OK(put_ver(s, &m, j, ver++));
      if (m.v[i]) TU_OK(put_ver(s, &m, i, ver++));
      TU_OK(bc_sync(s));
      if (steps % 8 == 0) {
        /* The same through a transaction. */
        bc_txn *t;
        TU_OK(bc_txn_begin(s, &t));
        tu_model pend;
        tu_model_copy(&pend, &m);
        if ((j = pick_ahead(&pend, klo, khi, rc->desc, 1, i, 1)) != SIZE_MAX)
          txn_del(t, &pend, j);
        if ((j = pick_ahead(&pend, klo, khi, rc->desc, 1, i, 0)) != SIZE_MAX)
          txn_put_ver(t, &pend, j, ver++);
        if ((j = pick_ahead(&pend, klo, khi, rc->desc, 1, i, 1)) != SIZE_MAX)
          txn_put_ver(t, &pend, j, ver++);
        TU_OK(bc_txn_commit(t));
        tu_model_free(&m);
        m = pend;
      }
      if (steps % 64 == 0) TU_OK(bc_merge(s, NULL));
    }
    assert_int_equal(st, BC_DONE);
    assert_int_equal(bc_iter_next(it, &key, &klen, &info), BC_DONE);
    size_t want = 0;
    for (size_t i = klo; i < khi; i++) {
      if (snap.v[i]) want++;
      if (snap.v[i] && !seen[i]) fail_msg("case %zu: key %zu skipped", c, i);
    }
    assert_int_equal(rows, want);
    /* The store did change where the iterator went. */
    if (model_diffs(&snap, &m, klo, khi) < rows / 2)
      fail_msg("case %zu: only %zu keys changed in range", c, model_diffs(&snap, &m, klo, khi));
    snap_check(sn, &snap, NULL, "snapshot after the iteration");
    tu_model_check(s, &m, "store after the iteration");
    bc_iter_close(it);
    bc_snapshot_close(sn);
    bc_buf_free(&b);
    free(seen);
    tu_model_free(&snap);
  }
  TU_OK(bc_close(s));
  tu_model_free(&m);
}

/* ------------------------------------------------------------------ 4 */

/* One random change of the store anywhere: delete, insert, update, or
** delete and put back. */
static void change_any(bc_store *s, tu_model *m, size_t n, unsigned *ver) {
  size_t k = (size_t)(rnd() % n);
  switch (rnd() % 4) {
  case 0:
    if (m->v[k]) TU_OK(tu_del(s, m, k));
    break;
  case 1:
    TU_OK(put_ver(s, m, k, (*ver)++));
    break;
  case 2:
    if (m->v[k]) {
      TU_OK(tu_del(s, m, k));
      TU_OK(bc_sync(s));
      TU_OK(put_ver(s, m, k, (*ver)++));
    }
    break;
  default:
    if (!m->v[k]) TU_OK(put_ver(s, m, k, (*ver)++));
    break;
  }
}

/* Scan sn to the end with changes between steps; every key of snap exactly
** once with its value.  Returns 1 if the keys came in ascending order. */
static int scan_with_changes(bc_store *s, bc_fold *sc, const tu_model *snap, tu_model *m,
                             unsigned *ver, const char *where) {
  size_t n = snap->n;
  unsigned char *seen = calloc(n, 1);
  assert_non_null(seen);
  bc_buf b = {0};
  const void *key, *v;
  size_t klen, rows = 0, prev = 0;
  int ascending = 1;
  bc_info info;
  bc_status st;
  while ((st = bc_fold_next(sc, NULL, &key, &klen, &info, &b, &v)) == BC_OK) {
    size_t i = tu_key_num(key, klen);
    assert_true(i < n);
    if (!snap->v[i]) fail_msg("%s: key %zu was not live at the snapshot", where, i);
    if (seen[i]) fail_msg("%s: key %zu returned twice", where, i);
    seen[i] = 1;
    if (info.value_size != snap->len[i] || info.meta != snap->meta[i] ||
        memcmp(v, snap->v[i], snap->len[i]) != 0)
      fail_msg("%s: key %zu: not the snapshot's value", where, i);
    if (rows && i < prev) ascending = 0;
    prev = i;
    rows++;
    for (int op = 0; op < 4; op++) change_any(s, m, n, ver);
    TU_OK(bc_sync(s));
    if (rows % 32 == 0) {
      bc_txn *t;
      TU_OK(bc_txn_begin(s, &t));
      tu_model pend;
      tu_model_copy(&pend, m);
      for (int op = 0; op < 3; op++) {
        size_t k = (size_t)(rnd() % n);
        if (pend.v[k] && rnd() % 2)
          txn_del(t, &pend, k);
        else
          txn_put_ver(t, &pend, k, (*ver)++);
      }
      TU_OK(bc_txn_commit(t));
      tu_model_free(m);
      *m = pend;
    }
    if (rows % 150 == 0) TU_OK(bc_merge(s, NULL));
  }
  assert_int_equal(st, BC_DONE);
  for (size_t i = 0; i < n; i++)
    if (snap->v[i] && !seen[i]) fail_msg("%s: key %zu skipped", where, i);
  assert_int_equal(rows, tu_model_count(snap));
  if (model_diffs(snap, m, 0, n) < rows / 2)
    fail_msg("%s: only %zu keys changed", where, model_diffs(snap, m, 0, n));
  bc_buf_free(&b);
  free(seen);
  return ascending;
}

static void test_scan_unordered(void **state) {
  tu_fix *fx = *state;
  enum { N = 1500 };
  bc_store *s = tu_open(fx->base, 16384, BC_SYNC_OFF, NULL);
  tu_model m;
  tu_model_init(&m, N);
  /* Written in a scrambled key order: the records' order on disk is not
  ** the keys' order. */
  for (size_t j = 0; j < N; j++) TU_OK(put_ver(s, &m, (j * 7919) % N, 0));
  for (size_t i = 0; i < N; i += 5) TU_OK(tu_del(s, &m, i));
  TU_OK(bc_sync(s));
  unsigned ver = 1;

  /* The scan opened right after the snapshot. */
  bc_snapshot *sn;
  TU_OK(bc_snapshot_open(s, &sn));
  tu_model snap;
  tu_model_copy(&snap, &m);
  bc_fold *sc;
  TU_OK(bc_fold_open_snapshot(sn, &sc));
  int asc = scan_with_changes(s, sc, &snap, &m, &ver, "scan opened at once");
  /* "in the order the records lie on disk rather than in key order" */
  assert_false(asc);
  bc_fold_close(sc);
  snap_check(sn, &snap, NULL, "snapshot after the first scan");
  /* Changes between the snapshot's open and the scan's. */
  TU_OK(bc_fold_open_snapshot(sn, &sc));
  scan_with_changes(s, sc, &snap, &m, &ver, "second scan of the same snapshot");
  bc_fold_close(sc);
  bc_snapshot_close(sn);
  tu_model_free(&snap);
  tu_model_check(s, &m, "store after the scans");

  /* A fresh snapshot, the store changed before its scan opens. */
  TU_OK(bc_snapshot_open(s, &sn));
  tu_model_copy(&snap, &m);
  for (int op = 0; op < 300; op++) change_any(s, &m, N, &ver);
  TU_OK(bc_sync(s));
  TU_OK(bc_merge(s, NULL));
  TU_OK(bc_fold_open_snapshot(sn, &sc));
  scan_with_changes(s, sc, &snap, &m, &ver, "scan opened after changes");
  bc_fold_close(sc);
  /* Keys only, no values. */
  TU_OK(bc_fold_open_snapshot(sn, &sc));
  const void *key;
  size_t klen, rows = 0;
  bc_info info;
  while (bc_fold_next(sc, NULL, &key, &klen, &info, NULL, NULL) == BC_OK) {
    size_t i = tu_key_num(key, klen);
    assert_non_null(snap.v[i]);
    assert_int_equal(info.value_size, snap.len[i]);
    change_any(s, &m, N, &ver);
    rows++;
  }
  assert_int_equal(rows, tu_model_count(&snap));
  bc_fold_close(sc);
  bc_snapshot_close(sn);
  tu_model_free(&snap);
  tu_model_check(s, &m, "store at the end");
  TU_OK(bc_close(s));
  tu_model_free(&m);
}

/* ------------------------------------------------------------------ 5 */

/* References this process holds to deleted files under dir: descriptors
** (/proc/self/fd) and mappings (/proc/self/maps). */
static int deleted_refs(const char *dir, int *fds, int *maps) {
  *fds = *maps = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  struct dirent *de;
  size_t dl = strlen(dir);
  while ((de = readdir(d)) != NULL) {
    char p[PATH_MAX], l[PATH_MAX];
    if (de->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "/proc/self/fd/%s", de->d_name);
    ssize_t n = readlink(p, l, sizeof l - 1);
    if (n <= 0) continue;
    l[n] = 0;
    if (strncmp(l, dir, dl) == 0 && strstr(l, ".data (deleted)")) (*fds)++;
  }
  closedir(d);
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return -1;
  char line[PATH_MAX + 256];
  while (fgets(line, sizeof line, f))
    if (strstr(line, dir) && strstr(line, ".data (deleted)")) (*maps)++;
  fclose(f);
  return 0;
}

static void merge_under_snapshot(const char *dir, tio *t) {
  enum { N = 300 };
  bc_store *s = tu_open(dir, 4096, BC_SYNC_OFF, t ? &t->io : NULL);
  tu_model m;
  tu_model_init(&m, N);
  for (size_t i = 0; i < N; i++) TU_OK(put_ver(s, &m, i, 0));
  for (size_t i = 0; i < N; i++) TU_OK(put_ver(s, &m, i, 1)); /* overwrite */
  TU_OK(bc_sync(s));
  uint32_t before[512];
  size_t nbefore = tu_data_ids(dir, before, 512);
  assert_true(nbefore >= 5); /* rotated: the versions are in sealed files */

  bc_snapshot *sn;
  TU_OK(bc_snapshot_open(s, &sn));
  tu_model snap;
  tu_model_copy(&snap, &m);
  uint64_t *seq = seqs_now(s, N);
  /* Every version the snapshot has is superseded or deleted. */
  for (size_t i = 0; i < N; i++) {
    if (i % 3 == 0)
      TU_OK(tu_del(s, &m, i));
    else
      TU_OK(put_ver(s, &m, i, 2));
  }
  TU_OK(bc_sync(s));
  assert_true(tu_stats(s).retired_files == 0);
  uint64_t reclaimed = 0;
  TU_OK(bc_merge(s, &reclaimed));
  assert_true(reclaimed > 0);
  bc_stats st = tu_stats(s);
  assert_true(st.retired_files > 0);
  assert_int_equal(st.snapshots, 1);
  /* The files the snapshot reads are gone from the directory. */
  uint32_t after[512];
  size_t nafter = tu_data_ids(dir, after, 512);
  for (size_t i = 0; i < nbefore; i++)
    for (size_t j = 0; j < nafter; j++)
      if (before[i] == after[j]) fail_msg("data file %u still in the directory", before[i]);
  long preads = t ? t->n_pread : 0;
  snap_check(sn, &snap, seq, "snapshot after the merge");
  snap_iter_check(sn, &snap, "snapshot iterator after the merge");
  if (t) assert_true(t->n_pread > preads); /* read with pread, not a mapping */
  tu_model_check(s, &m, "store after the merge");
  int fds, maps;
  assert_int_equal(deleted_refs(dir, &fds, &maps), 0);
  assert_true(fds + maps > 0); /* what keeps them readable */

  /* More writes and a second merge (the first one's outputs go too). */
  for (size_t i = 0; i < N; i += 2) TU_OK(put_ver(s, &m, i, 3));
  TU_OK(bc_sync(s));
  TU_OK(bc_merge(s, NULL));
  snap_check(sn, &snap, seq, "snapshot after a second merge");
  /* A snapshot opened now reads the merged files. */
  bc_snapshot *sn2;
  TU_OK(bc_snapshot_open(s, &sn2));
  snap_check(sn2, &m, NULL, "snapshot opened after the merges");
  bc_snapshot_close(sn2);
  /* A scan of the first one, too: every one of the N keys. */
  assert_int_equal(tu_model_count(&snap), N);
  snap_scan_check(sn, &snap);

  bc_snapshot_close(sn);
  st = tu_stats(s);
  assert_int_equal(st.retired_files, 0);
  assert_int_equal(st.snapshots, 0);
  assert_int_equal(deleted_refs(dir, &fds, &maps), 0);
  if (fds + maps != 0) fail_msg("after the close: %d descriptors, %d mappings of deleted files", fds, maps);
  tu_model_check(s, &m, "store after the close");
  TU_OK(bc_close(s));
  s = tu_open(dir, 4096, BC_SYNC_OFF, t ? &t->io : NULL);
  tu_model_check(s, &m, "reopened");
  TU_OK(bc_close(s));
  tu_model_free(&m);
  tu_model_free(&snap);
  free(seq);
}

static void test_merge_mmap(void **state) {
  tu_fix *fx = *state;
  char dir[PATH_MAX];
  tu_path(dir, "%s/s", fx->base);
  merge_under_snapshot(dir, NULL);
}

static void test_merge_pread(void **state) {
  tu_fix *fx = *state;
  char dir[PATH_MAX];
  tu_path(dir, "%s/s", fx->base);
  tio *t = calloc(1, sizeof *t);
  assert_non_null(t);
  tio_init(t);
  t->real_fsync = 0;
  merge_under_snapshot(dir, t);
  tio_free(t);
  free(t);
}

/* ------------------------------------------------------------------ 6 */

static void test_epochs(void **state) {
  tu_fix *fx = *state;
  enum { N = 32 };
  bc_store *s = tu_open(fx->base, 0, BC_SYNC_OFF, NULL);
  tu_model m, m1, m2, m3;
  tu_model_init(&m, N);
  for (size_t i = 0; i < 10; i++) TU_OK(put_ver(s, &m, i, 0));
  TU_OK(bc_sync(s));
  bc_stats st = tu_stats(s);
  assert_int_equal(st.snapshots, 0);
  assert_int_equal(st.snapshot_versions, 0);
  assert_int_equal(st.snapshot_bytes, 0);

  /* s1 and s1b: no change between them, one group. */
  bc_snapshot *s1, *s1b, *s2, *s3;
  TU_OK(bc_snapshot_open(s, &s1));
  TU_OK(bc_snapshot_open(s, &s1b));
  tu_model_copy(&m1, &m);
  st = tu_stats(s);
  assert_int_equal(st.snapshots, 2);
  assert_int_equal(st.snapshot_versions, 0); /* nothing changed yet */
  TU_OK(put_ver(s, &m, 1, 1));
  TU_OK(bc_sync(s));
  st = tu_stats(s);
  assert_int_equal(st.snapshot_versions, 1); /* once for both */
  assert_true(st.snapshot_bytes > 0);
  uint64_t bytes1 = st.snapshot_bytes;
  TU_OK(put_ver(s, &m, 1, 2)); /* the same key again */
  TU_OK(bc_sync(s));
  assert_int_equal(tu_stats(s).snapshot_versions, 1);

  TU_OK(bc_snapshot_open(s, &s2));
  tu_model_copy(&m2, &m);
  TU_OK(tu_del(s, &m, 2)); /* new for both groups */
  TU_OK(bc_sync(s));
  assert_int_equal(tu_stats(s).snapshot_versions, 3);
  TU_OK(put_ver(s, &m, 1, 3)); /* new for s2 only */
  TU_OK(bc_sync(s));
  st = tu_stats(s);
  assert_int_equal(st.snapshot_versions, 4);
  assert_true(st.snapshot_bytes > bytes1);

  TU_OK(bc_snapshot_open(s, &s3));
  tu_model_copy(&m3, &m);
  bc_txn *t;
  TU_OK(bc_txn_begin(s, &t));
  tu_model pend;
  tu_model_copy(&pend, &m);
  txn_put_ver(t, &pend, 3, 1);  /* updated */
  txn_put_ver(t, &pend, 20, 1); /* new */
  TU_OK(bc_txn_commit(t));
  tu_model_free(&m);
  m = pend;
  /* Two keys, three groups. */
  assert_int_equal(tu_stats(s).snapshot_versions, 10);
  assert_int_equal(tu_stats(s).snapshots, 4);

  snap_check(s1, &m1, NULL, "s1");
  snap_check(s1b, &m1, NULL, "s1b");
  snap_check(s2, &m2, NULL, "s2");
  snap_check(s3, &m3, NULL, "s3");
  snap_iter_check(s2, &m2, "s2 iterator");
  tu_model_check(s, &m, "store");
  assert_true(model_diffs(&m1, &m2, 0, N) > 0 && model_diffs(&m2, &m3, 0, N) > 0 &&
              model_diffs(&m3, &m, 0, N) > 0);

  /* Close the middle one: the others keep their views. */
  bc_snapshot_close(s2);
  assert_int_equal(tu_stats(s).snapshot_versions, 6);
  snap_check(s1, &m1, NULL, "s1 after s2 closed");
  snap_check(s3, &m3, NULL, "s3 after s2 closed");
  TU_OK(put_ver(s, &m, 5, 1));
  TU_OK(bc_sync(s));
  assert_int_equal(tu_stats(s).snapshot_versions, 8);
  /* One handle of a shared group: the group stays. */
  bc_snapshot_close(s1);
  st = tu_stats(s);
  assert_int_equal(st.snapshots, 2);
  assert_int_equal(st.snapshot_versions, 8);
  snap_check(s1b, &m1, NULL, "s1b after s1 closed");
  snap_check(s3, &m3, NULL, "s3 after s1 closed");
  bc_snapshot_close(s3);
  assert_int_equal(tu_stats(s).snapshot_versions, 5);
  snap_check(s1b, &m1, NULL, "s1b after s3 closed");
  bc_snapshot_close(s1b);
  st = tu_stats(s);
  assert_int_equal(st.snapshots, 0);
  assert_int_equal(st.snapshot_versions, 0);
  assert_int_equal(st.snapshot_bytes, 0);

  /* Oldest closed first. */
  TU_OK(bc_snapshot_open(s, &s1));
  tu_model_free(&m1);
  tu_model_copy(&m1, &m);
  TU_OK(put_ver(s, &m, 7, 5));
  TU_OK(bc_sync(s));
  TU_OK(bc_snapshot_open(s, &s2));
  tu_model_free(&m2);
  tu_model_copy(&m2, &m);
  TU_OK(put_ver(s, &m, 7, 6));
  TU_OK(tu_del(s, &m, 8));
  TU_OK(bc_sync(s));
  assert_int_equal(tu_stats(s).snapshot_versions, 4);
  bc_snapshot_close(s1);
  assert_int_equal(tu_stats(s).snapshot_versions, 2);
  TU_OK(put_ver(s, &m, 9, 5));
  TU_OK(bc_sync(s));
  snap_check(s2, &m2, NULL, "s2 after the older one closed");
  snap_iter_check(s2, &m2, "its iterator");
  bc_snapshot_close(s2);
  st = tu_stats(s);
  assert_int_equal(st.snapshots, 0);
  assert_int_equal(st.snapshot_versions, 0);
  assert_int_equal(st.snapshot_bytes, 0);
  /* With none open, writes save nothing. */
  TU_OK(put_ver(s, &m, 9, 6));
  TU_OK(bc_sync(s));
  assert_int_equal(tu_stats(s).snapshot_versions, 0);
  TU_OK(bc_close(s));
  tu_model_free(&m);
  tu_model_free(&m1);
  tu_model_free(&m2);
  tu_model_free(&m3);
}

/* ------------------------------------------------------------------ 7 */

static void test_refresh(void **state) {
  tu_fix *fx = *state;
  enum { N = 200 };
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  tu_model m;
  tu_model_init(&m, N);
  for (size_t i = 0; i < N; i++)
    if (i % 3) TU_OK(put_ver(s, &m, i, 0));
  TU_OK(bc_sync(s));
  unsigned ver = 1;
  bc_snapshot *sn;
  TU_OK(bc_snapshot_open(s, &sn));
  tu_model snap;
  tu_model_copy(&snap, &m);
  /* No change: a refresh keeps the view. */
  TU_OK(bc_snapshot_refresh(sn));
  snap_check(sn, &snap, NULL, "refreshed with no change");

  bc_iter *it;
  TU_OK(bc_iter_open_snapshot(sn, NULL, &it));
  bc_buf b = {0};
  const void *key, *v;
  size_t klen, last = 0;
  bc_info info;
  for (int k = 0; k < 20; k++) {
    TU_OK(bc_iter_next(it, &key, &klen, &info));
    last = tu_key_num(key, klen);
  }
  /* Changes ahead of the cursor and behind it. */
  for (size_t i = last + 1; i < N; i++) {
    if (i % 7 == 0 && m.v[i])
      TU_OK(tu_del(s, &m, i));
    else if (i % 3 == 0)
      TU_OK(put_ver(s, &m, i, ver++)); /* new keys */
    else if (i % 2 == 0)
      TU_OK(put_ver(s, &m, i, ver++));
  }
  for (size_t i = 0; i < last; i++)
    if (m.v[i]) TU_OK(put_ver(s, &m, i, ver++));
  TU_OK(bc_sync(s));
  /* Not refreshed yet: one step in the old view. */
  TU_OK(bc_iter_next(it, &key, &klen, &info));
  size_t i0 = tu_key_num(key, klen);
  size_t want = last + 1;
  while (!snap.v[want]) want++;
  assert_int_equal(i0, want);
  TU_OK(bc_snapshot_get(sn, key, klen, &b, &v, &info));
  assert_memory_equal(v, snap.v[i0], snap.len[i0]);
  last = i0;
  snap_check(sn, &snap, NULL, "before the refresh");

  TU_OK(bc_snapshot_refresh(sn));
  tu_model now;
  tu_model_copy(&now, &m);
  assert_true(model_diffs(&snap, &now, last + 1, N) > 20);
  snap_check(sn, &now, NULL, "after the refresh");
  /* And after the refresh, more changes (a transaction) it must not see. */
  bc_txn *t;
  TU_OK(bc_txn_begin(s, &t));
  tu_model pend;
  tu_model_copy(&pend, &m);
  for (size_t i = last + 1; i < N; i += 5) {
    if (pend.v[i] && i % 2)
      txn_del(t, &pend, i);
    else
      txn_put_ver(t, &pend, i, ver++);
  }
  TU_OK(bc_txn_commit(t));
  tu_model_free(&m);
  m = pend;
  tu_model_check(s, &m, "store after the refresh");
  snap_check(sn, &now, NULL, "after the refresh and a commit");
  /* The iterator goes on from `last` in the new view. */
  size_t rows = 0;
  bc_status st;
  want = last + 1;
  while ((st = bc_iter_next(it, &key, &klen, &info)) == BC_OK) {
    size_t i = tu_key_num(key, klen);
    while (want < N && !now.v[want]) want++;
    if (i != want) fail_msg("after the refresh: key %zu, want %zu", i, want);
    TU_OK(bc_snapshot_get(sn, key, klen, &b, &v, &info));
    assert_int_equal(info.value_size, now.len[i]);
    assert_memory_equal(v, now.v[i], now.len[i]);
    want++;
    rows++;
  }
  assert_int_equal(st, BC_DONE);
  assert_true(rows > 0);
  bc_iter_close(it);
  bc_buf_free(&b);
  bc_snapshot_close(sn);
  TU_OK(bc_close(s));
  tu_model_free(&m);
  tu_model_free(&snap);
  tu_model_free(&now);
}

/* ------------------------------------------------------------------ 8 */

static bc_store *open_ro(const char *dir) {
  bc_options o;
  bc_options_init(&o);
  o.read_only = 1;
  return tu_open_opts(dir, &o);
}

/* A read-only store on the writer's directory (here in the same process,
** as test_follow.c does). */
static void test_follower(void **state) {
  tu_fix *fx = *state;
  enum { N = 300 };
  char dir[PATH_MAX];
  tu_path(dir, "%s/s", fx->base);
  bc_store *w = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
  tu_model m;
  tu_model_init(&m, N);
  for (size_t i = 0; i < 100; i++) TU_OK(put_ver(w, &m, i, 0));
  TU_OK(bc_sync(w));
  bc_store *r = open_ro(dir);
  unsigned ver = 1;

  /* The writer commits more; the follower's snapshot open catches up. */
  for (size_t i = 100; i < 150; i++) TU_OK(put_ver(w, &m, i, 0));
  TU_OK(bc_sync(w));
  bc_txn *t;
  TU_OK(bc_txn_begin(w, &t));
  tu_model pend;
  tu_model_copy(&pend, &m);
  for (size_t i = 0; i < 10; i++) txn_put_ver(t, &pend, i, ver++);
  for (size_t i = 10; i < 15; i++) txn_del(t, &pend, i);
  TU_OK(bc_txn_commit(t));
  tu_model_free(&m);
  m = pend;
  bc_snapshot *s1;
  TU_OK(bc_snapshot_open(r, &s1));
  tu_model snap1;
  tu_model_copy(&snap1, &m);
  snap_check(s1, &snap1, NULL, "follower snapshot at its open");

  /* More commits: standalone and a transaction, over rotations. */
  for (size_t i = 0; i < 150; i += 2) TU_OK(put_ver(w, &m, i, ver++));
  for (size_t i = 150; i < 200; i++) TU_OK(put_ver(w, &m, i, ver++));
  for (size_t i = 1; i < 60; i += 4)
    if (m.v[i]) TU_OK(tu_del(w, &m, i));
  TU_OK(bc_sync(w));
  TU_OK(bc_txn_begin(w, &t));
  tu_model_copy(&pend, &m);
  for (size_t i = 60; i < 90; i++) txn_put_ver(t, &pend, i, ver++);
  txn_del(t, &pend, 91);
  TU_OK(bc_txn_commit(t));
  tu_model_free(&m);
  m = pend;
  snap_check(s1, &snap1, NULL, "follower snapshot after the writer's commits");
  TU_OK(bc_refresh(r));
  tu_model_check(r, &m, "follower after a refresh");
  snap_check(s1, &snap1, NULL, "follower snapshot after a refresh");
  bc_snapshot *s2;
  TU_OK(bc_snapshot_open(r, &s2));
  tu_model snap2;
  tu_model_copy(&snap2, &m);
  snap_check(s2, &snap2, NULL, "second follower snapshot");
  assert_true(model_diffs(&snap1, &snap2, 0, N) > 50);
  snap_iter_check(s1, &snap1, "first follower snapshot's iterator");

  /* The writer overwrites and deletes everything the snapshots have, and
  ** merges: their versions are in files gone from the directory. */
  for (size_t i = 0; i < N; i++) {
    if (m.v[i] && i % 4 == 0)
      TU_OK(tu_del(w, &m, i));
    else
      TU_OK(put_ver(w, &m, i, ver++));
  }
  TU_OK(bc_sync(w));
  uint32_t before[512];
  size_t nbefore = tu_data_ids(dir, before, 512);
  TU_OK(bc_merge(w, NULL));
  uint32_t after[512];
  size_t nafter = tu_data_ids(dir, after, 512);
  size_t gone = 0;
  for (size_t i = 0; i < nbefore; i++) {
    int kept = 0;
    for (size_t j = 0; j < nafter; j++) kept |= before[i] == after[j];
    gone += !kept;
  }
  assert_true(gone >= 5);
  snap_check(s1, &snap1, NULL, "first follower snapshot after the writer's merge");
  snap_check(s2, &snap2, NULL, "second follower snapshot after the writer's merge");
  snap_iter_check(s2, &snap2, "second follower snapshot's iterator after the merge");
  /* A scan of the first (a bitmap walk, inside a snapshot). */
  snap_scan_check(s1, &snap1);
  /* More commits after the merge; a refresh while they are open. */
  for (size_t i = 0; i < 50; i++) TU_OK(put_ver(w, &m, i, ver++));
  TU_OK(bc_sync(w));
  TU_OK(bc_refresh(r));
  snap_check(s1, &snap1, NULL, "first follower snapshot after a refresh past a merge");
  snap_check(s2, &snap2, NULL, "second follower snapshot after a refresh past a merge");
  bc_stats fs = tu_stats(r);
  assert_int_equal(fs.snapshots, 2);
  bc_snapshot_close(s2);
  snap_check(s1, &snap1, NULL, "first follower snapshot after the second closed");
  bc_snapshot_close(s1);
  /* None open: the next open catches up with everything. */
  bc_snapshot *s3;
  TU_OK(bc_snapshot_open(r, &s3));
  snap_check(s3, &m, NULL, "follower snapshot after the others closed");
  tu_model_check(r, &m, "follower after catching up");
  bc_snapshot_close(s3);
  fs = tu_stats(r);
  assert_int_equal(fs.snapshots, 0);
  assert_int_equal(fs.snapshot_versions, 0);
  TU_OK(bc_close(r));
  TU_OK(bc_close(w));
  tu_model_free(&m);
  tu_model_free(&snap1);
  tu_model_free(&snap2);
}

/* bc_snapshot_refresh on a follower whose writer merged: "as a close and an
** open would" -- and with no other snapshot open, a close and an open catch
** up (the refresh is put off only while snapshots are open). */
static void test_follower_refresh_past_merge(void **state) {
  tu_fix *fx = *state;
  enum { N = 100 };
  char dir[PATH_MAX];
  tu_path(dir, "%s/s", fx->base);
  bc_store *w = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
  tu_model m;
  tu_model_init(&m, N);
  for (size_t i = 0; i < N; i++) TU_OK(put_ver(w, &m, i, 0));
  TU_OK(bc_sync(w));
  bc_store *r = open_ro(dir);
  bc_snapshot *sn;
  TU_OK(bc_snapshot_open(r, &sn));
  snap_check(sn, &m, NULL, "follower snapshot");
  /* Without a merge, the refresh moves it on. */
  for (size_t i = 0; i < N; i += 3) TU_OK(put_ver(w, &m, i, 1));
  TU_OK(bc_sync(w));
  TU_OK(bc_snapshot_refresh(sn));
  snap_check(sn, &m, NULL, "refreshed follower snapshot");
  /* With one. */
  for (size_t i = 0; i < N; i += 2) TU_OK(put_ver(w, &m, i, 2));
  TU_OK(bc_merge(w, NULL));
  for (size_t i = 1; i < N; i += 2) TU_OK(tu_del(w, &m, i));
  TU_OK(bc_sync(w));
  TU_OK(bc_snapshot_refresh(sn));
  long bad = snap_differs(sn, &m);
  uint64_t cnt = bc_snapshot_count(sn);
  /* What a close and an open give here. */
  bc_snapshot_close(sn);
  TU_OK(bc_snapshot_open(r, &sn));
  snap_check(sn, &m, NULL, "follower snapshot closed and opened past the writer's merge");
  bc_snapshot_close(sn);
  size_t want = tu_model_count(&m);
  TU_OK(bc_close(r));
  TU_OK(bc_close(w));
  tu_model_free(&m);
  if (bad >= 0)
    fail_msg("bc_snapshot_refresh on a follower past the writer's merge kept the old "
             "state (key %ld differs from the writer's; bc_snapshot_count %llu, want %zu), "
             "where a close and an open see the new one",
             bad, (unsigned long long)cnt, want);
}

/* ------------------------------------------------------------------ 9 */

#define ACCTS 16
#define IDS (2 * ACCTS)
#define BAL0 1000
#define RUN_MS 1500

typedef struct tshared {
  bc_store *s;
  atomic_int stop;
  atomic_long violations, errors, txns, renames, merges;
  pthread_mutex_t mu;
  char first[256]; /* the first violation or error, for the failure message */
} tshared;

typedef struct treader {
  tshared *sh;
  long rounds, iter_rounds, scan_rounds;
} treader;

static void __attribute__((format(printf, 3, 4)))
note(tshared *sh, atomic_long *ctr, const char *fmt, ...) {
  atomic_fetch_add(ctr, 1);
  pthread_mutex_lock(&sh->mu);
  if (!sh->first[0]) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sh->first, sizeof sh->first, fmt, ap);
    va_end(ap);
  }
  pthread_mutex_unlock(&sh->mu);
}

static size_t acct_key(char k[16], int id) { return (size_t)snprintf(k, 16, "acct:%03d", id); }

static int acct_id(const void *key, size_t klen) {
  char b[16];
  if (klen < 6 || klen >= sizeof b) return -1;
  memcpy(b, key, klen);
  b[klen] = 0;
  return strncmp(b, "acct:", 5) == 0 ? atoi(b + 5) : -1;
}

static void *writer_main(void *arg) {
  tshared *sh = arg;
  bc_store *s = sh->s;
  int live[IDS];
  for (int i = 0; i < IDS; i++) live[i] = i < ACCTS;
  uint64_t x = 88172645463325252ull;
  bc_buf b = {0};
  long n = 0;
  while (!atomic_load(&sh->stop)) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    int a, c;
    do a = (int)(x % IDS), x = x * 6364136223846793005ull + 1; while (!live[a]);
    do c = (int)(x % IDS), x = x * 6364136223846793005ull + 1; while (!live[c] || c == a);
    int rename = n % 8 == 7;
    if (rename) /* c: an id not in use */
      do c = (int)(x % IDS), x = x * 6364136223846793005ull + 1; while (live[c]);
    bc_txn *t;
    bc_status st = bc_txn_begin(s, &t);
    if (st != BC_OK) {
      note(sh, &sh->errors, "bc_txn_begin: %s", bc_status_name(st));
      break;
    }
    char ka[16], kc[16];
    size_t la = acct_key(ka, a), lc = acct_key(kc, c);
    const void *v;
    bc_info info;
    int64_t va = 0, vc = 0;
    if ((st = bc_txn_get(t, ka, la, &b, &v, &info)) == BC_OK && info.value_size == 8)
      memcpy(&va, v, 8);
    else
      note(sh, &sh->errors, "writer: get %s: %s", ka, bc_status_name(st));
    if (rename) {
      /* The balance moves to a new key: the key set changes, its size not. */
      if ((st = bc_txn_delete(t, ka, la)) != BC_OK ||
          (st = bc_txn_put(t, kc, lc, 0, &va, 8)) != BC_OK)
        note(sh, &sh->errors, "writer: rename: %s", bc_status_name(st));
    } else {
      if ((st = bc_txn_get(t, kc, lc, &b, &v, &info)) == BC_OK && info.value_size == 8)
        memcpy(&vc, v, 8);
      else
        note(sh, &sh->errors, "writer: get %s: %s", kc, bc_status_name(st));
      int64_t amt = (int64_t)(x % 100);
      va -= amt;
      vc += amt;
      if ((st = bc_txn_put(t, ka, la, 0, &va, 8)) != BC_OK ||
          (st = bc_txn_put(t, kc, lc, 0, &vc, 8)) != BC_OK)
        note(sh, &sh->errors, "writer: put: %s", bc_status_name(st));
    }
    if ((st = bc_txn_commit(t)) != BC_OK) {
      note(sh, &sh->errors, "writer: commit: %s", bc_status_name(st));
      break;
    }
    if (rename) {
      live[a] = 0;
      live[c] = 1;
      atomic_fetch_add(&sh->renames, 1);
    }
    atomic_fetch_add(&sh->txns, 1);
    if (++n % 200 == 0) {
      if ((st = bc_merge(s, NULL)) != BC_OK)
        note(sh, &sh->errors, "writer: merge: %s", bc_status_name(st));
      else
        atomic_fetch_add(&sh->merges, 1);
    }
  }
  bc_buf_free(&b);
  return NULL;
}

/* One snapshot: ACCTS keys summing to ACCTS * BAL0 by point reads of
** every id, by an iterator, and (sometimes) by a scan. */
static void *reader_main(void *arg) {
  treader *rd = arg;
  tshared *sh = rd->sh;
  bc_store *s = sh->s;
  bc_buf b = {0};
  const int64_t total = (int64_t)ACCTS * BAL0;
  while (!atomic_load(&sh->stop)) {
    bc_snapshot *sn;
    bc_status st = bc_snapshot_open(s, &sn);
    if (st != BC_OK) {
      note(sh, &sh->errors, "bc_snapshot_open: %s", bc_status_name(st));
      break;
    }
    const void *v, *key;
    size_t klen;
    bc_info info;
    int64_t sum = 0, x;
    int cnt = 0;
    for (int id = 0; id < IDS; id++) {
      char k[16];
      size_t kl = acct_key(k, id);
      st = bc_snapshot_get(sn, k, kl, &b, &v, &info);
      if (st == BC_OK && info.value_size == 8) {
        memcpy(&x, v, 8);
        sum += x;
        cnt++;
      } else if (st != BC_NOTFOUND) {
        note(sh, &sh->errors, "bc_snapshot_get %s: %s", k, bc_status_name(st));
      }
    }
    if (cnt != ACCTS || sum != total || bc_snapshot_count(sn) != ACCTS)
      note(sh, &sh->violations, "point reads: %d keys (count %llu), sum %lld", cnt,
           (unsigned long long)bc_snapshot_count(sn), (long long)sum);
    /* The iterator, values read in between its steps. */
    bc_iter *it;
    if ((st = bc_iter_open_snapshot(sn, NULL, &it)) == BC_OK) {
      sum = 0;
      cnt = 0;
      int prev = -1;
      while ((st = bc_iter_next(it, &key, &klen, &info)) == BC_OK) {
        int id = acct_id(key, klen);
        if (id <= prev) note(sh, &sh->violations, "iterator: id %d after %d", id, prev);
        prev = id;
        if ((st = bc_snapshot_get(sn, key, klen, &b, &v, &info)) == BC_OK &&
            info.value_size == 8) {
          memcpy(&x, v, 8);
          sum += x;
        } else {
          note(sh, &sh->violations, "iterator: key %d then bc_snapshot_get %s", id,
               bc_status_name(st));
        }
        cnt++;
      }
      if (st != BC_DONE) note(sh, &sh->errors, "bc_iter_next: %s", bc_status_name(st));
      if (cnt != ACCTS || sum != total)
        note(sh, &sh->violations, "iterator: %d keys, sum %lld", cnt, (long long)sum);
      bc_iter_close(it);
      rd->iter_rounds++;
    } else {
      note(sh, &sh->errors, "bc_iter_open_snapshot: %s", bc_status_name(st));
    }
    if (rd->rounds % 4 == 0) {
      bc_fold *sc;
      if ((st = bc_fold_open_snapshot(sn, &sc)) == BC_OK) {
        sum = 0;
        cnt = 0;
        while ((st = bc_fold_next(sc, NULL, &key, &klen, &info, &b, &v)) == BC_OK) {
          if (info.value_size == 8) {
            memcpy(&x, v, 8);
            sum += x;
          }
          cnt++;
        }
        if (st != BC_DONE) note(sh, &sh->errors, "bc_fold_next: %s", bc_status_name(st));
        if (cnt != ACCTS || sum != total)
          note(sh, &sh->violations, "scan: %d keys, sum %lld", cnt, (long long)sum);
        bc_fold_close(sc);
        rd->scan_rounds++;
      } else {
        note(sh, &sh->errors, "bc_fold_open_snapshot: %s", bc_status_name(st));
      }
    }
    bc_snapshot_close(sn);
    rd->rounds++;
  }
  bc_buf_free(&b);
  return NULL;
}

static void test_threads(void **state) {
  tu_fix *fx = *state;
  tshared *sh = calloc(1, sizeof *sh);
  assert_non_null(sh);
  pthread_mutex_init(&sh->mu, NULL);
  sh->s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  for (int id = 0; id < ACCTS; id++) {
    char k[16];
    int64_t v = BAL0;
    TU_OK(bc_put(sh->s, k, acct_key(k, id), 0, &v, 8));
  }
  TU_OK(bc_sync(sh->s));
  treader rd[2] = {{sh, 0, 0, 0}, {sh, 0, 0, 0}};
  pthread_t w, r[2];
  assert_int_equal(pthread_create(&w, NULL, writer_main, sh), 0);
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&r[i], NULL, reader_main, &rd[i]), 0);
  struct timespec ts = {RUN_MS / 1000, (RUN_MS % 1000) * 1000000L};
  nanosleep(&ts, NULL);
  atomic_store(&sh->stop, 1);
  pthread_join(w, NULL);
  for (int i = 0; i < 2; i++) pthread_join(r[i], NULL);
  if (atomic_load(&sh->violations) || atomic_load(&sh->errors))
    fail_msg("%ld violations, %ld errors; first: %s", atomic_load(&sh->violations),
             atomic_load(&sh->errors), sh->first);
  print_message("threads: %ld transactions (%ld renames), %ld merges; readers %ld+%ld "
                "snapshots (%ld+%ld scans)\n",
                atomic_load(&sh->txns), atomic_load(&sh->renames), atomic_load(&sh->merges),
                rd[0].rounds, rd[1].rounds, rd[0].scan_rounds, rd[1].scan_rounds);
  assert_true(atomic_load(&sh->txns) > 200);
  assert_true(atomic_load(&sh->renames) > 0);
  assert_true(atomic_load(&sh->merges) > 0);
  for (int i = 0; i < 2; i++) {
    assert_true(rd[i].rounds >= 5);
    assert_true(rd[i].iter_rounds >= 5);
    assert_true(rd[i].scan_rounds >= 1);
  }
  /* Everything released. */
  bc_stats st = tu_stats(sh->s);
  assert_int_equal(st.snapshots, 0);
  assert_int_equal(st.snapshot_versions, 0);
  assert_int_equal(st.snapshot_bytes, 0);
  assert_int_equal(st.retired_files, 0);
  assert_int_equal(bc_count(sh->s), ACCTS);
  TU_OK(bc_close(sh->s));
  pthread_mutex_destroy(&sh->mu);
  free(sh);
}

/* ----------------------------------------------------------------- 10 */

/* A bc_sync that fails undoes the standalone writes since the last commit
** point (bitcask.h bc_sync).  Their records never reached the file, so a
** snapshot that saw any of them cannot serve its state: its reads fail with
** BC_IOERR (bitcask.h, "snapshots") -- never a value that was not
** committed, never a read past the write buffer.  A snapshot opened before
** them goes on with the committed state; one opened after the failure reads
** the store as it is. */
static void test_failed_sync_under_snapshot(void **state) {
  tu_fix *fx = *state;
  tio *t = calloc(1, sizeof *t);
  assert_non_null(t);
  tio_init(t);
  t->real_fsync = 0;
  bc_store *s = tu_open(fx->base, 0, BC_SYNC_FULL, &t->io);
  TU_OK(bc_put(s, "a", 1, 0, "1", 1));
  TU_OK(bc_sync(s));
  bc_snapshot *before, *between, *after;
  TU_OK(bc_snapshot_open(s, &before));
  TU_OK(bc_put(s, "a", 1, 0, "2", 1));
  TU_OK(bc_put(s, "b", 1, 0, "B1", 2));
  /* Saw a=2 and b=B1; the next write makes it save b=B1, never written. */
  TU_OK(bc_snapshot_open(s, &between));
  char v[64];
  get_str(between, "b", v, sizeof v);
  assert_string_equal(v, "B1");
  /* A value larger than the write buffer goes to the file at once. */
  size_t big = 4u << 20;
  char *bv = malloc(big);
  assert_non_null(bv);
  memset(bv, 'x', big);
  TU_OK(bc_put(s, "b", 1, 0, bv, big));
  free(bv);
  /* The commit point's fsync fails (sync=full): every write since the last
  ** one is undone and cut off the file. */
  t->counting = 1;
  t->mask = TIO_FSYNC;
  t->fail_at = 1;
  assert_int_equal(bc_sync(s), BC_IOERR);
  t->counting = 0;
  t->fail_at = 0;
  /* Undone in the store. */
  assert_int_equal(bc_count(s), 1);
  assert_int_equal(bc_lookup(s, "b", 1, NULL), BC_NOTFOUND);
  /* The snapshot that saw them cannot serve. */
  bc_buf b = {0};
  const void *val;
  bc_info info;
  assert_int_equal(bc_snapshot_get(between, "b", 1, &b, &val, &info), BC_IOERR);
  assert_int_equal(bc_snapshot_get(between, "a", 1, &b, &val, &info), BC_IOERR);
  assert_int_equal(bc_snapshot_lookup(between, "b", 1, &info), BC_IOERR);
  bc_iter *it;
  TU_OK(bc_iter_open_snapshot(between, NULL, &it));
  const void *key;
  size_t klen;
  assert_int_equal(bc_iter_next(it, &key, &klen, NULL), BC_IOERR);
  bc_iter_close(it);
  /* The one opened before them: the committed state, as it was. */
  get_str(before, "a", v, sizeof v);
  assert_string_equal(v, "1");
  get_str(before, "b", v, sizeof v);
  assert_string_equal(v, "");
  assert_int_equal(bc_snapshot_count(before), 1);
  /* A refresh repairs the broken one: the store as it is. */
  TU_OK(bc_snapshot_refresh(between));
  get_str(between, "a", v, sizeof v);
  assert_string_equal(v, "1");
  /* One opened after the failure. */
  TU_OK(bc_snapshot_open(s, &after));
  get_str(after, "a", v, sizeof v);
  assert_string_equal(v, "1");
  get_str(after, "b", v, sizeof v);
  assert_string_equal(v, "");
  assert_int_equal(bc_snapshot_count(after), 1);
  bc_buf_free(&b);
  bc_snapshot_close(after);
  bc_snapshot_close(between);
  bc_snapshot_close(before);
  TU_OK(bc_close(s));
  tio_free(t);
  free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      TU_TEST(test_point_reads),
      TU_TEST(test_txn_atomic),
      TU_TEST_SHM(test_iter_ordered),
      TU_TEST_SHM(test_scan_unordered),
      TU_TEST_SHM(test_merge_mmap),
      TU_TEST_SHM(test_merge_pread),
      TU_TEST(test_epochs),
      TU_TEST(test_refresh),
      TU_TEST_SHM(test_follower),
      TU_TEST_SHM(test_follower_refresh_past_merge),
      TU_TEST_SHM(test_threads),
      TU_TEST(test_failed_sync_under_snapshot),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
