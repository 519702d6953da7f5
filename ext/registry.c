/*
** registry.c -- one open bc_store per store directory per process.
**
** DESIGN.md section 1: "Connections in one process that open the same
** directory share one store."  The engine's writer lock is an flock(2) on the
** store's LOCK file, which a second open of the same directory in the same
** process would fail to take, so every connection of the process must reach
** the store through one bc_store.  This file keeps the list of open stores,
** keyed by the directory's device and inode (so two spellings of one path are
** one store), reference-counted by the vtabs that use them.
**
** Invariants (under `registry_mutex`): every entry has nref >= 1 and an open
** store; a doomed entry (its table was dropped while other connections still
** held it) is never handed out again and is destroyed at its last release.
**
** This is the extension's only process-wide mutable state; the engine has
** none.
*/
#include "bitcask_ext.h"
SQLITE_EXTENSION_INIT3

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t registry_mutex = PTHREAD_MUTEX_INITIALIZER;
static bcx_shared *registry_list; /* guarded by registry_mutex */

int bcx_rc(bc_status st) {
  switch (st) {
  case BC_OK: return SQLITE_OK;
  case BC_NOTFOUND: return SQLITE_NOTFOUND;
  case BC_DONE: return SQLITE_DONE;
  case BC_NOMEM: return SQLITE_NOMEM;
  case BC_IOERR: return SQLITE_IOERR;
  case BC_CORRUPT: return SQLITE_CORRUPT;
  case BC_LOCKED: return SQLITE_BUSY;
  case BC_READONLY: return SQLITE_READONLY;
  case BC_INVALID: return SQLITE_MISUSE;
  case BC_NOTSTORE: return SQLITE_CANTOPEN;
  case BC_VERSION: return SQLITE_CANTOPEN;
  case BC_BUSY: return SQLITE_BUSY;
  case BC_FULL: return SQLITE_FULL;
  case BC_EXISTS: return SQLITE_CONSTRAINT;
  }
  return SQLITE_ERROR;
}

int bcx_shared_open(const char *zTab, const char *path, int create,
                    const bc_options *opt, bcx_shared **out, char **pzErr) {
  struct stat st;
  int rc = SQLITE_OK;
  *out = NULL;
  pthread_mutex_lock(&registry_mutex);
  if (stat(path, &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      *pzErr = sqlite3_mprintf(
          "bitcask table '%s': option dir: '%s' is not a directory", zTab, path);
      rc = SQLITE_CANTOPEN;
      goto done;
    }
    for (bcx_shared *sh = registry_list; sh; sh = sh->next) {
      if (sh->dev == (uint64_t)st.st_dev && sh->ino == (uint64_t)st.st_ino &&
          sh->read_only == (opt->read_only ? 1 : 0)) {
        if (sh->doomed) {
          *pzErr = sqlite3_mprintf(
              "bitcask table '%s': store '%s' was dropped and is still open "
              "in another connection of this process", zTab, path);
          rc = SQLITE_BUSY;
          goto done;
        }
        sh->nref++;
        *out = sh;
        goto done;
      }
    }
  } else if (errno != ENOENT || !create) {
    *pzErr = sqlite3_mprintf("bitcask table '%s': option dir: cannot use '%s': %s",
                             zTab, path, strerror(errno));
    rc = SQLITE_CANTOPEN;
    goto done;
  }

  bcx_shared *sh = calloc(1, sizeof *sh);
  char *copy = strdup(path);
  if (!sh || !copy) {
    free(sh);
    free(copy);
    rc = SQLITE_NOMEM;
    goto done;
  }
  bc_options o = *opt;
  o.create = create;
  char err[512];
  bc_status bst = bc_open(path, &o, &sh->store, err, sizeof err);
  if (bst != BC_OK) {
    *pzErr = sqlite3_mprintf("bitcask table '%s': %s", zTab, err);
    rc = bcx_rc(bst);
    free(sh);
    free(copy);
    goto done;
  }
  if (stat(path, &st) != 0) {
    *pzErr = sqlite3_mprintf("bitcask table '%s': cannot stat '%s': %s", zTab,
                             path, strerror(errno));
    bc_close(sh->store);
    free(sh);
    free(copy);
    rc = SQLITE_CANTOPEN;
    goto done;
  }
  sh->path = copy;
  sh->nref = 1;
  sh->read_only = opt->read_only ? 1 : 0;
  sh->dev = (uint64_t)st.st_dev;
  sh->ino = (uint64_t)st.st_ino;
  sh->next = registry_list;
  registry_list = sh;
  *out = sh;
done:
  pthread_mutex_unlock(&registry_mutex);
  return rc;
}

void bcx_shared_doom(bcx_shared *sh, int remove_dir) {
  pthread_mutex_lock(&registry_mutex);
  sh->doomed = 1;
  sh->remove_dir = remove_dir;
  pthread_mutex_unlock(&registry_mutex);
}

int bcx_shared_release(bcx_shared *sh) {
  int rc = SQLITE_OK;
  if (!sh) return rc;
  pthread_mutex_lock(&registry_mutex);
  if (--sh->nref > 0) {
    pthread_mutex_unlock(&registry_mutex);
    return rc;
  }
  for (bcx_shared **pp = &registry_list; *pp; pp = &(*pp)->next) {
    if (*pp == sh) {
      *pp = sh->next;
      break;
    }
  }
  bc_status st = bc_close(sh->store);
  if (st != BC_OK) rc = bcx_rc(st);
  if (sh->doomed) {
    char err[512];
    st = bc_destroy(sh->path, err, sizeof err);
    if (st != BC_OK) rc = bcx_rc(st);
    if (sh->remove_dir) rmdir(sh->path);
  }
  pthread_mutex_unlock(&registry_mutex);
  free(sh->path);
  free(sh);
  return rc;
}

int bcx_shared_refs(bcx_shared *sh) {
  pthread_mutex_lock(&registry_mutex);
  int n = sh->nref;
  pthread_mutex_unlock(&registry_mutex);
  return n;
}
