"""The package's layers (docs/architecture.md): a module never imports from a higher layer.

Read from the source with ``ast``, so imports inside functions and under ``TYPE_CHECKING`` count
too: a lazy import upwards is still a dependency in the wrong direction.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "core"
INTEGRATIONS = Path(__file__).resolve().parents[1] / "integrations"

# Lowest first. The leaves may be imported by everyone; the package's __init__ sits on top.
LAYERS = {
    "errors": 0,
    "validation": 0,
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


def _module_name(path: Path) -> str:
    parts = path.relative_to(CORE).with_suffix("").parts
    parts = tuple(p for p in parts if p != "__init__")
    return ".".join(("jinarag", *parts))


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "jinarag":
        return None
    return TOP if len(parts) == 1 else LAYERS.get(parts[1])


def _imports(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, node.lineno))
            if node.module == "jinarag":  # `from jinarag import fusion` names a subpackage
                found += [(f"jinarag.{alias.name}", node.lineno) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
    return found


CORE_FILES = sorted(CORE.rglob("*.py"))


def test_every_core_module_belongs_to_a_layer():
    unplaced = [str(p) for p in CORE_FILES if _layer(_module_name(p)) is None]
    assert not unplaced, f"add these to LAYERS (and docs/architecture.md): {unplaced}"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_no_module_imports_a_higher_layer(path):
    name = _module_name(path)
    own = _layer(name)
    upward = [
        f"{module} (line {line})"
        for module, line in _imports(path)
        if module != "jinarag" and (_layer(module) or 0) > own  # type: ignore[operator]
    ]
    assert not upward, f"{name} (layer {own}) imports from a higher layer: {upward}"


@pytest.mark.parametrize("path", sorted(INTEGRATIONS.rglob("*.py")), ids=str)
def test_adapters_use_the_core_not_its_command_line_or_server(path):
    wrong = [
        f"{module} (line {line})"
        for module, line in _imports(path)
        if module.startswith(("jinarag.cli", "jinarag.serving", "jinarag.evaluation"))
    ]
    assert not wrong, f"{path} imports {wrong}: adapters build on the core's library layers"
