#!/usr/bin/env bash
# The extension from SQLite's clients (docs/clients.md):
#     bash test/clients/run.sh build/bitcask
#   - roundtrip.py: Python's sqlite3 module (/usr/bin/python3, both of its
#     transaction modes) and APSW when installed, against a native table;
#   - snippets.py: every example of docs/clients.md (the shell, Python, APSW,
#     better-sqlite3, node-sqlite3, and two C programs compiled here), its
#     output compared with the one shown;
#   - roundtrip.js under better-sqlite3 and node-sqlite3.
# The Node modules are installed from source into BUILD/node once
# (node_install.sh: the npm registry and a few minutes the first time);
# where that cannot be done (no node, no network) the Node parts are skipped
# with a line saying why, as is APSW when it is not installed.
# CLIENTS_NODE=0 skips the Node parts without trying.
EXT=${1:?usage: $0 path/to/build/bitcask}
cd "$(dirname "$0")/../.." || exit 2
case "$EXT" in /*) ;; *) EXT="$PWD/$EXT" ;; esac
BUILD=$(dirname "$EXT")
rc=0
echo "== test/clients/roundtrip.py"
/usr/bin/python3 test/clients/roundtrip.py "$EXT" || rc=1

modules=""
if [ "${CLIENTS_NODE:-1}" = 0 ]; then
  echo "clients: SKIP node (better-sqlite3, node-sqlite3): CLIENTS_NODE=0"
elif why=$(bash test/clients/node_install.sh "$BUILD/node"); then
  modules="$BUILD/node/node_modules"
else
  echo "clients: SKIP node (better-sqlite3, node-sqlite3): $why"
fi

echo "== test/clients/snippets.py (docs/clients.md)"
/usr/bin/python3 test/clients/snippets.py "$BUILD" "$modules" || rc=1

if [ -n "$modules" ]; then
  for m in better-sqlite3 sqlite3; do
    echo "== test/clients/roundtrip.js ($m)"
    d=$(mktemp -d)
    NODE_PATH="$modules" node test/clients/roundtrip.js "$EXT" "$d" "$m" || rc=1
    rm -rf "$d"
  done
fi
exit $rc
