/*
** registry.c -- one open bc_store per store directory per process.
**
** docs/DESIGN.md section 5.8: "Connections in one process that open the same
** directory share one store."  The engine's writer lock is an flock(2) on the
** store's LOCK file, which a second open of the same directory in the same
** process would fail to take, so every connection of the process must reach
** the store through one bc_store.  This file keeps the list of open stores,
** keyed by the directory's device and inode (so two spellings of one path are
** one store), reference-counted by the vtabs that use them.
**
** Invariants (under `registry_mutex`): every entry has nref >= 1 and an open
** store; an entry marked for destruction (its table was dropped while other
** connections still held it) is never handed out again and is destroyed at
** its last release;
** every entry on the list was opened by this process (registry_pid).
**
** fork().  A child inherits the list, the bc_stores on it and their LOCK
** descriptors; were it to hand them out, each child would append to the
** parent's files as if it were the only writer.  So the list belongs to
** the process that made it: at the first registry call in another process
** (and at once in the child, by a pthread_atfork handler) the inherited
** entries leave the list -- their LOCK descriptors closed, so the parent's
** lock goes with the parent -- and a new connection of the child opens the
** store afresh (SQLITE_BUSY naming the holder's pid while the parent holds
** it).  An inherited entry lives on for the inherited vtabs that hold it:
** they may read through it; the engine refuses its writes, and its last
** release only closes descriptors (never a flush, an unlock or a DROP's
** destroy).
**
** Readers and the writer.  As with a native table, any number of processes
** may read a store and one may write it, and a process takes the writer
** lock only when it first writes: the store of a writable table is opened
** read-only at its first read (`following`: it catches up with the writer
** at each statement, as a readonly=1 table does), and bcx_shared_write --
** at the first write transaction, merge, DROP or RENAME -- opens it for
** writing (SQLITE_BUSY naming the holder while another process has the
** lock; the next write tries again) and puts that store in sh->store.  The
** read-only one (sh->old) stays open for the statements that are reading
** it: each table moves on to the new store when it has no cursor open
** (bcx_shared_moved), and the last one to move closes it.  A connection is
** used by one thread at a time, so a table with no cursor open is in no
** call on the old store.
**
** The registry, its mutex and the fork handlers' once-flag are the
** extension's only process-wide mutable state; the engine has none.
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
static pid_t registry_pid;        /* the process registry_list belongs to;
                                  ** guarded by registry_mutex */
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

/* The list is another process's: forget it (see the top of the file).
** Only getpid and close(2): it runs in the fork child handler. */
static void registry_disown(void) {
  for (bcx_shared *sh = registry_list; sh; sh = sh->next) bc_fork_child(sh->store);
  registry_list = NULL;
  registry_pid = getpid();
}

/* Take the registry for this process. */
static void registry_enter(void) {
  pthread_mutex_lock(&registry_mutex);
  if (registry_pid != getpid()) registry_disown();
}

/* fork(): the child gets a consistent list (no registry call was halfway)
** and a free mutex. */
static void atfork_prepare(void) { pthread_mutex_lock(&registry_mutex); }
static void atfork_parent(void) { pthread_mutex_unlock(&registry_mutex); }
static void atfork_child(void) {
  registry_disown();
  pthread_mutex_init(&registry_mutex, NULL);
}

/* glibc removes a shared object's fork handlers when it is unloaded
** (SQLite dlcloses the extension with its last connection), and a new load
** has a new registry_once, so each loaded copy registers its own once. */
static void registry_register_atfork(void) {
  (void)pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

void bcx_registry_init(void) { pthread_once(&registry_once, registry_register_atfork); }

int bcx_shared_inherited(const bcx_shared *sh) { return sh->pid != getpid(); }

void bcx_registry_lock(void) { registry_enter(); }
void bcx_registry_unlock(void) { pthread_mutex_unlock(&registry_mutex); }

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

/* Make sh the writer's (see the top of the file).  Registry mutex held. */
int bcx_shared_write_locked(bcx_shared *sh, const char *zTab, char **pzErr) {
  if (!sh->following) return SQLITE_OK;
  if (bcx_shared_inherited(sh)) {
    /* A connection inherited from the parent of a fork() never writes
    ** (see "fork()" above): it must not take the lock either. */
    *pzErr = sqlite3_mprintf("bitcask table '%s': this connection was opened by "
                             "process %ld, the parent of this child made by "
                             "fork(): it cannot write here (open a connection "
                             "in the child)", zTab, (long)sh->pid);
    return SQLITE_MISUSE;
  }
  bc_options o = sh->opts;
  o.read_only = 0;
  o.create = 0;
  bc_store *w = NULL;
  char err[512];
  bc_status bst = bc_open(sh->path, &o, &w, err, sizeof err);
  if (bst != BC_OK) {
    *pzErr = bst == BC_LOCKED
                 ? sqlite3_mprintf("bitcask table '%s': cannot write: %s (it "
                                   "reads as a follower meanwhile; a write "
                                   "succeeds once that process is gone)", zTab, err)
                 : sqlite3_mprintf("bitcask table '%s': %s", zTab, err);
    return bcx_rc(bst);
  }
  /* Only one replacement per entry: a writer's store stays the writer's. */
  sh->old = sh->store;
  sh->old_users = sh->nref;
  sh->store = w;
  sh->following = 0;
  sh->gen++;
  return SQLITE_OK;
}

int bcx_shared_write(bcx_shared *sh, const char *zTab, char **pzErr) {
  registry_enter();
  int rc = bcx_shared_write_locked(sh, zTab, pzErr);
  pthread_mutex_unlock(&registry_mutex);
  return rc;
}

/* One table of those that held sh when its store was replaced is done with
** the old one.  Registry mutex held. */
static void old_done_locked(bcx_shared *sh) {
  if (sh->old && --sh->old_users <= 0) {
    (void)bc_close(sh->old); /* read-only: nothing to flush */
    sh->old = NULL;
  }
}

void bcx_shared_moved(bcx_shared *sh, unsigned *gen) {
  if (*gen == sh->gen) return;
  registry_enter();
  *gen = sh->gen;
  old_done_locked(sh);
  pthread_mutex_unlock(&registry_mutex);
}

/* The registry's entry for the directory whose identity is *st, opened
** with the same read_only: shared (made the writer's first when the caller
** writes or creates) into *out.  SQLITE_OK also when there is none (*out
** stays NULL); SQLITE_BUSY when it is being dropped; the error of
** bcx_shared_write_locked.  Registry mutex held. */
static int shared_find_locked(const char *zTab, const char *path, const struct stat *st,
                              int write, const bc_options *opt, bcx_shared **out,
                              char **pzErr) {
  for (bcx_shared *sh = registry_list; sh; sh = sh->next) {
    if (sh->dev != (uint64_t)st->st_dev || sh->ino != (uint64_t)st->st_ino ||
        sh->read_only != (opt->read_only ? 1 : 0))
      continue;
    if (sh->destroy) {
      *pzErr = sqlite3_mprintf(
          "bitcask table '%s': store '%s' was dropped and is still open "
          "in another connection of this process", zTab, path);
      return SQLITE_BUSY;
    }
    int rc = write ? bcx_shared_write_locked(sh, zTab, pzErr) : SQLITE_OK;
    if (rc != SQLITE_OK) return rc;
    sh->nref++;
    *out = sh;
    return SQLITE_OK;
  }
  return SQLITE_OK;
}

/* bc_open of the store at path for a new registry entry (o: the table's
** options with create set): a writable table's store is opened read-only,
** following, until its first write (*follow = 1).  Returns as bc_open. */
static bc_status store_open(const char *path, const bc_options *opt, int create,
                            int write, bc_store **store, int *follow, char *err,
                            size_t errlen) {
  bc_options o = *opt;
  o.create = create;
  *follow = !opt->read_only && !create && !write;
  if (*follow) o.read_only = 1;
  bc_status bst = bc_open(path, &o, store, err, errlen);
  if (bst == BC_OK && *follow) {
    /* What only a writer's open repairs (an interrupted merge, a crash's
    ** leftovers, a torn tail) is repaired now if no process writes the
    ** store: a writer's open, closed at once, as a native reader rolls
    ** back a hot journal.  The follower then reads the repaired files. */
    bc_stats bs;
    bc_stats_get(*store, &bs);
    bc_store *w = NULL;
    bc_options wo = *opt;
    wo.create = 0;
    if (bs.recovery_pending && bc_open(path, &wo, &w, err, errlen) == BC_OK) {
      (void)bc_close(w);
      (void)bc_refresh(*store);
    }
  }
  return bst;
}

/* A new registry entry for the store at path, opened (created) now, into
** *out.  Registry mutex held. */
static int shared_new_locked(const char *zTab, const char *path, int create, int write,
                             const bc_options *opt, bcx_shared **out, char **pzErr) {
  bcx_shared *sh = calloc(1, sizeof *sh);
  char *copy = strdup(path);
  if (!sh || !copy) {
    free(sh);
    free(copy);
    return SQLITE_NOMEM;
  }
  char err[512];
  bc_store *store = NULL;
  int follow;
  bc_status bst = store_open(path, opt, create, write, &store, &follow, err, sizeof err);
  sh->store = store;
  if (bst != BC_OK) {
    *pzErr = sqlite3_mprintf("bitcask table '%s': %s", zTab, err);
    free(sh);
    free(copy);
    return bcx_rc(bst);
  }
  struct stat st;
  if (stat(path, &st) != 0) {
    *pzErr = sqlite3_mprintf("bitcask table '%s': cannot stat '%s': %s", zTab,
                             path, strerror(errno));
    bc_close(sh->store);
    free(sh);
    free(copy);
    return SQLITE_CANTOPEN;
  }
  sh->path = copy;
  sh->pid = getpid();
  sh->nref = 1;
  sh->following = follow;
  sh->opts = *opt;
  sh->read_only = opt->read_only ? 1 : 0;
  sh->dev = (uint64_t)st.st_dev;
  sh->ino = (uint64_t)st.st_ino;
  sh->next = registry_list;
  registry_list = sh;
  *out = sh;
  return SQLITE_OK;
}

int bcx_shared_open(const char *zTab, const char *path, int create, int write,
                    const bc_options *opt, bcx_shared **out, unsigned *gen,
                    char **pzErr) {
  struct stat st;
  int rc = SQLITE_OK;
  *out = NULL;
  registry_enter();
  if (stat(path, &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      *pzErr = sqlite3_mprintf(
          "bitcask table '%s': option dir: '%s' is not a directory", zTab, path);
      rc = SQLITE_CANTOPEN;
    } else {
      rc = shared_find_locked(zTab, path, &st, write || create, opt, out, pzErr);
    }
  } else if (errno == ENOENT && !create) {
    /* A table whose store was never there: most often a copy of the
    ** database, which carries the table but not the store. */
    *pzErr = sqlite3_mprintf(
        "bitcask table '%s': store '%s' does not exist (a copy of a database "
        "made by .backup, VACUUM INTO or .dump carries the table's definition "
        "but not its store: see README \"Backing up\")", zTab, path);
    rc = SQLITE_CANTOPEN;
  } else if (errno != ENOENT) {
    *pzErr = sqlite3_mprintf("bitcask table '%s': option dir: cannot use '%s': %s",
                             zTab, path, strerror(errno));
    rc = SQLITE_CANTOPEN;
  }
  if (rc == SQLITE_OK && !*out)
    rc = shared_new_locked(zTab, path, create, write, opt, out, pzErr);
  if (rc == SQLITE_OK && gen) *gen = (*out)->gen;
  pthread_mutex_unlock(&registry_mutex);
  return rc;
}

void bcx_shared_mark_destroy(bcx_shared *sh, int remove_dir) {
  registry_enter();
  sh->destroy = 1;
  sh->remove_dir = remove_dir;
  pthread_mutex_unlock(&registry_mutex);
}

int bcx_shared_release(bcx_shared *sh, unsigned gen) {
  int rc = SQLITE_OK;
  if (!sh) return rc;
  registry_enter();
  if (gen != sh->gen) old_done_locked(sh);
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
  /* An inherited entry: bc_close only closes descriptors (in this process
  ** the store is the parent's), and a DROP through it never destroys. */
  if (sh->old) (void)bc_close(sh->old);
  bc_status st = bc_close(sh->store);
  if (st != BC_OK) rc = bcx_rc(st);
  if (sh->destroy && !bcx_shared_inherited(sh)) {
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
  registry_enter();
  int n = sh->nref;
  pthread_mutex_unlock(&registry_mutex);
  return n;
}

int bcx_shared_is_open(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return 0;
  int found = 0;
  registry_enter();
  for (bcx_shared *sh = registry_list; sh && !found; sh = sh->next)
    found = sh->dev == (uint64_t)st.st_dev && sh->ino == (uint64_t)st.st_ino;
  pthread_mutex_unlock(&registry_mutex);
  return found;
}
