#!/usr/bin/python3
# Black-box (attack2): README "Backing up" recipes as written: cold copy of the
# database with its store directory, copies beside the original, move, restore, and
# export to an ordinary table carried by .backup / VACUUM INTO / .dump / cp.
# usage: /usr/bin/python3 test/blackbox/backup_recipes.py build/bitcask
import os, sys, subprocess, shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bb import check, finish, tmpdir, shell

T = tmpdir('backup')
ORIG = os.path.join(T, 'orig')
os.mkdir(ORIG)
APP = os.path.join(ORIG, 'app.db')
ABSDIR = os.path.join(T, 'absstore')
VALUES = "(1,1),(2.5,2.5),('t','t'),(x'00ff',x'00ff'),('n',NULL),('1','textone')"


def kv(db, table, cwd=None):
    rc, out, err = shell(db, '.mode quote', 'SELECT key, value FROM %s ORDER BY key;' % table, cwd=cwd)
    return (out if rc == 0 else None), err

# kv: default dir; kr: relative explicit dir; ka: absolute dir
rc, out, err = shell(APP, "CREATE VIRTUAL TABLE kv USING bitcask;",
                     "CREATE VIRTUAL TABLE kr USING bitcask(dir='kr.store');",
                     "CREATE VIRTUAL TABLE ka USING bitcask(dir='%s');" % ABSDIR,
                     "CREATE TABLE plain(x);", "INSERT INTO plain VALUES (42);",
                     "INSERT INTO kv VALUES %s;" % VALUES,
                     "INSERT INTO kr VALUES %s;" % VALUES,
                     "INSERT INTO ka VALUES %s;" % VALUES)
check('setup', rc == 0, err)
want, _ = kv(APP, 'kv')

# ---- recipe 1: cp app.db backup/ && cp -r app.db-kv.bitcask backup/ (cold)
BK = os.path.join(T, 'backup')
os.mkdir(BK)
p = subprocess.run('cp app.db %s/ && cp -r app.db-kv.bitcask %s/ && cp -r kr.store %s/' % (BK, BK, BK),
                   shell=True, cwd=ORIG, capture_output=True, text=True)
check('README cp recipe runs', p.returncode == 0, p.stderr)
BAPP = os.path.join(BK, 'app.db')
got, err = kv(BAPP, 'kv')
check('cold copy (default dir) opens while original exists and reads all rows', got == want, (got, err))
got, err = kv(BAPP, 'kr')
check('cold copy (relative dir, copied too) reads all rows', got == want, (got, err))
rc, out, err = shell(BAPP, "SELECT * FROM ka;", bail=False)
check('cold copy: absolute dir to original store is CANTOPEN, says copy',
      rc != 0 and 'ka' in err and 'copy' in err.lower(), (rc, out, err))
rc, out, err = shell(BAPP, "INSERT INTO ka VALUES ('evil', 1);", bail=False)
check('cold copy: write to original store via absolute dir refused', rc != 0, (rc, out, err))
got, err = kv(APP, 'ka')
check('original absolute-dir store untouched by the copy', got == want, (got, err))
rc, out, err = shell(BAPP, "SELECT x FROM plain;")
check('cold copy: ordinary table there', out == '42', (out, err))

# writes in the copy and in the original are independent
rc, out, err = shell(BAPP, "INSERT INTO kv VALUES ('copyonly', 1);", "INSERT INTO kr VALUES ('copyonly', 1);")
check('copy takes writes', rc == 0, err)
rc, out, err = shell(APP, "INSERT INTO kv VALUES ('origonly', 1);", "INSERT INTO kr VALUES ('origonly', 1);",
                     "SELECT count(*) FROM kv WHERE key='copyonly';", "SELECT count(*) FROM kr WHERE key='copyonly';")
check('original still works after copy opened+written, does not see copy rows', rc == 0 and out.split('\n') == ['0', '0'], (out, err))
rc, out, err = shell(BAPP, "SELECT count(*) FROM kv WHERE key='origonly';", "SELECT count(*) FROM kv;")
check('copy does not see original rows', out.split('\n') == ['0', '7'], (out, err))
# the original's owners still work: merge, reopen
rc, out, err = shell(APP, "SELECT bitcask_merge('kv') >= 0, bitcask_merge('kr') >= 0;", "SELECT count(*) FROM kv;")
check('original merges after copy used', out.split('\n') == ['1|1', '7'], (out, err))
rc, out, err = shell(BAPP, "SELECT bitcask_merge() >= 0;", bail=False)
print('  info: bitcask_merge() in copy with an unusable ka: rc=%d out=%r err=%r' % (rc, out, err))

# DROP in the copy: deletes the copy's stores only, leaves the original's (abs) store
rc, out, err = shell(BAPP, "DROP TABLE ka;", bail=False)
check('DROP of a copy-refused table (ka) in the copy works', rc == 0, err)
check('... and leaves the original absolute store', os.path.exists(os.path.join(ABSDIR, 'BITCASK')))
rc, out, err = shell(BAPP, "DROP TABLE kv;", "DROP TABLE kr;")
check('DROP kv, kr in the copy', rc == 0, err)
check('copy DROP deleted the copy stores', not os.path.exists(os.path.join(BK, 'app.db-kv.bitcask'))
      and not os.path.exists(os.path.join(BK, 'kr.store')), os.listdir(BK))
check('copy DROP left the original stores', os.path.exists(os.path.join(ORIG, 'app.db-kv.bitcask', 'BITCASK'))
      and os.path.exists(os.path.join(ORIG, 'kr.store', 'BITCASK')), os.listdir(ORIG))
rc, out, err = shell(APP, "SELECT count(*) FROM kv;", "SELECT count(*) FROM kr;", "SELECT count(*) FROM ka;")
check('original reads everything after copy dropped', out.split('\n') == ['7', '7', '6'], (out, err))

# ---- a copy beside the original under another name (same directory)
p = subprocess.run('cp app.db app2.db && cp -r app.db-kv.bitcask app2.db-kv.bitcask', shell=True, cwd=ORIG)
A2 = os.path.join(ORIG, 'app2.db')
rc, out, err = shell(A2, "SELECT count(*) FROM kv;", "INSERT INTO kv VALUES ('a2', 1);")
check('renamed cold copy beside original with its own default store copied works', rc == 0 and out == '7', (out, err))
rc, out, err = shell(A2, "SELECT count(*) FROM kr;", bail=False)
check('renamed copy beside original: relative dir to original store refused as copy',
      rc != 0 and 'copy' in err.lower() and 'kr' in err, (rc, out, err))
rc, out, err = shell(A2, "DROP TABLE kv;", "DROP TABLE kr;")
check('renamed copy: DROPs work', rc == 0, err)
check('renamed copy: DROP kv deleted its own store only', not os.path.exists(os.path.join(ORIG, 'app2.db-kv.bitcask'))
      and os.path.exists(os.path.join(ORIG, 'app.db-kv.bitcask', 'BITCASK')))
check('renamed copy: DROP kr left original kr store', os.path.exists(os.path.join(ORIG, 'kr.store', 'BITCASK')))
rc, out, err = shell(APP, "SELECT count(*) FROM kv;", "SELECT count(*) FROM kr;")
check('original intact after renamed copy dropped', out.split('\n') == ['7', '7'], (out, err))

# ---- moving the database with its stores (same file system): still the owner
MV = os.path.join(T, 'moved')
os.mkdir(MV)
for f in ('app.db', 'app.db-kv.bitcask', 'kr.store'):
    os.rename(os.path.join(ORIG, f), os.path.join(MV, f))
MAPP = os.path.join(MV, 'app.db')
rc, out, err = shell(MAPP, "SELECT count(*) FROM kv;", "SELECT count(*) FROM kr;", "INSERT INTO kv VALUES ('mv',1);")
check('database moved with its stores still works (renamed db is owner)', rc == 0 and out.split('\n') == ['7', '7'], (out, err))

# ---- restore: original gone, backup copied back into place
BK2 = os.path.join(T, 'bk2')
os.mkdir(BK2)
subprocess.run('cp app.db %s/ && cp -r app.db-kv.bitcask %s/ && cp -r kr.store %s/' % (BK2, BK2, BK2), shell=True, cwd=MV)
subprocess.run('rm -rf app.db app.db-kv.bitcask kr.store && cp %s/app.db . && cp -r %s/app.db-kv.bitcask %s/kr.store .' % (BK2, BK2, BK2),
               shell=True, cwd=MV)
rc, out, err = shell(MAPP, "SELECT count(*) FROM kv;", "SELECT count(*) FROM kr;", "INSERT INTO kr VALUES ('restored',1);")
check('restored copy in place of a removed original works', rc == 0 and out.split('\n') == ['8', '7'], (out, err))
rc, out, err = shell(MAPP, "DROP TABLE kv;", "DROP TABLE kr;")
check('restored copy DROP deletes its stores', rc == 0 and not os.path.exists(os.path.join(MV, 'kr.store'))
      and not os.path.exists(os.path.join(MV, 'app.db-kv.bitcask')), (err, os.listdir(MV)))
rc, out, err = shell(os.path.join(BK2, 'app.db'), "SELECT count(*) FROM kv;")
check('the other backup copy still opens its own store', out == '8', (out, err))

# ---- recipe 2: export into an ordinary table, carried by every method
E = os.path.join(T, 'exp')
os.mkdir(E)
EAPP = os.path.join(E, 'app.db')
rc, out, err = shell(EAPP, "CREATE VIRTUAL TABLE kv USING bitcask;", "INSERT INTO kv VALUES %s;" % VALUES,
                     "CREATE TABLE kv_copy AS SELECT * FROM kv;")
check('export: CREATE TABLE kv_copy AS SELECT * FROM kv', rc == 0, err)
rc, wantt, err = shell(EAPP, "SELECT typeof(key)||typeof(value)||quote(key)||quote(value) FROM kv ORDER BY 1;")
for method in ('backup', 'vacuum', 'dump', 'cp'):
    c = os.path.join(E, 'c_%s.db' % method)
    if method == 'backup':
        r = shell(EAPP, ".backup '%s'" % c)
    elif method == 'vacuum':
        r = shell(EAPP, "VACUUM INTO '%s';" % c)
    elif method == 'cp':
        shutil.copyfile(EAPP, c); r = (0, '', '')
    else:
        rc, dump, err = shell(EAPP, '.dump')
        r = shell(c, load=False, stdin=dump + '\n')
    check('export carried by %s: copy made' % method, r[0] == 0, r)
    rc, got, err = shell(c, "SELECT typeof(key)||typeof(value)||quote(key)||quote(value) FROM kv_copy ORDER BY 1;", load=False)
    check('export carried by %s: rows and storage classes' % method, got == wantt, (got, wantt, err))
    # re-import into a fresh bitcask table in the copy
    rc, got, err = shell(c, "CREATE VIRTUAL TABLE kv_new USING bitcask;", "INSERT INTO kv_new SELECT * FROM kv_copy;",
                         "SELECT typeof(key)||typeof(value)||quote(key)||quote(value) FROM kv_new ORDER BY 1;")
    check('export by %s: re-import into bitcask table' % method, got == wantt, (got, err))
    rc, got, err = shell(c, "DROP TABLE kv;", bail=False)
    check('export by %s: DROP of the copied kv table succeeds' % method, rc == 0, err)
rc, got, err = shell(EAPP, "SELECT count(*) FROM kv;")
check('original after all export copies dropped their kv', got == '6', (got, err))

# ---- a hard-linked copy of the store (cp -al, rsync --link-dest, snapshot tools): README's recipe
# says cp -r, but Guarantees say "a copied database never writes its original's store".
H = os.path.join(T, 'hl'); os.mkdir(H); HO = os.path.join(H, 'orig'); HB = os.path.join(H, 'bk')
os.mkdir(HO); os.mkdir(HB)
shell(os.path.join(HO, 'app.db'), "CREATE VIRTUAL TABLE kv USING bitcask;", "INSERT INTO kv VALUES (1, 'orig1');")
subprocess.run('cp app.db %s/ && cp -al app.db-kv.bitcask %s/' % (HB, HB), shell=True, cwd=HO)
rc, out, err = shell(os.path.join(HB, 'app.db'), "INSERT INTO kv VALUES (2, 'copy2');")
rc, out, err = shell(os.path.join(HO, 'app.db'), "SELECT count(*) FROM kv WHERE key = 2;")
check('hard-linked store copy (cp -al): a write in the copy does not appear in the original', out == '0',
      "cp app.db bk/ && cp -al app.db-kv.bitcask bk/; INSERT INTO kv VALUES (2,'copy2') in bk/app.db; "
      "original SELECT count(*) FROM kv WHERE key=2 -> %r (err %r)" % (out, err))

shutil.rmtree(T, ignore_errors=True)
finish()
