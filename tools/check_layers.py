#!/usr/bin/python3
"""check_layers.py -- the engine's layers, written down once, and the check
that the calls between engine files follow them (`make check-layers`, part
of every `make check`).

  /usr/bin/python3 tools/check_layers.py [--root DIR] [--report]

It fails (exit 1), naming every offence, when
 - an engine file calls (or takes the address of) a function defined in a
   file of a higher layer, or in a file listed after it in its own layer --
   except keydir.c and keytree.c, which may call each other (the ordered
   index and the hash table are one structure);
 - an engine file calls (or takes the address of) a function declared in
   include/bitcask.h, from any file, its own included: public functions are
   entry points only (they take the store's mutex, which the engine below
   them already holds), so a public function and an engine caller share an
   internal variant instead -- except the functions of PUBLIC_CALLS_ALLOWED,
   each with its reason;
 - an engine/*.c file is not in LAYERS (a new file must be given a place);
 - a file of ext/ includes a header that is neither in include/ (the public
   contract) nor in ext/ itself.
Files of LAYERS that do not exist are fine.  A call through a static inline
function of a header counts as a call of what that function calls.  With
--report it prints the same and the layer of each file, and always exits 0
(for looking at a branch that is not there yet).  Reads the tree under
--root (default: the repository this script is in).  The parser is
tools/cparse.py, shared with tools/callgraph.py.
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cparse  # noqa: E402

# The engine's layers, lowest first; within a layer a file may call only the
# files listed before it.  docs/DESIGN.md describes what each file owns.
LAYERS = [
    ("foundation", ["io.c", "error.c", "record.c", "layout.c",
                    "keydir.c", "keytree.c"]),
    ("file-level", ["files.c", "lock.c", "marker.c", "owners.c",
                    "datafile.c", "hint.c"]),
    ("versions", ["versions.c"]),
    ("writer", ["active.c"]),
    ("replay", ["replay.c"]),
    ("merge, recovery, follow", ["merge.c", "recovery.c", "follow.c"]),
    # snapshot.c before iter.c and fold.c: they read through its views.
    ("transactions and reads", ["txn.c", "snapshot.c", "iter.c", "fold.c"]),
    ("public API", ["store.c"]),
]

# The functions of include/bitcask.h that engine code may call, and why.
# Each takes no store and no lock and is the one definition of what it does.
PUBLIC_CALLS_ALLOWED = {
    "bc_key_cmp": "the key order: the ordered index (keytree.c), the "
                  "iterators' bounds (iter.c) and the extension must agree "
                  "on it, so all call the one definition; pure, no lock",
    "bc_options_init": "the default options, written once; bc_open uses them "
                       "when given none; fills a struct, no store, no lock",
}

# The pairs of files that may call each other whatever their order.
ALLOWED_PAIRS = {frozenset(["keydir.c", "keytree.c"])}


def layer_table():
  """{file name: (layer number, layer name, position in the layer)}."""
  table = {}
  for n, (name, files) in enumerate(LAYERS):
    for pos, f in enumerate(files):
      assert f not in table, "%s is in LAYERS twice" % f
      table[f] = (n, name, pos)
  return table


def where(table, f):
  n, name, _ = table[f]
  return "layer %d %s" % (n, name)


def call_offences(prog, table):
  """[(src file, callee name, dst file, [Use])] for the uses that go up."""
  found = {}
  for f in prog.sources:
    a = os.path.basename(f.rel)
    if a not in table:
      continue
    for u in prog.resolve_uses(f):
      b = os.path.basename(u.dst)
      if u.dst == u.src or b not in table:
        continue
      if frozenset([a, b]) in ALLOWED_PAIRS:
        continue
      la, lb = table[a], table[b]
      if (lb[0], lb[2]) > (la[0], la[2]):
        found.setdefault((f.rel, u.callee.name, u.dst), []).append(u)
  return [(k[0], k[1], k[2], v) for k, v in sorted(found.items())]


def describe(table, src, callee, dst, uses):
  a, b = os.path.basename(src), os.path.basename(dst)
  la, lb = table[a], table[b]
  if lb[0] > la[0]:
    how = "a higher layer"
  else:
    how = "a later file of the same layer"
  u = uses[0]
  more = " (+%d more)" % (len(uses) - 1) if len(uses) > 1 else ""
  via = ""
  if u.via:
    via = " through inline %s" % " -> ".join(u.via)
  callers = sorted({x.caller.name for x in uses})
  return ("%s:%d%s: %s (%s) calls %s%s of %s (%s), %s; in %s"
          % (src, u.line, more, a, where(table, a), callee, via, b,
             where(table, b), how, ", ".join(callers)))


def unplaced_files(prog, table):
  return [f.rel for f in prog.sources
          if f.rel.startswith("engine/") and
          os.path.basename(f.rel) not in table]


def ext_include_offences(root):
  """The #include lines of ext/ that name a header outside include/ and
  ext/."""
  out = []
  ext = os.path.join(root, "ext")
  if not os.path.isdir(ext):
    return out
  for name in sorted(os.listdir(ext)):
    if not name.endswith((".c", ".h")):
      continue
    rel = "ext/" + name
    cf = cparse.CFile(os.path.join(ext, name), rel)
    for line, spec in cf.includes:
      if len(spec) < 2 or spec[0] not in "\"<":
        continue  # #include MACRO: not this check's business
      target = spec[1:].split(spec[0] == "<" and ">" or "\"")[0]
      parts = os.path.normpath(target).split(os.sep)
      if spec[0] == "\"":
        ok = False
        for base in ("ext", "include"):
          p = os.path.normpath(os.path.join(base, target))
          if p.split(os.sep)[0] == base and \
             os.path.isfile(os.path.join(root, p)):
            ok = True
            break
        if not ok:
          out.append("%s:%d: ext/ includes %s, which is in neither include/ "
                     "nor ext/" % (rel, line, spec))
      else:
        # a system header, unless it names one of the repository's own
        if ".." in parts or "engine" in parts or \
           os.path.isfile(os.path.join(root, "engine", target)):
          out.append("%s:%d: ext/ includes %s, an engine header (ext/ is "
                     "compiled against include/ only)" % (rel, line, spec))
  return out


def public_names(root):
  """The names of the functions declared in include/bitcask.h."""
  hdr = os.path.join(root, "include", "bitcask.h")
  if not os.path.isfile(hdr):
    return set()
  toks, _ = cparse.lex(open(hdr, encoding="utf-8", errors="replace").read())
  return {toks[i].text for i in range(len(toks) - 1)
          if toks[i].kind == "id" and toks[i + 1].text == "("}


def public_call_offences(prog, root):
  """[(src file, caller, callee, [Use])] for the engine's uses of functions
  of include/bitcask.h that PUBLIC_CALLS_ALLOWED does not list."""
  public = public_names(root)
  found = {}
  for f in prog.sources:
    if not f.rel.startswith("engine/"):
      continue
    for u in prog.resolve_uses(f):
      name = u.callee.name
      if name in public and name not in PUBLIC_CALLS_ALLOWED and \
         u.caller.name != name and u.dst.startswith("engine/"):
        found.setdefault((f.rel, u.caller.name, name), []).append(u)
  return [(k[0], k[1], k[2], v) for k, v in sorted(found.items())]


def describe_public(src, caller, callee, uses):
  u = uses[0]
  more = " (+%d more)" % (len(uses) - 1) if len(uses) > 1 else ""
  via = ""
  if u.via:
    via = " through inline %s" % " -> ".join(u.via)
  return ("%s:%d%s: %s calls %s%s of include/bitcask.h; public functions "
          "are entry points only (share an internal variant, or list it in "
          "PUBLIC_CALLS_ALLOWED with the reason)"
          % (src, u.line, more, caller, callee, via))


def allowed_public_calls(prog, root):
  """Notes: the engine's calls of PUBLIC_CALLS_ALLOWED functions."""
  public = public_names(root)
  notes = {}
  for f in prog.sources:
    for u in prog.resolve_uses(f):
      if u.callee.name in public and u.callee.name in PUBLIC_CALLS_ALLOWED \
         and u.caller.name != u.callee.name and u.dst.startswith("engine/"):
        notes.setdefault((f.rel, u.caller.name, u.callee.name), u.line)
  return ["%s:%d: %s calls the public %s"
          % (k[0], line, k[1], k[2]) for k, line in sorted(notes.items())]


def main(argv):
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  cparse.add_root_argument(ap)
  ap.add_argument("--report", action="store_true",
                  help="print the layers and every offence; always exit 0")
  args = ap.parse_args(argv)
  root = args.root
  table = layer_table()
  prog = cparse.Program(root, ["engine/*.c"], ["engine/*.h", "include/*.h"])
  if not prog.sources:
    sys.stderr.write("check_layers: no engine/*.c under %s\n" % root)
    return 0 if args.report else 2
  present = {os.path.basename(f.rel) for f in prog.sources}

  if args.report:
    print("layers of %s (files not there yet in brackets):" % root)
    for n, (name, files) in enumerate(LAYERS):
      print("  %d %-24s %s" % (n, name, " ".join(
          f if f in present else "[%s]" % f for f in files)))

  offences = []
  for rel in unplaced_files(prog, table):
    offences.append("%s: not in the layer table of tools/check_layers.py "
                    "(give it a layer)" % rel)
  calls = call_offences(prog, table)
  for src, callee, dst, uses in calls:
    offences.append(describe(table, src, callee, dst, uses))
  for src, caller, callee, uses in public_call_offences(prog, root):
    offences.append(describe_public(src, caller, callee, uses))
  offences += ext_include_offences(root)
  for w in prog.warnings:
    offences.append("parser: %s" % w)

  for o in offences:
    print("check_layers: %s" % o)
  if args.report:
    pairs = {}
    for src, _callee, dst, uses in calls:
      pairs[(src, dst)] = pairs.get((src, dst), 0) + len(uses)
    if pairs:
      print("calls that go up, by pair of files:")
      for (a, b), n in sorted(pairs.items()):
        print("  %-22s -> %-22s %4d" % (a, b, n))
    notes = allowed_public_calls(prog, root)
    if notes:
      print("notes (not offences): the engine's calls of the functions of "
            "include/bitcask.h that PUBLIC_CALLS_ALLOWED lists:")
      for x in notes:
        print("  %s" % x)
      for name, why in sorted(PUBLIC_CALLS_ALLOWED.items()):
        print("  allowed: %s: %s" % (name, why))
  nsites = sum(len(u) for _, _, _, u in calls)
  if offences:
    print("check_layers: %d offence%s (%d call site%s going up)%s" % (
        len(offences), "" if len(offences) == 1 else "s", nsites,
        "" if nsites == 1 else "s", "; --report: not failing"
        if args.report else ""))
    return 0 if args.report else 1
  print("check_layers: %d engine files in %d layers, no call goes up, no "
        "engine call of a public function (%d allowed: %s)"
        % (len(prog.sources), len(LAYERS), len(PUBLIC_CALLS_ALLOWED),
           ", ".join(sorted(PUBLIC_CALLS_ALLOWED))))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
