/*
** internal.h -- the engine's private declarations: struct bc_store and the
** interfaces between the engine's files.  Nothing here is part of the public
** contract (bitcask.h); tests may include it to reach the record encoder and
** the keydir directly.
**
** Map of the engine, one concept per file:
**   io.c        the default POSIX bc_io, write-all/read-all, directory fsync
**   error.c     status names and the store's error message (bc_seterr)
**   layout.c    file names and paths, name parsing, the directory listing
**   record.c    the on-disk format: encode/decode of every header, record,
**               hint entry and the MERGE manifest (docs/FORMAT.md's one home)
**   keydir.c    the in-memory index (key -> latest record): arena + hash
**   keytree.c   the keydir's ordered index (B+tree of refs in key order)
**   datafile.c  data files: create, read one record, scan records
**   files.c     the table of open data files, their descriptor cache,
**               live-byte accounting
**   hint.c      hint files: build, write, load
**   marker.c    the BITCASK marker file
**   lock.c      the LOCK file (flock + pid); which process may write
**               (fork: bc_foreign)
**   owners.c    the OWNERS file, kept for the caller (never interpreted)
**   active.c    the write path: write buffer, undo on failure, rotation, sync
**   replay.c    applying a stream of records to the keydir (recovery and
**               the follower): transactions, damage, the tail's claims
**   recovery.c  what bc_open does to rebuild the keydir, step by step
**   follow.c    a read-only store following its writer (bc_refresh)
**   merge.c     compaction and its crash-safe install / redo
**   txn.c       transactions: overlay keydir, savepoints, commit
**   iter.c      ordered iterators (ranges, in a store's or a txn's view)
**   fold.c      unordered scans of every live key in on-disk order
**   versions.c  what open snapshots need kept: the pre-images changes save
**               for them, the files a merge retires while they may read them
**   snapshot.c  read snapshots: bc_snapshot_open/get/refresh/close
**   store.c     the public API: open/close/get/put/delete/sync/stats/destroy
**
** Locking: every public function takes s->mu for its whole duration; every
** function declared here expects the caller to hold it (or to own the store
** exclusively, as bc_open does before publishing it).
*/
#ifndef BC_INTERNAL_H
#define BC_INTERNAL_H

#include "bitcask.h"
#include "layout.h"

#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdint.h>
#include <stddef.h>

/* ---------------------------------------------------------------- format */

#define BC_FILE_HEADER_SIZE 32u
#define BC_REC_HEADER_SIZE 32u
#define BC_HINT_HEADER_SIZE 32u
#define BC_HINT_ENTRY_SIZE 40u
#define BC_HINT_TRAILER_SIZE 16u
#define BC_FILE_FLAG_MERGED 1u
/* Hint files and the MERGE manifest did not change with data file format 2:
** they keep version 1. */
#define BC_HINT_VERSION 1u
#define BC_MANIFEST_VERSION 1u
/* The value of a COMMIT: the record count (u64), then, from data file format
** 2 on, the durability claim (u64): the offset in its own data file up to
** which that file was known durably synced when the COMMIT was appended. */
#define BC_COMMIT_V1_SIZE 8u
#define BC_COMMIT_SIZE 16u

enum { BC_REC_PUT = 1, BC_REC_TOMBSTONE = 2, BC_REC_COMMIT = 3,
       BC_REC_ROLLBACK_TO = 4 };

/* Largest record offset and sequence number the keydir can hold (40 and 56
** bits, see keydir.c).  Rotation keeps offsets below max_file_size <= 2^40. */
#define BC_MAX_OFFSET ((UINT64_C(1) << 40) - 1)
#define BC_MAX_SEQ ((UINT64_C(1) << 56) - 1)
#define BC_MAX_FILE_SIZE_LIMIT (UINT64_C(1) << 40)

/* A record header, decoded. */
typedef struct bc_rec {
  uint8_t type;
  uint8_t meta;
  uint64_t seq;
  uint64_t txn;
  uint32_t klen;
  uint32_t vlen;
} bc_rec;

/* One record as seen by a scan of a data file or a walk of a hint file.  key
** points into the reader's buffer (valid during the callback only).  value is
** NULL when read from a hint.  arg is the first 8 bytes of a transaction
** marker's value: S of a ROLLBACK_TO, the record count of a COMMIT. */
typedef struct bc_recinfo {
  bc_rec r;
  uint64_t off;              /* offset of the record in its data file */
  const unsigned char *key;  /* borrowed */
  const unsigned char *value; /* borrowed, NULL from a hint */
  uint64_t arg;
  int damaged;               /* the record fails its CRC: header, key and
                             ** value are untrusted (scans only) */
  int hashed;                /* hash is the key's bc_kd_hash in the store's
                             ** keydir (hint loads, which hash ahead) */
  uint64_t hash;
} bc_recinfo;

static inline uint64_t bc_rec_size(uint32_t klen, uint32_t vlen) {
  return (uint64_t)BC_REC_HEADER_SIZE + klen + vlen;
}

/* Inline, and written so that the compiler makes each one a single load or
** store (on a little-endian machine): hint files are decoded field by field
** at open, millions of times. */
static inline void bc_put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}
static inline void bc_put_u64(unsigned char *p, uint64_t v) {
  bc_put_u32(p, (uint32_t)v);
  bc_put_u32(p + 4, (uint32_t)(v >> 32));
}
static inline uint32_t bc_get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}
static inline uint64_t bc_get_u64(const unsigned char *p) {
  return (uint64_t)bc_get_u32(p) | (uint64_t)bc_get_u32(p + 4) << 32;
}

void bc_file_header_encode(unsigned char out[BC_FILE_HEADER_SIZE], uint32_t id,
                           uint32_t flags);
/* 0: valid (fields filled); -1: bad magic or CRC.  The version is returned
** unchecked so the caller can tell BC_VERSION from damage. */
int bc_file_header_decode(const unsigned char in[BC_FILE_HEADER_SIZE],
                          uint32_t *version, uint32_t *flags, uint32_t *id);

/* Encode the 32-byte header of r (whose klen/vlen describe key and value) and
** compute the record CRC over header bytes 4..31, key and value. */
void bc_rec_encode(unsigned char out[BC_REC_HEADER_SIZE], const bc_rec *r,
                   const void *key, const void *value);
/* The same for a record whose key and value already follow its header at
** rec (bc_rec_size(klen, vlen) bytes): one CRC pass over them, where three
** calls over three pieces cost about twice as much for short records. */
void bc_rec_encode_in_place(unsigned char *rec, const bc_rec *r);
/* Decode and sanity-check a header (type, sizes, reserved bytes, marker
** shapes, seq range).  0: plausible, *crc receives the stored CRC; -1:
** malformed. */
int bc_rec_decode(const unsigned char in[BC_REC_HEADER_SIZE], bc_rec *r,
                  uint32_t *crc);
/* CRC check of a whole record held contiguously at rec (header+key+value). */
int bc_rec_crc_ok(const unsigned char *rec, const bc_rec *r, uint32_t crc);

void bc_hint_header_encode(unsigned char out[BC_HINT_HEADER_SIZE], uint32_t id,
                           uint64_t data_size);
int bc_hint_header_decode(const unsigned char in[BC_HINT_HEADER_SIZE],
                          uint32_t *version, uint32_t *id, uint64_t *data_size);
void bc_hint_entry_encode(unsigned char out[BC_HINT_ENTRY_SIZE], const bc_rec *r,
                          uint64_t off);
int bc_hint_entry_decode(const unsigned char in[BC_HINT_ENTRY_SIZE], bc_rec *r,
                         uint64_t *off);
/* The trailer's CRC covers `before` (every byte of the file before it). */
void bc_hint_trailer_encode(unsigned char out[BC_HINT_TRAILER_SIZE],
                            uint32_t count, const unsigned char *before,
                            size_t nbefore);
/* The same, given the CRC of every byte before it. */
void bc_hint_trailer_encode_crc(unsigned char out[BC_HINT_TRAILER_SIZE],
                                uint32_t count, uint32_t crc);
/* The format's CRC-32 of p[0..n), continuing from crc (0 to start). */
uint32_t bc_crc32(uint32_t crc, const void *p, size_t n);
/* The CRC-32 of A || B from crc1 = CRC-32 of A, crc2 = CRC-32 of B and
** len2 = the length of B (zlib's crc32_combine). */
uint32_t bc_crc32_combine(uint32_t crc1, uint32_t crc2, uint64_t len2);
int bc_hint_trailer_check(const unsigned char in[BC_HINT_TRAILER_SIZE],
                          uint32_t *count, const unsigned char *before,
                          size_t nbefore);

/* The MERGE manifest.  Arrays owned by the struct (free with
** bc_manifest_free). */
typedef struct bc_manifest {
  uint32_t *inputs;
  uint32_t n_inputs;
  uint32_t *outputs;
  uint32_t n_outputs;
} bc_manifest;
/* *out: malloc'd encoding, owned by the caller.  NULL on NOMEM. */
unsigned char *bc_manifest_encode(const bc_manifest *m, size_t *len);
/* 0 ok (m filled, caller frees), -1 malformed, -2 NOMEM. */
int bc_manifest_decode(const unsigned char *in, size_t len, bc_manifest *m);
void bc_manifest_free(bc_manifest *m);

/* ---------------------------------------------------------------- keydir */

/* One key.  Packed into 24 bytes + key (keydir.c explains the bits).  The
** arena places entries at 4-byte boundaries (its unit), so the struct is
** packed with alignment 4: the compiler then reads and writes the 64-bit
** fields in a way that is safe at any 4-byte boundary. */
typedef struct __attribute__((packed, aligned(4))) bc_entry {
  uint64_t seqmeta;    /* seq in bits 0..55, meta in bits 56..63 */
  uint64_t loc;        /* offset bits 0..39, klen bits 40..56, deleted bit 57 */
  uint32_t file_id;
  uint32_t vsize;
  unsigned char key[]; /* klen bytes */
} bc_entry;

static inline uint64_t bc_e_seq(const bc_entry *e) { return e->seqmeta & BC_MAX_SEQ; }
static inline uint8_t bc_e_meta(const bc_entry *e) { return (uint8_t)(e->seqmeta >> 56); }
static inline uint64_t bc_e_off(const bc_entry *e) { return e->loc & BC_MAX_OFFSET; }
static inline uint32_t bc_e_klen(const bc_entry *e) { return (uint32_t)((e->loc >> 40) & 0x1FFFFu); }
#define BC_E_DELETED (UINT64_C(1) << 57) /* the deleted bit of loc */
static inline int bc_e_deleted(const bc_entry *e) { return (e->loc & BC_E_DELETED) != 0; }
/* The lost bit of loc: the key's newest version is a record of a transaction
** that recovery could not apply whole (some of its records are unreadable);
** file_id and offset name that record, and a read gives BC_CORRUPT.  Set by
** recovery only; bc_e_set clears it (a newer version replaces the loss). */
#define BC_E_LOST (UINT64_C(1) << 58)
static inline int bc_e_lost(const bc_entry *e) { return (e->loc & BC_E_LOST) != 0; }
static inline void bc_e_set(bc_entry *e, uint64_t seq, uint8_t meta,
                            uint32_t file_id, uint64_t off, uint32_t vsize,
                            int deleted) {
  e->seqmeta = (seq & BC_MAX_SEQ) | ((uint64_t)meta << 56);
  e->loc = (off & BC_MAX_OFFSET) | ((e->loc >> 40 & 0x1FFFFu) << 40) |
           ((uint64_t)(deleted ? 1 : 0) << 57);
  e->file_id = file_id;
  e->vsize = vsize;
}

/* Fill *info (may be NULL) from a keydir entry.  Inline: every read (bc_get,
** a step of an iterator) ends with it. */
static inline void bc_fill_info(const bc_entry *e, bc_info *info) {
  if (!info) return;
  info->seq = bc_e_seq(e);
  info->value_size = e->vsize;
  info->meta = bc_e_meta(e);
}

/* The ordered index (keytree.c). */
typedef struct kt_leaf kt_leaf;
typedef struct bc_keytree {
  void *root;          /* kt_leaf when height 1, else an inner node; NULL
                       ** when empty */
  int height;          /* 0 when empty */
  size_t bytes;        /* bytes of nodes and separators */
} bc_keytree;

typedef struct bc_keydir {
  /* arena of entries (keydir.c) */
  unsigned char **chunk;  /* nchunk chunks; owned */
  uint32_t *chunk_units;  /* each chunk's size in 8-byte units */
  uint32_t *by_addr;      /* chunk indices sorted by address */
  uint32_t nchunk, capchunk;
  uint32_t cur, bump;     /* bump allocation: chunk cur from unit bump */
  uint32_t *freel;        /* free-list heads (refs) by size; owned */
  /* hash table */
  uint32_t *slot;         /* cap slots of refs, 0 = empty; owned (one
                          ** allocation with tag) */
  uint8_t *tag;           /* cap tags: 8 bits of each slot's key hash */
  size_t cap;
  size_t count;           /* entries linked (deleted markers included) */
  size_t key_bytes;       /* key bytes of the entries linked */
  /* ordered index */
  int ordered;            /* the tree is built and kept in step */
  bc_keytree tree;
  uint64_t version;       /* see keydir.c */
  uint32_t pins;          /* open snapshots (bc_kd_pin): frees are deferred */
  uint32_t deferred;      /* refs freed while pinned, chained by file_id */
  size_t heap_bytes;      /* arena chunks + table + free-list heads */
  uint64_t seed;          /* hash seed, per store */
} bc_keydir;

/* A position in the ordered index (keytree.c). */
typedef struct bc_kpos {
  kt_leaf *leaf;       /* NULL: past the end */
  uint32_t idx;
} bc_kpos;

int bc_kd_init(bc_keydir *kd, uint64_t seed);
/* Free everything; kd->version moves on (so cached positions die). */
void bc_kd_free(bc_keydir *kd);
bc_entry *bc_kd_get(const bc_keydir *kd, const void *key, size_t klen);
/* The entry a ref names (ref != 0). */
bc_entry *bc_kd_entry(const bc_keydir *kd, uint32_t ref);
/* Insert a new entry for key (which must be absent); fields zero.  NULL on
** NOMEM (nothing changed). */
bc_entry *bc_kd_add(bc_keydir *kd, const void *key, size_t klen);
/* The entry for key, added (fields zero, as bc_kd_add) when absent: one
** probe where bc_kd_get + bc_kd_add take two.  *created: 1 if added.  NULL
** on NOMEM (nothing changed; may happen even when key is present, if the
** table was due to grow). */
bc_entry *bc_kd_upsert(bc_keydir *kd, const void *key, size_t klen, int *created);
/* (txn.c) The error of a call on a doomed or prepared transaction. */
bc_status bc_txn_doomed(bc_txn *t);
/* The same with the key's hash given (bc_kd_hash), for callers that hash
** ahead to prefetch: bc_kd_prefetch(kd, h) asks for h's slot and tag. */
uint64_t bc_kd_hash(const bc_keydir *kd, const void *key, size_t klen);
void bc_kd_prefetch(const bc_keydir *kd, uint64_t h);
bc_entry *bc_kd_get_h(const bc_keydir *kd, const void *key, size_t klen, uint64_t h);
bc_entry *bc_kd_upsert_h(bc_keydir *kd, const void *key, size_t klen, uint64_t h,
                         int *created);
/* Take e out of the table without freeing it (the caller owns it then); it
** is marked deleted while unlinked. */
void bc_kd_unlink(bc_keydir *kd, bc_entry *e);
/* Put an unlinked entry of this keydir back (its deleted mark cleared).  -1
** on NOMEM (growth failed). */
int bc_kd_link(bc_keydir *kd, bc_entry *e);
/* Return an unlinked entry's memory to the arena; while the keydir is pinned
** the entry stays as it is (marked deleted) until the last unpin. */
void bc_kd_entry_free(bc_keydir *kd, bc_entry *e);
/* Unlink and free. */
void bc_kd_remove(bc_keydir *kd, bc_entry *e);
/* Make room for n more entries holding key_bytes of keys in all, so that
** that many bc_kd_add calls cannot fail.  -1 on NOMEM. */
int bc_kd_reserve(bc_keydir *kd, size_t n, size_t key_bytes);
/* Size the hash table for n more entries now (one rehash instead of a
** series of them while they arrive); the arena is not touched.  -1 on
** NOMEM (nothing changed: an optimisation only). */
int bc_kd_presize(bc_keydir *kd, size_t n);
/* Unlink and free every deleted marker.  -1 on NOMEM (table unchanged). */
int bc_kd_sweep_deleted(bc_keydir *kd);
/* Slots probed to find key (tests). */
size_t bc_kd_probes(const bc_keydir *kd, const void *key, size_t klen);
/* The entry in hash slot i (0 <= i < kd->cap), or NULL: for whole-keydir
** walks in no particular order. */
bc_entry *bc_kd_at(const bc_keydir *kd, size_t i);
uint32_t bc_kd_ref_at(const bc_keydir *kd, size_t i);
/* Snapshots of the keydir (fold.c).  While a keydir is pinned no entry's
** memory is reused: a ref taken from it keeps naming the same entry, which
** is either linked (live) or marked deleted.  Pins nest; the last unpin
** releases the deferred frees. */
void bc_kd_pin(bc_keydir *kd);
void bc_kd_unpin(bc_keydir *kd);
/* A snapshot of which entries are linked: one bit per 4-byte arena unit
** (an entry's first unit), chunk after chunk, so walking it visits the
** entries in arena order -- the order they were created, which for a store
** loaded from its files is the order of the records on disk -- with no
** sort.  About 10 bits per key of 16 bytes. */
typedef struct bc_kd_snap {
  uint64_t *bits;   /* malloc'd */
  size_t *first;    /* nchunk + 1 entries: chunk c's first word; malloc'd */
  uint32_t nchunk;  /* chunks when taken (later ones are not covered) */
  uint32_t chunk;   /* iteration: the chunk of `word` */
  size_t word;      /* iteration: the word being walked */
  uint64_t cur;     /* iteration: its bits not yet returned */
} bc_kd_snap;
/* Take a snapshot of kd's linked entries.  -1 on NOMEM (*sn is then empty). */
int bc_kd_snap_take(const bc_keydir *kd, bc_kd_snap *sn);
/* The next ref in arena order, or 0 when done. */
uint32_t bc_kd_snap_next(bc_kd_snap *sn);
void bc_kd_snap_free(bc_kd_snap *sn);

/* Key order: memcmp over the common length, then the shorter first. */
int bc_key_cmp(const void *a, size_t an, const void *b, size_t bn);
/* Build the ordered index if it is not built.  -1 on NOMEM. */
int bc_kd_ordered(bc_keydir *kd);
/* Keep the ordered index in step (no-ops while it is not built; a failed
** allocation drops it). */
void bc_kt_insert(bc_keydir *kd, uint32_t ref);
void bc_kt_remove(bc_keydir *kd, uint32_t ref);
void bc_kt_drop(bc_keydir *kd);
/* Position at the first key >= key (> key if strict), or for desc the last
** key <= key (< key if strict); key NULL means the first (desc: last) key.
** Returns its entry, or NULL (pos past the end).  The index must be built. */
bc_entry *bc_kt_seek(const bc_keydir *kd, const void *key, size_t klen, int strict,
                     int desc, bc_kpos *pos);
/* The next entry in that direction, or NULL. */
bc_entry *bc_kt_step(const bc_keydir *kd, bc_kpos *pos, int desc);
size_t bc_kt_bytes(const bc_keydir *kd);

/* ------------------------------------------------------------- the store */

/* Growable in-memory hint file being built. */
typedef struct bc_hintbuf {
  unsigned char *data; /* owned */
  size_t len, cap;
  uint32_t count;
} bc_hintbuf;

/* One data file of the store. */
typedef struct bc_file {
  uint32_t id;
  int fd;              /* -1 when closed; owned.  The active file's (O_RDWR)
                       ** is always open, outside the descriptor cache: use
                       ** it directly.  Any other file's (O_RDONLY) comes and
                       ** goes with the cache: get it with bc_file_fd.  (The
                       ** tail that recovery cuts back or gives a new header
                       ** is held O_RDWR outside the cache meanwhile.) */
  uint32_t slot;       /* 1 + its slot in s->fdc when fd is in the cache;
                       ** 0 when fd is held outside it (or closed) */
  int path_merging;    /* still named <id>.data.merging (a read-only store
                       ** reading the outputs of a merge not yet finished) */
  int merged;          /* written by a merge */
  int has_hint;        /* a valid hint file is on disk */
  int header_ok;       /* the file header is valid */
  int damaged;         /* BC_DAMAGE_*: recovery found it damaged (docs/FORMAT.md
                       ** "Damaged files"): never the active file, never a
                       ** merge input, never modified */
  int missing;         /* the data file is gone but its hint file is there:
                       ** fd is -1, size 0; its keys read BC_CORRUPT */
  uint32_t tx_lo, tx_hi; /* ids of the first and last file of the
                       ** transactions spanning files that it holds records
                       ** of (0, 0: none): damage spreads over them */
  uint32_t version;    /* format version of its header (when header_ok) */
  uint64_t size;       /* bytes in the file (active: excluding s->wbuf) */
  uint64_t hint_size;  /* bytes of its hint file when has_hint */
  uint64_t live_bytes; /* bytes of records the keydir points to */
  uint64_t min_seq;    /* lowest seq of any record; UINT64_MAX if none */
  uint64_t max_seq;    /* highest seq of any record; 0 if none */
  const unsigned char *map; /* read-only shared mapping of bytes [0, map_len)
                       ** of an immutable file, made at its first read (see
                       ** bc_datafile_read); NULL if none; owned, released
                       ** by bc_file_unmap */
  size_t map_len;
  uint64_t retired;    /* in s->retired: s->snap_serial when the merge
                       ** retired it (versions.c); 0 in s->files */
} bc_file;

/* One slot of the descriptor cache: an LRU list of the data files whose
** descriptor is open in it, linked by slot index (files.c). */
typedef struct bc_fdslot {
  uint32_t id;         /* the file (in s->files) whose fd this slot holds */
  uint32_t prev, next; /* toward the most / least recently used; BC_FDC_NIL
                       ** at the ends (next also links the free slots) */
} bc_fdslot;
#define BC_FDC_NIL UINT32_MAX

/* Why a file is damaged (bc_file.damaged); 0: it is not. */
enum { BC_DAMAGE_NONE = 0, BC_DAMAGE_HEADER, BC_DAMAGE_SHORT, BC_DAMAGE_MISSING,
       BC_DAMAGE_RECORDS, BC_DAMAGE_TXN, BC_DAMAGE_LINKED };
/* Mark f damaged for `why` unless it already is (the first cause stays). */
static inline void bc_file_damaged(bc_file *f, int why) {
  if (f && !f->damaged) f->damaged = why;
}

/* Undo record of one buffered write (active.c). */
typedef struct bc_undo {
  bc_entry *entry;     /* the key's entry; for a tombstone it is unlinked and
                       ** owned by this undo record until the flush succeeds */
  int created;         /* the put created the entry */
  int tombstone;
  uint64_t old_seqmeta, old_loc;
  uint32_t old_file_id, old_vsize;
  uint64_t epoch;      /* s->epoch with this write made (snapshot.c) */
} bc_undo;

/* The snapshots opened at one epoch, and the versions they need that the
** keydir no longer has (versions.c saves them, snapshot.c reads them). */
typedef struct bc_sgroup bc_sgroup;
struct bc_sgroup {
  uint64_t epoch;      /* s->epoch when it was created */
  uint64_t serial;     /* s->snap_serial it got (1, 2, ...) */
  uint64_t count;      /* live keys at that epoch */
  uint32_t nref;       /* bc_snapshot handles on it */
  int ov_init;         /* ov is initialised (at the first saved version) */
  int broken;          /* BC_BROKEN_*: it cannot serve its state; reads fail */
  bc_keydir ov;        /* pre-images: key -> its entry at the epoch, or a
                       ** deleted entry when it was absent */
  bc_sgroup *older, *newer;
};

/* Why a group is broken (bc_sgroup.broken). */
enum { BC_BROKEN_NONE = 0, BC_BROKEN_NOMEM, BC_BROKEN_UNDONE, BC_BROKEN_FILE, BC_BROKEN_RELOAD };


/* A read-only store's recovery state kept between refreshes (follow.c). */
typedef struct bc_follow bc_follow;

/* Undo entry of a transaction's write made under a savepoint (txn.c). */
typedef struct bc_txn_undo {
  bc_entry *entry;     /* the overlay entry the write changed */
  int created;         /* the write created it: undo removes it */
  uint64_t old_seqmeta, old_loc;
  uint32_t old_file_id, old_vsize;
} bc_txn_undo;

/* An open savepoint: where to roll back to. */
typedef struct bc_txn_mark {
  size_t nundo;        /* undo entries before it */
  uint64_t seq;        /* last seq written before it (ROLLBACK_TO's S) */
  uint64_t nrec;       /* records of the txn before it */
} bc_txn_mark;

struct bc_txn {
  bc_store *s;
  uint64_t id;         /* the txn field of its records: the seq its first
                       ** record gets (unique for the store's lifetime) */
  bc_keydir ov;        /* overlay: key -> its latest record in this txn; a
                       ** "deleted" entry is a key this txn deleted */
  bc_txn_undo *undo;   /* owned */
  size_t nundo, capundo;
  bc_txn_mark *marks;  /* owned; marks[d-1] is savepoint depth d */
  size_t nmarks, capmarks;
  uint64_t nrec;       /* records written (so far, not rolled back) */
  int doomed;          /* buffered records of it were lost: rollback only */
  int prepared;        /* bc_txn_prepare succeeded: no more writes */
  int committed;       /* its COMMIT is in the file (and not voided) */
  uint32_t commit_file; /* where that COMMIT is */
  uint64_t commit_off;
};

struct bc_store {
  char *dir;                /* owned copy of bc_open's dir */
  bc_io io;                 /* copy of the table in use */
  int use_mmap;             /* POSIX I/O (no bc_options.io): reads of
                            ** immutable files go through a mapping */
  uint64_t max_file_size;
  bc_sync_mode sync;
  int read_only;
  pthread_mutex_t mu;
  int lock_fd;              /* LOCK, -1 when read-only (or closed in a
                            ** child process by bc_fork_child) */
  pid_t owner_pid;          /* the process that opened the store: only it
                            ** writes (lock.c, "Processes") */
  bc_keydir kd;
  bc_file *files;           /* sorted by id; owned */
  size_t nfiles, capfiles;
  uint32_t max_open_files;  /* the descriptor cache's limit (>= 1) */
  bc_fdslot *fdc;           /* the cache's slots, fdc_cap of them (grown up
                            ** to max_open_files); owned */
  uint32_t fdc_cap, fdc_n;  /* slots allocated, descriptors cached */
  uint32_t fdc_head, fdc_tail, fdc_free; /* most, least recently used;
                            ** free slots; BC_FDC_NIL when none */
  uint32_t active_id;       /* 0 when read-only */
  uint32_t next_file_id;
  uint64_t next_seq;
  unsigned char *wbuf;      /* write buffer of the active file; owned */
  size_t wlen, wcap;        /* bytes buffered at offset active->size */
  bc_undo *undo;            /* one per buffered record; owned */
  size_t nundo, capundo;
  int need_fsync;           /* the active file has unsynced bytes */
  uint64_t active_synced;   /* bytes of the active file known durable: its
                            ** size when an fsync of it last returned (0
                            ** when never); the claim of the next COMMIT */
  int need_dirsync;         /* the directory has unsynced entries */
  uint64_t last_fsync_ms;
  uint64_t merges, corrupt, truncated_bytes;
  int merge_pending;        /* MERGE committed but its steps 4-6 failed */
  bc_txn *txn;              /* the open transaction, or NULL; owned by its
                            ** caller (bc_close frees it) */
  uint64_t fsyncs, commits;
  int poisoned;             /* a failed commit could not be undone on disk:
                            ** writes refuse until the store is reopened */
  uint64_t commit_size;     /* active file size at the last standalone
                            ** commit point (active.c) */
  int dirty_tail;           /* cutting a failed write off the active file
                            ** failed: retried before any write */
  int hold_rotation;        /* append to the active file even if full: an
                            ** abort must follow its COMMIT in the same file */
  bc_hintbuf ahint;         /* the active file's hint, one entry per record as
                            ** it is appended (active.c), written when the
                            ** file is sealed; owned */
  uint32_t ahint_id;        /* the file ahint describes; 0: none (a sealed
                            ** file then gets its hint by a scan) */
  uint64_t ahint_end;       /* offset just past the last record in ahint */
  int ahint_tmp;            /* 1: <ahint_id>.hint.tmp exists, open as
                            ** ahint_fd, holding the ahint_spilled bytes of
                            ** entries (CRC-32 ahint_crc) that came before
                            ** the ones in ahint (active.c) */
  int ahint_fd;
  uint64_t ahint_spilled;
  uint32_t ahint_crc;
  bc_follow *follow;        /* read-only: what bc_refresh goes on from */
  uint32_t follow_tail;     /* read-only: the file the writer may still
                            ** append to or cut back (the newest that is
                            ** not a merge output) */
  uint64_t follow_durable;  /* read-only: how far follow_tail is known never
                            ** to be cut back, so that far it is mapped too:
                            ** the highest durability claim of its COMMITs
                            ** (bytes the writer fsync'd), or all of what was
                            ** read when the writer was seen gone */
  uint64_t follow_checked;  /* follow_tail's size when bc_lock_writer_gone
                            ** was last asked (once per size) */
  uint64_t kd_gen;          /* moves on when a read-only store's keydir is
                            ** rebuilt (fold.c: a pinned bitmap dies) */
  int recovery_pending;     /* read-only: the last open or rebuild found
                            ** work only a writer's open does (a merge to
                            ** finish, leftovers, a torn or header-less
                            ** tail): bc_stats.recovery_pending */
  /* Read snapshots (snapshot.c). */
  uint64_t epoch;           /* logical changes of the keydir so far: moves
                            ** on with every key a commit (or a refresh)
                            ** changes, so equal epochs mean equal states */
  bc_sgroup *snap_oldest, *snap_newest; /* open snapshot groups, by age */
  uint64_t snap_serial;     /* serial of the newest group created */
  uint64_t snap_handles;    /* open bc_snapshot handles */
  bc_file *retired;         /* merge inputs still readable by an open
                            ** snapshot (unlinked on disk); owned */
  size_t nretired, capretired;
  pthread_t syncer;         /* BC_SYNC_NORMAL's background fsync thread */
  pthread_cond_t syncer_cv; /* wakes it to stop */
  int syncer_running, syncer_stop;
  char err[640];
};

/* error.c */
/* Record a failure: "bitcask store '<dir>': <message>", returns st. */
bc_status bc_seterr(bc_store *s, bc_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, with ": <strerror(errnum)>" appended. */
bc_status bc_seterr_errno(bc_store *s, bc_status st, int errnum,
                          const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));


/* Copy a message (a store's, or one of bc_open's own) out to a caller's err
** buffer of errlen bytes (nothing when err is NULL or errlen 0). */
void bc_copy_err(char *err, size_t errlen, const char *msg);

/* layout.c */
/* Paths: "<dir>/<10-digit id><suffix>" or "<dir>/<name>" into out[PATH_MAX].
** The directory length is checked at open so these cannot truncate. */
void bc_path_id(const bc_store *s, char *out, uint32_t id, const char *suffix);
void bc_path_name(const bc_store *s, char *out, const char *name);
/* Directory listing: names of ours, parsed. */
typedef struct bc_dirlist {
  uint32_t *data, *hint, *data_merging, *hint_merging, *hint_tmp, *data_tmp;
  size_t ndata, nhint, ndata_merging, nhint_merging, nhint_tmp, ndata_tmp;
  int has_merge, has_merge_tmp, has_lock, has_marker, has_marker_tmp;
  char *foreign;   /* first name not ours, malloc'd, or NULL */
  size_t nentries; /* every entry but . and .. */
} bc_dirlist;
/* List dir into *dl (dl->data sorted; the other sets in directory order).
** s, when not NULL, receives the message of a failure. */
bc_status bc_dirlist_read(bc_store *s, const char *dir, bc_dirlist *dl);
void bc_dirlist_free(bc_dirlist *dl);
/* The id-named files of a listing, one set per suffix, in this order. */
typedef struct bc_idset {
  const uint32_t *ids; /* borrowed from the listing */
  size_t n;
  const char *suffix;  /* BC_SUFFIX_* */
} bc_idset;
enum { BC_SET_DATA, BC_SET_HINT, BC_SET_DATA_MERGING, BC_SET_HINT_MERGING,
       BC_SET_HINT_TMP, BC_SET_DATA_TMP, BC_DIRLIST_NSETS };
void bc_dirlist_sets(const bc_dirlist *dl, bc_idset sets[BC_DIRLIST_NSETS]);
/* Classify a name: returns the kind (0 not ours) and *id. */
enum { BC_NAME_NONE = 0, BC_NAME_DATA, BC_NAME_HINT, BC_NAME_DATA_MERGING,
       BC_NAME_HINT_MERGING, BC_NAME_HINT_TMP, BC_NAME_MERGE,
       BC_NAME_MERGE_TMP, BC_NAME_LOCK, BC_NAME_MARKER, BC_NAME_MARKER_TMP,
       BC_NAME_OWNERS, BC_NAME_OWNERS_TMP, BC_NAME_DATA_TMP };
int bc_name_kind(const char *name, uint32_t *id);
/* Arrays of file ids: append (-1 on NOMEM, the array unchanged), test
** membership, sort ascending. */
int bc_ids_push(uint32_t **a, size_t *n, uint32_t id);
int bc_ids_has(const uint32_t *a, size_t n, uint32_t id);
void bc_ids_sort(uint32_t *a, size_t n);

/* files.c: the files array (sorted by id). */
bc_file *bc_file_get(bc_store *s, uint32_t id);
/* Index of the first file of s->files (sorted) with an id >= id. */
size_t bc_file_lower_bound(const bc_store *s, uint32_t id);
bc_file *bc_file_add(bc_store *s, uint32_t id); /* NULL on NOMEM */
void bc_file_remove(bc_store *s, uint32_t id);  /* closes its fd, unmaps */
void bc_file_unmap(bc_file *f);                  /* drop f->map, if any */
/* The descriptor cache (files.c).  bc_file_fd: f's descriptor in *fd,
** opened read-only into the cache when it is closed (closing the least
** recently used cached one when the cache is full, or when the process is
** out of descriptors), and marked most recently used.  Valid until the next
** call that may open a data file (bc_file_fd, a read, a merge step): use it
** at once.  Returns BC_OK, BC_IOERR (message names the file; EMFILE says
** so plainly), BC_NOMEM. */
bc_status bc_file_fd(bc_store *s, bc_file *f, int *fd);
/* Close f's descriptor, cached or held outside the cache (a no-op when
** closed): before it is opened again in another mode, or when it is no
** longer needed (a file mapped, a file sealed). */
void bc_file_close(bc_store *s, bc_file *f);
/* Take f's descriptor out of the cache, open: f holds it (slot 0) until
** bc_file_close. */
void bc_file_uncache(bc_store *s, bc_file *f);
/* Open data file f (named <id>.data.merging when merging, else <id>.data)
** read-only into the descriptor cache, which closes it again when full, so
** that a store of any number of files opens within its limit; read its
** size and header into f (header_ok, version, merged).  BC_VERSION for a
** format newer than this library's. */
bc_status bc_file_read_header(bc_store *s, bc_file *f, int merging);
/* fstat(2) of f: of its descriptor when open, else of its path. */
int bc_file_stat(bc_store *s, bc_file *f, struct stat *sb);
static inline uint64_t bc_entry_rec_size(const bc_entry *e) {
  return bc_rec_size(bc_e_klen(e), e->vsize);
}
/* Widen f's [min_seq, max_seq] to cover seq. */
void bc_file_note_seq(bc_file *f, uint64_t seq);
/* bc_open: the descriptor cache's limit from bc_options.max_open_files (0:
** the default), at most a quarter of the process's; the cache empty. */
void bc_files_init(bc_store *s, uint32_t max_open_files);
/* bc_close: close and unmap every file of s->files, free the table and the
** cache. */
void bc_files_free(bc_store *s);
/* Live-byte accounting: add (add 1) or remove (add 0) e's record bytes
** to or from the live_bytes of the file it points into; nothing for a
** deleted entry or a file not in s->files.  A removal never takes
** live_bytes below 0.  Inline: replay calls it for every record a hint
** load applies. */
static inline void bc_acct(bc_store *s, const bc_entry *e, int add) {
  if (bc_e_deleted(e)) return;
  bc_file *f = bc_file_get(s, e->file_id);
  if (!f) return;
  uint64_t n = bc_entry_rec_size(e);
  if (add)
    f->live_bytes += n;
  else
    f->live_bytes = f->live_bytes >= n ? f->live_bytes - n : 0;
}

/* io.c */
extern const bc_io bc_posix_io;
int bc_write_all(const bc_io *io, int fd, const void *buf, size_t n, uint64_t off);
/* Bytes read (< n only at end of file) or -1. */
ssize_t bc_read_all(const bc_io *io, int fd, void *buf, size_t n, uint64_t off);
int bc_fsync_dir(const bc_io *io, const char *dir);
/* fsync through s->io, counted in s->fsyncs. */
int bc_fsync(bc_store *s, int fd);
int bc_fsync_store_dir(bc_store *s);
int bc_buf_reserve(bc_buf *b, size_t n);
uint64_t bc_now_ms(void);

/* datafile.c */
/* Create (truncate) data file `id` with `suffix`, write its header; *fd open
** O_RDWR.  fsync of file and dir per `durable`. */
bc_status bc_datafile_create(bc_store *s, uint32_t id, const char *suffix,
                             uint32_t flags, int durable, int *fd);
/* Read the record of entry e into buf (one pread, or a copy from the write
** buffer), verify CRC, type, key and seq.  *value points into buf. */
bc_status bc_datafile_read(bc_store *s, const bc_entry *e, const void *key,
                           size_t klen, bc_buf *buf, const void **value);
/* Map the whole of f if this store maps files (see datafile.c's file_map);
** f->map says whether it is. */
void bc_file_map(bc_store *s, bc_file *f);
/* The whole record of entry e (header, key and value: bc_entry_rec_size(e)
** bytes) in f, a file other than the active one, verified as
** bc_datafile_read does; *r receives its decoded header.  *rec points into
** f's mapping when it has one -- no copy; valid while the caller holds s->mu
** and f stays in s->files -- else into buf, where it was read. */
bc_status bc_datafile_record(bc_store *s, bc_file *f, const bc_entry *e,
                             bc_buf *buf, const unsigned char **rec, bc_rec *r);
typedef bc_status (*bc_rec_cb)(void *arg, const bc_recinfo *ri);
/* Scan the records of data file fd (id for messages) from offset `from` (32:
** the first record) to size.
** Calls cb for each record whose header is plausible and that fits in the
** file, in order -- with ri->damaged set if it fails its CRC, and then goes
** on after it.  Stops at a header that does not decode or a record cut
** short: *end is that offset (size when the scan reached the end), *bad 1. */
bc_status bc_datafile_walk(bc_store *s, int fd, uint32_t id, uint64_t from,
                           uint64_t size, bc_rec_cb cb, void *arg, uint64_t *end,
                           int *bad);

/* hint.c */
int bc_hintbuf_init(bc_hintbuf *h, uint32_t id);
/* key: the key bytes; for a transaction marker (no key) arg is its value,
** stored after the entry in place of a key. */
int bc_hintbuf_add(bc_hintbuf *h, const bc_rec *r, uint64_t off, const void *key,
                   uint64_t arg);
int bc_hintbuf_finish(bc_hintbuf *h, uint32_t id, uint64_t data_size);
void bc_hintbuf_free(bc_hintbuf *h);
/* Write h to `path` (O_TRUNC), fsync if durable, then rename to `final`
** when final != NULL (and fsync the directory if durable). */
bc_status bc_hint_write(bc_store *s, const bc_hintbuf *h, const char *path,
                        const char *final, int durable);
/* Build the hint of sealed file f by scanning it, write and install it. */
bc_status bc_hint_create(bc_store *s, bc_file *f, int durable);
/* Finish h (built by bc_hintbuf_init/add, one entry per record of sealed
** file f, exactly up to f->size), write it as f's hint file and install it.
** h stays the caller's (bc_hintbuf_free it either way). */
bc_status bc_hint_install(bc_store *s, bc_file *f, bc_hintbuf *h, int durable);
/* Load hint file `path` of data file f: bc_hint_open, bc_hint_check,
** bc_hint_apply, bc_hint_close.  1: valid, cb was called for every entry (*st: the first
** error cb returned, which stopped the walk, else BC_OK); 0: missing or
** invalid (cb never called). */
int bc_hint_load(bc_store *s, bc_file *f, const char *path, bc_rec_cb cb,
                 void *arg, bc_status *st);
/* A hint file read (or mapped), not yet applied. */
typedef struct bc_hintfile {
  unsigned char *data; /* the whole file: mapped (mapped 1) or malloc'd; owned */
  size_t len;
  int mapped;
  uint32_t count;      /* entries, as the trailer says: checked by
                       ** bc_hint_check; before that only an estimate, at
                       ** most what the file could hold */
  uint64_t data_size;  /* size of the data file it describes, as its header
                       ** says (the data file's may differ: damage) */
} bc_hintfile;
/* Read hint file `path` of data file f -- mapped when the store uses POSIX
** I/O, so that only what is then touched is read -- and check its header.
** 1: *hf filled (release it with bc_hint_close); 0: missing, unreadable or
** not f's, *hf empty.  hf->data_size may differ from f->size: the caller
** decides (bc_hint_load requires them equal). */
int bc_hint_open(bc_store *s, const bc_file *f, const char *path, bc_hintfile *hf);
/* Validate all of an opened hint in itself: trailer CRC, and entries that
** tile [32, hf->data_size) exactly.  1 valid, 0 not. */
int bc_hint_check(const bc_hintfile *hf);
/* Call cb for every entry of hf (checked), in order, after sizing the keydir
** for its keys; stops at and returns the first error cb returns.  Sets
** f->hint_size. */
bc_status bc_hint_apply(bc_store *s, bc_file *f, const bc_hintfile *hf, bc_rec_cb cb,
                        void *arg);
/* Release hf's memory (a no-op on an empty one). */
void bc_hint_close(bc_hintfile *hf);

/* marker.c */
/* *found: 1 a valid marker, 0 none, 2 a strict prefix of one (a creation
** cut short).  BC_CORRUPT for anything else. */
bc_status bc_marker_read(bc_store *s, int *found, int *created_dir);
bc_status bc_marker_write(bc_store *s, int created_dir);
/* Parse a marker's text (bc_destroy reads it without a store): 0 when it
** is a valid marker (*version and *created_dir filled), -1 when it is not. */
int bc_marker_parse(const char *text, size_t len, int *version,
                    int *created_dir);

/* lock.c */
bc_status bc_lock_acquire(bc_store *s);
void bc_lock_release(bc_store *s);
/* 1 when the process LOCK names has exited (or LOCK was never written):
** then every record in the store's files was written by writers that are
** gone -- a writer names itself in LOCK before it appends anything -- and
** none of them will be cut back (a new writer cuts only a torn tail past
** every complete record, or its own failed writes).  0 when it may be
** alive, or LOCK is being written.  An open, a read, a kill(pid, 0). */
int bc_lock_writer_gone(bc_store *s);
/* 1 when the calling process is not the one that opened s (a child after
** fork()).  One getpid() call: for write paths, not for reads. */
int bc_foreign(const bc_store *s);
/* BC_INVALID with the message that says so. */
bc_status bc_foreign_error(bc_store *s);

/* active.c */
/* BC_INVALID with a message if klen or vlen is over its limit, else BC_OK:
** the check of every write (bc_put, bc_delete, a transaction's).  Inline:
** two compares on bc_put's path. */
static inline bc_status bc_check_sizes(bc_store *s, size_t klen, size_t vlen) {
  if (klen > BC_MAX_KEY_SIZE)
    return bc_seterr(s, BC_INVALID, "key of %zu bytes exceeds the limit of %u",
                     klen, BC_MAX_KEY_SIZE);
  if (vlen > BC_MAX_VALUE_SIZE)
    return bc_seterr(s, BC_INVALID, "value of %zu bytes exceeds the limit of %u",
                     vlen, BC_MAX_VALUE_SIZE);
  return BC_OK;
}
/* Append one record (r->type, meta, txn, klen, vlen; the seq is assigned
** here and returned in r->seq) to the active file, rotating first if it is
** full.  *file_id and *off receive where it went.  Changes no keydir.  A
** failure leaves no record (and, if buffered records were lost, dooms the
** open transaction and reverts the standalone ones). */
bc_status bc_append_record(bc_store *s, bc_rec *r, const void *key,
                           const void *value, uint32_t *file_id, uint64_t *off);
/* A standalone put or tombstone: bc_append_record + keydir update + undo. */
bc_status bc_append(bc_store *s, uint8_t type, uint8_t meta, const void *key,
                    size_t klen, const void *value, size_t vlen);
bc_status bc_flush(bc_store *s);
/* Retry cutting a failed write off the active file; BC_IOERR while it fails. */
bc_status bc_check_tail(bc_store *s);
bc_status bc_sync_active(bc_store *s, int force);
bc_status bc_rotate(bc_store *s);
bc_status bc_active_create(bc_store *s);
/* Forget the active file's in-memory hint and remove what of it was spilled
** to disk (bc_close). */
void bc_ahint_free(bc_store *s);
void bc_undo_clear(bc_store *s);
/* sync=normal's background thread, which fsyncs the active file every
** BC_NORMAL_SYNC_MS / 2 while it holds unsynced bytes.  bc_syncer_start
** leaves s->syncer_running 0 when the thread cannot be made (bc_sync_active
** then fsyncs on commits itself); bc_syncer_stop is a no-op without one.
** Neither is called with s->mu held: stop takes it to wake the thread. */
void bc_syncer_start(bc_store *s);
void bc_syncer_stop(bc_store *s);

/* txn.c */
/* Free t's overlay and undo log and detach it from the store. */
void bc_txn_free(bc_txn *t);


/* replay.c: applying a stream of records to s->kd (recovery and the
** follower).  A transaction's records wait (pending) for its COMMIT; a
** damaged record is held until a valid one follows it. */
typedef struct bc_pending bc_pending;
typedef struct bc_txspan bc_txspan;
typedef struct bc_replay {
  bc_store *s;
  bc_txspan *tx;  /* owned; one per transaction with pending records */
  size_t ntx, captx;
  bc_file *f;     /* file being read */
  bc_pending *p;  /* owned, in read order */
  size_t np, cap;
  bc_pending *held; /* damaged records of f not yet known to be followed by
                  ** a valid one (in the tail file they may be a torn tail);
                  ** owned, txn/type as read (untrusted) */
  size_t nheld, capheld;
  int has_commit;      /* a COMMIT was read and waits for the next record,
                       ** which may void it (an abort: see txn.c) */
  uint64_t commit_txn, commit_count;
  uint32_t commit_file; /* the data file that COMMIT is in */
  uint64_t max_seq;
  int follow;          /* bc_refresh: every record read is newer than the
                       ** keydir, so a tombstone just removes its key */
  uint64_t settled_txn; /* bc_refresh: a COMMIT applied at the end of the
                       ** last read; its abort, if it comes next, means the
                       ** keydir must be rebuilt */
  int reload;          /* ... and it came */
  uint64_t deleted;    /* deleted markers made (an upper bound of those left) */
  /* Reading the tail file (bc_replay_tail). */
  uint32_t claim_file; /* the file `claim` is about (a follower's tail) */
  uint64_t claim;      /* highest durability claim of a COMMIT read from it */
  int probing;         /* past its first damage: only claims are noted */
  uint64_t damage_off; /* ... which is at this offset */
  uint64_t probe_claim; /* highest claim found while probing */
  uint64_t durable;    /* second pass: D */
  int cut;             /* second pass: stopped at damage at or after D ... */
  uint64_t cut_off;    /* ... at this offset */
} bc_replay;
/* A bc_rec_cb (arg: the bc_replay): one record of rc->f, from a walk or a
** hint. */
bc_status bc_replay_record(void *arg, const bc_recinfo *ri);
/* The held damaged records are followed by a valid one (or end a file that
** is not the tail): corruption, each standing for its key as a record that
** reads BC_CORRUPT. */
bc_status bc_replay_release_held(bc_replay *rc);
/* The COMMIT read last is not followed by its abort: apply it. */
bc_status bc_replay_settle(bc_replay *rc);
/* Read the records of the tail file f in [from, size) (docs/FORMAT.md
** Recovery 3).  *end receives where its unsynced tail starts (size if it
** has none): the first damaged or cut-short record at or after D, the
** highest durability claim of a valid COMMIT in f.  rc->claim keeps the
** highest claim read, for a follower's next read of the same file. */
bc_status bc_replay_tail(bc_replay *rc, bc_file *f, uint64_t from, uint64_t size,
                         uint64_t *end);
/* The records of any other file f in [from, size), walked (bc_datafile_walk's
** *end and *bad) through bc_replay_record; the caller releases what is held
** after them. */
bc_status bc_replay_walk(bc_replay *rc, bc_file *f, uint64_t from, uint64_t size,
                         uint64_t *end, int *bad);
/* Free what rc holds (pending and held records); rc is empty after. */
void bc_replay_free(bc_replay *rc);
/* Mark damaged (BC_DAMAGE_LINKED) every file sharing a transaction with a
** damaged one, until none is left: a transaction's records in a damaged
** file need its COMMIT and ROLLBACK_TO records, wherever they are, to stay
** (docs/FORMAT.md "Damaged files"). */
void bc_damage_spread(bc_store *s);

/* recovery.c */
/* Rebuild the keydir from the directory (bc_open, and a follower's
** rebuild).  keep (read-only stores; NULL for a writer): on success it
** receives the replay state, for bc_refresh to go on from (free it with
** bc_replay_free); else it is left empty. */
bc_status bc_recover(bc_store *s, bc_replay *keep);

/* follow.c */
/* A read-only store's open: bc_recover, keeping its state in s->follow. */
bc_status bc_follow_open(bc_store *s);
/* bc_refresh with s->mu held.  While snapshots are open a refresh that
** would rebuild the keydir because the writer merged is put off: BC_OK,
** the store stays as it was, and a later refresh with none open catches
** up.  One that must rebuild it (an abort of a transaction already
** applied) does, and breaks the open snapshots (bc_snap_break_all). */
bc_status bc_refresh_locked(bc_store *s);
void bc_follow_free(bc_store *s);

/* versions.c */
/* Save, in every open snapshot group that has no version of key yet, the
** key's state before a logical change: old (the live entry about to
** change), or NULL when the key is absent.  Called before the keydir
** changes; a group that cannot get the memory is marked broken (its reads
** then fail with BC_NOMEM) -- a writer never fails for a reader. */
void bc_snap_save(bc_store *s, const void *key, size_t klen, const bc_entry *old);
/* The hook every logical change of the keydir goes through. */
static inline void bc_snap_change(bc_store *s, const void *key, size_t klen,
                                  const bc_entry *old) {
  s->epoch++;
  if (s->snap_newest) bc_snap_save(s, key, klen, old);
}
/* Failed standalone writes are undone (active.c), the oldest of them made
** at epoch `first` (bc_undo.epoch): the epoch moves on, and every open
** group opened since (g->epoch >= first) saw writes whose records never
** reached the file: it is broken (reads fail with BC_IOERR).  Groups
** opened before saved the keys' committed versions and go on. */
void bc_snap_undo(bc_store *s, uint64_t first);
/* A read-only store rebuilds its keydir while snapshots are open (the
** writer aborted a transaction it had applied): they cannot serve. */
void bc_snap_break_all(bc_store *s);
/* Merge: file `id` leaves s->files.  With no snapshot open it is removed
** (bc_file_remove); else it moves to s->retired, readable (mapped, or its
** descriptor held outside the cache) until the snapshots that may read it
** close. */
void bc_file_retire(bc_store *s, uint32_t id);
/* A file of s->files or of s->retired. */
bc_file *bc_file_find(bc_store *s, uint32_t id);
/* Free every group and retired file (bc_close). */
void bc_snap_free_all(bc_store *s);
/* Release the retired files no open group may read: those retired before
** the oldest open group's serial oldest_serial was given (0: no group is
** open, release them all). */
void bc_retired_release(bc_store *s, uint64_t oldest_serial);

/* snapshot.c */
/* A snapshot's view: its overlay of pre-images (NULL when it has none), the
** entry of key in it (NULL: absent at the snapshot), BC_NOMEM when the
** snapshot is broken.  Under s->mu. */
bc_keydir *bc_snap_overlay(bc_snapshot *sn);
const bc_entry *bc_snap_entry(bc_snapshot *sn, const void *key, size_t klen);
bc_status bc_snap_check(const bc_snapshot *sn);
bc_store *bc_snap_store(const bc_snapshot *sn);
/* The snapshot figures of bc_stats. */
void bc_snap_stats(bc_store *s, bc_stats *out);

/* merge.c */
bc_status bc_merge_run(bc_store *s, uint64_t *reclaimed);
/* Redo steps 4-6 of the merge in `m` (idempotent). */
bc_status bc_merge_redo(bc_store *s, const bc_manifest *m);
/* Read MERGE: 1 found (m filled; free it with bc_manifest_free), 0 none
** (*st BC_OK), -1 unreadable or damaged (*st: BC_IOERR, BC_CORRUPT or
** BC_NOMEM, with its message). */
int bc_manifest_read(bc_store *s, bc_manifest *m, bc_status *st);

#endif /* BC_INTERNAL_H */
