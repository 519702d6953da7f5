/*
** test_keytree.c -- the keydir's ordered index (keytree.c) against a sorted
** reference: random inserts and removes (which split, merge and collapse
** nodes), walks in both directions, seeks at every kind of bound, the index
** built lazily over an existing keydir and kept in step afterwards, and its
** memory cost.
*/
#include "testutil.h"

#include <malloc.h>

static uint64_t rs = 88172645463325252ull;
static uint64_t rnd(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}

/* Keys: short byte strings over a small alphabet (with 0x00 and 0xFF), so
** there are prefixes of each other, equal prefixes and the empty key. */
typedef struct key {
  unsigned char b[8];
  size_t n;
} key;

static key random_key(void) {
  static const unsigned char alpha[] = {0x00, 0x01, 'a', 'b', 0x7F, 0x80, 0xFF};
  key k;
  k.n = (size_t)(rnd() % 7);
  for (size_t i = 0; i < k.n; i++) k.b[i] = alpha[rnd() % sizeof alpha];
  return k;
}

static int key_cmp(const void *a, const void *b) {
  const key *x = a, *y = b;
  return bc_key_cmp(x->b, x->n, y->b, y->n);
}

/* The reference: a sorted array of distinct keys. */
typedef struct ref {
  key *k;
  size_t n, cap;
} ref;

static long ref_find(const ref *r, const key *k) {
  size_t lo = 0, hi = r->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (key_cmp(&r->k[mid], k) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return (long)lo;
}

static void ref_insert(ref *r, const key *k, long at) {
  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 64;
    r->k = realloc(r->k, r->cap * sizeof *r->k);
    assert_non_null(r->k);
  }
  memmove(&r->k[at + 1], &r->k[at], (r->n - (size_t)at) * sizeof *r->k);
  r->k[at] = *k;
  r->n++;
}

static void ref_remove(ref *r, long at) {
  memmove(&r->k[at], &r->k[at + 1], (r->n - (size_t)at - 1) * sizeof *r->k);
  r->n--;
}

static int entry_is(const bc_entry *e, const key *k) {
  return e && bc_e_klen(e) == k->n && (k->n == 0 || memcmp(e->key, k->b, k->n) == 0);
}

/* Full walks both ways match the reference. */
static void check_walks(bc_keydir *kd, const ref *r) {
  bc_kpos pos;
  bc_entry *e = bc_kt_seek(kd, NULL, 0, 0, 0, &pos);
  for (size_t i = 0; i < r->n; i++) {
    if (!entry_is(e, &r->k[i])) fail_msg("ascending walk differs at %zu of %zu", i, r->n);
    e = bc_kt_step(kd, &pos, 0);
  }
  assert_null(e);
  e = bc_kt_seek(kd, NULL, 0, 0, 1, &pos);
  for (size_t i = r->n; i-- > 0;) {
    if (!entry_is(e, &r->k[i])) fail_msg("descending walk differs at %zu of %zu", i, r->n);
    e = bc_kt_step(kd, &pos, 1);
  }
  assert_null(e);
}

/* A seek to k (strict or not, either direction) lands where the reference
** says, and a step from there goes on correctly. */
static void check_seek(bc_keydir *kd, const ref *r, const key *k) {
  long lb = ref_find(r, k); /* first >= k */
  int present = (size_t)lb < r->n && key_cmp(&r->k[lb], k) == 0;
  for (int strict = 0; strict < 2; strict++) {
    for (int desc = 0; desc < 2; desc++) {
      long want;
      if (!desc)
        want = lb + (strict && present ? 1 : 0);
      else
        want = (present && !strict) ? lb : lb - 1;
      bc_kpos pos;
      bc_entry *e = bc_kt_seek(kd, k->b, k->n, strict, desc, &pos);
      if (want < 0 || (size_t)want >= r->n) {
        if (e) fail_msg("seek (strict %d desc %d) found a key past the end", strict, desc);
        continue;
      }
      if (!entry_is(e, &r->k[want]))
        fail_msg("seek (strict %d desc %d) landed wrong (want %ld of %zu)", strict, desc, want, r->n);
      long nx = desc ? want - 1 : want + 1;
      e = bc_kt_step(kd, &pos, desc);
      if (nx < 0 || (size_t)nx >= r->n)
        assert_null(e);
      else if (!entry_is(e, &r->k[nx]))
        fail_msg("step after seek went wrong");
    }
  }
}

/* Random adds and removes against the reference, the index built before
** (eager) or halfway (lazy). */
static void run_random(int lazy, size_t ops, int remove_bias) {
  bc_keydir kd;
  assert_int_equal(bc_kd_init(&kd, rnd()), 0);
  ref r = {0};
  if (!lazy) assert_int_equal(bc_kd_ordered(&kd), 0);
  for (size_t op = 0; op < ops; op++) {
    if (lazy && op == ops / 2) {
      assert_false(kd.ordered);
      assert_int_equal(bc_kd_ordered(&kd), 0);
      check_walks(&kd, &r);
    }
    key k = random_key();
    long at = ref_find(&r, &k);
    int present = (size_t)at < r.n && key_cmp(&r.k[at], &k) == 0;
    int del = (int)(rnd() % 100) < remove_bias;
    if (present && del) {
      bc_entry *e = bc_kd_get(&kd, k.b, k.n);
      assert_non_null(e);
      bc_kd_remove(&kd, e);
      ref_remove(&r, at);
    } else if (!present && !del) {
      assert_non_null(bc_kd_add(&kd, k.b, k.n));
      ref_insert(&r, &k, at);
    }
    if (kd.ordered && op % 97 == 0) {
      check_walks(&kd, &r);
      for (int j = 0; j < 8; j++) {
        key q = random_key();
        check_seek(&kd, &r, &q);
      }
    }
  }
  assert_int_equal(kd.count, r.n);
  if (kd.ordered) check_walks(&kd, &r);
  /* Empty it in random order: every node goes, the tree ends empty. */
  while (r.n > 0) {
    long at = (long)(rnd() % r.n);
    bc_kd_remove(&kd, bc_kd_get(&kd, r.k[at].b, r.k[at].n));
    ref_remove(&r, at);
    if (r.n % 500 == 0) check_walks(&kd, &r);
  }
  bc_kpos pos;
  assert_null(bc_kt_seek(&kd, NULL, 0, 0, 0, &pos));
  assert_int_equal(kd.tree.height, 0);
  assert_int_equal(bc_kt_bytes(&kd), 0);
  free(r.k);
  bc_kd_free(&kd);
}

static void test_random_eager(void **state) {
  (void)state;
  /* 7 symbols, up to 6 long: about 137k possible keys. */
  run_random(0, 60000, 30);
}

static void test_random_lazy(void **state) {
  (void)state;
  run_random(1, 60000, 30);
}

static void test_random_delete_heavy(void **state) {
  (void)state;
  /* Grows, then shrinks by mostly removing: merges and root collapses. */
  run_random(0, 40000, 10);
  run_random(0, 40000, 70);
}

/* Ascending and descending loads (the right-end split keeps leaves full),
** and a big lazy build; the index's own bytes stay near 4 per key. */
static void test_sequential_and_build(void **state) {
  (void)state;
  const size_t N = UNDER_ASAN ? 50000 : 300000;
  for (int mode = 0; mode < 3; mode++) {
    bc_keydir kd;
    assert_int_equal(bc_kd_init(&kd, 7), 0);
    if (mode < 2) assert_int_equal(bc_kd_ordered(&kd), 0);
    for (size_t i = 0; i < N; i++) {
      size_t v = mode == 1 ? N - 1 - i : i;
      unsigned char k[8];
      for (int j = 0; j < 8; j++) k[j] = (unsigned char)(v >> (56 - 8 * j));
      assert_non_null(bc_kd_add(&kd, k, 8));
    }
    if (mode == 2) assert_int_equal(bc_kd_ordered(&kd), 0);
    double per = (double)bc_kt_bytes(&kd) / (double)N;
    print_message("ordered index, %s: %.2f bytes/key\n",
                  mode == 0 ? "ascending inserts" : mode == 1 ? "descending inserts" : "built",
                  per);
    /* Full leaves of 124 refs: 520 / 124 = 4.19 bytes a key, plus the inner
    ** nodes and their separators; halved leaves would be ~8.4.  Ascending
    ** and descending inserts leave the last leaf of each split whole (4.6);
    ** a build fills every leaf (4.43). */
    if (mode < 2 && per > 4.7) fail_msg("ordered index costs %.2f bytes/key", per);
    if (per > 4.7) fail_msg("ordered index costs %.2f bytes/key", per);
    bc_kpos pos;
    bc_entry *e = bc_kt_seek(&kd, NULL, 0, 0, 0, &pos);
    for (size_t i = 0; i < N; i++) {
      unsigned char k[8];
      for (int j = 0; j < 8; j++) k[j] = (unsigned char)(i >> (56 - 8 * j));
      assert_true(e && bc_e_klen(e) == 8 && memcmp(e->key, k, 8) == 0);
      e = bc_kt_step(&kd, &pos, 0);
    }
    assert_null(e);
    bc_kd_free(&kd);
  }
}

/* Separators are the shortest prefixes that separate two leaves, not whole
** keys: for 100-byte keys that differ early, the index costs about what it
** does for short keys (whole-key copies would add 100 / 124 bytes a key).
** Walks and seeks over such keys stay exact. */
static void test_short_separators(void **state) {
  (void)state;
  const size_t N = UNDER_ASAN ? 20000 : 200000;
  bc_keydir kd;
  assert_int_equal(bc_kd_init(&kd, 11), 0);
  unsigned char k[100];
  memset(k, 'x', sizeof k);
  for (size_t i = 0; i < N; i++) {
    uint64_t v = i * 0x9E3779B97F4A7C15ull;
    for (int j = 0; j < 8; j++) k[j] = (unsigned char)(v >> (56 - 8 * j));
    assert_non_null(bc_kd_add(&kd, k, sizeof k));
  }
  assert_int_equal(bc_kd_ordered(&kd), 0);
  double per = (double)bc_kt_bytes(&kd) / (double)N;
  print_message("ordered index, 100-byte keys: %.2f bytes/key\n", per);
  if (per > 4.5) fail_msg("ordered index of 100-byte keys costs %.2f bytes/key", per);
  /* Every key is found by a seek to itself, and a walk is in order. */
  bc_kpos pos;
  const bc_entry *prev = NULL;
  size_t n = 0;
  for (bc_entry *e = bc_kt_seek(&kd, NULL, 0, 0, 0, &pos); e; e = bc_kt_step(&kd, &pos, 0)) {
    if (prev) assert_true(bc_key_cmp(prev->key, 100, e->key, 100) < 0);
    bc_kpos p2;
    assert_ptr_equal(bc_kt_seek(&kd, e->key, 100, 0, 0, &p2), e);
    prev = e;
    n++;
  }
  assert_int_equal(n, N);
  /* Keys inserted after the build, between and beside the separators. */
  for (size_t i = 0; i < N / 10; i++) {
    uint64_t v = (i + N) * 0x9E3779B97F4A7C15ull;
    for (int j = 0; j < 8; j++) k[j] = (unsigned char)(v >> (56 - 8 * j));
    k[99] = (unsigned char)i;
    assert_non_null(bc_kd_add(&kd, k, sizeof k));
    bc_kpos p2;
    bc_entry *e = bc_kt_seek(&kd, k, sizeof k, 0, 0, &p2);
    assert_true(e && memcmp(e->key, k, sizeof k) == 0);
  }
  n = 0;
  prev = NULL;
  for (bc_entry *e = bc_kt_seek(&kd, NULL, 0, 0, 0, &pos); e; e = bc_kt_step(&kd, &pos, 0)) {
    if (prev) assert_true(bc_key_cmp(prev->key, 100, e->key, 100) < 0);
    prev = e;
    n++;
  }
  assert_int_equal(n, N + N / 10);
  bc_kd_free(&kd);
}

/* A dropped index (what a failed allocation does) is rebuilt on demand and
** the version moves on each time. */
static void test_drop_and_rebuild(void **state) {
  (void)state;
  bc_keydir kd;
  assert_int_equal(bc_kd_init(&kd, 9), 0);
  ref r = {0};
  for (int i = 0; i < 3000; i++) {
    key k = random_key();
    long at = ref_find(&r, &k);
    if ((size_t)at < r.n && key_cmp(&r.k[at], &k) == 0) continue;
    assert_non_null(bc_kd_add(&kd, k.b, k.n));
    ref_insert(&r, &k, at);
  }
  assert_int_equal(bc_kd_ordered(&kd), 0);
  uint64_t v = kd.version;
  bc_kt_drop(&kd);
  assert_false(kd.ordered);
  assert_true(kd.version != v);
  /* Changes while it is dropped are not tracked, and need not be. */
  key extra = {{'z', 'z', 'z', 'z', 'z', 'z', 'z', 'z'}, 8};
  assert_non_null(bc_kd_add(&kd, extra.b, extra.n));
  ref_insert(&r, &extra, ref_find(&r, &extra));
  v = kd.version;
  assert_int_equal(bc_kd_ordered(&kd), 0);
  assert_true(kd.version != v);
  check_walks(&kd, &r);
  free(r.k);
  bc_kd_free(&kd);
}

static size_t heap_now(void) {
  struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

static void key16(unsigned char k[16], size_t i) {
  uint64_t x = i * 0x9E3779B97F4A7C15ull, y = i;
  memcpy(k, &x, 8);
  memcpy(k + 8, &y, 8);
}

/* The whole keydir's cost per key (arena, table, ordered index, malloc
** overhead: mallinfo2 before and after) for 1M 16-byte keys in random order:
** at most the key + 35.8 bytes with the ordered index built over the keys
** afterwards, key + 37.5 with it kept in step from the first insert
** (measured 35.5 and 37.2: the 24-byte entry, 5 / 0.742 bytes of slot and
** tag, 4.4 of index; kept in step, leaves split as keys arrive). */
static void test_memory_with_index(void **state) {
  (void)state;
  if (UNDER_ASAN) skip(); /* ASan's allocator does not report through mallinfo2 */
  const size_t N = 1000000;
  unsigned char k[16];
  malloc_trim(0);
  size_t a = heap_now();
  bc_keydir kd;
  assert_int_equal(bc_kd_init(&kd, 0xabc), 0);
  for (size_t i = 0; i < N; i++) {
    key16(k, i);
    assert_non_null(bc_kd_add(&kd, k, sizeof k));
  }
  double hash_only = (double)(heap_now() - a) / (double)N;
  assert_int_equal(bc_kd_ordered(&kd), 0);
  double built = (double)(heap_now() - a) / (double)N;
  for (size_t i = N; i < N + N / 10; i++) {
    key16(k, i);
    assert_non_null(bc_kd_add(&kd, k, sizeof k));
  }
  double more = (double)(heap_now() - a) / (double)(N + N / 10);
  bc_kd_free(&kd);

  malloc_trim(0);
  a = heap_now();
  assert_int_equal(bc_kd_init(&kd, 0xabd), 0);
  assert_int_equal(bc_kd_ordered(&kd), 0);
  for (size_t i = 0; i < N; i++) {
    key16(k, i);
    assert_non_null(bc_kd_add(&kd, k, sizeof k));
  }
  double kept = (double)(heap_now() - a) / (double)N;
  bc_kd_free(&kd);
  print_message("keydir, 1M 16-byte keys, bytes/key: key + %.1f without the ordered index; "
                "key + %.1f with it built afterwards; key + %.1f with it kept from the "
                "start (1.1M keys after the build: key + %.1f)\n",
                hash_only - 16, built - 16, kept - 16, more - 16);
  if (built > 16 + 35.8) fail_msg("keydir costs key + %.1f bytes with the index built", built - 16);
  if (kept > 16 + 37.5) fail_msg("keydir costs key + %.1f bytes with the index kept", kept - 16);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random_eager),
      cmocka_unit_test(test_random_lazy),
      cmocka_unit_test(test_random_delete_heavy),
      cmocka_unit_test(test_sequential_and_build),
      cmocka_unit_test(test_short_separators),
      cmocka_unit_test(test_drop_and_rebuild),
      cmocka_unit_test(test_memory_with_index),
  };
  return cmocka_run_group_tests_name("keytree", tests, NULL, NULL);
}
