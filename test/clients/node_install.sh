#!/usr/bin/env bash
# Install the Node clients of docs/clients.md -- better-sqlite3 and
# node-sqlite3 (npm's `sqlite3`), both built from source against the SQLite
# each bundles -- into DIR/node_modules, once:
#     bash test/clients/node_install.sh DIR
# Exits 0 when both load in node afterwards (already installed, or installed
# now), 1 with one line saying why otherwise (no node or npm, no network, a
# build failure: DIR/install.log has npm's output).  The install needs the
# npm registry and takes a few minutes on 2 cores (two SQLite amalgamations
# compiled); NODE_INSTALL_TIMEOUT (seconds, default 900) bounds it.
DIR=${1:?usage: $0 DIR}
mkdir -p "$DIR" || exit 1
DIR=$(cd "$DIR" && pwd)
loads() {
  NODE_PATH="$DIR/node_modules" node -e "require('better-sqlite3'); require('sqlite3')" \
    >/dev/null 2>&1
}
command -v node >/dev/null || { echo "no node on PATH"; exit 1; }
loads && exit 0
command -v npm >/dev/null || { echo "no npm on PATH"; exit 1; }
cat > "$DIR/package.json" <<'EOF'
{
  "name": "bitcask-sqlite-client-tests",
  "private": true,
  "description": "The Node clients docs/clients.md shows, for test/clients (not part of the product)",
  "dependencies": { "better-sqlite3": "^12.0.0", "sqlite3": "^6.0.0" }
}
EOF
echo "node clients: installing better-sqlite3 and sqlite3 from source into $DIR" \
     "(once; a few minutes)" >&2
( cd "$DIR" && npm_config_build_from_source=true timeout "${NODE_INSTALL_TIMEOUT:-900}" \
    npm install --no-audit --no-fund --prefer-offline --fetch-retries=1 --fetch-timeout=30000 \
    > install.log 2>&1 )
rc=$?
if ! loads; then
  if [ $rc = 124 ]; then why="timed out after ${NODE_INSTALL_TIMEOUT:-900} s"
  elif grep -qE 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|network' "$DIR/install.log"; then
    why="no network to the npm registry"
  else why="npm install failed (rc $rc)"; fi
  echo "$why; see $DIR/install.log"
  exit 1
fi
exit 0
