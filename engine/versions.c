/*
** versions.c -- the versions open snapshots need that the keydir no longer
** has: the pre-images every logical change saves in the snapshot groups
** (bc_snap_save, through bc_snap_change), the breaking of groups that can
** no longer serve, and the data files a merge retires while snapshots may
** still read them.  The writer, replay and merge call this; the public
** bc_snapshot_* functions, which open and read the groups, are snapshot.c's
** (whose header comment describes the design).
**
** Invariants:
**  - Groups are saved into newest first; a group that has a key's version
**    stops the walk (every older one has it too).  A group that cannot get
**    the memory for a version is broken: a writer never fails for a reader.
**  - A retired file stays readable -- mapped, or its descriptor held outside
**    the cache -- until every group created up to its retirement has
**    closed (serials), then is released (bc_retired_release).
*/
#include "bitcask.h"
#include "datafile.h"
#include "files.h"
#include "keydir.h"
#include "store.h"
#include "versions.h"

#include <stdlib.h>
#include <string.h>

/* Break every open group for `why` (the first cause stays). */
static void break_all(bc_store *s, int why) {
  for (bc_sgroup *g = s->snap_newest; g; g = g->older)
    if (!g->broken) g->broken = why;
}

/* ---------------------------------------------------------- the hook */

void bc_snap_save(bc_store *s, const void *key, size_t klen, const bc_entry *old) {
  uint64_t h = 0;
  int hashed = 0;
  for (bc_sgroup *g = s->snap_newest; g; g = g->older) {
    if (g->broken) continue;
    if (!g->ov_init) {
      if (bc_kd_init(&g->ov, s->kd.seed) != 0) {
        g->broken = BC_BROKEN_NOMEM;
        continue;
      }
      g->ov_init = 1;
    }
    if (!hashed) {
      h = bc_kd_hash(&g->ov, key, klen); /* every overlay shares the seed */
      hashed = 1;
    }
    int created;
    bc_entry *e = bc_kd_upsert_h(&g->ov, key, klen, h, &created);
    if (!e) {
      g->broken = BC_BROKEN_NOMEM;
      continue;
    }
    if (!created) break; /* this group and every older one have it */
    if (old) {
      e->seqmeta = old->seqmeta;
      e->loc = old->loc & ~BC_E_DELETED; /* same key: same klen bits */
      e->file_id = old->file_id;
      e->vsize = old->vsize;
    } else {
      bc_e_set(e, 0, 0, 0, 0, 0, 1);
    }
  }
}

void bc_snap_undo(bc_store *s, uint64_t first) {
  s->epoch++;
  for (bc_sgroup *g = s->snap_newest; g && g->epoch >= first; g = g->older)
    if (!g->broken) g->broken = BC_BROKEN_UNDONE;
}

/* ---------------------------------------------------- retired files */

void bc_file_retire(bc_store *s, uint32_t id) {
  bc_file *f = bc_file_get(s, id);
  if (!f) return;
  if (!s->snap_newest || f->missing) {
    bc_file_remove(s, id);
    return;
  }
  if (s->nretired == s->capretired) {
    size_t cap = s->capretired ? s->capretired * 2 : 8;
    bc_file *r = realloc(s->retired, cap * sizeof *r);
    if (!r) {
      /* Cannot keep it: the snapshots that may read it cannot serve. */
      break_all(s, BC_BROKEN_NOMEM);
      bc_file_remove(s, id);
      return;
    }
    s->retired = r;
    s->capretired = cap;
  }
  /* Readable after the unlink: its mapping, else its descriptor, held
  ** outside the cache (the cache would close it, and the name is gone).
  ** A mapping made while it was the active file may end short of it (a
  ** transaction that grew it past max_file_size): mapped again whole. */
  if (f->map && f->map_len < f->size) bc_file_unmap(f);
  if (!f->map) bc_file_map(s, f);
  if (!f->map || f->map_len < f->size) {
    int fd;
    if (bc_file_fd(s, f, &fd) == BC_OK) bc_file_uncache(s, f);
    else break_all(s, BC_BROKEN_FILE); /* neither: its name goes at the unlink */
  }
  bc_file *r = &s->retired[s->nretired++];
  *r = *f;
  r->retired = s->snap_serial;
  /* The struct moved: s->files forgets it without closing what r holds. */
  f->map = NULL;
  f->map_len = 0;
  f->fd = -1;
  f->slot = 0;
  bc_file_remove(s, id);
}

void bc_retired_release(bc_store *s, uint64_t oldest_serial) {
  size_t w = 0;
  for (size_t i = 0; i < s->nretired; i++) {
    bc_file *f = &s->retired[i];
    if (oldest_serial && f->retired >= oldest_serial) {
      s->retired[w++] = *f;
      continue;
    }
    bc_file_unmap(f);
    if (f->fd >= 0) s->io.close(s->io.ctx, f->fd);
  }
  s->nretired = w;
}

/* --------------------------------------------------------- teardown */

void bc_snap_free_all(bc_store *s) {
  while (s->snap_oldest) {
    bc_sgroup *g = s->snap_oldest;
    s->snap_oldest = g->newer;
    if (g->ov_init) bc_kd_free(&g->ov);
    free(g);
  }
  s->snap_newest = NULL;
  bc_retired_release(s, 0);
  free(s->retired);
  s->retired = NULL;
  s->capretired = 0;
}

void bc_snap_break_all(bc_store *s) { break_all(s, BC_BROKEN_RELOAD); }
