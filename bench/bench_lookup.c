/*
** bench_lookup.c -- reads by key: point lookups, ranges, prefixes and the
** first page in key order, on a bitcask table and a native SQLite table
** side by side.
**
**   make bench   (runs build/bench_lookup build/bitcask DIR)
**   build/bench_lookup EXT DIR [N] [--only-lookup]
**
** Loads N keys (default 1,000,000) "key%013u" with 100-byte values in
** shuffled order, in one transaction, into `CREATE VIRTUAL TABLE kv USING
** bitcask(sync=off)` and into `CREATE TABLE t(key PRIMARY KEY NOT NULL,
** value) WITHOUT ROWID` (WAL, synchronous=OFF), then times, through one
** prepared statement each and the same SQL for both:
**   lookup  SELECT value FROM x WHERE key = ?        (N random keys, all hit)
**   range   SELECT count(*), sum(length(value)) FROM x
**           WHERE key BETWEEN ? AND ?               (100 keys each)
**   prefix  SELECT count(*) FROM x WHERE key LIKE ?  ('key' + 10 digits + '%': 1,000 keys;
**           the native table scans every row: SQLite's LIKE optimization
**           needs a TEXT-affinity column)
**   page    SELECT key FROM x WHERE key > ? ORDER BY key LIMIT 20
** Prints microseconds per query and native / bitcask (above 1: bitcask is
** faster).  With --only-lookup, prints just the bitcask lookup figure (for
** comparing two builds of the extension).  The first ordered query on the
** bitcask table builds its ordered index; that one-time cost is timed and
** printed separately.
*/
#define BENCH_NAME "bench_lookup"
#include "bench_util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return (uint32_t)(rs >> 11);
}

static void load(sqlite3 *db, const char *table, unsigned n, const unsigned *order) {
  char sql[128];
  snprintf(sql, sizeof sql, "INSERT INTO %s VALUES (?, ?)", table);
  sqlite3_stmt *st;
  check(sqlite3_prepare_v2(db, sql, -1, &st, NULL), db, sql);
  unsigned char val[100];
  exec(db, "BEGIN");
  for (unsigned i = 0; i < n; i++) {
    char k[32];
    int kl = snprintf(k, sizeof k, "key%013u", order[i]);
    for (int j = 0; j < 100; j++) val[j] = (unsigned char)rnd();
    sqlite3_bind_text(st, 1, k, kl, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, val, 100, SQLITE_STATIC);
    check(sqlite3_step(st), db, "insert");
    sqlite3_reset(st);
  }
  exec(db, "COMMIT");
  sqlite3_finalize(st);
}

/* Mean microseconds per query of `sql` over `reps` runs; bind(st, i, n)
** binds the parameters of run i.  Steps every row. */
typedef void (*binder)(sqlite3_stmt *st, unsigned i, unsigned n);

static double timed(sqlite3 *db, const char *sql, unsigned reps, unsigned n, binder bind) {
  sqlite3_stmt *st;
  check(sqlite3_prepare_v2(db, sql, -1, &st, NULL), db, sql);
  double t0 = now_us();
  for (unsigned i = 0; i < reps; i++) {
    bind(st, i, n);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) continue;
    check(rc, db, sql);
    sqlite3_reset(st);
  }
  double t = (now_us() - t0) / reps;
  sqlite3_finalize(st);
  return t;
}

static void bind_key(sqlite3_stmt *st, int idx, unsigned k) {
  char buf[32];
  int kl = snprintf(buf, sizeof buf, "key%013u", k);
  sqlite3_bind_text(st, idx, buf, kl, SQLITE_TRANSIENT);
}

static void b_lookup(sqlite3_stmt *st, unsigned i, unsigned n) {
  (void)i;
  bind_key(st, 1, rnd() % n);
}

static void b_range(sqlite3_stmt *st, unsigned i, unsigned n) {
  (void)i;
  unsigned a = rnd() % (n - 100);
  bind_key(st, 1, a);
  bind_key(st, 2, a + 99);
}

static void b_prefix(sqlite3_stmt *st, unsigned i, unsigned n) {
  (void)i;
  char buf[32];
  unsigned a = rnd() % (n / 1000);
  int kl = snprintf(buf, sizeof buf, "key%010u%%", a);
  sqlite3_bind_text(st, 1, buf, kl, SQLITE_TRANSIENT);
}

static void b_page(sqlite3_stmt *st, unsigned i, unsigned n) {
  (void)i;
  bind_key(st, 1, rnd() % n);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench_lookup EXT DIR [N] [--only-lookup]\n");
    return 2;
  }
  unsigned n = argc > 3 && argv[3][0] != '-' ? (unsigned)strtoul(argv[3], NULL, 10) : 1000000u;
  int only = argc > 3 && strcmp(argv[argc - 1], "--only-lookup") == 0;
  if (n < 2000) n = 2000;
  char path[4096];
  snprintf(path, sizeof path, "%s/bench.db", argv[2]);
  sqlite3 *db;
  check(sqlite3_open(path, &db), db, "open");
  sqlite3_enable_load_extension(db, 1);
  char *err = NULL;
  if (sqlite3_load_extension(db, argv[1], NULL, &err) != SQLITE_OK) {
    fprintf(stderr, "bench_lookup: load %s: %s\n", argv[1], err);
    return 1;
  }
  exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF");
  exec(db, "CREATE VIRTUAL TABLE kv USING bitcask(sync=off)");
  unsigned *order = malloc(n * sizeof *order);
  for (unsigned i = 0; i < n; i++) order[i] = i;
  for (unsigned i = n - 1; i > 0; i--) {
    unsigned j = rnd() % (i + 1), t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  load(db, "kv", n, order);
  if (!only) {
    exec(db, "CREATE TABLE t(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID");
    load(db, "t", n, order);
  }
  free(order);

  const unsigned L = n;
  /* A warm-up pass, discarded, then the measured one. */
  (void)timed(db, "SELECT value FROM kv WHERE key = ?", L / 4, n, b_lookup);
  double kv_lookup = timed(db, "SELECT value FROM kv WHERE key = ?", L, n, b_lookup);
  if (only) {
    printf("lookup_us %.3f\n", kv_lookup);
    sqlite3_close(db);
    return 0;
  }
  (void)timed(db, "SELECT value FROM t WHERE key = ?", L / 4, n, b_lookup);
  double t_lookup = timed(db, "SELECT value FROM t WHERE key = ?", L, n, b_lookup);

  double t0 = now_us();
  (void)timed(db, "SELECT key FROM kv WHERE key > 'key' ORDER BY key LIMIT 1", 1, n, b_page);
  double build = (now_us() - t0) / 1000.0;

  struct {
    const char *name, *sql_kv, *sql_t;
    unsigned reps;
    binder bind;
  } q[] = {
      {"range (100 keys)",
       "SELECT count(*), sum(length(value)) FROM kv WHERE key BETWEEN ? AND ?",
       "SELECT count(*), sum(length(value)) FROM t WHERE key BETWEEN ? AND ?", 20000, b_range},
      {"prefix (1,000 keys)", "SELECT count(*) FROM kv WHERE key LIKE ?",
       "SELECT count(*) FROM t WHERE key LIKE ?", 50, b_prefix},
      {"page (ORDER BY LIMIT 20)", "SELECT key FROM kv WHERE key > ? ORDER BY key LIMIT 20",
       "SELECT key FROM t WHERE key > ? ORDER BY key LIMIT 20", 50000, b_page},
  };
  printf("bench_lookup: %u keys, 16-byte text keys, 100-byte values, µs per query\n", n);
  printf("%-28s %12s %12s %10s\n", "query", "bitcask", "native", "native/bc");
  printf("%-28s %12.3f %12.3f %10.2f\n", "lookup key = ?", kv_lookup, t_lookup,
         t_lookup / kv_lookup);
  for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
    /* A warm-up tenth, discarded, then the measured runs. */
    (void)timed(db, q[i].sql_kv, q[i].reps / 10 + 1, n, q[i].bind);
    double a = timed(db, q[i].sql_kv, q[i].reps, n, q[i].bind);
    (void)timed(db, q[i].sql_t, q[i].reps / 10 + 1, n, q[i].bind);
    double b = timed(db, q[i].sql_t, q[i].reps, n, q[i].bind);
    printf("%-28s %12.3f %12.3f %10.2f\n", q[i].name, a, b, b / a);
  }
  printf("first ordered query (builds the ordered index over %u keys): %.1f ms\n", n, build);
  sqlite3_close(db);
  return 0;
}
