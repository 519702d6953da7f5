/*
** follow.h -- follow.c's interface: a read-only store following its writer.
*/
#ifndef BC_FOLLOW_H
#define BC_FOLLOW_H

#include "bitcask.h"

/* A read-only store's recovery state kept between refreshes (follow.c). */
typedef struct bc_follow bc_follow;

/* A read-only store's open: bc_recover, keeping its state in s->follow. */
bc_status bc_follow_open(bc_store *s);
/* bc_refresh with s->mu held.  While snapshots are open a refresh that
** would rebuild the keydir because the writer merged is put off: BC_OK,
** the store stays as it was, and a later refresh with none open catches
** up.  One that must rebuild it (an abort of a transaction already
** applied) does, and breaks the open snapshots (bc_snap_break_all). */
bc_status bc_refresh_locked(bc_store *s);
void bc_follow_free(bc_store *s);

#endif /* BC_FOLLOW_H */
