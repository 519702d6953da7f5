/*
** active.c -- the write path: the active data file, its write buffer, the
** undo log that makes a failed write leave no trace, rotation, and the sync
** policy (bc_sync_active, and sync=normal's background syncer thread).
**
** Invariants:
**  - Exactly one active file (s->active_id) when writable.  Its bytes
**    [0, size) are in the file; bytes [size, size + wlen) are in s->wbuf.  A
**    keydir entry may point into either; bc_datafile_read knows which.
**  - Standalone records (bc_put, bc_delete) are committed at a commit point:
**    when written to the file (sync normal or off) or when fsync'd (sync
**    full: bc_sync, rotation, close).  Every standalone record since the last
**    commit point has one bc_undo entry (same order) holding the keydir
**    state it replaced, and s->commit_size is the active file's size at that
**    point.  If a write or (sync full) an fsync fails, the file is cut back to
**    commit_size and the undo entries applied newest first: the keydir then
**    points only at committed bytes, a failed write never comes back at the
**    next open, and the next write starts clean.  If even the cut fails,
**    writes are refused until a retry succeeds (s->dirty_tail).
**  - Transaction records change no keydir until commit; losing any of them
**    dooms the open transaction instead: every cut back to the commit point
**    counts in s->cutbacks, which txn.c compares with the count at the
**    transaction's begin (so the writer needs no transaction's fields).
**    bc_txn_begin reaches a commit point first, so the undo log is empty
**    while a transaction runs.
**  - A record too large for the buffer is written directly, before the keydir
**    changes, so it needs no undo.
**  - Rotation happens before an append when the active file has reached
**    max_file_size; record offsets therefore stay below max_file_size <= 2^40.
**  - Sequence numbers are assigned here, strictly increasing.
**  - s->active_synced is the active file's size when an fsync of it last
**    returned (every fsync of the active file updates it; a cut below it
**    lowers it), so every byte before it is durable.  Each COMMIT carries
**    it as its durability claim (docs/FORMAT.md): recovery takes damage
**    below a claim for damage to durable data, and damage at or after the
**    highest claim for the unsynced tail a power loss leaves.
**  - While s->ahint_id is the active file's id, s->ahint holds one hint entry
**    per record of that file, in order, exactly up to s->ahint_end (the end
**    of its last record, in the file or in the buffer).  Rotation writes it
**    as the sealed file's hint once the file is complete and fsync'd, instead
**    of reading the file back.  Anything that cuts the file back drops it
**    (ahint_id 0), and that file's hint is then made by a walk.  The
**    entries (40 bytes + the key per record: for 100-byte values and 16-byte
**    keys, 38% of the file's size) do not stay in memory until rotation:
**    each time AHINT_SPILL bytes of them are held they are appended to
**    <id>.hint.tmp (ahint_tmp), their CRC carried on in ahint_crc.
**    Rotation appends the rest and the trailer, whose CRC covers the header
**    written last (bc_crc32_combine), then fsyncs and renames as
**    bc_hint_write does.  A failed spill drops the hint; a crash leaves the
**    .hint.tmp, which the next writer's open removes.
*/
#include "bitcask.h"
#include "datafile.h"
#include "error.h"
#include "files.h"
#include "format.h"
#include "hint.h"
#include "io.h"
#include "keydir.h"
#include "layout.h"
#include "lock.h"
#include "store.h"
#include "versions.h"
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bytes of hint entries of the active file held in memory before they are
** appended to its .hint.tmp: what the in-memory hint costs at most, per
** store, instead of up to 40 bytes + the key per record of a whole file. */
#define AHINT_SPILL (256u * 1024u)

/* Forget the undo log after the buffered records reached the file: free the
** entries that tombstones unlinked. */
void bc_undo_clear(bc_store *s) {
  for (size_t i = 0; i < s->nundo; i++)
    if (s->undo[i].tombstone) bc_kd_entry_free(&s->kd, s->undo[i].entry);
  s->nundo = 0;
}

/* Revert the keydir changes of every record since the commit point, newest
** first. */
static void undo_all(bc_store *s) {
  while (s->nundo > 0) {
    bc_undo *u = &s->undo[--s->nundo];
    bc_entry *e = u->entry;
    /* Snapshots opened since the oldest of these writes saw them. */
    if (s->nundo == 0) bc_snap_undo(s, u->epoch);
    if (u->tombstone) {
      /* The table held this entry before; with everything newer undone its
      ** count is lower than then, so relinking needs no growth. */
      if (bc_kd_link(&s->kd, e) != 0) {
        bc_kd_entry_free(&s->kd, e);
        continue;
      }
      bc_acct(s, e, 1);
    } else if (u->created) {
      bc_acct(s, e, 0);
      bc_kd_remove(&s->kd, e);
    } else {
      bc_acct(s, e, 0);
      bc_e_restore(e, &u->old);
      bc_acct(s, e, 1);
    }
  }
}

/* Close and remove the spilled part of the active file's hint, if any.  In
** a child of fork() the file is the parent's, still being written: only the
** child's descriptor is closed. */
static void ahint_tmp_remove(bc_store *s) {
  if (!s->ahint_tmp) return;
  char path[PATH_MAX];
  bc_path_id(s, path, s->ahint_id, BC_SUFFIX_HINT_TMP);
  s->io.close(s->io.ctx, s->ahint_fd);
  if (!bc_foreign(s)) s->io.unlink(s->io.ctx, path);
  s->ahint_tmp = 0;
  s->ahint_spilled = 0;
  s->ahint_crc = 0;
}

/* Forget the in-memory hint of the active file: its hint, when it is sealed,
** will be made by walking its records. */
static void ahint_drop(bc_store *s) {
  ahint_tmp_remove(s);
  bc_hintbuf_free(&s->ahint);
  s->ahint_id = 0;
  s->ahint_end = 0;
}

void bc_ahint_free(bc_store *s) { ahint_drop(s); }

/* Append the entries held in s->ahint (after its header placeholder) to
** <ahint_id>.hint.tmp, created on the first call; the buffer keeps only the
** placeholder.  -1 on failure (the caller drops the hint). */
static int ahint_spill(bc_store *s) {
  bc_hintbuf *h = &s->ahint;
  size_t n = h->len - BC_HINT_HEADER_SIZE;
  if (n == 0) return 0;
  if (!s->ahint_tmp) {
    char path[PATH_MAX];
    bc_path_id(s, path, s->ahint_id, BC_SUFFIX_HINT_TMP);
    int fd = s->io.open(s->io.ctx, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    s->ahint_fd = fd;
    s->ahint_tmp = 1;
  }
  const unsigned char *body = h->data + BC_HINT_HEADER_SIZE;
  if (bc_write_all(&s->io, s->ahint_fd, body, n, BC_HINT_HEADER_SIZE + s->ahint_spilled) != 0)
    return -1;
  s->ahint_crc = bc_crc32(s->ahint_crc, body, n);
  s->ahint_spilled += n;
  h->len = BC_HINT_HEADER_SIZE;
  return 0;
}

/* Seal the hint of f (the active file, complete and, if durable, fsync'd)
** whose entries were partly spilled: the rest, the trailer, the header,
** fsync, rename to .hint -- bc_hint_write's steps, in place. */
static bc_status ahint_seal(bc_store *s, bc_file *f, int durable) {
  if (ahint_spill(s) != 0)
    return bc_seterr_errno(s, BC_IOERR, errno,
                           "hint file of %010u" BC_SUFFIX_DATA ": write failed",
                           f->id);
  unsigned char hdr[BC_HINT_HEADER_SIZE], tr[BC_HINT_TRAILER_SIZE];
  bc_hint_header_encode(hdr, f->id, f->size);
  uint32_t crc = bc_crc32_combine(bc_crc32(0, hdr, sizeof hdr), s->ahint_crc,
                                  s->ahint_spilled);
  bc_hint_trailer_encode_crc(tr, s->ahint.count, crc);
  uint64_t end = BC_HINT_HEADER_SIZE + s->ahint_spilled;
  char tmp[PATH_MAX], final[PATH_MAX];
  bc_path_id(s, tmp, f->id, BC_SUFFIX_HINT_TMP);
  bc_path_id(s, final, f->id, BC_SUFFIX_HINT);
  if (bc_write_all(&s->io, s->ahint_fd, tr, sizeof tr, end) != 0 ||
      bc_write_all(&s->io, s->ahint_fd, hdr, sizeof hdr, 0) != 0 ||
      (durable && bc_fsync(s, s->ahint_fd) != 0))
    return bc_seterr_errno(s, BC_IOERR, errno, "hint file '%s': write failed", tmp);
  int fd = s->ahint_fd;
  s->ahint_tmp = 0; /* closed and renamed, or removed, below */
  s->ahint_spilled = 0;
  s->ahint_crc = 0;
  if (s->io.close(s->io.ctx, fd) != 0) {
    int e = errno;
    s->io.unlink(s->io.ctx, tmp);
    return bc_seterr_errno(s, BC_IOERR, e, "hint file '%s': close failed", tmp);
  }
  if (s->io.rename(s->io.ctx, tmp, final) != 0) {
    int e = errno;
    s->io.unlink(s->io.ctx, tmp);
    return bc_seterr_errno(s, BC_IOERR, e, "hint file '%s': rename failed", final);
  }
  f->has_hint = 1;
  f->hint_size = end + BC_HINT_TRAILER_SIZE;
  if (durable && bc_fsync_store_dir(s) != 0)
    return bc_seterr_errno(s, BC_IOERR, errno, "fsync of the directory failed");
  return BC_OK;
}

/* Start the in-memory hint of file id, new and empty.  Without memory there
** is none (a hint is an optimisation). */
static void ahint_start(bc_store *s, uint32_t id) {
  ahint_drop(s);
  if (bc_hintbuf_init(&s->ahint, id) != 0) return;
  s->ahint_id = id;
  s->ahint_end = BC_FILE_HEADER_SIZE;
}

/* Record r (its seq assigned) was just placed at offset `at` of the active
** file f: add its hint entry.  key and value are the record's (value: a
** transaction marker's 8 bytes). */
static void ahint_note(bc_store *s, const bc_file *f, const bc_rec *r, uint64_t at,
                       const void *key, const void *value) {
  if (s->ahint_id != f->id) return;
  int marker = r->type == BC_REC_COMMIT || r->type == BC_REC_ROLLBACK_TO;
  uint64_t arg = marker ? bc_rec_arg(value) : 0;
  if (at != s->ahint_end || bc_hintbuf_add(&s->ahint, r, at, key, arg) != 0 ||
      (s->ahint.len >= AHINT_SPILL && ahint_spill(s) != 0)) {
    ahint_drop(s);
    return;
  }
  s->ahint_end = at + bc_rec_size(r->klen, r->vlen);
}

/* The standalone records so far are committed: forget their undo. */
static void commit_point(bc_store *s) {
  bc_undo_clear(s);
  bc_file *f = bc_file_get(s, s->active_id);
  s->commit_size = f ? f->size : 0;
}

/* A write or commit failed: cut the active file back to the commit point,
** revert the keydir to it and drop the buffer.  The open transaction, whose
** records may have been cut, is doomed: s->cutbacks moves on (txn.h). */
static void back_to_commit_point(bc_store *s) {
  bc_file *f = bc_file_get(s, s->active_id);
  if (s->io.ftruncate(s->io.ctx, f->fd, (off_t)s->commit_size) != 0)
    s->dirty_tail = 1;
  f->size = s->commit_size;
  if (s->active_synced > f->size) s->active_synced = f->size;
  ahint_drop(s);
  undo_all(s);
  s->wlen = 0;
  s->cutbacks++;
}

bc_status bc_check_tail(bc_store *s) {
  if (!s->dirty_tail) return BC_OK;
  if (bc_foreign(s)) return bc_foreign_error(s);
  bc_file *f = bc_file_get(s, s->active_id);
  if (f && s->io.ftruncate(s->io.ctx, f->fd, (off_t)f->size) == 0) {
    s->dirty_tail = 0;
    return BC_OK;
  }
  return bc_seterr_errno(s, BC_IOERR, errno,
                         "cutting a failed write off data file %010u" BC_SUFFIX_DATA " "
                         "failed; writes are refused until that succeeds",
                         s->active_id);
}

bc_status bc_flush(bc_store *s) {
  if (s->wlen == 0) return BC_OK;
  bc_status st = bc_check_tail(s);
  if (st != BC_OK) return st;
  bc_file *f = bc_file_get(s, s->active_id);
  if (bc_write_all(&s->io, f->fd, s->wbuf, s->wlen, f->size) != 0) {
    int e = errno;
    back_to_commit_point(s);
    return bc_seterr_errno(s, BC_IOERR, e,
                           "data file %010u" BC_SUFFIX_DATA ": write failed; the "
                           "uncommitted writes were discarded", f->id);
  }
  f->size += s->wlen;
  s->wlen = 0;
  s->need_fsync = 1;
  if (s->sync != BC_SYNC_FULL) commit_point(s);
  return BC_OK;
}

bc_status bc_active_create(bc_store *s) {
  uint32_t id = s->next_file_id;
  if (id == 0) return bc_seterr(s, BC_IOERR, "file ids are exhausted");
  int fd;
  bc_status st =
      bc_datafile_create(s, id, BC_SUFFIX_DATA, 0, s->sync != BC_SYNC_OFF, &fd);
  if (st != BC_OK) return st;
  bc_file *f = bc_file_add(s, id);
  if (!f) {
    char path[PATH_MAX];
    bc_path_id(s, path, id, BC_SUFFIX_DATA);
    s->io.close(s->io.ctx, fd);
    s->io.unlink(s->io.ctx, path);
    return bc_seterr(s, BC_NOMEM, "out of memory");
  }
  s->next_file_id = id == UINT32_MAX ? 0 : id + 1;
  f->fd = fd;
  f->size = BC_FILE_HEADER_SIZE;
  f->header_ok = 1;
  f->version = BC_FORMAT_VERSION;
  s->active_id = id;
  s->active_synced = s->sync != BC_SYNC_OFF ? BC_FILE_HEADER_SIZE : 0;
  s->commit_size = f->size;
  ahint_start(s, id);
  if (s->sync == BC_SYNC_OFF) s->need_dirsync = 1;
  return BC_OK;
}

bc_status bc_rotate(bc_store *s) {
  bc_status st = bc_flush(s);
  if (st != BC_OK) return st;
  bc_file *f = bc_file_get(s, s->active_id);
  int durable = s->sync != BC_SYNC_OFF;
  if (durable && bc_fsync(s, f->fd) != 0) {
    int e = errno;
    if (s->sync == BC_SYNC_FULL) back_to_commit_point(s);
    return bc_seterr_errno(s, BC_IOERR, e,
                           "data file %010u" BC_SUFFIX_DATA ": fsync failed",
                           f->id);
  }
  if (durable) {
    s->need_fsync = 0;
    s->last_fsync_ms = bc_now_ms();
    s->active_synced = f->size;
  }
  commit_point(s);
  uint32_t old = f->id;
  /* A hint is an optimisation: failing to write one costs a walk of the
  ** file at open. */
  if (s->ahint_id == f->id && s->ahint_end == f->size && s->ahint_tmp)
    (void)ahint_seal(s, f, durable);
  else if (s->ahint_id == f->id && s->ahint_end == f->size)
    (void)bc_hint_install(s, f, &s->ahint, durable);
  else
    (void)bc_hint_create(s, f, durable);
  ahint_drop(s);
  s->err[0] = 0;
  st = bc_active_create(s);
  if (st == BC_OK) {
    /* Sealed: its descriptor goes (reads reopen it into the cache, or map
    ** it). */
    bc_file_close(s, bc_file_get(s, old));
  } else {
    /* Keep appending to the old file; its hint would go stale. */
    f = bc_file_get(s, old);
    if (f->has_hint) {
      char path[PATH_MAX];
      bc_path_id(s, path, old, BC_SUFFIX_HINT);
      s->io.unlink(s->io.ctx, path);
      f->has_hint = 0;
    }
    return st;
  }
  return BC_OK;
}

static int undo_reserve(bc_store *s) {
  if (s->nundo < s->capundo) return 0;
  size_t cap = s->capundo ? s->capundo * 2 : 64;
  bc_undo *u = realloc(s->undo, cap * sizeof *u);
  if (!u) return -1;
  s->undo = u;
  s->capundo = cap;
  return 0;
}

bc_status bc_append_record(bc_store *s, bc_rec *r, const void *key,
                           const void *value, uint32_t *file_id, uint64_t *off) {
  if (s->poisoned)
    return bc_seterr(s, BC_IOERR, "an earlier commit failed and could not be "
                                  "undone on disk; reopen the store");
  if (s->next_seq > BC_MAX_SEQ)
    return bc_seterr(s, BC_INVALID, "sequence numbers are exhausted");
  bc_status cst = bc_check_tail(s);
  if (cst != BC_OK) return cst;
  bc_file *f = bc_file_get(s, s->active_id);
  if (f->size + s->wlen >= s->max_file_size &&
      f->size + s->wlen > BC_FILE_HEADER_SIZE && !s->hold_rotation) {
    /* The public write calls check the process once per call; a
    ** transaction begun before a fork reaches the files only here, at a
    ** rotation or a full buffer (lock.c, "Processes"). */
    if (bc_foreign(s)) return bc_foreign_error(s);
    bc_status st = bc_rotate(s);
    if (st != BC_OK) return st;
    f = bc_file_get(s, s->active_id);
  }
  /* A COMMIT's durability claim is filled in here, once the file it goes to
  ** is known (the rotation above may have changed it): the caller gives
  ** the count (at BC_COMMIT_OFF_COUNT). */
  unsigned char commit[BC_COMMIT_SIZE];
  if (r->type == BC_REC_COMMIT && r->vlen == BC_COMMIT_SIZE) {
    memcpy(commit, value, sizeof commit);
    bc_put_u64(commit + BC_COMMIT_OFF_CLAIM, s->active_synced);
    value = commit;
  }
  uint64_t rsz = bc_rec_size(r->klen, r->vlen);
  if (rsz > s->wcap - s->wlen) {
    if (bc_foreign(s)) return bc_foreign_error(s);
    bc_status st = bc_flush(s);
    if (st != BC_OK) return st;
  }
  uint64_t at = f->size + s->wlen;
  r->seq = s->next_seq;
  if (rsz <= s->wcap) {
    unsigned char *p = s->wbuf + s->wlen;
    if (r->klen) memcpy(p + BC_REC_HEADER_SIZE, key, r->klen);
    if (r->vlen) memcpy(p + BC_REC_HEADER_SIZE + r->klen, value, r->vlen);
    bc_rec_encode_in_place(p, r);
    s->wlen += (size_t)rsz;
  } else {
    /* Larger than the buffer (which is empty now): write it directly. */
    unsigned char hdr[BC_REC_HEADER_SIZE];
    bc_rec_encode(hdr, r, key, value);
    if (bc_write_all(&s->io, f->fd, hdr, sizeof hdr, at) != 0 ||
        (r->klen && bc_write_all(&s->io, f->fd, key, r->klen, at + sizeof hdr) != 0) ||
        (r->vlen &&
         bc_write_all(&s->io, f->fd, value, r->vlen, at + sizeof hdr + r->klen) != 0)) {
      int err = errno;
      /* Only this record is cut: the buffer was flushed just before. */
      if (s->io.ftruncate(s->io.ctx, f->fd, (off_t)f->size) != 0) s->dirty_tail = 1;
      return bc_seterr_errno(s, BC_IOERR, err,
                             "data file %010u" BC_SUFFIX_DATA ": write failed",
                             f->id);
    }
    f->size += rsz;
    s->need_fsync = 1;
  }
  ahint_note(s, f, r, at, key, value);
  s->next_seq++;
  bc_file_note_seq(f, r->seq);
  *file_id = f->id;
  *off = at;
  return BC_OK;
}

bc_status bc_append(bc_store *s, uint8_t type, uint8_t meta, const void *key,
                    size_t klen, const void *value, size_t vlen) {
  if (undo_reserve(s) != 0) return bc_seterr(s, BC_NOMEM, "out of memory");
  int created = 0;
  bc_entry *e = type == BC_REC_PUT ? bc_kd_upsert(&s->kd, key, klen, &created)
                                   : bc_kd_get(&s->kd, key, klen);
  if (!e) {
    if (type != BC_REC_PUT) return BC_NOTFOUND;
    return bc_seterr(s, BC_NOMEM, "out of memory");
  }
  if (created) e->loc |= BC_E_DELETED; /* no live version yet */
  bc_rec r = {type, meta, 0, 0, (uint32_t)klen, (uint32_t)vlen};
  uint32_t fid;
  uint64_t off;
  bc_status st = bc_append_record(s, &r, key, value, &fid, &off);
  if (st != BC_OK) {
    if (created) bc_kd_remove(&s->kd, e);
    return st;
  }
  bc_snap_change(s, key, klen, created ? NULL : e);
  /* Undo information until the record's commit point. */
  bc_undo *u = &s->undo[s->nundo++];
  u->entry = e;
  u->created = created;
  u->tombstone = type == BC_REC_TOMBSTONE;
  bc_e_save(e, &u->old);
  u->epoch = s->epoch;
  bc_acct(s, e, 0);
  if (type == BC_REC_TOMBSTONE) {
    bc_kd_unlink(&s->kd, e); /* owned by the undo entry until committed */
  } else {
    bc_e_set(e, r.seq, meta, fid, off, (uint32_t)vlen, 0);
    bc_acct(s, e, 1);
  }
  /* Written directly to the file: without sync=full that is its commit. */
  if (s->sync != BC_SYNC_FULL && off < bc_file_get(s, fid)->size) commit_point(s);
  return BC_OK;
}

bc_status bc_sync_active(bc_store *s, int force) {
  if (s->read_only) return BC_OK;
  bc_status st = bc_flush(s);
  if (st != BC_OK) return st;
  if (s->sync == BC_SYNC_OFF) return BC_OK;
  uint64_t now = bc_now_ms();
  /* BC_SYNC_NORMAL leaves the fsync to the store's background thread (the
  ** syncer, below), or without one does it here at most every BC_NORMAL_SYNC_MS. */
  int due = s->sync == BC_SYNC_FULL || force ||
            (!s->syncer_running && now - s->last_fsync_ms >= BC_NORMAL_SYNC_MS);
  int failed = 0, err = 0;
  const char *what = "";
  if (s->need_fsync && due) {
    bc_file *f = bc_file_get(s, s->active_id);
    if (bc_fsync(s, f->fd) != 0) {
      failed = 1;
      err = errno;
      what = "fsync of the active data file failed";
    } else {
      s->need_fsync = 0;
      s->last_fsync_ms = now;
      s->active_synced = f->size;
    }
  }
  if (!failed && s->need_dirsync && due) {
    if (bc_fsync_store_dir(s) != 0) {
      failed = 1;
      err = errno;
      what = "fsync of the directory failed";
    } else {
      s->need_dirsync = 0;
    }
  }
  if (failed) {
    /* sync=full: the standalone records since the commit point are not
    ** committed after all (an open transaction handles its own failure). */
    if (s->sync == BC_SYNC_FULL && !s->txn) back_to_commit_point(s);
    return bc_seterr_errno(s, BC_IOERR, err, "%s", what);
  }
  if (s->sync == BC_SYNC_FULL && due) commit_point(s);
  return BC_OK;
}

/* ------------------------------------------------------------ the syncer */

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

void bc_syncer_start(bc_store *s) {
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

void bc_syncer_stop(bc_store *s) {
  if (!s->syncer_running) return;
  pthread_mutex_lock(&s->mu);
  s->syncer_stop = 1;
  pthread_cond_signal(&s->syncer_cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->syncer, NULL);
  pthread_cond_destroy(&s->syncer_cv);
  s->syncer_running = 0;
}
