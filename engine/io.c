/*
** io.c -- the I/O layer: the default POSIX bc_io table and the helpers every
** other file uses on top of a bc_io.
**
** Invariants:
**  - Every open, pread, pwrite, fsync, ftruncate, rename, unlink and close of
**    the engine goes through a bc_io (the store's, or bc_posix_io), so tests
**    can count calls and inject faults.  Calls not in bc_io (fstat, flock,
**    mkdir, rmdir, opendir) are made directly.
**  - bc_write_all either writes all n bytes or returns -1 with errno set; a
**    short write is continued, a zero-byte write is reported as EIO.  Bytes it
**    did write before failing are the caller's to truncate away.
**  - bc_posix_io is const: the engine has no global mutable state.
*/
#include "bitcask.h"
#include "io.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int px_open(void *ctx, const char *path, int flags, mode_t mode) {
  (void)ctx;
  int fd;
  do {
    fd = open(path, flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}
static ssize_t px_pread(void *ctx, int fd, void *buf, size_t n, off_t off) {
  (void)ctx;
  return pread(fd, buf, n, off);
}
static ssize_t px_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off) {
  (void)ctx;
  return pwrite(fd, buf, n, off);
}
/* fdatasync: flushes the data and whatever metadata reading it back needs
** (the file size after an append), but not timestamps -- what SQLite's unix
** VFS uses too.  On a directory it makes created, renamed and removed
** entries durable on Linux. */
static int px_fsync(void *ctx, int fd) {
  (void)ctx;
  return fdatasync(fd);
}
static int px_ftruncate(void *ctx, int fd, off_t len) {
  (void)ctx;
  return ftruncate(fd, len);
}
static int px_rename(void *ctx, const char *from, const char *to) {
  (void)ctx;
  return rename(from, to);
}
static int px_unlink(void *ctx, const char *path) {
  (void)ctx;
  return unlink(path);
}
static int px_close(void *ctx, int fd) {
  (void)ctx;
  return close(fd);
}

const bc_io bc_posix_io = {NULL,        px_open,   px_pread,
                           px_pwrite,   px_fsync,  px_ftruncate,
                           px_rename,   px_unlink, px_close};

int bc_write_all(const bc_io *io, int fd, const void *buf, size_t n,
                 uint64_t off) {
  const unsigned char *p = buf;
  while (n > 0) {
    ssize_t w = io->pwrite(io->ctx, fd, p, n, (off_t)off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (w == 0) {
      errno = EIO;
      return -1;
    }
    p += w;
    n -= (size_t)w;
    off += (uint64_t)w;
  }
  return 0;
}

ssize_t bc_read_all(const bc_io *io, int fd, void *buf, size_t n, uint64_t off) {
  unsigned char *p = buf;
  size_t got = 0;
  while (got < n) {
    ssize_t r = io->pread(io->ctx, fd, p + got, n - got, (off_t)(off + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

int bc_fsync_dir(const bc_io *io, const char *dir) {
  int fd = io->open(io->ctx, dir, O_RDONLY | O_DIRECTORY, 0);
  if (fd < 0) return -1;
  int rc = io->fsync(io->ctx, fd);
  int saved = errno;
  io->close(io->ctx, fd);
  errno = saved;
  return rc;
}

int bc_fsync(bc_store *s, int fd) {
  s->fsyncs++;
  return s->io.fsync(s->io.ctx, fd);
}

int bc_fsync_store_dir(bc_store *s) {
  s->fsyncs++;
  return bc_fsync_dir(&s->io, s->dir);
}

/* Grow b to at least n bytes.  0 or -1 (NOMEM, b unchanged). */
int bc_buf_reserve(bc_buf *b, size_t n) {
  if (b->cap >= n && b->data) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < n) cap = cap > SIZE_MAX / 2 ? n : cap * 2;
  unsigned char *p = realloc(b->data, cap);
  if (!p) return -1;
  b->data = p;
  b->cap = cap;
  return 0;
}

uint64_t bc_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
