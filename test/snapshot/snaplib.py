# Shared helpers of the consistent-read tests in this directory (issue 13:
# one statement sees one committed state).  Not a test itself.
#
# The reporting (check, finish) and connect() come from the black-box
# prologue test/blackbox/bb.py; this adds a writer in another process that
# runs SQL on request, so that a statement of this process can make another
# process commit halfway through and wait until it has.
import json, os, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'blackbox'))
from bb import EXT, check, finish, connect, tmpdir  # noqa: E402,F401


class Peer:
    """Another process holding one connection to db (WAL, extension loaded).
    run(sql, ...) executes statements there in order and returns the last one's
    rows once they have run (for a write: once it has committed); an error
    there raises RuntimeError here with its message."""

    def __init__(self, db, *setup):
        self.p = subprocess.Popen([sys.executable, os.path.abspath(__file__), EXT, '--peer', db],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if setup:
            self.run(*setup)

    def run(self, *sql):
        self.p.stdin.write(json.dumps(list(sql)) + '\n')
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError('peer process died (rc %r)' % self.p.wait())
        r = json.loads(line)
        if 'error' in r:
            raise RuntimeError('peer: %s' % r['error'])
        return [tuple(x) for x in r['rows']]

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=30)


def _peer_main(db):
    con = connect(db)
    con.execute('PRAGMA journal_mode=WAL')
    for line in sys.stdin:
        rows = []
        try:
            for s in json.loads(line):
                rows = con.execute(s).fetchall()
            out = {'rows': rows}
        except Exception as e:  # reported to the other side
            out = {'error': '%s: %s' % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(out) + '\n')
        sys.stdout.flush()
    con.close()


if __name__ == '__main__' and len(sys.argv) > 3 and sys.argv[2] == '--peer':
    _peer_main(sys.argv[3])
