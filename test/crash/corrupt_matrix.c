/*
** corrupt_matrix.c -- damage to a closed store never gives a silently wrong
** answer (docs/FORMAT.md "Recovery", "Damaged files").
**
**   build/corrupt_matrix DIR [--long]
**
** Builds a store in DIR/base through the engine API with a known history --
** puts, overwrites, deletes, transactions of many records spanning
** rotations (max_file_size 4096), a merge, more writes after it -- so that it
** has merged, sealed and active data files, hint files and the marker; and a
** second one, DIR/mrg, whose last merge stopped at its commit point (a
** failing rename after MERGE was written), so that it holds a MERGE manifest
** and .merging outputs.  It remembers every value ever written to every key
** and its final committed value.
**
** Then, for every file of both stores and every kind of damage -- a bit
** flipped at several offsets (the file header's fields, the middle, the
** last bytes), a 512-byte sector zeroed, a truncation at several lengths, the
** file deleted -- it damages a copy of the store and opens it (read-only,
** then writer), and checks every key: the answer is its final value or
** BC_CORRUPT, or the open is refused with BC_CORRUPT or BC_NOTSTORE.  Never
** an older value, never absent when live, never present when deleted, never
** a value that was not written, never another status.  Then it merges and
** reopens: every answer must be as before (a merge deletes nothing it could
** not account for).
**
** One case has no evidence to go on: damage to the active data file (the
** one written last, which has no hint file; the last transaction in it may
** be dropped whole as a power loss would, and a record whose key bytes are
** damaged cannot name its key).  There an answer must only be some value
** once written to the key, absent, or BC_CORRUPT -- and still not change
** across the merge.
**
** Prints the trials per role and kind, each failure, and "N passed, N
** failed" last; exits 1 on any failure.  --long tries many more offsets.
*/
#include "bitcask.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NKEYS 64
#define MAXVER 64
#define MFS 4096u

/* ------------------------------------------------------------- the model */

typedef struct hist {
  int vers[MAXVER]; /* every version ever written, in order */
  int nvers;
  int final;        /* the final committed version, or -1: deleted / never */
} hist;

static hist H[NKEYS];

static size_t val_len(int k, int v) {
  return 24 + (size_t)((k * 31 + v * 57) % 180) + (v % 3 == 0 ? 300 : 0);
}

static void val_bytes(int k, int v, char *out, size_t *len) {
  size_t n = val_len(k, v);
  int m = snprintf(out, n + 1, "key%02d-ver%04d-", k, v);
  for (size_t i = (size_t)m; i < n; i++) out[i] = (char)('a' + (k + v + (int)i) % 26);
  *len = n;
}

static int key_of(int k, char *out) { return sprintf(out, "key%02d", k); }

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "corrupt_matrix: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

#define CHECK(x)                                                              \
  do {                                                                        \
    bc_status st_ = (x);                                                      \
    if (st_ != BC_OK) die("%s:%d: %s = %s", __FILE__, __LINE__, #x,           \
                          bc_status_name(st_));                               \
  } while (0)

static int next_ver = 1;

static void put(bc_store *s, int k) {
  char key[16], val[1024];
  size_t vl;
  int v = next_ver++;
  val_bytes(k, v, val, &vl);
  CHECK(bc_put(s, key, (size_t)key_of(k, key), 0, val, vl));
  if (H[k].nvers == MAXVER) die("too many versions");
  H[k].vers[H[k].nvers++] = v;
  H[k].final = v;
}

static void del(bc_store *s, int k) {
  char key[16];
  bc_status st = bc_delete(s, key, (size_t)key_of(k, key));
  if (st != BC_OK && st != BC_NOTFOUND) die("delete: %s", bc_status_name(st));
  H[k].final = -1;
}

/* A transaction over keys lo..hi-1 (step), puts of big values (so that it
** spans several data files), and deletes of every key whose index % 5 == 4. */
static void txn(bc_store *s, int lo, int hi, int step) {
  bc_txn *t;
  CHECK(bc_txn_begin(s, &t));
  int fin[NKEYS];
  for (int k = 0; k < NKEYS; k++) fin[k] = H[k].final;
  for (int k = lo; k < hi; k += step) {
    char key[16], val[1024];
    size_t vl;
    size_t kl = (size_t)key_of(k, key);
    if (k % 5 == 4 && fin[k] >= 0) {
      bc_status st = bc_txn_delete(t, key, kl);
      if (st != BC_OK && st != BC_NOTFOUND) die("txn delete: %s", bc_status_name(st));
      fin[k] = -1;
      continue;
    }
    int v = next_ver++;
    val_bytes(k, v, val, &vl);
    CHECK(bc_txn_put(t, key, kl, 0, val, vl));
    if (H[k].nvers == MAXVER) die("too many versions");
    H[k].vers[H[k].nvers++] = v;
    fin[k] = v;
  }
  CHECK(bc_txn_commit(t));
  for (int k = 0; k < NKEYS; k++) H[k].final = fin[k];
}

static bc_store *open_store(const char *dir, int create, int ro, const bc_io *io,
                            bc_status *out, char *err, size_t errlen) {
  bc_options o;
  bc_options_init(&o);
  o.max_file_size = MFS;
  o.create = create;
  o.read_only = ro;
  o.sync = BC_SYNC_OFF;
  o.io = io;
  bc_store *s = NULL;
  *out = bc_open(dir, &o, &s, err, errlen);
  return s;
}

/* ----------------------------------------------- a merge stopped at MERGE */

static int posix_open(void *c, const char *p, int f, mode_t m) { (void)c; return open(p, f | O_CLOEXEC, m); }
static ssize_t posix_pread(void *c, int fd, void *b, size_t n, off_t o) { (void)c; return pread(fd, b, n, o); }
static ssize_t posix_pwrite(void *c, int fd, const void *b, size_t n, off_t o) { (void)c; return pwrite(fd, b, n, o); }
static int posix_fsync(void *c, int fd) { (void)c; return fdatasync(fd); }
static int posix_ftruncate(void *c, int fd, off_t l) { (void)c; return ftruncate(fd, l); }
static int posix_unlink(void *c, const char *p) { (void)c; return unlink(p); }
static int posix_close(void *c, int fd) { (void)c; return close(fd); }
/* Fails the first rename of a merge output into place: step 4, right
** after the commit point. */
static int failing_rename(void *c, const char *from, const char *to) {
  int *armed = c;
  size_t n = strlen(from);
  if (*armed && n > 13 && strcmp(from + n - 13, ".data.merging") == 0) {
    *armed = 0;
    errno = EIO;
    return -1;
  }
  return rename(from, to);
}

/* ------------------------------------------------------------ files */

static void run(const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  if (system(cmd) != 0) die("command failed: %s", cmd);
}

static long file_size(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

typedef struct file {
  char name[256];
  char role[24];
  long size;
} file;

static int cmp_file(const void *a, const void *b) {
  return strcmp(((const file *)a)->name, ((const file *)b)->name);
}

/* Every file of the store, with its role. */
static size_t list_files(const char *dir, uint32_t active, file *out, size_t cap) {
  DIR *d = opendir(dir);
  if (!d) die("opendir %s", dir);
  struct dirent *de;
  size_t n = 0;
  while ((de = readdir(d)) != NULL && n < cap) {
    const char *nm = de->d_name;
    if (nm[0] == '.' || strcmp(nm, "LOCK") == 0) continue;
    file *f = &out[n];
    snprintf(f->name, sizeof f->name, "%s", nm);
    char p[1400];
    snprintf(p, sizeof p, "%.1000s/%s", dir, nm);
    f->size = file_size(p);
    unsigned id = 0;
    char suf[32] = "";
    if (sscanf(nm, "%10u%31s", &id, suf) == 2) {
      int merged = 0;
      if (strcmp(suf, ".data") == 0 || strcmp(suf, ".data.merging") == 0) {
        FILE *fp = fopen(p, "rb");
        unsigned char h[16] = {0};
        if (fp) {
          if (fread(h, 1, 16, fp) != 16) memset(h, 0, sizeof h);
          fclose(fp);
        }
        merged = h[12] & 1;
      }
      if (strcmp(suf, ".data") == 0)
        snprintf(f->role, sizeof f->role, "%s", id == active ? "data-active"
                                                : merged ? "data-merged" : "data-sealed");
      else if (strcmp(suf, ".hint") == 0)
        snprintf(f->role, sizeof f->role, "hint");
      else
        snprintf(f->role, sizeof f->role, "%s",
                 strstr(suf, "data") ? "data-merging" : "hint-merging");
    } else if (strcmp(nm, "BITCASK") == 0) {
      snprintf(f->role, sizeof f->role, "marker");
    } else if (strcmp(nm, "MERGE") == 0) {
      snprintf(f->role, sizeof f->role, "manifest");
    } else {
      snprintf(f->role, sizeof f->role, "other");
    }
    n++;
  }
  closedir(d);
  qsort(out, n, sizeof *out, cmp_file);
  return n;
}

/* ----------------------------------------------------------- damage */

enum { D_FLIP, D_ZERO, D_TRUNC, D_DELETE };
static const char *const kind_name[] = {"flip", "zero512", "truncate", "delete"};

typedef struct damage {
  int kind;
  long at;   /* flip: byte offset; zero: sector start; trunc: new length */
  int bit;
} damage;

static void apply_damage(const char *path, const damage *d) {
  if (d->kind == D_DELETE) {
    if (unlink(path) != 0) die("unlink %s", path);
    return;
  }
  if (d->kind == D_TRUNC) {
    if (truncate(path, d->at) != 0) die("truncate %s", path);
    return;
  }
  int fd = open(path, O_RDWR);
  if (fd < 0) die("open %s", path);
  if (d->kind == D_FLIP) {
    unsigned char c;
    if (pread(fd, &c, 1, d->at) != 1) die("pread %s", path);
    c ^= (unsigned char)(1u << d->bit);
    if (pwrite(fd, &c, 1, d->at) != 1) die("pwrite %s", path);
  } else {
    static const unsigned char zero[512];
    long size = file_size(path);
    long n = size - d->at < 512 ? size - d->at : 512;
    if (n > 0 && pwrite(fd, zero, (size_t)n, d->at) != n) die("pwrite %s", path);
  }
  close(fd);
}

/* The damages tried on a file of `size` bytes. */
static size_t damages_for(const file *f, int lng, damage *out, size_t cap) {
  size_t n = 0;
  long sz = f->size;
#define ADD(K, A, B)                                                 \
  do {                                                               \
    if (n < cap) out[n++] = (damage){(K), (A), (B)};                  \
  } while (0)
  if (sz > 0) {
    long flips[] = {0, 8, 12, 16, 20, 28, 31, 40, 48, 63, sz / 3, sz / 2,
                    (2 * sz) / 3, sz - 20, sz - 5, sz - 1};
    for (size_t i = 0; i < sizeof flips / sizeof *flips; i++)
      if (flips[i] >= 0 && flips[i] < sz) ADD(D_FLIP, flips[i], (int)(i % 8));
    if (lng)
      for (long o = 1; o < sz; o += sz > 4000 ? 29 : 7) ADD(D_FLIP, o, (int)(o % 8));
    long zeros[] = {0, (sz / 2) & ~511L, (sz - 1) & ~511L};
    for (size_t i = 0; i < 3; i++)
      if (i == 0 || zeros[i] != zeros[i - 1]) ADD(D_ZERO, zeros[i], 0);
    if (lng)
      for (long o = 512; o < sz; o += 512) ADD(D_ZERO, o, 0);
    long cuts[] = {0, 16, 32, 33, 72, sz / 2, sz - 30, sz - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++)
      if (cuts[i] >= 0 && cuts[i] < sz && (i == 0 || cuts[i] != cuts[i - 1]))
        ADD(D_TRUNC, cuts[i], 0);
    if (lng)
      for (long o = 1; o < sz; o += sz > 4000 ? 97 : 13) ADD(D_TRUNC, o, 0);
  }
  ADD(D_DELETE, 0, 0);
#undef ADD
  return n;
}

/* ----------------------------------------------------------- checking */

/* An answer: 0 absent, 1 value (ver), 2 corrupt. */
typedef struct answer {
  int what;
  int ver;
} answer;

static int passed, failed;
static char trial[512];
static int trial_failed;

static void failure(const char *fmt, ...) {
  if (!trial_failed) failed++;
  trial_failed = 1;
  if (failed > 40) return;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "FAIL %s: ", trial);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

/* The version a value is, or -1 if it is no value ever written to k. */
static int which_version(int k, const void *v, size_t n) {
  char want[1024];
  size_t wl;
  for (int i = 0; i < H[k].nvers; i++) {
    val_bytes(k, H[k].vers[i], want, &wl);
    if (wl == n && memcmp(want, v, n) == 0) return H[k].vers[i];
  }
  return -1;
}

/* Read every key; check each answer (strict: only the final value, absent
** for a deleted key, or BC_CORRUPT; relaxed: any value once written too). */
static void check_all(bc_store *s, const char *when, int strict, answer *ans) {
  bc_buf b = {0};
  for (int k = 0; k < NKEYS; k++) {
    char key[16];
    size_t kl = (size_t)key_of(k, key);
    const void *v;
    bc_info info;
    bc_status st = bc_get(s, key, kl, &b, &v, &info);
    answer a = {0, 0};
    if (st == BC_OK) {
      int ver = which_version(k, v, info.value_size);
      a.what = 1;
      a.ver = ver;
      if (ver < 0)
        failure("%s: %s reads a value never written (%u bytes)", when, key,
                info.value_size);
      else if (strict && H[k].final < 0)
        failure("%s: %s is deleted but reads version %d", when, key, ver);
      else if (strict && ver != H[k].final)
        failure("%s: %s reads older version %d, not %d", when, key, ver, H[k].final);
    } else if (st == BC_NOTFOUND) {
      if (strict && H[k].final >= 0)
        failure("%s: %s is live (version %d) but reads absent", when, key, H[k].final);
    } else if (st == BC_CORRUPT) {
      a.what = 2;
      if (!strstr(bc_errmsg(s), ".data"))
        failure("%s: %s: BC_CORRUPT without naming a data file: %s", when, key,
                bc_errmsg(s));
    } else {
      failure("%s: %s: %s (%s)", when, key, bc_status_name(st), bc_errmsg(s));
    }
    bc_status lst = bc_lookup(s, key, kl, NULL);
    if ((lst == BC_OK) != (st == BC_OK || st == BC_CORRUPT))
      failure("%s: %s: bc_lookup %s but bc_get %s", when, key, bc_status_name(lst),
              bc_status_name(st));
    if (ans) ans[k] = a;
  }
  /* Iteration agrees with the count; any key not of the model reads as
  ** BC_CORRUPT (a phantom from damaged key bytes), never as a value. */
  bc_iter *it;
  if (bc_iter_open(s, &it) != BC_OK) die("iter");
  const void *key;
  size_t klen;
  uint64_t n = 0;
  while (bc_iter_next(it, &key, &klen, NULL) == BC_OK) {
    n++;
    int known = 0;
    for (int k = 0; k < NKEYS && !known; k++) {
      char want[16];
      size_t wl = (size_t)key_of(k, want);
      known = wl == klen && memcmp(want, key, klen) == 0;
    }
    if (known) continue;
    const void *v;
    bc_status st = bc_get(s, key, klen, &b, &v, NULL);
    if (st != BC_CORRUPT)
      failure("%s: a key of %zu bytes not in the model reads %s", when, klen,
              bc_status_name(st));
  }
  bc_iter_close(it);
  if (n != bc_count(s))
    failure("%s: iteration gives %llu keys, bc_count %llu", when,
            (unsigned long long)n, (unsigned long long)bc_count(s));
  bc_buf_free(&b);
}

static void same_answers(const answer *a, const answer *b, const char *when) {
  for (int k = 0; k < NKEYS; k++)
    if (a[k].what != b[k].what || (a[k].what == 1 && a[k].ver != b[k].ver))
      failure("%s: key%02d changed from %s %d to %s %d", when, k,
              a[k].what == 0 ? "absent" : a[k].what == 1 ? "version" : "corrupt",
              a[k].ver, b[k].what == 0 ? "absent" : b[k].what == 1 ? "version" : "corrupt",
              b[k].ver);
}

/* An open may be refused only with a clear BC_CORRUPT or BC_NOTSTORE. */
static int open_ok(bc_status st, const char *err, const char *when) {
  if (st == BC_OK) return 1;
  if ((st == BC_CORRUPT || st == BC_NOTSTORE) && err[0]) return 0;
  failure("%s: open gives %s (%s)", when, bc_status_name(st), err);
  return 0;
}

static void one_trial(const char *src, const char *work, const file *f, const damage *d) {
  if (strlen(work) > 1000) die("DIR is too long");
  trial_failed = 0;
  int strict = strcmp(f->role, "data-active") != 0;
  snprintf(trial, sizeof trial, "%s %s (%s, %ld bytes): %s at %ld",
           strrchr(src, '/') + 1, f->name, f->role, f->size, kind_name[d->kind], d->at);
  run("rm -rf '%s' && cp -a '%s' '%s'", work, src, work);
  char p[1400];
  snprintf(p, sizeof p, "%.1000s/%s", work, f->name);
  apply_damage(p, d);
  char err[1024] = "";
  bc_status st;
  answer before[NKEYS], after[NKEYS];
  bc_store *s = open_store(work, 0, 1, NULL, &st, err, sizeof err);
  if (open_ok(st, err, "read-only open")) {
    answer ro[NKEYS], ro2[NKEYS];
    check_all(s, "read-only", strict, ro);
    /* A refresh with no writer finds nothing new: the same answers. */
    bc_status rst = bc_refresh(s);
    if (rst != BC_OK) failure("bc_refresh: %s (%s)", bc_status_name(rst), bc_errmsg(s));
    check_all(s, "read-only, refreshed", strict, ro2);
    same_answers(ro, ro2, "refresh");
    bc_close(s);
  }
  err[0] = 0;
  s = open_store(work, 0, 0, NULL, &st, err, sizeof err);
  if (open_ok(st, err, "writer open")) {
    check_all(s, "writer", strict, before);
    uint64_t rec;
    bc_status mst = bc_merge(s, &rec);
    if (mst != BC_OK && mst != BC_CORRUPT)
      failure("merge: %s (%s)", bc_status_name(mst), bc_errmsg(s));
    check_all(s, "after merge", strict, after);
    same_answers(before, after, "merge");
    if (bc_close(s) != BC_OK) failure("close after merge failed");
    err[0] = 0;
    s = open_store(work, 0, 0, NULL, &st, err, sizeof err);
    if (st != BC_OK) {
      failure("reopen after merge: %s (%s)", bc_status_name(st), err);
    } else {
      check_all(s, "reopen after merge", strict, after);
      same_answers(before, after, "reopen after merge");
      bc_close(s);
    }
  }
  if (!trial_failed) passed++;
}

/* ------------------------------------------------------------ the store */

static uint32_t build(const char *dir) {
  char err[512];
  bc_status st;
  bc_store *s = open_store(dir, 1, 0, NULL, &st, err, sizeof err);
  if (!s) die("create: %s", err);
  for (int k = 0; k < NKEYS; k++) put(s, k);
  for (int k = 0; k < NKEYS; k += 3) put(s, k);
  for (int k = 1; k < NKEYS; k += 7) del(s, k);
  txn(s, 0, NKEYS, 1);                     /* every key, over several files */
  for (int k = 2; k < NKEYS; k += 5) put(s, k);
  CHECK(bc_sync(s));
  CHECK(bc_merge(s, NULL));
  /* After the merge: overwrite, delete keys that live in merged files,
  ** put deleted ones back, another transaction spanning files. */
  for (int k = 0; k < NKEYS; k += 4) put(s, k);
  for (int k = 3; k < NKEYS; k += 6) del(s, k);
  for (int k = 1; k < NKEYS; k += 14) put(s, k);
  txn(s, 5, NKEYS, 2);
  for (int k = 6; k < NKEYS; k += 9) del(s, k);
  txn(s, 0, 20, 1);
  for (int k = 10; k < 20; k++) put(s, k);  /* the active file */
  del(s, 12);
  CHECK(bc_sync(s));
  bc_stats sts;
  CHECK(bc_stats_get(s, &sts));
  if (bc_close(s) != BC_OK) die("close");
  return (uint32_t)sts.active_file_id;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s DIR [--long]\n", argv[0]);
    return 2;
  }
  int lng = argc > 2 && strcmp(argv[2], "--long") == 0;
  const char *dir = argv[1];
  char base[1024], mrg[1024], work[1024];
  if (strlen(argv[1]) > 1000) die("DIR is too long");
  snprintf(base, sizeof base, "%s/base", dir);
  snprintf(mrg, sizeof mrg, "%s/mrg", dir);
  snprintf(work, sizeof work, "%s/work", dir);
  run("mkdir -p '%s' && rm -rf '%s' '%s' '%s'", dir, base, mrg, work);
  for (int k = 0; k < NKEYS; k++) H[k].final = -1;
  uint32_t active = build(base);

  /* The same store with its merge stopped right after MERGE. */
  run("cp -a '%s' '%s'", base, mrg);
  {
    int armed = 1;
    bc_io io = {&armed, posix_open, posix_pread, posix_pwrite, posix_fsync,
                posix_ftruncate, failing_rename, posix_unlink, posix_close};
    char err[512];
    bc_status st;
    bc_store *s = open_store(mrg, 0, 0, &io, &st, err, sizeof err);
    if (!s) die("open mrg: %s", err);
    bc_status mst = bc_merge(s, NULL);
    if (mst == BC_OK || armed) die("the merge was not stopped at step 4: %s",
                                   bc_status_name(mst));
    bc_stats sts;
    CHECK(bc_stats_get(s, &sts));
    bc_close(s);
    char p[1100];
    snprintf(p, sizeof p, "%s/MERGE", mrg);
    if (file_size(p) < 0) die("no MERGE manifest in %s", mrg);
    (void)sts;
  }

  /* Both stores answer right before any damage. */
  {
    snprintf(trial, sizeof trial, "undamaged");
    char err[512];
    bc_status st;
    const char *both[2] = {base, mrg};
    for (int i = 0; i < 2; i++) {
      run("rm -rf '%s' && cp -a '%s' '%s'", work, both[i], work);
      bc_store *s = open_store(work, 0, 0, NULL, &st, err, sizeof err);
      if (!s) die("open %s: %s", both[i], err);
      check_all(s, both[i], 1, NULL);
      bc_close(s);
    }
    if (failed) die("the undamaged stores do not answer right");
  }

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  enum { NROLES = 9 };
  static const char *const roles[NROLES] = {"data-merged", "data-sealed", "data-active",
                                            "hint", "marker", "manifest",
                                            "data-merging", "hint-merging", "other"};
  int count[NROLES][4] = {{0}}, fails[NROLES][4] = {{0}};
  const char *stores[2] = {base, mrg};
  uint32_t mrg_active = 0;
  for (int si = 0; si < 2; si++) {
    file files[512];
    /* In the stopped-merge store only the merge's own files are damaged
    ** (its data and hint files are the base store's, tried already). */
    size_t nf = list_files(stores[si], si == 0 ? active : mrg_active, files, 512);
    for (size_t i = 0; i < nf; i++) {
      const file *f = &files[i];
      if (si == 1 && strcmp(f->role, "manifest") != 0 &&
          strcmp(f->role, "data-merging") != 0 && strcmp(f->role, "hint-merging") != 0)
        continue;
      int r = 0;
      while (r < NROLES - 1 && strcmp(roles[r], f->role) != 0) r++;
      damage ds[4096];
      size_t nd = damages_for(f, lng, ds, 4096);
      for (size_t j = 0; j < nd; j++) {
        int before = failed;
        one_trial(stores[si], work, f, &ds[j]);
        count[r][ds[j].kind]++;
        if (failed != before) fails[r][ds[j].kind]++;
      }
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  run("rm -rf '%s'", work);
  printf("corrupt_matrix: trials per role and damage (failed in brackets)\n");
  printf("  %-14s %12s %12s %12s %12s\n", "role", "flip", "zero512", "truncate", "delete");
  for (int r = 0; r < NROLES; r++) {
    int any = 0;
    for (int k = 0; k < 4; k++) any |= count[r][k];
    if (!any) continue;
    printf("  %-14s", roles[r]);
    for (int k = 0; k < 4; k++) {
      char c[32];
      snprintf(c, sizeof c, "%d [%d]", count[r][k], fails[r][k]);
      printf(" %12s", c);
    }
    printf("\n");
  }
  printf("corrupt_matrix: %d trials in %.1f s\n", passed + failed,
         (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
