/*
** files.h -- files.c's interface: one data file of a store (bc_file), the
** sorted table of them (s->files), the descriptor cache, and live-byte
** accounting.
*/
#ifndef BC_FILES_H
#define BC_FILES_H

#include "bitcask.h"
#include "format.h"
#include "keydir.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

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

/* files.c: the files array (sorted by id). */
bc_file *bc_file_get(bc_store *s, uint32_t id);
/* A file of s->files or of s->retired (the merge inputs open snapshots may
** still read, versions.c). */
bc_file *bc_file_find(bc_store *s, uint32_t id);
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

#endif /* BC_FILES_H */
