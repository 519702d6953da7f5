/*
** sql_faults.c -- SQL statements on a bitcask table under injected I/O
** faults (docs/DESIGN.md section 7.7: "Full disk or a failing write
** (ENOSPC, EIO): the statement fails with an error, the store stays
** consistent, and the next write after space returns works").
**
**   make check-faults                      # build/sql_faults SCRATCHDIR
**   make BUILD=build-asan SAN=1 OPT=-O1 check-faults
**   build/sql_faults DIR [--pass full|normal] [--sticky] [--k N] [-v]
**       [--mode enospc|eio|short|partial|sticky-enospc|sticky-eio]
**                                          # e.g. replay one case verbosely
**
** The program links the engine and extension objects directly, with
** -Wl,--wrap for open, pread, pwrite, fdatasync, ftruncate, rename and
** unlink: every call the engine makes through its POSIX I/O table (io.c)
** and bc_destroy's direct calls land in the __wrap_* functions below.
** SQLite's own I/O (libsqlite3.so) is not wrapped.  Only calls made by the
** main thread are counted and faulted: sync=normal's background fsync
** thread runs on its own clock (its failures are retried by design), so its
** calls pass through untouched.
**
** The workload (build_workload) is a fixed SQL script on one bitcask table
** with max_file_size='8KB', so data files rotate (with hint files) several
** times -- during an autocommit statement, between the rows of a multi-row
** INSERT, between the statements of a transaction, at a merge: CREATE
** VIRTUAL TABLE, autocommit INSERT / INSERT OR REPLACE / UPDATE of a value
** and of a key / DELETE, point reads, explicit BEGIN .. COMMIT and BEGIN ..
** ROLLBACK, SAVEPOINT / ROLLBACK TO / RELEASE, multi-row INSERTs (one meant
** to fail on a UNIQUE conflict), a multi-row UPDATE that reads values,
** DELETE .. IN, SELECT bitcask_merge('kv') (a second one with
** SQL_FAULTS_MORE=1), and closing and reopening the database (the store is
** recovered).  It runs once per sync mode: full, then normal.
**
** For each pass: one run without faults counts the main thread's wrapped
** calls (`total`) and records where each comes from.  Then, from scratch in
** a fresh directory each time, the workload is rerun with call k failing
** once, for k = 1..total: with ENOSPC (not for a pread: a read cannot find
** the disk full), with EIO; and for j = 1..pwrites, with the j-th pwrite
** writing only half its bytes ("short"), or writing half and the pwrite
** that continues it failing with ENOSPC ("partial": the disk fills up in
** mid-write).  Every later call succeeds: "space returns".
**
** Each run checks, against a model (the committed key -> value map, the
** open transaction's view, a savepoint snapshot):
**  1. the statement that met the fault failed with SQLITE_FULL (ENOSPC) or
**     SQLITE_IOERR[_*] (EIO) and a message naming the table ('kv') -- or,
**     where failing is tolerated by design (a hint file written at
**     rotation, hint files read at open, the optional abort record of a
**     rollback, a close), it succeeded; a short write must be absorbed;
**  2. the table matches the model right after the fault (a failed
**     statement or COMMIT changed nothing; when SQLite rolls the whole
**     transaction back -- it does on SQLITE_IOERR and SQLITE_FULL in an
**     explicit transaction of a virtual table -- or the engine dooms it,
**     the transaction is rolled back in the model too), after the next
**     successful write, and after closing and reopening the database;
**  3. so does the store as a crash would leave it, right after the fault,
**     after the next write and at the end: the store opened read-only by
**     the engine beside the live connection, every key decoded and compared
**     with the committed model (disk_check) -- this catches a failed COMMIT
**     that a retry of the same statement would otherwise mask;
**  4. the next write after the fault works: the failed statement (or its
**     whole transaction) is retried and the workload runs to the end, every
**     later statement succeeding and every read matching the model (a store
**     that asks to be reopened is reopened, and that is reported as
**     "degraded");
**  5. (under ASan+UBSan) nothing crashes or leaks.
**
** --sticky adds two modes beyond the brief's single faults: from call k on,
** the disk stays full (writes, creates, syncs, renames fail; reads,
** truncates, unlinks work) or the device stays failed (every call fails)
** until the statement returns, so the engine's own cleanup after the first
** failure fails too.  Not part of `make check-faults` (it doubles the time).
**
** A "fault site" is a distinct (call kind, calling engine function): the
** first function on the stack outside the I/O layer (the __wrap_ and px_
** functions, bc_write_all, bc_read_all, bc_fsync*).  __builtin_return_address
** (0) alone would name px_pwrite & co. for every call (io.c funnels them), so
** the stack is walked with backtrace() and named from the executable's own
** ELF symbol table (dladdr sees only exported symbols, and the engine is
** built with -fvisibility=hidden).  Static functions inlined into their
** caller are reported as the caller.
**
** Speed: fdatasync is not passed to the kernel unless
** SQL_FAULTS_REAL_FSYNC=1 (the test is about error handling, not power
** loss), SQLite's own database runs with synchronous=OFF and
** journal_mode=MEMORY, and the runs are spread over one forked worker per
** CPU (at most 4; SQL_FAULTS_JOBS=n to choose) -- each run creates a dozen
** files, which on a journalled file system costs more than the run itself.
**
** Output: one line per failing run ("FAIL ..."), the table of fault sites,
** then
**   sql_faults: N runs, F fault sites, K faults injected, X keys checked, L keys lost
**   P passed, Q failed
** Exit status 1 on any failure.
*/
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <ftw.h>
#include <link.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bitcask.h" /* only to read a store as a crash would leave it */

int sqlite3_bitcask_init(sqlite3 *db, char **pzErrMsg,
                         const sqlite3_api_routines *pApi);

/* ------------------------------------------------------------ the faults */

enum { K_OPEN, K_PREAD, K_PWRITE, K_FSYNC, K_FTRUNCATE, K_RENAME, K_UNLINK,
       NKIND };
static const char *const kind_name[NKIND] = {
    "open", "pread", "pwrite", "fdatasync", "ftruncate", "rename", "unlink"};

/* FM_SHORT: one pwrite writes half its bytes and returns the short count
** (the engine must go on); FM_PARTIAL: the same, and the pwrite that
** continues it fails with ENOSPC (a disk that fills up in mid-write: the
** bytes written must be cut off again). */
/* FM_STICKY_ENOSPC / FM_STICKY_EIO (only with --sticky): from call k on,
** every call that could fail that way fails until the statement in progress
** returns -- a disk that stays full (writes, creates, syncs, renames fail;
** reads, truncates and unlinks work) or a device that stays failed (every
** call fails), for the whole statement, so that the engine's cleanup after
** the first failure fails too. */
enum { FM_NONE, FM_ENOSPC, FM_EIO, FM_SHORT, FM_PARTIAL, FM_STICKY_ENOSPC,
       FM_STICKY_EIO };
static const char *const mode_name[] = {"none", "ENOSPC", "EIO", "short-write",
                                        "partial-write+ENOSPC", "sticky-ENOSPC",
                                        "sticky-EIO"};

/* One fault site: a call kind and the engine function that made the call. */
typedef struct site {
  int kind;
  char *func;        /* malloc'd */
  char *chain;       /* first stack seen: func <- caller <- caller; malloc'd */
  long calls[2];     /* calls in the fault-free run of each pass */
  long injected;     /* runs whose fault hit this site */
  long surfaced;     /* ... and failed the statement cleanly */
  long absorbed;     /* ... and the statement succeeded (or none was running) */
  long failed_runs;  /* ... and the run failed a check */
} site;

static site *sites;
static int nsites, capsites;

static struct {
  int armed;             /* count (and maybe fault) calls of the main thread */
  pthread_t main;
  int recording;         /* fault-free run: attribute every call to a site */
  int pass;              /* 0 full, 1 normal: column of site.calls */
  long calls, pwrites;   /* counted so far in this run */
  int mode;              /* FM_* */
  long at;               /* FM_ENOSPC/EIO: call number; FM_SHORT/PARTIAL:
                         ** pwrite number */
  int partial_pending;   /* FM_PARTIAL: fail the next pwrite */
  int sticky_on;         /* FM_STICKY_*: failing until the statement returns */
  int open_creates;      /* the open being checked has O_CREAT */
  int *callkind;         /* fault-free run: kind of each call; malloc'd */
  long ncallkind, capcallkind;
  int fired;             /* the fault happened */
  int fired_kind, fired_site, fired_tolerated;
  long fired_call;
  int real_fsync;
} F;

/* ---- naming code addresses from the executable's ELF symbol table ---- */

typedef struct fsym {
  uintptr_t lo, hi;
  const char *name; /* into elf_image */
} fsym;
static fsym *syms;
static size_t nsyms;
static unsigned char *elf_image;
static uintptr_t load_bias;
static int bias_found;

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  (void)arg;
  if (!bias_found) { /* the first object is the executable itself */
    load_bias = (uintptr_t)info->dlpi_addr;
    bias_found = 1;
  }
  return 1;
}

static int fsym_cmp(const void *a, const void *b) {
  const fsym *x = a, *y = b;
  return (x->lo > y->lo) - (x->lo < y->lo);
}

static void syms_load(void) {
  FILE *f = fopen("/proc/self/exe", "rb");
  if (!f) return;
  if (fseek(f, 0, SEEK_END) != 0) goto out;
  long len = ftell(f);
  if (len <= (long)sizeof(Elf64_Ehdr) || fseek(f, 0, SEEK_SET) != 0) goto out;
  elf_image = malloc((size_t)len);
  if (!elf_image || fread(elf_image, 1, (size_t)len, f) != (size_t)len) goto out;
  Elf64_Ehdr eh;
  memcpy(&eh, elf_image, sizeof eh);
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64)
    goto out;
  if (eh.e_shoff + (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr) > (uint64_t)len) goto out;
  for (int i = 0; i < eh.e_shnum; i++) {
    Elf64_Shdr sh, strh;
    memcpy(&sh, elf_image + eh.e_shoff + (size_t)i * sizeof sh, sizeof sh);
    if (sh.sh_type != SHT_SYMTAB || sh.sh_link >= eh.e_shnum) continue;
    memcpy(&strh, elf_image + eh.e_shoff + (size_t)sh.sh_link * sizeof strh, sizeof strh);
    if (sh.sh_offset + sh.sh_size > (uint64_t)len ||
        strh.sh_offset + strh.sh_size > (uint64_t)len)
      continue;
    size_t n = sh.sh_size / sizeof(Elf64_Sym);
    fsym *p = realloc(syms, (nsyms + n) * sizeof *p);
    if (!p) goto out;
    syms = p;
    for (size_t j = 0; j < n; j++) {
      Elf64_Sym s;
      memcpy(&s, elf_image + sh.sh_offset + j * sizeof s, sizeof s);
      if (ELF64_ST_TYPE(s.st_info) != STT_FUNC || s.st_value == 0 ||
          s.st_name >= strh.sh_size)
        continue;
      syms[nsyms].lo = (uintptr_t)s.st_value;
      syms[nsyms].hi = (uintptr_t)(s.st_value + (s.st_size ? s.st_size : 1));
      syms[nsyms].name = (const char *)elf_image + strh.sh_offset + s.st_name;
      nsyms++;
    }
  }
  if (nsyms) qsort(syms, nsyms, sizeof *syms, fsym_cmp);
  dl_iterate_phdr(phdr_cb, NULL);
out:
  fclose(f);
}

/* The function containing return address pc (pc - 1 is in the call). */
static const char *sym_name(void *pc) {
  uintptr_t a = (uintptr_t)pc - 1 - load_bias;
  size_t lo = 0, hi = nsyms;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (syms[mid].lo <= a)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo > 0 && a < syms[lo - 1].hi) return syms[lo - 1].name;
  Dl_info di;
  if (dladdr(pc, &di) && di.dli_sname) return di.dli_sname;
  return "?";
}

/* Frames of the I/O layer: the site is the first frame outside them. */
static int io_layer(const char *n) {
  static const char *const skip[] = {
      "fault_hit", "site_of", "px_open", "px_pread", "px_pwrite", "px_fsync",
      "px_ftruncate", "px_rename", "px_unlink", "bc_write_all", "bc_read_all",
      "bc_fsync", "bc_fsync_dir", "bc_fsync_store_dir", NULL};
  if (strncmp(n, "__wrap_", 7) == 0) return 1;
  for (int i = 0; skip[i]; i++)
    if (strcmp(n, skip[i]) == 0) return 1;
  return 0;
}

/* Callers on whose paths a failed call is tolerated by design: a hint file
** is an optimisation (written at rotation -- built in memory, or by a scan --
** and read at open: without it the data file is scanned); the abort record
** of a rollback only lets recovery drop records early; a close cannot report
** anything to SQL; a follower's look at LOCK (bc_lock_writer_gone) only
** decides whether a read may go through a mapping -- when it fails the read
** is a pread.  A name matches with or without a compiler clone suffix
** (".part.0", ".isra.0", ...). */
static int tolerated_frame(const char *n) {
  static const char *const ok[] = {"bc_hint_create", "bc_hint_install", "bc_hint_load",
                                   "bc_hint_open", "bc_txn_rollback", "bc_close",
                                   "bc_lock_writer_gone", NULL};
  for (int i = 0; ok[i]; i++) {
    size_t l = strlen(ok[i]);
    if (strncmp(n, ok[i], l) == 0 && (n[l] == 0 || n[l] == '.')) return 1;
  }
  return 0;
}

static int site_intern(int kind, const char *func, const char *chain) {
  for (int i = 0; i < nsites; i++)
    if (sites[i].kind == kind && strcmp(sites[i].func, func) == 0) return i;
  if (nsites == capsites) {
    int cap = capsites ? capsites * 2 : 64;
    site *p = realloc(sites, (size_t)cap * sizeof *p);
    if (!p) abort();
    sites = p;
    capsites = cap;
  }
  site *s = &sites[nsites];
  memset(s, 0, sizeof *s);
  s->kind = kind;
  s->func = strdup(func);
  s->chain = strdup(chain);
  if (!s->func || !s->chain) abort();
  return nsites++;
}

/* The site of the current call; *tolerated: a tolerated caller is on the
** stack. */
static int site_of(int kind, int *tolerated) {
  void *pcs[48];
  int n = backtrace(pcs, 48);
  int first = -1;
  *tolerated = 0;
  for (int i = 1; i < n; i++) {
    const char *nm = sym_name(pcs[i]);
    if (first < 0 && !io_layer(nm)) first = i;
    if (first >= 0 && tolerated_frame(nm)) *tolerated = 1;
  }
  if (first < 0) return site_intern(kind, "?", "?");
  char chain[256];
  size_t at = 0;
  for (int i = first; i < n && i < first + 4; i++) {
    int w = snprintf(chain + at, sizeof chain - at, "%s%s", i > first ? " <- " : "",
                     sym_name(pcs[i]));
    if (w < 0 || (size_t)w >= sizeof chain - at) break;
    at += (size_t)w;
  }
  return site_intern(kind, sym_name(pcs[first]), chain);
}

/* 0: pass the call through; 1: fail it (errno set by the caller); 2: short. */
static int fault_hit(int kind) {
  if (!F.armed || !pthread_equal(pthread_self(), F.main)) return 0;
  F.calls++;
  if (kind == K_PWRITE) F.pwrites++;
  if (F.recording) {
    int tol, at = site_of(kind, &tol); /* may move `sites` */
    sites[at].calls[F.pass]++;
    if (F.ncallkind == F.capcallkind) {
      long cap = F.capcallkind ? F.capcallkind * 2 : 512;
      int *p = realloc(F.callkind, (size_t)cap * sizeof *p);
      if (!p) abort();
      F.callkind = p;
      F.capcallkind = cap;
    }
    F.callkind[F.ncallkind++] = kind;
  }
  if (F.sticky_on) {
    if (F.mode == FM_STICKY_EIO) return 1;
    /* A full disk: what needs space fails, what frees or reads it works. */
    return kind == K_PWRITE || kind == K_FSYNC || kind == K_RENAME ||
           (kind == K_OPEN && F.open_creates);
  }
  if (F.partial_pending && kind == K_PWRITE) {
    F.partial_pending = 0;
    return 1;
  }
  if (F.fired || F.mode == FM_NONE) return 0;
  int by_pwrite = F.mode == FM_SHORT || F.mode == FM_PARTIAL;
  if (by_pwrite ? (kind != K_PWRITE || F.pwrites != F.at) : F.calls != F.at) return 0;
  F.fired = 1;
  F.fired_kind = kind;
  F.fired_call = F.calls;
  F.fired_site = site_of(kind, &F.fired_tolerated);
  if (F.mode == FM_PARTIAL) F.partial_pending = 1;
  if (F.mode == FM_STICKY_ENOSPC || F.mode == FM_STICKY_EIO) F.sticky_on = 1;
  return by_pwrite ? 2 : 1;
}

static int fault_errno(void) {
  return F.mode == FM_EIO || F.mode == FM_STICKY_EIO ? EIO : ENOSPC;
}

int __real_open(const char *path, int flags, ...);
ssize_t __real_pread(int fd, void *buf, size_t n, off_t off);
ssize_t __real_pwrite(int fd, const void *buf, size_t n, off_t off);
int __real_fdatasync(int fd);
int __real_ftruncate(int fd, off_t len);
int __real_rename(const char *from, const char *to);
int __real_unlink(const char *path);

int __wrap_open(const char *path, int flags, ...) {
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode = (mode_t)va_arg(ap, int);
    va_end(ap);
  }
  F.open_creates = (flags & O_CREAT) != 0;
  if (fault_hit(K_OPEN)) {
    errno = fault_errno();
    return -1;
  }
  return __real_open(path, flags, mode);
}

ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t off) {
  if (fault_hit(K_PREAD)) {
    errno = fault_errno();
    return -1;
  }
  return __real_pread(fd, buf, n, off);
}

ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off) {
  int act = fault_hit(K_PWRITE);
  if (act == 2 && n < 2) {
    /* Nothing shorter to write: shorten the next pwrite instead. */
    F.fired = 0;
    F.partial_pending = 0;
    F.at++;
    act = 0;
  }
  if (act == 1) {
    errno = fault_errno();
    return -1;
  }
  return __real_pwrite(fd, buf, act == 2 ? n / 2 : n, off);
}

int __wrap_fdatasync(int fd) {
  if (fault_hit(K_FSYNC)) {
    errno = fault_errno();
    return -1;
  }
  return F.real_fsync ? __real_fdatasync(fd) : 0;
}

int __wrap_ftruncate(int fd, off_t len) {
  if (fault_hit(K_FTRUNCATE)) {
    errno = fault_errno();
    return -1;
  }
  return __real_ftruncate(fd, len);
}

int __wrap_rename(const char *from, const char *to) {
  if (fault_hit(K_RENAME)) {
    errno = fault_errno();
    return -1;
  }
  return __real_rename(from, to);
}

int __wrap_unlink(const char *path) {
  if (fault_hit(K_UNLINK)) {
    errno = fault_errno();
    return -1;
  }
  return __real_unlink(path);
}

/* ------------------------------------------------------------- the model */

typedef struct kv {
  char *k, *v; /* malloc'd */
} kv;

typedef struct model {
  kv *a;       /* sorted by key (strcmp: SQLite's BINARY order for ASCII) */
  int n, cap;
} model;

static char *xstrdup(const char *s) {
  char *p = strdup(s);
  if (!p) abort();
  return p;
}

static int m_find(const model *m, const char *k, int *pos) {
  int lo = 0, hi = m->n;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    int c = strcmp(m->a[mid].k, k);
    if (c == 0) {
      *pos = mid;
      return 1;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *pos = lo;
  return 0;
}

static void m_insert_at(model *m, int at, const char *k, const char *v) {
  if (m->n == m->cap) {
    int cap = m->cap ? m->cap * 2 : 32;
    kv *p = realloc(m->a, (size_t)cap * sizeof *p);
    if (!p) abort();
    m->a = p;
    m->cap = cap;
  }
  memmove(&m->a[at + 1], &m->a[at], (size_t)(m->n - at) * sizeof *m->a);
  m->a[at].k = xstrdup(k);
  m->a[at].v = xstrdup(v);
  m->n++;
}

static void m_put(model *m, const char *k, const char *v) {
  int at;
  if (m_find(m, k, &at)) {
    char *nv = xstrdup(v);
    free(m->a[at].v);
    m->a[at].v = nv;
  } else {
    m_insert_at(m, at, k, v);
  }
}

/* Rows as a query returned them, in order (not necessarily sorted). */
static void m_append(model *m, const char *k, const char *v) {
  m_insert_at(m, m->n, k, v);
}

static void m_del(model *m, const char *k) {
  int at;
  if (!m_find(m, k, &at)) return;
  free(m->a[at].k);
  free(m->a[at].v);
  memmove(&m->a[at], &m->a[at + 1], (size_t)(m->n - at - 1) * sizeof *m->a);
  m->n--;
}

static const char *m_get(const model *m, const char *k) {
  int at;
  return m_find(m, k, &at) ? m->a[at].v : NULL;
}

static void m_clear(model *m) {
  for (int i = 0; i < m->n; i++) {
    free(m->a[i].k);
    free(m->a[i].v);
  }
  m->n = 0;
}

static void m_free(model *m) {
  m_clear(m);
  free(m->a);
  memset(m, 0, sizeof *m);
}

static void m_copy(model *d, const model *s) {
  m_clear(d);
  for (int i = 0; i < s->n; i++) m_append(d, s->a[i].k, s->a[i].v);
}

/* ---------------------------------------------------------- the workload */

enum { S_EXEC, S_GET, S_SCAN, S_REOPEN };
enum { TX_NONE, TX_BEGIN, TX_COMMIT, TX_ROLLBACK, TX_SAVEPOINT, TX_ROLLBACK_TO,
       TX_RELEASE };

/* One model effect of a statement that succeeded. */
typedef struct op {
  char t;      /* 'P' put k=v, 'D' delete k, 'R' rename k to k2 (value kept),
               ** 'X' append "x" to the value of every key starting with k */
  char k[16], k2[16];
  char *v;     /* 'P': malloc'd */
} op;

#define MAXOPS 12

typedef struct step {
  int kind;        /* S_* */
  char *sql;       /* malloc'd; NULL for S_REOPEN */
  int tx;          /* TX_*: the transaction effect of a successful run */
  int write;       /* a write to the table (or a COMMIT, or a merge) */
  int expect;      /* SQLITE_OK, or the error a fault-free run gets */
  char key[16];    /* S_GET: the key read */
  op ops[MAXOPS];
  int nops;
} step;

#define MAXSTEPS 160
static step W[MAXSTEPS];
static int NW;

static char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) abort();
  va_end(ap);
  return s;
}

static step *add(int kind, int tx, int write, const char *sql) {
  if (NW == MAXSTEPS) abort();
  step *s = &W[NW++];
  memset(s, 0, sizeof *s);
  s->kind = kind;
  s->tx = tx;
  s->write = write;
  s->expect = SQLITE_OK;
  s->sql = sql ? xstrdup(sql) : NULL;
  return s;
}

static void addop(step *s, char t, const char *k, const char *k2, const char *v) {
  if (s->nops == MAXOPS) abort();
  op *o = &s->ops[s->nops++];
  o->t = t;
  snprintf(o->k, sizeof o->k, "%s", k);
  snprintf(o->k2, sizeof o->k2, "%s", k2 ? k2 : "");
  o->v = v ? xstrdup(v) : NULL;
}

/* A value of 300..1199 bytes (8 KB data files rotate every ~10 rows); of
** 20..99 bytes for version 0 (rows that should not rotate anything); of
** 1600..1799 bytes for version 9 (rows meant to rotate a file in the middle
** of a statement or a transaction). */
static char *val(int key, int ver) {
  int len = ver == 9   ? 1600 + key % 200
            : ver == 0 ? 20 + (key * 37) % 80
                       : 300 + (key * 137 + ver * 61) % 900;
  char *v = malloc((size_t)len + 1);
  if (!v) abort();
  int n = snprintf(v, (size_t)len + 1, "v%d.%d:", key, ver);
  for (int i = n; i < len; i++) v[i] = (char)('a' + (key + ver + i) % 26);
  v[len] = 0;
  return v;
}

static void keyname(char *out, int key) { snprintf(out, 16, "k%03d", key); }

/* INSERT [OR REPLACE] of one row. */
static step *w_ins(const char *verb, int key, int ver) {
  char k[16], *v = val(key, ver);
  keyname(k, key);
  char *sql = xprintf("%s INTO kv VALUES('%s', '%s')", verb, k, v);
  step *s = add(S_EXEC, TX_NONE, 1, sql);
  addop(s, 'P', k, NULL, v);
  free(sql);
  free(v);
  return s;
}

static void w_update(int key, int ver) {
  char k[16], *v = val(key, ver);
  keyname(k, key);
  char *sql = xprintf("UPDATE kv SET value = '%s' WHERE key = '%s'", v, k);
  addop(add(S_EXEC, TX_NONE, 1, sql), 'P', k, NULL, v);
  free(sql);
  free(v);
}

static void w_rekey(int from, int to) {
  char k[16], k2[16];
  keyname(k, from);
  keyname(k2, to);
  char *sql = xprintf("UPDATE kv SET key = '%s' WHERE key = '%s'", k2, k);
  addop(add(S_EXEC, TX_NONE, 1, sql), 'R', k, k2, NULL);
  free(sql);
}

static void w_delete(int key) {
  char k[16];
  keyname(k, key);
  char *sql = xprintf("DELETE FROM kv WHERE key = '%s'", k);
  addop(add(S_EXEC, TX_NONE, 1, sql), 'D', k, NULL, NULL);
  free(sql);
}

static void w_get(int key) {
  char k[16];
  keyname(k, key);
  char *sql = xprintf("SELECT value FROM kv WHERE key = '%s'", k);
  step *s = add(S_GET, TX_NONE, 0, sql);
  snprintf(s->key, sizeof s->key, "%s", k);
  free(sql);
}

static void w_scan(void) {
  add(S_SCAN, TX_NONE, 0, "SELECT key, value FROM kv ORDER BY key");
}

/* A multi-row INSERT of keys [from, to); `clash` (>= 0) adds an existing
** key last, so that the statement fails with a UNIQUE error and inserts
** nothing. */
static void w_multi(int from, int to, int ver, int clash) {
  size_t cap = 16384, len = 0;
  char *sql = malloc(cap);
  if (!sql) abort();
  len += (size_t)snprintf(sql, cap, "INSERT INTO kv VALUES ");
  step tmp;
  memset(&tmp, 0, sizeof tmp);
  for (int key = from; key < to || (clash >= 0 && key == to); key++) {
    int kk = key < to ? key : clash;
    char k[16], *v = val(kk, ver);
    keyname(k, kk);
    len += (size_t)snprintf(sql + len, cap - len, "%s('%s', '%s')",
                            key > from ? ", " : "", k, v);
    if (len >= cap) abort();
    if (key < to) addop(&tmp, 'P', k, NULL, v);
    free(v);
  }
  step *s = add(S_EXEC, TX_NONE, 1, sql);
  if (clash >= 0) {
    s->expect = SQLITE_CONSTRAINT;
    for (int i = 0; i < tmp.nops; i++) free(tmp.ops[i].v);
  } else {
    memcpy(s->ops, tmp.ops, sizeof tmp.ops);
    s->nops = tmp.nops;
  }
  free(sql);
}

static void build_workload(const char *sync) {
  NW = 0;
  char *create = xprintf("CREATE VIRTUAL TABLE kv USING bitcask(max_file_size='8KB', "
                         "sync='%s')", sync);
  add(S_EXEC, TX_NONE, 1, create);
  free(create);
  /* Autocommit writes of every kind; the first data file fills up and
  ** rotates (with a hint file) during one of them. */
  for (int i = 0; i < 7; i++) w_ins("INSERT", i, 1);
  w_ins("INSERT OR REPLACE", 3, 2);
  w_ins("INSERT OR REPLACE", 20, 1);
  w_update(1, 2);
  w_rekey(2, 100);
  w_delete(4);
  w_get(5);
  /* An explicit transaction with several statements and a read. */
  add(S_EXEC, TX_BEGIN, 0, "BEGIN");
  w_ins("INSERT", 30, 0);
  w_ins("INSERT OR REPLACE", 5, 0);
  w_update(6, 0);
  w_delete(0);
  w_rekey(100, 102);
  w_get(30);
  add(S_EXEC, TX_COMMIT, 1, "COMMIT");
  /* Savepoints. */
  add(S_EXEC, TX_BEGIN, 0, "BEGIN");
  w_ins("INSERT", 40, 0);
  add(S_EXEC, TX_SAVEPOINT, 0, "SAVEPOINT a");
  w_ins("INSERT", 41, 0);
  w_delete(1);
  w_update(3, 0);
  add(S_EXEC, TX_ROLLBACK_TO, 0, "ROLLBACK TO a");
  w_ins("INSERT", 42, 0);
  add(S_EXEC, TX_RELEASE, 0, "RELEASE a");
  add(S_EXEC, TX_COMMIT, 1, "COMMIT");
  /* Multi-row statements: the first rotates a file between its rows; the
  ** second fails on its last row (UNIQUE) and leaves nothing. */
  w_multi(50, 55, 9, -1);
  w_get(54);
  w_multi(58, 60, 0, 1);
  add(S_EXEC, TX_NONE, 1, "SELECT bitcask_merge('kv')");
  w_ins("INSERT", 60, 0);
  w_delete(50);
  w_ins("INSERT OR REPLACE", 51, 0);
  /* Close and reopen: the store is recovered from its files. */
  add(S_REOPEN, TX_NONE, 0, NULL);
  w_scan();
  /* A transaction larger than what is left of the data file: a rotation
  ** between its records. */
  add(S_EXEC, TX_BEGIN, 0, "BEGIN");
  for (int i = 70; i < 76; i++) w_ins("INSERT", i, 9);
  w_update(70, 0);
  add(S_EXEC, TX_COMMIT, 1, "COMMIT");
  /* A transaction rolled back. */
  add(S_EXEC, TX_BEGIN, 0, "BEGIN");
  w_delete(70);
  w_ins("INSERT", 80, 0);
  add(S_EXEC, TX_ROLLBACK, 0, "ROLLBACK");
  /* Statements over several rows found by a scan or an IN list. */
  step *s = add(S_EXEC, TX_NONE, 1,
                "UPDATE kv SET value = value || 'x' WHERE key >= 'k05' AND key < 'k06'");
  addop(s, 'X', "k05", NULL, NULL);
  s = add(S_EXEC, TX_NONE, 1, "DELETE FROM kv WHERE key IN ('k071', 'k072')");
  addop(s, 'D', "k071", NULL, NULL);
  addop(s, 'D', "k072", NULL, NULL);
  w_ins("INSERT OR REPLACE", 73, 0);
  if (getenv("SQL_FAULTS_MORE")) {
    /* A second merge: its inputs include the first one's outputs. */
    add(S_EXEC, TX_NONE, 1, "SELECT bitcask_merge('kv')");
    w_get(73);
  }
  w_ins("INSERT", 90, 0);
  add(S_REOPEN, TX_NONE, 0, NULL);
  w_scan();
}

static void free_workload(void) {
  for (int i = 0; i < NW; i++) {
    free(W[i].sql);
    for (int j = 0; j < W[i].nops; j++) free(W[i].ops[j].v);
  }
  NW = 0;
}

/* -------------------------------------------------------------- the runs */

static long g_runs, g_passed, g_failed, g_injected, g_keys_checked, g_lost,
    g_wrong, g_extra, g_doomed, g_sqlite_rollbacks, g_txn_kept, g_degraded, g_absorbed;
static int verbose;
static char g_scratch[4096];
static char g_rundir[4200]; /* this process's run directory */
static const char *const pass_sync[2] = {"full", "normal"};

typedef struct res {
  int rc;          /* primary result code (extended & 0xff) */
  int ext;         /* extended result code */
  char msg[1024];
} res;

typedef struct run {
  sqlite3 *db;
  char dbpath[4300];
  int pass;
  model M;         /* committed */
  model T;         /* the open transaction's view */
  model SP;        /* at SAVEPOINT a */
  int in_txn, in_sp, txn_start;
  int have_table;  /* CREATE VIRTUAL TABLE succeeded */
  int failed;      /* checks failed */
  char first[2048]; /* the first failure */
  int step;        /* index of the step running (for messages) */
} run;

static model *cur(run *R) { return R->in_txn ? &R->T : &R->M; }

static void rfail(run *R, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rfail(run *R, const char *fmt, ...) {
  char buf[1536];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (R->failed++ == 0) {
    const char *sql = R->step >= 0 && R->step < NW && W[R->step].sql ? W[R->step].sql
                      : R->step >= 0 && R->step < NW               ? "(close and reopen)"
                                                                    : "";
    snprintf(R->first, sizeof R->first, "step %d `%.70s%s`: %s", R->step, sql,
             strlen(sql) > 70 ? "..." : "", buf);
  }
  if (verbose) fprintf(stderr, "  check failed at step %d: %s\n", R->step, buf);
}

/* Run one SQL statement; collect its rows (1 column: value; 2: key, value)
** into rows when not NULL. */
static void query(sqlite3 *db, const char *sql, res *r, model *rows) {
  sqlite3_stmt *st = NULL;
  r->msg[0] = 0;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK) {
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      if (!rows) continue;
      int nc = sqlite3_column_count(st);
      const char *a = (const char *)sqlite3_column_text(st, 0);
      const char *b = nc > 1 ? (const char *)sqlite3_column_text(st, 1) : NULL;
      if (nc > 1)
        m_append(rows, a ? a : "<NULL>", b ? b : "<NULL>");
      else
        m_append(rows, "", a ? a : "<NULL>");
    }
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  r->ext = rc == SQLITE_OK ? SQLITE_OK : sqlite3_extended_errcode(db);
  r->rc = r->ext & 0xff;
  if (rc != SQLITE_OK) snprintf(r->msg, sizeof r->msg, "%s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
}

/* Compare rows (in key order) with the model; count keys checked, lost,
** wrong and extra.  Returns 0 when equal. */
static int compare(run *R, const model *want, const model *got, const char *when) {
  int i = 0, j = 0, lost = 0, wrong = 0, extra = 0, unsorted = 0;
  char first[160] = "";
  for (int x = 1; x < got->n; x++)
    if (strcmp(got->a[x - 1].k, got->a[x].k) >= 0) unsorted++;
  while (i < want->n || j < got->n) {
    int c = i == want->n ? 1 : j == got->n ? -1 : strcmp(want->a[i].k, got->a[j].k);
    if (c == 0) {
      if (strcmp(want->a[i].v, got->a[j].v) != 0) {
        if (!first[0])
          snprintf(first, sizeof first, "%s has a wrong value (%.24s... for %.24s...)",
                   want->a[i].k, got->a[j].v, want->a[i].v);
        wrong++;
      }
      i++;
      j++;
    } else if (c < 0) {
      if (!first[0]) snprintf(first, sizeof first, "%s is missing", want->a[i].k);
      lost++;
      i++;
    } else {
      if (!first[0]) snprintf(first, sizeof first, "%s should not be there", got->a[j].k);
      extra++;
      j++;
    }
  }
  g_keys_checked += want->n;
  g_lost += lost;
  g_wrong += wrong;
  g_extra += extra;
  if (lost || wrong || extra || unsorted) {
    rfail(R, "%s: table differs from the model: %d lost, %d wrong, %d extra%s (%s)",
          when, lost, wrong, extra, unsorted ? ", rows out of order" : "", first);
    return 1;
  }
  return 0;
}

static int db_open(run *R) {
  int rc = sqlite3_open_v2(R->dbpath, &R->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                           NULL);
  if (rc != SQLITE_OK) {
    rfail(R, "sqlite3_open_v2: %s", R->db ? sqlite3_errmsg(R->db) : "out of memory");
    return rc;
  }
  return sqlite3_exec(R->db, "PRAGMA synchronous=OFF; PRAGMA journal_mode=MEMORY",
                      NULL, NULL, NULL);
}

static void db_close(run *R) {
  if (!R->db) return;
  int rc = sqlite3_close(R->db);
  if (rc != SQLITE_OK) rfail(R, "sqlite3_close: %s", sqlite3_errstr(rc));
  R->db = NULL;
}

static void reopen(run *R) {
  db_close(R);
  db_open(R);
}

/* SELECT the whole table and compare it with the open view.  *doomed is
** set (and nothing compared) when the read fails because the engine doomed
** the open transaction. */
static int check_table(run *R, const char *when, int *doomed) {
  model rows = {0};
  res r;
  if (doomed) *doomed = 0;
  query(R->db, "SELECT key, value FROM kv ORDER BY key", &r, &rows);
  int bad = 0;
  if (!R->have_table) {
    /* A failed CREATE VIRTUAL TABLE leaves no table. */
    if (r.rc == SQLITE_OK || !strstr(r.msg, "no such table")) {
      rfail(R, "%s: the table exists after its CREATE failed", when);
      bad = 1;
    }
  } else if (r.rc != SQLITE_OK) {
    if (doomed && R->in_txn && strstr(r.msg, "can only be rolled back")) {
      *doomed = 1;
    } else {
      rfail(R, "%s: reading the table failed: %s", when, r.msg);
      bad = 1;
    }
  } else {
    bad = compare(R, cur(R), &rows, when);
  }
  m_free(&rows);
  return bad;
}

static int kv_order(const void *a, const void *b) {
  return strcmp(((const kv *)a)->k, ((const kv *)b)->k);
}

/* The store as a crash right now would leave it: opened read-only by the
** engine (no lock, nothing written; recovery in memory only) beside the
** live connection, every key and value decoded (our keys and values are
** all TEXT: key = tag 0x30 + bytes, value = bytes) and compared with the
** committed model.  Its calls are not counted and never faulted. */
static int disk_check(run *R, const char *when) {
  if (!R->have_table) return 0;
  int armed = F.armed;
  F.armed = 0;
  char dir[4400], err[600];
  snprintf(dir, sizeof dir, "%s-kv.bitcask", R->dbpath);
  bc_options o;
  bc_options_init(&o);
  o.read_only = 1;
  bc_store *s = NULL;
  int bad = 0;
  bc_status st = bc_open(dir, &o, &s, err, sizeof err);
  if (st != BC_OK) {
    rfail(R, "%s: the store does not open read-only: %s", when, err);
    F.armed = armed;
    return 1;
  }
  model got = {0};
  bc_iter *it = NULL;
  bc_buf buf = {0};
  if (bc_iter_open(s, &it) == BC_OK) {
    const void *key, *value;
    size_t klen;
    bc_info info;
    while (!bad && bc_iter_next(it, &key, &klen, &info) == BC_OK) {
      const unsigned char *k = key;
      char kt[64], *vt;
      if (klen < 1 || klen > sizeof kt || k[0] != 0x30) {
        rfail(R, "%s: on disk: a key that is not TEXT", when);
        bad = 1;
        break;
      }
      memcpy(kt, k + 1, klen - 1);
      kt[klen - 1] = 0;
      st = bc_get(s, key, klen, &buf, &value, &info);
      if (st != BC_OK || (info.meta & 7) != 3) {
        rfail(R, "%s: on disk: %s cannot be read: %s", when, kt, bc_errmsg(s));
        bad = 1;
        break;
      }
      vt = malloc(info.value_size + 1);
      if (!vt) abort();
      memcpy(vt, value, info.value_size);
      vt[info.value_size] = 0;
      m_append(&got, kt, vt);
      free(vt);
    }
  }
  bc_stats stats;
  bc_stats_get(s, &stats);
  if (!bad && stats.corrupt) {
    rfail(R, "%s: on disk: %llu damaged records", when, (unsigned long long)stats.corrupt);
    bad = 1;
  }
  bc_iter_close(it);
  bc_buf_free(&buf);
  bc_close(s);
  if (!bad) {
    if (got.n > 1) qsort(got.a, (size_t)got.n, sizeof *got.a, kv_order);
    char w[200];
    snprintf(w, sizeof w, "%s, on disk (as a crash would leave it)", when);
    bad = compare(R, &R->M, &got, w);
  }
  m_free(&got);
  F.armed = armed;
  return bad;
}

/* The model effect of a successful step. */
static void apply(run *R, const step *s) {
  model *m = cur(R);
  if (s->sql && strncmp(s->sql, "CREATE", 6) == 0) R->have_table = 1;
  for (int i = 0; i < s->nops; i++) {
    const op *o = &s->ops[i];
    switch (o->t) {
      case 'P': m_put(m, o->k, o->v); break;
      case 'D': m_del(m, o->k); break;
      case 'R': {
        const char *v = m_get(m, o->k);
        if (v) {
          char *keep = xstrdup(v);
          m_del(m, o->k);
          m_put(m, o->k2, keep);
          free(keep);
        }
        break;
      }
      case 'X':
        for (int j = 0; j < m->n; j++)
          if (strncmp(m->a[j].k, o->k, strlen(o->k)) == 0) {
            char *nv = xprintf("%sx", m->a[j].v);
            free(m->a[j].v);
            m->a[j].v = nv;
          }
        break;
    }
  }
  switch (s->tx) {
    case TX_BEGIN: m_copy(&R->T, &R->M); R->in_txn = 1; R->txn_start = R->step; break;
    case TX_COMMIT: m_copy(&R->M, &R->T); R->in_txn = 0; R->in_sp = 0; break;
    case TX_ROLLBACK: R->in_txn = 0; R->in_sp = 0; break;
    case TX_SAVEPOINT: m_copy(&R->SP, &R->T); R->in_sp = 1; break;
    case TX_ROLLBACK_TO: m_copy(&R->T, &R->SP); break;
    case TX_RELEASE: R->in_sp = 0; break;
  }
}

/* Results of a read step against the model. */
static void check_read(run *R, const step *s, const model *rows) {
  if (s->kind == S_SCAN) {
    compare(R, cur(R), rows, "scan");
  } else if (s->kind == S_GET) {
    const char *want = m_get(cur(R), s->key);
    if (rows->n != (want ? 1 : 0) || (want && strcmp(rows->a[0].v, want) != 0)) {
      g_lost += want && rows->n == 0;
      rfail(R, "point read of %s: got %s, want %s", s->key,
            rows->n ? "a row" : "no row", want ? "its value" : "no row");
    }
    g_keys_checked++;
  }
}

/* Lose the open transaction (SQLite rolled it back, or we do because the
** engine doomed it): the model goes back to the committed map, and the
** workload resumes at its BEGIN. */
static int txn_lost(run *R) {
  R->in_txn = 0;
  R->in_sp = 0;
  return R->txn_start;
}

/* The next write after a fault that no later step of the workload wrote
** after: one more row, checked now and after close and reopen. */
static void after_fault_write(run *R) {
  res r;
  query(R->db, "INSERT OR REPLACE INTO kv VALUES('k999', 'after the fault')", &r, NULL);
  if (r.rc != SQLITE_OK) {
    rfail(R, "the next write after the fault failed: %s", r.msg);
    return;
  }
  m_put(&R->M, "k999", "after the fault");
  check_table(R, "after the next write", NULL);
  disk_check(R, "after the next write");
  reopen(R);
  if (R->db) check_table(R, "after close and reopen", NULL);
}

/* Run the workload once: mode FM_NONE (counting) or one fault. Returns 0 if
** every check passed. */
static int run_workload(int pass, int mode, long at) {
  run R;
  memset(&R, 0, sizeof R);
  R.pass = pass;
  R.step = -1;
  const char *dir = g_rundir;
  snprintf(R.dbpath, sizeof R.dbpath, "%s/t.db", dir);

  F.calls = F.pwrites = 0;
  F.mode = mode;
  F.at = at;
  F.fired = 0;
  F.partial_pending = 0;
  F.sticky_on = 0;
  F.pass = pass;
  if (mode == FM_NONE) F.ncallkind = 0;
  F.recording = mode == FM_NONE;

  if (mkdir(dir, 0755) != 0) {
    fprintf(stderr, "sql_faults: mkdir %s: %s\n", dir, strerror(errno));
    exit(2);
  }
  F.armed = 1;
  db_open(&R);

  /* post: 0 no fault yet; 1 waiting for the next successful write; 2 waiting
  ** for autocommit to close and reopen; 3 done. */
  int post = 0, i = 0, stop = 0, tries = 0;
  while (i < NW && !stop && R.db) {
    step *s = &W[i];
    R.step = i;
    int fired_before = F.fired;
    res r = {SQLITE_OK, SQLITE_OK, ""};
    model rows = {0};
    if (s->kind == S_REOPEN)
      reopen(&R);
    else
      query(R.db, s->sql, &r, &rows);
    F.sticky_on = 0; /* the statement returned: space comes back */
    int here = F.fired && !fired_before;
    if (verbose && mode == FM_NONE)
      fprintf(stderr, "  step %2d: calls so far %4ld  %.60s\n", i, F.calls,
              s->sql ? s->sql : "(close and reopen)");
    if (here) g_injected++;
    site *fs = here ? &sites[F.fired_site] : NULL;
    if (here) fs->injected++;

    if (r.rc == s->expect) {
      apply(&R, s);
      check_read(&R, s, &rows);
      m_free(&rows);
      if (here) {
        /* The fault did not fail the statement: only a short write, or a
        ** caller that tolerates the failure by design, may do that. */
        fs->absorbed++;
        g_absorbed++;
        if (mode != FM_SHORT && !F.fired_tolerated)
          rfail(&R, "%s from %s (call %ld, %s) did not fail the statement",
                mode_name[mode], kind_name[F.fired_kind], F.fired_call, fs->chain);
        check_table(&R, "right after the absorbed fault", NULL);
        disk_check(&R, "right after the absorbed fault");
        post = 1;
      }
      if (post == 1 && s->write) {
        check_table(&R, "after the next write", NULL);
        disk_check(&R, "after the next write");
        post = 2;
      }
      if (post == 2 && !R.in_txn) {
        reopen(&R);
        if (R.db) check_table(&R, "after close and reopen", NULL);
        post = 3;
      }
      i++;
      continue;
    }
    m_free(&rows);

    /* The statement failed. */
    if (here) {
      fs->surfaced++;
      if (mode == FM_SHORT) {
        rfail(&R, "a short write (%s) failed the statement: %s", fs->chain, r.msg);
      } else {
        int want = mode == FM_EIO || mode == FM_STICKY_EIO ? SQLITE_IOERR : SQLITE_FULL;
        if (r.rc != want)
          rfail(&R, "%s from %s: result code %d (%s), want %s; message: %s",
                mode_name[mode], fs->chain, r.ext, sqlite3_errstr(r.ext),
                want == SQLITE_FULL ? "SQLITE_FULL" : "SQLITE_IOERR", r.msg);
        else if (!strstr(r.msg, "'kv'"))
          rfail(&R, "%s from %s: the message does not name the table: %s",
                mode_name[mode], fs->chain, r.msg);
      }
      if (verbose)
        fprintf(stderr, "  step %d failed as injected (%s at %s): %s\n", i,
                mode_name[mode], fs->chain, r.msg);
    } else if (R.in_txn && F.fired && strstr(r.msg, "can only be rolled back")) {
      /* A transaction the engine doomed at the fault refuses everything but
      ** ROLLBACK (bitcask.h: bc_txn_put); the brief allows that. */
      g_doomed++;
      query(R.db, "ROLLBACK", &r, NULL);
      i = txn_lost(&R);
      if (++tries > 3) stop = 1;
      continue;
    } else if (F.fired && strstr(r.msg, "reopen")) {
      /* The store asks to be reopened: a degradation, reported. */
      g_degraded++;
      printf("degraded: pass=%s %s k=%ld: step %d needed a reopen: %s\n",
             pass_sync[pass], mode_name[mode], at, i, r.msg);
      if (R.in_txn) i = txn_lost(&R);
      reopen(&R);
      if (++tries > 3) stop = 1;
      continue;
    } else {
      rfail(&R, "%s (no fault in this statement; %s): %s (code %d)",
            r.rc == SQLITE_OK ? "succeeded, expected an error"
                              : "failed",
            !F.fired ? "no fault injected yet"
                     : post ? "the next statement after the fault"
                            : "fault already injected",
            r.msg, r.ext);
      stop = 1;
      break;
    }
    /* Where to retry: the statement, or its whole transaction if SQLite
    ** rolled that back (it does on SQLITE_IOERR and on most SQLITE_FULL). */
    int retry = i;
    if (R.in_txn && sqlite3_get_autocommit(R.db)) {
      g_sqlite_rollbacks++;
      retry = txn_lost(&R);
    } else if (R.in_txn) {
      g_txn_kept++; /* SQLite rolled back the statement only */
    }
    int doomed = 0;
    check_table(&R, "right after the fault", &doomed);
    disk_check(&R, "right after the fault");
    if (doomed) {
      g_doomed++;
      query(R.db, "ROLLBACK", &r, NULL);
      retry = txn_lost(&R);
      check_table(&R, "after rolling back the doomed transaction", NULL);
    }
    post = 1;
    i = retry;
  }
  R.step = NW;
  if (!stop && R.db && R.in_txn) rfail(&R, "the workload ended inside a transaction");
  /* A fault in the last statements: the next write comes here. */
  if (!stop && R.db && (post == 1 || post == 2)) after_fault_write(&R);
  int fired_before = F.fired;
  db_close(&R);
  F.sticky_on = 0;
  if (F.fired && !fired_before) {
    /* The fault hit the final close (its flush or fsync): nothing could
    ** report it; the store must still open with every committed row and
    ** take the next write. */
    g_injected++;
    sites[F.fired_site].injected++;
    sites[F.fired_site].absorbed++;
    g_absorbed++;
    if (!F.fired_tolerated)
      rfail(&R, "%s from %s hit the final close", mode_name[mode],
            sites[F.fired_site].chain);
    if (db_open(&R) == SQLITE_OK) {
      check_table(&R, "reopened after a fault in close", NULL);
      after_fault_write(&R);
    }
    db_close(&R);
  }
  if (!stop) disk_check(&R, "at the end");
  F.armed = 0;
  if (F.fired && R.failed) sites[F.fired_site].failed_runs++;
  if (mode != FM_NONE && !F.fired && verbose)
    fprintf(stderr, "  (call %ld never came: %ld calls in this run)\n", at, F.calls);

  g_runs++;
  if (R.failed) {
    g_failed++;
    if (mode == FM_NONE)
      printf("FAIL pass=%s fault-free run: %s\n", pass_sync[pass], R.first);
    else
      printf("FAIL pass=%s %s k=%ld at %s %s (call %ld): %s\n", pass_sync[pass],
             mode_name[mode], at, F.fired ? kind_name[F.fired_kind] : "-",
             F.fired ? sites[F.fired_site].chain : "(not injected)",
             F.fired ? F.fired_call : 0L, R.first);
    fflush(stdout);
  } else {
    g_passed++;
  }
  m_free(&R.M);
  m_free(&R.T);
  m_free(&R.SP);
  return R.failed;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void clean_run_dir(void) { nftw(g_rundir, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int site_order(const void *a, const void *b) {
  const site *x = a, *y = b;
  if (x->kind != y->kind) return x->kind - y->kind;
  return strcmp(x->func, y->func);
}

/* ---- the fault runs, spread over worker processes ----
**
** Each run creates a dozen files from scratch, which costs far more than
** the run's CPU on a journalled file system: the runs of a pass are dealt
** round-robin to `jobs` forked workers, each with its own run directory.
** A worker reports its failing runs on stdout as they happen and its
** counters and per-site figures in a file the parent merges. */

typedef struct job {
  int mode;
  long k;
} job;

static void write_results(const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return;
  fprintf(f, "C %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld\n", g_runs,
          g_passed, g_failed, g_injected, g_keys_checked, g_lost, g_wrong, g_extra,
          g_doomed, g_sqlite_rollbacks, g_degraded, g_absorbed, g_txn_kept);
  for (int i = 0; i < nsites; i++)
    if (sites[i].injected)
      fprintf(f, "S %d %ld %ld %ld %ld %s\t%s\n", sites[i].kind, sites[i].injected,
              sites[i].surfaced, sites[i].absorbed, sites[i].failed_runs, sites[i].func,
              sites[i].chain);
  fclose(f);
}

static int read_results(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char line[1024];
  int ok = 0;
  while (fgets(line, sizeof line, f)) {
    long c[13];
    if (line[0] == 'C' &&
        sscanf(line + 1, "%ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld", &c[0],
               &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7], &c[8], &c[9], &c[10],
               &c[11], &c[12]) == 13) {
      g_runs += c[0];
      g_passed += c[1];
      g_failed += c[2];
      g_injected += c[3];
      g_keys_checked += c[4];
      g_lost += c[5];
      g_wrong += c[6];
      g_extra += c[7];
      g_doomed += c[8];
      g_sqlite_rollbacks += c[9];
      g_degraded += c[10];
      g_absorbed += c[11];
      g_txn_kept += c[12];
      ok = 1;
    } else if (line[0] == 'S') {
      int kind, used = 0;
      long inj, sur, abs_, fr;
      if (sscanf(line + 1, "%d %ld %ld %ld %ld %n", &kind, &inj, &sur, &abs_, &fr,
                 &used) != 5 || kind < 0 || kind >= NKIND)
        continue;
      char *func = line + 1 + used, *tab = strchr(func, '\t');
      if (!tab) continue;
      *tab = 0;
      char *chain = tab + 1;
      chain[strcspn(chain, "\n")] = 0;
      int at = site_intern(kind, func, chain);
      sites[at].injected += inj;
      sites[at].surfaced += sur;
      sites[at].absorbed += abs_;
      sites[at].failed_runs += fr;
    }
  }
  fclose(f);
  return ok ? 0 : -1;
}

static void zero_counters(void) {
  g_runs = g_passed = g_failed = g_injected = g_keys_checked = g_lost = g_wrong =
      g_extra = g_doomed = g_sqlite_rollbacks = g_txn_kept = g_degraded = g_absorbed = 0;
  for (int i = 0; i < nsites; i++)
    sites[i].injected = sites[i].surfaced = sites[i].absorbed = sites[i].failed_runs = 0;
}

static void run_jobs_here(int pass, const job *jobs, long njobs, int stride, int first) {
  for (long j = first; j < njobs; j += stride) {
    if (verbose)
      fprintf(stderr, "run pass=%s %s k=%ld\n", pass_sync[pass], mode_name[jobs[j].mode],
              jobs[j].k);
    run_workload(pass, jobs[j].mode, jobs[j].k);
    clean_run_dir();
  }
}

static void run_jobs(int pass, const job *jobs, long njobs, int nworkers) {
  if (nworkers <= 1 || njobs < 2) {
    run_jobs_here(pass, jobs, njobs, 1, 0);
    return;
  }
  pid_t pids[64];
  char res[64][4300];
  fflush(stdout);
  fflush(stderr);
  for (int w = 0; w < nworkers; w++) {
    snprintf(res[w], sizeof res[w], "%s/results.%d", g_scratch, w);
    remove(res[w]);
    pids[w] = fork();
    if (pids[w] < 0) {
      perror("sql_faults: fork");
      exit(2);
    }
    if (pids[w] == 0) {
      F.main = pthread_self();
      zero_counters();
      snprintf(g_rundir, sizeof g_rundir, "%s/run.%d", g_scratch, w);
      clean_run_dir();
      setvbuf(stdout, NULL, _IOLBF, 0);
      run_jobs_here(pass, jobs, njobs, nworkers, w);
      write_results(res[w]);
      free_workload();
      free((void *)jobs);
      for (int i = 0; i < nsites; i++) {
        free(sites[i].func);
        free(sites[i].chain);
      }
      free(sites);
      free(syms);
      free(elf_image);
      free(F.callkind);
      sqlite3_reset_auto_extension();
      sqlite3_shutdown();
      exit(0);
    }
  }
  for (int w = 0; w < nworkers; w++) {
    int status = 0;
    while (waitpid(pids[w], &status, 0) < 0 && errno == EINTR) {
    }
    int bad = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    if (read_results(res[w]) != 0) bad = 1;
    remove(res[w]);
    if (bad) {
      /* A crash, a sanitizer report, a leak: one failure for the worker. */
      printf("FAIL pass=%s worker process %d: %s %d (a crash or a sanitizer report: "
             "see its output above)\n", pass_sync[pass], w,
             WIFEXITED(status) ? "exit status" : "killed by signal",
             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
      g_runs++;
      g_failed++;
    }
  }
}

static void usage(void) {
  fprintf(stderr, "usage: sql_faults SCRATCHDIR [--pass full|normal] [--sticky]\n"
                  "         [--mode enospc|eio|short|partial|sticky-enospc|sticky-eio]"
                  " [--k N] [-v]\n");
  exit(2);
}

int main(int argc, char **argv) {
  int only_pass = -1, only_mode = -1, sticky = 0;
  long only_k = 0;
  const char *scratch = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-v") == 0) {
      verbose = 1;
    } else if (strcmp(argv[i], "--sticky") == 0) {
      sticky = 1;
    } else if (strcmp(argv[i], "--pass") == 0 && i + 1 < argc) {
      i++;
      only_pass = strcmp(argv[i], "full") == 0 ? 0 : strcmp(argv[i], "normal") == 0 ? 1 : -2;
      if (only_pass < 0) usage();
    } else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
      i++;
      only_mode = strcmp(argv[i], "enospc") == 0   ? FM_ENOSPC
                  : strcmp(argv[i], "eio") == 0     ? FM_EIO
                  : strcmp(argv[i], "short") == 0   ? FM_SHORT
                  : strcmp(argv[i], "partial") == 0 ? FM_PARTIAL
                  : strcmp(argv[i], "sticky-enospc") == 0 ? FM_STICKY_ENOSPC
                  : strcmp(argv[i], "sticky-eio") == 0    ? FM_STICKY_EIO
                                                          : -2;
      if (only_mode < 0) usage();
      if (only_mode >= FM_STICKY_ENOSPC) sticky = 1;
    } else if (strcmp(argv[i], "--k") == 0 && i + 1 < argc) {
      only_k = atol(argv[++i]);
    } else if (argv[i][0] != '-' && !scratch) {
      scratch = argv[i];
    } else {
      usage();
    }
  }
  if (!scratch) usage();
  snprintf(g_scratch, sizeof g_scratch, "%s", scratch);
  snprintf(g_rundir, sizeof g_rundir, "%s/run", g_scratch);
  const char *rf = getenv("SQL_FAULTS_REAL_FSYNC");
  F.real_fsync = rf && rf[0] == '1';
  const char *jv = getenv("SQL_FAULTS_JOBS");
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  int nworkers = jv ? atoi(jv) : ncpu > 4 ? 4 : ncpu < 1 ? 1 : (int)ncpu;
  if (nworkers < 1 || only_k || verbose) nworkers = 1;
  if (nworkers > 64) nworkers = 64;
  F.main = pthread_self();
  syms_load();
  {
    void *warm[4]; /* the first backtrace() loads libgcc_s: do it unarmed */
    (void)backtrace(warm, 4);
  }
  sqlite3_auto_extension((void (*)(void))sqlite3_bitcask_init);
  clean_run_dir();

  double t0 = now_s();
  for (int pass = 0; pass < 2; pass++) {
    if (only_pass >= 0 && pass != only_pass) continue;
    build_workload(pass_sync[pass]);
    double tp = now_s();
    long fails_before = g_failed;
    run_workload(pass, FM_NONE, 0);
    clean_run_dir();
    long total = F.calls, pwrites = F.pwrites;
    long by_kind[NKIND] = {0};
    for (int s = 0; s < nsites; s++) by_kind[sites[s].kind] += sites[s].calls[pass];
    printf("pass sync=%s: %d statements, %ld wrapped calls (", pass_sync[pass], NW, total);
    for (int k = 0; k < NKIND; k++)
      printf("%s%s %ld", k ? ", " : "", kind_name[k], by_kind[k]);
    printf(")\n");
    fflush(stdout);

    long cap = 4 * total + 2 * pwrites + 8, njobs = 0;
    job *jobs = malloc((size_t)cap * sizeof *jobs);
    if (!jobs) abort();
    int last = sticky ? FM_STICKY_EIO : FM_PARTIAL;
    for (int mode = FM_ENOSPC; mode <= last; mode++) {
      if (only_mode >= 0 && mode != only_mode) continue;
      long n = mode == FM_SHORT || mode == FM_PARTIAL ? pwrites : total;
      for (long k = 1; k <= n; k++) {
        if (only_k && k != only_k) continue;
        /* A read cannot find the disk full: no ENOSPC for pread. */
        int kind = k <= F.ncallkind ? F.callkind[k - 1] : -1;
        if ((mode == FM_ENOSPC || mode == FM_STICKY_ENOSPC) && kind == K_PREAD &&
            !only_k)
          continue;
        jobs[njobs].mode = mode;
        jobs[njobs].k = k;
        njobs++;
      }
    }
    run_jobs(pass, jobs, njobs, nworkers);
    free(jobs);
    printf("pass sync=%s: %ld fault runs in %.1f s (%d workers), %ld failed\n",
           pass_sync[pass], njobs, now_s() - tp, nworkers, g_failed - fails_before);
    fflush(stdout);
    free_workload();
  }
  double elapsed = now_s() - t0;

  qsort(sites, (size_t)nsites, sizeof *sites, site_order);
  printf("fault sites (kind @ caller: calls in the fault-free run, sync=full/normal; "
         "runs faulted there: failed cleanly / absorbed / failing checks):\n");
  for (int s = 0; s < nsites; s++)
    printf("  %-9s @ %-22s %4ld/%-4ld  injected %4ld: %4ld / %4ld / %ld   [%s]\n",
           kind_name[sites[s].kind], sites[s].func, sites[s].calls[0], sites[s].calls[1],
           sites[s].injected, sites[s].surfaced, sites[s].absorbed,
           sites[s].failed_runs, sites[s].chain);
  printf("%ld faults absorbed by design; in explicit transactions SQLite rolled back "
         "%ld whole transactions and %ld statements only after the fault, %ld were "
         "doomed by the engine (rolled back, retried); %ld needed a reopen; %ld wrong "
         "values, %ld extra keys; %.1f s\n",
         g_absorbed, g_sqlite_rollbacks, g_txn_kept, g_doomed, g_degraded, g_wrong,
         g_extra, elapsed);
  printf("sql_faults: %ld runs, %d fault sites, %ld faults injected, %ld keys checked, "
         "%ld keys lost\n",
         g_runs, nsites, g_injected, g_keys_checked, g_lost);
  printf("%ld passed, %ld failed\n", g_passed, g_failed);

  for (int s = 0; s < nsites; s++) {
    free(sites[s].func);
    free(sites[s].chain);
  }
  free(sites);
  free(syms);
  free(elf_image);
  free(F.callkind);
  sqlite3_reset_auto_extension();
  sqlite3_shutdown();
  return g_failed ? 1 : 0;
}
