#!/usr/bin/env python3
"""Fails when the modules of a Rust crate import each other in a cycle.

Usage: scripts/check-module-cycles.py [CRATE_SRC_DIR ...]
       (default: the src/ of every member of the workspace's Cargo.toml)

Each file is a module (lib.rs/main.rs = the crate root, a.rs and a/mod.rs = `a`, a/b.rs =
`a::b`). An edge A -> B is a path in A's code — a `use` or an inline `crate::…`,
`super::…`, `self::…` path — that names B or an item of B. Re-exports (`pub use`,
`pub(crate) use`) are not edges: a facade module that re-exports its children depends on
nothing. `#[cfg(test)]` modules are skipped (tests may reach anywhere). The report lists
each strongly connected set of modules with the lines that close it, so a cycle can be
broken where it is made.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("lib", "main") and len(rel) == 1:
        return ()
    if rel[-1] == "mod":
        rel = rel[:-1]
    return tuple(rel)


def strip_tests(text):
    """Removes `#[cfg(test)]` items: a `mod x { … }` block (brace-matched) or `mod x;`."""
    out, i = [], 0
    pat = re.compile(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*([{;])")
    while True:
        m = pat.search(text, i)
        if not m:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:m.start()])
        if m.group(3) == ";":
            i = m.end()
            continue
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(re.sub(r"//.*", "", line) for line in text.splitlines())


def use_paths(text):
    """(line number, path) for every path a file uses. A re-exported name counts only where
    the re-exporting module itself uses it."""
    found, reexports = [], []
    for m in re.finditer(r"(?m)^\s*(pub(\([^)]*\))?\s+)?use\s+([^;]+);", text):
        line = text.count("\n", 0, m.start()) + 1
        for p in expand(m.group(3).replace("\n", " ")):
            (reexports if m.group(1) else found).append((line, p))
    body = re.sub(r"(?m)^\s*(pub(\([^)]*\))?\s+)?use\s+[^;]+;", lambda m: "\n" * m.group(0).count("\n"), text)
    for m in re.finditer(r"\b((?:crate|super|self)(?:::\w+)+)", body):
        found.append((body.count("\n", 0, m.start()) + 1, m.group(1).split("::")))
    for line, p in reexports:
        if p and re.search(r"\b%s\b" % re.escape(p[-1]), body):
            found.append((line, p))
    return found


def expand(tree):
    """Expands `a::{b, c::{d, e}}` into path lists (aliases and globs trimmed)."""
    tree = tree.strip()
    m = re.match(r"^(.*?)::\{(.*)\}$", tree, flags=re.S)
    if not m:
        tree = re.sub(r"\s+as\s+\w+$", "", tree)
        parts = [p for p in tree.split("::") if p not in ("*", "")]
        return [parts]
    prefix, inner = m.group(1), m.group(2)
    items, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        cur += ch
    items.append(cur)
    out = []
    for it in items:
        if it.strip():
            for p in expand(it):
                out.append(prefix.split("::") + (p if p != ["self"] else []))
    return out


def resolve(mod, path, modules):
    """The module a path lands in, or None for external crates and std."""
    if path[0] == "crate":
        base, rest = (), path[1:]
    elif path[0] == "super" or path[0] == "self":
        base = mod
        rest = list(path)
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    else:
        # A path starting with a child module of this one (`use child::X`).
        if mod + (path[0],) in modules:
            base, rest = mod, path
        else:
            return None
    target = base
    for seg in rest:
        if target + (seg,) in modules:
            target = target + (seg,)
        else:
            break
    return target


def check(src):
    files = {}
    for d, _, names in os.walk(src):
        for n in names:
            if n.endswith(".rs"):
                p = os.path.join(d, n)
                if os.path.relpath(p, src).split(os.sep)[0] == "bin":
                    continue  # each binary is its own crate root
                files[module_of(src, p)] = p
    modules = set(files)
    edges = {m: {} for m in modules}
    for mod, path in files.items():
        with open(path, encoding="utf-8") as f:
            text = strip_tests(strip_comments(f.read()))
        for line, p in use_paths(text):
            t = resolve(mod, p, modules)
            if t is not None and t != mod and not (len(t) < len(mod) and mod[: len(t)] == t and t == ()):
                edges[mod].setdefault(t, (path, line))
    # Tarjan's strongly connected components.
    index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            visit(v)
    name = lambda m: "::".join(m) or "crate"
    for comp in sccs:
        print(f"{src}: import cycle among {', '.join(sorted(name(m) for m in comp))}")
        for a in comp:
            for b, (path, line) in edges[a].items():
                if b in comp:
                    print(f"    {name(a)} -> {name(b)}  ({os.path.relpath(path, ROOT)}:{line})")
    return len(sccs)


def workspace_members():
    """The member directories listed in the workspace's Cargo.toml."""
    import tomllib

    with open(os.path.join(ROOT, "Cargo.toml"), "rb") as f:
        return tomllib.load(f)["workspace"]["members"]


def main():
    dirs = sys.argv[1:] or [
        os.path.join(ROOT, m, "src")
        for m in workspace_members()
        if os.path.isdir(os.path.join(ROOT, m, "src"))
    ]
    cycles = sum(check(d) for d in dirs)
    if cycles:
        sys.exit(f"{cycles} import cycle(s)")
    print(f"no import cycle in {len(dirs)} crate(s)")


if __name__ == "__main__":
    main()
