/*
** crash_txn.c -- docs/DESIGN.md sections 7.1 and 7.5: a committed
** transaction survives kill -9 of the writer at any point, an uncommitted one
** leaves no trace, and a merge killed at any step loses and resurrects
** nothing.
**
**   build/crash_txn DIR ITERATIONS [SEED]
**
** Each iteration forks a child that opens the store in DIR and runs an
** endless stream of random transactions -- puts (insert or replace) and
** deletes over a small key space, savepoints, ROLLBACK TO, RELEASE, commits
** and rollbacks (some after bc_txn_prepare), values from 0 bytes to 1.5 MiB so that transactions span
** data files (max_file_size 64 KiB) and bypass the write buffer, now and then
** a merge -- under a random sync mode, writing the index of every finished
** transaction to a pipe once bc_txn_commit / bc_txn_rollback has returned.
** The parent kills it with SIGKILL after a random delay, reopens the store,
** and compares every key and value with a model that replays the same
** random stream: the store must equal the model after the acknowledged
** transactions, or after one more (the one in flight may have committed
** before its acknowledgement was written).  Anything else -- a lost commit, a
** partial transaction, a rolled-back write, a resurrected key, damage -- is
** a failure.  Prints "N passed, N failed" last; exits 1 on any failure.
*/
#include "bitcask.h"
#include "../rng.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NKEYS 300
#define MAX_OPS 400
#define BIG_VALUE (1536u * 1024u)


/* A value is identified by a tag and a length; its bytes derive from both. */
typedef struct slot {
  int present;
  uint64_t tag;
  uint32_t len;
} slot;

typedef struct model {
  slot k[NKEYS];
} model;

static void value_bytes(uint64_t tag, uint32_t len, unsigned char *out) {
  rng r = {tag};
  uint32_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v = next(&r);
    memcpy(out + i, &v, 8);
  }
  if (i < len) {
    uint64_t v = next(&r);
    memcpy(out + i, &v, len - i);
  }
}

static int key_bytes(uint32_t k, char *out) { return sprintf(out, "key-%u", k); }

/* One operation of a generated transaction. */
enum { OP_PUT, OP_DEL, OP_SAVEPOINT, OP_ROLLBACK_TO, OP_RELEASE };
typedef struct op {
  int kind;
  uint32_t key, len;
  uint64_t tag;
  unsigned depth;
} op;

typedef struct txn {
  op ops[MAX_OPS];
  int nops;
  int commit;       /* ends with COMMIT (else ROLLBACK) */
  int prepared;     /* a ROLLBACK after bc_txn_prepare (a failed host commit) */
  int merge_before; /* run a merge before it */
} txn;

/* The transaction number j of iteration `it`: a pure function of the seed. */
static void gen_txn(uint64_t seed, uint32_t it, uint32_t j, txn *t) {
  rng r = {seed ^ ((uint64_t)it << 40) ^ ((uint64_t)j * UINT64_C(0x2545F4914F6CDD1D))};
  next(&r);
  t->nops = 0;
  t->merge_before = below(&r, 100) < 3;
  t->commit = below(&r, 100) < 80;
  t->prepared = !t->commit && below(&r, 2) == 0;
  uint32_t size_class = below(&r, 100);
  int n = size_class < 60 ? 1 + (int)below(&r, 4)
          : size_class < 95 ? 5 + (int)below(&r, 40)
                            : 50 + (int)below(&r, MAX_OPS - 60);
  unsigned depth = 0;
  for (int i = 0; i < n && t->nops < MAX_OPS; i++) {
    op *o = &t->ops[t->nops++];
    uint32_t c = below(&r, 100);
    o->key = below(&r, NKEYS);
    o->tag = next(&r);
    o->len = 0;
    if (c < 60) {
      o->kind = OP_PUT;
      uint32_t lc = below(&r, 1000);
      o->len = lc < 3 ? BIG_VALUE : lc < 20 ? 60000 + below(&r, 60000)
               : lc < 100 ? 0 : below(&r, 3000);
    } else if (c < 85) {
      o->kind = OP_DEL;
    } else if (c < 92) {
      o->kind = OP_SAVEPOINT;
      depth++;
    } else if (c < 97 && depth > 0) {
      o->kind = OP_ROLLBACK_TO;
      o->depth = 1 + below(&r, depth);
      depth = o->depth;
    } else if (depth > 0) {
      o->kind = OP_RELEASE;
      o->depth = 1 + below(&r, depth);
      depth = o->depth - 1;
    } else {
      o->kind = OP_DEL;
    }
  }
}

/* Apply a transaction to a model (the oracle).  in_flight: it is the one
** the kill interrupted, so a prepared one may have its COMMIT durable (the
** host's commit failing after prepare is the only reason to roll back a
** prepared transaction; a crash before the abort leaves it committed). */
static void model_apply(model *m, const txn *t, int in_flight) {
  if (!t->commit && !(in_flight && t->prepared)) return;
  model *stack = malloc((MAX_OPS + 1) * sizeof *stack);
  model cur = *m;
  int depth = 0;
  for (int i = 0; i < t->nops; i++) {
    const op *o = &t->ops[i];
    switch (o->kind) {
      case OP_PUT:
        cur.k[o->key] = (slot){1, o->tag, o->len};
        break;
      case OP_DEL:
        cur.k[o->key].present = 0;
        break;
      case OP_SAVEPOINT:
        stack[depth++] = cur;
        break;
      case OP_ROLLBACK_TO:
        cur = stack[o->depth - 1];
        depth = (int)o->depth;
        break;
      case OP_RELEASE:
        depth = (int)o->depth - 1;
        break;
    }
  }
  *m = cur;
  free(stack);
}

/* ------------------------------------------------------------- the child */

static void die(const char *what, bc_status st, const char *msg) {
  fprintf(stderr, "crash_txn child: %s: %s %s\n", what, bc_status_name(st), msg);
  _exit(3);
}

static void child(const char *dir, uint64_t seed, uint32_t it, int ackfd) {
  bc_options o;
  bc_options_init(&o);
  o.create = 1;
  o.max_file_size = 64 * 1024;
  rng r = {seed ^ it};
  o.sync = (bc_sync_mode)below(&r, 3);
  char err[512];
  bc_store *s;
  bc_status st = bc_open(dir, &o, &s, err, sizeof err);
  if (st != BC_OK) die("open", st, err);
  unsigned char *val = malloc(BIG_VALUE);
  txn *t = malloc(sizeof *t);
  for (uint32_t j = 0;; j++) {
    gen_txn(seed, it, j, t);
    if (t->merge_before && (st = bc_merge(s, NULL)) != BC_OK)
      die("merge", st, bc_errmsg(s));
    bc_txn *x;
    if ((st = bc_txn_begin(s, &x)) != BC_OK) die("begin", st, bc_errmsg(s));
    for (int i = 0; i < t->nops; i++) {
      const op *p = &t->ops[i];
      char key[32];
      int kl = key_bytes(p->key, key);
      unsigned d;
      switch (p->kind) {
        case OP_PUT:
          value_bytes(p->tag, p->len, val);
          st = bc_txn_put(x, key, (size_t)kl, 0, val, p->len);
          break;
        case OP_DEL:
          st = bc_txn_delete(x, key, (size_t)kl);
          if (st == BC_NOTFOUND) st = BC_OK;
          break;
        case OP_SAVEPOINT:
          st = bc_txn_savepoint(x, &d);
          break;
        case OP_ROLLBACK_TO:
          st = bc_txn_rollback_to(x, p->depth);
          break;
        case OP_RELEASE:
          st = bc_txn_release(x, p->depth);
          break;
      }
      if (st != BC_OK) die("write", st, bc_errmsg(s));
    }
    if (t->prepared && (st = bc_txn_prepare(x)) != BC_OK)
      die("prepare", st, bc_errmsg(s));
    st = t->commit ? bc_txn_commit(x) : bc_txn_rollback(x);
    if (st != BC_OK) die("commit", st, bc_errmsg(s));
    uint32_t done = j + 1;
    if (write(ackfd, &done, sizeof done) != (ssize_t)sizeof done) _exit(4);
  }
}

/* ------------------------------------------------------------ the parent */

static long keys_checked; /* keys compared with a model that matched */

/* 1 if the store equals m exactly. */
static int store_equals(bc_store *s, const model *m, char *why, size_t whylen) {
  static unsigned char want[BIG_VALUE];
  bc_buf b = {0};
  uint64_t n = 0;
  int ok = 1;
  for (uint32_t k = 0; k < NKEYS && ok; k++) {
    char key[32];
    int kl = key_bytes(k, key);
    const void *v;
    bc_info info;
    bc_status st = bc_get(s, key, (size_t)kl, &b, &v, &info);
    if (!m->k[k].present) {
      if (st != BC_NOTFOUND) {
        snprintf(why, whylen, "%s is present (%s) but should not be", key,
                 bc_status_name(st));
        ok = 0;
      }
      continue;
    }
    n++;
    if (st != BC_OK) {
      snprintf(why, whylen, "%s is missing: %s", key, bc_status_name(st));
      ok = 0;
    } else if (info.value_size != m->k[k].len) {
      snprintf(why, whylen, "%s has %u bytes, expected %u", key, info.value_size,
               m->k[k].len);
      ok = 0;
    } else {
      value_bytes(m->k[k].tag, m->k[k].len, want);
      if (m->k[k].len && memcmp(v, want, m->k[k].len) != 0) {
        snprintf(why, whylen, "%s has the wrong value", key);
        ok = 0;
      }
    }
  }
  if (ok) keys_checked += NKEYS;
  if (ok && bc_count(s) != n) {
    snprintf(why, whylen, "the store has %llu keys, expected %llu",
             (unsigned long long)bc_count(s), (unsigned long long)n);
    ok = 0;
  }
  bc_buf_free(&b);
  return ok;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s DIR ITERATIONS [SEED]\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  long iters = atol(argv[2]);
  uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 0) : (uint64_t)time(NULL);
  printf("crash_txn: %ld iterations, seed %llu, store %s\n", iters,
         (unsigned long long)seed, dir);
  model m;
  memset(&m, 0, sizeof m);
  txn *t = malloc(sizeof *t);
  rng delay = {seed * 31 + 7};
  long passed = 0, failed = 0, commits_seen = 0, in_flight_applied = 0;
  for (uint32_t it = 0; it < (uint32_t)iters; it++) {
    int fds[2];
    if (pipe(fds) != 0) return 2;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return 2;
    if (pid == 0) {
      close(fds[0]);
      child(dir, seed, it, fds[1]);
      _exit(0);
    }
    close(fds[1]);
    /* Let it run for 2-60 ms (longer now and then), then SIGKILL. */
    uint32_t us = 2000 + below(&delay, below(&delay, 10) == 0 ? 200000 : 58000);
    usleep(us);
    kill(pid, SIGKILL);
    int wst;
    waitpid(pid, &wst, 0);
    uint32_t done = 0, v;
    while (read(fds[0], &v, sizeof v) == (ssize_t)sizeof v) done = v;
    close(fds[0]);
    if (!(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL)) {
      printf("FAIL iteration %u: the child exited by itself (status %d)\n", it, wst);
      failed++;
      continue;
    }
    /* Model A: the acknowledged transactions; B: one more. */
    model a = m, b;
    for (uint32_t j = 0; j < done; j++) {
      gen_txn(seed, it, j, t);
      model_apply(&a, t, 0);
      commits_seen += t->commit;
    }
    b = a;
    gen_txn(seed, it, done, t);
    model_apply(&b, t, 1);

    bc_options o;
    bc_options_init(&o);
    char err[512], why_a[256] = "", why_b[256] = "";
    bc_store *s;
    bc_status st = bc_open(dir, &o, &s, err, sizeof err);
    if (st != BC_OK) {
      printf("FAIL iteration %u: reopen: %s %s\n", it, bc_status_name(st), err);
      failed++;
      break;
    }
    bc_stats stats;
    bc_stats_get(s, &stats);
    int eq_a = store_equals(s, &a, why_a, sizeof why_a);
    int eq_b = !eq_a && store_equals(s, &b, why_b, sizeof why_b);
    if (stats.corrupt != 0) {
      printf("FAIL iteration %u: %llu corrupt records after a kill\n", it,
             (unsigned long long)stats.corrupt);
      failed++;
    } else if (eq_a || eq_b) {
      passed++;
      in_flight_applied += eq_b;
      m = eq_a ? a : b;
    } else {
      printf("FAIL iteration %u (%u transactions acknowledged): not the state "
             "after them (%s) nor after one more (%s)\n", it, done, why_a, why_b);
      failed++;
      m = a; /* go on from the acknowledged state */
    }
    bc_close(s);
  }
  printf("crash_txn: %ld kills, %ld acknowledged commits checked, in-flight "
         "transaction found committed %ld times, %ld keys checked, %ld keys lost\n",
         passed + failed, commits_seen, in_flight_applied, keys_checked, failed);
  printf("%ld passed, %ld failed\n", passed, failed);
  free(t);
  return failed ? 1 : 0;
}
