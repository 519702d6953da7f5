/*
** datafile.c -- data files: create one with its header, read one record,
** walk all its records in order.
**
** Invariants:
**  - A data file is a 32-byte header followed by records (docs/FORMAT.md);
**    records are only ever appended (active.c, merge.c) and never rewritten.
**  - A read verifies everything before returning a byte of value: the CRC of
**    header+key+value, the type (PUT), and that key and seq match the keydir
**    entry.  Damage is BC_CORRUPT naming file and offset, never data.
**  - A walk calls back for every record in file order, flagging damage:
**    a record that fails its CRC but whose framing holds (the next record
**    starts right after it) comes with its key as read; bytes that frame
**    nothing come as a keyless span (type 0) up to the next valid record,
**    found by searching forward (at most RESYNC_MAX bytes).  It stops where
**    nothing valid follows (*bad).  Whether damage is a torn tail or
**    corruption is the caller's call (recovery.c).
*/
#include "bitcask.h"
#include "datafile.h"
#include "error.h"
#include "files.h"
#include "format.h"
#include "io.h"
#include "keydir.h"
#include "layout.h"
#include "lock.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

bc_status bc_datafile_create(bc_store *s, uint32_t id, const char *suffix,
                             uint32_t flags, int durable, int *fd_out) {
  char path[PATH_MAX];
  bc_path_id(s, path, id, suffix);
  int fd = s->io.open(s->io.ctx, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return bc_seterr_errno(s, BC_IOERR, errno, "data file %010u%s: create failed",
                           id, suffix);
  unsigned char hdr[BC_FILE_HEADER_SIZE];
  bc_file_header_encode(hdr, id, flags);
  if (bc_write_all(&s->io, fd, hdr, sizeof hdr, 0) != 0 ||
      (durable && bc_fsync(s, fd) != 0)) {
    int e = errno;
    s->io.close(s->io.ctx, fd);
    s->io.unlink(s->io.ctx, path);
    return bc_seterr_errno(s, BC_IOERR, e, "data file %010u%s: write failed", id,
                           suffix);
  }
  if (durable && bc_fsync_store_dir(s) != 0) {
    int e = errno;
    s->io.close(s->io.ctx, fd);
    s->io.unlink(s->io.ctx, path);
    return bc_seterr_errno(s, BC_IOERR, e, "fsync of the directory failed");
  }
  *fd_out = fd;
  return BC_OK;
}

/* Address space reserved for the mapping of a writable store's active file:
** max_file_size, at most this much (a larger file is mapped at its size). */
#define ACTIVE_MAP_MAX (UINT64_C(1) << 30)

/* The mapping of f if it may have one and covers [off, off + n), else NULL;
** *st: BC_OK, or the error of opening f to map it (then NULL: the read
** fails rather than open again for a pread).
** Every byte read through it is below f->size, so none is past the end of
** the file.  Which files are mapped:
**  - in a writable store, every file: sealed files and merge outputs never
**    change again (unlinking one leaves its mapping valid); the active file
**    grows, so it is mapped at max_file_size (pages past its end are never
**    touched), and when this process cuts a failed write off it, the keydir
**    entries of those bytes are undone under the same mutex first;
**  - in a read-only store, every file -- the one the writer may still
**    append to or cut back (s->follow_tail: the newest that is not a merge
**    output, which it is even when sealed and hinted, if making the next
**    file failed) only below the highest durability claim of its COMMITs
**    (s->follow_durable): the writer fsync'd those bytes and never cuts
**    them, while a mapped read past a cut would fault.  The others never
**    change again, and a mapping outlives the writer's unlink of a file
**    merged away, as a descriptor does.
** A failed mmap is not an error: the read goes through pread.
** A mapping outlives its descriptor and does not count against
** RLIMIT_NOFILE: once a file other than the active one is mapped, its
** descriptor is closed.  Each mapping is one entry of the process's
** vm.max_map_count (65530 by default); past it mmap fails, and a file that
** could not be mapped is read with pread through the descriptor cache. */
static const unsigned char *file_map(bc_store *s, bc_file *f, uint64_t off, uint64_t n,
                                     bc_status *st) {
  *st = BC_OK;
  if (!s->use_mmap) return NULL;
  int tail = s->read_only && f->id == s->follow_tail;
  /* How much of f may be mapped. */
  uint64_t len = f->size;
  if (tail) {
    /* The writer's tail: as far as it is known never to be cut back. */
    if (off + n > s->follow_durable && s->follow_checked != f->size) {
      s->follow_checked = f->size;
      if (bc_lock_writer_gone(s)) s->follow_durable = f->size;
    }
    if (s->follow_durable < len) len = s->follow_durable;
  } else if (f->id == s->active_id && !s->read_only) {
    len = s->max_file_size < ACTIVE_MAP_MAX ? s->max_file_size : ACTIVE_MAP_MAX;
    if (f->size > len) len = f->size;
  }
  if (s->read_only && (!f->header_ok || f->missing)) len = 0;
  /* A follower's mapping that ends short of this read where more may be
  ** mapped now (its tail grew durable, or was sealed): mapped again. */
  if (s->read_only && f->map && off + n > f->map_len && off + n <= len) bc_file_unmap(f);
  if (!f->map) {
    int fd;
    if (len == 0 || len > SIZE_MAX || (*st = bc_file_fd(s, f, &fd)) != BC_OK) return NULL;
    void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return NULL;
    f->map = p;
    f->map_len = (size_t)len;
    if (f->id != s->active_id && !tail) bc_file_close(s, f);
  }
  return off + n <= f->map_len ? f->map + off : NULL;
}

void bc_file_map(bc_store *s, bc_file *f) {
  bc_status st;
  (void)file_map(s, f, 0, 0, &st);
}

/* The checks of a read: rec (n bytes, resident) is a PUT whose CRC holds and
** whose key, sizes and seq are e's.  BC_OK with *r decoded, else BC_CORRUPT
** naming file f and the offset. */
static bc_status rec_verify(bc_store *s, const bc_file *f, const bc_entry *e,
                            const void *key, size_t klen,
                            const unsigned char *rec, bc_rec *r) {
  uint32_t crc;
  if (bc_rec_decode(rec, r, &crc) != 0 || r->type != BC_REC_PUT ||
      r->klen != klen || r->vlen != e->vsize || r->seq != bc_e_seq(e) ||
      !bc_rec_crc_ok(rec, r, crc) ||
      (klen && memcmp(rec + BC_REC_HEADER_SIZE, key, klen) != 0))
    return bc_seterr(s, BC_CORRUPT,
                     "data file %010u" BC_SUFFIX_DATA ": record at offset %llu fails its "
                     "checksum or does not match the keydir",
                     f->id, (unsigned long long)bc_e_off(e));
  return BC_OK;
}

/* Read the n-byte record at off of f into buf->data (reserved by the
** caller): one pread. */
static bc_status rec_pread(bc_store *s, bc_file *f, uint64_t off, uint64_t n,
                           bc_buf *buf) {
  int fd;
  bc_status st = bc_file_fd(s, f, &fd);
  if (st != BC_OK) return st;
  ssize_t r = bc_read_all(&s->io, fd, buf->data, (size_t)n, off);
  if (r < 0)
    return bc_seterr_errno(s, BC_IOERR, errno,
                           "data file %010u" BC_SUFFIX_DATA ": read at offset %llu failed",
                           f->id, (unsigned long long)off);
  if ((uint64_t)r < n)
    return bc_seterr(s, BC_CORRUPT,
                     "data file %010u" BC_SUFFIX_DATA ": record at offset %llu is cut "
                     "short", f->id, (unsigned long long)off);
  return BC_OK;
}

/* Entries that recovery knows cannot be read (docs/FORMAT.md "Damaged
** files"): BC_CORRUPT naming the file, before any I/O.  A lost entry (the
** newest version is a record of a transaction that could not be applied
** whole), a file that is gone, and a record past the end of a file that is
** not the active one (its hint said it was there: the file was cut). */
static bc_status damage_check(bc_store *s, const bc_file *f, const bc_entry *e) {
  uint64_t off = bc_e_off(e), n = bc_entry_rec_size(e);
  if (bc_e_lost(e))
    return bc_seterr(s, BC_CORRUPT,
                     "data file %010u" BC_SUFFIX_DATA ": this key's newest version "
                     "(seq %llu, at offset %llu) belongs to a transaction whose "
                     "records are not all readable; it is lost", f->id,
                     (unsigned long long)bc_e_seq(e), (unsigned long long)off);
  if (f->missing)
    return bc_seterr(s, BC_CORRUPT,
                     "data file %010u" BC_SUFFIX_DATA " is missing; its hint file says "
                     "it held this key's newest version (seq %llu)", f->id,
                     (unsigned long long)bc_e_seq(e));
  if (f->id != s->active_id && off + n > f->size)
    return bc_seterr(s, BC_CORRUPT,
                     "record missing: data file %010u" BC_SUFFIX_DATA " is shorter "
                     "(%llu bytes) than its hint says (a record at offset %llu, "
                     "%llu bytes)",
                     f->id, (unsigned long long)f->size, (unsigned long long)off,
                     (unsigned long long)n);
  return BC_OK;
}

bc_status bc_datafile_read(bc_store *s, const bc_entry *e, const void *key,
                           size_t klen, bc_buf *buf, const void **value) {
  uint64_t off = bc_e_off(e), n = bc_entry_rec_size(e);
  bc_file *f = bc_file_find(s, e->file_id); /* a snapshot may read a retired one */
  if (!f)
    return bc_seterr(s, BC_CORRUPT, "data file %010u" BC_SUFFIX_DATA " is missing",
                     e->file_id);
  bc_status dst = damage_check(s, f, e);
  if (dst != BC_OK) return dst;
  if (bc_buf_reserve(buf, (size_t)n) != 0)
    return bc_seterr(s, BC_NOMEM, "out of memory reading a %llu-byte record",
                     (unsigned long long)n);
  const unsigned char *mapped;
  bc_status st;
  if (e->file_id == s->active_id && off >= f->size) {
    /* Still in the write buffer (an entry past what it holds names a write
    ** that was undone: never read past it). */
    if (off - f->size > s->wlen || n > s->wlen - (off - f->size))
      return bc_seterr(s, BC_CORRUPT, "data file %010u" BC_SUFFIX_DATA ": no record at "
                       "offset %llu (a write there was undone)", f->id,
                       (unsigned long long)off);
    memcpy(buf->data, s->wbuf + (off - f->size), (size_t)n);
  } else if ((mapped = file_map(s, f, off, n, &st)) != NULL) {
    /* A copy, not a pointer into the mapping: the caller keeps the value
    ** after the store's mutex is released, when a merge may unmap it. */
    memcpy(buf->data, mapped, (size_t)n);
  } else if (st != BC_OK || (st = rec_pread(s, f, off, n, buf)) != BC_OK) {
    return st;
  }
  bc_rec r;
  if ((st = rec_verify(s, f, e, key, klen, buf->data, &r)) != BC_OK) return st;
  *value = buf->data + BC_REC_HEADER_SIZE + klen;
  return BC_OK;
}

bc_status bc_datafile_record(bc_store *s, bc_file *f, const bc_entry *e,
                             bc_buf *buf, const unsigned char **rec, bc_rec *r) {
  uint64_t off = bc_e_off(e), n = bc_entry_rec_size(e);
  bc_status dst = damage_check(s, f, e);
  if (dst != BC_OK) return dst;
  bc_status mst;
  const unsigned char *p = file_map(s, f, off, n, &mst);
  if (mst != BC_OK) return mst;
  if (!p) {
    if (bc_buf_reserve(buf, (size_t)n) != 0)
      return bc_seterr(s, BC_NOMEM, "out of memory reading a %llu-byte record",
                       (unsigned long long)n);
    bc_status st = rec_pread(s, f, off, n, buf);
    if (st != BC_OK) return st;
    p = buf->data;
  }
  bc_status st = rec_verify(s, f, e, e->key, bc_e_klen(e), p, r);
  if (st != BC_OK) return st;
  *rec = p;
  return BC_OK;
}

/* Read-ahead window of a walk. */
#define WALK_CHUNK (1u << 20)

/* How far past a damaged spot a walk looks for the next valid record, and
** how much work all of a walk's searches may do: record bytes checksummed
** and offsets tried, 256 MiB plus 8 times the file (crafted bytes could make
** every offset a plausible header of a huge record: without a budget the
** searches would be quadratic).  Spent, the walk stops at the damage. */
#define RESYNC_MAX (64u << 20)
#define RESYNC_BUDGET (256u << 20)

typedef struct walker {
  bc_store *s;
  int fd;
  uint32_t id;
  uint64_t size;
  bc_buf b;
  uint64_t win_off; /* file offset of b.data[0] */
  size_t win_len;   /* valid bytes in b */
  bc_status st;     /* set when a read fails */
  uint64_t budget;  /* resync work left (bytes checksummed + offsets tried) */
} walker;

/* Make [off, off + n) resident.  1 ok, 0 past the end of the file, -1 error
** (w->st set). */
static int resident(walker *w, uint64_t off, uint64_t n) {
  if (off + n > w->size) return 0;
  if (off >= w->win_off && off + n <= w->win_off + w->win_len) return 1;
  size_t want = n > WALK_CHUNK ? (size_t)n : WALK_CHUNK;
  if (off + want > w->size) want = (size_t)(w->size - off);
  if (bc_buf_reserve(&w->b, want) != 0) {
    w->st = bc_seterr(w->s, BC_NOMEM,
                      "out of memory reading data file %010u" BC_SUFFIX_DATA, w->id);
    return -1;
  }
  ssize_t got = bc_read_all(&w->s->io, w->fd, w->b.data, want, off);
  if (got < 0) {
    w->st = bc_seterr_errno(w->s, BC_IOERR, errno,
                            "data file %010u" BC_SUFFIX_DATA ": read at offset %llu "
                            "failed", w->id, (unsigned long long)off);
    return -1;
  }
  w->win_off = off;
  w->win_len = (size_t)got;
  return off + n <= w->win_off + w->win_len; /* shorter than its size said */
}

enum { REC_OK, REC_BADCRC, REC_UNDECODABLE, REC_PAST_END, REC_ERROR };

/* Classify the record at off; on REC_OK and REC_BADCRC *r, *crc and *p (its
** bytes, resident) are set. */
static int rec_at(walker *w, uint64_t off, bc_rec *r, uint32_t *crc,
                  const unsigned char **p) {
  int k = resident(w, off, BC_REC_HEADER_SIZE);
  if (k < 0) return REC_ERROR;
  if (k == 0) return REC_PAST_END;
  if (off > BC_MAX_OFFSET) return REC_UNDECODABLE;
  const unsigned char *h = w->b.data + (off - w->win_off);
  int decoded = bc_rec_decode(h, r, crc) == 0;
  if (!decoded) {
    /* Damage in the type, reserved or seq bytes leaves the sizes usable:
    ** take them as read (seq cut to its 56 bits) so that the record can
    ** still be framed and its key reported as damaged. */
    bc_rec_peek(h, r);
    r->seq &= BC_MAX_SEQ;
    if (r->klen > BC_MAX_KEY_SIZE || r->vlen > BC_MAX_VALUE_SIZE)
      return REC_UNDECODABLE;
  }
  k = resident(w, off, bc_rec_size(r->klen, r->vlen));
  if (k < 0) return REC_ERROR;
  if (k == 0) return decoded ? REC_PAST_END : REC_UNDECODABLE;
  *p = w->b.data + (off - w->win_off);
  return decoded && bc_rec_crc_ok(*p, r, *crc) ? REC_OK : REC_BADCRC;
}

/* The offset of the first valid record in [from, until) (until 0: up to
** RESYNC_MAX bytes on), or 0 if none. */
static uint64_t resync(walker *w, uint64_t from, uint64_t until) {
  uint64_t limit = from + RESYNC_MAX < w->size ? from + RESYNC_MAX : w->size;
  if (until && until < limit) limit = until;
  for (uint64_t x = from; x < limit && x + BC_REC_HEADER_SIZE <= w->size; x++) {
    if (w->budget == 0) return 0;
    w->budget--;
    /* Only offsets whose header decodes and whose record fits cost a
    ** checksum; stop when the budget is spent. */
    int k = resident(w, x, BC_REC_HEADER_SIZE);
    if (k <= 0) return 0;
    bc_rec r;
    uint32_t crc;
    if (x > BC_MAX_OFFSET || bc_rec_decode(w->b.data + (x - w->win_off), &r, &crc) != 0)
      continue;
    uint64_t n = bc_rec_size(r.klen, r.vlen);
    if (x + n > w->size) continue;
    if (n > w->budget) {
      w->budget = 0;
      return 0;
    }
    w->budget -= n;
    const unsigned char *p;
    k = rec_at(w, x, &r, &crc, &p);
    if (k == REC_ERROR) return 0;
    if (k == REC_OK) return x;
  }
  return 0;
}

/* Where the next valid record starts after the damaged one at off (k: how
** rec_at classified it; r: its sizes when k is REC_BADCRC): *next, 0 when
** nothing valid follows.  The first valid record after off is searched
** inside the damaged record's own extent first, so that a record whose
** sizes were damaged can never swallow valid records (and a reader that saw
** the file before it grew frames it the same way); else it is right after
** it if its sizes hold; else wherever a search finds one.  -1 when reading
** the record after it failed (w->st); a failed read in a search leaves
** *next 0 and w->st set. */
static int next_valid(walker *w, uint64_t off, int k, const bc_rec *r, uint64_t *next) {
  uint64_t after = k == REC_BADCRC ? off + bc_rec_size(r->klen, r->vlen) : 0;
  *next = resync(w, off + 1, after);
  if (*next || !after) return 0;
  bc_rec r2;
  uint32_t c2;
  const unsigned char *p2;
  int k2 = REC_OK;
  if (after < w->size) {
    /* Also paid from the budget: the record there is checksummed. */
    uint64_t cost = 0;
    if (resident(w, after, BC_REC_HEADER_SIZE) > 0 &&
        bc_rec_decode(w->b.data + (after - w->win_off), &r2, &c2) == 0)
      cost = bc_rec_size(r2.klen, r2.vlen);
    if (cost > w->budget) {
      w->budget = 0;
      k2 = REC_UNDECODABLE;
    } else {
      w->budget -= cost;
      k2 = rec_at(w, after, &r2, &c2, &p2);
    }
  }
  if (k2 == REC_ERROR) return -1;
  *next = k2 == REC_OK ? after : resync(w, after + 1, 0);
  return 0;
}

/* What a damaged record at off with a valid record at next after it is
** reported as: *r and *p (its bytes, resident; NULL for none).  A record
** whose framing holds (k REC_BADCRC, ending at or before next) comes with
** its key as read.  Bytes that frame no record: if the header still shows a
** key size that fits before the next record, that key as read (a damaged
** value size); else a span with no key (type 0).  -1 when a read failed
** (w->st). */
static int frame_damage(walker *w, uint64_t off, uint64_t next, int k, bc_rec *r,
                        uint32_t *crc, const unsigned char **p) {
  if (k == REC_BADCRC && off + bc_rec_size(r->klen, r->vlen) <= next)
    return rec_at(w, off, r, crc, p) == REC_ERROR ? -1 : 0;
  bc_rec as_read = {0};
  int k3 = resident(w, off, BC_REC_HEADER_SIZE);
  if (k3 < 0) return -1;
  if (k3 > 0) bc_rec_peek(w->b.data + (off - w->win_off), &as_read);
  uint32_t klen = as_read.klen;
  if (k3 > 0 && klen <= BC_MAX_KEY_SIZE && off + BC_REC_HEADER_SIZE + klen <= next &&
      next - off - BC_REC_HEADER_SIZE - klen <= BC_MAX_VALUE_SIZE &&
      resident(w, off, BC_REC_HEADER_SIZE + klen) > 0) {
    *r = as_read;
    r->seq &= BC_MAX_SEQ;
    r->vlen = (uint32_t)(next - off - BC_REC_HEADER_SIZE - klen);
    *p = w->b.data + (off - w->win_off);
    return 0;
  }
  if (w->st != BC_OK) return -1;
  memset(r, 0, sizeof *r);
  *p = NULL;
  return 0;
}

/* ri's key and value, and a marker's arg, from the record's bytes at p. */
static void info_bytes(bc_recinfo *ri, const unsigned char *p) {
  ri->key = p + BC_REC_HEADER_SIZE;
  ri->value = ri->key + ri->r.klen;
  if (!ri->damaged && (ri->r.type == BC_REC_ROLLBACK_TO || ri->r.type == BC_REC_COMMIT))
    ri->arg = bc_rec_arg(ri->value);
}

bc_status bc_datafile_walk(bc_store *s, int fd, uint32_t id, uint64_t from,
                           uint64_t size, bc_rec_cb cb, void *arg, uint64_t *end,
                           int *bad) {
  walker w = {s, fd, id, size, {0}, 0, 0, BC_OK, RESYNC_BUDGET + 8 * size};
  uint64_t off = from;
  bc_status st = BC_OK;
  *bad = 0;
  while (off < size) {
    bc_rec r;
    uint32_t crc = 0;
    const unsigned char *p = NULL;
    int k = rec_at(&w, off, &r, &crc, &p);
    if (k == REC_ERROR) {
      st = w.st;
      break;
    }
    bc_recinfo ri;
    memset(&ri, 0, sizeof ri);
    ri.off = off;
    uint64_t next;
    if (k == REC_OK) {
      next = off + bc_rec_size(r.klen, r.vlen);
    } else {
      /* Damage.  The searches for the next record move the window: the
      ** damaged record is brought back after them. */
      if (next_valid(&w, off, k, &r, &next) != 0 ||
          (k == REC_BADCRC && rec_at(&w, off, &r, &crc, &p) == REC_ERROR) ||
          w.st != BC_OK) {
        st = w.st;
        break;
      }
      if (!next) {
        /* Nothing valid after it: a torn tail, or damage to the end. */
        if (k == REC_BADCRC) {
          ri.damaged = 1;
          ri.r = r;
          info_bytes(&ri, p);
          st = cb(arg, &ri);
        }
        *bad = 1;
        break;
      }
      ri.damaged = 1;
      if (frame_damage(&w, off, next, k, &r, &crc, &p) != 0) {
        st = w.st;
        break;
      }
    }
    ri.r = r;
    if (p) info_bytes(&ri, p);
    st = cb(arg, &ri);
    if (st != BC_OK) break;
    off = next;
  }
  *end = off;
  free(w.b.data);
  return st;
}
