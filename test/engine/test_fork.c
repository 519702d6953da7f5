/*
** test_fork.c -- a store in a child made by fork() (lock.c, "Processes"),
** and the owners file (owners.c).
**
** A child's copy of its parent's bc_store must never write: its writes fail
** with BC_INVALID, its close flushes, syncs and unlocks nothing, and the
** parent keeps its lock and goes on writing.  Checks inside the child are
** reported through its exit status.
*/
#include "testutil.h"

#include <sys/wait.h>

static bc_store *open_store(const char *dir, int create, int sync) {
  bc_options o;
  bc_options_init(&o);
  o.create = create;
  o.sync = (bc_sync_mode)sync;
  bc_store *s = NULL;
  char err[512];
  assert_int_equal(bc_open(dir, &o, &s, err, sizeof err), BC_OK);
  return s;
}

static void put_n(bc_store *s, const char *prefix, int n) {
  char k[64];
  for (int i = 0; i < n; i++) {
    int kl = snprintf(k, sizeof k, "%s%d", prefix, i);
    assert_int_equal(bc_put(s, k, (size_t)kl, 0, "v", 1), BC_OK);
  }
  assert_int_equal(bc_sync(s), BC_OK);
}

/* Wait for the child; its exit status is the number of failed checks. */
static int child_failures(pid_t pid) {
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

#define CHILD_CHECK(cond)                                              \
  do {                                                                 \
    if (!(cond)) {                                                     \
      fprintf(stderr, "child: check failed: %s (line %d)\n", #cond, __LINE__); \
      bad++;                                                           \
    }                                                                  \
  } while (0)

static void test_child_writes_nothing(void **state) {
  tu_fix *f = *state;
  char dir[PATH_MAX];
  tu_path(dir, "%s/s", f->base);
  for (int sync = BC_SYNC_FULL; sync <= BC_SYNC_OFF; sync++) {
    tu_rmrf(dir);
    bc_store *s = open_store(dir, 1, sync);
    put_n(s, "p", 10);
    /* A standalone write still in the buffer at the fork. */
    assert_int_equal(bc_put(s, "buffered", 8, 0, "b", 1), BC_OK);
    pid_t pid = fork();
    if (pid == 0) {
      int bad = 0;
      bc_info i;
      CHILD_CHECK(bc_lookup(s, "p3", 2, &i) == BC_OK);
      CHILD_CHECK(bc_put(s, "c", 1, 0, "x", 1) == BC_INVALID);
      CHILD_CHECK(strstr(bc_errmsg(s), "fork()") != NULL);
      CHILD_CHECK(bc_delete(s, "p1", 2) == BC_INVALID);
      CHILD_CHECK(bc_sync(s) == BC_INVALID);
      bc_txn *t = NULL;
      CHILD_CHECK(bc_txn_begin(s, &t) == BC_INVALID && t == NULL);
      CHILD_CHECK(bc_merge(s, NULL) == BC_INVALID);
      CHILD_CHECK(bc_owners_write(s, "x", 1) == BC_INVALID);
      /* A new open in the child: the parent's lock holds. */
      bc_options o;
      bc_options_init(&o);
      bc_store *s2 = NULL;
      CHILD_CHECK(bc_open(dir, &o, &s2, NULL, 0) == BC_LOCKED);
      CHILD_CHECK(bc_close(s) == BC_OK);
      /* Closed in the child: still locked by the parent. */
      CHILD_CHECK(bc_open(dir, &o, &s2, NULL, 0) == BC_LOCKED);
      _exit(bad);
    }
    assert_int_equal(child_failures(pid), 0);
    put_n(s, "q", 10);
    assert_int_equal(bc_close(s), BC_OK);
    s = open_store(dir, 0, sync);
    assert_int_equal(bc_count(s), 21);
    bc_stats st;
    bc_stats_get(s, &st);
    assert_int_equal(st.corrupt, 0);
    assert_int_equal(st.truncated_bytes, 0);
    assert_int_equal(bc_lookup(s, "c", 1, NULL), BC_NOTFOUND);
    assert_int_equal(bc_lookup(s, "p1", 2, NULL), BC_OK);
    bc_close(s);
  }
}

/* A transaction open at the fork, carried on in the child: its records
** fill the buffer (1 MiB) and would be flushed, and its commit would write
** a COMMIT; both are refused, and the parent's transaction commits. */
static void test_child_txn_refused(void **state) {
  tu_fix *f = *state;
  char dir[PATH_MAX];
  tu_path(dir, "%s/s", f->base);
  bc_store *s = open_store(dir, 1, BC_SYNC_FULL);
  put_n(s, "p", 5);
  bc_txn *t;
  assert_int_equal(bc_txn_begin(s, &t), BC_OK);
  assert_int_equal(bc_txn_put(t, "t1", 2, 0, "v", 1), BC_OK);
  struct stat before;
  char data[PATH_MAX];
  tu_path(data, "%s/0000000001.data", dir);
  pid_t pid = fork();
  if (pid == 0) {
    int bad = 0;
    static char big[4096];
    bc_status st = BC_OK;
    char k[32];
    for (int i = 0; i < 1000 && st == BC_OK; i++) {
      int kl = snprintf(k, sizeof k, "child%d", i);
      st = bc_txn_put(t, k, (size_t)kl, 0, big, sizeof big);
    }
    CHILD_CHECK(st == BC_INVALID);
    CHILD_CHECK(bc_txn_commit(t) == BC_INVALID);
    CHILD_CHECK(bc_close(s) == BC_OK);
    _exit(bad);
  }
  assert_int_equal(child_failures(pid), 0);
  assert_int_equal(stat(data, &before), 0);
  assert_int_equal(bc_txn_put(t, "t2", 2, 0, "v", 1), BC_OK);
  assert_int_equal(bc_txn_commit(t), BC_OK);
  assert_int_equal(bc_close(s), BC_OK);
  s = open_store(dir, 0, BC_SYNC_FULL);
  assert_int_equal(bc_count(s), 7);
  assert_int_equal(bc_lookup(s, "child0", 6, NULL), BC_NOTFOUND);
  bc_stats st;
  bc_stats_get(s, &st);
  assert_int_equal(st.corrupt, 0);
  assert_int_equal(st.truncated_bytes, 0);
  bc_close(s);
}

/* The parent dies while its child lives: once the child has dropped its
** copy of the LOCK descriptor (bc_fork_child), anyone may take the lock. */
static void test_parent_dies(void **state) {
  tu_fix *f = *state;
  char dir[PATH_MAX];
  tu_path(dir, "%s/s", f->base);
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t mid = fork();
  if (mid == 0) {
    bc_store *s = open_store(dir, 1, BC_SYNC_FULL);
    put_n(s, "p", 3);
    pid_t kid = fork();
    if (kid == 0) {
      bc_fork_child(s);
      pid_t pp = getppid();
      for (int i = 0; i < 5000 && getppid() == pp; i++) usleep(1000);
      bc_options o;
      bc_options_init(&o);
      bc_store *s2 = NULL;
      char c = bc_open(dir, &o, &s2, NULL, 0) == BC_OK ? 'y' : 'n';
      if (s2) {
        if (bc_put(s2, "kid", 3, 0, "k", 1) != BC_OK || bc_close(s2) != BC_OK) c = 'n';
      }
      if (write(p[1], &c, 1) != 1) _exit(2);
      _exit(0);
    }
    _exit(0); /* holding the store: the kernel closes its descriptors */
  }
  close(p[1]);
  assert_int_equal(child_failures(mid), 0);
  char c = 0;
  assert_int_equal(read(p[0], &c, 1), 1);
  close(p[0]);
  assert_int_equal(c, 'y');
  bc_store *s = open_store(dir, 0, BC_SYNC_FULL);
  assert_int_equal(bc_count(s), 4);
  bc_close(s);
}

/* The active file's hint spills to <id>.hint.tmp as records are appended
** (active.c); a child's close of the inherited store must leave that file,
** which the parent goes on writing, where it is: the parent's rotation then
** installs a valid hint (a removed one would be rebuilt by a scan, and the
** rename of the parent's spilled file would fail). */
static void test_child_keeps_spilled_hint(void **state) {
  tu_fix *f = *state;
  char dir[PATH_MAX], tmp[PATH_MAX];
  tu_path(dir, "%s/s", f->base);
  tu_path(tmp, "%s/s/0000000001.hint.tmp", f->base);
  bc_store *s = open_store(dir, 1, BC_SYNC_FULL);
  put_n(s, "spill-key-", 20000); /* about 1 MiB of hint entries */
  assert_true(tu_exists(tmp));
  pid_t pid = fork();
  if (pid == 0) {
    int bad = 0;
    CHILD_CHECK(bc_close(s) == BC_OK);
    _exit(bad);
  }
  assert_int_equal(child_failures(pid), 0);
  assert_true(tu_exists(tmp));
  put_n(s, "after-", 10);
  assert_int_equal(bc_merge(s, NULL), BC_OK); /* seals file 1: its hint */
  assert_int_equal(bc_close(s), BC_OK);
  s = open_store(dir, 0, BC_SYNC_FULL);
  assert_int_equal(bc_count(s), 20010);
  bc_stats st;
  bc_stats_get(s, &st);
  assert_int_equal(st.corrupt, 0);
  bc_close(s);
}

static void test_owners_file(void **state) {
  tu_fix *f = *state;
  char dir[PATH_MAX], owners[PATH_MAX];
  tu_path(dir, "%s/s", f->base);
  tu_path(owners, "%s/s/OWNERS", f->base);
  bc_store *s = open_store(dir, 1, BC_SYNC_FULL);
  char *text;
  size_t len;
  assert_int_equal(bc_owners_read(s, &text, &len), BC_OK);
  assert_null(text);
  assert_int_equal(bc_owners_write(s, "one\n", 4), BC_OK);
  assert_int_equal(bc_owners_write(s, "two lines\nhere\n", 15), BC_OK);
  assert_int_equal(bc_owners_read(s, &text, &len), BC_OK);
  assert_int_equal(len, 15);
  assert_string_equal(text, "two lines\nhere\n");
  free(text);
  /* A reader without the lock reads it too, and cannot write it. */
  bc_options o;
  bc_options_init(&o);
  o.read_only = 1;
  bc_store *r = NULL;
  assert_int_equal(bc_open(dir, &o, &r, NULL, 0), BC_OK);
  assert_int_equal(bc_owners_read(r, &text, &len), BC_OK);
  assert_int_equal(len, 15);
  free(text);
  assert_int_equal(bc_owners_write(r, "x", 1), BC_READONLY);
  bc_close(r);
  /* The engine's own name: the store reopens, and bc_destroy removes the
  ** file and then the directory it created. */
  assert_int_equal(bc_close(s), BC_OK);
  s = open_store(dir, 0, BC_SYNC_FULL);
  assert_int_equal(bc_close(s), BC_OK);
  char err[256];
  assert_int_equal(bc_destroy(dir, err, sizeof err), BC_OK);
  struct stat sb;
  assert_int_not_equal(stat(dir, &sb), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      TU_TEST(test_child_writes_nothing),
      TU_TEST(test_child_txn_refused),
      TU_TEST(test_parent_dies),
      TU_TEST(test_child_keeps_spilled_hint),
      TU_TEST(test_owners_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
