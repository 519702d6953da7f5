# Statement atomicity with a statement left open on the table (ext/update.c,
# "Statement atomicity"): a failing statement undoes only its own writes --
# never an earlier statement's that succeeded while a SELECT of the same
# connection kept a cursor of the table open -- and the user's savepoints
# opened meanwhile keep working.  Each case runs on a bitcask table and a
# native WITHOUT ROWID table; their rows must agree.
#   /usr/bin/python3 test/blackbox/statement_atomicity.py build/bitcask
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bb import check, finish, tmpdir, connect

d = tmpdir('stmtatom')
c = connect(os.path.join(d, 'db.sqlite'))
c.execute("PRAGMA journal_mode=WAL")
c.execute("CREATE VIRTUAL TABLE kv USING bitcask")
c.execute("CREATE TABLE n(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID")


def reset():
    for t in ('kv', 'n'):
        c.execute("DELETE FROM %s" % t)
        c.execute("INSERT INTO %s VALUES (1, 'one'), (2, 'two'), (3, 'three')" % t)


def rows(t):
    return c.execute("SELECT key, value FROM %s ORDER BY key" % t).fetchall()


def case(name, body):
    reset()
    got = {}
    for t in ('kv', 'n'):
        try:
            body(t)
        except Exception as e:
            got.setdefault('errors', []).append('%s: %s' % (t, e))
        got[t] = rows(t)
    check('%s: bitcask as native' % name, got['kv'] == got['n'],
          'kv %r, native %r %s' % (got['kv'], got['n'], got.get('errors', '')))
    return got


def earlier_statement_kept(t):
    # A SELECT left stepping keeps a cursor of the table open; a successful
    # INSERT, then a failing one: the first stays.
    c.execute("BEGIN")
    outer = c.execute("SELECT * FROM %s" % t)
    outer.fetchone()
    c.execute("INSERT INTO %s VALUES (100, 'a')" % t)
    try:
        c.execute("INSERT INTO %s VALUES (100, 'dup')" % t)
    except Exception:
        pass
    outer.close()
    c.execute("COMMIT")


def savepoint_inside(t):
    # A savepoint opened while that SELECT is open: ROLLBACK TO it works.
    c.execute("BEGIN")
    outer = c.execute("SELECT * FROM %s" % t)
    outer.fetchone()
    c.execute("INSERT INTO %s VALUES (100, 'a')" % t)
    c.execute("SAVEPOINT s")
    c.execute("INSERT INTO %s VALUES (200, 'b')" % t)
    outer.close()
    c.execute("ROLLBACK TO s")
    c.execute("RELEASE s")
    c.execute("COMMIT")


def loop_update(t):
    # The common pattern: writes inside a loop over a SELECT of the table,
    # one of them failing.
    c.execute("BEGIN")
    for (k,) in list(c.execute("SELECT key FROM %s" % t)):
        try:
            c.execute("UPDATE %s SET key = ? WHERE key = ?" % t, (k + 1, k))
        except Exception:
            pass
    c.execute("COMMIT")


def loop_update_open(t):
    c.execute("BEGIN")
    cur = c.execute("SELECT key FROM %s ORDER BY key DESC" % t)
    for (k,) in cur:
        c.execute("UPDATE %s SET value = value || '!' WHERE key = ?" % t, (k,))
        try:
            c.execute("INSERT INTO %s VALUES (?, 'x')" % t, (k,))
        except Exception:
            pass
    c.execute("COMMIT")


g = case('an earlier statement is kept when a later one fails', earlier_statement_kept)
check('... and it is there', (100, 'a') in g['kv'], g['kv'])
g = case('ROLLBACK TO a savepoint opened while a SELECT is open', savepoint_inside)
check('... undoes only what came after it', (100, 'a') in g['kv'] and (200, 'b') not in g['kv'],
      g['kv'])
case('UPDATE in a loop over a SELECT, some failing', loop_update)
case('UPDATE and failing INSERTs in a loop over an open SELECT', loop_update_open)
finish()
