#!/usr/bin/python3
# Black-box (attack2): README "Using it", "Tables sharing a directory", "Transactions",
# "SQL functions" blocks pasted into a fresh shell; bitcask_stats fields; option errors.
# usage: /usr/bin/python3 test/blackbox/readme_claims.py build/bitcask
import os, sys, json, subprocess, shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bb import EXT, check, finish, tmpdir, shell, paste, stats

# ---------------------------------------------------------------- 1. paste
# README "Using it" (needs data/ for kv2: "its parent must exist"), "Tables
# sharing a directory", "Transactions", functions.
T = tmpdir('readme')

USING = r"""
CREATE VIRTUAL TABLE kv USING bitcask;
CREATE VIRTUAL TABLE kv2 USING bitcask(dir='data/kv', max_file_size='64MB', sync='full');
CREATE TABLE users(id, name);
INSERT INTO users VALUES ('user:1', 'ada');
INSERT INTO kv VALUES ('user:1', '{"name":"ada"}');
INSERT OR REPLACE INTO kv VALUES ('user:1', 'v2');
INSERT OR IGNORE INTO kv VALUES ('user:1', 'v3');
SELECT 'after-ignore', value FROM kv WHERE key = 'user:1';
UPDATE kv SET value = 'v4' WHERE key = 'user:1';
UPDATE kv SET key = 'user:2' WHERE key = 'user:1';
DELETE FROM kv WHERE key = 'user:2';
SELECT value FROM kv WHERE key = 'user:1';
SELECT * FROM kv WHERE key IN ('a', 'b', 'c');
SELECT u.name, kv.value FROM users u JOIN kv ON kv.key = u.id;
SELECT 'count', count(*) FROM kv;
SELECT 'merge', typeof(bitcask_merge('kv'));
SELECT 'mergeall', typeof(bitcask_merge());
SELECT 'stats', json_valid(bitcask_stats('kv'));
DROP TABLE kv;
"""
os.mkdir(os.path.join(T, 'data'))
rc, out, err = paste(os.path.join(T, 'using.db'), USING, cwd=T)
check('paste "Using it": no error', err == '', err)
check('paste "Using it": OR IGNORE keeps v2', 'after-ignore|v2' in out, out)
check('paste "Using it": count 0 at end', 'count|0' in out, out)
check('paste "Using it": merge returns integer', 'merge|integer' in out and 'mergeall|integer' in out, out)
check('paste "Using it": DROP deleted default store',
      not os.path.exists(os.path.join(T, 'using.db-kv.bitcask')), os.listdir(T))

SHARED = r"""
CREATE VIRTUAL TABLE a USING bitcask(dir='shared');
CREATE VIRTUAL TABLE b USING bitcask(dir='shared');  -- the same store, on purpose
INSERT INTO a VALUES ('k', 1);
SELECT value FROM b WHERE key = 'k';                 -- 1
DROP TABLE b;                                        -- a still uses the store: nothing deleted
SELECT count(*) FROM a;                              -- 1
"""
db = os.path.join(T, 'shared.db')
rc, out, err = paste(db, SHARED, cwd=T)
check('paste sharing block: no error', err == '', err)
check('paste sharing block: b sees 1, count 1', out.split('\n') == ['1', '1'], out)
check('paste sharing block: store still there after DROP b',
      os.path.exists(os.path.join(T, 'shared', 'BITCASK')), os.listdir(T))
rc, out, err = paste(db, 'DROP TABLE a;', cwd=T)
check('paste sharing block: DROP a (last) ok', err == '', err)
check('paste sharing block: store deleted at last DROP',
      not os.path.exists(os.path.join(T, 'shared')),
      os.listdir(os.path.join(T, 'shared')) if os.path.exists(os.path.join(T, 'shared')) else '')

TXN = r"""
CREATE VIRTUAL TABLE kv USING bitcask;
BEGIN;
INSERT INTO kv VALUES ('a', 1);
SELECT value FROM kv WHERE key = 'a';
SAVEPOINT s1;
DELETE FROM kv WHERE key = 'a';
ROLLBACK TO s1;
COMMIT;
SELECT 'after', value FROM kv WHERE key = 'a';
"""
rc, out, err = paste(os.path.join(T, 'txn.db'), TXN, cwd=T)
check('paste Transactions block', err == '' and out.split('\n') == ['1', 'after|1'], (out, err))

# functions: schema.kv form, no-arg merge total, unknown table
FUN = r"""
ATTACH 'other.db' AS o;
CREATE VIRTUAL TABLE o.kv USING bitcask;
INSERT INTO o.kv VALUES (1, 'x'), (2, 'y');
INSERT OR REPLACE INTO o.kv VALUES (1, 'z');
SELECT 'm', bitcask_merge('o.kv') >= 0;
SELECT 's', json_extract(bitcask_stats('o.kv'), '$.keys');
SELECT 't', json_extract(bitcask_stats('o.kv'), '$.table');
"""
rc, out, err = paste(os.path.join(T, 'fun.db'), FUN, cwd=T)
check('bitcask_merge/stats with schema.kv', err == '' and 'm|1' in out and 's|2' in out, (out, err))
rc, out, err = shell(os.path.join(T, 'fun.db'), "SELECT bitcask_stats('nosuch');", bail=False)
check('bitcask_stats of unknown table errors', err != '' and 'nosuch' in err, (out, err))

# ---------------------------------------------------------------- 2. stats fields
FIELDS = ['table', 'dir', 'keys', 'files', 'hint_files', 'active_file_id', 'total_bytes',
          'live_bytes', 'dead_bytes', 'keydir_bytes', 'next_seq', 'merges', 'corrupt_records',
          'truncated_bytes', 'commits', 'fsyncs', 'max_file_size', 'open_files',
          'max_open_files', 'damaged_files', 'sync', 'read_only']
db = os.path.join(T, 'st.db')
rows = ','.join("('k%05d', randomblob(200))" % i for i in range(3000))
rc, out, err = shell(db, "CREATE VIRTUAL TABLE kv USING bitcask(max_file_size='4KB', max_open_files=3);",
                     "INSERT INTO kv VALUES %s;" % rows, "SELECT count(*) FROM kv;",
                     "SELECT sum(length(value)) FROM kv;")
check('many-file store: create+insert+scan', err == '' and out.split('\n')[0] == '3000', (out, err))
s, e = stats(db, 'kv')
check('stats is JSON', s is not None, e)
if s:
    missing = [f for f in FIELDS if f not in s]
    check('stats has every README field', not missing, missing)
    check('stats: files > max_open_files (test premise)', s.get('files', 0) > 10, s)
    check('stats: max_open_files = 3', s.get('max_open_files') == 3, s)
    check('stats: open_files <= max_open_files + 1', s.get('open_files', 99) <= 4, s)
    check('stats: damaged_files 0 on a sound store', s.get('damaged_files') == 0, s)
    check('stats: corrupt_records 0', s.get('corrupt_records') == 0, s)
    check('stats: keys 3000', s.get('keys') == 3000, s)
    check('stats: hint_files = files - 1', s.get('hint_files') == s.get('files', 0) - 1, s)
    check('stats: live+dead <= total', s.get('live_bytes', 0) + s.get('dead_bytes', 0) <= s.get('total_bytes', 0), s)
    check('stats: read_only false, sync full', s.get('read_only') is False and s.get('sync') == 'full', s)
# after a reopen + reading every value
rc, out, err = shell(db, "SELECT sum(length(value)) FROM kv;", "SELECT bitcask_stats('kv');")
try:
    s2 = json.loads(out.split('\n')[-1])
except Exception:
    s2 = None
check('reopen + read all values', err == '' and out.split('\n')[0] == '600000', (out, err))
if s2:
    check('stats after reads: open_files <= max_open_files + 1', s2['open_files'] <= s2['max_open_files'] + 1, s2)
# readonly view of it, with pread through the cache
rc, out, err = shell(os.path.join(T, 'ro.db'),
                     "CREATE VIRTUAL TABLE r USING bitcask(dir='%s', readonly=1, max_open_files=2);" % os.path.join(T, 'st.db-kv.bitcask'),
                     "SELECT count(*), sum(length(value)) FROM r;", "SELECT bitcask_stats('r');")
check('readonly table, max_open_files=2, full scan', err == '' and out.split('\n')[0] == '3000|600000', (out, err))
try:
    s3 = json.loads(out.split('\n')[-1])
    check('readonly stats: open_files <= 3, read_only true, damaged 0',
          s3['open_files'] <= 3 and s3['read_only'] is True and s3['damaged_files'] == 0, s3)
except Exception as ex:
    check('readonly stats JSON', False, (out, ex))
# merge on it
rc, out, err = shell(db, "INSERT OR REPLACE INTO kv SELECT key, 'x' FROM kv WHERE key < 'k01000';",
                     "SELECT bitcask_merge('kv') > 0;", "SELECT count(*) FROM kv;")
check('merge of a many-file store under max_open_files=3', err == '' and out.split('\n') == ['1', '3000'], (out, err))
s, e = stats(db, 'kv')
if s:
    check('stats after merge: open<=max+1, damaged 0', s['open_files'] <= s['max_open_files'] + 1 and s['damaged_files'] == 0, s)

# ---------------------------------------------------------------- 3. max_open_files values
BAD = ["0", "-1", "1.5", "'abc'", "1048577", "99999999999999999999", "''", "'1x'", " ", "1e3", "0x10"]
for i, v in enumerate(BAD):
    d = os.path.join(T, 'bad%d' % i)
    os.mkdir(d)
    db = os.path.join(d, 'x.db')
    rc, out, err = shell(db, "CREATE VIRTUAL TABLE badt USING bitcask(max_open_files=%s);" % v, bail=False)
    ok_err = rc != 0 and 'max_open_files' in err and 'badt' in err
    check('max_open_files=%s refused naming option and table' % v, ok_err, (rc, out, err))
    left = [f for f in os.listdir(d) if f != 'x.db']
    check('max_open_files=%s: nothing created' % v, not left, left)
    rc, out, err = shell(db, "SELECT count(*) FROM sqlite_schema WHERE name='badt';")
    check('max_open_files=%s: no schema row' % v, out == '0', (out, err))
# README: the limit in effect is the option, but at most a quarter of the
# soft RLIMIT_NOFILE at open (at least 1).
import resource
QUARTER = max(1, resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 4)
GOOD = [("1", 1), ("'16'", min(16, QUARTER)), ("1048576", min(1048576, QUARTER)),
        ("\"7\"", min(7, QUARTER))]
for i, (v, want) in enumerate(GOOD):
    d = os.path.join(T, 'good%d' % i)
    os.mkdir(d)
    db = os.path.join(d, 'x.db')
    rc, out, err = shell(db, "CREATE VIRTUAL TABLE g USING bitcask(MAX_OPEN_FILES=%s);" % v,
                         "INSERT INTO g VALUES (1,2);")
    check('max_open_files=%s accepted' % v, rc == 0, err)
    s, e = stats(db, 'g')
    check('max_open_files=%s in stats' % v, s is not None and s.get('max_open_files') == want, (s, e))
# default under ulimit -n 64 -> 16
d = os.path.join(T, 'ul'); os.mkdir(d)
p = subprocess.run(['bash', '-c', 'ulimit -n 64; sqlite3 -batch -bail x.db ".load %s" '
                    '"CREATE VIRTUAL TABLE u USING bitcask;" "SELECT json_extract(bitcask_stats(\'u\'), \'$.max_open_files\');"' % EXT],
                   capture_output=True, text=True, cwd=d, timeout=30)
check('default max_open_files is 16 under ulimit -n 64', p.stdout.strip() == '16', (p.stdout, p.stderr))
p = subprocess.run(['bash', '-c', 'ulimit -n 1024; sqlite3 -batch -bail x.db ".load %s" '
                    '"SELECT json_extract(bitcask_stats(\'u\'), \'$.max_open_files\');"' % EXT],
                   capture_output=True, text=True, cwd=d, timeout=30)
check('default max_open_files is 256 under ulimit -n 1024 (reopen)', p.stdout.strip() == '256', (p.stdout, p.stderr))

# other options' bad values, same contract
for i, opt in enumerate(["max_file_size='3KB'", "max_file_size='2000GB'", "sync='sometimes'",
                         "readonly=2", "nosuch=1", "max_file_size=''"]):
    d = os.path.join(T, 'bo%d' % i); os.mkdir(d)
    rc, out, err = shell(os.path.join(d, 'x.db'), "CREATE VIRTUAL TABLE bo USING bitcask(%s);" % opt, bail=False)
    name = opt.split('=')[0]
    check('%s refused naming option and table' % opt, rc != 0 and name in err and 'bo' in err, (rc, err))
    left = [f for f in os.listdir(d) if f != 'x.db']
    check('%s: nothing created' % opt, not left, left)

shutil.rmtree(T, ignore_errors=True)
finish()
