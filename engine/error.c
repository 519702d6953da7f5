/*
** error.c -- the engine's error reporting: the names of the status codes,
** and the message a failure leaves in its store (bc_errmsg).
**
** Invariants:
**  - A message always starts "bitcask store '<dir>': " and fits s->err
**    (640 bytes, truncated if longer); it says what failed and, when an
**    errno is known, why (strerror).
**  - Out of space (ENOSPC, EDQUOT) on a BC_IOERR becomes BC_FULL; out of
**    descriptors (EMFILE, ENFILE) is said first, with the limit to change.
**  - Nothing here takes s->mu or touches any store state but s->err.
*/
#include "bitcask.h"
#include "error.h"
#include "store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

const char *bc_status_name(bc_status st) {
  switch (st) {
    case BC_OK: return "BC_OK";
    case BC_NOTFOUND: return "BC_NOTFOUND";
    case BC_DONE: return "BC_DONE";
    case BC_NOMEM: return "BC_NOMEM";
    case BC_IOERR: return "BC_IOERR";
    case BC_CORRUPT: return "BC_CORRUPT";
    case BC_LOCKED: return "BC_LOCKED";
    case BC_READONLY: return "BC_READONLY";
    case BC_INVALID: return "BC_INVALID";
    case BC_NOTSTORE: return "BC_NOTSTORE";
    case BC_VERSION: return "BC_VERSION";
    case BC_BUSY: return "BC_BUSY";
    case BC_FULL: return "BC_FULL";
    case BC_EXISTS: return "BC_EXISTS";
  }
  return "BC_(unknown)";
}

/* Out of descriptors: say so first, with the limit and what to change,
** since what failed (a create, an fsync of the directory, which has to
** open it) is only where it showed. */
static int fd_exhausted(bc_store *s, int errnum, int n) {
  if (errnum == ENFILE)
    return snprintf(s->err + n, sizeof s->err - (size_t)n,
                    "too many open files in the system (ENFILE: the kernel's "
                    "file table is full; lower max_open_files, now %u, or "
                    "raise fs.file-max): ", s->max_open_files);
  struct rlimit rl;
  char lim[32] = "unknown";
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    snprintf(lim, sizeof lim, "%llu", (unsigned long long)rl.rlim_cur);
  return snprintf(s->err + n, sizeof s->err - (size_t)n,
                  "too many open files (the process's limit is %s: raise "
                  "`ulimit -n` or lower max_open_files, now %u): ",
                  lim, s->max_open_files);
}

static bc_status vseterr(bc_store *s, bc_status st, int errnum, const char *fmt,
                         va_list ap) {
  int n = snprintf(s->err, sizeof s->err, "bitcask store '%s': ", s->dir);
  if (n < 0 || (size_t)n >= sizeof s->err) return st;
  if (errnum == EMFILE || errnum == ENFILE) {
    int k = fd_exhausted(s, errnum, n);
    if (k < 0 || (size_t)(n + k) >= sizeof s->err) return st;
    n += k;
    errnum = 0; /* said already */
  }
  int m = vsnprintf(s->err + n, sizeof s->err - (size_t)n, fmt, ap);
  if (m >= 0 && errnum && (size_t)(n + m) < sizeof s->err)
    snprintf(s->err + n + m, sizeof s->err - (size_t)(n + m), ": %s",
             strerror(errnum));
  return st;
}

bc_status bc_seterr(bc_store *s, bc_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vseterr(s, st, 0, fmt, ap);
  va_end(ap);
  return st;
}

bc_status bc_seterr_errno(bc_store *s, bc_status st, int errnum,
                          const char *fmt, ...) {
  if (st == BC_IOERR && (errnum == ENOSPC || errnum == EDQUOT)) st = BC_FULL;
  va_list ap;
  va_start(ap, fmt);
  vseterr(s, st, errnum, fmt, ap);
  va_end(ap);
  return st;
}

void bc_copy_err(char *err, size_t errlen, const char *msg) {
  if (err && errlen) snprintf(err, errlen, "%s", msg);
}
