/*
** io.h -- io.c's interface: the POSIX bc_io and the helpers on top of a
** bc_io (whole writes and reads, fsync of a file and of a directory), the
** growable bc_buf, the clock.
*/
#ifndef BC_IO_H
#define BC_IO_H

#include "bitcask.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

extern const bc_io bc_posix_io;
int bc_write_all(const bc_io *io, int fd, const void *buf, size_t n, uint64_t off);
/* Bytes read (< n only at end of file) or -1. */
ssize_t bc_read_all(const bc_io *io, int fd, void *buf, size_t n, uint64_t off);
int bc_fsync_dir(const bc_io *io, const char *dir);
/* fsync through s->io, counted in s->fsyncs. */
int bc_fsync(bc_store *s, int fd);
int bc_fsync_store_dir(bc_store *s);
int bc_buf_reserve(bc_buf *b, size_t n);
uint64_t bc_now_ms(void);

#endif /* BC_IO_H */
