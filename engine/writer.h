/*
** writer.h -- active.c's interface: the write path (appending to the active
** file through its write buffer, undo, rotation), the sync policy and
** sync=normal's syncer thread.
*/
#ifndef BC_WRITER_H
#define BC_WRITER_H

#include "bitcask.h"
#include "error.h"
#include "format.h"
#include "keydir.h"

#include <stddef.h>
#include <stdint.h>

/* Undo record of one buffered write (active.c). */
typedef struct bc_undo {
  bc_entry *entry;     /* the key's entry; for a tombstone it is unlinked and
                       ** owned by this undo record until the flush succeeds */
  int created;         /* the put created the entry */
  int tombstone;
  bc_entry_saved old;  /* the entry before the write */
  uint64_t epoch;      /* s->epoch with this write made (versions.c
                       ** bc_snap_undo) */
} bc_undo;

/* BC_INVALID with a message if klen or vlen is over its limit, else BC_OK:
** the check of every write (bc_put, bc_delete, a transaction's).  Inline:
** two compares on bc_put's path. */
static inline bc_status bc_check_sizes(bc_store *s, size_t klen, size_t vlen) {
  if (klen > BC_MAX_KEY_SIZE)
    return bc_seterr(s, BC_INVALID, "key of %zu bytes exceeds the limit of %u",
                     klen, BC_MAX_KEY_SIZE);
  if (vlen > BC_MAX_VALUE_SIZE)
    return bc_seterr(s, BC_INVALID, "value of %zu bytes exceeds the limit of %u",
                     vlen, BC_MAX_VALUE_SIZE);
  return BC_OK;
}
/* Append one record (r->type, meta, txn, klen, vlen; the seq is assigned
** here and returned in r->seq) to the active file, rotating first if it is
** full.  *file_id and *off receive where it went.  Changes no keydir.  A
** failure leaves no record (and, if buffered records were lost, dooms the
** open transaction and reverts the standalone ones). */
bc_status bc_append_record(bc_store *s, bc_rec *r, const void *key,
                           const void *value, uint32_t *file_id, uint64_t *off);
/* A standalone put or tombstone: bc_append_record + keydir update + undo. */
bc_status bc_append(bc_store *s, uint8_t type, uint8_t meta, const void *key,
                    size_t klen, const void *value, size_t vlen);
/* Write the write buffer (s->wlen bytes) to the end of the active file, no
** fsync; outside sync=full that is a commit point.  Fails first, writing
** nothing, while an earlier failed write could not be cut off the file
** (bc_check_tail).  On a failed write the file is cut back to the last
** commit point, the standalone writes since are undone and the open
** transaction is doomed: BC_IOERR (BC_FULL when the disk is) with the
** message. */
bc_status bc_flush(bc_store *s);
/* Retry cutting a failed write off the active file; BC_IOERR while it fails. */
bc_status bc_check_tail(bc_store *s);
/* bc_flush, then fsync the active file as s->sync asks: always under
** sync=full or with force, under sync=normal only when no syncer thread runs
** and BC_NORMAL_SYNC_MS have passed, never under sync=off (and never on a
** read-only store), and the directory, when it has unsynced entries, under
** the same condition.
** Updates s->active_synced.  BC_IOERR on a failed fsync (under sync=full,
** outside a transaction, the standalone writes since the commit point are
** then undone; a transaction handles its own failure). */
bc_status bc_sync_active(bc_store *s, int force);
/* Seal the active file and start the next: flush, fsync (unless sync=off),
** write its hint (a failure there costs only a walk at the next open) and
** bc_active_create.  Errors: bc_flush's; BC_IOERR when the fsync fails
** (under sync=full the writes since the commit point are then cut back);
** bc_active_create's, and then the old file stays the active one. */
bc_status bc_rotate(bc_store *s);
/* Create data file s->next_file_id with its header (fsync'd unless
** sync=off) and make it the active file.  BC_IOERR (ids exhausted, or the
** create failed; BC_FULL when the disk is full), BC_NOMEM. */
bc_status bc_active_create(bc_store *s);
/* Forget the active file's in-memory hint and remove what of it was spilled
** to disk (bc_close). */
void bc_ahint_free(bc_store *s);
/* Forget the standalone undo log once its records reached the file (a commit
** point), freeing the entries tombstones unlinked. */
void bc_undo_clear(bc_store *s);
/* sync=normal's background thread, which fsyncs the active file every
** BC_NORMAL_SYNC_MS / 2 while it holds unsynced bytes.  bc_syncer_start
** leaves s->syncer_running 0 when the thread cannot be made (bc_sync_active
** then fsyncs on commits itself); bc_syncer_stop is a no-op without one.
** Neither is called with s->mu held: stop takes it to wake the thread. */
void bc_syncer_start(bc_store *s);
void bc_syncer_stop(bc_store *s);

#endif /* BC_WRITER_H */
