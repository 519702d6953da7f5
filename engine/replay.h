/*
** replay.h -- replay.c's interface: applying a stream of records to s->kd
** (recovery and the follower).
*/
#ifndef BC_REPLAY_H
#define BC_REPLAY_H

#include "bitcask.h"
#include "files.h"
#include "format.h"

#include <stddef.h>
#include <stdint.h>

/* A transaction's records wait (pending) for its COMMIT; a
** damaged record is held until a valid one follows it. */
typedef struct bc_pending bc_pending;
typedef struct bc_txspan bc_txspan;
typedef struct bc_replay {
  bc_store *s;
  bc_txspan *tx;  /* owned; one per transaction with pending records */
  size_t ntx, captx;
  bc_file *f;     /* file being read */
  bc_pending *p;  /* owned, in read order */
  size_t np, cap;
  bc_pending *held; /* damaged records of f not yet known to be followed by
                  ** a valid one (in the tail file they may be a torn tail);
                  ** owned, txn/type as read (untrusted) */
  size_t nheld, capheld;
  int has_commit;      /* a COMMIT was read and waits for the next record,
                       ** which may void it (an abort: see txn.c) */
  uint64_t commit_txn, commit_count;
  uint32_t commit_file; /* the data file that COMMIT is in */
  uint64_t max_seq;
  int follow;          /* bc_refresh: every record read is newer than the
                       ** keydir, so a tombstone just removes its key */
  uint64_t settled_txn; /* bc_refresh: a COMMIT applied at the end of the
                       ** last read; its abort, if it comes next, means the
                       ** keydir must be rebuilt */
  int reload;          /* ... and it came */
  uint64_t deleted;    /* deleted markers made (an upper bound of those left) */
  /* Reading the tail file (bc_replay_tail). */
  uint32_t claim_file; /* the file `claim` is about (a follower's tail) */
  uint64_t claim;      /* highest durability claim of a COMMIT read from it */
  int probing;         /* past its first damage: only claims are noted */
  uint64_t damage_off; /* ... which is at this offset */
  uint64_t probe_claim; /* highest claim found while probing */
  uint64_t durable;    /* second pass: D */
  int cut;             /* second pass: stopped at damage at or after D ... */
  uint64_t cut_off;    /* ... at this offset */
} bc_replay;
/* A bc_rec_cb (arg: the bc_replay): one record of rc->f, from a walk or a
** hint. */
bc_status bc_replay_record(void *arg, const bc_recinfo *ri);
/* The held damaged records are followed by a valid one (or end a file that
** is not the tail): corruption, each standing for its key as a record that
** reads BC_CORRUPT. */
bc_status bc_replay_release_held(bc_replay *rc);
/* The COMMIT read last is not followed by its abort: apply it. */
bc_status bc_replay_settle(bc_replay *rc);
/* Read the records of the tail file f in [from, size) (docs/FORMAT.md
** Recovery 3).  *end receives where its unsynced tail starts (size if it
** has none): the first damaged or cut-short record at or after D, the
** highest durability claim of a valid COMMIT in f.  rc->claim keeps the
** highest claim read, for a follower's next read of the same file. */
bc_status bc_replay_tail(bc_replay *rc, bc_file *f, uint64_t from, uint64_t size,
                         uint64_t *end);
/* The records of any other file f in [from, size), walked (bc_datafile_walk's
** *end and *bad) through bc_replay_record; the caller releases what is held
** after them. */
bc_status bc_replay_walk(bc_replay *rc, bc_file *f, uint64_t from, uint64_t size,
                         uint64_t *end, int *bad);
/* Free what rc holds (pending and held records); rc is empty after. */
void bc_replay_free(bc_replay *rc);
/* Mark damaged (BC_DAMAGE_LINKED) every file sharing a transaction with a
** damaged one, until none is left: a transaction's records in a damaged
** file need its COMMIT and ROLLBACK_TO records, wherever they are, to stay
** (docs/FORMAT.md "Damaged files"). */
void bc_damage_spread(bc_store *s);

#endif /* BC_REPLAY_H */
