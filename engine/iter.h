/*
** iter.h -- iter.c's interface for the engine: an ordered iterator made,
** stepped and freed without the public calls' locking, for the fold's
** ordered fallback (fold.c).
*/
#ifndef BC_ITER_H
#define BC_ITER_H

#include "bitcask.h"

#include <stddef.h>

/* A new iterator over s within r (NULL: every key), in sn's view (NULL:
** the committed store, or the view each step is given).  Touches no store
** state: no lock needed.  BC_OK or BC_NOMEM. */
bc_status bc_iter_new(bc_store *s, bc_snapshot *sn, const bc_range *r,
                      bc_iter **out);
/* One step of bc_iter_next_view, under s->mu; when buf is not NULL it also
** reads the value of the entry the step found -- the overlay's, the
** snapshot's or the keydir's version it returned, with no second probe --
** as bc_get does (*value points into buf).  A step of a doomed t that
** reads a value fails as bc_txn_get does (the iterator has moved on). */
bc_status bc_iter_step(bc_iter *it, bc_txn *t, const void **key, size_t *klen,
                       bc_info *info, bc_buf *buf, const void **value);
/* Free it (bc_iter_close).  NULL is a no-op. */
void bc_iter_free(bc_iter *it);

#endif /* BC_ITER_H */
