/*
** lock.c -- the writer lock: an exclusive flock(2) on the file LOCK, which
** holds the writer's pid as decimal text.
**
** Invariants:
**  - A writable store holds s->lock_fd open with LOCK_EX for its lifetime; the
**    kernel drops the lock when the process dies, so a stale LOCK file never
**    blocks an open (its pid text is only informative).
**  - Each bc_open opens LOCK anew, i.e. a new open file description, so a
**    second open of the same store in the same process is refused too.
**
** Processes.  A flock(2) lock belongs to the open file description, which
** fork() shares: a child holds the parent's LOCK descriptor and so, to the
** kernel, the parent's lock, while its copy of the bc_store describes files
** that the parent goes on appending to.  So a store writes only in the
** process that opened it (s->owner_pid): in any other, every write path
** (bc_put, bc_delete, bc_sync, bc_merge, bc_txn_begin, bc_txn_prepare and
** the flushes under them) fails with BC_INVALID before touching a file, a
** rollback writes no abort record, and bc_close only closes descriptors and
** frees memory -- no flush, fsync, truncate or unlink.  Closing the child's
** copy of the LOCK descriptor (bc_fork_child, or that close) leaves the lock
** with the parent's descriptor; once the parent has closed the store or
** died, the lock is free for anyone.  The POSIX I/O opens every descriptor
** O_CLOEXEC (io.c), so a program exec'd by the writer holds none.
*/
#include "bitcask.h"
#include "error.h"
#include "io.h"
#include "layout.h"
#include "lock.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

bc_status bc_lock_acquire(bc_store *s) {
  char path[PATH_MAX];
  bc_path_name(s, path, BC_FILENAME_LOCK);
  int fd = s->io.open(s->io.ctx, path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return bc_seterr_errno(s, BC_IOERR, errno,
                                     "lock file " BC_FILENAME_LOCK ": open failed");
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    if (e == EWOULDBLOCK) {
      char pid[32];
      ssize_t n = bc_read_all(&s->io, fd, pid, sizeof pid - 1, 0);
      s->io.close(s->io.ctx, fd);
      pid[n > 0 ? n : 0] = 0;
      pid[strcspn(pid, "\r\n")] = 0;
      return bc_seterr(s, BC_LOCKED, "is locked by pid %s",
                       pid[0] ? pid : "(unknown)");
    }
    s->io.close(s->io.ctx, fd);
    return bc_seterr_errno(s, BC_IOERR, e,
                           "lock file " BC_FILENAME_LOCK ": flock failed");
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (s->io.ftruncate(s->io.ctx, fd, 0) != 0 ||
      bc_write_all(&s->io, fd, pid, (size_t)n, 0) != 0) {
    int e = errno;
    s->io.close(s->io.ctx, fd);
    return bc_seterr_errno(s, BC_IOERR, e,
                           "lock file " BC_FILENAME_LOCK ": write failed");
  }
  s->lock_fd = fd;
  return BC_OK;
}

int bc_lock_writer_gone(bc_store *s) {
  char path[PATH_MAX], pid[32];
  bc_path_name(s, path, BC_FILENAME_LOCK);
  int fd = s->io.open(s->io.ctx, path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return errno == ENOENT; /* never written */
  ssize_t n = bc_read_all(&s->io, fd, pid, sizeof pid - 1, 0);
  s->io.close(s->io.ctx, fd);
  if (n <= 0) return 0; /* a writer between its flock and its pid */
  pid[n] = 0;
  char *end;
  long p = strtol(pid, &end, 10);
  if (end == pid || p <= 0 || p == (long)getpid()) return 0;
  return kill((pid_t)p, 0) != 0 && errno == ESRCH;
}

void bc_lock_release(bc_store *s) {
  if (s->lock_fd < 0) return;
  /* Closing drops the flock -- unless another process (the parent of a
  ** fork, or its child) still holds a descriptor of the same open file
  ** description. */
  s->io.close(s->io.ctx, s->lock_fd);
  s->lock_fd = -1;
}

void bc_lock_close_inherited(bc_store *s) {
  if (!s || s->lock_fd < 0 || !bc_foreign(s)) return;
  /* close(2) only: this runs in pthread_atfork child handlers. */
  close(s->lock_fd);
  s->lock_fd = -1;
}

void bc_fork_child(bc_store *s) { bc_lock_close_inherited(s); }

int bc_foreign(const bc_store *s) { return getpid() != s->owner_pid; }

bc_status bc_foreign_error(bc_store *s) {
  return bc_seterr(s, BC_INVALID,
                   "was opened by process %ld and this is process %ld (a child "
                   "made by fork()): only the opening process may write the "
                   "store; open it anew in this process",
                   (long)s->owner_pid, (long)getpid());
}
