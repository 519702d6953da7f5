/*
** bitcask.h -- the public interface of the Bitcask storage engine.
**
** A Bitcask store is a directory of append-only data files plus an in-memory
** hash index, the keydir, that maps every live key to the place of its latest
** value (Sheehy & Smith, "Bitcask: A Log-Structured Hash Table for Fast
** Key/Value Data", Basho 2010, sections 2-3).  Writes append one record to the
** single active data file; reads are one keydir probe and one read (a copy
** out of the data file's mapping);
** deletes append a tombstone; merge rewrites the live records of the sealed
** files into new files with hint files and swaps them in atomically.  The
** bytes of every file are documented in docs/FORMAT.md.
**
** This header is the whole contract.  It has no SQLite dependency.
**
**   bc_options o;  bc_store *s;  char err[256];
**   bc_options_init(&o);  o.create = 1;
**   if (bc_open("data/kv", &o, &s, err, sizeof err) != BC_OK) die(err);
**   bc_put(s, "k", 1, 0, "v", 1);
**   bc_sync(s);                        // the commit point
**   bc_buf b = {0};  const void *v;  bc_info i;
**   if (bc_get(s, "k", 1, &b, &v, &i) == BC_OK) use(v, i.value_size);
**   bc_buf_free(&b);
**   bc_close(s);
**
** Keys and values are byte strings.  The engine never interprets them; each
** record also carries one opaque "meta" byte that the caller may use (the
** SQLite extension stores the storage classes of key and value there) and that
** comes back from every lookup, read and iteration without reading the value.
**
** Threads: every function taking a bc_store is safe to call from several
** threads at once (a mutex per store).  An iterator belongs to one thread.
**
** Processes: a store opened for writing holds an exclusive flock(2) on the
** file LOCK in its directory; the kernel drops it when the process dies, so a
** stale lock never blocks an open.  A second writer (another process, or a
** second bc_open of the same directory in this process) gets BC_LOCKED.
** A store writes only in the process that opened it: in a child made by
** fork() its handle may still be read -- only if no thread of the parent
** was inside a call on the store at the fork (a read takes the store's
** mutex, which such a thread would have left held) -- but every write fails with
** BC_INVALID and bc_close only closes descriptors and frees memory (the
** parent's lock and files are untouched); to write, the child opens the
** store anew (BC_LOCKED while the parent holds it).  See bc_fork_child.
** With the default POSIX I/O every descriptor is close-on-exec (a custom
** bc_io opens the data, hint and manifest files with the flags it chooses).
*/
#ifndef BITCASK_H
#define BITCASK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the on-disk format this library writes (docs/FORMAT.md): the
** version of the data files it creates and of a new store's BITCASK marker.
** Files with a higher version are refused with BC_VERSION; version-1 files
** (whose COMMIT records carry no durability claim) are still read. */
#define BC_FORMAT_VERSION 2

/* Largest key, in bytes.  An empty key (0 bytes) is allowed. */
#define BC_MAX_KEY_SIZE 65536u

/* Largest value, in bytes (256 MiB). */
#define BC_MAX_VALUE_SIZE (256u * 1024u * 1024u)

/* Default and smallest max_file_size, in bytes.  A record larger than
** max_file_size is still written whole: the file it lands in just grows past
** the limit and is sealed right after. */
#define BC_DEFAULT_MAX_FILE_SIZE (64u * 1024u * 1024u)
#define BC_MIN_MAX_FILE_SIZE 4096u

/* bc_options.max_open_files: the default's cap and the largest value. */
#define BC_DEFAULT_MAX_OPEN_FILES_CAP 1000u
#define BC_MAX_OPEN_FILES_LIMIT (1u << 20)

/* Status codes.  Every function that can fail returns one; bc_errmsg() then
** describes the failure with its context (file, errno text, pid...). */
typedef enum bc_status {
  BC_OK = 0,      /* success */
  BC_NOTFOUND,    /* the key is not live in the keydir (not an error) */
  BC_DONE,        /* an iterator has no more entries (not an error) */
  BC_NOMEM,       /* malloc failed; nothing was changed */
  BC_IOERR,       /* a system call failed (errno in the message); the store
                  ** stays consistent and the failed write left no record */
  BC_CORRUPT,     /* a record, hint or header failed its checksum or is
                  ** malformed; the damaged data is never returned */
  BC_LOCKED,      /* another writer holds the store's LOCK */
  BC_READONLY,    /* a write on a store opened with read_only */
  BC_INVALID,     /* a bad argument: oversize key or value, bad option; a
                  ** write through a handle of another process (fork) */
  BC_NOTSTORE,    /* the directory is missing (and create was not asked),
                  ** not a directory, or not empty and not a bitcask store */
  BC_VERSION,     /* a file of a newer format version than BC_FORMAT_VERSION */
  BC_BUSY,        /* another transaction of this store is open (see bc_txn);
                  ** retry after it commits or rolls back */
  BC_FULL,        /* as BC_IOERR, and the cause is a full disk or quota
                  ** (ENOSPC, EDQUOT): the next write after space returns
                  ** works */
  BC_EXISTS       /* bc_txn_insert: the key is live already (not an error;
                  ** nothing was written) */
} bc_status;

/* The constant name of a status, e.g. "BC_LOCKED".  Never NULL. */
const char *bc_status_name(bc_status st);

/* Durability of bc_sync() (the commit point), see docs/DESIGN.md sections 2.8
** and 4.2. */
typedef enum bc_sync_mode {
  BC_SYNC_FULL = 0, /* bc_sync returns after fsync of the active file, and of
                    ** the directory when files were created or renamed */
  BC_SYNC_NORMAL,   /* fsync at rotation, at close, and in bc_sync when at
                    ** least BC_NORMAL_SYNC_MS passed since the last fsync */
  BC_SYNC_OFF       /* never fsync; the OS writes back when it likes */
} bc_sync_mode;

/* BC_SYNC_NORMAL's window: a background thread of the store fsyncs the
** active file when it has held unsynced commits for this long, so a power
** failure loses at most about this much committed work. */
#define BC_NORMAL_SYNC_MS 500

/* The I/O layer.  Every open, read, write, fsync, ftruncate, rename, unlink
** and close of the engine goes through these functions, so tests can count
** calls or inject faults (ENOSPC, EIO, short writes).  Each has the contract
** of the POSIX call of the same name (return -1 and set errno on failure);
** ctx is passed through untouched.  Leave bc_options.io NULL for POSIX. */
typedef struct bc_io {
  void *ctx;
  int (*open)(void *ctx, const char *path, int flags, mode_t mode);
  ssize_t (*pread)(void *ctx, int fd, void *buf, size_t n, off_t off);
  ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t n, off_t off);
  int (*fsync)(void *ctx, int fd);
  int (*ftruncate)(void *ctx, int fd, off_t len);
  int (*rename)(void *ctx, const char *from, const char *to);
  int (*unlink)(void *ctx, const char *path);
  int (*close)(void *ctx, int fd);
} bc_io;

/* Options of bc_open().  Initialise with bc_options_init() and set fields. */
typedef struct bc_options {
  uint64_t max_file_size; /* bytes; rotate the active file when it reaches
                          ** this size; BC_MIN_MAX_FILE_SIZE..2^40; 0 means
                          ** BC_DEFAULT_MAX_FILE_SIZE */
  bc_sync_mode sync;      /* default BC_SYNC_FULL */
  int read_only;          /* 1: take no lock, write nothing, truncate nothing */
  int create;             /* 1: create the directory (and its parent must
                          ** exist) when it is missing, and adopt an existing
                          ** empty directory; 0: BC_NOTSTORE if not a store */
  const bc_io *io;        /* NULL: POSIX; else borrowed, must outlive the store */
  uint32_t max_open_files; /* descriptors of data files other than the active
                          ** one that the store keeps open at most (an LRU
                          ** cache: a file is opened again when it is needed
                          ** after being closed), 1..BC_MAX_OPEN_FILES_LIMIT;
                          ** 0 means the default: a quarter of the process's
                          ** soft RLIMIT_NOFILE at bc_open, at least 1 and at
                          ** most BC_DEFAULT_MAX_OPEN_FILES_CAP.  The limit in
                          ** effect (bc_stats.max_open_files) is the smaller
                          ** of this and that quarter: a value given can only
                          ** lower it, so the cache never takes the
                          ** descriptors the rest of the process (and the
                          ** store's OWNERS, hint files, directory fsync)
                          ** needs.  With POSIX
                          ** I/O in a writable store a sealed file's mapping
                          ** replaces its descriptor once it is read, so
                          ** few stay open; reads with pread (read_only, a
                          ** custom io) go through the cache. */
} bc_options;

/* Fill *opt with the defaults: max_file_size 0 (64 MiB), BC_SYNC_FULL,
** read_only 0, create 0, io NULL, max_open_files 0 (from RLIMIT_NOFILE). */
void bc_options_init(bc_options *opt);

/* Opaque handles. */
typedef struct bc_store bc_store;
typedef struct bc_iter bc_iter;
typedef struct bc_txn bc_txn;

/* What the keydir knows of a live key, without reading its value. */
typedef struct bc_info {
  uint64_t seq;        /* sequence number of the record holding the value */
  uint32_t value_size; /* bytes */
  uint8_t meta;        /* the opaque byte given to bc_put */
} bc_info;

/* A growable buffer owned by the caller, reused across reads to avoid an
** allocation per read.  Start it zeroed ({0}); the engine grows it with
** realloc as needed; free it with bc_buf_free().  Pointers into it returned
** by bc_get stay valid until the next call that uses the same buffer. */
typedef struct bc_buf {
  unsigned char *data;
  size_t cap;
} bc_buf;

void bc_buf_free(bc_buf *buf);

/* Open (and with opt->create, create) the store in directory `dir`.
**
** Recovery (docs/FORMAT.md "Recovery"): finish or undo an interrupted merge,
** then rebuild the keydir from each sealed file's hint file, or by walking
** the data file's records when its hint is missing, stale or damaged; walk
** the active file, and truncate its unsynced tail unless read_only: from the
** first record cut short or failing its CRC past the durable point that its
** COMMITs claim (after a power loss that part may be garbage in any
** pattern; an uncommitted transaction there is discarded whole).  A record
** failing its CRC elsewhere -- in a sealed file, or below that durable
** point -- is counted in bc_stats.corrupt and never returned.
** Damaged files (docs/FORMAT.md "Damaged files": a bad header, shorter than
** their hint, gone with their hint left) are read for what they still hold;
** a key whose newest version they lost reads BC_CORRUPT, never an older
** version.
**
** dir: borrowed, copied.  opt: borrowed; NULL means defaults.  *out: receives
** the new store on BC_OK, NULL otherwise.  err/errlen: on failure receives a
** NUL-terminated message naming the directory and the cause (may be NULL).
** Returns BC_OK, BC_NOMEM, BC_IOERR, BC_CORRUPT (an interrupted merge's
** manifest is damaged, or an output it lists is missing), BC_LOCKED
** (message names the holder's pid),
** BC_NOTSTORE, BC_VERSION, BC_INVALID (bad option).  A writer whose tail
** data file has other hard links (a store copied with `cp -al` or rsync
** --link-dest shares the original's inodes) first gives its directory a
** private copy of that file (docs/FORMAT.md "Recovery", step 5), so
** neither store's writes reach the other. */
bc_status bc_open(const char *dir, const bc_options *opt, bc_store **out,
                  char *err, size_t errlen);

/* Roll back an open transaction (its handle is freed: do not use it after),
** flush and (unless BC_SYNC_OFF) fsync the active file, release the lock and
** free the store and its keydir.  The store is freed even on failure; the
** return tells whether the final flush/fsync worked and the files agree
** with what the store served (BC_OK), or not (BC_IOERR, BC_FULL: e.g. a
** failed commit that could not be voided: the next open decides from the
** files).  In a process other than the one that opened it (a child after
** fork()) it only closes the descriptors and frees the memory: no flush,
** no fsync, no unlock of the parent's lock; BC_OK.  NULL is a no-op. */
bc_status bc_close(bc_store *s);

/* For the child of a fork(), e.g. from a pthread_atfork child handler: close
** the child's copy of the store's LOCK descriptor, so that the writer lock
** goes when the parent closes the store or dies, even while this child
** lives on.  The parent keeps its lock.  Only close(2): async-signal-safe.
** A no-op in the process that opened the store, for read-only stores and
** for NULL.  The handle stays readable; bc_close it when done. */
void bc_fork_child(bc_store *s);

/* The message of the last failure on this store (never NULL; "" when none).
** Owned by the store, valid until the next call on it from any thread: use
** it only when no other thread uses the store. */
const char *bc_errmsg(bc_store *s);

/* The same, copied into buf (NUL-terminated, cut to buflen) under the
** store's mutex: safe while other threads use the store (the message is the
** store's last failure, which may be another thread's if they interleave).
** Returns buf. */
char *bc_errmsg_copy(bc_store *s, char *buf, size_t buflen);

/* The store's directory as given to bc_open.  Owned by the store. */
const char *bc_dir(const bc_store *s);

/* Read-only stores only (else a no-op returning BC_OK): catch up with what
** the writing process (another bc_store, usually in another process) has
** committed since the open or the last refresh -- appended records, new data
** files after rotations, and, after a merge, the whole new file set (the
** keydir is rebuilt).  A record the writer is still appending is left for
** the next refresh; a transaction becomes visible with its COMMIT.  O(new
** records) normally; O(store) after a merge -- put off (BC_OK, nothing
** read) while snapshots of the store are open, see "snapshots".  Returns
** BC_OK, BC_IOERR, BC_NOMEM, BC_CORRUPT, BC_VERSION; on failure the store
** still serves what it had read. */
bc_status bc_refresh(bc_store *s);

/* Number of live keys.  O(1).  A key whose newest version is lost to
** damage (docs/FORMAT.md "Damaged files", rule 5) counts: bc_lookup and
** iterators see it, bc_get gives BC_CORRUPT, a new write replaces it. */
uint64_t bc_count(bc_store *s);

/* Keydir-only lookup: BC_OK and *info filled (may be NULL) if `key` is live,
** else BC_NOTFOUND.  No I/O.  O(1) expected. */
bc_status bc_lookup(bc_store *s, const void *key, size_t klen, bc_info *info);

/* Read the value of `key`: one keydir probe and one read of the record,
** whose CRC is verified.  With POSIX I/O (bc_options.io NULL) the read is a
** copy out of a read-only shared mapping of the data file (mapped at its
** first read; a mapping counts in the process's RSS as page cache does not,
** and is released when the file is merged away or the store closed); in a
** read_only store, or with a custom bc_io, it is one pread (after an open
** when the file's descriptor is not in the cache: max_open_files).  A device error
** under a mapped read raises SIGBUS instead of returning BC_IOERR (as with
** LMDB); damaged bytes that read fine still fail the CRC (BC_CORRUPT).  On BC_OK *value points to value_size bytes
** inside buf (valid until buf is reused or freed) and *info is filled.
** Returns BC_OK, BC_NOTFOUND, BC_CORRUPT (the record fails its CRC, or
** recovery found its newest version lost -- a data file cut short or gone,
** a transaction not all readable; the message names the file), BC_IOERR,
** BC_NOMEM. */
bc_status bc_get(bc_store *s, const void *key, size_t klen, bc_buf *buf,
                 const void **value, bc_info *info);

/* Standalone writes.  bc_put and bc_delete each append one record that is
** committed by itself (txn 0 in docs/FORMAT.md) and is visible at once; use
** a bc_txn for atomic groups.  While a transaction is open they return
** BC_BUSY and write nothing.
**
** Append a put record for key -> value with the opaque byte `meta` and make
** it the key's live version.  The record reaches the data file by the next
** bc_sync at the latest (it may sit in the write buffer until then) and is
** durable per the sync mode after bc_sync.  Rotates the active file first if
** it is at max_file_size.  value may be NULL when vlen is 0.
** Returns BC_OK, BC_INVALID (klen > BC_MAX_KEY_SIZE or vlen >
** BC_MAX_VALUE_SIZE; nothing written), BC_READONLY, BC_BUSY, BC_IOERR,
** BC_NOMEM. */
bc_status bc_put(bc_store *s, const void *key, size_t klen, uint8_t meta,
                 const void *value, size_t vlen);

/* Append a tombstone for `key` and remove it from the keydir.  Returns
** BC_NOTFOUND (and writes nothing) if the key is not live; else as bc_put. */
bc_status bc_delete(bc_store *s, const void *key, size_t klen);

/* The commit point of standalone writes: write the buffered records to the
** active file and fsync according to the sync mode.  If a write fails -- or,
** under BC_SYNC_FULL, the fsync -- every standalone write since the last
** commit point (successful bc_sync, rotation) is undone, in the keydir and
** in the file, and BC_IOERR returned; under the other modes a write that
** reached the file is committed.  Returns BC_OK or BC_IOERR (a read-only
** store has nothing to sync: BC_OK). */
bc_status bc_sync(bc_store *s);

/* ---------------------------------------------------------- transactions
**
** A transaction groups writes so that they take effect all at once, also
** across a crash (docs/FORMAT.md "Transaction markers"):
**
**   bc_txn *t;
**   bc_txn_begin(s, &t);                       // BC_BUSY if one is open
**   bc_txn_put(t, "a", 1, 0, "1", 1);
**   unsigned sp;  bc_txn_savepoint(t, &sp);
**   bc_txn_delete(t, "b", 1);
**   bc_txn_rollback_to(t, sp);                 // "b" is back (in t's view)
**   bc_txn_commit(t);                          // durable per the sync mode
**
** Its records are appended to the active file as they are written (so a
** transaction's size is bounded by the disk, not by memory) and are pending
** until a COMMIT record follows them: recovery applies a transaction whole
** or not at all.  Until commit, its writes live in a private overlay keydir:
** bc_txn_lookup, bc_txn_get and bc_iter_open_txn see them; every other
** reader (bc_lookup, bc_get, bc_iter_open) sees only committed data.
** Memory: the overlay holds one keydir entry per distinct key touched, and
** while a savepoint is open one undo entry (about 40 bytes) per write.
**
** One transaction per store at a time: transactions serialise, so there are
** no write conflicts to lose, and a second bc_txn_begin -- or a standalone
** bc_put, bc_delete or bc_merge -- gets BC_BUSY until the first ends.
** A transaction belongs to one thread at a time. */

/* Start a transaction.  Flushes buffered standalone records first.  *out
** receives the handle, owned by the caller until bc_txn_commit or
** bc_txn_rollback frees it.  Returns BC_OK, BC_BUSY, BC_READONLY, BC_IOERR,
** BC_NOMEM. */
bc_status bc_txn_begin(bc_store *s, bc_txn **out);

/* Like bc_put and bc_delete, within t: the record is appended (pending) and
** t's overlay updated.  bc_txn_delete returns BC_NOTFOUND (writes nothing)
** when the key is not live in t's view.  After a BC_IOERR that lost
** buffered records of t, t is doomed: every call but bc_txn_rollback
** returns BC_IOERR. */
bc_status bc_txn_put(bc_txn *t, const void *key, size_t klen, uint8_t meta,
                     const void *value, size_t vlen);
bc_status bc_txn_delete(bc_txn *t, const void *key, size_t klen);

/* Like bc_txn_put, only when key is not live in t's view (SQL's INSERT):
** else BC_EXISTS and nothing is written.  One keydir hash and one trip to
** the store where bc_txn_lookup + bc_txn_put take two of each. */
bc_status bc_txn_insert(bc_txn *t, const void *key, size_t klen, uint8_t meta,
                        const void *value, size_t vlen);

/* Like bc_lookup and bc_get, in t's view: its own writes, then committed
** data. */
bc_status bc_txn_lookup(bc_txn *t, const void *key, size_t klen, bc_info *info);
bc_status bc_txn_get(bc_txn *t, const void *key, size_t klen, bc_buf *buf,
                     const void **value, bc_info *info);

/* Savepoints nest.  bc_txn_savepoint opens one and sets *depth to its depth
** (1 for the outermost).  bc_txn_rollback_to(t, d) undoes every write made
** since savepoint d opened -- in t's view, and on disk with a ROLLBACK_TO
** record -- closes the savepoints deeper than d and keeps d open.
** bc_txn_release(t, d) closes d and every deeper one, keeping their writes.
** Returns BC_OK, BC_INVALID (no open savepoint d), BC_NOMEM, BC_IOERR. */
bc_status bc_txn_savepoint(bc_txn *t, unsigned *depth);
bc_status bc_txn_rollback_to(bc_txn *t, unsigned depth);
bc_status bc_txn_release(bc_txn *t, unsigned depth);

/* Two-phase commit, for hosts (SQLite) whose own commit runs between the
** two phases and may still fail.
**
** bc_txn_prepare is the commit point: it appends a COMMIT record and writes
** and syncs t's records per the sync mode (BC_SYNC_FULL: one fsync of the
** data file for the whole transaction; a rotation during the transaction
** adds its own).  After it t accepts only bc_txn_commit or bc_txn_rollback;
** t's writes are durable but not yet visible to other readers.  Returns
** BC_OK, BC_IOERR (nothing of t is committed), BC_NOMEM.
**
** bc_txn_commit prepares first if needed, then makes every write of t
** visible to all readers at once; after a successful prepare it does no I/O
** and cannot fail.  t is freed whatever the outcome.  Returns as
** bc_txn_prepare. */
bc_status bc_txn_prepare(bc_txn *t);
bc_status bc_txn_commit(bc_txn *t);

/* Discard t, prepared or not: nothing it wrote becomes visible, now or after
** recovery.  After a prepare it appends an abort (ROLLBACK_TO with S = 0)
** right after the COMMIT and syncs it; if that fails the store refuses
** writes until reopened.  Before, the same record only lets recovery drop
** t's records early.
** Frees t.  NULL is a no-op.  Returns BC_OK. */
bc_status bc_txn_rollback(bc_txn *t);

/* Merge (compaction): seal the active file if it holds records, then rewrite
** the live records of every sealed file that is not damaged into new data
** files with hint files, install them atomically (a MERGE manifest is the
** commit point, see docs/FORMAT.md) and delete the old files.  Damaged files
** (bc_stats.damaged_files) stay as they are, with the keys they serve or
** report; a live record failing its CRC makes its file damaged and the merge
** starts over without it.  Tombstones are dropped unless a file outside the
** merge may still hold an older version of the key.  A crash at any step
** leaves a store that opens with every live key and no deleted key.
** *reclaimed (may be NULL) receives the bytes the data and hint files shrank
** by (0 if they did not).  Returns BC_OK, BC_READONLY, BC_BUSY (a
** transaction is open), BC_IOERR, BC_NOMEM, BC_CORRUPT (nothing was
** swapped). */
bc_status bc_merge(bc_store *s, uint64_t *reclaimed);

/* Figures of bc_stats(). */
typedef struct bc_stats {
  uint64_t keys;            /* live keys */
  uint64_t data_files;      /* data files, active included */
  uint64_t hint_files;      /* hint files */
  uint64_t active_file_id;  /* id of the active data file (0 if read-only) */
  uint64_t total_bytes;     /* bytes of all data files */
  uint64_t live_bytes;      /* bytes of the records the keydir points to */
  uint64_t dead_bytes;      /* bytes of superseded records, tombstones and
                            ** transaction markers: what a merge can reclaim
                            ** (total_bytes - live_bytes - file headers) */
  uint64_t keydir_bytes;    /* heap bytes of the keydir (table + entries +
                            ** ordered index, when built) */
  uint64_t next_seq;        /* sequence number of the next record */
  uint64_t merges;          /* merges completed since open */
  uint64_t corrupt;         /* records failing their CRC found at open */
  uint64_t damaged_files;   /* data files found damaged (docs/FORMAT.md
                            ** "Damaged files": a bad header, shorter than
                            ** their hint, gone with their hint left, damaged
                            ** records, or records of a transaction that
                            ** cannot be applied whole): they are read for
                            ** what they still hold, never appended to, and
                            ** left out of merges, untouched on disk */
  uint64_t truncated_bytes; /* torn-tail bytes truncated at open */
  uint64_t fsyncs;          /* fsync calls (data files and directory)
                            ** made since open */
  uint64_t commits;         /* transactions committed since open */
  uint64_t max_file_size;   /* bytes, as in effect */
  uint64_t open_files;      /* descriptors of data files the store holds
                            ** open now: the active file's and those in the
                            ** cache (not LOCK, not a merge's outputs) */
  uint64_t max_open_files;  /* the cache's limit, as in effect (the
                            ** active file's descriptor is outside it) */
  uint64_t snapshots;       /* bc_snapshot handles open now */
  uint64_t snapshot_versions; /* versions saved for them: one per key
                            ** changed since each group of them opened */
  uint64_t snapshot_bytes;  /* heap bytes of those versions */
  uint64_t retired_files;   /* merge inputs kept readable for them */
  int recovery_pending;     /* read-only: the open (or last rebuild) found
                            ** what only a writer's open repairs -- a merge
                            ** to finish, leftovers of a crash, a torn or
                            ** header-less tail (or a write in progress):
                            ** a writer's bc_open would do that work */
  bc_sync_mode sync;        /* as in effect */
  int read_only;
} bc_stats;

/* Fill *out.  O(number of files).  Returns BC_OK. */
bc_status bc_stats_get(bc_store *s, bc_stats *out);

/* The key order of the ordered iterators and of bc_range's bounds: a and b
** compared as byte strings, memcmp over the common length, then the shorter
** first.  Returns <0, 0 or >0 as a sorts before, with or after b.  Takes no
** store and no lock; a or b may be NULL when its length is 0.  Never fails. */
int bc_key_cmp(const void *a, size_t an, const void *b, size_t bn);

/* Bounds and direction of an ordered iteration (bc_iter_open_range).  Keys
** are ordered by bc_key_cmp.  The bounds are copied by bc_iter_open_range. */
typedef struct bc_range {
  const void *lo;   /* lower bound, or NULL for none */
  size_t lo_len;
  int lo_excl;      /* 1: keys > lo; 0: keys >= lo */
  const void *hi;   /* upper bound, or NULL for none */
  size_t hi_len;
  int hi_excl;      /* 1: keys < hi; 0: keys <= hi */
  int desc;         /* 1: from the highest key down */
} bc_range;

/* Open an iterator over the live keys in [lo, hi] (r may be NULL: all keys,
** ascending).  It is a cursor, not a snapshot (for one, open it with
** bc_iter_open_snapshot): each bc_iter_next returns the
** next live key past the one it returned last, as the store is at that call,
** so keys come in strictly increasing order (decreasing for desc) and a key
** is never repeated; a key that stays live is never skipped, one added ahead
** of the cursor is seen, one deleted before the cursor reaches it is not.
** Writes, deletes and merges between steps, through any handle, are safe.
** The first step builds the keydir's ordered index if it is not built (one
** sort of the keys).  Each step is O(1) while the set of keys is unchanged,
** else O(log n).  *out receives the iterator, owned by the caller (free it
** with bc_iter_close before closing the store).  Returns BC_OK or BC_NOMEM. */
bc_status bc_iter_open_range(bc_store *s, const bc_range *r, bc_iter **out);

/* All keys, ascending, in the committed view. */
bc_status bc_iter_open(bc_store *s, bc_iter **out);

/* All keys, ascending, in t's view (committed keys with t's writes applied);
** t must outlive the iterator's bc_iter_next calls. */
bc_status bc_iter_open_txn(bc_txn *t, bc_iter **out);

/* Next entry: on BC_OK, *key and *klen point into the iterator (valid until the
** next bc_iter_next or bc_iter_close) and *info (may be NULL) is filled.
** Returns BC_OK, BC_DONE (no more keys; so are later calls), or BC_NOMEM (the
** ordered index could not be built; the call may be retried). */
bc_status bc_iter_next(bc_iter *it, const void **key, size_t *klen,
                       bc_info *info);

/* The same in the view of t (NULL: the committed view), whatever view the
** iterator was opened for.  The view may change from call to call (a
** transaction beginning or ending between the steps of a walk). */
bc_status bc_iter_next_view(bc_iter *it, bc_txn *t, const void **key,
                            size_t *klen, bc_info *info);

/* Live keys in t's view (NULL: committed).  O(keys t wrote). */
uint64_t bc_count_view(bc_store *s, bc_txn *t);

/* Free the iterator.  NULL is a no-op. */
void bc_iter_close(bc_iter *it);

/* ---- the fold (the Bitcask paper's fold: every key, unordered) ----
** Every live key with its value, in the order the records lie on disk rather
** than in key order: no ordered index is built and the values are read front
** to back.  The fold works on a snapshot of the keydir taken by
** bc_fold_open (a bitmap, one bit per 4 bytes of keydir arena: about 10 bits
** per key of 16 bytes; malloc'd) and pins the keydir until
** bc_fold_close, so that freed entries are not reused meanwhile (deleted
** entries' memory comes back at the close).
**
** With writes, deletes and merges going on between steps (through any
** handle): each key live at the open and live when the fold reaches it
** (also if it was deleted and put back meanwhile) is returned exactly once,
** with its value as of that step; a key deleted before the fold reaches it
** is not returned; keys added after the open are not returned.  On a
** read-only store outside a bc_snapshot, when t has written already, in a
** bc_snapshot that has saved versions already (something changed since it
** opened), or when the
** bitmap's memory cannot be had, the fold is an ordered iterator underneath
** (bc_iter_open's semantics, key order). */
typedef struct bc_fold bc_fold;

/* Open a fold of the committed store, or of t's view (t may be NULL).
** *out receives it, owned by the caller (bc_fold_close before closing the
** store).  Returns BC_OK or BC_NOMEM. */
bc_status bc_fold_open(bc_store *s, bc_txn *t, bc_fold **out);

/* The next key, in t's view (NULL: committed).  On BC_OK *key and *klen point
** into the fold's storage (valid until the next bc_fold_next or
** bc_fold_close), *info (may be NULL) is filled, and -- when buf is not
** NULL -- the value is read into buf as bc_get does (*value points into buf,
** the CRC verified).  Returns BC_OK, BC_DONE (no more keys), BC_NOMEM, the
** error of a doomed t (as bc_txn_get), or a read error of bc_get
** for that key (BC_CORRUPT, BC_IOERR): the fold then moves on past the key,
** so the next call may go on. */
bc_status bc_fold_next(bc_fold *fo, bc_txn *t, const void **key, size_t *klen,
                       bc_info *info, bc_buf *buf, const void **value);

/* Close the fold.  NULL is a no-op. */
void bc_fold_close(bc_fold *fo);

/* ---- snapshots ----
** A snapshot is a read view of the store as it was at one moment -- one
** committed state: every transaction's writes are in it whole or not at
** all -- whatever is committed, merged or (read-only store) refreshed
** while it is open, through any handle of this process:
**
**   bc_snapshot *sn;
**   bc_snapshot_open(s, &sn);
**   bc_snapshot_get(sn, "a", 1, &buf, &v, &info);  // a and b of one state,
**   bc_snapshot_get(sn, "b", 1, &buf, &v, &info);  // commits in between
**   bc_snapshot_close(sn);
**
** A data file is append-only, so the versions a snapshot needs are on disk
** until a merge: each logical change of the keydir made while snapshots
** are open saves the key's previous state for them (one version per key
** changed, per group of snapshots opened with no change between them:
** bc_stats.snapshot_versions and snapshot_bytes; an overlay keydir entry,
** 24 bytes + the key, plus its share of the hash table and arena), and
** the files a merge removes stay mapped (or open) in this
** process until the last snapshot that may read them closes.  With none
** open, reads and writes do no extra work.  Another process's snapshots
** do not hold files back: a read-only store whose writer merges away a
** file it had to close (more data files than max_open_files) reads
** BC_IOERR for that file's keys.
**
** Memory: a snapshot holds at most one version per key changed since it
** opened (so at most one per key that existed or was added meanwhile,
** however many commits there were), freed when the last snapshot of its
** group closes; a merge's retired files keep their disk space (unlinked,
** still open) until then.
** Standalone writes (bc_put, bc_delete) are seen by snapshots opened after
** them, before their commit point; when their bc_sync fails they are
** undone (their records never reached the file), and every snapshot opened
** since the first of them fails its reads with BC_IOERR (reopen or
** refresh it); snapshots opened before go on.
** In a read-only store, bc_snapshot_open first catches up with the writer
** (bc_refresh); while snapshots are open, a refresh that needs a rebuild
** because the writer merged is put off until none is; one that must
** rebuild because the writer aborted a transaction already read (an abort
** after a prepare) rebuilds, and the open snapshots then fail their reads
** with BC_BUSY.
** Handles belong to one thread at a time; close them before the store. */
typedef struct bc_snapshot bc_snapshot;

/* Open a snapshot of the committed state now.  *out receives the handle,
** owned by the caller until bc_snapshot_close.  Returns BC_OK, BC_NOMEM,
** or (read-only store) the error of the refresh. */
bc_status bc_snapshot_open(bc_store *s, bc_snapshot **out);

/* Move sn on to the committed state now (read-only store: after a
** refresh), as a close and an open would, keeping the handle: iterators
** opened on it see the new state from their next step; a fold opened on it
** before returns, from its next step, the new versions of
** the keys live at its open that still are, and -- when it walks a bitmap
** (see bc_fold_open) -- no key added since (in key order, those ahead).
** Returns as bc_snapshot_open (on BC_NOMEM sn keeps its old state; when a
** read-only store's refresh fails sn reads what the store then serves). */
bc_status bc_snapshot_refresh(bc_snapshot *sn);

/* Close sn (NULL is a no-op); the versions only it needed are freed. */
void bc_snapshot_close(bc_snapshot *sn);

/* bc_count, bc_lookup and bc_get in sn's view.  bc_snapshot_get may read a
** version the keydir no longer points to; it is checked as bc_get checks.
** Both return BC_NOMEM when a version sn needed could not be saved (a
** writer ran out of memory; sn is then useless: reopen it). */
uint64_t bc_snapshot_count(bc_snapshot *sn);
bc_status bc_snapshot_lookup(bc_snapshot *sn, const void *key, size_t klen,
                             bc_info *info);
bc_status bc_snapshot_get(bc_snapshot *sn, const void *key, size_t klen,
                          bc_buf *buf, const void **value, bc_info *info);

/* An ordered iterator (bc_iter_open_range) and a fold (bc_fold_open) over
** sn's view: bc_iter_next_view / bc_fold_next with t
** NULL read it (with a t, t's view, as for any iterator).  The keys are
** those live in sn, each with its version in sn.  sn must outlive them. */
bc_status bc_iter_open_snapshot(bc_snapshot *sn, const bc_range *r, bc_iter **out);
bc_status bc_fold_open_snapshot(bc_snapshot *sn, bc_fold **out);

/* ---- owners ----
** The file OWNERS in the store's directory holds whatever text the caller
** keeps there about who uses the store (the SQLite extension: one line per
** table using it).  The engine never reads meaning into it; bc_destroy
** deletes it with the store. */

/* Largest owners text, in bytes. */
#define BC_OWNERS_MAX (1u << 20)

/* Read OWNERS: *text receives a malloc'd copy, NUL-terminated (the caller
** frees it), and *len its length; *text is NULL when the file does not
** exist.  Any store, read-only included.  Returns BC_OK, BC_IOERR, BC_NOMEM,
** BC_CORRUPT (larger than BC_OWNERS_MAX). */
bc_status bc_owners_read(bc_store *s, char **text, size_t *len);

/* The same without opening the store (no lock, no recovery): a look at
** OWNERS in directory dir, e.g. to decide whether to open the store at all.
** The text may be replaced just after; decisions that must hold are made
** on the open store.  Returns BC_OK (*text NULL when there is no file),
** BC_IOERR or BC_FULL (errno says why), BC_NOMEM, BC_CORRUPT, BC_INVALID
** (dir too long). */
bc_status bc_owners_peek(const char *dir, char **text, size_t *len);

/* Replace OWNERS with text (len bytes, borrowed) atomically: written to
** OWNERS.tmp, synced unless BC_SYNC_OFF, renamed into place, the directory
** synced.  A reader sees the old text or the new.  Only a writable store
** in the process that opened it: its writer lock serialises replacements
** across processes; between threads of the process, a read-modify-write
** is the caller's to serialise.  Returns BC_OK, BC_READONLY, BC_INVALID
** (too long, or another process's handle), BC_IOERR, BC_FULL. */
bc_status bc_owners_write(bc_store *s, const char *text, size_t len);

/* Delete a closed store: its data, hint, merge, manifest, lock, owners and
** marker files, then the directory itself if the store's marker says the engine
** created it and it is then empty.  Files the engine did not write are left
** alone (so a non-empty directory stays).  The store must not be open in this
** process.  Returns BC_OK (also when `dir` does not exist), BC_NOTSTORE (the
** directory is not a bitcask store: nothing is deleted), BC_LOCKED (another
** process has it open), BC_IOERR.  err as for bc_open. */
bc_status bc_destroy(const char *dir, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* BITCASK_H */
