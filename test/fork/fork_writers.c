/*
** fork_writers.c -- no acknowledged write is lost to fork() (the pre-fork
** pattern of servers: gunicorn, Python's multiprocessing, a shell loop).
**
**   build/fork_writers DIR EXT        # EXT: build/bitcask (no .so)
**
** Each scenario uses its own database in DIR and ends with a fresh process
** (this program exec'd in "verify" mode) that counts the table and checks
** that every row whose INSERT returned SQLITE_OK is there, that no row
** whose INSERT failed is, and that no record is damaged (corrupt_records 0).
**
**  held     the parent writes 1 row and keeps its connection; 4 children
**           each open their own connection: their INSERT gets SQLITE_BUSY
**           naming the table and the parent's pid.  The parent then closes
**           and the children insert 300 rows each, retrying on SQLITE_BUSY.
**  busy     the same, with the parent writing 300 more rows while the
**           children try; they retry until it closes.
**  inherit  a child uses the parent's own connection (sync=normal, so the
**           store has a background thread the child does not have): reads
**           work, a write fails with a clear error, closing it in the child
**           must neither release the parent's lock nor write anything; the
**           parent goes on writing and another process still gets
**           SQLITE_BUSY.
**  orphan   a process opens a store, forks a child that does not touch it,
**           and dies; the child (a new connection) must get the lock.
**  exec     a process exec'd by the writer holds no descriptor of the store.
**  dlclose  fork after the extension was unloaded (every connection that
**           loaded it closed): no dangling fork handler.
**
** Prints `N passed, N failed`; exit status 0 when nothing failed.
*/

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NCHILD 4
#define NROWS 300

static const char *g_dir, *g_ext, *g_self;
static int g_passed, g_failed;

static void check(int ok, const char *fmt, ...) {
  if (ok) {
    g_passed++;
    return;
  }
  g_failed++;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fork_writers: FAIL ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static sqlite3 *db_open(const char *path) {
  sqlite3 *db = NULL;
  if (sqlite3_open(path, &db) != SQLITE_OK) {
    fprintf(stderr, "fork_writers: cannot open %s\n", path);
    exit(2);
  }
  char *err = NULL;
  /* SQLite's own lock on the database file is waited for; the store's lock
  ** is not (a bitcask table answers SQLITE_BUSY at once). */
  sqlite3_busy_timeout(db, 20000);
  sqlite3_enable_load_extension(db, 1);
  if (sqlite3_load_extension(db, g_ext, NULL, &err) != SQLITE_OK) {
    fprintf(stderr, "fork_writers: cannot load %s: %s\n", g_ext, err);
    exit(2);
  }
  return db;
}

static int exec_sql(sqlite3 *db, const char *sql, char *msg, size_t msglen) {
  char *err = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
  if (msg) snprintf(msg, msglen, "%s", err ? err : "");
  sqlite3_free(err);
  return rc;
}

static void must(sqlite3 *db, const char *sql) {
  char msg[512];
  int rc = exec_sql(db, sql, msg, sizeof msg);
  if (rc != SQLITE_OK) {
    fprintf(stderr, "fork_writers: %s: %s (%d)\n", sql, msg, rc);
    exit(2);
  }
}

static void path_of(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s", g_dir, name);
}

/* The acknowledged (and failed) keys of one writer, written to a file the
** verifier reads: lines "+key" for SQLITE_OK, "-key" for a failure. */
typedef struct ledger {
  FILE *f;
} ledger;

static void ledger_open(ledger *l, const char *name) {
  char p[4096];
  path_of(p, sizeof p, name);
  l->f = fopen(p, "w");
  if (!l->f) exit(2);
}

static void ledger_note(ledger *l, int ok, const char *key) {
  fprintf(l->f, "%c%s\n", ok ? '+' : '-', key);
}

static void ledger_close(ledger *l) { fclose(l->f); }

/* INSERT key with retries on SQLITE_BUSY for up to `seconds`.  Returns the
** final result code; *busy counts the BUSY answers. */
static int insert_retry(sqlite3 *db, const char *table, const char *key,
                        int seconds, int *busy, char *msg, size_t msglen) {
  char sql[256];
  snprintf(sql, sizeof sql, "INSERT INTO %s VALUES('%s', 1)", table, key);
  for (int tries = 0;; tries++) {
    int rc = exec_sql(db, sql, msg, msglen);
    if (rc != SQLITE_BUSY || tries >= seconds * 500) return rc;
    (*busy)++;
    sleep_ms(2);
  }
}

/* Exec this program in verify mode on db/table with the ledgers; returns
** its exit status (0: all acknowledged rows there, none of the failed). */
static int verify(const char *db, const char *table, int expected, int nledgers,
                  const char *const *ledgers) {
  pid_t pid = fork();
  if (pid == 0) {
    char exp[32];
    snprintf(exp, sizeof exp, "%d", expected);
    const char *argv[32] = {g_self, "verify", g_dir, g_ext, db, table, exp};
    int n = 7;
    for (int i = 0; i < nledgers && n < 31; i++) argv[n++] = ledgers[i];
    argv[n] = NULL;
    execv(g_self, (char *const *)argv);
    _exit(127);
  }
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int verify_main(int argc, char **argv) {
  /* argv: self verify DIR EXT DB TABLE EXPECTED LEDGER... */
  g_dir = argv[2];
  g_ext = argv[3];
  char p[4096];
  path_of(p, sizeof p, argv[4]);
  const char *table = argv[5];
  int expected = atoi(argv[6]);
  sqlite3 *db = db_open(p);
  char sql[512];
  sqlite3_stmt *st;
  snprintf(sql, sizeof sql, "SELECT count(*), json_extract(bitcask_stats('%s'), "
           "'$.corrupt_records') FROM %s", table, table);
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
      sqlite3_step(st) != SQLITE_ROW) {
    fprintf(stderr, "verify: %s\n", sqlite3_errmsg(db));
    return 3;
  }
  int count = sqlite3_column_int(st, 0), corrupt = sqlite3_column_int(st, 1);
  sqlite3_finalize(st);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE key = ?", table);
  sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  int acked = 0, missing = 0, failed = 0, present_failed = 0;
  for (int i = 7; i < argc; i++) {
    path_of(p, sizeof p, argv[i]);
    FILE *f = fopen(p, "r");
    if (!f) return 4;
    char line[256];
    while (fgets(line, sizeof line, f)) {
      line[strcspn(line, "\n")] = 0;
      int ok = line[0] == '+';
      sqlite3_reset(st);
      sqlite3_bind_text(st, 1, line + 1, -1, SQLITE_TRANSIENT);
      sqlite3_step(st);
      int there = sqlite3_column_int(st, 0);
      if (ok) {
        acked++;
        missing += !there;
      } else {
        failed++;
        present_failed += there;
      }
    }
    fclose(f);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  printf("verify %s: count %d (expected %d), %d acknowledged (%d missing), "
         "%d failed (%d present), corrupt_records %d\n", argv[4], count, expected,
         acked, missing, failed, present_failed, corrupt);
  return count == expected && count == acked && missing == 0 &&
                 present_failed == 0 && corrupt == 0
             ? 0
             : 1;
}

/* A child: its own connection; the first INSERT must get SQLITE_BUSY with
** a message naming the table and the holder's pid; signal `ready`, wait for
** `go` (a byte, or EOF), then insert NROWS rows retrying on BUSY. */
static void child_writer(sqlite3 *inherited, const char *dbname, int idx,
                         pid_t holder, int ready_fd, int go_fd, int parent_writes) {
  char p[4096], name[64], key[64], msg[512];
  path_of(p, sizeof p, dbname);
  sqlite3 *db = db_open(p);
  ledger l;
  snprintf(name, sizeof name, "%s.ledger%d", dbname, idx);
  ledger_open(&l, name);
  int bad = 0, busy = 0;
  snprintf(key, sizeof key, "c%d-0", idx);
  int rc = exec_sql(db, "INSERT INTO kv VALUES('probe', 0)", msg, sizeof msg);
  char want[64];
  snprintf(want, sizeof want, "locked by pid %ld", (long)holder);
  if (rc != SQLITE_BUSY || !strstr(msg, "'kv'") || !strstr(msg, want)) {
    fprintf(stderr, "child %d: first INSERT while the parent holds the store: "
            "rc %d, '%s' (want SQLITE_BUSY naming 'kv' and %s)\n", idx, rc, msg, want);
    bad = 1;
  }
  ledger_note(&l, rc == SQLITE_OK, "probe");
  char c = 1;
  if (write(ready_fd, &c, 1) != 1) bad = 1;
  close(ready_fd);
  if (!parent_writes) {
    ssize_t n = read(go_fd, &c, 1);
    (void)n;
  }
  close(go_fd);
  for (int j = 1; j <= NROWS; j++) {
    snprintf(key, sizeof key, "c%d-%d", idx, j);
    rc = insert_retry(db, "kv", key, 60, &busy, msg, sizeof msg);
    ledger_note(&l, rc == SQLITE_OK, key);
    if (rc != SQLITE_OK) {
      fprintf(stderr, "child %d: INSERT %s: rc %d %s\n", idx, key, rc, msg);
      bad = 1;
      break;
    }
  }
  ledger_close(&l);
  sqlite3_close(db);
  /* As a garbage collector at exit would: must leave the parent's store
  ** alone (the fresh count below sees the parent's rows and the others'). */
  sqlite3_close(inherited);
  exit(bad ? 1 : 0);
}

/* held / busy. */
static void scenario_writers(const char *dbname, int parent_writes) {
  char p[4096], name[64], key[64], msg[512];
  path_of(p, sizeof p, dbname);
  sqlite3 *db = db_open(p);
  must(db, "CREATE VIRTUAL TABLE kv USING bitcask");
  ledger l;
  snprintf(name, sizeof name, "%s.ledgerP", dbname);
  ledger_open(&l, name);
  must(db, "INSERT INTO kv VALUES('parent-0', 1)");
  ledger_note(&l, 1, "parent-0");
  fflush(l.f);
  int ready[2], go[2];
  if (pipe(ready) != 0 || pipe(go) != 0) exit(2);
  pid_t kids[NCHILD];
  for (int i = 0; i < NCHILD; i++) {
    kids[i] = fork();
    if (kids[i] == 0) {
      alarm(180);
      close(ready[0]);
      close(go[1]);
      fclose(l.f); /* the parent's ledger: not ours to write */
      child_writer(db, dbname, i, getppid(), ready[1], go[0], parent_writes);
    }
  }
  close(ready[1]);
  close(go[0]);
  int nready = 0;
  char c;
  while (nready < NCHILD && read(ready[0], &c, 1) == 1) nready++;
  check(nready == NCHILD, "%s: %d of %d children reached their first INSERT",
        dbname, nready, NCHILD);
  int nparent = 1;
  if (parent_writes) {
    /* The children retry meanwhile; the parent's writes must all land. */
    for (int j = 1; j <= NROWS; j++) {
      snprintf(key, sizeof key, "parent-%d", j);
      int busy = 0;
      int rc = insert_retry(db, "kv", key, 60, &busy, msg, sizeof msg);
      ledger_note(&l, rc == SQLITE_OK, key);
      nparent += rc == SQLITE_OK;
      check(rc == SQLITE_OK, "%s: parent INSERT %s: rc %d %s", dbname, key, rc, msg);
    }
  }
  ledger_close(&l);
  sqlite3_close(db); /* lets the children in */
  close(go[1]);
  int kids_ok = 0;
  for (int i = 0; i < NCHILD; i++) {
    int st;
    waitpid(kids[i], &st, 0);
    kids_ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
  close(ready[0]);
  check(kids_ok == NCHILD, "%s: %d of %d children got SQLITE_BUSY first and then "
        "inserted their %d rows", dbname, kids_ok, NCHILD, NROWS);
  char lp[NCHILD + 1][64];
  const char *ledgers[NCHILD + 1];
  for (int i = 0; i <= NCHILD; i++) {
    if (i < NCHILD)
      snprintf(lp[i], sizeof lp[i], "%s.ledger%d", dbname, i);
    else
      snprintf(lp[i], sizeof lp[i], "%s.ledgerP", dbname);
    ledgers[i] = lp[i];
  }
  int expected = nparent + NCHILD * NROWS;
  check(verify(dbname, "kv", expected, NCHILD + 1, ledgers) == 0,
        "%s: a fresh process finds exactly the %d acknowledged rows", dbname,
        expected);
}

/* Another process tries one INSERT: 0 if it got SQLITE_BUSY. */
static int other_process_busy(const char *dbname) {
  pid_t pid = fork();
  if (pid == 0) {
    const char *argv[] = {g_self, "trywrite", g_dir, g_ext, dbname, NULL};
    execv(g_self, (char *const *)argv);
    _exit(127);
  }
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int trywrite_main(char **argv) {
  g_dir = argv[2];
  g_ext = argv[3];
  char p[4096], msg[512];
  path_of(p, sizeof p, argv[4]);
  sqlite3 *db = db_open(p);
  int rc = exec_sql(db, "INSERT INTO kv VALUES('other-process', 1)", msg, sizeof msg);
  sqlite3_close(db);
  if (rc == SQLITE_BUSY && strstr(msg, "locked by pid")) return 0;
  fprintf(stderr, "trywrite: rc %d '%s' (want SQLITE_BUSY)\n", rc, msg);
  return 1;
}

static void scenario_inherit(void) {
  const char *dbname = "inherit.db";
  char p[4096], msg[512], key[64];
  path_of(p, sizeof p, dbname);
  sqlite3 *db = db_open(p);
  must(db, "CREATE VIRTUAL TABLE kv USING bitcask(sync='normal')");
  ledger l;
  ledger_open(&l, "inherit.db.ledgerP");
  must(db, "INSERT INTO kv VALUES('parent-0', 1)");
  ledger_note(&l, 1, "parent-0");
  fflush(l.f);
  pid_t kid = fork();
  if (kid == 0) {
    alarm(60);
    int bad = 0;
    sqlite3_stmt *st;
    /* Reading through the inherited connection is harmless. */
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM kv", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) != 1) {
      fprintf(stderr, "inherit child: read failed: %s\n", sqlite3_errmsg(db));
      bad = 1;
    }
    sqlite3_finalize(st);
    int rc = exec_sql(db, "INSERT INTO kv VALUES('child-via-parent', 1)", msg, sizeof msg);
    if (rc == SQLITE_OK || !strstr(msg, "fork")) {
      fprintf(stderr, "inherit child: write through the parent's connection: rc %d "
              "'%s' (want an error that says fork)\n", rc, msg);
      bad = 1;
    }
    rc = exec_sql(db, "DROP TABLE kv", msg, sizeof msg);
    if (rc == SQLITE_OK) {
      fprintf(stderr, "inherit child: DROP TABLE through the parent's connection "
              "succeeded\n");
      bad = 1;
    }
    sqlite3_close(db); /* must not unlock, flush or fsync the parent's store */
    /* With the parent's handle closed here, a new connection of this child
    ** still finds the store held by the parent. */
    sqlite3 *db2 = db_open(p);
    rc = exec_sql(db2, "INSERT INTO kv VALUES('child-new', 1)", msg, sizeof msg);
    if (rc != SQLITE_BUSY) {
      fprintf(stderr, "inherit child: new connection: rc %d '%s' (want SQLITE_BUSY)\n",
              rc, msg);
      bad = 1;
    }
    sqlite3_close(db2);
    exit(bad);
  }
  int st;
  waitpid(kid, &st, 0);
  check(WIFEXITED(st) && WEXITSTATUS(st) == 0,
        "inherit: the child read, was refused writes and a DROP, and closed the "
        "parent's connection");
  check(other_process_busy(dbname) == 0,
        "inherit: after the child closed the inherited connection, another process "
        "still gets SQLITE_BUSY (the parent's lock held)");
  int n = 1;
  for (int j = 1; j <= 50; j++) {
    snprintf(key, sizeof key, "parent-%d", j);
    int busy = 0;
    int rc = insert_retry(db, "kv", key, 10, &busy, msg, sizeof msg);
    ledger_note(&l, rc == SQLITE_OK, key);
    n += rc == SQLITE_OK;
    check(rc == SQLITE_OK, "inherit: parent INSERT %s after the child: rc %d %s", key,
          rc, msg);
  }
  ledger_close(&l);
  sqlite3_close(db);
  const char *ledgers[] = {"inherit.db.ledgerP"};
  check(verify(dbname, "kv", n, 1, ledgers) == 0,
        "inherit: a fresh process finds exactly the parent's %d rows", n);
}

static void scenario_orphan(void) {
  const char *dbname = "orphan.db";
  char p[4096], msg[512];
  path_of(p, sizeof p, dbname);
  int ready[2];
  if (pipe(ready) != 0) exit(2);
  pid_t mid = fork();
  if (mid == 0) {
    /* The short-lived parent: opens the store, forks, dies holding it. */
    sqlite3 *db = db_open(p);
    must(db, "CREATE VIRTUAL TABLE kv USING bitcask");
    must(db, "INSERT INTO kv VALUES('parent-0', 1)");
    pid_t kid = fork();
    if (kid == 0) {
      close(ready[0]);
      /* Wait until the parent is gone (reparented). */
      pid_t pp = getppid();
      for (int i = 0; i < 5000 && getppid() == pp; i++) sleep_ms(2);
      sqlite3 *db2 = db_open(p);
      int busy = 0;
      int rc = insert_retry(db2, "kv", "orphan-1", 10, &busy, msg, sizeof msg);
      sqlite3_close(db2);
      char c = rc == SQLITE_OK ? 'y' : 'n';
      if (rc != SQLITE_OK)
        fprintf(stderr, "orphan: after the parent died: rc %d '%s'\n", rc, msg);
      if (write(ready[1], &c, 1) != 1) _exit(2);
      _exit(0);
    }
    _exit(0); /* no close: the kernel drops the parent's descriptors */
  }
  close(ready[1]);
  int st;
  waitpid(mid, &st, 0);
  char c = 0;
  ssize_t n = read(ready[0], &c, 1);
  close(ready[0]);
  check(n == 1 && c == 'y',
        "orphan: once the parent died, its child (a new connection) takes the lock");
  path_of(p, sizeof p, "orphan.db.ledger");
  FILE *f = fopen(p, "w");
  if (f) {
    fprintf(f, "+parent-0\n%corphan-1\n", c == 'y' ? '+' : '-');
    fclose(f);
  }
  const char *ledgers[] = {"orphan.db.ledger"};
  check(verify(dbname, "kv", c == 'y' ? 2 : 1, 1, ledgers) == 0,
        "orphan: a fresh process finds the parent's row and the child's");
}

/* Exec'd by the writer: does this process hold any descriptor in dir? */
static int fds_main(char **argv) {
  const char *store = argv[2];
  DIR *d = opendir("/proc/self/fd");
  if (!d) return 0;
  struct dirent *de;
  int held = 0;
  while ((de = readdir(d)) != NULL) {
    char lp[300], target[4096];
    snprintf(lp, sizeof lp, "/proc/self/fd/%s", de->d_name);
    ssize_t n = readlink(lp, target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = 0;
    if (strstr(target, store)) {
      fprintf(stderr, "exec'd child holds %s\n", target);
      held++;
    }
  }
  closedir(d);
  return held ? 1 : 0;
}

static void scenario_exec(void) {
  char p[4096], store[4200];
  path_of(p, sizeof p, "exec.db");
  snprintf(store, sizeof store, "%s-kv.bitcask", p);
  sqlite3 *db = db_open(p);
  must(db, "CREATE VIRTUAL TABLE kv USING bitcask(max_file_size='4KB')");
  for (int i = 0; i < 50; i++) must(db, "INSERT INTO kv VALUES(randomblob(16), zeroblob(200))");
  pid_t pid = fork();
  if (pid == 0) {
    const char *argv[] = {g_self, "fds", store, NULL};
    execv(g_self, (char *const *)argv);
    _exit(127);
  }
  int st;
  waitpid(pid, &st, 0);
  check(WIFEXITED(st) && WEXITSTATUS(st) == 0,
        "exec: a program exec'd by the writer holds no descriptor of the store");
  sqlite3_close(db);
}

static void scenario_dlclose(void) {
  char p[4096];
  path_of(p, sizeof p, "dlclose.db");
  sqlite3 *db = db_open(p);
  must(db, "CREATE VIRTUAL TABLE kv USING bitcask");
  must(db, "INSERT INTO kv VALUES(1, 1)");
  sqlite3_close(db); /* the extension is unloaded with its last connection */
  pid_t pid = fork();
  if (pid == 0) _exit(7);
  int st;
  waitpid(pid, &st, 0);
  check(WIFEXITED(st) && WEXITSTATUS(st) == 7,
        "dlclose: fork after the extension was unloaded works");
}

int main(int argc, char **argv) {
  g_self = "/proc/self/exe";
  if (argc >= 7 && strcmp(argv[1], "verify") == 0) return verify_main(argc, argv);
  if (argc == 5 && strcmp(argv[1], "trywrite") == 0) return trywrite_main(argv);
  if (argc == 3 && strcmp(argv[1], "fds") == 0) return fds_main(argv);
  if (argc != 3) {
    fprintf(stderr, "usage: %s DIR EXT\n", argv[0]);
    return 2;
  }
  static char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = 0;
    g_self = self;
  }
  static char dir[4096], ext[4096];
  if (!realpath(argv[1], dir)) return 2;
  g_dir = dir;
  if (argv[2][0] == '/')
    snprintf(ext, sizeof ext, "%s", argv[2]);
  else if (getcwd(ext, sizeof ext))
    snprintf(ext + strlen(ext), sizeof ext - strlen(ext), "/%s", argv[2]);
  g_ext = ext;
  signal(SIGPIPE, SIG_IGN);
  alarm(600); /* a hang is a failure */
  scenario_dlclose();
  scenario_writers("held.db", 0);
  scenario_writers("busy.db", 1);
  scenario_inherit();
  scenario_orphan();
  scenario_exec();
  printf("fork_writers: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
