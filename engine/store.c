/*
** store.c -- the public API of bitcask.h: open (create, adopt, lock,
** recover), close, the read and write calls, merge, stats and destroy.
**
** Invariants:
**  - Every public function that takes a bc_store holds s->mu for its whole
**    duration; the functions of the engine's private headers it calls
**    expect that.
**  - bc_open publishes a store only after recovery succeeded; on any failure
**    everything it acquired (lock, fds, memory) is released and nothing on
**    disk was changed except what recovery is allowed to repair (a torn tail,
**    an interrupted merge, leftover temporary files).
*/
#include "bitcask.h"
#include "datafile.h"
#include "error.h"
#include "files.h"
#include "follow.h"
#include "format.h"
#include "io.h"
#include "keydir.h"
#include "layout.h"
#include "lock.h"
#include "marker.h"
#include "merge.h"
#include "recovery.h"
#include "snapshot.h"
#include "store.h"
#include "txn.h"
#include "versions.h"
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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

/* ---------------------------------------------------------- open/close */

static void store_free(bc_store *s) {
  /* In a child of fork() the background thread does not exist. */
  if (bc_foreign(s)) s->syncer_running = 0;
  bc_syncer_stop(s);
  bc_txn_free(s->txn);
  bc_follow_free(s);
  bc_snap_free_all(s);
  bc_files_free(s);
  bc_ahint_free(s); /* before the lock goes: it removes a file */
  bc_lock_release(s);
  bc_undo_clear(s);
  bc_kd_free(&s->kd);
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
      return bc_seterr_errno(s, BC_IOERR, errno,
                             "removing a damaged " BC_FILENAME_MARKER " failed");
    bc_path_name(s, path, BC_FILENAME_MARKER_TMP);
    if (had_tmp && s->io.unlink(s->io.ctx, path) != 0 && errno != ENOENT)
      return bc_seterr_errno(s, BC_IOERR, errno,
                             "removing " BC_FILENAME_MARKER_TMP " failed");
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

/* bc_open's arguments, checked: BC_INVALID with the message in err. */
static bc_status check_options(const char *dir, const bc_options *opt, char *err,
                               size_t errlen) {
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
  return BC_OK;
}

/* A store for dir with opt's settings (checked), nothing on disk touched
** yet.  NULL on NOMEM. */
static bc_store *store_new(const char *dir, const bc_options *opt) {
  bc_store *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->lock_fd = -1;
  bc_files_init(s, opt->max_open_files);
  s->owner_pid = getpid();
  s->io = opt->io ? *opt->io : bc_posix_io;
  s->use_mmap = opt->io == NULL;
  s->max_file_size = opt->max_file_size ? opt->max_file_size : BC_DEFAULT_MAX_FILE_SIZE;
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
    store_free(s);
    return NULL;
  }
  s->last_fsync_ms = bc_now_ms();
  return s;
}

bc_status bc_open(const char *dir, const bc_options *opt, bc_store **out,
                  char *err, size_t errlen) {
  bc_options defaults;
  if (!opt) {
    bc_options_init(&defaults);
    opt = &defaults;
  }
  *out = NULL;
  bc_status st = check_options(dir, opt, err, errlen);
  if (st != BC_OK) return st;
  bc_store *s = store_new(dir, opt);
  if (!s) {
    bc_copy_err(err, errlen, "bitcask store: out of memory");
    return BC_NOMEM;
  }
  st = prepare_dir(s, opt->create);
  if (st == BC_OK && !s->read_only) st = bc_lock_acquire(s);
  if (st == BC_OK) st = s->read_only ? bc_follow_open(s) : bc_recover(s, NULL);
  if (st != BC_OK) {
    bc_copy_err(err, errlen, s->err);
    store_free(s);
    return st;
  }
  s->err[0] = 0;
  if (!s->read_only && s->sync == BC_SYNC_NORMAL) bc_syncer_start(s);
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
    bc_lock_close_inherited(s);
    bc_txn_free(s->txn);
    s->txn = NULL;
    store_free(s);
    return BC_OK;
  }
  bc_syncer_stop(s);
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

bc_status bc_refresh(bc_store *s) {
  if (!s->read_only) return BC_OK;
  pthread_mutex_lock(&s->mu);
  bc_status st = bc_refresh_locked(s);
  pthread_mutex_unlock(&s->mu);
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

/* bc_destroy has no store: the marker of dir read and parsed directly.  0
** when it is a valid one (*created_dir: the store created dir). */
static int destroy_read_marker(const char *dir, int *created_dir) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/" BC_FILENAME_MARKER, dir);
  int version = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  char text[128];
  ssize_t n = fd >= 0 ? read(fd, text, sizeof text) : -1;
  if (fd >= 0) close(fd);
  if (n < 0 || bc_marker_parse(text, (size_t)n, &version, created_dir) != 0) return -1;
  return 0;
}

/* Unlink every file of the listing but the marker and LOCK.  BC_IOERR at
** the first that fails (errno says why). */
static bc_status destroy_files(const char *dir, const bc_dirlist *dl) {
  char path[PATH_MAX];
  bc_status st = BC_OK;
  bc_idset sets[BC_DIRLIST_NSETS];
  bc_dirlist_sets(dl, sets);
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
  return st;
}

bc_status bc_destroy(const char *dir, char *err, size_t errlen) {
  char path[PATH_MAX];
  struct stat sb;
  if (!dir || strlen(dir) + BC_LONGEST_NAME > PATH_MAX) {
    bc_copy_err(err, errlen, "bitcask store: bad directory name");
    return BC_INVALID;
  }
  if (stat(dir, &sb) != 0 && errno == ENOENT) return BC_OK;
  int created_dir = 0;
  if (destroy_read_marker(dir, &created_dir) != 0) {
    if (err && errlen)
      snprintf(err, errlen,
               "bitcask store '%s': not a bitcask store (no valid BITCASK "
               "marker); nothing was deleted", dir);
    return BC_NOTSTORE;
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
  bc_status st = destroy_files(dir, &dl);
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
