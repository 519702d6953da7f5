/*
** test_io_faults.c -- a failing disk under the write path (docs/DESIGN.md
** section 7.7): ENOSPC/EIO from pwrite, short writes, failing
** fsync and ftruncate, read errors.  The failed call returns BC_IOERR
** (BC_FULL for ENOSPC), every earlier commit stays readable, the failed
** write is invisible now and after reopen, and the next write after the
** fault works and persists.  Also the
** number of fsyncs per commit in each sync mode.
*/
#include "testutil.h"

#define MiB (1024u * 1024u)

static bc_store *open_tio(const char *dir, tio *t, uint64_t mfs, bc_sync_mode sync) {
  return tu_open(dir, mfs, sync, &t->io);
}

/* Arm: the next `nth` call of kind `mask` fails with err (once). */
static void arm(tio *t, unsigned mask, long nth, int err, int short_first) {
  t->mask = mask;
  t->steps = 0;
  t->faults = 0;
  t->fail_at = nth;
  t->fail_errno = err;
  t->short_first = short_first;
  t->counting = 1;
}

static void disarm(tio *t) {
  t->counting = 0;
  t->fail_at = 0;
}

/* ------------------------------------------------------- buffered writes */

static void enospc_on_sync(tu_fix *fx, int short_first) {
  tio t;
  tio_init(&t);
  t.real_fsync = 0;
  tu_model m;
  tu_model_init(&m, 400);
  bc_store *s = open_tio(fx->base, &t, 0, BC_SYNC_FULL);
  for (size_t i = 0; i < 100; i++) TU_OK(tu_put_ver(s, &m, i, 1, 10, 100));
  TU_OK(bc_sync(s));
  char p[PATH_MAX];
  tu_path(p, "%s/0000000001.data", fx->base);
  long long committed_size = tu_file_size(p);

  arm(&t, TIO_PWRITE, 1, ENOSPC, short_first);
  /* Buffered: these succeed until the commit. */
  for (size_t i = 100; i < 110; i++) TU_OK(tu_put_ver(s, NULL, i, 1, 10, 100));
  TU_OK(tu_put_ver(s, NULL, 5, 2, 10, 100));
  TU_OK(tu_del(s, NULL, 7));
  TU_OK(tu_put_ver(s, NULL, 300, 1, 10, 100));
  assert_int_equal(bc_sync(s), BC_FULL);
  assert_true(t.faults >= 1);
  assert_non_null(strstr(bc_errmsg(s), strerror(ENOSPC)));
  disarm(&t);
  /* None of it is visible; everything committed is. */
  tu_model_check(s, &m, "after the failed commit");
  /* The file holds no partial record. */
  assert_int_equal(tu_file_size(p), committed_size);
  /* Space is back: the next writes work. */
  TU_OK(tu_put_ver(s, &m, 200, 1, 10, 100));
  TU_OK(tu_put_ver(s, &m, 5, 3, 10, 100));
  TU_OK(tu_del(s, &m, 8));
  TU_OK(bc_sync(s));
  tu_model_check(s, &m, "after the next commit");
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  tu_model_check(s, &m, "after reopen");
  assert_int_equal(tu_stats(s).truncated_bytes, 0);
  assert_int_equal(tu_stats(s).corrupt, 0);
  assert_int_equal(bc_close(s), BC_OK);
  assert_int_equal(tio_open_fds(&t), 0);
  tio_free(&t);
  tu_model_free(&m);
}

static void test_enospc_on_sync(void **state) { enospc_on_sync(*state, 0); }

/* The failing write first gets half of its bytes onto the disk. */
static void test_short_write_then_enospc(void **state) { enospc_on_sync(*state, 1); }

/* The buffer filling up flushes from inside bc_put: that put fails, with the
** records buffered before it. */
static void test_enospc_when_buffer_fills(void **state) {
  tu_fix *fx = *state;
  tio t;
  tio_init(&t);
  t.real_fsync = 0;
  tu_model m;
  tu_model_init(&m, 100);
  bc_store *s = open_tio(fx->base, &t, 0, BC_SYNC_FULL);
  for (size_t i = 0; i < 10; i++) TU_OK(tu_put_ver(s, &m, i, 1, 100, 1));
  TU_OK(bc_sync(s));
  arm(&t, TIO_PWRITE, 1, EIO, 0);
  /* ~300 KiB records: the 4th does not fit the 1 MiB buffer. */
  bc_status st = BC_OK;
  size_t i;
  for (i = 10; i < 20 && st == BC_OK; i++) st = tu_put_ver(s, NULL, i, 1, 300000, 1);
  assert_int_equal(st, BC_IOERR);
  assert_true(i > 11);
  disarm(&t);
  tu_model_check(s, &m, "after the failed flush");
  TU_OK(bc_sync(s));
  TU_OK(tu_put_ver(s, &m, 50, 1, 300000, 1));
  TU_OK(bc_sync(s));
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  tu_model_check(s, &m, "after reopen");
  assert_int_equal(bc_close(s), BC_OK);
  tio_free(&t);
  tu_model_free(&m);
}

/* bc_close's own flush fails: BC_IOERR, the store is freed, the unflushed
** writes are gone and the committed ones are not. */
static void test_enospc_at_close(void **state) {
  tu_fix *fx = *state;
  tio t;
  tio_init(&t);
  t.real_fsync = 0;
  tu_model m;
  tu_model_init(&m, 100);
  bc_store *s = open_tio(fx->base, &t, 0, BC_SYNC_FULL);
  for (size_t i = 0; i < 50; i++) TU_OK(tu_put_ver(s, &m, i, 1, 10, 100));
  TU_OK(bc_sync(s));
  for (size_t i = 50; i < 60; i++) TU_OK(tu_put_ver(s, NULL, i, 1, 10, 100));
  arm(&t, TIO_PWRITE, 1, ENOSPC, 1);
  assert_int_equal(bc_close(s), BC_FULL);
  assert_int_equal(tio_open_fds(&t), 0);
  s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  tu_model_check(s, &m, "after a failed close");
  assert_int_equal(bc_close(s), BC_OK);
  tio_free(&t);
  tu_model_free(&m);
}

/* ----------------------------------------------------- big, direct writes */

static void test_enospc_big_value(void **state) {
  tu_fix *fx = *state;
  tio t;
  tio_init(&t);
  t.real_fsync = 0;
  tu_model m;
  tu_model_init(&m, 10);
  bc_store *s = open_tio(fx->base, &t, 0, BC_SYNC_FULL);
  TU_OK(tu_put_ver(s, &m, 1, 1, 2 * MiB, 1));
  TU_OK(tu_put_ver(s, &m, 2, 1, 10, 1));
  TU_OK(bc_sync(s));
  char p[PATH_MAX];
  tu_path(p, "%s/0000000001.data", fx->base);
  long long size = tu_file_size(p);
  /* A record larger than the buffer is written in three parts (header,
  ** key, value): fail each, with and without a partial write first. */
  for (long nth = 1; nth <= 3; nth++)
    for (int sh = 0; sh <= 1; sh++) {
      /* Over an existing key, and as a new key. */
      arm(&t, TIO_PWRITE, nth, ENOSPC, sh);
      assert_int_equal(tu_put_ver(s, NULL, 1, 10 + (unsigned)nth, 2 * MiB, 1), BC_FULL);
      assert_true(t.faults >= 1);
      arm(&t, TIO_PWRITE, nth, ENOSPC, sh);
      assert_int_equal(tu_put_ver(s, NULL, 3, 10 + (unsigned)nth, 2 * MiB, 1), BC_FULL);
      assert_true(t.faults >= 1);
      disarm(&t);
      assert_int_equal(tu_file_size(p), size);
      tu_model_check(s, &m, "after a failed big write");
    }
  TU_OK(tu_put_ver(s, &m, 3, 20, 2 * MiB, 1));
  TU_OK(bc_sync(s));
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  tu_model_check(s, &m, "after reopen");
  assert_int_equal(tu_stats(s).truncated_bytes, 0);
  assert_int_equal(bc_close(s), BC_OK);
  tio_free(&t);
  tu_model_free(&m);
}

/* ------------------------------------------- every pwrite of a workload */

#define WK 60
#define WOPS 160

/* A workload of single-record commits with rotations (4 KiB files); each
** write is followed by bc_sync.  A write whose put/delete or sync failed is
** not in the model. */
static void workload(bc_store *s, tu_model *m, long *faulted_ops) {
  for (unsigned step = 0; step < WOPS; step++) {
    size_t i = (step * 37u) % WK;
    bc_status st, st2 = BC_OK;
    int del = step % 9 == 4 && m->v[i] != NULL;
    char k[32];
    size_t kl = tu_key(k, i);
    size_t vl = tu_vlen(i, step, 10, 400);
    unsigned char v[410];
    tu_fill(v, vl, i, step);
    if (del)
      st = bc_delete(s, k, kl);
    else
      st = bc_put(s, k, kl, (uint8_t)step, v, vl);
    if (st == BC_OK) st2 = bc_sync(s);
    if (st == BC_OK && st2 == BC_OK) {
      if (del)
        tu_model_del(m, i);
      else
        tu_model_set(m, i, v, vl, (uint8_t)step);
    } else {
      if ((st != BC_OK && st != BC_IOERR && st != BC_FULL) ||
          (st2 != BC_OK && st2 != BC_IOERR && st2 != BC_FULL))
        fail_msg("step %u: %s / %s: %s", step, bc_status_name(st), bc_status_name(st2),
                 bc_errmsg(s));
      (*faulted_ops)++;
      /* The failed write is invisible right away. */
      const void *got;
      bc_buf b = {0};
      bc_status g = bc_get(s, k, kl, &b, &got, NULL);
      if (m->v[i]) {
        assert_int_equal(g, BC_OK);
        assert_memory_equal(got, m->v[i], m->len[i]);
      } else {
        assert_int_equal(g, BC_NOTFOUND);
      }
      bc_buf_free(&b);
    }
  }
}

static void test_enospc_at_every_pwrite(void **state) {
  tu_fix *fx = *state;
  char dir[PATH_MAX];
  tu_path(dir, "%s/w", fx->base);
  long n = 0;
  for (long k = 0; k == 0 || k <= n; k++) {
    tu_rmrf(dir);
    tio t;
    tio_init(&t);
    t.real_fsync = 0;
    tu_model m;
    tu_model_init(&m, WK);
    bc_store *s = open_tio(dir, &t, 4096, BC_SYNC_FULL);
    arm(&t, TIO_PWRITE, k, ENOSPC, k % 2);
    long faulted = 0;
    workload(s, &m, &faulted);
    if (k == 0) {
      n = t.steps;
      assert_int_equal(faulted, 0);
      assert_true(n > WOPS);
      assert_true(tu_stats(s).data_files > 5);
    } else {
      assert_true(t.faults >= 1);
      assert_true(faulted <= 1); /* one fault fails at most one commit */
    }
    disarm(&t);
    char where[64];
    snprintf(where, sizeof where, "ENOSPC at pwrite %ld, in session", k);
    tu_model_check(s, &m, where);
    assert_int_equal(bc_close(s), BC_OK);
    assert_int_equal(tio_open_fds(&t), 0);
    s = tu_open(dir, 4096, BC_SYNC_FULL, NULL);
    snprintf(where, sizeof where, "ENOSPC at pwrite %ld, reopened", k);
    tu_model_check(s, &m, where);
    assert_int_equal(tu_stats(s).corrupt, 0);
    assert_int_equal(bc_close(s), BC_OK);
    tio_free(&t);
    tu_model_free(&m);
  }
  if (getenv("BC_TEST_VERBOSE")) print_message("workload: %ld pwrites\n", n);
}

/* ------------------------------------------------------------- fsyncs */

static void test_fsync_count_full(void **state) {
  tu_fix *fx = *state;
  tio t;
  tio_init(&t);
  bc_store *s = open_tio(fx->base, &t, 0, BC_SYNC_FULL);
  for (int i = 0; i < 10; i++) {
    tio_reset_counts(&t);
    char k[32];
    size_t kl = tu_key(k, (size_t)i);
    TU_OK(bc_put(s, k, kl, 0, "value", 5));
    assert_int_equal(t.n_fsync, 0); /* a put alone does not fsync */
    TU_OK(bc_sync(s));
    assert_int_equal(t.n_fsync, 1);
    assert_int_equal(t.fsync_data, 1);
    /* Nothing new: nothing to fsync. */
    tio_reset_counts(&t);
    TU_OK(bc_sync(s));
    assert_int_equal(t.n_fsync, 0);
  }
  /* Several writes, one commit, one fsync; a delete likewise. */
  tio_reset_counts(&t);
  for (int i = 0; i < 5; i++) TU_OK(bc_put(s, "k", 1, 0, "v", 1));
  TU_OK(bc_delete(s, "k", 1));
  TU_OK(bc_sync(s));
  assert_int_equal(t.n_fsync, 1);
  assert_int_equal(t.fsync_data, 1);
  /* A rotation creates a file: the directory is fsync'd too. */
  assert_int_equal(bc_close(s), BC_OK);
  s = open_tio(fx->base, &t, 4096, BC_SYNC_FULL);
  unsigned char v[1000];
  memset(v, 'v', sizeof v);
  uint64_t id = tu_stats(s).active_file_id;
  int rotated = 0;
  for (int i = 0; i < 10 && !rotated; i++) {
    TU_OK(bc_sync(s));
    tio_reset_counts(&t);
    TU_OK(bc_put(s, "big", 3, 0, v, sizeof v));
    if (tu_stats(s).active_file_id == id) continue;
    rotated = 1;
    assert_true(t.fsync_dir >= 1);
    assert_true(t.fsync_data >= 2); /* the sealed file and the new one */
  }
  assert_int_equal(rotated, 1);
  assert_int_equal(bc_close(s), BC_OK);
  tio_free(&t);
}

static void test_fsync_count_off(void **state) {
  tu_fix *fx = *state;
  tio t;
  tio_init(&t);
  char dir[PATH_MAX];
  tu_path(dir, "%s/s", fx->base);
  /* Creation, writes, commits, rotations, close and reopen: no fsync. */
  bc_store *s = open_tio(dir, &t, 4096, BC_SYNC_OFF);
  unsigned char v[500];
  memset(v, 'v', sizeof v);
  for (size_t i = 0; i < 100; i++) {
    char k[32];
    size_t kl = tu_key(k, i);
    TU_OK(bc_put(s, k, kl, 0, v, sizeof v));
    TU_OK(bc_sync(s));
    if (i % 3 == 0) TU_OK(bc_delete(s, k, kl));
  }
  assert_true(tu_stats(s).data_files > 5);
  assert_int_equal(bc_close(s), BC_OK);
  s = open_tio(dir, &t, 4096, BC_SYNC_OFF);
  TU_OK(bc_put(s, "x", 1, 0, v, sizeof v));
  TU_OK(bc_sync(s));
  assert_int_equal(bc_close(s), BC_OK);
  assert_int_equal(t.n_fsync, 0);

  /* NORMAL: one fsync at open, of the tail the writer goes on appending to
  ** (what recovery read is made durable before a COMMIT claims it), and
  ** one at close when something was written. */
  tio_reset_counts(&t);
  s = open_tio(dir, &t, 4096, BC_SYNC_NORMAL);
  assert_int_equal(t.fsync_data, 1);
  TU_OK(bc_put(s, "y", 1, 0, "1", 1));
  assert_int_equal(bc_close(s), BC_OK);
  assert_int_equal(t.fsync_data, 2);
  tio_free(&t);
}

/* Regression test (a bug this suite found, now fixed): bc_sync returns BC_IOERR when the fsync of the commit fails, but the
** records it was committing stay in the keydir and in the file:
** engine/active.c bc_sync_active calls bc_flush (line 234), which clears the
** undo log (line 90) before the fsync at line 244 can fail.  So the "failed"
** write is visible now and after reopen.  bitcask.h: BC_IOERR means "the
** store stays consistent and the failed write left no record"; docs/DESIGN.md
** section 7.7:
** the statement fails with an error. */
static void test_failed_fsync_leaves_no_record(void **state) {
  tu_fix *fx = *state;
  tio t;
  tio_init(&t);
  t.real_fsync = 0;
  tu_model m;
  tu_model_init(&m, 20);
  bc_store *s = open_tio(fx->base, &t, 0, BC_SYNC_FULL);
  for (size_t i = 0; i < 10; i++) TU_OK(tu_put_ver(s, &m, i, 1, 10, 10));
  TU_OK(bc_sync(s));
  TU_OK(tu_put_ver(s, NULL, 15, 1, 10, 10));
  TU_OK(tu_put_ver(s, NULL, 2, 2, 10, 10));
  arm(&t, TIO_FSYNC, 1, EIO, 0);
  assert_int_equal(bc_sync(s), BC_IOERR);
  disarm(&t);
  bc_buf b = {0};
  const void *v;
  bc_status now = bc_get(s, "key:000015", 10, &b, &v, NULL);
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  bc_status later = bc_get(s, "key:000015", 10, &b, &v, NULL);
  bc_status key2 = bc_get(s, "key:000002", 10, &b, &v, NULL);
  int key2_old = key2 == BC_OK && memcmp(v, m.v[2], m.len[2]) == 0;
  assert_int_equal(bc_close(s), BC_OK);
  bc_buf_free(&b);
  tio_free(&t);
  tu_model_free(&m);
  if (now != BC_NOTFOUND || later != BC_NOTFOUND || !key2_old)
    fail_msg("writes whose bc_sync failed (fsync EIO) are visible: new key %s in "
             "session, %s after reopen; overwritten key 2 %s after reopen",
             bc_status_name(now), bc_status_name(later),
             key2_old ? "kept its old value" : "has the new value");
}

/* Regression test (a bug this suite found, now fixed): when a flush fails after part of the buffer reached the file, and the
** ftruncate that should cut that part off fails too, its result is ignored
** (engine/active.c:79 in bc_flush, and :200 for direct writes).  The next
** flush overwrites from the old size, and whatever complete records of the
** failed flush lie beyond the new end come back at the next open as valid
** records: a write whose commit failed reappears. */
static void test_failed_truncate_does_not_resurrect(void **state) {
  tu_fix *fx = *state;
  tio t;
  tio_init(&t);
  t.real_fsync = 0;
  tu_model m;
  tu_model_init(&m, 20);
  bc_store *s = open_tio(fx->base, &t, 0, BC_SYNC_FULL);
  TU_OK(tu_put_ver(s, &m, 0, 1, 58, 1));
  TU_OK(bc_sync(s));
  /* Five 100-byte records; the flush writes 250 bytes (two whole records
  ** and half a third), then ENOSPC; the ftruncate fails as well. */
  for (size_t i = 1; i <= 5; i++) TU_OK(tu_put_ver(s, NULL, i, 1, 58, 1));
  arm(&t, TIO_PWRITE, 1, ENOSPC, 1);
  t.fail_ftruncate = 1;
  assert_int_equal(bc_sync(s), BC_FULL);
  disarm(&t);
  t.fail_ftruncate = 0;
  tu_model_check(s, &m, "after the failed flush");
  /* The next commit: one 100-byte record. */
  TU_OK(tu_put_ver(s, &m, 9, 1, 58, 1));
  TU_OK(bc_sync(s));
  tu_model_check(s, &m, "after the next commit");
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  bc_buf b = {0};
  const void *v;
  bc_status st = bc_get(s, "key:000002", 10, &b, &v, NULL);
  assert_int_equal(bc_close(s), BC_OK);
  bc_buf_free(&b);
  tio_free(&t);
  tu_model_free(&m);
  if (st != BC_NOTFOUND)
    fail_msg("key 2, whose commit failed, is back after reopen (%s)", bc_status_name(st));
}

/* ---------------------------------------------------------------- reads */

static void test_read_error(void **state) {
  tu_fix *fx = *state;
  tio t;
  tio_init(&t);
  t.real_fsync = 0;
  tu_model m;
  tu_model_init(&m, 50);
  bc_store *s = open_tio(fx->base, &t, 0, BC_SYNC_FULL);
  for (size_t i = 0; i < 50; i++) TU_OK(tu_put_ver(s, &m, i, 1, 10, 10));
  TU_OK(bc_sync(s));
  arm(&t, TIO_PREAD, 1, EIO, 0);
  bc_buf b = {0};
  const void *v;
  assert_int_equal(bc_get(s, "key:000007", 10, &b, &v, NULL), BC_IOERR);
  assert_non_null(strstr(bc_errmsg(s), "0000000001.data"));
  disarm(&t);
  tu_model_check(s, &m, "after a read error");
  /* An open whose reads fail refuses with BC_IOERR and leaves no lock. */
  assert_int_equal(bc_close(s), BC_OK);
  for (long nth = 1; nth <= 3; nth++) {
    arm(&t, TIO_PREAD, nth, EIO, 0);
    bc_options o;
    bc_options_init(&o);
    o.io = &t.io;
    char err[512];
    bc_store *s2 = NULL;
    bc_status st = bc_open(fx->base, &o, &s2, err, sizeof err);
    disarm(&t);
    if (st == BC_OK) {
      tu_model_check(s2, &m, "open despite a read error");
      assert_int_equal(bc_close(s2), BC_OK);
    } else {
      assert_int_equal(st, BC_IOERR);
      assert_null(s2);
    }
    assert_int_equal(tio_open_fds(&t), 0);
  }
  s = tu_open(fx->base, 0, BC_SYNC_FULL, NULL);
  tu_model_check(s, &m, "reopen");
  assert_int_equal(bc_close(s), BC_OK);
  bc_buf_free(&b);
  tio_free(&t);
  tu_model_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      TU_TEST(test_enospc_on_sync),
      TU_TEST(test_short_write_then_enospc),
      TU_TEST(test_enospc_when_buffer_fills),
      TU_TEST(test_enospc_at_close),
      TU_TEST(test_enospc_big_value),
      TU_TEST(test_enospc_at_every_pwrite),
      TU_TEST(test_fsync_count_full),
      TU_TEST(test_fsync_count_off),
      TU_TEST(test_failed_fsync_leaves_no_record),
      TU_TEST(test_failed_truncate_does_not_resurrect),
      TU_TEST(test_read_error),
  };
  return cmocka_run_group_tests_name("io_faults", tests, NULL, NULL);
}
