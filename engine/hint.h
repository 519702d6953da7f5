/*
** hint.h -- hint.c's interface: building, writing and loading hint files.
*/
#ifndef BC_HINT_H
#define BC_HINT_H

#include "bitcask.h"
#include "datafile.h"
#include "files.h"
#include "format.h"

#include <stddef.h>
#include <stdint.h>

/* Growable in-memory hint file being built. */
typedef struct bc_hintbuf {
  unsigned char *data; /* owned */
  size_t len, cap;
  uint32_t count;
} bc_hintbuf;

/* Start the hint of data file `id` in memory: its header (data size filled
** in by bc_hintbuf_finish).  h->data is owned by h (bc_hintbuf_free).  -1 on
** NOMEM. */
int bc_hintbuf_init(bc_hintbuf *h, uint32_t id);
/* Append the entry of the record r at offset off.  key: the key bytes; for
** a transaction marker (no key) arg is its value, stored after the entry in
** place of a key.  -1 on NOMEM (h unchanged). */
int bc_hintbuf_add(bc_hintbuf *h, const bc_rec *r, uint64_t off, const void *key,
                   uint64_t arg);
/* Complete h for a data file of data_size bytes: the header's size and the
** trailer (count, CRC).  -1 on NOMEM. */
int bc_hintbuf_finish(bc_hintbuf *h, uint32_t id, uint64_t data_size);
/* Free h's buffer (h is then empty; a no-op on an empty one). */
void bc_hintbuf_free(bc_hintbuf *h);
/* Write h to `path` (O_TRUNC), fsync if durable, then rename to `final`
** when final != NULL (and fsync the directory if durable). */
bc_status bc_hint_write(bc_store *s, const bc_hintbuf *h, const char *path,
                        const char *final, int durable);
/* Build the hint of sealed file f by walking its records, write and install
** it. */
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

#endif /* BC_HINT_H */
