"""The package's import graph has no cycle, and the backends use no private name of the dispatch
(issue 12: the dispatch makes a plan, the backends run it; neither reaches back).

Read with ``ast`` only (nothing of nbsoftmax is imported): an edge for every ``import`` and
``from ... import`` of a package module, at module level or inside a function (an import
deferred into a function still ties the two modules together), not under
``if TYPE_CHECKING:``. ``from P import N`` is an edge to ``P.N`` when that is a module, else to
``P``; importing a submodule does not count as importing its parent package's ``__init__``
(otherwise every ``from .. import x`` would close a cycle with an ``__init__`` that imports its
submodules).
"""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "nbsoftmax"
BACKENDS = ("cpu", "cuda")


def _modules():
    """{dotted name: (path, is_package)} of every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            found[".".join(parts[:-1])] = (path, True)
        else:
            found[".".join(parts)] = (path, False)
    return found


def _owner(name, modules):
    """The longest prefix of a dotted name that is a module of the package."""
    parts = name.split(".")
    while parts and ".".join(parts) not in modules:
        parts.pop()
    return ".".join(parts) or None


def _imports(tree):
    """Every Import / ImportFrom node, skipping the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(
                node.test, "attr", None)) == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _graph():
    """(edges {module: {imported module: line}}, private names the backends take from
    outside: [(module, source module, name, line)])."""
    modules = _modules()
    top = PACKAGE.name
    edges = {m: {} for m in modules}
    private = []
    for mod, (path, is_pkg) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        aliases = {}
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == top:
                        target = _owner(alias.name, modules)
                        if target:
                            edges[mod].setdefault(target, node.lineno)
                        if alias.asname:
                            aliases[alias.asname] = target
                continue
            base = mod.split(".") if is_pkg else mod.split(".")[:-1]
            if node.level:
                base = base[:len(base) - (node.level - 1)]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != top:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:
                    edges[mod].setdefault(sub, node.lineno)
                    aliases[alias.asname or alias.name] = sub
                else:
                    source = _owner(base, modules)
                    if source:
                        edges[mod].setdefault(source, node.lineno)
                    if alias.name.startswith("_") and not alias.name.endswith("__"):
                        private.append((mod, source, alias.name, node.lineno))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.endswith("__")
                    and f"{aliases[node.value.id]}.{node.attr}" not in modules):
                private.append((mod, aliases[node.value.id], node.attr, node.lineno))
        edges[mod].pop(mod, None)
    return edges, private


def _cycle_from(start, edges):
    """One import cycle through start (a list of modules, first == last), or None."""
    parent = {start: None}
    stack = [start]
    while stack:  # every module reachable from start, each once
        node = stack.pop()
        for nxt in sorted(edges.get(node, ())):
            if nxt == start:
                path = [node]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return path[::-1] + [start]
            if nxt not in parent and nxt in edges:
                parent[nxt] = node
                stack.append(nxt)
    return None


def test_no_import_cycle():
    edges, _ = _graph()
    assert len(edges) > 50, sorted(edges)  # the walk found the package
    cycles = []
    for mod in sorted(edges):
        cycle = _cycle_from(mod, edges)
        if cycle:
            cycles.append(" -> ".join(f"{a} (line {edges[a][b]})" if b else a
                                      for a, b in zip(cycle, cycle[1:] + [None])))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_backends_use_no_private_name_of_the_dispatch():
    _, private = _graph()
    bad = []
    for mod, source, name, line in private:
        parts = mod.split(".")
        backend = next((".".join(parts[:i + 1]) for i in range(1, len(parts))
                        if parts[i] in BACKENDS), None)
        if backend and source and not (source == backend or source.startswith(backend + ".")):
            bad.append(f"{mod} line {line}: {name} of {source}")
    assert not bad, "backends reach private names outside their subpackage:\n" + "\n".join(bad)


def test_the_check_finds_a_cycle():
    edges = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}
    assert _cycle_from("a", edges) == ["a", "b", "c", "a"]
    assert _cycle_from("d", edges) is None
    assert _cycle_from("a", {"a": {"b": 1}, "b": {}}) is None
