/*
** owners.c -- the OWNERS file: who uses a store (docs/FORMAT.md "Owners").
**
** The engine keeps the file and never interprets it: the caller (the SQLite
** extension) writes text that names the tables using the store, and decides
** from it whether a table may use the store and whether dropping one may
** delete it.
**
** Invariants:
**  - OWNERS is replaced whole: written under OWNERS.tmp, synced (unless
**    BC_SYNC_OFF), renamed over OWNERS, and the directory synced, so a
**    reader -- in any process, with or without the lock -- sees the old
**    text or the new one, never a mix.
**  - Only a writable store in the process that opened it writes the file,
**    so its writer lock serialises every replacement across processes; a
**    read-modify-write is serialised between the threads of that process by
**    the caller.
*/
#include "bitcask.h"
#include "error.h"
#include "io.h"
#include "layout.h"
#include "lock.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Read all of OWNERS from its open descriptor fd into *text (malloc'd,
** NUL-terminated) and *len.  BC_OK; BC_IOERR with errno and *what naming
** the call that failed; BC_CORRUPT (larger than BC_OWNERS_MAX, *size says
** how large); BC_NOMEM. */
static bc_status owners_slurp(const bc_io *io, int fd, char **text, size_t *len,
                              const char **what, long long *size) {
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    *what = "fstat";
    return BC_IOERR;
  }
  *size = (long long)sb.st_size;
  if (sb.st_size > BC_OWNERS_MAX) return BC_CORRUPT;
  char *buf = malloc((size_t)sb.st_size + 1);
  if (!buf) return BC_NOMEM;
  ssize_t n = bc_read_all(io, fd, buf, (size_t)sb.st_size, 0);
  if (n < 0) {
    int e = errno;
    free(buf);
    errno = e;
    *what = "read";
    return BC_IOERR;
  }
  buf[n] = 0;
  *text = buf;
  *len = (size_t)n;
  return BC_OK;
}

bc_status bc_owners_read(bc_store *s, char **text, size_t *len) {
  char path[PATH_MAX];
  *text = NULL;
  *len = 0;
  pthread_mutex_lock(&s->mu);
  bc_path_name(s, path, BC_FILENAME_OWNERS);
  bc_status st = BC_OK;
  int fd = s->io.open(s->io.ctx, path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) {
    if (errno != ENOENT)
      st = bc_seterr_errno(s, BC_IOERR, errno,
                           "owners file " BC_FILENAME_OWNERS ": open failed");
    goto done;
  }
  const char *what = "";
  long long size = 0;
  st = owners_slurp(&s->io, fd, text, len, &what, &size);
  if (st == BC_IOERR)
    st = bc_seterr_errno(s, BC_IOERR, errno,
                         "owners file " BC_FILENAME_OWNERS ": %s failed", what);
  else if (st == BC_CORRUPT)
    st = bc_seterr(s, BC_CORRUPT,
                   "owners file " BC_FILENAME_OWNERS " is %lld bytes, more than "
                   "the %u an owners file may have", size, (unsigned)BC_OWNERS_MAX);
  else if (st == BC_NOMEM)
    st = bc_seterr(s, BC_NOMEM, "out of memory");
  s->io.close(s->io.ctx, fd);
done:
  pthread_mutex_unlock(&s->mu);
  return st;
}

bc_status bc_owners_peek(const char *dir, char **text, size_t *len) {
  char path[PATH_MAX];
  *text = NULL;
  *len = 0;
  if (!dir || snprintf(path, sizeof path,
                       "%s/" BC_FILENAME_OWNERS, dir) >= (int)sizeof path)
    return BC_INVALID;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return BC_OK;
    return errno == ENOSPC || errno == EDQUOT ? BC_FULL : BC_IOERR;
  }
  const char *what = "";
  long long size = 0;
  bc_status st = owners_slurp(&bc_posix_io, fd, text, len, &what, &size);
  int e = st == BC_IOERR ? errno : 0;
  close(fd);
  errno = e;
  return st;
}

bc_status bc_owners_write(bc_store *s, const char *text, size_t len) {
  if (s->read_only) return bc_seterr(s, BC_READONLY, "is open read-only");
  if (bc_foreign(s)) return bc_foreign_error(s);
  if (len > BC_OWNERS_MAX)
    return bc_seterr(s, BC_INVALID, "owners text of %zu bytes exceeds the "
                     "limit of %u", len, (unsigned)BC_OWNERS_MAX);
  char path[PATH_MAX], tmp[PATH_MAX];
  pthread_mutex_lock(&s->mu);
  bc_path_name(s, path, BC_FILENAME_OWNERS);
  bc_path_name(s, tmp, BC_FILENAME_OWNERS_TMP);
  bc_status st = BC_OK;
  int fd = s->io.open(s->io.ctx, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    st = bc_seterr_errno(s, BC_IOERR, errno,
                         "owners file " BC_FILENAME_OWNERS ": create failed");
    goto done;
  }
  if (bc_write_all(&s->io, fd, text, len, 0) != 0 ||
      (s->sync != BC_SYNC_OFF && bc_fsync(s, fd) != 0)) {
    int e = errno;
    s->io.close(s->io.ctx, fd);
    s->io.unlink(s->io.ctx, tmp);
    st = bc_seterr_errno(s, BC_IOERR, e,
                         "owners file " BC_FILENAME_OWNERS ": write failed");
    goto done;
  }
  s->io.close(s->io.ctx, fd);
  if (s->io.rename(s->io.ctx, tmp, path) != 0) {
    int e = errno;
    s->io.unlink(s->io.ctx, tmp);
    st = bc_seterr_errno(s, BC_IOERR, e,
                         "owners file " BC_FILENAME_OWNERS ": rename failed");
    goto done;
  }
  if (s->sync != BC_SYNC_OFF && bc_fsync_store_dir(s) != 0)
    st = bc_seterr_errno(s, BC_IOERR, errno, "fsync of the directory failed");
done:
  pthread_mutex_unlock(&s->mu);
  return st;
}
