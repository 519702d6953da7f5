/*
** test_known_failures.c -- failures seen in other Bitcask implementations
** (issue 4), one test each, every one checked key by key against an oracle
** (testutil.h's tu_model) of what must survive:
**
**    1  a merge that drops a tombstone while an older file holds the key
**    2  tombstones never surface (bc_get, bc_lookup, bc_iter, bc_count), with
**       and without hint files, after merges, read-only
**    3  a hint entry pointing past the end of its data file (valid CRCs)
**    4  records failing their CRC never return their bytes
**    5  zeros or garbage after the last record of the active file
**    6  an empty data file (0 bytes, or a header only) with the highest id
**    7  a LOCK file naming a live pid that holds no lock (a reused pid)
**    8  max_file_size smaller than one record
**    9  merges racing newer writes of the same keys (threads)
**   10  descriptors of files a merge deleted are closed (1000 merges)
**   11  limits: a BC_MAX_KEY_SIZE key, a 64 MiB value, one byte over
**   12  one flipped bit in each field of a record (in a sealed file read by
**       scanning, the same read from its hint, and in the active file); a
**       stray file; a data file of a newer format (test_format_version_2_
**       refused: BC_FORMAT_VERSION + 1); a stale hint
**
** test_corruption_matrix prints the whole matrix, one line per flipped
** field and place, then fails if any cell failed.  It was written to fail
** while the engine stopped reading a file at the first header that did not
** decode and trusted the txn field of a record that failed its CRC; both
** are fixed (a walk of a data file resynchronises after damage, and a
** damaged record's txn counts only if its transaction has other records:
** docs/FORMAT.md "Recovery" 3), and every cell passes.
**
** Where test_recovery.c, test_merge.c or test_store.c already cover part of
** an item, the comment above the test here names the test and says what
** this one adds.
*/
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define MiB (1024u * 1024u)

/* ------------------------------------------------------------ helpers */

static void data_path(char out[PATH_MAX], const char *dir, uint32_t id) {
  tu_path(out, "%s/%010u.data", dir, id);
}
static void hint_path(char out[PATH_MAX], const char *dir, uint32_t id) {
  tu_path(out, "%s/%010u.hint", dir, id);
}

/* One record of a data file as kf_scan found it. */
typedef struct krec {
  uint64_t off;
  bc_rec r;
  char key[64]; /* NUL-terminated copy, cut at 63 bytes */
} krec;

/* The whole records of data file `path` (they decode, fit and pass their
** CRC), in order, up to the first that does not.  Stores at most cap of them
** in out (may be NULL) and returns how many there are; *end (may be NULL)
** receives the offset where the scan stopped: the file size when the file is
** a header and whole records. */
static size_t kf_scan(const char *path, krec *out, size_t cap, uint64_t *end) {
  size_t len;
  unsigned char *d = tu_read_file(path, &len);
  size_t n = 0, off = BC_FILE_HEADER_SIZE;
  while (off + BC_REC_HEADER_SIZE <= len) {
    bc_rec r;
    uint32_t crc;
    if (bc_rec_decode(d + off, &r, &crc) != 0) break;
    size_t rs = (size_t)bc_rec_size(r.klen, r.vlen);
    if (off + rs > len || !bc_rec_crc_ok(d + off, &r, crc)) break;
    if (out && n < cap) {
      out[n].off = off;
      out[n].r = r;
      size_t kl = r.klen < 63 ? r.klen : 63;
      memcpy(out[n].key, d + off + BC_REC_HEADER_SIZE, kl);
      out[n].key[kl] = 0;
    }
    n++;
    off += rs;
  }
  if (end) *end = off < len ? off : len;
  free(d);
  return n;
}

/* Index of a tu_key() key ("key:NNNNNN"), or SIZE_MAX. */
static size_t key_index(const void *key, size_t klen) {
  const char *k = key;
  if (klen != 10 || memcmp(k, "key:", 4) != 0) return SIZE_MAX;
  size_t v = 0;
  for (size_t i = 4; i < 10; i++) {
    if (k[i] < '0' || k[i] > '9') return SIZE_MAX;
    v = v * 10 + (size_t)(k[i] - '0');
  }
  return v;
}

static unsigned long kf_file_crc(const char *path) {
  size_t l;
  unsigned char *d = tu_read_file(path, &l);
  unsigned long c = crc32(0, d, (uInt)l);
  free(d);
  return c;
}

/* Remove every hint file of dir (so the next open scans every data file). */
static void kf_unlink_hints(const char *dir) {
  uint32_t ids[1024];
  size_t n = tu_data_ids(dir, ids, 1024);
  for (size_t i = 0; i < n; i++) {
    char p[PATH_MAX];
    hint_path(p, dir, ids[i]);
    unlink(p);
  }
}

/* Does key i of the store hold exactly what m says (value and meta, or
** absent)?  Fails the test with `where` otherwise. */
static void kf_check_key(bc_store *s, const tu_model *m, size_t i, const char *where) {
  char k[32];
  size_t kl = tu_key(k, i);
  bc_buf b = {0};
  const void *v = NULL;
  bc_info info;
  memset(&info, 0, sizeof info);
  bc_status st = bc_get(s, k, kl, &b, &v, &info);
  if (m->v[i]) {
    if (st != BC_OK)
      fail_msg("%s: key %zu: bc_get gave %s, want its value", where, i, bc_status_name(st));
    if (info.value_size != m->len[i] || (m->len[i] && memcmp(v, m->v[i], m->len[i]) != 0) ||
        info.meta != m->meta[i])
      fail_msg("%s: key %zu: wrong value or meta", where, i);
  } else if (st != BC_NOTFOUND) {
    fail_msg("%s: key %zu: bc_get gave %s, want BC_NOTFOUND", where, i, bc_status_name(st));
  }
  bc_buf_free(&b);
}

/* bc_iter yields exactly the live keys of m, each once, with m's size and
** meta, and never a deleted key. */
static void kf_iter_check(bc_store *s, const tu_model *m, const char *where) {
  char *seen = calloc(m->n ? m->n : 1, 1);
  assert_non_null(seen);
  bc_iter *it = NULL;
  TU_OK(bc_iter_open(s, &it));
  const void *key;
  size_t klen, n = 0;
  bc_info info;
  bc_status st;
  while ((st = bc_iter_next(it, &key, &klen, &info)) == BC_OK) {
    n++;
    size_t i = key_index(key, klen);
    if (i >= m->n)
      fail_msg("%s: bc_iter yields a key the model never had ('%.*s')", where,
               (int)(klen < 40 ? klen : 40), (const char *)key);
    if (!m->v[i]) fail_msg("%s: bc_iter yields deleted key %zu", where, i);
    if (seen[i]++) fail_msg("%s: bc_iter yields key %zu twice", where, i);
    if (info.value_size != m->len[i] || info.meta != m->meta[i])
      fail_msg("%s: bc_iter: key %zu has size %u meta %u, want %zu and %u", where, i,
               info.value_size, info.meta, m->len[i], m->meta[i]);
  }
  assert_int_equal(st, BC_DONE);
  bc_iter_close(it);
  if (n != tu_model_count(m))
    fail_msg("%s: bc_iter yields %zu keys, want %zu", where, n, tu_model_count(m));
  free(seen);
}

/* Everything a reader can ask: bc_get and bc_count (tu_model_check),
** bc_lookup of every deleted key, and a full iteration. */
static void kf_check_all(bc_store *s, const tu_model *m, const char *where) {
  tu_model_check(s, m, where);
  for (size_t i = 0; i < m->n; i++) {
    if (m->v[i]) continue;
    char k[32];
    size_t kl = tu_key(k, i);
    bc_info info;
    if (bc_lookup(s, k, kl, &info) != BC_NOTFOUND)
      fail_msg("%s: bc_lookup finds deleted key %zu", where, i);
  }
  kf_iter_check(s, m, where);
}

/* Open dir (a writer, SYNC_OFF, max_file_size mfs), check it against m with
** kf_check_all, close it. */
static void kf_reopen_check(const char *dir, uint64_t mfs, const tu_model *m,
                            const char *where) {
  bc_store *s = tu_open(dir, mfs, BC_SYNC_OFF, NULL);
  kf_check_all(s, m, where);
  assert_int_equal(bc_close(s), BC_OK);
}

/* Does value v (len bytes, meta) equal version ver of key i as tu_put_ver
** writes it with lengths in [lo, lo + span)? */
static int kf_is_version(const void *v, size_t len, uint8_t meta, size_t i, unsigned ver,
                         size_t lo, size_t span) {
  size_t want = tu_vlen(i, ver, lo, span);
  if (len != want || meta != (uint8_t)(i + ver)) return 0;
  unsigned char *p = malloc(want ? want : 1);
  assert_non_null(p);
  tu_fill(p, want, i, ver);
  int same = memcmp(p, v, want) == 0;
  free(p);
  return same;
}


/* Encode one record (key and value included) into a malloc'd buffer. */
static unsigned char *kf_record(uint8_t type, uint8_t meta, uint64_t seq, const void *key,
                                uint32_t klen, const void *val, uint32_t vlen, size_t *n) {
  bc_rec r = {type, meta, seq, 0, klen, vlen};
  *n = (size_t)bc_rec_size(klen, vlen);
  unsigned char *p = malloc(*n);
  assert_non_null(p);
  bc_rec_encode(p, &r, key, val);
  if (klen) memcpy(p + BC_REC_HEADER_SIZE, key, klen);
  if (vlen) memcpy(p + BC_REC_HEADER_SIZE + klen, val, vlen);
  return p;
}

/* The store most tests start from: keys 0..n-1 at version 1, every 4th
** overwritten (version 2), every 7th deleted; 4 KiB files. */
static void kf_build(const char *dir, tu_model *m, size_t n) {
  tu_model_init(m, n);
  bc_store *s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
  for (size_t i = 0; i < n; i++) TU_OK(tu_put_ver(s, m, i, 1, 20, 120));
  for (size_t i = 0; i < n; i += 4) TU_OK(tu_put_ver(s, m, i, 2, 20, 120));
  for (size_t i = 0; i < n; i += 7) TU_OK(tu_del(s, m, i));
  assert_int_equal(bc_close(s), BC_OK);
}

/* --------------------------------- 1. merge drops a tombstone too early */

/* Item 1.  Existing coverage: test_recovery.c test_tombstone_in_later_file
** (tombstones in later files, merged, with and without hints) and
** test_merge.c test_merge_empty_and_all_deleted.  Added here: the exact
** shape "put in file A, tombstone in a later file B, merge", the proof that
** the engine's merge never leaves a sealed file out (so it never drops a
** tombstone while an older file outside the merge holds the key), and the
** dangerous state crafted on disk: a merge output without the tombstone and
** an older data file holding the put, copied back in under its old low id.
**
** What recovery does with the crafted state (documented, not a bug of the
** engine's own writes): the restored file is read like any other; every key
** whose newer version survived in a merge output keeps that newer version
** (seq order), but a key whose only trace of deletion was the dropped
** tombstone comes back with its old value -- nothing on disk says the
** restored file was merged away.  The test accepts "still deleted" or "back
** with exactly its old value" for those keys, checks everything else
** exactly, and prints which happened. */
static void test_merge_drops_tombstone_key_stays_deleted(void **state) {
  tu_fix *fx = *state;
  const size_t K = 200;
  char dir[PATH_MAX], p[PATH_MAX];
  tu_path(dir, "%s/s", fx->base);
  tu_model m;
  tu_model_init(&m, K);
  bc_store *s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
  /* File A (id 1): keys 0..29, version 1. */
  for (size_t i = 0; i < 30; i++) TU_OK(tu_put_ver(s, &m, i, 1, 20, 40));
  assert_int_equal(tu_stats(s).active_file_id, 1);
  /* Other files. */
  for (size_t i = 30; i < K; i++) TU_OK(tu_put_ver(s, &m, i, 1, 20, 40));
  /* Later files (B...): 20..29 overwritten, then 0..19 and 25..29 deleted,
  ** 0..4 put again. */
  for (size_t i = 20; i < 30; i++) TU_OK(tu_put_ver(s, &m, i, 2, 20, 40));
  for (size_t i = 0; i < 20; i++) TU_OK(tu_del(s, &m, i));
  for (size_t i = 25; i < 30; i++) TU_OK(tu_del(s, &m, i));
  for (size_t i = 0; i < 5; i++) TU_OK(tu_put_ver(s, &m, i, 3, 20, 40));
  assert_true(tu_stats(s).active_file_id >= 4);
  kf_check_all(s, &m, "before any merge");
  /* File A as it is now, with its hint. */
  size_t la, lh;
  data_path(p, dir, 1);
  unsigned char *fa = tu_read_file(p, &la);
  hint_path(p, dir, 1);
  assert_true(tu_exists(p));
  unsigned char *ha = tu_read_file(p, &lh);
  assert_int_equal(bc_close(s), BC_OK);
  kf_reopen_check(dir, 4096, &m, "reopen, from hints");
  kf_unlink_hints(dir);
  kf_reopen_check(dir, 4096, &m, "reopen, scanning");

  /* The merge: every sealed file is an input, the tombstones go. */
  s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
  uint32_t before[256], after[256];
  size_t nb = tu_data_ids(dir, before, 256);
  TU_OK(bc_merge(s, NULL));
  size_t na = tu_data_ids(dir, after, 256);
  for (size_t i = 0; i < nb; i++)
    for (size_t j = 0; j < na; j++)
      if (before[i] == after[j])
        fail_msg("data file %u survived the merge: a sealed file was left out", before[i]);
  for (size_t j = 0; j < na; j++) {
    krec recs[512];
    uint64_t end;
    data_path(p, dir, after[j]);
    size_t n = kf_scan(p, recs, 512, &end);
    assert_true(n <= 512);
    assert_true(end == (uint64_t)tu_file_size(p));
    for (size_t r = 0; r < n; r++)
      if (recs[r].r.type == BC_REC_TOMBSTONE)
        fail_msg("merge output %u keeps a tombstone of '%s' (no older file is outside "
                 "the merge)", after[j], recs[r].key);
  }
  kf_check_all(s, &m, "after the merge");
  assert_int_equal(bc_close(s), BC_OK);
  kf_reopen_check(dir, 4096, &m, "after the merge, reopen from hints");
  kf_unlink_hints(dir);
  kf_reopen_check(dir, 4096, &m, "after the merge, reopen scanning");

  /* The dangerous state, crafted: file A back under its old id (without,
  ** then with, its old hint). */
  for (int variant = 0; variant < 2; variant++) {
    char c[PATH_MAX];
    tu_path(c, "%s/restored%d", fx->base, variant);
    assert_int_equal(tu_copy_dir(dir, c), 0);
    data_path(p, c, 1);
    assert_false(tu_exists(p));
    tu_write_file(p, fa, la);
    if (variant) {
      hint_path(p, c, 1);
      tu_write_file(p, ha, lh);
    }
    size_t back_first = SIZE_MAX;
    for (int round = 0; round < 2; round++) {
      char where[96];
      snprintf(where, sizeof where, "file A restored%s after the merge, open %d",
               variant ? " with its hint" : "", round + 1);
      s = tu_open(c, 4096, BC_SYNC_OFF, NULL);
      size_t back = 0;
      bc_buf b = {0};
      for (size_t i = 0; i < K; i++) {
        int dropped = (i >= 5 && i < 20) || (i >= 25 && i < 30);
        if (!dropped) {
          kf_check_key(s, &m, i, where); /* newer versions always win */
          continue;
        }
        char k[32];
        size_t kl = tu_key(k, i);
        const void *v = NULL;
        bc_info info;
        bc_status st = bc_get(s, k, kl, &b, &v, &info);
        if (st == BC_OK && kf_is_version(v, info.value_size, info.meta, i, 1, 20, 40))
          back++;
        else if (st != BC_NOTFOUND)
          fail_msg("%s: deleted key %zu gives %s and not its old value", where, i,
                   bc_status_name(st));
      }
      bc_buf_free(&b);
      if (bc_count(s) != tu_model_count(&m) + back)
        fail_msg("%s: bc_count %llu, want %zu", where, (unsigned long long)bc_count(s),
                 tu_model_count(&m) + back);
      if (round == 0) {
        back_first = back;
        print_message("    [item 1] %s: %zu of 20 keys whose tombstone the merge "
                      "dropped are back with their old value\n", where, back);
      } else {
        assert_int_equal(back, back_first);
      }
      assert_int_equal(bc_close(s), BC_OK);
    }
  }
  free(fa);
  free(ha);
  tu_model_free(&m);
}

/* ------------------------------------------- 2. tombstones never surface */

/* Item 2.  Existing coverage: test_recovery.c test_tombstone_in_later_file
** (bc_get and bc_count with and without hints and after merges) and
** test_store.c test_iter_snapshot (iteration of a live store).  Added here:
** bc_iter and bc_lookup after every reopen (hints, no hints, read-only),
** deletes of keys put in the same file, in the active file, and of keys put
** again after a delete, across two merges. */
static void test_tombstones_never_surface(void **state) {
  tu_fix *fx = *state;
  const size_t K = 300;
  const char *dir = fx->base;
  tu_model m;
  tu_model_init(&m, K);
  bc_store *s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
  for (size_t i = 0; i < K; i++) TU_OK(tu_put_ver(s, &m, i, 1, 0, 120));
  for (size_t i = 0; i < K; i += 3) TU_OK(tu_del(s, &m, i));
  for (size_t i = 0; i < K; i += 4) TU_OK(tu_put_ver(s, &m, i, 2, 0, 120));
  for (size_t i = 0; i < K; i += 5)
    if (m.v[i]) TU_OK(tu_del(s, &m, i));
  for (size_t i = 1; i < K; i += 7) { /* put and delete next to each other */
    TU_OK(tu_put_ver(s, &m, i, 3, 0, 120));
    TU_OK(tu_del(s, &m, i));
  }
  for (size_t i = K - 12; i < K; i++) /* tombstones in the active file */
    if (m.v[i]) TU_OK(tu_del(s, &m, i));
  kf_check_all(s, &m, "live store");
  assert_int_equal(bc_close(s), BC_OK);

  bc_options ro;
  bc_options_init(&ro);
  ro.read_only = 1;
  kf_reopen_check(dir, 4096, &m, "reopen from hints");
  s = tu_open_opts(dir, &ro);
  kf_check_all(s, &m, "read-only, from hints");
  assert_int_equal(bc_close(s), BC_OK);
  kf_unlink_hints(dir);
  s = tu_open_opts(dir, &ro);
  kf_check_all(s, &m, "read-only, scanning");
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
  kf_check_all(s, &m, "reopen scanning");
  TU_OK(bc_merge(s, NULL));
  kf_check_all(s, &m, "after a merge");
  assert_int_equal(bc_close(s), BC_OK);
  kf_reopen_check(dir, 4096, &m, "after a merge, reopen from hints");
  kf_unlink_hints(dir);
  s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
  kf_check_all(s, &m, "after a merge, reopen scanning");
  /* Tombstones in the active file, whose id is lower than the merge
  ** outputs holding the puts; and puts of deleted keys. */
  for (size_t i = 2; i < K; i += 6)
    if (m.v[i]) TU_OK(tu_del(s, &m, i));
  for (size_t i = 0; i < K; i += 9)
    if (!m.v[i]) TU_OK(tu_put_ver(s, &m, i, 4, 0, 120));
  kf_check_all(s, &m, "deletes after the merge");
  assert_int_equal(bc_close(s), BC_OK);
  kf_reopen_check(dir, 4096, &m, "deletes after the merge, reopen from hints");
  s = tu_open_opts(dir, &ro);
  kf_check_all(s, &m, "deletes after the merge, read-only");
  assert_int_equal(bc_close(s), BC_OK);
  kf_unlink_hints(dir);
  s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
  kf_check_all(s, &m, "deletes after the merge, reopen scanning");
  TU_OK(bc_merge(s, NULL));
  kf_check_all(s, &m, "second merge");
  assert_int_equal(bc_close(s), BC_OK);
  kf_reopen_check(dir, 4096, &m, "second merge, reopen from hints");
  kf_unlink_hints(dir);
  kf_reopen_check(dir, 4096, &m, "second merge, reopen scanning");
  tu_model_free(&m);
}

/* ----------------------------------- 3. a hint pointing past its data */

/* Offsets of the entries of hint image d (len bytes); returns how many. */
static size_t kf_hint_entries(const unsigned char *d, size_t len, size_t *pos, size_t cap) {
  size_t at = BC_HINT_HEADER_SIZE, end = len - BC_HINT_TRAILER_SIZE, n = 0;
  while (at < end) {
    bc_rec r;
    uint64_t off;
    assert_int_equal(bc_hint_entry_decode(d + at, &r, &off), 0);
    assert_true(n < cap);
    pos[n++] = at;
    int marker = r.type == BC_REC_COMMIT || r.type == BC_REC_ROLLBACK_TO;
    at += BC_HINT_ENTRY_SIZE + (marker ? 8 : r.klen);
  }
  return n;
}

/* Item 3.  Existing coverage: test_recovery.c test_damaged_hint_ignored
** (flipped bytes, cut hints, another file's hint: all fail a CRC or the
** file id).  Added here: hints whose checksums all hold (the trailer CRC is
** rebuilt with record.c's encoder) but whose entries point past the end of
** the data file, past 2^64, into the file header, or off the record grid;
** each must be ignored and the data file scanned. */
static void test_hint_entry_past_end(void **state) {
  tu_fix *fx = *state;
  char tmpl[PATH_MAX], p[PATH_MAX], h[PATH_MAX];
  tu_path(tmpl, "%s/template", fx->base);
  tu_model m;
  kf_build(tmpl, &m, 300);
  bc_store *s = tu_open(tmpl, 4096, BC_SYNC_OFF, NULL);
  bc_stats st0 = tu_stats(s);
  assert_true(st0.hint_files >= 5);
  assert_int_equal(bc_close(s), BC_OK);
  data_path(p, tmpl, 2);
  hint_path(h, tmpl, 2);
  uint64_t dsize = (uint64_t)tu_file_size(p);
  size_t hlen;
  unsigned char *orig = tu_read_file(h, &hlen);
  size_t pos[512];
  size_t ne = kf_hint_entries(orig, hlen, pos, 512);
  assert_true(ne >= 6);

  const char *names[] = {"last entry's offset 4 KiB past the end",
                         "last entry's value_size 100000 too big",
                         "first entry's offset at the end of the file",
                         "an extra entry for a record at the end of the file",
                         "last entry's offset near 2^64",
                         "a middle entry's value_size BC_MAX_VALUE_SIZE",
                         "a middle entry's offset off by one",
                         "first entry's offset 0 (the file header)"};
  const size_t nv = sizeof names / sizeof *names;
  for (size_t variant = 0; variant < nv; variant++) {
    char dir[PATH_MAX], hh[PATH_MAX], pp[PATH_MAX];
    tu_path(dir, "%s/v%zu", fx->base, variant);
    assert_int_equal(tu_copy_dir(tmpl, dir), 0);
    unsigned char *d = malloc(hlen + 64);
    assert_non_null(d);
    memcpy(d, orig, hlen);
    size_t len = hlen;
    uint32_t count = (uint32_t)ne;
    size_t last = pos[ne - 1], mid = pos[ne / 2], first = pos[0];
    switch (variant) {
      case 0: bc_put_u64(d + last + 32, dsize + 4096); break;
      case 1: bc_put_u32(d + last + 8, bc_get_u32(d + last + 8) + 100000); break;
      case 2: bc_put_u64(d + first + 32, dsize); break;
      case 3: {
        size_t body = len - BC_HINT_TRAILER_SIZE;
        bc_rec r = {BC_REC_PUT, 0, st0.next_seq, 0, 5, 10};
        bc_hint_entry_encode(d + body, &r, dsize);
        memcpy(d + body + BC_HINT_ENTRY_SIZE, "ghost", 5);
        len = body + BC_HINT_ENTRY_SIZE + 5 + BC_HINT_TRAILER_SIZE;
        count++;
        break;
      }
      case 4: bc_put_u64(d + last + 32, UINT64_MAX - 16); break;
      case 5: bc_put_u32(d + mid + 8, BC_MAX_VALUE_SIZE); break;
      case 6: bc_put_u64(d + mid + 32, bc_get_u64(d + mid + 32) + 1); break;
      case 7: bc_put_u64(d + first + 32, 0); break;
    }
    bc_hint_trailer_encode(d + len - BC_HINT_TRAILER_SIZE, count, d,
                           len - BC_HINT_TRAILER_SIZE);
    /* Every checksum of the crafted hint holds. */
    uint32_t ver, id, c2;
    uint64_t ds;
    assert_int_equal(bc_hint_header_decode(d, &ver, &id, &ds), 0);
    assert_true(ds == dsize && id == 2);
    assert_int_equal(bc_hint_trailer_check(d + len - BC_HINT_TRAILER_SIZE, &c2, d,
                                           len - BC_HINT_TRAILER_SIZE), 0);
    assert_true(c2 == count);
    hint_path(hh, dir, 2);
    tu_write_file(hh, d, len);
    free(d);
    data_path(pp, dir, 2);
    unsigned long crc = kf_file_crc(pp);
    for (int round = 0; round < 2; round++) {
      char where[128];
      snprintf(where, sizeof where, "hint with %s, open %d", names[variant], round + 1);
      s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
      bc_stats st = tu_stats(s);
      if (st.hint_files != st0.hint_files - 1)
        fail_msg("%s: %llu hint files in use, want %llu (the bogus one ignored)", where,
                 (unsigned long long)st.hint_files,
                 (unsigned long long)(st0.hint_files - 1));
      assert_int_equal(st.corrupt, 0);
      assert_int_equal(st.truncated_bytes, 0);
      assert_true(st.next_seq == st0.next_seq);
      kf_check_all(s, &m, where);
      assert_int_equal(bc_lookup(s, "ghost", 5, NULL), BC_NOTFOUND);
      assert_int_equal(bc_close(s), BC_OK);
    }
    assert_true(kf_file_crc(pp) == crc);
  }
  free(orig);
  tu_model_free(&m);
}

/* -------------------------------- 4. CRC failures never return bytes */

/* Expect bc_get of key k to give BC_CORRUPT and no value. */
static void kf_expect_corrupt(bc_store *s, const char *k, const tu_model *older, size_t i,
                              const char *where) {
  bc_buf b = {0};
  const void *v = NULL;
  bc_info info;
  bc_status st = bc_get(s, k, strlen(k), &b, &v, &info);
  if (st != BC_CORRUPT) {
    const char *what = "";
    if (st == BC_OK)
      what = older && older->v[i] && info.value_size == older->len[i] &&
                     memcmp(v, older->v[i], older->len[i]) == 0
                 ? " (its previous version)"
                 : " (the damaged bytes)";
    fail_msg("%s: damaged record of key %zu: bc_get gave %s%s, want BC_CORRUPT", where, i,
             bc_status_name(st), what);
  }
  if (v != NULL) fail_msg("%s: key %zu: BC_CORRUPT but a value pointer was set", where, i);
  bc_buf_free(&b);
}

/* Index (in recs[0..n)) of a record after `from` that satisfies want
** (type), with at least one record before and after it; n if none. */
static size_t kf_pick(const krec *recs, size_t n, size_t from, uint8_t type, uint64_t min_seq) {
  for (size_t j = from; j + 1 < n; j++)
    if (j > 0 && recs[j].r.type == type && recs[j].r.seq >= min_seq &&
        key_index(recs[j].key, recs[j].r.klen) != SIZE_MAX)
      return j;
  return n;
}

/* Make every record of the store in dir durable and say so in its active
** file (docs/FORMAT.md Recovery 3): a writer under sync=full (its open
** fsyncs the tail) commits a transaction -- key i rewritten with its value
** in m, so nothing changes -- whose COMMIT claims everything before it.
** Damage to the active file is then damage to durable data (corruption),
** not an unsynced tail left by a power loss.  The default max_file_size:
** no rotation, the active file stays the active file. */
static void kf_claim_durable(const char *dir, const tu_model *m, size_t i) {
  bc_store *s = tu_open(dir, 0, BC_SYNC_FULL, NULL);
  char k[32];
  size_t kl = tu_key(k, i);
  bc_txn *t;
  TU_OK(bc_txn_begin(s, &t));
  assert_non_null(m->v[i]);
  TU_OK(bc_txn_put(t, k, kl, m->meta[i], m->v[i], m->len[i]));
  TU_OK(bc_txn_commit(t));
  assert_int_equal(bc_close(s), BC_OK);
}

/* Item 4.  Existing coverage: test_recovery.c
** test_flipped_value_sealed_scanned, test_flipped_value_sealed_with_hint and
** test_damage_does_not_hide_later_records (a damaged value in a sealed
** file).  Added here: damage in four places at once -- a put and a
** tombstone in a sealed file without its hint, a put in a sealed file read
** from its hint, a put in the middle of the active file, and (second store)
** a put in a merge output without its hint -- each key whose latest record
** is damaged gives BC_CORRUPT (never the bytes, never its previous version,
** never a deleted key back), every other key reads right, and so after
** healing writes, a reopen and a read-only open.  The active file's damage
** lies below a durability claim (kf_claim_durable): without one it would
** be the unsynced tail of a power loss, cut (test_recovery.c
** test_unsynced_tail_*). */
static void test_crc_failure_never_returns_bytes(void **state) {
  tu_fix *fx = *state;
  char dir[PATH_MAX], p[PATH_MAX];
  tu_path(dir, "%s/s", fx->base);
  const size_t P = 200, K = 270;
  tu_model m, prev;
  tu_model_init(&m, K);
  bc_store *s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
  for (size_t i = 0; i < P; i++) TU_OK(tu_put_ver(s, &m, i, 1, 20, 40));
  tu_model_copy(&prev, &m);
  uint64_t s2 = tu_stats(s).next_seq; /* first seq of phase 2 */
  for (size_t i = 0; i < P; i++) {
    if (i % 4 == 0)
      TU_OK(tu_del(s, &m, i));
    else
      TU_OK(tu_put_ver(s, &m, i, 2, 20, 40));
  }
  uint64_t s3 = tu_stats(s).next_seq;
  for (size_t i = P; i < P + 60; i++) TU_OK(tu_put_ver(s, &m, i, 1, 20, 40));
  for (size_t i = P; i < K; i++) tu_model_set(&prev, i, m.v[i], m.len[i], m.meta[i]);
  uint64_t s4 = tu_stats(s).next_seq;
  for (size_t i = P; i < P + 5; i++) TU_OK(tu_put_ver(s, &m, i, 2, 20, 40));
  for (size_t i = P + 60; i < K; i++) TU_OK(tu_put_ver(s, &m, i, 1, 20, 40));
  uint32_t tail = (uint32_t)tu_stats(s).active_file_id;
  assert_int_equal(bc_close(s), BC_OK);
  kf_claim_durable(dir, &m, K - 1);

  /* Two sealed files holding only phase-2 records (seq in [s2, s3)). */
  uint32_t ids[256], f1 = 0, f2 = 0;
  size_t nids = tu_data_ids(dir, ids, 256);
  assert_int_equal(ids[nids - 1], tail);
  krec r1[256], r2[256], rt[256];
  size_t n1 = 0, n2 = 0, nt;
  for (size_t k = 0; k + 1 < nids; k++) {
    krec recs[256];
    data_path(p, dir, ids[k]);
    size_t n = kf_scan(p, recs, 256, NULL);
    assert_true(n <= 256);
    if (n < 6 || recs[0].r.seq < s2 || recs[n - 1].r.seq >= s3) continue;
    if (!f1) {
      f1 = ids[k];
      memcpy(r1, recs, n * sizeof *recs);
      n1 = n;
    } else if (!f2) {
      f2 = ids[k];
      memcpy(r2, recs, n * sizeof *recs);
      n2 = n;
    }
  }
  assert_true(f1 && f2);
  data_path(p, dir, tail);
  nt = kf_scan(p, rt, 256, NULL);
  assert_true(nt <= 256);
  long long tail_size = tu_file_size(p);

  /* The victims. */
  size_t ja = kf_pick(r1, n1, n1 / 3, BC_REC_PUT, 0);
  size_t jb = kf_pick(r1, n1, ja + 2, BC_REC_TOMBSTONE, 0);
  size_t jc = kf_pick(r2, n2, n2 / 2, BC_REC_PUT, 0);
  size_t jd = kf_pick(rt, nt, 0, BC_REC_PUT, s4);
  assert_true(ja < n1 && jb < n1 && jc < n2 && jd < nt);
  const krec *va = &r1[ja], *vb = &r1[jb], *vc = &r2[jc], *vd = &rt[jd];
  size_t ka = key_index(va->key, 10), kb = key_index(vb->key, 10),
         kc = key_index(vc->key, 10), kd = key_index(vd->key, 10);
  data_path(p, dir, f1);
  tu_flip(p, (long long)(va->off + 32 + va->r.klen + va->r.vlen / 2), 0x10);
  tu_flip(p, (long long)vb->off, 0x01); /* a tombstone has no value: its CRC */
  unsigned long crc1 = kf_file_crc(p);
  hint_path(p, dir, f1);
  assert_int_equal(unlink(p), 0);
  data_path(p, dir, f2);
  tu_flip(p, (long long)(vc->off + 32 + vc->r.klen + vc->r.vlen / 2), 0x10);
  data_path(p, dir, tail);
  tu_flip(p, (long long)(vd->off + 32 + vd->r.klen + vd->r.vlen / 2), 0x10);

  bc_options ro;
  bc_options_init(&ro);
  ro.read_only = 1;
  const size_t victim[4] = {ka, kb, kc, kd};
  const char *vkeys[4] = {va->key, vb->key, vc->key, vd->key};
  for (int round = 0; round < 3; round++) {
    char where[96];
    const char *names[] = {"writer", "read-only", "writer, after healing writes"};
    snprintf(where, sizeof where, "damaged records, %s", names[round]);
    s = round == 1 ? tu_open_opts(dir, &ro) : tu_open(dir, 4096, BC_SYNC_OFF, NULL);
    bc_stats st = tu_stats(s);
    if (round == 0) {
      if (st.corrupt < 3)
        fail_msg("%s: stats.corrupt %llu, want >= 3 (two in %010u.data, one in the "
                 "active file)", where, (unsigned long long)st.corrupt, f1);
      assert_int_equal(st.truncated_bytes, 0);
      assert_int_equal(tu_file_size(p), tail_size);
    }
    for (int v = 0; v < 4; v++) {
      if (round > 0 && v < 2) continue; /* healed */
      kf_expect_corrupt(s, vkeys[v], &prev, victim[v], where);
    }
    for (size_t i = 0; i < K; i++) {
      int skip = 0;
      for (int v = 0; v < 4; v++) skip |= i == victim[v] && !(round > 0 && v < 2);
      if (!skip) kf_check_key(s, &m, i, where);
    }
    if (round == 0) {
      /* A merge leaves the files holding damaged records out: they stay as
      ** they are (docs/FORMAT.md "Damaged files"), the rest is merged, and
      ** the later rounds find every answer as before. */
      unsigned long crcs[256];
      for (size_t k = 0; k < nids; k++) {
        char q[PATH_MAX];
        data_path(q, dir, ids[k]);
        crcs[k] = kf_file_crc(q);
      }
      /* Its hint hides the damage in f2 until the merge reads the record. */
      assert_true(tu_stats(s).damaged_files >= 2);
      TU_OK(bc_merge(s, NULL));
      assert_true(tu_stats(s).damaged_files >= 3);
      for (size_t k = 0; k < nids; k++) {
        if (ids[k] != f1 && ids[k] != f2 && ids[k] != tail) continue;
        char q[PATH_MAX];
        data_path(q, dir, ids[k]);
        if (!tu_exists(q) || kf_file_crc(q) != crcs[k])
          fail_msg("%s: the merge removed or changed damaged data file %u", where, ids[k]);
      }
      char q[PATH_MAX];
      tu_path(q, "%s/MERGE", dir);
      assert_false(tu_exists(q));
      assert_int_equal(tu_count_files(dir, ".data.merging"), 0);
      assert_int_equal(tu_count_files(dir, ".hint.merging"), 0);
      /* Healing: a new value for one damaged key, a delete of the other. */
      TU_OK(tu_put_ver(s, &m, ka, 5, 20, 40));
      TU_OK(tu_del(s, &m, kb));
    }
    assert_int_equal(bc_close(s), BC_OK);
  }
  data_path(p, dir, f1);
  assert_true(kf_file_crc(p) == crc1); /* a sealed file is never modified */

  /* A merge output read without its hint. */
  char dir2[PATH_MAX];
  tu_path(dir2, "%s/merged", fx->base);
  tu_model m2;
  tu_model_init(&m2, 150);
  s = tu_open(dir2, 4096, BC_SYNC_OFF, NULL);
  for (size_t i = 0; i < 150; i++) TU_OK(tu_put_ver(s, &m2, i, 1, 20, 60));
  for (size_t i = 0; i < 150; i += 3) TU_OK(tu_put_ver(s, &m2, i, 2, 20, 60));
  TU_OK(bc_merge(s, NULL));
  uint32_t active = (uint32_t)tu_stats(s).active_file_id;
  assert_int_equal(bc_close(s), BC_OK);
  nids = tu_data_ids(dir2, ids, 256);
  assert_true(ids[nids - 1] > active); /* a merge output */
  krec rm[256];
  data_path(p, dir2, ids[nids - 2] > active ? ids[nids - 2] : ids[nids - 1]);
  size_t nm = kf_scan(p, rm, 256, NULL);
  size_t jm = kf_pick(rm, nm, nm / 2, BC_REC_PUT, 0);
  assert_true(jm < nm);
  tu_flip(p, (long long)(rm[jm].off + 32 + rm[jm].r.klen + rm[jm].r.vlen / 2), 0x10);
  kf_unlink_hints(dir2);
  s = tu_open(dir2, 4096, BC_SYNC_OFF, NULL);
  assert_true(tu_stats(s).corrupt >= 1);
  size_t km = key_index(rm[jm].key, 10);
  kf_expect_corrupt(s, rm[jm].key, NULL, km, "damaged record in a merge output");
  for (size_t i = 0; i < 150; i++)
    if (i != km) kf_check_key(s, &m2, i, "damaged record in a merge output");
  assert_int_equal(bc_close(s), BC_OK);
  tu_model_free(&m2);
  tu_model_free(&prev);
  tu_model_free(&m);
}

/* ---------------------------- 5. zeros or garbage after the last record */

/* Item 5.  Existing coverage: test_recovery.c test_torn_tail_garbage (64
** zeros, 100 random bytes, short garbage, a record running past the end, a
** whole record failing its CRC) and test_torn_tail_read_only.  Added here:
** 4096 zeros (a preallocated block), 4096 bytes of garbage, 1 MiB of zeros,
** and zeros in an active file that holds no record yet (right after a
** merge), in a store of many files; then writes that rotate, a reopen, and
** a reopen without hints. */
static void test_trailing_zeros_or_garbage(void **state) {
  tu_fix *fx = *state;
  const char *names[] = {"4096 zero bytes", "4096 bytes of garbage", "1 MiB of zeros",
                         "4096 zeros in an active file with no record"};
  const size_t junk_len[] = {4096, 4096, MiB, 4096};
  for (int variant = 0; variant < 4; variant++) {
    char dir[PATH_MAX], p[PATH_MAX], where[128];
    tu_path(dir, "%s/v%d", fx->base, variant);
    tu_model m;
    tu_model_init(&m, 300);
    bc_store *s = tu_open(dir, 8192, BC_SYNC_OFF, NULL);
    for (size_t i = 0; i < 150; i++) TU_OK(tu_put_ver(s, &m, i, 1, 0, 200));
    for (size_t i = 0; i < 150; i += 3) TU_OK(tu_put_ver(s, &m, i, 2, 0, 200));
    for (size_t i = 0; i < 150; i += 10) TU_OK(tu_del(s, &m, i));
    if (variant == 3) TU_OK(bc_merge(s, NULL));
    uint32_t active = (uint32_t)tu_stats(s).active_file_id;
    assert_true(tu_stats(s).data_files >= 3);
    assert_int_equal(bc_close(s), BC_OK);
    data_path(p, dir, active);
    long long size = tu_file_size(p);
    if (variant == 3) assert_int_equal(size, BC_FILE_HEADER_SIZE);
    unsigned char *junk = calloc(junk_len[variant], 1);
    assert_non_null(junk);
    if (variant == 1) tu_fill(junk, junk_len[variant], 99, 99);
    tu_append_file(p, junk, junk_len[variant]);
    free(junk);

    /* A reader sees every record and cuts nothing. */
    bc_options ro;
    bc_options_init(&ro);
    ro.read_only = 1;
    s = tu_open_opts(dir, &ro);
    snprintf(where, sizeof where, "%s, read-only", names[variant]);
    kf_check_all(s, &m, where);
    assert_int_equal(bc_close(s), BC_OK);
    assert_true(tu_file_size(p) == size + (long long)junk_len[variant]);

    /* A writer cuts exactly the junk. */
    s = tu_open(dir, 8192, BC_SYNC_OFF, NULL);
    snprintf(where, sizeof where, "%s, writer", names[variant]);
    bc_stats st = tu_stats(s);
    if (st.truncated_bytes != junk_len[variant])
      fail_msg("%s: truncated %llu bytes, want %zu", where,
               (unsigned long long)st.truncated_bytes, junk_len[variant]);
    assert_int_equal(st.corrupt, 0);
    assert_int_equal(tu_file_size(p), size);
    assert_int_equal(st.active_file_id, active);
    kf_check_all(s, &m, where);
    /* Writes go on, across rotations. */
    for (size_t i = 150; i < 300; i++) TU_OK(tu_put_ver(s, &m, i, 1, 0, 200));
    for (size_t i = 1; i < 300; i += 4) TU_OK(tu_put_ver(s, &m, i, 3, 0, 200));
    for (size_t i = 2; i < 300; i += 9)
      if (m.v[i]) TU_OK(tu_del(s, &m, i));
    assert_true(tu_stats(s).active_file_id > active);
    assert_int_equal(bc_close(s), BC_OK);
    s = tu_open(dir, 8192, BC_SYNC_OFF, NULL);
    snprintf(where, sizeof where, "%s, writes after the cut, reopened", names[variant]);
    assert_int_equal(tu_stats(s).truncated_bytes, 0);
    kf_check_all(s, &m, where);
    assert_int_equal(bc_close(s), BC_OK);
    kf_unlink_hints(dir);
    snprintf(where, sizeof where, "%s, reopened scanning", names[variant]);
    kf_reopen_check(dir, 8192, &m, where);
    tu_model_free(&m);
  }
}

/* ----------------------------------- 6. an empty newest data file */

/* Item 6.  Existing coverage: test_recovery.c test_crash_creating_data_file
** (a 0-byte and a 13-byte newest file get a fresh header, data kept).
** Added here: a header-only newest file, a gap in the ids, an empty file
** above merge outputs, an orphan hint with a higher id; and that no id is
** ever used twice: every file created afterwards has an id above every id
** ever seen in the directory, and no older file changes. */
static void test_empty_newest_data_file(void **state) {
  tu_fix *fx = *state;
  const char *names[] = {"0 bytes, id max+1", "header only, id max+1",
                         "header only, id max+7", "0 bytes, id max+1, after a merge",
                         "header only, id max+1, orphan hint max+3"};
  for (int variant = 0; variant < 5; variant++) {
    char dir[PATH_MAX], p[PATH_MAX], where[128];
    tu_path(dir, "%s/v%d", fx->base, variant);
    tu_model m;
    tu_model_init(&m, 500);
    bc_store *s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
    for (size_t i = 0; i < 200; i++) TU_OK(tu_put_ver(s, &m, i, 1, 10, 100));
    for (size_t i = 0; i < 200; i += 7) TU_OK(tu_del(s, &m, i));
    if (variant == 3) TU_OK(bc_merge(s, NULL));
    assert_int_equal(bc_close(s), BC_OK);
    uint32_t ids[256];
    size_t n = tu_data_ids(dir, ids, 256);
    unsigned long crc[256];
    for (size_t i = 0; i < n; i++) {
      data_path(p, dir, ids[i]);
      crc[i] = kf_file_crc(p);
    }
    uint32_t max = ids[n - 1], empty = max + (variant == 2 ? 7 : 1);
    uint32_t highest = variant == 4 ? max + 3 : empty;
    unsigned char hdr[BC_FILE_HEADER_SIZE];
    bc_file_header_encode(hdr, empty, 0);
    data_path(p, dir, empty);
    tu_write_file(p, hdr, variant == 0 || variant == 3 ? 0 : sizeof hdr);
    if (variant == 4) {
      /* A hint without a data file (e.g. from a backup): never paired with
      ** a data file created later under its id. */
      char h0[PATH_MAX], h[PATH_MAX];
      hint_path(h0, dir, ids[0]);
      hint_path(h, dir, max + 3);
      size_t l;
      unsigned char *d = tu_read_file(h0, &l);
      tu_write_file(h, d, l);
      free(d);
    }

    s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
    snprintf(where, sizeof where, "%s", names[variant]);
    bc_stats st = tu_stats(s);
    assert_int_equal(st.corrupt, 0);
    assert_true(st.active_file_id >= empty);
    kf_check_all(s, &m, where);
    for (size_t i = 200; i < 500; i++) TU_OK(tu_put_ver(s, &m, i, 1, 10, 100));
    for (size_t i = 0; i < 500; i += 5) TU_OK(tu_put_ver(s, &m, i, 2, 10, 100));
    assert_true(tu_stats(s).active_file_id > highest);
    kf_check_all(s, &m, where);
    assert_int_equal(bc_close(s), BC_OK);
    /* Older files untouched; every new file above every old id. */
    uint32_t ids2[512];
    size_t n2 = tu_data_ids(dir, ids2, 512);
    for (size_t i = 0; i < n2; i++) {
      size_t j = 0;
      while (j < n && ids[j] != ids2[i]) j++;
      data_path(p, dir, ids2[i]);
      if (j < n) {
        if (kf_file_crc(p) != crc[j]) fail_msg("%s: data file %u changed", where, ids2[i]);
      } else if (ids2[i] != empty && ids2[i] <= highest) {
        fail_msg("%s: a new data file got id %u, not above %u", where, ids2[i], highest);
      }
      uint64_t end;
      kf_scan(p, NULL, 0, &end);
      if (end != (uint64_t)tu_file_size(p))
        fail_msg("%s: data file %u is not whole records", where, ids2[i]);
    }
    snprintf(where, sizeof where, "%s, reopened", names[variant]);
    s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
    kf_check_all(s, &m, where);
    TU_OK(bc_merge(s, NULL));
    kf_check_all(s, &m, where);
    assert_int_equal(bc_close(s), BC_OK);
    snprintf(where, sizeof where, "%s, merged and reopened", names[variant]);
    kf_reopen_check(dir, 4096, &m, where);
    tu_model_free(&m);
  }
}

/* ---------------------------------------- 7. a LOCK with a reused pid */

/* Item 7.  Existing coverage: test_store.c test_other_process (a writer
** killed with SIGKILL leaves LOCK with its dead pid; the next open works).
** Added here: LOCK naming a pid that is alive -- the parent process, pid 1,
** this very process, a live child -- or garbage, none of them holding the
** flock: the open succeeds, takes the lock for real (a second writer gets
** BC_LOCKED naming this pid) and keeps every key. */
static void test_lock_with_reused_pid(void **state) {
  tu_fix *fx = *state;
  char lock[PATH_MAX];
  tu_path(lock, "%s/LOCK", fx->base);
  tu_model m;
  tu_model_init(&m, 60);
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  for (size_t i = 0; i < 50; i++) TU_OK(tu_put_ver(s, &m, i, 1, 10, 100));
  assert_int_equal(bc_close(s), BC_OK);

  int go[2];
  assert_int_equal(pipe(go), 0);
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    close(go[1]);
    char c;
    ssize_t r = read(go[0], &c, 1);
    _exit(r < 0);
  }
  close(go[0]);

  const char *names[] = {"the parent's pid", "pid 1", "this process's pid",
                         "a live child's pid", "garbage", "nothing"};
  char text[6][64];
  snprintf(text[0], sizeof text[0], "%ld\n", (long)getppid());
  snprintf(text[1], sizeof text[1], "1\n");
  snprintf(text[2], sizeof text[2], "%ld\n", (long)getpid());
  snprintf(text[3], sizeof text[3], "%ld\n", (long)child);
  snprintf(text[4], sizeof text[4], "not a pid \x01\x7f");
  text[5][0] = 0;
  char mine[32], mypid[32];
  snprintf(mine, sizeof mine, "%ld\n", (long)getpid());
  snprintf(mypid, sizeof mypid, "pid %ld", (long)getpid());
  for (size_t v = 0; v < 6; v++) {
    char where[96], err[512] = "";
    snprintf(where, sizeof where, "LOCK naming %s", names[v]);
    tu_write_file(lock, text[v], strlen(text[v]));
    bc_options o;
    bc_options_init(&o);
    o.max_file_size = 4096;
    o.sync = BC_SYNC_OFF;
    s = NULL;
    bc_status st = bc_open(fx->base, &o, &s, err, sizeof err);
    if (st != BC_OK) fail_msg("%s: bc_open gave %s: %s", where, bc_status_name(st), err);
    kf_check_all(s, &m, where);
    /* The lock is really held now, in our name. */
    size_t l;
    unsigned char *d = tu_read_file(lock, &l);
    if (l != strlen(mine) || memcmp(d, mine, l) != 0)
      fail_msg("%s: LOCK holds '%.*s' after the open, want our pid", where, (int)l, d);
    free(d);
    bc_store *s2 = NULL;
    assert_int_equal(bc_open(fx->base, &o, &s2, err, sizeof err), BC_LOCKED);
    assert_null(s2);
    assert_non_null(strstr(err, mypid));
    TU_OK(tu_put_ver(s, &m, 50 + v, 1, 10, 100));
    assert_int_equal(bc_close(s), BC_OK);
    /* A reader does not care either. */
    tu_write_file(lock, text[v], strlen(text[v]));
    o.read_only = 1;
    s = tu_open_opts(fx->base, &o);
    kf_check_all(s, &m, where);
    assert_int_equal(bc_close(s), BC_OK);
  }
  assert_int_equal(write(go[1], "x", 1), 1);
  close(go[1]);
  int status;
  assert_int_equal(waitpid(child, &status, 0), child);
  kf_reopen_check(fx->base, 4096, &m, "after the LOCK variants");
  tu_model_free(&m);
}

/* ------------------------------ 8. max_file_size below one record */

/* Every data file of dir is a header and whole records, every record starts
** below mfs (rotation happens before an append once a file reached mfs), and
** every file but `active` holds at least one record.  Returns the number of
** records larger than mfs. */
static size_t kf_check_files(const char *dir, uint64_t mfs, uint32_t active,
                             const char *where) {
  uint32_t ids[1024];
  size_t n = tu_data_ids(dir, ids, 1024), big = 0;
  for (size_t i = 0; i < n; i++) {
    char p[PATH_MAX];
    data_path(p, dir, ids[i]);
    krec recs[512];
    uint64_t end;
    size_t nr = kf_scan(p, recs, 512, &end);
    assert_true(nr <= 512);
    if (end != (uint64_t)tu_file_size(p))
      fail_msg("%s: data file %u: a record is cut or damaged at offset %llu (size %lld)",
               where, ids[i], (unsigned long long)end, tu_file_size(p));
    if (ids[i] != active && nr == 0) fail_msg("%s: sealed data file %u is empty", where, ids[i]);
    for (size_t r = 0; r < nr; r++) {
      if (recs[r].off >= mfs)
        fail_msg("%s: data file %u: a record starts at %llu, past max_file_size %llu", where,
                 ids[i], (unsigned long long)recs[r].off, (unsigned long long)mfs);
      big += bc_rec_size(recs[r].r.klen, recs[r].r.vlen) > mfs;
    }
  }
  return big;
}

/* Item 8.  Existing coverage: test_store.c test_key_size_limit (one record
** of the largest key in 4 KiB files) and test_rotation_and_hints (small
** records).  Added here: max_file_size 5000, 7777 and 10000 with most
** records larger than that: every write works, every record lands whole in
** one file, reopen (hints and scans) and merge keep everything. */
static void test_max_file_size_below_record(void **state) {
  tu_fix *fx = *state;
  const uint64_t sizes[] = {5000, 7777, 10000};
  for (int v = 0; v < 3; v++) {
    uint64_t mfs = sizes[v];
    char dir[PATH_MAX], where[96];
    tu_path(dir, "%s/m%llu", fx->base, (unsigned long long)mfs);
    tio t;
    tio_init(&t);
    t.real_fsync = 0;
    tu_model m;
    tu_model_init(&m, 40);
    bc_store *s = tu_open(dir, mfs, BC_SYNC_OFF, &t.io);
    for (size_t i = 0; i < 40; i++) {
      TU_OK(tu_put_ver(s, &m, i, 1, 100, 24000));
      kf_check_key(s, &m, i, "right after the put");
    }
    for (size_t i = 0; i < 40; i += 3) TU_OK(tu_put_ver(s, &m, i, 2, 100, 24000));
    for (size_t i = 1; i < 40; i += 5) TU_OK(tu_del(s, &m, i));
    snprintf(where, sizeof where, "max_file_size %llu", (unsigned long long)mfs);
    kf_check_all(s, &m, where);
    TU_OK(bc_sync(s));
    bc_stats st = tu_stats(s);
    assert_true(st.data_files >= 10);
    size_t big = kf_check_files(dir, mfs, (uint32_t)st.active_file_id, where);
    assert_true(big >= 20);
    assert_int_equal(bc_close(s), BC_OK);
    s = tu_open(dir, mfs, BC_SYNC_OFF, &t.io);
    snprintf(where, sizeof where, "max_file_size %llu, reopened", (unsigned long long)mfs);
    kf_check_all(s, &m, where);
    TU_OK(bc_merge(s, NULL));
    snprintf(where, sizeof where, "max_file_size %llu, merged", (unsigned long long)mfs);
    kf_check_all(s, &m, where);
    kf_check_files(dir, mfs, (uint32_t)tu_stats(s).active_file_id, where);
    TU_OK(tu_put_ver(s, &m, 0, 3, 30000, 1)); /* after the merge, too */
    assert_int_equal(bc_close(s), BC_OK);
    s = tu_open(dir, mfs, BC_SYNC_OFF, &t.io);
    snprintf(where, sizeof where, "max_file_size %llu, merged, reopened",
             (unsigned long long)mfs);
    kf_check_all(s, &m, where);
    assert_int_equal(tu_stats(s).corrupt, 0);
    assert_int_equal(bc_close(s), BC_OK);
    kf_unlink_hints(dir);
    s = tu_open(dir, mfs, BC_SYNC_OFF, &t.io);
    snprintf(where, sizeof where, "max_file_size %llu, reopened scanning",
             (unsigned long long)mfs);
    kf_check_all(s, &m, where);
    assert_int_equal(bc_close(s), BC_OK);
    assert_int_equal(tio_open_fds(&t), 0);
    tio_free(&t);
    tu_model_free(&m);
  }
}

/* ------------------------------------ 9. merges racing newer writes */

#define RACE_KEYS 32
#define RACE_ROUNDS 50

typedef struct race {
  bc_store *s;
  atomic_int done;     /* the writer finished */
  atomic_int stopped;  /* the merger finished */
  atomic_long merges;
  pthread_mutex_t mu;
  char failure[256];   /* the first failure a thread saw */
  unsigned last[RACE_KEYS]; /* writer's: last version written, 0 deleted */
} race;

static void race_fail(race *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void race_fail(race *r, const char *fmt, ...) {
  pthread_mutex_lock(&r->mu);
  if (!r->failure[0]) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->failure, sizeof r->failure, fmt, ap);
    va_end(ap);
  }
  pthread_mutex_unlock(&r->mu);
}

/* Value of key i, version ver: i and ver, then tu_fill bytes. */
static size_t race_value(unsigned char *v, size_t i, unsigned ver) {
  size_t len = 8 + tu_vlen(i, ver, 0, 200);
  bc_put_u32(v, (uint32_t)i);
  bc_put_u32(v + 4, ver);
  tu_fill(v + 8, len - 8, i, ver);
  return len;
}

/* Writes newer and newer versions of the same keys (and deletes some),
** reading each back at once. */
static void *race_writer(void *p) {
  race *r = p;
  unsigned char v[256];
  bc_buf b = {0};
  for (unsigned ver = 1; ver <= RACE_ROUNDS; ver++) {
    /* At least one merge between two rounds, whatever the scheduler does. */
    while (atomic_load(&r->merges) < (long)ver && !atomic_load(&r->stopped)) usleep(50);
    for (size_t i = 0; i < RACE_KEYS; i++) {
      char k[32];
      size_t kl = tu_key(k, i);
      const void *got;
      bc_info info;
      if ((ver + i) % 11 == 0 && r->last[i]) {
        if (bc_delete(r->s, k, kl) != BC_OK) race_fail(r, "delete of key %zu failed", i);
        r->last[i] = 0;
        bc_status st = bc_get(r->s, k, kl, &b, &got, &info);
        if (st != BC_NOTFOUND)
          race_fail(r, "key %zu deleted (version %u): bc_get gave %s", i, ver,
                    bc_status_name(st));
      } else {
        size_t len = race_value(v, i, ver);
        if (bc_put(r->s, k, kl, (uint8_t)ver, v, len) != BC_OK)
          race_fail(r, "put of key %zu version %u failed", i, ver);
        r->last[i] = ver;
        bc_status st = bc_get(r->s, k, kl, &b, &got, &info);
        if (st != BC_OK || info.value_size != len || memcmp(got, v, len) != 0 ||
            info.meta != (uint8_t)ver)
          race_fail(r, "key %zu read right after its version %u was written: %s%s", i, ver,
                    bc_status_name(st),
                    st == BC_OK && info.value_size >= 8
                        ? (bc_get_u32((const unsigned char *)got + 4) < ver ? ", an older version"
                                                                            : ", wrong bytes")
                        : "");
      }
      sched_yield();
    }
  }
  bc_buf_free(&b);
  atomic_store(&r->done, 1);
  return NULL;
}

static void *race_merger(void *p) {
  race *r = p;
  while (!atomic_load(&r->done)) {
    if (bc_merge(r->s, NULL) != BC_OK) {
      char e[256];
      race_fail(r, "bc_merge failed: %s", bc_errmsg_copy(r->s, e, sizeof e));
      break;
    }
    atomic_fetch_add(&r->merges, 1);
    usleep(1000); /* let the writer in: the merge holds the store mutex */
  }
  atomic_store(&r->stopped, 1);
  return NULL;
}

/* Reads random keys: every value is a whole version of its key, and a key
** never goes back to an older version once a newer one was read. */
static void *race_reader(void *p) {
  race *r = p;
  unsigned seen[RACE_KEYS] = {0};
  unsigned char want[256];
  bc_buf b = {0};
  uint64_t x = 88172645463325252ull;
  while (!atomic_load(&r->done)) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    size_t i = (size_t)(x % RACE_KEYS);
    char k[32];
    size_t kl = tu_key(k, i);
    const void *got;
    bc_info info;
    bc_status st = bc_get(r->s, k, kl, &b, &got, &info);
    if (st == BC_NOTFOUND) continue;
    if (st != BC_OK) {
      race_fail(r, "reader: key %zu: %s", i, bc_status_name(st));
      continue;
    }
    const unsigned char *u = got;
    unsigned ver = info.value_size >= 8 ? bc_get_u32(u + 4) : 0;
    size_t len = ver ? race_value(want, i, ver) : 0;
    if (!ver || bc_get_u32(u) != i || len != info.value_size || memcmp(want, u, len) != 0)
      race_fail(r, "reader: key %zu: not a whole version of the key", i);
    else if (ver < seen[i])
      race_fail(r, "reader: key %zu went back from version %u to %u", i, seen[i], ver);
    else
      seen[i] = ver;
  }
  bc_buf_free(&b);
  return NULL;
}

/* Item 9.  Existing coverage: test_store.c test_threads (writers on
** disjoint keys, readers and a merging thread; final state checked).
** Added here: one writer rewriting the same few keys, reading each back at
** once, while a thread merges back to back and a reader checks that no key
** ever goes back to an older version; the final state is the last writes,
** also after reopen (hints and scans) and another merge. */
static void test_merge_races_newer_writes(void **state) {
  tu_fix *fx = *state;
  race r;
  memset(&r, 0, sizeof r);
  pthread_mutex_init(&r.mu, NULL);
  atomic_init(&r.done, 0);
  atomic_init(&r.stopped, 0);
  atomic_init(&r.merges, 0);
  tio t; /* the engine calls it under the store mutex only */
  tio_init(&t);
  t.real_fsync = 0;
  r.s = tu_open(fx->base, 4096, BC_SYNC_OFF, &t.io);
  pthread_t w, g, rd;
  assert_int_equal(pthread_create(&g, NULL, race_merger, &r), 0);
  assert_int_equal(pthread_create(&rd, NULL, race_reader, &r), 0);
  assert_int_equal(pthread_create(&w, NULL, race_writer, &r), 0);
  pthread_join(w, NULL);
  pthread_join(g, NULL);
  pthread_join(rd, NULL);
  if (r.failure[0]) fail_msg("%s", r.failure);
  long merges = atomic_load(&r.merges);
  if (merges < RACE_ROUNDS) fail_msg("only %ld merges ran during the writes", merges);
  if (getenv("BC_TEST_VERBOSE"))
    print_message("    [item 9] %ld merges during %d writes\n", merges,
                  RACE_KEYS * RACE_ROUNDS);
  tu_model m;
  tu_model_init(&m, RACE_KEYS);
  for (size_t i = 0; i < RACE_KEYS; i++) {
    if (!r.last[i]) continue;
    unsigned char v[256];
    size_t len = race_value(v, i, r.last[i]);
    tu_model_set(&m, i, v, len, (uint8_t)r.last[i]);
  }
  kf_check_all(r.s, &m, "after the race");
  TU_OK(bc_merge(r.s, NULL));
  kf_check_all(r.s, &m, "after the race and one more merge");
  assert_int_equal(bc_close(r.s), BC_OK);
  assert_int_equal(tio_open_fds(&t), 0);
  tio_free(&t);
  kf_reopen_check(fx->base, 4096, &m, "after the race, reopened");
  kf_unlink_hints(fx->base);
  kf_reopen_check(fx->base, 4096, &m, "after the race, reopened scanning");
  pthread_mutex_destroy(&r.mu);
  tu_model_free(&m);
}

/* -------------------------- 10. merged-away files are closed at once */

/* Open descriptors of this process; *deleted receives how many of them are
** files under dir that have been deleted. */
static int kf_fds(const char *dir, int *deleted) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int n = 0;
  *deleted = 0;
  size_t dl = strlen(dir);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    n++;
    char link[300], target[PATH_MAX + 32];
    snprintf(link, sizeof link, "/proc/self/fd/%s", de->d_name);
    ssize_t l = readlink(link, target, sizeof target - 1);
    if (l <= 0) continue;
    target[l] = 0;
    if (strncmp(target, dir, dl) == 0 && strstr(target, " (deleted)")) (*deleted)++;
  }
  closedir(d);
  return n;
}

/* Item 10.  Existing coverage: test_merge.c checks tio_open_fds() == 0
** after bc_close (test_merge_fsyncs_even_with_sync_off, the fault sweeps).
** Added here: while the store stays open, 1000 merges (each with rotated
** inputs) leave the number of open descriptors flat and never a descriptor
** of a deleted file (/proc/self/fd). */
static void test_merge_closes_deleted_files(void **state) {
  tu_fix *fx = *state;
  tio t;
  tio_init(&t);
  t.real_fsync = 0;
  int del, fds_closed = kf_fds(fx->base, &del);
  tu_model m;
  tu_model_init(&m, 8);
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, &t.io);
  int base = -1, most = 0;
  for (unsigned k = 1; k <= 1000; k++) {
    for (size_t j = 0; j < 4; j++)
      TU_OK(tu_put_ver(s, &m, ((size_t)k * 4 + j) % 8, k, 1500, 1));
    TU_OK(bc_merge(s, NULL));
    int n = kf_fds(fx->base, &del);
    if (del)
      fail_msg("after merge %u: %d open descriptors of deleted files of the store", k, del);
    if (base < 0) base = n;
    if (n > most) most = n;
    if (n > base + 2)
      fail_msg("after merge %u: %d descriptors open, %d after the first merge", k, n, base);
    if (k % 250 == 0) tu_model_check(s, &m, "during the merges");
  }
  bc_stats st = tu_stats(s);
  assert_int_equal(st.merges, 1000);
  assert_true(st.data_files <= 6);
  assert_int_equal(tu_count_files(fx->base, ".data"), (int)st.data_files);
  kf_check_all(s, &m, "after 1000 merges");
  assert_int_equal(bc_close(s), BC_OK);
  int after = kf_fds(fx->base, &del);
  if (after != fds_closed)
    fail_msg("%d descriptors open after bc_close, %d before bc_open", after, fds_closed);
  assert_int_equal(tio_open_fds(&t), 0);
  tio_free(&t);
  if (getenv("BC_TEST_VERBOSE"))
    print_message("    [item 10] descriptors: %d after the first merge, at most %d\n", base,
                  most);
  kf_reopen_check(fx->base, 4096, &m, "after 1000 merges, reopened");
  tu_model_free(&m);
}

/* ------------------------------------------------------------ 11. limits */

/* bc_get of key gives exactly want (wlen bytes) and meta. */
static void kf_expect(bc_store *s, const void *key, size_t klen, const void *want, size_t wlen,
                      uint8_t meta, const char *what, const char *where) {
  bc_buf b = {0};
  const void *v = NULL;
  bc_info info;
  bc_status st = bc_get(s, key, klen, &b, &v, &info);
  if (st != BC_OK) fail_msg("%s: %s: bc_get gave %s", where, what, bc_status_name(st));
  if (info.value_size != wlen || memcmp(v, want, wlen) != 0 || info.meta != meta)
    fail_msg("%s: %s: wrong value (%u bytes, want %zu) or meta", where, what, info.value_size,
             wlen);
  bc_buf_free(&b);
}

/* Item 11.  Existing coverage: test_store.c test_key_size_limit (largest
** key, one byte over for key and value, nothing written) and
** test_value_sizes (up to 3 MiB); test_merge.c test_merge_big_values
** (3 MiB through a merge).  Added here: a 64 MiB value and a largest key
** through put, get, reopen (scan and hint) and merge; one byte over each
** limit -- bc_put, bc_delete, bc_txn_put, bc_txn_delete, also over an
** existing key -- refused with BC_INVALID, the files byte for byte and the
** count unchanged. */
static void test_limits(void **state) {
  tu_fix *fx = *state;
  const size_t BIG = 64 * (size_t)MiB;
  unsigned char *big = malloc(BIG);
  unsigned char *kmax = malloc(BC_MAX_KEY_SIZE + 1);
  unsigned char *over = calloc((size_t)BC_MAX_VALUE_SIZE + 1, 1); /* never touched */
  assert_true(big && kmax && over);
  tu_fill(big, BIG, 7, 1);
  tu_fill(kmax, BC_MAX_KEY_SIZE + 1, 5, 5);
  tio t;
  tio_init(&t);
  t.real_fsync = 0;
  bc_store *s = tu_open(fx->base, 0, BC_SYNC_OFF, &t.io);
  TU_OK(bc_put(s, "small", 5, 1, "s", 1));
  TU_OK(bc_put(s, kmax, BC_MAX_KEY_SIZE, 9, "max key", 7));
  TU_OK(bc_put(s, "big", 3, 8, big, BIG));
  TU_OK(bc_put(s, "after", 5, 2, "a", 1));
  const char *where = "put";
  for (int round = 0; round < 5; round++) {
    kf_expect(s, kmax, BC_MAX_KEY_SIZE, "max key", 7, 9, "the largest key", where);
    kf_expect(s, "big", 3, big, BIG, 8, "the 64 MiB value", where);
    kf_expect(s, "small", 5, "s", 1, 1, "a small key", where);
    kf_expect(s, "after", 5, "a", 1, 2, "the key after the big value", where);
    assert_int_equal(bc_count(s), 4);
    if (round == 0) {
      /* One byte over: refused, and nothing changes. */
      TU_OK(bc_sync(s));
      bc_stats a = tu_stats(s);
      char *fp = tu_fingerprint(fx->base);
      assert_int_equal(bc_put(s, kmax, BC_MAX_KEY_SIZE + 1, 0, "x", 1), BC_INVALID);
      assert_non_null(strstr(bc_errmsg(s), "65537"));
      assert_int_equal(bc_delete(s, kmax, BC_MAX_KEY_SIZE + 1), BC_INVALID);
      assert_int_equal(bc_put(s, "new", 3, 0, over, (size_t)BC_MAX_VALUE_SIZE + 1),
                       BC_INVALID);
      assert_non_null(strstr(bc_errmsg(s), "268435457"));
      assert_int_equal(bc_put(s, "big", 3, 0, over, (size_t)BC_MAX_VALUE_SIZE + 1),
                       BC_INVALID);
      assert_int_equal(bc_put(s, kmax, BC_MAX_KEY_SIZE, 0, over, (size_t)BC_MAX_VALUE_SIZE + 1),
                       BC_INVALID);
      assert_int_equal(bc_lookup(s, kmax, BC_MAX_KEY_SIZE + 1, NULL), BC_NOTFOUND);
      bc_txn *tx = NULL;
      TU_OK(bc_txn_begin(s, &tx));
      assert_int_equal(bc_txn_put(tx, kmax, BC_MAX_KEY_SIZE + 1, 0, "x", 1), BC_INVALID);
      assert_int_equal(bc_txn_put(tx, "new", 3, 0, over, (size_t)BC_MAX_VALUE_SIZE + 1),
                       BC_INVALID);
      assert_int_equal(bc_txn_delete(tx, kmax, BC_MAX_KEY_SIZE + 1), BC_INVALID);
      TU_OK(bc_txn_rollback(tx));
      TU_OK(bc_sync(s));
      bc_stats b = tu_stats(s);
      char *fp2 = tu_fingerprint(fx->base);
      assert_string_equal(fp, fp2);
      free(fp);
      free(fp2);
      assert_true(b.keys == a.keys && b.next_seq == a.next_seq &&
                  b.total_bytes == a.total_bytes && b.data_files == a.data_files);
      assert_int_equal(bc_lookup(s, "new", 3, NULL), BC_NOTFOUND);
      where = "after the refused writes";
    } else if (round == 1) {
      assert_int_equal(bc_close(s), BC_OK);
      s = tu_open(fx->base, 0, BC_SYNC_OFF, &t.io);
      assert_int_equal(tu_stats(s).corrupt, 0);
      where = "reopened (scanning)";
    } else if (round == 2) {
      TU_OK(bc_merge(s, NULL));
      where = "merged";
    } else if (round == 3) {
      assert_int_equal(bc_close(s), BC_OK);
      s = tu_open(fx->base, 0, BC_SYNC_OFF, &t.io);
      assert_true(tu_stats(s).hint_files >= 1);
      where = "merged, reopened (hints)";
    }
  }
  assert_int_equal(bc_close(s), BC_OK);
  assert_int_equal(tio_open_fds(&t), 0);
  tio_free(&t);
  free(over);
  free(kmax);
  free(big);
}

/* ---------------------------------------------- 12. corruption matrix */

/* One field of a record and the bit flipped in it. */
typedef struct mx_field {
  const char *name;
  int where;          /* 0: header byte at `at`; 1: key byte `at`; 2: middle
                      ** of the value */
  size_t at;
  unsigned char mask;
  int key_unknown;    /* the damage hides which key the record is: its key
                      ** may read as its previous version */
} mx_field;

static const mx_field mx_fields[] = {
    {"crc", 0, 0, 0x01, 0},
    {"type", 0, 4, 0x02, 0},
    {"meta", 0, 5, 0x01, 0},
    {"reserved", 0, 6, 0x01, 0},
    {"seq (bit 0)", 0, 8, 0x01, 0},
    {"seq (bit 63)", 0, 15, 0x80, 0},
    {"txn", 0, 16, 0x01, 0},
    {"key_size (bit 0)", 0, 24, 0x01, 1},
    {"key_size (bit 31)", 0, 27, 0x80, 1},
    {"value_size (bit 0)", 0, 28, 0x01, 0},
    {"value_size (bit 31)", 0, 31, 0x80, 0},
    {"key bytes", 1, 3, 0x40, 1},
    {"value bytes", 2, 0, 0x10, 0},
};

/* Where the victim record is: in a sealed file read by scanning it (its
** hint removed), in a sealed file read from its hint, in the active file. */
enum { MX_SCANNED, MX_HINT, MX_ACTIVE, MX_PLACES };
static const char *const mx_place[MX_PLACES] = {"scanned", "hint", "active"};

/* A store of the matrix and where its victim record is. */
typedef struct mx {
  char tmpl[PATH_MAX];
  uint64_t mfs;
  tu_model m;    /* final state */
  tu_model prev; /* phase 1: the previous version of every phase-2 key */
  uint32_t fid;  /* file holding the victim */
  krec vic;
  size_t kv;     /* victim key */
} mx;

/* Keys 0..K-1 version 1, then each deleted (every 5th) or overwritten
** (version 2), then keys K..K+59.  Sealed placements: 4 KiB files, K = 160,
** the victim in a sealed file of phase-2 records only.  Active placement:
** one 64 KiB file, K = 60, ending with a transaction whose COMMIT claims
** the file durable (kf_claim_durable).  The victim: a put of phase 2 in the
** middle of its file, with records before it and puts and tombstones after
** it. */
static void mx_build(mx *x, const char *base, int place) {
  const size_t K = place == MX_ACTIVE ? 60 : 160;
  tu_path(x->tmpl, "%s/template-%s", base, mx_place[place]);
  x->mfs = place == MX_ACTIVE ? 65536 : 4096;
  tu_model_init(&x->m, K + 60);
  bc_store *s = tu_open(x->tmpl, x->mfs, BC_SYNC_OFF, NULL);
  for (size_t i = 0; i < K; i++) TU_OK(tu_put_ver(s, &x->m, i, 1, 20, 60));
  tu_model_copy(&x->prev, &x->m);
  uint64_t s2 = tu_stats(s).next_seq;
  for (size_t i = 0; i < K; i++) {
    if (i % 5 == 0)
      TU_OK(tu_del(s, &x->m, i));
    else
      TU_OK(tu_put_ver(s, &x->m, i, 2, 20, 60));
  }
  uint64_t s3 = tu_stats(s).next_seq;
  for (size_t i = K; i < K + 60; i++) TU_OK(tu_put_ver(s, &x->m, i, 1, 20, 60));
  uint32_t active = (uint32_t)tu_stats(s).active_file_id;
  assert_int_equal(bc_close(s), BC_OK);
  /* In the active file, damage is corruption below a durability claim. */
  if (place == MX_ACTIVE) kf_claim_durable(x->tmpl, &x->m, K + 59);
  uint32_t ids[256];
  size_t n = tu_data_ids(x->tmpl, ids, 256);
  if (place == MX_ACTIVE) assert_true(n == 1 && ids[0] == active);
  x->fid = 0;
  for (size_t k = 0; k < n && !x->fid; k++) {
    if ((ids[k] == active) != (place == MX_ACTIVE)) continue;
    char p[PATH_MAX];
    krec recs[512];
    data_path(p, x->tmpl, ids[k]);
    size_t nr = kf_scan(p, recs, 512, NULL);
    assert_true(nr <= 512);
    size_t lo = 0;
    while (lo < nr && recs[lo].r.seq < s2) lo++;
    size_t hi = lo;
    while (hi < nr && recs[hi].r.seq < s3) hi++;
    if (hi - lo < 8 || (place != MX_ACTIVE && (lo != 0 || hi != nr))) continue;
    for (size_t j = lo + (hi - lo) / 3; j + 2 < hi && !x->fid; j++) {
      if (recs[j].r.type != BC_REC_PUT) continue;
      int tomb = 0, put = 0;
      for (size_t a = j + 1; a < hi; a++) {
        tomb |= recs[a].r.type == BC_REC_TOMBSTONE;
        put |= recs[a].r.type == BC_REC_PUT;
      }
      if (!tomb || !put) continue;
      x->fid = ids[k];
      x->vic = recs[j];
      x->kv = key_index(recs[j].key, recs[j].r.klen);
    }
  }
  assert_true(x->fid != 0 && x->kv < K);
  assert_non_null(x->m.v[x->kv]);
  if (place != MX_ACTIVE) {
    char h[PATH_MAX];
    hint_path(h, x->tmpl, x->fid);
    assert_true(tu_exists(h));
  }
}

/* Is (v, len, meta) exactly key i's value in model m? */
static int mx_same(const tu_model *m, size_t i, const void *v, size_t len, uint8_t meta) {
  return m->v[i] && m->len[i] == len && m->meta[i] == meta &&
         (len == 0 || memcmp(v, m->v[i], len) == 0);
}

/* Run one cell of the matrix: flip field f of the victim in a copy of the
** template (a sealed file's hint removed for MX_SCANNED), open, judge every
** key.  Appends one line to out; returns 1 if the cell fails. */
static int mx_cell(const mx *x, const mx_field *f, int place, const char *dir, char *out,
                   size_t cap) {
  char p[PATH_MAX], err[512] = "";
  tu_rmrf(dir);
  assert_int_equal(tu_copy_dir(x->tmpl, dir), 0);
  if (place == MX_SCANNED) {
    hint_path(p, dir, x->fid);
    assert_int_equal(unlink(p), 0);
  }
  data_path(p, dir, x->fid);
  long long at = (long long)x->vic.off;
  at += f->where == 0 ? (long long)f->at
        : f->where == 1 ? 32 + (long long)f->at
                        : 32 + (long long)x->vic.r.klen + (long long)x->vic.r.vlen / 2;
  tu_flip(p, at, f->mask);
  unsigned long crc = kf_file_crc(p);
  long long size = tu_file_size(p);
  size_t len = strlen(out);
#define MX_NOTE(...)                                                                     \
  do {                                                                                   \
    if (len < cap) len += (size_t)snprintf(out + len, cap - len, __VA_ARGS__);           \
  } while (0)
  MX_NOTE("    %-20s %-8s ", f->name, mx_place[place]);
  bc_options o;
  bc_options_init(&o);
  o.max_file_size = x->mfs;
  o.sync = BC_SYNC_OFF;
  bc_store *s = NULL;
  bc_status ost = bc_open(dir, &o, &s, err, sizeof err);
  if (ost != BC_OK) {
    MX_NOTE("FAIL: bc_open gave %s: %s\n", bc_status_name(ost), err);
    return 1;
  }
  int bad = 0;
  long long cut = size - tu_file_size(p);
  bc_buf b = {0};
  const void *v;
  bc_info info;
  /* The victim. */
  char k[32];
  size_t kl = tu_key(k, x->kv);
  v = NULL;
  bc_status st = bc_get(s, k, kl, &b, &v, &info);
  const char *vres;
  if (st == BC_CORRUPT) {
    vres = "BC_CORRUPT";
  } else if (st == BC_OK && mx_same(&x->m, x->kv, v, info.value_size, info.meta)) {
    vres = "intact";
  } else if (st == BC_OK && mx_same(&x->prev, x->kv, v, info.value_size, info.meta)) {
    vres = f->key_unknown ? "previous version" : "PREVIOUS VERSION";
    bad |= !f->key_unknown;
  } else if (st == BC_OK) {
    vres = "DAMAGED BYTES";
    bad = 1;
  } else {
    vres = bc_status_name(st);
    bad = 1;
  }
  /* Every other key: exact. */
  size_t stale = 0, back = 0, lost = 0, corrupt = 0, wrong = 0;
  for (size_t i = 0; i < x->m.n; i++) {
    if (i == x->kv) continue;
    kl = tu_key(k, i);
    v = NULL;
    st = bc_get(s, k, kl, &b, &v, &info);
    if (x->m.v[i]) {
      if (st == BC_OK && mx_same(&x->m, i, v, info.value_size, info.meta)) continue;
      if (st == BC_OK && mx_same(&x->prev, i, v, info.value_size, info.meta))
        stale++;
      else if (st == BC_NOTFOUND)
        lost++;
      else if (st == BC_CORRUPT)
        corrupt++;
      else
        wrong++;
    } else {
      if (st == BC_NOTFOUND) continue;
      if (st == BC_OK && mx_same(&x->prev, i, v, info.value_size, info.meta))
        back++;
      else if (st == BC_CORRUPT)
        corrupt++;
      else
        wrong++;
    }
  }
  /* Keys the store has that the model never had: only ever BC_CORRUPT. */
  size_t phantom = 0, phantom_bytes = 0;
  bc_iter *it = NULL;
  TU_OK(bc_iter_open(s, &it));
  const void *key;
  size_t klen;
  while (bc_iter_next(it, &key, &klen, NULL) == BC_OK) {
    if (key_index(key, klen) < x->m.n) continue;
    phantom++;
    if (bc_get(s, key, klen, &b, &v, &info) != BC_CORRUPT) phantom_bytes++;
  }
  bc_iter_close(it);
  bc_buf_free(&b);
  uint64_t ncorrupt = tu_stats(s).corrupt;
  if (stale || back || lost || corrupt || wrong || phantom_bytes || cut) bad = 1;
  if (place != MX_HINT && ncorrupt == 0) bad = 1;
  MX_NOTE("%s: victim %s; other keys:", bad ? "FAIL" : "ok  ", vres);
  if (!(stale || back || lost || corrupt || wrong)) MX_NOTE(" all right");
  if (stale) MX_NOTE(" %zu previous version", stale);
  if (back) MX_NOTE(" %zu deleted back", back);
  if (lost) MX_NOTE(" %zu lost", lost);
  if (corrupt) MX_NOTE(" %zu BC_CORRUPT", corrupt);
  if (wrong) MX_NOTE(" %zu DAMAGED BYTES", wrong);
  if (phantom) MX_NOTE("; %zu phantom key%s (%s)", phantom, phantom > 1 ? "s" : "",
                       phantom_bytes ? "RETURN BYTES" : "BC_CORRUPT");
  MX_NOTE("; stats.corrupt %llu", (unsigned long long)ncorrupt);
  if (cut) MX_NOTE("; FILE CUT BY %lld BYTES", cut);
  MX_NOTE("\n");
  /* Writes go on; a damaged sealed file is never modified; reopen. */
  TU_OK(bc_put(s, "after", 5, 0, "damage", 6));
  assert_int_equal(bc_close(s), BC_OK);
  if (place != MX_ACTIVE) assert_true(kf_file_crc(p) == crc);
  s = NULL;
  ost = bc_open(dir, &o, &s, err, sizeof err);
  if (ost != BC_OK)
    fail_msg("%s, %s: second bc_open gave %s: %s", f->name, mx_place[place],
             bc_status_name(ost), err);
  b = (bc_buf){0};
  TU_OK(bc_get(s, "after", 5, &b, &v, NULL));
  bc_buf_free(&b);
  assert_int_equal(bc_close(s), BC_OK);
#undef MX_NOTE
  return bad;
}

/* Item 12, the matrix.  Existing coverage: test_recovery.c
** test_flipped_value_sealed_scanned/_with_hint and
** test_damage_does_not_hide_later_records flip value bytes only;
** test_torn_tail_* damage the end of the active file.  Added here: one bit
** in each field of one record in the middle of a sealed file (a put whose
** key has a previous version in an earlier file, followed in its file by
** puts and tombstones), with the file's hint removed (the file is scanned)
** and with it present -- and, beyond the item, the same flips in the middle
** of the active file.  For each: the open succeeds; the victim key gives
** BC_CORRUPT (FORMAT.md "Recovery" 3: its key as read points at the damaged
** record "rather than an older version"; where the damage hides which key
** it is -- key_size, key bytes -- its previous version is accepted); every
** other key, before and after it in its file and in other files, reads
** exactly; keys the model never had read only as BC_CORRUPT; stats.corrupt
** counts the damage where the file was scanned; no valid record is cut off
** the active file.  Prints the whole matrix, then fails if any cell
** failed. */
static void test_corruption_matrix(void **state) {
  tu_fix *fx = *state;
  const size_t nf = sizeof mx_fields / sizeof *mx_fields;
  size_t cap = 256 * MX_PLACES * nf;
  char *out = calloc(cap, 1);
  assert_non_null(out);
  int nbad = 0;
  mx x[2];
  mx_build(&x[0], fx->base, MX_SCANNED);
  mx_build(&x[1], fx->base, MX_ACTIVE);
  for (size_t f = 0; f < nf; f++)
    for (int place = 0; place < MX_PLACES; place++) {
      char dir[PATH_MAX];
      tu_path(dir, "%s/cell", fx->base);
      nbad += mx_cell(&x[place == MX_ACTIVE], &mx_fields[f], place, dir, out, cap);
    }
  print_message("    [item 12] one flipped bit in a put: key %zu at offset %llu of sealed "
                "file %u; key %zu at offset %llu of the active file %u\n", x[0].kv,
                (unsigned long long)x[0].vic.off, x[0].fid, x[1].kv,
                (unsigned long long)x[1].vic.off, x[1].fid);
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
    print_message("%s\n", line);
  free(out);
  for (int i = 0; i < 2; i++) {
    tu_model_free(&x[i].m);
    tu_model_free(&x[i].prev);
  }
  if (nbad)
    fail_msg("corruption matrix: %d of %zu cells fail (table above)", nbad, MX_PLACES * nf);
}

/* Item 12, stray files.  Existing coverage: test_store.c test_not_a_store
** (a directory without the marker is refused) and test_destroy (a foreign
** file survives bc_destroy).  Added here: files that look almost like the
** store's own (a backup copy "0000000001.data.bak", 11 digits, "~", ".dat",
** "MERGE.old", "LOCK.old", a dot file, a subdirectory with a ".data" file)
** in a store: open, writes, merge, read-only open and bc_destroy leave each
** byte for byte where it was, and never block anything. */
static void test_stray_files_left_alone(void **state) {
  tu_fix *fx = *state;
  char dir[PATH_MAX], p[PATH_MAX];
  tu_path(dir, "%s/s", fx->base);
  tu_model m;
  kf_build(dir, &m, 200);
  const char *strays[] = {"notes.txt", "0000000001.data.bak", "00000000001.data",
                          "0000000003.hint~", "0000000099.dat", "MERGE.old", "LOCK.old",
                          ".hidden", "sub/0000000001.data"};
  const size_t ns = sizeof strays / sizeof *strays;
  unsigned long crc[16];
  tu_path(p, "%s/sub", dir);
  assert_int_equal(mkdir(p, 0755), 0);
  for (size_t i = 0; i < ns; i++) {
    tu_path(p, "%s/%s", dir, strays[i]);
    if (i == 1) {
      char d1[PATH_MAX];
      size_t l;
      data_path(d1, dir, 1);
      unsigned char *d = tu_read_file(d1, &l);
      tu_write_file(p, d, l);
      free(d);
    } else {
      char text[64];
      snprintf(text, sizeof text, "stray file %zu: not the store's\n", i);
      tu_write_file(p, text, strlen(text));
    }
    crc[i] = kf_file_crc(p);
  }
  bc_store *s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
  kf_check_all(s, &m, "with stray files");
  for (size_t i = 0; i < 200; i += 3) TU_OK(tu_put_ver(s, &m, i, 5, 20, 120));
  TU_OK(bc_merge(s, NULL));
  kf_check_all(s, &m, "with stray files, merged");
  assert_int_equal(bc_close(s), BC_OK);
  bc_options ro;
  bc_options_init(&ro);
  ro.read_only = 1;
  s = tu_open_opts(dir, &ro);
  kf_check_all(s, &m, "with stray files, read-only");
  assert_int_equal(bc_close(s), BC_OK);
  kf_reopen_check(dir, 4096, &m, "with stray files, reopened");
  for (size_t i = 0; i < ns; i++) {
    tu_path(p, "%s/%s", dir, strays[i]);
    if (!tu_exists(p) || kf_file_crc(p) != crc[i])
      fail_msg("stray file '%s' was removed or changed", strays[i]);
  }
  char err[512];
  assert_int_equal(bc_destroy(dir, err, sizeof err), BC_OK);
  assert_int_equal(tu_count_files(dir, ".data"), 0);
  tu_path(p, "%s/BITCASK", dir);
  assert_false(tu_exists(p));
  for (size_t i = 0; i < ns; i++) {
    tu_path(p, "%s/%s", dir, strays[i]);
    if (!tu_exists(p) || kf_file_crc(p) != crc[i])
      fail_msg("bc_destroy removed or changed stray file '%s'", strays[i]);
  }
  tu_model_free(&m);
}

/* Item 12, a newer format version (BC_FORMAT_VERSION + 1; the test was
** written for 2 when the library wrote 1).  Existing coverage: test_recovery.c
** test_newer_format_refused (a newer version in the first file; BC_VERSION
** naming it, writer and reader).  Added here: the message says which file,
** which format and that it is newer; it in a middle sealed file, in the
** active (tail) file, and in a header-only newest file (which must not be
** taken for a crash while creating it and rewritten); nothing on disk
** changes. */
static void test_format_version_2_refused(void **state) {
  tu_fix *fx = *state;
  char tmpl[PATH_MAX];
  tu_path(tmpl, "%s/template", fx->base);
  tu_model m;
  kf_build(tmpl, &m, 200);
  uint32_t ids[256];
  size_t n = tu_data_ids(tmpl, ids, 256);
  assert_true(n >= 4);
  const char *names[] = {"a middle sealed file", "the active file",
                         "a header-only newest file"};
  const uint32_t which[] = {ids[n / 2], ids[n - 1], ids[n - 1] + 1};
  for (int v = 0; v < 3; v++) {
    char dir[PATH_MAX], p[PATH_MAX], want[64], err[512] = "";
    tu_path(dir, "%s/v%d", fx->base, v);
    assert_int_equal(tu_copy_dir(tmpl, dir), 0);
    data_path(p, dir, which[v]);
    unsigned char hdr[BC_FILE_HEADER_SIZE];
    bc_file_header_encode(hdr, which[v], 0);
    if (v < 2) {
      int fd = open(p, O_RDONLY);
      assert_true(fd >= 0);
      assert_int_equal(pread(fd, hdr, sizeof hdr, 0), (ssize_t)sizeof hdr);
      close(fd);
    }
    bc_put_u32(hdr + 8, BC_FORMAT_VERSION + 1);
    bc_put_u32(hdr + 28, (uint32_t)crc32(0, hdr, 28));
    if (v < 2) {
      int fd = open(p, O_WRONLY);
      assert_true(fd >= 0);
      assert_int_equal(pwrite(fd, hdr, sizeof hdr, 0), (ssize_t)sizeof hdr);
      close(fd);
    } else {
      tu_write_file(p, hdr, sizeof hdr);
    }
    char *fp = tu_fingerprint(dir);
    for (int ro = 0; ro < 2; ro++) {
      bc_options o;
      bc_options_init(&o);
      o.read_only = ro;
      o.max_file_size = 4096;
      bc_store *s = (bc_store *)1;
      bc_status st = bc_open(dir, &o, &s, err, sizeof err);
      if (st != BC_VERSION)
        fail_msg("format %d in %s (%s): bc_open gave %s, want BC_VERSION: %s",
                 BC_FORMAT_VERSION + 1, names[v], ro ? "reader" : "writer",
                 bc_status_name(st), err);
      assert_null(s);
      char fmt[32];
      snprintf(want, sizeof want, "%010u.data", which[v]);
      snprintf(fmt, sizeof fmt, "format %d", BC_FORMAT_VERSION + 1);
      if (!strstr(err, want) || !strstr(err, fmt) || !strstr(err, "newer") ||
          !strstr(err, dir))
        fail_msg("%s in %s: unclear message '%s'", fmt, names[v], err);
      char *fp2 = tu_fingerprint(dir);
      if (strcmp(fp, fp2) != 0) fail_msg("%s in %s: the refused open changed files", fmt, names[v]);
      free(fp2);
    }
    free(fp);
  }
  tu_model_free(&m);
}

/* Item 12, a hint older than its data file.  Existing coverage: none that
** grows a sealed file (test_recovery.c test_damaged_hint_ignored cuts and
** flips hints).  Added here: valid records appended to a sealed file after
** its hint was written -- an overwrite, a new key and a tombstone, with the
** newest sequence numbers -- make the hint stale (its data_size no longer
** matches): it is ignored, the file scanned, and all three take effect, also
** after a merge. */
static void test_stale_hint_ignored(void **state) {
  tu_fix *fx = *state;
  const char *dir = fx->base;
  tu_model m, tmp;
  kf_build(dir, &tmp, 300);
  tu_model_init(&m, 301);
  for (size_t i = 0; i < 300; i++)
    if (tmp.v[i]) tu_model_set(&m, i, tmp.v[i], tmp.len[i], tmp.meta[i]);
  tu_model_free(&tmp);
  bc_store *s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
  bc_stats st0 = tu_stats(s);
  assert_int_equal(bc_close(s), BC_OK);
  char p[PATH_MAX], h[PATH_MAX];
  data_path(p, dir, 2);
  hint_path(h, dir, 2);
  assert_true(tu_exists(h));
  assert_true(m.v[1] && m.v[2]);
  uint64_t seq = st0.next_seq;
  char k[32];
  size_t n, kl = tu_key(k, 1);
  unsigned char *r = kf_record(BC_REC_PUT, 77, seq, k, (uint32_t)kl, "appended", 8, &n);
  tu_append_file(p, r, n);
  free(r);
  tu_model_set(&m, 1, "appended", 8, 77);
  kl = tu_key(k, 300);
  r = kf_record(BC_REC_PUT, 78, seq + 1, k, (uint32_t)kl, "new key", 7, &n);
  tu_append_file(p, r, n);
  free(r);
  tu_model_set(&m, 300, "new key", 7, 78);
  kl = tu_key(k, 2);
  r = kf_record(BC_REC_TOMBSTONE, 0, seq + 2, k, (uint32_t)kl, NULL, 0, &n);
  tu_append_file(p, r, n);
  free(r);
  tu_model_del(&m, 2);

  for (int round = 0; round < 2; round++) {
    s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
    bc_stats st = tu_stats(s);
    const char *where = round == 0 ? "stale hint" : "stale hint, merged";
    if (round == 0 && st.hint_files != st0.hint_files - 1)
      fail_msg("%s: %llu hint files in use, want %llu", where,
               (unsigned long long)st.hint_files, (unsigned long long)(st0.hint_files - 1));
    assert_int_equal(st.corrupt, 0);
    assert_int_equal(st.truncated_bytes, 0);
    if (round == 0) assert_true(st.next_seq == seq + 3);
    kf_check_all(s, &m, where);
    if (round == 0) {
      TU_OK(bc_merge(s, NULL));
      kf_check_all(s, &m, "stale hint, after the merge");
    }
    assert_int_equal(bc_close(s), BC_OK);
  }
  tu_model_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      TU_TEST(test_merge_drops_tombstone_key_stays_deleted),
      TU_TEST(test_tombstones_never_surface),
      TU_TEST(test_hint_entry_past_end),
      TU_TEST(test_crc_failure_never_returns_bytes),
      TU_TEST(test_trailing_zeros_or_garbage),
      TU_TEST(test_empty_newest_data_file),
      TU_TEST(test_lock_with_reused_pid),
      TU_TEST(test_max_file_size_below_record),
      TU_TEST_SHM(test_merge_races_newer_writes),
      TU_TEST_SHM(test_merge_closes_deleted_files),
      TU_TEST(test_limits),
      TU_TEST(test_corruption_matrix),
      TU_TEST(test_stray_files_left_alone),
      TU_TEST(test_format_version_2_refused),
      TU_TEST(test_stale_hint_ignored),
  };
  return cmocka_run_group_tests_name("known failures", tests, NULL, NULL);
}
