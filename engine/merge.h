/*
** merge.h -- merge.c's interface: running a merge, redoing an interrupted
** one, reading its MERGE manifest.
*/
#ifndef BC_MERGE_H
#define BC_MERGE_H

#include "bitcask.h"
#include "format.h"

#include <stdint.h>

/* bc_merge's work, with s->mu held (docs/FORMAT.md "Merge"): redo a merge
** left pending, seal the active file if it holds records (no merge when
** its records are not all newer than the inputs'), rewrite the live
** records of every sealed file that is not damaged into new files, commit
** (MERGE) and install.  *reclaimed: bytes of the inputs' data and hint files minus the
** bytes of the outputs' (0 if they grew).  BC_OK, BC_IOERR/BC_FULL,
** BC_NOMEM, or BC_CORRUPT when a live record fails its CRC and leaving its
** file out (marked damaged) does not get the merge through; with the
** message. */
bc_status bc_merge_run(bc_store *s, uint64_t *reclaimed);
/* Redo steps 4-6 of the merge in `m` (idempotent). */
bc_status bc_merge_redo(bc_store *s, const bc_manifest *m);
/* Read MERGE: 1 found (m filled; free it with bc_manifest_free), 0 none
** (*st BC_OK), -1 unreadable or damaged (*st: BC_IOERR, BC_CORRUPT or
** BC_NOMEM, with its message). */
int bc_manifest_read(bc_store *s, bc_manifest *m, bc_status *st);

#endif /* BC_MERGE_H */
