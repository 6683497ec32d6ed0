#!/usr/bin/env python3
"""Fails when the files of a crate import each other in a circle.

Usage: import_cycles.py CRATE_SRC_DIR [...]

Each .rs file is a module (`a/b.rs` and `a/b/mod.rs` are `a::b`). An edge A -> B is a
path in A that names B: `use crate::x::y`, `use super::z`, `self::w`, or the same
paths inline (`crate::x::y::f()`). A path resolves to the deepest module file it names.
Not edges: declaring a child (`mod x;`), a file using the module it is part of
(`super::Driver` in `driver/inbound.rs`: one module split over files), and a
`#[cfg(test)]` module at the end of a file. Prints every circle found.
"""
import re
import sys
from pathlib import Path

PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+|::\{)")
USE_GROUP = re.compile(r"\buse\s+(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)


def module_of(src: Path, file: Path) -> tuple:
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_tests(text: str) -> str:
    m = re.search(r"^#\[cfg\(test\)\]\s*\nmod \w+ \{", text, re.M)
    return text[: m.start()] if m else text


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//")[0] if not line.lstrip().startswith("//") else "" for line in text.splitlines())


def resolve(base: tuple, head: str, rest: list, modules: set) -> tuple | None:
    if head == "crate":
        path = []
    elif head == "self":
        path = list(base)
    else:  # super, possibly repeated
        path = list(base[:-1])
        while rest and rest[0] == "super":
            path = path[:-1]
            rest = rest[1:]
    best = tuple(path) if tuple(path) in modules else None
    for part in rest:
        path.append(part)
        if tuple(path) in modules:
            best = tuple(path)
    return best


def edges(src: Path):
    files = {module_of(src, f): f for f in src.rglob("*.rs")}
    modules = set(files)
    graph = {m: set() for m in modules}
    for mod, file in files.items():
        text = strip_comments(strip_tests(file.read_text()))
        paths = []
        for head, prefix, group in USE_GROUP.findall(text):
            pre = [p for p in prefix.split("::") if p]
            for item in re.split(r",", group):
                item = item.strip().split(" as ")[0].strip()
                if not item or item.startswith("{"):
                    continue
                inner = [p for p in item.split("::") if p and p != "self"]
                paths.append((head, pre + inner))
        for head, tail in PATH.findall(text):
            if tail == "::{":
                continue
            paths.append((head, [p for p in tail.split("::") if p]))
        for head, rest in paths:
            target = resolve(mod, head, rest, modules)
            # A file may use the module it is part of (`super::Driver` in
            # driver/inbound.rs): one module split over files. Everything else counts.
            if target is None or target == mod[: len(target)]:
                continue
            graph[mod].add(target)
    return files, graph


def cycles(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def top_level(graph):
    """The same graph between the crate's top-level modules (`mqtt`, `api`, …): a
    circle there is an import that runs back up the crate's layers."""
    tops = {m[:1]: set() for m in graph}
    for m, targets in graph.items():
        for t in targets:
            if t[:1] != m[:1] and t[:1] and m[:1]:
                tops[m[:1]].add(t[:1])
    return tops


def main() -> int:
    failed = False
    for arg in sys.argv[1:]:
        src = Path(arg)
        files, graph = edges(src)
        name = src.parent.name
        layered = top_level(graph)
        for comp in cycles(layered):
            failed = True
            names = sorted("::".join(m) for m in comp)
            print(f"{name}: top-level modules that import each other (an import runs back up): {', '.join(names)}")
            for m in sorted(comp):
                for t in sorted(layered[m] & set(comp)):
                    print(f"    {'::'.join(m)} -> {'::'.join(t)}")
        found = cycles(graph)
        if not found:
            print(f"{name}: {len(files)} files, no import circle")
            continue
        failed = True
        for comp in found:
            names = sorted(str(files[m].relative_to(src)) for m in comp)
            print(f"{name}: files that import each other in a circle: {', '.join(names)}")
            for m in sorted(comp):
                for t in sorted(graph[m] & set(comp)):
                    print(f"    {files[m].relative_to(src)} -> {files[t].relative_to(src)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
