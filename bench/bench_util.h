/*
** bench_util.h -- what every benchmark under bench/ needs: a monotonic clock
** and SQLite calls that stop the run on any error.  Define BENCH_NAME (the
** program's name, for messages) before including it.
*/
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Microseconds from CLOCK_MONOTONIC. */
static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Exit with SQLite's message unless rc is OK, DONE or ROW. */
static void check(int rc, sqlite3 *db, const char *what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    fprintf(stderr, BENCH_NAME ": %s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
  }
}

/* sqlite3_exec, exiting on failure. */
static void exec(sqlite3 *db, const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
    fprintf(stderr, BENCH_NAME ": %s: %s\n", sql, err);
    exit(1);
  }
}

#endif
