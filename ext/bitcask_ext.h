/*
** bitcask_ext.h -- private declarations shared by the files of the SQLite
** extension (ext/), which is compiled against include/bitcask.h alone.  The
** extension's only public symbol is sqlite3_bitcask_init (ext/vtab.c).
**
**   codec.c        SQLite values <-> the engine's key bytes, value bytes, meta
**   range.c        key ranges for a walk: bounds, LIKE/GLOB prefixes, UTF-16
**   options.c      CREATE VIRTUAL TABLE arguments and the store's directory
**   registry.c     one shared bc_store per directory per process
**   owners.c       which tables own a store (the store's OWNERS file)
**   functions.c    bitcask_merge(), bitcask_stats()
** and the `bitcask` virtual-table module, whose files share vtab.h:
**   vtab.c         the table's life (xCreate .. xRename) and the entry point
**   watch.c        CREATE and DROP finished or undone with the transaction
**   plan.c         xBestIndex: the query plans
**   cursor.c       xOpen .. xColumn: the reads
**   update.c       xUpdate: the writes, statement atomicity
**   transaction.c  xBegin .. xRollbackTo: the table's bc_txn
*/
#ifndef BITCASK_EXT_H
#define BITCASK_EXT_H

#include <sqlite3ext.h>
#include <stdint.h>
#include <sys/types.h>
#include "bitcask.h"

/* The collation of the primary-key index the table declares (vtab.c):
** BINARY's comparison under another name, registered on every connection
** that loads the extension. */
#define BCX_PK_COLLATION "bitcask_pk"

/* ---- codec.c ---------------------------------------------------------- */

/* The meta byte stored with every record (docs/FORMAT.md "meta"):
**   bits 0-2  storage class of the value: BCX_NULL .. BCX_BLOB
**   bit  3    the key is a REAL with an integral value, stored in the
**             INTEGER key form so that 1 and 1.0 are one key
**   bit  4    (with bit 3) the key is the REAL -0.0: the key 0, whose sign
**             comes back as a native table keeps it (older builds, which do
**             not set it, read such a key as 0.0) */
#define BCX_NULL 0
#define BCX_INTEGER 1
#define BCX_REAL 2
#define BCX_TEXT 3
#define BCX_BLOB 4
#define BCX_VALUE_MASK 0x07
#define BCX_KEY_REAL 0x08
#define BCX_KEY_NEGZERO 0x10
#define BCX_KEY_MASK (BCX_KEY_REAL | BCX_KEY_NEGZERO) /* the key bits of meta */

/* Key encoding: a tag byte, then the payload.  Keys that SQLite compares
** equal encode to the same bytes; the tags follow SQLite's order of storage
** classes (numbers < text < blob). */
#define BCX_TAG_REAL_LOW 0x0F  /* 8 bytes: a REAL below -2^63, order-preserving bits */
#define BCX_TAG_INT 0x10       /* 8 bytes: big-endian int64 with its sign bit flipped
                               ** (an INTEGER, or an integral REAL); 16 bytes: the
                               ** same of floor(r), then r's order-preserving bits
                               ** (a non-integral REAL).  See codec.c. */
#define BCX_TAG_REAL_HIGH 0x11 /* 8 bytes: a REAL of 2^63 or more, order-preserving bits */
#define BCX_TAG_TEXT 0x30 /* UTF-8 bytes */
#define BCX_TAG_BLOB 0x40 /* bytes */

/* Largest text or blob key payload, in bytes (the tag takes one byte). */
#define BCX_MAX_KEY_PAYLOAD (BC_MAX_KEY_SIZE - 1)

/* A key encoded for the engine.  Small keys live in `inline_buf`; larger
** ones in `heap` (sqlite3_malloc'd, freed by bcx_key_clear). */
typedef struct bcx_key {
  const unsigned char *data; /* -> inline_buf or heap */
  size_t len;
  uint8_t key_meta;          /* 0, BCX_KEY_REAL or BCX_KEY_REAL|BCX_KEY_NEGZERO */
  unsigned char *heap;
  unsigned char inline_buf[64];
} bcx_key;

/* The same for a bound of a range (key > ?): any length, as it is only
** compared with keys, never stored. */
int bcx_key_encode_bound(sqlite3_value *v, bcx_key *out);

/* Encode `v` as a key.  Returns SQLITE_OK, SQLITE_MISMATCH for NULL (the
** caller reports "NOT NULL constraint failed"), SQLITE_TOOBIG for a payload
** over BCX_MAX_KEY_PAYLOAD, SQLITE_NOMEM.  On SQLITE_OK call bcx_key_clear. */
int bcx_key_encode(sqlite3_value *v, bcx_key *out);
void bcx_key_clear(bcx_key *k);
/* A short key's `data` points into the struct itself: after the struct is
** moved (memcpy, realloc of an array of keys) call this on the new copy. */
void bcx_key_rebase(bcx_key *k);

/* ---- range.c: key ranges for a walk -------------------------------- */

/* One range of encoded keys, bounds owned (sqlite3_malloc'd) or NULL for
** unbounded.  Encoded keys compare as bytes in SQLite's order (codec.c). */
typedef struct bcx_range {
  unsigned char *lo, *hi;
  size_t lo_len, hi_len;
  int lo_excl, hi_excl;
} bcx_range;

/* The ranges a walk covers, in ascending key order and disjoint. */
typedef struct bcx_ranges {
  bcx_range *r; /* sqlite3_malloc'd */
  int n;
} bcx_ranges;

enum { BCX_PATTERN_NONE = 0, BCX_PATTERN_LIKE = 1, BCX_PATTERN_GLOB = 2 };

/* Build the ranges holding every key k with lo < k (<= when !lo_excl) and
** k < hi (<= when !hi_excl) -- lo/hi NULL for no bound -- that can match
** `pattern` under LIKE (ASCII case-insensitive) or GLOB: the pattern's
** literal prefix, for TEXT keys, BLOB keys (matched as text) and, when the
** prefix could begin a number's text, all numeric keys.  A superset of the
** matches: SQLite still applies the pattern.  out->n == 0 means no key can
** match.  `utf16`: the database's encoding is UTF-16, where SQLite reads a
** BLOB as UTF-16 text, so a pattern takes every BLOB key.  SQLITE_OK or
** SQLITE_NOMEM; free with bcx_ranges_free. */
int bcx_ranges_build(bcx_ranges *out, const bcx_key *lo, int lo_excl,
                     const bcx_key *hi, int hi_excl, int pattern_op,
                     const unsigned char *pattern, int utf16);
/* The longest common ASCII prefix of the UTF-8 strings a and b, in bytes.
** Every string that a UTF-16 database's BINARY order puts between a and b
** starts with it, and so does the UTF-8 key of such a string. */
size_t bcx_utf16_prefix(const unsigned char *a, size_t an, const unsigned char *b,
                        size_t bn);
/* *lo = the TEXT key p[0..n), *hi = the least key above every TEXT key
** starting with it.  SQLITE_OK (bcx_key_clear both) or SQLITE_NOMEM. */
int bcx_key_text_prefix(const unsigned char *p, size_t n, bcx_key *lo, bcx_key *hi);
void bcx_ranges_free(bcx_ranges *r);
/* Bytes of the pattern's literal prefix: up to its first wildcard (LIKE:
** % _; GLOB: * ? [). */
size_t bcx_pattern_prefix(int pattern_op, const unsigned char *pattern);
/* 1 when `bound`, the right-hand side of a lower (is_lo) or an upper bound
** on the key, is one that SQLite's LIKE optimization derived from the
** constant `pattern` (range.c says which); such a bound is left to SQLite,
** the pattern's own ranges deciding what is walked.  0 otherwise (also for
** a pattern with no literal prefix, or a NULL bound). */
int bcx_pattern_bound_derived(int pattern_op, const unsigned char *pattern, int is_lo,
                              sqlite3_value *bound);

/* Set ctx's result to the key whose engine bytes are `key` (klen) and meta
** byte `meta`.  Returns SQLITE_OK or SQLITE_CORRUPT (unknown tag). */
int bcx_key_result(sqlite3_context *ctx, const void *key, size_t klen,
                   uint8_t meta);

/* A value encoded for the engine: `data` points either into the
** sqlite3_value (valid while it is) or into `num`. */
typedef struct bcx_value {
  const void *data;
  size_t len;
  uint8_t value_meta; /* BCX_NULL .. BCX_BLOB */
  unsigned char num[8];
} bcx_value;

/* Encode `v` as a value.  Returns SQLITE_OK, SQLITE_TOOBIG (over
** BC_MAX_VALUE_SIZE, checked before a zeroblob is materialised), or
** SQLITE_NOMEM. */
int bcx_value_encode(sqlite3_value *v, bcx_value *out);

/* Set ctx's result from value bytes and meta.  Returns SQLITE_OK or
** SQLITE_CORRUPT (a number of the wrong size). */
int bcx_value_result(sqlite3_context *ctx, const void *data, size_t len,
                     uint8_t meta);

/* ---- options.c -------------------------------------------------------- */

/* The parsed arguments of CREATE VIRTUAL TABLE ... USING bitcask(...). */
typedef struct bcx_options {
  char *dir;             /* sqlite3_malloc'd; NULL when not given */
  uint64_t max_file_size; /* 0 when not given */
  int sync;              /* bc_sync_mode; -1 when not given */
  int readonly;          /* 1, 0; -1 when not given */
  uint32_t max_open_files; /* 0 when not given */
} bcx_options;

/* Parse argv[3..argc-1].  On error returns SQLITE_ERROR and sets *pzErr (a
** sqlite3_mprintf'd message naming the table and the option). */
int bcx_options_parse(const char *table, int argc, const char *const *argv,
                      bcx_options *out, char **pzErr);
void bcx_options_clear(bcx_options *o);

/* Where the store of table zTab in schema zDb lives:
**  - opt->dir absolute: as is; relative: against the directory of the
**    database file (of the current directory for an in-memory database);
**  - no dir, file database: "<database file>-<table>.bitcask";
**  - no dir, in-memory or temporary database: NULL in *pzPath and
**    *pIsTemp = 1 (the caller makes a private temporary directory).
** *pzPath is sqlite3_malloc'd.  Returns SQLITE_OK or SQLITE_NOMEM. */
int bcx_store_path(sqlite3 *db, const char *zDb, const char *zTab,
                   const bcx_options *opt, char **pzPath, int *pIsTemp);

/* ---- registry.c ------------------------------------------------------- */

/* One open bc_store shared by every connection of this process that uses
** the same directory (identified by device and inode), so the writer lock is
** taken once.  Reference-counted under a process-wide mutex.
**
** The writer lock is taken at the first write (registry.c, "Readers and
** the writer"): until then the store of a writable table is open read-only,
** following whichever process writes it (`following`). */
typedef struct bcx_shared bcx_shared;
struct bcx_shared {
  bc_store *_Atomic store; /* the engine handle; replaced once, by the
                     ** writer's, when a following store is first written
                     ** (bcx_shared_write): read it anew at each use */
  int following;     /* a writable table's store, open read-only: no table
                     ** of the process has written it yet, or another
                     ** process held the writer lock then */
  bc_store *old;     /* the read-only store the writer's replaced, still
                     ** read by statements that began before; closed when
                     ** every table that held sh then has moved on */
  int old_users;     /* tables that may still read `old` */
  bc_options opts;   /* the options it was opened with (for the writer's) */
  _Atomic unsigned gen; /* moves on when `store` is replaced */
  _Atomic unsigned long long changes; /* moves on at every xUpdate, begin,
                     ** commit and rollback of a table of this store in this
                     ** process (what a table's reads see may change then): a
                     ** value a probe read ahead of xColumn is read again
                     ** when it moved (cursor.c) */
  char *path;        /* directory, malloc'd */
  int nref;          /* vtabs holding it */
  int destroy;       /* DROP TABLE ran: destroy the files at the last release */
  int read_only;     /* opened read-only: shared only with read-only tables */
  int remove_dir;    /* a private temporary directory: rmdir at destroy */
  uint64_t dev, ino; /* identity of the directory */
  pid_t pid;         /* the process that opened it (registry.c, "fork()") */
  bcx_shared *next;
};

/* Once per loaded copy of the extension: the registry's fork handlers. */
void bcx_registry_init(void);

/* 1 when sh was opened by another process: this is a child made by fork()
** using a connection of its parent.  Such a store is read-only here. */
int bcx_shared_inherited(const bcx_shared *sh);

/* Open (or share) the store at `path`.  create: may create the directory
** and the store.  write: the caller is about to write (or create): the
** store is opened (or made) the writer's at once (as bcx_shared_write);
** else a writable table's store is opened read-only, following, until its
** first write.  opt->read_only tables always follow.  On failure *pzErr
** gets a message naming zTab.  Returns SQLITE_OK, SQLITE_BUSY (locked by
** another process, or being dropped), SQLITE_CANTOPEN, SQLITE_CORRUPT,
** SQLITE_IOERR, SQLITE_NOMEM.  *gen (may be NULL) receives sh->gen. */
int bcx_shared_open(const char *zTab, const char *path, int create, int write,
                    const bc_options *opt, bcx_shared **out, unsigned *gen,
                    char **pzErr);

/* Make sh the writer's: a no-op when it is; else open the store for
** writing (the writer lock, recovery) and put it in place of the read-only
** one, which stays open for the statements reading it (bcx_shared_moved).
** Returns SQLITE_OK, or SQLITE_BUSY naming the process that holds the lock
** (retry: it succeeds once that process is gone), or the error of the
** open, with *pzErr naming zTab. */
int bcx_shared_write(bcx_shared *sh, const char *zTab, char **pzErr);
/* The same with the registry's mutex held (owners.c). */
int bcx_shared_write_locked(bcx_shared *sh, const char *zTab, char **pzErr);

/* A table with no cursor open (so reading nothing through an old store)
** has seen sh at generation *gen: bring it to sh's, and close sh's old
** store once no table may read it. */
void bcx_shared_moved(bcx_shared *sh, unsigned *gen);

/* Mark the store for destruction (its table was dropped): its files are destroyed at
** the last release; remove_dir also removes a private temporary directory. */
void bcx_shared_mark_destroy(bcx_shared *sh, int remove_dir);

/* Drop one reference (of a table that saw sh at generation gen); at the
** last one close the store, and if it is marked for destruction destroy its files.
** Returns SQLITE_OK or the error of the close/destroy. */
int bcx_shared_release(bcx_shared *sh, unsigned gen);

/* The registry's mutex, for the owners file's read-modify-writes. */
void bcx_registry_lock(void);
void bcx_registry_unlock(void);

/* ---- owners.c: which tables own a store ------------------------------- */

/* Table zTab of schema zDb and the store sh it has open for writing (the
** rules are at the top of owners.c).  Each returns SQLITE_OK or an error
** with *pzErr (sqlite3_mprintf'd) naming the table.
**   check   first use: SQLITE_CANTOPEN when the table is not an owner (a
**           copy of the database); adopts or updates the owners file
**   join    CREATE VIRTUAL TABLE: record the table as an owner
**   leave   DROP TABLE: remove the table; *pDelete = 1 when no owner is
**           left and the store is to be deleted (0 also when the table was
**           not an owner: the store is not touched)
**   rename  ALTER TABLE RENAME: the table's line gets the new name
**   shared  *pShared = 1 when tables other than this one own the store */
int bcx_owners_check(sqlite3 *db, const char *zDb, const char *zTab,
                     bcx_shared *sh, char **pzErr);
/* The check made before the store at zPath is opened, from a look at its
** owners file (no lock, no recovery): SQLITE_CANTOPEN with the message when
** the table is plainly not an owner, so that a copy of a database never
** opens the original's store for writing; the error of a failed read
** (SQLITE_IOERR, SQLITE_FULL, ...); SQLITE_OK otherwise (the check on the
** open store decides). */
int bcx_owners_precheck(sqlite3 *db, const char *zDb, const char *zTab,
                        const char *zPath, char **pzErr);
int bcx_owners_join(sqlite3 *db, const char *zDb, const char *zTab,
                    bcx_shared *sh, char **pzErr);
int bcx_owners_leave(sqlite3 *db, const char *zDb, const char *zTab,
                     bcx_shared *sh, int *pDelete, char **pzErr);
int bcx_owners_rename(sqlite3 *db, const char *zDb, const char *zOld,
                      const char *zNew, bcx_shared *sh, char **pzErr);
int bcx_owners_shared(sqlite3 *db, const char *zDb, const char *zTab,
                      bcx_shared *sh, int *pShared, char **pzErr);
/* A CREATE VIRTUAL TABLE undone (ROLLBACK): the table's line is removed
** and the file written even when no line is left; *pEmpty = 1 when none
** is (the caller deletes the store only if that CREATE made it). */
int bcx_owners_unjoin(sqlite3 *db, const char *zDb, const char *zTab,
                      bcx_shared *sh, int *pEmpty, char **pzErr);
/* CREATE VIRTUAL TABLE at the default location found a store there (no
** table of that name exists in the database, so it was left by an earlier
** one): SQLITE_OK when every line of its OWNERS (looked at, not locked) is
** stale -- my database and table name, or a database that is gone -- so
** the store may be deleted and the table start empty; SQLITE_ERROR with
** the message naming the live table otherwise (another table names the
** directory with dir=); the error of a failed read. */
int bcx_owners_stale(sqlite3 *db, const char *zDb, const char *zTab,
                     const char *zPath, char **pzErr);

/* Room for an engine error message (bc_errmsg_copy). */
#define BCX_ERRMSG_MAX 768

/* How many vtabs hold sh now (read under the registry's mutex). */
int bcx_shared_refs(bcx_shared *sh);

/* 1 when a table of this process has the store at `path` open (a directory
** that does not exist, or is open by nobody here: 0). */
int bcx_shared_is_open(const char *path);

/* Map an engine status to the SQLite result code. */
int bcx_rc(bc_status st);

/* ---- vtab.c / functions.c -------------------------------------------- */

typedef struct bitcask_vtab bitcask_vtab;

/* Per-connection client data of the module and the SQL functions. */
typedef struct bcx_module {
  sqlite3 *db;
  bitcask_vtab *tables; /* every connected bitcask table of this connection */
  bitcask_vtab *dropped; /* tables whose DROP waits for the transaction's
                         ** end (watch.c, "Creating and dropping") */
  int watch_in_txn;     /* the watcher is part of the open transaction */
  int watch_level;      /* the innermost savepoint level open, -1 for none */
  struct bcx_tempdir *tempdirs; /* private stores of in-memory tables */
  pid_t pid;            /* the process that loaded it: a child of fork()
                        ** closing the connection deletes no private store */
} bcx_module;

/* A connected bitcask table, as the SQL functions see it. */
bitcask_vtab *bcx_find_table(bcx_module *m, const char *zDb, const char *zTab);
bitcask_vtab *bcx_table_list(bcx_module *m);
bitcask_vtab *bcx_table_next(bitcask_vtab *t);
const char *bcx_table_name(bitcask_vtab *t);
const char *bcx_table_schema(bitcask_vtab *t);
bcx_shared *bcx_table_store(bitcask_vtab *t);
const char *bcx_table_error(bitcask_vtab *t); /* last error message */
/* Make t's store the writer's (registry.c, "Readers and the writer"; a
** no-op for a read-only table): SQLITE_OK, or an error with the message in
** bcx_table_error(t). */
int bcx_table_writer(bitcask_vtab *t);
/* 1 when t is a read-only table (readonly=1, or a read-only database). */
int bcx_table_readonly(bitcask_vtab *t);

/* Register bitcask_merge() and bitcask_stats() on db. */
int bcx_register_functions(sqlite3 *db, bcx_module *m);

#endif /* BITCASK_EXT_H */
