#!/usr/bin/python3
"""A round trip through Python's sqlite3 module (and APSW, when installed).

usage: /usr/bin/python3 test/clients/roundtrip.py build/bitcask

The extension is loaded with enable_load_extension/load_extension, as
docs/clients.md shows.  Every step runs on the bitcask table kv and on a
native table n(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID of the same
database: the rows (with their types) and the errors -- message, Python
exception class and SQLite's extended result code -- must be the same, and
the rows must be the ones written here.  Steps: create, insert (every
storage class), select (=, IN, range, ORDER BY), update of a value and of a
key, delete, a duplicate and a NULL key, a committed and a rolled-back
transaction with a savepoint, bitcask_stats, and a reopen; once in
autocommit mode (isolation_level=None, BEGIN written out) and once in the
module's default mode (it opens the transactions, commit() ends them).
Prints "roundtrip: N passed, N failed" last.
"""
import json
import os
import shutil
import sqlite3
import sys
import tempfile

EXT = os.path.abspath(sys.argv[1])
passed = failed = 0


def check(name, ok, detail=None):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print('roundtrip: FAIL %s%s' % (name, '' if detail is None else '\n  %r' % (detail,)))
    return ok


def typed(rows):
    return [tuple((type(v).__name__, v) for v in r) for r in rows]


# ------------------------------------------------------------- sqlite3 module
class PyClient:
    name = 'sqlite3'

    def __init__(self, db, autocommit):
        kw = {'isolation_level': None} if autocommit else {}
        self.con = sqlite3.connect(db, **kw)
        self.autocommit = autocommit
        if not hasattr(self.con, 'enable_load_extension'):
            sys.exit('roundtrip: this python cannot load extensions: %s' % sys.executable)
        self.con.enable_load_extension(True)
        self.con.load_extension(EXT)
        self.con.enable_load_extension(False)

    def run(self, sql, params=()):
        """('ok', typed rows) or ('error', exception class, extended code, message)."""
        try:
            if isinstance(params, list):
                self.con.executemany(sql, params)
                return ('ok', [])
            return ('ok', typed(self.con.execute(sql, params).fetchall()))
        except sqlite3.Error as e:
            return ('error', type(e).__name__, getattr(e, 'sqlite_errorcode', None), str(e))

    def begin(self):
        if self.autocommit:
            self.con.execute('BEGIN')
        # the default mode opens one before the first INSERT/UPDATE/DELETE

    def commit(self):
        self.con.execute('COMMIT') if self.autocommit else self.con.commit()

    def rollback(self):
        self.con.execute('ROLLBACK') if self.autocommit else self.con.rollback()

    def close(self):
        self.con.close()


class ApswClient:
    name = 'apsw'

    def __init__(self, db, autocommit=True):
        import apsw
        self.apsw = apsw
        self.con = apsw.Connection(db)
        self.con.enableloadextension(True)
        self.con.loadextension(EXT)
        self.con.enableloadextension(False)
        self.autocommit = True

    def run(self, sql, params=()):
        cur = self.con.cursor()
        try:
            if isinstance(params, list):
                cur.executemany(sql, params)
                return ('ok', [])
            return ('ok', typed(list(cur.execute(sql, params))))
        except self.apsw.Error as e:
            return ('error', type(e).__name__, e.extendedresult, str(e).split(': ', 1)[-1])

    def begin(self):
        self.con.cursor().execute('BEGIN')

    def commit(self):
        self.con.cursor().execute('COMMIT')

    def rollback(self):
        self.con.cursor().execute('ROLLBACK')

    def close(self):
        self.con.close()


def both(c, label, sql, params=(), expect=None):
    """Run sql with @T replaced by kv and by n; compare; check expect."""
    a = c.run(sql.replace('@T', 'kv'), params)
    b = c.run(sql.replace('@T', 'n'), params)
    norm = lambda r: r if r[0] == 'ok' else r[:3] + (r[3].replace('n.key', 'kv.key'),)
    check('%s: %s: bitcask as native' % (c.name, label), norm(a) == norm(b),
          {'bitcask': a, 'native': b})
    if expect is not None:
        check('%s: %s: the expected answer' % (c.name, label), a == expect, {'got': a, 'expected': expect})
    return a


def ok(rows):
    return ('ok', typed(rows))


def scenario(make, d, mode):
    db = os.path.join(d, '%s-%s.db' % (make.name, mode))
    c = make(db, mode == 'autocommit')
    c.name = '%s/%s' % (make.name, mode)
    c.run('CREATE VIRTUAL TABLE kv USING bitcask(sync=normal)')
    c.run('CREATE TABLE n(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID')
    rows = [('user:1', '{"name":"ada"}'), (2, 2.5), (b'\x00\xff', None), (3.5, b'\x01'),
            ('user:3', 'grace'), (-7, 9223372036854775807)]
    c.begin()
    both(c, 'insert six rows', 'INSERT INTO @T VALUES (?, ?)', rows)
    c.commit()
    both(c, 'select =', 'SELECT value FROM @T WHERE key = ?', ('user:1',), ok([('{"name":"ada"}',)]))
    both(c, 'select = on an integral REAL', 'SELECT key, value FROM @T WHERE key = 2.0', (),
         ok([(2, 2.5)]))
    both(c, 'select IN', 'SELECT key FROM @T WHERE key IN (?, ?, ?) ORDER BY key',
         (-7, b'\x00\xff', 'nope'), ok([(-7,), (b'\x00\xff',)]))
    both(c, 'select a range in order',
         'SELECT key, typeof(value) FROM @T WHERE key > ? ORDER BY key DESC', (2,),
         ok([(b'\x00\xff', 'null'), ('user:3', 'text'), ('user:1', 'text'), (3.5, 'blob')]))
    both(c, 'duplicate key', 'INSERT INTO @T VALUES (?, ?)', ('user:1', 'again'))
    both(c, 'NULL key', 'INSERT INTO @T VALUES (NULL, 1)')
    both(c, 'OR IGNORE keeps the row', 'INSERT OR IGNORE INTO @T VALUES (?, ?)', ('user:1', 'x'))
    both(c, 'update a value', "UPDATE @T SET value = 'hopper' WHERE key = 'user:3'")
    both(c, 'update a key', "UPDATE @T SET key = 'user:4' WHERE key = 'user:3'")
    both(c, 'update a key onto another', "UPDATE @T SET key = 2 WHERE key = -7")
    both(c, 'delete', 'DELETE FROM @T WHERE key = ?', (3.5,))
    # A committed transaction with a savepoint rolled back inside it.
    c.begin()
    both(c, 'txn insert', "INSERT INTO @T VALUES ('t1', 1)")
    c.run('SAVEPOINT s1')
    both(c, 'txn delete under a savepoint', "DELETE FROM @T WHERE key = 'user:1'")
    both(c, 'txn sees its delete', "SELECT count(*) FROM @T WHERE key = 'user:1'", (), ok([(0,)]))
    c.run('ROLLBACK TO s1')
    c.run('RELEASE s1')
    both(c, 'txn sees the savepoint undone', "SELECT count(*) FROM @T WHERE key = 'user:1'", (),
         ok([(1,)]))
    c.commit()
    # A rolled-back one.
    c.begin()
    both(c, 'txn to roll back', "UPDATE @T SET value = 0")
    c.rollback()
    final = [(-7, 9223372036854775807), (2, 2.5), ('t1', 1), ('user:1', '{"name":"ada"}'),
             ('user:4', 'hopper'), (b'\x00\xff', None)]
    both(c, 'the rows', 'SELECT key, value FROM @T ORDER BY key', (), ok(final))
    r = c.run("SELECT bitcask_stats('kv')")
    st = json.loads(r[1][0][0][1]) if r[0] == 'ok' else {}
    check('%s: bitcask_stats keys' % c.name, st.get('keys') == 6, r)
    check('%s: bitcask_stats table' % c.name, st.get('table') == 'kv', st)
    c.close()
    c = make(db, mode == 'autocommit')
    c.name = '%s/%s reopened' % (make.name, mode)
    both(c, 'the rows', 'SELECT key, value FROM @T ORDER BY key', (), ok(final))
    c.run('DROP TABLE kv')
    check('%s: DROP TABLE removed the store' % c.name,
          not os.path.exists(db + '-kv.bitcask'), os.listdir(d))
    c.close()


def main():
    d = tempfile.mkdtemp(prefix='roundtrip.')
    try:
        for mode in ('autocommit', 'default'):
            scenario(PyClient, d, mode)
        try:
            import apsw  # noqa: F401
            scenario(ApswClient, d, 'autocommit')
        except ImportError:
            print('roundtrip: SKIP apsw: not installed (apt-get install python3-apsw)')
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print('roundtrip: %d passed, %d failed' % (passed, failed))
    sys.exit(1 if failed else 0)


main()
