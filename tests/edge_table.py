"""Tables of bad calls, one per public surface: what each call must be refused with.

A row is a :class:`Refusal`: the call as a user would write it, run on an ``env`` (the
models, indexes and folders a surface's module builds once with its ``build_env(root)``),
the jinarag error class it must raise, and the pieces its message must contain (the bad
value and, where there is one, the fix). :func:`outcome` sorts what a call did into one
word, so the tests and ``python tests/edge_probe.py`` (which prints the before/after table
of every surface) judge a call the same way.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

# What a call did: refused as the row says; raised nothing; raised an error that is not
# jinarag's own (a TypeError, an AttributeError, pydantic's ValidationError, ...); raised
# jinarag's error class but with a message that does not name the value or the fix.
NAMED, SILENT, GENERIC, UNNAMED = "named", "silent", "generic", "unnamed"


@dataclass(frozen=True)
class Refusal:
    """One bad call: ``call(env)`` must raise ``error`` whose message holds every ``named``."""

    id: str
    call: Callable[[SimpleNamespace], Any]
    error: type[BaseException]
    named: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return self.id


def outcome(row: Refusal, env: SimpleNamespace) -> tuple[str, str]:
    """``(word, detail)``: how ``row.call`` ended, and the error (class and message) or
    the value it returned."""
    try:
        result = row.call(env)
    except BaseException as exc:  # noqa: BLE001 - every ending is sorted, none escapes
        if isinstance(exc, (KeyboardInterrupt, SystemExit)) and not isinstance(exc, row.error):
            raise
        detail = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, row.error):
            where = traceback.extract_tb(exc.__traceback__)[-1]
            return GENERIC, f"{detail} (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})"
        missing = [piece for piece in row.named if piece not in str(exc)]
        if missing:
            return UNNAMED, f"{detail} (missing {missing})"
        return NAMED, detail
    return SILENT, f"returned {result!r:.120}"


def assert_refused(row: Refusal, env: SimpleNamespace) -> None:
    """The test of one row: the call ended as the row says."""
    word, detail = outcome(row, env)
    assert word == NAMED, f"{row.id}: {word}: {detail}"


def probe_tables(
    tables: dict[str, list[Refusal]], env: SimpleNamespace
) -> list[tuple[str, str, str, str]]:
    """``(surface, row id, word, detail)`` for every row of ``tables``: what
    ``tests/edge_probe.py`` counts."""
    return [
        (surface, row.id, *outcome(row, env)) for surface, rows in tables.items() for row in rows
    ]


def rows_of(tables: dict[str, list[Refusal]]) -> list[Refusal]:
    """Every row of ``tables``, for ``pytest.mark.parametrize``."""
    return [row for rows in tables.values() for row in rows]
