/*
** layout.h -- the directory layout of a store: the name of every file the
** engine writes (docs/FORMAT.md "Files"), spelled once.
**
** A data file and the files that go with it are named by its 32-bit id,
** written as 10 decimal digits, then a suffix: "0000000007.data".  The other
** files have fixed names.  Every other file in the directory is foreign.
** layout.c builds their paths, parses names and lists a directory.
*/
#ifndef BC_LAYOUT_H
#define BC_LAYOUT_H

#include "bitcask.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

/* Suffixes after "<10-digit id>". */
#define BC_SUFFIX_DATA         ".data"         /* a data file */
#define BC_SUFFIX_HINT         ".hint"         /* its hint file */
#define BC_SUFFIX_DATA_MERGING ".data.merging" /* a merge output, not yet installed */
#define BC_SUFFIX_HINT_MERGING ".hint.merging" /* its hint */
#define BC_SUFFIX_DATA_TMP     ".data.tmp"     /* a private copy of a hard-
                                               ** linked tail being made
                                               ** (recovery's unshare_linked) */
#define BC_SUFFIX_HINT_TMP     ".hint.tmp"     /* a hint being written, or the
                                               ** active file's spilled hint */

/* Fixed names. */
#define BC_FILENAME_MERGE      "MERGE"         /* a merge's manifest: committed */
#define BC_FILENAME_MERGE_TMP  "MERGE.tmp"     /* ... being written */
#define BC_FILENAME_LOCK       "LOCK"          /* the writer's lock and pid */
#define BC_FILENAME_MARKER     "BITCASK"       /* says the directory is a store */
#define BC_FILENAME_MARKER_TMP "BITCASK.tmp"
#define BC_FILENAME_OWNERS     "OWNERS"        /* the caller's record of owners */
#define BC_FILENAME_OWNERS_TMP "OWNERS.tmp"

/* Longest name the engine puts in a store directory, plus '/' and NUL:
** bc_open and bc_destroy refuse a directory name that leaves no room for
** it in PATH_MAX. */
#define BC_LONGEST_NAME sizeof("/0000000000" BC_SUFFIX_HINT_MERGING)

/* ------------------------------------------------------------- layout.c */

/* Paths: "<dir>/<10-digit id><suffix>" or "<dir>/<name>" into out[PATH_MAX].
** The directory length is checked at open so these cannot truncate. */
void bc_path_id(const bc_store *s, char *out, uint32_t id, const char *suffix);
void bc_path_name(const bc_store *s, char *out, const char *name);
/* Directory listing: names of ours, parsed. */
typedef struct bc_dirlist {
  uint32_t *data, *hint, *data_merging, *hint_merging, *hint_tmp, *data_tmp;
  size_t ndata, nhint, ndata_merging, nhint_merging, nhint_tmp, ndata_tmp;
  int has_merge, has_merge_tmp, has_lock, has_marker, has_marker_tmp;
  char *foreign;   /* first name not ours, malloc'd, or NULL */
  size_t nentries; /* every entry but . and .. */
} bc_dirlist;
/* List dir into *dl (dl->data sorted; the other sets in directory order).
** s, when not NULL, receives the message of a failure. */
bc_status bc_dirlist_read(bc_store *s, const char *dir, bc_dirlist *dl);
void bc_dirlist_free(bc_dirlist *dl);
/* The id-named files of a listing, one set per suffix, in this order. */
typedef struct bc_idset {
  const uint32_t *ids; /* borrowed from the listing */
  size_t n;
  const char *suffix;  /* BC_SUFFIX_* */
} bc_idset;
enum { BC_SET_DATA, BC_SET_HINT, BC_SET_DATA_MERGING, BC_SET_HINT_MERGING,
       BC_SET_HINT_TMP, BC_SET_DATA_TMP, BC_DIRLIST_NSETS };
void bc_dirlist_sets(const bc_dirlist *dl, bc_idset sets[BC_DIRLIST_NSETS]);
/* Classify a name: returns the kind (0 not ours) and *id. */
enum { BC_NAME_NONE = 0, BC_NAME_DATA, BC_NAME_HINT, BC_NAME_DATA_MERGING,
       BC_NAME_HINT_MERGING, BC_NAME_HINT_TMP, BC_NAME_MERGE,
       BC_NAME_MERGE_TMP, BC_NAME_LOCK, BC_NAME_MARKER, BC_NAME_MARKER_TMP,
       BC_NAME_OWNERS, BC_NAME_OWNERS_TMP, BC_NAME_DATA_TMP };
int bc_name_kind(const char *name, uint32_t *id);
/* Arrays of file ids: append (-1 on NOMEM, the array unchanged), test
** membership, sort ascending. */
int bc_ids_push(uint32_t **a, size_t *n, uint32_t id);
int bc_ids_has(const uint32_t *a, size_t n, uint32_t id);
void bc_ids_sort(uint32_t *a, size_t n);

#endif /* BC_LAYOUT_H */
