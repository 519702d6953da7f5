/*
** layout.c -- the directory layout of a store (layout.h, docs/FORMAT.md
** "Files"): the path of each file, what a name in the directory is, and the
** listing of a directory sorted into the engine's kinds of file.
**
** Invariants:
**  - Every name the engine creates comes from layout.h; bc_name_kind
**    recognises exactly those, and every other name is foreign.
**  - A data file's id is 1 .. UINT32_MAX, written as 10 decimal digits.
**  - Paths are built into PATH_MAX buffers: bc_open refuses a directory name
**    too long for its longest (BC_LONGEST_NAME), so they never truncate.
*/
#include "bitcask.h"
#include "error.h"
#include "layout.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------------- paths */

void bc_path_id(const bc_store *s, char *out, uint32_t id, const char *suffix) {
  snprintf(out, PATH_MAX, "%s/%010u%s", s->dir, id, suffix);
}

void bc_path_name(const bc_store *s, char *out, const char *name) {
  snprintf(out, PATH_MAX, "%s/%s", s->dir, name);
}

/* ---------------------------------------------------------------- names */

static int parse_id(const char *p, uint32_t *id) {
  uint64_t v = 0;
  for (int i = 0; i < 10; i++) {
    if (p[i] < '0' || p[i] > '9') return -1;
    v = v * 10 + (uint64_t)(p[i] - '0');
  }
  if (v == 0 || v > UINT32_MAX) return -1;
  *id = (uint32_t)v;
  return 0;
}

/* Every name of a store's directory and its kind (layout.h spells them). */
static const struct name_kind {
  const char *name;
  int kind;
} fixed_names[] = {
  {BC_FILENAME_MERGE, BC_NAME_MERGE},
  {BC_FILENAME_MERGE_TMP, BC_NAME_MERGE_TMP},
  {BC_FILENAME_LOCK, BC_NAME_LOCK},
  {BC_FILENAME_MARKER, BC_NAME_MARKER},
  {BC_FILENAME_MARKER_TMP, BC_NAME_MARKER_TMP},
  {BC_FILENAME_OWNERS, BC_NAME_OWNERS},
  {BC_FILENAME_OWNERS_TMP, BC_NAME_OWNERS_TMP},
}, id_suffixes[] = {
  {BC_SUFFIX_DATA, BC_NAME_DATA},
  {BC_SUFFIX_HINT, BC_NAME_HINT},
  {BC_SUFFIX_DATA_MERGING, BC_NAME_DATA_MERGING},
  {BC_SUFFIX_HINT_MERGING, BC_NAME_HINT_MERGING},
  {BC_SUFFIX_HINT_TMP, BC_NAME_HINT_TMP},
  {BC_SUFFIX_DATA_TMP, BC_NAME_DATA_TMP},
};

static int kind_of(const struct name_kind *t, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(name, t[i].name) == 0) return t[i].kind;
  return BC_NAME_NONE;
}

int bc_name_kind(const char *name, uint32_t *id) {
  *id = 0;
  int kind = kind_of(fixed_names, sizeof fixed_names / sizeof fixed_names[0], name);
  if (kind != BC_NAME_NONE) return kind;
  if (strlen(name) < 11 || parse_id(name, id) != 0) return BC_NAME_NONE;
  kind = kind_of(id_suffixes, sizeof id_suffixes / sizeof id_suffixes[0], name + 10);
  if (kind == BC_NAME_NONE) *id = 0;
  return kind;
}

/* ---------------------------------------------------------- sets of ids */

int bc_ids_push(uint32_t **a, size_t *n, uint32_t id) {
  uint32_t *p = realloc(*a, (*n + 1) * sizeof **a);
  if (!p) return -1;
  p[(*n)++] = id;
  *a = p;
  return 0;
}

int bc_ids_has(const uint32_t *a, size_t n, uint32_t id) {
  for (size_t i = 0; i < n; i++)
    if (a[i] == id) return 1;
  return 0;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

void bc_ids_sort(uint32_t *a, size_t n) {
  if (n) qsort(a, n, sizeof *a, cmp_u32);
}

/* ------------------------------------------------------------- listing */

bc_status bc_dirlist_read(bc_store *s, const char *dir, bc_dirlist *dl) {
  memset(dl, 0, sizeof *dl);
  DIR *d = opendir(dir);
  if (!d) {
    if (s) return bc_seterr_errno(s, BC_IOERR, errno, "cannot list the directory");
    return BC_IOERR;
  }
  struct dirent *de;
  int oom = 0;
  while ((de = readdir(d)) != NULL) {
    const char *n = de->d_name;
    if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0) continue;
    dl->nentries++;
    uint32_t id;
    int rc = 0;
    switch (bc_name_kind(n, &id)) {
      case BC_NAME_DATA: rc = bc_ids_push(&dl->data, &dl->ndata, id); break;
      case BC_NAME_HINT: rc = bc_ids_push(&dl->hint, &dl->nhint, id); break;
      case BC_NAME_DATA_MERGING: rc = bc_ids_push(&dl->data_merging, &dl->ndata_merging, id); break;
      case BC_NAME_HINT_MERGING: rc = bc_ids_push(&dl->hint_merging, &dl->nhint_merging, id); break;
      case BC_NAME_HINT_TMP: rc = bc_ids_push(&dl->hint_tmp, &dl->nhint_tmp, id); break;
      case BC_NAME_DATA_TMP: rc = bc_ids_push(&dl->data_tmp, &dl->ndata_tmp, id); break;
      case BC_NAME_MERGE: dl->has_merge = 1; break;
      case BC_NAME_MERGE_TMP: dl->has_merge_tmp = 1; break;
      case BC_NAME_LOCK: dl->has_lock = 1; break;
      case BC_NAME_MARKER: dl->has_marker = 1; break;
      case BC_NAME_MARKER_TMP: dl->has_marker_tmp = 1; break;
      case BC_NAME_OWNERS: case BC_NAME_OWNERS_TMP: break; /* owners.c */
      default:
        if (!dl->foreign) {
          dl->foreign = strdup(n);
          if (!dl->foreign) rc = -1;
        }
    }
    if (rc != 0) oom = 1;
  }
  closedir(d);
  if (oom) {
    bc_dirlist_free(dl);
    if (s) return bc_seterr(s, BC_NOMEM, "out of memory");
    return BC_NOMEM;
  }
  bc_ids_sort(dl->data, dl->ndata);
  return BC_OK;
}

void bc_dirlist_sets(const bc_dirlist *dl, bc_idset sets[BC_DIRLIST_NSETS]) {
  sets[BC_SET_DATA] = (bc_idset){dl->data, dl->ndata, BC_SUFFIX_DATA};
  sets[BC_SET_HINT] = (bc_idset){dl->hint, dl->nhint, BC_SUFFIX_HINT};
  sets[BC_SET_DATA_MERGING] =
      (bc_idset){dl->data_merging, dl->ndata_merging, BC_SUFFIX_DATA_MERGING};
  sets[BC_SET_HINT_MERGING] =
      (bc_idset){dl->hint_merging, dl->nhint_merging, BC_SUFFIX_HINT_MERGING};
  sets[BC_SET_HINT_TMP] = (bc_idset){dl->hint_tmp, dl->nhint_tmp, BC_SUFFIX_HINT_TMP};
  sets[BC_SET_DATA_TMP] = (bc_idset){dl->data_tmp, dl->ndata_tmp, BC_SUFFIX_DATA_TMP};
}

void bc_dirlist_free(bc_dirlist *dl) {
  free(dl->data);
  free(dl->hint);
  free(dl->data_merging);
  free(dl->hint_merging);
  free(dl->hint_tmp);
  free(dl->data_tmp);
  free(dl->foreign);
  memset(dl, 0, sizeof *dl);
}
