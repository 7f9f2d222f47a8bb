#!/usr/bin/env python3
"""Finds import cycles among the crate's modules (issue 12: no cycle among product modules).

A module is a file: src/web/auth.rs is `web::auth`, src/web/mod.rs is `web`, src/lib.rs is
`crate`. Binary crates (src/main.rs, src/bin/, func/) are named by their file, `bin:func/main.rs`.
Every .rs file under src/ and func/ is read without its `#[cfg(test)]` items (unit tests
may use anything). Comments and string literals are blanked first, so doc links and messages
are not dependencies. Dependencies come from `use` trees and from paths in code: `crate::a::b`,
`super::x`, `self::x`, `ocivision::a` (from the binaries) and `child::x` where `child` is a
module the file declares with `mod child;`. A path names the deepest module it walks through.

Edges between a module and one of its ancestors (a child using its parent's items, a parent
re-exporting a child) are counted but never make a cycle: only cycles among sibling or
unrelated modules are reported.

Usage: .ci/module-cycles.py [--edges] [repository root]   (default root: this script's parent
directory; --edges also lists every edge with the line behind it)
Exit status: 0 without a cycle, 1 with one (each cycle is printed with the line behind each
edge), 2 on a usage error.
"""

import os
import re
import sys

LIB_ROOT = "crate"
LIB_NAME = "ocivision"
MAX_CYCLES_SHOWN = 20


def blank_comments_and_strings(text):
    """The text with comments, string and char literals replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)

    def blank(segment):
        out.append("".join("\n" if c == "\n" else " " for c in segment))

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(text[i:j])
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(text[i:j])
            i = j
        elif c in "rb" and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            raw = re.match(r'(?:br|r)(#*)"', text[i:i + 300])
            if raw:
                end = text.find('"' + raw.group(1), i + raw.end())
                end = n if end < 0 else end + 1 + len(raw.group(1))
                out.append('""')
                blank(text[i + 2:end])
                i = end
            else:
                out.append(c)
                i += 1
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""')
            blank(text[i + 2:j + 1])
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}', '"'), else a lifetime or label.
            m = re.match(r"'(?:\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:i + 12])
            if m:
                blank(m.group(0))
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def without_unit_tests(text):
    """The file without the items behind `#[cfg(test)]` (unit tests and their fixtures).

    An item ends at its first `;` outside braces or at the brace that closes its body; braces
    and semicolons are looked for in the code only (comments and literals blanked, same length)."""
    code = blank_comments_and_strings(text)
    out = []
    i = 0
    marker = "#[cfg(test)]"
    while True:
        k = code.find(marker, i)
        if k < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:k])
        j = k + len(marker)
        depth = 0
        while j < len(code):
            c = code[j]
            j += 1
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    break
            elif c == ";" and depth == 0:
                break
        # Keep line numbers right for the report: put back the newlines of what was cut.
        out.append("\n" * text.count("\n", k, j))
        i = j


def expand_use_tree(body):
    """`a::{b, c::{self, d as e}, f::*}` → [[a, b], [a, c], [a, c, d], [a, f]]."""
    body = re.sub(r"\s+", "", re.sub(r"\s+as\s+\w+", "", body))
    paths = []

    def walk(prefix, tree):
        parts, depth, start = [], 0, 0
        for k, ch in enumerate(tree):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(tree[start:k])
                start = k + 1
        parts.append(tree[start:])
        for part in parts:
            if not part:
                continue
            brace = part.find("{")
            if brace >= 0:
                head = [s for s in part[:brace].split("::") if s]
                walk(prefix + head, part[brace + 1:part.rfind("}")])
                continue
            segs = [s for s in part.split("::") if s]
            segs = [s for s in segs if s != "*"]
            if segs and segs[-1] == "self":
                segs = segs[:-1]
            if segs and segs[0] == "::":
                segs = segs[1:]
            paths.append(prefix + segs)

    walk([], body)
    return paths


class Module:
    def __init__(self, name, path, crate_root):
        self.name = name
        self.path = path
        self.crate_root = crate_root
        self.children = {}  # declared `mod x;` → module name
        self.parents = set()


def lib_module_name(rel):
    """src/web/auth.rs → web::auth; src/web/mod.rs → web; src/lib.rs → crate."""
    parts = rel[len("src/"):-len(".rs")].split("/")
    if parts[-1] == "mod":
        parts = parts[:-1]
    if parts == ["lib"]:
        return LIB_ROOT
    return "::".join(parts)


def is_binary_file(rel):
    return rel == "src/main.rs" or rel.startswith("src/bin/") or rel.startswith("func/")


def collect(root):
    files = []
    for top in ("src", "func"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for f in sorted(filenames):
                if f.endswith(".rs"):
                    files.append(os.path.relpath(os.path.join(dirpath, f), root))
    return files


def load(root):
    modules, sources = {}, {}
    for rel in collect(root):
        with open(os.path.join(root, rel), encoding="utf-8") as fh:
            raw = without_unit_tests(fh.read())
        name = "bin:" + rel if is_binary_file(rel) else lib_module_name(rel)
        modules[name] = Module(name, rel, None)
        sources[name] = raw
    by_path = {m.path: m.name for m in modules.values()}

    # Declared children (`mod x;`, with or without #[path]), and each module's crate root.
    decl = re.compile(
        r'(?:#\[path\s*=\s*"(?P<file>[^"]+)"\]\s*)?(?:pub(?:\([^)]*\))?\s+)?mod\s+(?P<name>\w+)\s*;')
    for m in modules.values():
        code_positions = blank_comments_and_strings(sources[m.name])
        for d in decl.finditer(sources[m.name]):
            if code_positions[d.start("name")] == " ":
                continue  # inside a comment
            base = os.path.dirname(m.path)
            own_dir = m.path.endswith(("mod.rs", "lib.rs", "main.rs")) or m.path.startswith("src/bin/")
            if d.group("file"):
                target = os.path.normpath(os.path.join(base, d.group("file")))
            else:
                stem = base if own_dir else m.path[:-len(".rs")]
                target = None
                for cand in (f"{stem}/{d.group('name')}.rs", f"{stem}/{d.group('name')}/mod.rs"):
                    if cand in by_path:
                        target = cand
                        break
            if target in by_path:
                child = by_path[target]
                m.children[d.group("name")] = child
                modules[child].parents.add(m.name)
    for m in modules.values():
        if not m.name.startswith("bin:"):
            m.crate_root = LIB_ROOT
            if m.name != LIB_ROOT:
                m.parents.add(m.name.rsplit("::", 1)[0] if "::" in m.name else LIB_ROOT)
    for m in modules.values():
        if m.name.startswith("bin:"):
            roots = crate_roots(m.name, modules)
            m.crate_root = roots[0] if len(roots) == 1 else None  # shared #[path] file: ambiguous
    return modules, sources


def crate_roots(name, modules, seen=None):
    seen = seen or set()
    m = modules[name]
    if not m.parents:
        return [name]
    out = []
    for p in sorted(m.parents - seen):
        out += crate_roots(p, modules, seen | {name})
    return out


def ancestors(name, modules):
    out, todo = set(), [name]
    while todo:
        for p in modules[todo.pop()].parents:
            if p not in out:
                out.add(p)
                todo.append(p)
    return out


def resolve(segs, module, inline, modules):
    """The module a path names, or None (external crates, std, items of the module itself)."""
    m = modules[module]
    inline = list(inline)
    if not segs:
        return None
    head, rest = segs[0], segs[1:]
    if head == "crate":
        base = m.crate_root
    elif head == LIB_NAME and module.startswith("bin:"):
        base = LIB_ROOT
    elif head in ("self", "super"):
        base = module
        while segs and segs[0] in ("self", "super"):
            if segs[0] == "super":
                if inline:
                    inline.pop()
                else:
                    parents = sorted(modules[base].parents)
                    if len(parents) != 1:
                        return None
                    base = parents[0]
            segs = segs[1:]
        rest = segs
        if inline:
            return None  # still inside an inline module of this file
    elif not inline and head in m.children:
        base, rest = m.children[head], rest
    else:
        return None
    if base is None:
        return None
    for seg in rest:
        child = modules[base].children.get(seg)
        if child is None and not base.startswith("bin:"):
            named = seg if base == LIB_ROOT else f"{base}::{seg}"
            child = named if named in modules else None  # a file not declared (yet)
        if child is None:
            break
        base = child
    return base


TOKENS = re.compile(
    r"(?P<mod>\bmod\s+(?P<modname>\w+)\s*\{)"
    r"|(?P<use>\buse\s+(?P<usebody>[^;]*);)"
    r"|(?P<open>\{)|(?P<close>\})"
    r"|(?P<path>(?<![\w:])\w+(?:\s*::\s*\w+)+)")


def edges_of(name, source, modules):
    """(target, line, text) for every reference from `name` to another module."""
    code = blank_comments_and_strings(source)
    lines = source.split("\n")
    found = []
    depth, inline = 0, []  # inline: [(mod name, depth at its brace)]
    for t in TOKENS.finditer(code):
        kind = t.lastgroup
        if t.group("mod"):
            depth += 1
            inline.append((t.group("modname"), depth))
            continue
        if kind == "open":
            depth += 1
            continue
        if kind == "close":
            if inline and inline[-1][1] == depth:
                inline.pop()
            depth -= 1
            continue
        if t.group("use"):
            paths = expand_use_tree(t.group("usebody"))
        else:
            paths = [re.sub(r"\s+", "", t.group("path")).split("::")]
        line = code.count("\n", 0, t.start()) + 1
        for segs in paths:
            target = resolve(segs, name, [n for n, _ in inline], modules)
            if target and target != name:
                found.append((target, line, lines[line - 1].strip()))
    return found


def strongly_connected(nodes, graph):
    """Tarjan's algorithm, iteratively: the components with more than one module."""
    index, low, on_stack, stack, comps, counter = {}, {}, set(), [], [], [0]
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            pushed = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    pushed = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if pushed:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    comps.append(sorted(comp))
    return comps


def elementary_cycles(comp, graph, limit):
    """Simple cycles inside one component, each starting at its smallest module name."""
    members, cycles = set(comp), []

    def extend(path, on_path):
        if len(cycles) >= limit:
            return
        for w in sorted(graph.get(path[-1], ())):
            if w not in members or w < path[0]:
                continue
            if w == path[0]:
                cycles.append(path + [w])
            elif w not in on_path:
                extend(path + [w], on_path | {w})

    for start in comp:
        extend([start], {start})
    return sorted(cycles, key=lambda c: (len(c), c))[:limit]


def main(argv):
    args = argv[1:]
    list_edges = "--edges" in args
    args = [a for a in args if a != "--edges"]
    if len(args) > 1 or any(a.startswith("-") for a in args):
        print(__doc__.strip().split("\n\n")[-1], file=sys.stderr)
        return 2
    root = args[0] if args else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(os.path.join(root, "src")):
        print(f"module-cycles: no src/ under {root}", file=sys.stderr)
        return 2
    modules, sources = load(root)
    evidence = {}  # (from, to) → first (line, text)
    for name in sorted(modules):
        for target, line, text in edges_of(name, sources[name], modules):
            evidence.setdefault((name, target), (line, text))
    graph = {}
    for (a, b) in evidence:
        if a in ancestors(b, modules) or b in ancestors(a, modules):
            continue  # parent ↔ child: never a cycle
        graph.setdefault(a, set()).add(b)

    if list_edges:
        for (a, b), (line, text) in sorted(evidence.items()):
            nested = "" if b in graph.get(a, ()) else "  (parent and child: never counted in a cycle)"
            print(f"{a} → {b}: {modules[a].path}:{line}: {text}{nested}")
        print()
    comps = strongly_connected(sorted(modules), graph)
    counts = f"{len(modules)} modules, {len(evidence)} edges"
    if not comps:
        print(f"module-cycles: no cycle ({counts}; "
              f"{sum(len(v) for v in graph.values())} edges between non-nested modules)")
        return 0
    print(f"module-cycles: {len(comps)} group(s) of modules that depend on each other ({counts})")
    for k, comp in enumerate(comps, 1):
        print(f"\ngroup {k}: {', '.join(comp)}")
        cycles = elementary_cycles(comp, graph, MAX_CYCLES_SHOWN)
        for cycle in cycles:
            print(f"  cycle: {' → '.join(cycle)}")
        print("  because:")
        for a in comp:
            for b in sorted(graph.get(a, ())):
                if b in comp:
                    line, text = evidence[(a, b)]
                    print(f"    {a} → {b}: {modules[a].path}:{line}: {text}")
    print("\nBreak each cycle: move what both sides need into a module that neither imports back.")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
