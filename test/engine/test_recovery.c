/*
** test_recovery.c -- what bc_open does with a store that was damaged or cut
** short on purpose (docs/DESIGN.md section 7.3; docs/FORMAT.md
** "Recovery"): torn tails and trailing garbage, flipped bytes in sealed
** files, damaged and missing hint files, tombstones across files, a crash
** while a data file was being created, leftovers of unfinished merges.
*/
#include "testutil.h"

/* ------------------------------------------------------------ helpers */

typedef struct rinfo {
  uint64_t off;
  bc_rec r;
  char key[64];
} rinfo;

/* The records of a data file, in order (stops at the first bad one). */
static size_t scan_records(const char *path, rinfo *out, size_t cap) {
  size_t len;
  unsigned char *d = tu_read_file(path, &len);
  size_t n = 0, off = BC_FILE_HEADER_SIZE;
  while (off + BC_REC_HEADER_SIZE <= len && n < cap) {
    bc_rec r;
    uint32_t crc;
    if (bc_rec_decode(d + off, &r, &crc) != 0) break;
    size_t rs = (size_t)bc_rec_size(r.klen, r.vlen);
    if (off + rs > len || !bc_rec_crc_ok(d + off, &r, crc)) break;
    out[n].off = off;
    out[n].r = r;
    size_t kl = r.klen < 63 ? r.klen : 63;
    memcpy(out[n].key, d + off + BC_REC_HEADER_SIZE, kl);
    out[n].key[kl] = 0;
    n++;
    off += rs;
  }
  free(d);
  return n;
}

/* Index of a "key:NNNNNN" key, or (size_t)-1. */
static size_t key_index(const char *k) {
  size_t i;
  return sscanf(k, "key:%zu", &i) == 1 ? i : (size_t)-1;
}

static void data_path(char out[PATH_MAX], const char *dir, uint32_t id) {
  tu_path(out, "%s/%010u.data", dir, id);
}
static void hint_path(char out[PATH_MAX], const char *dir, uint32_t id) {
  tu_path(out, "%s/%010u.hint", dir, id);
}

/* Store in dir: keys 0..n-1 at version 1, every 4th overwritten (v2),
** every 7th deleted; rotated at 4096 bytes. */
static void build_store(const char *dir, tu_model *m, size_t n) {
  tu_model_init(m, n);
  bc_store *s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
  for (size_t i = 0; i < n; i++) TU_OK(tu_put_ver(s, m, i, 1, 20, 120));
  for (size_t i = 0; i < n; i += 4) TU_OK(tu_put_ver(s, m, i, 2, 20, 120));
  for (size_t i = 0; i < n; i += 7) TU_OK(tu_del(s, m, i));
  assert_int_equal(bc_close(s), BC_OK);
}

/* ----------------------------------------------------------- torn tails */

/* Cut the single data file inside its last record at several points. */
static void test_torn_tail_cut(void **state) {
  tu_fix *fx = *state;
  for (int variant = 0; variant < 6; variant++) {
    char dir[PATH_MAX], p[PATH_MAX];
    tu_path(dir, "%s/s%d", fx->base, variant);
    tu_model m;
    tu_model_init(&m, 120);
    bc_store *s = tu_open(dir, 0, BC_SYNC_FULL, NULL);
    for (size_t i = 0; i < 100; i++) TU_OK(tu_put_ver(s, &m, i, 1, 10, 90));
    TU_OK(bc_sync(s));
    tu_model before;
    tu_model_copy(&before, &m);
    /* The last record overwrites key 3: after the cut key 3 is v1 again. */
    TU_OK(tu_put_ver(s, &m, 3, 2, 500, 1));
    assert_int_equal(bc_close(s), BC_OK);

    data_path(p, dir, 1);
    long long size = tu_file_size(p);
    long long rec = (long long)bc_rec_size(10, 500);
    /* Cut points inside the last record: its first byte only, mid header,
    ** mid key, mid value, all but its last byte, and all but 1 byte of its
    ** header. */
    const long long keep[] = {1, 16, 32 + 5, 32 + 10 + 250, rec - 1, 31};
    tu_truncate(p, size - rec + keep[variant]);

    s = tu_open(dir, 0, BC_SYNC_FULL, NULL);
    bc_stats st = tu_stats(s);
    assert_true(st.truncated_bytes == (uint64_t)keep[variant]);
    assert_int_equal(st.corrupt, 0);
    assert_int_equal(tu_file_size(p), size - rec);
    tu_model_check(s, &before, "after the torn tail");
    /* New writes work and persist. */
    for (size_t i = 100; i < 120; i++) TU_OK(tu_put_ver(s, &before, i, 1, 10, 90));
    TU_OK(tu_put_ver(s, &before, 3, 3, 10, 90));
    TU_OK(tu_del(s, &before, 5));
    TU_OK(bc_sync(s));
    assert_int_equal(bc_close(s), BC_OK);
    s = tu_open(dir, 0, BC_SYNC_FULL, NULL);
    assert_int_equal(tu_stats(s).truncated_bytes, 0);
    tu_model_check(s, &before, "after writes past the torn tail");
    assert_int_equal(bc_close(s), BC_OK);
    tu_model_free(&m);
    tu_model_free(&before);
  }
}

/* Garbage after the last good record is a torn tail too. */
/* Issue 4: a torn tail at every byte offset of the last record.  For each
** cut the store reopens with exactly the records before it, the cut bytes
** counted as truncated, and takes writes again. */
static void test_torn_tail_every_byte(void **state) {
  tu_fix *fx = *state;
  char dir[PATH_MAX], p[PATH_MAX];
  tu_path(dir, "%s/every", fx->base);
  tu_model m;
  tu_model_init(&m, 60);
  bc_store *s = tu_open(dir, 0, BC_SYNC_OFF, NULL);
  for (size_t i = 0; i < 50; i++) TU_OK(tu_put_ver(s, &m, i, 1, 10, 40));
  tu_model before;
  tu_model_copy(&before, &m);
  TU_OK(tu_put_ver(s, &m, 7, 2, 300, 1)); /* the last record: key 7 again */
  assert_int_equal(bc_close(s), BC_OK);
  data_path(p, dir, 1);
  size_t len;
  unsigned char *whole = tu_read_file(p, &len);
  size_t rec = (size_t)bc_rec_size(10, 300);
  assert_true(len > rec);
  for (size_t keep = 0; keep < rec; keep++) {
    tu_write_file(p, whole, len - rec + keep);
    s = tu_open(dir, 0, BC_SYNC_OFF, NULL);
    bc_stats st = tu_stats(s);
    if (st.truncated_bytes != keep || st.corrupt != 0)
      fail_msg("cut keeping %zu of %zu bytes: truncated %llu, corrupt %llu", keep,
               rec, (unsigned long long)st.truncated_bytes,
               (unsigned long long)st.corrupt);
    tu_model_check(s, &before, "after a torn last record");
    if (keep % 64 == 0) {
      /* Writes go on after the cut and survive another reopen. */
      tu_model after;
      tu_model_copy(&after, &before);
      TU_OK(tu_put_ver(s, &after, 8, 3, 10, 20));
      assert_int_equal(bc_close(s), BC_OK);
      s = tu_open(dir, 0, BC_SYNC_OFF, NULL);
      tu_model_check(s, &after, "a write after the cut");
      tu_model_free(&after);
    }
    assert_int_equal(bc_close(s), BC_OK);
  }
  free(whole);
  tu_model_free(&before);
  tu_model_free(&m);
}

static void test_torn_tail_garbage(void **state) {
  tu_fix *fx = *state;
  for (int variant = 0; variant < 5; variant++) {
    char dir[PATH_MAX], p[PATH_MAX];
    tu_path(dir, "%s/g%d", fx->base, variant);
    tu_model m;
    tu_model_init(&m, 60);
    bc_store *s = tu_open(dir, 0, BC_SYNC_OFF, NULL);
    for (size_t i = 0; i < 50; i++) TU_OK(tu_put_ver(s, &m, i, 1, 0, 200));
    assert_int_equal(bc_close(s), BC_OK);
    data_path(p, dir, 1);
    long long size = tu_file_size(p);
    unsigned char junk[300];
    size_t n = 0;
    switch (variant) {
      case 0: /* random bytes */
        tu_fill(junk, 100, 77, 77);
        n = 100;
        break;
      case 1: /* fewer bytes than a header */
        tu_fill(junk, 10, 78, 78);
        n = 10;
        break;
      case 2: /* zeros (a preallocated or zero-filled tail) */
        memset(junk, 0, 64);
        n = 64;
        break;
      case 3: { /* a plausible header whose record runs past the end */
        bc_rec r = {BC_REC_PUT, 0, 1000, 0, 3, 1000};
        bc_rec_encode(junk, &r, "abc", NULL);
        memcpy(junk + 32, "abc", 3);
        n = 40;
        break;
      }
      case 4: { /* a whole record with a bad CRC */
        unsigned char v[20];
        memset(v, 'v', sizeof v);
        bc_rec r = {BC_REC_PUT, 0, 1000, 0, 3, sizeof v};
        bc_rec_encode(junk, &r, "abc", v);
        memcpy(junk + 32, "abc", 3);
        memcpy(junk + 35, v, sizeof v);
        junk[40] ^= 1;
        n = 32 + 3 + sizeof v;
        break;
      }
    }
    tu_append_file(p, junk, n);
    s = tu_open(dir, 0, BC_SYNC_OFF, NULL);
    assert_true(tu_stats(s).truncated_bytes == n);
    assert_int_equal(tu_file_size(p), size);
    tu_model_check(s, &m, "after garbage");
    assert_int_equal(bc_lookup(s, "abc", 3, NULL), BC_NOTFOUND);
    TU_OK(tu_put_ver(s, &m, 55, 1, 0, 200));
    TU_OK(tu_del(s, &m, 1));
    assert_int_equal(bc_close(s), BC_OK);
    s = tu_open(dir, 0, BC_SYNC_OFF, NULL);
    assert_int_equal(tu_stats(s).truncated_bytes, 0);
    tu_model_check(s, &m, "after writes past the garbage");
    assert_int_equal(bc_close(s), BC_OK);
    tu_model_free(&m);
  }
}

/* Many files: the tear is in the newest; the sealed files are untouched. */
static void test_torn_tail_many_files(void **state) {
  tu_fix *fx = *state;
  tu_model m;
  tu_model_init(&m, 400);
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  for (size_t i = 0; i < 300; i++) TU_OK(tu_put_ver(s, &m, i, 1, 20, 100));
  tu_model before;
  tu_model_copy(&before, &m);
  TU_OK(tu_put_ver(s, &m, 7, 9, 60, 1)); /* the last record */
  uint32_t active = (uint32_t)tu_stats(s).active_file_id;
  assert_true(active > 5);
  assert_int_equal(bc_close(s), BC_OK);
  {
    char p[PATH_MAX];
    data_path(p, fx->base, active);
    tu_truncate(p, tu_file_size(p) - 20);
  }
  uint32_t ids[256];
  size_t n = tu_data_ids(fx->base, ids, 256);
  assert_int_equal(ids[n - 1], active);
  unsigned long sealed_crc[256];
  for (size_t i = 0; i + 1 < n; i++) {
    char p[PATH_MAX];
    size_t l;
    data_path(p, fx->base, ids[i]);
    unsigned char *d = tu_read_file(p, &l);
    sealed_crc[i] = crc32(0, d, (uInt)l);
    free(d);
  }
  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  bc_stats st = tu_stats(s);
  assert_true(st.truncated_bytes == bc_rec_size(10, 60) - 20);
  assert_int_equal(st.corrupt, 0);
  tu_model_check(s, &before, "after a torn tail in the newest of many files");
  for (size_t i = 300; i < 400; i++) TU_OK(tu_put_ver(s, &before, i, 1, 20, 100));
  assert_int_equal(bc_close(s), BC_OK);
  for (size_t i = 0; i + 1 < n; i++) {
    char p[PATH_MAX];
    size_t l;
    data_path(p, fx->base, ids[i]);
    unsigned char *d = tu_read_file(p, &l);
    assert_true(sealed_crc[i] == crc32(0, d, (uInt)l));
    free(d);
  }
  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  tu_model_check(s, &before, "second reopen");
  assert_int_equal(bc_close(s), BC_OK);
  tu_model_free(&m);
  tu_model_free(&before);
}

/* A read-only open sees the records before a tear and changes nothing. */
static void test_torn_tail_read_only(void **state) {
  tu_fix *fx = *state;
  tu_model m;
  tu_model_init(&m, 30);
  bc_store *s = tu_open(fx->base, 0, BC_SYNC_OFF, NULL);
  for (size_t i = 0; i < 20; i++) TU_OK(tu_put_ver(s, &m, i, 1, 10, 10));
  assert_int_equal(bc_close(s), BC_OK);
  char p[PATH_MAX];
  data_path(p, fx->base, 1);
  tu_append_file(p, "torn!", 5);
  long long size = tu_file_size(p);
  bc_options o;
  bc_options_init(&o);
  o.read_only = 1;
  s = tu_open_opts(fx->base, &o);
  tu_model_check(s, &m, "read-only over a torn tail");
  assert_int_equal(tu_stats(s).truncated_bytes, 0);
  assert_int_equal(bc_close(s), BC_OK);
  assert_int_equal(tu_file_size(p), size);
  s = tu_open(fx->base, 0, BC_SYNC_OFF, NULL);
  assert_int_equal(tu_stats(s).truncated_bytes, 5);
  tu_model_check(s, &m, "writer over a torn tail");
  assert_int_equal(bc_close(s), BC_OK);
  tu_model_free(&m);
}

/* ------------------------------------------------ damage in sealed files */

/* A store of 300 distinct keys in many files; returns the record list of
** sealed file `id` and the index (in it) of a record in its middle. */
static size_t damage_setup(const char *dir, tu_model *m, uint32_t id, rinfo *recs,
                           size_t *nrecs) {
  tu_model_init(m, 300);
  bc_store *s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
  for (size_t i = 0; i < 300; i++) TU_OK(tu_put_ver(s, m, i, 1, 40, 80));
  assert_true(tu_stats(s).active_file_id > id + 1);
  assert_int_equal(bc_close(s), BC_OK);
  char p[PATH_MAX];
  data_path(p, dir, id);
  *nrecs = scan_records(p, recs, 256);
  assert_true(*nrecs >= 5);
  return *nrecs / 2;
}

static void test_flipped_value_sealed_scanned(void **state) {
  tu_fix *fx = *state;
  tu_model m;
  rinfo recs[256];
  size_t n, j = damage_setup(fx->base, &m, 3, recs, &n);
  char p[PATH_MAX], h[PATH_MAX];
  data_path(p, fx->base, 3);
  hint_path(h, fx->base, 3);
  size_t victim = key_index(recs[j].key);
  tu_flip(p, (long long)(recs[j].off + 32 + recs[j].r.klen + 3), 0x40);
  assert_int_equal(unlink(h), 0); /* so the data file is scanned */
  size_t l;
  unsigned char *d = tu_read_file(p, &l);
  unsigned long crc = crc32(0, d, (uInt)l);
  free(d);

  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  assert_true(tu_stats(s).corrupt >= 1);
  bc_buf b = {0};
  const void *v = NULL;
  bc_info info;
  bc_status st = bc_get(s, recs[j].key, recs[j].r.klen, &b, &v, &info);
  /* Never the damaged value.  (docs/FORMAT.md: the scan of a sealed file
  ** stops at the bad record, so the key is not loaded: BC_NOTFOUND; a
  ** keydir entry for it would give BC_CORRUPT.) */
  if (st != BC_NOTFOUND && st != BC_CORRUPT)
    fail_msg("damaged key %zu: bc_get gave %s", victim, bc_status_name(st));
  /* Every key of every other file, and the ones before it in its file. */
  char in_file[300] = {0};
  for (size_t i = 0; i < n; i++) in_file[key_index(recs[i].key)] = 1;
  tu_model other;
  tu_model_copy(&other, &m);
  for (size_t i = 0; i < 300; i++)
    if (in_file[i]) tu_model_del(&other, i);
  for (size_t i = 0; i < 300; i++) {
    if (!other.v[i]) continue;
    char k[32];
    size_t kl = tu_key(k, i);
    TU_OK(bc_get(s, k, kl, &b, &v, &info));
    assert_int_equal(info.value_size, other.len[i]);
    assert_memory_equal(v, other.v[i], other.len[i]);
  }
  for (size_t i = 0; i < j; i++) {
    size_t ki = key_index(recs[i].key);
    TU_OK(bc_get(s, recs[i].key, recs[i].r.klen, &b, &v, &info));
    assert_memory_equal(v, m.v[ki], m.len[ki]);
  }
  /* Writes still work; the sealed file was not modified. */
  TU_OK(bc_put(s, "new", 3, 0, "value", 5));
  assert_int_equal(bc_close(s), BC_OK);
  d = tu_read_file(p, &l);
  assert_true(crc == crc32(0, d, (uInt)l));
  free(d);
  bc_buf_free(&b);
  tu_model_free(&other);
  tu_model_free(&m);
}

static void test_flipped_value_sealed_with_hint(void **state) {
  tu_fix *fx = *state;
  tu_model m;
  rinfo recs[256];
  size_t n, j = damage_setup(fx->base, &m, 3, recs, &n);
  char p[PATH_MAX], h[PATH_MAX];
  data_path(p, fx->base, 3);
  hint_path(h, fx->base, 3);
  assert_true(tu_exists(h));
  size_t victim = key_index(recs[j].key);
  tu_flip(p, (long long)(recs[j].off + 32 + recs[j].r.klen + 3), 0x40);

  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  bc_buf b = {0};
  const void *v = NULL;
  bc_info info;
  /* The hint put the key in the keydir; the read verifies the CRC. */
  TU_OK(bc_lookup(s, recs[j].key, recs[j].r.klen, &info));
  assert_int_equal(bc_get(s, recs[j].key, recs[j].r.klen, &b, &v, &info), BC_CORRUPT);
  assert_non_null(strstr(bc_errmsg(s), "0000000003.data"));
  assert_non_null(strstr(bc_errmsg(s), "offset"));
  /* Every other key, in its file and elsewhere. */
  tu_model other;
  tu_model_copy(&other, &m);
  tu_model_del(&other, victim);
  for (size_t i = 0; i < 300; i++) {
    if (!other.v[i]) continue;
    char k[32];
    size_t kl = tu_key(k, i);
    TU_OK(bc_get(s, k, kl, &b, &v, &info));
    assert_memory_equal(v, other.v[i], other.len[i]);
  }
  /* A merge meets the damaged live record: its file is left out, kept as
  ** it is, and the rest merged. */
  size_t l0;
  unsigned char *d0 = tu_read_file(p, &l0);
  assert_true(tu_stats(s).damaged_files == 0); /* the hint hid it */
  TU_OK(bc_merge(s, NULL));
  assert_true(tu_stats(s).damaged_files == 1);
  assert_int_equal(tu_count_files(fx->base, ".data.merging"), 0);
  assert_int_equal(tu_count_files(fx->base, ".hint.merging"), 0);
  size_t l1;
  unsigned char *d1 = tu_read_file(p, &l1);
  assert_true(l0 == l1 && memcmp(d0, d1, l0) == 0);
  free(d0);
  free(d1);
  assert_true(tu_exists(h));
  assert_int_equal(bc_get(s, recs[j].key, recs[j].r.klen, &b, &v, &info), BC_CORRUPT);
  for (size_t i = 0; i < 300; i++) {
    if (!other.v[i]) continue;
    char k[32];
    size_t kl = tu_key(k, i);
    TU_OK(bc_get(s, k, kl, &b, &v, &info));
    assert_memory_equal(v, other.v[i], other.len[i]);
  }
  /* Overwriting the damaged key heals it. */
  TU_OK(tu_put_ver(s, &other, victim, 5, 10, 10));
  tu_model_check(s, &other, "after healing the damaged key");
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  tu_model_check(s, &other, "after reopen");
  assert_int_equal(bc_close(s), BC_OK);
  bc_buf_free(&b);
  tu_model_free(&other);
  tu_model_free(&m);
}

/* Regression test (a bug this suite found, now fixed): a damaged record in a sealed data file without a (valid) hint ends
** that file's scan (engine/datafile.c:137-139 bc_datafile_walk stops at the
** CRC failure; engine/recovery.c:442-444 then only counts it), so the damaged
** record and every undamaged record after it in the same file are ignored.
** Their keys fall back to older versions in earlier files: the damaged key
** serves its previous value as if current (with the hint: BC_CORRUPT), an
** overwrite is lost (a stale value is served) and a tombstone is lost (a
** deleted key comes back).  docs/DESIGN.md section 7.3: "never returned as
** data;
** everything not damaged stays readable".  With the hint present the same
** store reads correctly, so the answer depends on whether a hint file
** happens to exist. */
static void test_damage_does_not_hide_later_records(void **state) {
  tu_fix *fx = *state;
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  unsigned char fill[200];
  tu_fill(fill, sizeof fill, 1, 1);
  TU_OK(bc_put(s, "X", 1, 0, "X-old", 5));
  TU_OK(bc_put(s, "B", 1, 0, "B-old", 5));
  TU_OK(bc_put(s, "C", 1, 0, "C-old", 5));
  size_t f = 0;
  char k[32];
  while (tu_stats(s).active_file_id == 1) {
    snprintf(k, sizeof k, "fill%zu", f++);
    TU_OK(bc_put(s, k, strlen(k), 0, fill, sizeof fill));
  }
  /* File 2: X's new value (to be damaged), then B's new value and C's
  ** tombstone. */
  TU_OK(bc_put(s, "X", 1, 0, "X-new, the victim", 17));
  TU_OK(bc_put(s, "B", 1, 0, "B-new", 5));
  TU_OK(bc_delete(s, "C", 1));
  while (tu_stats(s).active_file_id == 2) {
    snprintf(k, sizeof k, "fill%zu", f++);
    TU_OK(bc_put(s, k, strlen(k), 0, fill, sizeof fill));
  }
  assert_int_equal(bc_close(s), BC_OK);
  char p[PATH_MAX], h[PATH_MAX];
  data_path(p, fx->base, 2);
  hint_path(h, fx->base, 2);
  rinfo recs[64];
  size_t n = scan_records(p, recs, 64), x = n;
  for (size_t i = 0; i < n; i++)
    if (strcmp(recs[i].key, "X") == 0 && recs[i].r.vlen == 17) x = i;
  assert_true(x < n);
  tu_flip(p, (long long)(recs[x].off + 32 + 1 + 4), 0x01); /* in X's value */

  bc_buf b = {0};
  const void *v;
  /* With the hint: X damaged, B new, C deleted. */
  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  assert_int_equal(bc_get(s, "X", 1, &b, &v, NULL), BC_CORRUPT);
  TU_OK(bc_get(s, "B", 1, &b, &v, NULL));
  assert_memory_equal(v, "B-new", 5);
  assert_int_equal(bc_get(s, "C", 1, &b, &v, NULL), BC_NOTFOUND);
  assert_int_equal(bc_close(s), BC_OK);

  /* Without it: the same answers are required. */
  assert_int_equal(unlink(h), 0);
  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  assert_true(tu_stats(s).corrupt >= 1);
  char got_x[8] = "", got_b[8] = "", got_c[8] = "";
  bc_status st_x = bc_get(s, "X", 1, &b, &v, NULL);
  if (st_x == BC_OK) snprintf(got_x, sizeof got_x, "%.5s", (const char *)v);
  bc_status st_b = bc_get(s, "B", 1, &b, &v, NULL);
  if (st_b == BC_OK) snprintf(got_b, sizeof got_b, "%.5s", (const char *)v);
  bc_status st_c = bc_get(s, "C", 1, &b, &v, NULL);
  if (st_c == BC_OK) snprintf(got_c, sizeof got_c, "%.5s", (const char *)v);
  assert_int_equal(bc_close(s), BC_OK);
  bc_buf_free(&b);
  if (st_x != BC_CORRUPT || st_b != BC_OK || strcmp(got_b, "B-new") != 0 ||
      st_c != BC_NOTFOUND)
    fail_msg("sealed 0000000002.data scanned without its hint: X (damaged) gives %s "
             "'%s' (want BC_CORRUPT, as with the hint), B gives %s '%s' (want 'B-new'), "
             "deleted C gives %s '%s' (want BC_NOTFOUND)", bc_status_name(st_x), got_x,
             bc_status_name(st_b), got_b, bc_status_name(st_c), got_c);
}

/* ------------------------------------------------------- damaged hints */

static void test_damaged_hint_ignored(void **state) {
  tu_fix *fx = *state;
  char tmpl[PATH_MAX];
  tu_path(tmpl, "%s/template", fx->base);
  tu_model m;
  build_store(tmpl, &m, 300);
  bc_store *s = tu_open(tmpl, 4096, BC_SYNC_OFF, NULL);
  bc_stats st0 = tu_stats(s);
  assert_true(st0.hint_files >= 5);
  tu_model_check(s, &m, "template");
  assert_int_equal(bc_close(s), BC_OK);
  char h[PATH_MAX];
  hint_path(h, tmpl, 2);
  long long hsize = tu_file_size(h);
  assert_true(hsize > 200);

  const char *names[] = {"flip header",  "flip key",       "flip offset",   "flip type",
                         "flip trailer", "cut trailer",    "cut half",      "empty",
                         "deleted",      "other file's",   "flip seq"};
  const size_t nv = sizeof names / sizeof *names;
  for (size_t variant = 0; variant < nv; variant++) {
    char dir[PATH_MAX], p[PATH_MAX];
    tu_path(dir, "%s/v%zu", fx->base, variant);
    assert_int_equal(tu_copy_dir(tmpl, dir), 0);
    hint_path(h, dir, 2);
    switch (variant) {
      case 0: tu_flip(h, 13, 0x01); break;                  /* file_id */
      case 1: tu_flip(h, 32 + 40 + 2, 0x01); break;         /* first key */
      case 2: tu_flip(h, 32 + 32, 0x08); break;             /* first offset */
      case 3: tu_flip(h, 32, 0x03); break;                  /* PUT -> TOMBSTONE */
      case 4: tu_flip(h, hsize - 3, 0x10); break;           /* trailer CRC */
      case 5: tu_truncate(h, hsize - 16); break;
      case 6: tu_truncate(h, hsize / 2); break;
      case 7: tu_truncate(h, 0); break;
      case 8: assert_int_equal(unlink(h), 0); break;
      case 9: {                                             /* hint of file 3 */
        char h3[PATH_MAX];
        size_t l;
        hint_path(h3, dir, 3);
        unsigned char *d = tu_read_file(h3, &l);
        tu_write_file(h, d, l);
        free(d);
        break;
      }
      case 10: tu_flip(h, 32 + 16, 0x01); break;            /* first seq */
    }
    data_path(p, dir, 2);
    size_t l;
    unsigned char *d = tu_read_file(p, &l);
    unsigned long crc = crc32(0, d, (uInt)l);
    free(d);
    for (int round = 0; round < 2; round++) {
      s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
      bc_stats st = tu_stats(s);
      char where[64];
      snprintf(where, sizeof where, "hint '%s', open %d", names[variant], round + 1);
      tu_model_check(s, &m, where);
      if (st.hint_files != st0.hint_files - 1)
        fail_msg("%s: %llu hint files in use, want %llu (the damaged one ignored)", where,
                 (unsigned long long)st.hint_files,
                 (unsigned long long)(st0.hint_files - 1));
      assert_int_equal(st.corrupt, 0);
      assert_true(st.next_seq == st0.next_seq);
      assert_int_equal(bc_close(s), BC_OK);
    }
    d = tu_read_file(p, &l);
    assert_true(crc == crc32(0, d, (uInt)l));
    free(d);
  }
  tu_model_free(&m);
}

/* ---------------------------------------------------------- tombstones */

static void test_tombstone_in_later_file(void **state) {
  tu_fix *fx = *state;
  tu_model m;
  tu_model_init(&m, 400);
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  /* Keys 0..99 put in the first files. */
  for (size_t i = 0; i < 100; i++) TU_OK(tu_put_ver(s, &m, i, 1, 50, 50));
  uint64_t first_active = tu_stats(s).active_file_id;
  for (size_t i = 100; i < 300; i++) TU_OK(tu_put_ver(s, &m, i, 1, 50, 50));
  /* Deleted files later; some overwritten in between. */
  for (size_t i = 0; i < 100; i += 3) TU_OK(tu_put_ver(s, &m, i, 2, 50, 50));
  for (size_t i = 0; i < 100; i += 2) TU_OK(tu_del(s, &m, i));
  for (size_t i = 300; i < 400; i++) TU_OK(tu_put_ver(s, &m, i, 1, 50, 50));
  assert_true(tu_stats(s).active_file_id > first_active + 3);
  tu_model_check(s, &m, "before close");
  assert_int_equal(bc_close(s), BC_OK);

  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  tu_model_check(s, &m, "reopen with hints");
  assert_int_equal(bc_close(s), BC_OK);
  uint32_t ids[256];
  size_t n = tu_data_ids(fx->base, ids, 256);
  for (size_t i = 0; i < n; i++) {
    char h[PATH_MAX];
    hint_path(h, fx->base, ids[i]);
    unlink(h);
  }
  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  tu_model_check(s, &m, "reopen scanning every file");

  /* After a merge the surviving puts live in merge outputs, whose ids are
  ** higher than the active file's: a tombstone written now sits in a file
  ** with a LOWER id than the put it deletes. */
  TU_OK(bc_merge(s, NULL));
  uint64_t active = tu_stats(s).active_file_id;
  n = tu_data_ids(fx->base, ids, 256);
  assert_true(ids[n - 1] > active);
  for (size_t i = 1; i < 100; i += 2) TU_OK(tu_del(s, &m, i));
  assert_int_equal(tu_stats(s).active_file_id, active);
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  tu_model_check(s, &m, "tombstone in a lower-id file than the put");
  assert_int_equal(bc_close(s), BC_OK);
  for (size_t i = 0; i < n; i++) {
    char h[PATH_MAX];
    hint_path(h, fx->base, ids[i]);
    unlink(h);
  }
  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  tu_model_check(s, &m, "same, scanning every file");
  /* And a second merge drops them for good. */
  TU_OK(bc_merge(s, NULL));
  tu_model_check(s, &m, "after the second merge");
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  tu_model_check(s, &m, "reopen after the second merge");
  assert_int_equal(bc_close(s), BC_OK);
  tu_model_free(&m);
}

/* ------------------------------------------------------ file creation */

/* A crash while a new active file was being created leaves it empty or with
** part of its header: it is rewritten, nothing else is lost. */
static void test_crash_creating_data_file(void **state) {
  tu_fix *fx = *state;
  for (int variant = 0; variant < 2; variant++) {
    char dir[PATH_MAX], p[PATH_MAX];
    tu_path(dir, "%s/c%d", fx->base, variant);
    tu_model m;
    build_store(dir, &m, 200);
    uint32_t ids[256];
    size_t n = tu_data_ids(dir, ids, 256);
    data_path(p, dir, ids[n - 1] + 1);
    unsigned char hdr[BC_FILE_HEADER_SIZE];
    bc_file_header_encode(hdr, ids[n - 1] + 1, 0);
    tu_write_file(p, hdr, variant == 0 ? 0 : 13);
    bc_store *s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
    bc_stats st = tu_stats(s);
    assert_int_equal(st.truncated_bytes, variant == 0 ? 0 : 13);
    assert_int_equal(st.corrupt, 0);
    tu_model_check(s, &m, "after a crash at file creation");
    assert_int_equal(tu_file_size(p), BC_FILE_HEADER_SIZE);
    TU_OK(tu_put_ver(s, &m, 3, 7, 10, 10));
    assert_int_equal(bc_close(s), BC_OK);
    s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
    tu_model_check(s, &m, "reopen");
    assert_int_equal(tu_stats(s).truncated_bytes, 0);
    assert_int_equal(bc_close(s), BC_OK);
    tu_model_free(&m);
  }
}

/* Regression test (a bug this suite found, now fixed): a flipped byte in the header of a merged data file whose id is above
** the tail's is taken for "a crash while creating the newest file"
** (engine/recovery.c:376, the tail choice `if (!header_ok || !merged) tail =
** id`, then the header rewrite at lines 382-400): the file, with every
** record in it, is truncated to a fresh empty header.  A complete,
** fsync'd merge output cannot have a torn header (it is renamed into place
** only after MERGE commits), so this is damage: it should be counted in
** bc_stats.corrupt and the file left untouched (docs/FORMAT.md Recovery 3). */
static void test_damaged_merged_header_not_rewritten(void **state) {
  tu_fix *fx = *state;
  tu_model m;
  build_store(fx->base, &m, 300);
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  TU_OK(bc_merge(s, NULL));
  uint64_t active = tu_stats(s).active_file_id;
  assert_int_equal(bc_close(s), BC_OK);
  uint32_t ids[256];
  size_t n = tu_data_ids(fx->base, ids, 256);
  assert_true(n >= 3);
  uint32_t victim = ids[n - 1];
  assert_true(victim > active); /* a merge output, newest id */
  char p[PATH_MAX];
  data_path(p, fx->base, victim);
  tu_flip(p, 21, 0x01); /* a reserved byte of the header: only its CRC fails */
  size_t l0;
  unsigned char *d0 = tu_read_file(p, &l0);
  assert_true(l0 > 1000);

  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  bc_stats st = tu_stats(s);
  assert_int_equal(bc_close(s), BC_OK);
  tu_model_free(&m);
  size_t l1;
  unsigned char *d1 = tu_read_file(p, &l1);
  int same = l1 == l0 && memcmp(d0, d1, l0) == 0;
  free(d0);
  free(d1);
  if (!same)
    fail_msg("merged file %010u.data (%zu bytes) with a damaged header was rewritten "
             "to %zu bytes: its records are gone", victim, l0, l1);
  assert_true(st.corrupt >= 1);
  assert_true(st.active_file_id != victim);
}

/* A data file of a newer format refuses the open. */
static void test_newer_format_refused(void **state) {
  tu_fix *fx = *state;
  tu_model m;
  build_store(fx->base, &m, 50);
  char p[PATH_MAX];
  data_path(p, fx->base, 1);
  int fd = open(p, O_RDWR);
  assert_true(fd >= 0);
  unsigned char hdr[BC_FILE_HEADER_SIZE];
  assert_int_equal(pread(fd, hdr, sizeof hdr, 0), (ssize_t)sizeof hdr);
  bc_put_u32(hdr + 8, BC_FORMAT_VERSION + 1);
  bc_put_u32(hdr + 28, (uint32_t)crc32(0, hdr, 28));
  assert_int_equal(pwrite(fd, hdr, sizeof hdr, 0), (ssize_t)sizeof hdr);
  close(fd);
  bc_store *s = NULL;
  char err[512] = "";
  bc_options o;
  bc_options_init(&o);
  assert_int_equal(bc_open(fx->base, &o, &s, err, sizeof err), BC_VERSION);
  assert_null(s);
  assert_non_null(strstr(err, "0000000001.data"));
  o.read_only = 1;
  assert_int_equal(bc_open(fx->base, &o, &s, err, sizeof err), BC_VERSION);
  tu_model_free(&m);
}

/* ------------------------------------------------ transaction markers */

/* Append one record, encoded by record.c, to a data file. */
static void append_rec(const char *path, uint8_t type, uint64_t seq, uint64_t txn,
                       const char *key, const void *val, uint32_t vlen) {
  uint32_t klen = key ? (uint32_t)strlen(key) : 0;
  bc_rec r = {type, 0, seq, txn, klen, vlen};
  size_t n = (size_t)bc_rec_size(klen, vlen);
  unsigned char *p = malloc(n);
  assert_non_null(p);
  bc_rec_encode(p, &r, key, val);
  if (klen) memcpy(p + 32, key, klen);
  if (vlen) memcpy(p + 32 + klen, val, vlen);
  tu_append_file(path, p, n);
  free(p);
}

/* A COMMIT of txn carrying its count of records. */
static void append_commit(const char *path, uint64_t seq, uint64_t txn, uint64_t count) {
  unsigned char n[8];
  bc_put_u64(n, count);
  append_rec(path, BC_REC_COMMIT, seq, txn, NULL, n, 8);
}

static void expect(bc_store *s, const char *key, const char *val, const char *where) {
  bc_buf b = {0};
  const void *v;
  bc_info info;
  bc_status st = bc_get(s, key, strlen(key), &b, &v, &info);
  if (val == NULL) {
    if (st != BC_NOTFOUND) fail_msg("%s: key %s: %s, want BC_NOTFOUND", where, key,
                                    bc_status_name(st));
  } else {
    if (st != BC_OK) fail_msg("%s: key %s: %s, want '%s'", where, key, bc_status_name(st), val);
    if (info.value_size != strlen(val) || memcmp(v, val, strlen(val)) != 0)
      fail_msg("%s: key %s: wrong value, want '%s'", where, key, val);
  }
  bc_buf_free(&b);
}

/* A COMMIT whose record count does not match the pending records (one was
** lost to damage) is not applied at all: a transaction is never applied in
** part (docs/FORMAT.md "Transaction markers"); its keys read BC_CORRUPT
** (docs/FORMAT.md "Damaged files").  Before issue 12 they read absent and
** as their older value. */
static void test_commit_count_mismatch(void **state) {
  tu_fix *fx = *state;
  bc_store *s = tu_open(fx->base, 0, BC_SYNC_OFF, NULL);
  TU_OK(bc_put(s, "base", 4, 0, "base-v", 6)); /* seq 1 */
  assert_int_equal(bc_close(s), BC_OK);
  char p1[PATH_MAX];
  data_path(p1, fx->base, 1);
  append_rec(p1, BC_REC_PUT, 2, 2, "A", "a1", 2);
  append_rec(p1, BC_REC_TOMBSTONE, 3, 2, "base", NULL, 0);
  append_commit(p1, 4, 2, 3); /* claims three records: one is missing */
  append_rec(p1, BC_REC_PUT, 5, 5, "B", "b1", 2);
  append_commit(p1, 6, 5, 1);
  s = tu_open(fx->base, 0, BC_SYNC_OFF, NULL);
  /* The transaction is not applied in part, yet it did commit: the keys it
  ** is known to have written have lost their newest version, and say so
  ** rather than read as absent or as their older value. */
  bc_buf b = {0};
  const void *v;
  assert_int_equal(bc_get(s, "A", 1, &b, &v, NULL), BC_CORRUPT);
  assert_non_null(strstr(bc_errmsg(s), "0000000001.data"));
  assert_int_equal(bc_get(s, "base", 4, &b, &v, NULL), BC_CORRUPT);
  bc_buf_free(&b);
  assert_int_equal(bc_lookup(s, "A", 1, NULL), BC_OK);
  expect(s, "B", "b1", "whole txn");
  bc_stats st = tu_stats(s);
  assert_int_equal(st.corrupt, 1);
  assert_int_equal(st.damaged_files, 1);
  assert_int_equal(st.keys, 3);
  /* The damaged file is not continued, and a merge keeps it. */
  assert_true(st.active_file_id == 2);
  TU_OK(bc_merge(s, NULL));
  char p2[PATH_MAX];
  data_path(p2, fx->base, 1);
  assert_true(tu_exists(p2));
  /* A new write replaces the lost version. */
  TU_OK(bc_put(s, "A", 1, 0, "a2", 2));
  expect(s, "A", "a2", "overwritten");
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(fx->base, 0, BC_SYNC_OFF, NULL);
  expect(s, "A", "a2", "reopened");
  expect(s, "B", "b1", "reopened");
  b = (bc_buf){0};
  assert_int_equal(bc_get(s, "base", 4, &b, &v, NULL), BC_CORRUPT);
  bc_buf_free(&b);
  assert_int_equal(bc_close(s), BC_OK);
}

/* Pending records, COMMIT, ROLLBACK_TO and a transaction spanning files, as
** written by a transactional writer (docs/FORMAT.md "Transaction markers"),
** read back by scanning and from hint files. */
static void test_transaction_markers(void **state) {
  tu_fix *fx = *state;
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  TU_OK(bc_put(s, "base", 4, 0, "base-v", 6)); /* seq 1 */
  assert_true(tu_stats(s).next_seq == 2);
  assert_int_equal(bc_close(s), BC_OK);
  char p1[PATH_MAX];
  data_path(p1, fx->base, 1);
  unsigned char S[8];
  bc_put_u64(S, 6);
  append_rec(p1, BC_REC_PUT, 2, 7, "A", "a1", 2);
  append_rec(p1, BC_REC_PUT, 3, 7, "B", "b1", 2);
  append_rec(p1, BC_REC_PUT, 4, 8, "C", "c1", 2);        /* never committed */
  append_commit(p1, 5, 7, 2);
  append_rec(p1, BC_REC_PUT, 6, 9, "D", "d1", 2);
  append_rec(p1, BC_REC_PUT, 7, 9, "E", "e1", 2);
  append_rec(p1, BC_REC_ROLLBACK_TO, 8, 9, NULL, S, 8); /* drops E (seq 7 > 6) */
  append_rec(p1, BC_REC_PUT, 9, 9, "F", "f1", 2);
  append_commit(p1, 10, 9, 2);                          /* D and F */
  append_rec(p1, BC_REC_TOMBSTONE, 11, 10, "base", NULL, 0);
  append_commit(p1, 12, 10, 1);
  append_rec(p1, BC_REC_PUT, 13, 11, "G", "g1", 2);      /* committed later */
  append_rec(p1, BC_REC_PUT, 14, 0, "H", "h1", 2);       /* standalone */

  const char *names[] = {"A", "B", "C", "D", "E", "F", "G", "H", "base"};
  const char *before[] = {"a1", "b1", NULL, "d1", NULL, "f1", NULL, "h1", NULL};
  const char *after[] = {"a1", "b1", NULL, "d1", NULL, "f1", "g1", "h1", NULL};
  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  for (int i = 0; i < 9; i++) expect(s, names[i], before[i], "scanned");
  assert_int_equal(bc_count(s), 5);
  assert_true(tu_stats(s).next_seq == 15); /* pending records count too */
  assert_int_equal(tu_stats(s).truncated_bytes, 0);
  /* Fill file 1 past max_file_size: it is sealed and gets a hint built from
  ** its records, markers included. */
  unsigned char fill[3000];
  memset(fill, 'f', sizeof fill);
  while (tu_stats(s).active_file_id == 1) TU_OK(bc_put(s, "fill", 4, 0, fill, sizeof fill));
  uint64_t tail = tu_stats(s).active_file_id;
  uint64_t seq = tu_stats(s).next_seq;
  assert_int_equal(bc_close(s), BC_OK);
  char h1[PATH_MAX], pt[PATH_MAX];
  hint_path(h1, fx->base, 1);
  assert_true(tu_exists(h1));
  /* G's COMMIT, in a later file. */
  data_path(pt, fx->base, (uint32_t)tail);
  append_commit(pt, seq, 11, 1);

  for (int round = 0; round < 2; round++) {
    s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
    const char *where = round == 0 ? "from the hint" : "scanned again";
    if (round == 0) assert_true(tu_stats(s).hint_files >= 1);
    for (int i = 0; i < 9; i++) expect(s, names[i], after[i], where);
    assert_int_equal(bc_count(s), 7); /* + G + fill */
    assert_true(tu_stats(s).next_seq == seq + 1);
    /* A merge turns the committed records into standalone ones. */
    if (round == 1) {
      TU_OK(bc_merge(s, NULL));
      for (int i = 0; i < 9; i++) expect(s, names[i], after[i], "merged");
    }
    assert_int_equal(bc_close(s), BC_OK);
    unlink(h1);
  }
  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  for (int i = 0; i < 9; i++) expect(s, names[i], after[i], "reopened after merge");
  assert_int_equal(bc_close(s), BC_OK);
}

/* ------------------------------------------------- power loss (issue 12) */

/* One transaction of (key, value) pairs, committed. */
static void txn_puts(bc_store *s, const char *const *keys, const char *const *vals,
                     const size_t *lens, int n) {
  bc_txn *t;
  TU_OK(bc_txn_begin(s, &t));
  for (int i = 0; i < n; i++)
    TU_OK(bc_txn_put(t, keys[i], strlen(keys[i]), 0, vals[i], lens[i]));
  TU_OK(bc_txn_commit(t));
}

/* Every key of the store reads (a walk with values): no BC_CORRUPT. */
static void walk_reads(bc_store *s, const char *where) {
  bc_iter *it;
  TU_OK(bc_iter_open(s, &it));
  const void *k;
  size_t kl;
  bc_buf b = {0};
  while (bc_iter_next(it, &k, &kl, NULL) == BC_OK) {
    const void *v;
    bc_status st = bc_get(s, k, kl, &b, &v, NULL);
    if (st != BC_OK)
      fail_msg("%s: key '%.*s' reads %s: %s", where, (int)kl, (const char *)k,
               bc_status_name(st), bc_errmsg(s));
  }
  bc_iter_close(it);
  bc_buf_free(&b);
}

/* Overwrite n bytes at off of path with zeros. */
static void zero_range(const char *path, long long off, size_t n) {
  unsigned char z[1024] = {0};
  assert_true(n <= sizeof z);
  int fd = open(path, O_WRONLY);
  assert_true(fd >= 0);
  assert_int_equal(pwrite(fd, z, n, off), (ssize_t)n);
  close(fd);
}

/* The state of the power loss in dir: a and b committed as
** "committed", then a transaction putting a 3,000-byte a and "new" b whose
** second 512-byte sector reached the disk as zeros (its COMMIT never
** returned: power failed before its fdatasync did).  Returns data file 1's
** size before that transaction; *after its size with it. */
static long long torn_last_commit(const char *dir, long long *after) {
  char p[PATH_MAX];
  data_path(p, dir, 1);
  bc_store *s = tu_open(dir, 0, BC_SYNC_FULL, NULL);
  const char *keys[] = {"a", "b"};
  const char *c[] = {"committed", "committed"};
  size_t cl[] = {9, 9};
  txn_puts(s, keys, c, cl, 2);
  long long before = tu_file_size(p);
  char big[3000];
  memset(big, 'N', sizeof big);
  const char *nv[] = {big, "new"};
  size_t nl[] = {sizeof big, 3};
  txn_puts(s, keys, nv, nl, 2);
  *after = tu_file_size(p);
  assert_int_equal(bc_close(s), BC_OK);
  assert_true(*after - before > 1024);
  zero_range(p, before + 512, 512);
  return before;
}

/* The case: a sync=full transaction whose COMMIT never returned
** (power failed before its fdatasync did) left its first record torn -- the
** second 512-byte sector of what it appended reached the disk as zeros --
** and the rest intact.  That is the unsynced tail (docs/FORMAT.md Recovery
** 3), not corruption: the transaction is discarded whole, the committed
** values read, for a writer and a reader, and nothing counts as corrupt.
** (Before the fix: a reads BC_CORRUPT, and so does every full scan.) */
static void test_unsynced_tail_torn_transaction(void **state) {
  tu_fix *fx = *state;
  char p[PATH_MAX];
  data_path(p, fx->base, 1);
  long long after, before = torn_last_commit(fx->base, &after);
  bc_store *s;

  for (int ro = 0; ro < 2; ro++) {
    bc_options o;
    bc_options_init(&o);
    o.read_only = ro;
    s = tu_open_opts(fx->base, &o);
    const char *where = ro ? "reader" : "writer";
    expect(s, "a", "committed", where);
    expect(s, "b", "committed", where);
    walk_reads(s, where);
    bc_stats st = tu_stats(s);
    assert_int_equal(st.corrupt, 0);
    if (!ro) assert_true(st.truncated_bytes == (uint64_t)(after - before));
    if (!ro) assert_true(tu_file_size(p) == before);
    /* A follower's refresh does not take the cut-off bytes up again. */
    if (ro) {
      TU_OK(bc_refresh(s));
      expect(s, "a", "committed", "reader, refreshed");
    }
    assert_int_equal(bc_close(s), BC_OK);
  }
  /* The writer goes on; its writes survive a reopen. */
  s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  const char *k2[] = {"b"};
  const char *v2[] = {"after"};
  size_t l2[] = {5};
  txn_puts(s, k2, v2, l2, 1);
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  expect(s, "a", "committed", "after a new write");
  expect(s, "b", "after", "after a new write");
  assert_int_equal(tu_stats(s).corrupt, 0);
  assert_int_equal(bc_close(s), BC_OK);
}

/* A follower that opened on a store whose tail a power loss left torn
** keeps the committed values through its refreshes, and takes up what a
** writer appends after cutting the tail. */
static void test_unsynced_tail_follower(void **state) {
  tu_fix *fx = *state;
  long long after;
  (void)torn_last_commit(fx->base, &after);
  bc_store *s;
  bc_options o;
  bc_options_init(&o);
  o.read_only = 1;
  bc_store *r = tu_open_opts(fx->base, &o);
  expect(r, "a", "committed", "follower");
  TU_OK(bc_refresh(r));
  expect(r, "a", "committed", "follower, refreshed");
  walk_reads(r, "follower, refreshed");
  s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  const char *k2[] = {"a"};
  const char *v2[] = {"written after the cut"};
  size_t l2[] = {21};
  txn_puts(s, k2, v2, l2, 1);
  TU_OK(bc_refresh(r));
  expect(r, "a", "written after the cut", "follower, after the writer's cut");
  expect(r, "b", "committed", "follower, after the writer's cut");
  assert_int_equal(tu_stats(r).corrupt, 0);
  assert_int_equal(bc_close(s), BC_OK);
  assert_int_equal(bc_close(r), BC_OK);
}

/* Damage below the durability claim of a later COMMIT is damage to durable
** data, not a power loss: counted, its key reads BC_CORRUPT, every record
** after it is read, nothing is cut.  Damage to the newest transaction, which
** no COMMIT claims durable, cannot be told from a power loss during it: it
** is dropped whole and the file cut (docs/FORMAT.md Recovery 3). */
static void test_damage_below_claim_is_corruption(void **state) {
  tu_fix *fx = *state;
  char p[PATH_MAX], base[PATH_MAX], last[PATH_MAX];
  tu_path(base, "%s/base", fx->base);
  tu_path(last, "%s/last", fx->base);
  bc_store *s = tu_open(base, 0, BC_SYNC_FULL, NULL);
  const char *k1[] = {"x", "y"};
  const char *v1[] = {"x-old", "y-old"};
  size_t l1[] = {5, 5};
  txn_puts(s, k1, v1, l1, 2);
  data_path(p, base, 1);
  long long t2 = tu_file_size(p);
  const char *v2[] = {"x-victim", "y-two"};
  size_t l2[] = {8, 5};
  txn_puts(s, k1, v2, l2, 2);
  long long t3 = tu_file_size(p);
  const char *k3[] = {"z"};
  const char *v3[] = {"z-three"};
  size_t l3[] = {7};
  txn_puts(s, k3, v3, l3, 1);
  assert_int_equal(bc_close(s), BC_OK);
  assert_int_equal(tu_copy_dir(base, last), 0);

  /* y's record of the second transaction (after x's, 32 + 1 + 8 bytes):
  ** its value is at + 32 + 1. */
  tu_flip(p, t2 + 41 + 32 + 1 + 2, 0x01);
  s = tu_open(base, 0, BC_SYNC_FULL, NULL);
  bc_buf b = {0};
  const void *v;
  assert_int_equal(bc_get(s, "y", 1, &b, &v, NULL), BC_CORRUPT);
  bc_buf_free(&b);
  expect(s, "x", "x-victim", "damage below the claim");
  expect(s, "z", "z-three", "damage below the claim");
  assert_true(tu_stats(s).corrupt >= 1);
  assert_int_equal(tu_stats(s).truncated_bytes, 0);
  assert_int_equal(bc_close(s), BC_OK);

  /* The last transaction's record: dropped with it. */
  data_path(p, last, 1);
  tu_flip(p, t3 + 32 + 1 + 2, 0x01);
  s = tu_open(last, 0, BC_SYNC_FULL, NULL);
  expect(s, "x", "x-victim", "damage to the last commit");
  expect(s, "y", "y-two", "damage to the last commit");
  expect(s, "z", NULL, "damage to the last commit");
  assert_int_equal(tu_stats(s).corrupt, 0);
  assert_true(tu_stats(s).truncated_bytes > 0);
  assert_int_equal(bc_close(s), BC_OK);
}

/* A store written by format-1 code: a "format 1" marker, a version-1 data
** file with 8-byte COMMITs.  It opens and reads; a writer never appends to
** the version-1 file (it starts a version-2 active file) and the old file
** stays byte for byte; a version-1 tail gets prefix semantics (no claims:
** D = 0), so a torn record with an intact one after it is cut, not
** corruption. */
static void test_format_1_store(void **state) {
  tu_fix *fx = *state;
  char p[PATH_MAX], m[PATH_MAX];
  bc_store *s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  assert_int_equal(bc_close(s), BC_OK);
  tu_path(m, "%s/BITCASK", fx->base);
  size_t ml;
  char *mt = (char *)tu_read_file(m, &ml);
  assert_non_null(strstr(mt, "format 2\n"));
  free(mt);
  tu_write_file(m, "bitcask-sqlite store\nformat 1\ncreated-dir 0\n", 44);
  data_path(p, fx->base, 1);
  unsigned char hdr[BC_FILE_HEADER_SIZE];
  bc_file_header_encode(hdr, 1, 0);
  bc_put_u32(hdr + 8, 1);
  bc_put_u32(hdr + 28, (uint32_t)crc32(0, hdr, 28));
  tu_write_file(p, hdr, sizeof hdr);
  append_rec(p, BC_REC_PUT, 1, 1, "a", "a1", 2);
  append_rec(p, BC_REC_PUT, 2, 1, "b", "b1", 2);
  append_commit(p, 3, 1, 2);
  append_rec(p, BC_REC_PUT, 4, 0, "c", "c1", 2);
  long long good = tu_file_size(p);
  /* The unsynced tail: a torn transaction record, then an intact COMMIT. */
  append_rec(p, BC_REC_PUT, 5, 5, "a", "a-torn", 6);
  zero_range(p, good + 8, 8);
  append_commit(p, 6, 5, 1);

  s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  expect(s, "a", "a1", "format 1");
  expect(s, "b", "b1", "format 1");
  expect(s, "c", "c1", "format 1");
  walk_reads(s, "format 1");
  assert_int_equal(tu_stats(s).corrupt, 0);
  assert_true(tu_file_size(p) == good);
  assert_true(tu_stats(s).active_file_id == 2);
  unsigned long before = crc32(0, NULL, 0);
  {
    size_t n;
    unsigned char *d = tu_read_file(p, &n);
    before = crc32(before, d, (uInt)n);
    free(d);
  }
  const char *k[] = {"a"};
  const char *v[] = {"a2"};
  size_t l[] = {2};
  txn_puts(s, k, v, l, 1);
  assert_int_equal(bc_close(s), BC_OK);
  size_t n;
  unsigned char *d = tu_read_file(p, &n);
  assert_true(crc32(crc32(0, NULL, 0), d, (uInt)n) == before);
  free(d);
  for (int ro = 0; ro < 2; ro++) {
    bc_options o;
    bc_options_init(&o);
    o.read_only = ro;
    s = tu_open_opts(fx->base, &o);
    expect(s, "a", "a2", "format 1, reopened");
    expect(s, "b", "b1", "format 1, reopened");
    expect(s, "c", "c1", "format 1, reopened");
    assert_int_equal(bc_close(s), BC_OK);
  }
}

/* Descriptors of this process open on path with O_RDWR (/proc/self/fd and
** fdinfo's flags). */
static int rdwr_fds_on(const char *path) {
  char real[PATH_MAX];
  if (!realpath(path, real)) return -1;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    char link[PATH_MAX], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%s", de->d_name);
    ssize_t tl = readlink(link, target, sizeof target - 1);
    if (tl < 0) continue;
    target[tl] = 0;
    if (strcmp(target, real) != 0) continue;
    char info[PATH_MAX];
    snprintf(info, sizeof info, "/proc/self/fdinfo/%s", de->d_name);
    FILE *f = fopen(info, "r");
    if (!f) continue;
    char line[128];
    unsigned flags = 0;
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "flags: %o", &flags) == 1) break;
    fclose(f);
    n += (flags & O_ACCMODE) == O_RDWR;
  }
  closedir(d);
  return n;
}

/* A tail that recovery cuts (reopened O_RDWR outside the descriptor cache
** to truncate it) but that does not go on as the active file -- here a
** version-1 file -- is sealed: its O_RDWR descriptor is closed, as a
** rotation closes the file it seals, instead of staying open outside the
** cache (and its bound) for the life of the store. */
static void test_cut_tail_not_continued_closes_its_descriptor(void **state) {
  tu_fix *fx = *state;
  char p[PATH_MAX];
  bc_store *s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  assert_int_equal(bc_close(s), BC_OK);
  data_path(p, fx->base, 1);
  unsigned char hdr[BC_FILE_HEADER_SIZE];
  bc_file_header_encode(hdr, 1, 0);
  bc_put_u32(hdr + 8, 1);
  bc_put_u32(hdr + 28, (uint32_t)crc32(0, hdr, 28));
  tu_write_file(p, hdr, sizeof hdr);
  append_rec(p, BC_REC_PUT, 1, 0, "a", "a1", 2);
  long long good = tu_file_size(p);
  append_rec(p, BC_REC_PUT, 2, 0, "b", "b-torn", 6);
  zero_range(p, good + 8, 8);

  s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  assert_true(tu_file_size(p) == good); /* cut */
  assert_true(tu_stats(s).active_file_id == 2);
  assert_int_equal(rdwr_fds_on(p), 0);
  expect(s, "a", "a1", "cut version-1 tail");
  assert_int_equal(bc_close(s), BC_OK);
}

/* A follower (bc_refresh) that finds damage at the end of a file that is no
** longer the tail counts the file damaged, as an open of the same files
** does: bc_stats.damaged_files does not depend on whether the reader was
** open before the damage.  Here the writer seals file 1 and the file is
** then cut inside its last record; the follower last saw it holding "a". */
static void test_follower_counts_damaged_file(void **state) {
  tu_fix *fx = *state;
  char p[PATH_MAX];
  static unsigned char v[1000];
  memset(v, 'v', sizeof v);
  bc_store *w = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  TU_OK(bc_put(w, "a", 1, 0, v, sizeof v));
  TU_OK(bc_sync(w));
  bc_options o;
  bc_options_init(&o);
  o.read_only = 1;
  bc_store *r = tu_open_opts(fx->base, &o);
  /* b, c, d fill file 1; e rotates to file 2, sealing file 1. */
  const char *more[] = {"b", "c", "d", "e"};
  for (int i = 0; i < 4; i++) TU_OK(bc_put(w, more[i], 1, 0, v, sizeof v));
  TU_OK(bc_sync(w));
  assert_true(tu_stats(w).active_file_id == 2);
  data_path(p, fx->base, 1);
  tu_truncate(p, tu_file_size(p) - 10);

  TU_OK(bc_refresh(r));
  bc_stats fresh_st;
  {
    bc_store *r2 = tu_open_opts(fx->base, &o);
    fresh_st = tu_stats(r2);
    assert_int_equal(bc_close(r2), BC_OK);
  }
  assert_int_equal(fresh_st.damaged_files, 1);
  assert_true(tu_stats(r).corrupt > 0);
  assert_int_equal(tu_stats(r).damaged_files, fresh_st.damaged_files);
  assert_int_equal(bc_close(r), BC_OK);
  assert_int_equal(bc_close(w), BC_OK);
}

/* ------------------------------------------ a crash at every write step */

#define CK 20   /* keys */
#define COPS 60 /* operations, each committed by bc_sync */

typedef struct cop {
  size_t key;
  int del;
  unsigned ver;
} cop;

static void cop_apply(tu_model *m, const cop *o) {
  if (o->del) {
    tu_model_del(m, o->key);
    return;
  }
  size_t len = tu_vlen(o->key, o->ver, 50, 300);
  unsigned char v[400];
  tu_fill(v, len, o->key, o->ver);
  tu_model_set(m, o->key, v, len, (uint8_t)(o->key + o->ver));
}

/* Does the store hold key i exactly as model m says? */
static int key_matches(bc_store *s, const tu_model *m, size_t i) {
  char k[32];
  size_t kl = tu_key(k, i);
  bc_buf b = {0};
  const void *v;
  bc_info info;
  bc_status st = bc_get(s, k, kl, &b, &v, &info);
  int ok = m->v[i] ? st == BC_OK && info.value_size == m->len[i] &&
                         memcmp(v, m->v[i], m->len[i]) == 0 && info.meta == m->meta[i]
                   : st == BC_NOTFOUND;
  bc_buf_free(&b);
  return ok;
}

/* Copy the store directory before every open/pwrite/fsync/ftruncate/rename/
** unlink of a workload of single-record commits with rotations: each copy is
** what a kill -9 at that instant leaves.  Each must open with every commit
** made before it, and the commit under way either wholly there or not at
** all. */
static void test_crash_at_every_write_step(void **state) {
  tu_fix *fx = *state;
  char dir[PATH_MAX], snaps[PATH_MAX];
  tu_path(dir, "%s/s", fx->base);
  tu_path(snaps, "%s/snaps", fx->base);
  assert_int_equal(mkdir(snaps, 0755), 0);
  tio t;
  tio_init(&t);
  t.real_fsync = 0;
  t.mask = TIO_OPEN | TIO_PWRITE | TIO_FSYNC | TIO_FTRUNCATE | TIO_RENAME | TIO_UNLINK;
  tu_model m;
  tu_model_init(&m, CK);
  cop ops[COPS];
  bc_store *s = tu_open(dir, 4096, BC_SYNC_FULL, &t.io);
  snprintf(t.snap_src, sizeof t.snap_src, "%s", dir);
  snprintf(t.snap_every, sizeof t.snap_every, "%s", snaps);
  t.counting = 1;
  for (unsigned j = 0; j < COPS; j++) {
    cop o = {(j * 7u) % CK, 0, j};
    o.del = j % 6 == 5 && m.v[o.key] != NULL;
    ops[j] = o;
    t.cur_tag = (long)j;
    if (o.del)
      TU_OK(tu_del(s, &m, o.key));
    else
      TU_OK(tu_put_ver(s, &m, o.key, j, 50, 300));
    TU_OK(bc_sync(s));
  }
  t.counting = 0;
  long n = t.steps;
  assert_true(n > 2 * COPS && n < TIO_MAXSNAP);
  assert_true(tu_stats(s).data_files >= 3);
  assert_int_equal(bc_close(s), BC_OK);
  tio_free(&t);

  tu_model before, after;
  tu_model_init(&before, CK);
  tu_model_init(&after, CK);
  long done = 0; /* ops applied to `before` */
  for (long k = 1; k <= n; k++) {
    long j = t.snap_tag[k];
    while (done < j) cop_apply(&before, &ops[done++]);
    tu_model_free(&after);
    tu_model_copy(&after, &before);
    cop_apply(&after, &ops[j]);
    char snap[PATH_MAX];
    tu_path(snap, "%s/%ld", snaps, k);
    s = tu_open(snap, 4096, BC_SYNC_FULL, NULL);
    assert_int_equal(tu_stats(s).corrupt, 0);
    for (size_t i = 0; i < CK; i++) {
      int ok = key_matches(s, &before, i);
      if (i == ops[j].key) ok = ok || key_matches(s, &after, i);
      if (!ok)
        fail_msg("crash at step %ld (operation %ld on key %zu): key %zu is wrong", k, j,
                 ops[j].key, i);
    }
    uint64_t c = bc_count(s);
    assert_true(c == tu_model_count(&before) || c == tu_model_count(&after));
    /* Every 4th: the recovered store takes new writes that persist. */
    if (k % 4 == 0) {
      tu_model cur;
      tu_model_copy(&cur, key_matches(s, &before, ops[j].key) ? &before : &after);
      TU_OK(tu_put_ver(s, &cur, (size_t)k % CK, 1000, 10, 10));
      TU_OK(bc_sync(s));
      assert_int_equal(bc_close(s), BC_OK);
      s = tu_open(snap, 4096, BC_SYNC_FULL, NULL);
      tu_model_check(s, &cur, "a write after crash recovery, reopened");
      tu_model_free(&cur);
    }
    assert_int_equal(bc_close(s), BC_OK);
    tu_rmrf(snap);
  }
  if (getenv("BC_TEST_VERBOSE")) print_message("write path: %ld crash points\n", n);
  tu_model_free(&before);
  tu_model_free(&after);
  tu_model_free(&m);
}

/* ------------------------------------------------ leftovers of a merge */

static void test_leftovers_removed(void **state) {
  tu_fix *fx = *state;
  tu_model m;
  build_store(fx->base, &m, 100);
  const char *junk[] = {"0000000099.data.merging", "0000000099.hint.merging",
                        "0000000002.hint.tmp", "MERGE.tmp"};
  char p[PATH_MAX];
  for (size_t i = 0; i < 4; i++) {
    tu_path(p, "%s/%s", fx->base, junk[i]);
    tu_write_file(p, "partial", 7);
  }
  /* A reader leaves them. */
  bc_options o;
  bc_options_init(&o);
  o.read_only = 1;
  bc_store *s = tu_open_opts(fx->base, &o);
  tu_model_check(s, &m, "read-only with leftovers");
  assert_int_equal(bc_close(s), BC_OK);
  for (size_t i = 0; i < 4; i++) {
    tu_path(p, "%s/%s", fx->base, junk[i]);
    assert_true(tu_exists(p));
  }
  /* A writer removes them, and never reuses their ids. */
  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  tu_model_check(s, &m, "writer with leftovers");
  for (size_t i = 0; i < 4; i++) {
    tu_path(p, "%s/%s", fx->base, junk[i]);
    assert_false(tu_exists(p));
  }
  for (size_t i = 0; i < 100; i++) TU_OK(tu_put_ver(s, &m, i, 3, 100, 100));
  assert_true(tu_stats(s).active_file_id >= 100);
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  tu_model_check(s, &m, "reopen");
  assert_int_equal(bc_close(s), BC_OK);
  tu_model_free(&m);
}

/* A damaged MERGE manifest refuses the open and is left for inspection. */
static void test_damaged_manifest_refused(void **state) {
  tu_fix *fx = *state;
  tu_model m;
  build_store(fx->base, &m, 50);
  char p[PATH_MAX];
  tu_path(p, "%s/MERGE", fx->base);
  tu_write_file(p, "BCASKMRG garbage garbage", 24);
  bc_store *s = NULL;
  char err[512] = "";
  bc_options o;
  bc_options_init(&o);
  assert_int_equal(bc_open(fx->base, &o, &s, err, sizeof err), BC_CORRUPT);
  assert_null(s);
  assert_non_null(strstr(err, "MERGE"));
  assert_true(tu_exists(p));
  uint32_t ids[256];
  assert_true(tu_data_ids(fx->base, ids, 256) > 1);
  tu_model_free(&m);
}


/* ------------------------------------------- damaged sealed files (issue 12) */

/* Store for the damaged-file tests: file 1 holds "a" = v1 and "gone"; file 2
** (sealed, with its hint) holds "a" = v2, "only", and the tombstone of
** "gone"; more files follow.  Returns 2's path in p. */
static void sealed_pair(const char *dir, char p[PATH_MAX]) {
  bc_store *s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
  char k[32], v[200];
  memset(v, 'x', sizeof v);
  TU_OK(bc_put(s, "a", 1, 0, "v1", 2));
  TU_OK(bc_put(s, "gone", 4, 0, "g", 1));
  for (size_t i = 0; tu_stats(s).active_file_id == 1; i++)
    TU_OK(bc_put(s, k, tu_key(k, i), 0, v, sizeof v));
  assert_true(tu_stats(s).active_file_id == 2);
  TU_OK(bc_put(s, "a", 1, 0, "v2", 2));
  TU_OK(bc_put(s, "only", 4, 0, "o", 1));
  TU_OK(bc_delete(s, "gone", 4));
  for (size_t i = 0; tu_stats(s).active_file_id == 2; i++)
    TU_OK(bc_put(s, k, tu_key(k, 1000 + i), 0, v, sizeof v));
  assert_int_equal(bc_close(s), BC_OK);
  data_path(p, dir, 2);
  char h[PATH_MAX];
  hint_path(h, dir, 2);
  assert_true(tu_exists(h));
}

static void expect_corrupt(bc_store *s, const char *key, const char *what) {
  bc_buf b = {0};
  const void *v;
  bc_status st = bc_get(s, key, strlen(key), &b, &v, NULL);
  if (st != BC_CORRUPT) fail_msg("key %s: %s, want BC_CORRUPT", key, bc_status_name(st));
  if (!strstr(bc_errmsg(s), "0000000002.data") || !strstr(bc_errmsg(s), what))
    fail_msg("key %s: message '%s' should name 0000000002.data and say '%s'", key,
             bc_errmsg(s), what);
  bc_buf_free(&b);
}

/* One flipped bit in a sealed file's file_id, its hint intact: before issue
** 12 the whole file was ignored ("a" read v1, "gone" came back, "only"
** vanished).  Now it is read from its hint, never continued, kept by a
** merge. */
static void test_damaged_header_sealed_file_read(void **state) {
  tu_fix *fx = *state;
  for (int hint = 1; hint >= 0; hint--) {
    char dir[PATH_MAX], p[PATH_MAX], h[PATH_MAX];
    tu_path(dir, "%s/h%d", fx->base, hint);
    sealed_pair(dir, p);
    tu_flip(p, 16, 0x04);
    hint_path(h, dir, 2);
    if (!hint) assert_int_equal(unlink(h), 0); /* then it is scanned */
    for (int round = 0; round < 3; round++) {
      bc_options o;
      bc_options_init(&o);
      o.read_only = round == 0;
      o.max_file_size = 4096;
      bc_store *s = tu_open_opts(dir, &o);
      expect(s, "a", "v2", "damaged header");
      expect(s, "only", "o", "damaged header");
      expect(s, "gone", NULL, "damaged header");
      bc_stats st = tu_stats(s);
      assert_true(st.damaged_files == 1 && st.corrupt >= 1);
      if (round == 1) {
        assert_true(st.active_file_id != 2);
        TU_OK(bc_merge(s, NULL));
        expect(s, "a", "v2", "merged");
        expect(s, "gone", NULL, "merged");
      }
      assert_int_equal(bc_close(s), BC_OK);
    }
    assert_true(tu_exists(p));
  }
}

/* A sealed file cut to its header (or to nothing, or deleted), its hint
** intact: the keys whose newest version was there read BC_CORRUPT naming
** the file, not their older value, before and after a merge; the tombstone
** of "gone" is still known from the hint. */
static void test_truncated_sealed_file_with_hint(void **state) {
  tu_fix *fx = *state;
  for (int variant = 0; variant < 4; variant++) {
    char dir[PATH_MAX], p[PATH_MAX];
    tu_path(dir, "%s/t%d", fx->base, variant);
    sealed_pair(dir, p);
    long long sz = tu_file_size(p);
    const char *what = variant == 3 ? "missing" : "shorter";
    if (variant == 3)
      assert_int_equal(unlink(p), 0);
    else
      tu_truncate(p, variant == 0 ? 32 : variant == 1 ? 0 : sz - 10);
    for (int round = 0; round < 3; round++) {
      bc_options o;
      bc_options_init(&o);
      o.read_only = round == 0;
      o.max_file_size = 4096;
      bc_store *s = tu_open_opts(dir, &o);
      /* Cut by 10 bytes, only the file's last record is gone. */
      if (variant == 2) {
        expect(s, "a", "v2", "cut short");
        expect(s, "only", "o", "cut short");
      } else {
        expect_corrupt(s, "a", what);
        expect_corrupt(s, "only", what);
      }
      expect(s, "gone", NULL, "truncated");
      assert_true(tu_stats(s).damaged_files == 1);
      if (round == 1) {
        TU_OK(bc_merge(s, NULL));
        if (variant != 2) expect_corrupt(s, "a", what);
        expect(s, "gone", NULL, "truncated, merged");
      }
      assert_int_equal(bc_close(s), BC_OK);
    }
  }
}

/* A 200-record transaction over several data files, one flipped byte in the
** header of the first: before issue 12 count(*) became 0 and a merge
** deleted the intact records for good.  Now every record is read. */
static void test_damaged_header_in_spanning_txn(void **state) {
  tu_fix *fx = *state;
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  bc_txn *t;
  TU_OK(bc_txn_begin(s, &t));
  char k[32], v[100];
  memset(v, 'y', sizeof v);
  for (size_t i = 0; i < 200; i++) TU_OK(bc_txn_put(t, k, tu_key(k, i), 0, v, sizeof v));
  TU_OK(bc_txn_commit(t));
  assert_true(tu_stats(s).active_file_id >= 5);
  assert_int_equal(bc_close(s), BC_OK);
  char p[PATH_MAX];
  data_path(p, fx->base, 1);
  tu_flip(p, 3, 0x20);
  for (int round = 0; round < 3; round++) {
    s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
    assert_int_equal(bc_count(s), 200);
    bc_buf b = {0};
    const void *val;
    for (size_t i = 0; i < 200; i++) TU_OK(bc_get(s, k, tu_key(k, i), &b, &val, NULL));
    bc_buf_free(&b);
    /* Every file of the transaction stays: its COMMIT belongs with the
    ** records in the damaged file. */
    assert_true(tu_stats(s).damaged_files >= 2);
    if (round == 0) TU_OK(bc_merge(s, NULL));
    assert_int_equal(bc_close(s), BC_OK);
  }
}

/* ------------------------------------------------ a hard-linked copy */

/* Link every regular file of src into dst (created): what `cp -al`,
** rsync --link-dest or rsnapshot make of a store. */
static void link_dir(const char *src, const char *dst) {
  assert_int_equal(mkdir(dst, 0755), 0);
  DIR *d = opendir(src);
  assert_non_null(d);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    char from[PATH_MAX], to[PATH_MAX];
    tu_path(from, "%s/%s", src, de->d_name);
    tu_path(to, "%s/%s", dst, de->d_name);
    struct stat sb;
    assert_int_equal(stat(from, &sb), 0);
    if (S_ISREG(sb.st_mode)) assert_int_equal(link(from, to), 0);
  }
  closedir(d);
}

/* A copy of a store made with hard links (cp -al, rsync --link-dest) shares
** its data files' inodes.  Sealed files are never written in place, so
** sharing them is harmless; the tail is (cut, its header rewritten,
** appended to), so a writer gives its directory a private copy of it first:
** each store then takes writes without the other seeing them.  Three tails:
** one continued as it is, one with a torn end to cut, one being created (a
** torn header). */
static void test_hard_linked_copy_unshared(void **state) {
  tu_fix *fx = *state;
  for (int variant = 0; variant < 3; variant++) {
    char orig[PATH_MAX], copy[PATH_MAX], plain[PATH_MAX], p[PATH_MAX];
    tu_path(orig, "%s/o%d", fx->base, variant);
    tu_path(copy, "%s/l%d", fx->base, variant);
    tu_path(plain, "%s/c%d", fx->base, variant);
    tu_model m;
    build_store(orig, &m, 200);
    uint32_t ids[256];
    size_t n = tu_data_ids(orig, ids, 256);
    assert_true(n >= 3);
    uint32_t sealed = ids[0], tail = ids[n - 1];
    if (variant == 1) {
      data_path(p, orig, tail);
      unsigned char junk[300];
      for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)(i * 37 + 11);
      tu_append_file(p, junk, sizeof junk);
    } else if (variant == 2) {
      tail++;
      data_path(p, orig, tail);
      unsigned char hdr[BC_FILE_HEADER_SIZE];
      bc_file_header_encode(hdr, tail, 0);
      tu_write_file(p, hdr, 13);
    }
    /* The path is real: a plain copy's writer does write the tail in place. */
    assert_int_equal(tu_copy_dir(orig, plain), 0);
    bc_store *s = tu_open(plain, 4096, BC_SYNC_OFF, NULL);
    bc_stats st = tu_stats(s);
    assert_int_equal(st.active_file_id, tail);
    assert_int_equal(st.truncated_bytes, variant == 0 ? 0 : variant == 1 ? 300 : 13);
    TU_OK(tu_put_ver(s, NULL, 3, 9, 10, 10));
    assert_int_equal(bc_close(s), BC_OK);

    link_dir(orig, copy);
    /* Readers never write: both read everything while every file is shared. */
    const char *dirs[] = {copy, orig};
    for (int k = 0; k < 2; k++) {
      bc_options o;
      bc_options_init(&o);
      o.read_only = 1;
      s = tu_open_opts(dirs[k], &o);
      tu_model_check(s, &m, "read-only, hard-linked");
      assert_int_equal(bc_close(s), BC_OK);
    }
    /* The copy's writer: its tail becomes its own, the original's bytes
    ** stay as they were. */
    char *orig_before = tu_fingerprint(orig);
    tu_model mc;
    tu_model_copy(&mc, &m);
    s = tu_open(copy, 4096, BC_SYNC_OFF, NULL);
    tu_model_check(s, &mc, "the copy, first writer open");
    for (size_t i = 0; i < 40; i++) TU_OK(tu_put_ver(s, &mc, i, 7, 20, 60));
    assert_int_equal(bc_close(s), BC_OK);
    char *orig_after = tu_fingerprint(orig);
    assert_string_equal(orig_after, orig_before);
    free(orig_before);
    free(orig_after);
    struct stat sb;
    data_path(p, orig, tail);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_nlink, 1); /* the original's name is its own again */
    data_path(p, orig, sealed);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_nlink, 2); /* sealed files stay shared */
    tu_path(p, "%s/%010u.data.tmp", copy, tail);
    assert_int_not_equal(stat(p, &sb), 0); /* nothing left of the copying */
    /* The original's writer: its own rows, the copy untouched. */
    char *copy_before = tu_fingerprint(copy);
    s = tu_open(orig, 4096, BC_SYNC_OFF, NULL);
    tu_model_check(s, &m, "the original, after the copy's writes");
    for (size_t i = 0; i < 50; i++) TU_OK(tu_put_ver(s, &m, i, 5, 20, 60));
    assert_int_equal(bc_close(s), BC_OK);
    char *copy_after = tu_fingerprint(copy);
    assert_string_equal(copy_after, copy_before);
    free(copy_before);
    free(copy_after);
    /* Each reopens with its own rows. */
    s = tu_open(orig, 4096, BC_SYNC_OFF, NULL);
    tu_model_check(s, &m, "the original, reopened");
    assert_int_equal(bc_close(s), BC_OK);
    s = tu_open(copy, 4096, BC_SYNC_OFF, NULL);
    tu_model_check(s, &mc, "the copy, reopened");
    assert_int_equal(bc_close(s), BC_OK);
    tu_model_free(&mc);
    tu_model_free(&m);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      TU_TEST(test_torn_tail_cut),
      TU_TEST(test_torn_tail_every_byte),
      TU_TEST(test_torn_tail_garbage),
      TU_TEST(test_torn_tail_many_files),
      TU_TEST(test_torn_tail_read_only),
      TU_TEST(test_flipped_value_sealed_scanned),
      TU_TEST(test_flipped_value_sealed_with_hint),
      TU_TEST(test_damage_does_not_hide_later_records),
      TU_TEST(test_damaged_hint_ignored),
      TU_TEST(test_tombstone_in_later_file),
      TU_TEST(test_crash_creating_data_file),
      TU_TEST(test_damaged_merged_header_not_rewritten),
      TU_TEST(test_newer_format_refused),
      TU_TEST(test_transaction_markers),
      TU_TEST(test_commit_count_mismatch),
      TU_TEST(test_unsynced_tail_torn_transaction),
      TU_TEST(test_unsynced_tail_follower),
      TU_TEST(test_damage_below_claim_is_corruption),
      TU_TEST(test_format_1_store),
      TU_TEST(test_cut_tail_not_continued_closes_its_descriptor),
      TU_TEST(test_follower_counts_damaged_file),
      TU_TEST(test_crash_at_every_write_step),
      TU_TEST(test_leftovers_removed),
      TU_TEST(test_damaged_manifest_refused),
      TU_TEST(test_damaged_header_sealed_file_read),
      TU_TEST(test_truncated_sealed_file_with_hint),
      TU_TEST(test_damaged_header_in_spanning_txn),
      TU_TEST(test_hard_linked_copy_unshared),
  };
  return cmocka_run_group_tests_name("recovery", tests, NULL, NULL);
}
