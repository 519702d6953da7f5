/*
** keydir.h -- the in-memory index, keydir.c's and keytree.c's interface:
** the packed entry of a key, the hash table with its arena, and the
** ordered index kept in step with it.
*/
#ifndef BC_KEYDIR_H
#define BC_KEYDIR_H

#include "bitcask.h"
#include "format.h"

#include <stddef.h>
#include <stdint.h>

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
/* An entry's fields as they were before a write changed them: what the
** undo logs save (active.c's bc_undo, txn.c's bc_txn_undo) and an undo
** puts back.  The key and its length never change. */
typedef struct bc_entry_saved {
  uint64_t seqmeta, loc;
  uint32_t file_id, vsize;
} bc_entry_saved;
static inline void bc_e_save(const bc_entry *e, bc_entry_saved *to) {
  to->seqmeta = e->seqmeta;
  to->loc = e->loc;
  to->file_id = e->file_id;
  to->vsize = e->vsize;
}
static inline void bc_e_restore(bc_entry *e, const bc_entry_saved *from) {
  e->seqmeta = from->seqmeta;
  e->loc = from->loc;
  e->file_id = from->file_id;
  e->vsize = from->vsize;
}

/* Fill *info (may be NULL) from a keydir entry.  Inline: every read (bc_get,
** a step of an iterator) ends with it. */
static inline void bc_fill_info(const bc_entry *e, bc_info *info) {
  if (!info) return;
  info->seq = bc_e_seq(e);
  info->value_size = e->vsize;
  info->meta = bc_e_meta(e);
}

/* The bytes of e's record in its data file (header, key, value). */
static inline uint64_t bc_entry_rec_size(const bc_entry *e) {
  return bc_rec_size(bc_e_klen(e), e->vsize);
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

/* An empty keydir whose hash mixes in `seed` (per store); kd's memory is
** the caller's, what it points to is owned by kd (bc_kd_free).  -1 on
** NOMEM (kd is then empty and needs no free). */
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

/* Key order is bc_key_cmp's (declared in bitcask.h, defined in keytree.c):
** memcmp over the common length, then the shorter first. */
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

#endif /* BC_KEYDIR_H */
