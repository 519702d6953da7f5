/*
** store.c -- the public API of bitcask.h: open (create, adopt, lock,
** recover), close, the read and write calls, merge, stats and destroy, plus
** the sorted array of data files and its descriptor cache.
**
** Invariants:
**  - Every public function that takes a bc_store holds s->mu for its whole
**    duration; the files it calls expect that (internal.h).
**  - s->files is sorted by id and holds every data file the keydir may point
**    to; its fds are owned.  Besides the active file's, at most
**    s->max_open_files of them are open, in the descriptor cache (an LRU);
**    the others are closed and opened again on demand (bc_file_fd).
**  - bc_open publishes a store only after recovery succeeded; on any failure
**    everything it acquired (lock, fds, memory) is released and nothing on
**    disk was changed except what recovery is allowed to repair (a torn tail,
**    an interrupted merge, leftover temporary files).
*/
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Bytes buffered in memory before an append goes to the active file. */
#define BC_WBUF_SIZE (1u << 20)


void bc_options_init(bc_options *opt) {
  memset(opt, 0, sizeof *opt);
  opt->sync = BC_SYNC_FULL;
}

void bc_buf_free(bc_buf *buf) {
  if (!buf) return;
  free(buf->data);
  buf->data = NULL;
  buf->cap = 0;
}

/* ------------------------------------------------------ the files array */

size_t bc_file_lower_bound(const bc_store *s, uint32_t id) {
  size_t lo = 0, hi = s->nfiles;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->files[mid].id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

bc_file *bc_file_get(bc_store *s, uint32_t id) {
  size_t lo = bc_file_lower_bound(s, id);
  return lo < s->nfiles && s->files[lo].id == id ? &s->files[lo] : NULL;
}

bc_file *bc_file_add(bc_store *s, uint32_t id) {
  if (s->nfiles == s->capfiles) {
    size_t cap = s->capfiles ? s->capfiles * 2 : 16;
    bc_file *p = realloc(s->files, cap * sizeof *p);
    if (!p) return NULL;
    s->files = p;
    s->capfiles = cap;
  }
  size_t at = s->nfiles;
  while (at > 0 && s->files[at - 1].id > id) at--;
  memmove(&s->files[at + 1], &s->files[at], (s->nfiles - at) * sizeof *s->files);
  s->nfiles++;
  bc_file *f = &s->files[at];
  memset(f, 0, sizeof *f);
  f->id = id;
  f->fd = -1;
  f->min_seq = UINT64_MAX;
  return f;
}

void bc_file_unmap(bc_file *f) {
  if (f->map) munmap((void *)f->map, f->map_len);
  f->map = NULL;
  f->map_len = 0;
}

void bc_file_remove(bc_store *s, uint32_t id) {
  bc_file *f = bc_file_get(s, id);
  if (!f) return;
  bc_file_unmap(f);
  bc_file_close(s, f);
  size_t at = (size_t)(f - s->files);
  memmove(&s->files[at], &s->files[at + 1],
          (s->nfiles - at - 1) * sizeof *s->files);
  s->nfiles--;
}

/* ------------------------------------------------- the descriptor cache
**
** An LRU of the descriptors of data files other than the active one (as
** LevelDB's table cache): at most s->max_open_files are open at a time.
** The active file's descriptor, a merge's outputs, LOCK, and the short-lived
** descriptors of hint files, MERGE and the directory are outside it.  A slot
** names its file by id, so the memmoves of s->files do not disturb it. */

/* Unlink slot i from the LRU list. */
static void fdc_unlink(bc_store *s, uint32_t i) {
  bc_fdslot *e = &s->fdc[i];
  if (e->prev != BC_FDC_NIL)
    s->fdc[e->prev].next = e->next;
  else
    s->fdc_head = e->next;
  if (e->next != BC_FDC_NIL)
    s->fdc[e->next].prev = e->prev;
  else
    s->fdc_tail = e->prev;
}

/* Link slot i in as the most recently used. */
static void fdc_push(bc_store *s, uint32_t i) {
  bc_fdslot *e = &s->fdc[i];
  e->prev = BC_FDC_NIL;
  e->next = s->fdc_head;
  if (s->fdc_head != BC_FDC_NIL) s->fdc[s->fdc_head].prev = i;
  s->fdc_head = i;
  if (s->fdc_tail == BC_FDC_NIL) s->fdc_tail = i;
}

void bc_file_uncache(bc_store *s, bc_file *f) {
  if (!f->slot) return;
  uint32_t i = f->slot - 1;
  fdc_unlink(s, i);
  s->fdc[i].next = s->fdc_free;
  s->fdc_free = i;
  s->fdc_n--;
  f->slot = 0;
}

void bc_file_close(bc_store *s, bc_file *f) {
  bc_file_uncache(s, f);
  if (f->fd >= 0) s->io.close(s->io.ctx, f->fd);
  f->fd = -1;
}

/* Close the least recently used cached descriptor.  0, or -1 if none. */
static int fdc_evict(bc_store *s) {
  if (s->fdc_tail == BC_FDC_NIL) return -1;
  bc_file *v = bc_file_get(s, s->fdc[s->fdc_tail].id);
  if (v && v->slot == s->fdc_tail + 1) {
    bc_file_close(s, v);
  } else {
    /* Cannot happen (a file leaves s->files only through bc_file_remove,
    ** which closes it first, or bc_file_retire, which takes its descriptor
    ** out of the cache first); drop the slot rather than loop. */
    uint32_t i = s->fdc_tail;
    fdc_unlink(s, i);
    s->fdc[i].next = s->fdc_free;
    s->fdc_free = i;
    s->fdc_n--;
  }
  return 0;
}

bc_status bc_file_fd(bc_store *s, bc_file *f, int *fd) {
  if (f->fd >= 0) {
    if (f->slot && s->fdc_head != f->slot - 1) {
      fdc_unlink(s, f->slot - 1);
      fdc_push(s, f->slot - 1);
    }
    *fd = f->fd;
    return BC_OK;
  }
  while (s->fdc_n >= s->max_open_files)
    if (fdc_evict(s) != 0) break;
  if (s->fdc_free == BC_FDC_NIL) {
    /* Grow the slots (doubling, up to the limit). */
    uint32_t cap = s->fdc_cap ? s->fdc_cap * 2 : 16;
    if (cap > s->max_open_files) cap = s->max_open_files;
    if (cap <= s->fdc_cap) cap = s->fdc_cap + 1;
    bc_fdslot *p = realloc(s->fdc, (size_t)cap * sizeof *p);
    if (!p) return bc_seterr(s, BC_NOMEM, "out of memory");
    s->fdc = p;
    for (uint32_t i = cap; i-- > s->fdc_cap;) {
      p[i].next = s->fdc_free;
      s->fdc_free = i;
    }
    s->fdc_cap = cap;
  }
  char path[PATH_MAX];
  int d;
  for (;;) {
    bc_path_id(s, path, f->id, f->path_merging ? BC_SUFFIX_DATA_MERGING : BC_SUFFIX_DATA);
    d = s->io.open(s->io.ctx, path, O_RDONLY, 0);
    if (d >= 0) break;
    if (errno == ENOENT && f->path_merging) {
      f->path_merging = 0; /* the writer finished the merge: renamed */
      continue;
    }
    /* Out of descriptors: give back the cache's, oldest first. */
    if ((errno == EMFILE || errno == ENFILE) && fdc_evict(s) == 0) continue;
    if (errno == ENOENT && s->read_only)
      return bc_seterr_errno(s, BC_IOERR, errno,
                             "data file %010u" BC_SUFFIX_DATA ": open failed: the writer "
                             "removed it (a merge) since this reader listed "
                             "the files; bc_refresh catches up", f->id);
    return bc_seterr_errno(s, BC_IOERR, errno, "data file %010u%s: open failed",
                           f->id, f->path_merging ? BC_SUFFIX_DATA_MERGING : BC_SUFFIX_DATA);
  }
  uint32_t i = s->fdc_free;
  s->fdc_free = s->fdc[i].next;
  s->fdc[i].id = f->id;
  fdc_push(s, i);
  s->fdc_n++;
  f->slot = i + 1;
  f->fd = d;
  *fd = d;
  return BC_OK;
}

int bc_file_stat(bc_store *s, bc_file *f, struct stat *sb) {
  if (f->fd >= 0) return fstat(f->fd, sb);
  char path[PATH_MAX];
  bc_path_id(s, path, f->id, f->path_merging ? BC_SUFFIX_DATA_MERGING : BC_SUFFIX_DATA);
  return stat(path, sb);
}

/* A quarter of the soft RLIMIT_NOFILE (UINT32_MAX if unlimited or
** unknown), at least 1: the most descriptors the cache may take, so that the
** store leaves most of the process's to the rest of it -- a cache allowed
** more than the process can hold fills up and leaves none for OWNERS, a
** hint file, the directory's fsync.  The default max_open_files is this, at
** most BC_DEFAULT_MAX_OPEN_FILES_CAP; an explicit value can only be lowered
** to it. */
static uint32_t quarter_of_rlimit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
      rl.rlim_cur / 4 >= UINT32_MAX)
    return UINT32_MAX;
  return rl.rlim_cur / 4 ? (uint32_t)(rl.rlim_cur / 4) : 1;
}

void bc_file_note_seq(bc_file *f, uint64_t seq) {
  if (seq < f->min_seq) f->min_seq = seq;
  if (seq > f->max_seq) f->max_seq = seq;
}

/* ---------------------------------------------------------- open/close */

/* BC_SYNC_NORMAL: fsync the active file every BC_NORMAL_SYNC_MS / 2 while it
** holds unsynced bytes, so a commit is on stable storage within about
** BC_NORMAL_SYNC_MS.  Only fsyncs: the write buffer is flushed by the
** writers (a commit always flushes), whose errors then reach a caller. */
static void *syncer_main(void *arg) {
  bc_store *s = arg;
  pthread_mutex_lock(&s->mu);
  while (!s->syncer_stop) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)BC_NORMAL_SYNC_MS / 2 * 1000000u;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    pthread_cond_timedwait(&s->syncer_cv, &s->mu, &ts);
    if (s->syncer_stop) break;
    bc_file *f = bc_file_get(s, s->active_id);
    if (s->need_fsync && f && bc_fsync(s, f->fd) == 0) {
      s->need_fsync = 0;
      s->last_fsync_ms = bc_now_ms();
      s->active_synced = f->size;
    }
    if (s->need_dirsync && bc_fsync_store_dir(s) == 0) s->need_dirsync = 0;
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

static void syncer_start(bc_store *s) {
  pthread_condattr_t ca;
  if (pthread_condattr_init(&ca) != 0) return;
  int ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
           pthread_cond_init(&s->syncer_cv, &ca) == 0;
  pthread_condattr_destroy(&ca);
  if (!ok) return;
  if (pthread_create(&s->syncer, NULL, syncer_main, s) != 0) {
    pthread_cond_destroy(&s->syncer_cv);
    return; /* bc_sync_active then fsyncs on commits itself */
  }
  s->syncer_running = 1;
}

static void syncer_stop(bc_store *s) {
  if (!s->syncer_running) return;
  pthread_mutex_lock(&s->mu);
  s->syncer_stop = 1;
  pthread_cond_signal(&s->syncer_cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->syncer, NULL);
  pthread_cond_destroy(&s->syncer_cv);
  s->syncer_running = 0;
}

static void store_free(bc_store *s) {
  /* In a child of fork() the background thread does not exist. */
  if (bc_foreign(s)) s->syncer_running = 0;
  syncer_stop(s);
  bc_txn_free(s->txn);
  bc_follow_free(s);
  bc_snap_free_all(s);
  for (size_t i = 0; i < s->nfiles; i++) {
    bc_file_unmap(&s->files[i]);
    bc_file_close(s, &s->files[i]);
  }
  free(s->fdc);
  bc_ahint_free(s); /* before the lock goes: it removes a file */
  bc_lock_release(s);
  bc_undo_clear(s);
  bc_kd_free(&s->kd);
  free(s->files);
  free(s->wbuf);
  free(s->undo);
  free(s->dir);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

/* Make sure s->dir is a store directory: create or adopt it (writers with
** create), or refuse it. */
static bc_status prepare_dir(bc_store *s, int create) {
  struct stat sb;
  int created = 0;
  if (stat(s->dir, &sb) != 0) {
    if (errno != ENOENT)
      return bc_seterr_errno(s, BC_NOTSTORE, errno, "cannot stat the directory");
    if (!create || s->read_only)
      return bc_seterr(s, BC_NOTSTORE, "the directory does not exist");
    if (mkdir(s->dir, 0755) != 0 && errno != EEXIST)
      return bc_seterr_errno(s, BC_NOTSTORE, errno, "cannot create the directory");
    created = errno != EEXIST;
    if (stat(s->dir, &sb) != 0)
      return bc_seterr_errno(s, BC_NOTSTORE, errno, "cannot stat the directory");
  }
  if (!S_ISDIR(sb.st_mode)) return bc_seterr(s, BC_NOTSTORE, "is not a directory");
  if (access(s->dir, s->read_only ? (R_OK | X_OK) : (R_OK | W_OK | X_OK)) != 0)
    return bc_seterr_errno(s, BC_NOTSTORE, errno, "the directory is not %s",
                           s->read_only ? "readable" : "readable and writable");
  int found = 0, created_dir = 0;
  bc_status st = bc_marker_read(s, &found, &created_dir);
  if (st == BC_CORRUPT)
    return bc_seterr(s, BC_NOTSTORE, "its BITCASK marker file is damaged; not a "
                                     "store this library wrote");
  if (st != BC_OK) return st;
  if (found == 1) return BC_OK;
  int damaged = found == 2;
  bc_dirlist dl;
  st = bc_dirlist_read(s, s->dir, &dl);
  if (st != BC_OK) return st;
  /* Nothing but a marker being written (or, from older versions, written
  ** in place and cut short) and a LOCK: a creation that never finished. */
  size_t n = dl.nentries - (size_t)dl.has_marker - (size_t)dl.has_marker_tmp -
             (size_t)dl.has_lock;
  int had_tmp = dl.has_marker_tmp;
  char first[64] = "";
  if (dl.foreign) snprintf(first, sizeof first, "%s", dl.foreign);
  bc_dirlist_free(&dl);
  if (damaged && (n != 0 || !create || s->read_only))
    return bc_seterr(s, BC_NOTSTORE, "its BITCASK marker file is incomplete (a "
                                     "creation cut short) and the directory is "
                                     "not otherwise empty");
  if (n == 0 && create && !s->read_only) {
    char path[PATH_MAX];
    bc_path_name(s, path, BC_FILENAME_MARKER);
    if (damaged && s->io.unlink(s->io.ctx, path) != 0)
      return bc_seterr_errno(s, BC_IOERR, errno, "removing a damaged BITCASK failed");
    bc_path_name(s, path, BC_FILENAME_MARKER_TMP);
    if (had_tmp && s->io.unlink(s->io.ctx, path) != 0 && errno != ENOENT)
      return bc_seterr_errno(s, BC_IOERR, errno, "removing BITCASK.tmp failed");
  }
  if (n != 0)
    return bc_seterr(s, BC_NOTSTORE,
                     "the directory is not empty and is not a bitcask store "
                     "(it has no BITCASK marker file%s%s%s)",
                     first[0] ? "; it holds '" : "", first, first[0] ? "'" : "");
  if (!create || s->read_only)
    return bc_seterr(s, BC_NOTSTORE, "the directory is empty, not a bitcask store");
  return bc_marker_write(s, created);
}

bc_status bc_open(const char *dir, const bc_options *opt, bc_store **out,
                  char *err, size_t errlen) {
  bc_options defaults;
  if (!opt) {
    bc_options_init(&defaults);
    opt = &defaults;
  }
  *out = NULL;
  if (!dir || !*dir) {
    bc_copy_err(err, errlen, "bitcask store: the directory name is empty");
    return BC_INVALID;
  }
  if (strlen(dir) + BC_LONGEST_NAME > PATH_MAX) {
    bc_copy_err(err, errlen, "bitcask store: the directory name is too long");
    return BC_INVALID;
  }
  uint64_t mfs = opt->max_file_size ? opt->max_file_size : BC_DEFAULT_MAX_FILE_SIZE;
  if (mfs < BC_MIN_MAX_FILE_SIZE || mfs > BC_MAX_FILE_SIZE_LIMIT ||
      (opt->sync != BC_SYNC_FULL && opt->sync != BC_SYNC_NORMAL &&
       opt->sync != BC_SYNC_OFF)) {
    if (err && errlen)
      snprintf(err, errlen,
               "bitcask store '%s': max_file_size must be between %u and 2^40 "
               "bytes and sync one of full, normal, off", dir,
               BC_MIN_MAX_FILE_SIZE);
    return BC_INVALID;
  }
  if (opt->max_open_files > BC_MAX_OPEN_FILES_LIMIT) {
    if (err && errlen)
      snprintf(err, errlen,
               "bitcask store '%s': max_open_files must be between 1 and %u "
               "(0: the default)", dir, BC_MAX_OPEN_FILES_LIMIT);
    return BC_INVALID;
  }
  bc_store *s = calloc(1, sizeof *s);
  if (!s) {
    bc_copy_err(err, errlen, "bitcask store: out of memory");
    return BC_NOMEM;
  }
  s->lock_fd = -1;
  {
    uint32_t q = quarter_of_rlimit();
    uint32_t want = opt->max_open_files ? opt->max_open_files
                                        : BC_DEFAULT_MAX_OPEN_FILES_CAP;
    s->max_open_files = want < q ? want : q;
  }
  s->fdc_head = s->fdc_tail = s->fdc_free = BC_FDC_NIL;
  s->owner_pid = getpid();
  s->io = opt->io ? *opt->io : bc_posix_io;
  s->use_mmap = opt->io == NULL;
  s->max_file_size = mfs;
  s->sync = opt->sync;
  s->read_only = opt->read_only ? 1 : 0;
  s->dir = strdup(dir);
  s->wcap = BC_WBUF_SIZE;
  s->wbuf = s->read_only ? NULL : malloc(s->wcap);
  if (s->read_only) s->wcap = 0;
  /* Seed the keydir hash per store so key sets cannot be crafted offline to
  ** collide (the address and the clock differ from run to run). */
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t seed = (uint64_t)(uintptr_t)s ^ ((uint64_t)ts.tv_nsec << 20) ^
                  (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
  int mu_ok = pthread_mutex_init(&s->mu, NULL) == 0;
  if (!s->dir || (!s->read_only && !s->wbuf) || bc_kd_init(&s->kd, seed) != 0 ||
      !mu_ok) {
    if (!mu_ok) pthread_mutex_init(&s->mu, NULL);
    bc_copy_err(err, errlen, "bitcask store: out of memory");
    store_free(s);
    return BC_NOMEM;
  }
  s->last_fsync_ms = bc_now_ms();
  bc_status st = prepare_dir(s, opt->create);
  if (st == BC_OK && !s->read_only) st = bc_lock_acquire(s);
  if (st == BC_OK) st = bc_recover(s);
  if (st != BC_OK) {
    bc_copy_err(err, errlen, s->err);
    store_free(s);
    return st;
  }
  s->err[0] = 0;
  if (!s->read_only && s->sync == BC_SYNC_NORMAL) syncer_start(s);
  *out = s;
  return BC_OK;
}

bc_status bc_close(bc_store *s) {
  if (!s) return BC_OK;
  if (bc_foreign(s)) {
    /* A child's copy of its parent's store (lock.c, "Processes"): close and
    ** free, and nothing else -- the buffered records, the open transaction
    ** and the lock are the parent's.  The store's mutex is not taken: a
    ** thread of the parent may have held it at the fork. */
    bc_fork_child(s);
    bc_txn_free(s->txn);
    s->txn = NULL;
    store_free(s);
    return BC_OK;
  }
  syncer_stop(s);
  pthread_mutex_lock(&s->mu);
  bc_status st = BC_OK;
  if (s->txn) {
    bc_txn_free(s->txn); /* nothing of it was committed: a rollback */
    s->txn = NULL;
  }
  if (!s->read_only) {
    (void)bc_check_tail(s); /* a last chance to cut a failed write off */
    st = bc_flush(s);
    bc_file *f = bc_file_get(s, s->active_id);
    if (st == BC_OK && s->sync != BC_SYNC_OFF && s->need_fsync && f) {
      if (bc_fsync(s, f->fd) != 0)
        st = BC_IOERR;
      else
        s->active_synced = f->size;
    }
    if (st == BC_OK && s->sync != BC_SYNC_OFF && s->need_dirsync &&
        bc_fsync_store_dir(s) != 0)
      st = BC_IOERR;
  }
  /* A commit whose outcome on disk is unknown: tell the caller the store
  ** did not close clean (the next open decides from what is on disk). */
  if (st == BC_OK && s->poisoned) st = BC_IOERR;
  pthread_mutex_unlock(&s->mu);
  store_free(s);
  return st;
}

const char *bc_errmsg(bc_store *s) { return s->err; }

char *bc_errmsg_copy(bc_store *s, char *buf, size_t buflen) {
  if (!buflen) return buf;
  pthread_mutex_lock(&s->mu);
  snprintf(buf, buflen, "%s", s->err);
  pthread_mutex_unlock(&s->mu);
  return buf;
}

const char *bc_dir(const bc_store *s) { return s->dir; }

uint64_t bc_count(bc_store *s) {
  pthread_mutex_lock(&s->mu);
  uint64_t n = s->kd.count;
  pthread_mutex_unlock(&s->mu);
  return n;
}

/* ------------------------------------------------------ reads, writes */

void bc_fill_info(const bc_entry *e, bc_info *info) {
  if (!info) return;
  info->seq = bc_e_seq(e);
  info->value_size = e->vsize;
  info->meta = bc_e_meta(e);
}

bc_status bc_lookup(bc_store *s, const void *key, size_t klen, bc_info *info) {
  if (klen > BC_MAX_KEY_SIZE) return BC_NOTFOUND;
  pthread_mutex_lock(&s->mu);
  bc_entry *e = bc_kd_get(&s->kd, key, klen);
  if (e) bc_fill_info(e, info);
  pthread_mutex_unlock(&s->mu);
  return e ? BC_OK : BC_NOTFOUND;
}

bc_status bc_get(bc_store *s, const void *key, size_t klen, bc_buf *buf,
                 const void **value, bc_info *info) {
  if (klen > BC_MAX_KEY_SIZE) return BC_NOTFOUND;
  pthread_mutex_lock(&s->mu);
  bc_status st = BC_NOTFOUND;
  bc_entry *e = bc_kd_get(&s->kd, key, klen);
  if (e) {
    st = bc_datafile_read(s, e, key, klen, buf, value);
    if (st == BC_OK) bc_fill_info(e, info);
  }
  pthread_mutex_unlock(&s->mu);
  return st;
}

bc_status bc_check_sizes(bc_store *s, size_t klen, size_t vlen) {
  if (klen > BC_MAX_KEY_SIZE)
    return bc_seterr(s, BC_INVALID, "key of %zu bytes exceeds the limit of %u",
                     klen, BC_MAX_KEY_SIZE);
  if (vlen > BC_MAX_VALUE_SIZE)
    return bc_seterr(s, BC_INVALID, "value of %zu bytes exceeds the limit of %u",
                     vlen, BC_MAX_VALUE_SIZE);
  return BC_OK;
}

static bc_status check_write(bc_store *s, size_t klen, size_t vlen) {
  bc_status st = bc_check_sizes(s, klen, vlen);
  if (st != BC_OK) return st;
  if (s->read_only) return bc_seterr(s, BC_READONLY, "is open read-only");
  if (s->txn) return bc_seterr(s, BC_BUSY, "a transaction is open on this store");
  return BC_OK;
}

bc_status bc_put(bc_store *s, const void *key, size_t klen, uint8_t meta,
                 const void *value, size_t vlen) {
  if (bc_foreign(s)) return bc_foreign_error(s);
  pthread_mutex_lock(&s->mu);
  bc_status st = check_write(s, klen, vlen);
  if (st == BC_OK) st = bc_append(s, BC_REC_PUT, meta, key, klen, value, vlen);
  pthread_mutex_unlock(&s->mu);
  return st;
}

bc_status bc_delete(bc_store *s, const void *key, size_t klen) {
  if (bc_foreign(s)) return bc_foreign_error(s);
  pthread_mutex_lock(&s->mu);
  bc_status st = check_write(s, klen, 0);
  if (st == BC_OK) st = bc_append(s, BC_REC_TOMBSTONE, 0, key, klen, NULL, 0);
  pthread_mutex_unlock(&s->mu);
  return st;
}

bc_status bc_sync(bc_store *s) {
  if (!s->read_only && bc_foreign(s)) return bc_foreign_error(s);
  pthread_mutex_lock(&s->mu);
  bc_status st = bc_sync_active(s, 0);
  pthread_mutex_unlock(&s->mu);
  return st;
}

bc_status bc_merge(bc_store *s, uint64_t *reclaimed) {
  uint64_t dummy;
  if (!reclaimed) reclaimed = &dummy;
  *reclaimed = 0;
  if (!s->read_only && bc_foreign(s)) return bc_foreign_error(s);
  pthread_mutex_lock(&s->mu);
  bc_status st = s->read_only ? bc_seterr(s, BC_READONLY, "is open read-only")
                 : s->txn ? bc_seterr(s, BC_BUSY, "cannot merge while a "
                                                  "transaction is open")
                          : bc_merge_run(s, reclaimed);
  pthread_mutex_unlock(&s->mu);
  return st;
}

bc_status bc_stats_get(bc_store *s, bc_stats *out) {
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&s->mu);
  out->keys = s->kd.count;
  out->recovery_pending = s->recovery_pending;
  bc_snap_stats(s, out);
  uint64_t missing = 0;
  for (size_t i = 0; i < s->nfiles; i++) {
    const bc_file *f = &s->files[i];
    missing += f->missing ? 1 : 0;
    out->damaged_files += f->damaged ? 1 : 0;
    out->hint_files += f->has_hint ? 1 : 0;
    out->total_bytes += f->size;
    /* Not more than a sealed file holds: keys of records cut off a damaged
    ** file still point past its end. */
    out->live_bytes += f->id == s->active_id || f->live_bytes <= f->size
                           ? f->live_bytes : f->size;
  }
  out->total_bytes += s->wlen;
  /* File headers are overhead, not dead records. */
  out->data_files = s->nfiles - missing;
  uint64_t headers = out->data_files * BC_FILE_HEADER_SIZE;
  uint64_t used = out->live_bytes + headers;
  out->dead_bytes = out->total_bytes > used ? out->total_bytes - used : 0;
  out->active_file_id = s->active_id;
  out->keydir_bytes = s->kd.heap_bytes + bc_kt_bytes(&s->kd);
  out->next_seq = s->next_seq;
  out->merges = s->merges;
  out->corrupt = s->corrupt;
  out->truncated_bytes = s->truncated_bytes;
  out->fsyncs = s->fsyncs;
  out->commits = s->commits;
  out->max_file_size = s->max_file_size;
  for (size_t i = 0; i < s->nfiles; i++) out->open_files += s->files[i].fd >= 0;
  out->max_open_files = s->max_open_files;
  out->sync = s->sync;
  out->read_only = s->read_only;
  pthread_mutex_unlock(&s->mu);
  return BC_OK;
}

/* ------------------------------------------------------------- destroy */

bc_status bc_destroy(const char *dir, char *err, size_t errlen) {
  char path[PATH_MAX];
  struct stat sb;
  if (!dir || strlen(dir) + BC_LONGEST_NAME > PATH_MAX) {
    bc_copy_err(err, errlen, "bitcask store: bad directory name");
    return BC_INVALID;
  }
  if (stat(dir, &sb) != 0 && errno == ENOENT) return BC_OK;
  snprintf(path, sizeof path, "%s/" BC_FILENAME_MARKER, dir);
  int created_dir = 0, version = 0;
  {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char text[128];
    ssize_t n = fd >= 0 ? read(fd, text, sizeof text) : -1;
    if (fd >= 0) close(fd);
    if (n < 0 || bc_marker_parse(text, (size_t)n, &version, &created_dir) != 0) {
      if (err && errlen)
        snprintf(err, errlen,
                 "bitcask store '%s': not a bitcask store (no valid BITCASK "
                 "marker); nothing was deleted", dir);
      return BC_NOTSTORE;
    }
  }
  /* Take the writer lock so no one writes while the files go. */
  snprintf(path, sizeof path, "%s/" BC_FILENAME_LOCK, dir);
  int lfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lfd < 0 || flock(lfd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    if (lfd >= 0) close(lfd);
    if (err && errlen)
      snprintf(err, errlen, "bitcask store '%s': %s", dir,
               e == EWOULDBLOCK ? "is open by a writer; not deleted"
                                : strerror(e));
    return e == EWOULDBLOCK ? BC_LOCKED : BC_IOERR;
  }
  bc_dirlist dl;
  if (bc_dirlist_read(NULL, dir, &dl) != BC_OK) {
    close(lfd);
    if (err && errlen)
      snprintf(err, errlen, "bitcask store '%s': cannot list the directory", dir);
    return BC_IOERR;
  }
  bc_status st = BC_OK;
  bc_idset sets[BC_DIRLIST_NSETS];
  bc_dirlist_sets(&dl, sets);
  /* The MERGE manifest first, so a crash halfway cannot make a later open
  ** redo a merge whose files are gone; the owners file with it (the caller
  ** decided the store has none left). */
  const char *names[] = {BC_FILENAME_MERGE, BC_FILENAME_MERGE_TMP,
                         BC_FILENAME_OWNERS, BC_FILENAME_OWNERS_TMP};
  for (size_t k = 0; k < 4 && st == BC_OK; k++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[k]);
    if (unlink(path) != 0 && errno != ENOENT) st = BC_IOERR;
  }
  for (size_t k = 0; k < BC_DIRLIST_NSETS && st == BC_OK; k++)
    for (size_t i = 0; i < sets[k].n && st == BC_OK; i++) {
      snprintf(path, sizeof path, "%s/%010u%s", dir, sets[k].ids[i], sets[k].suffix);
      if (unlink(path) != 0 && errno != ENOENT) st = BC_IOERR;
    }
  int foreign = dl.foreign != NULL;
  bc_dirlist_free(&dl);
  if (st == BC_OK) {
    /* The marker goes last but one: while data files remain, the directory
    ** still says it is a store, so a failed destroy can be retried. */
    snprintf(path, sizeof path, "%s/" BC_FILENAME_MARKER, dir);
    if (unlink(path) != 0 && errno != ENOENT) st = BC_IOERR;
  }
  int e = errno;
  snprintf(path, sizeof path, "%s/" BC_FILENAME_LOCK, dir);
  if (st == BC_OK) unlink(path);
  close(lfd);
  if (st != BC_OK) {
    if (err && errlen)
      snprintf(err, errlen, "bitcask store '%s': deleting its files failed: %s",
               dir, strerror(e));
    return st;
  }
  if (created_dir && !foreign) (void)rmdir(dir); /* fails harmlessly if not empty */
  return BC_OK;
}
