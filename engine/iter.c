/*
** iter.c -- ordered iterators: the live keys of a store (or of a
** transaction's view) in key order, ascending or descending, within optional
** bounds.
**
** An iterator is a cursor, not a copy: it remembers the last key it returned
** and each bc_iter_next returns the next live key past it, as the view is at
** that call.  So a long walk costs no memory up front, a LIMIT stops it
** early, and a write or merge between two steps (through any handle) can
** neither make it skip a key that stays live nor return a key twice: keys are
** returned in strictly increasing (descending: decreasing) order.  A key
** added past the cursor's position is seen; one deleted before the cursor
** reaches it is not.
**
** Each step takes the store mutex.  The keydir's ordered index is built on
** the first step of the first iterator (keytree.c).  The position in it is
** cached with the keydir's version; any change to the set of keys moves the
** version on, and the next step seeks again from the last key (O(log n)).
** In a transaction's view the overlay's ordered index is walked beside the
** keydir's and shadows it: an overlay entry replaces the keydir's entry for
** its key, and an overlay "deleted" entry hides it.  A snapshot's view
** (bc_iter_open_snapshot) is the same walk with the snapshot's pre-images
** as the overlay (snapshot.c): then the keys and versions returned are
** those of the snapshot, whatever changes between steps.
**
** The public functions are thin: bc_iter_new makes an iterator and
** bc_iter_step takes one step under the caller's lock (iter.h), which the
** fold's ordered fallback (fold.c) also uses, reading the value of the
** entry the step found without a second probe.
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
#include <string.h>

struct bc_iter {
  bc_store *s;
  bc_txn *t;             /* the view of bc_iter_next (bc_iter_open_txn) */
  bc_snapshot *sn;       /* the view when no transaction is given
                         ** (bc_iter_open_snapshot), or NULL: committed */
  unsigned char *lo, *hi; /* owned copies of the bounds, or NULL */
  size_t lo_len, hi_len;
  int lo_excl, hi_excl, desc;
  int started;           /* a key has been returned: `last` is valid */
  int done;              /* BC_DONE was returned */
  unsigned char *last;   /* the key returned last; owned */
  size_t last_len, last_cap;
  bc_kpos pos;           /* keydir: the first key past `last` (or the start) */
  uint64_t pos_version;  /* kd.version pos was taken at; pos_valid if equal */
  int pos_valid;
};

static unsigned char *dup_bytes(const void *p, size_t n) {
  unsigned char *d = malloc(n ? n : 1);
  if (d && n) memcpy(d, p, n);
  return d;
}

bc_status bc_iter_new(bc_store *s, bc_snapshot *sn, const bc_range *r,
                      bc_iter **out) {
  *out = NULL;
  bc_iter *it = calloc(1, sizeof *it);
  if (!it) return BC_NOMEM;
  it->s = s;
  it->sn = sn;
  /* Never NULL: a NULL key means "no bound" to bc_kt_seek, and the empty
  ** key is a key. */
  it->last_cap = 32;
  if (!(it->last = malloc(it->last_cap))) goto oom;
  if (r) {
    it->desc = r->desc != 0;
    it->lo_excl = r->lo_excl != 0;
    it->hi_excl = r->hi_excl != 0;
    if (r->lo) {
      it->lo_len = r->lo_len;
      if (!(it->lo = dup_bytes(r->lo, r->lo_len))) goto oom;
    }
    if (r->hi) {
      it->hi_len = r->hi_len;
      if (!(it->hi = dup_bytes(r->hi, r->hi_len))) goto oom;
    }
  }
  *out = it;
  return BC_OK;
oom:
  bc_iter_free(it);
  return BC_NOMEM;
}

void bc_iter_free(bc_iter *it) {
  if (!it) return;
  free(it->lo);
  free(it->hi);
  free(it->last);
  free(it);
}

bc_status bc_iter_open_range(bc_store *s, const bc_range *r, bc_iter **out) {
  return bc_iter_new(s, NULL, r, out);
}

bc_status bc_iter_open(bc_store *s, bc_iter **out) {
  return bc_iter_new(s, NULL, NULL, out);
}

bc_status bc_iter_open_txn(bc_txn *t, bc_iter **out) {
  bc_status st = bc_iter_new(t->s, NULL, NULL, out);
  if (st == BC_OK) (*out)->t = t;
  return st;
}

bc_status bc_iter_open_snapshot(bc_snapshot *sn, const bc_range *r, bc_iter **out) {
  return bc_iter_new(bc_snap_store(sn), sn, r, out);
}

/* Is key past the far bound of the iteration? */
static int past_end(const bc_iter *it, const unsigned char *key, size_t klen) {
  if (it->desc) {
    if (!it->lo) return 0;
    int c = bc_key_cmp(key, klen, it->lo, it->lo_len);
    return c < 0 || (c == 0 && it->lo_excl);
  }
  if (!it->hi) return 0;
  int c = bc_key_cmp(key, klen, it->hi, it->hi_len);
  return c > 0 || (c == 0 && it->hi_excl);
}

/* Seek kd to where the iteration goes on: past `last`, or at the near bound. */
static bc_entry *seek_on(const bc_iter *it, const bc_keydir *kd, bc_kpos *pos) {
  if (it->started) return bc_kt_seek(kd, it->last, it->last_len, 1, it->desc, pos);
  if (it->desc) return bc_kt_seek(kd, it->hi, it->hi_len, it->hi_excl, 1, pos);
  return bc_kt_seek(kd, it->lo, it->lo_len, it->lo_excl, 0, pos);
}

/* a before b in the iteration's direction? */
static int before(const bc_iter *it, const bc_entry *a, const bc_entry *b) {
  int c = bc_key_cmp(a->key, bc_e_klen(a), b->key, bc_e_klen(b));
  return it->desc ? c > 0 : c < 0;
}

/* The next key in the view (t's, else it->sn's, else the committed store):
** *key, *klen and *info as bc_iter_next_view returns them, and *found the
** entry they come from -- the overlay's (a transaction's writes or a
** snapshot's pre-images) or the keydir's. */
static bc_status next_locked(bc_iter *it, bc_txn *t, const void **key,
                             size_t *klen, bc_info *info,
                             const bc_entry **found) {
  bc_store *s = it->s;
  bc_keydir *kd = &s->kd;
  bc_keydir *ov = t ? &t->ov : NULL;
  if (!t && it->sn) {
    /* A snapshot's pre-images shadow the keydir as a transaction's
    ** overlay does (snapshot.c). */
    bc_status st = bc_snap_check(it->sn);
    if (st != BC_OK) return st;
    ov = bc_snap_overlay(it->sn);
  }
  if (it->done) return BC_DONE;
  if (bc_kd_ordered(kd) != 0 || (ov && bc_kd_ordered(ov) != 0))
    return bc_seterr(s, BC_NOMEM, "out of memory building the ordered index");

  /* The keydir's next live key not shadowed by the overlay. */
  bc_entry *b;
  if (it->pos_valid && it->pos_version == kd->version)
    b = bc_kt_step(kd, &it->pos, it->desc); /* pos is on `last` */
  else
    b = seek_on(it, kd, &it->pos);
  while (b && (bc_e_deleted(b) || (ov && bc_kd_get(ov, b->key, bc_e_klen(b)))))
    b = bc_kt_step(kd, &it->pos, it->desc);
  if (b && past_end(it, b->key, bc_e_klen(b))) b = NULL;

  /* The overlay's next live key. */
  bc_entry *o = NULL;
  bc_kpos opos;
  if (ov) {
    o = seek_on(it, ov, &opos);
    while (o && bc_e_deleted(o)) o = bc_kt_step(ov, &opos, it->desc);
    if (o && past_end(it, o->key, bc_e_klen(o))) o = NULL;
  }

  bc_entry *e;
  if (b && (!o || before(it, b, o))) {
    e = b;
    /* pos stays on b, the key returned: the next call steps past it. */
    it->pos_valid = 1;
    it->pos_version = kd->version;
  } else {
    e = o;
    /* b (if any) is still ahead; the next call seeks again past `last`. */
    it->pos_valid = 0;
  }
  if (!e) {
    it->done = 1;
    return BC_DONE;
  }
  size_t n = bc_e_klen(e);
  if (n > it->last_cap) {
    size_t cap = it->last_cap;
    while (cap < n) cap *= 2;
    unsigned char *p = realloc(it->last, cap);
    if (!p) {
      it->pos_valid = 0;
      return bc_seterr(s, BC_NOMEM, "out of memory");
    }
    it->last = p;
    it->last_cap = cap;
  }
  if (n) memcpy(it->last, e->key, n);
  it->last_len = n;
  it->started = 1;
  *key = it->last;
  *klen = n;
  bc_fill_info(e, info);
  *found = e;
  return BC_OK;
}

bc_status bc_iter_step(bc_iter *it, bc_txn *t, const void **key, size_t *klen,
                       bc_info *info, bc_buf *buf, const void **value) {
  const bc_entry *e = NULL;
  bc_status st = next_locked(it, t, key, klen, info, &e);
  if (st != BC_OK || !buf) return st;
  if (t && bc_txn_is_doomed(t)) return bc_txn_doomed(t);
  /* e is still the entry of *key: the lock was not let go. */
  return bc_datafile_read(it->s, e, *key, *klen, buf, value);
}

/* bc_iter_next_view and bc_iter_next: one step, under the lock. */
static bc_status next_view(bc_iter *it, bc_txn *t, const void **key,
                           size_t *klen, bc_info *info) {
  pthread_mutex_lock(&it->s->mu);
  bc_status st = bc_iter_step(it, t, key, klen, info, NULL, NULL);
  pthread_mutex_unlock(&it->s->mu);
  return st;
}

bc_status bc_iter_next_view(bc_iter *it, bc_txn *t, const void **key,
                            size_t *klen, bc_info *info) {
  return next_view(it, t, key, klen, info);
}

bc_status bc_iter_next(bc_iter *it, const void **key, size_t *klen,
                       bc_info *info) {
  return next_view(it, it->t, key, klen, info);
}

void bc_iter_close(bc_iter *it) { bc_iter_free(it); }
