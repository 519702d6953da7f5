#!/usr/bin/python3
# Black-box attack: file descriptors.  Contract: "File descriptors are
# bounded: a store of 10,000 data files opens and serves reads (and writes)
# under `ulimit -n 64`; an EMFILE gives a message that says so."
#
# A store of >= 10,000 data files (max_file_size='4KB', the README's minimum;
# one ~4 KB value per file, then all but every 50th key deleted) is built in
# two transactions, then used by new
# sqlite3 processes under RLIMIT_NOFILE 64: count(*), point reads of keys in
# the oldest files, full scans with values (storage order and key order),
# inserts, a merge, and a reopen after the merge.  Then tighter limits that
# may provoke EMFILE: any error must say "open files" / "too many" / EMFILE /
# descriptor / limit -- not something misleading such as corruption or an
# I/O error.
#
# usage: /usr/bin/python3 test/blackbox/descriptors.py build/bitcask
import os, sys, re, shutil, subprocess, resource

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bb import EXT, check, finish, tmpdir
T = tmpdir('fds')
N = 10000
PAD = "hex(zeroblob(2040))"              # 4080 characters
VAL = "'v' || %s || '-' || " + PAD       # value of key 'k<i>'


# Not bb.shell: statements as a list, a descriptor limit, a timeout, cwd = the db's directory.
def shell(db, stmts, nofile=None, timeout=60):
    def limit():
        if nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    args = ['sqlite3', '-batch', '-bail', db, '.load ' + EXT] + list(stmts)
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, preexec_fn=limit,
                           cwd=os.path.dirname(db))
    except subprocess.TimeoutExpired:
        return -1, '', 'timeout'
    return p.returncode, p.stdout.strip(), p.stderr.strip()


LIVE = [i for i in range(1, N + 1) if i % 50 == 1]      # 200 keys spread over the files
NL = len(LIVE)
KLIVE = "CAST(substr(key, 2) AS INTEGER) %% 50 = 1"

d = os.path.join(T, 'big'); os.mkdir(d)
db = os.path.join(d, 'app.db')
# One transaction writes N ~4 KB values (one data file each); a second deletes
# all but every 50th key, so the merge has little to copy (it stays fast) while
# the live keys lie in 200 distinct old files (more than the 64 descriptors).
rc, out, err = shell(db, [
    "CREATE VIRTUAL TABLE kv USING bitcask(dir='store', max_file_size='4KB', sync='off');",
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<%d) "
    "INSERT INTO kv SELECT 'k'||i, %s FROM c;" % (N, VAL % 'i'),
    "DELETE FROM kv WHERE NOT (%s);" % (KLIVE % ()),
    "SELECT json_extract(bitcask_stats('kv'), '$.files');"], timeout=120)
check('build: one transaction of %d rows, one of deletes' % N, rc == 0, err)
ndata = len([f for f in os.listdir(os.path.join(d, 'store')) if f.endswith('.data')]) \
    if os.path.isdir(os.path.join(d, 'store')) else 0
check('build: the store has >= 10,000 data files', ndata >= 10000, 'stats files=%s, on disk %d' % (out, ndata))

OKVAL = lambda k: "(SELECT value = %s FROM kv WHERE key = 'k%d')" % (VAL % ("'%d'" % k), k)

# ---- Under ulimit -n 64.
reads = ["SELECT count(*) FROM kv;",
         "SELECT %s || %s || %s || %s || %s;" % (OKVAL(1), OKVAL(51), OKVAL(101), OKVAL(5001), OKVAL(9951)),
         "SELECT count(*) FROM kv WHERE key IN ('k2', 'k50', 'k5000', 'k10000');"]
rc, out, err = shell(db, reads, nofile=64)
check('ulimit 64: count(*) and point reads in old files', rc == 0 and out == '%d\n11111\n0' % NL,
      'rc=%d out=%r err=%r' % (rc, out[:200], err))

rc, out, err = shell(db, ["SELECT count(*), sum(length(value)) FROM kv;"], nofile=64)
check('ulimit 64: full scan with values (storage order)',
      rc == 0 and out == '%d|%d' % (NL, sum(len('v%d-' % i) + 4080 for i in LIVE)),
      'rc=%d out=%r err=%r' % (rc, out[:200], err))

rc, out, err = shell(db, ["SELECT count(*) FROM (SELECT key, value FROM kv ORDER BY key) "
                          "WHERE value = 'v' || substr(key, 2) || '-' || %s;" % PAD], nofile=64)
check('ulimit 64: full scan with values (key order), every value right', rc == 0 and out == str(NL),
      'rc=%d out=%r err=%r' % (rc, out[:200], err))

rc, out, err = shell(db, [
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<100) "
    "INSERT INTO kv SELECT 'new'||i, 'n'||i FROM c;",
    "INSERT INTO kv VALUES ('single', 's');",
    "INSERT OR REPLACE INTO kv VALUES ('k1', 'k1-replaced');",
    "DELETE FROM kv WHERE key = 'k51';",
    "SELECT count(*) FROM kv;"], nofile=64)
inserts_ok = rc == 0
check('ulimit 64: inserts, a replace and a delete', rc == 0 and out == str(NL + 100),
      'rc=%d out=%r err=%r' % (rc, out[:200], err))

rc, out, err = shell(db, ["SELECT bitcask_merge('kv') >= 0;", "SELECT count(*) FROM kv;",
                          "SELECT value FROM kv WHERE key = 'k1';",
                          "SELECT %s;" % OKVAL(101)], nofile=64, timeout=120)
check('ulimit 64: merge works and the table reads after it',
      rc == 0 and out == '1\n%d\nk1-replaced\n1' % (NL + 100), 'rc=%d out=%r err=%r' % (rc, out[:200], err))

rc, out, err = shell(db, ["SELECT count(*) FROM kv;",
                          "SELECT count(*) FROM kv WHERE key LIKE 'k%%' AND value = 'v' || substr(key, 2) || '-' || %s;" % PAD,
                          "SELECT value FROM kv WHERE key = 'new50';",
                          "SELECT count(*) FROM kv WHERE key = 'k51';",
                          "INSERT INTO kv VALUES ('after-merge', 'x');"], nofile=64)
check('ulimit 64: a new process after the merge reads every value and writes',
      rc == 0 and out == '%d\n%d\nn50\n0' % (NL + 100, NL - 2), 'rc=%d out=%r err=%r' % (rc, out[:200], err))

# ---- Tighter limits: an EMFILE must be reported as such.
GOOD = re.compile(r'open files|too many|emfile|descriptor|ulimit|rlimit|nofile|limit', re.I)
work = [["SELECT count(*) FROM kv;"],
        ["SELECT count(*), sum(length(value)) FROM kv;"],
        ["SELECT count(*) FROM (SELECT key, value FROM kv ORDER BY key);"],
        ["INSERT INTO kv VALUES ('emfile-probe', 'x');", "DELETE FROM kv WHERE key = 'emfile-probe';"],
        ["SELECT bitcask_merge('kv') >= 0;"]]
errors_seen = 0
for lim in (24, 20, 16, 12, 10):
    for stmts in work:
        rc, out, err = shell(db, stmts, nofile=lim, timeout=120)
        if rc == 0:
            continue
        errors_seen += 1
        what = 'ulimit %d: %s' % (lim, stmts[0][:50])
        if 'unable to open database' in err and 'bitcask' not in err:
            print('  (%s: sqlite3 itself could not open the database: %s)' % (what, err))
            continue
        check(what + ': the error names the descriptor limit', bool(GOOD.search(err)), 'message: %r' % err)
if not errors_seen:
    print('  (no EMFILE provoked at ulimit 24..10)')

# Opt-in (slow: a merge of 10,000 live files), BB_SLOW=1:
# a merge of 10,000 live 4 KB files at the process's ordinary descriptor limit.
if os.environ.get('BB_SLOW'):
    d2 = os.path.join(T, 'live'); os.mkdir(d2)
    db2 = os.path.join(d2, 'app.db')
    rc, out, err = shell(db2, [
        "CREATE VIRTUAL TABLE kv USING bitcask(dir='store', max_file_size='4KB', sync='off');",
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<%d) "
        "INSERT INTO kv SELECT 'k'||i, %s FROM c;" % (N, VAL % 'i'),
        "SELECT bitcask_merge('kv') >= 0;", "SELECT count(*) FROM kv;"], timeout=300)
    check('ordinary ulimit (%d): merge of 10,000 live files works' % resource.getrlimit(resource.RLIMIT_NOFILE)[0],
          rc == 0 and out == '1\n%d' % N, 'rc=%d out=%r err=%r' % (rc, out[:200], err))

# The store must still be whole after the EMFILE attempts.
rc, out, err = shell(db, ["SELECT count(*) FROM kv;",
                          "SELECT count(*) FROM kv WHERE key LIKE 'k%%' AND value = 'v' || substr(key, 2) || '-' || %s;" % PAD])
check('after the EMFILE attempts the store is whole',
      rc == 0 and out.split('\n')[1:] == [str(NL - 2 if inserts_ok else NL)],
      'rc=%d out=%r err=%r' % (rc, out[:200], err))

shutil.rmtree(T, ignore_errors=True)
finish()
