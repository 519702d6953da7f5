/*
** bench_util.h -- what every benchmark under bench/ shares: a monotonic
** clock, SQLite calls that stop the run on any error, a fixed random source,
** the workload's keys and values, and the runner that measures one run of
** one system in a forked child and prints it as a CSV row.
**
** Define BENCH_NAME (the program's name, for messages) before including it.
**
** The protocol (read by bench/report.sh): every measured run prints one row
**
**   figure,system,run,value,unit,peak_rss_kib,disk_bytes
**
** figure   a short id, e.g. "sql_lookup" (bench/targets.csv names them)
** system   "bitcask", "native", "constvtab", "lmdb", "leveldb", "raw"...
** run      1..runs; the warm-up run 0 is measured and thrown away
** value    in unit: "s" (seconds, lower is better) or a rate ("MB/s",
**          "keys/s": higher is better) or "bytes/key", "x" (plain numbers)
** peak_rss_kib  the child's peak resident set (getrusage ru_maxrss)
** disk_bytes    bytes the system's files occupy on disk afterwards (st_blocks
**               * 512 summed over its directory), 0 when not applicable
**
** Runs of the systems of one figure alternate (a b a b ...), so a noisy
** neighbour hurts both alike; the ratio of their medians is the result.
*/
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <sqlite3.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Microseconds from CLOCK_MONOTONIC. */
static inline double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Exit with SQLite's message unless rc is OK, DONE or ROW. */
static inline void check(int rc, sqlite3 *db, const char *what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    fprintf(stderr, BENCH_NAME ": %s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
  }
}

/* sqlite3_exec, exiting on failure. */
static inline void exec(sqlite3 *db, const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
    fprintf(stderr, BENCH_NAME ": %s: %s\n", sql, err);
    exit(1);
  }
}

/* Print a message and exit: for failures of anything but SQLite. */
static inline void die(const char *what, const char *why) {
  fprintf(stderr, BENCH_NAME ": %s: %s\n", what, why);
  exit(1);
}

/* xorshift64: a fixed, fast random source (the same sequence every run). */
static inline uint32_t bench_rnd(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return (uint32_t)(*s >> 11);
}

/* The workload's key number i as 16 bytes of text, "key%013u"; returns the
** length (16).  buf: at least 32 bytes. */
static inline int bench_key(char *buf, unsigned i) {
  return snprintf(buf, 32, "key%013u", i);
}

/* 0..n-1 in a shuffled order (Fisher-Yates from a fixed seed).  Caller
** frees. */
static inline unsigned *bench_shuffled(unsigned n, uint64_t seed) {
  unsigned *o = malloc((size_t)n * sizeof *o);
  if (!o) die("shuffle", "out of memory");
  for (unsigned i = 0; i < n; i++) o[i] = i;
  for (unsigned i = n - 1; i > 0 && n > 1; i--) {
    unsigned j = bench_rnd(&seed) % (i + 1), t = o[i];
    o[i] = o[j];
    o[j] = t;
  }
  return o;
}

/* Fill buf with n random bytes. */
static inline void bench_fill(unsigned char *buf, size_t n, uint64_t *s) {
  for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)bench_rnd(s);
}

/* Bytes on disk under path (a file or a directory, recursively). */
static inline uint64_t bench_du(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return 0;
  uint64_t n = (uint64_t)st.st_blocks * 512u;
  if (!S_ISDIR(st.st_mode)) return n;
  DIR *d = opendir(path);
  if (!d) return n;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char sub[4096];
    if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub) continue;
    n += bench_du(sub);
  }
  closedir(d);
  return n;
}

/* rm -rf path (the benchmarks' own scratch directories only). */
static inline void bench_rmrf(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    if (d) {
      struct dirent *e;
      while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[4096];
        if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub) continue;
        bench_rmrf(sub);
      }
      closedir(d);
    }
    rmdir(path);
  } else {
    unlink(path);
  }
}

/* Resident set size now, in bytes (from /proc/self/statm). */
static inline uint64_t bench_rss_now(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, res = 0;
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
    fclose(f);
  }
  return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* One measured run: fn(arg) runs in a forked child, so each run starts with
** a clean heap and its peak RSS is its own.  fn returns the value to report
** (seconds, a rate...); a negative value means "failed" and stops the
** benchmark.  Returns the value; *rss_kib receives the child's peak RSS. */
typedef double (*bench_fn)(void *arg);

/* The fork, pipe and wait of a measured run: fn(arg) runs in a forked
** child, which then sends `len` bytes back -- its return value when
** `sent` is NULL (len is then sizeof(double)), else the `len` bytes at
** `sent` as fn left them (a pointer into arg: the child's copy) -- into `in`.
** Dies with `what` if the child fails; *rss_kib: the child's peak RSS. */
static inline void bench_fork(bench_fn fn, void *arg, const void *sent, void *in,
                              size_t len, long *rss_kib, const char *what) {
  int p[2];
  if (pipe(p) != 0) die("pipe", "failed");
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) die("fork", "failed");
  if (pid == 0) {
    close(p[0]);
    double v = fn(arg);
    if (write(p[1], sent ? sent : (const void *)&v, len) != (ssize_t)len) _exit(1);
    _exit(0);
  }
  close(p[1]);
  ssize_t got = read(p[0], in, len);
  close(p[0]);
  int status = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  if (wait4(pid, &status, 0, &ru) < 0) die("wait4", "failed");
  if (got != (ssize_t)len || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    die(what, "failed (see above)");
  *rss_kib = ru.ru_maxrss;
}

static inline double bench_child(bench_fn fn, void *arg, long *rss_kib) {
  double v = -1;
  bench_fork(fn, arg, NULL, &v, sizeof v, rss_kib, "a benchmark run");
  if (v < 0) die("a benchmark run", "failed (see above)");
  return v;
}

/* Is `figure` to run, given the FIGURE-PREFIX argument `only` (NULL: all)?
** Prints the figure's name on stderr when it is: progress of a long run. */
static inline int bench_wanted(const char *only, const char *figure) {
  if (only && strncmp(figure, only, strlen(only)) != 0) return 0;
  fprintf(stderr, BENCH_NAME ": %s\n", figure);
  return 1;
}

/* Print one CSV row of the protocol above. */
static inline void bench_emit(const char *figure, const char *system, int run,
                              double value, const char *unit, long rss_kib,
                              uint64_t disk_bytes) {
  printf("%s,%s,%d,%.9g,%s,%ld,%llu\n", figure, system, run, value, unit, rss_kib,
         (unsigned long long)disk_bytes);
  fflush(stdout);
}

/* A system of one figure: its name, its unit, the function timing one run,
** that function's argument, and the directory whose size is reported (NULL:
** none). */
typedef struct bench_sys {
  const char *name;
  const char *unit;
  bench_fn fn;
  void *arg;
  const char *disk_path;
} bench_sys;

/* Run figure `figure` for nsys systems: a warm-up run of each, thrown away,
** then `runs` rounds in which every system runs once in turn; every measured
** run is emitted.  With the environment variable BENCH_SYSTEM set, only the
** system of that name runs (for profiling one: perf record ...). */
static inline void bench_figure(const char *figure, bench_sys *sys, int nsys, int runs) {
  const char *only = getenv("BENCH_SYSTEM");
  for (int r = 0; r <= runs; r++)
    for (int i = 0; i < nsys; i++) {
      if (only && strcmp(only, sys[i].name) != 0) continue;
      long rss = 0;
      double v = bench_child(sys[i].fn, sys[i].arg, &rss);
      if (r > 0)
        bench_emit(figure, sys[i].name, r, v, sys[i].unit, rss,
                   sys[i].disk_path ? bench_du(sys[i].disk_path) : 0);
    }
}

#endif
