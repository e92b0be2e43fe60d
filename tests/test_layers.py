"""The package's structure, read from the source with ``ast``:

- layers (docs/architecture.md): a module never imports from a higher layer, and inside
  ``retrieval/`` store < keyword < write < search, ingest above write, ``index.py`` on top;
- no import cycle among jinarag's modules;
- no module reaches into another package's private names;
- no module over 400 lines and no class over 250 (the model file excepted).

Every import counts, also those inside functions and under ``TYPE_CHECKING``: a lazy import
upwards is still a dependency in the wrong direction, and a cycle behind one still ties its
modules together. (``jinarag.retrieval``'s aliases of moved modules are imported by name
strings, which ``ast`` does not see; they are not dependencies of the code.)
"""

from __future__ import annotations

import ast
import functools
from collections import deque
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"
INTEGRATIONS = ROOT / "integrations"

# Lowest first. The leaves may be imported by everyone; the package's __init__ sits on top.
LAYERS = {
    "errors": 0,
    "validation": 0,
    "redaction": 0,  # URLs shown without their secrets, by the store, the remote models, the CLI
    "options": 0,
    "models": 1,
    "inference": 2,
    "remote": 2,  # the inference layer's methods, served by `jinarag serve` over HTTP
    "retrieval": 3,
    "evaluation": 4,
    "training": 5,  # fine-tuning and distillation, on the evaluation layer's datasets
    "serving": 5,
    "cli": 6,
}
TOP = 7  # jinarag/__init__.py
ADAPTERS = 8  # jinarag.langchain, jinarag.llama_index, ...: nothing in the core imports them
ADAPTER_PACKAGES = frozenset(p.name for p in INTEGRATIONS.iterdir() if (p / "__init__.py").exists())

# Inside retrieval/, lowest first; a module imports its own package or a lower one only (so
# search and ingest, on one rank, do not import each other). `layout` is the record layout, a
# leaf every package reads; the package's __init__ sits with the facade, `index`.
RETRIEVAL = {
    "layout": 0,
    "store": 1,
    "keyword": 2,
    "write": 3,
    "search": 4,
    "ingest": 4,
    "options_check": 4,  # HybridIndex's own options, checked before a store opens
    "index": 5,
}

MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 250
SIZE_EXEMPT = {"core/models/encoder.py"}  # the model, one file that reads top to bottom

# namedtuple's public methods and fields carry an underscore so they never clash with a field.
NAMEDTUPLE_API = frozenset({"_asdict", "_replace", "_fields", "_field_defaults", "_make"})


# -- modules and their imports ----------------------------------------------------------------


def _module_name(path: Path) -> str:
    base = CORE if path.is_relative_to(CORE) else INTEGRATIONS
    parts = tuple(p for p in path.relative_to(base).with_suffix("").parts if p != "__init__")
    return ".".join(("jinarag", *parts))


CORE_FILES = sorted(CORE.rglob("*.py"))
INTEGRATION_FILES = sorted(INTEGRATIONS.rglob("*.py"))
ALL_FILES = CORE_FILES + INTEGRATION_FILES
MODULES = {_module_name(p): p for p in ALL_FILES}


def _package(module: str) -> str:
    """The package a module lives in: the directory holding it (a package is its own)."""
    path = MODULES.get(module)
    return module if path is not None and path.name == "__init__.py" else module.rpartition(".")[0]


def _nearest_module(name: str) -> str:
    """``name`` when it is one of our modules, else the closest package above it (importing a
    name that is no file, such as an alias of a moved module, runs that package)."""
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _from_base(node: ast.ImportFrom, own: str) -> str:
    """The absolute module a ``from ... import`` reads from (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = _package(own)
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


@functools.cache
def _imports(path: Path) -> tuple[tuple[str, int], ...]:
    """Every module ``path`` imports, with its line: ``from jinarag.x import y`` is
    ``jinarag.x.y`` when that is a module, else ``jinarag.x``."""
    own = _module_name(path)
    found: list[tuple[str, int]] = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom):
            base = _from_base(node, own)
            targets = {
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            }
            found += [(target, node.lineno) for target in sorted(targets)]
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
    return tuple(found)


# -- layers -----------------------------------------------------------------------------------


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "jinarag":
        return None
    if len(parts) == 1:
        return TOP
    return ADAPTERS if parts[1] in ADAPTER_PACKAGES else LAYERS.get(parts[1])


def _retrieval_part(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] != ["jinarag", "retrieval"]:
        return None
    return parts[2] if len(parts) > 2 else "index"


RETRIEVAL_FILES = [p for p in CORE_FILES if _retrieval_part(_module_name(p)) is not None]


def test_every_core_module_belongs_to_a_layer():
    unplaced = [_rel(p) for p in CORE_FILES if _layer(_module_name(p)) is None]
    assert not unplaced, f"add these to LAYERS (and docs/architecture.md): {unplaced}"


def test_every_retrieval_module_belongs_to_a_rank():
    unplaced = [
        _rel(p) for p in RETRIEVAL_FILES if _retrieval_part(_module_name(p)) not in RETRIEVAL
    ]
    assert not unplaced, f"add their packages to RETRIEVAL (and docs/architecture.md): {unplaced}"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_no_module_imports_a_higher_layer(path):
    name = _module_name(path)
    own = _layer(name)
    upward = [
        f"{module} (line {line})"
        for module, line in _imports(path)
        # `from jinarag import __version__`: the top package's own constants
        if module != "jinarag" and (_layer(module) or 0) > own  # type: ignore[operator]
    ]
    assert not upward, f"{name} (layer {own}) imports from a higher layer: {upward}"


@pytest.mark.parametrize("path", RETRIEVAL_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_no_retrieval_module_imports_a_higher_retrieval_package(path):
    name = _module_name(path)
    own = _retrieval_part(name)
    rank = RETRIEVAL.get(own, -1)  # type: ignore[arg-type]
    upward = [
        f"{module} (line {line})"
        for module, line in _imports(path)
        if (part := _retrieval_part(module)) not in (None, own)
        and RETRIEVAL.get(part, len(RETRIEVAL)) >= rank  # type: ignore[arg-type]
    ]
    assert not upward, (
        f"{name} (retrieval/{own}, rank {rank}) imports a package of its rank or higher: {upward}; "
        f"the order is {RETRIEVAL}"
    )


@pytest.mark.parametrize("path", INTEGRATION_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_adapters_use_the_core_not_its_command_line_or_server(path):
    wrong = [
        f"{module} (line {line})"
        for module, line in _imports(path)
        if module.startswith(("jinarag.cli", "jinarag.serving", "jinarag.evaluation"))
    ]
    assert not wrong, f"{path} imports {wrong}: adapters build on the core's library layers"


# -- cycles -----------------------------------------------------------------------------------


def _import_graph() -> dict[str, dict[str, int]]:
    """``{module: {imported module: first line}}`` over jinarag's modules."""
    graph: dict[str, dict[str, int]] = {name: {} for name in MODULES}
    for name, path in MODULES.items():
        for module, line in _imports(path):
            if module.split(".")[0] != "jinarag":
                continue
            target = _nearest_module(module)
            if target != name and target in MODULES:
                graph[name].setdefault(target, line)
    return graph


def _strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _shortest_cycle(graph: dict[str, dict[str, int]], start: str, within: set[str]) -> list[str]:
    """The shortest path ``start -> ... -> start`` through the modules ``within``."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node]):
            if child not in within:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if child not in came_from:
                came_from[child] = node
                queue.append(child)
    raise AssertionError(f"{start} is on no cycle in {sorted(within)}")


def _describe(graph: dict[str, dict[str, int]], cycle: list[str]) -> str:
    steps = [cycle[0]]
    for src, dst in zip(cycle, cycle[1:], strict=False):
        steps.append(f"{dst} ({_rel(MODULES[src])}:{graph[src][dst]})")
    return " -> ".join(steps)


def test_no_import_cycles():
    graph = _import_graph()
    report = []
    for component in _strongly_connected(graph):
        members = set(component)
        cycles = {}
        for start in component:
            cycle = _shortest_cycle(graph, start, members)
            first = cycle.index(min(cycle[:-1]))  # one rotation per cycle
            cycles.setdefault(tuple(cycle[first:-1] + cycle[:first]), cycle)
        report.append(f"modules importing each other: {', '.join(component)}")
        for cycle in cycles.values():
            report.append(f"  {_describe(graph, cycle)}")
    if report:
        pytest.fail(
            "import cycles (every import counts: lazy and TYPE_CHECKING ones too):\n"
            + "\n".join(report)
        )


# -- private names ----------------------------------------------------------------------------


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _defined_private_names(path: Path) -> set[str]:
    """The private names ``path`` defines: ``self._x = ...`` (or ``cls._x``), a class
    attribute, a def (a method or a function), ``object.__setattr__(self, "_x", ...)``."""
    names: set[str] = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                targets = item.targets if isinstance(item, ast.Assign) else []
                if isinstance(item, ast.AnnAssign):
                    targets = [item.target]
                names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            names.add(node.attr)
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) == "object.__setattr__"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            names.add(node.args[1].value)
    return {n for n in names if _private(n)}


@functools.cache
def _private_names_by_package() -> dict[str, frozenset[str]]:
    by_package: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        by_package.setdefault(_package(name), set()).update(_defined_private_names(path))
    return {package: frozenset(names) for package, names in by_package.items()}


def _import_bindings(path: Path) -> dict[str, str]:
    """Names bound by ``import`` (anywhere in the file) and what they name:
    ``{"np": "numpy", "fusion": "jinarag.retrieval.search.fusion", "Path": "pathlib.Path"}``."""
    own = _module_name(path)
    bound: dict[str, str] = {}
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                head = alias.name.split(".")[0]
                bound[alias.asname or head] = alias.name if alias.asname else head
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(node, own)
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{base}.{alias.name}"
    return bound


def _dotted(node: ast.expr) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def _private_reaches(path: Path) -> list[str]:
    own = _module_name(path)
    package = _package(own)
    defined = _private_names_by_package()[package]
    bound = _import_bindings(path)
    where = _rel(path)
    found = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom):
            base = _from_base(node, own)
            if base.split(".")[0] != "jinarag":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                home = base if sub in MODULES else _package(_nearest_module(base))
                if _private(alias.name) and home != package:
                    found.append(f"{where}:{node.lineno}: from {base} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if (
                    parts[0] == "jinarag"
                    and any(_private(p) for p in parts)
                    and _package(_nearest_module(alias.name)) != package
                ):
                    found.append(f"{where}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            value = node.value
            if isinstance(value, ast.Name) and value.id in ("self", "cls"):
                continue
            if isinstance(value, ast.Call) and ast.unparse(value.func) == "super":
                continue
            dotted = _dotted(value)
            if dotted is not None and dotted[0] in bound:
                module = ".".join([bound[dotted[0]], *dotted[1:]])
                if module.split(".")[0] != "jinarag":
                    continue  # another library's names (argparse._SubParsersAction): its own
                if module in MODULES:
                    if _package(module) != package:
                        found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
                    continue
            if node.attr not in defined and node.attr not in NAMEDTUPLE_API:
                found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return sorted(set(found), key=lambda line: int(line.split(":")[1]))


def test_no_module_reaches_into_another_packages_private_names():
    """A private name (``_x``, not a dunder) of jinarag is used only in the package (directory)
    that defines it: not imported from another package, not read off another package's module,
    and ``obj._x`` only where ``_x`` is defined in the same package (``self._x``, a class
    attribute or a def there). Names imported from other libraries are theirs to police."""
    found = [line for path in ALL_FILES for line in _private_reaches(path)]
    if found:
        pytest.fail(
            "private names used outside their package (make them public, or add a public "
            "method):\n" + "\n".join(found)
        )


# -- sizes ------------------------------------------------------------------------------------


def test_modules_and_classes_stay_small():
    found = []
    for path in ALL_FILES:
        if _rel(path) in SIZE_EXEMPT:
            continue
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(f"{_rel(path)}: {lines} lines (at most {MAX_MODULE_LINES})")
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ClassDef):
                size = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if size > MAX_CLASS_LINES:
                    found.append(
                        f"{_rel(path)}:{node.lineno}: class {node.name}: {size} lines "
                        f"(at most {MAX_CLASS_LINES})"
                    )
    if found:
        pytest.fail("split these (one idea per module):\n" + "\n".join(found))
