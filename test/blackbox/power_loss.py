#!/usr/bin/python3
# Black-box attack: power loss under sync='full', by hand per docs/FORMAT.md.
# Contract: "A transaction commits all-or-nothing, also across a crash and a
# power loss under sync=full: only what was fsync'd survives, unsynced sectors
# in any order: every acknowledged commit is present whole and readable;
# nothing uncommitted shadows a committed version."
#
# The store gets ('a','committed'),('b','committed') (one commit), then one
# transaction: INSERT OR REPLACE a 3,000-byte value for 'a' and 'new' for 'b',
# COMMIT, and the writer dies at once (os._exit: no close, no hint of the
# active file).  Then, with no process on the store, sectors (512-byte,
# aligned to the file) of the byte range that last transaction appended are
# overwritten with zeros -- as if the power failed while that commit's
# sectors were in flight, each sector independently -- and the store is
# reopened by a new process: 'a' must read 'committed' (with b='committed')
# or the new value (with b='new'), never an error; SELECT * must work, and a
# write after the recovery must work and leave the same answers.
#
# usage: /usr/bin/python3 test/blackbox/power_loss.py build/bitcask
import os, sys, json, shutil, subprocess, random, textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bb import EXT, check, finish, tmpdir, shell
T = tmpdir('power')
NEW_A = 'N' * 3000


WRITER = textwrap.dedent('''
    import os, sys, json, sqlite3, glob
    ext, db = sys.argv[1], sys.argv[2]
    store = os.path.join(os.path.dirname(db), 'store')
    def sizes():
        return {os.path.basename(f): os.path.getsize(f) for f in glob.glob(store + '/*.data')}
    con = sqlite3.connect(db, isolation_level=None)
    con.enable_load_extension(True); con.load_extension(ext)
    con.execute("CREATE VIRTUAL TABLE kv USING bitcask(dir='store', sync='full')")
    con.execute("INSERT INTO kv VALUES ('a', 'committed'), ('b', 'committed')")
    before = sizes()
    con.execute("BEGIN")
    con.execute("INSERT OR REPLACE INTO kv VALUES ('a', ?)", ('N' * 3000,))
    con.execute("INSERT OR REPLACE INTO kv VALUES ('b', 'new')")
    con.execute("COMMIT")
    after = sizes()
    print(json.dumps({'before': before, 'after': after}), flush=True)
    os._exit(0)      # power fails right after the acknowledgement: nothing more written
''')

base = os.path.join(T, 'pristine'); os.mkdir(base)
p = subprocess.run(['/usr/bin/python3', '-c', WRITER, EXT, os.path.join(base, 'app.db')],
                   capture_output=True, text=True, timeout=60)
check('writer ran', p.returncode == 0, p.stderr)
info = json.loads(p.stdout)
changed = [f for f in info['after'] if info['after'][f] != info['before'].get(f, 0)]
check('the last transaction appended to one data file', len(changed) == 1, str(info))
dfile = changed[0]
s0, s1 = info['before'].get(dfile, 0), info['after'][dfile]
print('  (last transaction appended bytes [%d, %d) of %s: %d bytes)' % (s0, s1, dfile, s1 - s0))
check('the appended range holds the 3,000-byte value', s1 - s0 > 3000)
sectors = []                                  # (start, end) of each sector within the range
blk = s0 // 512
while blk * 512 < s1:
    sectors.append((max(s0, blk * 512), min(s1, (blk + 1) * 512)))
    blk += 1
print('  (%d sectors touched)' % len(sectors))
hints = [f for f in os.listdir(os.path.join(base, 'store')) if f.endswith('.hint')]

OK = {('committed', 'committed'), (NEW_A, 'new')}


def short(v):
    return v if not isinstance(v, str) or len(v) < 20 else '%s...(%d bytes)' % (v[:8], len(v))


def run_case(label, zero):
    d = os.path.join(T, 'case'); shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(base, d)
    path = os.path.join(d, 'store', dfile)
    with open(path, 'r+b') as f:
        for i in zero:
            a, b = sectors[i]
            f.seek(a); f.write(b'\0' * (b - a))
    db = os.path.join(d, 'app.db')
    rc, out, err = shell(db, '.mode list', "SELECT json_object('a', (SELECT value FROM kv WHERE key = 'a'), "
                         "'b', (SELECT value FROM kv WHERE key = 'b'));")
    if rc != 0:
        check(label + ': a and b read after the power loss', False, 'error: %s' % err)
        return
    r = json.loads(out)
    got = (r['a'], r['b'])
    check(label + ": a and b read a committed state, whole", got in OK,
          'a=%r b=%r' % (short(got[0]), short(got[1])))
    rc, out, err = shell(db, '.mode json', 'SELECT key, value FROM kv;')
    if rc != 0:
        check(label + ': SELECT * FROM kv works', False, 'error: %s' % err)
        return
    rows = {x['key']: x['value'] for x in json.loads(out)} if out else {}
    check(label + ': SELECT * FROM kv agrees with the point reads',
          rows == {'a': got[0], 'b': got[1]}, 'rows %s' % {k: short(v) for k, v in rows.items()})
    rc, out, err = shell(db, "INSERT INTO kv VALUES ('c', 'later');")
    check(label + ': the store is writable after the recovery', rc == 0, err)
    rc, out, err = shell(db, '.mode list', "SELECT json_object('a', (SELECT value FROM kv WHERE key = 'a'), "
                         "'b', (SELECT value FROM kv WHERE key = 'b'), 'c', (SELECT value FROM kv WHERE key = 'c'));")
    if rc != 0:
        check(label + ': reads after the later write', False, 'error: %s' % err)
        return
    r = json.loads(out)
    check(label + ': after a later write, a/b unchanged and c present',
          (r['a'], r['b']) == got and r['c'] == 'later', 'a=%r b=%r c=%r' % (short(r['a']), short(r['b']), r['c']))


run_case('no damage (control)', [])
run_case('2nd sector zeroed', [1])
for i in range(len(sectors)):
    if i != 1:
        run_case('sector %d zeroed' % i, [i])
rnd = random.Random(20261203)
seen = set()
for _ in range(16):
    k = rnd.randint(2, max(2, len(sectors) - 1))
    sub = tuple(sorted(rnd.sample(range(len(sectors)), min(k, len(sectors)))))
    if sub in seen:
        continue
    seen.add(sub)
    run_case('sectors %s zeroed' % (list(sub),), list(sub))
run_case('whole range zeroed', list(range(len(sectors))))

shutil.rmtree(T, ignore_errors=True)
finish()
