/*
** update.c -- xUpdate of the `bitcask` module: INSERT, UPDATE and DELETE as
** writes of the table's transaction (transaction.c), and statement
** atomicity.
**
** Writes follow the native table's conflict rules (sqlite3_vtab_on_conflict):
** REPLACE overwrites; otherwise a conflict returns SQLITE_CONSTRAINT_PRIMARYKEY
** (a NULL key SQLITE_CONSTRAINT_NOTNULL, the native codes) before
** anything is written and SQLite applies IGNORE / ABORT / FAIL / ROLLBACK
** (R-Tree's rtreeUpdate is the model).  A transaction's writes (an
** autocommit statement's are its own) are committed, and fsync'd per the
** sync option, in xSync (transaction.c).
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
#include "vtab.h"
SQLITE_EXTENSION_INIT3

#include <string.h>

/* A cursor of the table produced a row (or a transaction boundary): the
** values of whatever xUpdate comes next were computed after every write
** so far (see "Stale rows" above). */
void bcx_rows_read(bitcask_vtab *p) {
  p->wrote = 0;
  p->replaced_seq = UINT64_MAX;
}

/* ---- xUpdate ------------------------------------------------------------ */

/* A constraint failure, with the message and the extended code a native
** WITHOUT ROWID table gives (SQLITE_CONSTRAINT_PRIMARYKEY for a duplicate
** key, SQLITE_CONSTRAINT_NOTNULL for a NULL one).  SQLite passes an
** xUpdate's code through to sqlite3_extended_errcode() and tests only its
** low byte for the conflict handling (OP_VUpdate: `(rc&0xff) ==
** SQLITE_CONSTRAINT`), so OR IGNORE / OR FAIL / OR ROLLBACK still apply. */
static int constraint_error(bitcask_vtab *p, int code, const char *what) {
  bcx_vtab_error(p, "%s constraint failed: %s.key", what, p->zName);
  return code;
}

static int encode_key_checked(bitcask_vtab *p, sqlite3_value *v, bcx_key *k) {
  int rc = bcx_key_encode(v, k);
  if (rc == SQLITE_MISMATCH) return constraint_error(p, SQLITE_CONSTRAINT_NOTNULL, "NOT NULL");
  if (rc == SQLITE_TOOBIG) {
    bcx_vtab_error(p, "bitcask table '%s': key of %d bytes is too large (the "
                   "maximum is %u bytes)", p->zName, sqlite3_value_bytes(v),
                   (unsigned)BCX_MAX_KEY_PAYLOAD);
  }
  return rc;
}

/* One xUpdate call's keys and buffer, freed by update_row, and the
** engine's outcome (reported when no SQLite error came first). */
typedef struct row_op {
  bitcask_vtab *p;
  bc_txn *t;          /* p's transaction */
  int replace;        /* the statement's conflict mode is REPLACE */
  bcx_key oldk, newk; /* the row's key as SQLite read it, and its new key */
  bc_buf buf;         /* the unchanged value, read (row_current) */
  bc_status st;
} row_op;

/* DELETE of the row with key k (SQLite read it: a key that cannot be
** encoded matches no row). */
static int row_delete(row_op *op, sqlite3_value *k) {
  int rc = bcx_key_encode(k, &op->oldk);
  if (rc == SQLITE_MISMATCH || rc == SQLITE_TOOBIG) return SQLITE_OK;
  if (rc != SQLITE_OK) return rc;
  op->st = bc_txn_delete(op->t, op->oldk.data, op->oldk.len);
  if (op->st == BC_OK) op->p->wrote = 1;
  if (op->st == BC_NOTFOUND) op->st = BC_OK;
  return SQLITE_OK;
}

/* INSERT of (argv[2], argv[3]). */
static int row_insert(row_op *op, sqlite3_value **argv) {
  bitcask_vtab *p = op->p;
  bcx_value val;
  int rc = encode_key_checked(p, argv[2], &op->newk);
  if (rc == SQLITE_OK) rc = bcx_value_encode(argv[3], &val);
  if (rc != SQLITE_OK) return rc;
  const bcx_key *k = &op->newk;
  uint8_t meta = (uint8_t)(k->key_meta | val.value_meta);
  if (op->replace) {
    op->st = bc_txn_put(op->t, k->data, k->len, meta, val.data, val.len);
  } else {
    /* The existence check and the write in one call (one probe). */
    op->st = bc_txn_insert(op->t, k->data, k->len, meta, val.data, val.len);
    if (op->st == BC_EXISTS) {
      op->st = BC_OK;
      rc = constraint_error(p, SQLITE_CONSTRAINT_PRIMARYKEY, "UNIQUE");
    }
  }
  if (op->st == BC_OK && rc == SQLITE_OK) p->wrote = 1;
  return rc;
}

/* The row at op->oldk now, when that matters -- its info in *cur: when
** its value is unchanged and was not read (nochange: xColumn saw
** sqlite3_vtab_nochange), with the value now, in *data; or when the
** statement has written since it read the row.  Returns SQLITE_OK to go
** on; SQLITE_DONE to stop, the row gone or op->st an engine error;
** SQLITE_ERROR when the row is one this statement replaced (see "Stale
** rows" above). */
static int row_current(row_op *op, int nochange, const void **data, bc_info *cur) {
  bitcask_vtab *p = op->p;
  const bcx_key *k = &op->oldk;
  if (!nochange && !p->wrote) return SQLITE_OK;
  op->st = nochange ? bc_txn_get(op->t, k->data, k->len, &op->buf, data, cur)
                    : bc_txn_lookup(op->t, k->data, k->len, cur);
  if (op->st == BC_NOTFOUND) {
    /* Gone since it was read (an UPDATE ... FROM that matched the row
    ** twice moved it the first time): a native table skips it too. */
    op->st = BC_OK;
    return SQLITE_DONE;
  }
  if (op->st != BC_OK) return SQLITE_DONE;
  if (op->replace && cur->seq >= p->replaced_seq &&
      (!nochange || (cur->meta & BCX_KEY_MASK) != k->key_meta)) {
    /* The row was replaced by an earlier row of this statement that moved
    ** onto its key.  A native table computes the new key and value from
    ** the row now there; SQLite gave them computed from the row replaced,
    ** and they visibly differ (the value is set, or the key's class is
    ** not the one read): refuse rather than write what no native table
    ** would. */
    bcx_vtab_error(p, "bitcask table '%s': UPDATE OR REPLACE cannot update a row "
                   "that an earlier row of the same statement replaced: SQLite "
                   "computed its new key and value from the row it replaced, "
                   "before the statement's first write (as it does for every "
                   "virtual table), where a native table computes them from the "
                   "row now there; update these rows in separate statements",
                   p->zName);
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

/* UPDATE of the row SQLite read with key argv[0] to (argv[2], argv[3]).
** SQLite computed the new key and value of every row of a multi-row UPDATE
** before the first xUpdate (it collects them first, as it must for a
** virtual table), so once this statement has written, the row at argv[0]
** may no longer be the one they were computed from (see "Stale rows"
** above). */
static int row_update(row_op *op, sqlite3_value **argv) {
  bitcask_vtab *p = op->p;
  int rc = encode_key_checked(p, argv[0], &op->oldk);
  if (rc != SQLITE_OK) return rc;
  int nochange = sqlite3_value_nochange(argv[3]);
  const void *data = NULL;
  bc_info cur;
  rc = row_current(op, nochange, &data, &cur);
  if (rc != SQLITE_OK) return rc == SQLITE_DONE ? SQLITE_OK : rc;
  rc = encode_key_checked(p, argv[2], &op->newk);
  if (rc != SQLITE_OK) return rc;
  const bcx_key *oldk = &op->oldk, *newk = &op->newk;
  int sameKey = oldk->len == newk->len && memcmp(oldk->data, newk->data, newk->len) == 0;
  int replacing = 0; /* newk holds another row, which this write replaces */
  if (!sameKey && bc_txn_lookup(op->t, newk->data, newk->len, NULL) == BC_OK) {
    if (!op->replace) return constraint_error(p, SQLITE_CONSTRAINT_PRIMARYKEY, "UNIQUE");
    replacing = 1;
  }
  if (nochange) {
    uint8_t meta = (uint8_t)(newk->key_meta | (cur.meta & BCX_VALUE_MASK));
    if (sameKey && meta == cur.meta) return SQLITE_OK; /* nothing changes */
    op->st = bc_txn_put(op->t, newk->data, newk->len, meta, data, cur.value_size);
  } else {
    bcx_value val;
    rc = bcx_value_encode(argv[3], &val);
    if (rc != SQLITE_OK) return rc;
    op->st = bc_txn_put(op->t, newk->data, newk->len,
                        (uint8_t)(newk->key_meta | val.value_meta), val.data, val.len);
  }
  if (op->st == BC_OK) p->wrote = 1;
  if (op->st == BC_OK && replacing && p->replaced_seq == UINT64_MAX) {
    /* The first row this statement replaced since it read the table:
    ** every record written from now on has a seq at least this one's. */
    bc_info ni;
    if (bc_txn_lookup(op->t, newk->data, newk->len, &ni) == BC_OK) p->replaced_seq = ni.seq;
  }
  /* A key change is a put of the new key and a tombstone for the old one,
  ** committed together. */
  if (op->st == BC_OK && !sameKey) {
    op->st = bc_txn_delete(op->t, oldk->data, oldk->len);
    if (op->st == BC_NOTFOUND) op->st = BC_OK;
  }
  return SQLITE_OK;
}

/* argc == 1: DELETE argv[0].
** argv[0] NULL: INSERT (argv[2] key, argv[3] value).
** otherwise: UPDATE the row with key argv[0] to (argv[2], argv[3]). */
static int update_row(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv,
                      sqlite3_int64 *pRowid) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  (void)pRowid;
  int rc = bcx_vtab_txn(p);
  if (rc != SQLITE_OK) return rc;
  row_op op;
  memset(&op, 0, sizeof op);
  op.p = p;
  op.t = p->txn;
  op.st = BC_OK;
  if (argc == 1) {
    rc = row_delete(&op, argv[0]);
  } else {
    op.replace = sqlite3_vtab_on_conflict(p->db) == SQLITE_REPLACE;
    rc = sqlite3_value_type(argv[0]) == SQLITE_NULL ? row_insert(&op, argv)
                                                    : row_update(&op, argv);
  }
  bc_buf_free(&op.buf);
  bcx_key_clear(&op.oldk);
  bcx_key_clear(&op.newk);
  if (rc == SQLITE_TOOBIG && argc > 1 && !p->base.zErrMsg) {
    bcx_vtab_error(p, "bitcask table '%s': value of %d bytes is too large (the "
                   "maximum is %u bytes)", p->zName, sqlite3_value_bytes(argv[3]),
                   (unsigned)BC_MAX_VALUE_SIZE);
  }
  if (rc != SQLITE_OK) return rc;
  return op.st == BC_OK ? SQLITE_OK : bcx_engine_error(p, op.st);
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
void bcx_stmt_mark_release(bitcask_vtab *p) {
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

int bitcaskUpdate(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv,
                         sqlite3_int64 *pRowid) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  if (p->sh) p->sh->changes++; /* values probes read ahead are stale (cursor.c) */
  if (p->nopen > 0 && p->txn) {
    /* A mark is one statement's: a cursor open may be another statement's
    ** (a SELECT left stepping while others write), so the mark follows the
    ** statement writing, not the cursors. */
    sqlite3_stmt *w = writing_stmt(p->db);
    if (p->stmt_mark && !mark_current(p, w)) bcx_stmt_mark_release(p);
    if (!p->stmt_mark && w) {
      unsigned d;
      bc_status st = bc_txn_savepoint(p->txn, &d);
      if (st != BC_OK) return bcx_engine_error(p, st);
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
    if (bc_txn_rollback_to(p->txn, p->stmt_mark) == BC_OK) bcx_stmt_mark_release(p);
    else p->stmt_mark = 0, p->mark_stmt = NULL;
  }
  return rc;
}

