/*
** replay.c -- the plain driver of the fuzz target (fuzz_open.c), for the
** normal and the sanitizer builds, which have no libFuzzer:
**
**   fuzz_replay PATH...              run LLVMFuzzerTestOneInput on every file
**                                    (directories are walked recursively)
**   fuzz_replay --make-seeds DIR     build real stores with the engine and
**                                    write them, packed as fuzz inputs
**                                    (fuzz_pack_dir), into DIR as seed-*
**
** A crash aborts (under ASan with its report), and so does an input that
** runs longer than FUZZ_REPLAY_TIMEOUT seconds (default 20; 0: no limit),
** so reaching the summary line ("fuzz_replay: N inputs, 0 crashes") means
** every input passed.  `make check-fuzz` runs it on test/fuzz/corpus:
**   seed-*   made by --make-seeds (regenerate: rm test/fuzz/corpus/seed-*;
**            build/fuzz_replay --make-seeds test/fuzz/corpus)
**   v1-seed-* the same, made by a format-1 library (data files of version
**            1, 8-byte COMMITs): kept so that stores older code wrote stay
**            covered; never regenerated
**   crash-*  reproducers of the bugs the fuzzer found (fixed in the engine)
**   the rest inputs libFuzzer found, minimised: `make fuzz`, then
**            build-fuzz/fuzz_open -set_cover_merge=1 test/fuzz/corpus
**            build-fuzz/corpus
*/
#include "bitcask.h"
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_pack_dir(const char *dir, const unsigned char pre[8], int style,
                  unsigned char **out, size_t *outlen);

static void die(const char *fmt, const char *arg) {
  fprintf(stderr, "fuzz_replay: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n");
  exit(2);
}

static int read_whole(const char *path, unsigned char **out, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    close(fd);
    return -1;
  }
  size_t n = (size_t)sb.st_size;
  unsigned char *p = malloc(n ? n : 1);
  size_t got = 0;
  while (p && got < n) {
    ssize_t r = read(fd, p + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  if (!p || got != n) {
    free(p);
    return -1;
  }
  *out = p;
  *len = n;
  return 0;
}

static int write_whole(const char *path, const unsigned char *p, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    p += w;
    n -= (size_t)w;
  }
  return close(fd) == 0 && n == 0 ? 0 : -1;
}

/* ------------------------------------------------------------- replay */

static unsigned long n_inputs;
static const char *g_current;  /* the input being run, for the timeout */
static unsigned g_timeout = 20; /* seconds per input; FUZZ_REPLAY_TIMEOUT */

/* An input that runs this long is a hang (libFuzzer's -timeout=10 would
** have reported it): say which and abort. */
static void on_alarm(int sig) {
  (void)sig;
  static const char msg1[] = "fuzz_replay: timeout: ";
  static const char msg2[] = " ran longer than FUZZ_REPLAY_TIMEOUT\n";
  ssize_t w = write(2, msg1, sizeof msg1 - 1);
  if (g_current) w = write(2, g_current, strlen(g_current));
  w = write(2, msg2, sizeof msg2 - 1);
  (void)w;
  abort();
}

static void run_file(const char *path) {
  unsigned char *p;
  size_t n;
  if (read_whole(path, &p, &n) != 0) die("cannot read '%s'", path);
  g_current = path;
  alarm(g_timeout);
  (void)LLVMFuzzerTestOneInput(p, n);
  alarm(0);
  g_current = NULL;
  free(p);
  n_inputs++;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_path(const char *path) {
  struct stat sb;
  if (stat(path, &sb) != 0) die("cannot stat '%s'", path);
  if (!S_ISDIR(sb.st_mode)) {
    run_file(path);
    return;
  }
  DIR *d = opendir(path);
  if (!d) die("cannot list '%s'", path);
  char **names = NULL;
  size_t nn = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (nn == cap) {
      cap = cap ? cap * 2 : 64;
      char **q = realloc(names, cap * sizeof *q);
      if (!q) die("out of memory listing '%s'", path);
      names = q;
    }
    names[nn] = malloc(strlen(path) + strlen(de->d_name) + 2);
    if (!names[nn]) die("out of memory listing '%s'", path);
    sprintf(names[nn], "%s/%s", path, de->d_name);
    nn++;
  }
  closedir(d);
  if (nn) qsort(names, nn, sizeof *names, cmp_str); /* a stable order */
  for (size_t i = 0; i < nn; i++) {
    run_path(names[i]);
    free(names[i]);
  }
  free(names);
}

/* -------------------------------------------------------------- seeds */

static char g_work[256];   /* scratch directory of --make-seeds */
static const char *g_out;     /* output directory */
static unsigned g_nseeds;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(p) == 0 || errno == ENOENT ? 0 : -1;
}

static void rmrf(const char *path) {
  struct stat sb;
  if (lstat(path, &sb) != 0) return;
  (void)nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void store_path(char *out, const char *name) {
  snprintf(out, PATH_MAX, "%s/%s", g_work, name);
}

static void fail_st(const char *what, bc_status st) {
  fprintf(stderr, "fuzz_replay: --make-seeds: %s: %s\n", what, bc_status_name(st));
  exit(2);
}

#define OK(call)                               \
  do {                                         \
    bc_status st_ = (call);                    \
    if (st_ != BC_OK) fail_st(#call, st_);     \
  } while (0)

/* A fault-injecting bc_io: renames whose source ends with fail_suffix
** fail with EIO (leaves a merge after its commit point, see FORMAT.md). */
typedef struct gen_io {
  const char *fail_suffix;
} gen_io;

static int g_open(void *c, const char *p, int f, mode_t m) {
  (void)c;
  return bc_posix_io.open(NULL, p, f, m);
}
static ssize_t g_pread(void *c, int fd, void *b, size_t n, off_t o) {
  (void)c;
  return bc_posix_io.pread(NULL, fd, b, n, o);
}
static ssize_t g_pwrite(void *c, int fd, const void *b, size_t n, off_t o) {
  (void)c;
  return bc_posix_io.pwrite(NULL, fd, b, n, o);
}
static int g_fsync(void *c, int fd) {
  (void)c;
  return bc_posix_io.fsync(NULL, fd);
}
static int g_ftruncate(void *c, int fd, off_t l) {
  (void)c;
  return bc_posix_io.ftruncate(NULL, fd, l);
}
static int g_rename(void *c, const char *a, const char *b) {
  gen_io *g = c;
  size_t la = strlen(a), ls = g->fail_suffix ? strlen(g->fail_suffix) : 0;
  if (ls && la >= ls && strcmp(a + la - ls, g->fail_suffix) == 0) {
    errno = EIO;
    return -1;
  }
  return bc_posix_io.rename(NULL, a, b);
}
static int g_unlink(void *c, const char *p) {
  (void)c;
  return bc_posix_io.unlink(NULL, p);
}
static int g_close(void *c, int fd) {
  (void)c;
  return bc_posix_io.close(NULL, fd);
}

static bc_store *gen_open(const char *name, uint64_t max_file_size, bc_io *io) {
  char p[PATH_MAX], err[256];
  store_path(p, name);
  bc_options o;
  bc_options_init(&o);
  o.create = 1;
  o.sync = BC_SYNC_OFF;
  o.max_file_size = max_file_size;
  o.io = io;
  bc_store *s = NULL;
  bc_status st = bc_open(p, &o, &s, err, sizeof err);
  if (st != BC_OK) die("--make-seeds: %s", err);
  return s;
}

/* Deterministic keys and values. */
static size_t gen_key(char *out, size_t cap, unsigned i) {
  switch (i % 5) {
    case 0: return (size_t)snprintf(out, cap, "key-%u", i);
    case 1: return (size_t)snprintf(out, cap, "user/%08u/name", i);
    case 2: { /* binary */
      size_t n = 3 + i % 7;
      for (size_t k = 0; k < n && k < cap; k++) out[k] = (char)(i * 37u + k * 11u);
      return n;
    }
    case 3: return (size_t)snprintf(out, cap, "k%u", i);
    default: return (size_t)snprintf(out, cap, "a-longer-key-number-%u-with-padding", i);
  }
}

static void gen_val(unsigned char *out, size_t n, unsigned seed) {
  for (size_t k = 0; k < n; k++) out[k] = (unsigned char)('a' + (seed + k * 7u) % 26u);
}

static void puts_n(bc_store *s, unsigned from, unsigned n, size_t vmax) {
  unsigned char v[2048];
  char k[64];
  for (unsigned i = from; i < from + n; i++) {
    size_t kl = gen_key(k, sizeof k, i);
    size_t vl = vmax ? (i * 53u) % (vmax + 1) : 0;
    if (vl > sizeof v) vl = sizeof v;
    gen_val(v, vl, i);
    OK(bc_put(s, k, kl, (uint8_t)(i % 4), v, vl));
  }
  OK(bc_sync(s));
}

static void deletes_n(bc_store *s, unsigned from, unsigned n, unsigned step) {
  char k[64];
  for (unsigned i = from; i < from + n; i += step) {
    size_t kl = gen_key(k, sizeof k, i);
    bc_status st = bc_delete(s, k, kl);
    if (st != BC_OK && st != BC_NOTFOUND) fail_st("bc_delete", st);
  }
  OK(bc_sync(s));
}

/* Pack store `name` with preamble pre in the given style and write it. */
static void emit(const char *name, const char *tag, const unsigned char pre[8],
                 int style) {
  char p[PATH_MAX], out[PATH_MAX];
  store_path(p, name);
  unsigned char *buf;
  size_t len;
  if (fuzz_pack_dir(p, pre, style, &buf, &len) != 0) {
    fprintf(stderr, "fuzz_replay: --make-seeds: cannot pack %s (%s)\n", name, tag);
    exit(2);
  }
  snprintf(out, sizeof out, "%s/seed-%s-%s", g_out, name, tag);
  if (write_whole(out, buf, len) != 0) die("cannot write '%s'", out);
  free(buf);
  g_nseeds++;
}

/* The usual two packings: checksums rebuilt by the harness, and raw bytes
** with the store's own marker. */
static void emit2(const char *name, const unsigned char preA[8],
                  const unsigned char preB[8]) {
  emit(name, "fix", preA, 0);
  emit(name, "raw", preB, 1 | 2);
}

static void file_in(char *out, const char *store, const char *name) {
  snprintf(out, PATH_MAX, "%s/%s/%s", g_work, store, name);
}

/* Copy every file of store `from` but LOCK into store `to` (what a kill -9
** would leave: the engine writes through, nothing is cached in user space
** but the write buffer). */
static void copy_store(const char *from, const char *to) {
  char a[PATH_MAX], b[PATH_MAX];
  store_path(a, from);
  store_path(b, to);
  rmrf(b);
  if (mkdir(b, 0755) != 0) die("cannot create '%s'", b);
  DIR *d = opendir(a);
  if (!d) die("cannot list '%s'", a);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.' || strcmp(de->d_name, "LOCK") == 0) continue;
    char fa[PATH_MAX], fb[PATH_MAX];
    file_in(fa, from, de->d_name);
    file_in(fb, to, de->d_name);
    unsigned char *p;
    size_t n;
    if (read_whole(fa, &p, &n) != 0 || write_whole(fb, p, n) != 0)
      die("cannot copy '%s'", fa);
    free(p);
  }
  closedir(d);
}

/* The highest id of a data file of store `name` (0 if none). */
static uint32_t newest_data(const char *name, int merged_ok) {
  char p[PATH_MAX];
  store_path(p, name);
  DIR *d = opendir(p);
  if (!d) die("cannot list '%s'", p);
  uint32_t best = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    uint32_t id;
    if (bc_name_kind(de->d_name, &id) != BC_NAME_DATA) continue;
    if (!merged_ok) {
      char f[PATH_MAX];
      unsigned char h[32];
      file_in(f, name, de->d_name);
      int fd = open(f, O_RDONLY | O_CLOEXEC);
      ssize_t r = fd >= 0 ? pread(fd, h, sizeof h, 0) : -1;
      if (fd >= 0) close(fd);
      if (r == 32 && (h[12] & 1)) continue;
    }
    if (id > best) best = id;
  }
  closedir(d);
  return best;
}

static off_t file_size(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? sb.st_size : -1;
}

static void truncate_to(const char *path, off_t n) {
  if (truncate(path, n) != 0) die("cannot truncate '%s'", path);
}

static void flip_byte(const char *path, off_t at) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  unsigned char c;
  if (fd < 0 || pread(fd, &c, 1, at) != 1) die("cannot read '%s'", path);
  c ^= 0x5a;
  if (pwrite(fd, &c, 1, at) != 1) die("cannot write '%s'", path);
  close(fd);
}

static void txn_scenario(bc_store *s) {
  unsigned char v[600];
  gen_val(v, sizeof v, 7);
  bc_txn *t;
  unsigned d;
  /* Committed. */
  OK(bc_txn_begin(s, &t));
  OK(bc_txn_put(t, "t1-a", 4, 1, v, 40));
  OK(bc_txn_put(t, "t1-b", 4, 2, v, 0));
  OK(bc_txn_delete(t, "key-0", 5));
  OK(bc_txn_commit(t));
  /* Rolled back. */
  OK(bc_txn_begin(s, &t));
  OK(bc_txn_put(t, "t2-a", 4, 0, v, 30));
  OK(bc_txn_rollback(t));
  /* Savepoints. */
  OK(bc_txn_begin(s, &t));
  OK(bc_txn_put(t, "t3-a", 4, 0, v, 20));
  OK(bc_txn_savepoint(t, &d));
  OK(bc_txn_put(t, "t3-b", 4, 0, v, 20));
  OK(bc_txn_delete(t, "t1-a", 4));
  OK(bc_txn_rollback_to(t, d));
  OK(bc_txn_put(t, "t3-c", 4, 3, v, 25));
  OK(bc_txn_release(t, d));
  OK(bc_txn_commit(t));
  /* Prepared, then aborted: COMMIT followed by ROLLBACK_TO(0). */
  OK(bc_txn_begin(s, &t));
  OK(bc_txn_put(t, "t4-a", 4, 0, v, 10));
  OK(bc_txn_prepare(t));
  OK(bc_txn_rollback(t));
  /* Across rotations (big values with a 4096-byte max_file_size). */
  OK(bc_txn_begin(s, &t));
  for (unsigned i = 0; i < 12; i++) {
    char k[16];
    int n = snprintf(k, sizeof k, "t5-%u", i);
    OK(bc_txn_put(t, k, (size_t)n, 0, v, sizeof v));
  }
  OK(bc_txn_commit(t));
  OK(bc_sync(s));
}

static const char *usable_tmp(void) {
  const char *c[] = {"/dev/shm", getenv("TMPDIR"), "/tmp"};
  for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
    struct stat sb;
    if (c[i] && *c[i] && stat(c[i], &sb) == 0 && S_ISDIR(sb.st_mode) &&
        access(c[i], W_OK | X_OK) == 0)
      return c[i];
  }
  return ".";
}

static void make_seeds(const char *outdir) {
  g_out = outdir;
  if (mkdir(outdir, 0755) != 0 && errno != EEXIST) die("cannot create '%s'", outdir);
  const char *base = usable_tmp();
  snprintf(g_work, sizeof g_work, "%s/bcseeds-XXXXXX", base);
  if (!mkdtemp(g_work)) die("cannot create a directory under '%s'", base);
  const uint64_t SMALL = BC_MIN_MAX_FILE_SIZE;
  char p[PATH_MAX], q[PATH_MAX];
  bc_store *s;

  /* Preambles: see fuzz_open.c. */
  const unsigned char P_ALL[8] = {0x00, 0x00, 0x04, 0x1b, 0x00, 0x11, 0x22, 0x33};
  const unsigned char P_SMALL[8] = {0x04, 0x00, 0x10, 0x0a, 0x02, 0x5e, 0x00, 0x07};
  const unsigned char P_FULL[8] = {0x07, 0x40, 0x02, 0x03, 0x01, 0x00, 0x00, 0x00};
  const unsigned char P_NORMAL[8] = {0x86, 0x80, 0x20, 0x05, 0x8a, 0x01, 0xf0, 0x42};
  const unsigned char P_ABORT[8] = {0x04, 0xc0, 0x08, 0x02, 0x10, 0x20, 0x30, 0x40};
  const unsigned char P_ROONLY[8] = {0x40, 0x00, 0x00, 0x00, 0x66, 0x77, 0x88, 0x99};
  const unsigned char P_CREATE[8] = {0x18, 0x20, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00};

  /* An empty store: the marker and one empty active file. */
  s = gen_open("empty", 0, NULL);
  OK(bc_close(s));
  emit2("empty", P_ALL, P_CREATE);

  /* One active file, no hint. */
  s = gen_open("basic", 0, NULL);
  puts_n(s, 0, 24, 300);
  OK(bc_put(s, "", 0, 9, "empty key", 9));
  deletes_n(s, 0, 24, 5);
  OK(bc_close(s));
  emit2("basic", P_ALL, P_FULL);

  /* Many small keys (keydir growth). */
  s = gen_open("many", 0, NULL);
  puts_n(s, 0, 400, 4);
  OK(bc_close(s));
  emit("many", "fix", P_SMALL, 0);

  /* Rotation: several sealed files with hints. */
  s = gen_open("rotate", SMALL, NULL);
  puts_n(s, 0, 40, 500);
  puts_n(s, 10, 10, 200); /* overwrites */
  deletes_n(s, 0, 40, 3);
  OK(bc_close(s));
  emit2("rotate", P_SMALL, P_NORMAL);

  /* Transactions: commit, rollback, savepoints, abort, across rotations. */
  s = gen_open("txn", SMALL, NULL);
  puts_n(s, 0, 8, 100);
  txn_scenario(s);
  OK(bc_close(s));
  emit2("txn", P_ABORT, P_ALL);

  /* A transaction open at a kill -9: its records in the sealed files. */
  s = gen_open("txnopen", SMALL, NULL);
  puts_n(s, 0, 6, 100);
  {
    unsigned char v[900];
    gen_val(v, sizeof v, 3);
    bc_txn *t;
    OK(bc_txn_begin(s, &t));
    for (unsigned i = 0; i < 8; i++) {
      char k[16];
      int n = snprintf(k, sizeof k, "open-%u", i);
      OK(bc_txn_put(t, k, (size_t)n, 0, v, sizeof v));
    }
    copy_store("txnopen", "txnopen-kill");
    OK(bc_txn_commit(t));
  }
  OK(bc_close(s));
  emit2("txnopen-kill", P_SMALL, P_ALL);

  /* A finished merge, then more writes. */
  s = gen_open("merged", SMALL, NULL);
  puts_n(s, 0, 30, 400);
  deletes_n(s, 0, 30, 4);
  OK(bc_merge(s, NULL));
  puts_n(s, 25, 10, 300);
  deletes_n(s, 25, 10, 2);
  OK(bc_close(s));
  emit2("merged", P_ALL, P_SMALL);

  /* A merge after its commit point whose install failed: MERGE, the outputs
  ** still .merging, the inputs still there. */
  {
    gen_io g = {".data.merging"};
    bc_io io = {&g, g_open, g_pread, g_pwrite, g_fsync, g_ftruncate, g_rename,
                g_unlink, g_close};
    s = gen_open("mergepend", SMALL, &io);
    puts_n(s, 0, 24, 400);
    deletes_n(s, 0, 24, 3);
    bc_status st = bc_merge(s, NULL);
    if (st != BC_IOERR) fail_st("bc_merge with a failing rename", st);
    OK(bc_close(s));
  }
  emit2("mergepend", P_ALL, P_FULL);
  emit("mergepend", "ro", P_ROONLY, 0);
  /* The same before the commit point: no MERGE (or only MERGE.tmp). */
  copy_store("mergepend", "mergeearly");
  file_in(p, "mergeearly", "MERGE");
  if (unlink(p) != 0) die("cannot remove '%s'", p);
  emit("mergeearly", "fix", P_SMALL, 0);
  copy_store("mergepend", "mergetmp");
  file_in(p, "mergetmp", "MERGE");
  file_in(q, "mergetmp", "MERGE.tmp");
  if (rename(p, q) != 0) die("cannot rename '%s'", p);
  emit("mergetmp", "raw", P_ALL, 1);

  /* A hint being written at the crash: .hint.tmp beside a sealed file. */
  copy_store("rotate", "hinttmp");
  {
    file_in(p, "hinttmp", "0000000001.hint");
    file_in(q, "hinttmp", "0000000001.hint.tmp");
    unsigned char *b;
    size_t n;
    if (read_whole(p, &b, &n) != 0 || write_whole(q, b, n) != 0) die("cannot copy '%s'", p);
    free(b);
    unlink(p);
  }
  emit("hinttmp", "fix", P_ALL, 0);

  /* A torn tail: the newest file cut inside its last record. */
  copy_store("basic", "torn");
  {
    char name[32];
    snprintf(name, sizeof name, "%010u.data", newest_data("torn", 0));
    file_in(p, "torn", name);
    truncate_to(p, file_size(p) - 7);
  }
  emit2("torn", P_ALL, P_SMALL);

  /* A damaged record inside a sealed file (raw: the harness would fix it)
  ** and a damaged record in the tail with valid records after it. */
  copy_store("rotate", "damaged");
  file_in(p, "damaged", "0000000002.data");
  flip_byte(p, 32 + 40);
  {
    char name[32];
    snprintf(name, sizeof name, "%010u.data", newest_data("damaged", 0));
    file_in(q, "damaged", name);
    if (file_size(q) > 80) flip_byte(q, 32 + 36);
  }
  emit("damaged", "raw", P_ALL, 1);
  emit("damaged", "raw-ro", P_ROONLY, 1);

  /* A crash while creating the next file: the newest data file holds only
  ** part of its header. */
  copy_store("rotate", "newhdr");
  {
    char name[32];
    uint32_t id = newest_data("newhdr", 1) + 1;
    snprintf(name, sizeof name, "%010u.data", id);
    file_in(q, "newhdr", name);
    unsigned char h[32];
    bc_file_header_encode(h, id, 0);
    if (write_whole(q, h, 20) != 0) die("cannot write '%s'", q);
  }
  emit("newhdr", "raw", P_FULL, 1);

  /* A stale hint: its data file grew after it was written. */
  copy_store("rotate", "stalehint");
  {
    file_in(p, "stalehint", "0000000001.data");
    int fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0 || write(fd, "garbage!", 8) != 8) die("cannot append to '%s'", p);
    close(fd);
  }
  emit("stalehint", "raw", P_ALL, 1);

  rmrf(g_work);
  printf("fuzz_replay: wrote %u seeds into %s\n", g_nseeds, outdir);
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--make-seeds") == 0) {
    make_seeds(argv[2]);
    return 0;
  }
  if (argc < 2 || argv[1][0] == '-') {
    fprintf(stderr,
            "usage: fuzz_replay FILE-OR-DIR...\n"
            "       fuzz_replay --make-seeds OUTDIR\n");
    return 2;
  }
  const char *t = getenv("FUZZ_REPLAY_TIMEOUT");
  if (t && *t) g_timeout = (unsigned)strtoul(t, NULL, 10);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  for (int i = 1; i < argc; i++) run_path(argv[i]);
  printf("fuzz_replay: %lu inputs, 0 crashes\n", n_inputs);
  return 0;
}
