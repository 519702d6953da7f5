/*
** snapshot.h -- snapshot.c's interface for the engine: a snapshot's view,
** for the iterators and the fold to read through (iter.c and fold.c come
** after snapshot.c in layer 6), and the snapshot figures of bc_stats.
*/
#ifndef BC_SNAPSHOT_H
#define BC_SNAPSHOT_H

#include "bitcask.h"
#include "keydir.h"

#include <stddef.h>

/* A snapshot's view, under s->mu: its overlay of pre-images (NULL when it
** has none), the entry of key in it (NULL: absent at the snapshot), and
** BC_OK or, when the snapshot is broken, the error that says why (BC_NOMEM,
** BC_IOERR or BC_BUSY, with its message). */
bc_keydir *bc_snap_overlay(bc_snapshot *sn);
const bc_entry *bc_snap_entry(bc_snapshot *sn, const void *key, size_t klen);
bc_status bc_snap_check(const bc_snapshot *sn);
/* The store sn reads (fixed: no lock needed). */
bc_store *bc_snap_store(const bc_snapshot *sn);
/* The snapshot figures of bc_stats. */
void bc_snap_stats(bc_store *s, bc_stats *out);

#endif /* BC_SNAPSHOT_H */
