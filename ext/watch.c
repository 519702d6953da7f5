/*
** watch.c -- CREATE VIRTUAL TABLE and DROP TABLE of a bitcask table finished
** or undone with the transaction they ran in, through the transaction
** watcher (bitcask_txn_watch), an eponymous virtual table the extension
** makes part of that transaction.
*/
#include "vtab.h"
SQLITE_EXTENSION_INIT3

#include <string.h>

/* ---- creating and dropping ----------------------------------------------
**
** A table's store lives outside the database file, so SQLite's ROLLBACK
** cannot take back what CREATE VIRTUAL TABLE and DROP TABLE do to it; the
** table does it, at the moment the transaction's outcome is known:
**
**  - CREATE makes (or joins) the store at once -- a bad dir= must fail the
**    CREATE -- and marks the table pending_create.  Its xCommit confirms
**    it; its xRollback undoes it (bcx_create_undo): the table leaves OWNERS and,
**    when that CREATE made the store and no other table uses it, the store
**    is deleted.  So `BEGIN; CREATE VIRTUAL TABLE a ...; ROLLBACK` leaves
**    nothing behind.
**  - DROP (xDestroy) checks what can fail now (the store's lock), then
**    waits: the table moves to mod->dropped, keeping its store open (and
**    locked against other processes), and its files go when the
**    transaction commits; a ROLLBACK -- or a ROLLBACK TO a savepoint older
**    than the DROP -- brings the table back with its store untouched.
**
** SQLite tells a table nothing once xDestroy has returned, and tells a new
** table nothing of the savepoints open when xCreate ran, so a ROLLBACK TO
** reaches neither.  The watcher is an eponymous virtual table of this
** module's connection (bitcask_txn_watch, never visible in a schema) that
** the extension makes part of the transaction by running
** `DELETE FROM main.bitcask_txn_watch WHERE 0` inside xCreate / xDestroy:
** SQLite then calls its xBegin, xSavepoint/xRelease/xRollbackTo, xSync and
** xCommit/xRollback like any table's.  It tracks the innermost savepoint
** level, records at which level each pending CREATE and DROP happened, and
** at the end of the transaction (or at a ROLLBACK TO) finishes or undoes
** them; for a dropped table it also drives the table's own transaction
** (writes made before the DROP are still part of the user's transaction).
** A dropped table that a ROLLBACK TO brought back with a transaction hands
** that transaction to the table's next xConnect ("adopted"). */

/* Undo p's CREATE (its transaction rolled back, or a ROLLBACK TO a savepoint
** older than it): the table never existed.  p is inert from now on (ghost)
** and SQLite disconnects it later. */
void bcx_create_undo(bitcask_vtab *p) {
  if (!p->pending_create) return;
  p->pending_create = 0;
  p->watch_create = 0;
  bc_txn_rollback(p->txn);
  bcx_txn_forget(p);
  p->ghost = 1;
  if (!p->sh) return;
  int destroy = 0;
  if (p->location == LOC_TEMP) {
    destroy = 1;
    bcx_tempdir *t = bcx_tempdir_find(p->mod, p->zDb, p->zName);
    if (t) bcx_tempdir_remove(p->mod, t);
  } else if (bcx_vtab_owns(p)) {
    char *zErr = NULL;
    int empty = 0;
    int rc = bcx_owners_unjoin(p->db, p->zDb, p->zName, p->sh, &empty, &zErr);
    if (rc != SQLITE_OK)
      sqlite3_log(rc, "%s", zErr ? zErr : "bitcask: a rolled-back CREATE left OWNERS as it was");
    sqlite3_free(zErr);
    /* A store that was there before the CREATE (dir= naming one) stays. */
    destroy = rc == SQLITE_OK && empty && p->created_store;
  }
  if (destroy) bcx_shared_mark_destroy(p->sh, p->location == LOC_TEMP);
  if (!p->snap) {
    bcx_shared_release(p->sh, p->gen); /* a store marked for destruction is deleted here */
    p->sh = NULL;
  }
}

void bcx_dropped_free(bitcask_vtab *p) {
  bc_snapshot_close(p->snap);
  p->snap = NULL;
  bc_txn_rollback(p->txn);
  bcx_txn_forget(p);
  bcx_shared_release(p->sh, p->gen);
  bcx_vtab_free(p);
}

/* The end of a DROP TABLE whose transaction committed: the table leaves the
** owners file and its store is deleted when it was the last owner (a private
** store always).  Nothing can fail the COMMIT any more: a failure is
** logged (sqlite3_log) and the store left, as after a crash. */
static void drop_finish(bitcask_vtab *p) {
  char *zErr = NULL;
  int rc = bcx_drop_store(p, &zErr);
  if (rc != SQLITE_OK)
    sqlite3_log(rc, "%s", zErr ? zErr : "bitcask: DROP TABLE left the store");
  sqlite3_free(zErr);
  bcx_dropped_free(p);
}

/* Make the watcher part of the open transaction (explicit, or the implicit
** one of the statement running).  SQLITE_OK when it is. */
int bcx_watch_join(bitcask_vtab *p) {
  bcx_module *m = p->mod;
  if (m->watch_in_txn) return SQLITE_OK;
  int rc = sqlite3_exec(p->db, "DELETE FROM main.bitcask_txn_watch WHERE 0", NULL, NULL, NULL);
  if (rc == SQLITE_OK && !m->watch_in_txn) rc = SQLITE_ERROR; /* a table of that name hides it */
  return rc;
}

typedef struct watch_vtab {
  sqlite3_vtab base;
  bcx_module *mod;
} watch_vtab;

static int watchConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                        sqlite3_vtab **ppVtab, char **pzErr) {
  (void)argc;
  (void)argv;
  (void)pzErr;
  int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(unused)");
  if (rc != SQLITE_OK) return rc;
  watch_vtab *w = sqlite3_malloc(sizeof *w);
  if (!w) return SQLITE_NOMEM;
  memset(w, 0, sizeof *w);
  w->mod = pAux;
  sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  *ppVtab = &w->base;
  return SQLITE_OK;
}

static int watchDisconnect(sqlite3_vtab *pVtab) {
  sqlite3_free(pVtab);
  return SQLITE_OK;
}

static int watchBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *info) {
  (void)pVtab;
  info->estimatedCost = 1;
  info->estimatedRows = 0;
  return SQLITE_OK;
}

static int watchOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCursor) {
  (void)pVtab;
  sqlite3_vtab_cursor *c = sqlite3_malloc(sizeof *c);
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, sizeof *c);
  *ppCursor = c;
  return SQLITE_OK;
}

static int watchClose(sqlite3_vtab_cursor *cur) {
  sqlite3_free(cur);
  return SQLITE_OK;
}

static int watchFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr,
                       int argc, sqlite3_value **argv) {
  (void)cur;
  (void)idxNum;
  (void)idxStr;
  (void)argc;
  (void)argv;
  return SQLITE_OK;
}

static int watchNext(sqlite3_vtab_cursor *cur) {
  (void)cur;
  return SQLITE_OK;
}

static int watchEof(sqlite3_vtab_cursor *cur) {
  (void)cur;
  return 1; /* no rows, ever */
}

static int watchColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i) {
  (void)cur;
  (void)ctx;
  (void)i;
  return SQLITE_OK;
}

static int watchRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *pRowid) {
  (void)cur;
  *pRowid = 0;
  return SQLITE_OK;
}

static int watchUpdate(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv,
                       sqlite3_int64 *pRowid) {
  (void)argc;
  (void)argv;
  (void)pRowid;
  sqlite3_free(pVtab->zErrMsg);
  pVtab->zErrMsg = sqlite3_mprintf("bitcask_txn_watch belongs to the bitcask "
                                   "extension and holds no rows");
  return SQLITE_ERROR;
}

/* The tables whose transaction the watcher drives: the dropped ones, and
** those that adopted a dropped table's transaction. */
#define WATCH_DRIVEN(m, q, body)                                          \
  do {                                                                    \
    for (bitcask_vtab *q = (m)->dropped; q; q = q->next) body             \
    for (bitcask_vtab *q = (m)->tables; q; q = q->next)                   \
      if (q->adopted) body                                                \
  } while (0)

static int watchBegin(sqlite3_vtab *pVtab) {
  bcx_module *m = ((watch_vtab *)pVtab)->mod;
  m->watch_in_txn = 1;
  m->watch_level = -1;
  return SQLITE_OK;
}

static int watchSync(sqlite3_vtab *pVtab) {
  bcx_module *m = ((watch_vtab *)pVtab)->mod;
  int rc = SQLITE_OK;
  /* A refused DROP: SQLite passes xSync's message on, and the failed
  ** commit rolls the DROP back. */
  for (bitcask_vtab *q = m->dropped; q && rc == SQLITE_OK; q = q->next) {
    if (!q->drop_rc) continue;
    rc = q->drop_rc;
    sqlite3_free(pVtab->zErrMsg);
    pVtab->zErrMsg = sqlite3_mprintf("%s", q->base.zErrMsg ? q->base.zErrMsg : "");
  }
  if (rc != SQLITE_OK) return rc;
  WATCH_DRIVEN(m, q, {
    if (rc == SQLITE_OK && q->txn) {
      rc = bitcaskSync(&q->base);
      if (rc != SQLITE_OK) {
        sqlite3_free(pVtab->zErrMsg);
        pVtab->zErrMsg = sqlite3_mprintf("%s", q->base.zErrMsg ? q->base.zErrMsg : "");
      }
    }
  });
  return rc;
}

static int watchCommit(sqlite3_vtab *pVtab) {
  bcx_module *m = ((watch_vtab *)pVtab)->mod;
  m->watch_in_txn = 0;
  m->watch_level = -1;
  for (bitcask_vtab *q = m->tables; q; q = q->next) {
    q->watch_create = 0;
    if (q->adopted) bitcaskCommit(&q->base);
  }
  while (m->dropped) {
    bitcask_vtab *q = m->dropped;
    m->dropped = q->next;
    bitcaskCommit(&q->base); /* its writes before the DROP; the CREATE if pending */
    if (q->undropped || q->ghost || q->drop_rc) {
      bcx_dropped_free(q); /* the table is still there (or never was) */
    } else {
      drop_finish(q);
    }
  }
  return SQLITE_OK;
}

static int watchRollback(sqlite3_vtab *pVtab) {
  bcx_module *m = ((watch_vtab *)pVtab)->mod;
  m->watch_in_txn = 0;
  m->watch_level = -1;
  for (bitcask_vtab *q = m->tables; q; q = q->next) {
    q->watch_create = 0; /* its own xRollback undoes a pending CREATE */
    if (q->adopted) bitcaskRollback(&q->base);
  }
  while (m->dropped) {
    bitcask_vtab *q = m->dropped;
    m->dropped = q->next;
    bitcaskRollback(&q->base); /* undoes a CREATE of this transaction too */
    bcx_dropped_free(q);       /* the table is back, its store untouched */
  }
  return SQLITE_OK;
}

static int watchSavepoint(sqlite3_vtab *pVtab, int iLevel) {
  bcx_module *m = ((watch_vtab *)pVtab)->mod;
  int rc = SQLITE_OK;
  m->watch_level = iLevel;
  WATCH_DRIVEN(m, q, {
    if (rc == SQLITE_OK && q->txn) rc = bitcaskSavepoint(&q->base, iLevel);
  });
  return rc;
}

static int watchRelease(sqlite3_vtab *pVtab, int iLevel) {
  bcx_module *m = ((watch_vtab *)pVtab)->mod;
  int rc = SQLITE_OK;
  m->watch_level = iLevel - 1;
  /* What happened inside savepoint iLevel now belongs to the one around it. */
  for (bitcask_vtab *q = m->tables; q; q = q->next)
    if (q->watch_create && q->create_at >= iLevel) q->create_at = iLevel - 1;
  for (bitcask_vtab *q = m->dropped; q; q = q->next) {
    if (q->watch_create && q->create_at >= iLevel) q->create_at = iLevel - 1;
    if (q->drop_at >= iLevel) q->drop_at = iLevel - 1;
  }
  WATCH_DRIVEN(m, q, {
    if (rc == SQLITE_OK && q->txn) rc = bitcaskRelease(&q->base, iLevel);
  });
  return rc;
}

static int watchRollbackTo(sqlite3_vtab *pVtab, int iLevel) {
  bcx_module *m = ((watch_vtab *)pVtab)->mod;
  int rc = SQLITE_OK;
  m->watch_level = iLevel;
  WATCH_DRIVEN(m, q, {
    if (rc == SQLITE_OK && q->txn) rc = bitcaskRollbackTo(&q->base, iLevel);
  });
  /* A CREATE made after savepoint iLevel began never happened; a DROP made
  ** after it is taken back (the table is in the schema again). */
  for (bitcask_vtab *q = m->tables; q; q = q->next)
    if (q->pending_create && q->watch_create && q->create_at >= iLevel) bcx_create_undo(q);
  for (bitcask_vtab *q = m->dropped; q; q = q->next) {
    if (q->pending_create && q->watch_create && q->create_at >= iLevel) {
      bcx_create_undo(q);
    } else if (!q->undropped && !q->ghost && q->drop_at >= iLevel) {
      q->undropped = 1;
    }
  }
  return rc;
}

static sqlite3_module watchModule = {
  /* iVersion    */ 2,
  /* xCreate     */ NULL, /* eponymous only */
  /* xConnect    */ watchConnect,
  /* xBestIndex  */ watchBestIndex,
  /* xDisconnect */ watchDisconnect,
  /* xDestroy    */ NULL,
  /* xOpen       */ watchOpen,
  /* xClose      */ watchClose,
  /* xFilter     */ watchFilter,
  /* xNext       */ watchNext,
  /* xEof        */ watchEof,
  /* xColumn     */ watchColumn,
  /* xRowid      */ watchRowid,
  /* xUpdate     */ watchUpdate,
  /* xBegin      */ watchBegin,
  /* xSync       */ watchSync,
  /* xCommit     */ watchCommit,
  /* xRollback   */ watchRollback,
  /* xFindFunction */ NULL,
  /* xRename     */ NULL,
  /* xSavepoint  */ watchSavepoint,
  /* xRelease    */ watchRelease,
  /* xRollbackTo */ watchRollbackTo,
  /* xShadowName */ NULL,
};

int bcx_watch_register(sqlite3 *db, bcx_module *m) {
  /* It reads m only in its transaction methods, which run while the
  ** connection is open (a close rolls back before any module is
  ** destroyed); its xDisconnect does not touch m, which the bitcask
  ** module's destructor frees. */
  return sqlite3_create_module_v2(db, "bitcask_txn_watch", &watchModule, m, NULL);
}
