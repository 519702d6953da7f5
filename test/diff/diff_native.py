#!/usr/bin/python3
"""The random differential test: a bitcask table against a native table.

usage: /usr/bin/python3 test/diff/diff_native.py build/bitcask
           [--seconds S] [--statements N] [--seed N] [--repro-seconds S]
           [--encoding ENC[:WEIGHT],...] [--two-pass] [--trace]
       (make check-diff: 10 s over UTF-8:3,UTF-16le:1,UTF-16be:1;
        make check-diff-long DIFF_SECONDS=n; DIFF_SEED=s repeats a run)

One connection, one database file with two tables:

    kv   CREATE VIRTUAL TABLE kv USING bitcask(max_file_size='4KB', sync=off)
    n    CREATE TABLE n(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID

Random statements are generated as templates and run once with kv and once
with n: INSERT (every conflict clause, several rows, INSERT ... SELECT from
the table itself), REPLACE, UPDATE of values and of keys (key + 1, key - 1,
a constant, NULL, a type change, UPDATE ... FROM), DELETE, and SELECTs with
=, IN (lists and subqueries), ranges and BETWEEN, LIKE / GLOB / ESCAPE,
ORDER BY (ASC/DESC, with other terms), LIMIT / OFFSET, aggregates, GROUP
BY, DISTINCT, self-joins on the key, EXISTS; inside and outside
transactions with nested savepoints, RELEASE, ROLLBACK TO and ROLLBACK;
with merges of kv and reopens of the connection between them.  Keys and
values are of every storage class: integers (0, +-1, the int64 extremes),
reals (integral ones such as 1.0 and 2.0 that equal integer keys, -0.0, 0.1,
1e18, 2^63, +-Inf, subnormal-sized), text (empty, case variants, LIKE
metacharacters, digits, non-ASCII, an embedded NUL), blobs (empty, x'00',
the bytes of a text key, 3 KB), and NULL values (a NULL key must fail).

Compared after every statement: the result rows with their storage classes
(in order where the query has an ORDER BY that orders every row, as
multisets otherwise, and only the count under a LIMIT without ORDER BY);
the error, if any -- SQLite's extended result code (sqlite3.Error
.sqlite_errorcode, Python 3.11+) and the message with the table name
normalised; and, after every write, both tables' rows (key, value, classes)
and count(*).

An explicit transaction is one for both tables; when an OR ROLLBACK
statement on kv ends it, n's statement is judged in the transaction's state
(replayed on n alone, then rolled back).  Each encoding gets a database of
its own (PRAGMA encoding), where keys must order as SQLite compares text in
that encoding.

What is not compared, because SQL leaves it open: the order of rows without
an ORDER BY that orders them all (so INSERT ... SELECT always orders its
rows, which decide who wins under OR REPLACE / OR IGNORE), and the order in
which UPDATE ... FROM visits rows (its statements are built so the outcome
does not depend on it: see write()).  And UPDATE OR REPLACE statements that
change a row's key to another updated row's old key are left out (counted;
TWO_PASS below says why; --two-pass runs them).

One adjustment to the native side, because it is the native table that is
wrong there: `key LIKE p` / `key GLOB p` is run on n as `+key LIKE p`
(SQLite's LIKE optimisation on a column without affinity can skip REAL keys
whose text matches, README "Query planning"); the native table's own
answer is also computed for SELECTs and the disagreements counted as
"native LIKE/GLOB plan anomalies" (informational).  Statements that
SQLite's virtual-table interface makes impossible to match and README
documents (RETURNING, `key = X` with X of numeric affinity, UPSERT) are not
generated.

Each mismatch is printed once per class (kind, statement shape, codes) with
its first example and, time permitting, a shrunk reproduction: a script for
the sqlite3 shell.  The last line is "N statements, N mismatches"; the exit
status is non-zero on a mismatch.
"""
import argparse
import math
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time

# ------------------------------------------------------------------ literals
INT_KEYS = ['0', '1', '2', '3', '-1', '10', '100', '9223372036854775807',
            '-9223372036854775808', '4611686018427387904', '-100']
REAL_KEYS = ['0.0', '0.5', '1.0', '1.5', '2.0', '-2.25', '1e18', '1.5e300', '9.223372036854775807e18',
             '-0.0', '0.1', '3.0000000000000004', '1e-300', '9e999', '-9e999', '100.0', '-1.0']
TEXT_KEYS = ["''", "'a'", "'A'", "'b'", "'ab'", "'abc'", "'a%'", "'a_c'", "'1'", "'1.0'",
             "'01'", "' 1'", "'\u00e9'", "'\u0100'", "'zz'", "'user:1'", "'user:10'",
             "'user:2'", "'a' || char(0) || 'b'", "'\U0001F600'", "'\uff21'", "'B'", "'-1'", "'1e18'"]
BLOB_KEYS = ["x''", "x'00'", "x'61'", "x'6162'", "x'ff'", "x'00ff'", "zeroblob(2)", "x'31'"]
VALUES = ['NULL', '0', '1', '-5', '2.5', '1.0', '-0.0', "'x'", "'hello'", "''", "x'00'",
          "zeroblob(3000)", "printf('%.*c', 3000, 'v')", '9223372036854775807', '1e308',
          "'1'", "x'6162'", "'a'", "'\u00e9t\u00e9'"]
LIKE_PATS = ["'a%'", "'A%'", "'1%'", "'%'", "'_'", "'a_%'", "'user:1%'", "'\u00e9%'",
             "'1.0e%'", "'-%'", "'ab'", "'%b'", "'a\\%%' ESCAPE '\\'", "'9.2%'", "''",
             "'user:_'", "'%1'", "x'61'"]
GLOB_PATS = ["'a*'", "'A*'", "'1*'", "'*'", "'?'", "'1.0e*'", "'[ab]*'", "'user:1*'",
             "'-*'", "'ab'", "'*b'", "'9.2*'", "'[0-9]*'", "'\u00e9*'"]


def all_keys():
    return INT_KEYS + REAL_KEYS + TEXT_KEYS + BLOB_KEYS


# ------------------------------------------------------------------ generator
EQ = sqlite3.connect(':memory:')  # SQLite's equality of two literals
RUN_TWO_PASS = False              # --two-pass

# NATIVE_DELETE_BUG: in SQLite 3.40.1 (native tables, rowid or not)
#   CREATE TABLE n(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
#   INSERT INTO n VALUES (x'6162', 1), ('b', x'6162');
#   SELECT key FROM n WHERE key <= x'61' OR key IN (SELECT value FROM n WHERE key = 'b');
#                                                   -- both rows
#   DELETE FROM n WHERE key <= x'61' OR key IN (SELECT value FROM n WHERE key = 'b');
#   SELECT key FROM n;                              -- x'6162' is still there
# (the bitcask table deletes both; so does SQLite 3.53.2).  Such WHEREs are
# not generated for writes.

# TWO_PASS: statements not run.  For UPDATE of a virtual table SQLite
# computes every row's new values in a first pass, from the rows as they
# were before the statement, then hands them to the table row by row; a
# native table computes each row's from the row as it is when visited.  The
# two differ when UPDATE OR REPLACE changes a row's key to the old key of
# another row of the update set: that row is replaced first, and the native
# table then updates the replacement (`UPDATE OR REPLACE kv SET key = key +
# 1, value = value || '!'` over {1: 'a', 2: 'b'}: native {3: 'a!!'},
# bitcask {3: 'b!'}).  Such statements are detected on the native table
# before they run, counted, and left out (--two-pass runs them).

class Gen:
    """Random statement templates.  @T is the table; @K the key as the
    left side of LIKE/GLOB (kv: key, n: +key)."""

    def __init__(self, rnd, utf16=False):
        self.r = rnd
        self.utf16 = utf16 # a UTF-16 database: text keys visited in another order
        self.sp = []       # open savepoint names, innermost last
        self.in_txn = False
        self.nsp = 0

    def pick(self, xs):
        return self.r.choice(xs)

    def key(self):
        r = self.r.random()
        if r < 0.35:
            return self.pick(INT_KEYS)
        if r < 0.55:
            return self.pick(REAL_KEYS)
        if r < 0.85:
            return self.pick(TEXT_KEYS)
        if r < 0.98:
            return self.pick(BLOB_KEYS)
        return 'NULL'

    def value(self):
        return self.pick(VALUES) if self.r.random() < 0.85 else self.key()

    def conflict(self):
        return self.pick(['', '', '', ' OR IGNORE', ' OR REPLACE', ' OR ABORT', ' OR FAIL',
                          ' OR ROLLBACK'])

    def cond(self, depth=0, ctx='query'):
        """A WHERE condition.  ctx 'query': anything.  'write' (DELETE, an
        UPDATE of values): a subquery on the table only when not combined
        with other terms (a native DELETE whose MULTI-INDEX OR has a branch
        `key IN (SELECT ... FROM n ...)` evaluates that subquery after the
        other branch's deletions: SQLite 3.40.1 keeps rows that the WHERE
        selects, see NATIVE_DELETE_BUG above).  'keywrite' (an UPDATE of
        keys): no OR either (SQLite visits a MULTI-INDEX OR's rows branch by
        branch on a virtual table but in key order on a native one, and the
        order decides collisions)."""
        r = self.r.random()
        if depth > 0 and ctx != 'query' and 0.50 <= r < 0.54:
            r = 0.12  # no subquery here
        k = self.key
        if r < 0.14:
            return 'key = %s' % k()
        if r < 0.26:
            return 'key %s %s' % (self.pick(['<', '<=', '>', '>=']), k())
        if r < 0.34:
            return 'key BETWEEN %s AND %s' % (k(), k())
        if r < 0.40:
            return 'key > %s AND key < %s' % (k(), k())
        if r < 0.50:
            return 'key %sIN (%s)' % (self.pick(['', '', 'NOT ']),
                                      ', '.join(k() for _ in range(self.r.randint(1, 4))))
        if r < 0.54:
            return 'key IN (SELECT %s FROM @T WHERE %s)' % (self.pick(['key', 'value']),
                                                           self.simple_cond())
        if r < 0.64:
            return '@K %sLIKE %s' % (self.pick(['', '', 'NOT ']), self.pick(LIKE_PATS))
        if r < 0.71:
            return '@K %sGLOB %s' % (self.pick(['', '', 'NOT ']), self.pick(GLOB_PATS))
        if r < 0.75:
            return 'typeof(key) = %s' % self.pick(["'integer'", "'real'", "'text'", "'blob'"])
        if r < 0.79:
            return self.pick(['value IS NULL', 'value IS NOT NULL', 'length(value) > 3',
                              "typeof(value) = 'integer'", 'value = %s' % self.value()])
        if r < 0.82:
            return 'key IS %s' % k()
        if r < 0.84:
            return "key = %s COLLATE NOCASE" % self.pick(TEXT_KEYS)
        if r < 0.86:
            return '+key %s %s' % (self.pick(['=', '<', '>=']), k())
        if r < 0.88:
            return 'key IS NOT NULL'
        if depth < 2 and r < 0.96:
            op = 'AND' if ctx == 'keywrite' else self.pick(['AND', 'OR'])
            return '(%s) %s (%s)' % (self.cond(depth + 1, ctx), op, self.cond(depth + 1, ctx))
        if depth < 2:
            return 'NOT (%s)' % self.cond(depth + 1, ctx)
        return 'key = %s' % k()

    def simple_cond(self):
        return self.cond(2)  # for a subquery, which reads the same table

    def where(self, ctx='query'):
        return ' WHERE ' + self.cond(0, ctx) if self.r.random() < 0.9 else ''

    def distinct_keys(self, n, avoid):
        """Up to n key literals, not NULL, no two equal in SQLite's sense
        (1 = 1.0), none equal to one of avoid."""
        out = []
        for _ in range(50):
            if len(out) >= n:
                break
            k = self.key()
            if k == 'NULL':
                continue
            others = out + avoid
            if not others or not EQ.execute('SELECT (%s) IN (%s)' % (k, ', '.join(others))
                                            ).fetchone()[0]:
                out.append(k)
        return out

    def key_expr(self):
        return self.pick(['key + 1', 'key - 1', 'key + 1', 'key - 1', 'key * 2', '-key',
                          "key || ''", "key || 'x'", 'CAST(key AS TEXT)', 'CAST(key AS REAL)',
                          'CAST(key AS INTEGER)', 'CAST(key AS BLOB)', 'upper(key)',
                          'key + 0.5', 'NULL', self.key(), self.key(), 'value',
                          'coalesce(value, key)', 'key'])

    def value_expr(self):
        return self.pick(['value', "value || 'y'", 'key', 'NULL', 'length(value)', 'value + 1',
                          self.value(), self.value(), '-value', 'typeof(value)'])

    # One statement: dict(kind, sql, cmp)
    def statement(self):
        r = self.r.random()
        if r < 0.07:
            s = self.control()
            if s:
                return s
        if r < 0.085:
            return self.maintenance()
        if r < 0.47:
            return self.write()
        return self.query()

    def control(self):
        ops = []
        if not self.in_txn:
            ops += ['BEGIN', 'BEGIN IMMEDIATE', 'SAVEPOINT']
        else:
            ops += ['SAVEPOINT', 'COMMIT', 'ROLLBACK']
            if self.sp:
                ops += ['RELEASE', 'ROLLBACK TO', 'ROLLBACK TO', 'RELEASE']
        op = self.pick(ops)
        if op == 'SAVEPOINT':
            self.nsp += 1
            name = 's%d' % self.nsp
            return dict(kind='ctl', sql='SAVEPOINT %s' % name, op='SAVEPOINT', name=name)
        if op in ('RELEASE', 'ROLLBACK TO'):
            name = self.pick(self.sp)
            return dict(kind='ctl', sql='%s %s' % (op, name), op=op, name=name)
        return dict(kind='ctl', sql=op, op=op)

    def after_ctl(self, st, in_txn):
        op = st['op']
        if op == 'SAVEPOINT':
            self.sp.append(st['name'])
        elif op == 'RELEASE':
            self.sp = self.sp[:self.sp.index(st['name'])]
        elif op == 'ROLLBACK TO':
            self.sp = self.sp[:self.sp.index(st['name']) + 1]
        self.sync(in_txn)

    def sync(self, in_txn):
        self.in_txn = in_txn
        if not in_txn:
            self.sp = []

    def maintenance(self):
        if self.in_txn:
            return self.query()
        return dict(kind='maint', op=self.pick(['merge', 'reopen', 'reopen', 'merge']))

    def write(self):
        r = self.r.random()
        if r < 0.30:
            rows = ', '.join('(%s, %s)' % (self.key(), self.value())
                             for _ in range(self.r.choice([1, 1, 1, 2, 3, 4])))
            head = self.pick(['INSERT%s INTO' % self.conflict(), 'INSERT%s INTO' % self.conflict(),
                              'REPLACE INTO'])
            return dict(kind='write', op='insert', sql='%s @T VALUES %s' % (head, rows))
        if r < 0.38:
            # Always ordered: which of two source rows for one key wins (OR
            # REPLACE, OR IGNORE) or which is written before an OR FAIL
            # error depends on the order, which SQL leaves open otherwise
            # (a bitcask scan that does not use the key goes in storage order).
            lim = self.pick([' ORDER BY key', ' ORDER BY key DESC', ' ORDER BY key LIMIT 3',
                             ' ORDER BY key DESC LIMIT 2'])
            return dict(kind='write', op='insert-select',
                        sql='INSERT%s INTO @T SELECT %s, %s FROM @T%s%s'
                        % (self.conflict(), self.key_expr(), self.value_expr(), self.where(), lim))
        if r < 0.55:
            return dict(kind='write', op='update-value',
                        sql='UPDATE%s @T SET value = %s%s' % (self.conflict(), self.value_expr(),
                                                             self.where('write')))
        if r < 0.75:
            kx = self.key_expr()
            sets = 'key = %s' % kx
            if self.r.random() < 0.3:
                sets += ', value = %s' % self.value_expr()
            conflict, where = self.conflict(), self.where('keywrite')
            if self.utf16:
                # The table visits a key-changing UPDATE's rows in the keys'
                # UTF-8 order, SQLite's native table in the database's
                # encoding: where collisions make the outcome depend on the
                # order (README, "Query planning"), only non-text rows move.
                where = (where + ' AND' if where else ' WHERE') + " typeof(key) != 'text'"
            st = dict(kind='write', op='update-key',
                      sql='UPDATE%s @T SET %s%s' % (conflict, sets, where))
            if conflict == ' OR REPLACE':
                # Rows of the update set whose new key is another one's old
                # key (see TWO_PASS).
                st['twopass'] = ('SELECT count(*) FROM (SELECT key AS ok, %s AS nk FROM @T%s) a '
                                 'JOIN (SELECT key FROM @T%s) b ON a.nk = b.key AND a.ok != b.key'
                                 % (kx, where, where))
            return st
        if r < 0.80:
            # The order in which SQLite visits the rows of an UPDATE ... FROM
            # is the join's, which differs between a virtual and a native
            # table, and SQL leaves it open.  So the statement is made
            # order-independent: distinct keys k in s (SQLite uses one of
            # several matching rows, unpredictably), and for a key change
            # new keys x that are distinct, none equal to a k (a row's new
            # key never another updated row's old key) and none NULL (so
            # that every failing row fails the same way: which error is
            # reported would depend on the order), and no OR FAIL (which
            # keeps the rows done before the error).
            n = self.r.randint(1, 3)
            ks = self.distinct_keys(n, [])
            sets = self.pick(['key = s.x', 'value = s.x', 'key = s.x', 'key = s.x, value = @T.key',
                              'key = s.x, value = s.x'])
            if sets.startswith('key'):
                xs = self.distinct_keys(len(ks), ks)
                conflict = self.pick(['', ' OR ABORT', ' OR ROLLBACK', ' OR IGNORE', ' OR REPLACE'])
            else:
                xs = [self.value() for _ in ks]
                conflict = self.conflict()
            ks = ks[:len(xs)]
            pairs = ', '.join('(%s, %s)' % kx for kx in zip(ks, xs))
            return dict(kind='write', op='update-from',
                        sql='UPDATE%s @T SET %s FROM (SELECT column1 AS k, column2 AS x '
                            'FROM (VALUES %s)) AS s WHERE @T.key = s.k' % (conflict, sets, pairs))
        if r < 0.97:
            return dict(kind='write', op='delete', sql='DELETE FROM @T%s' % self.where('write'))
        return dict(kind='write', op='delete-all', sql='DELETE FROM @T')

    def order(self):
        return self.pick([' ORDER BY key', ' ORDER BY key DESC', ' ORDER BY key ASC',
                          ' ORDER BY typeof(key), key DESC', ' ORDER BY value, key',
                          ' ORDER BY length(value) DESC, key', ' ORDER BY key COLLATE NOCASE, key'])

    def limit(self):
        s = ' LIMIT %d' % self.r.choice([0, 1, 2, 3, 5, 10, -1])
        if self.r.random() < 0.5:
            s += ' OFFSET %d' % self.r.choice([0, 1, 2, 4, 100])
        return s

    def query(self):
        r = self.r.random()
        if r < 0.40:
            cols = self.pick(['key, value', 'key', 'value', 'key, typeof(key), value',
                              '*', 'quote(key)', 'key, length(value)'])
            sql = 'SELECT %s FROM @T%s' % (cols, self.where())
            x = self.r.random()
            if x < 0.6:
                sql += self.order()
                cmp = 'ordered'
                if self.r.random() < 0.5:
                    sql += self.limit()
            elif x < 0.75:
                sql += self.limit()
                cmp = 'count'
            else:
                cmp = 'multiset'
            return dict(kind='query', op='select', sql=sql, cmp=cmp)
        if r < 0.55:
            agg = self.pick(['count(*)', 'count(value)', 'min(key)', 'max(key)',
                             'count(*), min(key), max(key)', 'sum(length(key))',
                             'avg(length(value))', 'max(CAST(value AS TEXT))',
                             'count(DISTINCT typeof(key))', 'total(length(value))',
                             'sum(typeof(key) = \'real\')', 'max(key), count(*)'])
            return dict(kind='query', op='aggregate', sql='SELECT %s FROM @T%s' % (agg, self.where()),
                        cmp='ordered')
        if r < 0.63:
            return dict(kind='query', op='group',
                        sql='SELECT typeof(key), count(*), min(key) FROM @T%s GROUP BY 1'
                        % self.where(), cmp='multiset')
        if r < 0.70:
            return dict(kind='query', op='concat',
                        sql="SELECT group_concat(quote(key), ',') FROM (SELECT key FROM @T%s%s)"
                        % (self.where(), self.order()), cmp='ordered')
        if r < 0.76:
            return dict(kind='query', op='join',
                        sql='SELECT a.key, b.key FROM @T a JOIN @T b ON b.key = %s%s'
                        % (self.pick(['a.value', 'a.key', 'a.key + 1', "a.key || ''"]),
                           self.pick(['', ' WHERE a.key > %s' % self.key()])), cmp='multiset')
        if r < 0.80:
            return dict(kind='query', op='exists',
                        sql='SELECT EXISTS (SELECT 1 FROM @T%s), (SELECT count(*) FROM @T%s)'
                        % (self.where(), self.where()), cmp='ordered')
        if r < 0.86:
            return dict(kind='query', op='point',
                        sql='SELECT key, value FROM @T WHERE key = %s' % self.key(), cmp='ordered')
        if r < 0.90:
            return dict(kind='query', op='distinct',
                        sql='SELECT DISTINCT typeof(value) FROM @T%s' % self.where(), cmp='multiset')
        if r < 0.95:
            return dict(kind='query', op='minmax-bound',
                        sql='SELECT %s(key) FROM @T WHERE key %s %s'
                        % (self.pick(['min', 'max']), self.pick(['<', '>', '<=', '>=']), self.key()),
                        cmp='ordered')
        return dict(kind='query', op='page',
                    sql='SELECT key FROM @T%s ORDER BY key%s LIMIT %d OFFSET %d'
                    % (self.where(), self.pick(['', ' DESC']), self.r.randint(1, 6),
                       self.r.randint(0, 8)), cmp='ordered')


# ------------------------------------------------------------------ running
def render(sql, table):
    return sql.replace('@K', 'key' if table == 'kv' else '+key').replace('@T', table)


def native_as_written(sql):
    return sql.replace('@K', 'key').replace('@T', 'n')


def text_factory(b):
    return ('T', b)


def norm_value(v):
    if isinstance(v, tuple):
        return 'text:' + v[1].hex()
    if isinstance(v, bytes):
        return 'blob:' + v.hex()
    if isinstance(v, float):
        return 'real:' + repr(v)
    if isinstance(v, int):
        return 'int:%d' % v
    return 'null'


def show_value(v):
    if isinstance(v, tuple):
        try:
            s = repr(v[1].decode('utf-8'))
        except UnicodeDecodeError:
            s = 'text(x%r)' % v[1].hex()
    else:
        s = repr(v)
    return s if len(s) <= 40 else '%s...(%d bytes)' % (s[:24], len(v[1] if isinstance(v, tuple) else v))


def literal(v, enc):
    """A SQL literal for a value read back (for the reproduction's setup)."""
    if v is None:
        return 'NULL'
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isinf(v):
            return '9e999' if v > 0 else '-9e999'
        if v == 0 and math.copysign(1, v) < 0:
            return '-0.0'
        r = repr(v)
        return r if ('.' in r or 'e' in r) else r + '.0'
    if isinstance(v, bytes):
        return "x'%s'" % v.hex()
    s = v[1].decode('utf-8', 'surrogateescape')
    if all(32 <= ord(c) < 127 for c in s):
        return "'" + s.replace("'", "''") + "'"
    return "char(%s)" % ', '.join(str(ord(c)) for c in s) if s else "''"


class Outcome:
    def __init__(self, rows=None, err=None):
        self.rows = rows
        self.err = err

    def key(self, cmp):
        if self.err:
            return ('error',) + self.err
        rows = [tuple(norm_value(v) for v in r) for r in self.rows]
        if cmp == 'count':
            return ('rows', len(rows))
        if cmp == 'multiset':
            return ('rows', tuple(sorted(rows)))
        return ('rows', tuple(rows))

    def show(self):
        if self.err:
            return 'error %d %s: %s' % self.err
        rows = ['|'.join(show_value(v) for v in r) for r in self.rows[:12]]
        more = ' ... (%d rows)' % len(self.rows) if len(self.rows) > 12 else ''
        return '[' + ', '.join(rows) + ']' + more


def errname(e):
    return getattr(e, 'sqlite_errorname', type(e).__name__)


class Runner:
    def __init__(self, ext, d, enc, trace=False):
        self.ext = ext
        self.d = d
        self.enc = enc
        self.db = os.path.join(d, 'diff.db')
        self.trace = trace
        self.con = None
        self.open(create=True)

    def open(self, create=False):
        self.con = sqlite3.connect(self.db, isolation_level=None)
        self.con.text_factory = text_factory
        self.con.enable_load_extension(True)
        self.con.load_extension(self.ext)
        self.con.enable_load_extension(False)
        if create:
            self.con.execute("PRAGMA encoding = '%s'" % self.enc)
            self.con.execute("CREATE VIRTUAL TABLE kv USING bitcask(max_file_size='4KB', sync=off)")
            self.con.execute('CREATE TABLE n(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID')

    def reopen(self):
        self.con.close()
        self.open()

    def close(self):
        self.con.close()

    def run(self, sql):
        if self.trace:
            print('  > ' + sql)
        try:
            rows = self.con.execute(sql).fetchall()
            return Outcome(rows=rows)
        except sqlite3.Error as e:
            code = getattr(e, 'sqlite_errorcode', -1)
            msg = str(e).replace('kv.', 'T.').replace('n.', 'T.').replace('"kv"', '"T"') \
                .replace('"n"', '"T"').replace("'kv'", "'T'")
            return Outcome(err=(code, errname(e), msg))

    def state(self, table):
        return Outcome(rows=self.con.execute(
            'SELECT key, value FROM %s ORDER BY key' % table).fetchall() +
            self.con.execute('SELECT count(*) FROM %s' % table).fetchall())

    @property
    def in_txn(self):
        return self.con.in_transaction


class Mismatch(Exception):
    pass


class Session:
    """Runs statements on kv and n, compares, records mismatches."""

    def __init__(self, runner):
        self.R = runner
        self.two_pass = RUN_TWO_PASS
        self.skipped = 0        # TWO_PASS statements left out
        self.txn_log = []       # n-side statements since the transaction began
        self.mismatches = []    # (signature, detail)
        self.anomalies = 0
        self.checks = 0

    def record(self, sig, detail):
        self.mismatches.append((sig, detail))

    def execute(self, st):
        R = self.R
        kind = st['kind']
        if kind == 'ctl':
            was = R.in_txn
            out = R.run(st['sql'])
            if not was and R.in_txn:
                self.txn_log = []
            if R.in_txn:
                self.txn_log.append(st['sql'])
            return out, R.in_txn
        if kind == 'maint':
            if st['op'] == 'merge':
                out = R.run("SELECT bitcask_merge('kv')")
                if out.err:
                    self.record(('maint', 'merge', out.err[:2]), 'bitcask_merge failed: ' + out.show())
            else:
                R.reopen()
            self.compare_state(st)
            return None, R.in_txn
        if 'twopass' in st and not self.two_pass:
            c = R.run(render(st['twopass'], 'n'))
            if c.err or c.rows[0][0]:
                self.skipped += 1
                return None, R.in_txn
        sql_kv = render(st['sql'], 'kv')
        sql_n = render(st['sql'], 'n')
        was = R.in_txn
        a = R.run(sql_kv)
        rolled_back = was and not R.in_txn
        if rolled_back:
            # kv's statement ended the transaction (OR ROLLBACK): n's
            # statement must be judged in the transaction's state, so replay
            # that on n alone, run it, and roll back.
            R.run('BEGIN')
            for s in self.txn_log:
                if s != 'BEGIN' and not s.startswith('BEGIN '):
                    R.run(s)
            b = R.run(sql_n)
            if R.in_txn:
                R.run('ROLLBACK')
        else:
            b = R.run(sql_n)
            if was and not R.in_txn:
                # n's statement ended it (and kv's did not).
                rolled_back = True
            elif R.in_txn:
                self.txn_log.append(sql_n)
        cmp = st.get('cmp', 'ordered')
        self.checks += 1
        if a.key(cmp) != b.key(cmp):
            if a.err or b.err:
                sig = (kind, st['op'], 'error', a.err[0] if a.err else None,
                       b.err[0] if b.err else None)
            else:
                sig = (kind, st['op'], 'rows')
            self.record(sig, 'kv: %s\n      n:  %s' % (a.show(), b.show()))
        elif kind == 'query' and '@K' in st['sql'] and not b.err:
            c = R.run(native_as_written(st['sql']))
            if c.key(cmp) != b.key(cmp):
                self.anomalies += 1
        if kind == 'write' or rolled_back:
            self.compare_state(st)
        return a, R.in_txn

    def compare_state(self, st):
        R = self.R
        a = R.state('kv')
        b = R.state('n')
        self.checks += 1
        # As sets: the order of the rows is the queries' business (ORDER BY
        # key is compared there).
        if a.key('multiset') != b.key('multiset'):
            self.record((st['kind'], st.get('op', ''), 'state'),
                        'kv: %s\n      n:  %s' % (a.show(), b.show()))
            # Carry on from the native state; where kv cannot hold it (a
            # value it stores differently), from what kv holds then.
            R.run('DELETE FROM kv')
            r = R.run('INSERT INTO kv SELECT key, value FROM n')
            if not r.err and R.state('kv').key('multiset') != R.state('n').key('multiset'):
                R.run('DELETE FROM n')
                r = R.run('INSERT INTO n SELECT key, value FROM kv')
            if r.err or R.state('kv').key('multiset') != R.state('n').key('multiset'):
                raise Mismatch('the two tables could not be brought to one state: ' + r.show())


# ------------------------------------------------------------------ shrinking
def replay(ext, enc, setup, stmts, sig):
    """Run setup rows + stmts on a fresh database; True when the last
    statement gives a mismatch with signature sig."""
    d = tempfile.mkdtemp(prefix='diff-repro.')
    try:
        R = Runner(ext, d, enc)
        S = Session(R)
        for pair in setup:
            for sql in pair:
                R.run(sql)
        g = Gen(random.Random(0))
        for i, st in enumerate(stmts):
            before = len(S.mismatches)
            try:
                _, in_txn = S.execute(st)
            except Mismatch:
                return False
            if st['kind'] == 'ctl':
                try:
                    g.after_ctl(st, in_txn)
                except ValueError:
                    pass
            if len(S.mismatches) > before and i == len(stmts) - 1:
                return any(s == sig for s, _ in S.mismatches[before:])
        return False
    finally:
        try:
            R.close()
        except Exception:
            pass
        shutil.rmtree(d, ignore_errors=True)


def shrink(ext, enc, setup, stmts, sig, deadline):
    """Delta debugging of setup rows and the statements before the last."""
    if not replay(ext, enc, setup, stmts, sig):
        return None
    last = stmts[-1]
    body = stmts[:-1]

    def reduce(items, test):
        n = 2
        while len(items) >= 1 and time.time() < deadline:
            chunk = max(1, len(items) // n)
            removed = False
            for i in range(0, len(items), chunk):
                if time.time() >= deadline:
                    break
                cand = items[:i] + items[i + chunk:]
                if test(cand):
                    items = cand
                    n = max(n - 1, 2)
                    removed = True
                    break
            if not removed:
                if chunk == 1:
                    break
                n = min(len(items), n * 2)
        return items

    body = reduce(body, lambda b: replay(ext, enc, setup, b + [last], sig))
    setup = reduce(setup, lambda s: replay(ext, enc, s, body + [last], sig))
    return setup, body + [last]


def repro_script(setup, stmts, enc):
    lines = ['.load ./build/bitcask']
    if enc != 'UTF-8':
        lines.append("PRAGMA encoding = '%s';" % enc)
    lines += ["CREATE VIRTUAL TABLE kv USING bitcask(max_file_size='4KB', sync=off);",
              'CREATE TABLE n(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID;']
    lines += [s + ';' for pair in setup for s in pair]
    for st in stmts:
        if st['kind'] == 'ctl':
            lines.append(st['sql'] + ';')
        elif st['kind'] == 'maint':
            lines.append("SELECT bitcask_merge('kv');" if st['op'] == 'merge'
                         else '-- (reopen the database here)')
        else:
            lines.append(render(st['sql'], 'kv') + ';')
            lines.append(render(st['sql'], 'n') + ';')
    if stmts and stmts[-1]['kind'] in ('write', 'maint'):
        lines.append('SELECT key, value FROM kv ORDER BY key;')
        lines.append('SELECT key, value FROM n ORDER BY key;')
    return '\n'.join(lines)


# ------------------------------------------------------------------ main
def run(ext, enc, seconds, statements, seed, trace):
    """One random run on a fresh database; the statements and mismatches."""
    rnd = random.Random(seed)
    print('diff_native: seed %d, encoding %s, %s' % (
        seed, enc, '%d statements' % statements if statements else '%g s' % seconds), flush=True)
    d = tempfile.mkdtemp(prefix='diff-native.')
    R = Runner(ext, d, enc, trace)
    S = Session(R)
    g = Gen(rnd, utf16=enc != 'UTF-8')
    history = []          # statements since the last checkpoint
    checkpoint = []       # setup: the rows at the last checkpoint, as INSERT pairs
    res = dict(enc=enc, seed=seed, first={}, count={}, nstmt=0)
    start = time.time()
    try:
        while True:
            if statements and res['nstmt'] >= statements:
                break
            if not statements and time.time() - start >= seconds:
                break
            if not g.in_txn and len(history) >= 40:
                rows = R.con.execute('SELECT key, value FROM n').fetchall()
                checkpoint = [['INSERT INTO %s VALUES (%s, %s)' % (t, literal(k, enc),
                                                                   literal(v, enc))
                               for t in ('kv', 'n')] for k, v in rows]
                history = []
            st = g.statement()
            history.append(st)
            before = len(S.mismatches)
            try:
                _, in_txn = S.execute(st)
            finally:
                res['nstmt'] += 1
                for sig, detail in S.mismatches[before:]:
                    res['count'][sig] = res['count'].get(sig, 0) + 1
                    if sig not in res['first']:
                        res['first'][sig] = (list(checkpoint), list(history), detail)
            if st['kind'] == 'ctl':
                g.after_ctl(st, in_txn)
            else:
                g.sync(in_txn)
    except Mismatch as e:
        print('diff_native: stopped: %s' % e)
        S.mismatches.append((('abort',), str(e)))
    finally:
        R.close()
        shutil.rmtree(d, ignore_errors=True)
    res.update(elapsed=time.time() - start, nmis=len(S.mismatches), checks=S.checks,
               anomalies=S.anomalies, skipped=S.skipped)
    return res


def report(ext, res, deadline):
    enc = res['enc']
    for sig in sorted(res['count'], key=lambda s: -res['count'][s]):
        setup, stmts, detail = res['first'][sig]
        print('\ndiff_native: MISMATCH (%s) %s: %d times'
              % (enc, ' '.join(str(x) for x in sig), res['count'][sig]))
        last = stmts[-1]
        if last['kind'] in ('write', 'query'):
            print('  statement: ' + render(last['sql'], 'kv'))
        else:
            print('  after: %s' % (last.get('sql') or last.get('op')))
        print('      ' + detail)
        red = shrink(ext, enc, setup, stmts, sig, deadline) if time.time() < deadline else None
        if red:
            print('  reproduction (sqlite3 shell, %d statements):' % len(red[1]))
            print('    ' + repro_script(red[0], red[1], enc).replace('\n', '\n    '))
        else:
            print('  (not shrunk: %s)' % ('no time left' if time.time() >= deadline
                                           else 'did not reproduce from the checkpoint'))
    print('diff_native: %s: seed %d, %.1f s, %d statements, %d checks, %d mismatches in %d classes, '
          '%d native LIKE/GLOB plan anomalies, %d two-pass UPDATE OR REPLACE statements left out'
          % (enc, res['seed'], res['elapsed'], res['nstmt'], res['checks'], res['nmis'],
             len(res['count']), res['anomalies'], res['skipped']), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('ext')
    ap.add_argument('--seconds', type=float, default=10,
                    help='total running time, shared by the encodings')
    ap.add_argument('--statements', type=int, default=0,
                    help='N statements per encoding instead of a time')
    ap.add_argument('--seed', type=int, default=None)
    ap.add_argument('--encoding', default='UTF-8',
                    help='UTF-8, UTF-16le or UTF-16be, or several separated by commas, '
                         'each with an optional :weight, its share of --seconds')
    ap.add_argument('--repro-seconds', type=float, default=30,
                    help='total time for shrinking reproductions')
    ap.add_argument('--two-pass', action='store_true',
                    help='also run the UPDATE OR REPLACE statements TWO_PASS describes')
    ap.add_argument('--trace', action='store_true')
    a = ap.parse_args()
    global RUN_TWO_PASS
    RUN_TWO_PASS = a.two_pass
    ext = os.path.abspath(a.ext)
    encs = []
    for part in a.encoding.split(','):
        e, _, w = part.partition(':')
        if e not in ('UTF-8', 'UTF-16le', 'UTF-16be'):
            ap.error('unknown encoding %r' % e)
        try:
            encs.append((e, float(w) if w else 1.0))
        except ValueError:
            ap.error('bad weight in %r' % part)
    total = sum(w for _, w in encs)
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), 'little')
    results = [run(ext, e, a.seconds * w / total, a.statements, seed + i, a.trace)
               for i, (e, w) in enumerate(encs)]
    deadline = time.time() + a.repro_seconds
    for res in results:
        report(ext, res, deadline)
    nstmt = sum(r['nstmt'] for r in results)
    nmis = sum(r['nmis'] for r in results)
    print('%d statements, %d mismatches' % (nstmt, nmis))
    sys.exit(1 if nmis else 0)


main()
