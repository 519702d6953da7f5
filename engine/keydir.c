/*
** keydir.c -- the in-memory hash index: key -> where its latest record is.
**
** An open-addressing table with linear probing over pointers to entries.
** Each entry is one malloc holding 24 bytes of packed location plus the key:
**
**   seqmeta  u64  seq (bits 0..55) | meta (bits 56..63)
**   loc      u64  record offset (bits 0..39) | key length (bits 40..56) |
**                 deleted marker (bit 57)
**   file_id  u32
**   vsize    u32
**   key      klen bytes
**
** Invariants:
**  - The capacity is a power of two; count * 4 <= cap * 3 (load <= 0.75), so
**    a probe always meets an empty slot and the expected probe length is O(1).
**  - No key appears twice.  Removal uses backward-shift deletion, so there are
**    no tombstone slots and probe sequences stay short after many deletes.
**  - A "deleted" entry exists only during recovery (a tombstone's seq, so that
**    an older put read later cannot resurrect the key); bc_kd_sweep_deleted
**    drops them before the store is used.
**  - Offsets fit 40 bits (max_file_size <= 2^40) and seqs 56 bits; the callers
**    enforce both.
**
** Memory, measured by test_keydir (mallinfo2 before/after 1,000,000 distinct
** 16-byte keys, glibc x86-64): about 64.8 bytes per key = key + 48.8: a
** 40-byte request per entry lands in a 48-byte malloc chunk, and the table
** (2^21 pointer slots for 1M keys at load 0.48) adds 16.8.  The later target
** of key + 32 needs an entry arena (no malloc chunk overhead) and a denser
** table; the packed layout above is ready for it.
*/
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define KD_MIN_CAP 16u

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

static size_t home(const bc_keydir *kd, const bc_entry *e) {
  return (size_t)kd_hash(kd->seed, e->key, bc_e_klen(e)) & kd->mask;
}

int bc_kd_init(bc_keydir *kd, uint64_t seed) {
  memset(kd, 0, sizeof *kd);
  kd->slot = calloc(KD_MIN_CAP, sizeof *kd->slot);
  if (!kd->slot) return -1;
  kd->mask = KD_MIN_CAP - 1;
  kd->seed = seed;
  kd->heap_bytes = KD_MIN_CAP * sizeof *kd->slot;
  return 0;
}

void bc_kd_free(bc_keydir *kd) {
  if (!kd->slot) return;
  for (size_t i = 0; i <= kd->mask; i++) free(kd->slot[i]);
  free(kd->slot);
  memset(kd, 0, sizeof *kd);
}

/* Slot holding key, or the empty slot where it would go. */
static size_t find_slot(const bc_keydir *kd, const void *key, size_t klen) {
  size_t i = (size_t)kd_hash(kd->seed, key, klen) & kd->mask;
  for (;;) {
    const bc_entry *e = kd->slot[i];
    if (!e) return i;
    if (bc_e_klen(e) == klen && (klen == 0 || memcmp(e->key, key, klen) == 0))
      return i;
    i = (i + 1) & kd->mask;
  }
}

bc_entry *bc_kd_get(const bc_keydir *kd, const void *key, size_t klen) {
  return kd->slot[find_slot(kd, key, klen)];
}

size_t bc_kd_probes(const bc_keydir *kd, const void *key, size_t klen) {
  size_t i = (size_t)kd_hash(kd->seed, key, klen) & kd->mask, n = 1;
  while (kd->slot[i] && !(bc_e_klen(kd->slot[i]) == klen &&
                          (klen == 0 || memcmp(kd->slot[i]->key, key, klen) == 0))) {
    i = (i + 1) & kd->mask;
    n++;
  }
  return n;
}

static int resize(bc_keydir *kd, size_t cap) {
  bc_entry **ns = calloc(cap, sizeof *ns);
  if (!ns) return -1;
  bc_entry **old = kd->slot;
  size_t oldcap = kd->mask + 1;
  kd->slot = ns;
  kd->mask = cap - 1;
  for (size_t i = 0; i < oldcap; i++) {
    bc_entry *e = old[i];
    if (!e) continue;
    size_t j = home(kd, e);
    while (ns[j]) j = (j + 1) & kd->mask;
    ns[j] = e;
  }
  free(old);
  kd->heap_bytes = kd->heap_bytes - oldcap * sizeof *ns + cap * sizeof *ns;
  return 0;
}

static int grow_for_one(bc_keydir *kd) {
  size_t cap = kd->mask + 1;
  if ((kd->count + 1) * 4 <= cap * 3) return 0;
  if (cap > SIZE_MAX / 2 / sizeof(bc_entry *)) return -1;
  return resize(kd, cap * 2);
}

int bc_kd_reserve(bc_keydir *kd, size_t n) {
  size_t cap = kd->mask + 1, need = kd->count + n;
  if (need < kd->count) return -1;
  if (need * 4 <= cap * 3) return 0;
  while (need * 4 > cap * 3) {
    if (cap > SIZE_MAX / 4 / sizeof(bc_entry *)) return -1;
    cap *= 2;
  }
  return resize(kd, cap);
}

int bc_kd_link(bc_keydir *kd, bc_entry *e) {
  if (grow_for_one(kd) != 0) return -1;
  size_t i = find_slot(kd, e->key, bc_e_klen(e));
  kd->slot[i] = e;
  kd->count++;
  return 0;
}

bc_entry *bc_kd_add(bc_keydir *kd, const void *key, size_t klen) {
  if (grow_for_one(kd) != 0) return NULL;
  size_t sz = sizeof(bc_entry) + klen;
  bc_entry *e = malloc(sz);
  if (!e) return NULL;
  e->seqmeta = 0;
  e->loc = (uint64_t)klen << 40;
  e->file_id = 0;
  e->vsize = 0;
  if (klen) memcpy(e->key, key, klen);
  size_t i = find_slot(kd, key, klen);
  kd->slot[i] = e;
  kd->count++;
  kd->heap_bytes += sz;
  return e;
}

void bc_kd_unlink(bc_keydir *kd, bc_entry *e) {
  size_t i = find_slot(kd, e->key, bc_e_klen(e));
  if (kd->slot[i] != e) return; /* not linked */
  /* Backward-shift deletion: move later members of the cluster whose home
  ** is not in (i, j] back into the hole. */
  size_t j = i;
  for (;;) {
    j = (j + 1) & kd->mask;
    bc_entry *f = kd->slot[j];
    if (!f) break;
    size_t k = home(kd, f);
    int between = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
    if (!between) {
      kd->slot[i] = f;
      i = j;
    }
  }
  kd->slot[i] = NULL;
  kd->count--;
}

void bc_kd_entry_free(bc_keydir *kd, bc_entry *e) {
  kd->heap_bytes -= sizeof(bc_entry) + bc_e_klen(e);
  free(e);
}

int bc_kd_sweep_deleted(bc_keydir *kd) {
  size_t cap = kd->mask + 1;
  bc_entry **ns = calloc(cap, sizeof *ns);
  if (!ns) return -1;
  for (size_t i = 0; i < cap; i++) {
    bc_entry *e = kd->slot[i];
    if (!e) continue;
    if (bc_e_deleted(e)) {
      kd->count--;
      bc_kd_entry_free(kd, e);
      continue;
    }
    size_t j = home(kd, e);
    while (ns[j]) j = (j + 1) & kd->mask;
    ns[j] = e;
  }
  free(kd->slot);
  kd->slot = ns;
  return 0;
}
