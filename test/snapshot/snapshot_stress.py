#!/usr/bin/python3
# Issue 13, case 4: the randomised test of consistent reads.  Writers move
# amounts between accounts in transactions, so the sum of every value never
# changes; while they do, the store rotates (max_file_size 4KB) and is merged,
# and readers -- threads of the writing process, each with its own
# connection, and reader processes (readonly=1 tables in their own databases,
# and the writer's database opened read-only) -- run statements whose answer
# is known whatever was committed, as long as the statement sees one committed
# state.  Many statements run slowly (a user function sleeps per row) so that
# commits and merges happen while they run.
#
# Keys and invariants (NKEYS keys, sum TOTAL, always):
#   acct:<id>:<gen>  NACCT accounts; a transfer moves an amount between two in
#                    one transaction; a rename changes an account's <gen>
#                    (a key change: a put and a tombstone)
#   p:<i>, q:<i>     NPAIRS pairs, q:<i> = -p:<i>, set together (sometimes by
#                    deleting both and inserting them again)
#   seq, neg         every transaction adds 1 to seq and -1 to neg: seq never
#                    goes back for a reader, seq + neg = 0
#
# Writers getting SQLITE_BUSY from one another (one writer at a time per
# store) and bitcask_merge refused while a transaction is open are expected:
# they are retried and counted.  A reader getting any error, a writer getting
# any other, or a violated invariant fails the test.  The last line:
#   snapshot_stress: N checks, V violations, E reader errors, W unexpected writer errors
# usage: /usr/bin/python3 test/snapshot/snapshot_stress.py build/bitcask [--seconds S] [--seed N]
#        (--help for the numbers of threads and processes, --max-file-size)
import argparse, json, os, random, shutil, sqlite3, subprocess, sys, tempfile, threading, time

NACCT, NPAIRS = 100, 20
LOCK = threading.Lock()  # the counters shared by threads
NKEYS = NACCT + 2 * NPAIRS + 2
TOTAL = 100 * NACCT
SPLIT = 'acct:%04d' % (NACCT // 2)


def connect(ext, db, uri=False):
    con = sqlite3.connect(db, isolation_level=None, timeout=10, uri=uri, check_same_thread=False)
    con.enable_load_extension(True)
    con.load_extension(ext)
    return con


def is_busy(e):
    return getattr(e, 'sqlite_errorcode', None) == sqlite3.SQLITE_BUSY


def describe(e):
    return '%s (%s): %s' % (type(e).__name__, getattr(e, 'sqlite_errorname', '-'), e)


# ---- the readers' statements ---------------------------------------------------------------
# Each: (name, SQL, check(rows) -> (violation or None, seq or None)).  slow() sleeps a little
# and returns 0; it makes a statement last long enough for commits and merges to land in it.

def _want(cond, what):
    return None if cond else what


def c_sum_count(rows):
    s, n, seq = rows[0]
    return _want((s, n) == (TOTAL, NKEYS), 'sum, count = %r, %r' % (s, n)), seq


def c_total(rows):
    return _want(rows[0][0] == TOTAL, 'sum %r' % (rows[0][0],)), None


def c_halves(rows):
    lo, _, hi = rows[0]
    return _want(lo is not None and hi is not None and lo + hi == TOTAL,
                 'two halves %r + %r' % (lo, hi)), None


def c_counts(rows):
    return _want(rows[0] == (NKEYS, 0, NACCT), 'counts %r' % (rows[0],)), None


def c_pairs(rows):
    return _want(rows[0] == (NPAIRS, 0), 'pairs (count, unequal) %r' % (rows[0],)), None


def c_seq(rows):
    seq, _, neg = rows[0]
    return _want(seq is not None and neg is not None and seq + neg == 0,
                 'seq %r neg %r' % (seq, neg)), seq


def c_rows(order):
    def c(rows):
        keys = [r[0] for r in rows]
        vals = [r[1] for r in rows]
        if any(v is None for v in vals):
            return 'a NULL value among %d rows' % len(rows), None
        if order and keys != sorted(keys, reverse=(order == 'desc')):
            return 'keys out of %s order' % order, None
        if len(set(keys)) != len(keys):
            return 'a key returned twice', None
        seq = {r[0]: r[1] for r in rows}.get('seq')
        return _want((sum(vals), len(rows)) == (TOTAL, NKEYS),
                     'rows: sum %r count %r' % (sum(vals), len(rows))), seq
    return c


def c_values(rows):
    vals = [r[0] for r in rows]
    if any(v is None for v in vals):
        return 'a NULL value (storage order)', None
    return _want((sum(vals), len(vals)) == (TOTAL, NKEYS),
                 'storage order rows: sum %r count %r' % (sum(vals), len(vals))), None


def c_accts(rows):
    vals = [r[1] for r in rows]
    return _want(None not in vals and (sum(vals), len(vals)) == (TOTAL, NACCT),
                 'accounts: sum %r count %r' % (sum(v or 0 for v in vals), len(vals))), None


QUERIES = [
    ('storage order sum', "SELECT sum(value), count(*), (SELECT value FROM kv WHERE key = 'seq') FROM kv",
     c_sum_count),
    ('storage order sum, slow', "SELECT sum(value + slow()), count(value), "
     "(SELECT value FROM kv WHERE key = 'seq') FROM kv", c_sum_count),
    ('key order sum, slow', "SELECT sum(value + slow(key)), count(key), "
     "(SELECT value FROM kv WHERE key = 'seq') FROM kv", c_sum_count),
    ('two range sums', "SELECT (SELECT sum(value + slow()) FROM kv WHERE key < '%s'), slow(), "
     "(SELECT sum(value + slow()) FROM kv WHERE key >= '%s')" % (SPLIT, SPLIT), c_halves),
    ('counts', "SELECT (SELECT count(*) FROM kv), slow(), (SELECT count(*) FROM kv WHERE key GLOB 'acct:*')",
     c_counts),
    ('pairs join', "SELECT count(*), sum(p.value + q.value <> 0) FROM kv AS p JOIN kv AS q "
     "ON q.key = 'q' || substr(p.key, 2) WHERE p.key GLOB 'p:*' AND slow() = 0", c_pairs),
    ('correlated lookups', "SELECT sum((SELECT value FROM kv AS i WHERE i.key = o.key) + slow()) "
     "FROM kv AS o", c_total),
    ('IN subquery', "SELECT sum(value + slow()) FROM kv WHERE key IN "
     "(SELECT key FROM kv WHERE key GLOB 'acct:*')", c_total),
    ('seq and neg', "SELECT (SELECT value FROM kv WHERE key = 'seq'), slow(), "
     "(SELECT value FROM kv WHERE key = 'neg')", c_seq),
    ('rows desc, slow', 'SELECT key, value, slow() FROM kv ORDER BY key DESC', c_rows('desc')),
    ('rows asc', 'SELECT key, value FROM kv ORDER BY key', c_rows('asc')),
    ('storage order rows, slow', 'SELECT value, slow() FROM kv', c_values),
    ('LIKE rows, slow', "SELECT key, value, slow() FROM kv WHERE key LIKE 'ACCT:%'", c_accts),
]


def slow(*_):
    if random.random() < 0.125:
        time.sleep(0.0002)
    return 0


class Tally:
    """Checks, violations and errors of one reader (or the writers)."""

    def __init__(self, role):
        self.role, self.checks, self.violations, self.errors, self.details = role, 0, 0, {}, []
        self.last_seq = -1
        self.busy = {}  # expected SQLITE_BUSY (writers only), by message

    def expected(self, where, e):
        k = '%s: %s' % (where, describe(e))
        with LOCK:
            self.busy[k] = self.busy.get(k, 0) + 1

    def error(self, where, e):
        k = '%s: %s' % (where, describe(e))
        with LOCK:
            self.errors[k] = self.errors.get(k, 0) + 1

    def violation(self, what):
        with LOCK:
            self.violations += 1
            if len(self.details) < 10:
                self.details.append('%s: %s' % (self.role, what))

    def as_dict(self):
        return {'role': self.role, 'checks': self.checks, 'violations': self.violations,
                'errors': self.errors, 'details': self.details}


def diagnose(con):
    """For a violation's report: the keys a statement run now finds that no writer
    writes, and the keys found twice."""
    try:
        odd = con.execute("SELECT quote(key), quote(value) FROM kv WHERE NOT (key GLOB 'acct:*' OR "
                          "key GLOB 'p:*' OR key GLOB 'q:*' OR key IN ('seq', 'neg')) LIMIT 5").fetchall()
        twice = con.execute('SELECT key, count(*) FROM (SELECT key FROM kv) GROUP BY key '
                            'HAVING count(*) > 1 LIMIT 5').fetchall()
        n = con.execute('SELECT count(*), count(key) FROM kv').fetchone()
        return '; now: count(*), count(key) %r, odd keys %r, keys twice %r' % (n, odd, twice)
    except Exception as e:
        return '; diagnosis failed: %s' % describe(e)


def read_once(con, rng, t):
    name, sql, chk = QUERIES[rng.randrange(len(QUERIES))]
    try:
        rows = con.execute(sql).fetchall()
        bad, seq = chk(rows)
    except Exception as e:  # an error of SQLite, or a row the check cannot read
        t.error(name, e)
        return
    t.checks += 1
    if bad:
        t.violation('%s: %s%s' % (name, bad, diagnose(con)))
    if seq is not None:
        if seq < t.last_seq:
            t.violation('%s: seq went back from %d to %d' % (name, t.last_seq, seq))
        t.last_seq = seq


def final_check(con, t, final_seq):
    """After the writers stopped: this reader's next statement sees the last commit."""
    try:
        rows = con.execute(QUERIES[0][1]).fetchall()
    except sqlite3.Error as e:
        t.error('final', e)
        return
    t.checks += 1
    bad, seq = QUERIES[0][2](rows)
    if bad or seq != final_seq:
        t.violation('final statement: %s, seq %r (the last commit: %d)' % (bad, seq, final_seq))


def reader_loop(con, rng, t, stop):
    con.create_function('slow', -1, slow)
    while not stop():
        read_once(con, rng, t)


# ---- reader processes ------------------------------------------------------------------------
def reader_process(ext, mode, target, db, deadline, seed):
    """mode 'follower': a readonly=1 table over the store `target` in a database of its own
    (db); 'rodb': the writer's database `target` opened read-only.  Reads until deadline,
    then waits on stdin for the last seq, checks it, prints its tally as JSON."""
    t = Tally('%s process %d' % (mode, os.getpid()))
    rng = random.Random(seed)
    try:
        if mode == 'follower':
            con = connect(ext, db)
            con.execute("CREATE VIRTUAL TABLE kv USING bitcask(dir='%s', readonly=1)" % target)
        else:
            con = connect(ext, 'file:%s?mode=ro' % target, uri=True)
        reader_loop(con, rng, t, lambda: time.time() >= deadline)
        line = sys.stdin.readline()
        if line.strip():
            final_check(con, t, int(line))
        con.close()
    except sqlite3.Error as e:
        t.error('setup', e)
    print(json.dumps(t.as_dict()), flush=True)


# ---- writers -------------------------------------------------------------------------------
def writer_loop(con, rng, t, stop, stats):
    def txn(stmts):
        time.sleep(rng.random() * 0.002)  # room for the merger and the readers
        while True:
            try:
                con.execute('BEGIN')
                for s, args in stmts:
                    con.execute(s, args)
                con.execute("UPDATE kv SET value = value + 1 WHERE key = 'seq'")
                con.execute("UPDATE kv SET value = value - 1 WHERE key = 'neg'")
                con.execute('COMMIT')
                with LOCK:
                    stats['commits'] += 1
                return
            except sqlite3.Error as e:
                if con.in_transaction:
                    con.execute('ROLLBACK')
                if not is_busy(e):
                    t.error('writer', e)
                    return
                t.expected('writer', e)
                time.sleep(rng.random() * 0.001)

    acct = 'acct:%04d:*'
    while not stop():
        r = rng.random()
        if r < 0.65:
            i, j = rng.sample(range(NACCT), 2)
            x = rng.randint(1, 50)
            txn([('UPDATE kv SET value = value - ? WHERE key GLOB ?', (x, acct % i)),
                 ('UPDATE kv SET value = value + ? WHERE key GLOB ?', (x, acct % j))])
        elif r < 0.80:
            i, v = rng.randrange(NPAIRS), rng.randint(-1000, 1000)
            txn([("UPDATE kv SET value = ? WHERE key = 'p:%d'" % i, (v,)),
                 ("UPDATE kv SET value = ? WHERE key = 'q:%d'" % i, (-v,))])
        elif r < 0.90:
            i = rng.randrange(NACCT)
            txn([('UPDATE kv SET key = ? WHERE key GLOB ?',
                  ('acct:%04d:%d' % (i, rng.randrange(10 ** 6)), acct % i))])
        elif r < 0.97:
            i, v = rng.randrange(NPAIRS), rng.randint(-1000, 1000)
            txn([("DELETE FROM kv WHERE key IN ('p:%d', 'q:%d')" % (i, i), ()),
                 ('INSERT INTO kv VALUES (?, ?), (?, ?)', ('p:%d' % i, v, 'q:%d' % i, -v))])
        else:
            # one big transaction: every pair, and many transfers
            stmts = []
            for i in range(NPAIRS):
                v = rng.randint(-1000, 1000)
                stmts += [("UPDATE kv SET value = ? WHERE key = 'p:%d'" % i, (v,)),
                          ("UPDATE kv SET value = ? WHERE key = 'q:%d'" % i, (-v,))]
            for _ in range(20):
                i, j = rng.sample(range(NACCT), 2)
                stmts += [('UPDATE kv SET value = value - 1 WHERE key GLOB ?', (acct % i,)),
                          ('UPDATE kv SET value = value + 1 WHERE key GLOB ?', (acct % j,))]
            txn(stmts)


def merger_loop(con, rng, t, stop, stats, store):
    while not stop():
        time.sleep(0.05 + rng.random() * 0.25)
        while not stop():
            try:
                con.execute("SELECT bitcask_merge('kv')").fetchall()
                stats['merges'] += 1
                break
            except sqlite3.Error as e:
                if not is_busy(e):
                    t.error('merge', e)
                    break
                t.expected('merge', e)  # a writer's transaction is open: again soon
                time.sleep(0.0005)
        try:
            n = len([f for f in os.listdir(store) if f.endswith('.data')])
            stats['max_data_files'] = max(stats['max_data_files'], n)
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('ext')
    ap.add_argument('--seconds', type=float, default=10)
    ap.add_argument('--seed', type=int, default=None)
    ap.add_argument('--max-file-size', default='4KB')
    ap.add_argument('--writers', type=int, default=3)
    ap.add_argument('--readers', type=int, default=2, help='reader threads in the writing process')
    ap.add_argument('--followers', type=int, default=2, help='reader processes with readonly=1')
    ap.add_argument('--rodb', type=int, default=1, help='reader processes on the database opened read-only')
    ap.add_argument('--reader-process', nargs=5, metavar=('MODE', 'TARGET', 'DB', 'DEADLINE', 'SEED'),
                    help=argparse.SUPPRESS)
    a = ap.parse_args()
    ext = os.path.abspath(a.ext)
    if a.reader_process:
        mode, target, db, deadline, seed = a.reader_process
        reader_process(ext, mode, target, db, float(deadline), int(seed))
        return 0

    sys.setswitchinterval(0.0005)  # threads of this process take turns at the GIL often
    seed = a.seed if a.seed is not None else random.randrange(10 ** 9)
    print('snapshot_stress: seed %d, %g s, max_file_size %s, %d writer threads + a merger, %d reader '
          'threads, %d follower processes, %d read-only-database processes'
          % (seed, a.seconds, a.max_file_size, a.writers, a.readers, a.followers, a.rodb), flush=True)
    T = tempfile.mkdtemp(prefix='snapstress.')
    db = os.path.join(T, 'app.db')
    store = os.path.join(T, 'store')
    setup = connect(ext, db)
    setup.execute('PRAGMA journal_mode=WAL')
    setup.execute("CREATE VIRTUAL TABLE kv USING bitcask(dir='store', max_file_size='%s', sync='normal')"
                  % a.max_file_size)
    setup.execute('BEGIN')
    setup.executemany('INSERT INTO kv VALUES (?, ?)', [('acct:%04d:0' % i, 100) for i in range(NACCT)])
    setup.executemany('INSERT INTO kv VALUES (?, 0)', [(k % i,) for i in range(NPAIRS) for k in ('p:%d', 'q:%d')])
    setup.execute("INSERT INTO kv VALUES ('seq', 0), ('neg', 0)")
    setup.execute('COMMIT')
    for name, sql, _ in QUERIES:  # each statement's plan, once, for the log
        setup.create_function('slow', -1, slow)
        print('  %-26s %s' % (name, ' / '.join(r[3] for r in setup.execute('EXPLAIN QUERY PLAN ' + sql))))

    start = time.time()
    deadline = start + a.seconds
    stop_writers = threading.Event()
    procs = []
    for k in range(a.followers + a.rodb):
        mode = 'follower' if k < a.followers else 'rodb'
        args = [sys.executable, os.path.abspath(__file__), ext, '--reader-process', mode,
                store if mode == 'follower' else db, os.path.join(T, 'reader%d.db' % k),
                repr(deadline), str(seed + 1000 + k)]
        procs.append(subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))

    wt = Tally('writers')
    stats = {'commits': 0, 'merges': 0, 'max_data_files': 0}
    threads, readers, conns = [], [], [setup]
    for k in range(a.writers):
        con = connect(ext, db)
        conns.append(con)
        threads.append(threading.Thread(target=writer_loop, args=(con, random.Random(seed + k), wt,
                                                                  stop_writers.is_set, stats)))
    con = connect(ext, db)
    conns.append(con)
    threads.append(threading.Thread(target=merger_loop, args=(con, random.Random(seed + 99), wt,
                                                              stop_writers.is_set, stats, store)))
    for k in range(a.readers):
        con = connect(ext, db)
        conns.append(con)
        t = Tally('reader thread %d' % k)
        readers.append((con, t))
        threads.append(threading.Thread(target=reader_loop, args=(con, random.Random(seed + 500 + k), t,
                                                                  lambda: time.time() >= deadline)))
    for th in threads:
        th.start()
    while time.time() < deadline:
        time.sleep(0.05)
    stop_writers.set()
    for th in threads:
        th.join()
    final_seq = setup.execute("SELECT value FROM kv WHERE key = 'seq'").fetchone()[0]

    tallies = [wt]
    for con, t in readers:
        final_check(con, t, final_seq)
        tallies.append(t)
    for p in procs:
        out, _ = p.communicate('%d\n' % final_seq, timeout=120)
        try:
            d = json.loads(out.strip().splitlines()[-1])
            t = Tally(d['role'])
            t.checks, t.violations, t.errors, t.details = d['checks'], d['violations'], d['errors'], d['details']
        except (ValueError, IndexError):
            t = Tally('reader process')
            t.error('process', RuntimeError('rc %r, output %r' % (p.returncode, out[-500:])))
        tallies.append(t)

    for c in conns:
        c.close()
    # The store, opened afresh in a new process, holds the invariants too.
    check = subprocess.run([sys.executable, '-c', (
        'import sqlite3,sys\n'
        'c=sqlite3.connect(sys.argv[1]); c.enable_load_extension(True); c.load_extension(sys.argv[2])\n'
        "print(c.execute(\"SELECT sum(value), count(*), (SELECT value FROM kv WHERE key='seq') FROM kv\").fetchone())"),
        db, ext], capture_output=True, text=True, timeout=60)
    wt.checks += 1
    if check.stdout.strip() != repr((TOTAL, NKEYS, final_seq)):
        wt.violation('a fresh process reads %r %r, not %r' % (check.stdout.strip(), check.stderr.strip(),
                                                             (TOTAL, NKEYS, final_seq)))

    checks = sum(t.checks for t in tallies)
    violations = sum(t.violations for t in tallies)
    reader_errors = sum(sum(t.errors.values()) for t in tallies[1:])
    writer_errors = sum(wt.errors.values())
    elapsed = time.time() - start
    print('  %d commits (seq %d), %d merges, at most %d data files; expected SQLITE_BUSY, retried: %d'
          % (stats['commits'], final_seq, stats['merges'], stats['max_data_files'], sum(wt.busy.values())))
    for k, n in sorted(wt.busy.items()):
        print('    %6d x %s' % (n, k.replace(T, '<tmp>')))
    for t in tallies[1:]:
        print('  %-26s %6d checks, %d violations, %d errors' % (t.role, t.checks, t.violations, sum(t.errors.values())))
    for t in tallies:
        for d in t.details:
            print('  VIOLATION %s' % d)
        for k, n in sorted(t.errors.items()):
            print('  ERROR (%s) x%d: %s' % (t.role, n, k))
    print('snapshot_stress: %d checks, %d violations, %d reader errors, %d unexpected writer errors '
          '(seed %d, %.1f s)' % (checks, violations, reader_errors, writer_errors, seed, elapsed))
    ok = violations == 0 and reader_errors == 0 and writer_errors == 0 and stats['commits'] > 0
    if ok:
        shutil.rmtree(T, ignore_errors=True)
    else:
        print('snapshot_stress: FAILED; the store is left in %s' % T)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
