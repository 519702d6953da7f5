/*
** datafile.c -- data files: create one with its header, read one record,
** scan all records in order.
**
** Invariants:
**  - A data file is a 32-byte header followed by records (docs/FORMAT.md);
**    records are only ever appended (active.c, merge.c) and never rewritten.
**  - A read verifies everything before returning a byte of value: the CRC of
**    header+key+value, the type (PUT), and that key and seq match the keydir
**    entry.  Damage is BC_CORRUPT naming file and offset, never data.
**  - A scan calls back for every record whose header decodes and that fits
**    in the file, in file order, flagging those that fail their CRC, and
**    stops at the first header that does not decode or record cut short.
**    Whether damage is a torn tail or corruption is the caller's call
**    (recovery.c).
*/
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

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

bc_status bc_datafile_read(bc_store *s, const bc_entry *e, const void *key,
                           size_t klen, bc_buf *buf, const void **value) {
  uint64_t off = bc_e_off(e), n = bc_entry_rec_size(e);
  bc_file *f = bc_file_get(s, e->file_id);
  if (!f) return bc_seterr(s, BC_CORRUPT, "data file %010u.data is missing", e->file_id);
  if (bc_buf_reserve(buf, (size_t)n) != 0)
    return bc_seterr(s, BC_NOMEM, "out of memory reading a %llu-byte record",
                     (unsigned long long)n);
  if (e->file_id == s->active_id && off >= f->size) {
    /* Still in the write buffer. */
    memcpy(buf->data, s->wbuf + (off - f->size), (size_t)n);
  } else {
    ssize_t r = bc_read_all(&s->io, f->fd, buf->data, (size_t)n, off);
    if (r < 0)
      return bc_seterr_errno(s, BC_IOERR, errno,
                             "data file %010u.data: read at offset %llu failed",
                             f->id, (unsigned long long)off);
    if ((uint64_t)r < n)
      return bc_seterr(s, BC_CORRUPT,
                       "data file %010u.data: record at offset %llu is cut short",
                       f->id, (unsigned long long)off);
  }
  bc_rec r;
  uint32_t crc;
  if (bc_rec_decode(buf->data, &r, &crc) != 0 || r.type != BC_REC_PUT ||
      r.klen != klen || r.vlen != e->vsize || r.seq != bc_e_seq(e) ||
      !bc_rec_crc_ok(buf->data, &r, crc) ||
      (klen && memcmp(buf->data + BC_REC_HEADER_SIZE, key, klen) != 0))
    return bc_seterr(s, BC_CORRUPT,
                     "data file %010u.data: record at offset %llu fails its "
                     "checksum or does not match the keydir",
                     f->id, (unsigned long long)off);
  *value = buf->data + BC_REC_HEADER_SIZE + klen;
  return BC_OK;
}

/* Read-ahead window of a scan. */
#define SCAN_CHUNK (1u << 20)

bc_status bc_datafile_scan(bc_store *s, int fd, uint32_t id, uint64_t from,
                           uint64_t size, bc_rec_cb cb, void *arg, uint64_t *end,
                           int *bad) {
  bc_buf b = {0};
  uint64_t win_off = 0; /* file offset of b.data[0] */
  size_t win_len = 0;   /* valid bytes in b */
  uint64_t off = from;
  bc_status st = BC_OK;
  *bad = 0;
  while (off < size) {
    /* Make [off, off+need) resident, need = header first, then record. */
    uint64_t need = BC_REC_HEADER_SIZE;
    bc_rec r;
    uint32_t crc = 0;
    for (int pass = 0; pass < 2; pass++) {
      if (off + need > size) {
        *bad = 1;
        goto out;
      }
      if (off < win_off || off + need > win_off + win_len) {
        size_t want = need > SCAN_CHUNK ? (size_t)need : SCAN_CHUNK;
        if (off + want > size) want = (size_t)(size - off);
        if (bc_buf_reserve(&b, want) != 0) {
          st = bc_seterr(s, BC_NOMEM, "out of memory scanning data file %010u.data", id);
          goto out;
        }
        ssize_t got = bc_read_all(&s->io, fd, b.data, want, off);
        if (got < 0) {
          st = bc_seterr_errno(s, BC_IOERR, errno,
                               "data file %010u.data: read at offset %llu failed",
                               id, (unsigned long long)off);
          goto out;
        }
        win_off = off;
        win_len = (size_t)got;
        if (off + need > win_off + win_len) {
          *bad = 1; /* the file is shorter than its size said */
          goto out;
        }
      }
      if (pass == 0) {
        if (bc_rec_decode(b.data + (off - win_off), &r, &crc) != 0) {
          *bad = 1;
          goto out;
        }
        need = bc_rec_size(r.klen, r.vlen);
      }
    }
    const unsigned char *p = b.data + (off - win_off);
    if (off > BC_MAX_OFFSET) {
      *bad = 1;
      goto out;
    }
    bc_recinfo ri;
    ri.damaged = !bc_rec_crc_ok(p, &r, crc);
    ri.r = r;
    ri.off = off;
    ri.key = p + BC_REC_HEADER_SIZE;
    ri.value = p + BC_REC_HEADER_SIZE + r.klen;
    ri.arg = (r.type == BC_REC_ROLLBACK_TO || r.type == BC_REC_COMMIT)
                 ? bc_get_u64(ri.value) : 0;
    st = cb(arg, &ri);
    if (st != BC_OK) goto out;
    off += need;
  }
out:
  *end = off;
  free(b.data);
  return st;
}
