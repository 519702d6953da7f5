#!/usr/bin/env bash
# The pre-fork pattern as Python's multiprocessing (fork start method) does
# it: the parent writes a row, forks 4 workers that each open their own
# connection and insert 300 rows, retrying on SQLITE_BUSY; each worker drops
# the connection it inherited (the garbage collector closes it in the
# child).  A fresh process must then find every acknowledged row: 1,201.
# Uses Debian's /usr/bin/python3 (a python3 that can load extensions).
. "$(dirname "$0")/lib.sh"
cd "$T"
PY=/usr/bin/python3
if ! "$PY" -c 'import sqlite3; sqlite3.connect(":memory:").enable_load_extension(True)' 2>/dev/null; then
  echo "fork_python.sh: skipped: $PY cannot load SQLite extensions (no enable_load_extension)"
  finish
  exit 0
fi

out=$("$PY" - "$EXT" "$T/app.db" <<'EOF' 2>&1
import gc, os, sqlite3, sys, time
ext, path = sys.argv[1], sys.argv[2]

def connect():
    c = sqlite3.connect(path, isolation_level=None, timeout=20)
    c.enable_load_extension(True)
    c.load_extension(ext)
    return c

parent = connect()
parent.execute("CREATE VIRTUAL TABLE kv USING bitcask")
parent.execute("INSERT INTO kv VALUES ('parent', 1)")
r, w = os.pipe()
kids = []
for n in range(4):
    pid = os.fork()
    if pid == 0:
        os.close(r)
        c = connect()
        saw_parent = 0
        acked = 0
        for i in range(300):
            while True:
                try:
                    c.execute("INSERT INTO kv VALUES (?, 1)", ("w%d-%d" % (n, i),))
                    acked += 1
                    break
                except sqlite3.OperationalError as e:
                    if "locked by pid %d" % os.getppid() in str(e):
                        saw_parent = 1
                    if "locked" in str(e) or "busy" in str(e):
                        time.sleep(0.002)
                        continue
                    raise
            if i == 0:
                os.write(w, b"x")
        c.close()
        del parent  # the inherited connection, closed by the collector
        gc.collect()
        sys.exit(0 if acked == 300 and saw_parent else 1)
    kids.append(pid)
os.close(w)
time.sleep(0.5)  # the workers meet the parent's lock first
parent.close()
ok = sum(os.waitpid(k, 0)[1] == 0 for k in kids)
print("workers ok", ok)
EOF
)
expect "4 workers met the parent's lock, then inserted 300 rows each" "workers ok 4" "$out"
out=$(sql app.db "SELECT count(*), json_extract(bitcask_stats('kv'), '\$.corrupt_records') FROM kv;" 2>&1)
expect "a fresh process finds all 1,201 acknowledged rows, none damaged" "1201|0" "$out"
finish
