#!/usr/bin/python3
"""check_tree.py -- fails when the repository tracks a stray store or
database (`make check-tree`, part of every `make check`): a SQLite database
or its journal (*.db, *.sqlite, *-journal, *-wal, *-shm), a directory named
*.bitcask, or a file that only a store holds (its marker BITCASK, LOCK,
MERGE, OWNERS, a data or hint file <10 digits>.data/.hint and their
.merging/.tmp forms; engine/layout.h names them).  Such files are left
behind by a test or a demo run in the work tree; .gitignore keeps most out,
this catches the rest.

  /usr/bin/python3 tools/check_tree.py [--root DIR]

The files are those git tracks; where git or the .git directory is missing
(a tarball checkout), every file under the tree except the build
directories.  FIXTURES lists the deliberate exceptions.
"""

import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cparse  # noqa: E402

# Paths (prefixes) where stores and databases are deliberate test fixtures.
# test/fuzz/corpus holds the fuzzer's inputs: bytes of damaged stores, each
# file named by its hash, so nothing there matches today either.
FIXTURES = ("test/fuzz/corpus/",)

DATABASE = re.compile(r".*(\.db|\.sqlite3?|-journal|-wal|-shm)$")
STORE_DIR = re.compile(r".*\.bitcask$")
STORE_FILE = re.compile(
    r"^(BITCASK|BITCASK\.tmp|LOCK|MERGE|MERGE\.tmp|OWNERS|OWNERS\.tmp|"
    r"[0-9]{10}\.(data|hint)(\.merging|\.tmp)?)$")

# Walked over only when git cannot list the tracked files.
SKIP_DIRS = re.compile(r"^(\.git|build.*|node_modules|__pycache__)$")


def tracked(root):
  """The tracked files (relative paths), or None when git cannot say."""
  if not os.path.exists(os.path.join(root, ".git")):
    return None
  try:
    out = subprocess.run(["git", "-C", root, "ls-files", "-z"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         check=True).stdout
  except (OSError, subprocess.CalledProcessError):
    return None
  return [p for p in out.decode("utf-8", "replace").split("\0") if p]


def walked(root):
  out = []
  for d, dirs, files in os.walk(root):
    dirs[:] = sorted(x for x in dirs
                     if not (d == root and SKIP_DIRS.match(x)) and
                     x not in (".git", "node_modules", "__pycache__"))
    for f in files:
      out.append(os.path.relpath(os.path.join(d, f), root))
  return sorted(out)


def strays(paths):
  found = []
  for p in paths:
    if p.startswith(FIXTURES):
      continue
    parts = p.split("/")
    why = None
    if DATABASE.match(parts[-1]):
      why = "a database or its journal"
    elif STORE_FILE.match(parts[-1]):
      why = "a file of a store (its directory is a store)"
    else:
      for i, part in enumerate(parts[:-1]):
        if STORE_DIR.match(part):
          why = "inside a store directory %s/" % "/".join(parts[:i + 1])
          break
    if why:
      found.append((p, why))
  return found


def main(argv):
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  cparse.add_root_argument(ap)
  args = ap.parse_args(argv)
  paths = tracked(args.root)
  what = "tracked files"
  if paths is None:
    paths = walked(args.root)
    what = "files (no git: every file outside the build directories)"
  found = strays(paths)
  for p, why in found:
    print("check_tree: %s: %s; remove it (git rm -r --cached) or, if it is a "
          "deliberate fixture, add its directory to FIXTURES in "
          "tools/check_tree.py" % (p, why))
  if found:
    print("check_tree: %d stray store or database file%s among %d %s"
          % (len(found), "" if len(found) == 1 else "s", len(paths), what))
    return 1
  print("check_tree: no stray store or database among %d %s"
        % (len(paths), what))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
