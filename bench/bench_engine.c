/*
** bench_engine.c -- the storage engine alone, without SQLite: point reads,
** batched and streaming writes, open with and without hint files, keydir
** memory, and merge, beside LMDB, LevelDB and plain write(2) where they make
** a meaningful yardstick.  Prints CSV rows of bench/bench_util.h's protocol.
**
**   build/bench_engine DIR N RUNS [FIGURE-PREFIX]
**
** DIR is a scratch directory (created if missing; everything made under it
** is removed at the end), N the key count (reference 1,000,000), RUNS the
** measured runs per system (reference 5).  Every figure has a warm-up run
** per system, thrown away, then RUNS alternating rounds; every run is a
** forked child (bench_child).  Built without -DHAVE_LMDB / -DHAVE_LEVELDB,
** those systems are skipped (one line on stderr) and their rows are absent.
**
** Workload: key i is bench_key(i), 16 bytes "key%013u"; keys are inserted in
** bench_shuffled order; values are random bytes (bench_fill), 100 bytes
** unless said otherwise, taken from a precomputed buffer so that generating
** them is never timed.  Bitcask stores: sync=BC_SYNC_OFF, default 64 MiB
** max_file_size.
**
** eng_get        bitcask, lmdb; s.  Setup (not timed, own child): N keys with
**                100-byte values loaded into a store (bc_put, bc_sync) and
**                into an LMDB env (txns of 10,000 puts, mdb_env_sync).  Run:
**                open (not timed), then timed: N gets of random keys, all
**                hitting, the same sequence for both; each value ends in the
**                caller's memory (bitcask: a reused bc_buf; LMDB: mdb_get in
**                one read-only txn, then memcpy).
** eng_get_4k     as eng_get with 4096-byte values and N/4 keys (min 1000).
** eng_put_batch  bitcask, leveldb; s.  Run: fresh directory, open (not
**                timed), then timed: N puts of 100-byte values in batches of
**                1000 (bc_txn_begin/put/commit; leveldb_writebatch_put then
**                leveldb_write, sync false), from the first batch to the end
**                of the last write; close not timed.
** eng_append_bw  bitcask, raw; MB/s of value payload (10^6 bytes/s).
**                min(65536, N) records of 4096 bytes (256 MiB at the
**                reference size).  Run: fresh store or file (not timed),
**                timed: bitcask one standalone bc_put per record then
**                bc_sync; raw write(2) of as many bytes in 64 KiB chunks, no
**                fsync.  Open and close not timed.
** eng_open_hints bitcask; keys/s.  Setup: N keys of 100 bytes, bc_merge (all
**                data in merged files with hints), close.  Run: timed bc_open
**                (read-write, create=0); value N / seconds; close not timed.
** eng_open_4k    hints, nohints; s.  Setup: N/4 keys (min 1000) of 4096
**                bytes, bc_merge, close; the store is copied file by file and
**                the copy's .hint files deleted.  Run: timed bc_open
**                (read-write) of that system's store.
** eng_keydir_mem bitcask; bytes/key.  Run: RSS before and after bc_open of
**                eng_open_hints' store; value (after - before) / N - 16 (the
**                bytes per key beyond the key itself).
** eng_keydir_k<L> for key lengths L of 1 to 100 bytes (kd_lens); bytes/key,
**                beyond the key.  Keys: "user:000..." then the last min(L, 8)
**                bytes big-endian i times an odd constant (distinct, random
**                in key order); min(N, 256^L) of them, 100-byte values.
**                Child 1 (write path): fresh store, RSS taken, the keys in
**                transactions of 1000 puts; systems put (bc_stats
**                keydir_bytes / keys - L), put_rss ((RSS now - RSS before) /
**                keys - L), then bc_iter_open + one bc_iter_next (which
**                builds the ordered index) and put_ordered, put_rss_ordered;
**                then bc_merge, close.  Child 2 (hint-file load path): RSS
**                taken, bc_open of that store, the same four as open_*.
**                Memory is deterministic: one run each, no warm-up.
** eng_keydir_worst ordered; bytes/key: the largest put_ordered or
**                open_ordered over the lengths of 4 bytes and more.
** eng_merge      bitcask, raw, raw_fsync; MB/s.  Run (not timed): a fresh store of N/8
**                keys (min 1000) of 4096-byte values, every key written
**                twice (the second pass in another order, with new values),
**                so half the data is dead; bc_sync, close, sync(2), reopen.  Timed:
**                bc_merge (which seals the active file and always fsyncs).
**                Value: live bytes (keys + values of the live keys, no record
**                headers) / seconds / 10^6.  raw: write(2) of as many bytes
**                in 64 KiB chunks to a fresh file, no fsync; raw_fsync: the
**                same followed by one fsync, as a merge makes its output
**                durable (for the record: the target is against raw).
** eng_merge_space bitcask; x.  Run: build and merge as in eng_merge, then
**                bytes on disk of the store directory (bench_du) / live
**                bytes.  Nothing timed.
*/
#define BENCH_NAME "bench_engine"
#include "bench_util.h"

#include "bitcask.h"

#include <errno.h>
#include <fcntl.h>

#ifdef HAVE_LMDB
#include <lmdb.h>
#endif
#ifdef HAVE_LEVELDB
#include <leveldb/c.h>
#endif

#define KLEN 16                 /* bytes of every key */
#define PATHLEN 4096
#define RAW_CHUNK (64u * 1024u) /* write(2) size of the "raw" systems */
#define BATCH 1000u             /* puts per batch of eng_put_batch */
#define LMDB_TXN_PUTS 10000u    /* puts per LMDB load transaction */
#define LMDB_MAPSIZE ((size_t)8 << 30)

enum { SEED_ORDER = 1, SEED_VALUES = 2, SEED_GETS = 3, SEED_ORDER2 = 4 };

/* The scratch directory, set once in main before any fork. */
static char scratch[PATHLEN];

/* Where checksums of read values go, so no read is optimised away. */
static volatile unsigned sink;

/* out (PATHLEN bytes) = dir/name; dies if that is too long. */
static void join(char *out, const char *dir, const char *name) {
  int l = snprintf(out, PATHLEN, "%s/%s", dir, name);
  if (l < 0 || l >= PATHLEN) die(dir, "path too long");
}

/* out (PATHLEN bytes) = scratch/name. */
static void sub(char *out, const char *name) { join(out, scratch, name); }

static unsigned umax(unsigned a, unsigned b) { return a > b ? a : b; }
static unsigned umin(unsigned a, unsigned b) { return a < b ? a : b; }

/* ------------------------------------------------------------ workload */

/* Random value bytes, generated before any timing: value i of vlen bytes
** starts at offset (i * 37) % (size - vlen) (distinct offsets for i < 4 Mi). */
typedef struct vals {
  unsigned char *buf; /* owned; free with vals_free */
  size_t size, vlen;
} vals;

static vals vals_make(size_t vlen) {
  vals v = {NULL, ((size_t)4 << 20) + vlen, vlen};
  v.buf = malloc(v.size);
  if (!v.buf) die("values", "out of memory");
  uint64_t seed = SEED_VALUES;
  bench_fill(v.buf, v.size, &seed);
  return v;
}

static const unsigned char *vals_get(const vals *v, uint64_t i) {
  return v->buf + (i * 37u) % (v->size - v->vlen);
}

static void vals_free(vals *v) { free(v->buf); }

/* The keys of idx[0..count-1] as one flat array of count * KLEN bytes, key j
** at j * KLEN (no NULs).  Caller frees. */
static char *keys_of(const unsigned *idx, unsigned count) {
  char *k = malloc((size_t)count * KLEN);
  if (!k) die("keys", "out of memory");
  for (unsigned j = 0; j < count; j++) {
    char tmp[32];
    if (bench_key(tmp, idx[j]) != KLEN) die("keys", "key is not 16 bytes");
    memcpy(k + (size_t)j * KLEN, tmp, KLEN);
  }
  return k;
}

/* Keys 0..n-1 in shuffled order (the insertion order), flat.  Caller frees. */
static char *keys_shuffled(unsigned n, uint64_t seed) {
  unsigned *o = bench_shuffled(n, seed);
  char *k = keys_of(o, n);
  free(o);
  return k;
}

/* `count` keys drawn at random from 0..n-1 (a fixed sequence), flat.
** Caller frees. */
static char *keys_random(unsigned n, unsigned count) {
  unsigned *o = malloc((size_t)count * sizeof *o);
  if (!o) die("keys", "out of memory");
  uint64_t seed = SEED_GETS;
  for (unsigned j = 0; j < count; j++) o[j] = bench_rnd(&seed) % n;
  char *k = keys_of(o, count);
  free(o);
  return k;
}

/* Number of entries of dir whose name ends with suffix. */
static unsigned count_suffix(const char *dir, const char *suffix) {
  DIR *d = opendir(dir);
  if (!d) die(dir, strerror(errno));
  unsigned n = 0;
  size_t sl = strlen(suffix);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l > sl && strcmp(e->d_name + l - sl, suffix) == 0) n++;
  }
  closedir(d);
  return n;
}

/* Run fn(arg) in a child for untimed setup (its value is ignored). */
static void setup(bench_fn fn, void *arg) {
  long rss;
  (void)bench_child(fn, arg, &rss);
}

/* ------------------------------------------------------------- bitcask */

static void bc_ok(bc_status st, bc_store *s, const char *what) {
  if (st == BC_OK) return;
  char msg[600];
  snprintf(msg, sizeof msg, "%s: %s", bc_status_name(st), s ? bc_errmsg(s) : "");
  die(what, msg);
}

/* Open dir read-write with sync off; create as given. */
static bc_store *store_open(const char *dir, int create) {
  bc_options o;
  bc_options_init(&o);
  o.create = create;
  o.sync = BC_SYNC_OFF;
  bc_store *s = NULL;
  char err[512];
  if (bc_open(dir, &o, &s, err, sizeof err) != BC_OK) die(dir, err);
  return s;
}

static void store_close(bc_store *s) { bc_ok(bc_close(s), NULL, "bc_close"); }

/* Standalone bc_put of keys 0..n-1 in shuffled(seed) order; key k gets value
** vals_get(v, salt + k). */
static void put_all(bc_store *s, unsigned n, const vals *v, uint64_t seed,
                    uint64_t salt) {
  unsigned *o = bench_shuffled(n, seed);
  for (unsigned i = 0; i < n; i++) {
    char k[32];
    bench_key(k, o[i]);
    bc_ok(bc_put(s, k, KLEN, 0, vals_get(v, salt + o[i]), v->vlen), s, "bc_put");
  }
  free(o);
}

/* A store to load: dir (borrowed), n keys of vlen bytes, merged or not. */
typedef struct load_arg {
  const char *dir;
  unsigned n;
  size_t vlen;
  int merge;
} load_arg;

/* Setup child: fresh store with the keys, bc_sync, optionally bc_merge. */
static double load_bitcask(void *p) {
  const load_arg *a = p;
  bench_rmrf(a->dir);
  vals v = vals_make(a->vlen);
  bc_store *s = store_open(a->dir, 1);
  put_all(s, a->n, &v, SEED_ORDER, 0);
  bc_ok(bc_sync(s), s, "bc_sync");
  if (a->merge) bc_ok(bc_merge(s, NULL), s, "bc_merge");
  store_close(s);
  vals_free(&v);
  return 0;
}

/* ------------------------------------------------------- eng_get(_4k) */

/* One system of a get figure: its directory (borrowed), keys, value size. */
typedef struct get_arg {
  const char *dir;
  unsigned n;
  size_t vlen;
} get_arg;

static double get_bitcask(void *p) {
  const get_arg *a = p;
  char *keys = keys_random(a->n, a->n);
  bc_store *s = store_open(a->dir, 1);
  bc_buf b = {0}; /* the caller's buffer: every value lands here */
  unsigned sum = 0;
  double t0 = now_us();
  for (unsigned i = 0; i < a->n; i++) {
    const void *val;
    bc_info info;
    bc_ok(bc_get(s, keys + (size_t)i * KLEN, KLEN, &b, &val, &info), s, "bc_get");
    if (info.value_size != a->vlen) die("bc_get", "wrong value length");
    sum += ((const unsigned char *)val)[i % a->vlen];
  }
  double t = (now_us() - t0) / 1e6;
  sink = sum;
  bc_buf_free(&b);
  store_close(s);
  free(keys);
  return t;
}

#ifdef HAVE_LMDB
static void mdb_ok(int rc, const char *what) {
  if (rc != MDB_SUCCESS) die(what, mdb_strerror(rc));
}

static MDB_env *lmdb_open(const char *dir, unsigned flags) {
  MDB_env *env;
  mdb_ok(mdb_env_create(&env), "mdb_env_create");
  mdb_ok(mdb_env_set_mapsize(env, LMDB_MAPSIZE), "mdb_env_set_mapsize");
  mdb_ok(mdb_env_open(env, dir, flags, 0644), dir);
  return env;
}

/* Setup child: a fresh env with the keys, in txns of LMDB_TXN_PUTS puts. */
static double load_lmdb(void *p) {
  const load_arg *a = p;
  bench_rmrf(a->dir);
  if (mkdir(a->dir, 0755) != 0) die(a->dir, strerror(errno));
  vals v = vals_make(a->vlen);
  MDB_env *env = lmdb_open(a->dir, MDB_NOSYNC);
  unsigned *o = bench_shuffled(a->n, SEED_ORDER);
  MDB_dbi dbi = 0;
  for (unsigned i = 0; i < a->n; i += LMDB_TXN_PUTS) {
    MDB_txn *txn;
    mdb_ok(mdb_txn_begin(env, NULL, 0, &txn), "mdb_txn_begin");
    mdb_ok(mdb_dbi_open(txn, NULL, 0, &dbi), "mdb_dbi_open");
    for (unsigned j = i; j < umin(a->n, i + LMDB_TXN_PUTS); j++) {
      char k[32];
      bench_key(k, o[j]);
      MDB_val key = {KLEN, k};
      MDB_val val = {a->vlen, (void *)vals_get(&v, o[j])};
      mdb_ok(mdb_put(txn, dbi, &key, &val, 0), "mdb_put");
    }
    mdb_ok(mdb_txn_commit(txn), "mdb_txn_commit");
  }
  mdb_ok(mdb_env_sync(env, 1), "mdb_env_sync");
  mdb_env_close(env);
  free(o);
  vals_free(&v);
  return 0;
}

static double get_lmdb(void *p) {
  const get_arg *a = p;
  char *keys = keys_random(a->n, a->n);
  unsigned char *out = malloc(a->vlen); /* the caller's copy of each value */
  if (!out) die("get_lmdb", "out of memory");
  MDB_env *env = lmdb_open(a->dir, MDB_RDONLY);
  MDB_txn *txn;
  MDB_dbi dbi;
  mdb_ok(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), "mdb_txn_begin");
  mdb_ok(mdb_dbi_open(txn, NULL, 0, &dbi), "mdb_dbi_open");
  unsigned sum = 0;
  double t0 = now_us();
  for (unsigned i = 0; i < a->n; i++) {
    MDB_val key = {KLEN, keys + (size_t)i * KLEN}, val;
    mdb_ok(mdb_get(txn, dbi, &key, &val), "mdb_get");
    if (val.mv_size != a->vlen) die("mdb_get", "wrong value length");
    memcpy(out, val.mv_data, a->vlen);
    sum += out[i % a->vlen];
  }
  double t = (now_us() - t0) / 1e6;
  sink = sum;
  mdb_txn_abort(txn);
  mdb_env_close(env);
  free(out);
  free(keys);
  return t;
}
#endif

/* eng_get / eng_get_4k: n keys of vlen bytes in each system, n random gets. */
static void fig_get(const char *id, unsigned n, size_t vlen, int runs) {
  char bcd[PATHLEN], mdbd[PATHLEN], name[64];
  snprintf(name, sizeof name, "%.40s_bitcask", id);
  sub(bcd, name);
  snprintf(name, sizeof name, "%.40s_lmdb", id);
  sub(mdbd, name);
  load_arg lb = {bcd, n, vlen, 0}, lm = {mdbd, n, vlen, 0};
  get_arg gb = {bcd, n, vlen}, gm = {mdbd, n, vlen};
  bench_sys sys[2] = {{"bitcask", "s", get_bitcask, &gb, bcd}};
  int nsys = 1;
  setup(load_bitcask, &lb);
#ifdef HAVE_LMDB
  setup(load_lmdb, &lm);
  sys[nsys++] = (bench_sys){"lmdb", "s", get_lmdb, &gm, mdbd};
#else
  (void)lm;
  (void)gm;
#endif
  bench_figure(id, sys, nsys, runs);
  bench_rmrf(bcd);
  bench_rmrf(mdbd);
}

/* ------------------------------------------------------ eng_put_batch */

/* One system of eng_put_batch: its directory (borrowed), n keys. */
typedef struct put_arg {
  const char *dir;
  unsigned n;
} put_arg;

static double put_bitcask(void *p) {
  const put_arg *a = p;
  bench_rmrf(a->dir);
  char *keys = keys_shuffled(a->n, SEED_ORDER);
  vals v = vals_make(100);
  bc_store *s = store_open(a->dir, 1);
  double t0 = now_us();
  for (unsigned i = 0; i < a->n; i += BATCH) {
    bc_txn *t;
    bc_ok(bc_txn_begin(s, &t), s, "bc_txn_begin");
    for (unsigned j = i; j < umin(a->n, i + BATCH); j++)
      bc_ok(bc_txn_put(t, keys + (size_t)j * KLEN, KLEN, 0, vals_get(&v, j), 100), s,
            "bc_txn_put");
    bc_ok(bc_txn_commit(t), s, "bc_txn_commit");
  }
  double t = (now_us() - t0) / 1e6;
  store_close(s);
  vals_free(&v);
  free(keys);
  return t;
}

#ifdef HAVE_LEVELDB
static void ldb_ok(char *err, const char *what) {
  if (err) die(what, err);
}

static double put_leveldb(void *p) {
  const put_arg *a = p;
  bench_rmrf(a->dir);
  char *keys = keys_shuffled(a->n, SEED_ORDER);
  vals v = vals_make(100);
  char *err = NULL;
  leveldb_options_t *opt = leveldb_options_create();
  leveldb_options_set_create_if_missing(opt, 1);
  leveldb_t *db = leveldb_open(opt, a->dir, &err);
  ldb_ok(err, "leveldb_open");
  leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
  leveldb_writeoptions_set_sync(wo, 0);
  leveldb_writebatch_t *wb = leveldb_writebatch_create();
  double t0 = now_us();
  for (unsigned i = 0; i < a->n; i += BATCH) {
    for (unsigned j = i; j < umin(a->n, i + BATCH); j++)
      leveldb_writebatch_put(wb, keys + (size_t)j * KLEN, KLEN,
                             (const char *)vals_get(&v, j), 100);
    leveldb_write(db, wo, wb, &err);
    ldb_ok(err, "leveldb_write");
    leveldb_writebatch_clear(wb);
  }
  double t = (now_us() - t0) / 1e6;
  leveldb_writebatch_destroy(wb);
  leveldb_writeoptions_destroy(wo);
  leveldb_close(db);
  leveldb_options_destroy(opt);
  vals_free(&v);
  free(keys);
  return t;
}
#endif

static void fig_put_batch(unsigned n, int runs) {
  char bcd[PATHLEN], ldbd[PATHLEN];
  sub(bcd, "put_bitcask");
  sub(ldbd, "put_leveldb");
  put_arg pb = {bcd, n}, pl = {ldbd, n};
  bench_sys sys[2] = {{"bitcask", "s", put_bitcask, &pb, bcd}};
  int nsys = 1;
#ifdef HAVE_LEVELDB
  sys[nsys++] = (bench_sys){"leveldb", "s", put_leveldb, &pl, ldbd};
#else
  (void)pl;
#endif
  bench_figure("eng_put_batch", sys, nsys, runs);
  bench_rmrf(bcd);
  bench_rmrf(ldbd);
}

/* ------------------------------------------------------ eng_append_bw */

/* Write back everything dirty, untimed, before a bandwidth figure starts
** its clock: every system starts from a clean page cache, so no run pays
** for the writeback of its setup (a 1 GB store built just before a merge)
** or of the run before it. */
static void settle(void) { sync(); }

/* Seconds taken by write(2) of `bytes` random bytes to the fresh file path
** in RAW_CHUNK chunks, then one fsync if `sync` (open and close not
** timed). */
static double raw_write(const char *path, uint64_t bytes, int sync) {
  bench_rmrf(path);
  settle();
  vals v = vals_make(RAW_CHUNK);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) die(path, strerror(errno));
  double t0 = now_us();
  for (uint64_t done = 0, c = 0; done < bytes; c++) {
    size_t len = bytes - done < RAW_CHUNK ? (size_t)(bytes - done) : RAW_CHUNK;
    const unsigned char *src = v.buf + (c % 64) * RAW_CHUNK;
    for (size_t off = 0; off < len;) {
      ssize_t w = write(fd, src + off, len - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) die(path, strerror(errno));
      off += (size_t)w;
    }
    done += len;
  }
  if (sync && fsync(fd) != 0) die(path, strerror(errno));
  double t = (now_us() - t0) / 1e6;
  if (close(fd) != 0) die(path, strerror(errno));
  vals_free(&v);
  return t;
}

/* One system of a bandwidth figure: its path (borrowed), records, and the
** payload bytes a raw run writes. */
typedef struct bw_arg {
  const char *path;
  unsigned records;
  uint64_t bytes;
} bw_arg;

static double append_bitcask(void *p) {
  const bw_arg *a = p;
  bench_rmrf(a->path);
  unsigned *idx = malloc((size_t)a->records * sizeof *idx);
  if (!idx) die("append", "out of memory");
  for (unsigned i = 0; i < a->records; i++) idx[i] = i;
  char *keys = keys_of(idx, a->records);
  free(idx);
  vals v = vals_make(4096);
  bc_store *s = store_open(a->path, 1);
  settle();
  double t0 = now_us();
  for (unsigned i = 0; i < a->records; i++)
    bc_ok(bc_put(s, keys + (size_t)i * KLEN, KLEN, 0, vals_get(&v, i), 4096), s, "bc_put");
  bc_ok(bc_sync(s), s, "bc_sync");
  double t = (now_us() - t0) / 1e6;
  store_close(s);
  vals_free(&v);
  free(keys);
  return (double)a->records * 4096 / t / 1e6;
}

static double raw_bw(void *p) {
  const bw_arg *a = p;
  return (double)a->bytes / raw_write(a->path, a->bytes, 0) / 1e6;
}

/* The same, ending with an fsync: the yardstick of a merge, which always
** makes its output durable. */
static double raw_bw_fsync(void *p) {
  const bw_arg *a = p;
  return (double)a->bytes / raw_write(a->path, a->bytes, 1) / 1e6;
}

static void fig_append_bw(unsigned n, int runs) {
  char bcd[PATHLEN], raw[PATHLEN];
  sub(bcd, "append_bitcask");
  sub(raw, "append_raw.dat");
  unsigned records = umin(65536, n);
  bw_arg ab = {bcd, records, (uint64_t)records * 4096};
  bw_arg ar = {raw, records, (uint64_t)records * 4096};
  bench_sys sys[2] = {{"bitcask", "MB/s", append_bitcask, &ab, bcd},
                      {"raw", "MB/s", raw_bw, &ar, raw}};
  bench_figure("eng_append_bw", sys, 2, runs);
  bench_rmrf(bcd);
  bench_rmrf(raw);
}

/* ----------------------------------------- eng_open_hints, eng_open_4k */

/* One opened store: its directory (borrowed), its key count, whether its
** .hint files must stay absent. */
typedef struct open_arg {
  const char *dir;
  unsigned n;
  int nohints;
} open_arg;

/* Seconds of one bc_open (read-write, create=0, sync off); checks the count
** and, for a copy without hints, that opening it wrote none. */
static double open_once(const open_arg *a) {
  double t0 = now_us();
  bc_store *s = store_open(a->dir, 0);
  double t = (now_us() - t0) / 1e6;
  if (bc_count(s) != a->n) die(a->dir, "bc_count after open is not the key count");
  store_close(s);
  if (a->nohints && count_suffix(a->dir, ".hint") != 0)
    die(a->dir, "opening the copy without hints wrote .hint files");
  return t;
}

static double open_rate(void *p) {
  const open_arg *a = p;
  return a->n / open_once(a);
}

static double open_secs(void *p) { return open_once(p); }

static void fig_open_hints(const char *dir, unsigned n, int runs) {
  load_arg la = {dir, n, 100, 1};
  setup(load_bitcask, &la);
  if (count_suffix(dir, ".hint") == 0) die(dir, "no .hint file after bc_merge");
  open_arg oa = {dir, n, 0};
  bench_sys sys[1] = {{"bitcask", "keys/s", open_rate, &oa, dir}};
  bench_figure("eng_open_hints", sys, 1, runs);
}

/* Copy the regular files of directory from into the new directory to. */
static void copy_dir(const char *from, const char *to) {
  bench_rmrf(to);
  if (mkdir(to, 0755) != 0) die(to, strerror(errno));
  DIR *d = opendir(from);
  if (!d) die(from, strerror(errno));
  static unsigned char buf[1 << 20];
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char src[PATHLEN], dst[PATHLEN];
    join(src, from, e->d_name);
    join(dst, to, e->d_name);
    struct stat st;
    if (lstat(src, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (in < 0 || out < 0) die(src, "copy: open failed");
    ssize_t r;
    while ((r = read(in, buf, sizeof buf)) > 0)
      if (write(out, buf, (size_t)r) != r) die(dst, "copy: write failed");
    if (r < 0) die(src, "copy: read failed");
    close(in);
    if (close(out) != 0) die(dst, "copy: close failed");
  }
  closedir(d);
}

/* Unlink the files of dir whose name ends with suffix. */
static void unlink_suffix(const char *dir, const char *suffix) {
  DIR *d = opendir(dir);
  if (!d) die(dir, strerror(errno));
  size_t sl = strlen(suffix);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l <= sl || strcmp(e->d_name + l - sl, suffix) != 0) continue;
    char path[PATHLEN];
    join(path, dir, e->d_name);
    if (unlink(path) != 0) die(path, strerror(errno));
  }
  closedir(d);
}

/* eng_open_4k.  Both stores are opened read-write: an open writes hint files
** only when it seals a file, which it never does (the merged files stay
** without hints, the empty active file goes on as the tail); every nohints
** run checks that no .hint appeared, so later runs still scan. */
static void fig_open_4k(unsigned n, int runs) {
  char hd[PATHLEN], nd[PATHLEN];
  sub(hd, "open4k_hints");
  sub(nd, "open4k_nohints");
  load_arg la = {hd, n, 4096, 1};
  setup(load_bitcask, &la);
  if (count_suffix(hd, ".hint") == 0) die(hd, "no .hint file after bc_merge");
  copy_dir(hd, nd);
  unlink_suffix(nd, ".hint");
  open_arg oh = {hd, n, 0}, on = {nd, n, 1};
  bench_sys sys[2] = {{"hints", "s", open_secs, &oh, hd},
                      {"nohints", "s", open_secs, &on, nd}};
  bench_figure("eng_open_4k", sys, 2, runs);
  bench_rmrf(hd);
  bench_rmrf(nd);
}

/* ----------------------------------------------------- eng_keydir_mem */

static double keydir_mem(void *p) {
  const open_arg *a = p;
  uint64_t before = bench_rss_now();
  bc_store *s = store_open(a->dir, 0);
  uint64_t after = bench_rss_now();
  if (bc_count(s) != a->n) die(a->dir, "bc_count after open is not the key count");
  bc_stats st;
  bc_ok(bc_stats_get(s, &st), s, "bc_stats_get");
  fprintf(stderr, BENCH_NAME ": eng_keydir_mem: bc_stats keydir_bytes %.1f/key\n",
          (double)st.keydir_bytes / a->n);
  store_close(s);
  /* Clamped: at smoke sizes RSS noise can exceed the keydir itself, and a
  ** negative value would read as a failed run. */
  double v = ((double)after - (double)before) / a->n - KLEN;
  return v < 0 ? 0 : v;
}

static void fig_keydir_mem(const char *dir, unsigned n, int runs) {
  open_arg oa = {dir, n, 0};
  bench_sys sys[1] = {{"bitcask", "bytes/key", keydir_mem, &oa, NULL}};
  bench_figure("eng_keydir_mem", sys, 1, runs);
}

/* ---------------------------------------------------- eng_keydir_k<L> */

/* The key lengths of the per-length keydir figures. */
static const unsigned kd_lens[] = {1, 4, 8, 12, 16, 17, 20, 24, 32, 40, 48, 64, 80, 100};
#define KD_NLENS (sizeof kd_lens / sizeof kd_lens[0])
#define KD_VLEN 100 /* value bytes of every record */
enum { KD_PUT = 0, KD_PUT_ORD, KD_PUT_RSS, KD_PUT_RSS_ORD, KD_OPEN, KD_OPEN_ORD,
       KD_OPEN_RSS, KD_OPEN_RSS_ORD, KD_NVAL };
static const char *const kd_sys[KD_NVAL] = {
    "put", "put_ordered", "put_rss", "put_rss_ordered",
    "open", "open_ordered", "open_rss", "open_rss_ordered"};

/* Keys of a length: as many distinct ones as klen bytes allow, up to n. */
static unsigned kd_count(unsigned klen, unsigned n) {
  if (klen >= 4) return n;
  uint64_t most = (uint64_t)1 << (8 * klen);
  return most < n ? (unsigned)most : n;
}

/* Key i of length klen into k: a constant prefix ("user:" and then '0's)
** and, in the last min(klen, 8) bytes, big-endian, i times an odd constant
** modulo 2^(8 min(klen, 8)) -- a bijection, so keys i < 2^(8 klen) are
** distinct, and consecutive i land far apart in key order (inserts in
** random key order).  Generated on the fly: no key array in the RSS. */
static void kd_key(unsigned char *k, unsigned klen, uint64_t i) {
  unsigned tail = klen < 8 ? klen : 8;
  uint64_t x = i * UINT64_C(0x9E3779B97F4A7C15);
  if (tail < 8) x &= (UINT64_C(1) << (8 * tail)) - 1;
  static const char pfx[] = "user:";
  for (unsigned j = 0; j < klen - tail; j++) k[j] = j < 5 ? (unsigned char)pfx[j] : '0';
  for (unsigned j = 0; j < tail; j++) k[klen - 1 - j] = (unsigned char)(x >> (8 * j));
}

/* The arguments of one length's two children. */
typedef struct kd_arg {
  const char *dir;
  unsigned klen, n;
  double val[KD_NVAL];
} kd_arg;

static uint64_t kd_keydir_bytes(bc_store *s) {
  bc_stats st;
  bc_ok(bc_stats_get(s, &st), s, "bc_stats_get");
  return st.keydir_bytes;
}

/* Build the ordered index: an ordered iterator's first step does. */
static void kd_order(bc_store *s) {
  bc_iter *it;
  bc_ok(bc_iter_open(s, &it), s, "bc_iter_open");
  const void *k;
  size_t kl;
  bc_ok(bc_iter_next(it, &k, &kl, NULL), s, "bc_iter_next");
  bc_iter_close(it);
}

/* Bytes per key beyond the key: keydir_bytes, and the RSS growth since
** rss0, before and after the ordered index is built; into v[0..3]. */
static void kd_measure(bc_store *s, const kd_arg *a, unsigned n, uint64_t rss0,
                       double *v) {
  if (bc_count(s) != n) die(a->dir, "bc_count is not the key count");
  v[0] = (double)kd_keydir_bytes(s) / n - a->klen;
  v[2] = ((double)bench_rss_now() - (double)rss0) / n - a->klen;
  kd_order(s);
  v[1] = (double)kd_keydir_bytes(s) / n - a->klen;
  v[3] = ((double)bench_rss_now() - (double)rss0) / n - a->klen;
}

/* Child 1, the write path: a fresh store, n keys in transactions of BATCH
** puts, measured; then bc_merge (every record then in a merged file with a
** hint) and close. */
static double kd_put(void *p) {
  kd_arg *a = p;
  unsigned n = kd_count(a->klen, a->n);
  bench_rmrf(a->dir);
  vals v = vals_make(KD_VLEN);
  bc_store *s = store_open(a->dir, 1);
  uint64_t rss0 = bench_rss_now();
  unsigned char k[128];
  for (unsigned i = 0; i < n; i += BATCH) {
    bc_txn *t;
    bc_ok(bc_txn_begin(s, &t), s, "bc_txn_begin");
    for (unsigned j = i; j < umin(n, i + BATCH); j++) {
      kd_key(k, a->klen, j);
      bc_ok(bc_txn_put(t, k, a->klen, 0, vals_get(&v, j), KD_VLEN), s, "bc_txn_put");
    }
    bc_ok(bc_txn_commit(t), s, "bc_txn_commit");
  }
  kd_measure(s, a, n, rss0, &a->val[KD_PUT]);
  bc_ok(bc_merge(s, NULL), s, "bc_merge");
  store_close(s);
  vals_free(&v);
  return 0;
}

/* Child 2, the hint-file load path: bc_open of that merged store. */
static double kd_open(void *p) {
  kd_arg *a = p;
  unsigned n = kd_count(a->klen, a->n);
  uint64_t rss0 = bench_rss_now();
  bc_store *s = store_open(a->dir, 0);
  kd_measure(s, a, n, rss0, &a->val[KD_OPEN]);
  store_close(s);
  return 0;
}

/* Run fn(a) in a forked child that sends a->val back; *rss_kib: its peak. */
static void kd_child(double (*fn)(void *), kd_arg *a, long *rss_kib) {
  bench_fork(fn, a, a->val, a->val, sizeof a->val, rss_kib, "a keydir memory run");
}

/* eng_keydir_k<L> for every length of kd_lens: one row per value, system
** kd_sys[i], unit bytes/key.  Memory is deterministic: one run each
** (run 1), no warm-up.  Then eng_keydir_worst: the largest keydir_bytes
** with the ordered index built, over the lengths of at least 4 bytes
** (shorter ones cannot have n distinct keys) and both paths. */
static void fig_keydir_len(unsigned n) {
  char dir[PATHLEN];
  sub(dir, "keydir_len");
  double worst = 0;
  for (size_t i = 0; i < KD_NLENS; i++) {
    kd_arg a;
    memset(&a, 0, sizeof a);
    a.dir = dir;
    a.klen = kd_lens[i];
    a.n = n;
    long rss_put, rss_open;
    kd_child(kd_put, &a, &rss_put);
    uint64_t disk = bench_du(dir);
    kd_child(kd_open, &a, &rss_open);
    char fig[32];
    snprintf(fig, sizeof fig, "eng_keydir_k%u", a.klen);
    for (int j = 0; j < KD_NVAL; j++)
      bench_emit(fig, kd_sys[j], 1, a.val[j], "bytes/key", j < KD_OPEN ? rss_put : rss_open,
                 disk);
    if (a.klen >= 4) {
      if (a.val[KD_PUT_ORD] > worst) worst = a.val[KD_PUT_ORD];
      if (a.val[KD_OPEN_ORD] > worst) worst = a.val[KD_OPEN_ORD];
    }
    bench_rmrf(dir);
  }
  bench_emit("eng_keydir_worst", "ordered", 1, worst, "bytes/key", 0, 0);
}

/* ---------------------------------------- eng_merge, eng_merge_space */

/* Live payload of the merge figures: key and value bytes of the live keys,
** nk * (16 + 4096); record headers, hint files and file headers excluded. */
static uint64_t live_bytes(unsigned nk) { return (uint64_t)nk * (KLEN + 4096); }

/* Untimed: a fresh store in dir of nk keys of 4096 bytes, each written twice
** (second pass in another order, new values: half the data is dead), synced,
** closed, and reopened, returned open. */
static bc_store *build_half_dead(const char *dir, unsigned nk) {
  bench_rmrf(dir);
  vals v = vals_make(4096);
  bc_store *s = store_open(dir, 1);
  put_all(s, nk, &v, SEED_ORDER, 0);
  put_all(s, nk, &v, SEED_ORDER2, nk);
  bc_ok(bc_sync(s), s, "bc_sync");
  store_close(s);
  vals_free(&v);
  settle();
  s = store_open(dir, 0);
  if (bc_count(s) != nk) die(dir, "bc_count after the build is not the key count");
  return s;
}

/* bc_merge of s, timed; dies unless it reclaimed something. */
static double merge_timed(bc_store *s) {
  uint64_t reclaimed = 0;
  double t0 = now_us();
  bc_ok(bc_merge(s, &reclaimed), s, "bc_merge");
  double t = (now_us() - t0) / 1e6;
  if (reclaimed == 0) die(bc_dir(s), "bc_merge reclaimed nothing");
  return t;
}

static double merge_bitcask(void *p) {
  const bw_arg *a = p;
  bc_store *s = build_half_dead(a->path, a->records);
  double t = merge_timed(s);
  if (bc_count(s) != a->records) die(a->path, "bc_count after merge");
  store_close(s);
  return (double)live_bytes(a->records) / t / 1e6;
}

static void fig_merge(unsigned nk, int runs) {
  char bcd[PATHLEN], raw[PATHLEN];
  sub(bcd, "merge_bitcask");
  sub(raw, "merge_raw.dat");
  bw_arg mb = {bcd, nk, live_bytes(nk)}, mr = {raw, nk, live_bytes(nk)};
  bench_sys sys[3] = {{"bitcask", "MB/s", merge_bitcask, &mb, bcd},
                      {"raw", "MB/s", raw_bw, &mr, raw},
                      {"raw_fsync", "MB/s", raw_bw_fsync, &mr, raw}};
  bench_figure("eng_merge", sys, 3, runs);
  bench_rmrf(bcd);
  bench_rmrf(raw);
}

static double merge_space(void *p) {
  const bw_arg *a = p;
  bc_store *s = build_half_dead(a->path, a->records);
  (void)merge_timed(s);
  store_close(s);
  return (double)bench_du(a->path) / (double)live_bytes(a->records);
}

static void fig_merge_space(unsigned nk, int runs) {
  char bcd[PATHLEN];
  sub(bcd, "merge_space_bitcask");
  bw_arg ms = {bcd, nk, live_bytes(nk)};
  bench_sys sys[1] = {{"bitcask", "x", merge_space, &ms, bcd}};
  bench_figure("eng_merge_space", sys, 1, runs);
  bench_rmrf(bcd);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: " BENCH_NAME " DIR N RUNS [FIGURE-PREFIX]\n");
    return 2;
  }
  snprintf(scratch, sizeof scratch, "%s", argv[1]);
  unsigned n = (unsigned)strtoul(argv[2], NULL, 10);
  int runs = atoi(argv[3]);
  if (n < 1000 || runs < 1) die("arguments", "N must be >= 1000 and RUNS >= 1");
  int made = mkdir(scratch, 0755) == 0;
  if (!made && errno != EEXIST) die(scratch, strerror(errno));
#ifndef HAVE_LMDB
  fprintf(stderr, BENCH_NAME ": lmdb skipped: liblmdb-dev not installed\n");
#endif
#ifndef HAVE_LEVELDB
  fprintf(stderr, BENCH_NAME ": leveldb skipped: libleveldb-dev not installed\n");
#endif
  unsigned n4 = umax(1000, n / 4), n8 = umax(1000, n / 8);
  char open100[PATHLEN];
  sub(open100, "open_hints");

  const char *only = argc == 5 ? argv[4] : NULL;
  if (bench_wanted(only, "eng_get")) fig_get("eng_get", n, 100, runs);
  if (bench_wanted(only, "eng_get_4k")) fig_get("eng_get_4k", n4, 4096, runs);
  if (bench_wanted(only, "eng_put_batch")) fig_put_batch(n, runs);
  if (bench_wanted(only, "eng_append_bw")) fig_append_bw(n, runs);
  int opens = bench_wanted(only, "eng_open_hints") || bench_wanted(only, "eng_keydir_mem");
  if (opens) fig_open_hints(open100, n, runs);
  if (bench_wanted(only, "eng_open_4k")) fig_open_4k(n4, runs);
  if (bench_wanted(only, "eng_keydir_mem")) fig_keydir_mem(open100, n, runs);
  if (bench_wanted(only, "eng_keydir_k")) fig_keydir_len(n);
  if (bench_wanted(only, "eng_merge")) fig_merge(n8, runs);
  if (bench_wanted(only, "eng_merge_space")) fig_merge_space(n8, runs);

  bench_rmrf(open100);
  if (made) rmdir(scratch);
  return 0;
}
