/*
** files.c -- the table of a store's open data files (s->files), the cache
** of their descriptors, and the bookkeeping kept per file: its mapping, its
** range of sequence numbers, and its live bytes.
**
** Invariants:
**  - s->files is sorted by id and holds every data file the keydir may point
**    to; its fds are owned.  Besides the active file's, at most
**    s->max_open_files of them are open, in the descriptor cache (an LRU);
**    the others are closed and opened again on demand (bc_file_fd).
**  - A file's live_bytes is the sum of the record sizes of the keydir
**    entries that point into it (bc_acct keeps it so at every change of an
**    entry).
*/
#include "bitcask.h"
#include "error.h"
#include "files.h"
#include "format.h"
#include "io.h"
#include "layout.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* ------------------------------------------------------ the files array */

size_t bc_file_lower_bound(const bc_store *s, uint32_t id) {
  size_t lo = 0, hi = s->nfiles;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->files[mid].id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

bc_file *bc_file_get(bc_store *s, uint32_t id) {
  size_t lo = bc_file_lower_bound(s, id);
  return lo < s->nfiles && s->files[lo].id == id ? &s->files[lo] : NULL;
}

bc_file *bc_file_find(bc_store *s, uint32_t id) {
  bc_file *f = bc_file_get(s, id);
  for (size_t i = 0; !f && i < s->nretired; i++)
    if (s->retired[i].id == id) f = &s->retired[i];
  return f;
}

bc_file *bc_file_add(bc_store *s, uint32_t id) {
  if (s->nfiles == s->capfiles) {
    size_t cap = s->capfiles ? s->capfiles * 2 : 16;
    bc_file *p = realloc(s->files, cap * sizeof *p);
    if (!p) return NULL;
    s->files = p;
    s->capfiles = cap;
  }
  size_t at = s->nfiles;
  while (at > 0 && s->files[at - 1].id > id) at--;
  memmove(&s->files[at + 1], &s->files[at], (s->nfiles - at) * sizeof *s->files);
  s->nfiles++;
  bc_file *f = &s->files[at];
  memset(f, 0, sizeof *f);
  f->id = id;
  f->fd = -1;
  f->min_seq = UINT64_MAX;
  return f;
}

void bc_file_unmap(bc_file *f) {
  if (f->map) munmap((void *)f->map, f->map_len);
  f->map = NULL;
  f->map_len = 0;
}

void bc_file_remove(bc_store *s, uint32_t id) {
  bc_file *f = bc_file_get(s, id);
  if (!f) return;
  bc_file_unmap(f);
  bc_file_close(s, f);
  size_t at = (size_t)(f - s->files);
  memmove(&s->files[at], &s->files[at + 1],
          (s->nfiles - at - 1) * sizeof *s->files);
  s->nfiles--;
}

/* The suffix f's data file has now: .data.merging for a merge output not
** yet installed (a read-only store's view), else .data. */
static const char *data_suffix(const bc_file *f) {
  return f->path_merging ? BC_SUFFIX_DATA_MERGING : BC_SUFFIX_DATA;
}

/* ------------------------------------------------- the descriptor cache
**
** An LRU of the descriptors of data files other than the active one (as
** LevelDB's table cache): at most s->max_open_files are open at a time.
** The active file's descriptor, a merge's outputs, LOCK, and the short-lived
** descriptors of hint files, MERGE and the directory are outside it.  A slot
** names its file by id, so the memmoves of s->files do not disturb it. */

/* Unlink slot i from the LRU list. */
static void fdc_unlink(bc_store *s, uint32_t i) {
  bc_fdslot *e = &s->fdc.slots[i];
  if (e->prev != BC_FDC_NIL)
    s->fdc.slots[e->prev].next = e->next;
  else
    s->fdc.head = e->next;
  if (e->next != BC_FDC_NIL)
    s->fdc.slots[e->next].prev = e->prev;
  else
    s->fdc.tail = e->prev;
}

/* Link slot i in as the most recently used. */
static void fdc_push(bc_store *s, uint32_t i) {
  bc_fdslot *e = &s->fdc.slots[i];
  e->prev = BC_FDC_NIL;
  e->next = s->fdc.head;
  if (s->fdc.head != BC_FDC_NIL) s->fdc.slots[s->fdc.head].prev = i;
  s->fdc.head = i;
  if (s->fdc.tail == BC_FDC_NIL) s->fdc.tail = i;
}

void bc_file_uncache(bc_store *s, bc_file *f) {
  if (!f->slot) return;
  uint32_t i = f->slot - 1;
  fdc_unlink(s, i);
  s->fdc.slots[i].next = s->fdc.unused;
  s->fdc.unused = i;
  s->fdc.n--;
  f->slot = 0;
}

void bc_file_close(bc_store *s, bc_file *f) {
  bc_file_uncache(s, f);
  if (f->fd >= 0) s->io.close(s->io.ctx, f->fd);
  f->fd = -1;
}

/* Close the least recently used cached descriptor.  0, or -1 if none. */
static int fdc_evict(bc_store *s) {
  if (s->fdc.tail == BC_FDC_NIL) return -1;
  bc_file *v = bc_file_get(s, s->fdc.slots[s->fdc.tail].id);
  if (v && v->slot == s->fdc.tail + 1) {
    bc_file_close(s, v);
  } else {
    /* Cannot happen (a file leaves s->files only through bc_file_remove,
    ** which closes it first, or bc_file_retire, which takes its descriptor
    ** out of the cache first); drop the slot rather than loop. */
    uint32_t i = s->fdc.tail;
    fdc_unlink(s, i);
    s->fdc.slots[i].next = s->fdc.unused;
    s->fdc.unused = i;
    s->fdc.n--;
  }
  return 0;
}

bc_status bc_file_fd(bc_store *s, bc_file *f, int *fd) {
  if (f->fd >= 0) {
    if (f->slot && s->fdc.head != f->slot - 1) {
      fdc_unlink(s, f->slot - 1);
      fdc_push(s, f->slot - 1);
    }
    *fd = f->fd;
    return BC_OK;
  }
  while (s->fdc.n >= s->max_open_files)
    if (fdc_evict(s) != 0) break;
  if (s->fdc.unused == BC_FDC_NIL) {
    /* Grow the slots (doubling, up to the limit). */
    uint32_t cap = s->fdc.cap ? s->fdc.cap * 2 : 16;
    if (cap > s->max_open_files) cap = s->max_open_files;
    if (cap <= s->fdc.cap) cap = s->fdc.cap + 1;
    bc_fdslot *p = realloc(s->fdc.slots, (size_t)cap * sizeof *p);
    if (!p) return bc_seterr(s, BC_NOMEM, "out of memory");
    s->fdc.slots = p;
    for (uint32_t i = cap; i-- > s->fdc.cap;) {
      p[i].next = s->fdc.unused;
      s->fdc.unused = i;
    }
    s->fdc.cap = cap;
  }
  char path[PATH_MAX];
  int d;
  for (;;) {
    bc_path_id(s, path, f->id, data_suffix(f));
    d = s->io.open(s->io.ctx, path, O_RDONLY, 0);
    if (d >= 0) break;
    if (errno == ENOENT && f->path_merging) {
      f->path_merging = 0; /* the writer finished the merge: renamed */
      continue;
    }
    /* Out of descriptors: give back the cache's, oldest first. */
    if ((errno == EMFILE || errno == ENFILE) && fdc_evict(s) == 0) continue;
    if (errno == ENOENT && s->read_only)
      return bc_seterr_errno(s, BC_IOERR, errno,
                             "data file %010u" BC_SUFFIX_DATA ": open failed: the "
                             "writer removed it (a merge) since this reader listed "
                             "the files; bc_refresh catches up", f->id);
    return bc_seterr_errno(s, BC_IOERR, errno, "data file %010u%s: open failed", f->id,
                           data_suffix(f));
  }
  uint32_t i = s->fdc.unused;
  s->fdc.unused = s->fdc.slots[i].next;
  s->fdc.slots[i].id = f->id;
  fdc_push(s, i);
  s->fdc.n++;
  f->slot = i + 1;
  f->fd = d;
  *fd = d;
  return BC_OK;
}

int bc_file_stat(bc_store *s, bc_file *f, struct stat *sb) {
  if (f->fd >= 0) return fstat(f->fd, sb);
  char path[PATH_MAX];
  bc_path_id(s, path, f->id, data_suffix(f));
  return stat(path, sb);
}

/* ------------------------------------------------------- a file's header */


bc_status bc_file_read_header(bc_store *s, bc_file *f, int merging) {
  uint32_t id = f->id;
  const char *suffix = merging ? BC_SUFFIX_DATA_MERGING : BC_SUFFIX_DATA;
  f->path_merging = merging;
  int fd;
  bc_status st = bc_file_fd(s, f, &fd);
  if (st != BC_OK) return st;
  /* The header first, then the size: a writer may be creating the file
  ** (header, then records) meanwhile, and a size read before a header it
  ** finds would be shorter than the header -- a reader would then take the
  ** header's bytes for a record at offset 0 when the file grows. */
  unsigned char hdr[BC_FILE_HEADER_SIZE];
  ssize_t n = bc_read_all(&s->io, fd, hdr, sizeof hdr, 0);
  if (n < 0)
    return bc_seterr_errno(s, BC_IOERR, errno, "data file %010u%s: read failed", id,
                           suffix);
  struct stat sb;
  if (fstat(fd, &sb) != 0)
    return bc_seterr_errno(s, BC_IOERR, errno, "data file %010u%s: stat failed", id,
                           suffix);
  f->size = (uint64_t)sb.st_size;
  uint32_t version, flags, fid;
  f->header_ok = n == (ssize_t)sizeof hdr &&
                 bc_file_header_decode(hdr, &version, &flags, &fid) == 0 && fid == id;
  if (f->header_ok) {
    if (version > BC_FORMAT_VERSION)
      return bc_seterr(s, BC_VERSION,
                       "data file %010u" BC_SUFFIX_DATA " has format %u, newer "
                       "than this library's %d", id, version, BC_FORMAT_VERSION);
    if (version < 1) f->header_ok = 0;
    f->version = version;
    f->merged = (flags & BC_FILE_FLAG_MERGED) != 0;
  }
  return BC_OK;
}

/* ------------------------------------------------------------ the table */

/* A quarter of the soft RLIMIT_NOFILE (UINT32_MAX if unlimited or
** unknown), at least 1: the most descriptors the cache may take, so that the
** store leaves most of the process's to the rest of it -- a cache allowed
** more than the process can hold fills up and leaves none for OWNERS, a
** hint file, the directory's fsync.  The default max_open_files is this, at
** most BC_DEFAULT_MAX_OPEN_FILES_CAP; an explicit value can only be lowered
** to it. */
static uint32_t quarter_of_rlimit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
      rl.rlim_cur / 4 >= UINT32_MAX)
    return UINT32_MAX;
  return rl.rlim_cur / 4 ? (uint32_t)(rl.rlim_cur / 4) : 1;
}

void bc_file_note_seq(bc_file *f, uint64_t seq) {
  if (seq < f->min_seq) f->min_seq = seq;
  if (seq > f->max_seq) f->max_seq = seq;
}

void bc_files_init(bc_store *s, uint32_t max_open_files) {
  uint32_t q = quarter_of_rlimit();
  uint32_t want = max_open_files ? max_open_files : BC_DEFAULT_MAX_OPEN_FILES_CAP;
  s->max_open_files = want < q ? want : q;
  s->fdc.head = s->fdc.tail = s->fdc.unused = BC_FDC_NIL;
}

void bc_files_free(bc_store *s) {
  for (size_t i = 0; i < s->nfiles; i++) {
    bc_file_unmap(&s->files[i]);
    bc_file_close(s, &s->files[i]);
  }
  free(s->fdc.slots);
  s->fdc.slots = NULL;
  free(s->files);
  s->files = NULL;
  s->nfiles = s->capfiles = 0;
}
