/*
** iter.c -- snapshot iterators over the live keys.
**
** bc_iter_open copies every live key and its bc_info into one allocation
** while holding the store mutex (bc_iter_open_txn: the keys of a
** transaction's view, its overlay over the keydir); iteration then walks that copy without the
** store, so later writes, deletes and merges can neither disturb it nor show
** in it, and no key is skipped or repeated.
**
** Memory: one bc_info-sized slot (16 bytes) plus 8 bytes of offset per key,
** plus the key bytes.
*/
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct bc_iter {
  unsigned char *keys; /* all keys back to back; owned */
  uint64_t *koff;      /* n + 1 offsets into keys; owned */
  bc_info *info;       /* n infos; owned */
  size_t n, pos;
};

/* Copy entry e into slot k of it. */
static void take(bc_iter *it, size_t k, uint64_t *at, const bc_entry *e) {
  uint32_t klen = bc_e_klen(e);
  it->koff[k] = *at;
  if (klen) memcpy(it->keys + *at, e->key, klen);
  *at += klen;
  it->info[k].seq = bc_e_seq(e);
  it->info[k].value_size = e->vsize;
  it->info[k].meta = bc_e_meta(e);
}

/* Does e appear in the view, with ov (may be NULL) over the keydir?  Keydir
** entries shadowed by the overlay come from the overlay pass. */
static int kd_visible(const bc_keydir *ov, const bc_entry *e) {
  return !ov || !bc_kd_get(ov, e->key, bc_e_klen(e));
}

bc_status bc_iter_build(bc_store *s, const bc_keydir *ov, bc_iter **out) {
  *out = NULL;
  bc_iter *it = calloc(1, sizeof *it);
  if (!it) return BC_NOMEM;
  pthread_mutex_lock(&s->mu);
  size_t n = 0, kbytes = 0;
  for (size_t i = 0; i <= s->kd.mask; i++) {
    const bc_entry *e = s->kd.slot[i];
    if (e && kd_visible(ov, e)) {
      n++;
      kbytes += bc_e_klen(e);
    }
  }
  for (size_t i = 0; ov && i <= ov->mask; i++) {
    const bc_entry *e = ov->slot[i];
    if (e && !bc_e_deleted(e)) {
      n++;
      kbytes += bc_e_klen(e);
    }
  }
  it->keys = malloc(kbytes ? kbytes : 1);
  it->koff = malloc((n + 1) * sizeof *it->koff);
  it->info = malloc((n ? n : 1) * sizeof *it->info);
  if (!it->keys || !it->koff || !it->info) {
    pthread_mutex_unlock(&s->mu);
    bc_iter_close(it);
    return BC_NOMEM;
  }
  size_t k = 0;
  uint64_t at = 0;
  for (size_t i = 0; i <= s->kd.mask; i++) {
    const bc_entry *e = s->kd.slot[i];
    if (e && kd_visible(ov, e)) take(it, k++, &at, e);
  }
  for (size_t i = 0; ov && i <= ov->mask; i++) {
    const bc_entry *e = ov->slot[i];
    if (e && !bc_e_deleted(e)) take(it, k++, &at, e);
  }
  it->koff[k] = at;
  it->n = k;
  pthread_mutex_unlock(&s->mu);
  *out = it;
  return BC_OK;
}

bc_status bc_iter_open(bc_store *s, bc_iter **out) {
  return bc_iter_build(s, NULL, out);
}

bc_status bc_iter_next(bc_iter *it, const void **key, size_t *klen,
                       bc_info *info) {
  if (it->pos >= it->n) return BC_DONE;
  size_t i = it->pos++;
  *key = it->keys + it->koff[i];
  *klen = (size_t)(it->koff[i + 1] - it->koff[i]);
  if (info) *info = it->info[i];
  return BC_OK;
}

void bc_iter_close(bc_iter *it) {
  if (!it) return;
  free(it->keys);
  free(it->koff);
  free(it->info);
  free(it);
}
