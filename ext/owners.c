/*
** owners.c -- which tables own a store (README "Backing up"; the file's
** bytes: docs/FORMAT.md "Owners").
**
** A store's OWNERS file (kept by the engine, engine/owners.c) lists the
** tables that use the store: one line per table, naming its database file by
** device and inode (and path, for messages and for finding a database that
** moved) and the store directory's own device and inode when the line was
** written.  A copy of a database (.backup, VACUUM INTO, .dump + restore, cp)
** carries a table's definition but not its store; when the copy's table
** resolves to the original's store it is not on the list, so it is refused
** instead of sharing the store read-write, and its DROP TABLE leaves the
** store alone.
**
** Rules (me = this table: its database's identity and path, its name, and
** the store directory's identity):
**  1. Lines recorded for another store directory (the directory itself was
**     copied, restored or moved: cp -r of a database and its store): the
**     lines of the database that the line naming my table belongs to become
**     mine, the others are dropped -- the copied directory is adopted.
**  2. A line with my database's identity and my table name: I own the
**     store (the path is updated if the database was renamed).
**  3. A line with my table name whose database is gone -- nothing at its
**     path, or a file with another identity there (moved to another file
**     system, replaced by a restored copy) -- becomes mine.
**  4. No line at all (a store of an older version, or one left by a DROP
**     that could not delete it): I adopt the store.
**  5. Otherwise I am not an owner: first use fails with SQLITE_CANTOPEN
**     and a message naming the owner; DROP TABLE forgets the table only.
** CREATE VIRTUAL TABLE joins on purpose (rules 1-2, then a line is added);
** a CREATE rolled back removes my line again and writes the file even when
** no line is left (bcx_owners_unjoin: the store is deleted only if that
** CREATE made it).  A CREATE at the default location that finds a store
** there deletes it first when every line is stale -- my database and name
** (no live table of that name can exist: SQLite refused the CREATE
** otherwise) or a database that is gone -- and is refused when another
** line is live (bcx_owners_stale): a new table starts empty, dir= names a
** store on purpose.
** DROP TABLE removes my line (at COMMIT); the store is deleted when no line
** is left.  ALTER TABLE RENAME rewrites my line's table name.
**
** First use applies rules 1-5 twice: to a look at the file before the
** store is opened (bcx_owners_precheck: a plain non-owner is refused
** without taking the original's lock or running recovery on its files),
** then, on the open store, for good (and writes the file if a rule changed
** it).  Every read-modify-write runs under the registry's mutex (the threads of
** this process) and on a store this process holds for writing (the writer
** lock: other processes).  Tables of databases without a file (in-memory,
** temporary) and read-only tables are never owners and are never refused;
** the DROP of an in-memory table deletes the store only when no owner is
** listed and no other table of the process has it open.
*/
#include "bitcask_ext.h"
SQLITE_EXTENSION_INIT3

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define OWNERS_HEADER                                                       \
  "# bitcask-sqlite owners: table <db dev> <db ino> <store dev> <store ino> " \
  "<table> <db path>\n"

typedef struct owner {
  char *line;        /* a line of another kind, kept verbatim; else NULL */
  uint64_t dbdev, dbino, sdev, sino;
  char *table, *path;
} owner;

typedef struct owners {
  owner *v;
  int n, cap;
} owners;

static void owners_free(owners *o) {
  for (int i = 0; i < o->n; i++) {
    sqlite3_free(o->v[i].line);
    sqlite3_free(o->v[i].table);
    sqlite3_free(o->v[i].path);
  }
  sqlite3_free(o->v);
  memset(o, 0, sizeof *o);
}

static owner *owners_add(owners *o) {
  if (o->n == o->cap) {
    int cap = o->cap ? o->cap * 2 : 8;
    owner *v = sqlite3_realloc64(o->v, (sqlite3_uint64)cap * sizeof *v);
    if (!v) return NULL;
    o->v = v;
    o->cap = cap;
  }
  owner *e = &o->v[o->n++];
  memset(e, 0, sizeof *e);
  return e;
}

static void owners_remove(owners *o, int i) {
  sqlite3_free(o->v[i].line);
  sqlite3_free(o->v[i].table);
  sqlite3_free(o->v[i].path);
  memmove(&o->v[i], &o->v[i + 1], (size_t)(o->n - i - 1) * sizeof *o->v);
  o->n--;
}

static int owners_count(const owners *o) {
  int n = 0;
  for (int i = 0; i < o->n; i++) n += o->v[i].line == NULL;
  return n;
}

/* %XX-escape the bytes a line cannot hold as they are. */
static char *esc(const char *s) {
  size_t n = strlen(s);
  char *out = sqlite3_malloc64(n * 3 + 1);
  if (!out) return NULL;
  char *q = out;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p <= 0x20 || *p == '%' || *p == 0x7f) {
      snprintf(q, 4, "%%%02X", *p);
      q += 3;
    } else {
      *q++ = (char)*p;
    }
  }
  *q = 0;
  return out;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* Unescape s[0..n).  NULL on a malformed escape or no memory. */
static char *unesc(const char *s, size_t n) {
  char *out = sqlite3_malloc64(n + 1);
  if (!out) return NULL;
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%') {
      if (i + 2 >= n) goto bad;
      int a = hexval(s[i + 1]), b = hexval(s[i + 2]);
      if (a < 0 || b < 0) goto bad;
      out[j++] = (char)(a * 16 + b);
      i += 2;
    } else {
      out[j++] = s[i];
    }
  }
  out[j] = 0;
  return out;
bad:
  sqlite3_free(out);
  return NULL;
}

/* Parse "table D I D I name path" into e; 0, or -1 if the line is not one. */
static int parse_entry(const char *line, size_t len, owner *e) {
  unsigned long long v[4];
  int used = 0;
  char buf[512];
  size_t hl = len < sizeof buf - 1 ? len : sizeof buf - 1;
  memcpy(buf, line, hl);
  buf[hl] = 0;
  if (sscanf(buf, "table %llu %llu %llu %llu %n", &v[0], &v[1], &v[2], &v[3], &used) != 4 ||
      used == 0)
    return -1;
  const char *p = line + used, *end = line + len;
  const char *sp = memchr(p, ' ', (size_t)(end - p));
  if (!sp || sp == p || sp + 1 >= end) return -1;
  e->table = unesc(p, (size_t)(sp - p));
  e->path = unesc(sp + 1, (size_t)(end - sp - 1));
  if (!e->table || !e->path) {
    sqlite3_free(e->table);
    sqlite3_free(e->path);
    e->table = e->path = NULL;
    return -1;
  }
  e->dbdev = v[0];
  e->dbino = v[1];
  e->sdev = v[2];
  e->sino = v[3];
  return 0;
}

static int owners_parse(const char *text, size_t len, owners *o) {
  memset(o, 0, sizeof *o);
  const char *p = text, *end = text + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (n > 0 && p[0] != '#') {
      owner *e = owners_add(o);
      if (!e) return SQLITE_NOMEM;
      if (parse_entry(p, n, e) != 0) {
        e->line = sqlite3_mprintf("%.*s", (int)n, p);
        if (!e->line) return SQLITE_NOMEM;
      }
    }
    p += n + (nl ? 1 : 0);
  }
  return SQLITE_OK;
}

static char *owners_format(const owners *o, size_t *len) {
  sqlite3_str *s = sqlite3_str_new(NULL);
  int oom = 0;
  sqlite3_str_appendall(s, OWNERS_HEADER);
  for (int i = 0; i < o->n; i++) {
    const owner *e = &o->v[i];
    if (e->line) {
      sqlite3_str_appendf(s, "%s\n", e->line);
      continue;
    }
    char *t = esc(e->table), *p = esc(e->path);
    if (t && p)
      sqlite3_str_appendf(s, "table %llu %llu %llu %llu %s %s\n",
                          (unsigned long long)e->dbdev, (unsigned long long)e->dbino,
                          (unsigned long long)e->sdev, (unsigned long long)e->sino, t, p);
    else
      oom = 1;
    sqlite3_free(t);
    sqlite3_free(p);
  }
  int n = sqlite3_str_length(s);
  char *text = sqlite3_str_finish(s);
  if (text && oom) {
    sqlite3_free(text);
    return NULL;
  }
  *len = (size_t)n;
  return text;
}

/* This table as the owners file names it. */
typedef struct me {
  int has_db;               /* the database is a file */
  uint64_t dbdev, dbino;
  const char *path, *table;
  uint64_t sdev, sino;
} me;

static void me_init(me *m, sqlite3 *db, const char *zDb, const char *zTab,
                    const bcx_shared *sh) {
  memset(m, 0, sizeof *m);
  m->table = zTab;
  m->sdev = sh->dev;
  m->sino = sh->ino;
  const char *f = sqlite3_db_filename(db, zDb);
  struct stat st;
  if (f && f[0] && stat(f, &st) == 0) {
    m->has_db = 1;
    m->path = f;
    m->dbdev = (uint64_t)st.st_dev;
    m->dbino = (uint64_t)st.st_ino;
  }
}

static int set_me(owner *e, const me *m) {
  char *t = sqlite3_mprintf("%s", m->table), *p = sqlite3_mprintf("%s", m->path);
  if (!t || !p) {
    sqlite3_free(t);
    sqlite3_free(p);
    return SQLITE_NOMEM;
  }
  sqlite3_free(e->table);
  sqlite3_free(e->path);
  e->table = t;
  e->path = p;
  e->dbdev = m->dbdev;
  e->dbino = m->dbino;
  e->sdev = m->sdev;
  e->sino = m->sino;
  return SQLITE_OK;
}

static int same_table(const owner *e, const char *t) {
  return sqlite3_stricmp(e->table, t) == 0;
}

/* The database of e no longer exists where it was (rule 3). */
static int owner_gone(const owner *e) {
  struct stat st;
  if (stat(e->path, &st) != 0) return errno == ENOENT || errno == ENOTDIR;
  return (uint64_t)st.st_dev != e->dbdev || (uint64_t)st.st_ino != e->dbino;
}

/* Rule 1.  *changed is set when o changed. */
static int adopt_copied_dir(owners *o, const me *m, int *changed) {
  int stale = -1, mine = -1;
  for (int i = 0; i < o->n; i++) {
    const owner *e = &o->v[i];
    if (e->line || (e->sdev == m->sdev && e->sino == m->sino)) continue;
    stale = i;
    if (mine < 0 && same_table(e, m->table)) mine = i;
  }
  if (stale < 0) return SQLITE_OK;
  uint64_t xdev = mine >= 0 ? o->v[mine].dbdev : 0, xino = mine >= 0 ? o->v[mine].dbino : 0;
  for (int i = 0; i < o->n;) {
    owner *e = &o->v[i];
    if (e->line || (e->sdev == m->sdev && e->sino == m->sino)) {
      i++;
      continue;
    }
    if (mine >= 0 && e->dbdev == xdev && e->dbino == xino) {
      /* Another table of my database keeps its own name. */
      char *t = sqlite3_mprintf("%s", e->table);
      if (!t) return SQLITE_NOMEM;
      me other = *m;
      other.table = t;
      int rc = set_me(e, &other);
      sqlite3_free(t);
      if (rc != SQLITE_OK) return rc;
      i++;
    } else {
      owners_remove(o, i);
    }
  }
  *changed = 1;
  return SQLITE_OK;
}

/* Rules 1-4: the index of my line (made if need be), or -1 (rule 5). */
static int classify(owners *o, const me *m, int *idx, int *changed) {
  *idx = -1;
  int rc = adopt_copied_dir(o, m, changed);
  if (rc != SQLITE_OK) return rc;
  for (int i = 0; i < o->n; i++) {
    owner *e = &o->v[i];
    if (e->line || e->dbdev != m->dbdev || e->dbino != m->dbino || !same_table(e, m->table))
      continue;
    *idx = i;
    if (strcmp(e->path, m->path) != 0 || strcmp(e->table, m->table) != 0) {
      *changed = 1;
      return set_me(e, m);
    }
    return SQLITE_OK;
  }
  for (int i = 0; i < o->n; i++) {
    owner *e = &o->v[i];
    if (e->line || !same_table(e, m->table) || !owner_gone(e)) continue;
    *idx = i;
    *changed = 1;
    return set_me(e, m);
  }
  if (owners_count(o) == 0) {
    owner *e = owners_add(o);
    if (!e) return SQLITE_NOMEM;
    *idx = o->n - 1;
    *changed = 1;
    return set_me(e, m);
  }
  return SQLITE_OK;
}

/* Rule 5: the message, naming the owner (of my table's name if any). */
static int refuse(const owners *o, const me *m, const char *zPath, char **pzErr) {
  const owner *w = NULL;
  for (int i = 0; i < o->n && !w; i++)
    if (!o->v[i].line && same_table(&o->v[i], m->table)) w = &o->v[i];
  for (int i = 0; i < o->n && !w; i++)
    if (!o->v[i].line) w = &o->v[i];
  *pzErr = sqlite3_mprintf(
      "bitcask table '%s': store '%s' belongs to table '%s' of database "
      "'%s', not to this database ('%s'): this database looks like a copy "
      "of that one (made by .backup, VACUUM INTO, .dump or a file copy), "
      "which carries the table's definition but not its store; see README "
      "\"Backing up\"",
      m->table, zPath, w ? w->table : "?", w ? w->path : "?", m->path);
  return SQLITE_CANTOPEN;
}

static int engine_msg(bcx_shared *sh, const char *zTab, bc_status st, char **pzErr) {
  char msg[BCX_ERRMSG_MAX];
  *pzErr = sqlite3_mprintf("bitcask table '%s': %s", zTab,
                           bc_errmsg_copy(sh->store, msg, sizeof msg));
  return bcx_rc(st);
}

static int load(bcx_shared *sh, const char *zTab, owners *o, char **pzErr) {
  char *text;
  size_t len;
  bc_status st = bc_owners_read(sh->store, &text, &len);
  if (st != BC_OK) return engine_msg(sh, zTab, st, pzErr);
  int rc = text ? owners_parse(text, len, o) : SQLITE_OK;
  free(text);
  return rc;
}

static int save(bcx_shared *sh, const char *zTab, const owners *o, char **pzErr) {
  size_t len;
  char *text = owners_format(o, &len);
  if (!text) return SQLITE_NOMEM;
  bc_status st = bc_owners_write(sh->store, text, len);
  sqlite3_free(text);
  return st == BC_OK ? SQLITE_OK : engine_msg(sh, zTab, st, pzErr);
}

/* What the operations below do to my line. */
enum { OP_CHECK, OP_JOIN, OP_LEAVE, OP_RENAME, OP_SHARED, OP_UNJOIN };

static int owners_op(int op, sqlite3 *db, const char *zDb, const char *zTab,
                     const char *zNew, bcx_shared *sh, int *pFlag, char **pzErr) {
  me m;
  me_init(&m, db, zDb, zTab, sh);
  if (pFlag) *pFlag = 0;
  bcx_registry_lock();
  owners o = {0};
  int rc = load(sh, zTab, &o, pzErr);
  int idx = -1, changed = 0;
  if (rc != SQLITE_OK) goto done;
  if (!m.has_db) {
    /* A table without a database file is never an owner; its DROP deletes
    ** the store only when nobody else owns it and no other table of this
    ** process (another in-memory table naming the same dir) holds it.  The
    ** registry's mutex is held: nref is read directly. */
    if (op == OP_LEAVE || op == OP_UNJOIN) *pFlag = owners_count(&o) == 0 && sh->nref == 1;
    goto done;
  }
  rc = classify(&o, &m, &idx, &changed);
  if (rc != SQLITE_OK) goto done;
  switch (op) {
  case OP_CHECK:
    if (idx < 0) {
      rc = refuse(&o, &m, sh->path, pzErr);
      changed = 0;
    }
    break;
  case OP_JOIN:
    if (idx < 0) {
      owner *e = owners_add(&o);
      rc = e ? set_me(e, &m) : SQLITE_NOMEM;
      changed = 1;
    }
    break;
  case OP_LEAVE:
    if (idx < 0) {
      changed = 0; /* a copy's DROP: the store is another database's */
      break;
    }
    owners_remove(&o, idx);
    changed = 1;
    if (owners_count(&o) == 0) {
      *pFlag = 1; /* the store goes: no need to write the file */
      changed = 0;
    }
    break;
  case OP_UNJOIN:
    /* Unlike a DROP, the store may stay (it was there before the CREATE):
    ** the file is written whatever is left. */
    if (idx >= 0) {
      owners_remove(&o, idx);
      changed = 1;
    }
    *pFlag = owners_count(&o) == 0;
    break;
  case OP_SHARED:
    /* Lines of tables other than mine (mine counted once when I own). */
    *pFlag = owners_count(&o) > (idx >= 0 ? 1 : 0);
    changed = 0;
    break;
  case OP_RENAME:
    if (idx >= 0) {
      me n = m;
      n.table = zNew;
      rc = set_me(&o.v[idx], &n);
      changed = 1;
    } else {
      changed = 0;
    }
    break;
  }
  /* A store still read-only (registry.c: the process has not written it
  ** yet) records an adoption or a new path by becoming the writer's now:
  ** the rules rely on the file being current.  While another process
  ** writes the store the check passes without recording (that process's
  ** tables record theirs), and is made again at this process's first
  ** write. */
  if (rc == SQLITE_OK && changed && op == OP_CHECK && sh->following) {
    char *zBusy = NULL;
    if (bcx_shared_write_locked(sh, zTab, &zBusy) != SQLITE_OK) changed = 0;
    sqlite3_free(zBusy);
  }
  if (rc == SQLITE_OK && changed) rc = save(sh, zTab, &o, pzErr);
done:
  bcx_registry_unlock();
  owners_free(&o);
  return rc;
}

/* The owners file of the store at zPath, read without opening the store
** (bc_owners_peek) and parsed into *o (empty when there is none).  Returns
** SQLITE_OK, or the error of the read with *pzErr naming zTab; *o is the
** caller's to free either way. */
static int peek(const char *zTab, const char *zPath, owners *o, char **pzErr) {
  char *text;
  size_t len;
  bc_status bst = bc_owners_peek(zPath, &text, &len);
  if (bst != BC_OK) {
    int e = errno;
    *pzErr = sqlite3_mprintf("bitcask table '%s': store '%s': cannot read its "
                             "owners file OWNERS: %s", zTab, zPath,
                             bst == BC_CORRUPT ? "it is larger than an owners file may be"
                             : bst == BC_NOMEM ? "out of memory"
                                               : strerror(e));
    return bcx_rc(bst);
  }
  int rc = text ? owners_parse(text, len, o) : SQLITE_OK;
  free(text);
  return rc;
}

int bcx_owners_precheck(sqlite3 *db, const char *zDb, const char *zTab,
                        const char *zPath, char **pzErr) {
  struct stat st;
  if (stat(zPath, &st) != 0 || !S_ISDIR(st.st_mode)) return SQLITE_OK;
  bcx_shared dir;
  memset(&dir, 0, sizeof dir);
  dir.dev = (uint64_t)st.st_dev;
  dir.ino = (uint64_t)st.st_ino;
  me m;
  me_init(&m, db, zDb, zTab, &dir);
  if (!m.has_db) return SQLITE_OK;
  owners o = {0};
  int rc = peek(zTab, zPath, &o, pzErr);
  int idx = -1, changed = 0;
  if (rc == SQLITE_OK) rc = classify(&o, &m, &idx, &changed);
  if (rc == SQLITE_OK && idx < 0) rc = refuse(&o, &m, zPath, pzErr);
  owners_free(&o);
  return rc;
}

int bcx_owners_check(sqlite3 *db, const char *zDb, const char *zTab,
                     bcx_shared *sh, char **pzErr) {
  return owners_op(OP_CHECK, db, zDb, zTab, NULL, sh, NULL, pzErr);
}

int bcx_owners_join(sqlite3 *db, const char *zDb, const char *zTab,
                    bcx_shared *sh, char **pzErr) {
  return owners_op(OP_JOIN, db, zDb, zTab, NULL, sh, NULL, pzErr);
}

int bcx_owners_leave(sqlite3 *db, const char *zDb, const char *zTab,
                     bcx_shared *sh, int *pDelete, char **pzErr) {
  return owners_op(OP_LEAVE, db, zDb, zTab, NULL, sh, pDelete, pzErr);
}

int bcx_owners_shared(sqlite3 *db, const char *zDb, const char *zTab,
                      bcx_shared *sh, int *pShared, char **pzErr) {
  return owners_op(OP_SHARED, db, zDb, zTab, NULL, sh, pShared, pzErr);
}

int bcx_owners_unjoin(sqlite3 *db, const char *zDb, const char *zTab,
                      bcx_shared *sh, int *pEmpty, char **pzErr) {
  return owners_op(OP_UNJOIN, db, zDb, zTab, NULL, sh, pEmpty, pzErr);
}

int bcx_owners_stale(sqlite3 *db, const char *zDb, const char *zTab,
                     const char *zPath, char **pzErr) {
  bcx_shared dir;
  memset(&dir, 0, sizeof dir);
  me m;
  me_init(&m, db, zDb, zTab, &dir);
  owners o = {0};
  int rc = peek(zTab, zPath, &o, pzErr);
  for (int i = 0; rc == SQLITE_OK && i < o.n; i++) {
    const owner *e = &o.v[i];
    if (e->line) {
      *pzErr = sqlite3_mprintf(
          "bitcask table '%s': a store is already at its default location "
          "'%s', and its owners file has a line this version does not "
          "understand ('%s'): it may be in use; remove the directory if it "
          "is not, or give this table another dir=", zTab, zPath, e->line);
      rc = SQLITE_ERROR;
    } else if (!owner_gone(e) &&
               !(m.has_db && e->dbdev == m.dbdev && e->dbino == m.dbino &&
                 same_table(e, zTab))) {
      *pzErr = sqlite3_mprintf(
          "bitcask table '%s': its default store directory '%s' is in use by "
          "table '%s' of database '%s' (which names it with dir=); a new "
          "table starts with an empty store: give this one another dir=, or "
          "dir='%s' to share that store on purpose", zTab, zPath, e->table,
          e->path, zPath);
      rc = SQLITE_ERROR;
    }
  }
  owners_free(&o);
  return rc;
}

int bcx_owners_rename(sqlite3 *db, const char *zDb, const char *zOld,
                      const char *zNew, bcx_shared *sh, char **pzErr) {
  return owners_op(OP_RENAME, db, zDb, zOld, zNew, sh, NULL, pzErr);
}
