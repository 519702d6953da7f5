#!/usr/bin/python3
"""callgraph.py -- the file-level call graph of the engine (and with --ext,
of the extension too): the files, the edges (file A uses a function defined
in file B, A != B, with the number of call sites and of references to
functions taken as values), the cycles (strongly connected components of
more than one file, and every pair of files that use each other), and the
longest functions.

  /usr/bin/python3 tools/callgraph.py [--root DIR] [--ext] [--top N]

Calls in comments and strings do not count; a call to a static inline
function of a header counts as a use of the functions it calls (see
tools/cparse.py for what the parser knows).  Reads the tree under --root
(default: the repository this script is in), writes to stdout.
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cparse  # noqa: E402


def load(root, with_ext):
  sources = ["engine/*.c"] + (["ext/*.c"] if with_ext else [])
  headers = ["engine/*.h", "include/*.h"] + (["ext/*.h"] if with_ext else [])
  return cparse.Program(root, sources, headers)


def edges_of(prog):
  """{(a, b): {"call": n, "ref": m, "names": {callee: count}}} for a != b."""
  edges = {}
  for f in prog.sources:
    for u in prog.resolve_uses(f):
      if u.dst == u.src:
        continue
      e = edges.setdefault((u.src, u.dst), {"call": 0, "ref": 0, "names": {}})
      e[u.kind] += 1
      e["names"][u.callee.name] = e["names"].get(u.callee.name, 0) + 1
  return edges


def sccs(nodes, succ):
  """Tarjan's strongly connected components, each sorted, in a stable
  order."""
  index = {}
  low = {}
  stack = []
  on = set()
  out = []
  counter = [0]

  def visit(v):
    # iterative, to stay clear of the recursion limit
    work = [(v, iter(sorted(succ.get(v, ()))))]
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    while work:
      node, it = work[-1]
      advanced = False
      for w in it:
        if w not in index:
          index[w] = low[w] = counter[0]
          counter[0] += 1
          stack.append(w)
          on.add(w)
          work.append((w, iter(sorted(succ.get(w, ())))))
          advanced = True
          break
        if w in on:
          low[node] = min(low[node], index[w])
      if advanced:
        continue
      work.pop()
      if work:
        parent = work[-1][0]
        low[parent] = min(low[parent], low[node])
      if low[node] == index[node]:
        comp = []
        while True:
          w = stack.pop()
          on.discard(w)
          comp.append(w)
          if w == node:
            break
        out.append(sorted(comp))

  for v in sorted(nodes):
    if v not in index:
      visit(v)
  return sorted(out, key=lambda c: (-len(c), c))


def report(prog, top, out):
  edges = edges_of(prog)
  files = [f.rel for f in prog.sources]
  succ = {}
  for (a, b) in edges:
    succ.setdefault(a, set()).add(b)
  pred = {}
  for (a, b) in edges:
    pred.setdefault(b, set()).add(a)
  w = out.write
  w("call graph of %s\n\n" % ", ".join(sorted(
      {os.path.dirname(f) + "/*.c" for f in files})))

  w("files: %d\n" % len(files))
  width = max(len(f) for f in files)
  for f in prog.sources:
    nfn = len(f.defined())
    w("  %-*s %5d lines %3d functions  calls into %2d files, called from %2d\n"
      % (width, f.rel, f.nlines, nfn, len(succ.get(f.rel, ())),
         len(pred.get(f.rel, ()))))

  ncalls = sum(e["call"] for e in edges.values())
  nrefs = sum(e["ref"] for e in edges.values())
  w("\nedges: %d (%d call sites, %d references to functions as values)\n"
    % (len(edges), ncalls, nrefs))
  for (a, b) in sorted(edges):
    e = edges[(a, b)]
    names = sorted(e["names"].items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join("%s %d" % kv for kv in names[:6])
    if len(names) > 6:
      shown += ", +%d more" % (len(names) - 6)
    refs = " +%d refs" % e["ref"] if e["ref"] else ""
    w("  %-*s -> %-*s %4d%s  (%s)\n" % (width, a, width, b, e["call"], refs,
                                        shown))

  comps = [c for c in sccs(files, succ) if len(c) > 1]
  pairs = sorted((a, b) for (a, b) in edges if a < b and (b, a) in edges)
  w("\ncycles: %d strongly connected component%s of more than one file\n"
    % (len(comps), "" if len(comps) == 1 else "s"))
  for c in comps:
    w("  %d files: %s\n" % (len(c), " ".join(c)))
  w("two-file cycles (A and B use each other): %d\n" % len(pairs))
  for a, b in pairs:
    w("  %s <-> %s\n" % (a, b))

  fns = [fn for f in prog.sources for fn in f.defined()]
  fns.sort(key=lambda fn: (-fn.lines, fn.path, fn.line))
  w("\nlongest functions (top %d of %d): lines from the name to the closing "
    "brace,\n(lines of code in it: neither blank nor only comment)\n"
    % (min(top, len(fns)), len(fns)))
  for fn in fns[:top]:
    w("  %5d (%4d)  %-28s %s:%d\n" % (fn.lines, fn.code_lines, fn.name,
                                       fn.path, fn.line))
  over = [fn for fn in fns if fn.lines > 120]
  w("functions over 120 lines: %d%s\n" % (
      len(over), (" (" + ", ".join(fn.name for fn in over) + ")")
      if over else ""))

  if prog.warnings:
    w("\nparser warnings:\n")
    for x in prog.warnings:
      w("  %s\n" % x)


def main(argv):
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  cparse.add_root_argument(ap)
  ap.add_argument("--ext", action="store_true",
                  help="ext/*.c as well as engine/*.c")
  ap.add_argument("--top", type=int, default=10,
                  help="how many of the longest functions to list")
  args = ap.parse_args(argv)
  prog = load(args.root, args.ext)
  if not prog.sources:
    sys.stderr.write("callgraph: no engine/*.c under %s\n" % args.root)
    return 2
  report(prog, args.top, sys.stdout)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
