#!/usr/bin/env bash
# `make demo` as a test: the main job on real data must run and pass its own
# survival checks.
. "$(dirname "$0")/lib.sh"
out=$(DEMO_DIR="$T/demo" bash "$(dirname "$0")/../../demo/demo.sh" "$EXT" 2>&1)
rc=$?
expect "demo exits 0" "0" "$rc"
expect_match "demo checks passed" "demo: every check passed" "$out"
[ "$rc" -eq 0 ] || echo "$out" | tail -30
finish
