/*
** test_store.c -- the public API of bitcask.h on a real directory: open and
** create, put/get/delete/lookup/count, persistence across reopen, value and
** key sizes, rotation and hint files, refusing directories that are not a
** store, the writer lock, read-only opens, bc_destroy, snapshot iterators.
*/
#include "testutil.h"

#define MiB (1024u * 1024u)

static void test_basic_ops_and_reopen(void **state) {
  tu_fix *fx = *state;
  /* A fresh, empty mkdtemp directory is adopted. */
  bc_store *s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  assert_string_equal(bc_dir(s), fx->base);
  assert_string_equal(bc_errmsg(s), "");
  assert_int_equal(bc_count(s), 0);
  assert_true(tu_exists(fx->base));
  {
    char p[PATH_MAX];
    tu_path(p, "%s/BITCASK", fx->base);
    assert_true(tu_exists(p));
  }

  bc_buf b = {0};
  const void *v;
  bc_info info;
  assert_int_equal(bc_get(s, "a", 1, &b, &v, &info), BC_NOTFOUND);
  assert_int_equal(bc_lookup(s, "a", 1, &info), BC_NOTFOUND);

  TU_OK(bc_put(s, "a", 1, 7, "alpha", 5));
  TU_OK(bc_put(s, "b", 1, 8, "beta", 4));
  TU_OK(bc_put(s, "c", 1, 9, "gamma", 5));
  assert_int_equal(bc_count(s), 3);
  /* Readable before bc_sync (from the write buffer). */
  TU_OK(bc_get(s, "a", 1, &b, &v, &info));
  assert_int_equal(info.value_size, 5);
  assert_int_equal(info.meta, 7);
  assert_memory_equal(v, "alpha", 5);
  uint64_t seq_a = info.seq;
  TU_OK(bc_lookup(s, "b", 1, &info));
  assert_int_equal(info.value_size, 4);
  assert_int_equal(info.meta, 8);
  assert_true(info.seq > seq_a);
  TU_OK(bc_lookup(s, "b", 1, NULL));

  /* Overwrite, delete. */
  TU_OK(bc_put(s, "a", 1, 1, "ALPHA!", 6));
  TU_OK(bc_get(s, "a", 1, &b, &v, &info));
  assert_memory_equal(v, "ALPHA!", 6);
  assert_int_equal(info.meta, 1);
  assert_true(info.seq > seq_a);
  TU_OK(bc_delete(s, "b", 1));
  assert_int_equal(bc_count(s), 2);
  assert_int_equal(bc_get(s, "b", 1, &b, &v, &info), BC_NOTFOUND);
  assert_int_equal(bc_lookup(s, "b", 1, &info), BC_NOTFOUND);
  assert_int_equal(bc_delete(s, "b", 1), BC_NOTFOUND);
  TU_OK(bc_sync(s));
  TU_OK(bc_get(s, "c", 1, &b, &v, &info));
  assert_memory_equal(v, "gamma", 5);
  bc_stats st = tu_stats(s);
  assert_int_equal(st.keys, 2);
  assert_int_equal(st.data_files, 1);
  assert_int_equal(st.read_only, 0);
  assert_int_equal(st.sync, BC_SYNC_FULL);
  assert_true(st.max_file_size == BC_DEFAULT_MAX_FILE_SIZE);
  assert_true(st.live_bytes == bc_rec_size(1, 6) + bc_rec_size(1, 5));
  assert_true(st.total_bytes == BC_FILE_HEADER_SIZE + bc_rec_size(1, 5) + bc_rec_size(1, 4) +
                                    bc_rec_size(1, 5) + bc_rec_size(1, 6) + bc_rec_size(1, 0));
  /* Dead: superseded records and tombstones, not file headers. */
  assert_true(st.dead_bytes == st.total_bytes - st.live_bytes - BC_FILE_HEADER_SIZE);
  assert_true(st.dead_bytes == bc_rec_size(1, 5) + bc_rec_size(1, 4) + bc_rec_size(1, 0));
  assert_true(st.keydir_bytes > 0);
  uint64_t next_seq = st.next_seq;
  assert_int_equal(bc_close(s), BC_OK);

  /* Everything persists; sequence numbers keep growing. */
  s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  assert_int_equal(bc_count(s), 2);
  TU_OK(bc_get(s, "a", 1, &b, &v, &info));
  assert_memory_equal(v, "ALPHA!", 6);
  assert_int_equal(info.meta, 1);
  TU_OK(bc_get(s, "c", 1, &b, &v, &info));
  assert_memory_equal(v, "gamma", 5);
  assert_int_equal(info.meta, 9);
  assert_int_equal(bc_get(s, "b", 1, &b, &v, &info), BC_NOTFOUND);
  st = tu_stats(s);
  assert_true(st.next_seq == next_seq);
  TU_OK(bc_put(s, "d", 1, 0, "delta", 5));
  TU_OK(bc_lookup(s, "d", 1, &info));
  assert_true(info.seq == next_seq);
  assert_int_equal(bc_close(s), BC_OK);
  bc_close(NULL); /* no-op */
  bc_buf_free(&b);
  bc_buf_free(&b); /* idempotent */
}

static void test_value_sizes(void **state) {
  tu_fix *fx = *state;
  bc_store *s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  /* 0, 1, just under the write buffer, just over it, and 3 MiB. */
  const size_t sizes[] = {0, 1, 100, MiB - 32 - 2, MiB - 32 - 1, MiB, MiB + 12345, 3 * MiB};
  const size_t n = sizeof sizes / sizeof *sizes;
  tu_model m;
  tu_model_init(&m, n);
  unsigned char *val = malloc(3 * MiB);
  assert_non_null(val);
  for (size_t i = 0; i < n; i++) {
    tu_fill(val, sizes[i], i, 1);
    char k[32];
    size_t kl = tu_key(k, i);
    TU_OK(bc_put(s, k, kl, (uint8_t)i, sizes[i] ? val : NULL, sizes[i]));
    tu_model_set(&m, i, val, sizes[i], (uint8_t)i);
    /* Small records after a big one, in the same buffer. */
    tu_model_check(s, &m, "after put, before sync");
  }
  TU_OK(bc_sync(s));
  tu_model_check(s, &m, "after sync");
  /* Overwrite the big ones with small values and the small ones with big. */
  for (size_t i = 0; i < n; i++) {
    size_t len = sizes[n - 1 - i];
    tu_fill(val, len, i, 2);
    char k[32];
    size_t kl = tu_key(k, i);
    TU_OK(bc_put(s, k, kl, 200, val, len));
    tu_model_set(&m, i, val, len, 200);
  }
  tu_model_check(s, &m, "after overwrites");
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  tu_model_check(s, &m, "after reopen");
  assert_int_equal(tu_stats(s).corrupt, 0);
  assert_int_equal(tu_stats(s).truncated_bytes, 0);
  /* The value of bc_put is copied: changing the caller's buffer afterwards
  ** changes nothing. */
  memset(val, 'x', 10);
  TU_OK(bc_put(s, "copy", 4, 0, val, 10));
  memset(val, 'y', 10);
  bc_buf b = {0};
  const void *v;
  TU_OK(bc_get(s, "copy", 4, &b, &v, NULL));
  assert_memory_equal(v, "xxxxxxxxxx", 10);
  bc_buf_free(&b);
  assert_int_equal(bc_close(s), BC_OK);
  free(val);
  tu_model_free(&m);
}

static void test_key_size_limit(void **state) {
  tu_fix *fx = *state;
  /* 4 KiB files: the record of the largest key seals its file, so the key
  ** also goes through a hint file. */
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_FULL, NULL);
  unsigned char *key = malloc(BC_MAX_KEY_SIZE + 1);
  assert_non_null(key);
  tu_fill(key, BC_MAX_KEY_SIZE + 1, 5, 5);
  TU_OK(bc_put(s, key, BC_MAX_KEY_SIZE, 3, "max", 3));
  TU_OK(bc_put(s, "", 0, 4, "empty key", 9));
  TU_OK(bc_sync(s));
  bc_stats before = tu_stats(s);
  assert_int_equal(before.data_files, 2);
  assert_int_equal(before.hint_files, 1);
  char data[PATH_MAX];
  tu_path(data, "%s/%010u.data", fx->base, (unsigned)before.active_file_id);
  long long size_before = tu_file_size(data);

  /* One byte over: refused, nothing written, nothing changed. */
  assert_int_equal(bc_put(s, key, BC_MAX_KEY_SIZE + 1, 0, "x", 1), BC_INVALID);
  assert_non_null(strstr(bc_errmsg(s), "65537"));
  assert_int_equal(bc_delete(s, key, BC_MAX_KEY_SIZE + 1), BC_INVALID);
  assert_int_equal(bc_lookup(s, key, BC_MAX_KEY_SIZE + 1, NULL), BC_NOTFOUND);
  /* A value over the limit is refused before anything is read from it. */
  assert_int_equal(bc_put(s, "k", 1, 0, NULL, (size_t)BC_MAX_VALUE_SIZE + 1), BC_INVALID);
  TU_OK(bc_sync(s));
  bc_stats after = tu_stats(s);
  assert_true(after.next_seq == before.next_seq);
  assert_true(after.total_bytes == before.total_bytes);
  assert_int_equal(after.keys, 2);
  assert_int_equal(tu_file_size(data), size_before);

  bc_buf b = {0};
  const void *v;
  bc_info info;
  TU_OK(bc_get(s, key, BC_MAX_KEY_SIZE, &b, &v, &info));
  assert_memory_equal(v, "max", 3);
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(fx->base, 4096, BC_SYNC_FULL, NULL);
  assert_int_equal(bc_count(s), 2);
  assert_int_equal(tu_stats(s).hint_files, 1);
  TU_OK(bc_get(s, key, BC_MAX_KEY_SIZE, &b, &v, &info));
  assert_memory_equal(v, "max", 3);
  assert_int_equal(info.meta, 3);
  TU_OK(bc_get(s, "", 0, &b, &v, &info));
  assert_memory_equal(v, "empty key", 9);
  /* A key one byte shorter is another key. */
  assert_int_equal(bc_get(s, key, BC_MAX_KEY_SIZE - 1, &b, &v, &info), BC_NOTFOUND);
  TU_OK(bc_delete(s, key, BC_MAX_KEY_SIZE));
  TU_OK(bc_delete(s, "", 0));
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(fx->base, 4096, BC_SYNC_FULL, NULL);
  assert_int_equal(bc_count(s), 0);
  assert_int_equal(bc_close(s), BC_OK);
  bc_buf_free(&b);
  free(key);
}

static void test_delete_absent(void **state) {
  tu_fix *fx = *state;
  bc_store *s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  TU_OK(bc_put(s, "x", 1, 0, "1", 1));
  TU_OK(bc_sync(s));
  bc_stats a = tu_stats(s);
  assert_int_equal(bc_delete(s, "nope", 4), BC_NOTFOUND);
  assert_int_equal(bc_delete(s, "", 0), BC_NOTFOUND);
  TU_OK(bc_sync(s));
  bc_stats b = tu_stats(s);
  assert_true(a.next_seq == b.next_seq);
  assert_true(a.total_bytes == b.total_bytes);
  TU_OK(bc_delete(s, "x", 1));
  assert_int_equal(bc_delete(s, "x", 1), BC_NOTFOUND);
  assert_int_equal(bc_close(s), BC_OK);
}

/* Regression test (a bug this suite found, now fixed): bc_delete of an absent key rotates the active file first when it is
** full: engine/active.c bc_append rotates (lines 162-167) and may flush
** (170-173) before it looks the key up and returns BC_NOTFOUND (175-178).  So
** a call documented to "write nothing" seals the file, writes a hint file and
** creates a new data file -- and could fail with BC_IOERR instead of
** BC_NOTFOUND.  Fix: at the top of bc_append, `if (type != BC_REC_PUT &&
** !bc_kd_get(&s->kd, key, klen)) return BC_NOTFOUND;`. */
static void test_delete_absent_writes_nothing_when_full(void **state) {
  tu_fix *fx = *state;
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_FULL, NULL);
  unsigned char v[200];
  tu_fill(v, sizeof v, 1, 1);
  /* Fill the active file to max_file_size exactly or beyond. */
  for (int i = 0; tu_stats(s).total_bytes < 4096; i++) {
    char k[32];
    size_t kl = tu_key(k, (size_t)i);
    TU_OK(bc_put(s, k, kl, 0, v, sizeof v));
  }
  TU_OK(bc_sync(s));
  bc_stats a = tu_stats(s);
  assert_int_equal(a.data_files, 1);
  char *fp = tu_fingerprint(fx->base);
  bc_status st = bc_delete(s, "absent", 6);
  TU_OK(bc_sync(s));
  bc_stats b = tu_stats(s);
  char *fp2 = tu_fingerprint(fx->base);
  int same = strcmp(fp, fp2) == 0;
  free(fp);
  free(fp2);
  assert_int_equal(bc_close(s), BC_OK);
  assert_int_equal(st, BC_NOTFOUND);
  if (b.data_files != a.data_files || b.hint_files != a.hint_files || !same)
    fail_msg("bc_delete of an absent key changed the store: data files %llu -> %llu, "
             "hint files %llu -> %llu", (unsigned long long)a.data_files,
             (unsigned long long)b.data_files, (unsigned long long)a.hint_files,
             (unsigned long long)b.hint_files);
}

static void test_overwrite_many_then_reopen(void **state) {
  tu_fix *fx = *state;
  const size_t K = 50;
  tu_model m;
  tu_model_init(&m, K);
  bc_store *s = tu_open(fx->base, 8192, BC_SYNC_OFF, NULL);
  for (unsigned ver = 1; ver <= 40; ver++) {
    for (size_t i = 0; i < K; i++) TU_OK(tu_put_ver(s, &m, i, ver, 0, 300));
    if (ver % 7 == 0) TU_OK(bc_sync(s));
  }
  tu_model_check(s, &m, "before close");
  bc_stats st = tu_stats(s);
  assert_true(st.data_files > 1);
  assert_true(st.dead_bytes > st.live_bytes);
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(fx->base, 8192, BC_SYNC_OFF, NULL);
  tu_model_check(s, &m, "after reopen");
  assert_int_equal(bc_close(s), BC_OK);
  /* And once more with every hint file gone: the scan agrees. */
  uint32_t ids[256];
  size_t n = tu_data_ids(fx->base, ids, 256);
  for (size_t i = 0; i < n; i++) {
    char p[PATH_MAX];
    tu_path(p, "%s/%010u.hint", fx->base, ids[i]);
    unlink(p);
  }
  s = tu_open(fx->base, 8192, BC_SYNC_OFF, NULL);
  tu_model_check(s, &m, "after reopen without hints");
  assert_int_equal(bc_close(s), BC_OK);
  tu_model_free(&m);
}

static void test_rotation_and_hints(void **state) {
  tu_fix *fx = *state;
  const size_t K = 600;
  tu_model m;
  tu_model_init(&m, K);
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  for (size_t i = 0; i < K; i++) TU_OK(tu_put_ver(s, &m, i, 1, 50, 150));
  for (size_t i = 0; i < K; i += 5) TU_OK(tu_del(s, &m, i));
  TU_OK(bc_sync(s));
  bc_stats st = tu_stats(s);
  assert_true(st.data_files >= 20);
  assert_true(st.hint_files == st.data_files - 1); /* all but the active file */
  assert_true(st.active_file_id == st.data_files); /* ids 1..n, the newest active */
  assert_int_equal(tu_count_files(fx->base, ".data"), (int)st.data_files);
  assert_int_equal(tu_count_files(fx->base, ".hint"), (int)st.hint_files);
  /* Sealed files stay near max_file_size. */
  uint32_t ids[256];
  size_t n = tu_data_ids(fx->base, ids, 256);
  for (size_t i = 0; i + 1 < n; i++) {
    char p[PATH_MAX];
    tu_path(p, "%s/%010u.data", fx->base, ids[i]);
    long long sz = tu_file_size(p);
    assert_true(sz >= 4096 && sz < 4096 + 32 + 10 + 200);
  }
  tu_model_check(s, &m, "before close");
  assert_int_equal(bc_close(s), BC_OK);

  /* Reopen reads the hints, not the sealed data files. */
  tio t;
  tio_init(&t);
  s = tu_open(fx->base, 4096, BC_SYNC_OFF, &t.io);
  bc_stats st2 = tu_stats(s);
  assert_int_equal(st2.data_files, st.data_files);
  assert_int_equal(st2.hint_files, st.hint_files);
  assert_true(st2.next_seq == st.next_seq);
  assert_true(st2.live_bytes == st.live_bytes);
  assert_true(st2.total_bytes == st.total_bytes);
  assert_true(t.pread_hint_bytes > 0);
  char active[PATH_MAX];
  tu_path(active, "%s/%010u.data", fx->base, ids[n - 1]);
  long long limit = 32 * (long long)n + tu_file_size(active);
  if (t.pread_data_bytes > limit)
    fail_msg("open read %lld bytes of data files; with hints it needs <= %lld",
             t.pread_data_bytes, limit);
  tu_model_check(s, &m, "after reopen");
  assert_int_equal(bc_close(s), BC_OK);
  assert_int_equal(tio_open_fds(&t), 0);
  tio_free(&t);
  tu_model_free(&m);
}

/* One step of hint_workload on s: a put, a delete, or a transaction (puts,
** deletes, a savepoint rolled back, then committed, rolled back whole, or
** prepared and aborted), chosen by step. */
static void hint_step(bc_store *s, unsigned step) {
  unsigned char v[600];
  char k[32];
  size_t i = (step * 37u) % 90, kl = tu_key(k, i);
  size_t vl = tu_vlen(i, step, 0, sizeof v);
  tu_fill(v, vl, i, step);
  switch (step % 5) {
    case 0:
    case 1:
      TU_OK(bc_put(s, k, kl, (uint8_t)step, v, vl));
      break;
    case 2: {
      bc_status st = bc_delete(s, k, kl);
      assert_true(st == BC_OK || st == BC_NOTFOUND);
      break;
    }
    default: {
      bc_txn *t;
      TU_OK(bc_txn_begin(s, &t));
      TU_OK(bc_txn_put(t, k, kl, 1, v, vl));
      unsigned sp;
      TU_OK(bc_txn_savepoint(t, &sp));
      kl = tu_key(k, (i + 1) % 90);
      TU_OK(bc_txn_put(t, k, kl, 2, v, vl / 2));
      TU_OK(bc_txn_rollback_to(t, sp));
      kl = tu_key(k, (i + 2) % 90);
      bc_status st = bc_txn_delete(t, k, kl);
      assert_true(st == BC_OK || st == BC_NOTFOUND);
      if (step % 15 == 4) {
        TU_OK(bc_txn_rollback(t));
      } else if (step % 15 == 9) {
        TU_OK(bc_txn_prepare(t));
        TU_OK(bc_txn_rollback(t));
      } else {
        TU_OK(bc_txn_commit(t));
      }
      break;
    }
  }
}

/* Blank the durability claim of every COMMIT of data file d (n bytes) and
** the CRC of its record: the claim says how much of the file was fsync'd
** when the COMMIT was appended, which depends on when fsyncs happened. */
static void blank_claims(unsigned char *d, size_t n) {
  size_t off = BC_FILE_HEADER_SIZE;
  while (off + BC_REC_HEADER_SIZE <= n) {
    uint32_t klen = bc_get_u32(d + off + 24), vlen = bc_get_u32(d + off + 28);
    if (d[off + 4] == BC_REC_COMMIT && vlen == BC_COMMIT_SIZE &&
        off + BC_REC_HEADER_SIZE + vlen <= n) {
      memset(d + off, 0, 4);
      memset(d + off + BC_REC_HEADER_SIZE + 8, 0, 8);
    }
    off += (size_t)bc_rec_size(klen, vlen);
  }
}

/* The writer builds a sealed file's hint in memory as it appends the
** file's records (engine/active.c); a writer that went on appending to a
** tail it found at open builds it by scanning the file.  The same writes
** made by one writer, and by writers reopened before every step (every hint
** then comes from a scan), give byte-identical hint files, and data files
** identical but for the COMMITs' durability claims (and so their CRCs). */
static void test_hint_in_memory_matches_scan(void **state) {
  tu_fix *fx = *state;
  char a[PATH_MAX], b[PATH_MAX];
  tu_path(a, "%s/a", fx->base);
  tu_path(b, "%s/b", fx->base);
  const unsigned steps = 400;
  bc_store *s = tu_open(a, 4096, BC_SYNC_NORMAL, NULL);
  for (unsigned step = 0; step < steps; step++) hint_step(s, step);
  assert_int_equal(bc_close(s), BC_OK);
  for (unsigned step = 0; step < steps; step++) {
    s = tu_open(b, 4096, BC_SYNC_NORMAL, NULL);
    hint_step(s, step);
    assert_int_equal(bc_close(s), BC_OK);
  }
  uint32_t ids[512];
  size_t n = tu_data_ids(a, ids, 512);
  assert_true(n >= 20);
  assert_int_equal(tu_data_ids(b, ids, 512), n);
  assert_int_equal(tu_count_files(a, ".hint"), (int)n - 1);
  assert_int_equal(tu_count_files(b, ".hint"), (int)n - 1);
  for (size_t i = 0; i < n; i++) {
    static const char *const sfx[2] = {"data", "hint"};
    for (int j = 0; j < 2; j++) {
      if (j == 1 && i + 1 == n) continue; /* the active file has none */
      char pa[PATH_MAX], pb[PATH_MAX];
      tu_path(pa, "%s/%010u.%s", a, ids[i], sfx[j]);
      tu_path(pb, "%s/%010u.%s", b, ids[i], sfx[j]);
      size_t la, lb;
      unsigned char *da = tu_read_file(pa, &la), *db = tu_read_file(pb, &lb);
      if (j == 0 && la == lb) {
        blank_claims(da, la);
        blank_claims(db, lb);
      }
      if (la != lb || memcmp(da, db, la) != 0)
        fail_msg("%010u.%s differs between the in-memory hint and the scan", ids[i],
                 sfx[j]);
      free(da);
      free(db);
    }
  }
}

static void test_not_a_store(void **state) {
  tu_fix *fx = *state;
  char dir[PATH_MAX], p[PATH_MAX], err[512];
  bc_options o;
  bc_store *s = (bc_store *)1;

  /* A non-empty directory without a marker: refused, untouched. */
  tu_path(dir, "%s/notours", fx->base);
  assert_int_equal(mkdir(dir, 0755), 0);
  tu_path(p, "%s/notes.txt", dir);
  tu_write_file(p, "hello", 5);
  tu_path(p, "%s/0000000001.data", dir); /* looks like ours, is not */
  tu_write_file(p, "junk", 4);
  char *fp = tu_fingerprint(dir);
  for (int create = 0; create <= 1; create++)
    for (int ro = 0; ro <= 1; ro++) {
      bc_options_init(&o);
      o.create = create;
      o.read_only = ro;
      err[0] = 0;
      assert_int_equal(bc_open(dir, &o, &s, err, sizeof err), BC_NOTSTORE);
      assert_null(s);
      assert_non_null(strstr(err, dir));
      assert_non_null(strstr(err, "not"));
      char *fp2 = tu_fingerprint(dir);
      assert_string_equal(fp, fp2);
      free(fp2);
    }
  free(fp);

  /* A plain file. */
  tu_path(p, "%s/plainfile", fx->base);
  tu_write_file(p, "data", 4);
  bc_options_init(&o);
  o.create = 1;
  assert_int_equal(bc_open(p, &o, &s, err, sizeof err), BC_NOTSTORE);
  assert_null(s);
  assert_int_equal(tu_file_size(p), 4);

  /* A missing directory without create: refused, not created. */
  tu_path(dir, "%s/missing", fx->base);
  bc_options_init(&o);
  assert_int_equal(bc_open(dir, &o, &s, err, sizeof err), BC_NOTSTORE);
  assert_false(tu_exists(dir));
  /* Read-only never creates. */
  o.create = 1;
  o.read_only = 1;
  assert_int_equal(bc_open(dir, &o, &s, err, sizeof err), BC_NOTSTORE);
  assert_false(tu_exists(dir));
  /* create needs the parent. */
  tu_path(dir, "%s/no/such/parent", fx->base);
  o.read_only = 0;
  assert_int_equal(bc_open(dir, &o, &s, err, sizeof err), BC_NOTSTORE);
  /* An empty directory without create is not a store either. */
  tu_path(dir, "%s/empty", fx->base);
  assert_int_equal(mkdir(dir, 0755), 0);
  o.create = 0;
  assert_int_equal(bc_open(dir, &o, &s, err, sizeof err), BC_NOTSTORE);
  assert_int_equal(tu_count_entries(dir), 0);
  /* A damaged marker. */
  tu_path(p, "%s/BITCASK", dir);
  tu_write_file(p, "something else\n", 15);
  o.create = 1;
  assert_int_equal(bc_open(dir, &o, &s, err, sizeof err), BC_NOTSTORE);
  assert_int_equal(tu_count_entries(dir), 1);
  /* A marker of a newer format. */
  char newer[64];
  int nl = snprintf(newer, sizeof newer, "bitcask-sqlite store\nformat %d\ncreated-dir 0\n",
                    BC_FORMAT_VERSION + 1);
  tu_write_file(p, newer, (size_t)nl);
  assert_int_equal(bc_open(dir, &o, &s, err, sizeof err), BC_VERSION);
  assert_int_equal(tu_count_entries(dir), 1);
}

static void test_bad_options(void **state) {
  tu_fix *fx = *state;
  char dir[PATH_MAX], err[512];
  tu_path(dir, "%s/s", fx->base);
  bc_options o;
  bc_store *s = NULL;
  const uint64_t bad_sizes[] = {1, BC_MIN_MAX_FILE_SIZE - 1, BC_MAX_FILE_SIZE_LIMIT + 1};
  for (size_t i = 0; i < 3; i++) {
    bc_options_init(&o);
    o.create = 1;
    o.max_file_size = bad_sizes[i];
    assert_int_equal(bc_open(dir, &o, &s, err, sizeof err), BC_INVALID);
    assert_null(s);
    assert_non_null(strstr(err, "max_file_size"));
    assert_false(tu_exists(dir));
  }
  bc_options_init(&o);
  o.create = 1;
  o.sync = (bc_sync_mode)7;
  assert_int_equal(bc_open(dir, &o, &s, err, sizeof err), BC_INVALID);
  assert_false(tu_exists(dir));
  assert_int_equal(bc_open("", &o, &s, err, sizeof err), BC_INVALID);
  assert_int_equal(bc_open(NULL, &o, &s, err, sizeof err), BC_INVALID);
  /* The limits themselves are fine. */
  o.sync = BC_SYNC_NORMAL;
  o.max_file_size = BC_MIN_MAX_FILE_SIZE;
  s = tu_open_opts(dir, &o);
  assert_true(tu_stats(s).max_file_size == BC_MIN_MAX_FILE_SIZE);
  assert_int_equal(tu_stats(s).sync, BC_SYNC_NORMAL);
  assert_int_equal(bc_close(s), BC_OK);
  o.max_file_size = BC_MAX_FILE_SIZE_LIMIT;
  s = tu_open_opts(dir, &o);
  assert_int_equal(bc_close(s), BC_OK);
  /* NULL options: defaults (no create): the store exists now. */
  assert_int_equal(bc_open(dir, NULL, &s, NULL, 0), BC_OK);
  assert_int_equal(tu_stats(s).sync, BC_SYNC_FULL);
  assert_int_equal(bc_close(s), BC_OK);
  /* Names of statuses. */
  assert_string_equal(bc_status_name(BC_LOCKED), "BC_LOCKED");
  assert_string_equal(bc_status_name(BC_OK), "BC_OK");
  assert_non_null(bc_status_name((bc_status)99));
}

static void test_second_writer_locked(void **state) {
  tu_fix *fx = *state;
  bc_store *s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  TU_OK(bc_put(s, "k", 1, 0, "v1", 2));
  TU_OK(bc_sync(s));
  bc_options o;
  bc_options_init(&o);
  o.create = 1;
  bc_store *s2 = (bc_store *)1;
  char err[512] = "";
  assert_int_equal(bc_open(fx->base, &o, &s2, err, sizeof err), BC_LOCKED);
  assert_null(s2);
  assert_non_null(strstr(err, "pid"));
  char pid[32];
  snprintf(pid, sizeof pid, "%ld", (long)getpid());
  assert_non_null(strstr(err, pid));
  assert_non_null(strstr(err, fx->base));
  /* The failed open disturbed nothing: the first writer still works. */
  TU_OK(bc_put(s, "k", 1, 0, "v2", 2));
  TU_OK(bc_sync(s));
  bc_buf b = {0};
  const void *v;
  TU_OK(bc_get(s, "k", 1, &b, &v, NULL));
  assert_memory_equal(v, "v2", 2);
  /* And still holds the lock. */
  assert_int_equal(bc_open(fx->base, &o, &s2, err, sizeof err), BC_LOCKED);
  assert_int_equal(bc_close(s), BC_OK);
  /* Once closed, the next writer gets in. */
  s = tu_open_opts(fx->base, &o);
  TU_OK(bc_get(s, "k", 1, &b, &v, NULL));
  assert_memory_equal(v, "v2", 2);
  assert_int_equal(bc_close(s), BC_OK);
  bc_buf_free(&b);
}

static void test_read_only_with_writer(void **state) {
  tu_fix *fx = *state;
  tu_model m;
  tu_model_init(&m, 300);
  bc_store *w = tu_open(fx->base, 4096, BC_SYNC_FULL, NULL);
  for (size_t i = 0; i < 200; i++) TU_OK(tu_put_ver(w, &m, i, 1, 10, 100));
  for (size_t i = 0; i < 200; i += 3) TU_OK(tu_del(w, &m, i));
  TU_OK(bc_sync(w));
  char *fp = tu_fingerprint(fx->base);

  bc_options o;
  bc_options_init(&o);
  o.read_only = 1;
  bc_store *r = tu_open_opts(fx->base, &o);
  tu_model_check(r, &m, "read-only store");
  bc_stats st = tu_stats(r);
  assert_int_equal(st.read_only, 1);
  assert_int_equal(st.active_file_id, 0);
  assert_int_equal(bc_put(r, "x", 1, 0, "y", 1), BC_READONLY);
  assert_int_equal(bc_delete(r, "key:000001", 10), BC_READONLY);
  uint64_t rec = 99;
  assert_int_equal(bc_merge(r, &rec), BC_READONLY);
  assert_true(rec == 0);
  assert_int_equal(bc_sync(r), BC_OK);
  tu_model_check(r, &m, "read-only store after refused writes");
  assert_int_equal(bc_close(r), BC_OK);
  /* Opening and closing read-only changed no file. */
  char *fp2 = tu_fingerprint(fx->base);
  assert_string_equal(fp, fp2);
  free(fp);
  free(fp2);

  /* Later synced writes show in a new read-only open. */
  for (size_t i = 200; i < 300; i++) TU_OK(tu_put_ver(w, &m, i, 2, 10, 100));
  TU_OK(bc_sync(w));
  r = tu_open_opts(fx->base, &o);
  tu_model_check(r, &m, "second read-only store");
  assert_int_equal(bc_close(r), BC_OK);
  assert_int_equal(bc_close(w), BC_OK);
  tu_model_free(&m);
}

static void test_destroy(void **state) {
  tu_fix *fx = *state;
  char dir[PATH_MAX], p[PATH_MAX], err[512];
  bc_options o;
  bc_options_init(&o);
  o.create = 1;
  o.max_file_size = 4096;

  /* 1. Created by bc_open: everything goes, the directory too. */
  tu_path(dir, "%s/created", fx->base);
  bc_store *s = tu_open_opts(dir, &o);
  tu_model m;
  tu_model_init(&m, 200);
  for (size_t i = 0; i < 200; i++) TU_OK(tu_put_ver(s, &m, i, 1, 50, 100));
  TU_OK(bc_merge(s, NULL));
  for (size_t i = 0; i < 100; i++) TU_OK(tu_put_ver(s, &m, i, 2, 50, 100));
  assert_int_equal(bc_close(s), BC_OK);
  assert_true(tu_count_files(dir, ".data") > 1);
  assert_int_equal(bc_destroy(dir, err, sizeof err), BC_OK);
  assert_false(tu_exists(dir));
  /* Destroying what is not there is fine. */
  assert_int_equal(bc_destroy(dir, err, sizeof err), BC_OK);

  /* 2. Created by bc_open, then someone put a file of theirs in it: only
  ** the store's files go. */
  s = tu_open_opts(dir, &o);
  TU_OK(bc_put(s, "k", 1, 0, "v", 1));
  assert_int_equal(bc_close(s), BC_OK);
  tu_path(p, "%s/mine.txt", dir);
  tu_write_file(p, "keep me", 7);
  assert_int_equal(bc_destroy(dir, err, sizeof err), BC_OK);
  assert_true(tu_exists(dir));
  assert_int_equal(tu_count_entries(dir), 1);
  assert_int_equal(tu_file_size(p), 7);

  /* 3. An adopted (pre-existing, empty) directory stays, emptied. */
  tu_path(dir, "%s/adopted", fx->base);
  assert_int_equal(mkdir(dir, 0755), 0);
  s = tu_open_opts(dir, &o);
  TU_OK(bc_put(s, "k", 1, 0, "v", 1));
  assert_int_equal(bc_close(s), BC_OK);
  assert_int_equal(bc_destroy(dir, err, sizeof err), BC_OK);
  assert_true(tu_exists(dir));
  assert_int_equal(tu_count_entries(dir), 0);

  /* 4. Not a store: nothing is deleted. */
  tu_path(dir, "%s/foreign", fx->base);
  assert_int_equal(mkdir(dir, 0755), 0);
  tu_path(p, "%s/0000000001.data", dir);
  tu_write_file(p, "x", 1);
  tu_path(p, "%s/LOCK", dir);
  tu_write_file(p, "1", 1);
  err[0] = 0;
  assert_int_equal(bc_destroy(dir, err, sizeof err), BC_NOTSTORE);
  assert_non_null(strstr(err, dir));
  assert_int_equal(tu_count_entries(dir), 2);
  tu_model_free(&m);
}

/* An iterator is a cursor: writes, deletes and merges between its steps
** never make it skip a key that is live, repeat a key, or return one that is
** not live at that step (keys are "key:%06zu", so index order is key order;
** the empty key sorts first). */
static void test_iter_cursor_under_writes(void **state) {
  tu_fix *fx = *state;
  const size_t K = 500, SPAN = K + 200;
  tu_model m;
  tu_model_init(&m, SPAN);
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  for (size_t i = 0; i < K; i++) TU_OK(tu_put_ver(s, &m, i, 1, 0, 80));
  for (size_t i = 0; i < K; i += 4) TU_OK(tu_del(s, &m, i));
  TU_OK(bc_put(s, "", 0, 5, "empty", 5)); /* the empty key is iterated too */
  int empty_live = 1;

  bc_iter *it = NULL;
  TU_OK(bc_iter_open(s, &it));
  long prev = -2; /* -2: nothing returned yet; -1: the empty key */
  uint64_t r = 12345;
  size_t steps = 0, merges = 0;
  for (;;) {
    /* Between two steps: a few writes anywhere, now and then a merge. */
    for (int w = 0; w < 3; w++) {
      r = r * 6364136223846793005ull + 1442695040888963407ull;
      size_t i = (size_t)(r >> 33) % SPAN;
      switch ((r >> 20) % 3) {
      case 0: TU_OK(tu_put_ver(s, &m, i, 2, 100, 50)); break;
      case 1: if (m.v[i]) TU_OK(tu_del(s, &m, i)); break;
      default: if (m.v[i]) TU_OK(tu_put_ver(s, &m, i, 3, 7, 30)); break;
      }
    }
    if (steps % 97 == 50) {
      TU_OK(bc_merge(s, NULL));
      merges++;
    }
    if (steps == 20 && empty_live) {
      TU_OK(bc_delete(s, "", 0));
      empty_live = 0;
    }
    const void *key;
    size_t klen;
    bc_info info;
    bc_status st = bc_iter_next(it, &key, &klen, &info);
    long got;
    if (st == BC_DONE) {
      got = (long)SPAN; /* past every key */
    } else {
      TU_OK(st);
      if (klen == 0) {
        got = -1;
      } else {
        char k[32];
        assert_true(klen < sizeof k);
        memcpy(k, key, klen);
        k[klen] = 0;
        size_t i;
        assert_int_equal(sscanf(k, "key:%zu", &i), 1);
        got = (long)i;
        assert_non_null(m.v[i]); /* live now */
        bc_info now;
        TU_OK(bc_lookup(s, key, klen, &now));
        assert_true(now.seq == info.seq);
        assert_int_equal(now.value_size, info.value_size);
      }
      if (got <= prev) fail_msg("iterator went from %ld back to %ld", prev, got);
    }
    /* Nothing live was skipped between prev and got. */
    if (prev < -1 && got > -1 && empty_live) fail_msg("the empty key was skipped");
    for (long i = prev + 1 > 0 ? prev + 1 : 0; i < got && i < (long)SPAN; i++)
      if (m.v[i]) fail_msg("key %ld skipped (between %ld and %ld)", i, prev, got);
    if (st == BC_DONE) break;
    prev = got;
    steps++;
  }
  assert_int_equal(bc_iter_next(it, NULL, NULL, NULL), BC_DONE);
  bc_iter_close(it);
  assert_true(steps > 300);
  assert_true(merges >= 3);
  tu_model_free(&m);
  TU_OK(bc_close(s));
}

/* ------------------------------------------------- another process */

#include <signal.h>
#include <sys/wait.h>

/* A writer in another process: a second writer gets BC_LOCKED naming that
** pid, bc_destroy refuses, a reader works; once the writer is killed (no
** bc_close), its stale lock blocks nothing and its synced data is there. */
static void test_other_process(void **state) {
  tu_fix *fx = *state;
  int ready[2], go[2];
  assert_int_equal(pipe(ready), 0);
  assert_int_equal(pipe(go), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(ready[0]);
    close(go[1]);
    bc_options o;
    bc_options_init(&o);
    o.create = 1;
    bc_store *s = NULL;
    if (bc_open(fx->base, &o, &s, NULL, 0) != BC_OK) _exit(2);
    if (bc_put(s, "child", 5, 1, "was here", 8) != BC_OK || bc_sync(s) != BC_OK) _exit(3);
    if (bc_put(s, "unsynced", 8, 1, "maybe", 5) != BC_OK) _exit(4);
    char c = 'r';
    if (write(ready[1], &c, 1) != 1) _exit(5);
    (void)read(go[0], &c, 1); /* wait to be killed */
    _exit(6);
  }
  close(ready[1]);
  close(go[0]);
  char c;
  assert_int_equal(read(ready[0], &c, 1), 1);

  bc_options o;
  bc_options_init(&o);
  bc_store *s = NULL;
  char err[512] = "", pidtext[32];
  snprintf(pidtext, sizeof pidtext, "pid %ld", (long)pid);
  assert_int_equal(bc_open(fx->base, &o, &s, err, sizeof err), BC_LOCKED);
  assert_non_null(strstr(err, pidtext));
  assert_int_equal(bc_destroy(fx->base, err, sizeof err), BC_LOCKED);
  char p[PATH_MAX];
  tu_path(p, "%s/BITCASK", fx->base);
  assert_true(tu_exists(p));
  o.read_only = 1;
  s = tu_open_opts(fx->base, &o);
  bc_buf b = {0};
  const void *v;
  TU_OK(bc_get(s, "child", 5, &b, &v, NULL));
  assert_memory_equal(v, "was here", 8);
  assert_int_equal(bc_close(s), BC_OK);

  /* kill -9 the writer: the kernel drops its lock. */
  assert_int_equal(kill(pid, SIGKILL), 0);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status));
  close(ready[0]);
  close(go[1]);
  o.read_only = 0;
  s = tu_open_opts(fx->base, &o);
  TU_OK(bc_get(s, "child", 5, &b, &v, NULL));
  assert_memory_equal(v, "was here", 8);
  TU_OK(bc_put(s, "parent", 6, 0, "too", 3));
  assert_int_equal(bc_close(s), BC_OK);
  bc_buf_free(&b);
}

/* ------------------------------------------------------------ threads */

#include <pthread.h>

#define TW 3      /* writer threads */
#define TKEYS 100 /* keys per writer */

typedef struct tshared {
  bc_store *s;
  tu_model *m;
  volatile int done;
  pthread_mutex_t mu;
  char failure[256]; /* first failure seen by a thread */
  int writer;        /* this thread's number, for writers */
} tshared;

static void tfail(tshared *sh, const char *msg, size_t key) {
  pthread_mutex_lock(&sh->mu);
  if (!sh->failure[0]) snprintf(sh->failure, sizeof sh->failure, "%s (key %zu)", msg, key);
  pthread_mutex_unlock(&sh->mu);
}

/* Value of key i version ver: i and ver, then tu_fill bytes. */
static size_t tvalue(unsigned char *v, size_t i, unsigned ver) {
  size_t len = 8 + tu_vlen(i, ver, 0, 300);
  bc_put_u32(v, (uint32_t)i);
  bc_put_u32(v + 4, ver);
  tu_fill(v + 8, len - 8, i, ver);
  return len;
}

typedef struct targ {
  tshared *sh;
  int n;
} targ;

static void *writer_main(void *p) {
  targ *a = p;
  tshared *sh = a->sh;
  unsigned char v[400];
  for (unsigned op = 1; op <= 600; op++) {
    size_t i = (size_t)a->n * TKEYS + (op * 13u) % TKEYS;
    char k[32];
    size_t kl = tu_key(k, i);
    if (op % 5 == 0 && sh->m->v[i]) {
      if (bc_delete(sh->s, k, kl) != BC_OK) tfail(sh, "delete failed", i);
      tu_model_del(sh->m, i);
    } else {
      size_t len = tvalue(v, i, op);
      if (bc_put(sh->s, k, kl, (uint8_t)op, v, len) != BC_OK) tfail(sh, "put failed", i);
      tu_model_set(sh->m, i, v, len, (uint8_t)op);
    }
    if (op % 10 == 0 && bc_sync(sh->s) != BC_OK) tfail(sh, "sync failed", i);
  }
  return NULL;
}

static void *reader_main(void *p) {
  targ *a = p;
  tshared *sh = a->sh;
  bc_buf b = {0};
  unsigned char want[400];
  uint64_t x = 12345 + (uint64_t)a->n;
  while (!sh->done) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    size_t i = (size_t)(x >> 33) % (TW * TKEYS);
    char k[32];
    size_t kl = tu_key(k, i);
    const void *v;
    bc_info info;
    bc_status st = bc_get(sh->s, k, kl, &b, &v, &info);
    if (st == BC_OK) {
      /* Whatever version it is, it is a whole, valid version of this key. */
      const unsigned char *u = v;
      if (info.value_size < 8 || bc_get_u32(u) != i) {
        tfail(sh, "value of another key", i);
        continue;
      }
      unsigned ver = bc_get_u32(u + 4);
      size_t len = tvalue(want, i, ver);
      if (len != info.value_size || memcmp(want, u, len) != 0 || info.meta != (uint8_t)ver)
        tfail(sh, "torn or wrong value", i);
    } else if (st != BC_NOTFOUND) {
      tfail(sh, "bc_get error", i);
    }
    (void)bc_count(sh->s);
  }
  bc_buf_free(&b);
  return NULL;
}

static void *merger_main(void *p) {
  targ *a = p;
  tshared *sh = a->sh;
  for (int round = 0; round < 40 && (round < 3 || !sh->done); round++) {
    usleep(2000);
    if (bc_merge(sh->s, NULL) != BC_OK) tfail(sh, "merge failed", 0);
    bc_iter *it;
    if (bc_iter_open(sh->s, &it) != BC_OK) {
      tfail(sh, "iter_open failed", 0);
      continue;
    }
    const void *key;
    size_t klen;
    size_t n = 0;
    while (bc_iter_next(it, &key, &klen, NULL) == BC_OK) n++;
    bc_iter_close(it);
    if (n > TW * TKEYS) tfail(sh, "iterator yields too many keys", n);
    bc_stats st;
    bc_stats_get(sh->s, &st);
  }
  return NULL;
}

/* Writers on disjoint keys, readers, and a merging iterating thread at once
** (bitcask.h: every function taking a bc_store is thread-safe). */
static void test_threads(void **state) {
  tu_fix *fx = *state;
  tu_model m;
  tu_model_init(&m, TW * TKEYS);
  tshared sh;
  memset(&sh, 0, sizeof sh);
  pthread_mutex_init(&sh.mu, NULL);
  tio t; /* the engine calls it under the store mutex only */
  tio_init(&t);
  t.real_fsync = 0;
  sh.s = tu_open(fx->base, 4096, BC_SYNC_OFF, &t.io);
  sh.m = &m;
  pthread_t w[TW], r[2], g;
  targ wa[TW], ra[2], ga = {&sh, 0};
  for (int i = 0; i < 2; i++) {
    ra[i] = (targ){&sh, i};
    assert_int_equal(pthread_create(&r[i], NULL, reader_main, &ra[i]), 0);
  }
  assert_int_equal(pthread_create(&g, NULL, merger_main, &ga), 0);
  for (int i = 0; i < TW; i++) {
    wa[i] = (targ){&sh, i};
    assert_int_equal(pthread_create(&w[i], NULL, writer_main, &wa[i]), 0);
  }
  for (int i = 0; i < TW; i++) pthread_join(w[i], NULL);
  sh.done = 1;
  for (int i = 0; i < 2; i++) pthread_join(r[i], NULL);
  pthread_join(g, NULL);
  if (sh.failure[0]) fail_msg("%s", sh.failure);
  tu_model_check(sh.s, &m, "after the threads");
  assert_true(tu_stats(sh.s).merges > 0);
  assert_int_equal(bc_close(sh.s), BC_OK);
  tio_free(&t);
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  tu_model_check(s, &m, "after reopen");
  assert_int_equal(bc_close(s), BC_OK);
  pthread_mutex_destroy(&sh.mu);
  tu_model_free(&m);
}

/* A creation cut short (found by the SQL fault test): an empty or partial
** BITCASK marker, or a leftover BITCASK.tmp, in a directory holding nothing
** else is adopted and rewritten; next to other files it is refused. */
static void test_unfinished_marker(void **state) {
  tu_fix *fx = *state;
  char d[PATH_MAX], p[PATH_MAX];
  tu_path(d, "%s/m1", fx->base);
  assert_int_equal(mkdir(d, 0755), 0);
  tu_path(p, "%s/BITCASK", d);
  FILE *f = fopen(p, "w");
  fputs("bitcask-sq", f); /* cut short */
  fclose(f);
  tu_path(p, "%s/BITCASK.tmp", d);
  f = fopen(p, "w");
  fclose(f);
  bc_store *s = tu_open(d, 0, BC_SYNC_FULL, NULL);
  TU_OK(bc_put(s, "k", 1, 0, "v", 1));
  assert_int_equal(bc_close(s), BC_OK);
  assert_false(tu_exists(p));
  s = tu_open(d, 0, BC_SYNC_FULL, NULL);
  assert_int_equal(bc_count(s), 1);
  assert_int_equal(bc_close(s), BC_OK);
  /* Damaged marker next to a file that is not ours: refused, untouched. */
  tu_path(d, "%s/m2", fx->base);
  assert_int_equal(mkdir(d, 0755), 0);
  tu_path(p, "%s/BITCASK", d);
  f = fopen(p, "w");
  fclose(f);
  tu_path(p, "%s/theirs", d);
  f = fopen(p, "w");
  fclose(f);
  bc_options o;
  bc_options_init(&o);
  o.create = 1;
  char err[512];
  bc_store *t = NULL;
  assert_int_equal(bc_open(d, &o, &t, err, sizeof err), BC_NOTSTORE);
  assert_non_null(strstr(err, "incomplete"));
  assert_true(tu_exists(p));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      TU_TEST(test_basic_ops_and_reopen),
      TU_TEST(test_value_sizes),
      TU_TEST(test_key_size_limit),
      TU_TEST(test_delete_absent),
      TU_TEST(test_delete_absent_writes_nothing_when_full),
      TU_TEST(test_overwrite_many_then_reopen),
      TU_TEST(test_rotation_and_hints),
      TU_TEST(test_hint_in_memory_matches_scan),
      TU_TEST(test_not_a_store),
      TU_TEST(test_bad_options),
      TU_TEST(test_second_writer_locked),
      TU_TEST(test_read_only_with_writer),
      TU_TEST(test_destroy),
      TU_TEST(test_iter_cursor_under_writes),
      TU_TEST(test_threads),
      TU_TEST(test_other_process),
      TU_TEST(test_unfinished_marker),
  };
  return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
