#!/usr/bin/python3
# Black-box (attack2): a format-1 store built by hand from docs/FORMAT.md (marker
# "format 1", version-1 data files with 8-byte COMMITs, a hint, no OWNERS) must open,
# read, take new writes, merge; a marker of a newer format is refused.
# usage: /usr/bin/python3 test/blackbox/format1_upgrade.py build/bitcask
import os, sys, json, shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bb import check, finish, tmpdir, shell, stats
import struct, zlib

T = tmpdir('fmt1')
PUT, TOMB, COMMIT, RBTO = 1, 2, 3, 4


def tkey(s):
    return b'\x30' + s.encode()


def rec(typ, meta, seq, txn, key, value):
    body = struct.pack('<BBHQQII', typ, meta, 0, seq, txn, len(key), len(value)) + key + value
    return struct.pack('<I', zlib.crc32(body) & 0xffffffff) + body


def fheader(version, fid, flags=0):
    h = b'BCASKDAT' + struct.pack('<III', version, flags, fid) + b'\0' * 8
    return h + struct.pack('<I', zlib.crc32(h) & 0xffffffff)


def build_data(fid, records):
    """records: list of (typ, meta, seq, txn, key, value); returns (bytes, entries)"""
    out = bytearray(fheader(1, fid))
    entries = []
    for r in records:
        entries.append((r, len(out)))
        out += rec(*r)
    return bytes(out), entries


def build_hint(fid, data_size, entries):
    h = b'BCASKHNT' + struct.pack('<IIQI', 1, fid, data_size, 0)
    out = bytearray(h + struct.pack('<I', zlib.crc32(h) & 0xffffffff))
    for (typ, meta, seq, txn, key, value), off in entries:
        k = key if typ in (PUT, TOMB) else value[:8]
        out += struct.pack('<BBHIIIQQQ', typ, meta, 0, len(key) if typ in (PUT, TOMB) else len(k),
                           len(value), 0, seq, txn, off) + k
    crc = zlib.crc32(bytes(out)) & 0xffffffff          # every byte before the trailer
    out += b'BCHE' + struct.pack('<III', len(entries), 0, crc)
    return bytes(out)


def txt(v):
    return (3, v.encode())


def make_store(path, marker_format=1):
    os.mkdir(path)
    with open(os.path.join(path, 'BITCASK'), 'w') as f:
        f.write('bitcask-sqlite store\nformat %d\ncreated-dir 0\n' % marker_format)
    seq = 1
    r1 = []
    for i in range(50):
        m, v = txt('v1-%d' % i)
        r1.append((PUT, m, seq, 0, tkey('k%02d' % i), v)); seq += 1
    r1.append((PUT, 1, seq, 0, tkey('int'), struct.pack('<q', -7))); seq += 1
    r1.append((TOMB, 0, seq, 0, tkey('k00'), b'')); seq += 1
    d1, e1 = build_data(1, r1)
    open(os.path.join(path, '0000000001.data'), 'wb').write(d1)
    open(os.path.join(path, '0000000001.hint'), 'wb').write(build_hint(1, len(d1), e1))
    # file 2: the tail, version 1, with 8-byte COMMITs
    r2 = []
    txn = seq
    for i in range(10, 20):           # overwrite k10..k19 in one transaction
        m, v = txt('t1-%d' % i)
        r2.append((PUT, m, seq, txn, tkey('k%02d' % i), v)); seq += 1
    r2.append((TOMB, 0, seq, txn, tkey('k01'), b'')); seq += 1
    r2.append((COMMIT, 0, seq, txn, b'', struct.pack('<Q', 11))); seq += 1
    txn2 = seq                        # a transaction with a rolled-back savepoint
    m, v = txt('t2-keep'); r2.append((PUT, m, seq, txn2, tkey('k20'), v)); seq += 1
    sp = seq - 1
    m, v = txt('t2-undone'); r2.append((PUT, m, seq, txn2, tkey('k21'), v)); seq += 1
    r2.append((RBTO, 0, seq, txn2, b'', struct.pack('<Q', sp))); seq += 1
    r2.append((COMMIT, 0, seq, txn2, b'', struct.pack('<Q', 1))); seq += 1
    txn3 = seq                        # uncommitted at the end: discarded
    m, v = txt('t3-never'); r2.append((PUT, m, seq, txn3, tkey('k30'), v)); seq += 1
    m, v = txt('solo'); r2.append((PUT, m, seq, 0, tkey('solo'), v)); seq += 1
    d2, e2 = build_data(2, r2)
    open(os.path.join(path, '0000000002.data'), 'wb').write(d2)
    return seq


def expected():
    e = {}
    for i in range(50):
        e['k%02d' % i] = 'v1-%d' % i
    e['int'] = -7
    del e['k00']
    for i in range(10, 20):
        e['k%02d' % i] = 't1-%d' % i
    del e['k01']
    e['k20'] = 't2-keep'
    e['solo'] = 'solo'
    return e


def read_all(db, table, cwd=None):
    rc, out, err = shell(db, '.mode json', 'SELECT key, value, typeof(value) AS t FROM %s;' % table, cwd=cwd)
    if rc != 0:
        return None, err
    return ({r['key']: r['value'] for r in json.loads(out)} if out else {}), err

store = os.path.join(T, 'old')
next_seq = make_store(store)
db = os.path.join(T, 'app.db')
r = shell(db, "CREATE VIRTUAL TABLE kv USING bitcask(dir='old');")
check('format-1 store (no OWNERS) adopted by CREATE', r[0] == 0, r)
got, err = read_all(db, 'kv')
want = expected()
check('format-1 store: every row reads as written (hint + tail, 8-byte COMMITs, rollback-to, uncommitted dropped)',
      got == want, 'missing=%r extra=%r diff=%r err=%r' % (
          sorted(set(want) - set(got or {})), sorted(set(got or {}) - set(want)),
          {k: (got[k], want[k]) for k in set(want) & set(got or {}) if got[k] != want[k]}, err))
r = shell(db, "SELECT typeof(value) FROM kv WHERE key='int';", "SELECT count(*) FROM kv;")
check('format-1: integer value and count', r[1].split('\n') == ['integer', str(len(want))], r)
s, e = stats(db, 'kv')
check('format-1 stats: damaged 0, corrupt 0, truncated 0', s is not None and s['damaged_files'] == 0 and
      s['corrupt_records'] == 0 and s['truncated_bytes'] == 0, (s, e))
check('format-1 stats: the version-1 hint is used (hint_files 1)', s is not None and s['hint_files'] == 1, s)
check('format-1 stats: next_seq > highest seq', s is not None and s['next_seq'] >= next_seq, (s, next_seq))
# new writes
r = shell(db, "INSERT INTO kv VALUES ('new1', 'n1');", "INSERT OR REPLACE INTO kv VALUES ('k05', 'over');",
          "DELETE FROM kv WHERE key = 'k06';", "BEGIN;", "INSERT INTO kv VALUES ('new2', 2);", "COMMIT;")
check('format-1 store takes new writes', r[0] == 0, r)
want.update({'new1': 'n1', 'k05': 'over', 'new2': 2}); del want['k06']
got, err = read_all(db, 'kv')
check('format-1: after writes, reopen reads all', got == want, (got, err))
v1 = struct.unpack('<I', open(os.path.join(store, '0000000002.data'), 'rb').read()[8:12])[0]
check('format-1 tail file not appended to (stays version 1)', v1 == 1, v1)
newest = sorted(f for f in os.listdir(store) if f.endswith('.data'))[-1]
vn = struct.unpack('<I', open(os.path.join(store, newest), 'rb').read()[8:12])[0]
check('new active file is version 2 (%s)' % newest, newest != '0000000002.data' and vn == 2, (newest, vn))
check('marker still says format 1', 'format 1\n' in open(os.path.join(store, 'BITCASK')).read())
r = shell(db, "SELECT bitcask_merge('kv') >= 0;", "SELECT count(*) FROM kv;")
check('format-1 store: merge', r[0] == 0 and r[1].split('\n') == ['1', str(len(want))], r)
got, err = read_all(db, 'kv')
check('format-1 store: all rows after merge + reopen', got == want, (got, err))
s, e = stats(db, 'kv')
check('format-1 after merge stats sane', s is not None and s['damaged_files'] == 0 and s['keys'] == len(want), s)
r = shell(db, "DROP TABLE kv;")
check('format-1 store: DROP deletes it (created-dir 0: dir stays, files gone)', r[0] == 0 and
      (not os.path.exists(store) or not [f for f in os.listdir(store)]), (r, os.listdir(store) if os.path.exists(store) else None))

# readonly open of a format-1 store
store2 = os.path.join(T, 'old2')
make_store(store2)
r = shell(os.path.join(T, 'ro.db'), "CREATE VIRTUAL TABLE r USING bitcask(dir='old2', readonly=1);", '.mode json',
          "SELECT key, value FROM r;")
try:
    got = {x['key']: x['value'] for x in json.loads(r[1].split('\n', 0)[0])} if r[0] == 0 else None
except Exception:
    got = None
check('format-1 store read by readonly=1', got == expected(), r)
check('readonly open of a format-1 store writes nothing', sorted(os.listdir(store2)) ==
      ['0000000001.data', '0000000001.hint', '0000000002.data', 'BITCASK'], os.listdir(store2))

# marker format 3: refused, clear
store3 = os.path.join(T, 'new3')
make_store(store3, marker_format=3)
r = shell(os.path.join(T, 'v3.db'), "CREATE VIRTUAL TABLE kv USING bitcask(dir='new3');", "SELECT count(*) FROM kv;", bail=False)
check('marker format 3 refused with an error naming the version', r[0] != 0 and ('version' in r[2].lower() or 'format' in r[2].lower()), r)
check('format-3 store left untouched', sorted(os.listdir(store3)) ==
      ['0000000001.data', '0000000001.hint', '0000000002.data', 'BITCASK'], os.listdir(store3))

shutil.rmtree(T, ignore_errors=True)
finish()
