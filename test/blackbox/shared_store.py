#!/usr/bin/python3
# Black-box (attack2): README "Tables sharing a directory": rename + restart + DROPs,
# a default-located store shared by name, ATTACHed databases, readonly=1 on a shared
# store, first-opener options.
# usage: /usr/bin/python3 test/blackbox/shared_store.py build/bitcask
import os, sys, subprocess, shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bb import EXT, check, finish, tmpdir, shell

T = tmpdir('shstore')


def out_lines(r):
    return r[1].split('\n') if r[1] else []

# ---- 1. explicit dir: rename one of two sharing tables, restart, DROP the other, DROP the renamed
d = os.path.join(T, 'explicit'); os.mkdir(d)
db = os.path.join(d, 'app.db')
r = shell(db, "CREATE VIRTUAL TABLE a USING bitcask(dir='sh');", "CREATE VIRTUAL TABLE b USING bitcask(dir='sh');",
          "INSERT INTO a VALUES ('k', 1);", "ALTER TABLE a RENAME TO a2;")
check('explicit dir: rename a->a2 while b shares the store', r[0] == 0, r)
r = shell(db, "SELECT value FROM b WHERE key='k';", "SELECT value FROM a2 WHERE key='k';")
check('explicit dir: after restart both names read the row', out_lines(r) == ['1', '1'], r)
r = shell(db, "DROP TABLE b;")
check('explicit dir: DROP b ok, store kept', r[0] == 0 and os.path.exists(os.path.join(d, 'sh', 'BITCASK')), r)
r = shell(db, "SELECT count(*) FROM a2;", "DROP TABLE a2;")
check('explicit dir: DROP a2 (last) ok', r[0] == 0 and out_lines(r) == ['1'], r)
check('explicit dir: store deleted exactly at the last DROP', not os.path.exists(os.path.join(d, 'sh')),
      os.listdir(d))

# ---- 2. one table at its default location, the other naming that directory explicitly.
# Rename the default-located one in a fresh process (the other not opened yet).
d = os.path.join(T, 'default'); os.mkdir(d)
db = os.path.join(d, 'app.db')
r = shell(db, "CREATE VIRTUAL TABLE a USING bitcask;", "CREATE VIRTUAL TABLE b USING bitcask(dir='app.db-a.bitcask');",
          "INSERT INTO a VALUES ('k', 1);", "SELECT value FROM b WHERE key='k';")
check('default dir shared explicitly: setup, b sees a\'s row', r[0] == 0 and r[1] == '1', r)
r_same = shell(db, "SELECT count(*) FROM b;", "ALTER TABLE a RENAME TO c;", bail=False)
print('  info: rename a->c with b open in the same connection: rc=%d err=%r' % (r_same[0], r_same[2]))
r = shell(db, "ALTER TABLE a RENAME TO c;", bail=False)
r2 = shell(db, "SELECT value FROM b WHERE key='k';", bail=False)
r3 = shell(db, "SELECT value FROM c WHERE key='k';", bail=False)
if r[0] == 0:
    check('default dir shared: after rename a->c (fresh process) b still reads its store', r2[0] == 0 and r2[1] == '1',
          'ALTER TABLE a RENAME TO c -> rc 0; then SELECT value FROM b: rc=%d out=%r err=%r; dir now %r'
          % (r2[0], r2[1], r2[2], sorted(os.listdir(d))))
    check('default dir shared: c reads the row', r3[0] == 0 and r3[1] == '1', r3)
else:
    check('default dir shared: rename refused, so b and a still work', r2[1] == '1' and
          shell(db, "SELECT value FROM a WHERE key='k';")[1] == '1', (r, r2))
# whatever happened, dropping every table must delete every store
names = shell(db, "SELECT name FROM sqlite_schema WHERE sql LIKE '%bitcask%';")[1].split('\n')
for n in names:
    if n:
        rr = shell(db, "DROP TABLE %s;" % n, bail=False)
        check('default dir shared: DROP %s' % n, rr[0] == 0, rr)
left = [f for f in os.listdir(d) if f != 'app.db']
check('default dir shared: after the last DROP no store is left', not left,
      'left: %r, OWNERS: %r' % (left, [open(os.path.join(d, f, 'OWNERS')).read() for f in left
                                        if os.path.exists(os.path.join(d, f, 'OWNERS'))]))

# ---- 3. ATTACHed databases sharing a dir
d = os.path.join(T, 'attach'); os.mkdir(d)
m, o, sh = os.path.join(d, 'main.db'), os.path.join(d, 'o.db'), os.path.join(d, 'sh')
r = shell(m, "ATTACH '%s' AS o;" % o, "CREATE VIRTUAL TABLE a USING bitcask(dir='%s');" % sh,
          "CREATE VIRTUAL TABLE o.a USING bitcask(dir='%s');" % sh,
          "INSERT INTO main.a VALUES (1, 1);", "SELECT value FROM o.a WHERE key = 1;",
          "INSERT INTO o.a VALUES (2, 2);", "SELECT count(*) FROM main.a;")
check('attach: main.a and o.a share a store', r[0] == 0 and out_lines(r) == ['1', '2'], r)
r = shell(m, "ATTACH '%s' AS o;" % o, "BEGIN;", "INSERT INTO main.a VALUES (3, 3);",
          "INSERT INTO o.a VALUES (4, 4);", "COMMIT;", "SELECT count(*) FROM main.a;", bail=False)
# README Limits: one transaction writes only one of the tables of a store;
# the second write fails with a message naming both, the first commits.
check('attach: a transaction writing both names of one store: the second is refused, naming both tables',
      'one transaction can write only one of the tables of a store' in r[2] and "'a'" in r[2],
      'BEGIN; INSERT INTO main.a ...; INSERT INTO o.a ...; COMMIT -> rc=%d out=%r err=%r' % r)
r = shell(m, "ATTACH '%s' AS o;" % o, "SELECT count(*) FROM o.a;", "DROP TABLE main.a;", "SELECT count(*) FROM o.a;")
check('attach: DROP main.a keeps store for o.a', r[0] == 0 and os.path.exists(os.path.join(sh, 'BITCASK')), r)
r = shell(o, "SELECT count(*) FROM a;", "DROP TABLE a;")
check('attach: DROP o.a (last, from its own db) deletes the store', r[0] == 0 and not os.path.exists(sh), (r, os.listdir(d)))

# ---- 3b. two names in one database, one transaction
d = os.path.join(T, 'onetxn'); os.mkdir(d)
db = os.path.join(d, 'app.db')
shell(db, "CREATE VIRTUAL TABLE a USING bitcask(dir='sh');", "CREATE VIRTUAL TABLE b USING bitcask(dir='sh');")
r = shell(db, "BEGIN;", "INSERT INTO a VALUES (3, 3);", "SELECT 'b sees', count(*) FROM b;",
          "INSERT INTO b VALUES (4, 4);", "COMMIT;", "SELECT count(*) FROM a;", bail=False)
check('same db: a transaction writing a then b (same store): b refused, naming a; a commits',
      'one transaction can write only one of the tables of a store' in r[2] and "'a'" in r[2],
      'BEGIN; INSERT INTO a; SELECT count(*) FROM b; INSERT INTO b; COMMIT -> rc=%d out=%r err=%r' % r)

# ---- 4. readonly=1 table on a shared store
d = os.path.join(T, 'ro'); os.mkdir(d)
w, rdb, sh = os.path.join(d, 'w.db'), os.path.join(d, 'r.db'), os.path.join(d, 'sh')
shell(w, "CREATE VIRTUAL TABLE a USING bitcask(dir='%s');" % sh, "CREATE VIRTUAL TABLE b USING bitcask(dir='%s');" % sh,
      "INSERT INTO a VALUES (1, 1);")
owners_before = open(os.path.join(sh, 'OWNERS')).read()
r = shell(rdb, "CREATE VIRTUAL TABLE r USING bitcask(dir='%s', readonly=1);" % sh, "SELECT count(*) FROM r;")
check('readonly on shared store reads', r[0] == 0 and r[1] == '1', r)
check('readonly table is not an owner', open(os.path.join(sh, 'OWNERS')).read() == owners_before)
r = shell(rdb, "INSERT INTO r VALUES (2, 2);", bail=False)
check('readonly write refused with SQLITE_READONLY', r[0] != 0 and ('read-only' in r[2].lower() or 'readonly' in r[2].lower()), r)
# the writer holds the store while the reader follows
p = subprocess.Popen(['sqlite3', '-batch', w], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
p.stdin.write('.load %s\nINSERT INTO a VALUES (5,5);\nSELECT \'ready\';\n' % EXT); p.stdin.flush()
p.stdout.readline()
r = shell(rdb, "SELECT count(*) FROM r;")
check('readonly follows a live writer of a shared store', r[1] == '2', r)
r = shell(rdb, "DROP TABLE r;")
check('DROP of readonly table leaves the store', r[0] == 0 and os.path.exists(os.path.join(sh, 'BITCASK')), r)
p.stdin.write('DROP TABLE b;\nDROP TABLE a;\nSELECT \'done\';\n'); p.stdin.close(); p.wait(timeout=20)
check('writer DROPs both names: store gone', not os.path.exists(sh), (p.stderr.read(), os.listdir(d)))
r = shell(rdb, "CREATE VIRTUAL TABLE r2 USING bitcask(dir='%s', readonly=1);" % sh, bail=False)
check('readonly CREATE on a missing store refused, nothing created', r[0] != 0 and not os.path.exists(sh), (r, os.listdir(d)))

# ---- 5. first opener's options apply
d = os.path.join(T, 'opts'); os.mkdir(d)
db = os.path.join(d, 'app.db')
r = shell(db, "CREATE VIRTUAL TABLE a USING bitcask(dir='sh', max_file_size='4KB', max_open_files=2);",
          "CREATE VIRTUAL TABLE b USING bitcask(dir='sh', max_file_size='1MB', max_open_files=50);",
          "SELECT json_extract(bitcask_stats('b'), '$.max_file_size'), json_extract(bitcask_stats('b'), '$.max_open_files');")
check('sharing: first opener options apply to the second name', r[1] == '4096|2', r)

# ---- 6. DROP inside a transaction: a close without COMMIT undoes it, COMMIT does it
r = shell(db, "BEGIN;", "DROP TABLE b;", bail=False)
check('DROP of a bitcask table inside BEGIN succeeds', r[0] == 0, r)
r = shell(db, "SELECT count(*) FROM sqlite_schema WHERE name='b';")
check('... and, never committed, b still there', r[1] == '1', r)
r = shell(db, "BEGIN;", "DROP TABLE b;", "COMMIT;", "SELECT count(*) FROM sqlite_schema WHERE name='b';")
check('... committed: b gone, a keeps the shared store',
      r[1] == '0' and os.path.exists(os.path.join(d, 'sh', 'BITCASK')), (r, os.listdir(d)))

# ---- 7. one of two sharing databases deleted (rm), then the other drops its table: the last user is gone
d = os.path.join(T, 'gone'); os.mkdir(d)
x, y, sh = os.path.join(d, 'x.db'), os.path.join(d, 'y.db'), os.path.join(d, 'sh')
shell(x, "CREATE VIRTUAL TABLE a USING bitcask(dir='%s');" % sh, "INSERT INTO a VALUES (1, 1);")
shell(y, "CREATE VIRTUAL TABLE b USING bitcask(dir='%s');" % sh)
os.unlink(x)
r = shell(y, "SELECT count(*) FROM b;", "DROP TABLE b;")
# README "Backing up": a line whose database is gone is not taken as proof
# that nobody uses the store (an unmounted file system looks the same), so
# the store is kept, with x.db's line, for its owner or for removal by hand.
owners_left = open(os.path.join(sh, 'OWNERS')).read() if os.path.exists(os.path.join(sh, 'OWNERS')) else ''
check('sharing db deleted, then the other table dropped: the store is kept, listing only the gone table',
      r[0] == 0 and os.path.exists(os.path.join(sh, 'BITCASK')) and ' a ' in owners_left
      and ' b ' not in owners_left,
      'rm x.db; DROP TABLE b in y.db -> rc=%d; left %r, OWNERS %r' % (
          r[0], os.listdir(d), open(os.path.join(sh, 'OWNERS')).read() if os.path.exists(os.path.join(sh, 'OWNERS')) else None))

shutil.rmtree(T, ignore_errors=True)
finish()
