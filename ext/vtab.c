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
** Query plans.  xBestIndex encodes its plan in idxNum; idxStr names it for
** EXPLAIN QUERY PLAN ("SCAN kv VIRTUAL TABLE INDEX <idxNum>:<idxStr>"):
**
**   bits 0-1  the access:
**     0 PLAN_RANGE  a walk of the keydir's ordered index, in key order
**                   (SQLite's order for the column), over the ranges the
**                   argv constraints give (range.c) -- every key when none
**                   does: a scan; idxStr e.g. "key>? AND key<=? in key
**                   order", "scan in key order"
**     1 PLAN_EQ     key = ?: one keydir probe ("key=?"); 1 row, unique
**     2 PLAN_IN     key IN (...): one probe per value, the list walked with
**                   sqlite3_vtab_in_first/next ("key IN (...)")
**     3 PLAN_COUNT  no column used and no constraint (count(*)): the live
**                   key count, no key touched ("count")
**   bit 2     RANGE_FOLD: a PLAN_RANGE scan in no particular order -- the
**             engine's fold (bc_fold_*, engine/fold.c) instead of the
**             ordered walk: the values read front to back through the data
**             files, no ordered index built.
**             Chosen when no bound, pattern or ORDER BY is served and the
**             key column is not used (colUsed), so the order can be seen by
**             nobody: SQLite marks every column used for an UPDATE, whose
**             order matters when it changes keys; a DELETE reads the key
**             without saying so, and its order does not matter.
**             ("scan in storage order")
**   bit 3     RANGE_DESC: the walk is in descending key order
**   bits 4+   PLAN_RANGE's argv, 4 bits per argument in argv order:
**             ARG_GT, ARG_GE, ARG_LT, ARG_LE (a bound on the key), ARG_LIKE,
**             ARG_GLOB (a pattern; its literal prefix is walked and SQLite
**             still applies the pattern), ARG_LIMIT, ARG_OFFSET.
** PLAN_EQ's and PLAN_IN's idxStr carries one byte more, past the NUL that
** ends what EXPLAIN shows: PROBE_VALUE when the statement uses `value`.
** Each row's value is then read with its key, in xFilter and xNext: one
** keydir probe, under one lock of the store, per key looked up.
**
** Served: `key = ?`, `key IN (...)`, one lower bound (>, >=), one upper bound
** (<, <=; BETWEEN is both), one LIKE or GLOB, ORDER BY key [ASC|DESC]
** (orderByConsumed), and LIMIT/OFFSET -- the last only when every other
** constraint is served exactly (omitted) and ORDER BY is consumed or absent
** (DESIGN.md section 4).  A bound or `=` under a non-BINARY collation is left
** to SQLite.  A LIKE or GLOB is walked by its prefix only when the operator
** is SQLite's own function, not one the application defined (ICU's like():
** pattern_builtin).  In a UTF-16 database, whose TEXT order is not the keys'
** UTF-8 byte order (text_order_check), ORDER BY is left to SQLite's sorter
** and a TEXT bound is widened in xFilter and left to SQLite.  Costs: a
** probe 1; a walk 10 + the rows it is expected to return: all live keys (at
** least SCAN_MIN_ROWS) cut by 4 for each bound and by 32 for a pattern
** prefix, capped by a constant LIMIT + OFFSET.
**
** Snapshots.  Every read of the table goes through one engine snapshot
** (engine/snapshot.c) opened by the first xFilter of a cursor of the table
** while none is open and closed when its last cursor closes.  SQLite keeps
** a statement's cursors open until the statement halts (a correlated
** subquery's cursor is replaced only after its successor opened), and a
** statement left stepping keeps them open, so every cursor of a statement
** -- subqueries, self-joins, nested statements of the connection started
** meanwhile -- reads one committed state, as SQLite's own read transaction
** in WAL mode gives the statements that overlap it.  A read-only table
** catches up with the writer once, when the snapshot opens.  The
** connection's own transaction is read instead while it has one (no other
** connection can commit meanwhile: transactions serialise); when it
** commits, the snapshot moves on to the new state (xCommit), so statements
** still reading see their connection's writes.  Explicit read transactions
** are invisible to a virtual table (no xBegin for reads): each statement
** of one gets its own snapshot.
**
** A PLAN_RANGE walk is a cursor in the ordered index of the snapshot's view
** (engine/iter.c): each row is the next key past the previous one, so keys
** come in strictly increasing (decreasing) order, and writes of this
** statement -- read through its transaction -- never make it skip or
** repeat a key.  Values are read in xColumn only when asked for, from the
** same view, so a walk that does not use `value` reads nothing from disk
** and a row's value is the one its key had in the snapshot.  A RANGE_FOLD
** scan is the engine's fold of the same view, in storage order
** (engine/fold.c); its values are read with their keys in xNext.
**
** Writes follow the native table's conflict rules (sqlite3_vtab_on_conflict):
** REPLACE overwrites; otherwise a conflict returns SQLITE_CONSTRAINT_PRIMARYKEY
** (a NULL key SQLITE_CONSTRAINT_NOTNULL, the native codes) before
** anything is written and SQLite applies IGNORE / ABORT / FAIL / ROLLBACK
** (R-Tree's rtreeUpdate is the model).  A transaction's writes (an
** autocommit statement's are its own) are committed, and fsync'd per the
** sync option, in xSync (see "transactions" below).
**
** Stale rows.  For a multi-row UPDATE of a virtual table SQLite reads every
** row and computes its new key and value first, then calls xUpdate for each
** (it collects them in an ephemeral table); a native table computes a row's
** new values when it gets to the row.  The two differ only when an earlier
** xUpdate of the statement changed a row before the row's own turn:
**   - it moved the row away (an UPDATE ... FROM matching the row twice):
**     the row is gone, and xUpdate skips it, as a native table does;
**   - under OR REPLACE, it moved another row onto the row's key, replacing
**     it: a native table then updates the row now there, with values
**     computed from it; SQLite's were computed from the row replaced.
**     When they visibly differ -- the statement sets `value`, or the key
**     now there is of another storage class (1.0 where 1 was read) -- the
**     statement is refused; else (only the key set, same class) SQLite's
**     values are the native ones unless the key's expression reads
**     `value`, which nothing can tell (README).
** Telling needs no bookkeeping per row: `wrote` says that xUpdate wrote
** since a cursor last produced a row (the rows SQLite collected were all
** read before), and replaced_seq is the seq of the first record written
** over another row since then; a row whose record has a seq at least that
** may have been replaced by this statement.
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

/* Query plans (idxNum), see the top of the file. */
enum { PLAN_RANGE = 0, PLAN_EQ = 1, PLAN_IN = 2, PLAN_COUNT = 3, PLAN_MASK = 3,
       RANGE_FOLD = 4, RANGE_DESC = 8, ARG_SHIFT = 4, ARG_BITS = 4, MAX_ARGS = 7,
       MAX_BOUNDS = 2 /* per side */ };
enum { ARG_GT = 1, ARG_GE, ARG_LT, ARG_LE, ARG_LIKE, ARG_GLOB, ARG_LIMIT, ARG_OFFSET };

/* The largest value buffer a table keeps for its next cursor. */
#define SPARE_BUF_MAX (1u << 20)

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
  bc_buf spare;            /* a closed cursor's value buffer, for the next
                           ** cursor: no allocation per statement */
  bc_snapshot *snap;       /* the read snapshot of the statements running
                           ** now (see "Snapshots" at the top), or NULL */
  bc_store *snap_store;    /* the store snap is of (sh->store may have been
                           ** replaced since: registry.c) */
  int nopen;               /* cursors open on the table */
  sqlite3_stmt *mark_stmt; /* the statement that took stmt_mark (compared
                           ** as a pointer; see "Statement atomicity") */
  int mark_run;            /* its SQLITE_STMTSTATUS_RUN then */
  int owners_recorded;     /* the owners check ran on the writer's store */
  unsigned stmt_mark;      /* engine savepoint depth of the statement
                           ** writing now (see "Statement atomicity"), or 0 */
  unsigned gen;            /* sh->gen this table last moved on to */
  /* Lifecycle (see "Creating and dropping" below). */
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
                           ** row (see "Stale rows" at the top) */
  uint64_t replaced_seq;   /* seq of the first row an UPDATE replaced
                           ** since then; UINT64_MAX: none */
};

/* What a cursor walks: one member of its union u, set by xFilter from the
** plan (idxNum). */
enum {
  CURSOR_NONE,  /* before the first xFilter */
  CURSOR_RANGE, /* PLAN_RANGE: the ordered index, range after range */
  CURSOR_FOLD,  /* PLAN_RANGE|RANGE_FOLD: every key, in storage order */
  CURSOR_PROBE, /* PLAN_EQ, PLAN_IN: one keydir probe per key given */
  CURSOR_COUNT  /* PLAN_COUNT: rows counted, none read */
};

typedef struct bitcask_cursor {
  sqlite3_vtab_cursor base; /* base class: must be first */
  int kind;                 /* CURSOR_*: which member of u is in use */
  int eof;                  /* no current row */
  /* The current row. */
  const unsigned char *key; /* its key bytes (in the iterator, the fold or
                            ** the probe list) */
  size_t klen;
  bc_info info;             /* its keydir info */
  int has_value;            /* `value` is its value, read with the key */
  const void *value;        /* (in vbuf); else xColumn reads the value */
  bc_buf vbuf;              /* value read buffer, reused across rows */
  union {
    struct {                /* CURSOR_RANGE */
      bcx_ranges ranges;    /* the ranges to walk, ascending */
      int irange;           /* the range iter walks (counting down if desc) */
      int desc;             /* RANGE_DESC: in descending key order */
      bc_iter *iter;        /* the engine's ordered iterator in range irange */
      sqlite3_int64 limit;  /* rows still to return; < 0: no LIMIT */
    } range;
    struct {                /* CURSOR_FOLD */
      bc_fold *fold;        /* the engine's fold (bc_fold_open) */
      sqlite3_int64 limit;  /* rows still to return; < 0: no LIMIT */
      int skipping;         /* the rows of an OFFSET are being passed: no
                            ** value is read for them */
    } fold;
    struct {                /* CURSOR_PROBE */
      bcx_key *keys;        /* the keys to probe: &one, or sqlite3_malloc'd */
      bcx_key one;          /* PLAN_EQ's key */
      int n;                /* entries in keys */
      int i;                /* index of the current probe */
      int value;            /* read each row's value with its key (the
                            ** statement uses it: PROBE_VALUE) */
    } probe;
    struct {                /* CURSOR_COUNT */
      sqlite3_int64 passed;    /* rows moved past (xNext) */
      sqlite3_int64 remaining; /* rows left, the current one included */
    } count;
  } u;
} bitcask_cursor;

/* ---- helpers ---------------------------------------------------------- */

static void vtab_error(bitcask_vtab *p, const char *fmt, ...) {
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
static int engine_error(bitcask_vtab *p, bc_status st) {
  char msg[BCX_ERRMSG_MAX];
  vtab_error(p, "bitcask table '%s': %s", p->zName,
             p->sh ? bc_errmsg_copy(p->sh->store, msg, sizeof msg)
                   : bc_status_name(st));
  return bcx_rc(st);
}

/* Reads go through this connection's transaction when it has one (its own
** writes are visible to it, and no other connection can commit while it is
** open), else through the statement's snapshot, else to the committed
** store. */
/* The transaction to read through: this connection's, unless the
** statement's snapshot is of the read-only store that the writer's replaced
** since (registry.c): a statement still reading it goes on in its view. */
static bc_txn *view_txn(const bitcask_vtab *p) {
  return p->txn && (!p->snap || p->snap_store == p->sh->store) ? p->txn : NULL;
}

static bc_status kv_lookup(bitcask_vtab *p, const void *k, size_t n, bc_info *i) {
  bc_txn *t = view_txn(p);
  return t         ? bc_txn_lookup(t, k, n, i)
         : p->snap ? bc_snapshot_lookup(p->snap, k, n, i)
                   : bc_lookup(p->sh->store, k, n, i);
}

static bc_status kv_get(bitcask_vtab *p, const void *k, size_t n, bc_buf *b,
                        const void **v, bc_info *i) {
  bc_txn *t = view_txn(p);
  return t         ? bc_txn_get(t, k, n, b, v, i)
         : p->snap ? bc_snapshot_get(p->snap, k, n, b, v, i)
                   : bc_get(p->sh->store, k, n, b, v, i);
}


/* A cursor of the table produced a row (or a transaction boundary): the
** values of whatever xUpdate comes next were computed after every write
** so far (see "Stale rows" at the top). */
static void rows_read(bitcask_vtab *p) {
  p->wrote = 0;
  p->replaced_seq = UINT64_MAX;
}

static int vtab_txn(bitcask_vtab *p);
static void txn_forget(bitcask_vtab *p);
static void stmt_mark_release(bitcask_vtab *p);

/* Tables that are owners of their store (owners.c): writers of a database
** file; read-only tables and private stores never are. */
static int vtab_owns(const bitcask_vtab *p) {
  return !p->opts.read_only && p->location != LOC_TEMP;
}

/* The table's store (open) made the writer's, if the table writes: the
** first write of the process takes the writer lock (registry.c).  Returns
** SQLITE_OK, or the error (SQLITE_BUSY naming the holder) in zErrMsg. */
static int vtab_writer(bitcask_vtab *p) {
  if (p->opts.read_only) return SQLITE_OK;
  char *zErr = NULL;
  int rc = bcx_shared_write(p->sh, p->zName, &zErr);
  if (rc != SQLITE_OK) return vtab_result(p, rc, zErr);
  /* Onto the writer's store at once when nothing reads the old one. */
  if (p->nopen == 0) bcx_shared_moved(p->sh, &p->gen);
  if (!p->owners_recorded && vtab_owns(p)) {
    /* The check at first use could not record anything in a read-only
    ** store (owners.c): now it can -- whichever table made it the
    ** writer's. */
    rc = bcx_owners_check(p->db, p->zDb, p->zName, p->sh, &zErr);
    if (rc != SQLITE_OK) return vtab_result(p, rc, zErr);
    p->owners_recorded = 1;
  }
  return SQLITE_OK;
}

int bcx_table_writer(bitcask_vtab *t) { return vtab_writer(t); }
int bcx_table_readonly(bitcask_vtab *t) { return t->opts.read_only; }

/* The table's store opened for writing, without the owners check (xDestroy,
** xRename). */
static int vtab_store_open(bitcask_vtab *p) {
  if (p->sh) return vtab_writer(p);
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
static int vtab_store(bitcask_vtab *p) {
  if (p->sh) return SQLITE_OK;
  if (p->ghost) {
    vtab_error(p, "bitcask table '%s': its CREATE VIRTUAL TABLE was rolled back",
               p->zName);
    return SQLITE_ERROR;
  }
  char *zErr = NULL;
  int rc = vtab_owns(p) ? bcx_owners_precheck(p->db, p->zDb, p->zName, p->zPath, &zErr)
                        : SQLITE_OK;
  if (rc == SQLITE_OK)
    rc = bcx_shared_open(p->zName, p->zPath, 0, 0, &p->opts, &p->sh, &p->gen, &zErr);
  if (rc == SQLITE_OK && vtab_owns(p)) {
    rc = bcx_owners_check(p->db, p->zDb, p->zName, p->sh, &zErr);
    if (rc == SQLITE_OK && !p->sh->following) p->owners_recorded = 1;
    if (rc != SQLITE_OK) {
      bcx_shared_release(p->sh, p->gen);
      p->sh = NULL;
    }
  }
  return vtab_result(p, rc, zErr);
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
  /* In a child of fork() the private store is still the parent's. */
  if (m->pid == getpid()) {
    bc_destroy(t->path, err, sizeof err);
    rmdir(t->path);
  }
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

/* ---- creating and dropping ----------------------------------------------
**
** A table's store lives outside the database file, so SQLite's ROLLBACK
** cannot take back what CREATE VIRTUAL TABLE and DROP TABLE do to it; the
** table does it, at the moment the transaction's outcome is known:
**
**  - CREATE makes (or joins) the store at once -- a bad dir= must fail the
**    CREATE -- and marks the table pending_create.  Its xCommit confirms
**    it; its xRollback undoes it (create_undo): the table leaves OWNERS and,
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

static int bitcaskSync(sqlite3_vtab *pVtab);
static int bitcaskCommit(sqlite3_vtab *pVtab);
static int bitcaskRollback(sqlite3_vtab *pVtab);
static int bitcaskSavepoint(sqlite3_vtab *pVtab, int iLevel);
static int bitcaskRelease(sqlite3_vtab *pVtab, int iLevel);
static int bitcaskRollbackTo(sqlite3_vtab *pVtab, int iLevel);

/* Undo p's CREATE (its transaction rolled back, or a ROLLBACK TO a savepoint
** older than it): the table never existed.  p is inert from now on (ghost)
** and SQLite disconnects it later. */
static void create_undo(bitcask_vtab *p) {
  if (!p->pending_create) return;
  p->pending_create = 0;
  p->watch_create = 0;
  bc_txn_rollback(p->txn);
  txn_forget(p);
  p->ghost = 1;
  if (!p->sh) return;
  int destroy = 0;
  if (p->location == LOC_TEMP) {
    destroy = 1;
    bcx_tempdir *t = tempdir_find(p->mod, p->zDb, p->zName);
    if (t) tempdir_remove(p->mod, t);
  } else if (vtab_owns(p)) {
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

static void dropped_free(bitcask_vtab *p) {
  bc_snapshot_close(p->snap);
  p->snap = NULL;
  bc_txn_rollback(p->txn);
  txn_forget(p);
  bcx_shared_release(p->sh, p->gen);
  vtab_free(p);
}

/* The end of a DROP TABLE whose transaction committed: the table leaves the
** owners file and its store is deleted when it was the last owner (a private
** store always).  Nothing can fail the COMMIT any more: a failure is
** logged (sqlite3_log) and the store left, as after a crash. */
static void drop_finish(bitcask_vtab *p) {
  int destroy = p->location == LOC_TEMP;
  if (p->sh && vtab_owns(p)) {
    char *zErr = NULL;
    int rc = bcx_owners_leave(p->db, p->zDb, p->zName, p->sh, &destroy, &zErr);
    if (rc != SQLITE_OK) {
      sqlite3_log(rc, "%s", zErr ? zErr : "bitcask: DROP TABLE left the store");
      destroy = 0;
    }
    sqlite3_free(zErr);
  }
  if (p->sh && destroy) bcx_shared_mark_destroy(p->sh, p->location == LOC_TEMP);
  if (p->location == LOC_TEMP) {
    bcx_tempdir *t = tempdir_find(p->mod, p->zDb, p->zName);
    if (t) tempdir_remove(p->mod, t);
  }
  dropped_free(p);
}

/* Make the watcher part of the open transaction (explicit, or the implicit
** one of the statement running).  SQLITE_OK when it is. */
static int watch_join(bitcask_vtab *p) {
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
      dropped_free(q); /* the table is still there (or never was) */
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
    dropped_free(q);           /* the table is back, its store untouched */
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
    if (q->pending_create && q->watch_create && q->create_at >= iLevel) create_undo(q);
  for (bitcask_vtab *q = m->dropped; q; q = q->next) {
    if (q->pending_create && q->watch_create && q->create_at >= iLevel) {
      create_undo(q);
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
  rows_read(p);
  p->zDb = sqlite3_mprintf("%s", zDb);
  p->zName = sqlite3_mprintf("%s", zTab);
  bc_options_init(&p->opts);
  if (o.max_file_size) p->opts.max_file_size = o.max_file_size;
  if (o.sync >= 0) p->opts.sync = (bc_sync_mode)o.sync;
  p->opts.max_open_files = o.max_open_files;
  /* readonly=1, or a database opened read-only: follow the writer's store
  ** without its lock and write nothing. */
  p->opts.read_only = o.readonly == 1 || sqlite3_db_readonly(db, zDb) == 1;
  rc = bcx_store_path(db, zDb, zTab, &o, &p->zPath, &isTemp);
  p->location = o.dir ? LOC_EXPLICIT : isTemp ? LOC_TEMP : LOC_DEFAULT;
  bcx_options_clear(&o);
  if (rc == SQLITE_OK && (!p->zDb || !p->zName)) rc = SQLITE_NOMEM;

  if (rc == SQLITE_OK && isCreate) {
    /* A CREATE cannot meet a live table of its name, so a table of that
    ** name still connected here is one whose CREATE a ROLLBACK TO took back
    ** without telling it (when the watcher could not), and one on the
    ** dropped list waits for COMMIT to delete its store. */
    for (bitcask_vtab *q = mod->tables; q; q = q->next)
      if (q->pending_create && sqlite3_stricmp(q->zDb, zDb) == 0 &&
          sqlite3_stricmp(q->zName, zTab) == 0)
        create_undo(q);
    for (bitcask_vtab *q = mod->dropped; q && rc == SQLITE_OK; q = q->next) {
      if (!q->undropped && !q->ghost && sqlite3_stricmp(q->zDb, zDb) == 0 &&
          sqlite3_stricmp(q->zName, zTab) == 0) {
        *pzErr = sqlite3_mprintf("bitcask table '%s': this transaction dropped "
                                 "a table of that name, whose store is deleted "
                                 "when the transaction commits: commit before "
                                 "creating the table again", zTab);
        rc = SQLITE_ERROR;
      }
    }
  }

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
  }
  if (rc == SQLITE_OK && isCreate) {
    rc = bcx_shared_open(zTab, p->zPath, !p->opts.read_only, !p->opts.read_only,
                         &p->opts, &p->sh, &p->gen, pzErr);
    /* Naming a store joins it on purpose (owners.c). */
    if (rc == SQLITE_OK && vtab_owns(p))
      rc = bcx_owners_join(db, zDb, zTab, p->sh, pzErr);
    if (rc != SQLITE_OK && p->location == LOC_EXPLICIT && *pzErr) {
      /* Name the option the user gave (DESIGN.md: errors name the option). */
      char *m = sqlite3_mprintf("%s (option dir='%s')", *pzErr, p->zPath);
      if (m) {
        sqlite3_free(*pzErr);
        *pzErr = m;
      }
    }
  }

  /* The primary key's index is declared with BCX_PK_COLLATION, BINARY under
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
  ** it did not.  A foreign
  ** key naming no column (`REFERENCES kv`) takes the primary key whatever
  ** its collation: SQLite still reports it as malformed (README). */
  if (rc == SQLITE_OK) {
    rc = sqlite3_declare_vtab(
        db, "CREATE TABLE x(key NOT NULL, value, PRIMARY KEY(key COLLATE " BCX_PK_COLLATION
            ")) WITHOUT ROWID");
  }
  if (rc == SQLITE_OK) {
    sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
    /* Neither DIRECTONLY nor INNOCUOUS: SQLite's own rule for a virtual
    ** table then applies, as for an ordinary table in all but one point --
    ** views and triggers of a database file may use the table while the
    ** schema is trusted (PRAGMA trusted_schema=ON, the default) and are
    ** refused ("unsafe use of virtual table") when it is not.  Reading or
    ** writing the table through a view or trigger does what the same
    ** statement does directly; the functions that act on the store's files
    ** (bitcask_merge, bitcask_stats) stay direct-only (functions.c). */
    if (isCreate) {
      /* Until the transaction commits (see "Creating and dropping"); inside
      ** an explicit one the watcher also sees a ROLLBACK TO. */
      p->pending_create = 1;
      if (!sqlite3_get_autocommit(db) && watch_join(p) == SQLITE_OK) {
        p->watch_create = 1;
        p->create_at = mod->watch_level;
      }
    } else {
      /* A table a ROLLBACK TO brought back after its DROP: the transaction
      ** it had goes on here. */
      for (bitcask_vtab *q = mod->dropped; q; q = q->next) {
        if (!q->undropped || !q->txn || sqlite3_stricmp(q->zDb, zDb) != 0 ||
            sqlite3_stricmp(q->zName, zTab) != 0)
          continue;
        char *zErr = NULL;
        if (bcx_shared_open(zTab, p->zPath, 0, 0, &p->opts, &p->sh, &p->gen, &zErr) == SQLITE_OK) {
          bcx_svpt *sv = p->svpt;
          int na = p->nsvptAlloc;
          p->txn = q->txn;
          p->svpt = q->svpt;
          p->nsvpt = q->nsvpt;
          p->nsvptAlloc = q->nsvptAlloc;
          q->svpt = sv;
          q->nsvptAlloc = na;
          txn_forget(q);
          p->adopted = 1;
        }
        sqlite3_free(zErr);
        break;
      }
    }
    p->next = mod->tables;
    mod->tables = p;
    *ppVtab = &p->base;
    return SQLITE_OK;
  }
  if (p->sh) bcx_shared_release(p->sh, p->gen);
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

/* A connection of the parent used in a child made by fork(): DROP and
** RENAME act on the parent's files and are refused (writes are refused by
** the engine).  1 with the message set, else 0. */
static int inherited_error(bitcask_vtab *p) {
  if (p->mod->pid == getpid() && (!p->sh || !bcx_shared_inherited(p->sh))) return 0;
  vtab_error(p, "bitcask table '%s': this connection was opened by process %ld "
             "and is used by process %ld, a child made by fork(): its store "
             "belongs to the parent; open a new connection in this process",
             p->zName, (long)p->mod->pid, (long)getpid());
  return 1;
}

static int bitcaskDisconnect(sqlite3_vtab *pVtab) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  bc_txn_rollback(p->txn); /* SQLite rolled back already; be sure */
  txn_forget(p);
  bc_snapshot_close(p->snap); /* NULL: SQLite closes every cursor first */
  p->snap = NULL;
  vtab_unlink(p);
  bcx_shared_release(p->sh, p->gen);
  vtab_free(p);
  return SQLITE_OK;
}

/* DROP TABLE: the store's files are deleted when the transaction commits
** (see "Creating and dropping"): SQLite calls xDestroy at once, and a
** ROLLBACK brings the table back.  What can fail is checked now: the store
** is opened (its lock taken) so that another process holding it refuses the
** DROP.  SQLite drops a message xDestroy leaves: a refused DROP shows the
** generic text of its code (README "Limits"). */
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

/* A DROP that cannot be done, with the reason in p's message.  SQLite
** drops the message xDestroy leaves (the user would see only the generic
** text of rc), so an autocommit DROP fails at its commit instead, in the
** watcher's xSync, whose message SQLite passes on; the table is back after
** the rollback.  Inside an explicit transaction it fails now with the
** generic text (and the message goes to sqlite3_log): failing the COMMIT
** would throw away the rest of the transaction. */
static int drop_refuse(bitcask_vtab *p, int rc) {
  if (sqlite3_get_autocommit(p->db) && watch_join(p) == SQLITE_OK) {
    drop_defer(p, rc);
    return SQLITE_OK;
  }
  sqlite3_log(rc, "%s", p->base.zErrMsg ? p->base.zErrMsg : "bitcask: DROP TABLE refused");
  return rc;
}

static int bitcaskDestroy(sqlite3_vtab *pVtab) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  if (inherited_error(p)) return drop_refuse(p, SQLITE_MISUSE);
  /* A copy of the database (not an owner) forgets its table without
  ** opening the original's store. */
  char *zPre = NULL;
  int pre = !p->sh && vtab_owns(p)
                ? bcx_owners_precheck(p->db, p->zDb, p->zName, p->zPath, &zPre)
                : SQLITE_OK;
  if (pre == SQLITE_CANTOPEN) {
    sqlite3_free(zPre);
    vtab_unlink(p);
    vtab_free(p);
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
  if (watch_join(p) == SQLITE_OK) {
    drop_defer(p, SQLITE_OK);
    return SQLITE_OK;
  }
  /* No watcher (a table named bitcask_txn_watch hides it, an authorizer
  ** refused it, main is read-only): an autocommit DROP deletes the files
  ** now, as it did before the watcher; inside a transaction it is refused. */
  if (!sqlite3_get_autocommit(p->db)) {
    vtab_error(p, "bitcask table '%s': DROP TABLE inside a transaction needs "
               "the extension's bitcask_txn_watch table, which is hidden or "
               "refused", p->zName);
    sqlite3_log(SQLITE_ERROR, "%s", p->base.zErrMsg);
    return SQLITE_ERROR;
  }
  /* The store is deleted only when this table was its last owner
  ** (owners.c): another table may share the directory, and a copy of the
  ** database (not an owner) must leave the original's store alone.  A
  ** read-only table only follows a store another process owns: dropping it
  ** forgets the table, never the files. */
  int destroy = p->location == LOC_TEMP;
  if (p->sh && vtab_owns(p)) {
    char *zErr = NULL;
    rc = bcx_owners_leave(p->db, p->zDb, p->zName, p->sh, &destroy, &zErr);
    if (rc != SQLITE_OK) return vtab_result(p, rc, zErr);
  }
  if (p->sh && destroy) bcx_shared_mark_destroy(p->sh, p->location == LOC_TEMP);
  if (p->location == LOC_TEMP) {
    bcx_tempdir *t = tempdir_find(p->mod, p->zDb, p->zName);
    if (t) tempdir_remove(p->mod, t);
  }
  vtab_unlink(p);
  bc_snapshot_close(p->snap);
  p->snap = NULL;
  rc = bcx_shared_release(p->sh, p->gen);
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
  if (inherited_error(p)) return SQLITE_MISUSE;
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
  if (p->location == LOC_EXPLICIT) {
    /* The directory stays; the table's line in the owners file follows
    ** the new name (owners.c). */
    if (!vtab_owns(p)) return SQLITE_OK;
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
  int rc = vtab_store_open(p);
  if (rc != SQLITE_OK) return rc;
  /* Other tables naming this directory with dir= would lose their store if
  ** it moved: the rename is refused (owners.c knows them). */
  int shared = 0;
  char *zShErr = NULL;
  if (vtab_owns(p)) {
    rc = bcx_owners_shared(p->db, p->zDb, p->zName, p->sh, &shared, &zShErr);
    if (rc != SQLITE_OK) return vtab_result(p, rc, zShErr);
  }
  if (shared) {
    vtab_error(p, "bitcask table '%s': cannot rename: its store '%s' is named "
               "after the table and other tables use it too (dir=), which "
               "would lose it if it moved; give those tables their own store, "
               "or drop them first", p->zName, p->zPath);
    return SQLITE_ERROR;
  }
  if (bcx_shared_refs(p->sh) > 1) {
    vtab_error(p, "bitcask table '%s': cannot rename while another connection "
               "or table of this process has its store open", p->zName);
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
    vtab_error(p, "bitcask table '%s': cannot rename store '%s' to '%s': %s",
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

/* ---- xBestIndex ------------------------------------------------------- */

static int binary_coll(sqlite3_index_info *info, int i) {
  const char *coll = sqlite3_vtab_collation(info, i);
  return !coll || sqlite3_stricmp(coll, "BINARY") == 0;
}

/* Does SQLite compare TEXT in another order than the keys' UTF-8 bytes?
** BINARY is memcmp in the database's encoding, so in a UTF-16 database
** U+E000 sorts below U+10000 (UTF-16LE differs far more: 'Ā' < 'b'),
** whereas the keys hold UTF-8.  Asked of SQLite itself, once per table and
** connection (a connection's encoding is fixed as soon as its schema holds
** a table, and this one does), with a statement that reads no table and
** calls no function: nothing an application-defined function changes, and
** nothing an authorizer that lets the application query at all refuses.
** (An application tracing every statement sees it once.)  If SQLite
** cannot answer, the answer is "yes": the plans that never depend on the
** order of TEXT keys. */
static void text_order_check(bitcask_vtab *p) {
  if (p->enc_known) return;
  sqlite3_stmt *st = NULL;
  int differs = 1;
  /* U+E000 < U+10000: true in UTF-8 (EE 80 80 < F0 90 80 80), false in
  ** UTF-16BE (E0 00 > D8 00 DC 00) and UTF-16LE (00 E0 > 00 D8 ...). */
  if (sqlite3_prepare_v2(p->db, "SELECT '\xee\x80\x80' < '\xf0\x90\x80\x80'", -1, &st,
                         NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    differs = sqlite3_column_int(st, 0) != 1;
  sqlite3_finalize(st);
  p->utf16 = differs;
  p->enc_known = 1;
}

/* Is `key LIKE ?` (`key GLOB ?`) evaluated by SQLite's own like() (glob())
** function here?  An application can replace either (sqlite3_create_function
** "like" with 2 arguments, as ICU does, with case folding beyond ASCII or
** any other rule), and then the pattern's literal prefix says nothing about
** the rows it matches.  SQLite asks the same question before its LIKE
** optimization, which adds `key >= 'A' AND key < 'b'` beside `key LIKE 'a%'`
** only when the function is its built-in one (flagged SQLITE_FUNC_LIKE,
** which no application-defined function can carry).  So: plan a probe,
** `SELECT 1 FROM <this table> WHERE key LIKE 'a%'`, and see whether its
** xBestIndex is offered that bound.  The probe is prepared, never run.  Any
** failure (an authorizer refusing it, out of memory) answers "no". */
static int pattern_builtin(bitcask_vtab *p, int glob) {
  if (p->probing) return 0;
  char *sql = sqlite3_mprintf("SELECT 1 FROM \"%w\".\"%w\" WHERE key %s", p->zDb,
                              p->zName, glob ? "GLOB 'a*'" : "LIKE 'a%'");
  if (!sql) return 0;
  sqlite3_stmt *st = NULL;
  p->probing = 1;
  p->probe_saw = 0;
  int rc = sqlite3_prepare_v2(p->db, sql, -1, &st, NULL);
  sqlite3_finalize(st);
  sqlite3_free(sql);
  p->probing = 0;
  return rc == SQLITE_OK && p->probe_saw;
}

/* xBestIndex of pattern_builtin's probe: note SQLite's lower bound 'a' (GLOB,
** or LIKE under PRAGMA case_sensitive_like) or 'A' (LIKE) and plan nothing. */
static int probe_answer(bitcask_vtab *p, sqlite3_index_info *info) {
  for (int i = 0; i < info->nConstraint; i++) {
    sqlite3_value *v = NULL;
    if (info->aConstraint[i].iColumn == 0 &&
        info->aConstraint[i].op == SQLITE_INDEX_CONSTRAINT_GE &&
        sqlite3_vtab_rhs_value(info, i, &v) == SQLITE_OK && v &&
        sqlite3_value_type(v) == SQLITE_TEXT && sqlite3_value_bytes(v) == 1) {
      const unsigned char *t = sqlite3_value_text(v);
      if (t && (t[0] == 'a' || t[0] == 'A')) p->probe_saw = 1;
    }
  }
  info->idxNum = PLAN_RANGE;
  info->estimatedCost = 1e9;
  return SQLITE_OK;
}

/* The constraints of one xBestIndex call, sorted by what a plan can do with
** them: indexes into aConstraint, -1 (or a count of 0) for none. */
typedef struct plan_cons {
  int iEq;                  /* key = ? (BINARY) */
  int iIn;                  /* key IN (...) (BINARY) */
  int iLo[MAX_BOUNDS], nLo; /* key > ?, key >= ? (BINARY) */
  int iHi[MAX_BOUNDS], nHi; /* key < ?, key <= ? (BINARY) */
  int iPat;                 /* the first key LIKE ? or key GLOB ? */
  int iLimit, iOffset;      /* LIMIT ?, OFFSET ? */
  int nOther;               /* constraints no plan serves exactly: SQLite
                            ** still filters the rows after the cursor */
} plan_cons;

/* Sort info's constraints into *pc. */
static void plan_collect(sqlite3_index_info *info, plan_cons *pc) {
  memset(pc, 0, sizeof *pc);
  pc->iEq = pc->iIn = pc->iPat = pc->iLimit = pc->iOffset = -1;
  for (int i = 0; i < info->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &info->aConstraint[i];
    if (c->op == SQLITE_INDEX_CONSTRAINT_LIMIT) {
      if (c->usable) pc->iLimit = i;
      continue;
    }
    if (c->op == SQLITE_INDEX_CONSTRAINT_OFFSET) {
      if (c->usable) pc->iOffset = i;
      continue;
    }
    int served = 0;
    if (c->usable && c->iColumn == 0) {
      switch (c->op) {
      case SQLITE_INDEX_CONSTRAINT_EQ:
        if (!binary_coll(info, i)) break;
        if (sqlite3_vtab_in(info, i, -1)) {
          if (pc->iIn < 0) pc->iIn = i, served = 1;
        } else if (pc->iEq < 0) {
          pc->iEq = i, served = 1;
        }
        break;
      case SQLITE_INDEX_CONSTRAINT_GT:
      case SQLITE_INDEX_CONSTRAINT_GE:
        if (pc->nLo < MAX_BOUNDS && binary_coll(info, i)) pc->iLo[pc->nLo++] = i, served = 1;
        break;
      case SQLITE_INDEX_CONSTRAINT_LT:
      case SQLITE_INDEX_CONSTRAINT_LE:
        if (pc->nHi < MAX_BOUNDS && binary_coll(info, i)) pc->iHi[pc->nHi++] = i, served = 1;
        break;
      case SQLITE_INDEX_CONSTRAINT_LIKE:
      case SQLITE_INDEX_CONSTRAINT_GLOB:
        /* Served as a prefix range, never exactly: SQLite still filters. */
        if (pc->iPat < 0) pc->iPat = i;
        break;
      default:
        break;
      }
    }
    if (!served) pc->nOther++;
  }
}

/* The pattern constraint, if any, kept only when SQLite's own like() or
** glob() evaluates it (pattern_builtin); then the bounds SQLite's LIKE
** optimization derived from it (bcx_pattern_bound_derived) are left unused,
** so that the pattern's own ranges (range.c) decide. */
static void plan_pattern(bitcask_vtab *p, sqlite3_index_info *info, plan_cons *pc) {
  if (pc->iPat < 0) return;
  int glob = info->aConstraint[pc->iPat].op == SQLITE_INDEX_CONSTRAINT_GLOB;
  if (!pattern_builtin(p, glob)) {
    pc->iPat = -1;
    return;
  }
  sqlite3_value *pv = NULL;
  if (sqlite3_vtab_rhs_value(info, pc->iPat, &pv) != SQLITE_OK || !pv ||
      sqlite3_value_type(pv) != SQLITE_TEXT)
    return;
  const unsigned char *pat = sqlite3_value_text(pv);
  if (!pat) return;
  int op = glob ? BCX_PATTERN_GLOB : BCX_PATTERN_LIKE;
  for (int side = 0; side < 2; side++) {
    int *idx = side ? pc->iHi : pc->iLo, *cnt = side ? &pc->nHi : &pc->nLo;
    for (int b = 0; b < *cnt; b++) {
      sqlite3_value *bv = NULL;
      if (sqlite3_vtab_rhs_value(info, idx[b], &bv) != SQLITE_OK ||
          !bcx_pattern_bound_derived(op, pat, !side, bv))
        continue;
      idx[b--] = idx[--*cnt]; /* unused: SQLite applies it */
      pc->nOther++;
    }
  }
}

/* The idxStr of PLAN_EQ and PLAN_IN: the name EXPLAIN QUERY PLAN shows,
** then, past the NUL that ends it there, PROBE_VALUE when the statement
** uses the value column: the cursor then reads each row's value with its
** key, one keydir probe under one lock per row (see probe_advance), where a
** lookup in xFilter and a read in xColumn would take two.  Kept out of
** idxNum, whose values EXPLAIN QUERY PLAN shows too. */
#define PROBE_VALUE 'v'
static const char EQ_KEY[] = "key=?\0" "k", EQ_VALUE[] = "key=?\0" "v";
static const char IN_KEY[] = "key IN (...)\0" "k", IN_VALUE[] = "key IN (...)\0" "v";

/* Does the statement read the value of the rows a probe finds?  colUsed
** has bit 1 for the value column; for an UPDATE SQLite sets every bit, also
** of columns the table does not have, and asks for the columns the
** statement does not set with sqlite3_vtab_nochange, which xColumn answers
** without reading: there the value is left to xColumn. */
static int uses_value(const sqlite3_index_info *info) {
  return (info->colUsed & 2) != 0 && (info->colUsed >> 2) == 0;
}

/* A probe plan when the key is given: PLAN_EQ or PLAN_IN.  Returns 1 when
** one was chosen. */
static int plan_probe(sqlite3_index_info *info, plan_cons *pc) {
  /* Ask for the whole IN list at once; should SQLite decline after all, the
  ** values come one per xFilter call and the equality plan serves them. */
  if (pc->iEq < 0 && pc->iIn >= 0 && !sqlite3_vtab_in(info, pc->iIn, 1)) {
    pc->iEq = pc->iIn;
    pc->iIn = -1;
  }
  int i = pc->iEq >= 0 ? pc->iEq : pc->iIn;
  if (i < 0) return 0;
  info->aConstraintUsage[i].argvIndex = 1;
  info->aConstraintUsage[i].omit = 1;
  if (pc->iEq >= 0) {
    info->idxNum = PLAN_EQ;
    info->idxStr = (char *)(uses_value(info) ? EQ_VALUE : EQ_KEY);
    info->estimatedCost = 1.0;
    info->estimatedRows = 1;
    info->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
  } else {
    info->idxNum = PLAN_IN;
    info->idxStr = (char *)(uses_value(info) ? IN_VALUE : IN_KEY);
    info->estimatedCost = 10.0;
    info->estimatedRows = 10;
  }
  return 1;
}

/* The argv of a PLAN_RANGE, in argv order: the constraint, its ARG_*, and
** whether the cursor applies it exactly (then SQLite omits it). */
typedef struct plan_args {
  int n;
  int use[MAX_ARGS], op[MAX_ARGS], exact[MAX_ARGS];
} plan_args;

static void args_add(plan_args *a, int i, int op, int exact) {
  a->use[a->n] = i;
  a->op[a->n] = op;
  a->exact[a->n] = exact;
  a->n++;
}

/* The bounds and the pattern of a PLAN_RANGE into *a; returns `rows` cut by
** their estimated selectivity. */
static double args_ranges(bitcask_vtab *p, sqlite3_index_info *info, plan_cons *pc,
                          plan_args *a, double rows) {
  /* Every bound is passed (xFilter keeps the tightest of each side):
  ** SQLite's LIKE optimization adds bounds of its own beside the user's.
  ** A bound is applied exactly except a TEXT one in a UTF-16 database,
  ** which xFilter widens to a superset (range_args_utf16) and SQLite checks:
  ** there only a bound known now not to be TEXT is omitted. */
  for (int b = 0; b < pc->nLo + pc->nHi; b++) {
    int i = b < pc->nLo ? pc->iLo[b] : pc->iHi[b - pc->nLo], o = info->aConstraint[i].op;
    int exact = 1;
    if (p->utf16) {
      sqlite3_value *bv = NULL;
      exact = sqlite3_vtab_rhs_value(info, i, &bv) == SQLITE_OK && bv &&
              sqlite3_value_type(bv) != SQLITE_TEXT;
      if (!exact) pc->nOther++;
    }
    args_add(a, i,
             o == SQLITE_INDEX_CONSTRAINT_GT   ? ARG_GT
             : o == SQLITE_INDEX_CONSTRAINT_GE ? ARG_GE
             : o == SQLITE_INDEX_CONSTRAINT_LT ? ARG_LT
                                               : ARG_LE,
             exact);
  }
  if (pc->nLo) rows /= 4;
  if (pc->nHi) rows /= 4;
  if (pc->iPat >= 0) {
    int like = info->aConstraint[pc->iPat].op == SQLITE_INDEX_CONSTRAINT_LIKE;
    args_add(a, pc->iPat, like ? ARG_LIKE : ARG_GLOB, 0);
    rows /= 32;
  }
  return rows;
}

/* LIMIT and OFFSET into *a, when nothing is left for SQLite to filter after
** the cursor (the pattern is such a filter) and the rows come in the order
** asked for; returns `rows` capped by a constant LIMIT + OFFSET. */
static double args_limit(sqlite3_index_info *info, const plan_cons *pc, plan_args *a,
                         int ordered, double rows) {
  if (pc->iLimit < 0 || pc->nOther != 0 || pc->iPat >= 0 || (!ordered && info->nOrderBy != 0))
    return rows;
  sqlite3_value *lv = NULL, *ov = NULL;
  double cap = -1;
  if (sqlite3_vtab_rhs_value(info, pc->iLimit, &lv) == SQLITE_OK && lv)
    cap = (double)sqlite3_value_int64(lv);
  args_add(a, pc->iLimit, ARG_LIMIT, 1);
  if (pc->iOffset >= 0) {
    args_add(a, pc->iOffset, ARG_OFFSET, 1);
    if (cap >= 0 && sqlite3_vtab_rhs_value(info, pc->iOffset, &ov) == SQLITE_OK && ov)
      cap += (double)sqlite3_value_int64(ov);
  }
  return cap >= 0 && cap < rows ? cap : rows;
}

/* The idxStr of a PLAN_RANGE (EXPLAIN QUERY PLAN shows it), e.g.
** "key>? AND key<=? LIMIT ? in key order"; sqlite3_mprintf'd, NULL on
** NOMEM. */
static char *args_describe(const plan_args *a, int plan) {
  static const char *const name[] = {"", "key>?", "key>=?", "key<?", "key<=?",
                                     "key LIKE ?", "key GLOB ?", "LIMIT ?", "OFFSET ?"};
  char buf[160];
  size_t dl = 0;
  buf[0] = 0;
  for (int i = 0; i < a->n; i++) {
    int clause = a->op[i] != ARG_LIMIT && a->op[i] != ARG_OFFSET;
    int w = snprintf(buf + dl, sizeof buf - dl, "%s%s",
                     dl && clause ? " AND " : (dl ? " " : ""), name[a->op[i]]);
    if (w > 0 && (size_t)w < sizeof buf - dl) dl += (size_t)w;
  }
  return sqlite3_mprintf("%s %s", dl ? buf : "scan",
                         (plan & RANGE_FOLD) ? "in storage order"
                         : (plan & RANGE_DESC)   ? "in descending key order"
                                                : "in key order");
}

/* PLAN_RANGE over `rows` live keys: its flags and argv (see the top of the
** file), cost and idxStr. */
static int plan_range(bitcask_vtab *p, sqlite3_index_info *info, plan_cons *pc,
                     double rows, int ordered) {
  int plan = PLAN_RANGE;
  plan_args a = {0};
  rows = args_ranges(p, info, pc, &a, rows);
  if (ordered) {
    info->orderByConsumed = 1;
    if (info->aOrderBy[0].desc) plan |= RANGE_DESC;
  }
  /* No order anybody can see (see RANGE_FOLD at the top). */
  if (!ordered && pc->nLo == 0 && pc->nHi == 0 && pc->iPat < 0 && (info->colUsed & 1) == 0)
    plan |= RANGE_FOLD;
  rows = args_limit(info, pc, &a, ordered, rows);
  for (int i = 0; i < a.n; i++) {
    info->aConstraintUsage[a.use[i]].argvIndex = i + 1;
    /* Bounds, LIMIT and OFFSET are applied exactly here; a pattern is not. */
    info->aConstraintUsage[a.use[i]].omit = a.exact[i];
    plan |= a.op[i] << (ARG_SHIFT + ARG_BITS * i);
  }
  info->idxNum = plan;
  info->idxStr = args_describe(&a, plan);
  if (!info->idxStr) return SQLITE_NOMEM;
  info->needToFreeIdxStr = 1;
  if (rows < 1) rows = 1;
  info->estimatedCost = 10.0 + rows;
  info->estimatedRows = (sqlite3_int64)rows;
  return SQLITE_OK;
}

static int bitcaskBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *info) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  if (p->probing) return probe_answer(p, info);
  text_order_check(p);
  plan_cons pc;
  plan_collect(info, &pc);
  plan_pattern(p, info, &pc);
  if (plan_probe(info, &pc)) return SQLITE_OK;
  /* The live key count is exact and free; before the store is open (a
  ** deferred connect) fall back to a large guess. */
  double n = 1e6;
  if (p->sh) n = (double)bc_count(p->sh->store);
  /* Never below SCAN_MIN_ROWS: a plan outlives the data it was made for
  ** (prepared statements, a table filled after CREATE), and an almost empty
  ** kv table would otherwise become the outer loop of a join on key instead
  ** of being probed. */
  if (n < SCAN_MIN_ROWS) n = SCAN_MIN_ROWS;
  /* ORDER BY key is the walk's order only where SQLite orders TEXT as the
  ** keys' UTF-8 bytes; in a UTF-16 database SQLite sorts. */
  int ordered = !p->utf16 && info->nOrderBy >= 1 && info->aOrderBy[0].iColumn == 0;
  if (info->colUsed == 0 && pc.nLo == 0 && pc.nHi == 0 && pc.iPat < 0 && !ordered) {
    info->idxNum = PLAN_COUNT;
    info->idxStr = "count";
    info->estimatedCost = 10.0 + n / 100;
    info->estimatedRows = (sqlite3_int64)n;
    return SQLITE_OK;
  }
  return plan_range(p, info, &pc, n, ordered);
}

/* ---- cursor ------------------------------------------------------------ */

static int bitcaskOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCursor) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  bitcask_cursor *c = sqlite3_malloc(sizeof *c);
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, sizeof *c);
  c->kind = CURSOR_NONE;
  c->eof = 1;
  c->vbuf = p->spare;
  memset(&p->spare, 0, sizeof p->spare);
  /* No cursor of the table is open: it reads nothing through an old store. */
  if (p->nopen == 0 && p->sh) bcx_shared_moved(p->sh, &p->gen);
  p->nopen++;
  *ppCursor = &c->base;
  return SQLITE_OK;
}

/* Free what the cursor's walk holds: back to CURSOR_NONE, at eof. */
static void cursor_reset(bitcask_cursor *c) {
  switch (c->kind) {
  case CURSOR_RANGE:
    bc_iter_close(c->u.range.iter);
    bcx_ranges_free(&c->u.range.ranges);
    break;
  case CURSOR_FOLD:
    bc_fold_close(c->u.fold.fold);
    break;
  case CURSOR_PROBE:
    for (int i = 0; i < c->u.probe.n; i++) bcx_key_clear(&c->u.probe.keys[i]);
    if (c->u.probe.keys != &c->u.probe.one) sqlite3_free(c->u.probe.keys);
    break;
  default:
    break;
  }
  memset(&c->u, 0, sizeof c->u);
  c->kind = CURSOR_NONE;
  c->has_value = 0;
  c->eof = 1;
}

static int bitcaskClose(sqlite3_vtab_cursor *cur) {
  bitcask_cursor *c = (bitcask_cursor *)cur;
  bitcask_vtab *p = (bitcask_vtab *)cur->pVtab;
  cursor_reset(c);
  if (!p->spare.data && c->vbuf.cap <= SPARE_BUF_MAX) {
    p->spare = c->vbuf;
  } else {
    bc_buf_free(&c->vbuf);
  }
  sqlite3_free(c);
  if (--p->nopen == 0) {
    /* The statement halts: its writes stay (SQLite decides the rest). */
    stmt_mark_release(p);
    /* The last cursor of the statements that shared the snapshot. */
    bc_snapshot_close(p->snap);
    p->snap = NULL;
  }
  return SQLITE_OK;
}

/* The cursor's current row is key[0..klen) (c->info filled already). */
static void row_set(bitcask_cursor *c, const void *key, size_t klen) {
  c->key = key;
  c->klen = klen;
  c->eof = 0;
}

/* ---- CURSOR_PROBE: PLAN_EQ and PLAN_IN ---- */

/* Advance to the next probe key that is live, or to eof.  With
** u.probe.value the row's value is read with it (kv_get: one probe, one
** lock); a value that cannot be read leaves the row there when its key is,
** and xColumn reports the error if the statement asks for the value. */
static void probe_advance(bitcask_cursor *c) {
  bitcask_vtab *p = (bitcask_vtab *)c->base.pVtab;
  c->has_value = 0;
  for (; c->u.probe.i < c->u.probe.n; c->u.probe.i++) {
    bcx_key *k = &c->u.probe.keys[c->u.probe.i];
    bc_status st = c->u.probe.value ? kv_get(p, k->data, k->len, &c->vbuf, &c->value, &c->info)
                                    : kv_lookup(p, k->data, k->len, &c->info);
    if (st == BC_OK) c->has_value = c->u.probe.value;
    if (st == BC_OK || (st != BC_NOTFOUND && c->u.probe.value &&
                        kv_lookup(p, k->data, k->len, &c->info) == BC_OK)) {
      row_set(c, k->data, k->len);
      return;
    }
  }
  c->eof = 1;
}

/* Encode the key of `v` into *k, the next place of the cursor's probe list,
** and count it; NULL, and keys too long to exist, match nothing and are
** skipped. */
static int probe_push(bitcask_cursor *c, sqlite3_value *v, bcx_key *k) {
  int rc = bcx_key_encode(v, k);
  if (rc == SQLITE_MISMATCH || rc == SQLITE_TOOBIG) return SQLITE_OK;
  if (rc == SQLITE_OK) c->u.probe.n++;
  return rc;
}

/* Add the key of `v` to the cursor's probe list (grown as needed). */
static int probe_add(bitcask_cursor *c, sqlite3_value *v, int *pAlloc) {
  if (c->u.probe.n == *pAlloc) {
    int n = *pAlloc ? *pAlloc * 2 : 4;
    bcx_key *a = sqlite3_realloc64(c->u.probe.keys, (sqlite3_uint64)n * sizeof *a);
    if (!a) return SQLITE_NOMEM;
    /* The keys moved: short ones point into themselves. */
    for (int i = 0; i < c->u.probe.n; i++) bcx_key_rebase(&a[i]);
    c->u.probe.keys = a;
    *pAlloc = n;
  }
  return probe_push(c, v, &c->u.probe.keys[c->u.probe.n]);
}

/* Start a PLAN_EQ (arg: the key) or PLAN_IN (arg: the IN list, walked with
** sqlite3_vtab_in_first/next) at its first live key.  idxStr says whether
** the values are read with the keys (PROBE_VALUE). */
static int probe_start(bitcask_cursor *c, int idxNum, const char *idxStr,
                       sqlite3_value *arg) {
  int rc, alloc = 0;
  c->kind = CURSOR_PROBE;
  c->u.probe.value = idxStr && idxStr[strlen(idxStr) + 1] == PROBE_VALUE;
  if (idxNum == PLAN_EQ) {
    c->u.probe.keys = &c->u.probe.one; /* the list of one key, in the cursor */
    rc = probe_push(c, arg, &c->u.probe.one);
  } else {
    sqlite3_value *v;
    for (rc = sqlite3_vtab_in_first(arg, &v); rc == SQLITE_OK && v;
         rc = sqlite3_vtab_in_next(arg, &v)) {
      rc = probe_add(c, v, &alloc);
      if (rc != SQLITE_OK) break;
    }
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  if (rc != SQLITE_OK) return rc;
  c->u.probe.i = 0;
  probe_advance(c);
  return SQLITE_OK;
}

/* ---- CURSOR_RANGE and CURSOR_FOLD: PLAN_RANGE ---- */

/* Open the engine iterator over range c->u.range.irange. */
static int range_open(bitcask_cursor *c) {
  bitcask_vtab *p = (bitcask_vtab *)c->base.pVtab;
  const bcx_range *r = &c->u.range.ranges.r[c->u.range.irange];
  bc_range br = {r->lo, r->lo_len, r->lo_excl, r->hi, r->hi_len, r->hi_excl,
                 c->u.range.desc};
  bc_status st = p->snap ? bc_iter_open_snapshot(p->snap, &br, &c->u.range.iter)
                         : bc_iter_open_range(p->sh->store, &br, &c->u.range.iter);
  return st == BC_OK ? SQLITE_OK : engine_error(p, st);
}

/* CURSOR_RANGE's next row: the next live key of the current range, moving
** on through the ranges, in this connection's view (its transaction, if it
** has one now -- a walk may outlive the transaction it began in). */
static int range_next(bitcask_cursor *c) {
  bitcask_vtab *p = (bitcask_vtab *)c->base.pVtab;
  c->eof = 1;
  if (c->u.range.limit == 0) return SQLITE_OK;
  while (c->u.range.iter) {
    const void *key;
    size_t klen;
    bc_status st = bc_iter_next_view(c->u.range.iter, view_txn(p), &key, &klen, &c->info);
    if (st == BC_OK) {
      row_set(c, key, klen);
      if (c->u.range.limit > 0) c->u.range.limit--;
      return SQLITE_OK;
    }
    if (st != BC_DONE) return engine_error(p, st);
    bc_iter_close(c->u.range.iter);
    c->u.range.iter = NULL;
    int desc = c->u.range.desc;
    if (desc ? c->u.range.irange == 0 : c->u.range.irange + 1 >= c->u.range.ranges.n) break;
    c->u.range.irange += desc ? -1 : 1;
    int rc = range_open(c);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

/* CURSOR_FOLD's next row, in this connection's view: the value comes with
** the key (a RANGE_FOLD plan uses it), one trip into the engine per row. */
static int fold_next(bitcask_cursor *c) {
  bitcask_vtab *p = (bitcask_vtab *)c->base.pVtab;
  c->eof = 1;
  c->has_value = 0;
  if (c->u.fold.limit == 0) return SQLITE_OK;
  const void *key;
  size_t klen;
  bc_status st = bc_fold_next(c->u.fold.fold, view_txn(p), &key, &klen, &c->info,
                              c->u.fold.skipping ? NULL : &c->vbuf, &c->value);
  if (st == BC_DONE) return SQLITE_OK;
  if (st != BC_OK) return engine_error(p, st);
  row_set(c, key, klen);
  c->has_value = !c->u.fold.skipping;
  if (c->u.fold.limit > 0) c->u.fold.limit--;
  return SQLITE_OK;
}

/* Pass `offset` rows (SQLite does not: the OFFSET is omitted), then go to
** the first row; `limit` rows are returned from there (< 0: all). */
static int walk_first(bitcask_cursor *c, sqlite3_int64 offset, sqlite3_int64 limit) {
  int fold = c->kind == CURSOR_FOLD;
  int (*next)(bitcask_cursor *) = fold ? fold_next : range_next;
  sqlite3_int64 *left = fold ? &c->u.fold.limit : &c->u.range.limit;
  int rc = SQLITE_OK;
  *left = -1;
  if (fold) c->u.fold.skipping = 1; /* no value is read for them */
  for (sqlite3_int64 i = 0; i < offset && rc == SQLITE_OK; i++) {
    rc = next(c);
    if (c->eof) break;
  }
  if (fold) c->u.fold.skipping = 0;
  if (c->eof && offset > 0) return rc;
  *left = limit < 0 ? -1 : limit;
  if (rc == SQLITE_OK) rc = next(c);
  return rc;
}

/* Keep the tighter of the bound *cur (if *have) and k, for a lower bound
** (is_lo) or an upper one; k is taken (moved into *cur or cleared). */
static void bound_keep(int is_lo, bcx_key *k, int excl, bcx_key *cur, int *have, int *ex) {
  int tighter = 1;
  if (*have) {
    int c = bc_key_cmp(k->data, k->len, cur->data, cur->len);
    tighter = is_lo ? (c > 0 || (c == 0 && excl)) : (c < 0 || (c == 0 && excl));
  }
  if (tighter) {
    if (*have) bcx_key_clear(cur);
    *cur = *k;
    bcx_key_rebase(cur);
    *have = 1;
    *ex = excl;
  } else {
    bcx_key_clear(k);
  }
}

/* What a PLAN_RANGE's argv asks for (see bitcaskBestIndex). */
typedef struct range_args {
  bcx_key lo, hi;            /* the tightest bound of each side, when have_* */
  int have_lo, have_hi, lo_excl, hi_excl;
  int pat_op;                /* BCX_PATTERN_*; pat its pattern */
  const unsigned char *pat;
  sqlite3_int64 limit;       /* < 0: no LIMIT */
  sqlite3_int64 offset;
  int none;                  /* a NULL bound or pattern: no row can match */
  /* UTF-16: the TEXT bounds of each side, as UTF-8 (range_args_utf16). */
  sqlite3_value *tlo[MAX_BOUNDS], *thi[MAX_BOUNDS];
  int ntlo, nthi;
} range_args;

static void range_args_clear(range_args *ra) {
  if (ra->have_lo) bcx_key_clear(&ra->lo);
  if (ra->have_hi) bcx_key_clear(&ra->hi);
}

/* A bound argument (op ARG_GT .. ARG_LE) into *ra. */
static int range_args_bound(bitcask_vtab *p, int op, sqlite3_value *v, range_args *ra) {
  int is_lo = op == ARG_GT || op == ARG_GE, excl = op == ARG_GT || op == ARG_LT;
  if (p->utf16 && sqlite3_value_type(v) == SQLITE_TEXT) {
    /* Not a range of UTF-8 keys: widened by range_args_utf16 (xBestIndex
    ** left the bound to SQLite). */
    if (is_lo && ra->ntlo < MAX_BOUNDS) ra->tlo[ra->ntlo++] = v;
    if (!is_lo && ra->nthi < MAX_BOUNDS) ra->thi[ra->nthi++] = v;
    return SQLITE_OK;
  }
  bcx_key k;
  int rc = bcx_key_encode_bound(v, &k);
  if (rc == SQLITE_MISMATCH) { /* NULL: the comparison is never true */
    ra->none = 1;
    return SQLITE_OK;
  }
  if (rc != SQLITE_OK) return rc;
  /* Keep the tightest bound of each side. */
  if (is_lo) bound_keep(1, &k, excl, &ra->lo, &ra->have_lo, &ra->lo_excl);
  else bound_keep(0, &k, excl, &ra->hi, &ra->have_hi, &ra->hi_excl);
  return SQLITE_OK;
}

/* Read a PLAN_RANGE's argv, each argument's ARG_* taken from idxNum. */
static int range_args_read(bitcask_vtab *p, int idxNum, int argc, sqlite3_value **argv,
                           range_args *ra) {
  int rc = SQLITE_OK;
  memset(ra, 0, sizeof *ra);
  ra->pat_op = BCX_PATTERN_NONE;
  ra->limit = -1;
  for (int a = 0; a < argc && a < MAX_ARGS && rc == SQLITE_OK; a++) {
    int op = (idxNum >> (ARG_SHIFT + ARG_BITS * a)) & ((1 << ARG_BITS) - 1);
    sqlite3_value *v = argv[a];
    switch (op) {
    case ARG_GT: case ARG_GE: case ARG_LT: case ARG_LE:
      rc = range_args_bound(p, op, v, ra);
      break;
    case ARG_LIKE: case ARG_GLOB:
      ra->pat = sqlite3_value_text(v);
      if (!ra->pat) {
        if (sqlite3_value_type(v) == SQLITE_NULL) ra->none = 1;
        else rc = SQLITE_NOMEM;
        break;
      }
      ra->pat_op = op == ARG_LIKE ? BCX_PATTERN_LIKE : BCX_PATTERN_GLOB;
      break;
    case ARG_LIMIT:
      ra->limit = sqlite3_value_int64(v);
      break;
    case ARG_OFFSET:
      ra->offset = sqlite3_value_int64(v);
      break;
    default:
      break;
    }
  }
  return rc;
}

/* UTF-16 TEXT bounds.  SQLite orders TEXT by its UTF-16 bytes there, so
** the strings above (below) a TEXT bound are no range of UTF-8 keys; a
** lower one becomes "every TEXT key and above", an upper one "anything"
** (BLOBs sort above every TEXT, and leaving them in keeps the pattern's
** own BLOB range whole).  A lower and an upper TEXT bound together confine
** the strings to those starting with their common ASCII prefix, in any
** byte order: then the walk is the keys starting with it (bounds SQLite's
** LIKE optimization derives beside a pattern are not trusted for that:
** they do not hold for BLOB keys).  SQLite applies the bounds itself. */
static int range_args_utf16(range_args *ra) {
  size_t best = 0;
  const unsigned char *bp = NULL;
  for (int i = 0; i < ra->ntlo && ra->pat_op == BCX_PATTERN_NONE; i++)
    for (int j = 0; j < ra->nthi; j++) {
      const unsigned char *a = sqlite3_value_text(ra->tlo[i]), *b = sqlite3_value_text(ra->thi[j]);
      if (!a || !b) return SQLITE_NOMEM;
      size_t n = bcx_utf16_prefix(a, (size_t)sqlite3_value_bytes(ra->tlo[i]), b,
                                  (size_t)sqlite3_value_bytes(ra->thi[j]));
      if (n > best) best = n, bp = a;
    }
  if (!ra->ntlo) return SQLITE_OK;
  bcx_key klo, khi;
  int rc = bcx_key_text_prefix(bp ? bp : (const unsigned char *)"", best, &klo, &khi);
  if (rc != SQLITE_OK) return rc;
  bound_keep(1, &klo, 0, &ra->lo, &ra->have_lo, &ra->lo_excl);
  if (best) bound_keep(0, &khi, 1, &ra->hi, &ra->have_hi, &ra->hi_excl);
  else bcx_key_clear(&khi);
  return SQLITE_OK;
}

/* Start a PLAN_RANGE: its ranges from argv, the ordered walk of them (or,
** RANGE_FOLD, the fold of every key), then the first row past the
** OFFSET. */
static int range_start(bitcask_cursor *c, int idxNum, int argc, sqlite3_value **argv) {
  bitcask_vtab *p = (bitcask_vtab *)c->base.pVtab;
  range_args ra;
  bcx_ranges ranges = {0};
  text_order_check(p);
  int rc = range_args_read(p, idxNum, argc, argv, &ra);
  if (rc == SQLITE_OK && !ra.none && (ra.ntlo || ra.nthi)) rc = range_args_utf16(&ra);
  if (rc == SQLITE_OK && !ra.none)
    rc = bcx_ranges_build(&ranges, ra.have_lo ? &ra.lo : NULL, ra.lo_excl,
                          ra.have_hi ? &ra.hi : NULL, ra.hi_excl, ra.pat_op, ra.pat,
                          p->utf16);
  range_args_clear(&ra);
  if (rc != SQLITE_OK) return rc;
  if (ra.none || ranges.n == 0) { /* eof */
    bcx_ranges_free(&ranges);
    return SQLITE_OK;
  }
  if (idxNum & RANGE_FOLD) {
    /* No bound: the one range is the whole key space. */
    bcx_ranges_free(&ranges);
    c->kind = CURSOR_FOLD;
    bc_txn *t = view_txn(p);
    bc_status st = p->snap && !t ? bc_fold_open_snapshot(p->snap, &c->u.fold.fold)
                                 : bc_fold_open(p->sh->store, t, &c->u.fold.fold);
    if (st != BC_OK) return engine_error(p, st);
  } else {
    c->kind = CURSOR_RANGE;
    c->u.range.ranges = ranges;
    c->u.range.desc = (idxNum & RANGE_DESC) != 0;
    c->u.range.irange = c->u.range.desc ? ranges.n - 1 : 0;
    rc = range_open(c);
    if (rc != SQLITE_OK) return rc;
  }
  return walk_first(c, ra.offset, ra.limit);
}

/* ---- CURSOR_COUNT: PLAN_COUNT ---- */

/* Start a PLAN_COUNT: the live key count of the view, no key read. */
static void count_start(bitcask_cursor *c) {
  bitcask_vtab *p = (bitcask_vtab *)c->base.pVtab;
  bc_txn *t = view_txn(p);
  c->kind = CURSOR_COUNT;
  c->u.count.passed = 0;
  c->u.count.remaining = (sqlite3_int64)(t || !p->snap ? bc_count_view(p->sh->store, t)
                                                       : bc_snapshot_count(p->snap));
  c->eof = c->u.count.remaining <= 0;
}

/* A PLAN_COUNT cursor asked for a column after all: SQLite reports colUsed
** 0 for `DELETE FROM kv` too, which then reads each row's key.  Become a
** walk of every key, positioned at the same row. */
static int count_to_range(bitcask_cursor *c) {
  sqlite3_int64 skip = c->u.count.passed;
  bcx_range *all = sqlite3_malloc(sizeof *all);
  if (!all) return SQLITE_NOMEM;
  memset(all, 0, sizeof *all);
  memset(&c->u, 0, sizeof c->u);
  c->kind = CURSOR_RANGE;
  c->u.range.ranges.r = all;
  c->u.range.ranges.n = 1;
  c->u.range.limit = -1;
  int rc = range_open(c);
  for (sqlite3_int64 k = 0; rc == SQLITE_OK && k <= skip; k++) rc = range_next(c);
  return rc;
}

/* ---- the cursor methods ---- */

static int bitcaskFilter(sqlite3_vtab_cursor *cur, int idxNum,
                         const char *idxStr, int argc, sqlite3_value **argv) {
  bitcask_cursor *c = (bitcask_cursor *)cur;
  bitcask_vtab *p = (bitcask_vtab *)cur->pVtab;
  rows_read(p);
  cursor_reset(c);
  int rc = vtab_store(p);
  if (rc != SQLITE_OK) return rc;
  if (!p->snap) {
    /* The first cursor of a statement to read: the state every cursor of
    ** the table reads until the last one closes (a read-only table first
    ** catches up with what the writing process committed). */
    p->snap_store = p->sh->store;
    bc_status st = bc_snapshot_open(p->snap_store, &p->snap);
    if (st != BC_OK) return engine_error(p, st);
  }
  switch (idxNum & PLAN_MASK) {
  case PLAN_RANGE:
    return range_start(c, idxNum, argc, argv);
  case PLAN_COUNT:
    count_start(c);
    return SQLITE_OK;
  default:
    return probe_start(c, idxNum, idxStr, argv[0]);
  }
}

static int bitcaskNext(sqlite3_vtab_cursor *cur) {
  bitcask_cursor *c = (bitcask_cursor *)cur;
  rows_read((bitcask_vtab *)cur->pVtab);
  switch (c->kind) {
  case CURSOR_RANGE:
    return range_next(c);
  case CURSOR_FOLD:
    return fold_next(c);
  case CURSOR_PROBE:
    c->u.probe.i++;
    probe_advance(c);
    return SQLITE_OK;
  case CURSOR_COUNT:
    c->u.count.passed++;
    c->eof = c->u.count.remaining-- <= 1;
    return SQLITE_OK;
  default:
    c->eof = 1;
    return SQLITE_OK;
  }
}

static int bitcaskEof(sqlite3_vtab_cursor *cur) {
  return ((bitcask_cursor *)cur)->eof;
}

/* The current row's value could not be read (xColumn): a key deleted since
** the walk found it reads as NULL; an error fails the statement. */
static int column_read_error(bitcask_vtab *p, sqlite3_context *ctx, bc_status st) {
  if (st == BC_NOTFOUND) {
    sqlite3_result_null(ctx);
    return SQLITE_OK;
  }
  char em[BCX_ERRMSG_MAX];
  char *msg = sqlite3_mprintf("bitcask table '%s': %s", p->zName,
                              bc_errmsg_copy(p->sh->store, em, sizeof em));
  sqlite3_result_error(ctx, msg ? msg : "out of memory", -1);
  sqlite3_free(msg);
  sqlite3_result_error_code(ctx, bcx_rc(st));
  return bcx_rc(st);
}

static int bitcaskColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx,
                         int i) {
  bitcask_cursor *c = (bitcask_cursor *)cur;
  bitcask_vtab *p = (bitcask_vtab *)cur->pVtab;
  int rc;
  if (c->kind == CURSOR_COUNT) {
    rc = count_to_range(c);
    if (rc != SQLITE_OK) return rc;
    if (c->eof) {
      /* The rows counted are gone meanwhile. */
      sqlite3_result_null(ctx);
      return SQLITE_OK;
    }
  }
  if (i == 0) {
    rc = bcx_key_result(ctx, c->key, c->klen, c->info.meta);
  } else if (sqlite3_vtab_nochange(ctx)) {
    return SQLITE_OK; /* an UPDATE that does not change `value` need not read it */
  } else if (c->has_value) {
    rc = bcx_value_result(ctx, c->value, c->info.value_size, c->info.meta);
  } else {
    /* Read now, in the cursor's view, as the key was found. */
    const void *val;
    bc_info info;
    bc_status st = kv_get(p, c->key, c->klen, &c->vbuf, &val, &info);
    if (st != BC_OK) return column_read_error(p, ctx, st);
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

/* A constraint failure, with the message and the extended code a native
** WITHOUT ROWID table gives (SQLITE_CONSTRAINT_PRIMARYKEY for a duplicate
** key, SQLITE_CONSTRAINT_NOTNULL for a NULL one).  SQLite passes an
** xUpdate's code through to sqlite3_extended_errcode() and tests only its
** low byte for the conflict handling (OP_VUpdate: `(rc&0xff) ==
** SQLITE_CONSTRAINT`), so OR IGNORE / OR FAIL / OR ROLLBACK still apply. */
static int constraint_error(bitcask_vtab *p, int code, const char *what) {
  vtab_error(p, "%s constraint failed: %s.key", what, p->zName);
  return code;
}

static int encode_key_checked(bitcask_vtab *p, sqlite3_value *v, bcx_key *k) {
  int rc = bcx_key_encode(v, k);
  if (rc == SQLITE_MISMATCH) return constraint_error(p, SQLITE_CONSTRAINT_NOTNULL, "NOT NULL");
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
static int update_row(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv,
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
    if (st == BC_OK) p->wrote = 1;
    if (st == BC_NOTFOUND) st = BC_OK;
    return st == BC_OK ? SQLITE_OK : engine_error(p, st);
  }

  int isReplace = sqlite3_vtab_on_conflict(p->db) == SQLITE_REPLACE;

  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
    /* INSERT */
    rc = encode_key_checked(p, argv[2], &newk);
    if (rc != SQLITE_OK) goto done;
    rc = bcx_value_encode(argv[3], &val);
    if (rc != SQLITE_OK) goto done;
    uint8_t meta = (uint8_t)(newk.key_meta | val.value_meta);
    if (isReplace) {
      st = bc_txn_put(t, newk.data, newk.len, meta, val.data, val.len);
    } else {
      /* The existence check and the write in one call (one probe). */
      st = bc_txn_insert(t, newk.data, newk.len, meta, val.data, val.len);
      if (st == BC_EXISTS) {
        st = BC_OK;
        rc = constraint_error(p, SQLITE_CONSTRAINT_PRIMARYKEY, "UNIQUE");
      }
    }
    if (st == BC_OK && rc == SQLITE_OK) p->wrote = 1;
    goto done;
  }

  /* UPDATE of the row SQLite read with key argv[0].  SQLite computed the
  ** new key and value of every row of a multi-row UPDATE before the first
  ** xUpdate (it collects them first, as it must for a virtual table), so
  ** once this statement has written, the row at argv[0] may no longer be
  ** the one they were computed from (see "Stale rows" at the top). */
  rc = encode_key_checked(p, argv[0], &oldk);
  if (rc != SQLITE_OK) goto done;
  int nochange = sqlite3_value_nochange(argv[3]);
  const void *data = NULL;
  bc_info cur;
  int haveCur = 0;
  if (nochange || p->wrote) {
    /* The value is unchanged and was not read (xColumn saw nochange): it
    ** is the row's value now.  Or the statement has written since it read
    ** the row: where is the row now? */
    st = nochange ? bc_txn_get(t, oldk.data, oldk.len, &buf, &data, &cur)
                  : bc_txn_lookup(t, oldk.data, oldk.len, &cur);
    if (st == BC_NOTFOUND) {
      /* Gone since it was read (an UPDATE ... FROM that matched the row
      ** twice moved it the first time): a native table skips it too. */
      st = BC_OK;
      goto done;
    }
    if (st != BC_OK) goto done;
    haveCur = 1;
  }
  if (haveCur && isReplace && cur.seq >= p->replaced_seq &&
      (!nochange || (cur.meta & BCX_KEY_MASK) != oldk.key_meta)) {
    /* The row was replaced by an earlier row of this statement that moved
    ** onto its key.  A native table computes the new key and value from
    ** the row now there; SQLite gave them computed from the row replaced,
    ** and they visibly differ (the value is set, or the key's class is
    ** not the one read): refuse rather than write what no native table
    ** would. */
    vtab_error(p, "bitcask table '%s': UPDATE OR REPLACE cannot update a row "
               "that an earlier row of the same statement replaced: SQLite "
               "computed its new key and value from the row it replaced, "
               "before the statement's first write (as it does for every "
               "virtual table), where a native table computes them from the "
               "row now there; update these rows in separate statements",
               p->zName);
    rc = SQLITE_ERROR;
    goto done;
  }
  rc = encode_key_checked(p, argv[2], &newk);
  if (rc != SQLITE_OK) goto done;
  int sameKey = oldk.len == newk.len && memcmp(oldk.data, newk.data, newk.len) == 0;
  int replacing = 0; /* newk holds another row, which this write replaces */
  if (!sameKey && bc_txn_lookup(t, newk.data, newk.len, NULL) == BC_OK) {
    if (!isReplace) {
      rc = constraint_error(p, SQLITE_CONSTRAINT_PRIMARYKEY, "UNIQUE");
      goto done;
    }
    replacing = 1;
  }
  if (nochange) {
    uint8_t meta = (uint8_t)(newk.key_meta | (cur.meta & BCX_VALUE_MASK));
    if (sameKey && meta == cur.meta) goto done; /* nothing changes */
    st = bc_txn_put(t, newk.data, newk.len, meta, data, cur.value_size);
  } else {
    rc = bcx_value_encode(argv[3], &val);
    if (rc != SQLITE_OK) goto done;
    st = bc_txn_put(t, newk.data, newk.len, (uint8_t)(newk.key_meta | val.value_meta),
                    val.data, val.len);
  }
  if (st == BC_OK) p->wrote = 1;
  if (st == BC_OK && replacing && p->replaced_seq == UINT64_MAX) {
    /* The first row this statement replaced since it read the table:
    ** every record written from now on has a seq at least this one's. */
    bc_info ni;
    if (bc_txn_lookup(t, newk.data, newk.len, &ni) == BC_OK) p->replaced_seq = ni.seq;
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

/* Statement atomicity.  SQLite rolls a failed statement back through the
** savepoints it opens (xSavepoint / xRollbackTo), but it opens none for
** some statements that read the table they write -- an UPDATE ... FROM,
** whose rows are gathered first and written after -- so their writes
** before a failing row would stay.  So a statement writing the table while
** it has a cursor of its own open (it began with the first cursor: SQLite
** keeps a statement's cursors open until it halts) gets an engine
** savepoint of its own at its first write: undone if a write of it fails
** (as SQLite aborts the statement on any error, except a constraint under
** OR FAIL, which keeps the earlier rows, and OR IGNORE, which skips the
** row and goes on), released when the statement's
** last cursor closes.  It is the deepest savepoint while it is open, so a
** SQLite rollback to an outer one undoes it too. */
static void stmt_mark_release(bitcask_vtab *p) {
  if (p->stmt_mark && p->txn) (void)bc_txn_release(p->txn, p->stmt_mark);
  p->stmt_mark = 0;
  p->mark_stmt = NULL;
}

/* The statement of the connection writing now: a busy one that is not
** read-only (a SELECT left stepping is read-only).  NULL if none is seen. */
static sqlite3_stmt *writing_stmt(sqlite3 *db) {
  for (sqlite3_stmt *s = sqlite3_next_stmt(db, NULL); s; s = sqlite3_next_stmt(db, s))
    if (sqlite3_stmt_busy(s) && !sqlite3_stmt_readonly(s)) return s;
  return NULL;
}

/* Whether stmt_mark still belongs to the statement writing now: the same
** statement, still in the same run.  The pointer is only compared with
** live statements (a finalized one is never touched). */
static int mark_current(bitcask_vtab *p, sqlite3_stmt *w) {
  return p->mark_stmt && w == p->mark_stmt &&
         sqlite3_stmt_status(w, SQLITE_STMTSTATUS_RUN, 0) == p->mark_run;
}

static int bitcaskUpdate(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv,
                         sqlite3_int64 *pRowid) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  if (p->nopen > 0 && p->txn) {
    /* A mark is one statement's: a cursor open may be another statement's
    ** (a SELECT left stepping while others write), so the mark follows the
    ** statement writing, not the cursors. */
    sqlite3_stmt *w = writing_stmt(p->db);
    if (p->stmt_mark && !mark_current(p, w)) stmt_mark_release(p);
    if (!p->stmt_mark && w) {
      unsigned d;
      bc_status st = bc_txn_savepoint(p->txn, &d);
      if (st != BC_OK) return engine_error(p, st);
      p->stmt_mark = d;
      p->mark_stmt = w;
      p->mark_run = sqlite3_stmt_status(w, SQLITE_STMTSTATUS_RUN, 0);
    }
  }
  int rc = update_row(pVtab, argc, argv, pRowid);
  int mode = sqlite3_vtab_on_conflict(p->db);
  if (rc != SQLITE_OK && p->stmt_mark && p->txn &&
      !((rc & 0xff) == SQLITE_CONSTRAINT && (mode == SQLITE_FAIL || mode == SQLITE_IGNORE))) {
    /* The statement fails: none of its writes stay. */
    if (bc_txn_rollback_to(p->txn, p->stmt_mark) == BC_OK) stmt_mark_release(p);
    else p->stmt_mark = 0, p->mark_stmt = NULL;
  }
  return rc;
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
    /* The transaction holding the store may be this connection's own, on
    ** another table naming the same directory: waiting cannot help. */
    for (bitcask_vtab *q = p->mod->tables; q; q = q->next ? q->next
                                             : q->dropped ? NULL : p->mod->dropped) {
      if (q != p && q->sh == p->sh && q->txn) {
        vtab_error(p, "bitcask table '%s': this transaction has written table "
                   "'%s', which uses the same store '%s': one transaction can "
                   "write only one of the tables of a store (commit first)",
                   p->zName, q->zName, p->zPath);
        return SQLITE_ERROR;
      }
    }
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
  p->stmt_mark = 0;
  p->mark_stmt = NULL;
}

/* This connection's transaction on the table's store, begun if needed (an
** xUpdate always follows an xBegin, but the table's store may have been
** opened only now). */
static int vtab_txn(bitcask_vtab *p) {
  int rc = vtab_store(p);
  if (rc != SQLITE_OK || p->txn) return rc;
  rc = vtab_writer(p);
  if (rc != SQLITE_OK) return rc;
  bc_status st = bc_txn_begin(p->sh->store, &p->txn);
  return st == BC_OK ? SQLITE_OK : txn_error(p, st);
}

static int bitcaskBegin(sqlite3_vtab *pVtab) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  rows_read(p);
  if (p->adopted) {
    /* SQLite drives the adopted transaction from now on. */
    p->adopted = 0;
    p->skip_svpt = 1;
  }
  return vtab_txn(p);
}

/* The commit point (DESIGN.md section 4): the records and the COMMIT are
** written and synced now, and any error fails the COMMIT statement.
** SQLite's own commit comes next and may still fail (SQLITE_BUSY); SQLite
** then calls xRollback, which voids the COMMIT with an abort record. */
static int bitcaskSync(sqlite3_vtab *pVtab) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  p->skip_svpt = 0;
  if (!p->txn) return SQLITE_OK;
  bc_status st = bc_txn_prepare(p->txn);
  return st == BC_OK ? SQLITE_OK : engine_error(p, st);
}

/* After SQLite committed: make the writes visible to every connection.  No
** I/O; it cannot fail after a successful xSync (SQLite ignores the code). */
static int bitcaskCommit(sqlite3_vtab *pVtab) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  p->pending_create = 0; /* the CREATE of this transaction, if any, is final */
  p->watch_create = 0;
  p->adopted = 0;
  if (!p->txn) return SQLITE_OK;
  bc_status st = bc_txn_commit(p->txn); /* frees it, whatever the outcome */
  txn_forget(p);
  /* A statement still reading sees what its own connection committed, as
  ** with a native table: its snapshot moves on to the new state. */
  if (st == BC_OK && p->snap) (void)bc_snapshot_refresh(p->snap); /* else: the old state */
  if (st == BC_OK) return SQLITE_OK;
  int rc = engine_error(p, st);
  sqlite3_log(rc, "%s", p->base.zErrMsg ? p->base.zErrMsg : "bitcask commit failed");
  return rc;
}

static int bitcaskRollback(sqlite3_vtab *pVtab) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  bc_txn_rollback(p->txn);
  txn_forget(p);
  p->adopted = 0;
  p->skip_svpt = 0;
  create_undo(p); /* a CREATE of this transaction never happened */
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
  /* A statement mark is the deepest savepoint: released (its writes kept)
  ** before SQLite's savepoints move, so depths never cross. */
  stmt_mark_release(p);
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
  stmt_mark_release(p);
  p->skip_svpt = 0;
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
  stmt_mark_release(p);
  p->skip_svpt = 0;
  rows_read(p);
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
  while (m->dropped) { /* none: the close rolled back (watchRollback) */
    bitcask_vtab *q = m->dropped;
    m->dropped = q->next;
    dropped_free(q);
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
  /* The transaction watcher (see "Creating and dropping").  It reads m only
  ** in its transaction methods, which run while the connection is open (a
  ** close rolls back before any module is destroyed); its xDisconnect does
  ** not touch m, which moduleDestroy frees. */
  rc = sqlite3_create_module_v2(db, "bitcask_txn_watch", &watchModule, m, NULL);
  if (rc != SQLITE_OK) return rc;
  return bcx_register_functions(db, m);
}
