"""The import graph walks forward only (issue 13).

Every ``import`` of automodel, ``jobs/`` and ``serve_apps/`` is read with ``ast`` — module-level
and function-level (lazy) imports alike; only ``if TYPE_CHECKING:`` blocks, which never run, are
skipped — and mapped to its unit (a stage package, or a top-level module). An arrow from a unit to
one of a higher layer, an arrow between two different units of the same stage layer, or a cycle
between units fails the test. The layering (docs/ and README.md "Where things live"):

    contracts, errors, progress, metrics, storage   (bottom: import nothing of ours but each other)
    → spec → cluster (runtime, auth, preflight: usable by every stage below the top)
    → data → features → models → search | train → artifact → report → compress → serve | predict
    → serve_apps → top: cluster.launch (jobs, submit, docker), pipeline, stages, cli, jobs/

Known backward arrows that other work still has to remove are listed in KNOWN, each with the
issue that removes it; the test fails when one of them is gone too, so the list only shrinks.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("automodel", "jobs", "serve_apps")

# Layers, bottom first. Units in one layer may not import each other (siblings), except in the
# bottom and the top layer, where only cycles are forbidden.
LAYERS: list[tuple[str, ...]] = [
    (
        "automodel",
        "automodel.contracts",
        "automodel.errors",
        "automodel.progress",
        "automodel.metrics",
        "automodel.storage",
    ),
    ("automodel.spec",),
    ("automodel.cluster",),
    ("automodel.data",),
    ("automodel.features",),
    ("automodel.models",),
    ("automodel.search", "automodel.train"),
    ("automodel.artifact",),
    ("automodel.report",),
    ("automodel.compress",),
    ("automodel.serve", "automodel.predict"),
    ("serve_apps",),
    (
        "automodel.cluster.launch",
        "automodel.pipeline",
        "automodel.stages",
        "automodel.cli",
        "automodel.__main__",
        "jobs",
    ),
]
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
OPEN_LAYERS = {0, len(LAYERS) - 1}  # units here may import each other (no cycles, though)

# Backward arrows still in the tree, (from unit, to unit): "why it is there; who removes it".
# Remove an entry when its arrow goes; the test says so when an entry no longer matches.
KNOWN: dict[tuple[str, str], str] = {}  # empty: issue 13 removed the last ones


def unit_of(module: str) -> str | None:
    """The layer unit a dotted module name belongs to (longest prefix), None for third-party."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in RANK:
            return prefix
    return None


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, int]]:
    """(imported module, line) for every import that can run, lazy ones included."""
    out: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            # `from pkg import sub` may name a submodule: count the most specific unit.
            out.extend((f"{target}.{alias.name}", node.lineno) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def import_graph() -> dict[tuple[str, str], list[str]]:
    """(from unit, to unit) -> ["path:line", ...] for every arrow between two different units."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            module = _module_name(path)
            src = unit_of(module)
            if src is None:
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            for target, line in _imports(tree, module, path.name == "__init__.py"):
                dst = unit_of(target)
                if dst is not None and dst != src:
                    edges[(src, dst)].append(f"{path.relative_to(REPO)}:{line}")
    return edges


def backward(edges: dict[tuple[str, str], list[str]]) -> dict[tuple[str, str], list[str]]:
    """Arrows to a higher layer, or between siblings of a closed layer."""
    bad = {}
    for (src, dst), where in edges.items():
        up = RANK[dst] > RANK[src]
        sibling = RANK[dst] == RANK[src] and RANK[src] not in OPEN_LAYERS
        if up or sibling:
            bad[(src, dst)] = where
    return bad


def cycles(edges) -> list[list[str]]:
    """Strongly connected components of more than one unit (Tarjan)."""
    graph = defaultdict(set)
    for src, dst in edges:
        graph[src].add(dst)
    index, low, stack, on, out = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
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
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            strong(v)
    return out


def test_every_module_belongs_to_a_layer():
    missing = [
        _module_name(p)
        for root in ROOTS
        for p in (REPO / root).rglob("*.py")
        if unit_of(_module_name(p)) is None
    ]
    assert not missing, f"modules outside every layer (add them to LAYERS): {missing}"


def test_imports_walk_forward_only():
    bad = backward(import_graph())
    new = {edge: where for edge, where in bad.items() if edge not in KNOWN}
    assert not new, "imports against the layering (from -> to: where):\n" + "\n".join(
        f"  {s} -> {d}: {', '.join(w)}" for (s, d), w in sorted(new.items())
    )


def test_known_backward_arrows_are_still_there():
    """An entry of KNOWN whose arrow is gone must leave the list (so it only shrinks)."""
    bad = backward(import_graph())
    gone = [edge for edge in KNOWN if edge not in bad]
    assert not gone, f"these arrows are gone; remove them from KNOWN: {gone}"


def test_no_cycles_between_units():
    # A cycle closed only by a KNOWN backward arrow is reported by that arrow, not twice.
    found = cycles({e: w for e, w in import_graph().items() if e not in KNOWN})
    assert not found, f"import cycles between units: {found}"


def test_the_checker_sees_a_backward_lazy_import(tmp_path):
    """The check itself: a function-level import from a stage into the top layer is caught."""
    tree = ast.parse("def f():\n    from automodel.pipeline import run\n")
    ((target, _),) = _imports(tree, "automodel.data._x", False)
    src, dst = unit_of("automodel.data._x"), unit_of(target)
    assert backward({(src, dst): ["x"]}) == {("automodel.data", "automodel.pipeline"): ["x"]}
    assert cycles({("a", "b"): [], ("b", "a"): []}) == [["a", "b"]]
    typed = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import automodel.pipeline\n"
    )
    assert [t for t, _ in _imports(typed, "automodel.data._x", False)] == ["typing.TYPE_CHECKING"]


if __name__ == "__main__":
    for (s, d), w in sorted(backward(import_graph()).items()):
        print(f"{s} -> {d}: {', '.join(w)}")
    print("cycles:", cycles(import_graph()))
    pytest.main([__file__])


# ---- private APIs of Ray and Optuna ------------------------------------------------------------
PRIVATE = re.compile(r"_private|_raylet|\._ot_study|_brackets")
COMPAT = "automodel/cluster/_compat.py"  # the one module allowed to call them, with a version check


def private_api_uses() -> list[str]:
    """What ``grep -rn "_private\\|_raylet\\|\\._ot_study\\|_brackets" automodel serve_apps jobs``
    prints, as ``path:line: text``."""
    hits = []
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*")):
            if not path.is_file() or path.suffix in (".pyc",):
                continue
            try:
                lines = path.read_text().splitlines()
            except UnicodeDecodeError:
                continue
            rel = path.relative_to(REPO).as_posix()
            hits += [f"{rel}:{n}: {t.strip()}" for n, t in enumerate(lines, 1) if PRIVATE.search(t)]
    return hits


def test_private_ray_and_optuna_apis_only_in_the_compat_module():
    outside = [h for h in private_api_uses() if not h.startswith(COMPAT + ":")]
    assert not outside, "private APIs outside " + COMPAT + ":\n" + "\n".join(outside)
