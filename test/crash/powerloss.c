/*
** powerloss.c -- simulated power loss: what survives is what fsync made
** durable, plus any part of what was not, in any order, sector by sector.
**
**   build/powerloss [--states N] [--seed S] [--dir D] [--point K --variant V
**                   [--keep]]
**
** 1. A workload runs through the engine API on a real directory under D
**    (default /dev/shm, else $TMPDIR, else /tmp) with a bc_io that does the
**    real I/O and logs, in order, every write, truncate, create, rename,
**    unlink and fsync (of a file, or of the directory), with the bytes
**    written.  The workload (sync=full, max_file_size 8 KiB): transactions
**    of several puts and deletes with small and large (several KiB) values
**    over a few keys, savepoints rolled back, rolled-back transactions (some
**    after bc_txn_prepare: a synced COMMIT voided by its abort),
**    standalone puts and deletes each followed by bc_sync, merges, and
**    closes and reopens of the writer.  For each commit that returned BC_OK
**    it notes the log position and what the commit changed.
** 2. Crash states.  For a crash after log op k the file system is replayed
**    from the log: per inode, the content as of its last fsync ("durable")
**    plus the ops after it; per directory, the entries as of its last fsync
**    plus the create/rename/unlink ops after it.  Variant 0 of a point
**    keeps everything (what kill -9 leaves), variant 1 only what is
**    durable; the others draw, per inode, a prefix of its unsynced ops and
**    then a torn last op or a random mix of its unsynced 512-byte sectors
**    (each the durable bytes -- zeros past the durable size --, the new
**    bytes, or garbage), and a random subset of the unsynced directory ops.
** 3. Each state is materialized into a fresh directory and checked: the
**    store opens as a writer; every transaction whose commit returned is
**    there; the one in flight, if any, is there whole or not at all; every
**    key reads without error (bc_get of each key, and a bc_iter walk
**    reading each value) and holds its expected value; a put + bc_sync
**    after the reopen works, and after a close and another open it and
**    every other key are still there.
**
** The states are spread evenly over the crash points (N / (ops + 1)
** variants each).  A failure prints the seed, crash point and variant;
** --point K --variant V rebuilds just that state (--keep leaves its
** directory).  Prints the counts, then "N passed, N failed"; exits 1 on any
** failure.
*/
#include "bitcask.h"
#include "../rng.h"

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

#define SECTOR 512
#define MAX_FILE 8192
#define NKEYS 10
#define MAX_FD 4096

/* ------------------------------------------------------------- utilities */


static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "powerloss: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) die("out of memory");
  return p;
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) die("out of memory");
  return p;
}

static char *xstrdup(const char *s) {
  char *p = strdup(s);
  if (!p) die("out of memory");
  return p;
}

/* A growable byte string: a file's content. */
typedef struct bytes {
  unsigned char *p;
  size_t len, cap;
} bytes;

static void bytes_resize(bytes *b, size_t len) {
  if (len > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < len) cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
  }
  if (len > b->len) memset(b->p + b->len, 0, len - b->len);
  b->len = len;
}

static void bytes_write(bytes *b, uint64_t off, const unsigned char *p, size_t n) {
  if (off + n > b->len) bytes_resize(b, (size_t)(off + n));
  memcpy(b->p + off, p, n);
}

static void bytes_copy(bytes *dst, const bytes *src) {
  dst->len = 0;
  bytes_resize(dst, src->len);
  if (src->len) memcpy(dst->p, src->p, src->len);
}

static void bytes_free(bytes *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

static void rmrf(const char *path) {
  DIR *d = opendir(path);
  if (d) {
    struct dirent *de;
    char p[PATH_MAX];
    while ((de = readdir(d)) != NULL) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
      snprintf(p, sizeof p, "%s/%s", path, de->d_name);
      rmrf(p);
    }
    closedir(d);
    rmdir(path);
  } else {
    unlink(path);
  }
}

/* ------------------------------------------------------- the logging I/O */

enum { OP_WRITE, OP_TRUNC, OP_FSYNC, OP_CREATE, OP_RENAME, OP_UNLINK, OP_DIRSYNC };

typedef struct op {
  int kind;
  int ino;              /* WRITE, TRUNC, FSYNC, CREATE */
  uint64_t off, len;    /* WRITE: where and how much; TRUNC: len */
  unsigned char *data;  /* WRITE: the bytes; owned */
  char *name, *name2;   /* CREATE, UNLINK: name; RENAME: name -> name2; owned */
} op;

typedef struct name_ino {
  char *name;
  int ino;
} name_ino;

/* A name -> inode map: a directory's entries. */
typedef struct dirmap {
  name_ino *e;
  size_t n, cap;
} dirmap;

static int dm_find(const dirmap *d, const char *name) {
  for (size_t i = 0; i < d->n; i++)
    if (strcmp(d->e[i].name, name) == 0) return (int)i;
  return -1;
}

static void dm_set(dirmap *d, const char *name, int ino) {
  int i = dm_find(d, name);
  if (i >= 0) {
    d->e[i].ino = ino;
    return;
  }
  if (d->n == d->cap) {
    d->cap = d->cap ? d->cap * 2 : 16;
    d->e = xrealloc(d->e, d->cap * sizeof *d->e);
  }
  d->e[d->n].name = xstrdup(name);
  d->e[d->n].ino = ino;
  d->n++;
}

static void dm_del(dirmap *d, const char *name) {
  int i = dm_find(d, name);
  if (i < 0) return;
  free(d->e[i].name);
  d->e[i] = d->e[--d->n];
}

static void dm_free(dirmap *d) {
  for (size_t i = 0; i < d->n; i++) free(d->e[i].name);
  free(d->e);
  memset(d, 0, sizeof *d);
}

static void dm_copy(dirmap *dst, const dirmap *src) {
  dm_free(dst);
  for (size_t i = 0; i < src->n; i++) dm_set(dst, src->e[i].name, src->e[i].ino);
}

/* Apply a directory op (a no-op when it cannot apply: renaming or removing
** a name that is not there). */
static void dm_apply(dirmap *d, const op *o) {
  if (o->kind == OP_CREATE) {
    dm_set(d, o->name, o->ino);
  } else if (o->kind == OP_RENAME) {
    int i = dm_find(d, o->name);
    if (i < 0) return;
    int ino = d->e[i].ino;
    dm_del(d, o->name);
    dm_set(d, o->name2, ino);
  } else if (o->kind == OP_UNLINK) {
    dm_del(d, o->name);
  }
}

typedef struct logio {
  char dir[PATH_MAX];
  size_t dirlen;
  op *ops;
  size_t nops, cap;
  dirmap names; /* the directory as it is now */
  int nino;
  int fdkind[MAX_FD]; /* 0 not ours, 1 file, 2 directory */
  int fdino[MAX_FD];
} logio;

static op *log_op(logio *L, int kind) {
  if (L->nops == L->cap) {
    L->cap = L->cap ? L->cap * 2 : 1024;
    L->ops = xrealloc(L->ops, L->cap * sizeof *L->ops);
  }
  op *o = &L->ops[L->nops++];
  memset(o, 0, sizeof *o);
  o->kind = kind;
  return o;
}

/* The name of path inside the store directory, or NULL (the directory
** itself, or elsewhere). */
static const char *name_of(logio *L, const char *path) {
  if (strncmp(path, L->dir, L->dirlen) != 0 || path[L->dirlen] != '/') return NULL;
  return path + L->dirlen + 1;
}

static int l_open(void *ctx, const char *path, int flags, mode_t mode) {
  logio *L = ctx;
  const char *name = name_of(L, path);
  int is_dir = (flags & O_DIRECTORY) || !name;
  int existed = name && dm_find(&L->names, name) >= 0;
  int fd;
  do {
    fd = open(path, flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return fd;
  if (fd >= MAX_FD) die("descriptor %d too large", fd);
  if (is_dir) {
    L->fdkind[fd] = name ? 0 : 2;
    return fd;
  }
  L->fdkind[fd] = 1;
  if (!existed) {
    op *o = log_op(L, OP_CREATE);
    o->ino = L->nino++;
    o->name = xstrdup(name);
    dm_set(&L->names, name, o->ino);
  } else if (flags & O_TRUNC) {
    op *o = log_op(L, OP_TRUNC);
    o->ino = L->names.e[dm_find(&L->names, name)].ino;
    o->len = 0;
  }
  L->fdino[fd] = L->names.e[dm_find(&L->names, name)].ino;
  return fd;
}

static ssize_t l_pread(void *ctx, int fd, void *buf, size_t n, off_t off) {
  (void)ctx;
  return pread(fd, buf, n, off);
}

static ssize_t l_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off) {
  logio *L = ctx;
  ssize_t w = pwrite(fd, buf, n, off);
  if (w > 0 && L->fdkind[fd] == 1) {
    op *o = log_op(L, OP_WRITE);
    o->ino = L->fdino[fd];
    o->off = (uint64_t)off;
    o->len = (uint64_t)w;
    o->data = xmalloc((size_t)w);
    memcpy(o->data, buf, (size_t)w);
  }
  return w;
}

static int l_fsync(void *ctx, int fd) {
  logio *L = ctx;
  int rc = fdatasync(fd);
  if (rc == 0 && L->fdkind[fd] == 1) log_op(L, OP_FSYNC)->ino = L->fdino[fd];
  if (rc == 0 && L->fdkind[fd] == 2) log_op(L, OP_DIRSYNC);
  return rc;
}

static int l_ftruncate(void *ctx, int fd, off_t len) {
  logio *L = ctx;
  int rc = ftruncate(fd, len);
  if (rc == 0 && L->fdkind[fd] == 1) {
    op *o = log_op(L, OP_TRUNC);
    o->ino = L->fdino[fd];
    o->len = (uint64_t)len;
  }
  return rc;
}

static int l_rename(void *ctx, const char *from, const char *to) {
  logio *L = ctx;
  int rc = rename(from, to);
  const char *a = name_of(L, from), *b = name_of(L, to);
  if (rc == 0 && a && b) {
    op *o = log_op(L, OP_RENAME);
    o->name = xstrdup(a);
    o->name2 = xstrdup(b);
    dm_apply(&L->names, o);
  }
  return rc;
}

static int l_unlink(void *ctx, const char *path) {
  logio *L = ctx;
  int rc = unlink(path);
  const char *a = name_of(L, path);
  if (rc == 0 && a) {
    op *o = log_op(L, OP_UNLINK);
    o->name = xstrdup(a);
    dm_apply(&L->names, o);
  }
  return rc;
}

static int l_close(void *ctx, int fd) {
  logio *L = ctx;
  if (fd >= 0 && fd < MAX_FD) L->fdkind[fd] = 0;
  return close(fd);
}

/* ------------------------------------------------------------ the model */

static const char *const KEYS[NKEYS] = {"a", "b", "k2", "k3", "k4",
                                        "k5", "k6", "k7", "k8", "k9"};

typedef struct val {
  int present;
  unsigned char *p; /* borrowed from the workload's value list */
  uint32_t len;
} val;

typedef struct model {
  val k[NKEYS];
} model;

/* One acknowledged commit: a transaction, or a standalone put or delete
** with its bc_sync.  start: log length when it began (nothing of it is in
** the log before); ack: log length when its commit returned BC_OK. */
typedef struct unit {
  size_t start, ack;
  int voided;   /* prepared, then rolled back: its synced COMMIT is voided
                ** by an abort; in flight until the rollback returned (a
                ** crash between the two leaves it committed, bitcask.h),
                ** never there after.  ack: when the rollback returned */
  int nch;
  int key[8];
  val v[8];
} unit;

typedef struct workload {
  unit *u;
  size_t nu, cap;
  unsigned char **vals; /* every value made; owned */
  size_t nvals, capvals;
  size_t merges, reopens, rollbacks;
} workload;

static unsigned char *make_value(workload *w, rng *r, uint32_t len) {
  unsigned char *p = xmalloc(len);
  for (uint32_t i = 0; i < len; i++) p[i] = (unsigned char)('!' + next(r) % 90);
  if (w->nvals == w->capvals) {
    w->capvals = w->capvals ? w->capvals * 2 : 256;
    w->vals = xrealloc(w->vals, w->capvals * sizeof *w->vals);
  }
  w->vals[w->nvals++] = p;
  return p;
}

/* Record a change of key k in unit u (a later change of the same key
** replaces an earlier one). */
static void unit_set(unit *u, int k, int present, unsigned char *p, uint32_t len) {
  int i = 0;
  while (i < u->nch && u->key[i] != k) i++;
  if (i == u->nch) {
    if (u->nch == 8) die("too many keys in one unit");
    u->nch++;
  }
  u->key[i] = k;
  u->v[i] = (val){present, p, len};
}

static void model_apply(model *m, const unit *u) {
  for (int i = 0; i < u->nch; i++) m->k[u->key[i]] = u->v[i];
}

static int val_eq(const val *a, const val *b) {
  if (a->present != b->present) return 0;
  return !a->present || (a->len == b->len && memcmp(a->p, b->p, a->len) == 0);
}

/* ----------------------------------------------------------- the workload */

#define CHECK(call)                                                            \
  do {                                                                         \
    bc_status st_ = (call);                                                    \
    if (st_ != BC_OK) die("workload: %s gave %s: %s", #call, bc_status_name(st_), \
                          s ? bc_errmsg(s) : "");                              \
  } while (0)

static uint32_t value_len(rng *r) {
  return below(r, 3) == 0 ? 2000 + below(r, 4500) : 1 + below(r, 60);
}

static bc_store *wl_open(const char *dir, const bc_io *io) {
  bc_options o;
  bc_options_init(&o);
  o.create = 1;
  o.max_file_size = MAX_FILE;
  o.sync = BC_SYNC_FULL;
  o.io = io;
  bc_store *s = NULL;
  char err[512];
  bc_status st = bc_open(dir, &o, &s, err, sizeof err);
  if (st != BC_OK) die("workload: open: %s: %s", bc_status_name(st), err);
  return s;
}

static unit *new_unit(workload *w, logio *L) {
  if (w->nu == w->cap) {
    w->cap = w->cap ? w->cap * 2 : 64;
    w->u = xrealloc(w->u, w->cap * sizeof *w->u);
  }
  unit *u = &w->u[w->nu];
  memset(u, 0, sizeof *u);
  u->start = L->nops;
  return u;
}

static void run_workload(const char *dir, logio *L, workload *w, uint64_t seed) {
  bc_io io = {L, l_open, l_pread, l_pwrite, l_fsync, l_ftruncate, l_rename, l_unlink,
              l_close};
  rng r = {seed};
  model m;
  memset(&m, 0, sizeof m);
  bc_store *s = wl_open(dir, &io);
  /* The first statement: two keys committed. */
  {
    unit *u = new_unit(w, L);
    bc_txn *t;
    CHECK(bc_txn_begin(s, &t));
    for (int k = 0; k < 2; k++) {
      unsigned char *p = make_value(w, &r, 9);
      memcpy(p, "committed", 9);
      CHECK(bc_txn_put(t, KEYS[k], strlen(KEYS[k]), 3, p, 9));
      unit_set(u, k, 1, p, 9);
    }
    CHECK(bc_txn_commit(t));
    u->ack = L->nops;
    model_apply(&m, u);
    w->nu++;
  }
  const int NUNITS = 110;
  for (int j = 0; j < NUNITS; j++) {
    uint32_t what = below(&r, 100);
    if (j % 23 == 22) {
      uint64_t rec;
      CHECK(bc_merge(s, &rec));
      w->merges++;
    }
    if (j % 37 == 36) {
      CHECK(bc_close(s));
      s = wl_open(dir, &io);
      w->reopens++;
    }
    if (what < 55) {
      /* A transaction of 2..5 writes, now and then a savepoint rolled back
      ** (its writes undone) or the whole transaction rolled back. */
      unit *u = new_unit(w, L);
      bc_txn *t;
      CHECK(bc_txn_begin(s, &t));
      model view = m;
      int nw = 2 + (int)below(&r, 4);
      int rollback = below(&r, 12) == 0;
      int sp_at = below(&r, 4) == 0 ? (int)below(&r, (uint32_t)nw) : -1;
      unsigned depth = 0;
      model at_sp = view;
      unit u_sp = *u;
      for (int i = 0; i < nw; i++) {
        if (i == sp_at) {
          CHECK(bc_txn_savepoint(t, &depth));
          at_sp = view;
          u_sp = *u;
        }
        int k = (int)below(&r, NKEYS);
        if (view.k[k].present && below(&r, 5) == 0) {
          CHECK(bc_txn_delete(t, KEYS[k], strlen(KEYS[k])));
          view.k[k] = (val){0, NULL, 0};
          unit_set(u, k, 0, NULL, 0);
        } else {
          uint32_t len = value_len(&r);
          unsigned char *p = make_value(w, &r, len);
          CHECK(bc_txn_put(t, KEYS[k], strlen(KEYS[k]), (uint8_t)k, p, len));
          view.k[k] = (val){1, p, len};
          unit_set(u, k, 1, p, len);
        }
      }
      if (sp_at >= 0) {
        CHECK(bc_txn_rollback_to(t, depth));
        view = at_sp;
        size_t start = u->start;
        *u = u_sp;
        u->start = start;
      }
      if (rollback) {
        /* Half of them after a prepare: the COMMIT is synced, then voided
        ** by the abort right after it (as when SQLite's own commit fails). */
        int prepared = below(&r, 2) != 0;
        if (prepared) CHECK(bc_txn_prepare(t));
        CHECK(bc_txn_rollback(t));
        w->rollbacks++;
        if (!prepared) continue; /* not a unit: must never show */
        u->voided = 1;
        u->ack = L->nops;
        w->nu++;
        continue;
      }
      CHECK(bc_txn_commit(t));
      u->ack = L->nops;
      model_apply(&m, u);
      w->nu++;
    } else if (what < 85) {
      unit *u = new_unit(w, L);
      int k = (int)below(&r, NKEYS);
      uint32_t len = value_len(&r);
      unsigned char *p = make_value(w, &r, len);
      CHECK(bc_put(s, KEYS[k], strlen(KEYS[k]), (uint8_t)(k + 16), p, len));
      CHECK(bc_sync(s));
      unit_set(u, k, 1, p, len);
      u->ack = L->nops;
      model_apply(&m, u);
      w->nu++;
    } else {
      int k = (int)below(&r, NKEYS);
      if (!m.k[k].present) continue;
      unit *u = new_unit(w, L);
      CHECK(bc_delete(s, KEYS[k], strlen(KEYS[k])));
      CHECK(bc_sync(s));
      unit_set(u, k, 0, NULL, 0);
      u->ack = L->nops;
      model_apply(&m, u);
      w->nu++;
    }
  }
  CHECK(bc_close(s));
}

/* ------------------------------------------------------- the crash states */

typedef struct inode {
  bytes cur, dur;  /* content now; as of its last fsync */
  size_t *pend;    /* ops since its last fsync (WRITE, TRUNC) */
  size_t npend, cappend;
} inode;

typedef struct fsim {
  const logio *L;
  inode *in;
  int nin;
  dirmap cur, dur;  /* directory now; as of its last fsync */
  size_t *dpend;    /* directory ops since its last fsync */
  size_t ndpend, capdpend;
  size_t at;        /* ops applied */
} fsim;

static void apply_data(bytes *b, const op *o) {
  if (o->kind == OP_WRITE)
    bytes_write(b, o->off, o->data, (size_t)o->len);
  else if (o->kind == OP_TRUNC)
    bytes_resize(b, (size_t)o->len);
}

static void fsim_step(fsim *F) {
  const op *o = &F->L->ops[F->at];
  size_t i = F->at++;
  switch (o->kind) {
    case OP_WRITE:
    case OP_TRUNC: {
      inode *n = &F->in[o->ino];
      apply_data(&n->cur, o);
      if (n->npend == n->cappend) {
        n->cappend = n->cappend ? n->cappend * 2 : 16;
        n->pend = xrealloc(n->pend, n->cappend * sizeof *n->pend);
      }
      n->pend[n->npend++] = i;
      break;
    }
    case OP_FSYNC: {
      inode *n = &F->in[o->ino];
      bytes_copy(&n->dur, &n->cur);
      n->npend = 0;
      break;
    }
    case OP_CREATE:
    case OP_RENAME:
    case OP_UNLINK:
      dm_apply(&F->cur, o);
      if (F->ndpend == F->capdpend) {
        F->capdpend = F->capdpend ? F->capdpend * 2 : 16;
        F->dpend = xrealloc(F->dpend, F->capdpend * sizeof *F->dpend);
      }
      F->dpend[F->ndpend++] = i;
      break;
    case OP_DIRSYNC:
      dm_copy(&F->dur, &F->cur);
      F->ndpend = 0;
      break;
  }
}

/* The content inode n may have after the crash, drawn from r (variant >= 2). */
static void draw_content(const fsim *F, const inode *n, rng *r, bytes *out) {
  bytes_copy(out, &n->dur);
  if (n->npend == 0) return;
  int mode = (int)below(r, 3); /* 0 prefix, 1 prefix + torn last, 2 prefix + mix */
  size_t j = mode == 0 ? below(r, (uint32_t)n->npend + 1) : 1 + below(r, (uint32_t)n->npend);
  bytes base = {0};
  for (size_t i = 0; i < j; i++) {
    if (mode == 1 && i + 1 == j) bytes_copy(&base, out);
    apply_data(out, &F->L->ops[n->pend[i]]);
  }
  if (mode == 0) {
    bytes_free(&base);
    return;
  }
  if (mode == 2) bytes_copy(&base, &n->dur);
  /* Each sector that differs from base: base's bytes (zeros past its end),
  ** the new bytes, or -- when none of it was ever durable (a block the file
  ** system allocated but never wrote) -- garbage.  A sector is written
  ** whole or not at all: the durable bytes of a sector stay. */
  for (size_t s = 0; s * SECTOR < out->len; s++) {
    size_t lo = s * SECTOR, hi = lo + SECTOR < out->len ? lo + SECTOR : out->len;
    int same = hi <= base.len && memcmp(out->p + lo, base.p + lo, hi - lo) == 0;
    if (same) continue;
    uint32_t pick = below(r, 10);
    if (pick < 4) {
      for (size_t x = lo; x < hi; x++) out->p[x] = x < base.len ? base.p[x] : 0;
    } else if (pick < 5 && lo >= n->dur.len) {
      for (size_t x = lo; x < hi; x++) out->p[x] = (unsigned char)next(r);
    }
  }
  bytes_free(&base);
}

/* Write the state of crash point F->at, variant v, into dir. */
static void materialize(const fsim *F, int v, uint64_t seed, const char *dir) {
  rng r = {seed ^ ((uint64_t)F->at << 20) ^ ((uint64_t)v * UINT64_C(0x9E3779B97F4A7C15))};
  dirmap d = {0};
  if (v == 0) {
    dm_copy(&d, &F->cur);
  } else {
    dm_copy(&d, &F->dur);
    for (size_t i = 0; v >= 2 && i < F->ndpend; i++)
      if (below(&r, 2)) dm_apply(&d, &F->L->ops[F->dpend[i]]);
  }
  if (mkdir(dir, 0755) != 0) die("mkdir %s: %s", dir, strerror(errno));
  bytes c = {0};
  for (size_t i = 0; i < d.n; i++) {
    const inode *n = &F->in[d.e[i].ino];
    if (v == 0)
      bytes_copy(&c, &n->cur);
    else if (v == 1)
      bytes_copy(&c, &n->dur);
    else
      draw_content(F, n, &r, &c);
    char p[PATH_MAX];
    if (strlen(dir) + strlen(d.e[i].name) + 2 > sizeof p) die("name too long");
    snprintf(p, sizeof p, "%s/%.*s", dir, (int)(sizeof p - strlen(dir) - 2), d.e[i].name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || (c.len && write(fd, c.p, c.len) != (ssize_t)c.len) || close(fd) != 0)
      die("writing %s: %s", p, strerror(errno));
  }
  bytes_free(&c);
  dm_free(&d);
}

/* -------------------------------------------------------------- checking */

static char why[1024];

static int failf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  return 0;
}

static bc_store *chk_open(const char *dir, bc_status *st, char *err, size_t errlen) {
  bc_options o;
  bc_options_init(&o);
  o.create = 1;
  o.max_file_size = MAX_FILE;
  o.sync = BC_SYNC_FULL;
  bc_store *s = NULL;
  *st = bc_open(dir, &o, &s, err, errlen);
  return s;
}

/* What the store holds for key k: 1 present (value in b), 0 absent, -1 an
** error (*st). */
static int read_key(bc_store *s, int k, bc_buf *b, const void **v, uint32_t *len,
                    bc_status *st) {
  bc_info info;
  *st = bc_get(s, KEYS[k], strlen(KEYS[k]), b, v, &info);
  if (*st == BC_NOTFOUND) return 0;
  if (*st != BC_OK) return -1;
  *len = info.value_size;
  return 1;
}

static int matches(int got, const void *v, uint32_t len, const val *want) {
  if (got != want->present) return 0;
  return !got || (len == want->len && memcmp(v, want->p, len) == 0);
}

/* Every key as `want` says, by bc_get and by a walk. */
static int check_keys(bc_store *s, const model *want, const char *when) {
  bc_buf b = {0};
  int ok = 1;
  for (int k = 0; k < NKEYS && ok; k++) {
    const void *v;
    uint32_t len = 0;
    bc_status st;
    int got = read_key(s, k, &b, &v, &len, &st);
    if (got < 0)
      ok = failf("%s: key %s: bc_get gave %s: %s", when, KEYS[k], bc_status_name(st),
                 bc_errmsg(s));
    else if (!matches(got, v, len, &want->k[k]))
      ok = failf("%s: key %s: %s, want %s", when, KEYS[k],
                 got ? "a wrong value" : "absent",
                 want->k[k].present ? "its committed value" : "absent");
  }
  bc_iter *it = NULL;
  if (ok && bc_iter_open(s, &it) != BC_OK) ok = failf("%s: bc_iter_open failed", when);
  size_t n = 0, nwant = 0;
  for (int k = 0; k < NKEYS; k++) nwant += want->k[k].present;
  while (ok) {
    const void *key;
    size_t klen;
    bc_status st = bc_iter_next(it, &key, &klen, NULL);
    if (st == BC_DONE) break;
    if (st != BC_OK) {
      ok = failf("%s: bc_iter_next gave %s", when, bc_status_name(st));
      break;
    }
    int k = 0;
    while (k < NKEYS && !(strlen(KEYS[k]) == klen && memcmp(KEYS[k], key, klen) == 0)) k++;
    int after = klen == 5 && memcmp(key, "after", 5) == 0;
    if (!after && (k == NKEYS || !want->k[k].present)) {
      ok = failf("%s: walk: key '%.*s' should not be there", when, (int)klen,
                 (const char *)key);
      break;
    }
    const void *v;
    bc_info info;
    bc_status g = bc_get(s, key, klen, &b, &v, &info);
    if (g != BC_OK)
      ok = failf("%s: walk: key '%.*s' reads %s: %s", when, (int)klen, (const char *)key,
                 bc_status_name(g), bc_errmsg(s));
    n += !after;
  }
  bc_iter_close(it);
  if (ok && n != nwant) ok = failf("%s: the walk found %zu keys, want %zu", when, n, nwant);
  bc_buf_free(&b);
  return ok;
}

/* Check the store in dir against the committed model `pre` and, when a
** commit was in flight, `post` (pre with it applied). */
static int check_state(const char *dir, const model *pre, const model *post,
                       const unit *flight) {
  char err[512] = "";
  bc_status st;
  bc_store *s = chk_open(dir, &st, err, sizeof err);
  if (!s) return failf("open gave %s: %s", bc_status_name(st), err);
  /* Which way did the commit in flight go?  All of its keys must agree. */
  const model *want = pre;
  if (flight) {
    int as_new = 0, as_old = 0;
    bc_buf b = {0};
    for (int i = 0; i < flight->nch; i++) {
      int k = flight->key[i];
      if (val_eq(&pre->k[k], &post->k[k])) continue;
      const void *v;
      uint32_t len = 0;
      int got = read_key(s, k, &b, &v, &len, &st);
      if (got >= 0 && matches(got, v, len, &post->k[k])) as_new++;
      if (got >= 0 && matches(got, v, len, &pre->k[k])) as_old++;
    }
    bc_buf_free(&b);
    if (as_new && as_old) {
      bc_close(s);
      return failf("the transaction in flight is there in part (%d keys new, %d old)",
                   as_new, as_old);
    }
    if (as_new) want = post;
  }
  int ok = check_keys(s, want, "after the crash");
  /* A write after the reopen, durable across a close and an open. */
  if (ok) {
    st = bc_put(s, "after", 5, 0, "the crash", 9);
    if (st == BC_OK) st = bc_sync(s);
    if (st != BC_OK) ok = failf("a put after the crash gave %s: %s", bc_status_name(st),
                                bc_errmsg(s));
  }
  st = bc_close(s);
  if (ok && st != BC_OK) ok = failf("close after the crash gave %s", bc_status_name(st));
  if (!ok) return 0;
  s = chk_open(dir, &st, err, sizeof err);
  if (!s) return failf("reopen gave %s: %s", bc_status_name(st), err);
  bc_buf b = {0};
  const void *v;
  bc_info info;
  st = bc_get(s, "after", 5, &b, &v, &info);
  if (st != BC_OK || info.value_size != 9 || memcmp(v, "the crash", 9) != 0)
    ok = failf("the put after the crash is lost after a reopen (%s)", bc_status_name(st));
  bc_buf_free(&b);
  if (ok) ok = check_keys(s, want, "after a write and a reopen");
  bc_close(s);
  return ok;
}

/* ------------------------------------------------------------------ main */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  long states = 4000, point = -1, variant = -1;
  uint64_t seed = 1;
  int keep = 0;
  const char *base = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--states") == 0 && i + 1 < argc)
      states = atol(argv[++i]);
    else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
      seed = strtoull(argv[++i], NULL, 0);
    else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
      base = argv[++i];
    else if (strcmp(argv[i], "--point") == 0 && i + 1 < argc)
      point = atol(argv[++i]);
    else if (strcmp(argv[i], "--variant") == 0 && i + 1 < argc)
      variant = atol(argv[++i]);
    else if (strcmp(argv[i], "--keep") == 0)
      keep = 1;
    else
      die("usage: %s [--states N] [--seed S] [--dir D] [--point K --variant V [--keep]]",
          argv[0]);
  }
  if (!base) {
    struct stat sb;
    base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm"
           : getenv("TMPDIR")                                 ? getenv("TMPDIR")
                                                              : "/tmp";
  }
  char root[1024];
  if (strlen(base) > 900) die("directory name too long: %s", base);
  snprintf(root, sizeof root, "%s/powerloss.XXXXXX", base);
  if (!mkdtemp(root)) die("mkdtemp %s: %s", root, strerror(errno));
  double t0 = now_s();

  /* 1. The workload. */
  logio *L = calloc(1, sizeof *L);
  if (!L) die("out of memory");
  snprintf(L->dir, sizeof L->dir, "%s/live", root);
  L->dirlen = strlen(L->dir);
  if (mkdir(L->dir, 0755) != 0) die("mkdir %s: %s", L->dir, strerror(errno));
  workload w = {0};
  run_workload(L->dir, L, &w, seed);
  size_t nops = L->nops;
  size_t nsync = 0, nvoided = 0;
  for (size_t i = 0; i < w.nu; i++) nvoided += w.u[i].voided;
  for (size_t i = 0; i < nops; i++) nsync += L->ops[i].kind == OP_FSYNC || L->ops[i].kind == OP_DIRSYNC;
  printf("powerloss: seed %llu: workload of %zu commits (%zu merges, %zu reopens, "
         "%zu rollbacks, %zu of them after a prepare), %zu logged ops (%zu fsyncs), "
         "%d files\n",
         (unsigned long long)seed, w.nu - nvoided, w.merges, w.reopens, w.rollbacks,
         nvoided, nops, nsync, L->nino);

  if (getenv("POWERLOSS_TRACE")) {
    static const char *kn[] = {"write", "truncate", "fsync", "create", "rename", "unlink",
                               "dirsync"};
    for (size_t i = 0; i < nops; i++) {
      const op *o = &L->ops[i];
      printf("  op %zu: %s ino %d off %llu len %llu %s %s\n", i, kn[o->kind], o->ino,
             (unsigned long long)o->off, (unsigned long long)o->len, o->name ? o->name : "",
             o->name2 ? o->name2 : "");
    }
    for (size_t i = 0; i < w.nu; i++) {
      printf("  unit %zu: ops [%zu, %zu):", i, w.u[i].start, w.u[i].ack);
      for (int c = 0; c < w.u[i].nch; c++)
        printf(" %s=%s%u", KEYS[w.u[i].key[c]], w.u[i].v[c].present ? "" : "del",
               w.u[i].v[c].len);
      printf("\n");
    }
  }

  /* 2 and 3. The crash states, point by point. */
  long per = states / (long)(nops + 1);
  long extra = states % (long)(nops + 1);
  fsim F = {0};
  F.L = L;
  F.nin = L->nino;
  F.in = calloc((size_t)(F.nin ? F.nin : 1), sizeof *F.in);
  if (!F.in) die("out of memory");
  model pre, post;
  memset(&pre, 0, sizeof pre);
  size_t ui = 0; /* units applied to pre */
  long built = 0, checked = 0, failed = 0;
  char sdir[1100];
  snprintf(sdir, sizeof sdir, "%s/state", root);
  for (size_t k = 0; k <= nops; k++) {
    for (; ui < w.nu && w.u[ui].ack <= k; ui++)
      if (!w.u[ui].voided) model_apply(&pre, &w.u[ui]);
    const unit *flight = ui < w.nu && w.u[ui].start < k ? &w.u[ui] : NULL;
    post = pre;
    if (flight) model_apply(&post, flight);
    long nv = per + ((long)k < extra ? 1 : 0);
    if (point >= 0) nv = (long)k == point ? variant + 1 : 0;
    for (long v = point >= 0 ? variant : 0; v < nv; v++) {
      rmrf(sdir);
      materialize(&F, (int)v, seed, sdir);
      built++;
      checked++;
      if (!check_state(sdir, &pre, &post, flight)) {
        failed++;
        if (failed <= 20 || point >= 0)
          printf("FAIL seed %llu crash point %zu/%zu variant %ld: %s\n"
                 "  replay: powerloss --seed %llu --point %zu --variant %ld --keep\n",
                 (unsigned long long)seed, k, nops, v, why, (unsigned long long)seed, k, v);
      }
      if (point >= 0 && keep) printf("state kept in %s\n", sdir);
    }
    if (point >= 0 && (long)k == point) break;
    if (k < nops) fsim_step(&F);
  }
  if (!(point >= 0 && keep)) rmrf(root);
  double t1 = now_s();
  printf("powerloss: %ld states built, %ld checked, %ld failures (%.1f s)\n", built,
         checked, failed, t1 - t0);
  printf("%ld passed, %ld failed\n", checked - failed, failed);

  for (int i = 0; i < F.nin; i++) {
    bytes_free(&F.in[i].cur);
    bytes_free(&F.in[i].dur);
    free(F.in[i].pend);
  }
  free(F.in);
  dm_free(&F.cur);
  dm_free(&F.dur);
  free(F.dpend);
  for (size_t i = 0; i < nops; i++) {
    free(L->ops[i].data);
    free(L->ops[i].name);
    free(L->ops[i].name2);
  }
  free(L->ops);
  dm_free(&L->names);
  free(L);
  for (size_t i = 0; i < w.nvals; i++) free(w.vals[i]);
  free(w.vals);
  free(w.u);
  return failed ? 1 : 0;
}
