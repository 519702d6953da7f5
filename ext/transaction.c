/*
** transaction.c -- a SQLite transaction on a bitcask table as a bc_txn of
** its store: xBegin, xSync (the commit point), xCommit, xRollback and the
** savepoints.
*/
#include "vtab.h"
SQLITE_EXTENSION_INIT3

/* ---- transactions ------------------------------------------------------
**
** A write transaction of the table is a bc_txn of its store, begun in xBegin
** (SQLite calls it before the first write of a transaction, explicit or the
** implicit one of an autocommit statement) and committed in xSync, which
** runs before SQLite's own commit and whose error fails the COMMIT
** (xCommit's return is ignored: docs/DESIGN.md section 6).  xRollback discards
** it.  SQLite's savepoints -- the user's and the statement savepoints it
** opens inside explicit transactions -- map onto the bc_txn's savepoints:
** p->svpt pairs each SQLite level with its engine depth.  One bc_txn per
** store at a time: another connection's write gets SQLITE_BUSY until this
** one commits or rolls back. */

static int txn_error(bitcask_vtab *p, bc_status st) {
  if (st == BC_BUSY) {
    /* The transaction holding the store may be this connection's own, on
    ** another table naming the same directory: waiting cannot help. */
    for (bitcask_vtab *q = p->mod->tables; q; q = q->next ? q->next
                                             : q->dropped ? NULL : p->mod->dropped) {
      if (q != p && q->sh == p->sh && q->txn) {
        bcx_vtab_error(p, "bitcask table '%s': this transaction has written table "
                       "'%s', which uses the same store '%s': one transaction can "
                       "write only one of the tables of a store (commit first)",
                       p->zName, q->zName, p->zPath);
        return SQLITE_ERROR;
      }
    }
    bcx_vtab_error(p, "bitcask table '%s': store '%s' is busy: another connection "
                   "of this process has a write transaction open on it (retry "
                   "after it commits or rolls back)", p->zName, p->zPath);
    return SQLITE_BUSY;
  }
  return bcx_engine_error(p, st);
}

void bcx_txn_forget(bitcask_vtab *p) {
  p->txn = NULL;
  p->nsvpt = 0;
  p->stmt_mark = 0;
  p->mark_stmt = NULL;
}

/* This connection's transaction on the table's store, begun if needed (an
** xUpdate always follows an xBegin, but the table's store may have been
** opened only now). */
int bcx_vtab_txn(bitcask_vtab *p) {
  int rc = bcx_vtab_store(p);
  if (rc != SQLITE_OK || p->txn) return rc;
  rc = bcx_table_writer(p);
  if (rc != SQLITE_OK) return rc;
  bc_status st = bc_txn_begin(p->sh->store, &p->txn);
  if (st != BC_OK) return txn_error(p, st);
  p->sh->changes++; /* reads now go through p->txn (cursor.c's probes) */
  return SQLITE_OK;
}

int bitcaskBegin(sqlite3_vtab *pVtab) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  bcx_rows_read(p);
  if (p->adopted) {
    /* SQLite drives the adopted transaction from now on. */
    p->adopted = 0;
    p->skip_svpt = 1;
  }
  return bcx_vtab_txn(p);
}

/* The commit point (docs/DESIGN.md sections 4.2 and 6): the records and the
** COMMIT are written and synced now, and any error fails the COMMIT statement.
** SQLite's own commit comes next and may still fail (SQLITE_BUSY); SQLite
** then calls xRollback, which voids the COMMIT with an abort record. */
int bitcaskSync(sqlite3_vtab *pVtab) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  p->skip_svpt = 0;
  if (!p->txn) return SQLITE_OK;
  bc_status st = bc_txn_prepare(p->txn);
  return st == BC_OK ? SQLITE_OK : bcx_engine_error(p, st);
}

/* After SQLite committed: make the writes visible to every connection.  No
** I/O; it cannot fail after a successful xSync (SQLite ignores the code). */
int bitcaskCommit(sqlite3_vtab *pVtab) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  p->pending_create = 0; /* the CREATE of this transaction, if any, is final */
  p->watch_create = 0;
  p->adopted = 0;
  if (!p->txn) return SQLITE_OK;
  bc_status st = bc_txn_commit(p->txn); /* frees it, whatever the outcome */
  p->sh->changes++; /* the snapshot moves on: see cursor.c's probes */
  bcx_txn_forget(p);
  /* A statement still reading sees what its own connection committed, as
  ** with a native table: its snapshot moves on to the new state. */
  if (st == BC_OK && p->snap) (void)bc_snapshot_refresh(p->snap); /* else: the old state */
  if (st == BC_OK) return SQLITE_OK;
  int rc = bcx_engine_error(p, st);
  sqlite3_log(rc, "%s", p->base.zErrMsg ? p->base.zErrMsg : "bitcask commit failed");
  return rc;
}

int bitcaskRollback(sqlite3_vtab *pVtab) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  if (p->sh) p->sh->changes++;
  bc_txn_rollback(p->txn);
  bcx_txn_forget(p);
  p->adopted = 0;
  p->skip_svpt = 0;
  bcx_create_undo(p); /* a CREATE of this transaction never happened */
  return SQLITE_OK;
}

/* Index of the oldest open savepoint at SQLite level >= iLevel, or -1. */
static int svpt_find(bitcask_vtab *p, int iLevel) {
  for (int i = 0; i < p->nsvpt; i++)
    if (p->svpt[i].level >= iLevel) return i;
  return -1;
}

int bitcaskSavepoint(sqlite3_vtab *pVtab, int iLevel) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  /* A statement mark is the deepest savepoint: released (its writes kept)
  ** before SQLite's savepoints move, so depths never cross. */
  bcx_stmt_mark_release(p);
  if (!p->txn) return SQLITE_OK;
  if (p->skip_svpt) {
    /* xBegin of a table that adopted a transaction: SQLite names the
    ** innermost savepoint open, which the transaction has marked already
    ** if it began before it. */
    p->skip_svpt = 0;
    for (int i = 0; i < p->nsvpt; i++)
      if (p->svpt[i].level == iLevel) return SQLITE_OK;
  }
  /* A level at or below an open one replaces it (SQLite reuses levels). */
  int i = svpt_find(p, iLevel);
  if (i >= 0) {
    bc_status st = bc_txn_release(p->txn, p->svpt[i].depth);
    if (st != BC_OK) return bcx_engine_error(p, st);
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
  if (st != BC_OK) return bcx_engine_error(p, st);
  p->svpt[p->nsvpt].level = iLevel;
  p->svpt[p->nsvpt].depth = depth;
  p->nsvpt++;
  return SQLITE_OK;
}

int bitcaskRelease(sqlite3_vtab *pVtab, int iLevel) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  bcx_stmt_mark_release(p);
  p->skip_svpt = 0;
  int i = p->txn ? svpt_find(p, iLevel) : -1;
  if (i < 0) return SQLITE_OK;
  bc_status st = bc_txn_release(p->txn, p->svpt[i].depth);
  if (st != BC_OK) return bcx_engine_error(p, st);
  p->nsvpt = i;
  return SQLITE_OK;
}

/* SQLite tells a table of every savepoint opened after its transaction
** began (and, at xBegin, of the deepest level then open), so a savepoint
** this table has no mark for at exactly iLevel was opened before any write
** of it -- including level -1, a transaction that a SAVEPOINT outside BEGIN
** started: rolling back to it empties the table's transaction, which goes on
** from nothing as SQLite's does. */
int bitcaskRollbackTo(sqlite3_vtab *pVtab, int iLevel) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  if (p->sh) p->sh->changes++;
  bcx_stmt_mark_release(p);
  p->skip_svpt = 0;
  bcx_rows_read(p);
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
  if (st != BC_OK) return bcx_engine_error(p, st);
  p->nsvpt = i + 1; /* savepoint iLevel stays open, back at its start */
  return SQLITE_OK;
}

