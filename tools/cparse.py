"""cparse -- a small C reader for this repository's tools: which functions a
C file defines (name, static or not, first and last line) and which functions
each of them calls or takes the address of, with comments, string and
character literals and preprocessor lines other than #define bodies left
out.  Used by tools/callgraph.py (the file-level call graph) and
tools/check_layers.py (the engine's layer check); Python 3 standard library
only.

It is not a C compiler: it knows the shapes this code base uses.

 - A function definition is `name ( ... ) {` at file scope (attributes such
   as `__attribute__((x))` between the parameters and the brace are
   skipped).  Its lines run from the line of the name to the closing brace.
 - A call is `name (` inside a function body, not after `.` or `->` (a
   call through a struct's function pointer names no function).  A
   reference is a function's name used as a value (`qsort(..., cmp)`, a
   table `{ .open = px_open }` at file scope): it links the two files just
   as a call does, so it is reported beside the calls.
 - The body of a `#define` is read as code of a pseudo-function
   `#define NAME`, so a macro that calls a function counts where it is
   defined.  Other directives are skipped, every branch of an #if is read.
 - `static inline` functions of headers are parsed like any other; the
   callers resolve a call to one through to what it calls (see
   Program.resolve_uses).

Names are resolved as the linker would: a file's own definition first (static
or not), then a non-static definition in another file of the program,
preferring one in the caller's own directory.  Names defined nowhere in the
program (libc, SQLite, cmocka) are dropped.
"""

import os
import re

# The repository these tools live in (tools/..): every tool's default --root.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def add_root_argument(ap):
  """The --root option every tool takes: the repository to read."""
  ap.add_argument("--root", default=REPO_ROOT,
                  help="the repository to read (default: this one)")


KEYWORDS = frozenset("""
auto break case char const continue default do double else enum extern float
for goto if inline int long register restrict return short signed sizeof
static struct switch typedef union unsigned void volatile while _Alignas
_Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert
_Thread_local alignof alignas typeof __typeof__ __typeof __attribute__
__attribute __asm__ asm __asm __extension__ __inline __inline__ __restrict
__restrict__ defined offsetof __builtin_offsetof __builtin_expect
""".split())

ATTRIBUTE_WORDS = frozenset(["__attribute__", "__attribute", "__asm__",
                             "asm", "__asm", "__declspec"])

_IDENT_START = re.compile(r"[A-Za-z_]")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_NUMBER = re.compile(r"\.?[0-9](?:[eEpP][+-]|[A-Za-z0-9_.])*")
_INCLUDE = re.compile(r"\s*#\s*include\s*(\"[^\"]*\"|<[^>]*>|\S.*)")
_PUNCT3 = ("<<=", ">>=", "...")
_PUNCT2 = ("->", "++", "--", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||",
           "+=", "-=", "*=", "/=", "%=", "&=", "^=", "|=", "##")


class Token:
  __slots__ = ("kind", "text", "line")

  def __init__(self, kind, text, line):
    self.kind = kind  # "id", "num", "str", "p" (punctuation)
    self.text = text
    self.line = line

  def __repr__(self):
    return "Token(%s,%r,%d)" % (self.kind, self.text, self.line)


class Directive:
  """A preprocessor line: its keyword (define, include, if, ...), the rest of
  it with comments removed, its line, and for #define the tokens of the
  body."""

  def __init__(self, word, rest, line):
    self.word = word
    self.rest = rest
    self.line = line


def _skip_literal(src, i, quote):
  """Index just past the string or character literal opened at src[i]."""
  n = len(src)
  i += 1
  while i < n:
    c = src[i]
    if c == "\\":
      i += 2
      continue
    if c == quote or c == "\n":  # an unterminated literal stops at the line
      return i + 1
    i += 1
  return n


def _blank_comments_and_literals(src, keep_literals=False):
  """src with every comment replaced by spaces (newlines kept, so line
  numbers hold) and, unless keep_literals, every string or character literal
  by an empty one ("" or '')."""
  out = []
  i = 0
  n = len(src)
  start = 0
  while i < n:
    c = src[i]
    if c == "/" and i + 1 < n and src[i + 1] == "*":
      out.append(src[start:i])
      j = src.find("*/", i + 2)
      j = n if j < 0 else j + 2
      out.append(re.sub(r"[^\n]", " ", src[i:j]))
      i = start = j
    elif c == "/" and i + 1 < n and src[i + 1] == "/":
      out.append(src[start:i])
      j = i
      while j < n and src[j] != "\n":
        # a backslash-newline continues a // comment
        if src[j] == "\\" and j + 1 < n and src[j + 1] == "\n":
          j += 2
          continue
        j += 1
      out.append(re.sub(r"[^\n]", " ", src[i:j]))
      i = start = j
    elif c == '"' or c == "'":
      out.append(src[start:i])
      j = _skip_literal(src, i, c)
      body = src[i:j]
      # keep the newlines of a literal continued with backslash-newline
      out.append(body if keep_literals else c + c + "\n" * body.count("\n"))
      i = start = j
    else:
      i += 1
  out.append(src[start:])
  return "".join(out)


def _tokenize_code(text, line0, tokens):
  """Append the tokens of text (already free of comments), whose first line
  is line0."""
  i = 0
  n = len(text)
  line = line0
  while i < n:
    c = text[i]
    if c == "\n":
      line += 1
      i += 1
    elif c in " \t\r\f\v":
      i += 1
    elif c == "\\" and i + 1 < n and text[i + 1] == "\n":
      line += 1
      i += 2
    elif _IDENT_START.match(c):
      m = _IDENT.match(text, i)
      tokens.append(Token("id", m.group(0), line))
      i = m.end()
    elif c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
      m = _NUMBER.match(text, i)
      tokens.append(Token("num", m.group(0), line))
      i = m.end()
    elif c == '"' or c == "'":
      j = _skip_literal(text, i, c)
      tokens.append(Token("str", c + c, line))
      line += text.count("\n", i, j)
      i = j
    else:
      for p in _PUNCT3 + _PUNCT2:
        if text.startswith(p, i):
          tokens.append(Token("p", p, line))
          i += len(p)
          break
      else:
        tokens.append(Token("p", c, line))
        i += 1


def lex(src):
  """(tokens of the code outside directives, directives).  Each #define's
  body tokens are in directive.tokens."""
  clean = _blank_comments_and_literals(src)
  tokens = []
  directives = []
  lines = clean.split("\n")
  i = 0
  chunk = []  # consecutive code lines, tokenized together
  chunk_line = 1
  while i < len(lines):
    ln = lines[i]
    if ln.lstrip().startswith("#"):
      if chunk:
        _tokenize_code("\n".join(chunk) + "\n", chunk_line, tokens)
        chunk = []
      first = i + 1
      text = ln
      while text.endswith("\\") and i + 1 < len(lines):
        i += 1
        text = text[:-1] + "\n" + lines[i]
      body = text.lstrip()[1:].lstrip()
      m = _IDENT.match(body)
      word = m.group(0) if m else ""
      rest = body[m.end():] if m else body
      d = Directive(word, rest, first)
      d.tokens = []
      if word == "define":
        mm = re.match(r"\s*([A-Za-z_][A-Za-z_0-9]*)(\([^)]*\))?", rest)
        d.name = mm.group(1) if mm else ""
        params = set()
        if mm and mm.group(2):
          params = set(_IDENT.findall(mm.group(2)))
        d.params = params
        body_text = rest[mm.end():] if mm else rest
        _tokenize_code(body_text, first, d.tokens)
      directives.append(d)
      i += 1
      chunk_line = i + 1
      continue
    if not chunk:
      chunk_line = i + 1
    chunk.append(ln)
    i += 1
  if chunk:
    _tokenize_code("\n".join(chunk) + "\n", chunk_line, tokens)
  return tokens, directives


class Function:
  def __init__(self, name, path, line, end, static):
    self.name = name
    self.path = path
    self.line = line
    self.end = end
    self.static = static
    self.uses = []  # (name, line, kind) with kind "call" or "ref"
    self.code_lines = 0  # lines with code: not blank, not only comment

  @property
  def lines(self):
    return self.end - self.line + 1


class CFile:
  """One parsed C file: its functions (in order, including the pseudo
  functions "#define NAME" and "<file scope>"), its #include lines, and any
  doubts the parser had."""

  def __init__(self, path, rel):
    self.path = path
    self.rel = rel
    self.functions = []
    self.includes = []  # (line, '<x.h>' or '"x.h"' or a macro's name)
    self.warnings = []
    with open(path, encoding="utf-8", errors="replace") as f:
      src = f.read()
    self.nlines = src.count("\n") + (0 if src.endswith("\n") or not src else 1)
    tokens, directives = lex(src)
    self._code = {t.line for t in tokens} | {d.line for d in directives}
    for n, ln in enumerate(
        _blank_comments_and_literals(src, True).split("\n"), 1):
      m = _INCLUDE.match(ln)
      if m:
        self.includes.append((n, m.group(1).strip()))
    for d in directives:
      if d.word == "define" and d.tokens:
        fn = Function("#define " + d.name, rel, d.line,
                      d.tokens[-1].line, True)
        fn.macro = True
        _collect_uses(d.tokens, 0, len(d.tokens), fn, exclude=d.params)
        if fn.uses:
          self.functions.append(fn)
    self._parse(tokens)

  def defined(self):
    return [f for f in self.functions if not f.name.startswith(("#", "<"))]

  def _parse(self, toks):
    n = len(toks)
    depth = 0
    stmt_start = 0  # first token of the current file-scope declaration
    filescope = Function("<file scope>", self.rel, 1, 1, True)
    i = 0
    while i < n:
      t = toks[i]
      if t.kind == "p" and t.text == "{" and depth == 0:
        fn = self._definition_at(toks, stmt_start, i)
        if fn is not None:
          end = _matching_brace(toks, i)
          if end is None:
            self.warnings.append("%s:%d: no closing brace for %s"
                                 % (self.rel, t.line, fn.name))
            end = n - 1
          fn.end = toks[end].line
          fn.code_lines = sum(1 for x in range(fn.line, fn.end + 1)
                              if x in self._code)
          _collect_uses(toks, i + 1, end, fn)
          self.functions.append(fn)
          i = end + 1
          stmt_start = i
          continue
        depth += 1
      elif t.kind == "p" and t.text == "{":
        depth += 1
      elif t.kind == "p" and t.text == "}":
        depth -= 1
        if depth < 0:
          self.warnings.append("%s:%d: unbalanced '}'" % (self.rel, t.line))
          depth = 0
        if depth == 0:
          # the end of a struct/enum/initializer at file scope: the
          # declaration goes on to its ';'
          pass
      elif t.kind == "p" and t.text == ";" and depth == 0:
        self._file_scope_uses(toks, stmt_start, i, filescope)
        stmt_start = i + 1
      i += 1
    if depth != 0:
      self.warnings.append("%s: braces unbalanced at end of file (%d)"
                           % (self.rel, depth))
    if filescope.uses:
      self.functions.append(filescope)

  def _file_scope_uses(self, toks, a, b, filescope):
    """The function names used as values in the initializer of a file-scope
    declaration toks[a:b] (after its first top-level '=')."""
    depth = 0
    for k in range(a, b):
      t = toks[k]
      if t.kind == "p" and t.text in "([{":
        depth += 1
      elif t.kind == "p" and t.text in ")]}":
        depth -= 1
      elif t.kind == "p" and t.text == "=" and depth == 0:
        _collect_uses(toks, k + 1, b, filescope)
        return

  def _definition_at(self, toks, a, brace):
    """The Function whose body opens at toks[brace], or None when the brace
    opens something else (struct, enum, initializer)."""
    k = brace - 1
    while k >= a:
      t = toks[k]
      if t.kind != "p" or t.text != ")":
        return None
      open_ = _matching_paren_back(toks, k, a)
      if open_ is None or open_ - 1 < a:
        return None
      name = toks[open_ - 1]
      if name.kind == "id" and name.text in ATTRIBUTE_WORDS:
        k = open_ - 2
        continue
      if name.kind == "p" and name.text == "(" and open_ - 2 >= a \
         and toks[open_ - 2].text in ATTRIBUTE_WORDS:
        # __attribute__((...)): the inner paren matched first
        k = open_ - 3
        continue
      if name.kind != "id" or name.text in KEYWORDS:
        return None
      head = [x.text for x in toks[a:open_ - 1]]
      if "=" in head or not head:
        return None
      if head and head[0] == "typedef":
        return None
      return Function(name.text, self.rel, name.line, name.line,
                      "static" in head)
    return None


def _matching_paren_back(toks, close, lo):
  depth = 0
  k = close
  while k >= lo:
    t = toks[k]
    if t.kind == "p" and t.text == ")":
      depth += 1
    elif t.kind == "p" and t.text == "(":
      depth -= 1
      if depth == 0:
        return k
    k -= 1
  return None


def _matching_brace(toks, open_):
  depth = 0
  for k in range(open_, len(toks)):
    t = toks[k]
    if t.kind == "p" and t.text == "{":
      depth += 1
    elif t.kind == "p" and t.text == "}":
      depth -= 1
      if depth == 0:
        return k
  return None


def _collect_uses(toks, a, b, fn, exclude=()):
  """Record in fn.uses every identifier of toks[a:b] that could name a
  function: "call" when followed by '(', else "ref".  Which of them name a
  function of the program is decided later, by Program."""
  for k in range(a, b):
    t = toks[k]
    if t.kind != "id" or t.text in KEYWORDS or t.text in exclude:
      continue
    if k > 0 and toks[k - 1].kind == "p" and toks[k - 1].text in (".", "->"):
      continue
    nxt = toks[k + 1] if k + 1 < len(toks) else None
    if nxt is not None and nxt.kind == "p" and nxt.text == "(":
      fn.uses.append((t.text, t.line, "call"))
    else:
      fn.uses.append((t.text, t.line, "ref"))


class Use:
  """One resolved use: caller (Function) in file src uses callee (Function)
  in file dst, at line, as "call" or "ref"; via is the chain of header
  inline functions the use went through (empty for a direct use)."""
  __slots__ = ("src", "caller", "dst", "callee", "line", "kind", "via")

  def __init__(self, src, caller, dst, callee, line, kind, via):
    self.src, self.caller, self.dst, self.callee = src, caller, dst, callee
    self.line, self.kind, self.via = line, kind, via


class Program:
  """The C files of a tree: sources (the .c files whose graph is wanted) and
  headers (parsed for their inline functions, which are transparent: a call
  to one is a use of whatever it uses)."""

  def __init__(self, root, source_globs, header_globs=()):
    import glob
    self.root = root
    self.sources = []
    self.headers = []
    for g in source_globs:
      for p in sorted(glob.glob(os.path.join(root, g))):
        self.sources.append(CFile(p, os.path.relpath(p, root)))
    for g in header_globs:
      for p in sorted(glob.glob(os.path.join(root, g))):
        self.headers.append(CFile(p, os.path.relpath(p, root)))
    self.files = {f.rel: f for f in self.sources + self.headers}
    self.globals = {}  # name -> [Function] (non-static, in .c files)
    self.inline = {}   # name -> Function (defined in a header)
    for f in self.sources:
      for fn in f.defined():
        if not fn.static:
          self.globals.setdefault(fn.name, []).append(fn)
    for f in self.headers:
      for fn in f.defined():
        self.inline.setdefault(fn.name, fn)
    self.warnings = [w for f in self.files.values() for w in f.warnings]
    for name, defs in sorted(self.globals.items()):
      if len(defs) > 1:
        self.warnings.append("%s defined in %s" % (
            name, ", ".join(d.path for d in defs)))

  def _lookup(self, name, cfile):
    own = [fn for fn in cfile.defined() if fn.name == name]
    if own:
      return own[0]
    defs = self.globals.get(name)
    if defs:
      d = os.path.dirname(cfile.rel)
      same = [x for x in defs if os.path.dirname(x.path) == d]
      return (same or defs)[0]
    return self.inline.get(name)

  def resolve_uses(self, cfile):
    """Every use in cfile of a function of the program, as Use objects, with
    uses of header inline functions followed through to the .c functions
    they reach (via names the chain)."""
    out = []
    for fn in cfile.functions:
      for name, line, kind in fn.uses:
        target = self._lookup(name, cfile)
        if target is None:
          continue
        if target.path in self.files and \
           self.files[target.path] in self.headers:
          for callee, via, k in self._through_inline(target, kind):
            out.append(Use(cfile.rel, fn, callee.path, callee, line, k,
                           via))
          continue
        out.append(Use(cfile.rel, fn, target.path, target, line, kind, ()))
    return out

  def _through_inline(self, inl, kind, seen=None):
    """The .c functions a header inline function reaches, each with the
    chain of inline functions to it."""
    seen = set() if seen is None else seen
    if inl.name in seen:
      return []
    seen.add(inl.name)
    hdr = self.files[inl.path]
    res = []
    for name, _line, k in inl.uses:
      t = self._lookup(name, hdr)
      if t is None or t is inl:
        continue
      if self.files.get(t.path) in self.headers:
        for callee, via, kk in self._through_inline(t, k, seen):
          res.append((callee, (inl.name,) + via, kk))
      else:
        res.append((t, (inl.name,), k if kind == "call" else "ref"))
    return res
