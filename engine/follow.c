/*
** follow.c -- a read-only store following its writer (bc_refresh): each
** refresh reads what the writer appended since the last one, through the
** same replay as recovery (replay.c), and rebuilds the keydir from the
** files when an incremental read cannot be trusted.
**
** Invariants:
**  - s->follow keeps the replay state between refreshes (pending
**    transactions, a COMMIT whose abort may still come, the tail's claims):
**    a refresh goes on exactly where the last read stopped.
**  - A refresh that finds a merge, a file gone or shrunk, a file turned into
**    a merge output, or the abort of a transaction it already applied
**    rebuilds the keydir (reload: bc_recover again) -- put off while
**    snapshots are open, unless the keydir holds writes that never
**    committed (bc_refresh_locked).
**  - With nothing written since the last complete read (the directory's
**    times and the tail's size as they were, and those times not too close
**    to the listing to be trusted), a refresh costs two stats.
*/
#include "bitcask.h"
#include "error.h"
#include "files.h"
#include "follow.h"
#include "format.h"
#include "hint.h"
#include "keydir.h"
#include "layout.h"
#include "recovery.h"
#include "replay.h"
#include "store.h"
#include "versions.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct bc_follow {
  bc_replay rc;
  /* What the last complete read saw of the directory (taken before its
  ** listing) and which file was the writer's tail: when neither the
  ** directory nor the tail's size changed since, nothing was written. */
  int dir_valid;
  uint64_t dir_mtime, dir_ctime, dir_ino;
  uint32_t tail_id;
};

static uint64_t ts_ns(struct timespec t) {
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* A directory time this close to now may hide a later change made within
** the same tick of the file system's clock (coarse: a few milliseconds on
** Linux), so it is not trusted to mean "unchanged". */
#define FOLLOW_RACY_NS (UINT64_C(100) * 1000000u)

/* ------------------------------------------------------ the follow state */

void bc_follow_free(bc_store *s) {
  bc_follow *fw = s->follow;
  if (!fw) return;
  bc_replay_free(&fw->rc);
  free(fw);
  s->follow = NULL;
}

/* Keep rc (what bc_recover read) for the refreshes to go on from; *rc is
** the follow state's then (emptied). */
static bc_status follow_start(bc_store *s, bc_replay *rc) {
  s->follow_durable = rc->claim_file == s->follow_tail ? rc->claim : 0;
  s->follow_checked = 0;
  s->follow = calloc(1, sizeof *s->follow);
  if (!s->follow) return bc_seterr(s, BC_NOMEM, "out of memory");
  s->follow->rc = *rc;
  s->follow->rc.follow = 1;
  memset(rc, 0, sizeof *rc);
  return BC_OK;
}

bc_status bc_follow_open(bc_store *s) {
  bc_replay rc;
  bc_status st = bc_recover(s, &rc);
  if (st == BC_OK) st = follow_start(s, &rc);
  bc_replay_free(&rc);
  return st;
}

/* ------------------------------------------------- incremental reading */

/* Read f's records from f->size to `size`: what the writer appended since.
** In the tail file (the writer's active one) what bc_replay_tail takes for
** an unsynced tail may be a write in progress: the read stops before it and
** the next refresh retries.  In any other file the end is final, and damage
** there is corruption, as for bc_recover. */
static bc_status follow_file(bc_store *s, bc_replay *rc, bc_file *f, uint64_t size,
                             int tail) {
  uint64_t end;
  int bad;
  /* Records start after the header, whatever size was seen before. */
  if (f->size < BC_FILE_HEADER_SIZE) f->size = BC_FILE_HEADER_SIZE;
  if (size <= f->size) return BC_OK;
  if (tail) {
    bc_status st = bc_replay_tail(rc, f, f->size, size, &end);
    if (st == BC_OK) f->size = end;
    return st;
  }
  bc_status st = bc_replay_walk(rc, f, f->size, size, &end, &bad);
  if (st != BC_OK) return st;
  st = bc_replay_release_held(rc);
  if (bad) {
    s->corrupt++;
    bc_file_damaged(f, BC_DAMAGE_RECORDS);
  }
  f->size = size;
  return st;
}

/* The newest data file that is not a merge output: the writer's active. */
static uint32_t follow_tail(bc_store *s, const bc_dirlist *dl) {
  uint32_t tail = 0;
  for (size_t i = 0; i < s->nfiles; i++)
    if (s->files[i].header_ok && !s->files[i].merged) tail = s->files[i].id;
  for (size_t i = 0; i < dl->ndata; i++)
    if (dl->data[i] > tail && !bc_file_get(s, dl->data[i])) tail = dl->data[i];
  return tail;
}

/* The common case, nothing written since the last complete read: the
** directory (ds, from stat) and the tail's size are as they were then. */
static int follow_unchanged(bc_store *s, const bc_follow *fw, const struct stat *ds) {
  if (!fw->dir_valid || ts_ns(ds->st_mtim) != fw->dir_mtime ||
      ts_ns(ds->st_ctim) != fw->dir_ctime || (uint64_t)ds->st_ino != fw->dir_ino)
    return 0;
  bc_file *tf = fw->tail_id ? bc_file_get(s, fw->tail_id) : NULL;
  struct stat ts;
  return tf && !tf->missing && tf->header_ok && bc_file_stat(s, tf, &ts) == 0 &&
         (uint64_t)ts.st_size == tf->size;
}

/* The files already in s->files: what was appended to each.  BC_DONE when
** one is gone or shrunk, or turned out to be a merge output. */
static bc_status follow_known(bc_store *s, bc_replay *rc, const bc_dirlist *dl,
                              uint32_t tail) {
  bc_status st = BC_OK;
  for (size_t i = 0; i < s->nfiles && st == BC_OK; i++) {
    bc_file *f = &s->files[i];
    struct stat sb;
    if (f->missing) continue; /* only its hint was there: nothing to follow */
    if (!bc_ids_has(dl->data, dl->ndata, f->id) || bc_file_stat(s, f, &sb) != 0 ||
        (uint64_t)sb.st_size < f->size) {
      st = BC_DONE;
    } else if (!f->header_ok) {
      /* Being created when we last looked (or damaged): look again. */
      bc_file_unmap(f);
      bc_file_close(s, f);
      st = bc_file_read_header(s, f, 0);
      if (st == BC_OK && f->header_ok && f->merged) st = BC_DONE;
      if (st == BC_OK && f->header_ok) {
        uint64_t size = f->size;
        f->size = BC_FILE_HEADER_SIZE;
        st = follow_file(s, rc, f, size, f->id == tail);
      }
    } else if ((uint64_t)sb.st_size > f->size) {
      st = follow_file(s, rc, f, (uint64_t)sb.st_size, f->id == tail);
    }
  }
  return st;
}

/* The data files listed that s->files does not hold yet: each read from
** its hint, else from its records.  BC_DONE at a merge output. */
static bc_status follow_new(bc_store *s, bc_replay *rc, const bc_dirlist *dl,
                            uint32_t tail) {
  bc_status st = BC_OK;
  for (size_t i = 0; i < dl->ndata && st == BC_OK; i++) {
    uint32_t id = dl->data[i];
    if (bc_file_get(s, id)) continue;
    bc_file *f = bc_file_add(s, id);
    if (!f) return bc_seterr(s, BC_NOMEM, "out of memory");
    st = bc_file_read_header(s, f, 0);
    if (st != BC_OK) return st;
    if (!f->header_ok) {
      /* Being created: come back to it next time. */
      bc_file_remove(s, id);
      continue;
    }
    if (f->merged) return BC_DONE;
    char path[PATH_MAX];
    bc_path_id(s, path, id, BC_SUFFIX_HINT);
    rc->f = f;
    if (bc_ids_has(dl->hint, dl->nhint, id) &&
        bc_hint_load(s, f, path, bc_replay_record, rc, &st)) {
      f->has_hint = 1;
      continue;
    }
    if (st != BC_OK) return st;
    uint64_t size = f->size;
    f->size = BC_FILE_HEADER_SIZE;
    st = follow_file(s, rc, f, size, id == tail);
  }
  return st;
}

/* One incremental read.  Returns BC_OK, an error, or BC_DONE when the
** keydir must be rebuilt instead (a merge, a file gone or shrunk, an abort of
** a transaction already applied). */
static bc_status follow_once(bc_store *s) {
  bc_follow *fw = s->follow;
  bc_replay *rc = &fw->rc;
  rc->s = s;
  /* The common case, nothing written since: two stats, no listing. */
  struct stat ds;
  int have_ds = stat(s->dir, &ds) == 0;
  struct timespec seen; /* when ds was taken */
  clock_gettime(CLOCK_REALTIME, &seen);
  if (have_ds && follow_unchanged(s, fw, &ds)) return BC_OK;
  fw->dir_valid = 0;
  bc_dirlist dl;
  bc_status st = bc_dirlist_read(s, s->dir, &dl);
  if (st != BC_OK) return st;
  if (dl.has_merge) st = BC_DONE;
  uint32_t tail = follow_tail(s, &dl);
  /* The old tail, sealed now, may be mapped whole (datafile.c file_map). */
  uint32_t prev_tail = s->follow_tail;
  s->follow_tail = tail;
  if (st == BC_OK) st = follow_known(s, rc, &dl, tail);
  if (st == BC_OK) st = follow_new(s, rc, &dl, tail);
  bc_dirlist_free(&dl);
  if (st == BC_OK && rc->reload) st = BC_DONE;
  if (st == BC_OK) {
    uint64_t last = rc->has_commit ? rc->commit_txn : 0;
    st = bc_replay_settle(rc);
    if (st == BC_OK && last) rc->settled_txn = last;
  }
  {
    /* A refresh reads what a live writer appends: only its claims count
    ** for the new part; what was known safe of the same tail stays so. */
    uint64_t c = rc->claim_file == tail ? rc->claim : 0;
    if (tail != prev_tail || c > s->follow_durable) s->follow_durable = c;
    if (tail != prev_tail) s->follow_checked = 0;
  }
  /* Trusted next time only if the listing came well after the directory's
  ** last change: a change in the same tick of the file system's coarse
  ** clock as the one seen would leave its times as they were. */
  if (st == BC_OK && have_ds) {
    uint64_t m = ts_ns(ds.st_mtim), c = ts_ns(ds.st_ctim);
    if (ts_ns(seen) > (m > c ? m : c) + FOLLOW_RACY_NS) {
      fw->dir_valid = 1;
      fw->dir_mtime = m;
      fw->dir_ctime = c;
      fw->dir_ino = (uint64_t)ds.st_ino;
      fw->tail_id = tail;
    }
  }
  return st;
}

/* ----------------------------------------------------------- rebuilding */

/* Forget everything read and read the store again. */
static bc_status reload(bc_store *s) {
  bc_status st = BC_OK;
  for (int tries = 0; tries < 5; tries++) {
    while (s->nfiles) bc_file_remove(s, s->files[s->nfiles - 1].id);
    uint64_t seed = s->kd.seed;
    bc_kd_free(&s->kd);
    /* Iterators' cached positions name the old keydir: move the version on. */
    uint64_t version = s->kd.version;
    bc_follow_free(s);
    if (bc_kd_init(&s->kd, seed) != 0) return bc_seterr(s, BC_NOMEM, "out of memory");
    s->kd.version = version + 1;
    s->kd_gen++;
    s->corrupt = 0;
    st = bc_follow_open(s);
    /* A file renamed or removed by the writer's merge under our feet. */
    if (st != BC_IOERR) break;
  }
  return st;
}

bc_status bc_refresh_locked(bc_store *s) {
  bc_status st = s->follow ? follow_once(s) : BC_DONE;
  if (st != BC_DONE) return st;
  /* A rebuilt keydir would drop what open snapshots read through: after a
  ** merge (the same data, moved) the rebuild waits until none is open.
  ** After an abort of a transaction already applied the keydir holds writes
  ** that never committed: it is rebuilt at once, and the open snapshots,
  ** which may have seen them, can no longer serve. */
  int must = !s->follow || s->follow->rc.reload;
  if (s->snap_newest && !must) return BC_OK;
  if (s->snap_newest) bc_snap_break_all(s);
  return reload(s);
}
