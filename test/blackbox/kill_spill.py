#!/usr/bin/python3
# Black-box (attack2): a writer of tens of thousands of small rows (the active
# file's hint spilled to <id>.hint.tmp) killed with SIGKILL, reopened in a new process:
# every acknowledged row, no error, sane stats, a later merge, no *.tmp after a clean close.
# usage: /usr/bin/python3 test/blackbox/kill_spill.py build/bitcask
import os, sys, json, subprocess, shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bb import EXT, check, finish, tmpdir, shell
import signal, time, glob

T = tmpdir('spill')
PY = '/usr/bin/python3'
WRITER = r'''
import sqlite3, sys
db, ext, mfs, start, batch, sync = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
c = sqlite3.connect(db, isolation_level=None)
c.enable_load_extension(True)
c.load_extension(ext)
c.execute("CREATE VIRTUAL TABLE IF NOT EXISTS kv USING bitcask(max_file_size='%s', sync='%s')" % (mfs, sync))
i = start
while True:
    c.execute('BEGIN')
    for j in range(batch):
        c.execute('INSERT OR REPLACE INTO kv VALUES (?, ?)', (i + j, 'v%d' % (i + j)))
    c.execute('COMMIT')
    i += batch
    sys.stdout.write('%d\n' % i)
    sys.stdout.flush()
'''


def run_and_kill(db, mfs, start, target, batch=200, sync='full', watch_tmp=None):
    """Start a writer, wait until it acknowledged >= target rows, SIGKILL it.
    Returns (acknowledged upper bound, saw_hint_tmp, stderr)."""
    p = subprocess.Popen([PY, '-c', WRITER, db, EXT, mfs, str(start), str(batch), sync],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acked = start
    saw = False
    t0 = time.time()
    while acked < target and time.time() - t0 < 20:
        line = p.stdout.readline()
        if not line:
            break
        acked = int(line)
        if watch_tmp and not saw and glob.glob(os.path.join(watch_tmp, '*.hint.tmp')):
            saw = True
    p.send_signal(signal.SIGKILL)
    # rows acknowledged after our last read may also be there: drain
    rest = p.stdout.read()
    for line in rest.split():
        acked = int(line)
    p.wait()
    return acked, saw, p.stderr.read()


def verify(db, acked, tag, allow_more=True):
    rc, out, err = shell(db, "SELECT count(*), min(key), max(key) FROM kv;",
                         "SELECT count(*) FROM kv WHERE value != 'v' || key;",
                         "SELECT bitcask_stats('kv');")
    lines = out.split('\n')
    check('%s: reopen without error' % tag, rc == 0 and err == '', (rc, err))
    if rc != 0 or len(lines) < 3:
        return None
    cnt, mn, mx = lines[0].split('|')
    cnt = int(cnt)
    check('%s: every acknowledged row is there (acked %d, found %d, max key %s)' % (tag, acked, cnt, mx),
          cnt >= acked and mn == '0' and int(mx) == cnt - 1, lines[0])
    check('%s: no row has a wrong value' % tag, lines[1] == '0', lines[1])
    s = json.loads(lines[2])
    check('%s: stats sane (damaged 0, corrupt 0, keys=count, open<=max+1)' % tag,
          s['damaged_files'] == 0 and s['corrupt_records'] == 0 and s['keys'] == cnt and
          s['open_files'] <= s['max_open_files'] + 1, s)
    return cnt, s

# ---- 1. one big active file (default 64MB), tens of thousands of rows, SIGKILL
d = os.path.join(T, 'one'); os.mkdir(d)
db = os.path.join(d, 'app.db')
store = db + '-kv.bitcask'
acked, saw, err = run_and_kill(db, '64MB', 0, 40000, batch=500, watch_tmp=store)
check('writer 1 reached tens of thousands of rows', acked >= 40000, (acked, err))
check('the active file\'s hint spilled to <id>.hint.tmp while writing (README Limits)', saw,
      sorted(os.listdir(store)))
print('  info: after SIGKILL: %s' % sorted(os.listdir(store)))
r = verify(db, acked, 'kill#1')
# ro open first? -> a fresh readonly database
rc, out, err = shell(os.path.join(d, 'ro.db'), "CREATE VIRTUAL TABLE r USING bitcask(dir='%s', readonly=1);" % store,
                     "SELECT count(*) FROM r;")
check('kill#1: readonly open sees the same rows', r is not None and out == str(r[0]), (out, err))
tmps = glob.glob(os.path.join(store, '*.tmp'))
check('kill#1: no *.tmp left after the reopen closed cleanly', not tmps, tmps)
# second round: continue the tail, kill again
acked2, saw2, err = run_and_kill(db, '64MB', r[0] if r else 0, (r[0] if r else 0) + 30000, batch=500, watch_tmp=store)
r2 = verify(db, acked2, 'kill#2 (tail continued after a crash)')
# clean writes, then a merge (seals the tail: its hint must cover records from before the crash)
rc, out, err = shell(db, "INSERT INTO kv VALUES (-1, 'v-1');", "DELETE FROM kv WHERE key = -1;",
                     "SELECT bitcask_merge('kv') >= 0;")
check('merge after two crashes', rc == 0 and out == '1', (out, err))
r3 = verify(db, acked2, 'after merge')
tmps = glob.glob(os.path.join(store, '*.tmp'))
check('after merge + clean close: no *.tmp', not tmps, tmps)

# ---- 2. rotation mid-run (1MB files): sealed files get their hint from the spill; kill; reopen
d = os.path.join(T, 'rot'); os.mkdir(d)
db = os.path.join(d, 'app.db')
store = db + '-kv.bitcask'
acked, saw, err = run_and_kill(db, '1MB', 0, 50000, batch=1000, watch_tmp=store)
r = verify(db, acked, 'rotating kill')
if r:
    s = r[1]
    check('rotating kill: every sealed file has a hint (hint_files >= files - 1)',
          s['files'] > 1 and s['hint_files'] >= s['files'] - 1, s)
# validate the sealed hints by reopening read-only and comparing
rc, out, err = shell(os.path.join(d, 'ro.db'), "CREATE VIRTUAL TABLE r USING bitcask(dir='%s', readonly=1);" % store,
                     "SELECT count(*), sum(value = 'v' || key) FROM r;")
check('rotating kill: readonly open agrees', r is not None and out == '%d|%d' % (r[0], r[0]), (out, err))
rc, out, err = shell(db, "SELECT bitcask_merge('kv') > 0;")
check('rotating kill: merge', rc == 0, (out, err))
verify(db, acked, 'rotating kill, after merge')
tmps = glob.glob(os.path.join(store, '*.tmp'))
check('rotating: no *.tmp after clean close', not tmps, tmps)

# ---- 3. sync=off writer killed: process kill loses nothing committed (README Durability)
d = os.path.join(T, 'off'); os.mkdir(d)
db = os.path.join(d, 'app.db')
acked, saw, err = run_and_kill(db, '64MB', 0, 30000, batch=100, sync='off')
verify(db, acked, 'sync=off kill')

# ---- 4. killed inside one big transaction: none of it, all earlier commits
d = os.path.join(T, 'bigtxn'); os.mkdir(d)
db = os.path.join(d, 'app.db')
store = db + '-kv.bitcask'
acked, saw, err = run_and_kill(db, '64MB', 0, 20000, batch=1000)
BIG = r"""
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.enable_load_extension(True); c.load_extension(sys.argv[2])
c.execute('BEGIN')
for i in range(1000000, 1200000):
    c.execute('INSERT INTO kv VALUES (?, ?)', (i, 'big'))
    if i == 1150000:
        sys.stdout.write('deep\n'); sys.stdout.flush()
        sys.stdin.readline()
"""
p = subprocess.Popen([PY, '-c', BIG, db, EXT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
line = p.stdout.readline()
check('big transaction reached 150,000 pending rows', line.strip() == 'deep', (line, p.stderr.read() if not line else ''))
print('  info: inside the big transaction: %s' % sorted(os.listdir(store)))
p.kill(); p.wait()
r = verify(db, acked, 'killed inside a big transaction')
rc, out, err = shell(db, "SELECT count(*) FROM kv WHERE value = 'big';")
check('killed big transaction left none of its rows', out == '0', (out, err))
# a big rolled-back transaction and a savepoint, then seal (merge) and reopen
rc, out, err = shell(db, "BEGIN;", "INSERT INTO kv SELECT value + 2000000, 'rb' FROM generate_series(1, 50000);",
                     "ROLLBACK;", "BEGIN;", "INSERT INTO kv VALUES (-5, 'v-5');", "SAVEPOINT s;",
                     "INSERT INTO kv SELECT value + 3000000, 'sp' FROM generate_series(1, 30000);", "ROLLBACK TO s;",
                     "RELEASE s;", "COMMIT;", "SELECT bitcask_merge('kv') >= 0;")
check('rolled-back big transaction + savepoint, then merge', rc == 0, (out, err))
rc, out, err = shell(db, "SELECT count(*) FROM kv WHERE value IN ('rb', 'sp');", "SELECT value FROM kv WHERE key = -5;",
                     "SELECT json_extract(bitcask_stats('kv'), '$.damaged_files');")
check('after reopen: rolled-back rows absent, committed one present, damaged 0', out.split('\n') == ['0', 'v-5', '0'], (out, err))

# ---- 5. killed during a merge (at several moments); reopen: all rows, no leftovers after a clean close
d = os.path.join(T, 'merge'); os.mkdir(d)
db = os.path.join(d, 'app.db')
store = db + '-kv.bitcask'
rc, out, err = shell(db, "CREATE VIRTUAL TABLE kv USING bitcask(max_file_size='256KB');",
                     "INSERT INTO kv SELECT value, 'v' || value FROM generate_series(0, 59999);",
                     "UPDATE kv SET value = 'v' || key WHERE key % 3 = 0;")
check('merge-kill setup', rc == 0, err)
MERGER = r"""
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.enable_load_extension(True); c.load_extension(sys.argv[2])
c.execute("SELECT count(*) FROM kv").fetchone()
sys.stdout.write('go\n'); sys.stdout.flush()
c.execute("SELECT bitcask_merge('kv')").fetchone()
sys.stdout.write('merged\n'); sys.stdout.flush()
"""
for delay in (0.0, 0.005, 0.02, 0.05):
    p = subprocess.Popen([PY, '-c', MERGER, db, EXT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdout.readline()
    time.sleep(delay)
    p.kill(); p.wait()
    verify(db, 60000, 'killed %.3fs into a merge' % delay)
    left = [f for f in os.listdir(store) if f.endswith('.tmp') or f.endswith('.merging') or f == 'MERGE']
    check('killed %.3fs into a merge: no *.tmp, *.merging, MERGE after the clean reopen' % delay, not left, left)

# ---- 6. a readonly reader that opens the killed writer's store before any writer recovers it
d = os.path.join(T, 'roafter'); os.mkdir(d)
db = os.path.join(d, 'app.db')
store = db + '-kv.bitcask'
acked, saw, err = run_and_kill(db, '64MB', 0, 30000, batch=500, watch_tmp=store)
before = sorted(os.listdir(store))
rc, out, err = shell(os.path.join(d, 'ro.db'), "CREATE VIRTUAL TABLE r USING bitcask(dir='%s', readonly=1);" % store,
                     "SELECT count(*), sum(value = 'v' || key) FROM r;",
                     "SELECT json_extract(bitcask_stats('r'), '$.damaged_files');")
lines = out.split('\n')
check('readonly before recovery: every acknowledged row (acked %d)' % acked, rc == 0 and len(lines) == 2 and
      int(lines[0].split('|')[0]) >= acked and lines[0].split('|')[0] == lines[0].split('|')[1] and lines[1] == '0', (out, err))
check('readonly before recovery: store files untouched', sorted(os.listdir(store)) == before, (before, os.listdir(store)))
verify(db, acked, 'writer after the readonly look')

shutil.rmtree(T, ignore_errors=True)
finish()
