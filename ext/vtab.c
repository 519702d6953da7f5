/*
** vtab.c -- the `bitcask` virtual-table module: a Bitcask store as a SQLite
** table (https://sqlite.org/vtab.html).
**
**   .load ./build/bitcask
**   CREATE VIRTUAL TABLE kv USING bitcask;                 -- beside the db file
**   CREATE VIRTUAL TABLE kv USING bitcask(dir='data/kv', max_file_size='64MB',
**                                         sync='full');
**   INSERT INTO kv VALUES ('user:1', '{"name":"ada"}');
**   INSERT OR REPLACE INTO kv VALUES ('user:1', 'v2');     -- the Bitcask put
**   SELECT value FROM kv WHERE key = 'user:1';             -- one keydir probe
**   DELETE FROM kv WHERE key = 'user:1';                   -- a tombstone
**
** Every bitcask table declares
**
**   CREATE TABLE x(key NOT NULL, value, PRIMARY KEY(key COLLATE bitcask_pk))
**     WITHOUT ROWID
**
** (bitcask_pk is BINARY by another name, for foreign keys: see bitcaskInit)
** The key column has no affinity: values keep their storage class (codec.c).
** NOT NULL is not enforced by SQLite on a WITHOUT ROWID virtual table, so
** xUpdate refuses NULL keys itself.
**
** The module is six files, one per part of the virtual-table interface
** (vtab.h lists them and declares what they share): plan.c chooses a
** query plan, cursor.c reads through the table's snapshot, update.c
** writes, transaction.c maps SQLite's transaction and savepoints onto the
** store's bc_txn, and watch.c finishes or undoes CREATE and DROP with the
** transaction.  This one holds the table's life: xCreate and xConnect
** (bitcaskInit), xDisconnect, xDestroy, xRename, the opening of its store,
** and the entry point.
*/
#include "vtab.h"
SQLITE_EXTENSION_INIT1

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------- */

void bcx_vtab_error(bitcask_vtab *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sqlite3_free(p->base.zErrMsg);
  p->base.zErrMsg = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
}

/* The outcome rc of a call that may have left a message in zErr
** (sqlite3_mprintf'd, taken): on failure it becomes the table's error
** message, else it is freed.  Returns rc. */
static int vtab_result(bitcask_vtab *p, int rc, char *zErr) {
  if (rc != SQLITE_OK) {
    sqlite3_free(p->base.zErrMsg);
    p->base.zErrMsg = zErr;
  } else {
    sqlite3_free(zErr);
  }
  return rc;
}

/* Report an engine failure on the table: the engine's message names the
** store and the cause. */
int bcx_engine_error(bitcask_vtab *p, bc_status st) {
  char msg[BCX_ERRMSG_MAX];
  bcx_vtab_error(p, "bitcask table '%s': %s", p->zName,
                 p->sh ? bc_errmsg_copy(p->sh->store, msg, sizeof msg)
                       : bc_status_name(st));
  return bcx_rc(st);
}

/* Tables that are owners of their store (owners.c): writers of a database
** file; read-only tables and private stores never are. */
int bcx_vtab_owns(const bitcask_vtab *p) {
  return !p->opts.read_only && p->location != LOC_TEMP;
}

/* The table's store (open) made the writer's, if the table writes: the
** first write of the process takes the writer lock (registry.c).  Returns
** SQLITE_OK, or the error (SQLITE_BUSY naming the holder) in zErrMsg. */
int bcx_table_writer(bitcask_vtab *p) {
  if (p->opts.read_only) return SQLITE_OK;
  char *zErr = NULL;
  int rc = bcx_shared_write(p->sh, p->zName, &zErr);
  if (rc != SQLITE_OK) return vtab_result(p, rc, zErr);
  /* Onto the writer's store at once when nothing reads the old one. */
  if (p->nopen == 0) bcx_shared_moved(p->sh, &p->gen);
  if (!p->owners_recorded && bcx_vtab_owns(p)) {
    /* The check at first use could not record anything in a read-only
    ** store (owners.c): now it can -- whichever table made it the
    ** writer's. */
    rc = bcx_owners_check(p->db, p->zDb, p->zName, p->sh, &zErr);
    if (rc != SQLITE_OK) return vtab_result(p, rc, zErr);
    p->owners_recorded = 1;
  }
  return SQLITE_OK;
}

int bcx_table_readonly(bitcask_vtab *t) { return t->opts.read_only; }

/* The table's store opened for writing, without the owners check (xDestroy,
** xRename). */
static int vtab_store_open(bitcask_vtab *p) {
  if (p->sh) return bcx_table_writer(p);
  char *zErr = NULL;
  int rc = bcx_shared_open(p->zName, p->zPath, 0, !p->opts.read_only, &p->opts,
                           &p->sh, &p->gen, &zErr);
  return vtab_result(p, rc, zErr);
}

/* The table's store, opened on first use (and retried on every use after a
** failure, e.g. while another process holds the lock), once this table is
** known to own it: a copy of the database whose table resolves to the
** original's store is refused here, for reads and writes alike.  Returns
** SQLITE_OK or an error with the message in p->base.zErrMsg. */
int bcx_vtab_store(bitcask_vtab *p) {
  if (p->sh) return SQLITE_OK;
  if (p->ghost) {
    bcx_vtab_error(p, "bitcask table '%s': its CREATE VIRTUAL TABLE was rolled back",
                   p->zName);
    return SQLITE_ERROR;
  }
  char *zErr = NULL;
  int rc = bcx_vtab_owns(p) ? bcx_owners_precheck(p->db, p->zDb, p->zName, p->zPath, &zErr)
                            : SQLITE_OK;
  if (rc == SQLITE_OK)
    rc = bcx_shared_open(p->zName, p->zPath, 0, 0, &p->opts, &p->sh, &p->gen, &zErr);
  if (rc == SQLITE_OK && bcx_vtab_owns(p)) {
    rc = bcx_owners_check(p->db, p->zDb, p->zName, p->sh, &zErr);
    if (rc == SQLITE_OK && !p->sh->following) p->owners_recorded = 1;
    if (rc != SQLITE_OK) {
      bcx_shared_release(p->sh, p->gen);
      p->sh = NULL;
    }
  }
  return vtab_result(p, rc, zErr);
}

bcx_tempdir *bcx_tempdir_find(bcx_module *m, const char *zDb,
                                 const char *zTab) {
  for (bcx_tempdir *t = m->tempdirs; t; t = t->next)
    if (sqlite3_stricmp(t->schema, zDb) == 0 &&
        sqlite3_stricmp(t->table, zTab) == 0)
      return t;
  return NULL;
}

static void tempdir_free(bcx_tempdir *t) {
  sqlite3_free(t->schema);
  sqlite3_free(t->table);
  sqlite3_free(t->path);
  sqlite3_free(t);
}

void bcx_tempdir_remove(bcx_module *m, bcx_tempdir *t) {
  for (bcx_tempdir **pp = &m->tempdirs; *pp; pp = &(*pp)->next) {
    if (*pp == t) {
      *pp = t->next;
      break;
    }
  }
  tempdir_free(t);
}

/* Delete a private store and forget it. */
static void tempdir_discard(bcx_module *m, bcx_tempdir *t) {
  char err[256];
  /* In a child of fork() the private store is still the parent's. */
  if (m->pid == getpid()) {
    bc_destroy(t->path, err, sizeof err);
    rmdir(t->path);
  }
  bcx_tempdir_remove(m, t);
}

/* Make a private temporary directory for an in-memory table. */
static int tempdir_create(bcx_module *m, const char *zDb, const char *zTab,
                          char **pzErr) {
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !tmp[0]) tmp = "/tmp";
  bcx_tempdir *t = sqlite3_malloc(sizeof *t);
  if (!t) return SQLITE_NOMEM;
  t->schema = sqlite3_mprintf("%s", zDb);
  t->table = sqlite3_mprintf("%s", zTab);
  t->path = sqlite3_mprintf("%s/bitcask-%s-XXXXXX", tmp, zTab);
  if (!t->schema || !t->table || !t->path) {
    tempdir_free(t);
    return SQLITE_NOMEM;
  }
  if (!mkdtemp(t->path)) {
    *pzErr = sqlite3_mprintf("bitcask table '%s': cannot make a temporary "
                             "directory in %s: %s", zTab, tmp, strerror(errno));
    tempdir_free(t);
    return SQLITE_CANTOPEN;
  }
  t->next = m->tempdirs;
  m->tempdirs = t;
  return SQLITE_OK;
}

void bcx_vtab_free(bitcask_vtab *p) {
  if (!p) return;
  sqlite3_free(p->zDb);
  sqlite3_free(p->zName);
  sqlite3_free(p->zPath);
  sqlite3_free(p->svpt);
  sqlite3_free(p->base.zErrMsg);
  bc_buf_free(&p->spare);
  sqlite3_free(p);
}

static void vtab_unlink(bitcask_vtab *p) {
  for (bitcask_vtab **pp = &p->mod->tables; *pp; pp = &(*pp)->next) {
    if (*pp == p) {
      *pp = p->next;
      break;
    }
  }
}

/* xCreate found a store at the table's default location.  No table of that
** name is in the database (SQLite checked), so the store was left by an
** earlier one: a CREATE rolled back to a savepoint, a database file deleted
** or replaced.  A new table starts empty: the store is deleted, unless a
** live table uses it (then the CREATE is refused; dir= names a store on
** purpose).  SQLITE_OK, or an error with *pzErr. */
static int leftover_clear(bitcask_vtab *p, char **pzErr) {
  for (bitcask_vtab *q = p->mod->dropped; q; q = q->next) {
    if (!q->undropped && !q->ghost && strcmp(q->zPath, p->zPath) == 0) {
      *pzErr = sqlite3_mprintf("bitcask table '%s': this transaction dropped a "
                               "table of that name, whose store '%s' is deleted "
                               "when the transaction commits: commit before "
                               "creating the table again", p->zName, p->zPath);
      return SQLITE_ERROR;
    }
  }
  int rc = bcx_owners_stale(p->db, p->zDb, p->zName, p->zPath, pzErr);
  if (rc != SQLITE_OK) return rc;
  if (bcx_shared_is_open(p->zPath)) {
    *pzErr = sqlite3_mprintf("bitcask table '%s': a store is already at its "
                             "default location '%s' and a table of this process "
                             "has it open; a new table starts with an empty "
                             "store: give this one another dir=, or "
                             "dir='%s' to share that store on purpose",
                             p->zName, p->zPath, p->zPath);
    return SQLITE_ERROR;
  }
  char err[512];
  bc_status st = bc_destroy(p->zPath, err, sizeof err);
  if (st == BC_OK || st == BC_NOTSTORE) return SQLITE_OK;
  if (st == BC_LOCKED) {
    *pzErr = sqlite3_mprintf("bitcask table '%s': a store left at its default "
                             "location '%s' by an earlier table of that name is "
                             "open by a writer in another process; a new table "
                             "starts empty, which would delete it: close that "
                             "process first, or name the store with dir='%s' to "
                             "use its rows", p->zName, p->zPath, p->zPath);
    return SQLITE_BUSY;
  }
  *pzErr = sqlite3_mprintf("bitcask table '%s': cannot delete the store left at "
                           "its default location by an earlier table of that "
                           "name: %s", p->zName, err);
  return bcx_rc(st);
}

/* ---- xCreate / xConnect ----------------------------------------------- */

/* A new table from xCreate's or xConnect's argv (argv[0] module, argv[1]
** schema, argv[2] table, argv[3..] options), its store not open yet.
** *pIsTemp = 1 for a table whose store is private (options.c). */
static int vtab_new(sqlite3 *db, bcx_module *mod, int argc, const char *const *argv,
                    bitcask_vtab **pp, int *pIsTemp, char **pzErr) {
  const char *zDb = argv[1], *zTab = argv[2];
  bcx_options o;
  int rc = bcx_options_parse(zTab, argc, argv, &o, pzErr);
  if (rc != SQLITE_OK) return rc;
  bitcask_vtab *p = sqlite3_malloc(sizeof *p);
  if (!p) {
    bcx_options_clear(&o);
    return SQLITE_NOMEM;
  }
  memset(p, 0, sizeof *p);
  p->db = db;
  p->mod = mod;
  bcx_rows_read(p);
  p->zDb = sqlite3_mprintf("%s", zDb);
  p->zName = sqlite3_mprintf("%s", zTab);
  bc_options_init(&p->opts);
  if (o.max_file_size) p->opts.max_file_size = o.max_file_size;
  if (o.sync >= 0) p->opts.sync = (bc_sync_mode)o.sync;
  p->opts.max_open_files = o.max_open_files;
  /* readonly=1, or a database opened read-only: follow the writer's store
  ** without its lock and write nothing. */
  p->opts.read_only = o.readonly == 1 || sqlite3_db_readonly(db, zDb) == 1;
  rc = bcx_store_path(db, zDb, zTab, &o, &p->zPath, pIsTemp);
  p->location = o.dir ? LOC_EXPLICIT : *pIsTemp ? LOC_TEMP : LOC_DEFAULT;
  bcx_options_clear(&o);
  if (rc == SQLITE_OK && (!p->zDb || !p->zName)) rc = SQLITE_NOMEM;
  if (rc != SQLITE_OK) {
    bcx_vtab_free(p);
    return rc;
  }
  *pp = p;
  return SQLITE_OK;
}

/* A CREATE cannot meet a live table of its name, so a table of that name
** still connected here is one whose CREATE a ROLLBACK TO took back without
** telling it (when the watcher could not): undone now; and one on the
** dropped list waits for COMMIT to delete its store: the CREATE is
** refused. */
static int create_name_free(bcx_module *mod, const char *zDb, const char *zTab,
                            char **pzErr) {
  for (bitcask_vtab *q = mod->tables; q; q = q->next)
    if (q->pending_create && sqlite3_stricmp(q->zDb, zDb) == 0 &&
        sqlite3_stricmp(q->zName, zTab) == 0)
      bcx_create_undo(q);
  for (bitcask_vtab *q = mod->dropped; q; q = q->next) {
    if (!q->undropped && !q->ghost && sqlite3_stricmp(q->zDb, zDb) == 0 &&
        sqlite3_stricmp(q->zName, zTab) == 0) {
      *pzErr = sqlite3_mprintf("bitcask table '%s': this transaction dropped "
                               "a table of that name, whose store is deleted "
                               "when the transaction commits: commit before "
                               "creating the table again", zTab);
      return SQLITE_ERROR;
    }
  }
  return SQLITE_OK;
}

/* p->zPath of a table with a private store: the one made for it (made now
** by a CREATE). */
static int tempdir_path(bitcask_vtab *p, int isCreate, char **pzErr) {
  bcx_module *mod = p->mod;
  int rc = SQLITE_OK;
  bcx_tempdir *t = bcx_tempdir_find(mod, p->zDb, p->zName);
  if (t && isCreate) {
    /* Left by an earlier table of that name in a database since detached
    ** (a CREATE cannot meet a live one): a new table starts empty. */
    tempdir_discard(mod, t);
    t = NULL;
  }
  if (!t && isCreate) {
    rc = tempdir_create(mod, p->zDb, p->zName, pzErr);
    t = mod->tempdirs;
  }
  if (rc == SQLITE_OK && !t) {
    *pzErr = sqlite3_mprintf("bitcask table '%s': the private store of this "
                             "in-memory table is gone", p->zName);
    rc = SQLITE_CANTOPEN;
  }
  if (rc == SQLITE_OK) {
    p->zPath = sqlite3_mprintf("%s", t->path);
    if (!p->zPath) rc = SQLITE_NOMEM;
  }
  return rc;
}

/* xCreate opens (and creates) the store now so that a bad dir fails the
** CREATE; xConnect defers to first use, so that a store that is missing or
** locked by another process still lets the schema load and DROP work. */
static int create_store(bitcask_vtab *p, char **pzErr) {
  int rc = SQLITE_OK;
  if (p->location == LOC_DEFAULT && strchr(p->zName, '/')) {
    *pzErr = sqlite3_mprintf("bitcask table '%s': a table name with '/' cannot "
                             "name its default store directory; give dir=...",
                             p->zName);
    return SQLITE_ERROR;
  }
  /* Whether this CREATE makes the store (undoing it then deletes it): a
  ** new table at the default location always does, deleting what an
  ** earlier table of that name left there. */
  int had = 0;
  if (p->location != LOC_TEMP) {
    char *marker = sqlite3_mprintf("%s/BITCASK", p->zPath);
    struct stat st;
    if (!marker) rc = SQLITE_NOMEM;
    had = marker && stat(marker, &st) == 0;
    sqlite3_free(marker);
  }
  if (rc == SQLITE_OK && had && p->location == LOC_DEFAULT && !p->opts.read_only) {
    rc = leftover_clear(p, pzErr);
    had = 0;
  }
  p->created_store = !had;
  if (rc != SQLITE_OK) return rc;
  rc = bcx_shared_open(p->zName, p->zPath, !p->opts.read_only, !p->opts.read_only,
                       &p->opts, &p->sh, &p->gen, pzErr);
  /* Naming a store joins it on purpose (owners.c). */
  if (rc == SQLITE_OK && bcx_vtab_owns(p))
    rc = bcx_owners_join(p->db, p->zDb, p->zName, p->sh, pzErr);
  if (rc != SQLITE_OK && p->location == LOC_EXPLICIT && *pzErr) {
    /* Name the option the user gave (docs/DESIGN.md section 5.6: errors name
    ** the option). */
    char *m = sqlite3_mprintf("%s (option dir='%s')", *pzErr, p->zPath);
    if (m) {
      sqlite3_free(*pzErr);
      *pzErr = m;
    }
  }
  return rc;
}

/* Declare the table's schema (see the top of the file).
**
** The primary key's index is declared with BCX_PK_COLLATION, BINARY under
** another name; the column itself keeps BINARY, so every comparison of
** `key` (and sqlite3_vtab_collation) is unchanged.  The index exists only
** in SQLite's schema: a virtual table has no b-tree, yet a foreign key
** `REFERENCES kv(key)` made SQLite's foreign-key code open that index's
** b-tree (root page 0) and report "database disk image is malformed".
** An index whose collation is not the column's is not a parent key to
** SQLite (sqlite3FkLocateIndex), so such a foreign key now fails with
** "foreign key mismatch", as for FTS5.  Of SQLite's other uses of the
** index's collation, the DISTINCT optimization is the one that shows:
** `SELECT DISTINCT key` now de-duplicates (correctly, needlessly) where
** it did not.  A foreign key naming no column (`REFERENCES kv`) takes the
** primary key whatever its collation: SQLite still reports it as
** malformed (README).
**
** Neither DIRECTONLY nor INNOCUOUS: SQLite's own rule for a virtual table
** then applies, as for an ordinary table in all but one point -- views and
** triggers of a database file may use the table while the schema is
** trusted (PRAGMA trusted_schema=ON, the default) and are refused ("unsafe
** use of virtual table") when it is not.  Reading or writing the table
** through a view or trigger does what the same statement does directly;
** the functions that act on the store's files (bitcask_merge,
** bitcask_stats) stay direct-only (functions.c). */
static int declare_schema(sqlite3 *db) {
  int rc = sqlite3_declare_vtab(
      db, "CREATE TABLE x(key NOT NULL, value, PRIMARY KEY(key COLLATE " BCX_PK_COLLATION
          ")) WITHOUT ROWID");
  if (rc == SQLITE_OK) sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
  return rc;
}

/* A table a ROLLBACK TO brought back after its DROP (xConnect): the
** transaction it had goes on here. */
static void adopt_dropped_txn(bitcask_vtab *p) {
  for (bitcask_vtab *q = p->mod->dropped; q; q = q->next) {
    if (!q->undropped || !q->txn || sqlite3_stricmp(q->zDb, p->zDb) != 0 ||
        sqlite3_stricmp(q->zName, p->zName) != 0)
      continue;
    char *zErr = NULL;
    if (bcx_shared_open(p->zName, p->zPath, 0, 0, &p->opts, &p->sh, &p->gen, &zErr) ==
        SQLITE_OK) {
      bcx_svpt *sv = p->svpt;
      int na = p->nsvptAlloc;
      p->txn = q->txn;
      p->svpt = q->svpt;
      p->nsvpt = q->nsvpt;
      p->nsvptAlloc = q->nsvptAlloc;
      q->svpt = sv;
      q->nsvptAlloc = na;
      bcx_txn_forget(q);
      p->adopted = 1;
    }
    sqlite3_free(zErr);
    break;
  }
}

static int bitcaskInit(sqlite3 *db, void *pAux, int argc,
                       const char *const *argv, sqlite3_vtab **ppVtab,
                       char **pzErr, int isCreate) {
  bcx_module *mod = pAux;
  bitcask_vtab *p = NULL;
  int isTemp = 0;
  *ppVtab = NULL;
  int rc = vtab_new(db, mod, argc, argv, &p, &isTemp, pzErr);
  if (rc != SQLITE_OK) return rc;
  if (isCreate) rc = create_name_free(mod, p->zDb, p->zName, pzErr);
  if (rc == SQLITE_OK && isTemp) rc = tempdir_path(p, isCreate, pzErr);
  if (rc == SQLITE_OK && isCreate) rc = create_store(p, pzErr);
  if (rc == SQLITE_OK) rc = declare_schema(db);
  if (rc != SQLITE_OK) {
    if (p->sh) bcx_shared_release(p->sh, p->gen);
    bcx_vtab_free(p);
    return rc;
  }
  if (isCreate) {
    /* Until the transaction commits (watch.c, "Creating and dropping");
    ** inside an explicit one the watcher also sees a ROLLBACK TO. */
    p->pending_create = 1;
    if (!sqlite3_get_autocommit(db) && bcx_watch_join(p) == SQLITE_OK) {
      p->watch_create = 1;
      p->create_at = mod->watch_level;
    }
  } else {
    adopt_dropped_txn(p);
  }
  p->next = mod->tables;
  mod->tables = p;
  *ppVtab = &p->base;
  return SQLITE_OK;
}

static int bitcaskCreate(sqlite3 *db, void *pAux, int argc,
                         const char *const *argv, sqlite3_vtab **ppVtab,
                         char **pzErr) {
  return bitcaskInit(db, pAux, argc, argv, ppVtab, pzErr, 1);
}

static int bitcaskConnect(sqlite3 *db, void *pAux, int argc,
                          const char *const *argv, sqlite3_vtab **ppVtab,
                          char **pzErr) {
  return bitcaskInit(db, pAux, argc, argv, ppVtab, pzErr, 0);
}

/* A connection of the parent used in a child made by fork(): DROP and
** RENAME act on the parent's files and are refused (writes are refused by
** the engine).  1 with the message set, else 0. */
static int inherited_error(bitcask_vtab *p) {
  if (p->mod->pid == getpid() && (!p->sh || !bcx_shared_inherited(p->sh))) return 0;
  bcx_vtab_error(p, "bitcask table '%s': this connection was opened by process %ld "
                 "and is used by process %ld, a child made by fork(): its store "
                 "belongs to the parent; open a new connection in this process",
                 p->zName, (long)p->mod->pid, (long)getpid());
  return 1;
}

static int bitcaskDisconnect(sqlite3_vtab *pVtab) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  bc_txn_rollback(p->txn); /* SQLite rolled back already; be sure */
  bcx_txn_forget(p);
  bc_snapshot_close(p->snap); /* NULL: SQLite closes every cursor first */
  p->snap = NULL;
  vtab_unlink(p);
  bcx_shared_release(p->sh, p->gen);
  bcx_vtab_free(p);
  return SQLITE_OK;
}

/* p waits on mod->dropped for the transaction's end (drop_rc: to fail it). */
static void drop_defer(bitcask_vtab *p, int drop_rc) {
  bc_snapshot_close(p->snap); /* no cursor is open: SQLite checked */
  p->snap = NULL;
  vtab_unlink(p);
  p->adopted = 0;
  p->skip_svpt = 0;
  p->dropped = 1;
  p->drop_at = p->mod->watch_level;
  p->drop_rc = drop_rc;
  if (!drop_rc) {
    sqlite3_free(p->base.zErrMsg);
    p->base.zErrMsg = NULL;
  }
  p->next = p->mod->dropped;
  p->mod->dropped = p;
}

/* The DROP of p takes effect: p leaves the owners file, and its store is
** marked to be deleted at its last release when p was its last owner
** (owners.c) -- another table may share the directory, and a copy of the
** database (not an owner) must leave the original's store alone; a
** read-only table only follows a store another process owns: dropping it
** forgets the table, never the files.  A private store is always deleted,
** and forgotten now.  SQLITE_OK, or the owners file's error with *pzErr
** (nothing done then). */
int bcx_drop_store(bitcask_vtab *p, char **pzErr) {
  int destroy = p->location == LOC_TEMP;
  if (p->sh && bcx_vtab_owns(p)) {
    int rc = bcx_owners_leave(p->db, p->zDb, p->zName, p->sh, &destroy, pzErr);
    if (rc != SQLITE_OK) return rc;
  }
  if (p->sh && destroy) bcx_shared_mark_destroy(p->sh, p->location == LOC_TEMP);
  if (p->location == LOC_TEMP) {
    bcx_tempdir *t = bcx_tempdir_find(p->mod, p->zDb, p->zName);
    if (t) bcx_tempdir_remove(p->mod, t);
  }
  return SQLITE_OK;
}

/* A DROP that cannot be done, with the reason in p's message.  SQLite
** drops the message xDestroy leaves (the user would see only the generic
** text of rc), so an autocommit DROP fails at its commit instead, in the
** watcher's xSync, whose message SQLite passes on; the table is back after
** the rollback.  Inside an explicit transaction it fails now with the
** generic text (and the message goes to sqlite3_log): failing the COMMIT
** would throw away the rest of the transaction. */
static int drop_refuse(bitcask_vtab *p, int rc) {
  if (sqlite3_get_autocommit(p->db) && bcx_watch_join(p) == SQLITE_OK) {
    drop_defer(p, rc);
    return SQLITE_OK;
  }
  sqlite3_log(rc, "%s", p->base.zErrMsg ? p->base.zErrMsg : "bitcask: DROP TABLE refused");
  return rc;
}

/* DROP TABLE: the store's files are deleted when the transaction commits
** (watch.c, "Creating and dropping"): SQLite calls xDestroy at once, and a
** ROLLBACK brings the table back.  What can fail is checked now: the store
** is opened (its lock taken) so that another process holding it refuses the
** DROP.  SQLite drops a message xDestroy leaves: a refused DROP shows the
** generic text of its code (README "Limits"). */
static int bitcaskDestroy(sqlite3_vtab *pVtab) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  if (inherited_error(p)) return drop_refuse(p, SQLITE_MISUSE);
  /* A copy of the database (not an owner) forgets its table without
  ** opening the original's store. */
  char *zPre = NULL;
  int pre = !p->sh && bcx_vtab_owns(p)
                ? bcx_owners_precheck(p->db, p->zDb, p->zName, p->zPath, &zPre)
                : SQLITE_OK;
  if (pre == SQLITE_CANTOPEN) {
    sqlite3_free(zPre);
    vtab_unlink(p);
    bcx_vtab_free(p);
    return SQLITE_OK;
  }
  if (pre != SQLITE_OK) return drop_refuse(p, vtab_result(p, pre, zPre));
  int rc = vtab_store_open(p);
  if (rc != SQLITE_OK) {
    struct stat st;
    /* A store whose directory is gone has nothing left to delete. */
    if (stat(p->zPath, &st) != 0 && errno == ENOENT) {
      rc = SQLITE_OK;
    } else {
      return drop_refuse(p, rc);
    }
  }
  if (bcx_watch_join(p) == SQLITE_OK) {
    drop_defer(p, SQLITE_OK);
    return SQLITE_OK;
  }
  /* No watcher (a table named bitcask_txn_watch hides it, an authorizer
  ** refused it, main is read-only): an autocommit DROP deletes the files
  ** now, as it did before the watcher; inside a transaction it is refused. */
  if (!sqlite3_get_autocommit(p->db)) {
    bcx_vtab_error(p, "bitcask table '%s': DROP TABLE inside a transaction needs "
                   "the extension's bitcask_txn_watch table, which is hidden or "
                   "refused", p->zName);
    sqlite3_log(SQLITE_ERROR, "%s", p->base.zErrMsg);
    return SQLITE_ERROR;
  }
  char *zErr = NULL;
  rc = bcx_drop_store(p, &zErr);
  if (rc != SQLITE_OK) return vtab_result(p, rc, zErr);
  sqlite3_free(zErr);
  vtab_unlink(p);
  bc_snapshot_close(p->snap);
  p->snap = NULL;
  rc = bcx_shared_release(p->sh, p->gen);
  bcx_vtab_free(p);
  return rc;
}

/* ALTER TABLE ... RENAME TO zNew of a table with a private store: the store
** stays, known under the new name. */
static int rename_temp(bitcask_vtab *p, const char *zNew) {
  bcx_tempdir *t = bcx_tempdir_find(p->mod, p->zDb, p->zName);
  char *name = sqlite3_mprintf("%s", zNew);
  if (!name) return SQLITE_NOMEM;
  if (t) {
    sqlite3_free(t->table);
    t->table = name;
  } else {
    sqlite3_free(name);
  }
  return SQLITE_OK;
}

/* ... of a table naming its store with dir=: the directory stays; the
** table's line in the owners file follows the new name (owners.c). */
static int rename_explicit(bitcask_vtab *p, const char *zNew) {
  if (!bcx_vtab_owns(p)) return SQLITE_OK;
  char *zPre = NULL;
  int pre = p->sh ? SQLITE_OK
                  : bcx_owners_precheck(p->db, p->zDb, p->zName, p->zPath, &zPre);
  if (pre != SQLITE_OK) {
    /* SQLITE_CANTOPEN: a copy's table, the store is not its to rename in */
    if (pre == SQLITE_CANTOPEN) {
      sqlite3_free(zPre);
      return SQLITE_OK;
    }
    return vtab_result(p, pre, zPre);
  }
  int rc = vtab_store_open(p);
  if (rc != SQLITE_OK) return rc;
  char *zErr = NULL;
  rc = bcx_owners_rename(p->db, p->zDb, p->zName, zNew, p->sh, &zErr);
  return vtab_result(p, rc, zErr);
}

/* ... of a table at the default location: may its store move?  Not for a
** read-only table, inside a transaction, while other tables name the
** store with dir= or another table of the process has it open.  SQLITE_OK
** with the store open, or the refusal with the message set. */
static int rename_default_check(bitcask_vtab *p) {
  if (p->opts.read_only) {
    bcx_vtab_error(p, "bitcask table '%s': cannot rename a read-only table: its "
                   "store belongs to the writing process", p->zName);
    return SQLITE_READONLY;
  }
  if (!sqlite3_get_autocommit(p->db)) {
    bcx_vtab_error(p, "bitcask table '%s': cannot rename inside a transaction (its "
                   "store directory is renamed at once)", p->zName);
    return SQLITE_ERROR;
  }
  if (p->nopen > 0) {
    /* A statement of this connection is reading the table (left open, or
    ** the RENAME runs inside it, from a user function): moving the directory
    ** closes the store under its cursors and snapshot.  SQLite refuses a
    ** DROP then the same way. */
    bcx_vtab_error(p, "bitcask table '%s': cannot rename while a statement is "
                   "reading it (its store directory is renamed at once)", p->zName);
    return SQLITE_LOCKED;
  }
  int rc = vtab_store_open(p);
  if (rc != SQLITE_OK) return rc;
  /* Other tables naming this directory with dir= would lose their store if
  ** it moved: the rename is refused (owners.c knows them). */
  int shared = 0;
  char *zShErr = NULL;
  if (bcx_vtab_owns(p)) {
    rc = bcx_owners_shared(p->db, p->zDb, p->zName, p->sh, &shared, &zShErr);
    if (rc != SQLITE_OK) return vtab_result(p, rc, zShErr);
  }
  if (shared) {
    bcx_vtab_error(p, "bitcask table '%s': cannot rename: its store '%s' is named "
                   "after the table and other tables use it too (dir=), which "
                   "would lose it if it moved; give those tables their own store, "
                   "or drop them first", p->zName, p->zPath);
    return SQLITE_ERROR;
  }
  if (bcx_shared_refs(p->sh) > 1) {
    bcx_vtab_error(p, "bitcask table '%s': cannot rename while another connection "
                   "or table of this process has its store open", p->zName);
    return SQLITE_BUSY;
  }
  return SQLITE_OK;
}

/* ... the store's directory moves to the new name's default location. */
static int rename_default(bitcask_vtab *p, const char *zNew) {
  int rc = rename_default_check(p);
  if (rc != SQLITE_OK) return rc;
  const char *dbfile = sqlite3_db_filename(p->db, p->zDb);
  char *zNewPath = sqlite3_mprintf("%s-%s.bitcask", dbfile, zNew);
  if (!zNewPath) return SQLITE_NOMEM;
  struct stat st;
  if (stat(zNewPath, &st) == 0) {
    bcx_vtab_error(p, "bitcask table '%s': cannot rename to '%s': '%s' already "
                   "exists", p->zName, zNew, zNewPath);
    sqlite3_free(zNewPath);
    return SQLITE_ERROR;
  }
  /* The owners file first, while the store is open: its line gets the new
  ** name (put back should the directory not move). */
  char *zErr = NULL;
  rc = bcx_owners_rename(p->db, p->zDb, p->zName, zNew, p->sh, &zErr);
  if (rc != SQLITE_OK) {
    sqlite3_free(zNewPath);
    return vtab_result(p, rc, zErr);
  }
  bcx_shared_release(p->sh, p->gen);
  p->sh = NULL;
  if (rename(p->zPath, zNewPath) != 0) {
    int e = errno;
    if (vtab_store_open(p) == SQLITE_OK) {
      zErr = NULL;
      bcx_owners_rename(p->db, p->zDb, zNew, p->zName, p->sh, &zErr);
      sqlite3_free(zErr);
    }
    bcx_vtab_error(p, "bitcask table '%s': cannot rename store '%s' to '%s': %s",
                   p->zName, p->zPath, zNewPath, strerror(e));
    sqlite3_free(zNewPath);
    return SQLITE_IOERR;
  }
  sqlite3_free(p->zPath);
  p->zPath = zNewPath;
  char *zName = sqlite3_mprintf("%s", zNew);
  if (zName) {
    sqlite3_free(p->zName);
    p->zName = zName;
  }
  return SQLITE_OK;
}

/* ALTER TABLE ... RENAME TO zNew.  A store at the default location is named
** after the table, so its directory moves with it; SQLite then reconnects the
** table under the new name.  Refused inside a transaction (a ROLLBACK would
** restore the old name but not the directory) and while another connection
** of this process uses the store. */
static int bitcaskRename(sqlite3_vtab *pVtab, const char *zNew) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  if (inherited_error(p)) return SQLITE_MISUSE;
  switch (p->location) {
  case LOC_TEMP:
    return rename_temp(p, zNew);
  case LOC_EXPLICIT:
    return rename_explicit(p, zNew);
  default:
    return rename_default(p, zNew);
  }
}

static sqlite3_module bitcaskModule = {
  /* iVersion    */ 2,
  /* xCreate     */ bitcaskCreate,
  /* xConnect    */ bitcaskConnect,
  /* xBestIndex  */ bitcaskBestIndex,
  /* xDisconnect */ bitcaskDisconnect,
  /* xDestroy    */ bitcaskDestroy,
  /* xOpen       */ bitcaskOpen,
  /* xClose      */ bitcaskClose,
  /* xFilter     */ bitcaskFilter,
  /* xNext       */ bitcaskNext,
  /* xEof        */ bitcaskEof,
  /* xColumn     */ bitcaskColumn,
  /* xRowid      */ bitcaskRowid,
  /* xUpdate     */ bitcaskUpdate,
  /* xBegin      */ bitcaskBegin,
  /* xSync       */ bitcaskSync,
  /* xCommit     */ bitcaskCommit,
  /* xRollback   */ bitcaskRollback,
  /* xFindFunction */ NULL,
  /* xRename     */ bitcaskRename,
  /* xSavepoint  */ bitcaskSavepoint,
  /* xRelease    */ bitcaskRelease,
  /* xRollbackTo */ bitcaskRollbackTo,
  /* xShadowName */ NULL,
};

/* ---- accessors for functions.c ---------------------------------------- */

bitcask_vtab *bcx_table_list(bcx_module *m) { return m->tables; }
bitcask_vtab *bcx_table_next(bitcask_vtab *t) { return t->next; }
const char *bcx_table_name(bitcask_vtab *t) { return t->zName; }
const char *bcx_table_schema(bitcask_vtab *t) { return t->zDb; }

/* The table's shared store, opened if need be; NULL with the reason in the
** table's error message. */
bcx_shared *bcx_table_store(bitcask_vtab *t) {
  return bcx_vtab_store(t) == SQLITE_OK ? t->sh : NULL;
}

const char *bcx_table_error(bitcask_vtab *t) {
  return t->base.zErrMsg ? t->base.zErrMsg : "unknown error";
}

bitcask_vtab *bcx_find_table(bcx_module *m, const char *zDb, const char *zTab) {
  for (bitcask_vtab *t = m->tables; t; t = t->next)
    if (sqlite3_stricmp(t->zName, zTab) == 0 &&
        (!zDb || sqlite3_stricmp(t->zDb, zDb) == 0))
      return t;
  return NULL;
}

/* ---- entry point ---------------------------------------------------------- */

/* The connection closes: every table is disconnected by now; delete the
** private stores of in-memory tables. */
static void moduleDestroy(void *pAux) {
  bcx_module *m = pAux;
  while (m->dropped) { /* none: the close rolled back (watchRollback) */
    bitcask_vtab *q = m->dropped;
    m->dropped = q->next;
    bcx_dropped_free(q);
  }
  while (m->tempdirs) tempdir_discard(m, m->tempdirs);
  sqlite3_free(m);
}

/* BCX_PK_COLLATION: memcmp, then the shorter first (bc_key_cmp) -- BINARY
** exactly. */
static int pkCollation(void *arg, int n1, const void *a, int n2, const void *b) {
  (void)arg;
  return bc_key_cmp(a, (size_t)n1, b, (size_t)n2);
}

#ifdef _WIN32
__declspec(dllexport)
#endif
__attribute__((visibility("default"))) int
sqlite3_bitcask_init(sqlite3 *db, char **pzErrMsg,
                     const sqlite3_api_routines *pApi) {
  SQLITE_EXTENSION_INIT2(pApi);
  (void)pzErrMsg;
  bcx_module *m = sqlite3_malloc(sizeof *m);
  if (!m) return SQLITE_NOMEM;
  memset(m, 0, sizeof *m);
  m->db = db;
  m->pid = getpid();
  bcx_registry_init();
  int rc = sqlite3_create_collation(db, BCX_PK_COLLATION, SQLITE_UTF8, NULL,
                                    pkCollation);
  if (rc != SQLITE_OK) {
    sqlite3_free(m);
    return rc;
  }
  rc = sqlite3_create_module_v2(db, "bitcask", &bitcaskModule, m,
                                moduleDestroy);
  if (rc != SQLITE_OK) return rc; /* moduleDestroy has freed m */
  m->watch_level = -1;
  /* The transaction watcher (watch.c, "Creating and dropping"). */
  rc = bcx_watch_register(db, m);
  if (rc != SQLITE_OK) return rc;
  return bcx_register_functions(db, m);
}
