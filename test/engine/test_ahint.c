/*
** test_ahint.c -- the active file's hint (active.c): built as records are
** appended, it does not stay in memory until rotation but spills to
** <id>.hint.tmp, and the hint sealed from that at rotation is byte for byte
** the hint a scan of the file builds; the CRC combination that lets the
** trailer cover a header written last; and the CRC leaving no dirty vector
** state behind (the spills run it every few milliseconds).
*/
#include "testutil.h"

/* bc_crc32_combine against zlib's crc32 of the concatenation. */
static void test_crc32_combine(void **state) {
  (void)state;
  static unsigned char buf[70000];
  uint64_t x = 12345;
  for (size_t i = 0; i < sizeof buf; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    buf[i] = (unsigned char)(x >> 56);
  }
  const size_t lens[] = {0, 1, 3, 8, 32, 255, 256, 257, 4096, 65537};
  for (size_t a = 0; a < sizeof lens / sizeof lens[0]; a++)
    for (size_t b = 0; b < sizeof lens / sizeof lens[0]; b++) {
      size_t na = lens[a] > 4096 ? 4096 : lens[a], nb = lens[b];
      uint32_t want = (uint32_t)crc32(0, buf, (uInt)(na + nb));
      uint32_t got = bc_crc32_combine(bc_crc32(0, buf, na), bc_crc32(0, buf + na, nb), nb);
      if (got != want)
        fail_msg("crc32_combine of %zu + %zu bytes: %08x, zlib %08x", na, nb, got, want);
    }
}

#if defined(__x86_64__)
#include <cpuid.h>
/* XINUSE (XGETBV with ECX = 1): which parts of the extended register state
** are not in their initial configuration; 0 when the CPU cannot tell. */
static uint64_t xinuse(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_AVX)) return 0;
  if (!__get_cpuid_count(0xD, 1, &a, &b, &c, &d) || !(a & 4)) return 0;
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(1));
  return (uint64_t)hi << 32 | lo;
}
#else
static uint64_t xinuse(void) { return 0; }
#endif

/* A CRC of 256 bytes or more (ISA-L's folding code, with 256- or 512-bit
** registers) must not return with the upper halves of the vector registers
** dirty: until something clears them, every legacy-SSE instruction the
** process runs pays a transition penalty.  Measured before: 1M batched
** puts took 1.05 s instead of 0.41 s once a CRC of that size ran every few
** milliseconds, and 0.77 s with one per rotation. */
static void test_crc_leaves_vector_state_clean(void **state) {
  (void)state;
  static unsigned char buf[4096];
  memset(buf, 0x5a, sizeof buf);
  volatile uint32_t c = bc_crc32(0, buf, sizeof buf);
  (void)c;
  uint64_t in_use = xinuse();
  /* Bit 2: YMM upper halves; bit 6: ZMM0-15 upper halves. */
  if (in_use & ((1u << 2) | (1u << 6)))
    fail_msg("after bc_crc32 of 4096 bytes the upper vector state is in use "
             "(XINUSE %#llx)", (unsigned long long)in_use);
}

static bc_store *open_store(const char *dir, int create) {
  bc_options o;
  bc_options_init(&o);
  o.create = create;
  o.sync = BC_SYNC_OFF;
  o.max_file_size = 4u << 20;
  bc_store *s = NULL;
  char err[512];
  if (bc_open(dir, &o, &s, err, sizeof err) != BC_OK) fail_msg("open: %s", err);
  return s;
}

static size_t key_of(char *k, unsigned i) { return (size_t)snprintf(k, 32, "key%013u", i); }

/* Standalone puts, deletes and transactions (COMMIT markers in the hint). */
static void write_some(bc_store *s, unsigned from, unsigned n) {
  char k[32], v[64];
  memset(v, 'v', sizeof v);
  for (unsigned i = from; i < from + n; i++) {
    size_t kl = key_of(k, i);
    if (i % 97 == 0) {
      bc_txn *t;
      assert_int_equal(bc_txn_begin(s, &t), BC_OK);
      assert_int_equal(bc_txn_put(t, k, kl, 1, v, 50), BC_OK);
      assert_int_equal(bc_txn_commit(t), BC_OK);
    } else {
      assert_int_equal(bc_put(s, k, kl, 0, v, 50), BC_OK);
    }
    if (i % 10 == 3) assert_int_equal(bc_delete(s, k, kl), BC_OK);
  }
}

static unsigned count_keys(unsigned n) {
  unsigned live = 0;
  for (unsigned i = 0; i < n; i++) live += i % 10 != 3;
  return live;
}

static void test_spills_and_seals(void **state) {
  tu_fix *fx = *state;
  char dir[PATH_MAX], path[PATH_MAX], moved[PATH_MAX];
  tu_path(dir, "%s/store", fx->base);
  bc_store *s = open_store(dir, 1);
  /* 30,000 records of 98 bytes (2.9 MB, one file): 56 bytes of hint entry
  ** each, 1.7 MB in all, which used to be held until rotation. */
  write_some(s, 0, 27000);
  assert_int_equal(bc_sync(s), BC_OK);
  uint32_t first = s->active_id;
  assert_true(s->ahint_id == first);
  if (s->ahint.cap > 512u * 1024u)
    fail_msg("the active file's in-memory hint holds %zu bytes", s->ahint.cap);
  tu_path(path, "%s/%010u.hint.tmp", dir, first);
  assert_true(tu_exists(path));
  /* On until the file rotates. */
  unsigned n = 27000;
  while (s->active_id == first) {
    write_some(s, n, 100);
    n += 100;
  }
  assert_false(tu_exists(path));
  tu_path(path, "%s/%010u.hint", dir, first);
  assert_true(tu_exists(path));
  bc_file *f = bc_file_get(s, first);
  assert_non_null(f);
  assert_true(f->has_hint);
  size_t len, len2;
  unsigned char *sealed = tu_read_file(path, &len);
  assert_int_equal(f->hint_size, len);
  /* What a scan of the sealed file builds. */
  tu_path(moved, "%s/spilled.bak", fx->base);
  assert_int_equal(rename(path, moved), 0);
  assert_int_equal(bc_hint_create(s, f, 0), BC_OK);
  unsigned char *scanned = tu_read_file(path, &len2);
  assert_int_equal(len, len2);
  assert_memory_equal(sealed, scanned, len);
  free(sealed);
  free(scanned);
  /* Closing with a spilled active file leaves no .hint.tmp behind. */
  write_some(s, n, 5000);
  n += 5000;
  uint32_t second = s->active_id;
  tu_path(path, "%s/%010u.hint.tmp", dir, second);
  assert_true(tu_exists(path));
  assert_int_equal(bc_close(s), BC_OK);
  assert_false(tu_exists(path));
  /* Reopened from the sealed hint and a scan of the tail: every key. */
  s = open_store(dir, 0);
  assert_int_equal(bc_count(s), count_keys(n));
  bc_stats st;
  assert_int_equal(bc_stats_get(s, &st), BC_OK);
  assert_true(st.hint_files >= 1);
  char k[32];
  for (unsigned i = 0; i < n; i += 7) {
    size_t kl = key_of(k, i);
    bc_info info;
    bc_status rc = bc_lookup(s, k, kl, &info);
    assert_int_equal(rc, i % 10 == 3 ? BC_NOTFOUND : BC_OK);
  }
  assert_int_equal(bc_close(s), BC_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc32_combine),
      cmocka_unit_test(test_crc_leaves_vector_state_clean),
      TU_TEST(test_spills_and_seals),
  };
  return cmocka_run_group_tests_name("ahint", tests, NULL, NULL);
}
