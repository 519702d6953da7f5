/*
** marker.h -- marker.c's interface: the BITCASK marker file.
*/
#ifndef BC_MARKER_H
#define BC_MARKER_H

#include "bitcask.h"

#include <stddef.h>

/* *found: 1 a valid marker, 0 none, 2 a strict prefix of one (a creation
** cut short).  BC_CORRUPT for anything else. */
bc_status bc_marker_read(bc_store *s, int *found, int *created_dir);
bc_status bc_marker_write(bc_store *s, int created_dir);
/* Parse a marker's text (bc_destroy reads it without a store): 0 when it
** is a valid marker (*version and *created_dir filled), -1 when it is not. */
int bc_marker_parse(const char *text, size_t len, int *version,
                    int *created_dir);

#endif /* BC_MARKER_H */
