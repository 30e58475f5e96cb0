"""Fail if any import circle exists among sparse_orl's modules (function-level imports included).

import-linter's layers contract (pyproject.toml) keeps imports flowing one way between packages;
this check also catches circles inside one package. Prints each circle found; exit status 1 if any.
"""
import sys

import grimp


def main() -> int:
    graph = grimp.build_graph("sparse_orl")
    modules = sorted(graph.modules)
    index = {m: i for i, m in enumerate(modules)}
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    # Tarjan's strongly connected components
    stack, on, low, num, out, counter = [], set(), {}, {}, [], [0]

    def visit(v):
        num[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                continue
            if w not in num:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], num[w])
        if low[v] == num[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for m in modules:
        if m not in num:
            visit(m)
    for comp in out:
        print("import circle:", " <-> ".join(comp))
    print(f"{len(modules)} modules, {len(out)} import circle(s)")
    return 1 if out else 0


if __name__ == "__main__":
    sys.exit(main())
