#!/usr/bin/python3
# Black-box attack: copies of a database file.  Contract: "copies of the
# database file (.backup, VACUUM INTO, .dump): a store is deleted only when no
# table anywhere uses it; a copy of a database never silently writes its
# original's store."  A copy's table must give a clear error or use its own
# store: never silently read or write the original's; DROP TABLE in the copy
# must leave the original's data intact and writable.
#
# Tables: kv with an explicit relative dir ('kvstore', which resolves against
# the database's directory: the copy lives in the same directory), kd with the
# default dir ('<database file>-kd.bitcask').
#
# usage: /usr/bin/python3 test/blackbox/copies.py build/bitcask
import os, sys, shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bb import EXT, check, finish, tmpdir, shell, fresh_rows
T = tmpdir('copies')
TABLES = ('kv', 'kd')


def make_copy(method, d, orig, copy):
    if method == 'backup':
        return shell(orig, ".backup '%s'" % copy)
    if method == 'vacuum':
        return shell(orig, "VACUUM INTO '%s';" % copy)
    if method == 'cp':
        shutil.copyfile(orig, copy)
        return 0, '', ''
    if method == 'dump':
        rc, out, err = shell(orig, '.dump')
        if rc != 0:
            return rc, out, err
        return shell(copy, load=False, stdin=out + '\n')
    if method == 'dump-load':          # restore with the extension loaded
        rc, out, err = shell(orig, '.dump')
        if rc != 0:
            return rc, out, err
        return shell(copy, load=False, stdin='.load ' + EXT + '\n' + out + '\n')
    raise ValueError(method)


def run(method):
    d = os.path.join(T, method); os.mkdir(d)
    orig, copy = os.path.join(d, 'main.db'), os.path.join(d, 'copy.db')
    rc, out, err = shell(orig, "CREATE VIRTUAL TABLE kv USING bitcask(dir='kvstore');",
                         "CREATE VIRTUAL TABLE kd USING bitcask;",
                         "CREATE TABLE plain(x); INSERT INTO plain VALUES (1);",
                         "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<50) "
                         "INSERT INTO kv SELECT 'o'||i, 'orig'||i FROM c;",
                         "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<50) "
                         "INSERT INTO kd SELECT 'o'||i, 'orig'||i FROM c;")
    check(method + ': original built', rc == 0, err)
    want = {('o%d' % i): ('orig%d' % i) for i in range(1, 51)}
    rc, out, err = make_copy(method, d, orig, copy)
    check(method + ': copy made', rc == 0, err)
    # The original moves on after the copy.
    rc, out, err = shell(orig, "INSERT INTO kv VALUES ('orig_after', 'A');",
                         "INSERT INTO kd VALUES ('orig_after', 'A');")
    check(method + ': original writes after the copy', rc == 0, err)
    want['orig_after'] = 'A'
    for t in TABLES:
        case = '%s/%s' % (method, t)
        got, err = fresh_rows(copy, t)
        if got is None:
            print('  (%s: the copy refuses to read: %s)' % (case, err))
        else:
            check(case + ': the copy does not silently read the original\'s store',
                  'orig_after' not in got,
                  'the copy returned %d rows including the original\'s post-copy row orig_after' % len(got))
        rc, out, err = shell(copy, "INSERT INTO %s VALUES ('copy_row', 'C');" % t)
        if rc != 0:
            print('  (%s: the copy refuses to write: %s)' % (case, err))
            check(case + ': a refused write says why', bool(err), 'no message')
        got, err = fresh_rows(orig, t)
        check(case + ': original readable after the copy was used', got is not None, err)
        if got is not None:
            check(case + ': a write to the copy does not land in the original\'s store',
                  'copy_row' not in got, "original now has copy_row=%r" % got.get('copy_row'))
    # DROP TABLE in the copy.
    for t in TABLES:
        case = '%s/%s' % (method, t)
        rc, out, err = shell(copy, 'DROP TABLE %s;' % t)
        if rc != 0:
            print('  (%s: DROP TABLE in the copy refused: %s)' % (case, err))
        got, err = fresh_rows(orig, t)
        if got is None:
            check(case + ': original keeps its data after DROP TABLE in the copy', False, 'error: ' + err)
        else:
            missing = sorted(k for k in want if got.get(k) != want[k])
            check(case + ': original keeps its data after DROP TABLE in the copy', not missing,
                  '%d of %d rows missing/wrong, e.g. %s' % (len(missing), len(want), missing[:4]))
        rc, out, err = shell(orig, "INSERT OR REPLACE INTO %s VALUES ('orig_final', 'F');" % t,
                             'SELECT value FROM %s WHERE key = \'orig_final\';' % t)
        check(case + ': original writable after DROP TABLE in the copy', rc == 0 and out == 'F',
              'rc=%d out=%r err=%r' % (rc, out, err))
    check(method + ': original store dir kvstore still exists', os.path.isdir(os.path.join(d, 'kvstore')))
    check(method + ': original store dir main.db-kd.bitcask still exists',
          os.path.isdir(os.path.join(d, 'main.db-kd.bitcask')))


def attached():
    """A .backup copy ATTACHed to a connection that has the original open."""
    import sqlite3
    method = 'backup-attached'
    d = os.path.join(T, method); os.mkdir(d)
    orig, copy = os.path.join(d, 'main.db'), os.path.join(d, 'copy.db')
    rc, out, err = shell(orig, "CREATE VIRTUAL TABLE kv USING bitcask(dir='kvstore');",
                         "INSERT INTO kv VALUES ('o1', 'orig1'), ('o2', 'orig2');")
    check(method + ': original built', rc == 0, err)
    rc, out, err = make_copy('backup', d, orig, copy)
    check(method + ': copy made', rc == 0, err)
    con = sqlite3.connect(orig, isolation_level=None)
    con.enable_load_extension(True); con.load_extension(EXT)
    con.execute("INSERT INTO kv VALUES ('orig_after', 'A')")
    con.execute("ATTACH '%s' AS c" % copy)
    try:
        got = dict(con.execute('SELECT key, value FROM c.kv').fetchall())
        check(method + ": the attached copy does not silently read the original's store",
              'orig_after' not in got, 'c.kv returned %s' % sorted(got))
    except sqlite3.Error as e:
        print('  (%s: the attached copy refuses to read: %s)' % (method, e))
    try:
        con.execute("INSERT INTO c.kv VALUES ('copy_row', 'C')")
    except sqlite3.Error as e:
        print('  (%s: the attached copy refuses to write: %s)' % (method, e))
    main_rows = dict(con.execute('SELECT key, value FROM main.kv').fetchall())
    check(method + ": a write to the attached copy does not land in the original's table",
          'copy_row' not in main_rows, 'main.kv has copy_row=%r' % main_rows.get('copy_row'))
    try:
        con.execute('DROP TABLE c.kv')
    except sqlite3.Error as e:
        print('  (%s: DROP TABLE c.kv refused: %s)' % (method, e))
    con.close()
    got, err = fresh_rows(orig, 'kv')
    want = {'o1': 'orig1', 'o2': 'orig2', 'orig_after': 'A'}
    check(method + ': original keeps its data after DROP TABLE of the attached copy',
          got is not None and all(got.get(k) == v for k, v in want.items()), 'got %r err %r' % (got, err))


try:
    attached()
except Exception as e:
    check('backup-attached: raised', False, repr(e))

for m in ('backup', 'vacuum', 'cp', 'dump', 'dump-load'):
    try:
        run(m)
    except Exception as e:
        check(m + ': raised', False, repr(e))
shutil.rmtree(T, ignore_errors=True)
finish()
