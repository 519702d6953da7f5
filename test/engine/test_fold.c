/*
** test_fold.c -- unordered scans (fold.c): every live key once with its
** value, in the order of the records on disk; the snapshot's promises while
** puts, deletes, re-puts and merges run between its steps (checked against
** a model at every step); a transaction's view; the ordered fallback on a
** read-only store and in a transaction that has written; a damaged record
** reported and stepped over; the keydir's deferred frees released at close.
*/
#include "testutil.h"

static uint64_t rs = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}


/* Scan the whole store (view t) and check it against the model: every live
** key exactly once with its value.  Returns the number of rows. */
static size_t scan_check(bc_store *s, bc_txn *t, const tu_model *m) {
  bc_fold *sc;
  TU_OK(bc_fold_open(s, t, &sc));
  unsigned char *seen = calloc(m->n, 1);
  assert_non_null(seen);
  bc_buf b = {0};
  const void *key, *v;
  size_t klen, rows = 0;
  bc_info info;
  bc_status st;
  while ((st = bc_fold_next(sc, t, &key, &klen, &info, &b, &v)) == BC_OK) {
    size_t i = tu_key_num(key, klen);
    assert_true(i < m->n);
    assert_false(seen[i]);
    seen[i] = 1;
    assert_non_null(m->v[i]);
    assert_int_equal(info.value_size, m->len[i]);
    assert_int_equal(info.meta, m->meta[i]);
    assert_memory_equal(v, m->v[i], m->len[i]);
    rows++;
  }
  assert_int_equal(st, BC_DONE);
  assert_int_equal(rows, tu_model_count(m));
  bc_fold_close(sc);
  bc_buf_free(&b);
  free(seen);
  return rows;
}

static void test_all_keys_in_disk_order(void **state) {
  tu_fix *fx = *state;
  enum { N = 3000 };
  bc_store *s = tu_open(fx->base, 16384, BC_SYNC_OFF, NULL);
  tu_model m;
  tu_model_init(&m, N);
  /* Insert in a scrambled key order, over many rotated files. */
  for (size_t j = 0; j < N; j++) TU_OK(tu_put_ver(s, &m, (j * 7919) % N, 0, 0, 120));
  for (size_t i = 0; i < N; i += 3) TU_OK(tu_del(s, &m, i));
  assert_int_equal(scan_check(s, NULL, &m), tu_model_count(&m));
  TU_OK(bc_close(s));

  /* Reopened, the keydir is loaded file by file: the scan follows the
  ** records on disk, so sequence numbers only grow along it. */
  s = tu_open(fx->base, 16384, BC_SYNC_OFF, NULL);
  assert_int_equal(scan_check(s, NULL, &m), tu_model_count(&m));
  bc_fold *sc;
  TU_OK(bc_fold_open(s, NULL, &sc));
  const void *key;
  size_t klen;
  bc_info info;
  uint64_t last = 0;
  int ascending_keys = 1;
  size_t prev = 0, rows = 0;
  while (bc_fold_next(sc, NULL, &key, &klen, &info, NULL, NULL) == BC_OK) {
    assert_true(info.seq > last);
    last = info.seq;
    size_t i = tu_key_num(key, klen);
    if (rows++ && i < prev) ascending_keys = 0;
    prev = i;
  }
  /* ... which is not key order. */
  assert_false(ascending_keys);
  bc_fold_close(sc);
  /* An empty store scans to nothing. */
  for (size_t i = 0; i < N; i++)
    if (m.v[i]) TU_OK(tu_del(s, &m, i));
  assert_int_equal(scan_check(s, NULL, &m), 0);
  TU_OK(bc_close(s));
  tu_model_free(&m);
}

/* Random writes, deletes, re-puts and merges between the steps of a scan.
** The promises: no key twice; a returned key is live then, with its value
** then; a key live at the open and never deleted is returned; a key added
** after the open is not.  Any reuse of a freed keydir entry while the scan
** runs would show up as a key added after the open. */
static void test_writes_and_merges_between_steps(void **state) {
  tu_fix *fx = *state;
  enum { N = 4000, OLD = 2000 };
  bc_store *s = tu_open(fx->base, 32768, BC_SYNC_OFF, NULL);
  tu_model m;
  tu_model_init(&m, N);
  for (size_t round = 0; round < 4; round++) {
    for (size_t i = 0; i < OLD; i++)
      if (!m.v[i] && rnd() % 4 != 0) TU_OK(tu_put_ver(s, &m, i, (unsigned)round, 8, 200));
    unsigned char *at_open = calloc(N, 1), *deleted = calloc(N, 1), *seen = calloc(N, 1);
    assert_true(at_open && deleted && seen);
    for (size_t i = 0; i < N; i++) at_open[i] = m.v[i] != NULL;
    bc_fold *sc;
    TU_OK(bc_fold_open(s, NULL, &sc));
    bc_buf b = {0};
    const void *key, *v;
    size_t klen, merges = 0;
    bc_info info;
    bc_status st;
    unsigned ver = 100 + (unsigned)round * 10;
    while ((st = bc_fold_next(sc, NULL, &key, &klen, &info, &b, &v)) == BC_OK) {
      size_t i = tu_key_num(key, klen);
      assert_true(at_open[i]);
      assert_false(seen[i]);
      seen[i] = 1;
      assert_non_null(m.v[i]);
      assert_int_equal(info.value_size, m.len[i]);
      assert_memory_equal(v, m.v[i], m.len[i]);
      /* Between this step and the next. */
      for (int op = 0; op < 4; op++) {
        size_t k = rnd() % OLD;
        switch (rnd() % 5) {
        case 0:
          if (m.v[k]) {
            TU_OK(tu_del(s, &m, k));
            deleted[k] = 1;
          }
          break;
        case 1: /* a put: new, updated, or back after a delete */
          TU_OK(tu_put_ver(s, &m, k, ver++, 8, 200));
          break;
        case 2: /* a key that did not exist at the open */
          TU_OK(tu_put_ver(s, &m, OLD + rnd() % (N - OLD), ver++, 8, 200));
          break;
        default:
          if (m.v[k]) TU_OK(tu_put_ver(s, &m, k, ver++, 8, 200));
          break;
        }
      }
      if (rnd() % 200 == 0) {
        uint64_t rec;
        TU_OK(bc_merge(s, &rec));
        merges++;
      }
    }
    assert_int_equal(st, BC_DONE);
    bc_fold_close(sc);
    for (size_t i = 0; i < N; i++)
      if (at_open[i] && !deleted[i] && !seen[i]) fail_msg("round %zu: key %zu skipped", round, i);
    assert_true(s->kd.pins == 0 && s->kd.deferred == 0);
    size_t kb = 0;
    for (size_t i = 0; i < s->kd.cap; i++) {
      const bc_entry *e = bc_kd_at(&s->kd, i);
      if (e) kb += bc_e_klen(e);
    }
    assert_int_equal(kb, s->kd.key_bytes);
    tu_model_check(s, &m, "after the scan");
    bc_buf_free(&b);
    free(at_open);
    free(deleted);
    free(seen);
    (void)merges;
  }
  TU_OK(bc_close(s));
  s = tu_open(fx->base, 32768, BC_SYNC_OFF, NULL);
  tu_model_check(s, &m, "reopened");
  scan_check(s, NULL, &m);
  TU_OK(bc_close(s));
  tu_model_free(&m);
}

static void test_txn_view(void **state) {
  tu_fix *fx = *state;
  bc_store *s = tu_open(fx->base, 0, BC_SYNC_OFF, NULL);
  const char *keys[] = {"c", "a", "d", "b"};
  for (int i = 0; i < 4; i++) TU_OK(bc_put(s, keys[i], 1, 0, keys[i], 1));

  /* A transaction with no writes yet scans the snapshot; writes it makes
  ** between steps show: a delete hides, a put replaces. */
  bc_txn *t;
  TU_OK(bc_txn_begin(s, &t));
  bc_fold *sc;
  TU_OK(bc_fold_open(s, t, &sc));
  bc_buf b = {0};
  const void *key, *v;
  size_t klen;
  bc_info info;
  TU_OK(bc_fold_next(sc, t, &key, &klen, &info, &b, &v)); /* "c", the first put */
  assert_memory_equal(key, "c", 1);
  TU_OK(bc_txn_delete(t, "a", 1));
  TU_OK(bc_txn_put(t, "d", 1, 5, "DDD", 3));
  TU_OK(bc_txn_put(t, "e", 1, 0, "e", 1)); /* added after the open */
  TU_OK(bc_fold_next(sc, t, &key, &klen, &info, &b, &v));
  assert_memory_equal(key, "d", 1);
  assert_int_equal(info.value_size, 3);
  assert_int_equal(info.meta, 5);
  assert_memory_equal(v, "DDD", 3);
  TU_OK(bc_fold_next(sc, t, &key, &klen, &info, &b, &v));
  assert_memory_equal(key, "b", 1);
  assert_int_equal(bc_fold_next(sc, t, &key, &klen, &info, &b, &v), BC_DONE);
  bc_fold_close(sc);

  /* The committed view does not see t's writes. */
  TU_OK(bc_fold_open(s, NULL, &sc));
  char got[8] = "";
  size_t n = 0;
  while (bc_fold_next(sc, NULL, &key, &klen, &info, &b, &v) == BC_OK) got[n++] = *(const char *)key;
  assert_string_equal(got, "cadb");
  bc_fold_close(sc);

  /* Once t has written, its scan is ordered and includes its new keys. */
  TU_OK(bc_fold_open(s, t, &sc));
  memset(got, 0, sizeof got);
  n = 0;
  while (bc_fold_next(sc, t, &key, &klen, &info, &b, &v) == BC_OK) got[n++] = *(const char *)key;
  assert_string_equal(got, "bcde");
  bc_fold_close(sc);
  TU_OK(bc_txn_rollback(t));
  bc_buf_free(&b);
  TU_OK(bc_close(s));
}

/* A key deleted and put back before the scan reaches it is returned, once,
** with its new value; one put back after the scan passed it is not
** returned again. */
static void test_deleted_and_put_back(void **state) {
  tu_fix *fx = *state;
  bc_store *s = tu_open(fx->base, 0, BC_SYNC_OFF, NULL);
  const char *keys[] = {"a", "b", "c", "d"};
  for (int i = 0; i < 4; i++) TU_OK(bc_put(s, keys[i], 1, 0, keys[i], 1));
  bc_fold *sc;
  TU_OK(bc_fold_open(s, NULL, &sc));
  bc_buf b = {0};
  const void *key, *v;
  size_t klen;
  bc_info info;
  TU_OK(bc_fold_next(sc, NULL, &key, &klen, &info, &b, &v));
  assert_memory_equal(key, "a", 1);
  TU_OK(bc_delete(s, "a", 1));
  TU_OK(bc_put(s, "a", 1, 0, "A2", 2)); /* behind the scan */
  TU_OK(bc_delete(s, "c", 1));
  TU_OK(bc_sync(s));
  TU_OK(bc_put(s, "c", 1, 0, "C2", 2)); /* ahead of it */
  TU_OK(bc_delete(s, "d", 1));          /* ahead, and gone */
  TU_OK(bc_sync(s));
  char got[8] = "";
  size_t n = 0;
  while (bc_fold_next(sc, NULL, &key, &klen, &info, &b, &v) == BC_OK) {
    got[n++] = *(const char *)key;
    if (*(const char *)key == 'c') assert_memory_equal(v, "C2", 2);
  }
  assert_string_equal(got, "bc");
  bc_fold_close(sc);
  bc_buf_free(&b);
  TU_OK(bc_close(s));
}

static void test_read_only_is_ordered(void **state) {
  tu_fix *fx = *state;
  bc_store *s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  const char *keys[] = {"c", "a", "d", "b"};
  for (int i = 0; i < 4; i++) TU_OK(bc_put(s, keys[i], 1, 0, keys[i], 1));
  TU_OK(bc_close(s));
  bc_options o;
  bc_options_init(&o);
  o.read_only = 1;
  s = tu_open_opts(fx->base, &o);
  bc_fold *sc;
  TU_OK(bc_fold_open(s, NULL, &sc));
  bc_buf b = {0};
  const void *key, *v;
  size_t klen;
  char got[8] = "";
  size_t n = 0;
  while (bc_fold_next(sc, NULL, &key, &klen, NULL, &b, &v) == BC_OK) {
    assert_memory_equal(v, key, 1);
    got[n++] = *(const char *)key;
  }
  assert_string_equal(got, "abcd");
  bc_fold_close(sc);
  bc_buf_free(&b);
  TU_OK(bc_close(s));
}

/* A record damaged in a sealed file: its key's step reports BC_CORRUPT,
** then the scan goes on; a scan without values never reads it. */
static void test_damaged_record(void **state) {
  tu_fix *fx = *state;
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_FULL, NULL);
  tu_model m;
  tu_model_init(&m, 200);
  for (size_t i = 0; i < 200; i++) TU_OK(tu_put_ver(s, &m, i, 0, 50, 10));
  TU_OK(bc_close(s));
  char p[PATH_MAX];
  tu_path(p, "%s/%010u.data", fx->base, 1u);
  /* The last byte of the first record of file 1. */
  tu_flip(p, 32 + 32 + 10 + 40, 0x10);
  s = tu_open(fx->base, 4096, BC_SYNC_FULL, NULL);
  bc_fold *sc;
  TU_OK(bc_fold_open(s, NULL, &sc));
  bc_buf b = {0};
  const void *key, *v;
  size_t klen, ok = 0, bad = 0;
  bc_status st;
  while ((st = bc_fold_next(sc, NULL, &key, &klen, NULL, &b, &v)) != BC_DONE) {
    if (st == BC_CORRUPT)
      bad++;
    else
      ok += st == BC_OK;
  }
  bc_fold_close(sc);
  assert_int_equal(bad, 1);
  assert_int_equal(ok, 199);
  TU_OK(bc_fold_open(s, NULL, &sc));
  ok = 0;
  while (bc_fold_next(sc, NULL, &key, &klen, NULL, NULL, NULL) == BC_OK) ok++;
  assert_int_equal(ok, 200);
  bc_fold_close(sc);
  bc_buf_free(&b);
  TU_OK(bc_close(s));
  tu_model_free(&m);
}

/* While a scan is open, deleted entries keep their memory; the close gives
** it back, and later keys reuse it. */
static void test_deferred_frees(void **state) {
  tu_fix *fx = *state;
  bc_store *s = tu_open(fx->base, 0, BC_SYNC_OFF, NULL);
  tu_model m;
  tu_model_init(&m, 2000);
  for (size_t i = 0; i < 1000; i++) TU_OK(tu_put_ver(s, &m, i, 0, 4, 4));
  bc_fold *sc;
  TU_OK(bc_fold_open(s, NULL, &sc));
  bc_fold *sc2;
  TU_OK(bc_fold_open(s, NULL, &sc2)); /* pins nest */
  for (size_t i = 0; i < 1000; i++) TU_OK(tu_del(s, &m, i));
  TU_OK(bc_sync(s)); /* the tombstones' commit point: their entries freed */
  size_t heap = s->kd.heap_bytes;
  for (size_t i = 1000; i < 2000; i++) TU_OK(tu_put_ver(s, &m, i, 0, 4, 4));
  assert_true(s->kd.heap_bytes > heap); /* nothing reused */
  const void *key;
  size_t klen;
  assert_int_equal(bc_fold_next(sc, NULL, &key, &klen, NULL, NULL, NULL), BC_DONE);
  bc_fold_close(sc);
  assert_int_equal(s->kd.pins, 1);
  assert_true(s->kd.deferred != 0);
  bc_fold_close(sc2);
  assert_int_equal(s->kd.pins, 0);
  assert_int_equal(s->kd.deferred, 0);
  heap = s->kd.heap_bytes;
  for (size_t i = 1000; i < 2000; i++) TU_OK(tu_del(s, &m, i));
  TU_OK(bc_sync(s));
  for (size_t i = 0; i < 1000; i++) TU_OK(tu_put_ver(s, &m, i, 1, 4, 4));
  assert_int_equal(s->kd.heap_bytes, heap); /* the freed entries reused */
  tu_model_check(s, &m, "after the scans");
  scan_check(s, NULL, &m);
  TU_OK(bc_close(s));
  tu_model_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_all_keys_in_disk_order, tu_setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_writes_and_merges_between_steps, tu_setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_txn_view, tu_setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_deleted_and_put_back, tu_setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_read_only_is_ordered, tu_setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_damaged_record, tu_setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_deferred_frees, tu_setup, tu_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
