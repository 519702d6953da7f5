/*
** merge.c -- compaction: rewrite the live records of the sealed files into
** new merged files with hints, install them atomically, delete the old ones
** (docs/FORMAT.md "Merge").
**
**   1. seal the active file if it holds records; inputs = every sealed file
**      that is not damaged
**   2. copy each live record of an input (and the tombstones a damaged file
**      may need) to N.data.merging (+ N.hint.merging), fsync them and the
**      directory
**   3. commit point: MERGE.tmp -> fsync -> rename to MERGE (durable at step
**      4's directory fsync, before step 5 removes anything)
**   4. rename the outputs into place            \
**   5. unlink the inputs' data and hint files    > bc_merge_redo, idempotent,
**   6. unlink MERGE                             /  also run by recovery
**
** Invariants:
**  - Before the commit point nothing the store relies on has changed: a
**    failure (or crash) leaves only .merging/.tmp files, which are deleted.
**  - After it, the merge is done: the keydir and the file list switch to the
**    outputs at once (opened again on demand, into the descriptor cache),
**    the inputs leave it (closed, or kept readable while a snapshot may
**    read them: bc_file_retire), and if steps 4-6 fail they are retried by
**    the next bc_merge (s->merge_pending) or by the next open.
**  - A keydir entry is repointed only if its seq is the one that was copied.
**    (The store mutex is held for the whole merge, so no write can intervene;
**    the check states the rule rather than relying on that.)
**  - Inputs: every sealed file that is not damaged (bc_file.damaged).  A
**    damaged file stays as it is, with the keydir entries pointing into it
**    and the lost ones (BC_E_LOST): the merge deletes nothing it could not
**    account for.  A live record failing its checks here, or any damaged
**    record met while reading an input's tombstones, makes its file
**    damaged (and those sharing a transaction with it), and the merge
**    starts over without them.
**  - Tombstones: the files that outlive the inputs are the active file, all
**    of whose records are newer than any input record (it was created
**    after every input was sealed or written), and the damaged files.
**    With no damaged file, none can hold an older version of a deleted key,
**    and no tombstone is copied; with some, for each key with no keydir
**    entry, the newest tombstone of it in the inputs (read from their
**    hints, or by walking their records) is copied if its seq is above the
**    lowest seq of a damaged file (dmin).  If the active file's records
**    were not all newer, the merge is skipped rather than risk resurrecting
**    a key.  docs/FORMAT.md "Merge" says why this keeps every answer.
**  - Merges always fsync, whatever the sync mode: crash safety of the swap
**    depends on the outputs being durable before MERGE exists.  Each
**    output's data and hint are fsync'd when the next output is finished
**    (the last one's right after it), always before the directory fsync and
**    MERGE; their writeback is started early (sync_file_range) so that those
**    fsyncs find the work done.
**  - Each live record is read once: its CRC, key and seq are checked where
**    it lies in its input's mapping (bc_datafile_record), then it is copied
**    into the output buffer, where only a record written by a transaction
**    gets a new header (txn 0) and CRC.  Output buffer writes are 1 MiB.
**
** Where the time goes (a profile of bench/'s eng_merge): most of it in the
** kernel, copying the output into the page cache (pwrite) and freeing the
** inputs' pages (unlink), the same work as write(2) of the live bytes plus
** deleting the old files; the CRC check, one user-space copy and the sort
** of the live entries are the rest.
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
#include "merge.h"
#include "replay.h"
#include "store.h"
#include "versions.h"
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int bc_manifest_read(bc_store *s, bc_manifest *m, bc_status *st) {
  char path[PATH_MAX];
  bc_path_name(s, path, BC_FILENAME_MERGE);
  *st = BC_OK;
  int fd = s->io.open(s->io.ctx, path, O_RDONLY, 0);
  if (fd < 0) {
    if (errno == ENOENT) return 0;
    *st = bc_seterr_errno(s, BC_IOERR, errno, BC_FILENAME_MERGE " manifest: open failed");
    return -1;
  }
  struct stat sb;
  unsigned char *buf = NULL;
  int rc = -1;
  if (fstat(fd, &sb) != 0) {
    *st = bc_seterr_errno(s, BC_IOERR, errno, BC_FILENAME_MERGE " manifest: stat failed");
    goto done;
  }
  size_t len = (size_t)sb.st_size;
  if (len > (size_t)1 << 30 || !(buf = malloc(len ? len : 1))) {
    *st = bc_seterr(s, len > (size_t)1 << 30 ? BC_CORRUPT : BC_NOMEM,
                    BC_FILENAME_MERGE " manifest: cannot load it");
    goto done;
  }
  ssize_t n = bc_read_all(&s->io, fd, buf, len, 0);
  if (n < 0) {
    *st = bc_seterr_errno(s, BC_IOERR, errno, BC_FILENAME_MERGE " manifest: read failed");
    goto done;
  }
  int d = bc_manifest_decode(buf, (size_t)n, m);
  if (d == -2) {
    *st = bc_seterr(s, BC_NOMEM, "out of memory");
  } else if (d != 0) {
    *st = bc_seterr(s, BC_CORRUPT,
                    "the " BC_FILENAME_MERGE " manifest of an interrupted merge is "
                    "damaged");
  } else {
    rc = 1;
  }
done:
  free(buf);
  s->io.close(s->io.ctx, fd);
  return rc;
}

static int exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

bc_status bc_merge_redo(bc_store *s, const bc_manifest *m) {
  char from[PATH_MAX], to[PATH_MAX];
  /* Step 4: outputs into place. */
  for (uint32_t i = 0; i < m->n_outputs; i++) {
    static const char *const suf[2][2] = {{BC_SUFFIX_DATA_MERGING, BC_SUFFIX_DATA},
                                          {BC_SUFFIX_HINT_MERGING, BC_SUFFIX_HINT}};
    for (int k = 0; k < 2; k++) {
      bc_path_id(s, from, m->outputs[i], suf[k][0]);
      bc_path_id(s, to, m->outputs[i], suf[k][1]);
      if (s->io.rename(s->io.ctx, from, to) != 0 && errno != ENOENT)
        return bc_seterr_errno(s, BC_IOERR, errno, "merge: renaming '%s' failed",
                               from);
    }
    bc_path_id(s, to, m->outputs[i], BC_SUFFIX_DATA);
    if (!exists(to))
      return bc_seterr(s, BC_CORRUPT,
                       "merge output %010u" BC_SUFFIX_DATA " is missing; the merge's input "
                       "files are kept", m->outputs[i]);
  }
  if (bc_fsync_store_dir(s) != 0)
    return bc_seterr_errno(s, BC_IOERR, errno, "fsync of the directory failed");
  /* Step 5: inputs away. */
  for (uint32_t i = 0; i < m->n_inputs; i++) {
    static const char *const suf[2] = {BC_SUFFIX_DATA, BC_SUFFIX_HINT};
    for (int k = 0; k < 2; k++) {
      bc_path_id(s, from, m->inputs[i], suf[k]);
      if (s->io.unlink(s->io.ctx, from) != 0 && errno != ENOENT)
        return bc_seterr_errno(s, BC_IOERR, errno, "merge: removing '%s' failed",
                               from);
    }
  }
  if (bc_fsync_store_dir(s) != 0)
    return bc_seterr_errno(s, BC_IOERR, errno, "fsync of the directory failed");
  /* Step 6: the manifest. */
  bc_path_name(s, from, BC_FILENAME_MERGE);
  if (s->io.unlink(s->io.ctx, from) != 0 && errno != ENOENT)
    return bc_seterr_errno(s, BC_IOERR, errno,
                           "merge: removing " BC_FILENAME_MERGE " failed");
  if (bc_fsync_store_dir(s) != 0)
    return bc_seterr_errno(s, BC_IOERR, errno, "fsync of the directory failed");
  return BC_OK;
}

/* ------------------------------------------------------- writing outputs */

typedef struct out_file {
  uint32_t id;
  int fd;              /* owned; closed by out_sync (-1) */
  uint64_t size;       /* bytes written */
  uint64_t kicked;     /* bytes whose writeback was started (out_writebehind) */
  uint64_t min_seq, max_seq, live;
  bc_hintbuf hint;     /* owned; freed once written */
  uint64_t hint_size;
  int hint_fd;         /* the written .hint.merging until out_sync; owned; -1 */
  int synced;          /* out_sync made data and hint durable */
} out_file;

typedef struct merger {
  bc_store *s;
  out_file *outs;      /* owned */
  size_t nouts, cap;
  unsigned char *buf;  /* write buffer of the last output; owned */
  size_t len, bufcap;
} merger;

#define MERGE_BUF (1u << 20)

/* Start writeback of o's bytes not yet handed to the device once
** WRITEBEHIND of them have gathered (all of them if `all`), so that the
** disk works while the merge goes on copying and the fsyncs of out_sync
** find little left to wait for.  A hint to the kernel (sync_file_range(2),
** Linux): durability still comes from those fsyncs, so a failure here is
** ignored.  Only with the POSIX I/O table: a bc_options.io (fault
** injection) must see every call made on its descriptors, and this one is
** not in the table. */
#define WRITEBEHIND (8u << 20)

static void writeback_start(bc_store *s, int fd, uint64_t from, uint64_t len) {
#if defined(__linux__) && defined(SYNC_FILE_RANGE_WRITE)
  if (s->io.pwrite != bc_posix_io.pwrite || len == 0) return;
  (void)sync_file_range(fd, (off_t)from, (off_t)len, SYNC_FILE_RANGE_WRITE);
#else
  (void)s;
  (void)fd;
  (void)from;
  (void)len;
#endif
}

static void out_writebehind(merger *mg, out_file *o, int all) {
  if (o->size - o->kicked < (all ? 1 : WRITEBEHIND)) return;
  writeback_start(mg->s, o->fd, o->kicked, o->size - o->kicked);
  o->kicked = o->size;
}

static bc_status out_flush(merger *mg) {
  out_file *o = &mg->outs[mg->nouts - 1];
  if (mg->len == 0) return BC_OK;
  if (bc_write_all(&mg->s->io, o->fd, mg->buf, mg->len, o->size) != 0)
    return bc_seterr_errno(mg->s, BC_IOERR, errno,
                           "merge: writing %010u" BC_SUFFIX_DATA_MERGING " failed", o->id);
  o->size += mg->len;
  mg->len = 0;
  out_writebehind(mg, o, 0);
  return BC_OK;
}

/* Make output i durable: fsync its data and hint files, close their
** descriptors (so a merge holds at most two outputs open, whatever their
** number). */
static bc_status out_sync(merger *mg, size_t i) {
  bc_store *s = mg->s;
  out_file *o = &mg->outs[i];
  if (o->synced) return BC_OK;
  if (bc_fsync(s, o->fd) != 0)
    return bc_seterr_errno(s, BC_IOERR, errno,
                           "merge: fsync of %010u" BC_SUFFIX_DATA_MERGING " failed", o->id);
  if (bc_fsync(s, o->hint_fd) != 0)
    return bc_seterr_errno(s, BC_IOERR, errno,
                           "merge: fsync of %010u" BC_SUFFIX_HINT_MERGING " failed", o->id);
  int fd = o->hint_fd;
  o->hint_fd = -1;
  if (s->io.close(s->io.ctx, fd) != 0)
    return bc_seterr_errno(s, BC_IOERR, errno,
                           "merge: closing %010u" BC_SUFFIX_HINT_MERGING " failed", o->id);
  fd = o->fd;
  o->fd = -1;
  if (s->io.close(s->io.ctx, fd) != 0)
    return bc_seterr_errno(s, BC_IOERR, errno,
                           "merge: closing %010u" BC_SUFFIX_DATA_MERGING " failed", o->id);
  o->synced = 1;
  return BC_OK;
}

/* The last output is complete: flush it, write its hint (from memory, built
** as its records were written), start the writeback of both, and make the
** output before it durable.  Its own fsyncs come one output later (or from
** bc_merge_run after the last): by then the disk has written it, so the
** merge does not sit idle waiting for it, and at most two hint files are
** open at a time. */
static bc_status out_finish(merger *mg) {
  bc_store *s = mg->s;
  out_file *o = &mg->outs[mg->nouts - 1];
  bc_status st = out_flush(mg);
  if (st != BC_OK) return st;
  out_writebehind(mg, o, 1);
  if (bc_hintbuf_finish(&o->hint, o->id, o->size) != 0)
    return bc_seterr(s, BC_NOMEM, "out of memory");
  char path[PATH_MAX];
  bc_path_id(s, path, o->id, BC_SUFFIX_HINT_MERGING);
  o->hint_fd = s->io.open(s->io.ctx, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (o->hint_fd < 0)
    return bc_seterr_errno(s, BC_IOERR, errno,
                           "merge: creating %010u" BC_SUFFIX_HINT_MERGING " failed", o->id);
  if (bc_write_all(&s->io, o->hint_fd, o->hint.data, o->hint.len, 0) != 0)
    return bc_seterr_errno(s, BC_IOERR, errno,
                           "merge: writing %010u" BC_SUFFIX_HINT_MERGING " failed", o->id);
  writeback_start(s, o->hint_fd, 0, o->hint.len);
  o->hint_size = o->hint.len;
  bc_hintbuf_free(&o->hint);
  return mg->nouts >= 2 ? out_sync(mg, mg->nouts - 2) : BC_OK;
}

static bc_status out_new(merger *mg) {
  bc_store *s = mg->s;
  if (mg->nouts == mg->cap) {
    size_t cap = mg->cap ? mg->cap * 2 : 8;
    out_file *p = realloc(mg->outs, cap * sizeof *p);
    if (!p) return bc_seterr(s, BC_NOMEM, "out of memory");
    mg->outs = p;
    mg->cap = cap;
  }
  if (s->next_file_id == 0) return bc_seterr(s, BC_IOERR, "file ids are exhausted");
  out_file *o = &mg->outs[mg->nouts];
  memset(o, 0, sizeof *o);
  o->id = s->next_file_id;
  s->next_file_id = o->id == UINT32_MAX ? 0 : o->id + 1;
  o->min_seq = UINT64_MAX;
  o->fd = -1;
  o->hint_fd = -1;
  if (bc_hintbuf_init(&o->hint, o->id) != 0) return bc_seterr(s, BC_NOMEM, "out of memory");
  mg->nouts++;
  bc_status st = bc_datafile_create(s, o->id, BC_SUFFIX_DATA_MERGING, BC_FILE_FLAG_MERGED,
                                    0, &o->fd);
  if (st != BC_OK) return st;
  o->size = BC_FILE_HEADER_SIZE;
  return BC_OK;
}

/* Make the last output the one to append to: the first, or a new one once
** the last has reached max_file_size (the one before is then finished). */
static bc_status out_room(merger *mg) {
  bc_status st;
  if (mg->nouts > 0) {
    out_file *o = &mg->outs[mg->nouts - 1];
    if (o->size + mg->len < mg->s->max_file_size) return BC_OK;
    if ((st = out_finish(mg)) != BC_OK) return st;
  }
  return out_new(mg);
}

/* Append the live record of e to the outputs as a standalone PUT; *id and
** *off receive where it went.  rec (borrowed) is the record's bytes as
** verified by bc_datafile_record, r its decoded header.  A record that is
** standalone already (txn 0, the entry's meta) is copied byte for byte and
** its verified CRC stands; otherwise the copy's header is rewritten and its
** CRC computed afresh over the copy. */
static bc_status out_put(merger *mg, const bc_entry *e, const unsigned char *rec,
                         const bc_rec *r, uint32_t *id, uint64_t *off) {
  bc_store *s = mg->s;
  bc_status st;
  uint32_t klen = r->klen;
  uint64_t rsz = bc_rec_size(klen, r->vlen);
  if ((st = out_room(mg)) != BC_OK) return st;
  out_file *o = &mg->outs[mg->nouts - 1];
  bc_rec w = {BC_REC_PUT, bc_e_meta(e), r->seq, 0, klen, r->vlen};
  int verbatim = r->txn == 0 && r->meta == w.meta;
  if (rsz > mg->bufcap - mg->len && (st = out_flush(mg)) != BC_OK) return st;
  *off = o->size + mg->len;
  *id = o->id;
  const unsigned char *key = rec + BC_REC_HEADER_SIZE;
  if (rsz <= mg->bufcap) {
    unsigned char *p = mg->buf + mg->len;
    memcpy(p, rec, (size_t)rsz);
    if (!verbatim) bc_rec_encode_in_place(p, &w);
    mg->len += (size_t)rsz;
  } else {
    /* Larger than the buffer (which out_put flushed): straight from rec. */
    unsigned char hdr[BC_REC_HEADER_SIZE];
    if (verbatim)
      memcpy(hdr, rec, sizeof hdr);
    else
      bc_rec_encode(hdr, &w, key, key + klen);
    if (bc_write_all(&s->io, o->fd, hdr, sizeof hdr, *off) != 0 ||
        bc_write_all(&s->io, o->fd, key, (size_t)rsz - sizeof hdr,
                     *off + sizeof hdr) != 0)
      return bc_seterr_errno(s, BC_IOERR, errno,
                             "merge: writing %010u" BC_SUFFIX_DATA_MERGING " failed",
                             o->id);
    o->size += rsz;
    out_writebehind(mg, o, 0);
  }
  if (bc_hintbuf_add(&o->hint, &w, *off, key, 0) != 0)
    return bc_seterr(s, BC_NOMEM, "out of memory");
  if (w.seq < o->min_seq) o->min_seq = w.seq;
  if (w.seq > o->max_seq) o->max_seq = w.seq;
  o->live += rsz;
  return BC_OK;
}

/* Append a tombstone of key (seq as it was) to the outputs: a tombstone a
** damaged file outside the merge may still need (see copy_tombs). */
static bc_status out_tomb(merger *mg, const void *key, uint32_t klen, uint64_t seq) {
  bc_store *s = mg->s;
  bc_status st;
  uint64_t rsz = bc_rec_size(klen, 0);
  if ((st = out_room(mg)) != BC_OK) return st;
  /* At most 32 + BC_MAX_KEY_SIZE bytes: fits an empty buffer. */
  if (rsz > mg->bufcap - mg->len && (st = out_flush(mg)) != BC_OK) return st;
  out_file *o = &mg->outs[mg->nouts - 1];
  uint64_t off = o->size + mg->len;
  unsigned char *p = mg->buf + mg->len;
  bc_rec w = {BC_REC_TOMBSTONE, 0, seq, 0, klen, 0};
  if (klen) memcpy(p + BC_REC_HEADER_SIZE, key, klen);
  bc_rec_encode_in_place(p, &w);
  mg->len += (size_t)rsz;
  if (bc_hintbuf_add(&o->hint, &w, off, key, 0) != 0)
    return bc_seterr(s, BC_NOMEM, "out of memory");
  if (seq < o->min_seq) o->min_seq = seq;
  if (seq > o->max_seq) o->max_seq = seq;
  return BC_OK;
}

/* Before the commit point: remove every output. */
static void out_discard(merger *mg) {
  bc_store *s = mg->s;
  char path[PATH_MAX];
  for (size_t i = 0; i < mg->nouts; i++) {
    out_file *o = &mg->outs[i];
    if (o->fd >= 0) s->io.close(s->io.ctx, o->fd);
    o->fd = -1;
    if (o->hint_fd >= 0) s->io.close(s->io.ctx, o->hint_fd);
    o->hint_fd = -1;
    bc_path_id(s, path, o->id, BC_SUFFIX_DATA_MERGING);
    s->io.unlink(s->io.ctx, path);
    bc_path_id(s, path, o->id, BC_SUFFIX_HINT_MERGING);
    s->io.unlink(s->io.ctx, path);
  }
}

static void merger_free(merger *mg) {
  for (size_t i = 0; i < mg->nouts; i++) bc_hintbuf_free(&mg->outs[i].hint);
  free(mg->outs);
  free(mg->buf);
}

/* One live record to copy.  Its location is copied out of the entry so that
** sorting never touches the entries, which lie scattered over the keydir's
** arena. */
typedef struct live_ref {
  uint64_t off;        /* record offset in file_id */
  uint32_t file_id;
  bc_entry *e;         /* the keydir entry (borrowed) */
} live_ref;

static int cmp_loc(const void *a, const void *b) {
  const live_ref *x = a, *y = b;
  if (x->file_id != y->file_id) return x->file_id < y->file_id ? -1 : 1;
  return (x->off > y->off) - (x->off < y->off);
}

/* Entries this far ahead of the copy are prefetched: the copy's first touch
** of each one is otherwise a cache miss (they lie scattered over the
** keydir's arena). */
#define PREFETCH_AHEAD 8

static bc_status write_manifest(bc_store *s, const bc_manifest *m) {
  char tmp[PATH_MAX], final[PATH_MAX];
  bc_path_name(s, tmp, BC_FILENAME_MERGE_TMP);
  bc_path_name(s, final, BC_FILENAME_MERGE);
  size_t len;
  unsigned char *p = bc_manifest_encode(m, &len);
  if (!p) return bc_seterr(s, BC_NOMEM, "out of memory");
  int fd = s->io.open(s->io.ctx, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  bc_status st = BC_OK;
  if (fd < 0) {
    st = bc_seterr_errno(s, BC_IOERR, errno,
                         "merge: creating " BC_FILENAME_MERGE_TMP " failed");
  } else {
    if (bc_write_all(&s->io, fd, p, len, 0) != 0 || bc_fsync(s, fd) != 0)
      st = bc_seterr_errno(s, BC_IOERR, errno,
                           "merge: writing " BC_FILENAME_MERGE_TMP " failed");
    if (s->io.close(s->io.ctx, fd) != 0 && st == BC_OK)
      st = bc_seterr_errno(s, BC_IOERR, errno,
                           "merge: writing " BC_FILENAME_MERGE_TMP " failed");
    if (st == BC_OK && s->io.rename(s->io.ctx, tmp, final) != 0)
      st = bc_seterr_errno(s, BC_IOERR, errno,
                           "merge: renaming " BC_FILENAME_MERGE_TMP " failed");
    if (st != BC_OK) s->io.unlink(s->io.ctx, tmp);
  }
  free(p);
  return st;
}

/* The tombstones of the inputs that a damaged file may still need: for each
** key with no keydir entry, the newest tombstone of it in an input, if its
** seq is above `dmin` (the lowest seq of any damaged file).  Gathered into
** tk (a keydir used as a set: seq per key). */
typedef struct tombs {
  bc_store *s;
  bc_keydir tk;
  uint64_t dmin;
  int damaged;         /* a damaged record was met */
} tombs;

static bc_status tomb_cb(void *arg, const bc_recinfo *ri) {
  tombs *t = arg;
  if (ri->damaged) {
    t->damaged = 1;
    return BC_OK;
  }
  if (ri->r.type != BC_REC_TOMBSTONE || ri->r.seq <= t->dmin) return BC_OK;
  if (bc_kd_get(&t->s->kd, ri->key, ri->r.klen)) return BC_OK; /* live */
  int created;
  bc_entry *e = bc_kd_upsert(&t->tk, ri->key, ri->r.klen, &created);
  if (!e) return bc_seterr(t->s, BC_NOMEM, "out of memory");
  if (created || ri->r.seq > bc_e_seq(e)) bc_e_set(e, ri->r.seq, 0, 0, 0, 0, 0);
  return BC_OK;
}

/* Read input f's tombstones into t: from its hint, else by walking its
** records.  A damaged record (it may be a tombstone) makes it BC_CORRUPT,
** *bad_file f's id. */
static bc_status tombs_of(bc_store *s, bc_file *f, tombs *t, uint32_t *bad_file) {
  char path[PATH_MAX];
  bc_path_id(s, path, f->id, BC_SUFFIX_HINT);
  bc_status st = BC_OK;
  if (!(f->has_hint && bc_hint_load(s, f, path, tomb_cb, t, &st))) {
    if (st != BC_OK) return st;
    uint64_t end;
    int bad, fd;
    st = bc_file_fd(s, f, &fd);
    if (st != BC_OK) return st;
    st = bc_datafile_walk(s, fd, f->id, BC_FILE_HEADER_SIZE, f->size, tomb_cb, t,
                          &end, &bad);
    if (st == BC_OK && bad) t->damaged = 1;
  }
  if (st == BC_OK && t->damaged) {
    *bad_file = f->id;
    st = bc_seterr(s, BC_CORRUPT, "data file %010u" BC_SUFFIX_DATA ": a record is damaged",
                   f->id);
  }
  return st;
}

/* One attempt at a merge (steps 2-6), the state its steps share. */
typedef struct merge_job {
  bc_store *s;
  bc_manifest m;           /* inputs (pick_inputs), outputs (commit); owned */
  uint64_t inputs_max_seq; /* the highest seq in an input */
  uint64_t old_bytes;      /* the inputs' data and hint bytes */
  uint64_t dmin;           /* the lowest seq in a damaged file (UINT64_MAX:
                           ** none, or none with a record) */
  size_t ndamaged;         /* sealed files left out as damaged */
  live_ref *live;          /* the live records of the inputs, in file order;
                           ** owned */
  size_t nlive;
  uint32_t *new_id;        /* live[i]'s copy: file and offset; owned */
  uint64_t *new_off;
  uint64_t *old_seq;       /* live[i]'s seq when it was copied; owned */
  merger mg;               /* the outputs */
  bc_buf rb;               /* a record read outside a mapping; owned */
  uint32_t *bad_file;      /* set to a file found damaged (BC_CORRUPT) */
} merge_job;

static void job_free(merge_job *j) {
  free(j->rb.data);
  merger_free(&j->mg);
  free(j->live);
  free(j->new_id);
  free(j->new_off);
  free(j->old_seq);
  bc_manifest_free(&j->m);
}

/* The inputs: every sealed file that is not damaged.  Damaged files are no
** input: kept as they are, they go on serving (or reporting) what they
** hold. */
static bc_status pick_inputs(merge_job *j) {
  bc_store *s = j->s;
  j->m.inputs = malloc((s->nfiles + 1) * sizeof *j->m.inputs);
  if (!j->m.inputs) return bc_seterr(s, BC_NOMEM, "out of memory");
  j->dmin = UINT64_MAX;
  for (size_t i = 0; i < s->nfiles; i++) {
    bc_file *f = &s->files[i];
    if (f->id == s->active_id) continue;
    if (f->damaged) {
      j->ndamaged++;
      if (f->min_seq < j->dmin) j->dmin = f->min_seq;
      continue;
    }
    j->m.inputs[j->m.n_inputs++] = f->id;
    if (f->max_seq > j->inputs_max_seq) j->inputs_max_seq = f->max_seq;
    j->old_bytes += f->size + (f->has_hint ? f->hint_size : 0);
  }
  return BC_OK;
}

/* Step 2, what to copy: the live entries of the inputs (not lost, not in a
** damaged file), sorted by location; and room for where each copy goes. */
static bc_status gather_live(merge_job *j) {
  bc_store *s = j->s;
  j->live = malloc((s->kd.count + 1) * sizeof *j->live);
  if (!j->live) return bc_seterr(s, BC_NOMEM, "out of memory");
  for (size_t i = 0; i < s->kd.cap; i++) {
    bc_entry *e = bc_kd_at(&s->kd, i);
    if (!e || e->file_id == s->active_id || bc_e_lost(e)) continue;
    if (j->ndamaged) {
      const bc_file *ef = bc_file_get(s, e->file_id);
      if (!ef || ef->damaged) continue; /* stays where it is */
    }
    j->live[j->nlive++] = (live_ref){bc_e_off(e), e->file_id, e};
  }
  qsort(j->live, j->nlive, sizeof *j->live, cmp_loc);
  j->new_id = malloc((j->nlive + 1) * sizeof *j->new_id);
  j->new_off = malloc((j->nlive + 1) * sizeof *j->new_off);
  j->old_seq = malloc((j->nlive + 1) * sizeof *j->old_seq);
  j->mg.buf = malloc(MERGE_BUF);
  j->mg.bufcap = MERGE_BUF;
  if (!j->new_id || !j->new_off || !j->old_seq || !j->mg.buf)
    return bc_seterr(s, BC_NOMEM, "out of memory");
  return BC_OK;
}

/* Step 2, the copy: each live record, verified where it lies, appended to
** the outputs. */
static bc_status copy_live(merge_job *j) {
  bc_store *s = j->s;
  /* In locals: out_put's stores could otherwise alias them. */
  const live_ref *live = j->live;
  const size_t nlive = j->nlive;
  uint32_t *new_id = j->new_id;
  uint64_t *new_off = j->new_off, *old_seq = j->old_seq;
  bc_file *f = NULL;
  for (size_t i = 0; i < nlive; i++) {
    bc_entry *e = live[i].e;
    if (i + PREFETCH_AHEAD < nlive) __builtin_prefetch(live[i + PREFETCH_AHEAD].e);
    const unsigned char *rec;
    bc_rec r;
    if (!f || f->id != live[i].file_id) {
      f = bc_file_get(s, live[i].file_id);
      if (!f)
        return bc_seterr(s, BC_CORRUPT, "data file %010u" BC_SUFFIX_DATA " is missing",
                         live[i].file_id);
    }
    bc_status st = bc_datafile_record(s, f, e, &j->rb, &rec, &r);
    if (st == BC_CORRUPT) *j->bad_file = f->id;
    if (st != BC_OK) return st;
    old_seq[i] = bc_e_seq(e);
    st = out_put(&j->mg, e, rec, &r, &new_id[i], &new_off[i]);
    if (st != BC_OK) return st;
  }
  return BC_OK;
}

/* Step 2, the tombstones: when every file outside the merge but the active
** one (whose records are all newer) is damaged, one may hold an older
** record of a deleted key, which a dropped tombstone would bring back:
** the tombstones such a file may need are copied (see struct tombs). */
static bc_status copy_tombs(merge_job *j) {
  bc_store *s = j->s;
  if (!j->ndamaged || j->dmin == UINT64_MAX) return BC_OK;
  tombs tb = {s, {0}, j->dmin, 0};
  if (bc_kd_init(&tb.tk, s->kd.seed) != 0) return bc_seterr(s, BC_NOMEM, "out of memory");
  bc_status st = BC_OK;
  for (uint32_t i = 0; i < j->m.n_inputs && st == BC_OK; i++)
    st = tombs_of(s, bc_file_get(s, j->m.inputs[i]), &tb, j->bad_file);
  for (size_t i = 0; i < tb.tk.cap && st == BC_OK; i++) {
    bc_entry *e = bc_kd_at(&tb.tk, i);
    if (e) st = out_tomb(&j->mg, e->key, bc_e_klen(e), bc_e_seq(e));
  }
  bc_kd_free(&tb.tk);
  return st;
}

/* The end of step 2: the last output finished, every output durable, then
** the directory. */
static bc_status outputs_durable(merge_job *j) {
  bc_status st;
  merger *mg = &j->mg;
  if (mg->nouts > 0 && ((st = out_finish(mg)) != BC_OK ||
                        (st = out_sync(mg, mg->nouts - 1)) != BC_OK))
    return st;
  if (bc_fsync_store_dir(j->s) != 0)
    return bc_seterr_errno(j->s, BC_IOERR, errno, "fsync of the directory failed");
  return BC_OK;
}

/* Step 3, the commit point: the manifest of inputs and outputs, durable
** under its final name. */
static bc_status commit(merge_job *j) {
  j->m.outputs = malloc((j->mg.nouts + 1) * sizeof *j->m.outputs);
  if (!j->m.outputs) return bc_seterr(j->s, BC_NOMEM, "out of memory");
  for (size_t i = 0; i < j->mg.nouts; i++) j->m.outputs[j->m.n_outputs++] = j->mg.outs[i].id;
  return write_manifest(j->s, &j->m);
}

/* Committed: memory switches over to the outputs.  Each copied entry whose
** seq is unchanged points at its copy; the inputs leave s->files (retired
** while snapshots may read them); the outputs join it, still under their
** .merging names. */
static void switch_over(merge_job *j, uint64_t *reclaimed) {
  bc_store *s = j->s;
  for (size_t i = 0; i < j->nlive; i++) {
    bc_entry *e = j->live[i].e;
    if (bc_e_seq(e) != j->old_seq[i]) continue;
    bc_e_set(e, j->old_seq[i], bc_e_meta(e), j->new_id[i], j->new_off[i], e->vsize, 0);
  }
  for (uint32_t i = 0; i < j->m.n_inputs; i++) bc_file_retire(s, j->m.inputs[i]);
  uint64_t new_bytes = 0;
  for (size_t i = 0; i < j->mg.nouts; i++) {
    out_file *o = &j->mg.outs[i];
    bc_file *f = bc_file_add(s, o->id);
    new_bytes += o->size + o->hint_size;
    if (!f) continue; /* cannot track it; the next open will.  Its keys
                         ** point to it. */
    f->path_merging = 1; /* until step 4 renames it */
    f->merged = 1;
    f->has_hint = 1;
    f->header_ok = 1;
    f->version = BC_FORMAT_VERSION;
    f->size = o->size;
    f->hint_size = o->hint_size;
    f->live_bytes = o->live;
    f->min_seq = o->min_seq;
    f->max_seq = o->max_seq;
  }
  *reclaimed = j->old_bytes > new_bytes ? j->old_bytes - new_bytes : 0;
  s->merges++;
}

/* Steps 4-6 (bc_merge_redo); left to the next bc_merge or open if they
** fail. */
static bc_status install(merge_job *j) {
  bc_store *s = j->s;
  bc_status st = bc_merge_redo(s, &j->m);
  if (st != BC_OK) s->merge_pending = 1;
  for (uint32_t i = 0; i < j->m.n_outputs && st == BC_OK; i++) {
    bc_file *of = bc_file_get(s, j->m.outputs[i]);
    if (of) of->path_merging = 0;
  }
  return st;
}

/* Steps 2-6 over every sealed file that is not damaged.  None when there
** is no input, or when the active file's records are not all newer than
** the inputs' (a dropped tombstone could then bring a key back: see the
** file's invariants). */
static bc_status merge_files(bc_store *s, uint64_t *reclaimed, uint32_t *bad_file) {
  merge_job j = {0};
  j.s = s;
  j.mg.s = s;
  j.bad_file = bad_file;
  bc_status st = pick_inputs(&j);
  const bc_file *act = bc_file_get(s, s->active_id);
  if (st == BC_OK && j.m.n_inputs > 0 && act->min_seq > j.inputs_max_seq) {
    if ((st = gather_live(&j)) == BC_OK && (st = copy_live(&j)) == BC_OK &&
        (st = copy_tombs(&j)) == BC_OK && (st = outputs_durable(&j)) == BC_OK &&
        (st = commit(&j)) == BC_OK) {
      switch_over(&j, reclaimed);
      st = install(&j);
    } else {
      out_discard(&j.mg); /* before the commit point: nothing changed */
    }
  }
  job_free(&j);
  return st;
}

bc_status bc_merge_run(bc_store *s, uint64_t *reclaimed) {
  bc_status st;
  *reclaimed = 0;
  if (s->merge_pending) {
    bc_manifest pm;
    int found = bc_manifest_read(s, &pm, &st);
    if (found < 0) return st;
    if (found) {
      st = bc_merge_redo(s, &pm);
      bc_manifest_free(&pm);
      if (st != BC_OK) return st;
    }
    s->merge_pending = 0;
  }

  /* Step 1. */
  bc_file *act = bc_file_get(s, s->active_id);
  if (act->size + s->wlen > BC_FILE_HEADER_SIZE && (st = bc_rotate(s)) != BC_OK)
    return st;
  /* A live record that fails its CRC (damage since the open) makes its
  ** file damaged: left out, and the merge starts over without it. */
  for (size_t tries = 0;; tries++) {
    uint32_t bad_file = 0;
    st = merge_files(s, reclaimed, &bad_file);
    bc_file *bf = bad_file ? bc_file_get(s, bad_file) : NULL;
    if (st != BC_CORRUPT || !bf || bf->damaged || tries > s->nfiles) return st;
    bf->damaged = BC_DAMAGE_RECORDS;
    bc_damage_spread(s);
    s->corrupt++;
    s->err[0] = 0;
  }
}
