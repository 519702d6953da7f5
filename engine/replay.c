/*
** replay.c -- applying a stream of records to the keydir: the state machine
** that recovery (bc_recover) and a read-only follower (bc_refresh) share.
** Records arrive file by file, from a data file's walk or a hint's entries,
** through bc_replay_record; the tail file -- the one a writer was appending
** to -- is read through bc_replay_tail, which finds where its unsynced tail
** starts.
**
** Invariants:
**  - A record replaces a key's entry only if its seq is higher, so the
**    result does not depend on which file a version lives in (merge outputs
**    have high ids but old seqs).
**  - A tombstone leaves a "deleted" entry carrying its seq until every file
**    is read, so an older put read later cannot resurrect the key (a
**    follower, whose records are all newer than its keydir, removes the key
**    at once).
**  - A record with txn != 0 is pending until its COMMIT; ROLLBACK_TO drops
**    the txn's pending records above S; whatever is pending at the end is
**    discarded.  Pending state spans files, so a transaction may span a
**    rotation.  A COMMIT waits for the next record, which may be its abort,
**    before it is applied (bc_replay_settle at the end of a read).
**  - Only the tail file can have an unsynced tail: after a power loss,
**    whatever followed its last durable point may be garbage in any
**    pattern, intact records after torn ones included.  Its durable point D
**    is the highest durability claim of a valid COMMIT in it; the first
**    damaged or cut-short record at or after D starts the unsynced tail:
**    nothing from there on is applied.  A damaged record below D, or one
**    with a valid record after it in any other file, is corruption: counted
**    in s->corrupt, its key reads as BC_CORRUPT, and the rest of the file is
**    read.
**  - Damage never makes a key read an older version when a file still says
**    what the damaged one held (docs/FORMAT.md "Damaged files"): a committed
**    transaction with records missing gives its keys lost entries, and the
**    files holding its records, and those sharing a transaction with a
**    damaged one (bc_damage_spread), are marked damaged.
*/
#include "bitcask.h"
#include "datafile.h"
#include "error.h"
#include "files.h"
#include "format.h"
#include "keydir.h"
#include "replay.h"
#include "store.h"
#include "versions.h"

#include <stdlib.h>
#include <string.h>

struct bc_pending {
  uint64_t txn, seq, off;
  uint32_t file_id, klen, vlen;
  uint8_t type, meta;
  unsigned char *key; /* owned */
};

/* The first data file of a transaction with pending records. */
struct bc_txspan {
  uint64_t txn;
  uint32_t lo;
};

/* ------------------------------------------------------ applying records */

static int push_pending(bc_pending **a, size_t *n, size_t *cap, const bc_recinfo *ri,
                        uint32_t file_id, uint8_t type) {
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 16;
    bc_pending *p = realloc(*a, c * sizeof *p);
    if (!p) return -1;
    *a = p;
    *cap = c;
  }
  bc_pending *p = &(*a)[*n];
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
static bc_status apply(bc_replay *rc, uint32_t file_id, uint64_t off, uint8_t type,
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

static bc_status on_valid_record(bc_replay *rc, const bc_recinfo *ri);
static void tx_end(bc_replay *rc, uint64_t txn, uint32_t last);

/* Damaged records followed by a valid one (outside the tail file's unsynced
** tail, see bc_replay_tail) are corruption:
** each is counted and, if it is a put or tombstone, takes its key's place
** as a record that reads as BC_CORRUPT (so neither an older version nor a
** deleted key comes back in its stead); the transaction it claims to belong
** to, if any, decides as for any record.  Markers are just counted. */
bc_status bc_replay_release_held(bc_replay *rc) {
  bc_status st = BC_OK;
  for (size_t i = 0; i < rc->nheld; i++) {
    bc_pending *h = &rc->held[i];
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

static void drop_held(bc_replay *rc) {
  for (size_t i = 0; i < rc->nheld; i++) free(rc->held[i].key);
  rc->nheld = 0;
}

bc_status bc_replay_record(void *arg, const bc_recinfo *ri) {
  bc_replay *rc = arg;
  if (ri->damaged) {
    if (push_pending(&rc->held, &rc->nheld, &rc->capheld, ri, rc->f->id,
                     ri->r.type) != 0)
      return bc_seterr(rc->s, BC_NOMEM, "out of memory");
    return BC_OK;
  }
  bc_status st = bc_replay_release_held(rc);
  return st == BC_OK ? on_valid_record(rc, ri) : st;
}

/* Apply the pending records of txn -- or, if some are missing, report
** them. */
static bc_status apply_commit(bc_replay *rc, uint64_t txn, uint64_t count,
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
    bc_pending *p = &rc->p[i];
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
static int tx_note(bc_replay *rc, uint64_t txn, uint32_t id) {
  for (size_t i = 0; i < rc->ntx; i++)
    if (rc->tx[i].txn == txn) return 0;
  if (rc->ntx == rc->captx) {
    size_t c = rc->captx ? rc->captx * 2 : 4;
    bc_txspan *p = realloc(rc->tx, c * sizeof *p);
    if (!p) return -1;
    rc->tx = p;
    rc->captx = c;
  }
  rc->tx[rc->ntx++] = (bc_txspan){txn, id};
  return 0;
}

/* txn is over (committed in file `last`, or 0: dropped): if it spanned
** files, each non-merged file from its first to `last` records the span. */
static void tx_end(bc_replay *rc, uint64_t txn, uint32_t last) {
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
static void drop_pending(bc_replay *rc, uint64_t txn, uint64_t S) {
  size_t w = 0;
  for (size_t i = 0; i < rc->np; i++) {
    bc_pending *p = &rc->p[i];
    if (p->txn == txn && p->seq > S)
      free(p->key);
    else
      rc->p[w++] = *p;
  }
  rc->np = w;
}

/* The COMMIT read last is not followed by its abort: apply it. */
bc_status bc_replay_settle(bc_replay *rc) {
  if (!rc->has_commit) return BC_OK;
  rc->has_commit = 0;
  return apply_commit(rc, rc->commit_txn, rc->commit_count, rc->commit_file);
}

static bc_status on_valid_record(bc_replay *rc, const bc_recinfo *ri) {
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
    bc_status st = bc_replay_settle(rc);
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

/* The durability claim of the valid COMMIT ri read from f by a walk: how
** much of f was durable when it was appended.  No more than its own offset
** (a writer cannot claim what it has not written); 0 for anything else. */
static uint64_t claim_of(const bc_file *f, const bc_recinfo *ri) {
  if (ri->damaged || ri->r.type != BC_REC_COMMIT || ri->r.vlen != BC_COMMIT_SIZE ||
      !ri->value || f->version < 2)
    return 0;
  uint64_t c = bc_get_u64(ri->value + BC_COMMIT_OFF_CLAIM);
  return c < ri->off ? c : ri->off;
}

/* First pass over the tail: records as bc_replay_record until the first damaged
** one; from there on only the claims of valid COMMITs are noted. */
static bc_status on_tail_first(void *arg, const bc_recinfo *ri) {
  bc_replay *rc = arg;
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
  return bc_replay_record(arg, ri);
}

/* Second pass, from the first damage, which lies below D: damage below D is
** corruption (bc_replay_record holds it until a valid record follows), the first
** damage at or after D starts the unsynced tail: the walk stops there. */
static bc_status on_tail_second(void *arg, const bc_recinfo *ri) {
  bc_replay *rc = arg;
  if (ri->damaged && ri->off >= rc->durable) {
    rc->cut = 1;
    rc->cut_off = ri->off;
    return BC_DONE;
  }
  uint64_t c = claim_of(rc->f, ri);
  if (c > rc->claim) rc->claim = c;
  return bc_replay_record(arg, ri);
}

/* (See replay.h.)  Read the records of the tail file f in [from, size)
** (docs/FORMAT.md Recovery 3).  *end receives where its unsynced tail starts
** (size if it has none): the first damaged or cut-short record at or after D,
** the highest durability claim of a valid COMMIT in f.  D is known only at
** the end of the file, so the first pass applies records up to the first
** damage and reads the rest for claims only; when that damage lies below D (a
** valid COMMIT after it claims it durable) a second pass reads on from it.
** Without damage, one pass.  rc->claim keeps the highest claim read, for a
** follower's next read of the same file. */
bc_status bc_replay_tail(bc_replay *rc, bc_file *f, uint64_t from, uint64_t size,
                         uint64_t *end) {
  bc_store *s = rc->s;
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
  if (st == BC_OK) st = bc_replay_release_held(rc);
  if (st != BC_OK) return st;
  *end = rc->cut ? rc->cut_off : bad ? e : size;
  return BC_OK;
}

/* ------------------------------------------------- any other file */

bc_status bc_replay_walk(bc_replay *rc, bc_file *f, uint64_t from, uint64_t size,
                         uint64_t *end, int *bad) {
  int fd;
  rc->f = f;
  bc_status st = bc_file_fd(rc->s, f, &fd);
  if (st != BC_OK) return st;
  return bc_datafile_walk(rc->s, fd, f->id, from, size, bc_replay_record, rc, end,
                          bad);
}

void bc_replay_free(bc_replay *rc) {
  for (size_t i = 0; i < rc->np; i++) free(rc->p[i].key);
  free(rc->p);
  free(rc->tx);
  drop_held(rc);
  free(rc->held);
  memset(rc, 0, sizeof *rc);
}
