/*
** test_keydir.c -- the in-memory hash index (keydir.c) on its own: add, get,
** unlink with many keys, backward-shift deletion (also across the wrap of the
** table), the empty key, keys that differ in one byte or only in length,
** probe lengths against load, the deleted-marker sweep, the packed entry
** fields, and the memory cost per key.
*/
#include "testutil.h"

#include <malloc.h>


/* A small deterministic PRNG (xorshift64*). */
static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}

/* Key i of a family: variable length, "k<i>" padded by i % 13 bytes. */
static size_t mkey(unsigned char *buf, size_t i) {
  int n = snprintf((char *)buf, 64, "k%zu", i);
  size_t pad = i % 13;
  for (size_t j = 0; j < pad; j++) buf[n + j] = (unsigned char)('a' + j);
  return (size_t)n + pad;
}

static double mean_probes(const bc_keydir *kd, size_t n, size_t (*key)(unsigned char *, size_t)) {
  unsigned char k[80];
  double sum = 0;
  for (size_t i = 0; i < n; i++) {
    size_t kl = key(k, i);
    sum += (double)bc_kd_probes(kd, k, kl);
  }
  return sum / (double)n;
}

static double load(const bc_keydir *kd) {
  return (double)kd->count / (double)kd->cap;
}

static double knuth(double a) { return 0.5 * (1.0 + 1.0 / (1.0 - a)); }

/* -------------------------------------------------------------- basics */

static void test_add_get_unlink_100k(void **state) {
  (void)state;
  const size_t N = 100000;
  bc_keydir kd;
  assert_int_equal(bc_kd_init(&kd, 12345), 0);
  size_t base_bytes = kd.heap_bytes;
  unsigned char k[80];
  for (size_t i = 0; i < N; i++) {
    size_t kl = mkey(k, i);
    assert_null(bc_kd_get(&kd, k, kl));
    bc_entry *e = bc_kd_add(&kd, k, kl);
    assert_non_null(e);
    assert_int_equal(bc_e_klen(e), kl);
    bc_e_set(e, i + 1, (uint8_t)i, (uint32_t)(i % 1000 + 1), i * 3, (uint32_t)(i * 7), 0);
    /* The load bound holds after every insert. */
    assert_true(kd.count * 4 <= kd.cap * 3);
  }
  assert_int_equal(kd.count, N);
  for (size_t i = 0; i < N; i++) {
    size_t kl = mkey(k, i);
    bc_entry *e = bc_kd_get(&kd, k, kl);
    assert_non_null(e);
    assert_memory_equal(e->key, k, kl);
    assert_true(bc_e_seq(e) == i + 1);
    assert_int_equal(bc_e_meta(e), (uint8_t)i);
    assert_int_equal(e->file_id, i % 1000 + 1);
    assert_true(bc_e_off(e) == i * 3);
    assert_int_equal(e->vsize, (uint32_t)(i * 7));
    assert_false(bc_e_deleted(e));
  }
  /* Absent keys: other spellings. */
  for (size_t i = 0; i < 1000; i++) {
    int n = snprintf((char *)k, sizeof k, "x%zu", i);
    assert_null(bc_kd_get(&kd, k, (size_t)n));
  }
  /* Remove every key whose index is not a multiple of 3, in a scattered order. */
  for (size_t j = 0; j < N; j++) {
    size_t i = (j * 7919) % N; /* 7919 is prime, so this is a permutation */
    if (i % 3 == 0) continue;
    size_t kl = mkey(k, i);
    bc_entry *e = bc_kd_get(&kd, k, kl);
    assert_non_null(e);
    bc_kd_unlink(&kd, e);
    assert_null(bc_kd_get(&kd, k, kl));
    bc_kd_entry_free(&kd, e);
  }
  assert_int_equal(kd.count, (N + 2) / 3);
  for (size_t i = 0; i < N; i++) {
    size_t kl = mkey(k, i);
    bc_entry *e = bc_kd_get(&kd, k, kl);
    if (i % 3 == 0) {
      if (!e) fail_msg("key %zu lost by a backward shift", i);
      assert_true(bc_e_seq(e) == i + 1);
    } else {
      assert_null(e);
    }
  }
  /* No tombstone slots: probes after the deletes are as short as for a
  ** table built with only the survivors at this load. */
  double after = 0;
  size_t n = 0;
  for (size_t i = 0; i < N; i += 3, n++) {
    size_t kl = mkey(k, i);
    after += (double)bc_kd_probes(&kd, k, kl);
  }
  after /= (double)n;
  assert_true(after < 1.5);
  /* Empty it. */
  for (size_t i = 0; i < N; i += 3) {
    size_t kl = mkey(k, i);
    bc_entry *e = bc_kd_get(&kd, k, kl);
    bc_kd_unlink(&kd, e);
    bc_kd_entry_free(&kd, e);
  }
  assert_int_equal(kd.count, 0);
  /* The arena keeps its chunks for reuse; nothing else is left. */
  assert_true(kd.heap_bytes >= base_bytes);
  bc_kd_free(&kd);
}

/* Random inserts and deletes against a reference bitmap, on small and
** larger tables, so that clusters wrap around the end of the table. */
static void test_backward_shift_random(void **state) {
  (void)state;
  unsigned char k[80];
  /* 1. Tiny tables: 12 keys in 16 slots (load 0.75), every deletion order
  **    random, every seed different, full check after each deletion. */
  for (int trial = 0; trial < 3000; trial++) {
    bc_keydir kd;
    assert_int_equal(bc_kd_init(&kd, rnd()), 0);
    size_t ids[12];
    for (size_t i = 0; i < 12; i++) {
      ids[i] = (size_t)(rnd() % 1000000);
      for (size_t j = 0; j < i; j++)
        if (ids[j] == ids[i]) ids[i] = ids[i] + 1000000 + i;
      size_t kl = mkey(k, ids[i]);
      assert_non_null(bc_kd_add(&kd, k, kl));
    }
    assert_int_equal(kd.cap, 16);
    for (size_t i = 11; i > 0; i--) { /* shuffle */
      size_t j = (size_t)(rnd() % (i + 1)), t = ids[i];
      ids[i] = ids[j];
      ids[j] = t;
    }
    for (size_t d = 0; d < 12; d++) {
      size_t kl = mkey(k, ids[d]);
      bc_entry *e = bc_kd_get(&kd, k, kl);
      assert_non_null(e);
      bc_kd_unlink(&kd, e);
      bc_kd_entry_free(&kd, e);
      for (size_t j = 0; j < 12; j++) {
        kl = mkey(k, ids[j]);
        if ((bc_kd_get(&kd, k, kl) != NULL) != (j > d))
          fail_msg("trial %d: after deleting %zu keys, key %zu is %s", trial, d + 1, j,
                   j > d ? "lost" : "still there");
      }
    }
    assert_int_equal(kd.count, 0);
    bc_kd_free(&kd);
  }

  /* 2. A universe of 2000 keys, 200k random operations. */
  const size_t U = 2000;
  char *in = calloc(U, 1);
  bc_keydir kd;
  assert_int_equal(bc_kd_init(&kd, 7), 0);
  size_t live = 0;
  for (size_t op = 0; op < 200000; op++) {
    size_t i = (size_t)(rnd() % U);
    size_t kl = mkey(k, i);
    bc_entry *e = bc_kd_get(&kd, k, kl);
    assert_true((e != NULL) == (in[i] != 0));
    if (e) {
      bc_kd_unlink(&kd, e);
      bc_kd_entry_free(&kd, e);
      in[i] = 0;
      live--;
    } else {
      e = bc_kd_add(&kd, k, kl);
      assert_non_null(e);
      bc_e_set(e, op + 1, 0, 1, 0, 0, 0);
      in[i] = 1;
      live++;
    }
    assert_int_equal(kd.count, live);
    if (op % 20000 == 0)
      for (size_t j = 0; j < U; j++) {
        kl = mkey(k, j);
        assert_true((bc_kd_get(&kd, k, kl) != NULL) == (in[j] != 0));
      }
  }
  for (size_t j = 0; j < U; j++) {
    size_t kl = mkey(k, j);
    assert_true((bc_kd_get(&kd, k, kl) != NULL) == (in[j] != 0));
  }
  free(in);
  bc_kd_free(&kd);
}

/* Unlink twice is harmless; link puts an entry back. */
static void test_unlink_link(void **state) {
  (void)state;
  bc_keydir kd;
  assert_int_equal(bc_kd_init(&kd, 99), 0);
  unsigned char k[80];
  for (size_t i = 0; i < 100; i++) {
    size_t kl = mkey(k, i);
    assert_non_null(bc_kd_add(&kd, k, kl));
  }
  size_t kl = mkey(k, 42);
  bc_entry *e = bc_kd_get(&kd, k, kl);
  bc_e_set(e, 5, 6, 7, 8, 9, 0);
  bc_kd_unlink(&kd, e);
  assert_int_equal(kd.count, 99);
  assert_null(bc_kd_get(&kd, k, kl));
  bc_kd_unlink(&kd, e); /* not linked: no-op */
  assert_int_equal(kd.count, 99);
  assert_int_equal(bc_kd_link(&kd, e), 0);
  assert_int_equal(kd.count, 100);
  assert_ptr_equal(bc_kd_get(&kd, k, kl), e);
  assert_true(bc_e_seq(e) == 5);
  for (size_t i = 0; i < 100; i++) {
    kl = mkey(k, i);
    assert_non_null(bc_kd_get(&kd, k, kl));
  }
  bc_kd_free(&kd);
}

/* ------------------------------------------------------------ odd keys */

static void test_empty_key(void **state) {
  (void)state;
  bc_keydir kd;
  assert_int_equal(bc_kd_init(&kd, 1), 0);
  assert_null(bc_kd_get(&kd, "", 0));
  bc_entry *e = bc_kd_add(&kd, "", 0);
  assert_non_null(e);
  assert_int_equal(bc_e_klen(e), 0);
  bc_e_set(e, 77, 3, 1, 32, 10, 0);
  /* "" and "\0" are different keys. */
  assert_null(bc_kd_get(&kd, "\0", 1));
  bc_entry *z = bc_kd_add(&kd, "\0", 1);
  assert_non_null(z);
  assert_ptr_equal(bc_kd_get(&kd, "", 0), e);
  assert_ptr_equal(bc_kd_get(&kd, "\0", 1), z);
  assert_int_equal(bc_e_klen(e), 0);
  assert_true(bc_e_seq(e) == 77);
  assert_int_equal(bc_kd_probes(&kd, "", 0) >= 1, 1);
  bc_kd_unlink(&kd, e);
  assert_null(bc_kd_get(&kd, "", 0));
  assert_ptr_equal(bc_kd_get(&kd, "\0", 1), z);
  bc_kd_entry_free(&kd, e);
  assert_int_equal(kd.count, 1);
  bc_kd_free(&kd);
}

/* 64-byte keys, all zero but one byte; and zero-padded length variants. */
static size_t onebyte_key(unsigned char *k, size_t i) {
  memset(k, 0, 64);
  if (i > 0) k[(i - 1) / 255] = (unsigned char)((i - 1) % 255 + 1);
  return 64;
}

static void test_keys_differing_in_one_byte(void **state) {
  (void)state;
  bc_keydir kd;
  assert_int_equal(bc_kd_init(&kd, 0xfeedface), 0);
  unsigned char k[80];
  const size_t N = 1 + 64 * 255;
  for (size_t i = 0; i < N; i++) {
    size_t kl = onebyte_key(k, i);
    assert_null(bc_kd_get(&kd, k, kl));
    bc_entry *e = bc_kd_add(&kd, k, kl);
    assert_non_null(e);
    bc_e_set(e, i + 1, 0, 1, 0, 0, 0);
  }
  assert_int_equal(kd.count, N);
  for (size_t i = 0; i < N; i++) {
    size_t kl = onebyte_key(k, i);
    bc_entry *e = bc_kd_get(&kd, k, kl);
    assert_non_null(e);
    assert_true(bc_e_seq(e) == i + 1);
  }
  double m = mean_probes(&kd, N, onebyte_key);
  if (m > knuth(load(&kd)) * 1.10)
    fail_msg("one-byte-different keys: mean probes %.2f at load %.2f", m, load(&kd));

  /* The same bytes at different lengths are different keys: "", "\0",
  ** "\0\0", ... and "a", "a\0", "a\0\0", ... */
  bc_kd_free(&kd);
  assert_int_equal(bc_kd_init(&kd, 3), 0);
  memset(k, 0, sizeof k);
  for (size_t len = 0; len <= 40; len++) {
    assert_null(bc_kd_get(&kd, k, len));
    bc_entry *e = bc_kd_add(&kd, k, len);
    bc_e_set(e, len + 1, 0, 1, 0, 0, 0);
  }
  unsigned char a[41];
  memset(a, 0, sizeof a);
  a[0] = 'a';
  for (size_t len = 1; len <= 40; len++) {
    assert_null(bc_kd_get(&kd, a, len));
    bc_entry *e = bc_kd_add(&kd, a, len);
    bc_e_set(e, 100 + len, 0, 1, 0, 0, 0);
  }
  for (size_t len = 0; len <= 40; len++) {
    bc_entry *e = bc_kd_get(&kd, k, len);
    assert_non_null(e);
    assert_true(bc_e_seq(e) == len + 1);
    if (len) {
      e = bc_kd_get(&kd, a, len);
      assert_non_null(e);
      assert_true(bc_e_seq(e) == 100 + len);
    }
  }
  assert_int_equal(kd.count, 81);
  bc_kd_free(&kd);
}

/* ----------------------------------------------------------------- load */

/* 16-byte binary keys: a little-endian counter and a fixed tail. */
static size_t seq_key(unsigned char *k, size_t i) {
  uint64_t v = i;
  memcpy(k, &v, 8);
  memcpy(k + 8, "-tail--!", 8);
  return 16;
}

/* 8-byte big-endian counters: keys that differ only in their last bytes. */
static size_t be_key(unsigned char *k, size_t i) {
  for (int j = 0; j < 8; j++) k[j] = (unsigned char)(i >> (56 - 8 * j));
  return 8;
}

/* Knuth's expected probes of a successful search under linear probing at
** load a: (1 + 1/(1-a)) / 2: 1.5 at 0.5, 2.0 at 2/3, 2.5 at 0.75.  The table
** grows by half at load 0.75, so it runs from load 0.5 to 0.75: a mean of
** about 1.9 over a growth cycle, whatever the hash. */

static void probes_for(size_t (*key)(unsigned char *, size_t), const char *name) {
  bc_keydir kd;
  assert_int_equal(bc_kd_init(&kd, 0x5eed), 0);
  unsigned char k[80];
  /* Grow to at least 2^17 slots, then fill from just after that growth to
  ** load 0.75 (about to grow), measuring at 16 evenly spaced loads. */
  size_t i = 0;
  while (kd.cap < (1u << 17)) {
    size_t kl = key(k, i++);
    assert_non_null(bc_kd_add(&kd, k, kl));
  }
  const size_t cap = kd.cap;
  const size_t lo = i, hi = cap * 3 / 4, step = (hi - lo) / 15;
  assert_true(load(&kd) > 0.49 && load(&kd) < 0.51);
  size_t next = lo + 1, measured = 0;
  double sum = 0;
  for (; i < hi; i++) {
    size_t kl = key(k, i);
    assert_non_null(bc_kd_add(&kd, k, kl));
    if (i + 1 == next || i + 1 == hi) {
      assert_int_equal(kd.cap, cap);
      double a = load(&kd), m = mean_probes(&kd, i + 1, key);
      if (getenv("BC_TEST_VERBOSE")) print_message("%s load %.3f probes %.3f\n", name, a, m);
      /* Within 10% of the ideal-hash figure at every load (a hash that
      ** clusters these keys would not be). */
      if (m > knuth(a) * 1.10)
        fail_msg("%s keys: mean probes %.3f at load %.3f, ideal %.3f", name, m, a, knuth(a));
      sum += m;
      measured++;
      next += step;
    }
  }
  assert_true(measured >= 16);
  double avg = sum / (double)measured;
  if (getenv("BC_TEST_VERBOSE")) print_message("%s: cycle mean %.3f\n", name, avg);
  if (avg >= 2.1) fail_msg("%s keys: mean probes %.3f over a growth cycle", name, avg);
  assert_true(load(&kd) <= 0.75);
  /* One more key grows the table by half: the load never passes 0.75. */
  size_t kl = key(k, hi);
  assert_non_null(bc_kd_add(&kd, k, kl));
  assert_int_equal(kd.cap, cap + cap / 2);
  double m = mean_probes(&kd, hi + 1, key);
  if (m >= 1.7) fail_msg("%s keys: mean probes %.3f right after growth", name, m);
  bc_kd_free(&kd);
}

static void test_probes_stay_small(void **state) {
  (void)state;
  probes_for(mkey, "text");
  probes_for(seq_key, "counter");
  probes_for(be_key, "big-endian");
}

/* Presizing for a known number of keys (a hint file's count at open) makes
** the table exactly big enough for them at the highest load, not the next
** step of 1.5x; and presizing again (file after file) still grows by at
** least half, so the rehashes stay few. */
static void test_presize_exact(void **state) {
  (void)state;
  bc_keydir kd;
  assert_int_equal(bc_kd_init(&kd, 77), 0);
  const size_t N = 300000;
  assert_int_equal(bc_kd_presize(&kd, N), 0);
  size_t cap = kd.cap;
  unsigned char k[80];
  for (size_t i = 0; i < N; i++) {
    size_t kl = mkey(k, i);
    assert_non_null(bc_kd_add(&kd, k, kl));
  }
  assert_int_equal(kd.cap, cap); /* no growth while they arrive */
  if (load(&kd) < 0.7499 || load(&kd) > 0.75)
    fail_msg("presized for %zu keys: load %.4f, want 0.75", N, load(&kd));
  /* Lookups at that load stay within 10% of the ideal hash's probes. */
  double m = mean_probes(&kd, N, mkey);
  if (m > knuth(load(&kd)) * 1.10) fail_msg("mean probes %.3f at load %.3f", m, load(&kd));
  /* A small presize on top grows by half at least. */
  assert_int_equal(bc_kd_presize(&kd, 10), 0);
  assert_true(kd.cap >= cap + cap / 2);
  /* Presizing for fewer keys than fit changes nothing. */
  cap = kd.cap;
  assert_int_equal(bc_kd_presize(&kd, 1), 0);
  assert_int_equal(kd.cap, cap);
  bc_kd_free(&kd);
}

/* ---------------------------------------------------- deleted markers */

static void test_sweep_deleted(void **state) {
  (void)state;
  bc_keydir kd;
  assert_int_equal(bc_kd_init(&kd, 4242), 0);
  unsigned char k[80];
  const size_t N = 20000;
  size_t freed = 0;
  for (size_t i = 0; i < N; i++) {
    size_t kl = mkey(k, i);
    bc_entry *e = bc_kd_add(&kd, k, kl);
    assert_non_null(e);
    int del = i % 4 == 1;
    bc_e_set(e, i + 1, del ? 0 : 9, 1, i, 5, del);
    if (del) freed++;
  }
  size_t before = kd.heap_bytes;
  assert_int_equal(bc_kd_sweep_deleted(&kd), 0);
  assert_int_equal(kd.count, N - N / 4);
  assert_int_equal(freed, N / 4);
  /* The freed entries' memory stays in the arena, on its free lists: adding
  ** the same number of same-size keys again takes no new memory. */
  assert_int_equal(kd.heap_bytes, before);
  for (size_t i = 1; i < N; i += 4) {
    size_t kl = mkey(k, i);
    k[0] ^= 0x40; /* a different key of the same length */
    assert_non_null(bc_kd_add(&kd, k, kl));
  }
  assert_int_equal(kd.heap_bytes, before);
  for (size_t i = 1; i < N; i += 4) {
    size_t kl = mkey(k, i);
    k[0] ^= 0x40;
    bc_kd_remove(&kd, bc_kd_get(&kd, k, kl));
  }
  for (size_t i = 0; i < N; i++) {
    size_t kl = mkey(k, i);
    bc_entry *e = bc_kd_get(&kd, k, kl);
    if (i % 4 == 1) {
      assert_null(e);
    } else {
      assert_non_null(e);
      assert_true(bc_e_seq(e) == i + 1);
      assert_int_equal(bc_e_meta(e), 9);
    }
  }
  bc_kd_free(&kd);
}

/* The packed fields hold their full ranges and do not bleed into each other. */
static void test_entry_packing(void **state) {
  (void)state;
  bc_keydir kd;
  assert_int_equal(bc_kd_init(&kd, 5), 0);
  unsigned char *big = calloc(1, BC_MAX_KEY_SIZE);
  assert_non_null(big);
  bc_entry *e = bc_kd_add(&kd, big, BC_MAX_KEY_SIZE);
  assert_non_null(e);
  assert_int_equal(bc_e_klen(e), BC_MAX_KEY_SIZE);
  bc_e_set(e, BC_MAX_SEQ, 0xFF, UINT32_MAX, BC_MAX_OFFSET, UINT32_MAX, 0);
  assert_true(bc_e_seq(e) == BC_MAX_SEQ);
  assert_int_equal(bc_e_meta(e), 0xFF);
  assert_true(bc_e_off(e) == BC_MAX_OFFSET);
  assert_int_equal(bc_e_klen(e), BC_MAX_KEY_SIZE);
  assert_int_equal(e->file_id, UINT32_MAX);
  assert_int_equal(e->vsize, UINT32_MAX);
  assert_false(bc_e_deleted(e));
  bc_e_set(e, 1, 0, 1, 0, 0, 1);
  assert_true(bc_e_deleted(e));
  assert_int_equal(bc_e_klen(e), BC_MAX_KEY_SIZE);
  assert_true(bc_e_seq(e) == 1);
  assert_int_equal(bc_e_meta(e), 0);
  assert_true(bc_e_off(e) == 0);
  bc_e_set(e, 2, 1, 1, 1, 1, 0);
  assert_false(bc_e_deleted(e));
  assert_ptr_equal(bc_kd_get(&kd, big, BC_MAX_KEY_SIZE), e);
  free(big);
  bc_kd_free(&kd);
}

/* --------------------------------------------------------------- memory */

static size_t heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

static void test_memory_per_key(void **state) {
  (void)state;
  const size_t N = UNDER_ASAN ? 200000 : 1000000;
  bc_keydir kd;
  malloc_trim(0);
  size_t before = heap_in_use();
  assert_int_equal(bc_kd_init(&kd, 0xabc), 0);
  unsigned char k[16];
  for (size_t i = 0; i < N; i++) {
    uint64_t a = i * 0x9E3779B97F4A7C15ull, b = i;
    memcpy(k, &a, 8);
    memcpy(k + 8, &b, 8);
    bc_entry *e = bc_kd_add(&kd, k, sizeof k);
    assert_non_null(e);
    bc_e_set(e, i + 1, 0, 1, 32 + i * 64, 16, 0);
  }
  size_t after = heap_in_use();
  assert_int_equal(kd.count, N);
  double self = (double)kd.heap_bytes / (double)N;
  if (!UNDER_ASAN) {
    double per = (double)(after - before) / (double)N;
    print_message("keydir: %.1f bytes/key (key 16 + %.1f)\n", per, per - 16.0);
    /* 24-byte entry (16-byte keys need no padding in 4-byte units), 5 / 0.742
    ** bytes of slot and tag (1M keys in 1,347,984 slots), the arena's last
    ** chunk partly used: key + 30.9. */
    if (per > 16.0 + 31.2)
      fail_msg("keydir costs %.1f bytes per 16-byte key, limit key + 31.2", per);
    /* heap_bytes (bc_stats.keydir_bytes) counts the requested bytes: below
    ** the real cost by at most the malloc chunk overhead. */
    if (self > per || self < per - 16.0)
      fail_msg("keydir heap_bytes says %.1f bytes/key, mallinfo2 %.1f", self, per);
  } else {
    /* ASan's allocator does not report through mallinfo2. */
    print_message("keydir: (ASan build: mallinfo2 not meaningful; heap_bytes says "
                  "%.1f bytes/key = key 16 + %.1f)\n", self, self - 16.0);
    /* 200,000 keys in 399,403 slots (load 0.5): 24 + 10.0 + 0.6 of the last
    ** chunk's unused part (key + 34.6). */
    if (self > 16.0 + 34.8) fail_msg("keydir heap_bytes %.1f bytes per key", self);
  }
  bc_kd_free(&kd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_add_get_unlink_100k),
      cmocka_unit_test(test_backward_shift_random),
      cmocka_unit_test(test_unlink_link),
      cmocka_unit_test(test_empty_key),
      cmocka_unit_test(test_keys_differing_in_one_byte),
      cmocka_unit_test(test_probes_stay_small),
      cmocka_unit_test(test_presize_exact),
      cmocka_unit_test(test_sweep_deleted),
      cmocka_unit_test(test_entry_packing),
      cmocka_unit_test(test_memory_per_key),
  };
  return cmocka_run_group_tests_name("keydir", tests, NULL, NULL);
}
