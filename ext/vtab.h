/*
** vtab.h -- what the files of the `bitcask` virtual-table module share: the
** table (struct bitcask_vtab), the plan encoding xBestIndex hands xFilter,
** and the functions one file of the module calls in another.  The SQL
** functions (functions.c) see a table only through bitcask_ext.h.
**
**   vtab.c         the module: xCreate/xConnect, xDisconnect, xDestroy,
**                  xRename, the table's store, the entry point
**   watch.c        CREATE and DROP undone or finished with the transaction:
**                  the transaction watcher
**   plan.c         xBestIndex: the query plans
**   cursor.c       xOpen .. xColumn: the reads, through the table's snapshot
**   update.c       xUpdate: the writes, and statement atomicity
**   transaction.c  xBegin .. xRollbackTo: a SQLite transaction as a bc_txn
*/
#ifndef BITCASK_VTAB_H
#define BITCASK_VTAB_H

#include "bitcask_ext.h"

/* Where a table's store is (see options.c). */
enum { LOC_EXPLICIT, LOC_DEFAULT, LOC_TEMP };

/* Query plans (idxNum), see the top of plan.c. */
enum { PLAN_RANGE = 0, PLAN_EQ = 1, PLAN_IN = 2, PLAN_COUNT = 3, PLAN_MASK = 3,
       RANGE_FOLD = 4, RANGE_DESC = 8, ARG_SHIFT = 4, ARG_BITS = 4, MAX_ARGS = 7,
       MAX_BOUNDS = 2 /* per side */ };
enum { ARG_GT = 1, ARG_GE, ARG_LT, ARG_LE, ARG_LIKE, ARG_GLOB, ARG_LIMIT, ARG_OFFSET };

/* The byte past the NUL of a PLAN_EQ's or PLAN_IN's idxStr when the
** statement uses the value column (plan.c): each row's value is read with
** its key (cursor.c). */
#define PROBE_VALUE 'v'

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
  bc_buf spare;            /* a closed cursor's value buffer, for the next
                           ** cursor: no allocation per statement */
  bc_snapshot *snap;       /* the read snapshot of the statements running
                           ** now (cursor.c, "Snapshots"), or NULL */
  bc_store *snap_store;    /* the store snap is of (sh->store may have been
                           ** replaced since: registry.c) */
  int nopen;               /* cursors open on the table */
  sqlite3_stmt *mark_stmt; /* the statement that took stmt_mark (compared
                           ** as a pointer; see update.c, "Statement atomicity") */
  int mark_run;            /* its SQLITE_STMTSTATUS_RUN then */
  int owners_recorded;     /* the owners check ran on the writer's store */
  unsigned stmt_mark;      /* engine savepoint depth of the statement
                           ** writing now (see update.c, "Statement atomicity"), or 0 */
  unsigned gen;            /* sh->gen this table last moved on to */
  /* Lifecycle (watch.c, "Creating and dropping"). */
  int pending_create;      /* made by xCreate in the transaction still open */
  int created_store;       /* that CREATE made the store: undoing it deletes it */
  int watch_create;        /* the watcher knows the CREATE, made at level create_at */
  int create_at;
  int dropped;             /* DROP TABLE ran: on mod->dropped until the
                           ** transaction ends, at level drop_at */
  int drop_at;
  int undropped;           /* a ROLLBACK TO brought the dropped table back */
  int adopted;             /* holds the transaction of a dropped table that a
                           ** ROLLBACK TO brought back: the watcher drives it
                           ** until SQLite calls xBegin */
  int skip_svpt;           /* just adopted: xBegin's xSavepoint of a level
                           ** already marked is not a new savepoint */
  int ghost;               /* its CREATE was undone: inert until disconnected */
  int drop_rc;             /* a refused autocommit DROP: the error the
                           ** watcher's xSync fails the commit with */
  int utf16;               /* the connection's TEXT order is not the UTF-8
                           ** byte order of the keys (a UTF-16 database);
                           ** valid once enc_known */
  int enc_known;
  int probing;             /* pattern_builtin()'s probe is being planned */
  int probe_saw;           /* ... and SQLite gave it its LIKE bounds */
  int wrote;               /* xUpdate wrote since a cursor last produced a
                           ** row (update.c, "Stale rows") */
  uint64_t replaced_seq;   /* seq of the first row an UPDATE replaced
                           ** since then; UINT64_MAX: none */
};

/* ---- vtab.c ---- */

/* Set the table's error message (sqlite3_mprintf format). */
void bcx_vtab_error(bitcask_vtab *p, const char *fmt, ...);
/* Report an engine failure on the table (the engine's message names the
** store and the cause); returns the SQLite code of st. */
int bcx_engine_error(bitcask_vtab *p, bc_status st);
/* The table's store, opened on first use once the table is known to own
** it.  SQLITE_OK or an error with the message in p->base.zErrMsg. */
int bcx_vtab_store(bitcask_vtab *p);
/* 1 when the table is an owner of its store (owners.c). */
int bcx_vtab_owns(const bitcask_vtab *p);
/* The private store of table zTab of schema zDb, or NULL; forget one. */
bcx_tempdir *bcx_tempdir_find(bcx_module *m, const char *zDb, const char *zTab);
void bcx_tempdir_remove(bcx_module *m, bcx_tempdir *t);
/* Free a table that is on no list any more. */
void bcx_vtab_free(bitcask_vtab *p);
/* The DROP of p takes effect on its store (vtab.c says what is deleted).
** SQLITE_OK, or an error with *pzErr and nothing done. */
int bcx_drop_store(bitcask_vtab *p, char **pzErr);

/* ---- watch.c ---- */

/* Undo p's CREATE: the table never existed (inert from now on). */
void bcx_create_undo(bitcask_vtab *p);
/* Free a table of mod->dropped, its transaction rolled back. */
void bcx_dropped_free(bitcask_vtab *p);
/* Make the watcher part of the open transaction.  SQLITE_OK when it is. */
int bcx_watch_join(bitcask_vtab *p);
/* Register the watcher (bitcask_txn_watch) on db. */
int bcx_watch_register(sqlite3 *db, bcx_module *m);

/* ---- plan.c ---- */

int bitcaskBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *info);
/* Find out once whether SQLite orders TEXT otherwise than the keys' UTF-8
** bytes (p->utf16). */
void bcx_text_order_check(bitcask_vtab *p);

/* ---- cursor.c ---- */

int bitcaskOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCursor);
int bitcaskClose(sqlite3_vtab_cursor *cur);
int bitcaskFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr, int argc,
                  sqlite3_value **argv);
int bitcaskNext(sqlite3_vtab_cursor *cur);
int bitcaskEof(sqlite3_vtab_cursor *cur);
int bitcaskColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i);
int bitcaskRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *pRowid);

/* ---- update.c ---- */

int bitcaskUpdate(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv,
                  sqlite3_int64 *pRowid);
/* A cursor of the table produced a row, or a transaction boundary came
** (update.c, "Stale rows"). */
void bcx_rows_read(bitcask_vtab *p);
/* Release the statement's savepoint, keeping its writes (update.c,
** "Statement atomicity"). */
void bcx_stmt_mark_release(bitcask_vtab *p);

/* ---- transaction.c ---- */

int bitcaskBegin(sqlite3_vtab *pVtab);
int bitcaskSync(sqlite3_vtab *pVtab);
int bitcaskCommit(sqlite3_vtab *pVtab);
int bitcaskRollback(sqlite3_vtab *pVtab);
int bitcaskSavepoint(sqlite3_vtab *pVtab, int iLevel);
int bitcaskRelease(sqlite3_vtab *pVtab, int iLevel);
int bitcaskRollbackTo(sqlite3_vtab *pVtab, int iLevel);
/* This connection's transaction on the table's store, begun if needed. */
int bcx_vtab_txn(bitcask_vtab *p);
/* The table holds no transaction any more (p->txn freed or handed on). */
void bcx_txn_forget(bitcask_vtab *p);

#endif /* BITCASK_VTAB_H */
