/*
** datafile.h -- datafile.c's interface: creating a data file, reading one
** record, walking a file's records, mapping a sealed file.
*/
#ifndef BC_DATAFILE_H
#define BC_DATAFILE_H

#include "bitcask.h"
#include "files.h"
#include "format.h"
#include "keydir.h"

#include <stdint.h>

/* Create (truncate) data file `id` with `suffix`, write its header; *fd open
** O_RDWR.  fsync of file and dir per `durable`. */
bc_status bc_datafile_create(bc_store *s, uint32_t id, const char *suffix,
                             uint32_t flags, int durable, int *fd);
/* Read the record of entry e into buf (one pread, or a copy from the write
** buffer), verify CRC, type, key and seq.  *value points into buf. */
bc_status bc_datafile_read(bc_store *s, const bc_entry *e, const void *key,
                           size_t klen, bc_buf *buf, const void **value);
/* Map the whole of f if this store maps files (see datafile.c's file_map);
** f->map says whether it is. */
void bc_file_map(bc_store *s, bc_file *f);
/* The whole record of entry e (header, key and value: bc_entry_rec_size(e)
** bytes) in f, a file other than the active one, verified as
** bc_datafile_read does; *r receives its decoded header.  *rec points into
** f's mapping when it has one -- no copy; valid while the caller holds s->mu
** and f stays in s->files -- else into buf, where it was read. */
bc_status bc_datafile_record(bc_store *s, bc_file *f, const bc_entry *e,
                             bc_buf *buf, const unsigned char **rec, bc_rec *r);
typedef bc_status (*bc_rec_cb)(void *arg, const bc_recinfo *ri);
/* Walk the records of data file fd (id for messages) from offset `from` (32:
** the first record) to size.
** Calls cb for each record whose header is plausible and that fits in the
** file, in order -- with ri->damaged set if it fails its CRC, and then goes
** on after it.  Stops at a header that does not decode or a record cut
** short: *end is that offset (size when the walk reached the end), *bad 1. */
bc_status bc_datafile_walk(bc_store *s, int fd, uint32_t id, uint64_t from,
                           uint64_t size, bc_rec_cb cb, void *arg, uint64_t *end,
                           int *bad);

#endif /* BC_DATAFILE_H */
