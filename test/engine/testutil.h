/*
** testutil.h -- shared helpers of the engine's cmocka tests (header-only).
**
**   - fixtures: a fresh mkdtemp directory under /tmp per test, removed in the
**     teardown (also when an assertion failed);
**   - file surgery: size, flip a byte, truncate, append, copy a directory,
**     list the store's files, fingerprint a directory;
**   - deterministic keys and values, and an in-memory oracle ("model") of
**     what the store must hold, checked key by key;
**   - tio: a bc_io that counts calls, classifies fsyncs (data file, hint,
**     directory), and injects faults: fail the k-th counted call (once, or
**     from then on), optionally writing half the bytes first, and optionally
**     copying the store directory at the instant of the fault (the state a
**     kill -9 at that point would leave, since the engine writes through).
*/
#ifndef BC_TESTUTIL_H
#define BC_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* 1 in an AddressSanitizer build (whose allocator bypasses mallinfo2). */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "bitcask.h"
#include "internal.h"

/* Helpers a test file does not use must not trip -Wunused-function. */
#define TU_FN static __attribute__((unused))

/* ------------------------------------------------------------- fixture */

typedef struct tu_fix {
  char base[PATH_MAX]; /* a fresh directory, removed by the teardown */
} tu_fix;

TU_FN int tu_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(p) == 0 || errno == ENOENT ? 0 : -1;
}

/* rm -rf path (missing is fine). */
TU_FN void tu_rmrf(const char *path) {
  struct stat sb;
  if (lstat(path, &sb) != 0) return;
  (void)nftw(path, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

TU_FN int tu_setup(void **state) {
  tu_fix *f = calloc(1, sizeof *f);
  if (!f) return -1;
  snprintf(f->base, sizeof f->base, "/tmp/bctest-XXXXXX");
  if (!mkdtemp(f->base)) {
    free(f);
    return -1;
  }
  *state = f;
  return 0;
}

TU_FN int tu_teardown(void **state) {
  tu_fix *f = *state;
  if (f) {
    tu_rmrf(f->base);
    free(f);
  }
  *state = NULL;
  return 0;
}

#define TU_TEST(fn) cmocka_unit_test_setup_teardown(fn, tu_setup, tu_teardown)

/* A fixture like tu_setup's, on tmpfs (/dev/shm) when there is one: for the
** tests whose cost is creating, renaming and unlinking thousands of files,
** not what a disk does with them.  tu_teardown removes it. */
TU_FN int tu_setup_shm(void **state) {
  struct stat sb;
  if (stat("/dev/shm", &sb) != 0 || !S_ISDIR(sb.st_mode) || access("/dev/shm", W_OK) != 0)
    return tu_setup(state);
  tu_fix *f = calloc(1, sizeof *f);
  if (!f) return -1;
  snprintf(f->base, sizeof f->base, "/dev/shm/bctest-XXXXXX");
  if (!mkdtemp(f->base)) {
    free(f);
    return tu_setup(state);
  }
  *state = f;
  return 0;
}

#define TU_TEST_SHM(fn) cmocka_unit_test_setup_teardown(fn, tu_setup_shm, tu_teardown)

/* out = base "/" name (printf-style name). */
TU_FN void __attribute__((format(printf, 2, 3)))
tu_path(char out[PATH_MAX], const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out, PATH_MAX, fmt, ap);
  va_end(ap);
  assert_true(n > 0 && n < PATH_MAX);
}

/* ------------------------------------------------------- file surgery */

TU_FN long long tu_file_size(const char *path) {
  struct stat sb;
  if (stat(path, &sb) != 0) return -1;
  return (long long)sb.st_size;
}

TU_FN int tu_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

TU_FN unsigned char *tu_read_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  struct stat sb;
  assert_int_equal(fstat(fd, &sb), 0);
  size_t n = (size_t)sb.st_size;
  unsigned char *p = malloc(n ? n : 1);
  assert_non_null(p);
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, p + got, n - got, (off_t)got);
    assert_true(r > 0);
    got += (size_t)r;
  }
  close(fd);
  *len = n;
  return p;
}

TU_FN void tu_write_file(const char *path, const void *data, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, n), (ssize_t)n);
  close(fd);
}

TU_FN void tu_append_file(const char *path, const void *data, size_t n) {
  int fd = open(path, O_WRONLY | O_APPEND);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, n), (ssize_t)n);
  close(fd);
}

/* XOR the byte at off with mask. */
TU_FN void tu_flip(const char *path, long long off, unsigned char mask) {
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  unsigned char c;
  assert_int_equal(pread(fd, &c, 1, off), 1);
  c ^= mask;
  assert_int_equal(pwrite(fd, &c, 1, off), 1);
  close(fd);
}

TU_FN void tu_truncate(const char *path, long long len) {
  assert_int_equal(truncate(path, len), 0);
}

/* Copy the regular files of src into dst (created; must not exist). */
TU_FN int tu_copy_dir(const char *src, const char *dst) {
  if (mkdir(dst, 0755) != 0) return -1;
  DIR *d = opendir(src);
  if (!d) return -1;
  struct dirent *de;
  char from[PATH_MAX + NAME_MAX + 2], to[PATH_MAX + NAME_MAX + 2];
  static unsigned char buf[1 << 16];
  int rc = 0;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    snprintf(from, sizeof from, "%s/%s", src, de->d_name);
    snprintf(to, sizeof to, "%s/%s", dst, de->d_name);
    struct stat sb;
    if (stat(from, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0) rc = -1;
    ssize_t n;
    while (rc == 0 && (n = read(in, buf, sizeof buf)) > 0)
      if (write(out, buf, (size_t)n) != n) rc = -1;
    if (in >= 0) close(in);
    if (out >= 0) close(out);
  }
  closedir(d);
  return rc;
}

/* Does name end with suffix? */
TU_FN int tu_ends(const char *name, const char *suffix) {
  size_t n = strlen(name), m = strlen(suffix);
  return n >= m && strcmp(name + n - m, suffix) == 0;
}

/* Number of entries of dir whose name is "<10 digits><suffix>" exactly. */
TU_FN int tu_count_files(const char *dir, const char *suffix) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *de;
  int n = 0;
  while ((de = readdir(d)) != NULL) {
    uint32_t id;
    if (strlen(de->d_name) == 10 + strlen(suffix) && tu_ends(de->d_name, suffix) &&
        sscanf(de->d_name, "%10u", &id) == 1)
      n++;
  }
  closedir(d);
  return n;
}

/* Number of entries of dir (but . and ..). */
TU_FN int tu_count_entries(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *de;
  int n = 0;
  while ((de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) n++;
  closedir(d);
  return n;
}

TU_FN int tu_cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* Sorted ids of the "<id>.data" files of dir; returns how many (<= cap). */
TU_FN size_t tu_data_ids(const char *dir, uint32_t *ids, size_t cap) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *de;
  size_t n = 0;
  while ((de = readdir(d)) != NULL) {
    uint32_t id;
    if (strlen(de->d_name) == 15 && tu_ends(de->d_name, ".data") &&
        sscanf(de->d_name, "%10u", &id) == 1) {
      assert_true(n < cap);
      ids[n++] = id;
    }
  }
  closedir(d);
  qsort(ids, n, sizeof *ids, tu_cmp_u32);
  return n;
}

/* A fingerprint of a directory: "name:size:crc\n" per entry, sorted by name.
** Caller frees. */
TU_FN int tu_cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}
TU_FN char *tu_fingerprint(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  char *names[512];
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    assert_true(n < 512);
    names[n++] = strdup(de->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof *names, tu_cmp_str);
  size_t cap = 64 + n * (NAME_MAX + 48), len = 0;
  char *out = malloc(cap);
  assert_non_null(out);
  out[0] = 0;
  for (size_t i = 0; i < n; i++) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, names[i]);
    struct stat sb;
    unsigned long crc = 0;
    long long size = -1;
    if (lstat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
      size_t l;
      unsigned char *data = tu_read_file(p, &l);
      crc = crc32(0, data, (uInt)l);
      size = (long long)l;
      free(data);
    }
    len += (size_t)snprintf(out + len, cap - len, "%s:%lld:%08lx\n", names[i], size, crc);
    free(names[i]);
  }
  return out;
}

/* --------------------------------------------------------- keys, values */

/* Key number i: "key:%06zu" (10 bytes). */
TU_FN size_t tu_key(char buf[32], size_t i) {
  return (size_t)snprintf(buf, 32, "key:%06zu", i);
}

/* The number i of a tu_key()-made key (klen bytes, not NUL-terminated). */
TU_FN size_t tu_key_num(const void *key, size_t klen) {
  char b[32];
  assert_true(klen > 4 && klen < sizeof b);
  memcpy(b, key, klen);
  b[klen] = 0;
  assert_memory_equal(b, "key:", 4);
  return (size_t)strtoul(b + 4, NULL, 10);
}

/* Deterministic value bytes of key i, version ver. */
TU_FN void tu_fill(unsigned char *p, size_t len, size_t i, unsigned ver) {
  uint32_t x = (uint32_t)(i * 2654435761u) ^ (ver * 40503u) ^ 0x9e3779b9u;
  for (size_t j = 0; j < len; j++) {
    x = x * 1103515245u + 12345u;
    p[j] = (unsigned char)(x >> 24);
  }
}

/* A value length that varies with i and ver, in [lo, lo + span). */
TU_FN size_t tu_vlen(size_t i, unsigned ver, size_t lo, size_t span) {
  return lo + (size_t)((i * 7919u + ver * 104729u) % span);
}

/* ------------------------------------------------------------- oracle */

typedef struct tu_model {
  size_t n;
  unsigned char **v; /* owned; NULL when absent */
  size_t *len;
  uint8_t *meta;
} tu_model;

TU_FN void tu_model_init(tu_model *m, size_t n) {
  m->n = n;
  m->v = calloc(n, sizeof *m->v);
  m->len = calloc(n, sizeof *m->len);
  m->meta = calloc(n, sizeof *m->meta);
  assert_true(m->v && m->len && m->meta);
}

TU_FN void tu_model_free(tu_model *m) {
  for (size_t i = 0; i < m->n; i++) free(m->v[i]);
  free(m->v);
  free(m->len);
  free(m->meta);
  memset(m, 0, sizeof *m);
}

TU_FN void tu_model_copy(tu_model *dst, const tu_model *src) {
  tu_model_init(dst, src->n);
  for (size_t i = 0; i < src->n; i++) {
    if (!src->v[i]) continue;
    dst->v[i] = malloc(src->len[i] ? src->len[i] : 1);
    assert_non_null(dst->v[i]);
    memcpy(dst->v[i], src->v[i], src->len[i]);
    dst->len[i] = src->len[i];
    dst->meta[i] = src->meta[i];
  }
}

TU_FN void tu_model_set(tu_model *m, size_t i, const void *v, size_t len, uint8_t meta) {
  free(m->v[i]);
  m->v[i] = malloc(len ? len : 1);
  assert_non_null(m->v[i]);
  if (len) memcpy(m->v[i], v, len);
  m->len[i] = len;
  m->meta[i] = meta;
}

TU_FN void tu_model_del(tu_model *m, size_t i) {
  free(m->v[i]);
  m->v[i] = NULL;
  m->len[i] = 0;
  m->meta[i] = 0;
}

TU_FN size_t tu_model_count(const tu_model *m) {
  size_t c = 0;
  for (size_t i = 0; i < m->n; i++) c += m->v[i] != NULL;
  return c;
}

/* Put key i with value version ver (length from tu_vlen) into store and model. */
TU_FN bc_status tu_put_ver(bc_store *s, tu_model *m, size_t i, unsigned ver,
                            size_t lo, size_t span) {
  char k[32];
  size_t kl = tu_key(k, i), vl = tu_vlen(i, ver, lo, span);
  unsigned char *v = malloc(vl ? vl : 1);
  assert_non_null(v);
  tu_fill(v, vl, i, ver);
  uint8_t meta = (uint8_t)(i + ver);
  bc_status st = bc_put(s, k, kl, meta, v, vl);
  if (st == BC_OK && m) tu_model_set(m, i, v, vl, meta);
  free(v);
  return st;
}

TU_FN bc_status tu_del(bc_store *s, tu_model *m, size_t i) {
  char k[32];
  size_t kl = tu_key(k, i);
  bc_status st = bc_delete(s, k, kl);
  if (st == BC_OK && m) tu_model_del(m, i);
  return st;
}

/* Assert that the store holds exactly what the model says (through the
** keydir, reads and the count).  `where` names the check in messages. */
TU_FN void tu_model_check(bc_store *s, const tu_model *m, const char *where) {
  bc_buf b = {0};
  for (size_t i = 0; i < m->n; i++) {
    char k[32];
    size_t kl = tu_key(k, i);
    const void *v = NULL;
    bc_info info;
    memset(&info, 0, sizeof info);
    bc_status st = bc_get(s, k, kl, &b, &v, &info);
    if (m->v[i]) {
      if (st != BC_OK)
        fail_msg("%s: key %zu: bc_get gave %s (%s), want BC_OK", where, i,
                 bc_status_name(st), bc_errmsg(s));
      if (info.value_size != m->len[i] || (m->len[i] && memcmp(v, m->v[i], m->len[i]) != 0))
        fail_msg("%s: key %zu: wrong value (size %u, want %zu)", where, i,
                 info.value_size, m->len[i]);
      if (info.meta != m->meta[i])
        fail_msg("%s: key %zu: meta %u, want %u", where, i, info.meta, m->meta[i]);
    } else if (st != BC_NOTFOUND) {
      fail_msg("%s: key %zu: bc_get gave %s, want BC_NOTFOUND (deleted/absent)",
               where, i, bc_status_name(st));
    }
  }
  bc_buf_free(&b);
  if (bc_count(s) != tu_model_count(m))
    fail_msg("%s: bc_count %llu, want %zu", where, (unsigned long long)bc_count(s),
             tu_model_count(m));
}

/* ---------------------------------------------------------- open helpers */

TU_FN bc_store *tu_open_opts(const char *dir, const bc_options *o) {
  bc_store *s = NULL;
  char err[512] = "";
  bc_status st = bc_open(dir, o, &s, err, sizeof err);
  if (st != BC_OK) fail_msg("bc_open(%s): %s: %s", dir, bc_status_name(st), err);
  assert_non_null(s);
  return s;
}

/* Open (create) with the given max_file_size (0: default) and sync mode. */
TU_FN bc_store *tu_open(const char *dir, uint64_t max_file_size, bc_sync_mode sync,
                         const bc_io *io) {
  bc_options o;
  bc_options_init(&o);
  o.create = 1;
  o.max_file_size = max_file_size;
  o.sync = sync;
  o.io = io;
  return tu_open_opts(dir, &o);
}

TU_FN bc_stats tu_stats(bc_store *s) {
  bc_stats st;
  assert_int_equal(bc_stats_get(s, &st), BC_OK);
  return st;
}

#define TU_OK(call)                                                              \
  do {                                                                           \
    bc_status tu_st_ = (call);                                                   \
    if (tu_st_ != BC_OK) fail_msg("%s: %s", #call, bc_status_name(tu_st_));      \
  } while (0)

/* --------------------------------------------------------------- tio */

enum {
  TIO_OPEN = 1u << 0,
  TIO_PREAD = 1u << 1,
  TIO_PWRITE = 1u << 2,
  TIO_FSYNC = 1u << 3,
  TIO_FTRUNCATE = 1u << 4,
  TIO_RENAME = 1u << 5,
  TIO_UNLINK = 1u << 6,
  TIO_CLOSE = 1u << 7,
  TIO_ALL_BUT_CLOSE = 0x7Fu
};

#define TIO_MAXFD 4096
#define TIO_MAXSNAP 2048

typedef struct tio {
  bc_io io;             /* ctx points here */
  /* Plain counters, always kept. */
  long n_open, n_pread, n_pwrite, n_fsync, n_ftruncate, n_rename, n_unlink, n_close;
  long fsync_data, fsync_hint, fsync_dir, fsync_other;
  long long pread_data_bytes, pread_hint_bytes;
  int real_fsync;       /* 1: call fsync(2); 0: count only (fast tests) */
  /* Fault injection over "steps": calls whose kind is in mask, counted only
  ** while counting != 0. */
  int counting;
  unsigned mask;
  long steps;
  long fail_at;         /* fail the fail_at-th step (1-based); 0: never */
  int sticky;           /* and every step after it */
  int fail_errno;       /* EIO, ENOSPC... */
  int short_first;      /* a failing pwrite first writes half of its bytes */
  int fail_next_pwrite; /* internal: the continuation of a short write fails */
  int fail_ftruncate;   /* every ftruncate fails while set (a second fault) */
  long faults;          /* faults injected */
  long merge_commit_step; /* step number of the last rename to ".../MERGE" */
  char snap_src[PATH_MAX], snap_dst[PATH_MAX]; /* copy src to dst at the fault */
  int snapped;
  /* Copy snap_src to "<snap_every>/<step>" before every counted step, and
  ** note cur_tag (set by the test, e.g. the operation under way) for it. */
  char snap_every[PATH_MAX];
  long cur_tag;
  long snap_tag[TIO_MAXSNAP];
  char *fdpath[TIO_MAXFD];
  int fddir[TIO_MAXFD];
} tio;

TU_FN int tio_fault(tio *t, unsigned kind) {
  if (!t->counting || !(t->mask & kind)) return 0;
  t->steps++;
  if (t->snap_every[0] && t->steps < TIO_MAXSNAP) {
    char dst[PATH_MAX + 32];
    snprintf(dst, sizeof dst, "%s/%ld", t->snap_every, t->steps);
    assert_int_equal(tu_copy_dir(t->snap_src, dst), 0);
    t->snap_tag[t->steps] = t->cur_tag;
  }
  if (!t->fail_at) return 0;
  if (t->steps == t->fail_at) {
    if (t->snap_src[0] && !t->snapped) {
      assert_int_equal(tu_copy_dir(t->snap_src, t->snap_dst), 0);
      t->snapped = 1;
    }
    t->faults++;
    return 1;
  }
  if (t->sticky && t->steps > t->fail_at) {
    t->faults++;
    return 1;
  }
  return 0;
}

TU_FN int tio_open(void *ctx, const char *path, int flags, mode_t mode) {
  tio *t = ctx;
  t->n_open++;
  if (tio_fault(t, TIO_OPEN)) {
    errno = t->fail_errno;
    return -1;
  }
  int fd = open(path, flags | O_CLOEXEC, mode);
  if (fd >= 0 && fd < TIO_MAXFD) {
    free(t->fdpath[fd]);
    t->fdpath[fd] = strdup(path);
    t->fddir[fd] = (flags & O_DIRECTORY) != 0;
  }
  return fd;
}

TU_FN const char *tio_fdpath(tio *t, int fd) {
  return fd >= 0 && fd < TIO_MAXFD && t->fdpath[fd] ? t->fdpath[fd] : "";
}

TU_FN ssize_t tio_pread(void *ctx, int fd, void *buf, size_t n, off_t off) {
  tio *t = ctx;
  t->n_pread++;
  if (tio_fault(t, TIO_PREAD)) {
    errno = t->fail_errno;
    return -1;
  }
  ssize_t r = pread(fd, buf, n, off);
  if (r > 0) {
    const char *p = tio_fdpath(t, fd);
    if (tu_ends(p, ".data")) t->pread_data_bytes += r;
    if (tu_ends(p, ".hint")) t->pread_hint_bytes += r;
  }
  return r;
}

TU_FN ssize_t tio_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off) {
  tio *t = ctx;
  t->n_pwrite++;
  if (t->fail_next_pwrite) {
    t->fail_next_pwrite = 0;
    t->faults++;
    errno = t->fail_errno;
    return -1;
  }
  if (tio_fault(t, TIO_PWRITE)) {
    if (t->short_first && n > 1) {
      t->fail_next_pwrite = 1;
      return pwrite(fd, buf, n / 2, off);
    }
    errno = t->fail_errno;
    return -1;
  }
  return pwrite(fd, buf, n, off);
}

TU_FN int tio_fsync(void *ctx, int fd) {
  tio *t = ctx;
  t->n_fsync++;
  if (tio_fault(t, TIO_FSYNC)) {
    errno = t->fail_errno;
    return -1;
  }
  const char *p = tio_fdpath(t, fd);
  if (fd >= 0 && fd < TIO_MAXFD && t->fddir[fd])
    t->fsync_dir++;
  else if (tu_ends(p, ".data") || tu_ends(p, ".data.merging"))
    t->fsync_data++;
  else if (strstr(p, ".hint"))
    t->fsync_hint++;
  else
    t->fsync_other++;
  return t->real_fsync ? fsync(fd) : 0;
}

TU_FN int tio_ftruncate(void *ctx, int fd, off_t len) {
  tio *t = ctx;
  t->n_ftruncate++;
  if (tio_fault(t, TIO_FTRUNCATE) || t->fail_ftruncate) {
    errno = t->fail_errno;
    return -1;
  }
  return ftruncate(fd, len);
}

TU_FN int tio_rename(void *ctx, const char *from, const char *to) {
  tio *t = ctx;
  t->n_rename++;
  if (tio_fault(t, TIO_RENAME)) {
    errno = t->fail_errno;
    return -1;
  }
  int rc = rename(from, to);
  if (rc == 0 && tu_ends(to, "/MERGE")) t->merge_commit_step = t->steps;
  return rc;
}

TU_FN int tio_unlink(void *ctx, const char *path) {
  tio *t = ctx;
  t->n_unlink++;
  if (tio_fault(t, TIO_UNLINK)) {
    errno = t->fail_errno;
    return -1;
  }
  return unlink(path);
}

TU_FN int tio_close(void *ctx, int fd) {
  tio *t = ctx;
  t->n_close++;
  if (fd >= 0 && fd < TIO_MAXFD) {
    free(t->fdpath[fd]);
    t->fdpath[fd] = NULL;
    t->fddir[fd] = 0;
  }
  /* Never fail a close: the descriptor must go whatever happens. */
  return close(fd);
}

TU_FN void tio_init(tio *t) {
  memset(t, 0, sizeof *t);
  t->io.ctx = t;
  t->io.open = tio_open;
  t->io.pread = tio_pread;
  t->io.pwrite = tio_pwrite;
  t->io.fsync = tio_fsync;
  t->io.ftruncate = tio_ftruncate;
  t->io.rename = tio_rename;
  t->io.unlink = tio_unlink;
  t->io.close = tio_close;
  t->real_fsync = 1;
  t->fail_errno = EIO;
  t->mask = TIO_ALL_BUT_CLOSE;
}

/* Zero the counters (not the fd table, not the settings). */
TU_FN void tio_reset_counts(tio *t) {
  t->n_open = t->n_pread = t->n_pwrite = t->n_fsync = t->n_ftruncate = 0;
  t->n_rename = t->n_unlink = t->n_close = 0;
  t->fsync_data = t->fsync_hint = t->fsync_dir = t->fsync_other = 0;
  t->pread_data_bytes = t->pread_hint_bytes = 0;
  t->steps = 0;
  t->faults = 0;
}

TU_FN void tio_free(tio *t) {
  for (int i = 0; i < TIO_MAXFD; i++) {
    free(t->fdpath[i]);
    t->fdpath[i] = NULL;
  }
}

/* Number of fds the tio saw opened and not yet closed. */
TU_FN int tio_open_fds(const tio *t) {
  int n = 0;
  for (int i = 0; i < TIO_MAXFD; i++) n += t->fdpath[i] != NULL;
  return n;
}

#endif /* BC_TESTUTIL_H */
