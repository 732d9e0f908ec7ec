#!/usr/bin/env bash
# The `use crate::` graph of scim-store, one module per file (a folder's
# mod.rs is the folder), test modules included. Prints the graph's edges
# and exits 1 when
#   - two modules import each other, directly or through others (a cycle);
#   - an import points up the layers tools → engine → scim → admin → events → changes → db →
#     error (password stands alone);
#   - a path names something through the crate root (`crate::Store`)
#     instead of the module that defines it, which would hide an edge.
# lib.rs (the re-exports) and testing.rs (the test harness, like tests/it)
# sit above every layer and are left out. A file's test module (from its
# `#[cfg(test)] mod tests`) may name the store handle (`crate::engine`,
# whose `Store` every store test runs on); any other edge of it counts.
set -euo pipefail
src="${1:-$(dirname "$0")/../crates/scim-store/src}"
exec python3 - "$src" <<'PY'
import pathlib, re, sys

src = pathlib.Path(sys.argv[1])
RANK = {"error": 0, "password": 0, "db": 1, "changes": 2, "events": 3, "admin": 4, "scim": 5, "engine": 6, "tools": 7}

def node(path):
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    return "/".join(parts)

files = {node(p): p for p in src.rglob("*.rs")}
modules = set(files) - {"lib", "testing"}

def resolve(segments):
    for n in range(len(segments), 0, -1):
        cand = "/".join(segments[:n])
        if cand in files:
            return cand
    return None

def paths(text):
    """Every path after `crate::`, groups (`crate::{a::b, c}`) expanded."""
    out = []
    for m in re.finditer(r"(?<![A-Za-z0-9_])crate::", text):
        i = m.end()
        if text[i] == "{":
            depth, j = 0, i
            while True:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                if depth == 0:
                    break
                j += 1
            items, depth, cur = [], 0, ""
            for ch in text[i + 1 : j]:
                depth += {"{": 1, "}": -1}.get(ch, 0)
                if ch == "," and depth == 0:
                    items.append(cur)
                    cur = ""
                else:
                    cur += ch
            items.append(cur)
            out += [re.findall(r"[A-Za-z_][A-Za-z0-9_]*", x.split("{")[0]) for x in items if x.strip()]
        else:
            seg = re.match(r"[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*", text[i:])
            out.append(seg.group(0).split("::"))
    return out

errors, edges = [], {m: set() for m in modules}
for m in sorted(modules):
    # Comments (doc links included) import nothing.
    text = re.sub(r"//.*", "", files[m].read_text())
    tests = re.search(r"#\[cfg\(test\)\]\s*(pub(\(crate\))?\s+)?mod tests", text)
    code, test = (text[: tests.start()], text[tests.start() :]) if tests else (text, "")
    for segs, in_test in [(s, False) for s in paths(code)] + [(s, True) for s in paths(test)]:
        if segs and segs[0] == "testing":
            continue
        target = resolve(segs)
        if in_test and target == "engine":
            continue
        if target is None or target == "lib":
            errors.append(f"{m}: crate::{'::'.join(segs)} does not name a module")
            continue
        if target == m or target in ("testing",):
            continue
        edges[m].add(target)
        a, b = m.split("/")[0], target.split("/")[0]
        if a != b and RANK[a] <= RANK[b]:
            errors.append(f"{m} -> {target}: imports up the layers")

for m in sorted(edges):
    if edges[m]:
        print(f"{m} -> {', '.join(sorted(edges[m]))}")

# Cycles: depth-first search, reporting each back edge's cycle.
state, stack = {}, []
def visit(m):
    state[m] = 1
    stack.append(m)
    for t in sorted(edges[m]):
        if state.get(t) == 1:
            errors.append("cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
        elif t not in state:
            visit(t)
    stack.pop()
    state[m] = 2
for m in sorted(modules):
    if m not in state:
        visit(m)

for e in dict.fromkeys(errors):
    print("store-graph: " + e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY
