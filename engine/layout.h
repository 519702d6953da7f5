/*
** layout.h -- the directory layout of a store: the name of every file the
** engine writes (docs/FORMAT.md "Files"), spelled once.
**
** A data file and the files that go with it are named by its 32-bit id,
** written as 10 decimal digits, then a suffix: "0000000007.data".  The other
** files have fixed names.  Every other file in the directory is foreign.
*/
#ifndef BC_LAYOUT_H
#define BC_LAYOUT_H

/* Suffixes after "<10-digit id>". */
#define BC_SUFFIX_DATA         ".data"         /* a data file */
#define BC_SUFFIX_HINT         ".hint"         /* its hint file */
#define BC_SUFFIX_DATA_MERGING ".data.merging" /* a merge output, not yet installed */
#define BC_SUFFIX_HINT_MERGING ".hint.merging" /* its hint */
#define BC_SUFFIX_DATA_TMP     ".data.tmp"     /* an active file being given a
                                               ** new header (recovery) */
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

#endif /* BC_LAYOUT_H */
