/*
** test_fdcache.c -- file descriptors are bounded (issue 12, part 5): a store
** of many data files opens, serves every read, takes writes, merges and
** follows a writer under a low RLIMIT_NOFILE, with POSIX I/O (mapped reads)
** and with a custom bc_io (pread through the descriptor cache), as a writer
** and read-only; an EMFILE says so plainly; the limit is an option and the
** descriptors in use show in bc_stats.
**
** Each scenario runs in a forked child that lowers its own RLIMIT_NOFILE, so
** the rest of the test process keeps its limit.  The child cannot use
** cmocka's assertions (a failure would longjmp into the child's copy of the
** runner): it checks with CK, prints the failure and exits 1, and the
** parent asserts a clean exit.
*/
#include "testutil.h"

#include <sys/resource.h>
#include <sys/wait.h>

/* One record fills one data file at the smallest max_file_size: every put
** of a VLEN-byte value rotates. */
#define VLEN 4030u
#define NOFILE 64

/* Data files of the POSIX scenario, in both builds (in memory, see
** shm_setup).  The custom bc_io scenarios take fewer: far above the limit
** is enough for the pread path. */
#define NFILES_POSIX 10000u
#define NFILES_IO 2000u

#define CK(cond, ...)                                                         \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                           \
      fputc('\n', stderr);                                                    \
      _exit(1);                                                               \
    }                                                                         \
  } while (0)

/* Run fn(arg) in a child whose soft RLIMIT_NOFILE is nofile; assert that it
** exits 0. */
static void in_child(rlim_t nofile, void (*fn)(void *), void *arg) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(2);
    rl.rlim_cur = nofile;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(2);
    fn(arg);
    _exit(0);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("the child failed (status 0x%x): see its message above", status);
}

/* Descriptors open in this process (/proc/self/fd, less opendir's own). */
static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) n += de->d_name[0] != '.';
  closedir(d);
  return n - 1;
}

/* ------------------------------------------------------------ scenario */

typedef struct scen {
  char dir[PATH_MAX];
  const bc_io *io;      /* NULL: POSIX */
  tio *t;               /* io's tio, or NULL */
  size_t nkeys;         /* keys 0..nkeys-1 may exist */
  unsigned *ver;        /* value version of each key, 0 = absent */
  uint32_t max_open;    /* bc_options.max_open_files (0: default) */
} scen;

static bc_store *sc_open(scen *sc, int read_only) {
  bc_options o;
  bc_options_init(&o);
  o.create = !read_only;
  o.read_only = read_only;
  o.max_file_size = BC_MIN_MAX_FILE_SIZE;
  o.sync = BC_SYNC_OFF;
  o.io = sc->io;
  o.max_open_files = sc->max_open;
  bc_store *s = NULL;
  char err[512] = "";
  bc_status st = bc_open(sc->dir, &o, &s, err, sizeof err);
  CK(st == BC_OK, "bc_open(%s, read_only %d): %s: %s", sc->dir, read_only,
     bc_status_name(st), err);
  return s;
}

static void sc_put(scen *sc, bc_store *s, size_t i, unsigned ver) {
  static unsigned char v[VLEN];
  char k[32];
  size_t kl = tu_key(k, i);
  tu_fill(v, VLEN, i, ver);
  bc_status st = bc_put(s, k, kl, (uint8_t)ver, v, VLEN);
  CK(st == BC_OK, "put %zu: %s: %s", i, bc_status_name(st), bc_errmsg(s));
  sc->ver[i] = ver;
}

static void sc_del(scen *sc, bc_store *s, size_t i) {
  char k[32];
  size_t kl = tu_key(k, i);
  bc_status st = bc_delete(s, k, kl);
  CK(st == BC_OK, "delete %zu: %s: %s", i, bc_status_name(st), bc_errmsg(s));
  sc->ver[i] = 0;
}

/* Every key reads back as the model says. */
static void sc_check(scen *sc, bc_store *s, const char *where) {
  static unsigned char want[VLEN];
  bc_buf b = {0};
  uint64_t live = 0;
  for (size_t i = 0; i < sc->nkeys; i++) {
    char k[32];
    size_t kl = tu_key(k, i);
    const void *v;
    bc_info info;
    bc_status st = bc_get(s, k, kl, &b, &v, &info);
    if (!sc->ver[i]) {
      CK(st == BC_NOTFOUND, "%s: key %zu: %s, want BC_NOTFOUND", where, i,
         bc_status_name(st));
      continue;
    }
    live++;
    CK(st == BC_OK, "%s: key %zu: %s: %s", where, i, bc_status_name(st),
       bc_errmsg(s));
    tu_fill(want, VLEN, i, sc->ver[i]);
    CK(info.value_size == VLEN && memcmp(v, want, VLEN) == 0 &&
           info.meta == (uint8_t)sc->ver[i],
       "%s: key %zu: wrong value", where, i);
  }
  bc_buf_free(&b);
  CK(bc_count(s) == live, "%s: count %llu, want %llu", where,
     (unsigned long long)bc_count(s), (unsigned long long)live);
}

/* The store's descriptors stay within its limit (plus the active file's),
** and so do the process's; nstores stores share the bc_io. */
static void sc_check_fds(scen *sc, bc_store *s, int nstores, const char *where) {
  bc_stats st;
  CK(bc_stats_get(s, &st) == BC_OK, "stats");
  CK(st.max_open_files >= 1, "%s: max_open_files %llu", where,
     (unsigned long long)st.max_open_files);
  CK(st.open_files <= st.max_open_files + (st.read_only ? 0 : 1),
     "%s: %llu data-file descriptors open, limit %llu", where,
     (unsigned long long)st.open_files, (unsigned long long)st.max_open_files);
  if (sc->t)
    CK(tio_open_fds(sc->t) <= nstores * ((int)st.max_open_files + 2),
       "%s: the bc_io sees %d descriptors open (limit %llu)", where,
       tio_open_fds(sc->t), (unsigned long long)st.max_open_files);
  CK(open_fds() < NOFILE, "%s: %d descriptors open", where, open_fds());
}

static void scenario(void *arg) {
  scen *sc = arg;
  size_t n = sc->nkeys;
  /* Writes: one data file per key. */
  bc_store *s = sc_open(sc, 0);
  for (size_t i = 0; i < n; i++) sc_put(sc, s, i, 1);
  bc_stats st;
  CK(bc_stats_get(s, &st) == BC_OK, "stats");
  CK(st.data_files >= n, "%llu data files, want %zu at least",
     (unsigned long long)st.data_files, n);
  /* The default, and the most an explicit value gets: a quarter of the
  ** soft limit. */
  uint32_t want = sc->max_open && sc->max_open < NOFILE / 4 ? sc->max_open : NOFILE / 4;
  CK(st.max_open_files == want, "max_open_files %llu (option %u), want %u",
     (unsigned long long)st.max_open_files, sc->max_open, want);
  sc_check(sc, s, "after the writes");
  sc_check_fds(sc, s, 1, "after the writes");
  CK(bc_close(s) == BC_OK, "close");

  /* Reopen: every header and hint is read; every key, overwrite some,
  ** delete most, merge (more outputs than the limit), read again. */
  s = sc_open(sc, 0);
  sc_check_fds(sc, s, 1, "after the open");
  sc_check(sc, s, "after the reopen");
  sc_check_fds(sc, s, 1, "after reading every key");
  for (size_t i = 0; i < 100; i++) sc_put(sc, s, i, 2);
  for (size_t i = 100; i + 150 < n; i++) sc_del(sc, s, i);
  uint64_t reclaimed = 0;
  bc_status rc = bc_merge(s, &reclaimed);
  CK(rc == BC_OK, "merge: %s: %s", bc_status_name(rc), bc_errmsg(s));
  CK(reclaimed > 0, "the merge reclaimed nothing");
  sc_check_fds(sc, s, 1, "after the merge");
  sc_check(sc, s, "after the merge");
  for (size_t i = 0; i < 20; i++) sc_put(sc, s, i, 3);
  sc_check(sc, s, "after writes past the merge");
  CK(bc_close(s) == BC_OK, "close");

  /* Read-only. */
  bc_store *r = sc_open(sc, 1);
  sc_check(sc, r, "read-only");
  sc_check_fds(sc, r, 1, "read-only");
  CK(bc_close(r) == BC_OK, "close");

  /* A follower next to a writer: rotations, then a merge. */
  s = sc_open(sc, 0);
  r = sc_open(sc, 1);
  for (size_t i = 0; i < 100; i++) sc_put(sc, s, 100 + i, 4);
  CK(bc_sync(s) == BC_OK, "sync");
  rc = bc_refresh(r);
  CK(rc == BC_OK, "refresh: %s: %s", bc_status_name(rc), bc_errmsg(r));
  sc_check(sc, r, "follower after rotations");
  sc_check_fds(sc, r, 2, "follower after rotations");
  rc = bc_merge(s, NULL);
  CK(rc == BC_OK, "merge: %s: %s", bc_status_name(rc), bc_errmsg(s));
  rc = bc_refresh(r);
  CK(rc == BC_OK, "refresh: %s: %s", bc_status_name(rc), bc_errmsg(r));
  sc_check(sc, r, "follower after a merge");
  sc_check(sc, s, "writer after a merge");
  sc_check_fds(sc, s, 2, "writer next to a follower");
  CK(bc_close(r) == BC_OK, "close");
  CK(bc_close(s) == BC_OK, "close");
}

static void run_scenario(tu_fix *fx, int custom_io, uint32_t max_open, size_t nkeys) {
  scen sc;
  memset(&sc, 0, sizeof sc);
  tu_path(sc.dir, "%s/s", fx->base);
  sc.nkeys = nkeys ? nkeys : custom_io ? NFILES_IO : NFILES_POSIX;
  sc.ver = calloc(sc.nkeys, sizeof *sc.ver);
  assert_non_null(sc.ver);
  sc.max_open = max_open;
  tio t;
  if (custom_io) {
    tio_init(&t);
    t.real_fsync = 0;
    sc.io = &t.io;
    sc.t = &t;
  }
  in_child(NOFILE, scenario, &sc);
  if (custom_io) tio_free(&t);
  free(sc.ver);
}

static void test_many_files_posix(void **state) { run_scenario(*state, 0, 0, 0); }
static void test_many_files_custom_io(void **state) { run_scenario(*state, 1, 0, 0); }
static void test_many_files_custom_io_small_cache(void **state) {
  run_scenario(*state, 1, 3, 0);
}

/* max_open_files above what the process can hold (a store set up for 1000
** opened under a lower `ulimit -n`): the limit in effect is a quarter of
** the soft RLIMIT_NOFILE, as the default's, so the cache never takes the
** descriptors the rest of the store needs (OWNERS, hint files, the
** directory to fsync).  Before, the cache grew toward 1000 and the open,
** or a read, failed with EMFILE.  POSIX I/O (a read-only store reads with
** pread) and a custom bc_io (every read through the cache). */
static void test_option_above_rlimit_posix(void **state) {
  run_scenario(*state, 0, 1000, 400);
}
static void test_option_above_rlimit_custom_io(void **state) {
  run_scenario(*state, 1, 1000, 400);
}

/* ------------------------------------------------------- EMFILE message */

typedef struct emf {
  char dir[PATH_MAX];
} emf;

/* Fill the descriptor table with duplicates of 0; returns how many were
** taken (their numbers in fds). */
static int fill_fds(int fds[NOFILE]) {
  int n = 0, fd;
  while (n < NOFILE && (fd = dup(0)) >= 0) fds[n++] = fd;
  return n;
}

static void check_emfile_message(const char *msg, const char *dir, const char *where) {
  char limit[64];
  snprintf(limit, sizeof limit, "the process's limit is %d", NOFILE);
  CK(strstr(msg, "too many open files") != NULL, "%s: message '%s'", where, msg);
  CK(strstr(msg, limit) != NULL, "%s: message '%s'", where, msg);
  CK(strstr(msg, "ulimit -n") != NULL, "%s: message '%s'", where, msg);
  CK(strstr(msg, "max_open_files") != NULL, "%s: message '%s'", where, msg);
  CK(strstr(msg, dir) != NULL, "%s: message '%s' does not name the store", where, msg);
}

static void emfile_child(void *arg) {
  emf *e = arg;
  bc_options o;
  bc_options_init(&o);
  o.create = 1;
  o.max_file_size = BC_MIN_MAX_FILE_SIZE;
  bc_store *s = NULL;
  char err[640] = "";
  CK(bc_open(e->dir, &o, &s, err, sizeof err) == BC_OK, "open: %s", err);
  static unsigned char v[VLEN];
  for (int i = 0; i < 40; i++) CK(bc_put(s, &i, sizeof i, 0, v, VLEN) == BC_OK, "put");
  CK(bc_sync(s) == BC_OK, "sync");

  /* A rotation with no descriptor left. */
  int dups[NOFILE], ndups = fill_fds(dups);
  CK(ndups > 0 && dup(0) < 0 && errno == EMFILE, "could not fill the descriptor table");
  int k = 1000;
  bc_status st = bc_put(s, &k, sizeof k, 0, v, VLEN);
  if (st == BC_OK) st = bc_put(s, &k, sizeof k, 0, v, VLEN);
  CK(st == BC_IOERR, "put with no descriptor left: %s", bc_status_name(st));
  check_emfile_message(bc_errmsg(s), e->dir, "rotation");

  /* An open with no descriptor left. */
  bc_store *r = NULL;
  o.create = 0;
  o.read_only = 1;
  st = bc_open(e->dir, &o, &r, err, sizeof err);
  CK(st == BC_IOERR && r == NULL, "read-only open with no descriptor left: %s",
     bc_status_name(st));
  check_emfile_message(err, e->dir, "open");

  /* Descriptors back: the store goes on. */
  for (int i = 0; i < ndups; i++) close(dups[i]);
  CK(bc_put(s, &k, sizeof k, 0, v, VLEN) == BC_OK, "put: %s", bc_errmsg(s));
  CK(bc_sync(s) == BC_OK, "sync");
  bc_buf b = {0};
  const void *val;
  bc_info info;
  for (int i = 0; i < 40; i++)
    CK(bc_get(s, &i, sizeof i, &b, &val, &info) == BC_OK, "get %d", i);
  bc_buf_free(&b);
  CK(bc_close(s) == BC_OK, "close");
}

static void test_emfile_message(void **state) {
  tu_fix *fx = *state;
  emf e;
  tu_path(e.dir, "%s/s", fx->base);
  in_child(NOFILE, emfile_child, &e);
}

/* --------------------------------------------------- option and stats */

static void test_option_and_stats(void **state) {
  tu_fix *fx = *state;
  char dir[PATH_MAX];
  tu_path(dir, "%s/s", fx->base);
  bc_options o;
  bc_options_init(&o);
  assert_int_equal(o.max_open_files, 0);
  o.create = 1;
  o.max_file_size = BC_MIN_MAX_FILE_SIZE;
  o.sync = BC_SYNC_OFF;
  o.max_open_files = BC_MAX_OPEN_FILES_LIMIT + 1;
  bc_store *s = NULL;
  char err[512] = "";
  assert_int_equal(bc_open(dir, &o, &s, err, sizeof err), BC_INVALID);
  assert_null(s);
  assert_non_null(strstr(err, "max_open_files"));
  assert_non_null(strstr(err, dir));

  /* pread through the cache (a custom bc_io): 30 files read, 5 kept open. */
  tio t;
  tio_init(&t);
  t.real_fsync = 0;
  o.io = &t.io;
  o.max_open_files = 5;
  s = tu_open_opts(dir, &o);
  static unsigned char v[VLEN];
  for (int i = 0; i < 30; i++) TU_OK(bc_put(s, &i, sizeof i, 0, v, VLEN));
  TU_OK(bc_close(s));
  s = tu_open_opts(dir, &o);
  bc_stats st = tu_stats(s);
  assert_int_equal(st.max_open_files, 5);
  assert_true(st.open_files <= 6);
  bc_buf b = {0};
  const void *val;
  bc_info info;
  for (int i = 0; i < 30; i++) TU_OK(bc_get(s, &i, sizeof i, &b, &val, &info));
  st = tu_stats(s);
  assert_int_equal(st.open_files, 6); /* the active file + 5 cached */
  assert_int_equal(tio_open_fds(&t), 7); /* + LOCK */
  TU_OK(bc_close(s));
  assert_int_equal(tio_open_fds(&t), 0);
  tio_free(&t);

  /* POSIX I/O: a mapped file needs no descriptor. */
  o.io = NULL;
  s = tu_open_opts(dir, &o);
  for (int i = 0; i < 30; i++) TU_OK(bc_get(s, &i, sizeof i, &b, &val, &info));
  st = tu_stats(s);
  assert_int_equal(st.open_files, 1);
  TU_OK(bc_close(s));

  /* The default follows the soft limit: a quarter, at most 1000. */
  o.max_open_files = 0;
  s = tu_open_opts(dir, &o);
  st = tu_stats(s);
  struct rlimit rl;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
  uint64_t want = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur / 4 > 1000
                      ? 1000 : rl.rlim_cur / 4 ? rl.rlim_cur / 4 : 1;
  assert_int_equal(st.max_open_files, want);
  TU_OK(bc_close(s));
  /* A value given is kept up to that quarter (past the default's cap),
  ** and lowered to it above. */
  uint64_t quarter = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX
                     : rl.rlim_cur / 4 ? rl.rlim_cur / 4 : 1;
  o.max_open_files = 1200;
  s = tu_open_opts(dir, &o);
  assert_int_equal(tu_stats(s).max_open_files, quarter < 1200 ? quarter : 1200);
  TU_OK(bc_close(s));
  bc_buf_free(&b);
}


/* A reader with more files than its cache, and a writer that merges them
** away between two refreshes: a read that must reopen a file gets
** BC_IOERR saying so (its descriptor was closed; the file is gone), and
** after bc_refresh every key reads. */
static void test_reader_after_merge_under_it(void **state) {
  tu_fix *fx = *state;
  char dir[PATH_MAX];
  tu_path(dir, "%s/s", fx->base);
  bc_options o;
  bc_options_init(&o);
  o.create = 1;
  o.max_file_size = BC_MIN_MAX_FILE_SIZE;
  o.sync = BC_SYNC_OFF;
  bc_store *w = tu_open_opts(dir, &o);
  static unsigned char v[VLEN];
  for (int i = 0; i < 20; i++) {
    tu_fill(v, VLEN, (size_t)i, 1);
    TU_OK(bc_put(w, &i, sizeof i, 0, v, VLEN));
  }
  TU_OK(bc_sync(w));
  o.create = 0;
  o.read_only = 1;
  o.max_open_files = 2;
  bc_store *r = tu_open_opts(dir, &o);
  assert_true(tu_stats(r).open_files <= 2);
  TU_OK(bc_merge(w, NULL));
  bc_buf b = {0};
  const void *val;
  bc_info info;
  int failed = 0;
  for (int i = 0; i < 20; i++) {
    bc_status st = bc_get(r, &i, sizeof i, &b, &val, &info);
    if (st == BC_OK) {
      tu_fill(v, VLEN, (size_t)i, 1);
      assert_memory_equal(val, v, VLEN);
      continue;
    }
    assert_int_equal(st, BC_IOERR);
    assert_non_null(strstr(bc_errmsg(r), "the writer removed it (a merge)"));
    failed++;
  }
  assert_true(failed >= 18); /* all but the two files still open */
  TU_OK(bc_refresh(r));
  for (int i = 0; i < 20; i++) {
    TU_OK(bc_get(r, &i, sizeof i, &b, &val, &info));
    tu_fill(v, VLEN, (size_t)i, 1);
    assert_memory_equal(val, v, VLEN);
  }
  bc_buf_free(&b);
  TU_OK(bc_close(r));
  TU_OK(bc_close(w));
}

/* A reader of a merge committed but not installed reads its outputs under
** their .data.merging names; when the writer's next open renames them, a
** reader that closed one (max_open_files 1) finds it again under .data. */
static void test_reader_of_renamed_merge_outputs(void **state) {
  tu_fix *fx = *state;
  char dir[PATH_MAX], p[PATH_MAX];
  tu_path(dir, "%s/s", fx->base);
  tio t;
  tio_init(&t);
  t.real_fsync = 0;
  bc_options o;
  bc_options_init(&o);
  o.create = 1;
  o.max_file_size = BC_MIN_MAX_FILE_SIZE;
  o.sync = BC_SYNC_OFF;
  o.io = &t.io;
  bc_store *w = tu_open_opts(dir, &o);
  static unsigned char v[VLEN];
  for (int i = 0; i < 30; i++) {
    tu_fill(v, VLEN, (size_t)i, 1);
    TU_OK(bc_put(w, &i, sizeof i, 0, v, VLEN));
  }
  TU_OK(bc_close(w));
  w = tu_open_opts(dir, &o);
  /* Every rename after MERGE's (step 4 on) fails: the merge is committed,
  ** its outputs keep their .data.merging names.  The renames before: the
  ** hint of the active file, which the merge seals first, and MERGE. */
  t.mask = TIO_RENAME;
  t.counting = 1;
  t.fail_at = 3;
  t.sticky = 1;
  assert_int_equal(bc_merge(w, NULL), BC_IOERR);
  t.counting = 0;
  t.fail_at = 0;
  bc_close(w);
  tu_path(p, "%s/MERGE", dir);
  assert_true(tu_exists(p));
  assert_true(tu_count_files(dir, ".data.merging") >= 20);

  bc_options ro = o;
  ro.create = 0;
  ro.read_only = 1;
  ro.max_open_files = 1;
  bc_store *r = tu_open_opts(dir, &ro);
  bc_buf b = {0};
  const void *val;
  bc_info info;
  for (int i = 0; i < 30; i++) {
    TU_OK(bc_get(r, &i, sizeof i, &b, &val, &info));
    tu_fill(v, VLEN, (size_t)i, 1);
    assert_memory_equal(val, v, VLEN);
  }
  /* The writer's open finishes the merge: outputs renamed, inputs gone. */
  w = tu_open_opts(dir, &o);
  assert_int_equal(tu_count_files(dir, ".data.merging"), 0);
  assert_false(tu_exists(p));
  for (int i = 29; i >= 0; i--) {
    bc_status st = bc_get(r, &i, sizeof i, &b, &val, &info);
    if (st != BC_OK) fail_msg("key %d: %s: %s", i, bc_status_name(st), bc_errmsg(r));
    tu_fill(v, VLEN, (size_t)i, 1);
    assert_memory_equal(val, v, VLEN);
  }
  TU_OK(bc_refresh(r));
  for (int i = 0; i < 30; i++) TU_OK(bc_get(r, &i, sizeof i, &b, &val, &info));
  bc_buf_free(&b);
  TU_OK(bc_close(r));
  TU_OK(bc_close(w));
  tio_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      TU_TEST(test_option_and_stats),
      TU_TEST(test_emfile_message),
      TU_TEST(test_reader_after_merge_under_it),
      TU_TEST(test_reader_of_renamed_merge_outputs),
      TU_TEST_SHM(test_many_files_posix),
      TU_TEST_SHM(test_many_files_custom_io),
      TU_TEST_SHM(test_many_files_custom_io_small_cache),
      TU_TEST_SHM(test_option_above_rlimit_posix),
      TU_TEST_SHM(test_option_above_rlimit_custom_io),
  };
  return cmocka_run_group_tests_name("fdcache", tests, NULL, NULL);
}
