/*
** merge.h -- merge.c's interface: running a merge, redoing an interrupted
** one, reading its MERGE manifest.
*/
#ifndef BC_MERGE_H
#define BC_MERGE_H

#include "bitcask.h"
#include "format.h"

#include <stdint.h>

bc_status bc_merge_run(bc_store *s, uint64_t *reclaimed);
/* Redo steps 4-6 of the merge in `m` (idempotent). */
bc_status bc_merge_redo(bc_store *s, const bc_manifest *m);
/* Read MERGE: 1 found (m filled; free it with bc_manifest_free), 0 none
** (*st BC_OK), -1 unreadable or damaged (*st: BC_IOERR, BC_CORRUPT or
** BC_NOMEM, with its message). */
int bc_manifest_read(bc_store *s, bc_manifest *m, bc_status *st);

#endif /* BC_MERGE_H */
