/*
** txn.c -- transactions: a private overlay keydir, savepoints, and the
** commit that makes a group of writes visible and durable at once
** (docs/FORMAT.md "Transaction markers").
**
**   begin        flush standalone records; t->id = the next seq
**   put/delete   append a record with txn = t->id; update t's overlay
**   savepoint    push a mark {undo length, last seq written}
**   rollback_to  undo the overlay to the mark; append ROLLBACK_TO(S = mark.seq)
**   prepare      append COMMIT(record count, durability claim: how much of
**                its data file was known durable then); write and sync per mode
**                (sync=full: the transaction's one fsync) -- the commit point
**   commit       prepare if not yet; move the overlay into the keydir
**   rollback     after prepare: append ROLLBACK_TO(S = 0) right after the
**                COMMIT, synced -- an abort that voids it
**   rollback     append ROLLBACK_TO(S = 0) (unsynced; a hint to recovery)
**                and drop the overlay
**
** Invariants:
**  - At most one transaction per store (s->txn), so transactions serialise:
**    every record of t has a higher seq than every committed record, and
**    applying t's overlay at commit never goes back in time -- the same
**    result recovery gets by applying t's records at its COMMIT.
**  - Two phases, because SQLite's own commit runs between xSync (prepare)
**    and xCommit (commit) and may still fail (SQLITE_BUSY in rollback-journal
**    mode), after which SQLite calls xRollback.  Prepare is the durable
**    commit point, so every I/O error reaches the COMMIT statement; a
**    rollback after it appends an abort right after the COMMIT (nothing else
**    can come between: transactions serialise), and recovery treats a
**    COMMIT immediately followed by its transaction's ROLLBACK_TO(0) as void.
**    commit itself does no I/O and cannot fail.
**  - The keydir changes only at commit, after the COMMIT is durable per mode;
**    the overlay's moves into it cannot fail (prepare grew the keydir).
**  - While no savepoint is open the undo log is empty: a full rollback just
**    drops the overlay.  Under a savepoint each write logs the overlay state
**    it replaced, so memory stays one overlay entry per distinct key plus one
**    undo entry per write under the savepoint.
**  - A doomed transaction (buffered records lost to a failed write) can only
**    roll back.
*/
#include "bitcask.h"
#include "datafile.h"
#include "error.h"
#include "files.h"
#include "format.h"
#include "keydir.h"
#include "lock.h"
#include "store.h"
#include "txn.h"
#include "versions.h"
#include "writer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>


void bc_txn_free(bc_txn *t) {
  if (!t) return;
  if (t->s && t->s->txn == t) t->s->txn = NULL;
  bc_kd_free(&t->ov);
  free(t->undo);
  free(t->marks);
  free(t);
}

bc_status bc_txn_doomed(bc_txn *t) {
  if (t->prepared)
    return bc_seterr(t->s, BC_INVALID, "the transaction is prepared: only "
                                       "commit or rollback may follow");
  return bc_seterr(t->s, BC_IOERR,
                   "an earlier write of this transaction failed; it can only "
                   "be rolled back");
}

bc_status bc_txn_begin(bc_store *s, bc_txn **out) {
  *out = NULL;
  if (!s->read_only && bc_foreign(s)) return bc_foreign_error(s);
  pthread_mutex_lock(&s->mu);
  bc_status st = BC_OK;
  bc_txn *t = NULL;
  if (s->read_only) {
    st = bc_seterr(s, BC_READONLY, "is open read-only");
  } else if (s->txn) {
    st = bc_seterr(s, BC_BUSY, "another transaction is open on this store");
  } else if ((st = s->nundo ? bc_sync_active(s, 0) : BC_OK) == BC_OK) {
    /* Standalone writes before it are committed now (undo log empty); a
    ** rollback's marker may stay in the buffer. */
    t = calloc(1, sizeof *t);
    /* The keydir's seed: a key's hash serves both tables (bc_txn_insert
    ** probes both with one).  The overlay is applied in write order, not in
    ** hash order, so the shared hash cannot pile keys into one region. */
    if (!t || bc_kd_init(&t->ov, s->kd.seed) != 0) {
      free(t);
      t = NULL;
      st = bc_seterr(s, BC_NOMEM, "out of memory");
    } else {
      t->s = s;
      t->id = s->next_seq;
      t->cutbacks = s->cutbacks;
      s->txn = t;
    }
  }
  pthread_mutex_unlock(&s->mu);
  *out = t;
  return st;
}

/* Log e's state before a write, if a savepoint is open. */
static int log_undo(bc_txn *t, bc_entry *e, int created) {
  if (t->nmarks == 0) return 0;
  if (t->nundo == t->capundo) {
    size_t cap = t->capundo ? t->capundo * 2 : 64;
    bc_txn_undo *u = realloc(t->undo, cap * sizeof *u);
    if (!u) return -1;
    t->undo = u;
    t->capundo = cap;
  }
  bc_txn_undo *u = &t->undo[t->nundo++];
  u->entry = e;
  u->created = created;
  bc_e_save(e, &u->old);
  return 0;
}

/* Revert the overlay to undo length n, newest first. */
static void undo_to(bc_txn *t, size_t n) {
  while (t->nundo > n) {
    bc_txn_undo *u = &t->undo[--t->nundo];
    bc_entry *e = u->entry;
    if (u->created)
      bc_kd_remove(&t->ov, e);
    else
      bc_e_restore(e, &u->old);
  }
}

/* Append one record of t and point its overlay entry at it. */
static bc_status txn_write(bc_txn *t, uint8_t type, uint8_t meta,
                           const void *key, size_t klen, uint64_t h,
                           const void *value, size_t vlen) {
  bc_store *s = t->s;
  int created;
  bc_entry *e = bc_kd_upsert_h(&t->ov, key, klen, h, &created);
  if (!e) return bc_seterr(s, BC_NOMEM, "out of memory");
  if (created) e->loc |= BC_E_DELETED; /* nothing of this txn yet */
  if (log_undo(t, e, created) != 0) {
    if (created) bc_kd_remove(&t->ov, e);
    return bc_seterr(s, BC_NOMEM, "out of memory");
  }
  bc_rec r = {type, meta, 0, t->id, (uint32_t)klen, (uint32_t)vlen};
  uint32_t fid;
  uint64_t off;
  bc_status st = bc_append_record(s, &r, key, value, &fid, &off);
  if (st != BC_OK) {
    if (t->nmarks > 0) {
      undo_to(t, t->nundo - 1);
    } else if (created) {
      bc_kd_remove(&t->ov, e);
    }
    return st;
  }
  t->nrec++;
  if (type == BC_REC_PUT)
    bc_e_set(e, r.seq, meta, fid, off, (uint32_t)vlen, 0);
  else
    bc_e_set(e, r.seq, 0, 0, 0, 0, 1);
  return BC_OK;
}

/* The entry for key in t's view: the overlay's, else the keydir's.  NULL if
** the key is not live there. */
static bc_entry *view_get_h(bc_txn *t, const void *key, size_t klen, uint64_t h) {
  bc_entry *e = bc_kd_get_h(&t->ov, key, klen, h);
  if (e) return bc_e_deleted(e) ? NULL : e;
  return bc_kd_get_h(&t->s->kd, key, klen, h);
}

static bc_entry *view_get(bc_txn *t, const void *key, size_t klen) {
  return view_get_h(t, key, klen, bc_kd_hash(&t->s->kd, key, klen));
}


bc_status bc_txn_put(bc_txn *t, const void *key, size_t klen, uint8_t meta,
                     const void *value, size_t vlen) {
  bc_store *s = t->s;
  pthread_mutex_lock(&s->mu);
  bc_status st = bc_txn_is_doomed(t) || t->prepared ? bc_txn_doomed(t) : bc_check_sizes(s, klen, vlen);
  if (st == BC_OK)
    st = txn_write(t, BC_REC_PUT, meta, key, klen, bc_kd_hash(&s->kd, key, klen), value, vlen);
  pthread_mutex_unlock(&s->mu);
  return st;
}

bc_status bc_txn_insert(bc_txn *t, const void *key, size_t klen, uint8_t meta,
                        const void *value, size_t vlen) {
  bc_store *s = t->s;
  pthread_mutex_lock(&s->mu);
  bc_status st = bc_txn_is_doomed(t) || t->prepared ? bc_txn_doomed(t) : bc_check_sizes(s, klen, vlen);
  if (st == BC_OK) {
    uint64_t h = bc_kd_hash(&s->kd, key, klen);
    st = view_get_h(t, key, klen, h) ? BC_EXISTS
                                     : txn_write(t, BC_REC_PUT, meta, key, klen, h, value, vlen);
  }
  pthread_mutex_unlock(&s->mu);
  return st;
}

bc_status bc_txn_delete(bc_txn *t, const void *key, size_t klen) {
  bc_store *s = t->s;
  pthread_mutex_lock(&s->mu);
  bc_status st = bc_txn_is_doomed(t) || t->prepared ? bc_txn_doomed(t) : bc_check_sizes(s, klen, 0);
  if (st == BC_OK) {
    uint64_t h = bc_kd_hash(&s->kd, key, klen);
    st = view_get_h(t, key, klen, h) ? txn_write(t, BC_REC_TOMBSTONE, 0, key, klen, h, NULL, 0)
                                     : BC_NOTFOUND;
  }
  pthread_mutex_unlock(&s->mu);
  return st;
}


bc_status bc_txn_lookup(bc_txn *t, const void *key, size_t klen, bc_info *info) {
  if (klen > BC_MAX_KEY_SIZE) return BC_NOTFOUND;
  pthread_mutex_lock(&t->s->mu);
  bc_entry *e = view_get(t, key, klen);
  if (e) bc_fill_info(e, info);
  pthread_mutex_unlock(&t->s->mu);
  return e ? BC_OK : BC_NOTFOUND;
}

bc_status bc_txn_get(bc_txn *t, const void *key, size_t klen, bc_buf *buf,
                     const void **value, bc_info *info) {
  if (klen > BC_MAX_KEY_SIZE) return BC_NOTFOUND;
  bc_store *s = t->s;
  pthread_mutex_lock(&s->mu);
  bc_status st = BC_NOTFOUND;
  bc_entry *e = bc_txn_is_doomed(t) ? NULL : view_get(t, key, klen);
  if (bc_txn_is_doomed(t)) st = bc_txn_doomed(t);
  if (e) {
    st = bc_datafile_read(s, e, key, klen, buf, value);
    if (st == BC_OK) bc_fill_info(e, info);
  }
  pthread_mutex_unlock(&s->mu);
  return st;
}

bc_status bc_txn_savepoint(bc_txn *t, unsigned *depth) {
  bc_store *s = t->s;
  pthread_mutex_lock(&s->mu);
  bc_status st = BC_OK;
  if (t->nmarks == t->capmarks) {
    size_t cap = t->capmarks ? t->capmarks * 2 : 8;
    bc_txn_mark *m = realloc(t->marks, cap * sizeof *m);
    if (!m) {
      st = bc_seterr(s, BC_NOMEM, "out of memory");
    } else {
      t->marks = m;
      t->capmarks = cap;
    }
  }
  if (st == BC_OK) {
    bc_txn_mark *m = &t->marks[t->nmarks++];
    m->nundo = t->nundo;
    m->seq = s->next_seq - 1;
    m->nrec = t->nrec;
    *depth = (unsigned)t->nmarks;
  }
  pthread_mutex_unlock(&s->mu);
  return st;
}

bc_status bc_txn_rollback_to(bc_txn *t, unsigned depth) {
  bc_store *s = t->s;
  pthread_mutex_lock(&s->mu);
  bc_status st = BC_OK;
  if (depth < 1 || depth > t->nmarks) {
    st = bc_seterr(s, BC_INVALID, "no savepoint at depth %u", depth);
  } else if (bc_txn_is_doomed(t) || t->prepared) {
    st = bc_txn_doomed(t);
  } else {
    bc_txn_mark *m = &t->marks[depth - 1];
    if (t->nrec > m->nrec) {
      /* Tell recovery to drop the records written since the mark.  If this
      ** append fails the transaction cannot go on: a later COMMIT would make
      ** recovery apply records this view no longer has. */
      unsigned char S[BC_ROLLBACK_TO_SIZE];
      bc_put_u64(S + BC_ROLLBACK_TO_OFF_S, m->seq);
      bc_rec r = {BC_REC_ROLLBACK_TO, 0, 0, t->id, 0, BC_ROLLBACK_TO_SIZE};
      uint32_t fid;
      uint64_t off;
      st = bc_append_record(s, &r, NULL, S, &fid, &off);
      if (st != BC_OK) t->doomed = 1;
    }
    if (st == BC_OK) {
      undo_to(t, m->nundo);
      t->nrec = m->nrec;
      t->nmarks = depth;
    }
  }
  pthread_mutex_unlock(&s->mu);
  return st;
}

bc_status bc_txn_release(bc_txn *t, unsigned depth) {
  bc_store *s = t->s;
  pthread_mutex_lock(&s->mu);
  bc_status st = BC_OK;
  if (depth < 1 || depth > t->nmarks) {
    st = bc_seterr(s, BC_INVALID, "no savepoint at depth %u", depth);
  } else {
    t->nmarks = depth - 1;
    if (t->nmarks == 0) {
      /* Nothing can roll back to a point inside the transaction any more. */
      t->nundo = 0;
      if (t->capundo > 4096) {
        free(t->undo);
        t->undo = NULL;
        t->capundo = 0;
      }
    }
  }
  pthread_mutex_unlock(&s->mu);
  return st;
}

/* Apply t's overlay to the keydir (room was reserved by prepare).  The
** overlay's entries are copied: each keydir owns its own arena. */
static void apply_overlay(bc_txn *t) {
  bc_store *s = t->s;
  bc_keydir *ov = &t->ov;
  /* In the overlay's arena order, which is the order of the writes: its
  ** entries are then read sequentially (in hash order each would be a cache
  ** miss in a large transaction), and the keydir's new entries follow the
  ** records on disk, as the fold (fold.c) likes.  Without
  ** memory for the order, hash order does. */
  bc_kd_snap order;
  int ordered = bc_kd_snap_take(ov, &order) == 0;
  /* The keydir's slots are cache misses in a large keydir: hash AHEAD
  ** entries ahead and prefetch their slots, so the misses overlap. */
  enum { AHEAD = 8 };
  uint32_t rq[AHEAD];
  uint64_t hq[AHEAD];
  for (size_t j = 0; ordered && j < AHEAD; j++) {
    rq[j] = bc_kd_snap_next(&order);
    if (!rq[j]) continue;
    const bc_entry *f = bc_kd_entry(ov, rq[j]);
    hq[j] = bc_kd_hash(&s->kd, f->key, bc_e_klen(f));
    bc_kd_prefetch(&s->kd, hq[j]);
  }
  for (size_t i = 0; ordered || i < ov->cap; i++) {
    const bc_entry *e;
    uint64_t h;
    if (ordered) {
      uint32_t r = rq[i % AHEAD];
      if (!r) break;
      e = bc_kd_entry(ov, r);
      h = hq[i % AHEAD];
      rq[i % AHEAD] = bc_kd_snap_next(&order);
      if (rq[i % AHEAD]) {
        const bc_entry *f = bc_kd_entry(ov, rq[i % AHEAD]);
        hq[i % AHEAD] = bc_kd_hash(&s->kd, f->key, bc_e_klen(f));
        bc_kd_prefetch(&s->kd, hq[i % AHEAD]);
      }
    } else {
      if (!(e = bc_kd_at(ov, i))) continue;
      h = bc_kd_hash(&s->kd, e->key, bc_e_klen(e));
    }
    if (bc_e_deleted(e)) {
      bc_entry *k = bc_kd_get_h(&s->kd, e->key, bc_e_klen(e), h);
      if (k) {
        bc_snap_change(s, e->key, bc_e_klen(e), k);
        bc_acct(s, k, 0);
        bc_kd_remove(&s->kd, k);
      }
      continue;
    }
    if (s->snap_newest) bc_snap_save(s, e->key, bc_e_klen(e),
                                     bc_kd_get_h(&s->kd, e->key, bc_e_klen(e), h));
    s->epoch++;
    int created;
    /* Cannot fail: prepare reserved room. */
    bc_entry *k = bc_kd_upsert_h(&s->kd, e->key, bc_e_klen(e), h, &created);
    if (!created) bc_acct(s, k, 0);
    bc_e_set(k, bc_e_seq(e), bc_e_meta(e), e->file_id, bc_e_off(e), e->vsize, 0);
    bc_acct(s, k, 1);
  }
  if (ordered) bc_kd_snap_free(&order);
}

/* Entries and key bytes of t's overlay: what applying it may add. */
static size_t overlay_key_bytes(const bc_txn *t) { return t->ov.key_bytes; }

/* Append t's ROLLBACK_TO(S = 0) (an abort, when it follows t's COMMIT). */
static bc_status append_abort(bc_txn *t) {
  unsigned char S[BC_ROLLBACK_TO_SIZE];
  bc_put_u64(S + BC_ROLLBACK_TO_OFF_S, 0);
  bc_rec r = {BC_REC_ROLLBACK_TO, 0, 0, t->id, 0, BC_ROLLBACK_TO_SIZE};
  uint32_t fid;
  uint64_t off;
  return bc_append_record(t->s, &r, NULL, S, &fid, &off);
}

/* After a COMMIT reached the file: void it with an abort marker right after
** it, synced per mode.  If that fails the file may say "committed" while the
** caller was told otherwise: the store refuses writes until it is reopened
** (recovery then decides from what is on disk). */
static void void_commit(bc_txn *t) {
  bc_store *s = t->s;
  t->committed = 0;
  if (s->poisoned) return;
  char keep[sizeof s->err];
  memcpy(keep, s->err, sizeof keep); /* the caller's error stays the news */
  s->hold_rotation = 1; /* recovery looks for it right after the COMMIT */
  bc_status st = append_abort(t);
  s->hold_rotation = 0;
  if (st == BC_OK) st = bc_sync_active(s, 1);
  if (st != BC_OK) {
    /* A failed write cuts the file back past the COMMIT (unless even that
    ** failed): then nothing is left to void.  Otherwise the file may say
    ** "committed" and only a reopen (recovery) can decide. */
    bc_file *f = bc_file_get(s, t->commit_file);
    int gone = !s->dirty_tail && f && t->commit_file == s->active_id &&
               f->size <= t->commit_off;
    if (!gone) s->poisoned = 1;
  }
  memcpy(s->err, keep, sizeof keep);
}

/* bc_txn_prepare's work, under s->mu (the caller checked the process). */
static bc_status prepare_locked(bc_txn *t) {
  bc_store *s = t->s;
  bc_status st = BC_OK;
  if (bc_txn_is_doomed(t)) {
    st = bc_txn_doomed(t);
  } else if (!t->prepared && t->nrec > 0) {
    /* The commit point: every record and the COMMIT, synced per mode. */
    if (bc_kd_reserve(&s->kd, t->ov.count, overlay_key_bytes(t)) != 0)
      st = bc_seterr(s, BC_NOMEM, "out of memory");
    unsigned char n[BC_COMMIT_SIZE] = {0}; /* the claim: bc_append_record's */
    bc_put_u64(n + BC_COMMIT_OFF_COUNT, t->nrec);
    bc_rec r = {BC_REC_COMMIT, 0, 0, t->id, 0, BC_COMMIT_SIZE};
    if (st == BC_OK)
      st = bc_append_record(s, &r, NULL, n, &t->commit_file, &t->commit_off);
    if (st == BC_OK) {
      t->committed = 1;
      st = bc_sync_active(s, 0);
      /* A failed write cut the COMMIT off again (and doomed t); a failed
      ** sync left it in the file, not durable: void it. */
      if (st != BC_OK && !bc_txn_is_doomed(t)) void_commit(t);
    }
    if (st != BC_OK) {
      t->committed = 0;
      t->doomed = 1;
    }
  }
  if (st == BC_OK) t->prepared = 1;
  return st;
}

bc_status bc_txn_prepare(bc_txn *t) {
  bc_store *s = t->s;
  if (bc_foreign(s)) return bc_foreign_error(s); /* a txn begun before a fork */
  pthread_mutex_lock(&s->mu);
  bc_status st = prepare_locked(t);
  pthread_mutex_unlock(&s->mu);
  return st;
}

bc_status bc_txn_commit(bc_txn *t) {
  bc_store *s = t->s;
  if (bc_foreign(s)) {
    /* A txn begun before a fork: nothing of it reaches the parent's files. */
    bc_status st = bc_foreign_error(s);
    bc_txn_free(t);
    return st;
  }
  pthread_mutex_lock(&s->mu);
  bc_status st = prepare_locked(t);
  if (st == BC_OK && t->committed) {
    apply_overlay(t); /* cannot fail: prepare made room */
    s->commits++;
  }
  bc_txn_free(t);
  pthread_mutex_unlock(&s->mu);
  return st;
}

bc_status bc_txn_rollback(bc_txn *t) {
  if (!t) return BC_OK;
  bc_store *s = t->s;
  if (bc_foreign(s)) {
    bc_txn_free(t); /* a child writes no abort into the parent's files */
    return BC_OK;
  }
  pthread_mutex_lock(&s->mu);
  if (t->committed) {
    /* Prepared, and the host's own commit failed after: abort. */
    void_commit(t);
  } else if (t->nrec > 0 && !bc_txn_is_doomed(t) && !s->poisoned) {
    /* Not needed for correctness (records without a COMMIT are dropped at
    ** recovery) but lets recovery free them early.  A failure is harmless. */
    if (append_abort(t) != BC_OK) s->err[0] = 0;
  }
  bc_txn_free(t);
  pthread_mutex_unlock(&s->mu);
  return BC_OK;
}

uint64_t bc_count_view(bc_store *s, bc_txn *t) {
  pthread_mutex_lock(&s->mu);
  uint64_t n = s->kd.count;
  for (size_t i = 0; t && i < t->ov.cap; i++) {
    const bc_entry *e = bc_kd_at(&t->ov, i);
    if (!e) continue;
    int in_kd = bc_kd_get(&s->kd, e->key, bc_e_klen(e)) != NULL;
    if (bc_e_deleted(e) && in_kd) n--;
    if (!bc_e_deleted(e) && !in_kd) n++;
  }
  pthread_mutex_unlock(&s->mu);
  return n;
}
