/*
** store.h -- struct bc_store, the state of an open store, its fields
** grouped by the file that owns them (the one that keeps their
** invariants; others may read them).
**
** Locking: every public function takes s->mu for its whole duration; every
** private function of the engine expects the caller to hold it (or to own
** the store exclusively, as bc_open does before publishing it).
*/
#ifndef BC_STORE_H
#define BC_STORE_H

#include "bitcask.h"
#include "hint.h"
#include "keydir.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct bc_file bc_file;     /* files.h */
typedef struct bc_fdslot bc_fdslot; /* files.h */
typedef struct bc_undo bc_undo;     /* writer.h */
typedef struct bc_sgroup bc_sgroup; /* versions.h */
typedef struct bc_follow bc_follow; /* follow.h */

struct bc_store {
  /* The settings (store.c: bc_open), fixed while the store is open. */
  char *dir;                /* owned copy of bc_open's dir */
  bc_io io;                 /* copy of the table in use */
  int use_mmap;             /* POSIX I/O (no bc_options.io): reads of
                            ** immutable files go through a mapping */
  uint64_t max_file_size;
  bc_sync_mode sync;
  int read_only;
  pthread_mutex_t mu;
  char err[640];            /* the last failure's message (error.c) */

  /* Which process may write (lock.c). */
  int lock_fd;              /* LOCK, -1 when read-only (or closed in a
                            ** child process by bc_lock_close_inherited) */
  pid_t owner_pid;          /* the process that opened the store: only it
                            ** writes (lock.c, "Processes") */

  /* The keydir (keydir.c, keytree.c). */
  bc_keydir kd;

  /* The data files and their descriptor cache (files.c). */
  bc_file *files;           /* sorted by id; owned */
  size_t nfiles, capfiles;
  uint32_t max_open_files;  /* the descriptor cache's limit (>= 1) */
  struct {
    bc_fdslot *slots;       /* cap of them (grown up to max_open_files);
                            ** owned */
    uint32_t cap, n;        /* slots allocated, descriptors cached */
    uint32_t head, tail, unused; /* most, least recently used; the list
                            ** of free slots; BC_FDC_NIL when none */
  } fdc;                    /* the descriptor cache */

  /* The writer (active.c): the active file, its buffer, undo, sync. */
  uint32_t active_id;       /* 0 when read-only */
  uint32_t next_file_id;
  uint64_t next_seq;
  unsigned char *wbuf;      /* write buffer of the active file; owned */
  size_t wlen, wcap;        /* bytes buffered at offset active->size */
  bc_undo *undo;            /* one per buffered record; owned */
  size_t nundo, capundo;
  int need_fsync;           /* the active file has unsynced bytes */
  uint64_t active_synced;   /* bytes of the active file known durable: its
                            ** size when an fsync of it last returned (0
                            ** when never); the claim of the next COMMIT */
  int need_dirsync;         /* the directory has unsynced entries */
  uint64_t last_fsync_ms;
  uint64_t commit_size;     /* active file size at the last standalone
                            ** commit point (active.c) */
  int dirty_tail;           /* cutting a failed write off the active file
                            ** failed: retried before any write */
  uint64_t cutbacks;        /* times the active file was cut back to the
                            ** commit point, dropping what was buffered or
                            ** written since: a transaction open across one
                            ** lost records (txn.h bc_txn_is_doomed) */
  bc_hintbuf ahint;         /* the active file's hint, one entry per record as
                            ** it is appended (active.c), written when the
                            ** file is sealed; owned */
  uint32_t ahint_id;        /* the file ahint describes; 0: none (a sealed
                            ** file then gets its hint by a walk) */
  uint64_t ahint_end;       /* offset just past the last record in ahint */
  int ahint_tmp;            /* 1: <ahint_id>.hint.tmp exists, open as
                            ** ahint_fd, holding the ahint_spilled bytes of
                            ** entries (CRC-32 ahint_crc) that came before
                            ** the ones in ahint (active.c) */
  int ahint_fd;
  uint64_t ahint_spilled;
  uint32_t ahint_crc;
  pthread_t syncer;         /* BC_SYNC_NORMAL's background fsync thread */
  pthread_cond_t syncer_cv; /* wakes it to stop */
  int syncer_running, syncer_stop;
  uint64_t fsyncs;          /* bc_stats: fsyncs made (io.c counts them) */

  /* Transactions (txn.c). */
  bc_txn *txn;              /* the open transaction, or NULL; owned by its
                            ** caller (bc_close frees it) */
  uint64_t commits;         /* bc_stats: transactions committed */
  int poisoned;             /* a failed commit could not be undone on disk:
                            ** writes refuse until the store is reopened */
  int hold_rotation;        /* append to the active file even if full: an
                            ** abort must follow its COMMIT in the same file */

  /* Merges (merge.c). */
  uint64_t merges;          /* bc_stats: merges done */
  int merge_pending;        /* MERGE committed but its steps 4-6 failed */

  /* What recovery and replay found (recovery.c, replay.c). */
  uint64_t corrupt, truncated_bytes; /* bc_stats: damage counted, bytes
                            ** of unsynced tails cut */
  int recovery_pending;     /* read-only: the last open or rebuild found
                            ** work only a writer's open does (a merge to
                            ** finish, leftovers, a torn or header-less
                            ** tail): bc_stats.recovery_pending */

  /* A read-only store following its writer (follow.c). */
  bc_follow *follow;        /* read-only: what bc_refresh goes on from */
  uint32_t follow_tail;     /* read-only: the file the writer may still
                            ** append to or cut back (the newest that is
                            ** not a merge output) */
  uint64_t follow_durable;  /* read-only: how far follow_tail is known never
                            ** to be cut back, so that far it is mapped too:
                            ** the highest durability claim of its COMMITs
                            ** (bytes the writer fsync'd), or all of what was
                            ** read when the writer was seen gone */
  uint64_t follow_checked;  /* follow_tail's size when bc_lock_writer_gone
                            ** was last asked (once per size) */
  uint64_t kd_gen;          /* moves on when a read-only store's keydir is
                            ** rebuilt (fold.c: a pinned bitmap dies) */

  /* Read snapshots (versions.c, snapshot.c). */
  uint64_t epoch;           /* logical changes of the keydir so far: moves
                            ** on with every key a commit (or a refresh)
                            ** changes, so equal epochs mean equal states */
  bc_sgroup *snap_oldest, *snap_newest; /* open snapshot groups, by age */
  uint64_t snap_serial;     /* serial of the newest group created */
  uint64_t snap_handles;    /* open bc_snapshot handles */
  bc_file *retired;         /* merge inputs still readable by an open
                            ** snapshot (unlinked on disk); owned */
  size_t nretired, capretired;
};

#endif /* BC_STORE_H */
