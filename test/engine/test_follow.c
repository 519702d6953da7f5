/*
** test_follow.c -- a read-only store following a writer (bc_refresh; issue
** 4 "Processes"): after each refresh the reader sees exactly what the
** writer committed -- across appends, transactions, rotations, merges and an
** abort after prepare -- and never an uncommitted write.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bitcask.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NKEYS 200

typedef struct fx {
  char base[64], dir[80];
} fx;

static int rm_entry(const char *p, const struct stat *sb, int fl, struct FTW *f) {
  (void)sb;
  (void)fl;
  (void)f;
  return remove(p);
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  snprintf(f->base, sizeof f->base, "/tmp/bc-follow-XXXXXX");
  if (!mkdtemp(f->base)) return -1;
  snprintf(f->dir, sizeof f->dir, "%s/s", f->base);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  nftw(f->base, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static bc_store *open_as(const char *dir, int read_only, uint64_t mfs) {
  bc_options o;
  bc_options_init(&o);
  o.create = !read_only;
  o.read_only = read_only;
  o.max_file_size = mfs;
  o.sync = BC_SYNC_OFF;
  bc_store *s = NULL;
  char err[512];
  bc_status st = bc_open(dir, &o, &s, err, sizeof err);
  if (st != BC_OK) fprintf(stderr, "open: %s\n", err);
  assert_int_equal(st, BC_OK);
  return s;
}

/* The model: value version of each key, 0 = absent. */
static unsigned model[NKEYS];

static void key_of(unsigned k, char *out) { sprintf(out, "key-%03u", k); }

static void value_of(unsigned k, unsigned ver, char *out, size_t *len) {
  *len = (size_t)sprintf(out, "value-%u-%u-", k, ver);
  memset(out + *len, 'x', ver % 300);
  *len += ver % 300;
}

/* Every key of the reader equals the model; count too. */
static void check(bc_store *r, const char *when) {
  assert_int_equal(bc_refresh(r), BC_OK);
  bc_buf b = {0};
  uint64_t live = 0;
  for (unsigned k = 0; k < NKEYS; k++) {
    char key[16], want[400];
    size_t wl;
    key_of(k, key);
    const void *v;
    bc_info i;
    bc_status st = bc_get(r, key, strlen(key), &b, &v, &i);
    if (!model[k]) {
      if (st != BC_NOTFOUND) fail_msg("%s: %s present (%s)", when, key, bc_status_name(st));
      continue;
    }
    live++;
    value_of(k, model[k], want, &wl);
    if (st != BC_OK || i.value_size != wl || memcmp(v, want, wl) != 0)
      fail_msg("%s: %s wrong (%s)", when, key, bc_status_name(st));
  }
  if (bc_count(r) != live)
    fail_msg("%s: count %llu, want %llu", when, (unsigned long long)bc_count(r),
             (unsigned long long)live);
  bc_buf_free(&b);
}

static void put(bc_txn *t, unsigned k, unsigned ver) {
  char key[16], val[400];
  size_t vl;
  key_of(k, key);
  value_of(k, ver, val, &vl);
  assert_int_equal(bc_txn_put(t, key, strlen(key), 0, val, vl), BC_OK);
}

static void del(bc_txn *t, unsigned k) {
  char key[16];
  key_of(k, key);
  bc_status st = bc_txn_delete(t, key, strlen(key));
  assert_true(st == BC_OK || st == BC_NOTFOUND);
}

static void test_follow_writer(void **state) {
  fx *f = *state;
  memset(model, 0, sizeof model);
  bc_store *w = open_as(f->dir, 0, 4096);
  bc_store *r = open_as(f->dir, 1, 0);
  check(r, "empty");
  unsigned ver = 1;
  srand(7);
  for (int round = 0; round < 60; round++) {
    unsigned pending[NKEYS];
    memcpy(pending, model, sizeof model);
    bc_txn *t;
    assert_int_equal(bc_txn_begin(w, &t), BC_OK);
    int n = 1 + rand() % 20;
    for (int i = 0; i < n; i++) {
      unsigned k = (unsigned)rand() % NKEYS;
      if (rand() % 4 == 0) {
        del(t, k);
        pending[k] = 0;
      } else {
        put(t, k, ver);
        pending[k] = ver++;
      }
    }
    /* Uncommitted: the reader must not see it, even after the writer flushed
    ** its records (prepare writes them; here a big value forces a flush). */
    check(r, "before commit");
    int outcome = rand() % 4;
    if (outcome == 0) {
      assert_int_equal(bc_txn_rollback(t), BC_OK);
    } else if (outcome == 1) {
      /* Prepared (COMMIT durable), read by the reader, then aborted. */
      assert_int_equal(bc_txn_prepare(t), BC_OK);
      assert_int_equal(bc_refresh(r), BC_OK);
      assert_int_equal(bc_txn_rollback(t), BC_OK);
    } else {
      assert_int_equal(bc_txn_commit(t), BC_OK);
      memcpy(model, pending, sizeof model);
    }
    check(r, outcome == 1 ? "after an abort" : "after commit or rollback");
    if (round % 10 == 9) {
      assert_int_equal(bc_merge(w, NULL), BC_OK);
      check(r, "after a merge");
    }
    if (round % 25 == 24) {
      /* The writer goes away and comes back (recovery, maybe a new file). */
      assert_int_equal(bc_close(w), BC_OK);
      w = open_as(f->dir, 0, 4096);
      check(r, "after the writer reopened");
    }
  }
  bc_stats st;
  bc_stats_get(w, &st);
  assert_true(st.data_files > 3); /* rotations happened */
  /* Standalone writes too. */
  char key[16];
  key_of(3, key);
  assert_int_equal(bc_put(w, key, strlen(key), 0, "z", 1), BC_OK);
  assert_int_equal(bc_sync(w), BC_OK);
  assert_int_equal(bc_refresh(r), BC_OK);
  bc_buf b = {0};
  const void *v;
  bc_info i;
  assert_int_equal(bc_get(r, key, strlen(key), &b, &v, &i), BC_OK);
  assert_int_equal(i.value_size, 1);
  bc_buf_free(&b);
  /* A reader writes nothing. */
  assert_int_equal(bc_put(r, key, strlen(key), 0, "y", 1), BC_READONLY);
  bc_close(r);
  bc_close(w);
}

/* ---- a reader opening a data file while the writer creates it ----
** The writer creates a file and then writes its header and records.  A
** reader that took the file's size before reading its header could see
** size 0 and a valid header: it then read the header's bytes as a record
** at offset 0 when the file grew (a key of garbage that read BC_CORRUPT).
** The io below plays the writer: the newest data file is empty when the
** reader opens it, and its bytes arrive while the reader reads the header. */
typedef struct race_io {
  bc_io io;
  char path[256];            /* the file to fill */
  unsigned char *bytes;      /* what the writer writes into it */
  size_t n;
  int fd;                    /* the reader's descriptor of it, or -1 */
  int filled;
} race_io;

static int rio_open(void *ctx, const char *path, int flags, mode_t mode) {
  race_io *r = ctx;
  int fd = open(path, flags, mode);
  if (fd >= 0 && strcmp(path, r->path) == 0) r->fd = fd;
  return fd;
}
static ssize_t rio_pread(void *ctx, int fd, void *buf, size_t n, off_t off) {
  race_io *r = ctx;
  if (fd == r->fd && !r->filled && off == 0) {
    int w = open(r->path, O_WRONLY);
    assert_true(w >= 0);
    assert_int_equal(pwrite(w, r->bytes, r->n, 0), (ssize_t)r->n);
    close(w);
    r->filled = 1;
  }
  return pread(fd, buf, n, off);
}
static ssize_t rio_pwrite(void *c, int fd, const void *b, size_t n, off_t o) {
  (void)c;
  return pwrite(fd, b, n, o);
}
static int rio_fsync(void *c, int fd) { (void)c; return fsync(fd); }
static int rio_ftruncate(void *c, int fd, off_t l) { (void)c; return ftruncate(fd, l); }
static int rio_rename(void *c, const char *a, const char *b) { (void)c; return rename(a, b); }
static int rio_unlink(void *c, const char *p) { (void)c; return unlink(p); }
static int rio_close(void *c, int fd) { (void)c; return close(fd); }

static void test_file_created_under_reader(void **state) {
  fx *f = *state;
  memset(model, 0, sizeof model);
  bc_store *w = open_as(f->dir, 0, 4096);
  /* Files 1 and 2 sealed, 3 active with records. */
  unsigned ver = 1;
  for (unsigned k = 0; k < NKEYS && bc_count(w) < NKEYS; k++) {
    bc_txn *t;
    assert_int_equal(bc_txn_begin(w, &t), BC_OK);
    put(t, k, ver);
    model[k] = ver++;
    assert_int_equal(bc_txn_commit(t), BC_OK);
    bc_stats st;
    assert_int_equal(bc_stats_get(w, &st), BC_OK);
    if (st.active_file_id == 3 && st.keys % 8 == 0 && st.keys > 60) break;
  }
  assert_int_equal(bc_close(w), BC_OK);
  /* File 3 as the writer is about to create it: empty, its bytes kept. */
  race_io *r = calloc(1, sizeof *r);
  assert_non_null(r);
  r->io = (bc_io){r, rio_open, rio_pread, rio_pwrite, rio_fsync, rio_ftruncate,
                  rio_rename, rio_unlink, rio_close};
  r->fd = -1;
  snprintf(r->path, sizeof r->path, "%s/0000000003.data", f->dir);
  FILE *fp = fopen(r->path, "rb");
  assert_non_null(fp);
  r->bytes = malloc(1 << 16);
  r->n = fread(r->bytes, 1, 1 << 16, fp);
  fclose(fp);
  assert_true(r->n > 64);
  assert_int_equal(truncate(r->path, 0), 0);
  bc_options o;
  bc_options_init(&o);
  o.read_only = 1;
  o.io = &r->io;
  bc_store *rd = NULL;
  char err[512];
  assert_int_equal(bc_open(f->dir, &o, &rd, err, sizeof err), BC_OK);
  assert_true(r->filled);
  check(rd, "after the file was filled under the reader"); /* refreshes */
  bc_stats st;
  assert_int_equal(bc_stats_get(rd, &st), BC_OK);
  assert_int_equal(st.corrupt, 0);
  assert_int_equal(bc_close(rd), BC_OK);
  free(r->bytes);
  free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_follow_writer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_created_under_reader, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
