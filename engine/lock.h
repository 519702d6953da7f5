/*
** lock.h -- lock.c's interface: the LOCK file and which process may write.
*/
#ifndef BC_LOCK_H
#define BC_LOCK_H

#include "bitcask.h"

/* Open LOCK (created if missing), take flock(LOCK_EX | LOCK_NB) and write
** this process's pid into it (decimal, newline); s->lock_fd then holds the
** descriptor.  BC_LOCKED ("is locked by pid N", read from LOCK) when another
** process holds it, BC_IOERR. */
bc_status bc_lock_acquire(bc_store *s);
/* Close LOCK, which drops the flock unless another process (the other side
** of a fork) still holds a descriptor of the same open file; the pid is left
** in the file.  A no-op when s holds no LOCK descriptor. */
void bc_lock_release(bc_store *s);
/* 1 when the process LOCK names has exited (or LOCK was never written):
** then every record in the store's files was written by writers that are
** gone -- a writer names itself in LOCK before it appends anything -- and
** none of them will be cut back (a new writer cuts only a torn tail past
** every complete record, or its own failed writes).  0 when it may be
** alive, or LOCK is being written.  An open, a read, a kill(pid, 0). */
int bc_lock_writer_gone(bc_store *s);
/* 1 when the calling process is not the one that opened s (a child after
** fork()).  One getpid() call: for write paths, not for reads. */
int bc_foreign(const bc_store *s);
/* In a child of fork() (bc_foreign): close the child's copy of the LOCK
** descriptor, with close(2) alone (it runs in pthread_atfork child
** handlers too); a no-op in the opening process or when there is none.
** bc_fork_child's work; no lock taken. */
void bc_lock_close_inherited(bc_store *s);
/* BC_INVALID with the message that says so. */
bc_status bc_foreign_error(bc_store *s);

#endif /* BC_LOCK_H */
