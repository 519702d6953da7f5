/*
** internal.h -- every private header of the engine, for the tests (which
** reach the record encoder, the keydir and the store's state directly).
** Engine files include the headers they use, not this one.  Nothing here is
** part of the public contract (include/bitcask.h).
**
** Map of the engine, one concept per file, by layer (a file calls only
** files of its own layer listed before it, or of lower layers):
**  0 foundation, no store state beyond its error buffer and directory name
**   io.c        the default POSIX bc_io, write-all/read-all, fsync (io.h)
**   error.c     status names and the store's error message (error.h)
**   record.c    the on-disk format: encode/decode of every header, record,
**               hint entry and the MERGE manifest (format.h; docs/FORMAT.md)
**   layout.c    file names and paths, name parsing, the directory listing
**               (layout.h)
**   keydir.c    the in-memory index (key -> latest record): arena + hash
**   keytree.c   the keydir's ordered index (B+tree of refs in key order)
**               (both keydir.h)
**  1 file-level
**   files.c     the table of open data files, their descriptor cache,
**               live-byte accounting (files.h)
**   lock.c      the LOCK file (flock + pid); which process may write
**               (fork: bc_foreign) (lock.h)
**   marker.c    the BITCASK marker file (marker.h)
**   owners.c    the OWNERS file, kept for the caller (never interpreted;
**               its functions are public)
**   datafile.c  data files: create, read one record, walk records
**               (datafile.h)
**   hint.c      hint files: build, write, load (hint.h)
**  2 versions.c what open snapshots need kept: the pre-images changes save
**               for them, the files a merge retires while they may read them
**               (versions.h)
**  3 active.c   the writer: write buffer, undo on failure, rotation, the
**               sync policy and sync=normal's syncer thread (writer.h)
**  4 replay.c   applying a stream of records to the keydir (recovery and
**               the follower): transactions, damage, the tail's claims
**               (replay.h)
**  5 merge.c    compaction and its crash-safe install / redo (merge.h)
**   recovery.c  what bc_open does to rebuild the keydir, step by step
**               (recovery.h)
**   follow.c    a read-only store following its writer (follow.h)
**  6 txn.c      transactions: overlay keydir, savepoints, commit (txn.h)
**   snapshot.c  read snapshots: bc_snapshot_open/get/refresh/close, and
**               a snapshot's view for the iterators and the fold
**               (snapshot.h)
**   iter.c      ordered iterators (ranges, in a store's, a txn's or a
**               snapshot's view); the step the fold's fallback takes
**               (iter.h)
**   fold.c      the fold: every live key once, in on-disk order
**  7 store.c    the public API: open/close/get/put/delete/sync/stats/destroy
**
** Public functions (include/bitcask.h) are entry points only: no engine
** code calls one (tools/check_layers.py lists the two pure exceptions,
** bc_key_cmp and bc_options_init); a public function and an engine caller
** share an internal variant instead.
**
** struct bc_store, the state of an open store, is in store.h, its fields
** grouped by the file that owns them.
**
** Locking: every public function takes s->mu for its whole duration; every
** private function expects the caller to hold it (or to own the store
** exclusively, as bc_open does before publishing it).
*/
#ifndef BC_INTERNAL_H
#define BC_INTERNAL_H

#include "bitcask.h"
#include "datafile.h"
#include "error.h"
#include "files.h"
#include "follow.h"
#include "format.h"
#include "hint.h"
#include "io.h"
#include "iter.h"
#include "keydir.h"
#include "layout.h"
#include "lock.h"
#include "marker.h"
#include "merge.h"
#include "recovery.h"
#include "replay.h"
#include "snapshot.h"
#include "store.h"
#include "txn.h"
#include "versions.h"
#include "writer.h"

#include <limits.h>

#endif /* BC_INTERNAL_H */
