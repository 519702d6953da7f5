#!/usr/bin/python3
# Black-box attack: several tables naming one directory.  Contract: "No
# acknowledged write is lost to process structure: ... several tables or
# databases naming one directory ...: a store is deleted only when no table
# anywhere uses it."  DROP TABLE of one table must leave the other's rows (in
# this process and in a new one) and the other must stay writable.
#
# usage: /usr/bin/python3 test/blackbox/shared_dir.py build/bitcask
import os, sys, shutil, sqlite3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bb import check, finish, tmpdir, shell, fresh_rows, connect
T = tmpdir('shared')


def rows_in(con, table):
    return dict(con.execute('SELECT key, value FROM %s' % table).fetchall())


def expect_rows(case, got, want, err=''):
    if got is None:
        check(case, False, 'error: %s' % err)
        return
    missing = sorted(k for k in want if k not in got)
    wrong = sorted(k for k in want if k in got and got[k] != want[k])
    check(case, not missing and not wrong,
          '%d of %d rows missing (e.g. %s), %d wrong' % (len(missing), len(want), missing[:4], len(wrong)))


# ---- 1. Two tables of one database on dir='shared'; DROP TABLE of one.
def one_database(mode):
    case = 'onedb-' + mode
    d = os.path.join(T, case); os.mkdir(d)
    db = os.path.join(d, 'app.db')
    con = connect(db)
    con.execute("CREATE VIRTUAL TABLE t1 USING bitcask(dir='shared')")
    con.execute("CREATE VIRTUAL TABLE t2 USING bitcask(dir='shared')")
    con.executemany('INSERT INTO t1 VALUES (?, ?)', [('a%d' % i, 'A%d' % i) for i in range(100)])
    con.executemany('INSERT INTO t2 VALUES (?, ?)', [('b%d' % i, 'B%d' % i) for i in range(100)])
    want = {('a%d' % i): ('A%d' % i) for i in range(100)}
    want.update({('b%d' % i): ('B%d' % i) for i in range(100)})
    if mode == 'reopen':          # drop in a later process than the one that wrote
        con.close()
        con = connect(db)
    try:
        con.execute('DROP TABLE t1')
        dropped = True
    except sqlite3.Error as e:
        dropped = False
        print('  (%s: DROP TABLE t1 refused: %s)' % (case, e))
    try:
        expect_rows(case + ': t2 keeps every row after DROP TABLE t1 (same connection)',
                    rows_in(con, 't2'), want)
    except sqlite3.Error as e:
        check(case + ': t2 readable after DROP TABLE t1 (same connection)', False, str(e))
    try:
        con.execute("INSERT INTO t2 VALUES ('after', 'X')")
        want['after'] = 'X'
        check(case + ': t2 writable after DROP TABLE t1', True)
    except sqlite3.Error as e:
        check(case + ': t2 writable after DROP TABLE t1', False, str(e))
    check(case + ': the shared store directory still exists', os.path.isdir(os.path.join(d, 'shared')),
          'files: %s' % os.listdir(d))
    con.close()
    got, err = fresh_rows(db, 't2')
    expect_rows(case + ': t2 keeps every row in a new process', got, want, err)
    rc, out, err = shell(db, "INSERT INTO t2 VALUES ('after2', 'Y');", 'SELECT count(*) FROM t2;')
    check(case + ': t2 writable in a new process', rc == 0 and out == str(len(want) + 1),
          'rc=%d out=%r err=%r' % (rc, out, err))


# ---- 2. Two databases, each with a table on the same absolute dir.
def two_databases(mode):
    case = 'twodb-' + mode
    d = os.path.join(T, case); os.mkdir(d)
    store = os.path.join(d, 'common-store')
    db1, db2 = os.path.join(d, 'one.db'), os.path.join(d, 'two.db')
    want = {}
    rc, out, err = shell(db1, "CREATE VIRTUAL TABLE kv USING bitcask(dir='%s');" % store,
                         "INSERT INTO kv VALUES ('x1', 'one'), ('x2', 'one');")
    check(case + ': db1 creates its table', rc == 0, err)
    rc, out, err = shell(db2, "CREATE VIRTUAL TABLE kv USING bitcask(dir='%s');" % store,
                         "INSERT INTO kv VALUES ('y1', 'two'), ('y2', 'two');")
    check(case + ': db2 creates its table on the same dir', rc == 0, err)
    want = {'x1': 'one', 'x2': 'one', 'y1': 'two', 'y2': 'two'}
    if mode == 'sequential':
        rc, out, err = shell(db1, 'DROP TABLE kv;')
        print('  (%s: DROP in db1: rc=%d %s)' % (case, rc, err))
        got, err = fresh_rows(db2, 'kv')
        expect_rows(case + ': db2 keeps every row after DROP TABLE in db1', got, want, err)
        rc, out, err = shell(db2, "INSERT INTO kv VALUES ('y3', 'two');", 'SELECT count(*) FROM kv;')
        check(case + ': db2 still writable after DROP in db1', rc == 0 and out == '5',
              'rc=%d out=%r err=%r' % (rc, out, err))
    else:
        # Both databases open in one process, each its own connection.
        c1, c2 = connect(db1), connect(db2)
        try:
            expect_rows(case + ': db2 reads the rows before the drop', rows_in(c2, 'kv'), want)
        except sqlite3.Error as e:
            check(case + ': db2 reads before the drop', False, str(e))
        try:
            c1.execute('DROP TABLE kv')
        except sqlite3.Error as e:
            print('  (%s: DROP in db1 refused: %s)' % (case, e))
        try:
            expect_rows(case + ': db2 (open) keeps every row after DROP in db1', rows_in(c2, 'kv'), want)
            c2.execute("INSERT INTO kv VALUES ('y3', 'two')"); want['y3'] = 'two'
            check(case + ': db2 (open) writable after DROP in db1', True)
        except sqlite3.Error as e:
            check(case + ': db2 (open) usable after DROP in db1', False, str(e))
        c1.close(); c2.close()
        got, err = fresh_rows(db2, 'kv')
        expect_rows(case + ': db2 keeps every row in a new process', got, want, err)


for f in (lambda: one_database('open'), lambda: one_database('reopen'),
          lambda: two_databases('sequential'), lambda: two_databases('sameprocess')):
    try:
        f()
    except Exception as e:
        check('case raised', False, repr(e))
shutil.rmtree(T, ignore_errors=True)
finish()
