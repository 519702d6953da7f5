#!/usr/bin/python3
# Black-box: ranges, ORDER BY [DESC] with LIMIT/OFFSET, LIKE and GLOB on a
# bitcask table with bound parameters (whose type the plan cannot know: one
# prepared statement gets TEXT, numbers and BLOBs in turn), in a UTF-8, a
# UTF-16le and a UTF-16be database (PRAGMA encoding before any table).  Every
# query must return the rows, in the same order, of the native table
#     n(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID
# holding the same keys (README "Query planning", "UTF-16 databases").  Keys
# mix characters whose UTF-16 order differs from their UTF-8 order (U+0100,
# U+0131, U+E000, U+10000, ...).  Where n itself is wrong -- SQLite 3.40's LIKE
# optimization in a UTF-16le database returns rows that fail the GLOB, fixed
# in later releases -- the oracle is the same rows in a rowid table read NOT
# INDEXED; such queries are counted and, with a LIMIT, skipped.
# usage: /usr/bin/python3 test/blackbox/encoding_params.py build/bitcask
import os, random, shutil, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bb import EXT, check, finish, tmpdir, connect

QUERIES = 1500
CHARS = ['a', 'b', 'A', 'B', 'z', ':', '1', '2', '\u00e4', '\u0100', '\u0131', '\u0162',
         '\ue000', '\uffef', '\U00010000', '\U0001f600', '\u4e2d']
T = tmpdir('encparams')


def run(enc, seed):
    rng = random.Random(seed)

    def text():
        return ''.join(rng.choice(CHARS) for _ in range(rng.randint(0, 4)))

    def value():
        k = rng.random()
        if k < 0.6:
            return text()
        if k < 0.75:
            return rng.randint(-5, 5)
        if k < 0.85:
            return rng.choice([0.5, -1.5, 2.25])
        return bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 3)))

    d = os.path.join(T, enc)
    os.mkdir(d)
    con = connect(os.path.join(d, 'x.db'))
    con.execute("PRAGMA encoding='%s'" % enc)
    con.execute('CREATE VIRTUAL TABLE kv USING bitcask')
    con.execute('CREATE TABLE n(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID')
    con.execute('CREATE TABLE r(key, value)')
    for i in range(300):
        k = value()
        if con.execute('SELECT 1 FROM n WHERE key = ?', (k,)).fetchone():
            continue
        for t in ('kv', 'n', 'r'):
            con.execute('INSERT INTO %s VALUES (?, ?)' % t, (k, i))
    bad, native_wrong = [], 0
    for _ in range(QUERIES):
        conds, args = [], []
        for _ in range(rng.randint(1, 3)):
            op = rng.choice(['>', '>=', '<', '<=', 'BETWEEN', 'LIKE', 'GLOB'])
            if op == 'BETWEEN':
                conds.append('key BETWEEN ? AND ?')
                args += [value(), value()]
            elif op in ('LIKE', 'GLOB'):
                conds.append('key %s ?' % op)
                args.append(text()[:rng.randint(0, 3)] + ('%' if op == 'LIKE' else '*'))
            else:
                conds.append('key %s ?' % op)
                args.append(value())
        order = rng.choice(['', ' ORDER BY key', ' ORDER BY key DESC'])
        limit = rng.choice(['', ' LIMIT 3', ' LIMIT 2 OFFSET 1']) if order else ''
        q = 'SELECT key FROM %s WHERE ' + ' AND '.join(conds) + order + limit
        got = con.execute(q % 'kv', args).fetchall()
        want = con.execute(q % 'n', args).fetchall()
        plain = con.execute(q % 'r NOT INDEXED', args).fetchall()
        if not order:
            got, want, plain = (sorted(map(repr, x)) for x in (got, want, plain))
        if want != plain:
            native_wrong += 1
            if limit:
                continue
            want = plain
        if got != want:
            bad.append('%s %r\n    kv %r\n    n  %r' % (q % 'kv', args, got, want))
    check('%s: %d queries with bound parameters as on a native table' % (enc, QUERIES),
          not bad, '%d differ, e.g.\n  %s' % (len(bad), '\n  '.join(bad[:3])))
    print('%s: %s: native table wrong on %d queries (SQLite LIKE optimization)'
          % (os.path.basename(sys.argv[0]), enc, native_wrong))
    con.close()


for i, enc in enumerate(['UTF-8', 'UTF-16le', 'UTF-16be']):
    run(enc, 20250101 + i)
shutil.rmtree(T, ignore_errors=True)
finish()
