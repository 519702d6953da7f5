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
*/
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

bc_status bc_lock_acquire(bc_store *s) {
  char path[PATH_MAX];
  bc_path_name(s, path, "LOCK");
  int fd = s->io.open(s->io.ctx, path, O_RDWR | O_CREAT, 0644);
  if (fd < 0) return bc_seterr_errno(s, BC_IOERR, errno, "lock file LOCK: open failed");
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
    return bc_seterr_errno(s, BC_IOERR, e, "lock file LOCK: flock failed");
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (s->io.ftruncate(s->io.ctx, fd, 0) != 0 ||
      bc_write_all(&s->io, fd, pid, (size_t)n, 0) != 0) {
    int e = errno;
    s->io.close(s->io.ctx, fd);
    return bc_seterr_errno(s, BC_IOERR, e, "lock file LOCK: write failed");
  }
  s->lock_fd = fd;
  return BC_OK;
}

void bc_lock_release(bc_store *s) {
  if (s->lock_fd < 0) return;
  s->io.close(s->io.ctx, s->lock_fd); /* closing drops the flock */
  s->lock_fd = -1;
}
