/*
** snapshot.c -- read snapshots: a reader sees the store as it was at one
** moment, whatever is committed, merged or refreshed meanwhile.
**
**   bc_snapshot *sn;
**   bc_snapshot_open(s, &sn);            // the state now
**   bc_snapshot_get(sn, "a", 1, &b, &v, &i);
**   ... another handle commits a=2, b=2 ...
**   bc_snapshot_get(sn, "b", 1, &b, &v, &i);   // still the old b
**   bc_snapshot_close(sn);
**
** A data file is append-only, so the versions a snapshot needs are still in
** the files; what the keydir loses is where they are.  So a snapshot costs
** nothing until the keydir changes: the change saves the key's state before
** it -- its entry, or "absent" -- in the snapshot's pre-image table, an
** overlay keydir (keydir.c) whose "deleted" entries are keys absent at the
** snapshot.  A read in the snapshot's view is the transaction view read
** (iter.c, txn.c) with that overlay: the overlay's entry when it has one,
** else the keydir's.
**
** Groups.  Snapshots opened at one epoch (s->epoch: no logical change of
** the keydir between them) share one group and one overlay.  Every logical
** change -- a standalone put or delete, a transaction's commit, a follower's
** refresh -- goes through bc_snap_change, which moves the epoch on and, for
** each open group that has no version of the key yet, saves the old one:
** newest group first, stopping at the first group that has the key (every
** older one has it too: the change that gave it to the newer one happened
** after they opened).  With no snapshot open the hook is one increment.
**
** Memory.  A group holds one overlay entry (24 bytes + the key, 4-byte
** aligned, plus its hash slot and tag) per distinct key changed since it
** opened, until it closes; a group opened later holds its own copies.
** bc_stats.snapshot_bytes shows it, the arena's and the table's slack
** included.  Merges do not copy pre-images: the
** input files a merge removes while snapshots are open are retired instead
** (s->retired: unlinked on disk, kept mapped -- or their descriptor held --
** here) and released when the last group that may read them closes, i.e.
** every group created up to the retirement (serials).
**
** The merge redirects the keydir's entries to copies of the same records
** (same seq, same bytes), so a snapshot reading through the keydir reads
** the same version after a merge as before.
**
** This file holds the public side: opening, moving on, closing and reading
** snapshots (the groups' lifetimes).  What the writer, replay and merge
** call -- saving pre-images, breaking groups, retiring files -- is
** versions.c's.
*/
#include "bitcask.h"
#include "datafile.h"
#include "error.h"
#include "follow.h"
#include "keydir.h"
#include "snapshot.h"
#include "store.h"
#include "versions.h"

#include <stdlib.h>
#include <string.h>

struct bc_snapshot {
  bc_store *s;
  bc_sgroup *g;
};

/* --------------------------------------------------------- groups */

static void group_unref(bc_store *s, bc_sgroup *g) {
  if (--g->nref > 0) return;
  if (g->older) g->older->newer = g->newer;
  else s->snap_oldest = g->newer;
  if (g->newer) g->newer->older = g->older;
  else s->snap_newest = g->older;
  if (g->ov_init) bc_kd_free(&g->ov);
  free(g);
  if (s->nretired) bc_retired_release(s, s->snap_oldest ? s->snap_oldest->serial : 0);
}

/* A group at the current epoch (shared or new), with a reference.  spare:
** a zeroed group to use if a new one is needed (taken: *spare becomes
** NULL), or NULL to allocate one.  NULL on NOMEM. */
static bc_sgroup *group_now(bc_store *s, bc_sgroup **spare) {
  bc_sgroup *g = s->snap_newest;
  if (g && g->epoch == s->epoch && !g->broken) {
    g->nref++;
    return g;
  }
  if (spare && *spare) {
    g = *spare;
    *spare = NULL;
  } else {
    g = calloc(1, sizeof *g);
  }
  if (!g) return NULL;
  g->epoch = s->epoch;
  g->serial = ++s->snap_serial;
  g->count = s->kd.count;
  g->nref = 1;
  g->older = s->snap_newest;
  if (s->snap_newest) s->snap_newest->newer = g;
  else s->snap_oldest = g;
  s->snap_newest = g;
  return g;
}

/* ------------------------------------------------------ public API */

bc_status bc_snapshot_open(bc_store *s, bc_snapshot **out) {
  *out = NULL;
  bc_snapshot *sn = malloc(sizeof *sn);
  if (!sn) return BC_NOMEM;
  sn->s = s;
  pthread_mutex_lock(&s->mu);
  bc_status st = s->read_only ? bc_refresh_locked(s) : BC_OK;
  if (st == BC_OK) {
    sn->g = group_now(s, NULL);
    if (!sn->g) st = bc_seterr(s, BC_NOMEM, "out of memory opening a snapshot");
  }
  if (st == BC_OK) s->snap_handles++;
  pthread_mutex_unlock(&s->mu);
  if (st != BC_OK) {
    free(sn);
    return st;
  }
  *out = sn;
  return BC_OK;
}

bc_status bc_snapshot_refresh(bc_snapshot *sn) {
  bc_store *s = sn->s;
  pthread_mutex_lock(&s->mu);
  bc_status st = BC_OK;
  if (sn->g->epoch == s->epoch && !sn->g->broken && !s->read_only) {
    pthread_mutex_unlock(&s->mu);
    return BC_OK;
  }
  /* A group for the new state, had before the old one goes. */
  bc_sgroup *spare = calloc(1, sizeof *spare);
  if (!spare) {
    pthread_mutex_unlock(&s->mu);
    return bc_seterr(s, BC_NOMEM, "out of memory moving a snapshot on");
  }
  /* As a close and an open: sn's own group is let go first, so that it
  ** does not put off a rebuild of a read-only store's keydir (then sn is at
  ** whatever state the store serves after the refresh, also when the
  ** refresh failed). */
  group_unref(s, sn->g);
  if (s->read_only) st = bc_refresh_locked(s);
  sn->g = group_now(s, &spare); /* cannot fail: spare */
  free(spare);
  pthread_mutex_unlock(&s->mu);
  return st;
}

void bc_snapshot_close(bc_snapshot *sn) {
  if (!sn) return;
  bc_store *s = sn->s;
  pthread_mutex_lock(&s->mu);
  group_unref(s, sn->g);
  s->snap_handles--;
  pthread_mutex_unlock(&s->mu);
  free(sn);
}

bc_store *bc_snap_store(const bc_snapshot *sn) { return sn->s; }

bc_keydir *bc_snap_overlay(bc_snapshot *sn) {
  bc_sgroup *g = sn->g;
  return g->ov_init && g->ov.count > 0 ? &g->ov : NULL;
}

bc_status bc_snap_check(const bc_snapshot *sn) {
  switch (sn->g->broken) {
  case BC_BROKEN_NONE: return BC_OK;
  case BC_BROKEN_NOMEM:
    return bc_seterr(sn->s, BC_NOMEM, "out of memory keeping a snapshot's "
                     "versions: it cannot be read any more (reopen it)");
  case BC_BROKEN_UNDONE:
    return bc_seterr(sn->s, BC_IOERR, "the snapshot saw standalone writes that "
                     "were undone when their bc_sync failed (reopen it)");
  case BC_BROKEN_FILE:
    return bc_seterr(sn->s, BC_IOERR, "a data file the snapshot reads was merged "
                     "away and could not be kept open (reopen it)");
  default:
    return bc_seterr(sn->s, BC_BUSY, "the writer aborted a transaction this "
                     "store had read, and it was read again: the snapshot cannot "
                     "serve its state (reopen it)");
  }
}

const bc_entry *bc_snap_entry(bc_snapshot *sn, const void *key, size_t klen) {
  const bc_keydir *ov = bc_snap_overlay(sn);
  if (ov) {
    const bc_entry *o = bc_kd_get(ov, key, klen);
    if (o) return bc_e_deleted(o) ? NULL : o;
  }
  return bc_kd_get(&sn->s->kd, key, klen);
}

uint64_t bc_snapshot_count(bc_snapshot *sn) {
  pthread_mutex_lock(&sn->s->mu);
  uint64_t n = sn->g->count;
  pthread_mutex_unlock(&sn->s->mu);
  return n;
}

/* A key in sn's view: its info, and its value when buf is not NULL. */
static bc_status snap_read(bc_snapshot *sn, const void *key, size_t klen,
                           bc_buf *buf, const void **value, bc_info *info) {
  if (klen > BC_MAX_KEY_SIZE) return BC_NOTFOUND;
  bc_store *s = sn->s;
  pthread_mutex_lock(&s->mu);
  bc_status st = bc_snap_check(sn);
  const bc_entry *e = st == BC_OK ? bc_snap_entry(sn, key, klen) : NULL;
  if (st == BC_OK && !e) st = BC_NOTFOUND;
  if (st == BC_OK && buf) st = bc_datafile_read(s, e, key, klen, buf, value);
  if (st == BC_OK) bc_fill_info(e, info);
  pthread_mutex_unlock(&s->mu);
  return st;
}

bc_status bc_snapshot_lookup(bc_snapshot *sn, const void *key, size_t klen,
                             bc_info *info) {
  return snap_read(sn, key, klen, NULL, NULL, info);
}

bc_status bc_snapshot_get(bc_snapshot *sn, const void *key, size_t klen,
                          bc_buf *buf, const void **value, bc_info *info) {
  return snap_read(sn, key, klen, buf, value, info);
}

void bc_snap_stats(bc_store *s, bc_stats *out) {
  out->snapshots = s->snap_handles;
  out->retired_files = s->nretired;
  for (const bc_sgroup *g = s->snap_oldest; g; g = g->newer) {
    if (!g->ov_init) continue;
    out->snapshot_versions += g->ov.count;
    out->snapshot_bytes += g->ov.heap_bytes;
  }
}
