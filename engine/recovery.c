/*
** recovery.c -- what bc_open does to rebuild the keydir (docs/FORMAT.md
** "Recovery"): finish or discard an interrupted merge, read every data file
** (from its hint when valid, else by scanning it), apply transaction markers,
** truncate the tail file's unsynced tail, and choose the active file.
**
** Invariants:
**  - Files are read in ascending id; a record replaces a key's entry only if
**    its seq is higher, so the result does not depend on which file a
**    version lives in (merge outputs have high ids but old seqs).
**  - A tombstone leaves a "deleted" entry carrying its seq until every file
**    is read, so an older put read later cannot resurrect the key.
**  - A record with txn != 0 is pending until its COMMIT; ROLLBACK_TO drops
**    the txn's pending records above S; whatever is pending at the end is
**    discarded.  Pending state spans files, so a transaction may span a
**    rotation.
**  - Only the tail file -- the newest non-merged data file, i.e. the one that
**    was active at the crash -- can have an unsynced tail: after a power
**    loss, whatever followed its last durable point may be garbage in any
**    pattern, intact records after torn ones included.  Its durable point D
**    is the highest durability claim of a valid COMMIT in it (read_tail);
**    the first damaged or cut-short record at or after D starts the
**    unsynced tail: nothing from there on is applied, and a writer
**    truncates the file there.  A damaged record below D, or one with a
**    valid record after it in any other file, is corruption: counted in
**    s->corrupt, its key reads as BC_CORRUPT, and the rest of the file is
**    read.  A header that does not decode stops the file's scan (nothing
**    after it can be framed); outside the tail that is counted too.  Files
**    are never modified except to cut an unsynced tail.
**  - Damage never makes a key read an older version when a file still says
**    what the damaged one held (docs/FORMAT.md "Damaged files"): a file with
**    a bad header is read from its hint or by a scan; a hint for a longer
**    file is applied (its missing records read BC_CORRUPT); a hint without
**    its data file is applied to a missing placeholder (bc_file.missing); a
**    committed transaction with records missing gives its keys lost
**    entries.  Such files are marked damaged (bc_file.damaged), and so are
**    the files sharing a transaction with one (bc_damage_spread): never
**    continued, never merged, never modified.
**  - A read-only open changes nothing on disk; it sees an interrupted but
**    committed merge as finished.
*/
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------ applying records */

typedef struct pending {
  uint64_t txn, seq, off;
  uint32_t file_id, klen, vlen;
  uint8_t type, meta;
  unsigned char *key; /* owned */
} pending;

/* The first data file of a transaction with pending records. */
typedef struct txspan {
  uint64_t txn;
  uint32_t lo;
} txspan;

typedef struct recov {
  bc_store *s;
  txspan *tx;     /* owned; one per transaction with pending records */
  size_t ntx, captx;
  bc_file *f;     /* file being read */
  pending *p;     /* owned, in read order */
  size_t np, cap;
  pending *held;  /* damaged records of f not yet known to be followed by a
                  ** valid one (in the tail file they may be a torn tail);
                  ** owned, txn/type as read (untrusted) */
  size_t nheld, capheld;
  int has_commit;      /* a COMMIT was read and waits for the next record,
                       ** which may void it (an abort: see txn.c) */
  uint64_t commit_txn, commit_count;
  uint32_t commit_file; /* the data file that COMMIT is in */
  uint64_t max_seq;
  int follow;          /* bc_refresh: every record read is newer than the
                       ** keydir, so a tombstone just removes its key */
  uint64_t settled_txn; /* bc_refresh: a COMMIT applied at the end of the
                       ** last read; its abort, if it comes next, means the
                       ** keydir must be rebuilt */
  int reload;          /* ... and it came */
  uint64_t deleted;    /* deleted markers made (an upper bound of those left) */
  /* Reading the tail file (read_tail). */
  uint32_t claim_file; /* the file `claim` is about (a follower's tail) */
  uint64_t claim;      /* highest durability claim of a COMMIT read from it */
  int probing;         /* past its first damage: only claims are noted */
  uint64_t damage_off; /* ... which is at this offset */
  uint64_t probe_claim; /* highest claim found while probing */
  uint64_t durable;    /* second pass: D */
  int cut;             /* second pass: stopped at damage at or after D ... */
  uint64_t cut_off;    /* ... at this offset */
} recov;

struct bc_follow {
  recov rc;
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

static int push_pending(pending **a, size_t *n, size_t *cap, const bc_recinfo *ri,
                        uint32_t file_id, uint8_t type) {
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 16;
    pending *p = realloc(*a, c * sizeof *p);
    if (!p) return -1;
    *a = p;
    *cap = c;
  }
  pending *p = &(*a)[*n];
  p->key = malloc(ri->r.klen ? ri->r.klen : 1);
  if (!p->key) return -1;
  if (ri->r.klen) memcpy(p->key, ri->key, ri->r.klen);
  p->txn = ri->r.txn;
  p->seq = ri->r.seq;
  p->off = ri->off;
  p->file_id = file_id;
  p->klen = ri->r.klen;
  p->vlen = ri->r.vlen;
  p->type = type;
  p->meta = ri->r.meta;
  (*n)++;
  return 0;
}

/* Whether e is known to be unreadable: lost (BC_E_LOST), or in a data file
** that is missing or shorter than the record (docs/FORMAT.md "Damaged
** files"). */
static int unreadable(bc_store *s, const bc_entry *e) {
  if (bc_e_lost(e)) return 1;
  if (bc_e_deleted(e)) return 0;
  const bc_file *f = bc_file_get(s, e->file_id);
  return !f || f->missing || bc_e_off(e) + bc_entry_rec_size(e) > f->size;
}

/* h: the key's hash in s->kd if known, else NULL.  lost: the version is a
** record of a transaction that cannot be applied whole -- the entry takes
** the lost bit (a PUT's shape, whatever type the record has). */
static bc_status apply(recov *rc, uint32_t file_id, uint64_t off, uint8_t type,
                       uint8_t meta, uint64_t seq, const void *key,
                       uint32_t klen, uint32_t vlen, const uint64_t *h, int lost) {
  bc_store *s = rc->s;
  int created;
  bc_entry *e = h ? bc_kd_upsert_h(&s->kd, key, klen, *h, &created)
                  : bc_kd_upsert(&s->kd, key, klen, &created);
  if (!e) return bc_seterr(s, BC_NOMEM, "out of memory rebuilding the keydir");
  if (lost) type = BC_REC_PUT;
  if (!created) {
    /* An older version -- or the same one (one seq is one record) found
    ** where it cannot be read, when it is already known where it can. */
    if (seq < bc_e_seq(e)) return BC_OK;
    if (seq == bc_e_seq(e)) {
      const bc_file *nf = bc_file_get(s, file_id);
      int readable = !lost && nf && !nf->missing &&
                     off + bc_rec_size(klen, vlen) <= nf->size;
      if (!readable || !unreadable(s, e)) return BC_OK;
    }
    bc_acct(s, e, 0);
  }
  /* A change readers can see (snapshot.c); at open nobody is reading. */
  bc_snap_change(s, key, klen, created || bc_e_deleted(e) ? NULL : e);
  if (type == BC_REC_PUT) {
    bc_e_set(e, seq, meta, file_id, off, vlen, 0);
    if (lost) e->loc |= BC_E_LOST;
    bc_acct(s, e, 1);
  } else if (rc->follow) {
    bc_kd_remove(&s->kd, e);
  } else {
    bc_e_set(e, seq, 0, 0, 0, 0, 1);
    rc->deleted++;
  }
  return BC_OK;
}

static bc_status on_valid_record(recov *rc, const bc_recinfo *ri);
static void tx_end(recov *rc, uint64_t txn, uint32_t last);

/* Damaged records followed by a valid one (outside the tail file's unsynced
** tail, see read_tail) are corruption:
** each is counted and, if it is a put or tombstone, takes its key's place
** as a record that reads as BC_CORRUPT (so neither an older version nor a
** deleted key comes back in its stead); the transaction it claims to belong
** to, if any, decides as for any record.  Markers are just counted. */
static bc_status release_held(recov *rc) {
  bc_status st = BC_OK;
  for (size_t i = 0; i < rc->nheld; i++) {
    pending *h = &rc->held[i];
    rc->s->corrupt++;
    bc_file_damaged(bc_file_get(rc->s, h->file_id), BC_DAMAGE_RECORDS);
    /* Everything but a keyless span (type 0, no sizes) or something shaped
    ** like a transaction marker stands for a key (its type byte may be the
    ** damaged one). */
    int span = h->type == 0 && h->klen == 0 && h->vlen == 0;
    int marker = h->klen == 0 &&
                 ((h->vlen == 8 && h->type == BC_REC_ROLLBACK_TO) ||
                  ((h->vlen == BC_COMMIT_V1_SIZE || h->vlen == BC_COMMIT_SIZE) &&
                   h->type == BC_REC_COMMIT));
    if (st == BC_OK && !span && !marker) {
      /* Its txn field is as read: trust it only if that transaction has
      ** pending records; else it is standalone (a damaged record must read
      ** as BC_CORRUPT rather than vanish with an "uncommitted" txn). */
      uint64_t txn = 0;
      for (size_t j = 0; j < rc->np && h->txn; j++)
        if (rc->p[j].txn == h->txn) txn = h->txn;
      /* Its seq is as read too: a damaged one far above every valid seq
      ** would push next_seq toward exhaustion and outrank every later
      ** write of the key.  It takes seq 0 instead: it then stands for the
      ** key only when no valid version exists, whatever the reading order
      ** (an open and a read-only follower must agree). */
      uint64_t seq = h->seq;
      if (seq > rc->max_seq + (UINT64_C(1) << 32)) seq = 0;
      bc_recinfo ri;
      memset(&ri, 0, sizeof ri);
      ri.r = (bc_rec){BC_REC_PUT, h->meta, seq, txn, h->klen, h->vlen};
      ri.off = h->off;
      ri.key = h->key;
      st = on_valid_record(rc, &ri);
    }
    free(h->key);
  }
  rc->nheld = 0;
  return st;
}

static void drop_held(recov *rc) {
  for (size_t i = 0; i < rc->nheld; i++) free(rc->held[i].key);
  rc->nheld = 0;
}

static bc_status on_record(void *arg, const bc_recinfo *ri) {
  recov *rc = arg;
  if (ri->damaged) {
    if (push_pending(&rc->held, &rc->nheld, &rc->capheld, ri, rc->f->id,
                     ri->r.type) != 0)
      return bc_seterr(rc->s, BC_NOMEM, "out of memory");
    return BC_OK;
  }
  bc_status st = release_held(rc);
  return st == BC_OK ? on_valid_record(rc, ri) : st;
}

/* Apply the pending records of txn -- or, if some are missing, report
** them. */
static bc_status apply_commit(recov *rc, uint64_t txn, uint64_t count,
                              uint32_t commit_file) {
  /* A COMMIT carries the count of its transaction's records: fewer pending
  ** means some were lost (a damaged file), and applying the rest would
  ** break atomicity.  Yet the transaction did commit, so each key it is
  ** known to have written has that write as its newest version: the key
  ** takes a lost entry at that record (BC_CORRUPT on read), not its older
  ** version back.  Every file holding its records is damaged: kept whole,
  ** so the next open finds the same. */
  uint64_t n = 0;
  for (size_t i = 0; i < rc->np; i++) n += rc->p[i].txn == txn;
  int whole = n == count;
  if (!whole) {
    rc->s->corrupt++;
    bc_file_damaged(bc_file_get(rc->s, commit_file), BC_DAMAGE_TXN);
  }
  bc_status st = BC_OK;
  size_t w = 0;
  for (size_t i = 0; i < rc->np; i++) {
    pending *p = &rc->p[i];
    if (p->txn != txn) {
      rc->p[w++] = *p;
      continue;
    }
    if (!whole) bc_file_damaged(bc_file_get(rc->s, p->file_id), BC_DAMAGE_TXN);
    if (st == BC_OK)
      st = apply(rc, p->file_id, p->off, p->type, p->meta, p->seq, p->key, p->klen,
                 p->vlen, NULL, !whole);
    free(p->key);
  }
  rc->np = w;
  tx_end(rc, txn, commit_file);
  return st;
}

/* The transaction txn has a record in file `id`: remember its first file. */
static int tx_note(recov *rc, uint64_t txn, uint32_t id) {
  for (size_t i = 0; i < rc->ntx; i++)
    if (rc->tx[i].txn == txn) return 0;
  if (rc->ntx == rc->captx) {
    size_t c = rc->captx ? rc->captx * 2 : 4;
    txspan *p = realloc(rc->tx, c * sizeof *p);
    if (!p) return -1;
    rc->tx = p;
    rc->captx = c;
  }
  rc->tx[rc->ntx++] = (txspan){txn, id};
  return 0;
}

/* txn is over (committed in file `last`, or 0: dropped): if it spanned
** files, each non-merged file from its first to `last` records the span. */
static void tx_end(recov *rc, uint64_t txn, uint32_t last) {
  for (size_t i = 0; i < rc->ntx; i++) {
    if (rc->tx[i].txn != txn) continue;
    uint32_t lo = rc->tx[i].lo;
    rc->tx[i] = rc->tx[--rc->ntx];
    if (!last || lo >= last) return;
    bc_store *s = rc->s;
    for (size_t j = bc_file_lower_bound(s, lo); j < s->nfiles && s->files[j].id <= last; j++) {
      bc_file *f = &s->files[j];
      if (f->merged) continue;
      if (!f->tx_lo || lo < f->tx_lo) f->tx_lo = lo;
      if (last > f->tx_hi) f->tx_hi = last;
    }
    return;
  }
}

void bc_damage_spread(bc_store *s) {
  int any = 0;
  for (size_t i = 0; i < s->nfiles && !any; i++) any = s->files[i].damaged != 0;
  for (int changed = any; changed;) {
    changed = 0;
    for (size_t i = 0; i < s->nfiles; i++) {
      bc_file *f = &s->files[i];
      if (f->damaged || !f->tx_lo) continue;
      for (size_t j = bc_file_lower_bound(s, f->tx_lo);
           j < s->nfiles && s->files[j].id <= f->tx_hi; j++)
        if (s->files[j].damaged) {
          f->damaged = BC_DAMAGE_LINKED;
          changed = 1;
          break;
        }
    }
  }
}

/* Drop txn's pending records with seq > S. */
static void drop_pending(recov *rc, uint64_t txn, uint64_t S) {
  size_t w = 0;
  for (size_t i = 0; i < rc->np; i++) {
    pending *p = &rc->p[i];
    if (p->txn == txn && p->seq > S)
      free(p->key);
    else
      rc->p[w++] = *p;
  }
  rc->np = w;
}

/* The COMMIT read last is not followed by its abort: apply it. */
static bc_status settle_commit(recov *rc) {
  if (!rc->has_commit) return BC_OK;
  rc->has_commit = 0;
  return apply_commit(rc, rc->commit_txn, rc->commit_count, rc->commit_file);
}

static bc_status on_valid_record(recov *rc, const bc_recinfo *ri) {
  const bc_rec *r = &ri->r;
  if (r->seq > rc->max_seq) rc->max_seq = r->seq;
  /* A txn id is the seq its first record got; keeping next_seq above every
  ** id seen means a new transaction never shares an id with old pending
  ** records (which a damaged or foreign file could otherwise bring). */
  if (r->txn > rc->max_seq && r->txn <= BC_MAX_SEQ) rc->max_seq = r->txn;
  bc_file_note_seq(rc->f, r->seq);
  if (rc->settled_txn) {
    uint64_t t = rc->settled_txn;
    rc->settled_txn = 0;
    if (r->type == BC_REC_ROLLBACK_TO && r->txn == t && ri->arg == 0) {
      rc->reload = 1; /* a transaction we applied was aborted after all */
      return BC_OK;
    }
  }
  if (rc->has_commit) {
    if (r->type == BC_REC_ROLLBACK_TO && r->txn == rc->commit_txn && ri->arg == 0) {
      /* COMMIT then its abort: the host's commit failed after ours. */
      rc->has_commit = 0;
      drop_pending(rc, r->txn, 0);
      tx_end(rc, r->txn, 0);
      return BC_OK;
    }
    bc_status st = settle_commit(rc);
    if (st != BC_OK) return st;
  }
  switch (r->type) {
    case BC_REC_PUT:
    case BC_REC_TOMBSTONE:
      if (r->txn == 0)
        return apply(rc, rc->f->id, ri->off, r->type, r->meta, r->seq, ri->key,
                     r->klen, r->vlen, ri->hashed ? &ri->hash : NULL, 0);
      if (push_pending(&rc->p, &rc->np, &rc->cap, ri, rc->f->id, r->type) != 0 ||
          tx_note(rc, r->txn, rc->f->id) != 0)
        return bc_seterr(rc->s, BC_NOMEM, "out of memory");
      return BC_OK;
    case BC_REC_COMMIT:
      rc->has_commit = 1;
      rc->commit_txn = r->txn;
      rc->commit_count = ri->arg;
      rc->commit_file = rc->f->id;
      return BC_OK;
    case BC_REC_ROLLBACK_TO:
      drop_pending(rc, r->txn, ri->arg);
      if (ri->arg == 0) tx_end(rc, r->txn, 0); /* rolled back whole */
      return BC_OK;
    default:
      return BC_OK;
  }
}

/* ------------------------------------------------------- the tail file */

/* The durability claim of the valid COMMIT ri read from f by a scan: how
** much of f was durable when it was appended.  No more than its own offset
** (a writer cannot claim what it has not written); 0 for anything else. */
static uint64_t claim_of(const bc_file *f, const bc_recinfo *ri) {
  if (ri->damaged || ri->r.type != BC_REC_COMMIT || ri->r.vlen != BC_COMMIT_SIZE ||
      !ri->value || f->version < 2)
    return 0;
  uint64_t c = bc_get_u64(ri->value + 8);
  return c < ri->off ? c : ri->off;
}

/* First pass over the tail: records as on_record until the first damaged
** one; from there on only the claims of valid COMMITs are noted. */
static bc_status on_tail_first(void *arg, const bc_recinfo *ri) {
  recov *rc = arg;
  uint64_t c = claim_of(rc->f, ri);
  if (rc->probing) {
    if (c > rc->probe_claim) rc->probe_claim = c;
    return BC_OK;
  }
  if (ri->damaged) {
    rc->probing = 1;
    rc->damage_off = ri->off;
    return BC_OK;
  }
  if (c > rc->claim) rc->claim = c;
  return on_record(arg, ri);
}

/* Second pass, from the first damage, which lies below D: damage below D is
** corruption (on_record holds it until a valid record follows), the first
** damage at or after D starts the unsynced tail: the scan stops there. */
static bc_status on_tail_second(void *arg, const bc_recinfo *ri) {
  recov *rc = arg;
  if (ri->damaged && ri->off >= rc->durable) {
    rc->cut = 1;
    rc->cut_off = ri->off;
    return BC_DONE;
  }
  uint64_t c = claim_of(rc->f, ri);
  if (c > rc->claim) rc->claim = c;
  return on_record(arg, ri);
}

/* Read the records of the tail file f in [from, size) (docs/FORMAT.md
** Recovery 3).  *end receives where its unsynced tail starts (size if it
** has none): the first damaged or cut-short record at or after D, the
** highest durability claim of a valid COMMIT in f.  D is known only at the
** end of the file, so the first pass applies records up to the first
** damage and reads the rest for claims only; when that damage lies below D
** (a valid COMMIT after it claims it durable) a second pass reads on from
** it.  Without damage, one pass.  rc->claim keeps the highest claim read,
** for a follower's next read of the same file. */
static bc_status read_tail(bc_store *s, recov *rc, bc_file *f, uint64_t from,
                           uint64_t size, uint64_t *end) {
  if (rc->claim_file != f->id) {
    rc->claim_file = f->id;
    rc->claim = 0;
  }
  rc->f = f;
  rc->probing = 0;
  rc->probe_claim = 0;
  uint64_t e;
  int bad, fd;
  bc_status st = bc_file_fd(s, f, &fd);
  if (st != BC_OK) return st;
  st = bc_datafile_walk(s, fd, f->id, from, size, on_tail_first, rc, &e, &bad);
  int damaged = rc->probing;
  rc->probing = 0;
  if (st != BC_OK) return st;
  /* Undamaged up to a record cut short or a header that does not decode
  ** with nothing valid after it: every claim is below it. */
  if (!damaged) {
    *end = bad ? e : size;
    return BC_OK;
  }
  uint64_t D = rc->claim > rc->probe_claim ? rc->claim : rc->probe_claim;
  if (rc->damage_off >= D) {
    *end = rc->damage_off;
    return BC_OK;
  }
  rc->durable = D;
  rc->cut = 0;
  st = bc_file_fd(s, f, &fd);
  if (st != BC_OK) return st;
  st = bc_datafile_walk(s, fd, f->id, rc->damage_off, size, on_tail_second, rc, &e,
                        &bad);
  if (st == BC_DONE && rc->cut) st = BC_OK;
  /* What is held lies below D: corruption. */
  if (st == BC_OK) st = release_held(rc);
  if (st != BC_OK) return st;
  *end = rc->cut ? rc->cut_off : bad ? e : size;
  return BC_OK;
}

/* ------------------------------------------------------------ the reading */

/* Open data file id (named with suffix) read-only into the descriptor
** cache, which closes it again when full, so that a store of any number of
** files opens within its limit; read its size and header into f. */
static bc_status open_file(bc_store *s, uint32_t id, const char *suffix,
                           bc_file *f) {
  f->path_merging = strcmp(suffix, BC_SUFFIX_DATA_MERGING) == 0;
  int fd;
  bc_status st = bc_file_fd(s, f, &fd);
  if (st != BC_OK) return st;
  /* The header first, then the size: a writer may be creating the file
  ** (header, then records) meanwhile, and a size read before a header it
  ** finds would be shorter than the header -- a reader would then take the
  ** header's bytes for a record at offset 0 when the file grows. */
  unsigned char hdr[BC_FILE_HEADER_SIZE];
  ssize_t n = bc_read_all(&s->io, fd, hdr, sizeof hdr, 0);
  if (n < 0)
    return bc_seterr_errno(s, BC_IOERR, errno, "data file %010u%s: read failed", id,
                           suffix);
  struct stat sb;
  if (fstat(fd, &sb) != 0)
    return bc_seterr_errno(s, BC_IOERR, errno, "data file %010u%s: stat failed", id,
                           suffix);
  f->size = (uint64_t)sb.st_size;
  uint32_t version, flags, fid;
  f->header_ok = n == (ssize_t)sizeof hdr &&
                 bc_file_header_decode(hdr, &version, &flags, &fid) == 0 && fid == id;
  if (f->header_ok) {
    if (version > BC_FORMAT_VERSION)
      return bc_seterr(s, BC_VERSION,
                       "data file %010u" BC_SUFFIX_DATA " has format %u, newer than this "
                       "library's %d", id, version, BC_FORMAT_VERSION);
    if (version < 1) f->header_ok = 0;
    f->version = version;
    f->merged = (flags & BC_FILE_FLAG_MERGED) != 0;
  }
  return BC_OK;
}

/* Writer: delete the leftovers of an unfinished merge or hint write. */
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
    return bc_seterr_errno(s, BC_IOERR, errno, "data file %010u" BC_SUFFIX_DATA ": stat failed",
                           f->id);
  if (sb.st_nlink <= 1) return BC_OK;
  char path[PATH_MAX], tmp[PATH_MAX];
  bc_path_id(s, path, f->id, BC_SUFFIX_DATA);
  bc_path_id(s, tmp, f->id, BC_SUFFIX_DATA_TMP);
  int fd = s->io.open(s->io.ctx, tmp, O_RDWR | O_CREAT | O_EXCL, 0644);
  if (fd < 0)
    return bc_seterr_errno(s, BC_IOERR, errno,
                           "data file %010u" BC_SUFFIX_DATA " has %ju hard links (a linked copy "
                           "of the store?): creating its private copy failed",
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
                           "data file %010u" BC_SUFFIX_DATA ": copying it off its hard links "
                           "failed", f->id);
    off += want;
  }
  free(buf);
  if (st == BC_OK && (bc_fsync(s, fd) != 0 || s->io.rename(s->io.ctx, tmp, path) != 0 ||
                      bc_fsync_store_dir(s) != 0))
    st = bc_seterr_errno(s, BC_IOERR, errno,
                         "data file %010u" BC_SUFFIX_DATA ": installing its private copy failed",
                         f->id);
  if (st != BC_OK) {
    s->io.close(s->io.ctx, fd);
    (void)s->io.unlink(s->io.ctx, tmp);
    return st;
  }
  s->io.close(s->io.ctx, f->fd);
  f->fd = fd;
  return BC_OK;
}

bc_status bc_recover(bc_store *s) {
  bc_dirlist dl;
  bc_manifest m = {0};
  recov rc = {0};
  uint32_t *ids = NULL; /* ids of the data files to load; owned */
  size_t nids = 0;
  bc_hintfile *hf = NULL; /* hf[i]: s->files[i]'s hint, validated ahead; owned */
  size_t nhf = 0;
  rc.s = s;
  int writer = !s->read_only;
  bc_status st = bc_dirlist_read(s, s->dir, &dl);
  if (st != BC_OK) return st;

  /* Step 1: an interrupted merge. */
  if (dl.has_merge) {
    int found = bc_manifest_read(s, &m, &st);
    if (found < 0) goto out;
    /* As bc_merge_redo refuses a writer: an output gone means its records
    ** are gone, while the inputs -- which a read-only open drops -- hold
    ** them still. */
    for (uint32_t i = 0; found && !writer && i < m.n_outputs; i++)
      if (!bc_ids_has(dl.data, dl.ndata, m.outputs[i]) &&
          !bc_ids_has(dl.data_merging, dl.ndata_merging, m.outputs[i])) {
        st = bc_seterr(s, BC_CORRUPT,
                       "merge output %010u" BC_SUFFIX_DATA " is missing; the merge's input "
                       "files are kept", m.outputs[i]);
        goto out;
      }
    if (found && writer) {
      st = bc_merge_redo(s, &m);
      if (st != BC_OK) goto out;
      bc_manifest_free(&m);
      bc_dirlist_free(&dl);
      st = bc_dirlist_read(s, s->dir, &dl);
      if (st != BC_OK) goto out;
    }
  }
  st = BC_OK;

  /* The next file id is above every id in the directory. */
  uint32_t max_id = 0;
  {
    bc_idset sets[BC_DIRLIST_NSETS];
    bc_dirlist_sets(&dl, sets);
    for (size_t k = 0; k < BC_DIRLIST_NSETS; k++)
      for (size_t i = 0; i < sets[k].n; i++)
        if (sets[k].ids[i] > max_id) max_id = sets[k].ids[i];
    for (uint32_t i = 0; i < m.n_outputs; i++)
      if (m.outputs[i] > max_id) max_id = m.outputs[i];
  }
  /* 0: exhausted -- the store still opens and serves; only creating a file
  ** (rotation, merge) fails then. */
  s->next_file_id = max_id == UINT32_MAX ? 0 : max_id + 1;

  if (writer) {
    st = remove_leftovers(s, &dl);
    if (st != BC_OK) goto out;
  } else {
    s->recovery_pending = dl.has_merge || dl.has_merge_tmp || dl.ndata_merging ||
                          dl.nhint_merging || dl.nhint_tmp || dl.ndata_tmp;
  }

  /* The set of data files.  Read-only with an unfinished (committed) merge:
  ** drop its inputs, add its outputs from wherever they are. */
  for (size_t i = 0; i < dl.ndata; i++)
    if (!bc_ids_has(m.inputs, m.n_inputs, dl.data[i]) &&
        bc_ids_push(&ids, &nids, dl.data[i]) != 0)
      goto oom;
  for (uint32_t i = 0; i < m.n_outputs; i++)
    if (!bc_ids_has(ids, nids, m.outputs[i]) &&
        bc_ids_has(dl.data_merging, dl.ndata_merging, m.outputs[i]) &&
        bc_ids_push(&ids, &nids, m.outputs[i]) != 0)
      goto oom;
  bc_ids_sort(ids, nids);

  for (size_t i = 0; i < nids; i++) {
    bc_file *f = bc_file_add(s, ids[i]);
    if (!f) goto oom;
    int merging = !bc_ids_has(dl.data, dl.ndata, ids[i]);
    st = open_file(s, ids[i], merging ? BC_SUFFIX_DATA_MERGING : BC_SUFFIX_DATA, f);
    if (st != BC_OK) goto out;
  }
  /* A hint file whose data file is gone (and no MERGE says why: a merge's
  ** inputs are skipped) is evidence of what that file held: it is read in
  ** its turn, and its keys read BC_CORRUPT naming the missing file. */
  for (size_t i = 0; i < dl.nhint; i++) {
    uint32_t id = dl.hint[i];
    if (bc_file_get(s, id) || bc_ids_has(m.inputs, m.n_inputs, id)) continue;
    bc_file *f = bc_file_add(s, id);
    if (!f) goto oom;
    f->missing = 1; /* damaged once its hint proves valid; else dropped */
  }

  /* The tail: the newest file that is not a merge output -- or the newest
  ** file of all if its header is missing or torn, it is no longer than a
  ** header and it has no hint file, which only a crash while creating the
  ** next active file leaves.  A bad header anywhere else is damage. */
  uint32_t tail = 0;
  int tail_synced = 0; /* a writer fsync'd the tail after cutting it */
  for (size_t i = 0; i < s->nfiles; i++)
    if (s->files[i].header_ok && !s->files[i].merged) tail = s->files[i].id;
  if (s->nfiles) {
    bc_file *last = &s->files[s->nfiles - 1];
    if (!last->header_ok && !last->missing && last->size <= BC_FILE_HEADER_SIZE &&
        !bc_ids_has(dl.hint, dl.nhint, last->id) &&
        !bc_ids_has(dl.hint_merging, dl.nhint_merging, last->id))
      tail = last->id;
  }
  /* A file with a damaged header newer than the tail may have been the
  ** active file: the tail was then sealed, and damage at its end is
  ** corruption, not a torn tail to cut. */
  if (!writer) s->follow_tail = tail;
  int tail_cut = 1;
  for (size_t i = 0; i < s->nfiles; i++)
    if (s->files[i].id > tail && !s->files[i].header_ok && !s->files[i].missing)
      tail_cut = 0;

  /* Map the hint files ahead and read their counts, so that the keydir is
  ** sized once for the keys of every merged file before the first is
  ** inserted, rather than rehashed as each file's keys arrive.  The outputs
  ** of a merge hold each live key once, so their counts add up; the other
  ** files share keys, and bc_hint_apply sizes for each in turn.  A count is
  ** trusted only for this estimate until its file is checked, in turn,
  ** just before it is applied: only the pages of one hint at a time are
  ** read.  Without a mapping each hint is read when its turn comes. */
  hf = calloc(s->nfiles ? s->nfiles : 1, sizeof *hf);
  if (!hf) goto oom;
  nhf = s->nfiles;
  if (s->use_mmap) {
    uint64_t merged_keys = 0;
    for (size_t i = 0; i < s->nfiles; i++) {
      bc_file *f = &s->files[i];
      int merging = !bc_ids_has(dl.data, dl.ndata, f->id);
      if (!f->header_ok || !(bc_ids_has(dl.hint, dl.nhint, f->id) ||
                             (merging && bc_ids_has(dl.hint_merging, dl.nhint_merging, f->id))))
        continue;
      char path[PATH_MAX];
      bc_path_id(s, path, f->id, merging ? BC_SUFFIX_HINT_MERGING : BC_SUFFIX_HINT);
      if (bc_hint_open(s, f, path, &hf[i]) && f->merged) merged_keys += hf[i].count;
    }
    if (merged_keys > s->kd.count && merged_keys <= SIZE_MAX)
      (void)bc_kd_presize(&s->kd, (size_t)(merged_keys - s->kd.count));
  }

  for (size_t i = 0; i < s->nfiles && st == BC_OK; i++) {
    bc_file *f = &s->files[i];
    rc.f = f;
    if (!f->header_ok && f->id == tail) {
      if (!writer) s->recovery_pending = 1;
      if (writer) {
        /* A crash while creating it: give it a fresh header. */
        unsigned char hdr[BC_FILE_HEADER_SIZE];
        bc_file_header_encode(hdr, f->id, 0);
        bc_file_unmap(f);
        bc_file_close(s, f);
        char path[PATH_MAX];
        bc_path_id(s, path, f->id, BC_SUFFIX_DATA);
        f->fd = s->io.open(s->io.ctx, path, O_RDWR, 0);
        if (f->fd >= 0 && (st = unshare_linked(s, f)) != BC_OK) break;
        if (f->fd < 0 || s->io.ftruncate(s->io.ctx, f->fd, 0) != 0 ||
            bc_write_all(&s->io, f->fd, hdr, sizeof hdr, 0) != 0 ||
            bc_fsync(s, f->fd) != 0) {
          st = bc_seterr_errno(s, BC_IOERR, errno,
                               "data file %010u" BC_SUFFIX_DATA ": rewriting its header failed",
                               f->id);
          break;
        }
        s->truncated_bytes += f->size;
        f->size = BC_FILE_HEADER_SIZE;
        f->header_ok = 1;
        f->version = BC_FORMAT_VERSION;
        tail_synced = 1;
      }
      continue;
    }
    /* A damaged header (bad magic, CRC or file_id) does not make the
    ** records after it any less valid: each proves itself by its CRC, and
    ** the hint file, if valid, still says what the file held.  Such a file
    ** is read like any other, and marked damaged. */
    if (!f->header_ok && !f->missing) {
      s->corrupt++;
      bc_file_damaged(f, BC_DAMAGE_HEADER);
    }
    int merging = !f->missing && !bc_ids_has(dl.data, dl.ndata, f->id);
    int is_tail = f->id == tail;
    uint64_t scan_from = BC_FILE_HEADER_SIZE;
    if (bc_ids_has(dl.hint, dl.nhint, f->id) ||
        (merging && bc_ids_has(dl.hint_merging, dl.nhint_merging, f->id))) {
      char path[PATH_MAX];
      bc_path_id(s, path, f->id, merging ? BC_SUFFIX_HINT_MERGING : BC_SUFFIX_HINT);
      if (!hf[i].data) (void)bc_hint_open(s, f, path, &hf[i]);
      if (hf[i].data && !bc_hint_check(&hf[i])) bc_hint_close(&hf[i]);
      /* A hint valid in itself but for a longer file than this one is
      ** applied all the same: the keys of the records that are gone point
      ** past the file's end and read BC_CORRUPT.  One for a shorter file
      ** covers its part, and the rest is scanned -- but in the tail it is
      ** what a rotation cut short leaves (the file went on as the active
      ** one), and is ignored as before. */
      if (hf[i].data && hf[i].data_size < f->size && is_tail && f->header_ok)
        bc_hint_close(&hf[i]);
      if (hf[i].data) {
        uint64_t dsize = hf[i].data_size;
        st = bc_hint_apply(s, f, &hf[i], on_record, &rc);
        bc_hint_close(&hf[i]);
        if (st != BC_OK) break;
        /* A hint counts as the file's only when it describes all of it. */
        f->has_hint = dsize == f->size;
        if (dsize > f->size) {
          s->corrupt++;
          bc_file_damaged(f, f->missing ? BC_DAMAGE_MISSING : BC_DAMAGE_SHORT);
        }
        if (dsize >= f->size) continue;
        scan_from = dsize;
        is_tail = 0;
      } else if (writer && is_tail && !merging) {
        /* An invalid hint of the file that stays active: remove it. */
        (void)s->io.unlink(s->io.ctx, path);
      }
    }
    if (f->missing || f->size <= scan_from) continue;
    /* Only a tail with a valid header is cut: any other end is final. */
    is_tail = is_tail && f->header_ok && tail_cut;
    uint64_t end;
    int bad, fd;
    if (is_tail) {
      /* Its unsynced tail, if any, is cut where it starts. */
      st = read_tail(s, &rc, f, scan_from, f->size, &end);
      bad = end < f->size;
    } else {
      /* Damaged records with nothing valid after them: corruption too. */
      st = bc_file_fd(s, f, &fd);
      if (st == BC_OK)
        st = bc_datafile_walk(s, fd, f->id, scan_from, f->size, on_record, &rc, &end,
                              &bad);
      if (st == BC_OK) st = release_held(&rc);
    }
    if (st != BC_OK || !bad) continue;
    if (is_tail) {
      if (!writer) s->recovery_pending = 1;
      if (writer) {
        bc_file_unmap(f);
        bc_file_close(s, f);
        char path[PATH_MAX];
        bc_path_id(s, path, f->id, BC_SUFFIX_DATA);
        f->fd = s->io.open(s->io.ctx, path, O_RDWR, 0);
        if (f->fd >= 0 && (st = unshare_linked(s, f)) != BC_OK) break;
        if (f->fd < 0 || s->io.ftruncate(s->io.ctx, f->fd, (off_t)end) != 0 ||
            bc_fsync(s, f->fd) != 0) {
          st = bc_seterr_errno(s, BC_IOERR, errno,
                               "data file %010u" BC_SUFFIX_DATA ": truncating its torn tail "
                               "failed", f->id);
          break;
        }
        s->truncated_bytes += f->size - end;
        tail_synced = 1;
      }
      f->size = end;
    } else {
      s->corrupt++;
      bc_file_damaged(f, BC_DAMAGE_RECORDS);
    }
  }
  if (st != BC_OK) goto out;
  /* A hint left of a missing data file that proved invalid is no evidence
  ** of anything: no key points at it. */
  for (size_t i = s->nfiles; i-- > 0;)
    if (s->files[i].missing && !s->files[i].damaged) bc_file_remove(s, s->files[i].id);

  /* The last COMMIT of the store has no abort after it (yet: a read-only
  ** follower remembers it, see bc_refresh). */
  {
    uint64_t last = rc.has_commit ? rc.commit_txn : 0;
    st = settle_commit(&rc);
    if (st != BC_OK) goto out;
    rc.settled_txn = last;
  }
  /* Uncommitted transactions vanish with the deleted markers (a walk of
  ** every entry, skipped when no tombstone made one). */
  if (rc.deleted && bc_kd_sweep_deleted(&s->kd) != 0) goto oom;
  s->next_seq = rc.max_seq + 1;
  bc_damage_spread(s);

  if (writer) {
    /* The tail goes on as the active file even when merge outputs have
    ** higher ids: every record appended to it is newer than theirs. */
    bc_file *last = tail ? bc_file_get(s, tail) : NULL;
    /* Never a format-2 record in an older file: it would be misread. */
    if (last && !last->has_hint && last->header_ok && !last->damaged &&
        last->version == BC_FORMAT_VERSION) {
      /* Continue appending to it. */
      bc_file_unmap(last);
      bc_file_close(s, last);
      char path[PATH_MAX];
      bc_path_id(s, path, last->id, BC_SUFFIX_DATA);
      last->fd = s->io.open(s->io.ctx, path, O_RDWR, 0);
      if (last->fd < 0) {
        st = bc_seterr_errno(s, BC_IOERR, errno, "data file %010u" BC_SUFFIX_DATA ": open failed",
                             last->id);
        goto out;
      }
      st = unshare_linked(s, last);
      if (st != BC_OK) goto out;
      /* What recovery read may be only in the page cache still (a kill -9
      ** leaves it there): make it durable before a COMMIT claims it. */
      if (s->sync != BC_SYNC_OFF && !tail_synced) {
        if (bc_fsync(s, last->fd) != 0) {
          st = bc_seterr_errno(s, BC_IOERR, errno,
                               "data file %010u" BC_SUFFIX_DATA ": fsync failed", last->id);
          goto out;
        }
        tail_synced = 1;
      }
      s->active_id = last->id;
      s->commit_size = last->size;
      s->active_synced = tail_synced ? last->size : 0;
    } else {
      /* Sealed: the O_RDWR descriptor that cut or rewrote it goes, as a
      ** rotation closes the file it seals (reads reopen it in the cache). */
      if (last) bc_file_close(s, last);
      st = bc_active_create(s);
      if (st != BC_OK) goto out;
    }
  }
  goto out;

oom:
  st = bc_seterr(s, BC_NOMEM, "out of memory");
out:
  if (st == BC_OK && !writer) {
    s->follow_durable = rc.claim_file == s->follow_tail ? rc.claim : 0;
    s->follow_checked = 0;
    /* A read-only store goes on from here at each bc_refresh: keep the
    ** pending transactions. */
    s->follow = malloc(sizeof *s->follow);
    if (s->follow) {
      s->follow->rc = rc;
      s->follow->rc.follow = 1;
      memset(&rc, 0, sizeof rc);
    } else {
      st = bc_seterr(s, BC_NOMEM, "out of memory");
    }
  }
  free(ids);
  for (size_t i = 0; i < nhf; i++) bc_hint_close(&hf[i]);
  free(hf);
  for (size_t i = 0; i < rc.np; i++) free(rc.p[i].key);
  free(rc.p);
  free(rc.tx);
  drop_held(&rc);
  free(rc.held);
  bc_manifest_free(&m);
  bc_dirlist_free(&dl);
  return st;
}

/* ---------------------------------------------------------- following */

void bc_follow_free(bc_store *s) {
  bc_follow *fw = s->follow;
  if (!fw) return;
  for (size_t i = 0; i < fw->rc.np; i++) free(fw->rc.p[i].key);
  free(fw->rc.p);
  free(fw->rc.tx);
  drop_held(&fw->rc);
  free(fw->rc.held);
  free(fw);
  s->follow = NULL;
}

/* Read f's records from f->size to `size`: what the writer appended since.
** In the tail file (the writer's active one) what read_tail takes for an
** unsynced tail may be a write in progress: the read stops before it and
** the next refresh retries.  In any other file the end is final, and damage
** there is corruption, as for bc_recover. */
static bc_status follow_file(bc_store *s, recov *rc, bc_file *f, uint64_t size,
                             int tail) {
  uint64_t end;
  int bad, fd;
  /* Records start after the header, whatever size was seen before. */
  if (f->size < BC_FILE_HEADER_SIZE) f->size = BC_FILE_HEADER_SIZE;
  if (size <= f->size) return BC_OK;
  if (tail) {
    bc_status st = read_tail(s, rc, f, f->size, size, &end);
    if (st == BC_OK) f->size = end;
    return st;
  }
  rc->f = f;
  bc_status st = bc_file_fd(s, f, &fd);
  if (st != BC_OK) return st;
  st = bc_datafile_walk(s, fd, f->id, f->size, size, on_record, rc, &end, &bad);
  if (st != BC_OK) return st;
  st = release_held(rc);
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

/* One incremental read.  Returns BC_OK, an error, or BC_DONE when the
** keydir must be rebuilt instead (a merge, a file gone or shrunk, an abort of
** a transaction already applied). */
static bc_status follow_once(bc_store *s) {
  bc_follow *fw = s->follow;
  recov *rc = &fw->rc;
  rc->s = s;
  /* The common case, nothing written since: two stats, no listing. */
  struct stat ds;
  int have_ds = stat(s->dir, &ds) == 0;
  struct timespec seen; /* when ds was taken */
  clock_gettime(CLOCK_REALTIME, &seen);
  if (have_ds && fw->dir_valid && ts_ns(ds.st_mtim) == fw->dir_mtime &&
      ts_ns(ds.st_ctim) == fw->dir_ctime && (uint64_t)ds.st_ino == fw->dir_ino) {
    bc_file *tf = fw->tail_id ? bc_file_get(s, fw->tail_id) : NULL;
    struct stat ts;
    if (tf && !tf->missing && tf->header_ok && bc_file_stat(s, tf, &ts) == 0 &&
        (uint64_t)ts.st_size == tf->size)
      return BC_OK;
  }
  fw->dir_valid = 0;
  bc_dirlist dl;
  bc_status st = bc_dirlist_read(s, s->dir, &dl);
  if (st != BC_OK) return st;
  if (dl.has_merge) st = BC_DONE;
  uint32_t tail = follow_tail(s, &dl);
  /* The old tail, sealed now, may be mapped whole (datafile.c file_map). */
  uint32_t prev_tail = s->follow_tail;
  s->follow_tail = tail;
  for (size_t i = 0; i < s->nfiles && st == BC_OK; i++) {
    bc_file *f = &s->files[i];
    struct stat sb;
    if (f->missing) continue; /* only its hint was there: nothing to follow */
    if (!bc_ids_has(dl.data, dl.ndata, f->id) || bc_file_stat(s, f, &sb) != 0 ||
        (uint64_t)sb.st_size < f->size) {
      st = BC_DONE;
    } else if (!f->header_ok) {
      /* Being created when we last looked (or damaged): look again. */
      uint32_t id = f->id;
      bc_file_unmap(f);
      bc_file_close(s, f);
      st = open_file(s, id, BC_SUFFIX_DATA, f);
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
  for (size_t i = 0; i < dl.ndata && st == BC_OK; i++) {
    uint32_t id = dl.data[i];
    if (bc_file_get(s, id)) continue;
    bc_file *f = bc_file_add(s, id);
    if (!f) {
      st = bc_seterr(s, BC_NOMEM, "out of memory");
      break;
    }
    st = open_file(s, id, BC_SUFFIX_DATA, f);
    if (st != BC_OK) break;
    if (!f->header_ok) {
      /* Being created: come back to it next time. */
      bc_file_remove(s, id);
      continue;
    }
    if (f->merged) {
      st = BC_DONE;
      break;
    }
    char path[PATH_MAX];
    bc_path_id(s, path, id, BC_SUFFIX_HINT);
    rc->f = f;
    if (bc_ids_has(dl.hint, dl.nhint, id) && bc_hint_load(s, f, path, on_record, rc, &st)) {
      f->has_hint = 1;
      continue;
    }
    if (st != BC_OK) break;
    uint64_t size = f->size;
    f->size = BC_FILE_HEADER_SIZE;
    st = follow_file(s, rc, f, size, id == tail);
  }
  bc_dirlist_free(&dl);
  if (st == BC_OK && rc->reload) st = BC_DONE;
  if (st == BC_OK) {
    uint64_t last = rc->has_commit ? rc->commit_txn : 0;
    st = settle_commit(rc);
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
  uint64_t t = ts_ns(ds.st_mtim) > ts_ns(ds.st_ctim) ? ts_ns(ds.st_mtim) : ts_ns(ds.st_ctim);
  if (st == BC_OK && have_ds && ts_ns(seen) > t + FOLLOW_RACY_NS) {
    fw->dir_valid = 1;
    fw->dir_mtime = ts_ns(ds.st_mtim);
    fw->dir_ctime = ts_ns(ds.st_ctim);
    fw->dir_ino = (uint64_t)ds.st_ino;
    fw->tail_id = tail;
  }
  return st;
}

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
    st = bc_recover(s);
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

bc_status bc_refresh(bc_store *s) {
  if (!s->read_only) return BC_OK;
  pthread_mutex_lock(&s->mu);
  bc_status st = bc_refresh_locked(s);
  pthread_mutex_unlock(&s->mu);
  return st;
}
