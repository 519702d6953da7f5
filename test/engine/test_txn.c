/*
** test_txn.c -- transactions of the engine (bitcask.h "transactions",
** docs/DESIGN.md section 5.4 "Transactions", section 7.1): visibility,
** rollback, savepoints, serialisation, recovery of committed and
** uncommitted transactions, fsync counts per sync mode, failing writes.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bitcask.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *f) {
  (void)sb;
  (void)flag;
  (void)f;
  return remove(p);
}

typedef struct fixture {
  char dir[64];
  bc_store *s;
} fixture;

static bc_store *open_store(const char *dir, bc_sync_mode sync, uint64_t mfs,
                            const bc_io *io) {
  bc_options o;
  bc_options_init(&o);
  o.create = 1;
  o.sync = sync;
  o.max_file_size = mfs;
  o.io = io;
  bc_store *s = NULL;
  char err[512];
  bc_status st = bc_open(dir, &o, &s, err, sizeof err);
  if (st != BC_OK) fprintf(stderr, "open: %s\n", err);
  assert_int_equal(st, BC_OK);
  return s;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/bc-txn-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  strcat(f->dir, "/s");
  f->s = open_store(f->dir, BC_SYNC_FULL, 0, NULL);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  bc_close(f->s);
  f->dir[strlen(f->dir) - 2] = 0;
  nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static void reopen(fixture *f) {
  assert_int_equal(bc_close(f->s), BC_OK);
  f->s = open_store(f->dir, BC_SYNC_FULL, 0, NULL);
}

static void put(bc_txn *t, const char *k, const char *v) {
  assert_int_equal(bc_txn_put(t, k, strlen(k), 7, v, strlen(v)), BC_OK);
}

/* The committed value of k as a string ("" if absent: NOTFOUND). */
static const char *get(bc_store *s, const char *k) {
  static char out[1024];
  bc_buf b = {0};
  const void *v;
  bc_info i;
  bc_status st = bc_get(s, k, strlen(k), &b, &v, &i);
  if (st == BC_NOTFOUND) {
    out[0] = 0;
  } else {
    assert_int_equal(st, BC_OK);
    assert_true(i.value_size < sizeof out);
    memcpy(out, v, i.value_size);
    out[i.value_size] = 0;
  }
  bc_buf_free(&b);
  return out;
}

static const char *tget(bc_txn *t, const char *k) {
  static char out[1024];
  bc_buf b = {0};
  const void *v;
  bc_info i;
  bc_status st = bc_txn_get(t, k, strlen(k), &b, &v, &i);
  if (st == BC_NOTFOUND) {
    out[0] = 0;
  } else {
    assert_int_equal(st, BC_OK);
    memcpy(out, v, i.value_size);
    out[i.value_size] = 0;
  }
  bc_buf_free(&b);
  return out;
}

static uint64_t iter_count(bc_iter *it) {
  uint64_t n = 0;
  const void *k;
  size_t kl;
  while (bc_iter_next(it, &k, &kl, NULL) == BC_OK) n++;
  bc_iter_close(it);
  return n;
}

static bc_stats stats(bc_store *s) {
  bc_stats st;
  bc_stats_get(s, &st);
  return st;
}

/* ------------------------------------------------------------------ tests */

static void test_commit_visibility(void **state) {
  fixture *f = *state;
  bc_txn *t;
  assert_int_equal(bc_put(f->s, "old", 3, 0, "o", 1), BC_OK);
  assert_int_equal(bc_txn_begin(f->s, &t), BC_OK);
  put(t, "a", "1");
  put(t, "b", "2");
  assert_int_equal(bc_txn_delete(t, "old", 3), BC_OK);
  assert_int_equal(bc_txn_delete(t, "never", 5), BC_NOTFOUND);
  /* Its own view. */
  assert_string_equal(tget(t, "a"), "1");
  assert_string_equal(tget(t, "old"), "");
  bc_iter *it;
  assert_int_equal(bc_iter_open_txn(t, &it), BC_OK);
  assert_int_equal(iter_count(it), 2);
  /* Everyone else's. */
  assert_int_equal(bc_lookup(f->s, "a", 1, NULL), BC_NOTFOUND);
  assert_string_equal(get(f->s, "old"), "o");
  assert_int_equal(bc_count(f->s), 1);
  assert_int_equal(bc_txn_commit(t), BC_OK);
  assert_string_equal(get(f->s, "a"), "1");
  assert_string_equal(get(f->s, "b"), "2");
  assert_string_equal(get(f->s, "old"), "");
  assert_int_equal(bc_count(f->s), 2);
  reopen(f);
  assert_string_equal(get(f->s, "a"), "1");
  assert_string_equal(get(f->s, "old"), "");
  assert_int_equal(bc_count(f->s), 2);
}

/* bc_txn_insert: a put only where the key is not live in the txn's view. */
static void test_insert_if_absent(void **state) {
  fixture *f = *state;
  assert_int_equal(bc_put(f->s, "a", 1, 0, "1", 1), BC_OK);
  assert_int_equal(bc_put(f->s, "b", 1, 0, "2", 1), BC_OK);
  bc_txn *t;
  assert_int_equal(bc_txn_begin(f->s, &t), BC_OK);
  bc_buf b = {0};
  const void *v;
  bc_info info;
  /* Committed: exists, nothing written. */
  assert_int_equal(bc_txn_insert(t, "a", 1, 0, "X", 1), BC_EXISTS);
  assert_int_equal(bc_txn_get(t, "a", 1, &b, &v, &info), BC_OK);
  assert_memory_equal(v, "1", 1);
  /* Absent: written. */
  assert_int_equal(bc_txn_insert(t, "c", 1, 4, "3", 1), BC_OK);
  /* Written by the txn: exists. */
  assert_int_equal(bc_txn_insert(t, "c", 1, 0, "Y", 1), BC_EXISTS);
  /* Deleted by the txn: absent again. */
  assert_int_equal(bc_txn_delete(t, "b", 1), BC_OK);
  assert_int_equal(bc_txn_insert(t, "b", 1, 0, "B", 1), BC_OK);
  /* Too long a key is refused as by bc_txn_put. */
  static unsigned char big[BC_MAX_KEY_SIZE + 1];
  assert_int_equal(bc_txn_insert(t, big, sizeof big, 0, "", 0), BC_INVALID);
  assert_int_equal(bc_txn_commit(t), BC_OK);
  reopen(f);
  assert_int_equal(bc_count(f->s), 3);
  assert_int_equal(bc_get(f->s, "a", 1, &b, &v, &info), BC_OK);
  assert_memory_equal(v, "1", 1);
  assert_int_equal(bc_get(f->s, "b", 1, &b, &v, &info), BC_OK);
  assert_memory_equal(v, "B", 1);
  assert_int_equal(bc_get(f->s, "c", 1, &b, &v, &info), BC_OK);
  assert_memory_equal(v, "3", 1);
  assert_int_equal(info.meta, 4);
  bc_buf_free(&b);
  assert_string_equal(bc_status_name(BC_EXISTS), "BC_EXISTS");
}

static void test_rollback(void **state) {
  fixture *f = *state;
  bc_txn *t;
  assert_int_equal(bc_put(f->s, "keep", 4, 0, "k", 1), BC_OK);
  assert_int_equal(bc_txn_begin(f->s, &t), BC_OK);
  for (int i = 0; i < 500; i++) {
    char k[16];
    snprintf(k, sizeof k, "r%d", i);
    put(t, k, "x");
  }
  assert_int_equal(bc_txn_delete(t, "keep", 4), BC_OK);
  assert_int_equal(bc_txn_rollback(t), BC_OK);
  assert_int_equal(bc_count(f->s), 1);
  assert_string_equal(get(f->s, "keep"), "k");
  reopen(f);
  assert_int_equal(bc_count(f->s), 1);
  assert_string_equal(get(f->s, "keep"), "k");
  assert_string_equal(get(f->s, "r7"), "");
}

static void test_savepoints(void **state) {
  fixture *f = *state;
  bc_txn *t;
  unsigned d[7];
  assert_int_equal(bc_txn_begin(f->s, &t), BC_OK);
  put(t, "k", "v0");
  for (int i = 1; i <= 6; i++) {
    char v[16], extra[16];
    assert_int_equal(bc_txn_savepoint(t, &d[i]), BC_OK);
    assert_int_equal(d[i], (unsigned)i);
    snprintf(v, sizeof v, "v%d", i);
    snprintf(extra, sizeof extra, "e%d", i);
    put(t, "k", v);
    put(t, extra, v);
  }
  assert_string_equal(tget(t, "k"), "v6");
  /* Back to savepoint 4: k as before it, e4..e6 gone, 4 still open. */
  assert_int_equal(bc_txn_rollback_to(t, 4), BC_OK);
  assert_string_equal(tget(t, "k"), "v3");
  assert_string_equal(tget(t, "e3"), "v3");
  assert_string_equal(tget(t, "e4"), "");
  put(t, "k", "after");
  assert_int_equal(bc_txn_rollback_to(t, 4), BC_OK); /* the same one again */
  assert_string_equal(tget(t, "k"), "v3");
  assert_int_equal(bc_txn_rollback_to(t, 5), BC_INVALID); /* closed */
  /* Release 2 and deeper: their writes stay. */
  assert_int_equal(bc_txn_release(t, 2), BC_OK);
  assert_int_equal(bc_txn_rollback_to(t, 2), BC_INVALID);
  assert_string_equal(tget(t, "k"), "v3");
  assert_int_equal(bc_txn_delete(t, "e1", 2), BC_OK);
  assert_int_equal(bc_txn_savepoint(t, &d[0]), BC_OK);
  assert_int_equal(d[0], 2u);
  assert_int_equal(bc_txn_delete(t, "e2", 2), BC_OK);
  assert_int_equal(bc_txn_rollback_to(t, 1), BC_OK);
  assert_string_equal(tget(t, "k"), "v0");
  assert_string_equal(tget(t, "e1"), "");
  put(t, "z", "last");
  assert_int_equal(bc_txn_commit(t), BC_OK);
  reopen(f);
  assert_string_equal(get(f->s, "k"), "v0");
  assert_string_equal(get(f->s, "z"), "last");
  assert_int_equal(bc_count(f->s), 2);
}

static void test_serialised(void **state) {
  fixture *f = *state;
  bc_txn *t, *u;
  assert_int_equal(bc_txn_begin(f->s, &t), BC_OK);
  assert_int_equal(bc_txn_begin(f->s, &u), BC_BUSY);
  assert_null(u);
  assert_int_equal(bc_put(f->s, "x", 1, 0, "y", 1), BC_BUSY);
  assert_int_equal(bc_delete(f->s, "x", 1), BC_BUSY);
  assert_int_equal(bc_merge(f->s, NULL), BC_BUSY);
  assert_non_null(strstr(bc_errmsg(f->s), "transaction"));
  put(t, "x", "t");
  assert_int_equal(bc_txn_commit(t), BC_OK);
  assert_int_equal(bc_txn_begin(f->s, &u), BC_OK);
  assert_int_equal(bc_txn_rollback(u), BC_OK);
  assert_int_equal(bc_put(f->s, "x", 1, 0, "y", 1), BC_OK);
  assert_string_equal(get(f->s, "x"), "y");
}

static void test_across_rotation(void **state) {
  fixture *f = *state;
  bc_close(f->s);
  f->s = open_store(f->dir, BC_SYNC_FULL, 4096, NULL);
  char v[300];
  memset(v, 'q', sizeof v - 1);
  v[sizeof v - 1] = 0;
  bc_txn *t;
  assert_int_equal(bc_txn_begin(f->s, &t), BC_OK);
  for (int i = 0; i < 200; i++) {
    char k[16];
    snprintf(k, sizeof k, "c%d", i);
    put(t, k, v);
  }
  assert_int_equal(bc_txn_commit(t), BC_OK);
  assert_true(stats(f->s).data_files > 10);
  /* An uncommitted one across files, then close: it leaves no trace. */
  assert_int_equal(bc_txn_begin(f->s, &t), BC_OK);
  for (int i = 0; i < 200; i++) {
    char k[16];
    snprintf(k, sizeof k, "u%d", i);
    put(t, k, v);
    if (i % 2 == 0) {
      snprintf(k, sizeof k, "c%d", i);
      assert_int_equal(bc_txn_delete(t, k, strlen(k)), BC_OK);
    }
  }
  assert_int_equal(bc_close(f->s), BC_OK); /* rolls t back, frees it */
  f->s = open_store(f->dir, BC_SYNC_FULL, 4096, NULL);
  assert_int_equal(bc_count(f->s), 200);
  assert_string_equal(get(f->s, "c0"), v);
  assert_string_equal(get(f->s, "u1"), "");
  /* A merge keeps exactly the committed state. */
  assert_int_equal(bc_merge(f->s, NULL), BC_OK);
  reopen(f);
  assert_int_equal(bc_count(f->s), 200);
  assert_string_equal(get(f->s, "c199"), v);
}

/* fsync counts: docs/DESIGN.md section 2.8 "Durability", issue 3 "one fsync per
** transaction however many rows it wrote". */
static void commit_rows(bc_store *s, int rows) {
  bc_txn *t;
  assert_int_equal(bc_txn_begin(s, &t), BC_OK);
  for (int i = 0; i < rows; i++) {
    char k[16];
    snprintf(k, sizeof k, "f%d", i);
    put(t, k, "0123456789");
  }
  assert_int_equal(bc_txn_commit(t), BC_OK);
}

static void test_fsync_counts(void **state) {
  fixture *f = *state;
  uint64_t before = stats(f->s).fsyncs;
  commit_rows(f->s, 1);
  assert_int_equal(stats(f->s).fsyncs - before, 1);
  before = stats(f->s).fsyncs;
  commit_rows(f->s, 1000);
  assert_int_equal(stats(f->s).fsyncs - before, 1);
  before = stats(f->s).fsyncs;
  bc_txn *t;
  assert_int_equal(bc_txn_begin(f->s, &t), BC_OK);
  assert_int_equal(bc_txn_rollback(t), BC_OK);
  commit_rows(f->s, 0); /* an empty transaction commits nothing */
  assert_int_equal(stats(f->s).fsyncs - before, 0);

  bc_close(f->s);
  f->s = open_store(f->dir, BC_SYNC_OFF, 0, NULL);
  before = stats(f->s).fsyncs;
  commit_rows(f->s, 1);
  commit_rows(f->s, 1000);
  assert_int_equal(stats(f->s).fsyncs - before, 0);
  assert_int_equal(stats(f->s).commits, 2);

  /* normal: the commit itself does not fsync; the store's background thread
  ** does within BC_NORMAL_SYNC_MS. */
  bc_close(f->s);
  f->s = open_store(f->dir, BC_SYNC_NORMAL, 0, NULL);
  usleep(BC_NORMAL_SYNC_MS * 1000); /* let the first rounds pass */
  before = stats(f->s).fsyncs;
  commit_rows(f->s, 1000);
  uint64_t right_after = stats(f->s).fsyncs - before;
  assert_true(right_after <= 1);
  usleep(BC_NORMAL_SYNC_MS * 1000 + 200000);
  assert_int_equal(stats(f->s).fsyncs - before, 1);
  usleep(BC_NORMAL_SYNC_MS * 1000);
  assert_int_equal(stats(f->s).fsyncs - before, 1); /* nothing new to sync */
}

/* A bc_io that fails the n-th pwrite or fsync (counting from 1). */
typedef struct faulty {
  int fail_pwrite_at, fail_fsync_at;
  int npwrite, nfsync;
} faulty;

static int f_open(void *c, const char *p, int fl, mode_t m) {
  (void)c;
  return open(p, fl | O_CLOEXEC, m);
}
static ssize_t f_pread(void *c, int fd, void *b, size_t n, off_t o) {
  (void)c;
  return pread(fd, b, n, o);
}
static ssize_t f_pwrite(void *c, int fd, const void *b, size_t n, off_t o) {
  faulty *x = c;
  if (++x->npwrite == x->fail_pwrite_at) {
    errno = ENOSPC;
    return -1;
  }
  return pwrite(fd, b, n, o);
}
static int f_fsync(void *c, int fd) {
  faulty *x = c;
  if (++x->nfsync == x->fail_fsync_at) {
    errno = EIO;
    return -1;
  }
  return fsync(fd);
}
static int f_ftruncate(void *c, int fd, off_t l) {
  (void)c;
  return ftruncate(fd, l);
}
static int f_rename(void *c, const char *a, const char *b) {
  (void)c;
  return rename(a, b);
}
static int f_unlink(void *c, const char *p) {
  (void)c;
  return unlink(p);
}
static int f_close(void *c, int fd) {
  (void)c;
  return close(fd);
}

static void test_failed_commit(void **state) {
  fixture *f = *state;
  for (int which = 0; which < 2; which++) {
    bc_close(f->s);
    faulty x = {0, 0, 0, 0};
    bc_io io = {&x, f_open, f_pread, f_pwrite, f_fsync, f_ftruncate,
                f_rename, f_unlink, f_close};
    f->s = open_store(f->dir, BC_SYNC_FULL, 0, &io);
    commit_rows(f->s, 3); /* f0..f2 committed */
    bc_txn *t;
    assert_int_equal(bc_txn_begin(f->s, &t), BC_OK);
    put(t, "f0", "changed");
    put(t, "new", "n");
    /* The commit's write (which 0) or its fsync (which 1) fails. */
    if (which == 0)
      x.fail_pwrite_at = x.npwrite + 1;
    else
      x.fail_fsync_at = x.nfsync + 1;
    assert_int_equal(bc_txn_commit(t), which == 0 ? BC_FULL : BC_IOERR);
    assert_string_equal(get(f->s, "f0"), "0123456789");
    assert_string_equal(get(f->s, "new"), "");
    /* The next transaction works. */
    assert_int_equal(bc_txn_begin(f->s, &t), BC_OK);
    put(t, "after", "a");
    assert_int_equal(bc_txn_commit(t), BC_OK);
    assert_int_equal(bc_close(f->s), BC_OK);
    f->s = open_store(f->dir, BC_SYNC_FULL, 0, NULL);
    assert_string_equal(get(f->s, "f0"), "0123456789");
    assert_string_equal(get(f->s, "new"), "");
    assert_string_equal(get(f->s, "after"), "a");
    assert_int_equal(stats(f->s).corrupt, 0);
  }
}

/* Two-phase commit as SQLite drives it: prepare (xSync) is the durable
** commit point; a rollback after it (SQLite's own commit failed) voids the
** COMMIT with an abort right after it; a failed sync in prepare fails it. */
static void test_prepare_then_rollback(void **state) {
  fixture *f = *state;
  bc_txn *t;
  assert_int_equal(bc_txn_begin(f->s, &t), BC_OK);
  put(t, "p", "prepared");
  uint64_t before = stats(f->s).fsyncs;
  assert_int_equal(bc_txn_prepare(t), BC_OK);
  assert_int_equal(stats(f->s).fsyncs - before, 1); /* durable in prepare */
  assert_int_equal(bc_txn_put(t, "late", 4, 0, "x", 1), BC_INVALID);
  assert_string_equal(get(f->s, "p"), "");          /* not visible yet */
  assert_int_equal(bc_txn_rollback(t), BC_OK);
  assert_string_equal(get(f->s, "p"), "");
  reopen(f);
  assert_string_equal(get(f->s, "p"), "");
  assert_int_equal(stats(f->s).corrupt, 0);
  /* prepare + commit: visible, and after reopen. */
  assert_int_equal(bc_txn_begin(f->s, &t), BC_OK);
  put(t, "q", "committed");
  assert_int_equal(bc_txn_prepare(t), BC_OK);
  before = stats(f->s).fsyncs;
  assert_int_equal(bc_txn_commit(t), BC_OK);
  assert_int_equal(stats(f->s).fsyncs - before, 0); /* commit does no I/O */
  assert_string_equal(get(f->s, "q"), "committed");
  reopen(f);
  assert_string_equal(get(f->s, "q"), "committed");
  assert_string_equal(get(f->s, "p"), "");
}

/* Issue 3: a large transaction does not hold its values in memory.  200,000
** rows of 2,000 bytes (400 MB written) must not raise the peak RSS by more
** than a quarter of that: the overlay holds only keys and locations. */
static long peak_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

static void test_large_txn(void **state) {
  fixture *f = *state;
  bc_close(f->s);
  f->s = open_store(f->dir, BC_SYNC_OFF, 0, NULL);
  static unsigned char v[2000];
  memset(v, 'L', sizeof v);
  const int n = 200000;
  long before = peak_rss_kb();
  bc_txn *t;
  assert_int_equal(bc_txn_begin(f->s, &t), BC_OK);
  for (int i = 0; i < n; i++) {
    char k[16];
    int kl = snprintf(k, sizeof k, "L%d", i);
    v[0] = (unsigned char)i;
    assert_int_equal(bc_txn_put(t, k, (size_t)kl, 0, v, sizeof v), BC_OK);
  }
  assert_int_equal(bc_txn_commit(t), BC_OK);
  long grown_kb = peak_rss_kb() - before;
  uint64_t written = stats(f->s).total_bytes;
  assert_true(written > (uint64_t)n * sizeof v);
  if (getenv("BC_TEST_VERBOSE"))
    printf("large txn: %llu bytes written, peak RSS +%ld KB\n",
           (unsigned long long)written, grown_kb);
  assert_true((uint64_t)grown_kb * 1024 < written / 4);
  assert_int_equal(bc_count(f->s), (uint64_t)n);
  reopen(f);
  assert_int_equal(bc_count(f->s), (uint64_t)n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_commit_visibility, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_insert_if_absent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_savepoints, setup, teardown),
      cmocka_unit_test_setup_teardown(test_serialised, setup, teardown),
      cmocka_unit_test_setup_teardown(test_across_rotation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fsync_counts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_commit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_prepare_then_rollback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_large_txn, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
