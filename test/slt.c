/*
 * slt.c - a sqllogictest runner for SQLite and the bitcask extension.
 *
 *   slt [--load PATH] [--keep] [--verbose] FILE.test...
 *
 * Runs every record of every file against SQLite (optionally with a loadable
 * extension loaded into each connection), prints each failure as
 * `FILE:LINE: what` with the SQL, the expected and the actual results, then
 * one summary line per file and a final `N passed, N failed[, N skipped]`.
 * Exit status: 0 when nothing failed, 1 when something did, 2 on bad usage.
 *
 * The format is the one of sqlite.org's sqllogictest with a few additions
 * from DuckDB and sqllogictest-rs.  Records are separated by blank lines;
 * lines starting with `#` are comments.  A sample:
 *
 *   # each file gets a fresh directory and a database file in it
 *   require bitcask
 *
 *   hash-threshold 8
 *
 *   statement ok
 *   CREATE TABLE t(a INTEGER, b TEXT);
 *   INSERT INTO t VALUES (1, 'one'), (2, NULL), (3, '')
 *
 *   query IT rowsort
 *   SELECT a, b FROM t
 *   ----
 *   1	one
 *   2	NULL
 *   3	(empty)
 *
 *   query I nosort mylabel con1
 *   SELECT a FROM t ORDER BY a
 *   ----
 *   3 values hashing to c0710d6b4f15dfa88f600b0e6b624077
 *
 *   statement error no such table
 *   SELECT * FROM missing
 *
 *   query error
 *   SELECT * FROM missing
 *   ----
 *   no such table: missing
 *
 *   loop i 0 3
 *
 *   statement ok
 *   INSERT INTO t VALUES (${i} + 10, 'x')
 *
 *   endloop
 *
 *   restart
 *
 *   skipif sqlite
 *   statement ok
 *   THIS IS NOT RUN
 *
 *   statement ok
 *   ATTACH '__TEST_DIR__/other.db' AS other
 *
 *   halt
 *
 * Records: `statement ok|error`, `query <types>|error`, `hash-threshold N`,
 * `loop VAR START END` ... `endloop`, `restart`, `require NAME`, `halt`,
 * each optionally preceded by `skipif NAME` / `onlyif NAME` lines.  Query
 * values are rendered by their type letter (T text, I integer, R real with
 * three decimals), NULL as `NULL`, an empty text as `(empty)`.  Expected
 * values are written one per line or one row per line separated by tabs.
 *
 * Counting: `statement` and `query` records are the tests; each passes,
 * fails or is skipped.  Other records only count when they go wrong (a parse
 * error, a restart that cannot reopen the database): one failure each.
 */
#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <md5.h>
#include <sqlite3.h>

#define BUSY_TIMEOUT_MS 1000
#define DEFAULT_CONN ""

/* ------------------------------------------------------------------------ */
/* Small helpers: allocation, growable strings, string vectors.              */

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) {
		fputs("slt: out of memory\n", stderr);
		exit(2);
	}
	return q;
}

static char *xstrndup(const char *s, size_t n)
{
	char *p = xrealloc(NULL, n + 1);
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return xstrdup("(formatting error)");
	char *p = xrealloc(NULL, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

typedef struct {
	char *p;
	size_t len, cap;
} Buf;

static void buf_add(Buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t c = b->cap ? b->cap : 64;
		while (c < b->len + n + 1)
			c *= 2;
		b->p = xrealloc(b->p, c);
		b->cap = c;
	}
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_puts(Buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* Hands the string over to the caller (never NULL) and empties the buffer. */
static char *buf_take(Buf *b)
{
	char *p = b->p ? b->p : xstrdup("");
	*b = (Buf){0};
	return p;
}

/* A vector of strings it owns. */
typedef struct {
	char **v;
	size_t n, cap;
} StrVec;

static void sv_push(StrVec *s, char *str)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = xrealloc(s->v, s->cap * sizeof *s->v);
	}
	s->v[s->n++] = str;
}

static void sv_free(StrVec *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	*s = (StrVec){0};
}

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Whitespace-only lines separate records. */
static int is_blank(const char *s)
{
	while (is_space(*s))
		s++;
	return *s == '\0';
}

static int is_comment(const char *s)
{
	return s[0] == '#';
}

/* Does line s consist of word w, maybe followed by spaces? */
static int line_is(const char *s, const char *w)
{
	size_t n = strlen(w);
	return strncmp(s, w, n) == 0 && is_blank(s + n);
}

/* Is s's first word w? */
static int first_word_is(const char *s, const char *w)
{
	size_t n = strlen(w);
	while (is_space(*s))
		s++;
	return strncmp(s, w, n) == 0 && (s[n] == '\0' || is_space(s[n]));
}

static void split_words(const char *s, StrVec *out)
{
	for (;;) {
		while (is_space(*s))
			s++;
		if (!*s)
			return;
		const char *e = s;
		while (*e && !is_space(*e))
			e++;
		sv_push(out, xstrndup(s, (size_t)(e - s)));
		s = e;
	}
}

/* The text after the first n words of s and the spaces after them. */
static const char *skip_words(const char *s, int n)
{
	while (is_space(*s))
		s++;
	for (int i = 0; i < n && *s; i++) {
		while (*s && !is_space(*s))
			s++;
		while (is_space(*s))
			s++;
	}
	return s;
}

/* `con` followed by digits: the name of a connection. */
static int is_conn_name(const char *s)
{
	if (strncmp(s, "con", 3) != 0 || !s[3])
		return 0;
	for (s += 3; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* Parses a whole decimal integer; 0 when s is not one. */
static int parse_ll(const char *s, long long *out)
{
	char *end;
	if (!*s)
		return 0;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end)
		return 0;
	*out = v;
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Files, records, connections.                                              */

typedef struct {
	const char *load; /* extension to load into every connection, or NULL */
	int keep;         /* keep the per-file test directories */
	int verbose;      /* print each record as it runs */
} Options;

typedef struct {
	long passed, failed, skipped;
} Counts;

/* A record: a run of non-blank lines, leading comment lines dropped. */
typedef struct {
	size_t first;  /* index of its first line */
	size_t count;  /* number of lines */
	int is_loop;   /* its header is `loop ...` */
	size_t end;    /* loops: index of the matching endloop, or nrec */
	int reported;  /* a parse error in it was reported already */
} Record;

typedef struct {
	char *name;     /* DEFAULT_CONN or conN */
	sqlite3 *db;
	char *load_err; /* why the extension did not load, or NULL */
} Conn;

typedef struct {
	char *name;
	long long value;
} LoopVar;

typedef struct {
	char *name;
	char hash[MD5_DIGEST_STRING_LENGTH];
	long line;
} Label;

typedef struct {
	const Options *opt;
	const char *path;
	char *text;            /* the file; its lines are split in place */
	char **line;
	size_t nline;
	Record *rec;
	size_t nrec;
	char *dir;             /* the file's fresh directory (__TEST_DIR__) */
	char *dbpath;          /* <dir>/test.db */
	Conn **conn;
	size_t nconn;
	LoopVar *var;          /* the loops being run, innermost last */
	size_t nvar;
	Label *label;
	size_t nlabel;
	long long hash_threshold;
	int need_ext;          /* the file says `require bitcask` */
	int halted;            /* `halt` was run */
	int skip_rest;         /* `require <unknown>`: the rest is skipped */
	Counts n;
} File;

/* A record being run: its lines after ${var} and __TEST_DIR__ substitution. */
typedef struct {
	File *f;
	Record *R;
	char **l;
	size_t n;
	size_t head;  /* index in l of the header line */
	long line;    /* its line number in the file */
	StrVec w;     /* the words of the header line */
	/* set by split_body() */
	char *sql;
	int has_sep;  /* there was a `----` line */
	size_t exp;   /* index in l of the first line after `----` */
} Rec;

/* ------------------------------------------------------------------------ */
/* Reporting.                                                                */

static void print_counts(const Counts *c)
{
	printf("%ld passed, %ld failed", c->passed, c->failed);
	if (c->skipped)
		printf(", %ld skipped", c->skipped);
	putchar('\n');
}

static void fail(File *f, long line, const char *fmt, ...)
{
	va_list ap;
	printf("%s:%ld: ", f->path, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	f->n.failed++;
}

/* A parse error counts once, even in a record run by a loop many times. */
static void parse_error(Rec *r, const char *fmt, ...)
{
	va_list ap;
	if (r->R->reported)
		return;
	r->R->reported = 1;
	printf("%s:%ld: parse error: ", r->f->path, r->line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	r->f->n.failed++;
}

/* Prints a labelled multi-line text, indented. */
static void show(const char *what, const char *text)
{
	printf("  %s:\n", what);
	for (const char *p = text;;) {
		const char *e = strchr(p, '\n');
		int len = e ? (int)(e - p) : (int)strlen(p);
		printf("    %.*s\n", len, p);
		if (!e)
			break;
		p = e + 1;
	}
}

static void show_lines(const char *what, char **v, size_t n)
{
	printf("  %s:%s\n", what, n ? "" : " (nothing)");
	for (size_t i = 0; i < n; i++)
		printf("    %s\n", v[i]);
}

static const char *conn_label(const char *name)
{
	return *name ? name : "default";
}

/* ------------------------------------------------------------------------ */
/* Connections.                                                              */

/* Opens connection `name` on the file's database; NULL and *err on failure. */
static Conn *open_conn(File *f, const char *name, char **err)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(f->dbpath, &db,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		*err = xstrdup(db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, NULL);

	Conn *c = xrealloc(NULL, sizeof *c);
	c->name = xstrdup(name);
	c->db = db;
	c->load_err = NULL;
	if (f->opt->load) {
		char *e = NULL;
		if (sqlite3_load_extension(db, f->opt->load, NULL, &e) != SQLITE_OK) {
			c->load_err = xstrdup(e ? e : sqlite3_errmsg(db));
			if (!f->need_ext)
				printf("%s: warning: cannot load extension %s: %s\n",
				       f->path, f->opt->load, c->load_err);
		}
		sqlite3_free(e);
	}
	f->conn = xrealloc(f->conn, (f->nconn + 1) * sizeof *f->conn);
	f->conn[f->nconn++] = c;
	return c;
}

static void close_all(File *f)
{
	for (size_t i = 0; i < f->nconn; i++) {
		Conn *c = f->conn[i];
		if (sqlite3_close(c->db) != SQLITE_OK) {
			fprintf(stderr, "slt: %s: closing connection %s: %s\n", f->path,
			        conn_label(c->name), sqlite3_errmsg(c->db));
			sqlite3_close_v2(c->db);
		}
		free(c->name);
		free(c->load_err);
		free(c);
	}
	free(f->conn);
	f->conn = NULL;
	f->nconn = 0;
}

/*
 * The connection a test runs on, opened if need be.  NULL, with the failure
 * reported, when it cannot be used: it does not open, or the file requires
 * the extension and it is not loaded.
 */
static Conn *use_conn(Rec *r, const char *name)
{
	File *f = r->f;
	if (f->need_ext && !f->opt->load) {
		fail(f, r->line, "require bitcask: no extension to load "
		     "(give --load PATH or set SLT_LOAD)");
		return NULL;
	}
	Conn *c = NULL;
	for (size_t i = 0; i < f->nconn && !c; i++)
		if (strcmp(f->conn[i]->name, name) == 0)
			c = f->conn[i];
	if (!c) {
		char *err = NULL;
		c = open_conn(f, name, &err);
		if (!c) {
			fail(f, r->line, "cannot open connection %s on %s: %s",
			     conn_label(name), f->dbpath, err);
			free(err);
			return NULL;
		}
	}
	if (f->need_ext && c->load_err) {
		fail(f, r->line, "require bitcask: cannot load extension %s: %s",
		     f->opt->load, c->load_err);
		return NULL;
	}
	return c;
}

/* ------------------------------------------------------------------------ */
/* Running SQL.                                                              */

/* Runs every statement of sql to completion; -1 and *err on the first error. */
static int exec_all(sqlite3 *db, const char *sql, char **err)
{
	const char *tail = sql;
	while (*tail) {
		sqlite3_stmt *st = NULL;
		const char *next = NULL;
		if (sqlite3_prepare_v2(db, tail, -1, &st, &next) != SQLITE_OK) {
			*err = xstrdup(sqlite3_errmsg(db));
			return -1;
		}
		if (st) {
			int rc;
			while ((rc = sqlite3_step(st)) == SQLITE_ROW)
				;
			if (rc != SQLITE_DONE) {
				*err = xstrdup(sqlite3_errmsg(db));
				sqlite3_finalize(st);
				return -1;
			}
			sqlite3_finalize(st);
		}
		if (!next || next == tail)
			break;
		tail = next;
	}
	return 0;
}

/* Is there another statement (or something unparsable) in tail? */
static int has_more_sql(sqlite3 *db, const char *tail)
{
	while (*tail) {
		sqlite3_stmt *st = NULL;
		const char *next = NULL;
		if (sqlite3_prepare_v2(db, tail, -1, &st, &next) != SQLITE_OK)
			return 1;
		if (st) {
			sqlite3_finalize(st);
			return 1;
		}
		if (!next || next == tail)
			break;
		tail = next;
	}
	return 0;
}

/* One value as sqllogictest renders it, driven by the column's type letter. */
static char *render(sqlite3_stmt *st, int i, char type)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return xstrdup("NULL");
	if (type == 'I')
		return xasprintf("%lld", (long long)sqlite3_column_int64(st, i));
	if (type == 'R')
		return xasprintf("%.3f", sqlite3_column_double(st, i));
	const unsigned char *t = sqlite3_column_text(st, i);
	int n = sqlite3_column_bytes(st, i);
	if (!t || n <= 0)
		return xstrdup("(empty)");
	char *s = xrealloc(NULL, (size_t)n + 1);
	for (int k = 0; k < n; k++)
		s[k] = (t[k] < 0x20 || t[k] > 0x7e) ? '@' : (char)t[k];
	s[n] = '\0';
	return s;
}

/*
 * Runs a one-statement query, appending its rendered values to out.  NULL on
 * success, else what went wrong (to be freed).
 */
static char *fetch_values(sqlite3 *db, const char *sql, const char *types,
                          StrVec *out)
{
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, &tail) != SQLITE_OK)
		return xasprintf("query failed: %s", sqlite3_errmsg(db));
	if (!st)
		return xstrdup("query failed: no statement in the SQL");
	int ncol = sqlite3_column_count(st);
	if ((size_t)ncol != strlen(types)) {
		sqlite3_finalize(st);
		return xasprintf("expected %zu columns, got %d", strlen(types), ncol);
	}
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		for (int i = 0; i < ncol; i++)
			sv_push(out, render(st, i, types[i]));
	if (rc != SQLITE_DONE) {
		char *msg = xasprintf("query failed: %s", sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return msg;
	}
	sqlite3_finalize(st);
	if (has_more_sql(db, tail))
		return xstrdup("a query must be a single SQL statement");
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Sorting and hashing results.                                              */

typedef struct {
	char **v;
	size_t n;
} Row;

static int cmp_rows(const void *a, const void *b)
{
	const Row *x = a, *y = b;
	for (size_t i = 0; i < x->n; i++) {
		int c = strcmp(x->v[i], y->v[i]);
		if (c)
			return c;
	}
	return 0;
}

static int cmp_strs(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* rowsort: orders the rows of ncol values each by their rendered values. */
static void sort_rows(StrVec *v, size_t ncol)
{
	size_t nrow = v->n / ncol;
	if (nrow < 2)
		return;
	Row *rows = xrealloc(NULL, nrow * sizeof *rows);
	for (size_t r = 0; r < nrow; r++)
		rows[r] = (Row){v->v + r * ncol, ncol};
	qsort(rows, nrow, sizeof *rows, cmp_rows);
	char **sorted = xrealloc(NULL, v->n * sizeof *sorted);
	for (size_t r = 0; r < nrow; r++)
		memcpy(sorted + r * ncol, rows[r].v, ncol * sizeof *sorted);
	free(rows);
	free(v->v);
	v->v = sorted;
	v->cap = v->n;
}

/* valuesort: orders all values. */
static void sort_values(StrVec *v)
{
	if (v->n > 1)
		qsort(v->v, v->n, sizeof *v->v, cmp_strs);
}

/* MD5 of the values, each followed by a newline, as lowercase hex. */
static void hash_values(const StrVec *v, char out[MD5_DIGEST_STRING_LENGTH])
{
	MD5_CTX ctx;
	MD5Init(&ctx);
	for (size_t i = 0; i < v->n; i++) {
		MD5Update(&ctx, (const uint8_t *)v->v[i], strlen(v->v[i]));
		MD5Update(&ctx, (const uint8_t *)"\n", 1);
	}
	MD5End(&ctx, out);
}

/* Parses `K values hashing to <32 hex digits>`; 0 if s is not that. */
static int parse_hash_line(const char *s, long long *count,
                           char hash[MD5_DIGEST_STRING_LENGTH])
{
	static const char mid[] = " values hashing to ";
	char *end;
	if (!isdigit((unsigned char)*s))
		return 0;
	errno = 0;
	*count = strtoll(s, &end, 10);
	if (errno || strncmp(end, mid, sizeof mid - 1) != 0)
		return 0;
	const char *p = end + sizeof mid - 1;
	for (int i = 0; i < 32; i++) {
		if (!isxdigit((unsigned char)p[i]))
			return 0;
		hash[i] = (char)tolower((unsigned char)p[i]);
	}
	hash[32] = '\0';
	return is_blank(p + 32);
}

/* ------------------------------------------------------------------------ */
/* Records.                                                                  */

/* ${var} of a running loop becomes its value, __TEST_DIR__ the directory. */
static char *substitute(File *f, const char *s)
{
	static const char testdir[] = "__TEST_DIR__";
	Buf b = {0};
	while (*s) {
		if (s[0] == '$' && s[1] == '{') {
			const char *name = s + 2, *e = strchr(name, '}');
			const LoopVar *v = NULL;
			for (size_t i = f->nvar; e && i-- > 0 && !v;)
				if (strlen(f->var[i].name) == (size_t)(e - name) &&
				    strncmp(f->var[i].name, name, (size_t)(e - name)) == 0)
					v = &f->var[i];
			if (v) {
				char num[32];
				snprintf(num, sizeof num, "%lld", v->value);
				buf_puts(&b, num);
				s = e + 1;
				continue;
			}
		}
		if (strncmp(s, testdir, sizeof testdir - 1) == 0) {
			buf_puts(&b, f->dir);
			s += sizeof testdir - 1;
			continue;
		}
		buf_add(&b, s, 1);
		s++;
	}
	return buf_take(&b);
}

/* Index in the record of its header line (past comments and conditions). */
static size_t header_of(char **l, size_t n)
{
	size_t k = 0;
	while (k < n && (is_comment(l[k]) || first_word_is(l[k], "skipif") ||
	                 first_word_is(l[k], "onlyif")))
		k++;
	return k;
}

/*
 * Splits the lines after the header into the SQL (comment lines dropped)
 * and, after a `----` line, the expected lines l[exp..n).
 */
static void split_body(Rec *r)
{
	Buf sql = {0};
	r->has_sep = 0;
	r->exp = r->n;
	for (size_t k = r->head + 1; k < r->n; k++) {
		if (line_is(r->l[k], "----")) {
			r->has_sep = 1;
			r->exp = k + 1;
			break;
		}
		if (is_comment(r->l[k]))
			continue;
		if (sql.len)
			buf_puts(&sql, "\n");
		buf_puts(&sql, r->l[k]);
	}
	r->sql = buf_take(&sql);
}

/* The expected lines joined by newlines (an error message). */
static char *expected_text(const Rec *r)
{
	Buf b = {0};
	for (size_t k = r->exp; k < r->n; k++) {
		if (k > r->exp)
			buf_puts(&b, "\n");
		buf_puts(&b, r->l[k]);
	}
	return buf_take(&b);
}

/*
 * The text after the first `skip` words of the header, with a trailing conN
 * token removed and stored in *conn (else *conn is DEFAULT_CONN).  Both are
 * to be freed.
 */
static char *header_rest(const Rec *r, int skip, char **conn)
{
	const char *rest = skip_words(r->l[r->head], skip);
	size_t len = strlen(rest);
	while (len && is_space(rest[len - 1]))
		len--;
	size_t start = len;
	while (start && !is_space(rest[start - 1]))
		start--;
	char *last = xstrndup(rest + start, len - start);
	if (is_conn_name(last)) {
		*conn = last;
		len = start;
		while (len && is_space(rest[len - 1]))
			len--;
	} else {
		free(last);
		*conn = xstrdup(DEFAULT_CONN);
	}
	return xstrndup(rest, len);
}

/* For records that are a single line. */
static int check_no_body(Rec *r)
{
	for (size_t k = r->head + 1; k < r->n; k++)
		if (!is_comment(r->l[k])) {
			parse_error(r, "unexpected line after '%s': %s", r->w.v[0], r->l[k]);
			return 0;
		}
	return 1;
}

/*
 * Shared by `statement error` and `query error`: the SQL must fail, and when
 * `expected` is not empty its text must occur in the error message.
 */
static void expect_error(Rec *r, const char *conn, const char *expected)
{
	Conn *c = use_conn(r, conn);
	if (!c)
		return;
	char *err = NULL;
	if (exec_all(c->db, r->sql, &err) == 0) {
		fail(r->f, r->line, "expected an error, but the SQL succeeded");
		show("sql", r->sql);
		if (*expected)
			show("expected error", expected);
	} else if (*expected && !strstr(err, expected)) {
		fail(r->f, r->line, "wrong error message");
		show("sql", r->sql);
		show("expected error containing", expected);
		show("actual error", err);
	} else {
		r->f->n.passed++;
	}
	free(err);
}

/* `statement ok|error [text] [conN]` */
static void run_statement(Rec *r)
{
	const char *mode = r->w.n > 1 ? r->w.v[1] : "";
	int ok = strcmp(mode, "ok") == 0;
	if (!ok && strcmp(mode, "error") != 0) {
		parse_error(r, "expected 'statement ok' or 'statement error'");
		return;
	}
	char *conn = NULL, *text = header_rest(r, 2, &conn);
	split_body(r);
	if (!*r->sql) {
		parse_error(r, "statement without SQL");
	} else if (ok && (*text || r->has_sep)) {
		parse_error(r, "'statement ok' takes no expected text");
	} else if (*text && r->has_sep) {
		parse_error(r, "expected error given both on the header line and after ----");
	} else if (ok) {
		Conn *c = use_conn(r, conn);
		char *err = NULL;
		if (!c) {
			/* reported */
		} else if (exec_all(c->db, r->sql, &err) == 0) {
			r->f->n.passed++;
		} else {
			fail(r->f, r->line, "statement failed: %s", err);
			show("sql", r->sql);
		}
		free(err);
	} else {
		char *expected = r->has_sep ? expected_text(r) : xstrdup(text);
		expect_error(r, conn, expected);
		free(expected);
	}
	free(text);
	free(conn);
}

/* `query error [text] [conN]` */
static void run_query_error(Rec *r)
{
	char *conn = NULL, *text = header_rest(r, 2, &conn);
	split_body(r);
	if (!*r->sql) {
		parse_error(r, "query without SQL");
	} else if (*text && r->has_sep) {
		parse_error(r, "expected error given both on the header line and after ----");
	} else {
		char *expected = r->has_sep ? expected_text(r) : xstrdup(text);
		expect_error(r, conn, expected);
		free(expected);
	}
	free(text);
	free(conn);
}

/*
 * Checks a query's label: queries with the same label must give the same
 * results.  0 (reported) if they do not.
 */
static int check_label(Rec *r, const char *label, const char *hash)
{
	File *f = r->f;
	for (size_t i = 0; i < f->nlabel; i++) {
		if (strcmp(f->label[i].name, label) != 0)
			continue;
		if (strcmp(f->label[i].hash, hash) == 0)
			return 1;
		fail(f, r->line, "results differ from those of the query at line %ld "
		     "with the same label %s (%s vs %s)", f->label[i].line, label,
		     hash, f->label[i].hash);
		show("sql", r->sql);
		return 0;
	}
	f->label = xrealloc(f->label, (f->nlabel + 1) * sizeof *f->label);
	Label *l = &f->label[f->nlabel++];
	l->name = xstrdup(label);
	memcpy(l->hash, hash, sizeof l->hash);
	l->line = r->line;
	return 1;
}

/* Reports a wrong query result: why, the SQL, expected and actual. */
static void report_mismatch(Rec *r, const char *why, int hashed,
                            const StrVec *act, const char *acthash)
{
	File *f = r->f;
	int over = f->hash_threshold > 0 &&
	           act->n > (unsigned long long)f->hash_threshold;
	fail(f, r->line, "wrong result: %s", why);
	show("sql", r->sql);
	show_lines("expected", r->l + r->exp, r->n - r->exp);
	printf("  actual:\n");
	if (hashed || over)
		printf("    %zu values hashing to %s\n", act->n, acthash);
	if (!over) {
		for (size_t i = 0; i < act->n; i++)
			printf("    %s\n", act->v[i]);
		if (!act->n && !hashed)
			printf("    (nothing)\n");
	}
}

/* `query <types> [sortmode] [label] [conN]` */
static void run_query(Rec *r)
{
	if (r->w.n < 2) {
		parse_error(r, "query without column types");
		return;
	}
	if (strcmp(r->w.v[1], "error") == 0) {
		run_query_error(r);
		return;
	}
	const char *types = r->w.v[1];
	if (strspn(types, "TIR") != strlen(types)) {
		parse_error(r, "bad column types '%s' (one of T, I, R per column)", types);
		return;
	}
	size_t nextra = r->w.n - 2;
	const char *conn = DEFAULT_CONN, *sortmode = "nosort", *label = NULL;
	char **extra = r->w.v + 2;
	if (nextra && is_conn_name(extra[nextra - 1]))
		conn = extra[--nextra];
	int known_sort = nextra && (strcmp(extra[0], "nosort") == 0 ||
	                            strcmp(extra[0], "rowsort") == 0 ||
	                            strcmp(extra[0], "valuesort") == 0);
	if (nextra > 2 || (nextra == 2 && !known_sort)) {
		parse_error(r, "expected 'query <types> [sortmode] [label] [conN]'");
		return;
	}
	if (known_sort)
		sortmode = extra[0];
	if (nextra == 2 || (nextra == 1 && !known_sort))
		label = extra[nextra - 1];

	split_body(r);
	if (!*r->sql) {
		parse_error(r, "query without SQL");
		return;
	}
	Conn *c = use_conn(r, conn);
	if (!c)
		return;

	StrVec act = {0};
	char *err = fetch_values(c->db, r->sql, types, &act);
	if (err) {
		fail(r->f, r->line, "%s", err);
		show("sql", r->sql);
		free(err);
		sv_free(&act);
		return;
	}
	if (strcmp(sortmode, "rowsort") == 0)
		sort_rows(&act, strlen(types));
	else if (strcmp(sortmode, "valuesort") == 0)
		sort_values(&act);
	char acthash[MD5_DIGEST_STRING_LENGTH];
	hash_values(&act, acthash);

	/* Compare: either `K values hashing to H`, or the values themselves. */
	long long hcount = 0;
	char hhash[MD5_DIGEST_STRING_LENGTH];
	int hashed = r->n - r->exp == 1 &&
	             parse_hash_line(r->l[r->exp], &hcount, hhash);
	char *why = NULL;
	if (hashed) {
		if (hcount < 0 || (unsigned long long)hcount != act.n ||
		    strcmp(hhash, acthash) != 0)
			why = xasprintf("expected %lld values hashing to %s, got %zu "
			                "values hashing to %s", hcount, hhash, act.n,
			                acthash);
	} else {
		StrVec exp = {0};
		for (size_t k = r->exp; k < r->n; k++)
			for (const char *p = r->l[k];;) {
				const char *tab = strchr(p, '\t');
				sv_push(&exp, tab ? xstrndup(p, (size_t)(tab - p)) : xstrdup(p));
				if (!tab)
					break;
				p = tab + 1;
			}
		size_t ncol = strlen(types);
		if (exp.n != act.n)
			why = xasprintf("expected %zu values, got %zu", exp.n, act.n);
		for (size_t i = 0; !why && i < exp.n; i++)
			if (strcmp(exp.v[i], act.v[i]) != 0)
				why = xasprintf("value %zu (row %zu, column %zu) differs: "
				                "expected '%s', got '%s'", i + 1, i / ncol + 1,
				                i % ncol + 1, exp.v[i], act.v[i]);
		sv_free(&exp);
	}

	if (why)
		report_mismatch(r, why, hashed, &act, acthash);
	else if (!label || check_label(r, label, acthash))
		r->f->n.passed++;
	free(why);
	sv_free(&act);
}

/* `hash-threshold N` */
static void run_hash_threshold(Rec *r)
{
	long long n;
	if (r->w.n != 2 || !parse_ll(r->w.v[1], &n) || n < 0) {
		parse_error(r, "expected 'hash-threshold N' with N >= 0");
		return;
	}
	if (check_no_body(r))
		r->f->hash_threshold = n;
}

/* `halt`: stop running the file. */
static void run_halt(Rec *r)
{
	if (r->w.n != 1) {
		parse_error(r, "'halt' takes no arguments");
		return;
	}
	if (check_no_body(r))
		r->f->halted = 1;
}

/* `restart`: close every connection and reopen the default one. */
static void run_restart(Rec *r)
{
	if (r->w.n != 1) {
		parse_error(r, "'restart' takes no arguments");
		return;
	}
	if (!check_no_body(r))
		return;
	File *f = r->f;
	close_all(f);
	char *err = NULL;
	if (!open_conn(f, DEFAULT_CONN, &err)) {
		fail(f, r->line, "restart: cannot reopen %s: %s", f->dbpath, err);
		free(err);
	}
}

/*
 * `require NAME`: `require bitcask` was seen before the run (see need_ext);
 * anything else is not available here and skips the rest of the file.
 */
static void run_require(Rec *r)
{
	if (r->w.n != 2) {
		parse_error(r, "expected 'require NAME'");
		return;
	}
	if (!check_no_body(r) || strcmp(r->w.v[1], "bitcask") == 0)
		return;
	printf("%s:%ld: require %s: not available, skipping the rest of the file\n",
	       r->f->path, r->line, r->w.v[1]);
	r->f->skip_rest = 1;
}

static size_t run_range(File *f, size_t from, size_t to);

/* `loop VAR START END` ... `endloop`: returns the index to go on with. */
static size_t run_loop(Rec *r, size_t ri, int conditioned)
{
	File *f = r->f;
	size_t next = r->R->end < f->nrec ? r->R->end + 1 : f->nrec;
	long long start, end;
	if (r->R->end >= f->nrec) {
		parse_error(r, "loop without endloop");
		return next;
	}
	if (conditioned) {
		parse_error(r, "skipif/onlyif cannot apply to a loop");
		return next;
	}
	const char *name = r->w.n == 4 ? r->w.v[1] : "";
	int ident = (isalpha((unsigned char)*name) || *name == '_') &&
	            strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                         "0123456789_") == strlen(name);
	if (!ident || !parse_ll(r->w.v[2], &start) || !parse_ll(r->w.v[3], &end)) {
		parse_error(r, "expected 'loop VAR START END' with integers START, END");
		return next;
	}
	if (!check_no_body(r))
		return next;
	size_t top = f->nvar++;
	f->var = xrealloc(f->var, f->nvar * sizeof *f->var);
	f->var[top].name = xstrdup(name);
	for (long long v = start; v < end && !f->halted; v++) {
		f->var[top].value = v;
		run_range(f, ri + 1, r->R->end);
	}
	free(f->var[top].name);
	f->nvar--;
	return next;
}

static int is_test(const char *kw)
{
	return strcmp(kw, "statement") == 0 || strcmp(kw, "query") == 0;
}

/*
 * Runs record ri: substitutes its lines, applies skipif/onlyif, and hands it
 * to the function for its kind.  Returns the index of the record to run next.
 */
static size_t run_record(File *f, size_t ri)
{
	static const char *const kinds[] = {
		"statement", "query", "hash-threshold", "halt", "restart",
		"require", "loop", "endloop",
	};
	Record *R = &f->rec[ri];
	Rec r = {.f = f, .R = R, .n = R->count};
	size_t next = ri + 1;
	r.l = xrealloc(NULL, r.n * sizeof *r.l);
	for (size_t k = 0; k < r.n; k++)
		r.l[k] = substitute(f, f->line[R->first + k]);
	r.head = header_of(r.l, r.n);
	r.line = (long)(R->first + (r.head < r.n ? r.head : 0)) + 1;

	/* skipif/onlyif: this runner is both `sqlite` and `bitcask`. */
	int skip = 0, conditioned = 0;
	for (size_t k = 0; k < r.head; k++) {
		if (is_comment(r.l[k]))
			continue;
		StrVec c = {0};
		split_words(r.l[k], &c);
		if (c.n != 2) {
			r.line = (long)(R->first + k) + 1;
			parse_error(&r, "expected '%s NAME'", c.v[0]);
			sv_free(&c);
			goto done;
		}
		int match = strcmp(c.v[1], "sqlite") == 0 || strcmp(c.v[1], "bitcask") == 0;
		if (strcmp(c.v[0], "skipif") == 0 ? match : !match)
			skip = 1;
		conditioned = 1;
		sv_free(&c);
	}
	if (r.head == r.n) {
		parse_error(&r, "skipif/onlyif without a record after it");
		goto done;
	}

	split_words(r.l[r.head], &r.w);
	const char *kw = r.w.v[0];
	int known = 0;
	for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
		known |= strcmp(kw, kinds[i]) == 0;
	if (!known) {
		parse_error(&r, "unknown record '%s'", kw);
		goto done;
	}
	if (strcmp(kw, "loop") == 0) {
		next = run_loop(&r, ri, conditioned);
		goto done;
	}
	if (strcmp(kw, "endloop") == 0) {
		parse_error(&r, "endloop without loop");
		goto done;
	}
	if (skip || (f->skip_rest && strcmp(kw, "halt") != 0)) {
		if (is_test(kw))
			f->n.skipped++;
		if (f->opt->verbose)
			printf("%s:%ld: skipped: %s\n", f->path, r.line, r.l[r.head]);
		goto done;
	}
	if (f->opt->verbose) {
		printf("%s:%ld: %s\n", f->path, r.line, r.l[r.head]);
		for (size_t k = r.head + 1; k < r.n; k++)
			printf("    %s\n", r.l[k]);
	}

	if (strcmp(kw, "statement") == 0)
		run_statement(&r);
	else if (strcmp(kw, "query") == 0)
		run_query(&r);
	else if (strcmp(kw, "hash-threshold") == 0)
		run_hash_threshold(&r);
	else if (strcmp(kw, "halt") == 0)
		run_halt(&r);
	else if (strcmp(kw, "restart") == 0)
		run_restart(&r);
	else
		run_require(&r);
done:
	for (size_t k = 0; k < r.n; k++)
		free(r.l[k]);
	free(r.l);
	sv_free(&r.w);
	free(r.sql);
	return next;
}

/* Runs records [from, to) until done or halted. */
static size_t run_range(File *f, size_t from, size_t to)
{
	size_t i = from;
	while (i < to && !f->halted)
		i = run_record(f, i);
	return i;
}

/* ------------------------------------------------------------------------ */
/* Files.                                                                    */

static char *read_all(const char *path, char **err)
{
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		*err = xstrdup(strerror(errno));
		return NULL;
	}
	Buf b = {0};
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
		buf_add(&b, chunk, n);
	if (ferror(fp)) {
		*err = xstrdup(strerror(errno));
		fclose(fp);
		free(b.p);
		return NULL;
	}
	fclose(fp);
	return buf_take(&b);
}

/* Splits the text into lines and the lines into records; matches loops. */
static void parse_file(File *f)
{
	size_t cap = 0;
	for (char *p = f->text; *p;) {
		char *e = strchr(p, '\n');
		if (e)
			*e = '\0';
		size_t len = strlen(p);
		if (len && p[len - 1] == '\r')
			p[len - 1] = '\0';
		if (f->nline == cap) {
			cap = cap ? cap * 2 : 256;
			f->line = xrealloc(f->line, cap * sizeof *f->line);
		}
		f->line[f->nline++] = p;
		if (!e)
			break;
		p = e + 1;
	}

	cap = 0;
	for (size_t i = 0; i < f->nline;) {
		if (is_blank(f->line[i])) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < f->nline && !is_blank(f->line[j]))
			j++;
		while (i < j && is_comment(f->line[i]))
			i++;
		if (i < j) {
			if (f->nrec == cap) {
				cap = cap ? cap * 2 : 64;
				f->rec = xrealloc(f->rec, cap * sizeof *f->rec);
			}
			f->rec[f->nrec++] = (Record){.first = i, .count = j - i};
		}
		i = j;
	}

	/* Match loop ... endloop; note `require bitcask` anywhere. */
	size_t *stack = xrealloc(NULL, (f->nrec + 1) * sizeof *stack), depth = 0;
	for (size_t i = 0; i < f->nrec; i++) {
		Record *R = &f->rec[i];
		char **l = f->line + R->first;
		size_t h = header_of(l, R->count);
		R->end = f->nrec;
		if (h == R->count)
			continue;
		if (first_word_is(l[h], "loop")) {
			R->is_loop = 1;
			stack[depth++] = i;
		} else if (first_word_is(l[h], "endloop") && depth) {
			f->rec[stack[--depth]].end = i;
		} else if (first_word_is(l[h], "require") &&
		           line_is(skip_words(l[h], 1), "bitcask")) {
			f->need_ext = 1;
		}
	}
	free(stack);
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0)
		fprintf(stderr, "slt: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

/* Runs one file, adding its counts to *total. */
static void run_file(const Options *opt, const char *path, Counts *total)
{
	File f = {.opt = opt, .path = path};
	char *err = NULL;
	f.text = read_all(path, &err);
	if (!f.text) {
		fail(&f, 0, "cannot read file: %s", err);
		free(err);
		goto summary;
	}
	parse_file(&f);

	const char *tmp = getenv("TMPDIR");
	f.dir = xasprintf("%s/slt-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(f.dir)) {
		fail(&f, 0, "cannot create test directory %s: %s", f.dir, strerror(errno));
		goto summary;
	}
	f.dbpath = xasprintf("%s/test.db", f.dir);
	if (opt->verbose)
		printf("%s: test directory %s\n", path, f.dir);

	run_range(&f, 0, f.nrec);

	close_all(&f);
	if (opt->keep)
		printf("%s: kept test directory %s\n", path, f.dir);
	else
		nftw(f.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
summary:
	printf("%s: ", path);
	print_counts(&f.n);
	total->passed += f.n.passed;
	total->failed += f.n.failed;
	total->skipped += f.n.skipped;
	for (size_t i = 0; i < f.nlabel; i++)
		free(f.label[i].name);
	free(f.label);
	free(f.var);
	free(f.rec);
	free(f.line);
	free(f.text);
	free(f.dir);
	free(f.dbpath);
}

static void usage(FILE *to)
{
	fputs("usage: slt [--load PATH] [--keep] [--verbose] FILE.test...\n"
	      "  --load PATH  load this SQLite extension into every connection\n"
	      "               (default: $SLT_LOAD)\n"
	      "  --keep       keep the per-file test directories\n"
	      "  --verbose    print each record as it runs\n", to);
}

int main(int argc, char **argv)
{
	Options opt = {0};
	const char **files = xrealloc(NULL, (size_t)argc * sizeof *files);
	size_t nfiles = 0;
	int options_done = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (options_done || a[0] != '-' || !a[1]) {
			files[nfiles++] = a;
		} else if (strcmp(a, "--") == 0) {
			options_done = 1;
		} else if (strcmp(a, "--load") == 0 && i + 1 < argc) {
			opt.load = argv[++i];
		} else if (strncmp(a, "--load=", 7) == 0) {
			opt.load = a + 7;
		} else if (strcmp(a, "--keep") == 0) {
			opt.keep = 1;
		} else if (strcmp(a, "--verbose") == 0) {
			opt.verbose = 1;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			free(files);
			return 0;
		} else {
			fprintf(stderr, "slt: bad option %s\n", a);
			usage(stderr);
			free(files);
			return 2;
		}
	}
	if (!nfiles) {
		usage(stderr);
		free(files);
		return 2;
	}
	if (!opt.load) {
		const char *env = getenv("SLT_LOAD");
		if (env && *env)
			opt.load = env;
	}

	Counts total = {0};
	for (size_t i = 0; i < nfiles; i++)
		run_file(&opt, files[i], &total);
	print_counts(&total);
	free(files);
	sqlite3_shutdown();
	fflush(stdout);
	return total.failed ? 1 : 0;
}
