/*
** recovery.c -- what bc_open does to rebuild the keydir (docs/FORMAT.md
** "Recovery"), as a sequence of named steps (bc_recover): finish or discard
** an interrupted merge, choose the next file id, remove leftovers, list the
** data files and find the tail, read every file (from its hint when valid,
** else by a walk of its records, through replay.c), cut the tail file's
** unsynced tail, and choose the active file.
**
** Invariants:
**  - Files are read in ascending id (replay.c says why the order of versions
**    does not matter).
**  - Only the tail file -- the newest non-merged data file, i.e. the one that
**    was active at the crash -- can have an unsynced tail (bc_replay_tail
**    finds where it starts); a writer truncates the file there.  A header
**    that does not decode stops the file's walk (nothing after it can be
**    framed); outside the tail that is counted as corruption.  Files are
**    never modified except to cut an unsynced tail or give a tail whose
**    creation was cut short a fresh header.
**  - Damage never makes a key read an older version when a file still says
**    what the damaged one held (docs/FORMAT.md "Damaged files"): a file with
**    a bad header is read from its hint or by a walk; a hint for a longer
**    file is applied (its missing records read BC_CORRUPT); a hint without
**    its data file is applied to a missing placeholder (bc_file.missing).
**    Such files are marked damaged (bc_file.damaged): never continued,
**    never merged, never modified.
**  - A read-only open changes nothing on disk; it sees an interrupted but
**    committed merge as finished.
*/
#include "bitcask.h"
#include "error.h"
#include "files.h"
#include "format.h"
#include "hint.h"
#include "io.h"
#include "keydir.h"
#include "layout.h"
#include "merge.h"
#include "recovery.h"
#include "replay.h"
#include "store.h"
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* One recovery's working state. */
typedef struct recovery {
  bc_store *s;
  int writer;           /* !s->read_only */
  bc_dirlist dl;        /* the directory, listed (again after a merge redo) */
  bc_manifest m;        /* a committed merge's MERGE, read-only: its inputs
                        ** are dropped, its outputs read wherever they are */
  bc_replay rc;
  uint32_t *ids;        /* ids of the data files to load; owned */
  size_t nids;
  bc_hintfile *hf;      /* hf[i]: s->files[i]'s hint, opened ahead; owned */
  size_t nhf;
  uint32_t tail;        /* the tail file (0: none) */
  int tail_cut;         /* the tail's damaged end may be cut (no file with
                        ** a damaged header is newer) */
  int tail_synced;      /* a writer fsync'd the tail after changing it */
} recovery;

/* ------------------------------------------ before the files are read */

/* An interrupted merge (docs/FORMAT.md Recovery 1).  A writer redoes a
** committed one and lists the directory again; a read-only open keeps its
** manifest in r->m. */
static bc_status finish_merge(recovery *r) {
  bc_store *s = r->s;
  if (!r->dl.has_merge) return BC_OK;
  bc_status st = BC_OK;
  int found = bc_manifest_read(s, &r->m, &st);
  if (found < 0) return st;
  /* As bc_merge_redo refuses a writer: an output gone means its records
  ** are gone, while the inputs -- which a read-only open drops -- hold
  ** them still. */
  for (uint32_t i = 0; found && !r->writer && i < r->m.n_outputs; i++)
    if (!bc_ids_has(r->dl.data, r->dl.ndata, r->m.outputs[i]) &&
        !bc_ids_has(r->dl.data_merging, r->dl.ndata_merging, r->m.outputs[i]))
      return bc_seterr(s, BC_CORRUPT,
                       "merge output %010u" BC_SUFFIX_DATA " is missing; the "
                       "merge's input files are kept", r->m.outputs[i]);
  if (found && r->writer) {
    st = bc_merge_redo(s, &r->m);
    if (st != BC_OK) return st;
    bc_manifest_free(&r->m);
    bc_dirlist_free(&r->dl);
    return bc_dirlist_read(s, s->dir, &r->dl);
  }
  return BC_OK;
}

/* The next file id is above every id in the directory and in a merge's
** manifest.  0: exhausted -- the store still opens and serves; only
** creating a file (rotation, merge) fails then. */
static void choose_next_file_id(recovery *r) {
  uint32_t max_id = 0;
  bc_idset sets[BC_DIRLIST_NSETS];
  bc_dirlist_sets(&r->dl, sets);
  for (size_t k = 0; k < BC_DIRLIST_NSETS; k++)
    for (size_t i = 0; i < sets[k].n; i++)
      if (sets[k].ids[i] > max_id) max_id = sets[k].ids[i];
  for (uint32_t i = 0; i < r->m.n_outputs; i++)
    if (r->m.outputs[i] > max_id) max_id = r->m.outputs[i];
  r->s->next_file_id = max_id == UINT32_MAX ? 0 : max_id + 1;
}

/* A writer: delete the leftovers of an unfinished merge or hint
** write.  (A read-only open leaves them and says so: recovery_pending.) */
static bc_status remove_leftovers(bc_store *s, const bc_dirlist *dl) {
  char path[PATH_MAX];
  bc_idset sets[BC_DIRLIST_NSETS];
  bc_dirlist_sets(dl, sets);
  int removed = 0;
  /* The sets from .data.merging on: the leftovers of merges and hint writes. */
  for (size_t k = BC_SET_DATA_MERGING; k < BC_DIRLIST_NSETS; k++)
    for (size_t i = 0; i < sets[k].n; i++) {
      bc_path_id(s, path, sets[k].ids[i], sets[k].suffix);
      if (s->io.unlink(s->io.ctx, path) != 0 && errno != ENOENT)
        return bc_seterr_errno(s, BC_IOERR, errno, "cannot remove '%s'", path);
      removed = 1;
    }
  if (dl->has_merge_tmp) {
    bc_path_name(s, path, BC_FILENAME_MERGE_TMP);
    if (s->io.unlink(s->io.ctx, path) != 0 && errno != ENOENT)
      return bc_seterr_errno(s, BC_IOERR, errno, "cannot remove '%s'", path);
    removed = 1;
  }
  if (removed && s->sync != BC_SYNC_OFF && bc_fsync_store_dir(s) != 0)
    return bc_seterr_errno(s, BC_IOERR, errno, "fsync of the directory failed");
  return BC_OK;
}

/* Before a writer changes tail file f in place (cut it, rewrite its header,
** append to it): if its inode has other hard links -- a copy of the store
** made with `cp -al` or rsync --link-dest shares it -- give this directory a
** private copy first, so that neither store's writes reach the other.  The
** copy is written to <id>.data.tmp, synced, and renamed over <id>.data (the
** directory synced); f->fd (O_RDWR) becomes the copy's.  Sealed files are
** never written in place: they stay shared. */
static bc_status unshare_linked(bc_store *s, bc_file *f) {
  struct stat sb;
  if (fstat(f->fd, &sb) != 0)
    return bc_seterr_errno(s, BC_IOERR, errno,
                           "data file %010u" BC_SUFFIX_DATA ": stat failed",
                           f->id);
  if (sb.st_nlink <= 1) return BC_OK;
  char path[PATH_MAX], tmp[PATH_MAX];
  bc_path_id(s, path, f->id, BC_SUFFIX_DATA);
  bc_path_id(s, tmp, f->id, BC_SUFFIX_DATA_TMP);
  int fd = s->io.open(s->io.ctx, tmp, O_RDWR | O_CREAT | O_EXCL, 0644);
  if (fd < 0)
    return bc_seterr_errno(s, BC_IOERR, errno,
                           "data file %010u" BC_SUFFIX_DATA " has %ju hard links (a "
                           "linked copy of the store?): creating its private copy "
                           "failed",
                           f->id, (uintmax_t)sb.st_nlink);
  enum { CHUNK = 1 << 20 };
  unsigned char *buf = malloc(CHUNK);
  bc_status st = buf ? BC_OK : bc_seterr(s, BC_NOMEM, "out of memory");
  for (uint64_t off = 0; st == BC_OK && off < (uint64_t)sb.st_size;) {
    size_t want = (uint64_t)sb.st_size - off < CHUNK ? (size_t)((uint64_t)sb.st_size - off)
                                                     : CHUNK;
    ssize_t n = bc_read_all(&s->io, f->fd, buf, want, off);
    if (n != (ssize_t)want || bc_write_all(&s->io, fd, buf, want, off) != 0)
      st = bc_seterr_errno(s, BC_IOERR, errno,
                           "data file %010u" BC_SUFFIX_DATA ": copying it off its "
                           "hard links failed", f->id);
    off += want;
  }
  free(buf);
  if (st == BC_OK && (bc_fsync(s, fd) != 0 || s->io.rename(s->io.ctx, tmp, path) != 0 ||
                      bc_fsync_store_dir(s) != 0))
    st = bc_seterr_errno(s, BC_IOERR, errno,
                         "data file %010u" BC_SUFFIX_DATA ": installing its private "
                         "copy failed", f->id);
  if (st != BC_OK) {
    s->io.close(s->io.ctx, fd);
    (void)s->io.unlink(s->io.ctx, tmp);
    return st;
  }
  s->io.close(s->io.ctx, f->fd);
  f->fd = fd;
  return BC_OK;
}


/* ------------------------------------------------------ the data files */

/* The set of data files, each added to s->files with its header
** read.  Read-only with an unfinished (committed) merge: drop its inputs,
** add its outputs from wherever they are.  Then a placeholder for each hint
** whose data file is gone. */
static bc_status add_files(recovery *r) {
  bc_store *s = r->s;
  const bc_dirlist *dl = &r->dl;
  const bc_manifest *m = &r->m;
  for (size_t i = 0; i < dl->ndata; i++)
    if (!bc_ids_has(m->inputs, m->n_inputs, dl->data[i]) &&
        bc_ids_push(&r->ids, &r->nids, dl->data[i]) != 0)
      return bc_seterr(s, BC_NOMEM, "out of memory");
  for (uint32_t i = 0; i < m->n_outputs; i++)
    if (!bc_ids_has(r->ids, r->nids, m->outputs[i]) &&
        bc_ids_has(dl->data_merging, dl->ndata_merging, m->outputs[i]) &&
        bc_ids_push(&r->ids, &r->nids, m->outputs[i]) != 0)
      return bc_seterr(s, BC_NOMEM, "out of memory");
  bc_ids_sort(r->ids, r->nids);

  for (size_t i = 0; i < r->nids; i++) {
    bc_file *f = bc_file_add(s, r->ids[i]);
    if (!f) return bc_seterr(s, BC_NOMEM, "out of memory");
    int merging = !bc_ids_has(dl->data, dl->ndata, r->ids[i]);
    bc_status st = bc_file_read_header(s, f, merging);
    if (st != BC_OK) return st;
  }
  /* A hint file whose data file is gone (and no MERGE says why: a merge's
  ** inputs are skipped) is evidence of what that file held: it is read in
  ** its turn, and its keys read BC_CORRUPT naming the missing file. */
  for (size_t i = 0; i < dl->nhint; i++) {
    uint32_t id = dl->hint[i];
    if (bc_file_get(s, id) || bc_ids_has(m->inputs, m->n_inputs, id)) continue;
    bc_file *f = bc_file_add(s, id);
    if (!f) return bc_seterr(s, BC_NOMEM, "out of memory");
    f->missing = 1; /* damaged once its hint proves valid; else dropped */
  }
  return BC_OK;
}

/* The tail -- the newest file that is not a merge output, or the
** newest file of all if its header is missing or torn, it is no longer
** than a header and it has no hint file, which only a crash while creating
** the next active file leaves.  A bad header anywhere else is damage. */
static void find_tail(recovery *r) {
  bc_store *s = r->s;
  uint32_t tail = 0;
  for (size_t i = 0; i < s->nfiles; i++)
    if (s->files[i].header_ok && !s->files[i].merged) tail = s->files[i].id;
  if (s->nfiles) {
    bc_file *last = &s->files[s->nfiles - 1];
    if (!last->header_ok && !last->missing && last->size <= BC_FILE_HEADER_SIZE &&
        !bc_ids_has(r->dl.hint, r->dl.nhint, last->id) &&
        !bc_ids_has(r->dl.hint_merging, r->dl.nhint_merging, last->id))
      tail = last->id;
  }
  /* A file with a damaged header newer than the tail may have been the
  ** active file: the tail was then sealed, and damage at its end is
  ** corruption, not a torn tail to cut. */
  if (!r->writer) s->follow_tail = tail;
  r->tail = tail;
  r->tail_cut = 1;
  for (size_t i = 0; i < s->nfiles; i++)
    if (s->files[i].id > tail && !s->files[i].header_ok && !s->files[i].missing)
      r->tail_cut = 0;
}

/* Whether file f has a hint file, and (merging) under the merge's name. */
static int hint_listed(const recovery *r, const bc_file *f, int merging) {
  return bc_ids_has(r->dl.hint, r->dl.nhint, f->id) ||
         (merging && bc_ids_has(r->dl.hint_merging, r->dl.nhint_merging, f->id));
}

/* Map the hint files ahead and read their counts, so that the
** keydir is sized once for the keys of every merged file before the first
** is inserted, rather than rehashed as each file's keys arrive.  The
** outputs of a merge hold each live key once, so their counts add up; the
** other files share keys, and bc_hint_apply sizes for each in turn.  A
** count is trusted only for this estimate until its file is checked, in
** turn, just before it is applied: only the pages of one hint at a time are
** read.  Without a mapping each hint is read when its turn comes. */
static bc_status open_hints(recovery *r) {
  bc_store *s = r->s;
  r->hf = calloc(s->nfiles ? s->nfiles : 1, sizeof *r->hf);
  if (!r->hf) return bc_seterr(s, BC_NOMEM, "out of memory");
  r->nhf = s->nfiles;
  if (!s->use_mmap) return BC_OK;
  uint64_t merged_keys = 0;
  for (size_t i = 0; i < s->nfiles; i++) {
    bc_file *f = &s->files[i];
    int merging = !bc_ids_has(r->dl.data, r->dl.ndata, f->id);
    if (!f->header_ok || !hint_listed(r, f, merging)) continue;
    char path[PATH_MAX];
    bc_path_id(s, path, f->id, merging ? BC_SUFFIX_HINT_MERGING : BC_SUFFIX_HINT);
    if (bc_hint_open(s, f, path, &r->hf[i]) && f->merged) merged_keys += r->hf[i].count;
  }
  if (merged_keys > s->kd.count && merged_keys <= SIZE_MAX)
    (void)bc_kd_presize(&s->kd, (size_t)(merged_keys - s->kd.count));
  return BC_OK;
}

/* ------------------------------------------------- reading one file */

/* Close f (mapping and cached descriptor) and open it again O_RDWR, held
** outside the cache, to change it in place: f->fd is -1 (errno set) when
** the open fails. */
static void reopen_rw(bc_store *s, bc_file *f) {
  bc_file_unmap(f);
  bc_file_close(s, f);
  char path[PATH_MAX];
  bc_path_id(s, path, f->id, BC_SUFFIX_DATA);
  f->fd = s->io.open(s->io.ctx, path, O_RDWR, 0);
}

/* The tail's header is missing or torn (a crash while creating it): a
** writer gives it a fresh one, dropping whatever followed; a read-only open
** leaves it for the writer. */
static bc_status rewrite_header(recovery *r, bc_file *f) {
  bc_store *s = r->s;
  if (!r->writer) {
    s->recovery_pending = 1;
    return BC_OK;
  }
  unsigned char hdr[BC_FILE_HEADER_SIZE];
  bc_file_header_encode(hdr, f->id, 0);
  reopen_rw(s, f);
  bc_status st;
  if (f->fd >= 0 && (st = unshare_linked(s, f)) != BC_OK) return st;
  if (f->fd < 0 || s->io.ftruncate(s->io.ctx, f->fd, 0) != 0 ||
      bc_write_all(&s->io, f->fd, hdr, sizeof hdr, 0) != 0 ||
      bc_fsync(s, f->fd) != 0)
    return bc_seterr_errno(s, BC_IOERR, errno,
                           "data file %010u" BC_SUFFIX_DATA ": rewriting its "
                           "header failed", f->id);
  s->truncated_bytes += f->size;
  f->size = BC_FILE_HEADER_SIZE;
  f->header_ok = 1;
  f->version = BC_FORMAT_VERSION;
  r->tail_synced = 1;
  return BC_OK;
}

/* Apply f's hint (s->files[i]'s), when it has a valid one.  *from: where
** the records its hint does not describe start (BC_FILE_HEADER_SIZE when no
** hint was applied; at or past f->size when the hint covers all of f).
** *hinted: a hint was applied. */
static bc_status apply_hint(recovery *r, size_t i, int merging, int is_tail,
                            uint64_t *from, int *hinted) {
  bc_store *s = r->s;
  bc_file *f = &s->files[i];
  bc_hintfile *hf = &r->hf[i];
  *from = BC_FILE_HEADER_SIZE;
  *hinted = 0;
  if (!hint_listed(r, f, merging)) return BC_OK;
  char path[PATH_MAX];
  bc_path_id(s, path, f->id, merging ? BC_SUFFIX_HINT_MERGING : BC_SUFFIX_HINT);
  if (!hf->data) (void)bc_hint_open(s, f, path, hf);
  if (hf->data && !bc_hint_check(hf)) bc_hint_close(hf);
  /* A hint valid in itself but for a longer file than this one is
  ** applied all the same: the keys of the records that are gone point
  ** past the file's end and read BC_CORRUPT.  One for a shorter file
  ** covers its part, and the rest is walked -- but in the tail it is
  ** what a rotation cut short leaves (the file went on as the active
  ** one), and is ignored as before. */
  if (hf->data && hf->data_size < f->size && is_tail && f->header_ok)
    bc_hint_close(hf);
  if (!hf->data) {
    /* An invalid hint of the file that stays active: remove it. */
    if (r->writer && is_tail && !merging) (void)s->io.unlink(s->io.ctx, path);
    return BC_OK;
  }
  uint64_t dsize = hf->data_size;
  bc_status st = bc_hint_apply(s, f, hf, bc_replay_record, &r->rc);
  bc_hint_close(hf);
  if (st != BC_OK) return st;
  /* A hint counts as the file's only when it describes all of it. */
  f->has_hint = dsize == f->size;
  if (dsize > f->size) {
    s->corrupt++;
    bc_file_damaged(f, f->missing ? BC_DAMAGE_MISSING : BC_DAMAGE_SHORT);
  }
  *from = dsize;
  *hinted = 1;
  return BC_OK;
}

/* A writer cuts the tail file f at end, where its unsynced tail starts; a
** read-only open leaves the cut to the writer (but reads only up to it). */
static bc_status cut_tail(recovery *r, bc_file *f, uint64_t end) {
  bc_store *s = r->s;
  if (!r->writer) {
    s->recovery_pending = 1;
  } else {
    reopen_rw(s, f);
    bc_status st;
    if (f->fd >= 0 && (st = unshare_linked(s, f)) != BC_OK) return st;
    if (f->fd < 0 || s->io.ftruncate(s->io.ctx, f->fd, (off_t)end) != 0 ||
        bc_fsync(s, f->fd) != 0)
      return bc_seterr_errno(s, BC_IOERR, errno,
                             "data file %010u" BC_SUFFIX_DATA ": truncating its "
                             "torn tail failed", f->id);
    s->truncated_bytes += f->size - end;
    r->tail_synced = 1;
  }
  f->size = end;
  return BC_OK;
}

/* The records of f from `from` on: the tail's through bc_replay_tail (and
** its unsynced tail cut), any other file's through a walk, where damage
** with nothing valid after it is corruption too. */
static bc_status read_records(recovery *r, bc_file *f, uint64_t from, int is_tail) {
  bc_store *s = r->s;
  uint64_t end;
  int bad;
  bc_status st;
  if (is_tail) {
    st = bc_replay_tail(&r->rc, f, from, f->size, &end);
    bad = end < f->size;
  } else {
    st = bc_replay_walk(&r->rc, f, from, f->size, &end, &bad);
    if (st == BC_OK) st = bc_replay_release_held(&r->rc);
  }
  if (st != BC_OK || !bad) return st;
  if (is_tail) return cut_tail(r, f, end);
  s->corrupt++;
  bc_file_damaged(f, BC_DAMAGE_RECORDS);
  return BC_OK;
}

/* Read s->files[i] (docs/FORMAT.md Recovery 2 and 3): its header first when
** it is the tail's and missing, then its hint, then the records the hint does
** not cover. */
static bc_status read_file(recovery *r, size_t i) {
  bc_store *s = r->s;
  bc_file *f = &s->files[i];
  r->rc.f = f;
  if (!f->header_ok && f->id == r->tail) return rewrite_header(r, f);
  /* A damaged header (bad magic, CRC or file_id) does not make the
  ** records after it any less valid: each proves itself by its CRC, and
  ** the hint file, if valid, still says what the file held.  Such a file
  ** is read like any other, and marked damaged. */
  if (!f->header_ok && !f->missing) {
    s->corrupt++;
    bc_file_damaged(f, BC_DAMAGE_HEADER);
  }
  int merging = !f->missing && !bc_ids_has(r->dl.data, r->dl.ndata, f->id);
  int is_tail = f->id == r->tail;
  uint64_t from;
  int hinted;
  bc_status st = apply_hint(r, i, merging, is_tail, &from, &hinted);
  if (st != BC_OK) return st;
  if (f->missing || f->size <= from) return BC_OK;
  /* The rest of a file a hint covers only in part is final: any other end
  ** too.  Only a tail with a valid header is cut. */
  is_tail = is_tail && !hinted && f->header_ok && r->tail_cut;
  return read_records(r, f, from, is_tail);
}

/* ------------------------------------------ after the files are read */

/* What reading every file leaves to settle (docs/FORMAT.md Recovery 4):
** placeholders of hints that proved invalid, the last COMMIT, the deleted
** markers, next_seq and the spread of damage. */
static bc_status settle(recovery *r) {
  bc_store *s = r->s;
  /* A hint left of a missing data file that proved invalid is no evidence
  ** of anything: no key points at it. */
  for (size_t i = s->nfiles; i-- > 0;)
    if (s->files[i].missing && !s->files[i].damaged) bc_file_remove(s, s->files[i].id);

  /* The last COMMIT of the store has no abort after it (yet: a read-only
  ** follower remembers it, see bc_refresh). */
  uint64_t last = r->rc.has_commit ? r->rc.commit_txn : 0;
  bc_status st = bc_replay_settle(&r->rc);
  if (st != BC_OK) return st;
  r->rc.settled_txn = last;
  /* Uncommitted transactions vanish with the deleted markers (a walk of
  ** every entry, skipped when no tombstone made one). */
  if (r->rc.deleted && bc_kd_sweep_deleted(&s->kd) != 0)
    return bc_seterr(s, BC_NOMEM, "out of memory");
  s->next_seq = r->rc.max_seq + 1;
  bc_damage_spread(s);
  return BC_OK;
}

/* A writer (docs/FORMAT.md Recovery 5): the tail goes on as the active file
** -- even when merge outputs have higher ids: every record appended to it is
** newer than theirs -- unless it is sealed (it has a hint), damaged or of an
** older format (a format-2 record in an older file would be misread); else a
** new active file. */
static bc_status choose_active(recovery *r) {
  bc_store *s = r->s;
  bc_file *last = r->tail ? bc_file_get(s, r->tail) : NULL;
  if (!last || last->has_hint || !last->header_ok || last->damaged ||
      last->version != BC_FORMAT_VERSION) {
    /* Sealed: the O_RDWR descriptor that cut or rewrote it goes, as a
    ** rotation closes the file it seals (reads reopen it in the cache). */
    if (last) bc_file_close(s, last);
    return bc_active_create(s);
  }
  /* Continue appending to it. */
  reopen_rw(s, last);
  if (last->fd < 0)
    return bc_seterr_errno(s, BC_IOERR, errno,
                           "data file %010u" BC_SUFFIX_DATA ": open failed", last->id);
  bc_status st = unshare_linked(s, last);
  if (st != BC_OK) return st;
  /* What recovery read may be only in the page cache still (a kill -9
  ** leaves it there): make it durable before a COMMIT claims it. */
  if (s->sync != BC_SYNC_OFF && !r->tail_synced) {
    if (bc_fsync(s, last->fd) != 0)
      return bc_seterr_errno(s, BC_IOERR, errno,
                             "data file %010u" BC_SUFFIX_DATA ": fsync failed",
                             last->id);
    r->tail_synced = 1;
  }
  s->active_id = last->id;
  s->commit_size = last->size;
  s->active_synced = r->tail_synced ? last->size : 0;
  return BC_OK;
}

/* ---------------------------------------------------------- bc_recover */

bc_status bc_recover(bc_store *s, bc_replay *keep) {
  recovery r = {0};
  r.s = s;
  r.rc.s = s;
  r.writer = !s->read_only;
  if (keep) memset(keep, 0, sizeof *keep);
  bc_status st = bc_dirlist_read(s, s->dir, &r.dl);
  if (st != BC_OK) return st;
  st = finish_merge(&r);
  if (st == BC_OK) {
    choose_next_file_id(&r);
    if (r.writer) {
      st = remove_leftovers(s, &r.dl);
    } else {
      const bc_dirlist *dl = &r.dl;
      s->recovery_pending = dl->has_merge || dl->has_merge_tmp || dl->ndata_merging ||
                            dl->nhint_merging || dl->nhint_tmp || dl->ndata_tmp;
    }
  }
  if (st == BC_OK) st = add_files(&r);
  if (st == BC_OK) {
    find_tail(&r);
    st = open_hints(&r);
  }
  for (size_t i = 0; i < s->nfiles && st == BC_OK; i++) st = read_file(&r, i);
  if (st == BC_OK) st = settle(&r);
  if (st == BC_OK && r.writer) st = choose_active(&r);
  /* A read-only store goes on from here at each bc_refresh: the caller
  ** keeps the pending transactions. */
  if (st == BC_OK && !r.writer && keep) {
    *keep = r.rc;
    memset(&r.rc, 0, sizeof r.rc);
  }
  free(r.ids);
  for (size_t i = 0; i < r.nhf; i++) bc_hint_close(&r.hf[i]);
  free(r.hf);
  bc_replay_free(&r.rc);
  bc_manifest_free(&r.m);
  bc_dirlist_free(&r.dl);
  return st;
}
