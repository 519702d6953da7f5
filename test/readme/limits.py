#!/usr/bin/python3
"""README's size limits, through SQL (Limits; Guarantees row 4).

usage: /usr/bin/python3 test/readme/limits.py build/bitcask

A key is stored as one storage-class byte and its payload, so the engine's
BC_MAX_KEY_SIZE (65,536 bytes) holds 65,535 bytes of TEXT or BLOB: such a
key round-trips (insert, =, range, update, delete, after a reopen); one byte
more, and a value of 256 MiB + 1 bytes, fail with SQLITE_TOOBIG naming the
table, and nothing is written.  Prints "limits: N passed, N failed" last.
"""
import json
import os
import shutil
import sqlite3
import sys
import tempfile

EXT = os.path.abspath(sys.argv[1])
passed = failed = 0


def check(name, ok, detail=''):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print('limits: FAIL %s%s' % (name, ('\n  %r' % (detail,)) if detail != '' else ''))


def connect(db):
    con = sqlite3.connect(db, isolation_level=None)
    con.enable_load_extension(True)
    con.load_extension(EXT)
    con.enable_load_extension(False)
    return con


def refused(con, sql, args, what):
    try:
        con.execute(sql, args)
    except sqlite3.Error as e:
        check(what + ': SQLITE_TOOBIG', e.sqlite_errorcode == sqlite3.SQLITE_TOOBIG,
              (e.sqlite_errorcode, str(e)))
        check(what + ': the message names the table', "'kv'" in str(e), str(e))
        return
    check(what + ': refused', False, 'no error')


d = tempfile.mkdtemp(prefix='limits.')
try:
    db = os.path.join(d, 'l.db')
    con = connect(db)
    con.execute('CREATE VIRTUAL TABLE kv USING bitcask(sync=off)')
    tkey = 't' * 65535
    bkey = b'\x00' + b'b' * 65534
    con.execute('INSERT INTO kv VALUES (?, 1), (?, 2), (?, 3)', (tkey, bkey, 'small'))
    row = con.execute('SELECT value FROM kv WHERE key = ?', (tkey,)).fetchone()
    check('65,535-byte TEXT key: = finds it', row == (1,), row)
    row = con.execute('SELECT value, typeof(key) FROM kv WHERE key = ?', (bkey,)).fetchone()
    check('65,535-byte BLOB key: = finds it', row == (2, 'blob'), row)
    rows = con.execute("SELECT length(key), value FROM kv WHERE key > 'small' ORDER BY key").fetchall()
    check('65,535-byte keys in a range, in order', rows == [(65535, 1), (65535, 2)], rows)
    con.execute('UPDATE kv SET value = 10 WHERE key = ?', (tkey,))
    before = json.loads(con.execute("SELECT bitcask_stats('kv')").fetchone()[0])

    refused(con, 'INSERT INTO kv VALUES (?, 0)', ('t' * 65536,), '65,536-byte TEXT key')
    refused(con, 'INSERT INTO kv VALUES (?, 0)', (b'b' * 65536,), '65,536-byte BLOB key')
    refused(con, 'INSERT INTO kv VALUES (?, 0)', ('\u00e9' * 32768,), 'TEXT key of 65,536 UTF-8 bytes')
    refused(con, "UPDATE kv SET key = ? WHERE key = 'small'", ('t' * 65536,), 'key changed to 65,536 bytes')
    refused(con, 'INSERT INTO kv VALUES (?, zeroblob(268435457))', ('big',), 'value of 256 MiB + 1')
    after = json.loads(con.execute("SELECT bitcask_stats('kv')").fetchone()[0])
    check('nothing written by the refused statements',
          (before['keys'], before['total_bytes'], before['next_seq']) ==
          (after['keys'], after['total_bytes'], after['next_seq']), (before, after))
    con.close()

    con = connect(db)
    rows = con.execute('SELECT length(key), typeof(key), value FROM kv ORDER BY key').fetchall()
    check('after a reopen: the rows as written',
          rows == [(5, 'text', 3), (65535, 'text', 10), (65535, 'blob', 2)], rows)
    con.execute('DELETE FROM kv WHERE key IN (?, ?)', (tkey, bkey))
    rows = con.execute('SELECT key FROM kv').fetchall()
    check('65,535-byte keys deleted', rows == [('small',)], rows)
    con.close()
finally:
    shutil.rmtree(d, ignore_errors=True)
print('limits: %d passed, %d failed' % (passed, failed))
sys.exit(1 if failed else 0)
