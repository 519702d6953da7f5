#!/usr/bin/python3
# Black-box attack: damaged sealed files, per docs/FORMAT.md.  Contract:
# "Damage never gives a silently wrong answer: a key whose newest version is
# lost reads as SQLITE_CORRUPT, never as an older version or as absent,
# wherever the store has evidence of what was there (hint file, sequence
# numbers, next file); a merge never deletes a record it cannot account for."
#
# A store with several sealed files (max_file_size='4KB'), overwrites and
# deletes across files, hint files present; then, in copies of it: a bit of a
# sealed file's header file_id flipped; a sealed file truncated to its 32-byte
# header (hint intact); bytes flipped in a record in the middle of a sealed
# file (value, and the seq field); a data file deleted but its hint kept.
# Also a 200-row transaction spread over several files, with a byte of the
# header of the first file it wrote flipped.  For each: every key must read
# its latest committed value or SQLITE_CORRUPT -- never an older value, never
# a deleted key back, never a live key missing; a full scan must either fail
# or return exactly the live rows; and after SELECT bitcask_merge('kv') (in
# the same process, and again in a new process) the same must hold.
#
# usage: /usr/bin/python3 test/blackbox/damaged_files.py build/bitcask
import os, sys, json, struct, shutil, subprocess, textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bb import EXT, check, finish, tmpdir
T = tmpdir('damage')
VERBOSE = os.environ.get('BB_VERBOSE')


def pyrun(code, *args, timeout=60):
    p = subprocess.run(['/usr/bin/python3', '-c', code, EXT] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


# ---------------------------------------------------------------- the checker
# Runs in a new process: probes every key, scans, merges, probes and scans again.
PROBE = textwrap.dedent(r'''
    import sys, json, sqlite3
    ext, db, keys, do_merge = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4] == '1'
    def code(e):
        return getattr(e, 'sqlite_errorcode', -1)
    out = {}
    try:
        con = sqlite3.connect(db, isolation_level=None)
        con.enable_load_extension(True); con.load_extension(ext)
    except sqlite3.Error as e:
        print(json.dumps({'open_error': [code(e), str(e)]})); sys.exit(0)
    def probe():
        r = {}
        for k in keys:
            try:
                row = con.execute('SELECT value FROM kv WHERE key = ?', (k,)).fetchone()
                r[k] = ['absent'] if row is None else ['value', row[0]]
            except sqlite3.Error as e:
                r[k] = ['error', code(e), str(e)]
        try:
            r['*scan*'] = ['rows', dict(con.execute('SELECT key, value FROM kv').fetchall())]
        except sqlite3.Error as e:
            r['*scan*'] = ['error', code(e), str(e)]
        return r
    out['before'] = probe()
    if do_merge:
        try:
            out['merge'] = ['ok', con.execute("SELECT bitcask_merge('kv')").fetchone()[0]]
        except sqlite3.Error as e:
            out['merge'] = ['error', code(e), str(e)]
        out['after'] = probe()
    print(json.dumps(out))
''')


def short(v):
    if isinstance(v, str) and len(v) > 24:
        return v[:18] + '..'
    return v


def judge(case, phase, res, live, deleted):
    """live: key -> latest value; deleted: keys whose latest version is a tombstone."""
    bad = []
    for k in sorted(live) + sorted(deleted):
        r = res[k]
        if r[0] == 'error':
            if r[1] & 0xff != 11:
                bad.append('%s: error other than SQLITE_CORRUPT: (%d) %s' % (k, r[1], r[2]))
            continue
        if k in live:
            if r[0] == 'absent':
                bad.append('%s: live key missing (latest %r)' % (k, short(live[k])))
            elif r[1] != live[k]:
                bad.append('%s: wrong value %r (latest %r)' % (k, short(r[1]), short(live[k])))
        else:
            if r[0] == 'value':
                bad.append('%s: deleted key back with %r' % (k, short(r[1])))
    ncorrupt = sum(1 for k in list(live) + list(deleted) if res[k][0] == 'error')
    check('%s [%s]: every key reads its latest value or SQLITE_CORRUPT' % (case, phase), not bad,
          '%d bad keys of %d (%d read CORRUPT): %s' % (len(bad), len(live) + len(deleted), ncorrupt,
                                                         '; '.join(bad[:6])))
    s = res['*scan*']
    if s[0] == 'rows':
        rows = s[1]
        missing = sorted(k for k in live if k not in rows)
        wrong = sorted(k for k in live if k in rows and rows[k] != live[k])
        back = sorted(k for k in deleted if k in rows)
        check('%s [%s]: a successful full scan returns exactly the live rows' % (case, phase),
              not missing and not wrong and not back,
              'scan returned %d rows: %d live keys missing %s, %d wrong %s, %d deleted back %s' % (
                  len(rows), len(missing), missing[:4], len(wrong),
                  [(k, short(rows[k])) for k in wrong[:3]], len(back), back[:4]))
    elif s[1] & 0xff != 11:
        check('%s [%s]: a failing full scan says SQLITE_CORRUPT' % (case, phase), False,
              '(%d) %s' % (s[1], s[2]))
    if VERBOSE:
        print('  %s [%s]: %d keys CORRUPT, scan %s' % (case, phase, ncorrupt, s[0]))


def run_checks(case, d, live, deleted):
    db = os.path.join(d, 'app.db')
    keys = json.dumps(sorted(live) + sorted(deleted))
    rc, out, err = pyrun(PROBE, db, keys, '1')
    if rc != 0:
        check(case + ': checker process ran', False, err.strip()[-400:])
        return
    r = json.loads(out)
    if 'open_error' in r:
        check(case + ': open fails only with SQLITE_CORRUPT', r['open_error'][0] & 0xff == 11, str(r))
        return
    judge(case, 'reopen', r['before'], live, deleted)
    if r['merge'][0] == 'error':
        print('  (%s: merge refused: (%d) %s)' % (case, r['merge'][1], r['merge'][2]))
        check(case + ': a refused merge says SQLITE_CORRUPT', r['merge'][1] & 0xff == 11, str(r['merge']))
    judge(case, 'after merge', r['after'], live, deleted)
    rc, out, err = pyrun(PROBE, db, keys, '0')
    if rc != 0:
        check(case + ': checker process ran (after merge)', False, err.strip()[-400:])
        return
    r = json.loads(out)
    if 'open_error' in r:
        check(case + ': reopen after merge fails only with SQLITE_CORRUPT', r['open_error'][0] & 0xff == 11, str(r))
        return
    judge(case, 'new process after merge', r['before'], live, deleted)


# ---------------------------------------------------------------- the format
def parse(path):
    """Records of a data file per docs/FORMAT.md: list of dicts."""
    data = open(path, 'rb').read()
    recs, off = [], 32
    while off + 32 <= len(data):
        crc, typ, meta, _, seq, txn, ks, vs = struct.unpack_from('<IBBHQQII', data, off)
        recs.append(dict(off=off, type=typ, seq=seq, txn=txn, ksize=ks, vsize=vs,
                         key=data[off + 32:off + 32 + ks]))
        off += 32 + ks + vs
    return recs


def flip(path, off, mask=0x01):
    with open(path, 'r+b') as f:
        f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ mask]))


# ---------------------------------------------------------------- store 1
BUILD1 = textwrap.dedent(r'''
    import sys, json, sqlite3
    ext, db = sys.argv[1], sys.argv[2]
    con = sqlite3.connect(db, isolation_level=None)
    con.enable_load_extension(True); con.load_extension(ext)
    con.execute("CREATE VIRTUAL TABLE kv USING bitcask(dir='store', max_file_size='4KB', sync='off')")
    live, deleted = {}, set()
    def put(k, v):
        con.execute('INSERT OR REPLACE INTO kv VALUES (?, ?)', (k, v)); live[k] = v; deleted.discard(k)
    def delete(k):
        con.execute('DELETE FROM kv WHERE key = ?', (k,)); live.pop(k, None); deleted.add(k)
    pad = 'x' * 200
    for i in range(40): put('k%02d' % i, 'v1-k%02d-%s' % (i, pad))
    for i in range(20): put('k%02d' % i, 'v2-k%02d-%s' % (i, pad))
    for i in range(30, 35): delete('k%02d' % i)
    for i in range(5, 10): put('k%02d' % i, 'v3-k%02d-%s' % (i, pad))
    for i in range(40, 45): put('k%02d' % i, 'v1-k%02d-%s' % (i, pad))
    delete('k40'); delete('k12')
    for i in range(20, 25): put('k%02d' % i, 'v2-k%02d-%s' % (i, pad))
    for i in range(45, 60): put('k%02d' % i, 'v1-k%02d-%s' % (i, pad))
    con.close()
    print(json.dumps({'live': live, 'deleted': sorted(deleted)}))
''')

base1 = os.path.join(T, 'store1'); os.mkdir(base1)
rc, out, err = pyrun(BUILD1, os.path.join(base1, 'app.db'))
check('build store 1', rc == 0, err)
m = json.loads(out)
LIVE1, DEL1 = m['live'], set(m['deleted'])
sdir = os.path.join(base1, 'store')
datafiles = sorted(f for f in os.listdir(sdir) if f.endswith('.data'))
sealed = [f for f in datafiles if os.path.exists(os.path.join(sdir, f[:-5] + '.hint'))]
print('  (store 1: %d data files, %d sealed with hints; %d live keys, %d deleted)' % (
    len(datafiles), len(sealed), len(LIVE1), len(DEL1)))
check('store 1 has several sealed files with hints', len(sealed) >= 4, str(datafiles))


def copy1():
    d = os.path.join(T, 'case1'); shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(base1, d)
    return d, os.path.join(d, 'store')


# Control: the undamaged store (a copy: the checker merges).
run_checks('control (no damage)', copy1()[0], LIVE1, DEL1)


for f in sealed:
    recs = parse(os.path.join(sdir, f))
    # a. a bit of the header's file_id flipped
    d, s = copy1(); flip(os.path.join(s, f), 16, 0x01)
    run_checks('%s: file_id bit flipped' % f, d, LIVE1, DEL1)
    # b. truncated to its 32-byte header, hint intact
    d, s = copy1(); os.truncate(os.path.join(s, f), 32)
    run_checks('%s: truncated to header, hint kept' % f, d, LIVE1, DEL1)
    # c. bytes flipped in the middle record: its value, then its seq field
    if recs:
        r = recs[len(recs) // 2]
        if r['vsize'] > 2:
            d, s = copy1(); flip(os.path.join(s, f), r['off'] + 32 + r['ksize'] + r['vsize'] // 2, 0xff)
            run_checks('%s: value byte of record @%d (%r) flipped' % (f, r['off'], r['key'][1:].decode()),
                       d, LIVE1, DEL1)
        d, s = copy1(); flip(os.path.join(s, f), r['off'] + 8, 0x04)
        run_checks('%s: seq byte of record @%d (%r) flipped' % (f, r['off'], r['key'][1:].decode()),
                   d, LIVE1, DEL1)
    # d. data file deleted, hint kept
    d, s = copy1(); os.unlink(os.path.join(s, f))
    run_checks('%s: data file deleted, hint kept' % f, d, LIVE1, DEL1)

# ---------------------------------------------------------------- store 2
BUILD2 = textwrap.dedent(r'''
    import sys, json, sqlite3
    ext, db = sys.argv[1], sys.argv[2]
    con = sqlite3.connect(db, isolation_level=None)
    con.enable_load_extension(True); con.load_extension(ext)
    con.execute("CREATE VIRTUAL TABLE kv USING bitcask(dir='store', max_file_size='4KB', sync='off')")
    live = {}
    for i in range(200):
        con.execute('INSERT INTO kv VALUES (?, ?)', ('t%03d' % i, 'old-%03d' % i)); live['t%03d' % i] = 'old-%03d' % i
    con.execute('BEGIN')
    for i in range(200):
        v = 'txn-%03d-%s' % (i, 'y' * 60)
        con.execute('INSERT OR REPLACE INTO kv VALUES (?, ?)', ('t%03d' % i, v)); live['t%03d' % i] = v
    con.execute('COMMIT')
    con.close()
    print(json.dumps({'live': live}))
''')
base2 = os.path.join(T, 'store2'); os.mkdir(base2)
rc, out, err = pyrun(BUILD2, os.path.join(base2, 'app.db'))
check('build store 2', rc == 0, err)
LIVE2 = json.loads(out)['live']
sdir2 = os.path.join(base2, 'store')
from collections import Counter
per_txn, where = Counter(), {}
for f in sorted(x for x in os.listdir(sdir2) if x.endswith('.data')):
    for r in parse(os.path.join(sdir2, f)):
        if r['txn'] != 0 and r['type'] in (1, 2):
            per_txn[r['txn']] += 1
            where.setdefault(r['txn'], [])
            if f not in where[r['txn']]:
                where[r['txn']].append(f)
big = [t for t, n in per_txn.items() if n == 200]
check('store 2: the 200-row transaction is found in the files', len(big) == 1, str(per_txn.most_common(3)))
txnfiles = where[big[0]] if big else []
print('  (store 2: the 200-row transaction spans %d files: %s..%s)' % (
    len(txnfiles), txnfiles[0] if txnfiles else '-', txnfiles[-1] if txnfiles else '-'))
check('store 2: the transaction spans several files', len(txnfiles) >= 3, str(txnfiles))
d = os.path.join(T, 'case2'); shutil.copytree(base2, d)
run_checks('txn control (no damage)', d, LIVE2, set())
for label, off in (('reserved byte', 20), ('version byte', 8), ('file_id byte', 16), ('magic byte', 0)):
    for which, f in (('first', txnfiles[0]), ('last', txnfiles[-1])):
        d = os.path.join(T, 'case2'); shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(base2, d)
        flip(os.path.join(d, 'store', f), off, 0x10)
        run_checks('txn: %s of the %s file (%s%s) flipped' % (
            label, which, f, '' if which == 'first' else ', the tail file, holds the COMMIT'), d, LIVE2, set())

shutil.rmtree(T, ignore_errors=True)
finish()
