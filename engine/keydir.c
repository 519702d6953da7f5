/*
** keydir.c -- the in-memory index: key -> where its latest record is
** (the Bitcask paper, section "keydir").
**
** Three parts, all owned by the bc_keydir:
**
**  1. An arena of entries.  Each entry is 24 bytes of packed location plus
**     the key, in 4-byte units (so at most 3 bytes of padding; bc_entry is
**     packed with alignment 4), carved from chunks that never move (so a
**     bc_entry pointer stays valid until the entry is freed):
**
**       seqmeta  u64  seq (bits 0..55) | meta (bits 56..63)
**       loc      u64  record offset (bits 0..39) | key length (bits 40..56) |
**                     deleted marker (bit 57)
**       file_id  u32
**       vsize    u32
**       key      klen bytes
**
**     An entry is named by a 32-bit ref: chunk index (bits 16..31) and
**     4-byte unit within the chunk (bits 0..15).  Ref 0 is "none" (unit 0 of
**     chunk 0 is never handed out).  Chunks start at 4 KiB and double up to
**     256 KiB (less 256 bytes, see KD_BIG_CHUNK_UNITS), so a small keydir (a
**     transaction's overlay) stays small and a large one has at most 256 KiB
**     of chunk unused; with 2^16 chunks the arena holds up to about 16 GiB
**     of entries.  Freed entries go on a free list per size (in units);
**     sizes of 128 units and more share one list, searched first-fit.
**
**  2. A hash table of refs: open addressing with linear probing, any
**     capacity (the slot is (hash * cap) >> 32), load at most 3/4, grown by
**     half.  Removal is backward-shift deletion, so there are no tombstone
**     slots and probes stay short after many deletes.  Point lookups are
**     this table only: one hash, about 2.5 probes at the highest load.
**     Each slot has an 8-bit tag from the key's hash beside it (in the same
**     allocation, after the slots), so a probe derefs only entries whose tag
**     matches: one entry, the key's, in all but 1 in 256 probes.
**
**  3. The ordered index (keytree.c), a B+tree of refs in key byte order,
**     built on first use (bc_kd_ordered) and from then on kept in step with
**     every add and remove.  It is derived data: if it cannot allocate, it
**     is dropped (never failing the write) and rebuilt on the next ordered
**     access.
**
** Invariants:
**  - No key appears twice.  count is the number of linked entries.
**  - A linked "deleted" entry exists only during recovery (a tombstone's seq,
**    so that an older put read later cannot resurrect the key);
**    bc_kd_sweep_deleted drops them before the store is used.  An unlinked
**    entry is always marked deleted, so a snapshot's ref to it (below)
**    reads as "not live".
**  - While pins > 0 (a fold of a bitmap of it is open, fold.c) freed
**    entries are not reused: they stay marked deleted, chained through
**    file_id from `deferred`, and go to the free lists at the last unpin.
**    So a ref taken during the pin names the same entry until then.
**  - Offsets fit 40 bits (max_file_size <= 2^40) and seqs 56 bits; the callers
**    enforce both.
**  - version changes whenever the ordered index's set of keys changes or the
**    index is dropped or rebuilt, so an iterator's cached position is valid
**    exactly while version is unchanged.
**
** Memory per key (bc_stats keydir_bytes; `make bench` measures it across
** key lengths, figures eng_keydir_k<L>): the key plus about 31 bytes
** without the ordered index and 36 with it built, when the key length is a
** multiple of 4 (other lengths: up to 3 bytes of padding more).  The parts:
** the entry, 24 bytes + the key rounded up to 4; slot and tag, 5 / load
** bytes (load 0.5-0.75 as keys are added, 0.75 after a presized open: 6.67);
** the arena's last chunk, under 256 KiB; the ordered index, 4.4 (full
** leaves of 124 refs, inner nodes, shortest separators).
*/
#include "bitcask.h"
#include "keydir.h"

#include <stdlib.h>
#include <string.h>

#define KD_MIN_CAP 16u
#define KD_UNIT 4u
#define KD_UNIT_BITS 16u                        /* units per chunk: 2^16 */
#define KD_MAX_CHUNK_UNITS (1u << KD_UNIT_BITS) /* 256 KiB */
#define KD_FIRST_CHUNK_UNITS 1024u              /* 4 KiB */
/* The largest chunk made: 256 bytes short of 2^16 units (still a multiple
** of 64 units, for bc_kd_snap), so that it and malloc's header fit in 256
** KiB of pages -- a whole 256 KiB chunk would take a 260 KiB mapping, 1.6%
** more RSS than keydir_bytes says. */
#define KD_BIG_CHUNK_UNITS (KD_MAX_CHUNK_UNITS - 64u)
#define KD_MAX_CHUNKS (1u << (32u - KD_UNIT_BITS))
#define KD_NFREE 128u /* exact free lists for 6..127 units; [0] holds the rest */
#define KD_LARGE_SEARCH 16
#define KD_PREFETCH 16 /* slots ahead whose entries a rehash prefetches */

static uint64_t fmix64(uint64_t h) {
  h ^= h >> 33;
  h *= UINT64_C(0xff51afd7ed558ccd);
  h ^= h >> 33;
  h *= UINT64_C(0xc4ceb9fe1a85ec53);
  h ^= h >> 33;
  return h;
}

/* A simple word-at-a-time hash: good enough mixing for short keys, seeded per
** store. */
static uint64_t kd_hash(uint64_t seed, const unsigned char *k, size_t n) {
  uint64_t h = seed ^ ((uint64_t)n * UINT64_C(0x9E3779B97F4A7C15));
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, k, 8);
    h ^= fmix64(w);
    h = ((h << 27) | (h >> 37)) * 5u + UINT64_C(0x52dce729);
    k += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t w = 0;
    memcpy(&w, k, n);
    h ^= fmix64(w ^ UINT64_C(0x27d4eb2f165667c5));
  }
  return fmix64(h);
}

/* ------------------------------------------------------------------ arena */

static uint32_t entry_units(size_t klen) {
  return (uint32_t)((sizeof(bc_entry) + klen + KD_UNIT - 1) / KD_UNIT);
}

static uint32_t make_ref(uint32_t chunk, uint32_t unit) {
  return (chunk << KD_UNIT_BITS) | unit;
}

bc_entry *bc_kd_entry(const bc_keydir *kd, uint32_t ref) {
  return (bc_entry *)(void *)(kd->chunk[ref >> KD_UNIT_BITS] +
                              (size_t)(ref & (KD_MAX_CHUNK_UNITS - 1)) * KD_UNIT);
}

/* The ref of the block at p (which must be in the arena): a binary search of
** the chunks by address. */
static uint32_t ptr_ref(const bc_keydir *kd, const void *p) {
  uintptr_t a = (uintptr_t)p;
  uint32_t lo = 0, hi = kd->nchunk;
  while (hi - lo > 1) {
    uint32_t mid = (lo + hi) / 2;
    if ((uintptr_t)kd->chunk[kd->by_addr[mid]] <= a)
      lo = mid;
    else
      hi = mid;
  }
  uint32_t c = kd->by_addr[lo];
  return make_ref(c, (uint32_t)((a - (uintptr_t)kd->chunk[c]) / KD_UNIT));
}

/* Add one more chunk able to hold `need` units.  -1 on NOMEM or when the
** arena has no chunk index left. */
static int add_chunk(bc_keydir *kd, uint32_t need) {
  if (kd->nchunk >= KD_MAX_CHUNKS) return -1;
  if (kd->nchunk == kd->capchunk) {
    uint32_t n = kd->capchunk ? kd->capchunk * 2 : 8;
    unsigned char **c = realloc(kd->chunk, n * sizeof *c);
    if (!c) return -1;
    kd->chunk = c;
    uint32_t *u = realloc(kd->chunk_units, n * sizeof *u);
    if (!u) return -1;
    kd->chunk_units = u;
    uint32_t *b = realloc(kd->by_addr, n * sizeof *b);
    if (!b) return -1;
    kd->by_addr = b;
    kd->capchunk = n;
  }
  uint32_t units = KD_FIRST_CHUNK_UNITS;
  if (kd->nchunk > 0) units = kd->chunk_units[kd->nchunk - 1] * 2;
  while (units < need + 1 && units < KD_MAX_CHUNK_UNITS) units *= 2;
  if (units > KD_BIG_CHUNK_UNITS) units = KD_BIG_CHUNK_UNITS;
  unsigned char *p = malloc((size_t)units * KD_UNIT);
  if (!p) return -1;
  kd->chunk[kd->nchunk] = p;
  kd->chunk_units[kd->nchunk] = units;
  /* Keep by_addr sorted by chunk address. */
  uint32_t at = kd->nchunk;
  while (at > 0 && (uintptr_t)kd->chunk[kd->by_addr[at - 1]] > (uintptr_t)p) {
    kd->by_addr[at] = kd->by_addr[at - 1];
    at--;
  }
  kd->by_addr[at] = kd->nchunk;
  kd->nchunk++;
  kd->heap_bytes += (size_t)units * KD_UNIT;
  return 0;
}

/* Put a free block of `units` units at ref on its free list. */
static void free_block(bc_keydir *kd, uint32_t ref, uint32_t units) {
  if (units < entry_units(0)) return; /* too small to hold an entry: lost */
  unsigned char *p = (unsigned char *)bc_kd_entry(kd, ref);
  uint32_t list = units < KD_NFREE ? units : 0;
  memcpy(p, &kd->freel[list], 4);
  memcpy(p + 4, &units, 4);
  kd->freel[list] = ref;
}

/* Take `units` units: a free block of that size, else the bump pointer. */
static uint32_t arena_alloc(bc_keydir *kd, uint32_t units) {
  if (units < KD_NFREE && kd->freel[units]) {
    uint32_t ref = kd->freel[units];
    memcpy(&kd->freel[units], bc_kd_entry(kd, ref), 4);
    return ref;
  }
  if (units >= KD_NFREE) {
    uint32_t *link = &kd->freel[0];
    for (int i = 0; *link && i < KD_LARGE_SEARCH; i++) {
      uint32_t ref = *link, bu;
      unsigned char *p = (unsigned char *)bc_kd_entry(kd, ref);
      memcpy(&bu, p + 4, 4);
      if (bu >= units) {
        memcpy(link, p, 4);
        free_block(kd, ref + units, bu - units);
        return ref;
      }
      link = (uint32_t *)(void *)p;
    }
  }
  while (kd->nchunk == 0 || kd->chunk_units[kd->cur] - kd->bump < units) {
    if (kd->nchunk > 0) {
      /* The rest of this chunk becomes a free block. */
      uint32_t left = kd->chunk_units[kd->cur] - kd->bump;
      if (left) free_block(kd, make_ref(kd->cur, kd->bump), left);
      kd->bump = kd->chunk_units[kd->cur];
    }
    if (kd->nchunk > 0 && kd->cur + 1 < kd->nchunk) {
      kd->cur++;
    } else {
      if (add_chunk(kd, units) != 0) return 0;
      kd->cur = kd->nchunk - 1;
    }
    kd->bump = kd->cur == 0 ? 1u : 0u;
  }
  uint32_t ref = make_ref(kd->cur, kd->bump);
  kd->bump += units;
  return ref;
}

/* ------------------------------------------------------------ hash table */

static size_t slot_of(const bc_keydir *kd, uint64_t h) {
  return (size_t)(((h >> 32) * (uint64_t)kd->cap) >> 32);
}

/* A slot's tag: 8 bits of the hash that slot_of does not use. */
static uint8_t tag_of(uint64_t h) { return (uint8_t)h; }

static uint64_t entry_hash(const bc_keydir *kd, uint32_t ref) {
  const bc_entry *e = bc_kd_entry(kd, ref);
  return kd_hash(kd->seed, e->key, bc_e_klen(e));
}

static size_t home(const bc_keydir *kd, uint32_t ref) {
  return slot_of(kd, entry_hash(kd, ref));
}

static int same_key(const bc_entry *e, const void *key, size_t klen) {
  return bc_e_klen(e) == klen && (klen == 0 || memcmp(e->key, key, klen) == 0);
}

/* Slot holding key (of hash h), or the empty slot where it would go.  An
** entry is looked at only when its slot's tag matches: at 1M keys each
** entry looked at is a cache miss, and 255 in 256 of the others are
** skipped. */
static size_t find_slot(const bc_keydir *kd, const void *key, size_t klen, uint64_t h) {
  size_t i = slot_of(kd, h);
  uint8_t t = tag_of(h);
  for (;;) {
    uint32_t r = kd->slot[i];
    if (!r || (kd->tag[i] == t && same_key(bc_kd_entry(kd, r), key, klen))) return i;
    if (++i == kd->cap) i = 0;
  }
}

/* A table of cap slots and their tags, zeroed, in one allocation: the tags
** follow the slots.  NULL on NOMEM. */
static uint32_t *table_alloc(size_t cap, uint8_t **tag) {
  uint32_t *slot = calloc(cap, sizeof *slot + 1);
  *tag = slot ? (uint8_t *)(slot + cap) : NULL;
  return slot;
}

#define TABLE_BYTES(cap) ((cap) * (sizeof(uint32_t) + 1))

/* Rehash ref into the fresh table ns/nt of kd->cap slots (no key there is
** equal to it): its home slot or the next free one. */
static void table_put(const bc_keydir *kd, uint32_t *ns, uint8_t *nt, uint32_t ref) {
  uint64_t h = entry_hash(kd, ref);
  size_t j = slot_of(kd, h);
  while (ns[j])
    if (++j == kd->cap) j = 0;
  ns[j] = ref;
  nt[j] = tag_of(h);
}

int bc_kd_init(bc_keydir *kd, uint64_t seed) {
  memset(kd, 0, sizeof *kd);
  kd->slot = table_alloc(KD_MIN_CAP, &kd->tag);
  kd->freel = calloc(KD_NFREE, sizeof *kd->freel);
  if (!kd->slot || !kd->freel) {
    free(kd->slot);
    free(kd->freel);
    kd->slot = NULL;
    kd->tag = NULL;
    kd->freel = NULL;
    return -1;
  }
  kd->cap = KD_MIN_CAP;
  kd->bump = 1; /* unit 0 of chunk 0 is ref 0, "none" */
  kd->seed = seed;
  kd->heap_bytes = TABLE_BYTES(KD_MIN_CAP) + KD_NFREE * sizeof *kd->freel;
  return 0;
}

void bc_kd_free(bc_keydir *kd) {
  if (!kd->slot) return;
  bc_kt_drop(kd);
  for (uint32_t c = 0; c < kd->nchunk; c++) free(kd->chunk[c]);
  free(kd->chunk);
  free(kd->chunk_units);
  free(kd->by_addr);
  free(kd->freel);
  free(kd->slot);
  uint64_t v = kd->version;
  memset(kd, 0, sizeof *kd);
  kd->version = v + 1;
}

bc_entry *bc_kd_get(const bc_keydir *kd, const void *key, size_t klen) {
  return bc_kd_get_h(kd, key, klen, kd_hash(kd->seed, key, klen));
}

bc_entry *bc_kd_get_h(const bc_keydir *kd, const void *key, size_t klen, uint64_t h) {
  uint32_t r = kd->slot[find_slot(kd, key, klen, h)];
  return r ? bc_kd_entry(kd, r) : NULL;
}

uint64_t bc_kd_hash(const bc_keydir *kd, const void *key, size_t klen) {
  return kd_hash(kd->seed, key, klen);
}

void bc_kd_prefetch(const bc_keydir *kd, uint64_t h) {
  size_t i = slot_of(kd, h);
  __builtin_prefetch(&kd->slot[i]);
  __builtin_prefetch(&kd->tag[i]);
}

size_t bc_kd_probes(const bc_keydir *kd, const void *key, size_t klen) {
  uint64_t h = kd_hash(kd->seed, key, klen);
  size_t i = slot_of(kd, h), n = 1;
  while (kd->slot[i] &&
         !(kd->tag[i] == tag_of(h) && same_key(bc_kd_entry(kd, kd->slot[i]), key, klen))) {
    if (++i == kd->cap) i = 0;
    n++;
  }
  return n;
}

static int resize(bc_keydir *kd, size_t cap) {
  if (cap > UINT32_MAX) return -1;
  uint8_t *nt;
  uint32_t *ns = table_alloc(cap, &nt);
  if (!ns) return -1;
  uint32_t *old = kd->slot;
  size_t oldcap = kd->cap;
  kd->slot = ns;
  kd->tag = nt;
  kd->cap = cap;
  for (size_t i = 0; i < oldcap; i++) {
    /* Every entry is read for its hash: ask for the ones a few slots on
    ** now, so that the cache misses overlap instead of queueing. */
    if (i + KD_PREFETCH < oldcap && old[i + KD_PREFETCH])
      __builtin_prefetch(bc_kd_entry(kd, old[i + KD_PREFETCH]));
    uint32_t r = old[i];
    if (!r) continue;
    table_put(kd, ns, nt, r);
  }
  free(old);
  kd->heap_bytes = kd->heap_bytes - TABLE_BYTES(oldcap) + TABLE_BYTES(cap);
  return 0;
}

static int fits(size_t n, size_t cap) { return n * 4 <= cap * 3; }

static int grow_for(bc_keydir *kd, size_t n) {
  size_t need = kd->count + n;
  if (need < kd->count) return -1;
  if (fits(need, kd->cap)) return 0;
  size_t cap = kd->cap;
  while (!fits(need, cap)) {
    if (cap > SIZE_MAX / 3) return -1;
    cap += cap / 2;
  }
  return resize(kd, cap);
}

/* Units the bump pointer can still give from the chunks already allocated,
** to entries of at most maxu units each (a chunk's tail shorter than the
** next entry is skipped). */
static uint64_t bump_avail(const bc_keydir *kd, uint32_t maxu) {
  uint64_t a = 0;
  for (uint32_t c = kd->cur; c < kd->nchunk; c++) {
    uint32_t used = c == kd->cur ? kd->bump : (c == 0 ? 1u : 0u);
    uint32_t f = kd->chunk_units[c] - used;
    if (f >= maxu) a += f - (maxu - 1);
  }
  return a;
}

int bc_kd_presize(bc_keydir *kd, size_t n) {
  /* The keys that are coming are known (a hint file's count at open): size
  ** the table for exactly that many at the highest load rather than the
  ** next step of 1.5x, which for a store that is only read would leave up
  ** to a third of the slots empty for good (1.7 bytes a key on average,
  ** 3.3 at worst).  At least one step of growth: presized file after file
  ** (an unmerged store), the rehashes stay a geometric series. */
  size_t need = kd->count + n;
  if (need < kd->count) return -1;
  if (fits(need, kd->cap)) return 0;
  if (need > (SIZE_MAX - 2) / 4) return -1;
  size_t cap = (need * 4 + 2) / 3;
  if (cap < kd->cap + kd->cap / 2) cap = kd->cap + kd->cap / 2;
  return resize(kd, cap);
}

int bc_kd_reserve(bc_keydir *kd, size_t n, size_t key_bytes) {
  if (grow_for(kd, n) != 0) return -1;
  if (n == 0) return 0;
  /* n entries holding key_bytes in all, whatever their split: each rounds
  ** up by less than one unit. */
  uint64_t need = (uint64_t)n * (entry_units(0) + 1) + key_bytes / KD_UNIT;
  uint32_t maxu = entry_units(key_bytes < BC_MAX_KEY_SIZE ? key_bytes : BC_MAX_KEY_SIZE);
  while (bump_avail(kd, maxu) < need)
    if (add_chunk(kd, maxu) != 0) return -1;
  return 0;
}

/* Link ref (a new entry, or an unlinked one) into the table and the ordered
** index.  The table has room (grow_for ran). */
static void link_ref(bc_keydir *kd, uint32_t ref) {
  bc_entry *e = bc_kd_entry(kd, ref);
  e->loc &= ~BC_E_DELETED;
  uint64_t h = kd_hash(kd->seed, e->key, bc_e_klen(e));
  size_t i = find_slot(kd, e->key, bc_e_klen(e), h);
  kd->slot[i] = ref;
  kd->tag[i] = tag_of(h);
  kd->count++;
  kd->key_bytes += bc_e_klen(e);
  if (kd->ordered) bc_kt_insert(kd, ref);
}

/* A new entry for key with its fields zero, not linked yet; 0 on NOMEM. */
static uint32_t new_entry(bc_keydir *kd, const void *key, size_t klen) {
  uint32_t ref = arena_alloc(kd, entry_units(klen));
  if (!ref) return 0;
  bc_entry *e = bc_kd_entry(kd, ref);
  e->seqmeta = 0;
  e->loc = (uint64_t)klen << 40;
  e->file_id = 0;
  e->vsize = 0;
  if (klen) memcpy(e->key, key, klen);
  return ref;
}

bc_entry *bc_kd_add(bc_keydir *kd, const void *key, size_t klen) {
  if (grow_for(kd, 1) != 0) return NULL;
  uint32_t ref = new_entry(kd, key, klen);
  if (!ref) return NULL;
  link_ref(kd, ref);
  return bc_kd_entry(kd, ref);
}

bc_entry *bc_kd_upsert(bc_keydir *kd, const void *key, size_t klen, int *created) {
  return bc_kd_upsert_h(kd, key, klen, kd_hash(kd->seed, key, klen), created);
}

bc_entry *bc_kd_upsert_h(bc_keydir *kd, const void *key, size_t klen, uint64_t h,
                         int *created) {
  *created = 0;
  /* Grow first: the slot found below must stay the key's slot. */
  if (grow_for(kd, 1) != 0) return NULL;
  size_t i = find_slot(kd, key, klen, h);
  if (kd->slot[i]) return bc_kd_entry(kd, kd->slot[i]);
  uint32_t ref = new_entry(kd, key, klen);
  if (!ref) return NULL;
  kd->slot[i] = ref;
  kd->tag[i] = tag_of(h);
  kd->count++;
  kd->key_bytes += klen;
  if (kd->ordered) bc_kt_insert(kd, ref);
  *created = 1;
  return bc_kd_entry(kd, ref);
}

int bc_kd_link(bc_keydir *kd, bc_entry *e) {
  if (grow_for(kd, 1) != 0) return -1;
  link_ref(kd, ptr_ref(kd, e));
  return 0;
}

void bc_kd_unlink(bc_keydir *kd, bc_entry *e) {
  size_t i = find_slot(kd, e->key, bc_e_klen(e), kd_hash(kd->seed, e->key, bc_e_klen(e)));
  uint32_t ref = kd->slot[i];
  if (!ref || bc_kd_entry(kd, ref) != e) return; /* not linked */
  if (kd->ordered) bc_kt_remove(kd, ref);
  /* Backward-shift deletion: move later members of the cluster whose home
  ** is not in (i, j] back into the hole. */
  size_t j = i;
  for (;;) {
    if (++j == kd->cap) j = 0;
    uint32_t f = kd->slot[j];
    if (!f) break;
    size_t k = home(kd, f);
    int between = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
    if (!between) {
      kd->slot[i] = f;
      kd->tag[i] = kd->tag[j];
      i = j;
    }
  }
  kd->slot[i] = 0;
  kd->count--;
  kd->key_bytes -= bc_e_klen(e);
  e->loc |= BC_E_DELETED;
}

void bc_kd_entry_free(bc_keydir *kd, bc_entry *e) {
  uint32_t ref = ptr_ref(kd, e);
  if (kd->pins) {
    e->loc |= BC_E_DELETED;
    e->file_id = kd->deferred;
    kd->deferred = ref;
    return;
  }
  free_block(kd, ref, entry_units(bc_e_klen(e)));
}

void bc_kd_remove(bc_keydir *kd, bc_entry *e) {
  bc_kd_unlink(kd, e);
  bc_kd_entry_free(kd, e);
}

int bc_kd_sweep_deleted(bc_keydir *kd) {
  /* Usually there is none (a store without tombstones, or merged): then
  ** the table stays as it is, with no rehash of every key. */
  size_t ndel = 0;
  for (size_t i = 0; i < kd->cap; i++)
    if (kd->slot[i] && bc_e_deleted(bc_kd_entry(kd, kd->slot[i]))) ndel++;
  if (ndel == 0) return 0;
  uint8_t *nt;
  uint32_t *ns = table_alloc(kd->cap, &nt);
  if (!ns) return -1;
  /* Deleted markers exist only during recovery, before any ordered access;
  ** the ordered index (if any) is dropped, to be rebuilt when wanted. */
  bc_kt_drop(kd);
  for (size_t i = 0; i < kd->cap; i++) {
    uint32_t r = kd->slot[i];
    if (!r) continue;
    bc_entry *e = bc_kd_entry(kd, r);
    if (bc_e_deleted(e)) {
      kd->count--;
      kd->key_bytes -= bc_e_klen(e);
      free_block(kd, r, entry_units(bc_e_klen(e)));
      continue;
    }
    table_put(kd, ns, nt, r);
  }
  free(kd->slot);
  kd->slot = ns;
  kd->tag = nt;
  return 0;
}

bc_entry *bc_kd_at(const bc_keydir *kd, size_t i) {
  return i < kd->cap && kd->slot[i] ? bc_kd_entry(kd, kd->slot[i]) : NULL;
}

uint32_t bc_kd_ref_at(const bc_keydir *kd, size_t i) {
  return i < kd->cap ? kd->slot[i] : 0;
}

/* ------------------------------------------------------------ snapshots */

void bc_kd_pin(bc_keydir *kd) { kd->pins++; }

void bc_kd_unpin(bc_keydir *kd) {
  if (kd->pins == 0 || --kd->pins > 0) return;
  while (kd->deferred) {
    uint32_t ref = kd->deferred;
    bc_entry *e = bc_kd_entry(kd, ref);
    kd->deferred = e->file_id;
    free_block(kd, ref, entry_units(bc_e_klen(e)));
  }
}

int bc_kd_snap_take(const bc_keydir *kd, bc_kd_snap *sn) {
  memset(sn, 0, sizeof *sn);
  sn->nchunk = kd->nchunk;
  sn->first = malloc(((size_t)kd->nchunk + 1) * sizeof *sn->first);
  if (!sn->first) return -1;
  /* Chunks are multiples of 64 units: each starts on a word. */
  size_t words = 0;
  for (uint32_t c = 0; c < kd->nchunk; c++) {
    sn->first[c] = words;
    words += kd->chunk_units[c] / 64;
  }
  sn->first[kd->nchunk] = words;
  sn->bits = calloc(words ? words : 1, sizeof *sn->bits);
  if (!sn->bits) {
    free(sn->first);
    sn->first = NULL;
    return -1;
  }
  for (size_t i = 0, seen = 0; i < kd->cap && seen < kd->count; i++) {
    uint32_t r = kd->slot[i];
    if (!r) continue;
    seen++;
    uint32_t u = r & (KD_MAX_CHUNK_UNITS - 1);
    sn->bits[sn->first[r >> KD_UNIT_BITS] + u / 64] |= UINT64_C(1) << (u % 64);
  }
  sn->word = 0;
  sn->cur = words ? sn->bits[0] : 0;
  return 0;
}

uint32_t bc_kd_snap_next(bc_kd_snap *sn) {
  for (;;) {
    if (sn->cur) {
      unsigned b = (unsigned)__builtin_ctzll(sn->cur);
      sn->cur &= sn->cur - 1;
      while (sn->word >= sn->first[sn->chunk + 1]) sn->chunk++;
      return make_ref(sn->chunk, (uint32_t)((sn->word - sn->first[sn->chunk]) * 64 + b));
    }
    if (sn->nchunk == 0 || ++sn->word >= sn->first[sn->nchunk]) return 0;
    sn->cur = sn->bits[sn->word];
  }
}

void bc_kd_snap_free(bc_kd_snap *sn) {
  free(sn->bits);
  free(sn->first);
  memset(sn, 0, sizeof *sn);
}
