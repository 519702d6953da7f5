#!/usr/bin/python3
# Black-box (attack2): README Limits, descriptors: a writing table whose max_open_files
# exceeds what a lower ulimit -n leaves, reopened there; the default recomputed at open.
# usage: /usr/bin/python3 test/blackbox/fd_writer.py build/bitcask
import os, sys, subprocess, shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bb import EXT, check, finish, tmpdir, shell

T = tmpdir('fdw')
os.chdir(T)


def limited(n, db, *stmts):
    cmd = 'ulimit -n %d; exec sqlite3 -batch -bail "$0" ".load $1" "${@:2}"' % n
    p = subprocess.run(['bash', '-c', cmd, db, EXT] + list(stmts), capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout.strip(), p.stderr.strip()

# a store of ~330 sealed files, created with max_open_files=1000 (the default's ceiling)
rc, out, err = shell('w.db', "CREATE VIRTUAL TABLE kv USING bitcask(max_file_size='4KB', max_open_files=1000);",
                     "INSERT INTO kv SELECT value, randomblob(1500) FROM generate_series(1, 1000);",
                     "SELECT json_extract(bitcask_stats('kv'), '$.files');")
check('setup: store of >300 files', rc == 0 and int(out or 0) > 300, (out, err))
# the same store seen by a readonly table with the same max_open_files: works (cache yields descriptors)
rc, out, err = limited(256, 'r.db', "CREATE VIRTUAL TABLE r USING bitcask(dir='w.db-kv.bitcask', readonly=1, max_open_files=1000);",
                       "SELECT count(*), sum(length(value)) FROM r;")
check('ulimit -n 256: readonly table with max_open_files=1000 reads everything', out == '1000|1500000', (out, err))
# the writer's own table, reopened under ulimit -n 256
rc, out, err = limited(256, 'w.db', "SELECT count(*) FROM kv;")
check('ulimit -n 256: the writing table (max_open_files=1000) opens and reads '
      '(README Limits: "An open that finds the process out of descriptors first closes cached ones")',
      rc == 0 and out == '1000', 'ulimit -n 256; sqlite3 w.db "SELECT count(*) FROM kv" -> rc=%d out=%r err=%r' % (rc, out, err))
rc, out, err = limited(256, 'w.db', "INSERT INTO kv VALUES (-1, 1);")
check('ulimit -n 256: the writing table takes a write', rc == 0, err)
rc, out, err = shell('w.db', "SELECT count(*), sum(length(value)) FROM kv;", "SELECT json_extract(bitcask_stats('kv'), '$.damaged_files');")
check('after the low-limit opens, the store under the normal limit is intact', rc == 0 and out.split('\n')[1:] == ['0'] and
      out.split('\n')[0] in ('1000|1500000', '1001|1500001'), (out, err))
rc, out, err = limited(256, 'w.db', "DROP TABLE kv;")
check('ulimit -n 256: DROP TABLE works and deletes the store',
      rc == 0 and not os.path.exists('w.db-kv.bitcask'), 'ulimit -n 256; DROP TABLE kv -> rc=%d err=%r' % (rc, err))
# default max_open_files is computed at each open: a default table created under a high limit opens under 64
rc, out, err = shell('d.db', "CREATE VIRTUAL TABLE kd USING bitcask(max_file_size='4KB');",
                     "INSERT INTO kd SELECT value, randomblob(1500) FROM generate_series(1, 1000);")
rc, out, err = limited(64, 'd.db', "SELECT count(*), sum(length(value)) FROM kd;",
                       "SELECT json_extract(bitcask_stats('kd'), '$.max_open_files');",
                       "SELECT bitcask_merge('kd') >= 0;")
check('ulimit -n 64: default table reopens with max_open_files 16, reads and merges', out.split('\n') == ['1000|1500000', '16', '1'],
      (out, err))
rc, out, err = limited(64, 'd.db', "DROP TABLE kd;")
check('ulimit -n 64: default table DROP deletes the store', rc == 0 and not os.path.exists('d.db-kd.bitcask'), err)

os.chdir('/')
shutil.rmtree(T, ignore_errors=True)
finish()
