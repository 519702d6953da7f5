/*
** hint.c -- hint files: one entry per record of a sealed data file (type,
** meta, sizes, seq, txn, offset, key: everything but the value), so that
** opening a store reads hints instead of values.
**
** Invariants:
**  - A hint describes only what is durable in its data file.  It is built in
**    memory as records are appended (the active file's, active.c, which
**    spills it to its .hint.tmp as it grows; a merge output's, merge.c) and
**    installed only when the data file is sealed: after its last record is
**    written and, unless sync is off, fsync'd.  A sealed file with no such
**    hint (the tail a writer went on appending to after an open, or a write
**    failure that cut the file back) gets one by walking its records
**    (bc_hint_create).
**  - A hint is written under a temporary name (.hint.tmp, .hint.merging),
**    fsync'd (unless sync is off; a merge's always), and only then renamed
**    into place: a hint file with its final name is complete unless
**    damaged, and damage is caught by its CRCs.
**  - bc_hint_open and bc_hint_check validate the whole file (header CRC,
**    trailer CRC, file id, every entry's bounds within data_size) before
**    bc_hint_apply calls back even once, so an invalid hint leaves no trace
**    and the caller walks the data file instead.  A hint valid in itself
**    whose data_size is not the data file's size is evidence of damage (or,
**    for the tail file, of a rotation cut short): recovery.c decides what
**    it is worth.
*/
#include "bitcask.h"
#include "datafile.h"
#include "error.h"
#include "files.h"
#include "format.h"
#include "hint.h"
#include "io.h"
#include "keydir.h"
#include "layout.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

static int hb_reserve(bc_hintbuf *h, size_t more) {
  if (h->len + more <= h->cap) return 0;
  size_t cap = h->cap ? h->cap : 4096;
  while (cap < h->len + more) cap *= 2;
  unsigned char *p = realloc(h->data, cap);
  if (!p) return -1;
  h->data = p;
  h->cap = cap;
  return 0;
}

int bc_hintbuf_init(bc_hintbuf *h, uint32_t id) {
  memset(h, 0, sizeof *h);
  if (hb_reserve(h, BC_HINT_HEADER_SIZE) != 0) return -1;
  bc_hint_header_encode(h->data, id, 0); /* data_size set by finish */
  h->len = BC_HINT_HEADER_SIZE;
  return 0;
}

static int is_marker(uint8_t type) {
  return type == BC_REC_COMMIT || type == BC_REC_ROLLBACK_TO;
}

/* What follows a marker's entry in place of a key: its arg (u64). */
#define HINT_ARG_SIZE 8u

int bc_hintbuf_add(bc_hintbuf *h, const bc_rec *r, uint64_t off, const void *key,
                   uint64_t arg) {
  size_t extra = is_marker(r->type) ? HINT_ARG_SIZE : r->klen;
  if (hb_reserve(h, BC_HINT_ENTRY_SIZE + extra) != 0) return -1;
  bc_hint_entry_encode(h->data + h->len, r, off);
  h->len += BC_HINT_ENTRY_SIZE;
  if (is_marker(r->type))
    bc_put_u64(h->data + h->len, arg); /* read back by bc_rec_arg */
  else if (r->klen)
    memcpy(h->data + h->len, key, r->klen);
  h->len += extra;
  h->count++;
  return 0;
}

int bc_hintbuf_finish(bc_hintbuf *h, uint32_t id, uint64_t data_size) {
  if (hb_reserve(h, BC_HINT_TRAILER_SIZE) != 0) return -1;
  bc_hint_header_encode(h->data, id, data_size);
  bc_hint_trailer_encode(h->data + h->len, h->count, h->data, h->len);
  h->len += BC_HINT_TRAILER_SIZE;
  return 0;
}

void bc_hintbuf_free(bc_hintbuf *h) {
  free(h->data);
  memset(h, 0, sizeof *h);
}

bc_status bc_hint_write(bc_store *s, const bc_hintbuf *h, const char *path,
                        const char *final, int durable) {
  int fd = s->io.open(s->io.ctx, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return bc_seterr_errno(s, BC_IOERR, errno, "hint file '%s': create failed", path);
  if (bc_write_all(&s->io, fd, h->data, h->len, 0) != 0 ||
      (durable && bc_fsync(s, fd) != 0)) {
    int e = errno;
    s->io.close(s->io.ctx, fd);
    s->io.unlink(s->io.ctx, path);
    return bc_seterr_errno(s, BC_IOERR, e, "hint file '%s': write failed", path);
  }
  if (s->io.close(s->io.ctx, fd) != 0) {
    int e = errno;
    s->io.unlink(s->io.ctx, path);
    return bc_seterr_errno(s, BC_IOERR, e, "hint file '%s': close failed", path);
  }
  if (final) {
    if (s->io.rename(s->io.ctx, path, final) != 0) {
      int e = errno;
      s->io.unlink(s->io.ctx, path);
      return bc_seterr_errno(s, BC_IOERR, e, "hint file '%s': rename failed", final);
    }
    if (durable && bc_fsync_store_dir(s) != 0)
      return bc_seterr_errno(s, BC_IOERR, errno, "fsync of the directory failed");
  }
  return BC_OK;
}

static bc_status add_cb(void *arg, const bc_recinfo *ri) {
  if (ri->damaged) return BC_CORRUPT;
  return bc_hintbuf_add(arg, &ri->r, ri->off, ri->key, ri->arg) == 0 ? BC_OK
                                                                     : BC_NOMEM;
}

bc_status bc_hint_install(bc_store *s, bc_file *f, bc_hintbuf *h, int durable) {
  if (bc_hintbuf_finish(h, f->id, f->size) != 0)
    return bc_seterr(s, BC_NOMEM, "out of memory");
  char tmp[PATH_MAX], final[PATH_MAX];
  bc_path_id(s, tmp, f->id, BC_SUFFIX_HINT_TMP);
  bc_path_id(s, final, f->id, BC_SUFFIX_HINT);
  bc_status st = bc_hint_write(s, h, tmp, final, durable);
  if (st == BC_OK) {
    f->has_hint = 1;
    f->hint_size = h->len;
  }
  return st;
}

bc_status bc_hint_create(bc_store *s, bc_file *f, int durable) {
  bc_hintbuf h;
  if (bc_hintbuf_init(&h, f->id) != 0) return bc_seterr(s, BC_NOMEM, "out of memory");
  uint64_t end;
  int bad, fd;
  bc_status st = bc_file_fd(s, f, &fd);
  if (st == BC_OK)
    st = bc_datafile_walk(s, fd, f->id, BC_FILE_HEADER_SIZE, f->size, add_cb, &h,
                          &end, &bad);
  if (st == BC_OK && bad)
    st = bc_seterr(s, BC_CORRUPT,
                   "data file %010u" BC_SUFFIX_DATA ": record at offset %llu is "
                   "damaged; no hint written", f->id, (unsigned long long)end);
  if (st == BC_OK) st = bc_hint_install(s, f, &h, durable);
  bc_hintbuf_free(&h);
  return st;
}

void bc_hint_close(bc_hintfile *hf) {
  if (hf->mapped)
    munmap(hf->data, hf->len);
  else
    free(hf->data);
  memset(hf, 0, sizeof *hf);
}

int bc_hint_open(bc_store *s, const bc_file *f, const char *path, bc_hintfile *hf) {
  memset(hf, 0, sizeof *hf);
  int fd = s->io.open(s->io.ctx, path, O_RDONLY, 0);
  if (fd < 0) return 0;
  struct stat sb;
  int ok = 0;
  if (fstat(fd, &sb) != 0 || sb.st_size < (off_t)(BC_HINT_HEADER_SIZE + BC_HINT_TRAILER_SIZE))
    goto done;
  hf->len = (size_t)sb.st_size;
  /* Mapped when the store uses POSIX I/O: no copy, and no large malloc
  ** that would leave the heap holding its size after it is freed. */
  if (s->use_mmap) {
    void *p = mmap(NULL, hf->len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p != MAP_FAILED) {
      hf->data = p;
      hf->mapped = 1;
      (void)madvise(p, hf->len, MADV_SEQUENTIAL);
    }
  }
  if (!hf->mapped) {
    hf->data = malloc(hf->len);
    if (!hf->data || bc_read_all(&s->io, fd, hf->data, hf->len, 0) != (ssize_t)hf->len)
      goto done;
  }
  uint32_t version, id;
  uint64_t data_size;
  if (bc_hint_header_decode(hf->data, &version, &id, &data_size) != 0 ||
      version != BC_HINT_VERSION || id != f->id)
    goto done;
  hf->data_size = data_size;
  /* Not checked yet (bc_hint_check does), but no more than could fit. */
  uint32_t count = bc_hint_trailer_count(hf->data + hf->len - BC_HINT_TRAILER_SIZE);
  size_t most = (hf->len - BC_HINT_HEADER_SIZE - BC_HINT_TRAILER_SIZE) / BC_HINT_ENTRY_SIZE;
  hf->count = count < most ? count : (uint32_t)most;
  ok = 1;
done:
  s->io.close(s->io.ctx, fd);
  if (!ok) bc_hint_close(hf);
  return ok;
}

int bc_hint_check(const bc_hintfile *hf) {
  const unsigned char *d = hf->data;
  uint32_t count;
  size_t body_end = hf->len - BC_HINT_TRAILER_SIZE;
  if (bc_hint_trailer_check(d + body_end, &count, d, body_end) != 0) return 0;
  /* Entries tile the data file exactly. */
  size_t at = BC_HINT_HEADER_SIZE;
  uint32_t n = 0;
  uint64_t prev_end = BC_FILE_HEADER_SIZE;
  while (at < body_end) {
    bc_rec r;
    uint64_t off;
    if (body_end - at < BC_HINT_ENTRY_SIZE) return 0;
    if (bc_hint_entry_decode(d + at, &r, &off) != 0) return 0;
    size_t extra = is_marker(r.type) ? HINT_ARG_SIZE : r.klen;
    if (body_end - at - BC_HINT_ENTRY_SIZE < extra) return 0;
    if (off != prev_end || off > BC_MAX_OFFSET ||
        off + bc_rec_size(r.klen, r.vlen) > hf->data_size)
      return 0;
    prev_end = off + bc_rec_size(r.klen, r.vlen);
    at += BC_HINT_ENTRY_SIZE + extra;
    n++;
  }
  return n == count && count == hf->count && prev_end == hf->data_size;
}

/* How many hint entries ahead bc_hint_apply prefetches. */
#define PREFETCH_AHEAD 16

/* Hash the key of the (valid) hint entry at d + *at and prefetch its keydir
** slot; step *at to the next entry.  Returns the hash (0 for a marker, which
** has no key). */
static uint64_t prefetch_at(const bc_keydir *kd, const unsigned char *d, size_t *at) {
  uint64_t h = 0;
  uint32_t klen = bc_get_u32(d + *at + BC_HENT_OFF_KLEN);
  if (is_marker(d[*at + BC_HENT_OFF_TYPE])) {
    klen = HINT_ARG_SIZE;
  } else {
    h = bc_kd_hash(kd, d + *at + BC_HINT_ENTRY_SIZE, klen);
    bc_kd_prefetch(kd, h);
  }
  *at += BC_HINT_ENTRY_SIZE + klen;
  return h;
}

bc_status bc_hint_apply(bc_store *s, bc_file *f, const bc_hintfile *hf, bc_rec_cb cb,
                        void *arg) {
  /* Into a table sized for this file's keys at once rather than grown step
  ** by step.  Only up to `count` keys in all: when files share keys (an
  ** unmerged store) most of a later file's keys are already there, and room
  ** for all of them again would stay unused for good. */
  if (hf->count > s->kd.count) (void)bc_kd_presize(&s->kd, hf->count - s->kd.count);
  const unsigned char *d = hf->data;
  size_t body_end = hf->len - BC_HINT_TRAILER_SIZE;
  /* A cursor runs PREFETCH_AHEAD entries ahead of the one being applied
  ** (number n): it hashes each key and prefetches its slot, so that the
  ** cache misses of that many inserts overlap instead of queueing; the hash
  ** is kept (hash[k % PREFETCH_AHEAD] for entry k) and handed to the
  ** callback with the entry.  Entries were validated by bc_hint_check, so the
  ** cursor can step blindly. */
  uint64_t hash[PREFETCH_AHEAD] = {0};
  size_t ahead = BC_HINT_HEADER_SIZE;
  uint64_t n = 0, nahead = 0;
  size_t at = BC_HINT_HEADER_SIZE;
  while (at < body_end) {
    while (ahead < body_end && nahead < n + PREFETCH_AHEAD)
      hash[nahead++ % PREFETCH_AHEAD] = prefetch_at(&s->kd, d, &ahead);
    bc_recinfo ri;
    bc_hint_entry_decode(d + at, &ri.r, &ri.off);
    int marker = is_marker(ri.r.type);
    ri.key = d + at + BC_HINT_ENTRY_SIZE;
    ri.value = NULL;
    ri.arg = marker ? bc_rec_arg(ri.key) : 0;
    ri.damaged = 0;
    ri.hash = hash[n % PREFETCH_AHEAD];
    ri.hashed = !marker;
    bc_status st = cb(arg, &ri);
    if (st != BC_OK) return st;
    at += BC_HINT_ENTRY_SIZE + (marker ? HINT_ARG_SIZE : ri.r.klen);
    n++;
  }
  f->hint_size = hf->len;
  return BC_OK;
}

int bc_hint_load(bc_store *s, bc_file *f, const char *path, bc_rec_cb cb,
                 void *arg, bc_status *st) {
  bc_hintfile hf;
  *st = BC_OK;
  if (!bc_hint_open(s, f, path, &hf)) return 0;
  int ok = hf.data_size == f->size && bc_hint_check(&hf);
  if (ok) *st = bc_hint_apply(s, f, &hf, cb, arg);
  bc_hint_close(&hf);
  return ok;
}
