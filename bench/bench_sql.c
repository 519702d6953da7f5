/*
** bench_sql.c -- the SQL benchmarks: a bitcask table and a native SQLite
** table driven by the same SQL through the same prepared-statement loop,
** side by side (and, for point lookups, the floor of any virtual table).
**
**   build/bench_sql EXT DIR N RUNS [FIGURE-PREFIX]
**                                       (make bench: N 1,000,000, RUNS 5)
**
** EXT is the extension (build/bitcask), DIR a scratch directory (created
** if missing); with a
** FIGURE-PREFIX only the figures whose id starts with it run (after the
** same setup).  Prints
** the CSV rows of bench/bench_util.h on stdout.  The systems:
**   bitcask    CREATE VIRTUAL TABLE kv USING bitcask(sync=...)
**   native     CREATE TABLE kv(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID,
**              journal_mode=WAL, synchronous=NORMAL (FULL where said)
**   constvtab  a virtual table that answers key = ? with one constant row
**              and does nothing else (below): the cost of the virtual-table
**              machinery itself, which no virtual table can go under
** The workload: N keys "key%013u" (16 bytes of text) with 100-byte random
** blob values, inserted in a shuffled order.
**
** Figures (each run in a forked child; what is timed):
**   sql_bulk_insert   N inserts in one transaction, into a fresh table, to
**                     the end of COMMIT (bitcask sync=normal)
**   sql_txn1000_full  N inserts, COMMIT every 1,000 rows, fresh table;
**                     bitcask sync=full against native synchronous=FULL
**   sql_txn1_full     1,000 single-row transactions (INSERT OR REPLACE into
**                     the loaded tables), sync full / FULL; no target: a
**                     one-row commit is one fsync on both sides
**   sql_lookup        N x SELECT value FROM kv WHERE key = ?, random keys,
**                     all hit; systems bitcask, native, constvtab
**   sql_join          SELECT count(*) FROM probes p JOIN kv ON kv.key = p.k,
**                     probes a native table of the N keys in another random
**                     order: N probes into kv
**   sql_scan          SELECT count(*), sum(length(value)) FROM kv
**   sql_range100      20,000 x SELECT count(*), sum(length(value)) FROM kv
**                     WHERE key BETWEEN ? AND ? (100 keys each)
**   sql_page          50,000 x SELECT key FROM kv WHERE key > ? ORDER BY key
**                     LIMIT 20
** The read figures and sql_txn1_full use tables loaded once (bitcask
** sync=full, native synchronous=NORMAL, FULL for sql_txn1_full); they open
** the loaded database in each run (not timed; for bitcask that includes
** loading the keydir, which the extension does on first use) and time the
** statements only.  The ordered index of the bitcask table is
** built by the first ordered query of each run, outside the timing.
*/
#define BENCH_NAME "bench_sql"
#include "bench_util.h"

#include <sqlite3.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- setup */

static const char *g_ext;  /* path of the extension */
static const char *g_dir;  /* scratch directory */
static unsigned g_n;       /* keys */

#define VALUE_SIZE 100

/* The database file of a system, e.g. DIR/bitcask.db. */
static void db_path(char *buf, size_t n, const char *sys, const char *suffix) {
  snprintf(buf, n, "%s/%s%s", g_dir, sys, suffix);
}

/* Open the database of system `sys` (creating it), with the extension
** loaded, WAL and the given synchronous level.  Caller closes. */
static sqlite3 *open_db(const char *sys, const char *sync) {
  char path[4096], sql[128];
  db_path(path, sizeof path, sys, ".db");
  sqlite3 *db;
  check(sqlite3_open(path, &db), db, path);
  sqlite3_enable_load_extension(db, 1);
  char *err = NULL;
  if (sqlite3_load_extension(db, g_ext, NULL, &err) != SQLITE_OK) die(g_ext, err);
  snprintf(sql, sizeof sql, "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s", sync);
  exec(db, sql);
  return db;
}

/* Remove system sys's database, its WAL and its store. */
static void remove_db(const char *sys) {
  static const char *const suffixes[] = {".db", ".db-wal", ".db-shm", ".db-kv.bitcask"};
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    char path[4096];
    db_path(path, sizeof path, sys, suffixes[i]);
    bench_rmrf(path);
  }
}

/* Create table kv of system sys (bitcask with the given sync option). */
static void create_kv(sqlite3 *db, const char *sys, const char *bc_sync) {
  char sql[128];
  if (!strcmp(sys, "bitcask"))
    snprintf(sql, sizeof sql, "CREATE VIRTUAL TABLE kv USING bitcask(sync=%s)", bc_sync);
  else
    snprintf(sql, sizeof sql, "CREATE TABLE kv(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID");
  exec(db, sql);
}

/* Insert keys order[0..n) into kv, COMMIT every `per_txn` rows (0: one
** transaction).  Values come from `vals` (random bytes, caller-owned,
** n + VALUE_SIZE long at least... any length >= VALUE_SIZE + 64). */
static void insert_rows(sqlite3 *db, const char *sql, const unsigned *order, unsigned n,
                        unsigned per_txn, const unsigned char *vals, size_t vlen) {
  sqlite3_stmt *st;
  check(sqlite3_prepare_v2(db, sql, -1, &st, NULL), db, sql);
  exec(db, "BEGIN");
  for (unsigned i = 0; i < n; i++) {
    char k[32];
    int kl = bench_key(k, order[i]);
    sqlite3_bind_text(st, 1, k, kl, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, vals + (i * 61u) % (vlen - VALUE_SIZE), VALUE_SIZE,
                      SQLITE_STATIC);
    check(sqlite3_step(st), db, "insert");
    sqlite3_reset(st);
    if (per_txn && (i + 1) % per_txn == 0 && i + 1 < n) exec(db, "COMMIT; BEGIN");
  }
  exec(db, "COMMIT");
  sqlite3_finalize(st);
}

/* Random bytes the inserts take their values from. */
#define VALS_LEN (1u << 20)
static unsigned char *make_vals(void) {
  unsigned char *v = malloc(VALS_LEN);
  if (!v) die("values", "out of memory");
  uint64_t s = 42;
  bench_fill(v, VALS_LEN, &s);
  return v;
}

/* A load into a fresh database of one system: what the insert figures time. */
typedef struct load_arg {
  const char *sys;       /* "bitcask" or "native" */
  const char *native_sync, *bc_sync;
  unsigned per_txn;      /* rows per transaction, 0: all in one */
  int keep;              /* 1: also create the probes table (setup) */
} load_arg;

static double run_load(void *p) {
  load_arg *a = p;
  remove_db(a->sys);
  sqlite3 *db = open_db(a->sys, a->native_sync);
  create_kv(db, a->sys, a->bc_sync);
  unsigned *order = bench_shuffled(g_n, 1);
  unsigned char *vals = make_vals();
  double t0 = now_us();
  insert_rows(db, "INSERT INTO kv VALUES (?1, ?2)", order, g_n, a->per_txn, vals, VALS_LEN);
  double t = (now_us() - t0) / 1e6;
  if (a->keep) {
    /* The probes of sql_join: every key once, in another order. */
    exec(db, "CREATE TABLE probes(k)");
    unsigned *probe = bench_shuffled(g_n, 2);
    sqlite3_stmt *st;
    check(sqlite3_prepare_v2(db, "INSERT INTO probes VALUES (?1)", -1, &st, NULL), db, "probes");
    exec(db, "BEGIN");
    for (unsigned i = 0; i < g_n; i++) {
      char k[32];
      int kl = bench_key(k, probe[i]);
      sqlite3_bind_text(st, 1, k, kl, SQLITE_STATIC);
      check(sqlite3_step(st), db, "probes");
      sqlite3_reset(st);
    }
    exec(db, "COMMIT");
    sqlite3_finalize(st);
    free(probe);
  }
  free(order);
  free(vals);
  check(sqlite3_close(db), db, "close");
  return t;
}

/* ------------------------------------------------- the constant vtab
**
** CREATE VIRTUAL TABLE kv USING constvtab: columns (key, value); for
** key = ? it returns one row, (the argument, a constant 100-byte blob); it
** has no storage at all.  Only the plan for key = ? exists. */

typedef struct cv_cursor {
  sqlite3_vtab_cursor base;
  sqlite3_value *key; /* the argument of key = ? (protected copy), owned */
  int eof;
} cv_cursor;

static const unsigned char cv_value[VALUE_SIZE];

static int cv_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                      sqlite3_vtab **out, char **err) {
  (void)aux, (void)argc, (void)argv, (void)err;
  int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID");
  if (rc != SQLITE_OK) return rc;
  *out = sqlite3_malloc(sizeof **out);
  if (!*out) return SQLITE_NOMEM;
  memset(*out, 0, sizeof **out);
  return SQLITE_OK;
}

static int cv_disconnect(sqlite3_vtab *vt) {
  sqlite3_free(vt);
  return SQLITE_OK;
}

static int cv_best_index(sqlite3_vtab *vt, sqlite3_index_info *info) {
  (void)vt;
  for (int i = 0; i < info->nConstraint; i++) {
    if (info->aConstraint[i].usable && info->aConstraint[i].iColumn == 0 &&
        info->aConstraint[i].op == SQLITE_INDEX_CONSTRAINT_EQ) {
      info->aConstraintUsage[i].argvIndex = 1;
      info->aConstraintUsage[i].omit = 1;
      info->idxNum = 1;
      info->estimatedCost = 1;
      info->estimatedRows = 1;
      info->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
      return SQLITE_OK;
    }
  }
  info->estimatedCost = 1e12;
  return SQLITE_OK;
}

static int cv_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out) {
  (void)vt;
  cv_cursor *c = sqlite3_malloc(sizeof *c);
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, sizeof *c);
  *out = &c->base;
  return SQLITE_OK;
}

static int cv_close(sqlite3_vtab_cursor *cur) {
  cv_cursor *c = (cv_cursor *)cur;
  sqlite3_value_free(c->key);
  sqlite3_free(c);
  return SQLITE_OK;
}

static int cv_filter(sqlite3_vtab_cursor *cur, int idx, const char *s, int argc,
                     sqlite3_value **argv) {
  (void)s;
  cv_cursor *c = (cv_cursor *)cur;
  sqlite3_value_free(c->key);
  c->key = NULL;
  c->eof = idx != 1 || argc != 1;
  if (!c->eof) {
    c->key = sqlite3_value_dup(argv[0]);
    if (!c->key) return SQLITE_NOMEM;
  }
  return SQLITE_OK;
}

static int cv_next(sqlite3_vtab_cursor *cur) {
  ((cv_cursor *)cur)->eof = 1;
  return SQLITE_OK;
}

static int cv_eof(sqlite3_vtab_cursor *cur) { return ((cv_cursor *)cur)->eof; }

static int cv_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col) {
  cv_cursor *c = (cv_cursor *)cur;
  if (col == 0)
    sqlite3_result_value(ctx, c->key);
  else
    sqlite3_result_blob(ctx, cv_value, VALUE_SIZE, SQLITE_STATIC);
  return SQLITE_OK;
}

static int cv_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid) {
  (void)cur;
  *rowid = 0;
  return SQLITE_OK;
}

static const sqlite3_module cv_module = {
    .iVersion = 0,
    .xCreate = cv_connect,
    .xConnect = cv_connect,
    .xBestIndex = cv_best_index,
    .xDisconnect = cv_disconnect,
    .xDestroy = cv_disconnect,
    .xOpen = cv_open,
    .xClose = cv_close,
    .xFilter = cv_filter,
    .xNext = cv_next,
    .xEof = cv_eof,
    .xColumn = cv_column,
    .xRowid = cv_rowid,
};

/* ---------------------------------------------------------- the queries */

/* How a query's parameters are bound for repetition i. */
typedef enum { BIND_NONE, BIND_KEY, BIND_RANGE100, BIND_REPLACE } bind_kind;

typedef struct query_arg {
  const char *sys;   /* "bitcask", "native" or "constvtab" */
  const char *sql;
  bind_kind bind;
  unsigned reps;     /* executions of sql */
  const char *native_sync;
  int txn_each;      /* 1: each execution in BEGIN..COMMIT */
  int one_row;       /* 1: each execution must return exactly one row */
} query_arg;

static void bind_key(sqlite3_stmt *st, int idx, unsigned k) {
  char buf[32];
  int kl = bench_key(buf, k);
  sqlite3_bind_text(st, idx, buf, kl, SQLITE_TRANSIENT);
}

/* One run of a query figure: open (not timed), warm the ordered index when
** the SQL is ordered, then time reps executions stepping every row. */
static double run_query(void *p) {
  query_arg *a = p;
  sqlite3 *db;
  db = open_db(a->sys, a->native_sync);
  if (!strcmp(a->sys, "constvtab")) {
    /* In a WAL database file like the others: a statement on it pays the
    ** same read transaction of the database a bitcask table's does. */
    check(sqlite3_create_module(db, "constvtab", &cv_module, NULL), db, "module");
    exec(db, "CREATE VIRTUAL TABLE IF NOT EXISTS kv USING constvtab");
  }
  /* A bitcask table opens its store (loads the keydir) on first use, not at
  ** connect: do that here, untimed, as the open of a native table's file
  ** is.  Opening is measured on its own (eng_open_hints).  One probe, the
  ** same statement for every system. */
  exec(db, "SELECT count(*) FROM kv WHERE key = 'key'");
  if (a->bind == BIND_RANGE100 || strstr(a->sql, "ORDER BY"))
    exec(db, "SELECT key FROM kv WHERE key > 'key' ORDER BY key LIMIT 1");
  sqlite3_stmt *st;
  check(sqlite3_prepare_v2(db, a->sql, -1, &st, NULL), db, a->sql);
  uint64_t seed = 7;
  unsigned char val[VALUE_SIZE];
  bench_fill(val, sizeof val, &seed);
  uint64_t rows = 0;
  double t0 = now_us();
  for (unsigned i = 0; i < a->reps; i++) {
    unsigned k = bench_rnd(&seed) % g_n;
    if (a->bind == BIND_KEY || a->bind == BIND_REPLACE) bind_key(st, 1, k);
    if (a->bind == BIND_RANGE100) {
      k %= g_n > 100 ? g_n - 100 : 1;
      bind_key(st, 1, k);
      bind_key(st, 2, k + 99);
    }
    if (a->bind == BIND_REPLACE) sqlite3_bind_blob(st, 2, val, VALUE_SIZE, SQLITE_STATIC);
    if (a->txn_each) exec(db, "BEGIN");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) rows++;
    check(rc, db, a->sql);
    sqlite3_reset(st);
    if (a->txn_each) exec(db, "COMMIT");
  }
  double t = (now_us() - t0) / 1e6;
  if (a->one_row && rows != a->reps) die(a->sql, "a lookup missed");
  sqlite3_finalize(st);
  check(sqlite3_close(db), db, "close");
  return t;
}

/* Run a query figure over `nsys` of bitcask, native, constvtab. */
static const char *g_only; /* run only the figures whose id starts so */

static void query_figure(const char *figure, const char *sql, bind_kind bind, unsigned reps,
                         int nsys, int runs) {
  static const char *const names[] = {"bitcask", "native", "constvtab"};
  query_arg qa[3];
  bench_sys sys[3];
  char paths[3][4096];
  for (int i = 0; i < nsys; i++) {
    qa[i] = (query_arg){names[i], sql, bind, reps, "NORMAL", 0, !strcmp(figure, "sql_lookup")};
    db_path(paths[i], sizeof paths[i], names[i], i == 0 ? ".db-kv.bitcask" : ".db");
    sys[i] = (bench_sys){names[i], "s", run_query, &qa[i], i < 2 ? paths[i] : NULL};
  }
  if (bench_wanted(g_only, figure)) bench_figure(figure, sys, nsys, runs);
}

int main(int argc, char **argv) {
  if (argc != 5 && argc != 6) {
    fprintf(stderr, "usage: bench_sql EXT DIR N RUNS [FIGURE-PREFIX]\n");
    return 2;
  }
  g_ext = argv[1];
  g_dir = argv[2];
  g_n = (unsigned)strtoul(argv[3], NULL, 10);
  int runs = atoi(argv[4]);
  g_only = argc == 6 ? argv[5] : NULL;
  if (g_n < 1000 || runs < 1) die("arguments", "N must be >= 1000 and RUNS >= 1");
  if (mkdir(g_dir, 0755) != 0 && errno != EEXIST) die(g_dir, strerror(errno));
  char bcdir[4096], natdb[4096];
  db_path(bcdir, sizeof bcdir, "bitcask", ".db-kv.bitcask");
  db_path(natdb, sizeof natdb, "native", ".db");

  /* Writes: a fresh table per run. */
  load_arg bulk[2] = {{"bitcask", "NORMAL", "normal", 0, 0}, {"native", "NORMAL", "normal", 0, 0}};
  bench_sys s_bulk[2] = {{"bitcask", "s", run_load, &bulk[0], bcdir},
                         {"native", "s", run_load, &bulk[1], natdb}};
  if (bench_wanted(g_only, "sql_bulk_insert")) bench_figure("sql_bulk_insert", s_bulk, 2, runs);

  load_arg t1000[2] = {{"bitcask", "FULL", "full", 1000, 0}, {"native", "FULL", "full", 1000, 0}};
  bench_sys s_t1000[2] = {{"bitcask", "s", run_load, &t1000[0], bcdir},
                          {"native", "s", run_load, &t1000[1], natdb}};
  if (bench_wanted(g_only, "sql_txn1000_full")) bench_figure("sql_txn1000_full", s_t1000, 2, runs);

  /* Reads: load once (sync normal), then every run opens what is there. */
  /* Any read figure wanted (its prefix matches)? */
  int reads = !g_only || !strncmp(g_only, "sql_", strlen(g_only)) ||
              strstr("sql_lookup sql_join sql_scan sql_range100 sql_page sql_txn1_full",
                     g_only) != NULL;
  for (int i = 0; i < 2 && reads; i++) {
    load_arg setup = {i ? "native" : "bitcask", "NORMAL", "full", 0, 1};
    long rss;
    (void)bench_child(run_load, &setup, &rss);
  }
  query_figure("sql_lookup", "SELECT value FROM kv WHERE key = ?1", BIND_KEY, g_n, 3, runs);
  query_figure("sql_join", "SELECT count(*) FROM probes p JOIN kv ON kv.key = p.k", BIND_NONE,
               1, 2, runs);
  query_figure("sql_scan", "SELECT count(*), sum(length(value)) FROM kv", BIND_NONE, 1, 2, runs);
  query_figure("sql_range100",
               "SELECT count(*), sum(length(value)) FROM kv WHERE key BETWEEN ?1 AND ?2",
               BIND_RANGE100, 20000, 2, runs);
  query_figure("sql_page", "SELECT key FROM kv WHERE key > ?1 ORDER BY key LIMIT 20", BIND_KEY,
               50000, 2, runs);

  /* One-row commits last: they change the loaded tables. */
  query_arg q1[2] = {{"bitcask", "INSERT OR REPLACE INTO kv VALUES (?1, ?2)", BIND_REPLACE, 1000,
                      "FULL", 1, 0},
                     {"native", "INSERT OR REPLACE INTO kv VALUES (?1, ?2)", BIND_REPLACE, 1000,
                      "FULL", 1, 0}};
  bench_sys s_t1[2] = {{"bitcask", "s", run_query, &q1[0], bcdir},
                       {"native", "s", run_query, &q1[1], natdb}};
  if (bench_wanted(g_only, "sql_txn1_full")) bench_figure("sql_txn1_full", s_t1, 2, runs);

  remove_db("bitcask");
  remove_db("native");
  remove_db("constvtab");
  return 0;
}
