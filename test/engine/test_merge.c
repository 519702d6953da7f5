/*
** test_merge.c -- compaction (merge.c): bytes reclaimed, latest values kept,
** deleted keys gone, identical after reopen, repeated merges, and a crash or
** an I/O error at every single step of a merge (docs/DESIGN.md
** section 7.5), checked against an in-memory oracle.
*/
#include "testutil.h"

#define MK 160

/* The store every merge test starts from: MK keys in ~4 KiB files with
** overwrites, deletes, re-puts of deleted keys and deletes of overwritten
** ones, so that merge inputs hold every kind of dead record. */
static void build_template(const char *dir, tu_model *m) {
  tu_model_init(m, MK);
  bc_store *s = tu_open(dir, 4096, BC_SYNC_OFF, NULL);
  for (size_t i = 0; i < MK; i++) TU_OK(tu_put_ver(s, m, i, 1, 5, 60));
  for (size_t i = 0; i < MK; i += 2) TU_OK(tu_put_ver(s, m, i, 2, 5, 60));
  for (size_t i = 0; i < MK; i += 5) TU_OK(tu_del(s, m, i));
  for (size_t i = 0; i < MK; i += 3) TU_OK(tu_put_ver(s, m, i, 3, 5, 60));
  for (size_t i = 0; i < MK; i += 11)
    if (m->v[i]) TU_OK(tu_del(s, m, i));
  TU_OK(bc_sync(s));
  assert_true(tu_stats(s).data_files >= 5);
  assert_int_equal(bc_close(s), BC_OK);
}

/* Sum of the sizes of the .data and .hint files of dir. */
static long long store_bytes(const char *dir) {
  uint32_t ids[512];
  size_t n = tu_data_ids(dir, ids, 512);
  long long sum = 0;
  for (size_t i = 0; i < n; i++) {
    char p[PATH_MAX];
    tu_path(p, "%s/%010u.data", dir, ids[i]);
    sum += tu_file_size(p);
    tu_path(p, "%s/%010u.hint", dir, ids[i]);
    if (tu_exists(p)) sum += tu_file_size(p);
  }
  return sum;
}

/* No file of an unfinished merge or hint write is left. */
static void assert_no_leftovers(const char *dir, const char *where) {
  char p[PATH_MAX];
  tu_path(p, "%s/MERGE", dir);
  int merge = tu_exists(p);
  tu_path(p, "%s/MERGE.tmp", dir);
  int merge_tmp = tu_exists(p);
  int dm = tu_count_files(dir, ".data.merging"), hm = tu_count_files(dir, ".hint.merging"),
      ht = tu_count_files(dir, ".hint.tmp");
  if (merge || merge_tmp || dm || hm || ht)
    fail_msg("%s: leftovers: MERGE %d, MERGE.tmp %d, .data.merging %d, .hint.merging %d, "
             ".hint.tmp %d", where, merge, merge_tmp, dm, hm, ht);
}

static void test_merge_reclaims(void **state) {
  tu_fix *fx = *state;
  tu_model m;
  build_template(fx->base, &m);
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  bc_stats before = tu_stats(s);
  long long disk_before = store_bytes(fx->base);
  assert_true(before.dead_bytes > 0);
  uint64_t rec = 0;
  TU_OK(bc_merge(s, &rec));
  bc_stats after = tu_stats(s);
  long long disk_after = store_bytes(fx->base);
  assert_true(rec > 0);
  /* reclaimed = inputs (data + hint, the sealed active's new hint included)
  ** minus outputs; the new active file's 32 bytes are not an output. */
  assert_true((long long)rec >= disk_before - disk_after);
  assert_true((long long)rec <= disk_before - disk_after + 32 + 8192);
  assert_true(after.total_bytes < before.total_bytes);
  assert_true(after.live_bytes == before.live_bytes);
  assert_int_equal(after.dead_bytes, 0);
  assert_int_equal(after.keys, before.keys);
  assert_int_equal(after.merges, 1);
  assert_true(after.data_files < before.data_files);
  assert_true(after.hint_files == after.data_files - 1);
  assert_no_leftovers(fx->base, "after merge");
  /* On disk: the merged outputs (with hints) and the active file. */
  assert_int_equal(tu_count_files(fx->base, ".data"), (int)after.data_files);
  assert_int_equal(tu_count_files(fx->base, ".hint"), (int)after.hint_files);
  tu_model_check(s, &m, "after merge");
  /* Writes after the merge. */
  TU_OK(tu_put_ver(s, &m, 1, 9, 10, 10));
  TU_OK(tu_del(s, &m, 2));
  TU_OK(bc_sync(s));
  bc_stats before_close = tu_stats(s);
  assert_int_equal(bc_close(s), BC_OK);

  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  tu_model_check(s, &m, "reopen after merge");
  bc_stats re = tu_stats(s);
  assert_int_equal(re.keys, before_close.keys);
  assert_true(re.live_bytes == before_close.live_bytes);
  assert_true(re.total_bytes == before_close.total_bytes);
  assert_int_equal(re.data_files, before_close.data_files);
  assert_int_equal(re.corrupt, 0);
  assert_int_equal(re.truncated_bytes, 0);
  assert_int_equal(bc_close(s), BC_OK);
  tu_model_free(&m);
}

static void test_merge_twice(void **state) {
  tu_fix *fx = *state;
  tu_model m;
  build_template(fx->base, &m);
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  uint64_t r1 = 0, r2 = 7;
  TU_OK(bc_merge(s, &r1));
  bc_stats a = tu_stats(s);
  TU_OK(bc_merge(s, &r2));
  bc_stats b = tu_stats(s);
  assert_true(r1 > 0);
  assert_true(r2 == 0); /* nothing dead left to reclaim */
  assert_true(a.total_bytes == b.total_bytes);
  assert_true(a.live_bytes == b.live_bytes);
  assert_int_equal(b.dead_bytes, 0);
  tu_model_check(s, &m, "after two merges");
  assert_no_leftovers(fx->base, "after two merges");
  TU_OK(bc_merge(s, NULL));
  tu_model_check(s, &m, "after three merges");
  assert_int_equal(tu_stats(s).merges >= 2, 1);
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  tu_model_check(s, &m, "reopen after repeated merges");
  TU_OK(bc_merge(s, NULL));
  tu_model_check(s, &m, "merge right after reopen");
  assert_int_equal(bc_close(s), BC_OK);
  tu_model_free(&m);
}

/* Merge interleaved with writes, several times, with reopen in between. */
static void test_merge_with_writes(void **state) {
  tu_fix *fx = *state;
  tu_model m;
  tu_model_init(&m, 400);
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  for (unsigned round = 1; round <= 6; round++) {
    for (size_t i = 0; i < 400; i += round) TU_OK(tu_put_ver(s, &m, i, round, 0, 150));
    for (size_t i = round; i < 400; i += 4 + round)
      if (m.v[i]) TU_OK(tu_del(s, &m, i));
    if (round % 2 == 0) {
      assert_int_equal(bc_close(s), BC_OK);
      s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
      tu_model_check(s, &m, "reopen between merges");
    }
    TU_OK(bc_merge(s, NULL));
    tu_model_check(s, &m, "after a merge");
    /* Writes right after a merge land in the active file. */
    TU_OK(tu_put_ver(s, &m, round, 100 + round, 5, 5));
  }
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  tu_model_check(s, &m, "final reopen");
  assert_int_equal(bc_close(s), BC_OK);
  tu_model_free(&m);
}

static void test_merge_empty_and_all_deleted(void **state) {
  tu_fix *fx = *state;
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  uint64_t rec = 5;
  TU_OK(bc_merge(s, &rec)); /* nothing to merge */
  assert_true(rec == 0);
  tu_model m;
  tu_model_init(&m, 200);
  for (size_t i = 0; i < 200; i++) TU_OK(tu_put_ver(s, &m, i, 1, 50, 50));
  for (size_t i = 0; i < 200; i++) TU_OK(tu_del(s, &m, i));
  assert_true(tu_stats(s).data_files > 3);
  TU_OK(bc_merge(s, &rec));
  assert_true(rec > 0);
  bc_stats st = tu_stats(s);
  assert_int_equal(st.keys, 0);
  assert_int_equal(st.data_files, 1); /* only the new active file */
  assert_int_equal(tu_count_files(fx->base, ".data"), 1);
  assert_int_equal(tu_count_files(fx->base, ".hint"), 0);
  assert_no_leftovers(fx->base, "after merging a store of tombstones");
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  tu_model_check(s, &m, "reopen: every key stays deleted");
  assert_int_equal(bc_close(s), BC_OK);
  tu_model_free(&m);
}

/* Records larger than the merge buffer are copied too. */
static void test_merge_big_values(void **state) {
  tu_fix *fx = *state;
  tu_model m;
  tu_model_init(&m, 20);
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  for (size_t i = 0; i < 20; i++) TU_OK(tu_put_ver(s, &m, i, 1, 100, 100));
  TU_OK(tu_put_ver(s, &m, 3, 2, (1u << 20) + 500, 1));
  TU_OK(tu_put_ver(s, &m, 4, 2, 3u << 20, 1));
  TU_OK(tu_put_ver(s, &m, 3, 3, (1u << 20) + 900, 1)); /* the first big one is dead */
  for (size_t i = 5; i < 20; i++) TU_OK(tu_put_ver(s, &m, i, 2, 100, 100));
  uint64_t rec = 0;
  TU_OK(bc_merge(s, &rec));
  assert_true(rec > (1u << 20));
  tu_model_check(s, &m, "after merging big values");
  assert_int_equal(bc_close(s), BC_OK);
  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  tu_model_check(s, &m, "reopen");
  assert_int_equal(tu_stats(s).corrupt, 0);
  assert_int_equal(bc_close(s), BC_OK);
  tu_model_free(&m);
}

/* A record written by a transaction (txn != 0) is copied as a standalone one
** (txn 0, new CRC); one that is standalone already is copied byte for byte.
** Both must read back, and the merged files must stand on their own when
** scanned without their hints (a record still carrying its txn would wait
** for a COMMIT that merge does not copy). */
static void test_merge_txn_records_become_standalone(void **state) {
  tu_fix *fx = *state;
  tu_model m;
  tu_model_init(&m, 40);
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  for (size_t i = 0; i < 40; i++) TU_OK(tu_put_ver(s, &m, i, 1, 50, 50));
  bc_txn *t;
  TU_OK(bc_txn_begin(s, &t));
  for (size_t i = 0; i < 40; i += 2) {
    char k[32];
    size_t kl = tu_key(k, i);
    unsigned char v[300];
    size_t vl = tu_vlen(i, 2, 50, 250);
    tu_fill(v, vl, i, 2);
    TU_OK(bc_txn_put(t, k, kl, 7, v, vl));
    tu_model_set(&m, i, v, vl, 7);
  }
  TU_OK(bc_txn_commit(t));
  TU_OK(bc_merge(s, NULL));
  tu_model_check(s, &m, "after merging transactional records");
  assert_int_equal(bc_close(s), BC_OK);
  uint32_t ids[64];
  size_t n = tu_data_ids(fx->base, ids, 64);
  for (size_t i = 0; i < n; i++) {
    char p[PATH_MAX];
    tu_path(p, "%s/%010u.hint", fx->base, ids[i]);
    if (tu_exists(p)) assert_int_equal(unlink(p), 0);
  }
  s = tu_open(fx->base, 4096, BC_SYNC_OFF, NULL);
  tu_model_check(s, &m, "reopen, merged files scanned without hints");
  assert_int_equal(tu_stats(s).corrupt, 0);
  TU_OK(bc_merge(s, NULL));
  tu_model_check(s, &m, "second merge, records copied byte for byte");
  assert_int_equal(bc_close(s), BC_OK);
  tu_model_free(&m);
}

/* Crash safety of the swap rests on fsync: a merge fsyncs its outputs and the
** directory even when the store itself never does. */
static void test_merge_fsyncs_even_with_sync_off(void **state) {
  tu_fix *fx = *state;
  tu_model m;
  build_template(fx->base, &m);
  tio t;
  tio_init(&t);
  t.real_fsync = 0;
  bc_store *s = tu_open(fx->base, 4096, BC_SYNC_OFF, &t.io);
  tio_reset_counts(&t);
  TU_OK(bc_merge(s, NULL));
  uint32_t ids[512];
  size_t n = tu_data_ids(fx->base, ids, 512);
  /* Each output's data (and hint) file, and the directory several times. */
  assert_true(t.fsync_data >= (long)n - 1);
  assert_true(t.fsync_hint >= (long)n - 1);
  assert_true(t.fsync_dir >= 3);
  tio_reset_counts(&t);
  TU_OK(tu_put_ver(s, &m, 1, 5, 5, 5));
  TU_OK(bc_sync(s));
  assert_int_equal(bc_close(s), BC_OK);
  assert_int_equal(t.n_fsync, 0); /* and outside merges, none */
  assert_int_equal(tio_open_fds(&t), 0);
  tio_free(&t);
  tu_model_free(&m);
}

/* --------------------------------------------- a fault at every step */

typedef struct fault_run {
  const char *tmpl;
  const tu_model *m;
  char dir[PATH_MAX], snap[PATH_MAX];
  /* What the sweep went through (so it cannot silently test nothing). */
  int n_ok, n_ioerr, n_snap_committed, n_snap_uncommitted;
  int outputs; /* data files of the merged store (dry run) */
} fault_run;

/* Reopen dir with the POSIX I/O and check it against the oracle; then merge
** it once more (through a tio that skips the real fsyncs, for speed) and
** check again. */
static void reopen_and_check(const char *dir, const tu_model *m, const char *what, long k) {
  char where[128];
  snprintf(where, sizeof where, "%s, fault at step %ld, reopened", what, k);
  bc_store *s = tu_open(dir, 4096, BC_SYNC_FULL, NULL);
  tu_model_check(s, m, where);
  assert_no_leftovers(dir, where);
  assert_int_equal(tu_stats(s).corrupt, 0);
  assert_int_equal(bc_close(s), BC_OK);
  tio t;
  tio_init(&t);
  t.real_fsync = 0;
  s = tu_open(dir, 4096, BC_SYNC_FULL, &t.io);
  uint64_t rec;
  bc_status st = bc_merge(s, &rec);
  if (st != BC_OK) fail_msg("%s: merge after recovery: %s", where, bc_errmsg(s));
  snprintf(where, sizeof where, "%s, fault at step %ld, merged again", what, k);
  tu_model_check(s, m, where);
  assert_no_leftovers(dir, where);
  assert_int_equal(bc_close(s), BC_OK);
  tio_free(&t);
}

/* One merge on a fresh copy of the template with step k failing (0: none).
** mask: the kinds of call counted as steps.  Returns the steps seen. */
static long merge_with_fault(fault_run *r, unsigned mask, long k, int sticky) {
  tu_rmrf(r->dir);
  tu_rmrf(r->snap);
  assert_int_equal(tu_copy_dir(r->tmpl, r->dir), 0);
  tio t;
  tio_init(&t);
  t.real_fsync = 0;
  bc_store *s = tu_open(r->dir, 4096, BC_SYNC_FULL, &t.io);
  t.mask = mask;
  t.fail_at = k;
  t.sticky = sticky;
  t.fail_errno = EIO;
  snprintf(t.snap_src, sizeof t.snap_src, "%s", r->dir);
  snprintf(t.snap_dst, sizeof t.snap_dst, "%s", r->snap);
  t.counting = 1;
  uint64_t rec = 0;
  bc_status st = bc_merge(s, &rec);
  t.counting = 0;
  long steps = t.steps;
  char where[128];
  snprintf(where, sizeof where, "fault at step %ld (%s)", k, sticky ? "from then on" : "once");
  if (k == 0) {
    if (st != BC_OK) fail_msg("dry run: %s", bc_errmsg(s));
    assert_true(rec > 0);
    r->outputs = tu_count_files(r->dir, ".data") - 1;
    assert_true(r->outputs >= 2); /* the merge rotates its outputs */
  } else {
    r->n_ok += st == BC_OK;
    r->n_ioerr += st == BC_IOERR;
    assert_true(t.faults >= 1); /* the step was reached */
    if (st != BC_OK && st != BC_IOERR)
      fail_msg("%s: bc_merge gave %s (%s)", where, bc_status_name(st), bc_errmsg(s));
    if (st == BC_IOERR && bc_errmsg(s)[0] == 0) fail_msg("%s: BC_IOERR without a message", where);
  }
  /* The open store still answers every key right. */
  t.fail_at = 0;
  tu_model_check(s, r->m, where);
  assert_int_equal(bc_close(s), BC_OK);
  assert_int_equal(tio_open_fds(&t), 0);
  tio_free(&t);
  /* The directory as bc_close left it. */
  reopen_and_check(r->dir, r->m, "after bc_close", k);
  /* The directory as a kill -9 at the fault would have left it. */
  if (k > 0) {
    assert_true(tu_exists(r->snap));
    char p[PATH_MAX];
    tu_path(p, "%s/MERGE", r->snap);
    if (tu_exists(p))
      r->n_snap_committed++;
    else if (tu_count_files(r->snap, ".data.merging") > 0)
      r->n_snap_uncommitted++;
    /* A reader first: it must see the same, and change nothing. */
    char *fp = tu_fingerprint(r->snap);
    bc_options o;
    bc_options_init(&o);
    o.read_only = 1;
    bc_store *ro = tu_open_opts(r->snap, &o);
    snprintf(where, sizeof where, "crash at step %ld, read-only", k);
    tu_model_check(ro, r->m, where);
    assert_int_equal(bc_close(ro), BC_OK);
    char *fp2 = tu_fingerprint(r->snap);
    assert_string_equal(fp, fp2);
    free(fp);
    free(fp2);
    reopen_and_check(r->snap, r->m, "crash", k);
  }
  return steps;
}

static void fault_every_step(tu_fix *fx, unsigned mask, int sticky, int stride) {
  fault_run r;
  memset(&r, 0, sizeof r);
  char tmpl[PATH_MAX];
  tu_path(tmpl, "%s/template", fx->base);
  tu_model m;
  build_template(tmpl, &m);
  r.tmpl = tmpl;
  r.m = &m;
  tu_path(r.dir, "%s/run", fx->base);
  tu_path(r.snap, "%s/snap", fx->base);
  long n = merge_with_fault(&r, mask, 0, 0);
  assert_true(n > 20);
  for (long k = 1; k <= n; k += stride) merge_with_fault(&r, mask, k, sticky);
  if (getenv("BC_TEST_VERBOSE"))
    print_message("merge: %ld steps, %d outputs (mask 0x%x): %d ok, %d IOERR; crash states: %d "
                  "committed, %d with uncommitted outputs\n", n, r.outputs, mask, r.n_ok, r.n_ioerr,
                  r.n_snap_committed, r.n_snap_uncommitted);
  /* The sweep met failures before and after the commit point. */
  assert_true(r.n_ioerr > 0);
  assert_true(r.n_snap_uncommitted > 0);
  if (mask & TIO_RENAME) assert_true(r.n_snap_committed > 0);
  tu_model_free(&m);
}

/* Every pwrite, fsync, rename, unlink, ftruncate and open of a merge fails
** in turn, once (an I/O error the merge must survive). */
static void test_merge_fault_at_every_step(void **state) {
  fault_every_step(*state,
                   TIO_PWRITE | TIO_FSYNC | TIO_RENAME | TIO_UNLINK | TIO_FTRUNCATE | TIO_OPEN,
                   0, 1);
}

/* Same, but from the fault on every such call fails (a disk that went away;
** also what a crash looks like to the calls after it); every 3rd step. */
static void test_merge_fault_sticky(void **state) {
  fault_every_step(*state,
                   TIO_PWRITE | TIO_FSYNC | TIO_RENAME | TIO_UNLINK | TIO_FTRUNCATE | TIO_OPEN,
                   1, 3);
}

/* Read errors during a merge (every 7th read). */
static void test_merge_read_faults(void **state) {
  fault_every_step(*state, TIO_PREAD, 0, 7);
}

/* A store left by a crash right after a merge's commit point (MERGE in
** place, outputs still .merging, inputs still there); bc_open must finish
** that merge.  Fail each step of that bc_open in turn (and take the crash
** state at that step): whatever happens, the next open has the right data. */
static void test_recovery_of_committed_merge_under_faults(void **state) {
  tu_fix *fx = *state;
  char tmpl[PATH_MAX], run[PATH_MAX], committed[PATH_MAX], snap[PATH_MAX];
  tu_path(tmpl, "%s/template", fx->base);
  tu_path(run, "%s/run", fx->base);
  tu_path(committed, "%s/committed", fx->base);
  tu_path(snap, "%s/snap", fx->base);
  tu_model m;
  build_template(tmpl, &m);

  /* Find the commit step, then crash right after it. */
  tio t;
  tio_init(&t);
  t.real_fsync = 0;
  assert_int_equal(tu_copy_dir(tmpl, run), 0);
  bc_store *s = tu_open(run, 4096, BC_SYNC_FULL, &t.io);
  t.counting = 1;
  TU_OK(bc_merge(s, NULL));
  t.counting = 0;
  long commit = t.merge_commit_step;
  assert_true(commit > 0);
  assert_int_equal(bc_close(s), BC_OK);
  tio_free(&t);
  tu_rmrf(run);
  assert_int_equal(tu_copy_dir(tmpl, run), 0);
  tio_init(&t);
  t.real_fsync = 0;
  s = tu_open(run, 4096, BC_SYNC_FULL, &t.io);
  t.fail_at = commit + 1;
  snprintf(t.snap_src, sizeof t.snap_src, "%s", run);
  snprintf(t.snap_dst, sizeof t.snap_dst, "%s", committed);
  t.counting = 1;
  (void)bc_merge(s, NULL);
  t.counting = 0;
  assert_int_equal(bc_close(s), BC_OK);
  tio_free(&t);
  char p[PATH_MAX];
  tu_path(p, "%s/MERGE", committed);
  assert_true(tu_exists(p));
  assert_true(tu_count_files(committed, ".data.merging") > 0);

  long n = 0;
  for (long k = 0; k == 0 || k <= n; k++) {
    tu_rmrf(run);
    tu_rmrf(snap);
    assert_int_equal(tu_copy_dir(committed, run), 0);
    tio_init(&t);
    t.real_fsync = 0;
    t.fail_at = k;
    snprintf(t.snap_src, sizeof t.snap_src, "%s", run);
    snprintf(t.snap_dst, sizeof t.snap_dst, "%s", snap);
    t.counting = 1;
    bc_options o;
    bc_options_init(&o);
    o.max_file_size = 4096;
    o.io = &t.io;
    char err[512];
    bc_store *s2 = NULL;
    bc_status st = bc_open(run, &o, &s2, err, sizeof err);
    t.counting = 0;
    char where[96];
    snprintf(where, sizeof where, "recovering a committed merge, fault at step %ld", k);
    if (k == 0) {
      n = t.steps;
      assert_int_equal(st, BC_OK);
    }
    if (st == BC_OK) {
      t.fail_at = 0;
      tu_model_check(s2, &m, where);
      assert_int_equal(bc_close(s2), BC_OK);
    } else if (st != BC_IOERR) {
      fail_msg("%s: bc_open gave %s: %s", where, bc_status_name(st), err);
    }
    assert_int_equal(tio_open_fds(&t), 0);
    tio_free(&t);
    reopen_and_check(run, &m, "recovery", k);
    if (k > 0 && tu_exists(snap)) reopen_and_check(snap, &m, "crash in recovery", k);
  }
  assert_true(n > 10);
  tu_model_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      TU_TEST(test_merge_reclaims),
      TU_TEST(test_merge_twice),
      TU_TEST(test_merge_with_writes),
      TU_TEST(test_merge_empty_and_all_deleted),
      TU_TEST(test_merge_big_values),
      TU_TEST(test_merge_txn_records_become_standalone),
      TU_TEST(test_merge_fsyncs_even_with_sync_off),
      TU_TEST(test_merge_fault_at_every_step),
      TU_TEST(test_merge_fault_sticky),
      TU_TEST(test_merge_read_faults),
      TU_TEST(test_recovery_of_committed_merge_under_faults),
  };
  return cmocka_run_group_tests_name("merge", tests, NULL, NULL);
}
