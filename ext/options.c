/*
** options.c -- the arguments of CREATE VIRTUAL TABLE ... USING bitcask(...)
** and where the table's store lives (docs/DESIGN.md section 5.6, "Options").
**
**   CREATE VIRTUAL TABLE kv USING bitcask(dir='data/kv', max_file_size='64MB',
**                                         sync='full');
**
**   dir            the store's directory; relative to the database file's
**                  directory; default "<database file>-<table>.bitcask"
**   max_file_size  bytes, or with a K/KB/KiB, M/MB/MiB, G/GB/GiB suffix
**                  (powers of 1024), 4096 .. 2^40
**   sync           full | normal | off
**   readonly       1 | 0 (also true/false, yes/no, on/off): open the store
**                  without the writer lock, never write, and follow what the
**                  writer (another process) commits
**   max_open_files descriptors of sealed data files kept open at most,
**                  1 .. 1048576; default a quarter of RLIMIT_NOFILE's soft
**                  limit, at most 1000 (bc_options.max_open_files)
**
** Names are case-insensitive; a value may be quoted with '...' or "...".
** Every error names the table and the option.
*/
#include "bitcask_ext.h"
SQLITE_EXTENSION_INIT3

#include <ctype.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

/* Copy s[0..n) without surrounding blanks and one level of matching quotes;
** a doubled quote inside stands for one (SQL style). */
static char *unquote(const char *s, size_t n) {
  while (n > 0 && isspace((unsigned char)*s)) s++, n--;
  while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
  char q = n >= 2 ? s[0] : 0;
  if ((q == '\'' || q == '"') && s[n - 1] == q) {
    char *out = sqlite3_malloc64(n);
    if (!out) return NULL;
    size_t j = 0;
    for (size_t i = 1; i + 1 < n; i++) {
      out[j++] = s[i];
      if (s[i] == q && i + 2 < n && s[i + 1] == q) i++;
    }
    out[j] = 0;
    return out;
  }
  return sqlite3_mprintf("%.*s", (int)n, s);
}

/* Parse a size: digits, optional blanks, optional suffix.  0 on error. */
static uint64_t parse_size(const char *z) {
  uint64_t v = 0;
  const char *p = z;
  if (!isdigit((unsigned char)*p)) return 0;
  while (isdigit((unsigned char)*p)) {
    if (v > (UINT64_MAX - 9) / 10) return 0;
    v = v * 10 + (uint64_t)(*p++ - '0');
  }
  while (*p == ' ') p++;
  static const struct { const char *name; unsigned shift; } suffixes[] = {
    {"", 0},    {"b", 0},    {"k", 10},   {"kb", 10}, {"kib", 10},
    {"m", 20},  {"mb", 20},  {"mib", 20}, {"g", 30},  {"gb", 30},
    {"gib", 30},
  };
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    if (sqlite3_stricmp(p, suffixes[i].name) == 0) {
      unsigned sh = suffixes[i].shift;
      if (sh && v > (UINT64_MAX >> sh)) return 0;
      return v << sh;
    }
  }
  return 0;
}

/* One option's value into *out.  Each takes the table's name (for the
** message), the unquoted value (*value: opt_dir takes it, setting it to
** NULL), and returns SQLITE_OK or SQLITE_ERROR with *pzErr.  An option given
** twice is refused before its parser runs (bcx_options_parse). */
typedef int opt_parse_fn(const char *table, char **value, bcx_options *out, char **pzErr);

static int opt_dir(const char *table, char **value, bcx_options *out, char **pzErr) {
  if ((*value)[0] == 0) {
    *pzErr = sqlite3_mprintf("bitcask table '%s': option dir is empty", table);
    return SQLITE_ERROR;
  }
  out->dir = *value;
  *value = NULL;
  return SQLITE_OK;
}

static int opt_max_file_size(const char *table, char **value, bcx_options *out,
                             char **pzErr) {
  uint64_t v = parse_size(*value);
  if (v < BC_MIN_MAX_FILE_SIZE || v > (1ull << 40)) {
    *pzErr = sqlite3_mprintf(
        "bitcask table '%s': option max_file_size: '%s' is not a size "
        "between 4KB and 1024GB (bytes, or a number with a KB, MB or GB suffix)",
        table, *value);
    return SQLITE_ERROR;
  }
  out->max_file_size = v;
  return SQLITE_OK;
}

static int opt_sync(const char *table, char **value, bcx_options *out, char **pzErr) {
  int mode = sqlite3_stricmp(*value, "full") == 0     ? BC_SYNC_FULL
             : sqlite3_stricmp(*value, "normal") == 0 ? BC_SYNC_NORMAL
             : sqlite3_stricmp(*value, "off") == 0    ? BC_SYNC_OFF
                                                      : -1;
  if (mode < 0) {
    *pzErr = sqlite3_mprintf(
        "bitcask table '%s': option sync: '%s' is not one of full, normal, off",
        table, *value);
    return SQLITE_ERROR;
  }
  out->sync = mode;
  return SQLITE_OK;
}

static int opt_readonly(const char *table, char **value, bcx_options *out, char **pzErr) {
  int on = -1;
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  for (int k = 0; k < 4; k++) {
    if (sqlite3_stricmp(*value, yes[k]) == 0) on = 1;
    if (sqlite3_stricmp(*value, no[k]) == 0) on = 0;
  }
  if (on < 0) {
    *pzErr = sqlite3_mprintf(
        "bitcask table '%s': option readonly: '%s' is not one of 1, true, yes, on "
        "(read-only) or 0, false, no, off", table, *value);
    return SQLITE_ERROR;
  }
  out->readonly = on;
  return SQLITE_OK;
}

static int opt_max_open_files(const char *table, char **value, bcx_options *out,
                              char **pzErr) {
  uint64_t v = 0;
  const char *p = *value;
  while (isdigit((unsigned char)*p) && v <= BC_MAX_OPEN_FILES_LIMIT)
    v = v * 10 + (uint64_t)(*p++ - '0');
  if (p == *value || *p || v < 1 || v > BC_MAX_OPEN_FILES_LIMIT) {
    *pzErr = sqlite3_mprintf(
        "bitcask table '%s': option max_open_files: '%s' is not a whole number "
        "between 1 and %u", table, *value, BC_MAX_OPEN_FILES_LIMIT);
    return SQLITE_ERROR;
  }
  out->max_open_files = (uint32_t)v;
  return SQLITE_OK;
}

static const struct {
  const char *name;
  opt_parse_fn *parse;
} options[] = {
  {"dir", opt_dir},           {"max_file_size", opt_max_file_size},
  {"sync", opt_sync},         {"readonly", opt_readonly},
  {"max_open_files", opt_max_open_files},
};

#define OPTION_NAMES "dir, max_file_size, sync, readonly, max_open_files"

int bcx_options_parse(const char *table, int argc, const char *const *argv,
                      bcx_options *out, char **pzErr) {
  unsigned given = 0; /* bit k: options[k] was given */
  out->dir = NULL;
  out->max_file_size = 0;
  out->sync = -1;
  out->readonly = -1;
  out->max_open_files = 0;
  for (int i = 3; i < argc; i++) {
    const char *arg = argv[i];
    const char *eq = strchr(arg, '=');
    if (!eq) {
      *pzErr = sqlite3_mprintf(
          "bitcask table '%s': argument '%s' is not of the form option=value "
          "(options: " OPTION_NAMES ")", table, arg);
      return SQLITE_ERROR;
    }
    char *name = unquote(arg, (size_t)(eq - arg));
    char *value = unquote(eq + 1, strlen(eq + 1));
    int rc = !name || !value ? SQLITE_NOMEM : SQLITE_NOTFOUND;
    for (size_t k = 0; rc == SQLITE_NOTFOUND && k < sizeof options / sizeof options[0]; k++) {
      if (sqlite3_stricmp(name, options[k].name) != 0) continue;
      if (given & (1u << k)) {
        *pzErr = sqlite3_mprintf("bitcask table '%s': option %s given twice", table,
                                 options[k].name);
        rc = SQLITE_ERROR;
      } else {
        rc = options[k].parse(table, &value, out, pzErr);
        given |= 1u << k;
      }
    }
    if (rc == SQLITE_NOTFOUND) {
      *pzErr = sqlite3_mprintf(
          "bitcask table '%s': unknown option '%s' (options: " OPTION_NAMES ")",
          table, name);
      rc = SQLITE_ERROR;
    }
    sqlite3_free(name);
    sqlite3_free(value);
    if (rc != SQLITE_OK) {
      bcx_options_clear(out);
      return rc;
    }
  }
  return SQLITE_OK;
}

void bcx_options_clear(bcx_options *o) {
  sqlite3_free(o->dir);
  o->dir = NULL;
}

int bcx_store_path(sqlite3 *db, const char *zDb, const char *zTab,
                   const bcx_options *opt, char **pzPath, int *pIsTemp) {
  const char *dbfile = sqlite3_db_filename(db, zDb);
  int is_memory = dbfile == NULL || dbfile[0] == 0;
  *pIsTemp = 0;
  *pzPath = NULL;
  if (opt->dir && opt->dir[0] == '/') {
    *pzPath = sqlite3_mprintf("%s", opt->dir);
  } else if (opt->dir) {
    if (is_memory) {
      char cwd[PATH_MAX];
      if (!getcwd(cwd, sizeof cwd)) return SQLITE_CANTOPEN;
      *pzPath = sqlite3_mprintf("%s/%s", cwd, opt->dir);
    } else {
      const char *slash = strrchr(dbfile, '/');
      int n = slash ? (int)(slash - dbfile) : 0;
      *pzPath = slash ? sqlite3_mprintf("%.*s/%s", n ? n : 1, dbfile, opt->dir)
                      : sqlite3_mprintf("%s", opt->dir);
    }
  } else if (is_memory) {
    *pIsTemp = 1;
    return SQLITE_OK;
  } else {
    *pzPath = sqlite3_mprintf("%s-%s.bitcask", dbfile, zTab);
  }
  return *pzPath ? SQLITE_OK : SQLITE_NOMEM;
}
