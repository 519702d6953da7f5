# Shared prologue of the black-box attack tests in this directory.  Each test
# puts its own directory on sys.path and imports what it uses from here:
#     sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
#     from bb import EXT, check, finish, shell, tmpdir
# EXT is the extension path (without .so) given as the test's first argument;
# check() counts and reports, finish() prints "name: N passed, N failed" last
# and exits non-zero on a failure.  Not a test itself (run.sh runs the others).
import os, sys, json, sqlite3, subprocess, tempfile

EXT = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
NAME = os.path.basename(sys.argv[0])
PASSED = 0
FAILED = 0


def check(name, ok, detail=''):
    global PASSED, FAILED
    if ok:
        PASSED += 1
    else:
        FAILED += 1
        print('%s: FAIL %s%s' % (NAME, name, ('\n  ' + str(detail)) if detail else ''), flush=True)
    return ok


def finish():
    print('%s: %d passed, %d failed' % (NAME, PASSED, FAILED))
    sys.exit(1 if FAILED else 0)


def tmpdir(tag):
    return tempfile.mkdtemp(prefix='bb-%s.' % tag)


def shell(db, *stmts, load=True, stdin=None, cwd=None, bail=True, extra=()):
    """Run the real sqlite3 shell on db (extension loaded); return (rc, out, err)."""
    args = ['sqlite3', '-batch'] + (['-bail'] if bail else []) + list(extra) + [db] + \
        (['.load ' + EXT] if load else []) + list(stmts)
    p = subprocess.run(args, capture_output=True, text=True, timeout=60, input=stdin, cwd=cwd)
    return p.returncode, p.stdout.strip(), p.stderr.strip()


def paste(db, text, cwd=None):
    """Feed text to a fresh sqlite3 shell as if pasted; return (rc, out, err)."""
    p = subprocess.run(['sqlite3', '-batch', db], input='.load %s\n%s\n' % (EXT, text),
                       capture_output=True, text=True, timeout=60, cwd=cwd)
    return p.returncode, p.stdout.strip(), p.stderr.strip()


def stats(db, table, cwd=None):
    rc, out, err = shell(db, "SELECT bitcask_stats('%s');" % table, cwd=cwd)
    if rc != 0:
        return None, err
    try:
        return json.loads(out), ''
    except ValueError as e:
        return None, 'not JSON: %r (%s)' % (out, e)


def fresh_rows(db, table='kv'):
    """All rows of table as seen by a brand-new process (the sqlite3 shell), as a dict."""
    rc, out, err = shell(db, '.mode json', 'SELECT key, value FROM %s;' % table)
    if rc != 0:
        return None, err
    return ({r['key']: r['value'] for r in json.loads(out)} if out else {}), ''


def connect(db, timeout=5.0):
    """A connection of this process with the extension loaded (autocommit)."""
    con = sqlite3.connect(db, isolation_level=None, timeout=timeout)
    con.enable_load_extension(True)
    con.load_extension(EXT)
    return con
