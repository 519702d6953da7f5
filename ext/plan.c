/*
** plan.c -- xBestIndex of the `bitcask` module: the query plans, and how
** idxNum and idxStr hand the chosen one to xFilter (cursor.c).
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
** (docs/DESIGN.md section 6).  A bound or `=` under a non-BINARY collation
** is left to SQLite.  A LIKE or GLOB is walked by its prefix only when the
** operator
** is SQLite's own function, not one the application defined (ICU's like():
** pattern_builtin).  In a UTF-16 database, whose TEXT order is not the keys'
** UTF-8 byte order (bcx_text_order_check), ORDER BY is left to SQLite's sorter
** and a TEXT bound is widened in xFilter and left to SQLite.  Costs: `key =
** ?` 1; an IN list 10; a count 10 + a hundredth of the live keys; a walk 10
** + the rows it is expected to return: all live keys (at least
** SCAN_MIN_ROWS) cut by 4 for each bound and by 32 for a pattern prefix,
** capped by a constant LIMIT + OFFSET.
*/
#include "vtab.h"
SQLITE_EXTENSION_INIT3

#include <stdio.h>
#include <string.h>

/* The least live-key count a plan is estimated with (see bitcaskBestIndex). */
#define SCAN_MIN_ROWS 16.0

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
void bcx_text_order_check(bitcask_vtab *p) {
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
  /* No order anybody can see (see RANGE_FOLD above). */
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

int bitcaskBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *info) {
  bitcask_vtab *p = (bitcask_vtab *)pVtab;
  if (p->probing) return probe_answer(p, info);
  bcx_text_order_check(p);
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

