#!/usr/bin/python3
# Black-box (attack2): README "Processes and fork()", a second writer process (BUSY,
# retry), the dir option rules, in-memory databases, rename onto an existing directory.
# usage: /usr/bin/python3 test/blackbox/processes_dirs.py build/bitcask
import os, sys, json, subprocess, shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bb import EXT, check, finish, tmpdir, shell, connect
import sqlite3, time

T = tmpdir('procs')
os.chdir(T)


def conn(db='app.db'):
    return connect(db)


def attempt(c, sql):
    try:
        return 'OK', c.execute(sql).fetchall()
    except sqlite3.Error as e:
        return getattr(e, 'sqlite_errorname', type(e).__name__), str(e)

# ---- fork(): README "Processes and fork()"
c = conn()
c.execute("CREATE VIRTUAL TABLE kv USING bitcask(sync='normal')")
c.execute("INSERT INTO kv VALUES (1, 'p')")
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    res = {}
    res['read'] = attempt(c, "SELECT count(*) FROM kv")
    res['insert'] = attempt(c, "INSERT INTO kv VALUES (2, 'c')")
    res['drop'] = attempt(c, "DROP TABLE kv")
    res['rename'] = attempt(c, "ALTER TABLE kv RENAME TO kv2")
    c.close()
    c2 = conn()
    res['own'] = attempt(c2, "INSERT INTO kv VALUES (3, 'c2')")
    os.write(w, json.dumps(res).encode())
    os._exit(0)
os.close(w)
os.waitpid(pid, 0)
res = json.loads(os.read(r, 65536).decode())
check('fork: inherited connection reads in the child', res['read'] == ['OK', [[1]]], res['read'])
check('fork: inherited write fails SQLITE_MISUSE naming fork()', res['insert'][0] == 'SQLITE_MISUSE' and
      'fork()' in res['insert'][1], res['insert'])
check('fork: DROP through inherited connection refused', res['drop'][0] != 'OK', res['drop'])
# SQLite does not pass a virtual table's message on from xDestroy (DROP
# TABLE): the user sees the generic text of the code (README Limits), so the
# code is what can be checked: SQLITE_MISUSE, as for the refused writes.
check('fork: DROP refusal is SQLITE_MISUSE (its message is SQLite\'s generic one)',
      res['drop'][0] == 'SQLITE_MISUSE',
      'child: DROP TABLE kv on the inherited connection -> %r' % (res['drop'],))
check('fork: RENAME through inherited connection refused', res['rename'][0] != 'OK', res['rename'])
check('fork: child\'s own connection gets SQLITE_BUSY naming the table and parent pid',
      res['own'][0] == 'SQLITE_BUSY' and str(os.getpid()) in res['own'][1] and 'kv' in res['own'][1], res['own'])
c.execute("INSERT INTO kv VALUES (4, 'p2')")
check('fork: parent writes after the child closed its copy', attempt(c, "SELECT key FROM kv ORDER BY key") ==
      ('OK', [(1,), (4,)]), attempt(c, "SELECT key FROM kv"))
c.close()
c3 = conn()
check('fork: a fresh process view has the parent rows only', attempt(c3, "SELECT key FROM kv ORDER BY key") ==
      ('OK', [(1,), (4,)]))
c3.close()

# ---- fork: the child exits normally (the connection finalized by the interpreter); the parent's lock holds
os.chdir(T)
os.mkdir('fk2'); os.chdir('fk2')
pc = conn()
pc.execute("CREATE VIRTUAL TABLE kv USING bitcask(sync='normal')")
pc.execute("INSERT INTO kv VALUES (1, 'p')")
pid = os.fork()
if pid == 0:
    pc.execute("SELECT count(*) FROM kv").fetchall()
    sys.exit(0)                      # interpreter shutdown closes the inherited connection
os.waitpid(pid, 0)
pc.execute("INSERT INTO kv VALUES (2, 'p')")
rc, out, err = shell('app.db', "INSERT INTO kv VALUES (3, 'x');", bail=False)
check('fork: after the child exited, the parent still holds the lock (another process gets BUSY)',
      rc != 0 and str(os.getpid()) in err, (rc, err))
pc.close()
rc, out, err = shell('app.db', "SELECT group_concat(key) FROM kv;")
check('fork: the parent\'s rows all there after child exit and parent close', out == '1,2', (out, err))
os.chdir(T)

# ---- second process: BUSY naming store and pid; retry without reconnecting
os.chdir(T)
w1 = conn()
w1.execute("INSERT INTO kv VALUES (10, 'w1')")
p = subprocess.Popen(['/usr/bin/python3', '-c', r'''
import sqlite3, sys, time
c = sqlite3.connect("app.db", isolation_level=None); c.enable_load_extension(True); c.load_extension(sys.argv[1])
try:
    c.execute("INSERT INTO kv VALUES (11, 'w2')"); print("first OK")
except sqlite3.Error as e:
    print("first", e.sqlite_errorname, e)
sys.stdout.flush(); sys.stdin.readline()
try:
    c.execute("INSERT INTO kv VALUES (11, 'w2')"); print("retry OK")
except sqlite3.Error as e:
    print("retry", e.sqlite_errorname, e)
''', EXT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=T)
first = p.stdout.readline().strip()
check('second process: SQLITE_BUSY naming the store and holder pid', first.startswith('first SQLITE_BUSY') and
      str(os.getpid()) in first and 'app.db-kv.bitcask' in first, first)
w1.close()
p.stdin.write('\n'); p.stdin.flush()
second = p.stdout.readline().strip()
p.wait(timeout=10)
check('second process: retry on the same connection after the writer closed works', second == 'retry OK', (second, p.stderr.read()))
c4 = conn()
check('both writers\' rows there', attempt(c4, "SELECT count(*) FROM kv") == ('OK', [(4,)]), attempt(c4, "SELECT count(*) FROM kv"))
c4.close()

# ---- dir option rules
os.mkdir('empty'); os.mkdir('notours'); open('notours/x', 'w').write('x'); open('afile', 'w').write('f')
rc, out, err = shell('d.db', "CREATE VIRTUAL TABLE e USING bitcask(dir='empty');", "INSERT INTO e VALUES (1, 1);")
check('dir: an existing empty directory is adopted', rc == 0 and os.path.exists('empty/BITCASK'), err)
rc, out, err = shell('d.db', "CREATE VIRTUAL TABLE n USING bitcask(dir='notours');", bail=False)
check('dir: non-empty non-store refused naming table and option', rc != 0 and "'n'" in err and 'dir' in err, err)
check('dir: non-store untouched', os.listdir('notours') == ['x'], os.listdir('notours'))
rc, out, err = shell('d.db', "CREATE VIRTUAL TABLE f USING bitcask(dir='afile');", bail=False)
check('dir: a file refused naming table and option', rc != 0 and "'f'" in err and 'dir' in err, err)
rc, out, err = shell('d.db', "SELECT count(*) FROM sqlite_schema WHERE name IN ('n', 'f');")
check('dir: refused CREATEs left no schema rows', out == '0', out)
rc, out, err = shell('d.db', "CREATE VIRTUAL TABLE ro USING bitcask(dir='nothere', readonly=1);", bail=False)
check('readonly=1 on a missing store refused, nothing created', rc != 0 and not os.path.exists('nothere'), err)

# ---- in-memory databases
rc, out, err = shell(':memory:', "CREATE VIRTUAL TABLE m USING bitcask;", "INSERT INTO m VALUES (1, 1);",
                     "SELECT json_extract(bitcask_stats('m'), '$.dir');")
check('in-memory default store is private and gone after close', rc == 0 and out and not os.path.exists(out), (out, err))
rc, out, err = shell(':memory:', "CREATE VIRTUAL TABLE m USING bitcask(dir='%s/owned');" % T, "INSERT INTO m VALUES (1, 1);")
rc, out, err = shell(':memory:', "CREATE VIRTUAL TABLE m USING bitcask(dir='%s/owned');" % T, "SELECT count(*) FROM m;",
                     "DROP TABLE m;")
check('in-memory explicit dir with no owner: DROP deletes it', rc == 0 and out == '1' and not os.path.exists('owned'), (out, err))
shell('o.db', "CREATE VIRTUAL TABLE k USING bitcask(dir='%s/owned2');" % T, "INSERT INTO k VALUES (1, 1);")
rc, out, err = shell(':memory:', "CREATE VIRTUAL TABLE m USING bitcask(dir='%s/owned2');" % T, "SELECT count(*) FROM m;",
                     "DROP TABLE m;")
check('in-memory table on an owned store: DROP leaves it', rc == 0 and os.path.exists('owned2/BITCASK'), (out, err))
rc, out, err = shell('o.db', "SELECT count(*) FROM k;")
check('... and the owner still reads it', out == '1', (out, err))

# ---- rename onto an existing directory refused, nothing lost
shell('r.db', "CREATE VIRTUAL TABLE a USING bitcask;", "INSERT INTO a VALUES (1, 'a');")
os.mkdir('r.db-c.bitcask'); open('r.db-c.bitcask/precious', 'w').write('p')
rc, out, err = shell('r.db', "ALTER TABLE a RENAME TO c;", bail=False)
check('rename onto an existing directory refused', rc != 0 and os.listdir('r.db-c.bitcask') == ['precious'], (rc, err))
rc, out, err = shell('r.db', "SELECT value FROM a;")
check('... a intact', out == 'a', (out, err))

shutil.rmtree(T, ignore_errors=True)
finish()
