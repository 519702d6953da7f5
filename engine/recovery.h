/*
** recovery.h -- recovery.c's interface: rebuilding the keydir at open.
*/
#ifndef BC_RECOVERY_H
#define BC_RECOVERY_H

#include "bitcask.h"
#include "replay.h"

/* Rebuild the keydir from the directory (bc_open, and a follower's
** rebuild).  keep (read-only stores; NULL for a writer): on success it
** receives the replay state, for bc_refresh to go on from (free it with
** bc_replay_free); else it is left empty. */
bc_status bc_recover(bc_store *s, bc_replay *keep);

#endif /* BC_RECOVERY_H */
