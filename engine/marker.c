/*
** marker.c -- the BITCASK marker file: says a directory is a store and
** whether the engine created the directory (docs/FORMAT.md "Marker").
**
** Invariants:
**  - The marker is written once, when a store is created, before any other
**    file of the store; it is never rewritten.
**  - A marker whose format is newer than BC_FORMAT_VERSION is BC_VERSION; one
**    that does not parse is BC_CORRUPT.
*/
#include "bitcask.h"
#include "error.h"
#include "io.h"
#include "layout.h"
#include "marker.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARKER_LINE1 "bitcask-sqlite store\n"

int bc_marker_parse(const char *text, size_t len, int *version,
                    int *created_dir) {
  char buf[128];
  if (len >= sizeof buf) return -1;
  memcpy(buf, text, len);
  buf[len] = 0;
  size_t l1 = strlen(MARKER_LINE1);
  if (strncmp(buf, MARKER_LINE1, l1) != 0) return -1;
  int v = 0, c = -1, used = 0;
  if (sscanf(buf + l1, "format %d\ncreated-dir %d\n%n", &v, &c, &used) != 2)
    return -1;
  if (v < 1 || (c != 0 && c != 1) || buf[l1 + (size_t)used] != 0) return -1;
  *version = v;
  *created_dir = c;
  return 0;
}

bc_status bc_marker_read(bc_store *s, int *found, int *created_dir) {
  char path[PATH_MAX];
  bc_path_name(s, path, BC_FILENAME_MARKER);
  *found = 0;
  int fd = s->io.open(s->io.ctx, path, O_RDONLY, 0);
  if (fd < 0) {
    if (errno == ENOENT) return BC_OK;
    return bc_seterr_errno(s, BC_IOERR, errno,
                           "marker file " BC_FILENAME_MARKER ": open failed");
  }
  char text[128];
  ssize_t n = bc_read_all(&s->io, fd, text, sizeof text, 0);
  int e = errno;
  s->io.close(s->io.ctx, fd);
  if (n < 0) return bc_seterr_errno(s, BC_IOERR, e,
                                    "marker file " BC_FILENAME_MARKER ": read failed");
  int version;
  if (bc_marker_parse(text, (size_t)n, &version, created_dir) != 0) {
    /* A strict prefix of what this library (or an older one) writes: a
    ** creation cut short. */
    char want[128];
    for (int c = 0; c < 2 * BC_FORMAT_VERSION; c++) {
      int m = snprintf(want, sizeof want, MARKER_LINE1 "format %d\ncreated-dir %d\n",
                       1 + c / 2, c % 2);
      if (n < m && memcmp(text, want, (size_t)n) == 0) {
        *found = 2;
        return BC_OK;
      }
    }
    return bc_seterr(s, BC_CORRUPT, "marker file " BC_FILENAME_MARKER " is damaged");
  }
  if (version > BC_FORMAT_VERSION)
    return bc_seterr(s, BC_VERSION,
                     "format %d is newer than this library's format %d", version,
                     BC_FORMAT_VERSION);
  *found = 1;
  return BC_OK;
}

bc_status bc_marker_write(bc_store *s, int created_dir) {
  char path[PATH_MAX], tmp[PATH_MAX], text[128];
  bc_path_name(s, path, BC_FILENAME_MARKER);
  bc_path_name(s, tmp, BC_FILENAME_MARKER_TMP);
  int n = snprintf(text, sizeof text, MARKER_LINE1 "format %d\ncreated-dir %d\n",
                   BC_FORMAT_VERSION, created_dir ? 1 : 0);
  /* Written whole under a temporary name, then renamed: a crash or a failed
  ** write never leaves a partial BITCASK behind. */
  int fd = s->io.open(s->io.ctx, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return bc_seterr_errno(s, BC_IOERR, errno,
                           "marker file " BC_FILENAME_MARKER ": create failed");
  if (bc_write_all(&s->io, fd, text, (size_t)n, 0) != 0 ||
      (s->sync != BC_SYNC_OFF && bc_fsync(s, fd) != 0)) {
    int e = errno;
    s->io.close(s->io.ctx, fd);
    s->io.unlink(s->io.ctx, tmp);
    return bc_seterr_errno(s, BC_IOERR, e,
                           "marker file " BC_FILENAME_MARKER ": write failed");
  }
  s->io.close(s->io.ctx, fd);
  if (s->io.rename(s->io.ctx, tmp, path) != 0) {
    int e = errno;
    s->io.unlink(s->io.ctx, tmp);
    return bc_seterr_errno(s, BC_IOERR, e,
                           "marker file " BC_FILENAME_MARKER ": rename failed");
  }
  if (s->sync != BC_SYNC_OFF && bc_fsync_store_dir(s) != 0)
    return bc_seterr_errno(s, BC_IOERR, errno, "fsync of the directory failed");
  return BC_OK;
}
