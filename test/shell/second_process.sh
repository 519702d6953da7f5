#!/usr/bin/env bash
# DESIGN.md section 1: "A second process may not write while one holds the
# writer lock: it gets SQLITE_BUSY with a message naming the store and the
# holder's pid."  DESIGN.md section 2: "A stale lock from a dead process never
# blocks an open."
. "$(dirname "$0")/lib.sh"
cd "$T"

sql app.db "CREATE VIRTUAL TABLE kv USING bitcask(dir='store');" \
  "INSERT INTO kv VALUES('a', 1);" >/dev/null

# Process A opens the store and keeps it open.
mkfifo ctl
sleep 30 > ctl &
holder_sleep=$!
"$SQLITE" -batch app.db < ctl > a.out 2>&1 &
holder=$!
{ echo ".load $EXT"; echo "SELECT 'ready', count(*) FROM kv;"; } > ctl
for _ in $(seq 50); do grep -q ready a.out 2>/dev/null && break; sleep 0.1; done
expect "holder has the store open" "ready|1" "$(cat a.out)"

out=$(sql app.db "INSERT INTO kv VALUES('b', 2);" 2>&1)
rc=$?
expect_match "second writer refused, holder's pid named" "locked by pid $holder" "$out"
expect_match "second writer gets SQLITE_BUSY" "\(5\)|database is locked|locked" "$out"
expect_match "nonzero exit of the refused writer" "^[1-9][0-9]*$" "$rc"
printf '%s\n' "$out" > refused.txt

# Kill the holder with SIGKILL: its lock must not outlive it.
kill -9 "$holder" "$holder_sleep" 2>/dev/null
wait "$holder" 2>/dev/null
out=$(sql app.db "INSERT INTO kv VALUES('c', 3);" "SELECT group_concat(key) FROM (SELECT key FROM kv ORDER BY key);" 2>&1)
expect "stale lock does not block" "a,c" "$out"

finish
