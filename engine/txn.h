/*
** txn.h -- txn.c's interface: an open transaction (struct bc_txn) and what
** other files do to it.
*/
#ifndef BC_TXN_H
#define BC_TXN_H

#include "bitcask.h"
#include "keydir.h"
#include "store.h"

#include <stddef.h>
#include <stdint.h>

/* Undo entry of a transaction's write made under a savepoint (txn.c). */
typedef struct bc_txn_undo {
  bc_entry *entry;     /* the overlay entry the write changed */
  int created;         /* the write created it: undo removes it */
  bc_entry_saved old;  /* the entry before the write */
} bc_txn_undo;

/* An open savepoint: where to roll back to. */
typedef struct bc_txn_mark {
  size_t nundo;        /* undo entries before it */
  uint64_t seq;        /* last seq written before it (ROLLBACK_TO's S) */
  uint64_t nrec;       /* records of the txn before it */
} bc_txn_mark;

struct bc_txn {
  bc_store *s;
  uint64_t id;         /* the txn field of its records: the seq its first
                       ** record gets (unique for the store's lifetime) */
  bc_keydir ov;        /* overlay: key -> its latest record in this txn; a
                       ** "deleted" entry is a key this txn deleted */
  bc_txn_undo *undo;   /* owned */
  size_t nundo, capundo;
  bc_txn_mark *marks;  /* owned; marks[d-1] is savepoint depth d */
  size_t nmarks, capmarks;
  uint64_t nrec;       /* records written (so far, not rolled back) */
  int doomed;          /* a write of it failed here (txn.c): rollback only */
  uint64_t cutbacks;   /* s->cutbacks at the begin: when the writer has cut
                       ** the active file back since, records of t were lost
                       ** and t is doomed too (bc_txn_is_doomed) */
  int prepared;        /* bc_txn_prepare succeeded: no more writes */
  int committed;       /* its COMMIT is in the file (and not voided) */
  uint32_t commit_file; /* where that COMMIT is */
  uint64_t commit_off;
};

/* t can only roll back: a write of it failed, or the writer cut records of
** it off (active.c back_to_commit_point) since it began. */
static inline int bc_txn_is_doomed(const bc_txn *t) {
  return t->doomed || t->cutbacks != t->s->cutbacks;
}

/* Free t's overlay and undo log and detach it from the store. */
void bc_txn_free(bc_txn *t);
/* (txn.c) The error of a call on a doomed or prepared transaction. */
bc_status bc_txn_doomed(bc_txn *t);

#endif /* BC_TXN_H */
