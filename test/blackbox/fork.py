#!/usr/bin/python3
# Black-box attack: fork() and the store.  Contract: "A child of fork() never
# shares its parent's store state: while the parent holds the writer lock, a
# child's own new connection gets SQLITE_BUSY (or reads as a follower) --
# never a silent second writer", and "No acknowledged write is lost to process
# structure".  Every INSERT that returned success must be found by a fresh
# process, and no INSERT that failed.
#
# usage: /usr/bin/python3 test/blackbox/fork.py build/bitcask
import os, sys, time, shutil, sqlite3, subprocess, random, gc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bb import EXT, check, finish, tmpdir, fresh_rows, connect
T = tmpdir('fork')
NWORKERS, NROWS = 4, 300


def errcode(e):
    return getattr(e, 'sqlite_errorcode', None)


def worker(db, tag, logpath, retry_busy, deadline):
    """Child: own new connection, NROWS distinct INSERTs; log each outcome."""
    log = open(logpath, 'w', buffering=1)
    try:
        con = connect(db)
    except Exception as e:
        log.write('OPENFAIL %r\n' % (e,))
        os._exit(0)
    for j in range(NROWS):
        key = '%s-%d' % (tag, j)
        while True:
            try:
                con.execute('INSERT INTO kv VALUES (?, ?)', (key, 'val-' + key))
                log.write('OK %s\n' % key)
                break
            except sqlite3.Error as e:
                busy = errcode(e) == 5 or 'locked' in str(e) or 'busy' in str(e).lower()
                if retry_busy and busy and time.time() < deadline:
                    time.sleep(0.005)
                    continue
                log.write('ERR %s %s %s\n' % (key, errcode(e), str(e).replace('\n', ' ')))
                break
    try:
        con.close()
    except Exception as e:
        log.write('CLOSEFAIL %r\n' % (e,))
    log.close()
    os._exit(0)


def wait_child(pid, seconds):
    """Wait for a child; kill it if it has not exited in time. True if it exited."""
    end = time.time() + seconds
    while time.time() < end:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return True
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return False


def read_log(path):
    ok, err, msgs = set(), set(), []
    if not os.path.exists(path):
        return ok, err, ['no log']
    for line in open(path):
        parts = line.rstrip('\n').split(' ', 3)
        if parts[0] == 'OK':
            ok.add(parts[1])
        elif parts[0] == 'ERR':
            err.add(parts[1])
            msgs.append(' '.join(parts[2:]))          # "<errcode> <message>"
        else:
            msgs.append(line.strip())
    return ok, err, msgs


def verify(case, db, acked, failed, expect_values):
    rows, e = fresh_rows(db)
    check(case + ': fresh process reads the table', rows is not None, e)
    if rows is None:
        return
    missing = sorted(k for k in acked if k not in rows)
    check(case + ': every acknowledged INSERT is present (%d acked)' % len(acked), not missing,
          '%d missing, e.g. %s' % (len(missing), missing[:5]))
    wrong = sorted(k for k in acked if k in rows and rows[k] != expect_values.get(k))
    check(case + ': acknowledged rows have their values', not wrong,
          '%d wrong, e.g. %s' % (len(wrong), [(k, rows[k]) for k in wrong[:3]]))
    ghosts = sorted(k for k in failed if k in rows)
    check(case + ': no failed INSERT is present (%d failed)' % len(failed), not ghosts,
          '%d present, e.g. %s' % (len(ghosts), ghosts[:5]))
    extra = sorted(k for k in rows if k not in acked and k not in failed)
    check(case + ': no unexpected rows', not extra, 'e.g. %s' % extra[:5])


def run_workers(case, db, retry_busy, parent_con=None):
    deadline = time.time() + 20
    pids, logs = [], []
    for w in range(NWORKERS):
        lp = os.path.join(T, '%s-w%d.log' % (case, w))
        logs.append(lp)
        pid = os.fork()
        if pid == 0:
            try:
                worker(db, '%s-w%d' % (case, w), lp, retry_busy, deadline)
            finally:
                os._exit(0)
        pids.append(pid)
    pok, perr = set(), set()
    if parent_con is not None:           # the parent keeps writing meanwhile
        for j in range(NROWS):
            key = '%s-p-%d' % (case, j)
            try:
                parent_con.execute('INSERT INTO kv VALUES (?, ?)', (key, 'val-' + key))
                pok.add(key)
            except sqlite3.Error as e:
                perr.add(key)
                if len(perr) == 1:
                    print('  (%s: parent INSERT failed: %s)' % (case, e))
    for pid in pids:
        if not wait_child(pid, 25):
            print('  (%s: worker %d hung: killed)' % (case, pid))
    results = [read_log(lp) for lp in logs]
    return pok, perr, results


# ---- Variant A: the parent keeps its connection open (and writes meanwhile, or idles).
def variant_open(parent_writes=True):
    case = 'open' if parent_writes else 'open-idle'
    d = os.path.join(T, case); os.mkdir(d)
    db = os.path.join(d, 'app.db')
    con = connect(db)
    con.execute("CREATE VIRTUAL TABLE kv USING bitcask(dir='store', sync='full')")
    con.execute("INSERT INTO kv VALUES ('p0', 'parent')")
    pok, perr, results = run_workers(case, db, retry_busy=False, parent_con=con if parent_writes else None)
    acked = {'p0'} | pok
    failed = set(perr)
    child_ok = 0
    nonbusy = []
    for ok, err, msgs in results:
        acked |= ok; failed |= err; child_ok += len(ok)
        # SQLITE_BUSY (5), or SQLITE_READONLY (8) if the child reads as a follower
        nonbusy += [m for m in msgs if not ('lock' in m.lower() or m.startswith('5 ') or m.startswith('8 ')
                                             or 'read' in m.lower())]
    check(case + ': parent inserts all succeed while it holds the lock', not perr, '%d failed' % len(perr))
    check(case + ': no child INSERT succeeds while the parent holds the writer lock',
          child_ok == 0, '%d child INSERTs returned success' % child_ok)
    check(case + ': refused child INSERTs say SQLITE_BUSY / locked', not nonbusy, 'e.g. %s' % nonbusy[:3])
    # The parent is still a working writer after its children ran.
    try:
        con.execute("INSERT INTO kv VALUES ('p-after', 'val-p-after')"); acked.add('p-after')
        n = con.execute('SELECT count(*) FROM kv').fetchone()[0]
        check(case + ': parent still writes and counts after the children', n == len(acked),
              'count %d, expected %d' % (n, len(acked)))
    except sqlite3.Error as e:
        check(case + ': parent still writes after the children', False, str(e))
    con.close()
    vals = {k: 'val-' + k for k in acked}; vals['p0'] = 'parent'
    verify(case, db, acked, failed, vals)


# ---- Variant B: the parent closes its connection before the workers start;
# the workers may win the lock one at a time (retry on SQLITE_BUSY).
def variant_closed():
    case = 'closed'
    d = os.path.join(T, case); os.mkdir(d)
    db = os.path.join(d, 'app.db')
    con = connect(db)
    con.execute("CREATE VIRTUAL TABLE kv USING bitcask(dir='store', sync='normal')")
    con.execute("INSERT INTO kv VALUES ('p0', 'parent')")
    con.close(); del con; gc.collect()
    _, _, results = run_workers(case, db, retry_busy=True)
    acked, failed = {'p0'}, set()
    for ok, err, msgs in results:
        acked |= ok; failed |= err
    allmsgs = [m for r in results for m in r[2]]
    print('  (%s: %d child INSERTs acknowledged, %d failed%s)' % (
        case, len(acked) - 1, len(failed), (': ' + allmsgs[0]) if allmsgs else ''))
    vals = {k: 'val-' + k for k in acked}; vals['p0'] = 'parent'
    verify(case, db, acked, failed, vals)


# ---- Variant C: the child closes / garbage-collects the inherited connection
# and exits; the parent's store must be intact, locked and writable by it.
def variant_child_closes(how, memory=False, sync='full', in_txn=False):
    case = 'childclose-%s%s-%s%s' % (how, '-memory' if memory else '', sync, '-intxn' if in_txn else '')
    d = os.path.join(T, case); os.mkdir(d)
    db = ':memory:' if memory else os.path.join(d, 'app.db')
    con = connect(db)
    if memory:
        con.execute("CREATE VIRTUAL TABLE kv USING bitcask(sync='%s')" % sync)   # private temp dir
    else:
        con.execute("CREATE VIRTUAL TABLE kv USING bitcask(dir='store', sync='%s')" % sync)
    keys = ['r%d' % i for i in range(50)]
    con.executemany('INSERT INTO kv VALUES (?, ?)', [(k, 'v' + k) for k in keys])
    if in_txn:
        # The parent forks in the middle of a transaction that has written;
        # the child's close rolls back *its* copy -- the parent then commits.
        con.execute('BEGIN')
        con.executemany('INSERT INTO kv VALUES (?, ?)', [('t%d' % i, 'vt%d' % i) for i in range(30)])
        con.execute("DELETE FROM kv WHERE key = 'r0'")
    pid = os.fork()
    if pid == 0:
        try:
            if how == 'close':
                con.close()
            elif how == 'gc':
                del con                      # last reference: dealloc closes it
                gc.collect()
            # 'exit': leave it to interpreter shutdown
        except BaseException:
            pass
        if how == 'gc' or how == 'exit':
            # Normal interpreter exit: finalizers of the inherited connection run.
            sys.stdout.flush()
            os.environ['BB_CHILD'] = '1'
            sys.exit(0)
        os._exit(0)
    hung = not wait_child(pid, 3)
    check(case + ': the child closes the inherited connection and exits (within 3 s)', not hung,
          'the child was still running after 3 s: killed')
    if in_txn:
        try:
            con.execute('COMMIT')
            keys.remove('r0'); keys += ['t%d' % i for i in range(30)]
            check(case + ': parent commits its transaction after the child exited', True)
        except sqlite3.Error as e:
            check(case + ': parent commits its transaction after the child exited', False, str(e))
    try:
        got = dict(con.execute('SELECT key, value FROM kv').fetchall())
        want = {k: 'v' + k for k in keys}
        check(case + ': parent still reads all its rows after the child exited',
              got == want, 'got %d rows, expected %d; missing %s extra %s' % (
                  len(got), len(want), sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5]))
    except sqlite3.Error as e:
        check(case + ': parent still reads after the child exited', False, str(e))
    try:
        con.execute("INSERT INTO kv VALUES ('after', 'vafter')")
        keys.append('after')
        check(case + ': parent still writes after the child exited', True)
    except sqlite3.Error as e:
        check(case + ': parent still writes after the child exited', False, str(e))
    if not memory:
        # The parent must still hold the writer lock: another process is refused.
        p = subprocess.run(['sqlite3', '-batch', db, '.load ' + EXT,
                            "INSERT INTO kv VALUES ('intruder', 'x');"],
                           capture_output=True, text=True, timeout=30)
        check(case + ': another process still gets SQLITE_BUSY (parent keeps the lock)',
              p.returncode != 0 and 'lock' in p.stderr.lower(),
              'rc=%d stderr=%r' % (p.returncode, p.stderr.strip()))
        try:
            con.execute("INSERT INTO kv VALUES ('after2', 'vafter2')"); keys.append('after2')
        except sqlite3.Error as e:
            check(case + ': parent writes after the intruder', False, str(e))
        con.close()
        vals = {k: 'v' + k for k in keys}
        verify(case, db, set(keys), {'intruder'} if p.returncode != 0 else set(), vals)
    else:
        con.close()


def main():
    random.seed(1)
    for fn in (variant_open, lambda: variant_open(parent_writes=False), variant_closed,
               lambda: variant_child_closes('close'),
               lambda: variant_child_closes('gc'),
               lambda: variant_child_closes('exit'),
               lambda: variant_child_closes('close', memory=True),
               lambda: variant_child_closes('exit', memory=True),
               lambda: variant_child_closes('close', sync='normal'),
               lambda: variant_child_closes('exit', sync='normal'),
               lambda: variant_child_closes('close', in_txn=True),
               lambda: variant_child_closes('exit', in_txn=True),
               lambda: variant_child_closes('close', sync='normal', in_txn=True),
               lambda: variant_child_closes('close', memory=True, in_txn=True)):
        try:
            fn()
        except Exception as e:
            if os.environ.get('BB_CHILD'):
                raise
            check('variant raised', False, repr(e))
    if os.environ.get('BB_CHILD'):
        return
    shutil.rmtree(T, ignore_errors=True)
    finish()


if __name__ == '__main__':
    main()
