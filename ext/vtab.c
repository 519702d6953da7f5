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
**   CREATE TABLE x(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID
**
** The key column has no affinity: values keep their storage class (codec.c).
** NOT NULL is not enforced by SQLite on a WITHOUT ROWID virtual table, so
** xUpdate refuses NULL keys itself.
**
** Query plans.  xBestIndex encodes its plan in idxNum (and names it in idxStr,
** which EXPLAIN QUERY PLAN shows as "INDEX <idxNum>:<idxStr>"):
**
**   idxNum  idxStr         argv[0]                  rows          cost
**   0       "scan"         -                        live keys     10 + keys
**                                                   (at least 16)
**   1       "key=?"        the key                  1 (unique)    1
**   2       "key IN (...)" the IN list, walked with 10            10
**                          sqlite3_vtab_in_first/next
**   bit 4   a scan in key order ("scan in key order"): SQLite's order for
**           the column, as a native table's scan; set whenever a column is
**           used (colUsed != 0: count(*) alone needs no order) or ORDER BY
**           key is consumed
**   bit 8   ... descending (ORDER BY key DESC)
**
** An `=` or IN on the key with a non-BINARY collation is left to SQLite (the
** keydir knows only binary equality).  LIMIT/OFFSET are never consumed;
** ORDER BY only as `ORDER BY key [DESC]` on a scan.  A scan's keys are a
** snapshot taken in xFilter; a key deleted before its row is reached is
** skipped.  Values are read in xColumn only when asked for, so a scan that
** does not use `value` (count(*), SELECT key) reads nothing from disk.
**
** Writes follow the native table's conflict rules (sqlite3_vtab_on_conflict):
** REPLACE overwrites; otherwise a conflict returns SQLITE_CONSTRAINT before
** anything is written and SQLite applies IGNORE / ABORT / FAIL / ROLLBACK
** (R-Tree's rtreeUpdate is the model).  Each statement's writes reach the data
** file, and are fsync'd per the sync option, in xSync.
*/
#include "bitcask_ext.h"
SQLITE_EXTENSION_INIT1

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where a table's store is (see options.c). */
enum { LOC_EXPLICIT, LOC_DEFAULT, LOC_TEMP };

/* Query plans (idxNum): bits 0-1 the access, bits 2-3 a scan's order. */
enum { PLAN_SCAN = 0, PLAN_EQ = 1, PLAN_IN = 2, PLAN_MASK = 3,
       SCAN_ORDERED = 4, /* in key order (SQLite's order for the column) */
       SCAN_DESC = 8 };  /* ... descending */

/* The least row count a scan is estimated at (see bitcaskBestIndex). */
#define SCAN_MIN_ROWS 16.0

/* A private store of a table in an in-memory or temporary database: it lives
** until the table is dropped or the connection closes. */
typedef struct bcx_tempdir {
  char *schema;              /* sqlite3_malloc'd */
  char *table;               /* sqlite3_malloc'd */
  char *path;                /* sqlite3_malloc'd; made by mkdtemp */
  struct bcx_tempdir *next;
} bcx_tempdir;

/* A SQLite savepoint level (xSavepoint's N) and the engine savepoint depth
** that implements it. */
typedef struct bcx_svpt {
  int level;
  unsigned depth;
} bcx_svpt;

struct bitcask_vtab {
  sqlite3_vtab base;       /* base class: must be first */
  sqlite3 *db;             /* the connection */
  bcx_module *mod;         /* the connection's module data */
  char *zDb;               /* schema name: "main", "temp", ... */
  char *zName;             /* table name */
  char *zPath;             /* store directory */
  int location;            /* LOC_EXPLICIT, LOC_DEFAULT or LOC_TEMP */
  bc_options opts;         /* engine options from the CREATE arguments */
  bcx_shared *sh;          /* the shared store; NULL until opened */
  bc_txn *txn;             /* this connection's write transaction on the
                           ** store (xBegin .. xSync/xRollback), or NULL */
  bcx_svpt *svpt;          /* open savepoints, oldest first; sqlite3_malloc'd */
  int nsvpt, nsvptAlloc;
  bitcask_vtab *next;      /* next table in mod->tables */
};

/* One key of a scan: points into the cursor's bc_iter. */
typedef struct bcx_scan_ent {
  const unsigned char *key;
  size_t klen;
} bcx_scan_ent;

typedef struct bitcask_cursor {
  sqlite3_vtab_cursor base; /* base class: must be first */
  int plan;                 /* PLAN_* of the current xFilter */
  int eof;                  /* no current row */
  bc_iter *iter;            /* PLAN_SCAN: the keydir snapshot */
  bcx_scan_ent *ents;       /* PLAN_SCAN: its entries, maybe sorted */
  size_t nent, ient;
  bcx_key *probes;          /* PLAN_EQ/PLAN_IN: keys to probe */
  int nprobe;               /* entries in probes */
  int iprobe;               /* index of the current probe */
  const unsigned char *key; /* current key bytes (in iter or probes) */
  size_t klen;
  bc_info info;             /* current key's keydir info */
  bc_buf vbuf;              /* value read buffer, reused across rows */
  int refreshed;            /* bc_refresh ran for this cursor's statement */
} bitcask_cursor;

/* ---- helpers ---------------------------------------------------------- */

static void vtab_error(bitcask_vtab *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sqlite3_free(p->base.zErrMsg);
  p->base.zErrMsg = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
}

/* Report an engine failure on the table: the engine's message names the
** store and the cause. */
static int engine_error(bitcask_vtab *p, bc_status st) {
  char msg[BCX_ERRMSG_MAX];
  vtab_error(p, "bitcask table '%s': %s", p->zName,
             p->sh ? bc_errmsg_copy(p->sh->store, msg, sizeof msg)
                   : bc_status_name(st));
  return bcx_rc(st);
}

/* Reads and writes go through this connection's transaction when it has
** one (its own writes are visible to it, DESIGN.md "Transactions"), else to
** the committed store. */
static bc_status kv_lookup(bitcask_vtab *p, const void *k, size_t n, bc_info *i) {
  return p->txn ? bc_txn_lookup(p->txn, k, n, i) : bc_lookup(p->sh->store, k, n, i);
}

static bc_status kv_get(bitcask_vtab *p, const void *k, size_t n, bc_buf *b,
                        const void **v, bc_info *i) {
  return p->txn ? bc_txn_get(p->txn, k, n, b, v, i)
                : bc_get(p->sh->store, k, n, b, v, i);
}

static bc_status kv_iter(bitcask_vtab *p, bc_iter **it) {
  return p->txn ? bc_iter_open_txn(p->txn, it) : bc_iter_open(p->sh->store, it);
}

static int vtab_txn(bitcask_vtab *p);
static void txn_forget(bitcask_vtab *p);

/* The table's store, opened on first use (and retried on every use after a
** failure, e.g. while another process holds the lock).  Returns SQLITE_OK or
** an error with the message in p->base.zErrMsg. */
static int vtab_store(bitcask_vtab *p) {
  if (p->sh) return SQLITE_OK;
  char *zErr = NULL;
  int rc = bcx_shared_open(p->zName, p->zPath, 0, &p->opts, &p->sh, &zErr);
  if (rc != SQLITE_OK) {
    sqlite3_free(p->base.zErrMsg);
    p->base.zErrMsg = zErr;
  } else {
    sqlite3_free(zErr);
  }
  return rc;
}

static bcx_tempdir *tempdir_find(bcx_module *m, const char *zDb,
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

static void tempdir_remove(bcx_module *m, bcx_tempdir *t) {
  for (bcx_tempdir **pp = &m->tempdirs; *pp; pp = &(*pp)->next) {
    if (*pp == t) {
      *pp = t->next;
      break;
    }
  }
  tempdir_free(t);
}

/* Make a private temporary directory for an in-memory table. */
/* Delete a private store and forget it. */
static void tempdir_discard(bcx_module *m, bcx_tempdir *t) {
  char err[256];
  bc_destroy(t->path, err, sizeof err);
  rmdir(t->path);
  tempdir_remove(m, t);
}

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

static void vtab_free(bitcask_vtab *p) {
  if (!p) return;
  sqlite3_free(p->zDb);
  sqlite3_free(p->zName);
  sqlite3_free(p->zPath);
  sqlite3_free(p->svpt);
  sqlite3_free(p->base.zErrMsg);
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

/* ---- xCreate / xConnect ----------------------------------------------- */

/* argv[0] module, argv[1] schema, argv[2] table, argv[3..] options. */
static int bitcaskInit(sqlite3 *db, void *pAux, int argc,
                       const char *const *argv, sqlite3_vtab **ppVtab,
                       char **pzErr, int isCreate) {
  bcx_module *mod = pAux;
  const char *zDb = argv[1], *zTab = argv[2];
  bcx_options o;
  int rc, isTemp = 0;
  *ppVtab = NULL;

  rc = bcx_options_parse(zTab, argc, argv, &o, pzErr);
  if (rc != SQLITE_OK) return rc;

  bitcask_vtab *p = sqlite3_malloc(sizeof *p);
  if (!p) {
    bcx_options_clear(&o);
    return SQLITE_NOMEM;
  }
  memset(p, 0, sizeof *p);
  p->db = db;
  p->mod = mod;
  p->zDb = sqlite3_mprintf("%s", zDb);
  p->zName = sqlite3_mprintf("%s", zTab);
  bc_options_init(&p->opts);
  if (o.max_file_size) p->opts.max_file_size = o.max_file_size;
  if (o.sync >= 0) p->opts.sync = (bc_sync_mode)o.sync;
  /* readonly=1, or a database opened read-only: follow the writer's store
  ** without its lock and write nothing. */
  p->opts.read_only = o.readonly == 1 || sqlite3_db_readonly(db, zDb) == 1;
  rc = bcx_store_path(db, zDb, zTab, &o, &p->zPath, &isTemp);
  p->location = o.dir ? LOC_EXPLICIT : isTemp ? LOC_TEMP : LOC_DEFAULT;
  bcx_options_clear(&o);
  if (rc == SQLITE_OK && (!p->zDb || !p->zName)) rc = SQLITE_NOMEM;

  if (rc == SQLITE_OK && isTemp) {
    bcx_tempdir *t = tempdir_find(mod, zDb, zTab);
    if (t && isCreate) {
      /* Left by an earlier table of that name in a database since detached
      ** (a CREATE cannot meet a live one): a new table starts empty. */
      tempdir_discard(mod, t);
      t = NULL;
    }
    if (!t && isCreate) {
      rc = tempdir_create(mod, zDb, zTab, pzErr);
      t = mod->tempdirs;
    }
    if (rc == SQLITE_OK && !t) {
      *pzErr = sqlite3_mprintf("bitcask table '%s': the private store of this "
                               "in-memory table is gone", zTab);
      rc = SQLITE_CANTOPEN;
    }
    if (rc == SQLITE_OK) {
      p->zPath = sqlite3_mprintf("%s", t->path);
      if (!p->zPath) rc = SQLITE_NOMEM;
    }
  }

  /* xCreate opens (and creates) the store now so that a bad dir fails the
  ** CREATE; xConnect defers to first use, so that a store that is missing or
  ** locked by another process still lets the schema load and DROP work. */
  if (rc == SQLITE_OK && isCreate && p->location == LOC_DEFAULT &&
      strchr(zTab, '/')) {
    *pzErr = sqlite3_mprintf("bitcask table '%s': a table name with '/' cannot "
                             "name its default store directory; give dir=...",
                             zTab);
    rc = SQLITE_ERROR;
  }
  if (rc == SQLITE_OK && isCreate) {
    rc = bcx_shared_open(zTab, p->zPath, !p->opts.read_only, &p->opts, &p->sh, pzErr);
    if (rc != SQLITE_OK && p->location == LOC_EXPLICIT && *pzErr) {
      /* Name the option the user gave (DESIGN.md: errors name the option). */
      char *m = sqlite3_mprintf("%s (option dir='%s')", *pzErr, p->zPath);
      if (m) {
        sqlite3_free(*pzErr);
        *pzErr = m;
      }
    }
  }

  if (rc == SQLITE_OK) {
    rc = sqlite3_declare_vtab(
        db, "CREATE TABLE x(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID");
  }
  if (rc == SQLITE_OK) {
    sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
    sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
    p->next = mod->tables;
    mod->tables = p;
    *ppVtab = &p->base;
    return SQLITE_OK;
  }
  if (p->sh) bcx_shared_release(p->sh);
  vtab_free(p);
  return rc;
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

static int bitcaskDisconnect(sqlite3_vtab *pVtab) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  bc_txn_rollback(p->txn); /* SQLite rolled back already; be sure */
  txn_forget(p);
  vtab_unlink(p);
  bcx_shared_release(p->sh);
  vtab_free(p);
  return SQLITE_OK;
}

/* DROP TABLE: delete the store's files.  Refused inside an explicit
** transaction, because SQLite calls xDestroy at once and a later ROLLBACK
** would bring back a table whose files are gone. */
static int bitcaskDestroy(sqlite3_vtab *pVtab) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  if (!sqlite3_get_autocommit(p->db)) {
    vtab_error(p, "bitcask table '%s': DROP TABLE inside a transaction is not "
               "supported (the store's files would be deleted before COMMIT)",
               p->zName);
    return SQLITE_ERROR;
  }
  int rc = vtab_store(p);
  if (rc != SQLITE_OK) {
    struct stat st;
    /* A store whose directory is gone has nothing left to delete. */
    if (stat(p->zPath, &st) != 0 && errno == ENOENT) {
      rc = SQLITE_OK;
    } else {
      return rc;
    }
  }
  /* A read-only table only follows a store another process owns: dropping
  ** it forgets the table, never the files. */
  if (p->sh && !p->opts.read_only) bcx_shared_doom(p->sh, p->location == LOC_TEMP);
  if (p->location == LOC_TEMP) {
    bcx_tempdir *t = tempdir_find(p->mod, p->zDb, p->zName);
    if (t) tempdir_remove(p->mod, t);
  }
  vtab_unlink(p);
  rc = bcx_shared_release(p->sh);
  vtab_free(p);
  return rc;
}

/* ALTER TABLE ... RENAME TO zNew.  A store at the default location is named
** after the table, so its directory moves with it; SQLite then reconnects the
** table under the new name.  Refused inside a transaction (a ROLLBACK would
** restore the old name but not the directory) and while another connection
** of this process uses the store. */
static int bitcaskRename(sqlite3_vtab *pVtab, const char *zNew) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  if (p->location == LOC_TEMP) {
    bcx_tempdir *t = tempdir_find(p->mod, p->zDb, p->zName);
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
  if (p->location != LOC_DEFAULT) return SQLITE_OK;
  if (p->opts.read_only) {
    vtab_error(p, "bitcask table '%s': cannot rename a read-only table: its "
               "store belongs to the writing process", p->zName);
    return SQLITE_READONLY;
  }
  if (!sqlite3_get_autocommit(p->db)) {
    vtab_error(p, "bitcask table '%s': cannot rename inside a transaction (its "
               "store directory is renamed at once)", p->zName);
    return SQLITE_ERROR;
  }
  int rc = vtab_store(p);
  if (rc != SQLITE_OK) return rc;
  if (bcx_shared_refs(p->sh) > 1) {
    vtab_error(p, "bitcask table '%s': cannot rename while another connection "
               "uses its store", p->zName);
    return SQLITE_BUSY;
  }
  const char *dbfile = sqlite3_db_filename(p->db, p->zDb);
  char *zNewPath = sqlite3_mprintf("%s-%s.bitcask", dbfile, zNew);
  if (!zNewPath) return SQLITE_NOMEM;
  struct stat st;
  if (stat(zNewPath, &st) == 0) {
    vtab_error(p, "bitcask table '%s': cannot rename to '%s': '%s' already "
               "exists", p->zName, zNew, zNewPath);
    sqlite3_free(zNewPath);
    return SQLITE_ERROR;
  }
  bcx_shared_release(p->sh);
  p->sh = NULL;
  if (rename(p->zPath, zNewPath) != 0) {
    vtab_error(p, "bitcask table '%s': cannot rename store '%s' to '%s': %s",
               p->zName, p->zPath, zNewPath, strerror(errno));
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

/* ---- xBestIndex ------------------------------------------------------- */

static int bitcaskBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *info) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  int iEq = -1, iIn = -1;
  for (int i = 0; i < info->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &info->aConstraint[i];
    if (!c->usable || c->iColumn != 0 || c->op != SQLITE_INDEX_CONSTRAINT_EQ)
      continue;
    const char *coll = sqlite3_vtab_collation(info, i);
    if (coll && sqlite3_stricmp(coll, "BINARY") != 0) continue;
    if (sqlite3_vtab_in(info, i, -1)) {
      if (iIn < 0) iIn = i;
    } else if (iEq < 0) {
      iEq = i;
    }
  }
  /* Ask for the whole IN list at once; should SQLite decline after all, the
  ** values come one per xFilter call and the equality plan serves them. */
  if (iEq < 0 && iIn >= 0 && !sqlite3_vtab_in(info, iIn, 1)) {
    iEq = iIn;
    iIn = -1;
  }
  if (iEq >= 0) {
    info->aConstraintUsage[iEq].argvIndex = 1;
    info->aConstraintUsage[iEq].omit = 1;
    info->idxNum = PLAN_EQ;
    info->idxStr = "key=?";
    info->estimatedCost = 1.0;
    info->estimatedRows = 1;
    info->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
  } else if (iIn >= 0) {
    info->aConstraintUsage[iIn].argvIndex = 1;
    info->aConstraintUsage[iIn].omit = 1;
    info->idxNum = PLAN_IN;
    info->idxStr = "key IN (...)";
    info->estimatedCost = 10.0;
    info->estimatedRows = 10;
  } else {
    /* The live key count is exact and free; before the store is open (a
    ** deferred connect) fall back to a large guess. */
    double n = 1e6;
    if (p->sh) n = (double)bc_count(p->sh->store);
    /* Never below SCAN_MIN_ROWS: a plan outlives the data it was made for
    ** (prepared statements, a table filled after CREATE), and an almost
    ** empty kv table would otherwise become the outer loop of a join on key
    ** instead of being probed. */
    if (n < SCAN_MIN_ROWS) n = SCAN_MIN_ROWS;
    /* Rows come in key order -- SQLite's order for the column, as a native
    ** table's scan -- unless only count(*) is wanted (colUsed 0): then no
    ** key is compared.  ORDER BY key [DESC] is served by that order. */
    info->idxNum = PLAN_SCAN;
    info->idxStr = "scan";
    if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn == 0) {
      info->idxNum |= SCAN_ORDERED | (info->aOrderBy[0].desc ? SCAN_DESC : 0);
      info->idxStr = info->aOrderBy[0].desc ? "scan in descending key order"
                                            : "scan in key order";
      info->orderByConsumed = 1;
    } else if (info->colUsed != 0) {
      info->idxNum |= SCAN_ORDERED;
      info->idxStr = "scan in key order";
    }
    info->estimatedCost = 10.0 + n;
    info->estimatedRows = n > 0 ? (sqlite3_int64)n : 1;
  }
  return SQLITE_OK;
}

/* ---- cursor ------------------------------------------------------------ */

static int bitcaskOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCursor) {
  (void)pVtab;
  bitcask_cursor *c = sqlite3_malloc(sizeof *c);
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, sizeof *c);
  c->eof = 1;
  *ppCursor = &c->base;
  return SQLITE_OK;
}

static void cursor_reset(bitcask_cursor *c) {
  bc_iter_close(c->iter);
  c->iter = NULL;
  sqlite3_free(c->ents);
  c->ents = NULL;
  c->nent = c->ient = 0;
  for (int i = 0; i < c->nprobe; i++) bcx_key_clear(&c->probes[i]);
  sqlite3_free(c->probes);
  c->probes = NULL;
  c->nprobe = c->iprobe = 0;
  c->eof = 1;
}

static int bitcaskClose(sqlite3_vtab_cursor *cur) {
  bitcask_cursor *c = (bitcask_cursor *)cur;
  cursor_reset(c);
  bc_buf_free(&c->vbuf);
  sqlite3_free(c);
  return SQLITE_OK;
}

/* Advance to the next probe key that is live, or to eof. */
static void probe_advance(bitcask_cursor *c) {
  bitcask_vtab *p = (bitcask_vtab *)c->base.pVtab;
  for (; c->iprobe < c->nprobe; c->iprobe++) {
    bcx_key *k = &c->probes[c->iprobe];
    if (kv_lookup(p, k->data, k->len, &c->info) == BC_OK) {
      c->key = k->data;
      c->klen = k->len;
      c->eof = 0;
      return;
    }
  }
  c->eof = 1;
}

/* Next key of the scan that is still live -- the snapshot is from xFilter;
** a key deleted since (by any connection, or by this statement) is skipped
** rather than returned with a NULL value -- with its current info. */
static void scan_advance(bitcask_cursor *c) {
  bitcask_vtab *p = (bitcask_vtab *)c->base.pVtab;
  for (; c->ient < c->nent; c->ient++) {
    bcx_scan_ent *e = &c->ents[c->ient];
    if (kv_lookup(p, e->key, e->klen, &c->info) == BC_OK) {
      c->key = e->key;
      c->klen = e->klen;
      c->eof = 0;
      return;
    }
  }
  c->eof = 1;
}

static int bitcaskNext(sqlite3_vtab_cursor *cur) {
  bitcask_cursor *c = (bitcask_cursor *)cur;
  if ((c->plan & PLAN_MASK) == PLAN_SCAN) {
    c->ient++;
    scan_advance(c);
  } else {
    c->iprobe++;
    probe_advance(c);
  }
  return SQLITE_OK;
}

/* Add the key of `v` to the cursor's probe list; NULL, and keys too long to
** exist, match nothing and are skipped. */
static int probe_add(bitcask_cursor *c, sqlite3_value *v, int *pAlloc) {
  if (c->nprobe == *pAlloc) {
    int n = *pAlloc ? *pAlloc * 2 : 4;
    bcx_key *a = sqlite3_realloc64(c->probes, (sqlite3_uint64)n * sizeof *a);
    if (!a) return SQLITE_NOMEM;
    /* The keys moved: short ones point into themselves. */
    for (int i = 0; i < c->nprobe; i++) bcx_key_rebase(&a[i]);
    c->probes = a;
    *pAlloc = n;
  }
  int rc = bcx_key_encode(v, &c->probes[c->nprobe]);
  if (rc == SQLITE_MISMATCH || rc == SQLITE_TOOBIG) return SQLITE_OK;
  if (rc != SQLITE_OK) return rc;
  c->nprobe++;
  return SQLITE_OK;
}

static int ent_cmp_asc(const void *a, const void *b) {
  const bcx_scan_ent *x = a, *y = b;
  return bcx_key_compare(x->key, x->klen, y->key, y->klen);
}

static int ent_cmp_desc(const void *a, const void *b) {
  return ent_cmp_asc(b, a);
}

/* Take the snapshot's keys into c->ents, sorted if the plan asks, and go to
** the first live one. */
static int scan_start(bitcask_cursor *c, int idxNum) {
  size_t n = 0, cap = 0;
  const void *key;
  size_t klen;
  while (bc_iter_next(c->iter, &key, &klen, NULL) == BC_OK) {
    if (n == cap) {
      cap = cap ? cap * 2 : 256;
      bcx_scan_ent *a = sqlite3_realloc64(c->ents, (sqlite3_uint64)cap * sizeof *a);
      if (!a) return SQLITE_NOMEM;
      c->ents = a;
    }
    c->ents[n].key = key;
    c->ents[n].klen = klen;
    n++;
  }
  c->nent = n;
  c->ient = 0;
  if ((idxNum & SCAN_ORDERED) && n > 1)
    qsort(c->ents, n, sizeof *c->ents, (idxNum & SCAN_DESC) ? ent_cmp_desc : ent_cmp_asc);
  scan_advance(c);
  return SQLITE_OK;
}

static int bitcaskFilter(sqlite3_vtab_cursor *cur, int idxNum,
                         const char *idxStr, int argc, sqlite3_value **argv) {
  bitcask_cursor *c = (bitcask_cursor *)cur;
  bitcask_vtab *p = (bitcask_vtab *)cur->pVtab;
  (void)idxStr;
  (void)argc;
  cursor_reset(c);
  c->plan = idxNum;
  int rc = vtab_store(p);
  if (rc != SQLITE_OK) return rc;
  if (!c->refreshed) {
    /* Once per statement (a cursor lives for one): a read-only table
    ** catches up with what the writing process committed. */
    c->refreshed = 1;
    bc_status st = bc_refresh(p->sh->store);
    if (st != BC_OK) return engine_error(p, st);
  }

  if ((idxNum & PLAN_MASK) == PLAN_SCAN) {
    bc_status st = kv_iter(p, &c->iter);
    if (st != BC_OK) return engine_error(p, st);
    return scan_start(c, idxNum);
  }
  int alloc = 0;
  if (idxNum == PLAN_EQ) {
    rc = probe_add(c, argv[0], &alloc);
  } else {
    sqlite3_value *v;
    for (rc = sqlite3_vtab_in_first(argv[0], &v); rc == SQLITE_OK && v;
         rc = sqlite3_vtab_in_next(argv[0], &v)) {
      rc = probe_add(c, v, &alloc);
      if (rc != SQLITE_OK) break;
    }
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  if (rc != SQLITE_OK) return rc;
  c->iprobe = 0;
  probe_advance(c);
  return SQLITE_OK;
}

static int bitcaskEof(sqlite3_vtab_cursor *cur) {
  return ((bitcask_cursor *)cur)->eof;
}

static int bitcaskColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx,
                         int i) {
  bitcask_cursor *c = (bitcask_cursor *)cur;
  bitcask_vtab *p = (bitcask_vtab *)cur->pVtab;
  int rc;
  if (i == 0) {
    rc = bcx_key_result(ctx, c->key, c->klen, c->info.meta);
  } else {
    /* An UPDATE that does not change `value` need not read it. */
    if (sqlite3_vtab_nochange(ctx)) return SQLITE_OK;
    const void *val;
    bc_info info;
    bc_status st = kv_get(p, c->key, c->klen, &c->vbuf, &val, &info);
    if (st == BC_NOTFOUND) {
      /* Deleted after a scan's snapshot was taken. */
      sqlite3_result_null(ctx);
      return SQLITE_OK;
    }
    if (st != BC_OK) {
      char em[BCX_ERRMSG_MAX];
      char *msg = sqlite3_mprintf("bitcask table '%s': %s", p->zName,
                                  bc_errmsg_copy(p->sh->store, em, sizeof em));
      sqlite3_result_error(ctx, msg ? msg : "out of memory", -1);
      sqlite3_free(msg);
      sqlite3_result_error_code(ctx, bcx_rc(st));
      return bcx_rc(st);
    }
    rc = bcx_value_result(ctx, val, info.value_size, info.meta);
  }
  if (rc == SQLITE_CORRUPT) {
    sqlite3_result_error(ctx, "bitcask: a record has a malformed key or value", -1);
    sqlite3_result_error_code(ctx, SQLITE_CORRUPT);
  }
  return rc;
}

static int bitcaskRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *pRowid) {
  /* A WITHOUT ROWID virtual table: SQLite never asks. */
  (void)cur;
  *pRowid = 0;
  return SQLITE_ERROR;
}

/* ---- xUpdate ------------------------------------------------------------ */

static int constraint_error(bitcask_vtab *p, const char *what) {
  vtab_error(p, "%s constraint failed: %s.key", what, p->zName);
  return SQLITE_CONSTRAINT;
}

static int encode_key_checked(bitcask_vtab *p, sqlite3_value *v, bcx_key *k) {
  int rc = bcx_key_encode(v, k);
  if (rc == SQLITE_MISMATCH) return constraint_error(p, "NOT NULL");
  if (rc == SQLITE_TOOBIG) {
    vtab_error(p, "bitcask table '%s': key of %d bytes is too large (the "
               "maximum is %u bytes)", p->zName, sqlite3_value_bytes(v),
               (unsigned)BCX_MAX_KEY_PAYLOAD);
  }
  return rc;
}

/* argc == 1: DELETE argv[0].
** argv[0] NULL: INSERT (argv[2] key, argv[3] value).
** otherwise: UPDATE the row with key argv[0] to (argv[2], argv[3]). */
static int bitcaskUpdate(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv,
                         sqlite3_int64 *pRowid) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  bcx_key oldk = {0}, newk = {0};
  bcx_value val;
  bc_buf buf = {0};
  bc_status st = BC_OK;
  (void)pRowid;
  int rc = vtab_txn(p);
  if (rc != SQLITE_OK) return rc;
  bc_txn *t = p->txn;

  if (argc == 1) {
    rc = bcx_key_encode(argv[0], &oldk);
    if (rc == SQLITE_MISMATCH || rc == SQLITE_TOOBIG) return SQLITE_OK;
    if (rc != SQLITE_OK) return rc;
    st = bc_txn_delete(t, oldk.data, oldk.len);
    bcx_key_clear(&oldk);
    if (st == BC_NOTFOUND) st = BC_OK;
    return st == BC_OK ? SQLITE_OK : engine_error(p, st);
  }

  int isReplace = sqlite3_vtab_on_conflict(p->db) == SQLITE_REPLACE;
  rc = encode_key_checked(p, argv[2], &newk);
  if (rc != SQLITE_OK) return rc;

  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
    /* INSERT */
    rc = bcx_value_encode(argv[3], &val);
    if (rc == SQLITE_OK && !isReplace &&
        bc_txn_lookup(t, newk.data, newk.len, NULL) == BC_OK)
      rc = constraint_error(p, "UNIQUE");
    if (rc == SQLITE_OK)
      st = bc_txn_put(t, newk.data, newk.len, (uint8_t)(newk.key_meta | val.value_meta),
                      val.data, val.len);
    goto done;
  }

  /* UPDATE */
  rc = encode_key_checked(p, argv[0], &oldk);
  if (rc != SQLITE_OK) goto done;
  int sameKey = oldk.len == newk.len && memcmp(oldk.data, newk.data, newk.len) == 0;
  if (!sameKey && !isReplace && bc_txn_lookup(t, newk.data, newk.len, NULL) == BC_OK) {
    rc = constraint_error(p, "UNIQUE");
    goto done;
  }
  if (sqlite3_value_nochange(argv[3])) {
    /* The value is unchanged and was not read (xColumn saw nochange). */
    const void *data;
    bc_info info;
    st = bc_txn_get(t, oldk.data, oldk.len, &buf, &data, &info);
    if (st == BC_NOTFOUND) {
      st = BC_OK; /* the row is gone: nothing to update */
      goto done;
    }
    if (st != BC_OK) goto done;
    uint8_t meta = (uint8_t)(newk.key_meta | (info.meta & BCX_VALUE_MASK));
    if (sameKey && meta == info.meta) goto done; /* nothing changes */
    st = bc_txn_put(t, newk.data, newk.len, meta, data, info.value_size);
  } else {
    rc = bcx_value_encode(argv[3], &val);
    if (rc != SQLITE_OK) goto done;
    st = bc_txn_put(t, newk.data, newk.len, (uint8_t)(newk.key_meta | val.value_meta),
                    val.data, val.len);
  }
  /* A key change is a put of the new key and a tombstone for the old one,
  ** committed together. */
  if (st == BC_OK && !sameKey) {
    st = bc_txn_delete(t, oldk.data, oldk.len);
    if (st == BC_NOTFOUND) st = BC_OK;
  }

done:
  bc_buf_free(&buf);
  bcx_key_clear(&oldk);
  bcx_key_clear(&newk);
  if (rc == SQLITE_TOOBIG && !p->base.zErrMsg) {
    vtab_error(p, "bitcask table '%s': value of %d bytes is too large (the "
               "maximum is %u bytes)", p->zName, sqlite3_value_bytes(argv[3]),
               (unsigned)BC_MAX_VALUE_SIZE);
  }
  if (rc != SQLITE_OK) return rc;
  return st == BC_OK ? SQLITE_OK : engine_error(p, st);
}

/* ---- transactions (each statement's writes are synced in xSync) --------- */

/* ---- transactions ------------------------------------------------------
**
** A write transaction of the table is a bc_txn of its store, begun in xBegin
** (SQLite calls it before the first write of a transaction, explicit or the
** implicit one of an autocommit statement) and committed in xSync, which
** runs before SQLite's own commit and whose error fails the COMMIT
** (xCommit's return is ignored: DESIGN.md section 4).  xRollback discards
** it.  SQLite's savepoints -- the user's and the statement savepoints it
** opens inside explicit transactions -- map onto the bc_txn's savepoints:
** p->svpt pairs each SQLite level with its engine depth.  One bc_txn per
** store at a time: another connection's write gets SQLITE_BUSY until this
** one commits or rolls back. */

static int txn_error(bitcask_vtab *p, bc_status st) {
  if (st == BC_BUSY) {
    vtab_error(p, "bitcask table '%s': store '%s' is busy: another connection "
               "of this process has a write transaction open on it (retry "
               "after it commits or rolls back)", p->zName, p->zPath);
    return SQLITE_BUSY;
  }
  return engine_error(p, st);
}

static void txn_forget(bitcask_vtab *p) {
  p->txn = NULL;
  p->nsvpt = 0;
}

/* This connection's transaction on the table's store, begun if needed (an
** xUpdate always follows an xBegin, but the table's store may have been
** opened only now). */
static int vtab_txn(bitcask_vtab *p) {
  int rc = vtab_store(p);
  if (rc != SQLITE_OK || p->txn) return rc;
  bc_status st = bc_txn_begin(p->sh->store, &p->txn);
  return st == BC_OK ? SQLITE_OK : txn_error(p, st);
}

static int bitcaskBegin(sqlite3_vtab *pVtab) {
  return vtab_txn((bitcask_vtab *)pVtab);
}

/* The commit point (DESIGN.md section 4): the records and the COMMIT are
** written and synced now, and any error fails the COMMIT statement.
** SQLite's own commit comes next and may still fail (SQLITE_BUSY); SQLite
** then calls xRollback, which voids the COMMIT with an abort record. */
static int bitcaskSync(sqlite3_vtab *pVtab) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  if (!p->txn) return SQLITE_OK;
  bc_status st = bc_txn_prepare(p->txn);
  return st == BC_OK ? SQLITE_OK : engine_error(p, st);
}

/* After SQLite committed: make the writes visible to every connection.  No
** I/O; it cannot fail after a successful xSync (SQLite ignores the code). */
static int bitcaskCommit(sqlite3_vtab *pVtab) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  if (!p->txn) return SQLITE_OK;
  bc_status st = bc_txn_commit(p->txn); /* frees it, whatever the outcome */
  txn_forget(p);
  if (st == BC_OK) return SQLITE_OK;
  int rc = engine_error(p, st);
  sqlite3_log(rc, "%s", p->base.zErrMsg ? p->base.zErrMsg : "bitcask commit failed");
  return rc;
}

static int bitcaskRollback(sqlite3_vtab *pVtab) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  bc_txn_rollback(p->txn);
  txn_forget(p);
  return SQLITE_OK;
}

/* Index of the oldest open savepoint at SQLite level >= iLevel, or -1. */
static int svpt_find(bitcask_vtab *p, int iLevel) {
  for (int i = 0; i < p->nsvpt; i++)
    if (p->svpt[i].level >= iLevel) return i;
  return -1;
}

static int bitcaskSavepoint(sqlite3_vtab *pVtab, int iLevel) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  if (!p->txn) return SQLITE_OK;
  /* A level at or below an open one replaces it (SQLite reuses levels). */
  int i = svpt_find(p, iLevel);
  if (i >= 0) {
    bc_status st = bc_txn_release(p->txn, p->svpt[i].depth);
    if (st != BC_OK) return engine_error(p, st);
    p->nsvpt = i;
  }
  if (p->nsvpt == p->nsvptAlloc) {
    int n = p->nsvptAlloc ? p->nsvptAlloc * 2 : 8;
    bcx_svpt *a = sqlite3_realloc64(p->svpt, (sqlite3_uint64)n * sizeof *a);
    if (!a) return SQLITE_NOMEM;
    p->svpt = a;
    p->nsvptAlloc = n;
  }
  unsigned depth;
  bc_status st = bc_txn_savepoint(p->txn, &depth);
  if (st != BC_OK) return engine_error(p, st);
  p->svpt[p->nsvpt].level = iLevel;
  p->svpt[p->nsvpt].depth = depth;
  p->nsvpt++;
  return SQLITE_OK;
}

static int bitcaskRelease(sqlite3_vtab *pVtab, int iLevel) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  int i = p->txn ? svpt_find(p, iLevel) : -1;
  if (i < 0) return SQLITE_OK;
  bc_status st = bc_txn_release(p->txn, p->svpt[i].depth);
  if (st != BC_OK) return engine_error(p, st);
  p->nsvpt = i;
  return SQLITE_OK;
}

/* SQLite tells a table of every savepoint opened after its transaction
** began (and, at xBegin, of the deepest level then open), so a savepoint
** this table has no mark for at exactly iLevel was opened before any write
** of it -- including level -1, a transaction that a SAVEPOINT outside BEGIN
** started: rolling back to it empties the table's transaction, which goes on
** from nothing as SQLite's does. */
static int bitcaskRollbackTo(sqlite3_vtab *pVtab, int iLevel) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  if (!p->txn) return SQLITE_OK;
  int i = 0;
  while (i < p->nsvpt && p->svpt[i].level != iLevel) i++;
  if (i == p->nsvpt) {
    bc_store *s = p->sh->store;
    bc_txn_rollback(p->txn);
    p->txn = NULL;
    p->nsvpt = 0;
    bc_status st = bc_txn_begin(s, &p->txn);
    return st == BC_OK ? SQLITE_OK : txn_error(p, st);
  }
  bc_status st = bc_txn_rollback_to(p->txn, p->svpt[i].depth);
  if (st != BC_OK) return engine_error(p, st);
  p->nsvpt = i + 1; /* savepoint iLevel stays open, back at its start */
  return SQLITE_OK;
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
  return vtab_store(t) == SQLITE_OK ? t->sh : NULL;
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
  while (m->tempdirs) tempdir_discard(m, m->tempdirs);
  sqlite3_free(m);
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
  int rc = sqlite3_create_module_v2(db, "bitcask", &bitcaskModule, m,
                                    moduleDestroy);
  if (rc != SQLITE_OK) return rc; /* moduleDestroy has freed m */
  return bcx_register_functions(db, m);
}
