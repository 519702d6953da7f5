/*
** versions.h -- versions.c's interface: the versions open snapshots need
** kept (pre-images in the snapshot groups, retired files), and the hook
** every logical change of the keydir goes through (bc_snap_change).
*/
#ifndef BC_VERSIONS_H
#define BC_VERSIONS_H

#include "bitcask.h"
#include "files.h"
#include "keydir.h"
#include "store.h"

#include <stddef.h>
#include <stdint.h>

/* The snapshots opened at one epoch, and the versions they need that the
** keydir no longer has (versions.c saves them, snapshot.c reads them). */
typedef struct bc_sgroup bc_sgroup;
struct bc_sgroup {
  uint64_t epoch;      /* s->epoch when it was created */
  uint64_t serial;     /* s->snap_serial it got (1, 2, ...) */
  uint64_t count;      /* live keys at that epoch */
  uint32_t nref;       /* bc_snapshot handles on it */
  int ov_init;         /* ov is initialised (at the first saved version) */
  int broken;          /* BC_BROKEN_*: it cannot serve its state; reads fail */
  bc_keydir ov;        /* pre-images: key -> its entry at the epoch, or a
                       ** deleted entry when it was absent */
  bc_sgroup *older, *newer;
};

/* Why a group is broken (bc_sgroup.broken). */
enum { BC_BROKEN_NONE = 0, BC_BROKEN_NOMEM, BC_BROKEN_UNDONE, BC_BROKEN_FILE,
       BC_BROKEN_RELOAD };

/* Save, in every open snapshot group that has no version of key yet, the
** key's state before a logical change: old (the live entry about to
** change), or NULL when the key is absent.  Called before the keydir
** changes; a group that cannot get the memory is marked broken (its reads
** then fail with BC_NOMEM) -- a writer never fails for a reader. */
void bc_snap_save(bc_store *s, const void *key, size_t klen, const bc_entry *old);
/* The hook every logical change of the keydir goes through. */
static inline void bc_snap_change(bc_store *s, const void *key, size_t klen,
                                  const bc_entry *old) {
  s->epoch++;
  if (s->snap_newest) bc_snap_save(s, key, klen, old);
}
/* Failed standalone writes are undone (active.c), the oldest of them made
** at epoch `first` (bc_undo.epoch): the epoch moves on, and every open
** group opened since (g->epoch >= first) saw writes whose records never
** reached the file: it is broken (reads fail with BC_IOERR).  Groups
** opened before saved the keys' committed versions and go on. */
void bc_snap_undo(bc_store *s, uint64_t first);
/* A read-only store rebuilds its keydir while snapshots are open (the
** writer aborted a transaction it had applied): they cannot serve. */
void bc_snap_break_all(bc_store *s);
/* Merge: file `id` leaves s->files.  With no snapshot open it is removed
** (bc_file_remove); else it moves to s->retired, readable (mapped, or its
** descriptor held outside the cache) until the snapshots that may read it
** close. */
void bc_file_retire(bc_store *s, uint32_t id);
/* Free every group and retired file (bc_close). */
void bc_snap_free_all(bc_store *s);
/* Release the retired files no open group may read: those retired before
** the oldest open group's serial oldest_serial was given (0: no group is
** open, release them all). */
void bc_retired_release(bc_store *s, uint64_t oldest_serial);

#endif /* BC_VERSIONS_H */
