/*
** functions.c -- the SQL functions of the extension.
**
**   SELECT bitcask_merge('kv');        -- compact table kv; bytes reclaimed
**   SELECT bitcask_merge('main.kv');   -- schema-qualified
**   SELECT bitcask_merge();            -- every bitcask table of the connection
**   SELECT bitcask_stats('kv');        -- a JSON object of the store's figures
**
** Both are SQLITE_DIRECTONLY: a schema (a view, a trigger) cannot make a
** reader compact or open stores.  A table that this connection has not used
** yet is connected first by preparing a statement that names it.
*/
#include "bitcask_ext.h"
SQLITE_EXTENSION_INIT3

#include <string.h>

/* Make sure table zTab (in zDb, or unqualified) is connected.  Returns
** SQLITE_OK or the prepare error (e.g. "no such table"), message in *pzErr. */
static int force_connect(sqlite3 *db, const char *zDb, const char *zTab,
                         char **pzErr) {
  char *sql = zDb ? sqlite3_mprintf("SELECT 0 FROM \"%w\".\"%w\" WHERE 0", zDb, zTab)
                  : sqlite3_mprintf("SELECT 0 FROM \"%w\" WHERE 0", zTab);
  if (!sql) return SQLITE_NOMEM;
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
  if (rc != SQLITE_OK) *pzErr = sqlite3_mprintf("%s", sqlite3_errmsg(db));
  sqlite3_finalize(stmt);
  sqlite3_free(sql);
  return rc;
}

/* The bitcask table named by the function argument ("kv" or "schema.kv"),
** resolved as SQLite resolves an unqualified name: temp, then main, then the
** attached schemas.  On failure sets the function's error and returns NULL. */
static bitcask_vtab *resolve_table(sqlite3_context *ctx, bcx_module *m,
                                   const char *fn, sqlite3_value *arg) {
  const char *name = (const char *)sqlite3_value_text(arg);
  if (!name) {
    char *msg = sqlite3_mprintf("%s: the argument must be a table name", fn);
    sqlite3_result_error(ctx, msg, -1);
    sqlite3_free(msg);
    return NULL;
  }
  char *zDb = NULL;
  const char *zTab = name;
  const char *dot = strchr(name, '.');
  if (dot) {
    zDb = sqlite3_mprintf("%.*s", (int)(dot - name), name);
    if (!zDb) {
      sqlite3_result_error_nomem(ctx);
      return NULL;
    }
    zTab = dot + 1;
  }
  char *err = NULL;
  int rc = force_connect(m->db, zDb, zTab, &err);
  bitcask_vtab *t = NULL;
  if (rc == SQLITE_OK) {
    if (zDb) {
      t = bcx_find_table(m, zDb, zTab);
    } else {
      t = bcx_find_table(m, "temp", zTab);
      if (!t) t = bcx_find_table(m, "main", zTab);
      if (!t) t = bcx_find_table(m, NULL, zTab);
    }
    if (!t) err = sqlite3_mprintf("'%s' is not a bitcask table", name);
  }
  if (!t) {
    char *msg = sqlite3_mprintf("%s: %s", fn, err ? err : "out of memory");
    sqlite3_result_error(ctx, msg, -1);
    sqlite3_result_error_code(ctx, rc == SQLITE_OK ? SQLITE_ERROR : rc);
    sqlite3_free(msg);
  }
  sqlite3_free(err);
  sqlite3_free(zDb);
  return t;
}

static void table_error(sqlite3_context *ctx, const char *fn, bitcask_vtab *t,
                        int rc) {
  char *msg = sqlite3_mprintf("%s: %s", fn, bcx_table_error(t));
  sqlite3_result_error(ctx, msg ? msg : "out of memory", -1);
  sqlite3_result_error_code(ctx, rc);
  sqlite3_free(msg);
}

/* Merge one table's store; 0 on success with *reclaimed added to. */
static int merge_table(sqlite3_context *ctx, bitcask_vtab *t,
                       uint64_t *reclaimed) {
  bcx_shared *sh = bcx_table_store(t);
  if (!sh) {
    table_error(ctx, "bitcask_merge", t, SQLITE_ERROR);
    return 1;
  }
  if (bcx_table_writer(t) != SQLITE_OK) {
    const char *e = bcx_table_error(t);
    char *msg = sqlite3_mprintf("bitcask_merge: %s", e ? e : "cannot write");
    sqlite3_result_error(ctx, msg ? msg : "out of memory", -1);
    sqlite3_result_error_code(ctx, SQLITE_BUSY);
    sqlite3_free(msg);
    return 1;
  }
  uint64_t n = 0;
  bc_status st = bc_merge(sh->store, &n);
  if (st != BC_OK) {
    char em[BCX_ERRMSG_MAX];
    char *msg = sqlite3_mprintf("bitcask_merge: bitcask table '%s': %s",
                                bcx_table_name(t),
                                bc_errmsg_copy(sh->store, em, sizeof em));
    sqlite3_result_error(ctx, msg ? msg : "out of memory", -1);
    sqlite3_result_error_code(ctx, bcx_rc(st));
    sqlite3_free(msg);
    return 1;
  }
  *reclaimed += n;
  return 0;
}

/* Connect every bitcask table of every schema of the connection. */
static int connect_all(sqlite3_context *ctx, bcx_module *m) {
  sqlite3_stmt *dbs = NULL;
  int rc = sqlite3_prepare_v2(m->db, "SELECT name FROM pragma_database_list",
                              -1, &dbs, NULL);
  while (rc == SQLITE_OK && sqlite3_step(dbs) == SQLITE_ROW) {
    const char *zDb = (const char *)sqlite3_column_text(dbs, 0);
    char *sql = sqlite3_mprintf(
        "SELECT name FROM \"%w\".sqlite_schema WHERE type='table' AND "
        "sql LIKE 'CREATE VIRTUAL TABLE%%bitcask%%'", zDb);
    sqlite3_stmt *tabs = NULL;
    rc = sql ? sqlite3_prepare_v2(m->db, sql, -1, &tabs, NULL) : SQLITE_NOMEM;
    sqlite3_free(sql);
    while (rc == SQLITE_OK && sqlite3_step(tabs) == SQLITE_ROW) {
      char *err = NULL;
      /* A table another module owns, or one that fails to connect, is
      ** simply not a bitcask table to merge. */
      force_connect(m->db, zDb, (const char *)sqlite3_column_text(tabs, 0), &err);
      sqlite3_free(err);
    }
    sqlite3_finalize(tabs);
  }
  sqlite3_finalize(dbs);
  if (rc != SQLITE_OK) {
    sqlite3_result_error(ctx, "bitcask_merge: cannot list the bitcask tables", -1);
    sqlite3_result_error_code(ctx, rc);
  }
  return rc;
}

static void mergeFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  bcx_module *m = sqlite3_user_data(ctx);
  uint64_t reclaimed = 0;
  if (argc == 1) {
    bitcask_vtab *t = resolve_table(ctx, m, "bitcask_merge", argv[0]);
    if (!t || merge_table(ctx, t, &reclaimed)) return;
  } else {
    if (connect_all(ctx, m) != SQLITE_OK) return;
    /* Tables sharing one store merge it once. */
    for (bitcask_vtab *t = bcx_table_list(m); t; t = bcx_table_next(t)) {
      bcx_shared *sh = bcx_table_store(t);
      int seen = 0;
      for (bitcask_vtab *u = bcx_table_list(m); u != t; u = bcx_table_next(u))
        if (sh && bcx_table_store(u) == sh) seen = 1;
      if (!seen && merge_table(ctx, t, &reclaimed)) return;
    }
  }
  sqlite3_result_int64(ctx, (sqlite3_int64)reclaimed);
}

static void json_string(sqlite3_str *s, const char *z) {
  sqlite3_str_appendchar(s, 1, '"');
  for (; *z; z++) {
    unsigned char ch = (unsigned char)*z;
    if (ch == '"' || ch == '\\') {
      sqlite3_str_appendf(s, "\\%c", ch);
    } else if (ch < 0x20) {
      sqlite3_str_appendf(s, "\\u%04x", ch);
    } else {
      sqlite3_str_appendchar(s, 1, (char)ch);
    }
  }
  sqlite3_str_appendchar(s, 1, '"');
}

static void statsFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  bcx_module *m = sqlite3_user_data(ctx);
  (void)argc;
  bitcask_vtab *t = resolve_table(ctx, m, "bitcask_stats", argv[0]);
  if (!t) return;
  bcx_shared *sh = bcx_table_store(t);
  if (!sh) {
    table_error(ctx, "bitcask_stats", t, SQLITE_ERROR);
    return;
  }
  bc_stats st;
  bc_stats_get(sh->store, &st);
  static const char *const sync_names[] = {"full", "normal", "off"};
  sqlite3_str *s = sqlite3_str_new(m->db);
  sqlite3_str_appendall(s, "{\"table\":");
  json_string(s, bcx_table_name(t));
  sqlite3_str_appendall(s, ",\"dir\":");
  json_string(s, bc_dir(sh->store));
  sqlite3_str_appendf(
      s,
      ",\"keys\":%llu,\"files\":%llu,\"hint_files\":%llu,"
      "\"active_file_id\":%llu,\"total_bytes\":%llu,\"live_bytes\":%llu,"
      "\"dead_bytes\":%llu,\"keydir_bytes\":%llu,\"next_seq\":%llu,"
      "\"merges\":%llu,\"corrupt_records\":%llu,\"damaged_files\":%llu,"
      "\"truncated_bytes\":%llu,"
      "\"commits\":%llu,\"fsyncs\":%llu,"
      "\"max_file_size\":%llu,\"open_files\":%llu,\"max_open_files\":%llu,"
      "\"snapshots\":%llu,\"snapshot_versions\":%llu,\"snapshot_bytes\":%llu,"
      "\"retired_files\":%llu,"
      "\"sync\":\"%s\",\"read_only\":%s,\"writer\":%s}",
      (unsigned long long)st.keys, (unsigned long long)st.data_files,
      (unsigned long long)st.hint_files, (unsigned long long)st.active_file_id,
      (unsigned long long)st.total_bytes, (unsigned long long)st.live_bytes,
      (unsigned long long)st.dead_bytes, (unsigned long long)st.keydir_bytes,
      (unsigned long long)st.next_seq, (unsigned long long)st.merges,
      (unsigned long long)st.corrupt, (unsigned long long)st.damaged_files,
      (unsigned long long)st.truncated_bytes,
      (unsigned long long)st.commits, (unsigned long long)st.fsyncs,
      (unsigned long long)st.max_file_size, (unsigned long long)st.open_files,
      (unsigned long long)st.max_open_files,
      (unsigned long long)st.snapshots, (unsigned long long)st.snapshot_versions,
      (unsigned long long)st.snapshot_bytes, (unsigned long long)st.retired_files,
      st.sync <= BC_SYNC_OFF ? sync_names[st.sync] : "?",
      bcx_table_readonly(t) ? "true" : "false", st.read_only ? "false" : "true");
  int rc = sqlite3_str_errcode(s);
  char *json = sqlite3_str_finish(s);
  if (rc != SQLITE_OK || !json) {
    sqlite3_free(json);
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_text(ctx, json, -1, sqlite3_free);
  sqlite3_result_subtype(ctx, 'J'); /* JSON, as the json1 functions mark it */
}

int bcx_register_functions(sqlite3 *db, bcx_module *m) {
  const int flags = SQLITE_UTF8 | SQLITE_DIRECTONLY;
  int rc = sqlite3_create_function(db, "bitcask_merge", 1, flags, m, mergeFunc,
                                   NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_create_function(db, "bitcask_merge", 0, flags, m, mergeFunc,
                                 NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_create_function(db, "bitcask_stats", 1, flags, m, statsFunc,
                                 NULL, NULL);
  return rc;
}
