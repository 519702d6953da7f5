#!/usr/bin/env bash
# Readers and the writer across processes (README "Processes"; registry.c
# "Readers and the writer"): as with a native table, any number of processes
# read while one writes, and a process takes the writer lock only at its
# first write.  A second writer gets SQLITE_BUSY naming the holder's pid,
# and its next write succeeds once the holder is gone, without reconnecting.
# A stale lock from a dead process never blocks.
. "$(dirname "$0")/lib.sh"
cd "$T"

sql app.db "CREATE VIRTUAL TABLE kv USING bitcask(dir='store');" \
  "INSERT INTO kv VALUES('a', 1);" >/dev/null

# start_shell NAME: a sqlite3 process fed through the fifo NAME.ctl, its
# output in NAME.out; say NAME SQL... sends lines and waits for a marker.
start_shell() {
  mkfifo "$1.ctl"
  sleep 60 > "$1.ctl" &
  eval "${1}_sleep=$!"
  "$SQLITE" -batch app.db < "$1.ctl" > "$1.out" 2>&1 &
  eval "${1}_pid=$!"
  echo ".load $EXT" > "$1.ctl"
}
say() {
  local name=$1 mark="mark$RANDOM"; shift
  { for l in "$@"; do echo "$l"; done; echo "SELECT '$mark';"; } > "$name.ctl"
  for _ in $(seq 100); do grep -q "$mark" "$name.out" 2>/dev/null && break; sleep 0.05; done
}

# Process A only reads: it takes no lock, so another process may write.
start_shell A
say A "SELECT 'A read', count(*) FROM kv;"
expect "a reader holds no lock" "A read|1" "$(grep 'A read' A.out)"
out=$(sql app.db "INSERT INTO kv VALUES('b', 2);" "SELECT count(*) FROM kv;" 2>&1)
expect "another process writes while A reads" "2" "$out"
say A "SELECT 'A sees', count(*) FROM kv;"
expect "A's next statement sees that write" "A sees|2" "$(grep 'A sees' A.out)"

# A writes: now it holds the lock.
say A "INSERT INTO kv VALUES('h', 0);" "SELECT 'A wrote', count(*) FROM kv;"
expect "A's first write takes the lock" "A wrote|3" "$(grep 'A wrote' A.out)"

# A second plain shell can still read, and its write is refused.
out=$(sql app.db "SELECT count(*) FROM kv;" 2>&1)
expect "a second shell reads while A writes" "3" "$out"
out=$(sql app.db "INSERT INTO kv VALUES('x', 9);" 2>&1)
rc=$?
expect_match "second writer refused, holder's pid named" "locked by pid $A_pid" "$out"
expect_match "second writer names the table" "bitcask table 'kv'" "$out"
expect_match "second writer gets SQLITE_BUSY" "\(5\)|database is locked|locked" "$out"
expect_match "nonzero exit of the refused writer" "^[1-9][0-9]*$" "$rc"
printf '%s\n' "$out" > refused.txt

# Process B, a long-lived shell, is refused too -- and succeeds once A is
# gone, on the same connection.
start_shell B
say B "SELECT 'B read', count(*) FROM kv;" "INSERT INTO kv VALUES('y', 8);"
expect_match "B's write is refused while A holds the lock" "locked by pid $A_pid" "$(cat B.out)"

# Kill A with SIGKILL: its lock must not outlive it.
kill -9 "$A_pid" "$A_sleep" 2>/dev/null
wait "$A_pid" 2>/dev/null
say B "INSERT INTO kv VALUES('c', 3);" \
  "SELECT 'B after', group_concat(key) FROM (SELECT key FROM kv ORDER BY key);"
expect "B writes once A is gone, without reconnecting" "B after|a,b,c,h" "$(grep 'B after' B.out)"
kill "$B_pid" "$B_sleep" 2>/dev/null
wait "$B_pid" 2>/dev/null
out=$(sql app.db "SELECT group_concat(key) FROM (SELECT key FROM kv ORDER BY key);" 2>&1)
expect "stale lock does not block; every acknowledged write is there" "a,b,c,h" "$out"

finish
