#!/usr/bin/python3
# Issue 13, "Consistent reads: one statement sees one committed state, in
# every connection and every reader process" -- the deterministic cases,
# through SQL as a user writes it.  A user function in the statement makes
# another connection (case 1, 3) or another process (case 2) commit while the
# statement runs, at a point of our choosing; the statement must answer as if
# nothing had been committed after it began, and the next statement must see
# everything.
#   1. a row with a value nobody wrote (NULL, or the other connection's new
#      value), in every plan: key order asc/desc, bounds, LIKE, LIMIT, =, IN,
#      storage order;
#   2. two states in one statement in a reader process (readonly=1);
#   3. two states in one statement in one process (sums, counts, a pair
#      invariant across a join);
#   5. an explicit read transaction (observed and printed, not asserted: the
#      virtual table cannot see read transactions) and a statement left
#      pending while its connection writes (it reads its own writes).
# Case 4, the randomised test, is snapshot_stress.py.
# usage: /usr/bin/python3 test/snapshot/consistent_reads.py build/bitcask
import os, shutil, sqlite3, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from snaplib import check, finish, connect, tmpdir, Peer  # noqa: E402

T = tmpdir('snap')
N = 0  # databases made so far


def fresh(rows, opts=''):
    """A new WAL database with kv holding rows; two connections A and B."""
    global N
    N += 1
    db = os.path.join(T, 'c%d.db' % N)
    a = connect(db)
    a.execute('PRAGMA journal_mode=WAL')
    a.execute('CREATE VIRTUAL TABLE kv USING bitcask%s' % (('(%s)' % opts) if opts else ''))
    a.execute('BEGIN')
    a.executemany('INSERT INTO kv VALUES (?, ?)', rows)
    a.execute('COMMIT')
    return db, a, connect(db)


def plan(con, sql):
    return ' '.join(r[3] for r in con.execute('EXPLAIN QUERY PLAN ' + sql))


def table(con):
    return dict(con.execute('SELECT key, value FROM kv'))


class Once:
    """A user function that runs action() at its first call (or at the call
    whose argument is `at`) and returns 0 every time."""

    def __init__(self, action, at=None):
        self.action, self.at, self.calls, self.fired = action, at, 0, 0

    def __call__(self, *args):
        self.calls += 1
        if not self.fired and (self.at is None or (args and args[0] == self.at)):
            self.fired = 1
            self.action(*args)
        return 0


# ---- 1. A row with a value nobody wrote --------------------------------------------------
KEYS = ['k%02d' % i for i in range(12)]
ORIG = {k: 'v%02d-%s' % (i, 'x' * 40) for i, k in enumerate(KEYS)}

# (name, SQL with f(key) before value, the keys it must return in order, a word of its plan)
ORDERED = [
    ('asc', 'SELECT key, f(key), value FROM kv ORDER BY key', KEYS, 'in key order'),
    ('desc', 'SELECT key, f(key), value FROM kv ORDER BY key DESC', KEYS[::-1],
     'in descending key order'),
    ('no ORDER BY', 'SELECT key, f(key), value FROM kv', KEYS, 'scan in key order'),
    ('BETWEEN', "SELECT key, f(key), value FROM kv WHERE key BETWEEN 'k03' AND 'k08'",
     KEYS[3:9], 'key>=? AND key<=?'),
    ('bounds desc', "SELECT key, f(key), value FROM kv WHERE key > 'k02' AND key <= 'k09' "
     "ORDER BY key DESC", KEYS[3:10][::-1], 'in descending key order'),
    ('LIKE', "SELECT key, f(key), value FROM kv WHERE key LIKE 'K0%'", KEYS[:10], 'LIKE'),
    ('GLOB', "SELECT key, f(key), value FROM kv WHERE key GLOB 'k1*'", KEYS[10:], 'GLOB'),
    ('LIMIT OFFSET', 'SELECT key, f(key), value FROM kv ORDER BY key LIMIT 4 OFFSET 3',
     KEYS[3:7], 'LIMIT'),
    ('=', "SELECT key, f(key), value FROM kv WHERE key = 'k05'", ['k05'], 'key=?'),
    ('IN', "SELECT key, f(key), value FROM kv WHERE key IN ('k01', 'k05', 'k10')",
     ['k01', 'k05', 'k10'], 'IN'),
]


def case1_current_key():
    """f(key) changes the row's own key through B before A reads its value."""
    for mode, sql_b in [('delete', 'DELETE FROM kv WHERE key = ?'),
                        ('update', "UPDATE kv SET value = 'B wrote ' || key WHERE key = ?")]:
        for name, sql, keys, word in ORDERED:
            db, a, b = fresh(list(ORIG.items()))
            a.create_function('f', 1, lambda k: b.execute(sql_b, (k,)) and 0)
            p = plan(a, sql)
            check('1 %s: plan %r has %r' % (name, p, word), word in p)
            try:
                got = a.execute(sql).fetchall()
            except Exception as e:
                got = 'error %s' % e
            want = [(k, 0, ORIG[k]) for k in keys]
            check('1 %s the current key through B, %s: every row has the value it had when '
                  'the statement began' % (mode, name), got == want,
                  '%s\n  got  %r\n  want %r' % (sql, got, want))
            after = table(a)
            if mode == 'delete':
                check('1 %s, %s: the next statement sees the deletes' % (mode, name),
                      sorted(after) == sorted(set(KEYS) - set(keys)), sorted(after))
            else:
                check('1 %s, %s: the next statement sees the updates' % (mode, name),
                      all(after[k] == 'B wrote ' + k for k in keys), after)
            a.close(), b.close()


def case1_ahead():
    """At the first row, B deletes every other key, updates, and inserts keys
    the scan has not reached: A still returns exactly the state it started on."""
    def change(b, keep=None):
        b.execute('DELETE FROM kv WHERE key <> ? AND key < ?', (keep, 'k06'))
        b.execute("UPDATE kv SET value = 'B wrote' WHERE key <> ?", (keep,))
        b.execute("INSERT INTO kv VALUES ('k05a', 'B inserted'), ('k99', 'B inserted'), "
                  "('a', 'B inserted')")

    for name, sql, keys, word in ORDERED:
        db, a, b = fresh(list(ORIG.items()))
        a.create_function('f', 1, Once(lambda k: change(b, k)))
        try:
            got = a.execute(sql).fetchall()
        except Exception as e:
            got = 'error %s' % e
        want = [(k, 0, ORIG[k]) for k in keys]
        check('1 ahead of the scan (deletes, updates, inserts through B at the first row), %s: '
              'the rows of the starting state, nothing else' % name, got == want,
              '%s\n  got  %r\n  want %r' % (sql, got, want))
        check('1 ahead, %s: the next statement sees B\'s inserts' % name,
              table(a).get('k99') == 'B inserted')
        a.close(), b.close()


def case1_storage_order():
    """The plan that reads in storage order (the key not used)."""
    queries = [
        ('SELECT value, g() FROM kv', None),
        ("SELECT value, g() FROM kv WHERE value LIKE 'v%'", None),
        ('SELECT length(value), g(), value FROM kv', None),
        ('SELECT count(value), g(), group_concat(value) FROM kv', 'agg'),
    ]
    for sql, kind in queries:
        for mode in ('update all', 'delete all', 'delete, insert'):
            db, a, b = fresh(list(ORIG.items()))

            def act(b=b, mode=mode):
                if mode == 'update all':
                    b.execute("UPDATE kv SET value = 'v-B wrote'")
                elif mode == 'delete all':
                    b.execute('DELETE FROM kv')
                else:
                    b.execute("DELETE FROM kv WHERE key > 'k03'")
                    b.execute("INSERT INTO kv VALUES ('k77', 'v-B inserted'), ('z', 'v-B')")
            a.create_function('g', 0, Once(act))
            p = plan(a, sql)
            check('1 storage order: plan of %r is %r' % (sql, p), 'storage order' in p)
            try:
                rows = a.execute(sql).fetchall()
            except Exception as e:
                rows = [('error %s' % e,)]
            if kind == 'agg':
                got = (rows[0][0], sorted((rows[0][2] or '').split(',')))
                want = (len(KEYS), sorted(ORIG.values()))
            else:
                got = sorted(r[-1] if 'length' in sql else r[0] for r in rows)
                want = sorted(ORIG.values())
            check('1 storage order, B does "%s" at the first row: %s returns the values of the '
                  'starting state' % (mode, sql), got == want, 'got  %r\n  want %r' % (got, want))
            a.close(), b.close()


def case1_merge():
    """At the first row B rewrites every value and merges: the files holding the values
    the statement reads are merged away (unlinked) while it runs.  Twice: files written
    by small transactions, and a file that was read while it was the active one and
    then grew past max_file_size in one transaction (its last records lie past the
    4KB the writer mapped it at)."""
    rows = [('k%03d' % i, 'v%03d-%s' % (i, 'x' * 60)) for i in range(100)]
    for layout in ('small transactions', 'one transaction past max_file_size'):
        for sql in ['SELECT key, f(key), value FROM kv ORDER BY key',
                    'SELECT key, f(key), value FROM kv ORDER BY key DESC',
                    'SELECT value, f(0) FROM kv']:
            global N
            N += 1
            db = os.path.join(T, 'c%d.db' % N)
            a = connect(db)
            a.execute('PRAGMA journal_mode=WAL')
            a.execute("CREATE VIRTUAL TABLE kv USING bitcask(max_file_size='4KB')")
            if layout == 'small transactions':
                for i in range(0, len(rows), 10):
                    a.execute('BEGIN')
                    a.executemany('INSERT INTO kv VALUES (?, ?)', rows[i:i + 10])
                    a.execute('COMMIT')
            else:
                a.execute("INSERT INTO kv VALUES ('a', 'first')")
                a.execute("SELECT value FROM kv WHERE key = 'a'").fetchall()
                a.execute('BEGIN')
                a.executemany('INSERT INTO kv VALUES (?, ?)', rows)
                a.execute('COMMIT')
                a.execute("DELETE FROM kv WHERE key = 'a'")
            b = connect(db)

            def rewrite(*_):
                b.execute("UPDATE kv SET value = 'B wrote'")
                b.execute("SELECT bitcask_merge('kv')").fetchall()
            a.create_function('f', 1, Once(rewrite))
            try:
                got = a.execute(sql).fetchall()
                got = sorted(r[-1] for r in got) if sql.startswith('SELECT key') else sorted(r[0] for r in got)
            except Exception as e:
                got = 'error %s' % e
            check('1 merge at the first row (%s): %s returns the values of the starting state'
                  % (layout, sql), got == sorted(v for _, v in rows),
                  got if isinstance(got, str) else [v for v in got if not v.startswith('v')][:3])
            got = a.execute("SELECT count(*), sum(value = 'B wrote') FROM kv").fetchone()
            check('1 merge (%s): the next statement sees B\'s values' % layout, got == (100, 100), got)
            a.close(), b.close()


# ---- 2. Two states in one statement, in a reader process ---------------------------------
def case2_reader_process():
    d = os.path.join(T, 'proc')
    os.mkdir(d)
    store = os.path.join(d, 'store')
    others = [('o%03d' % i, 'pad-%03d-%s' % (i, 'y' * 100)) for i in range(200)]
    w = Peer(os.path.join(d, 'writer.db'),
             "CREATE VIRTUAL TABLE kv USING bitcask(dir='store', max_file_size='4KB')",
             'BEGIN', "INSERT INTO kv VALUES ('a', 1), ('b', 1)",
             'INSERT INTO kv SELECT column1, column2 FROM (VALUES %s)'
             % ', '.join("('%s', '%s')" % kv for kv in others), 'COMMIT')
    r = connect(os.path.join(d, 'reader.db'))
    r.execute("CREATE VIRTUAL TABLE kv USING bitcask(dir='%s', readonly=1)" % store)
    files0 = len([f for f in os.listdir(store) if f.endswith('.data')])
    check('2 setup: the writer rotated its files (several data files)', files0 > 3, files0)

    def ab():
        return r.execute("SELECT (SELECT value FROM kv WHERE key = 'a'), "
                         "(SELECT value FROM kv WHERE key = 'b')").fetchone()

    check('2 the reader sees a=1, b=1', ab() == (1, 1), ab())

    # The statement: the writer commits a=2, b=2 in one transaction between the
    # two subqueries.
    n = [1]

    def both():
        n[0] += 1
        w.run('BEGIN', 'UPDATE kv SET value = %d WHERE key = \'a\'' % n[0],
              'UPDATE kv SET value = %d WHERE key = \'b\'' % n[0], 'COMMIT')
        return 0
    r.create_function('f', 0, both)
    sql = "SELECT (SELECT value FROM kv WHERE key = 'a'), f(), (SELECT value FROM kv WHERE key = 'b')"
    got = r.execute(sql).fetchone()
    check('2 %s, the writer committing a=2,b=2 in f(): one state, (1, 0, 1)' % sql,
          got == (1, 0, 1), got)
    check('2 the next statement sees (2, 2)', ab() == (2, 2), ab())

    # The same with the subqueries' cursors opened in the other order.
    sql2 = "SELECT (SELECT value FROM kv WHERE key = 'b'), f(), (SELECT value FROM kv WHERE key = 'a')"
    got = r.execute(sql2).fetchone()
    check('2 %s: (2, 0, 2)' % sql2, got == (2, 0, 2), got)
    check('2 then (3, 3)', ab() == (3, 3), ab())

    # A correlated subquery: a second cursor of the table filtered once per outer row.
    r.create_function('g', 1, Once(lambda k: both(), at='a'))
    sql3 = ("SELECT o.key, g(o.key), (SELECT value FROM kv AS i WHERE i.key = o.key) FROM kv AS o "
            "WHERE o.key IN ('a', 'b') ORDER BY o.key")
    got = r.execute(sql3).fetchall()
    check('2 correlated subquery, the writer commits at the first outer row: one state',
          got == [('a', 0, 3), ('b', 0, 3)], got)
    check('2 then (4, 4)', ab() == (4, 4), ab())

    # Sums over two cursors of one statement, a transfer committed between them.
    def transfer():
        w.run('BEGIN', "UPDATE kv SET value = value - 3 WHERE key = 'a'",
              "UPDATE kv SET value = value + 3 WHERE key = 'o150'", 'COMMIT')
        return 0
    w.run("UPDATE kv SET value = 100 WHERE key LIKE 'o%'")
    total = 4 + 4 + 100 * len(others)
    r.create_function('t', 0, transfer)
    sql4 = ("SELECT (SELECT sum(value) FROM kv WHERE key < 'm') + t() + "
            "(SELECT sum(value) FROM kv WHERE key >= 'm')")
    got = r.execute(sql4).fetchone()[0]
    check('2 two range sums around a transfer committed by the writer: the total', got == total,
          (got, total))
    got = r.execute(sql4.replace('t()', '0')).fetchone()[0]
    check('2 the next statement: the total too', got == total, (got, total))
    got = r.execute("SELECT value FROM kv WHERE key = 'o150'").fetchone()[0]
    check('2 and the transfer is seen', got == 103, got)

    # A scan during which the writer rewrites every value, rotates and merges: the reader's
    # statement keeps reading the state it began on (its files stay readable) ...
    gen = [0]

    def rewrite():
        gen[0] += 1
        w.run('BEGIN', "UPDATE kv SET value = 'w%d:' || key" % gen[0], 'COMMIT')
        w.run("SELECT bitcask_merge('kv')")
        w.run("INSERT INTO kv VALUES ('o100a', 'new after the merge')")
        return 0
    for sql5 in ['SELECT key, h(key), value FROM kv ORDER BY key',
                 'SELECT key, h(key), value FROM kv ORDER BY key DESC',
                 "SELECT key, h(key), value FROM kv WHERE key BETWEEN 'b' AND 'o150'",
                 'SELECT h(0), h(0), value FROM kv']:
        if gen[0]:
            w.run("DELETE FROM kv WHERE key = 'o100a'")
        before = dict(r.execute('SELECT key, value FROM kv'))
        r.create_function('h', 1, Once(lambda k: rewrite()))
        try:
            if sql5.startswith('SELECT key'):
                got = {k: v for k, _, v in r.execute(sql5)}
                want = {k: v for k, v in before.items() if 'BETWEEN' not in sql5 or 'b' <= k <= 'o150'}
            else:
                got = sorted(v for _, _, v in r.execute(sql5))
                want = sorted(before.values())
        except Exception as e:
            got, want = 'error %s' % e, None
        check('2 %s, the writer rewrites every value and merges at the first row: the '
              'starting state' % sql5, got == want,
              got if isinstance(got, (str, list)) else sorted(set(got.items()) ^ set(want.items()))[:6])
        now = dict(r.execute('SELECT key, value FROM kv'))
        check('2 ... and the next statement sees the rewrite and the merge',
              now.get('o100a') == 'new after the merge' and now.get('o000') == 'w%d:o000' % gen[0]
              and len(now) == len(before) + 1, len(now))
    r.close()
    w.close()


# ---- 3. Two states in one statement, in one process --------------------------------------
def case3_one_process():
    accts = [('acct%02d' % i, 100) for i in range(20)]
    total = 100 * len(accts)

    db, a, b = fresh(accts + [('a', 1), ('b', 1)])

    def move(src, dst, amount):
        b.execute('BEGIN')
        b.execute('UPDATE kv SET value = value - ? WHERE key = ?', (amount, src))
        b.execute('UPDATE kv SET value = value + ? WHERE key = ?', (amount, dst))
        b.execute('COMMIT')

    a.create_function('t', 0, Once(lambda: move('a', 'b', 1)))
    sql = "SELECT (SELECT value FROM kv WHERE key = 'a'), t(), (SELECT value FROM kv WHERE key = 'b')"
    got = a.execute(sql).fetchone()
    check('3 %s, B moving 1 from a to b in t(): (1, 0, 1)' % sql, got == (1, 0, 1), got)
    got = a.execute("SELECT (SELECT value FROM kv WHERE key = 'a'), "
                    "(SELECT value FROM kv WHERE key = 'b')").fetchone()
    check('3 the next statement: (0, 2)', got == (0, 2), got)
    a.execute("DELETE FROM kv WHERE key IN ('a', 'b')")

    # sum() in storage order: at the first row B moves 1 from every account but acct07 to
    # acct07, whichever the scan visited first the sum changes unless the statement keeps
    # one state.
    def spread():
        b.execute('BEGIN')
        b.execute("UPDATE kv SET value = value - 1 WHERE key <> 'acct07'")
        b.execute("UPDATE kv SET value = value + ? WHERE key = 'acct07'", (len(accts) - 1,))
        b.execute('COMMIT')
    for sql in ['SELECT sum(value + t()) FROM kv', 'SELECT sum(value + t(key)) FROM kv',
                'SELECT sum(value + t(key)) FROM kv WHERE key >= \'acct\' ORDER BY key DESC',
                'SELECT total(value) + sum(t()) FROM kv']:
        once = Once(lambda *x: spread())
        a.create_function('t', 0, once)  # t() was registered above: replace it
        a.create_function('t', 1, once)
        got = a.execute(sql).fetchone()[0]
        check('3 %s (%s), B transferring at the first row: the total' % (sql, plan(a, sql)),
              got == total, (got, total))
        got = a.execute('SELECT sum(value) FROM kv').fetchone()[0]
        check('3 the next sum: the total', got == total, got)

    # count(*) (the count plan) in two subqueries around an insert and a delete by B.
    n0 = len(accts)
    a.create_function('ins', 0, Once(lambda: b.execute("INSERT INTO kv VALUES ('new1', 0), ('new2', 0)")))
    sql = 'SELECT (SELECT count(*) FROM kv), ins(), (SELECT count(*) FROM kv)'
    check('3 the count plan is used', 'count' in plan(a, 'SELECT count(*) FROM kv'))
    got = a.execute(sql).fetchone()
    check('3 %s, B inserting 2 keys in ins(): one count' % sql, got == (n0, 0, n0), got)
    got = a.execute('SELECT count(*), sum(value) FROM kv').fetchone()
    check('3 the next statement counts them', got == (n0 + 2, total), got)
    a.create_function('ins', 0, Once(lambda: b.execute("DELETE FROM kv WHERE key LIKE 'new%'")))
    got = a.execute('SELECT (SELECT count(*) FROM kv), ins(), (SELECT count(key) FROM kv)').fetchone()
    check('3 count(*) and count(key) around a delete by B: one count', got == (n0 + 2, 0, n0 + 2), got)

    # A pair invariant across a join of the table with itself: p<i> = q<i> always
    # (B sets both in one transaction).
    a.execute('BEGIN')
    for i in range(10):
        a.execute("INSERT INTO kv VALUES ('p%d', 0), ('q%d', 0)" % (i, i))
    a.execute('COMMIT')

    def pairs():
        b.execute('BEGIN')
        b.execute("UPDATE kv SET value = 7 WHERE key GLOB 'p*' OR key GLOB 'q*'")
        b.execute('COMMIT')
    a.create_function('u', 0, Once(pairs))
    sql = ("SELECT p.key, p.value, u(), q.value FROM kv AS p JOIN kv AS q ON q.key = 'q' || "
           "substr(p.key, 2) WHERE p.key GLOB 'p*' ORDER BY p.key")
    rows = a.execute(sql).fetchall()
    bad = [r for r in rows if r[1] != r[3]]
    check('3 join p<i> with q<i>, B setting both to 7 at the first row: every pair equal, '
          'all of the starting state', len(rows) == 10 and not bad and all(r[1] == 0 for r in rows),
          rows)
    rows = a.execute(sql.replace('u()', '0')).fetchall()
    check('3 the next join: all 7', len(rows) == 10 and all(r[1] == r[3] == 7 for r in rows), rows)
    a.close(), b.close()


# ---- 5. An explicit read transaction; a pending statement and its own writes -------------
def case5():
    db, a, b = fresh([('a', 1), ('k1', 1), ('k2', 2), ('k3', 3)])
    a.execute('CREATE TABLE native(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID')
    a.execute("INSERT INTO native VALUES ('a', 1)")

    def both(con):
        return con.execute("SELECT (SELECT value FROM kv WHERE key = 'a'), "
                           "(SELECT value FROM native WHERE key = 'a')").fetchone()
    a.execute('BEGIN')
    first = both(a)
    b.execute("UPDATE kv SET value = 2 WHERE key = 'a'")
    b.execute("UPDATE native SET value = 2 WHERE key = 'a'")
    second = both(a)
    a.execute('COMMIT')
    print('  observed: BEGIN; SELECT -> (bitcask, native) = %r; B commits a=2 in both; '
          'SELECT -> %r; COMMIT' % (first, second))
    check('5 read transaction: its first statement reads (1, 1)', first == (1, 1), first)

    # Pending statement: A fetches one row of a scan, then writes; A reads its own write.
    c1 = a.execute('SELECT key FROM kv ORDER BY key')
    one = c1.fetchone()
    a.execute("INSERT INTO kv VALUES ('new', 'mine')")
    got = a.execute("SELECT value FROM kv WHERE key = 'new'").fetchone()
    check('5 a statement pending (one row fetched), A inserts a key: A\'s next SELECT sees it',
          got == ('mine',), got)
    got = a.execute("SELECT count(*), (SELECT value FROM kv WHERE key = 'new') FROM kv").fetchone()
    check('5 ... and counts it', got == (5, 'mine'), got)
    rest = [one[0]] + [r[0] for r in c1.fetchall()]
    print('  observed: the pending scan, continued after its connection inserted \'new\': %r' % rest)
    check('5 the pending scan still returns every key once, in order',
          rest == sorted(set(rest)) and {'a', 'k1', 'k2', 'k3'} <= set(rest), rest)

    # Pending statement on A while B commits; a new statement of A (observed), then after
    # the pending one is closed (asserted: it sees B's commit).
    a.execute("UPDATE native SET value = 1 WHERE key = 'a'")
    a.execute("UPDATE kv SET value = 1 WHERE key = 'a'")
    c2 = a.execute('SELECT key FROM kv ORDER BY key')
    c2.fetchone()
    b.execute("UPDATE kv SET value = 3 WHERE key = 'a'")
    b.execute("UPDATE native SET value = 3 WHERE key = 'a'")
    during = both(a)
    c2.close()
    after = both(a)
    print('  observed: A has a statement pending, B commits a=3 in both; a new statement of A '
          'reads (bitcask, native) = %r; once the pending one is closed: %r' % (during, after))
    check('5 once the pending statement is closed A sees B\'s commit', after == (3, 3), after)

    # A statement pending on A (its snapshot older than B's commit), then a write of A
    # that reads the key: it reads the committed value, no update is lost.
    c4 = a.execute('SELECT key FROM kv ORDER BY key')
    c4.fetchone()
    b.execute("UPDATE kv SET value = 10 WHERE key = 'a'")
    a.execute("UPDATE kv SET value = value + 1 WHERE key = 'a'")
    a.execute("INSERT OR REPLACE INTO kv SELECT 'k1', value + 1 FROM kv WHERE key = 'a'")
    c4.close()
    got = a.execute("SELECT value FROM kv WHERE key IN ('a', 'k1') ORDER BY key").fetchall()
    check('5 a statement pending on A, B sets a=10, A adds 1 to a and copies a+1 to k1: '
          '(11, 12), no update lost', got == [(11,), (12,)], got)

    # A statement pending while its own connection deletes and updates keys it has not reached.
    c3 = a.execute('SELECT key, value FROM kv ORDER BY key')
    first = c3.fetchone()
    a.execute("DELETE FROM kv WHERE key = 'k2'")
    a.execute("UPDATE kv SET value = 'own' WHERE key = 'k3'")
    rest = [first] + c3.fetchall()
    print('  observed: the pending scan after its own connection deleted k2 and updated k3: %r'
          % rest)
    check('5 the pending scan never returns a NULL value', all(v is not None for _, v in rest), rest)
    got = a.execute("SELECT key, value FROM kv WHERE key IN ('k2', 'k3')").fetchall()
    check('5 A\'s next statement reads its own delete and update', got == [('k3', 'own')], got)
    a.close(), b.close()


# ---- 6. A statement's own connection writing between a row's lookup and its value --------
# A user function evaluated before `value` in the select list writes the table through
# the same connection: the value is read when xColumn asks for it, so the statement sees
# that write (README "Consistent reads": a statement whose own connection writes while it
# is open sees that write), in every plan, in autocommit and inside BEGIN.
def case6():
    db, a, b = fresh([('a', 'old'), ('b', 'old')])

    def rewrite():
        a.execute("UPDATE kv SET value = 'new' WHERE key IN ('a', 'b')")
    for sql, want in [("SELECT w(), value FROM kv WHERE key = 'a'", [(0, 'new')]),
                      ("SELECT w(), value FROM kv WHERE key IN ('a', 'b')", [(0, 'new'), (0, 'new')]),
                      ("SELECT w(), value FROM kv WHERE key >= 'a' ORDER BY key",
                       [(0, 'new'), (0, 'new')])]:
        for txn in (0, 1):
            a.execute("UPDATE kv SET value = 'old'")
            a.create_function('w', 0, Once(rewrite))
            if txn:
                a.execute('BEGIN')
            got = a.execute(sql).fetchall()
            if txn:
                a.execute('COMMIT')
            check('6 %s%s, w() rewriting a and b through the same connection: %r'
                  % ('BEGIN; ' if txn else '', sql, want), got == want, got)

    # Inside BEGIN, B commits b='B' at the first row and A's function then begins A's
    # write transaction (an UPDATE matching nothing): whatever a row reads then, a probe
    # and a walk in key order read the same.
    got = {}
    for name, sql in [('IN', "SELECT key, w(key), value FROM kv WHERE key IN ('a', 'b')"),
                      ('range', "SELECT key, w(key), value FROM kv WHERE key >= 'a' ORDER BY key")]:
        a.execute("UPDATE kv SET value = 'old'")
        calls = [0]

        def w(k):
            calls[0] += 1
            if calls[0] == 1:
                b.execute("UPDATE kv SET value = 'B' WHERE key = 'b'")
            elif calls[0] == 2:
                a.execute("UPDATE kv SET value = 'x' WHERE key = 'zzz'")
            return 0
        a.create_function('w', 1, w)
        a.execute('BEGIN')
        got[name] = a.execute(sql).fetchall()
        a.execute('COMMIT')
    check('6 BEGIN, B commits b at the first row, A begins writing at the second: the probe '
          'plan reads what the range plan reads', got['IN'] == got['range'], got)
    a.close(), b.close()


# ---- 7. ALTER TABLE ... RENAME while a statement of the connection reads the table ------
# The store directory is named after the table and moves at once: with cursors open on
# the store (a statement left open, or the RENAME run from a function inside the
# statement) the rename is refused, and the statement goes on reading.
def case7():
    db, a, b = fresh([('a', 1), ('b', 2)])
    b.close()
    n = [0]

    def r(k):
        n[0] += 1
        if n[0] == 1:
            try:
                a.execute('ALTER TABLE kv RENAME TO kv2')
                r.err = None
            except sqlite3.Error as e:
                r.err = e
        return 0
    a.create_function('r', 1, r)
    rows = a.execute("SELECT key, r(key), value FROM kv WHERE key IN ('a', 'b')").fetchall()
    check('7 RENAME from inside a statement reading the table: refused (SQLITE_LOCKED)',
          r.err is not None and getattr(r.err, 'sqlite_errorcode', 0) == 6, r.err)
    check('7 ... and the statement returns its rows', rows == [('a', 0, 1), ('b', 0, 2)], rows)
    c = a.execute('SELECT key FROM kv')
    c.fetchone()
    try:
        a.execute('ALTER TABLE kv RENAME TO kv2')
        err = None
    except sqlite3.Error as e:
        err = e
    rest = c.fetchall()
    check('7 RENAME with a statement left open on the table: refused, the statement goes on',
          err is not None and rest == [('b',)], (err, rest))
    a.execute('ALTER TABLE kv RENAME TO kv2')
    got = a.execute('SELECT key, value FROM kv2 ORDER BY key').fetchall()
    check('7 once it is closed the rename works and the rows move with it',
          got == [('a', 1), ('b', 2)], got)
    a.close()


case1_current_key()
case1_ahead()
case1_storage_order()
case1_merge()
case2_reader_process()
case3_one_process()
case5()
case6()
case7()
shutil.rmtree(T, ignore_errors=True)
finish()
