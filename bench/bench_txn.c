/*
** bench_txn.c -- the cost of a commit: 1-row and 1000-row transactions on a
** bitcask table and on a native SQLite table, side by side, under each sync
** mode (bitcask sync=full|normal|off against native WAL with
** PRAGMA synchronous=FULL|NORMAL|OFF).
**
**   make bench            (runs build/bench_txn build/bitcask DIR)
**
** Each transaction does INSERT OR REPLACE of 100-byte values under random
** keys of a 100,000-key space, through one prepared statement.  Prints the
** mean microseconds per transaction and per row and the ratio native /
** bitcask (above 1: bitcask is faster).  Absolute times depend on the disk;
** the ratios are the result.
*/
#define BENCH_NAME "bench_txn"
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Mean microseconds per transaction of `ntx` transactions of `rows` rows. */
static double run(sqlite3 *db, const char *table, int ntx, int rows,
                  unsigned *seed) {
  char sql[128];
  snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO %s VALUES (?1, ?2)", table);
  sqlite3_stmt *st;
  check(sqlite3_prepare_v2(db, sql, -1, &st, NULL), db, "prepare");
  char value[101];
  memset(value, 'v', 100);
  value[100] = 0;
  double t0 = now_us();
  for (int t = 0; t < ntx; t++) {
    if (rows > 1) exec(db, "BEGIN");
    for (int r = 0; r < rows; r++) {
      *seed = *seed * 1103515245u + 12345u;
      sqlite3_bind_int(st, 1, (int)((*seed >> 8) % 100000));
      sqlite3_bind_text(st, 2, value, 100, SQLITE_STATIC);
      check(sqlite3_step(st), db, "insert");
      sqlite3_reset(st);
    }
    if (rows > 1) exec(db, "COMMIT");
  }
  double dt = now_us() - t0;
  sqlite3_finalize(st);
  return dt / ntx;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s path/to/bitcask-extension DIR\n", argv[0]);
    return 2;
  }
  const char *ext = argv[1], *dir = argv[2];
  static const char *const bc_modes[] = {"full", "normal", "off"};
  static const char *const native_modes[] = {"FULL", "NORMAL", "OFF"};
  const int ntx1 = 2000, ntx1000 = 40;
  unsigned seed = 42;
  printf("%-8s %-6s %14s %14s %10s\n", "sync", "rows", "bitcask us/tx",
         "native us/tx", "native/bc");
  for (int m = 0; m < 3; m++) {
    char path[1024], sql[1200];
    snprintf(path, sizeof path, "%s/bench-%s.db", dir, bc_modes[m]);
    sqlite3 *db;
    check(sqlite3_open(path, &db), db, "open");
    sqlite3_enable_load_extension(db, 1);
    char *err = NULL;
    if (sqlite3_load_extension(db, ext, NULL, &err) != SQLITE_OK) {
      fprintf(stderr, "bench_txn: load %s: %s\n", ext, err);
      return 1;
    }
    snprintf(sql, sizeof sql,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;"
             "CREATE VIRTUAL TABLE kv USING bitcask(sync='%s');"
             "CREATE TABLE t(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID;",
             native_modes[m], bc_modes[m]);
    exec(db, sql);
    /* Warm both up with the same data. */
    run(db, "kv", 1, 20000, &seed);
    run(db, "t", 1, 20000, &seed);
    int sizes[2] = {1, 1000}, counts[2] = {ntx1, ntx1000};
    for (int k = 0; k < 2; k++) {
      /* Interleave halves so that drift in the disk hits both alike. */
      double b = 0, n = 0;
      for (int half = 0; half < 2; half++) {
        b += run(db, "kv", counts[k] / 2, sizes[k], &seed) / 2;
        n += run(db, "t", counts[k] / 2, sizes[k], &seed) / 2;
      }
      printf("%-8s %-6d %14.1f %14.1f %10.2f\n", bc_modes[m], sizes[k], b, n,
             n / b);
    }
    sqlite3_close(db);
  }
  return 0;
}
