/*
** fold.c -- the fold (the Bitcask paper's word): every live key of a store
** with its value, in no key order -- mostly the order the records lie on
** disk.
**
**   bc_fold *fo;
**   bc_fold_open(s, NULL, &fo);
**   while (bc_fold_next(fo, NULL, &k, &kn, &info, &buf, &v) == BC_OK) use(v);
**   bc_fold_close(fo);
**
** An ordered iterator (iter.c) needs the keydir's ordered index, built by a
** sort of every key on first use, and pays a tree step and a keydir probe
** per row.  The fold, which does not care about order, takes a snapshot
** instead: which of the keydir's entries are live, as a bitmap over its
** arena (keydir.c) walked in arena order, which for a store loaded from its
** files is usually the order of the records on disk (reused free blocks
** aside), so the values are read front to back through the mapped data
** files.  The snapshot is one bit per 4 bytes of arena (about 10 bits per
** key of 16 bytes), taken in one pass over the hash table.
**
** While the fold is open the keydir is pinned: no entry's memory is reused,
** so each ref still names its entry, which is then either live or marked
** deleted.  Hence, with writes and merges going on between steps: every key
** live when the fold opened and still live when the fold reaches it is
** returned once, with the value it has then (a key deleted and put back
** meanwhile has a new entry: found by its key when the fold reaches the old
** one); a key deleted before the fold reaches it is not returned; keys added
** after the open are not returned.  (Entries made while the keydir is
** pinned never take memory the snapshot marks, so no key comes twice.)
** A transaction's view is applied per row: its deletes hide keys and its
** puts replace values.
**
** In a read snapshot's view (bc_fold_open_snapshot) the snapshot's
** pre-images (snapshot.c) are applied per row as a transaction's writes
** are: so each key live in the snapshot is returned once with its version
** there, and none other -- provided the snapshot had no pre-images yet at
** the open, i.e. the keydir was the snapshot's state when the bitmap was
** taken; else the ordered fallback below serves.
**
** Where a bitmap cannot serve, the fold is an ordered iterator underneath
** (same results, key order): on a read-only store outside a snapshot,
** whose keydir a refresh may rebuild from scratch (a rebuild that cannot
** wait for the snapshots breaks them, and kd_gen tells a pinned bitmap of
** the old keydir), in a transaction that has written already,
** whose new keys are not in the keydir, and when the snapshot's memory
** cannot be had.  Each of its steps finds the next key and reads the value
** of the version found under one hold of the store mutex (iter.c
** bc_iter_step): one lock and one keydir probe per row, and the value is
** always that of the key the step returned.
*/
#include "bitcask.h"
#include "datafile.h"
#include "error.h"
#include "iter.h"
#include "keydir.h"
#include "snapshot.h"
#include "store.h"
#include "txn.h"

#include <stdlib.h>

struct bc_fold {
  bc_store *s;
  bc_snapshot *sn; /* the view when no transaction is given, or NULL */
  bc_iter *it;    /* the ordered fallback, or NULL */
  bc_kd_snap snap; /* the snapshot, walked in arena order; owned */
  int pinned;      /* s->kd is pinned by this fold (and snap is taken) */
  uint64_t kd_gen; /* s->kd_gen then: a read-only store's rebuilt keydir is
                   ** another keydir, which the bitmap does not describe */
};

static void fold_free(bc_fold *fo) {
  if (!fo) return;
  if (fo->pinned) {
    pthread_mutex_lock(&fo->s->mu);
    if (fo->kd_gen == fo->s->kd_gen) bc_kd_unpin(&fo->s->kd); /* else freed */
    pthread_mutex_unlock(&fo->s->mu);
  }
  bc_iter_free(fo->it);
  bc_kd_snap_free(&fo->snap);
  free(fo);
}

static bc_status fold_open(bc_store *s, bc_txn *t, bc_snapshot *sn, bc_fold **out) {
  *out = NULL;
  bc_fold *fo = calloc(1, sizeof *fo);
  if (!fo) return BC_NOMEM;
  fo->s = s;
  fo->sn = sn;
  pthread_mutex_lock(&s->mu);
  /* A snapshot with pre-images already: keys it has that the keydir has
  ** not are in no bitmap of the keydir.  A read-only store's keydir may be
  ** rebuilt by a refresh, except while snapshots are open (or when one
  ** must be, which breaks them: recovery.c bc_refresh_locked). */
  int ordered = (s->read_only && !sn) || (t && t->ov.count > 0) ||
                (sn && bc_snap_overlay(sn));
  if (!ordered) {
    if (bc_kd_snap_take(&s->kd, &fo->snap) != 0) {
      ordered = 1;
    } else {
      bc_kd_pin(&s->kd);
      fo->pinned = 1;
      fo->kd_gen = s->kd_gen;
    }
  }
  pthread_mutex_unlock(&s->mu);
  bc_status st = ordered ? bc_iter_new(s, sn, NULL, &fo->it) : BC_OK;
  if (st != BC_OK) {
    fold_free(fo);
    return st;
  }
  *out = fo;
  return BC_OK;
}

bc_status bc_fold_open(bc_store *s, bc_txn *t, bc_fold **out) {
  return fold_open(s, t, NULL, out);
}

bc_status bc_fold_open_snapshot(bc_snapshot *sn, bc_fold **out) {
  return fold_open(bc_snap_store(sn), NULL, sn, out);
}

bc_status bc_fold_next(bc_fold *fo, bc_txn *t, const void **key, size_t *klen,
                       bc_info *info, bc_buf *buf, const void **value) {
  bc_store *s = fo->s;
  bc_status st;
  pthread_mutex_lock(&s->mu);
  if (fo->it) {
    /* The next key in the view and the value of the version found, in one
    ** step under the lock. */
    st = bc_iter_step(fo->it, t, key, klen, info, buf, value);
    pthread_mutex_unlock(&s->mu);
    return st;
  }
  if (t && bc_txn_is_doomed(t)) {
    st = bc_txn_doomed(t);
    pthread_mutex_unlock(&s->mu);
    return st;
  }
  bc_keydir *ov = t && t->ov.count > 0 ? &t->ov : NULL;
  if (!t && fo->sn) {
    /* The pre-images the snapshot gained since the open. */
    if ((st = bc_snap_check(fo->sn)) != BC_OK) {
      pthread_mutex_unlock(&s->mu);
      return st;
    }
    ov = bc_snap_overlay(fo->sn);
  }
  if (fo->pinned && fo->kd_gen != s->kd_gen) {
    /* Rebuilt under it (only with its snapshot broken, which said so). */
    pthread_mutex_unlock(&s->mu);
    return bc_seterr(s, BC_BUSY, "the keydir was rebuilt under an open fold");
  }
  st = BC_DONE;
  uint32_t ref;
  while (fo->pinned && (ref = bc_kd_snap_next(&fo->snap)) != 0) {
    /* Its key bytes are intact while pinned, even if it was deleted since
    ** the open (and maybe put back, under a new entry). */
    const bc_entry *e = bc_kd_entry(&s->kd, ref);
    const bc_entry *v = e;
    const bc_entry *o = ov ? bc_kd_get(ov, e->key, bc_e_klen(e)) : NULL;
    if (o) {
      if (bc_e_deleted(o)) continue; /* deleted in the view */
      v = o;                         /* the view's version */
    } else if (bc_e_deleted(e)) {
      v = bc_kd_get(&s->kd, e->key, bc_e_klen(e));
      if (!v) continue;
    }
    st = buf ? bc_datafile_read(s, v, e->key, bc_e_klen(e), buf, value) : BC_OK;
    if (st == BC_OK) {
      /* The key's bytes never change while the keydir is pinned. */
      *key = e->key;
      *klen = bc_e_klen(e);
      bc_fill_info(v, info);
    }
    break;
  }
  pthread_mutex_unlock(&s->mu);
  return st;
}

void bc_fold_close(bc_fold *fo) { fold_free(fo); }
